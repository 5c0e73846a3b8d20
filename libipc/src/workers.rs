//! Threads that are kept: a job goes to a thread that is idle, or to a new
//! one when none is. A thread whose job is done waits a while for the next
//! instead of exiting, so a burst of short jobs (one connection per `ipc`
//! command, init's calls to several servers at once) pays for no thread
//! creation and exit: those were a third of init's CPU time per container.

use protocol::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

pub struct Workers {
    name: &'static str,
    tx: crossbeam_channel::Sender<Job>,
    rx: crossbeam_channel::Receiver<Job>,
    /// Threads waiting on `rx` that no job has claimed. Changed only under
    /// this lock, together with the send or the exit it stands for, so
    /// that no job is ever left in the channel with no thread to take it.
    idle: Arc<Mutex<usize>>,
    max_idle: usize,
    idle_for: Duration,
}

impl Workers {
    /// Threads named `name`; at most `max_idle` wait at once, each for
    /// `idle_for` before it exits.
    pub fn new(name: &'static str, max_idle: usize, idle_for: Duration) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Workers {
            name,
            tx,
            rx,
            idle: Arc::new(Mutex::new(0)),
            max_idle,
            idle_for,
        }
    }

    /// Runs `job` on an idle thread, or on a new one.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        let job: Job = Box::new(job);
        let job = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if *idle > 0 {
                *idle -= 1;
                match self.tx.send(job) {
                    Ok(()) => return Ok(()),
                    Err(e) => e.into_inner(),
                }
            } else {
                job
            }
        };
        let (rx, idle, max_idle, idle_for) = (
            self.rx.clone(),
            self.idle.clone(),
            self.max_idle,
            self.idle_for,
        );
        std::thread::Builder::new()
            .name(self.name.to_string())
            .stack_size(256 << 10)
            .spawn(move || {
                let mut job = job;
                loop {
                    job();
                    match next_job(&rx, &idle, max_idle, idle_for) {
                        Some(j) => job = j,
                        None => return,
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| Error::io(format!("spawn thread {}", self.name), &e))
    }

    /// Runs `f` on a worker; the answer comes through the returned handle.
    /// A job that panics answers with an internal error.
    pub fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T, Error> + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let name = self.name;
        let started = self.run(move || {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
                    Err(Error::internal(format!(
                        "a job on a {name} thread panicked"
                    )))
                });
            let _ = tx.send(r);
        });
        Pending { rx, started }
    }
}

/// The answer of a job given to `Workers::call`.
pub struct Pending<T> {
    rx: crossbeam_channel::Receiver<Result<T, Error>>,
    started: Result<(), Error>,
}

impl<T> Pending<T> {
    pub fn wait(self) -> Result<T, Error> {
        self.started?;
        self.rx
            .recv()
            .unwrap_or_else(|_| Err(Error::internal("a worker thread ended without an answer")))
    }
}

/// Waits for the next job for a thread that is done; None: exit.
fn next_job(
    rx: &crossbeam_channel::Receiver<Job>,
    idle: &Mutex<usize>,
    max_idle: usize,
    idle_for: Duration,
) -> Option<Job> {
    {
        let mut n = idle.lock().unwrap_or_else(|p| p.into_inner());
        if *n >= max_idle {
            return None;
        }
        *n += 1;
    }
    if let Ok(j) = rx.recv_timeout(idle_for) {
        // `run` counted this thread out when it sent.
        return Some(j);
    }
    let mut n = idle.lock().unwrap_or_else(|p| p.into_inner());
    // Sent while the wait was timing out: ours, already counted out.
    if let Ok(j) = rx.try_recv() {
        return Some(j);
    }
    *n -= 1;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_one_after_another_reuse_one_thread() {
        let w = Workers::new("test-worker", 4, Duration::from_secs(5));
        let mut threads = std::collections::BTreeSet::new();
        for _ in 0..100 {
            let t = w
                .call(|| Ok(format!("{:?}", std::thread::current().id())))
                .wait()
                .unwrap();
            threads.insert(t);
        }
        assert!(threads.len() <= 2, "{} threads for 100 jobs", threads.len());
    }

    #[test]
    fn blocked_jobs_get_threads_of_their_own_and_panics_answer() {
        let w = Workers::new("test-worker", 2, Duration::from_millis(50));
        let (tx, rx) = crossbeam_channel::unbounded::<()>();
        // Five jobs that each wait for a release: all must run at once.
        let waits: Vec<_> = (0..5)
            .map(|_| {
                let rx = rx.clone();
                w.call(move || rx.recv().map_err(|_| Error::internal("closed")))
            })
            .collect();
        for _ in 0..5 {
            tx.send(()).unwrap();
        }
        for p in waits {
            p.wait().unwrap();
        }
        let e = w.call::<()>(|| panic!("boom")).wait().unwrap_err();
        assert!(e.message.contains("panicked"), "{e}");
        // Idle threads past their time exit; a later job still runs.
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(w.call(|| Ok(7)).wait().unwrap(), 7);
    }
}
