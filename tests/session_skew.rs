//! Clock skew between a client and its DC through the `Connection` facade: a client starting from a stored key with a
//! Unix-time hint 600 s off, a synced client reconnecting to a DC that restarted (forgot the session, possibly with
//! its own clock moved), and a client whose host clock jumps mid-session. In every case the client corrects its
//! offset from the DC's msg_id on `bad_msg_notification` 16/17 (items 34, 36, 43), resends under new msg_ids, and
//! gets every answer within two round trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
use mtproto_sansio::session::Dropped;
use mtproto_sansio::session::limits::DEFAULT_REPLAY_WINDOW;
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Event, HostQuery, MsgId, MsgKind, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::tl::{self, TlWrite};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type S = Connection<8192, 8192, 16>;
/// The DC's Unix time at its `Instant` 0.
const UNIX0: u64 = 1_700_000_000;
const SKEW: i64 = 600;
/// At most this many round trips from a send to its answer, whatever the skew.
const MAX_ROUNDS: usize = 2;

fn cfg(unix: u64, salt: u64) -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            future_salts: false,
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig::INTERMEDIATE,
        unix_time_hint: Some(UnixTime(unix)),
        salt,
    }
}

fn shifted(t: Instant, by: i64) -> Instant {
    Instant::from_micros((t.as_micros() as i64 + by * 1_000_000) as u64)
}

/// A client and a DC with their own clocks: `cnow` and `dnow` are each party's `Instant`.
struct Pair {
    c: Box<S>,
    d: Box<S>,
    rng: StdRng,
    answers: Vec<(MsgId, Vec<u8>)>,
    /// Requests the DC executed.
    dc_requests: usize,
}

impl Pair {
    /// A client from a stored key (and, if `stored_salt`, the DC's current salt stored with it) whose clock reads
    /// `skew` seconds off the DC's, at client instant `cnow`.
    fn new(seed: u64, cnow: Instant, dnow: Instant, skew: i64, stored_salt: bool) -> Pair {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut key = [0u8; 256];
        rng.fill_bytes(&mut key);
        let dc_unix = UNIX0 + dnow.as_secs();
        let client_unix = (dc_unix as i64 + skew) as u64;
        let d = Box::new(S::server(cfg(dc_unix, 0), AuthKey::from_bytes(key), dnow, &mut rng));
        let salt = if stored_salt {
            d.session().unwrap().current_salt()
        } else {
            0
        };
        let c = Box::new(S::client(
            cfg(client_unix, salt),
            AuthKey::from_bytes(key),
            cnow,
            &mut rng,
        ));
        Pair {
            c,
            d,
            rng,
            answers: Vec::new(),
            dc_requests: 0,
        }
    }

    /// One round trip: everything the client has goes to the DC (which answers requests by echo), then everything
    /// the DC has goes back.
    fn round(&mut self, cnow: Instant, dnow: Instant) {
        let mut out = vec![0u8; self.c.min_transmit_len()];
        while let Some(n) = self.c.poll_transmit(cnow, &mut self.rng, &mut out).unwrap() {
            let mut off = 0;
            while off < n {
                off += self.d.handle_input(dnow, &out[off..n]).unwrap();
                loop {
                    let mut reqs = Vec::new();
                    while let Some(ev) = self.d.poll_event() {
                        if std::env::var("SKEW_DEBUG").is_ok() {
                            eprintln!("DC  <- {ev:?}");
                        }
                        if let Event::Request { msg_id, body } = ev {
                            reqs.push((msg_id, body.to_vec()));
                        }
                    }
                    for (id, b) in reqs {
                        self.dc_requests += 1;
                        self.d.answer(dnow, id, &b).unwrap();
                    }
                    // One DC connection per session here: every session it is asked about starts on it (a
                    // restarted DC host lost the old one). The parked packet then raises its own events.
                    match self.d.host_query() {
                        Some(HostQuery::Session { .. }) => self.d.resume_session(dnow, None).unwrap(),
                        _ => break,
                    }
                }
            }
        }
        let mut out = vec![0u8; self.d.min_transmit_len()];
        while let Some(n) = self.d.poll_transmit(dnow, &mut self.rng, &mut out).unwrap() {
            let mut off = 0;
            while off < n {
                off += self.c.handle_input(cnow, &out[off..n]).unwrap();
                while let Some(ev) = self.c.poll_event() {
                    if std::env::var("SKEW_DEBUG").is_ok() {
                        eprintln!("CLI <- {ev:?}");
                    }
                    if let Event::RpcResult { req, body } = ev {
                        self.answers.push((req, body.to_vec()));
                    }
                }
            }
        }
    }

