//! The launcher on the real kernel, as root: launch() with a busybox rootfs,
//! each check read back from inside the container (files it writes to a
//! bind-mounted /out).
//!
//! launch() forks, and its caller must be single-threaded (a thread holding
//! a lock at the fork would leave that lock held forever in the child). So
//! this file has its own harness (`harness = false`): the tests run one
//! after the other on the main thread, and print libtest's lines.

use asterism_init::launcher::{launch, ChildError, LaunchRequest, Launched, Parent};
use oci_spec::runtime::Spec;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const APPLETS: &[&str] = &[
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
    "readlink",
    "stat",
    "test",
    "printf",
    "ulimit",
    "umask",
    "domainname",
    "head",
    "tr",
    "wc",
    "mount",
    "stty",
    "tty",
];

/// A bundle dir with a busybox rootfs and an /out dir the container writes
/// to (bind-mounted); removed on drop.
struct Bundle {
    dir: tempfile::TempDir,
}

impl Bundle {
    fn new() -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("launcher-")
            .tempdir_in("/tmp")
            .unwrap();
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "etc",
            "proc",
            "sys",
            "dev",
            "tmp",
            "root",
            "out",
            "home/user",
        ] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("/bin/busybox (apt-get install busybox-static)");
        for a in APPLETS {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        std::fs::set_permissions(
            dir.path().join("out"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        Bundle { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    fn out(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join("out").join(name))
            .unwrap_or_else(|e| panic!("container output {name}: {e}"))
    }

    /// runc's default config, the /out bind, `args`, and `patch` merged in.
    fn spec(&self, args: &[&str], patch: Value) -> Spec {
        let mut c = default_config();
        c["process"]["args"] = json!(args);
        let out = self.dir.path().join("out");
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]
        }));
        merge(&mut c, patch);
        serde_json::from_value(c).expect("a valid spec")
    }
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// runc 1.1's `runc spec`, with terminal off.
fn default_config() -> Value {
    json!({
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
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// A Parent that records its calls and can be told to fail.
#[derive(Default)]
struct Recorder {
    calls: Vec<String>,
    fail_created: bool,
}

impl Parent for Recorder {
    fn created_process(&mut self, pid: i32) -> anyhow::Result<()> {
        assert!(pid > 0);
        self.calls.push("created_process".into());
        if self.fail_created {
            anyhow::bail!("the controllers refused");
        }
        Ok(())
    }

    fn create_runtime(&mut self, _pid: i32) -> anyhow::Result<()> {
        self.calls.push("create_runtime".into());
        Ok(())
    }
}

/// A container process we started: killed and reaped on drop.
struct Container {
    pid: i32,
    reaped: bool,
}

impl Container {
    fn new(l: Launched) -> Container {
        Container {
            pid: l.pid,
            reaped: false,
        }
    }

    /// Waits for it to exit; its exit code (128+signal when killed).
    fn wait(&mut self) -> i32 {
        use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
        let pid = nix::unistd::Pid::from_raw(self.pid);
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
                WaitStatus::Exited(_, code) => {
                    self.reaped = true;
                    return code;
                }
                WaitStatus::Signaled(_, sig, _) => {
                    self.reaped = true;
                    return 128 + sig as i32;
                }
                _ if Instant::now() > until => panic!("container {} did not exit", self.pid),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.reaped {
            let pid = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

fn state_json(pid: i32) -> String {
    json!({"ociVersion": "1.0.2", "id": "t", "status": "creating", "pid": pid, "bundle": "/"})
        .to_string()
}

/// The mountinfo line of the mount at `dest` (panics naming it if none).
/// A mountinfo line's per-mount options (its sixth field).
fn mount_options(line: &str) -> &str {
    line.split(' ').nth(5).unwrap_or("")
}

fn mount_line(mountinfo: &str, dest: &str) -> String {
    mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dest))
        .unwrap_or_else(|| panic!("{dest} not mounted:\n{mountinfo}"))
        .to_string()
}

/// A request with everything defaulted for `create` without a fifo (the
/// process execs as soon as it is set up).
fn request<'a>(b: &'a Bundle, spec: &'a Spec, rootfs: &'a Path) -> LaunchRequest<'a> {
    LaunchRequest {
        id: "launcher-test",
        bundle: b.path(),
        spec,
        rootfs,
        process: spec.process().as_ref().unwrap(),
        console_socket: None,
        preserve_fds: 0,
        no_pivot: false,
        no_new_keyring: false,
        exec_fifo: None,
        start_gate: false,
        join: None,
        state_json: &state_json,
        detach_stdio: true,
        seccomp: None,
        cgroups: &[],
        netns: None,
        late: false,
    }
}

/// Runs `script` in a container from the default config plus `patch`, waits
/// for it, and returns its exit code.
fn run_script(b: &Bundle, script: &str, patch: Value) -> (i32, Recorder) {
    let spec = b.spec(&["sh", "-c", script], patch);
    let rootfs = b.rootfs();
    let mut rec = Recorder::default();
    let launched =
        launch(&request(b, &spec, &rootfs), &mut rec).unwrap_or_else(|e| panic!("launch: {e:#}"));
    let mut c = Container::new(launched);
    (c.wait(), rec)
}

/// The error launch() returns for this spec, as a ChildError.
fn launch_error(b: &Bundle, spec: &Spec) -> ChildError {
    let rootfs = b.rootfs();
    let mut rec = Recorder::default();
    let e = match launch(&request(b, spec, &rootfs), &mut rec) {
        Ok(l) => {
            drop(Container::new(l));
            panic!("launch succeeded")
        }
        Err(e) => e,
    };
    assert_no_children();
    e.downcast::<ChildError>()
        .unwrap_or_else(|e| panic!("not a child error: {e:#}"))
}

/// Nothing of ours is left running or unreaped.
fn assert_no_children() {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    match waitpid(None::<nix::unistd::Pid>, Some(WaitPidFlag::WNOHANG)) {
        Err(nix::Error::ECHILD) => {}
        other => panic!("a child is left behind: {other:?}"),
    }
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in {status}"))
        .trim()
        .to_string()
}

/// With a prestart or a createRuntime hook the child stops once its mounts
/// are done, and the parent runs them (create_runtime) before it goes on.
fn runtime_hooks_are_waited_for_after_the_mounts() {
    let b = Bundle::new();
    for hooks in [
        json!({"prestart": [{"path": "/bin/true"}]}),
        json!({"createRuntime": [{"path": "/bin/true"}]}),
    ] {
        let (code, rec) = run_script(&b, "true", json!({ "hooks": hooks }));
        assert_eq!(code, 0);
        assert_eq!(
            rec.calls,
            vec!["created_process", "create_runtime"],
            "{hooks}"
        );
    }
}

fn minimal_container_runs_in_its_namespaces() {
    let b = Bundle::new();
    let (code, rec) = run_script(
        &b,
        "hostname > /out/hostname; echo $$ > /out/pid; cat /proc/self/mountinfo > /out/mountinfo; pwd > /out/cwd",
        json!({}),
    );
    assert_eq!(code, 0);
    // No prestart or createRuntime hooks: the child does not stop for them.
    assert_eq!(rec.calls, vec!["created_process"]);
    assert_eq!(b.out("hostname"), "runc\n");
    assert_eq!(b.out("pid"), "1\n");
    assert_eq!(b.out("cwd"), "/\n");
    let mi = b.out("mountinfo");
    let root = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a / mount");
    assert!(
        root.split(' ').nth(3).unwrap().ends_with("/rootfs"),
        "{root}"
    );
    assert!(
        mount_options(root).starts_with("ro"),
        "root.readonly: {root}"
    );
    assert_no_children();
}

fn user_groups_capabilities_umask_cwd_env() {
    let b = Bundle::new();
    let (code, _) = run_script(
        &b,
        "cat /proc/self/status > /out/status; umask > /out/umask; pwd > /out/cwd; env > /out/env; \
         touch /out/made; id > /out/id",
        json!({"process": {
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [2000, 3000], "umask": 23},
            "cwd": "/home/user",
            "env": ["PATH=/bin", "FOO=bar"],
            "capabilities": {
                "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"],
                "effective": ["CAP_KILL"],
                "permitted": ["CAP_KILL", "CAP_CHOWN"],
                "inheritable": ["CAP_KILL"],
                "ambient": ["CAP_KILL"]
            }
        }}),
    );
    assert_eq!(code, 0);
    let st = b.out("status");
    assert_eq!(status_field(&st, "Uid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&st, "Gid"), "1000\t1000\t1000\t1000");
    assert_eq!(status_field(&st, "Groups"), "2000 3000");
    // CAP_CHOWN 0, CAP_KILL 5, CAP_NET_BIND_SERVICE 10. After exec as a
    // non-root user, permitted/effective are the ambient set (CAP_KILL).
    assert_eq!(
        status_field(&st, "CapBnd"),
        format!("{:016x}", 1u64 | 1 << 5 | 1 << 10)
    );
    assert_eq!(status_field(&st, "CapAmb"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&st, "CapEff"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&st, "CapInh"), format!("{:016x}", 1u64 << 5));
    assert_eq!(status_field(&st, "NoNewPrivs"), "1");
    assert_eq!(b.out("umask"), "0027\n");
    assert_eq!(b.out("cwd"), "/home/user\n");
    let env = b.out("env");
    assert!(env.lines().any(|l| l == "FOO=bar"), "{env}");
    assert!(
        env.lines().any(|l| l == "HOME=/home/user"),
        "HOME from /etc/passwd: {env}"
    );
    let made = std::fs::metadata(b.path().join("out/made")).unwrap();
    assert_eq!(
        (made.uid(), made.gid(), made.mode() & 0o777),
        (1000, 1000, 0o644 & !0o027)
    );
}

fn mounts_devices_masked_and_readonly_paths() {
    let b = Bundle::new();
    let (code, _) = run_script(
        &b,
        "cat /proc/self/mountinfo > /out/mountinfo; ls -l /dev > /out/dev; \
         readlink /dev/fd > /out/links; readlink /dev/stdin >> /out/links; readlink /dev/ptmx >> /out/links; \
         cat /proc/keys > /out/keys 2>&1; echo $? >> /out/keys; \
         ls /sys/firmware | wc -l > /out/firmware; \
         (echo 1 > /proc/sys/vm/overcommit_memory) 2> /out/procsys; echo $? >> /out/procsys; \
         (touch /newfile) 2> /out/rootro; echo $? >> /out/rootro; \
         echo x > /dev/shm/x && cat /dev/shm/x > /out/shm; \
         ls /sys/fs/cgroup > /out/cgroups",
        json!({}),
    );
    assert_eq!(code, 0);
    let mi = b.out("mountinfo");
    let find = |dest: &str| mount_line(&mi, dest);
    assert!(find("/proc").contains(" - proc "));
    let sys = find("/sys");
    assert!(
        mount_options(&sys).starts_with("ro,nosuid,nodev,noexec"),
        "{sys}"
    );
    assert!(find("/dev").contains(" - tmpfs "));
    assert!(find("/dev/pts").contains("ptmxmode=666"));
    let shm = find("/dev/shm");
    assert!(shm.contains("nosuid,nodev,noexec"), "{shm}");
    assert!(find("/dev/mqueue").contains(" - mqueue "));
    assert!(find("/out").contains(" rw"));
    assert!(
        mount_options(&find("/proc/sys")).starts_with("ro"),
        "readonlyPaths"
    );
    assert!(
        find("/sys/firmware").contains(" - tmpfs "),
        "maskedPaths dir"
    );
    assert!(
        find("/proc/keys").split(' ').nth(3).unwrap() == "/null",
        "maskedPaths file"
    );
    let mem = find("/sys/fs/cgroup/memory");
    assert!(
        mem.contains(" - cgroup ") && mount_options(&mem).starts_with("ro"),
        "{mem}"
    );
    assert!(b.out("cgroups").contains("memory"));
    let dev = b.out("dev");
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let line = dev
            .lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("/dev/{name}:\n{dev}"));
        assert!(line.starts_with("crw-rw-rw-"), "{line}");
        assert!(
            line.contains(&format!("{major},")) && line.contains(&format!(" {minor} ")),
            "{line}"
        );
    }
    assert_eq!(b.out("links"), "/proc/self/fd\n/proc/self/fd/0\npts/ptmx\n");
    assert_eq!(
        b.out("keys"),
        "0\n",
        "/proc/keys masked (reads as /dev/null)"
    );
    assert_eq!(b.out("firmware"), "0\n");
    assert!(
        b.out("procsys").ends_with("1\n"),
        "/proc/sys writable: {}",
        b.out("procsys")
    );
    assert!(
        b.out("rootro").contains("Read-only file system"),
        "{}",
        b.out("rootro")
    );
    assert_eq!(b.out("shm"), "x\n");
}

