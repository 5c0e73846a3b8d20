//! The few system calls that neither nix nor rustix wrap safely. Each is a
//! tiny function with its SAFETY argument; everything else in the launcher
//! is safe Rust.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// What clone3 returned, seen from each side.
pub enum Forked {
    /// We are the new process.
    Child,
    /// We are the caller; the child's pid (in our pid namespace).
    Parent(i32),
}

/// clone3(2) without CLONE_VM: the child is a copy of the caller, like fork,
/// created directly in the namespaces named by `flags` (CLONE_NEW*).
/// SIGCHLD is its exit signal, so the caller reaps it with waitpid.
/// linux/sched.h; not in the libc crate for every target.
const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// `into_cgroup`: an fd of a cgroup v2 directory to create the child in
/// (CLONE_INTO_CGROUP).
pub fn clone3(flags: u64, into_cgroup: Option<u64>) -> io::Result<Forked> {
    let flags = match into_cgroup {
        Some(_) => flags | CLONE_INTO_CGROUP,
        None => flags,
    };
    let mut args = libc::clone_args {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: into_cgroup.unwrap_or(0),
    };
    // SAFETY: `args` is a valid clone_args of the size we pass. Without
    // CLONE_VM and with no stack the child gets a copy-on-write copy of our
    // address space and resumes here like after fork(2). The caller is
    // single-threaded (or, in tests, holds the only lock other threads would
    // need), so no lock is held by a thread that does not exist in the child.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match ret {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as i32)),
    }
}

/// Marks every fd from `first` up close-on-exec (close_range(2) with
/// CLOSE_RANGE_CLOEXEC). Nothing is closed, so no OwnedFd is invalidated;
/// the kernel closes them at execve.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on
    // descriptors; it neither closes nor reuses any of them.
    unsafe { close_range(first, libc::CLOSE_RANGE_CLOEXEC) }
}

/// Closes every fd from `first` up (close_range(2)).
///
/// # Safety
/// No File, OwnedFd or other owner may hold a descriptor from `first` up:
/// it would go on using a closed (or later reused) number. init calls it
/// first thing in main, before it opens anything.
pub unsafe fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: the caller's promise above.
    unsafe { close_range(first, 0) }
}

/// close_range(first, ~0, flags).
///
/// # Safety
/// As `close_from` unless `flags` has CLOSE_RANGE_CLOEXEC.
unsafe fn close_range(first: u32, flags: u32) -> io::Result<()> {
    // SAFETY: plain integers; what the closing means is the caller's.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// mount_setattr(2) attributes (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// What one mount_setattr call changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    pub set: u64,
    pub clr: u64,
    /// MS_SHARED, MS_SLAVE, MS_PRIVATE or MS_UNBINDABLE; 0 leaves it.
    pub propagation: u64,
}

impl MountAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clr == 0 && self.propagation == 0
    }
}

#[repr(C)]
struct RawMountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount whose root `fd` is (AT_EMPTY_PATH), and on
/// every mount below it when `recursive`.
pub fn mount_setattr(fd: impl AsFd, attr: MountAttr, recursive: bool) -> io::Result<()> {
    mount_setattr_raw(
        fd,
        RawMountAttr {
            attr_set: attr.set,
            attr_clr: attr.clr,
            propagation: attr.propagation,
            userns_fd: 0,
        },
        recursive,
    )
}

/// MOUNT_ATTR_IDMAP: the mount (a detached clone from open_tree) shows its
/// files' owners through the id mappings of the user namespace `userns`.
pub fn mount_setattr_idmap(fd: impl AsFd, userns: impl AsFd, recursive: bool) -> io::Result<()> {
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    mount_setattr_raw(
        fd,
        RawMountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_fd().as_raw_fd() as u64,
        },
        recursive,
    )
}

fn mount_setattr_raw(fd: impl AsFd, raw: RawMountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= 0x8000; // AT_RECURSIVE
    }
    // SAFETY: the path is a valid empty C string, `raw` is a mount_attr of
    // the size passed, and the kernel only reads both.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            flags,
            &raw as *const RawMountAttr,
            std::mem::size_of::<RawMountAttr>(),
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a new session keyring named
/// `name`, so that the container does not share the caller's keys. Returns
/// the keyring's serial.
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<i64> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl reads the NUL-terminated name and nothing else.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret)
}

/// Puts every catchable signal back to its default action. Rust ignores
/// SIGPIPE at startup and callers may ignore others; an ignored signal stays
/// ignored across execve, which the container's program must not inherit.
pub fn reset_signal_dispositions() {
    for sig in 1..libc::SIGRTMIN() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is always a valid disposition; no handler runs.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// _exit(2): ends the forked child without running the caller's atexit
/// handlers or flushing buffers it copied from the parent (which would
/// print the parent's pending output twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes no pointers and does not return.
    unsafe { libc::_exit(code) }
}

/// struct sched_attr (linux/sched/types.h), with the utilization clamps
/// (SCHED_ATTR_SIZE_VER1, 56 bytes).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_setattr(2) on the calling thread (the launcher's child is
/// single-threaded, so that is the whole process).
pub fn sched_setattr(attr: &SchedAttr) -> io::Result<()> {
    let mut a = *attr;
    a.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel reads `size` bytes of a valid sched_attr that
    // outlives the call; pid 0 is the caller.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &a as *const SchedAttr, 0) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, ioprio): the caller's I/O priority,
/// inherited by the processes it starts.
pub fn ioprio_set_self(ioprio: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, ioprio) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// personality(2): the caller's execution domain, kept across execve.
pub fn set_personality(persona: libc::c_ulong) -> io::Result<()> {
    // SAFETY: an integer argument only; returns the previous persona.
    let ret = unsafe { libc::personality(persona) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// set_mempolicy(2): the caller's NUMA memory policy, inherited across
/// fork and execve. `nodemask` holds `maxnode` bits.
pub fn set_mempolicy(mode: i32, nodemask: &[libc::c_ulong], maxnode: u64) -> io::Result<()> {
    let mask = match nodemask.is_empty() {
        true => std::ptr::null(),
        false => nodemask.as_ptr(),
    };
    // SAFETY: the kernel reads at most `maxnode` bits from `mask`, which
    // holds that many (or is NULL with an empty mask).
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, mask, maxnode) };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
