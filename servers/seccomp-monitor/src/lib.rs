//! seccomp-monitor: OCI seccomp profiles compiled to classic BPF by our own
//! compiler, cached by profile hash, and the seccomp user-notification agent.

pub mod compiler;

pub mod agent;
pub mod cache;
pub mod listeners;
pub mod notif;
pub mod pending;
pub mod service;
pub mod stats;

use libipc::caps::Capability;

/// The capabilities this server keeps (it drops every other one at
/// start): answer the notifications of processes that run as other users (CAP_SYS_PTRACE for their /proc entries, CAP_KILL).
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_KILL,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_SYS_PTRACE,
];
