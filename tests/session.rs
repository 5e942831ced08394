//! Session-level tests of the encrypted session: round trips, service messages, and the negative tests of
//! docs/CHECKLIST.md items 26-57 and attacks B1-B3, B5-B8, B14-B17, B20 that live in the engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
use mtproto_sansio::session::{Dropped, FailReason, Limits, MsgId, MsgKind, RpcErrorKind, SendError, SessionConfig};
use mtproto_sansio::time::Instant;
use mtproto_sansio::tl::{self, TlRead, TlWrite};
use rand::SeedableRng;
use rand::rngs::StdRng;
use session_util::*;

/// A server msg_id at the pair's current time (odd; `n` distinguishes ids within the second).
fn server_id(p: &Pair, n: u64) -> u64 {
    let unix = UNIX0 + (p.now.as_secs() - 1000);
    (unix << 32) | (n * 4 + 1)
}

/// A client msg_id `offset_secs` away from the DC's now.
fn client_id(p: &Pair, offset_secs: i64, n: u64) -> u64 {
    let unix = (UNIX0 as i64 + (p.now.as_secs() as i64 - 1000) + offset_secs) as u64;
    (unix << 32) | (n * 4 + 4)
}

fn seal(p: &Pair, dir: Direction, h: MessageHeader, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; body.len() + 2048];
    let e = packet::encrypt(
        &key(p.seed),
        dir,
        &h,
        body,
        &mut StdRng::seed_from_u64(h.msg_id),
        &mut out,
    )
    .unwrap();
    out.truncate(e.len);
    out
}

/// A packet from the DC to the client, in the client's session.
fn from_dc(p: &Pair, msg_id: u64, seq_no: u32, body: &[u8]) -> Vec<u8> {
    let h = MessageHeader {
        salt: 0,
        session_id: p.c.session_id(),
        msg_id,
        seq_no,
    };
    seal(p, Direction::ServerToClient, h, body)
}

/// A packet from a client to the DC with the DC's current salt.
fn to_dc(p: &Pair, session_id: u64, msg_id: u64, seq_no: u32, body: &[u8]) -> Vec<u8> {
    let h = MessageHeader {
        salt: p.s.current_salt(),
        session_id,
        msg_id,
        seq_no,
    };
    seal(p, Direction::ClientToServer, h, body)
}

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

/// Every bad_msg_notification / bad_server_salt code in the DC's next packets.
fn dc_codes(p: &mut Pair) -> Vec<i32> {
    let mut codes = Vec::new();
    for mut pk in p.s2c() {
        let v = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut pk).unwrap();
        let body = v.body().to_vec();
        let mut bodies = vec![body.clone()];
        if let Ok(c) = tl::MsgContainer::decode(&body) {
            bodies = c.iter().map(|m| m.body.to_vec()).collect();
        }
        for b in bodies {
            match tl::ServiceMessage::decode_body(&b) {
                Ok(tl::ServiceMessage::BadMsg(m)) => codes.push(m.error_code),
                Ok(tl::ServiceMessage::BadServerSalt(m)) => codes.push(m.error_code),
                _ => {}
            }
        }
    }
    codes
}

/// A pair whose client already completed one query (session, salt and acks settled).
fn settled(seed: u64) -> Pair {
    let mut p = Pair::new(seed);
    p.query(&api_body(1, 1));
    p.client_events.clear();
    p.server_events.clear();
    p
}

#[test]
fn rpc_round_trip_echo() {
    let mut p = Pair::new(1);
    let body = api_body(7, 10);
    let id = p.query(&body);
    assert_eq!(p.results_for(id), vec![&Ev::Result(id, body.clone())]);
    // The DC saw the request once and created the session.
    let reqs: Vec<_> = p
        .server_events
        .iter()
        .filter(|e| matches!(e, Ev::Request(..)))
        .collect();
    assert_eq!(reqs.len(), 1);
    assert!(p.server_events.iter().any(|e| matches!(e, Ev::Created(_))));
}

#[test]
fn rpc_error_decoded() {
    let mut p = settled(2);
    p.auto_answer = false;
    let id = p.c.send(p.now, &api_body(3, 0), MsgKind::Query).unwrap();
    p.pump();
    let req = p
        .server_events
        .iter()
        .find_map(|e| if let Ev::Request(r, _) = e { Some(*r) } else { None })
        .unwrap();
    p.s.answer_error(p.now, req, 420, b"FLOOD_WAIT_17").unwrap();
    p.pump();
    assert_eq!(
        p.results_for(id),
        vec![&Ev::Error(
            id,
            420,
            b"FLOOD_WAIT_17".to_vec(),
            RpcErrorKind::FloodWait(17)
        )]
    );
}

#[test]
fn chk_026_plaintext_packet_rejected() {
    let mut p = settled(3);
    let mut pk = vec![0u8; 40];
    pk[8..16].copy_from_slice(&server_id(&p, 9).to_le_bytes());
    pk[16..20].copy_from_slice(&20u32.to_le_bytes());
    pk[20..24].copy_from_slice(&tl::RpcResult::CONSTRUCTOR.to_le_bytes());
    assert_eq!(p.deliver_c(&pk), Err(Dropped::Rejected));
    assert_eq!(p.deliver_s(&pk), Err(Dropped::Rejected));
}

#[test]
fn chk_028_atk_b05_b06_tampering_rejected() {
    let mut p = settled(4);
    let body = api_body(9, 4);
    let good = from_dc(&p, server_id(&p, 10), 1, &body);
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert_eq!(p.deliver_c(&bad), Err(Dropped::Rejected), "byte {i}");
    }
    // B5: an appended block; B6: the last block replaced.
    let mut ext = good.clone();
    ext.extend_from_slice(&[0u8; 16]);
    assert_eq!(p.deliver_c(&ext), Err(Dropped::Rejected));
    let mut sub = good.clone();
    let n = sub.len();
    sub[n - 16..].copy_from_slice(&[0x55; 16]);
    assert_eq!(p.deliver_c(&sub), Err(Dropped::Rejected));
    // Reflection: the DC's packet fed back to the DC (x differs).
    assert_eq!(p.deliver_s(&good), Err(Dropped::Rejected));
    assert!(p.client_events.is_empty());
    assert!(p.deliver_c(&good).is_ok());
    assert_eq!(p.client_events.len(), 1);
}

#[test]
fn atk_b03_single_error_for_every_invalid_class() {
    let mut p = settled(5);
    let good = from_dc(&p, server_id(&p, 11), 1, &api_body(1, 2));
    let before = p.c.stats();
    let mut wrong_key = good.clone();
    wrong_key[0] ^= 1;
    let mut short = good.clone();
    short.truncate(60);
    let mut misaligned = good.clone();
    misaligned.truncate(good.len() - 4);
    for bad in [wrong_key, short, misaligned] {
        assert_eq!(p.deliver_c(&bad), Err(Dropped::Rejected));
    }
    let after = p.c.stats();
    assert_eq!(after.rejected, before.rejected + 3);
    assert_eq!(after.packets_in, before.packets_in);
}

#[test]
fn chk_031_atk_b07_cross_session_packet_dropped() {
    let mut p = settled(6);
    let h = MessageHeader {
        salt: 0,
        session_id: p.c.session_id() ^ 1,
        msg_id: server_id(&p, 12),
        seq_no: 1,
    };
    let pk = seal(&p, Direction::ServerToClient, h, &api_body(5, 1));
    assert_eq!(p.deliver_c(&pk), Err(Dropped::WrongSession));
    assert!(p.client_events.is_empty());
}

