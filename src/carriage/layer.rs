//! Carriages as a layer of the connection type: [`crate::session::Connection`] takes a [`Carriage`] under its
//! framing, so a host feeds raw socket bytes and sends raw socket bytes whatever the carriage, and the packets
//! land in the connection's one receive buffer as on TCP.
//!
//! - [`NoCarriage`]: TCP. A zero-sized type: the default connection pays nothing for carriages it does not use.
//! - [`HttpCarriage`]: MTProto over HTTP/1.1, both roles. "One packet per HTTP body" is a framing the connection's
//!   codec understands ([`crate::transport::Codec::packets`]): the body streams straight into the receive buffer,
//!   bounded by `Content-Length` (or the chunks). The DC end answers open exchanges oldest first, one packet per
//!   response, and only when the engine has something to send: a client's `http_wait` is held by the engine
//!   ([`crate::session::LongPoll`]) up to its `max_wait`, so the exchange carrying it is answered then, or as soon as
//!   something is queued. An exchange the engine leaves unanswered (no `http_wait`, an empty poll) gets an empty
//!   200 after [`HttpCarriage::hold`]; one beyond [`HTTP_MAX_HELD`] pushes the oldest out the same way.
//! - [`FakeTlsCarriage`]: the fake-TLS MTProxy (`ee` secrets), both roles, around the obfuscated transport keyed
//!   with the secret. The DC end checks the ClientHello's digest, timestamp and SNI and asks its host for the
//!   replay check of its random, as for an obfuscated init ([`crate::session::HostQuery::ObfuscatedInit`]).
//! - [`WsCarriage`]: WebSocket (`GET /apiws`, subprotocol `binary`), both roles, around the obfuscated transport
//!   (any framing; a DC takes the one its client's init names). Frames are read by [`super::ws::WsReader`], which
//!   buffers no data frame: its payload is unmasked in pieces straight into the connection's receive buffer.
//! - [`Layer`]: any of them, chosen at run time (a DC serving every carriage on one port). With `alloc` each
//!   carriage boxes its large reader (a head or hello buffer, 2 to 4 KiB) when it is built, so a `Layer` is a few
//!   hundred bytes whatever the carriage; without it the readers are inline and the fake-TLS variant (about 5 KiB)
//!   sizes it. A host that wants only TCP uses [`NoCarriage`].
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use rand_core::CryptoRng;

use super::WriteError;
use super::faketls::{
    self, AcceptedHello, CHANGE_CIPHER_SPEC, ClientHelloReader, DEFAULT_MAX_RECORD, FakeTlsError, FakeTlsSecret,
    MAX_RECORD_PAYLOAD, MAX_SERVER_HELLO_LEN, RecordDecoder, ServerHelloReader,
};
use super::http::{API_PATH, BodySink, HttpError, HttpLimits, HttpParser, encode_request_head, encode_response_head};
use super::ws::{self, WsError, WsHandshakeError};
use crate::error::Fault;
use crate::time::{Instant, UnixTime};
use crate::transport::obfuscated::ProxySecret;
use crate::transport::replay::{Fingerprint, ReplayCache, key_fingerprint};
use crate::transport::{Codec, Frame, FrameDecoder, Role, TransportError};

/// A carriage's large, transient reader (an HTTP head, a TLS hello, a WebSocket upgrade head): boxed with `alloc`,
/// so a [`Layer`] costs its few hundred bytes on every connection and the reader's kilobytes only on the
/// connections that use that carriage; inline without `alloc` (there is no heap to put it on).
#[cfg(feature = "alloc")]
type Held<T> = alloc::boxed::Box<T>;
/// See the `alloc` version.
#[cfg(not(feature = "alloc"))]
type Held<T> = T;

#[cfg(feature = "alloc")]
fn held<T>(x: T) -> Held<T> {
    alloc::boxed::Box::new(x)
}

#[cfg(not(feature = "alloc"))]
fn held<T>(x: T) -> Held<T> {
    x
}

/// Why a carriage failed. Fatal: close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CarriageError {
    /// The transport inside the carriage.
    Transport(TransportError),
    /// HTTP framing (or, on a client, a status other than 200 that is no transport error).
    Http(HttpError),
    /// The fake-TLS handshake or records.
    Tls(FakeTlsError),
    /// WebSocket frames.
    Ws(WsError),
    /// The WebSocket upgrade.
    WsHandshake(WsHandshakeError),
    /// A carriage header could not be written.
    Write(WriteError),
}

impl CarriageError {
    /// Whose fault: the peer's for what it sent, the host's for a buffer too small.
    pub const fn fault(&self) -> Fault {
        match self {
            CarriageError::Transport(e) => e.fault(),
            CarriageError::Write(e) => e.fault(),
            CarriageError::Http(_) | CarriageError::Tls(_) | CarriageError::Ws(_) | CarriageError::WsHandshake(_) => {
                Fault::Peer
            }
        }
    }
}

impl core::fmt::Display for CarriageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CarriageError::Transport(e) => write!(f, "transport: {e}"),
            CarriageError::Http(e) => write!(f, "HTTP: {e}"),
            CarriageError::Tls(e) => write!(f, "fake-TLS: {e}"),
            CarriageError::Ws(e) => write!(f, "WebSocket: {e}"),
            CarriageError::WsHandshake(e) => write!(f, "WebSocket upgrade: {e}"),
            CarriageError::Write(e) => write!(f, "carriage: {e}"),
        }
    }
}

impl core::error::Error for CarriageError {}

