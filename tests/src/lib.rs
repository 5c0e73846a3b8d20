//! The end-to-end test harness: a constellation of the real binaries on a
//! private root, driven through the real `ipc`, cleaned up even when a test
//! fails (Drop): init and the servers it started are stopped by pid, and the
//! constellation's cgroup directories, which live under this test process's
//! own cgroup, are emptied and removed.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where the workspace's binaries are: $ASTERISM_BIN_DIR, else the target
/// directory this test binary runs from (target/debug/deps/.. -> target/debug).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ASTERISM_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first (cargo build --workspace --bins)",
        p.display()
    );
    p
}

pub struct Constellation {
    root: tempfile::TempDir,
    init: Option<Child>,
    init_args: Vec<String>,
    /// Every server pid seen, so Drop can stop what init could not.
    seen_pids: std::cell::RefCell<Vec<i32>>,
}

impl Constellation {
    pub fn start() -> Constellation {
        Self::start_with(&[])
    }

    /// With extra init flags, e.g. `--max-restarts 100`.
    pub fn start_with(init_args: &[&str]) -> Constellation {
        let root = tempfile::Builder::new()
            .prefix("ast-")
            .tempdir_in("/tmp")
            .expect("temp root");
        let mut c = Constellation {
            root,
            init: None,
            init_args: init_args.iter().map(|s| s.to_string()).collect(),
            seen_pids: Default::default(),
        };
        c.start_init();
        c
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Starts init on this root and waits for its `ready` line.
    pub fn start_init(&mut self) {
        let mut child = Command::new(bin("init"))
            .arg("--root")
            .arg(self.root())
            .args(&self.init_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn init");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(|l| l.ok()).unwrap_or_default();
            let _ = tx.send(first);
            for _ in lines {} // keep draining so init never blocks on stdout
        });
        self.init = Some(child);
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line == "ready" => {}
            other => panic!("init did not print ready: {other:?}"),
        }
        self.remember_pids();
    }

    pub fn init_pid(&self) -> i32 {
        self.init.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// SIGKILLs init (the servers keep running).
    pub fn kill_init(&mut self) {
        self.remember_pids();
        if let Some(mut c) = self.init.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn ipc_cmd(&self) -> Command {
        let mut c = Command::new(bin("ipc"));
        c.arg("--root").arg(self.root());
        c
    }

    /// Runs ipc to completion. Its stdout and stderr go to files, not
    /// pipes: a container created by `ipc create` inherits them and keeps
    /// them open, so waiting for EOF on a pipe would wait for the container.
    pub fn ipc(&self, args: &[&str]) -> Output {
        run_to_files(self.ipc_cmd().args(args))
    }

    /// Runs ipc, asserts success, returns stdout.
    pub fn ipc_ok(&self, args: &[&str]) -> String {
        let out = self.ipc(args);
        assert!(
            out.status.success(),
            "ipc {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs ipc, asserts failure, returns stderr.
    pub fn ipc_err(&self, args: &[&str]) -> String {
        let out = self.ipc(args);
        assert!(
            !out.status.success(),
            "ipc {args:?} should have failed but printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn ipc_json(&self, args: &[&str]) -> Value {
        let out = self.ipc_ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ipc {args:?} printed no JSON ({e}): {out}"))
    }

    pub fn status(&self) -> Value {
        let v = self.ipc_json(&["status", "--json"]);
        self.note_pids(&v);
        v
    }

    /// A server's entry in `ipc status --json`.
    pub fn server(&self, name: &str) -> Value {
        let st = self.status();
        st["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not in status: {st}"))
    }

    /// The pid of a running server (waits up to 5 s for it to be running).
    pub fn server_pid(&self, name: &str) -> i32 {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let s = self.server(name);
            if s["state"] == "running" && s["pid"].as_i64().unwrap_or(0) > 0 {
                return s["pid"].as_i64().unwrap() as i32;
            }
            assert!(Instant::now() < until, "{name} not running: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs a server and waits until init has restarted it; returns the new pid.
    pub fn kill_server(&self, name: &str) -> i32 {
        let old = self.server_pid(name);
        kill(old, libc::SIGKILL);
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.server(name);
            let pid = s["pid"].as_i64().unwrap_or(0) as i32;
            if s["state"] == "running" && pid > 0 && pid != old {
                return pid;
            }
            assert!(Instant::now() < until, "{name} was not restarted: {s}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn note_pids(&self, status: &Value) {
        let mut seen = self.seen_pids.borrow_mut();
        for s in status["servers"].as_array().into_iter().flatten() {
            let pid = s["pid"].as_i64().unwrap_or(0) as i32;
            if pid > 0 && !seen.contains(&pid) {
                seen.push(pid);
            }
        }
    }

    fn remember_pids(&self) {
        for name in protocol::SERVERS {
            let pidfile = libipc::state_dir(self.root(), name).join("pid");
            if let Some(pid) = std::fs::read_to_string(pidfile).ok().and_then(|t| {
                t.split_whitespace()
                    .next()
                    .and_then(|w| w.parse::<i32>().ok())
            }) {
                let mut seen = self.seen_pids.borrow_mut();
                if !seen.contains(&pid) {
                    seen.push(pid);
                }
            }
        }
    }

    /// The constellation's base cgroup directory for a controller, if that
    /// controller is mounted here.
    pub fn cgroup_base(&self, controller: &str) -> Option<PathBuf> {
        cgroup_base_for(self.root(), controller)
    }
}

/// `<this process's cgroup>/asterism-<hash(root)>` for one controller.
pub fn cgroup_base_for(root: &Path, controller: &str) -> Option<PathBuf> {
    let h = hierarchy_named(controller)?;
    let own = cgroupfs::hierarchy::own_cgroup(&h).ok()?;
    Some(h.host_path(&own).join(cgroupfs::Base::dir_name(root)))
}

impl Constellation {
    /// Stops the constellation as a person would (SIGTERM to init, which
    /// stops every server) and waits up to 5 s for init to exit.
    pub fn stop(&mut self) {
        self.remember_pids();
        if let Some(mut init) = self.init.take() {
            kill(init.id() as i32, libc::SIGTERM);
            let until = Instant::now() + Duration::from_secs(5);
            while Instant::now() < until {
                if let Ok(Some(_)) = init.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = init.kill();
            let _ = init.wait();
        }
    }
}

impl Drop for Constellation {
    fn drop(&mut self) {
        self.stop();
        // An init that an OCI command started by itself (after ours was killed).
        let root = self.root().to_string_lossy().into_owned();
        if let Some(pid) = read_pid(&self.root().join("init.pid")) {
            if cmdline_mentions(pid, &root) {
                kill(pid, libc::SIGTERM);
                let until = Instant::now() + Duration::from_secs(5);
                while alive(pid) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        self.remember_pids();
        // Servers a killed init left behind: ours only (cmdline names our root).
        for pid in self.seen_pids.borrow().iter() {
            if cmdline_mentions(*pid, &root) {
                kill(*pid, libc::SIGKILL);
            }
        }
        // An init an OCI command was still starting (no pid file yet) when
        // the test ended, and whatever it started.
        stop_processes_naming(self.root());
        unmount_under(self.root());
        remove_cgroups(self.root());
    }
}

/// Detaches every mount below `dir` (deepest first): a test that failed
/// midway may leave vfs-overlay's binds behind once its servers are gone.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Empties and removes the constellation's cgroup trees (every hierarchy).
pub fn remove_cgroups(root: &Path) {
    let Ok(hier) = cgroupfs::Hierarchies::discover() else {
        return;
    };
    let mut done = vec![];
    for h in hier.by_controller.values() {
        let Some(base) = cgroup_base_for(root, &h.controller) else {
            continue;
        };
        if done.contains(&base) {
            continue;
        }
        done.push(base.clone());
        remove_tree(&base);
    }
}

fn remove_tree(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path());
            }
        }
    }
    // Thaw first: a frozen process cannot die.
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    for _ in 0..200 {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for p in pids {
            kill(p, libc::SIGKILL);
        }
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

/// Runs a command with stdout and stderr in temporary files; waits for the
/// process itself, not for EOF on its output.
pub fn run_to_files(cmd: &mut Command) -> Output {
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .expect("run command");
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut v = vec![];
        f.rewind().unwrap();
        f.read_to_end(&mut v).unwrap();
        v
    };
    Output {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The pid in a server's pid file (what init last started), if any.
pub fn server_pid_file(root: &Path, name: &str) -> Option<i32> {
    read_pid(&libipc::state_dir(root, name).join("pid"))
}

/// Stops every process whose command line names `root` (a test's own
/// temporary root, so ours): SIGTERM, then SIGKILL what is left after 5 s.
pub fn stop_processes_naming(root: &Path) {
    let root = root.to_string_lossy().into_owned();
    let naming = || -> Vec<i32> {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return vec![];
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != std::process::id() as i32 && cmdline_mentions(*pid, &root))
            .collect()
    };
    let pids = naming();
    if pids.is_empty() {
        return;
    }
    for pid in &pids {
        kill(*pid, libc::SIGTERM);
    }
    let until = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    for pid in naming() {
        kill(pid, libc::SIGKILL);
    }
}

fn cmdline_mentions(pid: i32, text: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(text))
        .unwrap_or(false)
}

pub fn kill(pid: i32, sig: i32) {
    if pid > 0 {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::try_from(sig).expect("valid signal"),
        );
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie is dead for our purposes.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// A test process under limits; killed (by its pid) when dropped.
pub struct Hog {
    pub child: Child,
}

impl Hog {
    /// `hog mem MIB`: call [`Hog::go`] to make it allocate.
    pub fn mem(mib: u64) -> Hog {
        Self::spawn(&["mem", &mib.to_string()])
    }
    pub fn spin() -> Hog {
        Self::spawn(&["spin"])
    }
    pub fn forks(n: u32) -> Hog {
        Self::spawn(&["forks", &n.to_string()])
    }
    pub fn sleep() -> Hog {
        Self::spawn(&["sleep"])
    }
    fn spawn(args: &[&str]) -> Hog {
        let child = Command::new(bin("asterism-test-hog"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn hog");
        Hog { child }
    }
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    /// Sends the line the hog waits for.
    pub fn go(&mut self) {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = writeln!(stdin);
            let _ = stdin.flush();
        }
    }
    /// The first line the hog prints, waiting at most `timeout`.
    pub fn read_line(&mut self, timeout: Duration) -> Option<String> {
        let stdout = self.child.stdout.take()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
        });
        rx.recv_timeout(timeout).ok().map(|l| l.trim().to_string())
    }
    /// Waits for the hog to exit; its status, or None if still alive after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    /// User+system CPU time in clock ticks, from /proc/PID/stat.
    pub fn cpu_ticks(&self) -> u64 {
        cpu_ticks(self.pid())
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after ")" start at field 3 (state); utime is 14, stime 15.
    let utime: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    utime + stime
}

/// Polls `f` until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An OCI bundle with a busybox rootfs, built from Debian's busybox-static;
/// removed on drop.
pub struct Bundle {
    dir: tempfile::TempDir,
}

/// The applets every test rootfs gets, as symlinks to /bin/busybox.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh",
    "cat",
    "ls",
    "id",
    "hostname",
    "sleep",
    "mkdir",
    "echo",
    "true",
    "false",
    "grep",
    "env",
    "pwd",
    "touch",
    "rm",
    "ln",
    "ps",
    "mount",
    "umount",
    "wc",
    "head",
    "tail",
    "readlink",
    "stat",
    "test",
    "kill",
    "uname",
    "domainname",
    "ulimit",
    "printf",
    "dd",
    "chmod",
    "cp",
    "mv",
    "tr",
    "sed",
    "awk",
    "seq",
    "nproc",
    "top",
    "yes",
    "whoami",
    "umask",
    "ip",
    "ifconfig",
    "nc",
    "wget",
    "date",
    "find",
    "xargs",
    "tee",
    "tty",
];

impl Bundle {
    /// A bundle whose config.json is `config` (a full OCI config) and whose
    /// rootfs holds busybox and its applets, /etc/passwd and /etc/group.
    pub fn busybox(config: &Value) -> Bundle {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "/bin/busybox is missing: apt-get install busybox-static (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("bundle-")
            .tempdir_in("/tmp")
            .expect("bundle dir");
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "usr/bin",
            "sbin",
            "home/user",
        ] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
        for applet in BUSYBOX_APPLETS {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n").unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nuser:x:1000:\nextra:x:2000:user\nnogroup:x:65534:\n",
        )
        .unwrap();
        let b = Bundle { dir };
        b.write_config(config);
        b
    }

    /// The runtime-spec default config (like `runc spec`) with `args` and
    /// the changes in `patch` merged over it (objects merged, the rest replaced).
    pub fn busybox_with(args: &[&str], patch: Value) -> Bundle {
        let mut config = default_config();
        config["process"]["args"] = serde_json::json!(args);
        merge(&mut config, patch);
        Self::busybox(&config)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn write_config(&self, config: &Value) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(config).unwrap(),
        )
        .unwrap();
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join("config.json")).unwrap())
            .unwrap()
    }
}

/// Merges `patch` into `base`: objects key by key, anything else replaced.
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// The config `runc spec` writes (runc 1.1), as a baseline for tests.
pub fn default_config() -> Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A directory name under this test process's own cgroup, in every
/// hierarchy, for containers' relative `linux.cgroupsPath`s; whatever is
/// left below it (and it) is removed on drop.
pub struct CgroupsPathPrefix {
    pub name: String,
}

impl CgroupsPathPrefix {
    pub fn new(tag: &str) -> CgroupsPathPrefix {
        CgroupsPathPrefix {
            name: format!("asterism-test-{tag}-{}", std::process::id()),
        }
    }

    /// `<own cgroup for controller>/<name>/<rel>` on the host, if the
    /// controller is mounted here.
    pub fn host_dir(&self, controller: &str, rel: &str) -> Option<PathBuf> {
        let h = hierarchy_named(controller)?;
        let own = cgroupfs::hierarchy::own_cgroup(&h).ok()?;
        Some(h.host_path(&own).join(&self.name).join(rel))
    }
}

impl Drop for CgroupsPathPrefix {
    fn drop(&mut self) {
        for h in hierarchies() {
            if let Some(dir) = self.host_dir(&h, "") {
                remove_tree(&dir);
            }
        }
    }
}

/// Every cgroup hierarchy mounted here, as /proc/PID/cgroup names them:
/// the controllers ("memory", "cpu", ...) and the named v1 hierarchies
/// ("name=systemd").
pub fn hierarchies() -> Vec<String> {
    let mut all: Vec<String> = cgroupfs::Hierarchies::discover()
        .map(|h| h.by_controller.into_keys().collect())
        .unwrap_or_default();
    all.extend(hybrid_unified().map(|h| h.controller));
    all
}

/// The cgroup v1 hierarchies mounted here, named ones included.
pub fn v1_hierarchies() -> Vec<cgroupfs::Hierarchy> {
    cgroupfs::Hierarchies::discover()
        .map(|h| h.by_controller.into_values())
        .into_iter()
        .flatten()
        .filter(|h| h.version == cgroupfs::Version::V1)
        .collect()
}

/// A hybrid host's cgroup2 hierarchy (named "unified") when it holds none
/// of the controllers the servers set: a container is then only a member
/// of it, as cpu-controller's layout decides (and runc does).
pub fn hybrid_unified() -> Option<cgroupfs::Hierarchy> {
    cgroupfs::Hierarchies::discover().ok()?.membership_unified()
}

/// A hierarchy by the name `hierarchies()` gives it ("unified" for a
/// hybrid host's cgroup2).
pub fn hierarchy_named(name: &str) -> Option<cgroupfs::Hierarchy> {
    if let Some(u) = hybrid_unified().filter(|u| u.controller == name) {
        return Some(u);
    }
    let hier = cgroupfs::Hierarchies::discover().ok()?;
    hier.get(name).ok().cloned()
}

/// Every hierarchy a container gets a group of its own in where the
/// controllers are on v1: the v1 ones and a hybrid host's cgroup2.
pub fn member_hierarchies() -> Vec<cgroupfs::Hierarchy> {
    let mut all = v1_hierarchies();
    all.extend(hybrid_unified());
    all
}

/// The stdout of a command that must have exited with `code` (its stdout
/// and stderr in the message if not).
pub fn stdout_of_exit(out: &Output, code: i32) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The names of the directories right below `dir` (child cgroups), none
/// when it does not exist.
pub fn subdirs(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name())
                .collect()
        })
        .unwrap_or_default()
}
