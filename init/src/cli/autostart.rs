//! Every OCI command starts the constellation itself when none runs on the
//! root: `init --root DIR` in its own process group (a Ctrl-C at the
//! caller's terminal must not stop it), stderr to `<root>/init.log`, and we
//! wait for its `ready` line. Two commands racing to start it are fine: the
//! loser's init refuses to start (the root's lock), and both then wait for
//! the winner to answer.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub fn ensure_constellation(root: &Path) -> Result<()> {
    if crate::root::init_running(root) && answers(root) {
        return Ok(());
    }
    if !crate::root::init_running(root) {
        spawn_init(root)?;
    }
    let until = Instant::now() + READY_TIMEOUT;
    while Instant::now() < until {
        if answers(root) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!(
        "the constellation on {} did not come up within {READY_TIMEOUT:?}; see {}",
        root.display(),
        root.join("init.log").display()
    )
}

fn answers(root: &Path) -> bool {
    let opts = libipc::ClientOptions {
        deadline: Duration::from_millis(500),
        retry: false,
        ..Default::default()
    };
    libipc::Client::<protocol::init::Init>::new(root, opts)
        .ping()
        .is_ok()
}

fn spawn_init(root: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("find ipc's own executable")?;
    let init = exe.with_file_name("init");
    std::fs::create_dir_all(root).with_context(|| format!("create root {}", root.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join("init.log"))
        .with_context(|| format!("open {}", root.join("init.log").display()))?;
    let mut child = Command::new(&init)
        .arg("--root")
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {}", init.display()))?;
    // Read its first line without a thread: ipc must stay single-threaded
    // (it clones containers).
    let mut out = child.stdout.take().expect("piped stdout");
    let until = Instant::now() + READY_TIMEOUT;
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while Instant::now() < until && !seen.contains(&b'\n') {
        let mut pfd = [rustix::event::PollFd::new(
            &out,
            rustix::event::PollFlags::IN,
        )];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        if !matches!(rustix::event::poll(&mut pfd, Some(&ts)), Ok(n) if n > 0) {
            continue;
        }
        match out.read(&mut buf) {
            Ok(0) => break, // init exited (maybe another won the race)
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    // init never writes to stdout again; it keeps running on its own.
    drop(out);
    if seen.starts_with(b"ready") {
        return Ok(());
    }
    if let Ok(Some(status)) = child.try_wait() {
        if !crate::root::init_running(root) {
            bail!(
                "init exited ({status}) before it was ready; see {}",
                root.join("init.log").display()
            );
        }
    }
    Ok(())
}
