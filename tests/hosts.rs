//! The host examples against the test DC, over loopback TCP: every transport, the blocking and tokio client loops
//! (key file written, then reused), the DC's file-backed key store across restarts, the MTProxy secret, the
//! connection cap, and isolation: a connection sending garbage is closed while a good one carries on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

#[allow(clippy::duplicate_mod)]
#[path = "../examples/blocking_client.rs"]
mod blocking_client;
#[allow(clippy::duplicate_mod)]
#[path = "../examples/demo.rs"]
mod demo;
#[allow(clippy::duplicate_mod)]
#[path = "../examples/tokio_client.rs"]
mod tokio_client;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use blocking_client::common::api;
use blocking_client::common::client::{self, ClientError, Conn, Owned};
use blocking_client::common::dc::{self, Dc, DcOptions};
use blocking_client::common::link::Transport;
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{EngineConfig, MsgKind};
use mtproto_sansio::transport::obfuscated::ProxySecret;

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");

fn dc_with(f: impl FnOnce(&mut DcOptions)) -> (Dc, RsaPublicKey) {
    let key = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let public = *key.public_key();
    let mut opts = DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret: None,
        dc_id: Some(2),
        max_conns: 64,
        keys_file: None,
        verbose: false,
    };
    f(&mut opts);
    (dc::start(opts).unwrap(), public)
}

/// The DC counts a closed connection after the client has seen it close: wait for the count.
fn eventually_eq(what: impl Fn() -> u64, want: u64) {
    for _ in 0..200 {
        if what() == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(what(), want);
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtproto-sansio-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    p
}

/// Handshake, then the api subset: getDhConfig wrapped in initConnection, saveFilePart, an unknown method.
fn exercise(conn: &mut Conn, public: RsaPublicKey, secretless_check: bool) -> Box<client::ClientEngine> {
    let mut rng = rand::rng();
    let keys = [public];
    let out = conn.handshake(ClientConfig::new(&keys, 2), &mut rng).unwrap();
    let mut engine = client::session(
        EngineConfig::DEFAULT,
        out.auth_key,
        out.server_salt,
        out.server_time_offset,
        &mut rng,
    );
    let first = api::with_init_connection(229, &api::get_dh_config(0, 48));
    match conn
        .call(&mut engine, &mut rng, &first, Duration::from_secs(10), &mut |_| {})
        .unwrap()
    {
        Owned::Result(_, b) => {
            let c = api::parse_dh_config(&b).unwrap();
            assert_eq!(c.g, Some(3));
            assert_eq!(c.p.unwrap().len(), 256);
            assert_eq!(c.random.len(), 48);
        }
        other => panic!("{other:?}"),
    }
    let now = client::now();
    let reqs = [
        engine
            .send(now, &api::save_file_part(1, 0, &[7; 4000]), MsgKind::Query)
            .unwrap(),
        engine.send(now, &0x1fb3_3026u32.to_le_bytes(), MsgKind::Query).unwrap(),
    ];
    let answers = conn
        .wait_for(&mut engine, &mut rng, &reqs, Duration::from_secs(10), &mut |_| {})
        .unwrap();
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Owned::Result(r, b) if *r == reqs[0] && api::is_bool_true(b)))
    );
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Owned::Error(r, 400, m) if *r == reqs[1] && m == "INPUT_METHOD_INVALID"))
    );
    let _ = secretless_check;
    engine
}

#[test]
fn every_transport_against_the_dc() {
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    for t in Transport::ALL {
        let mut conn = Conn::connect(dc.addr, t, None, &mut rng).unwrap();
        exercise(&mut conn, public, true);
    }
    assert_eq!(dc.stats().keys_created.load(SeqCst), Transport::ALL.len() as u64);
    assert_eq!(dc.stats().bad_connections.load(SeqCst), 0);
}

