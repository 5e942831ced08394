//! The encrypted session, unchanged, over each carriage end to end: HTTP (`POST /api`, DC packets only in responses
//! to pending requests), WebSocket (obfuscated padded intermediate in binary frames, fragmented, with pings) and
//! fake-TLS (`ee` secret: ClientHello/ServerHello, then records around the secret-keyed obfuscated stream).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use std::collections::{BTreeMap, VecDeque};

use mtproto_sansio::carriage::faketls::{
    ClientHelloReader, FakeTlsSecret, MAX_SERVER_HELLO_LEN, RecordDecoder, RecordEncoder, ReplayCache, ServerConfig,
    ServerHelloReader, client_hello, encode_server_hello,
};
use mtproto_sansio::carriage::http::{API_PATH, HttpDecoder, HttpLimits, encode_request, encode_response};
use mtproto_sansio::carriage::layer::{Carriage, FakeTlsCarriage, HttpCarriage, Layer, WsCarriage};
use mtproto_sansio::carriage::ws::{ClientHandshake, Opcode, ServerHandshake, WS_PATH, WsCodec, WsEvent};
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Event, HostQuery, MsgId, MsgKind, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::HttpWait;
use mtproto_sansio::transport::obfuscated::ObfuscatedCodec;
use mtproto_sansio::transport::{Frame, Framing, Role, strip_padding};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use session_util::{Ev, Pair, RX, api_body, drain, packets};

const QUERIES: u32 = 20;
const SEEDS: [u64; 4] = [1, 7, 42, 0xdead_beef];

/// Sends the queries not yet sent, a few at a time.
fn send_some(p: &mut Pair, sent: &mut u32, ids: &mut Vec<(MsgId, Vec<u8>)>) -> Vec<MsgId> {
    let mut now_sent = Vec::new();
    if *sent < QUERIES && p.rng.random_bool(0.4) {
        let k = p.rng.random_range(1..=3u32).min(QUERIES - *sent);
        for _ in 0..k {
            let words = p.rng.random_range(0..40);
            let body = api_body(*sent, words);
            let id = p.c.send(p.now, &body, MsgKind::Query).unwrap();
            ids.push((id, body));
            now_sent.push(id);
            *sent += 1;
        }
    }
    now_sent
}

/// Every query ended in exactly one event: its echoed result.
fn assert_each_once(events: &[Ev], ids: &[(MsgId, Vec<u8>)]) {
    assert_eq!(ids.len(), QUERIES as usize);
    for (id, body) in ids {
        let ends: Vec<&Ev> = events
            .iter()
            .filter(|e| matches!(e, Ev::Result(r, _) | Ev::Error(r, ..) | Ev::Failed(r, _) if r == id))
            .collect();
        assert_eq!(ends, vec![&Ev::Result(*id, body.clone())], "query {id:?}");
    }
}

fn results_done(events: &[Ev], ids: &[(MsgId, Vec<u8>)]) -> bool {
    ids.len() == QUERIES as usize
        && ids
            .iter()
            .all(|(id, _)| events.iter().any(|e| matches!(e, Ev::Result(r, _) if r == id)))
}

fn tick(p: &mut Pair, ms: u64) {
    p.now = p.now.saturating_add(core::time::Duration::from_millis(ms));
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
}

// ---------------------------------------------------------------- HTTP

const LIM: HttpLimits = HttpLimits {
    max_head: 2048,
    max_body: 64 * 1024,
    max_chunk_line: 64,
};
type Http = HttpDecoder<2048, { RX + 64 }>;

/// Feeds `wire` in random pieces; returns the bodies completed.
fn feed_http(r: &mut StdRng, dec: &mut Http, wire: &[u8]) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut pos = 0;
    while pos < wire.len() {
        let len = r.random_range(1..=wire.len().min(pos + 700) - pos);
        let mut piece = &wire[pos..pos + len];
        pos += len;
        loop {
            let n = dec.feed(piece).unwrap();
            piece = &piece[n..];
            let took = match dec.next_body() {
                Some(b) => {
                    got.push(b.to_vec());
                    true
                }
                None => false,
            };
            if piece.is_empty() && !took {
                break;
            }
            assert!(n > 0 || took, "HTTP decoder stalled");
        }
    }
    got
}

/// The client's long poll: the DC holds the exchange until it has something to send, or for `max_wait` (ms).
const LONG_POLL: HttpWait = HttpWait {
    max_delay: 0,
    wait_after: 0,
    max_wait: 2_000,
};

/// Answers the oldest open exchange with `pkt` and feeds it to the client.
fn respond(p: &mut Pair, r: &mut StdRng, cdec: &mut Http, pkt: &[u8]) -> Vec<Ev> {
    let mut wire = vec![0u8; pkt.len() + 256];
    let n = encode_response(200, true, pkt, &mut wire).unwrap();
    let bodies = feed_http(r, cdec, &wire[..n]);
    assert_eq!(bodies, vec![pkt.to_vec()]);
    let _ = p.c.handle_packet(p.now, &bodies[0]);
    drain(&mut p.c)
}

/// The DC's next packet, if it has one to put on an exchange now (a held long poll withholds it).
fn dc_packet(p: &mut Pair) -> Option<Vec<u8>> {
    let mut out = vec![0u8; RX + 64];
    p.s.poll_packet(p.now, &mut p.rng, &mut out)
        .unwrap()
        .map(|k| out[..k.len].to_vec())
}

