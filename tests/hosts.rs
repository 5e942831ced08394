//! The host examples against the test DC, over loopback TCP: every transport, the blocking and tokio client loops
//! (key file written, then reused), the DC's file-backed key store across restarts, the MTProxy secret, the
//! connection cap, what an idle connection costs (a task, no thread), and isolation: a connection sending garbage is
//! closed while a good one carries on.
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

use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::ClientConfig;
use mtproto_sansio::session::{MsgKind, SessionConfig};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_test_dc::api;
use mtproto_test_dc::client::{self, ClientError, Conn, Owned};
use mtproto_test_dc::dc::{self, Dc, DcOptions};
use mtproto_test_dc::link::Transport;

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");

fn dc_with(f: impl FnOnce(&mut DcOptions)) -> (Dc, RsaPublicKey) {
    let key = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let public = *key.public_key();
    let mut opts = DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret: None,
        faketls: None,
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
fn exercise(conn: &mut Conn, public: RsaPublicKey, secretless_check: bool) -> Box<client::ClientConnection> {
    let mut rng = rand::rng();
    let keys = [public];
    let (mut engine, _) = conn
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
        .unwrap();
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
        engine.send(now, &0xb81b_93d4u32.to_le_bytes(), MsgKind::Query).unwrap(),
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
    let mut engine = conn.session(SessionConfig::DEFAULT, key, 0, 0, &mut rng).unwrap();
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
        assert!(
            c.handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
                .is_err(),
            "{t}"
        );
    }
    eventually_eq(|| dc.stats().bad_connections.load(SeqCst), 2);
}

#[test]
fn connection_cap() {
    let (dc, public) = dc_with(|o| o.max_conns = 1);
    let mut rng = rand::rng();
    let mut first = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let keys = [public];
    first
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
        .unwrap();
    let mut second = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    assert!(
        second
            .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
            .is_err()
    );
    assert_eq!(dc.stats().connections.load(SeqCst), 1);
}

