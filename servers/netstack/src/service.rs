//! The netstack service: requests in, rtnetlink and the journal.
//!
//! A mutating request goes: recorded under its key? answer that. Otherwise
//! every check that changes nothing (id, the fd is a network namespace and
//! not the host's, the existing record) runs first, so bad input leaves no
//! journal entry; then `begin`, the kernel work, `commit`.
//!
//! The kernel's truth here is the container's namespace, which the server
//! does not keep open (the namespace dies with the container): the journal
//! is the table, and there is nothing to reconcile it with on start except
//! the request a crash interrupted.

use crate::enter::in_netns;
use crate::netns::{self, NsId};
use crate::rtnl::Rtnl;
use crate::state::{Record, Table};
use libipc::journal::Journal;
use libipc::server::{Ctx, Service};
use protocol::net::{Net, NetRequest, NetResponse};
use protocol::{validate_id, Error};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
// A handler that panics (libipc turns that into an error reply) must not
// leave the table locked for good: poisoned locks are taken over.
use std::sync::{Mutex, MutexGuard, PoisonError};

pub type NetJournal = Journal<Table, NetRequest, NetResponse>;

pub struct NetService {
    journal: Mutex<NetJournal>,
    /// The server's own (the host's) network namespace, never touched.
    own: NsId,
}

impl NetService {
    pub fn start(state_dir: &Path) -> Result<Self, Error> {
        let mut j = NetJournal::open(state_dir)?;
        finish_pending(&mut j)?;
        j.save()?;
        Ok(NetService {
            journal: Mutex::new(j),
            own: netns::own_net()?,
        })
    }

    /// The table as it stands (for tests).
    pub fn table(&self) -> Table {
        self.lock().state().clone()
    }

    /// Handles one request, as the server loop would.
    pub fn request(
        &self,
        key: Option<&str>,
        req: NetRequest,
        fds: Vec<OwnedFd>,
    ) -> Result<NetResponse, Error> {
        if let NetRequest::Loopback { id } = &req {
            return self.loopback(key, id, fds);
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
                 container's network namespace (loopback, release, list); veth, bridge, \
                 addresses and NAT come later"
            ))),
            NetRequest::List => Ok(NetResponse::List(
                self.lock()
                    .state()
                    .loopbacks
                    .iter()
                    .map(|(id, r)| r.view(id))
                    .collect(),
            )),
            NetRequest::Release { id } => self.release(key, &id),
            NetRequest::Loopback { .. } => unreachable!("handled above"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, NetJournal> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
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
        let mut j = self.lock();
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
        let mut j = self.lock();
        if let Some(r) = key.and_then(|k| j.recorded(k)) {
            return r;
        }
        j.state().get(id)?;
        let req = NetRequest::Release { id: id.to_string() };
        j.begin(key, &req)?;
        j.commit(key, &Ok(NetResponse::Released), |t| {
            t.loopbacks.remove(id);
        })?;
        Ok(NetResponse::Released)
    }
}

/// The request a crash interrupted. A release is finished. A loopback cannot
/// be: its namespace fd died with the previous process. Its intent is
/// dropped unrecorded, so the client's retry (libipc resends the fd with the
/// same key) does it, and bringing lo up again is harmless.
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
        self.request(ctx.key.as_deref(), req, fds)
    }
}