fn http_run(seed: u64) {
    let mut p = Pair::new(seed);
    p.auto_answer = false;
    let mut r = StdRng::seed_from_u64(seed ^ 0x4854_5450);
    let mut sdec = Http::server(API_PATH, LIM);
    let mut cdec = Http::client(LIM);
    let (mut sent, mut ids) = (0u32, Vec::new());
    let mut events = Vec::new();
    // Exchanges the DC has received and not yet answered, oldest first (responses come back in order, as on one
    // pipelined keep-alive connection).
    let mut open: VecDeque<usize> = VecDeque::new();
    let mut exchanges = 0usize;
    // The exchange that carried each query, and the one whose response carried its result.
    let mut asked_on: BTreeMap<MsgId, usize> = BTreeMap::new();
    let mut answered_on: BTreeMap<MsgId, usize> = BTreeMap::new();
    let mut dc_requests: Vec<(MsgId, Vec<u8>)> = Vec::new();
    let mut held_polls = Vec::new();
    let mut polls = 0;
    let mut held_open = 0;
    for _ in 0..3000 {
        if results_done(&events, &ids) {
            break;
        }
        let fresh = send_some(&mut p, &mut sent, &mut ids);
        let mut out = packets(&mut p.c, p.now, &mut p.rng);
        if out.is_empty() && open.is_empty() {
            // Nothing to say and no exchange for the DC to answer on: park a long poll.
            p.c.http_wait(p.now, LONG_POLL).unwrap();
            polls += 1;
            out = packets(&mut p.c, p.now, &mut p.rng);
            assert_eq!(out.len(), 1, "http_wait leaves in one packet");
        }
        for (i, pkt) in out.iter().enumerate() {
            let mut wire = vec![0u8; pkt.len() + 256];
            let n = encode_request("149.154.167.51:80", API_PATH, pkt, &mut wire).unwrap();
            let bodies = feed_http(&mut r, &mut sdec, &wire[..n]);
            assert_eq!(bodies, vec![pkt.clone()]);
            assert!(sdec.keep_alive());
            if i == 0 {
                for id in &fresh {
                    asked_on.insert(*id, exchanges);
                }
            }
            let _ = p.deliver_s_keep_events(&bodies[0]);
            for ev in drain(&mut p.s) {
                if let Ev::Request(id, body) = ev {
                    dc_requests.push((id, body));
                }
            }
            if p.s.long_poll().is_some() {
                held_polls.push(p.now);
            }
            open.push_back(exchanges);
            exchanges += 1;
        }
        // The DC's backend answers late and out of order, so results miss the exchange that asked.
        let mut k = 0;
        while k < dc_requests.len() {
            if p.rng.random_bool(0.3) {
                let (id, body) = dc_requests.swap_remove(k);
                p.s.answer(p.now, id, &body).unwrap();
            } else {
                k += 1;
            }
        }
        // One packet per response, only on an open exchange: the DC writes a packet only when it has one to put it
        // on, and a held long poll keeps its exchange open until the DC has something (or max_wait passes).
        while let Some(&ex) = open.front() {
            let Some(pkt) = dc_packet(&mut p) else {
                held_open += 1;
                break;
            };
            open.pop_front();
            for ev in respond(&mut p, &mut r, &mut cdec, &pkt) {
                if let Ev::Result(id, _) = &ev {
                    answered_on.entry(*id).or_insert(ex);
                }
                events.push(ev);
            }
        }
        if let Some(lp) = p.s.long_poll() {
            // Never held past max_wait.
            assert!(p.now <= lp.since.saturating_add(lp.max_wait));
        }
        tick(&mut p, 100);
    }
    eprintln!("http seed {seed}: {exchanges} exchanges, {polls} long polls, {held_open} held open");
    assert_each_once(&events, &ids);
    assert!(!held_polls.is_empty(), "seed {seed}: the DC never held a long poll");
    // Requests and answers travelled on different HTTP exchanges.
    let moved = answered_on
        .iter()
        .filter(|(id, ex)| asked_on.get(id) != Some(ex))
        .count();
    eprintln!(
        "http seed {seed}: {moved}/{} results on another exchange",
        answered_on.len()
    );
    assert!(
        moved > 0,
        "seed {seed}: every result came back on its own request's exchange"
    );
    assert!(held_open > 0, "seed {seed}: no exchange was ever held open");
    assert!(polls > 0, "seed {seed}: the client never needed a long poll");
}

#[test]
fn http_session_long_polls_and_answers_on_other_exchanges() {
    for seed in SEEDS {
        http_run(seed);
    }
}

/// Client -> DC over one HTTP request; returns the DC's events.
fn request(p: &mut Pair, r: &mut StdRng, sdec: &mut Http) -> Vec<Ev> {
    let mut evs = Vec::new();
    let out = packets(&mut p.c, p.now, &mut p.rng);
    assert_eq!(out.len(), 1);
    for pkt in out {
        let mut wire = vec![0u8; pkt.len() + 256];
        let n = encode_request("149.154.167.51:80", API_PATH, &pkt, &mut wire).unwrap();
        let bodies = feed_http(r, sdec, &wire[..n]);
        p.deliver_s_keep_events(&bodies[0]).unwrap();
        evs.extend(drain(&mut p.s));
    }
    evs
}

#[test]
fn http_long_poll_pushes_an_update_and_idles_out_at_max_wait() {
    // A first query settles the salt and the session.
    let mut p = Pair::new(9);
    let q = p.query(&api_body(1, 1));
    assert_eq!(p.results_for(q).len(), 1);
    let mut r = StdRng::seed_from_u64(9);
    let mut sdec = Http::server(API_PATH, LIM);
    let mut cdec = Http::client(LIM);

    // A long poll: held while the DC has nothing, then it carries the update pushed 1.5 s later.
    p.c.http_wait(p.now, LONG_POLL).unwrap();
    assert!(request(&mut p, &mut r, &mut sdec).is_empty());
    assert!(p.s.long_poll().is_some());
    for _ in 0..15 {
        tick(&mut p, 100);
        assert!(dc_packet(&mut p).is_none(), "held while idle");
    }
    let upd = api_body(0xabc, 3);
    p.s.send(p.now, &upd, MsgKind::Notice).unwrap();
    let pkt = dc_packet(&mut p).expect("the update answers the held exchange at once");
    assert_eq!(respond(&mut p, &mut r, &mut cdec, &pkt), vec![Ev::Update(upd)]);
    assert!(p.s.long_poll().is_none());

    // An idle long poll is answered at max_wait, with no event for the client.
    p.c.http_wait(p.now, LONG_POLL).unwrap();
    let _ = request(&mut p, &mut r, &mut sdec);
    let since = p.s.long_poll().unwrap().since;
    let max_wait = core::time::Duration::from_millis(LONG_POLL.max_wait as u64);
    assert_eq!(p.s.poll_timeout(), Some(since.saturating_add(max_wait)));
    tick(&mut p, LONG_POLL.max_wait as u64 - 1);
    assert!(dc_packet(&mut p).is_none());
    tick(&mut p, 1);
    let pkt = dc_packet(&mut p).expect("answered at max_wait");
    let before = p.c.stats().packets_in;
    assert!(respond(&mut p, &mut r, &mut cdec, &pkt).is_empty());
    assert_eq!(
        p.c.stats().packets_in,
        before + 1,
        "the client accepts the empty answer"
    );
}

// ---------------------------------------------------------------- WebSocket

type S = Connection<8192, 8192, 16>;
type Conn<C> = Connection<8192, 8192, 16, C>;
const UNIX0: u64 = 1_700_000_000;

fn facade_cfg() -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            future_salts: false,
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig {
            framing: Framing::PaddedIntermediate,
            obfuscated: true,
            dc_id: Some(2),
        },
        unix_time_hint: Some(UnixTime(UNIX0)),
        salt: 0,
    }
}

/// Feeds a byte stream into a facade; the DC echoes every request. Returns the client-visible events.
fn into_session<C: Carriage + Default>(to: &mut Conn<C>, now: Instant, bytes: &[u8]) -> Vec<Ev> {
    into_session_with(to, now, bytes, &mut ReplayCache::<1>::new())
}

