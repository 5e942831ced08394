//! Fuzz entry points for `e2e`.
//!
//! `e2e_inbound` drives the inbound path of a [`SecretChat`] with a fixed (public, fuzzing-only) chat key. The input
//! is a sequence of records `op (1 byte) ‖ len (2 bytes LE) ‖ body`; op 0 seals `body` as a `decryptedMessageLayer`
//! from the peer with the right key, so seq numbers, gaps, resend requests, layers and every re-key action are
//! reached past the msg_key check; op 1 feeds `body` raw (the crypto and layout checks); op 2 drains
//! `poll_transmit`; op 3 sends a text message; op 4 advances the clock. Invariants are asserted after each step.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::crypto::auth_key::AuthKey;
use crate::crypto::kdf::Direction;
use crate::crypto::packet::seal_v2;
use crate::e2e::wire::{DecryptedMessage, MessageLayer, PlainMessage};
use crate::e2e::{E2eError, Event, SecretChat};
use crate::time::Instant;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("e2e_inbound", e2e_inbound)];

/// The chat type the target drives (small bounds so held/history overflows are reachable).
pub type FuzzChat = SecretChat<512, 8, 8>;

/// Chat id used by the target.
pub const FUZZ_CHAT_ID: i32 = 77;

/// The fixed chat key of the target (a public fuzzing fixture, not a secret).
pub fn fuzz_chat_key() -> [u8; 256] {
    core::array::from_fn(|i| (i as u8).wrapping_mul(29).wrapping_add(101))
}

/// Largest record body looked at.
pub const MAX_RECORD: usize = 1024;
/// Most records processed per input (bounds the work per run).
pub const MAX_RECORDS: usize = 64;

use super::SeededRng as HashRng;

/// Seals `layer_tl` as the peer (the acceptor, x = 8) would; returns the length written into `out`.
pub fn seal_from_peer(layer_tl: &[u8], out: &mut [u8]) -> Option<usize> {
    let key = AuthKey::from_bytes(fuzz_chat_key());
    let total = (4 + layer_tl.len() + 12).next_multiple_of(16);
    let pkt = out.get_mut(..24 + total)?;
    let (head, plain) = pkt.split_at_mut(24);
    let (l, rest) = plain.split_at_mut(4);
    l.copy_from_slice(&(layer_tl.len() as u32).to_le_bytes());
    let (body, pad) = rest.split_at_mut(layer_tl.len());
    body.copy_from_slice(layer_tl);
    pad.fill(0x5a);
    let sealed = seal_v2(&key, Direction::ServerToClient, plain).ok()?;
    let (fp, mk) = head.split_at_mut(8);
    fp.copy_from_slice(&(key.id() as i64).to_le_bytes());
    mk.copy_from_slice(&sealed.msg_key);
    Some(24 + total)
}

/// Decodes a layer and checks that encoding it again decodes to the same value.
fn roundtrip(tl: &[u8]) {
    if let Ok(m) = MessageLayer::decode(tl) {
        let mut buf = [0u8; MAX_RECORD + 64];
        let n = m.encode(&mut buf);
        assert!(n.is_ok(), "a decoded layer must re-encode");
        let n = n.unwrap_or(0);
        assert_eq!(n, m.tl_len());
        let again = MessageLayer::decode(buf.get(..n).unwrap_or(&[]));
        assert_eq!(again, Ok(m));
    }
}

/// The `e2e_inbound` target.
pub fn e2e_inbound(data: &[u8]) {
    let _ = drive(data);
}

