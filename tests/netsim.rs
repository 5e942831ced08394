//! The simulated network: a client and a DC `Connection` (abridged, intermediate or padded intermediate framing, with
//! quick acks on or off) over an in-memory link with a seeded RNG and a virtual
//! clock, under loss (up to 30 %), duplication, reordering, bit flips, connection resets, client clock skew of
//! ±600 s, clock jumps (long stalls with packets delayed past the time window), the DC forgetting the session, and
//! salt rotation. One seed in `NETSIM_PFS_EVERY` (default 1000; `1` runs every seed so) runs the client under the PFS
//! policy (`session::pfs`) against a DC host that creates temporary keys by the handshake and verifies bindings
//! (tests/pfs_dc), with short key lifetimes and the temp-key expiry fault: the DC forgets its temporary keys (they
//! live in RAM only) and drops the connection, so the client meets −404 and re-keys. Invariants checked on every seed:
//! - no panic; queues stay within their limits;
//! - every query ends in exactly one event, and a result carries exactly the DC's answer to that query;
//! - the DC executes each query at most once per server session, and the client sees each update at most once;
//! - once faults stop, everything resolves within a bounded virtual time;
//! - a seed always replays the same transcript (hash of every byte sent).
//!
//! `NETSIM_SEEDS` sets the number of seeds (default 10,000); a failing seed is printed and can be replayed with
//! `NETSIM_SEED=<n>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod dc_util;
mod pfs_dc;

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::handshake;
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Event, FailReason, HostQuery, Limits, MsgId, MsgKind, PfsClient, PfsConfig, PfsEvent,
    ResendPolicy, SendError, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::Framing;
use pfs_dc::Dc;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

const RX: usize = 4096;
const TX: usize = 4096;
const MSGS: usize = 16;
type S = Connection<RX, TX, MSGS>;
const HELD: usize = 16;
type P = PfsClient<RX, TX, MSGS, HELD>;

const UNIX0: u64 = 1_700_000_000;
const FAULT_PHASE: u64 = 400; // seconds of faults
const SETTLE: u64 = 400; // seconds after faults stop within which everything must resolve

#[derive(Clone, Copy)]
struct Faults {
    loss: f64,
    dup: f64,
    reorder: f64,
    flip: f64,
    reset: f64,
    forget: f64,
    jump: f64,
    /// PFS seeds: the DC forgets its temporary keys.
    expire: f64,
}

/// The client under test: a plain session on a stored key, or the PFS policy.
enum Client {
    Plain(Box<S>),
    Pfs(Box<P>),
}

/// The DC: a session on the client's key, or the PFS DC host (one connection at a time, a temporary-key store).
enum Server {
    Plain(Box<S>),
    Pfs(Box<Dc<RX, TX, MSGS>>),
}

impl Client {
    fn handle_input(&mut self, now: Instant, b: &[u8]) -> Result<usize, mtproto_sansio::session::Error> {
        match self {
            Client::Plain(s) => s.handle_input(now, b),
            Client::Pfs(p) => p.handle_input(now, b),
        }
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), mtproto_sansio::session::Error> {
        match self {
            Client::Plain(s) => s.handle_timeout(now),
            Client::Pfs(p) => p.handle_timeout(now),
        }
    }
    fn poll_transmit(
        &mut self,
        now: Instant,
        rng: &mut StdRng,
        out: &mut [u8],
    ) -> Result<Option<usize>, mtproto_sansio::session::BufferTooSmall> {
        match self {
            Client::Plain(s) => s.poll_transmit(now, rng, out),
            Client::Pfs(p) => p.poll_transmit(now, rng, out),
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Client::Plain(s) => s.poll_timeout(),
            Client::Pfs(p) => p.poll_timeout(),
        }
    }
    fn reconnect(&mut self, now: Instant) {
        match self {
            Client::Plain(s) => s.reconnect(now),
            Client::Pfs(p) => p.reconnect(now),
        }
    }
    /// A query; the PFS policy's query ids stand in for msg_ids in the bookkeeping.
    fn send(&mut self, now: Instant, body: &[u8]) -> Result<MsgId, SendError> {
        match self {
            Client::Plain(s) => s.send(now, body, MsgKind::Query),
            Client::Pfs(p) => p.send(now, body).map(|q| MsgId(q.0)),
        }
    }
    fn session(&self) -> &S {
        match self {
            Client::Plain(s) => s,
            Client::Pfs(p) => p.session(),
        }
    }
}

