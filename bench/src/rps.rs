//! Requests per second with 1, 4 and 16 concurrent clients: one thread
//! each, each with its own `libipc::Client` (its own connection), all
//! started together and run for a fixed duration.

use crate::stats::Samples;
use anyhow::{anyhow, Result};
use libipc::{Client, ClientOptions};
use protocol::memory::{Memory, MemoryRequest, MemoryResponse};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// `ping`, answered by the server loop itself.
    Ping,
    /// `MemoryRequest::List`: through the worker pool, the service's table
    /// and the cgroup files of every registered group.
    List,
}

pub struct Throughput {
    pub clients: usize,
    pub requests: u64,
    pub elapsed: Duration,
    /// Latency of every request.
    pub latency: Samples,
}

impl Throughput {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn one(client: &mut Client<Memory>, kind: Kind) -> Result<()> {
    match kind {
        Kind::Ping => client.ping().map(|_| ()).map_err(|e| anyhow!("ping: {e}")),
        Kind::List => match client.call(MemoryRequest::List, None) {
            Ok(MemoryResponse::List(_)) => Ok(()),
            Ok(other) => Err(anyhow!("list answered {other:?}")),
            Err(e) => Err(anyhow!("list: {e}")),
        },
    }
}

/// `clients` threads issuing `kind` back to back for `dur`.
pub fn run(root: &Path, kind: Kind, clients: usize, dur: Duration) -> Result<Throughput> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (root, barrier) = (PathBuf::from(root), barrier.clone());
            std::thread::spawn(move || client_loop(&root, kind, dur, &barrier))
        })
        .collect();
    barrier.wait(); // every client connected and warmed up
    let start = Instant::now();
    let mut all = vec![];
    let mut first_err = None;
    for t in threads {
        match t.join().map_err(|_| anyhow!("a client thread panicked"))? {
            Ok(ns) => all.extend(ns),
            Err(e) => first_err = first_err.or(Some(e)),
        }
    }
    let elapsed = start.elapsed();
    if let Some(e) = first_err {
        return Err(e.context(format!("{kind:?} with {clients} clients")));
    }
    Ok(Throughput {
        clients,
        requests: all.len() as u64,
        elapsed: elapsed.max(dur),
        latency: Samples::new(all),
    })
}

/// One client: connect and warm up, meet the others at the barrier, then
/// issue requests until the duration is over; the latency of each, in ns.
fn client_loop(root: &Path, kind: Kind, dur: Duration, barrier: &Barrier) -> Result<Vec<u64>> {
    let mut client = Client::<Memory>::new(root, ClientOptions::default());
    let warm = (0..50).try_for_each(|_| one(&mut client, kind));
    barrier.wait();
    warm?;
    let until = Instant::now() + dur;
    let mut ns = Vec::with_capacity(1 << 16);
    while Instant::now() < until {
        let t = Instant::now();
        one(&mut client, kind)?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    Ok(ns)
}
