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

pub mod devices;
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

use libipc::caps::Capability;

/// The capabilities this server keeps (it drops every other one at
/// start): make network namespaces and enter them (CAP_SYS_ADMIN), configure links, addresses and nftables in them (CAP_NET_ADMIN, also for `nft`).
pub const CAPABILITIES: &[Capability] = &[
    Capability::CAP_NET_ADMIN,
    Capability::CAP_SYS_ADMIN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
];
