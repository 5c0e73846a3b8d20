//! `asterism-bench lifecycle`: issue 3's benchmark. asterism's `ipc`,
//! Debian's runc and crun side by side in one run, on the same busybox
//! bundle (`runc spec`'s config running /bin/true):
//!
//! 1. `run` (foreground, which deletes the container when it exits);
//! 2. create, start, wait and delete timed separately;
//! 3. containers per second, one at a time and 4 at once;
//! 4. peak RSS of the runtime's own process during a `run`;
//! 5. `run` again with many containers of each runtime kept running (how
//!    the cost of a container grows with the number already there).
//!
//! Figures are printed with ratios, never asserted. asterism's
//! constellation is started once, warm, before anything is timed; runc and
//! crun each get a private --root. Runtimes alternate sample by sample (in
//! rotating order) so that the shared machine's drift hits all three alike.
//! Everything made (containers, cgroups, roots, the namespace) is removed
//! at the end, on error and on Ctrl-C too.

use crate::constellation::{self, Constellation};
use crate::lifecycle_bundle::Bundles;
use crate::lifecycle_cgroups::{self as cgroups, CgroupMount};
use crate::lifecycle_measure as measure;
use crate::lifecycle_runtime::{self as runtime, CrunNs, Kind, Runtime};
use crate::stats::{fmt, ratio, Samples};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: asterism-bench lifecycle [--runs N] [--phases N] [--containers N] [--rss N] [--crowd N]
  asterism's ipc, runc and crun side by side on one busybox bundle running /bin/true:
  run (+ delete), create/start/wait/delete, containers per second (1 and 4 at once),
  peak RSS of the runtime process, run with N containers of each runtime running
  (--crowd, default 100). Starts a private warm constellation, prints the
  report and removes every container, cgroup and root it made.";

struct Opts {
    runs: usize,
    phases: usize,
    containers: usize,
    workers: usize,
    rss: usize,
    warmup: usize,
    /// Containers of each runtime kept running in section 5.
    crowd: usize,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut o = Opts {
            runs: 60,
            phases: 30,
            containers: 200,
            workers: 4,
            rss: 10,
            warmup: 3,
            crowd: 100,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut num = || -> Result<usize> {
                let v = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
                let n: usize = v
                    .parse()
                    .map_err(|_| anyhow!("{a} {v:?} is not a number"))?;
                Ok(n.max(1))
            };
            match a.as_str() {
                "--runs" => o.runs = num()?,
                "--phases" => o.phases = num()?,
                "--containers" => o.containers = num()?,
                "--rss" => o.rss = num()?,
                "--crowd" => o.crowd = num()?,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        Ok(o)
    }
}

pub fn main(args: &[String]) -> Result<()> {
    let opts = Opts::parse(args)?;
    if !nix::unistd::geteuid().is_root() {
        bail!("must run as root (containers, cgroups, namespaces)");
    }
    println!("asterism lifecycle benchmark: asterism (ipc) vs runc vs crun in one run; ratios printed, never asserted");
    println!("load average at start: {}", crate::loadavg());
    let env = Env::setup()?;
    env.describe();
    let result = report(&opts, &env);
    if let Err(e) = &result {
        if !interrupted() {
            eprintln!("init and server log (last lines):\n{}", env.log_tail());
        }
        eprintln!("lifecycle benchmark stopped: {e:#}");
    }
    println!();
    println!("load average at end: {}", crate::loadavg());
    drop(env);
    if interrupted() {
        std::process::exit(130);
    }
    result
}

/// Everything the benchmark made; `Drop` removes it all.
struct Env {
    scratch: tempfile::TempDir,
    /// Name of our cgroup subtree for runc's and crun's containers.
    prefix: String,
    mounts: Vec<CgroupMount>,
    bundles: Bundles,
    crun_ns: CrunNs,
    /// asterism, runc, crun.
    runtimes: Vec<Runtime>,
    constellation: Option<Constellation>,
    /// /run/crun when this run made it: crun makes it on every command,
    /// `crun --version` included, whatever its --root.
    crun_run_dir: Option<PathBuf>,
}

/// The directory every crun command makes when it is missing.
const CRUN_RUN_DIR: &str = "/run/crun";

impl Env {
    fn setup() -> Result<Env> {
        let scratch = tempfile::Builder::new()
            .prefix("ast-lcb-")
            .tempdir_in("/tmp")
            .context("create a private directory under /tmp")?;
        let prefix = scratch
            .path()
            .file_name()
            .context("scratch name")?
            .to_string_lossy()
            .into_owned();
        let mounts = cgroups::mounts()?;
        let crun_run_dir = (!Path::new(CRUN_RUN_DIR).exists()).then(|| PathBuf::from(CRUN_RUN_DIR));
        install_interrupt_cleanup(scratch.path(), &prefix, &mounts)?;
        let bundles = Bundles::create(scratch.path(), &prefix)?;
        // Before crun's namespace is made, so that it sees this mount too.
        let run = mount_run(scratch.path())?;
        let crun_ns = CrunNs::prepare(&mounts)?;
        let mut runtimes = vec![];
        for (kind, bin) in [(Kind::Runc, "runc"), (Kind::Crun, "crun")] {
            let root = run.join(format!("{bin}-root"));
            let ns = (kind == Kind::Crun).then_some(&crun_ns);
            runtimes.push(Runtime::new(kind, which(bin)?, root, ns));
        }
        let c = Constellation::start_at(&[], Some(run.join("asterism-root")))?;
        set_interrupt_init(&c);
        let ipc = Runtime::new(
            Kind::Asterism,
            constellation::bin("ipc")?,
            c.root().into(),
            None,
        );
        runtimes.insert(0, ipc);
        Ok(Env {
            scratch,
            prefix,
            mounts,
            bundles,
            crun_ns,
            runtimes,
            constellation: Some(c),
            crun_run_dir,
        })
    }

