//! Carriages: HTTP, WebSocket and fake-TLS round trips client <-> server in random piece sizes, their negative
//! tests, the replay cache (docs/CHECKLIST.md item 9, attack B19), size shaping (item 10) and the fallback policy.

use mtproto_sansio::carriage::WriteError;
use mtproto_sansio::carriage::faketls::{
    AcceptedHello, CHANGE_CIPHER_SPEC, CLIENT_HELLO_LEN, ClientHelloReader, FakeTlsError, FakeTlsSecret,
    MAX_SERVER_HELLO_LEN, RecordDecoder, RecordEncoder, ReplayCache, Replayed, ServerConfig, ServerHelloReader,
    client_hello, client_hello_sni, encode_server_hello, is_grease, validate_client_hello,
};
use mtproto_sansio::carriage::fallback::{Carriage, Decision, Failure, FallbackConfig, FallbackPolicy};
use mtproto_sansio::carriage::http::{HttpDecoder, HttpError, HttpLimits, encode_request, encode_response};
use mtproto_sansio::carriage::ws::{
    ClientHandshake, Opcode, ServerHandshake, WsCodec, WsError, WsEvent, WsHandshakeError, accept_key,
};
use mtproto_sansio::transport::obfuscated::{ObfuscatedCodec, ProxySecret, client_init, server_accept};
use mtproto_sansio::transport::{Frame, Framing, Role};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn bytes(r: &mut StdRng, n: usize) -> Vec<u8> {
    (0..n).map(|_| r.random()).collect()
}

/// Feeds `wire` in random pieces through `feed` (which returns bytes taken), collecting units with `take`.
fn pieces(r: &mut StdRng, wire: &[u8], mut step: impl FnMut(&[u8]) -> usize) {
    let mut pos = 0;
    let mut stalls = 0;
    while pos < wire.len() {
        let len = r.random_range(1..=64.min(wire.len() - pos));
        let n = step(&wire[pos..pos + len]);
        pos += n;
        stalls = if n == 0 { stalls + 1 } else { 0 };
        assert!(stalls < 4, "decoder stalled");
    }
    // Let a decoder that stopped at a unit boundary flush it.
    step(&[]);
}

// ---------------------------------------------------------------- HTTP

const LIM: HttpLimits = HttpLimits {
    max_head: 2048,
    max_body: 64 * 1024,
    max_chunk_line: 64,
};

