//! Multi-session batch decryption (`crypto::packet::decrypt_batch`) beside one-at-a-time decryption and its floors,
//! all measured in the same run: `nice cargo bench --bench batch` (append `-- summary` for the summary lines alone;
//! `BATCH_ROUNDS` sets its rounds, `BATCH_KIB` the body size, default 64).
//!
//! Eight packets of eight sessions (each under its own auth key, client to server as a DC receives them), 64 KiB
//! bodies, copied into working buffers first in every variant:
//! - batch: one `decrypt_batch` of the eight;
//! - single: eight `decrypt` calls (the single-stream path: IGE and msg_key hash fused in one pass);
//! - serial floor: eight times IGE decryption then SHA-256 of the plaintext, as two passes (`ige` crate, `sha2`);
//! - the throughput floors no interleaving can beat on one core: SHA-256 alone over the eight plaintexts (it is
//!   not interleaved: `sha2` has no multi-buffer hashing), and AES-256 decryption of the same bytes as independent
//!   blocks (`decrypt_blocks` under one key, the cipher's parallel path), which is what eight chains would cost if
//!   the AES units were never idle.
//!
//! Timings are ns per batch of eight, best of interleaved rounds; ratios compare operations timed in the same rounds.

use std::hint::black_box;
use std::time::Instant;

