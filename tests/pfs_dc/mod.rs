//! A DC host for the PFS tests and the netsim: one `Connection::server_handshake` connection at a time, an in-RAM store
//! of temporary keys (created by the handshake, bound by `auth.bindTempAuthKey` verified against the permanent key),
//! `AuthKeyRequired` answered from the store (−404 for a forgotten or expired key), `401 AUTH_KEY_PERM_EMPTY` for an
//! application query on an unbound key.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::handshake::ServerConfig;
use mtproto_sansio::session::bind::bind_perm_key_id;
use mtproto_sansio::session::pfs::allowed_unbound;
use mtproto_sansio::session::{Connection, ConnectionConfig, Event, MsgId, SendError};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{self, AuthBindTempAuthKey};
use mtproto_sansio::transport::replay::ReplayCache;
use rand::rngs::StdRng;

// The DC's RSA key and the clients' trusted keys: the DC-side tests' shared ones.
pub use crate::dc_util::{rsa, trusted};

/// A temporary key the DC keeps in RAM.
pub struct TempKey {
    pub key: AuthKey,
    /// Unix expiry of its binding to the permanent key, once bound.
    pub bound_until: Option<i32>,
}

/// What the DC host did with one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DcNote {
    KeyCreated(u64),
    KeySupplied(u64),
    KeyUnknown(u64),
    Bound(u64),
    BindRefused,
    Unbound401(MsgId),
    /// An allowed method executed on an unbound key.
    UnboundAllowed(MsgId),
}

pub struct Dc<const RX: usize, const TX: usize, const MSGS: usize> {
    pub sess: Box<Connection<RX, TX, MSGS>>,
    pub cfg: ConnectionConfig,
    pub perm: AuthKey,
    pub keys: HashMap<u64, TempKey>,
    /// Answer every binding with `400 ENCRYPTED_MESSAGE_INVALID`.
    pub refuse_binds: bool,
    /// Unix time at `Instant::ZERO` (the DC's clock).
    pub unix_at_zero: u64,
    pub notes: Vec<DcNote>,
    /// Application requests on a bound key, for the caller to execute: (msg_id, body).
    pub requests: Vec<(MsgId, Vec<u8>)>,
    /// The last closed connections, kept so a reconnecting client's session is handed over, not started anew.
    pub closed: Vec<Box<Connection<RX, TX, MSGS>>>,
    /// The obfuscated inits seen, across connections.
    pub replay: ReplayCache<64>,
}

/// Closed connections the DC keeps (each for the sessions it served).
const KEEP_CLOSED: usize = 4;

