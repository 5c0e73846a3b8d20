//! netstack: container networking. For now: bringing `lo` up inside a
//! container's network namespace; veth, bridge, addresses and NAT come with
//! their own issue.

use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Net;
impl Protocol for Net {
    const NAME: &'static str = "netstack";
    type Request = NetRequest;
    type Response = NetResponse;
    type Event = NetEvent;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetRequest {
    /// Any verb not built yet, by name; answered with `Unsupported`. Variant
    /// 0 on purpose: it encodes exactly like
    /// `placeholder::PendingRequest::Verb`.
    Verb {
        name: String,
        args: Vec<String>,
    },
    /// Brings `lo` up in the network namespace passed as the one file
    /// descriptor of this request (SCM_RIGHTS; `/proc/PID/ns/net` of the
    /// container's process). Idempotent per id and namespace.
    Loopback {
        id: String,
    },
    /// Forgets the container (its namespace dies with its last process).
    Release {
        id: String,
    },
    List,
    /// A network namespace for container `id`: a fresh one with `lo`
    /// already up, taken from the pool netstack keeps ready (or made on
    /// the spot when the pool is empty). Its fd rides along with the
    /// answer; netstack keeps its own until `Release`. Idempotent per id.
    Claim {
        id: String,
    },
    /// `linux.netDevices`: moves host network devices into the namespace
    /// netstack holds for `id` (from `Claim`), each renamed if asked, with
    /// its permanent global addresses, and up. A retry finds them moved.
    MoveDevices {
        id: String,
        devices: Vec<NetDevice>,
    },
}

/// One `linux.netDevices` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDevice {
    /// Its name on the host (the entry's key).
    pub host_name: String,
    /// Its name in the container; a trailing `%d` lets the kernel number it.
    pub name: Option<String>,
}

/// A container whose loopback the server brought up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetLoopback {
    pub id: String,
    /// The namespace as the kernel names it: `net:[INODE]`.
    pub netns: String,
    /// `lo`'s interface index and flags (IFF_*) as read back after bringing it up.
    pub ifindex: u32,
    pub flags: u32,
    pub at_unix_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetResponse {
    LoopbackUp(NetLoopback),
    Released,
    List(Vec<NetLoopback>),
    /// The answer to `Claim`, with the namespace's fd.
    Claimed(NetLoopback),
    /// The answer to `MoveDevices`: the devices' names in the container.
    Moved(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetEvent {}
