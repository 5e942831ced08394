//! Constant time, measured: dudect (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?", DATE 2017)
//! with the `dudect-bencher` crate, for docs/CHECKLIST.md items 24, 29, 74 and 75 (attacks B3, B4, B18).
//!
//! Each test times one operation on inputs of two classes that must be indistinguishable, picked in random order;
//! Welch's t-test compares the two timing distributions, whole and cropped at 100 percentiles, and the largest |t|
//! is printed. |t| ≥ 4.5 (dudect's threshold) says the classes can be told apart by time: a leak.
//!
//! - packet decryption (item 29, B3): failure classes that must look the same: a wrong auth_key_id against a wrong
//!   msg_key, and a wrong msg_key against a bad msg_len/padding under a right msg_key;
//! - the msg_key comparison (item 74): msg_key wrong in its first byte against its last byte;
//! - the fake-TLS HMAC comparison (item 74): digest wrong in its first byte against its last compared byte;
//! - the DC's RSA decoding of a raw plaintext (item 24, B4): a legacy-shaped plaintext holding a well-formed
//!   `p_q_inner_data_dc` with a wrong hash against random bytes, and valid against invalid plaintexts;
//! - the DC's whole RSA decryption (items 24, 75, B4, B18): valid against invalid blocks, legacy-shaped against
//!   random plaintexts, one fixed block against random ones;
//! - the DH exponentiations (item 75): g^x and peer^x with the fixed exponent 1 against random 2048-bit ones.
//!
//! Not a unit test and not run by CI (timings on a shared machine are a measurement, not an assertion). Run it on an
//! otherwise idle machine: `nice cargo bench --bench ct` (about 3.5 minutes), `nice cargo bench --bench ct -- rsa`
//! for the tests whose name contains `rsa`. Environment: `CT_SCALE=4` multiplies every time budget by 4;
//! `CT_SEED=N` draws other inputs and another class order; `CT_AA=1` is the A/A control (both classes from the same
//! pool, so any |t| ≥ 4.5 is noise or the harness); `CT_SWAP=1` swaps the pools (a real leak flips the sign of t).

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use dudect_bencher::ctbench::{BenchFn, BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::{Rng, RngExt};
use dudect_bencher::{BenchRng, Class, CtRunner};
use mtproto_sansio::carriage::faketls::{self, FakeTlsSecret};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::{DhGroup, DhSecret};
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use mtproto_sansio::crypto::{pem, rsa};
use mtproto_sansio::handshake::PQ_INNER_DATA_LENGTHS;
use mtproto_sansio::tl::{PQInnerDataDc, TlWrite, Writer};

const DC_KEY: &str = include_str!("../tests/data/keys/dc_test_pkcs1.pem");
/// Distinct inputs per class for the microsecond operations; each measurement picks one at random. dudect draws a
/// fresh input per measurement; a pool this large keeps the pools' own mean timings (any input-to-input variation,
/// unrelated to the class) from standing in for a class difference, as it did with 64.
const POOL: usize = 4096;
/// Valid RSA plaintexts per class (each costs an RSA decryption to make).
const VALID_POOL: usize = 1024;
/// Inputs per class for the millisecond operations (blinded RSA, modexp).
const SLOW_POOL: usize = 64;

/// A test's time budget: `secs`, times `CT_SCALE` if set.
fn budget(secs: f64) -> Duration {
    let scale = std::env::var("CT_SCALE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs * scale)
}

/// Times `op` on inputs drawn from `left` or `right` (the class chosen at random each time) until `budget` is used.
///
/// Each input is first copied into one working slot, outside the timed region, and `op` runs on that slot: so both
/// classes are read from the same, freshly written memory, and the pools' cache placement cannot tell them apart.
fn measure<I: Clone, T>(
    runner: &mut CtRunner,
    rng: &mut BenchRng,
    budget: Duration,
    left: &[I],
    right: &[I],
    op: impl Fn(&mut I) -> T,
) {
    // Diagnostics: CT_AA=1 draws both classes from `left` (an A/A control: any |t| ≥ 4.5 is the harness's own);
    // CT_SWAP=1 swaps the pools (a real leak follows the data and flips the sign of t).
    let flag = |name: &str| std::env::var(name).is_ok_and(|v| v == "1");
    let (left, right) = match (flag("CT_AA"), flag("CT_SWAP")) {
        (true, _) => (left, left),
        (false, true) => (right, left),
        (false, false) => (left, right),
    };
    let slot = RefCell::new(left[0].clone());
    let mut counts = [0u64; 2];
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            let left_class = rng.random::<bool>();
            counts[usize::from(left_class)] += 1;
            let (class, pool) = if left_class {
                (Class::Left, left)
            } else {
                (Class::Right, right)
            };
            slot.borrow_mut().clone_from(&pool[rng.random_range(0..pool.len())]);
            runner.run_one(class, || op(black_box(&mut *slot.borrow_mut())));
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    // Printed between dudect-bencher's "bench NAME ..." and its result (which gives n for the crop with max |t|).
    print!("{} samples ({} / {}) ", counts[0] + counts[1], counts[1], counts[0]);
}

fn bytes<const N: usize>(rng: &mut BenchRng) -> [u8; N] {
    let mut b = [0u8; N];
    rng.fill_bytes(&mut b);
    b
}

// ---- MTProto 2.0 packet decryption (item 29, B3) ----------------------------------------------------------------

/// A 192-byte body with minimal padding: 24 + 240 bytes on the wire.
const BODY: usize = 192;
const PACKET: usize = 24 + 240;

fn auth_key(rng: &mut BenchRng) -> AuthKey {
    AuthKey::from_bytes(bytes(rng))
}

fn header(rng: &mut BenchRng) -> MessageHeader {
    MessageHeader {
        salt: rng.random(),
        session_id: rng.random(),
        msg_id: rng.random::<u64>() & !3,
        seq_no: rng.random::<u32>() & 0xffff,
    }
}

/// A valid client-to-server packet.
fn valid_packet(key: &AuthKey, rng: &mut BenchRng) -> [u8; PACKET] {
    let body: [u8; BODY] = bytes(rng);
    let mut out = [0u8; PACKET + 16];
    let n = packet::encrypt_with_policy(
        key,
        Direction::ClientToServer,
        &header(rng),
        &body,
        PaddingPolicy::MINIMAL,
        rng,
        &mut out,
    )
    .unwrap()
    .len;
    assert_eq!(n, PACKET);
    out[..PACKET].try_into().unwrap()
}

/// A packet whose msg_key is right (so the MAC check passes) but whose msg_len is not: padding under 12, over the
/// buffer, not a multiple of 4, or negative, picked at random.
fn bad_length_packet(key: &AuthKey, rng: &mut BenchRng) -> [u8; PACKET] {
    let mut plain: [u8; PACKET - 24] = bytes(rng);
    let msg_len: u32 = match rng.random_range(0..4u8) {
        0 => (PACKET - 24 - 32 - 8) as u32,
        1 => (PACKET - 24 - 32 + 16) as u32,
        2 => BODY as u32 + 2,
        _ => 0x8000_0000 | BODY as u32,
    };
    plain[28..32].copy_from_slice(&msg_len.to_le_bytes());
    let mut out = [0u8; PACKET];
    packet::encrypt_raw_for_tests(key, Direction::ClientToServer, &plain, &mut out).unwrap();
    out
}

fn decrypt_op(key: &AuthKey) -> impl Fn(&mut [u8; PACKET]) -> bool + '_ {
    move |p| packet::decrypt(key, Direction::ClientToServer, &mut p[..]).is_ok()
}

fn flip_msg_key(mut p: [u8; PACKET], at: usize, rng: &mut BenchRng) -> [u8; PACKET] {
    p[8 + at] ^= rng.random_range(1..=255u8);
    p
}

/// Wrong auth_key_id (everything else authentic) against wrong msg_key.
fn packet_fail_key_id_vs_msg_key(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = auth_key(rng);
    let left: Vec<_> = (0..POOL)
        .map(|_| {
            let mut p = valid_packet(&key, rng);
            p[rng.random_range(0..8)] ^= rng.random_range(1..=255u8);
            p
        })
        .collect();
    let right: Vec<_> = (0..POOL)
        .map(|_| {
            let at = rng.random_range(0..16);
            flip_msg_key(valid_packet(&key, rng), at, rng)
        })
        .collect();
    measure(runner, rng, budget(10.0), &left, &right, decrypt_op(&key));
}

/// Wrong msg_key against a right msg_key over a bad msg_len or padding.
fn packet_fail_msg_key_vs_length(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = auth_key(rng);
    let left: Vec<_> = (0..POOL)
        .map(|_| {
            let at = rng.random_range(0..16);
            flip_msg_key(valid_packet(&key, rng), at, rng)
        })
        .collect();
    let right: Vec<_> = (0..POOL).map(|_| bad_length_packet(&key, rng)).collect();
    measure(runner, rng, budget(10.0), &left, &right, decrypt_op(&key));
}

/// The msg_key comparison: wrong in its first byte against wrong only in its last.
fn packet_msg_key_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = auth_key(rng);
    let left: Vec<_> = (0..POOL)
        .map(|_| flip_msg_key(valid_packet(&key, rng), 0, rng))
        .collect();
    let right: Vec<_> = (0..POOL)
        .map(|_| flip_msg_key(valid_packet(&key, rng), 15, rng))
        .collect();
    measure(runner, rng, budget(10.0), &left, &right, decrypt_op(&key));
}