#[test]
fn http_round_trip_both_roles_random_pieces() {
    let mut r = rng(1);
    for round in 0..40 {
        let packets: Vec<Vec<u8>> = (0..4)
            .map(|_| {
                let n = r.random_range(1..3000);
                bytes(&mut r, n)
            })
            .collect();
        // Client -> server: keep-alive requests back to back.
        let mut wire = Vec::new();
        for p in &packets {
            let mut out = vec![0u8; p.len() + 256];
            let n = encode_request("149.154.167.51:80", "/api", p, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        let mut server = HttpDecoder::<2048, 4096>::server("/api", LIM);
        let mut got = Vec::new();
        pieces(&mut r, &wire, |piece| {
            let n = server.feed(piece).unwrap();
            if let Some(b) = server.next_body() {
                got.push(b.to_vec());
            }
            n
        });
        assert_eq!(got, packets, "round {round}");
        assert!(server.keep_alive());
        // Server -> client responses.
        let mut wire = Vec::new();
        for p in &packets {
            let mut out = vec![0u8; p.len() + 256];
            let n = encode_response(200, true, p, &mut out).unwrap();
            wire.extend_from_slice(&out[..n]);
        }
        let mut client = HttpDecoder::<2048, 4096>::client(LIM);
        let mut got = Vec::new();
        pieces(&mut r, &wire, |piece| {
            let n = client.feed(piece).unwrap();
            if let Some(b) = client.next_body() {
                got.push(b.to_vec());
            }
            n
        });
        assert_eq!(got, packets);
    }
}

fn chunked(body: &[u8], sizes: &mut StdRng) -> Vec<u8> {
    let mut w = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let mut rest = body;
    while !rest.is_empty() {
        let n = sizes.random_range(1..=rest.len().min(700));
        w.extend_from_slice(format!("{n:X}\r\n").as_bytes());
        w.extend_from_slice(&rest[..n]);
        w.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    w.extend_from_slice(b"0\r\n\r\n");
    w
}

#[test]
fn http_chunked_response_random_pieces() {
    let mut r = rng(2);
    for _ in 0..30 {
        let n = r.random_range(1..4000);
        let body = bytes(&mut r, n);
        let wire = chunked(&body, &mut r);
        let mut client = HttpDecoder::<2048, 4096>::client(LIM);
        let mut got = None;
        pieces(&mut r, &wire, |p| {
            let n = client.feed(p).unwrap();
            if let Some(b) = client.next_body() {
                got = Some(b.to_vec());
            }
            n
        });
        assert_eq!(got.as_deref(), Some(&body[..]));
        assert!(!client.keep_alive(), "Connection: close is reported");
    }
}

fn server_err(input: &[u8]) -> HttpError {
    let mut d = HttpDecoder::<512, 1024>::server(
        "/api",
        HttpLimits {
            max_head: 512,
            max_body: 1024,
            max_chunk_line: 32,
        },
    );
    let mut pos = 0;
    loop {
        match d.feed(&input[pos..]) {
            Err(e) => return e,
            Ok(n) => {
                assert!(d.next_body().is_none(), "accepted {:?}", String::from_utf8_lossy(input));
                assert!(n > 0, "no error for {:?}", String::from_utf8_lossy(input));
                pos += n;
            }
        }
    }
}

#[test]
fn http_malformed_and_oversized_requests_rejected() {
    assert_eq!(
        server_err(b"GET /api HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"),
        HttpError::BadMethod
    );
    assert_eq!(
        server_err(b"POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd"),
        HttpError::BadPath
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nHost: a\r\n\r\n"),
        HttpError::MissingLength
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nContent-Length: 1025\r\n\r\n"),
        HttpError::BodyTooLarge
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        HttpError::BodyTooLarge
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
        HttpError::BadContentLength
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
        HttpError::BadContentLength
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        HttpError::BadContentLength
    );
    assert_eq!(
        server_err(b"POST /api HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
        HttpError::UnsupportedTransferEncoding
    );
    assert_eq!(server_err(b"POST /api HTTP/1.1\r\nX\r\n\r\n"), HttpError::Malformed);
    assert_eq!(server_err(b"\x00\x01garbage\r\n\r\n"), HttpError::Malformed);
    let mut big = b"POST /api HTTP/1.1\r\n".to_vec();
    while big.len() < 600 {
        big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaa\r\n");
    }
    assert_eq!(server_err(&big), HttpError::HeadTooLarge);
    let mut many = b"POST /api HTTP/1.1\r\n".to_vec();
    for i in 0..40 {
        many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let mut d = HttpDecoder::<2048, 64>::server("/api", LIM);
    assert_eq!(d.feed(&many), Err(HttpError::TooManyHeaders));
    // Chunked: bad size digit, missing CRLF after data, oversized chunk, endless extension.
    let c = b"POST /api HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (tail, e) in [
        (&b"zz\r\n"[..], HttpError::BadChunk),
        (b"2\r\nabXY", HttpError::BadChunk),
        (b"401\r\n", HttpError::BodyTooLarge),
        (b"fffffffffffffffffffffff\r\n", HttpError::BodyTooLarge),
        (
            b"1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            HttpError::BadChunk,
        ),
        (b"\r\n", HttpError::BadChunk),
    ] {
        let mut m = c.to_vec();
        m.extend_from_slice(tail);
        assert_eq!(server_err(&m), e, "{:?}", String::from_utf8_lossy(tail));
    }
    // Chunks that add up past the limit are refused before the excess is stored.
    let mut m = c.to_vec();
    for _ in 0..3 {
        m.extend_from_slice(b"200\r\n");
        m.extend_from_slice(&[b'a'; 0x200]);
        m.extend_from_slice(b"\r\n");
    }
    assert_eq!(server_err(&m), HttpError::BodyTooLarge);
}

#[test]
fn http_status_codes_are_typed_errors() {
    for code in [404u16, 429, 500] {
        let mut out = [0u8; 256];
        let n = encode_response(code, true, b"", &mut out).unwrap();
        let mut d = HttpDecoder::<512, 64>::client(LIM);
        assert_eq!(d.feed(&out[..n]), Err(HttpError::Status { code }));
        assert_eq!(d.error(), Some(HttpError::Status { code }));
    }
}

#[test]
fn http_encoders_refuse_bad_input_and_small_buffers() {
    let mut out = [0u8; 64];
    assert_eq!(
        encode_request("a\r\nX: y", "/api", b"x", &mut out),
        Err(WriteError::InvalidInput)
    );
    assert_eq!(
        encode_request("a", "api", b"x", &mut out),
        Err(WriteError::InvalidInput)
    );
    assert!(matches!(
        encode_request("a", "/api", &[0; 64], &mut out),
        Err(WriteError::BufferTooSmall { .. })
    ));
    assert_eq!(encode_response(42, true, b"", &mut out), Err(WriteError::InvalidInput));
}

// ---------------------------------------------------------------- WebSocket

#[test]
fn ws_accept_key_rfc6455_example() {
    assert_eq!(
        &accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

fn ws_handshake(r: &mut StdRng) -> (ClientHandshake<1024>, Vec<u8>, ServerHandshake<1024>) {
    let client = ClientHandshake::<1024>::new(1024, r);
    let mut out = [0u8; 512];
    let n = client
        .encode_request(
            "venus.web.telegram.org",
            "/apiws",
            Some("https://web.telegram.org"),
            &mut out,
        )
        .unwrap();
    let mut server = ServerHandshake::<1024>::new("/apiws", 1024);
    let mut done = false;
    pieces(r, &out[..n], |p| {
        let (k, d) = server.feed(p).unwrap();
        done |= d;
        k
    });
    assert!(done);
    let mut resp = [0u8; 512];
    let m = server.encode_response(&mut resp).unwrap();
    (client, resp[..m].to_vec(), server)
}

#[test]
fn ws_handshake_round_trip_random_pieces() {
    let mut r = rng(3);
    for _ in 0..20 {
        let (mut client, resp, _) = ws_handshake(&mut r);
        let mut wire = resp.clone();
        wire.extend_from_slice(&[0x82, 0x01, 0xaa]); // a frame right behind the head stays unconsumed
        let (n, done) = client.feed(&wire).unwrap();
        assert!(done);
        assert_eq!(n, resp.len());
    }
}

#[test]
fn ws_bad_accept_and_bad_upgrades_rejected() {
    let mut r = rng(4);
    let (mut client, resp, _) = ws_handshake(&mut r);
    let text = String::from_utf8(resp).unwrap();
    let start = text.find("Accept: ").unwrap() + 8;
    let mut bad = text.clone().into_bytes();
    bad[start] = if bad[start] == b'A' { b'B' } else { b'A' };
    assert_eq!(client.feed(&bad), Err(WsHandshakeError::BadAccept));
    // The error is sticky.
    assert_eq!(client.feed(text.as_bytes()), Err(WsHandshakeError::BadAccept));

    let (mut client, resp, _) = ws_handshake(&mut r);
    let no_proto = String::from_utf8(resp)
        .unwrap()
        .replace("Sec-WebSocket-Protocol: binary\r\n", "");
    assert_eq!(client.feed(no_proto.as_bytes()), Err(WsHandshakeError::BadSubprotocol));
    let mut client = ClientHandshake::<1024>::new(1024, &mut r);
    assert_eq!(
        client.feed(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
        Err(WsHandshakeError::Status { code: 403 })
    );

    let good = "GET /apiws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                Sec-WebSocket-Protocol: binary\r\n\r\n";
    let mut s = ServerHandshake::<1024>::new("/apiws", 1024);
    assert_eq!(s.feed(good.as_bytes()), Ok((good.len(), true)));
    for (from, to, e) in [
        ("GET /apiws", "POST /apiws", WsHandshakeError::BadMethod),
        ("GET /apiws", "GET /api", WsHandshakeError::BadPath),
        ("Upgrade: websocket", "Upgrade: h2c", WsHandshakeError::NotUpgrade),
        ("Version: 13", "Version: 8", WsHandshakeError::BadVersion),
        (
            "dGhlIHNhbXBsZSBub25jZQ==",
            "dGhlIHNhbXBsZSBub25jZQ=",
            WsHandshakeError::BadKey,
        ),
        (
            "dGhlIHNhbXBsZSBub25jZQ==",
            "dGhlIHNhbXBsZSBub25jZR==",
            WsHandshakeError::BadKey,
        ),
        ("Protocol: binary", "Protocol: chat", WsHandshakeError::BadSubprotocol),
    ] {
        let mut s = ServerHandshake::<1024>::new("/apiws", 1024);
        assert_eq!(s.feed(good.replace(from, to).as_bytes()), Err(e), "{to}");
    }
    let mut s = ServerHandshake::<64>::new("/apiws", 1024);
    assert_eq!(s.feed(good.as_bytes()), Err(WsHandshakeError::HeadTooLarge));
}

fn drain_ws<const N: usize>(r: &mut StdRng, c: &mut WsCodec<N>, wire: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut got = Vec::new();
    pieces(r, wire, |p| {
        let n = c.feed(p).unwrap();
        match c.next_event() {
            Some(WsEvent::Message(m)) => got.push((2, m.to_vec())),
            Some(WsEvent::Ping(m)) => got.push((9, m.to_vec())),
            Some(WsEvent::Pong(m)) => got.push((10, m.to_vec())),
            Some(WsEvent::Close { code }) => got.push((8, code.unwrap_or(0).to_be_bytes().to_vec())),
            None => {}
        }
        n
    });
    got
}

#[test]
fn ws_frames_round_trip_with_fragmentation_and_pings() {
    let mut r = rng(5);
    for _ in 0..30 {
        let mut client = WsCodec::<70_000>::new(Role::Client, 70_000);
        let mut server = WsCodec::<70_000>::new(Role::Server, 70_000);
        let mut wire = vec![0u8; 300_000];
        let mut w = 0;
        let mut expect = Vec::new();
        for _ in 0..5 {
            let len = match r.random_range(0..3) {
                0 => r.random_range(0..126),
                1 => r.random_range(126..4000),
                _ => r.random_range(65_536..69_000),
            };
            let msg = bytes(&mut r, len);
            if r.random_bool(0.5) && len > 2 {
                // Three fragments with a ping between the first two.
                let (a, rest) = msg.split_at(len / 3);
                let (b, c) = rest.split_at(rest.len() / 2);
                w += client
                    .encode_frame(Opcode::Binary, false, a, &mut r, &mut wire[w..])
                    .unwrap();
                w += client
                    .encode_frame(Opcode::Ping, true, b"hi", &mut r, &mut wire[w..])
                    .unwrap();
                w += client
                    .encode_frame(Opcode::Continuation, false, b, &mut r, &mut wire[w..])
                    .unwrap();
                w += client
                    .encode_frame(Opcode::Continuation, true, c, &mut r, &mut wire[w..])
                    .unwrap();
                expect.push((9, b"hi".to_vec()));
            } else {
                w += client.encode_message(&msg, &mut r, &mut wire[w..]).unwrap();
            }
            expect.push((2, msg));
        }
        w += client.encode_close(1000, &mut r, &mut wire[w..]).unwrap();
        expect.push((8, 1000u16.to_be_bytes().to_vec()));
        assert_eq!(drain_ws(&mut r, &mut server, &wire[..w]), expect);
        // The server owes the pong of the last ping and the close echo; both decode on the client.
        let mut reply = [0u8; 512];
        let mut n = 0;
        loop {
            let k = server.poll_transmit(&mut r, &mut reply[n..]).unwrap();
            if k == 0 {
                break;
            }
            n += k;
        }
        let got = drain_ws(&mut r, &mut client, &reply[..n]);
        let pinged = expect.iter().any(|(op, _)| *op == 9);
        let mut want = Vec::new();
        if pinged {
            want.push((10, b"hi".to_vec()));
        }
        want.push((8, 1000u16.to_be_bytes().to_vec()));
        assert_eq!(got, want);
        // Server frames are unmasked: header is 2 bytes for a short pong.
        if pinged {
            assert_eq!(&reply[..4], &[0x8a, 0x02, b'h', b'i']);
        }
    }
}

fn ws_err<const N: usize>(role: Role, max: usize, wire: &[u8]) -> WsError {
    let mut c = WsCodec::<N>::new(role, max);
    let mut pos = 0;
    loop {
        match c.feed(&wire[pos..]) {
            Err(e) => return e,
            Ok(n) => {
                let _ = c.next_event();
                assert!(n > 0, "no error");
                pos += n;
            }
        }
    }
}

#[test]
fn ws_protocol_violations_rejected() {
    // Unmasked client frame to a server.
    assert_eq!(ws_err::<64>(Role::Server, 64, &[0x82, 0x01, 0xaa]), WsError::Unmasked);
    // Masked server frame to a client.
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x82, 0x81, 1, 2, 3, 4, 0xaa]),
        WsError::MaskedFromServer
    );
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0xc2, 0x00]), WsError::ReservedBits);
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0x83, 0x00]), WsError::UnknownOpcode);
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0x81, 0x00]), WsError::TextFrame);
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x80, 0x00]),
        WsError::UnexpectedContinuation
    );
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x02, 0x00, 0x82, 0x00]),
        WsError::InterleavedMessage
    );
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x09, 0x00]),
        WsError::FragmentedControl
    );
    let mut long_ping = vec![0x89, 126, 0, 126];
    long_ping.extend_from_slice(&[0; 126]);
    assert_eq!(ws_err::<256>(Role::Client, 256, &long_ping), WsError::ControlTooLong);
    // Oversized: declared by the header, refused before buffering; across fragments too.
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0x82, 65]), WsError::MessageTooLarge);
    assert_eq!(
        ws_err::<64>(Role::Client, 1_000_000, &[0x82, 126, 0x01, 0x00]),
        WsError::MessageTooLarge
    );
    let mut frag = vec![0x02, 40];
    frag.extend_from_slice(&[0; 40]);
    frag.extend_from_slice(&[0x80, 40]);
    assert_eq!(ws_err::<64>(Role::Client, 64, &frag), WsError::MessageTooLarge);
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
        WsError::BadLength
    );
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0x82, 126, 0, 5]), WsError::BadLength);
    assert_eq!(ws_err::<64>(Role::Client, 64, &[0x88, 0x01, 0x03]), WsError::BadClose);
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x88, 0x02, 0x03, 0xed]),
        WsError::BadClose
    );
    assert_eq!(
        ws_err::<64>(Role::Client, 64, &[0x88, 0x00, 0x82, 0x00]),
        WsError::AfterClose
    );
}

