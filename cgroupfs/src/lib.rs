//! Our own cgroupfs code, shared by memory-controller and cpu-controller.
//!
//! - [`hierarchy`]: where each controller lives on this host (v1 hierarchy or
//!   the unified v2 one) and which cgroup this process is in, per controller.
//!   On a hybrid host every controller is decided on its own.
//! - [`dir`]: one cgroup directory: typed reads and writes of its interface
//!   files with errors that name the file, procs, mkdir/rmdir, killing.
//! - [`base`]: the per-constellation parent directory under the starting
//!   process's own cgroup, remembered across restarts.
//! - [`place`]: where a group named by `linux.cgroupsPath` goes.
//! - [`join`]: the fds a new process uses to join a group by itself
//!   (JoinFds of both controllers).
//! - [`table`]: what both controllers' journal lines hold.

pub mod base;
pub mod dir;
pub mod hierarchy;
pub mod join;
#[cfg(feature = "testing")]
pub mod join_testing;
pub mod peer;
pub mod place;
pub mod table;

pub use base::Base;
pub use dir::CgroupDir;
pub use hierarchy::{Hierarchies, Hierarchy, Version};
pub use place::Places;
