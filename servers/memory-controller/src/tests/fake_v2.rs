//! The v2 backend against a plain directory laid out like cgroupfs v2, file
//! for file: the fake "kernel" below creates a new cgroup's interface files
//! the way the kernel does on mkdir (with their initial contents), and
//! refuses rmdir of a cgroup with children or processes.

use crate::backend::v2::{DirOps, V2};
use crate::backend::Backend;
use cgroupfs::CgroupDir;
use protocol::memory::{Limit, MemoryLimits};
use protocol::{Error, ErrorKind};
use std::path::PathBuf;

/// The interface files of a fresh v2 cgroup with the memory controller.
pub const FRESH: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpu io memory pids\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    ("cgroup.events", "populated 0\nfrozen 0\n"),
    ("cgroup.type", "domain\n"),
    ("memory.max", "max\n"),
    ("memory.high", "max\n"),
    ("memory.low", "0\n"),
    ("memory.min", "0\n"),
    ("memory.swap.max", "max\n"),
    ("memory.swap.current", "0\n"),
    ("memory.current", "0\n"),
    ("memory.peak", "0\n"),
    ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"),
    ("hugetlb.2MB.max", "max\n"),
    (
        "memory.stat",
        "anon 0\nfile 0\nkernel 0\nkernel_stack 0\npagetables 0\nsock 0\nshmem 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\nswapcached 0\ninactive_anon 0\nactive_anon 0\ninactive_file 0\nactive_file 0\nunevictable 0\npgfault 0\npgmajfault 0\n",
    ),
];

pub fn fake_mkdir(d: &CgroupDir) -> Result<bool, Error> {
    if d.exists() {
        return Ok(false);
    }
    std::fs::create_dir(d.path())
        .map_err(|e| Error::io(format!("create cgroup {}", d.path().display()), &e))?;
    for (name, text) in FRESH {
        std::fs::write(d.file(name), text).unwrap();
    }
    Ok(true)
}

pub fn fake_rmdir(d: &CgroupDir) -> Result<(), Error> {
    if !d.exists() {
        return Ok(());
    }
    if !d.children()?.is_empty() || !d.procs()?.is_empty() {
        return Err(Error::kernel(
            libc::EBUSY,
            format!(
                "remove cgroup {}: Device or resource busy",
                d.path().display()
            ),
        ));
    }
    std::fs::remove_dir_all(d.path()).map_err(|e| Error::io("rmdir", &e))
}

pub const OPS: DirOps = DirOps {
    mkdir: fake_mkdir,
    rmdir: fake_rmdir,
};

/// A fake cgroup2 mount with this process "in" user.slice/test.scope.
pub struct FakeMount {
    pub tmp: tempfile::TempDir,
}

