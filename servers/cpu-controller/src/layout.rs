//! Where a group's directories are: one per hierarchy that holds any of the
//! controllers this server manages, and on cgroup v1 one in every other
//! hierarchy too (named ones such as `name=systemd`, and controllers no
//! server sets anything in, such as net_cls): as runc and crun do, the
//! container's process is in a cgroup of its own in every hierarchy, so that
//! it is not accounted to (or killed with) its creator's cgroup there, and
//! its /sys/fs/cgroup shows its own cgroups, not the host's tree. On a
//! hybrid host that holds none of the servers' controllers on cgroup2, the
//! group has a directory there too (`unified`), for the same reasons:
//! systemd in hybrid mode tracks its units' processes by cgroup2.
//!
//! On this kind of host (v1) cpu, cpuacct, cpuset, pids and freezer may each
//! be a separate mount, or co-mounted ("cpu,cpuacct"); on a v2 host they are
//! all one directory; on a hybrid host any mix. Each controller is decided on
//! its own at start, and the group gets `<base>/<rel>` in each distinct
//! hierarchy, where `<base>` is the per-constellation [`cgroupfs::Base`].

use cgroupfs::{Base, CgroupDir, Hierarchies, Hierarchy, Places, Version};
use protocol::Error;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A controller this server manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ctl {
    Cpu,
    Cpuacct,
    Cpuset,
    Pids,
    Freezer,
    /// v1 only: v2 has no devices files (its device policy is eBPF).
    Devices,
    /// v1 blkio or v2 io.
    Blkio,
    /// v1 controllers no server sets anything in: the group is made, joined
    /// and removed there, nothing more.
    NetCls,
    NetPrio,
    PerfEvent,
    Rdma,
    Misc,
    /// A named v1 hierarchy (`name=systemd`): no controller at all, only
    /// membership. There may be several, each its own [`Mount`].
    Named,
    /// The cgroup2 hierarchy of a hybrid host, when it holds none of the
    /// controllers the servers set: membership only, as runc does there
    /// (systemd in hybrid mode tracks its units' processes by it).
    Unified,
}

/// The controllers whose settings this server manages.
pub const MANAGED: [Ctl; 7] = [
    Ctl::Cpu,
    Ctl::Cpuacct,
    Ctl::Cpuset,
    Ctl::Pids,
    Ctl::Freezer,
    Ctl::Devices,
    Ctl::Blkio,
];

/// v1 controllers a group is only a member of (taken on cgroup v1 only: on
/// v2 the group's one directory is in them anyway).
pub const MEMBER_ONLY: [Ctl; 5] = [
    Ctl::NetCls,
    Ctl::NetPrio,
    Ctl::PerfEvent,
    Ctl::Rdma,
    Ctl::Misc,
];

impl Ctl {
    pub fn name(self) -> &'static str {
        match self {
            Ctl::Cpu => "cpu",
            Ctl::Cpuacct => "cpuacct",
            Ctl::Cpuset => "cpuset",
            Ctl::Pids => "pids",
            Ctl::Freezer => "freezer",
            Ctl::Devices => "devices",
            Ctl::Blkio => "blkio",
            Ctl::NetCls => "net_cls",
            Ctl::NetPrio => "net_prio",
            Ctl::PerfEvent => "perf_event",
            Ctl::Rdma => "rdma",
            Ctl::Misc => "misc",
            Ctl::Named => "name=",
            Ctl::Unified => "unified",
        }
    }

    fn from_name(name: &str) -> Option<Ctl> {
        if name.starts_with("name=") {
            return Some(Ctl::Named);
        }
        if name == Ctl::Unified.name() {
            return Some(Ctl::Unified);
        }
        MANAGED
            .into_iter()
            .chain(MEMBER_ONLY)
            .find(|c| c.name() == name)
    }

    /// The name to enable in a v2 cgroup.subtree_control. cpuacct and freezer
    /// are not v2 controllers: v2 folds usage into cpu.stat and freezing into
    /// the core cgroup.freeze.
    pub fn v2_controller(self) -> Option<&'static str> {
        match self {
            Ctl::Cpu | Ctl::Cpuset | Ctl::Pids => Some(self.name()),
            Ctl::Blkio => Some("io"),
            Ctl::Cpuacct | Ctl::Freezer | Ctl::Devices => None,
            Ctl::NetCls
            | Ctl::NetPrio
            | Ctl::PerfEvent
            | Ctl::Rdma
            | Ctl::Misc
            | Ctl::Named
            | Ctl::Unified => None,
        }
    }
}

