//! A DC connection (`Connection::server_handshake`) answers a handshake restarted on it after a key was made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
use mtproto_sansio::crypto::dh::DhGroup;
use mtproto_sansio::fuzzing::handshake::{SeededRng, dc_key};
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake, MAX_CLIENT_MESSAGE, ServerConfig, Status};
use mtproto_sansio::session::{Connection, ConnectionConfig, HostQuery, TransportConfig};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing};

type S = Connection<8192, 8192, 16>;

/// A client whose own check of a new key fails (Telethon strips a leading zero byte of g^ab, about 1 key in 256)
/// starts a second handshake on the same connection: the DC must answer it (it used to drop the plaintext and the
/// client timed out after 60 s; seen as a flaky `telethon_mtproxy_secret`).
#[test]
fn second_handshake_on_same_connection_is_answered() {
    let key = dc_key().unwrap();
    let trusted = [*key.public_key()];
    let now = Instant::from_secs(50);
    let mut sc = ServerConfig::new(Box::leak(Box::new(dc_key().unwrap())), DhGroup::telegram(3).unwrap());
    sc.dc_id = Some(2);
    let cfg = ConnectionConfig {
        unix_time_hint: Some(UnixTime(1_700_000_000)),
        transport: TransportConfig::INTERMEDIATE,
        ..ConnectionConfig::DEFAULT
    };
    let mut d = Box::new(S::server_handshake(cfg, sc, now));
    let mut enc = Encoder::new(EncoderConfig::client(Framing::Intermediate));
    let mut dec: FrameDecoder<8192> = FrameDecoder::new(DecoderConfig::client(Framing::Intermediate));
    let mut rng = SeededRng::new(b"x");
    let tr: &'static [_] = Box::leak(Box::new(trusted));
    let init = enc.init_bytes();
    assert_eq!(d.handle_input(now, init).unwrap(), init.len());
    for attempt in 0..2 {
        let mut c = ClientHandshake::new(ClientConfig::new(tr, 2), now);
        let mut got_any = false;
        for _ in 0..10 {
            let mut m = [0u8; MAX_CLIENT_MESSAGE];
            let Some(n) = c.poll_transmit(now, &mut rng, &mut m).unwrap() else {
                break;
            };
            let mut framed = vec![0u8; n + 64];
            let k = enc.encode(&m[..n], false, &mut rng, &mut framed).unwrap();
            let mut off = 0;
            while off < k {
                off += d.handle_input(now, &framed[off..k]).unwrap();
                while d.poll_event().is_some() {}
            }
            let mut buf = vec![0u8; d.min_transmit_len()];
            let mut s2c = Vec::new();
            while let Some(x) = d.poll_transmit(now, &mut rng, &mut buf).unwrap() {
                s2c.extend_from_slice(&buf[..x]);
            }
            // No key store here: nothing to collide with. The new key's check parks dh_gen_ok until answered.
            if let Some(HostQuery::NewAuthKey { .. }) = d.host_query() {
                d.accept_new_key(now, false, &mut rng).unwrap();
                while let Some(x) = d.poll_transmit(now, &mut rng, &mut buf).unwrap() {
                    s2c.extend_from_slice(&buf[..x]);
                }
            }
            while d.poll_event().is_some() {}
            if s2c.is_empty() {
                println!("attempt {attempt}: DC sent nothing; client status {:?}", c.status());
                break;
            }
            got_any = true;
            let mut off = 0;
            while off < s2c.len() {
                let (k, f) = dec.decode(&s2c[off..]).unwrap();
                off += k;
                if let Some(Frame::Packet { data, .. }) = f {
                    let _ = c.handle_packet(now, data);
                }
            }
            if c.status() == Status::Done {
                break;
            }
        }
        println!("attempt {attempt}: status {:?} got_any {got_any}", c.status());
        assert_eq!(c.status(), Status::Done, "attempt {attempt}");
    }
}
