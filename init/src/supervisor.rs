//! The supervisor: starts the five servers, watches each through a pidfd,
//! restarts a dead one with exponential backoff, marks one that crashes too
//! often `failed`, and stops them all on shutdown.
//!
//! init creates each server's listening socket and hands it down as fd 3, and
//! keeps its own copy (the first entry of the fd store). Clients that connect
//! while a server is being restarted wait in the socket's backlog instead of
//! being refused, and the new server accepts them: a restart costs clients a
//! pause, not an error. If init itself dies, the servers keep running; the
//! next init finds them from their pid files, takes a copy of their listening
//! socket back with pidfd_getfd, and adopts them.
//!
//! Its thread sleeps in one poll(2) on the servers' pidfds and a wake-up
//! eventfd (a stop asked for, a server's readiness reported) until a server
//! dies, a restart is due or the next health check: an idle constellation
//! wakes it every `health_interval`, not 20 times a second.

use crate::root::Root;
use anyhow::{bail, Context, Result};
use command_fds::{CommandFdExt, FdMapping};
use libipc::wire::listen;
use nix::sys::eventfd::{EfdFlags, EventFd};
use protocol::init::{ServerEntry, ServerState};
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fd number a server finds its listening socket at.
pub const LISTEN_FD: i32 = 3;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the server binaries are (beside init's own by default).
    pub bin_dir: PathBuf,
    /// More crashes than this within `crash_window` mark a server failed.
    pub max_crashes: usize,
    pub crash_window: Duration,
    /// How long a started server has to answer hello.
    pub ready_timeout: Duration,
    /// How often running servers are pinged; three missed pings in a row
    /// and the server is killed and restarted like a crashed one.
    pub health_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bin_dir: PathBuf::from("."),
            max_crashes: 8,
            crash_window: Duration::from_secs(30),
            ready_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(2),
        }
    }
}

/// One supervised server.
pub struct Slot {
    pub name: &'static str,
    pub state: ServerState,
    pub pid: u32,
    pub epoch: u64,
    pub restarts: u64,
    pub started: Instant,
    crashes: VecDeque<Instant>,
    next_start: Option<Instant>,
    listener: Option<OwnedFd>,
    /// Shared with the supervisor's poll, which runs without the table lock.
    pidfd: Option<Arc<OwnedFd>>,
    child: Option<std::process::Child>,
    missed_pings: u32,
}

impl Slot {
    fn new(name: &'static str) -> Slot {
        Slot {
            name,
            state: ServerState::Stopped,
            pid: 0,
            epoch: 0,
            restarts: 0,
            started: Instant::now(),
            crashes: VecDeque::new(),
            next_start: None,
            listener: None,
            pidfd: None,
            child: None,
            missed_pings: 0,
        }
    }

    pub fn entry(&self) -> ServerEntry {
        let running = matches!(self.state, ServerState::Running | ServerState::Starting);
        ServerEntry {
            name: self.name.to_string(),
            pid: if running { self.pid } else { 0 },
            state: self.state,
            restarts: self.restarts,
            uptime_ms: if running {
                self.started.elapsed().as_millis() as u64
            } else {
                0
            },
            requests: 0,
            epoch: self.epoch,
        }
    }
}

pub type Table = Arc<Mutex<Vec<Slot>>>;

/// Called when a server answers hello after a start: its name and epoch.
pub type OnRunning = Box<dyn Fn(&'static str, u64) + Send>;

/// Wakes the supervisor's thread from any thread: to stop, or to take a
/// readiness report.
#[derive(Clone)]
pub struct Waker {
    fd: Arc<EventFd>,
    stop: Arc<AtomicBool>,
}

impl Waker {
    fn wake(&self) {
        let _ = self.fd.arm();
    }

    /// Asks `Supervisor::run` to stop every server and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
    }
}

