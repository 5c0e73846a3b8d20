//! Which fd of this process is the listener of which container:
//! `<state_dir>/listeners/<id>.json` = {fd, pid, policy}, written when an
//! agent starts and removed before it closes the fd. A restarted init
//! (whose fd store died with it) reads these and takes duplicates with
//! pidfd_getfd, so that a later restart of seccomp-monitor can still be
//! handed every listener.

use protocol::seccomp::NotifyPolicy;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub fd: i32,
    pub pid: i32,
    pub policy: NotifyPolicy,
}

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("listeners")
}

fn file(state_dir: &Path, id: &str) -> PathBuf {
    dir(state_dir).join(format!("{id}.json"))
}

pub fn publish(state_dir: &Path, id: &str, p: &Published) {
    let d = dir(state_dir);
    let _ = std::fs::create_dir_all(&d);
    let Ok(bytes) = serde_json::to_vec(p) else {
        return;
    };
    let tmp = d.join(format!("{id}.tmp"));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, file(state_dir, id));
    }
}

/// Removes `id`'s entry if it still names `fd` (a newer agent of the same
/// container may have replaced it).
pub fn withdraw(state_dir: &Path, id: &str, fd: i32) {
    let f = file(state_dir, id);
    let current = std::fs::read(&f)
        .ok()
        .and_then(|b| serde_json::from_slice::<Published>(&b).ok());
    if current.is_none_or(|p| p.fd == fd) {
        let _ = std::fs::remove_file(f);
    }
}

/// A fresh server holds no listener yet: stale entries go.
pub fn clear(state_dir: &Path) {
    let _ = std::fs::remove_dir_all(dir(state_dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withdraw_leaves_a_newer_entry_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = |fd| Published {
            fd,
            pid: 42,
            policy: NotifyPolicy::Continue,
        };
        publish(dir.path(), "c", &p(7));
        publish(dir.path(), "c", &p(9));
        withdraw(dir.path(), "c", 7);
        assert!(file(dir.path(), "c").exists());
        withdraw(dir.path(), "c", 9);
        assert!(!file(dir.path(), "c").exists());
        publish(dir.path(), "d", &p(3));
        clear(dir.path());
        assert!(!dir.path().join("listeners").exists());
    }
}
