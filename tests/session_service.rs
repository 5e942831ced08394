//! Service messages between the two engines: `http_wait` (the client's send, the DC's held long poll),
//! `msg_resend_req` both ways, user pings, and `gzip_packed` on send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use core::time::Duration;

use mtproto_sansio::crypto::packet::{self, Direction};
use mtproto_sansio::session::{MsgId, MsgKind, SessionConfig};
use mtproto_sansio::tl::{
    self, HttpWait, MsgContainer, MsgResendAnsReq, MsgResendReq, MsgsStateInfo, MsgsStateReq, Reader, TlRead,
};
use session_util::{Ev, Pair, api_body, key};

/// A decrypted packet: (msg_id, seq_no, body).
fn open(seed: u64, dir: Direction, pkt: &[u8]) -> (u64, u32, Vec<u8>) {
    let mut buf = pkt.to_vec();
    let v = packet::decrypt(&key(seed), dir, &mut buf).unwrap();
    (v.msg_id(), v.seq_no(), v.body().to_vec())
}

fn ctor(body: &[u8]) -> u32 {
    Reader::new(body).peek_constructor().unwrap()
}

/// The (msg_id, seq_no, body) of every message a packet carries, container members included.
fn messages(seed: u64, dir: Direction, pkt: &[u8]) -> Vec<(u64, u32, Vec<u8>)> {
    let (id, seq, body) = open(seed, dir, pkt);
    if ctor(&body) == MsgContainer::CONSTRUCTOR {
        let c = MsgContainer::decode(&body).unwrap();
        c.iter()
            .map(|m| (m.msg_id as u64, m.seqno as u32, m.body.to_vec()))
            .collect()
    } else {
        vec![(id, seq, body)]
    }
}

/// A pair whose client has completed one query (salt and session settled).
fn synced(seed: u64) -> Pair {
    let mut p = Pair::new(seed);
    let q = p.query(&api_body(1, 2));
    assert_eq!(p.results_for(q).len(), 1);
    p
}

const POLL: HttpWait = HttpWait {
    max_delay: 0,
    wait_after: 0,
    max_wait: 5_000,
};

fn ms(p: &mut Pair, n: u64) {
    p.now = p.now.saturating_add(Duration::from_millis(n));
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
}

fn update(tag: u32) -> Vec<u8> {
    api_body(0x5550_0000 | tag, 1)
}

// ---------------------------------------------------------------- http_wait

#[test]
fn chk_037_http_wait_even_seq_no_unacked_never_resent() {
    let mut p = synced(1);
    let id = p.c.http_wait(p.now, POLL).unwrap();
    let out = p.c2s();
    assert_eq!(out.len(), 1);
    // With the pending acks of the first result, in a container.
    let msgs = messages(1, Direction::ClientToServer, &out[0]);
    let (mid, seq, body) = msgs.iter().find(|m| MsgId(m.0) == id).cloned().unwrap();
    assert_eq!(MsgId(mid), id);
    assert_eq!(seq % 2, 0, "http_wait is not content-related");
    assert_eq!(ctor(&body), HttpWait::CONSTRUCTOR);
    assert_eq!(HttpWait::decode(&body).unwrap(), POLL);
    assert_eq!(p.c.in_flight(), 0, "neither kept nor tracked");

    let (acks, bad) = (p.s.pending_acks(), p.s.stats().bad_msgs);
    p.deliver_s(&out[0]).unwrap();
    assert_eq!(p.s.stats().bad_msgs, bad, "no bad_msg_notification (34/35)");
    assert_eq!(p.s.pending_acks(), acks, "never acknowledged");
    let lp = p.s.long_poll().unwrap();
    assert_eq!((lp.since, lp.max_wait), (p.now, Duration::from_secs(5)));

    // Long past every resend interval, it never travels again.
    for _ in 0..10 {
        p.advance(30);
        for pkt in p.c2s() {
            for (m, _, b) in messages(1, Direction::ClientToServer, &pkt) {
                assert_ne!(MsgId(m), id);
                assert_ne!(ctor(&b), HttpWait::CONSTRUCTOR);
            }
        }
    }
}

