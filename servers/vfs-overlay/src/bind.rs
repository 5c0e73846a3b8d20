//! The read-only rootfs: a recursive bind of the bundle rootfs, made private
//! and remounted read-only, and its undoing.
//!
//! Private propagation: the bind is made under the constellation root, whose
//! parent mount may be shared (systemd makes `/` shared). A shared bind would
//! join that peer group, so the containers' own mount namespaces (cloned
//! from this one) would stay peers of the host and mount events would travel
//! between them. Private cuts that link.
//!
//! Read-only applies to the top mount (as runc's `root.readonly`); mounts
//! inside the rootfs, carried along by MS_REC, keep their own flags.

use protocol::Error;
use rustix::fs::StatVfsMountFlags;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bind-mounts `source` at `target` (an existing empty directory), private,
/// read-only. On failure nothing stays mounted.
pub fn mount_readonly(source: &Path, target: &Path) -> Result<(), Error> {
    rustix::mount::mount_bind_recursive(source, target).map_err(|e| {
        kernel(
            e,
            format!("bind-mount {} on {}", source.display(), target.display()),
        )
    })?;
    if let Err(e) = make_private_readonly(source, target) {
        if let Err(u) = rustix::mount::unmount(target, UnmountFlags::DETACH) {
            tracing::warn!(
                "cannot undo the bind on {} after a failure: {u}",
                target.display()
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Makes the bind at `target` private and read-only. Idempotent, so it also
/// finishes a bind a crash interrupted.
pub fn make_private_readonly(source: &Path, target: &Path) -> Result<(), Error> {
    rustix::mount::mount_change(
        target,
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| kernel(e, format!("make {} private", target.display())))?;
    let flags = MountFlags::BIND | MountFlags::RDONLY | kept_flags(source)?;
    rustix::mount::mount_remount(target, flags, "")
        .map_err(|e| kernel(e, format!("remount {} read-only", target.display())))
}

/// The per-mount flags of the mount `source` lives on. A bind remount sets
/// every per-mount flag at once, so the source's nosuid, nodev, noexec and
/// atime flags are passed again rather than silently dropped.
fn kept_flags(source: &Path) -> Result<MountFlags, Error> {
    let st = rustix::fs::statvfs(source)
        .map_err(|e| kernel(e, format!("statvfs {}", source.display())))?;
    let f = st.f_flag;
    let pairs = [
        (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
        (StatVfsMountFlags::NODEV, MountFlags::NODEV),
        (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
        (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
        (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
        (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
    ];
    let mut out = MountFlags::empty();
    for (have, set) in pairs {
        if f.contains(have) {
            out |= set;
        }
    }
    if !f.intersects(StatVfsMountFlags::NOATIME | StatVfsMountFlags::RELATIME) {
        // Neither flag means strictatime; without it the kernel picks relatime.
        out |= MountFlags::STRICTATIME;
    }
    Ok(out)
}

/// Detaches every mount stacked at `target` (MNT_DETACH: a process still
/// using the rootfs keeps its view; the host's mount table no longer shows
/// it). Returns how many were removed; 0 when nothing was mounted there.
pub fn unmount_all(target: &Path) -> Result<u32, Error> {
    let mut n = 0;
    loop {
        match rustix::mount::unmount(target, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW) {
            Ok(()) => n += 1,
            // EINVAL: not a mount point (any more); ENOENT: no such directory.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => return Ok(n),
            Err(e) => return Err(kernel(e, format!("unmount {}", target.display()))),
        }
        if n > 64 {
            return Err(Error::internal(format!(
                "{} still has mounts after 64 unmounts",
                target.display()
            )));
        }
    }
}

/// Whether `a` and `b` are the same directory (device and inode): true for
/// a bind mount's target and its source.
pub fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

fn kernel(e: rustix::io::Errno, what: String) -> Error {
    Error::kernel(e.raw_os_error(), format!("{what}: {e}"))
}
