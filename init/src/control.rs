//! init's own socket: `ipc status`, shutdown, and the OCI lifecycle.

use crate::lifecycle::Lifecycle;
use crate::supervisor::Table;
use libipc::{Ctx, Service};
use protocol::init::{ConstellationStatus, Init, InitRequest, InitResponse, ServerState};
use protocol::{Error, Protocol};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub struct InitService {
    pub root: PathBuf,
    pub table: Table,
    pub epoch: u64,
    pub stop: crate::supervisor::Waker,
    pub lifecycle: Arc<Lifecycle>,
}

impl Service for InitService {
    type P = Init;

    fn handle(&self, ctx: &mut Ctx, req: InitRequest) -> Result<InitResponse, Error> {
        let lc = &self.lifecycle;
        match req {
            InitRequest::Constellation => Ok(InitResponse::Constellation(self.status())),
            InitRequest::Shutdown => {
                self.stop.stop();
                Ok(InitResponse::ShuttingDown)
            }
            InitRequest::Register {
                id,
                bundle,
                config_json,
                creator_pid,
            } => lc.register(&id, &bundle, &config_json, creator_pid),
            InitRequest::AttachPid { id, pid, netns } => {
                let fd = if netns {
                    Some(
                        ctx.fds_in
                            .pop()
                            .ok_or_else(|| Error::invalid("AttachPid says netns but no fd came"))?,
                    )
                } else {
                    None
                };
                lc.attach_pid(&id, pid, fd)
            }
            InitRequest::Prepare {
                id,
                bundle,
                config_json,
                creator_pid,
                start_gate,
            } => {
                let p = lc.prepare(&id, &bundle, &config_json, creator_pid, start_gate)?;
                let (joins, mut fds): (Vec<_>, Vec<_>) = p.joins.into_iter().unzip();
                let netns = p.netns.is_some();
                fds.extend(p.netns);
                ctx.fds_out = fds;
                Ok(InitResponse::Prepared {
                    rootfs: p.rootfs,
                    seccomp: p.seccomp,
                    joins,
                    netns,
                })
            }
            InitRequest::MarkCreated { id, pid } => lc.mark_created(&id, pid),
            InitRequest::MarkRunning { id, pid } => lc.mark_running(&id, pid),
            InitRequest::Abort { id, reason } => lc.abort(&id, &reason),
            InitRequest::Start { id } => lc.start_container(&id),
            InitRequest::State { id } => lc.state(&id),
            InitRequest::List => lc.list(),
            InitRequest::Kill { id, signal, all } => lc.kill(&id, signal, all),
            // A mount namespace fd that came along (see InitRequest::Delete)
            // stays in ctx.fds_in, which libipc closes after the answer.
            InitRequest::Delete { id, force } => lc.delete(&id, force),
            InitRequest::Pause { id } => lc.pause(&id),
            InitRequest::Resume { id } => lc.resume(&id),
            InitRequest::Update { id, memory, cpu } => lc.update(&id, memory, cpu),
            InitRequest::UpdateBlockIo { id, block_io } => lc.update_block_io(&id, block_io),
            InitRequest::Pids { id } => lc.pids(&id),
            InitRequest::Stats { id } => lc.stats(&id),
            InitRequest::SeccompListener { id } => {
                if ctx.fds_in.len() != 1 {
                    return Err(Error::invalid(format!(
                        "SeccompListener needs exactly one fd (the listener), {} came",
                        ctx.fds_in.len()
                    )));
                }
                let fd = ctx.fds_in.pop().expect("one fd");
                lc.seccomp_listener(&id, fd)
            }
            InitRequest::RunDetached {
                id,
                bundle,
                pid_file,
                console_socket,
                no_pivot,
                no_new_keyring,
                preserve_fds,
            } => {
                let stdio = std::mem::take(&mut ctx.fds_in);
                lc.run_detached(
                    &id,
                    &bundle,
                    pid_file.as_deref(),
                    console_socket.as_deref(),
                    no_pivot,
                    no_new_keyring,
                    preserve_fds,
                    stdio,
                )
            }
        }
    }
}

impl InitService {
    fn status(&self) -> ConstellationStatus {
        let mut servers: Vec<_> = self
            .table
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.entry())
            .collect();
        // Request counts live in the servers; ask each running one briefly.
        for e in servers
            .iter_mut()
            .filter(|e| e.state == ServerState::Running)
        {
            let opts = libipc::ClientOptions {
                deadline: Duration::from_millis(300),
                client_name: Init::NAME.into(),
                retry: false,
                check_name: false,
            };
            let path = libipc::socket_path(&self.root, &e.name);
            let mut c = libipc::Client::<protocol::placeholder::SeccompMonitor>::at(path, opts);
            if let Ok(s) = c.status() {
                e.requests = s.requests;
                e.uptime_ms = s.uptime_ms;
            }
        }
        ConstellationStatus {
            init_pid: std::process::id(),
            init_epoch: self.epoch,
            servers,
        }
    }
}