enum Owned {
    Ready,
    Required(u64),
    Request(MsgId, Vec<u8>),
    Session(u64, u64),
    Init,
    NewKey(u64),
    Other,
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Dc<RX, TX, MSGS> {
    pub fn new(cfg: ConnectionConfig, perm: AuthKey, unix_at_zero: u64, now: Instant) -> Self {
        let mut d = Dc {
            sess: Self::fresh(cfg, unix_at_zero, now),
            cfg,
            perm,
            keys: HashMap::new(),
            refuse_binds: false,
            unix_at_zero,
            notes: Vec::new(),
            requests: Vec::new(),
            closed: Vec::new(),
            replay: ReplayCache::new(),
        };
        d.connect(now);
        d
    }

    fn fresh(cfg: ConnectionConfig, unix_at_zero: u64, now: Instant) -> Box<Connection<RX, TX, MSGS>> {
        let mut sc = ServerConfig::new(rsa(), DhGroup::telegram(3).unwrap());
        sc.dc_id = Some(2);
        let cfg = ConnectionConfig {
            unix_time_hint: Some(UnixTime(unix_at_zero + now.as_secs())),
            ..cfg
        };
        Box::new(Connection::server_handshake(cfg, sc, now))
    }

    /// A new connection: a fresh DC session that runs the handshake or asks for a stored key.
    pub fn connect(&mut self, now: Instant) {
        let old = std::mem::replace(&mut self.sess, Self::fresh(self.cfg, self.unix_at_zero, now));
        if old.session().is_some_and(|e| e.has_session()) {
            if self.closed.len() == KEEP_CLOSED {
                self.closed.remove(0);
            }
            self.closed.push(old);
        }
        self.requests.clear();
    }

    /// `HostQuery::Session`: hands the session over from the closed connection that served it, if any.
    fn resume(&mut self, now: Instant, key_id: u64, session_id: u64) {
        let holder = self.closed.iter().position(|s| {
            s.session()
                .is_some_and(|e| e.has_session() && e.session_id() == session_id && e.auth_key().id() == key_id)
        });
        let old = holder.map(|i| &mut *self.closed[i]);
        let _ = self.sess.resume_session(now, old);
    }

    pub fn unix(&self, now: Instant) -> u64 {
        self.unix_at_zero + now.as_secs()
    }

    /// The DC loses every temporary key (they live in RAM only) and drops the connection.
    pub fn forget_keys(&mut self, now: Instant) {
        self.keys.clear();
        self.connect(now);
    }

    fn current_key(&self) -> Option<u64> {
        self.sess.auth_key().map(AuthKey::id)
    }

    fn bound(&self, id: u64, now: Instant) -> bool {
        self.keys
            .get(&id)
            .and_then(|k| k.bound_until)
            .is_some_and(|t| i64::from(t) > self.unix(now) as i64)
    }

    /// Whether the current connection's key has passed its binding's expiry (a real DC would forget it).
    pub fn current_key_expired(&self, now: Instant) -> bool {
        self.current_key()
            .and_then(|id| self.keys.get(&id))
            .and_then(|k| k.bound_until)
            .is_some_and(|t| i64::from(t) <= self.unix(now) as i64)
    }

    /// Handles every pending event; application requests on bound keys land in `self.requests`.
    pub fn process(&mut self, now: Instant, rng: &mut StdRng) {
        loop {
            let mut evs = Vec::new();
            while let Some(ev) = self.sess.poll_event() {
                evs.push(match ev {
                    Event::AuthKeyReady => Owned::Ready,
                    Event::AuthKeyRequired { key_id } => Owned::Required(key_id),
                    Event::Request { msg_id, body } => Owned::Request(msg_id, body.to_vec()),
                    Event::SessionRequired { key_id, session_id } => Owned::Session(key_id, session_id),
                    Event::ObfuscatedInit => Owned::Init,
                    Event::NewAuthKey { key_id } => Owned::NewKey(key_id),
                    _ => Owned::Other,
                });
            }
            if evs.is_empty() {
                return;
            }
            for ev in evs {
                match ev {
                    Owned::Ready => {
                        let key = self.sess.auth_key().unwrap().clone();
                        self.notes.push(DcNote::KeyCreated(key.id()));
                        self.keys.insert(key.id(), TempKey { key, bound_until: None });
                    }
                    Owned::Required(id) => {
                        let unix = self.unix(now) as i64;
                        let expired = self
                            .keys
                            .get(&id)
                            .and_then(|k| k.bound_until)
                            .is_some_and(|t| i64::from(t) <= unix);
                        if expired {
                            self.keys.remove(&id);
                        }
                        let key = self.keys.get(&id).map(|k| k.key.clone());
                        self.notes.push(if key.is_some() {
                            DcNote::KeySupplied(id)
                        } else {
                            DcNote::KeyUnknown(id)
                        });
                        self.sess.supply_auth_key(now, key, rng).unwrap();
                    }
                    Owned::Request(msg_id, body) => self.request(now, msg_id, body),
                    Owned::Session(key_id, session_id) => self.resume(now, key_id, session_id),
                    Owned::Init => self.sess.check_obfuscated_init(&mut self.replay).unwrap(),
                    // Item 25: a new key's id is checked against the store before dh_gen_ok goes out.
                    Owned::NewKey(id) => {
                        let taken = self.keys.contains_key(&id);
                        self.sess.accept_new_key(now, taken, rng).unwrap();
                    }
                    Owned::Other => {}
                }
            }
        }
    }

    fn request(&mut self, now: Instant, msg_id: MsgId, body: Vec<u8>) {
        let Some(cur) = self.current_key() else { return };
        if body.get(..4) == Some(&AuthBindTempAuthKey::CONSTRUCTOR.to_le_bytes()[..]) {
            let ok = if self.refuse_binds || bind_perm_key_id(&body) != Some(self.perm.id()) {
                None
            } else {
                self.sess
                    .session()
                    .unwrap()
                    .verify_bind(now, &self.perm, msg_id, &body)
                    .ok()
            };
            match ok {
                Some(p) => {
                    if let Some(k) = self.keys.get_mut(&cur) {
                        k.bound_until = Some(p.expires_at);
                    }
                    self.notes.push(DcNote::Bound(cur));
                    let _ = self.sess.answer(now, msg_id, &tl::BOOL_TRUE.to_le_bytes());
                }
                None => {
                    self.notes.push(DcNote::BindRefused);
                    let _ = self.sess.answer_error(now, msg_id, 400, b"ENCRYPTED_MESSAGE_INVALID");
                }
            }
            return;
        }
        if !self.bound(cur, now) {
            if allowed_unbound(&body) {
                self.notes.push(DcNote::UnboundAllowed(msg_id));
                self.requests.push((msg_id, body));
                return;
            }
            self.notes.push(DcNote::Unbound401(msg_id));
            let _ = self.sess.answer_error(now, msg_id, 401, b"AUTH_KEY_PERM_EMPTY");
            return;
        }
        self.requests.push((msg_id, body));
    }

    /// Answers what it can; returns the answers that hit backpressure.
    pub fn answer_all(&mut self, now: Instant, answers: Vec<(MsgId, Vec<u8>)>) -> Vec<(MsgId, Vec<u8>)> {
        let mut keep = Vec::new();
        for (id, ans) in answers {
            match self.sess.answer(now, id, &ans) {
                Ok(_) | Err(SendError::UnknownRequest) | Err(SendError::NotReady) => {}
                Err(SendError::QueueFull) => keep.push((id, ans)),
                Err(e) => panic!("answer: {e}"),
            }
        }
        keep
    }
}
