//! The engines themselves, not a replay of their calls: Debian's podman
//! (through conmon) with `--runtime` pointing at our `ipc`, on a busybox
//! image imported from a rootfs the test builds. Everything podman keeps
//! (its storage, run and tmp directories) lives in the test's temporary
//! directory, its containers' cgroups below this test process's own
//! cgroup, and every command goes to the test's own constellation: podman's
//! runtime is a two-line script that runs `ipc --root <the test's root>`.
//! (`--runtime-flag root=...` would not do: podman's exit command, which
//! conmon runs to clean up after a container, does not pass it on.)

use asterism_tests::{Bundle, Constellation};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What the engines make outside their own directories whatever they are
/// told, removed again if this test made it: podman's blob-info cache
/// (/var/lib/containers/cache), the parent of the runc shim's sockets
/// (/run/containerd/s), dockerd's trust key and plugin directory. Held for
/// a whole test, which runs alone (the tests here share those paths, and
/// the cgroup directories above their cgroup parent); taken first, so
/// dropped last.
struct HostPaths {
    _alone: std::sync::MutexGuard<'static, ()>,
    /// The same across test processes: two suites at once (a CI clone's
    /// beside a developer's run) each took the other's cgroup parent
    /// ancestors for pre-existing, and one left them behind.
    _across: std::fs::File,
    made: Vec<&'static str>,
}

static ENGINES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl HostPaths {
    fn take() -> HostPaths {
        let alone = ENGINES.lock().unwrap_or_else(|e| e.into_inner());
        // flock(2) on /run itself: always there, and no file to leave.
        let across = std::fs::File::open("/run").unwrap();
        rustix::fs::flock(&across, rustix::fs::FlockOperation::LockExclusive).unwrap();
        let made = [
            "/var/lib/containers",
            "/run/containerd",
            // dockerd's: its trust key and its plugin socket directory,
            // whatever --data-root and --exec-root say.
            "/etc/docker/key.json",
            "/run/docker",
        ]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
        HostPaths {
            _alone: alone,
            _across: across,
            made,
        }
    }
}

impl Drop for HostPaths {
    fn drop(&mut self) {
        for p in &self.made {
            let p = Path::new(p);
            let _ = match p.is_dir() {
                true => std::fs::remove_dir_all(p),
                false => std::fs::remove_file(p),
            };
        }
    }
}

/// podman with its state in `dir`, `ipc` as its runtime on `root`.
struct Podman {
    dir: tempfile::TempDir,
    /// The absolute cgroup parent given to podman, below our own cgroup.
    parent: String,
}

impl Podman {
    fn new(c: &Constellation, parent: String) -> Podman {
        assert!(
            Command::new("podman").arg("--version").output().is_ok(),
            "podman is missing: apt-get install --no-install-recommends podman (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        // The container's rlimits, at most ours: podman's default (nofile
        // 1048576) needs CAP_SYS_RESOURCE, which this sandbox's root lacks,
        // and runc fails the same way without it.
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(4096)
            .min(4096);
        let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
            .maximum
            .unwrap_or(4096)
            .min(4096);
        runtime_wrapper(
            &dir.path().join("ipc-runtime"),
            &asterism_tests::bin("ipc"),
            c.root(),
        );
        std::fs::write(
            dir.path().join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n"
            ),
        )
        .unwrap();
        Podman { dir, parent }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_on(&self.dir.path().join("ipc-runtime"), args)
    }

    /// podman with `runtime` (a path) as its OCI runtime.
    fn cmd_on(&self, runtime: &Path, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", d.join("containers.conf"))
            .arg("--root")
            .arg(d.join("storage"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "file",
            ])
            .arg("--runtime")
            .arg(runtime)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout_of("podman", args, self.run(args))
    }

    /// The full id podman gave a container (the id ipc knows it by).
    fn id_of(&self, name: &str) -> String {
        self.ok(&["inspect", name, "--format", "{{.Id}}"])
            .trim()
            .to_string()
    }