/// Runs the records of `data` against a fresh chat and returns it.
fn drive(data: &[u8]) -> Option<FuzzChat> {
    let mut rng = HashRng::new(data);
    let mut chat = FuzzChat::for_fuzzing(FUZZ_CHAT_ID, &fuzz_chat_key())?;
    let mut now = Instant::ZERO;
    let mut rest = data;
    let mut buf = [0u8; MAX_RECORD + 64];
    let mut out = [0u8; 2048];
    for _ in 0..MAX_RECORDS {
        let Some((&op, r)) = rest.split_first() else { break };
        let Some((lb, r)) = r.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*lb)).min(r.len()).min(MAX_RECORD);
        let (body, r) = r.split_at(len);
        rest = r;
        let was_aborted = chat.aborted();
        let in_before = chat.seq().1;
        let res = match op % 5 {
            0 => {
                roundtrip(body);
                match seal_from_peer(body, &mut buf) {
                    Some(n) => buf.get_mut(..n).map(|b| chat.decrypt(now, FUZZ_CHAT_ID, b).map(|_| ())),
                    None => None,
                }
            }
            1 => {
                let b = buf.get_mut(..body.len());
                b.map(|b| {
                    b.copy_from_slice(body);
                    chat.decrypt(now, FUZZ_CHAT_ID, b).map(|_| ())
                })
            }
            2 => {
                let mut r = Ok(());
                for _ in 0..40 {
                    match chat.poll_transmit(&mut rng, now, &mut out) {
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                Some(r)
            }
            3 => {
                let m = DecryptedMessage::Message(PlainMessage::text(1, 0, body));
                Some(chat.encrypt(&mut rng, &m, &mut out).map(|_| ()))
            }
            _ => {
                now = now.saturating_add(core::time::Duration::from_secs(u64::from(len as u32) * 3600));
                None
            }
        };
        while let Some(ev) = chat.poll_event() {
            if let Event::Message(d) = ev {
                assert!(d.out_seq_no < chat.seq().1);
            }
        }
        // Invariants: aborted is sticky, the in-order counter never goes back, holds are bounded.
        if let Some(r) = was_aborted {
            assert_eq!(chat.aborted(), Some(r));
            if let Some(res) = res {
                assert_eq!(res, Err(E2eError::Aborted(r)));
            }
        }
        assert!(chat.seq().1 >= in_before);
        assert!(chat.held_count() <= 8);
    }
    Some(chat)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    extern crate std;
    use super::*;
    use crate::e2e::wire::Action;
    use std::vec::Vec;

    fn layer(out_raw: i32, in_raw: i32, layer: i32, m: DecryptedMessage<'_>) -> Vec<u8> {
        let l = MessageLayer {
            random_bytes: &[3; 16],
            layer,
            in_seq_no: 2 * in_raw + 1,
            out_seq_no: 2 * out_raw,
            message: m,
        };
        let mut v = std::vec![0u8; l.tl_len()];
        l.encode(&mut v).unwrap();
        v
    }

    fn rec(out: &mut Vec<u8>, op: u8, body: &[u8]) {
        out.push(op);
        out.extend_from_slice(&(body.len() as u16).to_le_bytes());
        out.extend_from_slice(body);
    }

    fn svc(a: Action<'_>) -> DecryptedMessage<'_> {
        DecryptedMessage::Service {
            random_id: 9,
            action: a,
        }
    }

    /// The seed corpus; `E2E_WRITE_CORPUS=1 cargo test --lib fuzzing::e2e` writes it to fuzz/corpus/e2e_inbound.
    fn seeds() -> Vec<Vec<u8>> {
        let g = crate::crypto::dh::DhGroup::telegram(3).unwrap().prime_bytes();
        let mut g_a = g;
        g_a[0] = 0x40; // in range, not necessarily of the group's order: exercises the checks and DH
        let ids = [1i64, 2];
        let text = DecryptedMessage::Message(PlainMessage::text(5, 0, b"hello"));
        let mut seeds = Vec::new();
        let mut s = Vec::new();
        rec(&mut s, 0, &layer(0, 0, 144, text));
        rec(&mut s, 0, &layer(1, 0, 144, svc(Action::Noop)));
        seeds.push(s);
        let mut s = Vec::new();
        rec(&mut s, 0, &layer(0, 0, 144, svc(Action::NotifyLayer(150))));
        rec(&mut s, 0, &layer(1, 0, 100, text));
        seeds.push(s);
        // A gap of one, a duplicate, then the fill.
        let mut s = Vec::new();
        rec(&mut s, 0, &layer(1, 0, 144, text));
        rec(&mut s, 0, &layer(1, 0, 144, text));
        rec(&mut s, 2, &[]);
        rec(&mut s, 0, &layer(0, 0, 144, text));
        seeds.push(s);
        // Two holes.
        let mut s = Vec::new();
        rec(&mut s, 0, &layer(2, 0, 144, text));
        rec(&mut s, 0, &layer(5, 0, 144, text));
        rec(&mut s, 2, &[]);
        seeds.push(s);
        // Resend requests: valid after sends, huge, unknown.
        let mut s = Vec::new();
        rec(&mut s, 3, b"one");
        rec(&mut s, 3, b"two");
        rec(
            &mut s,
            0,
            &layer(
                0,
                2,
                144,
                svc(Action::Resend {
                    start_seq_no: 1,
                    end_seq_no: 3,
                }),
            ),
        );
        rec(&mut s, 2, &[]);
        seeds.push(s);
        let mut s = Vec::new();
        rec(
            &mut s,
            0,
            &layer(
                0,
                0,
                144,
                svc(Action::Resend {
                    start_seq_no: 0,
                    end_seq_no: 2_000_000,
                }),
            ),
        );
        seeds.push(s);
        // Re-key actions.
        let mut s = Vec::new();
        rec(
            &mut s,
            0,
            &layer(
                0,
                0,
                144,
                svc(Action::RequestKey {
                    exchange_id: 3,
                    g_a: &g_a,
                }),
            ),
        );
        rec(&mut s, 2, &[]);
        rec(
            &mut s,
            0,
            &layer(
                1,
                1,
                144,
                svc(Action::CommitKey {
                    exchange_id: 3,
                    key_fingerprint: 1,
                }),
            ),
        );
        rec(&mut s, 0, &layer(2, 1, 144, svc(Action::AbortKey(3))));
        seeds.push(s);
        let mut s = Vec::new();
        rec(&mut s, 3, b"x");
        rec(&mut s, 4, &[200, 0]);
        rec(&mut s, 2, &[]);
        rec(
            &mut s,
            0,
            &layer(
                0,
                1,
                144,
                svc(Action::AcceptKey {
                    exchange_id: 3,
                    g_b: &g_a,
                    key_fingerprint: 1,
                }),
            ),
        );
        rec(
            &mut s,
            0,
            &layer(
                1,
                1,
                144,
                svc(Action::RequestKey {
                    exchange_id: i64::MIN,
                    g_a: &[2],
                }),
            ),
        );
        rec(&mut s, 2, &[]);
        seeds.push(s);
        // Other actions and a bad parity.
        let mut s = Vec::new();
        for (i, a) in [
            Action::ReadMessages(crate::tl::TlVec::from_slice(&ids)),
            Action::DeleteMessages(crate::tl::TlVec::from_slice(&ids)),
            Action::ScreenshotMessages(crate::tl::TlVec::from_slice(&ids)),
            Action::SetMessageTtl(5),
            Action::FlushHistory,
            Action::Typing(0x16bf_744e),
        ]
        .into_iter()
        .enumerate()
        {
            rec(&mut s, 0, &layer(i as i32, 0, 144, svc(a)));
        }
        let mut bad = layer(6, 0, 144, text);
        bad[32] ^= 1; // out_seq_no parity
        rec(&mut s, 0, &bad);
        seeds.push(s);
        // Raw garbage and a truncated packet.
        let mut s = Vec::new();
        rec(&mut s, 1, &[0u8; 56]);
        let mut sealed = [0u8; 256];
        let n = seal_from_peer(&layer(0, 0, 144, text), &mut sealed).unwrap();
        rec(&mut s, 1, &sealed[..n]);
        rec(&mut s, 1, &sealed[..n - 16]);
        seeds.push(s);
        seeds
    }

    #[test]
    fn seeds_run_and_optionally_write_corpus() {
        use crate::e2e::AbortReason;
        let seeds = seeds();
        let chats: Vec<FuzzChat> = seeds.iter().map(|s| drive(s).unwrap()).collect();
        // The seeds reach what they are meant to reach.
        assert_eq!(chats[0].seq().1, 2);
        assert_eq!(chats[1].aborted(), Some(AbortReason::LayerDecreased));
        assert_eq!((chats[2].seq().1, chats[2].held_count()), (2, 0));
        assert_eq!(chats[3].held_count(), 2);
        assert_eq!(chats[4].aborted(), None);
        assert_eq!(chats[4].seq(), (3, 1)); // two texts and the layer notification; retransmissions keep their seq
        assert_eq!(chats[5].aborted(), Some(AbortReason::ResendInvalid));
        assert_eq!(chats[8].aborted(), Some(AbortReason::SeqParity));
        assert_eq!(chats[9].seq().1, 1);
        if std::env::var_os("E2E_WRITE_CORPUS").is_some() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/e2e_inbound");
            std::fs::create_dir_all(&dir).unwrap();
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(dir.join(std::format!("seed_{i:02}")), s).unwrap();
            }
        }
    }

    #[test]
    fn sealed_seed_is_accepted() {
        let mut chat = FuzzChat::for_fuzzing(FUZZ_CHAT_ID, &fuzz_chat_key()).unwrap();
        let text = DecryptedMessage::Message(PlainMessage::text(5, 0, b"hello"));
        let mut b = [0u8; 256];
        let n = seal_from_peer(&layer(0, 0, 144, text), &mut b).unwrap();
        let got = chat.decrypt(Instant::ZERO, FUZZ_CHAT_ID, &mut b[..n]).unwrap();
        assert!(matches!(got, crate::e2e::Received::Message(_)));
    }
}
