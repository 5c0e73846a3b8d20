//! The OCI lifecycle, owned by init: the state machine of every container
//! (creating -> created -> running <-> paused -> stopped), its record on disk,
//! and the requests to the servers that own its resources. init never
//! touches a cgroup or a mount itself: it asks memory-controller,
//! cpu-controller, vfs-overlay and netstack, each by the container's id.
//!
//! Every change is persisted before it is acknowledged. On start, init
//! reloads every record and reconciles it with the kernel: a container whose
//! process is gone is stopped; a create whose `ipc create` died is rolled back.

mod locks;
pub mod record;
pub mod resources;
pub mod seccomp;
mod servers;
pub mod slots;
mod watch;

use crate::hooks::{self, Phase};
use oci_spec::runtime::Spec;
use protocol::cgroup::CgroupJoin;
use protocol::init::{ContainerState, ContainerStats, InitResponse};
use protocol::{validate_id, Error, ErrorKind};
use record::{Durability, Made, Record, Status};
use rustix::process::{pidfd_open, pidfd_send_signal, Pid, PidfdFlags, Signal};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use servers::Servers;

pub struct Lifecycle {
    root: PathBuf,
    bin_dir: PathBuf,
    records: Mutex<BTreeMap<String, Record>>,
    /// One lock per container id (see locks.rs).
    locks: locks::IdLocks,
    /// Process handles of live containers (and of `ipc create` processes
    /// while they create), with the pid each is for, watched by the exit
    /// watcher.
    watched: watch::Watched,
    servers: Arc<Servers>,
    /// Listeners seccomp-monitor watches (see seccomp.rs).
    seccomp_fds: seccomp::FdStore,
    /// The seccomp-monitor epoch those listeners were last handed to.
    seccomp_epoch: Mutex<Option<u64>>,
    /// Deleted containers' directories, for the next ones (see slots.rs).
    slots: slots::Slots,
}

type Res = Result<InitResponse, Error>;

/// The controllers' JoinFds answers, one fd per entry.
type Joins = Vec<(CgroupJoin, OwnedFd)>;

/// What `Prepare` gives the creating `ipc`.
pub struct Prepared {
    pub rootfs: String,
    pub seccomp: Option<protocol::seccomp::Program>,
    /// memory-controller's, then cpu-controller's.
    pub joins: Joins,
    /// A fresh network namespace with loopback up (netstack's pool).
    pub netns: Option<OwnedFd>,
}

/// A new network namespace, and no user namespace: then a namespace
/// netstack made in advance will do. (Under a user namespace the
/// container's root must own its network namespace, so it makes its own.)
/// linux.netDevices, as netstack takes them.
fn net_devices(spec: &Spec) -> Vec<protocol::net::NetDevice> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.net_devices().as_ref()) else {
        return vec![];
    };
    map.iter()
        .map(|(host, d)| protocol::net::NetDevice {
            host_name: host.clone(),
            name: d.name().clone(),
        })
        .collect()
}

fn wants_pooled_netns(spec: &Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType as T;
    let ns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    ns.iter()
        .any(|n| n.typ() == T::Network && n.path().is_none())
        && !ns.iter().any(|n| n.typ() == T::User)
}

/// The environment variable naming the file where `ipc` writes its error
/// instead of stderr (see `run_detached`).
pub const ERROR_FILE: &str = "ASTERISM_ERROR_FILE";

impl Lifecycle {
    /// Loads every record and reconciles it with the kernel, then starts
    /// the exit watcher.
    pub fn start(root: &Path, bin_dir: &Path) -> Arc<Lifecycle> {
        let lc = Arc::new(Lifecycle {
            root: root.to_path_buf(),
            bin_dir: bin_dir.to_path_buf(),
            records: Mutex::new(BTreeMap::new()),
            locks: locks::IdLocks::default(),
            watched: watch::Watched::new().expect("create the exit watcher's epoll instance"),
            servers: Arc::new(Servers::new(root)),
            seccomp_fds: seccomp::FdStore::default(),
            seccomp_epoch: Mutex::new(seccomp::monitor_epoch(root)),
            slots: slots::Slots::open(root),
        });
        let _ = std::fs::create_dir_all(record::containers_dir(root));
        for r in record::load_all(root) {
            lc.records.lock().unwrap().insert(r.id.clone(), r);
        }
        lc.reconcile();
        watch::spawn(lc.clone());
        lc
    }

    fn lock(&self, id: &str) -> Arc<Mutex<()>> {
        self.locks.get(id)
    }

