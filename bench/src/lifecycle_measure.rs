//! One measurement each: a foreground `run`, the four phases of a
//! create/start/wait/delete, a batch of runs by N workers, and the peak RSS
//! of the runtime's own process during a `run`. Bundles are written before
//! the clock starts; nothing here prints.

use crate::lifecycle_bundle::Bundles;
use crate::lifecycle_runtime::Runtime;
use anyhow::{bail, Context, Result};
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use std::path::Path;
use std::time::{Duration, Instant};

/// `run --bundle B ID` of /bin/true. Every runtime's foreground run deletes
/// the container when it exits, so this is the run + delete.
pub fn run_once(rt: &Runtime, bundles: &Bundles, id: &str) -> Result<Duration> {
    let bundle = bundles.make(rt.name(), id)?;
    rt.run(&bundle, id)
}

/// create, start, wait, delete, each timed on its own.
pub struct Phases {
    pub create: Duration,
    pub start: Duration,
    /// From `start`'s exit to the container process's exit (its pidfd
    /// becoming readable): /bin/true mostly finishes while start returns.
    pub wait: Duration,
    pub delete: Duration,
}

pub fn phases_once(rt: &Runtime, bundles: &Bundles, id: &str) -> Result<Phases> {
    let bundle = bundles.make(rt.name(), id)?;
    let pid_file = bundle.join("container.pid");
    let create = rt.create(&bundle, id, &pid_file)?;
    let (start, wait) = start_and_wait(rt, id, &pid_file).inspect_err(|_| force_delete(rt, id))?;
    let delete = rt.delete(id)?;
    Ok(Phases {
        create,
        start,
        wait,
        delete,
    })
}

fn start_and_wait(rt: &Runtime, id: &str, pid_file: &Path) -> Result<(Duration, Duration)> {
    let pidfd = open_pidfd(pid_file)?;
    let start = rt.start(id)?;
    let t0 = Instant::now();
    wait_exit(&pidfd, Duration::from_secs(10))
        .with_context(|| format!("{} container {id}", rt.name()))?;
    Ok((start, t0.elapsed()))
}

/// After a failure midway: the final sweep would catch it, but the next
/// samples should not run beside a leftover.
fn force_delete(rt: &Runtime, id: &str) {
    let _ = rt.timed(&["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
}

/// The container's pidfd, opened while create holds it before start, so
/// its pid cannot be reused under us.
fn open_pidfd(pid_file: &Path) -> Result<std::os::fd::OwnedFd> {
    let text = std::fs::read_to_string(pid_file)
        .with_context(|| format!("read --pid-file {}", pid_file.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("--pid-file {} holds {text:?}", pid_file.display()))?;
    let pid = Pid::from_raw(pid).context("pid 0 in the pid file")?;
    pidfd_open(pid, PidfdFlags::empty()).with_context(|| format!("pidfd_open({pid:?})"))
}

fn wait_exit(pidfd: &std::os::fd::OwnedFd, limit: Duration) -> Result<()> {
    let timeout = rustix::event::Timespec {
        tv_sec: limit.as_secs() as i64,
        tv_nsec: 0,
    };
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let n = poll(&mut fds, Some(&timeout)).context("poll the container's pidfd")?;
    if n == 0 {
        bail!("did not exit within {limit:?} of start");
    }
    Ok(())
}

/// `n` containers run by `workers` threads at once, each worker with its
/// own ids (`<tag>w<k>-<i>`); the bundles are written before the clock.
pub struct Batch {
    pub wall: Duration,
    pub latencies: Vec<Duration>,
    /// Runs the busiest worker made (what crun's per-command hook cost is
    /// taken off the wall for).
    pub per_worker: usize,
}

impl Batch {
    /// Another batch of the same runtime, as if it had run right after.
    pub fn add(&mut self, other: Batch) {
        self.wall += other.wall;
        self.latencies.extend(other.latencies);
        self.per_worker += other.per_worker;
    }
}

pub fn batch(
    rt: &Runtime,
    bundles: &Bundles,
    tag: &str,
    n: usize,
    workers: usize,
) -> Result<Batch> {
    let mut plan: Vec<Vec<(String, std::path::PathBuf)>> = vec![vec![]; workers];
    for i in 0..n {
        let id = format!("{tag}w{}-{i}", i % workers);
        let bundle = bundles.make(rt.name(), &id)?;
        plan[i % workers].push((id, bundle));
    }
    let t0 = Instant::now();
    let results: Vec<Result<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .iter()
            .map(|mine| {
                s.spawn(move || {
                    mine.iter()
                        .map(|(id, bundle)| {
                            if crate::lifecycle::interrupted() {
                                bail!("interrupted");
                            }
                            rt.run(bundle, id)
                        })
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a worker panicked")))
            .collect()
    });
    let wall = t0.elapsed();
    let mut latencies = vec![];
    for r in results {
        latencies.extend(r?);
    }
    Ok(Batch {
        wall,
        latencies,
        per_worker: n.div_ceil(workers),
    })
}

/// Peak RSS (VmHWM, KiB) of the runtime's own process during one `run`,
/// polled from /proc/PID/status until it exits. Polling counts only
/// after exec (the Name is the runtime's), so the benchmark's own pages,
/// which the child shares until exec, are never counted. The last reading
/// before exit is a lower bound of the true peak; the process's memory
/// grows while it sets up, long before it waits for the container.
pub fn peak_rss(rt: &Runtime, bundles: &Bundles, id: &str) -> Result<(u64, usize)> {
    let bundle = bundles.make(rt.name(), id)?;
    let args = rt.run_args(&bundle, id);
    let mut err = tempfile::tempfile()?;
    let mut child = rt
        .command(&args)
        .stderr(err.try_clone()?)
        .spawn()
        .with_context(|| format!("spawn `{}`", rt.describe(&args)))?;
    let status_path = format!("/proc/{}/status", child.id());
    let comm = rt.comm();
    let (mut peak, mut readings) = (0, 0);
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if field_str(&s, "Name") == Some(comm.as_str()) {
                if let Some(kib) = field_kib(&s, "VmHWM") {
                    peak = peak.max(kib);
                    readings += 1;
                }
            }
        }
        if let Some(st) = child.try_wait()? {
            break st;
        }
    };
    if !status.success() {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let _ = err.rewind();
        let _ = err.read_to_string(&mut text);
        bail!(rt.failure(&args, status, &text));
    }
    Ok((peak, readings))
}

fn field_str<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}

fn field_kib(status: &str, key: &str) -> Option<u64> {
    field_str(status, key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_status_fields() {
        let st = "Name:\tipc\nVmHWM:\t    3072 kB\nVmRSS:\t 2048 kB\n";
        assert_eq!(super::field_str(st, "Name"), Some("ipc"));
        assert_eq!(super::field_kib(st, "VmHWM"), Some(3072));
        assert_eq!(super::field_kib(st, "VmPeak"), None);
    }
}