    fn describe(&self) {
        let c = self.constellation.as_ref().expect("constellation");
        println!("host: {} cores", crate::cores());
        println!(
            "state roots: all three runtimes' --root on one tmpfs, {}/run (as /run is on a usual host; here /run is on the disk)",
            self.scratch.path().display()
        );
        println!(
            "bundle: busybox-static rootfs {} (shared, root.readonly), config from `runc spec`: terminal false, args [\"true\"], namespaces {}, cgroupsPath \"{}/<runtime>-<id>\"",
            self.bundles.rootfs().display(),
            self.bundles.namespaces(),
            self.prefix
        );
        let bins = constellation::bin_dir().ok();
        // scripts/dist.sh says which target its ipc was built for.
        let ipc_target = bins
            .as_ref()
            .and_then(|d| std::fs::read_to_string(d.join("ipc.target")).ok())
            .map_or(String::new(), |t| format!(" (ipc built for {})", t.trim()));
        println!(
            "asterism: {} on {} (constellation started once, warm: init pid {}); binaries from {}{ipc_target}",
            self.runtimes[0].comm(),
            c.root().display(),
            c.init_pid(),
            bins.map_or("?".into(), |d| d.display().to_string())
        );
        for rt in &self.runtimes[1..] {
            println!(
                "{}: {} --root {}",
                rt.name(),
                rt.version(),
                rt.root().display()
            );
        }
        println!(
            "crun's private mount namespace (made once; every crun command joins it by setns(2) before exec): {}",
            self.crun_ns.changes.join("; ")
        );
    }

    fn log_tail(&self) -> String {
        self.constellation
            .as_ref()
            .map_or(String::new(), |c| c.log_tail(30))
    }

