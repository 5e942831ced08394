//! Negative and model tests for the session building blocks (docs/CHECKLIST.md items 32-37, 42-47, 49, 54; attacks
//! B7, B8, B16, B20), and for items 34 and B8 the client engine in its default configuration (a stored key, its
//! clock unsynced at start).

use std::collections::BTreeSet;
use std::time::Duration;

use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
use mtproto_sansio::session::limits::DEFAULT_REPLAY_WINDOW;
use mtproto_sansio::session::{
    AckQueue, AckQueueFull, BadMsgCode, BudgetExhausted, ClientSalts, Clock, FutureSalt, InboundMsgIds, Limits, MsgId,
    MsgIdGen, MsgIdReject, ReplayWindow, ResendBudget, ResendPolicy, Role, SaltError, SentKind, SentTracker,
    SeqNoChecker, SeqNoError, SeqNoGen, ServerSaltPolicy, ServerSalts, TimeWindow, TrackError,
    acks::AckBatch,
    pending::{Acked, BodyHandle, NewSent},
    replay::{check_parity, check_time},
};
use mtproto_sansio::session::{Dropped, MsgKind};
use mtproto_sansio::time::{Instant, UnixTime};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

mod session_util;

const T0: u64 = 1_700_000_000;

fn id_at(secs: u64, frac: u32) -> MsgId {
    MsgId((secs << 32) | u64::from(frac))
}

fn sent(id: u64, kind: SentKind, bytes: u32) -> NewSent {
    NewSent {
        id: MsgId(id),
        seq_no: 1,
        bytes,
        handle: BodyHandle(id as u32),
        kind,
        container: None,
    }
}

fn tracker<const N: usize>() -> SentTracker<N> {
    SentTracker::new(1 << 20, ResendPolicy::DEFAULT)
}

// ---------------------------------------------------------------------------------------------- msg_id (item 36)

fn assert_client_id(id: MsgId) {
    assert_eq!(id.0 % 4, 0, "client id {id} not divisible by 4");
    assert_ne!(id.0 & 0xffff_ffff, 0, "client id {id} has zero low 32 bits");
}

#[test]
fn chk_036_ids_increase_across_clock_jump_back() {
    let mut clock = Clock::from_unix_hint(Instant::from_secs(50), UnixTime(T0));
    let mut g = MsgIdGen::new(Role::Client);
    let mut last = MsgId(0);
    let mut now = Instant::from_secs(50);
    for step in 0..200u64 {
        if step == 100 {
            // The host's Unix time steps back one hour (NTP correction, RTC reset...).
            clock = Clock::new(clock.unix_offset() - 3_600_000_000);
        }
        if step == 150 {
            // The host even hands in an earlier Instant.
            now = Instant::from_secs(10);
        }
        let id = g.next(now, &clock).unwrap();
        assert!(id > last, "id {id} not above {last} at step {step}");
        assert_client_id(id);
        last = id;
        now = now.saturating_add(Duration::from_millis(7));
    }
    // Once the clock catches up again, ids follow it.
    let later = g.next(Instant::from_secs(50 + 7200), &clock).unwrap();
    assert_eq!(later.unix_secs(), T0 + 7200 - 3600);
}

#[test]
fn chk_036_million_ids_unique_and_aligned() {
    let clock = Clock::from_unix_hint(Instant::ZERO, UnixTime(T0));
    let mut g = MsgIdGen::new(Role::Client);
    let mut last = MsgId(0);
    for i in 0..1_000_000u64 {
        // A host clock ticking at 1 µs per id: many ids share a microsecond-resolution timestamp.
        let now = Instant::from_micros(i / 3);
        let id = g.next(now, &clock).unwrap();
        assert!(id > last);
        assert_client_id(id);
        // Never drifts far from the clock (4 per id at most 2^32 per second: far below a second here).
        assert!(id.0.abs_diff(clock.msg_time(now)) < 1 << 32);
        last = id;
    }
    assert_eq!(last.unix_secs(), T0);
}

#[test]
fn chk_036_server_ids_parity() {
    let clock = Clock::from_unix_hint(Instant::ZERO, UnixTime(T0));
    let mut g = MsgIdGen::new(Role::Server);
    let mut last = MsgId(0);
    for i in 0..10_000u64 {
        let now = Instant::from_micros(i / 5);
        let (id, want) = if i % 3 == 0 {
            (g.next_response(now, &clock).unwrap(), 1)
        } else {
            (g.next(now, &clock).unwrap(), 3)
        };
        assert_eq!(id.0 % 4, want);
        assert!(id.has_parity_of(Role::Server));
        assert_eq!(id.is_server_response(), want == 1);
        assert!(id > last);
        last = id;
    }
    // A client generator ignores the response marker: its ids are always ≡ 0 mod 4.
    let mut c = MsgIdGen::new(Role::Client);
    assert_eq!(c.next_response(Instant::ZERO, &clock).unwrap().0 % 4, 0);
}

#[test]
fn chk_036_clock_corrections() {
    let now = Instant::from_secs(1000);
    let mut clock = Clock::new(0);
    assert!(!clock.is_synced());
    clock.sync_to_server_time(now, UnixTime(T0));
    assert!(clock.is_synced());
    assert_eq!(clock.unix_time(now), UnixTime(T0));
    assert_eq!(clock.unix_time(Instant::from_secs(1010)), UnixTime(T0 + 10));

    // bad_msg_notification 16 naming a tracked message: the server's msg_id carries its time.
    let mut t: SentTracker<4> = tracker();
    t.track(now, sent(id_at(T0, 4).0, SentKind::RpcQuery, 10)).unwrap();
    let proof = t.reference(id_at(T0, 4)).unwrap();
    let server_id = id_at(T0 + 500, 1 << 31 | 1);
    clock.sync_to_server_msg_id(&proof, now, server_id);
    assert_eq!(clock.unix_micros(now), (T0 + 500) * 1_000_000 + 500_000);
    let mut g = MsgIdGen::new(Role::Client);
    assert_eq!(g.next(now, &clock).unwrap().unix_secs(), T0 + 500);
}

