//! `ipc` and Debian's runc side by side on one bundle: the same commands
//! in the same order give the same exit codes, the same state and list
//! documents (but for what differs by nature: the pid, the time, the spec
//! version each implements) and runc's error wording.

use asterism_tests::{Bundle, CgroupsPathPrefix, Constellation};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

/// One command's exit code, stdout and stderr.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Output goes to files, not pipes (`run_to_files`): a created container
/// keeps the stdio it was given, and would hold a pipe open after its
/// runtime exits.
fn ran(cmd: &mut Command) -> Ran {
    let out = asterism_tests::run_to_files(cmd);
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A state document with what differs by nature set aside.
fn normal(mut v: Value) -> Value {
    for key in ["ociVersion", "pid", "created"] {
        if v.get(key).is_some() {
            v[key] = json!("-");
        }
    }
    v
}

/// Runs the script against one runtime (`runtime` and its global flags)
/// and returns what each step gave: (what, code, normalized output).
fn script(runtime: &[&str], bundle: &Path, bundles: &Bundles) -> Vec<(String, i32, String)> {
    let b = bundle.to_str().unwrap();
    let run = |args: &[&str]| ran(Command::new(runtime[0]).args(&runtime[1..]).args(args));
    let mut seen = Vec::new();
    let mut step = |what: &str, args: &[&str], shown: &dyn Fn(&Ran) -> String| {
        let r = run(args);
        seen.push((what.to_string(), r.code, shown(&r)));
        r
    };
    let json_of = |r: &Ran| -> String {
        match serde_json::from_str::<Value>(&r.stdout) {
            Ok(Value::Array(a)) => Value::Array(a.into_iter().map(normal).collect()).to_string(),
            Ok(v) => normal(v).to_string(),
            Err(_) => format!("not JSON: {}{}", r.stdout, r.stderr),
        }
    };
    let nothing = |_: &Ran| String::new();
    // The error message, as runc words it (the part the engines match).
    let says = |phrase: &'static str| {
        move |r: &Ran| match r.stderr.contains(phrase) {
            true => phrase.to_string(),
            false => format!("stderr without {phrase:?}: {}", r.stderr),
        }
    };
    step("create", &["create", "--bundle", b, "par1"], &nothing);
    step(
        "create again",
        &["create", "--bundle", b, "par1"],
        &says("already exists"),
    );
    step("state", &["state", "par1"], &json_of);
    step("list json", &["list", "--format", "json"], &json_of);
    // The columns, and each row's cells but the pid and the time (the
    // widths follow the cells: runc's time has no trailing zeros).
    step("list table", &["list"], &|r: &Ran| {
        let rows = r.stdout.lines().map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            match cells.first() {
                Some(&"ID") => cells.join(" "),
                _ => [cells[0], cells[2], cells[3], cells[5]].join(" "),
            }
        });
        rows.collect::<Vec<_>>().join("\n")
    });
    step("list -q", &["list", "-q"], &|r: &Ran| r.stdout.clone());
    step("start", &["start", "par1"], &nothing);
    step(
        "start again",
        &["start", "par1"],
        &says("cannot start an already running container"),
    );
    step(
        "ps json",
        &["ps", "--format", "json", "par1"],
        &|r: &Ran| {
            let pids: Vec<i64> = serde_json::from_str(&r.stdout).unwrap_or_default();
            format!("{} pids", pids.len())
        },
    );
    step("ps table header", &["ps", "par1"], &|r: &Ran| {
        r.stdout.lines().next().unwrap_or_default().to_string()
    });
    step(
        "delete running",
        &["delete", "par1"],
        &says("cannot delete container par1 that is not stopped: running"),
    );
    step(
        "kill unknown signal",
        &["kill", "par1", "FOO"],
        &says("unknown signal"),
    );
    step("kill", &["kill", "par1", "KILL"], &nothing);
    let stopped = asterism_tests::wait_for(std::time::Duration::from_secs(10), || {
        let r = run(&["state", "par1"]);
        r.stdout.contains("\"stopped\"").then_some(())
    });
    assert!(stopped.is_some(), "{runtime:?}: par1 never stopped");
    step("state stopped", &["state", "par1"], &json_of);
    step(
        "kill stopped",
        &["kill", "par1", "KILL"],
        &says("container not running"),
    );
    step(
        "start stopped",
        &["start", "par1"],
        &says("cannot start a container that has stopped"),
    );
    step("delete", &["delete", "par1"], &nothing);
    step(
        "state gone",
        &["state", "par1"],
        &says("container does not exist"),
    );
    step(
        "kill gone",
        &["kill", "par1", "KILL"],
        &says("container does not exist"),
    );
    step(
        "delete gone",
        &["delete", "par1"],
        &says("container does not exist"),
    );
    step(
        "delete --force gone",
        &["delete", "--force", "par1"],
        &nothing,
    );
    step("list empty", &["list", "--format", "json"], &json_of);

    // run in the foreground, exec, pause and resume, forced delete.
    let exit3 = bundles.exit3.to_str().unwrap();
    let missing = bundles.missing.to_str().unwrap();
    step("run exit 3", &["run", "--bundle", exit3, "par2"], &nothing);
    step(
        "run missing command",
        &["run", "--bundle", missing, "par3"],
        &says("executable file not found in $PATH"),
    );
    step(
        "state after failed run",
        &["state", "par3"],
        &says("container does not exist"),
    );
    step("bad id", &["create", "--bundle", b, "a/b"], &nothing);
    step("run -d", &["run", "-d", "--bundle", b, "par4"], &nothing);
    step(
        "events --stats",
        &["events", "--stats", "par4"],
        &stats_shape,
    );
    // update, read back from inside through the container's cgroup mount.
    let limits = "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max \
                  /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us \
                  /sys/fs/cgroup/cpu/cpu.shares 2>&1";
    let out = |r: &Ran| r.stdout.clone();
    step(
        "update",
        &[
            "update",
            "--memory",
            "52428800",
            "--pids-limit",
            "30",
            "--cpu-quota",
            "20000",
            "--cpu-period",
            "100000",
            "--cpu-share",
            "512",
            "par4",
        ],
        &nothing,
    );
    step(
        "limits after update",
        &["exec", "par4", "sh", "-c", limits],
        &out,
    );
    let resources = bundles.resources.to_str().unwrap();
    step("update -r", &["update", "-r", resources, "par4"], &nothing);
    step(
        "limits after update -r",
        &["exec", "par4", "sh", "-c", limits],
        &out,
    );
    step(
        "update of a bad value",
        &["update", "--pids-limit", "x", "par4"],
        &nothing,
    );
    step(
        "update gone",
        &["update", "--memory", "1", "nosuch"],
        &nothing,
    );
    // Command lines refused before anything runs: runc's (urfave/cli's)
    // exit codes, 3 for an unknown command and 1 for the rest.
    step("unknown command", &["nosuchcmd"], &nothing);
    step("missing id", &["state"], &nothing);
    step("unknown flag", &["list", "--bogus"], &nothing);
    step("help", &["--help"], &nothing);
    step("no command", &[], &nothing);
    step(
        "exec exit 5",
        &["exec", "par4", "sh", "-c", "exit 5"],
        &nothing,
    );
    step(
        "exec missing command",
        &["exec", "par4", "nosuchcmd"],
        &says("executable file not found in $PATH"),
    );
    step("pause", &["pause", "par4"], &nothing);
    step("state paused", &["state", "par4"], &json_of);
    step("resume", &["resume", "par4"], &nothing);
    step("resume running", &["resume", "par4"], &says("not paused"));
    step("kill --all", &["kill", "--all", "par4", "TERM"], &nothing);
    step("delete --force", &["delete", "--force", "par4"], &nothing);
    step("list empty again", &["list", "--format", "json"], &json_of);
    seen
}

