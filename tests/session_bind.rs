//! Temporary-key binding (auth.bindTempAuthKey, docs/CHECKLIST.md items 40 and 53): a full bind over both engines, and
//! the DC's refusal of every tampered inner field, of a bind made for another session, and of MTProto 1.0 traffic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod session_util;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet;
use mtproto_sansio::session::bind::{BindError, BindParams, bind_perm_key_id, verify_bind, write_bind_request};
use mtproto_sansio::session::{Dropped, MsgId};
use mtproto_sansio::time::UnixTime;
use mtproto_sansio::tl::{self, AuthBindTempAuthKey, BindAuthKeyInner, TlRead, TlWrite, Writer};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use session_util::*;

fn perm() -> AuthKey {
    AuthKey::from_bytes([0x42; 256])
}

#[test]
fn chk_053_bind_round_trip() {
    let mut p = settled_pair(1);
    let exp = (UNIX0 + 3600) as i32;
    let id =
        p.c.bind_temp_key(p.now, &perm(), exp, &mut StdRng::seed_from_u64(2))
            .unwrap();
    let pkts = p.c2s();
    for pk in &pkts {
        p.deliver_s_keep_events(pk).unwrap();
    }
    let mut req = None;
    while let Some(ev) = p.s.poll_event() {
        if let mtproto_sansio::session::Event::Request { msg_id, body } = ev {
            req = Some((msg_id, body.to_vec()));
        }
    }
    let (rid, body) = req.unwrap();
    assert_eq!(rid, id);
    assert_eq!(bind_perm_key_id(&body), Some(perm().id()));
    let ok = p.s.verify_bind(p.now, &perm(), rid, &body).unwrap();
    assert_eq!(ok.expires_at, exp);
    assert_eq!(ok.temp_auth_key_id, p.c.auth_key().id());
    assert_eq!(ok.temp_session_id, p.c.session_id());
    // Another permanent key, or the same request presented as another msg_id: refused.
    assert_eq!(
        p.s.verify_bind(p.now, &AuthKey::from_bytes([1; 256]), rid, &body),
        Err(BindError::WrongPermKey)
    );
    assert_eq!(
        p.s.verify_bind(p.now, &perm(), MsgId(rid.0 + 4), &body),
        Err(BindError::Mismatch)
    );
    p.s.answer(p.now, rid, &tl::BOOL_TRUE.to_le_bytes()).unwrap();
    p.pump();
    assert_eq!(
        p.results_for(id),
        vec![&Ev::Result(id, tl::BOOL_TRUE.to_le_bytes().to_vec())]
    );
}

fn settled_pair(seed: u64) -> Pair {
    let mut p = Pair::new(seed);
    p.query(&api_body(1, 1));
    p.client_events.clear();
    p.server_events.clear();
    p.auto_answer = false;
    p
}

/// A bind body with every field chosen by the test (so each can be tampered with).
#[allow(clippy::too_many_arguments)]
fn forged(
    key: &AuthKey,
    inner_msg_id: u64,
    seq_no: u32,
    inner: BindAuthKeyInner,
    outer_nonce: i64,
    outer_exp: i32,
    outer_perm: i64,
) -> Vec<u8> {
    let mut plain = vec![0u8; 72];
    let mut w = Writer::new(&mut plain[16..32]);
    w.u64(inner_msg_id).unwrap();
    w.u32(seq_no).unwrap();
    w.u32(40).unwrap();
    inner.write(&mut Writer::new(&mut plain[32..])).unwrap();
    let mut enc = vec![0u8; 104];
    let n = packet::encrypt_v1_bind(key, &plain, &mut StdRng::seed_from_u64(3), &mut enc).unwrap();
    let req = AuthBindTempAuthKey {
        perm_auth_key_id: outer_perm,
        nonce: outer_nonce,
        expires_at: outer_exp,
        encrypted_message: &enc[..n],
    };
    let mut b = vec![0u8; req.tl_len()];
    tl::encode(&req, &mut b).unwrap();
    b
}

