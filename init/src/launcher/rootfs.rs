//! The container's root filesystem, in the order runc 1.1 builds it:
//! before pivot_root (in the new mount namespace, host paths still
//! visible): `/` made rslave (or per linux.rootfsPropagation), the rootfs
//! bound onto itself, the config mounts, /dev; then pivot_root(".", ".")
//! and the old root detached; after it: the read-only root, readonlyPaths
//! and maskedPaths.

use super::mounts::{self, bind_fd, Options};
use super::resolve::{create_in_root, Kind};
use super::sys::{self, MountAttr};
use anyhow::{bail, Context, Result};
use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use rustix::fs::{open, Mode, OFlags};
use rustix::mount::{
    fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree, FsMountFlags,
    FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// What the rootfs setup needs beyond the spec.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cwd: &'a Path,
    pub user_ns: bool,
    pub cgroup_ns: bool,
    /// A late launch: mask /proc before waiting for the resources (see
    /// `early_proc_paths`).
    pub proc_paths_early: bool,
    /// The id-mapped clones of the id-mapped bind mounts, by mount index.
    pub idmaps: &'a std::collections::BTreeMap<usize, std::os::fd::OwnedFd>,
}

/// The /proc paths of linux.maskedPaths and linux.readonlyPaths already
/// applied before pivot_root (`after_pivot` skips them).
#[derive(Default)]
pub struct DoneEarly {
    pub masked: Vec<String>,
    pub readonly: Vec<String>,
}

/// linux.rootfsPropagation as mount flags; runc's default is rslave.
fn root_propagation(spec: &Spec) -> Result<MsFlags> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone());
    Ok(match p.as_deref() {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("shared") | Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("slave") | Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("private") | Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("unbindable") | Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        Some(other) => {
            bail!("linux.rootfsPropagation: {other:?} is not shared, slave, private or unbindable")
        }
    })
}

/// Can this mount be made before the process is in its cgroups and its
/// network namespace (a late launch's early part)? proc, tmpfs, devpts and
/// mqueue can: they depend on the pid, ipc and mount namespaces made at
/// clone3. sysfs shows the network namespace, cgroup the groups; binds and
/// everything else wait too.
fn early(m: &oci_spec::runtime::Mount) -> bool {
    let bind = m
        .options()
        .iter()
        .flatten()
        .any(|o| o == "bind" || o == "rbind");
    !bind
        && matches!(
            m.typ().as_deref(),
            Some("proc" | "tmpfs" | "devpts" | "mqueue")
        )
}

