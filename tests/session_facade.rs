//! The `Connection` facade: the run loop over real transports (plain and obfuscated framings), the client's auth-key
//! handshake followed by the encrypted session on the new key, reconnects, and the sticky transport error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::OnceLock;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::handshake::{self, ServerConfig, ServerHandshakes, ServerReply};
use mtproto_sansio::session::{
    Clock, Connection, ConnectionConfig, Event, HostQuery, MsgKind, ResumeError, Session, SessionConfig,
    TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::replay::ReplayCache;
use mtproto_sansio::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing};
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

type S = Connection<8192, 8192, 16>;
const UNIX0: u64 = 1_700_000_000;

fn cfg(transport: TransportConfig) -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            ..SessionConfig::DEFAULT
        },
        transport,
        unix_time_hint: Some(UnixTime(UNIX0)),
        salt: 0,
    }
}

/// Moves every pending transmit of `from` into `to`, feeding it byte by byte in random chunks; returns the events of
/// `to` (bodies copied) and answers DC requests by echo.
fn exchange(from: &mut S, to: &mut S, now: Instant, rng: &mut StdRng) -> Vec<String> {
    let mut out = vec![0u8; from.min_transmit_len()];
    let mut events = Vec::new();
    while let Some(n) = from.poll_transmit(now, rng, &mut out).unwrap() {
        let mut off = 0;
        while off < n {
            let chunk = rng.random_range(1..=n - off);
            let mut fed = 0;
            while fed < chunk {
                let k = to.handle_input(now, &out[off + fed..off + chunk]).unwrap();
                fed += k;
                loop {
                    let mut reqs = Vec::new();
                    while let Some(ev) = to.poll_event() {
                        if let Event::Request { msg_id, body } = ev {
                            reqs.push((msg_id, body.to_vec()));
                        }
                        events.push(format!("{ev:?}"));
                    }
                    for (id, b) in reqs {
                        to.answer(now, id, &b).unwrap();
                    }
                    // A DC host with one connection per session: every session it is asked about starts here;
                    // the parked packet then raises its own events.
                    match to.host_query() {
                        Some(HostQuery::Session { .. }) => to.resume_session(now, None).unwrap(),
                        // One connection per DC here: a cache of one init is all there is to replay against.
                        Some(HostQuery::ObfuscatedInit) => {
                            to.check_obfuscated_init(&mut ReplayCache::<1>::new()).unwrap();
                        }
                        _ => break,
                    }
                }
            }
            off += chunk;
        }
    }
    events
}

fn run_pair(transport: TransportConfig, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Instant::from_secs(50);
    let mut k = [0u8; 256];
    rng.fill_bytes(&mut k);
    let mut c = S::client(cfg(transport), AuthKey::from_bytes(k), now, &mut rng);
    let mut s = S::server(cfg(transport), AuthKey::from_bytes(k), now, &mut rng);
    let body = [0x0d, 0xf0, 0xad, 0x0b, 1, 2, 3, 4];
    let id = c.send(now, &body, MsgKind::Query).unwrap();
    let mut client_events = Vec::new();
    for _ in 0..6 {
        exchange(&mut c, &mut s, now, &mut rng);
        client_events.extend(exchange(&mut s, &mut c, now, &mut rng));
    }
    let want = format!("{:?}", Event::RpcResult { req: id, body: &body });
    assert_eq!(
        client_events.iter().filter(|e| **e == want).count(),
        1,
        "{transport:?}: {client_events:?}"
    );
}

#[test]
fn round_trip_over_every_framing() {
    for framing in [
        Framing::Abridged,
        Framing::Intermediate,
        Framing::PaddedIntermediate,
        Framing::Full,
    ] {
        for seed in 0..4 {
            run_pair(
                TransportConfig {
                    framing,
                    obfuscated: false,
                    dc_id: None,
                },
                seed,
            );
        }
        if framing != Framing::Full {
            run_pair(
                TransportConfig {
                    framing,
                    obfuscated: true,
                    dc_id: Some(2),
                },
                9,
            );
        }
    }
}

