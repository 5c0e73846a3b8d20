//! libipc: how asterism's processes talk.
//!
//! - [`wire`]: SOCK_SEQPACKET sockets, one message per datagram with a size
//!   cap, file descriptors (SCM_RIGHTS) received straight into `OwnedFd`s
//!   with their count checked, and the peer's credentials (SO_PEERCRED).
//! - [`server`]: the server loop every server runs: threads that each
//!   accept a connection and serve it, running its requests' handlers
//!   ([`acceptors`]), hello and version check, peer check, deadlines,
//!   ping/status/subscribe, events.
//! - [`client`]: deadlines, retry of "unavailable" with reconnects across a
//!   server restart, idempotency keys, subscriptions.
//! - [`journal`]: a server's small durable table plus the results of recent
//!   keyed requests, so a retried request is applied exactly once.
//! - [`rows`]: a table's rows by key, which remember what changed so that
//!   the journal logs only that.
//! - [`epoll_map`]: file descriptors watched by key in one epoll set.

pub mod acceptors;
pub mod caps;
pub mod client;
pub mod epoll_map;
pub mod journal;
pub mod rows;
pub mod server;
pub mod wire;

use std::path::{Path, PathBuf};

/// Default constellation root.
pub const DEFAULT_ROOT: &str = "/run/asterism";

/// The stack of the threads that handle requests. They parse configs with
/// oci-spec, which compiles regexes on first use: 256 KiB overflowed in a
/// debug build (and crashed init on a config with execCPUAffinity). Stack
/// pages a thread never touches cost no memory, so this is the usual 2 MiB.
pub const THREAD_STACK: usize = 2 << 20;

/// `<root>/sockets/<name>.sock`
pub fn socket_path(root: &Path, name: &str) -> PathBuf {
    root.join("sockets").join(format!("{name}.sock"))
}

/// `<root>/servers/<name>`: a server's journal and pid file.
pub fn state_dir(root: &Path, name: &str) -> PathBuf {
    root.join("servers").join(name)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
pub use client::{Client, ClientOptions, Subscription};
pub use server::{Ctx, Events, PeerCred, Server, ServerOptions, Service};
