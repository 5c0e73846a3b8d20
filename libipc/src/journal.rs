//! A server's journal: its small table, the request begun and not yet
//! committed, and the results of recent keyed requests.
//!
//! A mutating request goes: `recorded(key)`? answer that; else `begin`
//! (persist the intent), do it in the kernel, `commit` (persist the new
//! table and the result under the key), answer. If the server dies between
//! `begin` and `commit`, the restarted server finds the request in
//! `take_pending`, re-applies it (every operation is idempotent against the
//! kernel) and commits it, so the client's retry gets the recorded result:
//! applied exactly once.
//!
//! Two files under the state directory:
//! - `journal.json`: the table and the pending request, replaced
//!   atomically (tmp + rename) at `begin` and `commit`. It stays small:
//!   only what lives now.
//! - `done.log`: the keyed results, one JSON line appended per commit,
//!   and rewritten with only the newest [`KEPT_KEYS`] once it holds twice
//!   that many. Rewriting every kept result at each commit (as one
//!   snapshot did before) cost more than the request itself: 80 KiB of
//!   JSON twice per cgroup create.
//!
//! A commit appends its result before it replaces `journal.json`: a crash
//! between the two leaves the request pending, and its redo records the
//! same key again (the newest entry wins). A line torn by a crash mid-append
//! is the last one, and is skipped.

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
    /// Results kept inside the snapshot by journals written before
    /// `done.log` existed; read on open, never written again.
    #[serde(default = "VecDeque::new", skip_serializing_if = "VecDeque::is_empty")]
    done: VecDeque<(String, Result<Resp, Error>)>,
    #[serde(default = "Option::default")]
    pending: Option<(String, Req)>,
}

pub struct Journal<S, Req, Resp> {
    path: PathBuf,
    snap: Snapshot<S, Req, Resp>,
    /// `done.log`, and how many lines it holds now.
    done_log: PathBuf,
    done_lines: usize,
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
        let done_log = state_dir.join("done.log");
        let mut j = Journal {
            path,
            snap,
            done_log,
            done_lines: 0,
        };
        j.done_lines = j.read_done_log()?;
        Ok(j)
    }

    /// Appends `done.log`'s entries to the results read from the snapshot;
    /// returns how many lines it has.
    fn read_done_log(&mut self) -> Result<usize, Error> {
        let text = match std::fs::read(&self.done_log) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("read {}", self.done_log.display()), &e)),
        };
        let mut lines = 0;
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            lines += 1;
            match serde_json::from_slice(line) {
                Ok(entry) => self.push_done(entry),
                // Torn by a crash mid-append; nothing after it was written.
                Err(e) => tracing::warn!(
                    "{}: skipping an unreadable entry ({e})",
                    self.done_log.display()
                ),
            }
        }
        Ok(lines)
    }

    fn push_done(&mut self, entry: (String, Result<Resp, Error>)) {
        self.snap.done.push_back(entry);
        while self.snap.done.len() > KEPT_KEYS {
            self.snap.done.pop_front();
        }
    }

    /// One result, appended to `done.log` (compacted when it has grown to
    /// twice what is kept).
    fn record_done(&mut self, key: &str, result: &Result<Resp, Error>) -> Result<(), Error> {
        self.push_done((key.to_string(), result.clone()));
        if self.done_lines >= 2 * KEPT_KEYS {
            let mut all = vec![];
            for entry in &self.snap.done {
                all.extend(done_line(entry)?);
            }
            write_replace(&self.done_log, &all)?;
            self.done_lines = self.snap.done.len();
            return Ok(());
        }
        let line = done_line(self.snap.done.back().expect("just pushed"))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.done_log)
            .map_err(|e| Error::io(format!("open {}", self.done_log.display()), &e))?;
        // One write of a whole line: a crash tears at most this line.
        f.write_all(&line)
            .map_err(|e| Error::io(format!("append to {}", self.done_log.display()), &e))?;
        self.done_lines += 1;
        Ok(())
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
        if let Some(key) = key {
            self.record_done(key, result)?;
        }
        update(&mut self.snap.state);
        self.snap.pending = None;
        self.save()
    }

    /// The request begun but never committed before the last crash.
    pub fn take_pending(&mut self) -> Option<(String, Req)> {
        self.snap.pending.take()
    }

    /// Replaces `journal.json` with the table and the pending request.
    pub fn save(&mut self) -> Result<(), Error> {
        let snap = Snapshot::<&S, &Req, Resp> {
            state: &self.snap.state,
            done: VecDeque::new(),
            pending: self.snap.pending.as_ref().map(|(k, r)| (k.clone(), r)),
        };
        let bytes = serde_json::to_vec(&snap)
            .map_err(|e| Error::internal(format!("cannot encode journal: {e}")))?;
        // Replaced atomically but not fsynced: a journal describes kernel
        // state (cgroups, mounts, namespaces) that does not survive a
        // reboot either, so it must survive the death of its process, and a
        // rename does that. An fsync per request cost more than the request.
        write_replace(&self.path, &bytes)
    }
}

