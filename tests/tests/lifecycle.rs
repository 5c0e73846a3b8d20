//! The OCI lifecycle end to end through `ipc`, with busybox bundles, read
//! back from inside the container and from the host.

use asterism_tests::{alive, kill, wait_for, Bundle, Constellation};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn state(c: &Constellation, id: &str) -> serde_json::Value {
    c.ipc_json(&["state", id])
}

/// A bundle path as &str.
fn b(bundle: &Bundle) -> &str {
    bundle.path().to_str().unwrap()
}

#[test]
fn run_in_the_foreground_returns_the_exit_code_and_cleans_up() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sh", "-c", "echo hello from $(hostname); exit 3"],
        json!({"hostname": "box1"}),
    );
    let out = c.ipc(&["run", "--bundle", b(&bundle), "fg1"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from box1"
    );
    let list = c.ipc_ok(&["list", "--format", "json"]);
    assert!(!list.contains("fg1"), "run without --keep deletes: {list}");
    assert!(c
        .cgroup_base("memory")
        .is_none_or(|b| !b.join("fg1").exists()));
}

#[test]
fn a_container_killed_by_a_signal_exits_128_plus_the_signal() {
    let c = Constellation::start();
    // pid 1 of a pid namespace ignores SIGKILL from inside it, so the
    // signal comes from outside, as an engine sends it.
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({}));
    let out = tempfile::tempfile().unwrap();
    let mut run = c
        .ipc_cmd()
        .args(["run", "--bundle", b(&bundle), "sig1"])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let running = wait_for(Duration::from_secs(10), || {
        let o = c.ipc(&["state", "sig1"]);
        (o.status.success() && String::from_utf8_lossy(&o.stdout).contains("running")).then_some(())
    });
    assert!(running.is_some(), "container did not start");
    c.ipc_ok(&["kill", "sig1", "KILL"]);
    let status = wait_for(Duration::from_secs(10), || run.try_wait().ok().flatten())
        .expect("ipc run returns");
    assert_eq!(status.code(), Some(137));
}

#[test]
fn create_start_state_kill_delete() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"annotations": {"org.test": "yes"}}),
    );
    let pidfile = bundle.path().join("pid");
    c.ipc_ok(&[
        "create",
        "--bundle",
        b(&bundle),
        "--pid-file",
        pidfile.to_str().unwrap(),
        "life1",
    ]);
    let st = state(&c, "life1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], "life1");
    assert_eq!(st["bundle"], b(&bundle));
    assert_eq!(st["annotations"]["org.test"], "yes");
    let pid = st["pid"].as_i64().unwrap() as i32;
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    assert!(alive(pid));
    // Created: the user process has not run yet (still the launcher, waiting).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    c.ipc_ok(&["start", "life1"]);
    assert_eq!(state(&c, "life1")["status"], "running");
    let comm = wait_for(Duration::from_secs(5), || {
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (c.trim() == "sleep").then_some(c)
    });
    assert!(comm.is_some(), "the user process runs after start");
    let err = c.ipc_err(&["start", "life1"]);
    assert!(
        err.contains("cannot start an already running container"),
        "{err}"
    );
    let err = c.ipc_err(&["delete", "life1"]);
    assert!(err.contains("not stopped: running"), "{err}");

    let list: serde_json::Value = c.ipc_json(&["list", "--format", "json"]);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["id"] == "life1" && s["status"] == "running"));

    c.ipc_ok(&["kill", "life1", "KILL"]);
    let stopped = wait_for(Duration::from_secs(5), || {
        (state(&c, "life1")["status"] == "stopped").then_some(())
    });
    assert!(stopped.is_some(), "killed container becomes stopped");
    c.ipc_ok(&["delete", "life1"]);
    let err = c.ipc_err(&["state", "life1"]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!c.root().join("containers/life1").exists());
    for ctl in ["memory", "cpu", "pids", "freezer", "devices"] {
        if let Some(base) = c.cgroup_base(ctl) {
            assert!(!base.join("life1").exists(), "{ctl} group left behind");
        }
    }
}