fn rlimits_oom_score_sysctl_domainname() {
    let b = Bundle::new();
    let (code, _) = run_script(
        &b,
        "ulimit -n > /out/nofile; ulimit -Hn >> /out/nofile; cat /proc/self/oom_score_adj > /out/oom; \
         cat /proc/sys/kernel/shm_rmid_forced > /out/sysctl; cat /proc/sys/kernel/domainname > /out/domain",
        json!({
            "domainname": "example.org",
            "process": {"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}], "oomScoreAdj": 123},
            "linux": {"sysctl": {"kernel.shm_rmid_forced": "1"}}
        }),
    );
    assert_eq!(code, 0);
    assert_eq!(b.out("nofile"), "256\n512\n");
    assert_eq!(b.out("oom"), "123\n");
    assert_eq!(b.out("sysctl"), "1\n");
    assert_eq!(b.out("domain"), "example.org\n");
    // A sysctl of the host's (not namespaced), or of a namespace the
    // container does not have, is refused.
    let e = launch_error(
        &b,
        &b.spec(
            &["true"],
            json!({"linux": {"sysctl": {"vm.overcommit_memory": "1"}}}),
        ),
    );
    assert!(
        e.message
            .contains("vm.overcommit_memory is not in a separate kernel namespace"),
        "{}",
        e.message
    );
    let spec = b.spec(
        &["true"],
        json!({"linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
        "sysctl": {"net.ipv4.ip_forward": "1"}}}),
    );
    let e = launch_error(&b, &spec);
    assert!(
        e.message.contains("needs a network namespace"),
        "{}",
        e.message
    );
}