#[test]
fn chk_032_atk_b08_msg_id_parity() {
    let mut p = settled(7);
    // An even msg_id "from the server".
    let pk = from_dc(&p, server_id(&p, 13) - 1, 1, &api_body(5, 1));
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
    // A client msg_id ≡ 2 mod 4 at the DC: code 18.
    let sid = p.c.session_id();
    let pk = to_dc(&p, sid, client_id(&p, 0, 50) + 2, 1, &api_body(5, 1));
    assert_eq!(p.deliver_s(&pk), Err(Dropped::BadMsgId));
    assert_eq!(dc_codes(&mut p), vec![18]);
}

#[test]
fn chk_033_atk_b07_replay_dropped() {
    let mut p = settled(8);
    let pk = from_dc(&p, server_id(&p, 14), 1, &api_body(5, 1));
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.deliver_c(&pk), Err(Dropped::BadMsgId));
    assert_eq!(p.client_events.iter().filter(|e| matches!(e, Ev::Update(_))).count(), 1);
    // At the DC: the same request twice is executed once.
    let sid = p.c.session_id();
    let q = to_dc(&p, sid, client_id(&p, 0, 60), 101, &api_body(6, 1));
    assert!(p.deliver_s(&q).is_ok());
    assert_eq!(p.deliver_s(&q), Err(Dropped::BadMsgId));
    assert_eq!(
        p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count(),
        1
    );
}

#[test]
fn chk_034_atk_b08_time_window_at_dc() {
    // A DC whose new sessions accept the whole window (`new_session_max_age` = 300 s), so the window's own edges
    // show; the floor is tested in tests/session_dc_host.rs.
    let scfg = SessionConfig {
        limits: Limits {
            new_session_max_age: core::time::Duration::from_secs(300),
            ..Limits::DEFAULT
        },
        ..SessionConfig::DEFAULT
    };
    let mut p = Pair::with(9, session_util::client_cfg(), scfg, 0);
    p.query(&api_body(1, 1));
    p.client_events.clear();
    p.server_events.clear();
    let sid = p.c.session_id();
    for (off, n, code) in [
        (-301i64, 70u64, Some(16)),
        (31, 71, Some(17)),
        (-299, 72, None),
        (29, 73, None),
    ] {
        let ids = [1i64];
        let ack = enc(&tl::MsgsAck {
            msg_ids: tl::TlVec::from_slice(&ids),
        });
        let pk = to_dc(&p, sid, client_id(&p, off, n), if off > 0 { 1000 } else { 0 }, &ack);
        let r = p.deliver_s(&pk);
        let codes = dc_codes(&mut p);
        match code {
            Some(c) => {
                assert_eq!(r, Err(Dropped::BadMsgId), "offset {off}");
                assert!(codes.contains(&c), "offset {off}: {codes:?}");
            }
            None => assert!(r.is_ok(), "offset {off}: {r:?}"),
        }
    }
}

#[test]
fn chk_035_salt_checks_at_dc() {
    let mut p = Pair::new(10);
    // A first message with salt 0 gets bad_server_salt, and the client adopts the salt and succeeds.
    let id = p.c.send(p.now, &api_body(8, 1), MsgKind::Query).unwrap();
    let first = p.c2s();
    assert_eq!(p.deliver_s(&first[0]), Err(Dropped::BadSalt));
    assert_eq!(dc_codes(&mut p), vec![48]);
    let _ = id;
    // A wrong salt later also gets 48.
    let mut p = settled(11);
    let sid = p.c.session_id();
    let h = MessageHeader {
        salt: p.s.current_salt() ^ 1,
        session_id: sid,
        msg_id: client_id(&p, 0, 80),
        seq_no: 301,
    };
    let pk = seal(&p, Direction::ClientToServer, h, &api_body(8, 1));
    assert_eq!(p.deliver_s(&pk), Err(Dropped::BadSalt));
    assert_eq!(dc_codes(&mut p), vec![48]);
}

#[test]
fn chk_035_atk_b20_forged_or_replayed_salt_notification_ignored() {
    let mut p = settled(12);
    let salt = p.c.current_salt();
    let offset = p.c.clock().unix_offset();
    // bad_server_salt and bad_msg 16 naming ids we never sent: no change.
    let bs = tl::BadServerSalt {
        bad_msg_id: 0x1234_5678_0000_0004,
        bad_msg_seqno: 1,
        error_code: 48,
        new_server_salt: 42,
    };
    let pk = from_dc(&p, server_id(&p, 20), 1, &enc(&bs));
    let _ = p.deliver_c(&pk);
    let bm = tl::BadMsg {
        bad_msg_id: 0x1234_5678_0000_0008,
        bad_msg_seqno: 1,
        error_code: 16,
    };
    let pk2 = from_dc(&p, server_id(&p, 21) + (1000u64 << 32), 1, &enc(&bm));
    let _ = p.deliver_c(&pk2);
    assert_eq!(p.c.current_salt(), salt);
    assert_eq!(p.c.clock().unix_offset(), offset);
    // A replay of an old, genuine bad_server_salt: dropped by the replay window.
    let mut q = Pair::new(13);
    q.c.send(q.now, &api_body(8, 1), MsgKind::Query).unwrap();
    let first = q.c2s();
    let _ = q.deliver_s(&first[0]);
    let notif = q.s2c();
    assert!(q.deliver_c(&notif[0]).is_ok());
    let adopted = q.c.current_salt();
    assert_ne!(adopted, 0);
    assert_eq!(q.deliver_c(&notif[0]), Err(Dropped::BadMsgId));
    assert_eq!(q.c.current_salt(), adopted);
}

#[test]
fn chk_037_seq_no_parity_at_dc() {
    let mut p = settled(14);
    let sid = p.c.session_id();
    // A query with an even seq_no: 35.
    let pk = to_dc(&p, sid, client_id(&p, 0, 90), 400, &api_body(9, 1));
    assert_eq!(p.deliver_s(&pk), Err(Dropped::BadSeqNo));
    assert_eq!(dc_codes(&mut p), vec![35]);
    // msgs_ack with an odd seq_no: 34.
    let ids = [1i64];
    let ack = enc(&tl::MsgsAck {
        msg_ids: tl::TlVec::from_slice(&ids),
    });
    let pk = to_dc(&p, sid, client_id(&p, 0, 91), 401, &ack);
    assert_eq!(p.deliver_s(&pk), Err(Dropped::BadSeqNo));
    assert_eq!(dc_codes(&mut p), vec![34]);
}

#[test]
fn chk_042_results_for_unknown_or_answered_queries_ignored() {
    let mut p = settled(15);
    let id = p.query(&api_body(10, 1));
    assert_eq!(p.results_for(id).len(), 1);
    // The same result again, and one for an id never sent.
    for (n, req) in [(30u64, id.to_wire()), (31, 0x1111_2222_0000_0004)] {
        let rr = tl::RpcResult {
            req_msg_id: req,
            result: &api_body(11, 1),
        };
        let pk = from_dc(&p, server_id(&p, n), 1, &enc(&rr));
        assert!(p.deliver_c(&pk).is_ok());
    }
    assert_eq!(p.results_for(id).len(), 1);
    assert_eq!(p.client_events.len(), 1);
}

