//! Batch decryption (`crypto::packet::decrypt_batch`, `crypto::aes::ige_decrypt_and_hash_batch`): packets of several
//! sessions decrypted with their IGE chains interleaved must give, packet by packet, exactly what the one-packet path
//! gives: the same verified fields and bytes, the same uniform failure (docs/CHECKLIST.md items 27-30) for a bad
//! packet, which fails alone.

use mtproto_sansio::crypto::aes::{
    IgeHashLane, MAX_BATCH, NotBlockAligned, ige_decrypt_and_hash, ige_decrypt_and_hash_batch, ige_encrypt,
};
use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::kdf::Direction;
use mtproto_sansio::crypto::packet::{
    BatchPacket, DecryptError, MessageHeader, PaddingPolicy, decrypt, decrypt_batch, encrypt_raw_for_tests,
    encrypt_with_policy,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sha2::{Digest, Sha256};

const C2S: Direction = Direction::ClientToServer;
const S2C: Direction = Direction::ServerToClient;

fn key(seed: u8) -> AuthKey {
    AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)))
}

fn header(n: u64) -> MessageHeader {
    MessageHeader {
        salt: 0x1122_3344_5566_7788 ^ n,
        session_id: 0xdead_beef_0bad_f00d ^ n,
        msg_id: 0x6777_e5ed_0001_a2b4 + 4 * n,
        seq_no: n as u32,
    }
}

fn packet(k: &AuthKey, dir: Direction, n: u64, body_len: usize, extra_blocks: u8, seed: u64) -> Vec<u8> {
    let body: Vec<u8> = (0..body_len).map(|i| (i as u64 * 7 + n) as u8).collect();
    let policy = PaddingPolicy::new(extra_blocks).unwrap();
    let mut out = vec![0u8; policy.max_encrypted_len(body_len).unwrap()];
    let enc = encrypt_with_policy(
        k,
        dir,
        &header(n),
        &body,
        policy,
        &mut StdRng::seed_from_u64(seed),
        &mut out,
    )
    .unwrap();
    out.truncate(enc.len);
    out
}

/// The verified fields of one packet, owned: salt, session_id, msg_id, seq_no, quick-ack token, padding, body.
type Fields = (u64, u64, u64, u32, u32, usize, Vec<u8>);

/// What one packet decrypts to, owned, to compare the two paths (`Verified` borrows its buffer).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    result: Result<Fields, DecryptError>,
    /// The whole buffer afterwards: plaintext in place, or zeros after a rejection.
    buffer: Vec<u8>,
}

fn single(k: &AuthKey, dir: Direction, mut p: Vec<u8>) -> Outcome {
    let result = decrypt(k, dir, &mut p).map(|v| {
        (
            v.salt(),
            v.session_id(),
            v.msg_id(),
            v.seq_no(),
            v.quick_ack_token(),
            v.padding_len(),
            v.body().to_vec(),
        )
    });
    Outcome { result, buffer: p }
}

