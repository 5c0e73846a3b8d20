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
