//! linux.seccomp end to end through `ipc` with busybox containers: the
//! profile compiled by seccomp-monitor, installed by the launcher last
//! before exec, its actions observed for real, and the notify agent,
//! including a SIGKILL of seccomp-monitor while a container waits in a
//! notified syscall.

use asterism_tests::{alive, kill, wait_for, Bundle, Constellation};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn b(bundle: &Bundle) -> &str {
    bundle.path().to_str().unwrap()
}

/// A profile that allows everything but `rules`.
fn allow_but(rules: Value) -> Value {
    json!({"root": {"readonly": false}, "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}}})
}

/// `ipc run` of a busybox container; returns (exit code, stdout+stderr).
fn run(c: &Constellation, id: &str, script: &str, patch: Value) -> (i32, String) {
    let bundle = Bundle::busybox_with(&["sh", "-c", script], patch);
    run_bundle(c, id, &bundle)
}

fn run_bundle(c: &Constellation, id: &str, bundle: &Bundle) -> (i32, String) {
    let out = c.ipc(&["run", "--bundle", b(bundle), id]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn applet(bundle: &Bundle, name: &str) {
    let _ = std::os::unix::fs::symlink("busybox", bundle.rootfs().join("bin").join(name));
}

#[test]
fn a_profile_denying_mkdir_fails_it_with_eperm_and_the_rest_works() {
    let c = Constellation::start();
    let rules = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    let (code, out) = run(
        &c,
        "sc-eperm",
        "mkdir /tmp/x; echo rc=$?; echo hello > /tmp/f && cat /tmp/f",
        allow_but(rules),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(out.contains("hello"), "{out}");
    // Without the profile the same script makes the directory.
    let (code, out) = run(
        &c,
        "sc-none",
        "mkdir /tmp/x; echo rc=$?",
        json!({"root": {"readonly": false}}),
    );
    assert_eq!((code, out.trim()), (0, "rc=0"));
}

/// moby's default profile (an allowlist, defaultAction ERRNO), in its OCI
/// form, as the compiler ships it.
fn moby_default_profile() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../servers/seccomp-monitor/src/compiler/moby_default.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn containers_run_under_mobys_default_profile_with_and_without_no_new_privileges() {
    let c = Constellation::start();
    for (i, nnp) in [true, false].into_iter().enumerate() {
        let patch = json!({
            "root": {"readonly": false},
            "process": {"noNewPrivileges": nnp, "user": {"uid": 1000, "gid": 1000}},
            "linux": {"seccomp": moby_default_profile()}
        });
        let bundle = Bundle::busybox_with(
            &[
                "sh",
                "-c",
                "echo hi > /tmp/f && cat /tmp/f && mkdir /tmp/d && ls -d /tmp/d && id -u",
            ],
            patch,
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            bundle.rootfs().join("tmp"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .unwrap();
        let (code, out) = run_bundle(&c, &format!("sc-moby{i}"), &bundle);
        assert_eq!(code, 0, "noNewPrivileges {nnp}: {out}");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            ["hi", "/tmp/d", "1000"],
            "{out}"
        );
    }
}

#[test]
fn an_argument_rule_lets_one_personality_through() {
    let c = Constellation::start();
    // personality(PER_LINUX32 = 8) fails; personality(PER_LINUX = 0) runs.
    let rules = json!([{
        "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
        "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]
    }]);
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "linux64 true; echo a=$?; linux32 true; echo b=$?",
        ],
        allow_but(rules),
    );
    applet(&bundle, "linux32");
    applet(&bundle, "linux64");
    let (code, out) = run_bundle(&c, "sc-args", &bundle);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a=0"), "{out}");
    assert!(out.contains("b=1"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn kill_trap_errno_and_log_are_observed_for_real() {
    let c = Constellation::start();
    let rule = |action: &str| allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": action}]));
    // KILL (thread) and KILL_PROCESS: the mkdir process dies of SIGSYS (31).
    for (i, action) in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
    ]
    .iter()
    .enumerate()
    {
        let (code, out) = run(
            &c,
            &format!("sc-kill{i}"),
            "/bin/mkdir /tmp/k; echo rc=$?",
            rule(action),
        );
        assert_eq!(code, 0, "{action}: {out}");
        assert!(
            out.contains("rc=159"),
            "{action}: 128+SIGSYS expected: {out}"
        );
    }
    // TRAP: SIGSYS is delivered; a process that catches it goes on (the
    // syscall fails), one that does not dies of it.
    let (code, out) = run(
        &c,
        "sc-trap",
        "/bin/mkdir /tmp/t; echo rc=$?",
        rule("SCMP_ACT_TRAP"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("rc=159"), "TRAP: SIGSYS expected: {out}");
    // ERRNO without errnoRet: EPERM (runc's default errno).
    let (code, out) = run(
        &c,
        "sc-errno",
        "mkdir /tmp/e; echo rc=$?",
        rule("SCMP_ACT_ERRNO"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Operation not permitted") && out.contains("rc=1"),
        "{out}"
    );
    // LOG: the syscall runs and the kernel logs it: an audit record (type
    // 1326) with SECCOMP_RET_LOG's code 0x7ffc0000, newer than any record
    // before the run. (Audit serials, not a count: the kernel's log is a
    // ring, and on a busy machine an old record can fall out of it as the
    // new one comes in.)
    let audit_serial = |l: &str| -> Option<u64> {
        let rest = &l[l.find("audit(")? + "audit(".len()..];
        rest[rest.find(':')? + 1..rest.find(')')?].parse().ok()
    };
    let newest_logged_mkdir = || {
        let d = std::process::Command::new("dmesg").output().unwrap();
        String::from_utf8_lossy(&d.stdout)
            .lines()
            .filter(|l| {
                l.contains("type=1326") && l.contains("syscall=83") && l.contains("code=0x7ffc0000")
            })
            .filter_map(audit_serial)
            .max()
    };
    let newest_before = {
        let d = std::process::Command::new("dmesg").output().unwrap();
        String::from_utf8_lossy(&d.stdout)
            .lines()
            .filter_map(audit_serial)
            .max()
    };
    let (code, out) = run(
        &c,
        "sc-log",
        "mkdir /tmp/logged && echo made",
        rule("SCMP_ACT_LOG"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("made"), "{out}");
    let logged = wait_for(Duration::from_secs(3), || {
        (newest_logged_mkdir() > newest_before).then_some(())
    });
    assert!(
        logged.is_some(),
        "no new audit record of the logged mkdir in dmesg"
    );
}

#[test]
fn the_filter_is_inherited_by_children_and_by_exec() {
    let c = Constellation::start();
    let rules =
        json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]);
    // A grandchild of the container process: sh -> sh -> mkdir.
    let (code, out) = run(
        &c,
        "sc-inherit",
        "sh -c 'sh -c \"/bin/mkdir /tmp/g; echo rc=\\$?\"'",
        allow_but(rules.clone()),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Permission denied") && out.contains("rc=1"),
        "{out}"
    );
    // A process added with `ipc exec` gets the container's filter too.
    let bundle = Bundle::busybox_with(&["sleep", "300"], allow_but(rules));
    c.ipc_ok(&["run", "--detach", "--bundle", b(&bundle), "sc-exec"]);
    let out = c.ipc(&["exec", "sc-exec", "sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    c.ipc_ok(&["delete", "--force", "sc-exec"]);
    assert!(
        text.contains("Permission denied") && text.contains("rc=1"),
        "{text}"
    );
}

/// Copies `bin` into the rootfs with the shared libraries it needs.
fn copy_with_libs(bin: &Path, rootfs: &Path) -> String {
    let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
    for word in String::from_utf8_lossy(&ldd.stdout).split_whitespace() {
        if word.starts_with('/') {
            let to = rootfs.join(word.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(word, &to).unwrap();
        }
    }
    let name = bin.file_name().unwrap().to_str().unwrap();
    std::fs::copy(bin, rootfs.join("bin").join(name)).unwrap();
    format!("/bin/{name}")
}

#[test]
fn trap_kill_thread_and_kill_process_differ_as_the_kernel_says() {
    let c = Constellation::start();
    let probe = |id: &str, action: &str| {
        let patch = allow_but(json!([{"names": ["mkdir", "mkdirat"], "action": action}]));
        let bundle = Bundle::busybox_with(&["true"], patch);
        let helper = copy_with_libs(
            &asterism_tests::bin("asterism-test-seccomp"),
            &bundle.rootfs(),
        );
        let mut config = bundle.config();
        config["process"]["args"] = json!(["sh", "-c", format!("{helper} probe; echo rc=$?")]);
        bundle.write_config(&config);
        let (code, out) = run_bundle(&c, id, &bundle);
        assert_eq!(code, 0, "{action}: {out}");
        out
    };
    // TRAP: SIGSYS reaches the handler; the process goes on.
    let out = probe("sc-p-trap", "SCMP_ACT_TRAP");
    assert!(
        out.contains("caught SIGSYS") && out.contains("main alive") && out.contains("rc=0"),
        "{out}"
    );
    // KILL_THREAD: only the calling thread dies.
    let out = probe("sc-p-kthread", "SCMP_ACT_KILL_THREAD");
    assert!(
        !out.contains("caught") && out.contains("main alive") && out.contains("rc=0"),
        "{out}"
    );
    // KILL_PROCESS: the whole process dies of SIGSYS (128 + 31).
    let out = probe("sc-p-kproc", "SCMP_ACT_KILL_PROCESS");
    assert!(
        !out.contains("main alive") && out.contains("rc=159"),
        "{out}"
    );
}

#[test]
fn a_filter_the_container_installs_itself_stacks_with_ours() {
    if !cfg!(target_arch = "x86_64") {
        return; // the helper's own filter is written for x86_64
    }
    let c = Constellation::start();
    // Ours: mkdir fails with EPERM. The container's own: rmdir with EACCES.
    let rules = json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]);
    let mut patch = allow_but(rules);
    patch["process"] = json!({"noNewPrivileges": true});
    let bundle = Bundle::busybox_with(&["true"], patch);
    std::fs::create_dir_all(bundle.rootfs().join("tmp/d")).unwrap();
    applet(&bundle, "rmdir");
    let helper = copy_with_libs(
        &asterism_tests::bin("asterism-test-seccomp"),
        &bundle.rootfs(),
    );
    let mut config = bundle.config();
    config["process"]["args"] = json!([
        helper,
        "stack",
        "/bin/sh",
        "-c",
        "mkdir /tmp/x; echo m=$?; rmdir /tmp/d; echo r=$?; echo ok > /tmp/f && cat /tmp/f"
    ]);
    bundle.write_config(&config);
    let (code, out) = run_bundle(&c, "sc-stack", &bundle);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("m=1") && out.contains("Operation not permitted"),
        "{out}"
    );
    assert!(
        out.contains("r=1") && out.contains("Permission denied"),
        "{out}"
    );
    assert!(out.contains("ok"), "{out}");
    assert!(bundle.rootfs().join("tmp/d").is_dir());
}

fn notify_profile(policy: &str) -> Value {
    json!({
        "root": {"readonly": false},
        "annotations": {"org.asterism.seccomp.policy": policy},
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}
        ]}}
    })
}

fn stats(c: &Constellation, id: &str) -> Value {
    let v = c.ipc_json(&["seccomp-monitor", "stats", "--json", id]);
    v["containers"][0].clone()
}

#[test]
fn the_notify_agent_continues_or_fails_by_policy_and_counts() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sh", "-c", "mkdir /tmp/n; echo rc=$?"],
        notify_profile("continue"),
    );
    let (code, out) = run_bundle(&c, "sc-cont", &bundle);
    assert_eq!((code, out.trim()), (0, "rc=0"), "{out}");
    assert!(bundle.rootfs().join("tmp/n").is_dir());
    let (code, out) = run(
        &c,
        "sc-fail",
        "mkdir /tmp/n; echo rc=$?",
        notify_profile("errno:EACCES"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Permission denied") && out.contains("rc=1"),
        "{out}"
    );
    // `run` deleted both containers: their counters are gone.
    let all = c.ipc_json(&["seccomp-monitor", "stats", "--json"]);
    assert_eq!(all["containers"], json!([]), "{all}");
}

#[test]
fn allow_args_lets_listed_values_through_and_events_show_each_decision() {
    use std::io::{BufRead, BufReader};
    let c = Constellation::start();
    let mut events = c
        .ipc_cmd()
        .args(["seccomp-monitor", "events", "sc-allow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = events.stderr.take().unwrap();
    let stdout = events.stdout.take().unwrap();
    let _guard = KillOnDrop(events);
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    assert!(line.contains("watching"), "{line}");
    // personality(0) runs, personality(8) fails with EPERM.
    let mut patch = notify_profile("allow-args:0:0:EPERM");
    patch["linux"]["seccomp"]["syscalls"][0]["names"] = json!(["personality"]);
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "linux64 true; echo a=$?; linux32 true; echo b=$?",
        ],
        patch,
    );
    applet(&bundle, "linux32");
    applet(&bundle, "linux64");
    let (code, out) = run_bundle(&c, "sc-allow", &bundle);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a=0") && out.contains("b=1"), "{out}");
    let mut lines = BufReader::new(stdout).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["syscall"], "personality", "{first}");
    assert_eq!(first["id"], "sc-allow", "{first}");
    assert_eq!(first["args"][0], 0, "{first}");
    assert_eq!(first["decision"], "continue", "{first}");
    assert_eq!(second["args"][0], 8, "{second}");
    assert_eq!(second["decision"], "errno 1", "{second}");
}

/// seccomp-monitor's pid from its pid file ("PID EPOCH RESTARTS").
fn monitor_pid(root: &Path) -> i32 {
    let t = std::fs::read_to_string(root.join("servers/seccomp-monitor/pid")).unwrap();
    t.split_whitespace().next().unwrap().parse().unwrap()
}

fn pending_dir(root: &Path, id: &str) -> PathBuf {
    root.join("servers/seccomp-monitor/pending").join(id)
}

/// Deletes the container even when the test fails, without borrowing the
/// constellation (the test restarts its init).
struct DeleteAt(PathBuf, &'static str);
impl Drop for DeleteAt {
    fn drop(&mut self) {
        let _ = std::process::Command::new(asterism_tests::bin("ipc"))
            .arg("--root")
            .arg(&self.0)
            .args(["delete", "--force", self.1])
            .output();
    }
}

/// The line the container's shell writes to /tmp/result. The shell
/// creates the file before it writes it: wait for the whole line.
fn result_line(bundle: &Bundle, within: Duration) -> Option<String> {
    wait_for(within, || {
        std::fs::read_to_string(bundle.rootfs().join("tmp/result"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    })
}

/// Deletes the container even when the test fails.
struct Deleter<'a>(&'a Constellation, &'a str);
impl Drop for Deleter<'_> {
    fn drop(&mut self) {
        let _ = self.0.ipc(&["delete", "--force", self.1]);
    }
}

#[test]
fn sigkill_of_seccomp_monitor_mid_notification_completes_the_syscall_after_restart() {
    let id = "sc-survive";
    // The agent of this container holds each notification for 3 s between
    // journaling and answering: the window in which we kill it.
    std::env::set_var("ASTERISM_SECCOMP_HOLD", format!("{id}:3000"));
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "mkdir /tmp/k; echo rc=$? > /tmp/result; sleep 300",
        ],
        notify_profile("continue"),
    );
    c.ipc_ok(&["create", "--bundle", b(&bundle), id]);
    let _d = Deleter(&c, id);
    let pid: i32 = c.ipc_json(&["state", id])["pid"].as_i64().unwrap() as i32;
    c.ipc_ok(&["start", id]);
    let journaled = wait_for(Duration::from_secs(5), || {
        std::fs::read_dir(pending_dir(c.root(), id))
            .ok()?
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "json"))
            .then_some(())
    });
    assert!(journaled.is_some(), "the notification was never journaled");
    let old = monitor_pid(c.root());
    kill(old, libc::SIGKILL);
    // Blocked in mkdir, not answered yet.
    assert!(!bundle.rootfs().join("tmp/result").exists());
    let result = result_line(&bundle, Duration::from_secs(15));
    assert_eq!(result.as_deref().map(str::trim), Some("rc=0"));
    assert!(bundle.rootfs().join("tmp/k").is_dir());
    assert_ne!(monitor_pid(c.root()), old, "seccomp-monitor was restarted");
    assert!(alive(pid), "the container was not killed");
    // Answered once, by the restarted agent; the journal is empty.
    let s = stats(&c, id);
    assert_eq!(
        (s["notified"].as_u64(), s["continued"].as_u64()),
        (Some(1), Some(1)),
        "{s}"
    );
    assert_eq!(
        std::fs::read_dir(pending_dir(c.root(), id))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(c.ipc_json(&["state", id])["status"], "running");
}

