//! The three escapes issue 3 names, tried for real through `ipc`:
//! overwriting the host's runtime through /proc/self/exe (CVE-2019-5736
//! class), a host file descriptor reaching the container (CVE-2024-21626
//! class), and a mount destination that is a symlink out of the rootfs.

use asterism_tests::{bin, run_to_files, Bundle, Constellation};
use serde_json::json;
use std::process::Command;

fn digest(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn b(bundle: &Bundle) -> &str {
    bundle.path().to_str().unwrap()
}

#[test]
fn the_runtime_binary_cannot_be_reached_through_proc_self_exe() {
    let c = Constellation::start();
    let ipc_before = digest(&bin("ipc"));
    let init_before = digest(&bin("init"));
    // The entrypoint is the runtime itself, through the magic link: the
    // launcher must refuse to exec it inside the container.
    let bundle = Bundle::busybox_with(&["/proc/self/exe"], json!({}));
    let out = c.ipc(&["run", "--bundle", b(&bundle), "exe1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/proc/self/exe") || err.contains("runtime"),
        "{err}"
    );
    // Through a script whose interpreter is the magic link, too.
    let script = Bundle::busybox_with(&["/bin/evil"], json!({}));
    std::fs::write(script.rootfs().join("bin/evil"), "#!/proc/self/exe\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(script.rootfs().join("bin/evil"))
            .unwrap()
            .permissions(),
        0o755,
    );
    Command::new("chmod")
        .arg("755")
        .arg(script.rootfs().join("bin/evil"))
        .status()
        .unwrap();
    let out = c.ipc(&["run", "--bundle", b(&script), "exe2"]);
    assert!(
        !out.status.success(),
        "running the runtime through a #! line must fail"
    );
    // And through exec into a running container.
    let sleeper = Bundle::busybox_with(&["sleep", "300"], json!({}));
    c.ipc_ok(&["run", "-d", "--bundle", b(&sleeper), "exe3"]);
    let out = c.ipc(&["exec", "exe3", "/proc/self/exe"]);
    assert!(!out.status.success());
    // A container writing to its own /proc/self/exe hits its own busybox
    // copy, never the host's binaries.
    let _ = c.ipc(&[
        "exec",
        "exe3",
        "sh",
        "-c",
        "cat /proc/self/exe > /dev/null; echo x >> /proc/1/exe",
    ]);
    c.ipc_ok(&["delete", "-f", "exe3"]);
    assert_eq!(digest(&bin("ipc")), ipc_before, "host ipc changed");
    assert_eq!(digest(&bin("init")), init_before, "host init changed");
    assert!(
        !c.ipc_ok(&["list"]).contains("exe"),
        "failed creates leave nothing"
    );
}

#[test]
fn no_host_fd_reaches_the_container_beyond_stdio_and_preserved_ones() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; echo LISTEN_FDS=$LISTEN_FDS; readlink /proc/self/cwd"], json!({}));
    // The caller leaks fds 7 and 8 into ipc (no close-on-exec), as a
    // careless engine might; fd 3 is the one it means to pass.
    let script = format!(
        "exec 3</etc/hostname 7</etc/passwd 8</; exec {} --root {} run --preserve-fds 1 --bundle {} fd1",
        bin("ipc").display(),
        c.root().display(),
        b(&bundle)
    );
    let out = run_to_files(Command::new("sh").arg("-c").arg(script));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let fds: Vec<i32> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    // 0-2 stdio, 3 preserved, and one more: the directory ls is reading.
    assert!(fds.len() <= 5, "unexpected fds in the container: {fds:?}");
    assert!(
        !fds.contains(&7) && !fds.contains(&8),
        "leaked host fds reached the container: {fds:?}"
    );
    assert!(fds.contains(&3), "the preserved fd is missing: {fds:?}");
    assert_eq!(lines.next(), Some("LISTEN_FDS=1"));
    assert_eq!(
        lines.next(),
        Some("/"),
        "the cwd is the container's, never a host directory"
    );
}

#[test]
fn a_mount_destination_that_is_a_symlink_out_of_the_rootfs_stays_inside() {
    let c = Constellation::start();
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let bundle = Bundle::busybox_with(
        &["sh", "-c", "touch /evil/owned /rel/owned && echo done"],
        json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/evil", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/rel", "type": "tmpfs", "source": "tmpfs"}
        ], "root": {"path": "rootfs", "readonly": false}}),
    );
    std::os::unix::fs::symlink(&target, bundle.rootfs().join("evil")).unwrap();
    let rel = format!("../../../../../../..{}", target.display());
    std::os::unix::fs::symlink(&rel, bundle.rootfs().join("rel")).unwrap();
    let out = c.ipc(&["run", "--bundle", b(&bundle), "sym1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
    let on_host: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        on_host.is_empty(),
        "the mount escaped to the host directory: {on_host:?}"
    );
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(target.to_str().unwrap()),
        "a host mount appeared at the target"
    );
}