fn command_not_found_is_runcs_error_and_leaves_nothing() {
    let b = Bundle::new();
    let e = launch_error(&b, &b.spec(&["nosuchcmd"], json!({})));
    assert_eq!(
        e.message,
        "exec: \"nosuchcmd\": executable file not found in $PATH"
    );
    assert_eq!(e.errno, libc::ENOENT);
    let e = launch_error(&b, &b.spec(&["/bin/nope"], json!({})));
    assert_eq!(
        e.message,
        "exec: \"/bin/nope\": stat /bin/nope: no such file or directory"
    );
    // What the launcher does not implement is refused, not ignored.
    let rootfs = b.rootfs();
    let spec = b.spec(
        &["true"],
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}),
    );
    let err = launch(&request(&b, &spec, &rootfs), &mut Recorder::default()).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "linux.seccomp: no compiled program was given to the launcher (seccomp-monitor compiles it)"
    );
    assert_no_children();
}

/// A hand-written x86_64 program: mkdir fails with EPERM (or is notified
/// with `notify`), anything else runs; a foreign architecture is killed.
fn mkdir_program(notify: bool) -> protocol::seccomp::Program {
    use protocol::seccomp::Insn;
    let i = |code, jt, jf, k| Insn { code, jt, jf, k };
    let deny = if notify { 0x7fc0_0000 } else { 0x0005_0001 };
    protocol::seccomp::Program {
        insns: vec![
            i(0x20, 0, 0, 4),           // ld [4]: arch
            i(0x15, 1, 0, 0xc000_003e), // jeq AUDIT_ARCH_X86_64
            i(0x06, 0, 0, 0x8000_0000), // ret KILL_PROCESS
            i(0x20, 0, 0, 0),           // ld [0]: nr
            i(0x15, 0, 1, 83),          // jeq mkdir
            i(0x06, 0, 0, deny),        // ret ERRNO(EPERM) / USER_NOTIF
            i(0x06, 0, 0, 0x7fff_0000), // ret ALLOW
        ],
        flags: if notify { 8 } else { 0 },
        needs_listener: notify,
        warnings: vec![],
        hash: String::new(),
        cached: false,
    }
}

fn a_seccomp_program_is_installed_last_with_its_listener() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let b = Bundle::new();
    let rootfs = b.rootfs();
    for nnp in [true, false] {
        let spec = b.spec(
            &[
                "sh",
                "-c",
                "/bin/mkdir /tmp/x 2> /out/err; echo $? > /out/rc",
            ],
            json!({"root": {"readonly": false}, "process": {"noNewPrivileges": nnp},
                   "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}),
        );
        let program = mkdir_program(false);
        let mut req = request(&b, &spec, &rootfs);
        req.seccomp = Some(&program);
        let l = launch(&req, &mut Recorder::default()).unwrap_or_else(|e| panic!("launch: {e:#}"));
        assert!(l.seccomp_listener.is_none());
        assert_eq!(Container::new(l).wait(), 0);
        assert_eq!(b.out("rc").trim(), "1", "noNewPrivileges {nnp}");
        assert!(
            b.out("err").contains("Operation not permitted"),
            "{}",
            b.out("err")
        );
    }
    // NOTIFY: the listener comes back from launch().
    let spec = b.spec(
        &["true"],
        json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}),
    );
    let program = mkdir_program(true);
    let mut req = request(&b, &spec, &rootfs);
    req.seccomp = Some(&program);
    let mut l = launch(&req, &mut Recorder::default()).unwrap_or_else(|e| panic!("launch: {e:#}"));
    let fd = l.seccomp_listener.take().expect("a listener");
    use std::os::fd::AsRawFd;
    let kind = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    assert_eq!(kind.to_string_lossy(), "anon_inode:seccomp notify");
    assert_eq!(Container::new(l).wait(), 0);
    assert_no_children();
}

fn a_failing_step_names_itself_and_the_child_is_reaped() {
    let b = Bundle::new();
    let spec = b.spec(
        &["true"],
        json!({"mounts": [{"destination": "/proc", "type": "nosuchfs", "source": "x"}]}),
    );
    let e = launch_error(&b, &spec);
    assert!(
        e.message.starts_with("mounts[0]: mount nosuchfs on /proc:"),
        "{}",
        e.message
    );
    assert_eq!(e.errno, libc::ENODEV, "{}", e.message);
    // A parent callback failing kills the child too.
    let spec = b.spec(&["true"], json!({}));
    let rootfs = b.rootfs();
    let mut rec = Recorder {
        fail_created: true,
        ..Default::default()
    };
    let err = launch(&request(&b, &spec, &rootfs), &mut rec).unwrap_err();
    assert!(format!("{err:#}").contains("the controllers refused"));
    assert_no_children();
}