    fn get(&self, id: &str) -> Result<Record, Error> {
        validate_id("container id", id)?;
        self.records
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("container does not exist: {id:?}")))
    }

    /// Persists, then publishes in memory.
    fn put(&self, r: Record) -> Result<(), Error> {
        let before = self.records.lock().unwrap().get(&r.id).map(|o| o.status);
        record::save(&self.root, &r, Durability::of(r.status, before))?;
        self.remember(r);
        Ok(())
    }

    /// The record in memory only; the next `put` saves it.
    fn remember(&self, r: Record) {
        self.records.lock().unwrap().insert(r.id.clone(), r);
    }

    /// Drops the record and its directory. Never recursive: the directory
    /// may hold vfs-overlay's mount point, and a recursive delete through a
    /// live bind mount would delete the user's rootfs. Only our own files go,
    /// then the (by now empty) directory.
    fn forget(&self, id: &str) {
        if self.seccomp_fds.take(id).is_some() {
            if let Err(e) = self.servers.seccomp_forget(id) {
                tracing::warn!("seccomp-monitor did not forget {id}: {e}");
            }
        }
        self.records.lock().unwrap().remove(id);
        self.watched.remove(id);
        let dir = record::container_dir(&self.root, id);
        let _ = std::fs::remove_file(dir.join("exec.fifo"));
        if self.slots.recycle(&dir) {
            return;
        }
        for f in ["config.json", record::STATE, record::NEXT] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        // What an init killed mid-write left (state.tmp.*) is looked for
        // only when the directory turns out not to be empty.
        let removed = std::fs::remove_dir(&dir).or_else(|e| match e.kind() {
            std::io::ErrorKind::DirectoryNotEmpty => {
                record::remove_temporaries(&dir);
                std::fs::remove_dir(&dir)
            }
            _ => Err(e),
        });
        if let Err(e) = removed {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("{} not removed: {e}", dir.display());
            }
        }
    }

    // ---- create ----

    /// `Register`: the record and the resources; the process is attached
    /// later (AttachPid).
    pub fn register(&self, id: &str, bundle: &str, config_json: &str, creator_pid: i32) -> Res {
        let p = self.create_record(id, bundle, config_json, creator_pid, false, true)?;
        Ok(InitResponse::Registered {
            rootfs: p.rootfs,
            seccomp: p.seccomp,
        })
    }

    /// `Prepare`: as register, plus what the process needs to join its
    /// groups by itself and, when it can use one, a network namespace
    /// from netstack's pool with loopback already up.
    pub fn prepare(
        &self,
        id: &str,
        bundle: &str,
        config_json: &str,
        creator_pid: i32,
        start_gate: bool,
    ) -> Result<Prepared, Error> {
        let exec_fifo = !start_gate;
        self.create_record(id, bundle, config_json, creator_pid, true, exec_fifo)
    }

    fn create_record(
        &self,
        id: &str,
        bundle: &str,
        config_json: &str,
        creator_pid: i32,
        joins_itself: bool,
        exec_fifo: bool,
    ) -> Result<Prepared, Error> {
        validate_id("container id", id)?;
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let spec = crate::config::from_checked_text(config_json)
            .map_err(|e| Error::invalid(format!("config for {id:?} does not parse: {e}")))?;
        // Most configs have no linux.seccomp: then skip reading the config
        // a second time as JSON.
        let has_seccomp = spec.linux().as_ref().is_some_and(|l| l.seccomp().is_some());
        let seccomp = match has_seccomp {
            true => self.compile_seccomp(config_json)?,
            false => None,
        };
        let existing = self.records.lock().unwrap().get(id).cloned();
        let first = existing.is_none();
        // The creator is watched from a pidfd opened before anything is
        // made: should it die while its resources are made, the pidfd is
        // readable by the time the watcher has it, and the create is rolled
        // back. (Opened afterwards, it would fail for a creator already
        // gone, and the create would be left to nobody.)
        let (mut r, creator) = match existing {
            // The same `ipc create` asking again (init restarted under it):
            // finish what is not made yet; every step is idempotent.
            Some(r) => {
                let same_creator = r.status == Status::Creating
                    && r.creator_pid == creator_pid
                    && record::same_process(creator_pid, r.creator_start)
                    && r.joins_itself == joins_itself;
                if !same_creator {
                    return Err(Error::exists(format!(
                        "container with id {id:?} already exists"
                    )));
                }
                let fresh = r.pid == 0 && r.rootfs.is_empty();
                let creator = fresh
                    .then(|| creator_pidfd(creator_pid, r.creator_start))
                    .transpose()?;
                (r, creator)
            }
            None => {
                let (fd, start) = creator_identity(creator_pid)?;
                let r = self.new_record(id, bundle, &spec, (creator_pid, start), joins_itself)?;
                (r, Some(fd))
            }
        };
        match self.make_resources(&mut r, &spec, config_json, joins_itself, exec_fifo, first) {
            Ok((joins, netns)) => {
                if let Some(fd) = creator {
                    self.watched.insert(id, creator_pid, fd);
                }
                Ok(Prepared {
                    rootfs: r.rootfs,
                    seccomp,
                    joins,
                    netns,
                })
            }
            Err(e) => {
                self.rollback(&mut r);
                Err(e)
            }
        }
    }

    /// A container that does not exist yet: its record (status creating)
    /// and its saved config.
    fn new_record(
        &self,
        id: &str,
        bundle: &str,
        spec: &Spec,
        (creator_pid, creator_start): (i32, u64),
        joins_itself: bool,
    ) -> Result<Record, Error> {
        if record::container_dir(&self.root, id).exists() {
            return Err(Error::exists(format!(
                "container with id {id:?} already exists"
            )));
        }
        refuse_unsupported(spec)?;
        Ok(Record {
            id: id.to_string(),
            bundle: bundle.to_string(),
            rootfs: String::new(),
            status: Status::Creating,
            pid: 0,
            pid_start: 0,
            creator_pid,
            creator_start,
            created: record::now_rfc3339(),
            owner: String::new(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            exit_status: None,
            made: Made::default(),
            joins_itself,
            has_hooks: spec.hooks().is_some(),
        })
    }

    /// linux.seccomp compiled by seccomp-monitor (None without one); the
    /// agent settings are checked here too, before anything is made.
    fn compile_seccomp(
        &self,
        config_json: &str,
    ) -> Result<Option<protocol::seccomp::Program>, Error> {
        let config: serde_json::Value = serde_json::from_str(config_json)
            .map_err(|e| Error::invalid(format!("config does not parse: {e}")))?;
        let Some(profile) = seccomp::profile_json(&config) else {
            return Ok(None);
        };
        let program = self.servers.seccomp_compile(&profile)?;
        if program.needs_listener {
            seccomp::agent(&config)?;
        }
        // Engines' default profiles name syscalls this kernel's
        // architecture lacks (pciconfig_*, timerfd, ...) for every
        // container: runc skips them silently. At debug, in one line, not
        // six warnings per podman container in init's log; `ipc
        // seccomp-monitor compile` prints them all.
        if !program.warnings.is_empty() {
            tracing::debug!("linux.seccomp: {}", program.warnings.join("; "));
        }
        Ok(Some(program))
    }

    /// `create`, after launch: the seccomp listener, to listenerPath or to
    /// seccomp-monitor (keeping a duplicate in the fd store).
    pub fn seccomp_listener(&self, id: &str, fd: OwnedFd) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let r = self.get(id)?;
        if r.status != Status::Creating || r.pid <= 0 {
            return Err(Error::conflict(format!(
                "container {id:?} is {} (pid {}); a seccomp listener comes during create, after the pid is attached",
                r.status.as_str(),
                r.pid
            )));
        }
        let text =
            std::fs::read_to_string(record::container_dir(&self.root, id).join("config.json"))
                .map_err(|e| Error::io("read the container's config", &e))?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::invalid(format!("saved config does not parse: {e}")))?;
        match seccomp::agent(&config)? {
            seccomp::Agent::Path { path, metadata } => {
                let state: serde_json::Value = serde_json::from_str(&r.hook_state_json())
                    .map_err(|e| Error::internal(format!("state json: {e}")))?;
                seccomp::send_to_listener_path(&path, &metadata, r.pid, state, &fd)?;
            }
            seccomp::Agent::Monitor(policy) => {
                let dup = fd
                    .try_clone()
                    .map_err(|e| Error::io("duplicate the seccomp listener", &e))?;
                self.servers.seccomp_watch(id, r.pid, policy.clone(), dup)?;
                self.seccomp_fds.put(
                    id,
                    seccomp::Stored {
                        fd,
                        pid: r.pid,
                        policy,
                    },
                );
            }
        }
        Ok(InitResponse::Done)
    }

    /// The supervisor's report that server `name` answers at `epoch`. A
    /// seccomp-monitor at a new epoch restarted and lost its listeners.
    pub fn server_running(&self, name: &str, epoch: u64) {
        if name != <protocol::seccomp::Seccomp as protocol::Protocol>::NAME {
            return;
        }
        let seen = self.seccomp_epoch.lock().unwrap().replace(epoch);
        if seen.is_some_and(|s| s != epoch) {
            self.seccomp_rewatch();
        }
    }

    /// seccomp-monitor restarted: hand it every stored listener again.
    fn seccomp_rewatch(&self) {
        for (id, pid, policy, fd) in self.seccomp_fds.duplicates() {
            if let Err(e) = self.servers.seccomp_watch(&id, pid, policy, fd) {
                tracing::error!("re-watch of {id}'s seccomp listener failed: {e}");
            }
        }
    }

    /// The groups, the rootfs, the exec fifo unless the creator releases
    /// the process itself (and for Prepare the join fds and the pooled
    /// network namespace). What will be made is
    /// recorded first, in the record's first write (atomic, not fsynced:
    /// see `record::save`), so that a rollback (or a restarted init)
    /// releases it: releasing something
    /// never made is a "not found" that counts as done. Every step is
    /// idempotent, so a retried create simply does them all again.
    fn make_resources(
        &self,
        r: &mut Record,
        spec: &Spec,
        config_json: &str,
        joins_itself: bool,
        exec_fifo: bool,
        first: bool,
    ) -> Result<(Joins, Option<OwnedFd>), Error> {
        let res = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        let pooled_netns = joins_itself && wants_pooled_netns(spec);
        r.made.memory_group = true;
        r.made.cpu_group = true;
        r.made.rootfs = true;
        r.made.loopback |= pooled_netns;
        // A new container's first record goes to disk with its config, in
        // a directory that appears whole; a retried create rewrites both.
        if first {
            record::save_new(&self.root, &self.slots, r, config_json)?;
            self.remember(r.clone());
        } else {
            self.put(r.clone())?;
        }
        // vfs-overlay checks the rootfs and hands back the path to use.
        // root.readonly is applied by the launcher, last, inside the
        // container's mount namespace (as runc does): a read-only root from
        // the start would stop it from creating mount points.
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| Error::invalid("root: missing"))?;
        let path = root.path().to_string_lossy();
        let id = &r.id;
        // The servers do not depend on each other: every request is sent
        // first, from this thread, then every reply is read.
        let sv = &self.servers;
        let at = spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let at = at.as_deref();
        // cpu-controller first: its groups (six hierarchies, the device
        // rules) take longest to make.
        let io = (resources::devices(res), resources::block_io(res));
        let cpu = sv.send_cpu_create(id, resources::cpu(res), at, io);
        let mem = (resources::memory(res), resources::hugepages(res));
        let memory = sv.send_memory_create(id, mem, at);
        let netns = pooled_netns.then(|| sv.send_netns_claim(id));
        let rootfs = sv.send_vfs_prepare(id, &r.bundle, &path, false);
        // The saved config (hooks and the seccomp agent read it later) is
        // written while the servers work.
        let saved = match first {
            true => Ok(()),
            false => std::fs::write(
                record::container_dir(&self.root, &r.id).join("config.json"),
                config_json,
            )
            .map_err(|e| Error::io("save the container's config", &e)),
        };
        let (memory, cpu, rootfs) = (memory.wait(), cpu.wait(), rootfs.wait());
        let netns = netns.map(|n| n.wait()).transpose();
        saved?;
        let mut joins = memory?;
        joins.extend(cpu?);
        if !joins_itself {
            // The process is attached by pid later; the fds close here.
            joins.clear();
        }
        let netns = netns?;
        let devices = net_devices(spec);
        if !devices.is_empty() {
            if !pooled_netns {
                return Err(Error::unsupported(
                    "linux.netDevices: devices are moved only into a new network namespace the runtime makes (not one joined by path, nor one under a user namespace)",
                ));
            }
            sv.send_net_move_devices(id, devices).wait()?;
        }
        r.rootfs = rootfs?;
        // The rootfs path goes to disk with the next state change (the pid
        // or created): until then the record on disk says creating, which
        // a restarted init rolls back or a retried Prepare redoes, and
        // neither needs the path. One durable write fewer on Prepare's
        // critical path.
        self.remember(r.clone());
        if exec_fifo {
            self.make_exec_fifo(&r.id, spec)?;
        }
        Ok((joins, netns))
    }

    fn make_exec_fifo(&self, id: &str, spec: &Spec) -> Result<(), Error> {
        let fifo = record::fifo_path(&self.root, id);
        match nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => {
                return Err(Error::kernel(
                    e as i32,
                    format!("mkfifo {}: {e}", fifo.display()),
                ))
            }
        }
        // 0622 whatever the umask: the container's process opens it for
        // writing as the container's user, which need not be root. With a
        // user namespace, it belongs to the host ids of the container's root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622))
            .map_err(|e| Error::io(format!("chmod {}", fifo.display()), &e))?;
        if let Some((uid, gid)) = container_root_ids(spec) {
            std::os::unix::fs::chown(&fifo, Some(uid), Some(gid))
                .map_err(|e| Error::io(format!("chown {}", fifo.display()), &e))?;
        }
        Ok(())
    }

    pub fn attach_pid(&self, id: &str, pid: i32, netns: Option<OwnedFd>) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.get(id)?;
        if r.status != Status::Creating {
            return Err(Error::conflict(format!(
                "container {id:?} is {}, not creating",
                r.status.as_str()
            )));
        }
        r.pid = pid;
        r.pid_start = record::start_time(pid)
            .ok_or_else(|| Error::invalid(format!("container process {pid} is not alive")))?;
        r.made.loopback |= netns.is_some();
        let r_joins_itself = r.joins_itself;
        self.put(r)?;
        // Attach to both groups and bring loopback up at once (a process
        // that joined its groups by itself needs only loopback): the
        // attaches are sent first, loopback asked meanwhile.
        let attach = !r_joins_itself;
        let sv = &self.servers;
        let memory = attach.then(|| sv.send_memory_attach(id, pid));
        let cpu = attach.then(|| sv.send_cpu_attach(id, pid));
        let net = match netns {
            Some(fd) => sv.loopback(id, fd),
            None => Ok(()),
        };
        let memory = memory.map_or(Ok(()), |s| s.wait());
        let cpu = cpu.map_or(Ok(()), |s| s.wait());
        memory.and(cpu).and(net)?;
        Ok(InitResponse::Done)
    }

    pub fn mark_created(&self, id: &str, pid: i32) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.get(id)?;
        if r.status == Status::Created && r.pid == pid {
            return Ok(InitResponse::State(r.oci_state())); // a retry
        }
        Self::creating_with(&mut r, pid, record::start_time)?;
        r.status = Status::Created;
        r.creator_pid = 0;
        self.put(r.clone())?;
        self.watch_pid(id, pid);
        Ok(InitResponse::State(r.oci_state()))
    }

    /// `MarkRunning` (`ipc run` in the foreground): the creator released
    /// its process itself, with no exec fifo. Creating becomes running in
    /// one durable write, then the poststart hooks run, as after `start`.
    pub fn mark_running(&self, id: &str, pid: i32) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.get(id)?;
        let done = matches!(r.status, Status::Running | Status::Stopped);
        if done && r.pid == pid {
            return Ok(InitResponse::State(r.oci_state())); // a retry
        }
        // Released already: it may have run to its end, but ipc, its
        // parent, has not reaped it yet.
        Self::creating_with(&mut r, pid, record::start_time_unreaped)?;
        r.status = Status::Running;
        r.creator_pid = 0;
        self.put(r.clone())?;
        // A run's Prepare made no exec fifo (its process waits for its
        // creator's gate); this is for a create that was prepared with one.
        let _ = std::fs::remove_file(record::fifo_path(&self.root, id));
        self.watch_pid(id, pid);
        self.run_saved_hooks(Phase::Poststart, &r);
        Ok(InitResponse::State(r.oci_state()))
    }

    /// Checks that `r` is being created with process `pid`; a prepared
    /// container's pid is first given here (no AttachPid came), with its
    /// start time as `start_time` reads it.
    fn creating_with(
        r: &mut Record,
        pid: i32,
        start_time: fn(i32) -> Option<u64>,
    ) -> Result<(), Error> {
        if r.status == Status::Creating && r.pid == 0 && r.joins_itself {
            r.pid = pid;
            r.pid_start = start_time(pid)
                .ok_or_else(|| Error::invalid(format!("container process {pid} is not alive")))?;
        }
        if r.status != Status::Creating || r.pid != pid {
            return Err(Error::conflict(format!(
                "container {:?} is {} with pid {}, not creating with pid {pid}",
                r.id,
                r.status.as_str(),
                r.pid
            )));
        }
        Ok(())
    }

    pub fn abort(&self, id: &str, reason: &str) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.get(id)?;
        if r.status != Status::Creating {
            return Err(Error::conflict(format!(
                "container {id:?} is {}; only a create in progress can be aborted",
                r.status.as_str()
            )));
        }
        tracing::warn!("create of {id} aborted: {reason}");
        self.rollback(&mut r);
        Ok(InitResponse::Done)
    }

    /// Undoes a create: kills the process if any, releases what was made,
    /// forgets the container. Steps that fail are logged; the record stays
    /// (status stopped) so that `delete --force` can finish the job.
    fn rollback(&self, r: &mut Record) {
        if r.pid > 0 && record::same_process(r.pid, r.pid_start) {
            kill_and_wait(r.pid, Duration::from_secs(5));
        }
        match self.release(r) {
            Ok(()) => self.forget(&r.id),
            Err(e) => {
                tracing::error!("rollback of {} incomplete: {e}", r.id);
                r.status = Status::Stopped;
                let _ = self.put(r.clone());
            }
        }
    }

    /// Gives back everything recorded in `made`. The servers are asked at
    /// once (every request sent from this thread, then the replies read);
    /// each success is recorded, so that a retry releases only what is left.
    /// The slowest to answer (the cgroup controllers' rmdirs) are asked
    /// first.
    fn release(&self, r: &mut Record) -> Result<(), Error> {
        let (id, made, sv) = (&r.id, &r.made, &self.servers);
        // cpu-controller first: it removes a group in six hierarchies.
        let cpu = made.cpu_group.then(|| sv.send_cpu_delete(id));
        let memory = made.memory_group.then(|| sv.send_memory_delete(id));
        let net = made.loopback.then(|| sv.send_loopback_release(id));
        let vfs = made.rootfs.then(|| sv.send_vfs_release(id));
        let net = net.map_or(Ok(()), |s| s.wait());
        let vfs = vfs.map_or(Ok(()), |s| s.wait());
        let cpu = cpu.map_or(Ok(()), |s| s.wait());
        let memory = memory.map_or(Ok(()), |s| s.wait());
        r.made.loopback &= net.is_err();
        r.made.rootfs &= vfs.is_err();
        r.made.cpu_group &= cpu.is_err();
        r.made.memory_group &= memory.is_err();
        net.and(vfs).and(cpu).and(memory)
    }

    // ---- start, state, kill, delete ----

    pub fn start_container(&self, id: &str) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.refreshed(id)?;
        match r.status {
            Status::Created => {}
            Status::Stopped => {
                return Err(Error::conflict(format!(
                    "cannot start a container that has stopped: {id}"
                )))
            }
            s => {
                return Err(Error::conflict(format!(
                    "cannot start an already {} container: {id}",
                    s.as_str()
                )))
            }
        }
        release_exec_fifo(&record::fifo_path(&self.root, id), r.pid, r.pid_start)?;
        r.status = Status::Running;
        self.put(r.clone())?;
        self.run_saved_hooks(Phase::Poststart, &r);
        Ok(InitResponse::State(r.oci_state()))
    }

    /// The saved config's poststart or poststop hooks. runtime.md: their
    /// failure is logged, and the lifecycle goes on.
    fn run_saved_hooks(&self, phase: Phase, r: &Record) {
        if !r.has_hooks {
            return; // nothing to read the saved config for
        }
        if let Some(h) = self.saved_hooks(&r.id) {
            if let Err(e) = hooks::run_phase(phase, Some(&h), &r.hook_state_json()) {
                tracing::warn!("{}: {e:#}", r.id);
            }
        }
    }

    pub fn state(&self, id: &str) -> Res {
        Ok(InitResponse::State(self.refreshed(id)?.oci_state()))
    }

    pub fn list(&self) -> Res {
        let ids: Vec<String> = self.records.lock().unwrap().keys().cloned().collect();
        let states = ids
            .iter()
            .filter_map(|id| self.refreshed(id).ok())
            .map(|r| r.oci_state())
            .collect();
        Ok(InitResponse::Containers(states))
    }

    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Res {
        let r = self.refreshed(id)?;
        if !matches!(r.status, Status::Created | Status::Running | Status::Paused) {
            return Err(not_running(id, r.status));
        }
        let sig = Signal::from_named_raw(signal).ok_or_else(|| {
            Error::invalid(format!(
                "signal {signal} is not a signal number this kernel knows"
            ))
        })?;
        if all {
            for pid in self.servers.pids(id)? {
                if let Some(p) = Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(p, sig);
                }
            }
            return Ok(InitResponse::Done);
        }
        let fd = pidfd_open(Pid::from_raw(r.pid).expect("pid > 0"), PidfdFlags::empty()).map_err(
            |e| {
                Error::kernel(
                    e.raw_os_error(),
                    format!("open container {id}'s process {}: {e}", r.pid),
                )
            },
        )?;
        pidfd_send_signal(&fd, sig).map_err(|e| {
            Error::kernel(
                e.raw_os_error(),
                format!("signal {signal} to container {id} (pid {}): {e}", r.pid),
            )
        })?;
        Ok(InitResponse::Done)
    }

    pub fn delete(&self, id: &str, force: bool) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.refreshed(id)?;
        match r.status {
            Status::Stopped | Status::Created => {}
            Status::Creating if !record::same_process(r.creator_pid, r.creator_start) => {}
            s if !force => {
                return Err(Error::conflict(format!(
                    "cannot delete container {id} that is not stopped: {}",
                    s.as_str()
                )))
            }
            _ => {}
        }
        if r.status == Status::Paused {
            let _ = self.servers.cpu_thaw(id);
        }
        if r.pid > 0 && record::same_process(r.pid, r.pid_start) {
            kill_and_wait(r.pid, Duration::from_secs(10));
            if record::same_process(r.pid, r.pid_start) {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "container {id}'s process {} did not die after SIGKILL",
                        r.pid
                    ),
                ));
            }
        }
        let was_started = matches!(r.status, Status::Running | Status::Paused | Status::Stopped);
        // Stopped, in memory only: the process is dead (killed above), so a
        // restarted init reads any status on disk as stopped (`refreshed`
        // checks the pid and its start time), and releasing what was made
        // is idempotent. A durable write here would sit between the exit
        // and delete's answer; a failed release below writes the record.
        if r.status != Status::Stopped {
            r.status = Status::Stopped;
            self.remember(r.clone());
        }
        self.release(&mut r).inspect_err(|_| {
            let _ = self.put(r.clone());
        })?;
        if was_started {
            self.run_saved_hooks(Phase::Poststop, &r);
        }
        self.forget(id);
        Ok(InitResponse::Done)
    }

    // ---- pause, resume, update, ps, stats ----

    pub fn pause(&self, id: &str) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.refreshed(id)?;
        if r.status != Status::Running {
            return Err(not_running(id, r.status));
        }
        self.servers.cpu_freeze(id)?;
        r.status = Status::Paused;
        self.put(r)?;
        Ok(InitResponse::Done)
    }

    pub fn resume(&self, id: &str) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let mut r = self.refreshed(id)?;
        if r.status != Status::Paused {
            return Err(Error::conflict(format!(
                "container {id} is not paused (status {})",
                r.status.as_str()
            )));
        }
        self.servers.cpu_thaw(id)?;
        r.status = Status::Running;
        self.put(r)?;
        Ok(InitResponse::Done)
    }

    pub fn update(
        &self,
        id: &str,
        memory: Option<protocol::memory::MemoryLimits>,
        cpu: Option<protocol::cpu::CpuLimits>,
    ) -> Res {
        self.updating(id, || {
            if let Some(m) = memory {
                self.servers.memory_set(id, m)?;
            }
            if let Some(c) = cpu {
                self.servers.cpu_set(id, c)?;
            }
            Ok(())
        })
    }

    /// `update` of linux.resources.blockIO (cpu-controller's).
    pub fn update_block_io(&self, id: &str, block_io: protocol::cpu::BlockIo) -> Res {
        self.updating(id, || self.servers.cpu_set_block_io(id, block_io))
    }

    /// Runs `apply` on a container that is not stopped, under its lock.
    fn updating(&self, id: &str, apply: impl FnOnce() -> Result<(), Error>) -> Res {
        let l = self.lock(id);
        let _g = l.lock().unwrap();
        let r = self.refreshed(id)?;
        if r.status == Status::Stopped {
            return Err(Error::conflict(format!(
                "container {id} is stopped; nothing to update"
            )));
        }
        apply()?;
        Ok(InitResponse::Done)
    }

    pub fn pids(&self, id: &str) -> Res {
        let r = self.refreshed(id)?;
        if r.status == Status::Stopped {
            return Ok(InitResponse::Pids(vec![]));
        }
        Ok(InitResponse::Pids(self.servers.pids(id)?))
    }

    pub fn stats(&self, id: &str) -> Res {
        let r = self.refreshed(id)?;
        if r.status == Status::Stopped {
            return Err(Error::conflict(format!(
                "container {id} is stopped: no stats"
            )));
        }
        Ok(InitResponse::Stats(Box::new(ContainerStats {
            memory: self.servers.memory_stat(id).ok(),
            cpu: self.servers.cpu_stat(id).ok(),
        })))
    }

    // ---- run --detach ----

    /// init launches the container through `ipc create` (a single-threaded
    /// process of its own: init is multi-threaded and must not clone the
    /// container itself). When that `ipc create` exits, the container is
    /// re-parented to init (a child subreaper), so init reaps it and
    /// records its exit status.
    #[allow(clippy::too_many_arguments)]
    pub fn run_detached(
        &self,
        id: &str,
        bundle: &str,
        pid_file: Option<&str>,
        console_socket: Option<&str>,
        no_pivot: bool,
        no_new_keyring: bool,
        preserve_fds: u32,
        stdio: Vec<OwnedFd>,
    ) -> Res {
        validate_id("container id", id)?;
        let [stdin, stdout, stderr]: [OwnedFd; 3] = stdio.try_into().map_err(|_| {
            Error::invalid("run --detach needs exactly 3 fds: stdin, stdout, stderr")
        })?;
        let mut cmd = std::process::Command::new(self.bin_dir.join("ipc"));
        cmd.arg("--root")
            .arg(&self.root)
            .arg("create")
            .arg("--bundle")
            .arg(bundle);
        if let Some(p) = pid_file {
            cmd.arg("--pid-file").arg(p);
        }
        if let Some(c) = console_socket {
            cmd.arg("--console-socket").arg(c);
        }
        if no_pivot {
            cmd.arg("--no-pivot");
        }
        if no_new_keyring {
            cmd.arg("--no-new-keyring");
        }
        if preserve_fds > 0 {
            return Err(Error::unsupported("run --detach with --preserve-fds: the preserved fds would be init's, not yours; use create + start"));
        }
        // The create (and so the container) gets the caller's stdio; its
        // error, if any, comes back in a file, and is the answer, which
        // the caller prints once.
        let error_file = self.root.join(format!(".run-detached-{id}.error"));
        let _ = std::fs::remove_file(&error_file);
        cmd.arg(id)
            .env(ERROR_FILE, &error_file)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr);
        let status = cmd.status().map_err(|e| Error::io("run ipc create", &e));
        let said = std::fs::read_to_string(&error_file).unwrap_or_default();
        let _ = std::fs::remove_file(&error_file);
        let status = status?;
        if !status.success() {
            return Err(Error::invalid(match said.trim().is_empty() {
                true => format!("ipc create {id} failed ({status}) and said nothing"),
                false => said.trim().to_string(),
            }));
        }
        self.start_container(id)
    }

    // ---- helpers ----

    /// The saved config's hooks, for poststart and poststop. Most configs
    /// have none: then the config is not parsed (a whole oci-spec parse at
    /// every start and delete, for nothing).
    fn saved_hooks(&self, id: &str) -> Option<oci_spec::runtime::Hooks> {
        let text =
            std::fs::read_to_string(record::container_dir(&self.root, id).join("config.json"))
                .ok()?;
        if !text.contains("\"hooks\"") {
            return None;
        }
        crate::config::from_checked_text(&text)
            .ok()?
            .hooks()
            .clone()
    }

    /// The record with its status brought up to date with the kernel.
    fn refreshed(&self, id: &str) -> Result<Record, Error> {
        let r = self.get(id)?;
        if matches!(r.status, Status::Created | Status::Running | Status::Paused)
            && !record::same_process(r.pid, r.pid_start)
        {
            self.mark_stopped(id, None);
            return self.get(id);
        }
        Ok(r)
    }

    /// The container's process is gone: stopped, with its exit status if known.
    pub(crate) fn mark_stopped(&self, id: &str, exit_status: Option<i32>) {
        let mut recs = self.records.lock().unwrap();
        let Some(r) = recs.get_mut(id) else { return };
        if !matches!(r.status, Status::Created | Status::Running | Status::Paused) {
            return;
        }
        r.status = Status::Stopped;
        // Durable only with an exit status to keep: without one (a process
        // init did not start, as `ipc run`'s own child) the record on disk
        // would say no more than its dead pid does, which every read and a
        // restarted init check (pid and start time). A foreground run's
        // delete follows at once, and this write sat in its way.
        if exit_status.is_some() {
            r.exit_status = exit_status;
            if let Err(e) = record::save(&self.root, r, Durability::Durable) {
                tracing::error!("cannot record that {id} stopped: {e}");
            }
        }
        drop(recs);
        self.watched.remove(id);
    }

    fn watch_pid(&self, id: &str, pid: i32) {
        if let Some(p) = Pid::from_raw(pid) {
            if let Ok(fd) = pidfd_open(p, PidfdFlags::empty()) {
                self.watched.insert(id, pid, fd);
            }
        }
    }

    /// After a restart of init: creates whose creator died are rolled back,
    /// containers whose process is gone are stopped, the rest are watched.
    fn reconcile(&self) {
        let recs: Vec<Record> = self.records.lock().unwrap().values().cloned().collect();
        for mut r in recs {
            match r.status {
                Status::Creating if !record::same_process(r.creator_pid, r.creator_start) => {
                    tracing::warn!("create of {} was interrupted; rolling it back", r.id);
                    self.rollback(&mut r);
                }
                Status::Creating => self.watch_pid(&r.id, r.creator_pid),
                Status::Created | Status::Running | Status::Paused => {
                    if record::same_process(r.pid, r.pid_start) {
                        self.watch_pid(&r.id, r.pid);
                        if let Some(s) = seccomp::recover(&self.root, &r.id, r.pid) {
                            tracing::info!("{}: seccomp listener back in the fd store", r.id);
                            self.seccomp_fds.put(&r.id, s);
                        }
                    } else {
                        self.mark_stopped(&r.id, None);
                    }
                }
                Status::Stopped => {}
            }
        }
    }

    /// Called by the watcher when watched process `pid` of container `id`
    /// exits. Only the container's own process is reaped here (and only if
    /// it is init's child): an `ipc create` that init started is waited for
    /// by its own caller.
    pub(crate) fn on_exit(&self, id: &str, pid: i32, pidfd: &OwnedFd) {
        let Ok(r) = self.get(id) else { return };
        match r.status {
            Status::Creating if r.creator_pid == pid => {
                // The `ipc create` process died before finishing: roll back,
                // unless it finished just now (then its MarkCreated wins).
                let l = self.lock(id);
                let _g = l.lock().unwrap();
                if let Ok(mut r) = self.get(id) {
                    if r.status == Status::Creating
                        && !record::same_process(r.creator_pid, r.creator_start)
                    {
                        tracing::warn!("ipc create for {id} died midway; rolling back");
                        self.rollback(&mut r);
                    }
                }
            }
            Status::Created | Status::Running | Status::Paused if r.pid == pid => {
                let status = watch::reap(pidfd);
                self.mark_stopped(id, status);
            }
            // A report about a process the record has moved on from.
            _ => {}
        }
    }
}

