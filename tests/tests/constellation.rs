//! init and the supervisor, through the real binaries.

use asterism_tests::{alive, kill, Constellation};
use std::time::{Duration, Instant};

const SERVERS: [&str; 5] = protocol::SERVERS;

#[test]
fn status_lists_init_and_five_running_servers() {
    let c = Constellation::start();
    let st = c.status();
    assert_eq!(st["init"]["pid"].as_i64().unwrap() as i32, c.init_pid());
    let servers = st["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 5);
    for (s, name) in servers.iter().zip(SERVERS) {
        assert_eq!(s["name"], name);
        assert_eq!(s["state"], "running", "{s}");
        assert!(alive(s["pid"].as_i64().unwrap() as i32));
        assert_eq!(s["restarts"], 0);
        for key in ["uptime_ms", "requests"] {
            assert!(s[key].is_u64(), "{key} missing in {s}");
        }
    }
    let table = c.ipc_ok(&["status"]);
    for name in SERVERS {
        assert!(table.contains(name), "{table}");
    }
    for name in SERVERS {
        let out = c.ipc_ok(&[name, "ping"]);
        assert!(out.contains(&format!("pong from {name}")), "{out}");
    }
    assert!(c.ipc_ok(&["init", "ping"]).contains("pong from init"));
}

#[test]
fn second_init_on_the_same_root_is_refused() {
    let c = Constellation::start();
    let out = std::process::Command::new(asterism_tests::bin("init"))
        .arg("--root")
        .arg(c.root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already running") && err.contains(&c.init_pid().to_string()),
        "{err}"
    );
    // The first one is unharmed.
    assert_eq!(c.server("memory-controller")["state"], "running");
}

#[test]
fn every_server_is_restarted_after_sigkill() {
    let c = Constellation::start();
    for name in SERVERS {
        let old = c.server_pid(name);
        let new = c.kill_server(name);
        assert_ne!(old, new);
        let s = c.server(name);
        assert_eq!(s["restarts"], 1, "{s}");
        assert!(
            c.ipc_ok(&[name, "ping"]).contains("epoch 2"),
            "epoch should move on"
        );
    }
}

#[test]
fn a_server_that_keeps_crashing_is_marked_failed() {
    let c = Constellation::start_with(&["--max-restarts", "2", "--restart-window", "60"]);
    for _ in 0..2 {
        c.kill_server("netstack");
    }
    kill(c.server_pid("netstack"), libc::SIGKILL);
    let st = asterism_tests::wait_for(Duration::from_secs(5), || {
        let s = c.server("netstack");
        (s["state"] == "failed").then_some(s)
    })
    .expect("netstack should be marked failed");
    assert_eq!(st["pid"], 0);
    assert!(c.ipc_ok(&["status"]).contains("failed"));
    // The others are untouched.
    assert_eq!(c.server("memory-controller")["restarts"], 0);
}

#[test]
fn a_killed_init_is_replaced_and_adopts_the_running_servers() {
    let mut c = Constellation::start();
    let before: Vec<i32> = SERVERS.iter().map(|n| c.server_pid(n)).collect();
    c.kill_init();
    for pid in &before {
        assert!(alive(*pid), "servers must outlive init");
    }
    // The servers still answer while no init runs.
    assert!(c.ipc_ok(&["cpu-controller", "ping"]).contains("pong"));
    c.start_init();
    let after: Vec<i32> = SERVERS.iter().map(|n| c.server_pid(n)).collect();
    assert_eq!(before, after, "the new init adopts, not replaces");
    // And still supervises them.
    let new = c.kill_server("vfs-overlay");
    assert!(!before.contains(&new));
}

#[test]
fn sigterm_stops_every_server_and_removes_the_sockets() {
    let mut c = Constellation::start();
    let pids: Vec<i32> = SERVERS.iter().map(|n| c.server_pid(n)).collect();
    kill(c.init_pid(), libc::SIGTERM);
    let until = Instant::now() + Duration::from_secs(8);
    while pids.iter().any(|p| alive(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "servers still alive after SIGTERM"
    );
    // init removes the sockets once the servers are gone: give it a moment.
    for name in SERVERS {
        let path = libipc::socket_path(c.root(), name);
        let gone =
            asterism_tests::wait_for(Duration::from_secs(5), || (!path.exists()).then_some(()));
        assert!(gone.is_some(), "{name}'s socket left behind");
    }
    c.kill_init(); // reap
    let err = c.ipc_err(&["status"]);
    assert!(err.contains("no constellation is running"), "{err}");
}

#[test]
fn unbuilt_servers_answer_unsupported_and_unknown_servers_are_refused() {
    let c = Constellation::start();
    for name in ["vfs-overlay", "netstack", "seccomp-monitor"] {
        let err = c.ipc_err(&[name, "create", "x"]);
        assert!(
            err.contains("unsupported") && err.contains(name) && err.contains("create"),
            "{err}"
        );
    }
    let err = c.ipc_err(&["gpu-controller", "ping"]);
    assert!(err.contains("gpu-controller"), "{err}");
}

#[test]
fn status_without_a_constellation_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(asterism_tests::bin("ipc"))
        .arg("--root")
        .arg(dir.path())
        .arg("status")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no constellation is running") && err.contains(&*dir.path().to_string_lossy()),
        "{err}"
    );
}

