//! Two secret-chat sides through a simulated relay with loss, duplication, reordering and delay (seeded): both
//! deliver the same seq-ordered stream, every gap is repaired, re-keys complete (also when both start one at once).
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

/// Runs a chaotic phase, then a clean phase until both sides are quiet; returns the logs and the chats.
fn run(seed: u64, msgs: usize, loss: f64, dup: f64, delay: u64) -> (Chat, Chat, [Log; 2], [Vec<Vec<u8>>; 2]) {
    run_with(seed, msgs, loss, dup, delay, &[])
}

fn run_with(
    seed: u64,
    msgs: usize,
    loss: f64,
    dup: f64,
    delay: u64,
    restarts: &[usize],
) -> (Chat, Chat, [Log; 2], [Vec<Vec<u8>>; 2]) {
    let mut r = rng(seed);
    let (a, b) = pair(&mut r);
    let mut chats = [a, b];
    let mut relay = Relay::new(seed ^ 0xdead, loss, dup, delay);
    let mut logs = [Log::default(), Log::default()];
    let mut sent: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    let mut now_ms = 0u64;
    let mut buf = vec![0u8; 4096];
    let step =
        |chats: &mut [Chat; 2], relay: &mut Relay, logs: &mut [Log; 2], now_ms: u64, r: &mut rand::rngs::StdRng| {
            let now = Instant::from_millis(now_ms);
            for side in 0..2 {
                let mut out = Vec::new();
                flush(&mut chats[side], r, now, &mut out);
                for p in out {
                    relay.send(now_ms, 1 - side, p);
                }
            }
            for (to, pkt) in relay.due(now_ms) {
                deliver(&mut chats[to], now, pkt, &mut logs[to]);
            }
        };
    for i in 0..msgs {
        if restarts.contains(&i) {
            // Role B goes down and comes back from its persisted bytes (which must round-trip exactly).
            let mut saved = vec![0u8; Chat::persisted_len()];
            assert_eq!(chats[1].persist(&mut saved).unwrap(), saved.len());
            let restored = Chat::restore(&saved, &mut r).unwrap();
            let mut again = vec![0u8; Chat::persisted_len()];
            restored.persist(&mut again).unwrap();
            assert!(saved == again, "persisted state does not round-trip");
            chats[1] = restored;
        }
        let side = rand::RngExt::random_range(&mut r, 0..2usize);
        let body = format!("msg {i} from {side}").into_bytes();
        let s = chats[side].encrypt(&mut r, &text(i as i64, &body), &mut buf).unwrap();
        relay.send(now_ms, 1 - side, buf[..s.len].to_vec());
        sent[side].push(body);
        now_ms += 200;
        step(&mut chats, &mut relay, &mut logs, now_ms, &mut r);
    }
    // Clean phase: no loss; one last message each so trailing losses show up as gaps; wait out resend retries.
    relay.loss = 0.0;
    relay.dup = 0.0;
    for side in 0..2 {
        let body = format!("final from {side}").into_bytes();
        let s = chats[side]
            .encrypt(&mut r, &text(-1 - side as i64, &body), &mut buf)
            .unwrap();
        relay.send(now_ms, 1 - side, buf[..s.len].to_vec());
        sent[side].push(body);
    }
    for _ in 0..2000 {
        now_ms += 50;
        step(&mut chats, &mut relay, &mut logs, now_ms, &mut r);
        let quiet = relay.in_flight.is_empty()
            && chats.iter().all(|c| c.held_count() == 0 && !c.rekey_in_progress())
            && chats[0].seq().0 == chats[1].seq().1
            && chats[1].seq().0 == chats[0].seq().1;
        if quiet {
            break;
        }
    }
    let [a, b] = chats;
    (a, b, logs, sent)
}

fn check(a: &Chat, b: &Chat, logs: &[Log; 2], sent: &[Vec<Vec<u8>>; 2]) {
    // Every message of each side was delivered exactly once, in seq order.
    assert_eq!(logs[1].seqs, (0..a.seq().0).collect::<Vec<_>>());
    assert_eq!(logs[0].seqs, (0..b.seq().0).collect::<Vec<_>>());
    assert_eq!(logs[1].texts, sent[0]);
    assert_eq!(logs[0].texts, sent[1]);
    assert_eq!(a.key_fingerprint(), b.key_fingerprint());
    assert!(a.aborted().is_none() && b.aborted().is_none());
}

