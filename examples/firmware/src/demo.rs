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
    /// Deepest stack of any client call (absolute: includes the demo's own frames, about 1.3 KiB).
    pub client_stack: usize,
    /// Deepest stack of any DC call (handshake and messages; the key setup is not counted).
    #[cfg_attr(feature = "client-only", allow(dead_code))]
    pub dc_stack: usize,
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
        /// The DC's RSA key, also used by the connection demo's DC.
        pub private: &'static RsaPrivateKey,
        table: &'static mut ServerHandshakes<'static, 1>,
        rng: DemoRng,
        key: Option<AuthKey>,
        salt: u64,
        session: u64,
        msg_ids: u64,
        seq: u32,
        answer: [u8; BIG + 16],
    }

    impl Dc {
        pub fn new(r: &mut Report) -> (Self, &'static RsaPublicKey) {
            let m = measure(|| {
                let mut pem_buf = [0u8; 1400];
                parse_private_pem_with_buf(DC_KEY_PEM, &mut pem_buf)
            });
            r.line("DC setup: RSA private key from PEM", &m);
            let key = m.out.unwrap_or_else(|_| fail("DC key PEM"));
            let key: &'static RsaPrivateKey =
                cortex_m::singleton!(: RsaPrivateKey = key).unwrap_or_else(|| fail("key"));
            let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("DH group"));
            let mut cfg = ServerConfig::new(key, group);
            cfg.unix_micros_at_zero = DEMO_UNIX_MICROS;
            cfg.dc_id = Some(DC_ID);
            let table = cortex_m::singleton!(: ServerHandshakes<'static, 1> = ServerHandshakes::new(cfg))
                .unwrap_or_else(|| fail("table"));
            let dc = Dc {
                private: key,
                table,
                rng: DemoRng::demo(b'D'),
                key: None,
                salt: 0,
                session: 0,
                msg_ids: 0,
                seq: 0,
                answer: [0; BIG + 16],
            };
            (dc, key.public_key())
        }

        #[inline(never)]
        /// One handshake message from the client: the DC's answer into `out`, its length returned.
        pub fn handshake(&mut self, r: &mut Report, t: &mut Totals, now: Instant, msg: &[u8], out: &mut [u8]) -> usize {
            let m = measure(|| self.table.handle(now, &mut self.rng, 1, msg, out, &|_| false));
            t.dc_handshake += r.line("  DC: handle", &m);
            t.dc_stack = t.dc_stack.max(m.stack);
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

        #[inline(never)]
        /// One encrypted request: decrypt and check it, answer it (pong, or rpc_result echoing the body), encrypt
        /// the answer into `packet` and return its length.
        pub fn rpc(&mut self, r: &mut Report, t: &mut Totals, packet: &mut [u8; WIRE], len: usize) -> usize {
            let key = self.key.as_ref().unwrap_or_else(|| fail("DC has no key"));
            let answer = &mut self.answer;
            let mut req_msg_id = 0;
            let m = measure(|| {
                let v = packet::decrypt(
                    key,
                    Direction::ClientToServer,
                    packet.get_mut(..len).unwrap_or_default(),
                )?;
                if v.salt() != self.salt {
                    return Err(packet::DecryptError::Rejected);
                }
                self.session = v.session_id();
                req_msg_id = v.msg_id();
                let body = v.body();
                let mut w = Writer::new(answer);
                let ok = match Reader::new(body).read::<Ping>() {
                    Ok(p) => Pong {
                        msg_id: v.msg_id() as i64,
                        ping_id: p.ping_id,
                    }
                    .write(&mut w)
                    .is_ok(),
                    Err(_) => w.u32(RPC_RESULT).is_ok() && w.i64(v.msg_id() as i64).is_ok() && w.raw(body).is_ok(),
                };
                Ok(if ok { w.written() } else { 0 })
            });
            r.line(
                if len > 256 {
                    "  DC: decrypt+check 1 KiB request"
                } else {
                    "  DC: decrypt+check ping"
                },
                &m,
            );
            t.dc_stack = t.dc_stack.max(m.stack);
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
                let body = self.answer.get(..n).unwrap_or_default();
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
            r.line(
                if n > 256 {
                    "  DC: encrypt 1 KiB answer"
                } else {
                    "  DC: encrypt pong"
                },
                &m,
            );
            t.dc_stack = t.dc_stack.max(m.stack);
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
            let msg = TRANSCRIPT
                .get(self.next)
                .unwrap_or_else(|| fail("transcript too short"));
            self.next += 1;
            let dst = out
                .get_mut(..msg.len())
                .unwrap_or_else(|| fail("transcript message too long"));
            dst.copy_from_slice(msg);
            msg.len()
        }

        pub fn handshake(
            &mut self,
            _r: &mut Report,
            _t: &mut Totals,
            _now: Instant,
            _msg: &[u8],
            out: &mut [u8],
        ) -> usize {
            let n = self.replay(out);
            self.done = self.next == HANDSHAKE_MESSAGES;
            n
        }

        pub fn key_id(&self) -> Option<u64> {
            self.done.then_some(KEY_ID)
        }

        pub fn rpc(&mut self, _r: &mut Report, _t: &mut Totals, packet: &mut [u8; WIRE], _len: usize) -> usize {
            self.replay(packet)
        }
    }
}