fn a_symlinked_mount_destination_stays_inside_the_rootfs() {
    let b = Bundle::new();
    let host = tempfile::Builder::new()
        .prefix("launcher-host-")
        .tempdir_in("/tmp")
        .unwrap();
    let src = tempfile::Builder::new()
        .prefix("launcher-src-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(src.path().join("file"), "from the bind source\n").unwrap();
    // Absolute and relative symlinks that point at a host directory.
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("abs")).unwrap();
    std::os::unix::fs::symlink(
        format!("../../../../../..{}", host.path().display()),
        b.rootfs().join("tmp/rel"),
    )
    .unwrap();
    let (code, _) = run_script(
        &b,
        "cat /abs/sub/file > /out/abs; cat /tmp/rel/sub2/file > /out/rel; \
         (touch /abs/sub/new) 2> /out/robind; grep -E '^[0-9]+ [0-9]+ [0-9:]+ [^ ]+ / ' /proc/self/mountinfo > /out/rootmount",
        json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/abs/sub", "type": "bind", "source": src.path(), "options": ["bind", "ro"]},
            {"destination": "/tmp/rel/sub2", "type": "bind", "source": src.path(), "options": ["bind"]},
            {"destination": "/out", "type": "bind", "source": b.path().join("out"), "options": ["bind"]}
        ], "linux": {"rootfsPropagation": "shared"}}),
    );
    assert_eq!(code, 0);
    assert!(
        b.out("robind").contains("Read-only file system"),
        "a ro bind: {}",
        b.out("robind")
    );
    assert!(
        b.out("rootmount").contains(" shared:"),
        "rootfsPropagation: {}",
        b.out("rootmount")
    );
    assert!(!src.path().join("new").exists());
    assert_eq!(b.out("abs"), "from the bind source\n");
    assert_eq!(b.out("rel"), "from the bind source\n");
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "nothing was created on the host"
    );
    let inside = b.rootfs().join(host.path().strip_prefix("/").unwrap());
    assert!(
        inside.join("sub").is_dir() && inside.join("sub2").is_dir(),
        "created inside the rootfs instead"
    );
}

fn no_host_fd_reaches_the_container_beyond_preserved_ones() {
    let b = Bundle::new();
    // A host fd without close-on-exec, like one a caller could leak.
    let leak = std::fs::File::open("/etc/hostname").unwrap();
    nix::fcntl::fcntl(
        leak.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .unwrap();
    let (code, _) = run_script(&b, "ls /proc/self/fd > /out/fds", json!({}));
    assert_eq!(code, 0);
    // 0-2, and 3 is ls's own directory fd.
    assert_eq!(b.out("fds"), "0\n1\n2\n3\n");
    // A cwd through a leaked fd is refused (CVE-2024-21626).
    let spec = b.spec(
        &["true"],
        json!({"process": {"cwd": format!("/proc/self/fd/{}", leak.as_raw_fd())}}),
    );
    let e = launch_error(&b, &spec);
    assert!(e.message.starts_with("process.cwd:"), "{}", e.message);
}

fn preserved_fds_stay_open_with_listen_fds() {
    let b = Bundle::new();
    // Our fd 3 becomes the file the container writes to.
    assert!(
        nix::fcntl::fcntl(3, nix::fcntl::FcntlArg::F_GETFD).is_err(),
        "fd 3 is free in the test process"
    );
    let file = std::fs::File::create(b.path().join("out/preserved")).unwrap();
    // (The file itself may have got fd 3, the lowest free one.)
    let fd3 = (file.as_raw_fd() != 3).then(|| nix::unistd::dup2(file.as_raw_fd(), 3).unwrap());
    let spec = b.spec(&["sh", "-c", "echo $LISTEN_FDS $LISTEN_PID > /out/env; ls /proc/self/fd > /out/fds; echo via-fd3 >&3"], json!({}));
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.preserve_fds = 1;
    let mut rec = Recorder::default();
    let result = launch(&req, &mut rec);
    if let Some(fd) = fd3 {
        nix::unistd::close(fd).unwrap();
    }
    let mut c = Container::new(result.unwrap());
    assert_eq!(c.wait(), 0);
    assert_eq!(b.out("env"), "1 1\n");
    assert_eq!(
        b.out("fds"),
        "0\n1\n2\n3\n4\n",
        "fd 3 preserved, 4 is ls's own"
    );
    assert_eq!(b.out("preserved"), "via-fd3\n");
}

fn the_runtime_binary_cannot_be_reached_through_proc_self_exe() {
    let b = Bundle::new();
    let e = launch_error(&b, &b.spec(&["/proc/self/exe"], json!({})));
    assert!(
        e.message
            .contains("refusing to run the container runtime's own binary"),
        "{}",
        e.message
    );
    // The classic CVE-2019-5736 form: a script whose interpreter is /proc/self/exe.
    std::fs::write(b.rootfs().join("bin/evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(
        b.rootfs().join("bin/evil"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let e = launch_error(&b, &b.spec(&["evil"], json!({})));
    assert!(e.message.contains("refusing"), "{}", e.message);
    // And the setup process is not dumpable while it runs as ours.
}

fn user_namespace_with_mappings() {
    let b = Bundle::new();
    chown_tree(&b.rootfs(), 100000);
    let (code, _) = run_script(
        &b,
        "id -u > /out/uid; cat /proc/self/uid_map > /out/uid_map; cat /proc/self/gid_map > /out/gid_map; \
         ls -ln /bin/busybox > /out/owner; ls /dev/null > /out/null",
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }}),
    );
    assert_eq!(code, 0);
    assert_eq!(b.out("uid"), "0\n");
    let map: Vec<String> = b
        .out("uid_map")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(map, vec!["0", "100000", "65536"]);
    assert!(
        b.out("owner").contains(" 0 "),
        "rootfs owned by container root: {}",
        b.out("owner")
    );
    assert_eq!(b.out("null"), "/dev/null\n");
    let out = std::fs::metadata(b.path().join("out/uid")).unwrap();
    assert_eq!(
        out.uid(),
        100000,
        "files written by container root are host uid 100000"
    );
}

fn exec_into_a_user_namespace_container() {
    let b = Bundle::new();
    chown_tree(&b.rootfs(), 100000);
    let spec = b.spec(
        &["sleep", "30"],
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }}),
    );
    let rootfs = b.rootfs();
    let mut rec = Recorder::default();
    let first = Container::new(
        launch(&request(&b, &spec, &rootfs), &mut rec).unwrap_or_else(|e| panic!("{e:#}")),
    );
    let exec_spec = b.spec(
        &[
            "sh",
            "-c",
            "id -u > /out/exec_uid; cat /proc/self/uid_map > /out/exec_map",
        ],
        json!({}),
    );
    let mut req = request(&b, &spec, &rootfs);
    req.process = exec_spec.process().as_ref().unwrap();
    req.join = Some(first.pid);
    let mut rec = Recorder::default();
    let mut exec = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    assert_eq!(exec.wait(), 0);
    assert_eq!(b.out("exec_uid"), "0\n");
    let map: Vec<String> = b
        .out("exec_map")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(map, vec!["0", "100000", "65536"]);
    drop(first);
    assert_no_children();
}