#[test]
fn resources_land_in_the_container_cgroups() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {"resources": {
            "memory": {"limit": 67108864},
            "cpu": {"quota": 20000, "period": 100000, "shares": 512},
            "pids": {"limit": 32}
        }}}),
    );
    c.ipc_ok(&["run", "--detach", "--bundle", b(&bundle), "res1"]);
    let pid = state(&c, "res1")["pid"].as_i64().unwrap();
    let mem = c.ipc_json(&["memory-controller", "stat", "res1", "--json"]);
    assert_eq!(mem["limit_bytes"], 67108864);
    let cpu = c.ipc_json(&["cpu-controller", "list", "--json"]);
    assert!(cpu.to_string().contains("res1"));
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .any(|l| l.contains(":memory:") && l.ends_with("/res1")),
        "{cg}"
    );
    assert!(
        cg.lines()
            .any(|l| l.contains(":pids:") && l.ends_with("/res1")),
        "{cg}"
    );
    if let Some(base) = c.cgroup_base("cpu") {
        assert_eq!(
            std::fs::read_to_string(base.join("res1/cpu.cfs_quota_us"))
                .unwrap()
                .trim(),
            "20000"
        );
    }
    // update through the controllers
    c.ipc_ok(&["update", "--memory", "96M", "--pids-limit", "64", "res1"]);
    // --resources (containerd's `update --resources -`): what the
    // controllers apply goes through; what they cannot is refused by name
    // and changes nothing.
    let res = bundle.path().join("resources.json");
    std::fs::write(&res, r#"{"pids": {"limit": 48}}"#).unwrap();
    c.ipc_ok(&["update", "--resources", res.to_str().unwrap(), "res1"]);
    let mut refused = vec![];
    let blkio = c.cgroup_base("blkio");
    if blkio
        .is_some_and(|b| !b.join("blkio.weight").exists() && !b.join("blkio.bfq.weight").exists())
    {
        refused.push((
            // No I/O scheduler here gives weights (no CFQ or BFQ): refused
            // by name, and the pids limit given with it is not applied
            // either.
            r#"{"blockIO": {"weight": 300}, "pids": {"limit": 40}}"#,
            "linux.resources.blockIO.weight",
        ));
    }
    for (text, want) in refused.into_iter().chain([
        (
            r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}"#,
            "hugepageLimits: the hugepage limits of a running container cannot be changed by update",
        ),
        (
            r#"{"cpu": {"realtimeRuntime": 1000}}"#,
            "linux.resources.cpu.realtimeRuntime is not supported",
        ),
        (
            r#"{"devices": [{"allow": true, "access": "rwm"}]}"#,
            "devices: the device rules of a running container cannot be changed",
        ),
    ]) {
        std::fs::write(&res, text).unwrap();
        let e = c.ipc_err(&["update", "--resources", res.to_str().unwrap(), "res1"]);
        assert!(e.contains(want), "{text}: {e}");
    }
    let cpu = c.ipc_json(&["cpu-controller", "stat", "res1", "--json"]);
    assert_eq!(
        cpu["pids_max"], 48,
        "a refused update changed the pids limit: {cpu}"
    );
    let mem = c.ipc_json(&["memory-controller", "stat", "res1", "--json"]);
    assert_eq!(mem["limit_bytes"], 96 << 20);
    // pause / resume through the freezer
    c.ipc_ok(&["pause", "res1"]);
    assert_eq!(state(&c, "res1")["status"], "paused");
    c.ipc_ok(&["resume", "res1"]);
    assert_eq!(state(&c, "res1")["status"], "running");
    let ps: Vec<i64> =
        serde_json::from_str(&c.ipc_ok(&["ps", "--format", "json", "res1"])).unwrap();
    assert!(ps.contains(&pid), "{ps:?}");
    let ev = c.ipc_json(&["events", "--stats", "res1"]);
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    c.ipc_ok(&["delete", "--force", "res1"]);
    assert!(!alive(pid as i32));
}

/// runc spec's maskedPaths and readonlyPaths, read back from inside: a
/// masked file reads as /dev/null, a masked directory is an empty read-only
/// tmpfs (source "tmpfs" in mountinfo, as runc's), and the read-only ones
/// refuse writes for being read-only, even with CAP_SYS_ADMIN.
#[test]
fn masked_and_readonly_paths_are_what_runc_makes_them() {
    let c = Constellation::start();
    // /proc/keys and /proc/timer_list: masked files every kernel here has
    // (/proc/kcore is not in every build).
    let script = "cat /proc/keys /proc/timer_list | wc -c; ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l; \
        (echo x > /proc/sys/kernel/domainname) 2>&1 | grep -q Read-only && echo refused; \
        echo ---; cat /proc/self/mountinfo";
    let admin = json!(["CAP_SYS_ADMIN"]);
    let caps = json!({"bounding": admin, "effective": admin, "permitted": admin});
    let bundle = Bundle::busybox_with(
        &["sh", "-c", script],
        json!({"process": {"capabilities": caps}}),
    );
    let out = c.ipc(&["run", "--bundle", b(&bundle), "mask1"]);
    let text = asterism_tests::stdout_of_exit(&out, 0);
    let (seen, mountinfo) = text.split_once("---\n").unwrap();
    let seen: Vec<&str> = seen.split_whitespace().collect();
    assert_eq!(seen, ["0", "0", "0", "refused"], "{text}");
    // mount point -> (root, options, fstype, source)
    let mounts: std::collections::HashMap<&str, (&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let at = |i: usize| left.get(i).copied();
            Some((at(4)?, (at(3)?, at(5)?, *right.first()?, *right.get(1)?)))
        })
        .collect();
    let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
    for dir in ["/proc/acpi", "/sys/firmware"] {
        let (_, opts, fstype, source) = mounts[dir];
        assert!(
            ro(opts) && fstype == "tmpfs" && source == "tmpfs",
            "{dir}: {opts} {fstype} {source}"
        );
    }
    for file in ["/proc/keys", "/proc/timer_list"] {
        let (root, _, fstype, _) = mounts[file];
        assert!(
            root.ends_with("/null"),
            "{file}: a bind of {root} ({fstype}), not of /dev/null"
        );
    }
    for ro_path in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq"] {
        let (_, opts, fstype, _) = mounts[ro_path];
        assert!(ro(opts) && fstype == "proc", "{ro_path}: {opts} {fstype}");
    }
}

