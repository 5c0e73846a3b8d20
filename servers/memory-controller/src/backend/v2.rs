//! cgroup v2 memory: memory.max, memory.low, memory.swap.max, memory.current,
//! memory.peak, memory.events, memory.stat.

use super::Backend;
use crate::limits::{from_read, v2_swap_max, v2_swap_oci, v2_value, validate};
use cgroupfs::{CgroupDir, Version};
use protocol::memory::{HugepageLimit, Limit, MemoryLimits, MemoryStat};
use protocol::Error;
use std::path::PathBuf;

/// How group directories are made and removed. The kernel fills a new
/// cgroup with its interface files and lets rmdir remove them all; the unit
/// tests replace these with functions that do the same in a plain directory.
#[derive(Clone, Copy)]
pub struct DirOps {
    pub mkdir: fn(&CgroupDir) -> Result<bool, Error>,
    pub rmdir: fn(&CgroupDir) -> Result<(), Error>,
}

impl Default for DirOps {
    fn default() -> Self {
        DirOps {
            mkdir: CgroupDir::create,
            rmdir: CgroupDir::remove,
        }
    }
}

pub struct V2 {
    mount: PathBuf,
    base: CgroupDir,
    ops: DirOps,
}

impl V2 {
    pub fn new(mount: PathBuf, base: CgroupDir) -> Self {
        Self::with_ops(mount, base, DirOps::default())
    }

    /// For tests: a fake mount whose directories `ops` makes and removes.
    pub fn with_ops(mount: PathBuf, base: CgroupDir, ops: DirOps) -> Self {
        V2 { mount, base, ops }
    }

    /// Makes `dir`'s children get the memory controller: "+memory" in its
    /// cgroup.subtree_control, unless it is already there.
    fn enable_memory(&self, dir: &CgroupDir, what: &str) -> Result<(), Error> {
        let on = dir.read_string("cgroup.subtree_control")?;
        if on.split_whitespace().any(|c| c == "memory") {
            return Ok(());
        }
        let available = dir.read_string("cgroup.controllers")?;
        if !available.split_whitespace().any(|c| c == "memory") {
            return Err(Error::unsupported(format!(
                "the memory controller is not available in {what} {} (its cgroup.controllers is {:?}); enable it in the parent's cgroup.subtree_control",
                dir.path().display(),
                available.trim()
            )));
        }
        dir.write("cgroup.subtree_control", "+memory").map_err(|e| match e.errno {
            Some(libc::EBUSY) => Error {
                kind: protocol::ErrorKind::Conflict,
                message: format!(
                    "{}; {what} {} has processes of its own, and cgroup v2's no-internal-process rule forbids \
                     enabling memory for its children; move those processes into a child cgroup first",
                    e.message,
                    dir.path().display()
                ),
                ..e
            },
            _ => e,
        })
    }

    /// Directories from the mount down to the base's parent.
    fn ancestors_of_base(&self) -> Vec<CgroupDir> {
        let mut out = vec![];
        let mut cur = self.base.path().parent();
        while let Some(p) = cur {
            if !p.starts_with(&self.mount) {
                break;
            }
            out.push(CgroupDir::new(p));
            cur = p.parent();
        }
        out.reverse();
        out
    }

    fn read_swap(&self, dir: &CgroupDir, mem: Limit) -> Result<Option<Limit>, Error> {
        if !dir.has_file("memory.swap.max") {
            return Ok(None);
        }
        Ok(Some(v2_swap_oci(
            from_read(dir.read_limit("memory.swap.max")?),
            mem,
        )))
    }

    fn write_swap(&self, group: &str, dir: &CgroupDir, swap_max: Limit) -> Result<(), Error> {
        if dir.has_file("memory.swap.max") {
            return dir.write("memory.swap.max", &v2_value(swap_max));
        }
        // Without swap accounting, "unlimited" and "no swap" are what the
        // kernel does anyway (runc ignores them too); anything else is not.
        match swap_max {
            Limit::Max | Limit::Value(0) => Ok(()),
            Limit::Value(_) => Err(Error::unsupported(format!(
                "--swap for group {group}: this kernel has no swap accounting ({} is missing)",
                dir.file("memory.swap.max").display()
            ))),
        }
    }
}

