//! cgroup v1 memory: memory.limit_in_bytes, memory.soft_limit_in_bytes,
//! memory.memsw.limit_in_bytes, memory.swappiness, memory.oom_control.

use super::Backend;
use crate::limits::{from_read, show, v1_value, validate};
use cgroupfs::{CgroupDir, Version};
use protocol::memory::{HugepageLimit, Limit, MemoryLimits, MemoryStat};
use protocol::Error;

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";
const SOFT: &str = "memory.soft_limit_in_bytes";
const SWAPPINESS: &str = "memory.swappiness";
const OOM_CONTROL: &str = "memory.oom_control";

pub struct V1 {
    /// The memory hierarchy's mount.
    root: std::path::PathBuf,
    base: CgroupDir,
}

impl V1 {
    pub fn new(root: std::path::PathBuf, base: CgroupDir) -> Self {
        V1 { root, base }
    }

    /// Swap accounting is on when the kernel shows the memsw files.
    fn has_memsw(&self, dir: &CgroupDir) -> bool {
        dir.has_file(MEMSW)
    }

    /// Writes memory and memory+swap limits in the order the kernel accepts
    /// (memsw must stay >= limit at every step), as runc's setMemoryAndSwap:
    /// when the new swap is unlimited or above the current limit, memsw goes
    /// first (raising); otherwise the limit goes first (lowering).
    fn write_limit_and_swap(
        &self,
        group: &str,
        dir: &CgroupDir,
        limit: Option<Limit>,
        swap: Option<Limit>,
    ) -> Result<(), Error> {
        // runc: memory -1 with swap unset means swap -1 too.
        let swap = match (limit, swap) {
            (Some(Limit::Max), None) if self.has_memsw(dir) => Some(Limit::Max),
            _ => swap,
        };
        match (limit, swap) {
            (Some(l), Some(s)) => {
                let cur = dir.read_u64(LIMIT)?;
                let raising = match s {
                    Limit::Max => true,
                    Limit::Value(v) => cur < v,
                };
                if raising {
                    self.write_swap(group, dir, s)?;
                    self.write_limit(group, dir, l)
                } else {
                    self.write_limit(group, dir, l)?;
                    self.write_swap(group, dir, s)
                }
            }
            (Some(l), None) => self.write_limit(group, dir, l),
            (None, Some(s)) => self.write_swap(group, dir, s),
            (None, None) => Ok(()),
        }
    }

    fn write_limit(&self, group: &str, dir: &CgroupDir, l: Limit) -> Result<(), Error> {
        dir.write(LIMIT, &v1_value(l)).map_err(|e| match e.errno {
            Some(libc::EINVAL) => Error {
                message: format!(
                    "{}; the memory limit {} of group {group} must not exceed its memory+swap limit (raise --swap with it)",
                    e.message,
                    show(l)
                ),
                ..e
            },
            Some(libc::EBUSY) => Error {
                kind: protocol::ErrorKind::Conflict,
                message: format!(
                    "{}; group {group} uses more than {} and the kernel could not reclaim enough",
                    e.message,
                    show(l)
                ),
                ..e
            },
            _ => e,
        })
    }

    fn write_swap(&self, group: &str, dir: &CgroupDir, s: Limit) -> Result<(), Error> {
        dir.write(MEMSW, &v1_value(s)).map_err(|e| match e.errno {
            Some(libc::EINVAL) => Error {
                message: format!(
                    "{}; the memory+swap limit {} of group {group} must be at least its memory limit",
                    e.message,
                    show(s)
                ),
                ..e
            },
            _ => e,
        })
    }
}

impl Backend for V1 {
    fn version(&self) -> Version {
        Version::V1
    }

    fn base(&self) -> &CgroupDir {
        &self.base
    }

    fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn prepare_base(&self) -> Result<(), Error> {
        self.base.create_all()
    }

    fn check(&self, group: &str, limits: &MemoryLimits) -> Result<(), Error> {
        validate(group, limits)?;
        if limits.swap.is_some() && !self.has_memsw(&self.base) {
            return Err(Error::unsupported(format!(
                "--swap for group {group}: this kernel has no swap accounting ({} is missing; boot with swapaccount=1)",
                self.base.file(MEMSW).display()
            )));
        }
        Ok(())
    }

    fn create(&self, _group: &str, _parent: &CgroupDir, dir: &CgroupDir) -> Result<bool, Error> {
        dir.create()
    }