#[test]
fn garbage_loses_only_its_own_connection() {
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let mut good = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let mut engine = exercise(&mut good, public, true);
    let mut misaligned = vec![0xee, 0xee, 0xee, 0xee, 36, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
    misaligned.extend_from_slice(&[0; 28]);
    let garbage: [&[u8]; 5] = [
        &[0x42; 64],                                       // no valid obfuscated init
        &[0xee, 0xee, 0xee, 0xee, 0xff, 0xff, 0xff, 0x7f], // intermediate, absurd length
        &[0xef, 0x01, 1, 2, 3, 4],                         // abridged, 4-byte packet: no auth_key_id
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",              // HTTP
        &misaligned, // intermediate, an "encrypted" packet of 36 bytes: not 24 + a multiple of 16
    ];
    for g in garbage {
        let mut s = TcpStream::connect(dc.addr).unwrap();
        s.write_all(g).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        // The DC closes it: EOF (or a reset).
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("garbage {g:02x?} got {n} bytes back"),
        }
    }
    // The good connection is unaffected.
    let ev = good
        .call(
            &mut engine,
            &mut rng,
            &api::get_dh_config(1, 8),
            Duration::from_secs(10),
            &mut |_| {},
        )
        .unwrap();
    assert!(matches!(ev, Owned::Result(..)), "{ev:?}");
    eventually_eq(|| dc.stats().bad_connections.load(SeqCst), 5);
}

#[test]
fn unknown_key_gets_404() {
    let (dc, _) = dc_with(|_| {});
    let mut rng = rand::rng();
    let mut conn = Conn::connect(
        dc.addr,
        Transport::plain(mtproto_sansio::transport::Framing::Intermediate),
        None,
        &mut rng,
    )
    .unwrap();
    let key = mtproto_sansio::crypto::auth_key::AuthKey::from_bytes([9; 256]);
    let mut engine = client::session(EngineConfig::DEFAULT, key, 0, 0, &mut rng);
    let r = conn.call(
        &mut engine,
        &mut rng,
        &api::get_dh_config(0, 0),
        Duration::from_secs(5),
        &mut |_| {},
    );
    assert!(matches!(r, Err(ClientError::Code(-404))), "{r:?}");
}

#[test]
fn key_store_file_survives_a_dc_restart() {
    let store = tmp("dc_keys.txt");
    let key_file = tmp("client.key");
    let (dc1, public) = dc_with(|o| o.keys_file = Some(store.clone()));
    let opts = blocking_client::Options {
        dc: dc1.addr,
        rsa_key: public,
        transport: Transport::DEFAULT,
        secret: None,
        key_file: Some(key_file.clone()),
        calls: 2,
        max_attempts: 3,
    };
    let s = blocking_client::run(&opts).unwrap();
    assert!(s.created_key);
    assert_eq!(s.rtts.len(), 2);
    dc1.stop();
    // A new DC process on the same store knows the key; the client reuses its file.
    let (dc2, _) = dc_with(|o| o.keys_file = Some(store.clone()));
    assert_eq!(dc2.key_count(), 1);
    let s = blocking_client::run(&blocking_client::Options { dc: dc2.addr, ..opts }).unwrap();
    assert!(!s.created_key);
    assert_eq!(dc2.stats().keys_created.load(SeqCst), 0);
}

#[test]
fn tokio_client_creates_then_reuses_its_key() {
    let (dc, public) = dc_with(|_| {});
    let key_file = tmp("tokio.key");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (i, t) in ["obf-padded", "full", "abridged"].into_iter().enumerate() {
        let (created, conns) = rt
            .block_on(tokio_client::run(
                dc.addr,
                public,
                t.parse().unwrap(),
                Some(key_file.clone()),
                3,
            ))
            .unwrap();
        assert_eq!(created, i == 0, "{t}");
        assert_eq!(conns, 1);
    }
    assert_eq!(dc.stats().keys_created.load(SeqCst), 1);
    assert_eq!(dc.stats().requests.load(SeqCst), 9);
}