#[test]
fn ws_carries_the_obfuscated_stream() {
    let mut r = rng(6);
    let (mut obf_client, init) =
        ObfuscatedCodec::<4096>::client(Framing::PaddedIntermediate, Some(2), None, 4096, &mut r).unwrap();
    let mut obf_server = ObfuscatedCodec::<4096>::server(None, 4096);
    let mut ws_client = WsCodec::<8192>::new(Role::Client, 8192);
    let mut ws_server = WsCodec::<8192>::new(Role::Server, 8192);
    let packets: Vec<Vec<u8>> = (1..6).map(|i| bytes(&mut r, 24 + 16 * i)).collect();
    let mut wire = vec![0u8; 1 << 16];
    let mut w = ws_client.encode_message(&init, &mut r, &mut wire).unwrap();
    for p in &packets {
        let mut f = vec![0u8; p.len() + 32];
        let n = obf_client.encode(p, false, &mut r, &mut f).unwrap();
        w += ws_client.encode_message(&f[..n], &mut r, &mut wire[w..]).unwrap();
    }
    let mut got = Vec::new();
    pieces(&mut r, &wire[..w], |piece| {
        let n = ws_server.feed(piece).unwrap();
        if let Some(WsEvent::Message(m)) = ws_server.next_event() {
            let mut rest = m;
            while !rest.is_empty() || obf_server.framing().is_some() {
                let k = obf_server.feed(rest).unwrap();
                rest = &rest[k..];
                match obf_server.next_frame() {
                    Some(Frame::Packet { data, .. }) => got.push(data.to_vec()),
                    Some(other) => panic!("{other:?}"),
                    None if rest.is_empty() => break,
                    None => {}
                }
            }
        }
        n
    });
    let stripped: Vec<Vec<u8>> = got
        .iter()
        .map(|p| {
            mtproto_sansio::transport::strip_padding(Framing::PaddedIntermediate, p)
                .unwrap()
                .to_vec()
        })
        .collect();
    assert_eq!(stripped, packets);
    assert_eq!(obf_server.dc_id(), Some(2));
}