    /// Deletes what the runtimes still list, stops the constellation (and
    /// an init an `ipc` command may have started by itself), sweeps our
    /// cgroups; says what, if anything, survived.
    fn cleanup(&mut self) -> String {
        let mut notes = vec![];
        for rt in &self.runtimes {
            for e in rt.delete_all() {
                notes.push(format!("{}: {e}", rt.name()));
            }
        }
        let mut ours = vec![self.scratch.path().to_path_buf()];
        if let Some(c) = self.constellation.take() {
            ours.push(c.scratch().to_path_buf());
            notes.extend(stop_constellation(c));
        }
        unmount_run(self.scratch.path());
        let mounts = mounts_under(&ours);
        if !mounts.is_empty() {
            notes.push(format!("LEFT BEHIND mounts: {mounts:?}"));
        }
        let left = cgroups::sweep(&self.mounts, &self.prefix);
        if !left.is_empty() {
            notes.push(format!("LEFT BEHIND cgroups: {left:?}"));
        }
        for rt in &self.runtimes[1..] {
            let entries = std::fs::read_dir(rt.root()).map_or(0, |d| d.count());
            if entries > 0 {
                notes.push(format!("{} root still had {entries} entries", rt.name()));
            }
        }
        // Empty unless crun kept state there after all (then said, and kept).
        if let Some(dir) = self.crun_run_dir.take() {
            if let Err(e) = std::fs::remove_dir(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    notes.push(format!("LEFT BEHIND {}: {e}", dir.display()));
                }
            }
        }
        *INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()) = None;
        if notes.is_empty() {
            format!(
                "every container deleted, constellation stopped (SIGTERM to init), no cgroup directory (ours: {}) and no mount left, roots and bundles under {} removed (and {CRUN_RUN_DIR}, which crun makes, if it was not there before)",
                self.prefix,
                self.scratch.path().display()
            )
        } else {
            notes.join("; ")
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        println!("cleanup: {}", self.cleanup());
    }
}

/// The runtimes' state roots live on a tmpfs of our own at `<scratch>/run`,
/// as they do on a usual host (/run/runc, /run/crun and /run/asterism are
/// on the /run tmpfs). On this machine /run is on the disk, and a root
/// there makes every state write (and asterism's fsync of state.json) a
/// disk write, which no production host pays.
fn mount_run(scratch: &Path) -> Result<PathBuf> {
    let run = scratch.join("run");
    std::fs::create_dir(&run).with_context(|| format!("create {}", run.display()))?;
    nix::mount::mount(
        Some("tmpfs"),
        &run,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0700,size=256m"),
    )
    .with_context(|| format!("mount a tmpfs on {}", run.display()))?;
    Ok(run)
}

fn unmount_run(scratch: &Path) {
    let _ = nix::mount::umount2(&scratch.join("run"), nix::mount::MntFlags::MNT_DETACH);
}

/// Mount points under any of `dirs` (our scratch and constellation
/// directories): a runtime that left one behind.
fn mounts_under(dirs: &[PathBuf]) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| dirs.iter().any(|d| Path::new(m).starts_with(d)))
        .map(String::from)
        .collect()
}

/// SIGTERM to init (by pid), then to an init that an `ipc` command started
/// on our root if ours died; removes the constellation's cgroups.
fn stop_constellation(c: Constellation) -> Vec<String> {
    let root = c.root().to_path_buf();
    let ours = c.init_pid();
    let other = read_pid(&root.join("init.pid")).filter(|p| *p != ours);
    drop(c);
    if let Some(pid) = other {
        stop_init(pid, &root);
    }
    constellation::remove_cgroups(&root);
    let left = constellation::leftover_cgroups(&root);
    if left.is_empty() {
        vec![]
    } else {
        vec![format!("LEFT BEHIND constellation cgroups: {left:?}")]
    }
}

/// SIGTERM `pid` if it is an init on `root` (its command line names the
/// root), then wait up to 5 s for it to go; past that, SIGKILL it and every
/// process whose command line names the root (its servers: the root is a
/// fresh temporary directory, so nobody else's process names it).
fn stop_init(pid: i32, root: &Path) {
    if !names_root(pid, root) {
        return;
    }
    constellation::kill(pid, constellation::libc_sig::TERM);
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until && alive(pid) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if alive(pid) {
        eprintln!("warning: init (pid {pid}) did not exit within 5 s of SIGTERM; sending SIGKILL to it and its servers");
        kill_all_naming(root);
    }
}

fn names_root(pid: i32, root: &Path) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(&*root.to_string_lossy())
}

fn kill_all_naming(root: &Path) {
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        if pid > 0 && pid != me && names_root(pid, root) {
            constellation::kill(pid, constellation::libc_sig::KILL);
        }
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn which(bin: &str) -> Result<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(bin);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{bin} is not installed: apt-get install {bin} (bench/run does)")
}

/// Set by Ctrl-C (or SIGTERM): the measurements stop after the command in
/// flight and the normal cleanup runs on the main thread. Stopping the
/// main thread first matters: an `ipc` command spawned after the
/// constellation was stopped would start a new one by itself.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn interrupted() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// What a Ctrl-C must clean up if the main thread does not get to it.
struct Interrupt {
    scratch: PathBuf,
    prefix: String,
    mounts: Vec<CgroupMount>,
    /// init's pid, the constellation's root and its directory.
    init: Option<(i32, PathBuf, PathBuf)>,
}

