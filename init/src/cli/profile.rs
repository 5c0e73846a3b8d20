//! `ASTERISM_PROFILE=1`: `ipc` writes to stderr when each step of a
//! command ended, in ms since it started (a breakdown of where a `run`
//! spends its time, without a tracer's overhead).

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Option<Instant>> = OnceLock::new();

/// Call first thing in main.
pub fn start() {
    START.get_or_init(|| std::env::var_os("ASTERISM_PROFILE").map(|_| Instant::now()));
}

/// `step` just ended.
pub fn mark(step: &str) {
    if let Some(Some(t0)) = START.get() {
        // One write per line (the container process marks too, on the
        // same stderr), and none that could panic: a closed pipe is no
        // reason to stop a container's setup.
        use std::io::Write;
        let line = format!(
            "ipc profile: {:8.3} ms  {step}\n",
            t0.elapsed().as_secs_f64() * 1e3
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
