//! vfs-overlay and netstack end to end, through the real `ipc`, `init` and
//! server binaries, on the real kernel (as root).
//!
//! Cleanup even on failure: a `Mounts` guard detaches every mount under the
//! constellation's `containers/` before the root directory is removed, and
//! a `NetnsProc` (an `unshare --net sleep 60` the test started) is killed by
//! its pid.

use asterism_tests::{alive, kill, wait_for, Constellation};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The constellation's `<root>/containers`, symlinks resolved.
fn containers(c: &Constellation) -> PathBuf {
    std::fs::canonicalize(c.root()).unwrap().join("containers")
}

/// Every mount point in this (the host's) mount namespace under `dir`.
fn mounts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let mp = PathBuf::from(f.get(4)?.replace("\\040", " "));
            let opts = f.get(5)?.to_string();
            mp.starts_with(dir).then_some((mp, opts))
        })
        .collect()
}

/// Detaches whatever is still mounted under `<root>/containers` on drop.
/// Declared after the Constellation, so it drops first.
struct Mounts(PathBuf);

impl Drop for Mounts {
    fn drop(&mut self) {
        for (mp, _) in mounts_under(&self.0).into_iter().rev() {
            let _ = rustix::mount::unmount(&mp, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A bundle directory with `rootfs/hello`; removed on drop.
struct Bundle(tempfile::TempDir);

impl Bundle {
    fn new() -> Bundle {
        let d = tempfile::Builder::new()
            .prefix("vfs-bundle-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        std::fs::write(d.path().join("rootfs/hello"), "hi").unwrap();
        Bundle(d)
    }
    fn path(&self) -> &str {
        self.0.path().to_str().unwrap()
    }
}

fn vfs_list(c: &Constellation) -> Vec<Value> {
    c.ipc_json(&["vfs-overlay", "list", "--json"])["rootfs"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn readonly_prepare_is_a_real_read_only_bind_and_release_removes_it() {
    let c = Constellation::start();
    let _m = Mounts(containers(&c));
    let b = Bundle::new();
    let out = c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        b.path(),
        "--readonly",
    ]);
    let rootfs = PathBuf::from(out.trim());
    assert_eq!(rootfs, containers(&c).join("c1/rootfs"));

    // The host's mount table shows it, read-only.
    let m = mounts_under(&containers(&c));
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].0, rootfs);
    assert!(m[0].1.split(',').any(|o| o == "ro"), "{m:?}");
    assert_eq!(std::fs::read_to_string(rootfs.join("hello")).unwrap(), "hi");
    let e = std::fs::write(rootfs.join("new"), "x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");

    // Same request: same answer, no second mount. Another: refused.
    let again = c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        b.path(),
        "--readonly",
    ]);
    assert_eq!(again, out);
    assert_eq!(mounts_under(&containers(&c)).len(), 1);
    let err = c.ipc_err(&["vfs-overlay", "prepare", "c1", "--bundle", b.path()]);
    assert!(err.contains("already prepared"), "{err}");

    let l = vfs_list(&c);
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0]["id"].as_str(), l[0]["mounted"].as_bool()),
        (Some("c1"), Some(true))
    );

    c.ipc_ok(&["vfs-overlay", "release", "c1"]);
    assert!(mounts_under(&containers(&c)).is_empty());
    assert!(!containers(&c).join("c1").exists());
    assert!(vfs_list(&c).is_empty());
    let err = c.ipc_err(&["vfs-overlay", "release", "c1"]);
    assert!(err.contains("not found") && err.contains("c1"), "{err}");
    // The source was never touched.
    assert!(b.0.path().join("rootfs/hello").exists());
}

