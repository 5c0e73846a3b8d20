//! Fault injection: several clients loop create/set/attach/delete against
//! memory-controller and cpu-controller while the test SIGKILLs those
//! servers, and init itself, at random moments. Afterwards every
//! acknowledged request must hold, nothing registered may be lost, and no
//! cgroup directory may be left that no group accounts for.

use asterism_tests::{kill, Constellation, Hog};
use libipc::client::new_key;
use libipc::{Client, ClientOptions};
use protocol::cpu::{Cpu, CpuLimits, CpuRequest, CpuResponse};
use protocol::memory::{Limit, Memory, MemoryLimits, MemoryRequest, MemoryResponse};
use protocol::ErrorKind;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 3;
const RUN_FOR: Duration = Duration::from_secs(8);

/// What one client believes, from acknowledged answers only. An id whose
/// last request failed is "uncertain": either outcome is allowed for it.
#[derive(Default, Debug)]
struct Model {
    memory: BTreeMap<String, u64>,
    cpu: BTreeMap<String, u64>,
    /// id -> the hog attached to that memory group (acknowledged).
    attached: BTreeMap<String, i32>,
    uncertain_memory: BTreeSet<String>,
    uncertain_cpu: BTreeSet<String>,
    acked: usize,
    failed: usize,
}

fn opts() -> ClientOptions {
    ClientOptions {
        deadline: Duration::from_secs(15),
        ..ClientOptions::default()
    }
}

