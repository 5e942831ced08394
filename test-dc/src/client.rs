//! A blocking client connection: TCP + transport codec + the handshake machine + the session engine, driven by
//! one thread. The examples and tests build their host loops from it.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use mtproto_sansio::crypto::auth_key::AuthKey;
use mtproto_sansio::handshake::{ClientConfig, ClientHandshake, HandshakeError, MAX_CLIENT_MESSAGE, Outcome, Status};
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::session::{Clock, Engine, EngineConfig, Event, FailReason, MsgId, MsgKind, SendError};
use mtproto_sansio::time::{Instant, UnixTime};
use mtproto_sansio::transport::obfuscated::ProxySecret;
use mtproto_sansio::transport::{Framing, strip_padding};

use crate::carriage_conn::{Carriage, CarriageError, ClientCarriage};
use crate::link::{Incoming, Link, Transport};
use mtproto_sansio::carriage::faketls::FakeTlsSecret;

/// Largest frame the client accepts.
pub const CLIENT_FRAME: usize = 65_536;
/// The client session: 64 KiB packets, 256 KiB of resend arena, 64 messages in flight.
pub type ClientEngine = Engine<CLIENT_FRAME, 262_144, 64>;

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

/// An event the engine reported, owned.
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
    Handshake(HandshakeError),
    /// The engine refused a message.
    Send(SendError),
    /// The DC answered with a transport error code (−404: unknown key...).
    Code(i32),
    /// Nothing happened before the deadline.
    Timeout,
    /// The carriage (HTTP, WebSocket, fake-TLS) failed.
    Carriage(CarriageError),
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
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
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

/// One TCP connection of a client.
pub struct Conn {
    sock: TcpStream,
    link: Link<CLIENT_FRAME>,
    transport: Transport,
    carriage: Option<ClientCarriage>,
    /// Carriage output and automatic replies, before they are written.
    cwire: Vec<u8>,
    input: Vec<u8>,
    off: usize,
    packet: Vec<u8>,
    wire: Vec<u8>,
    scratch: Vec<u8>,
    /// Sees every packet.
    pub tap: Option<TapFn>,
    /// Drop the next encrypted packet instead of sending it (loss injection).
    pub lose_next: bool,
}

impl Conn {
    /// Connects and sends the transport's marker or obfuscated init.
    pub fn connect<R: CryptoRng + ?Sized>(
        addr: SocketAddr,
        transport: Transport,
        secret: Option<ProxySecret>,
        rng: &mut R,
    ) -> Result<Conn, ClientError> {
        Self::connect_with(addr, transport, secret, None, rng)
    }

