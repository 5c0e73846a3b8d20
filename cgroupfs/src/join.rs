//! JoinFds: the fds a new process uses to put itself into a group (see
//! [`protocol::cgroup`]): writing "0" to a v1 `tasks` file moves the
//! writer without the kernel's global cgroup_threadgroup_rwsem, and a v2
//! directory fd is what clone3(CLONE_INTO_CGROUP) takes.
//!
//! Read-only: nothing is journaled and nothing changes in cgroupfs; the fds
//! leave in the reply's `fds_out`, so the request must never be answered
//! from the journal (a recorded reply has no fds).

use crate::{CgroupDir, Version};
use protocol::cgroup::CgroupJoin;
use protocol::Error;
use std::fs::OpenOptions;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;

/// The entry and fd for `dir` in a hierarchy of `version` named `hierarchy`
/// (its controllers, as /proc/PID/cgroup spells them).
pub fn open(
    version: Version,
    hierarchy: &str,
    dir: &CgroupDir,
) -> Result<(CgroupJoin, OwnedFd), Error> {
    let path = dir.path().display().to_string();
    match version {
        Version::V1 => Ok((
            CgroupJoin::V1Tasks {
                hierarchy: hierarchy.to_string(),
                path,
            },
            open_tasks(dir)?,
        )),
        Version::V2 => Ok((CgroupJoin::V2Dir { path }, open_dir(dir)?)),
    }
}

/// `<dir>/tasks`, O_WRONLY|O_CLOEXEC (std always adds O_CLOEXEC; no
/// O_CREAT or O_TRUNC: it is a kernel file).
fn open_tasks(dir: &CgroupDir) -> Result<OwnedFd, Error> {
    let p = dir.file("tasks");
    OpenOptions::new()
        .write(true)
        .open(&p)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(format!("open {} for a process to join", p.display()), &e))
}

/// The group directory, O_RDONLY|O_DIRECTORY|O_CLOEXEC.
fn open_dir(dir: &CgroupDir) -> Result<OwnedFd, Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir.path())
        .map(OwnedFd::from)
        .map_err(|e| {
            Error::io(
                format!(
                    "open cgroup directory {} for CLONE_INTO_CGROUP",
                    dir.path().display()
                ),
                &e,
            )
        })
}

/// JoinFds takes no fds: refuse any that came with it (they are dropped,
/// so closed, with the request).
pub fn refuse_fds_in(fds_in: &[OwnedFd], what: &str) -> Result<(), Error> {
    if fds_in.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{what} takes no file descriptors, but {} came with the request",
        fds_in.len()
    )))
}

/// Answers a JoinFds that did not come through the server loop (no Ctx to
/// carry the fds back).
pub fn needs_ctx(server: &str) -> Error {
    Error::unsupported(format!(
        "JoinFds hands out file descriptors, which only travel with a {server} reply; send it through the server socket"
    ))
}
