//! Every message of a container the DC accepted gets its answer, exactly once, however small the DC's outbound tables
//! (docs/CHECKLIST.md item 48: a container is accepted or rejected as a whole; item 54: a full queue is backpressure,
//! never a silent drop). The DC here has test_dc's 64 message slots; the client keeps up to 512 queries in flight and,
//! like Telethon, never resends on a timer (the clock does not move while the pair runs), so a message the DC accepts
//! and leaves unanswered stays unanswered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{HashMap, VecDeque};

use core::time::Duration;
use mtproto_sansio::crypto::auth_key::AuthKey;

use mtproto_sansio::session::{
    Clock, Dropped, Event, Limits, MsgId, MsgKind, ResendPolicy, SendError, Session, SessionConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{self, TlRead, TlWrite};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RX: usize = 65_536;
const TX: usize = 65_536;
/// test_dc's `MSGS`.
type Dc = Session<RX, TX, 64>;
type Client = Session<RX, TX, 512>;

const UNIX0: u64 = 1_700_000_000;

fn key(seed: u64) -> AuthKey {
    let mut k = [0u8; 256];
    StdRng::seed_from_u64(seed ^ 0x0061_6e73).fill_bytes(&mut k);
    AuthKey::from_bytes(k)
}

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

/// A TL-shaped API query (an unknown constructor and a tag) the DC's host echoes back.
fn query(tag: u32) -> Vec<u8> {
    let mut v = 0x0bad_f00du32.to_le_bytes().to_vec();
    v.extend_from_slice(&tag.to_le_bytes());
    v
}

/// A client (its answers, owned) and a DC whose host echoes every request, keeping answers the DC refuses with
/// `QueueFull` and retrying them (as test_dc does).
struct Pair {
    c: Box<Client>,
    s: Box<Dc>,
    now: Instant,
    rng: StdRng,
    /// Client: every result or error, by the query it answers.
    answers: HashMap<MsgId, Vec<Vec<u8>>>,
    errors: HashMap<MsgId, Vec<(i32, Vec<u8>)>>,
    requests: usize,
    backlog: VecDeque<(MsgId, Vec<u8>)>,
    /// Packets the receiver did not take yet (the facade leaves such bytes unconsumed).
    to_dc: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
}

impl Pair {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let now = Instant::from_secs(1000);
        let clock = || Clock::from_unix_hint(now, UnixTime(UNIX0));
        let ccfg = SessionConfig {
            ping_interval: None,
            future_salts: false,
            state_check_after: None,
            // Like Telethon: nothing is resent on a timer while the pair runs.
            resend: ResendPolicy {
                initial: Duration::from_secs(3600),
                max: Duration::from_secs(3600),
                max_attempts: 1,
            },
            ..SessionConfig::DEFAULT
        };
        let mut s = Box::new(Dc::server(SessionConfig::DEFAULT, key(seed), clock(), now, &mut rng));
        let c = Box::new(Client::client(
            ccfg,
            key(seed),
            s.current_salt(),
            clock(),
            now,
            &mut rng,
        ));
        // One engine per key here: the client's session may start (no other engine can hold it).
        s.approve_session(c.session_id());
        Pair {
            c,
            s,
            now,
            rng,
            answers: HashMap::new(),
            errors: HashMap::new(),
            requests: 0,
            backlog: VecDeque::new(),
            to_dc: VecDeque::new(),
            to_client: VecDeque::new(),
        }
    }

    /// The DC's host: takes every event, answers requests, retries refused answers.
    fn dc_host(&mut self) {
        while let Some(ev) = self.s.poll_event() {
            if let Event::Request { msg_id, body } = ev {
                self.requests += 1;
                self.backlog.push_back((msg_id, body.to_vec()));
            }
        }
        while let Some((req, body)) = self.backlog.front() {
            match self.s.answer(self.now, *req, body) {
                Ok(_) => {
                    self.backlog.pop_front();
                }
                Err(SendError::QueueFull) => break,
                Err(e) => panic!("answer: {e}"),
            }
        }
    }

    fn client_events(&mut self) {
        while let Some(ev) = self.c.poll_event() {
            match ev {
                Event::RpcResult { req, body } => self.answers.entry(req).or_default().push(body.to_vec()),
                Event::RpcError { req, code, message, .. } => {
                    self.errors.entry(req).or_default().push((code, message.to_vec()))
                }
                Event::Failed { req, reason } => panic!("{req:?} failed: {reason:?}"),
                _ => {}
            }
        }
    }

    /// One round each way; whether anything moved.
    fn round(&mut self) -> bool {
        let mut moved = false;
        let mut out = vec![0u8; RX + 64];
        while let Some(p) = self.c.poll_packet(self.now, &mut self.rng, &mut out).unwrap() {
            self.to_dc.push_back(out[..p.len].to_vec());
        }
        while let Some(pk) = self.to_dc.front() {
            match self.s.handle_packet(self.now, pk) {
                Err(Dropped::Backpressure) => {
                    // Not taken: the host drains the DC and offers it again.
                    self.dc_host();
                    let mut any = false;
                    while let Some(p) = self.s.poll_packet(self.now, &mut self.rng, &mut out).unwrap() {
                        self.to_client.push_back(out[..p.len].to_vec());
                        any = true;
                    }
                    if !any && self.s.must_drain() {
                        break;
                    }
                    continue;
                }
                r => {
                    r.unwrap();
                    self.to_dc.pop_front();
                    moved = true;
                }
            }
            self.dc_host();
        }
        self.dc_host();
        while let Some(p) = self.s.poll_packet(self.now, &mut self.rng, &mut out).unwrap() {
            self.to_client.push_back(out[..p.len].to_vec());
            self.dc_host();
        }
        while let Some(pk) = self.to_client.pop_front() {
            self.c.handle_packet(self.now, &pk).unwrap();
            self.client_events();
            moved = true;
        }
        moved
    }

    /// Exchanges packets until neither side has anything to say.
    fn settle(&mut self) {
        for _ in 0..200 {
            if !self.round() {
                return;
            }
        }
        panic!("the pair does not settle");
    }
}

