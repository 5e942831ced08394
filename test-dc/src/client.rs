//! A blocking client connection: a TCP socket (and the carriage around it, if any) that carries the crate's client
//! connection type, [`Connection`], driven by one thread. The session does the transport framing, the auth-key
//! handshake ([`Connection::client_handshake`]) and the encrypted session; this module only moves bytes between it and
//! the socket, and hands its events out owned. The examples and tests build their host loops from it.
//!
//! A [`Conn`] is one socket; a [`ClientConnection`] outlives it: after a lost connection, call
//! [`Connection::reconnect`] and pump the same session over a new `Conn` (unacknowledged queries are resent there).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::crypto::rsa::RsaPublicKey;
use mtproto_sansio::handshake::{ClientConfig, KeyKind, Outcome};
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::session::{
    Connection, ConnectionConfig, Error, Event, FailReason, Limits, MsgId, MsgKind, SendError, SessionConfig,
    TransportConfig,
};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::carriage_conn::{Carriage, CarriageError, ClientCarriage};
use crate::link::{Incoming, Link, Transport};
use mtproto_sansio::carriage::faketls::FakeTlsSecret;

/// Largest frame the client accepts.
pub const CLIENT_FRAME: usize = 65_536;
/// The client connection type: 64 KiB frames, 256 KiB of resend arena, 64 messages in flight.
pub type ClientConnection = Connection<CLIENT_FRAME, 262_144, 64>;
/// Largest frame a [`FileConnection`] accepts: a 1 MiB `upload.getFile` answer with its envelope and padding (test_dc's
/// `dc::MAX_FRAME`).
pub const FILE_FRAME: usize = 1_114_112;
/// Resend arena of a [`FileConnection`]: 16 MiB holds 31 upload parts of 512 KiB waiting for their acknowledgement
/// (a window of 16 parts with room to spare).
pub const FILE_TX: usize = 16 << 20;
/// The connection type for file transfers: 1 MiB parts in both directions and a window of them in flight. The
/// buffers are heap blocks grown on demand (the crate's `alloc` feature, which `std` brings), so its capacities are
/// limits, not costs: an idle file connection holds what an idle [`ClientConnection`] holds. Every [`Conn`] method
/// takes either.
pub type FileConnection = Connection<FILE_FRAME, FILE_TX, 64>;
/// The session configuration of a [`FileConnection`]: the default, with the unacknowledged bytes kept for resending
/// raised from 1 MiB (one part) to the arena, so a window of upload parts can be in flight.
pub const FILE_SESSION: SessionConfig = SessionConfig {
    limits: Limits {
        max_unacked_bytes: FILE_TX,
        ..Limits::DEFAULT
    },
    ..SessionConfig::DEFAULT
};
/// The DC id named in obfuscated inits.
pub const DC_ID: i16 = 2;
/// How long a handshake may take in all (the handshake's own timers give up sooner when the DC is silent).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

struct Epoch {
    start: std::time::Instant,
    unix_micros: u64,
}

fn epoch() -> &'static Epoch {
    static E: OnceLock<Epoch> = OnceLock::new();
    E.get_or_init(|| Epoch {
        start: std::time::Instant::now(),
        unix_micros: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(0))
            .unwrap_or(0),
    })
}

/// The process's monotonic clock as the crate's [`Instant`].
pub fn now() -> Instant {
    Instant::from_micros(u64::try_from(epoch().start.elapsed().as_micros()).unwrap_or(u64::MAX))
}

/// Unix microseconds at [`Instant::ZERO`].
pub fn unix_micros_at_zero() -> u64 {
    epoch().unix_micros
}

/// Unix seconds at `t`.
fn unix_secs(t: Instant) -> u64 {
    unix_micros_at_zero().saturating_add(t.as_micros()) / 1_000_000
}

/// An event the session reported, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owned {
    /// `rpc_result`.
    Result(MsgId, Vec<u8>),
    /// `rpc_error`.
    Error(MsgId, i32, String),
    /// No answer.
    Failed(MsgId, FailReason),
    /// An update.
    Update(Vec<u8>),
    /// `new_session_created`.
    SessionReset,
    /// A transport error code.
    Transport(i32),
}

impl Owned {
    /// The query it ends, if any.
    pub fn req(&self) -> Option<MsgId> {
        match self {
            Owned::Result(r, _) | Owned::Error(r, _, _) | Owned::Failed(r, _) => Some(*r),
            _ => None,
        }
    }
}

