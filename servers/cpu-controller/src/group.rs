//! One group across every hierarchy: make, configure, read, freeze, attach,
//! kill and remove its directories, choosing the v1 or v2 file for each
//! controller.

use crate::common;
use crate::layout::{Ctl, Layout, Mount};
use crate::{v1, v2};
use cgroupfs::{CgroupDir, Version};
use protocol::cpu::{BlockIo, BlockIoStat, CpuLimits, CpuStat, CpusetStat, DeviceRule};
use protocol::memory::Limit;
use protocol::Error;
use std::path::Path;
use std::time::Duration;

/// How long a freeze may take before it is undone and reported.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long killing a group's processes may take.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Creates the group `rel` in every hierarchy and applies `limits` and the
/// device rules; returns the directories it made, parents first. On any
/// failure every directory this call made (the group's, its parents', the
/// bases') is removed again, so a refused create leaves nothing behind.
/// With `unused` (a cgroupsPath), a group directory that was there already
/// must hold no process and no group (`place::check_unused`): checked only
/// where mkdir found one, rather than a statx per hierarchy first.
pub fn create(
    layout: &Layout,
    rel: &Path,
    limits: &CpuLimits,
    devices: &[DeviceRule],
    block_io: Option<&BlockIo>,
    unused: Option<&str>,
) -> Result<Vec<CgroupDir>, Error> {
    let mut made: Vec<CgroupDir> = vec![];
    let result = make_dirs(layout, rel, &mut made, unused)
        .and_then(|()| apply(layout, rel, limits))
        .and_then(|()| apply_devices(layout, rel, devices))
        .and_then(|()| match block_io {
            Some(b) => apply_block_io(layout, rel, b),
            None => Ok(()),
        });
    if let Err(e) = result {
        for dir in made.iter().rev() {
            if let Err(re) = layout.ops().rmdir(dir) {
                tracing::warn!("undoing a failed create: {re}");
            }
        }
        return Err(e);
    }
    Ok(made)
}

/// Makes whatever is missing of the group's directory and its parents (the
/// base, or a cgroupsPath's parents) in each hierarchy, parents first.
/// Re-running it on existing directories changes nothing: mkdir says
/// "already there", controllers are already enabled, cpusets already filled.
fn make_dirs(
    layout: &Layout,
    rel: &Path,
    made: &mut Vec<CgroupDir>,
    unused: Option<&str>,
) -> Result<(), Error> {
    for m in layout.mounts() {
        let group = m.dir(rel);
        m.places().make_with_parents(&group, |parent, d| {
            make_one(layout, m, parent, d, made, *d == group)?;
            match unused {
                Some(path) if *d == group && !made.contains(d) => {
                    cgroupfs::place::check_unused(d, path)
                }
                _ => Ok(()),
            }
        })?;
    }
    Ok(())
}

/// mkdir one cgroup under `parent`: on v2 the parent must first delegate our
/// controllers; on v1 a new cpuset must inherit cpus and mems.
fn make_one(
    layout: &Layout,
    m: &Mount,
    parent: &CgroupDir,
    dir: &CgroupDir,
    made: &mut Vec<CgroupDir>,
    group: bool,
) -> Result<(), Error> {
    if m.version == Version::V2 {
        v2::enable_controllers(parent, &m.v2_controllers())?;
    }
    let new = layout.ops().mkdir(dir)?;
    if new {
        made.push(dir.clone());
    }
    if m.version == Version::V1 && m.has(Ctl::Cpuset) {
        // The base clones its cpus and mems to its children (below).
        v1::init_cpuset(dir, parent, new)?;
        // The groups under the base, or under a cgroupsPath parent we
        // made, then start with its cpus and mems (the kernel copies them
        // at mkdir): four file operations less per container.
        if new && (*dir == m.base || !group) {
            v1::clone_cpuset_to_children(dir)?;
        }
    }
    Ok(())
}

/// `linux.resources.blockIO`, to the group's v1 blkio directory or v2 io
/// files (a host with neither was refused by `blkio::check`).
pub fn apply_block_io(layout: &Layout, rel: &Path, b: &BlockIo) -> Result<(), Error> {
    match layout.mount_of(Ctl::Blkio) {
        Some(m) if m.version == Version::V1 => crate::blkio::apply(&m.dir(rel), b),
        Some(m) => crate::blkio::apply_v2(&m.dir(rel), b),
        None => Ok(()),
    }
}

