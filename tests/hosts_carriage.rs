//! Our client against the test DC over each carriage on the DC's one port, over loopback sockets: HTTP (`POST /api`),
//! WebSocket (`/apiws`, subprotocol `binary`, obfuscated padded intermediate inside) and fake-TLS (`ee` secret),
//! each with the handshake and RPCs; a connection that sends garbage HTTP, WebSocket or TLS loses only itself;
//! a replayed or foreign-domain ClientHello is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use mtproto_sansio::carriage::faketls::{FakeTlsSecret, client_hello};
use mtproto_sansio::carriage::http::encode_request;
use mtproto_sansio::carriage::ws::{ClientHandshake, Opcode, WS_PATH, WsCodec};
use mtproto_sansio::crypto::pem::parse_private_pem;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake as HsClient, MAX_CLIENT_MESSAGE};
use mtproto_sansio::session::{MsgKind, SessionConfig};
use mtproto_sansio::transport::Role;
use mtproto_test_dc::api;
use mtproto_test_dc::carriage_conn::{Carriage, HTTP_MAX_HELD};
use mtproto_test_dc::client::{self, ClientError, Conn, Owned};
use mtproto_test_dc::dc::{self, Dc, DcOptions};
use mtproto_test_dc::link::Transport;

const KEY_PKCS1: &str = include_str!("data/keys/dc_test_pkcs1.pem");

fn ee() -> FakeTlsSecret {
    FakeTlsSecret::new(&[0x5a; 16], b"www.example.org").unwrap()
}

fn start(faketls: Option<FakeTlsSecret>) -> (Dc, RsaPublicKey) {
    let key = parse_private_pem(KEY_PKCS1.as_bytes()).unwrap();
    let public = *key.public_key();
    let dc = dc::start(DcOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rsa_key: key,
        secret: None,
        faketls,
        dc_id: Some(2),
        max_conns: 64,
        keys_file: None,
        verbose: false,
    })
    .unwrap();
    (dc, public)
}

fn transport(c: Carriage) -> Transport {
    Transport::CARRIAGES.into_iter().find(|t| t.carriage == c).unwrap()
}

fn connect(dc: &Dc, c: Carriage, ee: Option<&FakeTlsSecret>) -> Conn {
    Conn::connect_with(dc.addr, transport(c), None, ee, &mut rand::rng()).unwrap()
}

/// Handshake, then the api subset: getDhConfig in initConnection, saveFilePart and an unknown method in flight
/// together, then a burst of pings' worth of calls.
fn exercise(conn: &mut Conn, public: RsaPublicKey) -> Box<client::ClientConnection> {
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
            assert_eq!(c.random.len(), 48);
        }
        other => panic!("{other:?}"),
    }
    let now = client::now();
    let part: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    let mut reqs = vec![
        engine
            .send(now, &api::save_file_part(1, 0, &part), MsgKind::Query)
            .unwrap(),
        engine.send(now, &0xb81b_93d4u32.to_le_bytes(), MsgKind::Query).unwrap(),
    ];
    for i in 0..8 {
        reqs.push(engine.send(now, &api::get_dh_config(1, 8 + i), MsgKind::Query).unwrap());
    }
    let answers = conn
        .wait_for(&mut engine, &mut rng, &reqs, Duration::from_secs(20), &mut |_| {})
        .unwrap();
    assert_eq!(answers.len(), reqs.len());
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
    for (i, r) in reqs[2..].iter().enumerate() {
        let got = answers.iter().find(|a| a.req() == Some(*r)).unwrap();
        match got {
            Owned::Result(_, b) => assert_eq!(api::parse_dh_config(b).unwrap().random.len(), 8 + i),
            other => panic!("{other:?}"),
        }
    }
    engine
}

#[test]
fn carriage_names_parse() {
    for (name, c) in [
        ("http", Carriage::Http),
        ("ws", Carriage::Ws),
        ("faketls", Carriage::FakeTls),
    ] {
        let t: Transport = name.parse().unwrap();
        assert_eq!(t.carriage, c);
        assert_eq!(t.to_string(), name);
    }
    assert!("tls".parse::<Transport>().is_err());
}

