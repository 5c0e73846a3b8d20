//! `linux.cgroupsPath` end to end through `ipc`: the container's groups
//! are made where the path leads (relative: below the cgroup of the process
//! that started the constellation, as runc puts them below its own), with
//! their limits, found again by restarted controllers, and removed by
//! `delete`; the parents the creates made go when the constellation stops.
//! Bad paths are refused by name and leave nothing behind.

use asterism_tests::{alive, Bundle, CgroupsPathPrefix, Constellation, Hog};
use serde_json::json;
use std::path::Path;

/// The controllers asterism manages that are mounted here.
fn ours() -> Vec<&'static str> {
    let hier = cgroupfs::Hierarchies::discover().unwrap();
    [
        "memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "devices",
    ]
    .into_iter()
    .filter(|c| hier.get(c).is_ok())
    .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// The cgroup path of `ctl` in a /proc/PID/cgroup text.
fn group_of(cgroup_file: &str, ctl: &str) -> String {
    cgroup_file
        .lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            names.split(',').any(|n| n == ctl).then(|| path.to_string())
        })
        .unwrap_or_else(|| panic!("no {ctl} line in\n{cgroup_file}"))
}

fn pid_of(c: &Constellation, id: &str) -> i32 {
    c.ipc_json(&["state", id])["pid"].as_i64().unwrap() as i32
}

fn no_state(c: &Constellation, id: &str) {
    assert!(
        !c.root().join("containers").join(id).exists(),
        "{id}: a refused create left its state behind"
    );
    let list = c.ipc_ok(&["list"]);
    assert!(!list.contains(id), "{id} is listed:\n{list}");
}

#[test]
fn a_cgroups_path_places_the_groups_and_delete_removes_what_it_made() {
    let mut c = Constellation::start();
    let prefix = CgroupsPathPrefix::new("place");
    let at = |rel: &str| format!("{}/{rel}", prefix.name);
    let bundle = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {
            "cgroupsPath": at("pod/c1"),
            "resources": {
                "memory": {"limit": 67108864},
                "cpu": {"shares": 512},
                "pids": {"limit": 32}
            }
        }}),
    );
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "at1",
    ]);
    let pid = pid_of(&c, "at1");
    // The limits are in the files at the path, in each hierarchy.
    let dir = |ctl: &str| prefix.host_dir(ctl, "pod/c1").unwrap();
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&dir("cpu").join("cpu.shares")), "512");
    assert_eq!(read(&dir("pids").join("pids.max")), "32");
    // The process is in them, seen from the host and from inside.
    let host_view = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let inside = c.ipc_ok(&["exec", "at1", "cat", "/proc/self/cgroup"]);
    for ctl in ours() {
        for (who, text) in [("container", &host_view), ("exec", &inside)] {
            let g = group_of(text, ctl);
            assert!(
                g.ends_with(&format!("/{}", at("pod/c1"))),
                "{who} {ctl}: {g}"
            );
        }
        assert!(
            std::fs::read_to_string(dir(ctl).join("cgroup.procs"))
                .unwrap()
                .lines()
                .any(|l| l.trim() == pid.to_string()),
            "{ctl}: {pid} is not in {}",
            dir(ctl).display()
        );
    }
    // update, pause and stats reach the groups at the path.
    c.ipc_ok(&["update", "--memory", "96M", "--pids-limit", "64", "at1"]);
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "100663296"
    );
    assert_eq!(read(&dir("pids").join("pids.max")), "64");
    c.ipc_ok(&["pause", "at1"]);
    assert_eq!(read(&dir("freezer").join("freezer.state")), "FROZEN");
    c.ipc_ok(&["resume", "at1"]);
    let ev = c.ipc_json(&["events", "--stats", "at1"]);
    assert!(ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0);
    // A second container beside it, under the same made parent.
    let bundle2 = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {"cgroupsPath": at("pod/c2")}}),
    );
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        bundle2.path().to_str().unwrap(),
        "at2",
    ]);
    let pid2 = pid_of(&c, "at2");
    // Deleting the first keeps the parents the second still needs.
    c.ipc_ok(&["delete", "-f", "at1"]);
    assert!(!alive(pid));
    for ctl in ours() {
        assert!(!dir(ctl).exists(), "{} left behind", dir(ctl).display());
        assert!(prefix.host_dir(ctl, "pod/c2").unwrap().exists());
    }
    c.ipc_ok(&["delete", "-f", "at2"]);
    assert!(!alive(pid2));
    // The parents the creates made stay while the constellation runs (the
    // next container under them would make them again), and go when it
    // stops.
    for ctl in ours() {
        assert!(!prefix.host_dir(ctl, "pod/c2").unwrap().exists());
        assert!(prefix.host_dir(ctl, "pod").unwrap().exists());
    }
    c.stop();
    for ctl in ours() {
        let top = prefix.host_dir(ctl, "").unwrap();
        assert!(!top.exists(), "{} left behind", top.display());
    }
}

