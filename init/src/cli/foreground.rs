//! A container process in the foreground of `ipc run` or `ipc exec`, as
//! runc does it:
//!
//! - the signals ipc receives go to the process (SIGWINCH resizes its
//!   terminal instead), so Ctrl-C or a `kill` of ipc reaches the container;
//! - with process.terminal and no --console-socket, ipc holds the pty
//!   master itself and joins it to its own stdin and stdout, with stdin in
//!   raw mode while the process runs when stdin is a terminal.
//!
//! One poll loop in the main thread (ipc stays single-threaded), on a
//! signalfd, the process's pidfd, stdin and the pty master.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::OFlags;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The signals passed on to the container process (runc's list, less the
/// ones the kernel raises for a fault of ipc itself).
const FORWARDED: [Signal; 12] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGTERM,
    Signal::SIGALRM,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGWINCH,
];

/// ipc's own console socket, for a foreground process with a terminal: the
/// launcher connects to it and sends the pty master, as to an engine's.
pub struct ConsoleListener {
    path: PathBuf,
    listener: OwnedFd,
}

impl ConsoleListener {
    /// A socket in the root (mode 0700, ours alone), named by our pid.
    pub fn bind(root: &Path) -> Result<ConsoleListener> {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
        let path = root.join(format!("console-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .context("console socket")?;
        let addr = SocketAddrUnix::new(&path)
            .with_context(|| format!("console socket path {}", path.display()))?;
        rustix::net::bind(&listener, &addr)
            .with_context(|| format!("bind the console socket {}", path.display()))?;
        rustix::net::listen(&listener, 1).context("listen on the console socket")?;
        Ok(ConsoleListener { path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master the launcher sent (during create, so it waits in the
    /// socket already).
    pub fn accept_master(self) -> Result<OwnedFd> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let conn = rustix::net::accept_with(&self.listener, rustix::net::SocketFlags::CLOEXEC)
            .context("accept the container's console")?;
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 64];
        rustix::net::recvmsg(
            &conn,
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC,
        )
        .context("receive the pty master")?;
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = m {
                if let Some(fd) = fds.next() {
                    return Ok(fd);
                }
            }
        }
        bail!("the container's console message carried no pty master")
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Waits for our child `pid` in the foreground (see the module doc);
/// its exit code, or 128+signal.
pub fn wait(pid: i32, master: Option<OwnedFd>) -> Result<i32> {
    wait_with(pid, master, Signals::block()?)
}

/// As `wait`, with the signals blocked by the caller beforehand: `run`
/// blocks them before it starts the container, so that a signal sent the
/// moment the container runs is forwarded, not taken by ipc's default
/// action.
pub fn wait_with(pid: i32, master: Option<OwnedFd>, signals: Signals) -> Result<i32> {
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).context("container pid")?,
        rustix::process::PidfdFlags::empty(),
    )
    .with_context(|| format!("pidfd of the container process {pid}"))?;
    let _raw = match &master {
        Some(m) => {
            rustix::fs::fcntl_setfl(m, OFlags::NONBLOCK).context("pty master non-blocking")?;
            copy_window_size(m.as_fd());
            RawStdin::enter()
        }
        None => None,
    };
    let mut pump = Pump {
        master: master.as_ref().map(|m| m.as_fd()),
        stdin_open: master.is_some(),
    };
    loop {
        let (sig, exited, stdin, out) = pump.wait(signals.fd.as_fd(), pidfd.as_fd())?;
        if let Some(sig) = sig.then(|| signals.read()).flatten() {
            match (sig, pump.master) {
                (Signal::SIGWINCH, Some(m)) => copy_window_size(m),
                (Signal::SIGWINCH, None) => {}
                (s, _) => {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s);
                }
            }
        }
        if stdin {
            pump.stdin_to_master()?;
        }
        if out || exited {
            pump.master_to_stdout()?;
        }
        if exited {
            break;
        }
    }
    reap(pid)
}

fn reap(pid: i32) -> Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => bail!("wait for container process {pid}: {e}"),
        }
    }
}

/// The signals ipc forwards to the container, blocked and read through a
/// signalfd; dropping it restores the mask.
pub struct Signals {
    fd: SignalFd,
    old: SigSet,
}

impl Signals {
    pub fn block() -> Result<Signals> {
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(s);
        }
        let mut old = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .context("block the signals to forward")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("signalfd")?;
        Ok(Signals { fd, old })
    }

    fn read(&self) -> Option<Signal> {
        match self.fd.read_signal() {
            Ok(Some(info)) => Signal::try_from(info.ssi_signo as i32).ok(),
            _ => None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.old), None);
    }
}

/// The bytes between our stdio and the pty master.
struct Pump<'a> {
    master: Option<BorrowedFd<'a>>,
    stdin_open: bool,
}

impl Pump<'_> {
    /// Blocks until something is ready: (signal, exited, stdin, master).
    fn wait(
        &mut self,
        sig: BorrowedFd<'_>,
        pidfd: BorrowedFd<'_>,
    ) -> Result<(bool, bool, bool, bool)> {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::from_borrowed_fd(sig, PollFlags::IN),
            PollFd::from_borrowed_fd(pidfd, PollFlags::IN),
        ];
        if self.stdin_open {
            fds.push(PollFd::from_borrowed_fd(stdin.as_fd(), PollFlags::IN));
        }
        if let Some(m) = self.master {
            fds.push(PollFd::from_borrowed_fd(m, PollFlags::IN));
        }
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e).context("poll the container's console and signals"),
        }
        let ready = |i: usize| fds.get(i).is_some_and(|f| !f.revents().is_empty());
        let (stdin_i, master_i) = match self.stdin_open {
            true => (2, 3),
            false => (usize::MAX, 2),
        };
        Ok((ready(0), ready(1), ready(stdin_i), ready(master_i)))
    }

    fn stdin_to_master(&mut self) -> Result<()> {
        let Some(m) = self.master else { return Ok(()) };
        let mut buf = [0u8; 4096];
        match rustix::io::read(std::io::stdin(), &mut buf) {
            Ok(0) | Err(_) => self.stdin_open = false,
            Ok(n) => write_all(m, &buf[..n])?,
        }
        Ok(())
    }

    /// Everything the master has now (until it would block or the other
    /// side is closed).
    fn master_to_stdout(&mut self) -> Result<()> {
        let Some(m) = self.master else { return Ok(()) };
        let mut buf = [0u8; 8192];
        let mut out = std::io::stdout().lock();
        loop {
            match rustix::io::read(m, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    out.write_all(&buf[..n])
                        .context("write the container's output")?;
                }
                Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => break,
                // EIO: every slave fd is closed (the process exited).
                Err(_) => {
                    self.master = None;
                    break;
                }
            }
        }
        out.flush().context("write the container's output")
    }
}

fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {
                let mut pfd = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
                let _ = poll(&mut pfd, None);
            }
            Err(e) => return Err(e).context("write to the container's terminal"),
        }
    }
    Ok(())
}

/// Our terminal's size onto the container's (when stdin is a terminal).
fn copy_window_size(master: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
        let _ = rustix::termios::tcsetwinsize(master, ws);
    }
}

/// stdin in raw mode (keys go to the container as typed: Ctrl-C is a byte
/// for its terminal, not a signal for us); restored when dropped.
struct RawStdin {
    saved: rustix::termios::Termios,
}

impl RawStdin {
    fn enter() -> Option<RawStdin> {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawStdin { saved })
    }
}

impl Drop for RawStdin {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}
