//! The seccomp-monitor service: Compile (through our compiler, cached by
//! profile hash), Watch / Forget (the notify agent), Stats.

use crate::agent::Agents;
use crate::cache::Cache;
use crate::compiler;
use libipc::server::{Ctx, Events, Service};
use protocol::seccomp::{Program, Seccomp, SeccompEvent, SeccompRequest, SeccompResponse};
use protocol::{validate_id, Error};
use std::path::Path;

pub struct SeccompService {
    cache: Cache,
    agents: Agents,
}

impl SeccompService {
    /// Nothing to reconcile at start: the agents come back when init
    /// re-sends Watch with the listeners of its fd store.
    pub fn start(state_dir: &Path, events: Events<SeccompEvent>) -> Result<Self, Error> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), &e))?;
        Ok(SeccompService {
            cache: Cache::default(),
            agents: Agents::new(state_dir, events),
        })
    }

    pub fn compile(&self, profile_json: &str, arch: Option<&str>) -> Result<Program, Error> {
        let hash = compiler::profile_hash(profile_json, arch);
        if let Some(p) = self.cache.get(&hash) {
            return Ok(p);
        }
        let c = compiler::compile(profile_json, arch)?;
        let p = Program {
            insns: c.program,
            flags: c.flags,
            needs_listener: c.needs_listener,
            warnings: c.warnings,
            hash,
            cached: false,
        };
        self.cache.put(&p);
        Ok(p)
    }
}

impl Service for SeccompService {
    type P = Seccomp;

    fn handle(&self, ctx: &mut Ctx, req: SeccompRequest) -> Result<SeccompResponse, Error> {
        if !matches!(req, SeccompRequest::Watch { .. }) && !ctx.fds_in.is_empty() {
            return Err(Error::invalid(format!(
                "only watch takes a file descriptor; {} came with {req:?}",
                ctx.fds_in.len()
            )));
        }
        match req {
            SeccompRequest::Verb { name, .. } => Err(Error::unsupported(format!(
                "seccomp-monitor: `{name}` is not supported; its verbs are compile, stats and events (watch and forget come from init)"
            ))),
            SeccompRequest::Compile { profile_json, arch } => self
                .compile(&profile_json, arch.as_deref())
                .map(SeccompResponse::Compiled),
            SeccompRequest::Watch { id, pid, policy } => {
                validate_id("container id", &id)?;
                if ctx.fds_in.len() != 1 {
                    return Err(Error::invalid(format!(
                        "watch {id}: exactly one fd (the seccomp listener) must come along, {} came",
                        ctx.fds_in.len()
                    )));
                }
                let fd = ctx.fds_in.pop().expect("one fd");
                self.agents.watch(&id, pid, policy, fd)?;
                Ok(SeccompResponse::Watching)
            }
            SeccompRequest::Forget { id } => {
                validate_id("container id", &id)?;
                self.agents.forget(&id);
                Ok(SeccompResponse::Forgotten)
            }
            SeccompRequest::Stats { id } => {
                if let Some(id) = &id {
                    validate_id("container id", id)?;
                }
                self.agents.stats(id.as_deref()).map(SeccompResponse::Stats)
            }
        }
    }

    fn event_matches(&self, filter: &str, event: &SeccompEvent) -> bool {
        let SeccompEvent::Notified { id, .. } = event;
        filter.is_empty() || filter == id
    }
}