#[test]
fn a_writable_rootfs_is_checked_and_returned_as_is() {
    let c = Constellation::start();
    let _m = Mounts(containers(&c));
    let b = Bundle::new();
    let out = c.ipc_ok(&["vfs-overlay", "prepare", "w1", "--bundle", b.path()]);
    let real = std::fs::canonicalize(b.0.path().join("rootfs")).unwrap();
    assert_eq!(PathBuf::from(out.trim()), real);
    assert!(mounts_under(&containers(&c)).is_empty());
    // An absolute root.path may be anywhere.
    let elsewhere = Bundle::new();
    let abs = elsewhere.0.path().join("rootfs");
    let out = c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "w2",
        "--bundle",
        b.path(),
        "--root-path",
        abs.to_str().unwrap(),
    ]);
    assert_eq!(
        PathBuf::from(out.trim()),
        std::fs::canonicalize(&abs).unwrap()
    );
    c.ipc_ok(&["vfs-overlay", "release", "w1"]);
    c.ipc_ok(&["vfs-overlay", "release", "w2"]);
}

#[test]
fn bad_input_is_refused_and_leaves_no_mount_and_no_dir() {
    let c = Constellation::start();
    let _m = Mounts(containers(&c));
    let b = Bundle::new();
    let outside = tempfile::tempdir_in("/tmp").unwrap();
    std::os::unix::fs::symlink(outside.path(), b.0.path().join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", b.0.path().join("etc-link")).unwrap();
    let cases: &[(&str, &str, &str)] = &[
        ("c1", "missing", "does not exist"),
        ("c1", "escape", "outside the bundle"),
        ("c1", "etc-link", "outside the bundle"),
        ("c1", "../", "outside the bundle"),
        ("../x", "rootfs", "container id"),
        ("a/b", "rootfs", "container id"),
        (".c", "rootfs", "container id"),
    ];
    for (id, root_path, want) in cases {
        let err = c.ipc_err(&[
            "vfs-overlay",
            "prepare",
            id,
            "--bundle",
            b.path(),
            "--root-path",
            root_path,
            "--readonly",
        ]);
        assert!(err.contains(want), "{id} {root_path}: {err}");
    }
    let err = c.ipc_err(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        "/nonexistent-bundle",
        "--readonly",
    ]);
    assert!(err.contains("does not exist"), "{err}");
    assert!(mounts_under(&containers(&c)).is_empty());
    for id in ["c1", "x", "a", ".c"] {
        assert!(!containers(&c).join(id).exists(), "{id} left a directory");
    }
    assert!(vfs_list(&c).is_empty());
}

#[test]
fn a_prepared_rootfs_survives_sigkill_of_vfs_overlay() {
    let c = Constellation::start();
    let _m = Mounts(containers(&c));
    let b = Bundle::new();
    c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        b.path(),
        "--readonly",
    ]);
    c.kill_server("vfs-overlay");
    let l = vfs_list(&c);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["mounted"], true);
    assert_eq!(l[0]["adopted"], false);
    // One mount, not one per start.
    assert_eq!(mounts_under(&containers(&c)).len(), 1);
    c.ipc_ok(&["vfs-overlay", "release", "c1"]);
    assert!(mounts_under(&containers(&c)).is_empty());
}

/// With init down (so nothing restarts it), vfs-overlay is killed and the
/// kernel or its journal changed behind its back; the next start reconciles.
fn restart_vfs_with(c: &mut Constellation, change: impl FnOnce()) {
    let pid = c.server_pid("vfs-overlay");
    c.kill_init();
    kill(pid, libc::SIGKILL);
    wait_for(Duration::from_secs(5), || (!alive(pid)).then_some(()))
        .expect("vfs-overlay did not die");
    change();
    c.start_init();
}

