//! The v1 backend on this host's real cgroupfs: cpu, cpuacct, cpuset, pids
//! and freezer, each under this test process's own cgroup for that
//! controller, in uniquely named bases that a Drop guard removes (killing
//! any process the test started in them first).

use crate::layout::{Ctl, Kernel, Layout};
use crate::service::CpuService;
use cgroupfs::hierarchy::own_cgroup;
use cgroupfs::{Base, CgroupDir, Hierarchies, Version};
use protocol::cpu::{CpuLimits, CpuRequest, CpuResponse};
use protocol::memory::Limit;
use protocol::ErrorKind;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// One test's bases on the real hierarchies, its state dir and its children.
struct Rig {
    layout: Layout,
    state: tempfile::TempDir,
    children: Vec<Child>,
}

impl Rig {
    /// None when this host has no v1 cpu hierarchy (then there is nothing to test here).
    fn new() -> Option<Rig> {
        let hier = Hierarchies::discover().unwrap();
        if hier.get("cpu").ok()?.version != Version::V1 {
            eprintln!("skipping: the cpu controller is not on cgroup v1 here");
            return None;
        }
        let name = format!(
            "cpuctl-unit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut entries = vec![];
        // The named hierarchies (name=systemd) this host has, as
        // Layout::discover takes them.
        let named = hier
            .by_controller
            .iter()
            .filter(|(c, h)| c.starts_with("name=") && h.version == Version::V1)
            .map(|(c, _)| c.as_str());
        let controllers = [
            "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices", "blkio",
        ];
        for c in controllers.into_iter().chain(named) {
            let h = hier.get(c).unwrap().clone();
            assert_eq!(h.version, Version::V1, "{c} is expected on v1 on this host");
            // The base one level down, so that relative cgroupsPaths (from
            // the base's parent) stay inside this test's directory too.
            let top = h.host_path(&own_cgroup(&h).unwrap()).join(&name);
            std::fs::create_dir_all(&top).unwrap();
            if c == "cpuset" {
                // A new v1 cpuset starts empty; the base copies from `top`.
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(top.parent().unwrap().join(f)).unwrap();
                    std::fs::write(top.join(f), v.trim()).unwrap();
                }
            }
            entries.push((h, top.join("base")));
        }
        let layout = Layout::from_base(&Base::fixed(entries), Arc::new(Kernel));
        Some(Rig {
            layout,
            state: tempfile::tempdir().unwrap(),
            children: vec![],
        })
    }

    fn service(&self) -> CpuService {
        CpuService::start(self.layout.clone(), self.state.path(), Box::new(|_| {})).unwrap()
    }

    /// The group `rel` has its directory in every hierarchy.
    fn assert_in_every_hierarchy(&self, rel: &str) {
        for m in self.layout.mounts() {
            assert!(m.dir(Path::new(rel)).exists(), "{rel} in {}", m.label());
        }
    }

    /// How many named hierarchies (name=systemd) the rig has.
    fn named(&self) -> usize {
        self.layout.mounts().iter().map(|m| m.names.len()).sum()
    }

    fn dir(&self, ctl: Ctl, rel: &str) -> CgroupDir {
        self.layout.mount_of(ctl).unwrap().dir(Path::new(rel))
    }

    fn read(&self, ctl: Ctl, rel: &str, file: &str) -> String {
        self.dir(ctl, rel)
            .read_string(file)
            .unwrap()
            .trim()
            .to_string()
    }

    fn spawn_busy(&mut self) -> i32 {
        let child = Command::new("sh")
            .arg("-c")
            .arg("while :; do :; done")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.children.push(child);
        pid
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for m in self.layout.mounts() {
            remove_tree(&CgroupDir::new(m.base.path().parent().unwrap()));
        }
    }
}

/// Thaws, kills and removes a cgroup tree, children first.
fn remove_tree(dir: &CgroupDir) {
    if !dir.exists() {
        return;
    }
    for child in dir.children().unwrap_or_default() {
        remove_tree(&child);
    }
    if dir.has_file("freezer.state") {
        let _ = dir.write("freezer.state", "THAWED");
    }
    let _ = dir.kill_all(Duration::from_secs(2));
    let _ = dir.remove();
}

