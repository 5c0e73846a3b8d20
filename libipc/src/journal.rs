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
//! Three files under the state directory:
//! - `journal.log`: what `begin`, `commit` and `save` persist, each as ONE
//!   `write(2)` of whole lines to a descriptor kept open with `O_APPEND`.
//!   A line is `{"c":{"change":..,"pending":..}}` (the table's rows changed
//!   since the last line, see [`Table`], and the pending request, whole),
//!   `{"d":[key,result]}` (a keyed result), or, in logs written before
//!   changes were logged, `{"s":{"state":..,"pending":..}}` (the whole
//!   table). Replacing a file per request (tmp + rename, and an open/close
//!   of `done.log`) cost a quarter of a millisecond of CPU per container,
//!   on the critical path of its creation; logging the whole table grew
//!   with the number of containers (300 KB of JSON, twice per request, for
//!   300 of them).
//! - `journal.json`: the table and the pending request as of the last
//!   compaction. Journals written before `journal.log` existed kept it
//!   current; they open the same.
//! - `done.log`: the newest [`KEPT_KEYS`] results as of the last
//!   compaction, one `[key,result]` line each.
//!
//! `open` reads `journal.json`, then `done.log`, then replays `journal.log`
//! (a change line sets the rows it names and the pending request, a
//! snapshot line replaces the table and the pending request, a result line
//! is added), and compacts: `done.log` then `journal.json` are replaced
//! (tmp + rename), and only then is `journal.log` emptied. The same
//! compaction runs once the log outgrows [`LOG_MAX`]. A crash anywhere in it
//! loses nothing: until the log is emptied, replaying it over the new files
//! gives what they hold (a change line says what each row it names became,
//! so replaying it over a table that has it already changes nothing; the
//! log's last line, written just before the compaction, carries every
//! change the new `journal.json` holds; and a result read twice keeps only
//! its newest copy). `done.log` goes first so that results a legacy
//! `journal.json` kept inside it are, at every instant, in one of the two.
//!
//! A keyed commit writes its result line before its snapshot line, in the
//! same write: a crash tearing between them leaves the request pending with
//! its result recorded, and its redo records the key again (the newest
//! wins). A line torn by a crash mid-append is the last one, without its
//! newline, and is skipped; the compaction at open empties the log, so the
//! next append cannot continue a torn line.
//!
//! Nothing is fsynced: a journal describes kernel state (cgroups, mounts,
//! namespaces) that does not survive a reboot either, so it must survive the
//! death of its process, and a `write(2)` or a rename does that.
//!
//! `journal.json` is written before `journal.log` first gets a line and is
//! only ever replaced, so it is missing only when someone moved it aside to
//! start with an empty table: then the log's snapshots are ignored too (its
//! results are kept, as `done.log`'s are).

pub use crate::rows::{RowChanges, Rows};
use protocol::Error;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How many keyed results are kept.
/// Enough for every retry window (clients give up after a minute at most).
pub const KEPT_KEYS: usize = 256;

/// `journal.log` is compacted once it holds more bytes than this: bounds
/// the replay at open. A line holds what one request changed, so this is
/// hundreds of requests between two writes of the whole table.
const LOG_MAX: u64 = 1 << 20;

/// A keyed result.
type Done<Resp> = (String, Result<Resp, Error>);

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
    done: VecDeque<Done<Resp>>,
    #[serde(default = "Option::default")]
    pending: Option<(String, Req)>,
}

/// A server's table as the journal keeps it: whole in `journal.json`, and
/// as what changed in each `journal.log` line.
pub trait Table: Serialize + DeserializeOwned + Default {
    /// The rows changed since the last [`Table::take_change`], and the small
    /// parts of the table (kept whole). Applying it again over a table that
    /// has it already must change nothing: [`RowChanges`] does that.
    type Change: Serialize + DeserializeOwned;

    /// What changed since the last call.
    fn take_change(&mut self) -> Self::Change;

    /// Replays a logged change.
    fn apply_change(&mut self, change: Self::Change);
}

/// A table that is only rows: the journal's own tests use it.
impl<V: Serialize + DeserializeOwned + Clone> Table for Rows<V> {
    type Change = RowChanges<V>;
    fn take_change(&mut self) -> RowChanges<V> {
        self.take_changes()
    }
    fn apply_change(&mut self, change: RowChanges<V>) {
        self.apply(change)
    }
}

