//! Negative tests for docs/CHECKLIST.md items 11-25 (auth-key handshake, client and DC roles) and regression tests for
//! attacks B4, B13 and B17. Each test fails if the check it names is removed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::Duration;

use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::{DhError, DhGroup};
use mtproto_sansio::crypto::factor::{FactorError, is_prime_u64};
use mtproto_sansio::crypto::kdf::tmp_aes_key_iv;
use mtproto_sansio::crypto::rsa::{
    RsaPrivateKey, RsaPublicKey, TELEGRAM_KEYS, legacy_encrypt, rsa_pad_decrypt, rsa_pad_encrypt,
};
use mtproto_sansio::fuzzing::handshake::{FIXTURE_UNIX_MICROS, Pair, SeededRng, dc_key};
use mtproto_sansio::handshake::{
    ClientConfig, ClientHandshake, HandshakeError, KeyKind, MAX_CLIENT_MESSAGE, MAX_PQ_STRING, MAX_SERVER_MESSAGE,
    PQ_INNER_DATA_LENGTHS, ServerConfig, ServerHandshakes, ServerReply, Status,
};
use mtproto_sansio::time::Instant;
use mtproto_sansio::tl::{
    ClientDhInnerData, DhGenFail, DhGenOk, DhGenRetry, LongVec, PQInnerDataDc, PQInnerDataLegacy, PQInnerDataTemp,
    PQInnerDataTempDc, ReqDhParams, ReqPqMulti, ResPq, ServerDhInnerData, ServerDhParamsFail, ServerDhParamsOk,
    SetClientDhParams, TlRead, TlWrite, Writer,
};
use num_bigint::BigUint;
use sha1::{Digest, Sha1};

fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| dc_key().unwrap())
}

fn trusted() -> &'static [RsaPublicKey] {
    static T: OnceLock<[RsaPublicKey; 1]> = OnceLock::new();
    T.get_or_init(|| [*key().public_key()])
}

fn pair(seed: &str) -> Pair<'static> {
    Pair::new(key(), trusted(), KeyKind::Permanent, seed.as_bytes()).unwrap()
}

fn tl<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    Writer::new(&mut b).put(v).unwrap();
    b
}

/// A plaintext message with a server (odd) or client (0 mod 4) msg_id.
fn plain(body: &[u8], server: bool) -> Vec<u8> {
    let msg_id: u64 = (1_735_910_895u64 << 32) | 0x40 | u64::from(server);
    let mut m = vec![0u8; 8];
    m.extend_from_slice(&msg_id.to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(body);
    m
}

fn body(msg: &[u8]) -> &[u8] {
    &msg[20..]
}

fn prime() -> [u8; 256] {
    DhGroup::telegram(3).unwrap().prime_bytes()
}

fn big(b: &[u8]) -> BigUint {
    BigUint::from_bytes_be(b)
}

fn be256(v: &BigUint) -> Vec<u8> {
    let b = v.to_bytes_be();
    let mut out = vec![0u8; 256usize.saturating_sub(b.len())];
    out.extend_from_slice(&b);
    out
}

/// The state of a client that has sent req_DH_params, with the secrets a test needs to play a malicious server.
struct AtServerDh {
    pair: Pair<'static>,
    nonce: [u8; 16],
    server_nonce: [u8; 16],
    new_nonce: [u8; 32],
}

/// Drives a pair until the client has sent req_DH_params; recovers new_nonce with the DC's private key.
fn at_server_dh(seed: &str) -> AtServerDh {
    let mut pair = pair(seed);
    assert!(pair.round());
    assert!(pair.client_send());
    let (nonce, server_nonce, new_nonce) = {
        let req = ReqDhParams::decode(body(&pair.c2s[..pair.c2s_len])).unwrap();
        let block: &[u8; 256] = req.encrypted_data.try_into().unwrap();
        let data = rsa_pad_decrypt(key(), block, &mut SeededRng::new(b"t")).unwrap();
        let inner = PQInnerDataDc::read(&mut mtproto_sansio::tl::Reader::new(&data[..])).unwrap();
        (req.nonce, req.server_nonce, inner.new_nonce)
    };
    AtServerDh {
        pair,
        nonce,
        server_nonce,
        new_nonce,
    }
}

/// A server_DH_params_ok whose answer is built by the test: `inner` is the TL to encrypt, `hash_ok` whether the SHA-1
/// is right, `pad` the padding length (made to reach a multiple of 16 when `None`).
fn server_dh_ok(s: &AtServerDh, inner: &[u8], hash_ok: bool, pad: Option<usize>) -> Vec<u8> {
    let mut hash: [u8; 20] = Sha1::digest(inner).into();
    if !hash_ok {
        hash[7] ^= 1;
    }
    let mut answer = hash.to_vec();
    answer.extend_from_slice(inner);
    let pad = pad.unwrap_or((16 - answer.len() % 16) % 16);
    answer.extend(std::iter::repeat_n(0x5a, pad));
    assert_eq!(answer.len() % 16, 0, "test helper: choose a pad that aligns");
    let tmp = tmp_aes_key_iv(&s.new_nonce, &s.server_nonce);
    ige_encrypt(&tmp.key, &tmp.iv, &mut answer).unwrap();
    plain(
        &tl(&ServerDhParamsOk {
            nonce: s.nonce,
            server_nonce: s.server_nonce,
            encrypted_answer: &answer,
        }),
        true,
    )
}

fn dh_inner(s: &AtServerDh, g: i32, p: &[u8], g_a: &[u8]) -> Vec<u8> {
    tl(&ServerDhInnerData {
        nonce: s.nonce,
        server_nonce: s.server_nonce,
        g,
        dh_prime: p,
        g_a,
        server_time: 1_735_910_891,
    })
}

/// A valid g_a for Telegram's group (3^12345 mod p).
fn good_g_a() -> Vec<u8> {
    be256(&BigUint::from(3u32).modpow(&BigUint::from(12345u32), &big(&prime())))
}

/// Feeds `msg` then polls: the client's status afterwards.
fn feed_and_poll(s: &mut AtServerDh, msg: &[u8]) -> (Result<(), HandshakeError>, Status) {
    let r = s.pair.client.handle_packet(s.pair.now, msg);
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    let _ = s
        .pair
        .client
        .poll_transmit(s.pair.now, &mut s.pair.client_rng, &mut out)
        .unwrap();
    (r, s.pair.client.status())
}

// ---- item 11 ------------------------------------------------------------------------------------------------------

#[test]
fn chk_011_res_pq_with_wrong_nonce_is_dropped() {
    let mut p = pair("11");
    assert!(p.client_send());
    p.server_receive().unwrap();
    let genuine = p.s2c[..p.s2c_len].to_vec();
    let mut bad = genuine.clone();
    bad[20 + 4 + 3] ^= 0x01; // one byte of the echoed nonce
    let before = (p.client.status(), p.client.poll_timeout());
    assert_eq!(p.client.handle_packet(p.now, &bad), Err(HandshakeError::NonceMismatch));
    assert_eq!((p.client.status(), p.client.poll_timeout()), before);
    // The genuine answer still works, and the handshake completes.
    p.client.handle_packet(p.now, &genuine).unwrap();
    assert_eq!(p.run(), Status::Done);
}

#[test]
fn chk_011_nonce_is_fresh_per_attempt() {
    let mut p = pair("11b");
    assert!(p.client_send());
    let first = p.c2s[24..40].to_vec();
    p.client.handle_transport_error(p.now, -404);
    assert!(p.client_send());
    assert_ne!(first, p.c2s[24..40].to_vec());
}

// ---- item 12 ------------------------------------------------------------------------------------------------------

fn res_pq_with(p: &Pair<'_>, fps: &[i64]) -> Vec<u8> {
    let nonce: [u8; 16] = p.c2s[24..40].try_into().unwrap();
    plain(
        &tl(&ResPq {
            nonce,
            server_nonce: [9; 16],
            pq: &0x130B_7475_669F_EB8Bu64.to_be_bytes(),
            server_public_key_fingerprints: LongVec::from_slice(fps),
        }),
        true,
    )
}

#[test]
fn chk_012_unknown_fingerprints_abort() {
    let mut p = pair("12");
    assert!(p.client_send());
    let msg = res_pq_with(&p, &[0x1234, -77]);
    assert_eq!(p.client.handle_packet(p.now, &msg), Err(HandshakeError::NoMatchingKey));
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::NoMatchingKey));
}

#[test]
fn chk_012_key_not_configured_is_never_used() {
    // The server offers Telegram's real key, but this client trusts only the test DC's key: abort.
    let mut p = pair("12b");
    assert!(p.client_send());
    let msg = res_pq_with(&p, &[TELEGRAM_KEYS[0].fingerprint() as i64]);
    assert_eq!(p.client.handle_packet(p.now, &msg), Err(HandshakeError::NoMatchingKey));
    // A configured key listed after unknown ones is found.
    let mut p = pair("12c");
    assert!(p.client_send());
    let msg = res_pq_with(&p, &[1, 2, key().public_key().fingerprint() as i64]);
    p.client.handle_packet(p.now, &msg).unwrap();
    assert_eq!(p.client.status(), Status::Running);
}

// ---- item 13 ------------------------------------------------------------------------------------------------------

