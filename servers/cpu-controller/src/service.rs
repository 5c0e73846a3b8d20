//! The cpu-controller service: requests in, cgroupfs and journal changes out.
//!
//! Every request runs under one lock, so two clients never interleave their
//! mkdirs and journal writes. A mutating request goes: answered before under
//! this key? answer the same; check the input (bad input touches nothing);
//! journal the intent; do it in the kernel; commit the result and the table
//! change under the key.

use crate::group;
use crate::join;
use crate::layout::Layout;
use crate::limits;
use crate::peer::{Peer, PeerHas};
use crate::recovery;
use crate::table::{Change, Record, Table};
use cgroupfs::CgroupDir;
use libipc::journal::Journal;
use libipc::server::{Ctx, Service};
use protocol::cgroup::CgroupJoin;
use protocol::cpu::{
    BlockIo, Cpu, CpuEvent, CpuGroup, CpuLimits, CpuRequest, CpuResponse, CpuStat, DeviceRule,
};
use protocol::{validate_id, Error};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub type CpuJournal = Journal<Table, CpuRequest, CpuResponse>;

/// Where FreezeChanged events go (libipc's Events in the binary).
pub type Publish = Box<dyn Fn(CpuEvent) + Send + Sync>;

pub struct CpuService {
    inner: Mutex<Inner>,
    publish: Publish,
}

pub(crate) struct Inner {
    pub layout: Layout,
    pub journal: CpuJournal,
    /// memory-controller, when it shares our cgroup v2 directories.
    pub peer: Option<Arc<dyn Peer>>,
    /// cgroupsPath parents found or made by an earlier create: the next
    /// create under them does not stat them again. One removed behind our
    /// back is made again by the create (make_with_parents) and recorded
    /// at its commit, only not journaled before its mkdir.
    pub seen_parents: std::collections::HashSet<std::path::PathBuf>,
}

impl CpuService {
    /// Loads the journal, reconciles it with cgroupfs and finishes the
    /// request a crash interrupted.
    pub fn start(layout: Layout, state_dir: &Path, publish: Publish) -> Result<Self, Error> {
        Self::start_with_peer(layout, state_dir, publish, None)
    }

    /// [`start`](Self::start) with memory-controller as `peer`, when its
    /// groups live in our (v2) directories.
    pub fn start_with_peer(
        mut layout: Layout,
        state_dir: &Path,
        publish: Publish,
        peer: Option<Arc<dyn Peer>>,
    ) -> Result<Self, Error> {
        layout.set_shared_v2(peer.is_some());
        let journal = CpuJournal::open(state_dir)?;
        let mut inner = Inner {
            layout,
            journal,
            peer,
            seen_parents: Default::default(),
        };
        let pending = inner.journal.take_pending();
        if let Some((key, req)) = &pending {
            // Keep it on disk until it is committed: reconcile saves the
            // journal, and we may die again before the redo finishes.
            inner.journal.begin(Some(key), req)?;
        }
        let theirs = inner.peer.as_ref().and_then(|p| p.groups());
        recovery::reconcile(
            &inner.layout,
            &mut inner.journal,
            &theirs.unwrap_or_default(),
        )?;
        if let Some((key, req)) = pending {
            let result = inner.redo(&key, &req);
            if let Ok(resp) = &result {
                announce(&publish, &req, resp);
            }
        }
        Ok(CpuService {
            inner: Mutex::new(inner),
            publish,
        })
    }

