//! The launcher: builds the container process (runtime-spec runtime.md,
//! config.md, config-linux.md, runtime-linux.md).
//!
//! `launch()` clones the container process as a child of the caller (clone3
//! without CLONE_VM: a fork, already in its new namespaces) and walks it
//! through setup over a sync socketpair:
//!
//! ```text
//! parent (ipc)                          child (the container process)
//! clone3 ------------------------------> non-dumpable, setsid
//! write uid_map/gid_map; Go{pid} ------> join/create namespaces
//! created_process(pid) <- NamespacesReady
//! Attached ----------------------------> unshare cgroup ns; mounts, /dev
//! create_runtime(pid) <---- MountsDone  (only with prestart or
//! HooksDone --------------------------->  createRuntime hooks)
//!                                        createContainer hooks, pivot_root,
//!                                        console, ro root, hostname, sysctl,
//!                                        readonly/masked paths, rlimits,
//!                                        caps, user, cwd, PATH lookup,
//!                                        seccomp filter (seccomp.rs)
//! listener <----------- SeccompListener  (only with NEW_LISTENER, 1 fd)
//! Ok(Launched) <----------------- Ready
//!                                        (create) blocks on the exec fifo,
//!                                        then startContainer hooks
//!                                        execve
//! ```
//!
//! A failed step in the child comes back as `Error{errno, message}` naming
//! the step, and launch() returns it as a [`ChildError`]. If anything fails
//! after clone3 the child is killed and reaped: nothing is left behind.

mod cgroups;
pub use cgroups::remember_hierarchies;
pub use sys::close_from;
mod child;
mod console;
mod copy;
mod devices;
mod exe;
mod idmap;
mod join;
mod mounts;
mod namespaces;
mod process;
mod resolve;
mod rootfs;
mod scheduling;
pub mod seccomp;
mod sync;
mod sys;

use anyhow::{bail, Context, Result};
use libipc::wire::Conn;
use namespaces::NsPlan;
use rustix::fs::{Mode, OFlags};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use sync::Msg;

/// What to launch; see /work/notes/issue3-contract.md.
pub struct LaunchRequest<'a> {
    pub id: &'a str,
    /// Absolute.
    pub bundle: &'a Path,
    /// Validated.
    pub spec: &'a oci_spec::runtime::Spec,
    /// Absolute host path of the container's root (vfs-overlay's answer).
    pub rootfs: &'a Path,
    /// spec.process() for create, the exec'd process for exec.
    pub process: &'a oci_spec::runtime::Process,
    /// Where to send the pty master when process.terminal is set.
    pub console_socket: Option<&'a Path>,
    /// fds 3..3+N stay open in the container; LISTEN_FDS/LISTEN_PID are set.
    pub preserve_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Some: wait on it before exec (create); None: exec at once (exec).
    pub exec_fifo: Option<&'a Path>,
    /// `run` in the foreground: the process waits for the parent's
    /// `Launched::gate` instead of the exec fifo (a late launch is then
    /// sent no fifo). The parent releases its own child without init
    /// opening the fifo: one round trip to init fewer.
    pub start_gate: bool,
    /// exec: join every namespace of this pid; None: create per linux.namespaces.
    pub join: Option<i32>,
    /// The OCI state JSON for hooks run inside, given the container pid.
    pub state_json: &'a dyn Fn(i32) -> String,
    /// create/run --detach. stdio is passed through as inherited in both
    /// cases (runc's --detach behaviour); the caller decides what stdio is.
    pub detach_stdio: bool,
    /// The compiled linux.seccomp (seccomp-monitor's answer), installed
    /// last before exec. Required when the spec has linux.seccomp.
    pub seccomp: Option<&'a protocol::seccomp::Program>,
    /// The controllers' JoinFds answers: the process joins its groups by
    /// itself (join.rs). Empty: the parent has it attached (`Parent`).
    pub cgroups: &'a [(protocol::cgroup::CgroupJoin, OwnedFd)],
    /// A network namespace to join instead of creating one (netstack's
    /// pool, loopback already up).
    pub netns: Option<&'a OwnedFd>,
    /// A late launch (create only, cgroup v1 only): `cgroups`, `netns`,
    /// `seccomp` and `exec_fifo` are left empty here and come after clone3
    /// from `Parent::resources`, so that init prepares them while the
    /// process makes its namespaces and its first mounts (those that need
    /// neither its groups nor its network namespace). `rootfs` is the
    /// caller's own resolution, checked against init's answer.
    pub late: bool,
}

