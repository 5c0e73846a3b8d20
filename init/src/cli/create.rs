//! create, run and exec: the commands that make a process. `ipc` itself
//! clones it (through the launcher), so the caller's process (conmon,
//! containerd's shim, a shell) is its parent, as with runc. ipc must be
//! single-threaded when it calls the launcher: nothing here starts threads.

use super::foreground::ConsoleListener;
use super::oci::{init_client, CreateArgs, ExecArgs, InitConn, RunArgs, Started};
use crate::launcher::{self, LateResources, LaunchRequest, Parent};
use crate::lifecycle::record::fifo_path;
use crate::lifecycle::Prepared;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use protocol::init::{InitRequest, InitResponse};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The parent side of a create: init attaches the process to its groups
/// and netstack brings loopback up; the runtime-namespace hooks run here.
struct CreateParent<'a> {
    init: &'a mut InitConn,
    /// A late launch: init's Prepare, sent before clone3 (`resources`
    /// takes its answer), and whether it succeeded.
    prepare: Option<Started>,
    prepared: bool,
    root: &'a Path,
    netns_prepared: bool,
    needs_listener: bool,
    id: &'a str,
    spec: &'a Spec,
    bundle: &'a str,
    annotations: BTreeMap<String, String>,
}

impl Parent for CreateParent<'_> {
    fn created_process(&mut self, pid: i32) -> Result<()> {
        // The process joined its groups by itself and a prepared network
        // namespace has loopback up already: nothing to do. Only a network
        // namespace the process made itself (under a user namespace) needs
        // netstack now.
        let loopback =
            !self.netns_prepared && new_namespace(self.spec, LinuxNamespaceType::Network);
        // A seccomp listener is handed over before MarkCreated: init must
        // know the pid by then.
        if !loopback && !self.needs_listener {
            return Ok(());
        }
        let netns = loopback.then(|| open_ns(pid, "net")).transpose()?;
        let req = InitRequest::AttachPid {
            id: self.id.into(),
            pid,
            netns: netns.is_some(),
        };
        self.init
            .call_with_fds(req, None, netns.into_iter().collect())?;
        Ok(())
    }

    fn create_runtime(&mut self, pid: i32) -> Result<()> {
        let state =
            crate::lifecycle::creating_state_json(self.id, self.bundle, pid, &self.annotations);
        let hooks = self.spec.hooks().as_ref();
        crate::hooks::run_phase(crate::hooks::Phase::Prestart, hooks, &state)?;
        crate::hooks::run_phase(crate::hooks::Phase::CreateRuntime, hooks, &state)
    }

    fn resources(&mut self) -> Result<LateResources> {
        let started = self
            .prepare
            .take()
            .ok_or_else(|| anyhow!("a late launch without a Prepare sent"))?;
        let (answer, fds) = self.init.finish(started)?;
        let p = decode_prepared(answer, fds)?;
        self.prepared = true;
        super::profile::mark("prepared by init (record, groups, rootfs, netns)");
        self.netns_prepared = p.netns.is_some();
        self.needs_listener = p.seccomp.as_ref().is_some_and(|s| s.needs_listener);
        Ok(LateResources {
            rootfs: p.rootfs,
            cgroups: p.joins,
            netns: p.netns,
            seccomp: p.seccomp,
            exec_fifo: fifo_path(self.root, self.id),
        })
    }
}

/// Does the config ask for a new namespace of this type (no path to join)?
fn new_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

fn open_ns(pid: i32, kind: &str) -> Result<OwnedFd> {
    let p = format!("/proc/{pid}/ns/{kind}");
    Ok(std::fs::File::open(&p)
        .with_context(|| format!("open {p}"))?
        .into())
}

fn bundle_dir(a: &CreateArgs) -> Result<PathBuf> {
    let b = a.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
    b.canonicalize()
        .with_context(|| format!("bundle {}", b.display()))
}

/// `create`: returns the container's pid.
pub fn create(root: &Path, a: &CreateArgs) -> Result<i32> {
    Ok(create_with(root, &mut init_client(root)?, a, false)?.pid)
}