#[test]
fn start_remakes_a_lost_bind_and_adopts_an_unjournaled_one() {
    let mut c = Constellation::start();
    let _m = Mounts(containers(&c));
    let b = Bundle::new();
    c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        b.path(),
        "--readonly",
    ]);
    let target = containers(&c).join("c1/rootfs");

    // The bind vanished while the server was down: re-made on start.
    let dir = containers(&c);
    restart_vfs_with(&mut c, || {
        rustix::mount::unmount(&target, rustix::mount::UnmountFlags::DETACH).unwrap();
        assert!(mounts_under(&dir).is_empty());
    });
    let m = mounts_under(&containers(&c));
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].1.split(',').any(|o| o == "ro"), "{m:?}");
    assert_eq!(vfs_list(&c)[0]["mounted"], true);

    // The journal vanished: the mount is adopted, not unmounted.
    let journal = libipc::state_dir(c.root(), "vfs-overlay").join("journal.json");
    restart_vfs_with(&mut c, || std::fs::remove_file(&journal).unwrap());
    assert_eq!(mounts_under(&containers(&c)).len(), 1);
    let l = vfs_list(&c);
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        (l[0]["adopted"].as_bool(), l[0]["mounted"].as_bool()),
        (Some(true), Some(true))
    );
    // A prepare of the same rootfs takes it over; release removes it.
    c.ipc_ok(&[
        "vfs-overlay",
        "prepare",
        "c1",
        "--bundle",
        b.path(),
        "--readonly",
    ]);
    assert_eq!(vfs_list(&c)[0]["adopted"], false);
    c.ipc_ok(&["vfs-overlay", "release", "c1"]);
    assert!(mounts_under(&containers(&c)).is_empty());
}

#[test]
fn unbuilt_verbs_are_unsupported() {
    let c = Constellation::start();
    let err = c.ipc_err(&["vfs-overlay", "commit", "c1"]);
    assert!(
        err.contains("unsupported") && err.contains("commit"),
        "{err}"
    );
    let err = c.ipc_err(&["netstack", "veth", "c1"]);
    assert!(err.contains("unsupported") && err.contains("veth"), "{err}");
}

/// A process alone in a new network namespace, killed by pid on drop.
struct NetnsProc(Child);

impl NetnsProc {
    fn start() -> NetnsProc {
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let p = NetnsProc(
            Command::new("unshare")
                .args(["--net", "sleep", "60"])
                .spawn()
                .expect("spawn unshare (util-linux)"),
        );
        let until = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(p.ns()).ok().as_ref() == Some(&own) {
            assert!(Instant::now() < until, "unshare --net did not unshare");
            std::thread::sleep(Duration::from_millis(5));
        }
        p
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    fn ns(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }
    /// `lo`'s flags as `ip` prints them inside the namespace: "LOOPBACK,UP,LOWER_UP".
    fn lo_flags(&self) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid(), "-n", "ip", "-o", "link", "show", "lo"])
            .output()
            .expect("run nsenter ... ip (util-linux, iproute2)");
        assert!(out.status.success(), "{out:?}");
        let s = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = s.find('<').unwrap() + 1;
        let end = s.find('>').unwrap();
        s[start..end].to_string()
    }
    fn lo_up(&self) -> bool {
        self.lo_flags().split(',').any(|f| f == "UP")
    }
}