/// What `Parent::resources` hands over in a late launch.
pub struct LateResources {
    /// The rootfs init (vfs-overlay) resolved: must be `LaunchRequest::rootfs`.
    pub rootfs: String,
    pub cgroups: Vec<(protocol::cgroup::CgroupJoin, OwnedFd)>,
    pub netns: Option<OwnedFd>,
    pub seccomp: Option<protocol::seccomp::Program>,
    pub exec_fifo: std::path::PathBuf,
}

/// The caller's side of the setup.
pub trait Parent {
    /// uid/gid maps are written; attach `pid` to the cgroups, loopback in its netns.
    fn created_process(&mut self, pid: i32) -> anyhow::Result<()>;
    /// Mounts are done, before pivot_root: prestart and createRuntime hooks.
    /// Called for create only (exec has no mounts), and only when the config
    /// has such hooks: without, the child does not stop for them.
    fn create_runtime(&mut self, pid: i32) -> anyhow::Result<()>;
    /// A late launch: the resources, once the child runs (called before
    /// `created_process`).
    fn resources(&mut self) -> anyhow::Result<LateResources> {
        bail!("this launch has no late resources")
    }
}

/// The container process, set up and waiting on the exec fifo (create) or
/// exec'd (exec).
#[derive(Debug)]
pub struct Launched {
    pub pid: i32,
    /// The seccomp listener when the program was installed with
    /// SECCOMP_FILTER_FLAG_NEW_LISTENER (a rule uses SCMP_ACT_NOTIFY).
    pub seccomp_listener: Option<OwnedFd>,
    /// With `LaunchRequest::start_gate`: what releases the process.
    pub gate: Option<StartGate>,
}

/// The set-up process waits on its sync socket for this; dropped without
/// `open`, the socket closes and the process exits without exec.
#[derive(Debug)]
pub struct StartGate {
    conn: Conn,
}

impl StartGate {
    /// Releases the process: it runs the startContainer hooks and execs.
    pub fn open(self) -> Result<()> {
        sync::send(&self.conn, &Msg::Start).context("release the container process")
    }
}

/// A step that failed inside the container process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildError {
    /// The errno of the failed call, 0 when there was none. ENOENT for an
    /// executable not found.
    pub errno: i32,
    /// Names the step: `exec: "foo": executable file not found in $PATH`,
    /// `mounts[0]: mount proc on /proc: ...`.
    pub message: String,
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChildError {}

/// What the parent opens and decides before clone3; the child inherits it.
pub(crate) struct Prepared {
    ns: NsPlan,
    /// create (true) or exec (false).
    creating: bool,
    /// 3 + preserve_fds: our own fds all live at or above it.
    min_fd: i32,
    console: Option<OwnedFd>,
    exec_fifo: Option<OwnedFd>,
    /// The host's /proc, to reopen the fifo after pivot_root.
    host_proc: OwnedFd,
    self_exe: exe::SelfExe,
    /// clone3's CLONE_INTO_CGROUP target (a cgroup v2 group's fd).
    into_cgroup: Option<u64>,
    /// See `LaunchRequest::late`.
    late: bool,
    /// See `LaunchRequest::start_gate`.
    gate: bool,
    /// The id-mapped clones of the id-mapped bind mounts, by mount index.
    idmaps: std::collections::BTreeMap<usize, OwnedFd>,
}

/// Launches the container process; see the module doc.
///
/// The caller must be single-threaded: the child is a fork of it and uses
/// the allocator and locks it inherited (a lock held by another thread at
/// the fork would stay held forever in the child). The exec fifo must be
/// writable by the container's user (runc: mode 0622), since the process
/// opens it after switching to that user.
pub fn launch(req: &LaunchRequest<'_>, parent: &mut dyn Parent) -> Result<Launched> {
    let prep = prepare(req)?;
    crate::cli::profile::mark("launcher: prepared");
    let (ours, theirs) = socketpair(prep.min_fd)?;
    let pid_guard = prep.ns.enter_pid_for_children()?;
    let forked = sys::clone3(prep.ns.clone_flags, prep.into_cgroup);
    if let Ok(sys::Forked::Child) = forked {
        if let Some(g) = pid_guard {
            g.forget();
        }
        drop(ours);
        child::run(req, &prep, theirs);
    }
    let restored = pid_guard.map(|g| g.restore()).transpose();
    let pid = match forked {
        Ok(sys::Forked::Parent(pid)) => pid,
        Ok(sys::Forked::Child) => unreachable!("the child never gets here"),
        Err(e) => {
            let flags =
                nix::sched::CloneFlags::from_bits_retain(prep.ns.clone_flags as libc::c_int);
            return Err(namespaces::creation_error(e, flags, &clone_context(&prep)));
        }
    };
    let mut reaper = Reaper { pid, armed: true };
    crate::cli::profile::mark("launcher: cloned");
    drop(theirs);
    restored?;
    let seccomp_listener = drive(req, &prep, parent, &ours, pid)?;
    reaper.armed = false;
    Ok(Launched {
        pid,
        seccomp_listener,
        gate: prep.gate.then_some(StartGate { conn: ours }),
    })
}

