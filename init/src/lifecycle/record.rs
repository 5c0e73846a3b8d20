//! A container's record: what init knows about it, persisted as
//! `<root>/containers/<id>/state.json` (atomically, fsynced) before any
//! change is acknowledged, so a restarted init finds every container.

use protocol::init::ContainerState;
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// runtime.md's statuses, plus paused (runc's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What was made for the container, so that rollback and delete undo
/// exactly that.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Made {
    pub memory_group: bool,
    pub cpu_group: bool,
    pub rootfs: bool,
    pub loopback: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub bundle: String,
    pub rootfs: String,
    pub status: Status,
    /// The container process in the host pid namespace; 0 before it exists.
    pub pid: i32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22):
    /// a pid with another start time is a reused pid, not our container.
    pub pid_start: u64,
    /// The `ipc create` process while status is creating.
    pub creator_pid: i32,
    pub creator_start: u64,
    pub created: String,
    pub owner: String,
    pub annotations: BTreeMap<String, String>,
    pub exit_status: Option<i32>,
    pub made: Made,
    /// Created through Prepare: the process joins its groups by itself
    /// (through the controllers' JoinFds), so AttachPid only brings
    /// loopback up.
    #[serde(default)]
    pub joins_itself: bool,
    /// The config has hooks, so the poststart and poststop phases read the
    /// saved config; without, they read nothing. Records written before
    /// this field say true: their config is read, as it always was.
    #[serde(default = "yes")]
    pub has_hooks: bool,
}

fn yes() -> bool {
    true
}

impl Record {
    pub fn oci_state(&self) -> ContainerState {
        ContainerState {
            oci_version: oci_version().to_string(),
            id: self.id.clone(),
            status: self.status.as_str().to_string(),
            pid: if self.status == Status::Stopped {
                0
            } else {
                self.pid
            },
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created.clone(),
            owner: self.owner.clone(),
            annotations: self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            exit_status: self.exit_status,
        }
    }

    /// The state JSON hooks get on stdin (runtime.md "State").
    pub fn hook_state_json(&self) -> String {
        state_json(&self.oci_state())
    }
}

/// The runtime-spec version we implement.
pub fn oci_version() -> &'static str {
    "1.3.0"
}

/// runtime.md's state JSON for a container.
pub fn state_json(s: &ContainerState) -> String {
    let mut v = serde_json::json!({
        "ociVersion": s.oci_version,
        "id": s.id,
        "status": s.status,
        "bundle": s.bundle,
    });
    if s.status != "stopped" {
        v["pid"] = s.pid.into();
    }
    if !s.annotations.is_empty() {
        v["annotations"] = s
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    v.to_string()
}

pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

pub fn container_dir(root: &Path, id: &str) -> PathBuf {
    containers_dir(root).join(id)
}

pub fn fifo_path(root: &Path, id: &str) -> PathBuf {
    container_dir(root, id).join("exec.fifo")
}

/// How a record is written: see `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Written atomically, not fsynced: a record still creating.
    Volatile,
    /// Fsynced, with its directory.
    Durable,
    /// Fsynced, with its directory and `containers/`: the record's first
    /// durable write, so the directory made while creating is on disk too.
    FirstDurable,
}

impl Durability {
    /// For a record about to be written with `status`, whose last write
    /// (none for a new record) had `before`.
    pub fn of(status: Status, before: Option<Status>) -> Durability {
        match (status, before) {
            (Status::Creating, _) => Durability::Volatile,
            (_, None | Some(Status::Creating)) => Durability::FirstDurable,
            _ => Durability::Durable,
        }
    }
}

/// Persists a record, atomically (a killed init leaves the old record or
/// the new one, never a mix).
///
/// A record that says what a user was told (created, running, paused,
/// stopped) is also fsynced before it is acknowledged, so that it outlives
/// a machine crash. A record still creating is not: it is there so that a
/// restarted init rolls back a half-made create, and it guards only what a
/// machine crash undoes anyway (groups, namespaces, mounts, the creator).
/// Page cache outlives init's crash, and a directory that lost its record
/// to a machine crash is removed by `load_all`. Its two fsyncs were about
/// 0.6 ms of every create on a virtio disk.
pub fn save(root: &Path, r: &Record, how: Durability) -> Result<(), Error> {
    let dir = container_dir(root, &r.id);
    let bytes = encode(r)?;
    let durable = how != Durability::Volatile;
    // The directory is there for every record but a container's first
    // (`save_new`); one lost from under us is made again.
    match write_state(&dir, &bytes, durable) {
        Err(_) if !dir.is_dir() => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), &e))?;
            write_state(&dir, &bytes, durable)
        }
        done => done,
    }?;
    if how == Durability::FirstDurable {
        libipc::journal::sync_dir(&containers_dir(root));
    }
    Ok(())
}

