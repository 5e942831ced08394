//! Negative tests for docs/CHECKLIST.md items 58–73 and attacks B9–B12 against the secret-chat layer.
//!
//! A test-side peer ("B") that knows the chat key (it did the DH with num-bigint) crafts messages the real state
//! machine would never send: wrong parity, bad in_seq_no, decreasing layers, bad resend ranges, re-key actions for
//! other exchanges.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::needless_range_loop
)]

mod e2e_common;
use e2e_common::*;

use mtproto_sansio::crypto::aes::ige_encrypt;
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::kdf::{Direction, derive_v1};
use mtproto_sansio::crypto::packet::{open_v2, seal_v2};
use mtproto_sansio::e2e::file::{FileDecryptor, FileEncryptor, check_fingerprint, key_fingerprint};
use mtproto_sansio::e2e::visual::{cells, visualisation};
use mtproto_sansio::e2e::wire::{Action, DecryptedMessage, MessageLayer};
use mtproto_sansio::e2e::{AbortReason, DhConfig, DhConfigCache, E2eError, Event, LAYER, Received, SecretChat};
use mtproto_sansio::time::Instant;
use num_bigint::BigUint;
use rand::RngExt;
use sha1::{Digest, Sha1};
use std::time::Duration;

const NOW: Instant = Instant::ZERO;

fn be256(v: &BigUint) -> [u8; 256] {
    let b = v.to_bytes_be();
    let mut out = [0u8; 256];
    out[256 - b.len()..].copy_from_slice(&b);
    out
}

/// The test's stand-in for side B: knows the key, crafts arbitrary messages to A.
struct Peer {
    key: AuthKey,
    rng: rand::rngs::StdRng,
}

impl Peer {
    /// Seals an arbitrary plaintext (length prefix and padding included) as B → A.
    fn seal_plain(&self, mut plain: Vec<u8>) -> Vec<u8> {
        let sealed = seal_v2(&self.key, Direction::ServerToClient, &mut plain).unwrap();
        let mut out = (self.key.id() as i64).to_le_bytes().to_vec();
        out.extend_from_slice(&sealed.msg_key);
        out.extend_from_slice(&plain);
        out
    }

    fn plain(&mut self, tl: &[u8], pad: usize) -> Vec<u8> {
        let mut p = (tl.len() as u32).to_le_bytes().to_vec();
        p.extend_from_slice(tl);
        let mut padding = vec![0u8; pad];
        self.rng.fill(&mut padding[..]);
        p.extend_from_slice(&padding);
        p
    }

    fn layer(&mut self, layer: i32, out_raw: i32, in_raw: i32, msg: DecryptedMessage<'_>) -> Vec<u8> {
        self.layer_wire(layer, 2 * out_raw, 2 * in_raw + 1, msg)
    }

    fn layer_wire(&mut self, layer: i32, out_wire: i32, in_wire: i32, msg: DecryptedMessage<'_>) -> Vec<u8> {
        let l = MessageLayer {
            random_bytes: &[7u8; 16],
            layer,
            in_seq_no: in_wire,
            out_seq_no: out_wire,
            message: msg,
        };
        let mut tl = vec![0u8; l.tl_len()];
        l.encode(&mut tl).unwrap();
        let pad = 12 + (16 - (4 + tl.len() + 12) % 16) % 16;
        let p = self.plain(&tl, pad);
        self.seal_plain(p)
    }

    fn msg(&mut self, out_raw: i32, in_raw: i32, msg: DecryptedMessage<'_>) -> Vec<u8> {
        self.layer(LAYER, out_raw, in_raw, msg)
    }

    /// Opens a message A sent (A → B, x = 0) and returns its layer bytes.
    fn open(&self, pkt: &[u8]) -> Vec<u8> {
        let mut ct = pkt[24..].to_vec();
        open_v2(
            &self.key,
            Direction::ClientToServer,
            pkt[8..24].try_into().unwrap(),
            &mut ct,
        )
        .unwrap();
        let len = u32::from_le_bytes(ct[..4].try_into().unwrap()) as usize;
        ct[4..4 + len].to_vec()
    }
}

fn service(action: Action<'_>) -> DecryptedMessage<'_> {
    DecryptedMessage::Service { random_id: 1, action }
}

/// A real A with a known key; B is the test's [`Peer`].
fn known(seed: u64) -> (Chat, Peer) {
    let mut r = rng(seed);
    let p = prime();
    let cfg = DhConfig {
        version: 1,
        g: 3,
        p: Some(&p),
        random: &[],
    };
    let mut cache: DhConfigCache = DhConfigCache::new();
    let (req, g_a) = Chat::request(&mut r, &mut cache, &cfg).unwrap();
    let pm = BigUint::from_bytes_be(&p);
    let mut bb = [0u8; 256];
    r.fill(&mut bb[..]);
    let b = BigUint::from_bytes_be(&bb);
    let g_b = be256(&BigUint::from(3u32).modpow(&b, &pm));
    let key = be256(&BigUint::from_bytes_be(&g_a).modpow(&b, &pm));
    let auth = AuthKey::from_bytes(key);
    let a = req.complete(NOW, CHAT_ID, &g_b, auth.id() as i64).unwrap();
    (
        a,
        Peer {
            key: auth,
            rng: rng(seed ^ 1),
        },
    )
}

fn feed(a: &mut Chat, mut pkt: Vec<u8>) -> Result<Option<(u32, Vec<u8>)>, E2eError> {
    match a.decrypt(NOW, CHAT_ID, &mut pkt)? {
        Received::Message(d) => {
            let mut tl = vec![0u8; d.message.tl_len()];
            let mut w = mtproto_sansio::tl::Writer::new(&mut tl);
            d.message.write(&mut w).unwrap();
            Ok(Some((d.out_seq_no, tl)))
        }
        _ => Ok(None),
    }
}

/// Everything A wants to send now, opened by the peer.
fn outbox(a: &mut Chat, peer: &Peer, r: &mut rand::rngs::StdRng) -> Vec<Vec<u8>> {
    let mut pk = Vec::new();
    flush(a, r, NOW, &mut pk);
    pk.iter().map(|p| peer.open(p)).collect()
}

fn actions(layers: &[Vec<u8>]) -> Vec<String> {
    layers
        .iter()
        .map(|l| {
            let m = MessageLayer::decode(l).unwrap();
            format!("{:?}", m.message.action())
        })
        .collect()
}

fn noop() -> DecryptedMessage<'static> {
    service(Action::Noop)
}

