//! The carriages on a real socket: the client end of MTProto over HTTP (`POST /api`), WebSocket (`GET /apiws`,
//! subprotocol `binary`, binary messages carrying the obfuscated transport, as Telegram Web sends it) and fake-TLS
//! (`ee` secrets: ClientHello/ServerHello, then TLS records around the obfuscated transport).
//!
//! The DC end is not here: HTTP, WebSocket and fake-TLS are layers of the DC's connection type
//! (`mtproto_sansio::carriage::layer`, set in `dc::Conn::serve`): the run loop feeds their raw bytes to the
//! connection like any TCP connection's, HTTP bodies land in its receive buffer as packets, WebSocket payloads and
//! fake-TLS records are unwrapped into it as the obfuscated stream, and a client's `http_wait` is held by its engine.
//!
//! Client end: [`ClientCarriage`] wraps the byte stream of a [`crate::link::Link`] for the socket and unwraps what
//! comes back, so `client::Conn` runs the same handshake and session code over each carriage. Over HTTP it keeps
//! one exchange open whenever it waits for the DC (an empty request body is a pure poll: the DC holds it until it
//! has something to send, or answers it empty after the layer's hold).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use mtproto_sansio::carriage::WriteError;
use mtproto_sansio::carriage::faketls::{
    self, DEFAULT_MAX_RECORD, FakeTlsError, FakeTlsSecret, MAX_RECORD_PAYLOAD, RecordDecoder, RecordEncoder,
    ServerHelloReader,
};
use mtproto_sansio::carriage::http::{API_PATH, HttpDecoder, HttpError, HttpLimits, encode_request};
use mtproto_sansio::carriage::ws::{ClientHandshake, WS_PATH, WsCodec, WsError, WsEvent, WsHandshakeError};
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::transport::Role;

/// Largest WebSocket message the DC end takes (checked on each frame header; nothing is reassembled: the payload
/// goes straight into the connection's receive buffer). Telegram Web sends one packet per message.
pub const SERVER_WS_MESSAGE: usize = 1_114_112;
/// Largest HTTP response body or WebSocket message the client end accepts (the client's largest frame, plus
/// framing).
pub const CLIENT_MESSAGE: usize = 65_536 + 64;
/// Largest HTTP or WebSocket head either end reads.
pub const MAX_HEAD: usize = 4096;
/// Largest fake-TLS ClientHello record the DC end reads.
pub const MAX_HELLO: usize = 2048;
/// HTTP requests the DC end holds open per connection (the connection type's HTTP layer).
pub use mtproto_sansio::carriage::layer::HTTP_MAX_HELD;
/// Bytes of the stream a client end puts into one WebSocket message.
pub const WS_CHUNK: usize = 16_384;
/// How long an opening (upgrade, hellos) may take.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The intermediate framing's marker, which the HTTP pump writes to the DC before the first frame.
const INTERMEDIATE_MARKER: [u8; 4] = [0xee; 4];

type ClientHttp = HttpDecoder<MAX_HEAD, CLIENT_MESSAGE>;
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

fn unix_now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
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