/// The fields of a stats event (every path to a value), without one ipc
/// does not report (runc's network_interfaces, always null in runc 1.1) or
/// adds (oom_kills), and without those whose presence follows the
/// container's own I/O (memory.cache, the blkio lists), which runc leaves
/// out when they are 0 or empty.
fn stats_shape(r: &Ran) -> String {
    fn paths(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m
                .iter()
                .for_each(|(k, x)| paths(x, format!("{at}/{k}"), out)),
            Value::Array(_) => out.push(format!("{at}[]")),
            _ => out.push(at),
        }
    }
    let Ok(v) = serde_json::from_str::<Value>(&r.stdout) else {
        return format!("not JSON: {}{}", r.stdout, r.stderr);
    };
    let mut out = vec![];
    paths(&v, String::new(), &mut out);
    let gaps = [
        "/data/blkio/",
        "/data/network_interfaces",
        "/data/memory/cache",
    ];
    out.retain(|p| !gaps.iter().any(|g| p.starts_with(g)) && p != "/data/memory/oom_kills");
    out.sort();
    out.join(" ")
}

/// The script's bundles: `sleep 60`, `exit 3`, a command the rootfs
/// lacks; and a resources document for `update -r`.
struct Bundles {
    exit3: std::path::PathBuf,
    missing: std::path::PathBuf,
    resources: std::path::PathBuf,
}

#[test]
fn the_command_line_answers_as_runcs_does() {
    if Command::new("runc").arg("--version").output().is_err() {
        panic!("runc is missing: apt-get install runc (scripts/test.sh does)");
    }
    let c = Constellation::start();
    let prefix = CgroupsPathPrefix::new("cli-parity");
    let bundle = Bundle::busybox_with(
        &["sleep", "60"],
        json!({"linux": {"cgroupsPath": format!("{}/par1", prefix.name)}}),
    );
    let with = |args: &[&str], id: &str| {
        Bundle::busybox_with(
            args,
            json!({"linux": {"cgroupsPath": format!("{}/{id}", prefix.name)}}),
        )
    };
    let (exit3, missing) = (
        with(&["sh", "-c", "exit 3"], "par2"),
        with(&["nosuchcmd"], "par3"),
    );
    let resources = exit3.path().join("resources.json");
    let doc = json!({"memory": {"limit": 41943040}, "pids": {"limit": 20}, "cpu": {"shares": 256}});
    std::fs::write(&resources, doc.to_string()).unwrap();
    let bundles = Bundles {
        exit3: exit3.path().to_path_buf(),
        missing: missing.path().to_path_buf(),
        resources,
    };
    let runc_root = tempfile::tempdir().unwrap();
    let runc = ["runc", "--root", runc_root.path().to_str().unwrap()];
    let ipc = asterism_tests::bin("ipc");
    let ours = [ipc.to_str().unwrap(), "--root", c.root().to_str().unwrap()];
    let theirs = script(&runc, bundle.path(), &bundles);
    let mine = script(&ours, bundle.path(), &bundles);
    let differ: Vec<String> = theirs
        .iter()
        .zip(&mine)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{}:\n  runc: {} {}\n  ipc:  {} {}", a.0, a.1, a.2, b.1, b.2))
        .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n"));
}
