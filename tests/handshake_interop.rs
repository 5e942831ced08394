//! Our DC role against a third-party client: Telethon's own handshake code (`authenticator.do_authentication`,
//! legacy RSA encoding, legacy `p_q_inner_data`) over real TCP, with the full, abridged and intermediate framings.
//! Needs `python3` with `telethon` (PyPI) installed, so it is ignored by default:
//! `pip install telethon==1.45.0 && cargo test --test handshake_interop -- --ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::fuzzing::handshake::dc_key;
use mtproto_sansio::handshake::{MAX_SERVER_MESSAGE, ServerConfig, ServerHandshakes, ServerReply};
use mtproto_sansio::time::Instant;
use mtproto_sansio::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing};

fn telethon_against_our_dc(framing: Framing, name: &str) {
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
    'accept: while keys.is_empty() {
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
        let mut dec: FrameDecoder<4096> = FrameDecoder::new(DecoderConfig::server(framing));
        let mut enc = Encoder::new(EncoderConfig::server(framing));
        let mut buf = [0u8; 4096];
        'conn: loop {
            let Ok(n) = sock.read(&mut buf) else { break };
            if n == 0 {
                break;
            }
            let mut input = &buf[..n];
            while !input.is_empty() {
                let used = dec.feed(input).expect("framing");
                input = &input[used..];
                let Some(frame) = dec.next_frame() else { continue };
                let Frame::Packet { data, .. } = frame else {
                    panic!("{frame:?}")
                };
                let payload = data.to_vec();
                let now = Instant::from_micros(start.elapsed().as_micros() as u64);
                let mut out = [0u8; MAX_SERVER_MESSAGE];
                let reply = dc.handle(now, &mut rng, peer, &payload, &mut out, &|_| false).unwrap();
                let mut wire = [0u8; 1024];
                let len = match reply {
                    ServerReply::Send(len) => enc.encode(&out[..len], false, &mut rng, &mut wire).unwrap(),
                    ServerReply::Complete { len, outcome } => {
                        keys.push(hex::encode(outcome.auth_key.as_bytes()));
                        enc.encode(&out[..len], false, &mut rng, &mut wire).unwrap()
                    }
                    ServerReply::Error(code) => enc.encode_error(code, &mut wire).unwrap(),
                };
                if sock.write_all(&wire[..len]).is_err() {
                    break 'conn;
                }
            }
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "telethon failed over {name}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let client_key = stdout.lines().next().unwrap().trim().to_string();
    assert_eq!(keys.len(), 1, "{name}: the DC created {} keys", keys.len());
    assert_eq!(client_key, keys[0], "{name}: Telethon and our DC hold different keys");
    let offset: i64 = stdout.lines().nth(1).unwrap().trim().parse().unwrap();
    assert!(
        offset.abs() <= 2,
        "{name}: Telethon computed a time offset of {offset} s"
    );
}

#[test]
#[ignore]
fn telethon_full() {
    telethon_against_our_dc(Framing::Full, "full");
}

#[test]
#[ignore]
fn telethon_abridged() {
    telethon_against_our_dc(Framing::Abridged, "abridged");
}

#[test]
#[ignore]
fn telethon_intermediate() {
    telethon_against_our_dc(Framing::Intermediate, "intermediate");
}