#[test]
fn http_wait_rides_in_the_container_and_a_second_call_replaces_it() {
    let mut p = synced(2);
    let a = p.c.http_wait(p.now, POLL).unwrap();
    let later = HttpWait {
        max_wait: 9_000,
        ..POLL
    };
    assert_eq!(p.c.http_wait(p.now, later).unwrap(), a);
    let q = p.c.send(p.now, &api_body(7, 3), MsgKind::Query).unwrap();
    let out = p.c2s();
    assert_eq!(out.len(), 1);
    let msgs = messages(2, Direction::ClientToServer, &out[0]);
    let waits: Vec<_> = msgs.iter().filter(|m| ctor(&m.2) == HttpWait::CONSTRUCTOR).collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(HttpWait::decode(&waits[0].2).unwrap(), later);
    assert_eq!(waits[0].1 % 2, 0);
    assert!(msgs.iter().any(|m| MsgId(m.0) == q && m.1 % 2 == 1));
    p.auto_answer = false;
    p.deliver_s(&out[0]).unwrap();
    assert_eq!(p.s.long_poll().unwrap().max_wait, Duration::from_secs(9));
    // The DC's ack of the query waits for the held poll; answering it releases the poll at once (wait_after 0).
    assert!(p.s2c().is_empty());
    let req = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Ev::Request(id, b) if *id == q => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    p.s.answer(p.now, q, &req).unwrap();
    let back = p.s2c();
    assert_eq!(back.len(), 1);
    assert!(p.s.long_poll().is_none());
    p.deliver_c(&back[0]).unwrap();
    assert_eq!(p.results_for(q), vec![&Ev::Result(q, req)]);
}

#[test]
fn http_wait_refused_on_the_dc_side() {
    let mut p = synced(3);
    assert_eq!(
        p.s.http_wait(p.now, POLL),
        Err(mtproto_sansio::session::SendError::NotReady)
    );
}

