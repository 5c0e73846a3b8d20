//! Request round trip: `ping` through `libipc::Client` to a real server,
//! against the raw SEQPACKET ping-pong, in the same run. The two are
//! measured in alternating blocks so that both see the same background
//! load (the machine is shared; a burst of a neighbour's compile then
//! lands on both sample sets, not on one).

use crate::raw::PingPong;
use crate::stats::Samples;
use anyhow::{Context, Result};
use libipc::{Client, ClientOptions};
use protocol::memory::Memory;
use std::path::Path;
use std::time::Instant;

pub struct Rtt {
    pub raw: Samples,
    pub ipc: Samples,
    /// Bytes of the raw message: the size of an encoded libipc ping.
    pub msg_len: usize,
}

/// The size of a libipc ping request on the wire, so the raw baseline
/// moves as many bytes.
fn ping_len() -> Result<usize> {
    let req = protocol::Request::<protocol::memory::MemoryRequest> {
        id: 1,
        deadline_unix_ms: libipc::now_unix_ms() + 10_000,
        key: None,
        fds: 0,
        call: protocol::Call::Ping,
    };
    Ok(protocol::encode(&req)?.len())
}

/// `n` timed round trips of each kind after `warmup` untimed ones, in `blocks` alternating blocks.
pub fn run(root: &Path, scratch: &Path, n: usize, warmup: usize, blocks: usize) -> Result<Rtt> {
    let msg_len = ping_len()?;
    let mut raw = PingPong::start(&scratch.join("raw.sock"), msg_len)?;
    let mut client = Client::<Memory>::new(root, ClientOptions::default());
    for _ in 0..warmup {
        raw.round_trip()?;
        client.ping().context("warm-up ping to memory-controller")?;
    }
    let per_block = n.div_ceil(blocks.max(1));
    let (mut raw_ns, mut ipc_ns) = (Vec::with_capacity(n), Vec::with_capacity(n));
    while raw_ns.len() < n {
        for _ in 0..per_block.min(n - raw_ns.len()) {
            raw_ns.push(raw.round_trip()?);
        }
        for _ in 0..per_block.min(n - ipc_ns.len()) {
            let t = Instant::now();
            client.ping().context("ping memory-controller")?;
            ipc_ns.push(t.elapsed().as_nanos() as u64);
        }
    }
    Ok(Rtt {
        raw: Samples::new(raw_ns),
        ipc: Samples::new(ipc_ns),
        msg_len,
    })
}
