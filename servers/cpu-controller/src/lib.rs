//! cpu-controller: owns the cpu, cpuacct, cpuset, pids and freezer cgroups
//! of a constellation (shares/weight, CFS quota/period/burst, idle, cpus and
//! mems, pids.max, freezing) on cgroup v1, v2 or a hybrid of both.
//!
//! - [`limits`]: input checks with errors that name the flag and value.
//! - [`weight`]: v1 shares <-> v2 weight, as crun converts.
//! - [`layout`]: which hierarchy holds each controller; the group's dirs.
//! - [`v1`], [`v2`], [`common`]: the interface files of each version.
//! - [`group`]: one group across all hierarchies.
//! - [`join`]: JoinFds, the fds a new process joins a group with.
//! - [`table`], [`service`], [`recovery`]: requests, journal, restart.
//! - [`peer`]: memory-controller, which shares our directories on cgroup v2.

pub mod common;
pub mod devices;
pub mod devices_bpf;
pub mod group;
pub mod join;
pub mod layout;
pub mod limits;
pub mod peer;
pub mod recovery;
pub mod service;
pub mod table;
pub mod v1;
pub mod v2;
pub mod weight;

pub use layout::Layout;
pub use service::CpuService;

#[cfg(test)]
mod v1_tests;
#[cfg(test)]
mod v2_tests;