/// Issue 12: a connection that has not sent a byte costs the DC a task, not a thread (a thread per connection
/// touched megabytes of stack each before its first byte). 200 of them are held while the process's thread count
/// stays put, give or take the few threads of tests running meanwhile.
#[cfg(target_os = "linux")]
#[test]
fn idle_connections_cost_the_dc_no_thread() {
    let threads = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Threads:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap()
    };
    let (dc, _) = dc_with(|o| o.max_conns = 256);
    let before = threads();
    let socks: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(dc.addr).unwrap()).collect();
    eventually_eq(|| dc.stats().active.load(SeqCst) as u64, 200);
    let held = threads();
    assert!(
        held < before + 50,
        "{before} threads before, {held} with 200 idle connections"
    );
    drop(socks);
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
    let (_, perm) = c
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
        .unwrap();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at = i32::try_from(unix + 3600).unwrap();
    let bind_with = |perm_key: &AuthKey, rng: &mut rand::rngs::ThreadRng| {
        let mut t = Conn::connect(dc.addr, Transport::DEFAULT, None, rng).unwrap();
        let mut hcfg = ClientConfig::new(&keys, 2);
        hcfg.kind = KeyKind::Temporary { expires_in: 3600 };
        let (mut e, temp) = t.handshake(SessionConfig::DEFAULT, hcfg, rng).unwrap();
        assert_eq!(temp.expires_in, Some(3600));
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
    let mut dir = api::Directory::new();
    let caller = api::Caller { user: 7, date: 1 };
    let mut exec = |body: &[u8]| {
        let (reply, pushes) = api::execute(body, &mut rng, caller, &mut dir);
        assert!(pushes.is_empty());
        reply
    };
    assert_eq!(exec(&[1, 2]), api::Reply::Error(400, "INPUT_REQUEST_INVALID"));
    assert_eq!(
        exec(&api::get_dh_config(0, 5000)),
        api::Reply::Error(400, "RANDOM_LENGTH_INVALID")
    );
    assert_eq!(
        exec(&api::get_dh_config(0, -1)),
        api::Reply::Error(400, "RANDOM_LENGTH_INVALID")
    );
    match exec(&api::get_dh_config(api::DH_VERSION, 7)) {
        api::Reply::Result(r) => {
            let c = api::parse_dh_config(&r).unwrap();
            assert_eq!((c.g, c.p, c.random.len()), (None, None, 7));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        exec(&0x1234_5678u32.to_le_bytes()),
        api::Reply::Error(400, "INPUT_METHOD_INVALID")
    );
    // A known method cut short.
    assert_eq!(
        exec(&api::SEND_ENCRYPTED_FILE.to_le_bytes()),
        api::Reply::Error(400, "INPUT_REQUEST_INVALID")
    );
}

// ---- secret chats through the DC ------------------------------------------------------------------------------------

use mtproto_test_dc::secret::{Got, Party};

/// CRC32 of a TL line as the api schema defines ids: no `#id`, no `;`, `?true` fields dropped, `bytes` spelled
/// `string`, `<`→space, `>` dropped.
fn tl_crc(line: &str) -> u32 {
    let line = line.trim().trim_end_matches(';');
    let mut parts = line.split_whitespace();
    let name = parts.next().unwrap().split('#').next().unwrap().to_owned();
    let mut text = name;
    for p in parts {
        let is_true_flag = p.contains(":flags") && p.ends_with("?true");
        if !is_true_flag {
            text.push(' ');
            text.push_str(p);
        }
    }
    let text = text.replace(":bytes", ":string").replace('<', " ").replace('>', "");
    crc32fast::hash(text.as_bytes())
}

/// Every api.tl id the test DC uses is the CRC32 of its TL line (layer 229's lines, as in `test-dc/src/api.rs`).
#[test]
fn secret_chat_api_ids_are_the_crc32_of_their_tl_lines() {
    let lines: &[(&str, u32)] = &[
        (
            "messages.getDhConfig#26cf8950 version:int random_length:int = messages.DhConfig;",
            api::GET_DH_CONFIG,
        ),
        (
            "messages.receivedQueue#55a5bb66 max_qts:int = Vector<long>;",
            api::RECEIVED_QUEUE,
        ),
        (
            "messages.dhConfig#2c221edd g:int p:bytes version:int random:bytes = messages.DhConfig;",
            api::DH_CONFIG,
        ),
        (
            "messages.dhConfigNotModified#c0e24635 random:bytes = messages.DhConfig;",
            api::DH_CONFIG_NOT_MODIFIED,
        ),
        (
            "upload.saveFilePart#b304a621 file_id:long file_part:int bytes:bytes = Bool;",
            api::SAVE_FILE_PART,
        ),
        (
            "messages.requestEncryption#f64daf43 user_id:InputUser random_id:int g_a:bytes = EncryptedChat;",
            api::REQUEST_ENCRYPTION,
        ),
        (
            "messages.acceptEncryption#3dbc0415 peer:InputEncryptedChat g_b:bytes key_fingerprint:long = EncryptedChat;",
            api::ACCEPT_ENCRYPTION,
        ),
        (
            "messages.discardEncryption#f393aea0 flags:# delete_history:flags.0?true chat_id:int = Bool;",
            api::DISCARD_ENCRYPTION,
        ),
        (
            "messages.sendEncrypted#44fa7a15 flags:# silent:flags.0?true peer:InputEncryptedChat random_id:long \
             data:bytes = messages.SentEncryptedMessage;",
            api::SEND_ENCRYPTED,
        ),
        (
            "messages.sendEncryptedService#32d439a4 peer:InputEncryptedChat random_id:long data:bytes = \
             messages.SentEncryptedMessage;",
            api::SEND_ENCRYPTED_SERVICE,
        ),
        (
            "messages.sentEncryptedMessage#560f8935 date:int = messages.SentEncryptedMessage;",
            api::SENT_ENCRYPTED_MESSAGE,
        ),
        (
            "inputUser#f21158c6 user_id:long access_hash:long = InputUser;",
            api::INPUT_USER,
        ),
        (
            "inputEncryptedChat#f141b5e1 chat_id:int access_hash:long = InputEncryptedChat;",
            api::INPUT_ENCRYPTED_CHAT,
        ),
        (
            "encryptedChatEmpty#ab7ec0a0 id:int = EncryptedChat;",
            api::ENCRYPTED_CHAT_EMPTY,
        ),
        (
            "encryptedChatWaiting#66b25953 id:int access_hash:long date:int admin_id:long participant_id:long = \
             EncryptedChat;",
            api::ENCRYPTED_CHAT_WAITING,
        ),
        (
            "encryptedChatRequested#48f1d94c flags:# folder_id:flags.0?int id:int access_hash:long date:int \
             admin_id:long participant_id:long g_a:bytes = EncryptedChat;",
            api::ENCRYPTED_CHAT_REQUESTED,
        ),
        (
            "encryptedChat#61f0d4c7 id:int access_hash:long date:int admin_id:long participant_id:long \
             g_a_or_b:bytes key_fingerprint:long = EncryptedChat;",
            api::ENCRYPTED_CHAT,
        ),
        (
            "encryptedChatDiscarded#1e1c7c45 flags:# history_deleted:flags.0?true id:int = EncryptedChat;",
            api::ENCRYPTED_CHAT_DISCARDED,
        ),
        (
            "encryptedMessage#ed18c118 random_id:long chat_id:int date:int bytes:bytes file:EncryptedFile = \
             EncryptedMessage;",
            api::ENCRYPTED_MESSAGE,
        ),
        (
            "encryptedMessageService#23734b06 random_id:long chat_id:int date:int bytes:bytes = EncryptedMessage;",
            api::ENCRYPTED_MESSAGE_SERVICE,
        ),
        (
            "encryptedFileEmpty#c21f497e = EncryptedFile;",
            api::ENCRYPTED_FILE_EMPTY,
        ),
        (
            "updateNewEncryptedMessage#12bcbd9a message:EncryptedMessage qts:int = Update;",
            api::UPDATE_NEW_ENCRYPTED_MESSAGE,
        ),
        (
            "updateEncryption#b4a2e88d chat:EncryptedChat date:int = Update;",
            api::UPDATE_ENCRYPTION,
        ),
        (
            "updateShort#78d4dec1 update:Update date:int = Updates;",
            api::UPDATE_SHORT,
        ),
        (
            "messages.sendEncryptedFile#5559481d flags:# silent:flags.0?true peer:InputEncryptedChat \
             random_id:long data:bytes file:InputEncryptedFile = messages.SentEncryptedMessage;",
            api::SEND_ENCRYPTED_FILE,
        ),
        (
            "messages.sentEncryptedFile#9493ff32 date:int file:EncryptedFile = messages.SentEncryptedMessage;",
            api::SENT_ENCRYPTED_FILE,
        ),
        (
            "inputEncryptedFileEmpty#1837c364 = InputEncryptedFile;",
            api::INPUT_ENCRYPTED_FILE_EMPTY,
        ),
        (
            "inputEncryptedFileUploaded#64bd0306 id:long parts:int md5_checksum:string key_fingerprint:int = \
             InputEncryptedFile;",
            api::INPUT_ENCRYPTED_FILE_UPLOADED,
        ),
        (
            "inputEncryptedFile#5a17b5e5 id:long access_hash:long = InputEncryptedFile;",
            api::INPUT_ENCRYPTED_FILE,
        ),
        (
            "inputEncryptedFileBigUploaded#2dc173c8 id:long parts:int key_fingerprint:int = InputEncryptedFile;",
            api::INPUT_ENCRYPTED_FILE_BIG_UPLOADED,
        ),
        (
            "encryptedFile#a8008cd8 id:long access_hash:long size:long dc_id:int key_fingerprint:int = \
             EncryptedFile;",
            api::ENCRYPTED_FILE,
        ),
        (
            "updates#74ae4240 updates:Vector<Update> users:Vector<User> chats:Vector<Chat> date:int seq:int = Updates;",
            api::UPDATES,
        ),
    ];
    for (line, id) in lines {
        assert_eq!(tl_crc(line), *id, "{line}");
        let hex = line.split_whitespace().next().unwrap().split('#').nth(1).unwrap();
        assert_eq!(u32::from_str_radix(hex, 16).unwrap(), *id, "{line}");
    }
}

fn two_parties(dc: &Dc, public: RsaPublicKey) -> (Party, Party) {
    let mut rng = rand::rng();
    let a = Party::connect("A", dc.addr, public, &mut rng).unwrap();
    let b = Party::connect("B", dc.addr, public, &mut rng).unwrap();
    assert_ne!(a.user_id, b.user_id);
    (a, b)
}

/// A requests, B accepts, A completes: one key on both sides.
fn open_chat(a: &mut Party, b: &mut Party) -> api::InputChat {
    let mut rng = rand::rng();
    let peer = a.request(&mut rng, b.user_id).unwrap();
    let (accepted, admin) = b.accept(&mut rng).unwrap();
    assert_eq!(accepted, peer);
    assert_eq!(admin, a.user_id);
    a.complete(&mut rng).unwrap();
    let (ca, cb) = (a.chat.as_ref().unwrap(), b.chat.as_ref().unwrap());
    assert_eq!(ca.key_fingerprint(), cb.key_fingerprint());
    assert_eq!(ca.chat_id(), peer.chat_id);
    assert!(ca.is_originator() && !cb.is_originator());
    peer
}

fn texts(got: &[Got]) -> Vec<String> {
    got.iter()
        .filter_map(|g| match g {
            Got::Text(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

/// Sends `msgs` from `from`; `to` must read exactly them, in order.
fn say_all(from: &mut Party, to: &mut Party, msgs: &[&str]) {
    let mut rng = rand::rng();
    for m in msgs {
        from.say(&mut rng, m).unwrap();
    }
    let want: Vec<String> = msgs.iter().map(|m| m.to_string()).collect();
    let got = to
        .receive(
            &mut rng,
            Some(&|g: &[Got]| texts(g).len() >= want.len()),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(texts(&got), want);
}

/// Lets both sides answer each other until neither receives anything for 100 ms.
fn settle(a: &mut Party, b: &mut Party) -> (Vec<Got>, Vec<Got>) {
    let mut rng = rand::rng();
    let (mut ga, mut gb) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let x = a.receive(&mut rng, None, Duration::from_millis(50)).unwrap();
        let y = b.receive(&mut rng, None, Duration::from_millis(50)).unwrap();
        if x.is_empty() && y.is_empty() {
            return (ga, gb);
        }
        ga.extend(x);
        gb.extend(y);
    }
    panic!("no quiet moment");
}

/// Two clients open a secret chat through the test DC (requestEncryption, updateEncryption pushed to B,
/// acceptEncryption, updateEncryption pushed to A), talk both ways, re-key (A alone, then both at once: the
/// tie-break), keep talking under each new key, and discard the chat.
#[test]
fn secret_chat_relayed_across_rekeys() {
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let (mut a, mut b) = two_parties(&dc, public);
    open_chat(&mut a, &mut b);
    assert_eq!(dc.secret_chats(), 1);
    say_all(&mut a, &mut b, &["one", "two"]);
    say_all(&mut b, &mut a, &["three"]);
    let (ga, gb) = settle(&mut a, &mut b);
    assert!(texts(&ga).is_empty() && texts(&gb).is_empty());
    let vis = *a.chat.as_ref().unwrap().visualisation();
    let mut fps = vec![a.chat.as_ref().unwrap().key_fingerprint()];
    for both in [false, true] {
        a.rekey(&mut rng).unwrap();
        if both {
            b.rekey(&mut rng).unwrap();
        }
        let (ga, gb) = settle(&mut a, &mut b);
        let (ca, cb) = (a.chat.as_ref().unwrap(), b.chat.as_ref().unwrap());
        assert_eq!(ca.key_fingerprint(), cb.key_fingerprint(), "both = {both}");
        assert!(
            !fps.contains(&ca.key_fingerprint()),
            "the key did not change (both = {both})"
        );
        fps.push(ca.key_fingerprint());
        assert_eq!(ga.iter().filter(|g| matches!(g, Got::RekeyDone(_))).count(), 1);
        assert_eq!(gb.iter().filter(|g| matches!(g, Got::RekeyDone(_))).count(), 1);
        // Both sides read each other under the new key.
        say_all(&mut a, &mut b, &["after re-key, from A"]);
        say_all(&mut b, &mut a, &["after re-key, from B", "and again"]);
        settle(&mut a, &mut b);
        assert!(!a.chat.as_ref().unwrap().rekey_in_progress());
        assert!(!b.chat.as_ref().unwrap().rekey_in_progress());
    }
    // The visualisation is the original key's, the same on both sides, across re-keys.
    assert_eq!(*a.chat.as_ref().unwrap().visualisation(), vis);
    assert_eq!(*b.chat.as_ref().unwrap().visualisation(), vis);
    assert!(a.service_sent > 0 && b.service_sent > 0);
    assert!(dc.stats().updates_pushed.load(SeqCst) > 10);
    // A file: parts encrypted with a fresh file key and saved, then announced by sendEncryptedFile.
    let (mut enc, key, iv, file_fp) = mtproto_sansio::e2e::file::FileEncryptor::generate(&mut rng);
    let mut parts = [vec![0x41u8; 1024], vec![0x42u8; 512]];
    for (i, p) in parts.iter_mut().enumerate() {
        enc.encrypt_part(p).unwrap();
        let ok = a.call(&mut rng, &api::save_file_part(77, i as i32, p)).unwrap();
        assert!(api::is_bool_true(&ok));
    }
    let upload = api::InputFile::Uploaded {
        id: 77,
        parts: 2,
        key_fingerprint: file_fp,
    };
    let stored = a.say_with_file(&mut rng, "a file for you", upload).unwrap();
    assert_eq!((stored.size, stored.dc_id, stored.key_fingerprint), (1536, 2, file_fp));
    let got = b
        .receive(
            &mut rng,
            Some(&|g: &[Got]| g.iter().any(|x| matches!(x, Got::File(_)))),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(got, vec![Got::Text("a file for you".into()), Got::File(stored)]);
    // B learns key and iv from the (decrypted) media; the fingerprint the DC relayed matches them.
    assert!(mtproto_sansio::e2e::file::check_fingerprint(&key, &iv, stored.key_fingerprint).is_ok());
    // The upload is consumed: announcing it again fails.
    let again = a.call(
        &mut rng,
        &api::send_encrypted_file(a.peer.unwrap(), 3, &[0; 64], upload, false),
    );
    assert!(again.unwrap_err().to_string().contains("400 FILE_PARTS_INVALID"));
    settle(&mut a, &mut b);
    // Discard: B is told; the DC relays nothing more.
    let peer = a.peer.unwrap();
    a.discard(&mut rng).unwrap();
    let got = b
        .receive(&mut rng, Some(&|g: &[Got]| g.contains(&Got::Discarded)), Duration::ZERO)
        .unwrap();
    assert_eq!(got, vec![Got::Discarded]);
    let late = b.call(&mut rng, &api::send_encrypted(peer, 5, &[1; 64], false));
    assert!(late.unwrap_err().to_string().contains("400 ENCRYPTION_DECLINED"));
    let again = a.call(&mut rng, &api::discard_encryption(peer.chat_id, false));
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("400 ENCRYPTION_ALREADY_DECLINED")
    );
}

fn rpc_err(r: Result<Vec<u8>, Box<dyn std::error::Error>>) -> String {
    match r {
        Ok(b) => panic!("answered {b:02x?}"),
        Err(e) => e.to_string(),
    }
}

/// A third user cannot write into, accept, or discard someone else's chat; unknown chats, wrong access hashes,
/// unknown users and a second accept are refused with the api's rpc_errors; nothing reaches the outsider.
#[test]
fn secret_chat_refuses_outsiders_and_unknown_chats() {
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let (mut a, mut b) = two_parties(&dc, public);
    let mut c = Party::connect("C", dc.addr, public, &mut rng).unwrap();
    // Unknown user, and oneself.
    let g = [2u8; 256];
    let e = rpc_err(a.call(&mut rng, &api::request_encryption(a.user_id ^ 2, 1, &g)));
    assert!(e.contains("400 USER_ID_INVALID"), "{e}");
    let e = rpc_err(a.call(&mut rng, &api::request_encryption(a.user_id, 1, &g)));
    assert!(e.contains("400 USER_ID_INVALID"), "{e}");
    let peer = open_chat(&mut a, &mut b);
    settle(&mut a, &mut b);
    // The outsider knows the chat id and even the access hash: still refused everywhere.
    let e = rpc_err(c.call(&mut rng, &api::send_encrypted(peer, 9, &[7; 96], false)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let e = rpc_err(c.call(&mut rng, &api::send_encrypted(peer, 9, &[7; 96], true)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let e = rpc_err(c.call(&mut rng, &api::accept_encryption(peer, &g, 1)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let e = rpc_err(c.call(&mut rng, &api::discard_encryption(peer.chat_id, true)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    // Unknown chat id, wrong access hash, a second accept.
    let unknown = api::InputChat {
        chat_id: peer.chat_id ^ 0x40,
        access_hash: peer.access_hash,
    };
    let e = rpc_err(a.call(&mut rng, &api::send_encrypted(unknown, 9, &[7; 96], false)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let e = rpc_err(a.call(&mut rng, &api::discard_encryption(unknown.chat_id, false)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let forged = api::InputChat {
        chat_id: peer.chat_id,
        access_hash: peer.access_hash ^ 1,
    };
    let e = rpc_err(a.call(&mut rng, &api::send_encrypted(forged, 9, &[7; 96], false)));
    assert!(e.contains("400 CHAT_ID_INVALID"), "{e}");
    let e = rpc_err(b.call(&mut rng, &api::accept_encryption(peer, &g, 1)));
    assert!(e.contains("400 ENCRYPTION_ALREADY_ACCEPTED"), "{e}");
    // The outsider got no update; the parties still talk.
    assert!(
        c.receive(&mut rng, None, Duration::from_millis(200))
            .unwrap()
            .is_empty()
    );
    say_all(&mut a, &mut b, &["still private"]);
    assert!(
        c.receive(&mut rng, None, Duration::from_millis(100))
            .unwrap()
            .is_empty()
    );
}

/// The client-end decoders of what the DC pushes: every truncation is an error, never a panic.
#[test]
fn pushed_updates_decode_and_truncations_fail() {
    let mut rng = rand::rng();
    let mut dir = api::Directory::new();
    let (a, b) = (api::Caller { user: 11, date: 5 }, api::Caller { user: 13, date: 6 });
    // B must be known to be named.
    let (r, p) = api::execute(&api::get_dh_config(0, 0), &mut rng, b, &mut dir);
    assert!(matches!(r, api::Reply::Result(_)) && p.is_empty());
    let (r, p) = api::execute(&api::request_encryption(13, 1, &[3; 256]), &mut rng, a, &mut dir);
    let api::Reply::Result(waiting) = r else {
        panic!("{r:?}")
    };
    let api::ChatView::Waiting {
        peer,
        admin_id,
        participant_id,
    } = api::parse_encrypted_chat(&waiting).unwrap()
    else {
        panic!()
    };
    assert_eq!((admin_id, participant_id), (11, 13));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].to, 13);
    let ups = api::parse_updates(&p[0].updates).unwrap();
    assert!(matches!(ups[..], [api::UpdateView::Encryption(api::ChatView::Requested { g_a, .. })] if g_a == [3; 256]));
    let (r, p) = api::execute(&api::accept_encryption(peer, &[4; 256], 77), &mut rng, b, &mut dir);
    assert!(
        matches!(api::parse_encrypted_chat(&match r { api::Reply::Result(x) => x, e => panic!("{e:?}") }).unwrap(),
        api::ChatView::Ready { g_a_or_b, key_fingerprint: 77, .. } if g_a_or_b == [3; 256])
    );
    assert_eq!(p[0].to, 11);
    let mut all = vec![p[0].updates.clone()];
    for service in [false, true] {
        let (r, p) = api::execute(&api::send_encrypted(peer, 42, &[9; 40], service), &mut rng, a, &mut dir);
        assert_eq!(
            api::parse_sent_encrypted(&match r {
                api::Reply::Result(x) => x,
                e => panic!("{e:?}"),
            })
            .unwrap(),
            (5, None)
        );
        assert_eq!(p[0].to, 13);
        let ups = api::parse_updates(&p[0].updates).unwrap();
        assert_eq!(
            ups,
            vec![api::UpdateView::NewEncrypted {
                chat_id: peer.chat_id,
                random_id: 42,
                bytes: &[9; 40],
                service,
                file: None,
                qts: 1 + i32::from(service),
            }]
        );
        all.push(p[0].updates.clone());
    }
    for u in &all {
        for n in 0..u.len() {
            assert!(api::parse_updates(&u[..n]).is_err(), "{n}");
        }
        let mut longer = u.clone();
        longer.push(0);
        assert!(api::parse_updates(&longer).is_err());
    }
}

/// `sendEncryptedFile`: an upload completes into a kept file (size summed over the parts saved, the sender's key
/// fingerprint, this DC's id) relayed with the message; incomplete, foreign, empty and forged files are refused.
#[test]
fn encrypted_files_need_complete_uploads_of_the_sender() {
    let mut rng = rand::rng();
    let mut dir = api::Directory::for_dc(4);
    let (a, b) = (api::Caller { user: 21, date: 9 }, api::Caller { user: 23, date: 9 });
    let mut run = |body: &[u8], who: api::Caller| api::execute(body, &mut rng, who, &mut dir);
    run(&api::get_dh_config(0, 0), b);
    let (r, _) = run(&api::request_encryption(23, 1, &[3; 256]), a);
    let api::Reply::Result(w) = r else { panic!("{r:?}") };
    let peer = match api::parse_encrypted_chat(&w).unwrap() {
        api::ChatView::Waiting { peer, .. } => peer,
        other => panic!("{other:?}"),
    };
    run(&api::accept_encryption(peer, &[4; 256], 5), b);
    let err = |r: (api::Reply, Vec<api::Push>)| match r {
        (api::Reply::Error(code, m), p) if p.is_empty() => (code, m),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        err(run(&api::save_file_part(1, -1, &[0; 16]), a)),
        (400, "FILE_PART_INVALID")
    );
    assert_eq!(
        err(run(&api::save_file_part(1, api::MAX_FILE_PARTS, &[0; 16]), a)),
        (400, "FILE_PART_INVALID")
    );
    for (part, len) in [(0, 1024), (2, 100)] {
        assert_eq!(
            run(&api::save_file_part(1, part, &vec![0; len]), a).0,
            api::Reply::Result(tl_true())
        );
    }
    let up = |parts| api::InputFile::Uploaded {
        id: 1,
        parts,
        key_fingerprint: 0x1234,
    };
    // Part 1 missing; then a count that does not match; B cannot use A's upload.
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 1, &[0; 32], up(3), false), a)),
        (400, "FILE_PARTS_INVALID")
    );
    run(&api::save_file_part(1, 1, &[0; 1024]), a);
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 1, &[0; 32], up(2), false), a)),
        (400, "FILE_PARTS_INVALID")
    );
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 1, &[0; 32], up(3), true), b)),
        (400, "FILE_PARTS_INVALID")
    );
    let empty = api::InputFile::Empty;
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 1, &[0; 32], empty, false), a)),
        (400, "MEDIA_EMPTY")
    );
    // A complete upload (the big-file form).
    let (r, p) = run(&api::send_encrypted_file(peer, 8, &[6; 48], up(3), true), a);
    let api::Reply::Result(sent) = r else { panic!("{r:?}") };
    let (date, file) = api::parse_sent_encrypted(&sent).unwrap();
    let file = file.unwrap();
    assert_eq!(
        (date, file.size, file.dc_id, file.key_fingerprint),
        (9, 2148, 4, 0x1234)
    );
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].to, 23);
    let ups = api::parse_updates(&p[0].updates).unwrap();
    assert!(
        matches!(ups[..], [api::UpdateView::NewEncrypted { random_id: 8, bytes, service: false, file: Some(f), .. }]
            if bytes == [6; 48] && f == file)
    );
    // B sends the kept file back by id and access hash; a forged hash is refused.
    let existing = api::InputFile::Existing {
        id: file.id,
        access_hash: file.access_hash,
    };
    let (r, p) = run(&api::send_encrypted_file(peer, 9, &[1; 16], existing, false), b);
    assert!(matches!(r, api::Reply::Result(_)) && p[0].to == 21);
    let forged = api::InputFile::Existing {
        id: file.id,
        access_hash: file.access_hash ^ 1,
    };
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 9, &[1; 16], forged, false), b)),
        (400, "FILE_ID_INVALID")
    );
    // An outsider with a complete upload of its own still cannot write into the chat.
    let c = api::Caller { user: 25, date: 9 };
    run(&api::save_file_part(5, 0, &[0; 16]), c);
    let own = api::InputFile::Uploaded {
        id: 5,
        parts: 1,
        key_fingerprint: 1,
    };
    assert_eq!(
        err(run(&api::send_encrypted_file(peer, 9, &[1; 16], own, false), c)),
        (400, "CHAT_ID_INVALID")
    );
}