// ------------------------------------------------------------------------------------------- items 58-61

#[test]
fn chk_058_bad_dh_configs_rejected() {
    let mut r = rng(58);
    let p = prime();
    let mut cache: DhConfigCache = DhConfigCache::new();
    let pm = BigUint::from_bytes_be(&p);
    let p_minus_2 = be256(&(&pm - 2u32));
    let short = (BigUint::from(1u32) << 2046u32) + 1u32;
    let long = (BigUint::from(1u32) << 2048u32) + 1u32;
    let bad: Vec<(Vec<u8>, u32)> = vec![
        (p_minus_2.to_vec(), 3),
        (short.to_bytes_be(), 3),
        (long.to_bytes_be(), 3),
        (p.clone(), 2), // p mod 8 = 3: 2 is not a generator of the right subgroup
        (p.clone(), 5),
        (p.clone(), 6),
        (p.clone(), 8),
        (p.clone(), 1),
    ];
    for (bp, g) in &bad {
        let cfg = DhConfig {
            version: 2,
            g: *g,
            p: Some(bp),
            random: &[],
        };
        assert!(
            matches!(Chat::request(&mut r, &mut cache, &cfg), Err(E2eError::Dh(_))),
            "g={g}"
        );
    }
    // dhConfigNotModified needs a cached config of that version.
    let nm = DhConfig {
        version: 9,
        g: 3,
        p: None,
        random: &[],
    };
    assert_eq!(
        Chat::request(&mut r, &mut cache, &nm).unwrap_err(),
        E2eError::NoDhConfig
    );
    let good = DhConfig {
        version: 9,
        g: 3,
        p: Some(&p),
        random: &[],
    };
    Chat::request(&mut r, &mut cache, &good).unwrap();
    assert_eq!(cache.version(), 9);
    Chat::request(&mut r, &mut cache, &nm).unwrap();
    let other = DhConfig {
        version: 10,
        g: 3,
        p: None,
        random: &[],
    };
    assert_eq!(
        Chat::request(&mut r, &mut cache, &other).unwrap_err(),
        E2eError::NoDhConfig
    );
}

fn g_a_for(seed: u64, random: &[u8]) -> [u8; 256] {
    let p = prime();
    let cfg = DhConfig {
        version: 1,
        g: 3,
        p: Some(&p),
        random,
    };
    let mut cache: DhConfigCache = DhConfigCache::new();
    Chat::request(&mut rng(seed), &mut cache, &cfg).unwrap().1
}

#[test]
fn chk_059_server_random_is_only_mixed_in() {
    let zero = [0u8; 256];
    // A zero server random does not make the exponent predictable: it still varies with the local RNG.
    assert_ne!(g_a_for(1, &zero), g_a_for(2, &zero));
    // And the server random is really mixed in: same local seed, different server random, different exponent.
    assert_ne!(g_a_for(1, &zero), g_a_for(1, &[0xffu8; 256]));
}

#[test]
fn atk_b10_zero_server_random_does_not_fix_the_key() {
    let zero = [0u8; 256];
    let keys: std::collections::HashSet<[u8; 256]> = (0..4).map(|s| g_a_for(100 + s, &zero)).collect();
    assert_eq!(keys.len(), 4);
}

#[test]
fn chk_060_bad_g_a_and_g_b_rejected() {
    let p = prime();
    let pm = BigUint::from_bytes_be(&p);
    let m = BigUint::from(1u32) << 1984u32;
    let bad = [
        BigUint::from(0u32),
        BigUint::from(1u32),
        BigUint::from(2u32),
        &pm - 1u32,
        pm.clone(),
        &m - 1u32,
        &pm - &m + 1u32,
    ];
    let cfg = DhConfig {
        version: 1,
        g: 3,
        p: Some(&p),
        random: &[],
    };
    let mut r = rng(60);
    for v in &bad {
        let mut cache: DhConfigCache = DhConfigCache::new();
        let res = Chat::accept(&mut r, NOW, 1, &mut cache, &cfg, &be256(v));
        assert!(matches!(res, Err(E2eError::Dh(_))));
        let (req, _) = Chat::request(&mut r, &mut cache, &cfg).unwrap();
        assert!(matches!(
            req.complete::<1024, 64, 64>(NOW, 1, &be256(v), 0),
            Err(E2eError::Dh(_))
        ));
    }
    // 2^1984 itself is acceptable.
    let mut cache: DhConfigCache = DhConfigCache::new();
    assert!(Chat::accept(&mut r, NOW, 1, &mut cache, &cfg, &be256(&m)).is_ok());
    // 257 significant bytes are refused before any arithmetic (item 56).
    let mut long = vec![1u8];
    long.extend_from_slice(&p);
    assert!(matches!(
        Chat::accept(&mut r, NOW, 1, &mut cache, &cfg, &long),
        Err(E2eError::Dh(_))
    ));
}

#[test]
fn chk_061_wrong_fingerprint_discards() {
    let mut r = rng(61);
    let p = prime();
    let cfg = DhConfig {
        version: 1,
        g: 3,
        p: Some(&p),
        random: &[],
    };
    let mut ca: DhConfigCache = DhConfigCache::new();
    let mut cb: DhConfigCache = DhConfigCache::new();
    let (req, g_a) = Chat::request(&mut r, &mut ca, &cfg).unwrap();
    let (b, g_b, fp) = Chat::accept(&mut r, NOW, 1, &mut cb, &cfg, &g_a).unwrap();
    assert_eq!(b.key_fingerprint(), fp);
    assert_eq!(
        req.complete::<1024, 64, 64>(NOW, 1, &g_b, fp ^ 1).unwrap_err(),
        E2eError::FingerprintMismatch
    );
}

// ------------------------------------------------------------------------------------------- item 62 / B11