#[test]
fn chk_013_bad_pq_fails_fast() {
    let cases: [(&[u8], FactorError); 5] = [
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9], FactorError::TooLong),
        (&[0x80, 0, 0, 0, 0, 0, 0, 1], FactorError::TooLarge),
        (&2_147_483_647u64.to_be_bytes(), FactorError::NotSemiprime), // prime
        (
            &(1_141_464_581u64 * 1_141_464_581).to_be_bytes(),
            FactorError::NotSemiprime,
        ), // p²
        (&[1], FactorError::NotSemiprime),
    ];
    for (pq, want) in cases {
        let mut p = pair("13");
        assert!(p.client_send());
        let nonce: [u8; 16] = p.c2s[24..40].try_into().unwrap();
        let msg = plain(
            &tl(&ResPq {
                nonce,
                server_nonce: [9; 16],
                pq,
                server_public_key_fingerprints: LongVec::from_slice(&[key().public_key().fingerprint() as i64]),
            }),
            true,
        );
        let t = std::time::Instant::now();
        let r = p.client.handle_packet(p.now, &msg);
        let mut out = [0u8; MAX_CLIENT_MESSAGE];
        let sent = p.client.poll_transmit(p.now, &mut p.client_rng, &mut out).unwrap();
        assert!(t.elapsed() < Duration::from_millis(10), "{pq:?} took {:?}", t.elapsed());
        assert_eq!(sent, None);
        assert_eq!(
            p.client.status(),
            Status::Failed(HandshakeError::Pq(want)),
            "{pq:?} {r:?}"
        );
    }
}

#[test]
fn chk_013_factors_sent_are_the_primes_of_pq() {
    let mut p = pair("13b");
    assert!(p.round());
    assert!(p.client_send());
    let req = ReqDhParams::decode(body(&p.c2s[..p.c2s_len])).unwrap();
    let pq_msg = ResPq::decode(body(&p.s2c[..p.s2c_len])).unwrap();
    let f = |b: &[u8]| b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let (pp, qq, pq) = (f(req.p), f(req.q), f(pq_msg.pq));
    assert!(pp < qq && pp * qq == pq && is_prime_u64(pp) && is_prime_u64(qq));
    assert!(req.p.len() <= 4 && req.q.len() <= 4 && req.p[0] != 0 && req.q[0] != 0);
}

// ---- item 14 ------------------------------------------------------------------------------------------------------

/// Counts bytes drawn, to see RSA_PAD's retry branch being taken.
struct Counting(SeededRng, usize);
impl rand_core::TryRng for Counting {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.1 += 4;
        self.0.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.1 += 8;
        self.0.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.1 += dst.len();
        self.0.try_fill_bytes(dst)
    }
}
impl rand_core::TryCryptoRng for Counting {}

#[test]
fn chk_014_rsa_pad_round_trips_through_our_dc_including_the_retry_branch() {
    // Minimum draw in step 2: new_nonce 32 + padding (192 - inner) + one temp_key 32. More means RSA_PAD retried
    // because the block was ≥ n; the DC must still decode it.
    let mut retried = 0;
    for seed in 0..48u32 {
        let mut p = pair(&format!("14-{seed}"));
        assert!(p.round());
        let mut rng = Counting(SeededRng::new(&seed.to_le_bytes()), 0);
        let mut out = [0u8; MAX_CLIENT_MESSAGE];
        let n = p.client.poll_transmit(p.now, &mut rng, &mut out).unwrap().unwrap();
        let req = ReqDhParams::decode(body(&out[..n])).unwrap();
        assert_eq!(req.encrypted_data.len(), 256);
        assert!(big(req.encrypted_data) < big(&key().public_key().n_bytes()));
        let data = rsa_pad_decrypt(key(), req.encrypted_data.try_into().unwrap(), &mut SeededRng::new(b"d")).unwrap();
        let mut r = mtproto_sansio::tl::Reader::new(&data[..]);
        let inner = PQInnerDataDc::read(&mut r).unwrap();
        assert!(r.position() <= 144);
        assert_eq!(
            (inner.nonce, inner.server_nonce, inner.dc),
            (req.nonce, req.server_nonce, 2)
        );
        assert_eq!((inner.p, inner.q), (req.p, req.q));
        if rng.1 > 32 + (192 - r.position()) + 32 {
            retried += 1;
            p.c2s[..n].copy_from_slice(&out[..n]);
            p.c2s_len = n;
            assert!(matches!(p.server_receive(), Some(ServerReply::Send(_))));
        }
    }
    assert!(retried > 0, "no seed exercised the ≥ n retry branch");
}

// ---- item 15 ------------------------------------------------------------------------------------------------------

#[test]
fn chk_015_answer_regions_are_checked() {
    let g_a = good_g_a();
    // A correct forged answer is accepted (the helper itself is right) ...
    let mut s = at_server_dh("15");
    let inner = dh_inner(&s, 3, &prime(), &g_a);
    let ok = server_dh_ok(&s, &inner, true, None);
    assert_eq!(feed_and_poll(&mut s, &ok).1, Status::Running);
    // ... a wrong SHA-1 is not.
    let mut s = at_server_dh("15");
    let msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), false, None);
    assert_eq!(
        feed_and_poll(&mut s, &msg).1,
        Status::Failed(HandshakeError::AnswerHash)
    );
    // 16 bytes of padding (hash right) is refused.
    let mut s = at_server_dh("15");
    let inner = dh_inner(&s, 3, &prime(), &g_a);
    let pad = (16 - (20 + inner.len()) % 16) % 16 + 16;
    let msg = server_dh_ok(&s, &inner, true, Some(pad));
    assert_eq!(
        feed_and_poll(&mut s, &msg).1,
        Status::Failed(HandshakeError::AnswerPadding)
    );
    // Inner nonce swapped (hash right).
    let mut s = at_server_dh("15");
    let mut inner = dh_inner(&s, 3, &prime(), &g_a);
    inner[4] ^= 1;
    let msg = server_dh_ok(&s, &inner, true, None);
    assert_eq!(
        feed_and_poll(&mut s, &msg).1,
        Status::Failed(HandshakeError::InnerNonceMismatch)
    );
    // Inner server_nonce swapped.
    let mut s = at_server_dh("15");
    let mut inner = dh_inner(&s, 3, &prime(), &g_a);
    inner[20] ^= 1;
    let msg = server_dh_ok(&s, &inner, true, None);
    assert_eq!(
        feed_and_poll(&mut s, &msg).1,
        Status::Failed(HandshakeError::InnerNonceMismatch)
    );
    // A flipped ciphertext bit garbles the answer.
    let mut s = at_server_dh("15");
    let mut msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), true, None);
    let at = msg.len() - 100;
    msg[at] ^= 0x10;
    assert!(matches!(
        feed_and_poll(&mut s, &msg).1,
        Status::Failed(HandshakeError::AnswerHash | HandshakeError::AnswerMalformed | HandshakeError::AnswerPadding)
    ));
    // Outer nonce / server_nonce mismatch: dropped, nothing changes.
    let mut s = at_server_dh("15");
    let mut msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), true, None);
    msg[24] ^= 1;
    assert_eq!(
        feed_and_poll(&mut s, &msg),
        (Err(HandshakeError::NonceMismatch), Status::Running)
    );
    let mut msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), true, None);
    msg[40] ^= 1;
    assert_eq!(
        feed_and_poll(&mut s, &msg),
        (Err(HandshakeError::ServerNonceMismatch), Status::Running)
    );
}

#[test]
fn chk_015_encrypted_answer_length_bounds() {
    for len in [0usize, 15, 17, 1040] {
        let mut s = at_server_dh("15l");
        let msg = plain(
            &tl(&ServerDhParamsOk {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                encrypted_answer: &vec![7u8; len],
            }),
            true,
        );
        assert_eq!(
            feed_and_poll(&mut s, &msg).1,
            Status::Failed(HandshakeError::AnswerLength),
            "len {len}"
        );
    }
}

// ---- items 16 and 17, attack B13 ----------------------------------------------------------------------------------

fn dh_case(g: i32, p: &[u8], g_a: &[u8]) -> Status {
    let mut s = at_server_dh("16");
    let msg = server_dh_ok(&s, &dh_inner(&s, g, p, g_a), true, None);
    feed_and_poll(&mut s, &msg).1
}

fn failed_dh(e: DhError) -> Status {
    Status::Failed(HandshakeError::Dh(e))
}

#[test]
fn chk_016_dh_group_is_checked() {
    let p = big(&prime());
    let g_a = good_g_a();
    assert_eq!(
        dh_case(3, &be256(&(&p - 2u32)), &g_a),
        failed_dh(DhError::GeneratorResidue)
    ); // p−2 ≡ 0 mod 3
    assert_eq!(dh_case(4, &be256(&(&p - 2u32)), &g_a), failed_dh(DhError::NotSafePrime)); // p−2 composite
    assert_eq!(dh_case(3, &be256(&(&p >> 1u32)), &g_a), failed_dh(DhError::PrimeSize)); // 2047 bits
    let mut p2049 = vec![1u8];
    p2049.extend_from_slice(&prime());
    assert_eq!(dh_case(3, &p2049, &g_a), failed_dh(DhError::TooLong)); // 2049 bits (257 bytes)
    // Telegram's prime: p mod 8 = 3, mod 3 = 2, mod 5 = 3, mod 24 = 11, mod 7 = 6 → g = 2, 5, 6 fail the rule.
    for g in [2, 5, 6] {
        assert_eq!(
            dh_case(g, &prime(), &g_a),
            failed_dh(DhError::GeneratorResidue),
            "g={g}"
        );
    }
    for g in [8, 1, 0, -3] {
        assert_eq!(dh_case(g, &prime(), &g_a), failed_dh(DhError::Generator), "g={g}");
    }
    for g in [3, 4, 7] {
        assert_eq!(dh_case(g, &prime(), &g_a), Status::Running, "g={g}");
    }
}

