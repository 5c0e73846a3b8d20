//! The cgroup v1 interface files of the cpu, cpuacct, cpuset and freezer
//! controllers (pids shares its files with v2: see [`crate::common`]).

use crate::common::{self, wait_until};
use cgroupfs::CgroupDir;
use protocol::cpu::{BlockIoStat, CpuLimits};
use protocol::memory::Limit;
use protocol::Error;
use std::time::Duration;

/// A v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems, and the
/// kernel refuses to attach a task to it until both are set. Under a parent
/// with cgroup.clone_children the kernel copies the parent's at mkdir, and
/// the flag passes down to every group made under it: our base sets it, so
/// a group `new`ly made anywhere below it needs nothing more (the check is
/// one read, against two reads and two writes, and writing cpuset.cpus is
/// the slow part). Elsewhere the parent's are copied down here, and an
/// existing group is filled where it is still empty.
pub fn init_cpuset(dir: &CgroupDir, parent: &CgroupDir, new: bool) -> Result<(), Error> {
    if new && clones_to_children(parent) {
        return Ok(());
    }
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if new || dir.read_string(file)?.trim().is_empty() {
            let value = parent.read_string(file)?;
            dir.write(file, value.trim())?;
        }
    }
    Ok(())
}

/// Does `dir` have cgroup.clone_children set (its new children start with
/// its cpus and mems)? A file that cannot be read counts as no.
fn clones_to_children(dir: &CgroupDir) -> bool {
    dir.read_string("cgroup.clone_children")
        .is_ok_and(|v| v.trim() == "1")
}

/// Sets cgroup.clone_children on a v1 cpuset group, so that the kernel
/// gives each new child the group's cpus and mems at mkdir.
pub fn clone_cpuset_to_children(dir: &CgroupDir) -> Result<(), Error> {
    dir.write("cgroup.clone_children", "1")
}

/// Writes the cpu controller's settings in an order the kernel accepts.
pub fn apply_cpu(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    // An idle group refuses cpu.shares, so leave idle before setting shares
    // and enter it only after everything else.
    if l.idle == Some(false) {
        common::write_idle(dir, false)?;
    }
    if let Some(s) = l.shares {
        dir.write("cpu.shares", &s.to_string())?;
    }
    apply_bandwidth(dir, l)?;
    if l.idle == Some(true) {
        common::write_idle(dir, true)?;
    }
    Ok(())
}

/// Quota, period and burst, ordered as runc does: the kernel refuses a period
/// (or burst) that makes the *current* quota invalid against the parent, so
/// when such a write fails with EINVAL and a quota is coming, write the quota
/// first and retry the period (and burst) after it.
fn apply_bandwidth(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    let mut period_later = None;
    if let Some(p) = l.period_us {
        match dir.write("cpu.cfs_period_us", &p.to_string()) {
            Err(e) if e.errno == Some(libc::EINVAL) && l.quota_us.is_some() => {
                period_later = Some(p)
            }
            r => r?,
        }
    }
    let mut burst_later = None;
    if let Some(b) = l.burst_us {
        common::require_file(
            dir,
            "cpu.cfs_burst_us",
            "--burst (CFS burst needs Linux 5.14)",
        )?;
        match dir.write("cpu.cfs_burst_us", &b.to_string()) {
            Err(e) if e.errno == Some(libc::EINVAL) && l.quota_us.is_some() => {
                burst_later = Some(b)
            }
            r => r?,
        }
    }
    if let Some(q) = l.quota_us {
        let text = match q {
            Limit::Max => "-1".to_string(),
            Limit::Value(v) => v.to_string(),
        };
        dir.write("cpu.cfs_quota_us", &text)?;
        if let Some(p) = period_later {
            dir.write("cpu.cfs_period_us", &p.to_string())?;
        }
        if let Some(b) = burst_later {
            dir.write("cpu.cfs_burst_us", &b.to_string())?;
        }
    }
    Ok(())
}