/// As [`into_session`], with the DC host's replay cache (shared by its connections).
fn into_session_with<C: Carriage + Default, const N: usize>(
    to: &mut Conn<C>,
    now: Instant,
    mut bytes: &[u8],
    cache: &mut ReplayCache<N>,
) -> Vec<Ev> {
    let mut evs = Vec::new();
    loop {
        let n = to.handle_input(now, bytes).unwrap();
        bytes = &bytes[n..];
        let mut reqs = Vec::new();
        while let Some(ev) = to.poll_event() {
            match &ev {
                Event::Request { msg_id, body } => reqs.push((*msg_id, body.to_vec())),
                // The DC host's replay check (of the init, and on fake-TLS first of the ClientHello).
                Event::ObfuscatedInit => {
                    to.check_obfuscated_init(cache).unwrap();
                    continue;
                }
                _ => {}
            }
            evs.push(session_util::own(ev));
        }
        for (id, b) in reqs {
            to.answer(now, id, &b).unwrap();
        }
        // A DC host with one connection per session: every session it is asked about starts here.
        if let Some(HostQuery::Session { .. }) = to.host_query() {
            to.resume_session(now, None).unwrap();
            continue;
        }
        if bytes.is_empty() {
            return evs;
        }
        assert!(n > 0, "facade stalled");
    }
}

fn out_of_session<C: Carriage + Default>(from: &mut Conn<C>, now: Instant, rng: &mut StdRng) -> Vec<u8> {
    let mut out = vec![0u8; from.min_transmit_len()];
    let mut v = Vec::new();
    while let Some(n) = from.poll_transmit(now, rng, &mut out).unwrap() {
        v.extend_from_slice(&out[..n]);
    }
    v
}

type Ws = WsCodec<16384>;

/// Frames `stream` as one binary message in random fragments, with pings between them.
fn ws_frames(r: &mut StdRng, ws: &mut Ws, stream: &[u8], pings: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut buf = vec![0u8; stream.len() + 64];
    let mut rest = stream;
    let mut first = true;
    loop {
        let take = r.random_range(1..=rest.len().max(1));
        let (part, tail) = rest.split_at(take.min(rest.len()));
        rest = tail;
        let op = if first { Opcode::Binary } else { Opcode::Continuation };
        first = false;
        let n = ws.encode_frame(op, rest.is_empty(), part, r, &mut buf).unwrap();
        wire.extend_from_slice(&buf[..n]);
        if r.random_bool(0.3) {
            let ping: Vec<u8> = (0..r.random_range(0..16)).map(|_| r.random()).collect();
            let n = ws.encode_frame(Opcode::Ping, true, &ping, r, &mut buf).unwrap();
            wire.extend_from_slice(&buf[..n]);
            pings.push(ping);
        }
        if rest.is_empty() {
            return wire;
        }
    }
}

/// What one direction of WebSocket traffic produced at the receiving end.
#[derive(Default)]
struct WsRx {
    /// Connection events of the receiving facade.
    evs: Vec<Ev>,
    /// Ping payloads received.
    pings: Vec<Vec<u8>>,
    /// Pong payloads received.
    pongs: Vec<Vec<u8>>,
    /// The codec's automatic replies (pongs) to send back.
    replies: Vec<u8>,
}

/// Decodes `wire` in random pieces, feeding each message into `to` and answering pings.
fn ws_deliver(r: &mut StdRng, ws: &mut Ws, to: &mut S, now: Instant, wire: &[u8]) -> WsRx {
    let mut rx = WsRx::default();
    let mut pos = 0;
    let mut out = vec![0u8; 256];
    while pos < wire.len() {
        let len = r.random_range(1..=wire.len().min(pos + 300) - pos);
        let mut piece = &wire[pos..pos + len];
        pos += len;
        loop {
            let n = ws.feed(piece).unwrap();
            piece = &piece[n..];
            let mut stream = None;
            let took = match ws.next_event() {
                Some(WsEvent::Message(m)) => {
                    stream = Some(m.to_vec());
                    true
                }
                Some(WsEvent::Ping(m)) => {
                    rx.pings.push(m.to_vec());
                    true
                }
                Some(WsEvent::Pong(m)) => {
                    rx.pongs.push(m.to_vec());
                    true
                }
                Some(WsEvent::Close { code }) => panic!("close {code:?}"),
                None => false,
            };
            if let Some(m) = stream {
                rx.evs.extend(into_session(to, now, &m));
            }
            let k = ws.poll_transmit(r, &mut out).unwrap();
            rx.replies.extend_from_slice(&out[..k]);
            if piece.is_empty() && !took {
                break;
            }
            assert!(n > 0 || took, "WS decoder stalled");
        }
    }
    rx
}

fn ws_run(seed: u64) {
    let mut r = StdRng::seed_from_u64(seed);
    let now = Instant::from_secs(50);
    // The upgrade.
    let ch = ClientHandshake::<1024>::new(1024, &mut r);
    let mut req = [0u8; 512];
    let n = ch
        .encode_request(
            "venus.web.telegram.org",
            WS_PATH,
            Some("https://web.telegram.org"),
            &mut req,
        )
        .unwrap();
    let mut sh = ServerHandshake::<1024>::new(WS_PATH, 1024);
    let (k, done) = sh.feed(&req[..n]).unwrap();
    assert!(done && k == n);
    let mut resp = [0u8; 512];
    let m = sh.encode_response(&mut resp).unwrap();
    let mut ch = ch;
    let (k, done) = ch.feed(&resp[..m]).unwrap();
    assert!(done && k == m);

    let mut c = S::client(facade_cfg(), session_util::key(seed), now, &mut r);
    let mut s = S::server(facade_cfg(), session_util::key(seed), now, &mut r);
    let mut wc = Ws::new(Role::Client, 16384);
    let mut wsv = Ws::new(Role::Server, 16384);
    let (mut ids, mut events) = (Vec::new(), Vec::new());
    let (mut sent_pings, mut seen_pings, mut pongs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut dc_pings, mut dc_pongs) = (Vec::new(), Vec::new());
    let mut pending_up: Vec<u8> = Vec::new();
    for _ in 0..500 {
        if ids.len() == QUERIES as usize && results_done(&events, &ids) {
            break;
        }
        if ids.len() < QUERIES as usize && r.random_bool(0.5) {
            for _ in 0..r.random_range(1..=3usize).min(QUERIES as usize - ids.len()) {
                let body = api_body(ids.len() as u32, r.random_range(0..40));
                ids.push((c.send(now, &body, MsgKind::Query).unwrap(), body));
            }
        }
        let up = out_of_session(&mut c, now, &mut r);
        let mut wire = std::mem::take(&mut pending_up);
        if !up.is_empty() {
            wire.extend(ws_frames(&mut r, &mut wc, &up, &mut sent_pings));
        }
        let at_dc = ws_deliver(&mut r, &mut wsv, &mut s, now, &wire);
        seen_pings.extend(at_dc.pings);
        dc_pongs.extend(at_dc.pongs);
        let down = out_of_session(&mut s, now, &mut r);
        let mut wire = at_dc.replies;
        if !down.is_empty() {
            wire.extend(ws_frames(&mut r, &mut wsv, &down, &mut dc_pings));
        }
        let at_client = ws_deliver(&mut r, &mut wc, &mut c, now, &wire);
        events.extend(at_client.evs);
        pongs.extend(at_client.pongs);
        // The DC's pings get answered by the client's pongs on the next round trip.
        assert_eq!(at_client.pings.is_empty(), at_client.replies.is_empty());
        pending_up = at_client.replies;
    }
    dc_pongs.extend(ws_deliver(&mut r, &mut wsv, &mut s, now, &pending_up).pongs);
    eprintln!(
        "ws seed {seed}: {} client pings, {} DC pings",
        sent_pings.len(),
        dc_pings.len()
    );
    assert_each_once(&events, &ids);
    assert!(!sent_pings.is_empty() && !dc_pings.is_empty());
    assert_eq!(dc_pongs, dc_pings, "every DC ping answered by the client's pong");
    assert_eq!(seen_pings, sent_pings);
    assert_eq!(pongs, sent_pings, "every ping answered by its pong");
}