#[test]
fn chk_043_bad_msg_code_reactions() {
    // 16: the clock is corrected from the DC's msg_id and the query is resent; it still ends once.
    let ccfg = client_cfg();
    let mut p = Pair::with(16, ccfg, SessionConfig::DEFAULT, 500);
    let id = p.query(&api_body(12, 1));
    assert_eq!(p.results_for(id).len(), 1);
    assert!(p.c.clock().is_synced());
    // 34/35 (our classification is wrong): the query fails with the code.
    let mut p = settled(17);
    let id = p.c.send(p.now, &api_body(13, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let bm = tl::BadMsg {
        bad_msg_id: id.to_wire(),
        bad_msg_seqno: 3,
        error_code: 35,
    };
    let pk = from_dc(&p, server_id(&p, 40), 3, &enc(&bm));
    assert!(p.deliver_c(&pk).is_ok());
    assert!(matches!(
        p.results_for(id)[..],
        [Ev::Failed(_, FailReason::Rejected(_))]
    ));
    // An unknown code changes nothing.
    let id = p.c.send(p.now, &api_body(14, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let bm = tl::BadMsg {
        bad_msg_id: id.to_wire(),
        bad_msg_seqno: 3,
        error_code: 21,
    };
    let pk = from_dc(&p, server_id(&p, 41), 3, &enc(&bm));
    assert!(p.deliver_c(&pk).is_ok());
    assert!(p.results_for(id).is_empty());
}

fn container(msgs: &[(i64, i32, Vec<u8>)]) -> Vec<u8> {
    let ms: Vec<tl::Message<'_>> = msgs.iter().map(|(i, s, b)| tl::Message::new(*i, *s, b)).collect();
    enc(&tl::MsgContainer::new(&ms))
}

#[test]
fn chk_048_atk_b15_containers_validated() {
    let mut p = settled(18);
    let sid = p.c.session_id();
    let cid = client_id(&p, 0, 200);
    let a = (client_id(&p, 0, 150) as i64, 501, api_body(1, 1));
    let b = (client_id(&p, 0, 151) as i64, 503, api_body(2, 1));
    let nested = (client_id(&p, 0, 152) as i64, 502, container(std::slice::from_ref(&a)));
    let above = (client_id(&p, 0, 250) as i64, 505, api_body(3, 1));
    for (n, msgs) in [
        (0u64, vec![a.clone(), nested]),
        (1, vec![a.clone(), above]),
        (2, vec![a.clone(), a.clone()]),
    ] {
        let pk = to_dc(&p, sid, cid + 4 * n, 600, &container(&msgs));
        assert_eq!(p.deliver_s(&pk), Err(Dropped::Malformed), "case {n}");
        assert_eq!(dc_codes(&mut p), vec![64], "case {n}");
    }
    assert!(p.server_events.iter().all(|e| !matches!(e, Ev::Request(..))));
    // A count of 2^31 with a tiny body: rejected without allocating.
    let mut huge = tl::MsgContainer::CONSTRUCTOR.to_le_bytes().to_vec();
    huge.extend_from_slice(&0x8000_0000u32.to_le_bytes());
    huge.extend_from_slice(&[0u8; 16]);
    let pk = to_dc(&p, sid, cid + 40, 600, &huge);
    assert_eq!(p.deliver_s(&pk), Err(Dropped::Malformed));
    // The count limit at its edge: chk_048_container_count_limit_at_its_edge (1,025 messages do not fit this RX).
    // A valid container delivers both.
    let pk = to_dc(&p, sid, cid + 48, 600, &container(&[a, b]));
    assert!(p.deliver_s(&pk).is_ok());
    assert_eq!(
        p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count(),
        2
    );
}

/// `Limits::max_container_messages` at its edge, on a DC configured with 4: a container of 5 is dropped as
/// malformed (code 64, nothing delivered), one of exactly 4 delivers all 4. The default's 1,025 messages do not fit
/// the test's receive buffer, which left the bound untested until mutation testing found it
/// (docs/mutants/session_engine_recv.txt).
#[test]
fn chk_048_container_count_limit_at_its_edge() {
    let mut scfg = SessionConfig::DEFAULT;
    scfg.limits.max_container_messages = 4;
    let mut p = Pair::with(19, client_cfg(), scfg, 0);
    p.query(&api_body(1, 1));
    p.client_events.clear();
    p.server_events.clear();
    let sid = p.c.session_id();
    let cid = client_id(&p, 0, 200);
    // Ids from `from` on, above the settling exchange's (a lower id with a higher seq_no is refused, code 33), and
    // content seq_nos above its own (a gap is allowed, a seq_no already passed is code 32).
    let msgs = |n: u64, from: u64| -> Vec<(i64, i32, Vec<u8>)> {
        (0..n)
            .map(|i| (client_id(&p, 0, from + i) as i64, 101 + 2 * i as i32, api_body(1, 0)))
            .collect()
    };
    let five = container(&msgs(5, 50));
    let four = container(&msgs(4, 100));
    let pk = to_dc(&p, sid, cid, 600, &five);
    assert_eq!(p.deliver_s(&pk), Err(Dropped::Malformed));
    assert_eq!(dc_codes(&mut p), vec![64]);
    assert!(p.server_events.iter().all(|e| !matches!(e, Ev::Request(..))));
    let pk = to_dc(&p, sid, cid + 4, 600, &four);
    assert!(p.deliver_s(&pk).is_ok());
    assert_eq!(
        p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count(),
        4
    );
}

/// Seq_nos are unsigned counts everywhere (a lone message's, a container's, the checker's), and an inner seq_no, a
/// TL `int`, is read the same way: a container at 2^31 or above whose members are at or below it (negative as
/// `i32`) delivers them, as the same messages sent one by one would be; a member above it is still refused. The
/// check once also refused every negative inner seq_no, which only such a container could tell apart (a mutation
/// survivor, docs/mutants/session_engine_recv.txt) and which refused a container of messages each acceptable alone.
#[test]
fn chk_048_seq_nos_at_2_31_and_above_read_as_unsigned_in_a_container() {
    let mut p = settled(61);
    let sid = p.c.session_id();
    let cid = client_id(&p, 0, 300);
    let top: u32 = 0x8000_0010;
    let ids: Vec<i64> = (0..4).map(|n| client_id(&p, 0, 250 + n) as i64).collect();
    let member = |n: usize, seq: u32| (ids[n], seq as i32, api_body(n as u32, 1));
    let above = container(&[member(0, 0x8000_0001), member(1, top + 1)]);
    let pk = to_dc(&p, sid, cid, top, &above);
    assert_eq!(p.deliver_s(&pk), Err(Dropped::Malformed));
    assert_eq!(dc_codes(&mut p), vec![64]);
    assert!(p.server_events.iter().all(|e| !matches!(e, Ev::Request(..))));
    let fine = container(&[member(2, 0x8000_0001), member(3, 0x8000_0003)]);
    let pk = to_dc(&p, sid, cid + 4, top, &fine);
    assert!(p.deliver_s(&pk).is_ok());
    assert_eq!(
        p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count(),
        2
    );
}

/// Two `gzip_packed` members in one packet: each is inflated after the other in the inflate buffer, so both
/// updates reach the host intact (the second must not be written over the first; a mutation survivor of
/// inflate's `start + n`, docs/mutants/session_engine_recv.txt).
#[test]
fn chk_050_two_gzip_members_of_one_container_both_delivered() {
    let mut p = settled(62);
    let (a, b) = (api_body(90, 1), api_body(91, 1));
    assert_eq!(a.len(), b.len());
    assert_ne!(a, b);
    let gz = |d: &[u8]| {
        enc(&tl::GzipPacked {
            packed_data: &stored_gzip(d),
        })
    };
    let c = container(&[
        (server_id(&p, 300) as i64, 1, gz(&a)),
        (server_id(&p, 301) as i64, 3, gz(&b)),
    ]);
    let pk = from_dc(&p, server_id(&p, 302), 4, &c);
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events, vec![Ev::Update(a), Ev::Update(b)]);
}

#[test]
fn chk_048_duplicate_ids_far_apart_rejected_both_roles() {
    let mut p = settled(60);
    let sid = p.c.session_id();
    let cid = client_id(&p, 0, 2000);
    // DC: 300 messages whose first and last share an id.
    let mut many: Vec<_> = (0..300u64)
        .map(|i| (client_id(&p, -10, i) as i64, 1 + 2 * i as i32, api_body(1, 0)))
        .collect();
    let fine = container(&many);
    many[299].0 = many[0].0;
    let pk = to_dc(&p, sid, cid, 1300, &container(&many));
    assert!(pk.len() <= RX);
    assert_eq!(p.deliver_s(&pk), Err(Dropped::Malformed));
    assert_eq!(dc_codes(&mut p), vec![64]);
    assert!(p.server_events.iter().all(|e| !matches!(e, Ev::Request(..))));
    p.auto_answer = false;
    let pk = to_dc(&p, sid, cid + 4, 1300, &fine);
    assert!(p.deliver_s(&pk).is_ok());
    assert!(p.server_events.iter().any(|e| matches!(e, Ev::Request(..))));
    // Client: a gzip-wrapped container (checked in the inflate buffer's tail) with a repeated id.
    let upd = api_body(80, 1);
    let dup = container(&[
        (server_id(&p, 200) as i64, 1, upd.clone()),
        (server_id(&p, 201) as i64, 3, api_body(81, 1)),
        (server_id(&p, 200) as i64, 5, upd.clone()),
    ]);
    let g = enc(&tl::GzipPacked {
        packed_data: &stored_gzip(&dup),
    });
    let pk = from_dc(&p, server_id(&p, 202), 6, &g);
    assert_eq!(p.deliver_c(&pk), Err(Dropped::Malformed));
    assert!(p.client_events.iter().all(|e| !matches!(e, Ev::Update(..))));
    let ok = container(&[
        (server_id(&p, 203) as i64, 1, upd.clone()),
        (server_id(&p, 204) as i64, 3, api_body(81, 1)),
    ]);
    let g = enc(&tl::GzipPacked {
        packed_data: &stored_gzip(&ok),
    });
    let pk = from_dc(&p, server_id(&p, 205), 4, &g);
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events, vec![Ev::Update(upd), Ev::Update(api_body(81, 1))]);
}

/// A gzip member whose DEFLATE stream (fixed Huffman) expands to `n` zero bytes.
fn zero_bomb(n: usize) -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut put = |code: u32, len: u32, msb_first: bool| {
        for i in 0..len {
            let b = if msb_first {
                (code >> (len - 1 - i)) & 1
            } else {
                (code >> i) & 1
            };
            bits.push(b == 1);
        }
    };
    put(1, 1, false); // BFINAL
    put(1, 2, false); // BTYPE = fixed
    put(0x30, 8, true); // literal 0
    let mut left = n - 1;
    while left >= 258 {
        put(0b1100_0101, 8, true); // length 258 (symbol 285)
        put(0, 5, true); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        put(0x30, 8, true);
    }
    put(0, 7, true); // end of block
    let mut deflate = vec![0u8; bits.len().div_ceil(8)];
    for (i, b) in bits.iter().enumerate() {
        if *b {
            deflate[i / 8] |= 1 << (i % 8);
        }
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    out.extend_from_slice(&deflate);
    out.extend_from_slice(&crc32fast::hash(&vec![0u8; n]).to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out
}

#[test]
fn chk_050_atk_b14_gzip_results_bounded() {
    let mut p = settled(19);
    // A small gzipped result is inflated.
    let id = p.c.send(p.now, &api_body(15, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let g = enc(&tl::GzipPacked {
        packed_data: &zero_bomb(400),
    });
    let pk = from_dc(
        &p,
        server_id(&p, 50),
        1,
        &enc(&tl::RpcResult {
            req_msg_id: id.to_wire(),
            result: &g,
        }),
    );
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.results_for(id), vec![&Ev::Result(id, vec![0u8; 400])]);
    // A bomb (1 MiB from ~5 KB) stops at the buffer: the query fails, once.
    let id = p.c.send(p.now, &api_body(16, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let g = enc(&tl::GzipPacked {
        packed_data: &zero_bomb(1 << 20),
    });
    let pk = from_dc(
        &p,
        server_id(&p, 51),
        1,
        &enc(&tl::RpcResult {
            req_msg_id: id.to_wire(),
            result: &g,
        }),
    );
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.results_for(id), vec![&Ev::Failed(id, FailReason::ResultTooLarge)]);
    // gzip inside gzip is refused.
    let id = p.c.send(p.now, &api_body(17, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let inner = enc(&tl::GzipPacked {
        packed_data: &zero_bomb(8),
    });
    let mut stored = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1];
    stored.extend_from_slice(&(inner.len() as u16).to_le_bytes());
    stored.extend_from_slice(&(!(inner.len() as u16)).to_le_bytes());
    stored.extend_from_slice(&inner);
    stored.extend_from_slice(&crc32fast::hash(&inner).to_le_bytes());
    stored.extend_from_slice(&(inner.len() as u32).to_le_bytes());
    let g = enc(&tl::GzipPacked { packed_data: &stored });
    let pk = from_dc(
        &p,
        server_id(&p, 52),
        1,
        &enc(&tl::RpcResult {
            req_msg_id: id.to_wire(),
            result: &g,
        }),
    );
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.results_for(id), vec![&Ev::Failed(id, FailReason::MalformedResult)]);
}

/// A gzip member that inflates `n` zero bytes and only then fails (its CRC is broken): the most work per byte a
/// failing member can cause.
#[cfg(feature = "alloc")]
fn failing_gzip(n: usize) -> Vec<u8> {
    let mut g = tl::gzip::deflate_gzip(&vec![0u8; n], 10);
    let l = g.len();
    g[l - 8] ^= 1;
    g
}

/// Item 50, attack B14, at the DC: a 64 KiB packet packed with `gzip_packed` members that each inflate a whole
/// buffer and then fail costs at most `INFLATE_WORK_PER_RX` buffers of inflate work (before the bound: one buffer
/// per member, about 22 MiB), while a packet whose members legitimately fill the inflate buffer still inflates them
/// all.
#[cfg(feature = "alloc")]
#[test]
fn chk_050_atk_b14_dc_inflate_work_per_packet_bounded() {
    use mtproto_sansio::session::limits::INFLATE_WORK_PER_RX;
    use mtproto_sansio::session::{Clock, Event, Session};
    use mtproto_sansio::time::UnixTime;
    const BIG: usize = 65_536;
    type Big = Session<BIG, 4096, 8>;
    let now = Instant::from_secs(1000);
    let mut rng = StdRng::seed_from_u64(50);
    let k = key(50);
    let clock = Clock::from_unix_hint(now, UnixTime(UNIX0));
    let mut s = Box::new(Big::server(SessionConfig::DEFAULT, k.clone(), clock, now, &mut rng));
    s.approve_first_session(); // the only engine under this key
    let salt = s.current_salt();
    let cid = |n: u64| (UNIX0 << 32) | (n * 4 + 4);
    let seal_to_dc = |msg_id: u64, seq_no: u32, body: &[u8]| {
        let h = MessageHeader {
            salt,
            session_id: 0x5e55_1011,
            msg_id,
            seq_no,
        };
        let mut out = vec![0u8; body.len() + 2048];
        let e = packet::encrypt(
            &k,
            Direction::ClientToServer,
            &h,
            body,
            &mut StdRng::seed_from_u64(msg_id),
            &mut out,
        )
        .unwrap();
        out.truncate(e.len);
        out
    };
    let member = enc(&tl::GzipPacked {
        packed_data: &failing_gzip(BIG),
    });
    let mut n = (BIG - 64) / (member.len() + 16);
    let pk = loop {
        let msgs: Vec<_> = (0..n as u64)
            .map(|i| (cid(i) as i64, 1 + 2 * i as i32, member.clone()))
            .collect();
        let pk = seal_to_dc(cid(5000), 2 * n as u32 + 2, &container(&msgs));
        if pk.len() <= BIG {
            break pk;
        }
        n -= 1;
    };
    assert!(n >= 300, "{n} members");
    let before = s.stats().inflate_work;
    assert!(s.handle_packet(now, &pk).is_ok());
    // Each failing member is a query owed an answer (INPUT_FETCH_ERROR): the packet waits in the receive buffer
    // while the answers go out, so its work is counted once the host has drained it all.
    let mut out = vec![0u8; Big::min_out_len_with(SessionConfig::DEFAULT.padding)];
    let mut packets = 0;
    loop {
        while let Some(ev) = s.poll_event() {
            assert!(!matches!(ev, Event::Request { .. }), "a failing member was delivered");
        }
        match s.poll_packet(now, &mut rng, &mut out).unwrap() {
            Some(_) => packets += 1,
            None if !s.must_drain() => break,
            None => panic!("held packet does not drain"),
        }
    }
    assert!(packets > 0);
    let work = s.stats().inflate_work - before;
    assert!(
        work <= (INFLATE_WORK_PER_RX * BIG) as u64,
        "{n} failing members in a {}-byte packet: {work} bytes of inflate work",
        pk.len()
    );
    // Members that fill the inflate buffer between them all go through.
    let part: Vec<u8> = api_body(77, 0).into_iter().chain(vec![0u8; BIG / 5 - 8]).collect();
    let good = enc(&tl::GzipPacked {
        packed_data: &tl::gzip::deflate_gzip(&part, 6),
    });
    let msgs: Vec<_> = (0..5u64)
        .map(|i| (cid(6000 + i) as i64, 2 * n as i32 + 3 + 2 * i as i32, good.clone()))
        .collect();
    let pk = seal_to_dc(cid(7000), 2 * n as u32 + 20, &container(&msgs));
    let before = s.stats().inflate_work;
    assert!(s.handle_packet(now, &pk).is_ok());
    assert!(s.stats().inflate_work - before >= 5 * part.len() as u64);
    let mut delivered = 0;
    while let Some(ev) = s.poll_event() {
        if let Event::Request { body, .. } = ev {
            assert_eq!(body, &part[..]);
            delivered += 1;
        }
    }
    assert_eq!(delivered, 5);
}

/// Item 50, attack B14, at the client: a gzipped packet's msg_id is checked before anything is inflated (a stale
/// or replayed one costs no inflate work), and a packet of failing gzipped updates costs at most
/// `INFLATE_WORK_PER_RX` buffers of it.
#[cfg(feature = "alloc")]
#[test]
fn chk_050_atk_b14_client_checks_msg_id_before_inflating() {
    use mtproto_sansio::session::limits::INFLATE_WORK_PER_RX;
    let mut p = settled(51);
    let upd = api_body(90, 100);
    let g = enc(&tl::GzipPacked {
        packed_data: &tl::gzip::deflate_gzip(&upd, 6),
    });
    // Held back an hour: dropped uninflated.
    let stale = from_dc(&p, server_id(&p, 300) - (3600u64 << 32), 1, &g);
    let work = p.c.stats().inflate_work;
    assert_eq!(p.deliver_c(&stale), Err(Dropped::BadMsgId));
    assert_eq!(p.c.stats().inflate_work, work, "a stale packet was inflated");
    // Fresh: inflated and delivered; its replay is dropped uninflated.
    let fresh = from_dc(&p, server_id(&p, 301), 1, &g);
    assert!(p.deliver_c(&fresh).is_ok());
    assert!(p.client_events.contains(&Ev::Update(upd)));
    let work = p.c.stats().inflate_work;
    assert_eq!(p.deliver_c(&fresh), Err(Dropped::BadMsgId));
    assert_eq!(p.c.stats().inflate_work, work, "a replayed packet was inflated");
    // A container of gzipped updates that each inflate a whole buffer and then fail.
    let member = enc(&tl::GzipPacked {
        packed_data: &failing_gzip(RX),
    });
    let mut n = RX / (member.len() + 16);
    let pk = loop {
        let msgs: Vec<_> = (0..n as u64)
            .map(|i| (server_id(&p, 400 + i) as i64, 1 + 2 * i as i32, member.clone()))
            .collect();
        let pk = from_dc(&p, server_id(&p, 400 + n as u64), 2 * n as u32 + 2, &container(&msgs));
        if pk.len() <= RX {
            break pk;
        }
        n -= 1;
    };
    assert!(n >= 100, "{n} members");
    let events = p.client_events.len();
    assert!(p.deliver_c(&pk).is_ok());
    let spent = p.c.stats().inflate_work - work;
    assert!(
        spent <= (INFLATE_WORK_PER_RX * RX) as u64,
        "{n} failing members: {spent} bytes of inflate work"
    );
    assert_eq!(p.client_events.len(), events);
}

#[test]
fn chk_054_queues_are_backpressure() {
    let mut p = settled(20);
    let mut n = 0;
    loop {
        match p.c.send(p.now, &api_body(18, 4), MsgKind::Query) {
            Ok(_) => n += 1,
            Err(SendError::QueueFull) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(n <= MSGS);
    }
    assert!(n >= 1);
    // Too large for the buffers.
    assert_eq!(
        p.c.send(p.now, &vec![0u8; RX], MsgKind::Query),
        Err(SendError::TooLarge)
    );
}

#[test]
fn chk_038_atk_b02_one_plaintext_per_msg_id() {
    use std::collections::HashMap;
    let mut p = settled(21);
    let mut seen: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut record = |pk: &[u8], p: &Pair| {
        let mut b = pk.to_vec();
        let v = packet::decrypt(&key(p.seed), Direction::ClientToServer, &mut b).unwrap();
        let body = v.body().to_vec();
        let mut entries = vec![(v.msg_id(), [v.seq_no().to_le_bytes().to_vec(), body.clone()].concat())];
        if let Ok(c) = tl::MsgContainer::decode(&body) {
            for m in c.iter() {
                entries.push((
                    m.msg_id as u64,
                    [m.seqno.to_le_bytes().to_vec(), m.body.to_vec()].concat(),
                ));
            }
        }
        for (id, bytes) in entries {
            if let Some(old) = seen.insert(id, bytes.clone()) {
                assert_eq!(old, bytes, "msg_id {id:#x} carried two different plaintexts");
            }
        }
    };
    // Queries whose packets are lost, then resent after timeouts and a reconnect.
    for i in 0..4 {
        p.c.send(p.now, &api_body(100 + i, 2), MsgKind::Query).unwrap();
    }
    let mut resends = 0;
    for _ in 0..4 {
        for pk in p.c2s() {
            record(&pk, &p);
            resends += 1;
        }
        p.advance(40);
    }
    p.c.reconnect(p.now);
    for pk in p.c2s() {
        record(&pk, &p);
        let _ = p.deliver_s(&pk);
    }
    assert!(resends >= 4);
    p.pump();
}

#[test]
fn atk_b01_reordering_policy() {
    for strict in [false, true] {
        let scfg = SessionConfig {
            strict_order: strict,
            ..SessionConfig::DEFAULT
        };
        let mut p = Pair::with(22, client_cfg(), scfg, 0);
        p.query(&api_body(1, 1));
        p.server_events.clear();
        p.c.send(p.now, &api_body(31, 1), MsgKind::Query).unwrap();
        let first = p.c2s();
        p.c.send(p.now, &api_body(32, 1), MsgKind::Query).unwrap();
        let second = p.c2s();
        // Swapped on the wire.
        let r2 = p.deliver_s(&second[0]);
        let r1 = p.deliver_s(&first[0]);
        assert!(r2.is_ok());
        let reqs = p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count();
        if strict {
            assert_eq!(r1, Err(Dropped::OutOfOrder));
            assert_eq!(reqs, 1);
        } else {
            assert!(r1.is_ok());
            assert_eq!(reqs, 2);
        }
    }
}

#[test]
fn chk_049_atk_b16_resend_flood_bounded() {
    let mut p = settled(23);
    p.auto_answer = false;
    // The DC holds one large unacknowledged update.
    let upd = api_body(40, 1000);
    p.s.send(p.now, &upd, MsgKind::Notice).unwrap();
    let out = p.s2c();
    let v = {
        let mut b = out[0].clone();
        let v = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut b).unwrap();
        v.msg_id()
    };
    // 2000 msg_resend_req for it in one second: the resent bytes stay within the budget.
    let sid = p.c.session_id();
    let ids = [v as i64];
    let req = enc(&tl::MsgResendReq {
        msg_ids: tl::TlVec::from_slice(&ids),
    });
    let mut bytes = 0usize;
    for n in 0..2000u64 {
        let pk = to_dc(&p, sid, client_id(&p, 0, 1000 + n), 1001 + 2 * n as u32, &req);
        let _ = p.deliver_s(&pk);
        bytes += p.s2c().iter().map(Vec::len).sum::<usize>();
    }
    let budget = mtproto_sansio::session::Limits::DEFAULT.resend_burst_bytes as usize;
    assert!(bytes > upd.len(), "the first requests are served");
    assert!(bytes < budget + 2000 * 200, "resends exceed the budget: {bytes}");
}

#[test]
fn chk_052_destroy_session_of_other_session_is_none() {
    let mut p = settled(24);
    let sid = p.c.session_id();
    let d = enc(&tl::DestroySession {
        session_id: (sid ^ 7) as i64,
    });
    let pk = to_dc(&p, sid, client_id(&p, 0, 300), 1101, &d);
    assert!(p.deliver_s(&pk).is_ok());
    let mut found = false;
    for mut pk in p.s2c() {
        let v = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut pk).unwrap();
        let body = v.body().to_vec();
        let bodies: Vec<Vec<u8>> = match tl::MsgContainer::decode(&body) {
            Ok(c) => c.iter().map(|m| m.body.to_vec()).collect(),
            Err(_) => vec![body],
        };
        found |= bodies.iter().any(|b| {
            matches!(
                tl::ServiceMessage::decode_body(b),
                Ok(tl::ServiceMessage::DestroySessionNone(_))
            )
        });
    }
    assert!(found);
}

#[test]
fn chk_046_dc_forgets_session_queries_still_end_once() {
    let mut p = settled(25);
    p.s.forget_session();
    let id = p.query(&api_body(50, 1));
    assert_eq!(p.results_for(id).len(), 1);
    assert!(p.client_events.iter().any(|e| matches!(e, Ev::Reset(_))));
}

#[test]
fn quick_ack_settles_resending() {
    let ccfg = SessionConfig {
        quick_ack: true,
        ..client_cfg()
    };
    let mut p = Pair::with(26, ccfg, SessionConfig::DEFAULT, 0);
    p.query(&api_body(1, 1));
    let _ = Instant::ZERO;
    let _ = MsgId(0);
}

/// The msg_ids and bodies of every message in the client's packets.
fn client_messages(p: &Pair, pkts: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    let mut v = Vec::new();
    for pk in pkts {
        let mut b = pk.clone();
        let m = packet::decrypt(&key(p.seed), Direction::ClientToServer, &mut b).unwrap();
        let body = m.body().to_vec();
        match tl::MsgContainer::decode(&body) {
            Ok(c) => v.extend(c.iter().map(|x| (x.msg_id as u64, x.body.to_vec()))),
            Err(_) => v.push((m.msg_id(), body)),
        }
    }
    v
}

#[test]
fn chk_044_future_salts_must_answer_our_request() {
    let ccfg = SessionConfig {
        ping_interval: None,
        future_salts: true,
        ..SessionConfig::DEFAULT
    };
    let mut p = Pair::with(30, ccfg, SessionConfig::DEFAULT, 0);
    p.auto_answer = false;
    let pkts = p.c2s();
    let req = client_messages(&p, &pkts)
        .into_iter()
        .find(|(_, b)| b.get(..4) == Some(&tl::GetFutureSalts::CONSTRUCTOR.to_le_bytes()[..]))
        .map(|(id, _)| id)
        .expect("the client asks for future salts");
    let unix = (UNIX0 + (p.now.as_secs() - 1000)) as i32;
    let salts = [tl::FutureSalt {
        valid_since: unix - 10,
        valid_until: unix + 1000,
        salt: 99,
    }];
    let before = p.c.current_salt();
    for (n, req_id) in [(60u64, req ^ 4), (61, req)] {
        let f = tl::FutureSalts {
            req_msg_id: req_id as i64,
            now: unix,
            salts: tl::TlVec::from_slice(&salts),
        };
        let pk = from_dc(&p, server_id(&p, n), 1, &enc(&f));
        assert!(p.deliver_c(&pk).is_ok());
        let _ = p.c2s();
        if req_id == req {
            assert_eq!(p.c.current_salt(), 99);
        } else {
            assert_eq!(
                p.c.current_salt(),
                before,
                "salts from an answer to another request were adopted"
            );
        }
    }
}

#[test]
fn chk_045_pong_must_match_our_ping() {
    let ccfg = SessionConfig {
        ping_interval: Some(core::time::Duration::from_secs(30)),
        ..client_cfg()
    };
    let mut p = Pair::with(31, ccfg, SessionConfig::DEFAULT, 0);
    p.query(&api_body(1, 1));
    p.advance(31);
    let pkts = p.c2s();
    let (ping_msg, ping_body) = client_messages(&p, &pkts)
        .into_iter()
        .find(|(_, b)| b.get(..4) == Some(&tl::PingDelayDisconnect::CONSTRUCTOR.to_le_bytes()[..]))
        .expect("a keepalive ping");
    let ping = tl::PingDelayDisconnect::decode(&ping_body).unwrap();
    let in_flight = p.c.in_flight();
    assert!(in_flight >= 1);
    for (n, msg_id, ping_id, settles) in [
        (70u64, ping_msg, ping.ping_id ^ 1, false),
        (71, ping_msg ^ 4, ping.ping_id, false),
        (72, ping_msg, ping.ping_id, true),
    ] {
        let pong = tl::Pong {
            msg_id: msg_id as i64,
            ping_id,
        };
        let pk = from_dc(&p, server_id(&p, n), 1, &enc(&pong));
        assert!(p.deliver_c(&pk).is_ok());
        assert_eq!(p.c.in_flight() < in_flight, settles, "pong {n}");
    }
}

#[test]
fn chk_051_msg_copy_rejected() {
    let mut p = settled(32);
    let inner = api_body(5, 1);
    let orig = tl::Message::new(server_id(&p, 80) as i64, 1, &inner);
    let copy = enc(&tl::MsgCopy { orig_message: orig });
    let pk = from_dc(&p, server_id(&p, 81), 1, &copy);
    assert!(p.deliver_c(&pk).is_ok());
    assert!(p.client_events.is_empty(), "a msg_copy delivered its content");
    // The same content sent directly is an update.
    let pk = from_dc(&p, server_id(&p, 82), 1, &api_body(5, 1));
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events.len(), 1);
}

#[test]
fn chk_033_refused_then_delayed_copy_never_executes() {
    // The client's clock runs 40 s ahead: its first packet is refused (17), its query goes again in a new session.
    let mut p = Pair::with(33, client_cfg(), SessionConfig::DEFAULT, 40);
    // The client knows the current salt, so only its clock is wrong.
    let clock = mtproto_sansio::session::Clock::from_unix_hint(p.now, mtproto_sansio::time::UnixTime(UNIX0 + 40));
    *p.c = E::client(client_cfg(), key(p.seed), p.s.current_salt(), clock, p.now, &mut p.rng);
    let id = p.c.send(p.now, &api_body(90, 1), MsgKind::Query).unwrap();
    let first = p.c2s();
    assert_eq!(p.deliver_s(&first[0]), Err(Dropped::BadMsgId));
    assert_eq!(dc_codes_after(&mut p), vec![17]);
    p.pump();
    assert_eq!(p.results_for(id).len(), 1);
    // 40 s later the first packet's time is valid, and a delayed copy of it arrives: never executed again.
    p.advance(41);
    assert!(p.deliver_s(&first[0]).is_err());
    assert_eq!(
        p.server_events.iter().filter(|e| matches!(e, Ev::Request(..))).count(),
        1
    );
}

/// Delivers the DC's notifications to the client and returns their codes.
fn dc_codes_after(p: &mut Pair) -> Vec<i32> {
    let pkts = p.s2c();
    let mut codes = Vec::new();
    for pk in &pkts {
        let mut b = pk.clone();
        let v = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut b).unwrap();
        if let Ok(tl::ServiceMessage::BadMsg(m)) = tl::ServiceMessage::decode_body(v.body()) {
            codes.push(m.error_code);
        }
    }
    for pk in &pkts {
        let _ = p.deliver_c(pk);
    }
    codes
}

#[test]
fn chk_047_state_req_for_stale_acked_queries() {
    for (n, mismatched) in [(0u64, false), (1, true)] {
        let mut p = settled(34 + n);
        p.auto_answer = false;
        let body = api_body(95, 1);
        let id = p.c.send(p.now, &body, MsgKind::Query).unwrap();
        let _ = p.c2s();
        // The DC acknowledges it, then stays silent.
        let ids = [id.to_wire()];
        let pk = from_dc(
            &p,
            server_id(&p, 90),
            2,
            &enc(&tl::MsgsAck {
                msg_ids: tl::TlVec::from_slice(&ids),
            }),
        );
        assert!(p.deliver_c(&pk).is_ok());
        assert!(p.c.poll_timeout().unwrap() <= p.now.saturating_add(core::time::Duration::from_secs(45)));
        p.advance(46);
        let pk = p.c2s();
        let msgs = client_messages(&p, &pk);
        let (req, _) = msgs
            .iter()
            .find(|(_, b)| b.get(..4) == Some(&tl::MsgsStateReq::CONSTRUCTOR.to_le_bytes()[..]))
            .expect("a msgs_state_req about the stale query")
            .clone();
        // The DC says it never got it (2), with a wrong count in the mismatched case.
        let info: &[u8] = if mismatched { &[2, 2] } else { &[2] };
        let si = tl::MsgsStateInfo {
            req_msg_id: req as i64,
            info,
        };
        let pk = from_dc(&p, server_id(&p, 91), 1, &enc(&si));
        assert!(p.deliver_c(&pk).is_ok());
        let pk = p.c2s();
        let again = client_messages(&p, &pk);
        // Sent again, under its own msg_id inside a new container (the DC's replay window drops a second copy).
        let resent = again.iter().any(|(mid, b)| *b == body && *mid == id.0);
        assert_eq!(resent, !mismatched, "mismatched={mismatched}");
    }
}

/// A gzip member holding `data` in one stored block.
fn stored_gzip(data: &[u8]) -> Vec<u8> {
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1];
    g.extend_from_slice(&(data.len() as u16).to_le_bytes());
    g.extend_from_slice(&(!(data.len() as u16)).to_le_bytes());
    g.extend_from_slice(data);
    g.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    g.extend_from_slice(&(data.len() as u32).to_le_bytes());
    g
}

#[test]
fn chk_050_gzip_around_a_server_container() {
    let mut p = settled(40);
    let id = p.c.send(p.now, &api_body(60, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let rr = enc(&tl::RpcResult {
        req_msg_id: id.to_wire(),
        result: &api_body(61, 2),
    });
    let upd = api_body(62, 1);
    let c = container(&[
        (server_id(&p, 100) as i64, 1, rr),
        (server_id(&p, 101) as i64, 3, upd.clone()),
    ]);
    let g = enc(&tl::GzipPacked {
        packed_data: &stored_gzip(&c),
    });
    let pk = from_dc(&p, server_id(&p, 102), 4, &g);
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.results_for(id), vec![&Ev::Result(id, api_body(61, 2))]);
    assert!(p.client_events.contains(&Ev::Update(upd)));
    // gzip inside that gzip: the result fails as malformed, once.
    let id = p.c.send(p.now, &api_body(63, 1), MsgKind::Query).unwrap();
    let _ = p.c2s();
    let inner = enc(&tl::GzipPacked {
        packed_data: &stored_gzip(&api_body(64, 1)),
    });
    let rr = enc(&tl::RpcResult {
        req_msg_id: id.to_wire(),
        result: &inner,
    });
    let g = enc(&tl::GzipPacked {
        packed_data: &stored_gzip(&rr),
    });
    let pk = from_dc(&p, server_id(&p, 103), 1, &g);
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.results_for(id), vec![&Ev::Failed(id, FailReason::MalformedResult)]);
}

#[test]
fn chk_052_ping_delay_disconnect_clamped() {
    let mut p = settled(41);
    let sid = p.c.session_id();
    let ping = enc(&tl::PingDelayDisconnect {
        ping_id: 5,
        disconnect_delay: i32::MAX,
    });
    let pk = to_dc(&p, sid, client_id(&p, 0, 400), 1201, &ping);
    assert!(p.deliver_s(&pk).is_ok());
    // Answered with a pong, and the disconnect timer is capped.
    let limit = p.now.saturating_add(core::time::Duration::from_secs(
        mtproto_sansio::session::engine::MAX_DISCONNECT_DELAY as u64,
    ));
    assert!(p.s.poll_timeout().unwrap() <= limit);
    p.advance(mtproto_sansio::session::engine::MAX_DISCONNECT_DELAY as u64);
    p.take_server_events();
    assert!(p.server_events.contains(&Ev::Disconnect));
}

#[test]
fn chk_054_acks_batched_within_bounded_delay() {
    let mut p = settled(42);
    let _ = p.c2s();
    // One update: acknowledged with no other traffic within the 60 s delay, not before.
    let pk = from_dc(&p, server_id(&p, 110), 1, &api_body(70, 1));
    assert!(p.deliver_c(&pk).is_ok());
    assert!(p.c2s().is_empty(), "a lone ack waits to be batched");
    assert!(p.c.poll_timeout().unwrap() <= p.now.saturating_add(core::time::Duration::from_secs(60)));
    p.advance(60);
    let pk = p.c2s();
    let acks = client_messages(&p, &pk);
    assert!(
        acks.iter()
            .any(|(_, b)| b.get(..4) == Some(&tl::MsgsAck::CONSTRUCTOR.to_le_bytes()[..]))
    );
    // More than 16 pending: flushed at once, all in one msgs_ack.
    for n in 0..17u64 {
        let pk = from_dc(&p, server_id(&p, 120 + n), 1, &api_body(71, 1));
        assert!(p.deliver_c(&pk).is_ok());
    }
    let pkts = p.c2s();
    let msgs = client_messages(&p, &pkts);
    let ack = msgs
        .iter()
        .find(|(_, b)| b.get(..4) == Some(&tl::MsgsAck::CONSTRUCTOR.to_le_bytes()[..]))
        .unwrap();
    assert_eq!(tl::MsgsAck::decode(&ack.1).unwrap().msg_ids.len(), 17);
}

#[test]
fn chk_054_container_larger_than_event_queue_is_taken_whole() {
    let mut p = settled(43);
    let msgs: Vec<_> = (0..40u64)
        .map(|i| {
            (
                server_id(&p, 200 + i) as i64,
                1 + 2 * i as i32,
                api_body(80, i as usize),
            )
        })
        .collect();
    let pk = from_dc(&p, server_id(&p, 300), 100, &container(&msgs));
    assert!(p.deliver_c(&pk).is_ok());
    // Five times the event queue: the members wait in the receive buffer and reach the host as it drains.
    const { assert!(MSGS < 40) };
    assert_eq!(p.client_events.len(), 40);
    // Nothing twice: a copy in a new container (as a DC resends) is acknowledged and ignored.
    let pk = from_dc(&p, server_id(&p, 302), 100, &container(&msgs));
    assert!(p.deliver_c(&pk).is_ok());
    assert_eq!(p.client_events.len(), 40);
}

/// A DC whose host leaves `MSGS` requests unanswered holds the rest of a container until it answers, and takes no
/// other packet meanwhile: the held members lie in the receive buffer the next packet would overwrite. The event
/// and owed-answer queues are empty here, so only the held packet itself makes the engine refuse input.
#[test]
fn chk_048_dc_takes_no_input_while_a_container_waits_for_its_host() {
    let mut p = settled(45);
    let n = MSGS as u64 + 3;
    let msgs: Vec<_> = (0..n)
        .map(|i| {
            (
                client_id(&p, 0, 100 + i) as i64,
                101 + 2 * i as i32,
                api_body(81, i as usize),
            )
        })
        .collect();
    let sid = p.c.session_id();
    let pk = to_dc(&p, sid, client_id(&p, 0, 200), 100 + 2 * n as u32, &container(&msgs));
    assert!(p.deliver_s_keep_events(&pk).is_ok());
    let ids: Vec<MsgId> = drain(&mut p.s)
        .into_iter()
        .filter_map(|e| match e {
            Ev::Request(id, _) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), MSGS, "the pending-request table is full");
    assert_eq!(p.s.pending_events(), 0);
    assert!(p.s.must_drain(), "three members still wait in the receive buffer");
    let other = to_dc(&p, sid, client_id(&p, 0, 300), 200 + 2 * n as u32 + 1, &api_body(82, 1));
    assert_eq!(p.s.handle_packet(p.now, &other), Err(Dropped::Backpressure));
    // Each answer frees a slot for the next member, which arrives with its own body intact.
    for (k, id) in ids.iter().take(3).enumerate() {
        p.s.answer(p.now, *id, &api_body(83, 1)).unwrap();
        match drain(&mut p.s).as_slice() {
            [Ev::Request(_, body)] => assert_eq!(body, &api_body(81, MSGS + k)),
            other => panic!("{other:?}"),
        }
    }
    assert!(!p.s.must_drain());
    assert!(p.deliver_s_keep_events(&other).is_ok());
}

/// rpc_results in the DC's next packets: (req_msg_id, result).
fn dc_results(p: &mut Pair) -> Vec<(i64, Vec<u8>)> {
    let mut v = Vec::new();
    for mut pk in p.s2c() {
        let d = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut pk).unwrap();
        let body = d.body().to_vec();
        let bodies = match tl::MsgContainer::decode(&body) {
            Ok(c) => c.iter().map(|m| m.body.to_vec()).collect(),
            Err(_) => vec![body],
        };
        for b in bodies {
            if let Ok(tl::ServiceMessage::RpcResult(r)) = tl::ServiceMessage::decode_body(&b) {
                v.push((r.req_msg_id, r.result.to_vec()));
            }
        }
    }
    v
}

