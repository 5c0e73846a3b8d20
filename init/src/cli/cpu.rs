//! `ipc cpu-controller VERB`: the cpu-controller's verbs.
//!
//! Times are microseconds. `--quota max` and `--pids-max max` mean no limit.
//! Output is `key: value` lines by default; `--json` prints one JSON object.

use clap::{Args, Subcommand};
use protocol::cpu::{Cpu, CpuGroup, CpuLimits, CpuRequest, CpuResponse, CpuStat};
use protocol::memory::Limit;
use protocol::Protocol;
use serde_json::{json, Value};
use std::path::Path;

#[derive(Subcommand)]
pub enum CpuCmd {
    /// Round trip to the server.
    Ping,
    /// Create a cpu group (a cgroup in each of cpu, cpuacct, cpuset, pids, freezer).
    Create {
        /// Group id: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
        id: String,
        /// Create it inside this group.
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
    },
    /// Move a process into a group (in every hierarchy).
    Attach { id: String, pid: i32 },
    /// CPU time, throttling, pids and freezer state.
    Stat {
        id: String,
        /// One JSON object: usage_us, user_us, system_us, nr_periods,
        /// nr_throttled, throttled_us, pids_current, pids_max (null = max),
        /// frozen, pids.
        #[arg(long)]
        json: bool,
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
        /// Kill the group's processes first (thawing them if frozen).
        #[arg(long)]
        force: bool,
    },
    /// Stop every process in the group (cgroup freezer).
    Freeze { id: String },
    /// Let a frozen group run again.
    Thaw { id: String },
}

#[derive(Args)]
pub struct LimitArgs {
    /// Relative CPU weight, 2..=262144 (cgroup v2: converted to cpu.weight as crun does).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    shares: Option<u64>,
    /// CFS quota per period in microseconds (at least 1000), or max.
    #[arg(long, value_name = "US", value_parser = parse_limit, allow_hyphen_values = true)]
    quota: Option<Limit>,
    /// CFS period in microseconds, 1000..=1000000.
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    period: Option<u64>,
    /// CFS burst in microseconds (at most the quota).
    #[arg(long, value_name = "US", allow_hyphen_values = true)]
    burst: Option<u64>,
    /// CPUs the group may run on, like 0-1,3.
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Memory nodes the group may use, like 0.
    #[arg(long, value_name = "LIST")]
    mems: Option<String>,
    /// Run the group at SCHED_IDLE priority (--idle=false to undo).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    idle: Option<bool>,
    /// Most processes (and threads) the group may hold, or max.
    #[arg(long, value_name = "N", value_parser = parse_limit, allow_hyphen_values = true)]
    pids_max: Option<Limit>,
}

impl LimitArgs {
    fn to_limits(&self) -> CpuLimits {
        CpuLimits {
            shares: self.shares,
            quota_us: self.quota,
            period_us: self.period,
            burst_us: self.burst,
            cpus: self.cpus.clone(),
            mems: self.mems.clone(),
            idle: self.idle,
            pids_max: self.pids_max,
        }
    }
}

/// A non-negative whole number, or "max".
fn parse_limit(s: &str) -> Result<Limit, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Limit::Max);
    }
    s.parse::<u64>()
        .map(Limit::Value)
        .map_err(|_| format!("{s:?} is not a non-negative whole number or max"))
}

pub fn run(root: &Path, cmd: CpuCmd) -> anyhow::Result<()> {
    match cmd {
        CpuCmd::Ping => super::ping::<Cpu>(root),
        CpuCmd::Create { id, parent, limits } => {
            let req = CpuRequest::Create {
                id: id.clone(),
                parent,
                limits: limits.to_limits(),
            };
            print_group(&mutate(root, "create", &id, req)?);
            Ok(())
        }
        CpuCmd::Set { id, limits } => {
            let req = CpuRequest::Set {
                id: id.clone(),
                limits: limits.to_limits(),
            };
            print_group(&mutate(root, "set", &id, req)?);
            Ok(())
        }
        CpuCmd::Attach { id, pid } => {
            mutate(
                root,
                "attach",
                &id,
                CpuRequest::Attach {
                    id: id.clone(),
                    pid,
                },
            )?;
            println!("attached pid {pid} to cpu group {id}");
            Ok(())
        }
        CpuCmd::Delete { id, force } => {
            mutate(
                root,
                "delete",
                &id,
                CpuRequest::Delete {
                    id: id.clone(),
                    force,
                },
            )?;
            println!("deleted cpu group {id}");
            Ok(())
        }
        CpuCmd::Freeze { id } => {
            mutate(root, "freeze", &id, CpuRequest::Freeze { id: id.clone() })?;
            println!("froze cpu group {id}");
            Ok(())
        }
        CpuCmd::Thaw { id } => {
            mutate(root, "thaw", &id, CpuRequest::Thaw { id: id.clone() })?;
            println!("thawed cpu group {id}");
            Ok(())
        }
        CpuCmd::Stat { id, json } => stat(root, &id, json),
        CpuCmd::List { json } => list(root, json),
    }
}