/// What the codec wrote at `out[headroom()..]` for the carriage to wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Outbound {
    /// Transport bytes (an init, a frame, a quick-ack token): one packet on a packet carriage.
    Data,
    /// A transport error code (a DC's −404, −429): an HTTP status on the HTTP carriage.
    Error(i32),
}

/// A layer under the connection's framing. The connection drives it; hosts only construct one and hand it to
/// [`crate::session::Connection::set_carriage`]. Every method has the TCP behaviour as its default.
pub trait Carriage {
    /// One packet per carriage message (HTTP): the connection's codec is [`Codec::packets`].
    fn packets(&self) -> bool {
        false
    }

    /// The MTProxy secret of the obfuscated transport inside (fake-TLS: the `ee` secret's key).
    fn proxy_secret(&self) -> Option<ProxySecret> {
        None
    }

    /// The stream inside must be obfuscated (fake-TLS, WebSocket: what their peers speak inside).
    fn obfuscated_only(&self) -> bool {
        self.proxy_secret().is_some()
    }

    /// Bytes [`wrap`](Self::wrap) wants before the codec's output.
    fn headroom(&self) -> usize {
        0
    }

    /// The largest `out` the carriage itself needs ([`poll_transmit`](Self::poll_transmit)), and the bytes it adds
    /// at most around `inner` bytes of codec output: the connection's `min_transmit_len` is the larger of
    /// `headroom() + inner + overhead(inner)` and `min_out()`.
    fn overhead(&self, inner: usize) -> usize {
        let _ = inner;
        0
    }

    /// See [`overhead`](Self::overhead).
    fn min_out(&self) -> usize {
        0
    }

    /// The carriage's own bytes (a hello, an answer to an exchange it gives up on), before anything of the
    /// codec's. `long_poll`: the engine holds a client's `http_wait` (the exchange is its to answer).
    fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        long_poll: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, CarriageError> {
        let _ = (now, long_poll, rng, out);
        Ok(None)
    }

    /// Whether the codec may write now (fake-TLS: not before the hellos; HTTP DC: only with an open exchange).
    fn may_send(&self) -> bool {
        true
    }

    /// Wraps `len` bytes the codec wrote at `out[headroom()..]` in place; returns the bytes to send, from `out[0]`.
    fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        kind: Outbound,
        len: usize,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        let _ = (kind, rng, out);
        Ok(len)
    }

    /// Takes socket bytes, hands the codec at most `limit` of the bytes inside (never more than it takes, so
    /// nothing unwrapped waits outside the codec) and returns the socket bytes consumed and at most one frame.
    fn decode<'c, const N: usize>(
        &mut self,
        now: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        limit: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError>;

    /// When the carriage wants [`poll_transmit`](Self::poll_transmit) without input.
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// The carriage ended the connection (an HTTP request with `Connection: close` was answered): the host sends
    /// what `poll_transmit` wrote and closes the socket.
    fn is_finished(&self) -> bool {
        false
    }

    /// DC: the replay key of an opening that waits for the host's replay cache (a fake-TLS ClientHello random).
    fn replay_key(&self) -> Option<Fingerprint> {
        None
    }

    /// DC: the host's cache recorded [`replay_key`](Self::replay_key) as new.
    fn replay_checked(&mut self) {}

    /// A new connection under the same session ([`crate::session::Connection::reconnect`]): the carriage opens again.
    fn reset(&mut self) {}
}

/// TCP: no carriage. Zero-sized, every method the identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoCarriage;

impl Carriage for NoCarriage {
    #[inline(always)]
    fn decode<'c, const N: usize>(
        &mut self,
        _: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        limit: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError> {
        let input = input.get(..limit.min(input.len())).unwrap_or(input);
        codec.decode(input).map_err(CarriageError::Transport)
    }
}

// ------------------------------------------------------------------------------------------------------------ HTTP

/// Open exchanges a DC HTTP connection holds; one more pushes the oldest out with an empty response.
pub const HTTP_MAX_HELD: usize = 16;
/// How long a DC holds an exchange the engine leaves unanswered (Telegram's default long poll, 25 s); a held
/// `http_wait` is the engine's to answer (its `max_wait`, at most `SessionConfig::max_http_wait`).
pub const DEFAULT_HTTP_HOLD: Duration = Duration::from_secs(25);
/// Bytes a response or request head takes at most (status line, headers, a 20-digit length; the host header of
/// a request at most [`MAX_HTTP_HOST`]).
pub const HTTP_HEAD_ROOM: usize = 192 + MAX_HTTP_HOST;
/// Longest `Host` a client carriage writes.
pub const MAX_HTTP_HOST: usize = 255;
/// Largest head the carriage reads.
pub const HTTP_MAX_HEAD: usize = 4096;

/// A request the DC has not answered yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Exchange {
    since: Instant,
    keep_alive: bool,
}

/// Body bytes of a message go straight into the connection's receive buffer.
struct IntoDecoder<'a, const N: usize>(&'a mut FrameDecoder<N>);

impl<const N: usize> BodySink for IntoDecoder<'_, N> {
    fn begin(&mut self, len: Option<usize>) -> Result<(), HttpError> {
        self.0.begin_packet(len).map_err(|_| HttpError::BodyTooLarge)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        match self.0.feed(bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            _ => Err(HttpError::BodyTooLarge),
        }
    }
}

