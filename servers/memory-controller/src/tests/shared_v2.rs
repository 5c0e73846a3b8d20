//! On cgroup v2 memory-controller and cpu-controller keep group ID in the
//! same directory `<base>/ID`. With a stand-in for cpu-controller: delete
//! removes the directory only once the peer has let go of the group, and
//! start does not adopt the peer's directories.

use super::fake_v2::{fake_mkdir, FakeMount, OPS};
use crate::backend::v2::V2;
use crate::peer::{Peer, PeerHas};
use crate::service::MemoryService;
use protocol::memory::{Limit, MemoryLimits, MemoryRequest as Req};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// cpu-controller as the test sets it: the groups it has, or down (None).
struct StubPeer(Mutex<Option<BTreeSet<String>>>);

impl StubPeer {
    fn holding(ids: &[&str]) -> Arc<StubPeer> {
        let ids = ids.iter().map(|s| s.to_string()).collect();
        Arc::new(StubPeer(Mutex::new(Some(ids))))
    }

    fn down() -> Arc<StubPeer> {
        Arc::new(StubPeer(Mutex::new(None)))
    }

    fn release(&self, id: &str) {
        if let Some(ids) = self.0.lock().unwrap().as_mut() {
            ids.remove(id);
        }
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

    fn start(&self, peer: Arc<StubPeer>) -> MemoryService {
        let backend = Arc::new(V2::with_ops(self.mount.mount(), self.mount.base(), OPS));
        MemoryService::with_peer(backend, self.state.path(), Box::new(|_| {}), Some(peer)).unwrap()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.mount.base().path().join(rel))
            .unwrap()
            .trim()
            .to_string()
    }
}

fn create(svc: &MemoryService, id: &str, parent: Option<&str>) {
    let limits = MemoryLimits {
        limit: Some(Limit::Value(64 << 20)),
        reservation: Some(Limit::Value(16 << 20)),
        swap: Some(Limit::Value(128 << 20)),
        ..Default::default()
    };
    let req = Req::Create {
        id: id.into(),
        parent: parent.map(Into::into),
        limits,
    };
    svc.request(None, req).unwrap();
}

fn delete(svc: &MemoryService, id: &str) {
    let req = Req::Delete {
        id: id.into(),
        force: false,
    };
    svc.request(None, req).unwrap();
}

#[test]
fn delete_keeps_the_directory_the_peer_still_has_and_resets_ours() {
    let f = Fixture::new();
    let peer = StubPeer::holding(&["web"]);
    let svc = f.start(peer.clone());
    create(&svc, "web", None);
    assert_eq!(f.read("web/memory.max"), (64u64 << 20).to_string());
    // cpu-controller's child group of web: not ours, and not in our way.
    fake_mkdir(&f.mount.base().child("web").child("cpuchild")).unwrap();
    delete(&svc, "web");
    assert!(f.mount.base().child("web").exists(), "cpu still uses it");
    assert_eq!(f.read("web/memory.max"), "max");
    assert_eq!(f.read("web/memory.low"), "0");
    assert_eq!(f.read("web/memory.swap.max"), "max");
    assert!(!svc.table().groups.contains_key("web"));
    assert!(svc.watched().is_empty());
}

#[test]
fn delete_removes_the_directory_once_the_peer_let_go() {
    let f = Fixture::new();
    let peer = StubPeer::holding(&["web"]);
    let svc = f.start(peer.clone());
    create(&svc, "web", None);
    peer.release("web");
    delete(&svc, "web");
    assert!(!f.mount.base().child("web").exists());
}

#[test]
fn delete_keeps_the_directory_when_the_peer_does_not_answer() {
    let f = Fixture::new();
    let svc = f.start(StubPeer::down());
    create(&svc, "web", None);
    delete(&svc, "web");
    assert!(f.mount.base().child("web").exists(), "the peer may have it");
    assert_eq!(f.read("web/memory.max"), "max");
    assert!(!svc.table().groups.contains_key("web"));
}

#[test]
fn start_leaves_the_peers_directories_alone() {
    let f = Fixture::new();
    let base = f.mount.base();
    drop(f.start(StubPeer::holding(&[])));
    fake_mkdir(&base.child("cpuonly")).unwrap();
    fake_mkdir(&base.child("cpuonly").child("inner")).unwrap();
    fake_mkdir(&base.child("stray")).unwrap();
    let svc = f.start(StubPeer::holding(&["cpuonly", "inner"]));
    let ids: Vec<String> = svc.table().groups.keys().cloned().collect();
    assert_eq!(ids, vec!["stray".to_string()]);
    assert!(base.child("cpuonly").child("inner").exists());
    drop(svc);
    // cpu-controller down: adopt as before, never destroy.
    let svc = f.start(StubPeer::down());
    let ids: Vec<String> = svc.table().groups.keys().cloned().collect();
    assert_eq!(ids, vec!["cpuonly", "inner", "stray"]);
}