// ---------------------------------------------------------------- fake-TLS

const NOW: u32 = 1_764_000_000;

fn secret() -> FakeTlsSecret {
    let mut raw = vec![0xee];
    raw.extend_from_slice(&hex_literal::hex!("00112233445566778899aabbccddeeff"));
    raw.extend_from_slice(b"www.google.com");
    FakeTlsSecret::from_bytes(&raw).unwrap()
}

fn server_read_hello<const R: usize>(
    s: &FakeTlsSecret,
    now: u32,
    cache: &mut ReplayCache<R>,
    hello: &[u8],
) -> Result<AcceptedHello, FakeTlsError> {
    let cfg = ServerConfig::default();
    let mut reader = ClientHelloReader::<2048>::new(&cfg);
    let (n, acc) = reader.feed(s, &cfg, now, cache, hello)?;
    assert_eq!(n, hello.len());
    Ok(acc.expect("complete"))
}

#[test]
fn faketls_secret_parsing() {
    assert_eq!(secret().domain(), b"www.google.com");
    assert!(format!("{:?}", secret()).contains("google") && !format!("{:?}", secret()).contains("0011"));
    assert!(FakeTlsSecret::from_bytes(&[0xdd; 20]).is_err());
    assert!(FakeTlsSecret::from_bytes(&[0xee; 17]).is_err(), "empty domain");
    let mut raw = vec![0xee; 17];
    raw.extend_from_slice(b"bad domain");
    assert!(FakeTlsSecret::from_bytes(&raw).is_err());
    let mut raw = vec![0xee; 17];
    raw.extend_from_slice(&[b'a'; 254]);
    assert!(FakeTlsSecret::from_bytes(&raw).is_err());
    assert!(secret().proxy_secret().requires_padding());
}

