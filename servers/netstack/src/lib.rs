//! netstack: owns container networking.
//!
//! Built so far (issue 3): bringing `lo` up inside a container's network
//! namespace, which init passes as a file descriptor.
//! - [`netns`]: is this fd really a network namespace, and which one.
//! - [`enter`]: run code inside a namespace on a short-lived thread.
//! - [`rtnl`]: rtnetlink requests (set a link up, read it back).
//! - [`state`]: the journaled table of containers.
//! - [`service`]: the requests.

pub mod enter;
pub mod netns;
pub mod rtnl;
pub mod service;
pub mod state;

pub use service::NetService;

#[cfg(test)]
mod tests;