    /// The table as it stands (for tests).
    pub fn table(&self) -> Table {
        self.lock().table().clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking handler (caught by libipc) leaves the lock poisoned;
        // the table itself is only changed through whole journal commits.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The request path without libipc's Ctx (tests call it directly).
    /// JoinFds: an entry and fd per hierarchy of the group (see
    /// [`crate::join`]). Read-only; `handle` sends the fds with the reply.
    pub fn join_fds(&self, id: &str) -> Result<(Vec<CgroupJoin>, Vec<OwnedFd>), Error> {
        // Under the lock, so a delete cannot remove the group between the
        // lookup and the opens.
        let inner = self.lock();
        inner.check(&CpuRequest::JoinFds { id: id.to_string() })?;
        join::group(&inner.layout, &inner.table().rel(id)?)
    }

    pub fn request(&self, key: Option<&str>, req: CpuRequest) -> Result<CpuResponse, Error> {
        // Asked before taking our lock: the peer may be asking us about the
        // same group at the same time.
        let peer = self.lock().peer.clone();
        let peer = peer_has(peer.as_deref(), &req);
        let mut inner = self.lock();
        match &req {
            CpuRequest::Stat { id } => inner.stat(id).map(CpuResponse::Stat),
            CpuRequest::List => inner.list().map(CpuResponse::List),
            CpuRequest::JoinFds { .. } => Err(join::needs_ctx("cpu-controller")),
            _ => {
                let (resp, fresh) = inner.mutate(key, &req, peer)?;
                if fresh {
                    // not again for a retry answered from the journal
                    announce(&self.publish, &req, &resp);
                }
                Ok(resp)
            }
        }
    }
}

impl Service for CpuService {
    type P = Cpu;

    /// Empty bases, and the empty parents that cgroupsPath creates made,
    /// go when the server stops (they stay while it runs, so that
    /// containers made one after another under one parent do not each pay
    /// for its mkdir and rmdir in every hierarchy).
    fn shutdown(&self) {
        let mut inner = self.lock();
        inner.prune_made();
        group::remove_empty_bases(&inner.layout);
    }

    fn handle(&self, ctx: &mut Ctx, req: CpuRequest) -> Result<CpuResponse, Error> {
        match req {
            // Answered here, never through the journal: with or without a
            // key, every call opens fresh fds.
            CpuRequest::JoinFds { id } => {
                join::refuse_fds_in(&ctx.fds_in, "cpu-controller JoinFds")?;
                let (entries, fds) = self.join_fds(&id)?;
                ctx.fds_out = fds;
                Ok(CpuResponse::JoinFds(entries))
            }
            // The two creates for a process that joins by itself: journaled
            // like Create; the fds are opened fresh after it, also when the
            // answer came from the journal (a retry).
            req @ (CpuRequest::CreateJoinable { .. } | CpuRequest::CreateJoinableAt { .. }) => {
                let id = match &req {
                    CpuRequest::CreateJoinable { id, .. }
                    | CpuRequest::CreateJoinableAt { id, .. } => id.clone(),
                    _ => unreachable!("matched above"),
                };
                join::refuse_fds_in(&ctx.fds_in, "cpu-controller CreateJoinable")?;
                self.request(ctx.key.as_deref(), req)?;
                let (entries, fds) = self.join_fds(&id)?;
                ctx.fds_out = fds;
                Ok(CpuResponse::JoinFds(entries))
            }
            req => self.request(ctx.key.as_deref(), req),
        }
    }

    /// Subscribers filter by group id.
    fn event_matches(&self, filter: &str, event: &CpuEvent) -> bool {
        match event {
            CpuEvent::FreezeChanged { id, .. } => id == filter,
        }
    }
}

/// For a delete: does memory-controller still have the group? `No` (rmdir
/// as usual) when there is no peer or the request is not a delete.
fn peer_has(peer: Option<&dyn Peer>, req: &CpuRequest) -> PeerHas {
    match (peer, req) {
        (Some(p), CpuRequest::Delete { id, .. }) => p.has(id),
        _ => PeerHas::No,
    }
}

fn announce(publish: &Publish, req: &CpuRequest, resp: &CpuResponse) {
    match (req, resp) {
        (CpuRequest::Freeze { id }, CpuResponse::Frozen) => publish(CpuEvent::FreezeChanged {
            id: id.clone(),
            frozen: true,
        }),
        (CpuRequest::Thaw { id }, CpuResponse::Thawed) => publish(CpuEvent::FreezeChanged {
            id: id.clone(),
            frozen: false,
        }),
        _ => {}
    }
}

impl Inner {
    fn table(&self) -> &Table {
        self.journal.state()
    }

