//! config.json `mounts`: option strings (config.md "Linux mount options"),
//! and each mount made onto a destination resolved inside the rootfs.
//!
//! Bind mounts use the new mount API: open_tree(OPEN_TREE_CLONE) gives a
//! detached copy of the source, mount_setattr applies ro/nosuid/... to it
//! before anyone can see it (no window where a "ro" bind is writable, and no
//! remount that could trip over flags locked in a user namespace), and
//! move_mount attaches it onto the O_PATH fd of the destination. Other
//! filesystems use mount(2) with the destination as /proc/self/fd/N, so the
//! kernel mounts on exactly the object resolved inside the root.

use super::resolve::{self, create_in_root, open_in_root, proc_fd_path, Kind};
use super::sys::{self, MountAttr};
use anyhow::{bail, Context as _, Result};
use nix::mount::MsFlags;
use oci_spec::runtime::Mount;
use rustix::fs::{FileType, OFlags, CWD};
use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A mount entry's options, sorted by how they are applied.
#[derive(Debug, Clone)]
pub struct Options {
    /// mount(2) flags to set.
    pub flags: MsFlags,
    /// Propagation changes, applied in order after the mount: (flag, recursive).
    pub propagation: Vec<(u64, bool)>,
    pub bind: bool,
    pub rbind: bool,
    /// r* options, applied with mount_setattr(AT_RECURSIVE).
    pub recursive: MountAttr,
    /// Filesystem-specific options, the data argument of mount(2).
    pub data: Vec<String>,
    pub tmpcopyup: bool,
    pub idmap: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            bind: false,
            rbind: false,
            recursive: MountAttr::default(),
            data: Vec::new(),
            tmpcopyup: false,
            idmap: false,
        }
    }
}

impl Options {
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// The per-mount attributes of `flags`, for mount_setattr.
    pub fn attr(&self) -> MountAttr {
        flags_to_attr(self.flags)
    }
}

/// mount(2) flags that are per-mount attributes, as mount_setattr bits.
pub fn flags_to_attr(flags: MsFlags) -> MountAttr {
    let mut a = MountAttr::default();
    let pairs = [
        (MsFlags::MS_RDONLY, sys::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, sys::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, sys::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, sys::MOUNT_ATTR_NOEXEC),
        (MsFlags::MS_NODIRATIME, sys::MOUNT_ATTR_NODIRATIME),
        (ms_nosymfollow(), sys::MOUNT_ATTR_NOSYMFOLLOW),
    ];
    for (ms, attr) in pairs {
        if flags.contains(ms) {
            a.set |= attr;
        }
    }
    let atime = [
        (MsFlags::MS_NOATIME, sys::MOUNT_ATTR_NOATIME),
        (MsFlags::MS_STRICTATIME, sys::MOUNT_ATTR_STRICTATIME),
        (MsFlags::MS_RELATIME, sys::MOUNT_ATTR_RELATIME),
    ];
    for (ms, attr) in atime {
        if flags.contains(ms) {
            a.clr |= sys::MOUNT_ATTR__ATIME;
            a.set |= attr;
            break;
        }
    }
    a
}

fn ms_nosymfollow() -> MsFlags {
    MsFlags::from_bits_retain(256) // MS_NOSYMFOLLOW
}

/// Parses `options` (config.md's table; unknown strings are data).
pub fn parse(options: &[String]) -> Result<Options> {
    let mut o = Options::default();
    for opt in options {
        if let Some((set, flag)) = flag_option(opt) {
            // The last word wins ("ro" then "rw" is rw); clearing needs no
            // flag: a fresh mount starts without it, and a bind keeps its
            // source's flags (runc does not clear them either).
            if set {
                o.flags |= flag;
            } else {
                o.flags &= !flag;
            }
            continue;
        }
        if let Some(p) = propagation_option(opt) {
            o.propagation.push(p);
            continue;
        }
        if let Some((set, attr)) = recursive_option(opt) {
            if set {
                o.recursive.set |= attr;
                if attr & sys::MOUNT_ATTR__ATIME != 0 || opt == "rrelatime" {
                    o.recursive.clr |= sys::MOUNT_ATTR__ATIME;
                }
            } else {
                o.recursive.clr |= attr;
            }
            continue;
        }
        match opt.as_str() {
            "bind" => o.bind = true,
            "rbind" => o.rbind = true,
            "defaults" => {}
            "tmpcopyup" => o.tmpcopyup = true,
            "idmap" | "ridmap" => o.idmap = true,
            _ => o.data.push(opt.clone()),
        }
    }
    Ok(o)
}

