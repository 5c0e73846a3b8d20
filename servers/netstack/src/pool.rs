//! A warm pool of fresh network namespaces, each with `lo` already up.
//!
//! Making a network namespace is the slow part of a container's network
//! (the kernel sets up a whole stack), and none of it depends on the
//! container: so netstack makes them ahead of time and `Claim` hands one out.
//!
//! unshare(CLONE_NEWNET) moves only the calling thread. A dedicated pool
//! thread therefore unshares, opens /proc/thread-self/ns/net, brings `lo` up
//! from inside, and unshares again for the next one; it runs nothing else.
//! When the pool is empty, a claim never waits for that thread: it makes one
//! on a short-lived helper thread of its own (the same steps), so the
//! request's worker thread never leaves the host's namespace.

use crate::netns::{self, NsId};
use crate::rtnl::{LinkState, Rtnl};
use protocol::Error;
use rustix::thread::UnshareFlags;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Pool size when ASTERISM_NETNS_POOL is not set: enough for a burst of
/// four containers at once, refilled behind them.
pub const DEFAULT_SIZE: usize = 4;
/// Most namespaces kept ready (each costs kernel memory while it waits).
pub const MAX_SIZE: usize = 64;
/// The environment variable that sets the pool size (0 = no pool).
pub const ENV: &str = "ASTERISM_NETNS_POOL";
/// How long the pool thread waits before trying again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// A network namespace nobody has used, with `lo` up.
#[derive(Debug)]
pub struct Fresh {
    pub fd: OwnedFd,
    pub ns: NsId,
    pub lo: LinkState,
}

/// The pool size from ASTERISM_NETNS_POOL, or the default.
pub fn size_from_env() -> Result<usize, Error> {
    match std::env::var(ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_SIZE),
        Err(e) => Err(Error::invalid(format!("{ENV}: {e}"))),
        Ok(v) => parse_size(&v),
    }
}

fn parse_size(v: &str) -> Result<usize, Error> {
    match v.trim().parse::<usize>() {
        Ok(n) if n <= MAX_SIZE => Ok(n),
        _ => Err(Error::invalid(format!(
            "{ENV}={v:?}: must be a number of network namespaces to keep ready, \
             0 to {MAX_SIZE} (0 = make each on demand)"
        ))),
    }
}

struct Shared {
    ready: Mutex<Ready>,
    /// Signalled when a namespace is taken (refill) and on stop.
    wake: Condvar,
    target: usize,
}

