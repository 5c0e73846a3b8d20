//! The baseline: a raw SOCK_SEQPACKET ping-pong between two processes, no
//! framing, no encoding, no threads. The child is this same binary run as
//! `asterism-bench --echo PATH`: it connects to PATH and sends back every
//! message it receives, until the connection closes.

use anyhow::{bail, Context, Result};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

fn seqpacket() -> Result<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socket(AF_UNIX, SOCK_SEQPACKET)")
}

/// The child's whole life: echo until EOF.
pub fn echo_child(path: &Path) -> Result<()> {
    let fd = seqpacket()?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)
        .with_context(|| format!("connect to {}", path.display()))?;
    let mut buf = [0u8; 4096];
    loop {
        let (n, _) = rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()).context("recv")?;
        if n == 0 {
            return Ok(());
        }
        rustix::net::send(&fd, &buf[..n], SendFlags::NOSIGNAL).context("send")?;
    }
}

/// The parent's end of the ping-pong, with the echo child it started.
pub struct PingPong {
    conn: OwnedFd,
    child: Child,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

impl PingPong {
    /// Listens at `path`, starts the echo child, accepts it. `msg_len`: the
    /// message size (the same as an encoded libipc ping, for a fair baseline).
    pub fn start(path: &Path, msg_len: usize) -> Result<PingPong> {
        let listener = seqpacket()?;
        rustix::net::bind(&listener, &SocketAddrUnix::new(path)?)
            .with_context(|| format!("bind {}", path.display()))?;
        rustix::net::listen(&listener, 1).context("listen")?;
        let exe = std::env::current_exe().context("find own executable")?;
        let mut child = Command::new(exe)
            .arg("--echo")
            .arg(path)
            .stdin(Stdio::null())
            .spawn()
            .context("spawn the echo child")?;
        if !readable(&listener, 10)? {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the echo child did not connect within 10 s");
        }
        let conn = rustix::net::accept(&listener).context("accept the echo child")?;
        let _ = std::fs::remove_file(path);
        Ok(PingPong {
            conn,
            child,
            msg: vec![0x5a; msg_len.max(1)],
            buf: vec![0; 4096],
        })
    }

    /// One round trip, timed, in nanoseconds.
    pub fn round_trip(&mut self) -> Result<u64> {
        let t = Instant::now();
        rustix::net::send(&self.conn, &self.msg, SendFlags::NOSIGNAL).context("send to echo")?;
        let (n, _) = rustix::net::recv(&self.conn, &mut self.buf[..], RecvFlags::empty())
            .context("recv from echo")?;
        let ns = t.elapsed().as_nanos() as u64;
        if n != self.msg.len() {
            bail!("echo child answered {n} bytes to {}", self.msg.len());
        }
        Ok(ns)
    }
}

/// poll(2) for input, at most `secs` seconds.
fn readable(fd: &OwnedFd, secs: i64) -> Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut pfd = [PollFd::new(fd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    Ok(poll(&mut pfd, Some(&ts)).context("poll")? > 0)
}

impl Drop for PingPong {
    fn drop(&mut self) {
        // Closing our end makes the child's recv return 0 and it exits.
        let _ = rustix::net::shutdown(&self.conn, rustix::net::Shutdown::Both);
        let _ = self.child.wait();
    }
}