/// An answer the DC gives a query itself (here `INPUT_FETCH_ERROR` for a query that does not inflate, and
/// `rpc_answer_unknown` for an `rpc_drop_answer`) is sent once and kept nowhere; when the packet carrying it is
/// lost, the client sends the query again under its msg_id, which the replay window holds, so it is never run. The
/// DC answers it again, in a new container or alone, instead of only acknowledging it and leaving the client
/// waiting for an answer that never comes.
#[cfg(feature = "alloc")]
#[test]
fn a_query_the_dc_answered_itself_is_answered_again_when_resent() {
    let mut p = settled(46);
    let sid = p.c.session_id();
    let bad = enc(&tl::GzipPacked {
        packed_data: &failing_gzip(64),
    });
    let drop = enc(&tl::RpcDropAnswer {
        req_msg_id: client_id(&p, -5, 9) as i64,
    });
    for (n, query) in [(400u64, bad), (500, drop)] {
        let q = client_id(&p, 0, n);
        let member = [(q as i64, 301 + n as i32, query.clone())];
        let pk = to_dc(&p, sid, client_id(&p, 0, n + 1), 302 + n as u32, &container(&member));
        let r = p.deliver_s(&pk);
        assert!(r.is_ok(), "{r:?}");
        let first: Vec<_> = dc_results(&mut p).into_iter().filter(|(r, _)| *r == q as i64).collect();
        assert_eq!(first.len(), 1, "answered once");
        // Lost. Sent again in a new container, then alone: the same answer each time, and never delivered.
        let pk = to_dc(&p, sid, client_id(&p, 0, n + 2), 304 + n as u32, &container(&member));
        assert!(p.deliver_s(&pk).is_ok());
        assert_eq!(
            dc_results(&mut p)
                .into_iter()
                .filter(|(r, _)| *r == q as i64)
                .collect::<Vec<_>>(),
            first
        );
        let pk = to_dc(&p, sid, q, 301 + n as u32, &query);
        let _ = p.deliver_s(&pk);
        assert_eq!(
            dc_results(&mut p)
                .into_iter()
                .filter(|(r, _)| *r == q as i64)
                .collect::<Vec<_>>(),
            first
        );
    }
    assert!(p.server_events.iter().all(|e| !matches!(e, Ev::Request(..))));
}