#[test]
fn dropping_a_constellation_detaches_what_its_servers_mounted() {
    // As a test that fails midway would: a read-only bind made, never released.
    let bundle = asterism_tests::Bundle::busybox_with(&["true"], serde_json::json!({}));
    let root = {
        let c = Constellation::start();
        c.ipc_ok(&[
            "vfs-overlay",
            "prepare",
            "m1",
            "--bundle",
            bundle.path().to_str().unwrap(),
            "--readonly",
        ]);
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            info.contains(c.root().to_str().unwrap()),
            "the bind is there"
        );
        c.root().to_path_buf()
    };
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !info.contains(root.to_str().unwrap()),
        "the harness left a mount behind"
    );
}

/// Each server keeps only the capabilities its work needs (DESIGN.md,
/// "Capabilities and trust"), in every set, the bounding one included, and
/// a restarted server drops them again; init keeps them all (it launches
/// containers and runs hooks).
#[test]
fn each_server_keeps_only_its_capabilities() {
    use caps::Capability as C;
    let c = Constellation::start();
    let want: [(&str, &[C]); 5] = [
        (
            "memory-controller",
            &[
                C::CAP_KILL,
                C::CAP_DAC_OVERRIDE,
                C::CAP_DAC_READ_SEARCH,
                C::CAP_FOWNER,
            ],
        ),
        (
            "cpu-controller",
            &[
                C::CAP_SYS_ADMIN,
                C::CAP_SYS_NICE,
                C::CAP_KILL,
                C::CAP_DAC_OVERRIDE,
                C::CAP_DAC_READ_SEARCH,
                C::CAP_FOWNER,
                C::CAP_BPF,
                C::CAP_NET_ADMIN,
                C::CAP_PERFMON,
            ],
        ),
        (
            "vfs-overlay",
            &[
                C::CAP_SYS_ADMIN,
                C::CAP_CHOWN,
                C::CAP_DAC_OVERRIDE,
                C::CAP_DAC_READ_SEARCH,
                C::CAP_FOWNER,
                C::CAP_FSETID,
                C::CAP_MKNOD,
                C::CAP_SETFCAP,
            ],
        ),
        (
            "netstack",
            &[
                C::CAP_NET_ADMIN,
                C::CAP_SYS_ADMIN,
                C::CAP_DAC_OVERRIDE,
                C::CAP_DAC_READ_SEARCH,
            ],
        ),
        (
            "seccomp-monitor",
            &[
                C::CAP_KILL,
                C::CAP_DAC_OVERRIDE,
                C::CAP_DAC_READ_SEARCH,
                C::CAP_SYS_PTRACE,
            ],
        ),
    ];
    let sets = |pid: i32| -> Vec<(String, u64)> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.strip_prefix("Cap")?;
                Some((k.to_string(), u64::from_str_radix(v.trim(), 16).ok()?))
            })
            .collect()
    };
    let check = |name: &str, keep: &[C]| {
        let mask = keep.iter().fold(0u64, |m, c| m | c.bitmask());
        for (set, value) in sets(c.server_pid(name)) {
            let expected = match set.as_str() {
                "Prm" | "Eff" | "Bnd" => mask,
                _ => 0, // Inh, Amb
            };
            assert_eq!(
                value, expected,
                "{name}: Cap{set} {value:#x}, want {expected:#x}"
            );
        }
    };
    for (name, keep) in want {
        check(name, keep);
    }
    c.kill_server("netstack");
    check("netstack", want[3].1);
    let init = sets(c.init_pid());
    let eff = init.iter().find(|(k, _)| k == "Eff").unwrap().1;
    assert!(
        eff & C::CAP_SYS_ADMIN.bitmask() != 0,
        "init lost CAP_SYS_ADMIN: {eff:#x}"
    );
}

/// A pipe whose reading end is already closed: every write to the other
/// end fails with EPIPE (Rust ignores SIGPIPE).
fn broken_pipe() -> std::process::Stdio {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    std::process::Stdio::from(writer)
}

/// ipc's output going nowhere (an engine that stopped reading, a closed
/// terminal) never crashes it: an error still ends with exit code 1, and a
/// failed print of a result is a clean panic (101), unwound, not a signal.
/// The release `ipc` segfaulted here once, in the unwinder, when its
/// arena allocator handed the exception object 8-byte aligned memory.
#[test]
fn ipc_writing_to_a_closed_pipe_exits_with_a_code_not_a_signal() {
    let c = Constellation::start();
    let error = c
        .ipc_cmd()
        .args(["state", "no-such-container"])
        .stdout(std::process::Stdio::null())
        .stderr(broken_pipe())
        .status()
        .unwrap();
    assert_eq!(error.code(), Some(1), "{error:?}");
    let listed = c
        .ipc_cmd()
        .args(["list"])
        .stdout(broken_pipe())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(listed.code().is_some(), "killed by a signal: {listed:?}");
}
