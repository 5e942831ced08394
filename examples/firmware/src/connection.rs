//! The crate's connection type on the device: a client [`Connection`] (`Connection::client_handshake`) over the obfuscated
//! intermediate transport, as real clients connect, through the auth-key handshake, `AuthKeyReady`, two queries and
//! their results, with one lost packet recovered by the client's resend timer. Every client call is measured.
//!
//! Full build: the DC is a `Connection::server_handshake` connection in the same process, its host answering the
//! `HostQuery`s as a real one does: the obfuscated init against a small [`ReplayCache`], the new key's id (no
//! store here, so never taken), and a session no other connection served (`resume_session(None)`). It answers every
//! request with an `rpc_result` echoing the query. Between the two runs a [`Link`] that loses the first encrypted
//! client packet. The obfuscated stream is AES-CTR, so bytes cut out of it would desynchronise every later frame
//! (on TCP a packet is never lost inside the stream); the link therefore flips one bit of the packet's msg_key,
//! which CTR passes through to the plaintext: the DC refuses the packet (one uniform decryption failure) and drops
//! it, which is the loss the client sees. Both sides check that each query arrives, and its answer returns,
//! exactly once.
//!
//! Client-only build: the DC's deliveries are replayed from the full build's transcript (`DC> R <round> <hex>`
//! lines: what the client received in that round). Time is the demo's fixed virtual clock: 1 ms per round with
//! traffic, and a quiet round jumps to the client's `poll_timeout` (the resend timer), so the client's calls and
//! bytes are the same in both builds and the recorded deliveries fit.

use cortex_m_semihosting::hprintln;

