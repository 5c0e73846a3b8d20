//! The memory-controller as the other owner of a shared cgroup v2 directory.
//!
//! On cgroup v2 a process is in exactly one cgroup, so a container's cpu
//! and memory limits live in the same directory `<base>/ID`, made by
//! whichever server comes first. cpu-controller must then not rmdir it while
//! memory-controller still has the group, nor adopt, on start, the
//! directories memory-controller registered. On v1 the hierarchies are
//! separate and there is no peer.

use libipc::client::{Client, ClientOptions};
use protocol::memory::{Memory, MemoryRequest, MemoryResponse};
use protocol::ErrorKind;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long to wait for the peer: it may be restarting.
const PEER_DEADLINE: Duration = Duration::from_secs(2);

/// Does the peer have a group registered?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerHas {
    Yes,
    No,
    /// The peer did not answer: assume it may.
    Unknown,
}

impl PeerHas {
    /// Only a directory the peer has certainly let go of may be removed.
    pub fn may_rmdir(self) -> bool {
        self == PeerHas::No
    }
}

/// The questions asked of the peer (a trait so tests can answer them).
pub trait Peer: Send + Sync {
    /// Does the peer have group `id`?
    fn has(&self, id: &str) -> PeerHas;
    /// Every group id the peer has; None when it did not answer.
    fn groups(&self) -> Option<BTreeSet<String>>;
}

/// memory-controller over IPC, at `<root>/sockets/memory-controller.sock`.
pub struct MemoryPeer {
    root: PathBuf,
}

impl MemoryPeer {
    pub fn new(root: &Path) -> Self {
        MemoryPeer {
            root: root.to_path_buf(),
        }
    }

    fn client(&self) -> Client<Memory> {
        let opts = ClientOptions {
            deadline: PEER_DEADLINE,
            client_name: "cpu-controller".into(),
            ..Default::default()
        };
        Client::new(&self.root, opts)
    }
}

impl Peer for MemoryPeer {
    fn has(&self, id: &str) -> PeerHas {
        match self
            .client()
            .call(MemoryRequest::Stat { id: id.into() }, None)
        {
            Ok(_) => PeerHas::Yes,
            // NotFound may also be a missing interface file of a group it
            // has: only its list tells the two apart.
            Err(e) if e.kind == ErrorKind::NotFound => match self.groups() {
                Some(ids) if !ids.contains(id) => PeerHas::No,
                Some(_) => PeerHas::Yes,
                None => PeerHas::Unknown,
            },
            Err(e) => {
                tracing::warn!(
                    "cannot ask memory-controller about group {id}: {e}; keeping its cgroup"
                );
                PeerHas::Unknown
            }
        }
    }

    fn groups(&self) -> Option<BTreeSet<String>> {
        match self.client().call(MemoryRequest::List, None) {
            Ok(MemoryResponse::List(l)) => Some(l.into_iter().map(|g| g.id).collect()),
            Ok(other) => {
                tracing::warn!("memory-controller answered List with {other:?}");
                None
            }
            Err(e) => {
                tracing::warn!("cannot ask memory-controller for its groups: {e}; adopting every unknown cgroup");
                None
            }
        }
    }
}
