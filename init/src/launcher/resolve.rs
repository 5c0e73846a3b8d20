//! Paths inside the container's rootfs, resolved so that nothing (a symlink,
//! `..`) leads outside it: openat2(2) with RESOLVE_IN_ROOT treats the rootfs
//! fd as `/` for every step, absolute symlinks included. Missing components
//! are created through fds of directories that were themselves resolved
//! inside the root, so a mount destination that is a symlink out of the
//! rootfs ends up below the rootfs, never on the host.

use rustix::fs::{
    mkdirat, openat, openat2, readlinkat, statat, AtFlags, FileType, Mode, OFlags, ResolveFlags,
};
use rustix::io::Errno;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

/// What to create for a missing last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
}

/// Symlinks followed while creating one path, as the kernel's MAXSYMLINKS.
const MAX_LINKS: u32 = 40;

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
}

/// Opens `path` (container-absolute) inside `root`.
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    // EAGAIN: a rename or mount anywhere on the host (the kernel's seqlocks
    // are global) raced a `..` step; openat2(2) asks the caller to retry.
    let mut tries = 0;
    loop {
        match openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            resolve_flags(),
        ) {
            Err(Errno::AGAIN) if tries < 64 => tries += 1,
            other => return Ok(other?),
        }
    }
}

/// An O_PATH fd of `path` inside `root`, creating the missing directories on
/// the way and the last component as `kind` when it is missing.
pub fn create_in_root(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    create_from(root, normalize(path), kind, 0)
}

/// The components of `path` with `.` dropped and `..` applied lexically
/// (it cannot climb above `/`).
fn normalize(path: &Path) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn create_from(
    root: BorrowedFd<'_>,
    comps: Vec<OsString>,
    kind: Kind,
    links: u32,
) -> io::Result<OwnedFd> {
    // Most destinations exist already: one openat2 of the whole path gives
    // what the walk below would end with.
    let mut whole = PathBuf::from("/");
    whole.extend(&comps);
    match open_in_root(root, &whole, OFlags::PATH) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        other => return other,
    }
    // Usually only the last component is missing: make it in its parent,
    // when nothing (not even a dangling symlink) is there, and resolve the
    // whole path again. Otherwise walk, from the parent when it exists.
    let mut done = PathBuf::from("/");
    let mut start = 0;
    if let Some(name) = comps.last() {
        let parent: PathBuf = whole.parent().unwrap_or(Path::new("/")).to_path_buf();
        if let Ok(dir) = open_in_root(root, &parent, OFlags::PATH | OFlags::DIRECTORY) {
            if let Err(Errno::NOENT) = statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                create_one(dir.as_fd(), name, kind)?;
                return open_in_root(root, &whole, OFlags::PATH);
            }
            done = parent;
            start = comps.len() - 1;
        }
    }
    for (i, name) in comps.iter().enumerate().skip(start) {
        let last = i + 1 == comps.len();
        let next = done.join(name);
        match open_in_root(root, &next, OFlags::PATH) {
            Ok(fd) if last => return Ok(fd),
            Ok(_) => {
                done = next;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = open_in_root(root, &done, OFlags::PATH | OFlags::DIRECTORY)?;
        match statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {
                create_one(parent.as_fd(), name, if last { kind } else { Kind::Dir })?;
                done = next;
            }
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                // A dangling symlink: follow it (inside the root) and go on
                // creating from where it points.
                if links >= MAX_LINKS {
                    return Err(Errno::LOOP.into());
                }
                let target = PathBuf::from(OsString::from_vec(
                    readlinkat(&parent, name, Vec::new())?.into_bytes(),
                ));
                let mut full = if target.is_absolute() {
                    target
                } else {
                    done.join(target)
                };
                for rest in &comps[i + 1..] {
                    full.push(rest);
                }
                return create_from(root, normalize(&full), kind, links + 1);
            }
            Ok(_) => return Err(Errno::NOENT.into()),
            Err(e) => return Err(e.into()),
        }
    }
    open_in_root(root, &done, OFlags::PATH)
}

fn create_one(parent: BorrowedFd<'_>, name: &OsString, kind: Kind) -> io::Result<()> {
    let made = match kind {
        Kind::Dir => mkdirat(parent, name.as_os_str(), Mode::from_raw_mode(0o755)),
        Kind::File => openat(
            parent,
            name.as_os_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map(drop),
    };
    match made {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The parent directory (created if missing) of `path` inside `root`, and
/// the last component's name: for mknod and symlink, which must not follow
/// an existing last component.
pub fn create_parent_in_root(root: BorrowedFd<'_>, path: &Path) -> io::Result<(OwnedFd, OsString)> {
    let (parent_path, name) = split_parent(path)?;
    let parent = create_in_root(root, &parent_path, Kind::Dir)?;
    Ok((parent, name))
}

/// `path` normalized as `create_parent_in_root` sees it: its parent
/// directory (absolute) and its last component. `/` has no last component.
pub fn split_parent(path: &Path) -> io::Result<(PathBuf, OsString)> {
    let mut comps = normalize(path);
    let Some(name) = comps.pop() else {
        return Err(Errno::INVAL.into());
    };
    let mut parent_path = PathBuf::from("/");
    parent_path.extend(comps);
    Ok((parent_path, name))
}

/// "/proc/self/fd/N" for an fd: the magic link through which mount(2) and
/// friends reach exactly the object the fd was resolved to.
pub fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The type of what `fd` refers to.
pub fn file_type(fd: BorrowedFd<'_>) -> io::Result<FileType> {
    let st = rustix::fs::fstat(fd)?;
    Ok(FileType::from_raw_mode(st.st_mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_of(dir: &Path) -> OwnedFd {
        rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    /// Where an O_PATH fd points, as the host sees it.
    fn host_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(proc_fd_path(fd.as_fd())).unwrap()
    }

    #[test]
    fn a_missing_last_component_is_made_in_its_parent() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("sys/fs")).unwrap();
        let root = root_of(t.path());
        let fd = create_in_root(root.as_fd(), Path::new("/sys/fs/cgroup"), Kind::Dir).unwrap();
        assert_eq!(host_path(&fd), t.path().join("sys/fs/cgroup"));
        assert!(t.path().join("sys/fs/cgroup").is_dir());
        let fd = create_in_root(root.as_fd(), Path::new("/dev/null"), Kind::File).unwrap();
        assert_eq!(host_path(&fd), t.path().join("dev/null"));
        assert!(t.path().join("dev/null").is_file());
        // Existing: the same, nothing made.
        let fd = create_in_root(root.as_fd(), Path::new("/sys/fs/cgroup"), Kind::Dir).unwrap();
        assert_eq!(host_path(&fd), t.path().join("sys/fs/cgroup"));
    }

    /// A dangling symlink, last or on the way, is followed inside the root:
    /// what it names is made there, never on the host.
    #[test]
    fn dangling_symlinks_are_made_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let escape = outside.path().join("escaped");
        symlink(&escape, t.path().join("last")).unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        symlink("../../../../..", t.path().join("etc/up")).unwrap();
        let root = root_of(t.path());
        let fd = create_in_root(root.as_fd(), Path::new("/last"), Kind::Dir).unwrap();
        let inside = t.path().join(escape.strip_prefix("/").unwrap());
        assert_eq!(host_path(&fd), inside);
        assert!(!escape.exists(), "made outside the root");
        let fd = create_in_root(root.as_fd(), Path::new("/etc/up/x"), Kind::File).unwrap();
        assert_eq!(host_path(&fd), t.path().join("x"));
        assert!(!outside.path().join("x").exists());
    }
}