#[test]
fn mtproxy_secret_required_when_set() {
    let raw = [0x5au8; 16];
    let (dc, public) = dc_with(|o| o.secret = Some(ProxySecret::from_bytes(&raw).unwrap()));
    let mut rng = rand::rng();
    let secret = ProxySecret::from_bytes(&raw).unwrap();
    let mut conn = Conn::connect(dc.addr, Transport::DEFAULT, Some(secret), &mut rng).unwrap();
    exercise(&mut conn, public, false);
    // Without the secret (plain, or obfuscated with no secret) the connection is refused.
    for t in [
        Transport::plain(mtproto_sansio::transport::Framing::Intermediate),
        Transport::DEFAULT,
    ] {
        let mut c = Conn::connect(dc.addr, t, None, &mut rng).unwrap();
        let keys = [public];
        assert!(c.handshake(ClientConfig::new(&keys, 2), &mut rng).is_err(), "{t}");
    }
    eventually_eq(|| dc.stats().bad_connections.load(SeqCst), 2);
}

#[test]
fn connection_cap() {
    let (dc, public) = dc_with(|o| o.max_conns = 1);
    let mut rng = rand::rng();
    let mut first = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let keys = [public];
    first.handshake(ClientConfig::new(&keys, 2), &mut rng).unwrap();
    let mut second = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    assert!(second.handshake(ClientConfig::new(&keys, 2), &mut rng).is_err());
    assert_eq!(dc.stats().connections.load(SeqCst), 1);
}

/// PFS: a temporary key bound to the permanent one is accepted; a binding to a permanent key the DC does not know
/// (or signed with another key) is refused with `ENCRYPTED_MESSAGE_INVALID`.
#[test]
fn bind_temp_auth_key() {
    use mtproto_sansio::crypto::auth_key::AuthKey;
    use mtproto_sansio::handshake::KeyKind;
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let keys = [public];
    let mut c = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let perm = c.handshake(ClientConfig::new(&keys, 2), &mut rng).unwrap();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = i32::try_from(unix + 3600).unwrap();
    let bind_with = |perm_key: &AuthKey, rng: &mut rand::rngs::ThreadRng| {
        let mut t = Conn::connect(dc.addr, Transport::DEFAULT, None, rng).unwrap();
        let mut hcfg = ClientConfig::new(&keys, 2);
        hcfg.kind = KeyKind::Temporary { expires_in: 3600 };
        let temp = t.handshake(hcfg, rng).unwrap();
        assert_eq!(temp.expires_in, Some(3600));
        let mut e = client::session(
            EngineConfig::DEFAULT,
            temp.auth_key,
            temp.server_salt,
            temp.server_time_offset,
            rng,
        );
        let req = e.bind_temp_key(client::now(), perm_key, expires_at, rng).unwrap();
        t.wait_for(&mut e, rng, &[req], Duration::from_secs(10), &mut |_| {})
            .unwrap()
            .pop()
            .unwrap()
    };
    assert!(matches!(bind_with(&perm.auth_key, &mut rng), Owned::Result(_, b) if api::is_bool_true(&b)));
    let stranger = AuthKey::from_bytes([3; 256]);
    assert!(matches!(bind_with(&stranger, &mut rng), Owned::Error(_, 400, m) if m == "ENCRYPTED_MESSAGE_INVALID"));
    assert_eq!(dc.stats().binds.load(SeqCst), 1);
}

/// The README's first command, end to end: handshake, RPCs, container, rpc_error, injected loss and resend,
/// reconnect, temporary key binding. `demo::main` fails on any deviation.
#[test]
fn demo_runs() {
    demo::main().unwrap();
}