/// A new container's first record (creating, not fsynced), with its
/// config: both are written in a recycled directory (see `slots`), which
/// is then renamed into `containers/` whole.
pub fn save_new(
    root: &Path,
    slots: &super::slots::Slots,
    r: &Record,
    config_json: &str,
) -> Result<(), Error> {
    let bytes = encode(r)?;
    let spare = slots.take()?;
    let dest = container_dir(root, &r.id);
    let written = overwrite(&spare.join("config.json"), config_json.as_bytes())
        .and_then(|_| write_state(&spare, &bytes, false))
        .and_then(|()| {
            // NOREPLACE: an empty directory of that name would otherwise
            // be replaced silently.
            let move_in = || {
                match rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &spare,
                    rustix::fs::CWD,
                    &dest,
                    rustix::fs::RenameFlags::NOREPLACE,
                ) {
                    // A filesystem without renameat2's flags (NFS): one
                    // init per root (init.lock), and the id's lock held.
                    Err(rustix::io::Errno::INVAL) if dest.exists() => Err(rustix::io::Errno::EXIST),
                    Err(rustix::io::Errno::INVAL) => std::fs::rename(&spare, &dest).map_err(|e| {
                        rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO)
                    }),
                    done => done,
                }
            };
            match move_in() {
                Err(rustix::io::Errno::NOENT) => {
                    let _ = std::fs::create_dir_all(containers_dir(root));
                    move_in()
                }
                done => done,
            }
            .map_err(|e| {
                Error::io(
                    format!("rename {} to {}", spare.display(), dest.display()),
                    &e.into(),
                )
            })
        });
    if written.is_err() {
        slots.put_back(spare);
    }
    written
}

fn encode(r: &Record) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(r)
        .map_err(|e| Error::internal(format!("encode state of {}: {e}", r.id)))
}

/// The record's file, and the one its next version is written to.
pub const STATE: &str = "state.json";
pub const NEXT: &str = "state.next";

/// Replaces `dir/state.json` with `bytes`, so that a killed init (and,
/// when `durable`, a machine crash) leaves the old record or the new one,
/// never a mix: the bytes go to `state.next` (fsynced when durable), which
/// is then exchanged with `state.json` (renameat2 RENAME_EXCHANGE), and
/// the directory is fsynced. The two files swap roles at every write, so
/// no inode is made or freed (see `slots`). The first record, with no
/// state.json to exchange with, is a plain rename.
pub fn write_state(dir: &Path, bytes: &[u8], durable: bool) -> Result<(), Error> {
    // Writers of one record (a request under the container's lock, the
    // exit watcher) share state.next: one at a time.
    let _g = writer_lock(dir);
    let next = dir.join(NEXT);
    let path = dir.join(STATE);
    let f = overwrite(&next, bytes)?;
    let durable = durable && !libipc::journal::on_tmpfs(&f);
    if durable {
        f.sync_all()
            .map_err(|e| Error::io(format!("fsync {}", next.display()), &e))?;
    }
    drop(f);
    let swapped = rustix::fs::renameat_with(
        rustix::fs::CWD,
        &next,
        rustix::fs::CWD,
        &path,
        rustix::fs::RenameFlags::EXCHANGE,
    );
    match swapped {
        Ok(()) => {}
        // No state.json yet, or a filesystem without RENAME_EXCHANGE.
        Err(e) if e == rustix::io::Errno::NOENT || e == rustix::io::Errno::INVAL => {
            std::fs::rename(&next, &path).map_err(|e| {
                Error::io(
                    format!("rename {} to {}", next.display(), path.display()),
                    &e,
                )
            })?
        }
        Err(e) => {
            return Err(Error::io(
                format!("exchange {} with {}", next.display(), path.display()),
                &e.into(),
            ))
        }
    }
    if durable {
        libipc::journal::fsync_dir(dir);
    }
    Ok(())
}

