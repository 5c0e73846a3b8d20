//! `ipc`'s allocator: a bump arena in front of the system allocator.
//!
//! An `ipc` command is a short process that makes a few thousand small
//! allocations (the config's JSON tree and oci-spec's types, messages,
//! paths) and exits. From the arena an allocation is one atomic add; the
//! last block handed out can grow in place and, when freed, is taken back
//! (a stack, which is how a parser's temporaries come and go); any other
//! free is nothing. What does not fit, and anything large, goes to the
//! system allocator, so a long-lived `ipc` (`events`, a foreground `run` of
//! a long container) that uses the arena up lives on the system allocator
//! from then on: its memory stays bounded.
//!
//! The arena is zeroed `.bss`: its pages cost nothing until touched, and
//! `alloc_zeroed` clears only what was handed out before. The launcher's
//! child is a fork: it gets its own copy of the arena and of the offsets,
//! and there is no lock to inherit.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The arena's size (virtual: only what is used is ever touched).
const SIZE: usize = 4 << 20;
/// Every block is aligned to at least this, as malloc's are (max_align_t):
/// blocks reach C code that counts on it. The unwinder's exception object
/// is one: Rust asks for 8, LLVM's libunwind moves it with 16-byte aligned
/// SSE stores, and a panic segfaulted in `_Unwind_RaiseException`.
const MIN_ALIGN: usize = 16;
/// Larger allocations go to the system allocator (the 1 MiB receive
/// buffers among them), so that the arena serves the many small ones.
const LARGEST: usize = 64 << 10;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

pub struct Arena {
    space: Space,
    /// The end of the last block handed out: the next one starts here.
    used: AtomicUsize,
    /// The furthest end ever handed out: bytes below it may have been
    /// written, bytes above it are still zero.
    dirty: AtomicUsize,
}

// SAFETY: a byte of `space` belongs to at most one live block: blocks are
// cut at `used` by compare-and-swap, and `used` only moves back over the
// last block, by its owner, when that block is freed or resized.
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            space: Space(UnsafeCell::new([0; SIZE])),
            used: AtomicUsize::new(0),
            dirty: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.space.0.get() as usize
    }

    fn owns(&self, p: *mut u8) -> bool {
        (p as usize).wrapping_sub(self.base()) < SIZE
    }

    /// `layout`'s block from the arena, or None when it does not fit;
    /// with the number of its first bytes that may have been written.
    fn bump(&self, layout: Layout) -> Option<(*mut u8, usize)> {
        if layout.size() > LARGEST {
            return None;
        }
        let base = self.base();
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let start = (base + used).next_multiple_of(layout.align().max(MIN_ALIGN)) - base;
            let end = start.checked_add(layout.size()).filter(|&e| e <= SIZE)?;
            match self
                .used
                .compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let dirty = self.dirty.fetch_max(end, Ordering::Relaxed);
                    let written = dirty.saturating_sub(start).min(layout.size());
                    return Some(((base + start) as *mut u8, written));
                }
                Err(now) => used = now,
            }
        }
    }

    /// Moves the end of the arena from `from` to `to` if the block ending
    /// at `from` is still the last one handed out.
    fn move_end(&self, from: usize, to: usize) -> bool {
        self.used
            .compare_exchange(from, to, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: blocks from `bump` are inside `space`, aligned as asked, and
// never handed out twice; every other block is the system allocator's and
// goes back to it (`owns` tells them apart by address).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some((p, _)) => p,
            None => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some((p, written)) => {
                std::ptr::write_bytes(p, 0, written);
                p
            }
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if !self.owns(p) {
            return System.dealloc(p, layout);
        }
        // The last block goes back to the arena; any other stays used.
        let start = p as usize - self.base();
        self.move_end(start + layout.size(), start);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            return System.realloc(p, layout, new_size);
        }
        let start = p as usize - self.base();
        let end = start + layout.size();
        // The last block grows (or shrinks) where it is.
        if new_size <= LARGEST && start + new_size <= SIZE && self.move_end(end, start + new_size) {
            self.dirty.fetch_max(start + new_size, Ordering::Relaxed);
            return p;
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(p, new, layout.size().min(new_size));
            self.dealloc(p, layout);
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second arena, on the heap (4 MiB would not fit a test's stack).
    fn leaked() -> &'static Arena {
        // SAFETY: an all-zero Arena is `Arena::new()`.
        Box::leak(unsafe { Box::<Arena>::new_zeroed().assume_init() })
    }

    #[test]
    fn small_blocks_come_from_the_arena_aligned_and_large_ones_do_not() {
        let a = leaked();
        unsafe {
            let l = Layout::from_size_align(24, 8).unwrap();
            let p = a.alloc(l);
            assert!(a.owns(p));
            // malloc's alignment whatever was asked (C code counts on it).
            for align in [1, 2, 8] {
                let b = a.alloc(Layout::from_size_align(3, align).unwrap());
                assert!(
                    (b as usize).is_multiple_of(MIN_ALIGN),
                    "{b:p} for align {align}"
                );
            }
            let q = a.alloc(Layout::from_size_align(1, 64).unwrap());
            assert!(a.owns(q) && (q as usize).is_multiple_of(64) && q as usize >= p as usize + 24);
            std::ptr::write_bytes(p, 7, 24);
            // Not the last block (q came after it): moved.
            let r = a.realloc(p, l, 48);
            assert!(a.owns(r) && r != p);
            assert_eq!(std::slice::from_raw_parts(r, 24), &[7u8; 24]);
            let z = a.alloc_zeroed(Layout::from_size_align(100, 1).unwrap());
            assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
            let big = Layout::from_size_align(LARGEST + 1, 8).unwrap();
            let b = a.alloc(big);
            assert!(!b.is_null() && !a.owns(b));
            a.dealloc(b, big);
            a.dealloc(r, Layout::from_size_align(48, 8).unwrap());
        }
    }

    #[test]
    fn the_last_block_grows_in_place_and_comes_back_cleared() {
        let a = leaked();
        unsafe {
            let l = Layout::from_size_align(16, 8).unwrap();
            let p = a.alloc(l);
            std::ptr::write_bytes(p, 0xAB, 16);
            let grown = a.realloc(p, l, 4000);
            assert_eq!(grown, p, "the last block grows where it is");
            assert_eq!(std::slice::from_raw_parts(grown, 16), &[0xABu8; 16]);
            std::ptr::write_bytes(grown, 0xCD, 4000);
            a.dealloc(grown, Layout::from_size_align(4000, 8).unwrap());
            // Its bytes are handed out again, and cleared when asked.
            let z = a.alloc_zeroed(Layout::from_size_align(5000, 8).unwrap());
            assert_eq!(z, p);
            assert!(std::slice::from_raw_parts(z, 5000).iter().all(|&b| b == 0));
            // A block freed out of order stays used.
            let x = a.alloc(l);
            let y = a.alloc(l);
            a.dealloc(x, l);
            assert!(a.alloc(l) as usize > y as usize);
        }
    }

    #[test]
    fn a_full_arena_hands_over_to_the_system_allocator() {
        let a = leaked();
        let l = Layout::from_size_align(LARGEST, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..SIZE / LARGEST + 2)
            .map(|_| unsafe { a.alloc(l) })
            .collect();
        let from_system = blocks.iter().filter(|&&p| !a.owns(p)).count();
        assert_eq!(from_system, 2);
        for p in blocks {
            unsafe { a.dealloc(p, l) };
        }
    }
}