impl Drop for NetnsProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn net_list(c: &Constellation) -> Vec<Value> {
    c.ipc_json(&["netstack", "list", "--json"])["loopbacks"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn netstack_brings_lo_up_in_a_namespace_and_survives_sigkill() {
    let c = Constellation::start();
    let ns = NetnsProc::start();
    assert!(!ns.lo_up(), "a new namespace starts with lo down");
    let out = c.ipc_ok(&["netstack", "loopback", "c1", "--pid", &ns.pid()]);
    assert!(out.contains("lo is up"), "{out}");
    assert!(ns.lo_up(), "lo flags: {}", ns.lo_flags());
    let netns = std::fs::read_link(ns.ns()).unwrap().display().to_string();
    let l = net_list(&c);
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0]["id"].as_str(), l[0]["netns"].as_str()),
        (Some("c1"), Some(netns.as_str()))
    );

    c.kill_server("netstack");
    let l = wait_for(Duration::from_secs(5), || {
        let l = net_list(&c);
        (!l.is_empty()).then_some(l)
    })
    .expect("the record survives a SIGKILL");
    assert_eq!(l[0]["netns"].as_str(), Some(netns.as_str()));
    // Again after the restart: idempotent.
    c.ipc_ok(&["netstack", "loopback", "c1", "--netns", &ns.ns()]);
    c.ipc_ok(&["netstack", "release", "c1"]);
    assert!(net_list(&c).is_empty());
    let err = c.ipc_err(&["netstack", "release", "c1"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn netstack_refuses_what_is_not_a_container_netns() {
    let c = Constellation::start();
    let ns = NetnsProc::start();
    let err = c.ipc_err(&["netstack", "loopback", "c1", "--netns", "/proc/version"]);
    assert!(err.contains("not a network namespace"), "{err}");
    let uts = format!("/proc/{}/ns/uts", ns.pid());
    let err = c.ipc_err(&["netstack", "loopback", "c1", "--netns", &uts]);
    assert!(err.contains("uts namespace"), "{err}");
    let me = std::process::id().to_string();
    let err = c.ipc_err(&["netstack", "loopback", "c1", "--pid", &me]);
    assert!(err.contains("host"), "{err}");
    let err = c.ipc_err(&["netstack", "loopback", "../x", "--pid", &ns.pid()]);
    assert!(err.contains("container id"), "{err}");
    assert!(!ns.lo_up());
    assert!(net_list(&c).is_empty());
}

/// A veth pair this test makes on the host (this kernel has no dummy
/// driver), the first end with an address, deleted (by name, if still
/// there) when dropped. No traffic goes through it.
struct HostVeth(String, String);

impl HostVeth {
    fn new(name: &str, peer: &str, addr: &str) -> HostVeth {
        let ip = |args: &[&str]| {
            let out = std::process::Command::new("ip")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = std::process::Command::new("ip")
            .args(["link", "del", name])
            .output();
        ip(&["link", "add", name, "type", "veth", "peer", "name", peer]);
        let d = HostVeth(name.to_string(), peer.to_string());
        ip(&["addr", "add", addr, "dev", name]);
        d
    }

    fn on_host(&self, which: &str) -> bool {
        std::path::Path::new("/sys/class/net").join(which).exists()
    }
}

impl Drop for HostVeth {
    fn drop(&mut self) {
        for n in [&self.0, &self.1] {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", n])
                .output();
        }
    }
}

/// linux.netDevices: a host device (here one end of a veth pair the test
/// makes, with a permanent address and no traffic) moves into the
/// container's network namespace under its new name, with its address, up;
/// it is gone from the host; and when the container is deleted, the kernel
/// destroys it with the namespace (a virtual device; its peer goes too). A
/// device the host does not have is refused by name, leaving nothing.
#[test]
fn net_devices_move_into_the_container_with_their_addresses() {
    let c = Constellation::start();
    let veth = HostVeth::new("astveth0", "astveth1", "10.254.77.1/24");
    let bundle = asterism_tests::Bundle::busybox_with(
        &["sleep", "300"],
        json!({"linux": {"netDevices": {"astveth0": {"name": "ceth0"}}}}),
    );
    c.ipc_ok(&[
        "run",
        "-d",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "nd1",
    ]);
    assert!(!veth.on_host("astveth0"), "the device is still on the host");
    let addr = c.ipc_ok(&["exec", "nd1", "ip", "-o", "addr", "show", "dev", "ceth0"]);
    assert!(addr.contains("10.254.77.1/24"), "{addr}");
    let flags = c.ipc_ok(&["exec", "nd1", "cat", "/sys/class/net/ceth0/flags"]);
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "ceth0 is not up: {flags:#x}");
    c.ipc_ok(&["delete", "-f", "nd1"]);
    let gone = asterism_tests::wait_for(std::time::Duration::from_secs(10), || {
        (!veth.on_host("astveth0") && !veth.on_host("astveth1")).then_some(())
    });
    assert!(gone.is_some(), "a virtual device came back to the host");
    // One the host does not have.
    let missing = asterism_tests::Bundle::busybox_with(
        &["true"],
        json!({"linux": {"netDevices": {"astnothere9": {}}}}),
    );
    let e = c.ipc_err(&[
        "create",
        "--bundle",
        missing.path().to_str().unwrap(),
        "nd2",
    ]);
    assert!(e.contains("linux.netDevices.astnothere9"), "{e}");
    assert!(!c.root().join("containers").join("nd2").exists());
}
