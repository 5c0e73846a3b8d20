//! The exit watcher: one thread waiting on the pidfd of every live
//! container (and of every `ipc create` still creating). When one becomes
//! readable the process has exited: if it is init's child (containers
//! started with `run --detach` are re-parented to init, a child subreaper),
//! init reaps it and keeps its exit status; either way the container
//! becomes stopped.
//!
//! The pidfds sit in one epoll set: watching a process is one epoll_ctl,
//! and the thread sleeps until one exits. It used to wake every 50 ms and
//! poll(2) a fresh duplicate of every pidfd: with 300 containers running
//! that was 600 dup/close calls and a 300-fd poll 20 times a second while
//! nothing happened, and an exit was seen up to 50 ms late.

use super::Lifecycle;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rustix::process::{waitid, WaitId, WaitIdOptions};
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

/// The processes watched, by container id.
pub struct Watched {
    epoll: Epoll,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<String, Entry>,
    /// Each watch's epoll event data names its container.
    by_token: HashMap<u64, String>,
    next_token: u64,
}

struct Entry {
    pid: i32,
    fd: Arc<OwnedFd>,
    token: u64,
}

/// A watched process that exited.
pub struct Exited {
    pub id: String,
    pub pid: i32,
    pub pidfd: Arc<OwnedFd>,
}

impl Inner {
    fn remove(&mut self, epoll: &Epoll, id: &str) -> Option<Entry> {
        let e = self.by_id.remove(id)?;
        self.by_token.remove(&e.token);
        // Closing the last copy of the pidfd would drop it from the set
        // too, but `on_exit` may still hold one.
        let _ = epoll.delete(e.fd.as_fd());
        Some(e)
    }
}

impl Watched {
    pub fn new() -> std::io::Result<Watched> {
        Ok(Watched {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches process `pid` (its pidfd `fd`) for container `id`, in place
    /// of any process watched for it before.
    pub fn insert(&self, id: &str, pid: i32, fd: OwnedFd) {
        let mut inner = self.lock();
        inner.remove(&self.epoll, id);
        let token = inner.next_token;
        inner.next_token += 1;
        if let Err(e) = self
            .epoll
            .add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            tracing::error!("cannot watch process {pid} of container {id}: {e}");
            return;
        }
        inner.by_token.insert(token, id.to_string());
        inner.by_id.insert(
            id.to_string(),
            Entry {
                pid,
                fd: Arc::new(fd),
                token,
            },
        );
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(&self.epoll, id);
    }

    /// Waits until watched processes exit; each is no longer watched once
    /// returned.
    fn wait(&self) -> Vec<Exited> {
        let mut events = [EpollEvent::empty(); 32];
        let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return vec![],
            Err(e) => {
                tracing::error!("exit watcher: epoll_wait: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                return vec![];
            }
        };
        let mut inner = self.lock();
        events[..n]
            .iter()
            .filter_map(|ev| {
                // Unwatched (or watched anew) since epoll_wait returned.
                let id = inner.by_token.get(&ev.data())?.clone();
                let e = inner.remove(&self.epoll, &id)?;
                Some(Exited {
                    id,
                    pid: e.pid,
                    pidfd: e.fd,
                })
            })
            .collect()
    }
}

pub fn spawn(lc: Arc<Lifecycle>) {
    std::thread::Builder::new()
        .name("exit-watcher".into())
        .stack_size(libipc::THREAD_STACK)
        .spawn(move || loop {
            for x in lc.watched.wait() {
                lc.on_exit(&x.id, x.pid, &x.pidfd);
            }
        })
        .expect("start the exit watcher");
}

/// Reaps the process if it is our child; its exit code (128+signal when
/// killed, as shells and runc report it).
pub fn reap(fd: &OwnedFd) -> Option<i32> {
    let st = waitid(
        WaitId::PidFd(fd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
    )
    .ok()??;
    if let Some(code) = st.exit_status() {
        return Some(code);
    }
    st.terminating_signal().map(|s| 128 + s)
}
