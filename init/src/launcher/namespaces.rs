//! Which namespaces the container process creates and which it joins, and
//! who does it (config-linux.md "Namespaces").
//!
//! - New namespaces are created by clone3 itself, all at once, so that with
//!   a new user namespace every other one is owned by it. Three exceptions:
//!   cgroup is unshared by the child after the controllers attached it (so
//!   that the namespace's root is the container's cgroup); time is
//!   unshared by the child, which writes its offsets and then setns()es
//!   into its own time_for_children (offsets can only be written before any
//!   process is inside); and with a new user namespace, ipc is unshared by
//!   the child once it is uid 0 there (`become_root_in_userns`), because
//!   the ipc namespace's mqueue root takes its creator's fsuid and fsgid:
//!   runc's order (uid 0, the other namespaces, then gid 0) gives
//!   /dev/mqueue owners 0 and the unmapped 65534, and so do we.
//! - Joined namespaces (a `path`, or every namespace of `join` for exec) are
//!   setns()ed by the child, user first so that the rest are joined with the
//!   capabilities of that user namespace. The pid namespace applies to
//!   children only, so the parent joins it just before clone3 and goes back
//!   to its own right after (setns of a pid namespace changes only this
//!   thread's pid_for_children).

use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A namespace to join: its kind, an open fd, and where it came from.
pub struct Join {
    pub kind: LinuxNamespaceType,
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// The plan, made by the parent before clone3.
pub struct NsPlan {
    /// CLONE_NEW* flags for clone3.
    pub clone_flags: u64,
    /// Namespaces the child unshares after joining a user namespace.
    pub unshare_after_join: CloneFlags,
    /// Namespaces the child unshares in its new user namespace once it is
    /// uid 0 there (ipc: see the module doc).
    pub unshare_as_root: CloneFlags,
    /// Joined by the child, user namespace first.
    pub joins: Vec<Join>,
    /// Joined by the parent around clone3.
    pub pid_join: Option<Join>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    pub new_time: bool,
    pub new_net: bool,
    pub new_ipc: bool,
    /// A user namespace, new or joined, is in use.
    pub user_ns: bool,
    /// The mount namespace is the container's own (created, not joined and not the host's).
    pub mount_ns_private: bool,
    /// A new network namespace whose fd comes after clone3 (a late
    /// launch: netstack's pooled namespace, joined by the child then).
    pub deferred_net: bool,
}

/// The kinds in the order they are joined.
const ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Time,
];

/// The config name of a namespace kind (as in linux.namespaces[].type).
pub fn name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The file name under /proc/PID/ns/.
fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        other => name(other),
    }
}