// ---- fake-TLS HMAC (item 74) ------------------------------------------------------------------------------------

/// The server's check of a ClientHello digest: wrong in its first byte against its last compared byte (the last
/// four carry the timestamp).
fn faketls_hmac_first_vs_last_byte(runner: &mut CtRunner, rng: &mut BenchRng) {
    let secret = FakeTlsSecret::new(&bytes(rng), b"example.com").unwrap();
    let now = 1_767_225_600;
    let cfg = faketls::ServerConfig::default();
    let hello = |at: usize, rng: &mut BenchRng| {
        let (mut h, _) = faketls::client_hello(&secret, now, rng).unwrap();
        h[11 + at] ^= rng.random_range(1..=255u8);
        h
    };
    let left: Vec<_> = (0..POOL).map(|_| hello(0, rng)).collect();
    let right: Vec<_> = (0..POOL).map(|_| hello(27, rng)).collect();
    for h in left.iter().chain(&right) {
        assert!(matches!(
            faketls::validate_client_hello(&secret, &cfg, now, h),
            Err(faketls::FakeTlsError::BadDigest)
        ));
    }
    measure(runner, rng, budget(10.0), &left, &right, |h| {
        faketls::validate_client_hello(&secret, &cfg, now, &h[..]).is_ok()
    });
}

