//! Fuzz entry points for the encrypted session engine, both roles.
//!
//! Input: a sequence of records `len:u16le flags:u8 bytes[len]`. A record is a packet for the engine (decrypted with
//! the fuzzing key, so a seed corpus of real packets reaches the session logic). With `flags & 1` and the fuzzer's
//! `cfg(fuzzing)`, the record is instead a plaintext `salt:u64 session_id:u64 msg_id:u64 seq_no:u32 body` handed to
//! the engine as if it had passed decryption, to reach deep states without forging msg_keys (on stable replay such
//! records go through decryption like the others); without `flags & 2` such a record carries the engine's own salt and
//! session id instead of its own. `flags >> 2` advances the virtual clock by that many seconds.
//! After every record the engine's events are drained, its packets produced, and its bounds asserted.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::panic)] // a failed invariant must crash the fuzzer: that is the finding

use super::crypto::fuzz_auth_key;
use crate::session::{Clock, Dropped, Event, MsgId, MsgKind, Role, Session, SessionConfig};
use crate::time::{Instant, UnixTime};

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[("session_client", session_client), ("session_server", session_server)];

/// Receive buffer of the fuzzed engines.
pub const FUZZ_RX: usize = 4096;
/// Resend arena of the fuzzed engines.
pub const FUZZ_TX: usize = 4096;
/// Messages in flight of the fuzzed engines.
pub const FUZZ_MSGS: usize = 8;
/// The Unix time of the fuzzed engines' clock at `Instant` 1000 s.
pub const FUZZ_UNIX: u64 = 1_700_000_000;
/// The instant the fuzzed engines start at.
pub const FUZZ_START: Instant = Instant::from_secs(1000);

type FuzzSession = Session<FUZZ_RX, FUZZ_TX, FUZZ_MSGS>;

/// Deterministic CSPRNG for fuzzing: the crate's one test RNG (SHA-256 in counter mode over a seed).
pub use super::SeededRng as FuzzRng;

/// The engine configuration the targets use (keepalive and future salts on, so their paths are reachable).
pub fn fuzz_config() -> SessionConfig {
    SessionConfig {
        quick_ack: true,
        ..SessionConfig::DEFAULT
    }
}

/// The client engine the `session_client` target starts from, with two queries sent (ids deterministic).
pub fn fuzz_client() -> (FuzzSession, [MsgId; 2]) {
    fuzz_client_with(&mut |_| {})
}

/// [`fuzz_client`], handing the packets it sent to `sink` (for building seed corpora).
pub fn fuzz_client_with(sink: &mut dyn FnMut(&[u8])) -> (FuzzSession, [MsgId; 2]) {
    let mut rng = FuzzRng::new(b"session_client");
    let clock = Clock::from_unix_hint(FUZZ_START, UnixTime(FUZZ_UNIX));
    let mut e = FuzzSession::client(fuzz_config(), fuzz_auth_key(), 0x5a17, clock, FUZZ_START, &mut rng);
    let a = e.send(FUZZ_START, &[0x0d, 0xf0, 0xad, 0x0b, 1, 0, 0, 0], MsgKind::Query);
    let b = e.send(FUZZ_START, &[0x0d, 0xf0, 0xad, 0x0b, 2, 0, 0, 0], MsgKind::Query);
    let (Ok(a), Ok(b)) = (a, b) else {
        panic!("fresh engine refused a query")
    };
    let mut out = [0u8; FUZZ_RX + 64];
    while let Ok(Some(p)) = e.poll_packet(FUZZ_START, &mut rng, &mut out) {
        sink(out.get(..p.len).unwrap_or(&[]));
    }
    (e, [a, b])
}

/// The DC engine the `session_server` target starts from.
pub fn fuzz_server() -> FuzzSession {
    let mut rng = FuzzRng::new(b"session_server");
    let clock = Clock::from_unix_hint(FUZZ_START, UnixTime(FUZZ_UNIX));
    FuzzSession::server(fuzz_config(), fuzz_auth_key(), clock, FUZZ_START, &mut rng)
}

