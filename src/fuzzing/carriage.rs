//! Fuzz entry points for `carriage`: the HTTP, WebSocket and fake-TLS decoders fed arbitrary bytes in arbitrary
//! pieces, with invariants asserted and decoded units re-encoded and decoded again.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used)]

use crate::carriage::faketls::{
    ClientHelloReader, FakeTlsSecret, RecordDecoder, RecordEncoder, ReplayCache, ServerConfig, ServerHelloReader,
    client_hello, client_hello_sni, validate_client_hello,
};
use crate::carriage::http::{HttpDecoder, HttpLimits, encode_request, encode_response};
use crate::carriage::ws::{ServerHandshake, WsCodec, WsEvent};
use crate::transport::Role;

/// The targets of this area.
pub const TARGETS: &[(&str, super::Target)] = &[
    ("carriage_http", carriage_http),
    ("carriage_ws", carriage_ws),
    ("carriage_faketls", carriage_faketls),
];

/// Fuzz-only deterministic generator (xorshift): masks, padding and key shares only.
struct FuzzRng(u64);

impl rand_core::TryRng for FuzzRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.try_next_u64()? >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for FuzzRng {}

/// Splits the input after its first byte, which chooses the piece size.
fn split(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 64) + 1, rest),
        None => (1, &[]),
    }
}

const BODY: usize = 2048;

/// HTTP decoders, both roles: every decoded body is re-encoded by the peer encoder and must decode identically.
pub fn carriage_http(data: &[u8]) {
    let (piece, data) = split(data);
    let limits = HttpLimits {
        max_head: 1024,
        max_body: BODY,
        max_chunk_line: 64,
    };
    for role in [Role::Client, Role::Server] {
        let mut d = match role {
            Role::Client => HttpDecoder::<1024, BODY>::client(limits),
            Role::Server => HttpDecoder::<1024, BODY>::server("/api", limits),
        };
        let mut rest = data;
        let mut guard = 0usize;
        while !rest.is_empty() && guard < data.len() + 4 {
            guard += 1;
            let take = piece.min(rest.len());
            let Ok(n) = d.feed(rest.get(..take).unwrap_or(&[])) else {
                break;
            };
            assert!(n <= take);
            rest = rest.get(n..).unwrap_or(&[]);
            let keep_alive = d.keep_alive();
            if let Some(body) = d.next_body() {
                assert!(body.len() <= BODY);
                let mut copy = [0u8; BODY];
                let copy = copy.get_mut(..body.len()).unwrap_or(&mut []);
                copy.copy_from_slice(body);
                let mut wire = [0u8; BODY + 512];
                let written = match role {
                    Role::Client => encode_response(200, keep_alive, copy, &mut wire),
                    Role::Server => encode_request("h", "/api", copy, &mut wire),
                };
                let Ok(w) = written else { continue };
                let mut again = match role {
                    Role::Client => HttpDecoder::<1024, BODY>::client(limits),
                    Role::Server => HttpDecoder::<1024, BODY>::server("/api", limits),
                };
                let r = again.feed(wire.get(..w).unwrap_or(&[]));
                assert_eq!(r, Ok(w));
                assert_eq!(again.next_body(), Some(&*copy));
                // The connection's persistence survives the round trip (our requests always ask to keep it).
                assert_eq!(again.keep_alive(), role == Role::Server || keep_alive);
            } else if n == 0 {
                break;
            }
        }
    }
}