fn sample_key() -> [u8; 256] {
    let v: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/auth_key_sample.json"
    )))
    .unwrap();
    hex::decode(v["values"]["auth_key"]["hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn chk_062_visualisation_known_answer_and_kept_across_rekey() {
    let key = sample_key();
    let v = visualisation(&key, &key);
    assert_eq!(
        hex::encode(v),
        "2f3107216012e3f638569fb504387206cbc191bc14e0f99ed2553b457761ed32a92c4da5"
    );
    let c = cells(&v);
    assert_eq!(c.len(), 144);
    assert_eq!(&c[..4], &[v[0] & 3, (v[0] >> 2) & 3, (v[0] >> 4) & 3, v[0] >> 6]);
    // Kept across a re-key.
    let (a, b, ..) = rekeyed_pair(62);
    assert_ne!(a.key_fingerprint(), a.visualisation()[0] as i64);
    assert_eq!(a.visualisation(), b.visualisation());
    let (a0, _) = pair(&mut rng(62));
    assert_eq!(a.visualisation(), a0.visualisation());
}

#[test]
fn atk_b11_visualisation_is_288_bits() {
    let key = sample_key();
    let v = visualisation(&key, &key);
    assert_eq!(v.len() * 8, 288);
    // Both halves depend on the key: the SHA-256 part is not a copy of the SHA-1 part.
    let s1 = Sha1::digest(key);
    assert_eq!(&v[..16], &s1[..16]);
    assert_ne!(&v[16..32], &s1[..16]);
    let mut other = key;
    other[255] ^= 1;
    assert_ne!(visualisation(&key, &other)[16..], v[16..]);
}

/// A pair after one completed re-key (driven over a clean link), with the pre-re-key fingerprint.
fn rekeyed_pair(seed: u64) -> (Chat, Chat, i64) {
    let mut r = rng(seed);
    let (mut a, mut b) = pair_with::<1024, 64, 64>(&mut r, CHAT_ID);
    let fp0 = a.key_fingerprint();
    let mut buf = vec![0u8; 4096];
    let s = a.encrypt(&mut r, &text(1, b"hi"), &mut buf).unwrap();
    let mut lb = Log::default();
    deliver(&mut b, NOW, buf[..s.len].to_vec(), &mut lb);
    a.start_rekey(&mut r).unwrap();
    pump(&mut a, &mut b, &mut r);
    assert_ne!(a.key_fingerprint(), fp0);
    (a, b, fp0)
}

fn pump(a: &mut Chat, b: &mut Chat, r: &mut rand::rngs::StdRng) {
    let (mut la, mut lb) = (Log::default(), Log::default());
    for _ in 0..8 {
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        flush(a, r, NOW, &mut pa);
        flush(b, r, NOW, &mut pb);
        for p in pa {
            deliver(b, NOW, p, &mut lb);
        }
        for p in pb {
            deliver(a, NOW, p, &mut la);
        }
    }
}

// ------------------------------------------------------------------------------------------- item 63 / B9

#[test]
fn chk_063_every_bit_flip_and_bad_layout_rejected() {
    let (mut a, mut peer) = known(63);
    let good = peer.msg(0, 0, noop());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert_eq!(
            a.decrypt(NOW, CHAT_ID, &mut bad).unwrap_err(),
            E2eError::Rejected,
            "byte {i}"
        );
    }
    // Length prefix past the payload, padding below 12 and above 1024, unaligned length: one uniform error.
    let l = MessageLayer {
        random_bytes: &[1; 16],
        layer: LAYER,
        in_seq_no: 1,
        out_seq_no: 0,
        message: noop(),
    };
    let mut tl = vec![0u8; l.tl_len()];
    l.encode(&mut tl).unwrap();
    let mut p = peer.plain(&tl, 16 - (4 + tl.len()) % 16);
    if (p.len() - 4 - tl.len()) >= 12 {
        p.truncate(p.len() - 16);
    }
    let small_pad = p;
    assert!(small_pad.len() - 4 - tl.len() < 12);
    let big_pad = peer.plain(&tl, 1040 + (16 - (4 + tl.len() + 1040) % 16) % 16);
    let mut past = peer.plain(&tl, 12 + (16 - (4 + tl.len() + 12) % 16) % 16);
    let plen = past.len() as u32;
    past[..4].copy_from_slice(&plen.to_le_bytes());
    for plain in [small_pad, big_pad, past] {
        let mut pkt = peer.seal_plain(plain);
        assert_eq!(a.decrypt(NOW, CHAT_ID, &mut pkt).unwrap_err(), E2eError::Rejected);
    }
    // The untouched message still works: nothing above changed the state.
    feed(&mut a, good).unwrap().unwrap();
}

#[test]
fn chk_063_v1_message_rejected() {
    let (mut a, mut peer) = known(631);
    let l = MessageLayer {
        random_bytes: &[1; 16],
        layer: LAYER,
        in_seq_no: 1,
        out_seq_no: 0,
        message: noop(),
    };
    let mut tl = vec![0u8; l.tl_len()];
    l.encode(&mut tl).unwrap();
    let mut plain = peer.plain(&tl, 12 + (16 - (4 + tl.len() + 12) % 16) % 16);
    // MTProto 1.0: msg_key = SHA1(plaintext)[4..20], v1 KDF.
    let msg_key: [u8; 16] = Sha1::digest(&plain)[4..20].try_into().unwrap();
    let kv = derive_v1(&peer.key, Direction::ServerToClient, &msg_key);
    ige_encrypt(&kv.key, &kv.iv, &mut plain).unwrap();
    let mut pkt = (peer.key.id() as i64).to_le_bytes().to_vec();
    pkt.extend_from_slice(&msg_key);
    pkt.extend_from_slice(&plain);
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut pkt).unwrap_err(), E2eError::Rejected);
}

#[test]
fn atk_b09_reflected_message_rejected_or_aborts() {
    // Reflecting A's own ciphertext back to A fails the msg_key check (x = 0 vs 8).
    let mut r = rng(9);
    let (mut a, _b) = pair(&mut r);
    let mut buf = vec![0u8; 4096];
    let s = a.encrypt(&mut r, &text(1, b"mine"), &mut buf).unwrap();
    let mut pkt = buf[..s.len].to_vec();
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut pkt).unwrap_err(), E2eError::Rejected);
    assert!(a.aborted().is_none());
    // A mirrored message that passes the crypto (seq_no parity of A's own direction) aborts the chat.
    let (mut a, mut peer) = known(90);
    let pkt = peer.layer_wire(LAYER, 1, 0, noop());
    assert_eq!(
        feed(&mut a, pkt).unwrap_err(),
        E2eError::Aborted(AbortReason::SeqParity)
    );
}

