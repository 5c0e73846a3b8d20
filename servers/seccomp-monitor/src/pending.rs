//! The notification journal: a notification is written here (atomically,
//! tmp + rename) after SECCOMP_IOCTL_NOTIF_RECV and before any decision,
//! and removed once answered. A notification the kernel handed to a
//! seccomp-monitor that was then killed stays "sent" in the kernel: no new
//! RECV returns it again, so after a restart this journal is the only way
//! to find it and answer it (its thread still waits in the syscall).
//!
//! Layout: `<state_dir>/pending/<container id>/<notification id>.json`.

use crate::notif::Notif;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl From<&Notif> for Entry {
    fn from(n: &Notif) -> Entry {
        Entry {
            id: n.id,
            pid: n.pid,
            nr: n.nr,
            arch: n.arch,
            args: n.args,
        }
    }
}

impl Entry {
    pub fn notif(&self) -> Notif {
        Notif {
            id: self.id,
            pid: self.pid,
            nr: self.nr,
            arch: self.arch,
            args: self.args,
        }
    }
}

pub fn dir(state_dir: &Path, container: &str) -> PathBuf {
    state_dir.join("pending").join(container)
}

/// Journals `n` before it is decided.
pub fn record(state_dir: &Path, container: &str, n: &Notif) -> std::io::Result<()> {
    let d = dir(state_dir, container);
    std::fs::create_dir_all(&d)?;
    let tmp = d.join(format!("{}.tmp", n.id));
    let bytes = serde_json::to_vec(&Entry::from(n)).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, d.join(format!("{}.json", n.id)))
}

/// Marks `id` done.
pub fn done(state_dir: &Path, container: &str, id: u64) {
    let _ = std::fs::remove_file(dir(state_dir, container).join(format!("{id}.json")));
}

/// Every journaled, unanswered notification of `container`. Half-written
/// temporaries (a crash between write and rename) are dropped: they were
/// never decided, and the kernel still has them as sent; such a
/// notification has no journal entry and is not answered (its thread is
/// released when the container dies; see the module doc of agent.rs).
pub fn load(state_dir: &Path, container: &str) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(dir(state_dir, container)) else {
        return vec![];
    };
    let mut out = vec![];
    for e in rd.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "tmp") {
            let _ = std::fs::remove_file(&p);
            continue;
        }
        match std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Entry>(&b).ok())
        {
            Some(entry) => out.push(entry),
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
    out.sort_by_key(|e| e.id);
    out
}

/// Forgets the container's journal.
pub fn remove_all(state_dir: &Path, container: &str) {
    let _ = std::fs::remove_dir_all(dir(state_dir, container));
}
