//! netstack: owns container networking.
//!
//! Built so far (issue 3): bringing `lo` up inside a container's network
//! namespace, which init passes as a file descriptor, or handing out a
//! fresh namespace with `lo` already up (`Claim`).
//! - [`netns`]: is this fd really a network namespace, and which one.
//! - [`enter`]: run code inside a namespace on a short-lived thread.
//! - [`pool`]: the warm pool of fresh namespaces.
//! - [`rtnl`]: rtnetlink requests (set a link up, read it back).
//! - [`state`]: the journaled table of containers.
//! - [`service`]: the requests.

pub mod enter;
pub mod netns;
pub mod pool;
pub mod rtnl;
pub mod service;
pub mod state;

pub use service::NetService;

#[cfg(test)]
mod claim_tests;
#[cfg(test)]
mod tests;