    fn prune_made(&mut self) {
        if self.table().made.is_empty() {
            return;
        }
        let ops = self.layout.ops();
        let gone = cgroupfs::place::prune(&self.table().made, &|d| ops.try_rmdir(d));
        let made = &mut self.journal.state_mut().made;
        for p in gone {
            made.remove(&p);
        }
        if let Err(e) = self.journal.save() {
            tracing::warn!("cannot save the journal at stop: {e}");
        }
    }

    fn mutate(
        &mut self,
        key: Option<&str>,
        req: &CpuRequest,
        peer: PeerHas,
    ) -> Result<(CpuResponse, bool), Error> {
        if let Some(done) = key.and_then(|k| self.journal.recorded(k)) {
            return done.map(|r| (r, false));
        }
        self.check(req)?;
        if let CpuRequest::CreateJoinableAt {
            id,
            cgroups_path: Some(path),
            ..
        } = req
        {
            // Not on a redo: what an interrupted create made is found then.
            self.check_place_at(id, path)?;
            // The parents it will make are journaled with its begin: a
            // crash after their mkdir and before the commit must not leave
            // them unknown (the redo finds them made). Listed and absent,
            // or left empty by a failure, the stop prunes them.
            let rel = crate::table::at_rel(path)?;
            let leaves: Vec<_> = self.layout.mounts().iter().map(|m| m.dir(&rel)).collect();
            let parents: Vec<_> = self
                .layout
                .mounts()
                .iter()
                .zip(&leaves)
                .filter(|(_, leaf)| !self.seen_parents.contains(parent_of(leaf)))
                .flat_map(|(m, leaf)| m.places().missing_parents(leaf))
                .map(|d| d.path().to_path_buf())
                .collect();
            self.journal.state_mut().made.extend(parents);
            self.journal.begin(key, req)?;
            let done = self.perform(req, peer);
            match done {
                Ok(_) => self
                    .seen_parents
                    .extend(leaves.iter().map(|l| parent_of(l).to_path_buf())),
                Err(_) => self.seen_parents.clear(),
            }
            return self.finish(key, done);
        }
        self.journal.begin(key, req)?;
        let done = self.perform(req, peer);
        self.finish(key, done)
    }

    /// Commits a performed request under its key.
    fn finish(
        &mut self,
        key: Option<&str>,
        done: Result<(CpuResponse, Change), Error>,
    ) -> Result<(CpuResponse, bool), Error> {
        let (result, change) = match done {
            Ok((resp, change)) => (Ok(resp), change),
            Err(e) => (Err(e), Change::None),
        };
        self.journal.commit(key, &result, |t| change.apply(t))?;
        result.map(|r| (r, true))
    }