#[test]
fn faketls_full_handshake_and_stream_random_pieces() {
    let mut r = rng(7);
    let s = secret();
    for round in 0..20 {
        let (hello, state) = client_hello(&s, NOW + round, &mut r).unwrap();
        assert_eq!(hello.len(), CLIENT_HELLO_LEN);
        // SNI is present in the clear, as a real ClientHello has it.
        assert!(hello.windows(14).any(|w| w == b"www.google.com"));
        let cfg = ServerConfig::default();
        let mut cache = ReplayCache::<64>::new();
        let mut reader = ClientHelloReader::<2048>::new(&cfg);
        let mut accepted = None;
        pieces(&mut r, &hello, |p| {
            let (n, acc) = reader.feed(&s, &cfg, NOW, &mut cache, p).unwrap();
            if acc.is_some() {
                accepted = acc;
            }
            n
        });
        let acc = accepted.unwrap();
        assert_eq!(acc.timestamp, NOW + round);
        let mut sh = vec![0u8; MAX_SERVER_HELLO_LEN];
        let n = encode_server_hello(&s, &acc, &mut r, &mut sh).unwrap();

        // Obfuscated stream inside records, both directions.
        let (mut oc, init) = ObfuscatedCodec::<4096>::client(
            Framing::PaddedIntermediate,
            Some(-2),
            Some(s.proxy_secret()),
            4096,
            &mut r,
        )
        .unwrap();
        let mut os = ObfuscatedCodec::<4096>::server(Some(s.proxy_secret()), 4096);
        let mut cenc = RecordEncoder::client();
        let mut senc = RecordEncoder::server().with_max_payload(r.random_range(16..2000));
        let packets: Vec<Vec<u8>> = (1..5).map(|i| bytes(&mut r, 8 + 16 * i * i)).collect();
        let mut up = Vec::new();
        let mut buf = vec![0u8; 8192];
        let k = cenc.encode(&init, &mut buf).unwrap();
        assert_eq!(&buf[..6], &CHANGE_CIPHER_SPEC);
        up.extend_from_slice(&buf[..k]);
        for p in &packets {
            let mut f = vec![0u8; p.len() + 32];
            let m = oc.encode(p, false, &mut r, &mut f).unwrap();
            let k = cenc.encode(&f[..m], &mut buf).unwrap();
            up.extend_from_slice(&buf[..k]);
        }
        let mut dec = RecordDecoder::new(16 * 1024 + 256);
        let mut got = Vec::new();
        pieces(&mut r, &up, |piece| {
            let mut plain = [0u8; 128];
            let (n, p) = dec.decode(piece, &mut plain).unwrap();
            let mut rest = &plain[..p];
            while !rest.is_empty() {
                let k = os.feed(rest).unwrap();
                rest = &rest[k..];
                if let Some(Frame::Packet { data, .. }) = os.next_frame() {
                    got.push(data.to_vec());
                }
            }
            n
        });
        let got: Vec<Vec<u8>> = got
            .iter()
            .map(|p| {
                mtproto_sansio::transport::strip_padding(Framing::PaddedIntermediate, p)
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert_eq!(got, packets);

        // Down: server hello, then records, read by the client in pieces.
        let mut down = sh[..n].to_vec();
        for p in &packets {
            let mut f = vec![0u8; p.len() + 32];
            let m = os.encode(p, false, &mut r, &mut f).unwrap();
            let k = senc.encode(&f[..m], &mut buf).unwrap();
            down.extend_from_slice(&buf[..k]);
        }
        let mut shr = ServerHelloReader::<8192>::new(state.clone());
        let mut verified = false;
        let mut cdec = RecordDecoder::new(16 * 1024 + 256);
        let mut got = Vec::new();
        pieces(&mut r, &down, |piece| {
            let mut used = 0;
            if !verified {
                let (n, ok) = shr.feed(&s, piece).unwrap();
                verified = ok;
                used = n;
                if !ok {
                    return n;
                }
            }
            let mut plain = [0u8; 4096];
            let (n, p) = cdec.decode(&piece[used..], &mut plain).unwrap();
            let mut rest = &plain[..p];
            while !rest.is_empty() {
                let k = oc.feed(rest).unwrap();
                rest = &rest[k..];
                if let Some(Frame::Packet { data, .. }) = oc.next_frame() {
                    got.push(data.to_vec());
                }
            }
            used + n
        });
        assert!(verified);
        let got: Vec<Vec<u8>> = got
            .iter()
            .map(|p| {
                mtproto_sansio::transport::strip_padding(Framing::PaddedIntermediate, p)
                    .unwrap()
                    .to_vec()
            })
            .collect();
        assert_eq!(got, packets);
    }
}

#[test]
fn faketls_bad_hmac_rejected() {
    let mut r = rng(8);
    let (hello, _) = client_hello(&secret(), NOW, &mut r).unwrap();
    let other = FakeTlsSecret::new(&[9; 16], b"www.google.com").unwrap();
    let mut cache = ReplayCache::<8>::new();
    assert_eq!(
        server_read_hello(&other, NOW, &mut cache, &hello).err(),
        Some(FakeTlsError::BadDigest)
    );
    // A flipped bit anywhere in the covered bytes breaks the digest.
    for pos in [5usize, 20, 100, 300, 516] {
        let mut t = hello;
        t[pos] ^= 1;
        let e = validate_client_hello(&secret(), &ServerConfig::default(), NOW, &t).err();
        assert!(
            matches!(e, Some(FakeTlsError::BadDigest | FakeTlsError::Malformed)),
            "{pos}: {e:?}"
        );
    }
    assert!(cache.is_empty(), "a failed hello is not cached");
}

/// The hello's extensions as (type, data), after the header, session id, cipher suites and compression.
fn hello_parts(hello: &[u8]) -> (Vec<u16>, Vec<(u16, Vec<u8>)>) {
    let sid = hello[43] as usize;
    let mut p = 44 + sid;
    let cs_len = u16::from_be_bytes([hello[p], hello[p + 1]]) as usize;
    let ciphers = hello[p + 2..p + 2 + cs_len]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    p += 2 + cs_len;
    assert_eq!(&hello[p..p + 2], &[1, 0], "null compression only");
    p += 2;
    let ext_len = u16::from_be_bytes([hello[p], hello[p + 1]]) as usize;
    p += 2;
    assert_eq!(p + ext_len, hello.len());
    let mut exts = Vec::new();
    while p < hello.len() {
        let t = u16::from_be_bytes([hello[p], hello[p + 1]]);
        let l = u16::from_be_bytes([hello[p + 2], hello[p + 3]]) as usize;
        exts.push((t, hello[p + 4..p + 4 + l].to_vec()));
        p += 4 + l;
    }
    (ciphers, exts)
}

#[test]
fn faketls_hello_grease_positions_valid() {
    let s = secret();
    let mut orders = std::collections::BTreeSet::new();
    for seed in 0..64 {
        let (hello, _) = client_hello(&s, NOW, &mut rng(seed)).unwrap();
        assert_eq!(hello.len(), CLIENT_HELLO_LEN);
        // Same RNG, same bytes.
        assert_eq!(client_hello(&s, NOW, &mut rng(seed)).unwrap().0, hello);
        let (ciphers, exts) = hello_parts(&hello);
        // A GREASE suite first, then only real ones.
        assert!(is_grease(ciphers[0]), "{:04x}", ciphers[0]);
        assert!(ciphers[1..].iter().all(|&c| !is_grease(c)));
        assert_eq!(ciphers[1], 0x1301);
        // A GREASE extension first (empty) and last before the padding (one zero byte), of different types.
        let (first, last) = (&exts[0], &exts[exts.len() - 2]);
        assert!(is_grease(first.0) && first.1.is_empty());
        assert!(is_grease(last.0) && last.1 == [0]);
        assert_ne!(first.0, last.0);
        assert_eq!(exts.last().unwrap().0, 0x0015, "padding last");
        let middle = &exts[1..exts.len() - 2];
        assert!(middle.iter().all(|(t, _)| !is_grease(*t)));
        let mut types: Vec<u16> = middle.iter().map(|(t, _)| *t).collect();
        orders.insert(types.clone());
        types.sort_unstable();
        assert_eq!(
            types,
            [
                0x0000, 0x0005, 0x000a, 0x000b, 0x000d, 0x0010, 0x0012, 0x0017, 0x001b, 0x0023, 0x002b, 0x002d, 0x0033,
                0x44cd, 0xff01
            ]
        );
        let ext = |t: u16| &middle.iter().find(|(x, _)| *x == t).unwrap().1;
        // supported_groups, key_share and supported_versions lead with GREASE.
        let groups = ext(0x000a);
        assert!(is_grease(u16::from_be_bytes([groups[2], groups[3]])));
        let ks = ext(0x0033);
        assert!(is_grease(u16::from_be_bytes([ks[2], ks[3]])));
        assert_eq!(&ks[4..7], &[0, 1, 0], "GREASE key share: one zero byte");
        assert_eq!(&ks[7..11], &[0x00, 0x1d, 0x00, 0x20]);
        assert_eq!(ks[42] & 0x80, 0, "canonical X25519 key");
        let versions = ext(0x002b);
        assert!(is_grease(u16::from_be_bytes([versions[1], versions[2]])));
        assert_eq!(&versions[3..], &[3, 4, 3, 3]);
        assert_eq!(client_hello_sni(&hello).unwrap(), Some(&b"www.google.com"[..]));
        // Digest and timestamp still check out.
        assert_eq!(
            validate_client_hello(&s, &ServerConfig::default(), NOW, &hello)
                .unwrap()
                .timestamp,
            NOW
        );
    }
    assert!(
        orders.len() > 32,
        "extension order is permuted: {} orders",
        orders.len()
    );
    assert!(!is_grease(0x0a1a) && !is_grease(0x0b0b) && is_grease(0xfafa));
}

#[test]
fn faketls_sni_mismatch_rejected() {
    let mut r = rng(21);
    let key = hex_literal::hex!("00112233445566778899aabbccddeeff");
    // Same key, so the digest verifies; only the domain differs.
    for other in [&b"www.google.org"[..], b"google.com", b"www.google.com.evil"] {
        let theirs = FakeTlsSecret::new(&key, other).unwrap();
        let (hello, _) = client_hello(&theirs, NOW, &mut r).unwrap();
        assert_eq!(
            validate_client_hello(&secret(), &ServerConfig::default(), NOW, &hello).err(),
            Some(FakeTlsError::WrongDomain)
        );
        let mut cache = ReplayCache::<8>::new();
        assert_eq!(
            server_read_hello(&secret(), NOW, &mut cache, &hello).err(),
            Some(FakeTlsError::WrongDomain)
        );
        assert!(cache.is_empty(), "a refused hello is not cached");
    }
    // The domain compares case-insensitively, as DNS names do.
    let upper = FakeTlsSecret::new(&key, b"WWW.Google.COM").unwrap();
    let (hello, _) = client_hello(&upper, NOW, &mut r).unwrap();
    assert!(validate_client_hello(&secret(), &ServerConfig::default(), NOW, &hello).is_ok());
    // A wrong key still fails on the digest first.
    let stranger = FakeTlsSecret::new(&[1; 16], b"www.google.org").unwrap();
    let (hello, _) = client_hello(&stranger, NOW, &mut r).unwrap();
    assert_eq!(
        validate_client_hello(&secret(), &ServerConfig::default(), NOW, &hello).err(),
        Some(FakeTlsError::BadDigest)
    );
}

#[test]
fn faketls_sni_parser_bounds() {
    let (hello, _) = client_hello(&secret(), NOW, &mut rng(22)).unwrap();
    // Every truncation is a typed error (or, cut inside the padding, still finds the name), never a panic.
    for cut in 0..hello.len() {
        match client_hello_sni(&hello[..cut]) {
            Ok(Some(name)) => assert_eq!(name, b"www.google.com"),
            Ok(None) | Err(FakeTlsError::Malformed) => {}
            Err(e) => panic!("{cut}: {e:?}"),
        }
    }
    // The longest domain that fits the 517-byte hello.
    let long = vec![b'a'; 215];
    let s = FakeTlsSecret::new(&[3; 16], &long).unwrap();
    let (hello, _) = client_hello(&s, NOW, &mut rng(23)).unwrap();
    assert_eq!(client_hello_sni(&hello).unwrap(), Some(&long[..]));
    assert!(FakeTlsSecret::new(&[3; 16], &[b'a'; 216]).is_err());
}

#[test]
fn faketls_stale_timestamp_rejected() {
    let mut r = rng(9);
    let cfg = ServerConfig {
        skew_past: 120,
        skew_future: 30,
        ..ServerConfig::default()
    };
    for (ts, ok) in [
        (NOW, true),
        (NOW - 120, true),
        (NOW - 121, false),
        (NOW + 30, true),
        (NOW + 31, false),
    ] {
        let (hello, _) = client_hello(&secret(), ts, &mut r).unwrap();
        let res = validate_client_hello(&secret(), &cfg, NOW, &hello);
        match ok {
            true => assert_eq!(res.unwrap().timestamp, ts),
            false => assert_eq!(res.err(), Some(FakeTlsError::StaleTimestamp { timestamp: ts })),
        }
    }
}

#[test]
fn chk_009_replayed_client_hello_rejected() {
    let mut r = rng(10);
    let s = secret();
    let mut cache = ReplayCache::<4>::new();
    let (hello, _) = client_hello(&s, NOW, &mut r).unwrap();
    assert!(server_read_hello(&s, NOW, &mut cache, &hello).is_ok());
    assert_eq!(
        server_read_hello(&s, NOW, &mut cache, &hello).err(),
        Some(FakeTlsError::Replayed)
    );
    // The cache is bounded: after N other hellos the oldest is evicted, the size never exceeds N.
    for i in 0..10 {
        let (h, _) = client_hello(&s, NOW + i, &mut r).unwrap();
        assert!(server_read_hello(&s, NOW, &mut cache, &h).is_ok());
        assert!(cache.len() <= 4);
    }
    assert_eq!(cache.len(), 4);
    assert!(
        server_read_hello(&s, NOW, &mut cache, &hello).is_ok(),
        "evicted entry is forgotten"
    );
}

/// The cache's key for an obfuscated init (bytes 8..56). That a DC refuses a replayed connection through it is
/// `atk_b19_*` in tests/session_init_replay.rs (the `Connection` server path) and tests/hosts.rs (test_dc over TCP).
#[test]
fn replay_cache_keys_obfuscated_inits_by_bytes_8_to_56() {
    let mut r = rng(11);
    let secret = ProxySecret::from_bytes(&[0xdd; 17]).unwrap();
    let (init, _) = client_init(Framing::PaddedIntermediate, Some(2), Some(&secret), &mut r).unwrap();
    let mut cache = ReplayCache::<16>::new();
    assert!(server_accept(&init, Some(&secret)).is_ok());
    assert_eq!(cache.check_obfuscated_init(&init), Ok(()));
    // The captured init, replayed by a prober, still decrypts, but the cache refuses it.
    assert!(server_accept(&init, Some(&secret)).is_ok());
    assert_eq!(cache.check_obfuscated_init(&init), Err(Replayed));
    // Only bytes 8..56 are the key: changing bytes 0..8 (as a prober might) does not evade the cache.
    let mut tweaked = init;
    tweaked[0] ^= 0x55;
    assert_eq!(cache.check_obfuscated_init(&tweaked), Err(Replayed));
    let (fresh, _) = client_init(Framing::PaddedIntermediate, Some(2), Some(&secret), &mut r).unwrap();
    assert_eq!(cache.check_obfuscated_init(&fresh), Ok(()));
}

#[test]
fn faketls_tampered_server_hello_rejected() {
    let mut r = rng(12);
    let s = secret();
    let (hello, state) = client_hello(&s, NOW, &mut r).unwrap();
    let mut cache = ReplayCache::<8>::new();
    let acc = server_read_hello(&s, NOW, &mut cache, &hello).unwrap();
    let mut sh = vec![0u8; MAX_SERVER_HELLO_LEN];
    let n = encode_server_hello(&s, &acc, &mut r, &mut sh).unwrap();
    for pos in [20usize, 80, n - 1] {
        let mut t = sh[..n].to_vec();
        t[pos] ^= 0x10;
        let mut rd = ServerHelloReader::<8192>::new(state.clone());
        assert_eq!(rd.feed(&s, &t).err(), Some(FakeTlsError::BadDigest), "{pos}");
    }
    let mut rd = ServerHelloReader::<8192>::new(state.clone());
    assert_eq!(rd.feed(&s, &sh[..n]), Ok((n, true)));
    // An answer bigger than the reader's bound is refused.
    let mut rd = ServerHelloReader::<512>::new(state);
    assert_eq!(rd.feed(&s, &sh[..n]).err(), Some(FakeTlsError::RecordTooLarge));
}

#[test]
fn faketls_record_decoder_rejects_bad_records() {
    let mut plain = [0u8; 64];
    let cases: [(&[u8], FakeTlsError); 5] = [
        (&[0x17, 0x03, 0x03, 0x41, 0x01], FakeTlsError::RecordTooLarge),
        (&[0x16, 0x03, 0x03, 0x00, 0x01], FakeTlsError::UnexpectedRecord),
        (&[0x17, 0x03, 0x01, 0x00, 0x01], FakeTlsError::UnexpectedRecord),
        (&[0x14, 0x03, 0x03, 0x00, 0x01, 0x02], FakeTlsError::UnexpectedRecord),
        (
            &[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28],
            FakeTlsError::Alert {
                level: 2,
                description: 40,
            },
        ),
    ];
    for (wire, e) in cases {
        let mut d = RecordDecoder::new(16384);
        assert_eq!(d.decode(wire, &mut plain).err(), Some(e), "{wire:?}");
    }
    // A ClientHello of the wrong size or type never validates.
    let cfg = ServerConfig::default();
    assert_eq!(
        validate_client_hello(&secret(), &cfg, NOW, &[0x16, 0x03, 0x01, 0x00, 0x01, 0x02]).err(),
        Some(FakeTlsError::Malformed)
    );
    let mut reader = ClientHelloReader::<2048>::new(&cfg);
    let mut cache = ReplayCache::<2>::new();
    assert_eq!(
        reader
            .feed(&secret(), &cfg, NOW, &mut cache, &[0x16, 0x03, 0x01, 0x10, 0x00])
            .err(),
        Some(FakeTlsError::RecordTooLarge)
    );
    let mut reader = ClientHelloReader::<2048>::new(&cfg);
    assert_eq!(
        reader
            .feed(&secret(), &cfg, NOW, &mut cache, b"GET / HTTP/1.1\r\n")
            .err(),
        Some(FakeTlsError::UnexpectedRecord)
    );
    let mut enc = RecordEncoder::server();
    assert!(matches!(
        enc.encode(&[0; 100], &mut [0u8; 104]),
        Err(WriteError::BufferTooSmall { .. })
    ));
}

// ---------------------------------------------------------------- item 10: size shaping

#[test]
fn chk_010_padded_sizes_vary() {
    let mut r = rng(13);
    let (mut client, _init) =
        ObfuscatedCodec::<64>::client(Framing::PaddedIntermediate, None, None, 64, &mut r).unwrap();
    let msg = [0x5au8; 24 + 64];
    let sends = 4000;
    let mut hist = [0usize; 16];
    let mut out = [0u8; 256];
    for _ in 0..sends {
        let n = client.encode(&msg, false, &mut r, &mut out).unwrap();
        let extra = n - 4 - msg.len();
        hist[extra] += 1;
    }
    // All 16 sizes occur, each near its expected share (250 ± 40%); a fixed size would fill one bin.
    for (i, &c) in hist.iter().enumerate() {
        assert!((150..=350).contains(&c), "size +{i}: {c} of {sends}: {hist:?}");
    }
    // And through a plain intermediate framing the size never varies (the control).
    let (mut plain, _) = ObfuscatedCodec::<64>::client(Framing::Intermediate, None, None, 64, &mut r).unwrap();
    let sizes: std::collections::BTreeSet<usize> = (0..100)
        .map(|_| plain.encode(&msg, false, &mut r, &mut out).unwrap())
        .collect();
    assert_eq!(sizes.len(), 1);
}

// ---------------------------------------------------------------- fallback

#[test]
fn fallback_walks_the_order_and_backs_off_with_jitter() {
    let cfg = FallbackConfig::default();
    let mut p = FallbackPolicy::<4>::new(cfg);
    let mut r = rng(14);
    assert_eq!(p.first(2), Carriage::ObfuscatedTcp);
    let mut c = Carriage::ObfuscatedTcp;
    let mut now = 0u64;
    let mut seen = Vec::new();
    for i in 0..8u32 {
        let d = p.on_failure(2, c, Failure::Reset, now, &mut r);
        let full = (cfg.base_delay_ms << i).min(cfg.max_delay_ms);
        let wait = d.at_ms - now;
        assert!(wait >= full - full / 2 && wait <= full, "attempt {i}: {wait} vs {full}");
        seen.push(d.carriage);
        c = d.carriage;
        now = d.at_ms;
    }
    assert_eq!(
        &seen[..4],
        &[
            Carriage::FakeTls,
            Carriage::WebSocket,
            Carriage::Http,
            Carriage::ObfuscatedTcp
        ]
    );
    // Load failures keep the carriage.
    let d = p.on_failure(2, Carriage::WebSocket, Failure::TransportCode(-429), now, &mut r);
    assert_eq!(d.carriage, Carriage::WebSocket);
    // Success resets the backoff and is remembered per DC.
    p.on_success(2, Carriage::WebSocket);
    assert_eq!(p.remembered(2), Some(Carriage::WebSocket));
    assert_eq!(p.first(2), Carriage::WebSocket);
    let d = p.on_failure(2, Carriage::WebSocket, Failure::WsClose(1006), 1000, &mut r);
    assert!(d.at_ms - 1000 <= cfg.base_delay_ms);
    assert_eq!(d.carriage, Carriage::Http);
    assert_eq!(p.remembered(2), None, "a carriage that failed is forgotten");
    assert_eq!(p.first(4), Carriage::ObfuscatedTcp, "other DCs are independent");
}

#[test]
fn fallback_is_deterministic_and_bounded() {
    let run = |seed| {
        let mut p = FallbackPolicy::<2>::new(FallbackConfig::default());
        let mut r = rng(seed);
        let mut out: Vec<Decision> = Vec::new();
        for dc in 1..=5i16 {
            p.on_success(dc, Carriage::FakeTls);
            out.push(p.on_failure(dc, Carriage::FakeTls, Failure::TlsAlert, 10, &mut r));
            out.push(p.on_failure(dc, Carriage::WebSocket, Failure::HttpStatus(403), 10, &mut r));
        }
        (out, p.remembered(1), p.remembered(5))
    };
    assert_eq!(run(1), run(1));
    let mut p = FallbackPolicy::<2>::new(FallbackConfig::default());
    for dc in 1..=3 {
        p.on_success(dc, Carriage::Http);
    }
    // Two slots: DC 1, least recently used, was evicted.
    assert_eq!(p.remembered(1), None);
    assert_eq!(p.remembered(2), Some(Carriage::Http));
    assert_eq!(p.remembered(3), Some(Carriage::Http));
    // A restricted order never proposes a disabled carriage.
    let mut p = FallbackPolicy::<1>::new(FallbackConfig {
        order: [
            Carriage::WebSocket,
            Carriage::Http,
            Carriage::FakeTls,
            Carriage::ObfuscatedTcp,
        ],
        enabled: 2,
        ..FallbackConfig::default()
    });
    let mut r = rng(2);
    let mut c = p.first(1);
    for _ in 0..6 {
        c = p.on_failure(1, c, Failure::ConnectTimeout, 0, &mut r).carriage;
        assert!(matches!(c, Carriage::WebSocket | Carriage::Http));
    }
}

// ---------------------------------------------------------------- seed corpora

/// Writes the seed corpora of the carriage fuzz targets when `CARRIAGE_WRITE_CORPUS=1`; always checks that the
/// seeds are accepted by the decoders they target.
#[test]
fn seed_corpora() {
    let mut r = rng(15);
    let mut http: Vec<Vec<u8>> = Vec::new();
    let mut out = [0u8; 512];
    let n = encode_request("example.org", "/api", &[1, 2, 3, 4, 5, 6, 7, 8], &mut out).unwrap();
    http.push(out[..n].to_vec());
    let n = encode_response(200, true, &[9; 40], &mut out).unwrap();
    http.push(out[..n].to_vec());
    let n = encode_response(404, false, b"", &mut out).unwrap();
    http.push(out[..n].to_vec());
    http.push(chunked(&[7; 100], &mut r));
    http.push(b"POST /api HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nX: y\r\n\r\n".to_vec());
    http.push(b"POST /api HTTP/1.1\r\nContent-Length: 99999\r\n\r\n".to_vec());
    http.push(b"GET /api HTTP/1.1\r\n\r\n".to_vec());

    let mut ws: Vec<Vec<u8>> = Vec::new();
    let (client, _, _) = ws_handshake(&mut r);
    let n = client.encode_request("h", "/apiws", None, &mut out).unwrap();
    ws.push(out[..n].to_vec());
    let mut c = WsCodec::<0>::new(Role::Client, 0);
    let mut s = WsCodec::<0>::new(Role::Server, 0);
    let n = c.encode_message(&[1; 30], &mut r, &mut out).unwrap();
    ws.push(out[..n].to_vec());
    let n = s.encode_message(&[2; 200], &mut r, &mut out).unwrap();
    ws.push(out[..n].to_vec());
    let mut frag = Vec::new();
    for (op, fin, p) in [
        (Opcode::Binary, false, &b"ab"[..]),
        (Opcode::Ping, true, b"p"),
        (Opcode::Continuation, true, b"cd"),
    ] {
        let n = s.encode_frame(op, fin, p, &mut r, &mut out).unwrap();
        frag.extend_from_slice(&out[..n]);
    }
    ws.push(frag);
    let n = s.encode_close(1001, &mut r, &mut out).unwrap();
    ws.push(out[..n].to_vec());
    ws.push(vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);

    let mut tls: Vec<Vec<u8>> = Vec::new();
    let s = secret();
    let (hello, _) = client_hello(
        &FakeTlsSecret::new(&[0x42; 16], b"example.com").unwrap(),
        1_700_000_000,
        &mut r,
    )
    .unwrap();
    tls.push(hello.to_vec());
    let (hello2, _) = client_hello(&s, NOW, &mut r).unwrap();
    tls.push(hello2.to_vec());
    let mut enc = RecordEncoder::client().with_max_payload(100);
    let mut buf = [0u8; 1024];
    let n = enc.encode(&[3; 250], &mut buf).unwrap();
    tls.push(buf[..n].to_vec());
    tls.push(vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
    tls.push(vec![0x17, 0x03, 0x03, 0x00, 0x00, 0x17, 0x03, 0x03, 0x00, 0x01, 0xff]);

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, seeds) in [
        ("carriage_http", &http),
        ("carriage_ws", &ws),
        ("carriage_faketls", &tls),
    ] {
        let target = mtproto_sansio::fuzzing::targets().find(|(n, _)| *n == name).unwrap().1;
        for (i, seed) in seeds.iter().enumerate() {
            // Piece-size byte first, as the entry points expect.
            for piece in [0u8, 7, 63] {
                let mut data = vec![piece];
                data.extend_from_slice(seed);
                target(&data);
                if std::env::var_os("CARRIAGE_WRITE_CORPUS").is_some() {
                    let dir = root.join(name);
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(dir.join(format!("seed-{i:02}-p{piece}")), &data).unwrap();
                }
            }
        }
    }
}

/// A stable-toolchain smoke run of the three fuzz entry points: random inputs and random mutations of the seed
/// corpora (the entry points assert round-trip invariants, so a bug shows up as a panic here).
#[test]
fn fuzz_entry_points_survive_random_and_mutated_inputs() {
    let mut r = rng(16);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for name in ["carriage_http", "carriage_ws", "carriage_faketls"] {
        let target = mtproto_sansio::fuzzing::targets().find(|(n, _)| *n == name).unwrap().1;
        let seeds: Vec<Vec<u8>> = std::fs::read_dir(root.join(name))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        assert!(!seeds.is_empty());
        for _ in 0..1500 {
            let n = r.random_range(0..700);
            target(&bytes(&mut r, n));
            let mut m = seeds[r.random_range(0..seeds.len())].clone();
            for _ in 0..r.random_range(1..4) {
                if m.is_empty() {
                    break;
                }
                let i = r.random_range(0..m.len());
                match r.random_range(0..3) {
                    0 => m[i] ^= 1 << r.random_range(0..8),
                    1 => m.truncate(i),
                    _ => m.insert(i, r.random()),
                }
            }
            target(&m);
        }
    }
}

#[test]
fn detector_routes_http_websocket_and_faketls_to_their_carriages() {
    use mtproto_sansio::transport::detect::{Detected, detect};
    let mut r = rng(17);
    let mut out = [0u8; 512];
    let n = encode_request("h", "/api", &[1; 8], &mut out).unwrap();
    assert_eq!(detect(&out[..n], None), Detected::Http);
    let c = ClientHandshake::<512>::new(512, &mut r);
    let n = c.encode_request("h", "/apiws", None, &mut out).unwrap();
    assert_eq!(detect(&out[..n], None), Detected::Http);
    let (hello, _) = client_hello(&secret(), NOW, &mut r).unwrap();
    assert_eq!(detect(&hello, None), Detected::FakeTls);
}