#[test]
fn after_init_and_then_seccomp_monitor_restart_the_agent_still_answers() {
    let id = "sc-both";
    let mut c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; mkdir /tmp/k; echo rc=$? > /tmp/result; sleep 300",
        ],
        notify_profile("continue"),
    );
    c.ipc_ok(&["run", "--detach", "--bundle", b(&bundle), id]);
    let _d = DeleteAt(c.root().to_path_buf(), id);
    // init dies (its fd store with it) and comes back; then seccomp-monitor
    // dies: the new init must still hold the listener to hand it back.
    c.kill_init();
    c.start_init();
    let old = monitor_pid(c.root());
    kill(old, libc::SIGKILL);
    let restarted = wait_for(Duration::from_secs(10), || {
        let p = std::fs::read_to_string(c.root().join("servers/seccomp-monitor/pid")).ok()?;
        let pid: i32 = p.split_whitespace().next()?.parse().ok()?;
        (pid != old && alive(pid)).then_some(())
    });
    assert!(restarted.is_some(), "seccomp-monitor was not restarted");
    // Watched again: the listener file of the new server names it.
    let watched = wait_for(Duration::from_secs(10), || {
        c.root()
            .join("servers/seccomp-monitor/listeners")
            .join(format!("{id}.json"))
            .exists()
            .then_some(())
    });
    assert!(
        watched.is_some(),
        "the restarted seccomp-monitor never got the listener"
    );
    std::fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    let result = result_line(&bundle, Duration::from_secs(10));
    // Without a listener the kernel fails the syscall with ENOSYS (rc=1).
    assert_eq!(result.as_deref().map(str::trim), Some("rc=0"));
    assert_eq!(stats(&c, id)["continued"], 1);
}