fn clone_context(prep: &Prepared) -> String {
    format!(
        "clone3 the container process (namespace flags {:#x})",
        prep.ns.clone_flags
    )
}

/// The parent's half of the handshake; returns the seccomp listener if
/// the child sent one.
fn drive(
    req: &LaunchRequest<'_>,
    prep: &Prepared,
    parent: &mut dyn Parent,
    conn: &Conn,
    pid: i32,
) -> Result<Option<OwnedFd>> {
    if prep.ns.new_user {
        namespaces::write_id_maps(pid, req.spec)?;
    }
    tell(conn, &Msg::Go { pid })?;
    let late = match prep.late {
        // The child makes its namespaces and first mounts meanwhile.
        true => Some(parent.resources()?),
        false => None,
    };
    expect(conn, "NamespacesReady")?;
    crate::cli::profile::mark("launcher: namespaces ready");
    parent.created_process(pid)?;
    match &late {
        Some(l) => send_resources(req, prep, conn, l)?,
        None => tell(conn, &Msg::Attached)?,
    }
    let program = late
        .as_ref()
        .and_then(|l| l.seccomp.as_ref())
        .or(req.seccomp);
    if prep.creating && runtime_hooks(req.spec) {
        expect(conn, "MountsDone")?;
        parent.create_runtime(pid)?;
        tell(conn, &Msg::HooksDone)?;
    }
    let listener = seccomp_listener(program, conn)?;
    expect(conn, "Ready")?;
    if prep.exec_fifo.is_none() && !prep.late && !prep.gate {
        // exec: execve closes the (close-on-exec) socket; an error comes first.
        if let Some(msg) = sync::recv(conn).context("sync with the container process")? {
            return Err(child_error(msg));
        }
    }
    Ok(listener)
}

/// Does the config have hooks the runtime runs once the mounts are done
/// (prestart, createRuntime)? Only then do parent and child stop for them.
pub(crate) fn runtime_hooks(spec: &oci_spec::runtime::Spec) -> bool {
    spec.hooks().as_ref().is_some_and(|h| {
        let some = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v| !v.is_empty());
        some(h.prestart()) || some(h.create_runtime())
    })
}

/// A late launch: checks what init prepared against what the child was
/// started with, and sends it (in place of `Attached`).
fn send_resources(
    req: &LaunchRequest<'_>,
    prep: &Prepared,
    conn: &Conn,
    late: &LateResources,
) -> Result<()> {
    if Path::new(&late.rootfs) != req.rootfs {
        bail!(
            "the rootfs changed while the container was being created: init resolved {} where the launch began with {}",
            late.rootfs,
            req.rootfs.display()
        );
    }
    if let Some((entry, _)) = late
        .cgroups
        .iter()
        .find(|(e, _)| !matches!(e, protocol::cgroup::CgroupJoin::V1Tasks { .. }))
    {
        bail!("launch: a late launch joins cgroup v1 groups only, not {entry:?}");
    }
    let wants_seccomp = req
        .spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.seccomp().is_some());
    if wants_seccomp && late.seccomp.is_none() {
        bail!("linux.seccomp: no compiled program came with the resources (seccomp-monitor compiles it)");
    }
    let netns = match (prep.ns.deferred_net, &late.netns) {
        (true, Some(fd)) => Some(fd),
        (true, None) => {
            bail!("init prepared no network namespace for a container that asks for a new one")
        }
        // Not ours to use (the process has its own or joins one by path).
        (false, _) => None,
    };
    // A process behind a start gate waits for no fifo.
    let fifo = match prep.gate {
        true => None,
        false => Some(lift(
            rustix::fs::open(
                &late.exec_fifo,
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open the exec fifo {}", late.exec_fifo.display()))?,
            prep.min_fd,
        )?),
    };
    let mut fds: Vec<_> = late.cgroups.iter().map(|(_, fd)| fd.as_fd()).collect();
    fds.extend(netns.map(|fd| fd.as_fd()));
    fds.extend(fifo.as_ref().map(|fd| fd.as_fd()));
    let msg = Msg::Resources {
        joins: late.cgroups.iter().map(|(e, _)| e.clone()).collect(),
        netns: netns.is_some(),
        seccomp: late.seccomp.clone(),
    };
    match sync::send_with_fds(conn, &msg, &fds) {
        Ok(()) => Ok(()),
        Err(e) => Err(why_unheard(conn, e)),
    }
}

