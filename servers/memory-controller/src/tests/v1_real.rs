//! The v1 backend and the service on this host's real v1 memory hierarchy,
//! inside a uniquely named child of this test process's own memory cgroup
//! that a Drop guard removes (killing whatever is left in it).

use crate::backend::v1::V1;
use crate::backend::Backend;
use crate::service::{MemJournal, MemoryService};
use cgroupfs::hierarchy::own_cgroup;
use cgroupfs::{CgroupDir, Hierarchies, Version};
use protocol::memory::{
    Limit, MemoryEvent, MemoryLimits, MemoryRequest as Req, MemoryResponse as Resp,
};
use protocol::ErrorKind;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh directory `top` under our own memory cgroup, with the base in
/// it (so that relative cgroupsPaths land in `top` too); removed on drop.
struct Guard {
    root: std::path::PathBuf,
    top: CgroupDir,
    base: CgroupDir,
}

impl Guard {
    /// A service on the v1 backend in this guard's base, its journal in `state`.
    fn service(&self, state: &std::path::Path) -> MemoryService {
        MemoryService::with_backend(
            Arc::new(V1::new(self.root.clone(), self.base.clone())),
            state,
            Box::new(|_| {}),
        )
        .unwrap()
    }

    fn new() -> Guard {
        let hier = Hierarchies::discover().unwrap();
        let h = hier.get("memory").unwrap();
        assert_eq!(
            h.version,
            Version::V1,
            "these tests need memory on cgroup v1 (this host's layout)"
        );
        let own = own_cgroup(h).unwrap();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let top = CgroupDir::new(
            h.host_path(&own)
                .join(format!("mc-unit-{}-{n}", std::process::id())),
        );
        top.create().unwrap();
        Guard {
            root: h.mount.clone(),
            base: top.child("base"),
            top,
        }
    }
}

fn remove_tree(d: &CgroupDir) {
    for c in d.children().unwrap_or_default() {
        remove_tree(&c);
    }
    let _ = d.kill_all(Duration::from_secs(5));
    let _ = d.remove();
}

impl Drop for Guard {
    fn drop(&mut self) {
        remove_tree(&self.top);
    }
}

fn mib(n: u64) -> u64 {
    n << 20
}

fn read(d: &CgroupDir, f: &str) -> u64 {
    d.read_u64(f).unwrap()
}