#[test]
fn ws_session_obfuscated_in_fragmented_frames_with_pings() {
    for seed in SEEDS {
        ws_run(seed);
    }
}

// ---------------------------------------------------------------- fake-TLS

const NOW_UNIX: u32 = 1_764_000_000;

fn ee_secret() -> FakeTlsSecret {
    let mut raw = vec![0xee];
    raw.extend_from_slice(&[0x5a; 16]);
    raw.extend_from_slice(b"www.google.com");
    FakeTlsSecret::from_bytes(&raw).unwrap()
}

type Obf = ObfuscatedCodec<{ RX + 64 }>;

/// Encodes MTProto packets into the obfuscated stream, then into TLS records.
fn seal(p: &mut Pair, obf: &mut Obf, rec: &mut RecordEncoder, pkts: &[Vec<u8>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for pkt in pkts {
        let mut f = vec![0u8; obf.max_encoded_len(pkt.len()).unwrap()];
        let n = obf.encode(pkt, false, &mut p.rng, &mut f).unwrap();
        let mut out = vec![0u8; rec.encoded_len(n)];
        let k = rec.encode(&f[..n], &mut out).unwrap();
        wire.extend_from_slice(&out[..k]);
    }
    wire
}

/// Decodes records in random pieces into the obfuscated codec; returns the MTProto packets (padding stripped).
fn open_records(r: &mut StdRng, dec: &mut RecordDecoder, obf: &mut Obf, mut wire: &[u8]) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut plain = vec![0u8; 1024];
    while !wire.is_empty() {
        let len = r.random_range(1..=wire.len().min(900));
        let (n, produced) = dec.decode(&wire[..len], &mut plain).unwrap();
        wire = &wire[n..];
        let mut rest = &plain[..produced];
        loop {
            let k = obf.feed(rest).unwrap();
            rest = &rest[k..];
            let frame = obf.next_frame();
            let took = frame.is_some();
            match frame {
                Some(Frame::Packet { data, .. }) => {
                    got.push(strip_padding(Framing::PaddedIntermediate, data).unwrap().to_vec())
                }
                Some(other) => panic!("{other:?}"),
                None => {}
            }
            if rest.is_empty() && !took {
                break;
            }
            assert!(k > 0 || took, "obfuscated decoder stalled");
        }
    }
    got
}

fn faketls_run(seed: u64) {
    let secret = ee_secret();
    let mut p = Pair::new(seed);
    let mut r = StdRng::seed_from_u64(seed ^ 0x0054_4c53);
    // ClientHello in pieces, checked against the replay cache; the ServerHello back.
    let (hello, state) = client_hello(&secret, NOW_UNIX, &mut r).unwrap();
    let cfg = ServerConfig::default();
    let mut cache = ReplayCache::<64>::new();
    let mut reader = ClientHelloReader::<2048>::new(&cfg);
    let mut accepted = None;
    let mut rest = &hello[..];
    while accepted.is_none() {
        let len = r.random_range(1..=rest.len().min(100));
        let (n, acc) = reader.feed(&secret, &cfg, NOW_UNIX, &mut cache, &rest[..len]).unwrap();
        rest = &rest[n..];
        accepted = acc;
    }
    assert!(rest.is_empty());
    let mut sh = vec![0u8; MAX_SERVER_HELLO_LEN];
    let n = encode_server_hello(&secret, &accepted.unwrap(), &mut r, &mut sh).unwrap();
    let mut shr = ServerHelloReader::<8192>::new(state);
    let mut rest = &sh[..n];
    let mut verified = false;
    while !verified {
        let len = r.random_range(1..=rest.len().min(300));
        let (k, ok) = shr.feed(&secret, &rest[..len]).unwrap();
        rest = &rest[k..];
        verified = ok;
    }
    assert!(rest.is_empty());

    // The obfuscated stream, keyed by the secret, inside application-data records.
    let (mut oc, init) = Obf::client(
        Framing::PaddedIntermediate,
        Some(2),
        Some(secret.proxy_secret()),
        RX + 64,
        &mut r,
    )
    .unwrap();
    let mut os = Obf::server(Some(secret.proxy_secret()), RX + 64);
    let mut cenc = RecordEncoder::client();
    let mut senc = RecordEncoder::server().with_max_payload(r.random_range(64..2000));
    let mut cdec = RecordDecoder::new(16 * 1024 + 256);
    let mut sdec = RecordDecoder::new(16 * 1024 + 256);
    let mut buf = vec![0u8; 256];
    let k = cenc.encode(&init, &mut buf).unwrap();
    let mut first = buf[..k].to_vec();

    let (mut sent, mut ids) = (0u32, Vec::new());
    let mut events = Vec::new();
    for _ in 0..500 {
        if results_done(&events, &ids) {
            break;
        }
        send_some(&mut p, &mut sent, &mut ids);
        let up = packets(&mut p.c, p.now, &mut p.rng);
        let mut wire = std::mem::take(&mut first);
        wire.extend(seal(&mut p, &mut oc, &mut cenc, &up));
        for pkt in open_records(&mut r, &mut sdec, &mut os, &wire) {
            let _ = p.deliver_s(&pkt);
        }
        let down = packets(&mut p.s, p.now, &mut p.rng);
        let wire = seal(&mut p, &mut os, &mut senc, &down);
        for pkt in open_records(&mut r, &mut cdec, &mut oc, &wire) {
            let _ = p.c.handle_packet(p.now, &pkt);
            events.extend(drain(&mut p.c));
        }
        tick(&mut p, 100);
    }
    assert_eq!(os.dc_id(), Some(2));
    assert_each_once(&events, &ids);
}

