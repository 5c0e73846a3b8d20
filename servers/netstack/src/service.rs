//! The netstack service: requests in, rtnetlink and the journal.
//!
//! A mutating request goes: recorded under its key? answer that. Otherwise
//! every check that changes nothing (id, the fd is a network namespace and
//! not the host's, the existing record) runs first, so bad input leaves no
//! journal entry; then `begin`, the kernel work, `commit`.
//!
//! Two kinds of record share the table. `Loopback`: the container brought
//! its own namespace (passed as an fd); the server does not keep it open (it
//! dies with the container). `Claim`: netstack made the namespace (from its
//! warm [`Pool`]) and keeps its fd open, in memory only, until `Release`, so
//! that a retried claim gets the very same namespace back. After a restart
//! those fds are gone (the container's processes keep their namespace
//! alive): the journal still lists the record and releases it normally, and
//! a new claim for that id gets a fresh namespace that replaces the record.
//! There is nothing else to reconcile on start except the request a crash
//! interrupted.

use crate::enter::in_netns;
use crate::netns::{self, NsId};
use crate::pool::{self, Pool};
use crate::rtnl::Rtnl;
use crate::state::{Record, Table};
use libipc::journal::Journal;
use libipc::server::{Ctx, Service};
use protocol::net::{Net, NetDevice, NetRequest, NetResponse};
use protocol::{validate_id, Error};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
// A handler that panics (libipc turns that into an error reply) must not
// leave the table locked for good: poisoned locks are taken over.
use std::sync::{Mutex, MutexGuard, PoisonError};

pub type NetJournal = Journal<Table, NetRequest, NetResponse>;

/// An answer and the file descriptors that go with it.
pub type WithFds = (NetResponse, Vec<OwnedFd>);

pub struct NetService {
    tables: Mutex<Tables>,
    /// The server's own (the host's) network namespace, never touched.
    own: NsId,
    pool: Pool,
}

struct Tables {
    journal: NetJournal,
    /// The namespaces handed out by `Claim`, by container id, until `Release`.
    held: BTreeMap<String, OwnedFd>,
}

impl NetService {
    /// Opens the journal and starts the namespace pool, sized by
    /// ASTERISM_NETNS_POOL (default [`pool::DEFAULT_SIZE`]; 0 = no pool).
    pub fn start(state_dir: &Path) -> Result<Self, Error> {
        Self::start_with_pool(state_dir, pool::size_from_env()?)
    }

    pub fn start_with_pool(state_dir: &Path, pool_size: usize) -> Result<Self, Error> {
        let mut j = NetJournal::open(state_dir)?;
        finish_pending(&mut j)?;
        j.save()?;
        Ok(NetService {
            tables: Mutex::new(Tables {
                journal: j,
                held: BTreeMap::new(),
            }),
            own: netns::own_net()?,
            pool: Pool::start(pool_size)?,
        })
    }

    /// The table as it stands (for tests).
    pub fn table(&self) -> Table {
        self.lock().journal.state().clone()
    }

