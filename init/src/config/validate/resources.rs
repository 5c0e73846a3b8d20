//! `linux.resources`: value ranges the cgroup files accept, so that a bad
//! limit is refused before any group is made. Zero values that runc reads
//! as "not set" (cpu shares/quota/period) are accepted as such.

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources};

use super::{err, Check};
use crate::config::error::{field, index, key, ConfigError};
use crate::config::syntax;

const AT: &str = "linux.resources";

pub(super) fn resources(r: &LinuxResources) -> Check {
    if let Some(m) = r.memory() {
        memory(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c)?;
    }
    if let Some(p) = r.pids() {
        if p.limit() < -1 {
            return err(
                format!("{AT}.pids.limit"),
                format!(
                    "must be -1 (no limit) or a count of at least 0, got {}",
                    p.limit()
                ),
            );
        }
    }
    for (i, d) in r.devices().iter().flatten().enumerate() {
        device_rule(d, &index(&field(AT, "devices"), i))?;
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    rdma(r)?;
    unified(r)
}

/// Byte limits: -1 is "unlimited", anything else a count of bytes. swap is
/// memory+swap (cgroup v1's memsw), so it cannot be below the memory limit.
fn memory(m: &LinuxMemory) -> Check {
    let at = field(AT, "memory");
    let limits = [
        ("limit", m.limit()),
        ("reservation", m.reservation()),
        ("swap", m.swap()),
        ("kernel", m.kernel()),
        ("kernelTCP", m.kernel_tcp()),
    ];
    for (name, value) in limits {
        if let Some(v) = value.filter(|v| *v < -1) {
            return err(
                field(&at, name),
                format!("must be -1 (unlimited) or a byte count of at least 0, got {v}"),
            );
        }
    }
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
        if limit > 0 && swap > 0 && swap < limit {
            return err(
                field(&at, "swap"),
                format!(
                    "memory+swap limit {swap} is below the memory limit {limit} \
                     (swap counts memory plus swap)"
                ),
            );
        }
    }
    // u64::MAX is -1 read as unsigned: runc's "not set".
    if let Some(s) = m.swappiness().filter(|s| *s > 100 && *s != u64::MAX) {
        return err(
            field(&at, "swappiness"),
            format!("must be between 0 and 100, got {s}"),
        );
    }
    Ok(())
}

/// CPU: the kernel's ranges (cpu.shares 2..262144; cfs quota >= 1ms or -1;
/// period 1ms..1s), burst <= quota (config-linux.md MUST), rt runtime <=
/// rt period, idle 0 or 1, and the cpuset list syntax.
fn cpu(c: &LinuxCpu) -> Check {
    let at = field(AT, "cpu");
    if let Some(s) = c.shares().filter(|s| *s != 0 && !(2..=262_144).contains(s)) {
        return err(
            field(&at, "shares"),
            format!("must be between 2 and 262144, got {s}"),
        );
    }
    if let Some(q) = c.quota().filter(|q| *q < -1 || (1..1000).contains(q)) {
        return err(
            field(&at, "quota"),
            format!("must be -1 (no limit) or at least 1000 microseconds, got {q}"),
        );
    }
    if let Some(p) = c
        .period()
        .filter(|p| *p != 0 && !(1000..=1_000_000).contains(p))
    {
        return err(
            field(&at, "period"),
            format!("must be between 1000 and 1000000 microseconds, got {p}"),
        );
    }
    if let (Some(b), Some(q)) = (c.burst(), c.quota()) {
        if q > 0 && b > q as u64 {
            return err(
                field(&at, "burst"),
                format!("{b} must not exceed quota {q}"),
            );
        }
    }
    realtime(c, &at)?;
    if let Some(i) = c.idle().filter(|i| *i != 0 && *i != 1) {
        return err(field(&at, "idle"), format!("must be 0 or 1, got {i}"));
    }
    for (name, list) in [("cpus", c.cpus()), ("mems", c.mems())] {
        if let Some(list) = list {
            syntax::cpu_list(list).map_err(|r| ConfigError::new(field(&at, name), r))?;
        }
    }
    Ok(())
}

fn realtime(c: &LinuxCpu, at: &str) -> Check {
    if let Some(r) = c.realtime_runtime().filter(|r| *r < -1) {
        return err(
            field(at, "realtimeRuntime"),
            format!("must be -1 (no limit) or at least 0, got {r}"),
        );
    }
    if let (Some(r), Some(p)) = (c.realtime_runtime(), c.realtime_period()) {
        if r > 0 && p > 0 && r as u64 > p {
            return err(
                field(at, "realtimeRuntime"),
                format!("{r} must not exceed realtimePeriod {p}"),
            );
        }
    }
    Ok(())
}

/// A device cgroup rule: access is made of r, w and m; numbers are device
/// numbers or -1 (runc's "any", like leaving them out).
fn device_rule(d: &LinuxDeviceCgroup, at: &str) -> Check {
    for (name, value) in [("major", d.major()), ("minor", d.minor())] {
        if let Some(v) = value.filter(|v| *v < -1) {
            return err(field(at, name), format!("must be a device number, got {v}"));
        }
    }
    if let Some(access) = d.access() {
        let mut seen = String::new();
        for ch in access.chars() {
            if !"rwm".contains(ch) || seen.contains(ch) {
                return err(
                    field(at, "access"),
                    format!("{access:?} must be made of r, w and m, each at most once"),
                );
            }
            seen.push(ch);
        }
    }
    Ok(())
}

/// Each weightDevice entry MUST give weight or leafWeight.
fn block_io(b: &LinuxBlockIo) -> Check {
    let at = field(AT, "blockIO");
    for (i, w) in b.weight_device().iter().flatten().enumerate() {
        if w.weight().is_none() && w.leaf_weight().is_none() {
            return err(
                index(&field(&at, "weightDevice"), i),
                "must set weight or leafWeight",
            );
        }
    }
    Ok(())
}

/// Each rdma entry MUST give hcaHandles or hcaObjects.
fn rdma(r: &LinuxResources) -> Check {
    let Some(map) = r.rdma() else {
        return Ok(());
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let entry = &map[name];
        if entry.hca_handles().is_none() && entry.hca_objects().is_none() {
            return err(
                key(&field(AT, "rdma"), name),
                "must set hcaHandles or hcaObjects",
            );
        }
    }
    Ok(())
}

/// `unified` keys are cgroup v2 file names, CONTROLLER.PARAMETER, never a
/// path (runc's rule; a '/' could reach outside the container's group).
fn unified(r: &LinuxResources) -> Check {
    let Some(map) = r.unified() else {
        return Ok(());
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let dot = name.find('.');
        if name.contains('/') || !matches!(dot, Some(d) if d > 0 && d + 1 < name.len()) {
            return err(
                key(&field(AT, "unified"), name),
                "must be a cgroup file name like memory.high (CONTROLLER.PARAMETER, no '/')",
            );
        }
    }
    Ok(())
}