/// Why a client connection gave up.
#[derive(Debug)]
pub enum ClientError {
    /// Socket.
    Io(io::Error),
    /// The transport stream broke.
    Transport,
    /// The handshake failed.
    Handshake(mtproto_sansio::handshake::HandshakeError),
    /// The session refused a message.
    Send(SendError),
    /// The DC answered with a transport error code (−404: unknown key...).
    Code(i32),
    /// Nothing happened before the deadline.
    Timeout,
    /// The carriage (HTTP, WebSocket, fake-TLS) failed.
    Carriage(CarriageError),
    /// The session failed for good (closed, or a broken transport stream).
    Connection(Error),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Transport => f.write_str("broken transport stream"),
            ClientError::Handshake(e) => write!(f, "handshake: {e}"),
            ClientError::Send(e) => write!(f, "send: {e}"),
            ClientError::Code(c) => write!(f, "transport error {c}"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Carriage(e) => write!(f, "carriage: {e}"),
            ClientError::Connection(e) => write!(f, "session: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<Error> for ClientError {
    fn from(e: Error) -> Self {
        match e {
            Error::Handshake(h) => ClientError::Handshake(h),
            Error::Transport(_) => ClientError::Transport,
            other => ClientError::Connection(other),
        }
    }
}

/// What a wiretap sees: every MTProto packet (before framing, after deframing).
#[derive(Clone, Copy, Debug)]
pub enum Tap<'a> {
    /// Sent.
    Out(&'a [u8]),
    /// Dropped on purpose instead of being sent.
    Lost(&'a [u8]),
    /// Received.
    In(&'a [u8]),
}

/// A wiretap callback.
pub type TapFn = Box<dyn FnMut(Tap<'_>)>;

/// The rsa keys of a handshake, kept for the process: [`Connection::client_handshake`] holds its configuration for
/// the connection's life (a handshake restarts on reconnect). One copy per distinct key list.
pub fn intern_keys(keys: &[RsaPublicKey]) -> &'static [RsaPublicKey] {
    static KEYS: Mutex<Vec<&'static [RsaPublicKey]>> = Mutex::new(Vec::new());
    let mut held = KEYS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let same = |k: &&'static [RsaPublicKey]| {
        k.len() == keys.len() && k.iter().zip(keys).all(|(a, b)| a.fingerprint() == b.fingerprint())
    };
    if let Some(k) = held.iter().find(|k| same(k)) {
        return k;
    }
    let k: &'static [RsaPublicKey] = Box::leak(keys.to_vec().into_boxed_slice());
    held.push(k);
    k
}

/// Stack of the thread a session is built on: the crate builds a session and its engine by value (about 1.5 MiB
/// of stack at these capacities, more than a test thread's 2 MiB leaves), then it is boxed.
const BUILD_STACK: usize = 16 * 1024 * 1024;

/// Runs `f` on a short-lived thread with a [`BUILD_STACK`], so the caller's stack never holds a session by value.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, ClientError> {
    std::thread::scope(|s| {
        let h = std::thread::Builder::new().stack_size(BUILD_STACK).spawn_scoped(s, f)?;
        h.join()
            .map_err(|_| ClientError::Io(io::Error::other("session construction panicked")))
    })
}

/// A session under `key`, built into its box off the caller's stack. Its session id comes from a generator seeded
/// by the caller's `rng` (the caller's generator need not be `Send`).
fn boxed_client<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
    cfg: ConnectionConfig,
    key: AuthKey,
    rng: &mut R,
) -> Result<Box<Connection<RX, TX, M>>, ClientError> {
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let mut seeded = StdRng::from_seed(seed);
    on_big_stack(move || Box::new(Connection::client(cfg, key, now(), &mut seeded)))
}

/// [`boxed_client`] for a session that starts with the handshake.
fn boxed_handshake<const RX: usize, const TX: usize, const M: usize>(
    cfg: ConnectionConfig,
    hs: ClientConfig<'static>,
) -> Result<Box<Connection<RX, TX, M>>, ClientError> {
    on_big_stack(move || Box::new(Connection::client_handshake(cfg, hs, now())))
}

/// Shadow decoders for the wiretap of a plain transport: the session's frames out and the DC's frames in.
struct Shadow {
    out: Link<FILE_FRAME>,
    inb: Link<FILE_FRAME>,
    packet: Vec<u8>,
}

/// One TCP connection of a client, carrying a [`ClientConnection`].
pub struct Conn {
    sock: TcpStream,
    transport: Transport,
    secret: Option<ProxySecret>,
    carriage: Option<ClientCarriage>,
    /// Carriage output and automatic replies, before they are written.
    cwire: Vec<u8>,
    /// Bytes read, not yet taken by the session.
    input: Vec<u8>,
    off: usize,
    /// The session's output buffer.
    out: Vec<u8>,
    /// Outputs of the session on this connection so far (the first is a plain transport's marker).
    outputs: u64,
    shadow: Option<Shadow>,
    /// Sees every packet (plain transports only: an obfuscated stream cannot be read beside the session).
    pub tap: Option<TapFn>,
    /// Drop the next packet instead of sending it (loss injection; plain transports only, since dropping bytes of
    /// an obfuscated stream would break it).
    pub lose_next: bool,
}

impl Conn {
    /// Connects, running the carriage's opening if there is one. The session's first output (the marker or the
    /// obfuscated init) goes out with its first pump.
    pub fn connect<R: CryptoRng + ?Sized>(
        addr: SocketAddr,
        transport: Transport,
        secret: Option<ProxySecret>,
        rng: &mut R,
    ) -> Result<Conn, ClientError> {
        Self::connect_with(addr, transport, secret, None, rng)
    }