impl Server {
    fn sess(&mut self) -> &mut S {
        match self {
            Server::Plain(s) => s,
            Server::Pfs(d) => &mut d.sess,
        }
    }
    fn session(&self) -> &S {
        match self {
            Server::Plain(s) => s,
            Server::Pfs(d) => &d.sess,
        }
    }
}

/// A new connection (the PFS policy's new key, or a dropped one): old packets are void, both ends start over.
fn new_connection(
    client: &mut Client,
    server: &mut Server,
    epoch: &mut u64,
    answers: &mut Vec<(MsgId, Vec<u8>)>,
    now: Instant,
) {
    *epoch += 1;
    if let Server::Pfs(dc) = server {
        dc.connect(now);
    }
    answers.clear();
    client.reconnect(now);
}

/// Which seeds run the PFS policy.
fn pfs_seed(seed: u64) -> bool {
    let every: u64 = std::env::var("NETSIM_PFS_EVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
        .max(1);
    seed % every == 3 % every
}

struct InFlight {
    at: Instant,
    seq: u64,
    to_server: bool,
    epoch: u64,
    bytes: Vec<u8>,
}

struct Outcome {
    hash: u64,
    queries: usize,
    /// PFS seeds: temporary keys created.
    keys: u64,
}

fn micros(d: u64) -> Duration {
    Duration::from_micros(d)
}

fn run(seed: u64) -> Result<Outcome, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut crng = StdRng::seed_from_u64(seed ^ 0xc1);
    let mut srng = StdRng::seed_from_u64(seed ^ 0x5e);
    let f = Faults {
        loss: rng.random_range(0.0..0.30),
        dup: rng.random_range(0.0..0.10),
        reorder: rng.random_range(0.0..0.30),
        flip: rng.random_range(0.0..0.05),
        reset: rng.random_range(0.0..0.01),
        forget: rng.random_range(0.0..0.003),
        jump: rng.random_range(0.0..0.005),
        expire: 0.0,
    };
    let pfs = pfs_seed(seed);
    let skew: i64 = rng.random_range(-600..=600);
    let mut k = [0u8; 256];
    rng.fill_bytes(&mut k);
    let key = AuthKey::from_bytes(k);
    let limits = Limits {
        salt_rotation: Duration::from_secs(120),
        salt_grace: Duration::from_secs(60),
        ..Limits::DEFAULT
    };
    let ecfg = SessionConfig {
        limits,
        resend: ResendPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(16),
            max_attempts: 8,
        },
        ping_interval: Some(Duration::from_secs(30)),
        rpc_timeout: Duration::from_secs(150),
        quick_ack: rng.random_bool(0.5),
        ..SessionConfig::DEFAULT
    };
    let mut now = Instant::from_secs(10);
    // Frame-preserving faults need a framing whose frames are dropped, duplicated or reordered whole.
    let framing = [Framing::Abridged, Framing::Intermediate, Framing::PaddedIntermediate][rng.random_range(0..3usize)];
    let transport = TransportConfig {
        framing,
        obfuscated: false,
        dc_id: None,
    };
    let ccfg = ConnectionConfig {
        engine: ecfg,
        transport,
        unix_time_hint: Some(UnixTime((UNIX0 as i64 + skew) as u64)),
        ..ConnectionConfig::DEFAULT
    };
    let scfg = ConnectionConfig {
        engine: ecfg,
        transport,
        unix_time_hint: Some(UnixTime(UNIX0)),
        ..ConnectionConfig::DEFAULT
    };
    let (mut client, mut server, f_expire) = if pfs {
        let f_expire = rng.random_range(0.0..0.0008);
        let mut pcfg = PfsConfig::new(ccfg, handshake::ClientConfig::new(pfs_dc::trusted(), 2));
        pcfg.temp_key_lifetime = rng.random_range(200..450);
        pcfg.rekey_margin = Duration::from_secs(30);
        pcfg.drain_timeout = Duration::from_secs(20);
        pcfg.max_bind_failures = u8::MAX;
        let p: Box<P> = Box::new(P::new(pcfg, key.clone(), now));
        let unix_at_zero = UNIX0 - now.as_secs();
        (
            Client::Pfs(p),
            Server::Pfs(Box::new(Dc::new(scfg, key, unix_at_zero, now))),
            f_expire,
        )
    } else {
        (
            Client::Plain(Box::new(S::client(ccfg, key.clone(), now, &mut crng))),
            Server::Plain(Box::new(S::server(scfg, key, now, &mut srng))),
            0.0,
        )
    };
    let f = Faults { expire: f_expire, ..f };

    let mut link: Vec<InFlight> = Vec::new();
    let mut seq = 0u64;
    let mut epoch = 0u64;
    let mut hasher = DefaultHasher::new();
    let mut out = vec![
        0u8;
        client
            .session()
            .min_transmit_len()
            .max(server.session().min_transmit_len())
    ];

    // Bookkeeping for the invariants.
    let mut sent: BTreeMap<MsgId, Vec<u8>> = BTreeMap::new(); // query id -> body
    let mut ended: HashMap<MsgId, u32> = HashMap::new();
    let mut executed: HashMap<Vec<u8>, u32> = HashMap::new(); // per server session
    let mut updates_seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut answers: Vec<(MsgId, Vec<u8>)> = Vec::new();
    let mut next_tag = 0u32;
    let mut next_app = now;
    let end_faults = now.saturating_add(Duration::from_secs(FAULT_PHASE));
    let end = end_faults.saturating_add(Duration::from_secs(SETTLE));
    let mut steps = 0u32;

    while now < end {
        steps += 1;
        if steps > 200_000 {
            return Err("simulation does not progress".into());
        }
        let faulty = now < end_faults;
        // 1. Deliver what is due, in time order (then send order).
        link.sort_by_key(|p| (p.at, p.seq));
        // A DC that parks a frame (a PFS DC's handshake frame for its host) or works through a packet waiting for
        // room for its answers consumes nothing until it transmits: the rest of its stream waits (in order) for the
        // next round.
        let mut dc_blocked = false;
        let mut i = 0;
        while let Some(p) = link.get(i) {
            if p.at > now {
                break;
            }
            if dc_blocked && p.to_server {
                i += 1;
                continue;
            }
            let mut p = link.remove(i);
            if p.epoch != epoch {
                continue;
            }
            let mut off = 0;
            let mut stalls = 0;
            while off < p.bytes.len() {
                let r = if p.to_server {
                    server.sess().handle_input(now, &p.bytes[off..])
                } else {
                    client.handle_input(now, &p.bytes[off..])
                };
                let n = match r {
                    Ok(n) => n,
                    // A PFS client whose handshake failed for good: the host opens a new connection.
                    Err(mtproto_sansio::session::Error::Handshake(_)) if pfs && !p.to_server => {
                        new_connection(&mut client, &mut server, &mut epoch, &mut answers, now);
                        break;
                    }
                    Err(e) => return Err(format!("transport error: {e}")),
                };
                off += n;
                let nc = drain_events(
                    &mut client,
                    &mut server,
                    now,
                    &mut srng,
                    &sent,
                    &mut ended,
                    &mut executed,
                    &mut updates_seen,
                    &mut answers,
                )?;
                if nc {
                    new_connection(&mut client, &mut server, &mut epoch, &mut answers, now);
                    break;
                }
                stalls = if n == 0 { stalls + 1 } else { 0 };
                if p.to_server && stalls > 2 {
                    p.bytes.drain(..off);
                    link.insert(i, p);
                    i += 1;
                    dc_blocked = true;
                    break;
                }
                if stalls > 2 {
                    return Err("handle_input makes no progress".into());
                }
            }
        }
        // 2. Timers.
        match client.handle_timeout(now) {
            Ok(()) => {}
            Err(mtproto_sansio::session::Error::Handshake(_)) if pfs => {
                new_connection(&mut client, &mut server, &mut epoch, &mut answers, now)
            }
            Err(e) => return Err(format!("{e}")),
        }
        server.sess().handle_timeout(now).map_err(|e| format!("{e}"))?;
        // A DC forgets a temporary key at its binding's expiry: the connection drops, the next one meets −404.
        if let Server::Pfs(dc) = &mut server
            && dc.current_key_expired(now)
        {
            let unix = dc.unix(now);
            dc.keys.retain(|_, k| k.bound_until.is_none_or(|t| t as u64 > unix));
            new_connection(&mut client, &mut server, &mut epoch, &mut answers, now);
        }
        // 3. The application.
        if now >= next_app && now < end_faults {
            let r: u32 = rng.random_range(0..10);
            if r < 6 {
                let mut body = 0x0bad_f00du32.to_le_bytes().to_vec();
                body.extend_from_slice(&next_tag.to_le_bytes());
                body.extend_from_slice(&vec![0u8; 4 * rng.random_range(0..64usize)]);
                next_tag += 1;
                match client.send(now, &body) {
                    Ok(id) => {
                        if sent.insert(id, body).is_some() {
                            return Err(format!("send returned a msg_id twice: {id}"));
                        }
                    }
                    Err(mtproto_sansio::session::SendError::QueueFull) => {}
                    Err(e) => return Err(format!("send: {e}")),
                }
            } else if r < 7 {
                let mut body = 0x0bad_cafeu32.to_le_bytes().to_vec();
                body.extend_from_slice(&next_tag.to_le_bytes());
                next_tag += 1;
                let _ = server.sess().send(now, &body, MsgKind::Notice);
            }
            next_app = now.saturating_add(micros(rng.random_range(100_000..3_000_000)));
        }
        if std::env::var("NETSIM_TRACE").is_ok() {
            eprintln!(
                "{now:?} c {:?} s {:?}",
                client.session().stats(),
                server.session().stats()
            );
        }
        if faulty && rng.random_bool(f.forget) {
            if let Some(e) = server.sess().session_mut() {
                e.forget_session();
            }
            executed.clear();
            answers.clear();
        }
        // Temp-key expiry: the DC loses its temporary keys (RAM only) and the connection. The client's queries in
        // flight end as lost and are never executed again, so `executed` is kept.
        if pfs && faulty && rng.random_bool(f.expire) {
            if let Server::Pfs(dc) = &mut server {
                dc.keys.clear();
            }
            new_connection(&mut client, &mut server, &mut epoch, &mut answers, now);
        }
        if drain_events(
            &mut client,
            &mut server,
            now,
            &mut srng,
            &sent,
            &mut ended,
            &mut executed,
            &mut updates_seen,
            &mut answers,
        )? {
            new_connection(&mut client, &mut server, &mut epoch, &mut answers, now);
        }
        // 4. Transmit.
        for to_server in [true, false] {
            loop {
                let r = if to_server {
                    client.poll_transmit(now, &mut crng, &mut out)
                } else {
                    server.sess().poll_transmit(now, &mut srng, &mut out)
                };
                let Some(n) = r.map_err(|e| format!("{e}"))? else {
                    break;
                };
                let bytes = out[..n].to_vec();
                bytes.hash(&mut hasher);
                seq += 1;
                // The connection's marker is never tampered with (a real stream would just reset).
                let marker = bytes.len() <= 4 && to_server;
                let latency = if marker { 0 } else { rng.random_range(5_000..200_000u64) };
                let mut at = now.saturating_add(micros(latency));
                if faulty && !marker {
                    if rng.random_bool(f.loss) {
                        continue;
                    }
                    if rng.random_bool(f.reorder) {
                        at = at.saturating_add(micros(rng.random_range(0..2_000_000)));
                    }
                    let mut b = bytes.clone();
                    if rng.random_bool(f.flip) && b.len() > 8 {
                        let i = rng.random_range(4..b.len());
                        b[i] ^= 1 << rng.random_range(0..8);
                    }
                    if rng.random_bool(f.dup) {
                        let later = at.saturating_add(micros(rng.random_range(0..1_000_000)));
                        link.push(InFlight {
                            at: later,
                            seq,
                            to_server,
                            epoch,
                            bytes: b.clone(),
                        });
                        seq += 1;
                    }
                    link.push(InFlight {
                        at,
                        seq,
                        to_server,
                        epoch,
                        bytes: b,
                    });
                } else {
                    link.push(InFlight {
                        at,
                        seq,
                        to_server,
                        epoch,
                        bytes,
                    });
                }
            }
        }
        // 5. Queue bounds.
        if let Client::Pfs(p) = &client
            && p.held() > HELD
        {
            return Err("the PFS hold queue exceeded its limit".into());
        }
        for s in [client.session(), server.session()] {
            let Some(e) = s.session() else { continue };
            if e.in_flight() > MSGS || e.arena_used() > TX || e.pending_events() > MSGS {
                return Err("a queue exceeded its limit".into());
            }
        }
        // 6. Faults on the connection and the clock.
        if faulty && rng.random_bool(f.reset) {
            epoch += 1;
            client.reconnect(now);
            server.sess().reconnect(now);
        }
        // 7. Next instant: the earliest of deliveries, timers and the application; a jump stalls the clock.
        let mut next = now.saturating_add(Duration::from_secs(5));
        if now < end_faults {
            next = next.min(next_app);
        }
        for p in &link {
            next = next.min(p.at);
        }
        for t in [client.poll_timeout(), server.session().poll_timeout()]
            .into_iter()
            .flatten()
        {
            next = next.min(t);
        }
        if next <= now {
            next = now.saturating_add(micros(1000));
        }
        if faulty && rng.random_bool(f.jump) {
            next = now.saturating_add(Duration::from_secs(rng.random_range(30..400)));
        }
        now = next;
    }
    // Everything must have resolved.
    for id in sent.keys() {
        match ended.get(id) {
            Some(1) => {}
            Some(n) => return Err(format!("query {id} ended {n} times")),
            None => return Err(format!("query {id} never ended")),
        }
    }
    let keys = match &client {
        Client::Pfs(p) => p.keys_created(),
        Client::Plain(_) => 0,
    };
    Ok(Outcome {
        hash: hasher.finish(),
        queries: sent.len(),
        keys,
    })
}