    /// `podman run` options every container here gets.
    fn run_opts(&self) -> Vec<String> {
        vec![
            "--network".into(),
            "none".into(),
            "--cgroup-parent".into(),
            self.parent.clone(),
        ]
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Its containers first (they hold our constellation's groups),
        // then its storage goes with the temporary directory.
        let _ = self.run(&["rm", "--all", "--force", "--time", "0"]);
    }
}

/// An absolute cgroup path below this process's own cgroup in every v1
/// hierarchy (the deepest of our own paths, when each of the others is a
/// prefix of it). What the engines make there, and the directories above it
/// that did not exist before (our own path in the hierarchies where we sit
/// higher), are removed on drop, deepest first.
struct CgroupParent {
    path: String,
    /// The parent's directory in each hierarchy.
    leaves: Vec<PathBuf>,
    /// Directories between our own cgroups and the leaves that were missing.
    made_above: Vec<PathBuf>,
}

impl CgroupParent {
    /// None when no one path is below ours everywhere.
    fn new(tag: &str) -> Option<CgroupParent> {
        let v1 = asterism_tests::member_hierarchies();
        let owns: Vec<PathBuf> = v1
            .iter()
            .map(|h| cgroupfs::hierarchy::own_cgroup(h).unwrap())
            .collect();
        let deepest = owns.iter().max_by_key(|p| p.components().count())?.clone();
        if !owns.iter().all(|p| deepest.starts_with(p)) {
            return None;
        }
        let path = deepest.join(format!("asterism-test-{tag}-{}", std::process::id()));
        let leaves: Vec<PathBuf> = v1.iter().map(|h| h.host_path(&path)).collect();
        let mut made_above = vec![];
        for (h, own) in v1.iter().zip(&owns) {
            let own = h.host_path(own);
            let mut dir = h.host_path(&path);
            while dir.pop() && dir.starts_with(&own) && dir != own {
                if !dir.exists() {
                    made_above.push(dir.clone());
                }
            }
        }
        Some(CgroupParent {
            path: path.display().to_string(),
            leaves,
            made_above,
        })
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        remove(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        for d in &self.leaves {
            remove(d);
        }
        // Deepest first: each was found missing walking up from a leaf.
        for d in &self.made_above {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Starts an engine's daemon, its output to `log`.
fn spawn_daemon(cmd: &mut Command, log: &Path) -> std::process::Child {
    let f = std::fs::File::create(log).unwrap();
    cmd.stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap()
}

/// Waits up to 30 s for a daemon to answer (`answers`), else fails with
/// its log.
fn wait_ready(what: &str, log: &Path, answers: impl Fn() -> bool) {
    let ready = asterism_tests::wait_for(std::time::Duration::from_secs(30), || {
        answers().then_some(())
    });
    let log = || std::fs::read_to_string(log).unwrap_or_default();
    assert!(ready.is_some(), "{what} did not answer: {}", log());
}

/// SIGTERM to a daemon we started, by pid, and its exit.
fn stop_daemon(daemon: &mut std::process::Child) {
    asterism_tests::kill(daemon.id() as i32, libc::SIGTERM);
    let _ = daemon.wait();
}

/// The stdout of an engine's command that must succeed.
fn stdout_of(tool: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A busybox image in podman's storage, from a rootfs the test builds.
fn import_busybox(p: &Podman) -> &'static str {
    let bundle = Bundle::busybox_with(&["true"], json!({}));
    let tar = p.dir.path().join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(bundle.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    p.ok(&[
        "import",
        tar.to_str().unwrap(),
        "localhost/asterism-busybox:1",
    ]);
    "localhost/asterism-busybox:1"
}

/// What the podman tests start from: the host paths held, a cgroup parent below
/// ours, our constellation, podman on it. Fields drop in order (so keep
/// the whole struct, do not destructure it): podman's containers, the
/// constellation, the cgroups, then the host paths.
struct Setup {
    p: Podman,
    c: Constellation,
    parent: CgroupParent,
    _host: HostPaths,
}

impl Setup {
    fn new(tag: &str) -> Option<Setup> {
        let host = HostPaths::take();
        let Some(parent) = CgroupParent::new(tag) else {
            eprintln!(
                "skipping: no one cgroup path is below this process's own in every hierarchy"
            );
            return None;
        };
        let c = Constellation::start();
        let p = Podman::new(&c, parent.path.clone());
        Some(Setup {
            p,
            c,
            parent,
            _host: host,
        })
    }
}

/// What a container sees of itself, as text to compare between runtimes:
/// ids, capabilities, rlimits, every mount (point, type, source, options),
/// /dev, sysctls, its cgroups and their limits, masked and read-only paths.
const PROBE: &str = r#"id; hostname; pwd; umask; env | sort | sed 's/^container_uuid=.*/container_uuid=X/' | tr '\n' ' '; echo
grep -E "^(Cap|NoNewPrivs|Seccomp|Groups|Uid|Gid)" /proc/self/status
ulimit -a 2>&1 | tr -s ' '
cat /proc/self/oom_score_adj
awk '{print $5, $(NF-2), $(NF-1), $6}' /proc/self/mountinfo | sort
ls -la /dev | awk '{print $1, $NF}' | sort
cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward 2>&1
ls /sys/fs/cgroup 2>&1 | tr '\n' ' '; echo
for f in memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares cpu/cpu.cfs_quota_us memory.max pids.max cpu.max cpu.weight; do
  [ -e /sys/fs/cgroup/$f ] && echo "$f $(cat /sys/fs/cgroup/$f)"
done
sed -E 's/[0-9a-f]{64}/ID/' /proc/self/cgroup
ls -la /proc/keys /proc/timer_list /sys/firmware 2>&1 | awk '{print $1, $NF}'
awk '{o=""; for (i = 7; $i != "-"; i++) o = o " " $i; print $5 o}' /proc/self/mountinfo | sed -E 's/:[0-9]+//g' | sort
cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups
stat -c '%a %u %g %n' / /dev /dev/shm /dev/pts /dev/mqueue /tmp /proc /sys 2>&1
touch /proc/sys/kernel/x 2>&1
"#;

/// The run flags the probe is compared under: twenty of podman's and
/// docker's own (both spell them the same).
const PROBE_FLAGS: &[&str] = &[
    "--memory",
    "64m",
    "--pids-limit",
    "50",
    "--cpus",
    "0.5",
    "--cpu-shares",
    "512",
    "--user",
    "1000:1000",
    "--group-add",
    "5",
    "-w",
    "/tmp",
    "-e",
    "FOO=1",
    "--cap-add",
    "NET_ADMIN",
    "--cap-drop",
    "CHOWN",
    "--security-opt",
    "no-new-privileges",
    "--ulimit",
    "nofile=1000:2000",
    "--ulimit",
    "nproc=4096:4096",
    "--oom-score-adj",
    "300",
    "--shm-size",
    "16m",
    "--tmpfs",
    "/run:size=1m",
    "--read-only",
    "--sysctl",
    "kernel.shmmax=123456",
    "--device",
    "/dev/null:/dev/xnull",
];

/// Resource flags podman and docker both take, beyond PROBE_FLAGS's.
const MORE_RESOURCES: &[&str] = &[
    "--memory",
    "100m",
    "--memory-swap",
    "200m",
    "--memory-reservation",
    "50m",
    "--cpuset-cpus",
    "0",
];

/// Writes the probe into `dir`; the -v argument that mounts it at /probe.sh.
fn probe_volume(dir: &Path) -> String {
    let probe = dir.join("probe.sh");
    std::fs::write(&probe, PROBE).unwrap();
    format!("{}:/probe.sh:ro", probe.display())
}

/// Side by side with runc under podman: the same container (the same
/// flags, a fixed hostname) must look the same from inside, line for
/// line, whichever of the two runs it. Five sets of flags: most of
/// podman's run flags at once, --privileged, a user namespace, the host's
/// namespaces, and systemd mode with more of the rest.
#[test]
fn podman_containers_look_the_same_under_ipc_as_under_runc() {
    let Some(x) = Parity::new("parity") else {
        return;
    };
    let (p, image, runc, volume) = (&x.s.p, x.image, &x.runc, &x.volume);
    let d = p.dir.path();
    let userns = ["--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536"];
    // The host's pid, ipc and cgroup namespaces (left out of
    // linux.namespaces): /proc/self/cgroup then shows the host's paths.
    let host = ["--pid=host", "--ipc=host", "--cgroupns=host"];
    // systemd mode (podman's tmpfs on /run, /tmp, /var/log/journal, the
    // cgroup mount read-write), no seccomp, an unmasked path, a tmpfs
    // mount, every capability, and more of the resource flags.
    let more = [
        &[
            "--systemd=always",
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "unmask=/proc/acpi",
            "--mount",
            "type=tmpfs,destination=/x,tmpfs-mode=0700,tmpfs-size=1m",
            "--cap-add",
            "ALL",
            "--pids-limit",
            "-1",
            "--blkio-weight",
            "500",
        ][..],
        MORE_RESOURCES,
    ]
    .concat();
    let sets: [&[&str]; 5] = [PROBE_FLAGS, &["--privileged"], &userns, &host, &more];
    let opts = p.run_opts();
    for flags in sets {
        let mut v = vec!["run", "--rm", "--hostname", "probe", "-v", &volume];
        v.extend(opts.iter().map(String::as_str));
        v.extend(flags);
        v.extend([image, "sh", "/probe.sh"]);
        let seen = |runtime: &Path| {
            let out = p.cmd_on(runtime, &v).output().unwrap();
            // The probe's last line (a write to /proc/sys) fails: exit 1.
            asterism_tests::stdout_of_exit(&out, 1)
        };
        assert_same_probe(&seen(runc), &seen(&d.join("ipc-runtime")), flags);
    }
}

/// What a side-by-side test with runc under podman starts from: the
/// podman setup, its busybox image, a runc beside podman's state, and the
/// probe's -v argument.
struct Parity {
    s: Setup,
    image: &'static str,
    runc: PathBuf,
    volume: String,
}

impl Parity {
    fn new(tag: &str) -> Option<Parity> {
        if Command::new("runc").arg("--version").output().is_err() {
            panic!("runc is missing: apt-get install runc (scripts/test.sh does)");
        }
        let s = Setup::new(tag)?;
        let image = import_busybox(&s.p);
        let runc = runc_beside(s.p.dir.path());
        let volume = probe_volume(s.p.dir.path());
        Some(Parity {
            s,
            image,
            runc,
            volume,
        })
    }
}

/// A runc for podman that keeps its state in `dir`, not in /run/runc.
fn runc_beside(dir: &Path) -> PathBuf {
    let runc = dir.join("runc-runtime");
    runtime_wrapper(&runc, Path::new("runc"), &dir.join("runc-state"));
    runc
}

/// An executable at `at` that runs `binary --root root` with its own
/// arguments: how podman is given a runtime with a root of our choosing.
fn runtime_wrapper(at: &Path, binary: &Path, root: &Path) {
    let script = format!(
        "#!/bin/sh\nexec '{}' --root '{}' \"$@\"\n",
        binary.display(),
        root.display()
    );
    std::fs::write(at, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `podman exec` side by side with runc: the probe exec'd into a running
/// container (as another user with its own env and working directory, then
/// with --privileged) must read the same under both: ids, capabilities,
/// rlimits, mounts, cgroups, what the exec'd process joined and was given.
#[test]
fn podman_exec_looks_the_same_under_ipc_as_under_runc() {
    let Some(x) = Parity::new("exec-parity") else {
        return;
    };
    let (p, image, runc, volume) = (&x.s.p, x.image, &x.runc, &x.volume);
    let d = p.dir.path();
    let opts = p.run_opts();
    let seen = |runtime: &Path, name: &str| {
        let mut v = vec![
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            "probe",
            "-v",
            &volume,
        ];
        v.extend(opts.iter().map(String::as_str));
        v.extend(PROBE_FLAGS);
        v.extend([image, "sleep", "300"]);
        let out = p.cmd_on(runtime, &v).output().unwrap();
        asterism_tests::stdout_of_exit(&out, 0);
        let mut text = String::new();
        for flags in [
            &["--user", "2000:2000", "-e", "BAR=2", "-w", "/"][..],
            &["--privileged"],
        ] {
            let mut exec = vec!["exec"];
            exec.extend(flags);
            exec.extend([name, "sh", "/probe.sh"]);
            let out = p.cmd_on(runtime, &exec).output().unwrap();
            text += &asterism_tests::stdout_of_exit(&out, 1);
        }
        let out = p
            .cmd_on(runtime, &["rm", "-f", "-t", "0", name])
            .output()
            .unwrap();
        asterism_tests::stdout_of_exit(&out, 0);
        text
    };
    let theirs = seen(runc, "under-runc");
    let ours = seen(&d.join("ipc-runtime"), "under-ipc");
    // runc 1.1 races Go's own raise of RLIMIT_NOFILE in `runc exec` and
    // often leaves the soft limit at the hard one (opencontainers/runc#4195,
    // fixed in 1.2 by #4266): the exec'd process must have the config's
    // soft limit, 1000, whatever runc's reads.
    let open_files = "open files (-n) 1000";
    assert_eq!(ours.matches(open_files).count(), 2, "{ours}");
    let no_nofile = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("open files"))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    };
    assert_same_probe(&no_nofile(&theirs), &no_nofile(&ours), &["exec"]);
}

/// The probe's output under runc and under ipc, line for line.
fn assert_same_probe(theirs: &str, ours: &str, flags: &[&str]) {
    assert!(theirs.lines().count() > 60, "{theirs}");
    let differ: Vec<String> = theirs
        .lines()
        .zip(ours.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("runc: {a}\nipc:  {b}"))
        .collect();
    assert!(
        differ.is_empty() && theirs.lines().count() == ours.lines().count(),
        "with {flags:?}:\n{}\n(runc {} lines, ipc {})",
        differ.join("\n"),
        theirs.lines().count(),
        ours.lines().count()
    );
}

#[test]
fn podman_runs_containers_with_ipc_as_its_runtime() {
    let Some(s) = Setup::new("podman") else {
        return;
    };
    let (p, c, parent, dirs) = (&s.p, &s.c, &s.parent.path, &s.parent.leaves);
    let image = import_busybox(p);
    let opts = p.run_opts();
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        // podman's options go before the image.
        let at = v.iter().position(|a| a == image).unwrap();
        for (i, o) in opts.iter().enumerate() {
            v.insert(at + i, o.clone());
        }
        v
    };

    // Foreground: the output, the exit code, a device (podman gives its
    // fileMode as the whole st_mode, S_IFCHR|0666), and the container in a
    // group of its own below the parent in every v1 hierarchy.
    let v = with(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        image,
        "sh",
        "-c",
        "echo hello from podman; ls -l /dev/mynull; echo x > /dev/mynull; cat /proc/self/cgroup; exit 3",
    ]);
    let text = asterism_tests::stdout_of_exit(&p.run(&args(&v)), 3);
    // -t: conmon's console socket gets the pty's master.
    let v = with(&["run", "--rm", "-t", image, "sh", "-c", "tty; exit 2"]);
    let tty = asterism_tests::stdout_of_exit(&p.run(&args(&v)), 2);
    assert_eq!(tty, "/dev/pts/0\r\n");
    assert!(text.starts_with("hello from podman\ncrw-rw-rw- "), "{text}");
    for h in asterism_tests::member_hierarchies() {
        let own = cgroupfs::hierarchy::cgroup_of(&text, &h)
            .unwrap_or_else(|| panic!("no {} line in {text}", h.controller));
        let name = own.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            own.starts_with(parent) && name.starts_with("libpod-"),
            "{}: {}",
            h.controller,
            own.display()
        );
    }

    // Detached: exec as another user, pause and unpause, stop, remove.
    let v = with(&["run", "-d", "--name", "pm1", image, "sleep", "300"]);
    p.ok(&args(&v));
    let status = |name: &str| {
        p.ok(&["inspect", name, "--format", "{{.State.Status}}"])
            .trim()
            .to_string()
    };
    assert_eq!(status("pm1"), "running");
    let exec = p.ok(&[
        "exec",
        "-u",
        "1000",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "pm1",
        "sh",
        "-c",
        "id -u; echo $FOO; pwd",
    ]);
    assert_eq!(exec, "1000\nbar\n/tmp\n");
    // podman reads the container's cgroup files itself, at the path it
    // gave as cgroupsPath: one process (sleep), some memory charged.
    let stats = p.ok(&["stats", "--no-stream", "--format", "json", "pm1"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats[0]["pids"], "1", "{stats}");
    let mem = stats[0]["mem_usage"].as_str().unwrap_or_default();
    assert!(!mem.is_empty() && !mem.starts_with("0B"), "{stats}");
    // top reads the container's processes (found through its pid); a
    // restart is a stop, then a create and start of the same id.
    let top = |p: &Podman| -> String {
        let top = p.ok(&["top", "pm1", "pid", "args"]);
        let pid1 = top
            .lines()
            .find(|l| l.split_whitespace().next() == Some("1"));
        pid1.unwrap_or_else(|| panic!("no pid 1 in {top}"))
            .trim_end()
            .to_string()
    };
    assert!(top(p).ends_with("sleep 300"), "{}", top(p));
    let before = c.ipc_json(&["state", &p.id_of("pm1")])["pid"].clone();
    p.ok(&["restart", "-t", "1", "pm1"]);
    assert_eq!(status("pm1"), "running");
    assert!(top(p).ends_with("sleep 300"), "{}", top(p));
    let after = c.ipc_json(&["state", &p.id_of("pm1")])["pid"].clone();
    assert_ne!(before, after, "restart kept the old process");
    let list = c.ipc_json(&["list", "--format", "json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["status"], "running", "{list}");
    p.ok(&["pause", "pm1"]);
    assert_eq!(status("pm1"), "paused");
    assert_eq!(
        c.ipc_json(&["list", "--format", "json"])[0]["status"],
        "paused"
    );
    p.ok(&["unpause", "pm1"]);
    assert_eq!(status("pm1"), "running");
    // sleep as pid 1 ignores SIGTERM: podman kills it after the timeout.
    p.ok(&["stop", "-t", "1", "pm1"]);
    assert_eq!(status("pm1"), "exited");
    assert_eq!(
        p.ok(&["inspect", "pm1", "--format", "{{.State.ExitCode}}"])
            .trim(),
        "137"
    );
    p.ok(&["rm", "pm1"]);

    // Nothing of either container is left: no record in our constellation,
    // no group below the parent but podman's own conmon group.
    let list = c.ipc_json(&["list", "--format", "json"]);
    assert_eq!(list, serde_json::Value::Null);
    for d in dirs {
        let left: Vec<_> = asterism_tests::subdirs(d)
            .into_iter()
            .filter(|n| n != "conmon")
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", d.display());
    }
}

/// A private containerd (root, state and socket in a temporary directory),
/// stopped by pid when dropped.
struct Containerd {
    dir: tempfile::TempDir,
    /// The containerd namespace the test's containers are in.
    namespace: String,
    daemon: std::process::Child,
}

impl Containerd {
    fn start(namespace: &str) -> Containerd {
        assert!(
            Command::new("containerd").arg("--version").output().is_ok(),
            "containerd is missing: apt-get install --no-install-recommends containerd (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = dir.path().join("containerd.log");
        let daemon = spawn_daemon(
            Command::new("containerd")
                .arg("--config")
                .arg(dir.path().join("config.toml")),
            &log,
        );
        let ctd = Containerd {
            dir,
            namespace: namespace.to_string(),
            daemon,
        };
        wait_ready("containerd", &log, || {
            ctd.ctr(&["version"]).status.success()
        });
        ctd
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .arg("--namespace")
            .arg(&self.namespace)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout_of("ctr", args, self.ctr(args))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks and containers first (their shims exit with them).
        let out = self.ctr(&["containers", "list", "--quiet"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
            let _ = self.ctr(&["task", "delete", "--force", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
        stop_daemon(&mut self.daemon);
    }
}

#[test]
fn containerd_runs_containers_with_ipc_as_its_runtime() {
    let Some(s) = Setup::new("containerd") else {
        return;
    };
    let (p, c, parent, dirs) = (&s.p, &s.c, &s.parent.path, &s.parent.leaves);
    // The image: built and saved by podman, imported by ctr.
    let image = import_busybox(p);
    let archive = p.dir.path().join("busybox.docker.tar");
    p.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        image,
    ]);
    // The shim gives runc `--root <runc root>/<namespace>`: the namespace
    // named as the test's root directory ("ast-..."), in its parent, is
    // that root.
    let root = c.root();
    let namespace = root.file_name().unwrap().to_str().unwrap();
    let runc_root = root.parent().unwrap().to_str().unwrap();
    let ctd = Containerd::start(namespace);
    ctd.ok(&[
        "images",
        "import",
        "--snapshotter",
        "native",
        archive.to_str().unwrap(),
    ]);
    // The runc shim (io.containerd.runc.v2) drives ipc as it drives runc:
    // --root, --log, --log-format json, create --bundle --pid-file, start,
    // exec --process --detach --pid-file, kill, delete.
    let fifo = ctd.dir.path().join("fifo");
    let ipc = asterism_tests::bin("ipc");
    let run_on = |binary: &str, root: &str, extra: &[&str], id: &str, cmd: &[&str]| -> Output {
        let cgroup = format!("{parent}/{id}");
        let mut args = vec![
            "run",
            "--snapshotter",
            "native",
            "--fifo-dir",
            fifo.to_str().unwrap(),
            "--runc-binary",
            binary,
            "--runc-root",
            root,
            "--cgroup",
            &cgroup,
        ];
        args.extend_from_slice(extra);
        args.push(image);
        args.push(id);
        args.extend_from_slice(cmd);
        ctd.ctr(&args)
    };
    let run = |extra: &[&str], id: &str, cmd: &[&str]| -> Output {
        run_on(ipc.to_str().unwrap(), runc_root, extra, id, cmd)
    };

    // Foreground: the output and the exit code.
    let out = run(
        &["--rm"],
        "ctd1",
        &["sh", "-c", "echo hello from containerd; exit 4"],
    );
    assert_eq!(
        asterism_tests::stdout_of_exit(&out, 4),
        "hello from containerd\n"
    );

    // Detached, a shell with two children: exec, ps, pause and resume,
    // kill --all, and a forced delete of the stopped task (the shim's kill
    // then finds it stopped, and must read that from ipc's error as it
    // reads it from runc's).
    let out = run(
        &["--detach"],
        "ctd2",
        &["sh", "-c", "sleep 300 & sleep 300 & wait"],
    );
    assert!(out.status.success(), "{out:?}");
    let tasks = ctd.ok(&["task", "list"]);
    assert!(
        tasks.contains("ctd2") && tasks.contains("RUNNING"),
        "{tasks}"
    );
    let exec = ctd.ok(&[
        "task",
        "exec",
        "--fifo-dir",
        fifo.to_str().unwrap(),
        "--exec-id",
        "e1",
        "--user",
        "1000",
        "ctd2",
        "sh",
        "-c",
        "id -u; echo exec ok",
    ]);
    assert_eq!(exec, "1000\nexec ok\n");
    let pid: i64 = c.ipc_json(&["state", "ctd2"])["pid"].as_i64().unwrap();
    let ps = ctd.ok(&["task", "ps", "ctd2"]);
    assert!(ps.contains(&pid.to_string()), "{ps}");
    let shown = || ctd.ok(&["task", "ps", "ctd2"]).lines().skip(1).count();
    let three = asterism_tests::wait_for(std::time::Duration::from_secs(10), || {
        (shown() == 3).then_some(())
    });
    assert!(three.is_some(), "{}", ctd.ok(&["task", "ps", "ctd2"]));
    // The shim reads the task's cgroups from its pid's /proc/PID/cgroup:
    // the shell and its two children, memory and CPU charged to the
    // container's own groups. (Names: cgroup v1's, then v2's.)
    let metrics = ctd.ok(&["task", "metrics", "ctd2"]);
    let metric = |names: &[&str]| -> u64 {
        let line = metrics.lines().find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|n| names.contains(&n))
        });
        line.and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("none of {names:?} in {metrics}"))
    };
    assert_eq!(metric(&["pids.current"]), 3, "{metrics}");
    assert!(
        metric(&["memory.usage_in_bytes", "memory.usage"]) > 0,
        "{metrics}"
    );
    assert!(
        metric(&["cpuacct.usage", "cpu.usage_usec"]) > 0,
        "{metrics}"
    );
    ctd.ok(&["task", "pause", "ctd2"]);
    assert!(ctd.ok(&["task", "list"]).contains("PAUSED"));
    assert_eq!(c.ipc_json(&["state", "ctd2"])["status"], "paused");
    ctd.ok(&["task", "resume", "ctd2"]);
    assert_eq!(c.ipc_json(&["state", "ctd2"])["status"], "running");
    ctd.ok(&["task", "kill", "--all", "--signal", "SIGKILL", "ctd2"]);
    let stopped = asterism_tests::wait_for(std::time::Duration::from_secs(10), || {
        ctd.ok(&["task", "list"]).contains("STOPPED").then_some(())
    });
    assert!(stopped.is_some(), "{}", ctd.ok(&["task", "list"]));
    ctd.ok(&["task", "delete", "--force", "ctd2"]);
    ctd.ok(&["containers", "delete", "ctd2"]);

    // Side by side with runc (its state in the test's directory): the probe
    // reads the same under both, with most of ctr's run flags, and with
    // --privileged.
    let volume = probe_volume(ctd.dir.path());
    let (src, _) = volume.split_once(':').unwrap();
    let mount = format!("type=bind,src={src},dst=/probe.sh,options=rbind:ro");
    let runc_state = ctd.dir.path().join("runc-state");
    let flags: &[&str] = &[
        "--memory-limit",
        "67108864",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--env",
        "FOO=1",
        "--cwd",
        "/tmp",
        "--cap-add",
        "CAP_NET_ADMIN",
        "--cap-drop",
        "CAP_CHOWN",
        "--seccomp",
        "--read-only",
        "--device",
        "/dev/null",
        "--rootfs-propagation",
        "rslave",
    ];
    for set in [flags, &["--privileged"]] {
        let seen = |binary: &str, root: &str, id: &str| {
            let mut extra = vec!["--rm", "--mount", &mount];
            extra.extend(set);
            let out = run_on(binary, root, &extra, id, &["sh", "/probe.sh"]);
            // The probe's last line (a write to /proc/sys) fails: exit 1.
            asterism_tests::stdout_of_exit(&out, 1)
        };
        let theirs = seen("runc", runc_state.to_str().unwrap(), "under-runc");
        let ours = seen(ipc.to_str().unwrap(), runc_root, "under-ipc");
        // The probe prints its hostname: ctr names it after the id.
        let ours = ours.replace("under-ipc", "under-runc");
        assert_same_probe(&theirs, &ours, set);
    }

    // Nothing left in our constellation, nor below the cgroup parent.
    assert_eq!(
        c.ipc_json(&["list", "--format", "json"]),
        serde_json::Value::Null
    );
    for d in dirs {
        assert!(
            asterism_tests::subdirs(d).is_empty(),
            "{}: {:?}",
            d.display(),
            asterism_tests::subdirs(d)
        );
    }
}

/// A private dockerd (data, exec root and socket in a temporary directory)
/// on the test's containerd, with `ipc` as a runtime named "asterism".
/// The containerd shim gives ipc `--root <exec root>/runtime-runc/moby`,
/// where ipc starts a constellation of its own: stopped, and its cgroups
/// removed, on drop, after dockerd's containers and dockerd itself.
struct Docker {
    dir: tempfile::TempDir,
    daemon: std::process::Child,
}

impl Docker {
    fn start(ctd: &Containerd, cgroup_parent: &str) -> Docker {
        assert!(
            Command::new("dockerd").arg("--version").output().is_ok(),
            "dockerd is missing: apt-get install --no-install-recommends docker.io (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config = json!({"runtimes": {"asterism": {"path": asterism_tests::bin("ipc")}}});
        std::fs::write(dir.path().join("daemon.json"), config.to_string()).unwrap();
        let d = dir.path();
        let log = d.join("dockerd.log");
        let daemon = spawn_daemon(
            Command::new("dockerd")
                .arg("--config-file")
                .arg(d.join("daemon.json"))
                .arg("--containerd")
                .arg(ctd.dir.path().join("containerd.sock"))
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("dockerd.pid"))
                .arg("--host")
                .arg(format!("unix://{}", d.join("docker.sock").display()))
                // No network of its own: no bridge, no iptables rules.
                .args([
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                    "--storage-driver=vfs",
                ])
                .arg("--cgroup-parent")
                .arg(cgroup_parent),
            &log,
        );
        let dk = Docker { dir, daemon };
        wait_ready("dockerd", &log, || dk.run(&["version"]).status.success());
        dk
    }

    /// The root the shim gives ipc.
    fn ipc_root(&self) -> PathBuf {
        self.dir.path().join("exec/runtime-runc/moby")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("--host")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        stdout_of("docker", args, self.run(args))
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let out = self.run(&["ps", "--all", "--quiet"]);
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = self.run(&["rm", "--force", id]);
        }
        stop_daemon(&mut self.daemon);
        let root = self.ipc_root();
        asterism_tests::stop_processes_naming(&root);
        asterism_tests::remove_cgroups(&root);
    }
}

#[test]
fn docker_runs_containers_with_ipc_as_its_runtime() {
    let Some(s) = Setup::new("docker") else {
        return;
    };
    let (p, parent, dirs) = (&s.p, &s.parent.path, &s.parent.leaves);
    let image = import_busybox(p);
    let archive = p.dir.path().join("busybox.docker.tar");
    p.ok(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        archive.to_str().unwrap(),
        image,
    ]);
    let ctd = Containerd::start("docker-unused");
    let dk = Docker::start(&ctd, parent);
    dk.ok(&["load", "--input", archive.to_str().unwrap()]);
    let opts = ["--runtime", "asterism", "--network", "none"];
    let run = |extra: &[&str], cmd: &[&str]| -> Output {
        let mut args = vec!["run"];
        args.extend_from_slice(&opts);
        args.extend_from_slice(extra);
        args.push(image);
        args.extend_from_slice(cmd);
        dk.run(&args)
    };

    // Foreground: the output and the exit code. (docker sends
    // cpu.shares 0 and blockIO.weight 0 for limits it was not given,
    // which runc takes as not set.)
    let out = run(&["--rm"], &["sh", "-c", "echo hello from docker; exit 6"]);
    assert_eq!(
        asterism_tests::stdout_of_exit(&out, 6),
        "hello from docker\n"
    );
    // -t: the shim's console socket gets the pty's master.
    let out = run(&["--rm", "-t"], &["sh", "-c", "tty; exit 2"]);
    assert_eq!(asterism_tests::stdout_of_exit(&out, 2), "/dev/pts/0\r\n");

    // Side by side with docker's own runc: the same probe, the same flags.
    let volume = probe_volume(dk.dir.path());
    // (Not --privileged: docker's asks for every capability, and runc 1.1
    // fails where this sandbox's root lacks one; podman's asks for ours.)
    // Also the host's pid, ipc and cgroup namespaces, and docker's init
    // (tini) as pid 1 with no seccomp, a tmpfs, more resource flags.
    let host = ["--pid=host", "--ipc=host", "--cgroupns=host"];
    let more = [
        &[
            "--init",
            "--security-opt",
            "seccomp=unconfined",
            "--tmpfs",
            "/x:mode=0700,size=1m",
            "--cap-add",
            "SYS_ADMIN",
        ][..],
        MORE_RESOURCES,
    ]
    .concat();
    for flags in [PROBE_FLAGS, &host, &more] {
        let seen = |runtime: &str| {
            let mut v = vec!["run", "--rm", "--runtime", runtime, "--network", "none"];
            v.extend(["--hostname", "probe", "-v", &volume]);
            v.extend(flags);
            v.extend([image, "sh", "/probe.sh"]);
            asterism_tests::stdout_of_exit(&dk.run(&v), 1)
        };
        assert_same_probe(&seen("runc"), &seen("asterism"), flags);
    }

    // Detached: exec as another user, pause, update (whole resource
    // objects, zeros for what stays), stop, rm.
    let out = run(
        &["--detach", "--name", "dk1", "--memory", "64m"],
        &["sleep", "300"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        dk.ok(&["exec", "--user", "1000", "dk1", "id", "-u"]),
        "1000\n"
    );
    // So does docker (through containerd's cgroup metrics): the limit it
    // set, one process.
    let stats = dk.ok(&["stats", "--no-stream", "--format", "{{json .}}", "dk1"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["PIDs"], "1", "{stats}");
    let mem = stats["MemUsage"].as_str().unwrap_or_default();
    assert!(
        mem.ends_with(" / 64MiB") && !mem.starts_with("0B"),
        "{stats}"
    );
    // top lists the task's pids (ipc ps through the shim); a restart is
    // a new task for the same container, with a new process.
    let top = || -> String {
        let top = dk.ok(&["top", "dk1"]);
        let line = top.lines().find(|l| l.trim_end().ends_with("sleep 300"));
        let pid = line.and_then(|l| l.split_whitespace().nth(1));
        pid.unwrap_or_else(|| panic!("no sleep 300 in {top}"))
            .to_string()
    };
    let before = top();
    dk.ok(&["restart", "--time", "1", "dk1"]);
    assert_ne!(top(), before, "restart kept the old process");
    dk.ok(&["pause", "dk1"]);
    let status = || dk.ok(&["inspect", "--format", "{{.State.Status}}", "dk1"]);
    assert_eq!(status().trim(), "paused");
    dk.ok(&["unpause", "dk1"]);
    dk.ok(&[
        "update",
        "--memory",
        "96m",
        "--memory-swap",
        "192m",
        "--pids-limit",
        "40",
        "dk1",
    ]);
    let root = dk.ipc_root();
    let ipc = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(asterism_tests::bin("ipc"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let id = dk.ok(&["inspect", "--format", "{{.Id}}", "dk1"]);
    let id = id.trim();
    let mem = ipc(&["memory-controller", "stat", id, "--json"]);
    assert_eq!(mem["limit_bytes"], 96 << 20, "{mem}");
    let cpu = ipc(&["cpu-controller", "stat", id, "--json"]);
    assert_eq!(cpu["pids_max"], 40, "{cpu}");
    dk.ok(&["stop", "--time", "1", "dk1"]);
    assert_eq!(status().trim(), "exited");
    dk.ok(&["rm", "dk1"]);

    // Nothing left in the constellation ipc started for docker, nor below
    // the cgroup parent.
    assert_eq!(ipc(&["list", "--format", "json"]), serde_json::Value::Null);
    for d in dirs {
        assert!(
            asterism_tests::subdirs(d).is_empty(),
            "{}: {:?}",
            d.display(),
            asterism_tests::subdirs(d)
        );
    }
}
