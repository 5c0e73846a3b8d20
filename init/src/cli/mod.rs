//! The `ipc` command line: `ipc [--root DIR] status`, and each server's verbs
//! (`ipc memory-controller stat ID`). The OCI commands join it with the
//! lifecycle issue.

pub mod autostart;
pub mod cpu;
pub mod create;
mod fast;
pub mod foreground;
pub mod inspect;
pub mod manage;
pub mod memory;
pub mod net;
pub mod oci;
pub mod pending;
pub mod profile;
pub mod seccomp;
pub mod spec;
pub mod status;
pub mod vfs;

use clap::{Parser, Subcommand};

#[cfg(test)]
mod parse_tests;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "ipc",
    about = "Talk to the asterism constellation: status, and every server's verbs",
    version
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every command takes (runc's global flags).
#[derive(clap::Args, Debug)]
pub struct Globals {
    // A global flag may come twice, the last one winning, as runc's do:
    // dockerd runs a runtime that has runtimeArgs through a script that
    // passes them before the shim's own (`--root R1 --root R2 --log ...`).
    /// Constellation root (sockets, journals, container state).
    #[arg(long, global = true, default_value = libipc::DEFAULT_ROOT, overrides_with = "root")]
    pub root: PathBuf,
    /// Also write errors to this file (containerd's shim reads it).
    #[arg(long, global = true, overrides_with = "log")]
    pub log: Option<PathBuf>,
    /// text or json, for --log.
    #[arg(
        long,
        global = true,
        default_value = "text",
        overrides_with = "log_format"
    )]
    pub log_format: String,
    /// More messages on stderr.
    #[arg(long, global = true, overrides_with = "debug")]
    pub debug: bool,
    /// runc's systemd cgroup driver: not supported (asterism manages cgroupfs itself).
    #[arg(long, global = true, overrides_with = "systemd_cgroup")]
    pub systemd_cgroup: bool,
    /// runc's path to criu, for checkpoint and restore, which asterism
    /// does not do: taken and unused.
    #[arg(long, global = true, overrides_with = "criu")]
    pub criu: Option<PathBuf>,
    /// runc's rootless mode (true, false or auto): asterism runs as root,
    /// so `true` is refused and the others change nothing. Before the
    /// command only, as runc has it: `spec` has a `--rootless` of its own.
    #[arg(long)]
    pub rootless: Option<String>,
}

/// The same command line with the OCI commands only. Building clap's
/// whole tree (every server's verbs) touched so much cold code that it
/// took ~0.5 ms of each `ipc` start; the commands an engine runs for
/// every container (create, start, state, kill, delete, run ...) are
/// parsed with this smaller tree, which accepts exactly the same words.
#[derive(Parser)]
#[command(
    name = "ipc",
    about = "Talk to the asterism constellation: status, and every server's verbs",
    version
)]
struct OciCli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: oci::OciCmd,
}

impl Cli {
    /// Parses the process's arguments (exits with clap's message on error,
    /// which also goes to --log when the line names one: containerd's shim
    /// reports what it finds there, and has nothing else to go on).
    pub fn parse_args() -> Cli {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if let Some(cli) = fast::parse(&args) {
            return cli;
        }
        let oci = command_word(&args).is_some_and(<oci::OciCmd as Subcommand>::has_subcommand);
        let parsed = match oci {
            true => OciCli::try_parse_from(&args).map(|o| Cli {
                globals: o.globals,
                command: Command::Oci(o.command),
            }),
            false => Cli::try_parse_from(&args),
        };
        parsed.unwrap_or_else(|e| {
            if e.use_stderr() {
                if let Some((log, json)) = log_flags(&args) {
                    write_log(&log, json, e.render().to_string().trim());
                }
            }
            // No command at all is runc's help, on stdout, and exit 0.
            if e.kind() == clap::error::ErrorKind::MissingSubcommand {
                let _ = <Cli as clap::CommandFactory>::command().print_help();
                std::process::exit(0);
            }
            let _ = e.print();
            std::process::exit(usage_exit_code(&e))
        })
    }
}

/// runc's exit codes for a command line it refuses (urfave/cli's): 3 for
/// an unknown command, 1 for any other usage error; help and version
/// exit 0, and so does no command at all (the help). clap's own would be 2.
fn usage_exit_code(e: &clap::Error) -> i32 {
    use clap::error::ErrorKind as K;
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand => 0,
        K::InvalidSubcommand => 3,
        _ if !e.use_stderr() => 0,
        _ => 1,
    }
}

/// --log and whether --log-format is json, read from a line clap refused
/// (the last of each, as clap would take them).
fn log_flags(args: &[std::ffi::OsString]) -> Option<(PathBuf, bool)> {
    let (mut log, mut json) = (None, false);
    let mut it = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(a) = it.next() {
        let (name, inline) = flag_parts(a);
        let mut value = || inline.or_else(|| it.next());
        match name {
            "--log" => log = value().map(PathBuf::from),
            "--log-format" => json = value() == Some("json"),
            _ => {}
        }
    }
    log.map(|l| (l, json))
}

/// A word of the command line as a flag's name and its `=value`, if any:
/// `--root=/r` -> ("--root", Some("/r")); `-b` -> ("-b", None).
fn flag_parts(w: &str) -> (&str, Option<&str>) {
    match w.split_once('=') {
        Some((n, v)) if n.starts_with("--") => (n, Some(v)),
        _ => (w, None),
    }
}

