//! Compiled programs cached by the hash of their profile and architecture
//! (compiler::profile_hash). Bounded: when full, the oldest half goes.

use protocol::seccomp::Program;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

const CAPACITY: usize = 256;

#[derive(Default)]
pub struct Cache {
    inner: Mutex<(HashMap<String, Program>, VecDeque<String>)>,
}

impl Cache {
    /// The cached program for `hash`, marked `cached`.
    pub fn get(&self, hash: &str) -> Option<Program> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.get(hash).cloned().map(|mut p| {
            p.cached = true;
            p
        })
    }

    pub fn put(&self, p: &Program) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0.contains_key(&p.hash) {
            return;
        }
        if g.0.len() >= CAPACITY {
            for _ in 0..CAPACITY / 2 {
                if let Some(old) = g.1.pop_front() {
                    g.0.remove(&old);
                }
            }
        }
        g.0.insert(p.hash.clone(), p.clone());
        g.1.push_back(p.hash.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(hash: &str) -> Program {
        Program {
            insns: vec![],
            flags: 0,
            needs_listener: false,
            warnings: vec![],
            hash: hash.into(),
            cached: false,
        }
    }

    #[test]
    fn a_hit_is_marked_cached_and_the_cache_stays_bounded() {
        let c = Cache::default();
        assert!(c.get("a").is_none());
        c.put(&program("a"));
        assert!(c.get("a").unwrap().cached);
        for i in 0..CAPACITY * 2 {
            c.put(&program(&i.to_string()));
        }
        assert!(c.inner.lock().unwrap().0.len() <= CAPACITY);
        assert!(c.get(&(CAPACITY * 2 - 1).to_string()).is_some());
    }
}
