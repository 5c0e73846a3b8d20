//! The notify agent: one thread per watched listener. For each notified
//! syscall: RECV, journal it (pending.rs), check that it is still pending
//! (ID_VALID: its thread may have died or been interrupted meanwhile),
//! decide by the container's policy, SEND, count it, publish an event,
//! mark it done.
//!
//! On Watch (also init's re-Watch after a restart of this server, with the
//! duplicate of the listener that init keeps in its fd store) the journal
//! of that container is replayed first: each notification received but not
//! answered before the crash is answered now if the kernel still holds it.
//! The kernel answers ENOENT to a second SEND of the same id, so nothing is
//! answered twice.

use crate::listeners::{self, Published};
use crate::notif::{self, Answer, Notif};
use crate::pending;
use crate::stats;
use libipc::server::Events;
use protocol::seccomp::{NotifyPolicy, NotifyStats, SeccompEvent};
use protocol::Error;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often a watcher thread looks at its stop flag.
const POLL_MS: u16 = 200;

struct Watched {
    pid: i32,
    policy: NotifyPolicy,
    stop: Arc<AtomicBool>,
}

#[derive(Clone)]
pub struct Agents {
    state_dir: PathBuf,
    events: Events<SeccompEvent>,
    watched: Arc<Mutex<BTreeMap<String, Watched>>>,
    stats: Arc<Mutex<BTreeMap<String, NotifyStats>>>,
}

impl Agents {
    pub fn new(state_dir: &Path, events: Events<SeccompEvent>) -> Agents {
        listeners::clear(state_dir);
        Agents {
            state_dir: state_dir.to_path_buf(),
            events,
            watched: Default::default(),
            stats: Arc::new(Mutex::new(stats::load_all(state_dir))),
        }
    }

    /// Becomes the agent of `id`. The same container watched again with
    /// the same pid and policy (a retried request) keeps its thread.
    pub fn watch(
        &self,
        id: &str,
        pid: i32,
        policy: NotifyPolicy,
        fd: OwnedFd,
    ) -> Result<(), Error> {
        check_policy(&policy)?;
        check_listener(&fd)?;
        let mut w = self.watched.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = w.get(id) {
            if old.pid == pid && old.policy == policy && !old.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            old.stop.store(true, Ordering::SeqCst);
        }
        let stop = Arc::new(AtomicBool::new(false));
        w.insert(
            id.to_string(),
            Watched {
                pid,
                policy: policy.clone(),
                stop: stop.clone(),
            },
        );
        drop(w);
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.to_string())
            .or_insert_with(|| zero_stats(id));
        use std::os::fd::AsRawFd;
        listeners::publish(
            &self.state_dir,
            id,
            &Published {
                fd: fd.as_raw_fd(),
                pid,
                policy: policy.clone(),
            },
        );
        let worker = Worker {
            agents: self.clone(),
            id: id.to_string(),
            policy,
            fd,
            stop,
        };
        std::thread::Builder::new()
            .name(format!("notify-{id}"))
            .spawn(move || worker.run())
            .map_err(|e| Error::io("start the notify agent thread", &e))?;
        Ok(())
    }

    /// Stops watching `id` and drops its journal and stats.
    pub fn forget(&self, id: &str) {
        if let Some(w) = self
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id)
        {
            w.stop.store(true, Ordering::SeqCst);
        }
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        stats::remove(&self.state_dir, id);
        pending::remove_all(&self.state_dir, id);
    }

    pub fn stats(&self, id: Option<&str>) -> Result<Vec<NotifyStats>, Error> {
        let s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        match id {
            Some(id) => s.get(id).cloned().map(|x| vec![x]).ok_or_else(|| {
                Error::not_found(format!(
                    "seccomp-monitor is not the notify agent of container {id:?}"
                ))
            }),
            None => Ok(s.values().cloned().collect()),
        }
    }

    fn count(&self, id: &str, answer: Answer) {
        let mut s = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(st) = count_in(&mut s, id, answer) {
            stats::save(&self.state_dir, st);
        }
    }
}

/// Counts an answered notification in `id`'s stats, if it still has them.
/// The count comes after the answer, which lets the container go on: it
/// may exit and be deleted (`forget`) before we get here, and a count
/// then must not bring its stats back (in memory and on disk).
fn count_in<'a>(
    stats: &'a mut BTreeMap<String, NotifyStats>,
    id: &str,
    answer: Answer,
) -> Option<&'a NotifyStats> {
    let st = stats.get_mut(id)?;
    st.notified += 1;
    match answer {
        Answer::Continue => st.continued += 1,
        Answer::Errno(_) => st.failed += 1,
    }
    Some(st)
}

