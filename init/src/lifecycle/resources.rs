//! linux.resources -> the controllers' own limit types.

use oci_spec::runtime::{LinuxDeviceType, LinuxResources};
use protocol::cpu::{BlockIo, CpuLimits, DeviceRate, DeviceRule, DeviceWeight};
use protocol::memory::{Limit, MemoryLimits};
use protocol::Error;

fn limit(v: i64) -> Limit {
    if v < 0 {
        Limit::Max
    } else {
        Limit::Value(v as u64)
    }
}

/// A value runc takes 0 for as "not set" (it writes a cgroup file only
/// for a non-zero one): docker sends `cpu.shares: 0` and `blockIO.weight:
/// 0` for every container that sets neither, and `update --resources`
/// sends whole objects with zeros for what stays as it is.
fn set<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
    v.filter(|v| *v != T::default())
}

pub fn memory(r: Option<&LinuxResources>) -> MemoryLimits {
    let Some(m) = r.and_then(|r| r.memory().as_ref()) else {
        return MemoryLimits::default();
    };
    MemoryLimits {
        limit: set(m.limit()).map(limit),
        reservation: set(m.reservation()).map(limit),
        swap: set(m.swap()).map(limit),
        swappiness: m.swappiness(),
        disable_oom_killer: m.disable_oom_killer(),
    }
}

pub fn cpu(r: Option<&LinuxResources>) -> CpuLimits {
    let mut out = CpuLimits::default();
    let Some(r) = r else { return out };
    if let Some(c) = r.cpu() {
        out.shares = set(c.shares());
        out.quota_us = set(c.quota()).map(limit);
        out.period_us = set(c.period());
        out.burst_us = c.burst();
        out.cpus = set(c.cpus().clone());
        out.mems = set(c.mems().clone());
        out.idle = c.idle().map(|i| i != 0);
    }
    if let Some(p) = r.pids() {
        out.pids_max = set(Some(p.limit())).map(limit);
    }
    out
}

/// The devices cgroup's rules: the config's, in order, then the ones every
/// container gets, as runc appends them (its AllowedDevices): mknod of any
/// node (opening one is what the rules govern), the default devices of
/// config-linux.md, the pty devices and /dev/net/tun. Fifos (`p`) are not
/// devices to the kernel's devices cgroup: their rules are left out.
pub fn devices(r: Option<&LinuxResources>) -> Vec<DeviceRule> {
    let rule = |allow, kind, major, minor, access: &str| DeviceRule {
        allow,
        kind,
        major,
        minor,
        access: access.to_string(),
    };
    let mut out: Vec<DeviceRule> = r
        .and_then(|r| r.devices().as_ref())
        .into_iter()
        .flatten()
        .filter_map(|d| {
            let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::P => return None,
            };
            let access = d.access().as_deref().unwrap_or("rwm");
            Some(rule(d.allow(), kind, d.major(), d.minor(), access))
        })
        .collect();
    out.extend([
        rule(true, 'c', None, None, "m"),
        rule(true, 'b', None, None, "m"),
        rule(true, 'c', Some(1), Some(3), "rwm"),
        rule(true, 'c', Some(1), Some(8), "rwm"),
        rule(true, 'c', Some(1), Some(7), "rwm"),
        rule(true, 'c', Some(5), Some(0), "rwm"),
        rule(true, 'c', Some(1), Some(5), "rwm"),
        rule(true, 'c', Some(1), Some(9), "rwm"),
        rule(true, 'c', Some(136), None, "rwm"),
        rule(true, 'c', Some(5), Some(2), "rwm"),
        rule(true, 'c', Some(10), Some(200), "rwm"),
    ]);
    out
}

/// linux.resources.hugepageLimits, as memory-controller takes them.
pub fn hugepages(r: Option<&LinuxResources>) -> Vec<protocol::memory::HugepageLimit> {
    r.and_then(|r| r.hugepage_limits().as_ref())
        .into_iter()
        .flatten()
        .map(|h| protocol::memory::HugepageLimit {
            page_size: h.page_size().clone(),
            limit: h.limit().max(0) as u64,
        })
        .collect()
}