/// MTProto over HTTP as a connection layer (see the module docs).
pub struct HttpCarriage {
    role: Role,
    host: &'static str,
    parser: Held<HttpParser<HTTP_MAX_HEAD>>,
    /// DC: requests not answered yet, oldest first.
    open: heapless::Deque<Exchange, HTTP_MAX_HELD>,
    /// DC: the oldest exchanges pushed out, owed an empty answer before any other (answers go in request order).
    owed_empty: usize,
    hold: Duration,
    /// DC: a request with `Connection: close` arrived: nothing after it is read.
    last_read: bool,
    /// DC: its answer went out.
    finished: bool,
    /// Client: requests sent and not answered yet.
    in_flight: usize,
}

impl core::fmt::Debug for HttpCarriage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpCarriage")
            .field("role", &self.role)
            .field("open", &self.open.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl HttpCarriage {
    /// A client `POST`ing to `/api` on `host` (the `Host` header, at most [`MAX_HTTP_HOST`] bytes), reading
    /// response bodies up to `limits.max_body` (and the connection's receive buffer).
    pub fn client(host: &'static str, limits: HttpLimits) -> Self {
        Self::new(Role::Client, host, limits)
    }

    /// A DC serving `POST /api`, holding exchanges the engine leaves unanswered for [`DEFAULT_HTTP_HOLD`].
    pub fn server(limits: HttpLimits) -> Self {
        Self::new(Role::Server, "", limits)
    }

    fn new(role: Role, host: &'static str, limits: HttpLimits) -> Self {
        HttpCarriage {
            role,
            host,
            parser: held(HttpParser::new(role, API_PATH, limits, usize::MAX)),
            open: heapless::Deque::new(),
            owed_empty: 0,
            hold: DEFAULT_HTTP_HOLD,
            last_read: false,
            finished: false,
            in_flight: 0,
        }
    }

    /// DC: how long an exchange the engine leaves unanswered is held before an empty 200.
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// DC: the hold in use.
    pub fn hold(&self) -> Duration {
        self.hold
    }

    /// DC: exchanges open (requests not answered yet, pushed-out ones included).
    pub fn open_exchanges(&self) -> usize {
        self.open.len() + self.owed_empty
    }

    /// Client: requests sent and not answered yet. A client that wants pushes keeps one `http_wait` in flight
    /// ([`crate::session::Connection::http_wait`]) whenever this drops to 0.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// DC: writes a response head for `len` body bytes at `out[..]`, the body already at
    /// `out[HTTP_HEAD_ROOM..]`, and moves the body up behind it.
    fn respond(&mut self, status: u16, len: usize, out: &mut [u8]) -> Result<usize, CarriageError> {
        let keep_alive = match self.owed_empty.checked_sub(1) {
            Some(left) => {
                self.owed_empty = left;
                true
            }
            None => self.open.pop_front().is_none_or(|x| x.keep_alive),
        };
        let mut head = [0u8; HTTP_HEAD_ROOM];
        let h = encode_response_head(status, keep_alive, len, &mut head).map_err(CarriageError::Write)?;
        place(&head, h, len, out)?;
        if !keep_alive {
            self.finished = true;
        }
        Ok(h + len)
    }
}

/// Puts `head[..h]` before the `len` bytes at `out[HTTP_HEAD_ROOM..]`, from `out[0]`.
fn place(head: &[u8], h: usize, len: usize, out: &mut [u8]) -> Result<(), CarriageError> {
    let too_small = CarriageError::Write(WriteError::BufferTooSmall {
        required: HTTP_HEAD_ROOM + len,
    });
    if out.len() < HTTP_HEAD_ROOM + len || h > HTTP_HEAD_ROOM {
        return Err(too_small);
    }
    out.copy_within(HTTP_HEAD_ROOM..HTTP_HEAD_ROOM + len, h);
    out.get_mut(..h)
        .zip(head.get(..h))
        .ok_or(too_small)?
        .0
        .copy_from_slice(head.get(..h).unwrap_or(&[]));
    Ok(())
}

impl Carriage for HttpCarriage {
    fn packets(&self) -> bool {
        true
    }

    fn headroom(&self) -> usize {
        HTTP_HEAD_ROOM
    }

    fn min_out(&self) -> usize {
        HTTP_HEAD_ROOM
    }

    fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        long_poll: bool,
        _: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, CarriageError> {
        if self.role == Role::Client || self.finished {
            return Ok(None);
        }
        // The oldest exchange expired: answered empty, unless the engine holds it as a long poll (then the engine
        // answers it at its `max_wait` at the latest).
        let expired = !long_poll
            && self
                .open
                .front()
                .is_some_and(|x| now >= x.since.saturating_add(self.hold));
        if self.owed_empty == 0 && !expired {
            return Ok(None);
        }
        self.respond(200, 0, out).map(Some)
    }

    fn may_send(&self) -> bool {
        match self.role {
            Role::Client => true,
            Role::Server => !self.finished && self.owed_empty == 0 && !self.open.is_empty(),
        }
    }

    fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        kind: Outbound,
        len: usize,
        _: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        match (self.role, kind) {
            (Role::Server, Outbound::Data) => self.respond(200, len, out),
            // Telegram's HTTP endpoint answers a transport error with its status: −404 is 404, −429 is 429.
            (Role::Server, Outbound::Error(code)) => {
                let status = code.checked_neg().and_then(|c| u16::try_from(c).ok());
                let status = status.filter(|s| (400..600).contains(s)).unwrap_or(500);
                self.respond(status, 0, out)
            }
            (Role::Client, Outbound::Data) => {
                let mut head = [0u8; HTTP_HEAD_ROOM];
                let h = encode_request_head(self.host, API_PATH, len, &mut head).map_err(CarriageError::Write)?;
                place(&head, h, len, out)?;
                self.in_flight += 1;
                Ok(h + len)
            }
            (Role::Client, Outbound::Error(_)) => Err(CarriageError::Write(WriteError::InvalidInput)),
        }
    }

    fn decode<'c, const N: usize>(
        &mut self,
        now: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        _: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError> {
        if self.last_read {
            // After the connection's last request nothing is read as a request (RFC 9112 §9.6).
            return Ok((input.len(), None));
        }
        let Some(dec) = codec.packets_mut() else {
            return Err(CarriageError::Transport(TransportError::InvalidLength { declared: 0 }));
        };
        let n = match self.parser.feed(input, &mut IntoDecoder(dec)) {
            Ok(n) => n,
            // Telegram answers a transport error with its HTTP status (404: auth key not found, 429: flood).
            Err(HttpError::Status { code }) if self.role == Role::Client && (400..600).contains(&code) => {
                return Ok((input.len(), Some(Frame::TransportError(-i32::from(code)))));
            }
            Err(e) => return Err(CarriageError::Http(e)),
        };
        if !self.parser.take() {
            return Ok((n, None));
        }
        match self.role {
            Role::Server => {
                let x = Exchange {
                    since: now,
                    keep_alive: self.parser.keep_alive(),
                };
                if self.open.is_full() {
                    let _ = self.open.pop_front();
                    self.owed_empty += 1;
                }
                let _ = self.open.push_back(x);
                self.last_read = !x.keep_alive;
            }
            Role::Client => self.in_flight = self.in_flight.saturating_sub(1),
        }
        // An empty body is a poll (or an empty answer): no packet.
        if self.parser.body_len() == 0 {
            return Ok((n, None));
        }
        let ready = dec.end_packet().map_err(CarriageError::Transport)?;
        Ok((n, if ready { dec.next_frame() } else { None }))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.role == Role::Client || self.finished {
            return None;
        }
        self.open.front().map(|x| x.since.saturating_add(self.hold))
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn reset(&mut self) {
        *self = HttpCarriage {
            hold: self.hold,
            ..HttpCarriage::new(self.role, self.host, self.parser.limits())
        };
    }
}

// -------------------------------------------------------------------------------------------------------- fake-TLS

/// Bytes a fake-TLS server reads of a ClientHello record at most.
pub const TLS_MAX_HELLO: usize = 2048;
/// Stream bytes unwrapped per step on the stack (a record's payload is passed on in pieces of at most this).
const TLS_CHUNK: usize = 512;
/// A record header.
const RECORD_HEADER: usize = 5;

// The hello readers are the large states and transient; there is no heap to box into without `alloc`.
#[allow(clippy::large_enum_variant)]
enum TlsState {
    /// Client: the hello goes out at the next `poll_transmit`.
    ClientStart,
    /// Client: reading the server's hello records.
    ClientWait(Held<ServerHelloReader<MAX_SERVER_HELLO_LEN>>),
    /// DC: reading the ClientHello.
    ServerHello(Held<ClientHelloReader<TLS_MAX_HELLO>>),
    /// DC: a valid hello, waiting for the host's replay check, then for its answer to go out.
    ServerAccepted { hello: AcceptedHello, checked: bool },
    /// Application-data records both ways.
    Records { ccs_pending: bool },
    /// The opening failed.
    Failed(FakeTlsError),
}

/// The fake-TLS MTProxy (`ee` secrets) as a connection layer (see the module docs). The connection inside must be
/// obfuscated, padded intermediate; its proxy secret is the `ee` secret's key.
pub struct FakeTlsCarriage {
    role: Role,
    secret: FakeTlsSecret,
    cfg: faketls::ServerConfig,
    /// Unix time at `at`, for the hello's timestamp.
    unix: UnixTime,
    at: Instant,
    state: TlsState,
    records: RecordDecoder,
}

impl core::fmt::Debug for FakeTlsCarriage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FakeTlsCarriage")
            .field("role", &self.role)
            .field("secret", &self.secret)
            .finish_non_exhaustive()
    }
}

