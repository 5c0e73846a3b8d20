//! The container process from clone3 to execve. It is a fork of the
//! single-threaded caller, so ordinary Rust is fine here; it never returns:
//! it execs the container's program or reports the failed step to the
//! parent and exits.

use super::exe;
use super::namespaces;
use super::process::{self, Caps};
use super::rootfs;
use super::sync::{self, Msg};
use super::sys;
use super::{LaunchRequest, Prepared};
use crate::hooks::{self, Phase};
use anyhow::{anyhow, bail, Context, Result};
use libipc::wire::Conn;
use rustix::fs::{Mode, OFlags};
use std::convert::Infallible;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Runs the container process; never returns. Not even by a panic: this
/// process is a fork of the caller, and unwinding would carry it back into
/// the caller's frames, to go on as a second `ipc`.
pub fn run(req: &LaunchRequest<'_>, prep: &Prepared, conn: Conn) -> ! {
    let setup = std::panic::AssertUnwindSafe(|| setup_and_exec(req, prep, &conn));
    let err = match std::panic::catch_unwind(setup) {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e,
        Err(_) => anyhow!("the container process's setup panicked"),
    };
    let errno = super::errno_of(&err);
    let message = format!("{err:#}");
    if sync::send(
        &conn,
        &Msg::Error {
            errno,
            message: message.clone(),
        },
    )
    .is_err()
    {
        // The parent is gone (after `create` returned): stderr is all we have.
        let _ = std::io::stderr()
            .write_all(format!("asterism: container process: {message}\n").as_bytes());
    }
    sys::exit_now(if errno == libc::ENOENT { 127 } else { 1 })
}

fn expect(conn: &Conn, what: &str) -> Result<Msg> {
    match sync::recv(conn).context("sync with the runtime")? {
        Some(m) => Ok(m),
        None => bail!("the runtime went away while we waited for {what}"),
    }
}

fn setup_and_exec(req: &LaunchRequest<'_>, prep: &Prepared, conn: &Conn) -> Result<Infallible> {
    start()?;
    let affinity = match prep.creating {
        false => req.process.exec_cpu_affinity().as_ref(),
        true => None, // "not applicable to the container's init process"
    };
    if let Some(cpus) = affinity.and_then(|a| a.initial().as_deref()) {
        super::scheduling::cpu_affinity(cpus, "process.execCPUAffinity.initial")?;
    }
    // First, while nothing else runs in this process (see join.rs). A late
    // launch joins when its groups arrive (still single-threaded then).
    super::join::join_v1(req.cgroups)?;
    // Joining a cpuset reset the affinity to its cpus: `final` goes on top.
    if let Some(cpus) = affinity.and_then(|a| a.cpu_affinity_final().as_deref()) {
        super::scheduling::cpu_affinity(cpus, "process.execCPUAffinity.final")?;
    }
    let Msg::Go { pid } = expect(conn, "the go-ahead")? else {
        bail!("unexpected message from the runtime");
    };
    enter_namespaces(req, prep)?;
    sync::send(conn, &Msg::NamespacesReady)?;
    let mut late = Late::new(prep.late, req.spec);
    if !prep.late {
        expect(conn, "the cgroup attach")?;
        enter_cgroup_ns(prep)?;
    }
    process::oom_score_adj(req.process)?;
    if prep.creating {
        build_container(req, prep, conn, pid, &mut late)?;
    } else if let Some(sock) = &prep.console {
        super::console::setup(sock.as_fd(), console_size(req), false)?;
    }
    // From here on a late launch's request has its seccomp program.
    let late_req;
    let req = match &late.got {
        Some(r) => {
            late_req = LaunchRequest {
                seccomp: r.seccomp.as_ref(),
                ..*req
            };
            &late_req
        }
        None => req,
    };
    let exec_fifo = prep
        .exec_fifo
        .as_ref()
        .or(late.got.as_ref().and_then(|r| r.exec_fifo.as_ref()));
    if !req.no_new_keyring {
        process::new_session_keyring(req.id)?;
    }
    let (exec, listener) = finalize_process(req, prep)?;
    nix::sys::prctl::set_pdeathsig(None).context("clear the parent-death signal")?;
    if let Some(fd) = listener {
        sync::send_with_fd(conn, &Msg::SeccompListener, fd.as_fd())?;
        // Ours is close-on-exec anyway; the parent holds the one that counts.
        drop(fd);
    }
    sync::send(conn, &Msg::Ready)?;
    let released = match (prep.gate, exec_fifo) {
        (true, _) => {
            wait_for_gate(conn)?;
            true
        }
        (false, Some(fifo)) => {
            wait_for_start(prep, fifo)?;
            true
        }
        (false, None) => false, // exec: at once
    };
    if released {
        let state = (req.state_json)(pid);
        hooks::run_phase(Phase::StartContainer, req.spec.hooks().as_ref(), &state)?;
    }
    exec.run(prep)
}

