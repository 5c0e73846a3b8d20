//! Per-container notify counters, kept in `<state_dir>/stats/<id>.json`
//! so that `ipc seccomp-monitor stats` survives a restart of the server.

use protocol::seccomp::NotifyStats;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Saved {
    notified: u64,
    continued: u64,
    failed: u64,
}

fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("stats")
}

pub fn save(state_dir: &Path, s: &NotifyStats) {
    let d = dir(state_dir);
    let _ = std::fs::create_dir_all(&d);
    let saved = Saved {
        notified: s.notified,
        continued: s.continued,
        failed: s.failed,
    };
    let Ok(bytes) = serde_json::to_vec(&saved) else {
        return;
    };
    let tmp = d.join(format!("{}.tmp", s.id));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, d.join(format!("{}.json", s.id)));
    }
}

pub fn remove(state_dir: &Path, id: &str) {
    let _ = std::fs::remove_file(dir(state_dir).join(format!("{id}.json")));
}

pub fn load_all(state_dir: &Path) -> BTreeMap<String, NotifyStats> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Some(id) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|id| protocol::validate_id("container id", id).is_ok())
        else {
            continue;
        };
        let Some(s) = std::fs::read(&p)
            .ok()
            .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
        else {
            continue;
        };
        out.insert(
            id.to_string(),
            NotifyStats {
                id: id.to_string(),
                notified: s.notified,
                continued: s.continued,
                failed: s.failed,
            },
        );
    }
    out
}