#[test]
fn clean_link_delivers_in_order() {
    let (a, b, logs, sent) = run(1, 50, 0.0, 0.0, 0);
    check(&a, &b, &logs, &sent);
    assert_eq!(logs[0].resend_requests + logs[1].resend_requests, 0);
}

#[test]
fn lossy_reordering_duplicating_link_repairs_every_gap() {
    for seed in 0..4u64 {
        let (a, b, logs, sent) = run(100 + seed, 150, 0.08, 0.08, 300);
        check(&a, &b, &logs, &sent);
        // The link was bad enough to need repairs and to trigger at least one re-key (>100 messages per key).
        assert!(logs[0].held + logs[1].held > 0, "seed {seed}: no gap happened");
        assert!(
            logs[0].resend_requests + logs[1].resend_requests > 0,
            "seed {seed}: no resend request"
        );
        assert!(
            logs[0].duplicates + logs[1].duplicates > 0,
            "seed {seed}: no duplicate seen"
        );
        assert!(
            logs[0].rekeys >= 1 && logs[1].rekeys >= 1,
            "seed {seed}: no re-key completed"
        );
        assert!(!a.has_old_key() && !b.has_old_key());
    }
}

#[test]
fn rekeys_repeat_over_a_long_chat() {
    let (a, b, logs, sent) = run(7, 450, 0.02, 0.02, 100);
    check(&a, &b, &logs, &sent);
    assert!(logs[0].rekeys >= 3, "only {} re-keys", logs[0].rekeys);
}

#[test]
fn concurrent_rekey_requests_resolve() {
    for seed in 0..6u64 {
        let mut r = rng(500 + seed);
        let (mut a, mut b) = pair(&mut r);
        let mut buf = vec![0u8; 4096];
        // Get past the layer notifications so both have encrypted something.
        let mut la = Log::default();
        let mut lb = Log::default();
        let mut pa = Vec::new();
        let mut pb = Vec::new();
        flush(&mut a, &mut r, Instant::ZERO, &mut pa);
        flush(&mut b, &mut r, Instant::ZERO, &mut pb);
        for p in pa.drain(..) {
            deliver(&mut b, Instant::ZERO, p, &mut lb);
        }
        for p in pb.drain(..) {
            deliver(&mut a, Instant::ZERO, p, &mut la);
        }
        a.start_rekey(&mut r).unwrap();
        b.start_rekey(&mut r).unwrap();
        for round in 0..10 {
            let now = Instant::from_secs(round);
            flush(&mut a, &mut r, now, &mut pa);
            flush(&mut b, &mut r, now, &mut pb);
            for p in pa.drain(..) {
                deliver(&mut b, now, p, &mut lb);
            }
            for p in pb.drain(..) {
                deliver(&mut a, now, p, &mut la);
            }
        }
        assert_eq!(la.rekeys, 1, "seed {seed}");
        assert_eq!(lb.rekeys, 1, "seed {seed}");
        assert_eq!(a.key_fingerprint(), b.key_fingerprint());
        assert!(!a.rekey_in_progress() && !b.rekey_in_progress());
        // Messages still flow under the new key.
        let s = a.encrypt(&mut r, &text(9, b"after"), &mut buf).unwrap();
        deliver(&mut b, Instant::from_secs(20), buf[..s.len].to_vec(), &mut lb);
        assert_eq!(lb.texts.last().unwrap(), b"after");
    }
}

#[test]
fn persisted_and_restored_side_carries_on() {
    // Restarts land in the middle of gaps, re-keys and queued retransmissions.
    let restarts: Vec<usize> = (10..300).step_by(23).collect();
    let (a, b, logs, sent) = run_with(31, 300, 0.06, 0.05, 300, &restarts);
    check(&a, &b, &logs, &sent);
    assert!(logs[0].rekeys >= 2);
}
