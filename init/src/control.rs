//! init's own socket: `ipc status` and shutdown. (The OCI lifecycle joins
//! it with the next issue.)

use crate::supervisor::Table;
use libipc::{Ctx, Service};
use protocol::init::{ConstellationStatus, Init, InitRequest, InitResponse, ServerState};
use protocol::{Error, Protocol};
use std::path::PathBuf;
use std::time::Duration;

pub struct InitService {
    pub root: PathBuf,
    pub table: Table,
    pub epoch: u64,
    pub stop: crossbeam_channel::Sender<()>,
}

impl Service for InitService {
    type P = Init;

    fn handle(&self, _ctx: &mut Ctx, req: InitRequest) -> Result<InitResponse, Error> {
        match req {
            InitRequest::Constellation => Ok(InitResponse::Constellation(self.status())),
            InitRequest::Shutdown => {
                let _ = self.stop.send(());
                Ok(InitResponse::ShuttingDown)
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
            let mut c = libipc::Client::<protocol::placeholder::VfsOverlay>::at(path, opts);
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
