//! cpu-controller end to end: the real `init`, `cpu-controller` and `ipc`
//! binaries on this host's real cgroups (v1 here: cpu, cpuacct, cpuset, pids
//! and freezer). Every process a test starts is killed by pid when it ends
//! (Hog / Spawned guards), and the constellation's cgroup trees are removed
//! by the Constellation guard even when an assertion fails.

use asterism_tests::{bin, cpu_ticks, kill, wait_for, Constellation, Hog};
use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CPU: &str = "cpu-controller";

fn cpu_ok(c: &Constellation, args: &[&str]) -> String {
    let mut all = vec![CPU];
    all.extend_from_slice(args);
    c.ipc_ok(&all)
}

fn cpu_err(c: &Constellation, args: &[&str]) -> String {
    let mut all = vec![CPU];
    all.extend_from_slice(args);
    c.ipc_err(&all)
}

fn cpu_json(c: &Constellation, args: &[&str]) -> Value {
    let mut all = vec![CPU];
    all.extend_from_slice(args);
    c.ipc_json(&all)
}

fn stat(c: &Constellation, id: &str) -> Value {
    cpu_json(c, &["stat", id, "--json"])
}

fn list(c: &Constellation) -> Vec<Value> {
    cpu_json(c, &["list", "--json"])["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn group(c: &Constellation, id: &str) -> Option<Value> {
    list(c).into_iter().find(|g| g["id"] == id)
}

/// The group's directory in one hierarchy.
fn cgroup_dir(c: &Constellation, controller: &str, rel: &str) -> std::path::PathBuf {
    c.cgroup_base(controller)
        .expect("controller mounted")
        .join(rel)
}

/// A process started by a test, SIGKILLed by pid when dropped.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn quota_holds_a_busy_process_to_a_fifth_of_a_core() {
    let c = Constellation::start();
    cpu_ok(
        &c,
        &["create", "fifth", "--quota", "20000", "--period", "100000"],
    );
    let hog = Hog::spin();
    cpu_ok(&c, &["attach", "fifth", &hog.pid().to_string()]);
    std::thread::sleep(Duration::from_millis(300)); // settle into the cgroup
    let before = stat(&c, "fifth");
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let after = stat(&c, "fifth");
    let wall_us = t0.elapsed().as_micros() as f64;
    let used = (after["usage_us"].as_u64().unwrap() - before["usage_us"].as_u64().unwrap()) as f64;
    let cores = used / wall_us;
    eprintln!("under quota 20000/100000 the hog used {cores:.3} of a core: {after}");
    // Behaviour, not speed: unthrottled it would use a whole core (1.0).
    assert!(
        (0.1..0.35).contains(&cores),
        "used {cores:.3} of a core under 20000/100000"
    );
    assert!(after["nr_throttled"].as_u64().unwrap() > 0, "{after}");
    assert!(after["throttled_us"].as_u64().unwrap() > 0, "{after}");
    assert!(after["nr_periods"].as_u64().unwrap() >= 10, "{after}");
    assert_eq!(after["pids_current"], 1);
    assert_eq!(after["pids"][0], hog.pid());
    drop(hog);
    cpu_ok(&c, &["delete", "fifth"]);
}

#[test]
fn freeze_stops_a_busy_process_and_thaw_resumes_it() {
    let c = Constellation::start();
    cpu_ok(&c, &["create", "ice"]);
    let hog = Hog::spin();
    cpu_ok(&c, &["attach", "ice", &hog.pid().to_string()]);
    assert!(cpu_ok(&c, &["freeze", "ice"]).contains("froze"));
    assert_eq!(stat(&c, "ice")["frozen"], true);
    let t0 = cpu_ticks(hog.pid());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(cpu_ticks(hog.pid()), t0, "a frozen process used CPU");
    assert!(cpu_ok(&c, &["thaw", "ice"]).contains("thawed"));
    assert_eq!(stat(&c, "ice")["frozen"], false);
    let grew = wait_for(Duration::from_secs(3), || {
        (cpu_ticks(hog.pid()) > t0).then_some(())
    });
    assert!(grew.is_some(), "a thawed process did not run again");
    // A frozen group is thawed before a forced delete kills it.
    cpu_ok(&c, &["freeze", "ice"]);
    let err = cpu_err(&c, &["delete", "ice"]);
    assert!(
        err.contains("still has processes") && err.contains(&hog.pid().to_string()),
        "{err}"
    );
    cpu_ok(&c, &["delete", "ice", "--force"]);
    let mut hog = hog;
    assert!(
        hog.wait_exit(Duration::from_secs(5)).is_some(),
        "force delete did not kill the hog"
    );
    assert!(!cgroup_dir(&c, "freezer", "ice").exists());
}

