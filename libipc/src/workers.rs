//! Threads that are kept: a job goes to a thread that is idle, or to a new
//! one when none is. A thread whose job is done waits a while for the next
//! instead of exiting, so a burst of short jobs (one connection per `ipc`
//! command) pays for no thread creation and exit: those were a third of
//! init's CPU time per container. (`call`, a job with an answer, served
//! init's calls to several servers at once; init now sends those from one
//! thread, see init's lifecycle/servers.rs.)

use protocol::Error;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A job, and what it hands back to its caller (`call`'s answer), which
/// the thread delivers only once it counts as idle: a caller that sends
/// its next job as soon as it has the answer then finds this thread idle
/// rather than starting another.
type Job = Box<dyn FnOnce() -> Option<Deliver> + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

/// The jobs handed to idle threads, and how many threads wait for one.
/// A plain mutex and condition variable: a waiting thread sleeps in the
/// kernel at once. (crossbeam's channels spin and call sched_yield before
/// they sleep, CPU the servers need while a container is being created.)
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting in `next_job`, less the jobs queued for them: a job
    /// is queued only when this is above zero, and counts one thread out.
    idle: usize,
}

pub struct Workers {
    name: &'static str,
    shared: Arc<(Mutex<Queue>, Condvar)>,
    max_idle: usize,
    idle_for: Duration,
}

impl Workers {
    /// Threads named `name`; at most `max_idle` wait at once, each for
    /// `idle_for` before it exits.
    pub fn new(name: &'static str, max_idle: usize, idle_for: Duration) -> Self {
        let queue = Queue {
            jobs: VecDeque::new(),
            idle: 0,
        };
        Workers {
            name,
            shared: Arc::new((Mutex::new(queue), Condvar::new())),
            max_idle,
            idle_for,
        }
    }

    /// Runs `job` on an idle thread, or on a new one.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Error> {
        self.run_job(Box::new(move || {
            job();
            None
        }))
    }

    fn run_job(&self, job: Job) -> Result<(), Error> {
        {
            let (lock, cv) = &*self.shared;
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            if q.idle > 0 {
                q.idle -= 1;
                q.jobs.push_back(job);
                cv.notify_one();
                return Ok(());
            }
        }
        let (shared, max_idle, idle_for) = (self.shared.clone(), self.max_idle, self.idle_for);
        std::thread::Builder::new()
            .name(self.name.to_string())
            .stack_size(crate::THREAD_STACK)
            .spawn(move || {
                let mut job = job;
                loop {
                    let deliver = job();
                    match next_job(&shared, max_idle, idle_for, deliver) {
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
        let slot: Slot<T> = Arc::new((Mutex::new(None), Condvar::new()));
        let name = self.name;
        let answer = slot.clone();
        let started = self.run_job(Box::new(move || {
            let r =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
                    Err(Error::internal(format!(
                        "a job on a {name} thread panicked"
                    )))
                });
            Some(Box::new(move || {
                let (lock, cv) = &*answer;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                cv.notify_one();
            }) as Deliver)
        }));
        Pending { slot, started }
    }
}

/// Where a `call`'s answer is put, and the wait for it.
type Slot<T> = Arc<(Mutex<Option<Result<T, Error>>>, Condvar)>;

/// The answer of a job given to `Workers::call`.
pub struct Pending<T> {
    slot: Slot<T>,
    started: Result<(), Error>,
}

impl<T> Pending<T> {
    pub fn wait(self) -> Result<T, Error> {
        self.started?;
        let (lock, cv) = &*self.slot;
        let mut answer = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = answer.take() {
                return r;
            }
            answer = cv.wait(answer).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Waits for the next job for a thread that is done, after delivering
/// the last one's answer; None: exit.
fn next_job(
    shared: &(Mutex<Queue>, Condvar),
    max_idle: usize,
    idle_for: Duration,
    deliver: Option<Deliver>,
) -> Option<Job> {
    let (lock, cv) = shared;
    let stays = {
        let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
        let stays = q.idle + q.jobs.len() < max_idle;
        q.idle += usize::from(stays);
        stays
    };
    if let Some(d) = deliver {
        d();
    }
    if !stays {
        return None;
    }
    let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
    let until = Instant::now() + idle_for;
    loop {
        // A queued job was counted out of `idle` when it was queued.
        if let Some(j) = q.jobs.pop_front() {
            return Some(j);
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            q.idle -= 1;
            return None;
        }
        q = cv
            .wait_timeout(q, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
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
        assert_eq!(threads.len(), 1, "{} threads for 100 jobs", threads.len());
    }

    #[test]
    fn blocked_jobs_get_threads_of_their_own_and_panics_answer() {
        let w = Workers::new("test-worker", 2, Duration::from_millis(50));
        // Five jobs that each wait until all five have started: they can
        // finish only if each got a thread of its own.
        let met = Arc::new((Mutex::new(0usize), Condvar::new()));
        let waits: Vec<_> = (0..5)
            .map(|_| {
                let met = met.clone();
                w.call(move || {
                    let (lock, cv) = &*met;
                    let mut n = lock.lock().unwrap();
                    *n += 1;
                    cv.notify_all();
                    let (n, timeout) = cv
                        .wait_timeout_while(n, Duration::from_secs(5), |n| *n < 5)
                        .unwrap();
                    match timeout.timed_out() {
                        true => Err(Error::internal(format!("only {} jobs ran at once", *n))),
                        false => Ok(()),
                    }
                })
            })
            .collect();
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