/// A cgroup namespace is made once the process is in its groups: its
/// root is the group it is in then.
fn enter_cgroup_ns(prep: &Prepared) -> Result<()> {
    if prep.ns.new_cgroup {
        let flag = nix::sched::CloneFlags::CLONE_NEWCGROUP;
        nix::sched::unshare(flag)
            .map_err(|e| namespaces::creation_error(e, flag, "create cgroup namespace"))?;
    }
    Ok(())
}

/// What a late launch receives from the runtime (`Msg::Resources`).
struct Received {
    seccomp: Option<protocol::seccomp::Program>,
    /// None behind a start gate.
    exec_fifo: Option<OwnedFd>,
}

/// A late launch's resources: waited for once, before the first step that
/// needs them (a mount that is neither proc, tmpfs, devpts nor mqueue).
struct Late {
    pending: bool,
    /// The config has a `cgroup` mount (its hierarchies are read ahead).
    cgroup_mount: bool,
    got: Option<Received>,
}

impl Late {
    fn new(late: bool, spec: &oci_spec::runtime::Spec) -> Self {
        let cgroup_mount = spec
            .mounts()
            .iter()
            .flatten()
            .any(|m| m.typ().as_deref() == Some("cgroup"));
        Late {
            pending: late,
            cgroup_mount,
            got: None,
        }
    }

    /// Receives the resources (once) and joins the groups and the network
    /// namespace, then makes the cgroup namespace if one is asked for.
    fn ensure(&mut self, prep: &Prepared, conn: &Conn) -> Result<()> {
        if !std::mem::take(&mut self.pending) {
            return Ok(());
        }
        if self.cgroup_mount {
            super::cgroups::read_hierarchies_ahead()?;
        }
        let (msg, mut fds) = match sync::recv_with_fds(conn).context("sync with the runtime")? {
            Some(m) => m,
            None => bail!("the runtime went away while we waited for our cgroups"),
        };
        let Msg::Resources {
            joins,
            netns,
            seccomp,
        } = msg
        else {
            bail!("expected the runtime's resources, got {msg:?}");
        };
        let fifo = !prep.gate;
        if fds.len() != joins.len() + usize::from(netns) + usize::from(fifo) {
            bail!(
                "the runtime's resources came with {} fds for {} joins{}{}",
                fds.len(),
                joins.len(),
                if netns { ", a network namespace" } else { "" },
                if fifo { " and the exec fifo" } else { "" }
            );
        }
        let exec_fifo = fifo.then(|| fds.pop()).flatten();
        let net = netns.then(|| fds.pop()).flatten();
        let joins: Vec<_> = joins.into_iter().zip(fds).collect();
        super::join::join_v1(&joins)?;
        if let Some(fd) = &net {
            namespaces::join_deferred_net(fd.as_fd())?;
        }
        enter_cgroup_ns(prep)?;
        self.got = Some(Received { seccomp, exec_fifo });
        Ok(())
    }
}

/// First acts: nobody may open /proc/<us>/exe (see exe.rs), die with the
/// parent while setting up, a clean signal state, a session of our own.
fn start() -> Result<()> {
    nix::sys::prctl::set_dumpable(false).context("make the process non-dumpable")?;
    // Had the parent died before this, the sync socket tells us (EOF).
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .context("set the parent-death signal")?;
    sys::reset_signal_dispositions();
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .context("unblock signals")?;
    nix::unistd::setsid().context("setsid")?;
    Ok(())
}

fn enter_namespaces(req: &LaunchRequest<'_>, prep: &Prepared) -> Result<()> {
    if prep.ns.new_user {
        namespaces::become_root_unsharing(prep.ns.unshare_as_root)?;
    }
    namespaces::join_all(&prep.ns)?;
    if prep.ns.new_time {
        namespaces::enter_new_time_ns(req.spec)?;
    }
    Ok(())
}