fn batched(dir: Direction, items: &[(AuthKey, Vec<u8>)]) -> Vec<Outcome> {
    let mut bufs: Vec<Vec<u8>> = items.iter().map(|(_, p)| p.clone()).collect();
    let mut results: Vec<Option<Result<Fields, DecryptError>>> = (0..items.len()).map(|_| None).collect();
    {
        let mut batch: Vec<BatchPacket<'_, '_>> = items
            .iter()
            .zip(bufs.iter_mut())
            .map(|((k, _), b)| BatchPacket { key: k, packet: b })
            .collect();
        decrypt_batch(dir, &mut batch, |i, r| {
            assert!(results[i].is_none(), "outcome {i} reported twice");
            results[i] = Some(r.map(|v| {
                (
                    v.salt(),
                    v.session_id(),
                    v.msg_id(),
                    v.seq_no(),
                    v.quick_ack_token(),
                    v.padding_len(),
                    v.body().to_vec(),
                )
            }));
        });
        assert!(batch.iter().all(|p| p.packet.is_empty()), "every packet is taken");
    }
    results
        .into_iter()
        .zip(bufs)
        .map(|(r, buffer)| Outcome {
            result: r.expect("every packet gets an outcome"),
            buffer,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random batches (up to 12 packets, so also more than one group of MAX_BATCH) of valid packets under different
    /// keys, some tampered: each outcome and buffer equals the one-packet path's.
    #[test]
    fn batch_equals_single_packet_decryption(
        specs in prop::collection::vec((any::<u8>(), 0usize..700, 0u8..4, any::<u64>(), prop::option::of((0usize..800, 0u8..8))), 0..=12),
        reverse in any::<bool>(),
    ) {
        let dir = if reverse { S2C } else { C2S };
        let items: Vec<(AuthKey, Vec<u8>)> = specs
            .iter()
            .enumerate()
            .map(|(n, &(seed, words, extra, rng, flip))| {
                let k = key(seed);
                let mut p = packet(&k, dir, n as u64, words * 4, extra, rng);
                if let Some((at, bit)) = flip {
                    let at = at % p.len();
                    p[at] ^= 1 << bit;
                }
                (k, p)
            })
            .collect();
        let got = batched(dir, &items);
        for (i, ((k, p), g)) in items.iter().zip(got).enumerate() {
            let want = single(k, dir, p.clone());
            prop_assert_eq!(g, want, "packet {}", i);
        }
    }
}

/// The IGE layer alone: every lane ends as `ige_decrypt_and_hash` leaves it, for lanes of different lengths (around
/// the 64-byte stretches and the first stretch), each hasher primed with `absorbed` bytes.
#[test]
fn ige_batch_equals_the_fused_single_chain() {
    let lens = [0usize, 16, 32, 48, 64, 80, 128, 144, 1040, 4096, 16, 0];
    for absorbed in [0usize, 16, 32, 48, 64, 100] {
        let keys: Vec<[u8; 32]> = (0..lens.len()).map(|i| [i as u8 + 1; 32]).collect();
        let ivs: Vec<[u8; 32]> = (0..lens.len())
            .map(|i| core::array::from_fn(|j| (i * 32 + j) as u8))
            .collect();
        let cipher: Vec<Vec<u8>> = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let mut b: Vec<u8> = (0..len).map(|j| (j * 13 + i) as u8).collect();
                ige_encrypt(&keys[i], &ivs[i], &mut b).unwrap();
                b
            })
            .collect();
        let prefix = vec![9u8; absorbed];
        let mut single: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for i in 0..lens.len() {
            let mut b = cipher[i].clone();
            let mut h = Sha256::new_with_prefix(&prefix);
            ige_decrypt_and_hash(&keys[i], &ivs[i], &mut b, &mut h, absorbed).unwrap();
            single.push((b, h.finalize().to_vec()));
        }
        let mut bufs = cipher.clone();
        let mut hashers: Vec<Sha256> = (0..lens.len()).map(|_| Sha256::new_with_prefix(&prefix)).collect();
        let mut lanes: Vec<IgeHashLane<'_>> = keys
            .iter()
            .zip(&ivs)
            .zip(bufs.iter_mut().zip(hashers.iter_mut()))
            .map(|((key, iv), (buf, hasher))| IgeHashLane { key, iv, buf, hasher })
            .collect();
        assert!(lanes.len() > MAX_BATCH, "the test covers more than one group");
        ige_decrypt_and_hash_batch(&mut lanes, absorbed).unwrap();
        drop(lanes);
        for (i, ((b, h), (want_b, want_h))) in bufs.iter().zip(hashers).zip(&single).enumerate() {
            assert_eq!(b, want_b, "lane {i}, absorbed {absorbed}");
            assert_eq!(h.finalize().to_vec(), *want_h, "lane {i}, absorbed {absorbed}");
        }
    }
}

/// One lane that is not a whole number of blocks refuses the whole call before any lane is touched.
#[test]
fn ige_batch_refuses_an_unaligned_lane_untouched() {
    let (k, iv) = ([1u8; 32], [2u8; 32]);
    let mut a = vec![5u8; 64];
    let mut b = vec![6u8; 33];
    let (mut ha, mut hb) = (Sha256::new(), Sha256::new());
    let mut lanes = [
        IgeHashLane {
            key: &k,
            iv: &iv,
            buf: &mut a,
            hasher: &mut ha,
        },
        IgeHashLane {
            key: &k,
            iv: &iv,
            buf: &mut b,
            hasher: &mut hb,
        },
    ];
    assert_eq!(ige_decrypt_and_hash_batch(&mut lanes, 32), Err(NotBlockAligned));
    assert_eq!(a, vec![5u8; 64]);
    assert_eq!(b, vec![6u8; 33]);
    assert_eq!(ha.finalize(), Sha256::new().finalize());
}

