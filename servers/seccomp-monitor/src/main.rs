//! The seccomp-monitor binary: started by init with
//! `--root DIR --epoch N --listen-fd N`.

use libipc::server::run_main;
use protocol::seccomp::Seccomp;
use protocol::Protocol;
use seccomp_monitor::service::SeccompService;

fn main() -> std::process::ExitCode {
    run_main::<Seccomp, _>(
        Seccomp::NAME,
        seccomp_monitor::CAPABILITIES,
        |opts, events| SeccompService::start(&opts.state_dir(), events),
    )
}