/// A program installed with NEW_LISTENER: the child sends the listener
/// (one fd) before Ready.
fn seccomp_listener(
    program: Option<&protocol::seccomp::Program>,
    conn: &Conn,
) -> Result<Option<OwnedFd>> {
    let wanted = program.is_some_and(|p| p.flags & seccomp::FLAG_NEW_LISTENER != 0);
    if !wanted {
        return Ok(None);
    }
    match sync::recv_with_fds(conn).context("sync with the container process")? {
        Some((Msg::SeccompListener, mut fds)) if fds.len() == 1 => Ok(fds.pop()),
        Some((Msg::SeccompListener, fds)) => bail!(
            "container process: the seccomp listener came with {} fds, not 1",
            fds.len()
        ),
        Some((msg, _)) => Err(child_error(msg)),
        None => bail!("the container process exited during setup, before its seccomp listener"),
    }
}

/// Sends the child its next message. A child that failed early has sent
/// its error and exited: our send then fails (the peer is gone) while its
/// error still waits in our queue, and that error is what the user needs.
fn tell(conn: &Conn, msg: &Msg) -> Result<()> {
    sync::send(conn, msg).map_err(|e| why_unheard(conn, e))
}

/// The child's error queued for us, else the failed send's.
fn why_unheard(conn: &Conn, send_error: std::io::Error) -> anyhow::Error {
    match sync::recv(conn) {
        Ok(Some(m @ Msg::Error { .. })) => child_error(m),
        _ => anyhow::Error::new(send_error).context("sync with the container process"),
    }
}

/// The next message, which must be `want`; a child error otherwise.
fn expect(conn: &Conn, want: &str) -> Result<()> {
    match sync::recv(conn).context("sync with the container process")? {
        Some(Msg::Error { errno, message }) => Err(ChildError { errno, message }.into()),
        Some(m) if format!("{m:?}") == want => Ok(()),
        Some(m) => bail!("container process: expected {want}, got {m:?}"),
        None => bail!("the container process exited during setup, before {want}"),
    }
}

fn child_error(msg: Msg) -> anyhow::Error {
    match msg {
        Msg::Error { errno, message } => ChildError { errno, message }.into(),
        other => anyhow::anyhow!("container process: unexpected {other:?}"),
    }
}

