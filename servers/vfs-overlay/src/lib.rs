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

use libipc::caps::Capability;

/// The capabilities this server keeps (it drops every other one at
/// start): mount (overlay, binds); unpack layers as they are: owners, modes, device nodes and whiteouts, file capabilities and trusted.* xattrs.
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_MKNOD,
    Capability::CAP_SETFCAP,
];