use aes::Aes256Dec;
use cipher::{Array, BlockCipherDecrypt, KeyInit};
use criterion::{Criterion, Throughput};
use mtproto_sansio::crypto::aes::ige_decrypt;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{
    self, BatchPacket, Direction, MAX_BATCH, MessageHeader, PaddingPolicy, decrypt, decrypt_batch,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const SESSIONS: usize = MAX_BATCH;
const DIR: Direction = Direction::ClientToServer;

struct Fixture {
    keys: Vec<AuthKey>,
    packets: Vec<Vec<u8>>,
    work: Vec<Vec<u8>>,
    aes_key: [u8; 32],
    aes_iv: [u8; 32],
    scheduled: Aes256Dec,
}

impl Fixture {
    fn new(body_len: usize) -> Self {
        let keys: Vec<AuthKey> = (0..SESSIONS)
            .map(|s| {
                AuthKey::from_bytes(core::array::from_fn(|i| {
                    (i as u8).wrapping_mul(31).wrapping_add(s as u8)
                }))
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(1);
        let packets: Vec<Vec<u8>> = keys
            .iter()
            .enumerate()
            .map(|(s, k)| {
                let body: Vec<u8> = (0..body_len).map(|i| (i + s) as u8).collect();
                let header = MessageHeader {
                    salt: 1,
                    session_id: s as u64,
                    msg_id: 0x6777_e5ed_0001_a2b4,
                    seq_no: 1,
                };
                let mut out = vec![0u8; PaddingPolicy::MINIMAL.max_encrypted_len(body_len).unwrap()];
                let n = packet::encrypt_with_policy(k, DIR, &header, &body, PaddingPolicy::MINIMAL, &mut rng, &mut out)
                    .unwrap()
                    .len;
                out.truncate(n);
                out
            })
            .collect();
        let work = packets.clone();
        Fixture {
            keys,
            packets,
            work,
            aes_key: [5; 32],
            aes_iv: [6; 32],
            scheduled: Aes256Dec::new(&[5; 32].into()),
        }
    }

    fn bytes(&self) -> usize {
        self.packets.iter().map(Vec::len).sum()
    }

    fn reset(&mut self) {
        for (w, p) in self.work.iter_mut().zip(&self.packets) {
            w.copy_from_slice(p);
        }
    }

    fn batch(&mut self) -> usize {
        self.reset();
        let mut batch: Vec<BatchPacket<'_, '_>> = self
            .keys
            .iter()
            .zip(self.work.iter_mut())
            .map(|(key, packet)| BatchPacket { key, packet })
            .collect();
        let mut n = 0;
        decrypt_batch(DIR, &mut batch, |_, r| n += r.unwrap().body().len());
        n
    }

    fn single(&mut self) -> usize {
        self.reset();
        let mut n = 0;
        for (k, w) in self.keys.iter().zip(self.work.iter_mut()) {
            n += decrypt(k, DIR, w).unwrap().body().len();
        }
        n
    }

    fn serial_floor(&mut self) -> u8 {
        self.reset();
        let mut x = 0;
        for w in &mut self.work {
            let enc = &mut w[24..];
            ige_decrypt(&self.aes_key, &self.aes_iv, enc).unwrap();
            x ^= Sha256::new().chain_update([0u8; 32]).chain_update(&*enc).finalize()[0];
        }
        x
    }

    fn sha_floor(&mut self) -> u8 {
        self.reset();
        let mut x = 0;
        for w in &self.work {
            x ^= Sha256::new().chain_update([0u8; 32]).chain_update(&w[24..]).finalize()[0];
        }
        x
    }

    fn aes_floor(&mut self) -> u8 {
        self.reset();
        for w in &mut self.work {
            let (blocks, _) = Array::slice_as_chunks_mut(&mut w[24..]);
            self.scheduled.decrypt_blocks(blocks);
        }
        self.work[0][24]
    }
}

const OPS: [&str; 5] = [
    "batch",
    "single",
    "serial floor",
    "SHA-256 floor",
    "AES throughput floor",
];

fn run(f: &mut Fixture, op: usize) {
    match op {
        0 => drop(black_box(f.batch())),
        1 => drop(black_box(f.single())),
        2 => drop(black_box(f.serial_floor())),
        3 => drop(black_box(f.sha_floor())),
        _ => drop(black_box(f.aes_floor())),
    }
}

fn measure(f: &mut Fixture, rounds: usize) -> [f64; OPS.len()] {
    let iters = ((2 << 20) / f.bytes()).clamp(1, 1000) as u32;
    let mut best = [f64::INFINITY; OPS.len()];
    for _ in 0..rounds {
        for (op, b) in best.iter_mut().enumerate() {
            run(f, op);
            let t = Instant::now();
            for _ in 0..iters {
                run(f, op);
            }
            *b = b.min(t.elapsed().as_nanos() as f64 / f64::from(iters));
        }
    }
    best
}

fn body_len() -> usize {
    std::env::var("BATCH_KIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64usize)
        * 1024
}

fn summary() {
    let rounds = std::env::var("BATCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let mut f = Fixture::new(body_len());
    assert_eq!(f.batch(), f.single());
    let [batch, single, serial, sha, aes] = measure(&mut f, rounds);
    let mib = f.bytes() as f64 / (1 << 20) as f64;
    let rate = |ns: f64| mib / (ns * 1e-9);
    println!();
    println!(
        "summary: {SESSIONS} sessions x {} KiB bodies ({} B of packets), ns per batch, best of {rounds} interleaved rounds",
        body_len() / 1024,
        f.bytes()
    );
    println!(
        "batch {batch:.0} ({:.0} MiB/s) | single {single:.0} ({:.0} MiB/s) | serial floor {serial:.0} ({:.0} MiB/s) | \
         SHA-256 alone {sha:.0} ({:.0} MiB/s) | AES-256 decryption, parallel blocks {aes:.0} ({:.0} MiB/s)",
        rate(batch),
        rate(single),
        rate(serial),
        rate(sha),
        rate(aes)
    );
    println!(
        "ratios: single/batch {:.2}x throughput, serial floor/batch {:.2}x, batch/(SHA-256 alone) {:.2}, \
         batch/(SHA-256 + parallel AES) {:.2}",
        single / batch,
        serial / batch,
        batch / sha,
        batch / (sha + aes)
    );
}

fn bench(c: &mut Criterion) {
    summary();
    if std::env::args().any(|a| a == "summary") {
        return;
    }
    let mut f = Fixture::new(body_len());
    let mut g = c.benchmark_group(format!("batch {SESSIONS} x {} KiB", body_len() / 1024));
    g.throughput(Throughput::Bytes(f.bytes() as u64));
    g.sample_size(20);
    for (op, name) in OPS.iter().enumerate() {
        g.bench_function(*name, |b| b.iter(|| run(&mut f, op)));
    }
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