/// One `done.log` line: the key and its result as JSON, then a newline.
fn done_line<Resp: Serialize>(entry: &(String, Result<Resp, Error>)) -> Result<Vec<u8>, Error> {
    let mut line = serde_json::to_vec(entry)
        .map_err(|e| Error::internal(format!("cannot encode a journal result: {e}")))?;
    line.push(b'\n');
    Ok(line)
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

    #[test]
    fn results_live_in_done_log_and_the_snapshot_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = J::open(dir.path()).unwrap();
        for n in 0..(3 * KEPT_KEYS as u32) {
            let key = format!("k{n}");
            j.begin(Some(&key), &format!("op {n}")).unwrap();
            j.commit(Some(&key), &Ok(n), |s| s.push(format!("{n}")))
                .unwrap();
            j.state_mut().clear();
        }
        j.save().unwrap();
        let snap = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
        assert!(
            snap.len() < 100,
            "the snapshot holds only the table: {snap}"
        );
        // Compacted: never more than twice what is kept.
        let log = std::fs::read_to_string(dir.path().join("done.log")).unwrap();
        assert!(
            log.lines().count() <= 2 * KEPT_KEYS,
            "{} lines",
            log.lines().count()
        );
        let j = J::open(dir.path()).unwrap();
        let last = 3 * KEPT_KEYS as u32 - 1;
        assert_eq!(j.recorded(&format!("k{last}")), Some(Ok(last)));
        let oldest_kept = last + 1 - KEPT_KEYS as u32;
        assert_eq!(
            j.recorded(&format!("k{oldest_kept}")),
            Some(Ok(oldest_kept))
        );
        assert_eq!(j.recorded(&format!("k{}", oldest_kept - 1)), None);
    }

    #[test]
    fn a_line_torn_by_a_crash_is_skipped_and_the_request_redone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = J::open(dir.path()).unwrap();
            j.begin(Some("k1"), &"a".into()).unwrap();
            j.commit(Some("k1"), &Ok(1), |s| s.push("a".into()))
                .unwrap();
            j.begin(Some("k2"), &"b".into()).unwrap();
        }
        // k2's result was being appended when the process died.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("done.log"))
            .unwrap();
        f.write_all(br#"["k2",{"Ok":"#).unwrap();
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
        assert_eq!(j.recorded("k2"), None);
        let (k, _) = j.take_pending().unwrap();
        assert_eq!(k, "k2");
    }

    #[test]
    fn results_kept_in_an_older_snapshot_are_still_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("journal.json"),
            br#"{"state":["a"],"done":[["k1",{"Ok":7}]],"pending":null}"#,
        )
        .unwrap();
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.recorded("k1"), Some(Ok(7)));
        j.begin(Some("k2"), &"b".into()).unwrap();
        j.commit(Some("k2"), &Ok(8), |s| s.push("b".into()))
            .unwrap();
        let j = J::open(dir.path()).unwrap();
        assert_eq!(j.recorded("k2"), Some(Ok(8)));
        assert_eq!(j.state().len(), 2);
    }
}