/// Everything the demo keeps between calls, in one static (see [`run`]): the machines, the client's RNG and the
/// message buffers, so the driving functions' frames stay small and the stack figures are the library's.
struct State {
    client: ClientHandshake<'static>,
    trusted: &'static [RsaPublicKey; 1],
    dc: dc::Dc,
    rng: DemoRng,
    c2s: [u8; MAX_CLIENT_MESSAGE],
    s2c: [u8; MAX_SERVER_MESSAGE],
    body: [u8; BIG],
    now: Instant,
}

/// The keys of the demo, for the connection demo that follows it.
pub struct Keys {
    /// The DC keys the client trusts.
    pub trusted: &'static [RsaPublicKey],
    /// The DC's private key.
    #[cfg(not(feature = "client-only"))]
    pub private: &'static mtproto_sansio::crypto::rsa::RsaPrivateKey,
}

/// Runs the whole demo; returns the per-role totals and the keys.
#[inline(never)]
pub fn run(r: &mut Report, wire: &'static mut [u8; WIRE]) -> (Totals, Keys) {
    let mut t = Totals::default();
    let st = setup(r);
    hprintln!("-- handshake (client <-> DC, full 2048-bit DH exponents)");
    let mut rounds = 0;
    while st.client.status() == Status::Running {
        rounds += 1;
        if rounds > 8 {
            fail("handshake did not finish in 8 rounds");
        }
        if !handshake_round(r, &mut t, st) {
            break;
        }
    }
    if let Status::Failed(e) = st.client.status() {
        hprintln!("client handshake failed: {}", e);
        fail("handshake");
    }
    let last_msg_id = st.client.last_msg_id();
    let outcome = st.client.take_outcome().unwrap_or_else(|| fail("no outcome"));
    let id = outcome.auth_key.id();
    hprintln!(
        "auth_key_id {:016x} (client), {:016x} (DC)",
        id,
        st.dc.key_id().unwrap_or(0)
    );
    r.check(st.dc.key_id() == Some(id), "client and DC hold the same auth key");
    #[cfg(not(feature = "client-only"))]
    hprintln!("DC KEY_ID {:016x}", id);
    hprintln!(
        "client handshake: {} instructions; DC handshake: {} instructions",
        t.client_handshake,
        t.dc_handshake
    );

    hprintln!("-- encrypted messages");
    let session = Connection {
        key: outcome.auth_key,
        salt: outcome.server_salt,
        id: 0x5e55_1011_d0d0_cafe,
    };
    // A ping, then the 1 KiB request.
    exchange(r, &mut t, st, wire, &session, last_msg_id + 4, 1, false);
    let (e, d) = exchange(r, &mut t, st, wire, &session, last_msg_id + 8, 3, true);
    t.client_encrypt_1k = e;
    t.client_decrypt_1k = d;
    let keys = Keys {
        trusted: st.trusted,
        #[cfg(not(feature = "client-only"))]
        private: st.dc.private,
    };
    (t, keys)
}

#[inline(never)]
fn setup(r: &mut Report) -> &'static mut State {
    let (dc, dc_public) = dc::Dc::new(r);
    let trusted: &'static [RsaPublicKey; 1] =
        cortex_m::singleton!(: [RsaPublicKey; 1] = [*dc_public]).unwrap_or_else(|| fail("trusted keys"));
    let mut cfg = ClientConfig::new(trusted, DC_ID);
    cfg.unix_micros_at_zero = DEMO_UNIX_MICROS;
    let now = Instant::from_millis(1);
    cortex_m::singleton!(: State = State {
        client: ClientHandshake::new(cfg, now),
        trusted,
        dc,
        rng: DemoRng::demo(b'C'),
        c2s: [0; MAX_CLIENT_MESSAGE],
        s2c: [0; MAX_SERVER_MESSAGE],
        body: [0; BIG],
        now,
    })
    .unwrap_or_else(|| fail("state"))
}