fn configured_devices_and_tmpcopyup() {
    let b = Bundle::new();
    std::fs::create_dir_all(b.rootfs().join("etc/skel")).unwrap();
    std::fs::write(b.rootfs().join("etc/skel/profile"), "copied up\n").unwrap();
    let (code, _) = run_script(
        &b,
        "ls -ln /dev/fuse /opt/dev/mynull > /out/devs; stat -c %F /tmp/fifo > /out/fifo; \
         cat /etc/skel/profile > /out/skel; touch /etc/skel/new && echo writable >> /out/skel",
        json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
            {"destination": "/etc/skel", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]},
            {"destination": "/out", "type": "bind", "source": b.path().join("out"), "options": ["bind"]}
        ], "linux": {"devices": [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 432, "uid": 1000, "gid": 1000},
            {"path": "/opt/dev/mynull", "type": "c", "major": 1, "minor": 3},
            {"path": "/tmp/fifo", "type": "p"}
        ]}}),
    );
    assert_eq!(code, 0);
    let devs = b.out("devs");
    assert!(
        devs.lines().any(|l| l.starts_with("crw-rw----")
            && l.contains(" 1000 ")
            && l.contains("10, 229")
            && l.ends_with("/dev/fuse")),
        "{devs}"
    );
    assert!(
        devs.lines().any(|l| l.starts_with("crw-rw-rw-")
            && l.contains("1,   3")
            && l.ends_with("/opt/dev/mynull")),
        "{devs}"
    );
    assert_eq!(b.out("fifo"), "fifo\n");
    assert_eq!(b.out("skel"), "copied up\nwritable\n");
    // A file already there that is not the device asked for is an error.
    std::fs::write(b.rootfs().join("etc/notadev"), "").unwrap();
    let spec = b.spec(&["true"], json!({"linux": {"devices": [{"path": "/etc/notadev", "type": "c", "major": 1, "minor": 3}]}}));
    let e = launch_error(&b, &spec);
    assert!(
        e.message.starts_with("linux.devices: /etc/notadev:"),
        "{}",
        e.message
    );
}

fn chown_tree(path: &Path, id: u32) {
    std::os::unix::fs::lchown(path, Some(id), Some(id)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), id);
        }
    }
}

fn the_exec_fifo_blocks_until_start_reads_it() {
    let b = Bundle::new();
    let fifo = b.path().join("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    // As runc: writable by the container's user whatever the umask was.
    std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622)).unwrap();
    let spec = b.spec(
        &["sh", "-c", "echo started > /out/started"],
        json!({"process": {"user": {"uid": 1000, "gid": 1000}}}),
    );
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.exec_fifo = Some(&fifo);
    let mut rec = Recorder::default();
    let mut c = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !b.path().join("out/started").exists(),
        "the process ran before start"
    );
    // Waiting as uid 1000, it is still not dumpable: its /proc files belong
    // to root, so the container's user cannot open its exe link.
    let st = std::fs::metadata(format!("/proc/{}/exe", c.pid)).unwrap();
    // (/proc/PID itself always shows the euid; its other files show root
    // for a non-dumpable process.)
    let proc_dir = std::fs::metadata(format!("/proc/{}/fd", c.pid)).unwrap();
    assert!(st.ino() > 0);
    assert_eq!(proc_dir.uid(), 0, "non-dumpable while waiting");
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid)).unwrap();
    assert!(
        status_field(&status, "Uid").starts_with("1000"),
        "already the container's user"
    );
    let byte = std::fs::read(&fifo).unwrap(); // `start`
    assert_eq!(byte, b"0");
    assert_eq!(c.wait(), 0);
    assert_eq!(b.out("started"), "started\n");
}

fn exec_joins_a_running_containers_namespaces() {
    let b = Bundle::new();
    let spec = b.spec(&["sleep", "30"], json!({"hostname": "joined"}));
    let rootfs = b.rootfs();
    let mut rec = Recorder::default();
    let first = Container::new(launch(&request(&b, &spec, &rootfs), &mut rec).unwrap());
    let exec_spec = b.spec(
        &["sh", "-c", "hostname > /out/exec_hostname; cat /proc/1/cmdline > /out/exec_init; echo $$ > /out/exec_pid; \
          for n in mnt pid net ipc uts; do readlink /proc/self/ns/$n; done > /out/exec_ns"],
        json!({"process": {"cwd": "/tmp"}}),
    );
    let mut req = request(&b, &spec, &rootfs);
    req.process = exec_spec.process().as_ref().unwrap();
    req.join = Some(first.pid);
    let mut rec = Recorder::default();
    let mut exec = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    assert_eq!(
        rec.calls,
        vec!["created_process"],
        "no create_runtime for exec"
    );
    assert_eq!(exec.wait(), 0);
    let theirs: String = ["mnt", "pid", "net", "ipc", "uts"]
        .iter()
        .map(|ns| {
            format!(
                "{}\n",
                std::fs::read_link(format!("/proc/{}/ns/{ns}", first.pid))
                    .unwrap()
                    .display()
            )
        })
        .collect();
    assert_eq!(b.out("exec_ns"), theirs);
    assert_eq!(b.out("exec_hostname"), "joined\n");
    assert_eq!(b.out("exec_init").trim_end_matches('\0'), "sleep\u{0}30");
    assert_ne!(b.out("exec_pid"), "1\n");
    // Our own pid namespace is ours again.
    let ours = std::fs::read_link("/proc/thread-self/ns/pid_for_children").unwrap();
    assert_eq!(ours, std::fs::read_link("/proc/self/ns/pid").unwrap());
    drop(first);
    assert_no_children();
}

