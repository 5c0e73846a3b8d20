//! Fault injection across the OCI lifecycle: SIGKILL init and every server
//! while containers are created, started, run and deleted. Running
//! containers keep running with their limits; afterwards `ipc list` shows
//! every container with its right status, no create is left half-done, and
//! deleting everything leaves no cgroup, mount or state behind.

use asterism_tests::{alive, kill, server_pid_file, Bundle, CgroupsPathPrefix, Constellation};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUN_FOR: Duration = Duration::from_secs(10);
const VICTIMS: [&str; 5] = [
    "init",
    "memory-controller",
    "cpu-controller",
    "vfs-overlay",
    "netstack",
];

fn ipc(root: &Path, args: &[&str]) -> std::process::Output {
    asterism_tests::run_to_files(
        Command::new(asterism_tests::bin("ipc"))
            .arg("--root")
            .arg(root)
            .args(args),
    )
}

fn ok(out: &std::process::Output) -> bool {
    if !out.status.success() {
        eprintln!(
            "  not acknowledged: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    out.status.success()
}

/// A bundle of its own for `id`, in `dir`: `template`'s config (its rootfs
/// by absolute path) with the cgroupsPath `<at>/<id>`.
fn bundle_at(template: &Path, dir: &Path, at: &str, id: &str) -> PathBuf {
    let text = std::fs::read_to_string(template.join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&text).unwrap();
    config["root"]["path"] = json!(template.join("rootfs"));
    config["linux"]["cgroupsPath"] = json!(format!("{at}/{id}"));
    let b = dir.join(id);
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("config.json"), config.to_string()).unwrap();
    b
}

/// What one client saw acknowledged: id -> expected status ("running"), or
/// gone (deleted). With `at` (a relative cgroupsPath prefix and a scratch
/// directory), each container it keeps gets a cgroupsPath of its own.
fn client(
    root: PathBuf,
    bundle: PathBuf,
    short: PathBuf,
    k: usize,
    stop: Arc<AtomicBool>,
    at: Option<(String, PathBuf)>,
) -> (BTreeMap<String, &'static str>, usize) {
    let mut acked = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(k as u64 + 99);
    let mut expect = BTreeMap::new();
    let b = bundle.to_str().unwrap();
    let short = short.to_str().unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let id = format!("f{k}-{n}");
        match rng.gen_range(0..3) {
            0 => {
                // create + start, keep it
                let own = at
                    .as_ref()
                    .map(|(prefix, dir)| bundle_at(&bundle, dir, prefix, &id));
                let b = own.as_deref().map_or(b, |p| p.to_str().unwrap());
                if ok(&ipc(&root, &["create", "--bundle", b, &id]))
                    && ok(&ipc(&root, &["start", &id]))
                {
                    expect.insert(id, "running");
                }
            }
            1 => {
                // a short run in the foreground: gone afterwards when it succeeds
                if ok(&ipc(&root, &["run", "--bundle", short, &id])) {
                    acked += 1;
                }
            }
            _ => {
                // delete one of ours
                if let Some(victim) = expect.keys().next().cloned() {
                    if ok(&ipc(&root, &["delete", "--force", &victim])) {
                        expect.remove(&victim);
                        acked += 1;
                    }
                }
            }
        }
    }
    (expect, acked)
}