#[test]
fn reconnect_resends_unacknowledged_queries() {
    let t = TransportConfig::INTERMEDIATE;
    let mut rng = StdRng::seed_from_u64(3);
    let now = Instant::from_secs(50);
    let k = AuthKey::from_bytes([3u8; 256]);
    let mut c = S::client(cfg(t), k.clone(), now, &mut rng);
    let mut s = S::server(cfg(t), k, now, &mut rng);
    let id = c.send(now, &[0x0d, 0xf0, 0xad, 0x0b], MsgKind::Query).unwrap();
    // The first connection's bytes are lost.
    let mut out = vec![0u8; c.min_transmit_len()];
    while c.poll_transmit(now, &mut rng, &mut out).unwrap().is_some() {}
    c.reconnect(now);
    let mut events = Vec::new();
    for _ in 0..6 {
        exchange(&mut c, &mut s, now, &mut rng);
        events.extend(exchange(&mut s, &mut c, now, &mut rng));
    }
    let want = format!(
        "{:?}",
        Event::RpcResult {
            req: id,
            body: &[0x0d, 0xf0, 0xad, 0x0b]
        }
    );
    assert_eq!(events.iter().filter(|e| **e == want).count(), 1, "{events:?}");
}

#[test]
fn broken_framing_is_a_sticky_error() {
    let mut rng = StdRng::seed_from_u64(4);
    let now = Instant::from_secs(50);
    let mut s = S::server(
        cfg(TransportConfig::INTERMEDIATE),
        AuthKey::from_bytes([1; 256]),
        now,
        &mut rng,
    );
    // No intermediate marker.
    assert!(s.handle_input(now, &[1, 2, 3, 4]).is_err());
    assert!(s.handle_input(now, &[0xee; 4]).is_err());
    assert_eq!(s.poll_timeout(), None);
}

fn rsa() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| dc_key().unwrap())
}

fn trusted() -> &'static [RsaPublicKey] {
    static T: OnceLock<[RsaPublicKey; 1]> = OnceLock::new();
    T.get_or_init(|| [*rsa().public_key()])
}