#[test]
fn chk_017_public_value_range() {
    let p = big(&prime());
    let m = BigUint::from(1u32) << 1984u32;
    let bad = [
        BigUint::from(0u32),
        BigUint::from(1u32),
        BigUint::from(2u32),
        &p - 1u32,
        p.clone(),
        &m - 1u32,
        &p - &m + 1u32,
    ];
    for v in &bad {
        let enc = if *v == p { prime().to_vec() } else { be256(v) };
        assert_eq!(
            dh_case(3, &prime(), &enc),
            failed_dh(DhError::PublicValueRange),
            "g_a = {v:x}"
        );
    }
    assert_eq!(dh_case(3, &prime(), &be256(&m)), Status::Running);
    assert_eq!(dh_case(3, &prime(), &be256(&(&p - &m))), Status::Running);
    assert_eq!(dh_case(3, &prime(), &[1u8; 257]), failed_dh(DhError::TooLong));
}

/// Yields `first` to the first 256-byte draw (b), everything else from a seeded generator.
struct FirstB(Option<[u8; 256]>, SeededRng, usize);
impl rand_core::TryRng for FirstB {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.1.try_next_u32()
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.1.try_next_u64()
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if dst.len() == 256 {
            self.2 += 1;
            if let Some(b) = self.0.take() {
                dst.copy_from_slice(&b);
                return Ok(());
            }
        }
        self.1.try_fill_bytes(dst)
    }
}
impl rand_core::TryCryptoRng for FirstB {}

#[test]
fn chk_017_own_g_b_out_of_range_redraws_b() {
    let mut p = pair("17b");
    assert!(p.round() && p.round());
    // b = 1 gives g_b = g = 3, far below 2^1984: the client must draw another b.
    let mut one = [0u8; 256];
    one[255] = 1;
    let mut rng = FirstB(Some(one), SeededRng::new(b"b"), 0);
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    let n = p.client.poll_transmit(p.now, &mut rng, &mut out).unwrap().unwrap();
    assert_eq!(rng.2, 2, "b was not redrawn");
    p.c2s[..n].copy_from_slice(&out[..n]);
    p.c2s_len = n;
    assert!(matches!(p.server_receive(), Some(ServerReply::Complete { .. })));
}

#[test]
fn atk_b13_weak_group_or_public_value_from_a_malicious_server() {
    let p = big(&prime());
    assert_eq!(
        dh_case(3, &prime(), &be256(&(&p - 1u32))),
        failed_dh(DhError::PublicValueRange)
    );
    assert_eq!(
        dh_case(3, &prime(), &be256(&BigUint::from(1u32))),
        failed_dh(DhError::PublicValueRange)
    );
    assert_eq!(dh_case(2, &prime(), &good_g_a()), failed_dh(DhError::GeneratorResidue));
    // A smooth 2048-bit modulus (2^2047 + 3·2^100 + 1 is not a safe prime).
    let smooth = (BigUint::from(1u32) << 2047u32) + (BigUint::from(3u32) << 100u32) + 1u32;
    assert_eq!(
        dh_case(4, &be256(&smooth), &good_g_a()),
        failed_dh(DhError::NotSafePrime)
    );
}

// ---- item 18 ------------------------------------------------------------------------------------------------------

struct ZeroRng;
impl rand_core::TryRng for ZeroRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(0);
        Ok(())
    }
}
impl rand_core::TryCryptoRng for ZeroRng {}

#[test]
fn chk_018_zero_rng_is_refused() {
    let mut c = ClientHandshake::new(ClientConfig::new(trusted(), 2), Instant::ZERO);
    let mut out = [0u8; MAX_CLIENT_MESSAGE];
    assert_eq!(c.poll_transmit(Instant::ZERO, &mut ZeroRng, &mut out).unwrap(), None);
    assert_eq!(c.status(), Status::Failed(HandshakeError::WeakRandomness));
    // A zero b at step 3 is refused too.
    let mut p = pair("18");
    assert!(p.round() && p.round());
    let mut rng = FirstB(Some([0; 256]), SeededRng::new(b"z"), 0);
    assert_eq!(p.client.poll_transmit(p.now, &mut rng, &mut out).unwrap(), None);
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::WeakRandomness));
}

#[test]
fn chk_018_b_comes_from_the_rng_not_the_server() {
    // Two clients facing byte-identical server messages but different RNGs send different g_b.
    let mut s1 = at_server_dh("18b");
    let msg = server_dh_ok(&s1, &dh_inner(&s1, 3, &prime(), &good_g_a()), true, None);
    let mut s2 = at_server_dh("18b");
    s2.pair.client_rng = SeededRng::new(b"other");
    let mut outs = Vec::new();
    for s in [&mut s1, &mut s2] {
        s.pair.client.handle_packet(s.pair.now, &msg).unwrap();
        let mut out = [0u8; MAX_CLIENT_MESSAGE];
        let n = s
            .pair
            .client
            .poll_transmit(s.pair.now, &mut s.pair.client_rng, &mut out)
            .unwrap()
            .unwrap();
        outs.push(out[..n].to_vec());
    }
    assert_ne!(outs[0][56..], outs[1][56..]);
}

// ---- items 19, 20, 25 ---------------------------------------------------------------------------------------------

/// Runs a full handshake where the DC's key-id check says "taken" for the first `collisions` keys.
/// Returns the pair, the number of set_client_DH_params sent and the number of keys the DC completed.
fn with_collisions(collisions: u32, client_max: u8, server_max: u8) -> (Pair<'static>, u32, u32) {
    let mut p = pair("19");
    let mut cfg = ClientConfig::new(trusted(), 2);
    cfg.max_dh_retries = client_max;
    cfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS;
    p.client = ClientHandshake::new(cfg, Instant::ZERO);
    let mut scfg = ServerConfig::new(key(), DhGroup::telegram(3).unwrap());
    scfg.max_dh_retries = server_max;
    p.server = ServerHandshakes::new(scfg);
    let seen = Cell::new(0u32);
    let mut sends = 0;
    let mut completions = 0;
    for _ in 0..20 {
        if p.client.status() != Status::Running || !p.client_send() {
            break;
        }
        if SetClientDhParams::decode(body(&p.c2s[..p.c2s_len])).is_ok() {
            sends += 1;
        }
        let taken = |_: u64| {
            seen.set(seen.get() + 1);
            seen.get() <= collisions
        };
        let reply = p
            .server
            .handle(p.now, &mut p.server_rng, 1, &p.c2s[..p.c2s_len], &mut p.s2c, &taken)
            .unwrap();
        match reply {
            ServerReply::Send(n) => p.s2c_len = n,
            ServerReply::Complete { len, .. } => {
                completions += 1;
                p.s2c_len = len
            }
            ServerReply::Error(c) => panic!("DC answered {c}"),
        }
        let _ = p.client_receive();
    }
    (p, sends, completions)
}

#[test]
fn chk_019_retry_path_uses_aux_hash_as_retry_id() {
    let (mut p, sends, completions) = with_collisions(2, 5, 5);
    assert_eq!(p.client.status(), Status::Done);
    assert_eq!(sends, 3, "one set_client_DH_params per attempt");
    assert_eq!(completions, 1);
    assert!(p.client.take_outcome().is_some());
}

#[test]
fn chk_019_retry_id_and_padding_on_the_wire() {
    // Act as the DC by hand to read client_DH_inner_data: first retry_id is 0, after a retry it is the previous
    // key's aux hash; data_with_hash is SHA1 ‖ data ‖ < 16 bytes of padding, a multiple of 16.
    let mut s = at_server_dh("19w");
    let a = BigUint::from(987_654_321u64) << 1990u32;
    let p = big(&prime());
    let g_a = be256(&BigUint::from(3u32).modpow(&a, &p));
    let msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), true, None);
    s.pair.client.handle_packet(s.pair.now, &msg).unwrap();
    let tmp = tmp_aes_key_iv(&s.new_nonce, &s.server_nonce);
    let mut expected_retry = 0u64;
    for round in 0..3 {
        assert!(s.pair.client_send());
        let req = SetClientDhParams::decode(body(&s.pair.c2s[..s.pair.c2s_len])).unwrap();
        let mut data = req.encrypted_data.to_vec();
        assert_eq!(data.len() % 16, 0);
        mtproto_sansio::crypto::aes::ige_decrypt(&tmp.key, &tmp.iv, &mut data).unwrap();
        let mut r = mtproto_sansio::tl::Reader::new(&data[20..]);
        let inner = ClientDhInnerData::read(&mut r).unwrap();
        let used = r.position();
        assert!(data.len() - 20 - used < 16);
        assert_eq!(&data[..20], &Sha1::digest(&data[20..20 + used])[..]);
        assert_eq!(inner.retry_id as u64, expected_retry, "round {round}");
        let auth = AuthKey::from_bytes(be256(&big(inner.g_b).modpow(&a, &p)).try_into().unwrap());
        let aux = auth.aux_hash();
        let h = Sha1::new()
            .chain_update(s.new_nonce)
            .chain_update([2u8])
            .chain_update(aux.to_le_bytes())
            .finalize();
        let retry = DhGenRetry {
            nonce: s.nonce,
            server_nonce: s.server_nonce,
            new_nonce_hash2: h[4..].try_into().unwrap(),
        };
        s.pair
            .client
            .handle_packet(s.pair.now, &plain(&tl(&retry), true))
            .unwrap();
        expected_retry = aux;
    }
}