pub struct Supervisor {
    root: Arc<Root>,
    cfg: Config,
    table: Table,
    ready_tx: crossbeam_channel::Sender<(&'static str, u64, bool)>,
    ready_rx: crossbeam_channel::Receiver<(&'static str, u64, bool)>,
    last_health: Instant,
    waker: Waker,
    on_running: Mutex<Option<OnRunning>>,
}

impl Supervisor {
    pub fn new(root: Arc<Root>, cfg: Config) -> Result<Supervisor> {
        let table = protocol::SERVERS.iter().map(|n| Slot::new(n)).collect();
        let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
        let fd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .context("create the supervisor's wake-up eventfd")?;
        Ok(Supervisor {
            root,
            cfg,
            table: Arc::new(Mutex::new(table)),
            ready_tx,
            ready_rx,
            last_health: Instant::now(),
            waker: Waker {
                fd: Arc::new(fd),
                stop: Arc::new(AtomicBool::new(false)),
            },
            on_running: Mutex::new(None),
        })
    }

    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// Sets what to call each time a (re)started server answers hello.
    pub fn on_running(&self, f: OnRunning) {
        *self.on_running.lock().unwrap() = Some(f);
    }

    pub fn table(&self) -> Table {
        self.table.clone()
    }

    /// Adopts the servers a previous init left running, starts the others,
    /// and waits until every one answers hello.
    pub fn start_all(&mut self) -> Result<()> {
        let names: Vec<&'static str> = protocol::SERVERS.to_vec();
        for (i, name) in names.iter().enumerate() {
            match self.adopt(i, name) {
                Ok(true) => tracing::info!("adopted running {name}"),
                Ok(false) => self.start(i)?,
                Err(e) => {
                    tracing::warn!("could not adopt {name}: {e:#}; starting a new one");
                    self.start(i)?;
                }
            }
        }
        let deadline = Instant::now() + self.cfg.ready_timeout;
        loop {
            self.tick(Duration::from_millis(20));
            let table = self.table.lock().unwrap();
            if table.iter().all(|s| s.state == ServerState::Running) {
                return Ok(());
            }
            if let Some(s) = table.iter().find(|s| s.state == ServerState::Failed) {
                bail!("{} failed to start (see its messages above)", s.name);
            }
            if Instant::now() > deadline {
                let waiting: Vec<_> = table
                    .iter()
                    .filter(|s| s.state != ServerState::Running)
                    .map(|s| s.name)
                    .collect();
                bail!(
                    "servers did not answer hello within {:?}: {}",
                    self.cfg.ready_timeout,
                    waiting.join(", ")
                );
            }
        }
    }

    /// Runs until [`Waker::stop`], then stops every server.
    pub fn run(&mut self) {
        loop {
            if self.waker.stop.load(Ordering::SeqCst) {
                self.stop_all();
                return;
            }
            let next_health = self
                .cfg
                .health_interval
                .saturating_sub(self.last_health.elapsed());
            self.tick(next_health);
        }
    }

    /// One round: wait for a death (or `timeout`), handle deaths, readiness
    /// reports, due restarts and health pings.
    fn tick(&mut self, timeout: Duration) {
        let timeout = self.until_next_start().map_or(timeout, |d| d.min(timeout));
        let dead = self.wait_for_deaths(timeout);
        for i in dead {
            self.on_exit(i);
        }
        while let Ok((name, epoch, ok)) = self.ready_rx.try_recv() {
            self.on_ready(name, epoch, ok);
        }
        let due: Vec<usize> = {
            let t = self.table.lock().unwrap();
            t.iter()
                .enumerate()
                .filter(|(_, s)| {
                    s.state == ServerState::Restarting
                        && s.next_start.is_some_and(|n| n <= Instant::now())
                })
                .map(|(i, _)| i)
                .collect()
        };
        for i in due {
            if let Err(e) = self.start(i) {
                tracing::error!("restart failed: {e:#}");
                let mut t = self.table.lock().unwrap();
                self.record_crash(&mut t[i]);
            }
        }
        if self.last_health.elapsed() >= self.cfg.health_interval {
            self.last_health = Instant::now();
            self.health_check();
        }
    }

    fn until_next_start(&self) -> Option<Duration> {
        let t = self.table.lock().unwrap();
        t.iter()
            .filter_map(|s| s.next_start)
            .min()
            .map(|n| n.saturating_duration_since(Instant::now()))
    }

    /// poll(2) on every live server's pidfd and the wake-up eventfd, for at
    /// most `timeout`; returns the slots that exited. The table stays
    /// unlocked meanwhile (the poll holds its own references).
    fn wait_for_deaths(&self, timeout: Duration) -> Vec<usize> {
        let live: Vec<(usize, Arc<OwnedFd>)> = {
            let t = self.table.lock().unwrap();
            t.iter()
                .enumerate()
                .filter_map(|(i, s)| s.pidfd.clone().map(|p| (i, p)))
                .collect()
        };
        let mut fds = vec![PollFd::new(&*self.waker.fd, PollFlags::IN)];
        fds.extend(live.iter().map(|(_, p)| PollFd::new(p, PollFlags::IN)));
        let ts = Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: timeout.subsec_nanos() as i64,
        };
        if !matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0) {
            return vec![];
        }
        if !fds[0].revents().is_empty() {
            let _ = self.waker.fd.read();
        }
        fds[1..]
            .iter()
            .zip(live.iter())
            .filter(|(f, _)| !f.revents().is_empty())
            .map(|(_, (i, _))| *i)
            .collect()
    }

