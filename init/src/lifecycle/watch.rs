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
use libipc::epoll_map::EpollMap;
use rustix::process::{waitid, WaitId, WaitIdOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// A watched process: its pid and pidfd.
pub struct Proc {
    pid: i32,
    fd: OwnedFd,
}

impl AsFd for Proc {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The processes watched, by container id.
pub struct Watched(EpollMap<Proc>);

impl Watched {
    pub fn new() -> nix::Result<Watched> {
        EpollMap::new().map(Watched)
    }

    /// Watches process `pid` (its pidfd `fd`) for container `id`, in place
    /// of any process watched for it before.
    pub fn insert(&self, id: &str, pid: i32, fd: OwnedFd) {
        if let Err(e) = self.0.insert(id, Proc { pid, fd }) {
            tracing::error!("cannot watch process {pid} of container {id}: {e}");
        }
    }

    pub fn remove(&self, id: &str) {
        self.0.remove(id);
    }

    /// Waits until watched processes exit; each is no longer watched once
    /// returned (with its container's id).
    fn wait(&self) -> Vec<(String, Proc)> {
        let fired = self.0.wait().unwrap_or_else(|e| {
            tracing::error!("exit watcher: epoll_wait: {e}");
            std::thread::sleep(std::time::Duration::from_millis(100));
            vec![]
        });
        fired
            .into_iter()
            .filter_map(|f| Some((f.key.clone(), self.0.remove_fired(&f)?)))
            .collect()
    }
}

pub fn spawn(lc: Arc<Lifecycle>) {
    std::thread::Builder::new()
        .name("exit-watcher".into())
        .stack_size(libipc::THREAD_STACK)
        .spawn(move || loop {
            for (id, p) in lc.watched.wait() {
                lc.on_exit(&id, p.pid, &p.fd);
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

/// Has the process behind this pidfd exited? (A pidfd is readable once it
/// has; asked without waiting.)
pub fn exited(fd: &OwnedFd) -> bool {
    use rustix::event::{poll, PollFd, PollFlags};
    let mut fds = [PollFd::new(fd, PollFlags::IN)];
    match poll(&mut fds, Some(&rustix::event::Timespec::default())) {
        Ok(n) => n > 0,
        // Unknown: treat as exited, so that nothing is built on it.
        Err(_) => true,
    }
}