/// runtime-spec config.md: a capability the runtime cannot grant does not
/// fail the container, and "MUST be logged as a warning". Without a user
/// namespace, one this test process does not hold cannot be granted (this
/// sandbox's root lacks CAP_SYS_RESOURCE; runc 1.1 fails instead).
#[test]
fn a_capability_the_runtime_lacks_is_a_warning_and_the_rest_are_granted() {
    let held = caps::read(None, caps::CapSet::Permitted).unwrap();
    let Some(lacking) = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::all())
        .into_iter()
        .find(|c| !held.contains(c))
    else {
        eprintln!("skipping: this process holds every capability, so all can be granted");
        return;
    };
    let c = Constellation::start();
    let name = lacking.to_string();
    let asked = json!([name.trim_start_matches("CAP_"), "KILL"].map(|n| format!("CAP_{n}")));
    let sets = json!({"bounding": asked, "effective": asked, "permitted": asked});
    let bundle = Bundle::busybox_with(
        &["grep", "CapEff", "/proc/self/status"],
        json!({"process": {"capabilities": sets}}),
    );
    let out = c.ipc(&["run", "--bundle", b(&bundle), "capw1"]);
    let text = asterism_tests::stdout_of_exit(&out, 0);
    let eff = u64::from_str_radix(text.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(eff, 1 << caps::Capability::CAP_KILL.index(), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("process.capabilities")
            && err.contains(&name)
            && err.contains("cannot be granted"),
        "no warning naming {name}: {err}"
    );
}

/// On cgroup v1 the container is in a cgroup of its own in every hierarchy
/// the host mounts, named ones (name=systemd) and blkio included, and on a
/// hybrid host in cgroup2 too (systemd tracks processes there), as runc
/// puts it: nothing of it is accounted to (or killed with) its creator's
/// cgroups, and its /sys/fs/cgroup shows its own groups, never the host's
/// tree.
#[test]
fn the_container_has_a_cgroup_of_its_own_in_every_v1_hierarchy() {
    // A hybrid host's cgroup2 too (its /proc/self/cgroup line is "0::").
    let v1 = asterism_tests::member_hierarchies();
    if v1.is_empty() {
        eprintln!("skipping: no cgroup v1 hierarchy here");
        return;
    }
    let c = Constellation::start();
    // Each hierarchy's mount inside is the container's own group: a leaf,
    // with no cgroup directories below it.
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "cat /proc/self/cgroup; echo ---; ls -d /sys/fs/cgroup/*/*/ 2>/dev/null; true",
        ],
        json!({}),
    );
    let out = c.ipc(&["run", "--bundle", b(&bundle), "own1"]);
    let text = asterism_tests::stdout_of_exit(&out, 0);
    let (cgroups, below) = text.split_once("---").unwrap();
    for h in &v1 {
        let own = cgroupfs::hierarchy::cgroup_of(cgroups, h)
            .unwrap_or_else(|| panic!("no {} line in\n{cgroups}", h.controller));
        assert!(
            own.ends_with("own1"),
            "the container is in {} in the {} hierarchy, not a group of its own:\n{cgroups}",
            own.display(),
            h.controller
        );
    }
    assert_eq!(
        below.trim(),
        "",
        "the container sees cgroups that are not its own under /sys/fs/cgroup"
    );
    // And run removed every one of them.
    for h in &v1 {
        if let Some(base) = c.cgroup_base(&h.controller) {
            assert!(!base.join("own1").exists(), "{} left", h.controller);
        }
    }
}

#[test]
fn run_detach_is_reaped_by_init_with_its_exit_status() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sh", "-c", "sleep 0.3; exit 7"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "det1"]);
    assert_eq!(state(&c, "det1")["status"], "running");
    let stopped = wait_for(Duration::from_secs(10), || {
        (state(&c, "det1")["status"] == "stopped").then_some(())
    });
    assert!(stopped.is_some());
    c.ipc_ok(&["delete", "det1"]);
}

#[test]
fn exec_joins_a_running_container() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({"hostname": "exechost"}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "ex1"]);
    let out = c.ipc(&["exec", "ex1", "sh", "-c", "hostname; echo $$; exit 4"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("exechost"));
    // In the container's pid namespace, so a small pid.
    let inner_pid: i32 = lines.next().unwrap().parse().unwrap();
    assert!(
        inner_pid < 100,
        "exec'd process should be in the container's pid namespace: {inner_pid}"
    );
    c.ipc_ok(&["delete", "-f", "ex1"]);
}

/// runc's exec flags: a paused container refuses an exec unless
/// --ignore-paused, and then the process waits, frozen, until resume;
/// --cgroup is refused as unsupported; --apparmor and --process-label are
/// refused where that LSM is on and ignored where it is off, as in a config.
#[test]
fn exec_into_a_paused_container_waits_for_resume_with_ignore_paused() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "ex2"]);
    let e = c.ipc_err(&["exec", "--cgroup", "sub", "ex2", "true"]);
    assert!(e.contains("--cgroup: unsupported"), "{e}");
    let apparmor_on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    let out = c.ipc(&["exec", "--apparmor", "unconfined-x", "ex2", "true"]);
    match apparmor_on {
        true => assert!(String::from_utf8_lossy(&out.stderr).contains("apparmorProfile")),
        false => assert!(out.status.success(), "{out:?}"),
    }
    c.ipc_ok(&["pause", "ex2"]);
    let e = c.ipc_err(&["exec", "ex2", "true"]);
    assert!(e.contains("--ignore-paused"), "{e}");
    let mut frozen = c
        .ipc_cmd()
        .args([
            "exec",
            "--ignore-paused",
            "ex2",
            "sh",
            "-c",
            "echo thawed > /dev/shm/m",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let early = frozen.try_wait().unwrap();
    // Resumed before any assertion, so that a failure leaves no process
    // waiting on a frozen container.
    c.ipc_ok(&["resume", "ex2"]);
    let status = frozen.wait().unwrap();
    assert!(early.is_none(), "exec finished while paused: {early:?}");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        c.ipc_ok(&["exec", "ex2", "cat", "/dev/shm/m"]).trim(),
        "thawed"
    );
    c.ipc_ok(&["delete", "-f", "ex2"]);
}

