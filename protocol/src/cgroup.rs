//! How a new process joins a container's cgroups by itself.
//!
//! Moving another process into a cgroup (writing its pid to `cgroup.procs`)
//! takes the kernel's global `cgroup_threadgroup_rwsem` for writing, which
//! waits for an RCU grace period: 7 to 15 ms on the hosts we measured, on
//! the path of every container start. Two ways in avoid that lock, and the
//! controllers hand out what each needs (the fds ride beside the message,
//! in the same order as the entries):
//!
//! - cgroup v1: a single-threaded process that writes "0" to a group's
//!   `tasks` file moves itself without the global lock (kernel
//!   `cgroup_procs_write_start`: no lock when migrating `current` alone).
//! - cgroup v2: clone3 with CLONE_INTO_CGROUP creates the process in the
//!   group directly.
//!
//! The controller still decides which group (the fd is opened by the
//! server, for the group it owns), and the kernel checks the permission
//! against the opener's credentials.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupJoin {
    /// An O_WRONLY fd of `<group>/tasks` in the v1 hierarchy named
    /// (its controllers, e.g. "memory" or "cpu"); `path` is the group
    /// directory on the host.
    V1Tasks { hierarchy: String, path: String },
    /// An O_DIRECTORY fd of the v2 group, for CLONE_INTO_CGROUP.
    V2Dir { path: String },
}

/// Longest `linux.cgroupsPath` accepted (PATH_MAX).
pub const CGROUPS_PATH_MAX: usize = 4096;

/// Checks the form of a `linux.cgroupsPath` and returns its components.
///
/// runc's cgroupfs rules, minus what could lead out of the place it names:
/// an absolute path is taken from the hierarchy's root, a relative one from
/// the runtime's own cgroup (for asterism: the cgroup of the process that
/// started the constellation). Empty components (`a//b`, a trailing `/`)
/// are skipped, as runc's `filepath.Clean` does; `.` and `..` are refused
/// rather than cleaned, since `..` in a relative path would climb out of
/// the cgroup it is relative to. The servers check again: no client-sent
/// path is used unchecked.
pub fn cgroups_path_parts(path: &str) -> Result<Vec<&str>, crate::Error> {
    let bad = |why: String| crate::Error::invalid(format!("linux.cgroupsPath {path:?}: {why}"));
    if path.len() > CGROUPS_PATH_MAX {
        return Err(bad(format!(
            "is {} bytes long; at most {CGROUPS_PATH_MAX} are allowed",
            path.len()
        )));
    }
    if path.contains('\0') {
        return Err(bad("contains a NUL byte".into()));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err(bad(
            "names no cgroup (a container cannot be put in the root of a hierarchy)".into(),
        ));
    }
    for p in &parts {
        if *p == "." || *p == ".." {
            return Err(bad(format!(
                "component {p:?} is not allowed; give the path without it"
            )));
        }
        if p.len() > 255 {
            return Err(bad(format!(
                "component {:?}... is {} bytes long; at most 255 are allowed",
                &p[..16],
                p.len()
            )));
        }
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroups_paths() {
        assert_eq!(cgroups_path_parts("a/b").unwrap(), vec!["a", "b"]);
        assert_eq!(
            cgroups_path_parts("/kubepods//pod1/c1/").unwrap(),
            vec!["kubepods", "pod1", "c1"]
        );
        assert_eq!(
            cgroups_path_parts("system.slice:libpod:x").unwrap().len(),
            1
        );
        for (bad, why) in [
            ("", "names no cgroup"),
            ("/", "names no cgroup"),
            ("a/../b", "\"..\" is not allowed"),
            ("./a", "\".\" is not allowed"),
            ("a\0b", "NUL"),
        ] {
            let e = cgroups_path_parts(bad).unwrap_err();
            assert!(e.message.contains(why), "{bad:?}: {}", e.message);
            assert!(e.message.contains("linux.cgroupsPath"), "{}", e.message);
        }
        let long = "x".repeat(256);
        assert!(cgroups_path_parts(&long)
            .unwrap_err()
            .message
            .contains("255"));
        let huge = "a/".repeat(2100);
        assert!(cgroups_path_parts(&huge)
            .unwrap_err()
            .message
            .contains("4096"));
    }
}