// ---- the DC's RSA decryption (items 24, 75; B4, B18) ------------------------------------------------------------

fn dc_key() -> rsa::RsaPrivateKey {
    pem::parse_private_pem(DC_KEY.as_bytes()).unwrap()
}

/// A well-formed `p_q_inner_data_dc` (100 bytes).
fn inner_object(rng: &mut BenchRng) -> Vec<u8> {
    let (pq, p, q) = (rng.random::<u64>() >> 2, rng.random::<u32>(), rng.random::<u32>());
    let v = PQInnerDataDc {
        pq: &pq.to_be_bytes(),
        p: &p.to_be_bytes(),
        q: &q.to_be_bytes(),
        nonce: bytes(rng),
        server_nonce: bytes(rng),
        new_nonce: bytes(rng),
        dc: 2,
    };
    let mut b = vec![0u8; v.tl_len()];
    Writer::new(&mut b).put(&v).unwrap();
    b
}

/// RSA blocks whose plaintext decodes (RSA_PAD and legacy, alternately).
fn valid_blocks(key: &rsa::RsaPrivateKey, rng: &mut BenchRng, n: usize) -> Vec<[u8; 256]> {
    (0..n)
        .map(|i| {
            let data = inner_object(rng);
            if i % 2 == 0 {
                rsa::rsa_pad_encrypt(key.public_key(), &data, rng).unwrap()
            } else {
                rsa::legacy_encrypt(key.public_key(), &data, rng).unwrap()
            }
        })
        .collect()
}

