//! For the JoinFds tests: a real process that moves itself into groups
//! through the fds a JoinFds reply carries, and checks of those fds.

use crate::hierarchy::cgroup_of;
use crate::{CgroupDir, Hierarchies};
use libipc::server::{Ctx, PeerCred};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use protocol::cgroup::CgroupJoin;
use std::io::BufRead;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A request's context as the server loop builds it.
pub fn ctx(key: Option<&str>, fds_in: Vec<OwnedFd>) -> Ctx {
    Ctx {
        peer: PeerCred {
            pid: std::process::id() as i32,
            uid: 0,
            gid: 0,
        },
        key: key.map(str::to_string),
        deadline: None,
        fds_in,
        fds_out: vec![],
    }
}

/// A bash that joined; killed on drop.
pub struct Joiner {
    child: Child,
}

impl Joiner {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Joiner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a (single-threaded) bash holding `fds` under their own numbers,
/// which writes "0" to each in turn (`>&N` is the fd itself, not a reopen),
/// says "joined" and sleeps until killed.
pub fn join(fds: &[OwnedFd]) -> Joiner {
    let mut script = String::new();
    for fd in fds {
        script.push_str(&format!("printf 0 >&{} || exit 1; ", fd.as_raw_fd()));
    }
    script.push_str("echo joined; exec sleep 60");
    // std can only pass an fd by leaving it open across exec, so FD_CLOEXEC
    // is off for the spawn only. A child another test starts meanwhile may
    // inherit the fds too; it never writes to them.
    set_cloexec(fds, false);
    let spawned = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn();
    set_cloexec(fds, true);
    let mut j = Joiner {
        child: spawned.expect("spawn bash"),
    };
    let mut line = String::new();
    std::io::BufReader::new(j.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        "joined",
        "bash could not write 0 to the fds ({script}); see its stderr"
    );
    j
}

fn set_cloexec(fds: &[OwnedFd], on: bool) {
    let flag = if on {
        FdFlag::FD_CLOEXEC
    } else {
        FdFlag::empty()
    };
    for fd in fds {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFD(flag)).unwrap();
    }
}

/// `fd` is `path` itself, opened close-on-exec with access mode `mode`
/// (O_RDONLY or O_WRONLY), and O_DIRECTORY when `dir`.
pub fn assert_fd_is(fd: &OwnedFd, path: &Path, mode: OFlag, dir: bool) {
    let fd_flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD).unwrap();
    assert!(
        FdFlag::from_bits_truncate(fd_flags).contains(FdFlag::FD_CLOEXEC),
        "{} is not close-on-exec",
        path.display()
    );
    let fl = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL).unwrap());
    assert_eq!(fl & OFlag::O_ACCMODE, mode, "{}", path.display());
    assert_eq!(fl.contains(OFlag::O_DIRECTORY), dir, "{}", path.display());
    let got = std::fs::File::from(fd.try_clone().unwrap())
        .metadata()
        .unwrap();
    let want = std::fs::metadata(path).unwrap();
    assert_eq!(
        (got.dev(), got.ino()),
        (want.dev(), want.ino()),
        "the fd is not {}",
        path.display()
    );
    assert_eq!(got.is_dir(), dir, "{}", path.display());
}

/// /proc/PID/cgroup puts `pid` in each entry's group, and each group's
/// `tasks` and cgroup.procs list it.
pub fn assert_joined(pid: i32, entries: &[CgroupJoin]) {
    let hier = Hierarchies::discover().unwrap();
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for e in entries {
        let CgroupJoin::V1Tasks { hierarchy, path } = e else {
            panic!("only v1 groups can be joined on this host: {e:?}")
        };
        for c in hierarchy.split(',') {
            let h = hier.get(c).unwrap();
            let cg = cgroup_of(&text, h).unwrap_or_else(|| panic!("no {c} line in {text}"));
            assert_eq!(
                h.host_path(&cg),
                Path::new(path),
                "pid {pid} is not in the {c} group:\n{text}"
            );
        }
        let dir = CgroupDir::new(path);
        assert!(dir.procs().unwrap().contains(&pid), "{path}/cgroup.procs");
        let tasks = dir.read_string("tasks").unwrap();
        assert!(
            tasks.lines().any(|l| l.trim() == pid.to_string()),
            "{path}/tasks lacks {pid}: {tasks}"
        );
    }
}
