//! Random schedules for the re-key automaton (item 71): both sides start re-keys at random moments (often at once),
//! send messages and receive them in random order (no loss), for many seeds. Every schedule must end with both sides
//! on the same key, no exchange open, no old key kept, and every message delivered once in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::needless_range_loop
)]

mod e2e_common;
use e2e_common::*;
use mtproto_sansio::time::Instant;
use rand::RngExt;

#[test]
fn chk_071_random_rekey_schedules_converge() {
    let mut total_rekeys = 0;
    for seed in 0..60u64 {
        let mut r = rng(9000 + seed);
        let (a, b) = pair(&mut r);
        let mut chats = [a, b];
        let mut logs = [Log::default(), Log::default()];
        let mut sent: [Vec<Vec<u8>>; 2] = [vec![], vec![]];
        let mut wire: [Vec<Vec<u8>>; 2] = [vec![], vec![]]; // packets in flight towards side i
        let mut buf = vec![0u8; 4096];
        let now = Instant::ZERO;
        for step in 0..60 {
            let side = r.random_range(0..2usize);
            match r.random_range(0..6u32) {
                0 => {
                    let _ = chats[side].start_rekey(&mut r);
                }
                1 => {
                    let _ = chats[0].start_rekey(&mut r);
                    let _ = chats[1].start_rekey(&mut r);
                }
                2 | 3 => {
                    let body = format!("{seed}/{step}").into_bytes();
                    let s = chats[side].encrypt(&mut r, &text(step, &body), &mut buf).unwrap();
                    wire[1 - side].push(buf[..s.len].to_vec());
                    sent[side].push(body);
                }
                _ => {
                    // Deliver a random in-flight packet (reordering).
                    if !wire[side].is_empty() {
                        let i = r.random_range(0..wire[side].len());
                        let p = wire[side].remove(i);
                        deliver(&mut chats[side], now, p, &mut logs[side]);
                    }
                }
            }
            for s in 0..2 {
                let mut out = vec![];
                flush(&mut chats[s], &mut r, now, &mut out);
                wire[1 - s].extend(out);
            }
        }
        // Drain in random order until quiet.
        for _ in 0..10_000 {
            if wire[0].is_empty() && wire[1].is_empty() {
                break;
            }
            let side = if wire[0].is_empty() {
                1
            } else if wire[1].is_empty() {
                0
            } else {
                r.random_range(0..2usize)
            };
            let i = r.random_range(0..wire[side].len());
            let p = wire[side].remove(i);
            deliver(&mut chats[side], now, p, &mut logs[side]);
            for s in 0..2 {
                let mut out = vec![];
                flush(&mut chats[s], &mut r, now, &mut out);
                wire[1 - s].extend(out);
            }
        }
        let [a, b] = &chats;
        assert_eq!(a.key_fingerprint(), b.key_fingerprint(), "seed {seed}");
        assert!(!a.rekey_in_progress() && !b.rekey_in_progress(), "seed {seed}");
        assert_eq!(logs[1].texts, sent[0], "seed {seed}");
        assert_eq!(logs[0].texts, sent[1], "seed {seed}");
        assert_eq!(logs[1].seqs, (0..a.seq().0).collect::<Vec<_>>());
        assert_eq!(logs[0].seqs, (0..b.seq().0).collect::<Vec<_>>());
        assert_eq!(logs[0].rekeys, logs[1].rekeys, "seed {seed}");
        total_rekeys += logs[0].rekeys;
    }
    assert!(total_rekeys >= 60, "schedules completed only {total_rekeys} re-keys");
}
