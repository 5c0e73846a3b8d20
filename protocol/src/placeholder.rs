//! The servers whose issues have not landed yet: vfs-overlay, netstack and
//! seccomp-monitor answer hello, ping and status (handled by libipc), and any
//! server-specific request with an `Unsupported` error.

use crate::Protocol;
use serde::{Deserialize, Serialize};

/// Requests these servers will grow; for now a single variant so that a client
/// can show the "unsupported" answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingRequest {
    /// Any verb, by name; answered with `Unsupported`.
    Verb { name: String, args: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingResponse {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PendingEvent {}

macro_rules! pending_server {
    ($ty:ident, $name:literal) => {
        pub struct $ty;
        impl Protocol for $ty {
            const NAME: &'static str = $name;
            type Request = PendingRequest;
            type Response = PendingResponse;
            type Event = PendingEvent;
        }
    };
}

pending_server!(VfsOverlay, "vfs-overlay");
pending_server!(Netstack, "netstack");
pending_server!(SeccompMonitor, "seccomp-monitor");