/// A container `create_with` made.
struct Made {
    pid: i32,
    /// Our own console socket (`run` with a terminal and no --console-socket).
    console: Option<ConsoleListener>,
    /// `run` in the foreground: the process waits for us, not for the exec
    /// fifo, and init has not been told it is created (MarkRunning does).
    gate: Option<launcher::StartGate>,
}

/// `foreground` (`run` without --detach): with process.terminal and no
/// --console-socket, ipc takes the pty master itself (foreground.rs), and
/// the process is released through a `StartGate` rather than the exec fifo.
fn create_with(root: &Path, init: &mut InitConn, a: &CreateArgs, foreground: bool) -> Result<Made> {
    protocol::validate_id("container id", &a.id)?;
    let bundle = bundle_dir(a)?;
    let bundle_s = bundle.to_string_lossy().into_owned();
    let bytes = crate::config::read_bytes(&bundle).map_err(|e| anyhow!("{e}"))?;
    // init prepares from the config's own text while we check it: Prepare
    // goes first, and is aborted if the config turns out to be bad. (Text
    // that is not UTF-8 is no JSON: the check below refuses it.)
    let early = std::str::from_utf8(&bytes).ok().map(|text| {
        let req = prepare_request(a, text.to_string(), &bundle_s, foreground);
        init.start(req, None)
    });
    let (started, (spec, process, console)) =
        match (early, checked_config(root, a, &bundle, &bytes, foreground)) {
            (Some(started), Ok(checked)) => (started, checked),
            (early, Err(e)) => {
                if let Some(started) = early {
                    abandon(init, started, &a.id, &e);
                }
                return Err(e);
            }
            (None, Ok(_)) => bail!("{}: not UTF-8", bundle.join("config.json").display()),
        };
    let own_args;
    let a = match &console {
        Some(listener) => {
            let mut args = a.clone();
            args.console_socket = Some(listener.path().to_path_buf());
            own_args = args;
            &own_args
        }
        None => a,
    };
    super::profile::mark("config loaded and checked");
    let prepared;
    let resources = match late_launch_rootfs(&bundle_s, &spec) {
        // A late launch: the process is cloned and makes its namespaces and
        // first mounts while init prepares, and gets what init prepared
        // when the answer comes (launcher::LateResources).
        Some(rootfs) => Resources::Late { started, rootfs },
        None => {
            let (answer, fds) = init.finish(started)?;
            prepared = decode_prepared(answer, fds)?;
            super::profile::mark("prepared by init (record, groups, rootfs, netns)");
            Resources::Prepared(&prepared)
        }
    };
    let (result, made) = launch_create(
        root,
        a,
        init,
        (&spec, &process),
        &bundle_s,
        resources,
        foreground,
    );
    if let (Err(e), true) = (&result, made) {
        // Undo whatever was made; the error the user sees is the first one.
        // (A Prepare that failed undid its own, and must not undo another
        // create's container of the same id.)
        abort(init, &a.id, e);
    }
    result.map(|(pid, gate)| Made { pid, console, gate })
}

/// Where a create's resources come from. One lives on the stack for one
/// create: the size of the Late variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Resources<'a> {
    /// init prepared them before the launch.
    Prepared(&'a Prepared),
    /// init prepares them during the launch (see `late_launch_rootfs`).
    Late { started: Started, rootfs: PathBuf },
}

/// When `create` may start the container process while init prepares its
/// resources (a late launch), the rootfs to start it with: the cgroup
/// controllers are on v1 and no cgroup2 is mounted (on v2, and on a hybrid
/// host's cgroup2 where the process is a member of a group of its own, it
/// is cloned into its group, so the group must exist first: moving a
/// process in later takes the kernel's cgroup_threadgroup_rwsem for
/// writing, an RCU grace period, measured at +4 ms per container at the
/// median), there is no user namespace, and the rootfs
/// resolves as vfs-overlay will resolve it (which it then checks), so that
/// nothing is done in a rootfs init would refuse.
fn late_launch_rootfs(bundle: &str, spec: &Spec) -> Option<PathBuf> {
    let linux = spec.linux().as_ref()?;
    let userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    if userns {
        return None;
    }
    // Read once, for this check and for the launcher's cgroup mount.
    let mountinfo = cgroupfs::dir::read_small(Path::new("/proc/self/mountinfo")).ok()?;
    let hier = cgroupfs::Hierarchies::from_host_mountinfo(&mountinfo);
    let v1_only = ["memory", "cpu", "cpuacct", "cpuset", "pids", "freezer"]
        .iter()
        .all(|c| {
            hier.get(c)
                .map_or(true, |h| h.version == cgroupfs::Version::V1)
        });
    if !v1_only || hier.unified.is_some() {
        return None;
    }
    launcher::remember_hierarchies(&mountinfo);
    let root_path = spec.root().as_ref()?.path().to_string_lossy().into_owned();
    vfs_overlay::resolve::rootfs(bundle, &root_path).ok()
}