fn hash_n(new_nonce: &[u8; 32], n: u8, aux: u64) -> [u8; 16] {
    let h = Sha1::new()
        .chain_update(new_nonce)
        .chain_update([n])
        .chain_update(aux.to_le_bytes())
        .finalize();
    h[4..].try_into().unwrap()
}

/// A client that has sent set_client_DH_params to a forged server whose a is known, with the resulting key's aux.
fn at_dh_gen(seed: &str) -> (AtServerDh, u64) {
    let mut s = at_server_dh(seed);
    let a = BigUint::from(1_234_567u64) << 1995u32;
    let p = big(&prime());
    let g_a = be256(&BigUint::from(3u32).modpow(&a, &p));
    let msg = server_dh_ok(&s, &dh_inner(&s, 3, &prime(), &g_a), true, None);
    s.pair.client.handle_packet(s.pair.now, &msg).unwrap();
    assert!(s.pair.client_send());
    let tmp = tmp_aes_key_iv(&s.new_nonce, &s.server_nonce);
    let req = SetClientDhParams::decode(body(&s.pair.c2s[..s.pair.c2s_len])).unwrap();
    let mut data = req.encrypted_data.to_vec();
    mtproto_sansio::crypto::aes::ige_decrypt(&tmp.key, &tmp.iv, &mut data).unwrap();
    let inner = ClientDhInnerData::read(&mut mtproto_sansio::tl::Reader::new(&data[20..])).unwrap();
    let auth = AuthKey::from_bytes(be256(&big(inner.g_b).modpow(&a, &p)).try_into().unwrap());
    (s, auth.aux_hash())
}

#[test]
fn chk_020_hash_must_match_the_constructor_received() {
    // dh_gen_ok carrying hash2 or hash3, retry carrying hash1, fail carrying hash1, a corrupted hash1: all fatal.
    type Make = fn(&AtServerDh, u64) -> Vec<u8>;
    let cases: [Make; 5] = [
        |s, aux| {
            tl(&DhGenOk {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash1: hash_n(&s.new_nonce, 2, aux),
            })
        },
        |s, aux| {
            tl(&DhGenOk {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash1: hash_n(&s.new_nonce, 3, aux),
            })
        },
        |s, aux| {
            tl(&DhGenRetry {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash2: hash_n(&s.new_nonce, 1, aux),
            })
        },
        |s, aux| {
            tl(&DhGenFail {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash3: hash_n(&s.new_nonce, 1, aux),
            })
        },
        |s, aux| {
            let mut h = hash_n(&s.new_nonce, 1, aux);
            h[15] ^= 0x80;
            tl(&DhGenOk {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash1: h,
            })
        },
    ];
    for (i, make) in cases.iter().enumerate() {
        let (mut s, aux) = at_dh_gen("20");
        let msg = plain(&make(&s, aux), true);
        assert_eq!(
            s.pair.client.handle_packet(s.pair.now, &msg),
            Err(HandshakeError::NewNonceHash),
            "case {i}"
        );
        assert_eq!(s.pair.client.status(), Status::Failed(HandshakeError::NewNonceHash));
        assert!(s.pair.client.take_outcome().is_none());
    }
    // The right hash for each constructor: ok completes, retry asks for a new b, fail restarts from step 1.
    let (mut s, aux) = at_dh_gen("20");
    let ok = DhGenOk {
        nonce: s.nonce,
        server_nonce: s.server_nonce,
        new_nonce_hash1: hash_n(&s.new_nonce, 1, aux),
    };
    s.pair.client.handle_packet(s.pair.now, &plain(&tl(&ok), true)).unwrap();
    assert_eq!(s.pair.client.status(), Status::Done);
    let (mut s, aux) = at_dh_gen("20");
    let fail = DhGenFail {
        nonce: s.nonce,
        server_nonce: s.server_nonce,
        new_nonce_hash3: hash_n(&s.new_nonce, 3, aux),
    };
    s.pair
        .client
        .handle_packet(s.pair.now, &plain(&tl(&fail), true))
        .unwrap();
    assert_eq!((s.pair.client.status(), s.pair.client.restarts()), (Status::Running, 1));
}

#[test]
fn chk_020_always_retry_stops_at_the_cap() {
    let (p, sends, completions) = with_collisions(u32::MAX, 5, 100);
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::TooManyDhRetries));
    assert_eq!(sends, 6, "first attempt plus 5 retries");
    assert_eq!(completions, 0);
}

#[test]
fn chk_020_server_dh_params_fail_needs_the_right_hash() {
    let mut s = at_server_dh("20f");
    let h: [u8; 16] = Sha1::digest(s.new_nonce)[4..].try_into().unwrap();
    let mut bad = h;
    bad[0] ^= 1;
    let f = |h| {
        plain(
            &tl(&ServerDhParamsFail {
                nonce: s.nonce,
                server_nonce: s.server_nonce,
                new_nonce_hash: h,
            }),
            true,
        )
    };
    let (good_msg, bad_msg) = (f(h), f(bad));
    let mut s2 = at_server_dh("20f");
    assert_eq!(
        s.pair.client.handle_packet(s.pair.now, &bad_msg),
        Err(HandshakeError::NewNonceHash)
    );
    s2.pair.client.handle_packet(s2.pair.now, &good_msg).unwrap();
    assert_eq!(
        (s2.pair.client.status(), s2.pair.client.restarts()),
        (Status::Running, 1)
    );
}

// ---- item 21 ------------------------------------------------------------------------------------------------------

#[test]
fn chk_021_outcome_key_id_and_salt() {
    let (mut s, _) = at_dh_gen("21");
    let aux;
    {
        // Recompute the key the client must hold: the client's g_b with our forged a.
        let tmp = tmp_aes_key_iv(&s.new_nonce, &s.server_nonce);
        let req = SetClientDhParams::decode(body(&s.pair.c2s[..s.pair.c2s_len])).unwrap();
        let mut data = req.encrypted_data.to_vec();
        mtproto_sansio::crypto::aes::ige_decrypt(&tmp.key, &tmp.iv, &mut data).unwrap();
        let inner = ClientDhInnerData::read(&mut mtproto_sansio::tl::Reader::new(&data[20..])).unwrap();
        let a = BigUint::from(1_234_567u64) << 1995u32;
        let key = be256(&big(inner.g_b).modpow(&a, &big(&prime())));
        let sha = Sha1::digest(&key);
        aux = u64::from_le_bytes(sha[..8].try_into().unwrap());
        let ok = DhGenOk {
            nonce: s.nonce,
            server_nonce: s.server_nonce,
            new_nonce_hash1: hash_n(&s.new_nonce, 1, aux),
        };
        s.pair.client.handle_packet(s.pair.now, &plain(&tl(&ok), true)).unwrap();
        let out = s.pair.client.take_outcome().unwrap();
        assert_eq!(out.auth_key.as_bytes()[..], key[..]);
        assert_eq!(out.auth_key.id(), u64::from_le_bytes(sha[12..20].try_into().unwrap()));
        let salt: [u8; 8] = core::array::from_fn(|i| s.new_nonce[i] ^ s.server_nonce[i]);
        assert_eq!(out.server_salt, u64::from_le_bytes(salt));
        assert_eq!(out.server_time_offset, 0);
    }
    // Nothing secret is left to send or to take.
    assert!(s.pair.client.take_outcome().is_none());
    assert!(!s.pair.client_send());
}

// ---- item 22 ------------------------------------------------------------------------------------------------------

#[test]
fn chk_022_minus_404_at_every_step_restarts_and_completes() {
    for step in 0..3 {
        let mut p = pair(&format!("22-{step}"));
        for _ in 0..step {
            assert!(p.round());
        }
        assert!(p.client_send());
        p.client.handle_transport_error(p.now, -404);
        assert_eq!(
            (p.client.status(), p.client.restarts()),
            (Status::Running, 1),
            "step {step}"
        );
        assert!(p.client_send());
        assert!(
            ReqPqMulti::decode(body(&p.c2s[..p.c2s_len])).is_ok(),
            "step {step}: restart sends req_pq_multi"
        );
        assert!(matches!(p.server_receive(), Some(ServerReply::Send(_))));
        p.client_receive().unwrap();
        assert_eq!(p.run(), Status::Done, "step {step}");
    }
    // -404 also arrives as a 4-byte packet.
    let mut p = pair("22p");
    assert!(p.client_send());
    p.client.handle_packet(p.now, &(-404i32).to_le_bytes()).unwrap();
    assert_eq!(p.client.restarts(), 1);
}

#[test]
fn chk_022_minus_444_aborts_and_restarts_are_capped() {
    let mut p = pair("22b");
    assert!(p.round());
    p.client.handle_transport_error(p.now, -444);
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::WrongDc));
    let mut p = pair("22c");
    for _ in 0..5 {
        assert!(p.client_send());
        p.client.handle_transport_error(p.now, -404);
        assert_eq!(p.client.status(), Status::Running);
    }
    p.client.handle_transport_error(p.now, -404);
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::TooManyRestarts));
}