/// `None` once the main thread's cleanup is done.
static INTERRUPT: Mutex<Option<Interrupt>> = Mutex::new(None);

fn install_interrupt_cleanup(scratch: &Path, prefix: &str, mounts: &[CgroupMount]) -> Result<()> {
    *INTERRUPT.lock().unwrap() = Some(Interrupt {
        scratch: scratch.into(),
        prefix: prefix.into(),
        mounts: mounts.to_vec(),
        init: None,
    });
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            return;
        }
        eprintln!("interrupted: stopping after the commands in flight, then cleaning up");
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if INTERRUPT
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
            {
                return; // the main thread cleaned up and exits with 130
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("the main thread is stuck: cleaning up from the signal handler");
        if let Some(i) = INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()).take() {
            hard_cleanup(&i);
        }
        std::process::exit(130);
    })
    .context("install the Ctrl-C handler")
}

/// Last resort: kill the runtime commands in flight (their command lines
/// name our scratch directory or the constellation's root), stop init,
/// remove every cgroup and directory we made.
fn hard_cleanup(i: &Interrupt) {
    kill_all_naming(&i.scratch);
    if let Some((pid, root, dir)) = &i.init {
        stop_init(*pid, root);
        if let Some(other) = read_pid(&root.join("init.pid")) {
            stop_init(other, root);
        }
        kill_all_naming(root);
        constellation::remove_cgroups(root);
        let _ = std::fs::remove_dir_all(dir);
    }
    cgroups::sweep(&i.mounts, &i.prefix);
    unmount_run(&i.scratch);
    let _ = std::fs::remove_dir_all(&i.scratch);
}

fn set_interrupt_init(c: &Constellation) {
    if let Some(i) = INTERRUPT.lock().unwrap().as_mut() {
        i.init = Some((c.init_pid(), c.root().into(), c.scratch().into()));
    }
}

/// One runtime's samples in one section, or the error that stopped it.
struct Series<T> {
    samples: Vec<T>,
    error: Option<String>,
}

/// `n` rounds; in each, every runtime still without error measures once,
/// the starting runtime rotating from round to round.
fn interleaved<T>(
    env: &Env,
    n: usize,
    mut f: impl FnMut(&Runtime, usize) -> Result<T>,
) -> Vec<Series<T>> {
    let k = env.runtimes.len();
    let mut out: Vec<Series<T>> = (0..k)
        .map(|_| Series {
            samples: vec![],
            error: None,
        })
        .collect();
    for i in 0..n {
        if interrupted() {
            break;
        }
        for j in 0..k {
            let r = (i + j) % k;
            if out[r].error.is_some() {
                continue;
            }
            match f(&env.runtimes[r], i) {
                Ok(v) => out[r].samples.push(v),
                Err(e) => out[r].error = Some(format!("{e:#}")),
            }
        }
    }
    out
}

fn report(o: &Opts, env: &Env) -> Result<()> {
    let hook = print_hook_overhead(env)?;
    let mut failed = vec![];
    let warm = interleaved(env, o.warmup, |rt, i| {
        measure::run_once(rt, &env.bundles, &format!("warm{i}"))
    });
    note_failures(env, "warm-up", &warm, &mut failed);
    let go_on = || {
        if interrupted() {
            bail!("interrupted (Ctrl-C or SIGTERM)");
        }
        Ok(())
    };
    go_on()?;
    let alone = print_runs(o, env, hook, &mut failed);
    go_on()?;
    print_phases(o, env, hook, &mut failed);
    go_on()?;
    print_throughput(o, env, hook, &mut failed);
    go_on()?;
    print_rss(o, env, &mut failed);
    go_on()?;
    print_crowded(o, env, hook, &alone, &mut failed);
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("{} failure(s); first: {}", failed.len(), failed[0])
    }
}

fn note_failures<T>(env: &Env, what: &str, series: &[Series<T>], failed: &mut Vec<String>) {
    for (rt, s) in env.runtimes.iter().zip(series) {
        if let Some(e) = &s.error {
            println!("   {} {what} FAILED: {e}", rt.name());
            failed.push(format!("{} {what}: {e}", rt.name()));
        }
    }
}

