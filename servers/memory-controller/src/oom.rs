//! The OOM watcher: one thread that waits for the kernel to say a group went
//! out of memory and hands a notice to the service.
//!
//! - v1: per group an eventfd registered through cgroup.event_control with
//!   the group's memory.oom_control; the kernel adds 1 per OOM (and also
//!   signals when the cgroup is removed, which we tell apart by the
//!   directory being gone). The eventfds sit in one epoll instance, so a
//!   group made or removed costs one epoll_ctl, not a new poll(2) over
//!   every group's eventfd (with 300 containers running, that poll was a
//!   third of a millisecond of CPU per container created).
//! - v2: inotify on each group's memory.events; the kernel modifies it on
//!   every event, so we compare the `oom`/`oom_kill` counters with what we
//!   saw last and report only increases.
//!
//! Registration happens on the caller's thread, before the group is handed
//! to anyone, so an OOM right after create is never missed.

use crate::backend::Backend;
use cgroupfs::{CgroupDir, Version};
use libipc::epoll_map::{EpollMap, Fired};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use protocol::Error;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// What the watcher tells the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OomNotice {
    pub id: String,
    /// OOM events since the last notice (v1: the eventfd count; v2: the
    /// increase of memory.events `oom`).
    pub new_events: u64,
    /// The kernel's own OOM counter, where it keeps one (v2).
    pub kernel_events: Option<u64>,
    /// The kernel's OOM kill counter.
    pub oom_kills: u64,
}

pub type OnOom = Box<dyn Fn(OomNotice) + Send + Sync>;

struct V1Entry {
    efd: EventFd,
    /// Kept open: the registration refers to it.
    _oom_control: std::fs::File,
    dir: CgroupDir,
    kills: u64,
}

impl AsFd for V1Entry {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }
}

struct V2Entry {
    id: String,
    dir: CgroupDir,
    oom: u64,
    kills: u64,
}

enum Kind {
    /// v1's watched groups by id.
    V1(EpollMap<V1Entry>),
    V2 {
        ino: Inotify,
        map: Mutex<HashMap<WatchDescriptor, V2Entry>>,
    },
}

struct Shared {
    backend: Arc<dyn Backend>,
    /// Wakes the v2 thread (v1 watches are added to its epoll set live).
    wake: EventFd,
    kind: Kind,
    on_oom: OnOom,
}

#[derive(Clone)]
pub struct Watcher {
    shared: Arc<Shared>,
}

fn errno(what: &str, e: nix::errno::Errno) -> Error {
    Error::kernel(e as i32, format!("{what}: {}", e.desc()))
}

impl Watcher {
    /// Starts the watcher thread for `backend`'s cgroup version.
    pub fn start(backend: Arc<dyn Backend>, on_oom: OnOom) -> Result<Watcher, Error> {
        let wake = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| errno("create the OOM watcher's eventfd", e))?;
        let kind = match backend.version() {
            Version::V1 => Kind::V1(
                EpollMap::new().map_err(|e| errno("create the OOM watcher's epoll instance", e))?,
            ),
            Version::V2 => Kind::V2 {
                ino: Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
                    .map_err(|e| errno("create the OOM watcher's inotify instance", e))?,
                map: Mutex::new(HashMap::new()),
            },
        };
        let shared = Arc::new(Shared {
            backend,
            wake,
            kind,
            on_oom,
        });
        let t = shared.clone();
        std::thread::Builder::new()
            .name("oom-watcher".into())
            .spawn(move || t.run())
            .map_err(|e| Error::io("start the OOM watcher thread", &e))?;
        Ok(Watcher { shared })
    }

    /// Starts watching group `id` in `dir` (replacing an earlier watch),
    /// counting from the kernel's counters as they are now.
    pub fn watch(&self, id: &str, dir: &CgroupDir) -> Result<(), Error> {
        let counters = self.shared.backend.oom_counters(dir)?;
        self.watch_from(id, dir, counters)
    }

    /// As `watch`, for a group this server has just made: its counters are
    /// all 0, and reading them would open memory.oom_control (v1) twice.
    pub fn watch_new(&self, id: &str, dir: &CgroupDir) -> Result<(), Error> {
        self.watch_from(id, dir, (Some(0), 0))
    }

    fn watch_from(
        &self,
        id: &str,
        dir: &CgroupDir,
        (oom, kills): (Option<u64>, u64),
    ) -> Result<(), Error> {
        let s = &self.shared;
        match &s.kind {
            Kind::V1(map) => {
                let (efd, file) = register_v1(dir)?;
                let entry = V1Entry {
                    efd,
                    _oom_control: file,
                    dir: dir.clone(),
                    kills,
                };
                map.insert(id, entry)
                    .map_err(|e| errno("add an OOM eventfd to the epoll set", e))?;
            }
            Kind::V2 { ino, map } => {
                let file = dir.file("memory.events");
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let wd = ino
                    .add_watch(&file, AddWatchFlags::IN_MODIFY)
                    .map_err(|e| errno(&format!("watch {}", file.display()), e))?;
                let entry = V2Entry {
                    id: id.to_string(),
                    dir: dir.clone(),
                    oom: oom.unwrap_or(0),
                    kills,
                };
                map.insert(wd, entry);
            }
        }
        Ok(())
    }

    /// Stops watching group `id` (before its directory is removed).
    pub fn unwatch(&self, id: &str) {
        match &self.shared.kind {
            Kind::V1(map) => {
                map.remove(id);
            }
            Kind::V2 { ino, map } => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let wds: Vec<_> = map
                    .iter()
                    .filter(|(_, e)| e.id == id)
                    .map(|(w, _)| *w)
                    .collect();
                for wd in wds {
                    map.remove(&wd);
                    let _ = ino.rm_watch(wd);
                }
            }
        }
    }

    /// Ids being watched (for tests and status).
    pub fn watched(&self) -> Vec<String> {
        let mut out: Vec<String> = match &self.shared.kind {
            Kind::V1(map) => map.keys(),
            Kind::V2 { map, .. } => map
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .map(|e| e.id.clone())
                .collect(),
        };
        out.sort();
        out
    }
}

