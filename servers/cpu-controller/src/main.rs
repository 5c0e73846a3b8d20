//! The cpu-controller server binary (normally started by init).

use cgroupfs::{Hierarchies, Version};
use cpu_controller::peer::{MemoryPeer, Peer};
use cpu_controller::{CpuService, Layout};
use protocol::cpu::Cpu;
use protocol::Protocol;
use std::sync::Arc;

fn main() -> std::process::ExitCode {
    libipc::server::run_main::<Cpu, _>(Cpu::NAME, cpu_controller::CAPABILITIES, |opts, events| {
        let state_dir = opts.state_dir();
        let layout = Layout::discover(&state_dir, &opts.root)?;
        tracing::info!("cgroup backends: {}", layout.describe());
        // On cgroup v2, memory-controller's groups are our directories too.
        let memory_v2 = Hierarchies::discover()?
            .get("memory")
            .is_ok_and(|h| h.version == Version::V2);
        let has_v2 = layout.mounts().iter().any(|m| m.version == Version::V2);
        let peer: Option<Arc<dyn Peer>> = match memory_v2 && has_v2 {
            true => Some(Arc::new(MemoryPeer::new(&opts.root))),
            false => None,
        };
        let publish = Box::new(move |ev| events.publish(ev));
        CpuService::start_with_peer(layout, &state_dir, publish, peer)
    })
}