fn tl_true() -> Vec<u8> {
    mtproto_sansio::tl::BOOL_TRUE.to_le_bytes().to_vec()
}

/// A new key on a fresh connection: the handshake, then a session on it.
fn new_key_session(
    dc: &Dc,
    public: RsaPublicKey,
    rng: &mut rand::rngs::ThreadRng,
) -> (Conn, Box<client::ClientConnection>, mtproto_sansio::handshake::Outcome) {
    let keys = [public];
    let mut conn = Conn::connect(dc.addr, Transport::DEFAULT, None, rng).unwrap();
    let (engine, out) = conn
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), rng)
        .unwrap();
    (conn, engine, out)
}

fn get_dh_config_ok(conn: &mut Conn, engine: &mut client::ClientConnection, rng: &mut rand::rngs::ThreadRng) {
    let ev = conn
        .call(
            engine,
            rng,
            &api::get_dh_config(0, 8),
            Duration::from_secs(10),
            &mut |_| {},
        )
        .unwrap();
    assert!(matches!(ev, Owned::Result(..)), "{ev:?}");
}

/// Connection hand-over: a client reconnecting under the same session continues it on the new connection (no
/// `new_session_created`), and a query it re-sends there, executed on the old connection whose answer was lost with
/// it, is answered from the session, not executed again.
#[test]
fn reconnect_continues_the_session_and_a_resent_query_runs_once() {
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let (mut conn, mut engine, _) = new_key_session(&dc, public, &mut rng);
    get_dh_config_ok(&mut conn, &mut engine, &mut rng);
    assert_eq!(dc.stats().sessions.load(SeqCst), 1);
    // A query the DC executes, whose answer the client never reads: the connection drops first.
    let req = engine
        .send(client::now(), &api::get_dh_config(0, 16), MsgKind::Query)
        .unwrap();
    conn.flush(&mut engine, &mut rng).unwrap();
    eventually_eq(|| dc.stats().requests.load(SeqCst), 2);
    drop(conn);
    let mut conn2 = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    engine.reconnect(client::now());
    let answers = conn2
        .wait_for(&mut engine, &mut rng, &[req], Duration::from_secs(10), &mut |_| {})
        .unwrap();
    assert!(
        answers.iter().any(|a| matches!(a, Owned::Result(r, _) if *r == req)),
        "{answers:?}"
    );
    get_dh_config_ok(&mut conn2, &mut engine, &mut rng);
    let s = dc.stats();
    assert_eq!(s.sessions_resumed.load(SeqCst), 1);
    assert_eq!(s.sessions.load(SeqCst), 1, "the reconnect started a new session");
    assert_eq!(s.requests.load(SeqCst), 3, "the re-sent query was executed again");
}