    /// Only where hugetlb is mounted with memory (the base has its files).
    fn check_hugepages(&self, limits: &[HugepageLimit]) -> Result<(), Error> {
        for h in limits {
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size);
            if !self.base.has_file(&file) && !CgroupDir::new(&self.root).has_file(&file) {
                return Err(Error::unsupported(format!(
                    "linux.resources.hugepageLimits ({}): hugetlb is not in this host's cgroup v1 memory hierarchy (no {file} there), and memory-controller manages no other hierarchy yet",
                    h.page_size
                )));
            }
        }
        Ok(())
    }

    fn apply_hugepages(&self, dir: &CgroupDir, limits: &[HugepageLimit]) -> Result<(), Error> {
        for h in limits {
            dir.write(
                &format!("hugetlb.{}.limit_in_bytes", h.page_size),
                &h.limit.to_string(),
            )?;
        }
        Ok(())
    }

    fn apply(&self, group: &str, dir: &CgroupDir, l: &MemoryLimits) -> Result<(), Error> {
        self.write_limit_and_swap(group, dir, l.limit, l.swap)?;
        if let Some(r) = l.reservation {
            dir.write(SOFT, &v1_value(r))?;
        }
        if let Some(s) = l.swappiness {
            dir.write(SWAPPINESS, &s.to_string())?;
        }
        if let Some(d) = l.disable_oom_killer {
            dir.write(OOM_CONTROL, if d { "1" } else { "0" })?;
        }
        Ok(())
    }

    fn read_limits(&self, dir: &CgroupDir) -> Result<MemoryLimits, Error> {
        let swap = if self.has_memsw(dir) {
            Some(from_read(dir.read_limit(MEMSW)?))
        } else {
            None
        };
        Ok(MemoryLimits {
            limit: Some(from_read(dir.read_limit(LIMIT)?)),
            reservation: Some(from_read(dir.read_limit(SOFT)?)),
            swap,
            swappiness: Some(dir.read_u64(SWAPPINESS)?),
            disable_oom_killer: Some(dir.read_key(OOM_CONTROL, "oom_kill_disable")? != 0),
        })
    }

    fn usage(&self, dir: &CgroupDir) -> Result<u64, Error> {
        // Hierarchical: v1 with use_hierarchy (always on in current kernels).
        dir.read_u64("memory.usage_in_bytes")
    }

    fn stat(&self, dir: &CgroupDir) -> Result<MemoryStat, Error> {
        // Each account's files are read once: usage and peak are the
        // memory account's, swap what memsw (memory + swap) has beyond it.
        let accounts = accounts(dir)?;
        let account = |name: &str| accounts.iter().find(|(n, _)| n == name).map(|(_, a)| a);
        let memory = account("memory").ok_or_else(|| {
            Error::internal(format!(
                "{}: no memory.usage_in_bytes",
                dir.path().display()
            ))
        })?;
        Ok(MemoryStat {
            id: String::new(),
            limit_bytes: dir.read_limit(LIMIT)?,
            usage_bytes: memory.usage,
            peak_bytes: memory.max,
            swap_usage_bytes: account("memsw").map(|s| s.usage.saturating_sub(memory.usage)),
            oom_events: 0,
            oom_kills: dir.read_key(OOM_CONTROL, "oom_kill")?,
            pids: dir.procs()?,
            counters: super::stat_counters(dir)?,
            accounts,
        })
    }

    fn kernel_counts_oom_events(&self) -> bool {
        false
    }

    fn oom_counters(&self, dir: &CgroupDir) -> Result<(Option<u64>, u64), Error> {
        Ok((None, dir.read_key(OOM_CONTROL, "oom_kill")?))
    }
}

/// The v1 accounts the kernel keeps for the group (`memory`, `memsw` with
/// swap accounting on, `kmem` and `kmem.tcp` where built in), as runc's
/// stats report them.
fn accounts(dir: &CgroupDir) -> Result<Vec<(String, protocol::memory::Account)>, Error> {
    let mut out = vec![];
    for name in ["memory", "memory.memsw", "memory.kmem", "memory.kmem.tcp"] {
        if !dir.has_file(&format!("{name}.usage_in_bytes")) {
            continue;
        }
        let read = |what: &str| dir.read_u64(&format!("{name}.{what}"));
        let account = protocol::memory::Account {
            usage: read("usage_in_bytes")?,
            max: read("max_usage_in_bytes")?,
            limit: read("limit_in_bytes")?,
            failcnt: read("failcnt")?,
        };
        let short = name.strip_prefix("memory.").unwrap_or(name);
        out.push((short.to_string(), account));
    }
    Ok(out)
}