// --------------------------------------------------------------------------------- replay window (items 32-34)

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn chk_033_replay_window_model(ids in proptest::collection::vec(0u64..200, 0..600)) {
        let mut w: ReplayWindow<16> = ReplayWindow::new();
        let mut model: BTreeSet<u64> = BTreeSet::new();
        for raw in ids {
            let id = MsgId(raw);
            let expect = if model.contains(&raw) {
                Err(MsgIdReject::Duplicate)
            } else if model.len() == 16 && model.first().is_some_and(|&m| raw < m) {
                Err(MsgIdReject::OlderThanWindow)
            } else {
                model.insert(raw);
                if model.len() > 16 {
                    model.pop_first();
                }
                Ok(())
            };
            prop_assert_eq!(w.check(id), expect);
            prop_assert_eq!(w.insert(id), expect);
            prop_assert!(w.iter().map(|m| m.0).eq(model.iter().copied()));
        }
    }

    #[test]
    fn chk_033_replay_window_model_default_size(ids in proptest::collection::vec(0u64..3000, 0..3000)) {
        let mut w: ReplayWindow = ReplayWindow::new();
        let mut model: BTreeSet<u64> = BTreeSet::new();
        for raw in ids {
            let expect = if model.contains(&raw) {
                Err(MsgIdReject::Duplicate)
            } else if model.len() == 1024 && model.first().is_some_and(|&m| raw < m) {
                Err(MsgIdReject::OlderThanWindow)
            } else {
                model.insert(raw);
                if model.len() > 1024 {
                    model.pop_first();
                }
                Ok(())
            };
            prop_assert_eq!(w.insert(MsgId(raw)), expect);
        }
        prop_assert!(w.iter().map(|m| m.0).eq(model.iter().copied()));
    }
}

#[test]
fn chk_033_duplicate_rejected() {
    let mut w: ReplayWindow = ReplayWindow::new();
    for i in 1..=10 {
        w.insert(MsgId(i * 4)).unwrap();
    }
    let before = w.clone();
    assert_eq!(w.insert(MsgId(20)), Err(MsgIdReject::Duplicate));
    assert_eq!(w.insert(MsgId(40)), Err(MsgIdReject::Duplicate));
    assert_eq!(w, before);
}

#[test]
fn chk_033_older_than_window_rejected() {
    let mut w: ReplayWindow<8> = ReplayWindow::new();
    for i in 10..18 {
        w.insert(MsgId(i * 4)).unwrap();
    }
    assert_eq!(w.len(), 8);
    let before = w.clone();
    assert_eq!(w.insert(MsgId(9 * 4)), Err(MsgIdReject::OlderThanWindow));
    assert_eq!(w, before);
    // Between stored ids but not stored: accepted, evicting the lowest.
    w.insert(MsgId(10 * 4 + 2)).unwrap();
    assert_eq!(w.lowest(), Some(MsgId(10 * 4 + 2)));
    assert!(!w.contains(MsgId(40)));
    assert_eq!(w.insert(MsgId(40)), Err(MsgIdReject::OlderThanWindow));
}

#[test]
fn chk_034_time_window_edges() {
    let now = UnixTime(T0);
    assert_eq!(check_time(id_at(T0 - 301, 1), now), Err(MsgIdReject::TooLow));
    assert_eq!(check_time(id_at(T0 - 299, 1), now), Ok(()));
    assert_eq!(check_time(id_at(T0 + 29, 1), now), Ok(()));
    assert_eq!(check_time(id_at(T0 + 31, 1), now), Err(MsgIdReject::TooHigh));
    assert_eq!(check_time(id_at(T0 - 300, 0), now), Ok(()));
    assert_eq!(check_time(id_at(T0 + 30, 0), now), Ok(()));
    assert_eq!(check_time(id_at(T0 + 30, 4), now), Err(MsgIdReject::TooHigh));
    assert_eq!(MsgIdReject::TooLow.bad_msg_code(false), Some(BadMsgCode::MsgIdTooLow));
    assert_eq!(MsgIdReject::TooHigh.bad_msg_code(false), Some(BadMsgCode::MsgIdTooHigh));
    // Configurable bounds.
    let narrow = TimeWindow {
        past: Duration::from_secs(10),
        future: Duration::from_secs(1),
    };
    assert_eq!(narrow.check(id_at(T0 - 11, 0), now), Err(MsgIdReject::TooLow));
    assert_eq!(narrow.check(id_at(T0 + 2, 0), now), Err(MsgIdReject::TooHigh));

    // Before the client's clock is synced the window is not enforced; after, it is.
    let mut inbound: InboundMsgIds = InboundMsgIds::new(Role::Server, TimeWindow::DEFAULT);
    let far = id_at(T0 + 3600, 1);
    assert_eq!(inbound.check(far, now, false), Ok(()));
    assert_eq!(inbound.accept(far, now, true), Err(MsgIdReject::TooHigh));
    assert!(inbound.window().is_empty());
}

/// Item 34 in the default configuration: a client on a stored key (`Session::client`, clock unsynced at start) that
/// has received one good message from its DC drops a DC packet held back for an hour, and one whose msg_id lies 60 s
/// ahead, and the session goes on.
#[test]
fn chk_034_stored_key_client_drops_held_back_and_future_server_packets() {
    let mut p = session_util::Pair::new(81);
    assert!(!p.c.clock().is_synced());
    let q = p.query(&session_util::api_body(1, 1));
    assert_eq!(p.results_for(q).len(), 1);
    // The DC pushes an update; it is held back for an hour on its way.
    p.s.send(p.now, &session_util::api_body(2, 0), MsgKind::Notice).unwrap();
    let held = p.s2c();
    assert_eq!(held.len(), 1);
    p.advance(3600);
    let events = p.client_events.len();
    assert_eq!(
        p.deliver_c(&held[0]),
        Err(Dropped::BadMsgId),
        "a packet an hour old was accepted"
    );
    assert_eq!(p.client_events.len(), events);
    // The session goes on.
    let q = p.query(&session_util::api_body(3, 1));
    assert_eq!(p.results_for(q).len(), 1);
    // A DC packet stamped 60 s ahead of the DC's (and the client's) clock.
    let events = p.client_events.len();
    let pk = dc_packet(&p, id_at(dc_unix(&p) + 60, 0x1001), 3, &session_util::api_body(4, 0));
    assert_eq!(
        p.deliver_c(&pk),
        Err(Dropped::BadMsgId),
        "a packet 60 s ahead was accepted"
    );
    let pk = dc_packet(&p, id_at(dc_unix(&p) + 10, 0x1001), 3, &session_util::api_body(5, 0));
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events.len(), events + 1);
}