/// How cgroup directories are made and removed. The kernel fills a new
/// cgroup with its interface files and drops them on rmdir; the v2 unit tests
/// stand in for it on a plain directory tree.
pub trait DirOps: Send + Sync + std::fmt::Debug {
    /// mkdir; Ok(false) when it already existed.
    fn mkdir(&self, dir: &CgroupDir) -> Result<bool, Error>;
    fn rmdir(&self, dir: &CgroupDir) -> Result<(), Error>;
    /// One rmdir attempt: Ok(false) while processes or child groups are
    /// still in it.
    fn try_rmdir(&self, dir: &CgroupDir) -> Result<bool, Error> {
        if !dir.exists() {
            return Ok(true);
        }
        if !dir.procs_recursive()?.is_empty() || !dir.children()?.is_empty() {
            return Ok(false);
        }
        self.rmdir(dir).map(|()| true)
    }
}

/// The real cgroupfs.
#[derive(Debug)]
pub struct Kernel;

impl DirOps for Kernel {
    fn mkdir(&self, dir: &CgroupDir) -> Result<bool, Error> {
        dir.create()
    }
    fn rmdir(&self, dir: &CgroupDir) -> Result<(), Error> {
        dir.remove()
    }
    fn try_rmdir(&self, dir: &CgroupDir) -> Result<bool, Error> {
        dir.try_remove()
    }
}

/// One hierarchy holding some of our controllers, and our base in it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub version: Version,
    /// The hierarchy's root as mounted here.
    pub root: PathBuf,
    pub base: CgroupDir,
    pub controllers: Vec<Ctl>,
    /// The names of the named hierarchies (`name=systemd`) this is.
    pub names: Vec<String>,
}

impl Mount {
    pub fn has(&self, ctl: Ctl) -> bool {
        self.controllers.contains(&ctl)
    }

