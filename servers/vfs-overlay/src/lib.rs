//! vfs-overlay: owns container root filesystems.
//!
//! Built so far (issue 3): the bundle rootfs check and `root.readonly`.
//! - [`resolve`]: bundle + root.path -> the host rootfs, with the checks.
//! - [`mountinfo`]: the kernel's mount table (/proc/self/mountinfo).
//! - [`bind`]: the read-only, private, recursive bind mount and its undoing.
//! - [`state`]: the journaled table of prepared rootfs; host paths from ids.
//! - [`reconcile`]: journal + mountinfo -> table, on start.
//! - [`service`]: the requests.

pub mod bind;
pub mod mountinfo;
pub mod reconcile;
pub mod resolve;
pub mod service;
pub mod state;

pub use service::VfsService;

#[cfg(test)]
mod tests;
