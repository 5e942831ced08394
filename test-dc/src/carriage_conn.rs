//! The carriages on a real socket, both ends: MTProto over HTTP (`POST /api`), WebSocket (`GET /apiws`, subprotocol
//! `binary`, binary messages carrying the obfuscated transport, as Telegram Web sends it) and fake-TLS (`ee`
//! secrets: ClientHello/ServerHello, then TLS records around the obfuscated transport).
//!
//! DC end: the test DC detects the carriage from a connection's first bytes and calls [`accept`], which runs the
//! carriage's opening (WebSocket upgrade, TLS hellos with the digest, timestamp and replay checks) and then returns
//! the DC end of a loopback connection. Two pump threads translate between the carriage and that connection: the
//! DC serves it like any TCP client, so the session code is the same for every carriage. What comes out of a
//! carriage must be a plain transport the DC would accept on its own port: an obfuscated init checked before a
//! byte is passed on (WebSocket, fake-TLS), or for HTTP an intermediate-framed stream the pump builds itself (each
//! request body one frame). So a carriage cannot be nested in another one.
//!
//! HTTP is request/response: the DC can only answer on an open exchange. The pump keeps the requests it has not
//! answered (at most [`HTTP_MAX_HELD`], each for at most [`HTTP_HOLD`]) and answers them in order with the DC's
//! packets, one packet per response; a request that expires, or that a newer one pushes out, gets an empty 200
//! response, the way `http_wait`'s `max_wait` ends a long poll. A request with `Connection: close` (or HTTP/1.0
//! without `keep-alive`) is the connection's last: nothing after it is read as a request, its answer says
//! `Connection: close`, and the connection closes once that answer is out (a one-shot client reads to EOF). An empty request body is a pure poll: it opens an
//! exchange without a packet (the session engine cannot send `http_wait`, which is not content-related; see
//! README "Known gaps"). The client end keeps one exchange open whenever it waits for the DC.
//!
//! Client end: [`ClientCarriage`] wraps the byte stream of a [`crate::link::Link`] for the socket and unwraps what
//! comes back, so `client::Conn` runs the same handshake and session code over each carriage.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mtproto_sansio::carriage::WriteError;
use mtproto_sansio::carriage::faketls::{
    self, ClientHelloReader, DEFAULT_MAX_RECORD, FakeTlsError, FakeTlsSecret, MAX_RECORD_PAYLOAD, MAX_SERVER_HELLO_LEN,
    RecordDecoder, RecordEncoder, ReplayCache, ServerHelloReader,
};
use mtproto_sansio::carriage::http::{API_PATH, HttpDecoder, HttpError, HttpLimits, encode_request, encode_response};
use mtproto_sansio::carriage::ws::{
    ClientHandshake, Opcode, ServerHandshake, WS_PATH, WsCodec, WsError, WsEvent, WsHandshakeError,
};
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::transport::Role;
use mtproto_sansio::transport::detect::{Detected, detect};
use mtproto_sansio::transport::obfuscated::{INIT_LEN, ProxySecret};

/// Largest HTTP request body the DC end accepts: the test DC's largest frame.
pub const SERVER_HTTP_BODY: usize = 1_114_112;
/// Largest WebSocket message the DC end reassembles (Telegram Web sends one packet per message).
pub const SERVER_WS_MESSAGE: usize = 1_114_112;
/// Largest HTTP response body or WebSocket message the client end accepts (the client's largest frame, plus
/// framing).
pub const CLIENT_MESSAGE: usize = 65_536 + 64;
/// Largest HTTP or WebSocket head either end reads.
pub const MAX_HEAD: usize = 4096;
/// Largest fake-TLS ClientHello record the DC end reads.
pub const MAX_HELLO: usize = 2048;
/// ClientHello randoms remembered against replay, all connections together.
pub const REPLAY_ENTRIES: usize = 4096;
/// HTTP requests the DC end holds open per connection; one more pushes the oldest out with an empty response.
pub const HTTP_MAX_HELD: usize = 16;
/// How long the DC end holds an HTTP request open without a packet for it (Telegram's default `max_wait`).
pub const HTTP_HOLD: Duration = Duration::from_secs(25);
/// DC packets an HTTP connection may have queued with no request to answer; more closes the connection.
pub const HTTP_MAX_QUEUED: usize = 256;
/// Bytes of the stream a client end puts into one WebSocket message.
pub const WS_CHUNK: usize = 16_384;
/// How long an opening (upgrade, hellos) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Stack of a pump thread (the decoders are boxed; this covers their construction).
const PUMP_STACK: usize = 8 * 1024 * 1024;
/// The intermediate framing's marker, which the HTTP pump writes to the DC before the first frame.
const INTERMEDIATE_MARKER: [u8; 4] = [0xee; 4];