#[test]
fn a_listener_path_gets_the_container_process_state_and_the_fd() {
    use std::os::unix::net::UnixListener;
    let c = Constellation::start();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || receive_state(&listener));
    let mut patch = notify_profile("continue");
    patch["linux"]["seccomp"]["listenerPath"] = json!(sock.to_str().unwrap());
    patch["linux"]["seccomp"]["listenerMetadata"] = json!("hello-agent");
    let bundle = Bundle::busybox_with(&["sleep", "300"], patch);
    c.ipc_ok(&["create", "--bundle", b(&bundle), "sc-path"]);
    let _d = Deleter(&c, "sc-path");
    let (state, fd_kind) = got.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "hello-agent", "{state}");
    assert_eq!(state["state"]["id"], "sc-path", "{state}");
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    assert_eq!(fd_kind, "anon_inode:seccomp notify");
}

/// Accepts one connection; returns the JSON and what the fd that came with it is.
fn receive_state(listener: &std::os::unix::net::UnixListener) -> (Value, String) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let (mut conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, fd) = {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd came along");
        (msg.bytes, fd)
    };
    let mut text = buf[..n].to_vec();
    conn.read_to_end(&mut text).unwrap();
    let kind = std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let _ = nix::unistd::close(fd);
    (serde_json::from_slice(&text).unwrap(), kind)
}