fn time_namespace_offsets_and_cgroup_namespace() {
    let b = Bundle::new();
    let (code, _) = run_script(
        &b,
        "cat /proc/uptime > /out/uptime; cat /proc/self/cgroup > /out/cgroup; grep cgroup /proc/self/mountinfo > /out/cgmounts",
        json!({"hostname": null, "linux": {
            "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "time"}, {"type": "cgroup"}],
            "timeOffsets": {"boottime": {"secs": 864000}}
        }}),
    );
    assert_eq!(code, 0);
    let uptime: f64 = b.out("uptime").split(' ').next().unwrap().parse().unwrap();
    assert!(uptime >= 864000.0, "boottime offset: {uptime}");
    assert!(
        b.out("cgroup").lines().all(|l| l.ends_with(":/")),
        "cgroup ns root: {}",
        b.out("cgroup")
    );
    let m = b.out("cgmounts");
    assert!(
        m.lines()
            .any(|l| l.contains(" /sys/fs/cgroup/memory ") && l.split(' ').nth(3) == Some("/")),
        "{m}"
    );
}

fn terminal_through_the_console_socket() {
    use std::os::unix::net::UnixListener;
    let b = Bundle::new();
    let sock = b.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let spec = b.spec(
        &["sh", "-c", "tty > /out/tty; stty size > /out/size; grep ' /dev/console ' /proc/self/mountinfo > /out/console; echo hello"],
        json!({"process": {"terminal": true, "consoleSize": {"height": 40, "width": 100}}}),
    );
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.console_socket = Some(&sock);
    let mut rec = Recorder::default();
    // No thread may run while launch() forks (the caller is single-threaded
    // by contract): the connection waits in the listen backlog, and the
    // master in the socket buffer, until we accept after launch().
    let mut c = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    let (conn, _) = listener.accept().unwrap();
    let (payload, master) = recv_fd(&conn);
    assert_eq!(payload, b"/dev/ptmx");
    let mut text = String::new();
    let mut f = std::fs::File::from(master);
    use std::io::Read;
    let mut buf = [0u8; 256];
    let until = Instant::now() + Duration::from_secs(5);
    while !text.contains("hello") && Instant::now() < until {
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(text.contains("hello"), "{text:?}");
    assert_eq!(c.wait(), 0);
    assert!(b.out("tty").starts_with("/dev/pts/"), "{}", b.out("tty"));
    assert_eq!(b.out("size"), "40 100\n");
    assert!(!b.out("console").is_empty(), "a pty bound on /dev/console");
}

/// One message with one fd (SCM_RIGHTS) from a Unix stream socket.
fn recv_fd(conn: &std::os::unix::net::UnixStream) -> (Vec<u8>, std::os::fd::OwnedFd) {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut buf = [0u8; 4096];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg(conn, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).unwrap();
    let mut fds = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    (buf[..msg.bytes].to_vec(), fds.pop().expect("an fd"))
}

fn no_pivot_and_hooks_inside() {
    let b = Bundle::new();
    let marker = b.path().join("out/create_container_hook");
    let (code, _) = run_script(
        &b,
        "readlink /proc/self/ns/uts > /out/uts",
        json!({
            "hooks": {
                "createContainer": [{"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}; echo >> {0}; readlink /proc/self/ns/uts >> {0}", marker.display())]}],
                "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "hostname > /out/start_hook"]}]
            }
        }),
    );
    assert_eq!(code, 0);
    let hook = std::fs::read_to_string(&marker).unwrap();
    assert!(
        hook.contains("\"status\":\"creating\""),
        "state on stdin: {hook}"
    );
    assert!(
        hook.ends_with(&b.out("uts")),
        "ran in the container's uts namespace: {hook}"
    );
    assert_ne!(
        b.out("uts").trim(),
        std::fs::read_link("/proc/self/ns/uts")
            .unwrap()
            .to_str()
            .unwrap()
    );
    // startContainer only runs with an exec fifo (after start); without one
    // (exec at once) there is no start phase.
    assert!(!b.path().join("out/start_hook").exists());
    // --no-pivot: MS_MOVE + chroot.
    let spec = b.spec(
        &[
            "sh",
            "-c",
            "ls / > /out/np_root; cat /proc/self/mountinfo > /out/np_mi",
        ],
        json!({}),
    );
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.no_pivot = true;
    let mut rec = Recorder::default();
    let mut c = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    assert_eq!(c.wait(), 0);
    assert!(b.out("np_root").contains("bin\n"), "{}", b.out("np_root"));
}

fn start_container_hooks_run_inside_after_start() {
    let b = Bundle::new();
    let fifo = b.path().join("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let spec = b.spec(
        &["sh", "-c", "echo main >> /out/order"],
        json!({"hooks": {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "hostname >> /out/order"]}]}}),
    );
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.exec_fifo = Some(&fifo);
    let mut rec = Recorder::default();
    let mut c = Container::new(launch(&req, &mut rec).unwrap_or_else(|e| panic!("{e:#}")));
    assert!(!b.path().join("out/order").exists());
    std::fs::read(&fifo).unwrap();
    assert_eq!(c.wait(), 0);
    assert_eq!(b.out("order"), "runc\nmain\n");
}

/// The tests, run in order on the main thread.
/// A cgroup directory this test made under its own cgroup; removed when
/// dropped (after the process in it is gone).
struct TestGroup(PathBuf);

