//! One lock per container id: requests on one container are serialized,
//! requests on different containers run side by side.
//!
//! A lock nobody holds or waits for is dropped from the table, at a sweep
//! each time the table has doubled: ids are usually used once (engines
//! make a new one per container), and the table used to keep every id it
//! had ever seen, for the life of init.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Fewer entries than this are never swept.
const MIN_SWEEP: usize = 64;

pub struct IdLocks {
    inner: Mutex<Inner>,
}

struct Inner {
    map: HashMap<String, Arc<Mutex<()>>>,
    sweep_at: usize,
}

impl Default for IdLocks {
    fn default() -> Self {
        IdLocks {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP,
            }),
        }
    }
}

impl IdLocks {
    /// The lock of container `id` (lock it to act on the container).
    pub fn get(&self, id: &str) -> Arc<Mutex<()>> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.map.len() >= inner.sweep_at {
            // Clones are only made here, under this mutex: a count of one
            // means no request holds the lock or waits for it, so a later
            // request may as well get a new one.
            inner.map.retain(|_, l| Arc::strong_count(l) > 1);
            inner.sweep_at = (2 * inner.map.len()).max(MIN_SWEEP);
        }
        inner.map.entry(id.to_string()).or_default().clone()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_of_ids_no_longer_used_are_dropped_and_held_ones_kept() {
        let locks = IdLocks::default();
        let held = locks.get("busy");
        let guard = held.lock().unwrap();
        for i in 0..10_000 {
            drop(locks.get(&format!("c{i}")));
        }
        assert!(locks.len() <= 2 * MIN_SWEEP, "{} locks kept", locks.len());
        // "busy" survived every sweep: the same mutex, still locked.
        let again = locks.get("busy");
        assert!(Arc::ptr_eq(&held, &again));
        assert!(again.try_lock().is_err());
        drop(guard);
    }

    #[test]
    fn one_id_gets_one_lock_while_it_is_held() {
        let locks = IdLocks::default();
        let a = locks.get("x");
        let b = locks.get("x");
        assert!(Arc::ptr_eq(&a, &b));
    }
}