/// `start_gate`: a foreground `run`, whose process waits for us rather
/// than for an exec fifo (none is made).
fn prepare_request(
    a: &CreateArgs,
    config_json: String,
    bundle: &str,
    start_gate: bool,
) -> InitRequest {
    InitRequest::Prepare {
        id: a.id.clone(),
        bundle: bundle.to_string(),
        config_json,
        creator_pid: std::process::id() as i32,
        start_gate,
    }
}

/// The config, checked, with its process, and our own console socket when
/// a foreground process has a terminal and no --console-socket was given.
fn checked_config(
    root: &Path,
    a: &CreateArgs,
    bundle: &Path,
    bytes: &[u8],
    foreground: bool,
) -> Result<(Spec, Process, Option<ConsoleListener>)> {
    let spec = crate::config::load_bytes(bundle, bytes).map_err(|e| anyhow!("{e}"))?;
    let process = spec
        .process()
        .clone()
        .ok_or_else(|| anyhow!("process: missing; a container needs a process to create"))?;
    let mut console = None;
    if process.terminal().unwrap_or(false) && a.console_socket.is_none() {
        if !foreground {
            bail!("process.terminal is true but no --console-socket was given (a pty master has nowhere to go)");
        }
        console = Some(ConsoleListener::bind(root)?);
    }
    Ok((spec, process, console))
}

/// A Prepare sent for a create that stops before its launch: undone once
/// init has answered, if it succeeded. (One that failed undid its own, and
/// must not undo another create's container of the same id.)
fn abandon(init: &mut InitConn, started: Started, id: &str, why: &anyhow::Error) {
    if init.finish(started).is_ok() {
        abort(init, id, why);
    }
}

/// Has init undo a create it prepared; the caller reports `why` itself.
fn abort(init: &mut InitConn, id: &str, why: &anyhow::Error) {
    let reason = format!("{why:#}");
    let _ = init.call(
        InitRequest::Abort {
            id: id.to_string(),
            reason,
        },
        None,
    );
}

fn decode_prepared(answer: InitResponse, mut fds: Vec<OwnedFd>) -> Result<Prepared> {
    let InitResponse::Prepared {
        rootfs,
        seccomp,
        joins,
        netns,
    } = answer
    else {
        bail!("init answered prepare with {answer:?}")
    };
    if fds.len() != joins.len() + usize::from(netns) {
        bail!(
            "init's prepare answer has {} fds for {} cgroup joins{}",
            fds.len(),
            joins.len(),
            if netns {
                " and a network namespace"
            } else {
                ""
            }
        );
    }
    let netns = netns.then(|| fds.pop()).flatten();
    Ok(Prepared {
        rootfs,
        seccomp,
        joins: joins.into_iter().zip(fds).collect(),
        netns,
    })
}