#[test]
fn chk_022_timeouts_are_caller_driven_and_bounded() {
    let mut p = pair("22t");
    assert!(p.client_send());
    let first = p.c2s[..p.c2s_len].to_vec();
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(Instant::from_micros(t.as_micros() - 1));
    assert!(!p.client_send(), "early timeout did something");
    for _ in 0..2 {
        let t = p.client.poll_timeout().unwrap();
        p.now = t;
        p.client.handle_timeout(t);
        assert!(p.client_send());
        assert_eq!(p.c2s[..p.c2s_len], first[..], "retransmission is identical");
    }
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t);
    assert_eq!(p.client.status(), Status::Failed(HandshakeError::Timeout));
    // -429 backs off, then restarts.
    let mut p = pair("22f");
    assert!(p.client_send());
    p.client.handle_transport_error(p.now, -429);
    assert!(!p.client_send());
    let t = p.client.poll_timeout().unwrap();
    p.client.handle_timeout(t);
    p.now = t;
    assert!(p.client_send());
}

// ---- item 23, attack B17 ------------------------------------------------------------------------------------------

fn server(dc: Option<i32>) -> ServerHandshakes<'static, 8> {
    let mut cfg = ServerConfig::new(key(), DhGroup::telegram(3).unwrap());
    cfg.dc_id = dc;
    cfg.max_temp_expires_in = 7200;
    ServerHandshakes::new(cfg)
}

fn req_pq(nonce: [u8; 16], id: u64) -> Vec<u8> {
    let body = tl(&ReqPqMulti { nonce });
    let mut m = vec![0u8; 8];
    m.extend_from_slice(&((1_735_910_000u64 << 32) | (id * 4)).to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

fn send<const N: usize>(s: &mut ServerHandshakes<'static, N>, now: Instant, msg: &[u8]) -> (ServerReply, Vec<u8>) {
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let r = s
        .handle(now, &mut SeededRng::new(msg), 1, msg, &mut out, &|_| false)
        .unwrap();
    let bytes = match &r {
        ServerReply::Send(n) | ServerReply::Complete { len: n, .. } => out[..*n].to_vec(),
        ServerReply::Error(_) => vec![],
    };
    (r, bytes)
}

#[test]
fn chk_023_res_pq_fresh_nonce_pq_and_identical_retransmit() {
    let mut s = server(None);
    let (_, a) = send(&mut s, Instant::ZERO, &req_pq([1; 16], 1));
    let (_, b) = send(&mut s, Instant::ZERO, &req_pq([2; 16], 2));
    let (ra, rb) = (ResPq::decode(body(&a)).unwrap(), ResPq::decode(body(&b)).unwrap());
    assert_ne!(ra.server_nonce, rb.server_nonce);
    for r in [ra, rb] {
        let pq = r.pq.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
        assert!(pq < 1 << 63);
        let (p, q) = mtproto_sansio::crypto::factor::factor_pq(pq).unwrap();
        assert!(p < q && p < 1 << 32 && q < 1 << 32);
        assert_eq!(
            r.server_public_key_fingerprints.iter().collect::<Vec<_>>(),
            vec![key().public_key().fingerprint() as i64]
        );
    }
    // An identical retransmission gets the identical bytes; no new run.
    let (_, a2) = send(&mut s, Instant::from_secs(1), &req_pq([1; 16], 1));
    assert_eq!(a, a2);
    assert_eq!(s.len(), 2);
    // Server msg_ids are responses (1 mod 4).
    assert_eq!(u64::from_le_bytes(a[8..16].try_into().unwrap()) % 4, 1);
}

#[test]
fn chk_023_runs_expire_after_ten_minutes() {
    let mut p = pair("23e");
    assert!(p.round());
    assert!(p.client_send());
    p.now = Instant::from_secs(600);
    assert!(matches!(p.server_receive(), Some(ServerReply::Error(-404))));
    assert!(p.server.is_empty());
    // Just under the limit, the run is alive.
    let mut p = pair("23f");
    assert!(p.round());
    assert!(p.client_send());
    p.now = Instant::from_secs(599);
    assert!(matches!(p.server_receive(), Some(ServerReply::Send(_))));
}

#[test]
fn atk_b17_handshake_state_exhaustion_is_bounded() {
    let mut s: Box<ServerHandshakes<'static, 64>> = Box::new(ServerHandshakes::new(ServerConfig::new(
        key(),
        DhGroup::telegram(3).unwrap(),
    )));
    let size = std::mem::size_of::<ServerHandshakes<'static, 64>>();
    assert!(size <= 64 * 1200 + 1024, "{size} bytes for 64 runs");
    let mut flood = 0;
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let mut rng = SeededRng::new(b"b17");
    for i in 0..100_000u64 {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&i.to_le_bytes());
        let now = Instant::from_millis(i);
        match s
            .handle(now, &mut rng, i, &req_pq(nonce, i + 1), &mut out, &|_| false)
            .unwrap()
        {
            ServerReply::Send(_) => {}
            ServerReply::Error(-429) => flood += 1,
            other => panic!("{other:?}"),
        }
        assert!(s.len() <= 64);
    }
    // 100 s of simulated time: the first 64 runs hold the table, everything else is refused.
    assert_eq!(flood, 100_000 - 64);
    assert_eq!(std::mem::size_of_val(&*s), size);
    // After the 10-minute lifetime the table frees itself.
    assert!(s.poll_timeout().is_some());
    s.handle_timeout(Instant::from_secs(601));
    assert!(s.is_empty());
    let (r, _) = send(&mut s, Instant::from_secs(601), &req_pq([7; 16], 1));
    assert!(matches!(r, ServerReply::Send(_)));
}

// ---- item 24, attack B4 -------------------------------------------------------------------------------------------

/// A DC with one run after req_pq_multi, the issued (nonce, server_nonce, pq, p, q).
fn dc_run(dc: Option<i32>) -> (ServerHandshakes<'static, 8>, [u8; 16], [u8; 16], u64, u64, u64) {
    let mut s = server(dc);
    let nonce = [0x42; 16];
    let (_, res) = send(&mut s, Instant::ZERO, &req_pq(nonce, 1));
    let r = ResPq::decode(body(&res)).unwrap();
    let pq = r.pq.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x));
    let (p, q) = mtproto_sansio::crypto::factor::factor_pq(pq).unwrap();
    (s, nonce, r.server_nonce, pq, p, q)
}

fn be(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    b[b.iter().position(|&x| x != 0).unwrap_or(8)..].to_vec()
}

#[derive(Clone, Copy, Debug)]
enum Tamper {
    /// `dc` set to this value.
    DcAs(i32),
    None,
    OuterP,
    OuterQ,
    SwapPQ,
    Fingerprint,
    Short,
    AboveN,
    FlipBlock,
    InnerPq,
    InnerP,
    InnerNonce,
    InnerServerNonce,
    Dc,
    TempExpiresZero,
    TempExpiresHuge,
    Legacy,
    LegacyPad,
    Temp,
}