fn proc_cgroup(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn limits() -> CpuLimits {
    CpuLimits {
        shares: Some(512),
        quota_us: Some(Limit::Value(20_000)),
        period_us: Some(50_000),
        burst_us: Some(1_000),
        cpus: Some("0".into()),
        mems: Some("0".into()),
        idle: Some(false),
        pids_max: Some(Limit::Value(5)),
    }
}

#[test]
fn create_writes_v1_files_and_fills_cpusets() {
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let resp = svc
        .request(
            None,
            CpuRequest::Create {
                id: "web".into(),
                parent: None,
                limits: limits(),
            },
        )
        .unwrap();
    let CpuResponse::Created(g) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.shares"), "512");
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.cfs_quota_us"), "20000");
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.cfs_period_us"), "50000");
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.cfs_burst_us"), "1000");
    assert_eq!(rig.read(Ctl::Cpuset, "web", "cpuset.cpus"), "0");
    assert_eq!(rig.read(Ctl::Cpuset, "web", "cpuset.mems"), "0");
    assert_eq!(rig.read(Ctl::Pids, "web", "pids.max"), "5");
    // The base got its parent's cpus and mems (a new v1 cpuset starts empty).
    let base_cpus = rig.read(Ctl::Cpuset, "", "cpuset.cpus");
    assert!(!base_cpus.is_empty());
    assert_eq!(g.limits, limits());
    let named: String = rig
        .layout
        .mounts()
        .iter()
        .flat_map(|m| m.names.iter().map(|n| format!(" {n}=v1")))
        .collect();
    assert_eq!(
        g.backend,
        format!("cpu=v1 cpuacct=v1 cpuset=v1 pids=v1 freezer=v1 devices=v1 blkio=v1{named}")
    );
    assert_eq!(
        g.paths.len(),
        7 + rig.named(),
        "cpu and cpuacct are separate mounts here: {:?}",
        g.paths
    );
    // quota max is -1 on v1
    svc.request(
        None,
        CpuRequest::Set {
            id: "web".into(),
            limits: CpuLimits {
                quota_us: Some(Limit::Max),
                pids_max: Some(Limit::Max),
                ..Default::default()
            },
        },
    )
    .unwrap();
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.cfs_quota_us"), "-1");
    assert_eq!(rig.read(Ctl::Pids, "web", "pids.max"), "max");
    svc.request(
        None,
        CpuRequest::Delete {
            id: "web".into(),
            force: false,
        },
    )
    .unwrap();
    // The bases stay while the server runs, and go when it stops.
    for m in rig.layout.mounts() {
        assert!(m.base.exists(), "{} removed early", m.base.path().display());
    }
    libipc::server::Service::shutdown(&svc);
    for m in rig.layout.mounts() {
        assert!(!m.base.exists(), "{} left behind", m.base.path().display());
    }
}

#[test]
fn period_change_that_breaks_the_old_quota_is_ordered_like_runc() {
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let q = |quota, period| CpuLimits {
        quota_us: Some(Limit::Value(quota)),
        period_us: Some(period),
        ..Default::default()
    };
    // Parent at half a CPU; child at 0.4.
    svc.request(
        None,
        CpuRequest::Create {
            id: "pod".into(),
            parent: None,
            limits: q(50_000, 100_000),
        },
    )
    .unwrap();
    svc.request(
        None,
        CpuRequest::Create {
            id: "app".into(),
            parent: Some("pod".into()),
            limits: q(40_000, 100_000),
        },
    )
    .unwrap();
    // Period 50000 first would make the old quota 40000/50000 = 0.8 > 0.5 (EINVAL):
    // the quota must go first, then the period.
    svc.request(
        None,
        CpuRequest::Set {
            id: "app".into(),
            limits: q(20_000, 50_000),
        },
    )
    .unwrap();
    assert_eq!(rig.read(Ctl::Cpu, "pod/app", "cpu.cfs_quota_us"), "20000");
    assert_eq!(rig.read(Ctl::Cpu, "pod/app", "cpu.cfs_period_us"), "50000");
    // And a quota above the parent's is the kernel's refusal, with the file named.
    let e = svc
        .request(
            None,
            CpuRequest::Set {
                id: "app".into(),
                limits: q(90_000, 100_000),
            },
        )
        .unwrap_err();
    assert!(e.message.contains("cpu.cfs_quota_us"), "{e}");
}

#[test]
fn attach_freeze_stat_and_force_delete() {
    let Some(mut rig) = Rig::new() else { return };
    let svc = rig.service();
    svc.request(
        None,
        CpuRequest::Create {
            id: "busy".into(),
            parent: None,
            limits: CpuLimits::default(),
        },
    )
    .unwrap();
    let pid = rig.spawn_busy();
    svc.request(
        None,
        CpuRequest::Attach {
            id: "busy".into(),
            pid,
        },
    )
    .unwrap();
    let cg = proc_cgroup(pid);
    for c in ["cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"] {
        let line = cg
            .lines()
            .find(|l| l.split(':').nth(1).unwrap().split(',').any(|x| x == c))
            .unwrap();
        assert!(line.ends_with("/busy"), "{c}: {line}");
    }
    std::thread::sleep(Duration::from_millis(200));
    let CpuResponse::Stat(s) = svc
        .request(None, CpuRequest::Stat { id: "busy".into() })
        .unwrap()
    else {
        panic!()
    };
    assert!(s.usage_us > 10_000, "a busy loop used {}us", s.usage_us);
    assert!(s.user_us > 0);
    assert_eq!(s.pids_current, 1);
    assert_eq!(s.pids, vec![pid]);
    assert!(!s.frozen);

    svc.request(None, CpuRequest::Freeze { id: "busy".into() })
        .unwrap();
    assert_eq!(rig.read(Ctl::Freezer, "busy", "freezer.state"), "FROZEN");
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(pid), t0, "a frozen process does not run");
    let CpuResponse::Stat(s) = svc
        .request(None, CpuRequest::Stat { id: "busy".into() })
        .unwrap()
    else {
        panic!()
    };
    assert!(s.frozen);
    svc.request(None, CpuRequest::Thaw { id: "busy".into() })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(cpu_ticks(pid) > t0, "a thawed process runs again");

    // Freeze again so that the forced delete must thaw before killing.
    svc.request(None, CpuRequest::Freeze { id: "busy".into() })
        .unwrap();
    let e = svc
        .request(
            None,
            CpuRequest::Delete {
                id: "busy".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains(&pid.to_string()), "{e}");
    svc.request(
        None,
        CpuRequest::Delete {
            id: "busy".into(),
            force: true,
        },
    )
    .unwrap();
    let status = rig.children[0].wait().unwrap();
    assert!(!status.success(), "killed: {status:?}");
    assert!(!rig.dir(Ctl::Cpu, "busy").exists());
}

#[test]
fn pids_max_stops_forks() {
    let Some(mut rig) = Rig::new() else { return };
    let svc = rig.service();
    let l = CpuLimits {
        pids_max: Some(Limit::Value(2)),
        ..Default::default()
    };
    svc.request(
        None,
        CpuRequest::Create {
            id: "few".into(),
            parent: None,
            limits: l,
        },
    )
    .unwrap();
    // A shell that waits for its cgroup move, then tries to start 3 children.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("read x; for i in 1 2 3; do sleep 5 & done; wait")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdin = child.stdin.take().unwrap();
    rig.children.push(child);
    svc.request(
        None,
        CpuRequest::Attach {
            id: "few".into(),
            pid,
        },
    )
    .unwrap();
    use std::io::Write;
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.read(Ctl::Pids, "few", "pids.current"),
        "2",
        "the shell and one sleep"
    );
    let events = rig.read(Ctl::Pids, "few", "pids.events");
    assert!(
        events.contains("max ") && !events.contains("max 0"),
        "{events}"
    );
    svc.request(
        None,
        CpuRequest::Delete {
            id: "few".into(),
            force: true,
        },
    )
    .unwrap();
}

