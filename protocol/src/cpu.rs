//! cpu-controller: cpu, cpuacct, cpuset, pids and freezer cgroups.

use crate::memory::Limit;
use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Cpu;
impl Protocol for Cpu {
    const NAME: &'static str = "cpu-controller";
    type Request = CpuRequest;
    type Response = CpuResponse;
    type Event = CpuEvent;
}

/// CPU settings of a group. In `Create`, `None` leaves the kernel default;
/// in `Set`, `None` leaves the current value unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuLimits {
    /// v1 cpu.shares; on v2 converted to cpu.weight as the OCI spec and crun do.
    pub shares: Option<u64>,
    /// CFS quota per period in microseconds (Max = no quota).
    pub quota_us: Option<Limit>,
    pub period_us: Option<u64>,
    pub burst_us: Option<u64>,
    /// cpuset.cpus, like "0-1,3".
    pub cpus: Option<String>,
    /// cpuset.mems, like "0".
    pub mems: Option<String>,
    /// SCHED_IDLE for the group (cpu.idle).
    pub idle: Option<bool>,
    /// pids.max.
    pub pids_max: Option<Limit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuRequest {
    Create {
        id: String,
        parent: Option<String>,
        limits: CpuLimits,
    },
    Set {
        id: String,
        limits: CpuLimits,
    },
    Attach {
        id: String,
        pid: i32,
    },
    Stat {
        id: String,
    },
    List,
    Delete {
        id: String,
        force: bool,
    },
    Freeze {
        id: String,
    },
    Thaw {
        id: String,
    },
    /// The fds a new process uses to join the group's hierarchies by
    /// itself (see [`crate::cgroup`]); read-only, nothing is changed.
    JoinFds {
        id: String,
    },
    /// `Create` for a container's process that joins the groups by itself
    /// (init's Prepare): no parent, the limits are not read back, and the
    /// answer is what a `JoinFds` right after would give, fds included.
    /// One round trip instead of two, journaled under its key like
    /// `Create` (a retry answered from the journal opens fresh fds).
    CreateJoinable {
        id: String,
        limits: CpuLimits,
    },
    /// init's Prepare: `CreateJoinable`, at the config's
    /// `linux.cgroupsPath` when it names one (instead of `<base>/<id>`:
    /// relative to the cgroup of the process that started the
    /// constellation, or from the hierarchy's root when absolute, see
    /// [`crate::cgroup::cgroups_path_parts`]; missing parents are made, and
    /// removed at the server's stop once empty), with the container's
    /// device rules for the devices hierarchy (cgroup v1).
    CreateJoinableAt {
        id: String,
        cgroups_path: Option<String>,
        limits: CpuLimits,
        devices: Vec<DeviceRule>,
        /// `linux.resources.blockIO`: only a container that has it gets a
        /// group in the (v1) blkio hierarchy.
        block_io: Option<BlockIo>,
    },
    /// `update` of `linux.resources.blockIO`: the settings given are
    /// written over the group's (a per-device entry replaces the one for
    /// the same device, the others stay). On cgroup v1 only a group made
    /// with blockIO has a blkio directory to write to.
    SetBlockIo {
        id: String,
        block_io: BlockIo,
    },
}

/// `linux.resources.blockIO`, as the v1 blkio files take it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIo {
    /// 10..=1000 (blkio.weight, or blkio.bfq.weight under BFQ).
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
    pub weight_device: Vec<DeviceWeight>,
    pub throttle_read_bps: Vec<DeviceRate>,
    pub throttle_write_bps: Vec<DeviceRate>,
    pub throttle_read_iops: Vec<DeviceRate>,
    pub throttle_write_iops: Vec<DeviceRate>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceWeight {
    pub major: i64,
    pub minor: i64,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// A per-device limit: bytes or operations per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRate {
    pub major: i64,
    pub minor: i64,
    pub rate: u64,
}

/// One `linux.resources.devices` rule, as the devices cgroup takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a' (all), 'c' or 'b'.
    pub kind: char,
    /// None: every major (or minor) number.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of "rwm".
    pub access: String,
}

impl DeviceRule {
    /// `c 1:3 rwm`, `a *:* rwm`: the line devices.allow and devices.deny take.
    pub fn line(&self) -> String {
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// Refuses what the kernel would, naming the rule.
    pub fn check(&self) -> Result<(), crate::Error> {
        let bad = |why: &str| {
            Err(crate::Error::invalid(format!(
                "device rule {:?} ({}): {why}",
                self.line(),
                if self.allow { "allow" } else { "deny" }
            )))
        };
        if !matches!(self.kind, 'a' | 'b' | 'c') {
            return bad("the type must be a, b or c");
        }
        if self.access.is_empty() || !self.access.chars().all(|c| "rwm".contains(c)) {
            return bad("the access must be some of r, w and m");
        }
        if self.major.is_some_and(|v| v < 0) || self.minor.is_some_and(|v| v < 0) {
            return bad("device numbers are not negative");
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuGroup {
    pub id: String,
    pub parent: Option<String>,
    /// The limits as read back from the kernel.
    pub limits: CpuLimits,
    /// "v1" or "v2" per controller, like "cpu=v1 cpuset=v1 pids=v1 freezer=v1".
    pub backend: String,
    /// The group's directories on the host, one per hierarchy.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStat {
    pub id: String,
    pub usage_us: u64,
    pub user_us: u64,
    pub system_us: u64,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_us: u64,
    pub pids_current: u64,
    pub pids_max: Option<u64>,
    pub frozen: bool,
    pub pids: Vec<i32>,
    /// CPU time per CPU in nanoseconds: total, user and system
    /// (cgroup v1's cpuacct.usage_percpu{,_user,_sys}); empty on v2,
    /// which does not count per CPU.
    pub percpu_ns: Vec<u64>,
    pub percpu_user_ns: Vec<u64>,
    pub percpu_system_ns: Vec<u64>,
    /// The group's cpuset, where the cpuset controller is mounted.
    pub cpuset: Option<CpusetStat>,
    /// Block I/O done by the group, as the kernel counts it per device
    /// and operation, where blkio (v1) or io (v2) is mounted.
    pub block_io: Vec<BlockIoStat>,
}

/// cpuset.cpus and cpuset.mems (v2: their `.effective`), and on v1 the
/// group's other cpuset files with one number each (cpu_exclusive,
/// mem_hardwall, sched_load_balance, ...), by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpusetStat {
    pub cpus: Vec<u32>,
    pub mems: Vec<u32>,
    pub flags: Vec<(String, i64)>,
}

/// One figure of block I/O: `file` is what counted it (v1's
/// "throttle.io_service_bytes_recursive" or "throttle.io_serviced_recursive"),
/// `op` the operation as that file names it ("Read", "Write", "Sync",
/// "Async", "Discard", "Total").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIoStat {
    pub file: String,
    pub major: u64,
    pub minor: u64,
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuResponse {
    Created(CpuGroup),
    Updated(CpuGroup),
    Attached,
    Stat(CpuStat),
    List(Vec<CpuGroup>),
    Deleted,
    Frozen,
    Thawed,
    /// One fd per entry rides along, in order.
    JoinFds(Vec<crate::cgroup::CgroupJoin>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CpuEvent {
    FreezeChanged { id: String, frozen: bool },
}