/// Drains both ends' events, checking the invariants; true if the PFS client asked for a new connection.
#[allow(clippy::too_many_arguments)]
fn drain_events(
    client: &mut Client,
    server: &mut Server,
    now: Instant,
    srng: &mut StdRng,
    sent: &BTreeMap<MsgId, Vec<u8>>,
    ended: &mut HashMap<MsgId, u32>,
    executed: &mut HashMap<Vec<u8>, u32>,
    updates: &mut HashMap<Vec<u8>, u32>,
    answers: &mut Vec<(MsgId, Vec<u8>)>,
) -> Result<bool, String> {
    let mut requests = Vec::new();
    match server {
        Server::Plain(server) => loop {
            while let Some(ev) = server.poll_event() {
                match ev {
                    Event::Request { msg_id, body } => requests.push((msg_id, body.to_vec())),
                    Event::SessionCreated { .. } | Event::DisconnectRequested | Event::SessionRequired { .. } => {}
                    other => return Err(format!("unexpected DC event {other:?}")),
                }
            }
            // One DC `Connection` serves every connection of the run: no other one can hold a session. The parked
            // packet then raises its own events, drained in the same call.
            match server.host_query() {
                Some(HostQuery::Session { .. }) => {
                    server.resume_session(now, None).map_err(|e| format!("resume: {e}"))?;
                }
                _ => break,
            }
        },
        // The DC host answers handshakes, key look-ups and bindings itself; it hands over bound-key queries.
        Server::Pfs(dc) => {
            dc.process(now, srng);
            requests.append(&mut dc.requests);
        }
    }
    for (msg_id, body) in requests {
        if std::env::var("NETSIM_TRACE").is_ok() {
            eprintln!("{now:?} DC request {msg_id} tag {:?}", body.get(4..8));
        }
        let mut ans = b"ANS:".to_vec();
        ans.extend_from_slice(&body);
        let n = executed.entry(body).or_default();
        *n += 1;
        if *n > 1 {
            return Err(format!("the DC executed a query twice: {msg_id}"));
        }
        answers.push((msg_id, ans));
    }
    // Backpressure: an answer the DC cannot queue yet is retried later.
    let mut keep = Vec::new();
    for (id, ans) in answers.drain(..) {
        match server.sess().answer(now, id, &ans) {
            Ok(_) | Err(SendError::UnknownRequest) => {}
            Err(SendError::QueueFull) => keep.push((id, ans)),
            Err(e) => return Err(format!("answer: {e}")),
        }
    }
    *answers = keep;
    let end = |req: MsgId, ended: &mut HashMap<MsgId, u32>| -> Result<(), String> {
        *ended.entry(req).or_default() += 1;
        if ended[&req] > 1 {
            return Err(format!("query {req} ended twice"));
        }
        Ok(())
    };
    let check_result = |req: MsgId, body: &[u8]| -> Result<(), String> {
        let q = sent
            .get(&req)
            .ok_or_else(|| format!("result for a query never sent: {req}"))?;
        if body.get(..4) != Some(b"ANS:") || &body[4..] != q.as_slice() {
            return Err(format!("result for {req} is not the DC's answer to it"));
        }
        Ok(())
    };
    let mut seen_update = |body: &[u8]| -> Result<(), String> {
        let n = updates.entry(body.to_vec()).or_default();
        *n += 1;
        if *n > 1 {
            return Err("an update reached the application twice".into());
        }
        Ok(())
    };
    let mut new_conn = false;
    match client {
        Client::Plain(client) => {
            while let Some(ev) = client.poll_event() {
                match ev {
                    Event::RpcResult { req, body } => {
                        check_result(req, body)?;
                        end(req, ended)?;
                    }
                    Event::Failed { req, reason } => {
                        if !sent.contains_key(&req) {
                            return Err(format!("failure for a query never sent: {req}"));
                        }
                        if !matches!(reason, FailReason::Timeout) {
                            return Err(format!("unexpected failure reason {reason:?}"));
                        }
                        end(req, ended)?;
                    }
                    Event::Update(body) => seen_update(body)?,
                    Event::SessionReset { .. } => {}
                    other => return Err(format!("unexpected client event {other:?}")),
                }
            }
        }
        Client::Pfs(client) => {
            while let Some(ev) = client.poll_event() {
                match ev {
                    PfsEvent::Result { query, body } => {
                        let req = MsgId(query.0);
                        check_result(req, body)?;
                        end(req, ended)?;
                    }
                    PfsEvent::Failed { query, reason } => {
                        let req = MsgId(query.0);
                        if !sent.contains_key(&req) {
                            return Err(format!("failure for a query never sent: {req}"));
                        }
                        if !matches!(reason, FailReason::Timeout | FailReason::KeyLost) {
                            return Err(format!("unexpected failure reason {reason:?}"));
                        }
                        end(req, ended)?;
                    }
                    // The DC lost a binding but not the key: the query was not executed.
                    PfsEvent::Error {
                        query, code, message, ..
                    } if code == 401 && message == b"AUTH_KEY_PERM_EMPTY" => end(MsgId(query.0), ended)?,
                    PfsEvent::Update(body) => seen_update(body)?,
                    PfsEvent::NewConnection(_) => {
                        // The rest of this drain belongs to the new key; the caller switches connections.
                        new_conn = true;
                        break;
                    }
                    PfsEvent::SessionReset | PfsEvent::Key(_) | PfsEvent::TransportError(_) => {}
                    other => return Err(format!("unexpected client event {other:?}")),
                }
            }
        }
    }
    Ok(new_conn)
}

