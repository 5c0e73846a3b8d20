//! The memory-controller service: requests in, cgroupfs and the journal.
//!
//! A mutating request goes: recorded under its key? answer that. Otherwise
//! every check that needs no change (ids, limits, existence, children,
//! processes, usage) runs first, so bad input leaves nothing behind, not
//! even a journal entry; then `begin`, the kernel work, `commit`.

use crate::backend::{self, Backend};
use crate::join;
use crate::limits::merge;
use crate::oom::{OomNotice, Watcher};
use crate::peer::{CpuPeer, Peer, PeerHas};
use crate::reconcile;
use crate::state::{GroupRecord, Table};
use cgroupfs::{Base, CgroupDir, Hierarchies, Places, Version};
use libipc::journal::Journal;
use libipc::server::{Ctx, Service};
use protocol::cgroup::CgroupJoin;
use protocol::memory::{
    HugepageLimit, Limit, Memory, MemoryEvent, MemoryGroup, MemoryLimits, MemoryRequest,
    MemoryResponse,
};
use protocol::{validate_id, Error};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
// A handler that panics (libipc turns that into an error reply) must not
// leave the table locked for good: poisoned locks are taken over.
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

pub type MemJournal = Journal<Table, MemoryRequest, MemoryResponse>;
/// Where OOM events go (libipc's `Events::publish` in the binary).
pub type Publish = Box<dyn Fn(MemoryEvent) + Send + Sync>;

pub struct MemoryService {
    shared: Arc<Shared>,
}

struct Shared {
    backend: Arc<dyn Backend>,
    /// Where groups go: the base, or a container's cgroupsPath.
    places: Places,
    journal: Mutex<MemJournal>,
    watcher: OnceLock<Watcher>,
    publish: Publish,
    /// cpu-controller, when it shares our cgroup v2 directories.
    peer: Option<Arc<dyn Peer>>,
}

/// What a request changes in the table once it is done.
enum Change {
    None,
    /// The group, and the cgroupsPath parents its create made.
    Put(String, GroupRecord, Vec<PathBuf>),
    Remove(String),
}

impl Change {
    fn apply(self, t: &mut Table) {
        match self {
            Change::None => {}
            Change::Put(id, r, made) => {
                t.groups.insert(id, r);
                t.made.extend(made);
            }
            Change::Remove(id) => {
                t.groups.remove(&id);
            }
        }
    }
}

/// The outcome of the checks before a mutating request.
enum Pre {
    /// Already true (an identical create): answer without doing anything.
    Done(MemoryResponse),
    Go,
}

impl MemoryService {
    /// Discovers where memory is mounted, finds the constellation's base
    /// directory, and rebuilds the table from the journal and cgroupfs.
    pub fn start(state_dir: &Path, root: &Path, publish: Publish) -> Result<Self, Error> {
        let hier = Hierarchies::discover()?;
        let base = Base::load_or_init(state_dir, root, &hier, &["memory"])?;
        let backend: Arc<dyn Backend> = Arc::from(backend::select(&hier, &base)?);
        tracing::info!(
            "memory on cgroup {} at {}",
            backend.version().as_str(),
            backend.base().path().display()
        );
        let peer: Option<Arc<dyn Peer>> = if shares_v2_with_cpu(&hier) {
            Some(Arc::new(CpuPeer::new(root)))
        } else {
            None
        };
        Self::with_peer(backend, state_dir, publish, peer)
    }

    pub fn with_backend(
        backend: Arc<dyn Backend>,
        state_dir: &Path,
        publish: Publish,
    ) -> Result<Self, Error> {
        Self::with_peer(backend, state_dir, publish, None)
    }

