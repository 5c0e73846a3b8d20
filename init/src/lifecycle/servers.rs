//! init's calls to the resource servers, one function per request, each
//! with an idempotency key so that a retry across a server restart is
//! applied once. A group or rootfs is always named by the container id.
//!
//! Connections are kept: each server has a small pool of clients (one per
//! request in flight), so a create does not pay a connect and a hello per
//! call. A pooled connection to a server that has since restarted fails on
//! its next use and the client reconnects (libipc's retry of "unavailable").
//!
//! The requests of a create (groups, rootfs, network namespace) and of a
//! delete go out through `send_*`: all sent back to back from the caller's
//! thread, then the replies read (`Sent::wait`). A thread per server, as
//! before, cost init a fifth of its CPU time per container in hand-offs.

use libipc::client::new_key;
use libipc::{Client, ClientOptions};
use protocol::cgroup::CgroupJoin;
use protocol::cpu::{BlockIo, Cpu, CpuLimits, CpuRequest, CpuResponse, CpuStat, DeviceRule};
use protocol::memory::{
    HugepageLimit, Memory, MemoryLimits, MemoryRequest, MemoryResponse, MemoryStat,
};
use protocol::net::{Net, NetDevice, NetRequest, NetResponse};
use protocol::seccomp::{NotifyPolicy, Program, Seccomp, SeccompRequest, SeccompResponse};
use protocol::vfs::{Vfs, VfsRequest, VfsResponse};
use protocol::{Error, ErrorKind, Protocol};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

pub struct Servers {
    memory: Pool<Memory>,
    cpu: Pool<Cpu>,
    vfs: Pool<Vfs>,
    net: Pool<Net>,
    seccomp: Pool<Seccomp>,
}

/// init never blocks forever on a server: every call has a deadline, long
/// enough to ride out a restart (the client retries meanwhile).
const DEADLINE: Duration = Duration::from_secs(15);

/// Idle connections to one server.
struct Pool<P: Protocol> {
    root: PathBuf,
    client_name: &'static str,
    idle: Mutex<Vec<Client<P>>>,
}

impl<P: Protocol> Pool<P> {
    fn new(root: &Path, client_name: &'static str) -> Self {
        Pool {
            root: root.to_path_buf(),
            client_name,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, or a new client (it connects on first use).
    fn take(&self) -> Client<P> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| {
            Client::new(
                &self.root,
                ClientOptions {
                    deadline: DEADLINE,
                    client_name: self.client_name.into(),
                    ..ClientOptions::default()
                },
            )
        })
    }

    fn put_back(&self, client: Client<P>) {
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
    }

    fn call_with_fds(
        &self,
        req: P::Request,
        key: Option<String>,
        fds: Vec<OwnedFd>,
    ) -> Result<(P::Response, Vec<OwnedFd>), Error> {
        let mut client = self.take();
        let result = client.call_with_fds(req, key, fds);
        self.put_back(client);
        result
    }

    /// Sends `req` on a pooled connection and returns at once; `answer`
    /// makes the caller's value of the reply when `Sent::wait` reads it.
    fn send<T>(
        &self,
        req: P::Request,
        key: Option<String>,
        answer: FromReply<P, T>,
    ) -> Sent<'_, P, T>
    where
        P::Request: Clone,
    {
        let mut client = self.take();
        let sent = client.send_only(req.clone(), key.clone(), vec![]).ok();
        Sent {
            pool: self,
            client,
            sent,
            req,
            key,
            answer,
        }
    }

    fn call(&self, req: P::Request, key: Option<String>) -> Result<P::Response, Error> {
        Ok(self.call_with_fds(req, key, vec![])?.0)
    }
}

/// Makes the caller's value of a server's reply (or of its failure).
type FromReply<P, T> = fn(libipc::client::Answer<P>) -> Result<T, Error>;

/// A request sent to a server whose reply is not read yet: init sends the
/// requests of one step to every server it needs from one thread, back to
/// back, then reads the replies (no thread per server, no hand-off to
/// one). Dropped unread, its connection is closed, never reused.
#[must_use = "the reply is read by Sent::wait"]
pub struct Sent<'a, P: Protocol, T> {
    pool: &'a Pool<P>,
    client: Client<P>,
    /// None when sending failed: `wait` then sends it again the usual way.
    sent: Option<libipc::client::Sent>,
    req: P::Request,
    key: Option<String>,
    answer: FromReply<P, T>,
}

