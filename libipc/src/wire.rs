//! SOCK_SEQPACKET framing: the kernel keeps message boundaries and keeps
//! SCM_RIGHTS file descriptors attached to their message.

use protocol::{Error, ErrorKind, MAX_MESSAGE};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// Receive buffers big enough for the largest message, kept in a pool and
/// never freed. Each thread takes one on its first receive and gives it back
/// when it exits; a message is copied out at its exact size.
///
/// Why: a fresh 1 MiB buffer per message cost a memset per round trip; a
/// buffer per thread that is freed when a connection thread exits makes
/// glibc raise its mmap threshold, so the next thread's buffer comes from an
/// arena and is zeroed (touched) in full. Pooled buffers are calloc'd once
/// (untouched pages cost no memory) and only ever touched as far as the
/// largest message they held.
static RECV_POOL: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

struct PooledBuffer(Vec<u8>);

impl PooledBuffer {
    fn take() -> PooledBuffer {
        let pooled = RECV_POOL.lock().ok().and_then(|mut p| p.pop());
        PooledBuffer(pooled.unwrap_or_else(|| vec![0u8; MAX_MESSAGE + 1]))
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let Ok(mut p) = RECV_POOL.lock() {
            p.push(std::mem::take(&mut self.0));
        }
    }
}

thread_local! {
    static RECV_BUF: std::cell::RefCell<PooledBuffer> = std::cell::RefCell::new(PooledBuffer::take());
}

/// Most file descriptors one message may carry.
pub const MAX_FDS: usize = 16;

/// Who is on the other end of a connection, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// Why a receive failed.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the connection.
    Closed,
    /// The deadline passed with nothing to read.
    TimedOut,
    /// The message was larger than [`MAX_MESSAGE`]; the kernel dropped the rest.
    Oversized(usize),
    /// More fds than [`MAX_FDS`] came, and the kernel dropped some.
    TooManyFds,
    Io(std::io::Error),
}

impl RecvError {
    pub fn into_error(self, what: &str) -> Error {
        match self {
            RecvError::Closed => Error::unavailable(format!("{what} closed the connection")),
            RecvError::TimedOut => Error::new(
                ErrorKind::Timeout,
                format!("no answer from {what} before the deadline"),
            ),
            RecvError::Oversized(n) => Error::invalid(format!(
                "message from {what} is {n} bytes, over the {MAX_MESSAGE}-byte maximum"
            )),
            RecvError::TooManyFds => Error::invalid(format!(
                "message from {what} carried more than {MAX_FDS} file descriptors"
            )),
            RecvError::Io(e) => Error::io(format!("receive from {what}"), &e),
        }
    }
}

/// One SEQPACKET connection.
#[derive(Debug)]
pub struct Conn {
    fd: OwnedFd,
}

/// A message as received: the bytes and the fds that rode with it.
pub struct Message {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

impl Conn {
    pub fn from_fd(fd: OwnedFd) -> Self {
        Conn { fd }
    }

    /// Connects to a server's socket.
    pub fn connect(path: &Path) -> std::io::Result<Conn> {
        let fd = seqpacket_socket()?;
        let addr = SocketAddrUnix::new(path)?;
        rustix::net::connect(&fd, &addr)?;
        Ok(Conn { fd })
    }

    /// A connected pair, for tests and for passing a channel to a child.
    pub fn pair() -> std::io::Result<(Conn, Conn)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        size_send_buffer(&a);
        size_send_buffer(&b);
        Ok((Conn { fd: a }, Conn { fd: b }))
    }

    pub fn peer(&self) -> std::io::Result<PeerCred> {
        let c = rustix::net::sockopt::socket_peercred(&self.fd)?;
        Ok(PeerCred {
            pid: c.pid.as_raw_nonzero().get(),
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        })
    }

