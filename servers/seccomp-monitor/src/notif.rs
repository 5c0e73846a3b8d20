//! The seccomp user-notification ioctls on a listener fd
//! (seccomp_unotify(2)): RECV, ID_VALID, SEND. The unsafe is here and only
//! here, one small function per ioctl.

use std::os::fd::{AsRawFd, BorrowedFd};

/// One notified syscall, as SECCOMP_IOCTL_NOTIF_RECV returns it.
#[derive(Debug, Clone, Copy)]
pub struct Notif {
    /// The kernel's cookie for this notification.
    pub id: u64,
    /// The thread that made the syscall (in our pid namespace).
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// What the agent answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Let the kernel run the syscall (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Fail it with this errno.
    Errno(i32),
}

impl Answer {
    pub fn describe(self) -> String {
        match self {
            Answer::Continue => "continue".into(),
            Answer::Errno(e) => format!("errno {e}"),
        }
    }
}

/// Blocks until a notification arrives (use poll first to not block).
#[allow(unsafe_code)]
pub fn recv(fd: BorrowedFd<'_>) -> std::io::Result<Notif> {
    // The kernel requires a zeroed buffer.
    // SAFETY: seccomp_notif is plain old data; all-zero is a valid value.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: RECV writes one struct seccomp_notif into `n`, which is
    // exactly that size (the ioctl number encodes it).
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        arch: n.data.arch,
        args: n.data.args,
    })
}

/// Is notification `id` still pending (its thread still waits in the
/// syscall)? False once the thread died or the syscall was interrupted.
#[allow(unsafe_code)]
pub fn id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: ID_VALID reads one u64 from the pointer, which points at `id`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) };
    rc == 0
}

/// Answers notification `id`. ENOENT: it is no longer pending (answered
/// already, or its thread is gone).
#[allow(unsafe_code)]
pub fn send(fd: BorrowedFd<'_>, id: u64, answer: Answer) -> std::io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match answer {
        Answer::Continue => resp.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        Answer::Errno(e) => resp.error = -e,
    }
    // SAFETY: SEND reads one struct seccomp_notif_resp from `resp`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