/// (set?, flag) for mount(8)'s filesystem-independent options.
fn flag_option(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "async" => (false, F::MS_SYNCHRONOUS),
        "atime" => (false, F::MS_NOATIME),
        "dev" => (false, F::MS_NODEV),
        "diratime" => (false, F::MS_NODIRATIME),
        "dirsync" => (true, F::MS_DIRSYNC),
        "exec" => (false, F::MS_NOEXEC),
        "iversion" => (true, F::MS_I_VERSION),
        "lazytime" => (true, F::MS_LAZYTIME),
        "loud" => (false, F::MS_SILENT),
        "mand" => (true, F::MS_MANDLOCK),
        "noatime" => (true, F::MS_NOATIME),
        "nodev" => (true, F::MS_NODEV),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "noexec" => (true, F::MS_NOEXEC),
        "noiversion" => (false, F::MS_I_VERSION),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "nomand" => (false, F::MS_MANDLOCK),
        "norelatime" => (false, F::MS_RELATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "nosuid" => (true, F::MS_NOSUID),
        "nosymfollow" => (true, ms_nosymfollow()),
        "relatime" => (true, F::MS_RELATIME),
        "remount" => (true, F::MS_REMOUNT),
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "silent" => (true, F::MS_SILENT),
        "strictatime" => (true, F::MS_STRICTATIME),
        "suid" => (false, F::MS_NOSUID),
        "symfollow" => (false, ms_nosymfollow()),
        "sync" => (true, F::MS_SYNCHRONOUS),
        _ => return None,
    })
}

/// (MS_* propagation, recursive?).
#[allow(clippy::unnecessary_cast)] // c_ulong is u32 on 32-bit targets
fn propagation_option(opt: &str) -> Option<(u64, bool)> {
    let (name, rec) = match opt.strip_prefix('r') {
        Some(n) if ["private", "shared", "slave", "unbindable"].contains(&n) => (n, true),
        _ => (opt, false),
    };
    let flag = match name {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some((flag.bits() as u64, rec))
}

/// (set?, MOUNT_ATTR_*) for the recursive r* options.
fn recursive_option(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, sys::MOUNT_ATTR_RDONLY),
        "rrw" => (false, sys::MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, sys::MOUNT_ATTR_NOSUID),
        "rsuid" => (false, sys::MOUNT_ATTR_NOSUID),
        "rnodev" => (true, sys::MOUNT_ATTR_NODEV),
        "rdev" => (false, sys::MOUNT_ATTR_NODEV),
        "rnoexec" => (true, sys::MOUNT_ATTR_NOEXEC),
        "rexec" => (false, sys::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, sys::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, sys::MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => (true, sys::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, sys::MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => (true, sys::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (true, sys::MOUNT_ATTR_STRICTATIME),
        "rrelatime" => (true, sys::MOUNT_ATTR_RELATIME),
        // Back to the default (relatime) for the "no" forms.
        "ratime" | "rnorelatime" | "rnostrictatime" => (true, sys::MOUNT_ATTR_RELATIME),
        _ => return None,
    })
}

/// What the mounts need to know about the container.
pub struct MountCx<'a> {
    pub root: BorrowedFd<'a>,
    pub bundle: &'a Path,
    /// A user namespace is in use (some mounts fall back to binds).
    pub user_ns: bool,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
    /// The id-mapped clones of the id-mapped bind mounts, by mount index.
    pub idmaps: &'a std::collections::BTreeMap<usize, OwnedFd>,
}

