//! The two cgroup backends behind one trait, chosen at start from where the
//! memory controller is mounted on this host (a hybrid host may have memory
//! on v1 while cgroup2 exists with other controllers, or none).

pub mod v1;
pub mod v2;

use cgroupfs::{Base, CgroupDir, Hierarchies, Version};
use protocol::memory::{HugepageLimit, MemoryLimits, MemoryStat};
use protocol::Error;
use std::time::Duration;

/// What the service needs from a cgroup version.
pub trait Backend: Send + Sync {
    fn version(&self) -> Version;

    /// The constellation's base directory for memory groups.
    fn base(&self) -> &CgroupDir;

    /// The hierarchy's root as mounted here: where an absolute
    /// `linux.cgroupsPath` starts.
    fn root(&self) -> &std::path::Path;

    /// Creates the base directory and makes it able to hold memory groups
    /// (on v2: +memory in cgroup.subtree_control down to it).
    fn prepare_base(&self) -> Result<(), Error>;

    /// Refuses settings this version cannot apply, before anything is made.
    fn check(&self, group: &str, limits: &MemoryLimits) -> Result<(), Error>;

    /// Makes the group's directory under `parent`. Ok(true) when this call
    /// made it, Ok(false) when it already existed.
    fn create(&self, group: &str, parent: &CgroupDir, dir: &CgroupDir) -> Result<bool, Error>;

    /// Writes the settings that `limits` sets, in an order the kernel accepts.
    fn apply(&self, group: &str, dir: &CgroupDir, limits: &MemoryLimits) -> Result<(), Error>;

    /// Refuses hugepage limits this hierarchy cannot hold (its hugetlb
    /// controller is elsewhere), before anything is made.
    fn check_hugepages(&self, limits: &[HugepageLimit]) -> Result<(), Error>;

    /// Writes `linux.resources.hugepageLimits` to the group.
    fn apply_hugepages(&self, dir: &CgroupDir, limits: &[HugepageLimit]) -> Result<(), Error>;

    /// Every setting as the kernel holds it now.
    fn read_limits(&self, dir: &CgroupDir) -> Result<MemoryLimits, Error>;

    /// Current usage in bytes, children included.
    fn usage(&self, dir: &CgroupDir) -> Result<u64, Error>;

    /// The group's statistics. `id` is left empty; on versions where the
    /// kernel does not count OOM events (v1), `oom_events` is 0 and the
    /// service fills in its own count.
    fn stat(&self, dir: &CgroupDir) -> Result<MemoryStat, Error>;

    /// Does the kernel keep an OOM event counter (v2 memory.events `oom`)?
    fn kernel_counts_oom_events(&self) -> bool;

    /// (oom events if the kernel counts them, oom kills).
    fn oom_counters(&self, dir: &CgroupDir) -> Result<(Option<u64>, u64), Error>;

    /// Kills whatever is left (when asked) and removes the directory.
    fn remove(&self, dir: &CgroupDir) -> Result<(), Error> {
        dir.remove()
    }

    /// Puts this server's settings back to the kernel's defaults, for a
    /// cgroup v2 directory that cpu-controller still uses and so is kept.
    fn reset(&self, dir: &CgroupDir) -> Result<(), Error> {
        Err(Error::unsupported(format!(
            "keeping {} for another controller: only cgroup v2 shares group directories between servers",
            dir.path().display()
        )))
    }

    /// SIGKILLs every process in the group and below.
    fn kill_all(&self, dir: &CgroupDir) -> Result<(), Error> {
        dir.kill_all(Duration::from_secs(5))
    }

    /// `delete --force`: the usual group is already empty (its container
    /// has exited) and one rmdir removes it; only a busy one pays for
    /// killing what is left first.
    fn remove_forced(&self, dir: &CgroupDir) -> Result<(), Error> {
        if dir.try_remove()? {
            return Ok(());
        }
        self.kill_all(dir)?;
        self.remove(dir)
    }
}

/// Picks the backend for where memory is mounted, with `base` the
/// constellation's directory for the memory controller.
pub fn select(hier: &Hierarchies, base: &Base) -> Result<Box<dyn Backend>, Error> {
    let h = hier.get("memory")?;
    let dir = base.dir("memory")?;
    Ok(match h.version {
        Version::V1 => Box::new(v1::V1::new(h.mount.clone(), dir)),
        Version::V2 => Box::new(v2::V2::new(h.mount.clone(), dir)),
    })
}

/// The main memory.stat counters, in bytes or counts as the kernel gives them.
pub fn stat_counters(dir: &CgroupDir) -> Result<Vec<(String, u64)>, Error> {
    dir.read_keyed("memory.stat")
}
