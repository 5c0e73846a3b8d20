//! linux.resources -> the controllers' own limit types.

use oci_spec::runtime::LinuxResources;
use protocol::cpu::CpuLimits;
use protocol::memory::{Limit, MemoryLimits};
use protocol::Error;

fn limit(v: i64) -> Limit {
    if v < 0 {
        Limit::Max
    } else {
        Limit::Value(v as u64)
    }
}

pub fn memory(r: Option<&LinuxResources>) -> MemoryLimits {
    let Some(m) = r.and_then(|r| r.memory().as_ref()) else {
        return MemoryLimits::default();
    };
    MemoryLimits {
        limit: m.limit().map(limit),
        reservation: m.reservation().map(limit),
        swap: m.swap().map(limit),
        swappiness: m.swappiness(),
        disable_oom_killer: m.disable_oom_killer(),
    }
}

pub fn cpu(r: Option<&LinuxResources>) -> CpuLimits {
    let mut out = CpuLimits::default();
    let Some(r) = r else { return out };
    if let Some(c) = r.cpu() {
        out.shares = c.shares();
        out.quota_us = c.quota().map(limit);
        out.period_us = c.period();
        out.burst_us = c.burst();
        out.cpus = c.cpus().clone();
        out.mems = c.mems().clone();
        out.idle = c.idle().map(|i| i != 0);
    }
    if let Some(p) = r.pids() {
        out.pids_max = Some(limit(p.limit()));
    }
    out
}

/// The parts of linux.resources we do not enforce yet, refused by name
/// rather than silently ignored.
pub fn unsupported(r: Option<&LinuxResources>) -> Result<(), Error> {
    let Some(r) = r else { return Ok(()) };
    let refuse = |what: &str| {
        Err(Error::unsupported(format!(
            "linux.resources.{what} is not supported yet by asterism's controllers"
        )))
    };
    if r.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_read_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
    }) {
        return refuse("blockIO");
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        return refuse("hugepageLimits");
    }
    // A real-time budget for the group (v1 cpu.rt_runtime_us) needs one in
    // every parent too; until cpu-controller hands them out, refused.
    if let Some(c) = r.cpu() {
        if c.realtime_runtime().is_some() {
            return refuse("cpu.realtimeRuntime");
        }
        if c.realtime_period().is_some() {
            return refuse("cpu.realtimePeriod");
        }
    }
    if r.network().is_some() {
        return refuse("network");
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty()) {
        return refuse("rdma");
    }
    if r.unified().as_ref().is_some_and(|v| !v.is_empty()) {
        return refuse("unified");
    }
    Ok(())
}