/// Random RSA blocks below the modulus: their plaintexts are random, so they never decode.
fn random_blocks(key: &rsa::RsaPrivateKey, rng: &mut BenchRng, n: usize) -> Vec<[u8; 256]> {
    let n_bytes = key.public_key().n_bytes();
    (0..n)
        .map(|_| {
            loop {
                let b: [u8; 256] = bytes(rng);
                if b < n_bytes {
                    break b;
                }
            }
        })
        .collect()
}

/// Legacy-shaped plaintexts: `0 ‖ a wrong SHA-1 ‖ a well-formed p_q_inner_data_dc ‖ random padding`. Before the
/// fix the decoder TL-parsed these and hashed 100 bytes, but parsed nothing and hashed 0 bytes of random ones.
fn tl_shaped_plaintexts(rng: &mut BenchRng) -> Vec<[u8; 256]> {
    (0..POOL)
        .map(|_| {
            let mut p: [u8; 256] = bytes(rng);
            p[0] = 0;
            let obj = inner_object(rng);
            p[21..21 + obj.len()].copy_from_slice(&obj);
            p
        })
        .collect()
}

fn decode_op(p: &mut [u8; 256]) -> bool {
    let (inner, ok) = rsa::decode_inner_plain(p, &PQ_INNER_DATA_LENGTHS);
    black_box(inner.data().len());
    bool::from(ok)
}

/// The decoding of a raw plaintext alone (no RSA): legacy-shaped with a wrong hash against random bytes.
fn rsa_decode_tl_shaped_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    let left = tl_shaped_plaintexts(rng);
    let right: Vec<[u8; 256]> = (0..POOL).map(|_| bytes(rng)).collect();
    measure(runner, rng, budget(10.0), &left, &right, decode_op);
}

/// The decoding of a raw plaintext alone: valid (RSA_PAD and legacy) against invalid (random and legacy-shaped).
fn rsa_decode_valid_vs_invalid(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = dc_key();
    let left: Vec<[u8; 256]> = valid_blocks(&key, rng, VALID_POOL)
        .iter()
        .map(|b| *key.decrypt_raw(b, rng).unwrap())
        .collect();
    let mut right = tl_shaped_plaintexts(rng);
    right.truncate(POOL / 2);
    right.extend((0..POOL / 2).map(|_| bytes::<256>(rng)));
    measure(runner, rng, budget(10.0), &left, &right, decode_op);
}

fn decrypt_inner_op<'a>(key: &'a rsa::RsaPrivateKey, rng: &mut BenchRng) -> impl Fn(&mut [u8; 256]) -> bool + 'a {
    // The blinding RNG is drawn from inside the timed call, as on the DC.
    let blinding = RefCell::new(<BenchRng as dudect_bencher::rand::SeedableRng>::seed_from_u64(
        rng.random(),
    ));
    move |b| rsa::decrypt_inner_data(key, b, &mut *blinding.borrow_mut(), &PQ_INNER_DATA_LENGTHS).is_ok()
}

/// The DC's whole `decrypt_inner_data` (blinded RSA and decoding): valid blocks against random ones.
fn rsa_decrypt_valid_vs_invalid(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = dc_key();
    let left = valid_blocks(&key, rng, SLOW_POOL);
    let right = random_blocks(&key, rng, SLOW_POOL);
    let op = decrypt_inner_op(&key, rng);
    measure(runner, rng, budget(30.0), &left, &right, op);
}