/// Makes one config mount; `idmap`: for an id-mapped bind mount, the
/// id-mapped clone of its source that the runtime made (see
/// [`super::idmap`]), to attach in its place.
pub fn mount_one(cx: &MountCx<'_>, m: &Mount, idmap: Option<BorrowedFd<'_>>) -> Result<()> {
    let dest = destination(m);
    let opts = parse(m.options().as_deref().unwrap_or(&[]))?;
    let typ = m.typ().as_deref().unwrap_or("");
    if opts.bind || opts.rbind {
        return bind(cx, m, &dest, &opts, idmap);
    }
    if idmap.is_some() {
        bail!("id-mapped mounts are supported for bind mounts only, not yet for a new {typ} mount");
    }
    match typ {
        "cgroup" => super::cgroups::mount(cx, &dest, &opts),
        "" => bail!("no type and neither bind nor rbind in its options"),
        _ => mount_fs(cx, m, typ, &dest, &opts),
    }
}

/// The destination as an absolute container path (relative ones are
/// relative to "/", config.md).
pub fn destination(m: &Mount) -> PathBuf {
    Path::new("/").join(m.destination())
}

/// The host path of a bind source: absolute, or relative to the bundle.
fn bind_source(cx: &MountCx<'_>, m: &Mount) -> Result<PathBuf> {
    let Some(src) = m.source() else {
        bail!("a bind mount needs a source");
    };
    Ok(cx.bundle.join(src))
}

fn bind(
    cx: &MountCx<'_>,
    m: &Mount,
    dest: &Path,
    opts: &Options,
    idmap: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let src = bind_source(cx, m)?;
    let meta = std::fs::metadata(&src).with_context(|| format!("bind source {}", src.display()))?;
    let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
    let target = destination_fd(cx.root, dest, kind)?;
    bind_tree(&src, target.as_fd(), opts.rbind, opts, idmap)
}

/// Clones `src` (recursively for rbind), applies the options to the clone,
/// and attaches it onto `target`.
pub fn bind_fd(src: &Path, target: BorrowedFd<'_>, recursive: bool, opts: &Options) -> Result<()> {
    bind_tree(src, target, recursive, opts, None)
}

