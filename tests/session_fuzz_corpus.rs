//! Builds the seed corpora of the `session_client` and `session_server` fuzz targets from real exchanges under the
//! fuzzing key (run with `cargo test --test session_fuzz_corpus -- --ignored` to regenerate), and checks that the
//! checked-in seeds drive the engines past decryption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::path::PathBuf;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::fuzzing::crypto::fuzz_auth_key;
use mtproto_sansio::fuzzing::session::{
    FUZZ_RX, FUZZ_START, FUZZ_UNIX, FuzzRng, fuzz_client, fuzz_client_with, fuzz_config, fuzz_server,
};
use mtproto_sansio::session::{Clock, Event, MsgKind, Session};
use mtproto_sansio::time::UnixTime;
use mtproto_sansio::tl::{self, TlWrite};

type E = Session<FUZZ_RX, 4096, 8>;

fn record(out: &mut Vec<u8>, flags: u8, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    out.push(flags);
    out.extend_from_slice(bytes);
}

fn enc<T: TlWrite>(v: &T) -> Vec<u8> {
    let mut b = vec![0u8; v.tl_len()];
    tl::encode(v, &mut b).unwrap();
    b
}

fn drain_packets(e: &mut E, rng: &mut FuzzRng) -> Vec<Vec<u8>> {
    let mut out = vec![0u8; FUZZ_RX + 64];
    let mut v = Vec::new();
    while let Some(p) = e.poll_packet(FUZZ_START, rng, &mut out).unwrap() {
        v.push(out[..p.len].to_vec());
    }
    v
}

fn answer_all(e: &mut E) {
    let mut reqs = Vec::new();
    while let Some(ev) = e.poll_event() {
        if let Event::Request { msg_id, .. } = ev {
            reqs.push(msg_id);
        }
    }
    for r in reqs {
        let _ = e.answer(FUZZ_START, r, &[0x0d, 0xf0, 0xad, 0x0b, 9, 0, 0, 0]);
    }
}