/// Sends `n` bodies as queries in one container; returns their ids.
fn send_container(p: &mut Pair, bodies: &[Vec<u8>]) -> Vec<MsgId> {
    let ids: Vec<MsgId> = bodies
        .iter()
        .map(|b| p.c.send(p.now, b, MsgKind::Query).unwrap())
        .collect();
    let mut out = vec![0u8; RX + 64];
    let p1 = p.c.poll_packet(p.now, &mut p.rng, &mut out).unwrap().unwrap();
    p.to_dc.push_back(out[..p1.len].to_vec());
    assert!(
        p.c.poll_packet(p.now, &mut p.rng, &mut out).unwrap().is_none(),
        "the queries travel in one container"
    );
    ids
}

fn ping(id: i64) -> Vec<u8> {
    enc(&tl::Ping { ping_id: id })
}

#[test]
fn chk_048_container_of_100_pings_gets_100_pongs() {
    let mut p = Pair::new(1);
    let bodies: Vec<Vec<u8>> = (0..100).map(|i| ping(1000 + i)).collect();
    let ids = send_container(&mut p, &bodies);
    p.settle();
    // Later traffic and the client's acknowledgements change nothing: every ping has its pong, once.
    p.c.send(p.now, &query(1), MsgKind::Query).unwrap();
    p.settle();
    p.now = p.now.saturating_add(Duration::from_secs(61));
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
    p.settle();
    for (i, id) in ids.iter().enumerate() {
        let got = p.answers.get(id).map_or(0, Vec::len);
        assert_eq!(got, 1, "ping {i} answered {got} times");
        let pong = tl::Pong::decode(&p.answers[id][0]).unwrap();
        assert_eq!((pong.msg_id, pong.ping_id), (id.to_wire(), 1000 + i as i64));
    }
    assert_eq!(
        p.s.in_flight(),
        0,
        "the DC holds nothing the client has not acknowledged"
    );
}

