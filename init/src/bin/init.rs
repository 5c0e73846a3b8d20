//! `init --root DIR`: starts the constellation in the foreground, prints
//! `ready` once every server answers hello, restarts servers that die, and
//! stops them all on Ctrl-C or SIGTERM.

use anyhow::{Context, Result};
use asterism_init::control::InitService;
use asterism_init::lifecycle::Lifecycle;
use asterism_init::root::Root;
use asterism_init::supervisor::{Config, Supervisor};
use clap::Parser;
use protocol::init::Init;
use protocol::Protocol;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "init",
    about = "Start the asterism constellation (init and its five servers) in the foreground"
)]
struct Args {
    /// Constellation root: sockets, journals, container state.
    #[arg(long, default_value = libipc::DEFAULT_ROOT)]
    root: PathBuf,
    /// Where the server binaries are (default: beside this init).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// A server that crashes more often than this within the window is marked failed.
    #[arg(long, default_value_t = 8)]
    max_restarts: usize,
    /// The crash-counting window, in seconds.
    #[arg(long, default_value_t = 30)]
    restart_window: u64,
}

/// Closes every descriptor from 3 up that init was started with. An init
/// that an `ipc` command started (the constellation starting itself)
/// inherits that command's descriptors, which are its caller's: conmon's
/// or a shim's pipes. A daemon holding a pipe's write end for its whole
/// life keeps its reader from ever seeing EOF.
#[allow(unsafe_code)]
fn close_inherited_fds() -> std::io::Result<()> {
    // SAFETY: called first thing in main, before any thread exists and
    // before this program opens anything: no File or OwnedFd refers to a
    // descriptor closed here (0, 1 and 2 stay).
    unsafe { asterism_init::launcher::close_from(3) }
}

fn main() -> std::process::ExitCode {
    // A blocked signal mask is inherited through exec: an init started by
    // `ipc run` (which blocks the signals it forwards to its container)
    // would never see SIGTERM, and its servers would inherit the mask.
    // Start from none blocked, before any thread exists.
    if let Err(e) = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    ) {
        eprintln!("init: unblock signals: {e}");
        return std::process::ExitCode::from(1);
    }
    if let Err(e) = close_inherited_fds() {
        eprintln!("init: close the descriptors it was started with: {e}");
        return std::process::ExitCode::from(1);
    }
    libipc::server::init_logging("init");
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("init: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<()> {
    let root = Arc::new(Root::new(&args.root)?);
    let _lock = root.lock()?;
    let epoch = next_init_epoch(&root);
    let bin_dir = match args.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .context("find init's own executable")?
            .parent()
            .context("init's executable has no directory")?
            .to_path_buf(),
    };
    let cfg = Config {
        bin_dir: bin_dir.clone(),
        max_crashes: args.max_restarts,
        crash_window: Duration::from_secs(args.restart_window),
        ..Config::default()
    };
    let mut sup = Supervisor::new(root.clone(), cfg)?;
    {
        let waker = sup.waker();
        ctrlc::set_handler(move || waker.stop()).context("install the SIGINT/SIGTERM handler")?;
    }
    if let Err(e) = sup.start_all() {
        sup.stop_all();
        return Err(e);
    }
    serve_control(&root, epoch, &sup, &bin_dir)?;
    println!("ready");
    std::io::stdout().flush().ok();
    sup.run();
    asterism_init::lifecycle::slots::clear(&root.dir);
    let _ = std::fs::remove_file(root.socket(Init::NAME));
    let _ = std::fs::remove_file(root.dir.join("init.pid"));
    Ok(())
}

/// init's own socket, served on background threads.
fn serve_control(
    root: &Root,
    epoch: u64,
    sup: &Supervisor,
    bin_dir: &std::path::Path,
) -> Result<()> {
    let opts = libipc::ServerOptions::new(Init::NAME, root.dir.clone(), epoch);
    let server = libipc::Server::<Init>::bind(opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Containers that init launches (run --detach) are re-parented to init
    // when their launcher exits; as a child subreaper init can reap them
    // and keep their exit status.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .context("become a child subreaper")?;
    let lifecycle = Lifecycle::start(&root.dir, bin_dir);
    // On a thread of its own: handing seccomp-monitor its listeners back
    // is a round of requests, and the supervisor must not wait on a server.
    let lc = lifecycle.clone();
    sup.on_running(Box::new(move |name, epoch| {
        let lc = lc.clone();
        let spawned = std::thread::Builder::new()
            .name("server-running".into())
            .spawn(move || lc.server_running(name, epoch));
        if let Err(e) = spawned {
            tracing::error!("cannot report that {name} runs at epoch {epoch}: {e}");
        }
    }));
    let service = InitService {
        root: root.dir.clone(),
        table: sup.table(),
        epoch,
        stop: sup.waker(),
        lifecycle,
    };
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            if let Err(e) = server.serve(service) {
                tracing::error!("init's control socket stopped: {e}");
            }
        })
        .context("start the control thread")?;
    Ok(())
}

/// init's own generation number, one more than the last init's on this root.
fn next_init_epoch(root: &Root) -> u64 {
    let path = root.dir.join("init.epoch");
    let last: u64 = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let _ = libipc::journal::write_atomic(&path, format!("{}\n", last + 1).as_bytes());
    last + 1
}
