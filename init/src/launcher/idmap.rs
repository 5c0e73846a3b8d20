//! Id-mapped bind mounts (config.md: the `idmap` and `ridmap` options,
//! `uidMappings` and `gidMappings` of a mount): the mount shows its files'
//! owners through a user namespace's mappings, with mount_setattr(2)'s
//! MOUNT_ATTR_IDMAP.
//!
//! The user namespace is made by the runtime, before the container's clone
//! (in the caller's pid namespace, so that the helper's /proc entry is
//! ours to write): a helper process is cloned into a new user namespace and
//! waits on a pipe; its uid_map and gid_map are written, its namespace is
//! opened, and the pipe's close lets it exit. The fd outlives it, and the
//! container process applies it to its clone of the mount's source.

use super::sys::{self, Forked};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Mount};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};

/// The user namespaces of the config's id-mapped mounts, by their index in
/// `mounts`. Those without their own mappings take the container's user
/// namespace, which is not supported yet, and are refused.
pub fn prepare(mounts: &[Mount], user_ns: bool) -> Result<BTreeMap<usize, OwnedFd>> {
    let mut out = BTreeMap::new();
    for (i, m) in mounts.iter().enumerate() {
        let options = m.options().as_deref().unwrap_or(&[]);
        let idmap = options.iter().any(|o| o == "idmap" || o == "ridmap");
        let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
        if !idmap && uids.is_none() && gids.is_none() {
            continue;
        }
        if user_ns {
            bail!("mounts[{i}]: id-mapped mounts in a container with a user namespace are not supported yet");
        }
        let (Some(uids), Some(gids)) = (uids, gids) else {
            bail!("mounts[{i}]: an id-mapped mount needs uidMappings and gidMappings here (the container has no user namespace to take them from)");
        };
        let fd = userns_with(uids, gids).with_context(|| {
            format!("mounts[{i}]: make the user namespace of its uidMappings and gidMappings")
        })?;
        out.insert(i, fd);
    }
    Ok(out)
}

/// The helper's uid_map (gid_map) for a mount's mappings. A mount shows
/// an owner `d` on disk as the user namespace maps `d` to its parent: for
/// host (on-disk) `hostID` to show as `containerID` to the container,
/// which here shares the host's user namespace, the namespace maps
/// `hostID` to `containerID`, the reverse of a container's own user
/// namespace.
fn map_text(list: &[LinuxIdMapping]) -> String {
    list.iter()
        .map(|m| format!("{} {} {}\n", m.host_id(), m.container_id(), m.size()))
        .collect()
}

/// A user namespace with these mappings, as an fd.
fn userns_with(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (wait_r, wait_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let pid = match sys::clone3(libc::CLONE_NEWUSER as u64, None).context("clone the helper")? {
        Forked::Child => {
            // Only async-signal-safe calls here: wait for the close.
            drop(wait_w);
            let mut b = [0u8; 1];
            let _ = rustix::io::read(&wait_r, &mut b);
            sys::exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop(wait_r);
    let result = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), map_text(uids)).context("write uid_map")?;
        std::fs::write(format!("/proc/{pid}/gid_map"), map_text(gids)).context("write gid_map")?;
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/user"))
            .context("open the helper's user namespace")?;
        Ok(OwnedFd::from(ns))
    })();
    drop(wait_w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}

/// Applies a prepared user namespace to a detached mount (a clone made by
/// open_tree), recursively for `ridmap`.
pub fn apply(tree: impl AsFd, userns: impl AsFd, recursive: bool) -> Result<()> {
    sys::mount_setattr_idmap(tree, userns, recursive).context("id-map the mount (MOUNT_ATTR_IDMAP)")
}