/// `bind_fd`, or, for an id-mapped bind, attaching the clone the runtime
/// made and id-mapped (`idmap`) rather than cloning the source here.
fn bind_tree(
    src: &Path,
    target: BorrowedFd<'_>,
    recursive: bool,
    opts: &Options,
    idmap: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    let tree = match idmap {
        // Made and id-mapped by the runtime, in the host's user namespace.
        Some(tree) => tree
            .try_clone_to_owned()
            .context("dup the id-mapped clone")?,
        None => open_tree(CWD, src, flags).with_context(|| format!("clone {}", src.display()))?,
    };
    let attr = opts.attr();
    if !attr.is_empty() {
        sys::mount_setattr(&tree, attr, false).context("apply the mount options")?;
    }
    if !opts.recursive.is_empty() {
        sys::mount_setattr(&tree, opts.recursive, true)
            .context("apply the recursive mount options")?;
    }
    move_mount(
        &tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .context("attach it")?;
    apply_propagation(tree.as_fd(), opts)
}

/// The destination's O_PATH fd, created inside the root if missing, checked
/// to be of the kind the mount needs.
pub fn destination_fd(root: BorrowedFd<'_>, dest: &Path, kind: Kind) -> Result<OwnedFd> {
    let fd = create_in_root(root, dest, kind).context("create the mount point")?;
    let ft = resolve::file_type(fd.as_fd())?;
    match (kind, ft) {
        (Kind::Dir, FileType::Directory) => Ok(fd),
        (Kind::Dir, _) => bail!("the mount point is not a directory"),
        (Kind::File, FileType::Directory) => {
            bail!("the mount point is a directory, the source is not")
        }
        (Kind::File, _) => Ok(fd),
    }
}

fn apply_propagation(mnt: BorrowedFd<'_>, opts: &Options) -> Result<()> {
    for &(flag, rec) in &opts.propagation {
        let attr = MountAttr {
            propagation: flag,
            ..Default::default()
        };
        sys::mount_setattr(mnt, attr, rec).context("set mount propagation")?;
    }
    Ok(())
}

/// mount(2) of a filesystem (proc, sysfs, tmpfs, devpts, mqueue, ...).
fn mount_fs(cx: &MountCx<'_>, m: &Mount, typ: &str, dest: &Path, opts: &Options) -> Result<()> {
    let inherited_mode = match typ {
        "tmpfs" => existing_dir_mode(cx.root, dest),
        _ => None,
    };
    let target = destination_fd(cx.root, dest, Kind::Dir)?;
    let old_content = if opts.tmpcopyup && typ == "tmpfs" {
        Some(open_in_root(
            cx.root,
            dest,
            OFlags::RDONLY | OFlags::DIRECTORY,
        )?)
    } else {
        None
    };
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let mut data = opts.data_string();
    if let Some(mode) = inherited_mode {
        // First, so that a mode= of the config's, later, wins.
        let given = data.map(|d| format!(",{d}")).unwrap_or_default();
        data = Some(format!("mode={mode:04o}{given}"));
    }
    let mut result = mount_at(&source, target.as_fd(), typ, opts.flags, data.as_deref());
    if cx.user_ns {
        result = result
            .or_else(|e| userns_fallback(e, cx, typ, target.as_fd(), opts, &mut data, &source));
    }
    result.with_context(|| format!("mount {typ}"))?;
    // The new mount itself (`target` is the directory under it), opened
    // only when there are options to apply to it.
    if !opts.recursive.is_empty() || !opts.propagation.is_empty() {
        let mounted = open_in_root(cx.root, dest, OFlags::PATH).context("open the new mount")?;
        if !opts.recursive.is_empty() {
            sys::mount_setattr(&mounted, opts.recursive, true)
                .context("apply the recursive mount options")?;
        }
        apply_propagation(mounted.as_fd(), opts)?;
    }
    if let Some(old) = old_content {
        let new = open_in_root(cx.root, dest, OFlags::RDONLY | OFlags::DIRECTORY)?;
        super::copy::copy_dir(old.as_fd(), new.as_fd()).context("tmpcopyup")?;
    }
    Ok(())
}

/// The mode of the directory a tmpfs is about to cover, if it exists: as
/// runc does, the tmpfs takes it unless the config's options give a mode
/// (an image's /tmp stays 1777, its 0700 /root stays 0700). A directory
/// that is not there is made, and the tmpfs keeps the kernel's 1777.
fn existing_dir_mode(root: BorrowedFd<'_>, dest: &Path) -> Option<u32> {
    let dir = open_in_root(root, dest, OFlags::PATH | OFlags::DIRECTORY).ok()?;
    let st = rustix::fs::fstat(&dir).ok()?;
    Some(st.st_mode & 0o7777)
}

fn mount_at(
    source: &str,
    target: BorrowedFd<'_>,
    typ: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(Some(source), &proc_fd_path(target), Some(typ), flags, data)
}

/// In a user namespace some filesystems cannot be mounted fresh; do what
/// runc does: bind the host's sysfs or mqueue instead, and drop a devpts
/// gid= that is not mapped.
fn userns_fallback(
    err: nix::Error,
    cx: &MountCx<'_>,
    typ: &str,
    target: BorrowedFd<'_>,
    opts: &Options,
    data: &mut Option<String>,
    source: &str,
) -> nix::Result<()> {
    let _ = cx;
    let host_bind = |path: &str, rec: bool| {
        let mut o = opts.clone();
        o.propagation.clear();
        bind_fd(Path::new(path), target, rec, &o).map_err(|_| err)
    };
    match (typ, err) {
        ("sysfs", nix::Error::EPERM) => host_bind("/sys", true),
        ("mqueue", nix::Error::EPERM) => host_bind("/dev/mqueue", false),
        ("devpts", nix::Error::EINVAL) => {
            let kept: Vec<&str> = data
                .as_deref()
                .unwrap_or("")
                .split(',')
                .filter(|o| !o.starts_with("gid=") && !o.is_empty())
                .collect();
            *data = (!kept.is_empty()).then(|| kept.join(","));
            mount_at(source, target, typ, opts.flags, data.as_deref())
        }
        _ => Err(err),
    }
}
