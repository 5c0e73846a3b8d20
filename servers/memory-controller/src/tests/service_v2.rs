//! The service over the fake v2 tree: requests, idempotency, journal
//! recovery and reconciliation, OOM events through inotify.

use super::fake_v2::{fake_mkdir, fake_rmdir, FakeMount};
use crate::backend::v2::{DirOps, V2};
use crate::service::{MemJournal, MemoryService};
use cgroupfs::CgroupDir;
use protocol::memory::{
    Limit, MemoryEvent, MemoryLimits, MemoryRequest as Req, MemoryResponse as Resp,
};
use protocol::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    mount: FakeMount,
    state: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture {
            mount: FakeMount::new(),
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn start(&self) -> (MemoryService, crossbeam_channel::Receiver<MemoryEvent>) {
        self.start_with(super::fake_v2::OPS)
    }

    fn start_with(&self, ops: DirOps) -> (MemoryService, crossbeam_channel::Receiver<MemoryEvent>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let svc = MemoryService::with_backend(
            Arc::new(V2::with_ops(self.mount.mount(), self.base(), ops)),
            self.state.path(),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .unwrap();
        (svc, rx)
    }

    fn base(&self) -> CgroupDir {
        self.mount.base()
    }
}

fn limit(mib: u64) -> MemoryLimits {
    MemoryLimits {
        limit: Some(Limit::Value(mib << 20)),
        ..Default::default()
    }
}

fn create(id: &str, parent: Option<&str>, l: MemoryLimits) -> Req {
    Req::Create {
        id: id.into(),
        parent: parent.map(Into::into),
        limits: l,
    }
}

#[test]
fn create_set_stat_list_delete() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    let Resp::Created(g) = svc
        .request(Some("k1"), create("web", None, limit(64)))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(g.backend, "v2");
    assert_eq!(g.limits.limit, Some(Limit::Value(64 << 20)));
    assert_eq!(g.path, f.base().child("web").path().display().to_string());
    assert_eq!(
        f.base().child("web").read_string("memory.max").unwrap(),
        (64u64 << 20).to_string()
    );

    let set = Req::Set {
        id: "web".into(),
        limits: limit(128),
        check_before_update: true,
    };
    let Resp::Updated(g) = svc.request(Some("k2"), set).unwrap() else {
        panic!()
    };
    assert_eq!(g.limits.limit, Some(Limit::Value(128 << 20)));
    assert_eq!(
        svc.table().groups["web"].requested.limit,
        Some(Limit::Value(128 << 20))
    );

    std::fs::write(f.base().child("web").file("memory.current"), "5000\n").unwrap();
    let Resp::Stat(st) = svc.request(None, Req::Stat { id: "web".into() }).unwrap() else {
        panic!()
    };
    assert_eq!(
        (st.id.as_str(), st.usage_bytes, st.limit_bytes),
        ("web", 5000, Some(128 << 20))
    );

    let Resp::List(all) = svc.request(None, Req::List).unwrap() else {
        panic!()
    };
    assert_eq!(all.len(), 1);
    assert_eq!(svc.watched(), vec!["web".to_string()]);

    svc.request(
        Some("k3"),
        Req::Delete {
            id: "web".into(),
            force: false,
        },
    )
    .unwrap();
    assert!(!f.base().child("web").exists());
    assert!(svc.table().groups.is_empty());
    assert!(svc.watched().is_empty());
}

#[test]
fn create_is_idempotent_and_refuses_a_different_spec() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(Some("a"), create("g", None, limit(64)))
        .unwrap();
    // same spec, new key: fine
    svc.request(Some("b"), create("g", None, limit(64)))
        .unwrap();
    let e = svc
        .request(Some("c"), create("g", None, limit(32)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists);
    assert!(e.message.contains("\"g\""), "{e}");
    assert_eq!(svc.table().groups["g"].requested, limit(64));
}