#[test]
fn faketls_ee_session_through_records() {
    for seed in SEEDS {
        faketls_run(seed);
    }
}

/// The facade passes `http_wait` through: the DC `Connection` holds the long poll, then answers at `max_wait`.
#[test]
fn facade_http_wait_long_poll() {
    let mut r = StdRng::seed_from_u64(77);
    let mut now = Instant::from_secs(1000);
    let mut c = S::client(facade_cfg(), session_util::key(77), now, &mut r);
    let mut s = S::server(facade_cfg(), session_util::key(77), now, &mut r);
    // Settle the salt with one echoed query.
    let q = c.send(now, &api_body(1, 1), MsgKind::Query).unwrap();
    let mut done = false;
    for _ in 0..4 {
        let up = out_of_session(&mut c, now, &mut r);
        into_session(&mut s, now, &up);
        let down = out_of_session(&mut s, now, &mut r);
        done |= into_session(&mut c, now, &down)
            .iter()
            .any(|e| matches!(e, Ev::Result(id, _) if *id == q));
    }
    assert!(done);
    assert!(s.long_poll().is_none());
    c.http_wait(now, LONG_POLL).unwrap();
    let up = out_of_session(&mut c, now, &mut r);
    into_session(&mut s, now, &up);
    let lp = s.long_poll().expect("held");
    assert_eq!(
        s.poll_timeout(),
        Some(lp.since.saturating_add(core::time::Duration::from_secs(2)))
    );
    now = now.saturating_add(core::time::Duration::from_millis(1999));
    s.handle_timeout(now).unwrap();
    assert!(out_of_session(&mut s, now, &mut r).is_empty());
    now = now.saturating_add(core::time::Duration::from_millis(1));
    s.handle_timeout(now).unwrap();
    let down = out_of_session(&mut s, now, &mut r);
    assert!(!down.is_empty(), "answered at max_wait");
    assert!(into_session(&mut c, now, &down).is_empty());
    assert!(s.long_poll().is_none());
}

// ---------------------------------------------------------------- carriages as a layer of the connection type

type L = Conn<Layer>;

fn http_cfg() -> ConnectionConfig {
    ConnectionConfig {
        transport: TransportConfig::INTERMEDIATE,
        ..facade_cfg()
    }
}

/// A client and a DC connection over HTTP, both through `Connection::set_carriage`, with one query echoed.
fn http_pair(r: &mut StdRng, now: Instant, hold: core::time::Duration) -> (Box<L>, Box<L>) {
    let mut c = Box::new(L::client(http_cfg(), session_util::key(5), now, r));
    let mut s = Box::new(L::server(http_cfg(), session_util::key(5), now, r));
    c.set_carriage(Layer::Http(HttpCarriage::client("dc.test", LIM)))
        .unwrap();
    s.set_carriage(Layer::Http(HttpCarriage::server(LIM).with_hold(hold)))
        .unwrap();
    let q = c.send(now, &api_body(1, 1), MsgKind::Query).unwrap();
    let mut done = false;
    for _ in 0..4 {
        let up = out_of_session(&mut *c, now, r);
        if !up.is_empty() {
            assert!(
                up.starts_with(b"POST /api HTTP/1.1\r\nHost: dc.test\r\n"),
                "a request on the wire"
            );
        }
        into_session(&mut *s, now, &up);
        let down = out_of_session(&mut *s, now, r);
        if !down.is_empty() {
            assert!(down.starts_with(b"HTTP/1.1 200 OK\r\n"), "a response on the wire");
        }
        done |= into_session(&mut *c, now, &down)
            .iter()
            .any(|e| matches!(e, Ev::Result(id, _) if *id == q));
    }
    assert!(done, "the query is answered over HTTP");
    (c, s)
}

/// HTTP through the connection type: raw socket bytes in and out of both ends, one packet per body landing in
/// the receive buffer; the DC writes only on an open exchange, one response per request.
#[test]
fn layer_http_session_through_connection() {
    let mut r = StdRng::seed_from_u64(11);
    let now = Instant::from_secs(1000);
    let (mut c, mut s) = http_pair(&mut r, now, core::time::Duration::from_secs(25));
    // Queries in one burst: each packet is its own request; the DC answers each exchange once.
    let ids: Vec<MsgId> = (0..5)
        .map(|i| c.send(now, &api_body(10 + i, 40), MsgKind::Query).unwrap())
        .collect();
    let mut got = Vec::new();
    for _ in 0..10 {
        let up = out_of_session(&mut *c, now, &mut r);
        into_session(&mut *s, now, &up);
        let down = out_of_session(&mut *s, now, &mut r);
        got.extend(into_session(&mut *c, now, &down));
    }
    for id in ids {
        assert!(
            got.iter().any(|e| matches!(e, Ev::Result(r, _) if *r == id)),
            "{id:?} answered"
        );
    }
    assert!(s.carriage().poll_timeout().is_none() || !matches!(s.carriage(), Layer::Tcp));
    // No exchange open: whatever the DC engine has waits for the next request.
    let Layer::Http(h) = s.carriage() else { unreachable!() };
    assert_eq!(h.open_exchanges(), 0);
    s.send(now, &api_body(99, 8), MsgKind::Notice).unwrap();
    assert!(out_of_session(&mut *s, now, &mut r).is_empty(), "no exchange to answer");
}

/// The DC role honours `http_wait`: the exchange carrying it is held (not answered by the carriage's own hold)
/// until the engine's long poll ends: at `max_wait` with nothing to send, at once when something is queued.
#[test]
fn layer_http_dc_holds_http_wait_until_max_wait_or_data() {
    let mut r = StdRng::seed_from_u64(12);
    let mut now = Instant::from_secs(1000);
    // The carriage's own hold (for exchanges without `http_wait`) is shorter than the long poll: it must not cut it.
    let (mut c, mut s) = http_pair(&mut r, now, core::time::Duration::from_millis(500));
    let lp = HttpWait {
        max_delay: 0,
        wait_after: 0,
        max_wait: 2_000,
    };
    c.http_wait(now, lp).unwrap();
    let up = out_of_session(&mut *c, now, &mut r);
    into_session(&mut *s, now, &up);
    assert!(s.long_poll().is_some(), "held");
    let deadline = now.saturating_add(core::time::Duration::from_secs(2));
    assert_eq!(s.poll_timeout().map(|t| t <= deadline), Some(true));
    for ms in [1, 499, 500, 1_000, 1_999] {
        let t = now.saturating_add(core::time::Duration::from_millis(ms));
        s.handle_timeout(t).unwrap();
        assert!(out_of_session(&mut *s, t, &mut r).is_empty(), "still held at {ms} ms");
    }
    now = deadline;
    s.handle_timeout(now).unwrap();
    let down = out_of_session(&mut *s, now, &mut r);
    assert!(down.starts_with(b"HTTP/1.1 200 OK\r\n"), "answered at max_wait");
    assert!(into_session(&mut *c, now, &down).is_empty());
    assert!(s.long_poll().is_none());
    let Layer::Http(h) = s.carriage() else { unreachable!() };
    assert_eq!(h.open_exchanges(), 0);

    // Again, and the DC has something to push after 300 ms: the held exchange carries it then.
    c.http_wait(now, lp).unwrap();
    let up = out_of_session(&mut *c, now, &mut r);
    into_session(&mut *s, now, &up);
    assert!(s.long_poll().is_some());
    let t = now.saturating_add(core::time::Duration::from_millis(300));
    s.handle_timeout(t).unwrap();
    assert!(out_of_session(&mut *s, t, &mut r).is_empty());
    s.send(t, &api_body(77, 16), MsgKind::Notice).unwrap();
    let down = out_of_session(&mut *s, t, &mut r);
    assert!(!down.is_empty(), "answered as soon as something is queued");
    let evs = into_session(&mut *c, t, &down);
    assert!(
        evs.iter().any(|e| matches!(e, Ev::Update(b) if *b == api_body(77, 16))),
        "{evs:?}"
    );
}