fn mutate(root: &Path, op: &str, id: &str, req: CpuRequest) -> anyhow::Result<CpuResponse> {
    super::mutate::<Cpu>(root, op, id, req)
}

fn call(root: &Path, req: CpuRequest) -> anyhow::Result<CpuResponse> {
    super::call::<Cpu>(root, req)
}

fn stat(root: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    let CpuResponse::Stat(st) = call(root, CpuRequest::Stat { id: id.to_string() })? else {
        anyhow::bail!("{} answered stat with something else", Cpu::NAME);
    };
    if json {
        println!("{}", stat_json(&st));
    } else {
        print_stat(&st);
    }
    Ok(())
}

fn list(root: &Path, json: bool) -> anyhow::Result<()> {
    let CpuResponse::List(groups) = call(root, CpuRequest::List)? else {
        anyhow::bail!("{} answered list with something else", Cpu::NAME);
    };
    if json {
        let all: Vec<Value> = groups.iter().map(group_json).collect();
        println!("{}", json!({ "groups": all }));
        return Ok(());
    }
    println!(
        "{:<24} {:<16} {:>7} {:>8} {:>8} {:<8} {:<6} {:>8}",
        "ID", "PARENT", "SHARES", "QUOTA", "PERIOD", "CPUS", "MEMS", "PIDS_MAX"
    );
    for g in &groups {
        let l = &g.limits;
        println!(
            "{:<24} {:<16} {:>7} {:>8} {:>8} {:<8} {:<6} {:>8}",
            g.id,
            g.parent.as_deref().unwrap_or("-"),
            show_num(l.shares),
            show_limit(l.quota_us),
            show_num(l.period_us),
            l.cpus.as_deref().unwrap_or("-"),
            l.mems.as_deref().unwrap_or("-"),
            show_limit(l.pids_max),
        );
    }
    Ok(())
}

fn limit_json(l: Option<Limit>) -> Value {
    match l {
        Some(Limit::Value(n)) => json!(n),
        Some(Limit::Max) => json!("max"),
        None => Value::Null,
    }
}

fn show_limit(l: Option<Limit>) -> String {
    match l {
        Some(Limit::Value(n)) => n.to_string(),
        Some(Limit::Max) => "max".to_string(),
        None => "-".to_string(),
    }
}

fn show_num(n: Option<u64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_else(|| "-".into())
}

fn group_json(g: &CpuGroup) -> Value {
    let l = &g.limits;
    json!({
        "id": g.id,
        "parent": g.parent,
        "shares": l.shares,
        "quota_us": limit_json(l.quota_us),
        "period_us": l.period_us,
        "burst_us": l.burst_us,
        "cpus": l.cpus,
        "mems": l.mems,
        "idle": l.idle,
        "pids_max": limit_json(l.pids_max),
        "backend": g.backend,
        "paths": g.paths,
    })
}

fn print_group(resp: &CpuResponse) {
    let g = match resp {
        CpuResponse::Created(g) | CpuResponse::Updated(g) => g,
        other => return println!("{other:?}"),
    };
    let l = &g.limits;
    println!("id: {}", g.id);
    println!("parent: {}", g.parent.as_deref().unwrap_or("-"));
    println!("shares: {}", show_num(l.shares));
    println!("quota_us: {}", show_limit(l.quota_us));
    println!("period_us: {}", show_num(l.period_us));
    println!("burst_us: {}", show_num(l.burst_us));
    println!("cpus: {}", l.cpus.as_deref().unwrap_or("-"));
    println!("mems: {}", l.mems.as_deref().unwrap_or("-"));
    println!(
        "idle: {}",
        l.idle.map(|b| b.to_string()).unwrap_or_else(|| "-".into())
    );
    println!("pids_max: {}", show_limit(l.pids_max));
    println!("backend: {}", g.backend);
    for p in &g.paths {
        println!("path: {p}");
    }
}

fn stat_json(st: &CpuStat) -> Value {
    json!({
        "id": st.id,
        "usage_us": st.usage_us,
        "user_us": st.user_us,
        "system_us": st.system_us,
        "nr_periods": st.nr_periods,
        "nr_throttled": st.nr_throttled,
        "throttled_us": st.throttled_us,
        "pids_current": st.pids_current,
        "pids_max": st.pids_max,
        "frozen": st.frozen,
        "pids": st.pids,
    })
}

fn print_stat(st: &CpuStat) {
    println!("id: {}", st.id);
    println!("usage_us: {}", st.usage_us);
    println!("user_us: {}", st.user_us);
    println!("system_us: {}", st.system_us);
    println!("nr_periods: {}", st.nr_periods);
    println!("nr_throttled: {}", st.nr_throttled);
    println!("throttled_us: {}", st.throttled_us);
    println!("pids_current: {}", st.pids_current);
    println!(
        "pids_max: {}",
        st.pids_max
            .map(|n| n.to_string())
            .unwrap_or_else(|| "max".into())
    );
    println!("frozen: {}", st.frozen);
    let pids: Vec<String> = st.pids.iter().map(|p| p.to_string()).collect();
    println!("pids: {}", pids.join(" "));
}