// ------------------------------------------------------------------------------------------- items 64-69

#[test]
fn chk_064_layer_never_decreases() {
    let (mut a, mut peer) = known(64);
    assert_eq!(a.peer_layer(), 46);
    let p = peer.layer(100, 0, 0, noop());
    feed(&mut a, p).unwrap();
    assert_eq!(a.poll_event(), Some(Event::PeerLayer(100)));
    assert_eq!(a.peer_layer(), 100);
    assert_eq!(a.effective_layer(), 100);
    let p = peer.layer(99, 1, 0, noop());
    assert_eq!(
        feed(&mut a, p).unwrap_err(),
        E2eError::Aborted(AbortReason::LayerDecreased)
    );
    // NotifyLayer obeys the same rule.
    let (mut a, mut peer) = known(641);
    let p = peer.msg(0, 0, service(Action::NotifyLayer(150)));
    feed(&mut a, p).unwrap();
    assert_eq!(a.peer_layer(), 150);
    let p = peer.msg(1, 0, service(Action::NotifyLayer(120)));
    assert_eq!(
        feed(&mut a, p).unwrap_err(),
        E2eError::Aborted(AbortReason::LayerDecreased)
    );
}

#[test]
fn chk_065_wrong_parity_aborts() {
    for (o, i) in [(1, 1), (0, 0), (-2, 1), (0, -1)] {
        let (mut a, mut peer) = known(65);
        let p = peer.layer_wire(LAYER, o, i, noop());
        assert_eq!(
            feed(&mut a, p).unwrap_err(),
            E2eError::Aborted(AbortReason::SeqParity),
            "({o},{i})"
        );
        assert_eq!(a.aborted(), Some(AbortReason::SeqParity));
        let mut again = peer.msg(0, 0, noop());
        assert_eq!(
            a.decrypt(NOW, CHAT_ID, &mut again).unwrap_err(),
            E2eError::Aborted(AbortReason::SeqParity)
        );
    }
}

#[test]
fn chk_066_one_resend_per_hole_and_duplicates_dropped() {
    let (mut a, mut peer) = known(66);
    let mut r = rng(660);
    outbox(&mut a, &peer, &mut r); // NotifyLayer
    let m0 = peer.msg(0, 0, noop());
    assert_eq!(feed(&mut a, m0.clone()).unwrap().unwrap().0, 0);
    // Duplicate: dropped.
    let mut dup = m0;
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut dup).unwrap(), Received::Duplicate);
    // Gap of 1 (seq 1 missing): held, one resend for exactly that hole (wire 2..2).
    let m2 = peer.msg(2, 0, noop());
    let mut m2b = m2.clone();
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut m2b).unwrap(), Received::Held);
    let mut m2c = m2;
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut m2c).unwrap(), Received::Duplicate);
    // Gap of 5 beyond it (seqs 3..=7 missing), then a second message beyond the same hole: still one request.
    let m8 = peer.msg(8, 0, noop());
    let mut x = m8.clone();
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut x).unwrap(), Received::Held);
    let m9 = peer.msg(9, 0, noop());
    let mut x = m9.clone();
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut x).unwrap(), Received::Held);
    let out = actions(&outbox(&mut a, &peer, &mut r));
    assert_eq!(
        out,
        vec![
            "Some(Resend { start_seq_no: 2, end_seq_no: 2 })".to_string(),
            "Some(Resend { start_seq_no: 6, end_seq_no: 14 })".to_string()
        ]
    );
    // Nothing was delivered past the hole; filling it releases in order.
    assert_eq!(a.seq().1, 1);
    assert_eq!(feed(&mut a, peer.msg(1, 0, noop())).unwrap().unwrap().0, 1);
    let mut got = vec![];
    while let Some(Event::Message(d)) = a.poll_event() {
        got.push(d.out_seq_no);
    }
    assert_eq!(got, vec![2]);
    for s in 3..8 {
        feed(&mut a, peer.msg(s, 0, noop())).unwrap();
    }
    let mut got = vec![];
    while let Some(Event::Message(d)) = a.poll_event() {
        got.push(d.out_seq_no);
    }
    assert_eq!(got, vec![8, 9]);
    assert_eq!(a.seq().1, 10);
    assert_eq!(a.held_count(), 0);
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
}

#[test]
fn chk_067_in_seq_no_bounds() {
    let mut r = rng(67);
    // A has sent one message (NotifyLayer): D = 0, so in_seq_no raw may be at most 1.
    let (mut a, mut peer) = known(67);
    outbox(&mut a, &peer, &mut r);
    feed(&mut a, peer.msg(0, 1, noop())).unwrap();
    assert_eq!(
        feed(&mut a, peer.msg(1, 2, noop())).unwrap_err(),
        E2eError::Aborted(AbortReason::InSeq)
    );
    // Decreasing.
    let (mut a, mut peer) = known(671);
    outbox(&mut a, &peer, &mut r);
    feed(&mut a, peer.msg(0, 1, noop())).unwrap();
    assert_eq!(
        feed(&mut a, peer.msg(1, 0, noop())).unwrap_err(),
        E2eError::Aborted(AbortReason::InSeq)
    );
}

fn resend(start: i32, end: i32) -> DecryptedMessage<'static> {
    service(Action::Resend {
        start_seq_no: start,
        end_seq_no: end,
    })
}