/// The setns hook's cost per crun command (p50 with minus p50 without),
/// printed with the per-command shell wrapper's cost for reference.
fn print_hook_overhead(env: &Env) -> Result<Duration> {
    let (plain, hooked) = runtime::hook_overhead(&env.crun_ns, 200)?;
    let (plain, hooked) = (
        Samples::from_durations(&plain),
        Samples::from_durations(&hooked),
    );
    let hook = hooked.pct(50.0).saturating_sub(plain.pct(50.0));
    let wrapper = Samples::from_durations(&runtime::wrapper_cost(20)?);
    println!(
        "crun's setns hook: spawn+wait of /bin/true p50 {} without, {} with it: {} per crun command, subtracted from every crun command's time below (crun*)",
        fmt(plain.pct(50.0)),
        fmt(hooked.pct(50.0)),
        fmt(hook)
    );
    println!("     without: {}", plain.spread());
    println!("     with:    {}", hooked.spread());
    println!(
        "   for reference, the per-command wrapper `unshare -m sh -c 'mount -t tmpfs ...; exec CMD'` costs p50 {} over /bin/true (not used)",
        fmt(wrapper.pct(50.0).saturating_sub(plain.pct(50.0)))
    );
    Ok(hook)
}

/// crun's samples less the hook's cost; the others unchanged.
fn adjusted(rt: &Runtime, d: &[Duration], hook: Duration) -> Samples {
    let hook = if rt.kind == Kind::Crun {
        hook
    } else {
        Duration::ZERO
    };
    Samples::new(
        d.iter()
            .map(|d| d.saturating_sub(hook).as_nanos() as u64)
            .collect(),
    )
}

fn label(rt: &Runtime) -> String {
    match rt.kind {
        Kind::Crun => "crun*".into(),
        _ => rt.name().into(),
    }
}

/// `n` foreground runs of each runtime, interleaved, with ids `<prefix>N`:
/// each runtime's times (crun's less the hook).
fn foreground_runs(
    env: &Env,
    n: usize,
    prefix: &str,
    hook: Duration,
    failed: &mut Vec<String>,
) -> Vec<Samples> {
    let series = interleaved(env, n, |rt, i| {
        measure::run_once(rt, &env.bundles, &format!("{prefix}{i}"))
    });
    note_failures(env, &format!("run ({prefix}N)"), &series, failed);
    env.runtimes
        .iter()
        .zip(&series)
        .map(|(rt, s)| adjusted(rt, &s.samples, hook))
        .collect()
}

/// Section 1; returns each runtime's median (crun's less the hook).
fn print_runs(o: &Opts, env: &Env, hook: Duration, failed: &mut Vec<String>) -> Vec<Duration> {
    println!();
    println!(
        "[1] run of /bin/true, foreground (every runtime deletes the container when it exits, so run = run + delete); {} each after {} warm-up, interleaved",
        o.runs, o.warmup
    );
    let stats = foreground_runs(env, o.runs, "r", hook, failed);
    for (rt, s) in env.runtimes.iter().zip(&stats) {
        if s.len() == 0 {
            continue;
        }
        println!(
            "   {:<9} median {:>9}  p90 {:>9}",
            label(rt),
            fmt(s.pct(50.0)),
            fmt(s.pct(90.0))
        );
        println!("     spread: {}", s.spread());
    }
    let (a, r, c) = (&stats[0], &stats[1], &stats[2]);
    println!(
        "   asterism/crun*: median {}  p90 {}   [target: asterism run + delete <= 0.5x crun's median]",
        ratio(a.pct(50.0), c.pct(50.0)),
        ratio(a.pct(90.0), c.pct(90.0))
    );
    println!(
        "   asterism/runc:  median {}  p90 {}",
        ratio(a.pct(50.0), r.pct(50.0)),
        ratio(a.pct(90.0), r.pct(90.0))
    );
    match runtime::kernel_floor(o.runs) {
        Ok(floor) => {
            let f = Samples::from_durations(&floor);
            println!(
                "   kernel floor, no runtime: `unshare --fork --pid --net --ipc --uts --mount --mount-proc /bin/true` median {} = {} of crun*'s median (no cgroup, rootfs, pivot_root or state)",
                fmt(f.pct(50.0)),
                ratio(f.pct(50.0), c.pct(50.0))
            );
        }
        Err(e) => println!("   kernel floor: not measured: {e:#}"),
    }
    check_deleted(env, "[1]", failed);
    stats.iter().map(|s| s.pct(50.0)).collect()
}