/// docs/CHECKLIST.md item 25 through test_dc's key store: a new key whose id the store already holds (forced by the
/// store's test hook) is answered `dh_gen_retry`; the client's second key is stored and works.
#[test]
fn chk_025_test_dc_key_id_collision_retries_with_a_second_key() {
    let (dc, public) = dc_with(|_| {});
    dc.collide_next_keys(1);
    let mut rng = rand::rng();
    let (mut conn, mut engine, out) = new_key_session(&dc, public, &mut rng);
    let s = dc.stats();
    assert_eq!(s.key_collisions.load(SeqCst), 1);
    assert_eq!(s.keys_created.load(SeqCst), 1);
    assert_eq!(dc.key_count(), 1);
    get_dh_config_ok(&mut conn, &mut engine, &mut rng);
    // The stored key is the client's: a new connection under it is served.
    let mut conn2 = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let mut engine2 = conn2
        .session(
            SessionConfig::DEFAULT,
            out.auth_key,
            out.server_salt,
            out.server_time_offset,
            &mut rng,
        )
        .unwrap();
    get_dh_config_ok(&mut conn2, &mut engine2, &mut rng);
}

/// The store keeps each key's salt schedule (in the `--keys` file too): a client that kept its salt is not told
/// `bad_server_salt` on a new connection, nor after the DC restarted.
#[test]
fn stored_salt_survives_reconnects_and_dc_restarts() {
    let store = tmp("dc_salts.txt");
    let (dc1, public) = dc_with(|o| o.keys_file = Some(store.clone()));
    let mut rng = rand::rng();
    let (mut conn, mut engine, out) = new_key_session(&dc1, public, &mut rng);
    get_dh_config_ok(&mut conn, &mut engine, &mut rng);
    let fresh_session = |dc: &Dc, rng: &mut rand::rngs::ThreadRng| {
        let mut c = Conn::connect(dc.addr, Transport::DEFAULT, None, rng).unwrap();
        let mut e = c
            .session(
                SessionConfig::DEFAULT,
                out.auth_key.clone(),
                out.server_salt,
                out.server_time_offset,
                rng,
            )
            .unwrap();
        get_dh_config_ok(&mut c, &mut e, rng);
        assert_eq!(e.stats().bad_msgs, 0, "bad_server_salt on a new connection");
    };
    fresh_session(&dc1, &mut rng);
    dc1.stop();
    let (dc2, _) = dc_with(|o| o.keys_file = Some(store.clone()));
    assert_eq!(dc2.key_count(), 1);
    fresh_session(&dc2, &mut rng);
}