#[test]
fn chk_048_container_of_100_queries_gets_100_answers() {
    let mut p = Pair::new(2);
    let bodies: Vec<Vec<u8>> = (0..100).map(query).collect();
    let ids = send_container(&mut p, &bodies);
    p.settle();
    // The acknowledgements flush; the client resends nothing.
    p.now = p.now.saturating_add(Duration::from_secs(61));
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
    p.settle();
    assert_eq!(p.requests, 100, "each query reaches the host once");
    for (id, body) in ids.iter().zip(&bodies) {
        assert_eq!(p.answers.get(id), Some(&vec![body.clone()]), "{id:?}");
    }
    assert!(p.errors.is_empty());
    assert_eq!(p.s.in_flight(), 0);
}

#[test]
fn chk_054_two_containers_of_100_queries_each_answered_once() {
    // 200 queries in flight before any answer: more than the DC holds requests and unacknowledged answers
    // together. The DC must neither stall (a client that never resends waits forever) nor drop one: each query
    // gets its echo, or a FLOOD_WAIT the client retries.
    let mut p = Pair::new(3);
    let first: Vec<Vec<u8>> = (0..100).map(query).collect();
    let second: Vec<Vec<u8>> = (100..200).map(query).collect();
    let mut ids = send_container(&mut p, &first);
    ids.extend(send_container(&mut p, &second));
    p.settle();
    p.now = p.now.saturating_add(Duration::from_secs(61));
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
    p.settle();
    let bodies: Vec<&Vec<u8>> = first.iter().chain(&second).collect();
    let mut flooded = 0;
    for (id, body) in ids.iter().zip(bodies) {
        let answers = p.answers.get(id).cloned().unwrap_or_default();
        let errors = p.errors.get(id).cloned().unwrap_or_default();
        assert_eq!(answers.len() + errors.len(), 1, "{id:?}: {answers:?} {errors:?}");
        if let Some(a) = answers.first() {
            assert_eq!(a, body);
        } else {
            assert_eq!(errors[0], (420, b"FLOOD_WAIT_1".to_vec()));
            flooded += 1;
        }
    }
    assert_eq!(p.requests + flooded, 200, "a refused query never reaches the host");
    assert_eq!(p.s.in_flight(), 0);
}

/// The bodies of every message in the DC's next packets (a container's members one by one); the packets go on to
/// the client.
fn dc_bodies(p: &mut Pair, seed: u64) -> Vec<Vec<u8>> {
    use mtproto_sansio::crypto::packet::{self, Direction};
    let mut out = vec![0u8; RX + 64];
    let mut bodies = Vec::new();
    while let Some(pk) = p.s.poll_packet(p.now, &mut p.rng, &mut out).unwrap() {
        p.to_client.push_back(out[..pk.len].to_vec());
        let mut b = out[..pk.len].to_vec();
        let v = packet::decrypt(&key(seed), Direction::ServerToClient, &mut b).unwrap();
        match tl::MsgContainer::decode(v.body()) {
            Ok(c) => bodies.extend(c.iter().map(|m| m.body.to_vec())),
            Err(_) => bodies.push(v.body().to_vec()),
        }
    }
    bodies
}