#[test]
fn restart_lists_the_same_groups() {
    let Some(rig) = Rig::new() else { return };
    let before = {
        let svc = rig.service();
        svc.request(
            None,
            CpuRequest::Create {
                id: "a".into(),
                parent: None,
                limits: limits(),
            },
        )
        .unwrap();
        let l = CpuLimits {
            shares: Some(100),
            ..Default::default()
        };
        svc.request(
            None,
            CpuRequest::Create {
                id: "b".into(),
                parent: Some("a".into()),
                limits: l,
            },
        )
        .unwrap();
        let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
            panic!()
        };
        l
    };
    let svc = rig.service();
    let CpuResponse::List(after) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(before, after);
    // Forget the journal entirely: the groups are adopted with the kernel's values.
    std::fs::remove_file(rig.state.path().join("journal.json")).unwrap();
    let svc = rig.service();
    let CpuResponse::List(adopted) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(
        adopted
            .iter()
            .map(|g| (&g.id, &g.parent, &g.limits))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|g| (&g.id, &g.parent, &g.limits))
            .collect::<Vec<_>>()
    );
    svc.request(
        None,
        CpuRequest::Delete {
            id: "b".into(),
            force: false,
        },
    )
    .unwrap();
    svc.request(
        None,
        CpuRequest::Delete {
            id: "a".into(),
            force: false,
        },
    )
    .unwrap();
}

#[test]
fn kernel_refusals_name_the_file() {
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    // cpu 1 is online (so our own check lets it through) but outside the
    // parent pinned to cpu 0: the kernel refuses, and the error says where.
    let l = CpuLimits {
        cpus: Some("0".into()),
        ..Default::default()
    };
    svc.request(
        None,
        CpuRequest::Create {
            id: "pin".into(),
            parent: None,
            limits: l,
        },
    )
    .unwrap();
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if online.trim() == "0" {
        return; // single-cpu host: no cpu outside the parent to ask for
    }
    let l = CpuLimits {
        cpus: Some("1".into()),
        ..Default::default()
    };
    let e = svc
        .request(
            None,
            CpuRequest::Create {
                id: "child".into(),
                parent: Some("pin".into()),
                limits: l,
            },
        )
        .unwrap_err();
    assert!(e.message.contains("cpuset.cpus"), "{e}");
    assert!(
        !rig.dir(Ctl::Cpu, "pin/child").exists(),
        "the failed create removed its dirs"
    );
    assert!(!rig.dir(Ctl::Cpuset, "pin/child").exists());
}