    /// Sends `n` queries tagged `tag` and runs round trips (each one second apart on both clocks) until all are
    /// answered; returns how many rounds that took. Panics past `limit` rounds.
    fn query_until_answered(&mut self, cnow: &mut Instant, dnow: &mut Instant, tag: u8, n: u8, limit: usize) -> usize {
        let mut want = Vec::new();
        for i in 0..n {
            let body = vec![0x0d, 0xf0, 0xad, 0x0b, tag, i, 0, 0];
            let id = self.c.send(*cnow, &body, MsgKind::Query).unwrap();
            want.push((id, body));
        }
        for round in 1..=limit {
            if std::env::var("SKEW_DEBUG").is_ok() {
                eprintln!("round {round} tag {tag} want {want:?}");
            }
            self.round(*cnow, *dnow);
            if want.iter().all(|w| self.answers.contains(w)) {
                // Exactly once each, and each to its own query.
                for w in &want {
                    assert_eq!(
                        self.answers.iter().filter(|a| *a == w).count(),
                        1,
                        "answered twice: {w:?}"
                    );
                }
                return round;
            }
            *cnow = shifted(*cnow, 1);
            *dnow = shifted(*dnow, 1);
        }
        panic!(
            "tag {tag}: {} of {n} answered within {limit} rounds; client stats {:?}, DC stats {:?}",
            want.iter().filter(|w| self.answers.contains(w)).count(),
            self.c.stats(),
            self.d.stats()
        );
    }

    fn client_offset_error(&self, cnow: Instant, dnow: Instant) -> i64 {
        let c = self.c.session().unwrap().clock().unix_time(cnow).0 as i64;
        c - (UNIX0 + dnow.as_secs()) as i64
    }
}

/// A client from a stored key and salt, `skew` seconds off, sends queries: at most one round for the correction
/// (without the salt, one more: each refusal names one fault, time first).
fn stored_key_client(skew: i64, seed: u64, stored_salt: bool) {
    let mut cnow = Instant::from_secs(5_000);
    let mut dnow = Instant::from_secs(100);
    let mut p = Pair::new(seed, cnow, dnow, skew, stored_salt);
    let rounds = p.query_until_answered(&mut cnow, &mut dnow, 1, 3, 8);
    let bound = if stored_salt || skew == 0 {
        MAX_ROUNDS
    } else {
        MAX_ROUNDS + 1
    };
    assert!(rounds <= bound, "skew {skew}: {rounds} rounds");
    if skew != 0 {
        assert!(p.c.stats().bad_msgs >= 1, "skew {skew}: answered without a correction");
    }
    assert!(p.client_offset_error(cnow, dnow).abs() <= 2, "clock not corrected");
    // Synced now: later queries take one round.
    assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 2, 2, 8), 1);
    assert_eq!(p.dc_requests, 5, "a query was executed twice");
}

#[test]
fn chk_034_stored_key_client_600s_ahead_of_dc() {
    stored_key_client(SKEW, 1, true);
}

#[test]
fn chk_034_stored_key_client_600s_behind_dc() {
    stored_key_client(-SKEW, 2, true);
}

#[test]
fn stored_key_client_in_sync() {
    stored_key_client(0, 3, true);
    stored_key_client(0, 4, false);
}

#[test]
fn chk_034_stored_key_without_salt_600s_off() {
    stored_key_client(SKEW, 5, false);
    stored_key_client(-SKEW, 6, false);
}