#[test]
fn chk_047_state_req_answered_when_the_arena_is_full() {
    // The DC's 64 slots hold answers not sent yet; a msgs_state_req then has no room in the arena: its answer is
    // owed, written from the request (kept in the receive buffer meanwhile) by the next packet, once.
    let mut p = Pair::new(4);
    let ids: Vec<MsgId> = (0..64)
        .map(|i| p.c.send(p.now, &query(i), MsgKind::Query).unwrap())
        .collect();
    let mut out = vec![0u8; RX + 64];
    let pk = p.c.poll_packet(p.now, &mut p.rng, &mut out).unwrap().unwrap();
    p.s.handle_packet(p.now, &out[..pk.len]).unwrap();
    p.dc_host();
    assert_eq!((p.requests, p.backlog.len()), (64, 0));
    assert_eq!(p.s.in_flight(), 64, "the arena is full");
    let bogus = MsgId(ids[63].0 + (1 << 32));
    let asked = [ids[0].to_wire(), ids[1].to_wire(), bogus.to_wire()];
    let req_body = enc(&tl::MsgsStateReq {
        msg_ids: tl::TlVec::from_slice(&asked),
    });
    let req = p.c.send(p.now, &req_body, MsgKind::Notice).unwrap();
    let pk = p.c.poll_packet(p.now, &mut p.rng, &mut out).unwrap().unwrap();
    p.s.handle_packet(p.now, &out[..pk.len]).unwrap();
    assert_eq!(p.s.owed_answers(), 1);
    // The request stays in the receive buffer until its answer is written: no input meanwhile.
    assert!(p.s.must_drain());
    let next = p.c.send(p.now, &query(99), MsgKind::Query).unwrap();
    let pk = p.c.poll_packet(p.now, &mut p.rng, &mut out).unwrap().unwrap();
    let held = out[..pk.len].to_vec();
    assert_eq!(p.s.handle_packet(p.now, &held), Err(Dropped::Backpressure));
    let infos: Vec<Vec<u8>> = dc_bodies(&mut p, 4)
        .into_iter()
        .filter_map(|b| match tl::ServiceMessage::decode_body(&b) {
            Ok(tl::ServiceMessage::MsgsStateInfo(i)) => {
                assert_eq!(i.req_msg_id, req.to_wire());
                Some(i.info.to_vec())
            }
            _ => None,
        })
        .collect();
    assert_eq!(infos, vec![vec![4, 4, 3]]);
    assert!(!p.s.must_drain());
    p.s.handle_packet(p.now, &held).unwrap();
    p.dc_host();
    p.settle();
    for id in ids.iter().chain([&next]) {
        assert_eq!(p.answers.get(id).map(Vec::len), Some(1));
    }
}