type ServerHttp = HttpDecoder<MAX_HEAD, SERVER_HTTP_BODY>;
type ClientHttp = HttpDecoder<MAX_HEAD, CLIENT_MESSAGE>;
type ServerWs = WsCodec<SERVER_WS_MESSAGE>;
type ClientWs = WsCodec<CLIENT_MESSAGE>;

/// Which carriage a connection uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Carriage {
    /// The transport straight on TCP.
    Tcp,
    /// `POST /api`, one packet per body.
    Http,
    /// WebSocket binary messages carrying the obfuscated stream.
    Ws,
    /// Fake-TLS records carrying the obfuscated stream (`ee` secret).
    FakeTls,
}

/// Why a carriage failed.
#[derive(Debug)]
pub enum CarriageError {
    /// Socket.
    Io(io::Error),
    /// HTTP framing.
    Http(HttpError),
    /// The WebSocket upgrade.
    WsHandshake(WsHandshakeError),
    /// WebSocket framing.
    Ws(WsError),
    /// The fake-TLS handshake or records.
    Tls(FakeTlsError),
    /// A frame could not be written.
    Encode(WriteError),
    /// Anything else the carriage refuses, named.
    Refused(&'static str),
}

impl std::fmt::Display for CarriageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CarriageError::Io(e) => write!(f, "i/o: {e}"),
            CarriageError::Http(e) => write!(f, "HTTP: {e}"),
            CarriageError::WsHandshake(e) => write!(f, "WebSocket upgrade: {e}"),
            CarriageError::Ws(e) => write!(f, "WebSocket: {e}"),
            CarriageError::Tls(e) => write!(f, "fake-TLS: {e}"),
            CarriageError::Encode(e) => write!(f, "encode: {e}"),
            CarriageError::Refused(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for CarriageError {}

impl From<io::Error> for CarriageError {
    fn from(e: io::Error) -> Self {
        CarriageError::Io(e)
    }
}

impl CarriageError {
    /// A short reason for a DC log line.
    pub fn reason(&self) -> &'static str {
        match self {
            CarriageError::Io(_) => "carriage i/o",
            CarriageError::Http(_) => "bad HTTP request",
            CarriageError::WsHandshake(_) => "bad WebSocket upgrade",
            CarriageError::Ws(_) => "bad WebSocket frame",
            CarriageError::Tls(_) => "bad fake-TLS hello",
            CarriageError::Encode(_) => "carriage encode",
            CarriageError::Refused(why) => why,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------------ DC end

/// What the DC end of the carriages shares between connections.
pub struct Carriages {
    faketls: Option<FakeTlsSecret>,
    tls_cfg: faketls::ServerConfig,
    replay: Mutex<Box<ReplayCache<REPLAY_ENTRIES>>>,
}

impl Carriages {
    /// Carriages of a DC; fake-TLS only with an `ee` secret.
    pub fn new(faketls: Option<FakeTlsSecret>) -> Self {
        Carriages {
            faketls,
            tls_cfg: faketls::ServerConfig {
                max_hello: MAX_HELLO,
                ..faketls::ServerConfig::default()
            },
            replay: Mutex::new(Box::new(ReplayCache::new())),
        }
    }
}

/// Closes both sockets of a pump once either direction ends, so the other direction and the DC see it.
#[derive(Clone)]
struct Closer {
    outer: Arc<TcpStream>,
    inner: Arc<TcpStream>,
}

impl Closer {
    fn close(&self) {
        let _ = self.outer.shutdown(Shutdown::Both);
        let _ = self.inner.shutdown(Shutdown::Both);
    }
}

/// A connected loopback pair: (the pump's end, the DC's end).
fn loopback_pair() -> io::Result<(TcpStream, TcpStream)> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let pump = TcpStream::connect(l.local_addr()?)?;
    let want = pump.local_addr()?;
    loop {
        // Only our own connection: anything else that raced to this port is dropped.
        let (dc, from) = l.accept()?;
        if from == want {
            pump.set_nodelay(true)?;
            dc.set_nodelay(true)?;
            return Ok((pump, dc));
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(PUMP_STACK)
        .spawn(f)
        .map(|_| ())
}

/// Reads until `step` has what it needs, starting with `first`. `step` returns the bytes it consumed and whether
/// it is done; the bytes after that point are returned.
fn read_opening(
    sock: &mut TcpStream,
    first: &[u8],
    mut step: impl FnMut(&[u8]) -> Result<(usize, bool), CarriageError>,
) -> Result<Vec<u8>, CarriageError> {
    let deadline = Instant::now() + OPEN_TIMEOUT;
    let mut pending = first.to_vec();
    let mut buf = vec![0u8; 16_384];
    loop {
        let mut off = 0;
        while off < pending.len() {
            let (n, done) = step(pending.get(off..).unwrap_or_default())?;
            off += n;
            if done {
                return Ok(pending.get(off..).unwrap_or_default().to_vec());
            }
            if n == 0 {
                break;
            }
        }
        pending.drain(..off.min(pending.len()));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CarriageError::Refused("carriage opening timed out"));
        }
        sock.set_read_timeout(Some(left))?;
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Err(CarriageError::Io(io::Error::from(ErrorKind::UnexpectedEof)));
        }
        pending.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// DC end: takes a connection whose first bytes `prefix` the detector classified as `Detected::Http` or
/// `Detected::FakeTls`, runs the carriage's opening and returns the DC end of a loopback connection carrying the
/// plain transport inside. `secret` is the DC's MTProxy secret (the obfuscated init inside WebSocket must be made
/// with it).
pub fn accept(
    c: &Carriages,
    secret: Option<&ProxySecret>,
    mut sock: TcpStream,
    prefix: &[u8],
) -> Result<TcpStream, CarriageError> {
    sock.set_nodelay(true)?;
    // The detector's timeout: the opening keeps its own deadline, and afterwards the DC's idle timeout on the
    // inner connection ends a silent one.
    sock.set_read_timeout(None)?;
    if prefix.starts_with(b"POST") {
        let (pump, dc) = loopback_pair()?;
        serve_http(sock, pump, prefix.to_vec())?;
        Ok(dc)
    } else if prefix.starts_with(b"GET ") {
        let mut hs = ServerHandshake::<MAX_HEAD>::new(WS_PATH, MAX_HEAD);
        let rest = read_opening(&mut sock, prefix, |b| hs.feed(b).map_err(CarriageError::WsHandshake))?;
        sock.set_read_timeout(None)?;
        let mut resp = [0u8; 512];
        let n = hs.encode_response(&mut resp).map_err(CarriageError::Encode)?;
        sock.write_all(resp.get(..n).unwrap_or_default())?;
        let (pump, dc) = loopback_pair()?;
        serve_ws(sock, pump, rest, secret.cloned())?;
        Ok(dc)
    } else if prefix.starts_with(&[0x16, 0x03]) {
        let ee = c
            .faketls
            .clone()
            .ok_or(CarriageError::Refused("fake-TLS without an ee secret"))?;
        let mut reader = ClientHelloReader::<MAX_HELLO>::new(&c.tls_cfg);
        let mut accepted = None;
        let now = unix_now();
        let rest = read_opening(&mut sock, prefix, |b| {
            let mut replay = lock(&c.replay);
            let (n, acc) = reader
                .feed(&ee, &c.tls_cfg, now, &mut **replay, b)
                .map_err(CarriageError::Tls)?;
            let done = acc.is_some();
            accepted = acc.or(accepted.take());
            Ok((n, done))
        })?;
        let acc = accepted.ok_or(CarriageError::Refused("fake-TLS hello"))?;
        let mut hello = vec![0u8; MAX_SERVER_HELLO_LEN];
        let n = faketls::encode_server_hello(&ee, &acc, &mut rand::rng(), &mut hello).map_err(CarriageError::Encode)?;
        sock.write_all(hello.get(..n).unwrap_or_default())?;
        sock.set_read_timeout(None)?;
        let (pump, dc) = loopback_pair()?;
        serve_tls(sock, pump, rest, ee.proxy_secret())?;
        Ok(dc)
    } else {
        Err(CarriageError::Refused("HTTP method not served"))
    }
}

/// Passes the inner stream on only once its first 64 bytes are an obfuscated init the DC accepts, so that no
/// other carriage or plain framing can hide inside.
struct Gate {
    secret: Option<ProxySecret>,
    first: Vec<u8>,
    open: bool,
}

impl Gate {
    fn new(secret: Option<ProxySecret>) -> Self {
        Gate {
            secret,
            first: Vec::with_capacity(INIT_LEN),
            open: false,
        }
    }

    fn pass(&mut self, bytes: &[u8], inner: &mut &TcpStream) -> Result<(), CarriageError> {
        if self.open {
            inner.write_all(bytes)?;
            return Ok(());
        }
        let take = (INIT_LEN - self.first.len()).min(bytes.len());
        let (head, tail) = bytes.split_at(take);
        self.first.extend_from_slice(head);
        if self.first.len() < INIT_LEN {
            return Ok(());
        }
        match detect(&self.first, self.secret.as_ref()) {
            Detected::Obfuscated { .. } => {}
            _ => return Err(CarriageError::Refused("carriage without an obfuscated init inside")),
        }
        self.open = true;
        inner.write_all(&self.first)?;
        inner.write_all(tail)?;
        Ok(())
    }
}

/// Runs one pump direction until it fails or the connection ends, then closes both sockets.
fn run_pump(
    name: &str,
    closer: Closer,
    f: impl FnOnce() -> Result<(), CarriageError> + Send + 'static,
) -> io::Result<()> {
    spawn(name, move || {
        let _ = f();
        closer.close();
    })
}

// ----------------------------------------------------------------------- HTTP (DC end)

/// A request waiting for its answer: when it arrived, and whether the connection persists after it (`false` for
/// `Connection: close` or HTTP/1.0 without `keep-alive`: its answer says `Connection: close` and ends the
/// connection).
#[derive(Clone, Copy)]
struct Held {
    since: Instant,
    keep_alive: bool,
}

/// The HTTP exchanges of one connection: requests not yet answered (oldest first) and DC packets not yet sent.
struct HttpExchanges {
    held: VecDeque<Held>,
    queued: VecDeque<Vec<u8>>,
    out: Arc<TcpStream>,
    buf: Vec<u8>,
}

impl HttpExchanges {
    fn respond(&mut self, keep_alive: bool, body: &[u8]) -> Result<(), CarriageError> {
        self.buf.resize(body.len() + 256, 0);
        let n = encode_response(200, keep_alive, body, &mut self.buf).map_err(CarriageError::Encode)?;
        (&*self.out).write_all(self.buf.get(..n).unwrap_or_default())?;
        Ok(())
    }

    /// Answers held requests with queued packets, and expired or surplus ones with empty bodies. `Ok(true)`: the
    /// request that ends the connection was answered, close it now.
    fn deliver(&mut self, now: Instant) -> Result<bool, CarriageError> {
        while let Some(&Held { since, keep_alive }) = self.held.front() {
            if let Some(p) = self.queued.pop_front() {
                self.held.pop_front();
                self.respond(keep_alive, &p)?;
            } else if self.held.len() > HTTP_MAX_HELD || now.duration_since(since) >= HTTP_HOLD {
                self.held.pop_front();
                self.respond(keep_alive, &[])?;
            } else {
                break;
            }
            if !keep_alive {
                return Ok(true);
            }
        }
        if self.queued.len() > HTTP_MAX_QUEUED {
            return Err(CarriageError::Refused("HTTP client does not poll"));
        }
        Ok(false)
    }
}

/// After a request that ends the connection: reads and discards whatever the client still sends until the
/// connection closes (the down pump closes it once the answer is out), so no unread bytes turn the close into a
/// reset that could cost the client its answer. Nothing read here reaches the DC.
fn linger(sock: &TcpStream) {
    let mut buf = [0u8; 4096];
    while matches!((&*sock).read(&mut buf), Ok(n) if n > 0) {}
}

fn serve_http(outer: TcpStream, pump: TcpStream, prefix: Vec<u8>) -> Result<(), CarriageError> {
    let outer = Arc::new(outer);
    let inner = Arc::new(pump);
    let closer = Closer {
        outer: Arc::clone(&outer),
        inner: Arc::clone(&inner),
    };
    let ex = Arc::new(Mutex::new(HttpExchanges {
        held: VecDeque::new(),
        queued: VecDeque::new(),
        out: Arc::clone(&outer),
        buf: Vec::new(),
    }));
    let (up_ex, up_in, up_out) = (Arc::clone(&ex), Arc::clone(&inner), Arc::clone(&outer));
    let up_closer = closer.clone();
    // `Ok(true)`: a request that ends the connection is held; nothing after it is read as a request, and the down
    // pump closes the connection once it is answered.
    let up = move || -> Result<bool, CarriageError> {
        let limits = HttpLimits {
            max_head: MAX_HEAD,
            max_body: SERVER_HTTP_BODY,
            ..HttpLimits::default()
        };
        let mut dec = Box::new(ServerHttp::server(API_PATH, limits));
        let mut inner = &*up_in;
        inner.write_all(&INTERMEDIATE_MARKER)?;
        let mut input = prefix;
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut rest = input.as_slice();
            loop {
                let n = dec.feed(rest).map_err(CarriageError::Http)?;
                rest = rest.get(n..).unwrap_or_default();
                let keep_alive = dec.keep_alive();
                let took = match dec.next_body() {
                    Some(body) => {
                        // An empty body only opens an exchange; anything else is one packet for the DC.
                        if !body.is_empty() {
                            let len = u32::try_from(body.len()).map_err(|_| CarriageError::Refused("body"))?;
                            let mut frame = Vec::with_capacity(body.len() + 4);
                            frame.extend_from_slice(&len.to_le_bytes());
                            frame.extend_from_slice(body);
                            inner.write_all(&frame)?;
                        }
                        let mut ex = lock(&up_ex);
                        ex.held.push_back(Held {
                            since: Instant::now(),
                            keep_alive,
                        });
                        if ex.deliver(Instant::now())? {
                            return Ok(false);
                        }
                        if !keep_alive {
                            return Ok(true);
                        }
                        true
                    }
                    None => false,
                };
                if rest.is_empty() && !took {
                    break;
                }
                if n == 0 && !took {
                    return Err(CarriageError::Refused("HTTP decoder stalled"));
                }
            }
            let n = (&*up_out).read(&mut buf)?;
            if n == 0 {
                return Ok(false);
            }
            input = buf.get(..n).unwrap_or_default().to_vec();
        }
    };
    let linger_on = Arc::clone(&outer);
    spawn("dc-http-up", move || match up() {
        Ok(true) => linger(&linger_on),
        Ok(false) | Err(_) => up_closer.close(),
    })?;
    let (dn_in, dn_ex) = (Arc::clone(&inner), ex);
    run_pump("dc-http-down", closer, move || {
        let mut inner = &*dn_in;
        inner.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut stream: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            match inner.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => stream.extend_from_slice(buf.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
            // The DC writes intermediate frames: a length word, then the packet; a word with the top bit set is a
            // quick-ack token, which HTTP cannot carry.
            let mut off = 0;
            let mut ex = lock(&dn_ex);
            while let Some(word) = stream.get(off..).and_then(|s| s.first_chunk::<4>()) {
                let word = u32::from_le_bytes(*word);
                if word & 0x8000_0000 != 0 {
                    off += 4;
                    continue;
                }
                let len = word as usize;
                if len > SERVER_HTTP_BODY {
                    return Err(CarriageError::Refused("DC frame too large"));
                }
                let Some(pkt) = stream.get(off + 4..off + 4 + len) else {
                    break;
                };
                ex.queued.push_back(pkt.to_vec());
                off += 4 + len;
            }
            stream.drain(..off);
            if ex.deliver(Instant::now())? {
                return Ok(());
            }
        }
    })?;
    Ok(())
}

// ------------------------------------------------------------------ WebSocket (DC end)

fn serve_ws(
    outer: TcpStream,
    pump: TcpStream,
    rest: Vec<u8>,
    secret: Option<ProxySecret>,
) -> Result<(), CarriageError> {
    let outer = Arc::new(outer);
    let inner = Arc::new(pump);
    let closer = Closer {
        outer: Arc::clone(&outer),
        inner: Arc::clone(&inner),
    };
    let codec = Arc::new(Mutex::new(Box::new(ServerWs::new(Role::Server, SERVER_WS_MESSAGE))));
    let (up_codec, up_in, up_out) = (Arc::clone(&codec), Arc::clone(&inner), Arc::clone(&outer));
    run_pump("dc-ws-up", closer.clone(), move || {
        let mut gate = Gate::new(secret);
        let mut inner = &*up_in;
        let mut input = rest;
        let mut buf = vec![0u8; 65_536];
        let mut reply = [0u8; 256];
        loop {
            let mut off = 0;
            loop {
                let mut ws = lock(&up_codec);
                let n = ws
                    .feed(input.get(off..).unwrap_or_default())
                    .map_err(CarriageError::Ws)?;
                off += n;
                let (took, closed) = match ws.next_event() {
                    Some(WsEvent::Message(m)) => {
                        gate.pass(m, &mut inner)?;
                        (true, false)
                    }
                    Some(WsEvent::Ping(_) | WsEvent::Pong(_)) => (true, false),
                    Some(WsEvent::Close { .. }) => (true, true),
                    None => (false, false),
                };
                let k = ws
                    .poll_transmit(&mut rand::rng(), &mut reply)
                    .map_err(CarriageError::Encode)?;
                (&*up_out).write_all(reply.get(..k).unwrap_or_default())?;
                if closed {
                    return Ok(());
                }
                if off >= input.len() && !took {
                    break;
                }
                if n == 0 && !took {
                    return Err(CarriageError::Refused("WebSocket decoder stalled"));
                }
            }
            let n = (&*up_out).read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            input = buf.get(..n).unwrap_or_default().to_vec();
        }
    })?;
    run_pump("dc-ws-down", closer, move || {
        let mut buf = vec![0u8; 65_536];
        let mut frame = vec![0u8; 65_536 + 16];
        loop {
            let n = (&*inner).read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            let mut ws = lock(&codec);
            let k = ws
                .encode_frame(
                    Opcode::Binary,
                    true,
                    buf.get(..n).unwrap_or_default(),
                    &mut rand::rng(),
                    &mut frame,
                )
                .map_err(CarriageError::Encode)?;
            (&*outer).write_all(frame.get(..k).unwrap_or_default())?;
        }
    })?;
    Ok(())
}

// ------------------------------------------------------------------- fake-TLS (DC end)

fn serve_tls(outer: TcpStream, pump: TcpStream, rest: Vec<u8>, secret: ProxySecret) -> Result<(), CarriageError> {
    let outer = Arc::new(outer);
    let inner = Arc::new(pump);
    let closer = Closer {
        outer: Arc::clone(&outer),
        inner: Arc::clone(&inner),
    };
    let (up_in, up_out) = (Arc::clone(&inner), Arc::clone(&outer));
    run_pump("dc-tls-up", closer.clone(), move || {
        let mut gate = Gate::new(Some(secret));
        let mut inner = &*up_in;
        let mut dec = RecordDecoder::new(DEFAULT_MAX_RECORD);
        let mut plain = vec![0u8; MAX_RECORD_PAYLOAD];
        let mut input = rest;
        let mut buf = vec![0u8; 65_536];
        loop {
            let mut off = 0;
            while off < input.len() {
                let (n, produced) = dec
                    .decode(input.get(off..).unwrap_or_default(), &mut plain)
                    .map_err(CarriageError::Tls)?;
                off += n;
                gate.pass(plain.get(..produced).unwrap_or_default(), &mut inner)?;
                if n == 0 && produced == 0 {
                    return Err(CarriageError::Refused("fake-TLS decoder stalled"));
                }
            }
            let n = (&*up_out).read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            input = buf.get(..n).unwrap_or_default().to_vec();
        }
    })?;
    run_pump("dc-tls-down", closer, move || {
        let mut enc = RecordEncoder::server();
        let mut buf = vec![0u8; 65_536];
        let mut out = Vec::new();
        loop {
            let n = (&*inner).read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            out.resize(enc.encoded_len(n), 0);
            let k = enc
                .encode(buf.get(..n).unwrap_or_default(), &mut out)
                .map_err(CarriageError::Encode)?;
            (&*outer).write_all(out.get(..k).unwrap_or_default())?;
        }
    })?;
    Ok(())
}

// ------------------------------------------------------------------------------------------- client end

/// The client end of a carriage around a [`crate::link::Link`]'s byte stream.
pub enum ClientCarriage {
    /// HTTP: the link speaks plain intermediate; each frame becomes one `POST`, each response body one frame.
    Http {
        /// `Host` header value.
        host: String,
        /// Responses.
        dec: Box<ClientHttp>,
        /// Link output not yet a whole frame (the first four bytes are the intermediate marker, never sent).
        pending: Vec<u8>,
        /// Whether the marker has been dropped.
        marker_dropped: bool,
        /// Requests sent and not yet answered.
        outstanding: usize,
    },
    /// WebSocket binary messages.
    Ws(Box<ClientWs>),
    /// Fake-TLS records.
    FakeTls {
        /// Outbound records.
        enc: RecordEncoder,
        /// Inbound records.
        dec: RecordDecoder,
    },
}

impl ClientCarriage {
    /// Runs the carriage's opening on a connected socket (WebSocket upgrade, fake-TLS hellos with `ee`); returns
    /// the carriage and the bytes that arrived after the opening. `None` for [`Carriage::Tcp`].
    pub fn open<R: CryptoRng + ?Sized>(
        kind: Carriage,
        sock: &mut TcpStream,
        host: &str,
        ee: Option<&FakeTlsSecret>,
        rng: &mut R,
    ) -> Result<Option<(Self, Vec<u8>)>, CarriageError> {
        match kind {
            Carriage::Tcp => Ok(None),
            Carriage::Http => Ok(Some((
                ClientCarriage::Http {
                    host: host.to_owned(),
                    dec: Box::new(ClientHttp::client(HttpLimits {
                        max_head: MAX_HEAD,
                        max_body: CLIENT_MESSAGE,
                        ..HttpLimits::default()
                    })),
                    pending: Vec::new(),
                    marker_dropped: false,
                    outstanding: 0,
                },
                Vec::new(),
            ))),
            Carriage::Ws => {
                let mut hs = ClientHandshake::<MAX_HEAD>::new(MAX_HEAD, rng);
                let mut req = [0u8; 1024];
                let n = hs
                    .encode_request(host, WS_PATH, None, &mut req)
                    .map_err(CarriageError::Encode)?;
                sock.write_all(req.get(..n).unwrap_or_default())?;
                let rest = read_opening(sock, &[], |b| hs.feed(b).map_err(CarriageError::WsHandshake))?;
                Ok(Some((
                    ClientCarriage::Ws(Box::new(ClientWs::new(Role::Client, CLIENT_MESSAGE))),
                    rest,
                )))
            }
            Carriage::FakeTls => {
                let ee = ee.ok_or(CarriageError::Refused("fake-TLS needs an ee secret"))?;
                let (hello, state) = faketls::client_hello(ee, unix_now(), rng).map_err(CarriageError::Encode)?;
                sock.write_all(&hello)?;
                let mut reader = ServerHelloReader::<8192>::new(state);
                let rest = read_opening(sock, &[], |b| reader.feed(ee, b).map_err(CarriageError::Tls))?;
                Ok(Some((
                    ClientCarriage::FakeTls {
                        enc: RecordEncoder::client(),
                        dec: RecordDecoder::new(DEFAULT_MAX_RECORD),
                    },
                    rest,
                )))
            }
        }
    }

    /// Wraps link output for the socket, appending to `wire`.
    pub fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        stream: &[u8],
        rng: &mut R,
        wire: &mut Vec<u8>,
    ) -> Result<(), CarriageError> {
        match self {
            ClientCarriage::Http {
                host,
                pending,
                marker_dropped,
                outstanding,
                ..
            } => {
                pending.extend_from_slice(stream);
                if !*marker_dropped {
                    if pending.len() < 4 {
                        return Ok(());
                    }
                    if pending.get(..4) != Some(&INTERMEDIATE_MARKER[..]) {
                        return Err(CarriageError::Refused("HTTP carries the intermediate framing only"));
                    }
                    pending.drain(..4);
                    *marker_dropped = true;
                }
                let mut off = 0;
                while let Some(word) = pending.get(off..).and_then(|s| s.first_chunk::<4>()) {
                    // No quick acks over HTTP: the length's top bit is never set here.
                    let len = (u32::from_le_bytes(*word) & 0x7fff_ffff) as usize;
                    let Some(body) = pending.get(off + 4..off + 4 + len) else {
                        break;
                    };
                    let start = wire.len();
                    wire.resize(start + len + 256 + host.len(), 0);
                    let n = encode_request(host, API_PATH, body, wire.get_mut(start..).unwrap_or_default())
                        .map_err(CarriageError::Encode)?;
                    wire.truncate(start + n);
                    *outstanding += 1;
                    off += 4 + len;
                }
                pending.drain(..off);
                Ok(())
            }
            ClientCarriage::Ws(ws) => {
                let mut frame = vec![0u8; WS_CHUNK + 16];
                for chunk in stream.chunks(WS_CHUNK) {
                    let n = ws
                        .encode_message(chunk, rng, &mut frame)
                        .map_err(CarriageError::Encode)?;
                    wire.extend_from_slice(frame.get(..n).unwrap_or_default());
                }
                Ok(())
            }
            ClientCarriage::FakeTls { enc, .. } => {
                let start = wire.len();
                wire.resize(start + enc.encoded_len(stream.len()), 0);
                let n = enc
                    .encode(stream, wire.get_mut(start..).unwrap_or_default())
                    .map_err(CarriageError::Encode)?;
                wire.truncate(start + n);
                Ok(())
            }
        }
    }

    /// Bytes to send before waiting for the DC: over HTTP, an empty poll request when no exchange is open.
    pub fn before_wait(&mut self, wire: &mut Vec<u8>) -> Result<(), CarriageError> {
        if let ClientCarriage::Http { host, outstanding, .. } = self
            && *outstanding == 0
        {
            let mut req = vec![0u8; 256 + host.len()];
            let n = encode_request(host, API_PATH, &[], &mut req).map_err(CarriageError::Encode)?;
            wire.extend_from_slice(req.get(..n).unwrap_or_default());
            *outstanding = 1;
        }
        Ok(())
    }

    /// Unwraps bytes from the socket: the link's stream is appended to `stream`, automatic replies (pongs) to
    /// `reply`.
    pub fn unwrap<R: CryptoRng + ?Sized>(
        &mut self,
        mut wire: &[u8],
        rng: &mut R,
        stream: &mut Vec<u8>,
        reply: &mut Vec<u8>,
    ) -> Result<(), CarriageError> {
        match self {
            ClientCarriage::Http { dec, outstanding, .. } => loop {
                let n = dec.feed(wire).map_err(CarriageError::Http)?;
                wire = wire.get(n..).unwrap_or_default();
                let took = match dec.next_body() {
                    Some(body) => {
                        *outstanding = outstanding.saturating_sub(1);
                        // An empty body ends an exchange that had nothing for us.
                        if !body.is_empty() {
                            let len = u32::try_from(body.len()).map_err(|_| CarriageError::Refused("body"))?;
                            stream.extend_from_slice(&len.to_le_bytes());
                            stream.extend_from_slice(body);
                        }
                        true
                    }
                    None => false,
                };
                if wire.is_empty() && !took {
                    return Ok(());
                }
                if n == 0 && !took {
                    return Err(CarriageError::Refused("HTTP decoder stalled"));
                }
            },
            ClientCarriage::Ws(ws) => {
                let mut out = [0u8; 256];
                loop {
                    let n = ws.feed(wire).map_err(CarriageError::Ws)?;
                    wire = wire.get(n..).unwrap_or_default();
                    let took = match ws.next_event() {
                        Some(WsEvent::Message(m)) => {
                            stream.extend_from_slice(m);
                            true
                        }
                        Some(WsEvent::Ping(_) | WsEvent::Pong(_)) => true,
                        Some(WsEvent::Close { .. }) => return Err(CarriageError::Refused("WebSocket closed")),
                        None => false,
                    };
                    let k = ws.poll_transmit(rng, &mut out).map_err(CarriageError::Encode)?;
                    reply.extend_from_slice(out.get(..k).unwrap_or_default());
                    if wire.is_empty() && !took {
                        return Ok(());
                    }
                    if n == 0 && !took {
                        return Err(CarriageError::Refused("WebSocket decoder stalled"));
                    }
                }
            }
            ClientCarriage::FakeTls { dec, .. } => {
                let mut plain = vec![0u8; MAX_RECORD_PAYLOAD];
                while !wire.is_empty() {
                    let (n, produced) = dec.decode(wire, &mut plain).map_err(CarriageError::Tls)?;
                    wire = wire.get(n..).unwrap_or_default();
                    stream.extend_from_slice(plain.get(..produced).unwrap_or_default());
                    if n == 0 && produced == 0 {
                        return Err(CarriageError::Refused("fake-TLS decoder stalled"));
                    }
                }
                Ok(())
            }
        }
    }
}
