//! Secret-chat costs: encrypt and decrypt per message size next to the raw SHA-256 + AES-256-IGE cost of the same
//! bytes, and a full key exchange (request, accept, complete: four 2048-bit modular exponentiations).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::e2e::wire::{DecryptedMessage, PlainMessage};
use mtproto_sansio::e2e::{DhConfig, DhConfigCache, SecretChat};
use mtproto_sansio::time::Instant;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};
use std::hint::black_box;

type Chat = SecretChat<20480, 4, 4>;

fn prime() -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/dh_prime.json"
    )))
    .unwrap();
    hex::decode(v["dh_prime_hex"].as_str().unwrap()).unwrap()
}

fn exchange(rng: &mut StdRng, p: &[u8]) -> (Chat, Chat) {
    let cfg = DhConfig {
        version: 1,
        g: 3,
        p: Some(p),
        random: &[1u8; 256],
    };
    let mut ca: DhConfigCache = DhConfigCache::new();
    let mut cb: DhConfigCache = DhConfigCache::new();
    let (req, g_a) = Chat::request(rng, &mut ca, &cfg).unwrap();
    let (b, g_b, fp) = Chat::accept(rng, Instant::ZERO, 1, &mut cb, &cfg, &g_a).unwrap();
    let a = req.complete(Instant::ZERO, 1, &g_b, fp).unwrap();
    (a, b)
}

fn bench(c: &mut Criterion) {
    let p = prime();
    let mut rng = StdRng::seed_from_u64(1);
    let mut g = c.benchmark_group("e2e");
    for size in [64usize, 1024, 16384] {
        let (mut a, _) = exchange(&mut rng, &p);
        let body = vec![0x61u8; size];
        let msg = DecryptedMessage::Message(PlainMessage::text(1, 0, &body));
        let mut out = vec![0u8; size + 2048];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("encrypt", size), &size, |bch, _| {
            bch.iter(|| black_box(a.encrypt(&mut rng, &msg, &mut out).unwrap()))
        });
        // One real message, decrypted over and over: the crypto, layout and TL work is done every time; after the
        // first delivery the seq check classifies it as a duplicate (a few comparisons).
        let (mut a2, mut b) = exchange(&mut rng, &p);
        let sent = a2.encrypt(&mut rng, &msg, &mut out).unwrap();
        let pkt = out[..sent.len].to_vec();
        let mut buf = pkt.clone();
        g.bench_with_input(BenchmarkId::new("decrypt", size), &size, |bch, _| {
            bch.iter(|| {
                buf.copy_from_slice(&pkt);
                let ok = b.decrypt(Instant::ZERO, 1, &mut buf).is_ok();
                assert!(ok);
                black_box(ok)
            })
        });
        // The floor: SHA-256 (msg_key) plus AES-256-IGE over the same plaintext length.
        let mut raw = vec![0u8; (size + 48).next_multiple_of(16)];
        let key = [7u8; 32];
        let iv = [9u8; 32];
        g.bench_with_input(BenchmarkId::new("raw_sha256_ige", size), &size, |bch, _| {
            bch.iter(|| {
                let h = Sha256::digest(&raw);
                ige_encrypt(&key, &iv, &mut raw).unwrap();
                black_box(h)
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("e2e_key_exchange");
    g.sample_size(10);
    g.bench_function("request_accept_complete", |bch| {
        bch.iter(|| black_box(exchange(&mut rng, &p)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