/// An exchange the engine leaves unanswered (no `http_wait`, an empty poll) gets an empty 200 after the hold.
#[test]
fn layer_http_dc_answers_an_idle_exchange_empty_after_its_hold() {
    let mut r = StdRng::seed_from_u64(13);
    let now = Instant::from_secs(1000);
    let hold = core::time::Duration::from_secs(3);
    let mut s = Box::new(L::server(http_cfg(), session_util::key(5), now, &mut r));
    s.set_carriage(Layer::Http(HttpCarriage::server(LIM).with_hold(hold)))
        .unwrap();
    let mut wire = vec![0u8; 256];
    let n = encode_request("dc", API_PATH, &[], &mut wire).unwrap();
    assert_eq!(s.handle_input(now, &wire[..n]).unwrap(), n);
    assert_eq!(s.poll_timeout(), Some(now.saturating_add(hold)));
    assert!(out_of_session(&mut *s, now, &mut r).is_empty());
    let t = now.saturating_add(hold);
    let down = out_of_session(&mut *s, t, &mut r);
    assert!(down.starts_with(b"HTTP/1.1 200 OK\r\n") && down.ends_with(b"Content-Length: 0\r\n\r\n"));
    // `Connection: close`: answered, then the connection is finished and reads nothing more.
    let req = b"POST /api HTTP/1.1\r\nHost: dc\r\nConnection: close\r\nContent-Length: 0\r\n\r\nGARBAGE";
    assert_eq!(s.handle_input(t, req).unwrap(), req.len() - 7);
    assert!(!s.is_finished());
    let down = out_of_session(&mut *s, t.saturating_add(hold), &mut r);
    assert!(down.starts_with(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"));
    assert!(s.is_finished());
}

fn tls_cfg() -> ConnectionConfig {
    facade_cfg()
}

/// `ee` through the connection type: both ends take raw socket bytes; the client writes the Chrome-shaped
/// ClientHello, the DC checks it (digest, time, SNI) and asks its host's replay cache for its random, then for
/// the init inside; the session runs in TLS records.
#[test]
fn layer_faketls_ee_through_connection() {
    let mut r = StdRng::seed_from_u64(21);
    let now = Instant::from_secs(1000);
    let unix = UnixTime(UNIX0);
    let mut c = Box::new(L::client(tls_cfg(), session_util::key(6), now, &mut r));
    let mut s = Box::new(L::server(tls_cfg(), session_util::key(6), now, &mut r));
    c.set_carriage(Layer::FakeTls(FakeTlsCarriage::client(ee_secret(), unix, now)))
        .unwrap();
    s.set_carriage(Layer::FakeTls(FakeTlsCarriage::server(
        ee_secret(),
        ServerConfig::default(),
        unix,
        now,
    )))
    .unwrap();
    let mut cache = ReplayCache::<16>::new();
    let q = c.send(now, &api_body(3, 300), MsgKind::Query).unwrap();
    let first = out_of_session(&mut *c, now, &mut r);
    assert_eq!(
        first.len(),
        517,
        "the ClientHello alone, nothing before the server's answer"
    );
    assert_eq!(&first[..3], &[0x16, 0x03, 0x01]);
    into_session_with(&mut *s, now, &first, &mut cache);
    assert_eq!(cache.len(), 1, "the hello's random went through the host's cache");
    let mut done = false;
    let mut wire_up = first.clone();
    for _ in 0..5 {
        let down = out_of_session(&mut *s, now, &mut r);
        if !down.is_empty() {
            assert!(
                down[0] == 0x16 || down[0] == 0x17 || down[0] == 0x14,
                "TLS records down"
            );
        }
        done |= into_session(&mut *c, now, &down)
            .iter()
            .any(|e| matches!(e, Ev::Result(id, _) if *id == q));
        let up = out_of_session(&mut *c, now, &mut r);
        wire_up.extend_from_slice(&up);
        into_session_with(&mut *s, now, &up, &mut cache);
    }
    assert!(done, "the query is answered inside fake-TLS");
    assert_eq!(cache.len(), 2, "and the init inside it too");
    // A censor replaying the recorded connection gets nothing: the hello's random is known.
    let mut s2 = Box::new(L::server(tls_cfg(), session_util::key(6), now, &mut r));
    s2.set_carriage(Layer::FakeTls(FakeTlsCarriage::server(
        ee_secret(),
        ServerConfig::default(),
        unix,
        now,
    )))
    .unwrap();
    s2.handle_input(now, &wire_up).unwrap();
    assert_eq!(s2.host_query(), Some(HostQuery::ObfuscatedInit));
    assert!(s2.check_obfuscated_init(&mut cache).is_err());
    assert!(
        out_of_session(&mut *s2, now, &mut r).is_empty(),
        "no ServerHello for a replayed hello"
    );
    // The wrong secret: the hello's digest fails, the connection ends without an answer.
    let mut s3 = Box::new(L::server(tls_cfg(), session_util::key(6), now, &mut r));
    let other = FakeTlsSecret::new(&[0x11; 16], b"www.google.com").unwrap();
    s3.set_carriage(Layer::FakeTls(FakeTlsCarriage::server(
        other,
        ServerConfig::default(),
        unix,
        now,
    )))
    .unwrap();
    assert!(s3.handle_input(now, &wire_up).is_err());
    assert!(out_of_session(&mut *s3, now, &mut r).is_empty());
}

/// The DC role's HTTP layer under a hostile client's framing: three pipelined requests delivered one byte per read
/// are each answered once, in order; a chunked body (one-byte chunks) lands as the packet it frames; a
/// `Content-Length` beyond the receive buffer, a head bomb and a header flood are refused with typed errors, and the
/// refused connection stays refused.
#[test]
fn layer_http_dc_pipelined_bytewise_chunked_and_oversized() {
    let mut r = StdRng::seed_from_u64(14);
    let now = Instant::from_secs(1000);
    let (mut c, mut s) = http_pair(&mut r, now, core::time::Duration::from_secs(25));
    // Three requests, each written before any answer is read.
    let mut ids = Vec::new();
    let mut up = Vec::new();
    for i in 0..3 {
        ids.push(c.send(now, &api_body(20 + i, 30), MsgKind::Query).unwrap());
        up.extend(out_of_session(&mut *c, now, &mut r));
    }
    assert_eq!(up.windows(9).filter(|w| *w == b"POST /api").count(), 3, "pipelined");
    let mut down = Vec::new();
    for b in up.chunks(1) {
        into_session(&mut *s, now, b);
        down.extend(out_of_session(&mut *s, now, &mut r));
    }
    let Layer::Http(h) = s.carriage() else { unreachable!() };
    assert_eq!(h.open_exchanges(), 0, "each exchange answered");
    assert_eq!(down.windows(15).filter(|w| *w == b"HTTP/1.1 200 OK").count(), 3);
    let got = into_session(&mut *c, now, &down);
    for id in &ids {
        assert_eq!(
            got.iter().filter(|e| matches!(e, Ev::Result(r, _) if r == id)).count(),
            1,
            "{got:?}"
        );
    }

    // A chunked request, one byte per chunk.
    let q = c.send(now, &api_body(40, 20), MsgKind::Query).unwrap();
    let post = out_of_session(&mut *c, now, &mut r);
    let body_at = post.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut chunked = b"POST /api HTTP/1.1\r\nHost: dc\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for b in &post[body_at..] {
        chunked.extend_from_slice(b"1\r\n");
        chunked.push(*b);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    into_session(&mut *s, now, &chunked);
    let down = out_of_session(&mut *s, now, &mut r);
    let got = into_session(&mut *c, now, &down);
    assert!(got.iter().any(|e| matches!(e, Ev::Result(r, _) if *r == q)), "{got:?}");

    // Refused: a length beyond what the connection can hold, a head without end, too many headers.
    let mut head_bomb = b"POST /api HTTP/1.1\r\nX: ".to_vec();
    head_bomb.resize(8192, b'a');
    let mut many = b"POST /api HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    many.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    for bad in [
        b"POST /api HTTP/1.1\r\nHost: dc\r\nContent-Length: 99999999\r\n\r\n".to_vec(),
        head_bomb,
        many,
    ] {
        let mut s = Box::new(L::server(http_cfg(), session_util::key(5), now, &mut r));
        s.set_carriage(Layer::Http(HttpCarriage::server(LIM))).unwrap();
        let mut fed = 0;
        let err = loop {
            match s.handle_input(now, &bad[fed..]) {
                Ok(0) => panic!("stalled at {fed}"),
                Ok(n) => fed += n,
                Err(e) => break e,
            }
            assert!(fed < bad.len(), "accepted");
        };
        assert_eq!(s.handle_input(now, b"POST").unwrap_err(), err, "stays refused");
    }
}

/// Re-cuts a stream of whole TLS records: every application-data byte in a record of its own, each preceded by an
/// empty application-data record and a ChangeCipherSpec; other records as they were.
fn recut_records(mut wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !wire.is_empty() {
        let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
        let (rec, rest) = wire.split_at(5 + len);
        if rec[0] == 0x17 {
            for b in &rec[5..] {
                out.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x00]);
                out.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
                out.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x01, *b]);
            }
        } else {
            out.extend_from_slice(rec);
        }
        wire = rest;
    }
    out
}

