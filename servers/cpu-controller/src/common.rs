//! Interface files that v1 and v2 spell the same way (cpuset.cpus,
//! cpuset.mems, pids.max, pids.current), and small shared helpers.

use cgroupfs::CgroupDir;
use protocol::cpu::CpuLimits;
use protocol::memory::Limit;
use protocol::Error;
use std::time::{Duration, Instant};

/// An Unsupported error when the kernel lacks the file behind a setting,
/// rather than a bare ENOENT on write.
pub fn require_file(dir: &CgroupDir, file: &str, what: &str) -> Result<(), Error> {
    if dir.has_file(file) {
        return Ok(());
    }
    Err(Error::unsupported(format!(
        "{what}: this kernel has no {}",
        dir.file(file).display()
    )))
}

/// Polls `done` every few milliseconds until it holds (true) or `timeout`
/// passes (false).
pub fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, Error>,
) -> Result<bool, Error> {
    let until = Instant::now() + timeout;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn apply_cpuset(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    // mems first: a v1 cpuset refuses tasks while either list is empty, and
    // the order between the two files does not otherwise matter.
    if let Some(m) = &l.mems {
        dir.write("cpuset.mems", m)?;
    }
    if let Some(c) = &l.cpus {
        dir.write("cpuset.cpus", c)?;
    }
    Ok(())
}

/// cpuset.cpus and cpuset.mems; None where the file is empty (v2: inherit
/// the parent's).
pub fn read_cpuset(dir: &CgroupDir, out: &mut CpuLimits) -> Result<(), Error> {
    let read = |f: &str| -> Result<Option<String>, Error> {
        let s = dir.read_string(f)?;
        let t = s.trim();
        Ok(if t.is_empty() {
            None
        } else {
            Some(t.to_string())
        })
    };
    out.cpus = read("cpuset.cpus")?;
    out.mems = read("cpuset.mems")?;
    Ok(())
}

pub fn apply_pids(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    match l.pids_max {
        Some(Limit::Max) => dir.write("pids.max", "max"),
        Some(Limit::Value(n)) => dir.write("pids.max", &n.to_string()),
        None => Ok(()),
    }
}

pub fn read_pids_max(dir: &CgroupDir) -> Result<Limit, Error> {
    Ok(match dir.read_limit("pids.max")? {
        None => Limit::Max,
        Some(n) => Limit::Value(n),
    })
}

/// cpu.idle: the same file on v1 and v2 (SCHED_IDLE for the group).
pub fn write_idle(dir: &CgroupDir, idle: bool) -> Result<(), Error> {
    require_file(
        dir,
        "cpu.idle",
        "--idle (SCHED_IDLE groups need Linux 5.15)",
    )?;
    dir.write("cpu.idle", if idle { "1" } else { "0" })
}
