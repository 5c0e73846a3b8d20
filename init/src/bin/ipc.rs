//! `ipc`: the asterism command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    libipc::server::init_logging("ipc");
    let cli = asterism_init::cli::Cli::parse();
    match asterism_init::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipc: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