impl FakeTlsCarriage {
    /// A client of an `ee` proxy; `unix` is Unix time at `at` (the hello carries the time).
    pub fn client(secret: FakeTlsSecret, unix: UnixTime, at: Instant) -> Self {
        Self::new(Role::Client, secret, faketls::ServerConfig::default(), unix, at)
    }

    /// A DC (or proxy) accepting hellos for `secret` under `cfg` (skew window, largest hello); `unix` is Unix time
    /// at `at`.
    pub fn server(secret: FakeTlsSecret, cfg: faketls::ServerConfig, unix: UnixTime, at: Instant) -> Self {
        Self::new(Role::Server, secret, cfg, unix, at)
    }

    fn new(role: Role, secret: FakeTlsSecret, cfg: faketls::ServerConfig, unix: UnixTime, at: Instant) -> Self {
        let cfg = faketls::ServerConfig {
            max_hello: cfg.max_hello.min(TLS_MAX_HELLO),
            ..cfg
        };
        let state = match role {
            Role::Client => TlsState::ClientStart,
            Role::Server => TlsState::ServerHello(held(ClientHelloReader::new(&cfg))),
        };
        FakeTlsCarriage {
            role,
            secret,
            cfg,
            unix,
            at,
            state,
            records: RecordDecoder::new(DEFAULT_MAX_RECORD),
        }
    }