#[test]
fn chk_068_resend_requests() {
    let mut r = rng(68);
    let mut buf = vec![0u8; 4096];
    // A valid request re-emits exactly the asked messages with their original seq_nos, once.
    let (mut a, mut peer) = known(68);
    outbox(&mut a, &peer, &mut r); // seq 0: NotifyLayer
    for i in 1..4 {
        a.encrypt(&mut r, &text(i, format!("m{i}").as_bytes()), &mut buf)
            .unwrap();
    }
    let req = peer.msg(0, 4, resend(3, 5)); // A's wire out_seq_nos are odd: raw 1..=2
    feed(&mut a, req.clone()).unwrap();
    let again = outbox(&mut a, &peer, &mut r);
    let seqs: Vec<i32> = again
        .iter()
        .map(|l| MessageLayer::decode(l).unwrap().out_seq_no)
        .collect();
    assert_eq!(seqs, vec![3, 5]);
    let mut dup = req;
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut dup).unwrap(), Received::Duplicate);
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    // Range of 10^6, reversed, wrong parity, never sent: abort.
    for (s, e) in [(1, 2_000_001), (5, 3), (2, 4), (1, 41)] {
        let (mut a, mut peer) = known(681);
        outbox(&mut a, &peer, &mut r);
        let got = feed(&mut a, peer.msg(0, 1, resend(s, e))).unwrap_err();
        assert_eq!(got, E2eError::Aborted(AbortReason::ResendInvalid), "({s},{e})");
    }
    // More than MAX_RESEND_COUNT messages at once, all really sent: refused by the cap, not by the history.
    let (mut a, mut peer) = known(683);
    for i in 0..1010 {
        a.encrypt(&mut r, &text(i, b"x"), &mut buf).unwrap();
    }
    let got = feed(&mut a, peer.msg(0, 0, resend(3, 2003))).unwrap_err();
    assert_eq!(got, E2eError::Aborted(AbortReason::ResendInvalid));
    // Fell out of the bounded history: cannot satisfy it, abort.
    let (mut a, mut peer) = known(682);
    for i in 0..70 {
        a.encrypt(&mut r, &text(i, b"x"), &mut buf).unwrap();
    }
    let got = feed(&mut a, peer.msg(0, 0, resend(1, 1))).unwrap_err();
    assert_eq!(got, E2eError::Aborted(AbortReason::ResendUnavailable));
}

#[test]
fn chk_069_seq_nos_fixed_at_creation() {
    let mut r = rng(69);
    let (mut a, mut b) = pair(&mut r);
    let mut buf = vec![0u8; 4096];
    let mut pkts = vec![];
    for i in 0..4 {
        let s = a
            .encrypt(&mut r, &text(i, format!("n{i}").as_bytes()), &mut buf)
            .unwrap();
        pkts.push(buf[..s.len].to_vec());
    }
    // Delivered in reverse order; B still sees creation order.
    let mut log = Log::default();
    for p in pkts.into_iter().rev() {
        deliver(&mut b, NOW, p, &mut log);
    }
    // B asked for the hole; A answers with the same seq_nos.
    let mut pb = vec![];
    flush(&mut b, &mut r, NOW, &mut pb);
    let mut la = Log::default();
    for p in pb {
        deliver(&mut a, NOW, p, &mut la);
    }
    assert_eq!(
        log.texts,
        vec![b"n0".to_vec(), b"n1".to_vec(), b"n2".to_vec(), b"n3".to_vec()]
    );
    assert_eq!(log.seqs, vec![0, 1, 2, 3]);
}

// ------------------------------------------------------------------------------------------- items 70-72 / B12

#[test]
fn chk_070_rekey_trigger() {
    let mut r = rng(70);
    let (mut a, _b) = pair(&mut r);
    let week = Instant::ZERO.saturating_add(Duration::from_secs(7 * 24 * 3600));
    // Nothing encrypted yet: never due, whatever the age.
    assert!(!a.rekey_due(week.saturating_add(Duration::from_secs(3600))));
    let mut buf = vec![0u8; 4096];
    for i in 0..100 {
        a.encrypt(&mut r, &text(i, b"."), &mut buf).unwrap();
    }
    assert!(!a.rekey_due(NOW), "100 messages is not yet more than 100");
    assert!(!a.rekey_due(week), "exactly a week is not yet more than a week");
    a.encrypt(&mut r, &text(100, b"."), &mut buf).unwrap();
    assert!(a.rekey_due(NOW), "101 messages");
    let (mut a, _b) = pair(&mut r);
    a.encrypt(&mut r, &text(1, b"."), &mut buf).unwrap();
    assert!(a.rekey_due(week.saturating_add(Duration::from_secs(1))));
    // Due means poll_transmit starts one; no second while it is open.
    let mut out = vec![];
    flush(&mut a, &mut r, week.saturating_add(Duration::from_secs(1)), &mut out);
    assert!(a.rekey_in_progress());
    assert!(!a.rekey_due(week.saturating_add(Duration::from_secs(1))));
}

/// A (real) starts a re-key; returns A, the peer, and A's exchange_id and g_a as sent.
fn a_requests(seed: u64) -> (Chat, Peer, rand::rngs::StdRng, i64, Vec<u8>) {
    let (mut a, mut peer) = known(seed);
    let mut r = rng(seed ^ 7);
    outbox(&mut a, &peer, &mut r);
    feed(&mut a, peer.msg(0, 1, noop())).unwrap();
    a.start_rekey(&mut r).unwrap();
    let out = outbox(&mut a, &peer, &mut r);
    let l = MessageLayer::decode(&out[0]).unwrap();
    let Some(Action::RequestKey { exchange_id, g_a }) = l.message.action() else {
        panic!("no RequestKey")
    };
    let (ex, g_a) = (*exchange_id, g_a.to_vec());
    (a, peer, r, ex, g_a)
}

