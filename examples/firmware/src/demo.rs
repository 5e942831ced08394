//! The demo proper: a client and a DC, in one process, through a full auth-key handshake and then encrypted
//! messages (a ping and a 1 KiB request, each answered), every call measured.
//!
//! With the `client-only` feature the DC is not linked: its answers are replayed from the transcript the full build
//! printed (`DC> ` lines, captured by run.sh). Everything on the client side is deterministic (fixed demo RNG seed,
//! fixed clock), so the client sends the same messages and the recorded answers fit; the client still runs and
//! checks the whole handshake and decrypts and checks every answer.

use cortex_m_semihosting::hprintln;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake, MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE, Status};
use mtproto_sansio::time::Instant;
use mtproto_sansio::tl::schema::{Ping, Pong};
use mtproto_sansio::tl::{Reader, TlRead, TlWrite, Writer};

use crate::meter::measure;
use crate::rng::DemoRng;
use crate::{Report, WIRE, fail};

/// Unix time (µs) at `Instant::ZERO`: a fixed demo clock (2025-11-24 16:00 UTC), so runs are reproducible.
pub const DEMO_UNIX_MICROS: u64 = 1_764_000_000_000_000;
/// The DC id the client asks for.
const DC_ID: i32 = 2;
/// Bytes of the large request's body.
pub const BIG: usize = 1024;
/// `rpc_result#f35c6d01 req_msg_id:long result:Object`: the DC's answer to the large request echoes its body.
const RPC_RESULT: u32 = 0xf35c_6d01;

/// Instruction totals of one run, per role.
#[derive(Default)]
pub struct Totals {
    /// Client handshake instructions (all `poll_transmit` and `handle_packet` calls).
    pub client_handshake: u64,
    /// DC handshake instructions (all `handle` calls); zero in the client-only build.
    pub dc_handshake: u64,
    /// Client: encrypt the 1 KiB request.
    pub client_encrypt_1k: u64,
    /// Client: decrypt and check the 1 KiB answer.
    pub client_decrypt_1k: u64,
}

#[cfg(not(feature = "client-only"))]
mod dc {
    //! The DC role, live.
    use super::*;
    use mtproto_sansio::crypto::dh::DhGroup;
    use mtproto_sansio::crypto::pem::parse_private_pem_with_buf;
    use mtproto_sansio::crypto::rsa::RsaPrivateKey;
    use mtproto_sansio::handshake::{ServerConfig, ServerHandshakes, ServerReply};

    /// The test DC's RSA key (a public test fixture of the main crate, never a real secret).
    const DC_KEY_PEM: &[u8] = include_bytes!("../../../tests/data/keys/dc_test_pkcs1.pem");

    pub struct Dc {
        table: &'static mut ServerHandshakes<'static, 1>,
        rng: DemoRng,
        key: Option<AuthKey>,
        salt: u64,
        session: u64,
        msg_ids: u64,
        seq: u32,
    }

    impl Dc {
        pub fn new(r: &mut Report) -> (Self, &'static RsaPublicKey) {
            let m = measure(|| {
                let mut pem_buf = [0u8; 1400];
                parse_private_pem_with_buf(DC_KEY_PEM, &mut pem_buf)
            });
            r.line("DC setup: RSA private key from PEM", &m);
            let key = m.out.unwrap_or_else(|_| fail("DC key PEM"));
            let key: &'static RsaPrivateKey = cortex_m::singleton!(: RsaPrivateKey = key).unwrap_or_else(|| fail("key"));
            let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("DH group"));
            let mut cfg = ServerConfig::new(key, group);
            cfg.unix_micros_at_zero = DEMO_UNIX_MICROS;
            cfg.dc_id = Some(DC_ID);
            let table = cortex_m::singleton!(: ServerHandshakes<'static, 1> = ServerHandshakes::new(cfg))
                .unwrap_or_else(|| fail("table"));
            let dc = Dc { table, rng: DemoRng::demo(b'D'), key: None, salt: 0, session: 0, msg_ids: 0, seq: 0 };
            (dc, key.public_key())
        }

        /// One handshake message from the client: the DC's answer into `out`, its length returned.
        pub fn handshake(&mut self, r: &mut Report, t: &mut Totals, now: Instant, msg: &[u8], out: &mut [u8]) -> usize {
            let m = measure(|| self.table.handle(now, &mut self.rng, 1, msg, out, &|_| false));
            t.dc_handshake += r.line("  DC: handle", &m);
            let n = match m.out {
                Ok(ServerReply::Send(n)) => n,
                Ok(ServerReply::Complete { len, outcome }) => {
                    self.salt = outcome.server_salt;
                    self.key = Some(outcome.auth_key);
                    len
                }
                Ok(ServerReply::Error(code)) => {
                    hprintln!("DC answered transport error {}", code);
                    fail("DC refused the handshake")
                }
                Err(_) => fail("DC buffer"),
            };
            record('H', out.get(..n).unwrap_or_default());
            n
        }

