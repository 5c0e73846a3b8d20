//! The vfs-overlay service: requests in, mounts and the journal.
//!
//! A mutating request goes: recorded under its key? answer that. Otherwise
//! every check that changes nothing (id, bundle, root.path, the existing
//! record) runs first, so bad input leaves nothing behind, not even a
//! journal entry; then `begin`, the mount work, `commit`.

use crate::bind;
use crate::mountinfo;
use crate::reconcile::{self, Missing};
use crate::resolve;
use crate::state::{Paths, Record, Table};
use libipc::journal::Journal;
use libipc::server::{Ctx, Service};
use protocol::vfs::{Vfs, VfsRequest, VfsResponse, VfsRootfs};
use protocol::{validate_id, Error};
use std::path::{Path, PathBuf};
// A handler that panics (libipc turns that into an error reply) must not
// leave the table locked for good: poisoned locks are taken over.
use std::sync::{Mutex, PoisonError};

pub type VfsJournal = Journal<Table, VfsRequest, VfsResponse>;

pub struct VfsService {
    paths: Paths,
    journal: Mutex<VfsJournal>,
}

/// What a request changes in the table once it is done.
enum Change {
    None,
    Put(String, Record),
    Remove(String),
}

impl Change {
    fn apply(self, t: &mut Table) {
        match self {
            Change::None => {}
            Change::Put(id, r) => {
                t.rootfs.insert(id, r);
            }
            Change::Remove(id) => {
                t.rootfs.remove(&id);
            }
        }
    }
}

/// The outcome of the checks before a mutating request.
enum Pre {
    /// Already true (an identical prepare): answer without doing anything.
    Done(VfsResponse),
    Go(Plan),
}

/// The checked work.
enum Plan {
    Prepare {
        id: String,
        record: Record,
        source: PathBuf,
    },
    Release {
        id: String,
        record: Record,
    },
}

impl VfsService {
    /// Opens the journal under `state_dir` and reconciles it with the
    /// kernel's mount table; `root` is the constellation root.
    pub fn start(state_dir: &Path, root: &Path) -> Result<Self, Error> {
        let svc = VfsService {
            paths: Paths::new(root)?,
            journal: Mutex::new(Journal::open(state_dir)?),
        };
        svc.recover()?;
        Ok(svc)
    }

    /// The table as it stands (for tests).
    pub fn table(&self) -> Table {
        self.lock().state().clone()
    }