impl Backend for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn base(&self) -> &CgroupDir {
        &self.base
    }

    fn root(&self) -> &std::path::Path {
        &self.mount
    }

    fn prepare_base(&self) -> Result<(), Error> {
        for d in self.ancestors_of_base() {
            self.enable_memory(&d, "cgroup")?;
        }
        (self.ops.mkdir)(&self.base)?;
        self.enable_memory(&self.base, "the constellation's base cgroup")
    }

    fn check(&self, group: &str, l: &MemoryLimits) -> Result<(), Error> {
        validate(group, l)?;
        if l.swappiness.is_some() {
            return Err(Error::unsupported(format!(
                "--swappiness for group {group}: cgroup v2 has no per-group swappiness (memory is on cgroup v2 on this host)"
            )));
        }
        if l.disable_oom_killer == Some(true) {
            return Err(Error::unsupported(format!(
                "--disable-oom-killer for group {group}: cgroup v2 cannot disable the OOM killer (memory is on cgroup v2 on this host)"
            )));
        }
        Ok(())
    }

    fn create(&self, group: &str, parent: &CgroupDir, dir: &CgroupDir) -> Result<bool, Error> {
        if parent != &self.base {
            self.enable_memory(parent, &format!("the parent group of {group},"))?;
        }
        (self.ops.mkdir)(dir)
    }

    /// hugetlb is a v2 controller of the same directories: it must be
    /// available at the mount's root.
    fn check_hugepages(&self, limits: &[HugepageLimit]) -> Result<(), Error> {
        if limits.is_empty() {
            return Ok(());
        }
        let root = CgroupDir::new(&self.mount);
        let available = root.read_string("cgroup.controllers")?;
        if !available.split_whitespace().any(|c| c == "hugetlb") {
            return Err(Error::unsupported(format!(
                "linux.resources.hugepageLimits: the hugetlb controller is not available on this host's cgroup v2 mount {} (its cgroup.controllers is {:?})",
                self.mount.display(),
                available.trim()
            )));
        }
        Ok(())
    }

    /// hugetlb delegated down to the group's parent, then the group's
    /// `hugetlb.<size>.max`.
    fn apply_hugepages(&self, dir: &CgroupDir, limits: &[HugepageLimit]) -> Result<(), Error> {
        let mut chain = vec![];
        let mut cur = dir.path().parent();
        while let Some(p) = cur.filter(|p| p.starts_with(&self.mount)) {
            chain.push(CgroupDir::new(p));
            cur = p.parent();
        }
        for d in chain.iter().rev() {
            let on = d.read_string("cgroup.subtree_control")?;
            if !on
                .split_whitespace()
                .any(|c| c.trim_start_matches('+') == "hugetlb")
            {
                d.write("cgroup.subtree_control", "+hugetlb")?;
            }
        }
        for h in limits {
            dir.write(
                &format!("hugetlb.{}.max", h.page_size),
                &h.limit.to_string(),
            )?;
        }
        Ok(())
    }

    fn apply(&self, group: &str, dir: &CgroupDir, l: &MemoryLimits) -> Result<(), Error> {
        let limit_now = match l.limit {
            Some(v) => v,
            None => from_read(dir.read_limit("memory.max")?),
        };
        // Swap first, then memory.max, as runc does.
        if let Some(s) = v2_swap_max(group, l.swap, l.limit, limit_now)? {
            self.write_swap(group, dir, s)?;
        }
        if let Some(m) = l.limit {
            dir.write("memory.max", &v2_value(m))?;
        }
        if let Some(r) = l.reservation {
            dir.write("memory.low", &v2_value(r))?;
        }
        Ok(())
    }

    fn read_limits(&self, dir: &CgroupDir) -> Result<MemoryLimits, Error> {
        let mem = from_read(dir.read_limit("memory.max")?);
        Ok(MemoryLimits {
            limit: Some(mem),
            reservation: Some(from_read(dir.read_limit("memory.low")?)),
            swap: self.read_swap(dir, mem)?,
            swappiness: None,
            disable_oom_killer: None,
        })
    }

    fn usage(&self, dir: &CgroupDir) -> Result<u64, Error> {
        dir.read_u64("memory.current")
    }

    fn stat(&self, dir: &CgroupDir) -> Result<MemoryStat, Error> {
        let usage = self.usage(dir)?;
        // memory.peak arrived in Linux 5.19; before it the only figure known
        // to have been reached is the current usage.
        let peak = if dir.has_file("memory.peak") {
            dir.read_u64("memory.peak")?
        } else {
            usage
        };
        let swap_usage_bytes = if dir.has_file("memory.swap.current") {
            Some(dir.read_u64("memory.swap.current")?)
        } else {
            None
        };
        let (oom, kills) = self.oom_counters(dir)?;
        Ok(MemoryStat {
            id: String::new(),
            limit_bytes: dir.read_limit("memory.max")?,
            usage_bytes: usage,
            peak_bytes: peak,
            swap_usage_bytes,
            oom_events: oom.unwrap_or(0),
            oom_kills: kills,
            pids: dir.procs()?,
            counters: super::stat_counters(dir)?,
            accounts: vec![],
        })
    }

    fn remove(&self, dir: &CgroupDir) -> Result<(), Error> {
        (self.ops.rmdir)(dir)
    }

    /// Through `ops` (a plain directory tree in the unit tests).
    fn remove_forced(&self, dir: &CgroupDir) -> Result<(), Error> {
        self.kill_all(dir)?;
        self.remove(dir)
    }

    /// The values of a fresh cgroup, swap first (as in apply).
    fn reset(&self, dir: &CgroupDir) -> Result<(), Error> {
        if dir.has_file("memory.swap.max") {
            dir.write("memory.swap.max", "max")?;
        }
        dir.write("memory.max", "max")?;
        dir.write("memory.low", "0")
    }

    fn kernel_counts_oom_events(&self) -> bool {
        true
    }

    fn oom_counters(&self, dir: &CgroupDir) -> Result<(Option<u64>, u64), Error> {
        let ev = dir.read_keyed("memory.events")?;
        let get = |k: &str| {
            ev.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| *v)
                .unwrap_or(0)
        };
        Ok((Some(get("oom")), get("oom_kill")))
    }
}
