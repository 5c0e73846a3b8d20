//! File descriptors watched for readability by key, in one epoll set:
//! adding or removing one is one epoll_ctl, and a thread sleeps in
//! [`EpollMap::wait`] until some are readable. init's exit watcher keeps
//! the containers' pidfds here, memory-controller its v1 OOM eventfds.
//! (Both used to build a poll(2) over every descriptor: work in the number
//! of containers at each create, delete or wake-up.)
//!
//! Each insert gets a token of its own, so a report about an entry that
//! was replaced after `wait` returned is told apart from the new entry.

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub struct EpollMap<E> {
    epoll: Epoll,
    inner: Mutex<Inner<E>>,
}

struct Inner<E> {
    by_key: HashMap<String, (u64, E)>,
    by_token: HashMap<u64, String>,
    next_token: u64,
}

/// An entry found readable by [`EpollMap::wait`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub key: String,
    token: u64,
}

impl<E: AsFd> Inner<E> {
    fn remove(&mut self, epoll: &Epoll, key: &str) -> Option<E> {
        let (token, entry) = self.by_key.remove(key)?;
        self.by_token.remove(&token);
        // Closing the fd would drop it from the set too, but the caller
        // may keep a copy open.
        let _ = epoll.delete(entry.as_fd());
        Some(entry)
    }

    /// The entry `f` is about, if it was not replaced or removed since.
    fn current(&mut self, f: &Fired) -> Option<&mut E> {
        match self.by_key.get_mut(&f.key) {
            Some((token, entry)) if *token == f.token => Some(entry),
            _ => None,
        }
    }
}

impl<E: AsFd> EpollMap<E> {
    pub fn new() -> nix::Result<Self> {
        Ok(EpollMap {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            inner: Mutex::new(Inner {
                by_key: HashMap::new(),
                by_token: HashMap::new(),
                next_token: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner<E>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Watches `entry`'s fd under `key`, in place of (and returning) the
    /// entry there before. On an error nothing changes.
    pub fn insert(&self, key: &str, entry: E) -> nix::Result<Option<E>> {
        let mut inner = self.lock();
        let token = inner.next_token;
        self.epoll
            .add(entry.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))?;
        inner.next_token += 1;
        let old = inner.remove(&self.epoll, key);
        inner.by_token.insert(token, key.to_string());
        inner.by_key.insert(key.to_string(), (token, entry));
        Ok(old)
    }

    pub fn remove(&self, key: &str) -> Option<E> {
        self.lock().remove(&self.epoll, key)
    }

    /// Removes the entry `f` reports on, unless it was replaced since.
    pub fn remove_fired(&self, f: &Fired) -> Option<E> {
        let mut inner = self.lock();
        inner.current(f)?;
        inner.remove(&self.epoll, &f.key)
    }

    /// Runs `op` on the entry `f` reports on, unless it was replaced since.
    pub fn with_fired<T>(&self, f: &Fired, op: impl FnOnce(&mut E) -> T) -> Option<T> {
        self.lock().current(f).map(op)
    }

    /// Runs `op` on the entry under `key`.
    pub fn with<T>(&self, key: &str, op: impl FnOnce(&mut E) -> T) -> Option<T> {
        self.lock().by_key.get_mut(key).map(|(_, e)| op(e))
    }

    pub fn keys(&self) -> Vec<String> {
        self.lock().by_key.keys().cloned().collect()
    }

    /// Sleeps until watched fds are readable; which (none after a signal).
    /// A level-triggered set: an entry stays readable, and reported, until
    /// its fd is read or the entry removed.
    pub fn wait(&self) -> nix::Result<Vec<Fired>> {
        let mut events = [EpollEvent::empty(); 32];
        let n = match self.epoll.wait(&mut events, EpollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => return Ok(vec![]),
            r => r?,
        };
        let inner = self.lock();
        Ok(events[..n]
            .iter()
            .filter_map(|ev| {
                let key = inner.by_token.get(&ev.data())?;
                Some(Fired {
                    key: key.clone(),
                    token: ev.data(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::eventfd::{EfdFlags, EventFd};

    fn efd() -> EventFd {
        EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK).unwrap()
    }

    #[test]
    fn reports_what_became_readable_and_forgets_what_was_removed() {
        let map = EpollMap::new().unwrap();
        map.insert("a", efd()).unwrap();
        map.insert("b", efd()).unwrap();
        map.insert("c", efd()).unwrap();
        map.with("b", |e| e.arm().unwrap()).unwrap();
        map.with("c", |e| e.arm().unwrap()).unwrap();
        let removed = map.remove("c").unwrap();
        let fired = map.wait().unwrap();
        assert_eq!(
            fired.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(map.with_fired(&fired[0], |e| e.read().unwrap()), Some(1));
        drop(removed);
        let mut keys = map.keys();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn a_report_about_a_replaced_entry_does_not_reach_the_new_one() {
        let map = EpollMap::new().unwrap();
        map.insert("x", efd()).unwrap();
        map.with("x", |e| e.arm().unwrap()).unwrap();
        let fired = map.wait().unwrap();
        let old = map.insert("x", efd()).unwrap();
        assert!(old.is_some(), "the replaced entry is handed back");
        assert_eq!(map.with_fired(&fired[0], |_| ()), None);
        assert!(map.remove_fired(&fired[0]).is_none());
        assert_eq!(map.keys(), ["x"], "the new entry stays");
        // The new one fires on its own.
        map.with("x", |e| e.arm().unwrap()).unwrap();
        let again = map.wait().unwrap();
        assert_eq!(again.len(), 1);
        assert!(map.remove_fired(&again[0]).is_some());
        assert!(map.keys().is_empty());
    }
}