/// A client without a key: handshake over the session's transport, then an RPC on the new key. The DC side is a
/// hand-driven connection: plaintext frames go to `ServerHandshakes`, encrypted ones to a DC engine on the key it made.
#[test]
fn client_handshake_then_encrypted_session() {
    let mut rng = StdRng::seed_from_u64(7);
    let mut now = Instant::from_secs(50);
    let ccfg = cfg(TransportConfig::INTERMEDIATE);
    let mut c = S::client_handshake(ccfg, handshake::ClientConfig::new(trusted(), 2), now);
    assert_eq!(
        c.send(now, &[0x0d, 0xf0, 0xad, 0x0b], MsgKind::Query).err(),
        Some(mtproto_sansio::session::SendError::NotReady)
    );

    let mut scfg = ServerConfig::new(rsa(), DhGroup::telegram(3).unwrap());
    scfg.dc_id = Some(2);
    scfg.unix_micros_at_zero = UNIX0 * 1_000_000 - now.as_micros() + 2_000_000; // the DC is 2 s ahead
    let mut hs: ServerHandshakes<'_, 4> = ServerHandshakes::new(scfg);
    let mut dec: FrameDecoder<8192> = FrameDecoder::new(DecoderConfig::server(Framing::Intermediate));
    let mut enc = Encoder::new(EncoderConfig::server(Framing::Intermediate));
    let mut dc: Option<Box<Session<8192, 8192, 16>>> = None;
    let mut out = vec![0u8; c.min_transmit_len()];
    let mut sbuf = vec![0u8; 8192];
    let mut to_client: Vec<Vec<u8>> = Vec::new();
    let mut key_ready = false;
    let mut result = None;
    let mut qid = None;
    for _ in 0..20 {
        now = now.saturating_add(core::time::Duration::from_millis(30));
        // Client -> DC.
        while let Some(n) = c.poll_transmit(now, &mut rng, &mut out).unwrap() {
            let mut off = 0;
            while off < n {
                let (k, frame) = dec.decode(&out[off..n]).unwrap();
                off += k;
                let Some(Frame::Packet { data, .. }) = frame else {
                    continue;
                };
                if data[..8] == [0; 8] {
                    match hs.handle(now, &mut rng, 1, data, &mut sbuf, &|_| false).unwrap() {
                        ServerReply::Send(m) => to_client.push(sbuf[..m].to_vec()),
                        ServerReply::Complete { len, outcome } => {
                            to_client.push(sbuf[..len].to_vec());
                            let clock = Clock::from_unix_hint(now, UnixTime(UNIX0 + 2));
                            dc = Some(Box::new(Session::server_with_salt(
                                SessionConfig::DEFAULT,
                                outcome.auth_key,
                                clock,
                                now,
                                &mut rng,
                                outcome.server_salt,
                            )));
                            // A key made on this connection: no other engine can hold a session under it.
                            dc.as_mut().unwrap().approve_first_session();
                        }
                        ServerReply::Error(code) => panic!("DC refused the handshake: {code}"),
                    }
                } else {
                    let e = dc.as_mut().unwrap();
                    let _ = e.handle_packet(now, data);
                    let mut reqs = Vec::new();
                    while let Some(ev) = e.poll_event() {
                        if let Event::Request { msg_id, body } = ev {
                            reqs.push((msg_id, body.to_vec()));
                        }
                    }
                    for (id, b) in reqs {
                        e.answer(now, id, &b).unwrap();
                    }
                }
            }
        }
        if let Some(e) = dc.as_mut() {
            while let Some(p) = e.poll_packet(now, &mut rng, &mut sbuf).unwrap() {
                to_client.push(sbuf[..p.len].to_vec());
            }
        }
        // DC -> client.
        for payload in to_client.drain(..) {
            let mut framed = vec![0u8; payload.len() + 16];
            let n = enc.encode(&payload, false, &mut rng, &mut framed).unwrap();
            let mut off = 0;
            while off < n {
                off += c.handle_input(now, &framed[off..n]).unwrap();
                while let Some(ev) = c.poll_event() {
                    match ev {
                        Event::AuthKeyReady => key_ready = true,
                        Event::RpcResult { req, body } => result = Some((req, body.to_vec())),
                        _ => {}
                    }
                }
            }
        }
        if key_ready && qid.is_none() {
            assert!(c.auth_key().is_some());
            qid = Some(
                c.send(now, &[0x0d, 0xf0, 0xad, 0x0b, 5, 0, 0, 0], MsgKind::Query)
                    .unwrap(),
            );
        }
        if result.is_some() {
            break;
        }
    }
    assert!(key_ready);
    assert_eq!(result, Some((qid.unwrap(), vec![0x0d, 0xf0, 0xad, 0x0b, 5, 0, 0, 0])));
    // The session adopted the handshake's salt and the DC's time: no bad_server_salt, no clock correction.
    let e = c.session().unwrap();
    assert!(e.clock().is_synced());
    assert_eq!(e.stats().bad_msgs, 0);
    assert_eq!(c.auth_key().unwrap().id(), dc.unwrap().auth_key().id());
}

/// The host sees why frames were dropped, not just how many: a forged frame counts as `Rejected`, a recorded frame
/// fed again as `BadMsgId`, and `frames_dropped` is their total.
#[test]
fn dropped_frames_are_counted_by_reason() {
    use mtproto_sansio::session::Dropped;
    let mut rng = StdRng::seed_from_u64(7);
    let now = Instant::from_secs(50);
    let mut k = [0u8; 256];
    rng.fill_bytes(&mut k);
    let t = TransportConfig::INTERMEDIATE;
    let mut c = S::client(cfg(t), AuthKey::from_bytes(k), now, &mut rng);
    let mut s = S::server(cfg(t), AuthKey::from_bytes(k), now, &mut rng);
    // A first query settles the salt (its first copy is answered bad_server_salt: one drop, for that reason).
    c.send(now, &[0x0d, 0xf0, 0xad, 0x0b, 1, 0, 0, 0], MsgKind::Query)
        .unwrap();
    for _ in 0..4 {
        exchange(&mut c, &mut s, now, &mut rng);
        exchange(&mut s, &mut c, now, &mut rng);
    }
    assert_eq!(s.drops().count(Dropped::BadSalt), 1, "{:?}", s.drops());
    let before = s.frames_dropped();
    // One more query: its frame is forged, delivered, then replayed.
    c.send(now, &[0x0d, 0xf0, 0xad, 0x0b, 2, 0, 0, 0], MsgKind::Query)
        .unwrap();
    let mut out = vec![0u8; c.min_transmit_len()];
    let n = c.poll_transmit(now, &mut rng, &mut out).unwrap().unwrap();
    let frame = out[..n].to_vec();
    let feed = |s: &mut S, bytes: &[u8]| {
        assert_eq!(s.handle_input(now, bytes).unwrap(), bytes.len());
        while s.poll_event().is_some() {}
    };
    let mut forged = frame.clone();
    *forged.last_mut().unwrap() ^= 1;
    feed(&mut s, &forged);
    assert_eq!(s.drops().count(Dropped::Rejected), 1);
    assert_eq!(s.drops().last(), Some(Dropped::Rejected));
    feed(&mut s, &frame);
    assert_eq!(
        s.frames_dropped(),
        before + 1,
        "the genuine frame is taken: {:?}",
        s.drops()
    );
    feed(&mut s, &frame);
    assert_eq!(s.drops().count(Dropped::BadMsgId), 1, "{:?}", s.drops());
    assert_eq!(s.drops().last(), Some(Dropped::BadMsgId));
    assert_eq!(s.frames_dropped(), before + 2);
}

