//! /dev: the default devices (config-linux.md "Default Devices"), the
//! config's linux.devices, /dev/ptmx and the /dev symlinks
//! (runtime-linux.md). Device nodes are made with mknod; in a user
//! namespace, where mknod is not allowed, the host's node is bind-mounted
//! over an empty file instead, as runc does.

use super::mounts::{bind_fd, Options};
use super::resolve::{create_in_root, create_parent_in_root, proc_fd_path, split_parent, Kind};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use rustix::fs::{
    chownat, makedev, mknodat, statat, symlinkat, unlinkat, AtFlags, FileType, Gid, Mode, Uid,
};
use rustix::io::Errno;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A device node to provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub path: PathBuf,
    pub file_type: FileType,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices every container gets.
pub fn defaults() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| Node {
        path: Path::new("/dev").join(name),
        file_type: FileType::CharacterDevice,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

/// A linux.devices entry as a node to make.
pub fn from_config(d: &LinuxDevice) -> Result<Node> {
    let file_type = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => FileType::CharacterDevice,
        LinuxDeviceType::B => FileType::BlockDevice,
        LinuxDeviceType::P => FileType::Fifo,
        LinuxDeviceType::A => bail!(
            "linux.devices: {}: type must be c, b, u or p",
            d.path().display()
        ),
    };
    Ok(Node {
        path: Path::new("/").join(d.path()),
        file_type,
        major: d.major() as u32,
        minor: d.minor() as u32,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

/// A directory device nodes are made in, opened once for all of its nodes
/// (the six defaults share /dev), with what mknod there leaves to fix.
struct NodeDir {
    path: PathBuf,
    fd: OwnedFd,
    /// A default ACL replaces the umask: mknod's mode is then not exact.
    default_acl: bool,
    /// A set-group-ID directory gives new files its own group.
    setgid: bool,
}

impl NodeDir {
    fn open(root: BorrowedFd<'_>, path: PathBuf) -> Result<NodeDir> {
        let fd = create_in_root(root, &path, Kind::Dir)?;
        let st = rustix::fs::fstat(&fd).context("stat the parent directory")?;
        // The fd is O_PATH, which fgetxattr refuses: ask through its
        // magic link, which names exactly this directory.
        let default_acl = match rustix::fs::getxattr(
            proc_fd_path(fd.as_fd()),
            "system.posix_acl_default",
            &mut [0u8; 0][..],
        ) {
            Ok(_) => true,
            Err(Errno::NODATA | Errno::NOTSUP) => false,
            Err(e) => return Err(e).context("read the parent directory's default ACL"),
        };
        Ok(NodeDir {
            path,
            fd,
            default_acl,
            setgid: st.st_mode & 0o2000 != 0,
        })
    }
}

/// The last directory nodes were made in (consecutive nodes in one
/// directory share its fd), and the owner mknod gives a new node here.
struct Dirs {
    last: Option<NodeDir>,
    uid: u32,
    gid: u32,
}

impl Dirs {
    fn new() -> Dirs {
        Dirs {
            last: None,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }

    /// The directory `node` goes in, and its name there.
    fn get(&mut self, root: BorrowedFd<'_>, node: &Path) -> Result<(&NodeDir, OsString)> {
        let (parent, name) = split_parent(node)?;
        if self.last.as_ref().is_none_or(|d| d.path != parent) {
            self.last = Some(NodeDir::open(root, parent)?);
        }
        Ok((self.last.as_ref().expect("opened above"), name))
    }
}

/// Makes `node` inside `root`, with the process's umask at 0 (create_all).
/// In the usual case that is one mknodat: the mode is exact under umask 0,
/// and the owner is already right when it is the caller's, unless a
/// default ACL or a set-group-ID directory says otherwise.
fn create(root: BorrowedFd<'_>, dirs: &mut Dirs, node: &Node) -> Result<()> {
    let (uid, gid) = (dirs.uid, dirs.gid);
    let (dir, name) = dirs.get(root, &node.path)?;
    let parent = dir.fd.as_fd();
    let dev = makedev(node.major, node.minor);
    match mknodat(
        parent,
        name.as_os_str(),
        node.file_type,
        Mode::from_raw_mode(node.mode),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EXIST) => return check_existing(parent, &name, node),
        Err(Errno::PERM) if node.file_type != FileType::Fifo => {
            return bind_host_node(root, node);
        }
        Err(e) => return Err(e).context("mknod"),
    }
    if dir.default_acl {
        rustix::fs::chmodat(
            parent,
            name.as_os_str(),
            Mode::from_raw_mode(node.mode),
            AtFlags::empty(),
        )
        .context("chmod")?;
    }
    let ours = node.uid == uid && node.gid == gid && !dir.setgid;
    if !ours {
        chownat(
            parent,
            name.as_os_str(),
            Some(Uid::from_raw(node.uid)),
            Some(Gid::from_raw(node.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .context("chown")?;
    }
    Ok(())
}

/// Something is at the node's path already: fine if it is that device.
fn check_existing(parent: BorrowedFd<'_>, name: &std::ffi::OsStr, node: &Node) -> Result<()> {
    if let Some(existing) = existing(parent, name)? {
        if existing == (node.file_type, makedev(node.major, node.minor))
            || node.file_type == FileType::Fifo && existing.0 == FileType::Fifo
        {
            return Ok(());
        }
    }
    bail!("a different file already exists there")
}

/// (type, rdev) of what is at `name` already, if anything.
fn existing(parent: BorrowedFd<'_>, name: &std::ffi::OsStr) -> Result<Option<(FileType, u64)>> {
    match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some((FileType::from_raw_mode(st.st_mode), st.st_rdev))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e).context("stat"),
    }
}

/// The host's node at the same path, bind-mounted over an empty file.
fn bind_host_node(root: BorrowedFd<'_>, node: &Node) -> Result<()> {
    let target = create_in_root(root, &node.path, Kind::File).context("create the bind target")?;
    bind_fd(&node.path, target.as_fd(), false, &Options::default())
        .with_context(|| format!("bind the host's {}", node.path.display()))
}

/// /dev/ptmx -> pts/ptmx (the container's own devpts instance).
pub fn setup_ptmx(root: BorrowedFd<'_>) -> Result<()> {
    let (dev, _) = create_parent_in_root(root, Path::new("/dev/ptmx"))?;
    match unlinkat(&dev, "ptmx", AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e).context("remove /dev/ptmx"),
    }
    symlinkat("pts/ptmx", &dev, "ptmx").context("symlink /dev/ptmx")
}

/// /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr, and /dev/core when the
/// host has /proc/kcore.
pub fn setup_symlinks(root: BorrowedFd<'_>) -> Result<()> {
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let (dev, _) = create_parent_in_root(root, Path::new("/dev/x"))?;
    for (target, name) in links {
        match symlinkat(target, &dev, name) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).with_context(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

/// Makes every device: the defaults, then linux.devices.
pub fn create_all(root: BorrowedFd<'_>, configured: &[LinuxDevice]) -> Result<()> {
    // The modes are exact, not filtered by the caller's umask.
    let old = rustix::process::umask(Mode::empty());
    let result = (|| {
        let mut dirs = Dirs::new();
        for node in defaults() {
            create(root, &mut dirs, &node)
                .with_context(|| format!("device {}", node.path.display()))?;
        }
        for d in configured {
            let node = from_config(d)?;
            create(root, &mut dirs, &node)
                .with_context(|| format!("linux.devices: {}", node.path.display()))?;
        }
        Ok(())
    })();
    rustix::process::umask(old);
    result
}