#[test]
fn chk_053_every_tampered_field_rejected() {
    let now = UnixTime(UNIX0);
    let session = BindParams {
        temp_auth_key_id: 0x1111,
        temp_session_id: 0x2222,
        expires_at: 0,
    };
    let req = MsgId((UNIX0 << 32) | 4);
    let exp = (UNIX0 + 600) as i32;
    let good_inner = BindAuthKeyInner {
        nonce: 77,
        temp_auth_key_id: 0x1111,
        perm_auth_key_id: perm().id() as i64,
        temp_session_id: 0x2222,
        expires_at: exp,
    };
    let pid = perm().id() as i64;
    let good = forged(&perm(), req.0, 0, good_inner, 77, exp, pid);
    assert_eq!(verify_bind(&perm(), &session, req, &good, now).unwrap().expires_at, exp);
    let cases: Vec<(&str, Vec<u8>, BindError)> = vec![
        (
            "inner msg_id",
            forged(&perm(), req.0 + 4, 0, good_inner, 77, exp, pid),
            BindError::Mismatch,
        ),
        (
            "seq_no",
            forged(&perm(), req.0, 1, good_inner, 77, exp, pid),
            BindError::Mismatch,
        ),
        (
            "nonce",
            forged(
                &perm(),
                req.0,
                0,
                BindAuthKeyInner {
                    nonce: 78,
                    ..good_inner
                },
                77,
                exp,
                pid,
            ),
            BindError::Mismatch,
        ),
        (
            "temp key id",
            forged(
                &perm(),
                req.0,
                0,
                BindAuthKeyInner {
                    temp_auth_key_id: 9,
                    ..good_inner
                },
                77,
                exp,
                pid,
            ),
            BindError::Mismatch,
        ),
        (
            "inner perm key id",
            forged(
                &perm(),
                req.0,
                0,
                BindAuthKeyInner {
                    perm_auth_key_id: 9,
                    ..good_inner
                },
                77,
                exp,
                pid,
            ),
            BindError::Mismatch,
        ),
        (
            "temp session id",
            forged(
                &perm(),
                req.0,
                0,
                BindAuthKeyInner {
                    temp_session_id: 9,
                    ..good_inner
                },
                77,
                exp,
                pid,
            ),
            BindError::Mismatch,
        ),
        (
            "outer expiry",
            forged(&perm(), req.0, 0, good_inner, 77, exp + 1, pid),
            BindError::Mismatch,
        ),
        (
            "expired",
            forged(
                &perm(),
                req.0,
                0,
                BindAuthKeyInner {
                    expires_at: (UNIX0 - 1) as i32,
                    ..good_inner
                },
                77,
                (UNIX0 - 1) as i32,
                pid,
            ),
            BindError::BadExpiry,
        ),
        (
            "outer perm key id",
            forged(&perm(), req.0, 0, good_inner, 77, exp, 5),
            BindError::WrongPermKey,
        ),
        (
            "encrypted under another key",
            forged(&AuthKey::from_bytes([9; 256]), req.0, 0, good_inner, 77, exp, pid),
            BindError::Rejected,
        ),
    ];
    for (what, body, want) in cases {
        assert_eq!(verify_bind(&perm(), &session, req, &body, now), Err(want), "{what}");
    }
    // A bind made for this key on another session.
    let other = BindParams {
        temp_session_id: 0x3333,
        ..session
    };
    assert_eq!(verify_bind(&perm(), &other, req, &good, now), Err(BindError::Mismatch));
    // A byte flipped anywhere in encrypted_message.
    for i in 0..104 {
        let mut b = good.clone();
        let at = 4 + 8 + 8 + 4 + 1 + i; // after the constructor, three fields and the 1-byte length prefix
        b[at] ^= 1;
        assert!(verify_bind(&perm(), &session, req, &b, now).is_err(), "byte {i}");
    }
    let _ = write_bind_request::<StdRng>;
}

#[test]
fn chk_040_mtproto_1_packet_on_a_2_0_session_dropped() {
    let mut p = settled_pair(5);
    let mut plain = vec![0u8; 72];
    StdRng::seed_from_u64(6).fill_bytes(&mut plain[..16]);
    plain[28..32].copy_from_slice(&40u32.to_le_bytes());
    // Under the session key itself, in MTProto 1.0.
    let mut enc = vec![0u8; 104];
    let n = packet::encrypt_v1_bind(&key(p.seed), &plain, &mut StdRng::seed_from_u64(7), &mut enc).unwrap();
    assert_eq!(p.s.handle_packet(p.now, &enc[..n]), Err(Dropped::Rejected));
    assert_eq!(p.c.handle_packet(p.now, &enc[..n]), Err(Dropped::Rejected));
    let _ = BindAuthKeyInner::decode(&[0u8; 40]);
}