#[test]
fn long_poll_wait_after_then_max_delay() {
    let mut p = synced(4);
    p.c.http_wait(
        p.now,
        HttpWait {
            max_delay: 1_000,
            wait_after: 300,
            max_wait: 10_000,
        },
    )
    .unwrap();
    for pkt in p.c2s() {
        p.deliver_s(&pkt).unwrap();
    }
    let t0 = p.now;
    let at = |x: u64| t0.saturating_add(Duration::from_millis(x));
    assert_eq!(p.s.poll_timeout(), Some(at(10_000)), "idle: max_wait");
    let mut sent = Vec::new();
    // Updates at 100, 350, 600, 850 ms: wait_after (300 ms) keeps moving, max_delay (1 s after the first) wins.
    for (i, t) in [100u64, 350, 600, 850].into_iter().enumerate() {
        let step = t - p.now.saturating_duration_since(t0).as_millis() as u64;
        ms(&mut p, step);
        assert!(p.s2c().is_empty(), "held at {t} ms");
        let body = update(i as u32);
        p.s.send(p.now, &body, MsgKind::Notice).unwrap();
        sent.push(body);
        let due = (t + 300).min(1_100);
        assert_eq!(p.s.poll_timeout(), Some(at(due)), "after the update at {t} ms");
        assert!(p.s2c().is_empty());
    }
    ms(&mut p, 249);
    assert!(p.s2c().is_empty(), "held until 1100 ms");
    ms(&mut p, 1);
    let out = p.s2c();
    assert_eq!(out.len(), 1, "all four in one answer");
    assert!(p.s.long_poll().is_none());
    p.deliver_c(&out[0]).unwrap();
    let got: Vec<Vec<u8>> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            Ev::Update(b) => Some(b.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(got, sent);
}

#[test]
fn long_poll_idle_answered_at_max_wait_with_an_empty_container() {
    let mut p = synced(5);
    p.c.http_wait(p.now, POLL).unwrap();
    for pkt in p.c2s() {
        p.deliver_s(&pkt).unwrap();
    }
    let since = p.s.long_poll().unwrap().since;
    assert_eq!(p.s.poll_timeout(), Some(since.saturating_add(Duration::from_secs(5))));
    ms(&mut p, 4_999);
    assert!(p.s2c().is_empty());
    ms(&mut p, 1);
    let out = p.s2c();
    assert_eq!(out.len(), 1);
    let (_, seq, body) = open(5, Direction::ServerToClient, &out[0]);
    assert_eq!(seq % 2, 0);
    let c = MsgContainer::decode(&body).unwrap();
    assert_eq!(c.messages.len(), 0, "an empty container");
    let before = (p.c.stats().packets_in, p.client_events.len());
    p.deliver_c(&out[0]).unwrap();
    assert_eq!(p.c.stats().packets_in, before.0 + 1);
    assert_eq!(p.client_events.len(), before.1, "no event");
    assert!(p.s.long_poll().is_none());
    // Answered once: nothing more until the client asks again.
    ms(&mut p, 10_000);
    assert!(p.s2c().is_empty());
}

#[test]
fn chk_052_http_wait_values_clamped() {
    let mut p = synced(6);
    p.c.http_wait(
        p.now,
        HttpWait {
            max_delay: -5,
            wait_after: i32::MIN,
            max_wait: i32::MAX,
        },
    )
    .unwrap();
    for pkt in p.c2s() {
        p.deliver_s(&pkt).unwrap();
    }
    let lp = p.s.long_poll().unwrap();
    let cap = mtproto_sansio::session::SessionConfig::DEFAULT.max_http_wait;
    assert_eq!(
        (lp.max_delay, lp.wait_after, lp.max_wait),
        (Duration::ZERO, Duration::ZERO, cap)
    );
    assert_eq!(p.s.poll_timeout(), Some(lp.since.saturating_add(cap)));
    p.advance(cap.as_secs());
    assert_eq!(p.s2c().len(), 1, "answered at the cap");
}

#[test]
fn long_poll_released_by_a_due_resend() {
    // An update the client never acknowledges is resent; a held poll carries the resend when it falls due.
    let mut p = synced(7);
    p.s.send(p.now, &update(1), MsgKind::Notice).unwrap();
    let first = p.s2c();
    assert_eq!(first.len(), 1); // lost
    p.c.http_wait(
        p.now,
        HttpWait {
            max_delay: 0,
            wait_after: 0,
            max_wait: 50_000,
        },
    )
    .unwrap();
    for pkt in p.c2s() {
        p.deliver_s(&pkt).unwrap();
    }
    let t = p.s.poll_timeout().unwrap();
    assert!(t < p.s.long_poll().unwrap().since.saturating_add(Duration::from_secs(50)));
    p.now = t;
    p.s.handle_timeout(t);
    let out = p.s2c();
    assert_eq!(out.len(), 1);
    let msgs = messages(7, Direction::ServerToClient, &out[0]);
    let (_, _, orig) = open(7, Direction::ServerToClient, &first[0]);
    assert!(msgs.iter().any(|m| m.2 == orig), "the resend, byte-identical");
}

// ---------------------------------------------------------------- msg_resend_req, msg_resend_ans_req, msgs_state_req

/// `ctor msg_ids:Vector<long>`.
fn id_vec(ctor: u32, ids: &[u64]) -> Vec<u8> {
    let mut b = ctor.to_le_bytes().to_vec();
    b.extend_from_slice(&tl::VECTOR.to_le_bytes());
    b.extend_from_slice(&(ids.len() as u32).to_le_bytes());
    for id in ids {
        b.extend_from_slice(&id.to_le_bytes());
    }
    b
}

/// Every message of the packets, decrypted.
fn all_messages(seed: u64, dir: Direction, pkts: &[Vec<u8>]) -> Vec<(u64, u32, Vec<u8>)> {
    pkts.iter().flat_map(|p| messages(seed, dir, p)).collect()
}

fn state_infos(msgs: &[(u64, u32, Vec<u8>)]) -> Vec<(u64, Vec<u8>)> {
    msgs.iter()
        .filter(|m| ctor(&m.2) == MsgsStateInfo::CONSTRUCTOR)
        .map(|m| {
            let i = MsgsStateInfo::decode(&m.2).unwrap();
            (i.req_msg_id as u64, i.info.to_vec())
        })
        .collect()
}

/// A synced pair whose client has a query `q` the DC received and holds unanswered; returns the query's message
/// as it first travelled.
fn held_query(seed: u64) -> (Pair, MsgId, (u64, u32, Vec<u8>)) {
    let mut p = synced(seed);
    p.auto_answer = false;
    let q = p.c.send(p.now, &api_body(42, 5), MsgKind::Query).unwrap();
    let out = p.c2s();
    let first = all_messages(seed, Direction::ClientToServer, &out)
        .into_iter()
        .find(|m| MsgId(m.0) == q)
        .unwrap();
    for pkt in &out {
        p.deliver_s(pkt).unwrap();
    }
    (p, q, first)
}

#[test]
fn chk_038_client_resends_on_msg_resend_req_byte_identical_same_msg_id() {
    let (mut p, q, first) = held_query(11);
    let rr =
        p.s.send(p.now, &id_vec(MsgResendReq::CONSTRUCTOR, &[q.0]), MsgKind::Notice)
            .unwrap();
    for pkt in p.s2c() {
        p.deliver_c(&pkt).unwrap();
    }
    let resent = all_messages(11, Direction::ClientToServer, &p.c2s());
    let copies: Vec<_> = resent.iter().filter(|m| MsgId(m.0) == q).collect();
    assert_eq!(
        copies,
        vec![&first],
        "the same msg_id, seq_no and bytes, in a new container"
    );
    assert!(state_infos(&resent).is_empty(), "every id known: no msgs_state_info");
    assert!(p.c.stats().resent >= 1);
    let _ = rr;
}

#[test]
fn chk_049_resend_req_with_unknown_or_own_parity_ids_answered_with_state_info_for_all() {
    let (mut p, q, first) = held_query(12);
    // A DC-parity id (the requester's own) and a client-parity id the client never sent.
    let own_parity = p.s.send(p.now, &update(9), MsgKind::Notice).unwrap();
    let never_sent = MsgId((q.0 & !3).wrapping_sub(1 << 32));
    let ids = [q.0, own_parity.0, never_sent.0];
    let rr =
        p.s.send(p.now, &id_vec(MsgResendReq::CONSTRUCTOR, &ids), MsgKind::Notice)
            .unwrap();
    for pkt in p.s2c() {
        p.deliver_c(&pkt).unwrap();
    }
    let out = all_messages(12, Direction::ClientToServer, &p.c2s());
    assert!(out.contains(&first), "the held query still goes again");
    let infos = state_infos(&out);
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].0, rr.0, "answers the resend request");
    // One byte per id asked: the query is ours (1), the DC's update was received (4), the unknown id is ours (1).
    assert_eq!(infos[0].1, vec![1, 4, 1]);
}