/// The cpu controller's settings as the kernel holds them.
pub fn read_cpu(dir: &CgroupDir, out: &mut CpuLimits) -> Result<(), Error> {
    out.shares = Some(dir.read_u64("cpu.shares")?);
    let quota = dir.read_string("cpu.cfs_quota_us")?;
    out.quota_us = Some(match quota.trim().parse::<i64>() {
        Ok(q) if q >= 0 => Limit::Value(q as u64),
        Ok(_) => Limit::Max,
        Err(_) => {
            return Err(Error::internal(format!(
                "{} holds {:?}, not a quota",
                dir.file("cpu.cfs_quota_us").display(),
                quota.trim()
            )))
        }
    });
    out.period_us = Some(dir.read_u64("cpu.cfs_period_us")?);
    if dir.has_file("cpu.cfs_burst_us") {
        out.burst_us = Some(dir.read_u64("cpu.cfs_burst_us")?);
    }
    if dir.has_file("cpu.idle") {
        out.idle = Some(dir.read_u64("cpu.idle")? == 1);
    }
    Ok(())
}

/// nr_periods, nr_throttled and throttled time (cpu.stat gives nanoseconds).
pub fn throttling(dir: &CgroupDir) -> Result<(u64, u64, u64), Error> {
    let stat = dir.read_keyed("cpu.stat")?;
    let key = |k: &str| {
        stat.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    Ok((
        key("nr_periods"),
        key("nr_throttled"),
        key("throttled_time") / 1000,
    ))
}

/// Total, user and system CPU time in microseconds from cpuacct.
pub fn usage(dir: &CgroupDir) -> Result<(u64, u64, u64), Error> {
    let total = dir.read_u64("cpuacct.usage")? / 1000;
    if dir.has_file("cpuacct.usage_user") && dir.has_file("cpuacct.usage_sys") {
        let user = dir.read_u64("cpuacct.usage_user")? / 1000;
        let sys = dir.read_u64("cpuacct.usage_sys")? / 1000;
        return Ok((total, user, sys));
    }
    // Older kernels: cpuacct.stat counts USER_HZ ticks.
    let stat = dir.read_keyed("cpuacct.stat")?;
    let us_per_tick = 1_000_000 / clock_ticks();
    let key = |k: &str| {
        stat.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    Ok((
        total,
        key("user") * us_per_tick,
        key("system") * us_per_tick,
    ))
}

/// A cpuacct per-CPU file (nanoseconds, one figure per possible CPU);
/// empty where the kernel has no such file (usage_percpu_user and _sys
/// came in 4.7).
pub fn percpu(dir: &CgroupDir, file: &str) -> Result<Vec<u64>, Error> {
    if !dir.has_file(file) {
        return Ok(vec![]);
    }
    let text = dir.read_string(file)?;
    text.split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|_| Error::internal(format!("{file}: {n:?} is not a number")))
        })
        .collect()
}

/// The v1 cpuset files with one number each, as runc's stats name them.
pub const CPUSET_FLAGS: [&str; 9] = [
    "cpu_exclusive",
    "mem_exclusive",
    "mem_hardwall",
    "memory_migrate",
    "memory_pressure",
    "memory_spread_page",
    "memory_spread_slab",
    "sched_load_balance",
    "sched_relax_domain_level",
];

/// The "MAJOR:MINOR Op value" lines of a blkio counter file; its last
/// line, "Total N" over every device, is left out (as runc leaves it).
pub fn block_io_lines(file: &str, text: &str) -> Vec<BlockIoStat> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = dev.split_once(':')?;
            Some(BlockIoStat {
                file: file.to_string(),
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                op: op.to_string(),
                value: value.parse().ok()?,
            })
        })
        .collect()
}

fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// Freezes or thaws through freezer.state and waits until the kernel says
/// FROZEN (tasks stop at their next trip through the kernel, meanwhile the
/// file reads FREEZING). A freeze that does not finish in time is undone.
pub fn set_frozen(dir: &CgroupDir, frozen: bool, timeout: Duration) -> Result<(), Error> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    dir.write("freezer.state", want)?;
    let done = wait_until(timeout, || {
        Ok(dir.read_string("freezer.state")?.trim() == want)
    })?;
    if done {
        return Ok(());
    }
    let now = dir.read_string("freezer.state").unwrap_or_default();
    if frozen {
        let _ = dir.write("freezer.state", "THAWED");
    }
    Err(Error::new(
        protocol::ErrorKind::Timeout,
        format!(
            "{} still reads {:?} after {timeout:?} (wanted {want}){}",
            dir.file("freezer.state").display(),
            now.trim(),
            if frozen {
                "; thawed the group again"
            } else {
                ""
            }
        ),
    ))
}

pub fn is_frozen(dir: &CgroupDir) -> Result<bool, Error> {
    Ok(dir.read_string("freezer.state")?.trim() == "FROZEN")
}
