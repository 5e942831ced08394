//! MTProto 2.0 packet encrypt/decrypt against raw SHA-256 + AES-256-IGE over the same bytes, measured in the same run.
//!
//! Besides criterion's groups, prints one summary line per size (timed with `Instant` over many iterations):
//! ns/op of each operation and the ratio (encrypt + decrypt) / (raw SHA-256 + IGE, both ways).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtproto_sansio::crypto::aes::{ige_decrypt, ige_encrypt};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

struct Fixture {
    key: AuthKey,
    body: Vec<u8>,
    header: MessageHeader,
    out: Vec<u8>,
    packet: Vec<u8>,
    work: Vec<u8>,
    rng: StdRng,
    aes_key: [u8; 32],
    aes_iv: [u8; 32],
}

impl Fixture {
    fn new(size: usize) -> Self {
        let key = AuthKey::from_bytes(core::array::from_fn(|i| i as u8));
        let body: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let header = MessageHeader {
            salt: 1,
            session_id: 2,
            msg_id: 0x6777_e5ed_0001_a2b4,
            seq_no: 1,
        };
        let mut out = vec![0u8; PaddingPolicy::MINIMAL.max_encrypted_len(size).unwrap()];
        let mut rng = StdRng::seed_from_u64(1);
        let n = packet::encrypt_with_policy(
            &key,
            Direction::ClientToServer,
            &header,
            &body,
            PaddingPolicy::MINIMAL,
            &mut rng,
            &mut out,
        )
        .unwrap()
        .len;
        let packet = out[..n].to_vec();
        Fixture {
            key,
            body,
            header,
            work: packet.clone(),
            packet,
            out,
            rng,
            aes_key: [7; 32],
            aes_iv: [9; 32],
        }
    }

    /// Bytes that go through SHA-256 and IGE per message (the encrypted part: header, body, padding).
    fn plain_len(&self) -> usize {
        self.packet.len() - 24
    }

    fn encrypt(&mut self) -> usize {
        let f = self;
        packet::encrypt_with_policy(
            &f.key,
            Direction::ClientToServer,
            &f.header,
            &f.body,
            PaddingPolicy::MINIMAL,
            &mut f.rng,
            &mut f.out,
        )
        .unwrap()
        .len
    }

    fn decrypt(&mut self) -> usize {
        self.work.copy_from_slice(&self.packet);
        packet::decrypt(&self.key, Direction::ClientToServer, &mut self.work)
            .unwrap()
            .body()
            .len()
    }

    /// The raw floor of encrypt: copy the plaintext into place, SHA-256 it, IGE-encrypt it.
    fn raw_encrypt(&mut self) -> u8 {
        let n = self.plain_len();
        let buf = &mut self.work[24..24 + n];
        buf.copy_from_slice(&self.packet[24..24 + n]);
        let h = Sha256::digest(&*buf);
        ige_encrypt(&self.aes_key, &self.aes_iv, buf).unwrap();
        h[0]
    }

    /// The raw floor of decrypt: copy the ciphertext into place, IGE-decrypt it, SHA-256 it.
    fn raw_decrypt(&mut self) -> u8 {
        let n = self.plain_len();
        let buf = &mut self.work[24..24 + n];
        buf.copy_from_slice(&self.packet[24..24 + n]);
        ige_decrypt(&self.aes_key, &self.aes_iv, buf).unwrap();
        Sha256::digest(&*buf)[0]
    }

    fn sha256(&self) -> u8 {
        Sha256::digest(&self.packet[24..])[0]
    }

    fn ige(&mut self) {
        let n = self.plain_len();
        ige_encrypt(&self.aes_key, &self.aes_iv, &mut self.work[24..24 + n]).unwrap();
    }
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

fn bench(c: &mut Criterion) {
    for size in SIZES {
        let mut f = Fixture::new(size);
        let mut g = c.benchmark_group(format!("mtproto2/{}", label(size)));
        g.throughput(Throughput::Bytes(f.plain_len() as u64));
        if size >= 1 << 20 {
            g.sample_size(20);
        }
        g.bench_function("encrypt", |b| b.iter(|| black_box(f.encrypt())));
        g.bench_function("decrypt", |b| b.iter(|| black_box(f.decrypt())));
        g.bench_function("raw_sha256", |b| b.iter(|| black_box(f.sha256())));
        g.bench_function("raw_aes256_ige", |b| b.iter(|| f.ige()));
        g.bench_function("raw_copy_sha256_ige_encrypt", |b| b.iter(|| black_box(f.raw_encrypt())));
        g.bench_function("raw_copy_ige_sha256_decrypt", |b| b.iter(|| black_box(f.raw_decrypt())));
        g.finish();
    }
    summary();
}

fn time_ns(iters: u32, mut op: impl FnMut()) -> f64 {
    // Best of 5 runs: the machine is shared, and the minimum is the least disturbed estimate.
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                op();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .fold(f64::INFINITY, f64::min)
}

fn summary() {
    println!();
    println!("summary (best of 5, ns/op; ratio = (encrypt+decrypt) / (copy+SHA-256+IGE enc + copy+IGE dec+SHA-256))");
    for size in SIZES {
        let mut f = Fixture::new(size);
        let iters = ((32 << 20) / f.plain_len().max(64)).clamp(8, 200_000) as u32;
        let enc = time_ns(iters, || {
            black_box(f.encrypt());
        });
        let dec = time_ns(iters, || {
            black_box(f.decrypt());
        });
        let raw_enc = time_ns(iters, || {
            black_box(f.raw_encrypt());
        });
        let raw_dec = time_ns(iters, || {
            black_box(f.raw_decrypt());
        });
        let sha = time_ns(iters, || {
            black_box(f.sha256());
        });
        let ige = time_ns(iters, || f.ige());
        println!(
            "{:>6} body ({:>7} B encrypted): encrypt {:>11.0} ns  decrypt {:>11.0} ns  enc+dec {:>11.0} ns | raw sha256 {:>10.0} ns  raw ige {:>10.0} ns  raw enc {:>10.0} ns  raw dec {:>10.0} ns | ratio {:.3}",
            label(size),
            f.plain_len(),
            enc,
            dec,
            enc + dec,
            sha,
            ige,
            raw_enc,
            raw_dec,
            (enc + dec) / (raw_enc + raw_dec)
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