#[test]
fn chk_071_rekey_state_machine() {
    let p = BigUint::from_bytes_be(&prime());
    // AcceptKey for another exchange_id: ignored (no CommitKey, still waiting).
    let (mut a, mut peer, mut r, ex, g_a) = a_requests(71);
    let b = BigUint::from(0x1234_5678_9abc_def1u64) << 1900u32;
    let g_b = be256(&BigUint::from(3u32).modpow(&b, &p));
    let key = AuthKey::from_bytes(be256(&BigUint::from_bytes_be(&g_a).modpow(&b, &p)));
    let fp = key.id() as i64;
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::AcceptKey {
                exchange_id: ex ^ 1,
                g_b: &g_b,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    // AcceptKey with a wrong fingerprint: AbortKey.
    feed(
        &mut a,
        peer.msg(
            2,
            2,
            service(Action::AcceptKey {
                exchange_id: ex,
                g_b: &g_b,
                key_fingerprint: fp ^ 1,
            }),
        ),
    )
    .unwrap();
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec![format!("Some(AbortKey({ex}))")]
    );
    assert!(!a.rekey_in_progress());
    // AcceptKey while idle: ignored.
    feed(
        &mut a,
        peer.msg(
            3,
            3,
            service(Action::AcceptKey {
                exchange_id: ex,
                g_b: &g_b,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());

    // Correct AcceptKey: CommitKey goes out under the old key, then A switches.
    let (mut a, mut peer, mut r, ex, g_a) = a_requests(711);
    let key = AuthKey::from_bytes(be256(&BigUint::from_bytes_be(&g_a).modpow(&b, &p)));
    let fp = key.id() as i64;
    let old_fp = a.key_fingerprint();
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::AcceptKey {
                exchange_id: ex,
                g_b: &g_b,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec![format!(
            "Some(CommitKey {{ exchange_id: {ex}, key_fingerprint: {fp} }})"
        )]
    );
    assert_eq!(a.key_fingerprint(), fp);
    assert_ne!(fp, old_fp);
    assert!(a.has_old_key());

    // Tie-break: a concurrent request with a smaller id is ignored (ours stands) ...
    let (mut a, mut peer, mut r, ex, g_a) = a_requests(712);
    let (lo, hi) = (ex.wrapping_sub(1).min(ex), ex.wrapping_add(1).max(ex));
    if lo < ex {
        feed(
            &mut a,
            peer.msg(
                1,
                2,
                service(Action::RequestKey {
                    exchange_id: lo,
                    g_a: &g_b,
                }),
            ),
        )
        .unwrap();
        assert!(outbox(&mut a, &peer, &mut r).is_empty());
        assert!(a.rekey_in_progress());
    }
    let _ = g_a;
    // ... a larger one aborts ours silently and is accepted.
    let (mut a, mut peer, mut r, ex, _) = a_requests(713);
    if hi > ex || ex < i64::MAX {
        let their = ex.wrapping_add(1).max(ex);
        if their > ex {
            feed(
                &mut a,
                peer.msg(
                    1,
                    2,
                    service(Action::RequestKey {
                        exchange_id: their,
                        g_a: &g_b,
                    }),
                ),
            )
            .unwrap();
            let acts = actions(&outbox(&mut a, &peer, &mut r));
            assert_eq!(acts.len(), 1);
            assert!(
                acts[0].starts_with(&format!("Some(AcceptKey {{ exchange_id: {their}")),
                "{acts:?}"
            );
            let mut evs = vec![];
            while let Some(e) = a.poll_event() {
                evs.push(format!("{e:?}"));
            }
            assert!(evs.contains(&format!("RekeyAborted({ex})")));
        }
    }
    // Equal ids: both dropped, nothing sent.
    let (mut a, mut peer, mut r, ex, _) = a_requests(714);
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::RequestKey {
                exchange_id: ex,
                g_a: &g_b,
            }),
        ),
    )
    .unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    assert!(!a.rekey_in_progress());
    // A bad g_a in a RequestKey: AbortKey.
    let (mut a, mut peer) = known(715);
    let mut r = rng(715);
    outbox(&mut a, &peer, &mut r);
    feed(
        &mut a,
        peer.msg(
            0,
            1,
            service(Action::RequestKey {
                exchange_id: 5,
                g_a: &[2u8],
            }),
        ),
    )
    .unwrap();
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec!["Some(AbortKey(5))".to_string()]
    );
}

#[test]
fn chk_071_commit_key_checks() {
    // A is the acceptor of the peer's request here.
    let (mut a, mut peer) = known(716);
    let mut r = rng(716);
    outbox(&mut a, &peer, &mut r);
    let p = BigUint::from_bytes_be(&prime());
    let x = BigUint::from(0xfeed_beef_u64) << 2000u32;
    let g_x = be256(&BigUint::from(3u32).modpow(&x, &p));
    feed(
        &mut a,
        peer.msg(
            0,
            1,
            service(Action::RequestKey {
                exchange_id: 77,
                g_a: &g_x,
            }),
        ),
    )
    .unwrap();
    let out = outbox(&mut a, &peer, &mut r);
    let l = MessageLayer::decode(&out[0]).unwrap();
    let Some(Action::AcceptKey {
        exchange_id: 77,
        g_b,
        key_fingerprint,
    }) = l.message.action()
    else {
        panic!()
    };
    let key = AuthKey::from_bytes(be256(&BigUint::from_bytes_be(g_b).modpow(&x, &p)));
    assert_eq!(key.id() as i64, *key_fingerprint);
    let fp = *key_fingerprint;
    // CommitKey for another exchange: ignored.
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::CommitKey {
                exchange_id: 78,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    assert_ne!(a.key_fingerprint(), fp);
    // The right one: switch, Noop under the new key.
    let old = a.key_fingerprint();
    feed(
        &mut a,
        peer.msg(
            2,
            2,
            service(Action::CommitKey {
                exchange_id: 77,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert_eq!(a.key_fingerprint(), fp);
    let mut pk = vec![];
    flush(&mut a, &mut r, NOW, &mut pk);
    assert_eq!(i64::from_le_bytes(pk[0][..8].try_into().unwrap()), fp);
    // Old key dropped (no gaps): a message under it is now unreadable.
    assert!(!a.has_old_key());
    let mut stale = peer.msg(3, 3, noop());
    assert_eq!(i64::from_le_bytes(stale[..8].try_into().unwrap()), old);
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut stale).unwrap_err(), E2eError::Rejected);
}

/// The acceptor's last check: a CommitKey for the exchange it accepted, but naming a key it did not compute, must abort
/// the exchange (AbortKey out, RekeyAborted to the host) and never switch keys, and the exchange must stay dead.
#[test]
fn chk_071_commit_key_with_wrong_fingerprint_aborts() {
    let (mut a, mut peer) = known(717);
    let mut r = rng(717);
    outbox(&mut a, &peer, &mut r);
    let p = BigUint::from_bytes_be(&prime());
    let x = BigUint::from(0xdead_cafe_u64) << 2000u32;
    let g_x = be256(&BigUint::from(3u32).modpow(&x, &p));
    feed(
        &mut a,
        peer.msg(
            0,
            1,
            service(Action::RequestKey {
                exchange_id: 77,
                g_a: &g_x,
            }),
        ),
    )
    .unwrap();
    let out = outbox(&mut a, &peer, &mut r);
    let accept = MessageLayer::decode(&out[0]).unwrap();
    let Some(Action::AcceptKey {
        exchange_id: 77,
        key_fingerprint,
        ..
    }) = accept.message.action()
    else {
        panic!("no AcceptKey: {:?}", actions(&out))
    };
    let fp = *key_fingerprint;
    while a.poll_event().is_some() {}
    let old = a.key_fingerprint();
    assert!(a.rekey_in_progress());

    // Right exchange_id, wrong fingerprint.
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::CommitKey {
                exchange_id: 77,
                key_fingerprint: fp ^ 1,
            }),
        ),
    )
    .unwrap();
    assert_eq!(a.key_fingerprint(), old, "switched to a key the peer did not commit to");
    assert!(!a.rekey_in_progress());
    let mut evs = vec![];
    while let Some(e) = a.poll_event() {
        evs.push(format!("{e:?}"));
    }
    assert_eq!(evs, vec!["RekeyAborted(77)".to_string()]);
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec!["Some(AbortKey(77))".to_string()]
    );

    // The aborted exchange cannot be revived by a late CommitKey with the right fingerprint.
    feed(
        &mut a,
        peer.msg(
            2,
            2,
            service(Action::CommitKey {
                exchange_id: 77,
                key_fingerprint: fp,
            }),
        ),
    )
    .unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    assert_eq!(a.key_fingerprint(), old);
    // And the chat still works under the old key.
    let mut buf = vec![0u8; 4096];
    let s = a.encrypt(&mut r, &text(3, b"still here"), &mut buf).unwrap();
    assert_eq!(i64::from_le_bytes(buf[..8].try_into().unwrap()), old);
    assert!(s.len > 24);
}

