//! init: the supervisor of the constellation (and, with the next issue, the
//! OCI lifecycle), plus the library behind the `ipc` CLI.

// The allocator of `ipc` (a GlobalAlloc is unsafe to implement).
#[allow(unsafe_code)]
pub mod arena;
pub mod cli;
pub mod config;
pub mod control;
pub mod hooks;
pub mod launcher;
pub mod lifecycle;
pub mod root;
pub mod supervisor;
