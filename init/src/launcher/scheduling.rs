//! How the kernel runs the container's process: its CPU scheduler
//! (`process.scheduler`, sched_setattr(2)), I/O priority
//! (`process.ioPriority`, ioprio_set(2)), NUMA memory policy
//! (`linux.memoryPolicy`, set_mempolicy(2)) and execution domain
//! (`linux.personality`, personality(2)). Each is set on the launcher's
//! child before it drops its capabilities (a real-time policy or class
//! needs CAP_SYS_NICE or CAP_SYS_ADMIN), and all four are inherited across
//! execve and by the processes the container starts.

use super::sys::{self, SchedAttr};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxMemoryPolicy, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag, LinuxSchedulerPolicy, MemoryPolicyFlagType, MemoryPolicyModeType,
    Scheduler,
};

/// Applies whichever of the four the config sets.
pub fn apply(spec: &oci_spec::runtime::Spec, p: &oci_spec::runtime::Process) -> Result<()> {
    if let Some(s) = p.scheduler() {
        scheduler(s)?;
    }
    if let Some(io) = p.io_priority() {
        io_priority(io)?;
    }
    if let Some(l) = spec.linux() {
        if let Some(mp) = l.memory_policy() {
            memory_policy(mp)?;
        }
        if let Some(pers) = l.personality() {
            personality(pers)?;
        }
    }
    Ok(())
}

/// linux/sched.h and uapi/linux/sched.h.
fn policy_number(p: LinuxSchedulerPolicy) -> u32 {
    use LinuxSchedulerPolicy as P;
    match p {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    }
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    use LinuxSchedulerFlag as F;
    match f {
        F::SchedResetOnFork => 0x01,
        F::SchedFlagReclaim => 0x02,
        F::SchedFlagDLOverrun => 0x04,
        F::SchedFlagKeepPolicy => 0x08,
        F::SchedFlagKeepParams => 0x10,
        F::SchedFlagUtilClampMin => 0x20,
        F::SchedFlagUtilClampMax => 0x40,
    }
}

/// The sched_attr for `process.scheduler`; unset numbers are 0, as the
/// spec says.
pub fn sched_attr(s: &Scheduler) -> SchedAttr {
    SchedAttr {
        policy: policy_number(*s.policy()),
        flags: s
            .flags()
            .iter()
            .flatten()
            .map(|f| flag_bit(*f))
            .fold(0, |a, b| a | b),
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0).max(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..SchedAttr::default()
    }
}

fn scheduler(s: &Scheduler) -> Result<()> {
    if *s.policy() == LinuxSchedulerPolicy::SchedIso {
        bail!("process.scheduler.policy: SCHED_ISO is not implemented by the Linux kernel");
    }
    if s.priority().is_some_and(|p| p < 0) {
        bail!("process.scheduler.priority: must not be negative");
    }
    let attr = sched_attr(s);
    sys::sched_setattr(&attr).map_err(|e| {
        let mut msg = format!(
            "process.scheduler: sched_setattr with policy {} nice {} priority {} flags {:#x} runtime {} deadline {} period {}: {e}",
            s.policy(),
            attr.nice,
            attr.priority,
            attr.flags,
            attr.runtime,
            attr.deadline,
            attr.period
        );
        if e.raw_os_error() == Some(libc::EPERM) && (1..=2).contains(&attr.policy) {
            // The launcher holds every capability here: the usual cause
            // is a kernel with CONFIG_RT_GROUP_SCHED, where a new cpu
            // cgroup has no real-time budget.
            msg.push_str(
                " (on a kernel that budgets real-time tasks per cgroup, the container's cpu cgroup has none: its cpu.rt_runtime_us is 0, and linux.resources.cpu.realtimeRuntime is not supported yet)",
            );
        }
        anyhow::anyhow!(msg)
    })
}

/// IOPRIO_PRIO_VALUE(class, level) of linux/ioprio.h.
pub fn ioprio_value(io: &LinuxIOPriority) -> Result<i32> {
    let class = match io.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = io.priority();
    if !(0..=7).contains(&level) {
        bail!("process.ioPriority.priority: {level} is not a level from 0 to 7");
    }
    Ok((class << 13) | level as i32)
}

fn io_priority(io: &LinuxIOPriority) -> Result<()> {
    let value = ioprio_value(io)?;
    sys::ioprio_set_self(value).with_context(|| {
        format!(
            "process.ioPriority: ioprio_set class {} priority {}",
            io.class(),
            io.priority()
        )
    })
}