/// Appends an error to --log as runc writes its errors there (a JSON line
/// with --log-format json, else logrus's text line); containerd's shim
/// reports the last one to the user. Best effort.
pub fn write_log(path: &std::path::Path, json: bool, msg: &str) {
    use std::io::Write;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    else {
        return;
    };
    let time = crate::lifecycle::record::now_rfc3339();
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={msg:?}")
    };
    let _ = writeln!(f, "{line}");
}

/// The first word that is neither a flag nor a global flag's value: the
/// command (`ipc --root /r --log-format json state ID` -> "state").
fn command_word(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        match a {
            "--root" | "--log" | "--log-format" => {
                it.next();
            }
            _ if a.starts_with('-') => {}
            _ => return Some(a),
        }
    }
    None
}

#[derive(Subcommand)]
pub enum Command {
    /// init and every server: name, pid, state, restarts, uptime, requests.
    Status {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// init's own verbs.
    #[command(subcommand)]
    Init(status::InitCmd),
    /// Memory cgroups.
    #[command(name = "memory-controller", subcommand)]
    MemoryController(memory::MemoryCmd),
    /// cpu, cpuacct, cpuset, pids and freezer cgroups.
    #[command(name = "cpu-controller", subcommand)]
    CpuController(cpu::CpuCmd),
    /// Container root filesystems: prepare (read-only bind), release, list.
    #[command(name = "vfs-overlay", subcommand)]
    VfsOverlay(vfs::VfsCmd),
    /// Container networking: loopback in a container's network namespace.
    #[command(subcommand)]
    Netstack(net::NetCmd),
    /// Seccomp profiles (compile, dump) and the notify agent (stats, events).
    #[command(name = "seccomp-monitor", subcommand)]
    SeccompMonitor(seccomp::SeccompCmd),
    #[command(flatten)]
    Oci(oci::OciCmd),
}

/// Runs one command line; Ok(code) is the exit code (a container's, for
/// `run` and `exec`); the error goes to stderr as `ipc: ...`.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    if cli.globals.systemd_cgroup {
        anyhow::bail!("--systemd-cgroup: the systemd cgroup driver is not supported; asterism manages cgroupfs through its controllers (drop the flag)");
    }
    match cli.globals.rootless.as_deref() {
        None | Some("false") | Some("auto") => {}
        Some("true") => {
            anyhow::bail!("--rootless true: unsupported: asterism runs containers as root only")
        }
        Some(other) => anyhow::bail!("--rootless {other:?}: must be true, false or auto"),
    }
    let root = cli.globals.root;
    let done = |r: anyhow::Result<()>| r.map(|_| 0);
    match cli.command {
        Command::Oci(cmd) => oci::run(&root, cmd),
        other => done(run_server_cmd(&root, other)),
    }
}

fn run_server_cmd(root: &std::path::Path, cmd: Command) -> anyhow::Result<()> {
    let root = root.to_path_buf();
    match cmd {
        Command::Oci(_) => unreachable!("handled by run"),
        Command::Status { json } => status::run(&root, json),
        Command::Init(cmd) => status::run_init(&root, cmd),
        Command::MemoryController(cmd) => memory::run(&root, cmd),
        Command::CpuController(cmd) => cpu::run(&root, cmd),
        Command::VfsOverlay(cmd) => vfs::run(&root, cmd),
        Command::Netstack(cmd) => net::run(&root, cmd),
        Command::SeccompMonitor(cmd) => seccomp::run(&root, cmd),
    }
}

/// A client with the default deadline; fails fast with a clear message when
/// no init runs on the root (rather than retrying for the whole deadline).
pub fn client<P: protocol::Protocol>(root: &std::path::Path) -> anyhow::Result<libipc::Client<P>> {
    if !crate::root::init_running(root) && !libipc::socket_path(root, P::NAME).exists() {
        anyhow::bail!(
            "no constellation is running on root {} (start one with `init --root {}`)",
            root.display(),
            root.display()
        );
    }
    Ok(libipc::Client::new(root, libipc::ClientOptions::default()))
}

/// A server request that changes nothing.
pub fn call<P: protocol::Protocol>(
    root: &std::path::Path,
    req: P::Request,
) -> anyhow::Result<P::Response> {
    Ok(client::<P>(root)?.call(req, None)?)
}

/// A mutating server request under a fresh idempotency key, kept across
/// the client's retries (so a retry after a server restart is applied once).
pub fn mutate<P: protocol::Protocol>(
    root: &std::path::Path,
    op: &str,
    id: &str,
    req: P::Request,
) -> anyhow::Result<P::Response> {
    Ok(client::<P>(root)?.call(req, Some(libipc::client::new_key(op, id)))?)
}

/// `ipc SERVER ping`, the same for every server.
pub fn ping<P: protocol::Protocol>(root: &std::path::Path) -> anyhow::Result<()> {
    let mut c = client::<P>(root)?;
    let rtt = c.ping()?;
    let h = c.hello().cloned();
    match h {
        Some(h) => println!(
            "pong from {} (pid {}, epoch {}) in {:?}",
            h.server, h.pid, h.epoch, rtt
        ),
        None => println!("pong from {} in {rtt:?}", P::NAME),
    }
    Ok(())
}