fn zero_stats(id: &str) -> NotifyStats {
    NotifyStats {
        id: id.to_string(),
        notified: 0,
        continued: 0,
        failed: 0,
    }
}

fn check_policy(p: &NotifyPolicy) -> Result<(), Error> {
    let errno_ok = |e: i32| (1..4096).contains(&e);
    match p {
        NotifyPolicy::Continue => Ok(()),
        NotifyPolicy::Errno(e) | NotifyPolicy::AllowArgs { errno: e, .. } if !errno_ok(*e) => Err(
            Error::invalid(format!("notify policy: errno {e} is not in 1..4095")),
        ),
        NotifyPolicy::AllowArgs { index, .. } if *index > 5 => Err(Error::invalid(format!(
            "notify policy: argument index {index} is over 5"
        ))),
        _ => Ok(()),
    }
}

/// The fd must be a seccomp listener ("anon_inode:seccomp notify").
fn check_listener(fd: &OwnedFd) -> Result<(), Error> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Error::io("inspect the listener fd", &e))?;
    if link.to_string_lossy() != "anon_inode:seccomp notify" {
        return Err(Error::invalid(format!(
            "watch: the fd that came along is {}, not a seccomp listener",
            link.display()
        )));
    }
    Ok(())
}

/// The policy's answer for one syscall.
pub fn decide(policy: &NotifyPolicy, n: &Notif) -> Answer {
    match policy {
        NotifyPolicy::Continue => Answer::Continue,
        NotifyPolicy::Errno(e) => Answer::Errno(*e),
        NotifyPolicy::AllowArgs {
            index,
            values,
            errno,
        } => {
            let v = n.args.get(*index as usize).copied().unwrap_or(0);
            if values.contains(&v) {
                Answer::Continue
            } else {
                Answer::Errno(*errno)
            }
        }
    }
}

/// A test hook for fault injection: `ASTERISM_SECCOMP_HOLD=ID:MS` makes
/// the agent of container ID wait MS milliseconds between journaling a
/// notification and answering it, so that a test can SIGKILL the server
/// in that window.
fn hold_for(id: &str) -> Option<Duration> {
    let v = std::env::var("ASTERISM_SECCOMP_HOLD").ok()?;
    let (who, ms) = v.rsplit_once(':')?;
    let ms: u64 = ms.parse().ok()?;
    (who == id).then(|| Duration::from_millis(ms))
}

struct Worker {
    agents: Agents,
    id: String,
    policy: NotifyPolicy,
    fd: OwnedFd,
    stop: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        self.replay();
        let hold = hold_for(&self.id);
        while !self.stop.load(Ordering::SeqCst) {
            match self.wait() {
                Wait::Ready => {}
                Wait::Idle => continue,
                Wait::Gone => break,
            }
            let n = match notif::recv(self.fd.as_fd()) {
                Ok(n) => n,
                // The thread was killed between poll and recv: nothing to do.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    tracing::error!("{}: SECCOMP_IOCTL_NOTIF_RECV: {e}", self.id);
                    break;
                }
            };
            if let Err(e) = pending::record(&self.agents.state_dir, &self.id, &n) {
                // Still answered: a container must not hang because our
                // disk is full; only the crash-recovery of this one is lost.
                tracing::error!("{}: journal notification {}: {e}", self.id, n.id);
            }
            if let Some(d) = hold {
                std::thread::sleep(d);
            }
            self.answer(&n);
        }
        // Withdrawn before the fd closes, so the entry never names a
        // reused fd number.
        use std::os::fd::AsRawFd;
        listeners::withdraw(&self.agents.state_dir, &self.id, self.fd.as_raw_fd());
        tracing::info!("{}: notify agent stopped", self.id);
    }

    /// Answers what a previous run received but never answered.
    fn replay(&self) {
        for e in pending::load(&self.agents.state_dir, &self.id) {
            tracing::info!(
                "{}: answering notification {} left by a previous run",
                self.id,
                e.id
            );
            self.answer(&e.notif());
        }
    }

    fn answer(&self, n: &Notif) {
        let dir = &self.agents.state_dir;
        if !notif::id_valid(self.fd.as_fd(), n.id) {
            // Its thread died or its syscall was interrupted: no answer.
            pending::done(dir, &self.id, n.id);
            return;
        }
        let answer = decide(&self.policy, n);
        match notif::send(self.fd.as_fd(), n.id, answer) {
            Ok(()) => {
                self.agents.count(&self.id, answer);
                self.publish(n, answer);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                tracing::info!("{}: notification {} no longer pending", self.id, n.id)
            }
            Err(e) => tracing::error!("{}: SECCOMP_IOCTL_NOTIF_SEND {}: {e}", self.id, n.id),
        }
        pending::done(dir, &self.id, n.id);
    }

    fn publish(&self, n: &Notif, answer: Answer) {
        let syscall = syscalls::Sysno::new(n.nr as usize)
            .map(|s| s.name().to_string())
            .unwrap_or_else(|| format!("syscall {}", n.nr));
        tracing::info!(
            "{}: pid {} {syscall}{:?}: {}",
            self.id,
            n.pid,
            n.args,
            answer.describe()
        );
        self.agents.events.publish(SeccompEvent::Notified {
            id: self.id.clone(),
            pid: n.pid,
            syscall,
            nr: n.nr,
            args: n.args.to_vec(),
            decision: answer.describe(),
            at_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        });
    }

    fn wait(&self) -> Wait {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(POLL_MS) * 1_000_000,
        };
        match poll(&mut fds, Some(&ts)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => Wait::Idle,
            Ok(_) => {
                let r = fds[0].revents();
                if r.contains(PollFlags::IN) {
                    Wait::Ready
                } else if r.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                    // Every task under the filter is gone.
                    Wait::Gone
                } else {
                    Wait::Idle
                }
            }
            Err(e) => {
                tracing::error!("{}: poll the listener: {e}", self.id);
                Wait::Gone
            }
        }
    }
}

