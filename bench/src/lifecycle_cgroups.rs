//! The cgroup side of the lifecycle benchmark: every cgroup mount of this
//! host (v1 hierarchies, the named systemd one and the hybrid's cgroup2),
//! this process's own cgroup in each, and the sweep that removes the
//! directories runc and crun made for our containers.
//!
//! runc and crun get a relative cgroupsPath `<prefix>/<runtime>-<id>`.
//! runc resolves it under its own cgroup; crun 1.8 resolves it from the
//! hierarchy's root, which is why crun's mount namespace sees each
//! hierarchy from our own cgroup (see `lifecycle_runtime::CrunNs`). The
//! sweep looks in both places, so a crun that escaped that view still
//! leaves nothing behind.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One cgroup filesystem mount and this process's cgroup inside it.
#[derive(Debug, Clone)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// `cgroup2` for the unified hierarchy, else `cgroup`.
    pub v2: bool,
    /// Our cgroup relative to the mount point ("" when we are at its root).
    pub own: PathBuf,
}

impl CgroupMount {
    /// Our own cgroup directory on the host.
    pub fn own_dir(&self) -> PathBuf {
        self.mount_point.join(&self.own)
    }
}

/// Every cgroup mount, from /proc/self/mountinfo and /proc/self/cgroup.
pub fn mounts() -> Result<Vec<CgroupMount>> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    Ok(parse_mounts(&mountinfo, &own))
}

fn parse_mounts(mountinfo: &str, own: &str) -> Vec<CgroupMount> {
    let mut out = vec![];
    for line in mountinfo.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (Some(root), Some(point), Some(fstype)) = (pre.get(3), pre.get(4), post.first()) else {
            continue;
        };
        let v2 = match *fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let super_opts: Vec<&str> = post.get(2).map_or(vec![], |o| o.split(',').collect());
        let Some(path) = own_path(own, v2, &super_opts) else {
            continue;
        };
        // The mount shows the hierarchy from `root`; our path is below it.
        let rel = Path::new(path)
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        out.push(CgroupMount {
            mount_point: PathBuf::from(unescape(point)),
            v2,
            own: rel,
        });
    }
    out
}

/// Our path in the hierarchy whose super options are `opts`: the
/// /proc/self/cgroup line whose controller list ("cpu,cpuacct",
/// "name=systemd") is all in `opts`, or the "0::" line for cgroup2.
fn own_path<'a>(own: &'a str, v2: bool, opts: &[&str]) -> Option<&'a str> {
    own.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let matches = if v2 {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| opts.contains(&c))
        };
        matches.then_some(path)
    })
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where `<prefix>` may exist: under our own cgroup and at each root.
fn candidates(mounts: &[CgroupMount], prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![];
    for m in mounts {
        for dir in [m.own_dir().join(prefix), m.mount_point.join(prefix)] {
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// The `<prefix>` directories that exist now.
pub fn existing(mounts: &[CgroupMount], prefix: &str) -> Vec<PathBuf> {
    candidates(mounts, prefix)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect()
}

/// Removes every `<prefix>` tree (killing what is still in it: only our
/// containers can be there); returns the directories that survived.
pub fn sweep(mounts: &[CgroupMount], prefix: &str) -> Vec<PathBuf> {
    for dir in existing(mounts, prefix) {
        remove_tree(&dir);
    }
    existing(mounts, prefix)
}

fn remove_tree(dir: &Path) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path());
        }
    }
    // A frozen process cannot die: thaw (v1 freezer, v2 cgroup.freeze).
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    for _ in 0..200 {
        let pids = procs(dir);
        if pids.is_empty() {
            break;
        }
        for p in pids {
            crate::constellation::kill(p, crate::constellation::libc_sig::KILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..100 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw
32 30 0:28 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu rw shared:13 - cgroup cgroup rw,cpu
35 30 0:31 / /sys/fs/cgroup/cpuacct rw shared:14 - cgroup cgroup rw,cpuacct
36 25 0:5 / /tmp/with\\040space rw - tmpfs tmpfs rw";

    const OWN: &str = "\
9:name=systemd:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/";

    #[test]
    fn finds_every_cgroup_mount_and_our_place_in_it() {
        let m = parse_mounts(MOUNTINFO, OWN);
        let got: Vec<(String, bool, String)> = m
            .iter()
            .map(|m| {
                (
                    m.mount_point.display().to_string(),
                    m.v2,
                    m.own.display().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/sys/fs/cgroup/unified".into(), true, "".into()),
                ("/sys/fs/cgroup/systemd".into(), false, "".into()),
                (
                    "/sys/fs/cgroup/memory".into(),
                    false,
                    "process_api/abc".into()
                ),
                ("/sys/fs/cgroup/cpu".into(), false, "".into()),
                ("/sys/fs/cgroup/cpuacct".into(), false, "".into()),
            ]
        );
        let c = candidates(&m, "p");
        assert!(c.contains(&PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/p")));
        assert!(c.contains(&PathBuf::from("/sys/fs/cgroup/memory/p")));
        assert_eq!(c.len(), 6, "own and root coincide except for memory: {c:?}");
    }

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape("/tmp/with\\040space"), "/tmp/with space");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
