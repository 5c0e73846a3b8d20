//! cpu-controller as the other owner of a shared cgroup v2 directory
//! (see cgroupfs::peer).

pub use cgroupfs::peer::{Peer, PeerHas};

/// cpu-controller over IPC.
pub type CpuPeer = cgroupfs::peer::IpcPeer<protocol::cpu::Cpu>;