    /// Re-applies the request a crash interrupted between begin and commit,
    /// and commits it under its key so the client's retry gets the result.
    fn redo(&mut self, key: &str, req: &CpuRequest) -> Result<CpuResponse, Error> {
        tracing::info!("finishing {req:?} (key {key}) interrupted by the last exit");
        let outcome = match req {
            // The dirs it made were adopted by reconcile; give them back to
            // the create, and take them away again if it fails this time.
            CpuRequest::Create { id, .. }
            | CpuRequest::CreateJoinable { id, .. }
            | CpuRequest::CreateJoinableAt { id, .. } => {
                let adopted = self.table().groups.get(id).is_some_and(|r| r.adopted);
                let rel = self.table().rel(id).ok();
                if adopted {
                    self.journal.state_mut().groups.remove(id);
                }
                let outcome = self
                    .check(req)
                    .and_then(|()| self.perform(req, PeerHas::No));
                if let (true, Err(e), Some(rel)) = (adopted, &outcome, rel) {
                    tracing::warn!("the interrupted create of {id:?} failed again ({e}); removing its directories");
                    if let Err(re) = group::remove(&self.layout, &rel) {
                        tracing::warn!("cannot remove {}: {re}", rel.display());
                    }
                }
                outcome
            }
            // Gone already: the delete had done its work.
            CpuRequest::Delete { id, .. } if !self.table().groups.contains_key(id) => {
                Ok((CpuResponse::Deleted, Change::None))
            }
            _ => {
                let peer = peer_has(self.peer.as_deref(), req);
                self.check(req).and_then(|()| self.perform(req, peer))
            }
        };
        let (result, change) = match outcome {
            Ok((resp, change)) => (Ok(resp), change),
            Err(e) => (Err(e), Change::None),
        };
        self.journal
            .commit(Some(key), &result, |t| change.apply(t))?;
        result
    }

    /// Everything that can be refused without touching the kernel.
    fn check(&self, req: &CpuRequest) -> Result<(), Error> {
        match req {
            CpuRequest::Create { id, parent, limits } => self.check_create(id, parent, limits),
            CpuRequest::CreateJoinable { id, limits } => self.check_create(id, &None, limits),
            CpuRequest::CreateJoinableAt {
                id,
                cgroups_path,
                limits,
                devices,
                block_io,
            } => self.check_create_at(id, cgroups_path.as_deref(), limits, devices, block_io),
            CpuRequest::Set { id, limits } => {
                validate_id("group id", id)?;
                let rec = self.table().get(id)?;
                limits::validate_set(&rec.requested, limits)
            }
            CpuRequest::SetBlockIo { id, block_io } => {
                validate_id("group id", id)?;
                self.table().get(id)?;
                crate::blkio::check(&self.layout, Some(block_io))
            }
            CpuRequest::Attach { id, pid } => {
                validate_id("group id", id)?;
                self.table().get(id)?;
                check_pid(*pid)
            }
            CpuRequest::Delete { id, force } => self.check_delete(id, *force),
            CpuRequest::Freeze { id }
            | CpuRequest::Thaw { id }
            | CpuRequest::Stat { id }
            | CpuRequest::JoinFds { id } => {
                validate_id("group id", id)?;
                self.table().get(id).map(|_| ())
            }
            CpuRequest::List => Ok(()),
        }
    }

    fn check_create(&self, id: &str, parent: &Option<String>, l: &CpuLimits) -> Result<(), Error> {
        validate_id("group id", id)?;
        if let Some(p) = parent {
            validate_id("parent group id", p)?;
            self.table().get(p).map_err(|_| {
                Error::not_found(format!(
                    "parent group {p:?} (--parent) does not exist; create it first"
                ))
            })?;
            if self.table().rel(p)?.iter().count() + 1 > crate::table::MAX_DEPTH {
                return Err(Error::invalid(format!(
                    "group {id:?} would be nested more than {} deep",
                    crate::table::MAX_DEPTH
                )));
            }
        }
        limits::validate(l)?;
        match self.table().groups.get(id) {
            Some(rec) if rec.parent == *parent && rec.requested == *l => Ok(()),
            Some(rec) => Err(Error::exists(format!(
                "cpu group {id:?} already exists with other settings (parent {:?}, limits {:?}); use `set` to change it or delete it first",
                rec.parent, rec.requested
            ))),
            None => Ok(()),
        }
    }