/// Everything before pivot_root. Returns an O_PATH fd of the container's
/// root. `before_late` runs once, before the first mount that is not
/// `early` (or after the mounts if there is none): a late launch receives
/// its groups and network namespace there.
pub fn prepare(
    s: &Setup<'_>,
    before_late: &mut dyn FnMut() -> Result<()>,
) -> Result<(OwnedFd, DoneEarly)> {
    let prop = root_propagation(s.spec)?;
    nix::mount::mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
        .context("linux.rootfsPropagation: set the propagation of /")?;
    if prop.contains(MsFlags::MS_SHARED) {
        // pivot_root refuses a new root whose parent mount is shared.
        make_parent_private(s.rootfs).context("make the rootfs's parent mount private")?;
    }
    nix::mount::mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind the rootfs {} onto itself", s.rootfs.display()))?;
    let root = open(
        s.rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open the rootfs {}", s.rootfs.display()))?;
    let cx = mounts::MountCx {
        root: root.as_fd(),
        bundle: s.bundle,
        user_ns: s.user_ns,
        cgroup_ns: s.cgroup_ns,
        idmaps: s.idmaps,
    };
    let list = s.spec.mounts().clone().unwrap_or_default();
    // The mounts that can go before the resources; /dev's devices go with
    // them when no later mount is under /dev (they do not depend on the
    // resources either, and the late part is the critical path).
    let split = list.iter().position(|m| !early(m)).unwrap_or(list.len());
    let devices_early = list[split..]
        .iter()
        .all(|m| !mounts::destination(m).starts_with("/dev"));
    mount_all(&cx, &list, 0..split)?;
    if devices_early {
        devices(s, root.as_fd())?;
    }
    let done = early_proc_paths(s, &list, split, root.as_fd())?;
    before_late()?;
    mount_all(&cx, &list, split..list.len())?;
    if !devices_early {
        devices(s, root.as_fd())?;
    }
    // runc creates a missing cwd in the rootfs.
    create_in_root(root.as_fd(), s.cwd, Kind::Dir)
        .with_context(|| format!("process.cwd: create {}", s.cwd.display()))?;
    Ok((root, done))
}

/// The config's mounts `range`, in order; errors name the mount's index.
fn mount_all(
    cx: &mounts::MountCx<'_>,
    list: &[oci_spec::runtime::Mount],
    range: std::ops::Range<usize>,
) -> Result<()> {
    for i in range {
        let m = &list[i];
        mounts::mount_one(cx, m, cx.idmaps.get(&i).map(|fd| fd.as_fd())).with_context(|| {
            format!(
                "mounts[{i}]: mount {} on {}",
                m.typ().as_deref().unwrap_or("bind"),
                mounts::destination(m).display()
            )
        })?;
    }
    Ok(())
}

/// A late launch masks /proc (maskedPaths and readonlyPaths under /proc)
/// while it waits for its resources, rather than after pivot_root, which
/// comes after them: /proc is one of its early mounts, no later mount is
/// under it, and what is masked is the same mount either way. readonlyPaths
/// wait when linux.sysctl is set: the sysctls are written (after
/// pivot_root) into a writable /proc/sys.
fn early_proc_paths(
    s: &Setup<'_>,
    list: &[oci_spec::runtime::Mount],
    split: usize,
    root: BorrowedFd<'_>,
) -> Result<DoneEarly> {
    let proc_early = list[..split].iter().any(|m| {
        mounts::destination(m) == Path::new("/proc") && m.typ().as_deref() == Some("proc")
    });
    let proc_later = list[split..]
        .iter()
        .any(|m| mounts::destination(m).starts_with("/proc"));
    // createContainer hooks run before pivot_root, where runc's /proc is
    // not masked yet: keep it so for them.
    let hooks = s
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.create_container().as_ref())
        .is_some_and(|h| !h.is_empty());
    if !s.proc_paths_early || !proc_early || proc_later || hooks {
        return Ok(DoneEarly::default());
    }
    let under_proc = |paths: Option<&Vec<String>>| -> Vec<String> {
        paths
            .into_iter()
            .flatten()
            .filter(|p| Path::new(p).starts_with("/proc/"))
            .cloned()
            .collect()
    };
    let linux = s.spec.linux().as_ref();
    let masked = under_proc(linux.and_then(|l| l.masked_paths().as_ref()));
    let sysctl = linux
        .and_then(|l| l.sysctl().as_ref())
        .is_some_and(|m| !m.is_empty());
    let readonly = match sysctl {
        true => vec![],
        false => under_proc(linux.and_then(|l| l.readonly_paths().as_ref())),
    };
    readonly_paths_in(Base::InRoot(root), &readonly)?;
    masked_paths_in(Base::InRoot(root), &masked)?;
    Ok(DoneEarly { masked, readonly })
}

/// The default and configured devices, /dev/ptmx and the /dev symlinks,
/// unless /dev is a bind of the host's.
fn devices(s: &Setup<'_>, root: BorrowedFd<'_>) -> Result<()> {
    if dev_is_bound(s.spec) {
        return Ok(());
    }
    let configured = s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().clone())
        .unwrap_or_default();
    super::devices::create_all(root, &configured)?;
    super::devices::setup_ptmx(root)?;
    super::devices::setup_symlinks(root)
}

