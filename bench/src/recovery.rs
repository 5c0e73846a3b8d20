//! Time from SIGKILL of a server to its first answered request.
//!
//! A connected, retrying `libipc::Client` (as init or a shim would hold)
//! pings the server; we SIGKILL the server by the pid its hello named and
//! ping again at once. The client sees the connection close, reconnects to
//! the listening socket init keeps open (the connection waits in its
//! backlog) and gets its pong from the restarted server: kill -> pong.
//! Kills are spaced by more than init's crash window (`--restart-window
//! 1`), so each one is a first crash, restarted without backoff.

use crate::constellation::{kill, libc_sig, Constellation};
use crate::stats::Samples;
use anyhow::{anyhow, bail, Context, Result};
use libipc::{Client, ClientOptions};
use protocol::Protocol;
use std::time::{Duration, Instant};

pub struct Recovery {
    pub server: &'static str,
    pub kill_to_pong: Samples,
    /// Pongs that came from the same pid we killed (should be none).
    pub same_pid: usize,
}

pub fn run<P: Protocol>(c: &Constellation, n: usize, spacing: Duration) -> Result<Recovery> {
    let opts = ClientOptions {
        deadline: Duration::from_secs(10),
        client_name: "asterism-bench".into(),
        ..ClientOptions::default()
    };
    let mut client = Client::<P>::new(c.root(), opts);
    client
        .ping()
        .map_err(|e| anyhow!("ping {}: {e}", P::NAME))?;
    let (mut times, mut same_pid) = (vec![], 0);
    for i in 0..n {
        let pid = server_pid(&client)?;
        if !c.owns(pid) {
            bail!(
                "{} pid {pid} is not this constellation's; not killing it",
                P::NAME
            );
        }
        c.note_pid(pid);
        let t = Instant::now();
        kill(pid, libc_sig::KILL);
        client
            .ping()
            .map_err(|e| anyhow!("ping {} after kill {}: {e}", P::NAME, i + 1))?;
        times.push(t.elapsed());
        let new = server_pid(&client)?;
        c.note_pid(new);
        same_pid += usize::from(new == pid);
        std::thread::sleep(spacing.saturating_sub(t.elapsed()));
    }
    Ok(Recovery {
        server: P::NAME,
        kill_to_pong: Samples::from_durations(&times),
        same_pid,
    })
}

/// The pid the server named in the hello of the client's current connection.
fn server_pid<P: Protocol>(client: &Client<P>) -> Result<i32> {
    client
        .hello()
        .map(|h| h.pid as i32)
        .context("the client has no hello yet")
}