/// The DC's whole `decrypt_inner_data` on the B4 classes: blocks whose plaintext is legacy-shaped (a well-formed
/// `p_q_inner_data_dc` under a wrong hash) against blocks of random plaintext, all below the modulus.
fn rsa_decrypt_tl_shaped_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = dc_key();
    let encrypt = |p: &[u8; 256]| key.public_key().encrypt_raw(p).unwrap();
    let left: Vec<_> = tl_shaped_plaintexts(rng).iter().take(SLOW_POOL).map(encrypt).collect();
    let right: Vec<_> = (0..SLOW_POOL)
        .map(|_| {
            let mut p: [u8; 256] = bytes(rng);
            p[0] = 0;
            encrypt(&p)
        })
        .collect();
    let op = decrypt_inner_op(&key, rng);
    measure(runner, rng, budget(30.0), &left, &right, op);
}

/// The DC's whole `decrypt_inner_data`: one fixed (invalid) block against random ones.
fn rsa_decrypt_fixed_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    let key = dc_key();
    let left = random_blocks(&key, rng, 1);
    let right = random_blocks(&key, rng, SLOW_POOL);
    let op = decrypt_inner_op(&key, rng);
    measure(runner, rng, budget(30.0), &left, &right, op);
}

// ---- DH exponentiation (item 75) --------------------------------------------------------------------------------

fn exponent_one() -> [u8; 256] {
    let mut x = [0u8; 256];
    x[255] = 1;
    x
}

/// g^x (the constant-time ladder): x = 1 against random 2048-bit x.
fn dh_pow_g_fixed_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    let group = DhGroup::telegram(3).unwrap();
    let left = vec![exponent_one()];
    let right: Vec<[u8; 256]> = (0..SLOW_POOL).map(|_| bytes(rng)).collect();
    measure(runner, rng, budget(25.0), &left, &right, |x| group.pow_g_be(x));
}

/// peer^x (crypto-bigint's constant-time pow): x = 1 against random 2048-bit x, for a fixed peer value.
fn dh_shared_fixed_vs_random(runner: &mut CtRunner, rng: &mut BenchRng) {
    let group = DhGroup::telegram(3).unwrap();
    let peer = group.pow_g_be(&bytes(rng));
    let left = vec![DhSecret::from_be_bytes(&exponent_one()).unwrap()];
    let right: Vec<DhSecret> = (0..SLOW_POOL)
        .map(|_| DhSecret::from_be_bytes(&bytes::<256>(rng)).unwrap())
        .collect();
    measure(runner, rng, budget(25.0), &left, &right, |x| {
        group.shared(x, &peer).is_ok()
    });
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument that is not a flag filters the tests by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let tests: [(&'static str, BenchFn); 11] = [
        ("packet_fail_key_id_vs_msg_key", packet_fail_key_id_vs_msg_key),
        ("packet_fail_msg_key_vs_length", packet_fail_msg_key_vs_length),
        ("packet_msg_key_first_vs_last_byte", packet_msg_key_first_vs_last_byte),
        ("faketls_hmac_first_vs_last_byte", faketls_hmac_first_vs_last_byte),
        ("rsa_decode_tl_shaped_vs_random", rsa_decode_tl_shaped_vs_random),
        ("rsa_decode_valid_vs_invalid", rsa_decode_valid_vs_invalid),
        ("rsa_decrypt_valid_vs_invalid", rsa_decrypt_valid_vs_invalid),
        ("rsa_decrypt_tl_shaped_vs_random", rsa_decrypt_tl_shaped_vs_random),
        ("rsa_decrypt_fixed_vs_random", rsa_decrypt_fixed_vs_random),
        ("dh_pow_g_fixed_vs_random", dh_pow_g_fixed_vs_random),
        ("dh_shared_fixed_vs_random", dh_shared_fixed_vs_random),
    ];
    // CT_SEED=N draws other inputs and another class sequence (a real leak shows with every seed).
    let seed_base = 0x6374_0000
        + std::env::var("CT_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            * 0x100;
    let benches = tests
        .iter()
        .enumerate()
        .map(|(i, &(name, benchfn))| BenchMetadata {
            name: BenchName(name),
            seed: Some(seed_base + i as u64),
            benchfn,
        })
        .collect();
    println!("dudect: |max t| >= 4.5 means the two classes are told apart by time (a leak)");
    run_benches_console(
        BenchOpts {
            filter,
            ..BenchOpts::default()
        },
        benches,
    )
    .unwrap();
}
