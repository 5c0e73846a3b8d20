//! memory-controller as the other owner of a shared cgroup v2 directory
//! (see cgroupfs::peer).

pub use cgroupfs::peer::{Peer, PeerHas};

/// memory-controller over IPC.
pub type MemoryPeer = cgroupfs::peer::IpcPeer<protocol::memory::Memory>;