/// /dev comes from a bind mount of the config: its devices are the host's.
fn dev_is_bound(spec: &Spec) -> bool {
    spec.mounts().iter().flatten().any(|m| {
        mounts::destination(m) == Path::new("/dev")
            && m.options()
                .iter()
                .flatten()
                .any(|o| o == "bind" || o == "rbind")
    })
}

/// The mount point holding `path`'s parent directory, made private.
fn make_parent_private(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let mount_point = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|mp| parent.starts_with(mp))
        .max_by_key(|mp| mp.len())
        .unwrap_or("/");
    nix::mount::mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    Ok(())
}

/// pivot_root into `root` and detach the old root, as runc does:
/// pivot_root(".", ".") stacks the old root on the new one, and unmounting
/// "." with MNT_DETACH removes it (made rslave first so that the unmount
/// does not propagate to the host).
pub fn pivot(root: BorrowedFd<'_>) -> Result<()> {
    let old = open(
        "/",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context("open the old root")?;
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir to the rootfs")?;
    nix::unistd::pivot_root(".", ".").context("pivot_root")?;
    nix::unistd::fchdir(old.as_raw_fd()).context("chdir to the old root")?;
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("make the old root rslave")?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH).context("detach the old root")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    Ok(())
}

/// --no-pivot: move the rootfs over / and chroot into it (MS_MOVE +
/// chroot, runc's msMoveRoot).
pub fn move_root(root: BorrowedFd<'_>) -> Result<()> {
    nix::unistd::fchdir(root.as_raw_fd()).context("chdir to the rootfs")?;
    nix::mount::mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .context("move the rootfs onto /")?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    Ok(())
}

/// No mount namespace of its own: chroot into the rootfs, mounting nothing.
pub fn chroot_only(rootfs: &Path) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir to {}", rootfs.display()))?;
    nix::unistd::chroot(".").context("chroot")?;
    nix::unistd::chdir("/").context("chdir to /")?;
    Ok(())
}

/// linux.rootfsPropagation once more on the new root (before pivot_root it
/// was applied to the host's tree as seen from our namespace, and the
/// rootfs bind was made under a private parent), as runc does.
pub fn apply_root_propagation(spec: &Spec) -> Result<()> {
    let set = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone())
        .is_some_and(|p| !p.is_empty());
    if set {
        let prop = root_propagation(spec)?;
        nix::mount::mount(None::<&str>, "/", None::<&str>, prop, None::<&str>)
            .context("linux.rootfsPropagation: set it on the container's root")?;
    }
    Ok(())
}