#[test]
fn http_and_ws_on_the_tcp_port() {
    let (dc, public) = start(None);
    // Plain TCP first, on the same port.
    let mut tcp = Conn::connect(dc.addr, Transport::DEFAULT, None, &mut rand::rng()).unwrap();
    exercise(&mut tcp, public);
    for c in [Carriage::Http, Carriage::Ws] {
        let mut conn = connect(&dc, c, None);
        exercise(&mut conn, public);
    }
    assert_eq!(dc.stats().keys_created.load(SeqCst), 3);
    assert_eq!(dc.stats().bad_connections.load(SeqCst), 0);
    assert_eq!(dc.stats().rpc_errors.load(SeqCst), 3);
    dc.stop();
}

#[test]
fn faketls_ee_on_the_tcp_port() {
    let secret = ee();
    let (dc, public) = start(Some(secret.clone()));
    let mut conn = connect(&dc, Carriage::FakeTls, Some(&secret));
    exercise(&mut conn, public);
    // The same key also opens obfuscated connections, plain and inside WebSocket.
    let mut obf = Conn::connect(
        dc.addr,
        Transport::DEFAULT,
        Some(secret.proxy_secret()),
        &mut rand::rng(),
    )
    .unwrap();
    exercise(&mut obf, public);
    let mut ws = Conn::connect(
        dc.addr,
        transport(Carriage::Ws),
        Some(secret.proxy_secret()),
        &mut rand::rng(),
    )
    .unwrap();
    exercise(&mut ws, public);
    assert_eq!(dc.stats().bad_connections.load(SeqCst), 0);
    // Without the key, WebSocket is refused.
    let mut bare = connect(&dc, Carriage::Ws, None);
    assert!(
        bare.handshake(
            SessionConfig::DEFAULT,
            ClientConfig::new(&[public], 2),
            &mut rand::rng()
        )
        .is_err()
    );
    dc.stop();
}

#[test]
fn faketls_refused_without_ee() {
    let (dc, _) = start(None);
    let secret = ee();
    match Conn::connect_with(
        dc.addr,
        transport(Carriage::FakeTls),
        None,
        Some(&secret),
        &mut rand::rng(),
    ) {
        Err(ClientError::Carriage(_) | ClientError::Io(_)) => {}
        Ok(_) => panic!("fake-TLS accepted without an ee secret"),
        Err(e) => panic!("{e}"),
    }
    eventually(|| dc.stats().bad_connections.load(SeqCst) == 1);
    dc.stop();
}

#[test]
fn faketls_hello_for_another_domain_refused() {
    let (dc, public) = start(Some(ee()));
    // The right key, another SNI: the digest verifies, the domain does not.
    let other = FakeTlsSecret::new(&[0x5a; 16], b"www.example.com").unwrap();
    assert!(
        Conn::connect_with(
            dc.addr,
            transport(Carriage::FakeTls),
            None,
            Some(&other),
            &mut rand::rng()
        )
        .is_err(),
        "a hello naming another domain must be refused"
    );
    eventually(|| dc.stats().bad_connections.load(SeqCst) == 1);
    // The DC is unaffected.
    let mut good = connect(&dc, Carriage::FakeTls, Some(&ee()));
    exercise(&mut good, public);
    dc.stop();
}

#[test]
fn replayed_client_hello_refused() {
    let secret = ee();
    let (dc, _) = start(Some(secret.clone()));
    let unix = u32::try_from(client::unix_micros_at_zero() / 1_000_000).unwrap();
    let (hello, _) = client_hello(&secret, unix, &mut rand::rng()).unwrap();
    let mut first = TcpStream::connect(dc.addr).unwrap();
    first.write_all(&hello).unwrap();
    first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    first.read_exact(&mut buf).unwrap();
    assert_eq!(&buf[..3], &[0x16, 0x03, 0x03], "ServerHello");
    let mut again = TcpStream::connect(dc.addr).unwrap();
    again.write_all(&hello).unwrap();
    expect_closed(&mut again, "replay");
    eventually(|| dc.stats().bad_connections.load(SeqCst) == 1);
    dc.stop();
}

