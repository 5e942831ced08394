//! A counting global allocator proves the engines allocate nothing per message in steady state: after a warm-up,
//! a thousand full RPC round trips (client send, DC decrypt and answer, client result) make zero heap allocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::session::{Clock, Event, MsgKind, Session, SessionConfig};
use mtproto_sansio::time::{Instant, UnixTime};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Counts only on the measuring thread (the test harness's other threads allocate on their own schedule).
    static MEASURING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count() {
    if MEASURING.with(std::cell::Cell::get) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

type E = Session<8192, 8192, 16>;

#[test]
fn zero_allocations_per_message_in_steady_state() {
    let mut now = Instant::from_secs(1000);
    let mut rng = StdRng::seed_from_u64(5);
    let key = AuthKey::from_bytes([7u8; 256]);
    let clock = Clock::from_unix_hint(now, UnixTime(1_700_000_000));
    let mut s = Box::new(E::server(SessionConfig::DEFAULT, key.clone(), clock, now, &mut rng));
    s.approve_first_session(); // the only engine under this key
    let mut c = Box::new(E::client(SessionConfig::DEFAULT, key, 0, clock, now, &mut rng));
    let mut out = Box::new([0u8; 8192 + 64]);
    let body = [0x0d, 0xf0, 0xad, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let mut results = 0usize;
    let mut round = |c: &mut E, s: &mut E, now: Instant, rng: &mut StdRng, out: &mut [u8]| {
        c.send(now, &body, MsgKind::Query).unwrap();
        for _ in 0..3 {
            while let Some(p) = c.poll_packet(now, rng, out).unwrap() {
                let _ = s.handle_packet(now, &out[..p.len]);
                let mut req = [None; 4];
                let mut n = 0;
                while let Some(ev) = s.poll_event() {
                    if let Event::Request { msg_id, .. } = ev {
                        req[n % 4] = Some(msg_id);
                        n += 1;
                    }
                }
                for r in req.into_iter().flatten() {
                    s.answer(now, r, &body).unwrap();
                }
            }
            while let Some(p) = s.poll_packet(now, rng, out).unwrap() {
                let _ = c.handle_packet(now, &out[..p.len]);
                while let Some(ev) = c.poll_event() {
                    if let Event::RpcResult { body: b, .. } = ev {
                        assert_eq!(b, &body);
                        results += 1;
                    }
                }
            }
        }
    };
    // Warm-up: salt exchange, new session, future salts, first pings.
    for _ in 0..100 {
        now = now.saturating_add(core::time::Duration::from_millis(700));
        c.handle_timeout(now);
        s.handle_timeout(now);
        round(&mut c, &mut s, now, &mut rng, &mut out[..]);
    }
    MEASURING.with(|m| m.set(true));
    // The counter sees this thread's allocations.
    let probe_before = ALLOCS.load(Ordering::SeqCst);
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64)));
    assert_eq!(ALLOCS.load(Ordering::SeqCst), probe_before + 1);
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..1000 {
        now = now.saturating_add(core::time::Duration::from_millis(700));
        c.handle_timeout(now);
        s.handle_timeout(now);
        round(&mut c, &mut s, now, &mut rng, &mut out[..]);
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    MEASURING.with(|m| m.set(false));
    assert_eq!(after - before, 0, "heap allocations in steady state");
    assert_eq!(results, 1100);
}