    /// CreateJoinableAt: a create's checks, the device rules', then the
    /// cgroupsPath's: well formed, outside the base in every hierarchy,
    /// not another group's.
    fn check_create_at(
        &self,
        id: &str,
        cgroups_path: Option<&str>,
        l: &CpuLimits,
        devices: &[DeviceRule],
        block_io: &Option<BlockIo>,
    ) -> Result<(), Error> {
        validate_id("group id", id)?;
        if let Some(p) = cgroups_path {
            for m in self.layout.mounts() {
                m.places().resolve(p)?;
            }
        }
        limits::validate(l)?;
        crate::devices::check(devices)?;
        crate::blkio::check(&self.layout, block_io.as_ref())?;
        if let Some(rec) = self.table().groups.get(id) {
            let same = rec.parent.is_none()
                && rec.cgroups_path.as_deref() == cgroups_path
                && rec.requested == *l
                && rec.devices == devices
                && rec.block_io == *block_io;
            if same {
                return Ok(());
            }
            return Err(Error::exists(format!(
                "cpu group {id:?} already exists with other settings (cgroupsPath {:?}, limits {:?}, {} device rules, blockIO {:?}); delete it first",
                rec.cgroups_path,
                rec.requested,
                rec.devices.len(),
                rec.block_io
            )));
        }
        let Some(cgroups_path) = cgroups_path else {
            return Ok(());
        };
        let rel = crate::table::at_rel(cgroups_path)?;
        // Compared as directories (a relative and an absolute path can
        // name the same one), and only for the groups whose directory has
        // the same name: the others are not resolved, so that a create
        // stays cheap beside many containers.
        let Some(m) = self.layout.mounts().first() else {
            return Ok(());
        };
        let dir = m.dir(&rel);
        let name = rel.file_name();
        for (other, rec) in &self.table().groups {
            let other_name = match &rec.cgroups_path {
                Some(p) => Path::new(p).file_name(),
                None => Some(std::ffi::OsStr::new(other.as_str())),
            };
            if other_name != name {
                continue;
            }
            if self.table().rel(other).is_ok_and(|r| m.dir(&r) == dir) {
                return Err(Error::exists(format!(
                    "linux.cgroupsPath {cgroups_path:?} is already the cpu group of {other:?}"
                )));
            }
        }
        Ok(())
    }

    /// A new cgroupsPath group must lead nowhere near our base, in every
    /// hierarchy. That its directories are unused (no processes, no child
    /// groups) is checked where mkdir finds one already there
    /// (`group::create`).
    fn check_place_at(&self, id: &str, cgroups_path: &str) -> Result<(), Error> {
        if self.table().groups.contains_key(id) {
            return Ok(()); // the same create again: it is ours
        }
        for m in self.layout.mounts() {
            m.places().resolve(cgroups_path)?;
        }
        Ok(())
    }

    fn check_delete(&self, id: &str, force: bool) -> Result<(), Error> {
        validate_id("group id", id)?;
        self.table().get(id)?;
        let children = self.table().children(id);
        if !children.is_empty() {
            return Err(Error::conflict(format!(
                "cpu group {id:?} has child groups {children:?}; delete them first"
            )));
        }
        if !force {
            let pids = group::procs(&self.layout, &self.table().rel(id)?)?;
            if !pids.is_empty() {
                return Err(Error::conflict(format!(
                    "cpu group {id:?} still has processes {pids:?}; stop them or delete with --force to kill them"
                )));
            }
        }
        Ok(())
    }