    fn unix_now(&self, now: Instant) -> u32 {
        let secs = self
            .unix
            .0
            .saturating_add(now.saturating_duration_since(self.at).as_secs());
        u32::try_from(secs).unwrap_or(u32::MAX)
    }

    /// Whether the hellos are done and records flow.
    pub fn is_open(&self) -> bool {
        matches!(self.state, TlsState::Records { .. })
    }

    fn fail(&mut self, e: FakeTlsError) -> CarriageError {
        self.state = TlsState::Failed(e);
        CarriageError::Tls(e)
    }
}

impl Carriage for FakeTlsCarriage {
    fn proxy_secret(&self) -> Option<ProxySecret> {
        Some(self.secret.proxy_secret())
    }

    fn headroom(&self) -> usize {
        CHANGE_CIPHER_SPEC.len() + RECORD_HEADER
    }

    fn overhead(&self, inner: usize) -> usize {
        // One header per record beyond the first (the first is in the headroom).
        inner.div_ceil(MAX_RECORD_PAYLOAD).saturating_sub(1) * RECORD_HEADER
    }

    fn min_out(&self) -> usize {
        match self.role {
            Role::Client => faketls::CLIENT_HELLO_LEN,
            Role::Server => MAX_SERVER_HELLO_LEN,
        }
    }

    fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        _: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, CarriageError> {
        match &self.state {
            TlsState::ClientStart => {
                let (hello, st) =
                    faketls::client_hello(&self.secret, self.unix_now(now), rng).map_err(CarriageError::Write)?;
                let dst = out
                    .get_mut(..hello.len())
                    .ok_or(CarriageError::Write(WriteError::BufferTooSmall {
                        required: hello.len(),
                    }))?;
                dst.copy_from_slice(&hello);
                self.state = TlsState::ClientWait(held(ServerHelloReader::new(st)));
                Ok(Some(hello.len()))
            }
            TlsState::ServerAccepted { hello, checked: true } => {
                let n = faketls::encode_server_hello(&self.secret, hello, rng, out).map_err(CarriageError::Write)?;
                self.state = TlsState::Records { ccs_pending: false };
                Ok(Some(n))
            }
            _ => Ok(None),
        }
    }

    fn may_send(&self) -> bool {
        self.is_open()
    }

    fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        _: Outbound,
        len: usize,
        _: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        let TlsState::Records { ccs_pending } = &mut self.state else {
            return Err(CarriageError::Write(WriteError::InvalidInput));
        };
        let room = CHANGE_CIPHER_SPEC.len() + RECORD_HEADER;
        let records = len.div_ceil(MAX_RECORD_PAYLOAD).max(1);
        // A client's first write is preceded by ChangeCipherSpec, as tdlib's (middlebox-compatibility mode).
        let ccs = if *ccs_pending { CHANGE_CIPHER_SPEC.len() } else { 0 };
        let total = ccs + len + records * RECORD_HEADER;
        if out.len() < room + len + (records - 1) * RECORD_HEADER {
            return Err(CarriageError::Write(WriteError::BufferTooSmall {
                required: room + len + (records - 1) * RECORD_HEADER,
            }));
        }
        // Records from the last: each payload moves to its place behind its header (the first moves down, into
        // the headroom, when there is no ChangeCipherSpec; later ones move up).
        for i in (0..records).rev() {
            let start = i * MAX_RECORD_PAYLOAD;
            let n = (len - start).min(MAX_RECORD_PAYLOAD);
            let dst = ccs + i * RECORD_HEADER + RECORD_HEADER + start;
            out.copy_within(room + start..room + start + n, dst);
            let hdr = out
                .get_mut(dst - RECORD_HEADER..dst)
                .ok_or(CarriageError::Write(WriteError::BufferTooSmall { required: total }))?;
            let l = u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
            hdr.copy_from_slice(&[0x17, 0x03, 0x03, l[0], l[1]]);
        }
        if let Some(c) = out.get_mut(..ccs) {
            c.copy_from_slice(CHANGE_CIPHER_SPEC.get(..ccs).unwrap_or(&[]));
        }
        *ccs_pending = false;
        Ok(total)
    }

    fn decode<'c, const N: usize>(
        &mut self,
        now: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        limit: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError> {
        let unix = self.unix_now(now);
        match &mut self.state {
            TlsState::Failed(e) => return Err(CarriageError::Tls(*e)),
            TlsState::ClientStart | TlsState::ServerAccepted { .. } => return Ok((0, None)),
            TlsState::ClientWait(reader) => {
                let r = reader.feed(&self.secret, input);
                return match r {
                    Ok((n, true)) => {
                        self.state = TlsState::Records { ccs_pending: true };
                        Ok((n, None))
                    }
                    Ok((n, false)) => Ok((n, None)),
                    Err(e) => Err(self.fail(e)),
                };
            }
            TlsState::ServerHello(reader) => {
                // The host's cache checks the random (asked through the connection); this reader keeps none.
                let mut none = ReplayCache::<0>::new();
                let r = reader.feed(&self.secret, &self.cfg, unix, &mut none, input);
                return match r {
                    Ok((n, Some(hello))) => {
                        self.state = TlsState::ServerAccepted { hello, checked: false };
                        Ok((n, None))
                    }
                    Ok((n, None)) => Ok((n, None)),
                    Err(e) => Err(self.fail(e)),
                };
            }
            TlsState::Records { .. } => {}
        }
        let mut pos = 0;
        let mut chunk = [0u8; TLS_CHUNK];
        let mut left = limit;
        loop {
            let want = codec.wanted().min(TLS_CHUNK).min(left);
            let rest = input.get(pos..).unwrap_or(&[]);
            if want == 0 || rest.is_empty() {
                break;
            }
            let (c, p) = match self.records.decode(rest, chunk.get_mut(..want).unwrap_or(&mut [])) {
                Ok(v) => v,
                Err(e) => return Err(self.fail(e)),
            };
            pos += c;
            if p > 0 {
                let took = codec
                    .feed(chunk.get(..p).unwrap_or(&[]))
                    .map_err(CarriageError::Transport)?;
                // `wanted` is exactly what the codec takes: nothing unwrapped is left over.
                if took != p {
                    return Err(CarriageError::Transport(TransportError::InvalidLength { declared: 0 }));
                }
                left -= p;
            }
            if codec.has_frame() || c == 0 {
                break;
            }
        }
        Ok((pos, codec.next_frame()))
    }

    fn replay_key(&self) -> Option<Fingerprint> {
        match &self.state {
            TlsState::ServerAccepted { hello, checked: false } => Some(key_fingerprint(hello.client_random())),
            _ => None,
        }
    }

    fn replay_checked(&mut self) {
        if let TlsState::ServerAccepted { checked, .. } = &mut self.state {
            *checked = true;
        }
    }

    fn reset(&mut self) {
        *self = FakeTlsCarriage::new(self.role, self.secret.clone(), self.cfg, self.unix, self.at);
    }
}