    /// `peer`: cpu-controller when its groups live in our (v2) directories.
    pub fn with_peer(
        backend: Arc<dyn Backend>,
        state_dir: &Path,
        publish: Publish,
        peer: Option<Arc<dyn Peer>>,
    ) -> Result<Self, Error> {
        backend.prepare_base()?;
        let journal = Journal::open(state_dir)?;
        let shared = Arc::new(Shared {
            places: Places::new(backend.root(), backend.base().clone()),
            backend: backend.clone(),
            journal: Mutex::new(journal),
            watcher: OnceLock::new(),
            publish,
            peer,
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        let watcher = Watcher::start(
            backend,
            Box::new(move |n| {
                if let Some(s) = weak.upgrade() {
                    s.on_oom(n)
                }
            }),
        )?;
        let _ = shared.watcher.set(watcher);
        shared.recover()?;
        Ok(MemoryService { shared })
    }

    /// The table as it stands (for tests).
    pub fn table(&self) -> Table {
        self.shared
            .journal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .state()
            .clone()
    }

    /// JoinFds: one entry and fd for the group's memory hierarchy (see
    /// [`crate::join`]). Read-only; `handle` sends the fds with the reply.
    pub fn join_fds(&self, id: &str) -> Result<(Vec<CgroupJoin>, Vec<OwnedFd>), Error> {
        validate_id("group id", id)?;
        // Held while opening, so a delete cannot remove the group between
        // the lookup and the open.
        let s = &self.shared;
        let j = s.journal.lock().unwrap_or_else(PoisonError::into_inner);
        j.state().get(id)?;
        let dir = j.state().dir(&s.places, id)?;
        let (entry, fd) = join::open(s.backend.version(), "memory", &dir)?;
        Ok((vec![entry], vec![fd]))
    }

    pub fn watched(&self) -> Vec<String> {
        self.shared.watcher().watched()
    }

    /// Handles one request, as the server loop would.
    pub fn request(&self, key: Option<&str>, req: MemoryRequest) -> Result<MemoryResponse, Error> {
        let s = &self.shared;
        match req {
            MemoryRequest::Stat { id } => s.stat(&id),
            MemoryRequest::List => s.list(),
            MemoryRequest::JoinFds { .. } => Err(join::needs_ctx("memory-controller")),
            req => {
                // Asked before taking our lock: the peer may be asking us
                // about the same group at the same time.
                let peer = s.peer_has(&req);
                s.mutate(key, req, peer)
            }
        }
    }
}

/// Removes the parents that cgroupsPath creates made and that hold no
/// group now. At stop, like the base: while the server runs they stay, so
/// that containers made one after another under one parent (an engine's
/// `/default/<id>`) do not each pay for its mkdir and rmdir.
fn prune_made(j: &mut MemJournal, backend: &dyn Backend) {
    if j.state().made.is_empty() {
        return;
    }
    // Through the backend, which knows how this hierarchy removes a group.
    let gone = cgroupfs::place::prune(&j.state().made, &|d| backend.remove(d).map(|()| true));
    let made = &mut j.state_mut().made;
    for p in gone {
        made.remove(&p);
    }
    if let Err(e) = j.save() {
        tracing::warn!("cannot save the journal at stop: {e}");
    }
}

/// Does cpu-controller keep groups in the unified hierarchy, in the same
/// directories as ours? Only when memory is on v2 too.
fn shares_v2_with_cpu(hier: &Hierarchies) -> bool {
    let on_v2 = |c: &str| {
        hier.get(c)
            .map(|h| h.version == Version::V2)
            .unwrap_or(false)
    };
    // cpu-controller freezes through cgroup.freeze when there is no v1 freezer.
    let v2_freezer = hier.get("freezer").is_err() && hier.unified.is_some();
    on_v2("memory") && (["cpu", "cpuset", "pids"].iter().any(|c| on_v2(c)) || v2_freezer)
}

impl Service for MemoryService {
    type P = Memory;

    fn shutdown(&self) {
        let s = &self.shared;
        let mut j = s.journal.lock().unwrap_or_else(PoisonError::into_inner);
        prune_made(&mut j, s.backend.as_ref());
        s.remove_empty_base();
    }

    fn handle(&self, ctx: &mut Ctx, req: MemoryRequest) -> Result<MemoryResponse, Error> {
        match req {
            // Answered here, never through the journal: with or without a
            // key, every call opens fresh fds.
            MemoryRequest::JoinFds { id } => {
                join::refuse_fds_in(&ctx.fds_in, "memory-controller JoinFds")?;
                let (entries, fds) = self.join_fds(&id)?;
                ctx.fds_out = fds;
                Ok(MemoryResponse::JoinFds(entries))
            }
            // The two creates for a process that joins by itself: journaled
            // like Create; the fds are opened fresh after it, also when the
            // answer came from the journal (a retry).
            req @ (MemoryRequest::CreateJoinable { .. }
            | MemoryRequest::CreateJoinableAt { .. }) => {
                let id = match &req {
                    MemoryRequest::CreateJoinable { id, .. }
                    | MemoryRequest::CreateJoinableAt { id, .. } => id.clone(),
                    _ => unreachable!("matched above"),
                };
                join::refuse_fds_in(&ctx.fds_in, "memory-controller CreateJoinable")?;
                self.request(ctx.key.as_deref(), req)?;
                let (entries, fds) = self.join_fds(&id)?;
                ctx.fds_out = fds;
                Ok(MemoryResponse::JoinFds(entries))
            }
            req => self.request(ctx.key.as_deref(), req),
        }
    }

    /// Subscribers filter by group id.
    fn event_matches(&self, filter: &str, event: &MemoryEvent) -> bool {
        match event {
            MemoryEvent::Oom { id, .. } => id == filter,
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn is_empty(l: &MemoryLimits) -> bool {
    l == &MemoryLimits::default()
}

impl Shared {
    fn watcher(&self) -> &Watcher {
        self.watcher
            .get()
            .expect("the watcher is set in with_backend")
    }

    fn base(&self) -> &CgroupDir {
        self.backend.base()
    }

    /// For a delete: does the peer still have the group? `No` (rmdir as
    /// usual) when there is no peer or the request is not a delete.
    fn peer_has(&self, req: &MemoryRequest) -> PeerHas {
        match (&self.peer, req) {
            (Some(p), MemoryRequest::Delete { id, .. }) => p.has(id),
            _ => PeerHas::No,
        }
    }

    /// On start: finish the request that was begun before a crash, then
    /// reconcile the table with cgroupfs, then watch every group.
    fn recover(&self) -> Result<(), Error> {
        let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((key, req)) = j.take_pending() {
            tracing::info!("re-applying {req:?} (key {key}) begun before the last stop");
            let peer = self.peer_has(&req);
            // Resumed: a cgroupsPath directory found now is the one this
            // request made before the stop.
            let (result, change) = match self.precheck(j.state(), &req, peer, true) {
                Err(e) => (Err(e), Change::None),
                Ok(Pre::Done(r)) => (Ok(r), Change::None),
                Ok(Pre::Go) => self.apply(j.state(), &req, peer),
            };
            j.commit(Some(&key), &result, |t| change.apply(t))?;
        }
        let places = self.places.clone();
        let t = j.state_mut();
        for id in reconcile::drop_missing(t, &places) {
            tracing::warn!("memory group {id} is in the journal but its cgroup is gone; dropped");
        }
        let backend = self.backend.clone();
        // On v2, cpu-controller's groups are directories under our base too.
        let theirs = self
            .peer
            .as_ref()
            .and_then(|p| p.groups())
            .unwrap_or_default();
        reconcile::adopt_unknown_except(t, &places, &move |d| backend.read_limits(d), &theirs)?;
        j.save()?;
        for id in j.state().groups.keys() {
            let dir = j.state().dir(&places, id)?;
            if let Err(e) = self.watcher().watch(id, &dir) {
                tracing::warn!("cannot watch group {id} for OOM events: {e}");
            }
        }
        Ok(())
    }

    fn mutate(
        &self,
        key: Option<&str>,
        req: MemoryRequest,
        peer: PeerHas,
    ) -> Result<MemoryResponse, Error> {
        let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = key.and_then(|k| j.recorded(k)) {
            return r;
        }
        if let Pre::Done(r) = self.precheck(j.state(), &req, peer, false)? {
            return Ok(r);
        }
        // The cgroupsPath parents this create will make are journaled
        // with its begin: a crash after their mkdir and before the commit
        // must not leave them unknown (the redo finds them made). Listed
        // and absent, or left empty by a failure, the stop prunes them.
        if let MemoryRequest::CreateJoinableAt {
            cgroups_path: Some(cgroups_path),
            ..
        } = &req
        {
            let dir = self.places.resolve(cgroups_path)?;
            let parents = self.places.missing_parents(&dir);
            j.state_mut()
                .made
                .extend(parents.into_iter().map(|d| d.path().to_path_buf()));
        }
        j.begin(key, &req)?;
        let (result, change) = self.apply(j.state(), &req, peer);
        j.commit(key, &result, |t| change.apply(t))?;
        result
    }

    /// Every check that changes nothing. `resuming`: the request was begun
    /// before a stop, and what it made then is found now.
    fn precheck(
        &self,
        t: &Table,
        req: &MemoryRequest,
        peer: PeerHas,
        resuming: bool,
    ) -> Result<Pre, Error> {
        match req {
            MemoryRequest::Create { id, parent, limits } => {
                self.pre_create(t, id, parent.as_deref(), limits)
            }
            // Made already with the same spec: nothing to do (`handle`
            // fills in the entries and their fds).
            MemoryRequest::CreateJoinable { id, limits } => {
                match self.pre_create(t, id, None, limits)? {
                    Pre::Done(_) => Ok(Pre::Done(MemoryResponse::JoinFds(vec![]))),
                    Pre::Go => Ok(Pre::Go),
                }
            }
            MemoryRequest::CreateJoinableAt {
                id,
                cgroups_path,
                limits,
                hugepages,
            } => self.pre_create_at(
                t,
                id,
                cgroups_path.as_deref(),
                (limits, hugepages),
                resuming,
            ),
            MemoryRequest::Set {
                id,
                limits,
                check_before_update,
            } => self
                .pre_set(t, id, limits, *check_before_update)
                .map(|_| Pre::Go),
            MemoryRequest::Attach { id, pid } => self.pre_attach(t, id, *pid).map(|_| Pre::Go),
            MemoryRequest::Delete { id, force } => {
                self.pre_delete(t, id, *force, peer).map(|_| Pre::Go)
            }
            MemoryRequest::Stat { .. } | MemoryRequest::List | MemoryRequest::JoinFds { .. } => {
                Err(Error::internal("not a mutating request"))
            }
        }
    }

    fn pre_create(
        &self,
        t: &Table,
        id: &str,
        parent: Option<&str>,
        limits: &MemoryLimits,
    ) -> Result<Pre, Error> {
        validate_id("group id", id)?;
        if let Some(p) = parent {
            validate_id("parent group id", p)?;
            t.groups.get(p).ok_or_else(|| {
                Error::not_found(format!(
                    "parent memory group {p:?} of {id:?} does not exist; create it first"
                ))
            })?;
        }
        self.backend.check(id, limits)?;
        if let Some(rec) = t.groups.get(id) {
            if rec.parent.as_deref() == parent && &rec.requested == limits {
                return Ok(Pre::Done(MemoryResponse::Created(self.view(t, id)?)));
            }
            return Err(Error::exists(format!(
                "memory group {id:?} already exists with {}; delete it first or use `set` to change its limits",
                describe(rec)
            )));
        }
        Ok(Pre::Go)
    }

    /// CreateJoinableAt: the checks of a create, then the cgroupsPath's:
    /// well formed, outside the base, not another group's, and not a
    /// directory someone else already uses.
    fn pre_create_at(
        &self,
        t: &Table,
        id: &str,
        cgroups_path: Option<&str>,
        (limits, hugepages): (&MemoryLimits, &[HugepageLimit]),
        resuming: bool,
    ) -> Result<Pre, Error> {
        validate_id("group id", id)?;
        let dir = self.container_dir(id, cgroups_path)?;
        self.backend.check(id, limits)?;
        self.backend.check_hugepages(hugepages)?;
        if let Some(rec) = t.groups.get(id) {
            let same = rec.parent.is_none()
                && rec.cgroups_path.as_deref() == cgroups_path
                && &rec.requested == limits
                && rec.hugepages == hugepages;
            if same {
                return Ok(Pre::Done(MemoryResponse::JoinFds(vec![])));
            }
            return Err(Error::exists(format!(
                "memory group {id:?} already exists with {}; delete it first",
                describe(rec)
            )));
        }
        let Some(cgroups_path) = cgroups_path else {
            return Ok(Pre::Go);
        };
        // Only a group whose directory has the same name can be there:
        // the others are not resolved (a create stays cheap with many).
        let name = dir.path().file_name();
        let maybe = |other: &String, rec: &GroupRecord| match &rec.cgroups_path {
            Some(p) => Path::new(p).file_name() == name,
            None => Some(std::ffi::OsStr::new(other)) == name,
        };
        for (other, _) in t.groups.iter().filter(|(o, r)| maybe(o, r)) {
            if t.dir(&self.places, other).is_ok_and(|d| d == dir) {
                return Err(Error::exists(format!(
                    "linux.cgroupsPath {cgroups_path:?}: {} is already the memory group of {other:?}",
                    dir.path().display()
                )));
            }
        }
        if !resuming {
            cgroupfs::place::check_unused(&dir, cgroups_path)?;
        }
        Ok(Pre::Go)
    }

    fn pre_set(
        &self,
        t: &Table,
        id: &str,
        limits: &MemoryLimits,
        check: bool,
    ) -> Result<(), Error> {
        validate_id("group id", id)?;
        t.get(id)?;
        if is_empty(limits) {
            return Err(Error::invalid(format!(
                "set for memory group {id:?} changes nothing; give at least one of --limit, --reservation, --swap, --swappiness, --disable-oom-killer"
            )));
        }
        self.backend.check(id, limits)?;
        if let (true, Some(Limit::Value(new))) = (check, limits.limit) {
            let usage = self.backend.usage(&t.dir(&self.places, id)?)?;
            if new < usage {
                return Err(Error::conflict(format!(
                    "memory limit {new} bytes for group {id:?} is below its current usage of {usage} bytes (--check-before-update)"
                )));
            }
        }
        Ok(())
    }

    fn pre_attach(&self, t: &Table, id: &str, pid: i32) -> Result<(), Error> {
        validate_id("group id", id)?;
        t.get(id)?;
        if pid <= 0 {
            return Err(Error::invalid(format!(
                "pid {pid} is not a process id; it must be positive"
            )));
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return Err(Error::not_found(format!(
                "no process with pid {pid}; cannot attach it to memory group {id:?}"
            )));
        }
        Ok(())
    }

    fn pre_delete(&self, t: &Table, id: &str, force: bool, peer: PeerHas) -> Result<(), Error> {
        validate_id("group id", id)?;
        t.get(id)?;
        let children = t.children_of(id);
        if !children.is_empty() {
            return Err(Error::conflict(format!(
                "memory group {id:?} has child groups {}; delete them first",
                children.join(", ")
            )));
        }
        let dir = t.dir(&self.places, id)?;
        if !dir.exists() {
            return Ok(());
        }
        // A directory kept for the peer may hold the peer's child groups.
        let other = match peer.may_rmdir() {
            true => dir.children()?.into_iter().next(),
            false => None,
        };
        if let Some(other) = other {
            return Err(Error::conflict(format!(
                "memory group {id:?} holds a cgroup the server did not make ({}); remove it first",
                other.path().display()
            )));
        }
        let pids = dir.procs_recursive()?;
        if !pids.is_empty() && !force {
            return Err(Error::conflict(format!(
                "memory group {id:?} still has processes {pids:?}; stop them or use --force to kill them"
            )));
        }
        Ok(())
    }

    /// Does the kernel work of a checked request.
    fn apply(
        &self,
        t: &Table,
        req: &MemoryRequest,
        peer: PeerHas,
    ) -> (Result<MemoryResponse, Error>, Change) {
        let r = match req {
            MemoryRequest::Create { id, parent, limits } => self
                .make(t, id, parent.as_deref(), limits, true)
                .map(|(g, rec)| {
                    let g = g.expect("read back when asked");
                    (MemoryResponse::Created(g), rec)
                }),
            // `handle` fills in the entries and their fds.
            MemoryRequest::CreateJoinable { id, limits } => self
                .make(t, id, None, limits, false)
                .map(|(_, change)| (MemoryResponse::JoinFds(vec![]), change)),
            MemoryRequest::CreateJoinableAt {
                id,
                cgroups_path,
                limits,
                hugepages,
            } => self
                .make_at(id, cgroups_path.as_deref(), limits, hugepages)
                .map(|change| (MemoryResponse::JoinFds(vec![]), change)),
            MemoryRequest::Set { id, limits, .. } => self.set(t, id, limits),
            MemoryRequest::Attach { id, pid } => t
                .dir(&self.places, id)
                .and_then(|d| d.add_pid(*pid))
                .map(|_| (MemoryResponse::Attached, Change::None)),
            MemoryRequest::Delete { id, force } => self.delete(t, id, *force, peer),
            MemoryRequest::Stat { .. } | MemoryRequest::List | MemoryRequest::JoinFds { .. } => {
                Err(Error::internal("not a mutating request"))
            }
        };
        match r {
            Ok((resp, change)) => (Ok(resp), change),
            Err(e) => (Err(e), Change::None),
        }
    }

    /// Makes the group, applies its limits and watches it for OOMs; with
    /// `read_back`, also reads its limits back from the kernel (the answer
    /// to `Create`). A failure leaves nothing behind.
    fn make(
        &self,
        t: &Table,
        id: &str,
        parent: Option<&str>,
        limits: &MemoryLimits,
        read_back: bool,
    ) -> Result<(Option<MemoryGroup>, Change), Error> {
        let parent_dir = match parent {
            Some(p) => t.dir(&self.places, p)?,
            None => self.base().clone(),
        };
        if !self.base().exists() {
            // The last delete removed it (remove_empty_base).
            self.backend.prepare_base()?;
        }
        let dir = parent_dir.child(id);
        let made = self.backend.create(id, &parent_dir, &dir)?;
        let done = self
            .backend
            .apply(id, &dir, limits)
            .and_then(|_| match made {
                true => self.watcher().watch_new(id, &dir),
                false => self.watcher().watch(id, &dir),
            })
            .and_then(|_| {
                read_back
                    .then(|| self.backend.read_limits(&dir))
                    .transpose()
            });
        let read_back = match done {
            Ok(l) => l,
            Err(e) => {
                // Leave nothing behind: remove what this call made.
                self.watcher().unwatch(id);
                if made {
                    if let Err(r) = self.backend.remove(&dir) {
                        tracing::warn!(
                            "cannot remove {} after a failed create: {r}",
                            dir.path().display()
                        );
                    }
                }
                return Err(e);
            }
        };
        let rec = GroupRecord {
            parent: parent.map(str::to_string),
            requested: limits.clone(),
            oom_events: 0,
            adopted: false,
            cgroups_path: None,
            hugepages: vec![],
        };
        let group = read_back.map(|l| self.group(id, rec.parent.clone(), l, &dir));
        Ok((group, Change::Put(id.to_string(), rec, vec![])))
    }

    /// Makes the group at its cgroupsPath, with the parents missing on
    /// the way (remembered, so that the server's stop removes them once
    /// empty), applies its limits and watches it. A failure removes what this
    /// call made.
    fn make_at(
        &self,
        id: &str,
        cgroups_path: Option<&str>,
        limits: &MemoryLimits,
        hugepages: &[HugepageLimit],
    ) -> Result<Change, Error> {
        if cgroups_path.is_none() && !self.places.base.exists() {
            // The last delete removed it (remove_empty_base).
            self.backend.prepare_base()?;
        }
        let dir = self.container_dir(id, cgroups_path)?;
        let mut made: Vec<CgroupDir> = vec![];
        let done = self.make_chain(id, &dir, &mut made).and_then(|()| {
            self.backend
                .apply(id, &dir, limits)
                .and_then(|_| match hugepages.is_empty() {
                    true => Ok(()),
                    false => self.backend.apply_hugepages(&dir, hugepages),
                })
                .and_then(|_| match made.last() == Some(&dir) {
                    true => self.watcher().watch_new(id, &dir),
                    false => self.watcher().watch(id, &dir),
                })
        });
        if let Err(e) = done {
            self.watcher().unwatch(id);
            for d in made.iter().rev() {
                if let Err(r) = self.backend.remove(d) {
                    tracing::warn!(
                        "cannot remove {} after a failed create: {r}",
                        d.path().display()
                    );
                }
            }
            return Err(e);
        }
        let rec = GroupRecord {
            parent: None,
            requested: limits.clone(),
            oom_events: 0,
            adopted: false,
            cgroups_path: cgroups_path.map(str::to_string),
            hugepages: hugepages.to_vec(),
        };
        // The leaf is the group's own; only the parents are kept in `made`.
        let parents = made
            .into_iter()
            .filter(|d| *d != dir)
            .map(|d| d.path().to_path_buf())
            .collect();
        Ok(Change::Put(id.to_string(), rec, parents))
    }

    /// A container's group directory: at its cgroupsPath, else
    /// `<base>/<id>`.
    fn container_dir(&self, id: &str, cgroups_path: Option<&str>) -> Result<CgroupDir, Error> {
        match cgroups_path {
            Some(p) => self.places.resolve(p),
            None => Ok(self.places.base.child(id)),
        }
    }

    /// mkdir the missing parents of `dir`, top first, then `dir`; each one
    /// this call made is pushed to `made`.
    fn make_chain(
        &self,
        id: &str,
        dir: &CgroupDir,
        made: &mut Vec<CgroupDir>,
    ) -> Result<(), Error> {
        self.places.make_with_parents(dir, |parent, d| {
            if self.backend.create(id, parent, d)? {
                made.push(d.clone());
            }
            Ok(())
        })
    }

    fn set(
        &self,
        t: &Table,
        id: &str,
        limits: &MemoryLimits,
    ) -> Result<(MemoryResponse, Change), Error> {
        let rec = t.get(id)?;
        let dir = t.dir(&self.places, id)?;
        self.backend.apply(id, &dir, limits)?;
        let new = GroupRecord {
            requested: merge(&rec.requested, limits),
            ..rec.clone()
        };
        let group = self.group(
            id,
            rec.parent.clone(),
            self.backend.read_limits(&dir)?,
            &dir,
        );
        Ok((
            MemoryResponse::Updated(group),
            Change::Put(id.to_string(), new, vec![]),
        ))
    }

    fn delete(
        &self,
        t: &Table,
        id: &str,
        force: bool,
        peer: PeerHas,
    ) -> Result<(MemoryResponse, Change), Error> {
        let dir = t.dir(&self.places, id)?;
        self.watcher().unwatch(id);
        if dir.exists() {
            let r = match (peer.may_rmdir(), force) {
                (true, true) => self.backend.remove_forced(&dir),
                (true, false) => self.backend.remove(&dir),
                // The v2 directory is cpu-controller's too (or may be):
                // give back only our settings; its last owner removes it.
                (false, force) => (if force {
                    self.backend.kill_all(&dir)
                } else {
                    Ok(())
                })
                .and_then(|()| self.backend.reset(&dir)),
            };
            if let Err(e) = r {
                // Still there: keep reporting its OOMs.
                let _ = self.watcher().watch(id, &dir);
                return Err(e);
            }
        }
        Ok((MemoryResponse::Deleted, Change::Remove(id.to_string())))
    }

    /// On v1 the base is ours alone: when the server stops with no group
    /// left, it goes too (as cpu-controller's do), so a stopped
    /// constellation leaves no directory in its caller's cgroup. While the
    /// server runs it stays: remade at every create it cost a mkdir and an
    /// rmdir per container. (On v2 cpu-controller makes its groups in the
    /// same base without checking it again: it stays.)
    fn remove_empty_base(&self) {
        let base = self.base();
        if self.backend.version() != cgroupfs::Version::V1 || !base.exists() {
            return;
        }
        if base.children().is_ok_and(|c| c.is_empty()) {
            if let Err(e) = base.remove() {
                tracing::debug!("keeping {}: {e}", base.path().display());
            }
        }
    }

    fn stat(&self, id: &str) -> Result<MemoryResponse, Error> {
        validate_id("group id", id)?;
        let j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let rec = j.state().get(id)?;
        let mut st = self.backend.stat(&j.state().dir(&self.places, id)?)?;
        st.id = id.to_string();
        if !self.backend.kernel_counts_oom_events() {
            st.oom_events = rec.oom_events;
        }
        Ok(MemoryResponse::Stat(st))
    }

    fn list(&self) -> Result<MemoryResponse, Error> {
        let j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
        let t = j.state();
        let mut out = vec![];
        for id in t.groups.keys() {
            match self.view(t, id) {
                Ok(g) => out.push(g),
                Err(e) => tracing::warn!("memory group {id} left out of the list: {e}"),
            }
        }
        Ok(MemoryResponse::List(out))
    }

    /// The group as the kernel holds it now.
    fn view(&self, t: &Table, id: &str) -> Result<MemoryGroup, Error> {
        let rec = t.get(id)?;
        let dir = t.dir(&self.places, id)?;
        Ok(self.group(
            id,
            rec.parent.clone(),
            self.backend.read_limits(&dir)?,
            &dir,
        ))
    }

    fn group(
        &self,
        id: &str,
        parent: Option<String>,
        limits: MemoryLimits,
        dir: &CgroupDir,
    ) -> MemoryGroup {
        MemoryGroup {
            id: id.to_string(),
            parent,
            limits,
            backend: self.backend.version().as_str().to_string(),
            path: dir.path().display().to_string(),
        }
    }

    /// The watcher saw an OOM: count it (v1), persist, tell subscribers.
    fn on_oom(&self, n: OomNotice) {
        let oom_events = {
            let mut j = self.journal.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(rec) = j.state_mut().groups.get_mut(&n.id) else {
                return;
            };
            rec.oom_events += n.new_events;
            let counted = rec.oom_events;
            if let Err(e) = j.save() {
                tracing::warn!("cannot persist the OOM count of group {}: {e}", n.id);
            }
            n.kernel_events.unwrap_or(counted)
        };
        tracing::info!(
            "memory group {} went out of memory ({} events, {} kills)",
            n.id,
            oom_events,
            n.oom_kills
        );
        (self.publish)(MemoryEvent::Oom {
            id: n.id,
            oom_events,
            oom_kills: n.oom_kills,
            at_unix_ms: unix_ms(),
        });
    }
}

/// A group's parent and requested limits, for messages.
fn describe(rec: &GroupRecord) -> String {
    let parent = rec
        .parent
        .as_deref()
        .map(|p| format!("parent {p:?}, "))
        .unwrap_or_default();
    let at = rec
        .cgroups_path
        .as_deref()
        .map(|p| format!("cgroupsPath {p:?}, "))
        .unwrap_or_default();
    format!("{parent}{at}limits {:?}", rec.requested)
}
