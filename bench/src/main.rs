//! asterism-bench: the constellation's figures, in one run, as a report.
//!
//! 1. ping round trip through libipc against a raw SEQPACKET ping-pong;
//! 2. requests per second with 1, 4 and 16 clients (ping and a real request);
//! 3. idle RSS of init plus the five servers;
//! 4. time from SIGKILL of a server to its first answered request.
//!
//! Figures are printed next to their targets and never asserted: the
//! machine is shared, so every sample set also gets its spread and the load
//! average is printed at start and end.

mod constellation;
mod lifecycle;
mod lifecycle_bundle;
mod lifecycle_cgroups;
mod lifecycle_measure;
mod lifecycle_runtime;
mod raw;
mod recovery;
mod rps;
mod rss;
mod rtt;
mod seccomp;
mod stats;

use anyhow::{anyhow, bail, Result};
use constellation::Constellation;
use libipc::{Client, ClientOptions};
use protocol::memory::{Limit, Memory, MemoryLimits, MemoryRequest};
use stats::{fmt, ratio};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: asterism-bench [--rtt-samples N] [--rps-secs S] [--kills N]
  Starts a private constellation (init from $ASTERISM_BIN_DIR or beside this
  binary), prints the benchmark report, stops it and removes its cgroups.
usage: asterism-bench lifecycle [--runs N] [--phases N] [--containers N] [--rss N]
  Issue 3's benchmark: asterism's ipc, runc and crun side by side (see --help).";

struct Config {
    rtt_samples: usize,
    rtt_warmup: usize,
    rps_duration: Duration,
    kills: usize,
    /// Groups registered with memory-controller so `List` reads real cgroups.
    list_groups: usize,
}