pub fn clone_flag(kind: LinuxNamespaceType) -> CloneFlags {
    match kind {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// Why creating namespaces with `flags` failed with EINVAL, when the reason
/// is a kind this kernel lacks (built without it): the first such kind,
/// named as linux.namespaces names it. Looked up only after the failure,
/// in `ns_dir` (/proc/self/ns): listing it costs a fresh process about
/// 50 us (a dentry per namespace file), a price every create would pay
/// for a kernel that cannot run containers anyway.
pub fn missing_kind(flags: CloneFlags, ns_dir: &Path) -> Option<String> {
    let have: Vec<String> = std::fs::read_dir(ns_dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ORDER
        .into_iter()
        .filter(|k| flags.contains(clone_flag(*k)))
        .find(|k| !have.iter().any(|f| f == proc_name(*k)))
        .map(|k| {
            format!(
                "linux.namespaces: this kernel has no {} namespaces ({}/{} is missing)",
                name(k),
                ns_dir.display(),
                proc_name(k)
            )
        })
}

/// An error from creating namespaces with `flags` (clone3 or unshare), with
/// the missing kind named when that is why it failed.
pub fn creation_error(
    err: impl Into<anyhow::Error>,
    flags: CloneFlags,
    what: &str,
) -> anyhow::Error {
    let err = err.into();
    let einval = super::errno_of(&err) == libc::EINVAL;
    match einval
        .then(|| missing_kind(flags, Path::new("/proc/self/ns")))
        .flatten()
    {
        Some(why) => anyhow::anyhow!("{what}: {why}"),
        None => err.context(what.to_string()),
    }
}

fn open_ns(path: &Path) -> std::io::Result<OwnedFd> {
    use rustix::fs::{open, Mode, OFlags};
    Ok(open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?)
}

impl Default for NsPlan {
    fn default() -> Self {
        NsPlan {
            clone_flags: 0,
            unshare_after_join: CloneFlags::empty(),
            unshare_as_root: CloneFlags::empty(),
            joins: Vec::new(),
            pid_join: None,
            new_user: false,
            new_mount: false,
            new_uts: false,
            new_cgroup: false,
            new_time: false,
            new_net: false,
            new_ipc: false,
            user_ns: false,
            mount_ns_private: false,
            deferred_net: false,
        }
    }
}

impl NsPlan {
    /// The plan for `ipc create`: linux.namespaces as configured.
    pub fn for_create(spec: &Spec) -> Result<NsPlan> {
        let mut plan = NsPlan::default();
        let namespaces = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().clone())
            .unwrap_or_default();
        let mut new = Vec::new();
        for kind in ORDER {
            let mut entries = namespaces.iter().filter(|n| n.typ() == kind);
            let Some(ns) = entries.next() else { continue };
            if entries.next().is_some() {
                bail!("linux.namespaces: {} is listed twice", name(kind));
            }
            match ns.path() {
                Some(path) => {
                    let fd = open_ns(path).with_context(|| {
                        format!(
                            "linux.namespaces: open {} namespace {}",
                            name(kind),
                            path.display()
                        )
                    })?;
                    plan.add_join(Join {
                        kind,
                        fd,
                        path: path.clone(),
                    });
                }
                None => new.push(kind),
            }
        }
        plan.add_new(&new)?;
        Ok(plan)
    }

    /// The plan for `ipc exec`: every namespace of `pid` that differs from ours.
    pub fn for_join(pid: i32) -> Result<NsPlan> {
        let mut plan = NsPlan::default();
        for kind in ORDER {
            let theirs = PathBuf::from(format!("/proc/{pid}/ns/{}", proc_name(kind)));
            let ours = PathBuf::from(format!("/proc/self/ns/{}", proc_name(kind)));
            let (Ok(t), Ok(o)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
                if kind == LinuxNamespaceType::Mount || kind == LinuxNamespaceType::Pid {
                    bail!("process {pid} is gone: cannot read {}", theirs.display());
                }
                continue; // a kind this kernel does not have
            };
            if (t.dev(), t.ino()) == (o.dev(), o.ino()) {
                continue;
            }
            let fd = open_ns(&theirs)
                .with_context(|| format!("open {} namespace of process {pid}", name(kind)))?;
            plan.add_join(Join {
                kind,
                fd,
                path: theirs,
            });
        }
        Ok(plan)
    }

    fn add_join(&mut self, join: Join) {
        match join.kind {
            LinuxNamespaceType::Pid => self.pid_join = Some(join),
            LinuxNamespaceType::User => {
                self.user_ns = true;
                self.joins.insert(0, join);
            }
            _ => self.joins.push(join),
        }
    }

    fn add_new(&mut self, new: &[LinuxNamespaceType]) -> Result<()> {
        use LinuxNamespaceType as T;
        let user_joined = self.user_ns;
        for &kind in new {
            match kind {
                T::User => {
                    self.new_user = true;
                    self.user_ns = true;
                }
                T::Mount => self.new_mount = true,
                T::Uts => self.new_uts = true,
                T::Cgroup => self.new_cgroup = true,
                T::Time => self.new_time = true,
                T::Network => self.new_net = true,
                T::Ipc => self.new_ipc = true,
                T::Pid => {}
            }
            let flag = clone_flag(kind);
            match kind {
                // After cgroup attach / via time_for_children: see the module doc.
                T::Cgroup | T::Time => {}
                // Must be created by clone3 to hold the container process.
                T::Pid => self.clone_flags |= flag.bits() as u64,
                _ if user_joined => self.unshare_after_join |= flag,
                T::Ipc if self.new_user => self.unshare_as_root |= flag,
                _ => self.clone_flags |= flag.bits() as u64,
            }
        }
        self.mount_ns_private = self.new_mount;
        if self.new_user {
            if let Some(j) = self.joins.iter().chain(self.pid_join.iter()).next() {
                bail!(
                    "linux.namespaces: joining the {} namespace {} together with a new user \
                     namespace is not supported (join the user namespace too, or create the {0} namespace)",
                    name(j.kind),
                    j.path.display()
                );
            }
        }
        Ok(())
    }

    /// A new network namespace was asked for and one made in advance is
    /// given (netstack's pool): join it rather than create one.
    pub fn use_prepared_netns(&mut self, fd: OwnedFd) -> Result<()> {
        if !self.new_net || self.user_ns {
            bail!("a prepared network namespace only stands in for a new one, without a user namespace");
        }
        self.new_net = false;
        self.clone_flags &= !(CloneFlags::CLONE_NEWNET.bits() as u64);
        self.add_join(Join {
            kind: LinuxNamespaceType::Network,
            fd,
            path: PathBuf::from("(netstack's prepared namespace)"),
        });
        Ok(())
    }

    /// As `use_prepared_netns`, for a namespace whose fd arrives after
    /// clone3: the child joins it when it does (`join_deferred_net`).
    pub fn defer_netns(&mut self) -> Result<()> {
        if !self.new_net || self.user_ns {
            bail!("a prepared network namespace only stands in for a new one, without a user namespace");
        }
        self.new_net = false;
        self.deferred_net = true;
        self.clone_flags &= !(CloneFlags::CLONE_NEWNET.bits() as u64);
        Ok(())
    }

    /// The namespaces the container has of its own: created, or joined
    /// by path.
    pub fn own(&self) -> super::rootfs::OwnNamespaces {
        let joined = |k: LinuxNamespaceType| self.joins.iter().any(|j| j.kind == k);
        super::rootfs::OwnNamespaces {
            net: self.new_net || self.deferred_net || joined(LinuxNamespaceType::Network),
            ipc: self.new_ipc || joined(LinuxNamespaceType::Ipc),
            uts: self.new_uts || joined(LinuxNamespaceType::Uts),
        }
    }

    /// Parent side, before clone3: enter the pid namespace to join (for our
    /// children only). The guard goes back to ours when dropped.
    pub fn enter_pid_for_children(&self) -> Result<Option<PidNsGuard>> {
        let Some(join) = &self.pid_join else {
            return Ok(None);
        };
        let ours = open_ns(Path::new("/proc/thread-self/ns/pid_for_children"))
            .context("open our own pid namespace")?;
        nix::sched::setns(join.fd.as_fd(), CloneFlags::CLONE_NEWPID)
            .with_context(|| format!("join pid namespace {}", join.path.display()))?;
        Ok(Some(PidNsGuard { ours }))
    }
}

/// Puts the parent's pid_for_children back when dropped.
pub struct PidNsGuard {
    ours: OwnedFd,
}

impl PidNsGuard {
    /// In the child: the child stays where it is (its own pid namespace
    /// cannot be left), so the guard is dropped without restoring.
    pub fn forget(self) {
        let PidNsGuard { ours } = self;
        drop(ours);
    }

    /// In the parent: back to our own pid namespace for later children.
    pub fn restore(self) -> Result<()> {
        let PidNsGuard { ours } = self;
        nix::sched::setns(ours.as_fd(), CloneFlags::CLONE_NEWPID)
            .context("return to our own pid namespace")
    }
}

/// Writes the user namespace maps of `pid` (parent side, after clone3).
/// We are privileged in the parent user namespace, so setgroups stays
/// allowed (only an unprivileged writer has to deny it first).
pub fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref();
    let uid = linux
        .and_then(|l| l.uid_mappings().clone())
        .unwrap_or_default();
    let gid = linux
        .and_then(|l| l.gid_mappings().clone())
        .unwrap_or_default();
    let render = |maps: &[oci_spec::runtime::LinuxIdMapping]| -> String {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect()
    };
    if !nix::unistd::geteuid().is_root() {
        let _ = std::fs::write(format!("/proc/{pid}/setgroups"), "deny");
    }
    std::fs::write(format!("/proc/{pid}/uid_map"), render(&uid))
        .context("linux.uidMappings: write uid_map")?;
    std::fs::write(format!("/proc/{pid}/gid_map"), render(&gid))
        .context("linux.gidMappings: write gid_map")?;
    Ok(())
}

/// Checks before clone3 that a new user namespace has mappings to write.
pub fn check_mappings(plan: &NsPlan, spec: &Spec) -> Result<()> {
    if !plan.new_user {
        return Ok(());
    }
    let linux = spec.linux().as_ref();
    let has = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| m.is_some_and(|v| !v.is_empty());
    if !has(linux.and_then(|l| l.uid_mappings().as_ref())) {
        bail!("linux.uidMappings: a new user namespace needs uid mappings");
    }
    if !has(linux.and_then(|l| l.gid_mappings().as_ref())) {
        bail!("linux.gidMappings: a new user namespace needs gid mappings");
    }
    Ok(())
}

/// Child side: join every namespace of the plan (user first), then create
/// those that had to wait for the user namespace.
/// Child side of a late launch: join netstack's namespace now.
pub fn join_deferred_net(fd: std::os::fd::BorrowedFd<'_>) -> Result<()> {
    nix::sched::setns(fd, CloneFlags::CLONE_NEWNET)
        .context("join netstack's prepared network namespace")
}

pub fn join_all(plan: &NsPlan) -> Result<()> {
    for j in &plan.joins {
        nix::sched::setns(j.fd.as_fd(), clone_flag(j.kind))
            .with_context(|| format!("join {} namespace {}", name(j.kind), j.path.display()))?;
        if j.kind == LinuxNamespaceType::User {
            // Root of the joined namespace when its uid/gid 0 is mapped;
            // otherwise we keep the capabilities setns gave us, which is
            // all the rest of the setup needs.
            match become_root_in_userns() {
                Err(e) if super::errno_of(&e) == libc::EINVAL => {}
                other => other?,
            }
        }
    }
    if !plan.unshare_after_join.is_empty() {
        nix::sched::unshare(plan.unshare_after_join)
            .map_err(|e| creation_error(e, plan.unshare_after_join, "create namespaces"))?;
    }
    Ok(())
}

/// In a user namespace we entered with mapped ids, act as its root (uid and
/// gid 0) for the setup, as runc does; the process's own user comes later.
pub fn become_root_in_userns() -> Result<()> {
    gid_zero()?;
    uid_zero()
}

/// The same in the user namespace clone3 made, unsharing `as_root`
/// between uid 0 and gid 0 (runc's order: see the module doc on ipc).
pub fn become_root_unsharing(as_root: CloneFlags) -> Result<()> {
    uid_zero()?;
    if !as_root.is_empty() {
        nix::sched::unshare(as_root)
            .map_err(|e| creation_error(e, as_root, "create namespaces"))?;
    }
    gid_zero()
}

fn uid_zero() -> Result<()> {
    let zero = nix::unistd::Uid::from_raw(0);
    nix::unistd::setresuid(zero, zero, zero)
        .context("setresuid(0) in the user namespace (is uid 0 mapped?)")
}

fn gid_zero() -> Result<()> {
    let zero = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(zero, zero, zero)
        .context("setresgid(0) in the user namespace (is gid 0 mapped?)")
}

/// Child side: a new time namespace with linux.timeOffsets, entered by the
/// child itself (it is single-threaded, as setns of a time namespace needs).
pub fn enter_new_time_ns(spec: &Spec) -> Result<()> {
    let flag = clone_flag(LinuxNamespaceType::Time);
    nix::sched::unshare(flag).map_err(|e| creation_error(e, flag, "create time namespace"))?;
    let offsets = spec.linux().as_ref().and_then(|l| l.time_offsets().clone());
    let mut text = String::new();
    for (clock, off) in offsets.iter().flatten() {
        let id = match clock.as_str() {
            "monotonic" => libc::CLOCK_MONOTONIC,
            "boottime" => libc::CLOCK_BOOTTIME,
            other => bail!("linux.timeOffsets: unknown clock {other:?} (monotonic or boottime)"),
        };
        text.push_str(&format!(
            "{id} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text)
            .context("linux.timeOffsets: write timens_offsets")?;
    }
    let fd = open_ns(Path::new("/proc/self/ns/time_for_children"))
        .context("open the new time namespace")?;
    nix::sched::setns(fd.as_fd(), flag).context("enter the new time namespace")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of namespace files as /proc/self/ns lists them, with
    /// the given names only.
    fn ns_dir(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        dir
    }

    #[test]
    fn a_kind_the_kernel_lacks_is_named_as_the_config_names_it() {
        let dir = ns_dir(&["mnt", "pid", "uts", "ipc", "user"]);
        let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID;
        let why = missing_kind(flags, dir.path()).unwrap();
        assert!(
            why.starts_with("linux.namespaces: this kernel has no network namespaces (")
                && why.ends_with("/net is missing)"),
            "{why}"
        );
        let time = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        assert!(missing_kind(time, dir.path())
            .unwrap()
            .contains("no time namespaces"));
    }

    #[test]
    fn nothing_is_blamed_when_every_kind_asked_for_is_there() {
        let dir = ns_dir(&["mnt", "pid", "net"]);
        let flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID;
        assert_eq!(missing_kind(flags, dir.path()), None);
        assert_eq!(
            missing_kind(CloneFlags::CLONE_NEWNS, Path::new("/nonexistent")),
            None
        );
    }

    #[test]
    fn an_einval_on_this_kernel_keeps_its_own_error() {
        // Every kind exists here, so the error is the one given, in context.
        let e = creation_error(
            nix::Error::EINVAL,
            CloneFlags::CLONE_NEWNS,
            "create namespaces",
        );
        assert_eq!(
            format!("{e:#}"),
            "create namespaces: EINVAL: Invalid argument"
        );
    }
}