/// linux.resources.blockIO, when it sets anything.
pub fn block_io(r: Option<&LinuxResources>) -> Option<BlockIo> {
    let b = r?.block_io().as_ref()?;
    let rates = |v: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| -> Vec<DeviceRate> {
        v.iter()
            .flatten()
            .map(|d| DeviceRate {
                major: d.major(),
                minor: d.minor(),
                rate: d.rate(),
            })
            .collect()
    };
    let out = BlockIo {
        weight: set(b.weight()),
        leaf_weight: set(b.leaf_weight()),
        weight_device: b
            .weight_device()
            .iter()
            .flatten()
            .filter_map(|d| {
                let (weight, leaf_weight) = (set(d.weight()), set(d.leaf_weight()));
                (weight.is_some() || leaf_weight.is_some()).then(|| DeviceWeight {
                    major: d.major(),
                    minor: d.minor(),
                    weight,
                    leaf_weight,
                })
            })
            .collect(),
        throttle_read_bps: rates(b.throttle_read_bps_device()),
        throttle_write_bps: rates(b.throttle_write_bps_device()),
        throttle_read_iops: rates(b.throttle_read_iops_device()),
        throttle_write_iops: rates(b.throttle_write_iops_device()),
    };
    (out != BlockIo::default()).then_some(out)
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
    // Kernel memory limits: deprecated by Linux (v1 memory.kmem.*), and
    // not set by memory-controller; refused rather than ignored.
    if let Some(m) = r.memory() {
        if set(m.kernel()).is_some() {
            return refuse("memory.kernel (a kernel memory limit, deprecated by Linux)");
        }
        if set(m.kernel_tcp()).is_some() {
            return refuse("memory.kernelTCP");
        }
        // The kernel accounts hierarchically, always: `true` is what there
        // is, `false` cannot be had.
        if m.use_hierarchy() == Some(false) {
            return refuse("memory.useHierarchy false (the kernel always accounts hierarchically)");
        }
    }
    // A real-time budget for the group (v1 cpu.rt_runtime_us) needs one in
    // every parent too; until cpu-controller hands them out, refused.
    if let Some(c) = r.cpu() {
        if set(c.realtime_runtime()).is_some() {
            return refuse("cpu.realtimeRuntime");
        }
        if set(c.realtime_period()).is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    /// What docker 20.10 sends for a container that sets no limit: zeros
    /// that runc takes as "not set", as they are taken here.
    #[test]
    fn zeros_are_not_set_as_runc_has_them() {
        let r = resources(
            r#"{"cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
                "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
                "pids": {"limit": 0},
                "blockIO": {"weight": 0, "leafWeight": 0,
                            "weightDevice": [{"major": 8, "minor": 0, "weight": 0}]}}"#,
        );
        assert_eq!(cpu(Some(&r)), CpuLimits::default());
        assert_eq!(memory(Some(&r)), MemoryLimits::default());
        assert_eq!(block_io(Some(&r)), None);
        assert!(unsupported(Some(&r)).is_ok());
    }

    /// Values other than zero go through, "no limit" (-1) included.
    #[test]
    fn set_values_go_through() {
        let r = resources(
            r#"{"cpu": {"shares": 512, "quota": -1, "period": 50000, "cpus": "0"},
                "memory": {"limit": 67108864, "swap": -1},
                "pids": {"limit": -1},
                "blockIO": {"weight": 300}}"#,
        );
        let c = cpu(Some(&r));
        assert_eq!(c.shares, Some(512));
        assert_eq!(c.quota_us, Some(Limit::Max));
        assert_eq!(c.period_us, Some(50000));
        assert_eq!(c.cpus.as_deref(), Some("0"));
        assert_eq!(c.pids_max, Some(Limit::Max));
        let m = memory(Some(&r));
        assert_eq!(m.limit, Some(Limit::Value(67108864)));
        assert_eq!(m.swap, Some(Limit::Max));
        assert_eq!(block_io(Some(&r)).unwrap().weight, Some(300));
        let kernel = resources(r#"{"memory": {"kernel": 1048576}}"#);
        assert!(unsupported(Some(&kernel)).is_err());
    }
}
