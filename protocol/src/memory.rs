//! memory-controller: memory cgroups (v1 or v2, chosen per host).

use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Memory;
impl Protocol for Memory {
    const NAME: &'static str = "memory-controller";
    type Request = MemoryRequest;
    type Response = MemoryResponse;
    type Event = MemoryEvent;
}

/// A byte or count limit that can also be "no limit" (`max` in cgroup v2,
/// -1 in the OCI spec).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    Max,
    Value(u64),
}

/// Memory settings of a group. In `Create`, `None` leaves the kernel default;
/// in `Set`, `None` leaves the current value unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryLimits {
    /// Hard limit (v1 memory.limit_in_bytes, v2 memory.max).
    pub limit: Option<Limit>,
    /// Soft limit (v1 memory.soft_limit_in_bytes, v2 memory.low).
    pub reservation: Option<Limit>,
    /// Memory plus swap, as the OCI spec's `memory.swap` (v1
    /// memory.memsw.limit_in_bytes, v2 memory.swap.max = swap - limit).
    pub swap: Option<Limit>,
    /// 0..=100 (v1 only; v2 has no per-group swappiness).
    pub swappiness: Option<u64>,
    /// v1 memory.oom_control; v2 has no equivalent.
    pub disable_oom_killer: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryRequest {
    Create {
        id: String,
        parent: Option<String>,
        limits: MemoryLimits,
    },
    /// `check_before_update`: refuse a limit below current usage.
    Set {
        id: String,
        limits: MemoryLimits,
        check_before_update: bool,
    },
    Attach {
        id: String,
        pid: i32,
    },
    Stat {
        id: String,
    },
    List,
    /// `force` kills the group's processes first.
    Delete {
        id: String,
        force: bool,
    },
    /// The fds a new process uses to join the group by itself (see
    /// [`crate::cgroup`]); read-only, nothing is changed.
    JoinFds {
        id: String,
    },
    /// `Create` for a container's process that joins the group by itself
    /// (init's Prepare): no parent, the limits are not read back, and the
    /// answer is what a `JoinFds` right after would give, fds included.
    /// One round trip instead of two, journaled under its key like
    /// `Create` (a retry answered from the journal opens fresh fds).
    CreateJoinable {
        id: String,
        limits: MemoryLimits,
    },
    /// init's Prepare: `CreateJoinable`, at the config's
    /// `linux.cgroupsPath` when it names one (instead of `<base>/<id>`:
    /// relative to the cgroup of the process that started the
    /// constellation, or from the hierarchy's root when absolute, see
    /// [`crate::cgroup::cgroups_path_parts`]; missing parents are made, and
    /// removed at the server's stop once empty), with the container's
    /// `hugepageLimits`.
    CreateJoinableAt {
        id: String,
        cgroups_path: Option<String>,
        limits: MemoryLimits,
        hugepages: Vec<HugepageLimit>,
    },
}

/// One `linux.resources.hugepageLimits` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugepageLimit {
    /// As the kernel names it in hugetlb's files: "2MB", "1GB".
    pub page_size: String,
    /// Bytes.
    pub limit: u64,
}

/// A registered group as the server knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryGroup {
    pub id: String,
    pub parent: Option<String>,
    /// The limits as read back from the kernel.
    pub limits: MemoryLimits,
    /// "v1" or "v2".
    pub backend: String,
    /// The cgroup directory on the host.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStat {
    pub id: String,
    /// None = no limit.
    pub limit_bytes: Option<u64>,
    /// Includes the group's children (hierarchical accounting).
    pub usage_bytes: u64,
    pub peak_bytes: u64,
    pub swap_usage_bytes: Option<u64>,
    /// Times the group hit its limit and went OOM.
    pub oom_events: u64,
    /// Processes the OOM killer killed in this group.
    pub oom_kills: u64,
    /// Processes directly in the group.
    pub pids: Vec<i32>,
    /// The main memory.stat counters (anon, file, kernel, shmem, ...), bytes.
    pub counters: Vec<(String, u64)>,
    /// cgroup v1's other accounts, each as the kernel names its files
    /// ("memsw": memory and swap, "kmem": kernel memory, "kmem.tcp": TCP
    /// buffers), where the kernel has them; none on v2.
    pub accounts: Vec<(String, Account)>,
}

/// One v1 account's `<name>.usage_in_bytes`, `.max_usage_in_bytes`,
/// `.limit_in_bytes` and `.failcnt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub usage: u64,
    pub max: u64,
    pub limit: u64,
    pub failcnt: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryResponse {
    Created(MemoryGroup),
    Updated(MemoryGroup),
    Attached,
    Stat(MemoryStat),
    List(Vec<MemoryGroup>),
    Deleted,
    /// One fd per entry rides along, in order.
    JoinFds(Vec<crate::cgroup::CgroupJoin>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemoryEvent {
    /// The group went out of memory (and maybe killed a process).
    Oom {
        id: String,
        oom_events: u64,
        oom_kills: u64,
        at_unix_ms: u64,
    },
}