/// Writes `bytes` over `path` from its start (making it if need be),
/// padded with spaces to the file's size, and returns the file: a file
/// only ever grows, and no block of it is freed. Truncating is what that
/// saves: on a filesystem mounted with `discard` (this project's test
/// machines' root) a freed block is a synchronous discard, 0.1 to 1.6 ms
/// for a state file. JSON readers skip the padding.
pub fn overwrite(path: &Path, bytes: &[u8]) -> Result<std::fs::File, Error> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(format!("open {}", path.display()), &e))?;
    let size = f
        .metadata()
        .map_err(|e| Error::io(format!("stat {}", path.display()), &e))?
        .len() as usize;
    let padded;
    let out = match size > bytes.len() {
        true => {
            let mut v = Vec::with_capacity(size);
            v.extend_from_slice(bytes);
            v.resize(size - 1, b' ');
            v.push(b'\n');
            padded = v;
            &padded[..]
        }
        false => bytes,
    };
    f.write_all_at(out, 0)
        .map_err(|e| Error::io(format!("write {}", path.display()), &e))?;
    Ok(f)
}

/// One of a few locks, by directory: two records' writes rarely share one.
fn writer_lock(dir: &Path) -> std::sync::MutexGuard<'static, ()> {
    use std::hash::{Hash, Hasher};
    static LOCKS: [std::sync::Mutex<()>; 16] = [const { std::sync::Mutex::new(()) }; 16];
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    LOCKS[h.finish() as usize % LOCKS.len()]
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Every record on disk; unreadable ones are reported and skipped (never
/// deleted). Half-written temporary files from an init killed mid-write are
/// removed; a directory left with no record at all (killed before the
/// first record was saved, so nothing was made for it yet) or with an
/// empty one (see below) is removed too.
pub fn load_all(root: &Path) -> Vec<Record> {
    let Ok(rd) = std::fs::read_dir(containers_dir(root)) else {
        return vec![];
    };
    let mut out = vec![];
    for e in rd.flatten() {
        remove_temporaries(&e.path());
        let p = e.path().join("state.json");
        // An empty record is a first one (creating, never fsynced) whose
        // data a machine crash lost after its rename reached the disk;
        // every later record is fsynced before its rename. Written over a
        // recycled file, what the crash leaves is that file's older bytes
        // (another container's record) or zeros. Nothing was made for it
        // that outlived the crash: as no record at all.
        let bytes = std::fs::read(&p).unwrap_or_default();
        let blank = bytes.iter().all(|b| *b == 0 || b.is_ascii_whitespace());
        let foreign = !blank
            && serde_json::from_slice::<Record>(&bytes)
                .is_ok_and(|r| *r.id != *e.file_name().to_string_lossy());
        if blank || foreign {
            for f in [STATE, NEXT, "config.json", "exec.fifo"] {
                let _ = std::fs::remove_file(e.path().join(f));
            }
            if std::fs::remove_dir(e.path()).is_ok() {
                tracing::warn!(
                    "removed {}: a create that never got its first record",
                    e.path().display()
                );
            }
            continue;
        }
        match serde_json::from_slice::<Record>(&bytes) {
            Ok(r) => out.push(r),
            Err(err) => tracing::error!("cannot read {}: {err}; left as is", p.display()),
        }
    }
    out
}

/// `state.tmp.*`: what libipc::journal::write_atomic leaves when its writer
/// dies before the rename.
pub fn remove_temporaries(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with("state.tmp.") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Start time of a process (field 22 of /proc/PID/stat), None if gone.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_start_time(pid, false)
}

/// As `start_time`, a zombie included: for a process that cannot have been
/// reaped yet (`ipc run`'s child, which ipc reaps only after MarkRunning),
/// so that its pid is still its own.
pub fn start_time_unreaped(pid: i32) -> Option<u64> {
    stat_start_time(pid, true)
}

fn stat_start_time(pid: i32, zombie_ok: bool) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    // Read several times per container: one read, not read_to_string's
    // stat and six growing reads.
    let stat = cgroupfs::dir::read_small(Path::new(&format!("/proc/{pid}/stat"))).ok()?;
    // After the command: the state, then starttime as the 20th field.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let finished = matches!(fields.next(), Some("Z" | "X"));
    if finished && !zombie_ok {
        return None; // a zombie has finished
    }
    fields.nth(18)?.parse().ok()
}