enum Wait {
    Ready,
    Idle,
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notif(args: [u64; 6]) -> Notif {
        Notif {
            id: 7,
            pid: 1,
            nr: 83,
            arch: 0xc000_003e,
            args,
        }
    }

    #[test]
    fn a_count_after_forget_brings_no_stats_back() {
        let mut stats = BTreeMap::new();
        stats.insert("c1".to_string(), zero_stats("c1"));
        let st = count_in(&mut stats, "c1", Answer::Errno(13)).unwrap();
        assert_eq!((st.notified, st.continued, st.failed), (1, 0, 1));
        stats.remove("c1");
        assert!(count_in(&mut stats, "c1", Answer::Continue).is_none());
        assert!(stats.is_empty());
    }

    #[test]
    fn policies_decide() {
        let n = notif([0, 8, 0, 0, 0, 0]);
        assert_eq!(decide(&NotifyPolicy::Continue, &n), Answer::Continue);
        assert_eq!(decide(&NotifyPolicy::Errno(13), &n), Answer::Errno(13));
        let only = |values: Vec<u64>| NotifyPolicy::AllowArgs {
            index: 1,
            values,
            errno: 1,
        };
        assert_eq!(decide(&only(vec![0, 8]), &n), Answer::Continue);
        assert_eq!(decide(&only(vec![0]), &n), Answer::Errno(1));
    }

    #[test]
    fn bad_policies_are_refused() {
        assert!(check_policy(&NotifyPolicy::Errno(0)).is_err());
        assert!(check_policy(&NotifyPolicy::Errno(5000)).is_err());
        let e = check_policy(&NotifyPolicy::AllowArgs {
            index: 6,
            values: vec![],
            errno: 1,
        })
        .unwrap_err();
        assert!(e.message.contains("index 6"), "{e}");
        assert!(check_policy(&NotifyPolicy::Continue).is_ok());
    }

    #[test]
    fn a_plain_fd_is_not_a_listener() {
        let f: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        let e = check_listener(&f).unwrap_err();
        assert!(e.message.contains("/dev/null"), "{e}");
    }

    #[test]
    fn the_journal_keeps_what_is_not_done() {
        let dir = tempfile::tempdir().unwrap();
        let n = notif([1, 2, 3, 4, 5, 6]);
        pending::record(dir.path(), "c1", &n).unwrap();
        pending::record(dir.path(), "c1", &Notif { id: 9, ..n }).unwrap();
        // A half-written entry from a crash between write and rename.
        std::fs::write(pending::dir(dir.path(), "c1").join("11.tmp"), b"{").unwrap();
        pending::done(dir.path(), "c1", 9);
        let left = pending::load(dir.path(), "c1");
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].id, left[0].args), (7, [1, 2, 3, 4, 5, 6]));
        assert!(!pending::dir(dir.path(), "c1").join("11.tmp").exists());
        pending::remove_all(dir.path(), "c1");
        assert!(pending::load(dir.path(), "c1").is_empty());
    }

    #[test]
    fn stats_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = NotifyStats {
            id: "c2".into(),
            notified: 3,
            continued: 2,
            failed: 1,
        };
        stats::save(dir.path(), &s);
        assert_eq!(stats::load_all(dir.path()).get("c2"), Some(&s));
        stats::remove(dir.path(), "c2");
        assert!(stats::load_all(dir.path()).is_empty());
    }
}