/// The DC role's fake-TLS layer under a client (or a middlebox) that cuts records its own way: after the hellos,
/// every stream byte in a record of its own, each behind an empty record and a ChangeCipherSpec, the whole
/// delivered one byte per read: the session runs as on whole records. A record above 2^14 + 256 bytes, and a
/// record of another type, end the connection with a typed error.
#[test]
fn layer_faketls_dc_takes_empty_records_ccs_and_one_byte_records() {
    let mut r = StdRng::seed_from_u64(22);
    let now = Instant::from_secs(1000);
    let unix = UnixTime(UNIX0);
    let pair = |r: &mut StdRng| {
        let mut c = Box::new(L::client(tls_cfg(), session_util::key(6), now, r));
        let mut s = Box::new(L::server(tls_cfg(), session_util::key(6), now, r));
        c.set_carriage(Layer::FakeTls(FakeTlsCarriage::client(ee_secret(), unix, now)))
            .unwrap();
        s.set_carriage(Layer::FakeTls(FakeTlsCarriage::server(
            ee_secret(),
            ServerConfig::default(),
            unix,
            now,
        )))
        .unwrap();
        (c, s)
    };
    let (mut c, mut s) = pair(&mut r);
    let mut cache = ReplayCache::<16>::new();
    let q = c.send(now, &api_body(3, 300), MsgKind::Query).unwrap();
    let hello = out_of_session(&mut *c, now, &mut r);
    into_session_with(&mut *s, now, &hello, &mut cache);
    let mut done = false;
    for _ in 0..5 {
        let down = out_of_session(&mut *s, now, &mut r);
        done |= into_session(&mut *c, now, &down)
            .iter()
            .any(|e| matches!(e, Ev::Result(id, _) if *id == q));
        let up = recut_records(&out_of_session(&mut *c, now, &mut r));
        for b in up.chunks(1) {
            into_session_with(&mut *s, now, b, &mut cache);
        }
    }
    assert!(done, "the query is answered through re-cut records");

    // Past the hellos, a record too large and a handshake record: typed errors, and the connection stays failed.
    for bad in [
        [0x17, 0x03, 0x03, 0x41, 0x01], // 16,641 bytes: above 2^14 + 256
        [0x16, 0x03, 0x03, 0x00, 0x04],
    ] {
        let (mut c, mut s) = pair(&mut r);
        let mut cache = ReplayCache::<16>::new();
        c.send(now, &api_body(3, 10), MsgKind::Query).unwrap();
        let hello = out_of_session(&mut *c, now, &mut r);
        into_session_with(&mut *s, now, &hello, &mut cache);
        let down = out_of_session(&mut *s, now, &mut r);
        into_session(&mut *c, now, &down);
        let up = out_of_session(&mut *c, now, &mut r);
        into_session_with(&mut *s, now, &up, &mut cache);
        let err = s.handle_input(now, &bad).unwrap_err();
        assert_eq!(s.handle_input(now, &[0x17]).unwrap_err(), err, "stays failed");
    }
}