#[test]
fn dc_resends_held_answer_on_msg_resend_ans_req() {
    let (mut p, q, _) = held_query(13);
    let req = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Ev::Request(id, b) if *id == q => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    let ans = p.s.answer(p.now, q, &req).unwrap();
    let lost = all_messages(13, Direction::ServerToClient, &p.s2c());
    let answer = lost.iter().find(|m| MsgId(m.0) == ans).unwrap().clone();
    // The client asks for the answer to q again.
    let ra =
        p.c.send(p.now, &id_vec(MsgResendAnsReq::CONSTRUCTOR, &[q.0]), MsgKind::Notice)
            .unwrap();
    for pkt in p.c2s() {
        p.deliver_s(&pkt).unwrap();
    }
    let back = p.s2c();
    let msgs = all_messages(13, Direction::ServerToClient, &back);
    assert!(
        msgs.contains(&answer),
        "the held rpc_result, byte-identical under its msg_id"
    );
    assert_eq!(
        state_infos(&msgs),
        vec![(ra.0, vec![4])],
        "state info for every id asked"
    );
    for pkt in &back {
        p.deliver_c(pkt).unwrap();
    }
    assert_eq!(p.results_for(q), vec![&Ev::Result(q, req)]);
}

#[test]
fn client_answers_a_dc_msgs_state_req() {
    let mut p = synced(14);
    let upd = p.s.send(p.now, &update(3), MsgKind::Notice).unwrap();
    for pkt in p.s2c() {
        p.deliver_c(&pkt).unwrap();
    }
    let later = MsgId(upd.0 + (10 << 32));
    let sr =
        p.s.send(
            p.now,
            &id_vec(MsgsStateReq::CONSTRUCTOR, &[upd.0, later.0]),
            MsgKind::Notice,
        )
        .unwrap();
    for pkt in p.s2c() {
        p.deliver_c(&pkt).unwrap();
    }
    let infos = state_infos(&all_messages(14, Direction::ClientToServer, &p.c2s()));
    // Received; not received, above everything received.
    assert_eq!(infos, vec![(sr.0, vec![4, 3])]);
}

// ---------------------------------------------------------------- user pings

fn ping_body(ping_id: i64) -> Vec<u8> {
    let mut b = tl::Ping::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&ping_id.to_le_bytes());
    b
}

fn pong_body(msg_id: MsgId, ping_id: i64) -> Vec<u8> {
    let mut b = tl::Pong::CONSTRUCTOR.to_le_bytes().to_vec();
    b.extend_from_slice(&msg_id.0.to_le_bytes());
    b.extend_from_slice(&ping_id.to_le_bytes());
    b
}