#[test]
fn netsim_seeds() {
    let seeds: u64 = std::env::var("NETSIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let only: Option<u64> = std::env::var("NETSIM_SEED").ok().and_then(|s| s.parse().ok());
    let list: Vec<u64> = match only {
        Some(s) => vec![s],
        None => (0..seeds).collect(),
    };
    let start = std::time::Instant::now();
    let mut total_queries = 0;
    let mut total_keys = 0;
    let mut pfs_seeds = 0;
    for &seed in &list {
        match std::panic::catch_unwind(|| run(seed)) {
            Ok(Ok(o)) => {
                total_queries += o.queries;
                total_keys += o.keys;
                pfs_seeds += usize::from(pfs_seed(seed));
            }
            Ok(Err(e)) => panic!("netsim seed {seed} failed: {e} (replay with NETSIM_SEED={seed})"),
            Err(_) => panic!("netsim seed {seed} panicked (replay with NETSIM_SEED={seed})"),
        }
    }
    eprintln!(
        "netsim: {} seeds ({pfs_seeds} under PFS, {total_keys} temporary keys), {total_queries} queries, {:?}",
        list.len(),
        start.elapsed()
    );
}

#[test]
fn netsim_replays_identically() {
    for seed in [1u64, 2, 3, 77] {
        let a = run(seed).unwrap();
        let b = run(seed).unwrap();
        assert_eq!(a.hash, b.hash, "seed {seed} is not deterministic");
        assert!(a.queries > 0);
    }
    assert_ne!(run(1).unwrap().hash, run(2).unwrap().hash);
}