use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake, ServerHandshakes};
use mtproto_sansio::session::{
    Connection, ConnectionConfig, DC_HANDSHAKE_RUNS, Event, MsgId, MsgKind, Session, SessionConfig, TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::Framing;

use crate::demo::DEMO_UNIX_MICROS;
use crate::meter::measure;
use crate::rng::DemoRng;
use crate::{Report, fail};

/// Receive buffer (frame limit) of the connection: the handshake's largest answer and the 1 KiB result fit.
pub const RX: usize = 4096;
/// Resend arena: both queries stay in it until acknowledged.
pub const TX: usize = 4096;
/// Messages in flight.
pub const MSGS: usize = 8;
/// The connection type as the device holds it (the crate's `ConnectionSmall`).
pub type Conn = Connection<RX, TX, MSGS>;

/// The output buffer of `poll_transmit` (at least `Conn::min_transmit_len`, checked at run time).
const OUT: usize = RX + 256;
/// What one direction carries in one round, at most.
const ROUND_BYTES: usize = 4096;
/// Rounds before the run counts as stuck.
const MAX_ROUNDS: u32 = 64;
/// The DC id asked for and carried in the obfuscated init.
const DC_ID: i16 = 2;
/// One round of traffic advances the virtual clock by this much.
const ROUND_MICROS: u64 = 1_000;

/// The queries: `help.getNearestDc`, and a 1 KiB body (an `upload.saveFilePart`-sized payload, content arbitrary).
const Q_SMALL: [u8; 4] = 0x1fb3_3026u32.to_le_bytes();
const BIG: usize = 1024;

/// The connection in the configuration both ends use: obfuscated intermediate, the demo's fixed Unix time.
fn config() -> ConnectionConfig {
    ConnectionConfig {
        engine: SessionConfig::DEFAULT,
        transport: TransportConfig {
            framing: Framing::Intermediate,
            obfuscated: true,
            dc_id: Some(DC_ID),
        },
        unix_time_hint: Some(UnixTime(DEMO_UNIX_MICROS / 1_000_000)),
        salt: 0,
    }
}

/// The 1 KiB query body.
fn big_query(b: &mut [u8; BIG]) {
    for (i, x) in b.iter_mut().enumerate() {
        *x = (i * 13 + 5) as u8;
    }
}

/// Instructions and stack of one group of client calls.
#[derive(Default, Clone, Copy)]
pub struct Tally {
    /// Instructions of all calls.
    pub insns: u64,
    /// Calls.
    pub calls: u32,
    /// Deepest stack of any call, from the top of the stack (includes the demo's frames).
    pub stack: usize,
    /// Most stack any single call used below its caller.
    pub call_stack: usize,
}

impl Tally {
    /// Adds one measured call; prints its line if it is named.
    fn add<T>(&mut self, r: &mut Report, what: Option<&str>, m: &crate::meter::Measured<T>) {
        self.insns += match what {
            Some(w) => r.line(w, m),
            None => r.instructions(m),
        };
        self.calls += 1;
        self.stack = self.stack.max(m.stack);
        self.call_stack = self.call_stack.max(m.stack.saturating_sub(m.base));
    }

    fn merge(&self, o: &Tally) -> Tally {
        Tally {
            insns: self.insns + o.insns,
            calls: self.calls + o.calls,
            stack: self.stack.max(o.stack),
            call_stack: self.call_stack.max(o.call_stack),
        }
    }
}

/// The connection run's figures.
#[derive(Default)]
pub struct Figures {
    /// Building the client `Connection` (in place in a static: what the move costs on the stack).
    pub construct: Tally,
    /// Client calls until `AuthKeyReady` (the auth-key handshake through the connection).
    pub handshake: Tally,
    /// Client calls after it: queries, the resend, results.
    pub session: Tally,
    /// `size_of::<Conn>()`.
    pub conn_size: usize,
    /// Rounds the run took.
    pub rounds: u32,
}

impl Figures {
    /// The whole connection run, construction included.
    pub fn total(&self) -> Tally {
        self.construct.merge(&self.handshake).merge(&self.session)
    }
}

#[cfg(not(feature = "client-only"))]
mod dc {
    //! The DC connection and its host, live.
    use super::*;
    use mtproto_sansio::crypto::auth_key::AuthKey;
    use mtproto_sansio::crypto::dh::DhGroup;
    use mtproto_sansio::crypto::rsa::RsaPrivateKey;
    use mtproto_sansio::handshake::ServerConfig;
    use mtproto_sansio::session::HostQuery;
    use mtproto_sansio::transport::replay::ReplayCache;

    /// The DC side: its connection, and what its host keeps across connections.
    pub struct Peer {
        conn: &'static mut Conn,
        /// Inits seen (item 9): a host shares one between all its connections.
        replay: ReplayCache<4>,
        rng: DemoRng,
        out: [u8; OUT],
        /// A request's body, copied out of the event so the host can answer it.
        req: [u8; BIG],
        big: [u8; BIG],
        /// Deliveries of each query (each must be 1).
        seen_small: u32,
        seen_big: u32,
        key_id: Option<u64>,
        failed: bool,
    }

    impl Peer {
        /// The DC's connection and host, in place in a static.
        #[inline(never)]
        // The `&'static mut` comes from a `singleton!`, not from the key.
        #[allow(clippy::mut_from_ref)]
        pub fn new(key: &'static RsaPrivateKey, now: Instant) -> &'static mut Self {
            let group = DhGroup::telegram(3).unwrap_or_else(|_| fail("DH group"));
            let mut sc = ServerConfig::new(key, group);
            sc.dc_id = Some(i32::from(DC_ID));
            let conn = cortex_m::singleton!(: Conn = Conn::server_handshake(config(), sc, now))
                .unwrap_or_else(|| fail("DC connection"));
            let p = cortex_m::singleton!(: Peer = Peer {
                conn,
                replay: ReplayCache::new(),
                rng: DemoRng::demo(b'd'),
                out: [0; OUT],
                req: [0; BIG],
                big: [0; BIG],
                seen_small: 0,
                seen_big: 0,
                key_id: None,
                failed: false,
            })
            .unwrap_or_else(|| fail("DC state"));
            big_query(&mut p.big);
            p
        }

        /// Runs the DC's timers, feeds it what the link carried, answers everything it asks, and collects what it
        /// sends into `s2c`; returns the length. The round's deliveries are printed for the client-only replay.
        pub fn round(&mut self, round: u32, now: Instant, c2s: &[u8], s2c: &mut [u8; ROUND_BYTES]) -> usize {
            if self.conn.poll_timeout().is_some_and(|t| t <= now) && self.conn.handle_timeout(now).is_err() {
                fail("DC connection failed on a timer");
            }
            let mut off = 0;
            let mut len = 0;
            loop {
                let n = if off < c2s.len() {
                    let rest = c2s.get(off..).unwrap_or_default();
                    self.conn
                        .handle_input(now, rest)
                        .unwrap_or_else(|_| fail("DC connection failed"))
                } else {
                    0
                };
                off += n;
                let mut progress = n > 0;
                progress |= self.events(now);
                progress |= self.host(now);
                while let Some(m) = self
                    .conn
                    .poll_transmit(now, &mut self.rng, &mut self.out)
                    .unwrap_or_else(|_| fail("DC output buffer"))
                {
                    let dst = s2c
                        .get_mut(len..len + m)
                        .unwrap_or_else(|| fail("DC round output too long"));
                    dst.copy_from_slice(self.out.get(..m).unwrap_or_default());
                    len += m;
                    progress = true;
                }
                if !progress {
                    break;
                }
            }
            if off < c2s.len() {
                fail("DC left input unread");
            }
            if len > 0 {
                hprintln!("DC> R {} {}", round, crate::Hex(s2c.get(..len).unwrap_or_default()));
            }
            len
        }

        /// Drains the DC's events; answers each request with its echo. Returns whether there was any.
        fn events(&mut self, now: Instant) -> bool {
            let mut any = false;
            loop {
                let req = match self.conn.poll_event() {
                    None => return any,
                    Some(Event::Request { msg_id, body }) => {
                        let dst = self
                            .req
                            .get_mut(..body.len())
                            .unwrap_or_else(|| fail("request too long"));
                        dst.copy_from_slice(body);
                        Some((msg_id, body.len()))
                    }
                    Some(Event::AuthKeyReady) => {
                        self.key_id = self.conn.auth_key().map(AuthKey::id);
                        None
                    }
                    // Host queries, reported once each; `host` answers them through `host_query`.
                    Some(Event::SessionCreated { .. } | Event::ObfuscatedInit | Event::NewAuthKey { .. }) => None,
                    Some(Event::SessionRequired { .. }) => None,
                    Some(_) => {
                        hprintln!("DC: unexpected event");
                        self.failed = true;
                        None
                    }
                };
                any = true;
                let Some((msg_id, len)) = req else { continue };
                let body = self.req.get(..len).unwrap_or_default();
                if body == Q_SMALL.as_slice() {
                    self.seen_small += 1;
                } else if body == self.big.as_slice() {
                    self.seen_big += 1;
                } else {
                    hprintln!("DC: unknown request");
                    self.failed = true;
                }
                if self.conn.answer(now, msg_id, body).is_err() {
                    fail("DC could not answer");
                }
            }
        }

        /// Answers what the connection asks of its host. Returns whether it asked anything.
        fn host(&mut self, now: Instant) -> bool {
            match self.conn.host_query() {
                None => false,
                Some(HostQuery::ObfuscatedInit) => {
                    if self.conn.check_obfuscated_init(&mut self.replay).is_err() {
                        fail("DC: init refused");
                    }
                    true
                }
                // No key store to collide with in this demo: never taken.
                Some(HostQuery::NewAuthKey { .. }) => {
                    if self.conn.accept_new_key(now, false, &mut self.rng).is_err() {
                        fail("DC: new key");
                    }
                    true
                }
                // This is the only connection: no other one served the session.
                Some(HostQuery::Session { .. }) => {
                    if self.conn.resume_session(now, None).is_err() {
                        fail("DC: session");
                    }
                    true
                }
                Some(_) => fail("DC: a stored key was asked for"),
            }
        }

        /// The DC's verdict: the client's key, each query delivered exactly once, the damaged packet dropped.
        pub fn verify(&self, r: &mut Report, client_key: Option<u64>) {
            hprintln!(
                "DC: key {:016x}, requests delivered: small {}, 1 KiB {}; frames dropped {}",
                self.key_id.unwrap_or(0),
                self.seen_small,
                self.seen_big,
                self.conn.frames_dropped()
            );
            r.check(
                self.key_id.is_some() && self.key_id == client_key,
                "DC and client hold one key",
            );
            r.check(
                self.seen_small == 1 && self.seen_big == 1,
                "DC: each query delivered exactly once",
            );
            r.check(self.conn.frames_dropped() == 1, "DC: the damaged packet was dropped");
            r.check(!self.failed, "DC: only expected events and requests");
        }
    }

    /// The network between the two: carries the client's bytes, damaging the first encrypted packet once the key
    /// is made (see the module docs: that packet is lost).
    pub struct Link {
        /// Set by the driver when the client reported `AuthKeyReady`.
        pub armed: bool,
        pub lost: bool,
    }

    impl Link {
        pub fn new() -> Self {
            Link {
                armed: false,
                lost: false,
            }
        }

        /// One `poll_transmit` chunk of the client: one intermediate frame (4-byte length, auth_key_id, msg_key...).
        pub fn carry(&mut self, chunk: &mut [u8]) {
            if self.armed && !self.lost {
                // First byte of the msg_key: after the 4-byte length and the 8-byte auth_key_id.
                if let Some(b) = chunk.get_mut(4 + 8) {
                    *b ^= 1;
                    self.lost = true;
                    hprintln!("link: the client's packet of {} B is lost", chunk.len());
                }
            }
        }
    }
}

#[cfg(feature = "client-only")]
mod dc {
    //! The DC's deliveries, replayed from the full build's transcript (see the module docs).
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/connection_transcript.rs"));

    pub struct Peer {
        next: usize,
    }

    impl Peer {
        pub fn new(_now: Instant) -> &'static mut Self {
            cortex_m::singleton!(: Peer = Peer { next: 0 }).unwrap_or_else(|| fail("replay state"))
        }

        /// What the DC delivered to the client in `round` (nothing if the transcript has no line for it).
        pub fn round(&mut self, round: u32, _now: Instant, _c2s: &[u8], s2c: &mut [u8; ROUND_BYTES]) -> usize {
            match CONNECTION.get(self.next) {
                Some((r, bytes)) if *r == round => {
                    self.next += 1;
                    let dst = s2c
                        .get_mut(..bytes.len())
                        .unwrap_or_else(|| fail("transcript delivery too long"));
                    dst.copy_from_slice(bytes);
                    bytes.len()
                }
                _ => 0,
            }
        }

        pub fn verify(&self, r: &mut Report, _client_key: Option<u64>) {
            r.check(self.next == CONNECTION.len(), "every recorded DC delivery was used");
        }
    }

    /// Nothing to carry to: the client's bytes are dropped here (the replay does not depend on them).
    pub struct Link {
        pub armed: bool,
        pub lost: bool,
    }

    impl Link {
        pub fn new() -> Self {
            Link {
                armed: false,
                lost: true,
            }
        }

        pub fn carry(&mut self, _chunk: &mut [u8]) {}
    }
}

/// What one client `poll_event` brought, checked inside the measured call (the event borrows the session).
enum Got {
    Nothing,
    KeyReady,
    Answer {
        req: MsgId,
        ok: bool,
    },
    /// `new_session_created` from the DC: a fresh session starts (expected once).
    SessionReset,
    Other,
}

/// The client side of the run, in one static (see [`run`]).
struct Client {
    conn: &'static mut Conn,
    rng: DemoRng,
    out: [u8; OUT],
    c2s: [u8; ROUND_BYTES],
    s2c: [u8; ROUND_BYTES],
    big: [u8; BIG],
    /// The queries' msg_ids, once sent.
    small_id: Option<MsgId>,
    big_id: Option<MsgId>,
    /// Results received (each must be 1) and whether every one matched.
    small_answers: u32,
    big_answers: u32,
    answers_ok: bool,
    key_ready: bool,
    session_resets: u32,
    unexpected: u32,
}

/// Builds the client connection and the client's state, each in place in a static (a separate frame, so the
/// run loop's stack stays small).
#[inline(never)]
// The `&'static mut` comes from `singleton!`s, not from the keys.
#[allow(clippy::mut_from_ref)]
fn setup(r: &mut Report, f: &mut Figures, trusted: &'static [RsaPublicKey], now: Instant) -> &'static mut Client {
    let hs = ClientConfig::new(trusted, i32::from(DC_ID));
    let m = measure(|| cortex_m::singleton!(: Conn = Conn::client_handshake(config(), hs, now)));
    f.construct
        .add(r, Some("  conn client: Connection::client_handshake"), &m);
    let conn = m.out.unwrap_or_else(|| fail("client connection"));
    let c = cortex_m::singleton!(: Client = Client {
        conn,
        rng: DemoRng::demo(b'c'),
        out: [0; OUT],
        c2s: [0; ROUND_BYTES],
        s2c: [0; ROUND_BYTES],
        big: [0; BIG],
        small_id: None,
        big_id: None,
        small_answers: 0,
        big_answers: 0,
        answers_ok: true,
        key_ready: false,
        session_resets: 0,
        unexpected: 0,
    })
    .unwrap_or_else(|| fail("client state"));
    big_query(&mut c.big);
    if c.conn.min_transmit_len() > OUT {
        fail("poll_transmit buffer smaller than min_transmit_len");
    }
    c
}

/// Runs the connection; returns its figures. `trusted` are the DC keys the client ships; the full build's DC uses
/// `dc_key`, the DC's private key of the handshake demo.
#[inline(never)]
pub fn run(
    r: &mut Report,
    trusted: &'static [RsaPublicKey],
    #[cfg(not(feature = "client-only"))] dc_key: &'static mtproto_sansio::crypto::rsa::RsaPrivateKey,
) -> Figures {
    let mut f = Figures {
        conn_size: core::mem::size_of::<Conn>(),
        ..Figures::default()
    };
    let mut now = Instant::from_millis(1);
    let c = setup(r, &mut f, trusted, now);
    #[cfg(not(feature = "client-only"))]
    let peer = dc::Peer::new(dc_key, now);
    #[cfg(feature = "client-only")]
    let peer = dc::Peer::new(now);
    let mut link = dc::Link::new();

    hprintln!(
        "-- the connection type: Connection<{}, {}, {}> ({} B), obfuscated intermediate, handshake, 2 queries, 1 loss",
        RX,
        TX,
        MSGS,
        f.conn_size
    );
    hprintln!(
        "   of which alternatives: Session {} B, ClientHandshake {} B, ServerHandshakes<{}> {} B",
        core::mem::size_of::<Session<RX, TX, MSGS>>(),
        core::mem::size_of::<ClientHandshake<'static>>(),
        DC_HANDSHAKE_RUNS,
        core::mem::size_of::<ServerHandshakes<'static, DC_HANDSHAKE_RUNS>>()
    );
    let mut round = 0;
    loop {
        if round == MAX_ROUNDS {
            fail("the connection did not finish");
        }
        round += 1;
        let done_before = c.small_answers > 0 && c.big_answers > 0;
        let t = if c.key_ready { &mut f.session } else { &mut f.handshake };
        if c.conn.poll_timeout().is_some_and(|x| x <= now) {
            let m = measure(|| c.conn.handle_timeout(now));
            t.add(r, Some("  conn client: handle_timeout"), &m);
            if m.out.is_err() {
                fail("client connection failed on a timer");
            }
        }
        if c.key_ready && c.small_id.is_none() {
            let m = measure(|| c.conn.send(now, &Q_SMALL, MsgKind::Query));
            t.add(r, Some("  conn client: send (4 B query)"), &m);
            c.small_id = Some(m.out.unwrap_or_else(|_| fail("send")));
            let m = measure(|| c.conn.send(now, &c.big, MsgKind::Query));
            t.add(r, Some("  conn client: send (1 KiB query)"), &m);
            c.big_id = Some(m.out.unwrap_or_else(|_| fail("send")));
        }
        // Client -> link.
        let mut c2s_len = 0;
        loop {
            let m = measure(|| c.conn.poll_transmit(now, &mut c.rng, &mut c.out));
            let sent = matches!(m.out, Ok(Some(_)));
            t.add(r, sent.then_some("  conn client: poll_transmit"), &m);
            let Some(n) = m.out.unwrap_or_else(|_| fail("client output buffer")) else {
                break;
            };
            let chunk = c.out.get_mut(..n).unwrap_or_default();
            link.carry(chunk);
            let dst = c
                .c2s
                .get_mut(c2s_len..c2s_len + n)
                .unwrap_or_else(|| fail("client round output too long"));
            dst.copy_from_slice(chunk);
            c2s_len += n;
        }
        // Link -> DC -> link.
        let s2c_len = peer.round(round, now, c.c2s.get(..c2s_len).unwrap_or_default(), &mut c.s2c);
        // Link -> client: every frame, and every event after each.
        let mut off = 0;
        while off < s2c_len {
            let t = if c.key_ready { &mut f.session } else { &mut f.handshake };
            let m = measure(|| c.conn.handle_input(now, c.s2c.get(off..s2c_len).unwrap_or_default()));
            t.add(r, Some("  conn client: handle_input"), &m);
            let n = m.out.unwrap_or_else(|_| fail("client connection failed"));
            off += n;
            let mut events = 0;
            loop {
                let t = if c.key_ready { &mut f.session } else { &mut f.handshake };
                let m = measure(|| match c.conn.poll_event() {
                    None => Got::Nothing,
                    Some(Event::AuthKeyReady) => Got::KeyReady,
                    Some(Event::RpcResult { req, body }) => {
                        let ok = if Some(req) == c.small_id {
                            body == Q_SMALL.as_slice()
                        } else {
                            Some(req) == c.big_id && body == c.big.as_slice()
                        };
                        Got::Answer { req, ok }
                    }
                    Some(Event::SessionReset { .. }) => Got::SessionReset,
                    Some(_) => Got::Other,
                });
                let named = !matches!(m.out, Got::Nothing);
                t.add(r, named.then_some("  conn client: poll_event"), &m);
                match m.out {
                    Got::Nothing => break,
                    Got::KeyReady => {
                        c.key_ready = true;
                        link.armed = true;
                        hprintln!(
                            "client: AuthKeyReady after {} rounds, auth_key_id {:016x}",
                            round,
                            c.conn.auth_key().map_or(0, |k| k.id())
                        );
                    }
                    Got::Answer { req, ok } => {
                        c.answers_ok &= ok;
                        if Some(req) == c.small_id {
                            c.small_answers += 1;
                        } else if Some(req) == c.big_id {
                            c.big_answers += 1;
                        }
                        hprintln!(
                            "client: result of {:016x} in round {} ({})",
                            req.0,
                            round,
                            if ok { "ok" } else { "WRONG" }
                        );
                    }
                    Got::SessionReset => c.session_resets += 1,
                    Got::Other => c.unexpected += 1,
                }
                events += 1;
            }
            if n == 0 && events == 0 {
                fail("client consumed nothing and reported nothing");
            }
        }
        let quiet = c2s_len == 0 && s2c_len == 0;
        if quiet && done_before {
            break;
        }
        // The virtual clock: a round of traffic takes 1 ms; a quiet round waits for the client's next timer.
        let next = Instant::from_micros(now.as_micros() + ROUND_MICROS);
        now = match c.conn.poll_timeout() {
            Some(t) if quiet => t.max(next),
            _ => next,
        };
    }
    f.rounds = round;

    let stats = c.conn.stats();
    hprintln!(
        "client: {} rounds, virtual time {} ms; packets out {}, in {}, messages resent {}, frames dropped {}",
        round,
        now.as_micros() / 1000,
        stats.packets_out,
        stats.packets_in,
        stats.resent,
        c.conn.frames_dropped()
    );
    r.check(c.key_ready, "client: AuthKeyReady");
    r.check(
        c.small_answers == 1 && c.big_answers == 1 && c.answers_ok,
        "client: each query answered exactly once, with the right result",
    );
    r.check(
        stats.resent > 0,
        "client: the lost packet's messages were resent on the timer",
    );
    r.check(c.conn.frames_dropped() == 0, "client: no received frame dropped");
    r.check(
        c.unexpected == 0 && c.session_resets == 1,
        "client: only expected events (one SessionReset: the DC's new_session_created)",
    );
    r.check(link.lost, "link: a packet was lost");
    peer.verify(r, c.conn.auth_key().map(|k| k.id()));
    f
}
