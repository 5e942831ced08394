//! Regression tests for what third-party clients do that the spec does not say (examples/interop/NOTES.md), at the
//! engine level, so they run without the clients installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
use mtproto_sansio::tl::{self, TlRead, TlWrite};
use rand::SeedableRng;
use rand::rngs::StdRng;
use session_util::*;

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

/// A client msg_id at the DC's now (`n` distinguishes ids within the second).
fn client_id(p: &Pair, n: u64) -> u64 {
    let unix = UNIX0 + (p.now.as_secs() - 1000);
    (unix << 32) | (n * 4 + 4)
}

/// A packet from the client to the DC, in the client's session, with the DC's current salt.
fn to_dc(p: &Pair, msg_id: u64, seq_no: u32, body: &[u8]) -> Vec<u8> {
    let h = MessageHeader {
        salt: p.s.current_salt(),
        session_id: p.c.session_id(),
        msg_id,
        seq_no,
    };
    let mut out = vec![0u8; body.len() + 2048];
    let e = packet::encrypt(
        &key(p.seed),
        Direction::ClientToServer,
        &h,
        body,
        &mut StdRng::seed_from_u64(msg_id),
        &mut out,
    )
    .unwrap();
    out.truncate(e.len);
    out
}

/// Every service message body in the DC's next packets (containers opened).
fn from_dc_bodies(p: &mut Pair) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for mut pk in p.s2c() {
        let v = packet::decrypt(&key(p.seed), Direction::ServerToClient, &mut pk).unwrap();
        let body = v.body().to_vec();
        match tl::MsgContainer::decode(&body) {
            Ok(c) => bodies.extend(c.iter().map(|m| m.body.to_vec())),
            Err(_) => bodies.push(body),
        }
    }
    bodies
}

fn pongs(bodies: &[Vec<u8>]) -> Vec<(i64, i64)> {
    bodies
        .iter()
        .filter_map(|b| match tl::ServiceMessage::decode_body(b) {
            Ok(tl::ServiceMessage::Pong(p)) => Some((p.msg_id, p.ping_id)),
            _ => None,
        })
        .collect()
}

fn bad_msg_codes(bodies: &[Vec<u8>]) -> Vec<i32> {
    bodies
        .iter()
        .filter_map(|b| match tl::ServiceMessage::decode_body(b) {
            Ok(tl::ServiceMessage::BadMsg(m)) => Some(m.error_code),
            _ => None,
        })
        .collect()
}

/// A pair whose client already completed one query (session, salt and acks settled).
fn settled(seed: u64) -> Pair {
    let mut p = Pair::new(seed);
    p.query(&api_body(1, 1));
    p.client_events.clear();
    p.server_events.clear();
    p
}

/// kurigram and Pyrogram count `ping` as not content-related and send it with an even seq_no; Telegram's DCs answer
/// it. The DC answers it too (not with bad_msg_notification 35), alone and inside a container, and still answers an
/// odd-seq_no ping; a query with an even seq_no is still refused with 35 (item 37).
#[test]
fn ping_with_even_seq_no_is_answered() {
    let mut p = settled(40);
    // Later than every message the client already sent (its last content-related seq_no is 3).
    p.advance(1);
    let ping = enc(&tl::Ping { ping_id: 0x1234_5678 });
    let id = client_id(&p, 10);
    assert_eq!(p.deliver_s(&to_dc(&p, id, 4, &ping)).map(|_| ()), Ok(()));
    let out = from_dc_bodies(&mut p);
    assert_eq!(pongs(&out), vec![(id as i64, 0x1234_5678)]);
    assert!(bad_msg_codes(&out).is_empty());

    // Inside a container, as Pyrogram's send queue packs it, beside an acknowledgment.
    let (ping_id, ack_id, cont_id) = (client_id(&p, 11), client_id(&p, 12), client_id(&p, 13));
    let acks = [1i64];
    let ack = enc(&tl::MsgsAck {
        msg_ids: tl::TlVec::from_slice(&acks),
    });
    let ping2 = enc(&tl::Ping { ping_id: 77 });
    let ms = [
        tl::Message::new(ping_id as i64, 4, &ping2),
        tl::Message::new(ack_id as i64, 4, &ack),
    ];
    let cont = enc(&tl::MsgContainer::new(&ms));
    assert!(p.deliver_s(&to_dc(&p, cont_id, 4, &cont)).is_ok());
    let out = from_dc_bodies(&mut p);
    assert_eq!(pongs(&out), vec![(ping_id as i64, 77)]);
    assert!(bad_msg_codes(&out).is_empty());

    // The spec's parity (odd) is still taken.
    let id = client_id(&p, 14);
    assert!(p.deliver_s(&to_dc(&p, id, 5, &enc(&tl::Ping { ping_id: 5 }))).is_ok());
    assert_eq!(pongs(&from_dc_bodies(&mut p)), vec![(id as i64, 5)]);

    // Anything else content-related with an even seq_no: 35, unchanged.
    let id = client_id(&p, 15);
    assert!(p.deliver_s(&to_dc(&p, id, 6, &api_body(9, 1))).is_err());
    assert_eq!(bad_msg_codes(&from_dc_bodies(&mut p)), vec![35]);
}