impl Drop for TestGroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Our own cgroup in the hierarchy whose /proc/self/cgroup line matches
/// `controllers` ("memory", or "" for v2), under its mount point.
fn own_group_dir(controllers: &str, fstype: &str, option: &str) -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut p = l.splitn(3, ':');
        let (_, c, path) = (p.next()?, p.next()?, p.next()?);
        (c.split(',').any(|x| x == controllers) || (controllers.is_empty() && c.is_empty()))
            .then(|| path.to_string())
    })?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let mut post = post.split(' ');
        let (t, _, opts) = (post.next()?, post.next()?, post.next()?);
        (t == fstype && (option.is_empty() || opts.split(',').any(|o| o == option)))
            .then(|| pre.split(' ').nth(4).map(PathBuf::from))
            .flatten()
    })?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// The launcher's side of JoinFds, on this host's real hierarchies: the
/// process writes "0" to a v1 group's tasks file itself, and clone3's
/// CLONE_INTO_CGROUP puts it in a v2 group (the unified hierarchy has no
/// controllers here, but a group is a group).
fn the_process_joins_v1_and_v2_groups_by_itself() {
    use protocol::cgroup::CgroupJoin;
    let name = format!("launcher-join-{}", std::process::id());
    let mut groups = vec![];
    let mut joins: Vec<(CgroupJoin, std::os::fd::OwnedFd)> = vec![];
    if let Some(parent) = own_group_dir("memory", "cgroup", "memory") {
        let dir = parent.join(&name);
        std::fs::create_dir(&dir).unwrap();
        groups.push(TestGroup(dir.clone()));
        let tasks = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("tasks"))
            .unwrap();
        joins.push((
            CgroupJoin::V1Tasks {
                hierarchy: "memory".into(),
                path: dir.display().to_string(),
            },
            tasks.into(),
        ));
    }
    if let Some(parent) = own_group_dir("", "cgroup2", "") {
        let dir = parent.join(&name);
        std::fs::create_dir(&dir).unwrap();
        groups.push(TestGroup(dir.clone()));
        let fd = std::fs::File::open(&dir).unwrap();
        joins.push((
            CgroupJoin::V2Dir {
                path: dir.display().to_string(),
            },
            fd.into(),
        ));
    }
    assert!(!joins.is_empty(), "no memory v1 or cgroup2 hierarchy here");
    let b = Bundle::new();
    let spec = b.spec(&["sleep", "30"], json!({}));
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.cgroups = &joins;
    let launched = launch(&req, &mut Recorder::default()).unwrap_or_else(|e| panic!("{e:#}"));
    let c = Container::new(launched);
    for g in &groups {
        let procs = std::fs::read_to_string(g.0.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == c.pid.to_string()),
            "{} holds {procs:?}, not the container process {}",
            g.0.display(),
            c.pid
        );
    }
    drop(c); // killed and reaped, so the groups can go
    drop(groups);
}

/// A Parent for a late launch: hands over `res` when asked, and records
/// when it was asked.
struct LateParent {
    rec: Recorder,
    res: Option<asterism_init::launcher::LateResources>,
}

impl Parent for LateParent {
    fn created_process(&mut self, pid: i32) -> anyhow::Result<()> {
        self.rec.created_process(pid)
    }
    fn create_runtime(&mut self, pid: i32) -> anyhow::Result<()> {
        self.rec.create_runtime(pid)
    }
    fn resources(&mut self) -> anyhow::Result<asterism_init::launcher::LateResources> {
        self.rec.calls.push("resources".into());
        self.res
            .take()
            .ok_or_else(|| anyhow::anyhow!("asked twice for the resources"))
    }
}

/// A fresh network namespace, made on a thread of its own (as netstack's
/// pool makes them): its fd and its inode.
fn fresh_netns() -> (std::os::fd::OwnedFd, u64) {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let f = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
        let ino = f.metadata().unwrap().ino();
        (f.into(), ino)
    })
    .join()
    .unwrap()
}

/// A late launch (`ipc create` overlapping init's Prepare): the process is
/// cloned before its cgroup, network namespace and exec fifo exist, makes
/// its namespaces and first mounts, then receives them and joins them.
fn a_late_launch_joins_what_arrives_after_clone() {
    use protocol::cgroup::CgroupJoin;
    let Some(parent) = own_group_dir("memory", "cgroup", "memory") else {
        println!("(no v1 memory hierarchy here: a late launch is for v1 hosts)");
        return;
    };
    let name = format!("launcher-late-{}", std::process::id());
    let dir = parent.join(&name);
    std::fs::create_dir(&dir).unwrap();
    let group = TestGroup(dir.clone());
    let tasks = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("tasks"))
        .unwrap();
    let (netns, ino) = fresh_netns();
    let b = Bundle::new();
    let fifo = b.path().join("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let spec = b.spec(
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup > /out/cgroup; readlink /proc/self/ns/net > /out/net; ls /sys/class/net > /out/ifaces; \
             cat /proc/self/mountinfo > /out/mountinfo; cat /proc/keys > /out/keys; \
             (echo 1 > /proc/sys/vm/overcommit_memory) 2>/dev/null; echo $? > /out/procsys",
        ],
        json!({}),
    );
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.late = true;
    let mut p = LateParent {
        rec: Recorder::default(),
        res: Some(asterism_init::launcher::LateResources {
            rootfs: rootfs.display().to_string(),
            cgroups: vec![(
                CgroupJoin::V1Tasks {
                    hierarchy: "memory".into(),
                    path: dir.display().to_string(),
                },
                tasks.into(),
            )],
            netns: Some(netns),
            seccomp: None,
            exec_fifo: fifo.clone(),
        }),
    };
    let mut c = Container::new(launch(&req, &mut p).unwrap_or_else(|e| panic!("{e:#}")));
    assert_eq!(
        p.rec.calls,
        ["resources", "created_process"],
        "the resources are taken before the process is reported created"
    );
    // It waits on the fifo that came late, in its group already.
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|l| l == c.pid.to_string()), "{procs:?}");
    assert!(!b.path().join("out/net").exists(), "ran before start");
    assert_eq!(std::fs::read(&fifo).unwrap(), b"0");
    assert_eq!(c.wait(), 0);
    assert_eq!(b.out("net").trim(), format!("net:[{ino}]"));
    assert_eq!(
        b.out("ifaces").trim(),
        "lo",
        "sysfs shows the namespace that came late"
    );
    assert!(
        b.out("cgroup")
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&format!("/{name}"))),
        "{}",
        b.out("cgroup")
    );
    // /proc was masked while the process waited for its resources, /sys
    // after pivot_root: the container sees both, as in any launch.
    let mi = b.out("mountinfo");
    let find = |dest: &str| mount_line(&mi, dest);
    assert!(
        mount_options(&find("/proc/sys")).starts_with("ro"),
        "readonlyPaths"
    );
    assert_eq!(
        find("/proc/keys").split(' ').nth(3),
        Some("/null"),
        "maskedPaths file"
    );
    assert!(find("/proc/acpi").contains(" - tmpfs "), "maskedPaths dir");
    assert!(
        find("/sys/firmware").contains(" - tmpfs "),
        "maskedPaths under /sys"
    );
    assert_eq!(b.out("keys"), "", "/proc/keys reads as /dev/null");
    assert_eq!(b.out("procsys").trim(), "1", "/proc/sys is read-only");
    drop(group);
}