/// The device rules: written to the group's files in the v1 devices
/// hierarchy, or, on cgroup v2, attached to its directory as an eBPF
/// program.
pub fn apply_devices(layout: &Layout, rel: &Path, rules: &[DeviceRule]) -> Result<(), Error> {
    if rules.is_empty() {
        return Ok(());
    }
    if let Some(m) = layout.mount_of(Ctl::Devices) {
        return crate::devices::apply(&m.dir(rel), rules);
    }
    let Some(m) = layout.mounts().iter().find(|m| m.version == Version::V2) else {
        tracing::warn!(
            "no devices hierarchy and no cgroup v2 group here: the device rules of {} are not enforced",
            rel.display()
        );
        return Ok(());
    };
    let dir = m.dir(rel);
    let fd = std::fs::File::open(dir.path())
        .map_err(|e| Error::io(format!("open {}", dir.path().display()), &e))?;
    use std::os::fd::AsFd;
    crate::devices_bpf::attach(fd.as_fd(), rules, &dir.path().display().to_string())
}

/// Writes the given limits (None = leave as is), each in its hierarchy.
pub fn apply(layout: &Layout, rel: &Path, l: &CpuLimits) -> Result<(), Error> {
    let cpu = l.shares.is_some()
        || l.quota_us.is_some()
        || l.period_us.is_some()
        || l.burst_us.is_some()
        || l.idle.is_some();
    if cpu {
        let m = layout.need(Ctl::Cpu, "--shares/--quota/--period/--burst/--idle")?;
        match m.version {
            Version::V1 => v1::apply_cpu(&m.dir(rel), l)?,
            Version::V2 => v2::apply_cpu(&m.dir(rel), l)?,
        }
    }
    if l.cpus.is_some() || l.mems.is_some() {
        let m = layout.need(Ctl::Cpuset, "--cpus/--mems")?;
        common::apply_cpuset(&m.dir(rel), l)?;
    }
    if l.pids_max.is_some() {
        let m = layout.need(Ctl::Pids, "--pids-max")?;
        common::apply_pids(&m.dir(rel), l)?;
    }
    Ok(())
}

/// The limits as the kernel holds them. `requested` lets v2 report the
/// shares that were asked for (cpu.weight alone loses them).
pub fn read_limits(layout: &Layout, rel: &Path, requested: &CpuLimits) -> Result<CpuLimits, Error> {
    let mut out = CpuLimits::default();
    if let Some(m) = layout.mount_of(Ctl::Cpu) {
        match m.version {
            Version::V1 => v1::read_cpu(&m.dir(rel), &mut out)?,
            Version::V2 => v2::read_cpu(&m.dir(rel), requested.shares, &mut out)?,
        }
    }
    if let Some(m) = layout.mount_of(Ctl::Cpuset) {
        common::read_cpuset(&m.dir(rel), &mut out)?;
    }
    if let Some(m) = layout.mount_of(Ctl::Pids) {
        out.pids_max = Some(common::read_pids_max(&m.dir(rel))?);
    }
    Ok(out)
}

