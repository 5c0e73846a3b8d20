//! A server's journal: its small table plus the results of recent keyed
//! requests, as one snapshot file written atomically (tmp, fsync, rename,
//! fsync of the directory).
//!
//! A mutating request goes: `recorded(key)`? answer that; else `begin`
//! (persist the intent), do it in the kernel, `commit` (persist the new
//! table and the result under the key), answer. If the server dies between
//! `begin` and `commit`, the restarted server finds the request in
//! `take_pending`, re-applies it (every operation is idempotent against the
//! kernel) and commits it, so the client's retry gets the recorded result:
//! applied exactly once.

use protocol::Error;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How many keyed results are kept.
/// Enough for every retry window (clients give up after a minute at most).
pub const KEPT_KEYS: usize = 256;

#[derive(Serialize, Deserialize)]
#[serde(bound(
    deserialize = "S: DeserializeOwned + Default, Req: DeserializeOwned, Resp: DeserializeOwned"
))]
struct Snapshot<S, Req, Resp> {
    #[serde(default)]
    state: S,
    #[serde(default = "VecDeque::new")]
    done: VecDeque<(String, Result<Resp, Error>)>,
    #[serde(default = "Option::default")]
    pending: Option<(String, Req)>,
}

pub struct Journal<S, Req, Resp> {
    path: PathBuf,
    snap: Snapshot<S, Req, Resp>,
}

impl<S, Req, Resp> Journal<S, Req, Resp>
where
    S: Serialize + DeserializeOwned + Default,
    Req: Serialize + DeserializeOwned + Clone,
    Resp: Serialize + DeserializeOwned + Clone,
{
    /// Loads `<state_dir>/journal.json`, or starts empty.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), &e))?;
        let path = state_dir.join("journal.json");
        let snap = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::internal(format!(
                    "journal {} is corrupt ({e}); move it aside to start with an empty table (groups on cgroupfs are adopted again)",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Snapshot { state: S::default(), done: VecDeque::new(), pending: None }
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), &e)),
        };
        Ok(Journal { path, snap })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn state(&self) -> &S {
        &self.snap.state
    }

    pub fn state_mut(&mut self) -> &mut S {
        &mut self.snap.state
    }

    pub fn recorded(&self, key: &str) -> Option<Result<Resp, Error>> {
        self.snap
            .done
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }

    /// Persists the intent to do `req` under `key`.
    pub fn begin(&mut self, key: Option<&str>, req: &Req) -> Result<(), Error> {
        let Some(key) = key else { return Ok(()) };
        self.snap.pending = Some((key.to_string(), req.clone()));
        self.save()
    }

    /// Applies `update`, records `result` under `key`, clears the intent, persists.
    pub fn commit(
        &mut self,
        key: Option<&str>,
        result: &Result<Resp, Error>,
        update: impl FnOnce(&mut S),
    ) -> Result<(), Error> {
        update(&mut self.snap.state);
        if let Some(key) = key {
            self.snap.done.push_back((key.to_string(), result.clone()));
            while self.snap.done.len() > KEPT_KEYS {
                self.snap.done.pop_front();
            }
        }
        self.snap.pending = None;
        self.save()
    }

    /// The request begun but never committed before the last crash.
    pub fn take_pending(&mut self) -> Option<(String, Req)> {
        self.snap.pending.take()
    }

    pub fn save(&mut self) -> Result<(), Error> {
        let bytes = serde_json::to_vec(&self.snap)
            .map_err(|e| Error::internal(format!("cannot encode journal: {e}")))?;
        // Replaced atomically but not fsynced: a journal describes kernel
        // state (cgroups, mounts, namespaces) that does not survive a
        // reboot either, so it must survive the death of its process, and a
        // rename does that. An fsync per request cost more than the request.
        write_replace(&self.path, &bytes)
    }
}

/// Replaces `path` with `bytes` so that a process crash leaves either the
/// old or the new contents, never a mix (tmp file + rename); no fsync.
pub fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write(path, bytes, false)
}

/// Writes `bytes` to `path` so that even a machine crash leaves either the
/// old or the new contents, never a mix: tmp file, fsync, rename, fsync the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write(path, bytes, true)
}

fn write(path: &Path, bytes: &[u8], durable: bool) -> Result<(), Error> {
    // Unique per call: two threads of one process may write the same file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)
        .map_err(|e| Error::io(format!("create {}", tmp.display()), &e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io(format!("write {}", tmp.display()), &e))?;
    if durable {
        f.sync_all()
            .map_err(|e| Error::io(format!("fsync {}", tmp.display()), &e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        Error::io(
            format!("rename {} to {}", tmp.display(), path.display()),
            &e,
        )
    })?;
    if durable {
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type J = Journal<Vec<String>, String, u32>;

    #[test]
    fn exactly_once_across_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = J::open(dir.path()).unwrap();
            j.begin(Some("k1"), &"create a".into()).unwrap();
            j.commit(Some("k1"), &Ok(1), |s| s.push("a".into()))
                .unwrap();
            j.begin(Some("k2"), &"create b".into()).unwrap();
            // dies here
        }
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.state(), &vec!["a".to_string()]);
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
        assert_eq!(j.recorded("k2"), None);
        let (k, req) = j.take_pending().unwrap();
        assert_eq!((k.as_str(), req.as_str()), ("k2", "create b"));
        j.commit(Some(&k), &Ok(2), |s| s.push("b".into())).unwrap();
        let j = J::open(dir.path()).unwrap();
        assert_eq!(j.recorded("k2"), Some(Ok(2)));
        assert_eq!(j.state().len(), 2);
    }

    #[test]
    fn corrupt_journal_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("journal.json"), b"{not json").unwrap();
        let e = J::open(dir.path()).err().unwrap();
        assert!(e.message.contains("journal.json"), "{e}");
    }
}