#[derive(Default)]
struct Ready {
    fresh: Vec<Fresh>,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Ready> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct Pool {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Pool {
    /// Starts the pool thread (none when `target` is 0).
    pub fn start(target: usize) -> Result<Pool, Error> {
        let shared = Arc::new(Shared {
            ready: Mutex::new(Ready::default()),
            wake: Condvar::new(),
            target,
        });
        let thread = if target == 0 {
            None
        } else {
            let sh = shared.clone();
            let t = std::thread::Builder::new()
                .name("netns-pool".into())
                .stack_size(256 << 10)
                .spawn(move || fill(&sh))
                .map_err(|e| Error::io("spawn the netns pool thread", &e))?;
            Some(t)
        };
        Ok(Pool { shared, thread })
    }

    pub fn target(&self) -> usize {
        self.shared.target
    }

    /// How many namespaces are ready now.
    pub fn ready(&self) -> usize {
        self.shared.lock().fresh.len()
    }

    /// A fresh namespace: from the pool, or made now if it is empty.
    pub fn take(&self) -> Result<Fresh, Error> {
        let taken = self.shared.lock().fresh.pop();
        self.shared.wake.notify_all();
        match taken {
            Some(f) => Ok(f),
            None => make_on_helper(),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // The namespaces still ready die with their fds, here.
    }
}

/// The pool thread: keeps `target` namespaces ready until stopped.
fn fill(sh: &Shared) {
    // Refilling is background work: on a busy host it yields to the
    // containers being created (a namespace takes ~1 ms of CPU to make,
    // and ran against Prepare's critical path). Not SCHED_IDLE: it takes
    // rtnl while it brings lo up, and must not sit on it for long.
    // who = 0 with PRIO_PROCESS is this thread alone on Linux.
    if let Err(e) = rustix::process::setpriority_process(None, POOL_NICE) {
        tracing::warn!("netns pool: cannot lower the refill thread's priority: {e}");
    }
    loop {
        {
            let mut r = sh.lock();
            while !r.stop && r.fresh.len() >= sh.target {
                r = sh.wake.wait(r).unwrap_or_else(PoisonError::into_inner);
            }
            if r.stop {
                return;
            }
        }
        match make_here() {
            Ok(f) => sh.lock().fresh.push(f),
            Err(e) => {
                // Claims still work (they make their own and report the
                // error to the caller); try again later.
                tracing::warn!("netns pool: {e}; retrying in {RETRY:?}");
                let r = sh.lock();
                if r.stop {
                    return;
                }
                let _ = sh.wake.wait_timeout(r, RETRY);
            }
        }
    }
}

/// The refill thread's nice value.
const POOL_NICE: i32 = 10;

/// Makes one namespace on a short-lived thread (the caller stays put).
pub fn make_on_helper() -> Result<Fresh, Error> {
    std::thread::Builder::new()
        .name("netns-new".into())
        .stack_size(256 << 10)
        .spawn(make_here)
        .map_err(|e| Error::io("spawn a thread to make a network namespace", &e))?
        .join()
        .unwrap_or_else(|_| {
            Err(Error::internal(
                "the thread making a network namespace panicked",
            ))
        })
}

/// Moves the calling thread into a new network namespace, brings its `lo`
/// up, and returns it. Only for threads that run nothing else afterwards.
fn make_here() -> Result<Fresh, Error> {
    unshare_net()?;
    let fd: OwnedFd = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(|e| Error::io("open the new /proc/thread-self/ns/net", &e))?
        .into();
    let ns = netns::check_net(fd.as_fd())?;
    let lo = Rtnl::open()?.set_up("lo")?;
    if !lo.up() {
        return Err(Error::internal(format!(
            "lo in the new {} was set up but reads back with flags {:#x} (no IFF_UP)",
            ns.name(),
            lo.flags
        )));
    }
    Ok(Fresh { fd, ns, lo })
}

#[allow(unsafe_code)]
fn unshare_net() -> Result<(), Error> {
    // SAFETY: rustix marks unshare unsafe because of CLONE_FILES (a thread
    // with its own fd table could be handed fds it cannot see). Only
    // CLONE_NEWNET is passed here: the fd table stays shared.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(|e| {
        Error::kernel(
            e.raw_os_error(),
            format!("unshare(CLONE_NEWNET) for a new network namespace: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_is_a_small_number() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size(" 8 ").unwrap(), 8);
        for bad in ["", "x", "-1", "65", "4k"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.message.contains(ENV), "{e}");
        }
    }

    /// The refill thread runs at a lower priority than the requests (it
    /// competed with Prepare's critical path on a 2-core host), and fills
    /// the pool all the same.
    #[test]
    fn the_refill_thread_is_niced_and_fills_the_pool() {
        let pool = Pool::start(2).unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pool.ready() < 2 && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(pool.ready(), 2);
        let nice = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .flatten()
            .find_map(|t| {
                let comm = std::fs::read_to_string(t.path().join("comm")).ok()?;
                if comm.trim() != "netns-pool" {
                    return None;
                }
                let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
                // Field 19 (nice), counted after the ")" that ends comm.
                let after = &stat[stat.rfind(')')? + 2..];
                after.split(' ').nth(16)?.parse::<i32>().ok()
            })
            .expect("a netns-pool thread");
        assert_eq!(nice, POOL_NICE);
    }
}