        pub fn key_id(&self) -> Option<u64> {
            self.key.as_ref().map(AuthKey::id)
        }

        /// One encrypted request: decrypt and check it, answer it (pong, or rpc_result echoing the body), encrypt
        /// the answer into `packet` and return its length.
        pub fn rpc(&mut self, r: &mut Report, packet: &mut [u8; WIRE], len: usize) -> usize {
            let key = self.key.as_ref().unwrap_or_else(|| fail("DC has no key"));
            let mut answer = [0u8; BIG + 16];
            let mut req_msg_id = 0;
            let m = measure(|| {
                let v = packet::decrypt(key, Direction::ClientToServer, packet.get_mut(..len).unwrap_or_default())?;
                if v.salt() != self.salt {
                    return Err(packet::DecryptError::Rejected);
                }
                self.session = v.session_id();
                req_msg_id = v.msg_id();
                let body = v.body();
                let mut w = Writer::new(&mut answer);
                let ok = match Reader::new(body).read::<Ping>() {
                    Ok(p) => Pong { msg_id: v.msg_id() as i64, ping_id: p.ping_id }.write(&mut w).is_ok(),
                    Err(_) => {
                        w.u32(RPC_RESULT).is_ok() && w.i64(v.msg_id() as i64).is_ok() && w.raw(body).is_ok()
                    }
                };
                Ok(if ok { w.written() } else { 0 })
            });
            r.line(if len > 256 { "  DC: decrypt+check 1 KiB request" } else { "  DC: decrypt+check ping" }, &m);
            let n = m.out.unwrap_or_else(|_| fail("DC rejected the client's packet"));
            self.msg_ids += 4;
            self.seq += 2;
            let header = MessageHeader {
                salt: self.salt,
                session_id: self.session,
                msg_id: (req_msg_id & !3) + self.msg_ids + 1,
                seq_no: self.seq - 1,
            };
            let m = measure(|| {
                let body = answer.get(..n).unwrap_or_default();
                packet::encrypt_with_policy(
                    key,
                    Direction::ServerToClient,
                    &header,
                    body,
                    PaddingPolicy::MINIMAL,
                    &mut self.rng,
                    packet,
                )
            });
            r.line(if n > 256 { "  DC: encrypt 1 KiB answer" } else { "  DC: encrypt pong" }, &m);
            let out = m.out.unwrap_or_else(|_| fail("DC encrypt")).len;
            record('M', packet.get(..out).unwrap_or_default());
            out
        }
    }

    /// Prints a DC→client payload (`H`andshake or encrypted `M`essage) for the client-only build's replay
    /// (run.sh collects these lines).
    fn record(kind: char, bytes: &[u8]) {
        hprintln!("DC> {} {}", kind, crate::Hex(bytes));
    }
}

#[cfg(feature = "client-only")]
mod dc {
    //! The DC role, replayed from the full build's transcript (see the module docs of `demo`).
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/transcript.rs"));

    pub struct Dc {
        next: usize,
        done: bool,
    }

    /// The test DC's public key, as a client ships it (a public test fixture of the main crate).
    const DC_PUB_PEM: &[u8] = include_bytes!("../../../tests/data/keys/dc_test_pub_pkcs1.pem");

    impl Dc {
        pub fn new(_r: &mut Report) -> (Self, &'static RsaPublicKey) {
            let mut buf = [0u8; 400];
            let key = mtproto_sansio::crypto::pem::parse_public_pem_with_buf(DC_PUB_PEM, &mut buf)
                .unwrap_or_else(|_| fail("DC public key"));
            let key: &'static RsaPublicKey = cortex_m::singleton!(: RsaPublicKey = key).unwrap_or_else(|| fail("key"));
            (Dc { next: 0, done: false }, key)
        }

        fn replay(&mut self, out: &mut [u8]) -> usize {
            let msg = TRANSCRIPT.get(self.next).unwrap_or_else(|| fail("transcript too short"));
            self.next += 1;
            let dst = out.get_mut(..msg.len()).unwrap_or_else(|| fail("transcript message too long"));
            dst.copy_from_slice(msg);
            msg.len()
        }

        pub fn handshake(&mut self, _r: &mut Report, _t: &mut Totals, _now: Instant, _msg: &[u8], out: &mut [u8]) -> usize {
            let n = self.replay(out);
            self.done = self.next == HANDSHAKE_MESSAGES;
            n
        }

        pub fn key_id(&self) -> Option<u64> {
            self.done.then_some(KEY_ID)
        }

        pub fn rpc(&mut self, _r: &mut Report, packet: &mut [u8; WIRE], _len: usize) -> usize {
            self.replay(packet)
        }
    }
}