    /// Connects, runs the carriage's opening if there is one (WebSocket upgrade; fake-TLS hellos, for which `ee`
    /// is required and keys the obfuscated stream inside) and sends the marker or obfuscated init.
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
        let (link, first) = Link::client(transport, 2, secret, rng).map_err(|_| ClientError::Transport)?;
        let (carriage, rest) = opened.map_or((None, Vec::new()), |(c, rest)| (Some(c), rest));
        let mut c = Conn {
            sock,
            link,
            transport,
            carriage,
            cwire: Vec::new(),
            input: Vec::new(),
            off: 0,
            packet: Vec::new(),
            wire: Vec::new(),
            scratch: Vec::new(),
            tap: None,
            lose_next: false,
        };
        c.wire = first;
        c.write_wire(rng)?;
        c.take_in(&rest, rng)?;
        Ok(c)
    }

    /// Writes `self.wire` through the carriage.
    fn write_wire<R: CryptoRng + ?Sized>(&mut self, rng: &mut R) -> Result<(), ClientError> {
        match self.carriage.as_mut() {
            Some(c) => {
                c.wrap(&self.wire, rng, &mut self.cwire)
                    .map_err(ClientError::Carriage)?;
                self.sock.write_all(&self.cwire)?;
                self.cwire.clear();
            }
            None => self.sock.write_all(&self.wire)?,
        }
        self.wire.clear();
        Ok(())
    }

    /// Appends bytes from the socket to the link's input, through the carriage.
    fn take_in<R: CryptoRng + ?Sized>(&mut self, bytes: &[u8], rng: &mut R) -> Result<(), ClientError> {
        self.input.drain(..self.off);
        self.off = 0;
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
        Ok(())
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
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

    /// Decodes the next buffered frame, if a whole one is there.
    fn next_frame(&mut self) -> Result<Option<Incoming>, ClientError> {
        loop {
            let rest = self.input.get(self.off..).unwrap_or_default();
            if rest.is_empty() {
                return Ok(None);
            }
            let (n, inc) = self
                .link
                .decode(rest, &mut self.packet)
                .map_err(|_| ClientError::Transport)?;
            self.off += n;
            if inc.is_some() {
                return Ok(inc);
            }
            if n == 0 {
                return Ok(None);
            }
        }
    }

    fn send_packet<R: CryptoRng + ?Sized>(
        &mut self,
        len: usize,
        quick_ack: bool,
        rng: &mut R,
    ) -> Result<(), ClientError> {
        let payload = self.scratch.get(..len).unwrap_or_default();
        if self.lose_next {
            self.lose_next = false;
            if let Some(t) = self.tap.as_mut() {
                t(Tap::Lost(payload));
            }
            return Ok(());
        }
        if let Some(t) = self.tap.as_mut() {
            t(Tap::Out(payload));
        }
        // Quick acks need a framing that carries them; HTTP bodies carry none.
        let qa = quick_ack && self.transport.framing != Framing::Full && self.transport.carriage != Carriage::Http;
        self.link
            .encode(payload, qa, rng, &mut self.wire)
            .map_err(|_| ClientError::Transport)?;
        self.write_wire(rng)
    }

    /// Runs the auth-key handshake on this connection.
    pub fn handshake<R: CryptoRng + ?Sized>(
        &mut self,
        mut cfg: ClientConfig<'_>,
        rng: &mut R,
    ) -> Result<Outcome, ClientError> {
        cfg.unix_micros_at_zero = unix_micros_at_zero();
        cfg.transport_padding = self.transport.framing == Framing::PaddedIntermediate;
        let mut hs = ClientHandshake::new(cfg, now());
        let mut out = [0u8; MAX_CLIENT_MESSAGE];
        loop {
            while let Some(n) = hs
                .poll_transmit(now(), rng, &mut out)
                .map_err(|_| ClientError::Transport)?
            {
                self.scratch.clear();
                self.scratch.extend_from_slice(out.get(..n).unwrap_or_default());
                let lose = std::mem::take(&mut self.lose_next);
                self.send_packet(n, false, rng)?;
                self.lose_next = lose;
            }
            match hs.status() {
                Status::Done => return hs.take_outcome().ok_or(ClientError::Timeout),
                Status::Failed(e) => return Err(ClientError::Handshake(e)),
                Status::Running => {}
            }
            let mut progressed = false;
            while let Some(inc) = self.next_frame()? {
                progressed = true;
                match inc {
                    Incoming::Packet { .. } => {
                        if let Some(t) = self.tap.as_mut() {
                            t(Tap::In(&self.packet));
                        }
                        // Non-fatal errors only dropped the packet; fatal ones show in `status`.
                        let _ = hs.handle_packet(now(), &self.packet);
                    }
                    Incoming::Error(code) => hs.handle_transport_error(now(), code),
                    Incoming::QuickAck(_) => {}
                }
            }
            if !progressed {
                let deadline = hs
                    .poll_timeout()
                    .unwrap_or(now().saturating_add(Duration::from_secs(1)));
                if !self.read_some(deadline, rng)? {
                    hs.handle_timeout(now());
                }
            }
        }
    }

    /// Sends what the engine has, reads once (until `deadline` at the latest), feeds the engine and returns the
    /// events that came out.
    pub fn pump<R: CryptoRng + ?Sized>(
        &mut self,
        engine: &mut ClientEngine,
        rng: &mut R,
        deadline: Instant,
    ) -> Result<Vec<Owned>, ClientError> {
        let mut events = Vec::new();
        self.flush(engine, rng)?;
        let due = engine.poll_timeout().map_or(deadline, |t| t.min(deadline));
        if !self.read_some(due, rng)? {
            engine.handle_timeout(now());
        }
        while let Some(inc) = self.next_frame()? {
            match inc {
                Incoming::Packet { .. } => {
                    if let Some(t) = self.tap.as_mut() {
                        t(Tap::In(&self.packet));
                    }
                    if self.packet.len() == 4 {
                        let code = i32::from_le_bytes(self.packet.first_chunk::<4>().copied().unwrap_or_default());
                        return Err(ClientError::Code(code));
                    }
                    // Padded intermediate: 0-15 bytes of transport padding follow the packet (item 3).
                    let data =
                        strip_padding(self.transport.framing, &self.packet).map_err(|_| ClientError::Transport)?;
                    let _ = engine.handle_packet(now(), data);
                }
                Incoming::QuickAck(t) => engine.handle_quick_ack(t),
                Incoming::Error(code) => return Err(ClientError::Code(code)),
            }
            drain(engine, &mut events);
        }
        engine.handle_timeout(now());
        drain(engine, &mut events);
        self.flush(engine, rng)?;
        Ok(events)
    }

    /// Writes every packet the engine has.
    pub fn flush<R: CryptoRng + ?Sized>(&mut self, engine: &mut ClientEngine, rng: &mut R) -> Result<(), ClientError> {
        if self.scratch.len() < engine.min_out_len() {
            self.scratch.resize(engine.min_out_len(), 0);
        }
        while let Some(pkt) = engine
            .poll_packet(now(), rng, &mut self.scratch)
            .map_err(|_| ClientError::Transport)?
        {
            self.send_packet(pkt.len, pkt.quick_ack, rng)?;
        }
        Ok(())
    }

    /// Sends one query and pumps until it ends (other events are passed to `other`).
    pub fn call<R: CryptoRng + ?Sized>(
        &mut self,
        engine: &mut ClientEngine,
        rng: &mut R,
        body: &[u8],
        timeout: Duration,
        other: &mut dyn FnMut(Owned),
    ) -> Result<Owned, ClientError> {
        let req = engine.send(now(), body, MsgKind::Query).map_err(ClientError::Send)?;
        self.wait_for(engine, rng, &[req], timeout, other)
            .and_then(|mut v| v.pop().ok_or(ClientError::Timeout))
    }

    /// Pumps until every query in `reqs` has ended; returns their events in the order they ended.
    pub fn wait_for<R: CryptoRng + ?Sized>(
        &mut self,
        engine: &mut ClientEngine,
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
            for ev in self.pump(engine, rng, deadline)? {
                match ev.req() {
                    Some(r) if reqs.contains(&r) => done.push(ev),
                    _ => other(ev),
                }
            }
        }
        Ok(done)
    }
}