#[test]
fn user_ping_ends_in_one_result_keepalive_stays_silent() {
    let ccfg = SessionConfig {
        ping_interval: Some(Duration::from_secs(10)),
        ..session_util::client_cfg()
    };
    let mut p = Pair::with(21, ccfg, SessionConfig::DEFAULT, 0);
    let q = p.query(&api_body(1, 1));
    assert_eq!(p.results_for(q).len(), 1);
    // The keepalive pings several times: no event, nothing left in flight.
    let (before, dc_in) = (p.client_events.len(), p.s.stats().packets_in);
    for _ in 0..3 {
        p.advance(10);
        p.pump();
    }
    assert!(p.s.stats().packets_in >= dc_in + 3, "the keepalive pinged");
    assert_eq!(p.client_events.len(), before, "keepalive pongs are silent");
    assert_eq!(p.c.in_flight(), 0);

    let ping = p.query(&ping_body(0x1234));
    assert_eq!(p.results_for(ping), vec![&Ev::Result(ping, pong_body(ping, 0x1234))]);
    let mut dd = tl::PingDelayDisconnect::CONSTRUCTOR.to_le_bytes().to_vec();
    dd.extend_from_slice(&77i64.to_le_bytes());
    dd.extend_from_slice(&75i32.to_le_bytes());
    let pdd = p.query(&dd);
    assert_eq!(p.results_for(pdd), vec![&Ev::Result(pdd, pong_body(pdd, 77))]);
    assert_eq!(p.c.in_flight(), 0);
}

#[test]
fn chk_045_user_ping_unmatched_pong_ignored() {
    let mut p = synced(22);
    let q = p.c.send(p.now, &ping_body(5), MsgKind::Query).unwrap();
    let ping_pkts = p.c2s(); // held back for now
    // Pongs naming the query with another ping_id, or the ping_id under another msg_id: no event.
    p.s.send(p.now, &pong_body(q, 6), MsgKind::Notice).unwrap();
    p.s.send(p.now, &pong_body(MsgId(q.0 + 4), 5), MsgKind::Notice).unwrap();
    for pkt in p.s2c() {
        p.deliver_c(&pkt).unwrap();
    }
    assert!(p.results_for(q).is_empty());
    assert_eq!(p.c.in_flight(), 1);
    // The real pong settles it, once.
    for pkt in &ping_pkts {
        p.deliver_s(pkt).unwrap();
    }
    p.pump();
    p.s.send(p.now, &pong_body(q, 5), MsgKind::Notice).unwrap();
    p.pump();
    assert_eq!(p.results_for(q), vec![&Ev::Result(q, pong_body(q, 5))]);
}

// ---------------------------------------------------------------- gzip_packed on send

/// A compressible API body of `words` words.
#[cfg(feature = "alloc")]
fn chatty(tag: u32, words: usize) -> Vec<u8> {
    let mut v = 0x0bad_f00du32.to_le_bytes().to_vec();
    v.extend_from_slice(&tag.to_le_bytes());
    for i in 0..words {
        v.extend_from_slice(&((i % 7) as u32).to_le_bytes());
    }
    v
}

#[cfg(feature = "alloc")]
fn gzip_pair(seed: u64) -> Pair {
    use mtproto_sansio::session::GzipPolicy;
    let ccfg = SessionConfig {
        gzip: Some(GzipPolicy::DEFAULT),
        ..session_util::client_cfg()
    };
    let scfg = SessionConfig {
        gzip: Some(GzipPolicy { min_len: 64, level: 9 }),
        ..SessionConfig::DEFAULT
    };
    let mut p = Pair::with(seed, ccfg, scfg, 0);
    let q = p.query(&api_body(1, 1));
    assert_eq!(p.results_for(q).len(), 1);
    p
}

