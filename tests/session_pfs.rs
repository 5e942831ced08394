//! The client PFS policy (`session::pfs`) against a DC host that creates temporary keys by the handshake, verifies
//! `auth.bindTempAuthKey` against the permanent key, forgets keys, enforces expiry and answers an unbound key's
//! queries with `401 AUTH_KEY_PERM_EMPTY` (tests/pfs_dc).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dc_util;
mod pfs_dc;

use std::collections::HashMap;
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::handshake;
use mtproto_sansio::session::{
    BindRefusal, ConnectionConfig, FailReason, KeyEvent, MsgId, PfsClient, PfsConfig, PfsEvent, QueryId, RekeyReason,
    SendError, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use pfs_dc::{Dc, DcNote, trusted};
use rand::SeedableRng;
use rand::rngs::StdRng;

const RX: usize = 8192;
const TX: usize = 8192;
const MSGS: usize = 16;
const UNIX0: u64 = 1_700_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ce {
    Result(QueryId, Vec<u8>),
    Error(QueryId, i32, Vec<u8>),
    Failed(QueryId, FailReason),
    Key(KeyEvent),
    NewConnection(RekeyReason),
    Transport(i32),
    Other,
}

fn own(e: PfsEvent<'_>) -> Ce {
    match e {
        PfsEvent::Result { query, body } => Ce::Result(query, body.to_vec()),
        PfsEvent::Error {
            query, code, message, ..
        } => Ce::Error(query, code, message.to_vec()),
        PfsEvent::Failed { query, reason } => Ce::Failed(query, reason),
        PfsEvent::Key(k) => Ce::Key(k),
        PfsEvent::NewConnection(r) => Ce::NewConnection(r),
        PfsEvent::TransportError(c) => Ce::Transport(c),
        PfsEvent::Unmatched => panic!("the policy reported an unmatched event"),
        _ => Ce::Other,
    }
}

fn session_cfg() -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: Some(Duration::from_secs(30)),
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig::INTERMEDIATE,
        unix_time_hint: Some(UnixTime(UNIX0)),
        salt: 0,
    }
}

fn perm() -> AuthKey {
    AuthKey::from_bytes([0x42; 256])
}

fn pfs_cfg(lifetime: u32) -> PfsConfig {
    let mut c = PfsConfig::new(session_cfg(), handshake::ClientConfig::new(trusted(), 2));
    c.temp_key_lifetime = lifetime;
    c.rekey_margin = Duration::from_secs(60);
    c.drain_timeout = Duration::from_secs(30);
    c
}

struct World<const HELD: usize> {
    c: Box<PfsClient<RX, TX, MSGS, HELD>>,
    dc: Dc<RX, TX, MSGS>,
    now: Instant,
    rng: StdRng,
    events: Vec<Ce>,
    /// The DC host executes application requests (echo with an `ANS:` prefix) unless paused.
    execute: bool,
    executed: HashMap<Vec<u8>, u32>,
    parked_answers: Vec<(MsgId, Vec<u8>)>,
    /// Times the DC found the connection's key past its expiry and dropped it.
    expired_hits: u32,
    wire: Vec<u8>,
}

impl<const HELD: usize> World<HELD> {
    fn new(cfg: PfsConfig, seed: u64) -> Self {
        let now = Instant::from_secs(100);
        let unix_at_zero = UNIX0 - 100;
        World {
            c: Box::new(PfsClient::new(cfg, perm(), now)),
            dc: Dc::new(session_cfg(), perm(), unix_at_zero, now),
            now,
            rng: StdRng::seed_from_u64(seed),
            events: Vec::new(),
            execute: true,
            executed: HashMap::new(),
            parked_answers: Vec::new(),
            expired_hits: 0,
            wire: Vec::new(),
        }
    }

    fn dc_process(&mut self) {
        self.dc.process(self.now, &mut self.rng);
        for (id, body) in std::mem::take(&mut self.dc.requests) {
            *self.executed.entry(body.clone()).or_default() += 1;
            let mut ans = b"ANS:".to_vec();
            ans.extend_from_slice(&body);
            self.parked_answers.push((id, ans));
        }
        if self.execute {
            let a = std::mem::take(&mut self.parked_answers);
            self.parked_answers = self.dc.answer_all(self.now, a);
        }
    }