/// Moves the engine's events out.
pub fn drain(engine: &mut ClientEngine, out: &mut Vec<Owned>) {
    while let Some(ev) = engine.poll_event() {
        out.push(match ev {
            Event::RpcResult { req, body } => Owned::Result(req, body.to_vec()),
            Event::RpcError { req, code, message, .. } => {
                Owned::Error(req, code, String::from_utf8_lossy(message).into_owned())
            }
            Event::Failed { req, reason } => Owned::Failed(req, reason),
            Event::Update(b) => Owned::Update(b.to_vec()),
            Event::SessionReset { .. } => Owned::SessionReset,
            Event::TransportError(c) => Owned::Transport(c),
            Event::Request { .. }
            | Event::SessionCreated { .. }
            | Event::DisconnectRequested
            | Event::AuthKeyReady
            | Event::AuthKeyRequired { .. } => {
                continue;
            }
            // Events added later are not this client's business.
            _ => continue,
        });
    }
}

/// A client session on a key, its clock synced to the server's time as the handshake measured it.
pub fn session<R: CryptoRng + ?Sized>(
    cfg: EngineConfig,
    key: AuthKey,
    salt: u64,
    server_time_offset: i64,
    rng: &mut R,
) -> Box<ClientEngine> {
    let t = now();
    let unix = unix_micros_at_zero().saturating_add(t.as_micros()) / 1_000_000;
    let server_now = UnixTime(unix.saturating_add_signed(server_time_offset));
    let mut clock = Clock::from_unix_hint(t, server_now);
    clock.sync_to_server_time(t, server_now);
    Box::new(ClientEngine::client(cfg, key, salt, clock, t, rng))
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
