//! process.scheduler, process.ioPriority, linux.memoryPolicy and
//! linux.personality end to end: the container's process reports what the
//! kernel holds for it (`hog attrs`, copied into the rootfs, and busybox's
//! `uname -m`), for the container itself and for an exec'd process. A
//! setting the kernel refuses fails the create with the field's name and
//! leaves nothing behind.

use asterism_tests::{bin, Bundle, Constellation};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A busybox bundle with the test hog at /bin/hog, running `args`.
fn bundle(args: &[&str], patch: Value) -> Bundle {
    let b = Bundle::busybox_with(args, patch);
    std::fs::copy(bin("asterism-test-hog"), b.rootfs().join("bin/hog")).unwrap();
    b
}

fn attrs(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// `ipc run` in the foreground; its stdout, which must be the hog's.
fn run(c: &Constellation, b: &Bundle, id: &str) -> BTreeMap<String, String> {
    let out = c.ipc(&["run", "--bundle", b.path().to_str().unwrap(), id]);
    assert!(
        out.status.success(),
        "{id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    attrs(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn scheduler_io_priority_memory_policy_and_personality_reach_the_process() {
    let c = Constellation::start();
    let all = json!({
        "process": {
            "scheduler": {"policy": "SCHED_BATCH", "nice": 7},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 6}
        },
        "linux": {
            "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]},
            "personality": {"domain": "LINUX32"}
        }
    });
    let b = bundle(&["/bin/hog", "attrs"], all.clone());
    let a = run(&c, &b, "attrs1");
    assert_eq!(a["policy"], "3", "SCHED_BATCH: {a:?}");
    assert_eq!(a["nice"], "7", "{a:?}");
    assert_eq!(a["ioprio"], "2:6", "best effort, level 6: {a:?}");
    // MPOL_BIND (2) | MPOL_F_STATIC_NODES (1 << 15), node 0.
    assert_eq!(a["mempolicy"], "0x8002:0x1", "{a:?}");
    assert_eq!(a["personality"], "0x8", "PER_LINUX32: {a:?}");
    // LINUX32 is what uname shows: a 32-bit machine.
    let u = bundle(
        &["uname", "-m"],
        json!({"linux": {"personality": {"domain": "LINUX32"}}}),
    );
    let out = c.ipc(&["run", "--bundle", u.path().to_str().unwrap(), "uname1"]);
    let machine = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        machine.starts_with('i') && machine.ends_with("86"),
        "uname -m under LINUX32: {machine:?}"
    );
    // An exec'd process gets the container's settings too.
    let idle = bundle(
        &["sleep", "300"],
        json!({"process": {"scheduler": {"policy": "SCHED_IDLE"},
               "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}},
               "linux": {"memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0"}}}),
    );
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        idle.path().to_str().unwrap(),
        "idle1",
    ]);
    let a = attrs(&c.ipc_ok(&["exec", "idle1", "/bin/hog", "attrs"]));
    assert_eq!(a["policy"], "5", "SCHED_IDLE: {a:?}");
    assert_eq!(a["ioprio"], "3:0", "{a:?}");
    assert_eq!(a["mempolicy"], "0x3:0x1", "{a:?}");
    c.ipc_ok(&["delete", "-f", "idle1"]);
    // A real-time policy is set while the launcher still holds
    // CAP_SYS_NICE. Where the kernel budgets real-time tasks per cgroup
    // (this host's v1 cpu hierarchy has cpu.rt_runtime_us), a new group has
    // no budget and the create says so; elsewhere the policy is there.
    let rt = bundle(
        &["/bin/hog", "attrs"],
        json!({"process": {"scheduler": {"policy": "SCHED_RR", "priority": 5}}}),
    );
    let out = c.ipc(&["run", "--bundle", rt.path().to_str().unwrap(), "rt1"]);
    let budgets = cgroupfs::Hierarchies::discover()
        .ok()
        .and_then(|h| h.get("cpu").ok().map(|h| h.mount.join("cpu.rt_runtime_us")))
        .is_some_and(|f| f.exists());
    if budgets {
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && e.contains("cpu.rt_runtime_us is 0"),
            "{e}"
        );
        assert!(!c.root().join("containers").join("rt1").exists());
    } else {
        let a = attrs(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            (a["policy"].as_str(), a["rt_priority"].as_str()),
            ("2", "5"),
            "{a:?}"
        );
    }
    // Without any of them: the kernel's defaults.
    let plain = bundle(&["/bin/hog", "attrs"], json!({}));
    let a = run(&c, &plain, "plain1");
    assert_eq!(a["policy"], "0");
    assert_eq!(a["personality"], "0x0");
    assert_eq!(a["mempolicy"], "0x0:0x0");
}