    /// Connects, runs the carriage's opening if there is one (WebSocket upgrade; fake-TLS hellos, for which `ee`
    /// is required and keys the obfuscated stream inside).
    pub fn connect_with<R: CryptoRng + ?Sized>(
        addr: SocketAddr,
        transport: Transport,
        secret: Option<ProxySecret>,
        ee: Option<&FakeTlsSecret>,
        rng: &mut R,
    ) -> Result<Conn, ClientError> {
        let mut sock = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        sock.set_nodelay(true)?;
        let host = addr.to_string();
        let opened =
            ClientCarriage::open(transport.carriage, &mut sock, &host, ee, rng).map_err(ClientError::Carriage)?;
        let secret = match (transport.carriage, ee) {
            (Carriage::FakeTls, Some(ee)) => Some(ee.proxy_secret()),
            _ => secret,
        };
        let (carriage, rest) = opened.map_or((None, Vec::new()), |(c, rest)| (Some(c), rest));
        let shadow = if transport.obfuscated {
            None
        } else {
            let (inb, _) = Link::client(transport, DC_ID, None, rng).map_err(|_| ClientError::Transport)?;
            Some(Shadow {
                out: Link::server_plain(transport.framing),
                inb,
                packet: Vec::new(),
            })
        };
        let mut c = Conn {
            sock,
            transport,
            secret,
            carriage,
            cwire: Vec::new(),
            input: Vec::new(),
            off: 0,
            out: Vec::new(),
            outputs: 0,
            shadow,
            tap: None,
            lose_next: false,
        };
        c.take_in(&rest, rng)?;
        Ok(c)
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The session configuration for this connection's transport, its clock at our Unix time plus
    /// `server_time_offset` seconds, starting with `salt`.
    pub fn config(&self, engine: SessionConfig, salt: u64, server_time_offset: i64) -> ConnectionConfig {
        ConnectionConfig {
            engine,
            transport: TransportConfig {
                framing: self.transport.framing,
                obfuscated: self.transport.obfuscated,
                dc_id: Some(DC_ID),
            },
            unix_time_hint: Some(UnixTime(unix_secs(now()).saturating_add_signed(server_time_offset))),
            salt,
        }
    }

    /// A session under a key the client has (stored, or made on another connection), with the salt and server
    /// time offset it knows (0 and 0 if none: the DC corrects both). Its session id is fresh.
    pub fn session<R: CryptoRng + ?Sized>(
        &self,
        engine: SessionConfig,
        key: AuthKey,
        salt: u64,
        server_time_offset: i64,
        rng: &mut R,
    ) -> Result<Box<ClientConnection>, ClientError> {
        self.session_as(engine, key, salt, server_time_offset, rng)
    }

    /// [`Conn::session`] for any connection type ([`FileConnection`] for file transfers).
    pub fn session_as<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &self,
        engine: SessionConfig,
        key: AuthKey,
        salt: u64,
        server_time_offset: i64,
        rng: &mut R,
    ) -> Result<Box<Connection<RX, TX, M>>, ClientError> {
        let mut s = boxed_client(self.config(engine, salt, server_time_offset), key, rng)?;
        s.set_proxy_secret(self.secret.clone())
            .map_err(|_| ClientError::Transport)?;
        Ok(s)
    }