/// Key files written before salt schedules were stored (one key per line) still load.
#[test]
fn key_file_without_salt_schedules_still_loads() {
    let store = tmp("dc_old_keys.txt");
    let key = mtproto_sansio::crypto::auth_key::AuthKey::from_bytes([0x5c; 256]);
    std::fs::write(&store, format!("{}\n", hex::encode(key.as_bytes()))).unwrap();
    let (dc, _) = dc_with(|o| o.keys_file = Some(store.clone()));
    assert_eq!(dc.key_count(), 1);
    let mut rng = rand::rng();
    let mut conn = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let mut engine = conn.session(SessionConfig::DEFAULT, key, 0, 0, &mut rng).unwrap();
    get_dh_config_ok(&mut conn, &mut engine, &mut rng);
}

/// A bare MTProto client over plain intermediate framing that, like Telethon, resends nothing on its own and
/// acknowledges everything it receives at once.
struct RawClient {
    sock: TcpStream,
    key: mtproto_sansio::crypto::auth_key::AuthKey,
    salt: u64,
    session_id: u64,
    offset: i64,
    last_id: u64,
    /// Content-related messages sent so far.
    content: u32,
}

impl RawClient {
    fn connect(addr: std::net::SocketAddr, out: &mtproto_sansio::handshake::Outcome) -> Self {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_nodelay(true).unwrap();
        sock.write_all(&[0xee; 4]).unwrap();
        RawClient {
            sock,
            key: out.auth_key.clone(),
            salt: out.server_salt,
            session_id: rand::random(),
            offset: out.server_time_offset,
            last_id: 0,
            content: 0,
        }
    }