impl Config {
    fn from_args(args: &[String]) -> Result<Config> {
        let mut c = Config {
            rtt_samples: 20_000,
            rtt_warmup: 2_000,
            rps_duration: Duration::from_secs(2),
            kills: 20,
            list_groups: 4,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = || -> Result<u64> {
                let v = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
                v.parse().map_err(|_| anyhow!("{a} {v:?} is not a number"))
            };
            match a.as_str() {
                "--rtt-samples" => c.rtt_samples = num()?.max(1) as usize,
                "--rps-secs" => c.rps_duration = Duration::from_secs(num()?.max(1)),
                "--kills" => c.kills = num()?.max(1) as usize,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        c.rtt_warmup = (c.rtt_samples / 10).max(100);
        Ok(c)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("lifecycle") => lifecycle::main(&args[1..]),
        Some("seccomp") => seccomp::main(&args[1..]),
        Some("--echo") => match args.get(1) {
            Some(p) => raw::echo_child(Path::new(p)),
            None => Err(anyhow!("--echo needs a socket path")),
        },
        _ => Config::from_args(&args).and_then(|c| run(&c)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("asterism-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: &Config) -> Result<()> {
    constellation::install_interrupt_cleanup()?;
    println!("asterism benchmark: figures printed next to their targets, never asserted");
    println!(
        "host: {} cores; binaries from {}",
        cores(),
        constellation::bin_dir()?.display()
    );
    println!("[n] = item n of issue 2's benchmark list; idle RSS runs first, before any load");
    println!("load average at start: {}", loadavg());
    let c = Constellation::start(&["--max-restarts", "1000", "--restart-window", "1"])?;
    let root = c.root().to_path_buf();
    println!(
        "constellation: init pid {} on root {}",
        c.init_pid(),
        root.display()
    );
    let result = sections(cfg, &c);
    if result.is_err() {
        eprintln!("init and server log (last lines):\n{}", c.log_tail(30));
    }
    let log_lines = c.log_lines();
    drop(c);
    println!();
    println!("load average at end: {}", loadavg());
    println!(
        "cleanup: init stopped by SIGTERM; {} log lines from init and servers (kill warnings expected); {}",
        log_lines,
        leftover_report(&root)
    );
    result
}

fn sections(cfg: &Config, c: &Constellation) -> Result<()> {
    std::thread::sleep(Duration::from_secs(2));
    print_rss(
        c,
        "[3] idle RSS of init + 5 servers (2 s after ready, before any load)",
    )?;
    print_rtt(cfg, c)?;
    let groups = register_groups(c.root(), cfg.list_groups)?;
    print_rps(cfg, c, groups.len())?;
    unregister_groups(c.root(), &groups);
    std::thread::sleep(Duration::from_secs(1));
    print_rss(
        c,
        "[3b] RSS after the load above (not the target's measure; for comparison, after 1 s idle)",
    )?;
    print_recovery(cfg, c)
}

fn print_rtt(cfg: &Config, c: &Constellation) -> Result<()> {
    let blocks = 10;
    println!();
    println!(
        "[1] request round trip: {} timed round trips each after {} warm-up, alternating in {blocks} blocks",
        cfg.rtt_samples, cfg.rtt_warmup
    );
    let r = rtt::run(
        c.root(),
        c.scratch(),
        cfg.rtt_samples,
        cfg.rtt_warmup,
        blocks,
    )?;
    println!(
        "   raw SEQPACKET ping-pong, 2 processes, {} B messages: p50 {}  p99 {}",
        r.msg_len,
        fmt(r.raw.pct(50.0)),
        fmt(r.raw.pct(99.0))
    );
    println!("     spread: {}", r.raw.spread());
    println!(
        "   libipc Client ping -> memory-controller:           p50 {}  p99 {}",
        fmt(r.ipc.pct(50.0)),
        fmt(r.ipc.pct(99.0))
    );
    println!("     spread: {}", r.ipc.spread());
    println!(
        "   ratio libipc / raw: p50 {}  p99 {}   [target <= 1.5x raw]",
        ratio(r.ipc.pct(50.0), r.raw.pct(50.0)),
        ratio(r.ipc.pct(99.0), r.raw.pct(99.0))
    );
    Ok(())
}

fn print_rps(cfg: &Config, c: &Constellation, groups: usize) -> Result<()> {
    println!();
    println!(
        "[2] requests per second, each for {:?}, one thread and one Client (connection) per client",
        cfg.rps_duration
    );
    for (kind, label) in [
        (rps::Kind::Ping, "ping".to_string()),
        (rps::Kind::List, format!("memory List ({groups} groups)")),
    ] {
        for clients in [1, 4, 16] {
            let t = rps::run(c.root(), kind, clients, cfg.rps_duration)?;
            println!(
                "   {label:<24} {:>2} client(s): {:>8.0} req/s   [no target in issue 2; for scale]",
                t.clients,
                t.per_sec()
            );
            println!("     latency spread: {}", t.latency.spread());
        }
    }
    Ok(())
}

fn print_rss(c: &Constellation, title: &str) -> Result<()> {
    println!();
    println!("{title}");
    let procs = c.processes()?;
    let all = rss::measure(&procs)?;
    for p in &all {
        println!(
            "   {:<18} pid {:>7}  VmRSS {:>6} KiB  (anon {:>5}, file {:>5})  Pss {:>5} KiB  threads {:>2}",
            p.name, p.pid, p.vm_rss_kib, p.rss_anon_kib, p.rss_file_kib, p.pss_kib, p.threads
        );
    }
    let total: u64 = all.iter().map(|p| p.vm_rss_kib).sum();
    let anon: u64 = all.iter().map(|p| p.rss_anon_kib).sum();
    let pss: u64 = all.iter().map(|p| p.pss_kib).sum();
    println!(
        "   total VmRSS {:.2} MiB ({} KiB) over {} processes   [target <= 12 MiB total]",
        total as f64 / 1024.0,
        total,
        all.len()
    );
    println!(
        "     of which anon {:.2} MiB; total Pss {:.2} MiB (shared pages counted once)",
        anon as f64 / 1024.0,
        pss as f64 / 1024.0
    );
    Ok(())
}

fn print_recovery(cfg: &Config, c: &Constellation) -> Result<()> {
    let spacing = Duration::from_millis(1100);
    println!();
    println!(
        "[4] SIGKILL -> first answered ping (retrying, connected Client), {} kills per server, {} apart",
        cfg.kills,
        fmt(spacing)
    );
    let results = [
        recovery::run::<Memory>(c, cfg.kills, spacing)?,
        recovery::run::<protocol::cpu::Cpu>(c, cfg.kills, spacing)?,
    ];
    for r in &results {
        let s = &r.kill_to_pong;
        println!(
            "   {:<18} median {}  p90 {}  max {}   [target median <= 50 ms]",
            r.server,
            fmt(s.pct(50.0)),
            fmt(s.pct(90.0)),
            fmt(s.max())
        );
        println!("     spread: {}", s.spread());
        if r.same_pid > 0 {
            println!(
                "     WARNING: {} pongs came from the pid that was killed",
                r.same_pid
            );
        }
    }
    let st = c.status()?;
    for s in st["servers"].as_array().into_iter().flatten() {
        if s["name"] == "memory-controller" || s["name"] == "cpu-controller" {
            println!(
                "   {}: state {}, restarts {} (per ipc status)",
                s["name"].as_str().unwrap_or("?"),
                s["state"],
                s["restarts"]
            );
        }
    }
    Ok(())
}

/// Registers `n` memory groups so that `List` reads real cgroup files.
fn register_groups(root: &Path, n: usize) -> Result<Vec<String>> {
    let mut client = Client::<Memory>::new(root, ClientOptions::default());
    let mut ids = vec![];
    for i in 0..n {
        let id = format!("bench-{i}");
        let req = MemoryRequest::Create {
            id: id.clone(),
            parent: None,
            limits: MemoryLimits {
                limit: Some(Limit::Value(64 << 20)),
                ..MemoryLimits::default()
            },
        };
        client
            .call(req, Some(libipc::client::new_key("create", &id)))
            .map_err(|e| anyhow!("create memory group {id}: {e}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// Deletes the groups (the constellation's cgroups are removed at the end
/// in any case; this keeps the recovery runs' tables as small as at start).
fn unregister_groups(root: &Path, ids: &[String]) {
    let mut client = Client::<Memory>::new(root, ClientOptions::default());
    for id in ids {
        let req = MemoryRequest::Delete {
            id: id.clone(),
            force: true,
        };
        if let Err(e) = client.call(req, Some(libipc::client::new_key("delete", id))) {
            eprintln!("warning: delete memory group {id}: {e}");
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unreadable ({e})"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// Whether any of the constellation's cgroup directories survived cleanup.
fn leftover_report(root: &Path) -> String {
    let left = constellation::leftover_cgroups(root);
    if left.is_empty() {
        "no cgroup directory left".into()
    } else {
        format!("LEFT BEHIND: {left:?}")
    }
}