/// Usage, throttling, pids and freezer state.
pub fn stat(layout: &Layout, rel: &Path, id: &str) -> Result<CpuStat, Error> {
    let cpu = layout.need(Ctl::Cpu, "stat")?;
    let cpu_dir = cpu.dir(rel);
    let (mut percpu_ns, mut percpu_user_ns, mut percpu_system_ns) = (vec![], vec![], vec![]);
    let (usage, user, system, periods, throttled, throttled_us) = match cpu.version {
        Version::V2 => {
            let s = v2::cpu_stat(&cpu_dir)?;
            (s[0], s[1], s[2], s[3], s[4], s[5])
        }
        Version::V1 => {
            let acct = layout.need(Ctl::Cpuacct, "CPU usage on cgroup v1")?;
            let acct_dir = acct.dir(rel);
            let (u, us, sy) = v1::usage(&acct_dir)?;
            percpu_ns = v1::percpu(&acct_dir, "cpuacct.usage_percpu")?;
            percpu_user_ns = v1::percpu(&acct_dir, "cpuacct.usage_percpu_user")?;
            percpu_system_ns = v1::percpu(&acct_dir, "cpuacct.usage_percpu_sys")?;
            let (p, t, tu) = v1::throttling(&cpu_dir)?;
            (u, us, sy, p, t, tu)
        }
    };
    let (pids_current, pids_max) = match layout.mount_of(Ctl::Pids) {
        Some(m) => {
            let d = m.dir(rel);
            let max = match common::read_pids_max(&d)? {
                Limit::Max => None,
                Limit::Value(n) => Some(n),
            };
            (d.read_u64("pids.current")?, max)
        }
        None => (0, None),
    };
    Ok(CpuStat {
        id: id.to_string(),
        usage_us: usage,
        user_us: user,
        system_us: system,
        nr_periods: periods,
        nr_throttled: throttled,
        throttled_us,
        pids_current,
        pids_max,
        frozen: is_frozen(layout, rel)?,
        pids: procs(layout, rel)?,
        percpu_ns,
        percpu_user_ns,
        percpu_system_ns,
        cpuset: cpuset_stat(layout, rel)?,
        block_io: block_io_stat(layout, rel)?,
    })
}

/// The group's cpuset as runc's stats show it.
fn cpuset_stat(layout: &Layout, rel: &Path) -> Result<Option<CpusetStat>, Error> {
    let Some(m) = layout.mount_of(Ctl::Cpuset) else {
        return Ok(None);
    };
    let dir = m.dir(rel);
    let list = |file: &str| -> Result<Vec<u32>, Error> {
        let text = dir.read_string(file)?;
        match text.trim() {
            "" => Ok(vec![]),
            t => crate::limits::parse_list(file, t),
        }
    };
    let stat = match m.version {
        Version::V1 => {
            let mut flags = vec![];
            for name in v1::CPUSET_FLAGS {
                let file = format!("cpuset.{name}");
                if dir.has_file(&file) {
                    let text = dir.read_string(&file)?;
                    let n = text.trim().parse().map_err(|_| {
                        Error::internal(format!("{file}: {:?} is not a number", text.trim()))
                    })?;
                    flags.push((name.to_string(), n));
                }
            }
            CpusetStat {
                cpus: list("cpuset.cpus")?,
                mems: list("cpuset.mems")?,
                flags,
            }
        }
        Version::V2 => CpusetStat {
            cpus: list("cpuset.cpus.effective")?,
            mems: list("cpuset.mems.effective")?,
            flags: vec![],
        },
    };
    Ok(Some(stat))
}

/// Block I/O by device and operation: v1's throttle counters (which every
/// blkio hierarchy has, whatever the I/O scheduler). None from v2 yet.
fn block_io_stat(layout: &Layout, rel: &Path) -> Result<Vec<BlockIoStat>, Error> {
    let Some(m) = layout.mount_of(Ctl::Blkio) else {
        return Ok(vec![]);
    };
    if m.version != Version::V1 {
        return Ok(vec![]);
    }
    let dir = m.dir(rel);
    let mut out = vec![];
    for file in [
        "throttle.io_service_bytes_recursive",
        "throttle.io_serviced_recursive",
    ] {
        let name = format!("blkio.{file}");
        if dir.has_file(&name) {
            out.extend(v1::block_io_lines(file, &dir.read_string(&name)?));
        }
    }
    Ok(out)
}

pub fn is_frozen(layout: &Layout, rel: &Path) -> Result<bool, Error> {
    match layout.mount_of(Ctl::Freezer) {
        None => Ok(false),
        Some(m) => match m.version {
            Version::V1 => v1::is_frozen(&m.dir(rel)),
            Version::V2 => v2::is_frozen(&m.dir(rel)),
        },
    }
}

pub fn set_frozen(layout: &Layout, rel: &Path, frozen: bool) -> Result<(), Error> {
    let m = layout.need(Ctl::Freezer, if frozen { "freeze" } else { "thaw" })?;
    match m.version {
        Version::V1 => v1::set_frozen(&m.dir(rel), frozen, FREEZE_TIMEOUT),
        Version::V2 => v2::set_frozen(&m.dir(rel), frozen, FREEZE_TIMEOUT),
    }
}