#[test]
fn chk_048_client_takes_a_whole_container_however_small_its_event_queue() {
    // A client with 8 event slots gets one container of 20 updates. It takes the container as a whole: every
    // update reaches the host, in order, from that one packet, as the host drains its events, and all 20 are
    // acknowledged, so the DC holds nothing it would have to send again. (Before: 8 updates were taken, the other
    // 12 neither processed nor acknowledged, left for a resend the DC may never make.)
    let mut rng = StdRng::seed_from_u64(7);
    let now = Instant::from_secs(1000);
    let clock = || Clock::from_unix_hint(now, UnixTime(UNIX0));
    let mut s = Box::new(Dc::server(SessionConfig::DEFAULT, key(7), clock(), now, &mut rng));
    let ccfg = SessionConfig {
        ping_interval: None,
        future_salts: false,
        state_check_after: None,
        ..SessionConfig::DEFAULT
    };
    let mut c = Box::new(Session::<RX, TX, 8>::client(
        ccfg,
        key(7),
        s.current_salt(),
        clock(),
        now,
        &mut rng,
    ));
    s.approve_session(c.session_id());
    let mut out = vec![0u8; RX + 64];
    // The client speaks first, so the DC knows its session.
    c.send(now, &query(0), MsgKind::Query).unwrap();
    let p = c.poll_packet(now, &mut rng, &mut out).unwrap().unwrap();
    let first = out[..p.len].to_vec();
    s.handle_packet(now, &first).unwrap();
    while let Some(ev) = s.poll_event() {
        if let Event::Request { msg_id, body } = ev {
            let body = body.to_vec();
            s.answer(now, msg_id, &body).unwrap();
        }
    }
    let updates: Vec<Vec<u8>> = (100..120).map(query).collect();
    for u in &updates {
        s.send(now, u, MsgKind::Notice).unwrap();
    }
    let p = s.poll_packet(now, &mut rng, &mut out).unwrap().unwrap();
    let packet = out[..p.len].to_vec();
    assert!(
        s.poll_packet(now, &mut rng, &mut out).unwrap().is_none(),
        "the answer and the 20 updates travel in one container"
    );
    c.handle_packet(now, &packet).unwrap();
    let mut got = Vec::new();
    let mut result = false;
    while let Some(ev) = c.poll_event() {
        match ev {
            Event::Update(body) => got.push(body.to_vec()),
            Event::RpcResult { .. } => result = true,
            // The DC's `new_session_created`, first in the container.
            Event::SessionReset { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(result, "the query's answer arrived");
    assert_eq!(
        got, updates,
        "every update of the container, in order, from the one packet"
    );
    assert!(!c.must_drain());
    // The client's acknowledgements settle everything the DC sent.
    while let Some(p) = c.poll_packet(now, &mut rng, &mut out).unwrap() {
        let pk = out[..p.len].to_vec();
        s.handle_packet(now, &pk).unwrap();
        while s.poll_event().is_some() {}
    }
    assert_eq!(s.in_flight(), 0, "the DC holds nothing the client has not acknowledged");
}

#[test]
fn chk_048_client_takes_a_whole_gzipped_container_however_small_its_event_queue() {
    // The same as a container sent in `gzip_packed` (as DCs do with large batches of updates): its members lie in
    // the inflate buffer while they wait for room, and all 20 reach the host from the one packet.
    use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
    let mut rng = StdRng::seed_from_u64(8);
    let now = Instant::from_secs(1000);
    let clock = Clock::from_unix_hint(now, UnixTime(UNIX0));
    let ccfg = SessionConfig {
        ping_interval: None,
        future_salts: false,
        state_check_after: None,
        ..SessionConfig::DEFAULT
    };
    let mut c = Box::new(Session::<RX, TX, 8>::client(ccfg, key(8), 0, clock, now, &mut rng));
    let id = |n: u64| (UNIX0 << 32) | (n * 4 + 1);
    let updates: Vec<Vec<u8>> = (200..220).map(query).collect();
    let mut container = tl::MsgContainer::CONSTRUCTOR.to_le_bytes().to_vec();
    container.extend_from_slice(&(updates.len() as u32).to_le_bytes());
    for (i, u) in updates.iter().enumerate() {
        container.extend_from_slice(&id(i as u64 + 1).to_le_bytes());
        container.extend_from_slice(&(2 * i as u32 + 1).to_le_bytes());
        container.extend_from_slice(&(u.len() as u32).to_le_bytes());
        container.extend_from_slice(u);
    }
    let packed = tl::gzip::deflate_gzip(&container, 6);
    let body = enc(&tl::GzipPacked { packed_data: &packed });
    let h = MessageHeader {
        salt: 0,
        session_id: c.session_id(),
        msg_id: id(30),
        seq_no: 40,
    };
    let mut pk = vec![0u8; body.len() + 2048];
    let e = packet::encrypt(&key(8), Direction::ServerToClient, &h, &body, &mut rng, &mut pk).unwrap();
    pk.truncate(e.len);
    c.handle_packet(now, &pk).unwrap();
    let mut got = Vec::new();
    while let Some(ev) = c.poll_event() {
        match ev {
            Event::Update(body) => got.push(body.to_vec()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        got, updates,
        "every update of the gzipped container, in order, from the one packet"
    );
    assert!(!c.must_drain());
}

/// DC of [`window_of_answers`]: a 1 MiB arena, so its budget is `max_unacked_bytes`, not the arena.
type WideDc = Session<RX, { 1 << 20 }, 64>;

/// What [`window_of_answers`] saw: answers the client got, packets the client sent, the most bytes the DC held
/// unacknowledged.
struct WindowRun {
    answered: usize,
    client_packets: usize,
    most_held: usize,
}

/// A client puts `window` queries in flight at once; the DC's host answers each with `answer_len` bytes, retrying
/// the answers its budget of unacknowledged bytes (`dc_budget`) refuses. The virtual clock never moves, so no timer
/// fires (no resend, no ping, no ack delay): the pair runs on what each side sends when it receives. Runs until
/// neither side has anything to say.
fn window_of_answers(seed: u64, window: u32, answer_len: usize, dc_budget: usize, client: Limits) -> WindowRun {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = Instant::from_secs(1000);
    let clock = || Clock::from_unix_hint(now, UnixTime(UNIX0));
    let frozen = ResendPolicy {
        initial: Duration::from_secs(3600),
        max: Duration::from_secs(3600),
        max_attempts: 1,
    };
    let dcfg = SessionConfig {
        limits: Limits {
            max_unacked_bytes: dc_budget,
            ..Limits::DEFAULT
        },
        ..SessionConfig::DEFAULT
    };
    let ccfg = SessionConfig {
        ping_interval: None,
        future_salts: false,
        state_check_after: None,
        resend: frozen,
        limits: client,
        ..SessionConfig::DEFAULT
    };
    let mut s = Box::new(WideDc::server(dcfg, key(seed), clock(), now, &mut rng));
    let mut c = Box::new(Client::client(
        ccfg,
        key(seed),
        s.current_salt(),
        clock(),
        now,
        &mut rng,
    ));
    s.approve_session(c.session_id());
    let ids: Vec<MsgId> = (0..window)
        .map(|i| c.send(now, &query(i), MsgKind::Query).unwrap())
        .collect();
    let answer = |req: &[u8]| {
        let mut b = req.to_vec();
        b.resize(answer_len, 0xa5);
        b
    };
    let mut run = WindowRun {
        answered: 0,
        client_packets: 0,
        most_held: 0,
    };
    let mut backlog: VecDeque<(MsgId, Vec<u8>)> = VecDeque::new();
    let mut out = vec![0u8; RX + 64];
    loop {
        let mut moved = false;
        let mut to_dc = Vec::new();
        while let Some(p) = c.poll_packet(now, &mut rng, &mut out).unwrap() {
            to_dc.push(out[..p.len].to_vec());
            run.client_packets += 1;
        }
        for pk in to_dc {
            s.handle_packet(now, &pk).unwrap();
            moved = true;
            while let Some(ev) = s.poll_event() {
                if let Event::Request { msg_id, body } = ev {
                    backlog.push_back((msg_id, answer(body)));
                }
            }
        }
        // The host answers in order, and stops at the first answer the budget refuses (test_dc's host).
        while let Some((req, body)) = backlog.front() {
            match s.answer(now, *req, body) {
                Ok(_) => {
                    backlog.pop_front();
                }
                Err(SendError::QueueFull) => break,
                Err(e) => panic!("answer: {e}"),
            }
        }
        run.most_held = run.most_held.max(s.arena_used());
        let mut to_client = Vec::new();
        while let Some(p) = s.poll_packet(now, &mut rng, &mut out).unwrap() {
            to_client.push(out[..p.len].to_vec());
        }
        for pk in to_client {
            c.handle_packet(now, &pk).unwrap();
            moved = true;
            while let Some(ev) = c.poll_event() {
                match ev {
                    Event::RpcResult { req, body } => {
                        assert!(ids.contains(&req));
                        assert_eq!(body.len(), answer_len);
                        run.answered += 1;
                    }
                    Event::RpcError { code, message, .. } => {
                        panic!("{code} {}", String::from_utf8_lossy(message))
                    }
                    Event::Failed { req, reason } => panic!("{req:?} failed: {reason:?}"),
                    _ => {}
                }
            }
        }
        if !moved {
            return run;
        }
    }
}

#[test]
fn chk_054_a_window_of_answers_beyond_the_dcs_budget_flows_without_any_timer() {
    // 16 answers of 48 KiB (768 KiB) against a DC that keeps at most 256 KiB unacknowledged: five at a time. The
    // client has nothing to send while it waits for the other answers, so only its acknowledgements free the DC's
    // budget. By count (more than 16 pending) they would never go: they go by bytes, at 64 KiB received.
    const ANSWER: usize = 48 * 1024;
    let run = window_of_answers(7, 16, ANSWER, 256 * 1024, Limits::DEFAULT);
    assert_eq!(run.answered, 16, "every answer arrives with the clock standing still");
    assert!(run.most_held <= 256 * 1024);
    // Acknowledgements still batched: one per two answers (96 KiB ≥ 64 KiB), plus the packet of queries.
    assert!(
        run.client_packets <= 1 + 16 / 2,
        "{} client packets",
        run.client_packets
    );
    // The same pair with the byte rule off: five answers, then both sides wait for a timer.
    let stalled = window_of_answers(
        7,
        16,
        ANSWER,
        256 * 1024,
        Limits {
            ack_flush_bytes: usize::MAX,
            ..Limits::DEFAULT
        },
    );
    assert_eq!(
        stalled.answered, 5,
        "without the byte rule the DC's budget stalls the window"
    );
}
