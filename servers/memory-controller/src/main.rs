//! The memory-controller binary: started by init with
//! `--root DIR --epoch N --listen-fd N`.

use libipc::server::run_main;
use memory_controller::MemoryService;
use protocol::memory::Memory;
use protocol::Protocol;

fn main() -> std::process::ExitCode {
    run_main::<Memory, _>(
        Memory::NAME,
        memory_controller::CAPABILITIES,
        |opts, events| {
            MemoryService::start(
                &opts.state_dir(),
                &opts.root,
                Box::new(move |e| events.publish(e)),
            )
        },
    )
}
