//! `ipc` driven the way the engines drive runc: containerd's shim
//! (`--root --log --log-format json`, create with --pid-file, start,
//! ps --format json, exec --process --detach --pid-file, kill 15/9, delete)
//! and podman's conmon (create with --console-socket, start, kill,
//! delete --force).

use asterism_tests::{alive, wait_for, Bundle, Constellation};
use serde_json::json;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

fn b(bundle: &Bundle) -> &str {
    bundle.path().to_str().unwrap()
}

#[test]
fn containerd_shim_sequence() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(&["sleep", "300"], json!({}));
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("log.json");
    let pidf = work.path().join("init.pid");
    let shim = |args: &[&str]| {
        let mut all = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
        all.extend_from_slice(args);
        c.ipc(&all)
    };
    let out = shim(&[
        "create",
        "--bundle",
        b(&bundle),
        "--pid-file",
        pidf.to_str().unwrap(),
        "ctrd1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i32 = std::fs::read_to_string(&pidf).unwrap().parse().unwrap();
    assert!(shim(&["start", "ctrd1"]).status.success());
    let ps = shim(&["ps", "--format", "json", "ctrd1"]);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(pids, vec![pid]);

    // exec --process FILE --detach --pid-file
    let process = json!({"args": ["sleep", "200"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                         "env": ["PATH=/bin"]});
    let pf = work.path().join("process.json");
    std::fs::write(&pf, process.to_string()).unwrap();
    let exec_pid = work.path().join("exec.pid");
    let out = shim(&[
        "exec",
        "--process",
        pf.to_str().unwrap(),
        "--detach",
        "--pid-file",
        exec_pid.to_str().unwrap(),
        "ctrd1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let epid: i32 = std::fs::read_to_string(&exec_pid).unwrap().parse().unwrap();
    assert!(alive(epid));
    let pids: Vec<i32> =
        serde_json::from_slice(&shim(&["ps", "--format", "json", "ctrd1"]).stdout).unwrap();
    assert!(pids.contains(&epid) && pids.contains(&pid), "{pids:?}");

    // sleep is pid 1 of its pid namespace and has no SIGTERM handler, so
    // the kernel drops SIGTERM (as under runc); the shim follows with 9.
    assert!(shim(&["kill", "ctrd1", "15"]).status.success());
    assert!(shim(&["kill", "ctrd1", "9"]).status.success());
    let stopped = wait_for(Duration::from_secs(5), || (!alive(pid)).then_some(()));
    assert!(stopped.is_some(), "SIGKILL stops it");
    assert!(shim(&["delete", "ctrd1"]).status.success());

    // An error goes to the log as JSON, as the shim reads it.
    let out = shim(&["start", "ctrd1"]);
    assert!(!out.status.success());
    let last = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let entry: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(entry["level"], "error");
    assert!(entry["msg"].as_str().unwrap().contains("ctrd1"), "{entry}");
    // delete --force of a container that is already gone succeeds.
    assert!(shim(&["delete", "--force", "ctrd1"]).status.success());

    // A line clap refuses is logged too (the shim has nothing else to
    // show), and a global flag given twice is not refused: the last one
    // wins, as dockerd's wrapper for runtimeArgs needs (--root R1 ... --root R2).
    let out = shim(&["create", "--bogus-flag", "ctrd2"]);
    // runc's usage error: 1.
    assert_eq!(out.status.code(), Some(1));
    let last = std::fs::read_to_string(&log).unwrap();
    let entry: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert!(
        entry["msg"].as_str().unwrap().contains("--bogus-flag"),
        "{entry}"
    );
    // (A root under /dev/null cannot be made: taken, it would fail.)
    let out = std::process::Command::new(asterism_tests::bin("ipc"))
        .args(["--root", "/dev/null/not-a-root", "--root"])
        .arg(c.root())
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "null");
}

/// Receives the pty master that `create --console-socket` sends.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> (String, OwnedFd) {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg =
        rustix::net::recvmsg(stream.as_fd(), &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC).unwrap();
    let mut fd = None;
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = m {
            fd = fds.next();
        }
    }
    (
        String::from_utf8_lossy(&buf[..msg.bytes]).into_owned(),
        fd.expect("a pty master fd"),
    )
}

#[test]
fn conmon_console_socket_sequence() {
    let c = Constellation::start();
    let bundle = Bundle::busybox_with(
        &["sh", "-c", "tty; echo typed:$(head -n1)"],
        json!({"process": {"terminal": true}}),
    );
    let work = tempfile::tempdir().unwrap();
    let sock = work.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let pidf = work.path().join("pid");
    let out = c.ipc(&[
        "create",
        "--bundle",
        b(&bundle),
        "--pid-file",
        pidf.to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        "con1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (stream, _) = listener.accept().unwrap();
    let (_name, master) = recv_fd(&stream);
    c.ipc_ok(&["start", "con1"]);
    let mut master = std::fs::File::from(master);
    master.write_all(b"hello\n").unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !seen.contains("typed:hello") && std::time::Instant::now() < until {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    assert!(
        seen.contains("/dev/pts/"),
        "the process's stdio is a pty: {seen:?}"
    );
    assert!(
        seen.contains("typed:hello"),
        "input through the pty master: {seen:?}"
    );
    let _ = c.ipc(&["kill", "con1", "9"]);
    c.ipc_ok(&["delete", "--force", "con1"]);
}