/// With `alloc` (this suite builds with `std`), a connection sized for the largest frames pays for the frames it
/// carries: a 64-byte RPC leaves a few KiB of heap on each side, a 200 KiB one grows the buffers to fit, and once
/// the answer is acknowledged and every event taken they are given back (docs/DESIGN.md, Memory). Goes red if a
/// buffer is allocated at its capacity up front or never released, in the clear or obfuscated (whose codec keeps
/// its own decoder: red if it does not give its buffer back or does not count it).
#[test]
fn buffers_grow_with_the_frames_and_are_given_back_when_idle() {
    let obfuscated = TransportConfig {
        obfuscated: true,
        ..TransportConfig::INTERMEDIATE
    };
    for t in [TransportConfig::INTERMEDIATE, obfuscated] {
        buffers_grow_and_are_given_back(t);
    }
}

fn buffers_grow_and_are_given_back(t: TransportConfig) {
    type Big = Connection<1_114_112, 262_144, 64>;
    /// Moves everything both ways; `peak` keeps the most heap either side held after any input (acks of large
    /// messages flush at once, so the buffers may be given back before the pump returns).
    fn pump(c: &mut Big, d: &mut Big, now: Instant, rng: &mut StdRng, peak: &mut usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; c.min_transmit_len()];
        let mut result = None;
        loop {
            let mut moved = false;
            while let Some(n) = c.poll_transmit(now, rng, &mut out).unwrap() {
                moved = true;
                let mut off = 0;
                while off < n {
                    off += d.handle_input(now, &out[off..n]).unwrap();
                    *peak = (*peak).max(c.heap_bytes()).max(d.heap_bytes());
                    match d.host_query() {
                        Some(HostQuery::Session { .. }) => d.resume_session(now, None).unwrap(),
                        Some(HostQuery::ObfuscatedInit) => {
                            d.check_obfuscated_init(&mut ReplayCache::<1>::new()).unwrap();
                        }
                        _ => {}
                    }
                    let mut requests = Vec::new();
                    while let Some(ev) = d.poll_event() {
                        if let Event::Request { msg_id, body } = ev {
                            requests.push((msg_id, body.to_vec()));
                        }
                    }
                    for (id, body) in requests {
                        d.answer(now, id, &body).unwrap();
                    }
                }
            }
            while let Some(n) = d.poll_transmit(now, rng, &mut out).unwrap() {
                moved = true;
                let mut off = 0;
                while off < n {
                    off += c.handle_input(now, &out[off..n]).unwrap();
                    *peak = (*peak).max(c.heap_bytes()).max(d.heap_bytes());
                    while let Some(ev) = c.poll_event() {
                        if let Event::RpcResult { body, .. } = ev {
                            result = Some(body.to_vec());
                        }
                    }
                }
            }
            if !moved {
                return result;
            }
        }
    }
    let mut rng = StdRng::seed_from_u64(11);
    let mut now = Instant::from_secs(10);
    let key = AuthKey::from_bytes([5; 256]);
    let mut c: Box<Big> = Box::new(Connection::client(cfg(t), key.clone(), now, &mut rng));
    let mut d: Box<Big> = Box::new(Connection::server(cfg(t), key, now, &mut rng));
    // The capacity is 1 MiB of frame and 256 KiB of arena, but nothing is allocated before a byte moves.
    assert_eq!((c.heap_bytes(), d.heap_bytes()), (0, 0));

    let small = [0x5a; 64];
    c.send(now, &small, MsgKind::Query).unwrap();
    assert_eq!(pump(&mut c, &mut d, now, &mut rng, &mut 0).as_deref(), Some(&small[..]));
    let (cs, ds) = (c.heap_bytes(), d.heap_bytes());
    assert!(
        cs <= 16 * 1024 && ds <= 16 * 1024,
        "{t:?}, 64-byte RPC: client {cs} B, DC {ds} B of heap"
    );

    let big = vec![0xa5; 200 * 1024];
    c.send(now, &big, MsgKind::Query).unwrap();
    let mut peak = 0;
    let mut got = None;
    for _ in 0..8 {
        // Acks ride the next packets or the ack timer (60 s): let time pass until both sides are idle.
        if let Some(r) = pump(&mut c, &mut d, now, &mut rng, &mut peak) {
            got = Some(r);
        }
        now = now.saturating_add(core::time::Duration::from_secs(10));
        c.handle_timeout(now).unwrap();
        d.handle_timeout(now).unwrap();
    }
    assert_eq!(got.as_deref(), Some(&big[..]));
    assert!(peak >= 200 * 1024, "{t:?}: the buffers grew to the frame ({peak} B)");
    let (cb, db) = (c.heap_bytes(), d.heap_bytes());
    assert!(
        cb <= 3 * 16 * 1024 && db <= 3 * 16 * 1024,
        "{t:?}: idle after a 200 KiB RPC: client {cb} B, DC {db} B of heap"
    );
}

