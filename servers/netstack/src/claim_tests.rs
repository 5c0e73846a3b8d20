//! `Claim` against the real kernel (these tests run as root). Every
//! namespace made here lives only as long as an fd of this process, the
//! service's pool thread is stopped when the service is dropped, so nothing
//! outlives a test, even a failing one.

use crate::enter::in_netns;
use crate::netns::{self, NsId};
use crate::rtnl::{LinkState, Rtnl};
use crate::service::NetService;
use libipc::server::{Ctx, PeerCred, Service};
use protocol::net::{NetLoopback, NetRequest, NetResponse};
use protocol::ErrorKind;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn claim(svc: &NetService, id: &str) -> (NetLoopback, OwnedFd) {
    let (resp, mut fds) = svc
        .call(Some("k"), NetRequest::Claim { id: id.into() }, vec![])
        .unwrap_or_else(|e| panic!("claim {id}: {e}"));
    let NetResponse::Claimed(l) = resp else {
        panic!("claim {id} answered {resp:?}")
    };
    assert_eq!(fds.len(), 1, "claim {id} must send exactly one fd");
    (l, fds.pop().unwrap())
}

fn ns_of(fd: &OwnedFd) -> NsId {
    netns::check_net(fd.as_fd()).unwrap()
}

fn lo_in(fd: &OwnedFd) -> LinkState {
    in_netns(fd.try_clone().unwrap(), || Rtnl::open()?.get("lo")).unwrap()
}

fn release(svc: &NetService, id: &str) {
    svc.request(None, NetRequest::Release { id: id.into() }, vec![])
        .unwrap_or_else(|e| panic!("release {id}: {e}"));
}

fn list_ids(svc: &NetService) -> Vec<String> {
    let NetResponse::List(l) = svc.request(None, NetRequest::List, vec![]).unwrap() else {
        panic!()
    };
    l.into_iter().map(|l| l.id).collect()
}

fn journal(dir: &Path) -> Vec<u8> {
    libipc::journal::on_disk(dir)
}

/// Checks a claimed namespace: not the host's, named as the answer says,
/// `lo` up inside as the answer says.
fn check_claimed(l: &NetLoopback, fd: &OwnedFd) {
    let ns = ns_of(fd);
    assert_ne!(
        ns,
        netns::own_net().unwrap(),
        "claimed the host's namespace"
    );
    assert_eq!(l.netns, ns.name());
    let lo = lo_in(fd);
    assert!(lo.up(), "lo is down in the claimed namespace: {lo:?}");
    assert_eq!((l.ifindex, l.flags), (lo.index, lo.flags));
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn claim_hands_out_fresh_namespaces_with_lo_up_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start_with_pool(dir.path(), 2).unwrap();
    assert_eq!(svc.pool().target(), 2);
    wait_until("the pool is full", || svc.pool().ready() == 2);

    let (l1, fd1) = claim(&svc, "c1");
    check_claimed(&l1, &fd1);
    let (l2, fd2) = claim(&svc, "c2");
    check_claimed(&l2, &fd2);
    assert_ne!(ns_of(&fd1), ns_of(&fd2), "two claims, one namespace");
    // More claims than the pool holds: made on the spot.
    let (l3, fd3) = claim(&svc, "c3");
    check_claimed(&l3, &fd3);
    assert_ne!(ns_of(&fd3), ns_of(&fd1));
    assert_ne!(ns_of(&fd3), ns_of(&fd2));

    // A retried claim (its answer lost) gets the very same namespace.
    let (again, fd1b) = claim(&svc, "c1");
    assert_eq!(again, l1);
    assert_eq!(ns_of(&fd1b), ns_of(&fd1));
    assert_eq!(svc.held(), ["c1", "c2", "c3"]);
    assert_eq!(list_ids(&svc), ["c1", "c2", "c3"]);
    wait_until("the pool is refilled", || svc.pool().ready() == 2);

    // Release forgets it; a new claim then gets another namespace.
    release(&svc, "c1");
    assert_eq!(svc.held(), ["c2", "c3"]);
    assert_eq!(list_ids(&svc), ["c2", "c3"]);
    let e = svc
        .request(None, NetRequest::Release { id: "c1".into() }, vec![])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let (l1n, fd1n) = claim(&svc, "c1");
    check_claimed(&l1n, &fd1n);
    assert_ne!(ns_of(&fd1n), ns_of(&fd1), "fd1 still holds the old one");
    for id in ["c1", "c2", "c3"] {
        release(&svc, id);
    }
    assert!(svc.held().is_empty());
    assert!(svc.table().loopbacks.is_empty());
}