/// Section 5: `run` of /bin/true as in section 1, while `o.crowd`
/// containers of every runtime sleep. Their state, groups and namespaces
/// are what a runtime may walk on each command.
fn print_crowded(
    o: &Opts,
    env: &Env,
    hook: Duration,
    alone: &[Duration],
    failed: &mut Vec<String>,
) {
    println!();
    println!(
        "[5] run of /bin/true as in [1], {} each, interleaved, while {} containers of each runtime run `sleep` (started with run --detach, not timed)",
        o.runs, o.crowd
    );
    let ids: Vec<String> = (0..o.crowd).map(|i| format!("crowd{i}")).collect();
    let mut kept = vec![vec![]; env.runtimes.len()];
    for (k, rt) in env.runtimes.iter().enumerate() {
        for id in &ids {
            let started = env
                .bundles
                .make_running(rt.name(), id, &["sleep", "3600"])
                .and_then(|b| rt.run_detached(&b, id));
            match started {
                Ok(_) => kept[k].push(id.clone()),
                Err(e) => {
                    println!("   {} run --detach FAILED: {e:#}", rt.name());
                    failed.push(format!("{} run --detach {id}: {e:#}", rt.name()));
                    break;
                }
            }
        }
    }
    let stats = foreground_runs(env, o.runs, "c", hook, failed);
    for (k, (rt, s)) in env.runtimes.iter().zip(&stats).enumerate() {
        if s.len() == 0 {
            continue;
        }
        println!(
            "   {:<9} median {:>9}  p90 {:>9}   ({} of its median in [1], with {} running)",
            label(rt),
            fmt(s.pct(50.0)),
            fmt(s.pct(90.0)),
            ratio(s.pct(50.0), alone[k]),
            kept[k].len()
        );
    }
    println!(
        "   asterism/crun*: median {}   asterism/runc: median {}",
        ratio(stats[0].pct(50.0), stats[2].pct(50.0)),
        ratio(stats[0].pct(50.0), stats[1].pct(50.0))
    );
    for (rt, ids) in env.runtimes.iter().zip(&kept) {
        for id in ids {
            let gone = rt.timed(&["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
            if let Err(e) = gone {
                println!("   {} delete --force {id} FAILED: {e:#}", rt.name());
                failed.push(format!("{} delete --force {id}: {e:#}", rt.name()));
            }
        }
    }
    check_deleted(env, "[5]", failed);
}

/// After foreground runs every runtime should list nothing.
fn check_deleted(env: &Env, section: &str, failed: &mut Vec<String>) {
    for rt in &env.runtimes {
        match rt.ids() {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                println!(
                    "   WARNING: after {section} {} still lists {ids:?}",
                    rt.name()
                );
                failed.push(format!("{} left containers after {section}", rt.name()));
            }
            Err(e) => {
                println!("   {} list FAILED: {e:#}", rt.name());
                failed.push(format!("{} list: {e:#}", rt.name()));
            }
        }
    }
}

fn print_phases(o: &Opts, env: &Env, hook: Duration, failed: &mut Vec<String>) {
    println!();
    println!(
        "[2] create / start / wait / delete timed separately, {} each, interleaved (wait = start's exit -> the container's exit, by pidfd; no command, so nothing subtracted)",
        o.phases
    );
    let series = interleaved(env, o.phases, |rt, i| {
        measure::phases_once(rt, &env.bundles, &format!("p{i}"))
    });
    note_failures(env, "create/start/wait/delete", &series, failed);
    type Pick = fn(&measure::Phases) -> Duration;
    let phases: [(&str, Pick, bool); 4] = [
        ("create", |p| p.create, true),
        ("start", |p| p.start, true),
        ("wait", |p| p.wait, false),
        ("delete", |p| p.delete, true),
    ];
    let mut medians = vec![[Duration::ZERO; 4]; env.runtimes.len()];
    for (k, (rt, s)) in env.runtimes.iter().zip(&series).enumerate() {
        if s.samples.is_empty() {
            continue;
        }
        for (j, (name, pick, command)) in phases.iter().enumerate() {
            let d: Vec<Duration> = s.samples.iter().map(pick).collect();
            let st = adjusted(rt, &d, if *command { hook } else { Duration::ZERO });
            medians[k][j] = st.pct(50.0);
            println!(
                "   {:<9} {name:<6} median {:>9}  p90 {:>9}   spread: {}",
                label(rt),
                fmt(st.pct(50.0)),
                fmt(st.pct(90.0)),
                st.spread()
            );
        }
        let sum: Duration = medians[k].iter().sum();
        println!("   {:<9} sum of medians {}", label(rt), fmt(sum));
    }
    for (other, name) in [(2, "crun*"), (1, "runc")] {
        let r: Vec<String> = phases
            .iter()
            .enumerate()
            .map(|(j, (p, _, _))| format!("{p} {}", ratio(medians[0][j], medians[other][j])))
            .collect();
        println!("   asterism/{name} (medians): {}", r.join("  "));
    }
    check_deleted(env, "[2]", failed);
}

/// The throughput runs go in this many rounds, the runtimes taking turns
/// in each, so that the machine's drift over the seconds a runtime's batch
/// takes falls on all of them alike.
const ROUNDS: usize = 5;

fn print_throughput(o: &Opts, env: &Env, hook: Duration, failed: &mut Vec<String>) {
    println!();
    println!(
        "[3] containers per second: {} runs of /bin/true (run + delete) each, one at a time, then {} at once (each worker its own ids), in {ROUNDS} rounds that take turns between the runtimes; bundles written before the clock",
        o.containers, o.workers
    );
    let mut rates = vec![[0.0f64; 2]; env.runtimes.len()];
    for (j, workers) in [1, o.workers].into_iter().enumerate() {
        let mut batches: Vec<Option<measure::Batch>> = env.runtimes.iter().map(|_| None).collect();
        let mut broken = vec![false; env.runtimes.len()];
        for round in 0..ROUNDS {
            // The first containers % ROUNDS rounds run one more.
            let n = o.containers / ROUNDS + usize::from(round < o.containers % ROUNDS);
            for (k, rt) in env.runtimes.iter().enumerate() {
                if n == 0 || broken[k] {
                    continue;
                }
                let tag = format!("t{workers}r{round}");
                match measure::batch(rt, &env.bundles, &tag, n, workers) {
                    Ok(b) => match &mut batches[k] {
                        Some(all) => all.add(b),
                        none => *none = Some(b),
                    },
                    Err(e) => {
                        broken[k] = true;
                        println!("   {} {workers} at once FAILED: {e:#}", rt.name());
                        failed.push(format!("{} throughput x{workers}: {e:#}", rt.name()));
                    }
                }
            }
        }
        for (k, rt) in env.runtimes.iter().enumerate() {
            if let (Some(b), false) = (&batches[k], broken[k]) {
                rates[k][j] = print_batch(rt, b, workers, hook);
            }
        }
    }
    println!(
        "   asterism/crun* containers/s: one at a time {}  {} at once {}   [target at {}: >= 2x crun's]",
        rate_ratio(rates[0][0], rates[2][0]),
        o.workers,
        rate_ratio(rates[0][1], rates[2][1]),
        o.workers
    );
    println!(
        "   asterism/runc  containers/s: one at a time {}  {} at once {}",
        rate_ratio(rates[0][0], rates[1][0]),
        o.workers,
        rate_ratio(rates[0][1], rates[1][1])
    );
    print_floor_rates(o, rates[2]);
    check_deleted(env, "[3]", failed);
}

/// The kernel floor's containers per second (section 1's unshare of the
/// same namespaces), one at a time and `o.workers` at once, next to
/// crun*'s: what is left of the machine for a runtime's own work.
fn print_floor_rates(o: &Opts, crun: [f64; 2]) {
    let rates: Result<Vec<f64>> = [1, o.workers]
        .into_iter()
        .map(|w| runtime::kernel_floor_rate(o.containers, w))
        .collect();
    match rates {
        Ok(r) => println!(
            "   kernel floor, no runtime (section 1's unshare): one at a time {:.1}/s = {} crun*'s, {} at once {:.1}/s = {} crun*'s",
            r[0],
            rate_ratio(r[0], crun[0]),
            o.workers,
            r[1],
            rate_ratio(r[1], crun[1])
        ),
        Err(e) => println!("   kernel floor containers/s: not measured: {e:#}"),
    }
}

/// `a` per second as a multiple of `b` per second ("n/a" without `b`).
fn rate_ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "n/a".into()
    }
}

