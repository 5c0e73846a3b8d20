//! Installing the container's seccomp program (config-linux.md "Seccomp"):
//! the program was compiled by seccomp-monitor and travels init -> ipc ->
//! here. It is the container process's last act of setup: after
//! no_new_privs when that is set, or while the process still holds
//! CAP_SYS_ADMIN when it is not (the kernel refuses an unprivileged filter
//! without no_new_privs), as runc does.
//!
//! With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel hands back the
//! listener fd (close-on-exec); the child sends it to the parent over the
//! sync channel and closes its own copy before exec.

use anyhow::{bail, Context, Result};
use protocol::seccomp::Program;
use std::os::fd::{FromRawFd, OwnedFd};

/// SECCOMP_FILTER_FLAG_NEW_LISTENER (linux/seccomp.h).
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
/// The kernel's BPF_MAXINSNS.
const MAX_INSNS: usize = 4096;

/// Installs `program` on the calling thread (the container process is
/// single-threaded here). Returns the listener when the program asks for one.
pub fn install(program: &Program) -> Result<Option<OwnedFd>> {
    if program.insns.is_empty() {
        bail!("linux.seccomp: the compiled program is empty");
    }
    if program.insns.len() > MAX_INSNS {
        bail!(
            "linux.seccomp: the program has {} instructions, over the kernel's {MAX_INSNS}",
            program.insns.len()
        );
    }
    let filter: Vec<libc::sock_filter> = program
        .insns
        .iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    set_mode_filter(program.flags, &filter).with_context(|| {
        format!(
            "linux.seccomp: install the filter (seccomp SECCOMP_SET_MODE_FILTER, flags {:#x})",
            program.flags
        )
    })
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog).
#[allow(unsafe_code)]
fn set_mode_filter(flags: u32, filter: &[libc::sock_filter]) -> std::io::Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog {
        // install() checked len <= 4096.
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel
    // copies the instructions and keeps no pointer into our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if flags & FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER the return value is a new fd that nothing
    // else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(rc as i32) }))
}
