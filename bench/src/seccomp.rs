//! Issue 4's benchmark (`asterism-bench seccomp`): compile time of the moby
//! default profile (cold, and the service's cache path: profile_hash plus a
//! HashMap lookup), and the per-syscall cost under our compiled program,
//! under libseccomp's program for the same profile (built as runc builds
//! it), and under no filter. Figures are printed, never asserted.
//!
//! The kernel (5.11+) skips the filter for syscalls it proved always
//! allowed on the native arch (the seccomp action cache), so getpid costs
//! about the same under any allow-list; personality(0xffffffff) (an argument
//! rule) and an unknown syscall number (the default action, the deepest
//! path of a linear filter) run the BPF program every time.

use crate::stats::{fmt, ratio, Samples};
use anyhow::{anyhow, bail, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use protocol::seccomp::Insn;
use seccomp_monitor::compiler;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::str::FromStr;
use std::time::{Duration, Instant};

const USAGE: &str = "usage: asterism-bench seccomp [--iters N] [--calls N] [--runs N]
  compile time (N compiles), and N getpid-like calls per child, best of R children";

pub fn main(args: &[String]) -> Result<()> {
    let (mut iters, mut calls, mut runs) = (2000usize, 200_000usize, 5usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = || -> Result<usize> {
            let v = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
            v.parse().map_err(|_| anyhow!("{a} {v:?} is not a number"))
        };
        match a.as_str() {
            "--iters" => iters = num()?.max(1),
            "--calls" => calls = num()?.max(1),
            "--runs" => runs = num()?.max(1),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    println!("asterism seccomp benchmark: figures printed, never asserted");
    compile_times(iters)?;
    syscall_costs(calls, runs)
}

fn compile_times(iters: usize) -> Result<()> {
    let profile = compiler::moby_default_profile_json();
    let mut cold = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let c = compiler::compile(profile, None).map_err(|e| anyhow!("{}", e.message))?;
        cold.push(t.elapsed());
        std::hint::black_box(c);
    }
    let mut cache = HashMap::new();
    let compiled = compiler::compile(profile, None).map_err(|e| anyhow!("{}", e.message))?;
    let len = compiled.program.len();
    cache.insert(compiler::profile_hash(profile, None), compiled);
    let mut cached = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let hit = cache.get(&compiler::profile_hash(profile, None));
        cached.push(t.elapsed());
        assert!(std::hint::black_box(hit).is_some());
    }
    let (cold, cached) = (
        Samples::from_durations(&cold),
        Samples::from_durations(&cached),
    );
    println!("moby default profile: {len} BPF instructions");
    println!(
        "compile (cold):   p50 {} (target < 1 ms)   {}",
        fmt(cold.pct(50.0)),
        cold.spread()
    );
    println!(
        "compile (cached): p50 {} (target < 10 us)  {}   [profile_hash + HashMap lookup]",
        fmt(cached.pct(50.0)),
        cached.spread()
    );
    Ok(())
}

struct Probe {
    name: &'static str,
    nr: i64,
    arg0: u64,
}

fn syscall_costs(calls: usize, runs: usize) -> Result<()> {
    let profile = compiler::moby_default_profile_json();
    let ours = compiler::compile(profile, None)
        .map_err(|e| anyhow!("{}", e.message))?
        .program;
    let theirs = libseccomp_program(profile)?;
    println!(
        "programs: ours {} insns, libseccomp {} insns (x86_64 + x86 + x32)",
        ours.len(),
        theirs.len()
    );
    let probes = [
        Probe {
            name: "getpid (kernel action cache)",
            nr: 39,
            arg0: 0,
        },
        Probe {
            name: "personality(0xffffffff) (arg rule)",
            nr: 135,
            arg0: 0xffff_ffff,
        },
        Probe {
            name: "nr 1000 (not in profile: default)",
            nr: 1000,
            arg0: 0,
        },
    ];
    println!("per-syscall cost, best of {runs} children x {calls} calls:");
    for p in &probes {
        let none = best(runs, || time_calls(None, p, calls))?;
        let o = best(runs, || time_calls(Some(&ours), p, calls))?;
        let l = best(runs, || time_calls(Some(&theirs), p, calls))?;
        println!(
            "  {:<38} none {:>7}  ours {:>7}  libseccomp {:>7}  ours/libseccomp {}  ours-none {} vs libseccomp-none {}",
            p.name,
            fmt(none),
            fmt(o),
            fmt(l),
            ratio(o, l),
            fmt(o.saturating_sub(none)),
            fmt(l.saturating_sub(none)),
        );
    }
    Ok(())
}

fn best(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut b = Duration::MAX;
    for _ in 0..runs {
        b = b.min(f()?);
    }
    Ok(b)
}

/// libseccomp's program for the profile, as runc builds it.
fn libseccomp_program(profile: &str) -> Result<Vec<Insn>> {
    let p: Value = serde_json::from_str(profile)?;
    let act = |v: &Value, errno_key: &str| -> Result<ScmpAction> {
        let name = v[if errno_key == "errnoRet" {
            "action"
        } else {
            "defaultAction"
        }]
        .as_str()
        .unwrap_or_default();
        let e = v.get(errno_key).and_then(Value::as_i64).unwrap_or(1) as i32;
        let e = matches!(name, "SCMP_ACT_ERRNO" | "SCMP_ACT_TRACE").then_some(e);
        Ok(ScmpAction::from_str(name, e)?)
    };
    let default = act(&p, "defaultErrnoRet")?;
    let mut f = ScmpFilterContext::new_filter(default)?;
    for a in p["architectures"].as_array().into_iter().flatten() {
        f.add_arch(ScmpArch::from_str(a.as_str().unwrap_or_default())?)?;
    }
    for rule in p["syscalls"].as_array().into_iter().flatten() {
        let action = act(rule, "errnoRet")?;
        if action == default {
            continue;
        }
        let mut conds = Vec::new();
        for a in rule["args"].as_array().into_iter().flatten() {
            let (idx, v) = (
                a["index"].as_u64().unwrap_or(0) as u32,
                a["value"].as_u64().unwrap_or(0),
            );
            let two = a.get("valueTwo").and_then(Value::as_u64).unwrap_or(0);
            conds.push(match a["op"].as_str().unwrap_or_default() {
                "SCMP_CMP_MASKED_EQ" => {
                    ScmpArgCompare::new(idx, ScmpCompareOp::MaskedEqual(v), two)
                }
                op => ScmpArgCompare::new(idx, ScmpCompareOp::from_str(op)?, v),
            });
        }
        for name in rule["names"].as_array().into_iter().flatten() {
            if let Ok(sc) = ScmpSyscall::from_name(name.as_str().unwrap_or_default()) {
                f.add_rule_conditional(action, sc, &conds)?;
            }
        }
    }
    let mut file = tempfile::tempfile()?;
    f.export_bpf(&mut file)?;
    let mut bytes = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Forks a child that installs `filter` (none: no filter), makes `calls`
/// calls of the probe and reports the mean time per call through a pipe.
/// The child of this single-threaded benchmark makes only raw syscalls.
#[allow(unsafe_code)]
fn time_calls(filter: Option<&[Insn]>, p: &Probe, calls: usize) -> Result<Duration> {
    let bytes = filter
        .map(compiler::to_sock_filter_bytes)
        .unwrap_or_default();
    let prog = libc::sock_fprog {
        len: (bytes.len() / 8) as u16,
        filter: bytes.as_ptr() as *mut libc::sock_filter,
    };
    let mut fds = [0i32; 2];
    // SAFETY: pipe fills the two-element array we own.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the child makes raw syscalls on memory prepared before the
    // fork, then _exits; the parent waits for it by pid.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            libc::close(fds[0]);
            if filter.is_some()
                && (libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_seccomp, 1, 0, &prog) != 0)
            {
                libc::_exit(1);
            }
            let mut t0 = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let mut t1 = t0;
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t0);
            for _ in 0..calls {
                libc::syscall(p.nr, p.arg0, 0, 0, 0, 0, 0);
            }
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t1);
            let ns: u64 = ((t1.tv_sec - t0.tv_sec) as u64) * 1_000_000_000
                + (t1.tv_nsec as u64).wrapping_sub(t0.tv_nsec as u64);
            libc::write(fds[1], &ns as *const u64 as *const libc::c_void, 8);
            libc::_exit(0);
        }
    }
    // SAFETY: fds[1] is our copy of the write end; fds[0] becomes a File.
    unsafe { libc::close(fds[1]) };
    let mut out = Vec::new();
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
    file.read_to_end(&mut out)?;
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let ns = u64::from_ne_bytes(
        out.as_slice()
            .try_into()
            .map_err(|_| anyhow!("child failed to install the filter or to report"))?,
    );
    Ok(Duration::from_nanos(ns / calls as u64))
}
