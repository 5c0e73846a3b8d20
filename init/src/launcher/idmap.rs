//! Id-mapped bind mounts (config.md: the `idmap` and `ridmap` options,
//! `uidMappings` and `gidMappings` of a mount): the mount shows its files'
//! owners through a user namespace's mappings, with mount_setattr(2)'s
//! MOUNT_ATTR_IDMAP.
//!
//! Done by the runtime before the container's clone, in the host's user
//! namespace (the kernel wants privilege over the filesystem for it, which
//! a container in its own user namespace lacks): the source is cloned with
//! open_tree, the clone id-mapped, and the container's process only
//! attaches it where it goes. The mapping's user namespace comes from a
//! helper process cloned into a new user namespace, whose uid_map and
//! gid_map are written from our own /proc; the pipe's close lets it exit.
//!
//! The kernel shows an on-disk owner `d` as that namespace maps `d` to its
//! parent. So, for a mount's own mapping (`containerID`, `hostID`, `size`:
//! files of `hostID` on the host show as `containerID` in the container),
//! the namespace maps `hostID` to the host id the container sees as
//! `containerID`: `containerID` itself without a container user namespace,
//! its host id through the container's mappings with one. A mount with
//! `idmap` and no mappings of its own takes the container's mappings as they
//! are (files of host 0 show as the container's 0).

use super::sys::{self, Forked};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};
use rustix::mount::{open_tree, OpenTreeFlags};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// One line of a uid_map or gid_map: (id in the namespace, id in its
/// parent, count).
type Line = (u32, u32, u32);

/// The id-mapped clones of the config's id-mapped bind mounts, by their
/// index in `mounts`, ready to be attached.
pub fn prepare(spec: &Spec, bundle: &Path, user_ns: bool) -> Result<BTreeMap<usize, OwnedFd>> {
    let mounts = spec.mounts().as_deref().unwrap_or(&[]);
    let linux = spec.linux().as_ref();
    let container = (
        linux
            .and_then(|l| l.uid_mappings().as_deref())
            .unwrap_or(&[]),
        linux
            .and_then(|l| l.gid_mappings().as_deref())
            .unwrap_or(&[]),
    );
    let mut out = BTreeMap::new();
    for (i, m) in mounts.iter().enumerate() {
        let options = m.options().as_deref().unwrap_or(&[]);
        let has = |o: &str| options.iter().any(|x| x == o);
        let (idmap, ridmap) = (has("idmap"), has("ridmap"));
        if !idmap && !ridmap && m.uid_mappings().is_none() && m.gid_mappings().is_none() {
            continue;
        }
        if !has("bind") && !has("rbind") {
            bail!("mounts[{i}]: id-mapped mounts are supported for bind mounts only, not yet for a new {} mount", m.typ().as_deref().unwrap_or("?"));
        }
        let (uids, gids) =
            lines(m, user_ns, container).with_context(|| format!("mounts[{i}]: its id mapping"))?;
        let userns = userns_with(&uids, &gids)
            .with_context(|| format!("mounts[{i}]: make the user namespace of its id mapping"))?;
        let tree = idmapped_clone(m, bundle, has("rbind"), ridmap, userns.as_fd())
            .with_context(|| format!("mounts[{i}]: id-map {}", m.destination().display()))?;
        out.insert(i, tree);
    }
    Ok(out)
}

/// The helper namespace's uid_map and gid_map for mount `m`.
fn lines(
    m: &Mount,
    user_ns: bool,
    (cuids, cgids): (&[LinuxIdMapping], &[LinuxIdMapping]),
) -> Result<(Vec<Line>, Vec<Line>)> {
    let own = |l: &[LinuxIdMapping]| -> Vec<Line> {
        l.iter()
            .map(|x| (x.container_id(), x.host_id(), x.size()))
            .collect()
    };
    match (m.uid_mappings().as_deref(), m.gid_mappings().as_deref()) {
        (Some(u), Some(g)) => Ok((mount_lines(u, user_ns, cuids)?, mount_lines(g, user_ns, cgids)?)),
        (None, None) if user_ns => Ok((own(cuids), own(cgids))),
        (None, None) => bail!("`idmap` needs uidMappings and gidMappings on the mount when the container has no user namespace to take them from"),
        _ => bail!("uidMappings and gidMappings go together"),
    }
}

/// A mount's own mapping, as the helper's map lines.
fn mount_lines(
    list: &[LinuxIdMapping],
    user_ns: bool,
    container: &[LinuxIdMapping],
) -> Result<Vec<Line>> {
    list.iter()
        .map(|x| {
            let seen_as = match user_ns {
                false => x.container_id(),
                true => to_host(x.container_id(), x.size(), container)?,
            };
            Ok((x.host_id(), seen_as, x.size()))
        })
        .collect()
}

/// The host id of container id `id` (and the `size - 1` after it, in the
/// same extent of the container's mapping).
fn to_host(id: u32, size: u32, container: &[LinuxIdMapping]) -> Result<u32> {
    for e in container {
        let (c, h, n) = (
            u64::from(e.container_id()),
            u64::from(e.host_id()),
            u64::from(e.size()),
        );
        if u64::from(id) >= c && u64::from(id) + u64::from(size) <= c + n {
            return Ok((h + u64::from(id) - c) as u32);
        }
    }
    bail!(
        "container ids {id}..{} are not all in one range of the container's own mapping",
        u64::from(id) + u64::from(size)
    )
}

/// open_tree(CLONE) of the mount's source, id-mapped through `userns`
/// (every mount of an rbind clone for `ridmap`).
fn idmapped_clone(
    m: &Mount,
    bundle: &Path,
    rbind: bool,
    ridmap: bool,
    userns: std::os::fd::BorrowedFd<'_>,
) -> Result<OwnedFd> {
    let Some(src) = m.source() else {
        bail!("a bind mount needs a source");
    };
    let src = bundle.join(src);
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if rbind {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = open_tree(rustix::fs::CWD, &src, flags)
        .with_context(|| format!("clone {}", src.display()))?;
    sys::mount_setattr_idmap(&tree, userns, ridmap).context("MOUNT_ATTR_IDMAP")?;
    Ok(tree)
}

fn map_text(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|(a, b, n)| format!("{a} {b} {n}\n"))
        .collect()
}

/// A user namespace with these maps, as an fd.
fn userns_with(uids: &[Line], gids: &[Line]) -> Result<OwnedFd> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n}))
            .unwrap()
    }

    #[test]
    fn mount_mappings_through_the_container_user_namespace() {
        let container = [map(0, 100000, 65536)];
        // Host 1000 shows as container 0 = host 100000.
        assert_eq!(
            mount_lines(&[map(0, 1000, 1)], true, &container).unwrap(),
            vec![(1000, 100000, 1)]
        );
        // Without a container user namespace: as container 0 = host 0.
        assert_eq!(
            mount_lines(&[map(0, 1000, 1)], false, &[]).unwrap(),
            vec![(1000, 0, 1)]
        );
        assert!(mount_lines(&[map(65535, 1000, 2)], true, &container).is_err());
    }
}