/// A received frame is held once: the engine decrypts it where the transport gathered it and the request event
/// borrows it there, so while that event is pending the DC holds one frame-sized block, not two (with `alloc`,
/// `heap_bytes` counts every buffer). Red if the engine copies the frame into a buffer of its own.
#[test]
fn a_received_frame_is_decrypted_and_read_where_it_arrived() {
    type Big = Connection<1_114_112, 262_144, 64>;
    let mut rng = StdRng::seed_from_u64(12);
    let now = Instant::from_secs(10);
    let key = AuthKey::from_bytes([6; 256]);
    let mut d: Box<Big> = Box::new(Connection::server(
        cfg(TransportConfig::INTERMEDIATE),
        key.clone(),
        now,
        &mut rng,
    ));
    // The client starts with the DC's salt, so its first packet is accepted (no bad_server_salt round).
    let ccfg = ConnectionConfig {
        salt: d.session().unwrap().current_salt(),
        ..cfg(TransportConfig::INTERMEDIATE)
    };
    let mut c: Box<Big> = Box::new(Connection::client(ccfg, key, now, &mut rng));
    let body = vec![0x3c; 200 * 1024];
    c.send(now, &body, MsgKind::Query).unwrap();
    let mut out = vec![0u8; c.min_transmit_len()];
    let mut seen = false;
    while let Some(n) = c.poll_transmit(now, &mut rng, &mut out).unwrap() {
        let mut off = 0;
        while off < n {
            off += d.handle_input(now, &out[off..n]).unwrap();
            if let Some(HostQuery::Session { .. }) = d.host_query() {
                d.resume_session(now, None).unwrap();
            }
            let held = d.heap_bytes();
            while let Some(ev) = d.poll_event() {
                if let Event::Request { body: b, .. } = ev {
                    assert_eq!(b, &body[..]);
                    seen = true;
                    assert!(held < 2 * 200 * 1024, "{held} B held for one 200 KiB frame");
                }
            }
        }
    }
    assert!(seen);
}

