//! The exit watcher: one thread polling the pidfd of every live container
//! (and of every `ipc create` still creating). When one becomes readable the
//! process has exited: if it is init's child (containers started with
//! `run --detach` are re-parented to init, a child subreaper), init reaps it
//! and keeps its exit status; either way the container becomes stopped.

use super::Lifecycle;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::process::{waitid, WaitId, WaitIdOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

pub fn spawn(lc: Arc<Lifecycle>) {
    std::thread::Builder::new()
        .name("exit-watcher".into())
        .stack_size(libipc::THREAD_STACK)
        .spawn(move || loop {
            watch_once(&lc);
        })
        .expect("start the exit watcher");
}

fn watch_once(lc: &Lifecycle) {
    // Duplicates, so that the table is not locked while polling.
    let watched: Vec<(String, i32, OwnedFd)> = lc
        .pidfds
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(id, (pid, fd))| fd.try_clone().ok().map(|d| (id.clone(), *pid, d)))
        .collect();
    let ts = Timespec {
        tv_sec: 0,
        tv_nsec: 50_000_000,
    };
    if watched.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(50));
        return;
    }
    let mut fds: Vec<PollFd> = watched
        .iter()
        .map(|(_, _, f)| PollFd::new(f, PollFlags::IN))
        .collect();
    if !matches!(poll(&mut fds, Some(&ts)), Ok(n) if n > 0) {
        return;
    }
    let exited: Vec<usize> = fds
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.revents().is_empty())
        .map(|(i, _)| i)
        .collect();
    for i in exited {
        let (id, pid, fd) = &watched[i];
        {
            // Stop watching it, unless the entry already moved to another pid.
            let mut map = lc.pidfds.lock().unwrap();
            if map.get(id).is_some_and(|(p, _)| p == pid) {
                map.remove(id);
            }
        }
        lc.on_exit(id, *pid, fd);
    }
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