/// A bundle running `args` whose four host hooks each append their name
/// and the state JSON they read to `log`, a line each.
fn bundle_logging_hooks(args: &[&str], log: &Path) -> Bundle {
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo \"{name} $s\" >> {}", log.display())]});
    Bundle::busybox_with(
        args,
        json!({"hooks": {
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")]
        }}),
    )
}

/// The hook log's lines, checked to be the four hooks in their order.
fn hooks_in_order(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    let order: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        order,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    text
}

#[test]
fn hooks_run_at_their_points_with_the_state_on_stdin() {
    let c = Constellation::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let bundle = bundle_logging_hooks(&["sleep", "300"], &log);
    c.ipc_ok(&["create", "--bundle", b(&bundle), "hk1"]);
    c.ipc_ok(&["start", "hk1"]);
    c.ipc_ok(&["delete", "--force", "hk1"]);
    let text = hooks_in_order(&log);
    assert!(text.lines().all(|l| l.contains("\"id\":\"hk1\"")), "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"status\":\"creating\""),
        "{text}"
    );
}

/// `run` in the foreground releases its own child (no exec fifo) and tells
/// init with MarkRunning: the hooks still run in their order, poststart
/// sees the container running, and the exit code is the container's.
#[test]
fn a_foreground_run_starts_its_own_child_with_every_hook_in_order() {
    let c = Constellation::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("hooks.log");
    let bundle = bundle_logging_hooks(&["sh", "-c", "echo inside; exit 3"], &log);
    let out = c.ipc(&["run", "--bundle", b(&bundle), "hr1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inside\n");
    let text = hooks_in_order(&log);
    let poststart = text.lines().nth(2).unwrap();
    assert!(poststart.contains("\"status\":\"running\""), "{text}");
    assert!(!c.ipc_ok(&["list"]).contains("hr1"));
    assert!(!c.root().join("containers/hr1").exists());
    // /bin/true often ends before init hears it was released (MarkRunning
    // then finds an exited, unreaped process): every run must still pass.
    let quick = Bundle::busybox_with(&["true"], json!({}));
    for i in 0..20 {
        let id = format!("hrq{i}");
        c.ipc_ok(&["run", "--bundle", b(&quick), &id]);
    }
    assert!(!c.ipc_ok(&["list"]).contains("hrq"));
}

/// A foreground run's process waits for ipc's own gate, so init makes it
/// no exec fifo; a create's process waits on one until start. Seen from a
/// createRuntime hook, which runs after init prepared the container.
#[test]
fn only_a_create_gets_an_exec_fifo() {
    let c = Constellation::start();
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    let listing = |id: &str| {
        let ls = format!(
            "ls {} > {}",
            c.root().join("containers").join(id).display(),
            seen.display()
        );
        Bundle::busybox_with(
            &["true"],
            json!({"hooks": {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", ls]}]}}),
        )
    };
    let bundle = listing("ff1");
    c.ipc_ok(&["create", "--bundle", b(&bundle), "ff1"]);
    let files = std::fs::read_to_string(&seen).unwrap();
    assert!(files.lines().any(|f| f == "exec.fifo"), "{files}");
    c.ipc_ok(&["start", "ff1"]);
    assert!(!c.root().join("containers/ff1/exec.fifo").exists());
    c.ipc_ok(&["delete", "--force", "ff1"]);
    let bundle = listing("ff2");
    c.ipc_ok(&["run", "--bundle", b(&bundle), "ff2"]);
    let files = std::fs::read_to_string(&seen).unwrap();
    assert!(files.lines().any(|f| f == "state.json"), "{files}");
    assert!(!files.lines().any(|f| f == "exec.fifo"), "{files}");
    assert!(!c.root().join("containers/ff2").exists());
}

#[test]
fn a_failing_prestart_hook_aborts_the_create_and_leaves_nothing() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["true"],
        json!({"hooks": {"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}]}}),
    );
    let err = c.ipc_err(&["create", "--bundle", b(&bundle), "hkbad"]);
    assert!(err.contains("prestart") && err.contains("9"), "{err}");
    assert!(!c.ipc_ok(&["list"]).contains("hkbad"));
    assert!(!c.root().join("containers/hkbad").exists());
    assert!(c
        .cgroup_base("memory")
        .is_none_or(|b| !b.join("hkbad").exists()));
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let c = Constellation::start();
    let good = Bundle::busybox_with(&["sleep", "300"], json!({}));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "create".into(),
                "--bundle".into(),
                "/nonexistent/bundle".into(),
                "x1".into(),
            ],
            "/nonexistent/bundle",
        ),
        (
            vec![
                "create".into(),
                "--bundle".into(),
                b(&good).into(),
                "../x".into(),
            ],
            "container id",
        ),
        (
            vec![
                "create".into(),
                "--bundle".into(),
                b(&good).into(),
                "a/b".into(),
            ],
            "container id",
        ),
        (
            vec![
                "create".into(),
                "--bundle".into(),
                b(&good).into(),
                "x".repeat(200),
            ],
            "container id",
        ),
        (vec!["kill".into(), "nosuch".into()], "does not exist"),
        (vec!["start".into(), "nosuch".into()], "does not exist"),
    ];
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = c.ipc_err(&args);
        assert!(err.contains(needle), "ipc {args:?}: {err}");
    }
    // Invalid config: the error names the JSON path.
    let bad = Bundle::busybox_with(&["sh"], json!({"process": {"cwd": "relative/dir"}}));
    let err = c.ipc_err(&["create", "--bundle", b(&bad), "badcfg"]);
    assert!(err.contains("process.cwd"), "{err}");
    // Missing rootfs.
    let norootfs = Bundle::busybox_with(&["sh"], json!({}));
    std::fs::remove_dir_all(norootfs.rootfs()).unwrap();
    let err = c.ipc_err(&["create", "--bundle", b(&norootfs), "noroot"]);
    assert!(err.contains("rootfs"), "{err}");
    // Command not found in the rootfs: runc's words.
    let nocmd = Bundle::busybox_with(&["no-such-binary"], json!({}));
    let out = c.ipc(&["run", "--bundle", b(&nocmd), "nocmd"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-binary") && err.contains("executable file not found in $PATH"),
        "{err}"
    );
    // A directory as the command: runc's "permission denied" (podman
    // reads it as its exit 126).
    let dircmd = Bundle::busybox_with(&["/etc"], json!({}));
    let err = c.ipc_err(&["run", "--bundle", b(&dircmd), "dircmd"]);
    assert!(err.contains("exec: \"/etc\": permission denied"), "{err}");
    // Duplicate id, unknown signal.
    c.ipc_ok(&["create", "--bundle", b(&good), "dup1"]);
    let err = c.ipc_err(&["create", "--bundle", b(&good), "dup1"]);
    assert!(err.contains("already exists"), "{err}");
    // The refused second create (its process was cloned while init still
    // checked the id) took nothing from the first one.
    let st: serde_json::Value = serde_json::from_str(&c.ipc_ok(&["state", "dup1"])).unwrap();
    assert_eq!(st["status"], "created", "{st}");
    let pid = st["pid"].as_i64().unwrap();
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "dup1's process {pid} is gone"
    );
    let err = c.ipc_err(&["kill", "dup1", "SIGFOO"]);
    assert!(err.contains("SIGFOO"), "{err}");
    c.ipc_ok(&["delete", "dup1"]);
    // Nothing left of any of them.
    let list = c.ipc_ok(&["list", "--format", "json"]);
    assert_eq!(list.trim(), "null", "{list}");
    let left: Vec<_> = std::fs::read_dir(c.root().join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state left: {left:?}");
    for ctl in &asterism_tests::hierarchies() {
        if let Some(base) = c.cgroup_base(ctl) {
            let dirs: Vec<_> = asterism_tests::subdirs(&base);
            assert!(dirs.is_empty(), "{ctl} groups left: {dirs:?}");
        }
    }
}

#[test]
fn systemd_cgroup_is_refused_and_features_tells_the_truth() {
    let c = Constellation::start();
    let err = c.ipc_err(&["--systemd-cgroup", "list"]);
    assert!(err.contains("systemd"), "{err}");
    // runc's commands that are not built: refused as such, whatever their
    // flags (podman checkpoint passes --image-path and more).
    for cmd in ["checkpoint", "restore"] {
        let err = c.ipc_err(&[cmd, "--image-path", "/nonexistent", "c1"]);
        assert!(
            err.contains("unsupported") && err.contains("checkpoint"),
            "{err}"
        );
    }
    let f = c.ipc_json(&["features"]);
    assert!(f["ociVersionMax"].is_string());
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
}

/// A constellation an `ipc` command started by itself, stopped and cleaned
/// up when dropped, also when the test fails.
struct AutoStarted {
    root: tempfile::TempDir,
}

impl AutoStarted {
    /// A fresh root under /tmp (its name starting `prefix`), where no
    /// constellation runs yet.
    fn new(prefix: &str) -> AutoStarted {
        let root = tempfile::Builder::new().prefix(prefix).tempdir_in("/tmp");
        AutoStarted {
            root: root.unwrap(),
        }
    }
}

impl Drop for AutoStarted {
    fn drop(&mut self) {
        asterism_tests::stop_processes_naming(self.root.path());
        asterism_tests::remove_cgroups(self.root.path());
    }
}

#[test]
fn an_oci_command_starts_the_constellation_when_none_runs() {
    let auto = AutoStarted::new("ast-auto-");
    let root = auto.root.path();
    let ipc = |args: &[&str]| {
        asterism_tests::run_to_files(
            std::process::Command::new(asterism_tests::bin("ipc"))
                .env("ASTERISM_LOG", "debug")
                .arg("--root")
                .arg(root)
                .args(args),
        )
    };
    // Started from an ipc with SIGTERM blocked, as `ipc run` has it while
    // it waits for its container: the mask goes through exec, and init
    // must not keep it.
    let out = with_signals_blocked(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP], || {
        ipc(&["list", "--format", "json"])
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null");
    // The servers log into init's log at once (debug: a line per request):
    // every line must come out whole, "name[pid] LEVEL: message".
    let bundle = Bundle::busybox_with(&["true"], json!({}));
    for i in 0..5 {
        let out = ipc(&["run", "--bundle", b(&bundle), &format!("auto{i}")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let log = std::fs::read_to_string(root.join("init.log")).unwrap();
    assert!(log.lines().count() >= 20, "{log}");
    for line in log.lines() {
        let (head, _) = line.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        let (name, level) = head.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(name.ends_with(']') && name.contains('['), "{line:?}");
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "{line:?}"
        );
    }
    // Stop what we started: init's pid from its pid file.
    let pid: i32 = std::fs::read_to_string(root.join("init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    asterism_tests::kill(pid, libc::SIGTERM);
    let gone = wait_for(Duration::from_secs(10), || (!alive(pid)).then_some(()));
    assert!(gone.is_some(), "auto-started init stops on SIGTERM");
}

/// The init an `ipc` command starts keeps none of that command's
/// descriptors beyond stdio: a pipe its caller handed down (conmon's, a
/// shim's) reaches EOF when the command is done, though init runs on.
#[test]
fn an_auto_started_init_holds_none_of_its_callers_descriptors() {
    use std::os::fd::AsFd;
    let auto = AutoStarted::new("ast-fds-");
    let root = auto.root.path();
    // The write end without close-on-exec: ipc inherits it, as a runtime
    // inherits its caller's pipes.
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty()).unwrap();
    let out = asterism_tests::run_to_files(
        std::process::Command::new(asterism_tests::bin("ipc"))
            .arg("--root")
            .arg(root)
            .args(["list", "--format", "json"]),
    );
    drop(w);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init: i32 = std::fs::read_to_string(root.join("init.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(init), "the constellation did not stay up");
    let mut pfd = [rustix::event::PollFd::new(&r, rustix::event::PollFlags::IN)];
    let ts = rustix::event::Timespec {
        tv_sec: 5,
        tv_nsec: 0,
    };
    let ready = rustix::event::poll(&mut pfd, Some(&ts)).unwrap();
    assert_eq!(
        ready, 1,
        "the pipe never reached EOF: init (pid {init}) holds its write end"
    );
    let mut buf = [0u8; 8];
    assert_eq!(rustix::io::read(r.as_fd(), &mut buf).unwrap(), 0);
}

/// Runs `f` with `signals` blocked in this thread (what a child it spawns
/// inherits), then restores the mask.
fn with_signals_blocked<T>(signals: &[i32], f: impl FnOnce() -> T) -> T {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    for s in signals {
        set.add(Signal::try_from(*s).unwrap());
    }
    let mut old = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old)).unwrap();
    let out = f();
    pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None).unwrap();
    out
}

#[test]
fn a_non_root_user_and_a_user_namespace_both_get_through_the_exec_fifo() {
    let c = Constellation::start();
    let user = Bundle::busybox_with(
        &["id"],
        json!({"process": {"user": {"uid": 1000, "gid": 1000, "additionalGids": [2000]}}}),
    );
    let out = c.ipc(&["run", "--bundle", b(&user), "usr1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("uid=1000") && text.contains("gid=1000") && text.contains("2000"),
        "{text}"
    );

    let userns = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map; id -u; stat -c %u:%g /dev/mqueue",
        ],
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }, "root": {"path": "rootfs", "readonly": false}}),
    );
    let out = c.ipc(&["run", "--bundle", b(&userns), "uns1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let map: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{text}");
    assert_eq!(text.lines().nth(1), Some("0"));
    // The ipc namespace's mqueue root belongs to the container's root, as
    // under runc (its group is the creator's host gid 0, unmapped: 65534).
    assert_eq!(text.lines().nth(2), Some("0:65534"), "{text}");
}

#[test]
fn stopping_init_leaves_containers_running_and_the_next_init_finds_them() {
    let mut c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {"resources": {"memory": {"limit": 41943040}}}}),
    );
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "survive1"]);
    let pid = state(&c, "survive1")["pid"].as_i64().unwrap() as i32;
    asterism_tests::kill(c.init_pid(), libc::SIGTERM);
    let stopped = wait_for(Duration::from_secs(10), || {
        (!alive(c.init_pid())).then_some(())
    });
    assert!(stopped.is_some(), "init stops on SIGTERM");
    c.kill_init(); // reap it
    assert!(alive(pid), "the container keeps running without init");
    // The next OCI command starts a new init, which finds it running.
    let st = state(&c, "survive1");
    assert_eq!(st["status"], "running", "{st}");
    assert_eq!(st["pid"].as_i64().unwrap() as i32, pid);
    let mem = c.ipc_json(&["memory-controller", "stat", "survive1", "--json"]);
    assert_eq!(mem["limit_bytes"], 41943040, "its limit still holds");
    c.ipc_ok(&["delete", "-f", "survive1"]);
    assert!(!alive(pid));
}

