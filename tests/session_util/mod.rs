//! Shared harness for the session tests: a client and a DC engine under one key, a virtual clock, seeded RNG.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::session::{Clock, Event, MsgId, Session, SessionConfig};
use mtproto_sansio::time::{Instant, UnixTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const RX: usize = 8192;
pub const TX: usize = 8192;
pub const MSGS: usize = 32;
pub type E = Session<RX, TX, MSGS>;

/// Unix time of the virtual epoch.
pub const UNIX0: u64 = 1_700_000_000;

pub fn key(seed: u64) -> AuthKey {
    let mut k = [0u8; 256];
    StdRng::seed_from_u64(seed ^ 0x006b_6579).fill_bytes(&mut k);
    AuthKey::from_bytes(k)
}

/// An event copied out of the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Result(MsgId, Vec<u8>),
    Error(MsgId, i32, Vec<u8>, mtproto_sansio::session::RpcErrorKind),
    Failed(MsgId, mtproto_sansio::session::FailReason),
    Update(Vec<u8>),
    Reset(MsgId),
    Request(MsgId, Vec<u8>),
    Created(u64),
    Disconnect,
    Transport(i32),
    KeyReady,
    KeyRequired(u64),
    /// An event added after this harness was written.
    Other(String),
}

pub fn own(e: Event<'_>) -> Ev {
    match e {
        Event::RpcResult { req, body } => Ev::Result(req, body.to_vec()),
        Event::RpcError {
            req,
            code,
            message,
            kind,
        } => Ev::Error(req, code, message.to_vec(), kind),
        Event::Failed { req, reason } => Ev::Failed(req, reason),
        Event::Update(b) => Ev::Update(b.to_vec()),
        Event::SessionReset { first_msg_id } => Ev::Reset(first_msg_id),
        Event::Request { msg_id, body } => Ev::Request(msg_id, body.to_vec()),
        Event::SessionCreated { session_id } => Ev::Created(session_id),
        Event::DisconnectRequested => Ev::Disconnect,
        Event::TransportError(c) => Ev::Transport(c),
        Event::AuthKeyReady => Ev::KeyReady,
        Event::AuthKeyRequired { key_id } => Ev::KeyRequired(key_id),
        other => Ev::Other(format!("{other:?}")),
    }
}

pub fn drain(e: &mut E) -> Vec<Ev> {
    let mut v = Vec::new();
    while let Some(ev) = e.poll_event() {
        v.push(own(ev));
    }
    v
}

pub fn packets(e: &mut E, now: Instant, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; RX + 64];
    let mut v = Vec::new();
    while let Some(p) = e.poll_packet(now, rng, &mut out).unwrap() {
        v.push(out[..p.len].to_vec());
        assert!(v.len() < 1000, "poll_packet does not quiesce");
    }
    v
}

/// A client and a DC engine with the same key; the DC answers every request by echoing its body.
pub struct Pair {
    pub seed: u64,
    pub auto_answer: bool,
    pub c: Box<E>,
    pub s: Box<E>,
    pub now: Instant,
    pub rng: StdRng,
    pub client_events: Vec<Ev>,
    pub server_events: Vec<Ev>,
}

pub fn client_cfg() -> SessionConfig {
    SessionConfig {
        ping_interval: None,
        future_salts: false,
        ..SessionConfig::DEFAULT
    }
}

impl Pair {
    pub fn new(seed: u64) -> Self {
        Self::with(seed, client_cfg(), SessionConfig::DEFAULT, 0)
    }

    /// `skew`: seconds the client's clock is off.
    pub fn with(seed: u64, ccfg: SessionConfig, scfg: SessionConfig, skew: i64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::from_secs(1000);
        let sclock = Clock::from_unix_hint(now, UnixTime(UNIX0));
        let cclock = Clock::from_unix_hint(now, UnixTime((UNIX0 as i64 + skew) as u64));
        let c = Box::new(E::client(ccfg, key(seed), 0, cclock, now, &mut rng));
        let s = Box::new(E::server(scfg, key(seed), sclock, now, &mut rng));
        Pair {
            seed,
            c,
            s,
            now,
            rng,
            client_events: Vec::new(),
            server_events: Vec::new(),
            auto_answer: true,
        }
    }

    pub fn advance(&mut self, secs: u64) {
        self.now = self.now.saturating_add(core::time::Duration::from_secs(secs));
        self.c.handle_timeout(self.now);
        self.s.handle_timeout(self.now);
    }

    pub fn c2s(&mut self) -> Vec<Vec<u8>> {
        packets(&mut self.c, self.now, &mut self.rng)
    }

    pub fn s2c(&mut self) -> Vec<Vec<u8>> {
        packets(&mut self.s, self.now, &mut self.rng)
    }

    /// Delivers to the DC engine as a host with one engine per key would: a session the engine does not serve
    /// yet is allowed to start (no other engine can hold it) and the packet handed in again.
    pub fn deliver_s(&mut self, p: &[u8]) -> Result<u32, mtproto_sansio::session::Dropped> {
        let r = self.deliver_s_keep_events(p);
        self.take_server_events();
        r
    }

    /// [`deliver_s`](Self::deliver_s), leaving the DC's events for the caller to drain.
    pub fn deliver_s_keep_events(&mut self, p: &[u8]) -> Result<u32, mtproto_sansio::session::Dropped> {
        let mut r = self.s.handle_packet(self.now, p);
        if r == Err(mtproto_sansio::session::Dropped::UnknownSession) {
            let (sid, _) = self.s.take_unknown_session().unwrap();
            self.s.approve_session(sid);
            r = self.s.handle_packet(self.now, p);
        }
        r
    }

    pub fn deliver_c(&mut self, p: &[u8]) -> Result<u32, mtproto_sansio::session::Dropped> {
        let r = self.c.handle_packet(self.now, p);
        self.client_events.extend(drain(&mut self.c));
        r
    }

    pub fn take_server_events(&mut self) {
        for ev in drain(&mut self.s) {
            if let (true, Ev::Request(id, body)) = (self.auto_answer, &ev) {
                self.s.answer(self.now, *id, body).unwrap();
            }
            self.server_events.push(ev);
        }
    }

    /// Exchanges packets until both sides are quiet.
    pub fn pump(&mut self) {
        for _ in 0..50 {
            let a = self.c2s();
            for p in &a {
                let _ = self.deliver_s(p);
            }
            let b = self.s2c();
            for p in &b {
                let _ = self.deliver_c(p);
            }
            if a.is_empty() && b.is_empty() {
                return;
            }
        }
        panic!("pump does not quiesce");
    }

    /// Sends a query and pumps; returns its id.
    pub fn query(&mut self, body: &[u8]) -> MsgId {
        let id = self
            .c
            .send(self.now, body, mtproto_sansio::session::MsgKind::Query)
            .unwrap();
        self.pump();
        id
    }

    pub fn results_for(&self, id: MsgId) -> Vec<&Ev> {
        self.client_events
            .iter()
            .filter(|e| matches!(e, Ev::Result(r, _) | Ev::Error(r, ..) | Ev::Failed(r, _) if *r == id))
            .collect()
    }
}

/// A TL-shaped API body (an unknown constructor followed by `n` payload words).
pub fn api_body(tag: u32, n: usize) -> Vec<u8> {
    let mut v = 0x0bad_f00du32.to_le_bytes().to_vec();
    v.extend_from_slice(&tag.to_le_bytes());
    for i in 0..n {
        v.extend_from_slice(&(i as u32).to_le_bytes());
    }
    v
}