/// A `journal.log` line that says what the table and the pending request
/// became.
#[derive(Serialize, Deserialize)]
struct ChangeLine<C, P> {
    change: C,
    pending: Option<P>,
}

/// One `journal.log` line: `{"c":change}`, `{"d":[key,result]}`, or, in
/// a log written before changes were logged, `{"s":snapshot}`.
#[derive(Serialize, Deserialize)]
enum Line<Snap, Entry, Change> {
    #[serde(rename = "s")]
    S(Snap),
    #[serde(rename = "d")]
    D(Entry),
    #[serde(rename = "c")]
    C(Change),
}

pub struct Journal<S, Req, Resp> {
    path: PathBuf,
    snap: Snapshot<S, Req, Resp>,
    done_log: PathBuf,
    /// `journal.log`, open with `O_APPEND`, and how many bytes it holds;
    /// `None` after a failed append, which may have left a torn line: the
    /// log is compacted (emptied) before the next one.
    log_path: PathBuf,
    log: File,
    log_len: Option<u64>,
}

impl<S, Req, Resp> Journal<S, Req, Resp>
where
    S: Table,
    Req: Serialize + DeserializeOwned + Clone,
    Resp: Serialize + DeserializeOwned + Clone,
{
    /// Loads the journal under `state_dir` (or starts empty) and compacts it.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), &e))?;
        let path = state_dir.join("journal.json");
        let (snap, have_json) = match std::fs::read(&path) {
            Ok(bytes) => (serde_json::from_slice(&bytes).map_err(|e| {
                Error::internal(format!(
                    "journal {} is corrupt ({e}); move it aside to start with an empty table (groups on cgroupfs are adopted again)",
                    path.display()
                ))
            })?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (Snapshot { state: S::default(), done: VecDeque::new(), pending: None }, false)
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()), &e)),
        };
        let log_path = state_dir.join("journal.log");
        // std opens with O_CLOEXEC.
        let log = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("open {}", log_path.display()), &e))?;
        let mut j = Journal {
            path,
            snap,
            done_log: state_dir.join("done.log"),
            log_path,
            log,
            log_len: None,
        };
        j.read_done_log()?;
        j.replay_log(have_json)?;
        j.compact()?;
        Ok(j)
    }

    /// Adds `done.log`'s entries to the results read from the snapshot.
    fn read_done_log(&mut self) -> Result<(), Error> {
        let text = match std::fs::read(&self.done_log) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("read {}", self.done_log.display()), &e)),
        };
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice(line) {
                Ok(entry) => self.push_done(entry),
                // Torn by a crash mid-append (journals older than
                // journal.log appended here); nothing after it was written.
                Err(e) => tracing::warn!(
                    "{}: skipping an unreadable entry ({e})",
                    self.done_log.display()
                ),
            }
        }
        Ok(())
    }

    /// Applies `journal.log`'s lines, in order, on top of what was read.
    fn replay_log(&mut self, have_json: bool) -> Result<(), Error> {
        let mut text = vec![];
        (&self.log)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(format!("read {}", self.log_path.display()), &e))?;
        if !have_json && !text.is_empty() {
            tracing::warn!(
                "{} is missing: starting with an empty table, ignoring the one in {}",
                self.path.display(),
                self.log_path.display()
            );
        }
        for line in text.split_inclusive(|b| *b == b'\n') {
            let Some(line) = line.strip_suffix(b"\n") else {
                // Torn by a crash mid-append: the last line, never acted on.
                tracing::warn!("{}: skipping a torn last line", self.log_path.display());
                continue;
            };
            let line = serde_json::from_slice::<
                Line<Snapshot<S, Req, Resp>, Done<Resp>, ChangeLine<S::Change, (String, Req)>>,
            >(line);
            match line {
                Ok(Line::C(c)) if have_json => {
                    self.snap.state.apply_change(c.change);
                    self.snap.pending = c.pending;
                }
                Ok(Line::S(s)) if have_json => {
                    self.snap.state = s.state;
                    self.snap.pending = s.pending;
                }
                Ok(Line::C(_) | Line::S(_)) => {}
                Ok(Line::D(entry)) => self.push_done(entry),
                // We append whole lines, so only another writer could have
                // put this one here; the lines after it still apply.
                Err(e) => tracing::warn!(
                    "{}: skipping an unreadable line ({e})",
                    self.log_path.display()
                ),
            }
        }
        Ok(())
    }

    fn push_done(&mut self, entry: Done<Resp>) {
        // A key recorded again (a redo, or a result replayed again after a
        // compaction that died before emptying the log) keeps its newest
        // result only, and one slot.
        self.snap.done.retain(|(k, _)| *k != entry.0);
        self.snap.done.push_back(entry);
        while self.snap.done.len() > KEPT_KEYS {
            self.snap.done.pop_front();
        }
    }

    /// Moves what `journal.log` says into `done.log` and `journal.json`,
    /// then empties it. Until it is emptied, replaying it again gives the
    /// same table and results (see the module doc).
    fn compact(&mut self) -> Result<(), Error> {
        let mut done = vec![];
        for entry in &self.snap.done {
            push_line(&mut done, entry)?;
        }
        write_replace(&self.done_log, &done)?;
        let json = serde_json::to_vec(&self.view())
            .map_err(|e| Error::internal(format!("cannot encode journal: {e}")))?;
        write_replace(&self.path, &json)?;
        self.log
            .set_len(0)
            .map_err(|e| Error::io(format!("truncate {}", self.log_path.display()), &e))?;
        self.log_len = Some(0);
        Ok(())
    }

    /// The table and the pending request, to encode.
    fn view(&self) -> Snapshot<&S, &Req, Resp> {
        Snapshot {
            state: &self.snap.state,
            done: VecDeque::new(),
            pending: self.snap.pending.as_ref().map(|(k, r)| (k.clone(), r)),
        }
    }

    /// Appends `lines` then a change line to `journal.log`, in one write.
    fn append(&mut self, mut lines: Vec<u8>) -> Result<(), Error> {
        if self.log_len.is_none() {
            self.compact()?;
        }
        let change = ChangeLine {
            change: self.snap.state.take_change(),
            pending: self.snap.pending.as_ref(),
        };
        push_line(&mut lines, &Line::<(), (), _>::C(change))?;
        // One write of whole lines: a crash tears at most its tail, which
        // is then the log's last line.
        if let Err(e) = self.log.write_all(&lines) {
            self.log_len = None;
            return Err(Error::io(
                format!("append to {}", self.log_path.display()),
                &e,
            ));
        }
        let len = self.log_len.unwrap_or(0) + lines.len() as u64;
        self.log_len = Some(len);
        // After the append, so that the log's last line carries every
        // change compacted.
        if len > LOG_MAX {
            self.compact()?;
        }
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

    /// Applies `update`, records `result` under `key`, clears the intent,
    /// persists: one write of the result line and the snapshot line.
    pub fn commit(
        &mut self,
        key: Option<&str>,
        result: &Result<Resp, Error>,
        update: impl FnOnce(&mut S),
    ) -> Result<(), Error> {
        let mut lines = vec![];
        if let Some(key) = key {
            let entry = (key.to_string(), result.clone());
            push_line(&mut lines, &Line::<(), _, ()>::D(&entry))?;
            self.push_done(entry);
        }
        update(&mut self.snap.state);
        self.snap.pending = None;
        self.append(lines)
    }

    /// The request begun but never committed before the last crash.
    pub fn take_pending(&mut self) -> Option<(String, Req)> {
        self.snap.pending.take()
    }

    /// Persists what changed in the table, and the pending request (one
    /// appended line).
    pub fn save(&mut self) -> Result<(), Error> {
        self.append(vec![])
    }
}