#[test]
fn claim_answers_through_the_service_with_the_fd_in_fds_out() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start_with_pool(dir.path(), 1).unwrap();
    let mut ctx = Ctx {
        peer: PeerCred {
            pid: 1,
            uid: 0,
            gid: 0,
        },
        key: Some("k1".into()),
        deadline: None,
        fds_in: vec![],
        fds_out: vec![],
    };
    let resp = svc
        .handle(&mut ctx, NetRequest::Claim { id: "c1".into() })
        .unwrap();
    let NetResponse::Claimed(l) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(ctx.fds_out.len(), 1);
    check_claimed(&l, &ctx.fds_out[0]);
    release(&svc, "c1");
}

#[test]
fn claim_works_over_the_wire_and_the_fd_arrives() {
    use libipc::client::{Client, ClientOptions};
    use libipc::server::{Server, ServerOptions};
    use protocol::net::Net;
    let dir = tempfile::tempdir().unwrap();
    let server =
        Server::<Net>::bind(ServerOptions::new("netstack", dir.path().to_path_buf(), 1)).unwrap();
    // No pool: the server thread outlives the test (libipc's accept loop
    // never returns), and must hold no namespace while it does.
    let svc = NetService::start_with_pool(&server.options().state_dir(), 0).unwrap();
    std::thread::spawn(move || server.serve(svc));
    let mut c = Client::<Net>::new(dir.path(), ClientOptions::default());
    let key = libipc::client::new_key("claim", "c1");
    let (resp, fds) = c
        .call_with_fds(
            NetRequest::Claim { id: "c1".into() },
            Some(key.clone()),
            vec![],
        )
        .unwrap();
    let NetResponse::Claimed(l) = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(fds.len(), 1);
    check_claimed(&l, &fds[0]);
    // The same key again (a retry): the same namespace, with its fd.
    let (again, fds2) = c
        .call_with_fds(NetRequest::Claim { id: "c1".into() }, Some(key), vec![])
        .unwrap();
    assert_eq!(again, NetResponse::Claimed(l));
    assert_eq!(ns_of(&fds2[0]), ns_of(&fds[0]));
    // An fd sent along is refused and comes back as nothing.
    let f: OwnedFd = std::fs::File::open("/proc/self/ns/net").unwrap().into();
    let e = c
        .call_with_fds(NetRequest::Claim { id: "c2".into() }, None, vec![f])
        .unwrap_err();
    assert!(e.message.contains("takes no file descriptor"), "{e}");
    c.call(NetRequest::Release { id: "c1".into() }, None)
        .unwrap();
    let NetResponse::List(l) = c.call(NetRequest::List, None).unwrap() else {
        panic!()
    };
    assert!(l.is_empty(), "{l:?}");
}

/// A process alone in a new network namespace (`unshare --net`).
struct NetnsProc(Child);

impl NetnsProc {
    fn start() -> NetnsProc {
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let child = Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .expect("spawn unshare (util-linux)");
        let p = NetnsProc(child);
        let path = format!("/proc/{}/ns/net", p.0.id());
        wait_until("unshare --net unshared", || {
            std::fs::read_link(&path).ok().as_ref() != Some(&own)
        });
        p
    }

    fn fd(&self) -> OwnedFd {
        std::fs::File::open(format!("/proc/{}/ns/net", self.0.id()))
            .unwrap()
            .into()
    }
}

impl Drop for NetnsProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bad_claims_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start_with_pool(dir.path(), 1).unwrap();
    let before = journal(dir.path());
    for bad in ["", "../x", "a/b", ".."] {
        let e = svc
            .call(Some("k"), NetRequest::Claim { id: bad.into() }, vec![])
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad:?}: {e}");
    }
    let f: OwnedFd = std::fs::File::open("/proc/self/ns/net").unwrap().into();
    let e = svc
        .call(Some("k"), NetRequest::Claim { id: "c1".into() }, vec![f])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("takes no file descriptor"), "{e}");
    assert!(e.message.contains("1 arrived"), "{e}");
    assert!(svc.held().is_empty());
    assert!(svc.table().loopbacks.is_empty());
    assert_eq!(before, journal(dir.path()), "bad input reached the journal");

    // An id whose record is the container's own namespace is refused.
    let ns = NetnsProc::start();
    svc.request(
        None,
        NetRequest::Loopback { id: "own".into() },
        vec![ns.fd()],
    )
    .unwrap();
    let t = svc.table();
    let e = svc
        .call(None, NetRequest::Claim { id: "own".into() }, vec![])
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert!(e.message.contains("release it"), "{e}");
    assert_eq!(svc.table(), t);
    assert!(svc.held().is_empty());

    // A claimed id takes no other namespace through loopback; its own is fine
    // and it stays claimed (the next claim still gets it).
    let (l, fd) = claim(&svc, "c1");
    let e = svc
        .request(
            None,
            NetRequest::Loopback { id: "c1".into() },
            vec![ns.fd()],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    let dup = fd.try_clone().unwrap();
    svc.request(None, NetRequest::Loopback { id: "c1".into() }, vec![dup])
        .unwrap();
    let (again, fd2) = claim(&svc, "c1");
    assert_eq!(again.netns, l.netns);
    assert_eq!(ns_of(&fd2), ns_of(&fd));
    release(&svc, "c1");
    release(&svc, "own");
    assert!(svc.table().loopbacks.is_empty());
}

