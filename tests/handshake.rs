//! The auth-key handshake end to end: the spec's worked example replayed through the client machine, and client
//! against DC in process over every transport framing, permanent and temporary keys, many seeds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::VecDeque;
use std::sync::OnceLock;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::crypto::rsa::{RsaPrivateKey, RsaPublicKey, TELEGRAM_KEYS, rsa_pad_encrypt};
use mtproto_sansio::fuzzing::handshake::{FIXTURE_UNIX_MICROS, SeededRng, dc_key};
use mtproto_sansio::handshake::{
    ClientConfig, ClientHandshake, KeyKind, MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE, ServerConfig, ServerHandshakes,
    ServerReply, Status,
};
use mtproto_sansio::time::Instant;
use mtproto_sansio::transport::obfuscated::ObfuscatedCodec;
use mtproto_sansio::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing};
use serde_json::Value;

fn sample() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/auth_key_sample.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hexv(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v["values"][key]["hex"].as_str().unwrap()).unwrap()
}

fn step_msg(v: &Value, i: usize) -> Vec<u8> {
    hex::decode(v["steps"][i]["message_hex"].as_str().unwrap()).unwrap()
}

/// Yields scripted byte strings, each only to a draw of exactly its length, in order; any other draw (RSA_PAD's
/// temp_key, which the page does not give) comes from a seeded fallback generator.
struct ScriptRng {
    script: VecDeque<Vec<u8>>,
    fallback: SeededRng,
}