/// What the first DC message is trusted for (item 34): it is authenticated and names the client's fresh session, so
/// the DC made it after the session's first packet left; its msg_id is the DC's time at some moment between then and
/// now. An unsynced client adopts it, knowing its clock may lag the DC's by up to that span: a first answer held
/// back 120 s leaves the clock 120 s behind, the DC's next, prompt message (120 s "ahead") is still accepted and
/// moves the clock up to the DC's, and from then on the window is the plain 300/30 s one.
#[test]
fn chk_034_first_server_message_held_back_is_corrected_by_the_next() {
    let mut p = session_util::Pair::new(82);
    // With the DC's salt stored beside the key, so the DC's first packet is the answer.
    let clock = Clock::from_unix_hint(p.now, UnixTime(session_util::UNIX0));
    let salt = p.s.current_salt();
    *p.c = session_util::E::client(
        session_util::client_cfg(),
        session_util::key(p.seed),
        salt,
        clock,
        p.now,
        &mut p.rng,
    );
    let q = p.c.send(p.now, &session_util::api_body(1, 1), MsgKind::Query).unwrap();
    for pk in p.c2s() {
        let _ = p.deliver_s(&pk);
    }
    let held = p.s2c();
    assert!(!held.is_empty());
    p.advance(120);
    for pk in &held {
        assert!(p.deliver_c(pk).is_ok());
    }
    assert_eq!(p.results_for(q).len(), 1, "{:?}", p.client_events);
    assert!(p.c.clock().is_synced());
    let lag = dc_unix(&p) as i64 - p.c.clock().unix_time(p.now).0 as i64;
    assert!((119..=121).contains(&lag), "clock lags the DC by {lag} s");
    // The DC's next message, made now.
    let pk = dc_packet(&p, id_at(dc_unix(&p), 0x1001), 3, &session_util::api_body(2, 0));
    assert!(
        p.deliver_c(&pk).is_ok(),
        "a prompt DC message was refused after a held-back first one"
    );
    let lag = dc_unix(&p) as i64 - p.c.clock().unix_time(p.now).0 as i64;
    assert!(lag.abs() <= 1, "clock still lags the DC by {lag} s");
    // The slack is used up: 60 s ahead is refused again, an hour back too.
    let pk = dc_packet(&p, id_at(dc_unix(&p) + 60, 0x2001), 3, &session_util::api_body(3, 0));
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
    let pk = dc_packet(&p, id_at(dc_unix(&p) - 3600, 0x2001), 3, &session_util::api_body(4, 0));
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
}

#[test]
fn chk_032_parity_by_side() {
    for low in 0..4u64 {
        let id = MsgId((T0 << 32) | 0x100 | low);
        assert_eq!(
            check_parity(id, Role::Client).is_ok(),
            low == 0,
            "client low bits {low}"
        );
        assert_eq!(
            check_parity(id, Role::Server).is_ok(),
            low == 1 || low == 3,
            "server low bits {low}"
        );
    }
    let bad = check_parity(MsgId(2), Role::Client).unwrap_err();
    assert_eq!(bad.bad_msg_code(false).map(BadMsgCode::code), Some(18));
    // A server receiving from a client and a client receiving from the server apply the sender's rule.
    let server_rx: InboundMsgIds = InboundMsgIds::new(Role::Client, TimeWindow::DEFAULT);
    assert_eq!(
        server_rx.check(id_at(T0, 0x101), UnixTime(T0), true),
        Err(MsgIdReject::BadParity)
    );
    assert_eq!(server_rx.check(id_at(T0, 0x100), UnixTime(T0), true), Ok(()));
    let client_rx: InboundMsgIds = InboundMsgIds::new(Role::Server, TimeWindow::DEFAULT);
    assert_eq!(
        client_rx.check(id_at(T0, 0x100), UnixTime(T0), true),
        Err(MsgIdReject::BadParity)
    );
    assert_eq!(client_rx.check(id_at(T0, 0x103), UnixTime(T0), true), Ok(()));
}

#[test]
fn atk_b07_replay_inside_and_outside_window() {
    let mut rx: InboundMsgIds<32> = InboundMsgIds::new(Role::Server, TimeWindow::DEFAULT);
    let now = UnixTime(T0);
    let captured = id_at(T0, 0x1001);
    rx.accept(captured, now, true).unwrap();
    // Inside the window: the replay is a duplicate.
    assert_eq!(rx.accept(captured, now, true), Err(MsgIdReject::Duplicate));
    // After 32 newer messages the id has left the window: the replay is older than all remembered.
    for i in 0..32u32 {
        rx.accept(id_at(T0, 0x2001 + 4 * i), now, true).unwrap();
    }
    assert!(!rx.window().contains(captured));
    assert_eq!(rx.accept(captured, now, true), Err(MsgIdReject::OlderThanWindow));
    // Replayed much later: the time window refuses it even with an empty replay window.
    rx.reset();
    assert_eq!(rx.accept(captured, UnixTime(T0 + 301), true), Err(MsgIdReject::TooLow));
}

/// A DC packet to the client of `p` (sealed with the pair's key, as the DC would), carrying `body` under `msg_id`.
fn dc_packet(p: &session_util::Pair, msg_id: MsgId, seq_no: u32, body: &[u8]) -> Vec<u8> {
    let h = MessageHeader {
        salt: 0,
        session_id: p.c.session_id(),
        msg_id: msg_id.0,
        seq_no,
    };
    let mut out = vec![0u8; body.len() + 2048];
    let e = packet::encrypt(
        &session_util::key(p.seed),
        Direction::ServerToClient,
        &h,
        body,
        &mut StdRng::seed_from_u64(msg_id.0),
        &mut out,
    )
    .unwrap();
    out.truncate(e.len);
    out
}

/// The DC's Unix seconds at the pair's current instant (its clock reads `UNIX0` at instant 1000 s).
fn dc_unix(p: &session_util::Pair) -> u64 {
    session_util::UNIX0 + p.now.as_secs() - 1000
}

