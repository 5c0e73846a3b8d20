//! JoinFds: see [`cgroupfs::join`], shared with cpu-controller.

pub use cgroupfs::join::{needs_ctx, open, refuse_fds_in};