/// Launches the container process; also says whether init's Prepare
/// succeeded (then a failure must be aborted). With `gate`, the process
/// waits for the returned StartGate and init is not told it is created.
fn launch_create(
    root: &Path,
    a: &CreateArgs,
    init: &mut InitConn,
    (spec, process): (&Spec, &Process),
    bundle: &str,
    resources: Resources<'_>,
    gate: bool,
) -> (Result<(i32, Option<launcher::StartGate>)>, bool) {
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let fifo = fifo_path(root, &a.id);
    let state_json =
        |pid: i32| crate::lifecycle::creating_state_json(&a.id, bundle, pid, &annotations);
    let (prepared, started, rootfs) = match resources {
        Resources::Prepared(p) => (Some(p), None, PathBuf::from(&p.rootfs)),
        Resources::Late { started, rootfs } => (None, Some(started), rootfs),
    };
    let req = LaunchRequest {
        id: &a.id,
        bundle: Path::new(bundle),
        spec,
        rootfs: &rootfs,
        process,
        console_socket: a.console_socket.as_deref(),
        preserve_fds: a.preserve_fds,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        // Behind a gate the process waits for no fifo, and Prepare made none.
        exec_fifo: prepared.filter(|_| !gate).map(|_| fifo.as_path()),
        start_gate: gate,
        join: None,
        state_json: &state_json,
        detach_stdio: true,
        seccomp: prepared.and_then(|p| p.seccomp.as_ref()),
        cgroups: prepared.map_or(&[], |p| &p.joins),
        netns: prepared.and_then(|p| p.netns.as_ref()),
        late: started.is_some(),
    };
    let mut parent = CreateParent {
        init,
        prepared: started.is_none(),
        prepare: started,
        root,
        netns_prepared: prepared.is_some_and(|p| p.netns.is_some()),
        needs_listener: prepared
            .and_then(|p| p.seccomp.as_ref())
            .is_some_and(|p| p.needs_listener),
        id: &a.id,
        spec,
        bundle,
        annotations: annotations.clone(),
    };
    let launched = launcher::launch(&req, &mut parent);
    let made = parent.prepared;
    // A late launch that stopped before it took init's answer (refused
    // before its clone): the Prepare is still in flight. Undone here, so
    // that nothing is left once we return, not when init sees us gone.
    let unanswered = parent.prepare.take();
    let result = launched.and_then(|l| {
        super::profile::mark("container process set up (waits to be started)");
        created(a, init, l)
    });
    if let (Err(e), Some(started)) = (&result, unanswered) {
        abandon(init, started, &a.id, e);
    }
    (result, made)
}

/// After the launch: the seccomp listener to init, MarkCreated (unless the
/// process waits for our start gate), the pid file.
fn created(
    a: &CreateArgs,
    init: &mut InitConn,
    launched: launcher::Launched,
) -> Result<(i32, Option<launcher::StartGate>)> {
    if let Some(listener) = launched.seccomp_listener {
        // To listenerPath or seccomp-monitor; init keeps a duplicate.
        init.call_with_fds(
            InitRequest::SeccompListener { id: a.id.clone() },
            None,
            vec![listener],
        )?;
    }
    if launched.gate.is_none() {
        init.call(
            InitRequest::MarkCreated {
                id: a.id.clone(),
                pid: launched.pid,
            },
            None,
        )?;
        super::profile::mark("marked created");
    }
    if let Some(pf) = &a.pid_file {
        write_pid_file(pf, launched.pid)?;
    }
    Ok((launched.pid, launched.gate))
}

/// As runc: the pid, no newline, written atomically.
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    libipc::journal::write_atomic(&path, pid.to_string().as_bytes())
        .map_err(|e| anyhow!("pid file: {e}"))
}

/// `run`: create + start; in the foreground wait and return the exit code
/// (128+signal when killed), then delete the container as runc does.
pub fn run(root: &Path, a: &RunArgs) -> Result<i32> {
    if a.detach {
        return run_detached(root, a);
    }
    // The launcher clones the container as our own child: we wait for it.
    let mut init = init_client(root)?;
    let Made { pid, console, gate } = create_with(root, &mut init, &a.create, true)?;
    // Held until init has deleted the container: the mount namespace then
    // outlives the process, whose exit is not held up by the unmount of
    // its mounts (an RCU grace period); init closes it after answering.
    let mount_ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
        .map(OwnedFd::from)
        .ok();
    // The signals to forward are blocked before the container starts, so
    // that one sent the moment it runs reaches it rather than killing ipc.
    let ready = console
        .map(|c| c.accept_master())
        .transpose()
        .and_then(|master| Ok((master, super::foreground::Signals::block()?)))
        .and_then(|ready| {
            start_run(&mut init, &a.create.id, pid, gate)?;
            Ok(ready)
        });
    let (master, signals) = match ready {
        Ok(r) => r,
        Err(e) => {
            let delete = InitRequest::Delete {
                id: a.create.id.clone(),
                force: true,
            };
            let _ = init.call(delete, None);
            return Err(e);
        }
    };
    super::profile::mark("started");
    let code = super::foreground::wait_with(pid, master, signals)?;
    super::profile::mark("container exited");
    if !a.keep {
        let delete = InitRequest::Delete {
            id: a.create.id.clone(),
            force: true,
        };
        init.call_handing_over(delete, mount_ns.into_iter().collect())?;
        super::profile::mark("deleted");
    }
    Ok(code)
}