impl<P: Protocol, T> Sent<'_, P, T>
where
    P::Request: Clone,
{
    /// The reply. Should the server have gone away meanwhile (a restart),
    /// the request goes again, with its key, through the client's retry.
    pub fn wait(self) -> Result<T, Error> {
        let Sent {
            pool,
            mut client,
            sent,
            req,
            key,
            answer,
        } = self;
        let reply = match client.finish_or_resend(sent) {
            Some(reply) => reply,
            None => client.call_with_fds(req, key, vec![]),
        };
        pool.put_back(client);
        answer(reply)
    }
}

/// "already gone" is success for the undo steps.
fn ok_if_missing<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A JoinFds answer: one fd per entry.
fn joins(
    server: &str,
    entries: Vec<CgroupJoin>,
    fds: Vec<OwnedFd>,
) -> Result<Vec<(CgroupJoin, OwnedFd)>, Error> {
    if entries.len() != fds.len() {
        return Err(Error::internal(format!(
            "{server} answered JoinFds with {} entries but {} fds",
            entries.len(),
            fds.len()
        )));
    }
    Ok(entries.into_iter().zip(fds).collect())
}

impl Servers {
    pub fn new(root: &Path) -> Servers {
        Servers::named(root, "init")
    }

    /// As `new`, for another caller (the name servers log for it).
    pub fn named(root: &Path, client_name: &'static str) -> Servers {
        Servers {
            memory: Pool::new(root, client_name),
            cpu: Pool::new(root, client_name),
            vfs: Pool::new(root, client_name),
            net: Pool::new(root, client_name),
            seccomp: Pool::new(root, client_name),
        }
    }

