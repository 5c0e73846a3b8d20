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

pub mod blkio;
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

use libipc::caps::Capability;

/// The capabilities this server keeps (it drops every other one at
/// start): kill what is left in a group; reach files whatever their mode;
/// move another process into a cpuset (the kernel checks it as a change of
/// its scheduling: CAP_SYS_NICE); write v1 devices.allow and devices.deny
/// (the kernel asks for CAP_SYS_ADMIN); load and attach the device rules'
/// eBPF program on cgroup v2 (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON).
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_SYS_NICE,
    Capability::CAP_KILL,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_BPF,
    Capability::CAP_NET_ADMIN,
    Capability::CAP_PERFMON,
];