    /// Does a checked request in the kernel.
    fn perform(&mut self, req: &CpuRequest, peer: PeerHas) -> Result<(CpuResponse, Change), Error> {
        match req {
            CpuRequest::Create { id, parent, limits } => self.create(id, parent, limits),
            CpuRequest::CreateJoinable { id, limits } => {
                let change = self.make(id, &None, limits, false)?.1;
                // `handle` fills in the entries and their fds.
                Ok((CpuResponse::JoinFds(vec![]), change))
            }
            CpuRequest::CreateJoinableAt {
                id,
                cgroups_path,
                limits,
                devices,
                block_io,
            } => {
                let change = self.make_at(
                    id,
                    cgroups_path.as_deref(),
                    limits,
                    devices,
                    block_io.as_ref(),
                )?;
                Ok((CpuResponse::JoinFds(vec![]), change))
            }
            CpuRequest::Set { id, limits } => {
                let rel = self.table().rel(id)?;
                group::apply(&self.layout, &rel, limits)?;
                let mut rec = self.table().get(id)?.clone();
                rec.requested = limits::merge(&rec.requested, limits);
                let g = self.describe(id, &rec)?;
                Ok((
                    CpuResponse::Updated(g),
                    Change::Put(id.clone(), rec, vec![]),
                ))
            }
            CpuRequest::SetBlockIo { id, block_io } => {
                let rel = self.table().rel(id)?;
                group::apply_block_io(&self.layout, &rel, block_io)?;
                let mut rec = self.table().get(id)?.clone();
                rec.block_io = Some(crate::blkio::merge(rec.block_io.as_ref(), block_io));
                let g = self.describe(id, &rec)?;
                Ok((
                    CpuResponse::Updated(g),
                    Change::Put(id.clone(), rec, vec![]),
                ))
            }
            CpuRequest::Attach { id, pid } => {
                group::attach(&self.layout, &self.table().rel(id)?, *pid)?;
                Ok((CpuResponse::Attached, Change::None))
            }
            CpuRequest::Delete { id, force } => {
                let rel = self.table().rel(id)?;
                match (peer.may_rmdir(), *force) {
                    (true, true) => group::remove_forced(&self.layout, &rel)?,
                    (true, false) => group::remove(&self.layout, &rel)?,
                    // memory-controller may still use the v2 directory:
                    // its last owner removes it.
                    (false, force) => {
                        if force {
                            group::kill(&self.layout, &rel)?;
                        }
                        group::release(&self.layout, &rel)?
                    }
                }
                Ok((CpuResponse::Deleted, Change::Remove(id.clone())))
            }
            CpuRequest::Freeze { id } => {
                group::set_frozen(&self.layout, &self.table().rel(id)?, true)?;
                Ok((CpuResponse::Frozen, Change::None))
            }
            CpuRequest::Thaw { id } => {
                group::set_frozen(&self.layout, &self.table().rel(id)?, false)?;
                Ok((CpuResponse::Thawed, Change::None))
            }
            CpuRequest::Stat { .. } | CpuRequest::List | CpuRequest::JoinFds { .. } => Err(
                Error::internal("stat, list and join-fds are not mutating requests"),
            ),
        }
    }

    fn create(
        &mut self,
        id: &str,
        parent: &Option<String>,
        limits: &CpuLimits,
    ) -> Result<(CpuResponse, Change), Error> {
        let (g, change) = self.make(id, parent, limits, true)?;
        let g = g.expect("described when asked");
        Ok((CpuResponse::Created(g), change))
    }

    /// Makes the group (nothing when check() found it made with the same
    /// spec already) and, with `describe`, reads it back from the kernel
    /// for the answer to `Create`.
    fn make(
        &mut self,
        id: &str,
        parent: &Option<String>,
        limits: &CpuLimits,
        describe: bool,
    ) -> Result<(Option<CpuGroup>, Change), Error> {
        if let Some(rec) = self.table().groups.get(id) {
            // check() let it through: the same spec again, nothing to do.
            let g = describe.then(|| self.describe(id, rec)).transpose()?;
            return Ok((g, Change::None));
        }
        let rel = match parent {
            Some(p) => self.table().rel(p)?.join(id),
            None => id.into(),
        };
        group::create(&self.layout, &rel, limits, &[], None, None)?;
        let rec = Record {
            parent: parent.clone(),
            requested: limits.clone(),
            adopted: false,
            cgroups_path: None,
            devices: vec![],
            block_io: None,
        };
        let g = match describe
            .then(|| self.describe_at(id, &rec, &rel))
            .transpose()
        {
            Ok(g) => g,
            Err(e) => {
                // Created but unreadable: do not keep what we cannot report.
                let _ = group::remove(&self.layout, &rel);
                return Err(e);
            }
        };
        Ok((g, Change::Put(id.to_string(), rec, vec![])))
    }

