//! Discovering where each cgroup controller is mounted.

use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// Where one controller lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub controller: String,
    pub version: Version,
    /// The mount point (`/sys/fs/cgroup/memory`, `/sys/fs/cgroup/unified`, ...).
    pub mount: PathBuf,
    /// The mount's root inside the hierarchy (mountinfo field 4), usually "/".
    pub mount_root: PathBuf,
}

impl Hierarchy {
    /// Host directory of a cgroup path as written in /proc/PID/cgroup.
    pub fn host_path(&self, cgroup_path: &Path) -> PathBuf {
        let rel = cgroup_path
            .strip_prefix(&self.mount_root)
            .unwrap_or(cgroup_path);
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        self.mount.join(rel)
    }
}

/// The controllers whose files the servers write (memory-controller's and
/// cpu-controller's; "io" is cgroup v2's blkio).
pub const SERVER_CONTROLLERS: [&str; 9] = [
    "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices", "blkio", "io",
];

/// Every controller we know about on this host, and the named v1
/// hierarchies (`name=systemd`), keyed as /proc/PID/cgroup spells them: a
/// named hierarchy has no controller, but a process is in one of its
/// cgroups all the same, and runc puts a container's process in its own
/// cgroup there too.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchies {
    pub by_controller: BTreeMap<String, Hierarchy>,
    /// The cgroup2 mount, if any, even when it holds no controllers.
    pub unified: Option<PathBuf>,
    /// That mount's root inside the hierarchy (mountinfo field 4).
    #[serde(default)]
    pub unified_root: Option<PathBuf>,
}

impl Hierarchies {
    /// Reads /proc/self/mountinfo and the cgroup2 mount's cgroup.controllers.
    pub fn discover() -> Result<Self, Error> {
        let mountinfo = crate::dir::read_small(Path::new("/proc/self/mountinfo"))
            .map_err(|e| Error::io("read /proc/self/mountinfo", &e))?;
        Ok(Self::from_host_mountinfo(&mountinfo))
    }

    /// As `discover`, from mountinfo text the caller read already (and may
    /// use for more than the hierarchies).
    pub fn from_host_mountinfo(mountinfo: &str) -> Self {
        Self::from_mountinfo(mountinfo, |mount| {
            crate::dir::read_small(&mount.join("cgroup.controllers")).unwrap_or_default()
        })
    }

    /// Parses mountinfo text; `controllers_of` returns the contents of a
    /// cgroup2 mount's cgroup.controllers (injected so tests can lay out any host).
    pub fn from_mountinfo(mountinfo: &str, controllers_of: impl Fn(&Path) -> String) -> Self {
        let mut out = Hierarchies::default();
        let mut v2: Option<(PathBuf, PathBuf)> = None;
        for line in mountinfo.lines() {
            // id parent major:minor root mountpoint options [optional...] - fstype source superopts
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.len() < 3 {
                continue;
            }
            let root = PathBuf::from(unescape(l[3]));
            let mount = PathBuf::from(unescape(l[4]));
            match r[0] {
                "cgroup" => {
                    for opt in r[2].split(',') {
                        if is_v1_controller(opt) || is_v1_name(opt) {
                            out.by_controller
                                .entry(opt.to_string())
                                .or_insert(Hierarchy {
                                    controller: opt.to_string(),
                                    version: Version::V1,
                                    mount: mount.clone(),
                                    mount_root: root.clone(),
                                });
                        }
                    }
                }
                "cgroup2" if v2.is_none() => v2 = Some((mount, root)),
                _ => {}
            }
        }
        if let Some((mount, root)) = v2 {
            for c in controllers_of(&mount).split_whitespace() {
                // A controller bound to a v1 hierarchy cannot also be on v2;
                // keep the v1 entry if both somehow appear.
                out.by_controller.entry(c.to_string()).or_insert(Hierarchy {
                    controller: c.to_string(),
                    version: Version::V2,
                    mount: mount.clone(),
                    mount_root: root.clone(),
                });
            }
            out.unified = Some(mount);
            out.unified_root = Some(root);
        }
        out
    }

    /// A hybrid host's cgroup2 as a hierarchy of membership only, named
    /// "unified": when it holds none of the controllers the servers set
    /// (`SERVER_CONTROLLERS`), a container still gets a cgroup of its own
    /// there, as runc gives it (systemd in hybrid mode tracks processes
    /// there). None without cgroup2, or where one of them is on it (the
    /// container's group is there already).
    pub fn membership_unified(&self) -> Option<Hierarchy> {
        let on_v2 = |c: &&str| self.get(c).is_ok_and(|h| h.version == Version::V2);
        if SERVER_CONTROLLERS.iter().any(on_v2) {
            return None;
        }
        Some(Hierarchy {
            controller: "unified".to_string(),
            version: Version::V2,
            mount: self.unified.clone()?,
            mount_root: self
                .unified_root
                .clone()
                .unwrap_or_else(|| PathBuf::from("/")),
        })
    }