/// Moves `pid` (the whole process) into the group in every hierarchy it
/// is in.
pub fn attach(layout: &Layout, rel: &Path, pid: i32) -> Result<(), Error> {
    for m in layout.mounts() {
        m.dir(rel).add_pid(pid)?;
    }
    Ok(())
}

/// The processes in the group and its children, from every hierarchy (a
/// process may have been moved in one hierarchy and not another).
pub fn procs(layout: &Layout, rel: &Path) -> Result<Vec<i32>, Error> {
    let mut out = vec![];
    for m in layout.mounts() {
        let d = m.dir(rel);
        if d.exists() {
            out.extend(d.procs_recursive()?);
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// SIGKILLs everything in the group. A frozen group is thawed first: frozen
/// tasks cannot act on SIGKILL, so they would never leave.
pub fn kill(layout: &Layout, rel: &Path) -> Result<(), Error> {
    if is_frozen(layout, rel)? {
        set_frozen(layout, rel, false)?;
    }
    for m in layout.mounts() {
        let d = m.dir(rel);
        if d.exists() {
            d.kill_all(KILL_TIMEOUT)?;
        }
    }
    Ok(())
}

/// rmdir the group in every hierarchy. The bases stay while the server
/// runs (remade at every create they cost five mkdirs, five rmdirs and a
/// cpuset copy per container); `remove_empty_bases` runs at shutdown.
pub fn remove(layout: &Layout, rel: &Path) -> Result<(), Error> {
    for m in layout.mounts() {
        layout.ops().rmdir(&m.dir(rel))?;
    }
    Ok(())
}

/// `delete --force`: the usual group is already empty (its container has
/// exited), and one rmdir per hierarchy removes it. Only a group that is
/// still busy pays for thawing and killing its processes first.
pub fn remove_forced(layout: &Layout, rel: &Path) -> Result<(), Error> {
    let mut busy = false;
    for m in layout.mounts() {
        if !layout.ops().try_rmdir(&m.dir(rel))? {
            busy = true;
        }
    }
    if busy {
        kill(layout, rel)?;
        remove(layout, rel)?;
    }
    Ok(())
}

/// Gives a group up while memory-controller may still use its v2 directory:
/// rmdir it in the (separate) v1 hierarchies, reset our settings in v2.
pub fn release(layout: &Layout, rel: &Path) -> Result<(), Error> {
    for m in layout.mounts() {
        let d = m.dir(rel);
        match m.version {
            Version::V1 => layout.ops().rmdir(&d)?,
            Version::V2 if d.exists() => v2::reset(&d)?,
            Version::V2 => {}
        }
    }
    Ok(())
}

/// Removes each base that holds no group, when the server stops (SIGTERM),
/// so a stopped constellation leaves no directory of ours behind. Best
/// effort: a base that still holds groups stays, and the next server
/// adopts it. A v2 base shared with memory-controller stays: it makes its
/// groups there without re-checking.
pub fn remove_empty_bases(layout: &Layout) {
    for m in layout.mounts() {
        if m.version == Version::V2 && layout.shared_v2() {
            continue;
        }
        if m.base.exists() && m.base.children().map(|c| c.is_empty()).unwrap_or(false) {
            if let Err(e) = layout.ops().rmdir(&m.base) {
                tracing::debug!("keeping {}: {e}", m.base.path().display());
            }
        }
    }
}

/// The hierarchies in which the group's directory is missing.
pub fn missing(layout: &Layout, rel: &Path) -> Vec<Mount> {
    layout
        .mounts()
        .iter()
        .filter(|m| !m.dir(rel).exists())
        .cloned()
        .collect()
}

/// Re-creates the directories a group lost in some hierarchies (found at
/// start) and puts `limits`, the device rules and its blockIO back on them.
pub fn repair(
    layout: &Layout,
    rel: &Path,
    limits: &CpuLimits,
    devices: &[DeviceRule],
    block_io: Option<&BlockIo>,
) -> Result<(), Error> {
    let mut made = vec![];
    make_dirs(layout, rel, &mut made, None)?;
    apply(layout, rel, limits)?;
    apply_devices(layout, rel, devices)?;
    match block_io {
        Some(b) => apply_block_io(layout, rel, b),
        None => Ok(()),
    }
}
