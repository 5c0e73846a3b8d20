//! memory-controller: owns the constellation's memory cgroups.
//!
//! - [`backend`]: cgroup v1 and v2, one trait, chosen per host at start.
//! - [`limits`]: validation and the OCI <-> cgroup conversions.
//! - [`state`]: the journaled table of groups; host paths from ids.
//! - [`reconcile`]: journal + cgroupfs -> table, on start.
//! - [`oom`]: the OOM watcher thread (v1 eventfd, v2 inotify).
//! - [`join`]: JoinFds, the fds a new process joins its group with.
//! - [`peer`]: cpu-controller, which shares our directories on cgroup v2.
//! - [`service`]: the requests.

pub mod backend;
pub mod join;
pub mod limits;
pub mod oom;
pub mod peer;
pub mod reconcile;
pub mod service;
pub mod state;

pub use service::MemoryService;

#[cfg(test)]
mod tests;

use libipc::caps::Capability;

/// The capabilities this server keeps (it drops every other one at
/// start): kill what is left in a group on delete --force (container processes run as other users); reach files whatever their mode.
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_KILL,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
];
