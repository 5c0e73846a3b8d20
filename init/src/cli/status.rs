//! `ipc status` and init's own verbs.

use clap::Subcommand;
use protocol::init::{Init, InitRequest, InitResponse};
use std::path::Path;

#[derive(Subcommand)]
pub enum InitCmd {
    /// Round trip to init.
    Ping,
    /// Stop every server and init (as SIGTERM does).
    Shutdown,
}

pub fn run(root: &Path, json: bool) -> anyhow::Result<()> {
    let mut c = super::client::<Init>(root)?;
    let InitResponse::Constellation(st) = c.call(InitRequest::Constellation, None)? else {
        anyhow::bail!("init answered status with something else");
    };
    if json {
        let servers: Vec<_> = st
            .servers
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name, "pid": s.pid, "state": s.state.as_str(),
                    "restarts": s.restarts, "uptime_ms": s.uptime_ms, "requests": s.requests,
                })
            })
            .collect();
        let out = serde_json::json!({ "init": { "pid": st.init_pid }, "servers": servers });
        println!("{out}");
        return Ok(());
    }
    println!(
        "{:<18} {:>8} {:<10} {:>8} {:>10} {:>9}",
        "NAME", "PID", "STATE", "RESTARTS", "UPTIME", "REQUESTS"
    );
    println!(
        "{:<18} {:>8} {:<10} {:>8} {:>10} {:>9}",
        "init", st.init_pid, "running", "-", "-", "-"
    );
    for s in &st.servers {
        let pid = if s.pid == 0 {
            "-".to_string()
        } else {
            s.pid.to_string()
        };
        println!(
            "{:<18} {:>8} {:<10} {:>8} {:>10} {:>9}",
            s.name,
            pid,
            s.state.as_str(),
            s.restarts,
            human_ms(s.uptime_ms),
            s.requests
        );
    }
    Ok(())
}

pub fn run_init(root: &Path, cmd: InitCmd) -> anyhow::Result<()> {
    match cmd {
        InitCmd::Ping => super::ping::<Init>(root),
        InitCmd::Shutdown => {
            super::client::<Init>(root)?.call(InitRequest::Shutdown, None)?;
            println!("init is stopping the constellation");
            Ok(())
        }
    }
}

fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}