/// Prints one batch; returns its containers per second (crun's with the
/// hook's cost taken off each worker's commands).
fn print_batch(rt: &Runtime, b: &measure::Batch, workers: usize, hook: Duration) -> f64 {
    let n = b.latencies.len();
    let raw = n as f64 / b.wall.as_secs_f64();
    let (wall, note) = if rt.kind == Kind::Crun {
        let w = b.wall.saturating_sub(hook * b.per_worker as u32);
        (w, format!(" (raw {raw:.1}/s)"))
    } else {
        (b.wall, String::new())
    };
    let rate = n as f64 / wall.as_secs_f64();
    println!(
        "   {:<9} {workers} at once: {:>6.1} containers/s{note}  wall {}",
        label(rt),
        rate,
        fmt(wall)
    );
    let lat = adjusted(rt, &b.latencies, hook);
    println!("     per-run latency spread: {}", lat.spread());
    rate
}

fn print_rss(o: &Opts, env: &Env, failed: &mut Vec<String>) {
    println!();
    println!(
        "[4] peak RSS (VmHWM) of the runtime's own process during `run`, polled from /proc/PID/status until exit; {} runs each, interleaved",
        o.rss
    );
    let series = interleaved(env, o.rss, |rt, i| {
        measure::peak_rss(rt, &env.bundles, &format!("m{i}"))
    });
    note_failures(env, "peak RSS", &series, failed);
    let mut medians = vec![0u64; env.runtimes.len()];
    for (k, (rt, s)) in env.runtimes.iter().zip(&series).enumerate() {
        let mut kib: Vec<u64> = s.samples.iter().map(|(k, _)| *k).collect();
        if kib.is_empty() {
            continue;
        }
        kib.sort_unstable();
        medians[k] = kib[kib.len() / 2];
        let readings: usize = s.samples.iter().map(|(_, r)| *r).min().unwrap_or(0);
        println!(
            "   {:<9} ({:<4}) median {:>6} KiB ({:.2} MiB)  min {} max {} KiB  (>= {readings} readings per run)",
            rt.name(),
            rt.comm(),
            medians[k],
            medians[k] as f64 / 1024.0,
            kib[0],
            kib[kib.len() - 1]
        );
    }
    let r = |a: u64, b: u64| {
        if b > 0 {
            format!("{:.2}x", a as f64 / b as f64)
        } else {
            "n/a".into()
        }
    };
    println!(
        "   asterism/crun {}  asterism/runc {} (medians)",
        r(medians[0], medians[2]),
        r(medians[0], medians[1])
    );
    print_constellation_rss(env);
}