    /// The hierarchy as /proc/PID/cgroup names it: "cpu", "cpu,cpuacct"
    /// when co-mounted, "name=systemd"; "" for a hybrid host's cgroup2.
    pub fn label(&self) -> String {
        let controllers = self
            .controllers
            .iter()
            .filter(|c| !matches!(c, Ctl::Named | Ctl::Unified));
        controllers
            .map(|c| c.name().to_string())
            .chain(self.names.iter().cloned())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The group directory `rel` in this hierarchy: "web" or "pod/web"
    /// below the base; for a group at a cgroupsPath (see
    /// [`crate::table::Table::rel`]) "../pods/c1" (`..` is the base's
    /// parent, the starter's cgroup) or "/default/c1" (from the root).
    pub fn dir(&self, rel: &Path) -> CgroupDir {
        let mut p = match rel.has_root() {
            true => self.root.clone(),
            false => self.base.path().to_path_buf(),
        };
        for c in rel.components() {
            match c {
                Component::ParentDir => {
                    p.pop();
                }
                Component::Normal(n) => p.push(n),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        CgroupDir::new(p)
    }

    /// This hierarchy's anchors, for placing and checking cgroupsPaths.
    pub fn places(&self) -> Places {
        Places::new(self.root.clone(), self.base.clone())
    }

    /// The controllers to enable for children here (v2 only).
    pub fn v2_controllers(&self) -> Vec<&'static str> {
        if self.version == Version::V1 {
            return vec![];
        }
        self.controllers
            .iter()
            .filter_map(|c| c.v2_controller())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct Layout {
    mounts: Vec<Mount>,
    ops: Arc<dyn DirOps>,
    /// memory-controller keeps its groups in our v2 directories too.
    shared_v2: bool,
}

impl Layout {
    /// Discovers the host's hierarchies and loads (or picks) the base.
    pub fn discover(state_dir: &Path, root: &Path) -> Result<Layout, Error> {
        let hier = with_hybrid_unified(with_v2_io(with_v2_freezer(Hierarchies::discover()?)));
        let v1 = |c: &str| hier.get(c).is_ok_and(|h| h.version == Version::V1);
        let present: Vec<&str> = MANAGED
            .iter()
            .map(|c| c.name())
            .filter(|c| hier.get(c).is_ok())
            .chain(MEMBER_ONLY.iter().map(|c| c.name()).filter(|c| v1(c)))
            .chain(
                hier.by_controller
                    .keys()
                    .map(String::as_str)
                    .filter(|c| c.starts_with("name=") && v1(c)),
            )
            .chain(
                hier.get(Ctl::Unified.name())
                    .is_ok()
                    .then(|| Ctl::Unified.name()),
            )
            .collect();
        hier.get("cpu")?;
        let base = Base::load_or_init(state_dir, root, &hier, &present)?;
        Ok(Layout::from_base(&base, Arc::new(Kernel)))
    }

    /// Groups the base's controllers by directory: co-mounted v1 controllers
    /// and all of v2 share one.
    pub fn from_base(base: &Base, ops: Arc<dyn DirOps>) -> Layout {
        let mut mounts: Vec<Mount> = vec![];
        for (name, (h, dir)) in &base.controllers {
            let Some(ctl) = Ctl::from_name(name) else {
                continue;
            };
            let m = match mounts.iter().position(|m| m.base.path() == dir) {
                Some(i) => &mut mounts[i],
                None => {
                    mounts.push(Mount {
                        version: h.version,
                        root: h.mount.clone(),
                        base: CgroupDir::new(dir.clone()),
                        controllers: vec![],
                        names: vec![],
                    });
                    mounts.last_mut().expect("just pushed")
                }
            };
            m.controllers.push(ctl);
            if ctl == Ctl::Named {
                m.names.push(name.clone());
            }
        }
        for m in &mut mounts {
            m.controllers.sort();
            m.controllers.dedup();
        }
        mounts.sort_by_key(|m| m.controllers[0]);
        Layout {
            mounts,
            ops,
            shared_v2: false,
        }
    }

    /// Marks the v2 directories as shared with memory-controller: group
    /// and base directories there are not ours alone to remove.
    pub fn set_shared_v2(&mut self, shared: bool) {
        self.shared_v2 = shared;
    }

    pub fn shared_v2(&self) -> bool {
        self.shared_v2
    }

    pub fn mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// How many hierarchies every group is in.
    pub fn required(&self) -> usize {
        self.mounts.len()
    }

    pub fn ops(&self) -> &dyn DirOps {
        self.ops.as_ref()
    }

    pub fn mount_of(&self, ctl: Ctl) -> Option<&Mount> {
        self.mounts.iter().find(|m| m.has(ctl))
    }

    /// The hierarchy of a controller a request needs, or a clear Unsupported.
    pub fn need(&self, ctl: Ctl, what: &str) -> Result<&Mount, Error> {
        self.mount_of(ctl).ok_or_else(|| {
            Error::unsupported(format!(
                "{what} needs the {} cgroup controller, which is not mounted on this host",
                ctl.name()
            ))
        })
    }

    /// "cpu=v1 cpuacct=v1 cpuset=v1 pids=v1 freezer=v1", then the
    /// hierarchies the groups are only members of ("name=systemd=v1",
    /// "unified=v2").
    pub fn describe(&self) -> String {
        let controllers = MANAGED.iter().chain(&MEMBER_ONLY).filter_map(|c| {
            self.mount_of(*c)
                .map(|m| format!("{}={}", c.name(), m.version.as_str()))
        });
        let named = self.mounts.iter().flat_map(|m| {
            m.names
                .iter()
                .map(move |n| format!("{n}={}", m.version.as_str()))
        });
        let unified = self
            .mount_of(Ctl::Unified)
            .map(|_| "unified=v2".to_string());
        controllers
            .chain(named)
            .chain(unified)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The group's directory in every hierarchy.
    pub fn paths(&self, rel: &Path) -> Vec<PathBuf> {
        self.mounts
            .iter()
            .map(|m| m.dir(rel).path().to_path_buf())
            .collect()
    }
}

/// On a hybrid host whose cgroup2 mount holds none of the controllers the
/// servers set, the container still gets a cgroup of its own there:
/// `unified`, a hierarchy of membership only (see
/// `Hierarchies::membership_unified`). Taken after the io and freezer
/// fallbacks, which may put one of ours on cgroup2.
fn with_hybrid_unified(mut hier: Hierarchies) -> Hierarchies {
    if let Some(h) = hier.membership_unified() {
        hier.by_controller.insert(h.controller.clone(), h);
    }
    hier
}

/// cgroup v2 calls blkio "io": taken as our blkio when there is no v1
/// blkio hierarchy.
fn with_v2_io(mut hier: Hierarchies) -> Hierarchies {
    if hier.get("blkio").is_err() {
        if let Ok(io) = hier.get("io").cloned() {
            if io.version == Version::V2 {
                hier.by_controller.insert(
                    "blkio".into(),
                    Hierarchy {
                        controller: "blkio".into(),
                        ..io
                    },
                );
            }
        }
    }
    hier
}

/// cgroup v2 freezes through the core cgroup.freeze file, not a controller,
/// so cgroup.controllers never lists "freezer". Without a v1 freezer
/// hierarchy, freeze on the unified hierarchy.
fn with_v2_freezer(mut hier: Hierarchies) -> Hierarchies {
    if hier.get("freezer").is_err() {
        if let Some(unified) = hier.unified.clone() {
            let mount_root = hier
                .by_controller
                .values()
                .find(|h| h.version == Version::V2)
                .map(|h| h.mount_root.clone())
                .unwrap_or_else(|| PathBuf::from("/"));
            hier.by_controller.insert(
                "freezer".into(),
                Hierarchy {
                    controller: "freezer".into(),
                    version: Version::V2,
                    mount: unified,
                    mount_root,
                },
            );
        }
    }
    hier
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(c: &str, v: Version, mount: &str) -> (Hierarchy, PathBuf) {
        let hier = Hierarchy {
            controller: c.into(),
            version: v,
            mount: mount.into(),
            mount_root: "/".into(),
        };
        (hier, PathBuf::from(mount).join("asterism-x"))
    }

    #[test]
    fn separate_v1_mounts_give_one_dir_each() {
        let base = Base::fixed(vec![
            h("cpu", Version::V1, "/c/cpu"),
            h("cpuacct", Version::V1, "/c/cpuacct"),
            h("pids", Version::V1, "/c/pids"),
        ]);
        let l = Layout::from_base(&base, Arc::new(Kernel));
        assert_eq!(l.mounts().len(), 3);
        assert_eq!(
            l.paths(Path::new("a/b"))[1],
            PathBuf::from("/c/cpuacct/asterism-x/a/b")
        );
        assert_eq!(l.describe(), "cpu=v1 cpuacct=v1 pids=v1");
        let m = l.mount_of(Ctl::Pids).unwrap();
        assert_eq!(
            m.dir(Path::new("../pods/c1")).path(),
            Path::new("/c/pids/pods/c1")
        );
        assert_eq!(
            m.dir(Path::new("/default/c1")).path(),
            Path::new("/c/pids/default/c1")
        );
        assert!(l
            .need(Ctl::Cpuset, "--cpus")
            .unwrap_err()
            .message
            .contains("cpuset"));
    }

    /// Named hierarchies and the v1 controllers nobody sets anything in
    /// are hierarchies every group is a member of, each named as
    /// /proc/PID/cgroup names it.
    #[test]
    fn named_and_member_only_hierarchies_are_mounts_too() {
        let base = Base::fixed(vec![
            h("cpu", Version::V1, "/c/cpu"),
            h("net_cls", Version::V1, "/c/net_cls,net_prio"),
            h("net_prio", Version::V1, "/c/net_cls,net_prio"),
            h("name=systemd", Version::V1, "/c/systemd"),
            h("name=elogind", Version::V1, "/c/elogind"),
        ]);
        let l = Layout::from_base(&base, Arc::new(Kernel));
        let labels: Vec<String> = l.mounts().iter().map(|m| m.label()).collect();
        assert_eq!(
            labels,
            ["cpu", "net_cls,net_prio", "name=elogind", "name=systemd"]
        );
        assert_eq!(l.required(), 4);
        assert_eq!(
            l.describe(),
            "cpu=v1 net_cls=v1 net_prio=v1 name=elogind=v1 name=systemd=v1"
        );
        assert_eq!(
            l.paths(Path::new("web"))[3],
            PathBuf::from("/c/systemd/asterism-x/web")
        );
        for m in l.mounts() {
            assert!(m.v2_controllers().is_empty());
        }
    }

    #[test]
    fn v2_is_one_dir_and_comounted_v1_shares() {
        let base = Base::fixed(vec![
            h("cpu", Version::V2, "/u"),
            h("cpuset", Version::V2, "/u"),
            h("freezer", Version::V2, "/u"),
            h("cpuacct", Version::V1, "/c/cpu,cpuacct"),
            h("pids", Version::V1, "/c/cpu,cpuacct"),
        ]);
        let l = Layout::from_base(&base, Arc::new(Kernel));
        assert_eq!(l.mounts().len(), 2);
        let v2 = l.mount_of(Ctl::Cpu).unwrap();
        assert_eq!(v2.v2_controllers(), vec!["cpu", "cpuset"]);
        assert_eq!(
            l.mount_of(Ctl::Pids).unwrap().controllers,
            vec![Ctl::Cpuacct, Ctl::Pids]
        );
    }

    /// A hybrid host with nothing of ours on cgroup2 (hugetlb may be):
    /// the group is a member of it, labelled "" as /proc/PID/cgroup's
    /// "0::" line; where any of ours is on v2, it is in it already.
    #[test]
    fn a_hybrid_hosts_cgroup2_is_a_membership_mount() {
        let mi = "\
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
36 30 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        let hier = with_hybrid_unified(Hierarchies::from_mountinfo(mi, |_| "hugetlb".into()));
        let unified = hier.get("unified").unwrap();
        assert_eq!(unified.version, Version::V2);
        assert_eq!(unified.mount, PathBuf::from("/sys/fs/cgroup/unified"));
        let base = Base::fixed(vec![
            h("cpu", Version::V1, "/c/cpu"),
            h("unified", Version::V2, "/c/unified"),
        ]);
        let l = Layout::from_base(&base, Arc::new(Kernel));
        let labels: Vec<String> = l.mounts().iter().map(|m| m.label()).collect();
        assert_eq!(labels, ["cpu", ""]);
        assert!(l.mounts()[1].v2_controllers().is_empty());
        // pids on cgroup2: the group is there through it.
        let hier = with_hybrid_unified(Hierarchies::from_mountinfo(mi, |_| "pids".into()));
        assert!(hier.get("unified").is_err());
        // No cgroup2 mount at all.
        let v1_only = mi.lines().take(3).collect::<Vec<_>>().join("\n");
        let hier = with_hybrid_unified(Hierarchies::from_mountinfo(&v1_only, |_| String::new()));
        assert!(hier.get("unified").is_err());
    }

    #[test]
    fn v2_io_is_taken_as_blkio() {
        let mi = "40 1 0:33 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let hier = Hierarchies::from_mountinfo(mi, |_| "cpuset cpu io pids".into());
        let hier = with_v2_io(hier);
        assert_eq!(hier.get("blkio").unwrap().version, Version::V2);
        assert_eq!(Ctl::Blkio.v2_controller(), Some("io"));
        // A v1 blkio stays.
        let mi = "41 1 0:34 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n";
        let hier = with_v2_io(Hierarchies::from_mountinfo(mi, |_| String::new()));
        assert_eq!(hier.get("blkio").unwrap().version, Version::V1);
    }

    #[test]
    fn freezer_falls_back_to_unified() {
        let mi = "40 1 0:33 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let hier = Hierarchies::from_mountinfo(mi, |_| "cpuset cpu pids".into());
        let hier = with_v2_freezer(hier);
        assert_eq!(hier.get("freezer").unwrap().version, Version::V2);
        assert_eq!(
            hier.get("freezer").unwrap().mount,
            PathBuf::from("/sys/fs/cgroup")
        );
    }
}
