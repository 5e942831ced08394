//! MTProto 2.0 packet encrypt/decrypt beside its floors and beside grammers-mtproto (0.11), all measured in the same
//! run. Built by the `comparison/` workspace crate (grammers is too heavy a dev-dependency for every `cargo test`):
//! `cargo bench -p mtproto-sansio-comparison --bench crypto` (append `-- summary` for the summary lines alone).
//!
//! Floors, over the same bytes:
//! - serial: copy + SHA-256 + AES-256-IGE (encrypt), copy + IGE + SHA-256 (decrypt), as two passes over memory;
//! - primitives (64 B): the calls one packet needs per direction, three SHA-256 (msg_key over the whole encrypted
//!   part, the KDF's two 52-byte hashes), one AES-256 key schedule and IGE of the encrypted part.
//!
//! grammers: `grammers_crypto::encrypt_data_v2` (its padding from `getrandom`, as in its client) and
//! `decrypt_data_v2` of a server packet of the same body (it only decrypts the server-to-client direction).
//! Timings are ns/op, best of interleaved rounds; ratios compare operations timed in the same rounds.
//!
//! `CRYPTO_PROFILE=<one of OPS>` (`CRYPTO_PROFILE_SIZE`, default 64) instead runs that one operation 1000 times
//! (`CRYPTO_PROFILE_ITERS`) in `profile_loop`, for `valgrind --tool=callgrind --toggle-collect='*profile_loop*'` (valgrind hides SHA-NI, so its
//! counts suit the AES and bookkeeping parts, not SHA-256's share). `CRYPTO_ROUNDS` sets the summary's rounds.

use std::hint::black_box;
use std::time::Instant;

use aes::{Aes256Dec, Aes256Enc};
use cipher::KeyInit;
use criterion::{Criterion, Throughput};
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
    /// `aes_key` scheduled once, for the primitives' IGE chain.
    scheduled: Aes256Enc,
    g_key: grammers_crypto::AuthKey,
    /// The encrypted part's plaintext up to the padding (inner header and body), what grammers encrypts.
    g_plain: Vec<u8>,
    g_buf: grammers_crypto::DequeBuffer<u8>,
    /// A server-to-client packet of the same body, which grammers decrypts.
    g_packet: Vec<u8>,
    g_work: Vec<u8>,
}

