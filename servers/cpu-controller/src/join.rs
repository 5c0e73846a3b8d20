//! JoinFds: the fds a new process uses to put itself into a group (see
//! [`protocol::cgroup`]): writing "0" to a v1 `tasks` file moves the
//! writer without the kernel's global cgroup_threadgroup_rwsem, and a v2
//! directory fd is what clone3(CLONE_INTO_CGROUP) takes.
//!
//! Read-only: nothing is journaled and nothing changes in cgroupfs; the fds
//! leave in the reply's `fds_out`, so the request must never be answered
//! from the journal (a recorded reply has no fds).

use crate::layout::Layout;
use protocol::cgroup::CgroupJoin;
use protocol::Error;
use std::os::fd::OwnedFd;
use std::path::Path;

/// One entry and fd per hierarchy the group `rel` lives in, in the
/// layout's order. A v1 hierarchy is named by our controllers in it
/// ("cpu", or "cpu,cpuacct" when co-mounted) or its name ("name=systemd");
/// on v2 every controller is in
/// the one directory, so there is one V2Dir.
pub fn group(layout: &Layout, rel: &Path) -> Result<(Vec<CgroupJoin>, Vec<OwnedFd>), Error> {
    let mut entries = vec![];
    let mut fds = vec![];
    for m in layout.mounts() {
        let (entry, fd) = open(m.version, &m.label(), &m.dir(rel))?;
        entries.push(entry);
        fds.push(fd);
    }
    Ok((entries, fds))
}

pub use cgroupfs::join::{needs_ctx, open, refuse_fds_in};