// ------------------------------------------------------------------------------------------------------- WebSocket

/// Largest upgrade head (request or response) the WebSocket carriage reads.
pub const WS_MAX_HEAD: usize = 2048;
/// Bytes the carriage's own writes take at most: the upgrade request (its `Host` at most [`MAX_HTTP_HOST`]), the
/// 101 response, a control frame.
pub const WS_HEAD_ROOM: usize = 192 + MAX_HTTP_HOST;
/// Stream bytes unmasked per step on the stack (a frame's payload is passed on in pieces of at most this).
const WS_CHUNK: usize = 512;

// The upgrade heads are the large states and transient; there is no heap to box into without `alloc`.
#[allow(clippy::large_enum_variant)]
enum WsState {
    /// Client: the upgrade request goes out at the next `poll_transmit`.
    ClientStart,
    /// Client: reading the 101 response.
    ClientWait(Held<ws::ClientHandshake<WS_MAX_HEAD>>),
    /// DC: reading the upgrade request.
    ServerWait(Held<ws::ServerHandshake<WS_MAX_HEAD>>),
    /// DC: a valid request; the 101 goes out at the next `poll_transmit`.
    ServerAnswer(Held<ws::ServerHandshake<WS_MAX_HEAD>>),
    /// Binary frames both ways.
    Open,
    /// The opening or the frames failed.
    Failed(CarriageError),
}

/// WebSocket (RFC 6455, `GET /apiws`, subprotocol `binary`) as a connection layer, both roles, as Telegram Web
/// uses it: the payloads of the binary messages, concatenated, are the obfuscated transport's stream, so the
/// connection inside must be obfuscated (any framing: a DC takes the one its client's init names).
///
/// Frames are read by a [`ws::WsReader`]: nothing of a data frame is buffered, its payload is unmasked in pieces
/// straight into the connection's receive buffer; only a header and a control payload are held. Each codec write
/// goes out as one binary frame (masked by a client with a fresh mask). A ping is answered with a pong (the latest
/// one only, as RFC 6455 §5.5.3 allows), a pong is ignored, and a close is echoed once, after which the carriage
/// is finished ([`Carriage::is_finished`]: the host closes the socket).
pub struct WsCarriage {
    role: Role,
    host: &'static str,
    path: &'static str,
    state: WsState,
    reader: ws::WsReader,
    max_message: usize,
    pong: [u8; ws::MAX_CONTROL_PAYLOAD],
    pong_len: Option<usize>,
    /// The peer's close, owed back once.
    close_owed: Option<Option<u16>>,
    /// A close went out: nothing else may.
    closed_tx: bool,
}

impl core::fmt::Debug for WsCarriage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WsCarriage")
            .field("role", &self.role)
            .field("open", &self.is_open())
            .field("closed_tx", &self.closed_tx)
            .finish_non_exhaustive()
    }
}

impl WsCarriage {
    /// A client upgrading `GET {path}` (normally [`ws::WS_PATH`]) on `host` (the `Host` header, at most
    /// [`MAX_HTTP_HOST`] bytes), reading messages of at most `max_message` bytes.
    pub fn client(host: &'static str, path: &'static str, max_message: usize) -> Self {
        Self::new(Role::Client, host, path, max_message)
    }

    /// A DC accepting upgrades on `path` (normally [`ws::WS_PATH`]), reading messages of at most `max_message`
    /// bytes (checked on each frame header, before its payload is read).
    pub fn server(path: &'static str, max_message: usize) -> Self {
        Self::new(Role::Server, "", path, max_message)
    }

    fn new(role: Role, host: &'static str, path: &'static str, max_message: usize) -> Self {
        let state = match role {
            Role::Client => WsState::ClientStart,
            Role::Server => WsState::ServerWait(held(ws::ServerHandshake::new(path, WS_MAX_HEAD))),
        };
        WsCarriage {
            role,
            host,
            path,
            state,
            reader: ws::WsReader::new(role, max_message),
            max_message,
            pong: [0; ws::MAX_CONTROL_PAYLOAD],
            pong_len: None,
            close_owed: None,
            closed_tx: false,
        }
    }