/// uapi/linux/mempolicy.h.
fn mode_number(m: MemoryPolicyModeType) -> i32 {
    use MemoryPolicyModeType as M;
    match m {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    }
}

fn mode_flag(f: MemoryPolicyFlagType) -> i32 {
    use MemoryPolicyFlagType as F;
    match f {
        F::MpolFStaticNodes => 1 << 15,
        F::MpolFRelativeNodes => 1 << 14,
        F::MpolFNumaBalancing => 1 << 13,
    }
}

/// "0-3,7" as a nodemask of 64-bit words, and the number of bits to pass
/// as maxnode (one more than the highest node: the kernel drops the last).
pub fn nodemask(nodes: &str) -> Result<(Vec<libc::c_ulong>, u64)> {
    let mut mask: Vec<libc::c_ulong> = vec![];
    for item in nodes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .with_context(|| format!("linux.memoryPolicy.nodes: bad entry {item:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi || hi >= 4096 {
            bail!("linux.memoryPolicy.nodes: {item:?} is not a node range below 4096");
        }
        for n in lo..=hi {
            let word = n / 64;
            if mask.len() <= word {
                mask.resize(word + 1, 0);
            }
            mask[word] |= 1 << (n % 64);
        }
    }
    let bits = (mask.len() * 64) as u64;
    Ok((mask, if bits == 0 { 0 } else { bits + 1 }))
}

fn memory_policy(mp: &LinuxMemoryPolicy) -> Result<()> {
    let mode = mode_number(mp.mode())
        | mp.flags()
            .iter()
            .flatten()
            .map(|f| mode_flag(*f))
            .fold(0, |a, b| a | b);
    let nodes = mp.nodes().as_deref().unwrap_or("");
    let (mask, maxnode) = nodemask(nodes)?;
    sys::set_mempolicy(mode, &mask, maxnode).with_context(|| {
        format!(
            "linux.memoryPolicy: set_mempolicy {} nodes {nodes:?} flags {:?}",
            mp.mode(),
            mp.flags().as_deref().unwrap_or_default()
        )
    })
}

/// sched_setaffinity(2) of the caller to a list like "0-3,7" (with spaces
/// allowed, as the schema does); an empty list changes nothing.
pub fn cpu_affinity(cpus: &str, field: &str) -> Result<()> {
    use nix::sched::CpuSet;
    let cpus = cpus.replace(' ', "");
    if cpus.is_empty() {
        return Ok(());
    }
    let mut set = CpuSet::new();
    for item in cpus.split(',') {
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let parse = |s: &str| {
            s.parse::<usize>()
                .with_context(|| format!("{field}: bad entry {item:?} in {cpus:?}"))
        };
        for cpu in parse(lo)?..=parse(hi)? {
            set.set(cpu).with_context(|| {
                format!("{field}: CPU {cpu} is beyond what this runtime can name")
            })?;
        }
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("{field}: run on CPUs {cpus}"))
}

/// PER_LINUX and PER_LINUX32 of linux/personality.h.
fn personality(p: &LinuxPersonality) -> Result<()> {
    let persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    sys::set_personality(persona)
        .with_context(|| format!("linux.personality: set the domain to {}", p.domain()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_kernel_headers() {
        let s: Scheduler = serde_json::from_value(serde_json::json!({
            "policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_RESET_ON_FORK"]
        }))
        .unwrap();
        let a = sched_attr(&s);
        assert_eq!((a.policy, a.priority, a.flags, a.nice), (1, 10, 1, 0));
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
        let io: LinuxIOPriority =
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 6}))
                .unwrap();
        assert_eq!(ioprio_value(&io).unwrap(), (2 << 13) | 6);
        let bad: LinuxIOPriority =
            serde_json::from_value(serde_json::json!({"class": "IOPRIO_CLASS_BE", "priority": 8}))
                .unwrap();
        assert!(ioprio_value(&bad)
            .unwrap_err()
            .to_string()
            .contains("0 to 7"));
    }

    #[test]
    fn nodemasks() {
        assert_eq!(nodemask("").unwrap(), (vec![], 0));
        assert_eq!(nodemask("0").unwrap(), (vec![1], 65));
        assert_eq!(nodemask("0-2,5").unwrap(), (vec![0b100111], 65));
        let (m, n) = nodemask("64").unwrap();
        assert_eq!((m, n), (vec![0, 1], 129));
        assert!(nodemask("3-1").is_err());
        assert!(nodemask("x").is_err());
    }
}
