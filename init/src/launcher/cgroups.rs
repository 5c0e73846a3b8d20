//! A `cgroup` mount, done as runc 1.1 does it on the host it finds:
//!
//! - cgroup v1 (and the v1/v2 hybrid of this host, whose v2 part runc 1.1
//!   leaves out): a tmpfs at the destination, and in it one directory per
//!   v1 hierarchy, named like the host's mount point (cpu, memory,
//!   name=systemd -> systemd...). With a cgroup namespace each is a fresh
//!   `cgroup` mount of that hierarchy; without, it is a bind of the
//!   container's own cgroup directory from the host. Co-mounted
//!   controllers ("cpu,cpuacct") get symlinks per controller.
//! - cgroup v2 only: a `cgroup2` mount with a cgroup namespace, else a bind
//!   of the container's own cgroup directory.
//!
//! The options (ro, nosuid, ...) apply to each hierarchy mount; the tmpfs
//! gets them without ro, as runc does.

use super::mounts::{bind_fd, destination_fd, MountCx, Options};
use super::resolve::{open_in_root, proc_fd_path, Kind};
use anyhow::{Context as _, Result};
use nix::mount::MsFlags;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// One v1 hierarchy as /proc/self/mountinfo shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Its root inside the hierarchy (usually "/").
    pub root: PathBuf,
    pub mount_point: PathBuf,
    /// The super options naming it: "cpu", "cpu,cpuacct", "name=systemd".
    pub subsystems: Vec<String>,
}

/// The v1 hierarchies, read ahead by `read_hierarchies_ahead`.
static HIERARCHIES: std::sync::OnceLock<Vec<Hierarchy>> = std::sync::OnceLock::new();

/// Reads the v1 hierarchies now for the `mount`s to come in this process:
/// a late launch does it while it waits for its resources, and spares its
/// critical path a read of its mountinfo (the host's mounts and its own,
/// about 0.15 ms). Only cgroup mounts count, and none is made before the
/// resources come (a cgroup mount needs the process in its groups), so the
/// list is the one `mount` would read.
pub fn read_hierarchies_ahead() -> Result<()> {
    if HIERARCHIES.get().is_none() {
        let hierarchies = read_hierarchies()?;
        let _ = HIERARCHIES.set(hierarchies);
    }
    Ok(())
}

/// As `read_hierarchies_ahead`, from mountinfo text the parent read before
/// clone3 (for its own checks): the child inherits the list and reads no
/// mountinfo of its own. The child's mount namespace is a copy of the
/// parent's, and it makes no cgroup mount before it needs the list.
pub fn remember_hierarchies(mountinfo: &str) {
    let _ = HIERARCHIES.set(v1_hierarchies(mountinfo));
}

fn read_hierarchies() -> Result<Vec<Hierarchy>> {
    let mountinfo =
        cgroupfs::dir::read_small(Path::new("/proc/self/mountinfo")).context("read mountinfo")?;
    Ok(v1_hierarchies(&mountinfo))
}

pub fn mount(cx: &MountCx<'_>, dest: &Path, opts: &Options) -> Result<()> {
    let hierarchies = match HIERARCHIES.get() {
        Some(h) => h.clone(),
        None => read_hierarchies()?,
    };
    let own = cgroupfs::dir::read_small(Path::new("/proc/self/cgroup"))
        .context("read /proc/self/cgroup")?;
    if hierarchies.is_empty() {
        return mount_v2(cx, dest, opts, &own);
    }
    let mut tmpfs_opts = opts.clone();
    tmpfs_opts.flags.remove(MsFlags::MS_RDONLY);
    let target = destination_fd(cx.root, dest, Kind::Dir)?;
    nix::mount::mount(
        Some("tmpfs"),
        &proc_fd_path(target.as_fd()),
        Some("tmpfs"),
        tmpfs_opts.flags,
        Some("mode=755"),
    )
    .context("mount the tmpfs for the hierarchies")?;
    // The tmpfs just mounted there, which holds nothing but what we make in
    // it below: its directories and symlinks are made relative to it, with
    // no walk from the root each time.
    let tmpfs = open_in_root(cx.root, dest, OFlags::PATH | OFlags::DIRECTORY)
        .context("open the tmpfs for the hierarchies")?;
    for h in &hierarchies {
        mount_hierarchy(cx, tmpfs.as_fd(), opts, h, &own)
            .with_context(|| format!("cgroup hierarchy {}", h.subsystems.join(",")))?;
    }
    Ok(())
}

