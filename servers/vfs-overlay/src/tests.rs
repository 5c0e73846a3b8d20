//! The service against the real kernel: real bind mounts under a temporary
//! root (these tests run as root). A fixture unmounts whatever is left under
//! its root before the temporary directories go, even when a test fails.

use crate::mountinfo;
use crate::service::{VfsJournal, VfsService};
use protocol::vfs::{VfsRequest, VfsResponse};
use protocol::ErrorKind;
use std::path::{Path, PathBuf};

struct Fixture {
    // Dropped after `Drop for Fixture` ran: nothing is mounted by then.
    root: tempfile::TempDir,
    bundle: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let bundle = tempfile::tempdir().unwrap();
        std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
        std::fs::write(bundle.path().join("rootfs/hello"), "hi").unwrap();
        Fixture {
            root: tempfile::tempdir().unwrap(),
            bundle,
        }
    }

    fn start(&self) -> VfsService {
        VfsService::start(&self.state_dir(), self.root.path()).unwrap()
    }

    fn state_dir(&self) -> PathBuf {
        self.root.path().join("servers/vfs-overlay")
    }

    fn bundle(&self) -> String {
        self.bundle.path().display().to_string()
    }

    fn containers(&self) -> PathBuf {
        std::fs::canonicalize(self.root.path())
            .unwrap()
            .join("containers")
    }

    fn mount_point(&self, id: &str) -> PathBuf {
        self.containers().join(id).join("rootfs")
    }

    fn prepare(&self, id: &str, root_path: &str, readonly: bool) -> VfsRequest {
        VfsRequest::Prepare {
            id: id.into(),
            bundle: self.bundle(),
            root_path: root_path.into(),
            readonly,
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let c = self.containers();
        let mounts = mountinfo::read().unwrap_or_default();
        for m in mounts.iter().rev() {
            if m.mount_point.starts_with(&c) {
                let _ = rustix::mount::unmount(&m.mount_point, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

fn mounted(p: &Path) -> Option<mountinfo::MountEntry> {
    mountinfo::at(&mountinfo::read().unwrap(), p).cloned()
}

fn prepared(r: VfsResponse) -> String {
    match r {
        VfsResponse::Prepared { rootfs } => rootfs,
        other => panic!("expected Prepared, got {other:?}"),
    }
}

#[test]
fn readonly_prepare_binds_read_only_and_release_undoes_it() {
    let f = Fixture::new();
    let svc = f.start();
    let rootfs = prepared(
        svc.request(Some("k1"), f.prepare("c1", "rootfs", true))
            .unwrap(),
    );
    let target = f.mount_point("c1");
    assert_eq!(Path::new(&rootfs), target);
    let m = mounted(&target).expect("bind in mountinfo");
    assert!(m.readonly() && m.private(), "{m:?}");
    assert_eq!(std::fs::read_to_string(target.join("hello")).unwrap(), "hi");
    let e = std::fs::write(target.join("new"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc_erofs()), "{e}");
    // the source stays writable
    std::fs::write(f.bundle.path().join("rootfs/new"), "x").unwrap();

    // idempotent: same arguments, same answer, one mount
    let again = prepared(svc.request(None, f.prepare("c1", "rootfs", true)).unwrap());
    assert_eq!(again, rootfs);
    let n = mountinfo::read()
        .unwrap()
        .iter()
        .filter(|m| m.mount_point == target)
        .count();
    assert_eq!(n, 1);
    // different arguments: refused
    let e = svc
        .request(None, f.prepare("c1", "rootfs", false))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");

    svc.request(Some("r1"), VfsRequest::Release { id: "c1".into() })
        .unwrap();
    assert!(mounted(&target).is_none());
    assert!(!target.exists() && !f.containers().join("c1").exists());
    // the same key again: the recorded answer; a new call: not found
    assert_eq!(
        svc.request(Some("r1"), VfsRequest::Release { id: "c1".into() }),
        Ok(VfsResponse::Released)
    );
    let e = svc
        .request(None, VfsRequest::Release { id: "c1".into() })
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

fn libc_erofs() -> i32 {
    rustix::io::Errno::ROFS.raw_os_error()
}

#[test]
fn writable_prepare_returns_the_rootfs_and_mounts_nothing() {
    let f = Fixture::new();
    let svc = f.start();
    let rootfs = prepared(svc.request(None, f.prepare("w", "rootfs", false)).unwrap());
    assert_eq!(
        Path::new(&rootfs),
        std::fs::canonicalize(f.bundle.path().join("rootfs")).unwrap()
    );
    assert!(!f.containers().join("w").exists());
    let VfsResponse::List(l) = svc.request(None, VfsRequest::List).unwrap() else {
        panic!()
    };
    assert_eq!(l.len(), 1);
    assert!(!l[0].mounted && !l[0].readonly);
    svc.request(None, VfsRequest::Release { id: "w".into() })
        .unwrap();
    assert!(std::fs::canonicalize(f.bundle.path().join("rootfs/hello")).is_ok());
}

#[test]
fn bad_input_leaves_no_mount_no_dir_and_no_journal_entry() {
    let f = Fixture::new();
    let svc = f.start();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), f.bundle.path().join("escape")).unwrap();
    std::fs::write(f.bundle.path().join("file"), "x").unwrap();
    let journal_before = libipc::journal::on_disk(&f.state_dir());
    for (id, root_path, want) in [
        ("c1", "missing", ErrorKind::NotFound),
        ("c1", "escape", ErrorKind::InvalidArgument),
        ("c1", "file", ErrorKind::InvalidArgument),
        ("../x", "rootfs", ErrorKind::InvalidArgument),
        ("a/b", "rootfs", ErrorKind::InvalidArgument),
    ] {
        let e = svc
            .request(Some("k"), f.prepare(id, root_path, true))
            .unwrap_err();
        assert_eq!(e.kind, want, "{id} {root_path}: {e}");
    }
    let e = svc
        .request(
            None,
            VfsRequest::Prepare {
                id: "c1".into(),
                bundle: "relative".into(),
                root_path: "rootfs".into(),
                readonly: true,
            },
        )
        .unwrap_err();
    assert!(e.message.contains("absolute"), "{e}");
    assert!(!f.containers().join("c1").exists());
    assert!(!f.containers().join("x").exists());
    assert!(mountinfo::read()
        .unwrap()
        .iter()
        .all(|m| !m.mount_point.starts_with(f.containers())));
    assert!(svc.table().rootfs.is_empty());
    let journal_after = libipc::journal::on_disk(&f.state_dir());
    assert_eq!(
        journal_before, journal_after,
        "bad input reached the journal"
    );
}

#[test]
fn unsupported_verbs_say_so() {
    let f = Fixture::new();
    let e = f
        .start()
        .request(
            None,
            VfsRequest::Verb {
                name: "commit".into(),
                args: vec![],
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("commit"), "{e}");
}

#[test]
fn a_prepare_begun_before_a_crash_is_finished_on_start() {
    let f = Fixture::new();
    let req = f.prepare("c2", "rootfs", true);
    {
        // Crash right after `begin`, before the mount.
        let mut j = VfsJournal::open(&f.state_dir()).unwrap();
        j.begin(Some("k2"), &req).unwrap();
    }
    let svc = f.start();
    assert!(mounted(&f.mount_point("c2")).is_some());
    // The client's retry gets the recorded answer.
    let r = prepared(svc.request(Some("k2"), req.clone()).unwrap());
    assert_eq!(Path::new(&r), f.mount_point("c2"));

    // Crash after the mount, before the commit: the bind is finished, not doubled.
    drop(svc);
    {
        let mut j = VfsJournal::open(&f.state_dir()).unwrap();
        j.commit(None, &Ok(VfsResponse::Released), |t| {
            t.rootfs.remove("c2");
        })
        .unwrap();
        j.begin(Some("k3"), &req).unwrap();
    }
    let svc = f.start();
    assert_eq!(svc.table().rootfs.len(), 1);
    let n = mountinfo::read()
        .unwrap()
        .iter()
        .filter(|m| m.mount_point == f.mount_point("c2"))
        .count();
    assert_eq!(n, 1, "the bind was stacked");
    svc.request(None, VfsRequest::Release { id: "c2".into() })
        .unwrap();
}

#[test]
fn start_remakes_lost_binds_drops_dead_ones_and_adopts_strays() {
    let f = Fixture::new();
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir(other.path().join("rootfs")).unwrap();
    let svc = f.start();
    svc.request(None, f.prepare("lost", "rootfs", true))
        .unwrap();
    svc.request(
        None,
        VfsRequest::Prepare {
            id: "dead".into(),
            bundle: other.path().display().to_string(),
            root_path: "rootfs".into(),
            readonly: true,
        },
    )
    .unwrap();
    drop(svc);
    // Behind the server's back: both binds go, one source goes, a stray appears.
    crate::bind::unmount_all(&f.mount_point("lost")).unwrap();
    crate::bind::unmount_all(&f.mount_point("dead")).unwrap();
    std::fs::remove_dir(other.path().join("rootfs")).unwrap();
    let stray = f.mount_point("stray");
    std::fs::create_dir_all(&stray).unwrap();
    crate::bind::mount_readonly(&f.bundle.path().join("rootfs"), &stray).unwrap();

    let svc = f.start();
    let t = svc.table();
    assert!(
        mounted(&f.mount_point("lost")).is_some(),
        "lost bind re-made"
    );
    assert!(!t.rootfs.contains_key("dead"));
    assert!(
        !f.containers().join("dead").exists(),
        "dead mount point removed"
    );
    assert!(t.rootfs["stray"].adopted);
    assert!(
        mounted(&stray).is_some(),
        "a stray is never unmounted on start"
    );
    // An adopted bind of the same rootfs is taken over by a matching prepare.
    let r = prepared(
        svc.request(None, f.prepare("stray", "rootfs", true))
            .unwrap(),
    );
    assert_eq!(Path::new(&r), stray);
    assert!(!svc.table().rootfs["stray"].adopted);
    for id in ["lost", "stray"] {
        svc.request(None, VfsRequest::Release { id: id.into() })
            .unwrap();
        assert!(mounted(&f.mount_point(id)).is_none());
    }
}