impl FakeMount {
    pub fn new() -> FakeMount {
        let tmp = tempfile::tempdir().unwrap();
        let root = CgroupDir::new(tmp.path());
        // The root cgroup has no memory.* files of its own.
        std::fs::write(root.file("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        std::fs::write(root.file("cgroup.subtree_control"), "").unwrap();
        std::fs::write(root.file("cgroup.procs"), "1\n").unwrap();
        fake_mkdir(&root.child("user.slice")).unwrap();
        fake_mkdir(&root.child("user.slice").child("test.scope")).unwrap();
        FakeMount { tmp }
    }

    pub fn mount(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    pub fn base(&self) -> CgroupDir {
        CgroupDir::new(self.tmp.path().join("user.slice/test.scope/asterism-test"))
    }

    pub fn backend(&self) -> V2 {
        V2::with_ops(self.mount(), self.base(), OPS)
    }
}

fn read(d: &CgroupDir, f: &str) -> String {
    d.read_string(f).unwrap().trim().to_string()
}

fn mib(n: u64) -> u64 {
    n << 20
}

#[test]
fn prepare_base_enables_memory_down_to_the_base() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let root = CgroupDir::new(m.mount());
    for d in [
        root.clone(),
        root.child("user.slice"),
        root.child("user.slice").child("test.scope"),
        m.base(),
    ] {
        assert_eq!(
            read(&d, "cgroup.subtree_control"),
            "+memory",
            "{}",
            d.path().display()
        );
    }
    // Already enabled: not written again.
    std::fs::write(root.file("cgroup.subtree_control"), "cpu memory\n").unwrap();
    b.prepare_base().unwrap();
    assert_eq!(read(&root, "cgroup.subtree_control"), "cpu memory");
}

#[test]
fn memory_not_available_is_a_clear_error() {
    let m = FakeMount::new();
    let scope = CgroupDir::new(m.mount().join("user.slice/test.scope"));
    std::fs::write(scope.file("cgroup.controllers"), "cpu pids\n").unwrap();
    let e = m.backend().prepare_base().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(
        e.message.contains("test.scope") && e.message.contains("memory"),
        "{e}"
    );
}

#[test]
fn create_writes_limits_as_runc_converts_them() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let g = m.base().child("web");
    assert!(b.create("web", &m.base(), &g).unwrap());
    let l = MemoryLimits {
        limit: Some(Limit::Value(mib(64))),
        reservation: Some(Limit::Value(mib(32))),
        swap: Some(Limit::Value(mib(128))),
        ..Default::default()
    };
    b.check("web", &l).unwrap();
    b.apply("web", &g, &l).unwrap();
    assert_eq!(read(&g, "memory.max"), mib(64).to_string());
    assert_eq!(read(&g, "memory.low"), mib(32).to_string());
    // swap.max = swap - limit
    assert_eq!(read(&g, "memory.swap.max"), mib(64).to_string());
    let back = b.read_limits(&g).unwrap();
    assert_eq!(back.limit, l.limit);
    assert_eq!(back.reservation, l.reservation);
    assert_eq!(back.swap, l.swap);
    assert_eq!(back.swappiness, None);
    assert_eq!(back.disable_oom_killer, None);
}

#[test]
fn set_converts_swap_against_the_limit_in_force() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let g = m.base().child("g");
    b.create("g", &m.base(), &g).unwrap();
    b.apply(
        "g",
        &g,
        &MemoryLimits {
            limit: Some(Limit::Value(mib(10))),
            ..Default::default()
        },
    )
    .unwrap();
    // limit only: swap.max untouched
    assert_eq!(read(&g, "memory.swap.max"), "max");
    // swap only: converted against memory.max as it is
    b.apply(
        "g",
        &g,
        &MemoryLimits {
            swap: Some(Limit::Value(mib(30))),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(read(&g, "memory.swap.max"), mib(20).to_string());
    assert_eq!(b.read_limits(&g).unwrap().swap, Some(Limit::Value(mib(30))));
    // limit max with swap unset: both unlimited
    b.apply(
        "g",
        &g,
        &MemoryLimits {
            limit: Some(Limit::Max),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(read(&g, "memory.max"), "max");
    assert_eq!(read(&g, "memory.swap.max"), "max");
    // swap without a memory limit is refused, nothing written
    let e = b
        .apply(
            "g",
            &g,
            &MemoryLimits {
                swap: Some(Limit::Value(mib(30))),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(e.message.contains("without a memory limit"), "{e}");
    assert_eq!(read(&g, "memory.swap.max"), "max");
}

#[test]
fn no_swap_accounting() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let g = m.base().child("g");
    b.create("g", &m.base(), &g).unwrap();
    std::fs::remove_file(g.file("memory.swap.max")).unwrap();
    // "no swap" (swap == limit) is what the kernel does anyway
    let l = MemoryLimits {
        limit: Some(Limit::Value(mib(8))),
        swap: Some(Limit::Value(mib(8))),
        ..Default::default()
    };
    b.apply("g", &g, &l).unwrap();
    let l = MemoryLimits {
        limit: Some(Limit::Value(mib(8))),
        swap: Some(Limit::Value(mib(16))),
        ..Default::default()
    };
    let e = b.apply("g", &g, &l).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("memory.swap.max"), "{e}");
    assert_eq!(b.read_limits(&g).unwrap().swap, None);
}

#[test]
fn v1_only_flags_are_refused_by_name() {
    let m = FakeMount::new();
    let b = m.backend();
    let e = b
        .check(
            "g",
            &MemoryLimits {
                swappiness: Some(10),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("--swappiness"), "{e}");
    let e = b
        .check(
            "g",
            &MemoryLimits {
                disable_oom_killer: Some(true),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert!(e.message.contains("--disable-oom-killer"), "{e}");
    b.check(
        "g",
        &MemoryLimits {
            disable_oom_killer: Some(false),
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn stat_reads_the_v2_files() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let g = m.base().child("g");
    b.create("g", &m.base(), &g).unwrap();
    b.apply(
        "g",
        &g,
        &MemoryLimits {
            limit: Some(Limit::Value(mib(32))),
            ..Default::default()
        },
    )
    .unwrap();
    std::fs::write(g.file("memory.current"), "1234567\n").unwrap();
    std::fs::write(g.file("memory.peak"), "33554432\n").unwrap();
    std::fs::write(g.file("memory.swap.current"), "4096\n").unwrap();
    std::fs::write(
        g.file("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 0\n",
    )
    .unwrap();
    std::fs::write(g.file("cgroup.procs"), "100\n200\n").unwrap();
    std::fs::write(g.file("memory.stat"), "anon 1000\nfile 2000\nshmem 0\n").unwrap();
    let st = b.stat(&g).unwrap();
    assert_eq!(st.limit_bytes, Some(mib(32)));
    assert_eq!(st.usage_bytes, 1234567);
    assert_eq!(st.peak_bytes, mib(32));
    assert_eq!(st.swap_usage_bytes, Some(4096));
    assert_eq!((st.oom_events, st.oom_kills), (2, 1));
    assert_eq!(st.pids, vec![100, 200]);
    assert_eq!(st.counters[1], ("file".to_string(), 2000));
    assert!(b.kernel_counts_oom_events());
    // Before Linux 5.19 there is no memory.peak.
    std::fs::remove_file(g.file("memory.peak")).unwrap();
    assert_eq!(b.stat(&g).unwrap().peak_bytes, 1234567);
}

#[test]
fn nested_groups_enable_memory_in_the_parent() {
    let m = FakeMount::new();
    let b = m.backend();
    b.prepare_base().unwrap();
    let p = m.base().child("pod");
    b.create("pod", &m.base(), &p).unwrap();
    assert_eq!(read(&p, "cgroup.subtree_control"), "");
    let c = p.child("web");
    b.create("web", &p, &c).unwrap();
    assert_eq!(read(&p, "cgroup.subtree_control"), "+memory");
    assert!(c.has_file("memory.max"));
    // The fake kernel, like the real one, will not remove a parent with children.
    assert_eq!(b.remove(&p).unwrap_err().errno, Some(libc::EBUSY));
    b.remove(&c).unwrap();
    b.remove(&p).unwrap();
    assert!(!p.exists());
}