/// DC: a session does not move from a connection whose events still borrow that connection's receive buffer (they
/// would read another connection's bytes): `Busy`, nothing changes; drained, it moves.
#[test]
fn a_session_moves_only_from_a_drained_connection() {
    let mut rng = StdRng::seed_from_u64(13);
    let now = Instant::from_secs(10);
    let key = AuthKey::from_bytes([8; 256]);
    // Both DC connections issue the key's one salt schedule, and the client starts with its salt.
    let stored = mtproto_sansio::session::StoredKey {
        key: key.clone(),
        salts: Connection::<8192, 8192, 16>::server(cfg(TransportConfig::INTERMEDIATE), key.clone(), now, &mut rng)
            .stored_key()
            .unwrap()
            .salts,
    };
    let mut a: Box<S> = Box::new(Connection::server_stored(
        cfg(TransportConfig::INTERMEDIATE),
        &stored,
        now,
    ));
    let mut b: Box<S> = Box::new(Connection::server_stored(
        cfg(TransportConfig::INTERMEDIATE),
        &stored,
        now,
    ));
    let ccfg = ConnectionConfig {
        salt: a.session().unwrap().current_salt(),
        ..cfg(TransportConfig::INTERMEDIATE)
    };
    let mut c: Box<S> = Box::new(Connection::client(ccfg, key, now, &mut rng));
    let mut out = vec![0u8; c.min_transmit_len()];
    let mut feed = |c: &mut S, d: &mut S, rng: &mut StdRng| {
        while let Some(n) = c.poll_transmit(now, rng, &mut out).unwrap() {
            let mut off = 0;
            while off < n {
                let k = d.handle_input(now, &out[off..n]).unwrap();
                if k == 0 {
                    break;
                }
                off += k;
                if let Some(HostQuery::Session { .. }) = d.host_query() {
                    break;
                }
            }
        }
    };
    // Connection a serves the session; its request event is left pending.
    c.send(now, &[1, 0, 0, 0], MsgKind::Query).unwrap();
    feed(&mut c, &mut a, &mut rng);
    a.resume_session(now, None).unwrap();
    assert!(a.session().unwrap().pending_events() > 0);
    // The client moves to connection b, which asks for the session.
    c.reconnect(now);
    c.send(now, &[2, 0, 0, 0], MsgKind::Query).unwrap();
    feed(&mut c, &mut b, &mut rng);
    assert!(matches!(b.host_query(), Some(HostQuery::Session { .. })));
    assert_eq!(b.resume_session(now, Some(&mut a)), Err(ResumeError::Busy));
    assert!(
        matches!(b.host_query(), Some(HostQuery::Session { .. })),
        "still parked"
    );
    while a.poll_event().is_some() {}
    assert_eq!(b.resume_session(now, Some(&mut a)), Ok(()));
}

/// A host that reconnects before draining its events loses nothing: a pending result keeps its body, though it
/// borrowed the old transport's receive buffer (the engine copies what still borrows it before the transport is
/// replaced). Red without that copy: the body would be read from the new, empty buffer.
#[test]
fn events_pending_at_reconnect_keep_their_bodies() {
    let mut rng = StdRng::seed_from_u64(14);
    let now = Instant::from_secs(10);
    let key = AuthKey::from_bytes([9; 256]);
    let mut d: Box<S> = Box::new(Connection::server(
        cfg(TransportConfig::INTERMEDIATE),
        key.clone(),
        now,
        &mut rng,
    ));
    let ccfg = ConnectionConfig {
        salt: d.session().unwrap().current_salt(),
        ..cfg(TransportConfig::INTERMEDIATE)
    };
    let mut c: Box<S> = Box::new(Connection::client(ccfg, key, now, &mut rng));
    let body = [7u8, 7, 7, 7, 1, 2, 3, 4];
    let q = c.send(now, &body, MsgKind::Query).unwrap();
    let mut out = vec![0u8; c.min_transmit_len()];
    while let Some(n) = c.poll_transmit(now, &mut rng, &mut out).unwrap() {
        let mut off = 0;
        while off < n {
            off += d.handle_input(now, &out[off..n]).unwrap();
            if let Some(HostQuery::Session { .. }) = d.host_query() {
                d.resume_session(now, None).unwrap();
            }
            let mut requests = Vec::new();
            while let Some(ev) = d.poll_event() {
                if let Event::Request { msg_id, body } = ev {
                    requests.push((msg_id, body.to_vec()));
                }
            }
            for (id, b) in requests {
                d.answer(now, id, &b).unwrap();
            }
        }
    }
    // The answer reaches the client, whose host does not take the event before the connection drops.
    while let Some(n) = d.poll_transmit(now, &mut rng, &mut out).unwrap() {
        let mut off = 0;
        while off < n {
            let k = c.handle_input(now, &out[off..n]).unwrap();
            if k == 0 {
                break;
            }
            off += k;
        }
    }
    c.reconnect(now);
    let mut got = None;
    while let Some(ev) = c.poll_event() {
        if let Event::RpcResult { req, body } = ev {
            got = Some((req, body.to_vec()));
        }
    }
    assert_eq!(got, Some((q, body.to_vec())));
}