/// WebSocket: the server handshake parser, then frame decoders of both roles; messages are re-encoded by the
/// opposite role and must decode to the same bytes.
pub fn carriage_ws(data: &[u8]) {
    let (piece, data) = split(data);
    let mut hs = ServerHandshake::<1024>::new("/apiws", 1024);
    if let Ok((n, done)) = hs.feed(data) {
        assert!(n <= data.len());
        if done {
            let mut out = [0u8; 256];
            assert!(hs.encode_response(&mut out).is_ok());
        }
    }
    let mut rng = FuzzRng(0x9e37_79b9_7f4a_7c15);
    for role in [Role::Client, Role::Server] {
        let mut c = WsCodec::<BODY>::new(role, BODY);
        let mut rest = data;
        let mut guard = 0usize;
        while !rest.is_empty() && guard < data.len() + 4 {
            guard += 1;
            let take = piece.min(rest.len());
            let Ok(n) = c.feed(rest.get(..take).unwrap_or(&[])) else {
                break;
            };
            rest = rest.get(n..).unwrap_or(&[]);
            let mut copy = [0u8; BODY];
            let mut len = None;
            if let Some(ev) = c.next_event() {
                if let WsEvent::Message(m) = ev {
                    assert!(m.len() <= BODY);
                    if let Some(d) = copy.get_mut(..m.len()) {
                        d.copy_from_slice(m);
                    }
                    len = Some(m.len());
                }
            } else if n == 0 {
                break;
            }
            let mut out = [0u8; 256];
            let _ = c.poll_transmit(&mut rng, &mut out);
            if let Some(len) = len {
                let msg = copy.get(..len).unwrap_or(&[]);
                let peer = match role {
                    Role::Client => Role::Server,
                    Role::Server => Role::Client,
                };
                let mut enc = WsCodec::<0>::new(peer, 0);
                let mut wire = [0u8; BODY + 16];
                let Ok(w) = enc.encode_message(msg, &mut rng, &mut wire) else {
                    continue;
                };
                let mut dec = WsCodec::<BODY>::new(role, BODY);
                let r = dec.decode(wire.get(..w).unwrap_or(&[]));
                assert_eq!(r, Ok((w, Some(WsEvent::Message(msg)))));
            }
        }
    }
}

/// Fake-TLS: the ClientHello reader/validator with a fixed secret, the server-hello reader, and the record
/// decoder, whose output must equal the payload of a re-encoding.
pub fn carriage_faketls(data: &[u8]) {
    let (piece, data) = split(data);
    let Ok(secret) = FakeTlsSecret::new(&[0x42; 16], b"example.com") else {
        return;
    };
    let cfg = ServerConfig::default();
    let mut cache = ReplayCache::<8>::new();
    let mut reader = ClientHelloReader::<2048>::new(&cfg);
    if let Ok((n, acc)) = reader.feed(&secret, &cfg, 1_700_000_000, &mut cache, data) {
        assert!(n <= data.len());
        assert_eq!(acc.is_some(), !cache.is_empty());
    }
    let _ = validate_client_hello(&secret, &cfg, 1_700_000_000, data);
    // The SNI walk on arbitrary bytes: a name, if found, lies inside the input.
    if let Ok(Some(name)) = client_hello_sni(data) {
        assert!(name.len() <= data.len());
    }
    let mut rng = FuzzRng(7);
    if let Ok((hello, state)) = client_hello(&secret, 1_700_000_000, &mut rng) {
        assert_eq!(client_hello_sni(&hello), Ok(Some(secret.domain())));
        let mut sh = ServerHelloReader::<8192>::new(state);
        // Random bytes never carry a valid digest.
        assert!(!matches!(sh.feed(&secret, data), Ok((_, true))));
    }
    let mut dec = RecordDecoder::new(4096);
    let mut plain = [0u8; 4096];
    let mut produced = 0;
    let mut rest = data;
    let mut failed = false;
    while !rest.is_empty() {
        let take = piece.min(rest.len());
        let out = plain.get_mut(produced..).unwrap_or(&mut []);
        match dec.decode(rest.get(..take).unwrap_or(&[]), out) {
            Ok((n, p)) => {
                produced += p;
                rest = rest.get(n..).unwrap_or(&[]);
                if n == 0 {
                    break;
                }
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed && produced > 0 {
        let payload = plain.get(..produced).unwrap_or(&[]);
        let mut enc = RecordEncoder::server().with_max_payload(1 + (piece * 7) % 700);
        let mut wire = [0u8; 8192];
        if let Ok(w) = enc.encode(payload, &mut wire) {
            let mut d2 = RecordDecoder::new(4096);
            let mut back = [0u8; 4096];
            let r = d2.decode(wire.get(..w).unwrap_or(&[]), &mut back);
            assert_eq!(r, Ok((w, produced)));
            assert_eq!(back.get(..produced), Some(payload));
        }
    }
}