    /// Creates `id`'s memory group, at `cgroups_path` when the config
    /// names one, and answers with the fds a process joins it with (one
    /// round trip, CreateJoinableAt). A caller that attaches the process
    /// by pid instead drops them.
    pub fn send_memory_create(
        &self,
        id: &str,
        (limits, hugepages): (MemoryLimits, Vec<HugepageLimit>),
        cgroups_path: Option<&str>,
    ) -> Sent<'_, Memory, Vec<(CgroupJoin, OwnedFd)>> {
        let key = Some(new_key("create", id));
        let req = MemoryRequest::CreateJoinableAt {
            id: id.into(),
            cgroups_path: cgroups_path.map(str::to_string),
            limits,
            hugepages,
        };
        self.memory.send(req, key, |r| match r? {
            (MemoryResponse::JoinFds(entries), fds) => joins("memory-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "memory-controller answered its create with {other:?}"
            ))),
        })
    }

    /// As `send_memory_create`, for `id`'s cpu groups, with its device
    /// rules (the devices hierarchy is cpu-controller's): always the one
    /// request that carries both, CreateJoinableAt.
    pub fn send_cpu_create(
        &self,
        id: &str,
        limits: CpuLimits,
        cgroups_path: Option<&str>,
        (devices, block_io): (Vec<DeviceRule>, Option<BlockIo>),
    ) -> Sent<'_, Cpu, Vec<(CgroupJoin, OwnedFd)>> {
        let key = Some(new_key("create", id));
        let req = CpuRequest::CreateJoinableAt {
            id: id.into(),
            cgroups_path: cgroups_path.map(str::to_string),
            limits,
            devices,
            block_io,
        };
        self.cpu.send(req, key, |r| match r? {
            (CpuResponse::JoinFds(entries), fds) => joins("cpu-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "cpu-controller answered its create with {other:?}"
            ))),
        })
    }

    /// A fresh network namespace with loopback up, from netstack's pool.
    pub fn send_netns_claim(&self, id: &str) -> Sent<'_, Net, OwnedFd> {
        let req = NetRequest::Claim { id: id.into() };
        self.net.send(req, None, |r| match r? {
            (NetResponse::Claimed(_), mut fds) if fds.len() == 1 => Ok(fds.pop().expect("one")),
            (other, fds) => Err(Error::internal(format!(
                "netstack answered Claim with {other:?} and {} fds (want 1)",
                fds.len()
            ))),
        })
    }

    /// linux.netDevices into the namespace netstack holds for `id`.
    pub fn send_net_move_devices(
        &self,
        id: &str,
        devices: Vec<NetDevice>,
    ) -> Sent<'_, Net, Vec<String>> {
        let req = NetRequest::MoveDevices {
            id: id.into(),
            devices,
        };
        self.net.send(req, None, |r| match r?.0 {
            NetResponse::Moved(names) => Ok(names),
            other => Err(Error::internal(format!(
                "netstack answered MoveDevices with {other:?}"
            ))),
        })
    }

    /// vfs-overlay checks the rootfs; the answer is the path to use.
    pub fn send_vfs_prepare(
        &self,
        id: &str,
        bundle: &str,
        root_path: &str,
        readonly: bool,
    ) -> Sent<'_, Vfs, String> {
        let req = VfsRequest::Prepare {
            id: id.into(),
            bundle: bundle.into(),
            root_path: root_path.into(),
            readonly,
        };
        self.vfs
            .send(req, Some(new_key("prepare", id)), |r| match r?.0 {
                VfsResponse::Prepared { rootfs } => Ok(rootfs),
                other => Err(Error::internal(format!(
                    "vfs-overlay answered prepare with {other:?}"
                ))),
            })
    }

    /// Removes `id`'s memory group, killing what is left in it ("not
    /// found" counts as done, as for every release below).
    pub fn send_memory_delete(&self, id: &str) -> Sent<'_, Memory, ()> {
        let req = MemoryRequest::Delete {
            id: id.into(),
            force: true,
        };
        self.memory
            .send(req, Some(new_key("delete", id)), ok_if_missing)
    }

    /// Removes `id`'s cpu groups.
    pub fn send_cpu_delete(&self, id: &str) -> Sent<'_, Cpu, ()> {
        let req = CpuRequest::Delete {
            id: id.into(),
            force: true,
        };
        self.cpu
            .send(req, Some(new_key("delete", id)), ok_if_missing)
    }

    /// Gives back what vfs-overlay made for `id`'s rootfs.
    pub fn send_vfs_release(&self, id: &str) -> Sent<'_, Vfs, ()> {
        let req = VfsRequest::Release { id: id.into() };
        self.vfs
            .send(req, Some(new_key("release", id)), ok_if_missing)
    }

    /// Gives back `id`'s network namespace.
    pub fn send_loopback_release(&self, id: &str) -> Sent<'_, Net, ()> {
        let req = NetRequest::Release { id: id.into() };
        self.net
            .send(req, Some(new_key("release", id)), ok_if_missing)
    }

    /// The fds a new process uses to join `id`'s memory group by itself.
    pub fn memory_join_fds(&self, id: &str) -> Result<Vec<(CgroupJoin, OwnedFd)>, Error> {
        match self
            .memory
            .call_with_fds(MemoryRequest::JoinFds { id: id.into() }, None, vec![])?
        {
            (MemoryResponse::JoinFds(entries), fds) => joins("memory-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "memory-controller answered JoinFds with {other:?}"
            ))),
        }
    }

    /// The fds a new process uses to join `id`'s cpu groups by itself.
    pub fn cpu_join_fds(&self, id: &str) -> Result<Vec<(CgroupJoin, OwnedFd)>, Error> {
        match self
            .cpu
            .call_with_fds(CpuRequest::JoinFds { id: id.into() }, None, vec![])?
        {
            (CpuResponse::JoinFds(entries), fds) => joins("cpu-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "cpu-controller answered JoinFds with {other:?}"
            ))),
        }
    }

    /// Moves `pid` into `id`'s memory group.
    pub fn send_memory_attach(&self, id: &str, pid: i32) -> Sent<'_, Memory, ()> {
        let req = MemoryRequest::Attach { id: id.into(), pid };
        self.memory
            .send(req, Some(new_key("attach", id)), |r| r.map(|_| ()))
    }

    pub fn memory_set(&self, id: &str, limits: MemoryLimits) -> Result<(), Error> {
        let req = MemoryRequest::Set {
            id: id.into(),
            limits,
            check_before_update: false,
        };
        self.memory.call(req, Some(new_key("set", id))).map(|_| ())
    }

    pub fn memory_stat(&self, id: &str) -> Result<MemoryStat, Error> {
        match self
            .memory
            .call(MemoryRequest::Stat { id: id.into() }, None)?
        {
            MemoryResponse::Stat(s) => Ok(s),
            other => Err(Error::internal(format!(
                "memory-controller answered stat with {other:?}"
            ))),
        }
    }

    /// Moves `pid` into `id`'s cpu groups.
    pub fn send_cpu_attach(&self, id: &str, pid: i32) -> Sent<'_, Cpu, ()> {
        let req = CpuRequest::Attach { id: id.into(), pid };
        self.cpu
            .send(req, Some(new_key("attach", id)), |r| r.map(|_| ()))
    }

    /// A keyed cpu-controller request about `id` that answers Done.
    fn cpu_keyed(&self, kind: &str, id: &str, req: CpuRequest) -> Result<(), Error> {
        self.cpu.call(req, Some(new_key(kind, id))).map(|_| ())
    }

    pub fn cpu_set(&self, id: &str, limits: CpuLimits) -> Result<(), Error> {
        let req = CpuRequest::Set {
            id: id.into(),
            limits,
        };
        self.cpu_keyed("set", id, req)
    }

    pub fn cpu_set_block_io(&self, id: &str, block_io: BlockIo) -> Result<(), Error> {
        let req = CpuRequest::SetBlockIo {
            id: id.into(),
            block_io,
        };
        self.cpu_keyed("blkio", id, req)
    }

    pub fn cpu_freeze(&self, id: &str) -> Result<(), Error> {
        self.cpu_keyed("freeze", id, CpuRequest::Freeze { id: id.into() })
    }

    pub fn cpu_thaw(&self, id: &str) -> Result<(), Error> {
        self.cpu_keyed("thaw", id, CpuRequest::Thaw { id: id.into() })
    }

    pub fn cpu_stat(&self, id: &str) -> Result<CpuStat, Error> {
        match self.cpu.call(CpuRequest::Stat { id: id.into() }, None)? {
            CpuResponse::Stat(s) => Ok(s),
            other => Err(Error::internal(format!(
                "cpu-controller answered stat with {other:?}"
            ))),
        }
    }

    /// Every process of the container: the pids in its cpu group (all
    /// hierarchies, children included).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>, Error> {
        Ok(self.cpu_stat(id)?.pids)
    }

    pub fn loopback(&self, id: &str, netns: OwnedFd) -> Result<(), Error> {
        let req = NetRequest::Loopback { id: id.into() };
        match self
            .net
            .call_with_fds(req, Some(new_key("loopback", id)), vec![netns])
        {
            // A retried AttachPid: loopback is already up for this id.
            Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub fn seccomp_compile(&self, profile_json: &str) -> Result<Program, Error> {
        let req = SeccompRequest::Compile {
            profile_json: profile_json.into(),
            arch: None,
        };
        match self.seccomp.call(req, None)? {
            SeccompResponse::Compiled(p) => Ok(p),
            other => Err(Error::internal(format!(
                "seccomp-monitor answered compile with {other:?}"
            ))),
        }
    }

    /// seccomp-monitor becomes the notify agent of `id` (idempotent there).
    pub fn seccomp_watch(
        &self,
        id: &str,
        pid: i32,
        policy: NotifyPolicy,
        listener: OwnedFd,
    ) -> Result<(), Error> {
        let req = SeccompRequest::Watch {
            id: id.into(),
            pid,
            policy,
        };
        self.seccomp
            .call_with_fds(req, Some(new_key("watch", id)), vec![listener])
            .map(|_| ())
    }

    pub fn seccomp_forget(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(self.seccomp.call(
            SeccompRequest::Forget { id: id.into() },
            Some(new_key("forget", id)),
        ))
    }
}