fn console_size(req: &LaunchRequest<'_>) -> super::console::Size {
    req.process.console_size().map(|b| {
        (
            b.height().min(u16::MAX as u64) as u16,
            b.width().min(u16::MAX as u64) as u16,
        )
    })
}

/// `create`: the rootfs, the runtime hooks, pivot_root and what follows it.
fn build_container(
    req: &LaunchRequest<'_>,
    prep: &Prepared,
    conn: &Conn,
    pid: i32,
    late: &mut Late,
) -> Result<()> {
    let root = if prep.ns.mount_ns_private {
        let setup = rootfs::Setup {
            spec: req.spec,
            rootfs: req.rootfs,
            bundle: req.bundle,
            cwd: req.process.cwd(),
            user_ns: prep.ns.user_ns,
            cgroup_ns: prep.ns.new_cgroup,
            proc_paths_early: prep.late,
            idmaps: &prep.idmaps,
        };
        Some(rootfs::prepare(&setup, &mut || late.ensure(prep, conn))?)
    } else if req.spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        bail!("mounts: a new mount namespace is needed for mounts (add {{\"type\": \"mount\"}} to linux.namespaces)");
    } else {
        None
    };
    let (root, done) = match root {
        Some((root, done)) => (Some(root), done),
        None => (None, rootfs::DoneEarly::default()),
    };
    late.ensure(prep, conn)?;
    crate::cli::profile::mark("launcher: mounts done");
    if super::runtime_hooks(req.spec) {
        sync::send(conn, &Msg::MountsDone)?;
        expect(conn, "the runtime hooks")?;
    }
    let state = (req.state_json)(pid);
    // runc runs these with the rootfs as working directory.
    nix::unistd::chdir(req.rootfs).context("chdir to the rootfs")?;
    hooks::run_phase(Phase::CreateContainer, req.spec.hooks().as_ref(), &state)?;
    match &root {
        Some(root) if req.no_pivot => rootfs::move_root(root.as_fd())?,
        Some(root) => rootfs::pivot(root.as_fd())?,
        None => rootfs::chroot_only(req.rootfs)?,
    }
    if let Some(sock) = &prep.console {
        super::console::setup(sock.as_fd(), console_size(req), true)?;
    }
    after_pivot(req, prep, &done)
}

fn after_pivot(req: &LaunchRequest<'_>, prep: &Prepared, done: &rootfs::DoneEarly) -> Result<()> {
    let not_done = |paths: Option<&Vec<String>>, done: &[String]| -> Vec<String> {
        paths
            .into_iter()
            .flatten()
            .filter(|p| !done.contains(p))
            .cloned()
            .collect()
    };
    let linux = req.spec.linux().as_ref();
    if prep.ns.mount_ns_private {
        rootfs::apply_root_propagation(req.spec)?;
    }
    if req
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        rootfs::make_root_readonly()?;
    }
    rootfs::set_names(req.spec, prep.ns.new_uts)?;
    rootfs::sysctl(req.spec, prep.ns.own())?;
    rootfs::readonly_paths(&not_done(
        linux.and_then(|l| l.readonly_paths().as_ref()),
        &done.readonly,
    ))?;
    rootfs::masked_paths(&not_done(
        linux.and_then(|l| l.masked_paths().as_ref()),
        &done.masked,
    ))?;
    Ok(())
}

/// What execve gets.
struct Exec {
    path: PathBuf,
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
}