#[test]
fn sigkill_init_and_servers_during_the_lifecycle() {
    let mut c = Constellation::start_with(&["--max-restarts", "1000", "--restart-window", "1"]);
    let root = c.root().to_path_buf();
    // Long-lived containers with limits, made before the storm.
    let keeper = Bundle::busybox_with(
        &["sleep", "600"],
        json!({"linux": {"resources": {"memory": {"limit": 50331648}}}}),
    );
    for id in ["keep1", "keep2"] {
        c.ipc_ok(&["run", "-d", "--bundle", keeper.path().to_str().unwrap(), id]);
    }
    let keep_pids: Vec<i32> = ["keep1", "keep2"]
        .iter()
        .map(|id| c.ipc_json(&["state", id])["pid"].as_i64().unwrap() as i32)
        .collect();

    // Containers in the storm run `sh -c 'sleep 60'` so that started ones stay running.
    let storm = Bundle::busybox_with(&["sleep", "60"], json!({}));
    let short = Bundle::busybox_with(&["true"], json!({}));
    let stop = Arc::new(AtomicBool::new(false));
    // Client 1's containers are placed by cgroupsPath, below parents the
    // controllers make (and journal before they make them).
    let prefix = CgroupsPathPrefix::new("storm");
    let scratch = tempfile::tempdir().unwrap();
    let clients: Vec<_> = (0..2)
        .map(|k| {
            let (root, bundle, stop) = (root.clone(), storm.path().to_path_buf(), stop.clone());
            let short = short.path().to_path_buf();
            let at =
                (k == 1).then(|| (format!("{}/pod", prefix.name), scratch.path().to_path_buf()));
            std::thread::spawn(move || client(root, bundle, short, k, stop, at))
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let started = Instant::now();
    let mut kills = BTreeMap::<&str, u32>::new();
    while started.elapsed() < RUN_FOR {
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..700)));
        // init a third of the time, a server otherwise.
        let victim = if rng.gen_range(0..3) == 0 {
            "init"
        } else {
            VICTIMS[rng.gen_range(1..VICTIMS.len())]
        };
        if victim == "init" {
            // Killed and not restarted by us: the next OCI command starts
            // a new init itself, which adopts the servers.
            c.kill_init();
            if let Ok(text) = std::fs::read_to_string(root.join("init.pid")) {
                if let Ok(pid) = text.trim().parse::<i32>() {
                    kill(pid, libc::SIGKILL);
                }
            }
        } else if let Some(pid) = server_pid_file(&root, victim) {
            kill(pid, libc::SIGKILL);
        }
        *kills.entry(victim).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(BTreeMap<String, &str>, usize)> =
        clients.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!("kills: {kills:?}");
    for (k, (e, acked)) in results.iter().enumerate() {
        eprintln!(
            "client {k}: {acked} operations acknowledged, {} containers left running",
            e.len()
        );
        assert!(
            *acked >= 5,
            "client {k} made too little progress: the storm proved nothing"
        );
    }
    let expected: Vec<&BTreeMap<String, &str>> = results.iter().map(|(e, _)| e).collect();

    // Settle: any OCI command brings init back; in-flight creates resolve.
    let list = asterism_tests::wait_for(Duration::from_secs(20), || {
        let out = ipc(&root, &["list", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        // runc's (and our) list of no containers is `null`.
        let v = if v.is_null() {
            serde_json::json!([])
        } else {
            v
        };
        let creating = v.as_array()?.iter().any(|s| s["status"] == "creating");
        (!creating).then_some(v)
    })
    .expect("every create in flight completes or is rolled back");
    let status: BTreeMap<String, String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    eprintln!("after the storm: {status:?}");
    for pid in &keep_pids {
        assert!(alive(*pid), "a running container died in the storm");
    }
    for id in ["keep1", "keep2"] {
        assert_eq!(status.get(id).map(String::as_str), Some("running"), "{id}");
        let mem = c.ipc_json(&["memory-controller", "stat", id, "--json"]);
        assert_eq!(mem["limit_bytes"], 50331648, "{id} keeps its limit");
    }
    for e in expected.iter().copied() {
        for (id, want) in e {
            assert_eq!(
                status.get(id).map(String::as_str),
                Some(*want),
                "acknowledged container {id}"
            );
        }
    }

    // Delete everything; nothing may be left.
    for id in status.keys() {
        let out = ipc(&root, &["delete", "--force", id]);
        assert!(
            ok(&out),
            "delete {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let left = ipc(&root, &["list", "-q"]);
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers left"
    );
    let dirs: Vec<_> = std::fs::read_dir(root.join("containers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let inside: Vec<_> = dirs
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(root.join("containers").join(d))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
        })
        .collect();
    assert!(dirs.is_empty(), "state left: {dirs:?} holding {inside:?}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(root.to_str().unwrap()),
        "mounts left under the root"
    );
    for ctl in &asterism_tests::hierarchies() {
        if let Some(base) = c.cgroup_base(ctl) {
            let groups: Vec<_> = asterism_tests::subdirs(&base);
            assert!(groups.is_empty(), "{ctl}: groups left {groups:?}");
        }
    }
    // Stopped as a person would (SIGTERM to whichever init runs now), the
    // servers remove the cgroupsPath parents they made: nothing of client
    // 1's placement is left either.
    let servers: Vec<i32> = protocol::SERVERS
        .iter()
        .filter_map(|s| server_pid_file(&root, s))
        .collect();
    c.stop();
    if let Ok(text) = std::fs::read_to_string(root.join("init.pid")) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            kill(pid, libc::SIGTERM);
        }
    }
    let gone = asterism_tests::wait_for(Duration::from_secs(10), || {
        servers.iter().all(|p| !alive(*p)).then_some(())
    });
    assert!(gone.is_some(), "the servers did not stop");
    for ctl in &asterism_tests::hierarchies() {
        if let Some(top) = prefix.host_dir(ctl, "") {
            assert!(!top.exists(), "{ctl}: {} left", top.display());
        }
    }
}
