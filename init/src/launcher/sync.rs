//! The sync channel between `launch()` (the parent) and the container
//! process while it is being set up: a SEQPACKET socketpair, one JSON
//! message per step. Both ends are close-on-exec, so the parent sees EOF
//! the moment the child execs (or dies).

use libipc::wire::{Conn, RecvError};
use serde::{Deserialize, Serialize};

/// One step of the handshake. Parent -> child: `Go`, `Attached`,
/// `HooksDone`. Child -> parent: `NamespacesReady`, `MountsDone`, `Ready`,
/// `Error`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// uid/gid maps are written; the child's pid as the parent sees it.
    Go { pid: i32 },
    /// Every namespace is created or joined: attach the cgroups.
    NamespacesReady,
    /// Cgroups attached (created_process returned).
    Attached,
    /// Mounts done, before pivot_root: run the runtime hooks.
    MountsDone,
    /// prestart/createRuntime hooks done (create_runtime returned).
    HooksDone,
    /// The seccomp listener (one fd attached), before Ready.
    SeccompListener,
    /// Setup complete: the child now waits on the exec fifo (or execs).
    Ready,
    /// A late launch (parent -> child, in place of `Attached`): what init
    /// prepared while the child made its namespaces and first mounts. The
    /// fds attached: one per join, then the network namespace when `netns`,
    /// then the exec fifo (O_PATH) unless the launch has a start gate.
    Resources {
        joins: Vec<protocol::cgroup::CgroupJoin>,
        netns: bool,
        seccomp: Option<protocol::seccomp::Program>,
    },
    /// `LaunchRequest::start_gate` (parent -> child, after Ready): exec now.
    Start,
    /// A step failed in the child.
    Error { errno: i32, message: String },
}

pub fn send(conn: &Conn, msg: &Msg) -> std::io::Result<()> {
    send_with_fds(conn, msg, &[])
}

/// `msg` with `fd` attached.
pub fn send_with_fd(
    conn: &Conn,
    msg: &Msg,
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    send_with_fds(conn, msg, &[fd])
}

/// `msg` with several fds attached.
pub fn send_with_fds(
    conn: &Conn,
    msg: &Msg,
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    conn.send(&bytes, fds)
}

/// The next message and the fds attached to it. (A peer that exited with
/// our last message unread still has its own read: see `Conn::recv`.)
pub fn recv_with_fds(conn: &Conn) -> std::io::Result<Option<(Msg, Vec<std::os::fd::OwnedFd>)>> {
    match conn.recv(None) {
        Ok(m) => serde_json::from_slice(&m.bytes)
            .map(|msg| Some((msg, m.fds)))
            .map_err(std::io::Error::other),
        Err(RecvError::Closed) => Ok(None),
        Err(RecvError::Io(e)) => Err(e),
        Err(e) => Err(std::io::Error::other(format!("{e:?}"))),
    }
}

/// The next message; `Ok(None)` when the peer closed its end. (An fd
/// sent along is closed.)
pub fn recv(conn: &Conn) -> std::io::Result<Option<Msg>> {
    recv_with_fds(conn).map(|m| m.map(|(msg, _)| msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child's last words survive its exit even when our own last
    /// message to it went unread: its error, not ECONNRESET, is what we read.
    #[test]
    fn an_error_sent_before_exit_is_read_after_a_reset() {
        let (parent, child) = Conn::pair().unwrap();
        send(&parent, &Msg::Attached).unwrap();
        let err = Msg::Error {
            errno: 1,
            message: "process.x: refused".into(),
        };
        send(&child, &err).unwrap();
        drop(child); // exits with Attached unread
        match recv(&parent) {
            Ok(Some(Msg::Error { message, .. })) => assert_eq!(message, "process.x: refused"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(recv(&parent), Ok(None)), "then the end");
    }
}