    /// One exchange each way; a `NewConnection` switches both ends to a new connection.
    fn round(&mut self) {
        let mut out = vec![0u8; self.c.min_transmit_len()];
        let mut new_conn = false;
        while let Some(n) = self.c.poll_transmit(self.now, &mut self.rng, &mut out).unwrap() {
            self.wire.extend_from_slice(&out[..n]);
            let mut off = 0;
            while off < n {
                off += self.dc.sess.handle_input(self.now, &out[off..n]).unwrap();
                self.dc_process();
            }
        }
        self.dc_process();
        let mut sout = vec![0u8; self.dc.sess.min_transmit_len()];
        'feed: while let Some(n) = self.dc.sess.poll_transmit(self.now, &mut self.rng, &mut sout).unwrap() {
            self.wire.extend_from_slice(&sout[..n]);
            let mut off = 0;
            while off < n {
                off += self.c.handle_input(self.now, &sout[off..n]).unwrap();
                if self.drain() {
                    new_conn = true;
                    break 'feed;
                }
            }
        }
        new_conn |= self.drain();
        if new_conn {
            self.dc.connect(self.now);
            self.c.reconnect(self.now);
        }
        if self.dc.current_key_expired(self.now) {
            // A real DC forgets an expired key: the connection drops, the next one gets −404.
            self.expired_hits += 1;
            let unix = self.dc.unix(self.now);
            self.dc
                .keys
                .retain(|_, k| k.bound_until.is_none_or(|t| t as u64 > unix));
            self.dc.connect(self.now);
            self.c.reconnect(self.now);
        }
    }

    /// Drains client events; true if one asked for a new connection.
    fn drain(&mut self) -> bool {
        let mut nc = false;
        while let Some(ev) = self.c.poll_event() {
            let e = own(ev);
            nc |= matches!(e, Ce::NewConnection(_));
            self.events.push(e);
        }
        nc
    }

    fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
        self.c.handle_timeout(self.now).unwrap();
        self.dc.sess.handle_timeout(self.now).unwrap();
        if self.drain() {
            self.dc.connect(self.now);
            self.c.reconnect(self.now);
        }
    }

    /// Rounds, stepping time 50 ms (or to the client's timer) at a time, until `pred` or `limit` of virtual time.
    fn run_until(&mut self, limit: Duration, mut pred: impl FnMut(&Self) -> bool) -> bool {
        let end = self.now.saturating_add(limit);
        while self.now < end {
            self.round();
            if pred(self) {
                return true;
            }
            self.advance(Duration::from_millis(50));
        }
        false
    }

    fn ended(&self, q: QueryId) -> Vec<&Ce> {
        self.events
            .iter()
            .filter(|e| matches!(e, Ce::Result(x, _) | Ce::Error(x, _, _) | Ce::Failed(x, _) if *x == q))
            .collect()
    }
}

fn body(tag: u32) -> Vec<u8> {
    let mut b = 0x0bad_f00du32.to_le_bytes().to_vec();
    b.extend_from_slice(&tag.to_le_bytes());
    b
}

fn answer(tag: u32) -> Vec<u8> {
    let mut a = b"ANS:".to_vec();
    a.extend_from_slice(&body(tag));
    a
}