    /// A msg_id on the DC's clock: increasing, a multiple of 4.
    fn msg_id(&mut self) -> i64 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let secs = (t.as_secs() as i64 + self.offset) as u64;
        let frac = (u64::from(t.subsec_nanos()) << 32) / 1_000_000_000;
        let id = ((secs << 32) | frac) & !3;
        self.last_id = id.max(self.last_id + 4);
        self.last_id as i64
    }

    fn seq(&mut self, content: bool) -> i32 {
        let s = 2 * self.content + u32::from(content);
        self.content += u32::from(content);
        s as i32
    }

    fn send(&mut self, msg_id: i64, seq_no: i32, body: &[u8]) {
        use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader};
        let h = MessageHeader {
            salt: self.salt,
            session_id: self.session_id,
            msg_id: msg_id as u64,
            seq_no: seq_no as u32,
        };
        let mut out = vec![0u8; body.len() + 1100];
        let e = packet::encrypt(
            &self.key,
            Direction::ClientToServer,
            &h,
            body,
            &mut rand::rng(),
            &mut out,
        )
        .unwrap();
        let mut frame = (e.len as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&out[..e.len]);
        self.sock.write_all(&frame).unwrap();
    }

    /// `bodies` as content-related messages in one container; their msg_ids.
    fn send_container(&mut self, bodies: &[Vec<u8>]) -> Vec<i64> {
        let msgs: Vec<(i64, i32)> = bodies.iter().map(|_| (self.msg_id(), self.seq(true))).collect();
        let inner: Vec<mtproto_sansio::tl::Message<'_>> = msgs
            .iter()
            .zip(bodies)
            .map(|(&(id, seq), b)| mtproto_sansio::tl::Message::new(id, seq, b))
            .collect();
        let c = mtproto_sansio::tl::to_vec(&mtproto_sansio::tl::MsgContainer::new(&inner)).unwrap();
        let (id, seq) = (self.msg_id(), self.seq(false));
        self.send(id, seq, &c);
        msgs.into_iter().map(|(id, _)| id).collect()
    }

    /// The messages of the next packet (a container's members one by one); acknowledges the content-related ones.
    /// `None` if nothing came within `wait`.
    fn recv(&mut self, wait: Duration) -> Option<Vec<Vec<u8>>> {
        use mtproto_sansio::crypto::packet::{self, Direction};
        use mtproto_sansio::tl::TlRead;
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut len = [0u8; 4];
        match self.sock.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None;
            }
            Err(e) => panic!("{e}"),
        }
        let mut pk = vec![0u8; u32::from_le_bytes(len) as usize];
        self.sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        self.sock.read_exact(&mut pk).unwrap();
        assert!(pk.len() > 4, "transport error {pk:?}");
        let v = packet::decrypt(&self.key, Direction::ServerToClient, &mut pk).unwrap();
        let body = v.body().to_vec();
        let mut msgs = vec![(v.msg_id() as i64, v.seq_no() as i32, body.clone())];
        if let Ok(c) = mtproto_sansio::tl::MsgContainer::decode(&body) {
            msgs = c.iter().map(|m| (m.msg_id, m.seqno, m.body.to_vec())).collect();
        }
        let ids: Vec<i64> = msgs.iter().filter(|m| m.1 % 2 == 1).map(|m| m.0).collect();
        if !ids.is_empty() {
            let ack = mtproto_sansio::tl::to_vec(&mtproto_sansio::tl::MsgsAck {
                msg_ids: mtproto_sansio::tl::TlVec::from_slice(&ids),
            })
            .unwrap();
            let (id, seq) = (self.msg_id(), self.seq(false));
            self.send(id, seq, &ack);
        }
        Some(msgs.into_iter().map(|m| m.2).collect())
    }
}

