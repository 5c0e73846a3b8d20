//! `ipc memory-controller VERB`: the memory-controller's verbs.
//!
//! Sizes are bytes or a number with K, M, G or T (powers of 1024), or `max`
//! for no limit. Output is `key: value` lines (sizes in bytes) by default;
//! `--json` prints one JSON object.

use clap::{Args, Subcommand};
use protocol::memory::{
    Limit, Memory, MemoryEvent, MemoryGroup, MemoryLimits, MemoryRequest, MemoryResponse,
    MemoryStat,
};
use protocol::Protocol;
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

#[derive(Subcommand)]
pub enum MemoryCmd {
    /// Round trip to the server.
    Ping,
    /// Create a memory group (a cgroup under the constellation's base).
    Create {
        /// Group id: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
        id: String,
        /// Create it inside this group (its usage counts towards the parent's).
        #[arg(long)]
        parent: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Change a group's settings; settings not given stay as they are.
    Set {
        id: String,
        #[command(flatten)]
        limits: LimitArgs,
        /// Re-enable the OOM killer (cgroup v1).
        #[arg(long, conflicts_with = "disable_oom_killer")]
        enable_oom_killer: bool,
        /// Refuse a limit below the group's current usage.
        #[arg(long)]
        check_before_update: bool,
    },
    /// Move a process into a group.
    Attach { id: String, pid: i32 },
    /// Limit, usage (children included), peak, OOM counts and memory.stat counters.
    Stat {
        id: String,
        /// One JSON object: limit_bytes (null = max), usage_bytes, peak_bytes,
        /// swap_usage_bytes, oom_events, oom_kills, pids, and counters
        /// (an object of the memory.stat counters).
        #[arg(long)]
        json: bool,
    },
    /// Stream OOM events, one JSON object per line, until killed:
    /// {"type":"oom","id":..,"oom_events":..,"oom_kills":..,"at_unix_ms":..}.
    /// Prints "watching ..." on stderr once subscribed.
    Events {
        /// Only this group's events (default: every group's).
        id: Option<String>,
    },
    /// Every registered group with its limits as the kernel holds them.
    List {
        /// One JSON object: {"groups": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Remove a group; refuses while processes remain unless --force.
    Delete {
        id: String,
        /// Kill the group's processes first.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args)]
pub struct LimitArgs {
    /// Hard limit (SIZE or max).
    #[arg(long, value_name = "SIZE", value_parser = parse_limit, allow_hyphen_values = true)]
    limit: Option<Limit>,
    /// Soft limit / protection (SIZE or max).
    #[arg(long, value_name = "SIZE", value_parser = parse_limit, allow_hyphen_values = true)]
    reservation: Option<Limit>,
    /// Memory plus swap, as the OCI spec (SIZE or max).
    #[arg(long, value_name = "SIZE", value_parser = parse_limit, allow_hyphen_values = true)]
    swap: Option<Limit>,
    /// 0..=100 (cgroup v1 only).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    swappiness: Option<u64>,
    /// Disable the OOM killer (cgroup v1 only).
    #[arg(long)]
    disable_oom_killer: bool,
}

impl LimitArgs {
    fn to_limits(&self) -> MemoryLimits {
        MemoryLimits {
            limit: self.limit,
            reservation: self.reservation,
            swap: self.swap,
            swappiness: self.swappiness,
            disable_oom_killer: self.disable_oom_killer.then_some(true),
        }
    }
}

/// SIZE: bytes, 64M, 1G, ... or "max".
fn parse_limit(s: &str) -> Result<Limit, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Limit::Max);
    }
    protocol::size::parse_size(s)
        .map(Limit::Value)
        .map_err(|e| e.message)
}

pub fn run(root: &Path, cmd: MemoryCmd) -> anyhow::Result<()> {
    match cmd {
        MemoryCmd::Ping => super::ping::<Memory>(root),
        MemoryCmd::Create { id, parent, limits } => {
            let req = MemoryRequest::Create {
                id: id.clone(),
                parent,
                limits: limits.to_limits(),
            };
            print_group(&mutate(root, "create", &id, req)?);
            Ok(())
        }
        MemoryCmd::Set {
            id,
            limits,
            enable_oom_killer,
            check_before_update,
        } => {
            let mut l = limits.to_limits();
            if enable_oom_killer {
                l.disable_oom_killer = Some(false);
            }
            let req = MemoryRequest::Set {
                id: id.clone(),
                limits: l,
                check_before_update,
            };
            print_group(&mutate(root, "set", &id, req)?);
            Ok(())
        }
        MemoryCmd::Attach { id, pid } => {
            mutate(
                root,
                "attach",
                &id,
                MemoryRequest::Attach {
                    id: id.clone(),
                    pid,
                },
            )?;
            println!("attached pid {pid} to memory group {id}");
            Ok(())
        }
        MemoryCmd::Delete { id, force } => {
            mutate(
                root,
                "delete",
                &id,
                MemoryRequest::Delete {
                    id: id.clone(),
                    force,
                },
            )?;
            println!("deleted memory group {id}");
            Ok(())
        }
        MemoryCmd::Stat { id, json } => stat(root, &id, json),
        MemoryCmd::List { json } => list(root, json),
        MemoryCmd::Events { id } => events(root, id),
    }
}

fn mutate(root: &Path, op: &str, id: &str, req: MemoryRequest) -> anyhow::Result<MemoryResponse> {
    super::mutate::<Memory>(root, op, id, req)
}

fn call(root: &Path, req: MemoryRequest) -> anyhow::Result<MemoryResponse> {
    super::call::<Memory>(root, req)
}

fn stat(root: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    let MemoryResponse::Stat(st) = call(root, MemoryRequest::Stat { id: id.to_string() })? else {
        anyhow::bail!("{} answered stat with something else", Memory::NAME);
    };
    if json {
        println!("{}", stat_json(&st));
    } else {
        print_stat(&st);
    }
    Ok(())
}

fn list(root: &Path, json: bool) -> anyhow::Result<()> {
    let MemoryResponse::List(groups) = call(root, MemoryRequest::List)? else {
        anyhow::bail!("{} answered list with something else", Memory::NAME);
    };
    if json {
        let all: Vec<Value> = groups.iter().map(group_json).collect();
        println!("{}", json!({ "groups": all }));
        return Ok(());
    }
    println!(
        "{:<24} {:<24} {:>14} {:>14} {:>14} {:<7}",
        "ID", "PARENT", "LIMIT", "RESERVATION", "SWAP", "BACKEND"
    );
    for g in &groups {
        println!(
            "{:<24} {:<24} {:>14} {:>14} {:>14} {:<7}",
            g.id,
            g.parent.as_deref().unwrap_or("-"),
            show_opt(g.limits.limit),
            show_opt(g.limits.reservation),
            show_opt(g.limits.swap),
            g.backend
        );
    }
    Ok(())
}

fn events(root: &Path, id: Option<String>) -> anyhow::Result<()> {
    if let Some(id) = &id {
        // A clear "does not exist" rather than a silent stream.
        call(root, MemoryRequest::Stat { id: id.clone() })?;
    }
    let mut sub =
        libipc::Client::<Memory>::subscribe(root, id.clone(), libipc::ClientOptions::default())?;
    match &id {
        Some(id) => eprintln!("watching OOM events of memory group {id}"),
        None => eprintln!("watching OOM events of every memory group"),
    }
    let mut out = std::io::stdout();
    loop {
        if let Some(ev) = sub.next(None)? {
            writeln!(out, "{}", event_json(&ev))?;
            out.flush()?;
        }
    }
}

fn event_json(ev: &MemoryEvent) -> Value {
    match ev {
        MemoryEvent::Oom {
            id,
            oom_events,
            oom_kills,
            at_unix_ms,
        } => json!({
            "type": "oom", "id": id, "oom_events": oom_events, "oom_kills": oom_kills, "at_unix_ms": at_unix_ms,
        }),
    }
}

fn limit_json(l: Option<Limit>) -> Value {
    match l {
        Some(Limit::Value(n)) => json!(n),
        Some(Limit::Max) => json!("max"),
        None => Value::Null,
    }
}

fn show_opt(l: Option<Limit>) -> String {
    match l {
        Some(Limit::Value(n)) => n.to_string(),
        Some(Limit::Max) => "max".to_string(),
        None => "-".to_string(),
    }
}

fn group_json(g: &MemoryGroup) -> Value {
    json!({
        "id": g.id,
        "parent": g.parent,
        "limit_bytes": limit_json(g.limits.limit),
        "reservation_bytes": limit_json(g.limits.reservation),
        "swap_bytes": limit_json(g.limits.swap),
        "swappiness": g.limits.swappiness,
        "disable_oom_killer": g.limits.disable_oom_killer,
        "backend": g.backend,
        "path": g.path,
    })
}

fn print_group(resp: &MemoryResponse) {
    let g = match resp {
        MemoryResponse::Created(g) | MemoryResponse::Updated(g) => g,
        other => return println!("{other:?}"),
    };
    println!("id: {}", g.id);
    println!("parent: {}", g.parent.as_deref().unwrap_or("-"));
    println!("limit_bytes: {}", show_opt(g.limits.limit));
    println!("reservation_bytes: {}", show_opt(g.limits.reservation));
    println!("swap_bytes: {}", show_opt(g.limits.swap));
    if let Some(s) = g.limits.swappiness {
        println!("swappiness: {s}");
    }
    if let Some(d) = g.limits.disable_oom_killer {
        println!("disable_oom_killer: {d}");
    }
    println!("backend: {}", g.backend);
    println!("path: {}", g.path);
}

fn stat_json(st: &MemoryStat) -> Value {
    let counters: serde_json::Map<String, Value> = st
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "id": st.id,
        "limit_bytes": st.limit_bytes,
        "usage_bytes": st.usage_bytes,
        "peak_bytes": st.peak_bytes,
        "swap_usage_bytes": st.swap_usage_bytes,
        "oom_events": st.oom_events,
        "oom_kills": st.oom_kills,
        "pids": st.pids,
        "counters": counters,
    })
}

fn print_stat(st: &MemoryStat) {
    println!("id: {}", st.id);
    println!(
        "limit_bytes: {}",
        st.limit_bytes
            .map(|n| n.to_string())
            .unwrap_or_else(|| "max".into())
    );
    println!("usage_bytes: {}", st.usage_bytes);
    println!("peak_bytes: {}", st.peak_bytes);
    if let Some(s) = st.swap_usage_bytes {
        println!("swap_usage_bytes: {s}");
    }
    println!("oom_events: {}", st.oom_events);
    println!("oom_kills: {}", st.oom_kills);
    let pids: Vec<String> = st.pids.iter().map(|p| p.to_string()).collect();
    println!("pids: {}", pids.join(" "));
    for (k, v) in &st.counters {
        println!("{k}: {v}");
    }
}