/// Runs the whole demo; returns the per-role totals.
#[inline(never)]
pub fn run(r: &mut Report, wire: &'static mut [u8; WIRE]) -> Totals {
    let mut t = Totals::default();
    let (mut dc, dc_public) = dc::Dc::new(r);
    let trusted: &'static [RsaPublicKey; 1] =
        cortex_m::singleton!(: [RsaPublicKey; 1] = [*dc_public]).unwrap_or_else(|| fail("trusted keys"));
    let mut cfg = ClientConfig::new(trusted, DC_ID);
    cfg.unix_micros_at_zero = DEMO_UNIX_MICROS;
    let mut now = Instant::from_millis(1);
    let client = cortex_m::singleton!(: ClientHandshake<'static> = ClientHandshake::new(cfg, now))
        .unwrap_or_else(|| fail("client"));
    let mut rng = DemoRng::demo(b'C');
    let mut c2s = [0u8; MAX_CLIENT_MESSAGE];
    let mut s2c = [0u8; MAX_SERVER_MESSAGE];

    hprintln!("-- handshake (client <-> DC, full 2048-bit DH exponents)");
    let mut rounds = 0;
    while client.status() == Status::Running {
        rounds += 1;
        if rounds > 8 {
            fail("handshake did not finish in 8 rounds");
        }
        let m = measure(|| client.poll_transmit(now, &mut rng, &mut c2s));
        t.client_handshake += r.line("  client: poll_transmit", &m);
        let n = match m.out {
            Ok(Some(n)) => n,
            Ok(None) => break,
            Err(_) => fail("client buffer"),
        };
        now = Instant::from_micros(now.as_micros() + 1_000);
        let msg = c2s.get(..n).unwrap_or_default();
        let a = dc.handshake(r, &mut t, now, msg, &mut s2c);
        now = Instant::from_micros(now.as_micros() + 1_000);
        let m = measure(|| client.handle_packet(now, s2c.get(..a).unwrap_or_default()));
        t.client_handshake += r.line("  client: handle_packet", &m);
        if let Err(e) = m.out {
            hprintln!("client: {}", e);
            fail("client rejected the DC's answer");
        }
    }
    if let Status::Failed(e) = client.status() {
        hprintln!("client handshake failed: {}", e);
        fail("handshake");
    }
    let last_msg_id = client.last_msg_id();
    let outcome = client.take_outcome().unwrap_or_else(|| fail("no outcome"));
    let id = outcome.auth_key.id();
    hprintln!("auth_key_id {:016x} (client), {:016x} (DC)", id, dc.key_id().unwrap_or(0));
    r.check(dc.key_id() == Some(id), "client and DC hold the same auth key");
    #[cfg(not(feature = "client-only"))]
    hprintln!("DC KEY_ID {:016x}", id);
    hprintln!("client handshake: {} instructions; DC handshake: {} instructions", t.client_handshake, t.dc_handshake);

    hprintln!("-- encrypted messages");
    let key = outcome.auth_key;
    let session_id = 0x5e55_1011_d0d0_cafe;
    let mut msg_id = last_msg_id;
    // A ping, then the 1 KiB request.
    for (seq, big) in [(1u32, false), (3, true)] {
        msg_id += 4;
        let header = MessageHeader { salt: outcome.server_salt, session_id, msg_id, seq_no: seq };
        let mut body = [0u8; BIG];
        let blen = if big {
            for (i, b) in body.iter_mut().enumerate() {
                *b = (i * 31 + 7) as u8;
            }
            BIG
        } else {
            let ping = Ping { ping_id: 0x0123_4567_89ab_cdef };
            ping.write(&mut Writer::new(&mut body)).unwrap_or_else(|_| fail("ping"));
            ping.tl_len()
        };
        let m = measure(|| {
            let b = body.get(..blen).unwrap_or_default();
            packet::encrypt_with_policy(&key, Direction::ClientToServer, &header, b, PaddingPolicy::MINIMAL, &mut rng, wire)
        });
        let e = r.line(if big { "  client: encrypt 1 KiB request" } else { "  client: encrypt ping" }, &m);
        let n = m.out.unwrap_or_else(|_| fail("client encrypt")).len;
        let a = dc.rpc(r, wire, n);
        let m = measure(|| {
            let v = packet::decrypt(&key, Direction::ServerToClient, wire.get_mut(..a).unwrap_or_default()).ok()?;
            let ok = v.session_id() == session_id && v.salt() == outcome.server_salt && v.msg_id() % 4 == 1;
            let mut rd = Reader::new(v.body());
            let ok = ok
                && if big {
                    rd.u32() == Ok(RPC_RESULT) && rd.u64() == Ok(msg_id) && rd.take_rest() == body.as_slice()
                } else {
                    Pong::read(&mut rd).is_ok_and(|p| p.msg_id == msg_id as i64 && p.ping_id == 0x0123_4567_89ab_cdef)
                };
            Some(ok)
        });
        let d = r.line(if big { "  client: decrypt+check 1 KiB answer" } else { "  client: decrypt+check pong" }, &m);
        r.check(m.out == Some(true), if big { "1 KiB request answered" } else { "ping answered" });
        if big {
            t.client_encrypt_1k = e;
            t.client_decrypt_1k = d;
        }
    }
    t
}