/// Starts the container of a foreground `run`: we release our child
/// ourselves and then tell init it runs (MarkRunning: creating to running,
/// poststart hooks), the order in which init's Start releases the exec
/// fifo and then records it. A create that gave no gate is started by init.
fn start_run(
    init: &mut InitConn,
    id: &str,
    pid: i32,
    gate: Option<launcher::StartGate>,
) -> Result<()> {
    let id = id.to_string();
    match gate {
        Some(gate) => {
            gate.open()?;
            init.call(InitRequest::MarkRunning { id, pid }, None)?;
        }
        None => {
            init.call(InitRequest::Start { id }, None)?;
        }
    }
    Ok(())
}

/// init launches and reaps the container; we pass it our stdio.
fn run_detached(root: &Path, a: &RunArgs) -> Result<i32> {
    let c = &a.create;
    protocol::validate_id("container id", &c.id)?;
    let bundle = bundle_dir(c)?;
    // Validate here so that a bad config fails in the caller's terms.
    crate::config::load(&bundle).map_err(|e| anyhow!("{e}"))?;
    let abs = |p: &Option<PathBuf>| -> Result<Option<String>> {
        p.as_ref()
            .map(|p| {
                Ok(if p.is_absolute() {
                    p.clone()
                } else {
                    std::env::current_dir()?.join(p)
                }
                .to_string_lossy()
                .into_owned())
            })
            .transpose()
    };
    let stdio: Vec<OwnedFd> = [0, 1, 2]
        .iter()
        .map(|fd| dup_stdio(*fd))
        .collect::<Result<_>>()?;
    let req = InitRequest::RunDetached {
        id: c.id.clone(),
        bundle: bundle.to_string_lossy().into_owned(),
        pid_file: abs(&c.pid_file)?,
        console_socket: abs(&c.console_socket)?,
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
    };
    // A failed create answers with its own words (kind aside), as a
    // foreground create prints them.
    init_client(root)?
        .call_with_fds(req, None, stdio)
        .map_err(|e| match e.kind {
            protocol::ErrorKind::InvalidArgument => anyhow!(e.message),
            _ => anyhow!(e),
        })?;
    Ok(0)
}

fn dup_stdio(fd: i32) -> Result<OwnedFd> {
    use std::os::fd::AsFd;
    let borrowed = match fd {
        0 => std::io::stdin().as_fd().try_clone_to_owned(),
        1 => std::io::stdout().as_fd().try_clone_to_owned(),
        _ => std::io::stderr().as_fd().try_clone_to_owned(),
    };
    borrowed.with_context(|| format!("dup fd {fd}"))
}

