//! The netstack binary: started by init with
//! `--root DIR --epoch N --listen-fd N`.

use libipc::server::run_main;
use netstack::NetService;
use protocol::net::Net;
use protocol::Protocol;

fn main() -> std::process::ExitCode {
    run_main::<Net, _>(Net::NAME, netstack::CAPABILITIES, |opts, _events| {
        NetService::start(&opts.state_dir())
    })
}