/// Issue 11 defect 7 through test_dc, whose connections hold 64 messages: a client that never resends sends a
/// container of 100 pings and one of 100 queries, back to back. Every one gets its answer, once, also after the
/// client acknowledged them (63 pongs and nothing more, before the fix).
#[test]
fn chk_048_test_dc_answers_every_message_of_a_container_of_100() {
    use mtproto_sansio::tl;
    let (dc, public) = dc_with(|_| {});
    let mut rng = rand::rng();
    let keys = [public];
    let mut conn = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rng).unwrap();
    let (_, out) = conn
        .handshake(SessionConfig::DEFAULT, ClientConfig::new(&keys, 2), &mut rng)
        .unwrap();
    drop(conn);
    let mut c = RawClient::connect(dc.addr, &out);
    let pings: Vec<Vec<u8>> = (0..100)
        .map(|i| tl::to_vec(&tl::Ping { ping_id: 7000 + i }).unwrap())
        .collect();
    let queries: Vec<Vec<u8>> = (0..100).map(|_| api::get_dh_config(0, 8)).collect();
    let ping_ids = c.send_container(&pings);
    let query_ids = c.send_container(&queries);
    let mut pongs = std::collections::HashMap::<i64, Vec<i64>>::new();
    let mut results = std::collections::HashMap::<i64, usize>::new();
    let mut take = |msgs: Vec<Vec<u8>>| {
        for b in msgs {
            match tl::ServiceMessage::decode_body(&b) {
                Ok(tl::ServiceMessage::Pong(p)) => pongs.entry(p.msg_id).or_default().push(p.ping_id),
                Ok(tl::ServiceMessage::RpcResult(r)) => {
                    assert!(api::parse_dh_config(r.result).is_ok(), "not a dhConfig: {:?}", r.result);
                    *results.entry(r.req_msg_id).or_default() += 1;
                }
                _ => {}
            }
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match c.recv(Duration::from_millis(200)) {
            Some(msgs) => take(msgs),
            // Quiet: everything came, or the DC stalled (checked below).
            None => break,
        }
    }
    // Acknowledged: nothing more comes.
    while let Some(msgs) = c.recv(Duration::from_millis(500)) {
        take(msgs);
    }
    for (i, id) in ping_ids.iter().enumerate() {
        assert_eq!(pongs.get(id), Some(&vec![7000 + i as i64]), "ping {i}");
    }
    for (i, id) in query_ids.iter().enumerate() {
        assert_eq!(results.get(id), Some(&1), "query {i}");
    }
    assert_eq!(dc.stats().requests.load(SeqCst), 100);
}