#[test]
fn atk_b08_msg_id_negative_suite() {
    // Client receiving from the server, in the default configuration: a client on a stored key (`Session::client`, as
    // `Connection::client` builds it) whose clock starts unsynced, after one good exchange with its DC.
    let mut p = session_util::Pair::new(80);
    assert!(!p.c.clock().is_synced());
    let q = p.query(&session_util::api_body(1, 1));
    assert_eq!(p.results_for(q).len(), 1);
    let t = dc_unix(&p);
    for i in 0..8u32 {
        let pk = dc_packet(&p, id_at(t, 0x1000 + 4 * i + 1), 2, &session_util::api_body(2, 0));
        assert!(p.deliver_c(&pk).is_ok(), "good id {i}");
    }
    let events = p.client_events.len();
    let cases: &[MsgId] = &[
        MsgId(0),                       // parity
        MsgId(1),                       // 1970: too low
        MsgId::from_wire(-1),           // too high
        MsgId::from_wire(i64::MIN | 1), // too high
        id_at(t, 0x2000),               // parity
        id_at(t, 0x2002),               // parity
        id_at(t - 400, 0x2001),         // too low
        id_at(t - 3600, 0x2001),        // too low: held back an hour
        id_at(t + 60, 0x2001),          // too high
        id_at(t, 0x1001),               // duplicate
    ];
    let dropped = p.c.stats().dropped;
    for (i, &id) in cases.iter().enumerate() {
        // Content-related (odd seq_no): an accepted one would surface as an update.
        let pk = dc_packet(&p, id, 3, &session_util::api_body(3, i));
        assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId), "id {id}");
    }
    assert_eq!(p.client_events.len(), events, "a refused message reached the host");
    assert_eq!(p.c.stats().dropped, dropped + cases.len() as u64);
    // No refusal changed what is accepted next: a fresh id passes.
    let pk = dc_packet(&p, id_at(t, 0x3001), 3, &session_util::api_body(4, 0));
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events.len(), events + 1);
    // Below a full replay window (code 20's case): fill it, then an id under all of them is refused.
    for i in 0..DEFAULT_REPLAY_WINDOW as u32 {
        let pk = dc_packet(&p, id_at(t, 0x4000 + 4 * i + 1), 2, &session_util::api_body(5, 0));
        assert!(p.deliver_c(&pk).is_ok());
    }
    let pk = dc_packet(&p, id_at(t, 0x3ffd), 3, &session_util::api_body(6, 0));
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
    assert_eq!(p.client_events.len(), events + 1);

    let now = UnixTime(T0);
    // Server receiving from a client: each error code as the server would answer it.
    let mut srv: InboundMsgIds<8> = InboundMsgIds::new(Role::Client, TimeWindow::DEFAULT);
    srv.accept(id_at(T0, 0x100), now, true).unwrap();
    let codes: &[(MsgId, Option<i32>)] = &[
        (id_at(T0, 0x101), Some(18)),
        (id_at(T0, 0x103), Some(18)),
        (id_at(T0 - 301, 0x100), Some(16)),
        (id_at(T0 + 31, 0x100), Some(17)),
        (id_at(T0, 0x100), None),
    ];
    for &(id, code) in codes {
        let e = srv.accept(id, now, true).unwrap_err();
        assert_eq!(e.bad_msg_code(false).map(BadMsgCode::code), code, "id {id}");
    }
    assert_eq!(
        srv.accept(id_at(T0, 0x100), now, true)
            .unwrap_err()
            .bad_msg_code(true)
            .map(BadMsgCode::code),
        Some(19)
    );
    let mut full: InboundMsgIds<2> = InboundMsgIds::new(Role::Client, TimeWindow::DEFAULT);
    full.accept(id_at(T0, 0x200), now, true).unwrap();
    full.accept(id_at(T0, 0x204), now, true).unwrap();
    assert_eq!(
        full.accept(id_at(T0, 0x100), now, true)
            .unwrap_err()
            .bad_msg_code(false)
            .map(BadMsgCode::code),
        Some(20)
    );
}

// --------------------------------------------------------------------------------------------- seq_no (item 37)

#[test]
fn chk_037_seqno_generation() {
    let mut g = SeqNoGen::new();
    // query, ack, query, container, ping, ack
    let seq: Vec<u32> = [true, false, true, false, true, false]
        .iter()
        .map(|&c| g.next(c).unwrap())
        .collect();
    assert_eq!(seq, [1, 2, 3, 4, 5, 6]);
    let mut g = SeqNoGen::new();
    assert_eq!(g.next(false).unwrap(), 0);
    assert_eq!(g.next(false).unwrap(), 0);
    assert_eq!(g.next(true).unwrap(), 1);
    assert_eq!(g.next(true).unwrap(), 3);
    assert_eq!(g.content_count(), 2);
}

#[test]
fn chk_037_server_rejects_wrong_parity_34_35() {
    let c: SeqNoChecker = SeqNoChecker::new();
    let e = c.check(MsgId(4), 2, true).unwrap_err();
    assert_eq!(e, SeqNoError::OddExpected);
    assert_eq!(e.bad_msg_code().code(), 35);
    let e = c.check(MsgId(4), 1, false).unwrap_err();
    assert_eq!(e, SeqNoError::EvenExpected);
    assert_eq!(e.bad_msg_code().code(), 34);
    assert_eq!(c.check(MsgId(4), 1, true), Ok(()));
    assert_eq!(c.check(MsgId(4), 0, false), Ok(()));
}