/// Appends `value` as JSON and a newline: one line of `journal.log` or
/// `done.log`.
fn push_line<T: Serialize>(buf: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    serde_json::to_writer(&mut *buf, value)
        .map_err(|e| Error::internal(format!("cannot encode a journal line: {e}")))?;
    buf.push(b'\n');
    Ok(())
}

/// Everything a journal under `state_dir` holds on disk, its three files
/// one after the other: for tests that check that a refused request
/// changed nothing (any `begin`, `commit` or `save` changes these bytes).
pub fn on_disk(state_dir: &Path) -> Vec<u8> {
    let mut all = vec![];
    for f in ["journal.json", "done.log", "journal.log"] {
        all.extend(std::fs::read(state_dir.join(f)).unwrap_or_default());
        all.push(0);
    }
    all
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
    // On tmpfs (a root under /run) there is no disk to be durable on: the
    // two fsyncs and the directory's open would be four syscalls for
    // nothing, on every state change. One fstatfs tells.
    let durable = durable && !on_tmpfs(&f);
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
            // Not on tmpfs: the file's own fstatfs said so.
            fsync_dir(dir);
        }
    }
    Ok(())
}

/// Makes the entries of `dir` (a file renamed or a directory made in it)
/// durable: fsync of the directory, skipped on tmpfs. Best effort, as the
/// directory fsync after a rename always was: the data itself is already
/// on disk, and a failure here says nothing the caller could act on.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        if !on_tmpfs(&d) {
            let _ = d.sync_all();
        }
    }
}