/// A facade client without a key over TCP to `dc` (obfuscated padded intermediate, with `secret`): the handshake,
/// then one RPC answered. Returns every byte it sent, in order: the connection a prober records.
fn record_obfuscated_connection(dc: &Dc, public: RsaPublicKey, secret: Option<&[u8]>) -> Vec<u8> {
    use mtproto_sansio::session::{Connection, ConnectionConfig, Event, TransportConfig};
    use mtproto_sansio::time::UnixTime;
    use std::io::ErrorKind;
    type C = Connection<65_536, 65_536, 16>;
    let keys: &'static [RsaPublicKey] = Box::leak(Box::new([public]));
    let unix = client::unix_micros_at_zero() / 1_000_000 + client::now().as_secs();
    let cfg = ConnectionConfig {
        engine: SessionConfig::DEFAULT,
        transport: TransportConfig {
            framing: mtproto_sansio::transport::Framing::PaddedIntermediate,
            obfuscated: true,
            dc_id: Some(2),
        },
        unix_time_hint: Some(UnixTime(unix)),
        salt: 0,
    };
    let mut c = Box::new(C::client_handshake(cfg, ClientConfig::new(keys, 2), client::now()));
    c.set_proxy_secret(secret.map(|s| ProxySecret::from_bytes(s).unwrap()))
        .unwrap();
    let mut sock = TcpStream::connect(dc.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let (mut rng, mut out, mut buf) = (rand::rng(), vec![0u8; c.min_transmit_len()], vec![0u8; 65_536]);
    let (mut wire, mut query, mut answered) = (Vec::new(), None, false);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !answered {
        assert!(
            std::time::Instant::now() < deadline,
            "the recorded connection got no answer"
        );
        let now = client::now();
        if query.is_none() && c.is_encrypted() {
            query = Some(c.send(now, &api::get_dh_config(0, 8), MsgKind::Query).unwrap());
        }
        while let Some(n) = c.poll_transmit(now, &mut rng, &mut out).unwrap() {
            sock.write_all(&out[..n]).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        match sock.read(&mut buf) {
            Ok(0) => panic!("the DC closed the recorded connection"),
            Ok(n) => {
                let mut off = 0;
                while off < n {
                    off += c.handle_input(client::now(), &buf[off..n]).unwrap();
                    while let Some(ev) = c.poll_event() {
                        answered |= matches!(ev, Event::RpcResult { req, .. } if Some(req) == query);
                    }
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                c.handle_timeout(client::now()).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    wire
}

/// Sends `bytes` on a new connection: the DC must close it without sending a byte.
fn closed_without_answer(dc: &Dc, bytes: &[u8], what: &str) {
    let mut s = TcpStream::connect(dc.addr).unwrap();
    // The DC may close (and reset) before it has read everything.
    let _ = s.write_all(bytes);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("{what}: the DC kept the connection open")
            }
            Err(_) => break,
        }
    }
    assert!(got.is_empty(), "{what}: the DC answered with {} bytes", got.len());
}

/// Attack B19 against test_dc: a client's whole obfuscated connection (handshake and an RPC), recorded and replayed
/// by a prober on a new TCP connection, is closed at its init without an answer, as is the init alone, exactly
/// like an init the DC cannot open; no key is made and nothing executed. A fresh client still gets served. Plain
/// obfuscated and behind a `dd` secret.
#[test]
fn atk_b19_test_dc_closes_a_replayed_obfuscated_connection() {
    let dd: [u8; 17] = [0xdd, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6];
    for secret in [None, Some(&dd[..])] {
        let (dc, public) = dc_with(|o| o.secret = secret.map(|s| ProxySecret::from_bytes(s).unwrap()));
        let wire = record_obfuscated_connection(&dc, public, secret);
        let (keys, requests) = (dc.key_count(), dc.stats().requests.load(SeqCst));
        assert_eq!((keys, requests), (1, 1));
        closed_without_answer(&dc, &wire, "replayed connection");
        closed_without_answer(&dc, &wire[..64], "replayed init");
        let mut foreign = wire[..64].to_vec();
        foreign[20] ^= 0x40;
        closed_without_answer(&dc, &foreign, "an init the DC cannot open");
        eventually_eq(|| dc.stats().bad_connections.load(SeqCst), 3);
        assert_eq!(dc.key_count(), keys);
        assert_eq!(dc.stats().requests.load(SeqCst), requests);
        record_obfuscated_connection(&dc, public, secret);
        assert_eq!(dc.key_count(), 2);
        dc.stop();
    }
}

// ---- every request through the generated types (issue 13) ---------------------------------------------------------

/// `tl_check::roundtrip`: the test DC's calls round-trip byte-identically, wrapped or not; a call whose bytes are
/// not the canonical encoding of its decoded value (a flags bit no field has) is a mismatch even inside a wrapper,
/// which only a deep re-encoding sees (a copying writer writes the wrapped query back unchanged); ids the schema
/// lacks are not mismatches.
#[test]
fn tl_check_round_trips_requests_and_finds_non_canonical_ones() {
    use mtproto_test_dc::tl_check::{Tally, Verdict, roundtrip};
    let dh = api::get_dh_config(0, 16);
    let wrapped = api::with_init_connection(229, &dh);
    assert_eq!(roundtrip(&dh), Verdict::Identical(vec![api::GET_DH_CONFIG]));
    assert_eq!(
        roundtrip(&wrapped),
        Verdict::Identical(vec![api::INVOKE_WITH_LAYER, api::INIT_CONNECTION, api::GET_DH_CONFIG])
    );
    let peer = api::InputChat {
        chat_id: 5,
        access_hash: 6,
    };
    for call in [
        api::send_encrypted(peer, 1, &[9; 40], false),
        api::send_encrypted_file(
            peer,
            2,
            &[8; 40],
            api::InputFile::Existing { id: 3, access_hash: 4 },
            false,
        ),
        api::request_encryption(77, 1, &[1; 256]),
    ] {
        assert!(matches!(roundtrip(&call), Verdict::Identical(_)));
    }
    // discardEncryption with flags bit 1 set: valid TL (the validator ignores bits no field has), not canonical.
    let mut odd = api::discard_encryption(7, false);
    odd[4] |= 2;
    assert!(
        matches!(roundtrip(&odd), Verdict::Mismatch { at: 4, .. }),
        "{:?}",
        roundtrip(&odd)
    );
    let mut inner = api::INVOKE_WITHOUT_UPDATES.to_le_bytes().to_vec();
    inner.extend_from_slice(&odd);
    let wrapped_odd = api::with_init_connection(229, &inner);
    match roundtrip(&wrapped_odd) {
        Verdict::Mismatch { calls, .. } => assert_eq!(calls.last(), Some(&api::DISCARD_ENCRYPTION)),
        other => panic!("{other:?}"),
    }
    let unknown = 0x1234_5678u32.to_le_bytes();
    assert!(matches!(
        roundtrip(&unknown),
        Verdict::NotInSchema { id: 0x1234_5678, .. }
    ));
    let mut t = Tally::default();
    for b in [&dh[..], &wrapped, &odd, &unknown] {
        t.record(&roundtrip(b));
    }
    assert_eq!(
        (t.checked, t.identical, t.mismatches.len(), t.not_in_schema.len()),
        (4, 2, 1, 1)
    );
    assert_eq!(t.functions.len(), 3);
}