    pub fn get(&self, controller: &str) -> Result<&Hierarchy, Error> {
        self.by_controller.get(controller).ok_or_else(|| {
            Error::unsupported(format!(
                "the {controller} cgroup controller is not mounted on this host (neither a v1 hierarchy nor listed in cgroup2's cgroup.controllers)"
            ))
        })
    }
}

/// The cgroup path of this process for `h`, from /proc/self/cgroup.
pub fn own_cgroup(h: &Hierarchy) -> Result<PathBuf, Error> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| Error::io("read /proc/self/cgroup", &e))?;
    cgroup_of(&text, h).ok_or_else(|| {
        Error::internal(format!(
            "/proc/self/cgroup has no line for the {} controller ({})",
            h.controller,
            h.version.as_str()
        ))
    })
}

/// Finds the path for hierarchy `h` in /proc/PID/cgroup text.
pub fn cgroup_of(proc_cgroup: &str, h: &Hierarchy) -> Option<PathBuf> {
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let hit = match h.version {
            Version::V2 => id == "0" && ctrls.is_empty(),
            Version::V1 => ctrls.split(',').any(|c| c == h.controller),
        };
        if hit {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn is_v1_controller(opt: &str) -> bool {
    matches!(
        opt,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "blkio"
            | "perf_event"
            | "net_prio"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// `name=X`: a v1 hierarchy mounted with no controller, under a name
/// (systemd's `name=systemd`, elogind's `name=elogind`).
fn is_v1_name(opt: &str) -> bool {
    opt.strip_prefix("name=").is_some_and(|n| !n.is_empty())
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
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
35 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
36 30 0:32 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_decides_per_controller() {
        let h = Hierarchies::from_mountinfo(HYBRID, |_| "hugetlb\n".into());
        assert_eq!(h.get("memory").unwrap().version, Version::V1);
        assert_eq!(
            h.get("cpu").unwrap().mount,
            PathBuf::from("/sys/fs/cgroup/cpu")
        );
        assert_eq!(h.get("hugetlb").unwrap().version, Version::V2);
        // A named hierarchy, keyed as /proc/PID/cgroup names it.
        let systemd = h.get("name=systemd").unwrap();
        assert_eq!(systemd.version, Version::V1);
        assert_eq!(systemd.mount, PathBuf::from("/sys/fs/cgroup/systemd"));
        let own = cgroup_of("9:name=systemd:/user.slice\n4:memory:/m\n", systemd).unwrap();
        assert_eq!(own, PathBuf::from("/user.slice"));
        assert!(h.get("name=").is_err());
        assert!(h.get("freezer").unwrap_err().message.contains("freezer"));
        assert_eq!(h.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
        // The cgroup2 hierarchy itself, whose /proc/PID/cgroup line is "0::".
        let unified = h.membership_unified().unwrap();
        assert_eq!(unified.version, Version::V2);
        assert_eq!(unified.mount, PathBuf::from("/sys/fs/cgroup/unified"));
        let own = cgroup_of("1:cpu:/a\n0::/user.slice/s\n", &unified).unwrap();
        assert_eq!(own, PathBuf::from("/user.slice/s"));
        assert_eq!(
            unified.host_path(&own),
            PathBuf::from("/sys/fs/cgroup/unified/user.slice/s")
        );
    }

    #[test]
    fn pure_v2_host() {
        let mi = "40 1 0:33 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let h = Hierarchies::from_mountinfo(mi, |_| "cpuset cpu io memory pids".into());
        for c in ["cpu", "memory", "pids", "cpuset"] {
            assert_eq!(h.get(c).unwrap().version, Version::V2);
        }
        let own = cgroup_of("0::/user.slice/test\n", h.get("memory").unwrap()).unwrap();
        assert_eq!(
            h.get("memory").unwrap().host_path(&own),
            PathBuf::from("/sys/fs/cgroup/user.slice/test")
        );
    }

    #[test]
    fn own_cgroup_per_controller_on_v1() {
        let h = Hierarchies::from_mountinfo(HYBRID, |_| String::new());
        let text = "4:memory:/process_api/abc\n1:cpu:/\n0::/\n";
        assert_eq!(
            cgroup_of(text, h.get("memory").unwrap()).unwrap(),
            PathBuf::from("/process_api/abc")
        );
        assert_eq!(
            cgroup_of(text, h.get("cpu").unwrap()).unwrap(),
            PathBuf::from("/")
        );
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }
}