/// Plaintext with an arbitrary msg_len field and `padding` bytes of padding, for the raw (check-free) encryptor.
fn raw_plaintext(msg_len: i32, body_len: usize, padding: usize) -> Vec<u8> {
    let h = header(0);
    let mut p = Vec::new();
    p.extend(h.salt.to_le_bytes());
    p.extend(h.session_id.to_le_bytes());
    p.extend(h.msg_id.to_le_bytes());
    p.extend(h.seq_no.to_le_bytes());
    p.extend(msg_len.to_le_bytes());
    p.extend((0..body_len).map(|i| (i * 7 + 1) as u8));
    p.extend((0..padding).map(|i| (i as u8) ^ 0x5a));
    assert_eq!(p.len() % 16, 0);
    p
}

fn raw_packet(k: &AuthKey, plaintext: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; plaintext.len() + 24];
    encrypt_raw_for_tests(k, C2S, plaintext, &mut out).unwrap();
    out
}

/// Items 27-30 in a batch: each class of bad packet, placed among valid packets of other sessions (other keys, other
/// lengths), is rejected with the one `Rejected` and its buffer zeroed, exactly as `decrypt` does, and every other
/// packet of the batch still verifies with its own body.
#[test]
fn chk_029_batch_rejects_each_bad_packet_alone() {
    let bad_key = key(200);
    let good = raw_packet(&bad_key, &raw_plaintext(1040 - 12, 1040 - 12, 12));
    let mut classes: Vec<(&str, Vec<u8>, AuthKey)> = Vec::new();
    let mut p = good.clone();
    p[..8].copy_from_slice(&key(201).id().to_le_bytes());
    classes.push(("wrong key id", p, bad_key.clone()));
    let mut p = good.clone();
    p[..8].fill(0);
    classes.push(("zero key id", p, bad_key.clone()));
    classes.push(("wrong key", good.clone(), key(201)));
    let mut p = good.clone();
    p[12] ^= 4;
    classes.push(("msg_key flip", p, bad_key.clone()));
    let mut p = good.clone();
    p[1000] ^= 4;
    classes.push(("ciphertext flip", p, bad_key.clone()));
    classes.push((
        "padding 8",
        raw_packet(&bad_key, &raw_plaintext(1032, 1032, 8)),
        bad_key.clone(),
    ));
    classes.push((
        "padding 1040",
        raw_packet(&bad_key, &raw_plaintext(0, 0, 1040)),
        bad_key.clone(),
    ));
    classes.push((
        "negative len",
        raw_packet(&bad_key, &raw_plaintext(-4, 0, 1040)),
        bad_key.clone(),
    ));
    classes.push((
        "len % 4",
        raw_packet(&bad_key, &raw_plaintext(1002, 1000, 40)),
        bad_key.clone(),
    ));
    classes.push((
        "len past end",
        raw_packet(&bad_key, &raw_plaintext(1044, 1000, 40)),
        bad_key.clone(),
    ));
    classes.push(("short", good[..71].to_vec(), bad_key.clone()));
    classes.push(("unaligned", good[..good.len() - 4].to_vec(), bad_key.clone()));
    classes.push(("prefix only", good[..20].to_vec(), bad_key.clone()));
    classes.push(("reflected", packet(&bad_key, S2C, 0, 64, 0, 3), bad_key.clone()));
    // The same packet unmodified verifies in a batch, so each rejection below is its class's doing.
    let ok = batched(C2S, &[(bad_key.clone(), good.clone())]);
    assert!(ok[0].result.is_ok());

    for (name, bad, k) in classes {
        for at in [0, 3, MAX_BATCH - 1] {
            let mut items: Vec<(AuthKey, Vec<u8>)> = (0..MAX_BATCH)
                .map(|n| {
                    let k = key(n as u8);
                    let p = packet(&k, C2S, n as u64, 16 * n + 4, n as u8 % 3, n as u64);
                    (k, p)
                })
                .collect();
            items[at] = (k.clone(), bad.clone());
            let got = batched(C2S, &items);
            for (i, ((k, p), g)) in items.iter().zip(got).enumerate() {
                let want = single(k, C2S, p.clone());
                if i == at {
                    assert_eq!(g.result, Err(DecryptError::Rejected), "{name} at {at}");
                    assert!(g.buffer.iter().all(|&b| b == 0), "{name} at {at}: buffer zeroed");
                } else {
                    let (.., body) = g
                        .result
                        .as_ref()
                        .unwrap_or_else(|_| panic!("{name} at {at}: packet {i} fails"));
                    assert_eq!(body.len(), 16 * i + 4, "{name} at {at}: packet {i}");
                }
                assert_eq!(g, want, "{name} at {at}: packet {i} differs from decrypt");
            }
        }
    }
}

/// An empty batch reports nothing.
#[test]
fn empty_batch_reports_nothing() {
    decrypt_batch(C2S, &mut [], |i, _| panic!("outcome {i} of an empty batch"));
}