#[test]
fn chk_072_old_key_kept_for_in_flight_then_dropped() {
    let mut r = rng(72);
    let (mut a, mut b) = pair(&mut r);
    let mut buf = vec![0u8; 4096];
    let s = a.encrypt(&mut r, &text(1, b"x"), &mut buf).unwrap();
    let mut lb = Log::default();
    let mut la = Log::default();
    deliver(&mut b, NOW, buf[..s.len].to_vec(), &mut lb);
    a.start_rekey(&mut r).unwrap();
    let mut pa = vec![];
    flush(&mut a, &mut r, NOW, &mut pa); // NotifyLayer, RequestKey
    for p in pa.drain(..) {
        deliver(&mut b, NOW, p, &mut lb);
    }
    // B answers with AcceptKey; A commits and switches but keeps the old key.
    let mut pb = vec![];
    flush(&mut b, &mut r, NOW, &mut pb);
    for p in pb.drain(..) {
        deliver(&mut a, NOW, p, &mut la);
    }
    flush(&mut a, &mut r, NOW, &mut pa); // CommitKey
    assert!(a.has_old_key());
    // Before the CommitKey reaches B, B sends under the old key: still readable by A.
    let s = b.encrypt(&mut r, &text(2, b"in flight"), &mut buf).unwrap();
    let in_flight = buf[..s.len].to_vec();
    deliver(&mut a, NOW, in_flight, &mut la);
    assert!(la.texts.contains(&b"in flight".to_vec()));
    assert!(a.has_old_key(), "no message under the new key yet");
    for p in pa.drain(..) {
        deliver(&mut b, NOW, p, &mut lb);
    }
    assert!(!b.has_old_key(), "B drops the old key after CommitKey with no gaps");
    flush(&mut b, &mut r, NOW, &mut pb); // Noop under the new key
    for p in pb.drain(..) {
        deliver(&mut a, NOW, p, &mut la);
    }
    assert!(!a.has_old_key(), "A drops the old key after the first new-key message");
    assert_eq!(a.key_fingerprint(), b.key_fingerprint());
}

#[test]
fn atk_b12_rekey_message_from_another_chat_rejected() {
    let mut r = rng(12);
    let (mut a1, mut b1) = pair_with::<1024, 64, 64>(&mut r, CHAT_ID);
    let (mut a2, _b2) = pair_with::<1024, 64, 64>(&mut r, CHAT_ID);
    let mut buf = vec![0u8; 4096];
    a1.encrypt(&mut r, &text(1, b"x"), &mut buf).unwrap();
    a1.start_rekey(&mut r).unwrap();
    let mut pk = vec![];
    flush(&mut a1, &mut r, NOW, &mut pk);
    // The RequestKey of chat 1, injected into chat 2 (same chat id even): refused, chat 2 untouched.
    for p in &pk {
        let mut x = p.clone();
        assert_eq!(a2.decrypt(NOW, CHAT_ID, &mut x).unwrap_err(), E2eError::Rejected);
        let mut y = p.clone();
        assert_eq!(b1.decrypt(NOW, CHAT_ID + 1, &mut y).unwrap_err(), E2eError::WrongChat);
    }
    assert!(!a2.rekey_in_progress());
    let mut out = vec![];
    flush(&mut a2, &mut r, NOW, &mut out);
    assert_eq!(out.len(), 1, "chat 2 only sends its own layer notification");
}

// ------------------------------------------------------------------------------------------- item 73

#[test]
fn chk_073_file_fingerprint_checked() {
    let key: [u8; 32] = core::array::from_fn(|i| i as u8);
    let iv: [u8; 32] = core::array::from_fn(|i| 32 + i as u8);
    assert_eq!(key_fingerprint(&key, &iv), -217561997);
    assert!(check_fingerprint(&key, &iv, -217561997).is_ok());
    assert!(check_fingerprint(&key, &iv, -217561996).is_err());
    assert!(FileDecryptor::new(&key, &iv, 1).is_err());
    // Swapping the iv of another file changes the fingerprint.
    let mut iv2 = iv;
    iv2[31] ^= 1;
    assert!(check_fingerprint(&key, &iv2, -217561997).is_err());
}

#[test]
fn chk_073_streamed_parts_equal_one_shot_and_round_trip() {
    let mut r = rng(731);
    let (mut enc, key, iv, fp) = FileEncryptor::generate(&mut r);
    let (_, key2, iv2, _) = FileEncryptor::generate(&mut r);
    assert_ne!((key, iv), (key2, iv2), "fresh key and iv per file");
    let mut data = vec![0u8; 4096 + 512];
    r.fill(&mut data[..]);
    let mut whole = data.clone();
    ige_encrypt(&key, &iv, &mut whole).unwrap();
    let mut parts = data.clone();
    for chunk in [0..1024, 1024..1040, 1040..4096, 4096..4608] {
        enc.encrypt_part(&mut parts[chunk]).unwrap();
    }
    assert_eq!(parts, whole);
    let mut dec = FileDecryptor::new(&key, &iv, fp).unwrap();
    for chunk in [0..16, 16..2048, 2048..4608] {
        dec.decrypt_part(&mut parts[chunk]).unwrap();
    }
    assert_eq!(parts, data);
    assert!(enc.encrypt_part(&mut [0u8; 15]).is_err());
}