/// The hierarchies whose group is the container's, as /proc/PID/cgroup
/// names them ("4:memory:/x/asterism-.../id").
fn groups_of(cgroup_file: &str) -> Vec<(String, String)> {
    cgroup_file
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctl, path) = (parts.next()?, parts.next()?, parts.next()?);
            Some((ctl.to_string(), path.to_string()))
        })
        .collect()
}

/// The fast create path: the container process joins its groups by itself
/// (tasks fds from the controllers on v1, CLONE_INTO_CGROUP on v2), and its
/// network namespace comes from netstack's pool with loopback up. Checked
/// from outside and from inside, for the container and for an exec'd
/// process; two containers never share a namespace.
#[test]
fn the_process_joins_every_group_itself_and_gets_a_fresh_network_namespace() {
    let mut c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "fast1"]);
    c.ipc_ok(&["run", "-d", "--bundle", b(&bundle), "fast2"]);
    let pid = state(&c, "fast1")["pid"].as_i64().unwrap();
    let pid2 = state(&c, "fast2")["pid"].as_i64().unwrap();
    // Every hierarchy the two controllers manage holds the process in
    // fast1's group.
    let ours: Vec<String> = [
        "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices",
    ]
    .iter()
    .filter(|ctl| c.cgroup_base(ctl).is_some())
    .map(|s| s.to_string())
    .collect();
    assert!(!ours.is_empty());
    let check = |text: &str, who: &str| {
        let groups = groups_of(text);
        for ctl in &ours {
            let hit = groups
                .iter()
                .find(|(names, _)| names.split(',').any(|n| n == ctl));
            match hit {
                Some((_, path)) => assert!(
                    path.ends_with("/fast1"),
                    "{who}: {ctl} group is {path}, not fast1's:\n{text}"
                ),
                None => panic!("{who}: no {ctl} line in\n{text}"),
            }
        }
    };
    check(
        &std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap(),
        "the container process",
    );
    let inside = c.ipc_ok(&["exec", "fast1", "cat", "/proc/self/cgroup"]);
    check(&inside, "an exec'd process");
    // Its own network namespace, not the host's nor fast2's, lo up.
    let ns = |p: i64| std::fs::read_link(format!("/proc/{p}/ns/net")).unwrap();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_ne!(ns(pid), host);
    assert_ne!(ns(pid), ns(pid2));
    let flags = c.ipc_ok(&["exec", "fast1", "cat", "/sys/class/net/lo/flags"]);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(
        flags & 1,
        1,
        "lo is not up in the container: flags {flags:#x}"
    );
    let listed = c.ipc_ok(&["netstack", "list"]);
    assert!(
        listed.contains("fast1") && listed.contains("fast2"),
        "{listed}"
    );
    c.ipc_ok(&["delete", "-f", "fast1"]);
    c.ipc_ok(&["delete", "-f", "fast2"]);
    let listed = c.ipc_ok(&["netstack", "list"]);
    assert!(
        !listed.contains("fast1") && !listed.contains("fast2"),
        "{listed}"
    );
    assert!(!alive(pid as i32) && !alive(pid2 as i32));
    // The bases stay while the constellation runs; once it is stopped
    // (SIGTERM), no directory of the constellation's is left in our cgroup
    // in a v1 hierarchy (memory-controller's base goes too).
    c.stop();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for ctl in &ours {
        let v1 = mountinfo
            .lines()
            .any(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o == ctl.as_str()));
        let base = c.cgroup_base(ctl).unwrap();
        assert!(!v1 || !base.exists(), "{} is left behind", base.display());
    }
}

