//! init's calls to the resource servers, one function per request, each
//! with an idempotency key so that a retry across a server restart is
//! applied once. A group or rootfs is always named by the container id.

use libipc::client::new_key;
use libipc::{Client, ClientOptions};
use protocol::cpu::{Cpu, CpuLimits, CpuRequest, CpuResponse, CpuStat};
use protocol::memory::{Memory, MemoryLimits, MemoryRequest, MemoryResponse, MemoryStat};
use protocol::net::{Net, NetRequest};
use protocol::seccomp::{NotifyPolicy, Program, Seccomp, SeccompRequest, SeccompResponse};
use protocol::vfs::{Vfs, VfsRequest, VfsResponse};
use protocol::{Error, ErrorKind, Protocol};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Servers {
    root: PathBuf,
}

/// init never blocks forever on a server: every call has a deadline, long
/// enough to ride out a restart (the client retries meanwhile).
const DEADLINE: Duration = Duration::from_secs(15);

fn client<P: Protocol>(root: &Path) -> Client<P> {
    Client::new(
        root,
        ClientOptions {
            deadline: DEADLINE,
            client_name: "init".into(),
            ..ClientOptions::default()
        },
    )
}

/// "already gone" is success for the undo steps.
fn ok_if_missing<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Servers {
    pub fn new(root: &Path) -> Servers {
        Servers {
            root: root.to_path_buf(),
        }
    }

    pub fn memory_create(&self, id: &str, limits: MemoryLimits) -> Result<(), Error> {
        let req = MemoryRequest::Create {
            id: id.into(),
            parent: None,
            limits,
        };
        client::<Memory>(&self.root)
            .call(req, Some(new_key("create", id)))
            .map(|_| ())
    }

    pub fn memory_attach(&self, id: &str, pid: i32) -> Result<(), Error> {
        client::<Memory>(&self.root)
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
        client::<Memory>(&self.root)
            .call(req, Some(new_key("set", id)))
            .map(|_| ())
    }

    pub fn memory_delete(&self, id: &str) -> Result<(), Error> {
        let req = MemoryRequest::Delete {
            id: id.into(),
            force: true,
        };
        ok_if_missing(client::<Memory>(&self.root).call(req, Some(new_key("delete", id))))
    }

    pub fn memory_stat(&self, id: &str) -> Result<MemoryStat, Error> {
        match client::<Memory>(&self.root).call(MemoryRequest::Stat { id: id.into() }, None)? {
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
        client::<Cpu>(&self.root)
            .call(req, Some(new_key("create", id)))
            .map(|_| ())
    }

    pub fn cpu_attach(&self, id: &str, pid: i32) -> Result<(), Error> {
        client::<Cpu>(&self.root)
            .call(
                CpuRequest::Attach { id: id.into(), pid },
                Some(new_key("attach", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_set(&self, id: &str, limits: CpuLimits) -> Result<(), Error> {
        client::<Cpu>(&self.root)
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
        ok_if_missing(client::<Cpu>(&self.root).call(req, Some(new_key("delete", id))))
    }

    pub fn cpu_freeze(&self, id: &str) -> Result<(), Error> {
        client::<Cpu>(&self.root)
            .call(
                CpuRequest::Freeze { id: id.into() },
                Some(new_key("freeze", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_thaw(&self, id: &str) -> Result<(), Error> {
        client::<Cpu>(&self.root)
            .call(
                CpuRequest::Thaw { id: id.into() },
                Some(new_key("thaw", id)),
            )
            .map(|_| ())
    }

    pub fn cpu_stat(&self, id: &str) -> Result<CpuStat, Error> {
        match client::<Cpu>(&self.root).call(CpuRequest::Stat { id: id.into() }, None)? {
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
        match client::<Vfs>(&self.root).call(req, Some(new_key("prepare", id)))? {
            VfsResponse::Prepared { rootfs } => Ok(rootfs),
            other => Err(Error::internal(format!(
                "vfs-overlay answered prepare with {other:?}"
            ))),
        }
    }

    pub fn vfs_release(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(client::<Vfs>(&self.root).call(
            VfsRequest::Release { id: id.into() },
            Some(new_key("release", id)),
        ))
    }

    pub fn loopback(&self, id: &str, netns: OwnedFd) -> Result<(), Error> {
        let req = NetRequest::Loopback { id: id.into() };
        match client::<Net>(&self.root).call_with_fds(
            req,
            Some(new_key("loopback", id)),
            vec![netns],
        ) {
            // A retried AttachPid: loopback is already up for this id.
            Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(()),
            other => other.map(|_| ()),
        }
    }

    pub fn loopback_release(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(client::<Net>(&self.root).call(
            NetRequest::Release { id: id.into() },
            Some(new_key("release", id)),
        ))
    }

    pub fn seccomp_compile(&self, profile_json: &str) -> Result<Program, Error> {
        let req = SeccompRequest::Compile {
            profile_json: profile_json.into(),
            arch: None,
        };
        match client::<Seccomp>(&self.root).call(req, None)? {
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
        client::<Seccomp>(&self.root)
            .call_with_fds(req, Some(new_key("watch", id)), vec![listener])
            .map(|_| ())
    }

    pub fn seccomp_forget(&self, id: &str) -> Result<(), Error> {
        ok_if_missing(client::<Seccomp>(&self.root).call(
            SeccompRequest::Forget { id: id.into() },
            Some(new_key("forget", id)),
        ))
    }
}