#[test]
fn wire_round_trips_and_rejects_garbage() {
    let (mut a, mut peer) = known(1);
    let ids = [1i64, 2, 3];
    let msgs = [
        service(Action::ReadMessages(mtproto_sansio::tl::TlVec::from_slice(&ids))),
        service(Action::DeleteMessages(mtproto_sansio::tl::TlVec::from_slice(&ids))),
        service(Action::ScreenshotMessages(mtproto_sansio::tl::TlVec::from_slice(&ids))),
        service(Action::SetMessageTtl(30)),
        service(Action::FlushHistory),
        service(Action::Typing(0x16bf744e)),
        text(5, b"hello"),
    ];
    for (i, m) in msgs.iter().enumerate() {
        let pkt = peer.msg(i as i32, 0, *m);
        let (seq, tl) = feed(&mut a, pkt).unwrap().unwrap();
        assert_eq!(seq, i as u32);
        let mut want = vec![0u8; m.tl_len()];
        m.write(&mut mtproto_sansio::tl::Writer::new(&mut want)).unwrap();
        assert_eq!(tl, want);
    }
    // Hosts cannot send protocol actions themselves.
    let mut buf = vec![0u8; 4096];
    let mut r = rng(2);
    assert_eq!(
        a.encrypt(&mut r, &noop(), &mut buf).unwrap_err(),
        E2eError::ReservedAction
    );
    // A too-small output buffer changes nothing.
    let before = a.seq();
    assert!(matches!(
        a.encrypt(&mut r, &text(1, b"x"), &mut buf[..40]),
        Err(E2eError::BufferTooSmall { .. })
    ));
    assert_eq!(a.seq(), before);
    let _ = SecretChat::<64, 1, 1>::persisted_len();
}

#[test]
fn chk_070_no_second_rekey_while_one_is_open() {
    let p = BigUint::from_bytes_be(&prime());
    let x = BigUint::from(0xabcd_u64) << 2000u32;
    let g_x = be256(&BigUint::from(3u32).modpow(&x, &p));
    let (mut a, mut peer) = known(700);
    let mut r = rng(700);
    outbox(&mut a, &peer, &mut r);
    // The peer's first request is accepted ...
    feed(
        &mut a,
        peer.msg(
            0,
            1,
            service(Action::RequestKey {
                exchange_id: 10,
                g_a: &g_x,
            }),
        ),
    )
    .unwrap();
    let acts = actions(&outbox(&mut a, &peer, &mut r));
    assert!(acts[0].starts_with("Some(AcceptKey { exchange_id: 10"), "{acts:?}");
    // ... a second one while it is open is refused, and our own start_rekey does nothing.
    feed(
        &mut a,
        peer.msg(
            1,
            2,
            service(Action::RequestKey {
                exchange_id: 11,
                g_a: &g_x,
            }),
        ),
    )
    .unwrap();
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec!["Some(AbortKey(11))".to_string()]
    );
    a.start_rekey(&mut r).unwrap();
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    // The first exchange is still the one in progress: its CommitKey completes it.
    let before = a.key_fingerprint();
    let out = peer.msg(2, 3, service(Action::AbortKey(11)));
    feed(&mut a, out).unwrap();
    assert!(a.rekey_in_progress(), "AbortKey for another exchange_id is ignored");
    assert_eq!(a.key_fingerprint(), before);
}

#[test]
fn chk_068_resend_acted_on_at_once_even_out_of_order_and_only_once() {
    let mut r = rng(684);
    let mut buf = vec![0u8; 4096];
    let (mut a, mut peer) = known(684);
    outbox(&mut a, &peer, &mut r); // raw 0: NotifyLayer
    a.encrypt(&mut r, &text(1, b"m1"), &mut buf).unwrap(); // raw 1
    // The request arrives beyond a hole (peer seq 1 while seq 0 is missing): held, but answered now.
    let mut req = peer.msg(1, 2, resend(3, 3));
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut req).unwrap(), Received::Held);
    let out = outbox(&mut a, &peer, &mut r);
    let seqs: Vec<i32> = out
        .iter()
        .map(|l| MessageLayer::decode(l).unwrap().out_seq_no)
        .collect();
    // Our own resend request for the hole (a new message, seq 2 → wire 5) and the answer (wire 3).
    assert!(seqs.contains(&3), "{seqs:?}");
    // When the hole fills, the held request is delivered but not acted on a second time.
    feed(&mut a, peer.msg(0, 2, noop())).unwrap();
    while a.poll_event().is_some() {}
    assert!(outbox(&mut a, &peer, &mut r).is_empty());
    assert_eq!(a.seq().1, 2);
}

#[test]
fn chk_066_message_too_large_to_hold_is_asked_for_again() {
    let (mut a, mut peer) = known(666);
    let mut r = rng(666);
    outbox(&mut a, &peer, &mut r);
    let big = vec![b'z'; 1500]; // the chat holds at most 1024 bytes per message
    let big_msg = text(3, &big);
    let pkt = peer.msg(1, 0, big_msg);
    let mut x = pkt.clone();
    assert_eq!(a.decrypt(NOW, CHAT_ID, &mut x).unwrap(), Received::Deferred);
    // One request covering the hole and the deferred message (wire 0..=2).
    assert_eq!(
        actions(&outbox(&mut a, &peer, &mut r)),
        vec!["Some(Resend { start_seq_no: 0, end_seq_no: 2 })".to_string()]
    );
    assert!(a.aborted().is_none());
    // Resent in order, both are delivered; the big one straight from the host buffer.
    feed(&mut a, peer.msg(0, 0, noop())).unwrap();
    let (seq, tl) = feed(&mut a, pkt).unwrap().unwrap();
    assert_eq!(seq, 1);
    assert!(tl.len() > 1500);
}
