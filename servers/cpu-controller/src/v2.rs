//! The cgroup v2 interface files: cpu.weight, cpu.max, cpu.max.burst,
//! cpu.idle, cpu.stat, cgroup.freeze / cgroup.events, and enabling
//! controllers through cgroup.subtree_control.

use crate::common::{self, wait_until};
use crate::weight::{shares_to_weight, weight_to_shares};
use cgroupfs::CgroupDir;
use protocol::cpu::CpuLimits;
use protocol::memory::Limit;
use protocol::Error;
use std::time::Duration;

/// Makes `wanted` controllers available to the children of `dir` by writing
/// "+cpu +cpuset ..." to its cgroup.subtree_control (only the missing ones).
pub fn enable_controllers(dir: &CgroupDir, wanted: &[&str]) -> Result<(), Error> {
    if wanted.is_empty() {
        return Ok(());
    }
    let available = dir.read_string("cgroup.controllers")?;
    if let Some(c) = wanted
        .iter()
        .find(|c| !available.split_whitespace().any(|a| a == **c))
    {
        return Err(Error::unsupported(format!(
            "the {c} controller is not available in {} (it lists {:?}); enable it in the parent's cgroup.subtree_control",
            dir.file("cgroup.controllers").display(),
            available.trim()
        )));
    }
    let enabled = dir.read_string("cgroup.subtree_control")?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    dir.write("cgroup.subtree_control", &missing.join(" ")).map_err(|e| {
        let why = match e.errno {
            Some(libc::EBUSY) => " (cgroup v2 refuses to enable controllers for the children of a cgroup that has processes of its own; run the constellation from a cgroup whose parent delegates these controllers)",
            _ => "",
        };
        Error { message: format!("cannot enable {} for child cgroups: {}{why}", missing.join(" "), e.message), ..e }
    })
}

/// Puts our settings in a group directory back to a fresh cgroup's values
/// (every file that exists; controllers not enabled have none), thawed.
pub fn reset(dir: &CgroupDir) -> Result<(), Error> {
    for (file, value) in [
        ("cgroup.freeze", "0"),
        ("cpu.idle", "0"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("cpu.max.burst", "0"),
        ("pids.max", "max"),
        // empty: use the parent's cpus and mems again
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
    ] {
        if dir.has_file(file) {
            dir.write(file, value)?;
        }
    }
    Ok(())
}

/// Writes the cpu controller's settings. Shares become cpu.weight.
pub fn apply_cpu(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    if l.idle == Some(false) {
        common::write_idle(dir, false)?;
    }
    if let Some(s) = l.shares {
        dir.write("cpu.weight", &shares_to_weight(s).to_string())?;
    }
    apply_max(dir, l)?;
    if l.idle == Some(true) {
        common::write_idle(dir, true)?;
    }
    Ok(())
}

/// cpu.max holds "QUOTA PERIOD" in one file, so a change to one keeps the
/// other as the kernel has it. Burst is written before and, if the kernel
/// refused it against the old quota, again after (as runc does).
fn apply_max(dir: &CgroupDir, l: &CpuLimits) -> Result<(), Error> {
    let mut burst_later = None;
    if let Some(b) = l.burst_us {
        common::require_file(dir, "cpu.max.burst", "--burst (CFS burst needs Linux 5.14)")?;
        match dir.write("cpu.max.burst", &b.to_string()) {
            Err(e) if e.errno == Some(libc::EINVAL) && l.quota_us.is_some() => {
                burst_later = Some(b)
            }
            r => r?,
        }
    }
    if l.quota_us.is_some() || l.period_us.is_some() {
        let (cur_quota, cur_period) = read_max(dir)?;
        let quota = match l.quota_us.unwrap_or(cur_quota) {
            Limit::Max => "max".to_string(),
            Limit::Value(q) => q.to_string(),
        };
        let period = l.period_us.unwrap_or(cur_period);
        dir.write("cpu.max", &format!("{quota} {period}"))?;
    }
    if let Some(b) = burst_later {
        dir.write("cpu.max.burst", &b.to_string())?;
    }
    Ok(())
}

/// Parses cpu.max: "max 100000" or "20000 100000".
fn read_max(dir: &CgroupDir) -> Result<(Limit, u64), Error> {
    let text = dir.read_string("cpu.max")?;
    let bad = || {
        Error::internal(format!(
            "{} holds {:?}, not \"QUOTA PERIOD\"",
            dir.file("cpu.max").display(),
            text.trim()
        ))
    };
    let mut it = text.split_whitespace();
    let quota = match it.next().ok_or_else(bad)? {
        "max" => Limit::Max,
        q => Limit::Value(q.parse().map_err(|_| bad())?),
    };
    let period = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    Ok((quota, period))
}

/// The cpu controller's settings as the kernel holds them. cpu.weight is
/// reported in shares: the requested shares when they convert to the weight
/// the kernel holds, else the largest shares value with that weight (which
/// gives 1024 for the default weight 100).
pub fn read_cpu(
    dir: &CgroupDir,
    requested_shares: Option<u64>,
    out: &mut CpuLimits,
) -> Result<(), Error> {
    let weight = dir.read_u64("cpu.weight")?;
    out.shares = Some(match requested_shares {
        Some(s) if shares_to_weight(s) == weight => s,
        _ => weight_to_shares(weight),
    });
    let (quota, period) = read_max(dir)?;
    out.quota_us = Some(quota);
    out.period_us = Some(period);
    if dir.has_file("cpu.max.burst") {
        out.burst_us = Some(dir.read_u64("cpu.max.burst")?);
    }
    if dir.has_file("cpu.idle") {
        out.idle = Some(dir.read_u64("cpu.idle")? == 1);
    }
    Ok(())
}

/// Everything cpu.stat says, in microseconds: (usage, user, system,
/// nr_periods, nr_throttled, throttled).
pub fn cpu_stat(dir: &CgroupDir) -> Result<[u64; 6], Error> {
    let stat = dir.read_keyed("cpu.stat")?;
    let key = |k: &str| {
        stat.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    };
    Ok([
        key("usage_usec"),
        key("user_usec"),
        key("system_usec"),
        key("nr_periods"),
        key("nr_throttled"),
        key("throttled_usec"),
    ])
}

/// Freezes or thaws through cgroup.freeze and waits until cgroup.events
/// reports the new state ("frozen 1" once every task has stopped).
pub fn set_frozen(dir: &CgroupDir, frozen: bool, timeout: Duration) -> Result<(), Error> {
    dir.write("cgroup.freeze", if frozen { "1" } else { "0" })?;
    let done = wait_until(timeout, || Ok(is_frozen(dir)? == frozen))?;
    if done {
        return Ok(());
    }
    if frozen {
        let _ = dir.write("cgroup.freeze", "0");
    }
    Err(Error::new(
        protocol::ErrorKind::Timeout,
        format!(
            "{} did not report \"frozen {}\" within {timeout:?}{}",
            dir.file("cgroup.events").display(),
            u8::from(frozen),
            if frozen {
                "; thawed the group again"
            } else {
                ""
            }
        ),
    ))
}

pub fn is_frozen(dir: &CgroupDir) -> Result<bool, Error> {
    Ok(dir.read_key("cgroup.events", "frozen")? == 1)
}