#[test]
fn queries_before_the_bind_are_held_then_answered() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 1);
    let qs: Vec<QueryId> = (0..3).map(|t| w.c.send(w.now, &body(t)).unwrap()).collect();
    assert_eq!(w.c.held(), 3);
    assert!(!w.c.is_bound());
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()
        && w.c.held() == 0
        && w.c.in_flight() == 0));
    for (t, q) in qs.iter().enumerate() {
        assert_eq!(w.ended(*q), vec![&Ce::Result(*q, answer(t as u32))]);
    }
    // The DC bound the key the client created, to the permanent key, before any application query reached it.
    let key_id = w.c.session().auth_key().unwrap().id();
    assert!(w.dc.keys[&key_id].bound_until.is_some());
    let bound_at = w.dc.notes.iter().position(|n| *n == DcNote::Bound(key_id)).unwrap();
    assert_eq!(
        bound_at,
        w.dc.notes.iter().position(|n| matches!(n, DcNote::Bound(_))).unwrap()
    );
    assert!(!w.dc.notes.iter().any(|n| matches!(n, DcNote::Unbound401(_))));
    assert_ne!(key_id, w.c.perm_key_id());
    assert_eq!(w.c.binds(), 1);
    assert!(w.events.contains(&Ce::Key(KeyEvent::Created)));
    let exp = w.c.expires_at().unwrap();
    assert!((exp as i64 - (UNIX0 + 3600) as i64).abs() < 10, "{exp}");
}

/// Every application query sent on the wire went out after the binding was answered: the DC never saw one on an
/// unbound key, even while the host kept sending during the handshake and the binding.
#[test]
fn chk_053_unbound_key_sends_nothing_but_the_bind() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 2);
    let mut qs = Vec::new();
    for t in 0..40u32 {
        if let Ok(q) = w.c.send(w.now, &body(t)) {
            qs.push((t, q));
        }
        w.round();
        w.advance(Duration::from_millis(20));
    }
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.held() == 0 && w.c.in_flight() == 0));
    assert!(!w.dc.notes.iter().any(|n| matches!(n, DcNote::Unbound401(_))));
    for (t, q) in qs {
        assert_eq!(w.ended(q), vec![&Ce::Result(q, answer(t))]);
    }
}

#[test]
fn rebinds_before_expiry_with_no_failed_rpc() {
    let mut w: World<16> = World::new(pfs_cfg(300), 3);
    let mut qs = Vec::new();
    let mut t = 0u32;
    let end = w.now.saturating_add(Duration::from_secs(1000));
    while w.now < end {
        if t.is_multiple_of(40) {
            match w.c.send(w.now, &body(t / 40)) {
                Ok(q) => qs.push((t / 40, q)),
                Err(SendError::QueueFull) => {}
                Err(e) => panic!("{e}"),
            }
        }
        t += 1;
        w.round();
        w.advance(Duration::from_millis(50));
    }
    assert!(w.run_until(Duration::from_secs(30), |w| w.c.held() == 0 && w.c.in_flight() == 0));
    assert!(qs.len() > 400);
    for (tag, q) in &qs {
        assert_eq!(w.ended(*q), vec![&Ce::Result(*q, answer(*tag))], "{q}");
    }
    assert!(!w.events.iter().any(|e| matches!(e, Ce::Failed(..) | Ce::Error(..))));
    assert_eq!(w.expired_hits, 0, "the DC had to expire a key");
    assert!(w.c.keys_created() >= 4, "{}", w.c.keys_created());
    assert_eq!(w.c.binds(), w.c.keys_created());
    let reasons: Vec<_> = w
        .events
        .iter()
        .filter_map(|e| if let Ce::NewConnection(r) = e { Some(*r) } else { None })
        .collect();
    assert!(
        reasons.len() >= 3 && reasons.iter().all(|r| *r == RekeyReason::Expiring),
        "{reasons:?}"
    );
}

#[test]
fn a_drain_cut_by_the_expiry_fails_the_rest_as_lost() {
    // No margin: the re-key starts at the key's expiry itself, so a query the DC never answers cannot drain; it
    // ends once, as lost (never resent on the next key), and the next key is bound.
    let mut cfg = pfs_cfg(300);
    cfg.rekey_margin = Duration::ZERO;
    cfg.drain_timeout = Duration::from_secs(3600);
    let mut w: World<16> = World::new(cfg, 4);
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    w.execute = false;
    let q = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(600), |w| !w.ended(q).is_empty()));
    assert_eq!(w.ended(q), vec![&Ce::Failed(q, FailReason::KeyLost)]);
    assert!(w.events.contains(&Ce::NewConnection(RekeyReason::Expiring)));
    w.execute = true;
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    assert_eq!(w.executed[&body(1)], 1);
    assert_eq!(w.c.keys_created(), 2);
}

