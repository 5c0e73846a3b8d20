//! init's calls to the resource servers, one function per request, each
//! with an idempotency key so that a retry across a server restart is
//! applied once. A group or rootfs is always named by the container id.
//!
//! Connections are kept: each server has a small pool of clients (one per
//! request in flight), so a create does not pay a connect and a hello per
//! call. A pooled connection to a server that has since restarted fails on
//! its next use and the client reconnects (libipc's retry of "unavailable").

use libipc::client::new_key;
use libipc::{Client, ClientOptions};
use protocol::cgroup::CgroupJoin;
use protocol::cpu::{Cpu, CpuLimits, CpuRequest, CpuResponse, CpuStat};
use protocol::memory::{Memory, MemoryLimits, MemoryRequest, MemoryResponse, MemoryStat};
use protocol::net::{Net, NetRequest, NetResponse};
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

    fn call_with_fds(
        &self,
        req: P::Request,
        key: Option<String>,
        fds: Vec<OwnedFd>,
    ) -> Result<(P::Response, Vec<OwnedFd>), Error> {
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut client = pooled.unwrap_or_else(|| {
            Client::new(
                &self.root,
                ClientOptions {
                    deadline: DEADLINE,
                    client_name: self.client_name.into(),
                    ..ClientOptions::default()
                },
            )
        });
        let result = client.call_with_fds(req, key, fds);
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(client);
        result
    }

    fn call(&self, req: P::Request, key: Option<String>) -> Result<P::Response, Error> {
        Ok(self.call_with_fds(req, key, vec![])?.0)
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

    /// Creates `id`'s memory group for a process that joins it by itself,
    /// and returns the fds it joins with (one round trip).
    pub fn memory_create_joinable(
        &self,
        id: &str,
        limits: MemoryLimits,
    ) -> Result<Vec<(CgroupJoin, OwnedFd)>, Error> {
        let req = MemoryRequest::CreateJoinable {
            id: id.into(),
            limits,
        };
        match self
            .memory
            .call_with_fds(req, Some(new_key("create", id)), vec![])?
        {
            (MemoryResponse::JoinFds(entries), fds) => joins("memory-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "memory-controller answered CreateJoinable with {other:?}"
            ))),
        }
    }

    /// As `memory_create_joinable`, for `id`'s cpu groups.
    pub fn cpu_create_joinable(
        &self,
        id: &str,
        limits: CpuLimits,
    ) -> Result<Vec<(CgroupJoin, OwnedFd)>, Error> {
        let req = CpuRequest::CreateJoinable {
            id: id.into(),
            limits,
        };
        match self
            .cpu
            .call_with_fds(req, Some(new_key("create", id)), vec![])?
        {
            (CpuResponse::JoinFds(entries), fds) => joins("cpu-controller", entries, fds),
            (other, _) => Err(Error::internal(format!(
                "cpu-controller answered CreateJoinable with {other:?}"
            ))),
        }
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

    /// A fresh network namespace with loopback up, from netstack's pool.
    pub fn netns_claim(&self, id: &str) -> Result<OwnedFd, Error> {
        let req = NetRequest::Claim { id: id.into() };
        match self.net.call_with_fds(req, None, vec![])? {
            (NetResponse::Claimed(_), mut fds) if fds.len() == 1 => Ok(fds.pop().expect("one")),
            (other, fds) => Err(Error::internal(format!(
                "netstack answered Claim with {other:?} and {} fds (want 1)",
                fds.len()
            ))),
        }
    }

    pub fn memory_create(&self, id: &str, limits: MemoryLimits) -> Result<(), Error> {
        let req = MemoryRequest::Create {
            id: id.into(),
            parent: None,
            limits,
        };
        self.memory
            .call(req, Some(new_key("create", id)))
            .map(|_| ())
    }

    pub fn memory_attach(&self, id: &str, pid: i32) -> Result<(), Error> {
        self.memory
            .call(
                MemoryRequest::Attach { id: id.into(), pid },
                Some(new_key("attach", id)),
            )
            .map(|_| ())
    }

    pub fn memory_set(&self, id: &str, limits: MemoryLimits) -> Result<(), Error> {
        let req = MemoryRequest::Set {
            id: id.into(),
            limits,
            check_before_update: false,
        };
        self.memory.call(req, Some(new_key("set", id))).map(|_| ())
    }

    pub fn memory_delete(&self, id: &str) -> Result<(), Error> {
        let req = MemoryRequest::Delete {
            id: id.into(),
            force: true,
        };
        ok_if_missing(self.memory.call(req, Some(new_key("delete", id))))
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

    pub fn cpu_create(&self, id: &str, limits: CpuLimits) -> Result<(), Error> {
        let req = CpuRequest::Create {
            id: id.into(),
            parent: None,
            limits,
        };
        self.cpu.call(req, Some(new_key("create", id))).map(|_| ())
    }

    pub fn cpu_attach(&self, id: &str, pid: i32) -> Result<(), Error> {
        self.cpu
            .call(
                CpuRequest::Attach { id: id.into(), pid },
                Some(new_key("attach", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_set(&self, id: &str, limits: CpuLimits) -> Result<(), Error> {
        self.cpu
            .call(
                CpuRequest::Set {
                    id: id.into(),
                    limits,
                },
                Some(new_key("set", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_delete(&self, id: &str) -> Result<(), Error> {
        let req = CpuRequest::Delete {
            id: id.into(),
            force: true,
        };
        ok_if_missing(self.cpu.call(req, Some(new_key("delete", id))))
    }

    pub fn cpu_freeze(&self, id: &str) -> Result<(), Error> {
        self.cpu
            .call(
                CpuRequest::Freeze { id: id.into() },
                Some(new_key("freeze", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_thaw(&self, id: &str) -> Result<(), Error> {
        self.cpu
            .call(
                CpuRequest::Thaw { id: id.into() },
                Some(new_key("thaw", id)),
            )
            .map(|_| ())
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

    pub fn vfs_prepare(
        &self,
        id: &str,
        bundle: &str,
        root_path: &str,
        readonly: bool,
    ) -> Result<String, Error> {
        let req = VfsRequest::Prepare {
            id: id.into(),
            bundle: bundle.into(),
            root_path: root_path.into(),
            readonly,
        };
        match self.vfs.call(req, Some(new_key("prepare", id)))? {
            VfsResponse::Prepared { rootfs } => Ok(rootfs),
            other => Err(Error::internal(format!(
                "vfs-overlay answered prepare with {other:?}"
            ))),
        }
    }

    pub fn vfs_release(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(self.vfs.call(
            VfsRequest::Release { id: id.into() },
            Some(new_key("release", id)),
        ))
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

    pub fn loopback_release(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(self.net.call(
            NetRequest::Release { id: id.into() },
            Some(new_key("release", id)),
        ))
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