/// Seeds for the client target: what a DC answers to the target's client, record by record.
fn client_seeds() -> Vec<(String, Vec<u8>)> {
    let mut first = Vec::new();
    let (mut c, q) = fuzz_client_with(&mut |p| first.push(p.to_vec()));
    let mut rng = FuzzRng::new(b"gen-client");
    let clock = Clock::from_unix_hint(FUZZ_START, UnixTime(FUZZ_UNIX));
    let mut s = E::server(fuzz_config(), fuzz_auth_key(), clock, FUZZ_START, &mut rng);
    s.approve_first_session(); // the only engine under this key
    let mut data = Vec::new();
    let mut seeds = Vec::new();
    let mut to_server = first;
    for round in 0..4 {
        for p in &to_server {
            let _ = s.handle_packet(FUZZ_START, p);
            answer_all(&mut s);
        }
        let replies = drain_packets(&mut s, &mut rng);
        for r in &replies {
            record(&mut data, 0, r);
            let _ = c.handle_packet(FUZZ_START, r);
            while c.poll_event().is_some() {}
        }
        seeds.push((format!("exchange_{round}"), data.clone()));
        to_server = drain_packets(&mut c, &mut rng);
    }
    // Plaintext records for the fuzzing-only hook: service messages about the target's own queries.
    let sid = 0u64;
    let mut plain = |name: &str, n: u64, seq: u32, body: Vec<u8>| {
        let mut r = Vec::new();
        r.extend_from_slice(&0u64.to_le_bytes());
        r.extend_from_slice(&sid.to_le_bytes());
        r.extend_from_slice(&((FUZZ_UNIX << 32) | (4 * n + 1)).to_le_bytes());
        r.extend_from_slice(&seq.to_le_bytes());
        r.extend_from_slice(&body);
        let mut d = Vec::new();
        record(&mut d, 1, &r);
        seeds.push((name.to_string(), d));
    };
    let rr = enc(&tl::RpcResult {
        req_msg_id: q[0].to_wire(),
        result: &[1, 2, 3, 4],
    });
    plain("plain_rpc_result", 1, 1, rr.clone());
    let err = enc(&tl::RpcError {
        error_code: 303,
        error_message: b"PHONE_MIGRATE_2",
    });
    plain(
        "plain_rpc_error",
        2,
        1,
        enc(&tl::RpcResult {
            req_msg_id: q[1].to_wire(),
            result: &err,
        }),
    );
    plain(
        "plain_bad_msg_16",
        3,
        1,
        enc(&tl::BadMsg {
            bad_msg_id: q[0].to_wire(),
            bad_msg_seqno: 1,
            error_code: 16,
        }),
    );
    plain(
        "plain_bad_server_salt",
        4,
        1,
        enc(&tl::BadServerSalt {
            bad_msg_id: q[1].to_wire(),
            bad_msg_seqno: 3,
            error_code: 48,
            new_server_salt: 77,
        }),
    );
    plain(
        "plain_new_session",
        5,
        1,
        enc(&tl::NewSessionCreated {
            first_msg_id: q[1].to_wire(),
            unique_id: 1,
            server_salt: 5,
        }),
    );
    let ids = [q[0].to_wire(), q[1].to_wire()];
    plain(
        "plain_msgs_ack",
        6,
        0,
        enc(&tl::MsgsAck {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    let inner = [
        tl::Message::new(((FUZZ_UNIX << 32) | 29) as i64, 1, &rr),
        tl::Message::new(((FUZZ_UNIX << 32) | 33) as i64, 3, &[0x0d, 0xf0, 0xad, 0x0b]),
    ];
    let c = enc(&tl::MsgContainer::new(&inner));
    plain("plain_container", 9, 4, c.clone());
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1];
    g.extend_from_slice(&(c.len() as u16).to_le_bytes());
    g.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
    g.extend_from_slice(&c);
    g.extend_from_slice(&crc32fast::hash(&c).to_le_bytes());
    g.extend_from_slice(&(c.len() as u32).to_le_bytes());
    plain("plain_gzip_container", 10, 4, enc(&tl::GzipPacked { packed_data: &g }));
    let ids = [q[0].to_wire(), ((FUZZ_UNIX << 32) | 5) as i64];
    plain(
        "plain_resend_req",
        11,
        5,
        enc(&tl::MsgResendReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    plain(
        "plain_state_req",
        12,
        7,
        enc(&tl::MsgsStateReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    plain(
        "plain_user_pong",
        13,
        9,
        enc(&tl::Pong {
            msg_id: q[0].to_wire(),
            ping_id: 1,
        }),
    );
    seeds
}

/// Seeds for the DC target: what a client sends the target's DC.
fn server_seeds() -> Vec<(String, Vec<u8>)> {
    let mut s = fuzz_server();
    s.approve_first_session(); // the only engine under this key
    let mut rng = FuzzRng::new(b"gen-server");
    let clock = Clock::from_unix_hint(FUZZ_START, UnixTime(FUZZ_UNIX));
    let mut c = E::client(fuzz_config(), fuzz_auth_key(), 0, clock, FUZZ_START, &mut rng);
    c.send(FUZZ_START, &[0x0d, 0xf0, 0xad, 0x0b, 1, 0, 0, 0], MsgKind::Query)
        .unwrap();
    let mut data = Vec::new();
    let mut seeds = Vec::new();
    let mut first = None;
    for round in 0..4 {
        let pkts = drain_packets(&mut c, &mut rng);
        for p in &pkts {
            first.get_or_insert_with(|| p.clone());
            record(&mut data, 0, p);
            let _ = s.handle_packet(FUZZ_START, p);
            answer_all(&mut s);
        }
        seeds.push((format!("exchange_{round}"), data.clone()));
        for r in drain_packets(&mut s, &mut rng) {
            let _ = c.handle_packet(FUZZ_START, &r);
            while c.poll_event().is_some() {}
        }
        if round == 1 {
            c.send(FUZZ_START, &enc(&tl::Ping { ping_id: 5 }), MsgKind::Notice)
                .unwrap();
            c.send(FUZZ_START, &enc(&tl::GetFutureSalts { num: 3 }), MsgKind::Notice)
                .unwrap();
        }
    }
    // The whole exchange, then its first packet again: a replay the DC must refuse (and a session hand-over too).
    let mut replayed = data.clone();
    record(&mut replayed, 0, &first.unwrap());
    seeds.push(("exchange_replayed".to_string(), replayed));
    // Plaintext records for the fuzzing-only hook (the target fills in the DC's salt and the session).
    let mut plain = |name: &str, n: u64, seq: u32, body: Vec<u8>| {
        let mut r = Vec::new();
        r.extend_from_slice(&0u64.to_le_bytes());
        r.extend_from_slice(&0x5e55_1011u64.to_le_bytes());
        r.extend_from_slice(&((FUZZ_UNIX << 32) | (4 * n + 4)).to_le_bytes());
        r.extend_from_slice(&seq.to_le_bytes());
        r.extend_from_slice(&body);
        let mut d = Vec::new();
        record(&mut d, 1, &r);
        seeds.push((name.to_string(), d));
    };
    let q = [0x0d, 0xf0, 0xad, 0x0b, 1, 0, 0, 0];
    plain("plain_query", 1, 1, q.to_vec());
    plain(
        "plain_ping_delay",
        2,
        1,
        enc(&tl::PingDelayDisconnect {
            ping_id: 1,
            disconnect_delay: 75,
        }),
    );
    plain("plain_future_salts", 3, 1, enc(&tl::GetFutureSalts { num: 64 }));
    let ids = [((FUZZ_UNIX << 32) | 4) as i64, ((FUZZ_UNIX << 32) | 3) as i64];
    plain(
        "plain_state_req",
        4,
        1,
        enc(&tl::MsgsStateReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    plain(
        "plain_resend_req",
        5,
        1,
        enc(&tl::MsgResendReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    plain(
        "plain_destroy_session",
        6,
        1,
        enc(&tl::DestroySession { session_id: 7 }),
    );
    plain(
        "plain_msgs_ack",
        7,
        0,
        enc(&tl::MsgsAck {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    let inner = [
        tl::Message::new(((FUZZ_UNIX << 32) | 40) as i64, 1, &q),
        tl::Message::new(((FUZZ_UNIX << 32) | 44) as i64, 3, &q),
    ];
    plain("plain_container", 12, 4, enc(&tl::MsgContainer::new(&inner)));
    let mut g = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1];
    g.extend_from_slice(&(q.len() as u16).to_le_bytes());
    g.extend_from_slice(&(!(q.len() as u16)).to_le_bytes());
    g.extend_from_slice(&q);
    g.extend_from_slice(&crc32fast::hash(&q).to_le_bytes());
    g.extend_from_slice(&(q.len() as u32).to_le_bytes());
    plain("plain_gzip_query", 13, 1, enc(&tl::GzipPacked { packed_data: &g }));
    plain(
        "plain_http_wait",
        14,
        2,
        enc(&tl::HttpWait {
            max_delay: 100,
            wait_after: 50,
            max_wait: 25_000,
        }),
    );
    plain(
        "plain_resend_ans_req",
        15,
        3,
        enc(&tl::MsgResendAnsReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        }),
    );
    seeds
}

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name)
}

#[test]
#[ignore]
fn generate_session_corpora() {
    for (name, seeds) in [("session_client", client_seeds()), ("session_server", server_seeds())] {
        let d = dir(name);
        std::fs::create_dir_all(&d).unwrap();
        for (file, data) in seeds {
            std::fs::write(d.join(file), data).unwrap();
        }
        std::fs::write(d.join("empty"), []).unwrap();
        std::fs::write(d.join("garbage"), [0xff; 40]).unwrap();
    }
}

/// The exchange seeds are real: the engines accept them, so the fuzzer starts past decryption.
#[test]
fn exchange_seeds_are_accepted() {
    let (mut c, _) = fuzz_client();
    let client = std::fs::read(dir("session_client").join("exchange_3")).unwrap();
    let mut accepted = 0;
    let mut rest = &client[..];
    while rest.len() >= 3 {
        let len = u16::from_le_bytes([rest[0], rest[1]]) as usize;
        if c.handle_packet(FUZZ_START, &rest[3..3 + len]).is_ok() {
            accepted += 1;
        }
        while c.poll_event().is_some() {}
        rest = &rest[3 + len..];
    }
    assert!(accepted >= 2, "{accepted}");
    let _: Option<AuthKey> = None;
}