    /// A container's group (init's Prepare): at its cgroupsPath when it
    /// has one, with the parents missing on the way (remembered, so that
    /// the server's stop removes them once empty), else `<base>/<id>`;
    /// with its device rules. Nothing when check() found it made with the
    /// same spec already.
    fn make_at(
        &mut self,
        id: &str,
        cgroups_path: Option<&str>,
        limits: &CpuLimits,
        devices: &[DeviceRule],
        block_io: Option<&BlockIo>,
    ) -> Result<Change, Error> {
        if self.table().groups.contains_key(id) {
            return Ok(Change::None);
        }
        let rel = match cgroups_path {
            Some(p) => crate::table::at_rel(p)?,
            None => id.into(),
        };
        let made = group::create(&self.layout, &rel, limits, devices, block_io, cgroups_path)?;
        // Only a cgroupsPath's parents are remembered: the bases are
        // removed at the stop anyway, the leaves by the delete.
        let parents = match cgroups_path {
            Some(_) => {
                let leaves: Vec<CgroupDir> =
                    self.layout.mounts().iter().map(|m| m.dir(&rel)).collect();
                made.into_iter()
                    .filter(|d| !leaves.contains(d))
                    .map(|d| d.path().to_path_buf())
                    .collect()
            }
            None => vec![],
        };
        let rec = Record {
            parent: None,
            requested: limits.clone(),
            adopted: false,
            cgroups_path: cgroups_path.map(str::to_string),
            devices: devices.to_vec(),
            block_io: block_io.cloned(),
        };
        Ok(Change::Put(id.to_string(), rec, parents))
    }

    fn describe(&self, id: &str, rec: &Record) -> Result<CpuGroup, Error> {
        let rel = match (&rec.cgroups_path, &rec.parent) {
            (Some(path), _) => crate::table::at_rel(path)?,
            (None, Some(p)) => self.table().rel(p)?.join(id),
            (None, None) => id.into(),
        };
        self.describe_at(id, rec, &rel)
    }

    fn describe_at(&self, id: &str, rec: &Record, rel: &Path) -> Result<CpuGroup, Error> {
        Ok(CpuGroup {
            id: id.to_string(),
            parent: rec.parent.clone(),
            limits: group::read_limits(&self.layout, rel, &rec.requested)?,
            backend: self.layout.describe(),
            paths: self
                .layout
                .paths(rel)
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }

    fn stat(&self, id: &str) -> Result<CpuStat, Error> {
        self.check(&CpuRequest::Stat { id: id.to_string() })?;
        group::stat(&self.layout, &self.table().rel(id)?, id)
    }

    /// Every group, as the kernel holds it. A group whose directories were
    /// all removed behind our back is left out (the next start drops it).
    fn list(&self) -> Result<Vec<CpuGroup>, Error> {
        let mut out = vec![];
        for (id, rec) in &self.table().groups {
            let rel = self.table().rel(id)?;
            if group::missing(&self.layout, &rel).len() == self.layout.required() {
                tracing::warn!("cpu group {id:?} has no cgroup directory left; not listing it");
                continue;
            }
            out.push(self.describe_at(id, rec, &rel)?);
        }
        Ok(out)
    }
}

fn check_pid(pid: i32) -> Result<(), Error> {
    if pid <= 0 {
        return Err(Error::invalid(format!(
            "pid {pid} is not a process id (must be 1 or more)"
        )));
    }
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(Error::not_found(format!("no process with pid {pid}")));
    }
    Ok(())
}

/// The directory a group's directory is made in.
fn parent_of(dir: &CgroupDir) -> &Path {
    dir.path().parent().unwrap_or(dir.path())
}