/// A synced client; the DC restarts (forgets the session: a new DC connection object with its clock moved by
/// `dc_jump` seconds) and the client reconnects with outstanding and new queries. `busy`: the client received more
/// DC messages than its replay window holds before the restart.
fn dc_restart(dc_jump: i64, seed: u64, busy: bool) {
    let mut cnow = Instant::from_secs(5_000);
    let mut dnow = Instant::from_secs(100);
    let mut p = Pair::new(seed, cnow, dnow, 0, true);
    assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 1, 2, 8), 1);
    if busy {
        for _ in 0..(DEFAULT_REPLAY_WINDOW / 15 + 1) {
            assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 0, 15, 8), 1);
        }
        p.answers.clear();
    }
    // The DC goes away; the client queues a query on the dead connection.
    let lost = vec![0x0d, 0xf0, 0xad, 0x0b, 9, 9, 0, 0];
    let lost_id = p.c.send(cnow, &lost, MsgKind::Query).unwrap();
    let mut sink = vec![0u8; p.c.min_transmit_len()];
    while p.c.poll_transmit(cnow, &mut p.rng, &mut sink).unwrap().is_some() {}
    // The restarted DC: the same key and salt, no session, its clock moved.
    // The restart takes 5 s of the DC's wall clock (plus the jump).
    let dc_unix = (UNIX0 as i64 + dnow.as_secs() as i64 + 5 + dc_jump) as u64;
    dnow = Instant::from_secs(10);
    let stored = p.d.stored_key().unwrap();
    let mut d = Box::new(S::server_stored(cfg(dc_unix, 0), &stored, dnow));
    std::mem::swap(&mut p.d, &mut d);
    cnow = shifted(cnow, 1);
    p.c.reconnect(cnow);
    let rounds = p.query_until_answered(&mut cnow, &mut dnow, 2, 2, 8);
    assert!(rounds <= MAX_ROUNDS, "DC jump {dc_jump}: {rounds} rounds");
    assert!(
        p.answers.iter().any(|a| a.0 == lost_id && a.1 == lost),
        "the lost query was not resent"
    );
    let dc_unix_now = dc_unix as i64 - 10 + dnow.as_secs() as i64;
    let c = p.c.session().unwrap().clock().unix_time(cnow).0 as i64;
    assert!(
        (c - dc_unix_now).abs() <= 10,
        "clock not corrected to the restarted DC: {}",
        c - dc_unix_now
    );
    assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 3, 1, 8), 1);
}

#[test]
fn dc_restart_same_clock() {
    dc_restart(0, 10, false);
}

#[test]
fn chk_034_dc_restart_clock_600s_ahead() {
    dc_restart(SKEW, 11, false);
    dc_restart(SKEW, 13, true);
}

#[test]
fn chk_034_dc_restart_clock_600s_behind() {
    dc_restart(-SKEW, 12, false);
}

/// Behind, after a full replay window: the DC's new ids all lie below every id the client remembers.
#[test]
fn chk_033_dc_restart_clock_600s_behind_full_window() {
    dc_restart(-SKEW, 14, true);
}

/// A synced client whose host clock jumps by `jump` seconds relative to the DC mid-session (an `Instant` that
/// stood still through a suspend, or one that leapt forward), then reconnects and sends.
fn client_clock_jump(jump: i64, seed: u64) {
    let mut cnow = Instant::from_secs(5_000);
    let mut dnow = Instant::from_secs(1_000);
    let mut p = Pair::new(seed, cnow, dnow, 0, true);
    assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 1, 2, 8), 1);
    // Both clocks stay monotonic: the one that "jumps" leaps ahead of the other.
    if jump > 0 {
        cnow = shifted(cnow, jump);
    } else {
        dnow = shifted(dnow, -jump);
    }
    p.c.handle_timeout(cnow).unwrap();
    // First a query on the old connection, then a reconnect with another.
    let rounds = p.query_until_answered(&mut cnow, &mut dnow, 2, 2, 8);
    assert!(rounds <= MAX_ROUNDS, "jump {jump}: {rounds} rounds");
    assert!(p.client_offset_error(cnow, dnow).abs() <= 2, "clock not corrected");
    cnow = shifted(cnow, 1);
    dnow = shifted(dnow, 1);
    p.c.reconnect(cnow);
    p.d.reconnect(dnow);
    assert_eq!(p.query_until_answered(&mut cnow, &mut dnow, 3, 2, 8), 1);
    // A second jump after the session already restarted once.
    if jump > 0 {
        cnow = shifted(cnow, jump);
    } else {
        dnow = shifted(dnow, -jump);
    }
    p.c.reconnect(cnow);
    p.d.reconnect(dnow);
    let rounds = p.query_until_answered(&mut cnow, &mut dnow, 4, 3, 8);
    assert!(rounds <= MAX_ROUNDS, "second jump {jump}: {rounds} rounds");
    assert_eq!(p.dc_requests, 9, "a query was executed twice");
}

