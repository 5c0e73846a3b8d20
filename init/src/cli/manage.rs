//! start, kill, delete, pause, resume, update.

use super::oci::{init_client, UpdateArgs};
use anyhow::{anyhow, bail, Context, Result};
use protocol::cpu::{BlockIo, CpuLimits};
use protocol::init::{InitRequest, InitResponse};
use protocol::memory::{Limit, MemoryLimits};
use protocol::ErrorKind;
use std::path::Path;

pub fn start(root: &Path, id: &str) -> Result<()> {
    init_client(root)?.call(InitRequest::Start { id: id.into() }, None)?;
    Ok(())
}

pub fn kill(root: &Path, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let signal = parse_signal(signal.unwrap_or("SIGTERM"))?;
    init_client(root)?.call(
        InitRequest::Kill {
            id: id.into(),
            signal,
            all,
        },
        None,
    )?;
    Ok(())
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    match init_client(root)?.call(
        InitRequest::Delete {
            id: id.into(),
            force,
        },
        None,
    ) {
        Ok(_) => Ok(()),
        // runc: deleting a container that does not exist is fine with --force.
        Err(e) if force && e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    init_client(root)?.call(InitRequest::Pause { id: id.into() }, None)?;
    Ok(())
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    init_client(root)?.call(InitRequest::Resume { id: id.into() }, None)?;
    Ok(())
}

pub fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    refuse_unsupported_flags(a)?;
    let (mut memory, mut cpu, mut block_io) = match &a.resources {
        Some(src) => from_resources_json(src)?,
        None => (MemoryLimits::default(), CpuLimits::default(), None),
    };
    if let Some(w) = a.blkio_weight.filter(|w| *w != 0) {
        if !(10..=1000).contains(&w) {
            bail!("--blkio-weight: {w} is not a weight from 10 to 1000");
        }
        block_io.get_or_insert_with(BlockIo::default).weight = Some(w);
    }
    let size = |flag: &str, v: &Option<String>| -> Result<Option<Limit>> {
        match v.as_deref() {
            None => Ok(None),
            Some("-1") | Some("max") => Ok(Some(Limit::Max)),
            Some(s) => Ok(Some(Limit::Value(
                protocol::size::parse_size(s).map_err(|e| anyhow!("--{flag}: {}", e.message))?,
            ))),
        }
    };
    if let Some(l) = size("memory", &a.memory)? {
        memory.limit = Some(l);
    }
    if let Some(l) = size("memory-reservation", &a.memory_reservation)? {
        memory.reservation = Some(l);
    }
    if let Some(l) = size("memory-swap", &a.memory_swap)? {
        memory.swap = Some(l);
    }
    cpu.shares = a.cpu_shares.or(cpu.shares);
    if let Some(q) = a.cpu_quota {
        cpu.quota_us = Some(if q < 0 {
            Limit::Max
        } else {
            Limit::Value(q as u64)
        });
    }
    cpu.period_us = a.cpu_period.or(cpu.period_us);
    cpu.burst_us = a.cpu_burst.or(cpu.burst_us);
    if a.cpuset_cpus.is_some() {
        cpu.cpus = a.cpuset_cpus.clone();
    }
    if a.cpuset_mems.is_some() {
        cpu.mems = a.cpuset_mems.clone();
    }
    if let Some(p) = a.pids_limit {
        cpu.pids_max = Some(if p <= 0 {
            Limit::Max
        } else {
            Limit::Value(p as u64)
        });
    }
    let memory = (memory != MemoryLimits::default()).then_some(memory);
    let cpu = (cpu != CpuLimits::default()).then_some(cpu);
    if memory.is_none() && cpu.is_none() && block_io.is_none() {
        bail!("update: nothing to change (give --memory, --cpu-quota, ... or --resources FILE)");
    }
    let mut init = init_client(root)?;
    // blockIO first: it is the part most often refused as a whole (no
    // blkio group, no weights here), and then nothing has changed.
    if let Some(block_io) = block_io {
        init.call(
            InitRequest::UpdateBlockIo {
                id: a.id.clone(),
                block_io,
            },
            None,
        )?;
    }
    if memory.is_some() || cpu.is_some() {
        init.call(
            InitRequest::Update {
                id: a.id.clone(),
                memory,
                cpu,
            },
            None,
        )?;
    }
    Ok(())
}

/// runc's flags for what asterism does not do: a clear refusal, not
/// clap's "unexpected argument" and not a silent success.
fn refuse_unsupported_flags(a: &UpdateArgs) -> Result<()> {
    if a.cpu_rt_period.is_some() || a.cpu_rt_runtime.is_some() {
        bail!("--cpu-rt-period/--cpu-rt-runtime: unsupported: realtime CPU bandwidth (cpu.rt_*) is not set by asterism");
    }
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: unsupported: Intel RDT (linux.intelRdt) is not supported");
    }
    Ok(())
}

/// `--resources FILE` (or `-`): a runtime-spec linux.resources object.
fn from_resources_json(src: &str) -> Result<(MemoryLimits, CpuLimits, Option<BlockIo>)> {
    let text = if src == "-" {
        std::io::read_to_string(std::io::stdin()).context("read resources from stdin")?
    } else {
        std::fs::read_to_string(src).with_context(|| format!("read {src}"))?
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(&text)
        .with_context(|| format!("{src}: not a linux.resources object"))?;
    // What the controllers cannot apply is refused, never dropped: an
    // update that returned 0 would say the limit is in force.
    crate::lifecycle::resources::unsupported(Some(&r)).map_err(|e| anyhow!("{}", e.message))?;
    if !crate::lifecycle::resources::hugepages(Some(&r)).is_empty() {
        bail!("{src}: hugepageLimits: the hugepage limits of a running container cannot be changed by update yet");
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        bail!(
            "{src}: devices: the device rules of a running container cannot be changed by update"
        );
    }
    Ok((
        crate::lifecycle::resources::memory(Some(&r)),
        crate::lifecycle::resources::cpu(Some(&r)),
        crate::lifecycle::resources::block_io(Some(&r)),
    ))
}

/// "KILL", "SIGKILL", "kill" or "9" -> 9.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return match nix::sys::signal::Signal::try_from(n) {
            Ok(_) => Ok(n),
            Err(_) => Err(anyhow!("unknown signal {s:?}")),
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

/// The response, when the caller does not need it.
pub fn expect_state(r: InitResponse) -> Result<protocol::init::ContainerState> {
    match r {
        InitResponse::State(s) => Ok(s),
        other => bail!("init answered with {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("SIGFOO")
            .unwrap_err()
            .to_string()
            .contains("SIGFOO"));
        assert!(parse_signal("99").is_err());
    }
}