    /// Sends one message with `fds` attached. MSG_NOSIGNAL: a dead peer is
    /// an EPIPE error, not a SIGPIPE that kills us.
    pub fn send(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        if bytes.len() > MAX_MESSAGE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "message of {} bytes is over the {MAX_MESSAGE}-byte maximum",
                    bytes.len()
                ),
            ));
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty()
            && (fds.len() > MAX_FDS || !control.push(SendAncillaryMessage::ScmRights(fds)))
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} file descriptors is over the {MAX_FDS} a message may carry",
                    fds.len()
                ),
            ));
        }
        let iov = [IoSlice::new(bytes)];
        loop {
            match rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receives one message, waiting at most `timeout` (None: forever).
    /// Received fds are close-on-exec `OwnedFd`s from the first moment.
    pub fn recv(&self, timeout: Option<Duration>) -> Result<Message, RecvError> {
        if let Some(t) = timeout {
            if !self.wait_readable(t).map_err(RecvError::Io)? {
                return Err(RecvError::TimedOut);
            }
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let (msg, bytes) = RECV_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            // A peer that closed with a message of ours unread in its queue
            // leaves ECONNRESET, reported once (the kernel clears it) and
            // before what the peer sent us first: that is read after all.
            let mut reset = None;
            let msg = loop {
                let mut iov = [IoSliceMut::new(&mut buf.0[..])];
                match rustix::net::recvmsg(
                    &self.fd,
                    &mut iov,
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                ) {
                    Ok(m) if m.bytes == 0 && reset.is_some() => {
                        return Err(RecvError::Io(Errno::CONNRESET.into()))
                    }
                    Ok(m) => break m,
                    Err(Errno::INTR) => continue,
                    Err(Errno::CONNRESET) if reset.is_none() => reset = Some(()),
                    Err(e) => return Err(RecvError::Io(e.into())),
                }
            };
            let n = msg.bytes.min(MAX_MESSAGE);
            Ok((msg, buf.0[..n].to_vec()))
        })?;
        let mut fds = Vec::new();
        for m in control.drain() {
            if let RecvAncillaryMessage::ScmRights(iter) = m {
                fds.extend(iter);
            }
        }
        if msg.flags.contains(ReturnFlags::CTRUNC) {
            return Err(RecvError::TooManyFds);
        }
        if msg.flags.contains(ReturnFlags::TRUNC) || msg.bytes > MAX_MESSAGE {
            return Err(RecvError::Oversized(msg.bytes));
        }
        if msg.bytes == 0 && fds.is_empty() {
            return Err(RecvError::Closed);
        }
        Ok(Message { bytes, fds })
    }

    /// poll(2) for input; Ok(false) on timeout. Hang-up counts as readable
    /// so that recv sees the EOF.
    pub fn wait_readable(&self, timeout: Duration) -> std::io::Result<bool> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut pfd = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        loop {
            match poll(&mut pfd, Some(&ts)) {
                Ok(n) => return Ok(n > 0),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn shutdown(&self) {
        let _ = rustix::net::shutdown(&self.fd, rustix::net::Shutdown::Both);
    }

    pub fn try_clone(&self) -> std::io::Result<Conn> {
        Ok(Conn {
            fd: self.fd.try_clone()?,
        })
    }
}

impl AsFd for Conn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn seqpacket_socket() -> std::io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?;
    size_send_buffer(&fd);
    Ok(fd)
}

/// A SEQPACKET message must fit the sender's socket buffer whole (212 KiB by
/// default); raise it so that a maximum-size message can be sent. Best
/// effort: the kernel caps it at net.core.wmem_max, and a send that still
/// does not fit fails with EMSGSIZE, which the caller reports.
fn size_send_buffer(fd: &OwnedFd) {
    let _ = rustix::net::sockopt::set_socket_send_buffer_size(fd, MAX_MESSAGE + (64 << 10));
}

/// A listening SEQPACKET socket bound at `path` (a stale socket file from a
/// dead server is replaced). The socket's directory is made mode 0700.
pub fn listen(path: &Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let fd = seqpacket_socket()?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    rustix::net::listen(&fd, 128)?;
    Ok(fd)
}

/// accept(2) one connection from a listening socket.
pub fn accept(listener: BorrowedFd<'_>) -> std::io::Result<Conn> {
    loop {
        match rustix::net::accept_with(listener, SocketFlags::CLOEXEC) {
            Ok(fd) => {
                size_send_buffer(&fd);
                return Ok(Conn { fd });
            }
            Err(Errno::INTR) | Err(Errno::CONNABORTED) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn message_boundaries_and_fds() {
        let (a, b) = Conn::pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello fd").unwrap();
        a.send(b"one", &[f.as_fd()]).unwrap();
        a.send(b"two", &[]).unwrap();
        let m = b.recv(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(m.bytes, b"one");
        assert_eq!(m.fds.len(), 1);
        let mut got = std::fs::File::from(m.fds.into_iter().next().unwrap());
        got.rewind().unwrap();
        let mut s = String::new();
        got.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello fd");
        assert_eq!(b.recv(None).unwrap().bytes, b"two");
    }

    #[test]
    fn oversized_and_closed() {
        let (a, b) = Conn::pair().unwrap();
        assert!(a.send(&vec![0; MAX_MESSAGE + 1], &[]).is_err());
        // Bypass our own send's check to show the receiver refuses too.
        let big = vec![7u8; MAX_MESSAGE + 100];
        rustix::net::send(&a, &big, SendFlags::empty()).unwrap();
        assert!(matches!(b.recv(None), Err(RecvError::Oversized(_))));
        drop(a);
        assert!(matches!(b.recv(None), Err(RecvError::Closed)));
    }

    #[test]
    fn too_many_fds_is_refused() {
        let (a, _b) = Conn::pair().unwrap();
        let f = tempfile::tempfile().unwrap();
        let fds: Vec<_> = (0..MAX_FDS + 1).map(|_| f.as_fd()).collect();
        assert!(a.send(b"x", &fds).is_err());
    }

    #[test]
    fn timeout() {
        let (_a, b) = Conn::pair().unwrap();
        assert!(matches!(
            b.recv(Some(Duration::from_millis(20))),
            Err(RecvError::TimedOut)
        ));
    }
}
