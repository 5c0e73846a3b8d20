//! `ipc`: the asterism command line (runc-compatible, plus every server's verbs).

use std::io::Write;

/// See asterism_init::arena: a bump arena in front of the system allocator.
#[global_allocator]
static ALLOCATOR: asterism_init::arena::Arena = asterism_init::arena::Arena::new();

fn main() -> std::process::ExitCode {
    asterism_init::cli::profile::start();
    // ipc prints an error's chain, never its backtrace; but with
    // RUST_BACKTRACE set, anyhow captures one for every error, walking the
    // unwind tables of this static binary: `ipc state` of a missing
    // container took 2.4 ms instead of 1.0. Panics still print theirs;
    // a RUST_LIB_BACKTRACE of the caller's own wins. (Single-threaded here.)
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    libipc::server::init_logging("ipc");
    let cli = asterism_init::cli::Cli::parse_args();
    asterism_init::cli::profile::mark("command line parsed");
    let log = cli.globals.log.clone();
    let json = cli.globals.log_format == "json";
    match asterism_init::cli::run(cli) {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let msg = format!("{e:#}");
            // init's `run --detach` runs `ipc create` with the caller's
            // stderr (the container's) and takes the error from this file,
            // to answer with it: printed here too, the caller would see it
            // twice.
            match std::env::var_os(ERROR_FILE) {
                Some(file) if std::fs::write(&file, &msg).is_ok() => {}
                // Not eprintln!: a closed stderr is no reason to panic.
                _ => {
                    let _ = writeln!(std::io::stderr(), "ipc: {msg}");
                }
            }
            if let Some(path) = log {
                asterism_init::cli::write_log(&path, json, &msg);
            }
            std::process::ExitCode::from(asterism_init::cli::oci::FailedWith::exit_code_of(&e))
        }
    }
}

use asterism_init::lifecycle::ERROR_FILE;