/// `ipc run` in the foreground passes the signals it gets to the
/// container's process, as runc does: a SIGTERM to ipc reaches the
/// container's trap, and ipc exits with the container's code.
#[test]
fn a_foreground_run_forwards_signals_to_the_container() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.05; done",
        ],
        json!({}),
    );
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let mut child = c
        .ipc_cmd()
        .args(["run", "--bundle", b(&bundle), "sig1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let ready = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&out_path)
            .ok()
            .filter(|s| s.contains("ready"))
    });
    assert!(ready.is_some(), "the container never said ready");
    kill(child.id() as i32, libc::SIGTERM);
    let status = wait_for(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        let _ = child.kill();
        panic!("ipc run did not end after SIGTERM");
    };
    assert_eq!(status.code(), Some(7));
    assert!(std::fs::read_to_string(&out_path)
        .unwrap()
        .contains("got TERM"));
    // run deleted the container when it exited.
    assert!(c.ipc_err(&["state", "sig1"]).contains("does not exist"));
}

/// With process.terminal and no --console-socket, a foreground `run` (and
/// `exec -t`) holds the pty itself: the process has a terminal on its
/// stdio, its output reaches ipc's stdout, and the exit code comes back.
#[test]
fn a_foreground_run_with_a_terminal_proxies_the_pty() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; exit 3"],
        json!({"process": {"terminal": true}}),
    );
    let out = c.ipc(&["run", "--bundle", b(&bundle), "tty1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("stdin-is-a-tty"), "{text}");
    // exec -t into a running container, in the foreground.
    let sleeper = Bundle::busybox_with(&["sleep", "300"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&sleeper), "tty2"]);
    let out = c.ipc(&["exec", "-t", "tty2", "sh", "-c", "tty; exit 4"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("/dev/pts/"), "{text}");
    // Detached, a terminal still needs a console socket.
    let err = c.ipc_err(&["exec", "-t", "-d", "tty2", "true"]);
    assert!(err.contains("console-socket"), "{err}");
    c.ipc_ok(&["delete", "-f", "tty2"]);
    // No console socket of ipc's own is left in the root.
    let left: Vec<_> = std::fs::read_dir(c.root())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("console-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Voluntary context switches of every thread of process `pid`.
fn voluntary_switches(pid: i32) -> u64 {
    let mut n = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status =
            std::fs::read_to_string(task.unwrap().path().join("status")).unwrap_or_default();
        n += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    n
}

/// With containers running and nothing asked of it, init sleeps: the exit
/// watcher waits on an epoll set of the containers' pidfds and the
/// supervisor on its servers' pidfds until the next health check. (Both
/// used to wake every 50 ms and poll fresh duplicates of every pidfd, and
/// a third thread read seccomp-monitor's pid file 5 times a second: about
/// 45 wake-ups a second, more work with every container.)
#[test]
fn an_idle_init_with_running_containers_sleeps() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({}));
    let ids: Vec<String> = (0..12).map(|i| format!("idle{i}")).collect();
    for id in &ids {
        c.ipc_ok(&["run", "--detach", "--bundle", b(&bundle), id]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = voluntary_switches(c.init_pid());
    std::thread::sleep(Duration::from_secs(3));
    let woke = voluntary_switches(c.init_pid()) - before;
    for id in &ids {
        c.ipc_ok(&["delete", "--force", id]);
    }
    assert!(
        woke <= 30,
        "init's threads woke {woke} times in 3 s with 12 idle containers"
    );
    // And an exit is still seen: a detached container that ends is stopped.
    let quick = Bundle::busybox_with(&["true"], json!({}));
    c.ipc_ok(&["run", "--detach", "--bundle", b(&quick), "idle-quick"]);
    let stopped = wait_for(Duration::from_secs(5), || {
        (state(&c, "idle-quick")["status"] == "stopped").then_some(())
    });
    c.ipc_ok(&["delete", "idle-quick"]);
    assert!(stopped.is_some(), "the exit of idle-quick was not seen");
}

/// The `ipc` that asked init to prepare a create dies while init makes its
/// resources (groups, network namespace, state): the create is rolled
/// back, as when it dies at any other point. The creator here is a
/// sleeping test process whose pid the Prepare names, SIGKILLed 0 to 2 ms after the
/// request is sent: before init reads it (refused), while init prepares,
/// or after. Before the fix, init began watching the creator only once
/// everything was made, and a creator dead by then was never watched: its
/// create stayed `creating`, holding its groups and network namespace.
#[test]
fn a_create_whose_creator_dies_while_init_prepares_is_rolled_back() {
    use libipc::client::{Client, ClientOptions};
    use protocol::init::{Init, InitRequest};
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["true"], json!({}));
    let config = std::fs::read_to_string(bundle.path().join("config.json")).unwrap();
    let mut init = Client::<Init>::new(c.root(), ClientOptions::default());
    let left = |id: &str| -> Vec<String> {
        let mut what = vec![];
        if c.ipc_ok(&["list"]).contains(id) {
            what.push("its record".to_string());
        }
        if c.root().join("containers").join(id).exists() {
            what.push("its state directory".to_string());
        }
        for ctl in ["memory", "cpu", "pids"] {
            if c.cgroup_base(ctl)
                .is_some_and(|base| base.join(id).exists())
            {
                what.push(format!("its {ctl} group"));
            }
        }
        what
    };
    for n in 0..20u64 {
        let id = format!("orphan{n}");
        // Killed and reaped when dropped, also should the test fail first.
        let creator = asterism_tests::Hog::sleep();
        let req = InitRequest::Prepare {
            id: id.clone(),
            bundle: b(&bundle).to_string(),
            config_json: config.clone(),
            creator_pid: creator.pid(),
            start_gate: false,
        };
        let sent = init.send_only(req, None, vec![]).unwrap();
        std::thread::sleep(Duration::from_micros(100 * n));
        drop(creator);
        // Refused or prepared: either way, the answer's fds close here.
        let _ = init.finish(sent);
        let gone = wait_for(Duration::from_secs(5), || {
            left(&id).is_empty().then_some(())
        });
        assert!(gone.is_some(), "{id}: left behind: {:?}", left(&id));
    }
}

/// The default devices and linux.devices as the container sees them: type,
/// major:minor, exact mode and owner, also where mknod alone would not
/// give them (a mode the umask would have cut, a set-group-ID directory
/// that would have given the node its own group, a directory to create).
#[test]
fn device_nodes_have_their_type_numbers_mode_and_owner() {
    use std::os::unix::fs::{chown, PermissionsExt};
    let c = Constellation::start();
    let devices = json!({"linux": {"devices": [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 1000, "gid": 2000},
        {"path": "/dev/sub/pipe", "type": "p", "fileMode": 0o640},
        {"path": "/dev/loop200", "type": "b", "major": 7, "minor": 200, "fileMode": 0o777},
        {"path": "/shared/null2", "type": "c", "major": 1, "minor": 3}]}});
    let paths = "/dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty \
                 /dev/fuse /dev/sub/pipe /dev/loop200 /shared/null2";
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            &format!("stat -c '%n %F %a %u:%g %t:%T' {paths}"),
        ],
        devices,
    );
    // /shared is the rootfs's own directory, set-group-ID and group 2000:
    // a node made there would be group 2000 without the chown.
    let shared = bundle.rootfs().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chown(&shared, Some(0), Some(2000)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o2775)).unwrap();
    let text = c.ipc_ok(&[
        "run",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "devnodes",
    ]);
    let want = [
        "/dev/null character special file 666 0:0 1:3",
        "/dev/zero character special file 666 0:0 1:5",
        "/dev/full character special file 666 0:0 1:7",
        "/dev/random character special file 666 0:0 1:8",
        "/dev/urandom character special file 666 0:0 1:9",
        "/dev/tty character special file 666 0:0 5:0",
        "/dev/fuse character special file 600 1000:2000 a:e5",
        "/dev/sub/pipe fifo 640 0:0 0:0",
        "/dev/loop200 block special file 777 0:0 7:c8",
        "/shared/null2 character special file 666 0:0 1:3",
    ];
    assert_eq!(text.lines().collect::<Vec<_>>(), want);
}

/// A temporary state file that an init killed mid-write left in a
/// container's directory does not keep delete from removing the directory.
#[test]
fn delete_removes_a_state_directory_with_a_half_written_record_in_it() {
    let c = Constellation::start();
    let b = Bundle::busybox_with(&["sleep", "300"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "halfw"]);
    let dir = c.root().join("containers").join("halfw");
    std::fs::write(dir.join("state.tmp.999999.0"), b"{\"id\": \"hal").unwrap();
    c.ipc_ok(&["delete", "--force", "halfw"]);
    assert!(!dir.exists(), "{} is still there", dir.display());
}
