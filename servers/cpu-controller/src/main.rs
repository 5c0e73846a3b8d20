//! The cpu-controller server binary (normally started by init).

use cpu_controller::{CpuService, Layout};
use protocol::cpu::Cpu;
use protocol::Protocol;

fn main() -> std::process::ExitCode {
    libipc::server::run_main::<Cpu, _>(Cpu::NAME, |opts, events| {
        let state_dir = opts.state_dir();
        let layout = Layout::discover(&state_dir, &opts.root)?;
        tracing::info!("cgroup backends: {}", layout.describe());
        CpuService::start(layout, &state_dir, Box::new(move |ev| events.publish(ev)))
    })
}