    /// Handles one request, as the server loop would.
    pub fn request(&self, key: Option<&str>, req: VfsRequest) -> Result<VfsResponse, Error> {
        match req {
            VfsRequest::Verb { name, .. } => Err(Error::unsupported(format!(
                "vfs-overlay: `{name}` is not supported yet; vfs-overlay prepares bundle rootfs \
                 (prepare, release, list); images, layers and overlay composition come later"
            ))),
            VfsRequest::List => self.list(),
            req => self.mutate(key, req),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VfsJournal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// On start: finish the request begun before a crash, then reconcile the
    /// table with mountinfo (see [`reconcile`] for what is re-made, dropped
    /// and adopted).
    fn recover(&self) -> Result<(), Error> {
        let mut j = self.lock();
        if let Some((key, req)) = j.take_pending() {
            tracing::info!("re-applying {req:?} (key {key}) begun before the last stop");
            let (result, change) = match self.precheck(j.state(), &req) {
                Err(e) => (Err(e), Change::None),
                Ok(Pre::Done(r)) => (Ok(r), Change::None),
                Ok(Pre::Go(plan)) => self.apply(plan),
            };
            j.commit(Some(&key), &result, |t| change.apply(t))?;
        }
        let mounts = mountinfo::read()?;
        for id in reconcile::missing_binds(j.state(), &self.paths, &mounts) {
            let rec = j.state().rootfs[&id].clone();
            let remade = match reconcile::decide(&rec) {
                Missing::Remake => self
                    .make_bind(&id, Path::new(&rec.source))
                    .map_err(|e| tracing::warn!("cannot re-make the rootfs bind of {id}: {e}"))
                    .is_ok(),
                Missing::Drop => false,
            };
            if remade {
                tracing::warn!("the rootfs bind of container {id} was gone; re-made it");
            } else {
                tracing::warn!(
                    "the rootfs bind of container {id} is gone and its source {:?} with it; dropped",
                    rec.source
                );
                self.remove_dirs(&id, &rec);
                j.state_mut().rootfs.remove(&id);
            }
        }
        let mounts = mountinfo::read()?;
        reconcile::adopt_unknown(j.state_mut(), &self.paths, &mounts);
        j.save()
    }

    fn mutate(&self, key: Option<&str>, req: VfsRequest) -> Result<VfsResponse, Error> {
        let mut j = self.lock();
        if let Some(r) = key.and_then(|k| j.recorded(k)) {
            return r;
        }
        let plan = match self.precheck(j.state(), &req)? {
            Pre::Done(r) => return Ok(r),
            Pre::Go(plan) => plan,
        };
        j.begin(key, &req)?;
        let (result, change) = self.apply(plan);
        j.commit(key, &result, |t| change.apply(t))?;
        result
    }

    /// Every check that changes nothing.
    fn precheck(&self, t: &Table, req: &VfsRequest) -> Result<Pre, Error> {
        match req {
            VfsRequest::Prepare {
                id,
                bundle,
                root_path,
                readonly,
            } => self.pre_prepare(t, id, bundle, root_path, *readonly),
            VfsRequest::Release { id } => {
                validate_id("container id", id)?;
                Ok(Pre::Go(Plan::Release {
                    id: id.clone(),
                    record: t.get(id)?.clone(),
                }))
            }
            VfsRequest::List | VfsRequest::Verb { .. } => {
                Err(Error::internal("not a mutating request"))
            }
        }
    }

    fn pre_prepare(
        &self,
        t: &Table,
        id: &str,
        bundle: &str,
        root_path: &str,
        readonly: bool,
    ) -> Result<Pre, Error> {
        validate_id("container id", id)?;
        let source = resolve::rootfs(bundle, root_path).map_err(|e| Error {
            message: format!("container {id}: {}", e.message),
            ..e
        })?;
        let mut record = Record {
            bundle: bundle.to_string(),
            root_path: root_path.to_string(),
            readonly,
            source: source.display().to_string(),
            rootfs: if readonly {
                self.paths.mount_point(id).display().to_string()
            } else {
                source.display().to_string()
            },
            made_parent: false,
            adopted: false,
        };
        let Some(old) = t.rootfs.get(id) else {
            return Ok(Pre::Go(Plan::Prepare {
                id: id.into(),
                record,
                source,
            }));
        };
        let target = self.paths.mount_point(id);
        if old.same_request(bundle, root_path, readonly) {
            if !readonly || self.bound(&source, &target)? {
                return Ok(Pre::Done(VfsResponse::Prepared {
                    rootfs: old.rootfs.clone(),
                }));
            }
            // The bind went away under us: make it again.
            record.made_parent = old.made_parent;
            return Ok(Pre::Go(Plan::Prepare {
                id: id.into(),
                record,
                source,
            }));
        }
        if old.adopted && readonly && self.bound(&source, &target)? {
            // A bind found without a journal entry that is this very rootfs:
            // take it over with what we now know about it.
            return Ok(Pre::Go(Plan::Prepare {
                id: id.into(),
                record,
                source,
            }));
        }
        Err(Error::exists(format!(
            "a rootfs is already prepared for container {id:?} ({}); release it first",
            describe(old)
        )))
    }

    /// Whether `target` has a mount whose root is `source`.
    fn bound(&self, source: &Path, target: &Path) -> Result<bool, Error> {
        let mounts = mountinfo::read()?;
        Ok(mountinfo::at(&mounts, target).is_some() && bind::same_dir(source, target))
    }

    /// Does the kernel work of a checked request.
    fn apply(&self, plan: Plan) -> (Result<VfsResponse, Error>, Change) {
        let r = match plan {
            Plan::Prepare { id, record, source } => self.prepare(id, record, &source),
            Plan::Release { id, record } => self.release(id, &record),
        };
        match r {
            Ok((resp, change)) => (Ok(resp), change),
            Err(e) => (Err(e), Change::None),
        }
    }

    fn prepare(
        &self,
        id: String,
        mut record: Record,
        source: &Path,
    ) -> Result<(VfsResponse, Change), Error> {
        if record.readonly {
            let made_parent = self.make_bind(&id, source)?;
            record.made_parent |= made_parent;
        }
        let resp = VfsResponse::Prepared {
            rootfs: record.rootfs.clone(),
        };
        Ok((resp, Change::Put(id, record)))
    }

    /// Creates the mount point and the read-only bind of `source` there, or
    /// finishes one a crash left half done. Returns whether it created
    /// `<root>/containers/<id>`. On failure it removes what it created.
    fn make_bind(&self, id: &str, source: &Path) -> Result<bool, Error> {
        let parent = self.paths.container_dir(id);
        let target = self.paths.mount_point(id);
        std::fs::create_dir_all(&self.paths.containers)
            .map_err(|e| Error::io(format!("create {}", self.paths.containers.display()), &e))?;
        let made_parent = make_dir(&parent)?;
        let made_target = match make_dir(&target) {
            Ok(m) => m,
            Err(e) => {
                if made_parent {
                    remove_dir(&parent);
                }
                return Err(e);
            }
        };
        let r = self.bind_at(source, &target).and_then(|_| verify(&target));
        if let Err(e) = r {
            if made_target {
                // bind_at leaves nothing mounted on failure; verify may have
                // found a bind that is not read-only: undo it too.
                if let Err(u) = bind::unmount_all(&target) {
                    tracing::warn!("{u}");
                }
                remove_dir(&target);
            }
            if made_parent {
                remove_dir(&parent);
            }
            return Err(e);
        }
        Ok(made_parent)
    }

    fn bind_at(&self, source: &Path, target: &Path) -> Result<(), Error> {
        let mounts = mountinfo::read()?;
        match mountinfo::at(&mounts, target) {
            None => bind::mount_readonly(source, target),
            // Left by a crash between the mount and the journal commit, or
            // adopted: it is this rootfs, so finish it (private, read-only).
            Some(_) if bind::same_dir(source, target) => {
                bind::make_private_readonly(source, target)
            }
            Some(m) => Err(Error::conflict(format!(
                "{} already has a mount of {} ({} {}) that is not this rootfs; \
                 it is left alone: unmount it first",
                target.display(),
                m.root,
                m.fstype,
                m.source
            ))),
        }
    }

    fn release(&self, id: String, record: &Record) -> Result<(VfsResponse, Change), Error> {
        if record.readonly || record.adopted {
            let target = self.paths.mount_point(&id);
            bind::unmount_all(&target)?;
            match std::fs::remove_dir(&target) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("remove {}", target.display()), &e)),
            }
        }
        if record.made_parent {
            remove_dir(&self.paths.container_dir(&id));
        }
        Ok((VfsResponse::Released, Change::Remove(id)))
    }

    /// For a dropped record: its (empty) mount point and the parent it made.
    fn remove_dirs(&self, id: &str, rec: &Record) {
        if rec.readonly || rec.adopted {
            remove_dir(&self.paths.mount_point(id));
        }
        if rec.made_parent {
            remove_dir(&self.paths.container_dir(id));
        }
    }

    fn list(&self) -> Result<VfsResponse, Error> {
        let j = self.lock();
        let mounts = mountinfo::read()?;
        let out: Vec<VfsRootfs> = j
            .state()
            .rootfs
            .iter()
            .map(|(id, r)| {
                let mounted = (r.readonly || r.adopted)
                    && mountinfo::at(&mounts, &self.paths.mount_point(id)).is_some();
                r.view(id, mounted)
            })
            .collect();
        Ok(VfsResponse::List(out))
    }
}