    /// Creates an auth key on this connection ([`Connection::client_handshake`]) and returns the session that
    /// continues on it, with what the handshake produced (the key, its first salt, the server's clock offset).
    pub fn handshake<R: CryptoRng + ?Sized>(
        &mut self,
        engine: SessionConfig,
        hs: ClientConfig<'_>,
        rng: &mut R,
    ) -> Result<(Box<ClientConnection>, Outcome), ClientError> {
        self.handshake_as(engine, hs, rng)
    }

    /// [`Conn::handshake`] for any connection type ([`FileConnection`] for file transfers).
    pub fn handshake_as<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        engine: SessionConfig,
        hs: ClientConfig<'_>,
        rng: &mut R,
    ) -> Result<(Box<Connection<RX, TX, M>>, Outcome), ClientError> {
        let kind = hs.kind;
        let hs = ClientConfig {
            rsa_keys: intern_keys(hs.rsa_keys),
            ..hs
        };
        let mut s = boxed_handshake(self.config(engine, 0, 0), hs)?;
        s.set_proxy_secret(self.secret.clone())
            .map_err(|_| ClientError::Transport)?;
        let deadline = now().saturating_add(HANDSHAKE_TIMEOUT);
        let mut ready = false;
        let mut events = Vec::new();
        while !ready {
            if now() >= deadline {
                return Err(ClientError::Timeout);
            }
            self.pump_inner(&mut s, rng, deadline, &mut events, &mut ready)?;
        }
        let t = now();
        let engine = s.session().ok_or(ClientError::Timeout)?;
        let server_unix = engine.clock().unix_time(t).0;
        let outcome = Outcome {
            auth_key: engine.auth_key().clone(),
            server_salt: engine.current_salt(),
            server_time_offset: i64::try_from(server_unix).unwrap_or(0) - i64::try_from(unix_secs(t)).unwrap_or(0),
            expires_in: match kind {
                KeyKind::Temporary { expires_in } => Some(expires_in),
                _ => None,
            },
        };
        Ok((s, outcome))
    }

    /// Writes bytes a host machine produced (`client::Client::poll_transmit`) through the carriage.
    pub fn write_raw<R: CryptoRng + ?Sized>(&mut self, wire: &[u8], rng: &mut R) -> Result<(), ClientError> {
        self.write_wire(wire, rng)
    }

    /// Reads once (through the carriage), waiting at most until `deadline`; false on timeout. What was read is in
    /// [`Conn::input`] until [`Conn::consume`]d.
    pub fn read_raw<R: CryptoRng + ?Sized>(&mut self, deadline: Instant, rng: &mut R) -> Result<bool, ClientError> {
        self.read_some(deadline, rng)
    }

    /// Bytes read and not consumed yet.
    pub fn input(&self) -> &[u8] {
        self.input.get(self.off..).unwrap_or_default()
    }

    /// `n` bytes of [`Conn::input`] were taken.
    pub fn consume(&mut self, n: usize) {
        self.off = self.off.saturating_add(n).min(self.input.len());
    }

    /// Writes `wire` through the carriage.
    fn write_wire<R: CryptoRng + ?Sized>(&mut self, wire: &[u8], rng: &mut R) -> Result<(), ClientError> {
        match self.carriage.as_mut() {
            Some(c) => {
                c.wrap(wire, rng, &mut self.cwire).map_err(ClientError::Carriage)?;
                self.sock.write_all(&self.cwire)?;
                self.cwire.clear();
            }
            None => self.sock.write_all(wire)?,
        }
        Ok(())
    }