impl Fixture {
    fn new(size: usize) -> Self {
        let key_bytes: [u8; 256] = core::array::from_fn(|i| i as u8);
        let key = AuthKey::from_bytes(key_bytes);
        let body: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let header = MessageHeader {
            salt: 1,
            session_id: 2,
            msg_id: 0x6777_e5ed_0001_a2b4,
            seq_no: 1,
        };
        let mut out = vec![0u8; PaddingPolicy::MINIMAL.max_encrypted_len(size).unwrap()];
        let mut rng = StdRng::seed_from_u64(1);
        let mut seal = |dir: Direction, out: &mut [u8]| {
            packet::encrypt_with_policy(&key, dir, &header, &body, PaddingPolicy::MINIMAL, &mut rng, out)
                .unwrap()
                .len
        };
        let n = seal(Direction::ClientToServer, &mut out);
        let packet = out[..n].to_vec();
        let n = seal(Direction::ServerToClient, &mut out);
        let g_packet = out[..n].to_vec();
        let mut g_plain = Vec::with_capacity(32 + size);
        g_plain.extend_from_slice(&header.salt.to_le_bytes());
        g_plain.extend_from_slice(&header.session_id.to_le_bytes());
        g_plain.extend_from_slice(&header.msg_id.to_le_bytes());
        g_plain.extend_from_slice(&header.seq_no.to_le_bytes());
        g_plain.extend_from_slice(&(size as u32).to_le_bytes());
        g_plain.extend_from_slice(&body);
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
            scheduled: Aes256Enc::new(&[7; 32].into()),
            g_key: grammers_crypto::AuthKey::from_bytes(key_bytes),
            g_buf: grammers_crypto::DequeBuffer::with_capacity(size + 32 + 64, 24),
            g_work: g_packet.clone(),
            g_packet,
            g_plain,
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

    fn grammers_encrypt(&mut self) -> usize {
        self.g_buf.clear();
        self.g_buf.extend(self.g_plain.iter());
        grammers_crypto::encrypt_data_v2(&mut self.g_buf, &self.g_key);
        self.g_buf.len()
    }

    fn grammers_decrypt(&mut self) -> usize {
        self.g_work.copy_from_slice(&self.g_packet);
        grammers_crypto::decrypt_data_v2(&mut self.g_work, &self.g_key)
            .unwrap()
            .len()
    }

    /// The serial floor of encrypt: copy the plaintext into place, SHA-256 it, IGE-encrypt it.
    fn raw_encrypt(&mut self) -> u8 {
        let n = self.plain_len();
        let buf = &mut self.work[24..24 + n];
        buf.copy_from_slice(&self.packet[24..24 + n]);
        let h = Sha256::digest(&*buf);
        ige_encrypt(&self.aes_key, &self.aes_iv, buf).unwrap();
        h[0]
    }

    /// The serial floor of decrypt: copy the ciphertext into place, IGE-decrypt it, SHA-256 it.
    fn raw_decrypt(&mut self) -> u8 {
        let n = self.plain_len();
        let buf = &mut self.work[24..24 + n];
        buf.copy_from_slice(&self.packet[24..24 + n]);
        ige_decrypt(&self.aes_key, &self.aes_iv, buf).unwrap();
        Sha256::digest(&*buf)[0]
    }

    /// The primitive calls of one packet in one direction (see the module docs); `decrypt` picks the key schedule.
    fn primitives(&mut self, decrypt: bool) -> u8 {
        let n = self.plain_len();
        let buf = &mut self.work[24..24 + n];
        let msg_key = Sha256::new().chain_update([1u8; 32]).chain_update(&*buf).finalize();
        let a = Sha256::new()
            .chain_update(&msg_key[8..24])
            .chain_update([2u8; 36])
            .finalize();
        let b = Sha256::new()
            .chain_update([3u8; 36])
            .chain_update(&msg_key[8..24])
            .finalize();
        let sched = if decrypt {
            black_box(Aes256Dec::new(&self.aes_key.into()));
            0
        } else {
            black_box(Aes256Enc::new(&self.aes_key.into()));
            1
        };
        ige_chain(&self.scheduled, &self.aes_iv, buf);
        a[0] ^ b[0] ^ sched
    }

    fn sha256(&self) -> u8 {
        Sha256::digest(&self.packet[24..])[0]
    }

    fn ige_dec(&mut self) {
        let n = self.plain_len();
        ige_decrypt(&self.aes_key, &self.aes_iv, &mut self.work[24..24 + n]).unwrap();
    }

    fn ige(&mut self) {
        let n = self.plain_len();
        ige_encrypt(&self.aes_key, &self.aes_iv, &mut self.work[24..24 + n]).unwrap();
    }
}

/// IGE over `buf` with a key schedule made outside the timed code: the chain alone.
fn ige_chain(cipher: &Aes256Enc, iv: &[u8; 32], buf: &mut [u8]) {
    use cipher::{Array, BlockModeEncrypt, InnerIvInit};
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    ige::Encryptor::<Aes256Enc>::inner_iv_init(cipher.clone(), iv.into()).encrypt_blocks(blocks);
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

fn bench(c: &mut Criterion) {
    summary();
    for size in SIZES {
        let mut f = Fixture::new(size);
        let mut g = c.benchmark_group(format!("mtproto2/{}", label(size)));
        g.throughput(Throughput::Bytes(f.plain_len() as u64));
        if size >= 1 << 20 {
            g.sample_size(20);
        }
        g.bench_function("encrypt", |b| b.iter(|| black_box(f.encrypt())));
        g.bench_function("decrypt", |b| b.iter(|| black_box(f.decrypt())));
        g.bench_function("grammers_encrypt", |b| b.iter(|| black_box(f.grammers_encrypt())));
        g.bench_function("grammers_decrypt", |b| b.iter(|| black_box(f.grammers_decrypt())));
        g.bench_function("raw_sha256", |b| b.iter(|| black_box(f.sha256())));
        g.bench_function("raw_aes256_ige", |b| b.iter(|| f.ige()));
        g.bench_function("raw_copy_sha256_ige_encrypt", |b| b.iter(|| black_box(f.raw_encrypt())));
        g.bench_function("raw_copy_ige_sha256_decrypt", |b| b.iter(|| black_box(f.raw_decrypt())));
        if size < 1024 {
            g.bench_function("primitives_encrypt", |b| b.iter(|| black_box(f.primitives(false))));
            g.bench_function("primitives_decrypt", |b| b.iter(|| black_box(f.primitives(true))));
        }
        g.finish();
    }
}

const OPS: [&str; 11] = [
    "encrypt",
    "decrypt",
    "raw_encrypt",
    "raw_decrypt",
    "grammers_encrypt",
    "grammers_decrypt",
    "primitives_encrypt",
    "primitives_decrypt",
    "raw_ige",
    "raw_sha256",
    "raw_ige_decrypt",
];

fn run(f: &mut Fixture, op: usize) {
    match op {
        0 => drop(black_box(f.encrypt())),
        1 => drop(black_box(f.decrypt())),
        2 => drop(black_box(f.raw_encrypt())),
        3 => drop(black_box(f.raw_decrypt())),
        4 => drop(black_box(f.grammers_encrypt())),
        5 => drop(black_box(f.grammers_decrypt())),
        6 => drop(black_box(f.primitives(false))),
        7 => drop(black_box(f.primitives(true))),
        8 => f.ige(),
        9 => drop(black_box(f.sha256())),
        _ => f.ige_dec(),
    }
}

/// ns/op of every operation, each the best of `rounds` rounds; the rounds interleave the operations so that load
/// from other processes hits all of them alike.
fn measure(f: &mut Fixture, rounds: usize) -> [f64; OPS.len()] {
    // Short rounds (about 256 KiB of packets each), so that some of them fall between other processes' slices.
    let iters = ((256 << 10) / f.plain_len().max(64)).clamp(1, 2_000) as u32;
    let mut best = [f64::INFINITY; OPS.len()];
    for _ in 0..rounds {
        for (op, b) in best.iter_mut().enumerate() {
            // One untimed run first: the previous operation left other buffers in the caches.
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

fn summary() {
    let rounds = std::env::var("CRYPTO_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(40);
    println!();
    println!("summary (ns/op, best of {rounds} interleaved rounds)");
    for size in SIZES {
        let mut f = Fixture::new(size);
        let t = measure(&mut f, rounds);
        let [
            enc,
            dec,
            raw_enc,
            raw_dec,
            g_enc,
            g_dec,
            p_enc,
            p_dec,
            ige,
            sha,
            ige_dec,
        ] = t;
        println!(
            "{:>6} body ({:>7} B encrypted): ours enc {enc:.0} dec {dec:.0} | serial floor enc {raw_enc:.0} dec \
             {raw_dec:.0} (IGE alone: enc {ige:.0} dec {ige_dec:.0}; SHA-256 alone {sha:.0}) | primitives enc {p_enc:.0} dec {p_dec:.0} | \
             grammers enc {g_enc:.0} dec {g_dec:.0}",
            label(size),
            f.plain_len(),
        );
        println!(
            "{:>6} ratios: (enc+dec)/serial floor {:.3}, dec/serial decrypt floor {:.3} (dec/IGE decrypt alone {:.3}), \
             (enc+dec)/primitives {:.3}, (enc+dec)/grammers {:.3}, dec/grammers dec {:.3}",
            label(size),
            (enc + dec) / (raw_enc + raw_dec),
            dec / raw_dec,
            dec / ige_dec,
            (enc + dec) / (p_enc + p_dec),
            (enc + dec) / (g_enc + g_dec),
            dec / g_dec,
        );
    }
}

#[inline(never)]
fn profile_loop(f: &mut Fixture, op: usize, iters: u32) {
    for _ in 0..iters {
        run(f, op);
    }
}

fn profile(name: &str) {
    let size = std::env::var("CRYPTO_PROFILE_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let op = OPS
        .iter()
        .position(|o| *o == name)
        .expect("CRYPTO_PROFILE names one of OPS");
    let iters = std::env::var("CRYPTO_PROFILE_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let mut f = Fixture::new(size);
    profile_loop(&mut f, op, iters);
    println!("{name} {size} B: {iters} iterations in profile_loop");
}

fn main() {
    if let Ok(name) = std::env::var("CRYPTO_PROFILE") {
        profile(&name);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
