//! Shared helpers for the secret-chat tests: chat setup and a lossy, duplicating, reordering relay.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mtproto_sansio::e2e::wire::{Action, DecryptedMessage, PlainMessage};
use mtproto_sansio::e2e::{DhConfig, DhConfigCache, Event, Received, SecretChat};
use mtproto_sansio::time::Instant;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub type Chat = SecretChat<1024, 64, 64>;
pub const CHAT_ID: i32 = 4242;

pub fn prime() -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dh_prime.json"
    )))
    .unwrap();
    hex::decode(v["dh_prime_hex"].as_str().unwrap()).unwrap()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Runs the initial exchange; returns (A, B).
pub fn pair_with<const M: usize, const H: usize, const L: usize>(
    rng: &mut StdRng,
    chat_id: i32,
) -> (SecretChat<M, H, L>, SecretChat<M, H, L>) {
    let p = prime();
    let random = [0x5au8; 256];
    let cfg = DhConfig {
        version: 7,
        g: 3,
        p: Some(&p),
        random: &random,
    };
    let mut ca: DhConfigCache = DhConfigCache::new();
    let mut cb: DhConfigCache = DhConfigCache::new();
    let (req, g_a) = SecretChat::<M, H, L>::request(rng, &mut ca, &cfg).unwrap();
    let (b, g_b, fp) = SecretChat::<M, H, L>::accept(rng, Instant::ZERO, chat_id, &mut cb, &cfg, &g_a).unwrap();
    let a = req.complete::<M, H, L>(Instant::ZERO, chat_id, &g_b, fp).unwrap();
    (a, b)
}

pub fn pair(rng: &mut StdRng) -> (Chat, Chat) {
    pair_with(rng, CHAT_ID)
}

pub fn text(random_id: i64, body: &[u8]) -> DecryptedMessage<'_> {
    DecryptedMessage::Message(PlainMessage::text(random_id, 0, body))
}

/// What one side saw, in delivery order.
#[derive(Default, Debug)]
pub struct Log {
    /// Raw out_seq_no of every delivered message.
    pub seqs: Vec<u32>,
    /// Texts of delivered ordinary messages.
    pub texts: Vec<Vec<u8>>,
    pub rekeys: usize,
    pub resend_requests: usize,
    pub held: usize,
    pub duplicates: usize,
    pub rejected: usize,
}

fn note(log: &mut Log, seq: u32, msg: &DecryptedMessage<'_>) {
    log.seqs.push(seq);
    match msg {
        DecryptedMessage::Message(m) => log.texts.push(m.message.to_vec()),
        DecryptedMessage::Service {
            action: Action::Resend { .. },
            ..
        } => log.resend_requests += 1,
        _ => {}
    }
}

/// Feeds one packet to `chat` and drains its events into `log`.
pub fn deliver<const M: usize, const H: usize, const L: usize>(
    chat: &mut SecretChat<M, H, L>,
    now: Instant,
    mut pkt: Vec<u8>,
    log: &mut Log,
) {
    match chat.decrypt(now, CHAT_ID, &mut pkt) {
        Ok(Received::Message(d)) => note(log, d.out_seq_no, &d.message),
        Ok(Received::Held) => log.held += 1,
        Ok(Received::Duplicate) => log.duplicates += 1,
        Ok(Received::Deferred) => log.held += 1,
        // A late copy under a key that was already dropped cannot be read; its content is repaired by resend.
        Err(mtproto_sansio::e2e::E2eError::Rejected) => log.rejected += 1,
        Err(e) => panic!("decrypt failed: {e:?}"),
    }
    while let Some(ev) = chat.poll_event() {
        match ev {
            Event::Message(d) => note(log, d.out_seq_no, &d.message),
            Event::RekeyDone(_) => log.rekeys += 1,
            Event::Aborted(r) => panic!("aborted: {r:?}"),
            _ => {}
        }
    }
}

/// Drains `poll_transmit` into `out_pkts`.
pub fn flush<const M: usize, const H: usize, const L: usize>(
    chat: &mut SecretChat<M, H, L>,
    rng: &mut StdRng,
    now: Instant,
    out_pkts: &mut Vec<Vec<u8>>,
) {
    let mut buf = vec![0u8; 4096];
    while let Some(s) = chat.poll_transmit(rng, now, &mut buf).unwrap() {
        out_pkts.push(buf[..s.len].to_vec());
    }
}

/// A relay between A (index 0) and B (index 1) with loss, duplication and random delay.
pub struct Relay {
    pub rng: StdRng,
    pub loss: f64,
    pub dup: f64,
    pub max_delay_ms: u64,
    /// (deliver at, to side, bytes)
    pub in_flight: Vec<(u64, usize, Vec<u8>)>,
}

impl Relay {
    pub fn new(seed: u64, loss: f64, dup: f64, max_delay_ms: u64) -> Self {
        Relay {
            rng: StdRng::seed_from_u64(seed),
            loss,
            dup,
            max_delay_ms,
            in_flight: Vec::new(),
        }
    }

    pub fn send(&mut self, now_ms: u64, to: usize, pkt: Vec<u8>) {
        if self.rng.random_bool(self.loss) {
            return;
        }
        let copies = if self.rng.random_bool(self.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let d = self.rng.random_range(0..=self.max_delay_ms);
            self.in_flight.push((now_ms + d, to, pkt.clone()));
        }
    }

    /// Packets due by `now_ms`, in delivery-time order (ties in arbitrary but seeded order).
    pub fn due(&mut self, now_ms: u64) -> Vec<(usize, Vec<u8>)> {
        let mut due = Vec::new();
        let mut keep = Vec::new();
        for p in self.in_flight.drain(..) {
            if p.0 <= now_ms { due.push(p) } else { keep.push(p) }
        }
        self.in_flight = keep;
        due.sort_by_key(|p| p.0);
        due.into_iter().map(|p| (p.1, p.2)).collect()
    }
}