/// A pidfd of a new create's `ipc` and its start time, read once: the
/// pidfd is opened first, so a start time read while the pidfd says the
/// process is alive is this process's own (its pid cannot have been
/// given to another yet).
fn creator_identity(pid: i32) -> Result<(OwnedFd, u64), Error> {
    let not_live = || Error::invalid(format!("creator pid {pid} is not a live process"));
    let fd = Pid::from_raw(pid)
        .and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        .ok_or_else(not_live)?;
    let start = record::start_time(pid).ok_or_else(not_live)?;
    if watch::exited(&fd) {
        return Err(not_live());
    }
    Ok((fd, start))
}

/// A pidfd of the `ipc` that asked for a create, if it is still the
/// process that started at `start`.
fn creator_pidfd(pid: i32, start: u64) -> Result<OwnedFd, Error> {
    match creator_identity(pid) {
        Ok((fd, now)) if now == start => Ok(fd),
        _ => Err(Error::invalid(format!(
            "creator pid {pid} ended before its create was prepared"
        ))),
    }
}

/// The host uid and gid that the container's root maps to, when it has a
/// user namespace of its own.
fn container_root_ids(spec: &Spec) -> Option<(u32, u32)> {
    let linux = spec.linux().as_ref()?;
    let own_userns = linux
        .namespaces()
        .as_ref()?
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_none());
    if !own_userns {
        return None;
    }
    let host = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_ref()?
            .iter()
            .find(|m| m.container_id() == 0)
            .map(|m| m.host_id())
    };
    Some((host(linux.uid_mappings())?, host(linux.gid_mappings())?))
}