    /// Whether the upgrade is done and frames flow.
    pub fn is_open(&self) -> bool {
        matches!(self.state, WsState::Open)
    }

    /// Whether the peer's close was read.
    pub fn peer_closed(&self) -> bool {
        self.reader.peer_closed()
    }

    fn fail(&mut self, e: CarriageError) -> CarriageError {
        self.state = WsState::Failed(e);
        e
    }

    /// Writes one control frame from this end.
    fn control<R: CryptoRng + ?Sized>(
        &mut self,
        op: ws::Opcode,
        payload: &[u8],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        let mask = self.mask(rng);
        let h = ws::write_header(op, true, payload.len(), mask, out).map_err(CarriageError::Write)?;
        let total = h + payload.len();
        let body = out
            .get_mut(h..total)
            .ok_or(CarriageError::Write(WriteError::BufferTooSmall { required: total }))?;
        body.copy_from_slice(payload);
        if let Some(m) = mask {
            ws::mask_payload(body, m);
        }
        Ok(total)
    }

    /// A client's frames are masked with a fresh mask (RFC 6455 §5.3); a server's are not.
    fn mask<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(|| {
            let mut m = [0u8; 4];
            rng.fill_bytes(&mut m);
            m
        })
    }
}

impl Carriage for WsCarriage {
    fn obfuscated_only(&self) -> bool {
        true
    }

    fn headroom(&self) -> usize {
        // The largest header: a 64-bit length, and a client's mask.
        ws::header_len(usize::MAX, self.role == Role::Client)
    }

    fn min_out(&self) -> usize {
        WS_HEAD_ROOM
    }

    fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        _: Instant,
        _: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, CarriageError> {
        match &self.state {
            WsState::ClientStart => {
                let hs = ws::ClientHandshake::new(WS_MAX_HEAD, rng);
                let n = hs
                    .encode_request(self.host, self.path, None, out)
                    .map_err(CarriageError::Write)?;
                self.state = WsState::ClientWait(held(hs));
                Ok(Some(n))
            }
            WsState::ServerAnswer(hs) => {
                let n = hs.encode_response(out).map_err(CarriageError::Write)?;
                self.state = WsState::Open;
                Ok(Some(n))
            }
            WsState::Open if !self.closed_tx => {
                if let Some(len) = self.pong_len {
                    let pong = self.pong;
                    let n = self.control(ws::Opcode::Pong, pong.get(..len).unwrap_or(&[]), rng, out)?;
                    self.pong_len = None;
                    return Ok(Some(n));
                }
                if let Some(code) = self.close_owed {
                    let payload = code.map(u16::to_be_bytes);
                    let payload = payload.as_ref().map_or(&[][..], |p| &p[..]);
                    let n = self.control(ws::Opcode::Close, payload, rng, out)?;
                    self.close_owed = None;
                    self.closed_tx = true;
                    return Ok(Some(n));
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn may_send(&self) -> bool {
        self.is_open() && !self.closed_tx && self.close_owed.is_none()
    }

    fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        _: Outbound,
        len: usize,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        if !self.may_send() {
            return Err(CarriageError::Write(WriteError::InvalidInput));
        }
        let room = self.headroom();
        let mask = self.mask(rng);
        let h = ws::header_len(len, mask.is_some());
        let start = room - h;
        let too_small = CarriageError::Write(WriteError::BufferTooSmall { required: room + len });
        let hdr = out.get_mut(start..room).ok_or(too_small)?;
        ws::write_header(ws::Opcode::Binary, true, len, mask, hdr).map_err(CarriageError::Write)?;
        if let Some(m) = mask {
            ws::mask_payload(out.get_mut(room..room + len).ok_or(too_small)?, m);
        }
        // The header is minimal (RFC 6455 §5.2), so shorter than the headroom for most frames: the frame moves down.
        if start > 0 {
            out.copy_within(start..room + len, 0);
        }
        Ok(h + len)
    }

    fn decode<'c, const N: usize>(
        &mut self,
        _: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        limit: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError> {
        match &mut self.state {
            WsState::Failed(e) => return Err(*e),
            WsState::ClientStart | WsState::ServerAnswer(_) => return Ok((0, None)),
            WsState::ClientWait(hs) => {
                return match hs.feed(input) {
                    Ok((n, done)) => {
                        if done {
                            self.state = WsState::Open;
                        }
                        Ok((n, None))
                    }
                    Err(e) => Err(self.fail(CarriageError::WsHandshake(e))),
                };
            }
            WsState::ServerWait(hs) => {
                return match hs.feed(input) {
                    Ok((n, true)) => {
                        if let WsState::ServerWait(hs) = core::mem::replace(&mut self.state, WsState::Open) {
                            self.state = WsState::ServerAnswer(hs);
                        }
                        Ok((n, None))
                    }
                    Ok((n, false)) => Ok((n, None)),
                    Err(e) => Err(self.fail(CarriageError::WsHandshake(e))),
                };
            }
            WsState::Open => {}
        }
        let mut pos = 0;
        let mut chunk = [0u8; WS_CHUNK];
        let mut left = limit;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            if rest.is_empty() {
                break;
            }
            let want = codec.wanted().min(WS_CHUNK).min(left);
            let (c, r) = match self.reader.decode(rest, chunk.get_mut(..want).unwrap_or(&mut [])) {
                Ok(v) => v,
                Err(e) => return Err(self.fail(CarriageError::Ws(e))),
            };
            pos += c;
            match r {
                ws::WsRead::Data(p) => {
                    let took = codec
                        .feed(chunk.get(..p).unwrap_or(&[]))
                        .map_err(CarriageError::Transport)?;
                    // `wanted` is exactly what the codec takes: nothing unmasked is left over.
                    if took != p {
                        return Err(CarriageError::Transport(TransportError::InvalidLength { declared: 0 }));
                    }
                    left -= p;
                }
                ws::WsRead::Ping => {
                    let ping = self.reader.control();
                    if let Some(d) = self.pong.get_mut(..ping.len()) {
                        d.copy_from_slice(ping);
                        self.pong_len = Some(ping.len());
                    }
                }
                ws::WsRead::Close(code) => {
                    if !self.closed_tx {
                        self.close_owed = Some(code);
                    }
                    break;
                }
                ws::WsRead::Pong | ws::WsRead::Nothing => {}
            }
            if codec.has_frame() || c == 0 {
                break;
            }
        }
        Ok((pos, codec.next_frame()))
    }

    fn is_finished(&self) -> bool {
        // The peer's close was read and the echo is out (or ours had gone before it).
        self.reader.peer_closed() && self.closed_tx
    }

    fn reset(&mut self) {
        *self = WsCarriage::new(self.role, self.host, self.path, self.max_message);
    }
}

// ----------------------------------------------------------------------------------------------------------- any

/// Any carriage, chosen at run time (a DC serving all of them on one port, a client falling back from one to the
/// next). [`Layer::Tcp`] by default.
#[derive(Debug, Default)]
#[allow(clippy::large_enum_variant)] // Without `alloc`, the largest is fake-TLS's hello buffers (inline).
pub enum Layer {
    /// No carriage.
    #[default]
    Tcp,
    /// MTProto over HTTP.
    Http(HttpCarriage),
    /// Fake-TLS.
    FakeTls(FakeTlsCarriage),
    /// WebSocket.
    Ws(WsCarriage),
}

macro_rules! each {
    ($self:expr, $c:ident => $e:expr, $tcp:expr) => {
        match $self {
            Layer::Tcp => $tcp,
            Layer::Http($c) => $e,
            Layer::FakeTls($c) => $e,
            Layer::Ws($c) => $e,
        }
    };
}

impl Carriage for Layer {
    fn packets(&self) -> bool {
        each!(self, c => c.packets(), false)
    }

    fn proxy_secret(&self) -> Option<ProxySecret> {
        each!(self, c => c.proxy_secret(), None)
    }

    fn obfuscated_only(&self) -> bool {
        each!(self, c => c.obfuscated_only(), false)
    }

    fn headroom(&self) -> usize {
        each!(self, c => c.headroom(), 0)
    }

    fn overhead(&self, inner: usize) -> usize {
        each!(self, c => c.overhead(inner), 0)
    }

    fn min_out(&self) -> usize {
        each!(self, c => c.min_out(), 0)
    }

    fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        long_poll: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, CarriageError> {
        each!(self, c => c.poll_transmit(now, long_poll, rng, out), Ok(None))
    }

    fn may_send(&self) -> bool {
        each!(self, c => c.may_send(), true)
    }

    fn wrap<R: CryptoRng + ?Sized>(
        &mut self,
        kind: Outbound,
        len: usize,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, CarriageError> {
        each!(self, c => c.wrap(kind, len, rng, out), Ok(len))
    }

    fn decode<'c, const N: usize>(
        &mut self,
        now: Instant,
        codec: &'c mut Codec<N>,
        input: &[u8],
        limit: usize,
    ) -> Result<(usize, Option<Frame<'c>>), CarriageError> {
        each!(self, c => c.decode(now, codec, input, limit), NoCarriage.decode(now, codec, input, limit))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        each!(self, c => c.poll_timeout(), None)
    }

    fn is_finished(&self) -> bool {
        each!(self, c => c.is_finished(), false)
    }

    fn replay_key(&self) -> Option<Fingerprint> {
        each!(self, c => c.replay_key(), None)
    }

    fn replay_checked(&mut self) {
        each!(self, c => c.replay_checked(), ())
    }

    fn reset(&mut self) {
        each!(self, c => c.reset(), ())
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    /// The default connection pays nothing for carriages (`NoCarriage` is zero-sized); `Layer` costs what its
    /// largest carriage holds inline. Prints the sizes (README, Known gaps: Carriage).
    #[test]
    fn no_carriage_is_zero_sized_and_layer_sizes() {
        assert_eq!(core::mem::size_of::<NoCarriage>(), 0);
        type Tcp = crate::session::Connection<4096, 4096, 8>;
        type Any = crate::session::Connection<4096, 4096, 8, Layer>;
        assert_eq!(
            core::mem::size_of::<Tcp>(),
            core::mem::size_of::<crate::session::ConnectionSmall>()
        );
        std::println!(
            "Layer {} B (HttpCarriage {} B, FakeTlsCarriage {} B, WsCarriage {} B); Connection<4096, 4096, 8> {} B, \
             with Layer {} B",
            core::mem::size_of::<Layer>(),
            core::mem::size_of::<HttpCarriage>(),
            core::mem::size_of::<FakeTlsCarriage>(),
            core::mem::size_of::<WsCarriage>(),
            core::mem::size_of::<Tcp>(),
            core::mem::size_of::<Any>(),
        );
    }
}
