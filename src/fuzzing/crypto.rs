//! Fuzz entry points for `crypto`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::crypto::auth_key::AuthKey;
use crate::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("packet_decrypt", packet_decrypt)];

/// The fixed auth key the `packet_decrypt` target decrypts with (public: it is a fuzzing fixture, not a secret), so
/// the seed corpus can hold packets that pass every check.
pub fn fuzz_auth_key() -> AuthKey {
    AuthKey::from_bytes(core::array::from_fn(|i| (i as u8).wrapping_mul(167).wrapping_add(13)))
}

/// Largest input the target looks at; longer inputs are truncated so the stack buffers stay bounded.
pub const MAX_FUZZ_PACKET: usize = 4096;

/// The fuzzer's RNG: seeded from the input, so a crash reproduces from the input alone.
use super::SeededRng as HashRng;

/// Decrypts arbitrary bytes as an MTProto 2.0 packet (both directions, alone and in a `decrypt_batch` beside its
/// first half, which must agree) and as a 1.0 bind message: must never panic, and whatever is accepted must satisfy
/// the codec's invariants. Then encrypts the input as a body and asserts that
/// it decrypts back to the same header and body, and is rejected in the other direction.
#[allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding
pub fn packet_decrypt(data: &[u8]) {
    let key = fuzz_auth_key();
    let input = data.get(..data.len().min(MAX_FUZZ_PACKET)).unwrap_or(&[]);
    let mut buf = [0u8; MAX_FUZZ_PACKET];
    let Some(work) = buf.get_mut(..input.len()) else { return };

    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        work.copy_from_slice(input);
        match packet::decrypt(&key, dir, work) {
            Ok(v) => {
                let body = v.body().len();
                assert!(body % 4 == 0);
                assert!((packet::MIN_PADDING..=packet::MAX_PADDING).contains(&v.padding_len()));
                assert_eq!(packet::encrypted_len(body, v.padding_len()), Some(input.len()));
                assert!(v.quick_ack_token() & 0x8000_0000 != 0);
            }
            Err(packet::DecryptError::Rejected) => assert!(work.iter().all(|&b| b == 0)),
        }
    }
    batch_equals_single(&key, input);
    work.copy_from_slice(input);
    if let Ok(m) = packet::decrypt_v1_bind(&key, work) {
        assert!(m.body().len() % 4 == 0);
    }

    // Round trip: the input (cut to a multiple of 4) as a message body.
    let body = input.get(..input.len() & !3).unwrap_or(&[]);
    let mut rng = HashRng::new(input);
    let header = MessageHeader {
        salt: u64::from_le_bytes(core::array::from_fn(|i| input.get(i).copied().unwrap_or(0))),
        session_id: 0x0102_0304_0506_0708,
        msg_id: 0x6777_e5ed_0001_a2b4,
        seq_no: input.len() as u32,
    };
    let mut out = [0u8; MAX_FUZZ_PACKET + 2048];
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        let enc = packet::encrypt_with_policy(&key, dir, &header, body, PaddingPolicy::DEFAULT, &mut rng, &mut out);
        let Ok(enc) = enc else {
            panic!("encrypting a {}-byte body into {} bytes failed", body.len(), out.len())
        };
        let Some(packet) = out.get_mut(..enc.len) else {
            panic!("encrypt reported a length past its buffer")
        };
        let mut reflected = [0u8; MAX_FUZZ_PACKET + 2048];
        if let Some(r) = reflected.get_mut(..enc.len) {
            r.copy_from_slice(packet);
            assert!(
                packet::decrypt(&key, dir.reverse(), r).is_err(),
                "reflected packet accepted"
            );
        }
        let Ok(v) = packet::decrypt(&key, dir, packet) else {
            panic!("round trip rejected")
        };
        assert_eq!(v.body(), body);
        assert_eq!(
            (v.salt(), v.session_id(), v.msg_id(), v.seq_no()),
            (header.salt, header.session_id, header.msg_id, header.seq_no)
        );
        assert_eq!(v.quick_ack_token(), enc.quick_ack);
    }
}

/// The batch path on arbitrary bytes: the input and its first half (two packets of different lengths) decrypted in
/// one `decrypt_batch` must each end exactly as `decrypt` leaves them (outcome, fields and buffer).
#[allow(clippy::panic)]
fn batch_equals_single(key: &AuthKey, input: &[u8]) {
    let half = input.get(..input.len() / 2).unwrap_or(&[]);
    let (mut a, mut b) = ([0u8; MAX_FUZZ_PACKET], [0u8; MAX_FUZZ_PACKET]);
    let (mut sa, mut sb) = ([0u8; MAX_FUZZ_PACKET], [0u8; MAX_FUZZ_PACKET]);
    let (Some(a), Some(b), Some(sa), Some(sb)) = (
        a.get_mut(..input.len()),
        b.get_mut(..half.len()),
        sa.get_mut(..input.len()),
        sb.get_mut(..half.len()),
    ) else {
        return;
    };
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        a.copy_from_slice(input);
        b.copy_from_slice(half);
        sa.copy_from_slice(input);
        sb.copy_from_slice(half);
        let want = [
            summarize(packet::decrypt(key, dir, sa)),
            summarize(packet::decrypt(key, dir, sb)),
        ];
        let mut got = [None, None];
        let mut batch = [
            packet::BatchPacket { key, packet: &mut *a },
            packet::BatchPacket { key, packet: &mut *b },
        ];
        packet::decrypt_batch(dir, &mut batch, |i, r| {
            if let Some(g) = got.get_mut(i) {
                *g = Some(summarize(r));
            }
        });
        assert_eq!(
            got,
            [Some(want[0]), Some(want[1])],
            "batch outcome differs from decrypt"
        );
        assert!(a == sa && b == sb, "batch left other bytes than decrypt");
    }
}

/// A decryption outcome as comparable values: the verified fields and body length, or the rejection.
type Summary = Result<(u64, u64, u64, u32, u32, usize, usize), packet::DecryptError>;

fn summarize(r: Result<packet::Verified<'_>, packet::DecryptError>) -> Summary {
    r.map(|v| {
        (
            v.salt(),
            v.session_id(),
            v.msg_id(),
            v.seq_no(),
            v.quick_ack_token(),
            v.padding_len(),
            v.body().len(),
        )
    })
}