#[test]
fn pids_max_makes_the_sixth_process_fail() {
    let c = Constellation::start();
    cpu_ok(&c, &["create", "few", "--pids-max", "5"]);
    // A shell that waits to be attached, then becomes `hog forks 5`: the hog
    // is process 1 of 5, so 4 children fit and the fork of the 6th process fails.
    let mut sh = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "read x; exec {} forks 5",
            bin("asterism-test-hog").display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = sh.id() as i32;
    let mut stdin = sh.stdin.take().unwrap();
    let stdout = sh.stdout.take().unwrap();
    let sh = Spawned(sh);
    cpu_ok(&c, &["attach", "few", &pid.to_string()]);
    writeln!(stdin).unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    assert_eq!(line.trim(), "forked 4");
    let st = stat(&c, "few");
    assert_eq!(st["pids_current"], 5, "{st}");
    assert_eq!(st["pids_max"], 5, "{st}");
    writeln!(stdin).unwrap(); // the hog kills its children and exits
    drop(sh);
    cpu_ok(&c, &["delete", "few", "--force"]);
}

#[test]
fn cpus_pins_a_process() {
    let c = Constellation::start();
    let out = cpu_ok(&c, &["create", "pinned", "--cpus", "0", "--mems", "0"]);
    assert!(out.contains("cpus: 0"), "{out}");
    let hog = Hog::sleep();
    cpu_ok(&c, &["attach", "pinned", &hog.pid().to_string()]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", hog.pid())).unwrap();
    let allowed = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    assert_eq!(allowed.split_whitespace().nth(1), Some("0"), "{allowed}");
    drop(hog);
    cpu_ok(&c, &["delete", "pinned"]);
}

#[test]
fn create_set_list_delete() {
    let c = Constellation::start();
    let args = [
        "create",
        "web",
        "--shares",
        "512",
        "--quota",
        "30000",
        "--period",
        "100000",
        "--pids-max",
        "10",
    ];
    let out = cpu_ok(&c, &args);
    assert!(
        out.contains("shares: 512") && out.contains("quota_us: 30000"),
        "{out}"
    );
    // The same spec again is fine; another one is refused.
    cpu_ok(&c, &args);
    let err = cpu_err(&c, &["create", "web", "--shares", "100"]);
    assert!(
        err.contains("already exists") && err.contains("web"),
        "{err}"
    );

    let g = group(&c, "web").unwrap();
    assert_eq!(
        (
            g["shares"].as_u64(),
            g["quota_us"].as_u64(),
            g["period_us"].as_u64()
        ),
        (Some(512), Some(30000), Some(100000))
    );
    assert_eq!(g["pids_max"], 10);
    assert!(g["backend"].as_str().unwrap().contains("cpu="), "{g}");
    assert_eq!(
        std::fs::read_to_string(cgroup_dir(&c, "cpu", "web/cpu.shares"))
            .unwrap()
            .trim(),
        "512"
    );

    cpu_ok(
        &c,
        &[
            "set",
            "web",
            "--quota",
            "max",
            "--shares",
            "256",
            "--pids-max",
            "max",
        ],
    );
    let g = group(&c, "web").unwrap();
    assert_eq!(g["quota_us"], "max");
    assert_eq!(g["shares"], 256);
    assert_eq!(g["pids_max"], "max");
    assert_eq!(g["period_us"], 100000, "untouched");

    cpu_ok(&c, &["create", "api", "--parent", "web", "--shares", "100"]);
    assert_eq!(group(&c, "api").unwrap()["parent"], "web");
    assert!(cgroup_dir(&c, "cpu", "web/api").is_dir());
    let err = cpu_err(&c, &["delete", "web"]);
    assert!(err.contains("child groups") && err.contains("api"), "{err}");

    let st = stat(&c, "api");
    for key in [
        "usage_us",
        "user_us",
        "system_us",
        "nr_periods",
        "nr_throttled",
        "throttled_us",
        "pids_current",
    ] {
        assert!(st[key].is_u64(), "{key} missing: {st}");
    }
    assert_eq!(st["frozen"], false);
    let human = cpu_ok(&c, &["stat", "api"]);
    assert!(
        human.contains("usage_us: ") && human.contains("frozen: false"),
        "{human}"
    );

    cpu_ok(&c, &["delete", "api"]);
    cpu_ok(&c, &["delete", "web"]);
    assert!(list(&c).is_empty());
    for ctl in ["cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"] {
        assert!(
            !cgroup_dir(&c, ctl, "web").exists(),
            "{ctl}/web left behind"
        );
    }
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let c = Constellation::start();
    let pid = c.server_pid(CPU);
    let long = "x".repeat(200);
    for id in ["../x", "a/b", "", long.as_str()] {
        let err = cpu_err(&c, &["create", id]);
        assert!(err.contains("group id"), "{id:?}: {err}");
    }
    let err = cpu_err(&c, &["create", "q", "--quota", "12Q"]);
    assert!(err.contains("--quota") && err.contains("12Q"), "{err}");
    let err = cpu_err(&c, &["create", "p", "--period", "5"]);
    assert!(err.contains("--period") && err.contains('5'), "{err}");
    let err = cpu_err(&c, &["create", "cs", "--cpus", "99"]);
    assert!(err.contains("--cpus") && err.contains("99"), "{err}");
    let err = cpu_err(&c, &["create", "sh", "--shares", "1"]);
    assert!(err.contains("--shares"), "{err}");
    for verb in ["stat", "delete", "freeze", "thaw"] {
        let err = cpu_err(&c, &[verb, "ghost"]);
        assert!(
            err.contains("ghost") && err.contains("not found"),
            "{verb}: {err}"
        );
    }
    let err = cpu_err(&c, &["attach", "ghost", "1"]);
    assert!(err.contains("ghost"), "{err}");
    let err = cpu_err(&c, &["set", "ghost", "--shares", "100"]);
    assert!(err.contains("ghost"), "{err}");

    assert_eq!(c.server_pid(CPU), pid, "the server stayed up");
    assert!(list(&c).is_empty());
    for ctl in ["cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"] {
        let base = c.cgroup_base(ctl).unwrap();
        let leftovers: Vec<_> = asterism_tests::subdirs(&base);
        assert!(
            leftovers.is_empty(),
            "{ctl}: {leftovers:?} left under {}",
            base.display()
        );
    }
}

#[test]
fn sigkill_loses_nothing_and_a_request_during_the_restart_lands_once() {
    let c = Constellation::start();
    cpu_ok(
        &c,
        &[
            "create", "a", "--shares", "300", "--quota", "50000", "--period", "100000",
        ],
    );
    cpu_ok(
        &c,
        &[
            "create",
            "b",
            "--parent",
            "a",
            "--cpus",
            "0",
            "--pids-max",
            "20",
        ],
    );
    cpu_ok(&c, &["create", "cold"]);
    let hog = Hog::sleep();
    cpu_ok(&c, &["attach", "cold", &hog.pid().to_string()]);
    cpu_ok(&c, &["freeze", "cold"]);
    let before = list(&c);

    let new_pid = c.kill_server(CPU);
    assert_eq!(
        list(&c),
        before,
        "same groups, same limits after the restart"
    );
    assert_eq!(stat(&c, "cold")["frozen"], true, "kernel state survived");
    assert_eq!(stat(&c, "cold")["pids"][0], hog.pid());

    // Kill it again and send requests at once: the client retries until the
    // restarted server answers, and each is applied once.
    kill(new_pid, libc::SIGKILL);
    cpu_ok(&c, &["create", "late", "--shares", "700"]);
    assert_ne!(c.server_pid(CPU), new_pid);
    let lates: Vec<_> = list(&c).into_iter().filter(|g| g["id"] == "late").collect();
    assert_eq!(lates.len(), 1);
    assert_eq!(lates[0]["shares"], 700);

    let pid = c.server_pid(CPU);
    kill(pid, libc::SIGKILL);
    cpu_ok(&c, &["thaw", "cold"]);
    assert_eq!(stat(&c, "cold")["frozen"], false);
    let pid = c.server_pid(CPU);
    kill(pid, libc::SIGKILL);
    cpu_ok(&c, &["delete", "b"]);
    assert!(group(&c, "b").is_none());
    assert!(!cgroup_dir(&c, "cpu", "a/b").exists());
    assert!(c.server(CPU)["restarts"].as_u64().unwrap() >= 3);

    drop(hog);
    for id in ["late", "cold", "a"] {
        cpu_ok(&c, &["delete", id]);
    }
}