fn mount_hierarchy(
    cx: &MountCx<'_>,
    tmpfs: BorrowedFd<'_>,
    opts: &Options,
    h: &Hierarchy,
    own: &str,
) -> Result<()> {
    let name = h
        .mount_point
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| h.subsystems.join(","));
    let target = dir_in(tmpfs, &name)?;
    if cx.cgroup_ns {
        nix::mount::mount(
            Some("cgroup"),
            &proc_fd_path(target.as_fd()),
            Some("cgroup"),
            opts.flags,
            Some(h.subsystems.join(",").as_str()),
        )?;
    } else {
        let src = own_dir(h, own);
        bind_fd(&src, target.as_fd(), false, &bind_opts(opts))?;
    }
    for sub in name.split(',').filter(|s| *s != name) {
        match rustix::fs::symlinkat(name.as_str(), tmpfs, sub) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e).context("symlink a co-mounted controller"),
        }
    }
    Ok(())
}

/// The directory `name` (one component) made in our own tmpfs, as an
/// O_PATH fd; never a symlink (nothing else writes there).
fn dir_in(tmpfs: BorrowedFd<'_>, name: &str) -> Result<OwnedFd> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        anyhow::bail!("cgroup hierarchy directory name {name:?} is not one path component");
    }
    match rustix::fs::mkdirat(tmpfs, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(e).with_context(|| format!("mkdir {name}")),
    }
    rustix::fs::openat(
        tmpfs,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {name}"))
}

/// The options of a bind: the same per-mount flags, nothing else.
fn bind_opts(opts: &Options) -> Options {
    Options {
        flags: opts.flags,
        ..Default::default()
    }
}

/// The host directory of our own cgroup in hierarchy `h`.
fn own_dir(h: &Hierarchy, own: &str) -> PathBuf {
    let path = own_path(own, &h.subsystems).unwrap_or_else(|| "/".into());
    let rel = Path::new(&path)
        .strip_prefix(&h.root)
        .unwrap_or(Path::new(""));
    h.mount_point.join(rel.strip_prefix("/").unwrap_or(rel))
}

/// Our cgroup path for the hierarchy with these subsystems, from
/// /proc/self/cgroup ("4:memory:/a/b"; "0::/x" for v2 when subsystems is empty).
pub fn own_path(proc_cgroup: &str, subsystems: &[String]) -> Option<String> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
        // The same set, without allocating (neither list repeats a name):
        // this runs for every line and hierarchy in the container process.
        let theirs = list.split(',').filter(|s| !s.is_empty());
        let same = theirs.clone().count() == subsystems.len()
            && theirs
                .into_iter()
                .all(|t| subsystems.iter().any(|s| s == t));
        same.then(|| path.to_string())
    })
}

/// Every cgroup v1 hierarchy mounted, from mountinfo text.
pub fn v1_hierarchies(mountinfo: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        if rfields.first() != Some(&"cgroup") || fields.len() < 5 || rfields.len() < 3 {
            continue;
        }
        let subsystems: Vec<String> = rfields[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.is_empty())
            .filter(|o| {
                !o.starts_with("release_agent=")
                    && !matches!(
                        *o,
                        "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode" | "favordynmods"
                    )
            })
            .map(String::from)
            .collect();
        let h = Hierarchy {
            root: PathBuf::from(unescape(fields[3])),
            mount_point: PathBuf::from(unescape(fields[4])),
            subsystems,
        };
        // A hierarchy mounted twice is listed once.
        if !out.iter().any(|o| o.subsystems == h.subsystems) {
            out.push(h);
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn mount_v2(cx: &MountCx<'_>, dest: &Path, opts: &Options, own: &str) -> Result<()> {
    let target = destination_fd(cx.root, dest, Kind::Dir)?;
    if cx.cgroup_ns {
        nix::mount::mount(
            Some("cgroup2"),
            &proc_fd_path(target.as_fd()),
            Some("cgroup2"),
            opts.flags,
            None::<&str>,
        )
        .context("mount cgroup2")?;
        return Ok(());
    }
    let path = own_path(own, &[]).unwrap_or_else(|| "/".into());
    let src = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    bind_fd(&src, target.as_fd(), false, &bind_opts(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn hierarchies_and_own_paths() {
        let h = v1_hierarchies(INFO);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].subsystems, vec!["cpu", "cpuacct"]);
        assert_eq!(h[2].subsystems, vec!["name=systemd"]);
        let own = "9:name=systemd:/\n4:memory:/a/b\n1:cpuacct,cpu:/c\n0::/\n";
        assert_eq!(own_path(own, &h[0].subsystems).as_deref(), Some("/c"));
        assert_eq!(
            own_dir(&h[1], own),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(own_path(own, &[]).as_deref(), Some("/"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