fn eventually(f: impl Fn() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(f());
}

fn expect_closed(s: &mut TcpStream, what: &str) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("{what}: not closed")
            }
            Ok(0) | Err(_) => return,
            // A WebSocket upgrade answer may come before the frames that break the connection.
            Ok(_) => {}
        }
    }
}

fn ws_upgraded(dc: &Dc) -> TcpStream {
    let mut s = TcpStream::connect(dc.addr).unwrap();
    let hs = ClientHandshake::<1024>::new(1024, &mut rand::rng());
    let mut req = [0u8; 512];
    let n = hs.encode_request("localhost", WS_PATH, None, &mut req).unwrap();
    s.write_all(&req[..n]).unwrap();
    s
}

#[test]
fn garbage_http_and_ws_lose_only_their_own_connection() {
    let (dc, public) = start(None);
    let mut rng = rand::rng();
    let mut good = connect(&dc, Carriage::Http, None);
    let mut engine = exercise(&mut good, public);
    let mut good_ws = connect(&dc, Carriage::Ws, None);
    let mut engine_ws = exercise(&mut good_ws, public);

    let mut ws = WsCodec::<1024>::new(Role::Client, 1024);
    let mut frame = |op: Opcode, payload: &[u8]| {
        let mut out = [0u8; 256];
        let n = ws.encode_frame(op, true, payload, &mut rand::rng(), &mut out).unwrap();
        out[..n].to_vec()
    };
    let text = frame(Opcode::Text, b"hello");
    // A plain intermediate stream inside WebSocket: no obfuscated init, so nothing may reach the DC.
    let mut plain = vec![0xee; 4];
    plain.extend_from_slice(&[0; 60]);
    let plain = frame(Opcode::Binary, &plain);
    let mut big = [0u8; 4096];
    let n = encode_request("x", "/api", &[1; 64], &mut big).unwrap();
    let wrong_path = String::from_utf8_lossy(&big[..n]).replace("/api", "/apx").into_bytes();
    // A well-formed request whose body is an "encrypted" packet of 36 bytes: not 24 + a multiple of 16.
    let mut body = vec![1, 2, 3, 4, 5, 6, 7, 8];
    body.extend_from_slice(&[0; 28]);
    let n = encode_request("x", "/api", &body, &mut big).unwrap();
    let misaligned = big[..n].to_vec();
    let http: [&[u8]; 4] = [
        &wrong_path,
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
        b"POST /api HTTP/1.1\r\nHost: x\r\n\r\n",
        &misaligned,
    ];
    for (i, g) in http.into_iter().enumerate() {
        let mut s = TcpStream::connect(dc.addr).unwrap();
        s.write_all(g).unwrap();
        expect_closed(&mut s, &format!("http {i}"));
    }
    let ws_garbage: [&[u8]; 3] = [&text, &plain, &[0x82, 0x05, 1, 2, 3, 4, 5]];
    for (i, g) in ws_garbage.into_iter().enumerate() {
        let mut s = ws_upgraded(&dc);
        s.write_all(g).unwrap();
        expect_closed(&mut s, &format!("ws {i}"));
    }
    // A bad upgrade: wrong path.
    let mut s = TcpStream::connect(dc.addr).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    expect_closed(&mut s, "upgrade");

    // Both good connections carry on.
    for (conn, engine) in [(&mut good, &mut engine), (&mut good_ws, &mut engine_ws)] {
        let ev = conn
            .call(
                engine,
                &mut rng,
                &api::get_dh_config(1, 8),
                Duration::from_secs(10),
                &mut |_| {},
            )
            .unwrap();
        assert!(matches!(ev, Owned::Result(..)), "{ev:?}");
    }
    assert_eq!(dc.stats().keys_created.load(SeqCst), 2);
    dc.stop();
}

