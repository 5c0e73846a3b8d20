//! `ipc seccomp-monitor VERB`: compile a profile (through the server, so
//! the answer is the program containers get, cached flag included), the
//! notify agent's counters and its events.

use clap::Subcommand;
use protocol::seccomp::{Seccomp, SeccompEvent, SeccompRequest, SeccompResponse};
use protocol::Protocol;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum SeccompCmd {
    /// Round trip to the server.
    Ping,
    /// Compile a profile: FILE is a config.json (its linux.seccomp) or a
    /// bare linux.seccomp object. Prints the instruction count.
    Compile {
        file: PathBuf,
        /// A runtime-spec architecture (SCMP_ARCH_X86_64, ...); default: this machine's.
        #[arg(long)]
        arch: Option<String>,
        /// Print the program, one instruction a line (bpf_asm-like).
        #[arg(long)]
        dump: bool,
    },
    /// What the notify agent was notified of and decided, per container.
    Stats {
        id: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Every notification as it is decided, one JSON object a line.
    Events {
        /// Only this container's.
        id: Option<String>,
    },
    /// Any other verb: the server answers "unsupported".
    #[command(external_subcommand)]
    Other(Vec<String>),
}

pub fn run(root: &Path, cmd: SeccompCmd) -> anyhow::Result<()> {
    match cmd {
        SeccompCmd::Ping => super::ping::<Seccomp>(root),
        SeccompCmd::Compile { file, arch, dump } => compile(root, &file, arch, dump),
        SeccompCmd::Stats { id, json } => stats(root, id, json),
        SeccompCmd::Events { id } => events(root, id),
        SeccompCmd::Other(words) => {
            let (name, args) = words
                .split_first()
                .map(|(n, a)| (n.clone(), a.to_vec()))
                .unwrap_or_default();
            let resp = super::call::<Seccomp>(root, SeccompRequest::Verb { name, args })?;
            anyhow::bail!("{} answered an unknown verb with {resp:?}", Seccomp::NAME)
        }
    }
}

/// linux.seccomp out of a config.json, or the file itself when it is one.
fn profile_of(file: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", file.display()))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", file.display()))?;
    if v.get("linux").is_some() || v.get("ociVersion").is_some() {
        return crate::lifecycle::seccomp::profile_json(&v).ok_or_else(|| {
            anyhow::anyhow!("{}: a config.json without linux.seccomp", file.display())
        });
    }
    if v.get("defaultAction").is_none() {
        anyhow::bail!(
            "{}: neither a config.json nor a linux.seccomp object (no defaultAction)",
            file.display()
        );
    }
    Ok(text)
}

fn compile(root: &Path, file: &Path, arch: Option<String>, dump: bool) -> anyhow::Result<()> {
    let req = SeccompRequest::Compile {
        profile_json: profile_of(file)?,
        arch,
    };
    let SeccompResponse::Compiled(p) = super::call::<Seccomp>(root, req)? else {
        anyhow::bail!("{} answered compile with something else", Seccomp::NAME);
    };
    for w in &p.warnings {
        eprintln!("warning: {w}");
    }
    if dump {
        print!("{}", seccomp_monitor::compiler::dump(&p.insns));
    }
    println!(
        "{} instructions, flags {:#x}{}, sha256 {}{}",
        p.insns.len(),
        p.flags,
        if p.needs_listener {
            " (new listener)"
        } else {
            ""
        },
        p.hash,
        if p.cached { " (cached)" } else { "" }
    );
    Ok(())
}

fn stats(root: &Path, id: Option<String>, as_json: bool) -> anyhow::Result<()> {
    let SeccompResponse::Stats(all) = super::call::<Seccomp>(root, SeccompRequest::Stats { id })?
    else {
        anyhow::bail!("{} answered stats with something else", Seccomp::NAME);
    };
    if as_json {
        let v: Vec<Value> = all
            .iter()
            .map(|s| json!({"id": s.id, "notified": s.notified, "continued": s.continued, "failed": s.failed}))
            .collect();
        println!("{}", json!({ "containers": v }));
        return Ok(());
    }
    println!(
        "{:<24} {:>9} {:>9} {:>9}",
        "ID", "NOTIFIED", "CONTINUED", "FAILED"
    );
    for s in all {
        println!(
            "{:<24} {:>9} {:>9} {:>9}",
            s.id, s.notified, s.continued, s.failed
        );
    }
    Ok(())
}

fn event_json(ev: &SeccompEvent) -> Value {
    let SeccompEvent::Notified {
        id,
        pid,
        syscall,
        nr,
        args,
        decision,
        at_unix_ms,
    } = ev;
    json!({
        "type": "notified", "id": id, "pid": pid, "syscall": syscall, "nr": nr,
        "args": args, "decision": decision, "at_unix_ms": at_unix_ms,
    })
}

fn events(root: &Path, id: Option<String>) -> anyhow::Result<()> {
    if let Some(id) = &id {
        protocol::validate_id("container id", id)?;
    }
    let mut sub =
        libipc::Client::<Seccomp>::subscribe(root, id.clone(), libipc::ClientOptions::default())?;
    match &id {
        Some(id) => eprintln!("watching seccomp notifications of container {id}"),
        None => eprintln!("watching seccomp notifications of every container"),
    }
    let mut out = std::io::stdout();
    loop {
        if let Some(ev) = sub.next(None)? {
            writeln!(out, "{}", event_json(&ev))?;
            out.flush()?;
        }
    }
}