// Attack regression tests under their own names (each runs the engine checks that stop it).

#[test]
fn atk_b02_no_two_plaintexts_under_one_msg_id() {
    chk_038_atk_b02_one_plaintext_per_msg_id();
}

#[test]
fn atk_b05_b06_appended_or_substituted_blocks_rejected_by_the_engine() {
    chk_028_atk_b05_b06_tampering_rejected();
}

#[test]
fn atk_b07_replay_and_cross_session_splice_dropped() {
    chk_031_atk_b07_cross_session_packet_dropped();
    chk_033_atk_b07_replay_dropped();
}

#[test]
fn atk_b08_msg_id_parity_and_time_checked_at_both_ends() {
    chk_032_atk_b08_msg_id_parity();
    chk_034_atk_b08_time_window_at_dc();
}

#[test]
fn atk_b14_gzip_bomb_fails_the_query_at_the_cap() {
    chk_050_atk_b14_gzip_results_bounded();
}

#[test]
fn atk_b15_container_count_bomb_rejected() {
    chk_048_atk_b15_containers_validated();
}

#[test]
fn atk_b16_resend_requests_bounded_by_the_budget() {
    chk_049_atk_b16_resend_flood_bounded();
}

#[test]
fn atk_b20_replayed_or_forged_salt_and_time_notifications_ignored() {
    chk_035_atk_b20_forged_or_replayed_salt_notification_ignored();
}

