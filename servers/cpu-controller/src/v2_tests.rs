//! The v2 backend, end to end through the service, against a directory tree
//! laid out like cgroupfs v2 file for file. This host's cpu controllers are
//! on v1, so a small stand-in kernel plays the parts the real one would:
//! mkdir fills a cgroup with the interface files of the controllers its
//! parent delegates, rmdir refuses a busy cgroup, a write of "+cpu" to
//! cgroup.subtree_control reads back as "cpu", and cgroup.freeze is
//! reflected in cgroup.events.

use crate::layout::{DirOps, Layout};
use crate::peer::{Peer, PeerHas};
use crate::service::CpuService;
use cgroupfs::{Base, CgroupDir, Hierarchy, Version};
use protocol::cpu::{CpuEvent, CpuLimits, CpuRequest, CpuResponse};
use protocol::memory::Limit;
use protocol::{Error, ErrorKind};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
struct FakeKernel;

fn put(path: &Path, text: &str) {
    // rename into place so a concurrent reader never sees half a file
    let tmp = path.with_extension("fake-tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn get(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl DirOps for FakeKernel {
    fn mkdir(&self, dir: &CgroupDir) -> Result<bool, Error> {
        if dir.exists() {
            return Ok(false);
        }
        std::fs::create_dir(dir.path()).map_err(|e| Error::io("fake mkdir", &e))?;
        let parent = dir.path().parent().unwrap();
        let delegated = normalize_subtree(parent);
        let d = dir.path();
        put(&d.join("cgroup.controllers"), &format!("{delegated}\n"));
        for (f, v) in [
            ("cgroup.subtree_control", "\n"),
            ("cgroup.procs", ""),
            ("cgroup.events", "populated 0\nfrozen 0\n"),
            ("cgroup.freeze", "0\n"),
            ("cgroup.type", "domain\n"),
        ] {
            put(&d.join(f), v);
        }
        let has = |c: &str| delegated.split_whitespace().any(|x| x == c);
        if has("cpu") {
            for (f, v) in [
                ("cpu.weight", "100\n"),
                ("cpu.max", "max 100000\n"),
                ("cpu.max.burst", "0\n"),
                ("cpu.idle", "0\n"),
                ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n"),
            ] {
                put(&d.join(f), v);
            }
        } else {
            put(
                &d.join("cpu.stat"),
                "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
            );
        }
        if has("cpuset") {
            for (f, v) in [
                ("cpuset.cpus", "\n"),
                ("cpuset.mems", "\n"),
                ("cpuset.cpus.effective", "0-1\n"),
                ("cpuset.mems.effective", "0\n"),
            ] {
                put(&d.join(f), v);
            }
        }
        if has("pids") {
            put(&d.join("pids.max"), "max\n");
            put(&d.join("pids.current"), "0\n");
        }
        if has("io") {
            put(&d.join("io.max"), "");
            put(&d.join("io.weight"), "default 100\n");
        }
        Ok(true)
    }

    fn rmdir(&self, dir: &CgroupDir) -> Result<(), Error> {
        if !dir.exists() {
            return Ok(());
        }
        let busy = !dir.children()?.is_empty() || !get(&dir.file("cgroup.procs")).trim().is_empty();
        if busy {
            let e = std::io::Error::from_raw_os_error(libc::EBUSY);
            return Err(Error::io(
                format!("remove cgroup {}", dir.path().display()),
                &e,
            ));
        }
        std::fs::remove_dir_all(dir.path()).map_err(|e| Error::io("fake rmdir", &e))
    }
}

/// The kernel turns "+cpu +pids" written to cgroup.subtree_control into the
/// set of enabled controllers; do that on the fake's next look at it.
fn normalize_subtree(dir: &Path) -> String {
    let f = dir.join("cgroup.subtree_control");
    let mut on: Vec<String> = vec![];
    for tok in get(&f).split_whitespace() {
        match tok.strip_prefix('-') {
            Some(c) => on.retain(|x| x != c),
            None => {
                let c = tok.trim_start_matches('+').to_string();
                if !on.contains(&c) {
                    on.push(c);
                }
            }
        }
    }
    let text = on.join(" ");
    put(&f, &format!("{text}\n"));
    text
}

/// A thread playing the kernel's asynchronous part: cgroup.freeze -> cgroup.events.
struct KernelThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl KernelThread {
    fn start(root: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                mirror_freeze(&root);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        KernelThread {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for KernelThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn mirror_freeze(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let freeze = get(&dir.join("cgroup.freeze"));
    let events = dir.join("cgroup.events");
    if !freeze.trim().is_empty() && events.exists() {
        let want = format!("populated 0\nfrozen {}\n", freeze.trim());
        if get(&events) != want {
            put(&events, &want);
        }
    }
    for ent in rd.flatten() {
        if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            mirror_freeze(&ent.path());
        }
    }
}

struct Rig {
    _tmp: tempfile::TempDir,
    _kernel: KernelThread,
    root: PathBuf,
    base: PathBuf,
    state: PathBuf,
    events: Arc<Mutex<Vec<CpuEvent>>>,
}

impl Rig {
    /// A v2 mount with `controllers` listed at its root; the base below it.
    fn new(controllers: &str) -> Rig {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cgroup");
        std::fs::create_dir(&root).unwrap();
        put(
            &root.join("cgroup.controllers"),
            &format!("{controllers}\n"),
        );
        put(&root.join("cgroup.subtree_control"), "\n");
        put(&root.join("cgroup.procs"), "1\n");
        let state = tmp.path().join("state");
        let base = root.join("asterism-test");
        let kernel = KernelThread::start(root.clone());
        Rig {
            _tmp: tmp,
            _kernel: kernel,
            root,
            base,
            state,
            events: Default::default(),
        }
    }

    fn layout(&self, ctls: &[&str]) -> Layout {
        let entries = ctls
            .iter()
            .map(|c| {
                let h = Hierarchy {
                    controller: c.to_string(),
                    version: Version::V2,
                    mount: self.root.clone(),
                    mount_root: "/".into(),
                };
                (h, self.base.clone())
            })
            .collect();
        Layout::from_base(&Base::fixed(entries), Arc::new(FakeKernel))
    }

    fn service(&self) -> CpuService {
        self.service_with(&["cpu", "cpuset", "pids", "freezer"])
    }

    fn service_with(&self, ctls: &[&str]) -> CpuService {
        let ev = self.events.clone();
        CpuService::start(
            self.layout(ctls),
            &self.state,
            Box::new(move |e| ev.lock().unwrap().push(e)),
        )
        .unwrap()
    }

    /// With memory-controller stood in for by `peer`.
    fn service_peer(&self, peer: Arc<StubPeer>) -> CpuService {
        let layout = self.layout(&["cpu", "cpuset", "pids", "freezer"]);
        CpuService::start_with_peer(layout, &self.state, Box::new(|_| {}), Some(peer)).unwrap()
    }

    fn read(&self, rel: &str) -> String {
        get(&self.base.join(rel)).trim().to_string()
    }
}

fn full_limits() -> CpuLimits {
    CpuLimits {
        shares: Some(512),
        quota_us: Some(Limit::Value(20_000)),
        period_us: Some(50_000),
        burst_us: Some(1_000),
        cpus: Some("0".into()),
        mems: Some("0".into()),
        idle: None,
        pids_max: Some(Limit::Value(5)),
    }
}

fn create(
    svc: &CpuService,
    id: &str,
    parent: Option<&str>,
    limits: CpuLimits,
) -> Result<CpuResponse, Error> {
    svc.request(
        None,
        CpuRequest::Create {
            id: id.into(),
            parent: parent.map(Into::into),
            limits,
        },
    )
}

fn set(svc: &CpuService, id: &str, limits: CpuLimits) -> Result<CpuResponse, Error> {
    svc.request(
        None,
        CpuRequest::Set {
            id: id.into(),
            limits,
        },
    )
}

#[test]
fn create_writes_every_file_and_reads_back() {
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service();
    let CpuResponse::Created(g) = create(&svc, "web", None, full_limits()).unwrap() else {
        panic!()
    };
    // Controllers delegated at the starting cgroup and at the base.
    assert_eq!(
        get(&rig.root.join("cgroup.subtree_control")).trim(),
        "cpu cpuset pids"
    );
    assert_eq!(rig.read("cgroup.controllers"), "cpu cpuset pids");
    assert_eq!(rig.read("cgroup.subtree_control"), "cpu cpuset pids");
    // shares 512 -> weight 59 (crun's conversion)
    assert_eq!(rig.read("web/cpu.weight"), "59");
    assert_eq!(rig.read("web/cpu.max"), "20000 50000");
    assert_eq!(rig.read("web/cpu.max.burst"), "1000");
    assert_eq!(rig.read("web/cpu.idle"), "0");
    assert_eq!(rig.read("web/cpuset.cpus"), "0");
    assert_eq!(rig.read("web/cpuset.mems"), "0");
    assert_eq!(rig.read("web/pids.max"), "5");
    // Read back as asked (shares recovered from the weight).
    let want = CpuLimits {
        idle: Some(false),
        ..full_limits()
    };
    assert_eq!(g.limits, want);
    assert_eq!(g.backend, "cpu=v2 cpuset=v2 pids=v2 freezer=v2");
    assert_eq!(g.paths, vec![rig.base.join("web").display().to_string()]);
}

#[test]
fn defaults_read_back_as_the_kernel_has_them() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    let CpuResponse::Created(g) = create(&svc, "plain", None, CpuLimits::default()).unwrap() else {
        panic!()
    };
    // Nothing written beyond the kernel's defaults.
    assert_eq!(rig.read("plain/cpu.weight"), "100");
    assert_eq!(rig.read("plain/cpu.max"), "max 100000");
    assert_eq!(
        g.limits.shares,
        Some(1024),
        "weight 100 reads as the default shares"
    );
    assert_eq!(g.limits.quota_us, Some(Limit::Max));
    assert_eq!(g.limits.period_us, Some(100_000));
    assert_eq!(g.limits.cpus, None);
    assert_eq!(g.limits.pids_max, Some(Limit::Max));
}

#[test]
fn set_changes_only_what_is_given() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    create(&svc, "web", None, full_limits()).unwrap();
    set(
        &svc,
        "web",
        CpuLimits {
            quota_us: Some(Limit::Max),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("web/cpu.max"), "max 50000", "period kept");
    set(
        &svc,
        "web",
        CpuLimits {
            period_us: Some(100_000),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("web/cpu.max"), "max 100000", "quota kept");
    set(
        &svc,
        "web",
        CpuLimits {
            shares: Some(262_144),
            pids_max: Some(Limit::Max),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("web/cpu.weight"), "10000");
    assert_eq!(rig.read("web/pids.max"), "max");
    assert_eq!(rig.read("web/cpuset.cpus"), "0", "untouched");
    // an idle group takes no shares unless it leaves idle in the same request
    set(
        &svc,
        "web",
        CpuLimits {
            idle: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("web/cpu.idle"), "1");
    let e = set(
        &svc,
        "web",
        CpuLimits {
            shares: Some(100),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(e.message.contains("--idle=false"), "{e}");
}

#[test]
fn idle_group() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    create(
        &svc,
        "bg",
        None,
        CpuLimits {
            idle: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("bg/cpu.idle"), "1");
    let e = set(
        &svc,
        "bg",
        CpuLimits {
            shares: Some(100),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.message.contains("--idle=false") && e.message.contains("--shares"),
        "{e}"
    );
    set(
        &svc,
        "bg",
        CpuLimits {
            idle: Some(false),
            shares: Some(100),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(rig.read("bg/cpu.idle"), "0");
    assert_eq!(rig.read("bg/cpu.weight"), "17");
}

#[test]
fn stat_reads_cpu_stat_pids_and_events() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    create(
        &svc,
        "web",
        None,
        CpuLimits {
            pids_max: Some(Limit::Value(9)),
            ..Default::default()
        },
    )
    .unwrap();
    put(
        &rig.base.join("web/cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 40\nnr_throttled 7\nthrottled_usec 3300\nnr_bursts 0\nburst_usec 0\n",
    );
    put(&rig.base.join("web/pids.current"), "2\n");
    put(&rig.base.join("web/cgroup.procs"), "4242\n4243\n");
    let CpuResponse::Stat(s) = svc
        .request(None, CpuRequest::Stat { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (
            s.usage_us,
            s.user_us,
            s.system_us,
            s.nr_periods,
            s.nr_throttled,
            s.throttled_us
        ),
        (1500, 1000, 500, 40, 7, 3300)
    );
    assert_eq!((s.pids_current, s.pids_max, s.frozen), (2, Some(9), false));
    assert_eq!(s.pids, vec![4242, 4243]);
}

#[test]
fn freeze_and_thaw_wait_for_cgroup_events() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    create(&svc, "web", None, CpuLimits::default()).unwrap();
    assert_eq!(
        svc.request(None, CpuRequest::Freeze { id: "web".into() })
            .unwrap(),
        CpuResponse::Frozen
    );
    assert_eq!(rig.read("web/cgroup.freeze"), "1");
    assert!(rig.read("web/cgroup.events").contains("frozen 1"));
    // A keyed retry is answered from the journal and announced only once.
    let freeze = CpuRequest::Freeze { id: "web".into() };
    svc.request(Some("k-f"), freeze.clone()).unwrap();
    assert_eq!(
        svc.request(Some("k-f"), freeze).unwrap(),
        CpuResponse::Frozen
    );
    assert_eq!(rig.events.lock().unwrap().len(), 2);
    rig.events.lock().unwrap().truncate(1);
    let CpuResponse::Stat(s) = svc
        .request(None, CpuRequest::Stat { id: "web".into() })
        .unwrap()
    else {
        panic!()
    };
    assert!(s.frozen);
    assert_eq!(
        svc.request(None, CpuRequest::Thaw { id: "web".into() })
            .unwrap(),
        CpuResponse::Thawed
    );
    assert_eq!(rig.read("web/cgroup.freeze"), "0");
    let ev = rig.events.lock().unwrap().clone();
    assert_eq!(
        ev,
        vec![
            CpuEvent::FreezeChanged {
                id: "web".into(),
                frozen: true
            },
            CpuEvent::FreezeChanged {
                id: "web".into(),
                frozen: false
            }
        ]
    );
}

#[test]
fn delete_refuses_busy_then_removes_everything() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    create(&svc, "pod", None, CpuLimits::default()).unwrap();
    create(
        &svc,
        "web",
        Some("pod"),
        CpuLimits {
            cpus: Some("0".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rig.read("pod/cgroup.subtree_control"),
        "cpu cpuset pids",
        "parent group delegates"
    );
    assert_eq!(rig.read("pod/web/cpuset.cpus"), "0");
    let e = svc
        .request(
            None,
            CpuRequest::Delete {
                id: "pod".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("web"), "{e}");
    let me = std::process::id().to_string();
    put(&rig.base.join("pod/web/cgroup.procs"), &me);
    let e = svc
        .request(
            None,
            CpuRequest::Delete {
                id: "web".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains(&me), "{e}");
    put(&rig.base.join("pod/web/cgroup.procs"), "");
    svc.request(
        None,
        CpuRequest::Delete {
            id: "web".into(),
            force: false,
        },
    )
    .unwrap();
    svc.request(
        None,
        CpuRequest::Delete {
            id: "pod".into(),
            force: false,
        },
    )
    .unwrap();
    assert!(rig.base.exists(), "the base stays while the server runs");
    libipc::server::Service::shutdown(&svc);
    assert!(
        !rig.base.exists(),
        "a stopping server removes its empty base"
    );
    let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert!(l.is_empty());
}

#[test]
fn create_is_idempotent_and_refuses_a_different_spec() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    let a = create(&svc, "web", None, full_limits()).unwrap();
    let b = create(&svc, "web", None, full_limits()).unwrap();
    assert_eq!(a, b);
    let e = create(
        &svc,
        "web",
        None,
        CpuLimits {
            shares: Some(100),
            ..full_limits()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert!(e.message.contains("web"), "{e}");
}

#[test]
fn bad_input_leaves_nothing() {
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    for id in ["../x", "a/b", "", &"x".repeat(200)] {
        let e = create(&svc, id, None, CpuLimits::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{id}: {e}");
        assert!(e.message.contains("group id"), "{e}");
    }
    let e = create(
        &svc,
        "web",
        None,
        CpuLimits {
            period_us: Some(5),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.message.contains("--period") && e.message.contains('5'),
        "{e}"
    );
    let e = create(
        &svc,
        "web",
        None,
        CpuLimits {
            cpus: Some("99".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        e.message.contains("--cpus") && e.message.contains("99"),
        "{e}"
    );
    let e = create(&svc, "web", Some("nope"), CpuLimits::default()).unwrap_err();
    assert!(e.message.contains("nope"), "{e}");
    let e = svc
        .request(None, CpuRequest::Stat { id: "ghost".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("ghost"), "{e}");
    assert!(!rig.base.exists(), "nothing created");
    let journal = String::from_utf8_lossy(&libipc::journal::on_disk(&rig.state)).into_owned();
    assert!(!journal.contains("web"), "nothing journaled: {journal}");
}

#[test]
fn a_create_failing_midway_removes_what_it_made() {
    let rig = Rig::new("cpuset cpu pids");
    // pids not managed here: the pids limit fails after the dirs were made
    let svc = rig.service_with(&["cpu", "cpuset", "freezer"]);
    let e = create(
        &svc,
        "web",
        None,
        CpuLimits {
            shares: Some(100),
            pids_max: Some(Limit::Value(3)),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("pids"), "{e}");
    assert!(!rig.base.join("web").exists());
    assert!(!rig.base.exists(), "the base made for it is gone too");
}

#[test]
fn missing_controller_is_a_clear_error() {
    let rig = Rig::new("cpu memory");
    let svc = rig.service();
    let e = create(&svc, "web", None, CpuLimits::default()).unwrap_err();
    assert!(
        e.message.contains("cpuset") && e.message.contains("cgroup.controllers"),
        "{e}"
    );
    assert!(!rig.base.exists());
}

#[test]
fn restart_keeps_groups_drops_vanished_and_adopts_strays() {
    let rig = Rig::new("cpuset cpu pids");
    {
        let svc = rig.service();
        create(&svc, "web", None, full_limits()).unwrap();
        create(&svc, "gone", None, CpuLimits::default()).unwrap();
    }
    // While down: someone removes "gone" and makes "stray" with weight 200.
    FakeKernel
        .rmdir(&CgroupDir::new(rig.base.join("gone")))
        .unwrap();
    FakeKernel
        .mkdir(&CgroupDir::new(rig.base.join("stray")))
        .unwrap();
    put(&rig.base.join("stray/cpu.weight"), "200\n");
    std::fs::create_dir(rig.base.join("bad name")).unwrap();
    let svc = rig.service();
    let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    let ids: Vec<&str> = l.iter().map(|g| g.id.as_str()).collect();
    assert_eq!(ids, vec!["stray", "web"]);
    assert_eq!(
        l[1].limits,
        CpuLimits {
            idle: Some(false),
            ..full_limits()
        }
    );
    assert_eq!(
        crate::weight::shares_to_weight(l[0].limits.shares.unwrap()),
        200
    );
    assert!(
        rig.base.join("bad name").exists(),
        "never deletes what it cannot account for"
    );
}

#[test]
fn pending_request_is_finished_once_after_a_crash() {
    let rig = Rig::new("cpuset cpu pids");
    {
        // Simulate a crash between begin and commit of a keyed create.
        let mut j = crate::service::CpuJournal::open(&rig.state).unwrap();
        let req = CpuRequest::Create {
            id: "web".into(),
            parent: None,
            limits: full_limits(),
        };
        j.begin(Some("k-create"), &req).unwrap();
    }
    let svc = rig.service();
    assert_eq!(
        rig.read("web/cpu.max"),
        "20000 50000",
        "re-applied at start"
    );
    // The client's retry with the same key gets the recorded answer...
    let CpuResponse::Created(g) = svc
        .request(
            Some("k-create"),
            CpuRequest::Create {
                id: "web".into(),
                parent: None,
                limits: full_limits(),
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(g.id, "web");
    // ...and a keyed delete retried after it was done is not done twice.
    let del = CpuRequest::Delete {
        id: "web".into(),
        force: false,
    };
    assert_eq!(
        svc.request(Some("k-del"), del.clone()).unwrap(),
        CpuResponse::Deleted
    );
    create(&svc, "web", None, CpuLimits::default()).unwrap();
    assert_eq!(
        svc.request(Some("k-del"), del).unwrap(),
        CpuResponse::Deleted
    );
    assert!(
        rig.base.join("web").exists(),
        "the retry did not delete the new group"
    );
}

#[test]
fn interrupted_create_with_half_made_dirs_is_finished_or_undone() {
    let rig = Rig::new("cpuset cpu pids");
    let begin = |id: &str, limits: CpuLimits| {
        let mut j = crate::service::CpuJournal::open(&rig.state).unwrap();
        let req = CpuRequest::Create {
            id: id.into(),
            parent: None,
            limits,
        };
        j.begin(Some(&format!("k-{id}")), &req).unwrap();
    };
    // Died after mkdir, before writing limits: finished at start.
    begin("half", full_limits());
    {
        let svc = rig.service();
        svc.request(None, CpuRequest::List).unwrap();
    }
    FakeKernel
        .mkdir(&CgroupDir::new(rig.base.join("half2")))
        .unwrap();
    begin(
        "half2",
        CpuLimits {
            shares: Some(2048),
            ..Default::default()
        },
    );
    let svc = rig.service();
    assert_eq!(rig.read("half2/cpu.weight"), "174");
    let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(
        l.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        vec!["half", "half2"]
    );
    // Opening compacts: journal.json is then current.
    let journal = get(crate::service::CpuJournal::open(&rig.state).unwrap().path());
    assert!(journal.contains("\"pending\":null"), "{journal}");
    drop(svc);

    // Died after mkdir, and the redo fails (no pids controller now): undone.
    FakeKernel
        .mkdir(&CgroupDir::new(rig.base.join("doomed")))
        .unwrap();
    begin(
        "doomed",
        CpuLimits {
            pids_max: Some(Limit::Value(4)),
            ..Default::default()
        },
    );
    let svc = rig.service_with(&["cpu", "cpuset", "freezer"]);
    assert!(
        !rig.base.join("doomed").exists(),
        "the half-made group was removed"
    );
    let e = svc
        .request(
            Some("k-doomed"),
            CpuRequest::Create {
                id: "doomed".into(),
                parent: None,
                limits: CpuLimits {
                    pids_max: Some(Limit::Value(4)),
                    ..Default::default()
                },
            },
        )
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Unsupported,
        "the retry gets the recorded failure: {e}"
    );
}

/// memory-controller as a test sets it: the groups it has, or down (None).
struct StubPeer(Mutex<Option<BTreeSet<String>>>);

impl StubPeer {
    fn holding(ids: &[&str]) -> Arc<StubPeer> {
        let ids = ids.iter().map(|s| s.to_string()).collect();
        Arc::new(StubPeer(Mutex::new(Some(ids))))
    }

    fn down() -> Arc<StubPeer> {
        Arc::new(StubPeer(Mutex::new(None)))
    }
}

impl Peer for StubPeer {
    fn has(&self, id: &str) -> PeerHas {
        match &*self.0.lock().unwrap() {
            Some(ids) if ids.contains(id) => PeerHas::Yes,
            Some(_) => PeerHas::No,
            None => PeerHas::Unknown,
        }
    }

    fn groups(&self) -> Option<BTreeSet<String>> {
        self.0.lock().unwrap().clone()
    }
}

fn delete(svc: &CpuService, id: &str) -> Result<CpuResponse, Error> {
    svc.request(
        None,
        CpuRequest::Delete {
            id: id.into(),
            force: false,
        },
    )
}

#[test]
fn shared_delete_keeps_the_directory_memory_still_has_and_resets_ours() {
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service_peer(StubPeer::holding(&["web"]));
    create(&svc, "web", None, full_limits()).unwrap();
    svc.request(None, CpuRequest::Freeze { id: "web".into() })
        .unwrap();
    delete(&svc, "web").unwrap();
    assert!(rig.base.join("web").exists(), "memory still uses it");
    assert_eq!(rig.read("web/cpu.weight"), "100");
    assert_eq!(rig.read("web/cpu.max"), "max 100000");
    assert_eq!(rig.read("web/cpu.max.burst"), "0");
    assert_eq!(rig.read("web/pids.max"), "max");
    assert_eq!(rig.read("web/cpuset.cpus"), "");
    assert_eq!(rig.read("web/cgroup.freeze"), "0");
    assert!(rig.base.exists(), "the shared base stays");
    let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
        panic!()
    };
    assert!(l.is_empty());
}

#[test]
fn shared_delete_removes_the_directory_memory_let_go_of() {
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service_peer(StubPeer::holding(&["other"]));
    create(&svc, "web", None, full_limits()).unwrap();
    delete(&svc, "web").unwrap();
    assert!(!rig.base.join("web").exists());
    assert!(rig.base.exists(), "memory-controller makes its groups here");
}

#[test]
fn shared_delete_keeps_the_directory_when_memory_does_not_answer() {
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service_peer(StubPeer::down());
    create(&svc, "web", None, full_limits()).unwrap();
    delete(&svc, "web").unwrap();
    assert!(rig.base.join("web").exists(), "memory may have it");
    assert_eq!(rig.read("web/cpu.weight"), "100");
}

#[test]
fn shared_start_leaves_memorys_directories_alone() {
    let rig = Rig::new("cpuset cpu io memory pids");
    drop(rig.service_peer(StubPeer::holding(&[])));
    create(&rig.service(), "keep", None, CpuLimits::default()).unwrap();
    for rel in ["memonly", "memonly/inner", "stray"] {
        FakeKernel
            .mkdir(&CgroupDir::new(rig.base.join(rel)))
            .unwrap();
        // delegate as a group that has children would
        put(
            &rig.base.join(rel).join("cgroup.subtree_control"),
            "+cpu +cpuset +pids\n",
        );
    }
    let ids = |svc: &CpuService| -> Vec<String> {
        let CpuResponse::List(l) = svc.request(None, CpuRequest::List).unwrap() else {
            panic!()
        };
        l.into_iter().map(|g| g.id).collect()
    };
    let svc = rig.service_peer(StubPeer::holding(&["memonly", "inner"]));
    assert_eq!(ids(&svc), vec!["keep", "stray"]);
    assert!(rig.base.join("memonly/inner").exists());
    drop(svc);
    // memory-controller down: adopt as before, never destroy.
    let svc = rig.service_peer(StubPeer::down());
    assert_eq!(ids(&svc), vec!["inner", "keep", "memonly", "stray"]);
}

#[test]
fn join_fds_gives_the_one_v2_directory_and_journals_nothing() {
    use crate::service::CpuJournal;
    use cgroupfs::join_testing::{assert_fd_is, ctx};
    use libipc::server::Service;
    use nix::fcntl::OFlag;
    use protocol::cgroup::CgroupJoin;
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service();
    create(&svc, "web", None, full_limits()).unwrap();
    let dir = rig.base.join("web");
    let journal = || std::fs::read(CpuJournal::open(&rig.state).unwrap().path()).unwrap();
    let before = journal();
    for key in [None, Some("j1")] {
        let mut c = ctx(key, vec![]);
        let resp = svc
            .handle(&mut c, CpuRequest::JoinFds { id: "web".into() })
            .unwrap();
        assert_eq!(
            resp,
            CpuResponse::JoinFds(vec![CgroupJoin::V2Dir {
                path: dir.display().to_string()
            }])
        );
        assert_eq!(c.fds_out.len(), 1);
        assert_fd_is(&c.fds_out[0], &dir, OFlag::O_RDONLY, true);
    }
    assert_eq!(journal(), before);
    assert!(CpuJournal::open(&rig.state)
        .unwrap()
        .recorded("j1")
        .is_none());
    // The in-process path has no way to hand fds back: refused, not faked.
    let e = svc
        .request(None, CpuRequest::JoinFds { id: "web".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
}

/// A cgroupsPath on cgroup v2: below the base's parent, each parent made on
/// the way delegating the controllers, the join by the group's directory,
/// the parents removed at the stop.
#[test]
fn create_joinable_at_a_cgroups_path_on_v2() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    let rig = Rig::new("cpuset cpu pids");
    let svc = rig.service();
    let own = rig.base.parent().unwrap().to_path_buf();
    let req = CpuRequest::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/c1".into()),
        limits: full_limits(),
        devices: vec![],
        block_io: None,
    };
    let mut c = ctx(Some("k1"), vec![]);
    let CpuResponse::JoinFds(entries) = svc.handle(&mut c, req).unwrap() else {
        panic!()
    };
    let dir = own.join("pods/c1");
    assert_eq!(
        entries,
        vec![protocol::cgroup::CgroupJoin::V2Dir {
            path: dir.display().to_string()
        }]
    );
    assert_eq!(get(&dir.join("cpu.max")).trim(), "20000 50000");
    assert_eq!(get(&dir.join("pids.max")).trim(), "5");
    for parent in [own.clone(), own.join("pods")] {
        let on = get(&parent.join("cgroup.subtree_control"));
        for ctl in ["cpu", "cpuset", "pids"] {
            assert!(on.contains(ctl), "{}: {on:?}", parent.display());
        }
    }
    svc.request(
        Some("d1"),
        CpuRequest::Delete {
            id: "c1".into(),
            force: false,
        },
    )
    .unwrap();
    assert!(!dir.exists());
    assert!(
        own.join("pods").exists(),
        "parents stay while the server runs"
    );
    svc.shutdown();
    assert!(!own.join("pods").exists());
}

/// blockIO on cgroup v2: the io controller is delegated down to the group,
/// the throttles of a device go to io.max in one line, a weight to
/// io.weight converted from the v1 range; leaf weights are refused.
#[test]
fn block_io_on_v2_goes_to_io_max_and_io_weight() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::cpu::{BlockIo, DeviceRate};
    let rig = Rig::new("cpuset cpu pids io");
    let svc = rig.service_with(&["cpu", "cpuset", "pids", "freezer", "blkio"]);
    let rate = |rate| {
        vec![DeviceRate {
            major: 8,
            minor: 0,
            rate,
        }]
    };
    let req = |id: &str, b: BlockIo| CpuRequest::CreateJoinableAt {
        id: id.into(),
        cgroups_path: None,
        limits: CpuLimits::default(),
        devices: vec![],
        block_io: Some(b),
    };
    let b = BlockIo {
        throttle_read_bps: rate(1 << 20),
        throttle_write_iops: rate(50),
        ..Default::default()
    };
    svc.handle(&mut ctx(Some("k1"), vec![]), req("io", b))
        .unwrap();
    assert!(get(&rig.base.join("cgroup.subtree_control")).contains("io"));
    assert_eq!(rig.read("io/io.max"), "8:0 rbps=1048576 wiops=50");
    let w = BlockIo {
        weight: Some(500),
        ..Default::default()
    };
    svc.handle(&mut ctx(Some("k2"), vec![]), req("w", w))
        .unwrap();
    assert_eq!(rig.read("w/io.weight"), "default 4950");
    let leaf = BlockIo {
        leaf_weight: Some(500),
        ..Default::default()
    };
    let e = svc
        .handle(&mut ctx(Some("k3"), vec![]), req("leaf", leaf))
        .unwrap_err();
    assert!(e.message.contains("leafWeight"), "{e}");
    assert!(
        !rig.base.join("leaf").exists(),
        "a refused create left its group"
    );
    // update: on v2 every group has its io files, one made without
    // blockIO too; the record keeps the settings laid over each other.
    let plain = CpuRequest::CreateJoinableAt {
        id: "plain".into(),
        cgroups_path: None,
        limits: CpuLimits::default(),
        devices: vec![],
        block_io: None,
    };
    svc.handle(&mut ctx(Some("k4"), vec![]), plain).unwrap();
    let set = |id: &str, b: BlockIo| CpuRequest::SetBlockIo {
        id: id.into(),
        block_io: b,
    };
    let more = BlockIo {
        throttle_write_bps: rate(2 << 20),
        ..Default::default()
    };
    svc.handle(&mut ctx(Some("k5"), vec![]), set("plain", more.clone()))
        .unwrap();
    assert_eq!(rig.read("plain/io.max"), "8:0 wbps=2097152");
    svc.handle(&mut ctx(Some("k6"), vec![]), set("w", more))
        .unwrap();
    assert_eq!(rig.read("w/io.max"), "8:0 wbps=2097152");
    let rec = svc.table().get("w").unwrap().block_io.clone().unwrap();
    assert_eq!(rec.weight, Some(500));
    assert_eq!(rec.throttle_write_bps, rate(2 << 20));
    let e = svc
        .handle(
            &mut ctx(Some("k7"), vec![]),
            set(
                "w",
                BlockIo {
                    leaf_weight: Some(300),
                    ..Default::default()
                },
            ),
        )
        .unwrap_err();
    assert!(e.message.contains("leafWeight"), "{e}");
    let e = svc
        .handle(
            &mut ctx(Some("k8"), vec![]),
            set("nope", BlockIo::default()),
        )
        .unwrap_err();
    assert_eq!(e.kind, protocol::ErrorKind::NotFound, "{e}");
}

/// The journal logs what a request changed: one more group costs the same
/// bytes with 60 groups in the table as with none (the whole table was
/// logged before, and grew with every container).
#[test]
fn a_create_journals_the_same_bytes_however_many_groups_there_are() {
    let rig = Rig::new("cpuset cpu io memory pids");
    let svc = rig.service();
    let log = || {
        std::fs::metadata(rig.state.join("journal.log"))
            .unwrap()
            .len()
    };
    let grows = |id: &str| {
        let before = log();
        create(&svc, id, None, full_limits()).unwrap();
        log() - before
    };
    let first = grows("g000");
    for i in 1..60 {
        create(&svc, &format!("g{i:03}"), None, full_limits()).unwrap();
    }
    assert_eq!(grows("g060"), first);
    let j = crate::service::CpuJournal::open(&rig.state).unwrap();
    assert_eq!(j.state().groups.len(), 61, "the log replays to every group");
}