/// rlimits, capabilities, user, cwd, umask, environment and the program,
/// all before `start` so that their errors are `create` errors (as runc).
/// The seccomp filter goes last (see seccomp.rs); its listener, if any, is
/// returned for the parent.
fn finalize_process(req: &LaunchRequest<'_>, prep: &Prepared) -> Result<(Exec, Option<OwnedFd>)> {
    let p = req.process;
    process::rlimits(p)?;
    // While every capability is still held (a real-time policy or I/O
    // class needs one).
    super::scheduling::apply(req.spec, p)?;
    let caps = Caps::from_process(p)?;
    let env = process::environment(p, req.preserve_fds);
    // No host fd may survive into the container (CVE-2024-21626): all but
    // stdio and the preserved ones are close-on-exec from here on, before
    // cwd could point at one of them.
    sys::cloexec_from(prep.min_fd as u32).context("mark inherited fds close-on-exec")?;
    let cwd = p.cwd();
    let cwd_done = chdir_checked(cwd, false)?;
    let args = p.args().clone().unwrap_or_default();
    let Some(arg0) = args.first() else {
        bail!("process.args: must not be empty");
    };
    let path = process::lookup(arg0, &env).map_err(anyhow::Error::new)?;
    exe::check(&path, prep.self_exe)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    if nnp {
        nix::sys::prctl::set_no_new_privs().context("process.noNewPrivileges: set it")?;
    }
    // Without no_new_privs installing a filter needs CAP_SYS_ADMIN: do it
    // now, before the capabilities and the user change (runc's order).
    let mut listener = None;
    if let (Some(program), false) = (req.seccomp, nnp) {
        listener = super::seccomp::install(program)?;
    }
    if let Some(c) = &caps {
        c.apply_bounding()?;
        nix::sys::prctl::set_keepcaps(true).context("keep capabilities across the user change")?;
    }
    process::switch_user(p)?;
    if !cwd_done {
        chdir_checked(cwd, true)?;
    }
    if let Some(c) = &caps {
        nix::sys::prctl::set_keepcaps(false).context("clear keepcaps")?;
        c.apply()?;
    }
    // A credential change resets dumpability to fs.suid_dumpable: set it
    // again, it must hold until execve (exe.rs).
    nix::sys::prctl::set_dumpable(false).context("make the process non-dumpable")?;
    process::set_umask(p);
    let exec = Exec {
        path,
        argv: process::c_strings(&args)?,
        envp: process::c_strings(&env)?,
    };
    // With no_new_privs, as late as possible: fewer of our own syscalls
    // run under the container's filter.
    if let (Some(program), true) = (req.seccomp, nnp) {
        listener = super::seccomp::install(program)?;
    }
    Ok((exec, listener))
}

/// chdir to process.cwd; false when it was refused for permission and must
/// be retried as the container's user (runc's order). The result must be
/// inside the container's root: a cwd reached through a leaked fd would not
/// be (getcwd then fails), CVE-2024-21626.
fn chdir_checked(cwd: &Path, last_try: bool) -> Result<bool> {
    match nix::unistd::chdir(cwd) {
        Ok(()) => {}
        Err(nix::Error::EACCES | nix::Error::EPERM) if !last_try => return Ok(false),
        Err(e) => {
            return Err(anyhow!(e))
                .with_context(|| format!("process.cwd: chdir to {}", cwd.display()))
        }
    }
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(true),
        _ => bail!(
            "process.cwd: {} is outside the container's root",
            cwd.display()
        ),
    }
}

/// Blocks until the parent opens the start gate (`ipc run`).
fn wait_for_gate(conn: &Conn) -> Result<()> {
    match expect(conn, "the start")? {
        Msg::Start => Ok(()),
        other => bail!("expected the start from the runtime, got {other:?}"),
    }
}

/// Blocks until `start` opens the exec fifo for reading, then writes the
/// byte it waits for. The fifo is reopened for writing through our O_PATH
/// fd via the host's /proc, which stays reachable through `prep.host_proc`.
fn wait_for_start(prep: &Prepared, fifo: &OwnedFd) -> Result<()> {
    let link = format!("self/fd/{}", fifo.as_raw_fd());
    let fd = rustix::fs::openat(
        &prep.host_proc,
        link.as_str(),
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .context("open the exec fifo")?;
    rustix::io::write(&fd, b"0").context("write to the exec fifo")?;
    Ok(())
}

impl Exec {
    /// Last fd hygiene, then execve. Returns only on failure.
    fn run(self, prep: &Prepared) -> Result<Infallible> {
        sys::cloexec_from(prep.min_fd as u32).context("mark inherited fds close-on-exec")?;
        for fd in 3..prep.min_fd {
            use nix::fcntl::{fcntl, FcntlArg, FdFlag};
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))
                .with_context(|| format!("keep preserved fd {fd} open across exec"))?;
        }
        let err = nix::unistd::execve(
            &std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes())?,
            &self.argv,
            &self.envp,
        )
        .unwrap_err();
        Err(anyhow!(err)).with_context(|| format!("exec {:?}", self.path.display().to_string()))
    }
}