#[test]
fn chk_053_dc_forgets_the_temp_key_404_then_recovery() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 5);
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    let first_key = w.c.session().auth_key().unwrap().id();
    // A query the DC executes but does not answer before it loses the key.
    w.execute = false;
    let lost = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(5), |w| !w.parked_answers.is_empty()));
    w.parked_answers.clear();
    w.dc.forget_keys(w.now);
    w.c.reconnect(w.now);
    w.execute = true;
    assert!(w.run_until(Duration::from_secs(60), |w| w.events.contains(&Ce::Transport(-404))));
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    assert_eq!(w.ended(lost), vec![&Ce::Failed(lost, FailReason::KeyLost)]);
    assert!(w.events.contains(&Ce::NewConnection(RekeyReason::NotFound)));
    assert!(w.dc.notes.contains(&DcNote::KeyUnknown(first_key)));
    assert_ne!(w.c.session().auth_key().unwrap().id(), first_key);
    // Executed once, never resent under the new key.
    assert_eq!(w.executed[&body(1)], 1);
    let q = w.c.send(w.now, &body(2)).unwrap();
    assert!(w.run_until(Duration::from_secs(30), |w| !w.ended(q).is_empty()));
    assert_eq!(w.ended(q), vec![&Ce::Result(q, answer(2))]);
    assert_eq!(w.executed[&body(1)], 1);
}

#[test]
fn lost_binding_401_rekeys_and_the_refused_query_ends_with_its_error() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 6);
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    let first_key = w.c.session().auth_key().unwrap().id();
    w.dc.keys.get_mut(&first_key).unwrap().bound_until = None; // the DC lost the binding, not the key
    let q = w.c.send(w.now, &body(7)).unwrap();
    assert!(w.run_until(Duration::from_secs(30), |w| !w.ended(q).is_empty()));
    assert_eq!(w.ended(q), vec![&Ce::Error(q, 401, b"AUTH_KEY_PERM_EMPTY".to_vec())]);
    assert!(!w.executed.contains_key(&body(7)));
    let q2 = w.c.send(w.now, &body(8)).unwrap();
    assert!(w.run_until(Duration::from_secs(60), |w| !w.ended(q2).is_empty()));
    assert_eq!(w.ended(q2), vec![&Ce::Result(q2, answer(8))]);
    assert!(w.events.contains(&Ce::NewConnection(RekeyReason::Unbound)));
    assert_ne!(w.c.session().auth_key().unwrap().id(), first_key);
}

#[test]
fn auth_key_unregistered_does_not_rekey() {
    // 401 AUTH_KEY_UNREGISTERED is about the permanent key's login: a new temporary key cannot fix it.
    let mut w: World<16> = World::new(pfs_cfg(3600), 7);
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    w.execute = false;
    let q = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(5), |w| !w.parked_answers.is_empty()));
    let (id, _) = w.parked_answers.pop().unwrap();
    w.dc.sess
        .answer_error(w.now, id, 401, b"AUTH_KEY_UNREGISTERED")
        .unwrap();
    assert!(w.run_until(Duration::from_secs(30), |w| !w.ended(q).is_empty()));
    assert_eq!(w.ended(q), vec![&Ce::Error(q, 401, b"AUTH_KEY_UNREGISTERED".to_vec())]);
    assert!(w.c.is_bound());
    assert_eq!(w.c.keys_created(), 1);
}