    /// The ids whose claimed namespace the server holds open (for tests).
    pub fn held(&self) -> Vec<String> {
        self.lock().held.keys().cloned().collect()
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Handles one request, as the server loop would, but without the file
    /// descriptors of the answer (they are closed): see [`Self::call`].
    pub fn request(
        &self,
        key: Option<&str>,
        req: NetRequest,
        fds: Vec<OwnedFd>,
    ) -> Result<NetResponse, Error> {
        self.call(key, req, fds).map(|(r, _)| r)
    }

    /// Handles one request: its answer and the fds to send with it.
    pub fn call(
        &self,
        key: Option<&str>,
        req: NetRequest,
        fds: Vec<OwnedFd>,
    ) -> Result<WithFds, Error> {
        match req {
            NetRequest::Loopback { id } => return self.loopback(key, &id, fds).map(no_fds),
            NetRequest::Claim { id } => return self.claim(&id, fds),
            _ => {}
        }
        if !fds.is_empty() {
            return Err(Error::invalid(format!(
                "only loopback takes a file descriptor; {} arrived with {req:?}",
                fds.len()
            )));
        }
        match req {
            NetRequest::Verb { name, .. } => Err(Error::unsupported(format!(
                "netstack: `{name}` is not supported yet; netstack brings loopback up in a \
                 container's network namespace (loopback, claim, release, list); veth, bridge, \
                 addresses and NAT come later"
            ))),
            NetRequest::List => Ok(NetResponse::List(
                self.lock()
                    .journal
                    .state()
                    .loopbacks
                    .iter()
                    .map(|(id, r)| r.view(id))
                    .collect(),
            )),
            NetRequest::Release { id } => self.release(key, &id),
            NetRequest::MoveDevices { id, devices } => self.move_devices(&id, &devices),
            NetRequest::Loopback { .. } | NetRequest::Claim { .. } => unreachable!("handled above"),
        }
        .map(no_fds)
    }

    /// `linux.netDevices` into the namespace claimed for `id`. Not
    /// journaled: where a device is, is the kernel's to say (a retry finds
    /// it moved).
    fn move_devices(&self, id: &str, devices: &[NetDevice]) -> Result<NetResponse, Error> {
        validate_id("container id", id)?;
        let ns = {
            let t = self.lock();
            let held = t.held.get(id).ok_or_else(|| {
                Error::not_found(format!(
                    "container {id} has no network namespace from netstack (Claim) to move linux.netDevices into"
                ))
            })?;
            held.try_clone()
                .map_err(|e| Error::io("dup the container's network namespace", &e))?
        };
        crate::devices::move_all(&ns, devices).map(NetResponse::Moved)
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A namespace for container `id`, made by netstack.
    ///
    /// Not answered from the journal's keyed results: a recorded answer has
    /// no fd. The held fd is what makes it idempotent instead (a retry after
    /// a lost answer gets a dup of it), so claims are committed without key.
    /// An id that has a `Loopback` record (the container's own namespace) is
    /// refused, not overwritten: release it first.
    fn claim(&self, id: &str, fds: Vec<OwnedFd>) -> Result<WithFds, Error> {
        validate_id("container id", id)?;
        if !fds.is_empty() {
            return Err(Error::invalid(format!(
                "claim for container {id} takes no file descriptor (netstack makes the network \
                 namespace and sends its fd back); {} arrived",
                fds.len()
            )));
        }
        if let Some(answer) = already_claimed(&self.lock(), id)? {
            return Ok(answer);
        }
        // Outside the lock: an empty pool means making a namespace now,
        // which must not hold up other requests.
        let fresh = self.pool.take().map_err(|e| in_container(id, e))?;
        let mut t = self.lock();
        // A concurrent claim for the same id may have won meanwhile; then
        // ours is dropped (closing its only fd ends it).
        if let Some(answer) = already_claimed(&t, id)? {
            return Ok(answer);
        }
        let record = Record {
            netns_ino: fresh.ns.ino,
            ifindex: fresh.lo.index,
            flags: fresh.lo.flags,
            at_unix_ms: libipc::now_unix_ms(),
            claimed: true,
        };
        let answer = dup(&fresh.fd)?;
        let view = record.view(id);
        let previous = t.journal.state().loopbacks.get(id).cloned();
        let result = Ok(NetResponse::Claimed(view.clone()));
        if let Err(e) = t.journal.commit(None, &result, |tb| {
            tb.loopbacks.insert(id.to_string(), record);
        }) {
            // Not persisted: leave the table as it was.
            let loopbacks = &mut t.journal.state_mut().loopbacks;
            match previous {
                Some(p) => loopbacks.insert(id.to_string(), p),
                None => loopbacks.remove(id),
            };
            return Err(in_container(id, e));
        }
        t.held.insert(id.to_string(), fresh.fd);
        tracing::debug!("claimed {} for container {id}", view.netns);
        Ok((NetResponse::Claimed(view), vec![answer]))
    }

    fn loopback(
        &self,
        key: Option<&str>,
        id: &str,
        mut fds: Vec<OwnedFd>,
    ) -> Result<NetResponse, Error> {
        validate_id("container id", id)?;
        if fds.len() != 1 {
            return Err(Error::invalid(format!(
                "loopback for container {id} needs exactly one file descriptor, the container's \
                 network namespace (/proc/PID/ns/net); {} arrived",
                fds.len()
            )));
        }
        let fd = fds.pop().expect("one fd");
        let mut t = self.lock();
        let j = &mut t.journal;
        if let Some(r) = key.and_then(|k| j.recorded(k)) {
            return r;
        }
        let ns = netns::check_net(fd.as_fd()).map_err(|e| in_container(id, e))?;
        if ns == self.own {
            return Err(Error::invalid(format!(
                "container {id}: {} is netstack's own network namespace (the host's); \
                 loopback is only brought up in a container's own namespace",
                ns.name()
            )));
        }
        if let Some(old) = j.state().loopbacks.get(id) {
            if old.netns_ino != ns.ino {
                return Err(Error::exists(format!(
                    "container {id} already has its loopback up in net:[{}], not {}; release it first",
                    old.netns_ino,
                    ns.name()
                )));
            }
        }
        // Same namespace as a claimed record (init passing back the one it
        // claimed): it stays a claimed record.
        let claimed = j.state().loopbacks.get(id).is_some_and(|o| o.claimed);
        let req = NetRequest::Loopback { id: id.to_string() };
        j.begin(key, &req)?;
        // Bringing an interface up twice is harmless, so an identical
        // request simply does it again and reads the link back.
        let result = in_netns(fd, || Rtnl::open()?.set_up("lo"))
            .and_then(|lo| {
                if lo.up() {
                    Ok(lo)
                } else {
                    Err(Error::internal(format!(
                        "lo was set up but reads back with flags {:#x} (no IFF_UP)",
                        lo.flags
                    )))
                }
            })
            .map_err(|e| in_container(id, e));
        let record = result.as_ref().ok().map(|lo| Record {
            netns_ino: ns.ino,
            ifindex: lo.index,
            flags: lo.flags,
            at_unix_ms: libipc::now_unix_ms(),
            claimed,
        });
        let result = match &record {
            Some(r) => Ok(NetResponse::LoopbackUp(r.view(id))),
            None => Err(result.unwrap_err()),
        };
        j.commit(key, &result, |t| {
            if let Some(r) = record {
                t.loopbacks.insert(id.to_string(), r);
            }
        })?;
        result
    }

    fn release(&self, key: Option<&str>, id: &str) -> Result<NetResponse, Error> {
        validate_id("container id", id)?;
        let mut t = self.lock();
        let j = &mut t.journal;
        if let Some(r) = key.and_then(|k| j.recorded(k)) {
            return r;
        }
        j.state().get(id)?;
        let req = NetRequest::Release { id: id.to_string() };
        j.begin(key, &req)?;
        j.commit(key, &Ok(NetResponse::Released), |t| {
            t.loopbacks.remove(id);
        })?;
        // A claimed namespace ends here unless the container still uses it.
        t.held.remove(id);
        Ok(NetResponse::Released)
    }
}

/// The request a crash interrupted. A release is finished. A loopback cannot
/// be: its namespace fd died with the previous process. Its intent is
/// dropped unrecorded, so the client's retry (libipc resends the fd with the
/// same key) does it, and bringing lo up again is harmless. (A claim is
/// never begun: a retry makes a fresh namespace, see `claim`.)
fn finish_pending(j: &mut NetJournal) -> Result<(), Error> {
    match j.take_pending() {
        Some((key, NetRequest::Release { id })) => {
            tracing::info!("finishing the release of {id} (key {key}) begun before the last stop");
            j.commit(Some(&key), &Ok(NetResponse::Released), |t| {
                t.loopbacks.remove(&id);
            })
        }
        Some((key, req)) => {
            tracing::warn!(
                "{req:?} (key {key}) was interrupted; its namespace went with the previous \
                 process, so the client's retry will do it"
            );
            j.save()
        }
        None => Ok(()),
    }
}

/// The answer to a claim for `id` if netstack already holds its namespace;
/// refuses an id whose record is the container's own namespace.
fn already_claimed(t: &Tables, id: &str) -> Result<Option<WithFds>, Error> {
    let record = t.journal.state().loopbacks.get(id);
    match (t.held.get(id), record) {
        (Some(fd), Some(r)) => Ok(Some((NetResponse::Claimed(r.view(id)), vec![dup(fd)?]))),
        (Some(_), None) => Err(Error::internal(format!(
            "netstack holds a namespace for container {id} but has no record of it"
        ))),
        (None, Some(r)) if !r.claimed => Err(Error::exists(format!(
            "container {id} already has its loopback up in its own network namespace \
             net:[{}] (loopback); release it before claiming one",
            r.netns_ino
        ))),
        // Nothing, or a claim from before a restart whose fd is gone.
        (None, _) => Ok(None),
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, Error> {
    fd.try_clone()
        .map_err(|e| Error::io("duplicate the network namespace's fd", &e))
}

fn no_fds(r: NetResponse) -> WithFds {
    (r, vec![])
}

fn in_container(id: &str, e: Error) -> Error {
    Error {
        message: format!("container {id}: {}", e.message),
        ..e
    }
}

impl Service for NetService {
    type P = Net;

    fn handle(&self, ctx: &mut Ctx, req: NetRequest) -> Result<NetResponse, Error> {
        let fds = std::mem::take(&mut ctx.fds_in);
        let (response, fds_out) = self.call(ctx.key.as_deref(), req, fds)?;
        ctx.fds_out = fds_out;
        Ok(response)
    }
}