/// A late launch whose init resolved another rootfs than the one the
/// process started with is refused, and the process is reaped.
fn a_late_launch_refuses_a_rootfs_that_changed() {
    let b = Bundle::new();
    let fifo = b.path().join("exec.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)).unwrap();
    let spec = b.spec(&["true"], json!({}));
    let rootfs = b.rootfs();
    let mut req = request(&b, &spec, &rootfs);
    req.late = true;
    let (netns, _) = fresh_netns();
    let mut p = LateParent {
        rec: Recorder::default(),
        res: Some(asterism_init::launcher::LateResources {
            rootfs: "/somewhere/else".into(),
            cgroups: vec![],
            netns: Some(netns),
            seccomp: None,
            exec_fifo: fifo,
        }),
    };
    let e = launch(&req, &mut p).unwrap_err();
    assert!(format!("{e:#}").contains("rootfs changed"), "{e:#}");
    assert_no_children();
}

const TESTS: &[(&str, fn())] = &[
    (
        "a_late_launch_joins_what_arrives_after_clone",
        a_late_launch_joins_what_arrives_after_clone,
    ),
    (
        "a_late_launch_refuses_a_rootfs_that_changed",
        a_late_launch_refuses_a_rootfs_that_changed,
    ),
    (
        "the_process_joins_v1_and_v2_groups_by_itself",
        the_process_joins_v1_and_v2_groups_by_itself,
    ),
    (
        "a_seccomp_program_is_installed_last_with_its_listener",
        a_seccomp_program_is_installed_last_with_its_listener,
    ),
    (
        "minimal_container_runs_in_its_namespaces",
        minimal_container_runs_in_its_namespaces,
    ),
    (
        "runtime_hooks_are_waited_for_after_the_mounts",
        runtime_hooks_are_waited_for_after_the_mounts,
    ),
    (
        "user_groups_capabilities_umask_cwd_env",
        user_groups_capabilities_umask_cwd_env,
    ),
    (
        "mounts_devices_masked_and_readonly_paths",
        mounts_devices_masked_and_readonly_paths,
    ),
    (
        "rlimits_oom_score_sysctl_domainname",
        rlimits_oom_score_sysctl_domainname,
    ),
    (
        "command_not_found_is_runcs_error_and_leaves_nothing",
        command_not_found_is_runcs_error_and_leaves_nothing,
    ),
    (
        "a_failing_step_names_itself_and_the_child_is_reaped",
        a_failing_step_names_itself_and_the_child_is_reaped,
    ),
    (
        "a_symlinked_mount_destination_stays_inside_the_rootfs",
        a_symlinked_mount_destination_stays_inside_the_rootfs,
    ),
    (
        "no_host_fd_reaches_the_container_beyond_preserved_ones",
        no_host_fd_reaches_the_container_beyond_preserved_ones,
    ),
    (
        "preserved_fds_stay_open_with_listen_fds",
        preserved_fds_stay_open_with_listen_fds,
    ),
    (
        "the_runtime_binary_cannot_be_reached_through_proc_self_exe",
        the_runtime_binary_cannot_be_reached_through_proc_self_exe,
    ),
    ("user_namespace_with_mappings", user_namespace_with_mappings),
    (
        "exec_into_a_user_namespace_container",
        exec_into_a_user_namespace_container,
    ),
    (
        "configured_devices_and_tmpcopyup",
        configured_devices_and_tmpcopyup,
    ),
    (
        "the_exec_fifo_blocks_until_start_reads_it",
        the_exec_fifo_blocks_until_start_reads_it,
    ),
    (
        "exec_joins_a_running_containers_namespaces",
        exec_joins_a_running_containers_namespaces,
    ),
    (
        "time_namespace_offsets_and_cgroup_namespace",
        time_namespace_offsets_and_cgroup_namespace,
    ),
    (
        "terminal_through_the_console_socket",
        terminal_through_the_console_socket,
    ),
    ("no_pivot_and_hooks_inside", no_pivot_and_hooks_inside),
    (
        "start_container_hooks_run_inside_after_start",
        start_container_hooks_run_inside_after_start,
    ),
];

/// libtest's command line, the parts that matter here: name filters,
/// --exact, --skip NAME, --list; other flags are accepted and ignored.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let (mut exact, mut list) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--exact" => exact = true,
            "--list" => list = true,
            "--skip" => skips.extend(it.next().cloned()),
            "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                it.next();
            }
            f if f.starts_with('-') => {}
            f => filters.push(f.to_string()),
        }
    }
    let selected: Vec<&(&str, fn())> = TESTS
        .iter()
        .filter(|(n, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        n == f
                    } else {
                        n.contains(f.as_str())
                    }
                })
        })
        .filter(|(n, _)| !skips.iter().any(|s| n.contains(s.as_str())))
        .collect();
    if list {
        for (n, _) in &selected {
            println!("{n}: test");
        }
        return;
    }
    let started = Instant::now();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, test) in &selected {
        print!("test {name} ... ");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        match std::panic::catch_unwind(test) {
            Ok(()) => println!("ok"),
            Err(_) => {
                println!("FAILED");
                failed.push(*name);
            }
        }
    }
    if !failed.is_empty() {
        println!("\nfailures:");
        for n in &failed {
            println!("    {n}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; {} filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        selected.len() - failed.len(),
        failed.len(),
        TESTS.len() - selected.len(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        std::process::exit(101);
    }
}