#[test]
fn chk_037_server_rejects_too_low_32_and_too_high_33() {
    let mut c: SeqNoChecker = SeqNoChecker::new();
    c.check_and_record(MsgId(100), 5, true).unwrap();
    // A higher msg_id with a lower seq_no, or reusing the odd 5: too low.
    assert_eq!(c.check(MsgId(104), 3, true), Err(SeqNoError::TooLow));
    assert_eq!(c.check(MsgId(104), 5, true), Err(SeqNoError::TooLow));
    assert_eq!(c.check(MsgId(104), 4, false), Err(SeqNoError::TooLow));
    assert_eq!(SeqNoError::TooLow.bad_msg_code().code(), 32);
    // A lower msg_id with a higher seq_no, or reusing the odd 5: too high.
    assert_eq!(c.check(MsgId(96), 7, true), Err(SeqNoError::TooHigh));
    assert_eq!(c.check(MsgId(96), 5, true), Err(SeqNoError::TooHigh));
    assert_eq!(c.check(MsgId(96), 6, false), Err(SeqNoError::TooHigh));
    assert_eq!(SeqNoError::TooHigh.bad_msg_code().code(), 33);
    // Legitimate neighbours: an earlier message with 4 or 3, a later service message with 6, equal even values.
    assert_eq!(c.check(MsgId(96), 3, true), Ok(()));
    assert_eq!(c.check(MsgId(96), 4, false), Ok(()));
    c.check_and_record(MsgId(104), 6, false).unwrap();
    c.check_and_record(MsgId(108), 6, false).unwrap();
    c.check_and_record(MsgId(112), 7, true).unwrap();
    assert_eq!(c.highest_content_seq_no(), Some(7));
    assert_eq!(c.check(MsgId(110), 8, false), Err(SeqNoError::TooHigh));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Against the spec's definition evaluated over every accepted message.
    #[test]
    fn chk_037_server_check_matches_spec_definition(
        msgs in proptest::collection::vec((0u64..64, 0u32..24, any::<bool>()), 0..120)
    ) {
        let mut c: SeqNoChecker<256> = SeqNoChecker::new();
        let mut accepted: Vec<(u64, u32)> = Vec::new();
        for (id, seq, content) in msgs {
            let odd = seq % 2 == 1;
            let expect = if content && !odd {
                Err(SeqNoError::OddExpected)
            } else if !content && odd {
                Err(SeqNoError::EvenExpected)
            } else if accepted.iter().any(|&(i, s)| i < id && (s > seq || (s == seq && odd))) {
                Err(SeqNoError::TooLow)
            } else if accepted.iter().any(|&(i, s)| i > id && (s < seq || (s == seq && odd))) {
                Err(SeqNoError::TooHigh)
            } else {
                Ok(())
            };
            let dup = accepted.iter().any(|&(i, _)| i == id);
            prop_assert_eq!(c.check(MsgId(id), seq, content), expect);
            if expect.is_ok() && !dup {
                c.record(MsgId(id), seq);
                accepted.push((id, seq));
            }
        }
    }

    /// A generated stream is always accepted by the server check, also when delivered out of order.
    #[test]
    fn chk_037_generated_stream_accepted(kinds in proptest::collection::vec(any::<bool>(), 1..100), seed in any::<u64>()) {
        let mut g = SeqNoGen::new();
        let mut stream: Vec<(MsgId, u32, bool)> =
            kinds.iter().enumerate().map(|(i, &k)| (MsgId(4 * (i as u64 + 1)), g.next(k).unwrap(), k)).collect();
        // Deterministic shuffle.
        let mut s = seed | 1;
        for i in (1..stream.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            stream.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut c: SeqNoChecker = SeqNoChecker::new();
        for (id, seq, k) in stream {
            prop_assert_eq!(c.check_and_record(id, seq, k), Ok(()));
        }
    }
}

// ------------------------------------------------------------------------------------------- salts (item 35, 44)

#[test]
fn chk_035_client_salt_changes_only_with_proof() {
    let now = Instant::from_secs(10);
    let mut t: SentTracker<8> = tracker();
    t.track(now, sent(400, SentKind::RpcQuery, 10)).unwrap();
    let mut salts: ClientSalts = ClientSalts::new(0x1111, Duration::from_secs(600));
    // bad_server_salt naming an id we never sent: no proof, nothing to call.
    assert!(t.reference(MsgId(404)).is_none());
    assert_eq!(salts.current(), 0x1111);
    let proof = t.reference(MsgId(400)).unwrap();
    salts.adopt_bad_server_salt(&proof, 0x2222);
    assert_eq!(salts.current(), 0x2222);
    // A response salt needs the proof of an RPC query.
    let r = t.resolve_rpc(MsgId(400)).unwrap();
    salts.adopt_response_salt(&r.proof, 0x3333).unwrap();
    assert_eq!(salts.current(), 0x3333);
    t.track(now, sent(500, SentKind::Service, 10)).unwrap();
    let svc = t.reference(MsgId(500)).unwrap();
    assert_eq!(salts.adopt_response_salt(&svc, 0x4444), Err(SaltError::WrongRequest));
    assert_eq!(salts.current(), 0x3333);
    salts.adopt_new_session_salt(0x5555);
    assert_eq!(salts.current(), 0x5555);
}

fn fs(since: u64, until: u64, salt: u64) -> FutureSalt {
    FutureSalt {
        valid_since: UnixTime(since),
        valid_until: UnixTime(until),
        salt,
    }
}

#[test]
fn chk_035_future_salts_select_and_refresh() {
    let now = Instant::from_secs(1);
    let mut t: SentTracker<8> = tracker();
    t.track(now, sent(800, SentKind::GetFutureSalts, 8)).unwrap();
    let mut salts: ClientSalts<8> = ClientSalts::new(0xaa, Duration::from_secs(600));
    assert!(salts.should_fetch(UnixTime(T0)));
    let proof = t.resolve_future_salts(MsgId(800)).unwrap().proof;
    let list = [
        fs(T0 + 3600, T0 + 7200, 2),
        fs(T0 - 10, T0 + 3600, 1),
        fs(T0 - 7200, T0 - 3600, 9),
    ];
    assert_eq!(salts.store_future_salts(&proof, UnixTime(T0), &list), Ok(1));
    assert_eq!(salts.current(), 1); // the expired one was dropped, the valid one adopted
    assert_eq!(salts.fetch_due_at(), UnixTime(T0 + 7200 - 600));
    assert!(!salts.should_fetch(UnixTime(T0 + 6000)));
    assert!(salts.should_fetch(UnixTime(T0 + 6600)));
    assert_eq!(salts.advance(UnixTime(T0 + 3599)), 1);
    assert_eq!(salts.advance(UnixTime(T0 + 3600)), 2);
    assert!(salts.future().is_empty());
    // A second future_salts answering the same request is refused: the request is settled.
    assert!(t.resolve_future_salts(MsgId(800)).is_none());
}

#[test]
fn chk_044_future_salts_bounds() {
    let now = Instant::from_secs(1);
    let mut t: SentTracker<8> = tracker();
    t.track(now, sent(800, SentKind::GetFutureSalts, 8)).unwrap();
    t.track(now, sent(804, SentKind::RpcQuery, 8)).unwrap();
    let mut salts: ClientSalts = ClientSalts::new(0xaa, Duration::from_secs(600));
    let wrong = t.reference(MsgId(804)).unwrap();
    assert_eq!(
        salts.store_future_salts(&wrong, UnixTime(T0), &[fs(T0, T0 + 10, 5)]),
        Err(SaltError::WrongRequest)
    );
    // A future_salts answering our ping or query is not accepted by the tracker either.
    assert!(t.resolve_future_salts(MsgId(804)).is_none());
    let proof = t.resolve_future_salts(MsgId(800)).unwrap().proof;
    assert_eq!(
        salts.store_future_salts(&proof, UnixTime(T0), &[]),
        Err(SaltError::Empty)
    );
    let many: Vec<FutureSalt> = (0..65).map(|i| fs(T0 + i * 10, T0 + i * 10 + 10, i + 1)).collect();
    assert_eq!(
        salts.store_future_salts(&proof, UnixTime(T0), &many),
        Err(SaltError::TooMany)
    );
    assert_eq!(
        salts.store_future_salts(&proof, UnixTime(T0), &[fs(T0, T0, 5)]),
        Err(SaltError::BadRange)
    );
    assert_eq!(salts.current(), 0xaa);
    assert_eq!(salts.store_future_salts(&proof, UnixTime(T0), &many[..64]), Ok(63));
}

#[test]
fn chk_035_server_accepts_previous_for_1800s() {
    let policy = ServerSaltPolicy::DEFAULT;
    let mut s = ServerSalts::new(0x1234, UnixTime(T0), policy).unwrap();
    assert_eq!(s.check(0x1234, UnixTime(T0)), Ok(()));
    assert!(!s.rotation_due(UnixTime(T0 + 86_399)));
    assert!(s.rotation_due(UnixTime(T0 + 86_400)));
    let r = T0 + 86_400;
    s.rotate(UnixTime(r), 0x5678).unwrap();
    assert_eq!(s.next_rotation(), UnixTime(r + 86_400));
    assert_eq!(s.check(0x5678, UnixTime(r)), Ok(()));
    assert_eq!(s.check(0x1234, UnixTime(r + 1799)), Ok(()));
    let e = s.check(0x1234, UnixTime(r + 1800)).unwrap_err();
    assert_eq!(e.new_salt, 0x5678);
    assert_eq!(e.bad_msg_code().code(), 48);
    assert_eq!(s.check(0x9999, UnixTime(r)).unwrap_err().new_salt, 0x5678);
    assert_eq!(s.rotate(UnixTime(r), 0), Err(SaltError::ZeroSalt));
}

#[test]
fn chk_035_server_salt_zero_first_message_gets_bad_server_salt() {
    let s = ServerSalts::new(0xdead_beef, UnixTime(T0), ServerSaltPolicy::DEFAULT).unwrap();
    assert_eq!(s.check(0, UnixTime(T0)).unwrap_err().new_salt, 0xdead_beef);
    assert_eq!(
        ServerSalts::new(0, UnixTime(T0), ServerSaltPolicy::DEFAULT),
        Err(SaltError::ZeroSalt)
    );
}

#[test]
fn atk_b20_replayed_bad_server_salt_does_not_change_salt() {
    let clock0 = Clock::from_unix_hint(Instant::ZERO, UnixTime(T0));
    let mut ids = MsgIdGen::new(Role::Client);
    let mut t: SentTracker<8> = tracker();
    let now = Instant::from_secs(1);
    let first = ids.next(now, &clock0).unwrap();
    t.track(now, sent(first.0, SentKind::RpcQuery, 100)).unwrap();
    let mut salts: ClientSalts = ClientSalts::new(0x01, Duration::from_secs(600));

    // The genuine bad_server_salt about `first`: adopted, and the query is resent under a new id.
    let proof = t.reference(first).unwrap();
    salts.adopt_bad_server_salt(&proof, 0x02);
    let resent = ids.next(now, &clock0).unwrap();
    t.replace_id(first, resent, 3, now).unwrap();
    // Later the server rotates to 0x03 (via future_salts, say).
    salts.adopt_new_session_salt(0x03);
    let state = (t.clone(), salts.clone());

    // An attacker replays the old bad_server_salt (naming `first`, carrying 0x02): no proof is issued.
    assert!(t.reference(first).is_none());
    assert_eq!((t.clone(), salts.clone()), state);
    assert_eq!(salts.current(), 0x03);
    // Nor for an id we never sent, nor for one already answered.
    assert!(t.reference(MsgId(first.0 + 8)).is_none());
    assert!(t.resolve_rpc(resent).is_some());
    assert!(t.reference(resent).is_none());
}

// ----------------------------------------------------------------------------- tracker, acks, budget (42-54)

#[test]
fn chk_054_tracker_count_limit_plus_one_is_backpressure() {
    let mut t: SentTracker<4> = tracker();
    for i in 1..=4 {
        t.track(Instant::ZERO, sent(i * 4, SentKind::RpcQuery, 1)).unwrap();
    }
    let before = t.clone();
    assert_eq!(t.can_track(1), Err(TrackError::QueueFull));
    assert_eq!(
        t.track(Instant::ZERO, sent(20, SentKind::RpcQuery, 1)),
        Err(TrackError::QueueFull)
    );
    assert_eq!(t, before);
    assert!(t.resolve_rpc(MsgId(4)).is_some());
    t.track(Instant::ZERO, sent(20, SentKind::RpcQuery, 1)).unwrap();
    assert_eq!(
        t.track(Instant::ZERO, sent(8, SentKind::Service, 0)),
        Err(TrackError::QueueFull)
    );
}

#[test]
fn chk_054_tracker_bytes_limit_plus_one_is_backpressure() {
    let mut t: SentTracker<8> = SentTracker::new(1000, ResendPolicy::DEFAULT);
    t.track(Instant::ZERO, sent(4, SentKind::RpcQuery, 600)).unwrap();
    t.track(Instant::ZERO, sent(8, SentKind::RpcQuery, 400)).unwrap();
    assert_eq!(t.bytes(), 1000);
    let before = t.clone();
    assert_eq!(
        t.track(Instant::ZERO, sent(12, SentKind::RpcQuery, 1)),
        Err(TrackError::BytesFull)
    );
    assert_eq!(t.can_track(u32::MAX), Err(TrackError::BytesFull));
    assert_eq!(t, before);
    t.track(Instant::ZERO, sent(12, SentKind::Container, 0)).unwrap();
    assert_eq!(
        t.track(Instant::ZERO, sent(12, SentKind::RpcQuery, 0)),
        Err(TrackError::DuplicateId)
    );
}

#[test]
fn chk_054_ack_queue_limit_plus_one_is_backpressure() {
    let mut q: AckQueue<8> = AckQueue::new(16, Duration::from_secs(60));
    for i in 0..8 {
        q.push(Instant::ZERO, MsgId(i * 4 + 1)).unwrap();
    }
    let before = q.clone();
    assert_eq!(q.push(Instant::ZERO, MsgId(1001)), Err(AckQueueFull));
    assert_eq!(q, before);
    // A full queue of ids already pending still accepts a retransmission's id (nothing new to store).
    assert_eq!(q.push(Instant::ZERO, MsgId(1)), Ok(()));
    assert_eq!(q.take_batch(1).count(), 1);
    q.push(Instant::ZERO, MsgId(1001)).unwrap();
}

#[test]
fn chk_054_future_salts_limit_plus_one_is_backpressure() {
    let mut t: SentTracker<4> = tracker();
    t.track(Instant::ZERO, sent(4, SentKind::GetFutureSalts, 1)).unwrap();
    let proof = t.resolve_future_salts(MsgId(4)).unwrap().proof;
    let mut salts: ClientSalts<4> = ClientSalts::new(7, Duration::from_secs(60));
    let five: Vec<FutureSalt> = (0..5).map(|i| fs(T0 + i * 100, T0 + i * 100 + 100, i + 10)).collect();
    assert_eq!(
        salts.store_future_salts(&proof, UnixTime(T0), &five),
        Err(SaltError::TooMany)
    );
    assert_eq!(salts.current(), 7);
    assert_eq!(salts.store_future_salts(&proof, UnixTime(T0), &five[..4]), Ok(3));
}

#[test]
fn chk_054_resend_budget_limit_plus_one_is_backpressure() {
    let mut b = ResendBudget::new(Instant::ZERO, 4096, 1024);
    assert_eq!(b.try_spend(Instant::ZERO, 4097), Err(BudgetExhausted));
    assert_eq!(b.available(Instant::ZERO), 4096);
    b.try_spend(Instant::ZERO, 4096).unwrap();
    assert_eq!(b.try_spend(Instant::ZERO, 1), Err(BudgetExhausted));
}

#[test]
fn chk_049_ack_batch_capped_at_8192() {
    let mut q: Box<AckQueue<10_000>> = Box::new(AckQueue::new(16, Duration::from_secs(60)));
    for i in 0..9000u64 {
        q.push(Instant::ZERO, MsgId(i * 4 + 1)).unwrap();
    }
    let batch: AckBatch<'_, 10_000> = q.take_batch(usize::MAX);
    assert_eq!(batch.len(), 8192);
    let ids: Vec<MsgId> = batch.collect();
    assert_eq!(ids.len(), 8192);
    assert_eq!(ids[0], MsgId(1));
    assert_eq!(q.len(), 9000 - 8192);
    assert_eq!(q.take_batch(usize::MAX).count(), 808);
    assert!(q.is_empty());
}

#[test]
fn atk_b16_resend_flood_within_budget() {
    let limits = Limits::DEFAULT;
    let mut b = ResendBudget::new(Instant::ZERO, limits.resend_burst_bytes, limits.resend_bytes_per_sec);
    // 10^4 msg_resend_req per second for 10 s, each asking for a 4 KiB message.
    let (mut sent, mut refused) = (0u64, 0u64);
    for i in 0..100_000u64 {
        let now = Instant::from_micros(i * 100);
        match b.try_spend(now, 4096) {
            Ok(()) => sent += 4096,
            Err(BudgetExhausted) => refused += 1,
        }
    }
    let bound = limits.resend_burst_bytes + limits.resend_bytes_per_sec * 10;
    assert!(sent <= bound, "sent {sent} > {bound}");
    assert!(sent >= bound - 4096 * 2, "budget wasted: {sent}");
    assert!(refused > 90_000);
}

#[test]
fn chk_043_notification_for_unsent_id_ignored() {
    let mut t: SentTracker<8> = tracker();
    t.track(Instant::ZERO, sent(400, SentKind::RpcQuery, 10)).unwrap();
    let before = t.clone();
    let mut clock = Clock::from_unix_hint(Instant::ZERO, UnixTime(T0));
    let clock_before = clock;
    for unsent in [MsgId(0), MsgId(396), MsgId(404), MsgId(401), MsgId(u64::MAX)] {
        assert!(t.reference(unsent).is_none());
        assert_eq!(t.ack(unsent), None);
        assert!(t.resolve_rpc(unsent).is_none());
        assert_eq!(t.mark_resent(unsent, Instant::ZERO, None), Err(TrackError::UnknownId));
        assert_eq!(
            t.replace_id(unsent, MsgId(900), 9, Instant::ZERO),
            Err(TrackError::UnknownId)
        );
    }
    assert_eq!(t, before);
    // Only a tracked id yields the proof needed to move the clock.
    if let Some(p) = t.reference(MsgId(404)) {
        clock.sync_to_server_msg_id(&p, Instant::ZERO, MsgId(1));
    }
    assert_eq!(clock, clock_before);
    assert!(BadMsgCode::from_code(21).is_err());
}

#[test]
fn chk_042_rpc_result_duplicate_and_unknown_ignored() {
    let mut t: SentTracker<8> = tracker();
    t.track(Instant::ZERO, sent(400, SentKind::RpcQuery, 10)).unwrap();
    t.track(Instant::ZERO, sent(404, SentKind::Ping { ping_id: 7 }, 10))
        .unwrap();
    assert!(t.resolve_rpc(MsgId(404)).is_none(), "a result naming a ping");
    assert!(t.resolve_rpc(MsgId(401)).is_none(), "wrong parity");
    let r = t.resolve_rpc(MsgId(400)).unwrap();
    assert_eq!(r.handle, BodyHandle(400));
    assert_eq!(r.bytes, 10);
    assert!(t.resolve_rpc(MsgId(400)).is_none(), "duplicate result");
    assert_eq!(t.bytes(), 10);
}

#[test]
fn chk_045_unmatched_pong_ignored() {
    let mut t: SentTracker<8> = tracker();
    t.track(Instant::ZERO, sent(400, SentKind::Ping { ping_id: 0xabc }, 10))
        .unwrap();
    t.track(Instant::ZERO, sent(404, SentKind::RpcQuery, 10)).unwrap();
    let before = t.clone();
    assert!(t.resolve_pong(MsgId(400), 0xabd).is_none(), "wrong ping_id");
    assert!(t.resolve_pong(MsgId(408), 0xabc).is_none(), "wrong msg_id");
    assert!(t.resolve_pong(MsgId(404), 0xabc).is_none(), "names a query");
    assert_eq!(t, before);
    assert!(t.resolve_pong(MsgId(400), 0xabc).is_some());
    assert!(t.resolve_pong(MsgId(400), 0xabc).is_none(), "second pong");
}

#[test]
fn chk_047_state_info_requires_our_request() {
    let mut t: SentTracker<8> = tracker();
    t.track(Instant::ZERO, sent(400, SentKind::StateReq, 10)).unwrap();
    t.track(Instant::ZERO, sent(404, SentKind::RpcQuery, 10)).unwrap();
    assert!(t.resolve_state_req(MsgId(404)).is_none());
    assert!(t.resolve_state_req(MsgId(400)).is_some());
    assert!(t.resolve_state_req(MsgId(400)).is_none());
}

#[test]
fn chk_046_new_session_created_requeues_older() {
    let mut t: SentTracker<8> = tracker();
    let t0 = Instant::from_secs(100);
    for id in [400u64, 404, 408, 412] {
        t.track(t0, sent(id, SentKind::RpcQuery, 10)).unwrap();
    }
    t.track(t0, sent(396, SentKind::Service, 10)).unwrap();
    t.track(t0, sent(392, SentKind::Container, 0)).unwrap();
    assert_eq!(t.ack(MsgId(404)), Some(Acked::AwaitingAnswer));
    assert!(matches!(t.ack(MsgId(396)), Some(Acked::Released(_))));
    let now = Instant::from_secs(101);
    assert_eq!(t.next_due(now), None);
    // The server's new session starts at 408: 400 and 404 (even though acked) must be resent.
    assert_eq!(t.requeue_before(MsgId(408), now), 2);
    let d = t.next_due(now).unwrap();
    assert_eq!(d.id, MsgId(400));
    t.mark_resent(d.id, now, None).unwrap();
    let d = t.next_due(now).unwrap();
    assert_eq!(d.id, MsgId(404));
    t.mark_resent(d.id, now, None).unwrap();
    assert_eq!(t.next_due(now), None, "408 and 412 keep their schedule");
    assert_eq!(t.poll_timeout(), Some(t0.saturating_add(ResendPolicy::DEFAULT.initial)));
}

#[test]
fn limits_table_matches_type_defaults() {
    let l = Limits::DEFAULT;
    // Capacities are const generics whose defaults are the DEFAULT_* constants; Limits holds run-time policy only.
    let w: ReplayWindow = ReplayWindow::new();
    assert_eq!(w.capacity(), mtproto_sansio::session::limits::DEFAULT_REPLAY_WINDOW);
    assert_eq!(TimeWindow::DEFAULT.past, l.msg_id_max_past);
    assert_eq!(TimeWindow::DEFAULT.future, l.msg_id_max_future);
    assert_eq!(ServerSaltPolicy::DEFAULT.grace, l.salt_grace);
    assert_eq!(ServerSaltPolicy::DEFAULT.rotation, l.salt_rotation);
    assert_eq!(ResendPolicy::DEFAULT.max_attempts, l.max_resend_attempts);
    assert_eq!(l.max_ack_ids, 8192);
    assert_eq!(l.max_container_messages, 1024);
}

#[test]
fn accessors_report_state() {
    let clock = Clock::from_unix_hint(Instant::ZERO, UnixTime(T0));
    let mut g = MsgIdGen::new(Role::Server);
    assert_eq!(g.role(), Role::Server);
    assert_eq!(g.last(), None);
    let id = g.next(Instant::ZERO, &clock).unwrap();
    assert_eq!(g.last(), Some(id));

    let mut w: ReplayWindow<4> = ReplayWindow::new();
    w.insert(MsgId(9)).unwrap();
    w.insert(MsgId(5)).unwrap();
    assert_eq!((w.lowest(), w.highest()), (Some(MsgId(5)), Some(MsgId(9))));

    let mut t: SentTracker<4> = tracker();
    t.track(Instant::ZERO, sent(4, SentKind::GetFutureSalts, 1)).unwrap();
    assert_eq!(t.kind_of(MsgId(4)), Some(SentKind::GetFutureSalts));
    assert_eq!(t.kind_of(MsgId(8)), None);

    let s = ServerSalts::new(42, UnixTime(T0), ServerSaltPolicy::DEFAULT).unwrap();
    assert_eq!(s.current(), 42);
}

#[test]
fn chk_035_bad_server_salt_drops_stale_future_salts() {
    let mut t: SentTracker<4> = tracker();
    t.track(Instant::ZERO, sent(4, SentKind::GetFutureSalts, 1)).unwrap();
    t.track(Instant::ZERO, sent(8, SentKind::RpcQuery, 1)).unwrap();
    let proof = t.resolve_future_salts(MsgId(4)).unwrap().proof;
    let mut salts: ClientSalts = ClientSalts::new(1, Duration::from_secs(600));
    salts
        .store_future_salts(
            &proof,
            UnixTime(T0),
            &[fs(T0, T0 + 3600, 2), fs(T0 + 3600, T0 + 7200, 3)],
        )
        .unwrap();
    assert!(!salts.should_fetch(UnixTime(T0)));
    let bad = t.reference(MsgId(8)).unwrap();
    salts.adopt_bad_server_salt(&bad, 9);
    assert_eq!(
        salts.advance(UnixTime(T0 + 3700)),
        9,
        "a stale future salt must not override the server's"
    );
    assert!(salts.should_fetch(UnixTime(T0)));
}