/// One round: the client's next message, the DC's answer, the client's handling of it. False if the client had
/// nothing to send.
#[inline(never)]
fn handshake_round(r: &mut Report, t: &mut Totals, st: &mut State) -> bool {
    let m = measure(|| st.client.poll_transmit(st.now, &mut st.rng, &mut st.c2s));
    t.client_handshake += r.line("  client: poll_transmit", &m);
    t.client_stack = t.client_stack.max(m.stack);
    let n = match m.out {
        Ok(Some(n)) => n,
        Ok(None) => return false,
        Err(_) => fail("client buffer"),
    };
    st.now = Instant::from_micros(st.now.as_micros() + 1_000);
    let msg = st.c2s.get(..n).unwrap_or_default();
    let a = st.dc.handshake(r, t, st.now, msg, &mut st.s2c);
    st.now = Instant::from_micros(st.now.as_micros() + 1_000);
    let m = measure(|| st.client.handle_packet(st.now, st.s2c.get(..a).unwrap_or_default()));
    t.client_handshake += r.line("  client: handle_packet", &m);
    t.client_stack = t.client_stack.max(m.stack);
    if let Err(e) = m.out {
        hprintln!("client: {}", e);
        fail("client rejected the DC's answer");
    }
    true
}

/// The client's side of the encrypted session.
struct Connection {
    key: AuthKey,
    salt: u64,
    id: u64,
}

/// One encrypted request and its answer: a ping (answered by a pong) or the 1 KiB request (answered by an
/// `rpc_result` echoing it). Returns the client's encrypt and decrypt instruction counts.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn exchange(
    r: &mut Report,
    t: &mut Totals,
    st: &mut State,
    wire: &mut [u8; WIRE],
    s: &Connection,
    msg_id: u64,
    seq_no: u32,
    big: bool,
) -> (u64, u64) {
    const PING_ID: i64 = 0x0123_4567_89ab_cdef;
    let header = MessageHeader {
        salt: s.salt,
        session_id: s.id,
        msg_id,
        seq_no,
    };
    let blen = if big {
        for (i, b) in st.body.iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        BIG
    } else {
        let ping = Ping { ping_id: PING_ID };
        ping.write(&mut Writer::new(&mut st.body))
            .unwrap_or_else(|_| fail("ping"));
        ping.tl_len()
    };
    let m = measure(|| {
        let b = st.body.get(..blen).unwrap_or_default();
        packet::encrypt_with_policy(
            &s.key,
            Direction::ClientToServer,
            &header,
            b,
            PaddingPolicy::MINIMAL,
            &mut st.rng,
            wire,
        )
    });
    let e = r.line(
        if big {
            "  client: encrypt 1 KiB request"
        } else {
            "  client: encrypt ping"
        },
        &m,
    );
    t.client_stack = t.client_stack.max(m.stack);
    let n = m.out.unwrap_or_else(|_| fail("client encrypt")).len;
    let a = st.dc.rpc(r, t, wire, n);
    let m = measure(|| {
        let v = packet::decrypt(&s.key, Direction::ServerToClient, wire.get_mut(..a).unwrap_or_default()).ok()?;
        let ok = v.session_id() == s.id && v.salt() == s.salt && v.msg_id() % 4 == 1;
        let mut rd = Reader::new(v.body());
        let ok = ok
            && if big {
                rd.u32() == Ok(RPC_RESULT) && rd.u64() == Ok(msg_id) && rd.take_rest() == st.body.as_slice()
            } else {
                Pong::read(&mut rd).is_ok_and(|p| p.msg_id == msg_id as i64 && p.ping_id == PING_ID)
            };
        Some(ok)
    });
    let d = r.line(
        if big {
            "  client: decrypt+check 1 KiB answer"
        } else {
            "  client: decrypt+check pong"
        },
        &m,
    );
    t.client_stack = t.client_stack.max(m.stack);
    r.check(
        m.out == Some(true),
        if big { "1 KiB request answered" } else { "ping answered" },
    );
    (e, d)
}