/// `exec`: a new process in a running container's namespaces and groups.
pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    protocol::validate_id("container id", &a.id)?;
    let mut init = init_client(root)?;
    let state =
        super::manage::expect_state(init.call(InitRequest::State { id: a.id.clone() }, None)?)?;
    if !a.cgroup.is_empty() {
        bail!("--cgroup: unsupported: exec into a sub-cgroup of the container is not supported; the process joins the container's own groups");
    }
    match state.status.as_str() {
        "running" => {}
        "paused" if a.ignore_paused => {}
        "paused" => bail!(
            "cannot exec in a paused container {} (use --ignore-paused to override)",
            a.id
        ),
        other => bail!(
            "cannot exec in a container that is not running: {} is {other}",
            a.id
        ),
    }
    let saved = crate::lifecycle::record::container_dir(root, &a.id).join("config.json");
    let spec: Spec = serde_json::from_slice(
        &std::fs::read(&saved).with_context(|| format!("read {}", saved.display()))?,
    )?;
    let process = exec_process(&spec, a)?;
    let program = exec_seccomp(root, &saved)?;
    let joins = exec_joins(root, &a.id)?;
    // In the foreground ipc holds the pty master itself, as runc does.
    let console = match (process.terminal().unwrap_or(false), &a.console_socket) {
        (true, None) if a.detach => {
            bail!("exec --tty --detach needs --console-socket (a pty master has nowhere to go)")
        }
        (true, None) => Some(ConsoleListener::bind(root)?),
        _ => None,
    };
    let console_socket = match &console {
        Some(c) => Some(c.path()),
        None => a.console_socket.as_deref(),
    };
    let annotations: BTreeMap<String, String> = spec
        .annotations()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let state_json =
        |pid: i32| crate::lifecycle::creating_state_json(&a.id, &state.bundle, pid, &annotations);
    let req = LaunchRequest {
        id: &a.id,
        bundle: Path::new(&state.bundle),
        spec: &spec,
        rootfs: Path::new(&state.rootfs),
        process: &process,
        console_socket,
        preserve_fds: a.preserve_fds,
        no_pivot: false,
        no_new_keyring: false,
        exec_fifo: None,
        start_gate: false,
        join: Some(state.pid),
        state_json: &state_json,
        detach_stdio: a.detach,
        seccomp: program.as_ref(),
        cgroups: &joins,
        netns: None,
        late: false,
    };
    let mut parent = ExecParent;
    let launched = launcher::launch(&req, &mut parent)?;
    if let Some(pf) = &a.pid_file {
        write_pid_file(pf, launched.pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    let master = console.map(|c| c.accept_master()).transpose()?;
    super::foreground::wait(launched.pid, master)
}

/// The container's linux.seccomp for an exec'd process (runc installs it
/// there too), compiled by seccomp-monitor (cached since create).
fn exec_seccomp(root: &Path, saved_config: &Path) -> Result<Option<protocol::seccomp::Program>> {
    use protocol::seccomp::{Seccomp, SeccompRequest, SeccompResponse};
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(saved_config)?)?;
    let Some(profile_json) = crate::lifecycle::seccomp::profile_json(&config) else {
        return Ok(None);
    };
    let req = SeccompRequest::Compile {
        profile_json,
        arch: None,
    };
    let SeccompResponse::Compiled(p) = super::call::<Seccomp>(root, req)? else {
        bail!("seccomp-monitor answered compile with something else");
    };
    if p.needs_listener {
        bail!("exec: the container's seccomp profile uses SCMP_ACT_NOTIFY, and a notify listener for an exec'd process is not supported yet");
    }
    Ok(Some(p))
}

/// exec'd processes join the container's groups directly.
struct ExecParent;

impl Parent for ExecParent {
    /// The process joined the container's groups by itself (exec_joins).
    fn created_process(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }

    fn create_runtime(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }
}

/// The fds an exec'd process uses to join the container's memory and cpu
/// groups by itself, from the two controllers.
fn exec_joins(root: &Path, id: &str) -> Result<Vec<(protocol::cgroup::CgroupJoin, OwnedFd)>> {
    let servers = crate::lifecycle::Servers::named(root, "ipc");
    let mut joins = servers.memory_join_fds(id)?;
    joins.extend(servers.cpu_join_fds(id)?);
    Ok(joins)
}

/// The process to exec: --process FILE, or the container's own process
/// with the command line's args and overrides.
fn exec_process(spec: &Spec, a: &ExecArgs) -> Result<Process> {
    if let Some(f) = &a.process {
        // Checked as a config's process is (schema, then the spec's rules),
        // with error paths relative to the document.
        return crate::config::load_process(f)
            .map_err(|e| anyhow!("--process {}: {e}", f.display()));
    }
    if a.command.is_empty() {
        bail!("exec: give a command to run, or --process FILE");
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &a.env {
            if !kv.contains('=') {
                bail!("--env {kv:?}: must be KEY=VALUE");
            }
            let key = kv.split('=').next().unwrap_or_default();
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let mut user = p.user().clone();
        let (uid, gid) = u
            .split_once(':')
            .map(|(a, b)| (a, Some(b)))
            .unwrap_or((u.as_str(), None));
        user.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {u:?}: UID[:GID] must be numbers"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| anyhow!("--user {u:?}: UID[:GID] must be numbers"))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap: oci_spec::runtime::Capability = name
                .parse()
                .map_err(|_| anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}