impl rand_core::TryRng for ScriptRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if self.script.front().is_some_and(|s| s.len() == dst.len()) {
            dst.copy_from_slice(&self.script.pop_front().unwrap());
        } else {
            self.fallback.try_fill_bytes(dst)?;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ScriptRng {}

/// Asserts two plaintext messages are equal except for the msg_id (bytes 8..16): the page's msg_ids come from a
/// nanosecond clock, ours from the host's microsecond `Instant`; both must be client ids of the same second.
fn assert_same_but_msg_id(ours: &[u8], page: &[u8], what: &str) {
    assert_eq!(ours.len(), page.len(), "{what}: length");
    assert_eq!(ours[..8], page[..8], "{what}: auth_key_id");
    assert_eq!(ours[16..], page[16..], "{what}: length and body");
    let id = u64::from_le_bytes(ours[8..16].try_into().unwrap());
    let page_id = u64::from_le_bytes(page[8..16].try_into().unwrap());
    assert_eq!(id % 4, 0, "{what}: client msg_id parity");
    assert_eq!(id >> 32, page_id >> 32, "{what}: msg_id second");
}

#[test]
fn sample_replayed_through_client() {
    let v = sample();
    let mut rng = ScriptRng {
        script: VecDeque::from([
            hexv(&v, "nonce"),
            hexv(&v, "new_nonce"),
            hexv(&v, "random_padding_bytes"),
            hexv(&v, "b"),
            hexv(&v, "client_padding"),
        ]),
        fallback: SeededRng::new(b"sample temp_key"),
    };
    let mut cfg = ClientConfig::telegram(2);
    cfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS;
    let now = Instant::from_micros(85);
    let mut client = ClientHandshake::new(cfg, now);
    let mut out = [0u8; MAX_CLIENT_MESSAGE];

    let n = client.poll_transmit(now, &mut rng, &mut out).unwrap().unwrap();
    assert_same_but_msg_id(&out[..n], &step_msg(&v, 0), "req_pq_multi");
    assert_eq!(client.poll_transmit(now, &mut rng, &mut out).unwrap(), None);

    client.handle_packet(now, &step_msg(&v, 1)).unwrap();
    let n = client.poll_transmit(now, &mut rng, &mut out).unwrap().unwrap();
    let page = step_msg(&v, 2);
    // Everything but the 256-byte RSA block (its temp_key is not on the page) must match.
    assert_same_but_msg_id(&out[..n - 256], &page[..page.len() - 256], "req_DH_params");
    // The block is RSA_PAD of exactly the page's p_q_inner_data_dc with the page's padding: replay RSA_PAD with
    // the same randomness (padding, then the fallback's temp_key draws) and compare.
    let mut replay = ScriptRng {
        script: VecDeque::from([hexv(&v, "random_padding_bytes")]),
        fallback: SeededRng::new(b"sample temp_key"),
    };
    let want = rsa_pad_encrypt(&TELEGRAM_KEYS[0], &hexv(&v, "p_q_inner_data_dc"), &mut replay).unwrap();
    assert_eq!(out[n - 256..n], want[..], "req_DH_params: RSA block");

    client.handle_packet(now, &step_msg(&v, 3)).unwrap();
    let n = client.poll_transmit(now, &mut rng, &mut out).unwrap().unwrap();
    assert_same_but_msg_id(&out[..n], &step_msg(&v, 4), "set_client_DH_params");
    assert!(rng.script.is_empty(), "every scripted value was drawn");

    client.handle_packet(now, &step_msg(&v, 5)).unwrap();
    assert_eq!(client.status(), Status::Done);
    let outcome = client.take_outcome().unwrap();
    assert_eq!(outcome.auth_key.as_bytes()[..], hexv(&v, "auth_key")[..]);
    let key_id = u64::from_le_bytes(hexv(&v, "auth_key_id").try_into().unwrap());
    assert_eq!(outcome.auth_key.id(), key_id);
    let salt = u64::from_le_bytes(
        hex::decode(v["values"]["server_salt"]["hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert_eq!(outcome.server_salt, salt);
    assert_eq!(outcome.server_time_offset, 0);
    assert_eq!(outcome.expires_in, None);
    assert!(client.take_outcome().is_none());
    assert_eq!(client.poll_transmit(now, &mut rng, &mut out).unwrap(), None);
}

pub fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| dc_key().unwrap())
}

pub fn trusted() -> &'static [RsaPublicKey] {
    static T: OnceLock<[RsaPublicKey; 1]> = OnceLock::new();
    T.get_or_init(|| [*key().public_key()])
}

/// One connection: client and DC ends of a framing (plain or obfuscated), bytes carried through the real encoders
/// and decoders.
struct Link {
    framing: Framing,
    c_enc: Encoder,
    s_enc: Encoder,
    c_dec: FrameDecoder<4096>,
    s_dec: FrameDecoder<4096>,
    /// Obfuscated ends (client, DC) and the client's init, still to be sent.
    obf: Option<(ObfuscatedCodec<4096>, ObfuscatedCodec<4096>)>,
    prefix: Vec<u8>,
}

impl Link {
    fn new(framing: Framing, obfuscated: bool, rng: &mut SeededRng) -> Self {
        let (obf, prefix) = if obfuscated {
            let (client, init) = ObfuscatedCodec::client(framing, Some(2), None, 4096, rng).unwrap();
            (Some((client, ObfuscatedCodec::server(None, 4096))), init.to_vec())
        } else {
            (None, framing.init_bytes().to_vec())
        };
        Link {
            framing,
            c_enc: Encoder::new(EncoderConfig::client(framing)),
            s_enc: Encoder::new(EncoderConfig::server(framing)),
            c_dec: FrameDecoder::new(DecoderConfig::client(framing)),
            s_dec: FrameDecoder::new(DecoderConfig::server(framing)),
            obf,
            prefix,
        }
    }

    /// Client → DC: frames `msg`, feeds the wire bytes (in pieces) to the DC's decoder, returns the payload.
    fn c2s(&mut self, msg: &[u8], rng: &mut SeededRng) -> Vec<u8> {
        let mut wire = std::mem::take(&mut self.prefix);
        let mut buf = [0u8; 4096];
        let n = match &mut self.obf {
            Some((client, _)) => client.encode(msg, false, rng, &mut buf).unwrap(),
            None => self.c_enc.encode(msg, false, rng, &mut buf).unwrap(),
        };
        wire.extend_from_slice(&buf[..n]);
        let mut rest = &wire[..];
        let mut piece = (wire.len() / 3).max(1);
        loop {
            let take = piece.min(rest.len());
            piece = rest.len();
            let (used, frame) = match &mut self.obf {
                Some((_, server)) => {
                    let used = server.feed(&rest[..take]).unwrap();
                    (used, server.next_frame().map(owned))
                }
                None => {
                    let used = self.s_dec.feed(&rest[..take]).unwrap();
                    (used, self.s_dec.next_frame().map(owned))
                }
            };
            rest = &rest[used..];
            if let Some(frame) = frame {
                assert!(rest.is_empty(), "{:?}: bytes left after the frame", self.framing);
                match frame {
                    Frame2::Packet(data) => return data,
                    Frame2::Error(c) => panic!("unexpected error frame {c}"),
                }
            }
            assert!(used > 0 || take == 0);
        }
    }

    /// DC → client: frames the reply (message or transport error), decodes it on the client side.
    fn s2c(&mut self, reply: Result<&[u8], i32>, rng: &mut SeededRng) -> Frame2 {
        let mut buf = [0u8; 4096];
        match &mut self.obf {
            Some((client, server)) => {
                let n = match reply {
                    Ok(msg) => server.encode(msg, false, rng, &mut buf).unwrap(),
                    Err(code) => server.encode_error(code, &mut buf).unwrap(),
                };
                assert_eq!(client.feed(&buf[..n]).unwrap(), n);
                owned(client.next_frame().unwrap())
            }
            None => {
                let n = match reply {
                    Ok(msg) => self.s_enc.encode(msg, false, rng, &mut buf).unwrap(),
                    Err(code) => self.s_enc.encode_error(code, &mut buf).unwrap(),
                };
                assert_eq!(self.c_dec.feed(&buf[..n]).unwrap(), n);
                owned(self.c_dec.next_frame().unwrap())
            }
        }
    }
}

fn owned(frame: Frame<'_>) -> Frame2 {
    match frame {
        Frame::Packet { data, .. } => Frame2::Packet(data.to_vec()),
        Frame::TransportError(c) => Frame2::Error(c),
        other => panic!("unexpected frame {other:?}"),
    }
}

enum Frame2 {
    Packet(Vec<u8>),
    Error(i32),
}

/// A full handshake over `framing`; returns the client's and the DC's keys.
fn handshake_over(
    framing: Framing,
    obfuscated: bool,
    kind: KeyKind,
    seed: u64,
) -> (AuthKey, AuthKey, u64, Option<u32>) {
    let padded = framing == Framing::PaddedIntermediate;
    let mut ccfg = ClientConfig::new(trusted(), 2);
    ccfg.kind = kind;
    ccfg.transport_padding = padded;
    ccfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS;
    let mut scfg = ServerConfig::new(key(), DhGroup::telegram(3).unwrap());
    scfg.dc_id = Some(2);
    scfg.transport_padding = padded;
    scfg.unix_micros_at_zero = FIXTURE_UNIX_MICROS + 3_000_000;
    let mut client = ClientHandshake::new(ccfg, Instant::ZERO);
    let mut server: ServerHandshakes<'_, 8> = ServerHandshakes::new(scfg);
    let mut crng = SeededRng::new(&seed.to_le_bytes());
    let mut srng = SeededRng::new(&(seed ^ 0xdead_beef).to_le_bytes());
    let mut trng = SeededRng::new(b"transport");
    let mut link = Link::new(framing, obfuscated, &mut trng);
    let mut now = Instant::from_millis(5);
    let mut cbuf = [0u8; MAX_CLIENT_MESSAGE];
    let mut sbuf = [0u8; MAX_SERVER_MESSAGE];
    let mut server_key = None;
    for _ in 0..10 {
        let Some(n) = client.poll_transmit(now, &mut crng, &mut cbuf).unwrap() else {
            break;
        };
        let payload = link.c2s(&cbuf[..n], &mut trng);
        now = now.saturating_add(core::time::Duration::from_millis(20));
        let reply = server
            .handle(now, &mut srng, 1, &payload, &mut sbuf, &|_| false)
            .unwrap();
        let frame = match reply {
            ServerReply::Send(n) => link.s2c(Ok(&sbuf[..n]), &mut trng),
            ServerReply::Complete { len, outcome } => {
                assert_eq!(outcome.dc, Some(2));
                server_key = Some((outcome.auth_key, outcome.server_salt, outcome.expires_in));
                link.s2c(Ok(&sbuf[..len]), &mut trng)
            }
            ServerReply::Error(c) => link.s2c(Err(c), &mut trng),
        };
        match frame {
            Frame2::Packet(p) => client.handle_packet(now, &p).unwrap(),
            Frame2::Error(c) => client.handle_transport_error(now, c),
        }
    }
    assert_eq!(client.status(), Status::Done, "{framing:?} seed {seed}");
    let out = client.take_outcome().unwrap();
    assert_eq!(out.server_time_offset, 3);
    let (skey, ssalt, sexp) = server_key.unwrap();
    assert_eq!(out.server_salt, ssalt);
    assert_eq!(out.expires_in, sexp);
    (out.auth_key, skey, out.server_salt, out.expires_in)
}

fn seeds() -> u64 {
    std::env::var("HANDSHAKE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

#[test]
fn client_against_dc_every_framing_many_seeds() {
    // Every framing, plain and (except full, which obfuscation does not carry) obfuscated.
    let links = [
        (Framing::Abridged, false),
        (Framing::Intermediate, false),
        (Framing::PaddedIntermediate, false),
        (Framing::Full, false),
        (Framing::Abridged, true),
        (Framing::Intermediate, true),
        (Framing::PaddedIntermediate, true),
    ];
    let mut ids = std::collections::HashSet::new();
    let total = seeds();
    for seed in 0..total {
        let (framing, obfuscated) = links[(seed % links.len() as u64) as usize];
        let kind = if seed % 3 == 0 {
            KeyKind::Temporary {
                expires_in: 3600 + seed as u32,
            }
        } else {
            KeyKind::Permanent
        };
        let (ck, sk, _, exp) = handshake_over(framing, obfuscated, kind, seed);
        assert_eq!(ck, sk, "{framing:?} seed {seed}: keys differ");
        assert_eq!(ck.id(), sk.id());
        match kind {
            KeyKind::Temporary { expires_in } => assert_eq!(exp, Some(expires_in)),
            KeyKind::Permanent => assert_eq!(exp, None),
        }
        assert!(ids.insert(ck.id()), "two seeds produced the same key");
    }
    assert_eq!(ids.len() as u64, total);
}

#[test]
fn same_seed_same_bytes() {
    let a = handshake_over(Framing::Intermediate, true, KeyKind::Permanent, 7);
    let b = handshake_over(Framing::Intermediate, true, KeyKind::Permanent, 7);
    assert_eq!(a.0, b.0);
    assert_eq!(a.2, b.2);
}

/// Regenerates the checked-in seed corpora of the `handshake_client` and `handshake_server` fuzz targets:
/// `cargo test --test handshake -- --ignored write_seed_corpora`.
#[test]
#[ignore]
fn write_seed_corpora() {
    use mtproto_sansio::fuzzing::handshake::Pair;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    // Genuine messages of the runs the targets replay (same seeds), in order.
    let run = |seed: &[u8]| {
        let mut p = Pair::new(key(), trusted(), KeyKind::Permanent, seed).unwrap();
        let (mut c2s, mut s2c) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            assert!(p.client_send());
            c2s.push(p.c2s[..p.c2s_len].to_vec());
            p.server_receive().unwrap();
            s2c.push(p.s2c[..p.s2c_len].to_vec());
            p.client_receive().unwrap();
        }
        assert_eq!(p.client.status(), Status::Done);
        (c2s, s2c)
    };
    let (_, s2c) = run(b"fuzz-client");
    let (c2s, _) = run(b"fuzz-server");
    for (target, msgs) in [("handshake_client", &s2c), ("handshake_server", &c2s)] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), vec![]),
            (
                "minus_404".into(),
                [vec![0, 0], (-404i32).to_le_bytes().to_vec()].concat(),
            ),
            (
                "minus_444_step1".into(),
                [vec![1, 0], (-444i32).to_le_bytes().to_vec()].concat(),
            ),
            (
                "minus_429_step2".into(),
                [vec![2, 0], (-429i32).to_le_bytes().to_vec()].concat(),
            ),
        ];
        for (k, m) in msgs.iter().enumerate() {
            for step in 0..4u8 {
                // Raw genuine message at its own step and at the others; wrapped body; wrapped with nonces patched.
                files.push((format!("raw_msg{k}_step{step}"), [vec![step, 0], m.clone()].concat()));
                files.push((
                    format!("wrapped_msg{k}_step{step}"),
                    [vec![step, 1], m[20..].to_vec()].concat(),
                ));
                files.push((
                    format!("patched_msg{k}_step{step}"),
                    [vec![step, 3], m[20..].to_vec()].concat(),
                ));
            }
            let mut trunc = m.clone();
            trunc.truncate(m.len() / 2);
            files.push((format!("truncated_msg{k}"), [vec![k as u8, 0], trunc].concat()));
            let mut flipped = m.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 0x55;
            files.push((format!("flipped_msg{k}"), [vec![k as u8, 0], flipped].concat()));
        }
        files.push(("temp_key_step1".into(), [vec![1, 4], s2c[0].clone()].concat()));
        if target == "handshake_server" {
            // The key check deferred to the host (mode bit 3), answered "free" and "taken" (bit 4).
            files.push(("deferred_msg2_step2".into(), [vec![2, 8], msgs[2].clone()].concat()));
            files.push((
                "deferred_taken_msg2_step2".into(),
                [vec![2, 24], msgs[2].clone()].concat(),
            ));
        }
        for (name, data) in files {
            std::fs::write(dir.join(name), data).unwrap();
        }
    }
}