#[test]
fn bad_input_leaves_nothing_behind() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    let long = "x".repeat(200);
    for id in ["../x", "a/b", "", long.as_str()] {
        let e = svc
            .request(Some("k"), create(id, None, limit(64)))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{id}: {e}");
        assert!(e.message.contains("group id"), "{e}");
    }
    let e = svc
        .request(Some("k"), create("ok", Some("../up"), limit(64)))
        .unwrap_err();
    assert!(e.message.contains("parent group id"), "{e}");
    let e = svc
        .request(Some("k"), create("ok", Some("nope"), limit(64)))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = svc
        .request(
            Some("k"),
            create(
                "ok",
                None,
                MemoryLimits {
                    swappiness: Some(5),
                    ..Default::default()
                },
            ),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = svc
        .request(None, Req::Stat { id: "ghost".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("ghost"), "{e}");
    assert!(f.base().children().unwrap().is_empty());
    assert!(svc.table().groups.is_empty());
    // and no key was recorded or left pending
    let mut j = MemJournal::open(f.state.path()).unwrap();
    assert!(j.recorded("k").is_none());
    assert!(j.take_pending().is_none());
}

#[test]
fn failed_create_removes_what_it_made() {
    // A kernel without swap accounting: new groups have no memory.swap.max,
    // so a swap limit fails after mkdir, and the group must not stay.
    fn mkdir_no_swap(d: &CgroupDir) -> Result<bool, protocol::Error> {
        let made = fake_mkdir(d)?;
        let _ = std::fs::remove_file(d.file("memory.swap.max"));
        Ok(made)
    }
    let f = Fixture::new();
    let (svc, _) = f.start_with(DirOps {
        mkdir: mkdir_no_swap,
        rmdir: fake_rmdir,
    });
    let l = MemoryLimits {
        limit: Some(Limit::Value(1 << 20)),
        swap: Some(Limit::Value(4 << 20)),
        ..Default::default()
    };
    let e = svc.request(Some("k"), create("g", None, l)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
    assert!(!f.base().child("g").exists());
    assert!(svc.table().groups.is_empty());
    assert!(svc.watched().is_empty());
}

#[test]
fn check_before_update_refuses_a_limit_below_usage() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(None, create("g", None, limit(64))).unwrap();
    std::fs::write(
        f.base().child("g").file("memory.current"),
        format!("{}\n", 40u64 << 20),
    )
    .unwrap();
    let e = svc
        .request(
            Some("k"),
            Req::Set {
                id: "g".into(),
                limits: limit(32),
                check_before_update: true,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("below its current usage"), "{e}");
    assert_eq!(
        f.base()
            .child("g")
            .read_string("memory.max")
            .unwrap()
            .trim(),
        (64u64 << 20).to_string()
    );
    // without the check the kernel gets it
    svc.request(
        Some("k2"),
        Req::Set {
            id: "g".into(),
            limits: limit(32),
            check_before_update: false,
        },
    )
    .unwrap();
    let e = svc
        .request(
            Some("k3"),
            Req::Set {
                id: "g".into(),
                limits: MemoryLimits::default(),
                check_before_update: false,
            },
        )
        .unwrap_err();
    assert!(e.message.contains("changes nothing"), "{e}");
}

#[test]
fn delete_refuses_children_and_processes() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(None, create("pod", None, limit(64))).unwrap();
    svc.request(None, create("web", Some("pod"), limit(32)))
        .unwrap();
    assert!(f.base().child("pod").child("web").exists());
    let e = svc
        .request(
            None,
            Req::Delete {
                id: "pod".into(),
                force: true,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("web"), "{e}");
    std::fs::write(
        f.base().child("pod").child("web").file("cgroup.procs"),
        "4242\n",
    )
    .unwrap();
    let e = svc
        .request(
            None,
            Req::Delete {
                id: "web".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(
        e.message.contains("4242") && e.message.contains("--force"),
        "{e}"
    );
    std::fs::write(f.base().child("pod").child("web").file("cgroup.procs"), "").unwrap();
    svc.request(
        None,
        Req::Delete {
            id: "web".into(),
            force: false,
        },
    )
    .unwrap();
    svc.request(
        None,
        Req::Delete {
            id: "pod".into(),
            force: false,
        },
    )
    .unwrap();
    let e = svc
        .request(
            None,
            Req::Delete {
                id: "pod".into(),
                force: false,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[test]
fn attach_checks_the_pid() {
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(None, create("g", None, limit(64))).unwrap();
    let e = svc
        .request(
            None,
            Req::Attach {
                id: "g".into(),
                pid: -1,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = svc
        .request(
            None,
            Req::Attach {
                id: "g".into(),
                pid: 999_999_999,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("999999999"), "{e}");
    let me = std::process::id() as i32;
    svc.request(
        None,
        Req::Attach {
            id: "g".into(),
            pid: me,
        },
    )
    .unwrap();
    assert_eq!(f.base().child("g").procs().unwrap(), vec![me]);
}

#[test]
fn recovery_reconciles_and_finishes_the_pending_request() {
    let f = Fixture::new();
    {
        let (svc, _) = f.start();
        svc.request(Some("c1"), create("pod", None, limit(64)))
            .unwrap();
        svc.request(Some("c2"), create("web", Some("pod"), limit(32)))
            .unwrap();
        svc.request(Some("c3"), create("gone", None, limit(16)))
            .unwrap();
        svc.request(
            Some("s1"),
            Req::Set {
                id: "web".into(),
                limits: MemoryLimits {
                    reservation: Some(Limit::Value(1 << 20)),
                    ..Default::default()
                },
                check_before_update: false,
            },
        )
        .unwrap();
    }
    // While the server was down: a group vanished, a stray one appeared,
    // and a create was begun but never committed.
    fake_rmdir(&f.base().child("gone")).unwrap();
    fake_mkdir(&f.base().child("stray")).unwrap();
    std::fs::write(f.base().child("stray").file("memory.max"), "1048576\n").unwrap();
    let pending = create("late", Some("pod"), limit(8));
    {
        let mut j = MemJournal::open(f.state.path()).unwrap();
        j.begin(Some("c4"), &pending).unwrap();
    }
    let (svc, _) = f.start();
    let t = svc.table();
    let ids: Vec<&str> = t.groups.keys().map(String::as_str).collect();
    assert_eq!(ids, vec!["late", "pod", "stray", "web"]);
    assert!(t.groups["stray"].adopted);
    assert_eq!(
        t.groups["stray"].requested.limit,
        Some(Limit::Value(1 << 20))
    );
    assert_eq!(
        t.groups["web"].requested.reservation,
        Some(Limit::Value(1 << 20))
    );
    assert!(f.base().child("pod").child("late").exists());
    // The client's retry of the pending create gets the recorded result,
    // and nothing is done twice.
    let Resp::Created(g) = svc.request(Some("c4"), pending).unwrap() else {
        panic!()
    };
    assert_eq!(g.id, "late");
    let Resp::List(all) = svc.request(None, Req::List).unwrap() else {
        panic!()
    };
    assert_eq!(all.len(), 4);
    let web = all.iter().find(|g| g.id == "web").unwrap();
    assert_eq!(web.limits.limit, Some(Limit::Value(32 << 20)));
    assert_eq!(svc.watched(), vec!["late", "pod", "stray", "web"]);
    // A recorded key answers without redoing: delete pod's child "late",
    // then replay its create key: still the recorded "Created", no new dir.
    svc.request(
        Some("d1"),
        Req::Delete {
            id: "late".into(),
            force: false,
        },
    )
    .unwrap();
    svc.request(Some("c4"), create("late", Some("pod"), limit(8)))
        .unwrap();
    assert!(!f.base().child("pod").child("late").exists());
}

#[test]
fn pending_delete_is_finished_on_start() {
    let f = Fixture::new();
    {
        let (svc, _) = f.start();
        svc.request(Some("c1"), create("g", None, limit(64)))
            .unwrap();
    }
    let del = Req::Delete {
        id: "g".into(),
        force: false,
    };
    {
        let mut j = MemJournal::open(f.state.path()).unwrap();
        j.begin(Some("d1"), &del).unwrap();
    }
    // died after rmdir, before commit
    fake_rmdir(&f.base().child("g")).unwrap();
    let (svc, _) = f.start();
    assert!(svc.table().groups.is_empty());
    assert_eq!(svc.request(Some("d1"), del).unwrap(), Resp::Deleted);
}

#[test]
fn oom_events_come_from_memory_events() {
    let f = Fixture::new();
    let (svc, rx) = f.start();
    svc.request(None, create("g", None, limit(64))).unwrap();
    svc.request(None, create("h", None, limit(64))).unwrap();
    let ev = f.base().child("g").file("memory.events");
    // a "max" event alone is not an OOM
    std::fs::write(
        &ev,
        "low 0\nhigh 0\nmax 1\noom 0\noom_kill 0\noom_group_kill 0\n",
    )
    .unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    std::fs::write(
        &ev,
        "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    let MemoryEvent::Oom {
        id,
        oom_events,
        oom_kills,
        ..
    } = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((id.as_str(), oom_events, oom_kills), ("g", 1, 1));
    let Resp::Stat(st) = svc.request(None, Req::Stat { id: "g".into() }).unwrap() else {
        panic!()
    };
    assert_eq!((st.oom_events, st.oom_kills), (1, 1));
    // subscribers filter by id
    use libipc::server::Service;
    let e = MemoryEvent::Oom {
        id: "g".into(),
        oom_events: 1,
        oom_kills: 1,
        at_unix_ms: 0,
    };
    assert!(svc.event_matches("g", &e));
    assert!(!svc.event_matches("h", &e));
}

#[test]
fn join_fds_gives_the_v2_directory_keyed_or_not_and_journals_nothing() {
    use cgroupfs::join_testing::{assert_fd_is, ctx};
    use libipc::server::Service;
    use nix::fcntl::OFlag;
    use protocol::cgroup::CgroupJoin;
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(Some("c1"), create("web", None, limit(64)))
        .unwrap();
    let dir = f.base().child("web");
    let before = std::fs::read(MemJournal::open(f.state.path()).unwrap().path()).unwrap();
    // "c1" is the create's key: JoinFds must not be answered from the journal.
    for key in [None, Some("j1"), Some("c1")] {
        let mut c = ctx(key, vec![]);
        let resp = svc
            .handle(&mut c, Req::JoinFds { id: "web".into() })
            .unwrap();
        assert_eq!(
            resp,
            Resp::JoinFds(vec![CgroupJoin::V2Dir {
                path: dir.path().display().to_string()
            }]),
            "key {key:?}"
        );
        assert_eq!(c.fds_out.len(), 1);
        assert_fd_is(&c.fds_out[0], dir.path(), OFlag::O_RDONLY, true);
    }
    let j = MemJournal::open(f.state.path()).unwrap();
    assert!(j.recorded("j1").is_none());
    assert_eq!(std::fs::read(j.path()).unwrap(), before);
}

#[test]
fn join_fds_refuses_unknown_groups_attached_fds_and_a_call_without_ctx() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    let f = Fixture::new();
    let (svc, _) = f.start();
    svc.request(None, create("web", None, limit(64))).unwrap();

    let mut c = ctx(None, vec![]);
    let e = svc
        .handle(&mut c, Req::JoinFds { id: "nope".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("nope"), "{e}");
    assert!(c.fds_out.is_empty());

    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut c = ctx(None, vec![devnull.into()]);
    let e = svc
        .handle(&mut c, Req::JoinFds { id: "web".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(e.message.contains("takes no file descriptors"), "{e}");
    assert!(c.fds_out.is_empty());

    let e = svc
        .handle(&mut ctx(None, vec![]), Req::JoinFds { id: "../x".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");

    // The in-process path has no way to hand fds back: refused, not faked.
    let e = svc
        .request(None, Req::JoinFds { id: "web".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported, "{e}");
}

/// A cgroupsPath on cgroup v2: the group lands below the base's parent,
/// every parent made on the way delegates memory to its children, the
/// join is by the group's directory, and the parents go at the stop.
#[test]
fn create_joinable_at_a_cgroups_path_on_v2() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::cgroup::CgroupJoin;
    let f = Fixture::new();
    let (svc, _) = f.start();
    let own = CgroupDir::new(f.base().path().parent().unwrap());
    let req = Req::CreateJoinableAt {
        id: "c1".into(),
        cgroups_path: Some("pods/a/c1".into()),
        hugepages: vec![],
        limits: limit(64),
    };
    let mut c = ctx(Some("k1"), vec![]);
    let Resp::JoinFds(entries) = svc.handle(&mut c, req).unwrap() else {
        panic!()
    };
    let dir = own.child("pods").child("a").child("c1");
    assert_eq!(
        entries,
        vec![CgroupJoin::V2Dir {
            path: dir.path().display().to_string()
        }]
    );
    assert_eq!(c.fds_out.len(), 1);
    assert_eq!(
        dir.read_string("memory.max").unwrap().trim(),
        (64u64 << 20).to_string()
    );
    for parent in [own.clone(), own.child("pods"), own.child("pods").child("a")] {
        let on = parent.read_string("cgroup.subtree_control").unwrap();
        assert!(on.contains("memory"), "{}: {on:?}", parent.path().display());
    }
    // Not into the base, not twice.
    let e = svc
        .request(
            Some("k2"),
            Req::CreateJoinableAt {
                id: "c2".into(),
                cgroups_path: Some("asterism-test/x".into()),
                hugepages: vec![],
                limits: limit(64),
            },
        )
        .unwrap_err();
    assert!(e.message.contains("own cgroup"), "{e}");
    let e = svc
        .request(
            Some("k3"),
            Req::CreateJoinableAt {
                id: "c3".into(),
                cgroups_path: Some("pods/a/c1".into()),
                hugepages: vec![],
                limits: limit(64),
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    svc.request(
        Some("d1"),
        Req::Delete {
            id: "c1".into(),
            force: false,
        },
    )
    .unwrap();
    assert!(!dir.exists());
    assert!(
        own.child("pods").exists(),
        "parents stay while the server runs"
    );
    svc.shutdown();
    assert!(!own.child("pods").exists());
}

/// hugepageLimits on cgroup v2: refused while the mount has no hugetlb
/// controller (nothing made); with it, delegated down to the group and
/// written to `hugetlb.<size>.max`.
#[test]
fn hugepage_limits_on_v2() {
    use cgroupfs::join_testing::ctx;
    use libipc::server::Service;
    use protocol::memory::HugepageLimit;
    let f = Fixture::new();
    let (svc, _) = f.start();
    let req = |id: &str| Req::CreateJoinableAt {
        id: id.into(),
        cgroups_path: None,
        limits: limit(64),
        hugepages: vec![HugepageLimit {
            page_size: "2MB".into(),
            limit: 4 << 20,
        }],
    };
    let e = svc
        .handle(&mut ctx(Some("k1"), vec![]), req("h1"))
        .unwrap_err();
    assert!(
        e.message.contains("hugetlb controller is not available"),
        "{e}"
    );
    assert!(!f.base().child("h1").exists());
    let root = f.mount.mount();
    std::fs::write(
        root.join("cgroup.controllers"),
        "cpu io memory pids hugetlb\n",
    )
    .unwrap();
    svc.handle(&mut ctx(Some("k2"), vec![]), req("h2")).unwrap();
    let dir = f.base().child("h2");
    assert_eq!(
        dir.read_string("hugetlb.2MB.max").unwrap().trim(),
        (4u64 << 20).to_string()
    );
    assert!(f
        .base()
        .read_string("cgroup.subtree_control")
        .unwrap()
        .contains("hugetlb"));
    assert_eq!(svc.table().groups["h2"].hugepages.len(), 1);
}
