//! An engine restarted in place (`Session::reset_*`, what a [`Connection`](crate::session::Connection) does when a key
//! exists) keeps nothing of its previous key or session: the key is replaced, queued bodies are wiped from the arena,
//! every table is empty, a DC's salt secret is gone. (That it then behaves byte for byte as a new engine is checked
//! through the connection, in tests/connection_reset.rs.)
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

extern crate std;
use std::vec;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::session::dc_host::SaltSchedule;

type E = Session<4096, 4096, 8>;

/// A marker no fresh engine holds anywhere.
const BODY: [u8; 64] = [0xa5; 64];

fn holds_body(bytes: &[u8]) -> bool {
    bytes.windows(BODY.len()).any(|w| w == BODY)
}

#[test]
fn a_reset_client_engine_keeps_nothing_of_the_old_key_or_session() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = Instant::from_secs(100);
    let cfg = SessionConfig::DEFAULT;
    let mut s = E::client_with_session_id(cfg, AuthKey::from_bytes([0x5a; 256]), 7, Clock::new(0), now, 42);
    s.send(now, &BODY, MsgKind::Query).unwrap();
    let mut out = vec![0u8; s.min_out_len()];
    assert!(s.poll_packet(now, &mut rng, &mut out).unwrap().is_some());
    // The query waits for its answer: its body is in the arena, the session counts it.
    assert!(holds_body(s.core.outbox.arena.as_slice()));
    assert!(s.in_flight() >= 1);
    // The session has received a server message and carries a floor (as a DC's new session does).
    s.core.inbound.set_floor(crate::session::MsgId(8 << 32));
    s.core
        .inbound
        .accept(crate::session::MsgId((200 << 32) | 1), crate::time::UnixTime(0), false)
        .unwrap();
    assert!(!s.core.inbound.window().is_empty());

    s.reset_client_with_session_id(cfg, AuthKey::from_bytes([1; 256]), 9, Clock::new(0), now, 43);
    assert!(
        !holds_body(s.core.outbox.arena.as_slice()),
        "the old session's plaintext stays in the arena"
    );
    assert_eq!(s.auth_key().as_bytes(), &[1; 256]);
    assert_eq!(s.session_id(), 43);
    assert_eq!(s.current_salt(), 9);
    assert_eq!(s.in_flight(), 0);
    assert_eq!(s.arena_used(), 0);
    assert_eq!(s.pending_events(), 0);
    assert_eq!(s.stats(), Stats::default());
    assert!(!s.is_closed());
    // No received id and no floor of the old session (mutation testing found this unchecked).
    assert!(s.core.inbound.window().is_empty());
    assert_eq!(s.core.inbound.floor(), crate::session::MsgId(0));
}

#[test]
fn an_inert_dc_engine_keeps_no_salt_secret_or_key() {
    let mut rng = StdRng::seed_from_u64(2);
    let now = Instant::from_secs(100);
    let clock = Clock::from_unix_hint(now, crate::time::UnixTime(1_700_000_000));
    let mut s = E::server(
        SessionConfig::DEFAULT,
        AuthKey::from_bytes([0x5a; 256]),
        clock,
        now,
        &mut rng,
    );
    assert_ne!(s.salt_schedule().secret, [0; 32]);
    s.make_inert(Role::Server);
    assert_eq!(s.salt_schedule().secret, [0; 32]);
    assert_eq!(s.auth_key().as_bytes(), &[0; 256]);
    assert_eq!(s.role(), Role::Server);

    // A DC engine restarted on a stored schedule is the engine built on it.
    let schedule = SaltSchedule {
        secret: [3; 32],
        first: None,
    };
    let key = AuthKey::from_bytes([4; 256]);
    s.reset_server_with_schedule(SessionConfig::DEFAULT, key.clone(), &schedule, clock, now);
    let fresh = E::server_with_schedule(SessionConfig::DEFAULT, key, &schedule, clock, now);
    assert_eq!(s.salt_schedule().secret, fresh.salt_schedule().secret);
    assert_eq!(s.salt_schedule().first, fresh.salt_schedule().first);
    assert_eq!(s.current_salt(), fresh.current_salt());
}
