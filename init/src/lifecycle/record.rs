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

pub fn save(root: &Path, r: &Record) -> Result<(), Error> {
    let dir = container_dir(root, &r.id);
    let bytes = serde_json::to_vec_pretty(r)
        .map_err(|e| Error::internal(format!("encode state of {}: {e}", r.id)))?;
    let path = dir.join("state.json");
    // The directory is there for every record but a container's first:
    // write, and make it only when that failed for want of it.
    match libipc::journal::write_atomic(&path, &bytes) {
        Err(_) if !dir.is_dir() => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), &e))?;
            libipc::journal::write_atomic(&path, &bytes)
        }
        done => done,
    }
}

/// Every record on disk; unreadable ones are reported and skipped (never
/// deleted). Half-written temporary files from an init killed mid-write are
/// removed; a directory left with no record at all (killed before the
/// first record was saved, so nothing was made for it yet) is removed too.
pub fn load_all(root: &Path) -> Vec<Record> {
    let Ok(rd) = std::fs::read_dir(containers_dir(root)) else {
        return vec![];
    };
    let mut out = vec![];
    for e in rd.flatten() {
        remove_temporaries(&e.path());
        let p = e.path().join("state.json");
        if !p.exists() {
            for f in ["config.json", "exec.fifo"] {
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
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()))
        {
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
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

    #[test]
    fn rfc3339_shape() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 30, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && t.as_bytes()[10] == b'T');
    }

    #[test]
    fn own_process_is_alive_and_recognised() {
        let me = std::process::id() as i32;
        let start = start_time(me).unwrap();
        assert!(same_process(me, start));
        assert!(!same_process(me, start + 1));
    }
}
