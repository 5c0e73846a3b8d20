//! init: the supervisor's own requests (status now; the OCI lifecycle later).

use crate::cpu::{CpuLimits, CpuStat};
use crate::memory::{MemoryLimits, MemoryStat};
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
    // --- the OCI lifecycle (appended with the lifecycle issue) ---
    /// `create`, step 1: record the container (status "creating"), have the
    /// controllers make its groups and vfs-overlay prepare its rootfs.
    /// `creator_pid` is the `ipc create` process: if it dies before
    /// `MarkCreated`, init rolls the container back.
    Register {
        id: String,
        bundle: String,
        config_json: String,
        creator_pid: i32,
    },
    /// `create`, step 2: the container process exists; attach it to its
    /// groups. With `netns` one fd rides along: its network namespace, for
    /// netstack to bring loopback up in.
    AttachPid {
        id: String,
        pid: i32,
        netns: bool,
    },
    /// `create`, step 3: the process waits on the exec fifo.
    MarkCreated {
        id: String,
        pid: i32,
    },
    /// `create` failed midway: undo everything made for `id`.
    Abort {
        id: String,
        reason: String,
    },
    Start {
        id: String,
    },
    State {
        id: String,
    },
    List,
    Kill {
        id: String,
        signal: i32,
        all: bool,
    },
    /// May carry one fd: the caller's hold on the container's mount
    /// namespace (`ipc run`), which init closes after it has answered, so
    /// that the namespace's teardown does not delay the answer.
    Delete {
        id: String,
        force: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Update {
        id: String,
        memory: Option<MemoryLimits>,
        cpu: Option<CpuLimits>,
    },
    /// Pids of every process in the container.
    Pids {
        id: String,
    },
    Stats {
        id: String,
    },
    /// `run --detach`: init launches the container itself (so it is init's
    /// to reap) with the caller's stdin, stdout and stderr (3 fds attached).
    RunDetached {
        id: String,
        bundle: String,
        pid_file: Option<String>,
        console_socket: Option<String>,
        no_pivot: bool,
        no_new_keyring: bool,
        preserve_fds: u32,
    },
    /// `create`, after launch: the container's seccomp listener rides
    /// along (1 fd). init keeps a duplicate (the fd store) and hands it to
    /// linux.seccomp.listenerPath or to seccomp-monitor.
    SeccompListener {
        id: String,
    },
    /// `create`, step 1, the fast way (replaces Register + AttachPid):
    /// as Register, and the answer also carries what the new process needs
    /// to join its groups by itself and, when the config asks for a new
    /// network namespace, one from netstack's pool with loopback up. The
    /// pid is then first given with MarkCreated.
    Prepare {
        id: String,
        bundle: String,
        config_json: String,
        creator_pid: i32,
        /// `run` in the foreground: the creator releases the process
        /// itself and reports it with MarkRunning, so no exec fifo is made.
        start_gate: bool,
    },
    /// `run` in the foreground, in place of MarkCreated + Start: the
    /// process was set up and its creator (`ipc run`, its parent) has
    /// released it itself, without the exec fifo. The container goes from
    /// creating to running; poststart hooks run before the answer.
    MarkRunning {
        id: String,
        pid: i32,
    },
    /// `update` of `linux.resources.blockIO` (cpu-controller's SetBlockIo).
    UpdateBlockIo {
        id: String,
        block_io: crate::cpu::BlockIo,
    },
}

/// The OCI state of a container (runtime.md "State"), plus what runc's
/// `state` prints besides (rootfs, created, owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    /// creating, created, running, stopped, or paused.
    pub status: String,
    /// 0 once stopped.
    pub pid: i32,
    pub bundle: String,
    pub rootfs: String,
    /// RFC 3339.
    pub created: String,
    pub owner: String,
    pub annotations: Vec<(String, String)>,
    /// Known when init reaped the process (containers it started).
    pub exit_status: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub memory: Option<MemoryStat>,
    pub cpu: Option<CpuStat>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitResponse {
    Constellation(ConstellationStatus),
    ShuttingDown,
    /// `seccomp`: linux.seccomp compiled by seccomp-monitor, for the
    /// launcher to install.
    Registered {
        rootfs: String,
        seccomp: Option<crate::seccomp::Program>,
    },
    Done,
    State(ContainerState),
    Containers(Vec<ContainerState>),
    Pids(Vec<i32>),
    Stats(Box<ContainerStats>),
    /// The answer to Prepare. fds ride along: one per `joins` entry, in
    /// order, then the network namespace when `netns` is true.
    Prepared {
        rootfs: String,
        seccomp: Option<crate::seccomp::Program>,
        joins: Vec<crate::cgroup::CgroupJoin>,
        netns: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InitEvent {
    ServerStateChanged {
        name: String,
        state: ServerState,
        pid: u32,
        restarts: u64,
    },
    ContainerExited {
        id: String,
        exit_status: Option<i32>,
    },
}
