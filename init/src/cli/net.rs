//! `ipc netstack VERB`: the netstack's verbs.
//!
//! `loopback ID --pid PID` opens /proc/PID/ns/net here and passes it to the
//! server (SCM_RIGHTS), which brings `lo` up inside that namespace;
//! `--netns PATH` passes any namespace file instead (a bind-mounted
//! /run/netns/NAME, say). Any other verb is sent as is and answered
//! "unsupported" (veth, bridge and NAT are not built yet).

use clap::Subcommand;
use libipc::client::new_key;
use protocol::net::{Net, NetLoopback, NetRequest, NetResponse};
use protocol::Protocol;
use serde_json::{json, Value};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum NetCmd {
    /// Round trip to the server.
    Ping,
    /// Bring `lo` up in a container's network namespace.
    Loopback {
        /// Container id: [A-Za-z0-9][A-Za-z0-9_.-]{0,127}.
        id: String,
        /// A process in the namespace (its /proc/PID/ns/net is passed).
        #[arg(long, conflicts_with = "netns", required_unless_present = "netns")]
        pid: Option<i32>,
        /// A network namespace file to pass instead.
        #[arg(long, value_name = "PATH")]
        netns: Option<PathBuf>,
    },
    /// Forget a container (its namespace goes with its last process).
    Release { id: String },
    /// Every container whose loopback is up.
    List {
        /// One JSON object: {"loopbacks": [...]}.
        #[arg(long)]
        json: bool,
    },
    /// Any other verb: answered "unsupported" until it is built.
    #[command(external_subcommand)]
    Other(Vec<String>),
}

pub fn run(root: &Path, cmd: NetCmd) -> anyhow::Result<()> {
    match cmd {
        NetCmd::Ping => super::ping::<Net>(root),
        NetCmd::Loopback { id, pid, netns } => {
            let path = match (pid, netns) {
                (_, Some(p)) => p,
                (Some(pid), None) if pid > 0 => PathBuf::from(format!("/proc/{pid}/ns/net")),
                (Some(pid), None) => anyhow::bail!("--pid {pid}: not a process id"),
                (None, None) => anyhow::bail!("give --pid PID or --netns PATH"),
            };
            let fd: OwnedFd = std::fs::File::open(&path)
                .map_err(|e| anyhow::anyhow!("open {}: {e}", path.display()))?
                .into();
            let mut c = super::client::<Net>(root)?;
            let req = NetRequest::Loopback { id: id.clone() };
            match c
                .call_with_fds(req, Some(new_key("loopback", &id)), vec![fd])?
                .0
            {
                NetResponse::LoopbackUp(l) => println!(
                    "lo is up in {} for container {} (ifindex {}, flags {:#x})",
                    l.netns, l.id, l.ifindex, l.flags
                ),
                other => anyhow::bail!("{} answered loopback with {other:?}", Net::NAME),
            }
            Ok(())
        }
        NetCmd::Release { id } => {
            let mut c = super::client::<Net>(root)?;
            c.call(
                NetRequest::Release { id: id.clone() },
                Some(new_key("release", &id)),
            )?;
            println!("released container {id} from netstack");
            Ok(())
        }
        NetCmd::List { json } => list(root, json),
        NetCmd::Other(words) => {
            let (name, args) = words
                .split_first()
                .map(|(n, a)| (n.clone(), a.to_vec()))
                .unwrap_or_default();
            let resp = super::client::<Net>(root)?.call(NetRequest::Verb { name, args }, None)?;
            anyhow::bail!("{} answered an unbuilt verb with {resp:?}", Net::NAME)
        }
    }
}

fn list(root: &Path, json: bool) -> anyhow::Result<()> {
    let NetResponse::List(all) = super::client::<Net>(root)?.call(NetRequest::List, None)? else {
        anyhow::bail!("{} answered list with something else", Net::NAME);
    };
    if json {
        let all: Vec<Value> = all.iter().map(loopback_json).collect();
        println!("{}", json!({ "loopbacks": all }));
        return Ok(());
    }
    println!(
        "{:<24} {:<20} {:>7} {:>8}",
        "ID", "NETNS", "IFINDEX", "FLAGS"
    );
    for l in &all {
        println!(
            "{:<24} {:<20} {:>7} {:>#8x}",
            l.id, l.netns, l.ifindex, l.flags
        );
    }
    Ok(())
}

fn loopback_json(l: &NetLoopback) -> Value {
    json!({
        "id": l.id,
        "netns": l.netns,
        "ifindex": l.ifindex,
        "flags": l.flags,
        "at_unix_ms": l.at_unix_ms,
    })
}
