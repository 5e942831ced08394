//! A connection restarted in place behaves as a new one: a client `Connection` that ran a handshake and a session,
//! then `restart_client_handshake`, sends byte for byte what a fresh `Connection::client_handshake` sends for the
//! same inputs, time and RNG, through a whole handshake (its engine then starts in place on the new key) and an
//! encrypted query. Any state of the old key or session that survived the reset (msg_ids, seq_nos, salts, the
//! replay window, queued bodies, counters) would change those bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::OnceLock;

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::{RsaPrivateKey, RsaPublicKey};
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::handshake::{ClientConfig, ServerConfig};
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Event, HostQuery, MsgKind, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use rand::SeedableRng;
use rand::rngs::StdRng;

type C = Connection<8192, 8192, 16>;
const UNIX0: u64 = 1_700_000_000;
const QUERY: [u8; 8] = [0x0d, 0xf0, 0xad, 0x0b, 1, 2, 3, 4];

fn cfg() -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig {
            ping_interval: None,
            ..SessionConfig::DEFAULT
        },
        transport: TransportConfig::INTERMEDIATE,
        unix_time_hint: Some(UnixTime(UNIX0)),
        salt: 0,
    }
}

fn rsa() -> &'static RsaPrivateKey {
    static K: OnceLock<RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| dc_key().unwrap())
}

fn trusted() -> &'static [RsaPublicKey] {
    static T: OnceLock<[RsaPublicKey; 1]> = OnceLock::new();
    T.get_or_init(|| [*rsa().public_key()])
}

fn hs() -> ClientConfig<'static> {
    ClientConfig::new(trusted(), 2)
}

/// Runs `c` (a client before its handshake) against a fresh DC connection: the handshake, then one query echoed
/// back. Client and DC draw from one RNG seeded with `seed`. Returns every byte the client sent and its key's id.
fn run(c: &mut C, seed: u64, now: Instant) -> (Vec<u8>, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut scfg = ServerConfig::new(rsa(), DhGroup::telegram(3).unwrap());
    scfg.dc_id = Some(2);
    let mut dc = Box::new(C::server_handshake(cfg(), scfg, now));
    dc.set_new_key_check(false);
    let mut out = vec![0u8; c.min_transmit_len()];
    let mut sent = Vec::new();
    let mut answered = false;
    for _ in 0..20 {
        while let Some(n) = c.poll_transmit(now, &mut rng, &mut out).unwrap() {
            sent.extend_from_slice(&out[..n]);
            let mut off = 0;
            while off < n {
                off += dc.handle_input(now, &out[off..n]).unwrap();
                if let Some(HostQuery::Session { .. }) = dc.host_query() {
                    dc.resume_session(now, None).unwrap();
                }
                let mut reqs = Vec::new();
                while let Some(ev) = dc.poll_event() {
                    if let Event::Request { msg_id, body } = ev {
                        reqs.push((msg_id, body.to_vec()));
                    }
                }
                for (id, body) in reqs {
                    dc.answer(now, id, &body).unwrap();
                }
            }
        }
        let mut back = vec![0u8; dc.min_transmit_len()];
        while let Some(n) = dc.poll_transmit(now, &mut rng, &mut back).unwrap() {
            let mut off = 0;
            while off < n {
                off += c.handle_input(now, &back[off..n]).unwrap();
                let mut key_ready = false;
                while let Some(ev) = c.poll_event() {
                    match ev {
                        Event::AuthKeyReady => key_ready = true,
                        Event::RpcResult { body, .. } => {
                            assert_eq!(body, QUERY);
                            answered = true;
                        }
                        _ => {}
                    }
                }
                if key_ready {
                    c.send(now, &QUERY, MsgKind::Query).unwrap();
                }
            }
        }
        if answered {
            return (sent, c.auth_key().unwrap().id());
        }
    }
    panic!("no answer");
}

#[test]
fn reset_client_connection_sends_what_a_new_one_sends() {
    let now = Instant::from_secs(50);
    let mut fresh = Box::new(C::client_handshake(cfg(), hs(), now));
    let (want, want_key) = run(&mut fresh, 1, now);

    // Another key and session first (another seed), then restarted in place and run as `fresh` was.
    let mut used = Box::new(C::client_handshake(cfg(), hs(), now));
    let (_, old_key) = run(&mut used, 2, now);
    assert_ne!(old_key, want_key);
    used.restart_client_handshake(cfg(), hs(), now);
    assert!(used.auth_key().is_none());
    let (got, got_key) = run(&mut used, 1, now);
    assert_eq!(got_key, want_key);
    assert_eq!(got, want, "a restarted connection sends other bytes than a new one");
}