fn req_dh(t: Tamper, nonce: [u8; 16], sn: [u8; 16], pq: u64, p: u64, q: u64) -> Vec<u8> {
    let mut rng = SeededRng::new(format!("{t:?}").as_bytes());
    let new_nonce = [0x77; 32];
    let (mut ipq, mut ip, iq) = (be(pq), be(p), be(q));
    let (mut inonce, mut isn, mut dc) = (nonce, sn, 2);
    match t {
        Tamper::InnerPq => ipq = be(pq + 2),
        Tamper::InnerP => ip = be(p + 2),
        Tamper::InnerNonce => inonce[0] ^= 1,
        Tamper::InnerServerNonce => isn[15] ^= 1,
        Tamper::Dc => dc = 3,
        Tamper::DcAs(x) => dc = x,
        _ => {}
    }
    let pk = key().public_key();
    let data = match t {
        Tamper::TempExpiresZero | Tamper::TempExpiresHuge | Tamper::Temp => tl(&PQInnerDataTempDc {
            pq: &ipq,
            p: &ip,
            q: &iq,
            nonce: inonce,
            server_nonce: isn,
            new_nonce,
            dc,
            expires_in: match t {
                Tamper::TempExpiresZero => 0,
                Tamper::TempExpiresHuge => 7201,
                _ => 3600,
            },
        }),
        Tamper::Legacy | Tamper::LegacyPad => tl(&PQInnerDataLegacy {
            pq: &ipq,
            p: &ip,
            q: &iq,
            nonce: inonce,
            server_nonce: isn,
            new_nonce,
        }),
        _ => tl(&PQInnerDataDc {
            pq: &ipq,
            p: &ip,
            q: &iq,
            nonce: inonce,
            server_nonce: isn,
            new_nonce,
            dc,
        }),
    };
    let mut block = match t {
        Tamper::Legacy => legacy_encrypt(pk, &data, &mut rng).unwrap().to_vec(),
        _ => rsa_pad_encrypt(pk, &data, &mut rng).unwrap().to_vec(),
    };
    match t {
        Tamper::Short => {
            block.remove(0);
        }
        Tamper::AboveN => block = vec![0xff; 256],
        Tamper::FlipBlock => block[100] ^= 4,
        _ => {}
    }
    let (mut op, mut oq) = (be(p), be(q));
    match t {
        Tamper::OuterP => op = be(p + 2),
        Tamper::OuterQ => oq = be(q - 2),
        Tamper::SwapPQ => std::mem::swap(&mut op, &mut oq),
        _ => {}
    }
    let fp = pk.fingerprint() as i64 ^ if matches!(t, Tamper::Fingerprint) { 1 } else { 0 };
    let body = tl(&ReqDhParams {
        nonce,
        server_nonce: sn,
        p: &op,
        q: &oq,
        public_key_fingerprint: fp,
        encrypted_data: &block,
    });
    let mut m = vec![0u8; 8];
    m.extend_from_slice(&((1_735_910_000u64 << 32) | 8).to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

#[test]
fn chk_024_req_dh_params_accepts_every_real_encoding() {
    for t in [Tamper::None, Tamper::Legacy, Tamper::LegacyPad, Tamper::Temp] {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let (r, bytes) = send(&mut s, Instant::ZERO, &req_dh(t, nonce, sn, pq, p, q));
        assert!(matches!(r, ServerReply::Send(_)), "{t:?}: {r:?}");
        assert!(ServerDhParamsOk::decode(body(&bytes)).is_ok());
    }
}

#[test]
fn chk_024_every_bad_req_dh_params_gets_404_and_poisons_the_run() {
    let bad = [
        Tamper::OuterP,
        Tamper::OuterQ,
        Tamper::SwapPQ,
        Tamper::Fingerprint,
        Tamper::Short,
        Tamper::AboveN,
        Tamper::FlipBlock,
        Tamper::InnerPq,
        Tamper::InnerP,
        Tamper::InnerNonce,
        Tamper::InnerServerNonce,
        Tamper::TempExpiresZero,
        Tamper::TempExpiresHuge,
    ];
    for t in bad {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let (r, _) = send(&mut s, Instant::ZERO, &req_dh(t, nonce, sn, pq, p, q));
        assert!(matches!(r, ServerReply::Error(-404)), "{t:?}: {r:?}");
        assert!(s.is_empty(), "{t:?}: run not poisoned");
        // A valid request for the poisoned run is refused too.
        let (r, _) = send(&mut s, Instant::ZERO, &req_dh(Tamper::None, nonce, sn, pq, p, q));
        assert!(
            matches!(r, ServerReply::Error(-404)),
            "{t:?}: poisoned run answered {r:?}"
        );
    }
}

#[test]
fn chk_024_wrong_dc_gets_444() {
    let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
    let (r, _) = send(&mut s, Instant::ZERO, &req_dh(Tamper::Dc, nonce, sn, pq, p, q));
    assert!(matches!(r, ServerReply::Error(-444)), "{r:?}");
    assert!(s.is_empty());
    // Without a configured DC id the same request is accepted.
    let (mut s, nonce, sn, pq, p, q) = dc_run(None);
    let (r, _) = send(&mut s, Instant::ZERO, &req_dh(Tamper::Dc, nonce, sn, pq, p, q));
    assert!(matches!(r, ServerReply::Send(_)));
}

/// The spec's encodings of one DC in `p_q_inner_data_dc`: its id, + 10000 on a test DC, negative for its media-only
/// endpoints. A DC configured as 2 takes each of them for DC 2 and refuses every other DC's.
#[test]
fn chk_024_dc_id_encodings_of_the_same_dc_are_accepted_others_get_444() {
    for named in [2, 10002, -2, -10002] {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let (r, _) = send(&mut s, Instant::ZERO, &req_dh(Tamper::DcAs(named), nonce, sn, pq, p, q));
        assert!(matches!(r, ServerReply::Send(_)), "{named}: {r:?}");
    }
    for named in [3, 10003, -3, 20002, 0, 12, i32::MIN] {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let (r, _) = send(&mut s, Instant::ZERO, &req_dh(Tamper::DcAs(named), nonce, sn, pq, p, q));
        assert!(matches!(r, ServerReply::Error(-444)), "{named}: {r:?}");
    }
}

#[test]
fn atk_b04_all_req_dh_failures_look_the_same() {
    // Every failure gives the same reply value and leaves the same state (the run gone); a new handshake on the
    // same table then works (INTEROP: clients retry on the same connection).
    let mut outcomes = Vec::new();
    for t in [
        Tamper::OuterP,
        Tamper::Fingerprint,
        Tamper::AboveN,
        Tamper::FlipBlock,
        Tamper::InnerNonce,
        Tamper::Short,
    ] {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let (r, bytes) = send(&mut s, Instant::ZERO, &req_dh(t, nonce, sn, pq, p, q));
        outcomes.push((format!("{r:?}"), bytes, s.len(), s.poll_timeout()));
        let (r, _) = send(&mut s, Instant::ZERO, &req_pq([0x43; 16], 2));
        assert!(matches!(r, ServerReply::Send(_)));
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:?}");
    // A retransmission of a good request gets the identical answer (and the same g_a).
    let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
    let req = req_dh(Tamper::None, nonce, sn, pq, p, q);
    let (_, a) = send(&mut s, Instant::ZERO, &req);
    let (_, b) = send(&mut s, Instant::from_secs(3), &req);
    assert_eq!(a, b);
}

/// The four `p_q_inner_data*` constructors with caller-chosen pq, p, q strings.
fn inner_object(ctor: usize, pq: &[u8], p: &[u8], q: &[u8], nonce: [u8; 16], sn: [u8; 16]) -> Vec<u8> {
    let new_nonce = [0x77; 32];
    match ctor {
        0 => tl(&PQInnerDataLegacy {
            pq,
            p,
            q,
            nonce,
            server_nonce: sn,
            new_nonce,
        }),
        1 => tl(&PQInnerDataTemp {
            pq,
            p,
            q,
            nonce,
            server_nonce: sn,
            new_nonce,
            expires_in: 3600,
        }),
        2 => tl(&PQInnerDataDc {
            pq,
            p,
            q,
            nonce,
            server_nonce: sn,
            new_nonce,
            dc: 2,
        }),
        _ => tl(&PQInnerDataTempDc {
            pq,
            p,
            q,
            nonce,
            server_nonce: sn,
            new_nonce,
            dc: 2,
            expires_in: 3600,
        }),
    }
}

/// `req_DH_params` for the run carrying `block` as encrypted_data.
fn req_dh_block(nonce: [u8; 16], sn: [u8; 16], p: u64, q: u64, block: &[u8]) -> Vec<u8> {
    let body = tl(&ReqDhParams {
        nonce,
        server_nonce: sn,
        p: &be(p),
        q: &be(q),
        public_key_fingerprint: key().public_key().fingerprint() as i64,
        encrypted_data: block,
    });
    let mut m = vec![0u8; 8];
    m.extend_from_slice(&((1_735_910_000u64 << 32) | 8).to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

/// `v` big-endian, left-padded with zeros to `width` bytes (at least its minimal length).
fn be_width(v: u64, width: usize) -> Vec<u8> {
    let min = be(v);
    let mut out = vec![0u8; width.saturating_sub(min.len())];
    out.extend_from_slice(&min);
    out
}

#[test]
fn chk_024_pq_inner_data_lengths_are_those_of_the_tl_schema() {
    // The DC's legacy candidate lengths are exactly the serialized lengths of the four constructors with pq, p and
    // q of 0..=MAX_PQ_STRING bytes: none missing (a real client's block would be refused) and none extra.
    let mut seen = std::collections::BTreeSet::new();
    for ctor in 0..4 {
        for a in 0..=MAX_PQ_STRING {
            for b in 0..=MAX_PQ_STRING {
                for c in 0..=MAX_PQ_STRING {
                    let len = inner_object(ctor, &vec![1; a], &vec![2; b], &vec![3; c], [0; 16], [0; 16]).len();
                    assert!(PQ_INNER_DATA_LENGTHS.contains(&len), "{ctor} {a} {b} {c}: {len}");
                    seen.insert(len);
                }
            }
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), PQ_INNER_DATA_LENGTHS.to_vec());
    assert!(PQ_INNER_DATA_LENGTHS.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn chk_024_legacy_encoding_of_every_constructor_and_width_is_accepted() {
    // Every constructor, with pq, p and q minimal or zero-padded up to 8 bytes, in the legacy encoding and in
    // RSA_PAD: the DC finds the legacy object's length among its fixed candidates and accepts both alike.
    for ctor in 0..4 {
        for (wpq, wp, wq) in [(0, 0, 0), (8, 4, 4), (8, 8, 8), (0, 8, 0)] {
            let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
            let data = inner_object(ctor, &be_width(pq, wpq), &be_width(p, wp), &be_width(q, wq), nonce, sn);
            let block = legacy_encrypt(key().public_key(), &data, &mut SeededRng::new(&data)).unwrap();
            let (r, bytes) = send(&mut s, Instant::ZERO, &req_dh_block(nonce, sn, p, q, &block));
            assert!(
                matches!(r, ServerReply::Send(_)),
                "legacy {ctor} {wpq}/{wp}/{wq}: {r:?}"
            );
            assert!(ServerDhParamsOk::decode(body(&bytes)).is_ok());
            let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
            let data = inner_object(ctor, &be_width(pq, wpq), &be_width(p, wp), &be_width(q, wq), nonce, sn);
            let block = rsa_pad_encrypt(key().public_key(), &data, &mut SeededRng::new(&data)).unwrap();
            let (r, _) = send(&mut s, Instant::ZERO, &req_dh_block(nonce, sn, p, q, &block));
            assert!(
                matches!(r, ServerReply::Send(_)),
                "rsa_pad {ctor} {wpq}/{wp}/{wq}: {r:?}"
            );
        }
    }
}

#[test]
fn atk_b04_legacy_hash_must_cover_exactly_the_inner_object() {
    // The legacy hash is checked over fixed candidate lengths, not over a length parsed from the plaintext, so the
    // DC must refuse a block whose hash covers the object plus trailing bytes (here 100 + 4 = 104, a candidate).
    let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
    let mut data = inner_object(2, &be(pq), &be(p), &be(q), nonce, sn);
    assert_eq!(data.len(), 100);
    data.extend_from_slice(&[0; 4]);
    let block = legacy_encrypt(key().public_key(), &data, &mut SeededRng::new(b"b04")).unwrap();
    let (r, _) = send(&mut s, Instant::ZERO, &req_dh_block(nonce, sn, p, q, &block));
    assert!(matches!(r, ServerReply::Error(-404)), "{r:?}");
    assert!(s.is_empty());
    // A p of 9 bytes (zero-padded) is refused in both encodings, even where the object's length (104 for
    // p_q_inner_data_dc) happens to be a candidate: both encodings accept the same objects.
    for legacy in [true, false] {
        let (mut s, nonce, sn, pq, p, q) = dc_run(Some(2));
        let data = inner_object(2, &be(pq), &be_width(p, MAX_PQ_STRING + 1), &be(q), nonce, sn);
        assert!(PQ_INNER_DATA_LENGTHS.contains(&data.len()));
        let mut rng = SeededRng::new(b"b04-9");
        let block = if legacy {
            legacy_encrypt(key().public_key(), &data, &mut rng).unwrap()
        } else {
            rsa_pad_encrypt(key().public_key(), &data, &mut rng).unwrap()
        };
        let (r, _) = send(&mut s, Instant::ZERO, &req_dh_block(nonce, sn, p, q, &block));
        assert!(matches!(r, ServerReply::Error(-404)), "legacy {legacy}: {r:?}");
    }
}

// ---- item 25 ------------------------------------------------------------------------------------------------------

/// A DC run after a valid req_DH_params made by our client; returns the pair (DC answered server_DH_params_ok and
/// the client consumed it) plus the secrets needed to forge set_client_DH_params.
fn at_set_client_dh(seed: &str) -> (Pair<'static>, [u8; 16], [u8; 16], [u8; 32]) {
    let mut p = pair(seed);
    assert!(p.round());
    assert!(p.client_send());
    let (nonce, sn, nn) = {
        let req = ReqDhParams::decode(body(&p.c2s[..p.c2s_len])).unwrap();
        let data = rsa_pad_decrypt(key(), req.encrypted_data.try_into().unwrap(), &mut SeededRng::new(b"x")).unwrap();
        let inner = PQInnerDataDc::read(&mut mtproto_sansio::tl::Reader::new(&data[..])).unwrap();
        (req.nonce, req.server_nonce, inner.new_nonce)
    };
    assert!(matches!(p.server_receive(), Some(ServerReply::Send(_))));
    (p, nonce, sn, nn)
}

fn forged_set_client(nonce: [u8; 16], sn: [u8; 16], nn: &[u8; 32], retry_id: i64, g_b: &[u8], pad: usize) -> Vec<u8> {
    let inner = tl(&ClientDhInnerData {
        nonce,
        server_nonce: sn,
        retry_id,
        g_b,
    });
    let mut data = Sha1::digest(&inner).to_vec();
    data.extend_from_slice(&inner);
    data.extend(std::iter::repeat_n(0u8, pad));
    let tmp = tmp_aes_key_iv(nn, &sn);
    ige_encrypt(&tmp.key, &tmp.iv, &mut data).unwrap();
    let body = tl(&SetClientDhParams {
        nonce,
        server_nonce: sn,
        encrypted_data: &data,
    });
    let mut m = vec![0u8; 8];
    m.extend_from_slice(&((1_735_910_001u64 << 32) | 16).to_le_bytes());
    m.extend_from_slice(&(body.len() as u32).to_le_bytes());
    m.extend_from_slice(&body);
    m
}

#[test]
fn chk_025_set_client_dh_params_is_checked() {
    let p_big = big(&prime());
    let good = be256(&BigUint::from(3u32).modpow(&(BigUint::from(99u32) << 2000u32), &p_big));
    let pad = |g_b: &[u8]| {
        (16 - (20
            + tl(&ClientDhInnerData {
                nonce: [0; 16],
                server_nonce: [0; 16],
                retry_id: 0,
                g_b,
            })
            .len())
            % 16)
            % 16
    };
    // The forging helper is right: a good g_b completes.
    let (mut pr, n, sn, nn) = at_set_client_dh("25");
    let (r, _) = send(
        &mut pr.server,
        pr.now,
        &forged_set_client(n, sn, &nn, 0, &good, pad(&good)),
    );
    assert!(matches!(r, ServerReply::Complete { .. }), "{r:?}");
    let bad_g_b = [
        be256(&BigUint::from(1u32)),
        be256(&(&p_big - 1u32)),
        be256(&((BigUint::from(1u32) << 1984u32) - 1u32)),
    ];
    for g_b in &bad_g_b {
        let (mut pr, n, sn, nn) = at_set_client_dh("25");
        let (r, _) = send(&mut pr.server, pr.now, &forged_set_client(n, sn, &nn, 0, g_b, pad(g_b)));
        assert!(matches!(r, ServerReply::Error(-404)), "{r:?}");
        assert!(pr.server.is_empty());
    }
    // retry_id must be 0 on the first attempt.
    let (mut pr, n, sn, nn) = at_set_client_dh("25");
    let (r, _) = send(
        &mut pr.server,
        pr.now,
        &forged_set_client(n, sn, &nn, 5, &good, pad(&good)),
    );
    assert!(matches!(r, ServerReply::Error(-404)));
    // 16 bytes of padding, a flipped ciphertext bit, the wrong tmp key: all -404.
    let (mut pr, n, sn, nn) = at_set_client_dh("25");
    let (r, _) = send(
        &mut pr.server,
        pr.now,
        &forged_set_client(n, sn, &nn, 0, &good, pad(&good) + 16),
    );
    assert!(matches!(r, ServerReply::Error(-404)));
    let (mut pr, n, sn, nn) = at_set_client_dh("25");
    let mut m = forged_set_client(n, sn, &nn, 0, &good, pad(&good));
    let at = m.len() - 40;
    m[at] ^= 1;
    let (r, _) = send(&mut pr.server, pr.now, &m);
    assert!(matches!(r, ServerReply::Error(-404)));
    let (mut pr, n, sn, _) = at_set_client_dh("25");
    let (r, _) = send(
        &mut pr.server,
        pr.now,
        &forged_set_client(n, sn, &[1; 32], 0, &good, pad(&good)),
    );
    assert!(matches!(r, ServerReply::Error(-404)));
}

#[test]
fn chk_025_key_id_collision_answers_retry_with_hash2() {
    let (mut pr, n, sn, nn) = at_set_client_dh("25c");
    let a_exp = BigUint::from(99u32) << 2000u32;
    let good = be256(&BigUint::from(3u32).modpow(&a_exp, &big(&prime())));
    let pad = (16
        - (20
            + tl(&ClientDhInnerData {
                nonce: n,
                server_nonce: sn,
                retry_id: 0,
                g_b: &good,
            })
            .len())
            % 16)
        % 16;
    let msg = forged_set_client(n, sn, &nn, 0, &good, pad);
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let r = pr
        .server
        .handle(pr.now, &mut SeededRng::new(b"c"), 1, &msg, &mut out, &|_| true)
        .unwrap();
    let ServerReply::Send(len) = r else { panic!("{r:?}") };
    let retry = DhGenRetry::decode(body(&out[..len])).unwrap();
    // The DC's key is g_b^a for its secret a, unknown here; check the hash against the client's view instead:
    // the client machine verifies it in chk_019; here check it is not hash1/hash3 of the same aux.
    assert_ne!(retry.new_nonce_hash2, [0; 16]);
    // The retry_id the DC now expects is that key's aux hash: a new attempt with retry_id 0 is refused.
    let good2 = be256(&BigUint::from(3u32).modpow(&(BigUint::from(77u32) << 2000u32), &big(&prime())));
    let (r, _) = send(&mut pr.server, pr.now, &forged_set_client(n, sn, &nn, 0, &good2, pad));
    assert!(matches!(r, ServerReply::Error(-404)), "{r:?}");
    // An identical retransmission of the collided request gets the identical dh_gen_retry.
    let (mut pr2, n2, sn2, nn2) = at_set_client_dh("25c");
    let msg2 = forged_set_client(n2, sn2, &nn2, 0, &good, pad);
    let mut o1 = [0u8; MAX_SERVER_MESSAGE];
    let mut o2 = [0u8; MAX_SERVER_MESSAGE];
    let r1 = pr2
        .server
        .handle(pr2.now, &mut SeededRng::new(b"1"), 1, &msg2, &mut o1, &|_| true)
        .unwrap();
    let r2 = pr2
        .server
        .handle(pr2.now, &mut SeededRng::new(b"2"), 1, &msg2, &mut o2, &|_| true)
        .unwrap();
    let (ServerReply::Send(l1), ServerReply::Send(l2)) = (r1, r2) else {
        panic!()
    };
    assert_eq!(o1[..l1], o2[..l2]);
    let _ = nn2;
}

#[test]
fn chk_025_dc_completes_with_correct_hash1() {
    let mut p = pair("25ok");
    assert_eq!(p.run(), Status::Done);
    assert_eq!(p.server.len(), 1, "finished run kept for retransmissions");
    // Retransmitting set_client_DH_params gets the same dh_gen_ok without a second key.
    let before = p.s2c[..p.s2c_len].to_vec();
    assert!(matches!(p.server_receive(), Some(ServerReply::Send(_))));
    assert_eq!(p.s2c[..p.s2c_len], before[..]);
}

#[test]
fn buffer_too_small_changes_nothing() {
    let mut c = ClientHandshake::new(ClientConfig::new(trusted(), 2), Instant::ZERO);
    let mut small = [0u8; 39];
    let mut rng = SeededRng::new(b"s");
    assert_eq!(
        c.poll_transmit(Instant::ZERO, &mut rng, &mut small)
            .unwrap_err()
            .required,
        40
    );
    let mut out = [0u8; 40];
    assert_eq!(c.poll_transmit(Instant::ZERO, &mut rng, &mut out).unwrap(), Some(40));
    let mut s = server(None);
    let mut small = [0u8; 100];
    assert!(
        s.handle(Instant::ZERO, &mut rng, 1, &req_pq([1; 16], 1), &mut small, &|_| false)
            .is_err()
    );
    assert!(s.is_empty());
}

#[test]
fn chk_023_runs_are_capped_per_peer_and_bound_to_their_peer() {
    let mut s = server(None);
    for i in 0..4u8 {
        let (r, _) = send(&mut s, Instant::ZERO, &req_pq([i; 16], u64::from(i) + 1));
        assert!(matches!(r, ServerReply::Send(_)));
    }
    // A fifth pending run from the same peer is refused; another peer still gets one.
    let (r, _) = send(&mut s, Instant::ZERO, &req_pq([9; 16], 9));
    assert!(matches!(r, ServerReply::Error(-429)), "{r:?}");
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let r = s
        .handle(
            Instant::ZERO,
            &mut SeededRng::new(b"p2"),
            2,
            &req_pq([9; 16], 9),
            &mut out,
            &|_| false,
        )
        .unwrap();
    assert!(matches!(r, ServerReply::Send(_)));
    // A run answers only its own peer: peer 3 naming peer 1's run gets -404 and does not disturb it.
    let (mut s, nonce, sn, pq, p, q) = dc_run(None);
    let req = req_dh(Tamper::None, nonce, sn, pq, p, q);
    let r = s
        .handle(Instant::ZERO, &mut SeededRng::new(b"p3"), 3, &req, &mut out, &|_| false)
        .unwrap();
    assert!(matches!(r, ServerReply::Error(-404)), "{r:?}");
    let (r, _) = send(&mut s, Instant::ZERO, &req);
    assert!(matches!(r, ServerReply::Send(_)), "{r:?}");
}

#[test]
fn chk_025_dc_retry_cap_ends_with_a_verified_dh_gen_fail() {
    // The DC gives up after its own cap (2) with dh_gen_fail; the client verifies hash3 and restarts from step 1.
    let (p, sends, completions) = with_collisions(u32::MAX, 10, 2);
    assert_eq!(completions, 0);
    assert!(sends >= 3);
    assert!(p.client.restarts() >= 1, "dh_gen_fail did not restart the client");
    assert!(!matches!(
        p.client.status(),
        Status::Failed(HandshakeError::NewNonceHash)
    ));
}

mod mutated {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Genuine DC answers with a few bytes flipped, fed at their own step: the client never panics, a dropped
        /// packet changes nothing, a fatal error ends the run, and nothing it sends afterwards exceeds its bound.
        #[test]
        fn client_survives_mutated_answers(step in 0usize..3, flips in prop::collection::vec((any::<u16>(), 1u8..=255), 1..4)) {
            let mut p = pair("prop");
            for _ in 0..step {
                prop_assert!(p.round());
            }
            prop_assert!(p.client_send());
            prop_assert!(p.server_receive().is_some());
            let mut msg = p.s2c[..p.s2c_len].to_vec();
            for (at, x) in &flips {
                let i = usize::from(*at) % msg.len();
                msg[i] ^= x;
            }
            let before = (p.client.status(), p.client.poll_timeout());
            match p.client.handle_packet(p.now, &msg) {
                Ok(()) => {}
                Err(e) if e.is_fatal() => prop_assert_eq!(p.client.status(), Status::Failed(e)),
                Err(_) => prop_assert_eq!((p.client.status(), p.client.poll_timeout()), before),
            }
            let mut out = [0u8; MAX_CLIENT_MESSAGE];
            if let Some(n) = p.client.poll_transmit(p.now, &mut p.client_rng, &mut out).unwrap() {
                prop_assert!(n <= MAX_CLIENT_MESSAGE);
            }
        }

        /// Genuine client messages with bytes flipped: the DC answers a message, −404, −429 or −444, never
        /// completes a key from a mutated request, and never holds more runs than its capacity.
        #[test]
        fn dc_survives_mutated_requests(step in 0usize..3, flips in prop::collection::vec((any::<u16>(), 1u8..=255), 1..4)) {
            let mut p = pair("prop-dc");
            for _ in 0..step {
                prop_assert!(p.round());
            }
            prop_assert!(p.client_send());
            let mut msg = p.c2s[..p.c2s_len].to_vec();
            for (at, x) in &flips {
                // Not the msg_id (bytes 8..16): a request that differs only there is still a valid request.
                let mut i = usize::from(*at) % msg.len();
                if (8..16).contains(&i) {
                    i += 8;
                }
                msg[i] ^= x;
            }
            let mut out = [0u8; MAX_SERVER_MESSAGE];
            let r = p.server.handle(p.now, &mut p.server_rng, 1, &msg, &mut out, &|_| false).unwrap();
            match r {
                ServerReply::Send(n) => prop_assert!(n <= MAX_SERVER_MESSAGE),
                ServerReply::Error(c) => prop_assert!(c == -404 || c == -429 || c == -444),
                ServerReply::Complete { .. } => prop_assert!(false, "a mutated set_client_DH_params created a key"),
            }
            prop_assert!(p.server.len() <= 4);
        }
    }
}

#[test]
fn plaintext_msg_id_parity_is_enforced_both_ways() {
    // A server message with a client-style (even) msg_id is dropped by the client.
    let mut p = pair("parity");
    assert!(p.client_send());
    p.server_receive().unwrap();
    let mut msg = p.s2c[..p.s2c_len].to_vec();
    msg[8] &= !3;
    assert_eq!(p.client.handle_packet(p.now, &msg), Err(HandshakeError::Malformed));
    assert_eq!(p.client.status(), Status::Running);
    // A client message with an odd msg_id gets -404 from the DC and creates no run.
    let mut s = server(None);
    let mut m = req_pq([5; 16], 1);
    m[8] |= 1;
    let (r, _) = send(&mut s, Instant::ZERO, &m);
    assert!(matches!(r, ServerReply::Error(-404)));
    assert!(s.is_empty());
}

#[test]
fn finished_runs_make_room_before_429() {
    // The pair's DC holds 4 runs: one finished (kept for retransmissions) and three pending from other peers.
    let mut p = pair("room");
    assert_eq!(p.run(), Status::Done);
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    for peer in 10..13u64 {
        let r = p.server.handle(
            p.now,
            &mut SeededRng::new(b"r"),
            peer,
            &req_pq([peer as u8; 16], 1),
            &mut out,
            &|_| false,
        );
        assert!(matches!(r.unwrap(), ServerReply::Send(_)));
    }
    assert_eq!(p.server.len(), 4);
    // A fifth run evicts the finished one rather than being refused; a sixth is refused.
    let r = p.server.handle(
        p.now,
        &mut SeededRng::new(b"r"),
        20,
        &req_pq([20; 16], 1),
        &mut out,
        &|_| false,
    );
    assert!(matches!(r.unwrap(), ServerReply::Send(_)));
    let r = p.server.handle(
        p.now,
        &mut SeededRng::new(b"r"),
        21,
        &req_pq([21; 16], 1),
        &mut out,
        &|_| false,
    );
    assert!(matches!(r.unwrap(), ServerReply::Error(-429)));
}

/// Item 57: the DC's per-peer handshake limits. Two peers fill an 8-run table at 4 runs each; a fifth run from a
/// full peer and a first run from a new peer both get −429 (never a silent drop, never an eviction of a live run);
/// the live runs keep being served; once they expire the newcomer is served.
#[test]
fn chk_057_dc_handshakes_in_flight_bounded_per_peer_and_in_total() {
    let mut s = server(None);
    let mut out = [0u8; MAX_SERVER_MESSAGE];
    let mut open = |s: &mut ServerHandshakes<'static, 8>, now: Instant, peer: u64, i: u8| {
        s.handle(
            now,
            &mut SeededRng::new(&[i]),
            peer,
            &req_pq([i; 16], u64::from(i) + 1),
            &mut out,
            &|_| false,
        )
        .unwrap()
    };
    for i in 0..8u8 {
        let peer = 1 + u64::from(i / 4);
        assert!(
            matches!(open(&mut s, Instant::ZERO, peer, i), ServerReply::Send(_)),
            "run {i}"
        );
    }
    assert_eq!(s.len(), 8);
    assert!(matches!(open(&mut s, Instant::ZERO, 1, 20), ServerReply::Error(-429)));
    assert!(matches!(open(&mut s, Instant::ZERO, 3, 21), ServerReply::Error(-429)));
    assert_eq!(s.len(), 8, "a refused run must not evict a live one");
    // A live run's identical retransmission is still answered while the table is full.
    assert!(matches!(
        open(&mut s, Instant::from_secs(1), 1, 0),
        ServerReply::Send(_)
    ));
    // After the 10-minute lifetime the table drains and the newcomer gets a run.
    let later = Instant::from_secs(601);
    s.handle_timeout(later);
    assert!(matches!(open(&mut s, later, 3, 22), ServerReply::Send(_)));
    assert!(s.len() <= 8);
}
