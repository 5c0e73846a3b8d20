//! state, list, ps, events: read-only views, with runc's output formats.

use super::oci::init_client;
use anyhow::{bail, Result};
use protocol::init::{ContainerState, InitRequest, InitResponse};
use std::path::Path;
use std::time::Duration;

/// runc's `state` JSON (and each entry of `list --format json`).
pub fn state_value(s: &ContainerState) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": s.oci_version,
        "id": s.id,
        "pid": s.pid,
        "status": s.status,
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
        "owner": s.owner,
    });
    if !s.annotations.is_empty() {
        v["annotations"] = s
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    v
}

pub fn state(root: &Path, id: &str) -> Result<()> {
    let s = super::manage::expect_state(
        init_client(root)?.call(InitRequest::State { id: id.into() }, None)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&state_value(&s))?);
    Ok(())
}

pub fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let InitResponse::Containers(list) = init_client(root)?.call(InitRequest::List, None)? else {
        bail!("init answered list with something else");
    };
    if quiet {
        for s in &list {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        // With no container runc prints `null` (Go's nil slice), and so
        // do we: a script written against runc reads the same.
        "json" if list.is_empty() => println!("null"),
        "json" => {
            // runc's list names the owner of the container's state (root
            // here) where its `state` leaves "owner" empty.
            let v: Vec<_> = list
                .iter()
                .map(|s| {
                    let mut v = state_value(s);
                    v["owner"] = owner(s).into();
                    v
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut rows =
                vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
            for s in &list {
                rows.push([
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.clone(),
                    s.bundle.clone(),
                    s.created.clone(),
                    owner(s).to_string(),
                ]);
            }
            print!("{}", table(&rows));
        }
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(())
}

/// The OWNER of `list`: the user who owns the container's state, root for
/// init's containers.
fn owner(s: &ContainerState) -> &str {
    if s.owner.is_empty() {
        "root"
    } else {
        &s.owner
    }
}

/// Columns as runc's `list` lays them out (Go's tabwriter with minimum
/// width 12 and padding 3): each column as wide as its widest cell plus 3,
/// at least 12; the last one not padded. An id longer than 9 characters
/// then still has its PID apart from it.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [12usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count() + 3);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            match i + 1 == N {
                true => out.push_str(cell),
                false => out.push_str(&format!("{cell:<0$}", widths[i])),
            }
        }
        out.push('\n');
    }
    out
}

pub fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let InitResponse::Pids(pids) =
        init_client(root)?.call(InitRequest::Pids { id: id.into() }, None)?
    else {
        bail!("init answered ps with something else");
    };
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            // As runc: run ps(1) and keep the header and the container's lines.
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps").args(&args).output()?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| anyhow::anyhow!("couldn't find PID field in ps output"))?;
            println!("{header}");
            for line in lines {
                if let Some(p) = line
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse::<i32>().ok())
                {
                    if pids.contains(&p) {
                        println!("{line}");
                    }
                }
            }
        }
        other => bail!("invalid format option {other:?}: use table or json"),
    }
    Ok(())
}

/// runc's stats event: {"type":"stats","id":..,"data":{cpu, pids, memory}},
/// with runc's names and its Go `omitempty`s (a zero count is left out).
fn stats_event(root: &Path, id: &str) -> Result<serde_json::Value> {
    let InitResponse::Stats(st) =
        init_client(root)?.call(InitRequest::Stats { id: id.into() }, None)?
    else {
        bail!("init answered stats with something else");
    };
    let mut data = serde_json::json!({});
    if let Some(c) = &st.cpu {
        data["cpu"] = cpu_stats(c);
        if let Some(set) = &c.cpuset {
            data["cpuset"] = cpuset_stats(set);
        }
        data["blkio"] = block_io_stats(&c.block_io);
        data["pids"] = omit_zeros(
            serde_json::json!({"current": c.pids_current, "limit": c.pids_max.unwrap_or(0)}),
            &["current", "limit"],
        );
    }
    if let Some(m) = &st.memory {
        data["memory"] = memory_stats(m);
    }
    Ok(serde_json::json!({"type": "stats", "id": id, "data": data}))
}

/// `v` without the `keys` whose value is 0 or an empty list.
fn omit_zeros(mut v: serde_json::Value, keys: &[&str]) -> serde_json::Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|k, x| {
            let empty = x.as_u64() == Some(0) || x.as_array().is_some_and(|a| a.is_empty());
            !(keys.contains(&k.as_str()) && empty)
        });
    }
    v
}

