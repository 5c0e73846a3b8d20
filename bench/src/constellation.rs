//! The constellation under test: the real `init` on a private root under
//! /tmp, stopped (SIGTERM to init by pid, then wait) and its cgroup
//! directories removed when the guard is dropped, so a failed benchmark
//! leaves nothing behind. Ctrl-C does the same cleanup before exiting.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: $ASTERISM_BIN_DIR, else beside
/// this benchmark binary (target/<host triple>/release).
pub fn bin_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("ASTERISM_BIN_DIR") {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().context("find the benchmark's own executable")?;
    Ok(exe.parent().context("executable has no directory")?.into())
}

pub fn bin(name: &str) -> Result<PathBuf> {
    let p = bin_dir()?.join(name);
    if !p.is_file() {
        bail!(
            "{} is missing: build the workspace first (cargo build --release --workspace --bins) \
             or point ASTERISM_BIN_DIR at the binaries",
            p.display()
        );
    }
    Ok(p)
}

/// What the Ctrl-C handler must clean up: init's pid, the root, the temp dir.
static RUNNING: Mutex<Option<(i32, PathBuf, PathBuf)>> = Mutex::new(None);

pub struct Constellation {
    dir: tempfile::TempDir,
    root: PathBuf,
    init: Option<Child>,
    /// Every server pid seen, so cleanup can stop what init did not.
    seen: Mutex<Vec<i32>>,
}

impl Constellation {
    /// Starts `init --root <tmp>/root EXTRA...` and waits for `ready`.
    pub fn start(extra: &[&str]) -> Result<Constellation> {
        Constellation::start_at(extra, None)
    }