fn run(e: &mut FuzzSession, data: &[u8], queries: &[MsgId]) {
    let mut rng = FuzzRng::new(data);
    let mut now = FUZZ_START;
    let mut ended = [0u8; 2];
    let mut out = [0u8; FUZZ_RX + 64];
    let mut rest = data;
    let mut steps = 0;
    while let [l0, l1, flags, tail @ ..] = rest {
        steps += 1;
        if steps > 64 {
            break;
        }
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(tail.len());
        let (rec, next) = tail.split_at(len);
        rest = next;
        now = now.saturating_add(core::time::Duration::from_secs(u64::from(*flags >> 2)));
        e.handle_timeout(now);
        deliver(e, now, rec, *flags);
        // Events: results only for our queries, each query ending at most once.
        let mut answers: heapless::Vec<MsgId, FUZZ_MSGS> = heapless::Vec::new();
        while let Some(ev) = e.poll_event() {
            match ev {
                Event::RpcResult { req, .. } | Event::RpcError { req, .. } | Event::Failed { req, .. } => {
                    let Some(i) = queries.iter().position(|&q| q == req) else {
                        panic!("an event for a query never sent")
                    };
                    if let Some(n) = ended.get_mut(i) {
                        *n += 1;
                        assert!(*n <= 1, "a query ended twice");
                    }
                }
                Event::Request { msg_id, .. } => {
                    let _ = answers.push(msg_id);
                }
                _ => {}
            }
        }
        for id in answers {
            let _ = e.answer(now, id, &[0x0d, 0xf0, 0xad, 0x0b]);
        }
        let mut packets = 0;
        while let Ok(Some(p)) = e.poll_packet(now, &mut rng, &mut out) {
            assert!(p.len <= out.len() && p.len % 16 == 8);
            packets += 1;
            assert!(packets < 64, "poll_packet does not quiesce");
        }
        assert!(e.in_flight() <= FUZZ_MSGS && e.arena_used() <= FUZZ_TX && e.pending_events() <= FUZZ_MSGS);
    }
}

#[allow(unused_variables)]
fn deliver(e: &mut FuzzSession, now: Instant, rec: &[u8], flags: u8) {
    #[cfg(fuzzing)]
    if flags & 1 == 1
        && let Some((hdr, body)) = rec.split_at_checked(28)
    {
        let word = |i: usize| u64::from_le_bytes(core::array::from_fn(|k| hdr.get(i + k).copied().unwrap_or(0)));
        // Without bit 1 the engine's own salt and session are used, so the fuzzer gets past the salt check (a
        // 64-bit secret it cannot guess) to the message logic; with it, the record's values are used as given.
        let (salt, session) = if flags & 2 == 2 {
            (word(0), word(8))
        } else {
            (
                e.current_salt(),
                if e.session_id() == 0 { word(8) } else { e.session_id() },
            )
        };
        let seq = u32::from_le_bytes(core::array::from_fn(|k| hdr.get(24 + k).copied().unwrap_or(0)));
        if e.handle_plaintext_unchecked(now, salt, session, word(16), seq, body) == Err(Dropped::UnknownSession)
            && let Some((sid, _)) = e.take_unknown_session()
        {
            // A host with no other connection lets the session start here.
            e.approve_session(sid);
            let _ = e.handle_plaintext_unchecked(now, salt, session, word(16), seq, body);
        }
        return;
    }
    // DC: what a session hand-over asks before moving a session (`peek_ids`, `is_replay`) must agree with what the
    // engine then does: a message it calls a replay of its current session is never accepted.
    let replay = e.role() == Role::Server
        && e.has_session()
        && e.peek_ids(rec)
            .is_some_and(|(sid, id)| sid == e.session_id() && e.is_replay(now, id));
    let mut r = e.handle_packet(now, rec);
    if r == Err(Dropped::UnknownSession) {
        // The session is not served here: a host with no other connection lets it start (a replay of the current
        // session never gets this far: it names the session served).
        assert!(!replay, "a replay of the current session asked for a new one");
        if let Some((sid, _)) = e.take_unknown_session() {
            e.approve_session(sid);
        }
        r = e.handle_packet(now, rec);
    }
    assert!(!(replay && r.is_ok()), "a replay was accepted");
}

/// Arbitrary records into a client engine with two queries in flight.
pub fn session_client(data: &[u8]) {
    let (mut e, queries) = fuzz_client();
    run(&mut e, data, &queries);
}

/// Arbitrary records into a DC engine (requests are answered at once).
pub fn session_server(data: &[u8]) {
    let mut e = fuzz_server();
    run(&mut e, data, &[]);
}
