//! memory-controller end to end: the real init, servers and `ipc`, on this
//! host's real memory cgroups (under this test process's own cgroup).

use asterism_tests::{alive, kill, Constellation, Hog};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

const MC: &str = "memory-controller";
const MIB: u64 = 1 << 20;

fn mc(c: &Constellation, args: &[&str]) -> String {
    let mut all = vec![MC];
    all.extend_from_slice(args);
    c.ipc_ok(&all)
}

fn mc_err(c: &Constellation, args: &[&str]) -> String {
    let mut all = vec![MC];
    all.extend_from_slice(args);
    c.ipc_err(&all)
}

fn mc_json(c: &Constellation, args: &[&str]) -> Value {
    let out = mc(c, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

fn stat(c: &Constellation, id: &str) -> Value {
    mc_json(c, &["stat", id, "--json"])
}

/// id -> group object from `list --json`.
fn list(c: &Constellation) -> Vec<Value> {
    mc_json(c, &["list", "--json"])["groups"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn group(c: &Constellation, id: &str) -> Value {
    list(c)
        .into_iter()
        .find(|g| g["id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed"))
}

/// Directories under the constellation's memory base (recursively, relative).
fn cgroup_dirs(c: &Constellation) -> Vec<String> {
    fn walk(dir: &std::path::Path, rel: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let name = format!("{rel}{}", e.file_name().to_string_lossy());
                out.push(name.clone());
                walk(&e.path(), &format!("{name}/"), out);
            }
        }
    }
    let mut out = vec![];
    if let Some(base) = c.cgroup_base("memory") {
        walk(&base, "", &mut out);
    }
    out.sort();
    out
}

/// `ipc memory-controller events ...`, killed (by pid) on drop.
struct Events {
    child: Child,
    lines: Receiver<String>,
}

impl Events {
    fn start(c: &Constellation, id: &str) -> Events {
        let mut child = c
            .ipc_cmd()
            .args([MC, "events", id])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ipc events");
        let (err_tx, err_rx) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = err_tx.send(l);
            }
        });
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let first = err_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        assert!(
            first.contains("watching"),
            "ipc events did not subscribe: {first:?}"
        );
        Events { child, lines }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn create_set_stat_list_delete() {
    let c = Constellation::start();
    let out = mc(
        &c,
        &["create", "web", "--limit", "64M", "--reservation", "16M"],
    );
    assert!(out.contains("limit_bytes: 67108864"), "{out}");
    let g = group(&c, "web");
    assert_eq!(g["limit_bytes"], 64 * MIB);
    assert_eq!(g["reservation_bytes"], 16 * MIB);
    assert!(g["path"].as_str().unwrap().ends_with("/web"), "{g}");

    let st = stat(&c, "web");
    assert_eq!(st["id"], "web");
    assert_eq!(st["limit_bytes"], 64 * MIB);
    for key in ["usage_bytes", "peak_bytes", "oom_events", "oom_kills"] {
        assert!(st[key].is_u64(), "{key} missing: {st}");
    }
    assert!(
        st["counters"].as_object().is_some_and(|m| !m.is_empty()),
        "{st}"
    );
    let human = mc(&c, &["stat", "web"]);
    assert!(
        human.contains("limit_bytes: 67108864") && human.contains("usage_bytes: "),
        "{human}"
    );

    mc(&c, &["set", "web", "--limit", "128M"]);
    assert_eq!(group(&c, "web")["limit_bytes"], 128 * MIB);
    assert_eq!(
        group(&c, "web")["reservation_bytes"],
        16 * MIB,
        "set keeps what it was not given"
    );
    mc(&c, &["set", "web", "--limit", "max"]);
    assert_eq!(group(&c, "web")["limit_bytes"], "max");
    assert!(mc(&c, &["list"]).contains("web"));

    mc(&c, &["delete", "web"]);
    assert!(list(&c).is_empty());
    assert!(cgroup_dirs(&c).is_empty(), "{:?}", cgroup_dirs(&c));
}

#[test]
fn oom_kill_reaches_events_and_stat() {
    let c = Constellation::start();
    mc(&c, &["create", "hog", "--limit", "32M", "--swap", "32M"]);
    mc(&c, &["create", "bystander", "--limit", "32M"]);
    let other = Events::start(&c, "bystander");
    let events = Events::start(&c, "hog");
    let mut hog = Hog::mem(64);
    mc(&c, &["attach", "hog", &hog.pid().to_string()]);
    hog.go();
    let status = hog
        .wait_exit(Duration::from_secs(30))
        .expect("the hog was not killed");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let line = events
        .lines
        .recv_timeout(Duration::from_secs(10))
        .expect("no OOM event");
    let ev: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    assert_eq!(ev["type"], "oom");
    assert_eq!(ev["id"], "hog");
    assert!(ev["oom_kills"].as_u64().unwrap() >= 1, "{ev}");
    assert!(ev["oom_events"].as_u64().unwrap() >= 1, "{ev}");
    let st = stat(&c, "hog");
    assert!(st["oom_events"].as_u64().unwrap() >= 1, "{st}");
    assert!(st["oom_kills"].as_u64().unwrap() >= 1, "{st}");
    // a subscriber to another group heard nothing
    assert!(other.lines.try_recv().is_err());
    assert_eq!(stat(&c, "bystander")["oom_events"], 0);
    mc(&c, &["delete", "hog"]);
}

#[test]
fn events_of_an_unknown_group_is_refused() {
    let c = Constellation::start();
    let err = mc_err(&c, &["events", "ghost"]);
    assert!(
        err.contains("ghost") && err.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn hierarchical_usage_and_check_before_update() {
    let c = Constellation::start();
    mc(&c, &["create", "pod", "--limit", "256M"]);
    mc(&c, &["create", "web", "--parent", "pod", "--limit", "128M"]);
    assert_eq!(group(&c, "web")["parent"], "pod");
    assert_eq!(
        cgroup_dirs(&c),
        vec!["pod".to_string(), "pod/web".to_string()]
    );
    let mut hog = Hog::mem(24);
    mc(&c, &["attach", "web", &hog.pid().to_string()]);
    hog.go();
    assert_eq!(
        hog.read_line(Duration::from_secs(20)).as_deref(),
        Some("allocated")
    );
    let (web, pod) = (stat(&c, "web"), stat(&c, "pod"));
    let wu = web["usage_bytes"].as_u64().unwrap();
    let pu = pod["usage_bytes"].as_u64().unwrap();
    assert!(wu >= 24 * MIB, "web uses {wu}");
    // v1 charges in per-CPU batches of 64 pages, and the two reads are
    // apart in time: the parent may lag the child by a batch or so.
    assert!(
        pu + MIB >= wu,
        "the parent's usage {pu} must include the child's {wu}"
    );
    assert!(
        web["pids"]
            .as_array()
            .unwrap()
            .contains(&Value::from(hog.pid())),
        "{web}"
    );
    assert!(web["peak_bytes"].as_u64().unwrap() >= 24 * MIB);

    let err = mc_err(
        &c,
        &["set", "web", "--limit", "8M", "--check-before-update"],
    );
    assert!(
        err.contains("below its current usage") && err.contains("web"),
        "{err}"
    );
    assert_eq!(group(&c, "web")["limit_bytes"], 128 * MIB);
    mc(
        &c,
        &["set", "web", "--limit", "64M", "--check-before-update"],
    );
    assert_eq!(group(&c, "web")["limit_bytes"], 64 * MIB);

    let err = mc_err(&c, &["delete", "pod"]);
    assert!(err.contains("child groups web"), "{err}");
    mc(&c, &["delete", "web", "--force"]);
    mc(&c, &["delete", "pod"]);
    assert!(cgroup_dirs(&c).is_empty());
}

#[test]
fn delete_refuses_while_processes_remain_unless_forced() {
    let c = Constellation::start();
    mc(&c, &["create", "busy", "--limit", "64M"]);
    let mut hog = Hog::sleep();
    let pid = hog.pid();
    mc(&c, &["attach", "busy", &pid.to_string()]);
    let err = mc_err(&c, &["delete", "busy"]);
    assert!(
        err.contains(&pid.to_string()) && err.contains("--force"),
        "{err}"
    );
    assert!(alive(pid));
    assert_eq!(cgroup_dirs(&c), vec!["busy".to_string()]);
    mc(&c, &["delete", "busy", "--force"]);
    assert!(
        hog.wait_exit(Duration::from_secs(5)).is_some(),
        "--force did not kill {pid}"
    );
    assert!(cgroup_dirs(&c).is_empty());
    assert!(list(&c).is_empty());
}

#[test]
fn bad_input_is_refused_clearly_and_leaves_nothing() {
    let c = Constellation::start();
    let pid = c.server_pid(MC);
    let long = "x".repeat(200);
    for id in ["../x", "a/b", "", long.as_str()] {
        let err = mc_err(&c, &["create", id, "--limit", "64M"]);
        assert!(err.contains("group id"), "{id}: {err}");
    }
    let err = mc_err(&c, &["create", "ok", "--parent", "../up"]);
    assert!(err.contains("parent group id"), "{err}");
    for size in ["12Q", "-1"] {
        let err = mc_err(&c, &["create", "ok", "--limit", size]);
        assert!(err.contains(size) && err.contains("size"), "{size}: {err}");
    }
    let err = mc_err(&c, &["create", "ok", "--swappiness", "200"]);
    assert!(err.contains("swappiness"), "{err}");
    let err = mc_err(&c, &["stat", "ghost"]);
    assert!(
        err.contains("ghost") && err.contains("does not exist"),
        "{err}"
    );

    mc(&c, &["create", "real", "--limit", "64M"]);
    let err = mc_err(&c, &["attach", "real", "999999999"]);
    assert!(err.contains("no process with pid 999999999"), "{err}");
    let err = mc_err(&c, &["attach", "ghost", "1"]);
    assert!(err.contains("ghost"), "{err}");
    let err = mc_err(&c, &["create", "real", "--limit", "32M"]);
    assert!(err.contains("already exists"), "{err}");

    assert_eq!(
        c.server_pid(MC),
        pid,
        "the server must stay up with the same pid"
    );
    assert_eq!(cgroup_dirs(&c), vec!["real".to_string()]);
    let ids: Vec<Value> = list(&c).iter().map(|g| g["id"].clone()).collect();
    assert_eq!(ids, vec![Value::from("real")]);
}

#[test]
fn groups_survive_a_sigkill_and_a_request_sent_meanwhile_is_applied_once() {
    let c = Constellation::start();
    mc(
        &c,
        &["create", "a", "--limit", "32M", "--reservation", "8M"],
    );
    mc(
        &c,
        &[
            "create", "b", "--parent", "a", "--limit", "16M", "--swap", "24M",
        ],
    );
    let before = list(&c);
    let old = c.server_pid(MC);
    kill(old, libc::SIGKILL);
    // Sent while the server is down or restarting: the client retries.
    let out = mc(&c, &["create", "late", "--limit", "8M"]);
    assert!(out.contains("id: late"), "{out}");
    let new = c.server_pid(MC);
    assert_ne!(old, new, "memory-controller was not restarted");
    let after = list(&c);
    for g in &before {
        let same = after
            .iter()
            .find(|x| x["id"] == g["id"])
            .unwrap_or_else(|| panic!("{} lost", g["id"]));
        assert_eq!(same, g, "group changed across the restart");
    }
    let late: Vec<&Value> = after.iter().filter(|g| g["id"] == "late").collect();
    assert_eq!(late.len(), 1, "{after:?}");
    assert_eq!(late[0]["limit_bytes"], 8 * MIB);
    assert_eq!(after.len(), 3);
    assert_eq!(cgroup_dirs(&c), vec!["a", "a/b", "late"]);
    // The same create again is idempotent; a different one is refused.
    mc(&c, &["create", "late", "--limit", "8M"]);
    assert!(mc_err(&c, &["create", "late", "--limit", "9M"]).contains("already exists"));
    assert_eq!(list(&c).len(), 3);
}