/// ENCRYPTED_MESSAGE_INVALID for a stored (old) permanent key: the DC does not know it; no temporary key can help,
/// so the policy gives up at once with a typed reason, and the held query ends (it never reached the DC).
#[test]
fn chk_053_encrypted_message_invalid_for_an_old_perm_key_gives_up() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 8);
    w.dc.refuse_binds = true;
    let q = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(120), |w| w.c.gave_up().is_some()
        && !w.ended(q).is_empty()));
    assert_eq!(w.c.gave_up(), Some(BindRefusal::EncryptedMessageInvalid));
    assert_eq!(
        w.events
            .iter()
            .filter(|e| matches!(e, Ce::Key(KeyEvent::BindRefused(_))))
            .count(),
        1
    );
    assert_eq!(w.c.keys_created(), 1);
    assert_eq!(w.ended(q), vec![&Ce::Failed(q, FailReason::Closed)]);
    assert!(w.executed.is_empty());
    assert_eq!(w.c.send(w.now, &body(2)), Err(SendError::Closed));
    assert_eq!(
        BindRefusal::from_rpc_error(400, b"TEMP_AUTH_KEY_EMPTY"),
        BindRefusal::TempAuthKeyEmpty
    );
    assert_eq!(
        BindRefusal::from_rpc_error(400, b"TEMP_AUTH_KEY_ALREADY_BOUND"),
        BindRefusal::TempAuthKeyAlreadyBound
    );
    assert_eq!(BindRefusal::from_rpc_error(401, b"X"), BindRefusal::Other { code: 401 });
}

/// A permanent key created a moment ago may not have reached this DC: refusals are retried on fresh temporary keys
/// up to `max_bind_failures`, then the policy gives up.
#[test]
fn chk_053_young_perm_key_retries_then_gives_up() {
    let mut cfg = pfs_cfg(3600);
    cfg.max_bind_failures = 2;
    cfg.perm_key_created = Some(Instant::from_secs(100));
    let mut w: World<16> = World::new(cfg, 13);
    w.dc.refuse_binds = true;
    let q = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(50), |w| w.c.gave_up().is_some()
        && !w.ended(q).is_empty()));
    assert_eq!(w.c.gave_up(), Some(BindRefusal::EncryptedMessageInvalid));
    assert_eq!(
        w.events
            .iter()
            .filter(|e| matches!(e, Ce::Key(KeyEvent::BindRefused(_))))
            .count(),
        2
    );
    assert_eq!(w.c.keys_created(), 2);
    assert_eq!(w.ended(q), vec![&Ce::Failed(q, FailReason::Closed)]);
}

/// An unbound key carries only `help.getConfig` / `help.getNearestDc` (under invokeWithLayer + initConnection);
/// everything else waits for the binding.
#[test]
fn chk_053_unbound_key_calls_only_allowed_methods() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 14);
    let app = w.c.send(w.now, &body(1)).unwrap();
    let cfg_body = get_config_wrapped();
    let getcfg = w.c.send(w.now, &cfg_body).unwrap();
    // The allowed query waits behind the application query (order kept), so it goes out after the binding.
    assert!(w.run_until(Duration::from_secs(60), |w| !w.ended(app).is_empty()
        && !w.ended(getcfg).is_empty()));
    // Now at the head of the queue on a new, unbound key: it goes out before the binding is answered.
    let mut w: World<16> = World::new(pfs_cfg(3600), 15);
    let getcfg = w.c.send(w.now, &cfg_body).unwrap();
    let app = w.c.send(w.now, &body(2)).unwrap();
    assert!(w.run_until(Duration::from_secs(60), |w| !w.ended(app).is_empty()
        && !w.ended(getcfg).is_empty()));
    let mut ans = b"ANS:".to_vec();
    ans.extend_from_slice(&cfg_body);
    assert_eq!(w.ended(getcfg), vec![&Ce::Result(getcfg, ans)]);
    assert_eq!(w.ended(app), vec![&Ce::Result(app, answer(2))]);
    let allowed_at =
        w.dc.notes
            .iter()
            .position(|n| matches!(n, DcNote::UnboundAllowed(_)))
            .unwrap();
    let bound_at = w.dc.notes.iter().position(|n| matches!(n, DcNote::Bound(_))).unwrap();
    assert!(allowed_at < bound_at, "{:?}", w.dc.notes);
    assert!(!w.dc.notes.iter().any(|n| matches!(n, DcNote::Unbound401(_))));
}