    fn on_exit(&mut self, i: usize) {
        let mut t = self.table.lock().unwrap();
        let slot = &mut t[i];
        let status = slot
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        slot.pidfd = None;
        slot.child = None;
        if slot.state == ServerState::Stopped {
            return;
        }
        tracing::warn!(
            "{} (pid {}) exited{}",
            slot.name,
            slot.pid,
            status.map(|s| format!(": {s}")).unwrap_or_default()
        );
        self.record_crash(slot);
    }

    /// Counts a crash and schedules the restart, or gives up.
    fn record_crash(&self, slot: &mut Slot) {
        let now = Instant::now();
        slot.crashes.push_back(now);
        while slot
            .crashes
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.cfg.crash_window)
        {
            slot.crashes.pop_front();
        }
        let n = slot.crashes.len();
        if n > self.cfg.max_crashes {
            tracing::error!(
                "{} crashed {n} times within {:?}; marked failed, not restarting",
                slot.name,
                self.cfg.crash_window
            );
            slot.state = ServerState::Failed;
            slot.next_start = None;
            return;
        }
        // First crash in the window: restart at once. Then 10 ms, 20 ms, ... 1 s.
        let delay = if n <= 1 {
            Duration::ZERO
        } else {
            Duration::from_millis((10u64 << (n - 2).min(7)).min(1000))
        };
        slot.state = ServerState::Restarting;
        slot.next_start = Some(now + delay);
    }

    fn on_ready(&mut self, name: &'static str, epoch: u64, ok: bool) {
        let mut t = self.table.lock().unwrap();
        let Some(slot) = t.iter_mut().find(|s| s.name == name) else {
            return;
        };
        if slot.epoch != epoch || slot.state != ServerState::Starting {
            return; // a report about an earlier start
        }
        if ok {
            slot.state = ServerState::Running;
            slot.missed_pings = 0;
            drop(t);
            if let Some(f) = self.on_running.lock().unwrap().as_ref() {
                f(name, epoch);
            }
        } else if let Some(p) = slot.pidfd.as_ref() {
            tracing::warn!(
                "{} did not answer hello within {:?}; killing it",
                name,
                self.cfg.ready_timeout
            );
            let _ = pidfd_send_signal(p, Signal::KILL);
        }
    }

    /// Spawns server `i` with the listening socket as fd 3.
    fn start(&mut self, i: usize) -> Result<()> {
        let (name, epoch, listener) = {
            let mut t = self.table.lock().unwrap();
            let slot = &mut t[i];
            if slot.listener.is_none() {
                let path = self.root.socket(slot.name);
                slot.listener =
                    Some(listen(&path).with_context(|| format!("listen on {}", path.display()))?);
            }
            let l = slot
                .listener
                .as_ref()
                .unwrap()
                .try_clone()
                .context("dup listening socket")?;
            slot.epoch = slot.epoch.max(previous_epoch(&self.root, slot.name)) + 1;
            (slot.name, slot.epoch, l)
        };
        let bin = self.cfg.bin_dir.join(name);
        let mut cmd = std::process::Command::new(&bin);
        cmd.arg("--root")
            .arg(&self.root.dir)
            .arg("--epoch")
            .arg(epoch.to_string())
            .arg("--listen-fd")
            .arg(LISTEN_FD.to_string())
            .stdin(std::process::Stdio::null())
            // Its own process group: a Ctrl-C at init's terminal must reach
            // init only; init then stops the servers in order.
            .process_group(0);
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: listener,
            child_fd: LISTEN_FD,
        }])
        .map_err(|e| anyhow::anyhow!("map listening socket to fd 3: {e:?}"))?;
        let child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id();
        let pidfd = pidfd_open(
            Pid::from_raw(pid as i32).expect("child pid > 0"),
            PidfdFlags::empty(),
        )
        .with_context(|| format!("pidfd_open({pid}) for {name}"))?;
        {
            let mut t = self.table.lock().unwrap();
            let slot = &mut t[i];
            if slot.state == ServerState::Restarting {
                slot.restarts += 1;
            }
            slot.state = ServerState::Starting;
            slot.pid = pid;
            slot.started = Instant::now();
            slot.next_start = None;
            slot.pidfd = Some(Arc::new(pidfd));
            slot.child = Some(child);
            write_pid_file(&self.root, slot);
        }
        tracing::info!("started {name} pid {pid} epoch {epoch}");
        self.watch_ready(name, epoch);
        Ok(())
    }

    /// Reports on the ready channel once the server answers hello.
    fn watch_ready(&self, name: &'static str, epoch: u64) {
        let (tx, root, timeout, waker) = (
            self.ready_tx.clone(),
            self.root.dir.clone(),
            self.cfg.ready_timeout,
            self.waker.clone(),
        );
        std::thread::spawn(move || {
            let ok = ping_server(&root, name, timeout).is_ok();
            let _ = tx.send((name, epoch, ok));
            waker.wake();
        });
    }

    /// Takes over a server a previous init left running. Ok(false): none there.
    fn adopt(&mut self, i: usize, name: &'static str) -> Result<bool> {
        let Some((pid, epoch, restarts)) = read_pid_file(&self.root, name) else {
            return Ok(false);
        };
        if !is_our_server(pid, name, &self.root) {
            return Ok(false);
        }
        let pidfd = match pidfd_open(
            Pid::from_raw(pid as i32).expect("pid > 0"),
            PidfdFlags::empty(),
        ) {
            Ok(p) => p,
            Err(_) => return Ok(false), // gone meanwhile
        };
        let listener = match rustix::process::pidfd_getfd(
            &pidfd,
            LISTEN_FD,
            rustix::process::PidfdGetfdFlags::empty(),
        ) {
            Ok(l) => l,
            Err(e) => {
                kill_and_wait(&pidfd);
                bail!("cannot take back {name}'s listening socket (pidfd_getfd: {e}); replaced it");
            }
        };
        if let Err(e) = ping_server(&self.root.dir, name, Duration::from_secs(2)) {
            kill_and_wait(&pidfd);
            bail!("{name} (pid {pid}) does not answer ({e}); replaced it");
        }
        let mut t = self.table.lock().unwrap();
        let slot = &mut t[i];
        slot.state = ServerState::Running;
        slot.pid = pid;
        slot.epoch = epoch;
        slot.restarts = restarts;
        slot.pidfd = Some(Arc::new(pidfd));
        slot.listener = Some(listener);
        slot.started = process_start(pid).unwrap_or_else(Instant::now);
        Ok(true)
    }

    /// Pings running servers; one that misses three in a row is hung and is
    /// killed, so that the pidfd path restarts it.
    fn health_check(&self) {
        let running: Vec<(usize, &'static str)> = {
            let t = self.table.lock().unwrap();
            t.iter()
                .enumerate()
                .filter(|(_, s)| s.state == ServerState::Running)
                .map(|(i, s)| (i, s.name))
                .collect()
        };
        for (i, name) in running {
            let ok = ping_server(&self.root.dir, name, Duration::from_millis(500)).is_ok();
            let mut t = self.table.lock().unwrap();
            let slot = &mut t[i];
            slot.missed_pings = if ok { 0 } else { slot.missed_pings + 1 };
            if slot.missed_pings >= 3 {
                tracing::warn!("{name} missed 3 pings; killing it to restart it");
                if let Some(p) = slot.pidfd.as_ref() {
                    let _ = pidfd_send_signal(p, Signal::KILL);
                }
                slot.missed_pings = 0;
            }
        }
    }

    /// SIGTERM every server, wait up to 3 s, SIGKILL what is left, clean up.
    pub fn stop_all(&mut self) {
        let mut t = self.table.lock().unwrap();
        for s in t.iter_mut() {
            s.state = ServerState::Stopped;
            s.next_start = None;
            if let Some(p) = s.pidfd.as_ref() {
                let _ = pidfd_send_signal(p, Signal::TERM);
            }
        }
        let until = Instant::now() + Duration::from_secs(3);
        for s in t.iter_mut() {
            if let Some(p) = s.pidfd.take() {
                if !wait_exit(&p, until.saturating_duration_since(Instant::now())) {
                    let _ = pidfd_send_signal(&p, Signal::KILL);
                    wait_exit(&p, Duration::from_secs(1));
                }
            }
            if let Some(mut c) = s.child.take() {
                let _ = c.wait();
            }
            let _ = std::fs::remove_file(self.root.server_dir(s.name).join("pid"));
            let _ = std::fs::remove_file(self.root.socket(s.name));
            s.pid = 0;
        }
    }
}

