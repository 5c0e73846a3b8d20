//! How a new process joins a container's cgroups by itself.
//!
//! Moving another process into a cgroup (writing its pid to `cgroup.procs`)
//! takes the kernel's global `cgroup_threadgroup_rwsem` for writing, which
//! waits for an RCU grace period: 7 to 15 ms on the hosts we measured, on
//! the path of every container start. Two ways in avoid that lock, and the
//! controllers hand out what each needs (the fds ride beside the message,
//! in the same order as the entries):
//!
//! - cgroup v1: a single-threaded process that writes "0" to a group's
//!   `tasks` file moves itself without the global lock (kernel
//!   `cgroup_procs_write_start`: no lock when migrating `current` alone).
//! - cgroup v2: clone3 with CLONE_INTO_CGROUP creates the process in the
//!   group directly.
//!
//! The controller still decides which group (the fd is opened by the
//! server, for the group it owns), and the kernel checks the permission
//! against the opener's credentials.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupJoin {
    /// An O_WRONLY fd of `<group>/tasks` in the v1 hierarchy named
    /// (its controllers, e.g. "memory" or "cpu"); `path` is the group
    /// directory on the host.
    V1Tasks { hierarchy: String, path: String },
    /// An O_DIRECTORY fd of the v2 group, for CLONE_INTO_CGROUP.
    V2Dir { path: String },
}