/// Is the process the one we recorded (alive, same start time)?
pub fn same_process(pid: i32, start: u64) -> bool {
    start_time(pid).is_some_and(|s| s == start)
}

/// Now as RFC 3339 with nanoseconds, UTC, as runc prints `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        fraction(d.subsec_nanos())
    )
}

/// The seconds' fraction as Go's RFC3339Nano writes it (runc's `created`):
/// trailing zeros dropped, and the dot too when nothing is left.
fn fraction(nanos: u32) -> String {
    let digits = format!("{nanos:09}");
    match digits.trim_end_matches('0') {
        "" => String::new(),
        kept => format!(".{kept}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process that has exited but is not reaped (ipc run's child when
    /// MarkRunning comes late) is alive for `start_time_unreaped` only.
    #[test]
    fn a_zombie_has_a_start_time_only_until_reaped() {
        let mut child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id() as i32;
        let zombie = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(2));
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        });
        assert!(zombie, "/bin/true did not exit");
        assert_eq!(start_time(pid), None);
        assert!(start_time_unreaped(pid).is_some_and(|t| t > 0));
        child.wait().unwrap();
        assert_eq!(start_time_unreaped(pid), None);
    }

    /// A state.json written before `has_hooks` existed still reads, and
    /// says its config may have hooks (so they are looked up, as before).
    #[test]
    fn a_record_from_before_has_hooks_reads_as_having_them() {
        let old = r#"{"id": "c1", "bundle": "/b", "rootfs": "/b/rootfs",
            "status": "running", "pid": 42, "pid_start": 7, "creator_pid": 0,
            "creator_start": 0, "created": "2026-12-07T00:00:00.000000000Z",
            "owner": "", "annotations": {}, "exit_status": null,
            "made": {"memory_group": true, "cpu_group": true, "rootfs": true,
                     "loopback": false}}"#;
        let r: Record = serde_json::from_str(old).unwrap();
        assert!(r.has_hooks);
        let back: Record = serde_json::from_slice(
            &serde_json::to_vec(&Record {
                has_hooks: false,
                ..r
            })
            .unwrap(),
        )
        .unwrap();
        assert!(!back.has_hooks);
    }

    /// Creating is never fsynced; the first status a user is told of is,
    /// together with `containers/`; later ones with their directory only.
    #[test]
    fn only_what_a_user_was_told_is_fsynced() {
        use Durability::*;
        assert_eq!(Durability::of(Status::Creating, None), Volatile);
        assert_eq!(
            Durability::of(Status::Creating, Some(Status::Creating)),
            Volatile
        );
        for told in [Status::Created, Status::Running, Status::Stopped] {
            assert_eq!(Durability::of(told, None), FirstDurable);
            assert_eq!(Durability::of(told, Some(Status::Creating)), FirstDurable);
        }
        assert_eq!(
            Durability::of(Status::Running, Some(Status::Created)),
            Durable
        );
        assert_eq!(
            Durability::of(Status::Paused, Some(Status::Running)),
            Durable
        );
        assert_eq!(
            Durability::of(Status::Stopped, Some(Status::Running)),
            Durable
        );
    }

    /// Every way of saving leaves one readable record and no temporary;
    /// after the first two writes the record's two files only swap (no
    /// inode is made or freed).
    #[test]
    fn each_durability_leaves_the_record_and_nothing_else() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let mut r = a_record("c1");
        let steps = [
            (Status::Creating, Durability::Volatile),
            (Status::Created, Durability::FirstDurable),
            (Status::Running, Durability::Durable),
            (Status::Stopped, Durability::Durable),
        ];
        let dir = container_dir(root.path(), "c1");
        let inodes = || -> Vec<u64> {
            let mut v: Vec<u64> = [STATE, NEXT]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.ino())
                .collect();
            v.sort();
            v
        };
        let mut seen = vec![];
        for (i, (status, how)) in steps.into_iter().enumerate() {
            r.status = status;
            save(root.path(), &r, how).unwrap();
            assert_eq!(load_all(root.path()), vec![r.clone()], "after {how:?}");
            let mut names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let want: &[&str] = if i == 0 { &[STATE] } else { &[STATE, NEXT] };
            assert_eq!(names, want, "after {how:?}");
            if i >= 2 {
                assert_eq!(inodes(), seen, "after {how:?}: a new inode");
            }
            seen = inodes();
        }
    }

    /// A first record comes with its config in a directory that appears
    /// whole; a deleted one's directory is the next one's.
    #[test]
    fn a_first_record_reuses_a_deleted_containers_directory() {
        use std::os::unix::fs::MetadataExt;
        let root = tempfile::tempdir().unwrap();
        let slots = super::super::slots::Slots::open(root.path());
        let r1 = a_record("c1");
        save_new(root.path(), &slots, &r1, "{\"ociVersion\": \"1\"}").unwrap();
        let d1 = container_dir(root.path(), "c1");
        assert_eq!(load_all(root.path()), vec![r1.clone()]);
        assert_eq!(
            std::fs::read_to_string(d1.join("config.json")).unwrap(),
            "{\"ociVersion\": \"1\"}"
        );
        let ino = std::fs::metadata(&d1).unwrap().ino();
        assert!(slots.recycle(&d1));
        let r2 = a_record("c2");
        save_new(root.path(), &slots, &r2, "{}").unwrap();
        let d2 = container_dir(root.path(), "c2");
        assert_eq!(std::fs::metadata(&d2).unwrap().ino(), ino);
        assert_eq!(load_all(root.path()), vec![r2.clone()]);
        // Written over the blanked config, padded to its length.
        let cfg = std::fs::read_to_string(d2.join("config.json")).unwrap();
        assert_eq!(cfg.trim_end(), "{}");
        assert_eq!(cfg.len(), "{\"ociVersion\": \"1\"}".len());
        // An existing directory of that name is never replaced.
        let err = save_new(root.path(), &slots, &r2, "{}").unwrap_err();
        assert!(err.to_string().contains("c2"), "{err}");
        assert_eq!(load_all(root.path()), vec![r2]);
    }

    fn a_record(id: &str) -> Record {
        serde_json::from_str(&format!(
            r#"{{"id": "{id}", "bundle": "/b", "rootfs": "", "status": "creating",
            "pid": 0, "pid_start": 0, "creator_pid": 1, "creator_start": 1,
            "created": "2026-12-07T00:00:00.000000000Z", "owner": "",
            "annotations": {{}}, "exit_status": null, "made": {{"memory_group": true,
            "cpu_group": true, "rootfs": true, "loopback": false}}}}"#
        ))
        .unwrap()
    }

    /// What a machine crash can leave of a first record (written, renamed,
    /// not fsynced): an empty state.json, zeros, or an older record of
    /// another container that the recycled file held. It is a create that never got its
    /// first record, and goes; a record that does not parse is left alone.
    #[test]
    fn an_empty_record_goes_and_an_unreadable_one_stays() {
        let root = tempfile::tempdir().unwrap();
        let empty = container_dir(root.path(), "lost");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("state.json"), "").unwrap();
        std::fs::write(empty.join("config.json"), "{}").unwrap();
        let bad = container_dir(root.path(), "bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("state.json"), "{").unwrap();
        // What a crash leaves of a record written over a recycled file:
        // zeros, or the bytes of another container's record.
        let zeros = container_dir(root.path(), "zeros");
        std::fs::create_dir_all(&zeros).unwrap();
        std::fs::write(zeros.join("state.json"), [0u8; 300]).unwrap();
        let foreign = container_dir(root.path(), "foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::fs::write(
            foreign.join("state.json"),
            serde_json::to_vec(&a_record("other")).unwrap(),
        )
        .unwrap();
        assert_eq!(load_all(root.path()), vec![]);
        assert!(!empty.exists(), "the empty record's directory is left");
        assert!(!zeros.exists(), "the zeroed record's directory is left");
        assert!(!foreign.exists(), "another container's record is taken");
        assert!(
            bad.join("state.json").exists(),
            "the unreadable record went"
        );
    }

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert!((20..=30).contains(&t.len()), "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }

    #[test]
    fn the_fraction_is_gos_rfc3339nano() {
        assert_eq!(fraction(123_456_789), ".123456789");
        assert_eq!(fraction(120_000_000), ".12");
        assert_eq!(fraction(5), ".000000005");
        assert_eq!(fraction(0), "");
    }

    #[test]
    fn own_process_is_alive_and_recognised() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(same_process(me, start));
        assert!(!same_process(me, start + 1));
    }
}