fn get_config_wrapped() -> Vec<u8> {
    use mtproto_sansio::session::pfs::{HELP_GET_CONFIG, INIT_CONNECTION, INVOKE_WITH_LAYER};
    let mut b = Vec::new();
    b.extend_from_slice(&INVOKE_WITH_LAYER.to_le_bytes());
    b.extend_from_slice(&214i32.to_le_bytes());
    b.extend_from_slice(&INIT_CONNECTION.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&4i32.to_le_bytes());
    for s in [&b"dev"[..], b"os", b"1", b"en", b"", b"en"] {
        b.push(s.len() as u8);
        b.extend_from_slice(s);
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
    }
    b.extend_from_slice(&HELP_GET_CONFIG.to_le_bytes());
    b
}

#[test]
fn a_refused_binding_is_retried_on_a_fresh_key() {
    let mut cfg = pfs_cfg(3600);
    cfg.perm_key_created = Some(Instant::from_secs(100));
    let mut w: World<16> = World::new(cfg, 9);
    w.dc.refuse_binds = true;
    let q = w.c.send(w.now, &body(1)).unwrap();
    assert!(w.run_until(Duration::from_secs(60), |w| {
        w.events.iter().any(|e| matches!(e, Ce::Key(KeyEvent::BindRefused(_))))
    }));
    w.dc.refuse_binds = false;
    assert!(w.run_until(Duration::from_secs(60), |w| !w.ended(q).is_empty()));
    assert_eq!(w.ended(q), vec![&Ce::Result(q, answer(1))]);
    assert_eq!(w.c.keys_created(), 2);
    assert!(
        w.events
            .iter()
            .any(|e| matches!(e, Ce::NewConnection(RekeyReason::BindFailed(_))))
    );
}

#[test]
fn hold_queue_is_bounded_backpressure_never_loss() {
    let mut cfg = pfs_cfg(3600);
    cfg.max_held_bytes = 4 * 40;
    let mut w: World<4> = World::new(cfg, 10);
    let qs: Vec<_> = (0..4).map(|t| w.c.send(w.now, &body(t)).unwrap()).collect();
    assert_eq!(w.c.send(w.now, &body(4)), Err(SendError::QueueFull)); // HELD = 4
    assert_eq!(w.c.held(), 4);
    // The byte bound: a fresh client with room for one 128-byte body.
    let mut w2: World<4> = World::new(
        PfsConfig {
            max_held_bytes: 200,
            ..pfs_cfg(3600)
        },
        11,
    );
    w2.c.send(w2.now, &[0u8; 128]).unwrap();
    assert_eq!(w2.c.send(w2.now, &[0u8; 128]), Err(SendError::QueueFull));
    assert_eq!(w2.c.send(w2.now, &[0u8; 6]), Err(SendError::TooLarge));
    // Every held query is answered once the key is bound; then sends flow again.
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.held() == 0 && w.c.in_flight() == 0));
    for (t, q) in qs.iter().enumerate() {
        assert_eq!(w.ended(*q), vec![&Ce::Result(*q, answer(t as u32))]);
    }
    assert!(w.c.send(w.now, &body(9)).is_ok());
}

#[test]
fn close_ends_held_and_in_flight_queries_once() {
    let mut w: World<16> = World::new(pfs_cfg(3600), 12);
    assert!(w.run_until(Duration::from_secs(60), |w| w.c.is_bound()));
    w.execute = false;
    let a = w.c.send(w.now, &body(1)).unwrap();
    w.round();
    w.c.close();
    w.drain();
    assert_eq!(w.ended(a), vec![&Ce::Failed(a, FailReason::Closed)]);
    assert_eq!(w.c.send(w.now, &body(2)), Err(SendError::Closed));
}

#[test]
fn same_seed_same_bytes() {
    let run = |seed| {
        let mut w: World<16> = World::new(pfs_cfg(300), seed);
        let q = w.c.send(w.now, &body(1)).unwrap();
        assert!(w.run_until(Duration::from_secs(60), |w| !w.ended(q).is_empty()));
        w.wire
    };
    assert_eq!(run(20), run(20));
    assert_ne!(run(20), run(21));
}