#[test]
fn bad_seccomp_input_is_refused_clearly_and_leaves_nothing() {
    let c = Constellation::start();
    let nothing_left = |id: &str| {
        assert!(
            !c.root().join("containers").join(id).exists(),
            "{id} left a record"
        );
        let list = c.ipc_ok(&["list", "--format", "json"]);
        assert!(!list.contains(id), "{id} is listed: {list}");
    };
    // A listenerPath that does not exist.
    let mut patch = notify_profile("continue");
    patch["linux"]["seccomp"]["listenerPath"] = json!("/nonexistent/agent.sock");
    let (code, out) = run(&c, "sc-bad1", "true", patch);
    assert_ne!(code, 0);
    assert!(
        out.contains("linux.seccomp.listenerPath") && out.contains("/nonexistent/agent.sock"),
        "{out}"
    );
    nothing_left("sc-bad1");
    // A listenerPath that refuses: a socket nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let mut patch = notify_profile("continue");
    patch["linux"]["seccomp"]["listenerPath"] = json!(sock.to_str().unwrap());
    let bundle = Bundle::busybox_with(&["sleep", "300"], patch);
    let err = c.ipc_err(&["create", "--bundle", b(&bundle), "sc-bad2"]);
    assert!(
        err.contains("linux.seccomp.listenerPath") && err.contains("refused"),
        "{err}"
    );
    nothing_left("sc-bad2");
    // A bad policy.
    let (code, out) = run(&c, "sc-bad3", "true", notify_profile("errno:EWHAT"));
    assert_ne!(code, 0);
    assert!(
        out.contains("org.asterism.seccomp.policy") && out.contains("EWHAT"),
        "{out}"
    );
    nothing_left("sc-bad3");
    // An unknown action: the compiler names the rule.
    let (code, out) = run(
        &c,
        "sc-bad4",
        "true",
        allow_but(json!([{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}])),
    );
    assert_ne!(code, 0);
    assert!(out.contains("SCMP_ACT_EXPLODE"), "{out}");
    nothing_left("sc-bad4");
}

#[test]
fn compile_prints_the_instruction_count_and_the_program() {
    let c = Constellation::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profile.json");
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
    ]});
    std::fs::write(&file, profile.to_string()).unwrap();
    let f = file.to_str().unwrap();
    let out = c.ipc_ok(&["seccomp-monitor", "compile", f]);
    assert!(out.contains("instructions"), "{out}");
    assert!(!out.contains("(cached)"), "{out}");
    let again = c.ipc_ok(&["seccomp-monitor", "compile", "--dump", f]);
    assert!(again.contains("(cached)"), "{again}");
    let n: usize = again
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 3 && again.lines().count() > n, "{again}");
    // A config.json works too; a file that is neither is refused.
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({"ociVersion": "1.0.2", "linux": {"seccomp": profile}}).to_string(),
    )
    .unwrap();
    c.ipc_ok(&["seccomp-monitor", "compile", config.to_str().unwrap()]);
    std::fs::write(&config, "{}").unwrap();
    let err = c.ipc_err(&["seccomp-monitor", "compile", config.to_str().unwrap()]);
    assert!(err.contains("defaultAction"), "{err}");
}
