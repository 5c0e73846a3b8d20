//! init: the supervisor's own requests (status now; the OCI lifecycle later).

use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Init;
impl Protocol for Init {
    const NAME: &'static str = "init";
    type Request = InitRequest;
    type Response = InitResponse;
    type Event = InitEvent;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerState {
    /// Spawned, not yet answering hello.
    Starting,
    Running,
    /// Died; waiting out its backoff before the next start.
    Restarting,
    /// Crashed too often in the crash window; no longer restarted.
    Failed,
    /// Stopped on purpose (init is shutting down).
    Stopped,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Starting => "starting",
            ServerState::Running => "running",
            ServerState::Restarting => "restarting",
            ServerState::Failed => "failed",
            ServerState::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEntry {
    pub name: String,
    /// 0 while not running.
    pub pid: u32,
    pub state: ServerState,
    pub restarts: u64,
    pub uptime_ms: u64,
    pub requests: u64,
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConstellationStatus {
    pub init_pid: u32,
    pub init_epoch: u64,
    pub servers: Vec<ServerEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitRequest {
    /// init and every server.
    Constellation,
    /// Stop every server and exit (as SIGTERM does).
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitResponse {
    Constellation(ConstellationStatus),
    ShuttingDown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitEvent {
    ServerStateChanged {
        name: String,
        state: ServerState,
        pid: u32,
        restarts: u64,
    },
}