/// The devices cgroup: a container given CAP_MKNOD (as Docker's defaults
/// do) can make a node for any of the host's devices, but opens only
/// those its config's `linux.resources.devices` allows, plus the default
/// devices. Here /dev/fuse, which the host lets root open: denied under
/// the usual deny-all rule, for the container's process and an exec'd one,
/// and allowed once a rule names it.
#[test]
fn a_device_node_made_inside_opens_only_if_the_rules_allow_it() {
    let c = Constellation::start();
    let mknod_caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_MKNOD"]);
    let caps = json!({"bounding": mknod_caps, "effective": mknod_caps, "permitted": mknod_caps});
    let probe = "busybox mknod /dev/fuse c 10 229 || exit 9; \
                 (exec 3<>/dev/fuse) 2>/dev/null && echo fuse-opened || echo fuse-denied; \
                 (exec 3<>/dev/null) && echo null-opened";
    let deny_all = json!({"process": {"capabilities": caps},
        "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}});
    let bundle = Bundle::busybox_with(&["sh", "-c", probe], deny_all);
    let out = c.ipc(&["run", "--bundle", b(&bundle), "dev1"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["fuse-denied", "null-opened"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An exec'd process is in the same devices group.
    let sleeper = Bundle::busybox_with(
        &["sleep", "300"],
        json!({"process": {"capabilities": caps},
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]}}}),
    );
    c.ipc_ok(&["run", "-d", "--bundle", b(&sleeper), "dev2"]);
    let text = c.ipc_ok(&["exec", "dev2", "sh", "-c", probe]);
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["fuse-denied", "null-opened"]
    );
    c.ipc_ok(&["delete", "-f", "dev2"]);
    // A rule that names it lets it open.
    let allowed = json!({"process": {"capabilities": caps},
        "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}]}}});
    let bundle = Bundle::busybox_with(&["sh", "-c", probe], allowed);
    let text = String::from_utf8_lossy(&c.ipc(&["run", "--bundle", b(&bundle), "dev3"]).stdout)
        .into_owned();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        vec!["fuse-opened", "null-opened"]
    );
}

/// An id-mapped bind mount (`idmap` with the mount's own uidMappings and
/// gidMappings): a host directory owned by 1000:1000 shows as 0:0 inside,
/// and a file root makes there belongs to 1000:1000 on the host. The
/// host's own view of the directory is unchanged.
#[test]
fn an_id_mapped_bind_mount_shows_its_owners_through_the_mappings() {
    use std::os::unix::fs::MetadataExt;
    let c = Constellation::start();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).unwrap();
    std::fs::write(dir.join("theirs"), "x").unwrap();
    std::os::unix::fs::chown(dir.join("theirs"), Some(1000), Some(1000)).unwrap();
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let bundle = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "stat -c '%u:%g' /data /data/theirs; echo hi > /data/mine",
        ],
        json!({"mounts": [{
            "destination": "/data", "type": "none", "source": dir,
            "options": ["bind", "idmap"], "uidMappings": map, "gidMappings": map
        }]}),
    );
    // Both owners as the container sees them: root's.
    let owners_seen = |bundle: &Bundle, id: &str| {
        let out = c.ipc(&["run", "--bundle", b(bundle), id]);
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            vec!["0:0", "0:0"],
            "{text}"
        );
    };
    owners_seen(&bundle, "idmap1");
    let mine = std::fs::metadata(dir.join("mine")).unwrap();
    assert_eq!((mine.uid(), mine.gid()), (1000, 1000));
    let host = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        (host.uid(), host.gid()),
        (1000, 1000),
        "the host's view changed"
    );
    // Mappings on a mount that is not a bind: refused by name, nothing left.
    let tmpfs = Bundle::busybox_with(
        &["true"],
        json!({"mounts": [{
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["idmap"], "uidMappings": map, "gidMappings": map
        }]}),
    );
    let e = c.ipc_err(&["create", "--bundle", b(&tmpfs), "idmap2"]);
    assert!(
        e.contains("mounts[") && e.contains("bind mounts only"),
        "{e}"
    );
    assert!(!c.root().join("containers").join("idmap2").exists());
    // In a container with a user namespace (host 100000.. as its 0..):
    // the mount's own mapping is read through it (host 1000 shows as the
    // container's 0), and `idmap` alone takes the container's mapping
    // (host root's files show as the container root's).
    let root_owned = shared.path().join("rootowned");
    std::fs::create_dir(&root_owned).unwrap();
    let mut mounts = asterism_tests::default_config()["mounts"].clone();
    let list = mounts.as_array_mut().unwrap();
    list.push(
        json!({"destination": "/data", "type": "none", "source": dir,
        "options": ["bind", "idmap"], "uidMappings": map, "gidMappings": map}),
    );
    list.push(
        json!({"destination": "/host", "type": "none", "source": root_owned,
        "options": ["bind", "idmap"]}),
    );
    let userns = Bundle::busybox_with(
        &[
            "sh",
            "-c",
            "stat -c '%u:%g' /data /host; echo hi > /data/ours; echo hi > /host/ours",
        ],
        json!({"linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }, "root": {"path": "rootfs", "readonly": false}, "mounts": mounts}),
    );
    // The mount points, made here: the container's root cannot write the
    // host's rootfs.
    for d in ["data", "host"] {
        std::fs::create_dir_all(userns.rootfs().join(d)).unwrap();
    }
    owners_seen(&userns, "idmap3");
    let ours = std::fs::metadata(dir.join("ours")).unwrap();
    assert_eq!((ours.uid(), ours.gid()), (1000, 1000));
    let ours = std::fs::metadata(root_owned.join("ours")).unwrap();
    assert_eq!((ours.uid(), ours.gid()), (0, 0));
}