/// Hello + ping with a deadline and no retries.
fn ping_server(
    root: &std::path::Path,
    name: &'static str,
    deadline: Duration,
) -> Result<(), protocol::Error> {
    let opts = libipc::ClientOptions {
        deadline,
        client_name: "init".into(),
        retry: false,
        check_name: false,
    };
    // Hello and ping are the same for every server, so any marker type does.
    let mut c = libipc::Client::<protocol::placeholder::VfsOverlay>::at(
        libipc::socket_path(root, name),
        opts,
    );
    c.ping()?;
    match c.hello() {
        Some(h) if h.server == name => Ok(()),
        Some(h) => Err(protocol::Error::internal(format!(
            "socket of {name} is served by {}",
            h.server
        ))),
        None => Err(protocol::Error::internal(format!(
            "{name} answered ping without hello"
        ))),
    }
}

fn kill_and_wait(pidfd: &OwnedFd) {
    let _ = pidfd_send_signal(pidfd, Signal::KILL);
    wait_exit(pidfd, Duration::from_secs(2));
}

/// Waits for a pidfd to become readable (the process exited).
fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let ts = Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: timeout.subsec_nanos() as i64,
    };
    matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0)
}

fn write_pid_file(root: &Root, slot: &Slot) {
    let dir = root.server_dir(slot.name);
    let _ = std::fs::create_dir_all(&dir);
    let text = format!("{} {} {}\n", slot.pid, slot.epoch, slot.restarts);
    if let Err(e) = libipc::journal::write_atomic(&dir.join("pid"), text.as_bytes()) {
        tracing::warn!("cannot record {}'s pid: {e}", slot.name);
    }
}