fn tl_str(v: &mut Vec<u8>, s: &[u8]) {
    v.push(s.len() as u8);
    v.extend_from_slice(s);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

/// The test DC's api unwrapping: `initConnection` with a proxy and JSON params (skipped without recursion), the
/// nesting limit, truncation, and the answers to bad arguments.
#[test]
fn api_unwrapping_and_limits() {
    let mut rng = rand::rng();
    let mut b = Vec::new();
    b.extend_from_slice(&api::INVOKE_WITH_LAYER.to_le_bytes());
    b.extend_from_slice(&229i32.to_le_bytes());
    b.extend_from_slice(&api::INIT_CONNECTION.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes()); // proxy and params present
    b.extend_from_slice(&7i32.to_le_bytes());
    for s in [&b"dev"[..], b"os", b"1.0", b"en", b"", b"en"] {
        tl_str(&mut b, s);
    }
    b.extend_from_slice(&api::INPUT_CLIENT_PROXY.to_le_bytes());
    tl_str(&mut b, b"10.0.0.1");
    b.extend_from_slice(&443i32.to_le_bytes());
    // jsonObject [ "k": jsonArray [ jsonNull, jsonBool true, jsonNumber 1.5, jsonString "x" ] ]
    b.extend_from_slice(&0x99c1_d49du32.to_le_bytes());
    b.extend_from_slice(&mtproto_sansio::tl::VECTOR.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0xc0de_1bd9u32.to_le_bytes());
    tl_str(&mut b, b"k");
    b.extend_from_slice(&0xf744_4763u32.to_le_bytes());
    b.extend_from_slice(&mtproto_sansio::tl::VECTOR.to_le_bytes());
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(&0x3f6d_7b68u32.to_le_bytes());
    b.extend_from_slice(&0xc734_5e6au32.to_le_bytes());
    b.extend_from_slice(&mtproto_sansio::tl::BOOL_TRUE.to_le_bytes());
    b.extend_from_slice(&0x2be0_dfa4u32.to_le_bytes());
    b.extend_from_slice(&1.5f64.to_le_bytes());
    b.extend_from_slice(&0xb71e_767au32.to_le_bytes());
    tl_str(&mut b, b"x");
    b.extend_from_slice(&api::get_dh_config(0, 5));
    let u = api::unwrap(&b).unwrap();
    assert_eq!(u.layer, Some(229));
    assert!(u.init_connection);
    assert_eq!(
        u.call,
        api::Call::GetDhConfig {
            version: 0,
            random_length: 5
        }
    );
    // Every truncation is an error, never a panic.
    for n in 0..b.len() {
        assert!(api::unwrap(&b[..n]).is_err(), "{n}");
    }
    // JSON nested deeper than MAX_JSON_DEPTH.
    let mut deep = api::INIT_CONNECTION.to_le_bytes().to_vec();
    deep.extend_from_slice(&2u32.to_le_bytes());
    deep.extend_from_slice(&7i32.to_le_bytes());
    for _ in 0..6 {
        tl_str(&mut deep, b"");
    }
    for _ in 0..=api::MAX_JSON_DEPTH {
        deep.extend_from_slice(&0xf744_4763u32.to_le_bytes());
        deep.extend_from_slice(&mtproto_sansio::tl::VECTOR.to_le_bytes());
        deep.extend_from_slice(&1u32.to_le_bytes());
    }
    deep.extend_from_slice(&0x3f6d_7b68u32.to_le_bytes());
    assert_eq!(api::unwrap(&deep), Err(api::ApiError::TooDeep));
    // Wrappers around wrappers, beyond MAX_WRAPPERS.
    let many: Vec<u8> = std::iter::repeat_n(api::INVOKE_WITHOUT_UPDATES.to_le_bytes(), api::MAX_WRAPPERS + 1)
        .flatten()
        .collect();
    assert_eq!(api::unwrap(&many), Err(api::ApiError::TooDeep));
    // Answers.
    assert_eq!(
        api::execute(&[1, 2], &mut rng),
        api::Reply::Error(400, "INPUT_REQUEST_INVALID")
    );
    assert_eq!(
        api::execute(&api::get_dh_config(0, 5000), &mut rng),
        api::Reply::Error(400, "RANDOM_LENGTH_INVALID")
    );
    assert_eq!(
        api::execute(&api::get_dh_config(0, -1), &mut rng),
        api::Reply::Error(400, "RANDOM_LENGTH_INVALID")
    );
    match api::execute(&api::get_dh_config(api::DH_VERSION, 7), &mut rng) {
        api::Reply::Result(r) => {
            let c = api::parse_dh_config(&r).unwrap();
            assert_eq!((c.g, c.p, c.random.len()), (None, None, 7));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        api::execute(&0x1234_5678u32.to_le_bytes(), &mut rng),
        api::Reply::Error(400, "INPUT_METHOD_INVALID")
    );
}
