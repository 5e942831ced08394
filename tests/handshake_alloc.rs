//! Proves the handshake allocates nothing: a counting global allocator watches one full client-against-DC
//! handshake (every poll_transmit, handle_packet and DC handle call) on this thread.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use mtproto_sansio::fuzzing::handshake::{Pair, dc_key};
use mtproto_sansio::handshake::{KeyKind, Status};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only allocations made by the test's own thread while this is set are counted (the harness allocates on
    /// other threads).
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if WATCHING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn full_handshake_allocates_nothing() {
    let key = dc_key().unwrap();
    let trusted = [*key.public_key()];
    for kind in [KeyKind::Permanent, KeyKind::Temporary { expires_in: 600 }] {
        let mut pair = Pair::new(&key, &trusted, kind, b"alloc").unwrap();
        // Sanity: the counter works.
        WATCHING.with(|w| w.set(true));
        let probe = vec![1u8; 3];
        WATCHING.with(|w| w.set(false));
        assert!(
            ALLOCATIONS.swap(0, Ordering::Relaxed) >= 1,
            "counting allocator is not counting"
        );
        drop(probe);

        WATCHING.with(|w| w.set(true));
        let status = pair.run();
        WATCHING.with(|w| w.set(false));
        assert_eq!(status, Status::Done);
        assert_eq!(ALLOCATIONS.load(Ordering::Relaxed), 0, "the handshake allocated");
        assert!(pair.client.take_outcome().is_some());
    }
}