/// Splits a client's WebSocket output (after its upgrade request) into the stream its binary frames carry.
fn ws_stream_of(wire: &[u8]) -> Vec<u8> {
    let mut dec = WsCodec::<65536>::new(Role::Server, 65536);
    let mut stream = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let (n, ev) = dec.decode(rest).unwrap();
        rest = &rest[n..];
        match ev {
            Some(WsEvent::Message(m)) => stream.extend_from_slice(m),
            None => assert!(n > 0),
            Some(e) => panic!("unexpected {e:?}"),
        }
    }
    stream
}

/// WebSocket through the connection type, both ends: the client's upgrade, the DC's 101, then the session in
/// binary frames. The client speaks padded intermediate while the DC was built for abridged (it cannot know the
/// framing before the upgrade): the DC takes the one the init names. Up the wire, the client's stream is
/// re-framed in random fragments with pings between them, which the DC answers with pongs; a close is echoed
/// once and ends the connection.
#[test]
fn layer_ws_through_connection() {
    for seed in [1u64, 9, 77] {
        let mut r = StdRng::seed_from_u64(seed);
        let now = Instant::from_secs(1000);
        let mut c = Box::new(L::client(tls_cfg(), session_util::key(7), now, &mut r));
        let mut dc_cfg = tls_cfg();
        dc_cfg.transport.framing = Framing::Abridged;
        let mut s = Box::new(L::server(dc_cfg, session_util::key(7), now, &mut r));
        c.set_carriage(Layer::Ws(WsCarriage::client("dc.example", WS_PATH, 1 << 20)))
            .unwrap();
        s.set_carriage(Layer::Ws(WsCarriage::server(WS_PATH, 1 << 20))).unwrap();
        let mut cache = ReplayCache::<16>::new();
        let q = c.send(now, &api_body(4, 400), MsgKind::Query).unwrap();
        let first = out_of_session(&mut *c, now, &mut r);
        assert!(first.starts_with(b"GET /apiws HTTP/1.1\r\n") && first.ends_with(b"\r\n\r\n"));
        assert!(
            !first.windows(4).any(|w| w == [0x82, 0xfe, 0, 0]) && first.len() < 300,
            "the request alone, nothing before the 101"
        );
        into_session_with(&mut *s, now, &first, &mut cache);
        let up_frames = |r: &mut StdRng, up: &[u8], pings: &mut Vec<Vec<u8>>| {
            let stream = ws_stream_of(up);
            if stream.is_empty() {
                return Vec::new();
            }
            let mut ws = Ws::new(Role::Client, 16384);
            ws_frames(r, &mut ws, &stream, pings)
        };
        let mut done = false;
        let mut pings = Vec::new();
        let mut pongs = 0;
        for _ in 0..6 {
            let down = out_of_session(&mut *s, now, &mut r);
            // Pongs (0x8a, unmasked) come back for the pings.
            pongs += down.windows(1).filter(|w| w[0] == 0x8a).count().min(1);
            done |= into_session(&mut *c, now, &down)
                .iter()
                .any(|e| matches!(e, Ev::Result(id, _) if *id == q));
            let up = out_of_session(&mut *c, now, &mut r);
            let up = up_frames(&mut r, &up, &mut pings);
            into_session_with(&mut *s, now, &up, &mut cache);
        }
        assert!(done, "the query is answered inside WebSocket");
        assert_eq!(cache.len(), 1, "the init inside went through the host's replay cache");
        assert!(pings.is_empty() || pongs > 0, "pings are answered");
        // The client closes (1000, masked): the DC echoes it once and is finished.
        let mut ws = Ws::new(Role::Client, 16384);
        let mut buf = [0u8; 64];
        let n = ws.encode_close(1000, &mut r, &mut buf).unwrap();
        into_session_with(&mut *s, now, &buf[..n], &mut cache);
        let echo = out_of_session(&mut *s, now, &mut r);
        assert_eq!(echo, [0x88, 0x02, 0x03, 0xe8], "the close echoed, unmasked");
        assert!(s.is_finished());
        assert!(
            out_of_session(&mut *s, now, &mut r).is_empty(),
            "nothing after the close"
        );
    }
}

/// A DC WebSocket connection refuses what RFC 6455 forbids, with a typed error and nothing written: an unmasked
/// client frame, a text frame, a message above its limit (from the header, before its payload).
#[test]
fn layer_ws_dc_refuses_bad_frames() {
    let upgrade = b"GET /apiws HTTP/1.1\r\nHost: dc\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n";
    let now = Instant::from_secs(1000);
    let cases: [(&[u8], mtproto_sansio::carriage::ws::WsError); 3] = [
        (&[0x82, 0x01, 0xef], mtproto_sansio::carriage::ws::WsError::Unmasked),
        (
            &[0x81, 0x81, 1, 2, 3, 4, 0],
            mtproto_sansio::carriage::ws::WsError::TextFrame,
        ),
        (
            &[0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 1, 1, 2, 3, 4],
            mtproto_sansio::carriage::ws::WsError::MessageTooLarge,
        ),
    ];
    for (frame, want) in cases {
        let mut r = StdRng::seed_from_u64(5);
        let mut s = Box::new(L::server(tls_cfg(), session_util::key(7), now, &mut r));
        s.set_carriage(Layer::Ws(WsCarriage::server(WS_PATH, 1 << 20))).unwrap();
        assert_eq!(s.handle_input(now, upgrade).unwrap(), upgrade.len());
        let ok = out_of_session(&mut *s, now, &mut r);
        assert!(ok.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(
            String::from_utf8_lossy(&ok).contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "RFC 6455's example key"
        );
        let e = s.handle_input(now, frame).unwrap_err();
        assert_eq!(
            e,
            mtproto_sansio::session::Error::Carriage(mtproto_sansio::carriage::layer::CarriageError::Ws(want))
        );
        assert!(out_of_session(&mut *s, now, &mut r).is_empty());
    }
    // A client (not a browser) without the `binary` subprotocol: refused at the upgrade, nothing answered.
    let mut r = StdRng::seed_from_u64(6);
    let mut s = Box::new(L::server(tls_cfg(), session_util::key(7), now, &mut r));
    s.set_carriage(Layer::Ws(WsCarriage::server(WS_PATH, 1 << 20))).unwrap();
    let plain = String::from_utf8_lossy(upgrade).replace("Sec-WebSocket-Protocol: binary\r\n", "");
    assert!(s.handle_input(now, plain.as_bytes()).is_err());
    assert!(out_of_session(&mut *s, now, &mut r).is_empty());
    // And the transport inside must be obfuscated, as Telegram Web's is.
    let mut plain_cfg = tls_cfg();
    plain_cfg.transport.obfuscated = false;
    let mut s = Box::new(L::server(plain_cfg, session_util::key(7), now, &mut r));
    assert!(s.set_carriage(Layer::Ws(WsCarriage::server(WS_PATH, 1 << 20))).is_err());
}
