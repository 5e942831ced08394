//! Our DC role against a third-party client: Telethon's own handshake code (`authenticator.do_authentication`,
//! legacy RSA encoding, legacy `p_q_inner_data`) over real TCP, with the full, abridged and intermediate framings
//! and the obfuscated transport. Without `python3` and `telethon` the tests are reported ignored, or fail when
//! `MTPROTO_REQUIRE_INTEROP` asks for Telethon (`.ci/run` does): see `tests/interop_peer/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod interop_peer;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::handshake::{MAX_SERVER_MESSAGE, ServerConfig, ServerHandshakes, ServerReply};
use mtproto_sansio::time::Instant;
use mtproto_sansio::transport::obfuscated::ObfuscatedCodec;
use mtproto_sansio::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing};

/// The DC end of one TCP connection: a plain framing or the obfuscated transport.
enum Ends {
    Plain(Box<FrameDecoder<4096>>, Encoder),
    Obfuscated(Box<ObfuscatedCodec<4096>>),
}

impl Ends {
    fn feed(&mut self, input: &[u8]) -> (usize, Option<Vec<u8>>) {
        match self {
            Ends::Plain(dec, _) => (dec.feed(input).expect("framing"), dec.next_frame().map(packet)),
            Ends::Obfuscated(c) => (c.feed(input).expect("obfuscation"), c.next_frame().map(packet)),
        }
    }

    fn send(&mut self, msg: Result<&[u8], i32>, rng: &mut rand::rngs::ThreadRng, out: &mut [u8]) -> usize {
        match (self, msg) {
            (Ends::Plain(_, enc), Ok(m)) => enc.encode(m, false, rng, out).unwrap(),
            (Ends::Plain(_, enc), Err(c)) => enc.encode_error(c, out).unwrap(),
            (Ends::Obfuscated(o), Ok(m)) => o.encode(m, false, rng, out).unwrap(),
            (Ends::Obfuscated(o), Err(c)) => o.encode_error(c, out).unwrap(),
        }
    }
}

fn packet(frame: Frame<'_>) -> Vec<u8> {
    match frame {
        Frame::Packet { data, .. } => data.to_vec(),
        other => panic!("{other:?}"),
    }
}

fn telethon_against_our_dc(framing: Option<Framing>, name: &str) {
    let key = dc_key().unwrap();
    let mut cfg = ServerConfig::new(&key, DhGroup::telegram(3).unwrap());
    let start = std::time::Instant::now();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    cfg.unix_micros_at_zero = unix.as_micros() as u64;
    let mut dc: ServerHandshakes<'_, 16> = ServerHandshakes::new(cfg);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let n_hex = hex::encode(key.public_key().n_bytes());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/telethon_auth.py");
    let mut child = Command::new("python3")
        .args([script, &port.to_string(), name, &n_hex, "65537"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut keys = Vec::new();
    let mut rng = rand::rng();
    let mut peer = 0u64;
    listener.set_nonblocking(true).unwrap();
    // Served until Telethon exits, not until the first key: about 1 run in 256 Telethon drops leading zero bytes of
    // g_ab (INTEROP.md), fails its own new_nonce_hash check after our DC completed the key, and retries on a new
    // connection; that retry must be answered too (interop_telethon.rs tolerates the abandoned key the same way).
    'accept: loop {
        let (mut sock, _) = loop {
            match listener.accept() {
                Ok(s) => break s,
                Err(_) if child.try_wait().unwrap().is_some() => break 'accept,
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        peer += 1;
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut ends = match framing {
            Some(f) => Ends::Plain(
                Box::new(FrameDecoder::new(DecoderConfig::server(f))),
                Encoder::new(EncoderConfig::server(f)),
            ),
            None => Ends::Obfuscated(Box::new(ObfuscatedCodec::server_default(None))),
        };
        let mut buf = [0u8; 4096];
        'conn: while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut input = &buf[..n];
            while !input.is_empty() {
                let (used, frame) = ends.feed(input);
                input = &input[used..];
                let Some(payload) = frame else { continue };
                let now = Instant::from_micros(start.elapsed().as_micros() as u64);
                let mut out = [0u8; MAX_SERVER_MESSAGE];
                let reply = dc.handle(now, &mut rng, peer, &payload, &mut out, &|_| false).unwrap();
                let mut wire = [0u8; 1024];
                let len = match reply {
                    ServerReply::Send(len) => ends.send(Ok(&out[..len]), &mut rng, &mut wire),
                    ServerReply::Complete { len, outcome } => {
                        keys.push(hex::encode(outcome.auth_key.as_bytes()));
                        ends.send(Ok(&out[..len]), &mut rng, &mut wire)
                    }
                    ServerReply::Error(code) => ends.send(Err(code), &mut rng, &mut wire),
                };
                if sock.write_all(&wire[..len]).is_err() {
                    break 'conn;
                }
            }
        }
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let _log = interop_peer::PrintOnPanic(format!("{name}:\n{stdout}"));
    assert!(output.status.success(), "telethon failed over {name}");
    let client_key = stdout.lines().next().unwrap().trim().to_string();
    // One key per handshake Telethon ran; the script makes at most 5 tries, and a try that ends before the key is
    // complete (a -404 to its stripped encrypted_data) makes none. The key Telethon kept is the last one.
    assert!(
        (1..=5).contains(&keys.len()),
        "{name}: the DC created {} keys",
        keys.len()
    );
    assert_eq!(
        Some(&client_key),
        keys.last(),
        "{name}: Telethon and our DC hold different keys"
    );
    let offset: i64 = stdout.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(
        offset.abs() <= 2,
        "{name}: Telethon computed a time offset of {offset} s"
    );
}

fn telethon_missing() -> Option<String> {
    match Command::new("python3").args(["-c", "import telethon, rsa"]).output() {
        Err(e) => Some(format!("python3 not runnable: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "telethon not importable: {}",
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
        )),
        Ok(_) => None,
    }
}

fn main() {
    interop_peer::main(
        interop_peer::Peer {
            name: "telethon",
            install: "pip install telethon==1.45.0",
            missing: telethon_missing,
        },
        &[
            ("telethon_full", || telethon_against_our_dc(Some(Framing::Full), "full")),
            ("telethon_abridged", || {
                telethon_against_our_dc(Some(Framing::Abridged), "abridged")
            }),
            ("telethon_intermediate", || {
                telethon_against_our_dc(Some(Framing::Intermediate), "intermediate")
            }),
            ("telethon_obfuscated", || telethon_against_our_dc(None, "obfuscated")),
            // Many runs, so Telethon's occasional 255-byte encrypted_data (a stripped leading zero, INTEROP.md)
            // shows up and is answered with -404, after which Telethon's retry must succeed.
            ("telethon_repeated", || {
                for _ in 0..12 {
                    telethon_against_our_dc(Some(Framing::Intermediate), "intermediate");
                }
            }),
        ],
    )
}
