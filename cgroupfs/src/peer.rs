//! The other owner of a shared cgroup v2 directory.
//!
//! On cgroup v2 a process is in exactly one cgroup, so a container's memory
//! and cpu limits live in the same directory `<base>/ID`, made by whichever
//! of memory-controller and cpu-controller comes first. Neither may rmdir it
//! while the other still has the group, nor adopt, on start, directories the
//! other registered. On v1 the hierarchies are separate and there is no peer.

use libipc::client::{Client, ClientOptions};
use protocol::cpu::{Cpu, CpuRequest, CpuResponse};
use protocol::memory::{Memory, MemoryRequest, MemoryResponse};
use protocol::{ErrorKind, Protocol};
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

/// How to ask one server about its groups.
pub trait GroupServer: Protocol {
    fn stat(id: &str) -> Self::Request;
    fn list() -> Self::Request;
    /// The group ids in a List answer, None for any other answer.
    fn ids(resp: Self::Response) -> Option<BTreeSet<String>>;
}

impl GroupServer for Memory {
    fn stat(id: &str) -> MemoryRequest {
        MemoryRequest::Stat { id: id.into() }
    }
    fn list() -> MemoryRequest {
        MemoryRequest::List
    }
    fn ids(resp: MemoryResponse) -> Option<BTreeSet<String>> {
        match resp {
            MemoryResponse::List(l) => Some(l.into_iter().map(|g| g.id).collect()),
            _ => None,
        }
    }
}

impl GroupServer for Cpu {
    fn stat(id: &str) -> CpuRequest {
        CpuRequest::Stat { id: id.into() }
    }
    fn list() -> CpuRequest {
        CpuRequest::List
    }
    fn ids(resp: CpuResponse) -> Option<BTreeSet<String>> {
        match resp {
            CpuResponse::List(l) => Some(l.into_iter().map(|g| g.id).collect()),
            _ => None,
        }
    }
}

/// The peer server over IPC, at `<root>/sockets/<P::NAME>.sock`.
pub struct IpcPeer<P> {
    root: PathBuf,
    _p: std::marker::PhantomData<fn() -> P>,
}

impl<P: GroupServer> IpcPeer<P> {
    pub fn new(root: &Path) -> Self {
        IpcPeer {
            root: root.to_path_buf(),
            _p: std::marker::PhantomData,
        }
    }

    fn client(&self) -> Client<P> {
        let opts = ClientOptions {
            deadline: PEER_DEADLINE,
            client_name: "peer".into(),
            ..Default::default()
        };
        Client::new(&self.root, opts)
    }
}

impl<P: GroupServer> Peer for IpcPeer<P> {
    fn has(&self, id: &str) -> PeerHas {
        match self.client().call(P::stat(id), None) {
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
                    "cannot ask {} about group {id}: {e}; keeping its cgroup",
                    P::NAME
                );
                PeerHas::Unknown
            }
        }
    }

    fn groups(&self) -> Option<BTreeSet<String>> {
        match self.client().call(P::list(), None) {
            Ok(resp) => {
                let ids = P::ids(resp);
                if ids.is_none() {
                    tracing::warn!("{} answered List with something else", P::NAME);
                }
                ids
            }
            Err(e) => {
                tracing::warn!(
                    "cannot ask {} for its groups: {e}; adopting every unknown cgroup",
                    P::NAME
                );
                None
            }
        }
    }
}