/// root.readonly: / becomes read-only (this mount only, as runc).
pub fn make_root_readonly() -> Result<()> {
    let fd = open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let attr = MountAttr {
        set: sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sys::mount_setattr(&fd, attr, false).context("root.readonly: remount / read-only")
}

/// Where masked and read-only paths are looked up: the container's own
/// root after pivot_root, or inside the rootfs before it.
#[derive(Clone, Copy)]
enum Base<'a> {
    Root,
    InRoot(BorrowedFd<'a>),
}

/// Opens a container path for masking; None when it does not exist.
fn open_existing(base: Base<'_>, path: &str) -> Result<Option<OwnedFd>> {
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let opened = match base {
        Base::Root => open(path, flags, Mode::empty()),
        Base::InRoot(root) => super::resolve::open_in_root(root, Path::new(path), flags)
            .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)),
    };
    match opened {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// linux.readonlyPaths: each bound onto itself, read-only recursively.
pub fn readonly_paths(paths: &[String]) -> Result<()> {
    readonly_paths_in(Base::Root, paths)
}

fn readonly_paths_in(base: Base<'_>, paths: &[String]) -> Result<()> {
    for p in paths {
        let Some(fd) =
            open_existing(base, p).with_context(|| format!("linux.readonlyPaths: {p}"))?
        else {
            continue;
        };
        let tree = open_tree(
            &fd,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE
                | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .with_context(|| format!("linux.readonlyPaths: {p}: clone"))?;
        let ro = MountAttr {
            set: sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sys::mount_setattr(&tree, ro, true)
            .with_context(|| format!("linux.readonlyPaths: {p}: make read-only"))?;
        attach(tree.as_fd(), fd.as_fd()).with_context(|| format!("linux.readonlyPaths: {p}"))?;
    }
    Ok(())
}

/// linux.maskedPaths: /dev/null over files, an empty read-only tmpfs over
/// directories.
pub fn masked_paths(paths: &[String]) -> Result<()> {
    masked_paths_in(Base::Root, paths)
}

fn masked_paths_in(base: Base<'_>, paths: &[String]) -> Result<()> {
    for p in paths {
        let Some(fd) = open_existing(base, p).with_context(|| format!("linux.maskedPaths: {p}"))?
        else {
            continue;
        };
        let is_dir = super::resolve::file_type(fd.as_fd())? == rustix::fs::FileType::Directory;
        let result = if is_dir {
            empty_readonly_tmpfs().and_then(|t| attach(t.as_fd(), fd.as_fd()))
        } else {
            bind_fd(
                Path::new("/dev/null"),
                fd.as_fd(),
                false,
                &Options::default(),
            )
        };
        result.with_context(|| format!("linux.maskedPaths: mask {p}"))?;
    }
    Ok(())
}

/// A detached, empty, read-only tmpfs, with "tmpfs" as its source as
/// runc's mount(2) gives it (mountinfo would say "none").
fn empty_readonly_tmpfs() -> Result<OwnedFd> {
    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).context("fsopen tmpfs")?;
    fsconfig_set_string(&fs, "source", "tmpfs").context("name the tmpfs's source")?;
    fsconfig_create(&fs).context("create tmpfs")?;
    let m = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .context("fsmount tmpfs")?;
    Ok(m)
}

/// move_mount of a detached tree onto `target`.
fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<()> {
    move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .context("attach the mount")?;
    Ok(())
}

/// hostname and domainname (need a uts namespace of the container's own).
pub fn set_names(spec: &Spec, own_uts: bool) -> Result<()> {
    for (what, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let Some(v) = value else { continue };
        if !own_uts {
            bail!("{what}: cannot set it without a new uts namespace");
        }
        let r = if what == "hostname" {
            rustix::system::sethostname(v.as_bytes())
        } else {
            rustix::system::setdomainname(v.as_bytes())
        };
        r.with_context(|| format!("{what}: set it to {v:?}"))?;
    }
    Ok(())
}

/// Which namespaces the container has of its own (created or joined by
/// path), for the sysctls it may set.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnNamespaces {
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
}

/// runc's rule: a sysctl is allowed only when it belongs to a namespace
/// the container has of its own; anything else would change the host.
fn check_sysctl(key: &str, own: OwnNamespaces) -> Result<()> {
    const IPC: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (needs, have) = if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        ("ipc", own.ipc)
    } else if key.starts_with("net.") {
        ("network", own.net)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        ("uts", own.uts)
    } else {
        bail!(
            "linux.sysctl: {key} is not in a separate kernel namespace: it would change the host"
        );
    };
    if !have {
        bail!("linux.sysctl: {key} needs a {needs} namespace of the container's own");
    }
    Ok(())
}

/// linux.sysctl, written under /proc/sys.
pub fn sysctl(spec: &Spec, own: OwnNamespaces) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().clone()) else {
        return Ok(());
    };
    let mut keys: Vec<_> = map.keys().collect();
    keys.sort();
    for key in keys {
        check_sysctl(key, own)?;
        // sysctl(8) naming: dots separate levels, a slash stands for a dot
        // inside one level (net.ipv4.conf.eth0/100.forwarding).
        let rel: String = key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect();
        let rel = Path::new(&rel);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            bail!("linux.sysctl: {key:?} is not a sysctl name");
        }
        let path = Path::new("/proc/sys").join(rel);
        std::fs::write(&path, &map[key]).with_context(|| format!("linux.sysctl: set {key}"))?;
    }
    Ok(())
}