fn cpu_stats(c: &protocol::cpu::CpuStat) -> serde_json::Value {
    let usage = serde_json::json!({
        "total": c.usage_us * 1000,
        "percpu": c.percpu_ns,
        "percpu_kernel": c.percpu_system_ns,
        "percpu_user": c.percpu_user_ns,
        "kernel": c.system_us * 1000,
        "user": c.user_us * 1000,
    });
    let throttling = serde_json::json!({
        "periods": c.nr_periods,
        "throttledPeriods": c.nr_throttled,
        "throttledTime": c.throttled_us * 1000,
    });
    serde_json::json!({
        "usage": omit_zeros(usage, &["total", "percpu", "percpu_kernel", "percpu_user"]),
        "throttling": omit_zeros(throttling, &["periods", "throttledPeriods", "throttledTime"]),
    })
}

/// runc's cpuset block: the lists (left out when empty) and the flags.
fn cpuset_stats(set: &protocol::cpu::CpusetStat) -> serde_json::Value {
    let mut v = serde_json::json!({"cpus": set.cpus, "mems": set.mems});
    for (name, n) in &set.flags {
        v[name.as_str()] = (*n).into();
    }
    omit_zeros(v, &["cpus", "mems"])
}

/// runc's blkio block: one list per counter file, each entry
/// {major, minor, op, value} with a zero minor or value left out.
fn block_io_stats(entries: &[protocol::cpu::BlockIoStat]) -> serde_json::Value {
    let mut v = serde_json::json!({});
    for (file, key) in [
        (
            "throttle.io_service_bytes_recursive",
            "ioServiceBytesRecursive",
        ),
        ("throttle.io_serviced_recursive", "ioServicedRecursive"),
    ] {
        let list: Vec<_> = entries
            .iter()
            .filter(|e| e.file == file)
            .map(|e| {
                let entry = serde_json::json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value});
                omit_zeros(entry, &["minor", "value"])
            })
            .collect();
        if !list.is_empty() {
            v[key] = list.into();
        }
    }
    v
}

fn memory_stats(m: &protocol::memory::MemoryStat) -> serde_json::Value {
    let entry = |a: &protocol::memory::Account| {
        omit_zeros(
            serde_json::json!({"limit": a.limit, "usage": a.usage, "max": a.max, "failcnt": a.failcnt}),
            &["usage", "max"],
        )
    };
    let account = |name: &str| {
        m.accounts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| entry(a))
    };
    // v1 has its own account for memory (with failcnt); v2's figures
    // come from memory.current, .peak and .max.
    let usage = account("memory").unwrap_or_else(|| {
        entry(&protocol::memory::Account {
            usage: m.usage_bytes,
            max: m.peak_bytes,
            limit: m.limit_bytes.unwrap_or(u64::MAX),
            failcnt: m.oom_events,
        })
    });
    let counter = |name: &str| m.counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let mut v = serde_json::json!({
        "cache": counter("cache").or_else(|| counter("file")).unwrap_or(0),
        "usage": usage,
        "raw": m.counters.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "oom_kills": m.oom_kills,
    });
    for (name, key) in [
        ("memsw", "swap"),
        ("kmem", "kernel"),
        ("kmem.tcp", "kernelTCP"),
    ] {
        if let Some(e) = account(name) {
            v[key] = e;
        }
    }
    omit_zeros(v, &["cache"])
}

pub fn events(root: &Path, id: &str, once: bool, interval: &str) -> Result<()> {
    let every = parse_duration(interval)?;
    if once {
        println!("{}", stats_event(root, id)?);
        return Ok(());
    }
    let opts = libipc::ClientOptions::default();
    let mut oom =
        libipc::Client::<protocol::memory::Memory>::subscribe(root, Some(id.to_string()), opts)?;
    loop {
        let state = super::manage::expect_state(
            init_client(root)?.call(InitRequest::State { id: id.into() }, None)?,
        )?;
        if state.status == "stopped" {
            return Ok(());
        }
        match oom.next(Some(every))? {
            Some(protocol::memory::MemoryEvent::Oom { .. }) => {
                println!("{}", serde_json::json!({"type": "oom", "id": id}))
            }
            None => println!("{}", stats_event(root, id)?),
        }
        use std::io::Write;
        std::io::stdout().flush().ok();
    }
}

/// "5s", "500ms", "1m", or plain seconds.
fn parse_duration(s: &str) -> Result<Duration> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--interval {s:?}: not a duration like 5s"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => bail!("--interval {s:?}: unit must be ms, s or m"),
    };
    if secs <= 0.0 {
        bail!("--interval {s:?}: must be positive");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::table;

    fn row(cells: [&str; 3]) -> [String; 3] {
        cells.map(String::from)
    }

    /// runc's layout: at least 12 wide, else the widest cell plus 3.
    #[test]
    fn table_columns_are_as_runcs() {
        let empty = table(&[row(["ID", "PID", "OWNER"])]);
        assert_eq!(empty, "ID          PID         OWNER\n");
        let long = "0123456789abcdef0123";
        let t = table(&[row(["ID", "PID", "OWNER"]), row([long, "4242", "root"])]);
        assert_eq!(
            t,
            format!(
                "ID{}PID         OWNER\n{long}   4242        root\n",
                " ".repeat(long.len() + 1)
            )
        );
    }
}