#[test]
fn join_fds_lets_a_process_move_itself_into_every_hierarchy() {
    use cgroupfs::join_testing::{assert_fd_is, assert_joined, ctx, join};
    use libipc::server::Service;
    use nix::fcntl::OFlag;
    use protocol::cgroup::CgroupJoin;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    svc.request(
        Some("c1"),
        CpuRequest::Create {
            id: "web".into(),
            parent: None,
            limits: limits(),
        },
    )
    .unwrap();
    // Keyed with the create's key: answered fresh, never from the journal.
    let mut c = ctx(Some("c1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc
        .handle(&mut c, CpuRequest::JoinFds { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    let want: Vec<CgroupJoin> = rig
        .layout
        .mounts()
        .iter()
        .map(|m| CgroupJoin::V1Tasks {
            hierarchy: m.label(),
            path: m.dir(Path::new("web")).path().display().to_string(),
        })
        .collect();
    // This host mounts cpu, cpuacct, cpuset, pids, freezer, devices and
    // blkio separately, and the named hierarchies besides.
    assert_eq!(want.len(), 7 + rig.named());
    assert_eq!(entries, want);
    assert_eq!(c.fds_out.len(), entries.len());
    for (fd, m) in c.fds_out.iter().zip(rig.layout.mounts().iter()) {
        assert_fd_is(
            fd,
            &m.dir(Path::new("web")).file("tasks"),
            OFlag::O_WRONLY,
            false,
        );
    }
    let joiner = join(&c.fds_out);
    assert_joined(joiner.pid(), &entries);
    let CpuResponse::Stat(st) = svc
        .request(None, CpuRequest::Stat { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(st.pids, vec![joiner.pid()]);
    assert_eq!(st.pids_current, 1);
}

#[test]
fn join_fds_of_a_nested_group_and_refusals() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::cgroup::CgroupJoin;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    for (id, parent) in [("pod", None), ("web", Some("pod"))] {
        svc.request(
            None,
            CpuRequest::Create {
                id: id.into(),
                parent: parent.map(Into::into),
                limits: CpuLimits::default(),
            },
        )
        .unwrap();
    }
    let mut c = ctx(None, vec![]);
    let CpuResponse::JoinFds(entries) = svc
        .handle(&mut c, CpuRequest::JoinFds { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    let CgroupJoin::V1Tasks { hierarchy, path } = &entries[0] else {
        panic!("{entries:?}")
    };
    assert_eq!(hierarchy, "cpu");
    assert_eq!(
        Path::new(path),
        rig.dir(Ctl::Cpu, "pod/web").path(),
        "nested groups live in their parent's directory"
    );

    let e = svc
        .handle(
            &mut ctx(None, vec![]),
            CpuRequest::JoinFds { id: "nope".into() },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("nope"), "{e}");

    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut c = ctx(None, vec![devnull.into()]);
    let e = svc
        .handle(&mut c, CpuRequest::JoinFds { id: "web".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(e.message.contains("takes no file descriptors"), "{e}");
    assert!(c.fds_out.is_empty());
}

#[test]
fn create_joinable_makes_the_group_and_answers_with_its_join_fds() {
    use cgroupfs::join_testing::{assert_joined, ctx, join};
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let req = || CpuRequest::CreateJoinable {
        id: "web".into(),
        limits: limits(),
    };
    let mut c = ctx(Some("k1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, req()).unwrap() else {
        panic!()
    };
    // One entry and fd per hierarchy, as JoinFds gives them.
    let mut j = ctx(None, vec![]);
    let CpuResponse::JoinFds(want) = svc
        .handle(&mut j, CpuRequest::JoinFds { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(entries, want);
    assert_eq!(c.fds_out.len(), 7 + rig.named());
    // The limits are applied (not read back into the answer, but there).
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.shares"), "512");
    assert_eq!(rig.read(Ctl::Pids, "web", "pids.max"), "5");
    assert_eq!(rig.read(Ctl::Cpuset, "web", "cpuset.cpus"), "0");
    let joiner = join(&c.fds_out);
    assert_joined(joiner.pid(), &entries);

    // A retry under the same key is answered from the journal, with
    // fresh fds; a new key with the same spec finds the group made.
    for key in ["k1", "k2"] {
        let mut again = ctx(Some(key), vec![]);
        let CpuResponse::JoinFds(e2) = svc.handle(&mut again, req()).unwrap() else {
            panic!()
        };
        assert_eq!(e2, entries, "{key}");
        assert_eq!(again.fds_out.len(), 7 + rig.named(), "{key}");
    }
    let CpuResponse::List(groups) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(groups.len(), 1, "{groups:?}");
}

#[test]
fn create_joinable_refusals_leave_nothing() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let bad = |id: &str, limits: CpuLimits| CpuRequest::CreateJoinable {
        id: id.into(),
        limits,
    };
    // A bad id, a bad limit, fds sent along: refused, nothing made.
    let mut c = ctx(Some("b1"), vec![]);
    let e = svc.handle(&mut c, bad("../up", limits())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    let mut c = ctx(Some("b2"), vec![]);
    let zero_period = CpuLimits {
        period_us: Some(0),
        ..limits()
    };
    let e = svc.handle(&mut c, bad("web", zero_period)).unwrap_err();
    assert!(e.message.contains("period"), "{e}");
    assert!(c.fds_out.is_empty());
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut c = ctx(Some("b3"), vec![devnull.into()]);
    let e = svc.handle(&mut c, bad("web", limits())).unwrap_err();
    assert!(e.message.contains("takes no file descriptors"), "{e}");
    assert!(!rig.dir(Ctl::Cpu, "web").exists());
    assert!(!rig.dir(Ctl::Pids, "web").exists());

    // Made with one spec, asked again with another: exists, unchanged.
    svc.handle(&mut ctx(Some("c1"), vec![]), bad("web", limits()))
        .unwrap();
    let other = CpuLimits {
        shares: Some(1024),
        ..limits()
    };
    let mut c = ctx(Some("c2"), vec![]);
    let e = svc.handle(&mut c, bad("web", other)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(c.fds_out.is_empty());
    assert_eq!(rig.read(Ctl::Cpu, "web", "cpu.shares"), "512");
}

#[test]
fn create_joinable_at_a_cgroups_path_in_every_hierarchy() {
    use cgroupfs::join_testing::{assert_joined, ctx, join};
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let at = |id: &str, path: &str| CpuRequest::CreateJoinableAt {
        id: id.into(),
        cgroups_path: Some(path.into()),
        limits: limits(),
        devices: vec![],
        block_io: None,
    };
    // Relative: from the base's parent, in each hierarchy.
    let mut c = ctx(Some("k1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, at("c1", "pods/a/c1")).unwrap() else {
        panic!()
    };
    assert_eq!(c.fds_out.len(), 7 + rig.named());
    rig.assert_in_every_hierarchy("../pods/a/c1");
    assert_eq!(rig.read(Ctl::Cpu, "../pods/a/c1", "cpu.shares"), "512");
    assert_eq!(rig.read(Ctl::Pids, "../pods/a/c1", "pids.max"), "5");
    // The made cpuset parents got cpus and mems, or nothing could join.
    assert_eq!(rig.read(Ctl::Cpuset, "../pods/a/c1", "cpuset.cpus"), "0");
    assert_ne!(rig.read(Ctl::Cpuset, "../pods", "cpuset.mems"), "");
    // They hand their cpus and mems to new children at mkdir (and the
    // kernel passes the flag on to the children, as under the base).
    assert_eq!(
        rig.read(Ctl::Cpuset, "../pods/a", "cgroup.clone_children"),
        "1"
    );
    assert_joined(join(&c.fds_out).pid(), &entries);
    // Absolute: from the hierarchy's root, to a sibling under `pods`.
    let cpu = rig.layout.mount_of(Ctl::Cpu).unwrap();
    let top = cpu
        .base
        .path()
        .parent()
        .unwrap()
        .strip_prefix(&cpu.root)
        .unwrap();
    let abs = format!("/{}/pods/c2", top.display());
    svc.handle(&mut ctx(Some("k2"), vec![]), at("c2", &abs))
        .unwrap();
    assert!(rig.dir(Ctl::Cpu, "../pods/c2").exists());
    let CpuResponse::List(groups) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    let c2 = groups.iter().find(|g| g.id == "c2").unwrap();
    assert!(
        c2.paths.iter().all(|p| p.ends_with("/pods/c2")),
        "{:?}",
        c2.paths
    );
    // Refused, nothing made: the same path for another id, into the base,
    // `..`, a directory that already holds a process.
    let e = svc
        .handle(&mut ctx(Some("k3"), vec![]), at("c3", "pods/a/c1"))
        .unwrap_err();
    assert!(e.message.contains("already the cpu group of \"c1\""), "{e}");
    // The same directory named from the root: the same group's.
    let same = format!("/{}/pods/a/c1", top.display());
    let e = svc
        .handle(&mut ctx(Some("k3b"), vec![]), at("c3b", &same))
        .unwrap_err();
    assert!(e.message.contains("already the cpu group of \"c1\""), "{e}");
    let e = svc
        .handle(&mut ctx(Some("k4"), vec![]), at("c4", "base/x"))
        .unwrap_err();
    assert!(e.message.contains("own cgroup"), "{e}");
    let e = svc
        .handle(&mut ctx(Some("k5"), vec![]), at("c5", "a/../b"))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    let busy_dir = rig.dir(Ctl::Pids, "../busy");
    busy_dir.create().unwrap();
    let mut rig = rig;
    let pid = rig.spawn_busy();
    busy_dir.add_pid(pid).unwrap();
    let e = svc
        .handle(&mut ctx(Some("k6"), vec![]), at("c6", "busy"))
        .unwrap_err();
    assert!(e.message.contains("already holds processes"), "{e}");
    assert!(
        !rig.dir(Ctl::Cpu, "../busy").exists(),
        "a refused create made a directory"
    );
    // A restarted server finds them; deleting c1 removes the emptied `a`
    // in every hierarchy, and `pods` goes with the last group in it.
    drop(svc);
    let svc = rig.service();
    let del = |id: &str| CpuRequest::Delete {
        id: id.into(),
        force: true,
    };
    svc.request(Some("d1"), del("c1")).unwrap();
    for m in rig.layout.mounts() {
        assert!(!m.dir(Path::new("../pods/a/c1")).exists());
        assert!(
            m.dir(Path::new("../pods/a")).exists(),
            "removed before the stop"
        );
    }
    svc.shutdown();
    for m in rig.layout.mounts() {
        assert!(!m.dir(Path::new("../pods/a")).exists());
        assert!(m.dir(Path::new("../pods")).exists());
    }
    drop(svc);
    let svc = rig.service();
    svc.request(Some("d2"), del("c2")).unwrap();
    svc.shutdown();
    for m in rig.layout.mounts() {
        assert!(
            !m.dir(Path::new("../pods")).exists(),
            "{}",
            m.root.display()
        );
    }
}

/// A server killed between its mkdirs and its commit of a cgroupsPath
/// create: the directories it made are found at restart and the create
/// finished, once.
#[test]
fn a_cgroups_path_create_cut_by_a_crash_is_finished_at_restart() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    drop(rig.service());
    let req = CpuRequest::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/c1".into()),
        limits: limits(),
        devices: vec![],
        block_io: None,
    };
    {
        let mut j = crate::service::CpuJournal::open(rig.state.path()).unwrap();
        j.begin(Some("k1"), &req).unwrap();
    }
    // What the interrupted create had made: the cpu directories only.
    let cpu_dir = rig.dir(Ctl::Cpu, "../pods/c1");
    std::fs::create_dir_all(cpu_dir.path()).unwrap();
    let svc = rig.service();
    rig.assert_in_every_hierarchy("../pods/c1");
    assert_eq!(rig.read(Ctl::Cpu, "../pods/c1", "cpu.shares"), "512");
    assert_eq!(rig.read(Ctl::Pids, "../pods/c1", "pids.max"), "5");
    let mut c = ctx(Some("k1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, req).unwrap() else {
        panic!()
    };
    assert_eq!(entries.len(), 7 + rig.named());
    assert_eq!(c.fds_out.len(), 7 + rig.named());
    svc.request(
        Some("d1"),
        CpuRequest::Delete {
            id: "c1".into(),
            force: true,
        },
    )
    .unwrap();
    for ctl in [Ctl::Cpu, Ctl::Pids] {
        assert!(!rig.dir(ctl, "../pods/c1").exists(), "{ctl:?}");
    }
}

#[test]
fn device_rules_go_to_the_devices_hierarchy_in_order() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::cpu::DeviceRule;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let rule = |allow, kind, major, minor, access: &str| DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.into(),
    };
    let req = |id: &str, devices: Vec<DeviceRule>| CpuRequest::CreateJoinableAt {
        id: id.into(),
        cgroups_path: None,
        limits: CpuLimits::default(),
        devices,
        block_io: None,
    };
    let rules = vec![
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'c', Some(136), None, "rw"),
        rule(true, 'b', None, None, "m"),
    ];
    svc.handle(&mut ctx(Some("k1"), vec![]), req("web", rules.clone()))
        .unwrap();
    let list = rig.read(Ctl::Devices, "web", "devices.list");
    let mut lines: Vec<&str> = list.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["b *:* m", "c 136:* rw", "c 1:3 rwm"], "{list}");
    // Runs of allow and deny keep their order: a deny after an allow
    // takes the allowed entry out again.
    let alternating = vec![
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(false, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'c', Some(1), Some(5), "rwm"),
    ];
    svc.handle(&mut ctx(Some("k0"), vec![]), req("alt", alternating))
        .unwrap();
    assert_eq!(rig.read(Ctl::Devices, "alt", "devices.list"), "c 1:5 rwm");
    // Known again after a restart, with its rules.
    drop(svc);
    let svc = rig.service();
    let again = svc.handle(&mut ctx(Some("k2"), vec![]), req("web", rules.clone()));
    assert!(again.is_ok(), "the same create again: {again:?}");
    let e = svc
        .handle(
            &mut ctx(Some("k3"), vec![]),
            req("web", rules[..1].to_vec()),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    // A rule the kernel would refuse: refused by name, nothing made.
    for bad in [
        rule(true, 'x', None, None, "rwm"),
        rule(true, 'c', Some(1), Some(3), "rwx"),
        rule(true, 'c', Some(-1), Some(3), "r"),
    ] {
        let e = svc
            .handle(&mut ctx(Some("k4"), vec![]), req("db", vec![bad.clone()]))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
        assert!(e.message.contains(&bad.line()), "{e}");
        assert!(!rig.dir(Ctl::Devices, "db").exists());
        assert!(!rig.dir(Ctl::Cpu, "db").exists());
    }
}

/// A cgroupsPath create journals the parents it will make before it makes
/// them: one that then fails in the kernel (a cgroup name cannot hold a
/// newline) removes what it made and leaves them listed; the stop forgets
/// them.
#[test]
fn a_cgroups_path_create_journals_its_parents_before_making_them() {
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let bad = CpuRequest::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/bad\nname".into()),
        limits: CpuLimits::default(),
        devices: vec![],
        block_io: None,
    };
    let e = svc.request(Some("k1"), bad).unwrap_err();
    assert!(e.message.contains("create cgroup"), "{e}");
    let made = svc.table().made;
    for m in rig.layout.mounts() {
        let pods = m.dir(Path::new("../pods"));
        assert!(!pods.exists(), "{} left", pods.path().display());
        assert!(
            made.contains(pods.path()),
            "{} not journaled",
            pods.path().display()
        );
    }
    svc.shutdown();
    assert!(svc.table().made.is_empty());
}

/// The parents a create found are not looked for again by the next one;
/// one removed behind the server's back is made again by that create,
/// recorded, and removed at the stop like any parent it made.
#[test]
fn a_parent_removed_behind_the_servers_back_is_made_again() {
    use libipc::server::Service;
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let at = |id: &str| CpuRequest::CreateJoinableAt {
        id: id.into(),
        cgroups_path: Some(format!("pods/{id}")),
        limits: CpuLimits::default(),
        devices: vec![],
        block_io: None,
    };
    let del = |id: &str| CpuRequest::Delete {
        id: id.into(),
        force: true,
    };
    svc.request(Some("k1"), at("c1")).unwrap();
    svc.request(Some("d1"), del("c1")).unwrap();
    for m in rig.layout.mounts() {
        m.dir(Path::new("../pods")).remove().unwrap();
    }
    svc.request(Some("k2"), at("c2")).unwrap();
    rig.assert_in_every_hierarchy("../pods/c2");
    svc.request(Some("d2"), del("c2")).unwrap();
    svc.shutdown();
    for m in rig.layout.mounts() {
        let pods = m.dir(Path::new("../pods"));
        assert!(!pods.exists(), "{} left", pods.path().display());
    }
}

/// blockIO: every group has a directory in the blkio hierarchy (and a join
/// fd for it), as runc's do; the throttles are in the files there, and a
/// group made without blockIO can be given some by an update; a weight
/// this kernel's schedulers cannot give is refused by name, with nothing
/// made; delete removes it with the rest.
#[test]
fn block_io_lands_in_every_groups_blkio_directory() {
    use cgroupfs::join_testing::{assert_joined, ctx, join};
    use libipc::server::Service;
    use protocol::cpu::{BlockIo, DeviceRate};
    let Some(rig) = Rig::new() else { return };
    let svc = rig.service();
    let req = |id: &str, block_io: Option<BlockIo>| CpuRequest::CreateJoinableAt {
        id: id.into(),
        cgroups_path: None,
        limits: CpuLimits::default(),
        devices: vec![],
        block_io,
    };
    // Without: a blkio directory all the same, and a join fd for it.
    let mut c = ctx(Some("k1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, req("plain", None)).unwrap() else {
        panic!()
    };
    assert_eq!(c.fds_out.len(), 7 + rig.named());
    assert!(rig.dir(Ctl::Blkio, "plain").exists());
    assert_joined(join(&c.fds_out).pid(), &entries);
    // With throttles: the files.
    let throttles = BlockIo {
        throttle_read_bps: vec![DeviceRate {
            major: 254,
            minor: 0,
            rate: 1 << 20,
        }],
        throttle_write_iops: vec![DeviceRate {
            major: 254,
            minor: 0,
            rate: 100,
        }],
        ..Default::default()
    };
    let mut c = ctx(Some("k2"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, req("io", Some(throttles))).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.fds_out.len(), 7 + rig.named());
    // io's blkio.throttle.<file>.
    let throttle = |f: &str| rig.read(Ctl::Blkio, "io", &format!("blkio.throttle.{f}"));
    assert_eq!(throttle("read_bps_device"), "254:0 1048576");
    assert_eq!(throttle("write_iops_device"), "254:0 100");
    assert_joined(join(&c.fds_out).pid(), &entries);
    // update: the device's read rate is replaced, its write IOPS stay, and
    // the record keeps both; a group made without blockIO gets its first.
    let set = |id: &str, rate: u64| CpuRequest::SetBlockIo {
        id: id.into(),
        block_io: BlockIo {
            throttle_read_bps: vec![DeviceRate {
                major: 254,
                minor: 0,
                rate,
            }],
            ..Default::default()
        },
    };
    svc.handle(&mut ctx(Some("k5"), vec![]), set("io", 2 << 20))
        .unwrap();
    assert_eq!(throttle("read_bps_device"), "254:0 2097152");
    assert_eq!(throttle("write_iops_device"), "254:0 100");
    let rec = svc.table().get("io").unwrap().block_io.clone().unwrap();
    assert_eq!(rec.throttle_read_bps[0].rate, 2 << 20);
    assert_eq!(rec.throttle_write_iops[0].rate, 100);
    svc.handle(&mut ctx(Some("k6"), vec![]), set("plain", 1 << 20))
        .unwrap();
    assert_eq!(
        rig.read(Ctl::Blkio, "plain", "blkio.throttle.read_bps_device"),
        "254:0 1048576"
    );
    // A group whose blkio directory was removed behind our back gets it
    // back at a restart, with its blockIO.
    drop(svc);
    rig.dir(Ctl::Blkio, "plain").remove().unwrap();
    let svc = rig.service();
    let CpuResponse::List(groups) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert_eq!(
        rig.read(Ctl::Blkio, "plain", "blkio.throttle.read_bps_device"),
        "254:0 1048576",
        "repaired with its blockIO"
    );
    // A weight without a proportional scheduler (this host's mq-deadline):
    // refused by name, nothing made.
    let weighted = BlockIo {
        weight: Some(500),
        ..Default::default()
    };
    if !rig.dir(Ctl::Blkio, "io").has_file("blkio.weight")
        && !rig.dir(Ctl::Blkio, "io").has_file("blkio.bfq.weight")
    {
        let e = svc
            .handle(&mut ctx(Some("k3"), vec![]), req("w", Some(weighted)))
            .unwrap_err();
        assert!(e.message.contains("linux.resources.blockIO.weight"), "{e}");
        assert!(!rig.dir(Ctl::Blkio, "w").exists());
        assert!(!rig.dir(Ctl::Cpu, "w").exists());
    }
    // Out of range: refused before anything.
    let e = svc
        .handle(
            &mut ctx(Some("k4"), vec![]),
            req(
                "w2",
                Some(BlockIo {
                    weight: Some(5),
                    ..Default::default()
                }),
            ),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    for id in ["io", "plain"] {
        svc.request(
            Some(&format!("d-{id}")),
            CpuRequest::Delete {
                id: id.into(),
                force: true,
            },
        )
        .unwrap();
    }
    assert!(!rig.dir(Ctl::Blkio, "io").exists());
    assert!(!rig.dir(Ctl::Blkio, "plain").exists());
    assert!(!rig.dir(Ctl::Cpu, "plain").exists());
}

/// A server killed between the begin and the commit of a blockIO update:
/// the restarted server applies it and records its answer, and the
/// client's retry (same key) gets that answer.
#[test]
fn a_block_io_update_cut_by_a_crash_is_finished_at_restart() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::cpu::{BlockIo, DeviceRate};
    let Some(rig) = Rig::new() else { return };
    let rate = |rate| {
        vec![DeviceRate {
            major: 254,
            minor: 0,
            rate,
        }]
    };
    let svc = rig.service();
    let create = CpuRequest::CreateJoinableAt {
        id: "io".into(),
        cgroups_path: None,
        limits: CpuLimits::default(),
        devices: vec![],
        block_io: Some(BlockIo {
            throttle_read_bps: rate(1 << 20),
            ..Default::default()
        }),
    };
    svc.handle(&mut ctx(Some("k1"), vec![]), create).unwrap();
    drop(svc);
    let set = CpuRequest::SetBlockIo {
        id: "io".into(),
        block_io: BlockIo {
            throttle_read_bps: rate(3 << 20),
            ..Default::default()
        },
    };
    {
        let mut j = crate::service::CpuJournal::open(rig.state.path()).unwrap();
        j.begin(Some("k2"), &set).unwrap();
    }
    let svc = rig.service();
    assert_eq!(
        rig.read(Ctl::Blkio, "io", "blkio.throttle.read_bps_device"),
        "254:0 3145728"
    );
    let rec = svc.table().get("io").unwrap().block_io.clone().unwrap();
    assert_eq!(rec.throttle_read_bps, rate(3 << 20));
    let again = svc.handle(&mut ctx(Some("k2"), vec![]), set).unwrap();
    assert!(matches!(again, CpuResponse::Updated(_)), "{again:?}");
    svc.request(
        Some("d1"),
        CpuRequest::Delete {
            id: "io".into(),
            force: true,
        },
    )
    .unwrap();
    assert!(!rig.dir(Ctl::Blkio, "io").exists());
}

/// blkio's counter files: a line per device and operation, then a
/// "Total" over every device, which is not a device's and is left out.
#[test]
fn block_io_lines_are_devices_and_operations() {
    let text = "8:0 Read 4096\n8:0 Write 0\n254:16 Total 12\nTotal 4108\n";
    let got = crate::v1::block_io_lines("throttle.io_serviced_recursive", text);
    let seen: Vec<_> = got
        .iter()
        .map(|e| (e.major, e.minor, e.op.as_str(), e.value))
        .collect();
    assert_eq!(
        seen,
        [
            (8, 0, "Read", 4096),
            (8, 0, "Write", 0),
            (254, 16, "Total", 12)
        ]
    );
    assert!(got
        .iter()
        .all(|e| e.file == "throttle.io_serviced_recursive"));
}