impl Service for VfsService {
    type P = Vfs;

    fn handle(&self, ctx: &mut Ctx, req: VfsRequest) -> Result<VfsResponse, Error> {
        if !ctx.fds_in.is_empty() {
            return Err(Error::invalid(format!(
                "vfs-overlay takes no file descriptors; {} arrived",
                ctx.fds_in.len()
            )));
        }
        self.request(ctx.key.as_deref(), req)
    }
}

/// After the bind: the kernel must show it read-only and private.
fn verify(target: &Path) -> Result<(), Error> {
    let mounts = mountinfo::read()?;
    match mountinfo::at(&mounts, target) {
        Some(m) if m.readonly() && m.private() => Ok(()),
        Some(m) => Err(Error::internal(format!(
            "{} was mounted but mountinfo shows options {:?} and propagation {:?}, \
             not read-only and private",
            target.display(),
            m.options,
            m.optional
        ))),
        None => Err(Error::internal(format!(
            "{} was mounted but mountinfo does not show it",
            target.display()
        ))),
    }
}

/// mkdir that says whether it created the directory; an existing real
/// directory is fine, anything else (a file, a symlink) is refused.
fn make_dir(p: &Path) -> Result<bool, Error> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => Ok(false),
                _ => Err(Error::conflict(format!(
                    "{} exists and is not a directory; it is left alone",
                    p.display()
                ))),
            }
        }
        Err(e) => Err(Error::io(format!("create {}", p.display()), &e)),
    }
}

/// rmdir, quietly: gone already is fine, and a directory that is not empty
/// holds something that is not ours (init's state.json) and stays.
fn remove_dir(p: &Path) {
    match std::fs::remove_dir(p) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::DirectoryNotEmpty
            ) => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", p.display()),
    }
}

fn describe(r: &Record) -> String {
    if r.adopted {
        format!("an adopted mount at {}", r.rootfs)
    } else {
        format!(
            "bundle {}, root.path {:?}, readonly {}",
            r.bundle, r.root_path, r.readonly
        )
    }
}