    /// As `start`, with the root at `root` (created by init) rather than
    /// in our temp dir.
    pub fn start_at(extra: &[&str], root: Option<PathBuf>) -> Result<Constellation> {
        let dir = tempfile::Builder::new()
            .prefix("ast-bench-")
            .tempdir_in("/tmp")
            .context("create a private root under /tmp")?;
        let root = root.unwrap_or_else(|| dir.path().join("root"));
        let log = std::fs::File::create(dir.path().join("init.log")).context("create init.log")?;
        let mut child = Command::new(bin("init")?)
            .arg("--root")
            .arg(&root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("spawn init")?;
        *RUNNING.lock().unwrap() = Some((child.id() as i32, root.clone(), dir.path().into()));
        let stdout = child.stdout.take().context("init's stdout")?;
        let mut c = Constellation {
            dir,
            root,
            init: Some(child),
            seen: Mutex::new(vec![]),
        };
        c.wait_ready(stdout)?;
        Ok(c)
    }

    fn wait_ready(&mut self, stdout: std::process::ChildStdout) -> Result<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
            let _ = tx.send(first);
            for _ in lines {} // keep draining so init never blocks on stdout
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line == "ready" => Ok(()),
            other => bail!(
                "init did not print ready ({other:?}); its log:\n{}",
                self.log_tail(20)
            ),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A directory of our own beside the root, removed with it.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    pub fn init_pid(&self) -> i32 {
        self.init.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// The last `n` lines init and its servers wrote to stderr.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("init.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn log_lines(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("init.log"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// `ipc --root ROOT status --json`, parsed.
    pub fn status(&self) -> Result<Value> {
        let out = Command::new(bin("ipc")?)
            .arg("--root")
            .arg(&self.root)
            .args(["status", "--json"])
            .output()
            .context("run ipc status")?;
        if !out.status.success() {
            bail!(
                "ipc status --json failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("ipc status printed no JSON")?;
        for s in v["servers"].as_array().into_iter().flatten() {
            self.note_pid(s["pid"].as_i64().unwrap_or(0) as i32);
        }
        Ok(v)
    }

    /// (name, pid) of init and every running server.
    pub fn processes(&self) -> Result<Vec<(String, i32)>> {
        let st = self.status()?;
        let mut out = vec![(
            "init".to_string(),
            st["init"]["pid"].as_i64().unwrap_or(0) as i32,
        )];
        for s in st["servers"].as_array().into_iter().flatten() {
            let name = s["name"].as_str().unwrap_or("?").to_string();
            if s["state"] != "running" {
                bail!("{name} is {} (not running): {s}", s["state"]);
            }
            out.push((name, s["pid"].as_i64().unwrap_or(0) as i32));
        }
        Ok(out)
    }

    pub fn note_pid(&self, pid: i32) {
        let mut seen = self.seen.lock().unwrap();
        if pid > 0 && !seen.contains(&pid) {
            seen.push(pid);
        }
    }

    /// Whether `pid` is a process of this constellation (its command line
    /// names our root), so that we never signal anybody else's process.
    pub fn owns(&self, pid: i32) -> bool {
        let root = self.root.to_string_lossy();
        pid > 0
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&*root))
                .unwrap_or(false)
    }

    fn stop(&mut self) {
        if let Some(mut init) = self.init.take() {
            kill(init.id() as i32, libc_sig::TERM);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && matches!(init.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = init.kill();
            let _ = init.wait();
        }
        for pid in self.seen.lock().unwrap().iter() {
            if self.owns(*pid) {
                kill(*pid, libc_sig::KILL);
            }
        }
        remove_cgroups(&self.root);
        *RUNNING.lock().unwrap() = None;
    }
}

impl Drop for Constellation {
    fn drop(&mut self) {
        self.stop();
    }
}

/// On Ctrl-C or SIGTERM: stop init, remove the cgroups and the root, exit.
pub fn install_interrupt_cleanup() -> Result<()> {
    ctrlc::set_handler(|| {
        if let Some((pid, root, dir)) = RUNNING.lock().unwrap().take() {
            eprintln!("interrupted: stopping the benchmark's constellation (init pid {pid})");
            kill(pid, libc_sig::TERM);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until && alive(pid) {
                std::thread::sleep(Duration::from_millis(10));
            }
            remove_cgroups(&root);
            let _ = std::fs::remove_dir_all(dir);
        }
        std::process::exit(130);
    })
    .context("install the Ctrl-C handler")
}

/// Signal numbers, named as the kernel names them.
pub mod libc_sig {
    pub const TERM: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGTERM;
    pub const KILL: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGKILL;
}

pub fn kill(pid: i32, sig: nix::sys::signal::Signal) {
    if pid > 0 {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `<this process's cgroup>/asterism-<hash(root)>` for one controller: where
/// the constellation's groups live (init inherits our cgroup).
fn cgroup_base_for(root: &Path, controller: &str) -> Option<PathBuf> {
    let hier = cgroupfs::Hierarchies::discover().ok()?;
    let h = hier.get(controller).ok()?;
    let own = cgroupfs::hierarchy::own_cgroup(h).ok()?;
    Some(h.host_path(&own).join(cgroupfs::Base::dir_name(root)))
}

/// The constellation's cgroup directories that still exist.
pub fn leftover_cgroups(root: &Path) -> Vec<PathBuf> {
    let Ok(hier) = cgroupfs::Hierarchies::discover() else {
        return vec![];
    };
    let mut left: Vec<PathBuf> = hier
        .by_controller
        .keys()
        .filter_map(|c| cgroup_base_for(root, c))
        .filter(|p| p.exists())
        .collect();
    left.dedup();
    left
}

/// Empties and removes the constellation's cgroup trees, every hierarchy.
pub fn remove_cgroups(root: &Path) {
    let Ok(hier) = cgroupfs::Hierarchies::discover() else {
        return;
    };
    let mut done = vec![];
    for h in hier.by_controller.values() {
        let Some(base) = cgroup_base_for(root, &h.controller) else {
            continue;
        };
        if !done.contains(&base) {
            remove_tree(&base);
            done.push(base);
        }
    }
}

fn remove_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path());
        }
    }
    // Thaw first: a frozen process cannot die. The benchmark attaches no
    // process, but a crash mid-run must not leave a cgroup behind either.
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    for _ in 0..200 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        pids.into_iter().for_each(|p| kill(p, libc_sig::KILL));
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..100 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("warning: could not remove cgroup {}", dir.display());
}