fn read_pid_file(root: &Root, name: &str) -> Option<(u32, u64, u64)> {
    let text = std::fs::read_to_string(root.server_dir(name).join("pid")).ok()?;
    let mut it = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    Some((it.next()?? as u32, it.next()??, it.next()??))
}

fn previous_epoch(root: &Root, name: &str) -> u64 {
    read_pid_file(root, name).map(|(_, e, _)| e).unwrap_or(0)
}

/// Is `pid` the server `name` started for this root? (pids are reused, so
/// the command line must match, not just the number.)
fn is_our_server(pid: u32, name: &str, root: &Root) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let argv0_ok = args
        .first()
        .is_some_and(|a| a.ends_with(format!("/{name}").as_bytes()) || *a == name.as_bytes());
    let root_ok = args
        .windows(2)
        .any(|w| w[0] == b"--root" && w[1] == root.dir.as_os_str().as_encoded_bytes());
    argv0_ok && root_ok
}

/// When `pid` started, as an Instant (for uptime after adoption).
fn process_start(pid: u32) -> Option<Instant> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let hz = 100.0; // USER_HZ is 100 on every Linux architecture we run on
    let age = uptime - start_ticks as f64 / hz;
    Instant::now().checked_sub(Duration::from_secs_f64(age.max(0.0)))
}