fn client_loop(root: PathBuf, k: usize, stop: Arc<AtomicBool>, hog_pid: i32) -> Model {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xa57e + k as u64);
    let mut mem = Client::<Memory>::new(&root, opts());
    let mut cpu = Client::<Cpu>::new(&root, opts());
    let mut m = Model::default();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let mid = format!("m{k}-{}", rng.gen_range(0..6));
        let cid = format!("c{k}-{}", rng.gen_range(0..6));
        match rng.gen_range(0..7) {
            0 => {
                let limit = rng.gen_range(16..64u64) << 20;
                let limits = MemoryLimits {
                    limit: Some(Limit::Value(limit)),
                    ..Default::default()
                };
                let r = mem.call(
                    MemoryRequest::Create {
                        id: mid.clone(),
                        parent: None,
                        limits,
                    },
                    Some(new_key("create", &mid)),
                );
                match r {
                    Ok(MemoryResponse::Created(_)) => {
                        m.memory.insert(mid.clone(), limit);
                        m.uncertain_memory.remove(&mid);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::AlreadyExists => m.acked += 1,
                    other => note_failure(&mut m.uncertain_memory, &mut m.failed, &mid, other),
                }
            }
            1 => {
                let limit = rng.gen_range(16..64u64) << 20;
                let limits = MemoryLimits {
                    limit: Some(Limit::Value(limit)),
                    ..Default::default()
                };
                let r = mem.call(
                    MemoryRequest::Set {
                        id: mid.clone(),
                        limits,
                        check_before_update: false,
                    },
                    Some(new_key("set", &mid)),
                );
                match r {
                    Ok(MemoryResponse::Updated(_)) => {
                        m.memory.insert(mid.clone(), limit);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => m.acked += 1,
                    other => note_failure(&mut m.uncertain_memory, &mut m.failed, &mid, other),
                }
            }
            2 => {
                let r = mem.call(
                    MemoryRequest::Attach {
                        id: mid.clone(),
                        pid: hog_pid,
                    },
                    Some(new_key("attach", &mid)),
                );
                match r {
                    Ok(MemoryResponse::Attached) => {
                        m.attached.clear();
                        m.attached.insert(mid.clone(), hog_pid);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => m.acked += 1,
                    other => {
                        // Where the hog is now is unknown.
                        m.attached.clear();
                        note_failure(&mut m.uncertain_memory, &mut m.failed, &mid, other)
                    }
                }
            }
            3 => {
                let r = mem.call(
                    MemoryRequest::Delete {
                        id: mid.clone(),
                        force: false,
                    },
                    Some(new_key("delete", &mid)),
                );
                match r {
                    Ok(MemoryResponse::Deleted) => {
                        m.memory.remove(&mid);
                        m.uncertain_memory.remove(&mid);
                        m.acked += 1;
                    }
                    // Refused while the hog is in it, or already gone: both are answers.
                    Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::Conflict) => {
                        m.acked += 1
                    }
                    other => note_failure(&mut m.uncertain_memory, &mut m.failed, &mid, other),
                }
            }
            4 => {
                let quota = rng.gen_range(10..90u64) * 1000;
                let limits = CpuLimits {
                    quota_us: Some(Limit::Value(quota)),
                    period_us: Some(100_000),
                    ..Default::default()
                };
                let r = cpu.call(
                    CpuRequest::Create {
                        id: cid.clone(),
                        parent: None,
                        limits,
                    },
                    Some(new_key("create", &cid)),
                );
                match r {
                    Ok(CpuResponse::Created(_)) => {
                        m.cpu.insert(cid.clone(), quota);
                        m.uncertain_cpu.remove(&cid);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::AlreadyExists => m.acked += 1,
                    other => note_failure(&mut m.uncertain_cpu, &mut m.failed, &cid, other),
                }
            }
            5 => {
                let quota = rng.gen_range(10..90u64) * 1000;
                let limits = CpuLimits {
                    quota_us: Some(Limit::Value(quota)),
                    ..Default::default()
                };
                let r = cpu.call(
                    CpuRequest::Set {
                        id: cid.clone(),
                        limits,
                    },
                    Some(new_key("set", &cid)),
                );
                match r {
                    Ok(CpuResponse::Updated(_)) => {
                        m.cpu.insert(cid.clone(), quota);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => m.acked += 1,
                    other => note_failure(&mut m.uncertain_cpu, &mut m.failed, &cid, other),
                }
            }
            _ => {
                let r = cpu.call(
                    CpuRequest::Delete {
                        id: cid.clone(),
                        force: true,
                    },
                    Some(new_key("delete", &cid)),
                );
                match r {
                    Ok(CpuResponse::Deleted) => {
                        m.cpu.remove(&cid);
                        m.uncertain_cpu.remove(&cid);
                        m.acked += 1;
                    }
                    Err(e) if e.kind == ErrorKind::NotFound => m.acked += 1,
                    other => note_failure(&mut m.uncertain_cpu, &mut m.failed, &cid, other),
                }
            }
        }
        if n % 50 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    m
}

fn note_failure<T: std::fmt::Debug>(
    uncertain: &mut BTreeSet<String>,
    failed: &mut usize,
    id: &str,
    r: T,
) {
    eprintln!("request on {id} not acknowledged: {r:?}");
    uncertain.insert(id.to_string());
    *failed += 1;
}

fn cgroup_dirs(base: &Path) -> BTreeSet<String> {
    std::fs::read_dir(base)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigkill_servers_and_init_during_a_request_storm() {
    let mut c = Constellation::start_with(&["--max-restarts", "1000", "--restart-window", "1"]);
    let root = c.root().to_path_buf();
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<Hog> = (0..CLIENTS).map(|_| Hog::sleep()).collect();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|k| {
            let (root, stop, pid) = (root.clone(), stop.clone(), hogs[k].pid());
            std::thread::spawn(move || client_loop(root, k, stop, pid))
        })
        .collect();

    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let started = Instant::now();
    let mut kills = BTreeMap::<&str, u32>::new();
    while started.elapsed() < RUN_FOR {
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..500)));
        let victim = ["memory-controller", "cpu-controller", "init"][rng.gen_range(0..3)];
        if victim == "init" {
            c.kill_init();
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..200)));
            c.start_init();
        } else {
            let pid = c.server_pid(victim);
            kill(pid, libc::SIGKILL);
        }
        *kills.entry(victim).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let models: Vec<Model> = workers
        .into_iter()
        .map(|w| w.join().expect("client thread"))
        .collect();
    eprintln!("kills: {kills:?}");
    for (k, m) in models.iter().enumerate() {
        eprintln!("client {k}: {} acknowledged, {} not", m.acked, m.failed);
        assert!(
            m.acked > 20,
            "client {k} made too little progress to mean anything"
        );
    }
    for name in ["memory-controller", "cpu-controller"] {
        c.server_pid(name); // both back and running
    }

    // Every acknowledged create/set holds; nothing registered is lost.
    let mem_list = match Client::<Memory>::new(&root, opts())
        .call(MemoryRequest::List, None)
        .unwrap()
    {
        MemoryResponse::List(l) => l,
        other => panic!("{other:?}"),
    };
    let cpu_list = match Client::<Cpu>::new(&root, opts())
        .call(CpuRequest::List, None)
        .unwrap()
    {
        CpuResponse::List(l) => l,
        other => panic!("{other:?}"),
    };
    let mem_now: BTreeMap<_, _> = mem_list
        .iter()
        .map(|g| (g.id.clone(), g.limits.limit))
        .collect();
    let cpu_now: BTreeMap<_, _> = cpu_list
        .iter()
        .map(|g| (g.id.clone(), g.limits.quota_us))
        .collect();
    for m in &models {
        for (id, limit) in &m.memory {
            if m.uncertain_memory.contains(id) {
                continue;
            }
            assert_eq!(
                mem_now.get(id),
                Some(&Some(Limit::Value(*limit))),
                "memory group {id} lost or changed: {mem_now:?}"
            );
        }
        for (id, quota) in &m.cpu {
            if m.uncertain_cpu.contains(id) {
                continue;
            }
            assert_eq!(
                cpu_now.get(id),
                Some(&Some(Limit::Value(*quota))),
                "cpu group {id} lost or changed: {cpu_now:?}"
            );
        }
        for id in mem_now.keys().filter(|id| id.starts_with('m')) {
            let owner = &models[id[1..2].parse::<usize>().unwrap()];
            assert!(
                owner.memory.contains_key(id) || owner.uncertain_memory.contains(id),
                "memory group {id} exists but was acknowledged deleted"
            );
        }
        for id in cpu_now.keys() {
            let owner = &models[id[1..2].parse::<usize>().unwrap()];
            assert!(
                owner.cpu.contains_key(id) || owner.uncertain_cpu.contains(id),
                "cpu group {id} exists but was acknowledged deleted"
            );
        }
        // The last acknowledged attach holds.
        for (id, pid) in &m.attached {
            if m.memory.contains_key(id) && !m.uncertain_memory.contains(id) {
                let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
                assert!(
                    cg.lines()
                        .any(|l| l.contains(":memory:") && l.ends_with(&format!("/{id}"))),
                    "hog {pid} not in {id}: {cg}"
                );
            }
        }
    }

    // No cgroup directory that no group accounts for, in any hierarchy.
    let mem_ids: BTreeSet<String> = mem_now.keys().cloned().collect();
    let cpu_ids: BTreeSet<String> = cpu_now.keys().cloned().collect();
    if let Some(base) = c.cgroup_base("memory") {
        assert_eq!(cgroup_dirs(&base), mem_ids, "memory cgroup dirs vs groups");
    }
    for ctrl in ["cpu", "cpuacct", "cpuset", "pids", "freezer", "devices"] {
        if let Some(base) = c.cgroup_base(ctrl) {
            if base.parent().is_some_and(|p| p.exists()) && base.exists() {
                let dirs = cgroup_dirs(&base);
                let extra: Vec<_> = dirs
                    .difference(&cpu_ids)
                    .filter(|d| !mem_ids.contains(*d) || ctrl != "memory")
                    .collect();
                assert!(extra.is_empty(), "{ctrl}: leaked cgroup dirs {extra:?}");
                assert!(
                    cpu_ids.is_subset(&dirs),
                    "{ctrl}: groups without dirs: {:?}",
                    cpu_ids.difference(&dirs).collect::<Vec<_>>()
                );
            }
        }
    }

    // Clean up through the servers, then nothing is left.
    let mut mem = Client::<Memory>::new(&root, opts());
    for id in &mem_ids {
        mem.call(
            MemoryRequest::Delete {
                id: id.clone(),
                force: true,
            },
            Some(new_key("delete", id)),
        )
        .unwrap();
    }
    let mut cpu = Client::<Cpu>::new(&root, opts());
    for id in &cpu_ids {
        cpu.call(
            CpuRequest::Delete {
                id: id.clone(),
                force: true,
            },
            Some(new_key("delete", id)),
        )
        .unwrap();
    }
    if let Some(base) = c.cgroup_base("memory") {
        assert!(cgroup_dirs(&base).is_empty());
    }
    drop(hogs);
}