#[test]
fn without_a_pool_and_across_restarts_claims_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let svc = NetService::start_with_pool(dir.path(), 0).unwrap();
    assert_eq!(svc.pool().ready(), 0);
    let (l1, fd1) = claim(&svc, "c1");
    check_claimed(&l1, &fd1);
    let (_, fd2) = claim(&svc, "c2");
    assert_ne!(ns_of(&fd1), ns_of(&fd2));
    assert_eq!(svc.pool().ready(), 0, "a pool of 0 keeps nothing ready");
    drop(svc);

    // Restarted: the held fds are gone, the records are not (our fd1 and
    // fd2 play the container's processes that keep the namespaces alive).
    let svc = NetService::start_with_pool(dir.path(), 0).unwrap();
    assert!(svc.held().is_empty());
    assert_eq!(list_ids(&svc), ["c1", "c2"]);
    // c2 is released normally without its fd.
    release(&svc, "c2");
    assert_eq!(list_ids(&svc), ["c1"]);
    // c1 claimed again: a fresh namespace replaces the record.
    let (l1n, fd1n) = claim(&svc, "c1");
    check_claimed(&l1n, &fd1n);
    assert_ne!(l1n.netns, l1.netns);
    assert_eq!(svc.held(), ["c1"]);
    assert_eq!(list_ids(&svc), ["c1"]);
    release(&svc, "c1");
    assert!(svc.held().is_empty());
    assert!(svc.table().loopbacks.is_empty());
}

/// MoveDevices on the real kernel, with one end of a veth pair made here
/// (deleted on drop if still on the host): moved under its new name, with
/// its address, up; asked again (a retry after a lost answer), the same
/// answer and nothing done twice; a device nowhere, not found; a container
/// without a claimed namespace, not found.
#[test]
fn move_devices_moves_renames_readdresses_and_is_retried_safely() {
    use protocol::net::NetDevice;
    struct Veth;
    impl Drop for Veth {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["link", "del", "nsvtest0"])
                .output();
        }
    }
    let ip = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let _ = Command::new("ip")
        .args(["link", "del", "nsvtest0"])
        .output();
    ip(&[
        "link", "add", "nsvtest0", "type", "veth", "peer", "name", "nsvtest1",
    ]);
    let _veth = Veth;
    ip(&["addr", "add", "10.254.78.1/24", "dev", "nsvtest0"]);
    let state = tempfile::tempdir().unwrap();
    let svc = NetService::start_with_pool(state.path(), 0).unwrap();
    let (_, ns) = claim(&svc, "mv1");
    let req = || NetRequest::MoveDevices {
        id: "mv1".into(),
        devices: vec![NetDevice {
            host_name: "nsvtest0".into(),
            name: Some("inner0".into()),
        }],
    };
    let want = NetResponse::Moved(vec!["inner0".into()]);
    assert_eq!(svc.request(None, req(), vec![]).unwrap(), want);
    assert!(!Path::new("/sys/class/net/nsvtest0").exists());
    let inside = in_netns(ns.try_clone().unwrap(), || {
        let mut r = Rtnl::open()?;
        let l = r.get("inner0")?;
        Ok((l, r.permanent_global_addresses(l.index)?.len()))
    })
    .unwrap();
    assert!(inside.0.up(), "inner0 is not up");
    assert_eq!(inside.1, 1, "its address did not come along");
    assert_eq!(svc.request(None, req(), vec![]).unwrap(), want, "the retry");
    let nowhere = NetRequest::MoveDevices {
        id: "mv1".into(),
        devices: vec![NetDevice {
            host_name: "nsvnothere".into(),
            name: None,
        }],
    };
    let e = svc.request(None, nowhere, vec![]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("linux.netDevices.nsvnothere"), "{e}");
    let e = svc
        .request(
            None,
            NetRequest::MoveDevices {
                id: "unclaimed".into(),
                devices: vec![],
            },
            vec![],
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    release(&svc, "mv1");
}
