//! The service against the real kernel: network namespaces made by
//! `unshare --net sleep 60` children (these tests run as root), killed by
//! pid when the test ends, even when it fails.

use crate::enter::in_netns;
use crate::rtnl::{LinkState, Rtnl};
use crate::service::{NetJournal, NetService};
use protocol::net::{NetRequest, NetResponse};
use protocol::ErrorKind;
use std::os::fd::OwnedFd;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A process alone in a new network namespace.
struct NetnsProc(Child);

impl NetnsProc {
    fn start() -> NetnsProc {
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let child = Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .expect("spawn unshare (util-linux)");
        let p = NetnsProc(child);
        // unshare(1) unshares, then execs sleep: wait for the first step.
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(p.ns_path()).ok().as_ref() == Some(&own) {
            assert!(Instant::now() < until, "unshare --net did not unshare");
            std::thread::sleep(Duration::from_millis(5));
        }
        p
    }

    fn ns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }

    fn fd(&self) -> OwnedFd {
        std::fs::File::open(self.ns_path()).unwrap().into()
    }

    fn lo(&self) -> LinkState {
        in_netns(self.fd(), || Rtnl::open()?.get("lo")).unwrap()
    }

    fn ino(&self) -> String {
        std::fs::read_link(self.ns_path())
            .unwrap()
            .display()
            .to_string()
    }
}

impl Drop for NetnsProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn loopback(
    svc: &NetService,
    key: Option<&str>,
    id: &str,
    fds: Vec<OwnedFd>,
) -> Result<NetResponse, protocol::Error> {
    svc.request(key, NetRequest::Loopback { id: id.into() }, fds)
}

#[test]
fn loopback_comes_up_in_the_containers_namespace_only() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start(dir.path()).unwrap();
    let ns = NetnsProc::start();
    assert!(!ns.lo().up(), "a new namespace starts with lo down");
    let host_lo = in_netns(
        std::fs::File::open("/proc/self/ns/net").unwrap().into(),
        || Rtnl::open()?.get("lo"),
    )
    .unwrap();

    let NetResponse::LoopbackUp(l) = loopback(&svc, Some("k1"), "c1", vec![ns.fd()]).unwrap()
    else {
        panic!()
    };
    let lo = ns.lo();
    assert!(lo.up());
    assert_eq!((l.ifindex, l.flags), (lo.index, lo.flags));
    assert_eq!(l.netns, ns.ino());
    // the host's lo is as it was
    let host_after = in_netns(
        std::fs::File::open("/proc/self/ns/net").unwrap().into(),
        || Rtnl::open()?.get("lo"),
    )
    .unwrap();
    assert_eq!(host_lo, host_after);

    // idempotent for the same namespace; another namespace under the same id is refused
    loopback(&svc, None, "c1", vec![ns.fd()]).unwrap();
    let other = NetnsProc::start();
    let e = loopback(&svc, None, "c1", vec![other.fd()]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(!other.lo().up());

    let NetResponse::List(list) = svc.request(None, NetRequest::List, vec![]).unwrap() else {
        panic!()
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, "c1");

    svc.request(Some("r1"), NetRequest::Release { id: "c1".into() }, vec![])
        .unwrap();
    assert_eq!(
        svc.request(Some("r1"), NetRequest::Release { id: "c1".into() }, vec![]),
        Ok(NetResponse::Released)
    );
    let e = svc
        .request(None, NetRequest::Release { id: "c1".into() }, vec![])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

#[test]
fn anything_but_one_container_netns_fd_is_refused_and_not_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start(dir.path()).unwrap();
    let journal = || libipc::journal::on_disk(dir.path());
    let before = journal();
    let file: OwnedFd = std::fs::File::open("/proc/version").unwrap().into();
    let e = loopback(&svc, Some("k"), "c1", vec![file]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("not a network namespace"), "{e}");
    let uts: OwnedFd = std::fs::File::open("/proc/self/ns/uts").unwrap().into();
    let e = loopback(&svc, Some("k"), "c1", vec![uts]).unwrap_err();
    assert!(e.message.contains("uts namespace"), "{e}");
    let host: OwnedFd = std::fs::File::open("/proc/self/ns/net").unwrap().into();
    let e = loopback(&svc, Some("k"), "c1", vec![host]).unwrap_err();
    assert!(e.message.contains("host"), "{e}");
    let e = loopback(&svc, Some("k"), "c1", vec![]).unwrap_err();
    assert!(e.message.contains("exactly one file descriptor"), "{e}");
    let ns = NetnsProc::start();
    let e = loopback(&svc, Some("k"), "c1", vec![ns.fd(), ns.fd()]).unwrap_err();
    assert!(e.message.contains("2 arrived"), "{e}");
    let e = loopback(&svc, Some("k"), "../x", vec![ns.fd()]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = svc
        .request(None, NetRequest::List, vec![ns.fd()])
        .unwrap_err();
    assert!(e.message.contains("only loopback"), "{e}");
    let e = svc
        .request(
            None,
            NetRequest::Verb {
                name: "veth".into(),
                args: vec![],
            },
            vec![],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(!ns.lo().up());
    assert!(svc.table().loopbacks.is_empty());
    assert_eq!(before, journal(), "bad input reached the journal");
}

#[test]
fn the_table_survives_a_restart_and_interrupted_requests_are_settled() {
    let dir = tempfile::tempdir().unwrap();
    let ns = NetnsProc::start();
    {
        let svc = NetService::start(dir.path()).unwrap();
        loopback(&svc, Some("k1"), "c1", vec![ns.fd()]).unwrap();
        loopback(&svc, Some("k2"), "c2", vec![ns.fd()]).unwrap();
    }
    {
        // Crash after `begin` of a release.
        let mut j = NetJournal::open(dir.path()).unwrap();
        j.begin(Some("r2"), &NetRequest::Release { id: "c2".into() })
            .unwrap();
    }
    let svc = NetService::start(dir.path()).unwrap();
    let t = svc.table();
    assert!(t.loopbacks.contains_key("c1"));
    assert!(
        !t.loopbacks.contains_key("c2"),
        "the interrupted release was finished"
    );
    assert_eq!(
        svc.request(Some("r2"), NetRequest::Release { id: "c2".into() }, vec![]),
        Ok(NetResponse::Released)
    );
    drop(svc);
    {
        // Crash after `begin` of a loopback: dropped unrecorded, so the retry does it.
        let mut j = NetJournal::open(dir.path()).unwrap();
        j.begin(Some("k3"), &NetRequest::Loopback { id: "c3".into() })
            .unwrap();
    }
    let svc = NetService::start(dir.path()).unwrap();
    assert!(!svc.table().loopbacks.contains_key("c3"));
    loopback(&svc, Some("k3"), "c3", vec![ns.fd()]).unwrap();
    assert!(svc.table().loopbacks.contains_key("c3"));
}