#[test]
fn chk_036_client_clock_jumps_600s_forward() {
    client_clock_jump(SKEW, 20);
}

#[test]
fn chk_034_client_clock_falls_600s_behind() {
    client_clock_jump(-SKEW, 21);
}

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

/// A container from the DC, `ahead` seconds past the client's synced clock (outer and member ids alike).
fn dc_container(p: &session_util::Pair, ahead: u64, members: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let unix = session_util::UNIX0 + (p.now.as_secs() - 1000) + ahead;
    let id = |n: u64| ((unix << 32) | (n * 4 + 1)) as i64;
    let ms: Vec<tl::Message<'_>> = members
        .iter()
        .enumerate()
        .map(|(i, (seq, b))| tl::Message::new(id(i as u64 + 1), *seq as i32, b))
        .collect();
    let body = enc(&tl::MsgContainer::new(&ms));
    let h = MessageHeader {
        salt: 0,
        session_id: p.c.session_id(),
        msg_id: id(ms.len() as u64 + 1) as u64,
        seq_no: 3,
    };
    let mut out = vec![0u8; body.len() + 2048];
    let e = packet::encrypt(
        &session_util::key(p.seed),
        Direction::ServerToClient,
        &h,
        &body,
        &mut StdRng::seed_from_u64(h.msg_id),
        &mut out,
    )
    .unwrap();
    out.truncate(e.len);
    out
}

/// The time-window exemption of a container (a DC may pack a 16/17 with acks) holds only for a notification about
/// a message the client sent and still tracks (item 43, B20): a container 600 s off the synced clock carrying one
/// about an id never sent is dropped whole, and in an exempt container every other member is still checked.
#[test]
fn chk_034_atk_b20_container_exemption_needs_our_message() {
    // Synced by a first 16/17: the client enforces the window from then on.
    let mut p = session_util::Pair::with(40, session_util::client_cfg(), SessionConfig::DEFAULT, 600);
    p.query(&session_util::api_body(1, 1));
    assert!(p.c.clock().is_synced());
    let offset = p.c.clock().unix_offset();
    let q = p.c.send(p.now, &session_util::api_body(2, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let forged = tl::BadMsg {
        bad_msg_id: 0x1234_5678_0000_0004,
        bad_msg_seqno: 1,
        error_code: 17,
    };
    let answer = tl::RpcResult {
        req_msg_id: q.to_wire(),
        result: &[1, 2, 3, 4],
    };
    let pk = dc_container(&p, 600, &[(2, enc(&forged)), (3, enc(&answer))]);
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
    assert_eq!(p.c.clock().unix_offset(), offset);
    // The genuine notification (about q) gets its container through; the answer beside it, 600 s off the clock
    // it was checked against, does not.
    let genuine = tl::BadMsg {
        bad_msg_id: q.to_wire(),
        bad_msg_seqno: 1,
        error_code: 16,
    };
    let pk = dc_container(&p, 600, &[(3, enc(&answer)), (2, enc(&genuine))]);
    assert!(p.deliver_c(&pk).is_ok());
    assert!(p.results_for(q).is_empty(), "an out-of-window member was accepted");
    let moved = p.c.clock().unix_offset() - offset;
    assert!((moved - 600_000_000).abs() < 2_000_000, "clock moved by {moved} µs");
    // q goes again under a new id, within the corrected clock.
    let again = p.c2s();
    assert!(!again.is_empty());
}