/// A DC engine starts a session it does not serve only on the host's word, and that word covers the one packet it
/// was given for: a later packet (by then another connection may serve the session) asks again.
#[test]
fn chk_033_host_approval_covers_one_packet_of_one_session() {
    let mut p = settled(12);
    let other = p.c.session_id() ^ 1;
    let pk = to_dc(&p, other, client_id(&p, 0, 80), 1, &api_body(9, 1));
    assert_eq!(p.s.handle_packet(p.now, &pk), Err(Dropped::UnknownSession));
    assert_eq!(p.s.take_unknown_session().map(|(sid, _)| sid), Some(other));
    assert_eq!(p.s.take_unknown_session(), None);
    // Approval of another session does not let this one in.
    p.s.approve_session(other ^ 2);
    assert_eq!(p.s.handle_packet(p.now, &pk), Err(Dropped::UnknownSession));
    // An approval is spent by the next packet that needs one, even one of another session.
    p.s.approve_session(other);
    let third = to_dc(&p, other ^ 4, client_id(&p, 0, 81), 1, &api_body(9, 2));
    assert_eq!(p.s.handle_packet(p.now, &third), Err(Dropped::UnknownSession));
    assert_eq!(p.s.handle_packet(p.now, &pk), Err(Dropped::UnknownSession));
    assert!(drain(&mut p.s).is_empty(), "nothing delivered while refused");
    p.s.approve_session(other);
    assert!(p.s.handle_packet(p.now, &pk).is_ok());
    assert_eq!(p.s.session_id(), other);
    assert!(drain(&mut p.s).iter().any(|e| matches!(e, Ev::Request(..))));
}