#[test]
fn bad_cgroups_paths_are_refused_by_name_and_leave_nothing() {
    let mut c = Constellation::start();
    let prefix = CgroupsPathPrefix::new("bad");
    let with = |path: &str| {
        Bundle::busybox_with(&["sleep", "300"], json!({"linux": {"cgroupsPath": path}}))
    };
    let create = |bundle: &Bundle, id: &str| {
        c.ipc_err(&["create", "--bundle", bundle.path().to_str().unwrap(), id])
    };
    let nothing_made = || {
        for ctl in ours() {
            let top = prefix.host_dir(ctl, "").unwrap();
            let kids: Vec<_> = asterism_tests::subdirs(&top);
            assert!(
                kids.iter().all(|k| k == "busy" || k == "dup"),
                "{ctl}: {kids:?} in {}",
                top.display()
            );
        }
    };
    // Climbing out, by the config check before anything is asked.
    let e = create(&with(&format!("{}/../x", prefix.name)), "bad1");
    assert!(
        e.contains("linux.cgroupsPath") && e.contains("\"..\""),
        "{e}"
    );
    no_state(&c, "bad1");
    // Into the constellation's own base, by the controllers.
    let base = cgroupfs::Base::dir_name(c.root());
    let e = create(&with(&format!("{base}/x")), "bad2");
    assert!(
        e.contains("linux.cgroupsPath") && e.contains("own cgroup"),
        "{e}"
    );
    no_state(&c, "bad2");
    let base_dir = c.cgroup_base("memory").unwrap();
    assert!(!base_dir.join("x").exists() && !base_dir.join("bad2").exists());
    // A directory that already holds someone else's process.
    let busy = prefix.host_dir("memory", "busy").unwrap();
    std::fs::create_dir_all(&busy).unwrap();
    let hog = Hog::sleep();
    std::fs::write(busy.join("cgroup.procs"), hog.pid().to_string()).unwrap();
    let e = create(&with(&format!("{}/busy", prefix.name)), "bad3");
    assert!(e.contains("already holds processes"), "{e}");
    no_state(&c, "bad3");
    assert!(
        alive(hog.pid()),
        "a refused create killed the process that was there"
    );
    drop(hog);
    nothing_made();
    // The path of another container.
    let dup = with(&format!("{}/dup", prefix.name));
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        dup.path().to_str().unwrap(),
        "dup1",
    ]);
    let e = create(&dup, "dup2");
    assert!(e.contains("already the") && e.contains("dup1"), "{e}");
    no_state(&c, "dup2");
    assert_eq!(c.ipc_json(&["state", "dup1"])["status"], "running");
    nothing_made();
    c.ipc_ok(&["delete", "-f", "dup1"]);
    c.stop();
    for ctl in ours() {
        let top = prefix.host_dir(ctl, "dup").unwrap();
        assert!(!top.exists(), "{} left behind", top.display());
    }
}

/// SIGKILL both controllers while a container at a cgroupsPath runs: it
/// keeps running with its limits, the restarted servers find its groups
/// at the path (update and delete reach them), and delete leaves nothing.
#[test]
fn killed_controllers_find_a_cgroups_path_container_again() {
    let mut c = Constellation::start();
    let prefix = CgroupsPathPrefix::new("fault");
    let bundle = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {
            "cgroupsPath": format!("{}/pod/c1", prefix.name),
            "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 32}}
        }}),
    );
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "f1",
    ]);
    let pid = pid_of(&c, "f1");
    let dir = |ctl: &str| prefix.host_dir(ctl, "pod/c1").unwrap();
    c.kill_server("memory-controller");
    c.kill_server("cpu-controller");
    assert!(alive(pid));
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&dir("pids").join("pids.max")), "32");
    assert_eq!(c.ipc_json(&["state", "f1"])["status"], "running");
    c.ipc_ok(&["update", "--memory", "80M", "--pids-limit", "16", "f1"]);
    assert_eq!(
        read(&dir("memory").join("memory.limit_in_bytes")),
        "83886080"
    );
    assert_eq!(read(&dir("pids").join("pids.max")), "16");
    let ps: Vec<i64> = serde_json::from_str(&c.ipc_ok(&["ps", "--format", "json", "f1"])).unwrap();
    assert!(ps.contains(&(pid as i64)), "{ps:?}");
    c.ipc_ok(&["delete", "-f", "f1"]);
    assert!(!alive(pid));
    for ctl in ours() {
        assert!(!dir(ctl).exists(), "{} left behind", dir(ctl).display());
    }
    // The parents the first servers made are in their journals: the
    // restarted ones remove them at the stop.
    c.stop();
    for ctl in ours() {
        let top = prefix.host_dir(ctl, "").unwrap();
        assert!(!top.exists(), "{} left behind", top.display());
    }
}