/// `sh` that waits for a line on stdin, then makes `tail` hold `bytes` of
/// memory (it buffers one endless line, then blocks writing to `sleep`).
fn holder(bytes: u64) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "read x; head -c {bytes} /dev/zero | tail | sleep 60"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn go(c: &mut Child) {
    writeln!(c.stdin.as_mut().unwrap()).unwrap();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn v1_limits_are_written_in_an_order_the_kernel_accepts() {
    let g = Guard::new();
    let b = V1::new(g.root.clone(), g.base.clone());
    b.prepare_base().unwrap();
    let d = g.base.child("g");
    assert!(b.create("g", &g.base, &d).unwrap());
    let l = MemoryLimits {
        limit: Some(Limit::Value(mib(32))),
        reservation: Some(Limit::Value(mib(16))),
        swap: Some(Limit::Value(mib(64))),
        swappiness: Some(10),
        disable_oom_killer: Some(true),
    };
    b.check("g", &l).unwrap();
    b.apply("g", &d, &l).unwrap();
    assert_eq!(b.read_limits(&d).unwrap(), l);
    assert_eq!(read(&d, "memory.memsw.limit_in_bytes"), mib(64));

    // Lowering both below the old limit: limit first, then memsw.
    let low = MemoryLimits {
        limit: Some(Limit::Value(mib(16))),
        swap: Some(Limit::Value(mib(16))),
        ..Default::default()
    };
    b.apply("g", &d, &low).unwrap();
    assert_eq!(
        (
            read(&d, "memory.limit_in_bytes"),
            read(&d, "memory.memsw.limit_in_bytes")
        ),
        (mib(16), mib(16))
    );

    // Raising both above the old memsw: memsw first, then the limit.
    let high = MemoryLimits {
        limit: Some(Limit::Value(mib(128))),
        swap: Some(Limit::Value(mib(256))),
        ..Default::default()
    };
    b.apply("g", &d, &high).unwrap();
    assert_eq!(
        (
            read(&d, "memory.limit_in_bytes"),
            read(&d, "memory.memsw.limit_in_bytes")
        ),
        (mib(128), mib(256))
    );

    // A limit above memsw is the kernel's EINVAL, explained.
    let e = b
        .apply(
            "g",
            &d,
            &MemoryLimits {
                limit: Some(Limit::Value(mib(512))),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.errno, Some(libc::EINVAL));
    assert!(
        e.message.contains("--swap") && e.message.contains("memory.limit_in_bytes"),
        "{e}"
    );

    // "max" with swap unset: both unlimited (runc), the OOM killer back on.
    let max = MemoryLimits {
        limit: Some(Limit::Max),
        disable_oom_killer: Some(false),
        ..Default::default()
    };
    b.apply("g", &d, &max).unwrap();
    let back = b.read_limits(&d).unwrap();
    assert_eq!(
        (back.limit, back.swap, back.disable_oom_killer),
        (Some(Limit::Max), Some(Limit::Max), Some(false))
    );

    let e = b
        .check(
            "g",
            &MemoryLimits {
                swappiness: Some(200),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.message.contains("swappiness"), "{e}");
    b.remove(&d).unwrap();
    assert!(!d.exists());
}

#[test]
fn v1_service_attach_stat_hierarchy_and_delete() {
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let svc = g.service(state.path());
    let limits = |m| MemoryLimits {
        limit: Some(Limit::Value(mib(m))),
        ..Default::default()
    };
    svc.request(
        Some("c1"),
        Req::Create {
            id: "pod".into(),
            parent: None,
            limits: limits(256),
        },
    )
    .unwrap();
    svc.request(
        Some("c2"),
        Req::Create {
            id: "web".into(),
            parent: Some("pod".into()),
            limits: limits(128),
        },
    )
    .unwrap();
    assert!(g.base.child("pod").child("web").exists());

    let mut child = holder(mib(16));
    let pid = child.id() as i32;
    svc.request(
        Some("a1"),
        Req::Attach {
            id: "web".into(),
            pid,
        },
    )
    .unwrap();
    go(&mut child);
    let stat = |id: &str| match svc.request(None, Req::Stat { id: id.into() }).unwrap() {
        Resp::Stat(s) => s,
        other => panic!("{other:?}"),
    };
    wait_until("web to use 16 MiB", || stat("web").usage_bytes >= mib(16));
    let (web, pod) = (stat("web"), stat("pod"));
    assert!(web.pids.contains(&pid), "{:?}", web.pids);
    assert!(pod.pids.is_empty());
    // hierarchical accounting: the parent's usage includes the child's
    assert!(
        pod.usage_bytes >= mib(16),
        "pod {} web {}",
        pod.usage_bytes,
        web.usage_bytes
    );
    assert!(web.peak_bytes >= mib(16));
    assert_eq!(web.limit_bytes, Some(mib(128)));
    assert!(web.counters.iter().any(|(k, _)| k == "rss"));

    // check-before-update: 8 MiB is below the usage
    let e = svc
        .request(
            Some("s1"),
            Req::Set {
                id: "web".into(),
                limits: limits(8),
                check_before_update: true,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert_eq!(
        read(&g.base.child("pod").child("web"), "memory.limit_in_bytes"),
        mib(128)
    );

    let e = svc
        .request(
            Some("d1"),
            Req::Delete {
                id: "web".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains(&pid.to_string()), "{e}");
    svc.request(
        Some("d2"),
        Req::Delete {
            id: "web".into(),
            force: true,
        },
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(!g.base.child("pod").child("web").exists());
    svc.request(
        Some("d3"),
        Req::Delete {
            id: "pod".into(),
            force: false,
        },
    )
    .unwrap();
    assert!(g.base.children().unwrap().is_empty());
}

#[test]
fn v1_oom_is_seen_through_the_eventfd_and_counted() {
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let svc = MemoryService::with_backend(
        Arc::new(V1::new(g.root.clone(), g.base.clone())),
        state.path(),
        Box::new(move |e| {
            let _ = tx.send(e);
        }),
    )
    .unwrap();
    let limits = MemoryLimits {
        limit: Some(Limit::Value(mib(32))),
        swap: Some(Limit::Value(mib(32))),
        ..Default::default()
    };
    // Quiet groups beside it, one removed before the OOM: its removal
    // signals its eventfd too, and must not be taken for an OOM.
    for (key, id) in [("q1", "quiet-a"), ("q2", "quiet-z"), ("c1", "hog")] {
        svc.request(
            Some(key),
            Req::Create {
                id: id.into(),
                parent: None,
                limits: limits.clone(),
            },
        )
        .unwrap();
    }
    svc.request(
        Some("q3"),
        Req::Delete {
            id: "quiet-a".into(),
            force: false,
        },
    )
    .unwrap();
    let mut child = holder(mib(64));
    svc.request(
        Some("a1"),
        Req::Attach {
            id: "hog".into(),
            pid: child.id() as i32,
        },
    )
    .unwrap();
    go(&mut child);
    let MemoryEvent::Oom {
        id,
        oom_events,
        oom_kills,
        ..
    } = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(id, "hog");
    assert!(
        oom_events >= 1 && oom_kills >= 1,
        "events {oom_events} kills {oom_kills}"
    );
    while let Ok(MemoryEvent::Oom { id, .. }) = rx.recv_timeout(Duration::from_millis(300)) {
        assert_eq!(id, "hog", "a notice for a group that had no OOM");
    }
    let Resp::Stat(st) = svc.request(None, Req::Stat { id: "hog".into() }).unwrap() else {
        panic!()
    };
    assert!(st.oom_events >= 1 && st.oom_kills >= 1, "{st:?}");
    // v1's count lives in the journal, so it survives a restart
    let j = MemJournal::open(state.path()).unwrap();
    assert!(j.state().groups["hog"].oom_events >= 1);
    for (key, id) in [("d1", "hog"), ("d2", "quiet-z")] {
        svc.request(
            Some(key),
            Req::Delete {
                id: id.into(),
                force: true,
            },
        )
        .unwrap();
    }
    let _ = child.wait();
}

#[test]
fn v1_join_fds_lets_a_process_move_itself_into_the_group() {
    use cgroupfs::join_testing::{assert_fd_is, assert_joined, ctx, join};
    use libipc::server::Service;
    use nix::fcntl::OFlag;
    use protocol::cgroup::CgroupJoin;
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let svc = g.service(state.path());
    svc.request(
        Some("c1"),
        Req::Create {
            id: "web".into(),
            parent: None,
            limits: MemoryLimits {
                limit: Some(Limit::Value(mib(64))),
                ..Default::default()
            },
        },
    )
    .unwrap();
    let dir = g.base.child("web");
    let mut c = ctx(Some("j1"), vec![]);
    let Resp::JoinFds(entries) = svc
        .handle(&mut c, Req::JoinFds { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        entries,
        vec![CgroupJoin::V1Tasks {
            hierarchy: "memory".into(),
            path: dir.path().display().to_string()
        }]
    );
    assert_eq!(c.fds_out.len(), 1);
    assert_fd_is(&c.fds_out[0], &dir.file("tasks"), OFlag::O_WRONLY, false);
    assert!(dir.procs().unwrap().is_empty());
    let joiner = join(&c.fds_out);
    assert_joined(joiner.pid(), &entries);
    let Resp::Stat(st) = svc.request(None, Req::Stat { id: "web".into() }).unwrap() else {
        panic!()
    };
    assert_eq!(st.pids, vec![joiner.pid()]);
    assert!(MemJournal::open(state.path())
        .unwrap()
        .recorded("j1")
        .is_none());
}

#[test]
fn v1_create_joinable_makes_the_group_and_answers_with_its_join_fds() {
    use cgroupfs::join_testing::{assert_joined, ctx, join};
    use libipc::server::Service;
    use protocol::cgroup::CgroupJoin;
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let svc = g.service(state.path());
    let req = |mib_limit: u64| Req::CreateJoinable {
        id: "web".into(),
        limits: MemoryLimits {
            limit: Some(Limit::Value(mib(mib_limit))),
            ..Default::default()
        },
    };
    let dir = g.base.child("web");
    let want = vec![CgroupJoin::V1Tasks {
        hierarchy: "memory".into(),
        path: dir.path().display().to_string(),
    }];
    // Made, limited, answered with its join fd; a retry under the same
    // key (from the journal) and a new key with the same spec get fresh fds.
    for key in ["k1", "k1", "k2"] {
        let mut c = ctx(Some(key), vec![]);
        let Resp::JoinFds(entries) = svc.handle(&mut c, req(64)).unwrap() else {
            panic!()
        };
        assert_eq!(entries, want, "{key}");
        assert_eq!(c.fds_out.len(), 1, "{key}");
        assert_eq!(
            dir.read_string("memory.limit_in_bytes").unwrap().trim(),
            mib(64).to_string()
        );
        if key == "k2" {
            let joiner = join(&c.fds_out);
            assert_joined(joiner.pid(), &entries);
        }
    }
    // Another spec for the same id: exists, nothing changed, no fd.
    let mut c = ctx(Some("k3"), vec![]);
    let e = svc.handle(&mut c, req(32)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(c.fds_out.is_empty());
    // A bad id or fds sent along: refused, nothing made.
    let mut c = ctx(Some("k4"), vec![]);
    let bad = Req::CreateJoinable {
        id: "../up".into(),
        limits: MemoryLimits::default(),
    };
    assert_eq!(
        svc.handle(&mut c, bad).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut c = ctx(Some("k5"), vec![devnull.into()]);
    let other = Req::CreateJoinable {
        id: "db".into(),
        limits: MemoryLimits::default(),
    };
    let e = svc.handle(&mut c, other).unwrap_err();
    assert!(e.message.contains("takes no file descriptors"), "{e}");
    assert!(!g.base.child("db").exists());
}

#[test]
fn v1_create_joinable_at_a_cgroups_path_makes_parents_and_removes_them_at_stop() {
    use cgroupfs::join_testing::{assert_joined, ctx, join};
    use libipc::server::Service;
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let svc = g.service(state.path());
    let at = |id: &str, path: &str, mib_limit: u64| Req::CreateJoinableAt {
        id: id.into(),
        cgroups_path: Some(path.into()),
        hugepages: vec![],
        limits: MemoryLimits {
            limit: Some(Limit::Value(mib(mib_limit))),
            ..Default::default()
        },
    };
    // Relative: below the base's parent (the starter's cgroup, here `top`).
    let dir = g.top.child("pods").child("a").child("c1");
    let mut c = ctx(Some("k1"), vec![]);
    let Resp::JoinFds(entries) = svc.handle(&mut c, at("c1", "pods/a/c1", 64)).unwrap() else {
        panic!()
    };
    assert_eq!(read(&dir, "memory.limit_in_bytes"), mib(64));
    assert_joined(join(&c.fds_out).pid(), &entries);
    // Absolute, from the hierarchy's root, to a sibling under `pods`.
    let top_rel = g.top.path().strip_prefix(&g.root).unwrap();
    let abs = format!("/{}/pods/c2", top_rel.display());
    svc.handle(&mut ctx(Some("k2"), vec![]), at("c2", &abs, 32))
        .unwrap();
    assert_eq!(
        read(&g.top.child("pods").child("c2"), "memory.limit_in_bytes"),
        mib(32)
    );
    let made: Vec<_> = svc.table().made.into_iter().collect();
    assert_eq!(
        made,
        vec![
            g.top.child("pods").path().to_path_buf(),
            g.top.child("pods").child("a").path().to_path_buf()
        ]
    );
    // Refused, nothing made: the same path for another id; a path into the
    // base; `..`; a directory that already holds processes.
    let e = svc
        .handle(&mut ctx(Some("k3"), vec![]), at("c3", "pods/a/c1", 64))
        .unwrap_err();
    assert!(
        e.message.contains("already the memory group of \"c1\""),
        "{e}"
    );
    let e = svc
        .handle(&mut ctx(Some("k4"), vec![]), at("c4", "base/x", 64))
        .unwrap_err();
    assert!(e.message.contains("own cgroup"), "{e}");
    let e = svc
        .handle(&mut ctx(Some("k5"), vec![]), at("c5", "../x", 64))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    let busy = g.top.child("busy");
    busy.create().unwrap();
    let mut h = holder(0);
    busy.add_pid(h.id() as i32).unwrap();
    let e = svc
        .handle(&mut ctx(Some("k6"), vec![]), at("c6", "busy", 64))
        .unwrap_err();
    assert!(e.message.contains("already holds processes"), "{e}");
    let _ = h.kill();
    let _ = h.wait();
    for id in ["c3", "c4", "c5", "c6"] {
        assert!(!svc.table().groups.contains_key(id), "{id}");
    }
    // A restarted server finds the groups where they were made.
    drop(svc);
    let svc = g.service(state.path());
    assert_eq!(
        svc.table().groups["c1"].cgroups_path.as_deref(),
        Some("pods/a/c1")
    );
    // Deleting c1 removes its group; the parents stay while the server
    // runs, and go at its stop once empty: `a` then, `pods` after c2.
    let del = |id: &str| Req::Delete {
        id: id.into(),
        force: true,
    };
    svc.request(Some("d1"), del("c1")).unwrap();
    assert!(!dir.exists());
    assert!(g.top.child("pods").child("a").exists());
    svc.shutdown();
    assert!(!g.top.child("pods").child("a").exists());
    assert!(g.top.child("pods").exists());
    drop(svc);
    let svc = g.service(state.path());
    svc.request(Some("d2"), del("c2")).unwrap();
    svc.shutdown();
    assert!(!g.top.child("pods").exists());
    assert!(svc.table().made.is_empty());
}

/// A server killed between its mkdirs and its commit of a cgroupsPath
/// create: the directories it made are found at restart and the create
/// finished (not refused as "already holds" or "taken"), once; the parents
/// it made, journaled with its begin, go at the stop after the delete.
#[test]
fn v1_a_cgroups_path_create_cut_by_a_crash_is_finished_at_restart() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    drop(g.service(state.path()));
    let req = Req::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/deep/c1".into()),
        hugepages: vec![],
        limits: MemoryLimits {
            limit: Some(Limit::Value(mib(64))),
            ..Default::default()
        },
    };
    // What `mutate` writes before the mkdirs: the parents, with the begin.
    let pods = g.top.child("pods");
    let deep = pods.child("deep");
    {
        let mut j = MemJournal::open(state.path()).unwrap();
        j.state_mut()
            .made
            .extend([pods.path().to_path_buf(), deep.path().to_path_buf()]);
        j.begin(Some("k1"), &req).unwrap();
    }
    // Then the mkdirs, then the kill.
    let dir = deep.child("c1");
    std::fs::create_dir_all(dir.path()).unwrap();
    let svc = g.service(state.path());
    assert_eq!(
        svc.table().groups["c1"].cgroups_path.as_deref(),
        Some("pods/deep/c1")
    );
    assert_eq!(read(&dir, "memory.limit_in_bytes"), mib(64));
    // The client's retry gets the recorded answer, with a fresh fd.
    let mut c = ctx(Some("k1"), vec![]);
    let Resp::JoinFds(entries) = svc.handle(&mut c, req).unwrap() else {
        panic!()
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(c.fds_out.len(), 1);
    svc.request(
        Some("d1"),
        Req::Delete {
            id: "c1".into(),
            force: true,
        },
    )
    .unwrap();
    assert!(!dir.exists());
    svc.shutdown();
    assert!(!pods.exists(), "the parents the cut create made are left");
}

/// `mutate` journals a cgroupsPath create's parents before it makes them:
/// a create that then fails in the kernel (cgroup names cannot hold a
/// newline: mkdir says EINVAL) removes what it made and leaves the parent
/// listed; the stop forgets it.
#[test]
fn v1_a_cgroups_path_create_journals_its_parents_before_making_them() {
    use libipc::server::Service;
    let g = Guard::new();
    let state = tempfile::tempdir().unwrap();
    let svc = g.service(state.path());
    let bad = Req::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/bad\nname".into()),
        hugepages: vec![],
        limits: MemoryLimits::default(),
    };
    let e = svc.request(Some("k1"), bad).unwrap_err();
    assert!(e.message.contains("create cgroup"), "{e}");
    let pods = g.top.child("pods");
    assert!(!pods.exists(), "a failed create left its parent");
    assert!(svc.table().made.contains(pods.path()), "not journaled");
    assert!(svc.table().groups.is_empty());
    svc.shutdown();
    assert!(!svc.table().made.contains(pods.path()));
}

/// A group's child groups on the real v1 hierarchy: none is told by the
/// directory's link count (nothing listed), some are listed, and a
/// process in one is found from its parent. The delete checks rely on it.
#[test]
fn v1_child_groups_are_found_with_or_without_a_listing() {
    let g = Guard::new();
    let x = g.top.child("x");
    x.create().unwrap();
    let names = |d: &CgroupDir| -> Vec<String> {
        d.children()
            .unwrap()
            .iter()
            .map(|c| c.path().file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert!(names(&x).is_empty());
    assert!(x.procs_recursive().unwrap().is_empty());
    x.child("b").create().unwrap();
    x.child("a").create().unwrap();
    assert_eq!(names(&x), ["a", "b"]);
    let mut sleeper = holder(0);
    let pid = sleeper.id() as i32;
    x.child("b").add_pid(pid).unwrap();
    assert_eq!(x.procs_recursive().unwrap(), [pid]);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    wait_until("the sleeper to leave its group", || {
        x.procs_recursive().unwrap().is_empty()
    });
    x.child("a").remove().unwrap();
    x.child("b").remove().unwrap();
    assert!(names(&x).is_empty());
}
