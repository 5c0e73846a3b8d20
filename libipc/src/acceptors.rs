//! The threads that take a server's connections. Each waits in accept(2)
//! on the listening socket itself and serves the connection it gets while
//! the others go on accepting: a connection is served by the thread the
//! kernel woke for it. (An acceptor handing each connection to an idle
//! worker cost a wake-up and a context switch per connection, on the
//! critical path of every `ipc` command, whose first request comes along
//! with its hello.)
//!
//! A thread that takes a connection while no other waits in accept starts
//! one more first, so that a long-lived connection (an event stream,
//! init's pooled clients) never keeps the next one waiting. A thread done
//! with its connection goes back to accept, or exits when enough others
//! wait there already; the thread that called `run` never exits.

use crate::wire::{self, Conn};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Shared<F> {
    listener: OwnedFd,
    serve: F,
    /// Threads in accept(2) now (or about to be).
    waiting: AtomicUsize,
    /// Above this many waiting, a thread done with its connection exits.
    max_waiting: usize,
    name: &'static str,
}

/// Serves every connection on `listener` with `serve`; never returns.
/// The threads are named `name`.
pub fn run<F>(listener: OwnedFd, name: &'static str, max_waiting: usize, serve: F) -> !
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    let shared = Arc::new(Shared {
        listener,
        serve,
        waiting: AtomicUsize::new(0),
        max_waiting: max_waiting.max(1),
        name,
    });
    loop {
        take_one(&shared);
    }
}

/// One turn: accept, make sure another thread accepts meanwhile, serve.
fn take_one<F>(sh: &Arc<Shared<F>>)
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    sh.waiting.fetch_add(1, Ordering::SeqCst);
    let conn = wire::accept(sh.listener.as_fd());
    if sh.waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
        spawn(sh);
    }
    match conn {
        // A connection that panics its thread must not take the thread
        // away (the calling thread is one of them): the handlers catch
        // their own, this is for the rest.
        Ok(c) => {
            let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (sh.serve)(c)));
            if served.is_err() {
                tracing::error!("a {} thread panicked serving a connection", sh.name);
            }
        }
        Err(e) => {
            tracing::warn!("accept failed: {e}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Another accepting thread; one that cannot be started leaves the others
/// (the calling thread is always one) to take the connections.
fn spawn<F>(sh: &Arc<Shared<F>>)
where
    F: Fn(Conn) + Send + Sync + 'static,
{
    let mine = sh.clone();
    let started = std::thread::Builder::new()
        .name(sh.name.to_string())
        .stack_size(crate::THREAD_STACK)
        .spawn(move || loop {
            take_one(&mine);
            if mine.waiting.load(Ordering::SeqCst) >= mine.max_waiting {
                return;
            }
        });
    if let Err(e) = started {
        tracing::warn!("cannot start another {} thread: {e}", sh.name);
    }
}
