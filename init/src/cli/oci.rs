//! The runc-compatible commands: same arguments, flags, output and exit
//! codes as runc 1.1, so that containerd's shim and podman's conmon can use
//! `ipc` as their runtime.

use super::{create, inspect, manage};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum OciCmd {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start { id: String },
    /// The container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to the container's init process.
    Kill {
        id: String,
        /// Name (KILL, SIGKILL) or number.
        signal: Option<String>,
        /// Send the signal to every process in the container.
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container and everything made for it.
    Delete {
        id: String,
        /// Kill it first if it is still running.
        #[arg(short, long)]
        force: bool,
    },
    /// Create and start a container; without --detach, wait and exit with its code.
    Run(RunArgs),
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List the containers.
    List {
        /// table or json.
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// The processes running inside a container.
    Ps {
        id: String,
        /// table or json (a list of pids).
        #[arg(short, long, default_value = "table")]
        format: String,
        /// Arguments for ps(1) in table format (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// What this runtime supports, as the runtime-spec's features JSON.
    Features,
    /// Write a default config.json into the bundle.
    Spec {
        /// The bundle directory (default: the current one).
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// A config for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Stream a container's events (OOM, and resource stats every interval).
    Events {
        id: String,
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Seconds between stats events.
        #[arg(long, default_value = "5s")]
        interval: String,
    },
    /// Change a running container's resource limits.
    Update(UpdateArgs),
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// runc's checkpoint to disk (CRIU): not built, refused as unsupported.
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// runc's restore from a checkpoint (CRIU): not built, refused as unsupported.
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Args, Clone, Debug)]
pub struct CreateArgs {
    pub id: String,
    /// The bundle directory (default: the current one).
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// A Unix socket to send the pty master to when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Write the container process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Pass fds 3..3+N on to the container (LISTEN_FDS).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Use MS_MOVE and chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Do not wait: init starts and reaps the container.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's record after it exits.
    #[arg(long)]
    pub keep: bool,
    /// runc's: do not reap re-parented processes. `ipc run` is no
    /// subreaper in the first place (init is, for containers it starts).
    #[arg(long)]
    pub no_subreaper: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A JSON file with the process to run (runtime-spec `process`).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=VALUE, repeatable.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids, repeatable.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Add a capability to the process (repeatable).
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long)]
    pub no_new_privs: bool,
    /// The process's SELinux label and AppArmor profile: as in a config,
    /// refused where that LSM is on (not supported), ignored where it is off.
    #[arg(long)]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Exec in a paused container too: the process then waits, frozen with
    /// the rest, until `resume`.
    #[arg(long)]
    pub ignore_paused: bool,
    /// runc's exec into a sub-cgroup: refused as unsupported.
    #[arg(long)]
    pub cgroup: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    pub id: String,
    /// A JSON file (or - for stdin) with linux.resources.
    #[arg(short, long)]
    pub r#resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// runc spells it --cpu-share.
    #[arg(long, visible_alias = "cpu-share")]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_burst: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// blockIO.weight, 10 to 1000 (0: leave as is, as runc).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Accepted as runc does, refused as unsupported.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
}

/// A failed command whose exit code is not 1: `exec` fails with 255 as
/// runc's does, so that its own failure (no such container, a command
/// not found) is told apart from the exit code of the process it ran.
#[derive(Debug)]
pub struct FailedWith {
    pub exit_code: u8,
    pub error: anyhow::Error,
}

impl FailedWith {
    fn code(exit_code: u8, error: anyhow::Error) -> anyhow::Error {
        FailedWith { exit_code, error }.into()
    }

    /// The exit code for a command that failed with `e`.
    pub fn exit_code_of(e: &anyhow::Error) -> u8 {
        e.downcast_ref::<FailedWith>().map_or(1, |f| f.exit_code)
    }
}

impl std::fmt::Display for FailedWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for FailedWith {}

/// Runs one OCI command; Ok(code) is the process exit code.
pub fn run(root: &std::path::Path, cmd: OciCmd) -> anyhow::Result<i32> {
    match cmd {
        OciCmd::Create(a) => create::create(root, &a).map(|_| 0),
        OciCmd::Start { id } => manage::start(root, &id).map(|_| 0),
        OciCmd::State { id } => inspect::state(root, &id).map(|_| 0),
        OciCmd::Kill { id, signal, all } => {
            manage::kill(root, &id, signal.as_deref(), all).map(|_| 0)
        }
        OciCmd::Delete { id, force } => manage::delete(root, &id, force).map(|_| 0),
        OciCmd::Run(a) => create::run(root, &a),
        // runc's exec fails with 255, apart from any code of the process.
        OciCmd::Exec(a) => create::exec(root, &a).map_err(|e| FailedWith::code(255, e)),
        OciCmd::List { format, quiet } => inspect::list(root, &format, quiet).map(|_| 0),
        OciCmd::Ps {
            id,
            format,
            ps_args,
        } => inspect::ps(root, &id, &format, &ps_args).map(|_| 0),
        OciCmd::Features => super::spec::run_features().map(|_| 0),
        OciCmd::Spec { bundle, rootless } => {
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            super::spec::run_spec(&dir, rootless).map(|_| 0)
        }
        OciCmd::Events {
            id,
            stats,
            interval,
        } => inspect::events(root, &id, stats, &interval).map(|_| 0),
        OciCmd::Update(a) => manage::update(root, &a).map(|_| 0),
        OciCmd::Pause { id } => manage::pause(root, &id).map(|_| 0),
        OciCmd::Resume { id } => manage::resume(root, &id).map(|_| 0),
        OciCmd::Checkpoint { .. } | OciCmd::Restore { .. } => anyhow::bail!(
            "checkpoint and restore: unsupported: asterism has no checkpoint/restore (runc's is built on CRIU)"
        ),
    }
}

/// init as the OCI commands see it: a client that, when init is not there
/// (killed, or never started), starts the constellation itself and sends
/// the same request again. Without this, an `ipc create` waiting on a dead
/// init would only retry, and nothing would ever start a new one.
pub struct InitConn {
    root: std::path::PathBuf,
    client: libipc::Client<protocol::init::Init>,
}

/// How long a command keeps trying in all. One attempt fails fast when init
/// is not there (no retry inside the client), so that we can start it.
const OVERALL: std::time::Duration = std::time::Duration::from_secs(60);

impl InitConn {
    /// Sends `req` now and returns at once, so that the caller can work
    /// while init answers (`create` launches the container process
    /// meanwhile). Only for requests that may be sent twice: if the first
    /// sending fails, `finish` sends it again the usual way.
    pub fn start(&mut self, req: protocol::init::InitRequest, key: Option<String>) -> Started {
        let sent = self.client.send_only(req.clone(), key.clone(), vec![]).ok();
        Started { req, key, sent }
    }

    /// As `call`, handing `fds` over: ours are closed as soon as the
    /// request is sent, so that init holds the last reference. Should init
    /// be unavailable, the request goes again the usual way, without them.
    pub fn call_handing_over(
        &mut self,
        req: protocol::init::InitRequest,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<protocol::init::InitResponse, protocol::Error> {
        let sent = self.client.send_only(req.clone(), None, fds).ok();
        Ok(self
            .finish(Started {
                req,
                key: None,
                sent,
            })?
            .0)
    }

    /// The answer to a request `start` sent.
    pub fn finish(
        &mut self,
        s: Started,
    ) -> Result<(protocol::init::InitResponse, Vec<std::os::fd::OwnedFd>), protocol::Error> {
        match self.client.finish_or_resend(s.sent) {
            Some(answer) => answer,
            None => self.call_with_fds(s.req, s.key, vec![]),
        }
    }

    pub fn call(
        &mut self,
        req: protocol::init::InitRequest,
        key: Option<String>,
    ) -> Result<protocol::init::InitResponse, protocol::Error> {
        Ok(self.call_with_fds(req, key, vec![])?.0)
    }

    pub fn call_with_fds(
        &mut self,
        req: protocol::init::InitRequest,
        key: Option<String>,
        fds: Vec<std::os::fd::OwnedFd>,
    ) -> Result<(protocol::init::InitResponse, Vec<std::os::fd::OwnedFd>), protocol::Error> {
        let until = std::time::Instant::now() + OVERALL;
        loop {
            let copies = fds
                .iter()
                .map(|f| f.try_clone())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| protocol::Error::io("dup fd", &e))?;
            match self.client.call_with_fds(req.clone(), key.clone(), copies) {
                Err(e)
                    if e.kind == protocol::ErrorKind::Unavailable
                        && std::time::Instant::now() < until =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    super::autostart::ensure_constellation(&self.root)
                        .map_err(|e| protocol::Error::unavailable(format!("{e:#}")))?;
                }
                other => return other,
            }
        }
    }
}

/// A request to init sent by `InitConn::start`, answered by `finish`.
pub struct Started {
    req: protocol::init::InitRequest,
    key: Option<String>,
    sent: Option<libipc::client::Sent>,
}

/// A client to init for OCI commands: starts the constellation if needed.
pub fn init_client(root: &std::path::Path) -> anyhow::Result<InitConn> {
    // A running init is simply used (a call that finds it unavailable
    // starts or waits for one: see InitConn::call_with_fds); no ping first.
    if !crate::root::init_running(root) {
        super::autostart::ensure_constellation(root)?;
    }
    let opts = libipc::ClientOptions {
        deadline: OVERALL,
        retry: false,
        ..Default::default()
    };
    Ok(InitConn {
        root: root.to_path_buf(),
        client: libipc::Client::new(root, opts),
    })
}