/// asterism's work is split: the constellation (init + servers) is
/// resident all along, and its share is not in the `ipc` figure above.
fn print_constellation_rss(env: &Env) {
    let Some(c) = env.constellation.as_ref() else {
        return;
    };
    match c.processes().and_then(|p| crate::rss::measure(&p)) {
        Ok(all) => {
            let total: u64 = all.iter().map(|p| p.vm_rss_kib).sum();
            let pss: u64 = all.iter().map(|p| p.pss_kib).sum();
            println!(
                "   for context, asterism's resident constellation after the runs: VmRSS {:.2} MiB, Pss {:.2} MiB over {} processes (not in the ipc figure)",
                total as f64 / 1024.0,
                pss as f64 / 1024.0,
                all.len()
            );
        }
        Err(e) => println!("   constellation RSS unreadable: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse_unknown_ones() {
        let o = Opts::parse(&["--runs".into(), "7".into(), "--rss".into(), "2".into()]).unwrap();
        assert_eq!((o.runs, o.rss, o.workers, o.crowd), (7, 2, 4, 100));
        let o = Opts::parse(&["--crowd".into(), "12".into()]).unwrap();
        assert_eq!(o.crowd, 12);
        assert!(Opts::parse(&["--bogus".into()]).is_err());
        assert!(Opts::parse(&["--runs".into(), "x".into()]).is_err());
    }
}