/// v1: an eventfd the kernel signals on each OOM of the group.
fn register_v1(dir: &CgroupDir) -> Result<(EventFd, std::fs::File), Error> {
    let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
        .map_err(|e| errno("create an eventfd for OOM notification", e))?;
    let path = dir.file("memory.oom_control");
    let file = std::fs::File::open(&path)
        .map_err(|e| Error::io(format!("open {}", path.display()), &e))?;
    let line = format!("{} {}", efd.as_raw_fd(), file.as_raw_fd());
    dir.write("cgroup.event_control", &line)?;
    Ok((efd, file))
}

impl Shared {
    fn run(&self) {
        loop {
            let r = match &self.kind {
                Kind::V1(map) => self.round_v1(map),
                Kind::V2 { ino, map } => self.round_v2(ino, map),
            };
            if let Err(e) = r {
                // Keep watching; a transient failure must not end OOM reporting.
                tracing::warn!("OOM watcher: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn round_v1(&self, map: &EpollMap<V1Entry>) -> Result<(), Error> {
        for f in map.wait().map_err(|e| errno("wait for OOM eventfds", e))? {
            if let Some(Ok(n)) = map.with_fired(&f, |e| e.efd.read()) {
                self.v1_fired(map, &f, n);
            }
        }
        Ok(())
    }

    /// `n` notifications for the group `f` names: an OOM, or the cgroup
    /// went away.
    fn v1_fired(&self, map: &EpollMap<V1Entry>, f: &Fired, n: u64) {
        let Some((dir, before)) = map.with_fired(f, |e| (e.dir.clone(), e.kills)) else {
            return;
        };
        if !dir.exists() {
            map.remove_fired(f);
            return;
        }
        // The kernel notifies before it picks a victim: give the kill a
        // moment to be counted so the notice carries it.
        let kills = wait_for_kill(&*self.backend, &dir, before);
        map.with_fired(f, |e| e.kills = kills);
        (self.on_oom)(OomNotice {
            id: f.key.clone(),
            new_events: n,
            kernel_events: None,
            oom_kills: kills,
        });
    }

    fn round_v2(
        &self,
        ino: &Inotify,
        map: &Mutex<HashMap<WatchDescriptor, V2Entry>>,
    ) -> Result<(), Error> {
        let mut fds = [
            PollFd::new(self.wake.as_fd(), PollFlags::POLLIN),
            PollFd::new(ino.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => return Ok(()),
            Err(e) => return Err(errno("poll the OOM inotify instance", e)),
            Ok(_) => {}
        }
        let events = match ino.read_events() {
            Ok(ev) => ev,
            Err(nix::errno::Errno::EAGAIN) => vec![],
            Err(e) => return Err(errno("read inotify events", e)),
        };
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                map.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&ev.wd);
                continue;
            }
            if let Some(n) = self.v2_changed(map, ev.wd) {
                (self.on_oom)(n);
            }
        }
        Ok(())
    }

    /// A notice when memory.events shows more OOMs or kills than last time.
    fn v2_changed(
        &self,
        map: &Mutex<HashMap<WatchDescriptor, V2Entry>>,
        wd: WatchDescriptor,
    ) -> Option<OomNotice> {
        let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
        let e = map.get_mut(&wd)?;
        let (oom, kills) = self.backend.oom_counters(&e.dir).ok()?;
        let oom = oom.unwrap_or(0);
        if oom <= e.oom && kills <= e.kills {
            return None;
        }
        let notice = OomNotice {
            id: e.id.clone(),
            new_events: oom.saturating_sub(e.oom),
            kernel_events: Some(oom),
            oom_kills: kills,
        };
        e.oom = oom;
        e.kills = kills;
        Some(notice)
    }
}

/// Reads the kill counter until it moves past `before`, for at most 200 ms
/// (it stays put when the OOM killer is disabled).
fn wait_for_kill(backend: &dyn Backend, dir: &CgroupDir, before: u64) -> u64 {
    let until = Instant::now() + Duration::from_millis(200);
    loop {
        let kills = backend.oom_counters(dir).map(|(_, k)| k).unwrap_or(before);
        if kills > before || Instant::now() >= until {
            return kills;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