#[test]
fn a_setting_the_kernel_refuses_names_its_field_and_leaves_nothing() {
    let c = Constellation::start();
    for (id, patch, want) in [
        (
            "iso",
            json!({"process": {"scheduler": {"policy": "SCHED_ISO"}}}),
            "process.scheduler.policy: SCHED_ISO",
        ),
        (
            "fifo0",
            // SCHED_FIFO needs a priority from 1 to 99.
            json!({"process": {"scheduler": {"policy": "SCHED_FIFO", "priority": 0}}}),
            "process.scheduler: sched_setattr with policy SCHED_FIFO",
        ),
        (
            "node9",
            // This host has no node 9.
            json!({"linux": {"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "9"}}}),
            "linux.memoryPolicy: set_mempolicy MPOL_BIND nodes \"9\"",
        ),
    ] {
        let b = bundle(&["true"], patch);
        let e = c.ipc_err(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        assert!(e.contains(want), "{id}: {e}");
        assert!(
            !c.root().join("containers").join(id).exists(),
            "{id}: state left behind"
        );
        let list = c.ipc_ok(&["list"]);
        assert!(!list.contains(id), "{id} is listed:\n{list}");
        if let Some(base) = c.cgroup_base("memory") {
            assert!(!base.join(id).exists(), "{id}: memory group left behind");
        }
    }
    // `run --detach` (init runs the create) says it once, in the same words.
    let b = bundle(
        &["true"],
        json!({"process": {"scheduler": {"policy": "SCHED_ISO"}}}),
    );
    let out = c.ipc(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "iso-d"]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.starts_with("ipc: process.scheduler.policy: SCHED_ISO"),
        "{e}"
    );
    assert!(!c.root().join("containers").join("iso-d").exists());
}

/// What is not built is refused by its field's name, never ignored, and
/// leaves nothing behind.
#[test]
fn settings_not_built_yet_are_refused_by_name() {
    let c = Constellation::start();
    let init = c.init_pid();
    for (id, patch, want) in [
        (
            "rt-budget",
            json!({"linux": {"resources": {"cpu": {"realtimeRuntime": 95000, "realtimePeriod": 1000000}}}}),
            "linux.resources.cpu.realtimeRuntime is not supported yet",
        ),
        (
            "rt-period",
            json!({"linux": {"resources": {"cpu": {"realtimePeriod": 1000000}}}}),
            "linux.resources.cpu.realtimePeriod is not supported yet",
        ),
        (
            "kmem",
            json!({"linux": {"resources": {"memory": {"kernel": 67108864}}}}),
            "linux.resources.memory.kernel (a kernel memory limit, deprecated by Linux) is not supported yet",
        ),
        (
            // This host's hugetlb is on cgroup v2, memory on v1.
            "huge",
            json!({"linux": {"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}}}),
            "linux.resources.hugepageLimits (2MB): hugetlb is not in this host's cgroup v1 memory hierarchy",
        ),
        (
            "flat",
            json!({"linux": {"resources": {"memory": {"useHierarchy": false}}}}),
            "linux.resources.memory.useHierarchy false (the kernel always accounts hierarchically)",
        ),
        (
            "kmem-tcp",
            json!({"linux": {"resources": {"memory": {"kernelTCP": 67108864}}}}),
            "linux.resources.memory.kernelTCP is not supported yet",
        ),
    ] {
        let b = bundle(&["true"], patch);
        let e = c.ipc_err(&["create", "--bundle", b.path().to_str().unwrap(), id]);
        assert!(e.contains(want), "{id}: {e}");
        assert!(!c.root().join("containers").join(id).exists(), "{id}");
        if let Some(base) = c.cgroup_base("memory") {
            assert!(!base.join(id).exists(), "{id}: memory group left behind");
        }
    }
    assert_eq!(c.init_pid(), init, "init died");
}

/// process.execCPUAffinity: `initial` while the exec'd process is still
/// outside the container's groups, `final` once it is in them (joining a
/// cpuset reset its affinity to the cpuset's CPUs). Not applicable to the
/// container's own process, which keeps the kernel's choice.
#[test]
fn exec_cpu_affinity_is_set_around_the_join() {
    let c = Constellation::start();
    let init = c.init_pid();
    let all = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Cpus_allowed_list:")
                .map(|v| v.trim().to_string())
        })
        .unwrap();
    // In the config too: init parses it (oci-spec compiles a regex for it,
    // which once overflowed the stack of init's request thread).
    let b = bundle(
        &["sleep", "300"],
        json!({"process": {"execCPUAffinity": {"final": "0"}}}),
    );
    c.ipc_ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "aff1"]);
    let allowed = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no Cpus_allowed_list in\n{text}"))
    };
    let pid = c.ipc_json(&["state", "aff1"])["pid"].as_i64().unwrap();
    let own = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert_eq!(allowed(&own), all, "the container's own process was pinned");
    let exec = |affinity: Value| {
        let process = json!({"args": ["cat", "/proc/self/status"], "cwd": "/",
            "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"], "execCPUAffinity": affinity});
        let f = b.path().join("process.json");
        std::fs::write(&f, process.to_string()).unwrap();
        allowed(&c.ipc_ok(&["exec", "--process", f.to_str().unwrap(), "aff1"]))
    };
    assert_eq!(exec(json!({"final": "0"})), "0");
    assert_eq!(exec(json!({"initial": "0", "final": " 0 "})), "0");
    // `initial` alone: after the join the kernel decides. Since Linux 6.2
    // a cpuset move keeps the affinity the process asked for (within the
    // cpuset's CPUs); before, it reset it to the cpuset's.
    let after = exec(json!({"initial": "0"}));
    assert!(after == "0" || after == all, "{after}");
    // A CPU this host does not have: refused by name.
    let process = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": {"final": "4095"}});
    let f = b.path().join("bad.json");
    std::fs::write(&f, process.to_string()).unwrap();
    let e = c.ipc_err(&["exec", "--process", f.to_str().unwrap(), "aff1"]);
    assert!(e.contains("process.execCPUAffinity.final"), "{e}");
    // A --process document is checked as a config's process is.
    let process = json!({"args": ["true"], "cwd": "tmp", "user": {"uid": 0, "gid": 0}});
    std::fs::write(&f, process.to_string()).unwrap();
    let e = c.ipc_err(&["exec", "--process", f.to_str().unwrap(), "aff1"]);
    assert!(e.contains("cwd: must be an absolute path"), "{e}");
    c.ipc_ok(&["delete", "-f", "aff1"]);
    assert_eq!(c.init_pid(), init, "init died");
}