/// Refuses what a config asks for that is not built yet, by name.
fn refuse_unsupported(spec: &Spec) -> Result<(), Error> {
    if let Some(linux) = spec.linux() {
        if linux.intel_rdt().is_some() {
            return Err(Error::unsupported("linux.intelRdt is not supported"));
        }
        resources::unsupported(linux.resources().as_ref())?;
    }
    Ok(())
}

/// kill or pause of a container that is not running. The text has runc's
/// "container not running": containerd's runc shim matches it to know a
/// kill found the process already gone (and `ctr task rm -f` of a stopped
/// task then deletes it instead of failing).
fn not_running(id: &str, status: Status) -> Error {
    Error::conflict(format!(
        "container not running: {id} is {}",
        status.as_str()
    ))
}

/// `start`: open the exec fifo for reading, which releases the container
/// process blocked opening it for writing, and read its byte. Gives up if
/// the process dies meanwhile.
fn release_exec_fifo(path: &Path, pid: i32, pid_start: u64) -> Result<(), Error> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::kernel(
            e.raw_os_error(),
            format!("open exec fifo {}: {e}", path.display()),
        )
    })?;
    let until = Instant::now() + Duration::from_secs(10);
    let mut byte = [0u8; 1];
    loop {
        match rustix::io::read(&fd, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => {
                return Err(Error::kernel(
                    e.raw_os_error(),
                    format!("read exec fifo: {e}"),
                ))
            }
        }
        if !record::same_process(pid, pid_start) {
            return Err(Error::conflict(format!(
                "container process {pid} exited before start"
            )));
        }
        if Instant::now() > until {
            return Err(Error::new(
                ErrorKind::Timeout,
                "container process did not open its exec fifo within 10 s",
            ));
        }
        wait_readable(&fd);
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

/// Until the fifo has a byte, for at most 5 ms (the caller checks the
/// process is alive in between). A writer that came and went without
/// writing leaves the fifo hung up and empty, so poll returns at once:
/// then sleep instead of spinning. (Hung up with the byte in it is the
/// usual case: the process wrote and exec closed its end.)
fn wait_readable(fd: &OwnedFd) {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut pfd = [PollFd::new(fd, PollFlags::IN)];
    let five_ms = Timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    let hung_up_empty = |r: PollFlags| r.contains(PollFlags::HUP) && !r.contains(PollFlags::IN);
    if poll(&mut pfd, Some(&five_ms)).is_ok() && hung_up_empty(pfd[0].revents()) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_and_wait(pid: i32, timeout: Duration) {
    let Some(p) = Pid::from_raw(pid) else { return };
    let Ok(fd) = pidfd_open(p, PidfdFlags::empty()) else {
        return;
    };
    let _ = pidfd_send_signal(&fd, Signal::KILL);
    let mut fds = [rustix::event::PollFd::new(
        &fd,
        rustix::event::PollFlags::IN,
    )];
    let ts = rustix::event::Timespec {
        tv_sec: timeout.as_secs() as i64,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&ts));
    // If it is our child (re-parented to init), reap it.
    use std::os::fd::AsFd;
    let _ = rustix::process::waitid(
        rustix::process::WaitId::PidFd(fd.as_fd()),
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
    );
}

/// For the container state a hook gets while ipc creates (before init has
/// the pid on record).
pub fn creating_state_json(
    id: &str,
    bundle: &str,
    pid: i32,
    annotations: &BTreeMap<String, String>,
) -> String {
    record::state_json(&ContainerState {
        oci_version: record::oci_version().into(),
        id: id.into(),
        status: "creating".into(),
        pid,
        bundle: bundle.into(),
        rootfs: String::new(),
        created: String::new(),
        owner: String::new(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        exit_status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_creator_has_a_pidfd_and_its_own_start_time() {
        let me = std::process::id() as i32;
        let (fd, start) = creator_identity(me).unwrap();
        assert_eq!(Some(start), record::start_time(me));
        assert!(!watch::exited(&fd));
    }

    #[test]
    fn a_creator_that_is_gone_is_refused() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        let err = creator_identity(pid).unwrap_err();
        assert!(err.to_string().contains("is not a live process"), "{err}");
    }

    #[test]
    fn an_exited_but_unreaped_process_reads_as_exited() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = pidfd_open(
            Pid::from_raw(child.id() as i32).unwrap(),
            PidfdFlags::empty(),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !watch::exited(&fd) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watch::exited(&fd));
        child.wait().unwrap();
    }
}
