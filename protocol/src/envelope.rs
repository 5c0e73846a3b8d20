//! The envelope every server speaks.
//!
//! A connection opens with the client's [`ClientHello`]; the server answers
//! `Result<Hello, Error>` (a version mismatch is an `Err` with kind
//! `VersionMismatch`, never a decode failure, because both hello types keep
//! `version` as their first field forever). After that the client sends
//! [`Request`]s and the server sends [`ServerFrame`]s: responses carrying the
//! request's id, and events on subscribed connections.

use crate::Error;
use serde::{Deserialize, Serialize};

/// Bumped whenever a change is not append-only (2: CpuStat and
/// MemoryStat gained the per-CPU times and v1's other memory accounts).
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest message a peer may send; larger ones are refused.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Sent by the client first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// Must stay the first field in every version.
    pub version: u32,
    /// Who is calling, for the server's logs ("ipc", "init", ...).
    pub client: String,
}

/// The server's answer to a good hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Must stay the first field in every version.
    pub version: u32,
    /// The server's name, as in [`crate::Protocol::NAME`].
    pub server: String,
    /// Generation number of this server start; a client that sees it change
    /// knows the server restarted between two calls.
    pub epoch: u64,
    pub pid: u32,
}

/// What a client asks. `Ping`, `Status` and `Subscribe` are answered by the
/// server loop in libipc itself; `Server` carries the server's own enum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call<B> {
    Ping,
    Status,
    /// Turn this connection into an event stream. `filter` is server-defined
    /// (for the controllers: a group id).
    Subscribe {
        filter: Option<String>,
    },
    Server(B),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request<B> {
    /// Chosen by the client; the response carries it back.
    pub id: u64,
    /// Wall-clock deadline in milliseconds since the Unix epoch; 0 = none.
    /// A server that picks the request up after it has passed answers
    /// `Timeout` without doing it.
    pub deadline_unix_ms: u64,
    /// Idempotency key for mutating requests, kept by the same client across
    /// retries; a server that already did the work under this key answers
    /// with the recorded result instead of doing it again.
    pub key: Option<String>,
    /// How many file descriptors ride with this message (SCM_RIGHTS); the
    /// receiver checks the count.
    pub fds: u8,
    pub call: Call<B>,
}

/// A server's health figures, as `ipc status` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub name: String,
    pub pid: u32,
    pub epoch: u64,
    pub uptime_ms: u64,
    /// Requests answered since this start.
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply<R> {
    Pong,
    Status(ServerStatus),
    Subscribed,
    Server(R),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response<R> {
    /// The request's id; 0 when the request could not be decoded at all.
    pub id: u64,
    /// The answering server's epoch.
    pub epoch: u64,
    /// How many file descriptors ride with this message.
    pub fds: u8,
    pub result: Result<Reply<R>, Error>,
}

/// Everything a server sends after the hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerFrame<R, E> {
    Response(Response<R>),
    Event { epoch: u64, event: E },
}