/// Kills and reaps the child unless disarmed.
struct Reaper {
    pid: i32,
    armed: bool,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.armed {
            let pid = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Checks and opens everything the child needs from the host.
fn prepare(req: &LaunchRequest<'_>) -> Result<Prepared> {
    let min_fd = check_preserved_fds(req.preserve_fds)?;
    check_process(req)?;
    let creating = req.join.is_none();
    let mut ns = match req.join {
        Some(pid) => NsPlan::for_join(pid)?,
        None => NsPlan::for_create(req.spec)?,
    };
    if let Some(fd) = req.netns {
        ns.use_prepared_netns(
            fd.try_clone()
                .context("dup the prepared network namespace")?,
        )?;
    }
    if req.late {
        if !creating {
            bail!("launch: only a create can take its resources late");
        }
        // init gives a pooled namespace exactly then (wants_pooled_netns).
        if ns.new_net && !ns.user_ns {
            ns.defer_netns()?;
        }
    }
    if !ns.user_ns {
        process::warn_ungranted(req.process);
    }
    let into_cgroup = join::v2_dir(req.cgroups)?;
    namespaces::check_mappings(&ns, req.spec)?;
    let mut idmaps = std::collections::BTreeMap::new();
    if creating {
        for (i, fd) in idmap::prepare(req.spec, req.bundle, ns.user_ns)? {
            idmaps.insert(i, lift(fd, min_fd)?);
        }
    }
    let console = match (req.process.terminal().unwrap_or(false), req.console_socket) {
        (true, Some(path)) => Some(lift(connect_console(path)?, min_fd)?),
        (true, None) => {
            bail!("process.terminal is true but no console socket was given (--console-socket)")
        }
        (false, Some(_)) => bail!("a console socket was given but process.terminal is false"),
        (false, None) => None,
    };
    let exec_fifo = match req.exec_fifo {
        Some(path) => Some(lift(
            rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .with_context(|| format!("open the exec fifo {}", path.display()))?,
            min_fd,
        )?),
        None => None,
    };
    let host_proc = lift(
        rustix::fs::open(
            "/proc",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .context("open /proc")?,
        min_fd,
    )?;
    Ok(Prepared {
        ns,
        creating,
        min_fd,
        console,
        exec_fifo,
        host_proc,
        self_exe: exe::SelfExe::capture()?,
        into_cgroup,
        late: req.late,
        gate: req.start_gate && creating,
        idmaps,
    })
}

/// Features the launcher does not implement are refused, never ignored: a
/// seccomp profile silently left out would be a container less confined
/// than asked. AppArmor and SELinux settings are ignored only on a host
/// without that LSM, as runc does.
fn check_supported(req: &LaunchRequest<'_>) -> Result<()> {
    let p = req.process;
    let unsupported = |what: &str| anyhow::anyhow!("{what}: not supported by this runtime yet");
    if let Some(l) = req.spec.linux() {
        // A late launch gets its program with the resources (checked there).
        if l.seccomp().is_some() && req.seccomp.is_none() && !req.late {
            bail!("linux.seccomp: no compiled program was given to the launcher (seccomp-monitor compiles it)");
        }
        if l.mount_label().is_some() && selinux_enabled() {
            return Err(unsupported("linux.mountLabel"));
        }
    }
    if p.apparmor_profile().as_ref().is_some_and(|s| !s.is_empty()) && apparmor_enabled() {
        return Err(unsupported("process.apparmorProfile"));
    }
    if p.selinux_label().as_ref().is_some_and(|s| !s.is_empty()) && selinux_enabled() {
        return Err(unsupported("process.selinuxLabel"));
    }
    Ok(())
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

fn check_process(req: &LaunchRequest<'_>) -> Result<()> {
    check_supported(req)?;
    if req.process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args: must not be empty");
    }
    if !req.process.cwd().is_absolute() {
        bail!("process.cwd: must be an absolute path");
    }
    if !req.rootfs.is_absolute() || !req.bundle.is_absolute() {
        bail!("launch: the bundle and rootfs paths must be absolute");
    }
    Ok(())
}

/// fds 3..3+N must be open (they are the container's); returns 3+N.
fn check_preserved_fds(n: u32) -> Result<i32> {
    let min = 3 + i32::try_from(n).context("--preserve-fds is too large")?;
    for fd in 3..min {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD)
            .with_context(|| format!("--preserve-fds: fd {fd} is not open"))?;
    }
    Ok(min)
}

/// Moves `fd` to a number at or above `min`, so that it cannot be mistaken
/// for a preserved fd.
fn lift(fd: OwnedFd, min: i32) -> Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    Ok(rustix::io::fcntl_dupfd_cloexec(&fd, min)?)
}

fn socketpair(min: i32) -> Result<(Conn, Conn)> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .context("socketpair for the container process")?;
    Ok((Conn::from_fd(lift(a, min)?), Conn::from_fd(lift(b, min)?)))
}

/// The console socket: a SOCK_STREAM Unix socket, as runc connects to it.
fn connect_console(path: &Path) -> Result<OwnedFd> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = SocketAddrUnix::new(path)?;
    rustix::net::connect(&fd, &addr)
        .with_context(|| format!("connect to the console socket {}", path.display()))?;
    Ok(fd)
}

/// The errno somewhere in an error's chain, 0 if none.
fn errno_of(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<process::LookupError>() {
            return e.errno;
        }
        if let Some(e) = cause.downcast_ref::<nix::Error>() {
            return *e as i32;
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if let Some(n) = e.raw_os_error() {
                return n;
            }
        }
        if let Some(e) = cause.downcast_ref::<rustix::io::Errno>() {
            return e.raw_os_error();
        }
    }
    0
}