/// `sync_dir` for a directory known not to be on tmpfs.
pub fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Is the file on tmpfs (whose fsync does nothing)?
pub fn on_tmpfs(f: &std::fs::File) -> bool {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    rustix::fs::fstatfs(f).is_ok_and(|s| s.f_type as u64 == TMPFS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    type J = Journal<Rows<String>, String, u32>;

    /// The tests' table: names, each a row keyed by itself.
    trait Names {
        fn push(&mut self, name: String);
        fn names(&self) -> Vec<&str>;
        fn clear(&mut self);
    }

    impl Names for Rows<String> {
        fn push(&mut self, name: String) {
            self.insert(name.clone(), name);
        }
        fn names(&self) -> Vec<&str> {
            self.keys().map(String::as_str).collect()
        }
        fn clear(&mut self) {
            self.retain(|_, _| false);
        }
    }

    #[test]
    fn tmpfs_is_told_apart() {
        let shm = std::fs::File::open("/dev/shm").unwrap();
        assert!(on_tmpfs(&shm), "/dev/shm is tmpfs");
        let proc = std::fs::File::open("/proc/self/status").unwrap();
        assert!(!on_tmpfs(&proc));
    }

    /// A journal in `dir` with "a" committed under k1 and "b" begun under
    /// k2 (the process dies, or goes on, from there).
    fn a_done_b_begun(dir: &Path) -> J {
        let mut j = J::open(dir).unwrap();
        j.begin(Some("k1"), &"a".into()).unwrap();
        j.commit(Some("k1"), &Ok(1), |s| s.push("a".into()))
            .unwrap();
        j.begin(Some("k2"), &"b".into()).unwrap();
        j
    }

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
        assert_eq!(j.state().names(), ["a"]);
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
        drop(j);
        // Opening compacts journal.log into the two files.
        let j = J::open(dir.path()).unwrap();
        let snap = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
        assert!(
            snap.len() < 100,
            "the snapshot holds only the table: {snap}"
        );
        // Compacted: only what is kept.
        let log = std::fs::read_to_string(dir.path().join("done.log")).unwrap();
        assert_eq!(log.lines().count(), KEPT_KEYS);
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
        drop(a_done_b_begun(dir.path()));
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
            br#"{"state":{"a":"a"},"done":[["k1",{"Ok":7}]],"pending":null}"#,
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

    fn log(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join("journal.log")).unwrap()
    }

    /// Appends `bytes` to journal.log as another writer (or a crash) would.
    fn append_by_hand(dir: &Path, bytes: &[u8]) {
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("journal.log"))
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    #[test]
    fn each_begin_and_commit_appends_whole_lines_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = J::open(dir.path()).unwrap();
        assert!(log(dir.path()).is_empty(), "compacted at open");
        let lines = || {
            let l = log(dir.path());
            assert_eq!(l.last(), Some(&b'\n'), "whole lines only");
            l.iter().filter(|b| **b == b'\n').count()
        };
        j.begin(Some("k1"), &"a".into()).unwrap();
        assert_eq!(lines(), 1, "begin: a change line");
        j.commit(Some("k1"), &Ok(1), |s| s.push("a".into()))
            .unwrap();
        assert_eq!(lines(), 3, "keyed commit: a result line and a change line");
        j.begin(None, &"b".into()).unwrap();
        assert_eq!(lines(), 3, "an unkeyed begin persists nothing");
        j.commit(None, &Ok(2), |s| s.push("b".into())).unwrap();
        assert_eq!(lines(), 4, "unkeyed commit: a change line");
        j.state_mut().push("c".into());
        j.save().unwrap();
        assert_eq!(lines(), 5, "save: a change line");
        let text = String::from_utf8(log(dir.path())).unwrap();
        let tags: Vec<_> = text.lines().map(|l| &l[..5]).collect();
        assert_eq!(
            tags,
            [r#"{"c":"#, r#"{"d":"#, r#"{"c":"#, r#"{"c":"#, r#"{"c":"#]
        );
        // Nothing else was touched: journal.json is still the one from open.
        assert_eq!(
            std::fs::read_to_string(j.path()).unwrap(),
            r#"{"state":{},"pending":null}"#
        );
        drop(j);
        let j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["a", "b", "c"]);
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
    }

    #[test]
    fn a_torn_last_line_of_journal_log_is_skipped_and_never_glued_to() {
        let dir = tempfile::tempdir().unwrap();
        drop(a_done_b_begun(dir.path()));
        // k2's commit was being written when the process died.
        append_by_hand(dir.path(), br#"{"c":{"change":[["b","b"]],"pend"#);
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["a"]);
        assert_eq!(j.recorded("k2"), None);
        let (k, _) = j.take_pending().unwrap();
        assert_eq!(k, "k2");
        j.commit(Some(&k), &Ok(2), |s| s.push("b".into())).unwrap();
        assert!(
            !String::from_utf8(log(dir.path()))
                .unwrap()
                .contains("pend{"),
            "torn bytes glued to the next line"
        );
        drop(j);
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["a", "b"]);
        assert_eq!(j.recorded("k2"), Some(Ok(2)));
        assert!(j.take_pending().is_none());

        // Torn between a keyed commit's result line and its change line:
        // the result is recorded, the request is still pending (its redo
        // records the key again).
        j.begin(Some("k3"), &"c".into()).unwrap();
        drop(j);
        append_by_hand(dir.path(), b"{\"d\":[\"k3\",{\"Ok\":3}]}\n{\"c\":{\"cha");
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["a", "b"]);
        assert_eq!(j.recorded("k3"), Some(Ok(3)));
        assert_eq!(j.take_pending().unwrap().0, "k3");
    }

    #[test]
    fn a_garbage_line_inside_journal_log_is_skipped_and_the_rest_applied() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = J::open(dir.path()).unwrap();
        j.begin(Some("k1"), &"a".into()).unwrap();
        j.commit(Some("k1"), &Ok(1), |s| s.push("a".into()))
            .unwrap();
        // Another writer; ours append after it (O_APPEND).
        append_by_hand(dir.path(), b"garbage\n{\"x\":1}\n");
        j.begin(Some("k2"), &"b".into()).unwrap();
        j.commit(Some("k2"), &Ok(2), |s| s.push("b".into()))
            .unwrap();
        drop(j);
        let j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["a", "b"]);
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
        assert_eq!(j.recorded("k2"), Some(Ok(2)));
    }

    #[test]
    fn journal_log_is_compacted_once_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = J::open(dir.path()).unwrap();
        // 8 KiB names: 24 KiB per request (the old row removed, the new
        // one added), about 18 compactions.
        let pad = "x".repeat(8 << 10);
        let n = 3 * KEPT_KEYS as u32;
        for i in 0..n {
            let key = format!("k{i}");
            j.begin(Some(&key), &format!("op {i}")).unwrap();
            j.commit(Some(&key), &Ok(i), |s| {
                s.clear();
                s.push(format!("{i}{pad}"))
            })
            .unwrap();
            let len = std::fs::metadata(dir.path().join("journal.log"))
                .unwrap()
                .len();
            assert!(len <= LOG_MAX, "journal.log holds {len} bytes");
        }
        // The last compaction was recent enough to hold the newest keys only.
        let done = std::fs::read_to_string(dir.path().join("done.log")).unwrap();
        assert_eq!(done.lines().count(), KEPT_KEYS);
        drop(j);
        let j = J::open(dir.path()).unwrap();
        assert!(log(dir.path()).is_empty());
        assert_eq!(j.state().names(), [format!("{}{pad}", n - 1)]);
        for i in n - KEPT_KEYS as u32..n {
            assert_eq!(j.recorded(&format!("k{i}")), Some(Ok(i)), "k{i}");
        }
        assert_eq!(j.recorded(&format!("k{}", n - KEPT_KEYS as u32 - 1)), None);
    }

    #[test]
    fn a_crash_anywhere_in_a_compaction_replays_to_the_same_journal() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        {
            let mut j = J::open(d).unwrap();
            for i in 0..3u32 {
                let key = format!("k{i}");
                j.begin(Some(&key), &"op".into()).unwrap();
                j.commit(Some(&key), &Ok(i), |s| s.push(format!("{i}")))
                    .unwrap();
            }
            j.begin(Some("k3"), &"op 3".into()).unwrap();
        }
        let read = |name: &str| std::fs::read(d.join(name)).unwrap();
        let (json, done, log) = (read("journal.json"), read("done.log"), read("journal.log"));
        let check = |what: &str| {
            let mut j = J::open(d).unwrap();
            assert_eq!(j.state().names(), ["0", "1", "2"], "{what}");
            for i in 0..3u32 {
                assert_eq!(j.recorded(&format!("k{i}")), Some(Ok(i)), "{what}");
            }
            assert_eq!(j.snap.done.len(), 3, "{what}: no duplicates");
            assert_eq!(j.take_pending().unwrap().1, "op 3", "{what}");
        };
        // Died after replacing done.log, before journal.json.
        check("compacted");
        std::fs::write(d.join("journal.json"), &json).unwrap();
        std::fs::write(d.join("journal.log"), &log).unwrap();
        check("died after done.log");
        // Died after replacing both, before emptying journal.log.
        std::fs::write(d.join("journal.log"), &log).unwrap();
        check("died before emptying the log");
        // And nothing was compacted yet.
        std::fs::write(d.join("done.log"), &done).unwrap();
        std::fs::write(d.join("journal.json"), &json).unwrap();
        std::fs::write(d.join("journal.log"), &log).unwrap();
        check("died before done.log");
    }

    #[test]
    fn a_legacy_journal_json_and_done_log_open_the_same() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("journal.json"),
            br#"{"state":{"a":"a","b":"b"},"pending":["k3","c"]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("done.log"),
            b"[\"k1\",{\"Ok\":1}]\n[\"k2\",{\"Ok\":2}]\n",
        )
        .unwrap();
        for _ in 0..2 {
            let j = J::open(dir.path()).unwrap();
            assert_eq!(j.state().names(), ["a", "b"]);
            assert_eq!(j.recorded("k1"), Some(Ok(1)));
            assert_eq!(j.recorded("k2"), Some(Ok(2)));
            assert_eq!(j.snap.pending, Some(("k3".into(), "c".into())));
        }
    }

    #[test]
    fn a_line_holds_what_changed_not_the_whole_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = J::open(dir.path()).unwrap();
        for i in 0..1000 {
            j.state_mut().push(format!("container-{i:04}"));
        }
        j.save().unwrap();
        let before = log(dir.path()).len();
        assert!(before > 30_000, "the first save logs the 1000 new rows");
        j.begin(Some("k1"), &"delete container-0500".into())
            .unwrap();
        j.commit(Some("k1"), &Ok(1), |s| {
            s.remove("container-0500");
        })
        .unwrap();
        let added = log(dir.path()).len() - before;
        assert!(
            added < 200,
            "a request touching one row of 1000 appended {added} bytes"
        );
        drop(j);
        let j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().len(), 999);
        assert!(!j.state().contains_key("container-0500"));
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
    }

    #[test]
    fn a_log_of_whole_snapshots_written_before_change_lines_replays() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("journal.json"),
            br#"{"state":{},"pending":null}"#,
        )
        .unwrap();
        // An older server's log: snapshots, then (after an upgrade) changes.
        std::fs::write(
            dir.path().join("journal.log"),
            concat!(
                r#"{"s":{"state":{"a":"a"},"pending":["k2","b"]}}"#,
                "\n",
                r#"{"d":["k2",{"Ok":2}]}"#,
                "\n",
                r#"{"s":{"state":{"a":"a","b":"b"},"pending":null}}"#,
                "\n",
                r#"{"c":{"change":[["a",null],["c","c"]],"pending":["k3","d"]}}"#,
                "\n",
            ),
        )
        .unwrap();
        let mut j = J::open(dir.path()).unwrap();
        assert_eq!(j.state().names(), ["b", "c"]);
        assert_eq!(j.recorded("k2"), Some(Ok(2)));
        assert_eq!(j.take_pending().unwrap().0, "k3");
    }

    #[test]
    fn without_journal_json_the_table_in_journal_log_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let _running = a_done_b_begun(dir.path());
        // Moved aside to start with an empty table (while still running).
        std::fs::remove_file(dir.path().join("journal.json")).unwrap();
        let mut j = J::open(dir.path()).unwrap();
        assert!(j.state().is_empty());
        assert!(j.take_pending().is_none());
        // Results stay, as done.log's always did.
        assert_eq!(j.recorded("k1"), Some(Ok(1)));
    }
}