#[cfg(feature = "alloc")]
#[test]
fn gzip_on_send_dc_executes_the_compressed_query_and_resends_are_identical() {
    let mut p = gzip_pair(31);
    p.auto_answer = false;
    let body = chatty(5, 1000);
    let q = p.c.send(p.now, &body, MsgKind::Query).unwrap();
    let first = p.c2s();
    let sent = all_messages(31, Direction::ClientToServer, &first);
    let m = sent.iter().find(|m| MsgId(m.0) == q).unwrap().clone();
    assert_eq!(ctor(&m.2), tl::GzipPacked::CONSTRUCTOR, "compressed on the wire");
    assert!(m.2.len() * 4 < body.len(), "{} -> {}", body.len(), m.2.len());
    eprintln!("gzip_packed on send: {} -> {} bytes", body.len(), m.2.len());
    // Lost: the resend carries the very same bytes.
    p.advance(30);
    let again = all_messages(31, Direction::ClientToServer, &p.c2s());
    assert!(again.contains(&m), "the resend is byte-identical");
    for pkt in first {
        p.deliver_s(&pkt).unwrap();
    }
    // The DC inflated and delivered it; its answer is compressed too and arrives inflated.
    let req = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Ev::Request(id, b) if *id == q => Some(b.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(req, body);
    p.s.answer(p.now, q, &req).unwrap();
    let back = p.s2c();
    let results: Vec<_> = all_messages(31, Direction::ServerToClient, &back)
        .into_iter()
        .filter(|m| ctor(&m.2) == tl::RpcResult::CONSTRUCTOR)
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(&results[0].2[12..16], &tl::GzipPacked::CONSTRUCTOR.to_le_bytes());
    for pkt in &back {
        p.deliver_c(pkt).unwrap();
    }
    assert_eq!(p.results_for(q), vec![&Ev::Result(q, body)]);
}

#[cfg(feature = "alloc")]
#[test]
fn gzip_on_send_skips_small_incompressible_and_service_bodies() {
    use rand::{Rng, SeedableRng};
    let mut p = gzip_pair(32);
    let small = chatty(1, 100); // 408 bytes, under min_len 512
    let mut noise = vec![0u8; 2048];
    rand::rngs::StdRng::seed_from_u64(32).fill_bytes(&mut noise);
    noise[..4].copy_from_slice(&0x0bad_f00du32.to_le_bytes());
    // A service constructor padded out past min_len (a msgs_state_req for 200 ids).
    let ids: Vec<u64> = (0..200).map(|i| 4 * i).collect();
    let service = id_vec(MsgsStateReq::CONSTRUCTOR, &ids);
    let mut want = Vec::new();
    for b in [&small, &noise, &service] {
        let id = p.c.send(p.now, b, MsgKind::Notice).unwrap();
        want.push((id, b.clone()));
    }
    let sent = all_messages(32, Direction::ClientToServer, &p.c2s());
    for (id, b) in want {
        let m = sent.iter().find(|m| MsgId(m.0) == id).unwrap();
        assert_eq!(&m.2, &b, "sent as is");
    }
}

/// A query whose `gzip_packed` body does not inflate (or inflates to something that is not a query) is answered
/// `rpc_error 400 INPUT_FETCH_ERROR`, once: content-related messages always get an answer (item 48), and a client
/// must not wait out its resend timer for a query the DC will never run.
#[test]
fn chk_050_query_whose_gzip_does_not_inflate_is_answered_with_an_error() {
    use mtproto_sansio::tl::{GzipPacked, TlWrite};
    let mut p = Pair::new(50);
    let bodies: [Vec<u8>; 2] = [
        // Not DEFLATE at all.
        {
            let g = GzipPacked {
                packed_data: &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
            };
            let mut b = vec![0u8; g.tl_len()];
            mtproto_sansio::tl::encode(&g, &mut b).unwrap();
            b
        },
        // A ping inside gzip: a service message, which the DC never looks for inside gzip.
        {
            let ping = mtproto_sansio::tl::Ping { ping_id: 7 };
            let mut inner = vec![0u8; ping.tl_len()];
            mtproto_sansio::tl::encode(&ping, &mut inner).unwrap();
            let packed = mtproto_sansio::tl::gzip::deflate_gzip(&inner, 6);
            let g = GzipPacked { packed_data: &packed };
            let mut b = vec![0u8; g.tl_len()];
            mtproto_sansio::tl::encode(&g, &mut b).unwrap();
            b
        },
    ];
    for body in bodies {
        let id = p.query(&body);
        let got = p.results_for(id);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            matches!(got[0], Ev::Error(_, 400, m, _) if m == b"INPUT_FETCH_ERROR"),
            "{got:?}"
        );
        assert!(
            !p.server_events
                .iter()
                .any(|e| matches!(e, Ev::Request(r, _) if *r == id)),
            "never handed to the host"
        );
    }
}
