//! The container process joins its cgroups by itself (see
//! protocol::cgroup for why): the controllers open the files, the launcher
//! uses them.
//!
//! - v1: the child, still single-threaded, writes "0" to each group's
//!   `tasks` file first thing after clone3. That moves only the calling
//!   thread, which is the whole process, and the kernel does it without
//!   the global cgroup_threadgroup_rwsem (no RCU grace period).
//! - v2: clone3's CLONE_INTO_CGROUP creates the child in the group.

use anyhow::{bail, Context, Result};
use protocol::cgroup::CgroupJoin;
use std::os::fd::{AsRawFd, OwnedFd};

/// Parent side, before clone3: the v2 group to create the child in, for
/// clone3's `cgroup` field. On v2 both controllers name the same shared
/// directory; a process can only be in one v2 group.
pub fn v2_dir(entries: &[(CgroupJoin, OwnedFd)]) -> Result<Option<u64>> {
    let mut found: Option<(&str, &OwnedFd)> = None;
    for (entry, fd) in entries {
        let CgroupJoin::V2Dir { path } = entry else {
            continue;
        };
        match found {
            Some((p, _)) if p == path => {}
            Some((p, _)) => bail!(
                "the controllers put the container in two cgroup v2 groups ({p} and {path}); a process can be in only one"
            ),
            None => found = Some((path, fd)),
        }
    }
    Ok(found.map(|(_, fd)| fd.as_raw_fd() as u64))
}

/// Child side, while single-threaded: move ourselves into every v1 group.
pub fn join_v1(entries: &[(CgroupJoin, OwnedFd)]) -> Result<()> {
    for (entry, fd) in entries {
        if let CgroupJoin::V1Tasks { hierarchy, path } = entry {
            rustix::io::write(fd, b"0").with_context(|| {
                format!("join the {hierarchy} cgroup {path} (write 0 to its tasks file)")
            })?;
        }
    }
    Ok(())
}