/// A client that keeps more requests open than the DC holds gets the oldest answered empty, and its packets still
/// arrive on the newer exchanges.
#[test]
fn http_surplus_polls_answered_empty() {
    let (dc, public) = start(None);
    let mut conn = connect(&dc, Carriage::Http, None);
    let mut engine = exercise(&mut conn, public);
    let mut s = TcpStream::connect(dc.addr).unwrap();
    let mut req = [0u8; 256];
    let n = encode_request("x", "/api", &[], &mut req).unwrap();
    for _ in 0..HTTP_MAX_HELD + 3 {
        s.write_all(&req[..n]).unwrap();
    }
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(4).filter(|w| w == b"\r\n\r\n").count() < 3 {
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0);
        got.extend_from_slice(&buf[..k]);
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert_eq!(text.matches("Content-Length: 0\r\n").count(), 3, "{text}");
    let ev = conn
        .call(
            &mut engine,
            &mut rand::rng(),
            &api::get_dh_config(1, 8),
            Duration::from_secs(10),
            &mut |_| {},
        )
        .unwrap();
    assert!(matches!(ev, Owned::Result(..)));
    dc.stop();
}

/// A `req_pq_multi` the DC answers with `resPQ`: a whole plaintext MTProto message, as one HTTP body.
fn req_pq_body(public: RsaPublicKey) -> Vec<u8> {
    let keys: &'static [RsaPublicKey] = Box::leak(Box::new([public]));
    let mut hs = HsClient::new(ClientConfig::new(keys, 2), client::now());
    let mut out = vec![0u8; MAX_CLIENT_MESSAGE];
    let n = hs
        .poll_transmit(client::now(), &mut rand::rng(), &mut out)
        .unwrap()
        .unwrap();
    out.truncate(n);
    out
}

/// Sends `request` on a new connection and reads until the DC closes it; panics if it stays open for `wait`.
fn one_shot(dc: &Dc, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(dc.addr).unwrap();
    s.write_all(request).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    if let Err(e) = s.read_to_end(&mut got) {
        panic!(
            "the DC did not close the connection ({e}); read so far: {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// `Connection: close` (HTTP/1.1) and HTTP/1.0 without `keep-alive`: the DC answers, says `Connection: close` and
/// closes, so a one-shot client reading to EOF finishes; a request pipelined after the closing one is not served.
#[test]
fn http_connection_close_and_http10_are_answered_then_closed() {
    let (dc, public) = start(None);
    let body = req_pq_body(public);
    let head = |version: &str, conn: &str| {
        let mut r = format!(
            "POST /api HTTP/{version}\r\nHost: x\r\n{conn}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    };
    for (what, req) in [
        ("1.1 close", head("1.1", "Connection: close\r\n")),
        (
            "1.1 close among tokens",
            head("1.1", "Connection: Close\r\nConnection: keep-alive\r\n"),
        ),
        ("1.0", head("1.0", "")),
        ("1.0 close", head("1.0", "Connection: close\r\n")),
    ] {
        let text = one_shot(&dc, &req, Duration::from_secs(4));
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{what}: {text:?}");
        assert!(text.contains("\r\nConnection: close\r\n"), "{what}: {text:?}");
        assert!(
            !text.contains("Content-Length: 0\r\n"),
            "{what}: the packet is answered: {text:?}"
        );
    }
    // Pipelined after a closing request: never served (one response, then EOF).
    let mut two = head("1.1", "Connection: close\r\n");
    two.extend_from_slice(&head("1.1", ""));
    let text = one_shot(&dc, &two, Duration::from_secs(4));
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text:?}");
    // HTTP/1.0 asking for keep-alive, and HTTP/1.1 by default, keep the connection: a second request on it is
    // answered too.
    for (what, version, conn) in [
        ("1.1", "1.1", ""),
        ("1.0 keep-alive", "1.0", "Connection: keep-alive\r\n"),
    ] {
        let mut s = TcpStream::connect(dc.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        for round in 1..=2 {
            s.write_all(&head(version, conn)).unwrap();
            while String::from_utf8_lossy(&got).matches("HTTP/1.1 200 OK").count() < round {
                let k = s.read(&mut buf).unwrap();
                assert!(k > 0, "{what}: closed after {round} requests");
                got.extend_from_slice(&buf[..k]);
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert_eq!(text.matches("Connection: keep-alive").count(), 2, "{what}: {text:?}");
    }
    dc.stop();
}