/// linux.resources.blockIO: the container gets its group in the v1 blkio
/// hierarchy with its throttles; a container without blockIO has its group
/// there too (as with runc), and an update can give it some; a weight this
/// host's I/O schedulers cannot give is refused by name and leaves
/// nothing; delete leaves no blkio group.
#[test]
fn block_io_throttles_land_in_the_containers_blkio_group() {
    let c = Constellation::start();
    let Some(base) = c.cgroup_base("blkio") else {
        eprintln!("skipping: no v1 blkio hierarchy here");
        return;
    };
    let dev = std::fs::metadata("/dev/vda")
        .ok()
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            let r = m.rdev();
            (libc::major(r), libc::minor(r))
        })
        .unwrap_or((254, 0));
    let io = json!({"linux": {"resources": {"blockIO": {
        "throttleReadBpsDevice": [{"major": dev.0, "minor": dev.1, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": dev.0, "minor": dev.1, "rate": 50}]
    }}}});
    let b = bundle(&["sleep", "300"], io);
    c.ipc_ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "io1"]);
    let pid = c.ipc_json(&["state", "io1"])["pid"].as_i64().unwrap();
    let read = |f: &str| std::fs::read_to_string(base.join("io1").join(f)).unwrap();
    // The device's line in io1's blkio.throttle.<file>.
    let assert_throttle = |file: &str, rate: u64| {
        assert_eq!(
            read(&format!("blkio.throttle.{file}")).trim(),
            format!("{}:{} {rate}", dev.0, dev.1)
        )
    };
    assert_throttle("read_bps_device", 1048576);
    assert_throttle("write_iops_device", 50);
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .any(|l| l.contains(":blkio:") && l.ends_with("/io1")),
        "{cg}"
    );
    // A container without blockIO is in a blkio group of its own too.
    let plain = bundle(&["sleep", "300"], json!({}));
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        plain.path().to_str().unwrap(),
        "io2",
    ]);
    let pid2 = c.ipc_json(&["state", "io2"])["pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid2}/cgroup")).unwrap();
    assert!(
        cg.lines()
            .any(|l| l.contains(":blkio:") && l.ends_with("/io2")),
        "{cg}"
    );
    // A weight: refused by name here (no CFQ or BFQ), nothing made.
    if !base.join("blkio.weight").exists() && !base.join("blkio.bfq.weight").exists() {
        let w = bundle(
            &["true"],
            json!({"linux": {"resources": {"blockIO": {"weight": 500}}}}),
        );
        let e = c.ipc_err(&["create", "--bundle", w.path().to_str().unwrap(), "io3"]);
        assert!(e.contains("linux.resources.blockIO.weight"), "{e}");
        assert!(!base.join("io3").exists());
        assert!(!c.root().join("containers").join("io3").exists());
    }
    // update: a new read rate for the device replaces the old one, a
    // write rate joins it, the write IOPS stay as they were.
    let res = b.path().join("io-update.json");
    std::fs::write(
        &res,
        json!({"blockIO": {
            "throttleReadBpsDevice": [{"major": dev.0, "minor": dev.1, "rate": 2097152}],
            "throttleWriteBpsDevice": [{"major": dev.0, "minor": dev.1, "rate": 4194304}]
        }})
        .to_string(),
    )
    .unwrap();
    c.ipc_ok(&["update", "--resources", res.to_str().unwrap(), "io1"]);
    assert_throttle("read_bps_device", 2097152);
    assert_throttle("write_bps_device", 4194304);
    assert_throttle("write_iops_device", 50);
    // A container made without blockIO gets its first by update.
    c.ipc_ok(&["update", "--resources", res.to_str().unwrap(), "io2"]);
    assert_eq!(
        std::fs::read_to_string(base.join("io2").join("blkio.throttle.read_bps_device"))
            .unwrap()
            .trim(),
        format!("{}:{} 2097152", dev.0, dev.1)
    );
    // runc's --blkio-weight: out of range refused; here (no CFQ or BFQ)
    // refused by name, else written.
    let e = c.ipc_err(&["update", "--blkio-weight", "5", "io1"]);
    assert!(e.contains("--blkio-weight: 5"), "{e}");
    if base.join("blkio.weight").exists() || base.join("blkio.bfq.weight").exists() {
        c.ipc_ok(&["update", "--blkio-weight", "500", "io1"]);
    } else {
        let e = c.ipc_err(&["update", "--blkio-weight", "500", "io1"]);
        assert!(e.contains("linux.resources.blockIO.weight"), "{e}");
    }
    // runc's flags for what is not built: refused as such.
    let e = c.ipc_err(&["update", "--cpu-rt-runtime", "1000", "io1"]);
    assert!(e.contains("unsupported"), "{e}");
    c.ipc_ok(&["delete", "-f", "io1"]);
    c.ipc_ok(&["delete", "-f", "io2"]);
    assert!(
        asterism_tests::subdirs(&base).is_empty(),
        "blkio groups left"
    );
}

/// The environment as runc builds it: a name given twice is there once,
/// with its last value in its first place; an empty HOME is filled in as a
/// missing one ("/" for a user /etc/passwd does not know), for the
/// container's process and for an exec'd one.
#[test]
fn the_environment_has_each_name_once_and_a_home() {
    let c = Constellation::start();
    let env = json!(["PATH=/bin", "A=1", "HOME=", "B=2", "A=3"]);
    let b = bundle(
        &["env"],
        json!({"process": {"env": env, "user": {"uid": 4321, "gid": 4321}}}),
    );
    let out = c.ipc_ok(&["run", "--bundle", b.path().to_str().unwrap(), "env1"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["PATH=/bin", "A=3", "HOME=/", "B=2"]
    );

    let b = bundle(&["sleep", "60"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), "env2"]);
    let process = json!({"args": ["env"], "cwd": "/", "user": {"uid": 4321, "gid": 4321},
        "env": env});
    let f = b.path().join("process.json");
    std::fs::write(&f, process.to_string()).unwrap();
    let out = c.ipc_ok(&["exec", "--process", f.to_str().unwrap(), "env2"]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["PATH=/bin", "A=3", "HOME=/", "B=2"]
    );
    c.ipc_ok(&["delete", "--force", "env2"]);
}