    /// Appends bytes from the socket to the session's input, through the carriage.
    fn take_in<R: CryptoRng + ?Sized>(&mut self, bytes: &[u8], rng: &mut R) -> Result<(), ClientError> {
        self.input.drain(..self.off);
        self.off = 0;
        let start = self.input.len();
        match self.carriage.as_mut() {
            Some(c) => {
                c.unwrap(bytes, rng, &mut self.input, &mut self.cwire)
                    .map_err(ClientError::Carriage)?;
                if !self.cwire.is_empty() {
                    self.sock.write_all(&self.cwire)?;
                    self.cwire.clear();
                }
            }
            None => self.input.extend_from_slice(bytes),
        }
        if let (Some(sh), Some(tap)) = (self.shadow.as_mut(), self.tap.as_mut()) {
            let mut new = self.input.get(start..).unwrap_or_default();
            while !new.is_empty() {
                let Ok((n, inc)) = sh.inb.decode(new, &mut sh.packet) else {
                    break;
                };
                if let Some(Incoming::Packet { .. }) = inc {
                    tap(Tap::In(&sh.packet));
                }
                new = new.get(n..).unwrap_or_default();
                if n == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reads once, waiting at most until `deadline`; false on timeout.
    fn read_some<R: CryptoRng + ?Sized>(&mut self, deadline: Instant, rng: &mut R) -> Result<bool, ClientError> {
        if let Some(c) = self.carriage.as_mut() {
            c.before_wait(&mut self.cwire).map_err(ClientError::Carriage)?;
            if !self.cwire.is_empty() {
                self.sock.write_all(&self.cwire)?;
                self.cwire.clear();
            }
        }
        let wait = deadline
            .saturating_duration_since(now())
            .clamp(Duration::from_millis(1), Duration::from_secs(1));
        self.sock.set_read_timeout(Some(wait))?;
        let mut buf = [0u8; 65_536];
        match self.sock.read(&mut buf) {
            Ok(0) => Err(ClientError::Io(io::Error::from(ErrorKind::UnexpectedEof))),
            Ok(n) => {
                self.take_in(buf.get(..n).unwrap_or_default(), rng)?;
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes every output the session has (the marker or init, then one frame per output), through the tap and
    /// the loss injection.
    pub fn flush<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
    ) -> Result<(), ClientError> {
        if self.out.len() < session.min_transmit_len() {
            self.out.resize(session.min_transmit_len(), 0);
        }
        let mut out = std::mem::take(&mut self.out);
        let r = self.flush_with(session, rng, &mut out);
        self.out = out;
        r
    }

    fn flush_with<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<(), ClientError> {
        while let Some(n) = session
            .poll_transmit(now(), rng, out)
            .map_err(|_| ClientError::Transport)?
        {
            let wire = out.get(..n).unwrap_or_default();
            let first = self.outputs == 0;
            self.outputs += 1;
            let mut lost = false;
            if let Some(sh) = self.shadow.as_mut() {
                let mut rest = wire;
                while !rest.is_empty() {
                    let Ok((k, inc)) = sh.out.decode(rest, &mut sh.packet) else {
                        break;
                    };
                    if let Some(Incoming::Packet { .. }) = inc {
                        lost = std::mem::take(&mut self.lose_next) && !first;
                        if let Some(t) = self.tap.as_mut() {
                            t(if lost {
                                Tap::Lost(&sh.packet)
                            } else {
                                Tap::Out(&sh.packet)
                            });
                        }
                    }
                    rest = rest.get(k..).unwrap_or_default();
                    if k == 0 {
                        break;
                    }
                }
            }
            if !lost {
                self.write_wire(wire, rng)?;
            }
        }
        Ok(())
    }

    /// Sends what the session has, reads once (until `deadline` at the latest), feeds the session and returns the
    /// events that came out.
    pub fn pump<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
        deadline: Instant,
    ) -> Result<Vec<Owned>, ClientError> {
        let mut events = Vec::new();
        let mut ready = false;
        self.pump_inner(session, rng, deadline, &mut events, &mut ready)?;
        Ok(events)
    }

    fn pump_inner<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
        deadline: Instant,
        events: &mut Vec<Owned>,
        ready: &mut bool,
    ) -> Result<(), ClientError> {
        self.flush(session, rng)?;
        let due = session.poll_timeout().map_or(deadline, |t| t.min(deadline));
        if !self.read_some(due, rng)? {
            session.handle_timeout(now())?;
        }
        loop {
            let rest = self.input.get(self.off..).unwrap_or_default();
            let n = if rest.is_empty() {
                0
            } else {
                session.handle_input(now(), rest)?
            };
            self.off += n;
            let drained = drain_into(session, events, ready);
            if n == 0 && !drained {
                break;
            }
        }
        session.handle_timeout(now())?;
        drain_into(session, events, ready);
        // A transport error code (−404: the DC does not know the key...) ends this connection for the caller.
        if let Some(code) = events.iter().find_map(|e| match e {
            Owned::Transport(c) => Some(*c),
            _ => None,
        }) {
            return Err(ClientError::Code(code));
        }
        // A new key: hand the session back first (the host may store the key, or a wiretap learn it) and send
        // its first encrypted packets with the next pump.
        if *ready {
            return Ok(());
        }
        self.flush(session, rng)
    }

    /// Sends one query and pumps until it ends (other events are passed to `other`).
    pub fn call<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
        body: &[u8],
        timeout: Duration,
        other: &mut dyn FnMut(Owned),
    ) -> Result<Owned, ClientError> {
        let req = session.send(now(), body, MsgKind::Query).map_err(ClientError::Send)?;
        self.wait_for(session, rng, &[req], timeout, other)
            .and_then(|mut v| v.pop().ok_or(ClientError::Timeout))
    }

    /// Pumps until every query in `reqs` has ended; returns their events in the order they ended.
    pub fn wait_for<R: CryptoRng + ?Sized, const RX: usize, const TX: usize, const M: usize>(
        &mut self,
        session: &mut Connection<RX, TX, M>,
        rng: &mut R,
        reqs: &[MsgId],
        timeout: Duration,
        other: &mut dyn FnMut(Owned),
    ) -> Result<Vec<Owned>, ClientError> {
        let deadline = now().saturating_add(timeout);
        let mut done = Vec::new();
        while done.len() < reqs.len() {
            if now() >= deadline {
                return Err(ClientError::Timeout);
            }
            for ev in self.pump(session, rng, deadline)? {
                match ev.req() {
                    Some(r) if reqs.contains(&r) => done.push(ev),
                    _ => other(ev),
                }
            }
        }
        Ok(done)
    }
}

/// Moves the session's events out; true if there were any. `ready` is set by `AuthKeyReady`.
fn drain_into<const RX: usize, const TX: usize, const M: usize>(
    session: &mut Connection<RX, TX, M>,
    out: &mut Vec<Owned>,
    ready: &mut bool,
) -> bool {
    let mut any = false;
    while let Some(ev) = session.poll_event() {
        any = true;
        out.push(match ev {
            Event::RpcResult { req, body } => Owned::Result(req, body.to_vec()),
            Event::RpcError { req, code, message, .. } => {
                Owned::Error(req, code, String::from_utf8_lossy(message).into_owned())
            }
            Event::Failed { req, reason } => Owned::Failed(req, reason),
            Event::Update(b) => Owned::Update(b.to_vec()),
            Event::SessionReset { .. } => Owned::SessionReset,
            Event::TransportError(c) => Owned::Transport(c),
            Event::AuthKeyReady => {
                *ready = true;
                continue;
            }
            // Events added later, and the DC's, are not this client's business.
            _ => continue,
        });
    }
    any
}

/// Moves the session's events out.
pub fn drain<const RX: usize, const TX: usize, const M: usize>(
    session: &mut Connection<RX, TX, M>,
    out: &mut Vec<Owned>,
) {
    let mut ready = false;
    drain_into(session, out, &mut ready);
}
/// Reads an auth key file (512 hex digits); `None` if there is none yet.
pub fn load_key(path: &std::path::Path) -> io::Result<Option<AuthKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let raw = hex::decode(text.trim()).map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
    let bytes: [u8; 256] = raw
        .try_into()
        .map_err(|_| io::Error::new(ErrorKind::InvalidData, "auth key file is not 256 bytes"))?;
    Ok(Some(AuthKey::from_bytes(bytes)))
}

/// Writes an auth key file, readable by the owner only.
pub fn save_key(path: &std::path::Path, key: &AuthKey) -> io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    writeln!(f, "{}", hex::encode(key.as_bytes()))
}

/// The DC's RSA public key from a PEM file: a public key (PKCS#1 or SPKI) or, for a local test DC, its private key.
pub fn parse_rsa_key(pem: &[u8]) -> Result<mtproto_sansio::crypto::rsa::RsaPublicKey, String> {
    use mtproto_sansio::crypto::pem::{parse_private_pem, parse_public_pem};
    parse_public_pem(pem)
        .or_else(|_| parse_private_pem(pem).map(|k| *k.public_key()))
        .map_err(|e| format!("RSA key: {e}"))
}
