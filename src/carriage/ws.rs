//! The WebSocket carriage (RFC 6455) as Telegram Web uses it: `GET /apiws` upgraded with the `binary`
//! subprotocol, then binary messages whose payloads, concatenated, are the obfuscated transport's byte stream (a
//! host feeds each [`WsEvent::Message`] to an [`crate::transport::obfuscated::ObfuscatedCodec`]).
//!
//! - [`ClientHandshake`] writes the upgrade request (a fresh 16-byte key from the passed RNG) and validates the
//!   101 response (`Sec-WebSocket-Accept = base64(SHA1(key ‖ GUID))`, subprotocol `binary`).
//! - [`ServerHandshake`] parses and validates the upgrade request and writes the 101 response.
//! - [`WsCodec`] is the frame codec for either role: client frames are masked with a mask drawn from the RNG, the
//!   server refuses unmasked client frames (and the client masked server frames); fragmented messages are
//!   reassembled into a bounded buffer; control frames (≤ 125 bytes, never fragmented) may interleave; pings are
//!   answered automatically through [`WsCodec::poll_transmit`], and a close is echoed once.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::{HeadBuffer, Out, WriteError, base64, check_header_value, header_has_token};
use crate::transport::Role;

/// The GUID of RFC 6455 §1.3, appended to the key before hashing.
pub const GUID: &[u8; 36] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The subprotocol Telegram's WebSocket endpoint speaks.
pub const SUBPROTOCOL: &str = "binary";
/// The path Telegram serves WebSocket MTProto on.
pub const WS_PATH: &str = "/apiws";
/// Largest control-frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
/// Default largest reassembled message (the effective limit is `min(max_message, N)`).
pub const DEFAULT_MAX_MESSAGE: usize = 1024 * 1024;
/// Default largest handshake head.
pub const DEFAULT_MAX_HANDSHAKE: usize = 4096;
/// Length of a base64 `Sec-WebSocket-Key`.
pub const KEY_LEN: usize = 24;
/// Length of a base64 `Sec-WebSocket-Accept`.
pub const ACCEPT_LEN: usize = 28;

/// `base64(SHA1(key ‖ GUID))`, the value the server must answer with.
pub fn accept_key(key: &[u8; KEY_LEN]) -> [u8; ACCEPT_LEN] {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    let digest: [u8; 20] = h.finalize().into();
    let mut out = [0u8; ACCEPT_LEN];
    // 20 bytes always encode to exactly 28 characters.
    let _ = base64::encode(&digest, &mut out);
    out
}

/// Why an upgrade handshake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsHandshakeError {
    /// The head exceeded its limit.
    HeadTooLarge,
    /// Not valid HTTP/1.1, or too many headers.
    Malformed,
    /// Client: the server answered with a status other than 101.
    Status {
        /// The HTTP status code.
        code: u16,
    },
    /// Server: not a `GET`.
    BadMethod,
    /// Server: a path other than the configured one.
    BadPath,
    /// `Upgrade: websocket` or `Connection: Upgrade` missing.
    NotUpgrade,
    /// Server: `Sec-WebSocket-Version` is not 13.
    BadVersion,
    /// Server: `Sec-WebSocket-Key` missing or not base64 of 16 bytes.
    BadKey,
    /// Client: `Sec-WebSocket-Accept` missing or wrong.
    BadAccept,
    /// The `binary` subprotocol was not offered (server) or not selected (client).
    BadSubprotocol,
}

impl core::fmt::Display for WsHandshakeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WsHandshakeError::HeadTooLarge => f.write_str("WebSocket handshake head exceeds the limit"),
            WsHandshakeError::Malformed => f.write_str("malformed WebSocket handshake"),
            WsHandshakeError::Status { code } => write!(f, "WebSocket upgrade refused with status {code}"),
            WsHandshakeError::BadMethod => f.write_str("WebSocket upgrade is not a GET"),
            WsHandshakeError::BadPath => f.write_str("WebSocket upgrade to an unknown path"),
            WsHandshakeError::NotUpgrade => f.write_str("missing Upgrade/Connection headers"),
            WsHandshakeError::BadVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            WsHandshakeError::BadKey => f.write_str("invalid Sec-WebSocket-Key"),
            WsHandshakeError::BadAccept => f.write_str("invalid Sec-WebSocket-Accept"),
            WsHandshakeError::BadSubprotocol => f.write_str("subprotocol binary not negotiated"),
        }
    }
}

impl core::error::Error for WsHandshakeError {}

fn find<'h>(headers: &'h [httparse::Header<'_>], name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

fn check_upgrade(headers: &[httparse::Header<'_>]) -> Result<(), WsHandshakeError> {
    let up = find(headers, "upgrade").is_some_and(|v| header_has_token(v, "websocket"));
    let conn = find(headers, "connection").is_some_and(|v| header_has_token(v, "upgrade"));
    if up && conn {
        Ok(())
    } else {
        Err(WsHandshakeError::NotUpgrade)
    }
}

/// The client half of the upgrade: the key it sent and the response it is reading.
pub struct ClientHandshake<const H: usize> {
    key: [u8; KEY_LEN],
    max_head: usize,
    head: HeadBuffer<H>,
    failed: Option<WsHandshakeError>,
}

impl<const H: usize> core::fmt::Debug for ClientHandshake<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHandshake")
            .field("done", &self.head.is_done())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const H: usize> defmt::Format for ClientHandshake<H> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ClientHandshake {{ failed: {} }}", self.failed)
    }
}

impl<const H: usize> ClientHandshake<H> {
    /// Draws a fresh `Sec-WebSocket-Key`. `max_head` bounds the response head (clamped to `H`).
    pub fn new<R: CryptoRng + ?Sized>(max_head: usize, rng: &mut R) -> Self {
        let mut raw = [0u8; 16];
        rng.fill_bytes(&mut raw);
        let mut key = [0u8; KEY_LEN];
        let _ = base64::encode(&raw, &mut key);
        ClientHandshake {
            key,
            max_head,
            head: HeadBuffer::new(),
            failed: None,
        }
    }

    /// The base64 key this handshake uses.
    pub fn key(&self) -> &[u8; KEY_LEN] {
        &self.key
    }

    /// Writes the upgrade request (`GET {path}`, `Host`, `Origin` when given, subprotocol `binary`).
    pub fn encode_request(
        &self,
        host: &str,
        path: &str,
        origin: Option<&str>,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        check_header_value(host.as_bytes())?;
        check_header_value(path.as_bytes())?;
        if !path.starts_with('/') || path.contains(' ') {
            return Err(WriteError::InvalidInput);
        }
        let mut o = Out::new(out);
        o.put(b"GET ")?;
        o.put(path.as_bytes())?;
        o.put(b" HTTP/1.1\r\nHost: ")?;
        o.put(host.as_bytes())?;
        o.put(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ")?;
        o.put(&self.key)?;
        o.put(b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n")?;
        if let Some(origin) = origin {
            check_header_value(origin.as_bytes())?;
            o.put(b"Origin: ")?;
            o.put(origin.as_bytes())?;
            o.put(b"\r\n")?;
        }
        o.put(b"\r\n")?;
        Ok(o.len())
    }

    /// Reads the response head; returns the bytes consumed (never past the head: frames may follow in the same
    /// input) and whether the handshake completed successfully.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), WsHandshakeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step(input);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, bool), WsHandshakeError> {
        if self.head.is_done() {
            return Ok((0, true));
        }
        let n = self
            .head
            .feed(input, self.max_head)
            .map_err(|_| WsHandshakeError::HeadTooLarge)?;
        if !self.head.is_done() {
            return Ok((n, false));
        }
        let mut headers = [httparse::EMPTY_HEADER; super::http::MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(self.head.head()) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return Err(WsHandshakeError::Malformed),
        }
        let code = resp.code.ok_or(WsHandshakeError::Malformed)?;
        if code != 101 {
            return Err(WsHandshakeError::Status { code });
        }
        check_upgrade(resp.headers)?;
        let expected = accept_key(&self.key);
        let got = find(resp.headers, "sec-websocket-accept").ok_or(WsHandshakeError::BadAccept)?;
        if !bool::from(got.trim_ascii().ct_eq(&expected)) {
            return Err(WsHandshakeError::BadAccept);
        }
        if find(resp.headers, "sec-websocket-protocol").map(<[u8]>::trim_ascii) != Some(SUBPROTOCOL.as_bytes()) {
            return Err(WsHandshakeError::BadSubprotocol);
        }
        Ok((n, true))
    }
}

/// The server half of the upgrade.
pub struct ServerHandshake<const H: usize> {
    path: &'static str,
    max_head: usize,
    head: HeadBuffer<H>,
    accept: Option<[u8; ACCEPT_LEN]>,
    failed: Option<WsHandshakeError>,
}

impl<const H: usize> core::fmt::Debug for ServerHandshake<H> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHandshake")
            .field("path", &self.path)
            .field("accepted", &self.accept.is_some())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const H: usize> defmt::Format for ServerHandshake<H> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ServerHandshake {{ failed: {} }}", self.failed)
    }
}

impl<const H: usize> ServerHandshake<H> {
    /// A server accepting upgrades on `path` (normally [`WS_PATH`]); `max_head` bounds the request head.
    pub fn new(path: &'static str, max_head: usize) -> Self {
        ServerHandshake {
            path,
            max_head,
            head: HeadBuffer::new(),
            accept: None,
            failed: None,
        }
    }

    /// Reads the request head; returns the bytes consumed (never past the head) and whether a valid upgrade
    /// request is complete (then write [`encode_response`](Self::encode_response)).
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, bool), WsHandshakeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step(input);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, bool), WsHandshakeError> {
        if self.accept.is_some() {
            return Ok((0, true));
        }
        let n = self
            .head
            .feed(input, self.max_head)
            .map_err(|_| WsHandshakeError::HeadTooLarge)?;
        if !self.head.is_done() {
            return Ok((n, false));
        }
        let mut headers = [httparse::EMPTY_HEADER; super::http::MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(self.head.head()) {
            Ok(httparse::Status::Complete(_)) if req.version == Some(1) => {}
            _ => return Err(WsHandshakeError::Malformed),
        }
        if req.method != Some("GET") {
            return Err(WsHandshakeError::BadMethod);
        }
        if req.path != Some(self.path) {
            return Err(WsHandshakeError::BadPath);
        }
        check_upgrade(req.headers)?;
        if find(req.headers, "sec-websocket-version").map(<[u8]>::trim_ascii) != Some(b"13") {
            return Err(WsHandshakeError::BadVersion);
        }
        let key = find(req.headers, "sec-websocket-key")
            .map(<[u8]>::trim_ascii)
            .ok_or(WsHandshakeError::BadKey)?;
        let key: &[u8; KEY_LEN] = key.try_into().map_err(|_| WsHandshakeError::BadKey)?;
        let mut raw = [0u8; 18];
        if base64::decode(key, &mut raw) != Ok(16) {
            return Err(WsHandshakeError::BadKey);
        }
        let offered = find(req.headers, "sec-websocket-protocol").is_some_and(|v| header_has_token(v, SUBPROTOCOL));
        if !offered {
            return Err(WsHandshakeError::BadSubprotocol);
        }
        self.accept = Some(accept_key(key));
        Ok((n, true))
    }

    /// Writes the `101 Switching Protocols` response once a valid request was read.
    pub fn encode_response(&self, out: &mut [u8]) -> Result<usize, WriteError> {
        let accept = self.accept.as_ref().ok_or(WriteError::InvalidInput)?;
        let mut o = Out::new(out);
        o.put(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
        )?;
        o.put(accept)?;
        o.put(b"\r\nSec-WebSocket-Protocol: binary\r\n\r\n")?;
        Ok(o.len())
    }
}

/// A frame opcode (RFC 6455 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Opcode {
    /// Continuation of a fragmented message.
    Continuation,
    /// A text message (refused by this carriage).
    Text,
    /// A binary message.
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    /// The 4-bit value.
    pub const fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xa,
        }
    }

    fn from_bits(b: u8) -> Option<Self> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xa => Opcode::Pong,
            _ => return None,
        })
    }

    const fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// Why the frame stream was refused. Fatal and sticky: close the connection (with status 1002 or 1009).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsError {
    /// RSV1–3 set without a negotiated extension.
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    UnknownOpcode,
    /// Server: a client frame without a mask (RFC 6455 §5.1).
    Unmasked,
    /// Client: a masked server frame.
    MaskedFromServer,
    /// A control frame above 125 bytes.
    ControlTooLong,
    /// A control frame without FIN.
    FragmentedControl,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new data frame while a fragmented message is in progress.
    InterleavedMessage,
    /// The message would exceed `min(max_message, N)`; checked from the frame header, before buffering.
    MessageTooLarge,
    /// A text message: the carriage carries binary only.
    TextFrame,
    /// A non-minimal or out-of-range extended length.
    BadLength,
    /// A close payload of one byte, an invalid status code, or a reason that is not UTF-8.
    BadClose,
    /// A frame after the peer's close.
    AfterClose,
}

impl core::fmt::Display for WsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            WsError::ReservedBits => "WebSocket reserved bits set",
            WsError::UnknownOpcode => "unknown WebSocket opcode",
            WsError::Unmasked => "unmasked client frame",
            WsError::MaskedFromServer => "masked server frame",
            WsError::ControlTooLong => "control frame above 125 bytes",
            WsError::FragmentedControl => "fragmented control frame",
            WsError::UnexpectedContinuation => "continuation without a message",
            WsError::InterleavedMessage => "data frame inside a fragmented message",
            WsError::MessageTooLarge => "WebSocket message exceeds the limit",
            WsError::TextFrame => "text frame on a binary carriage",
            WsError::BadLength => "invalid WebSocket payload length",
            WsError::BadClose => "invalid close frame",
            WsError::AfterClose => "frame after close",
        })
    }
}

impl core::error::Error for WsError {}

/// One decoded unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsEvent<'a> {
    /// A complete (reassembled) binary message: the next piece of the obfuscated stream.
    Message(&'a [u8]),
    /// A ping; the pong is already queued for [`WsCodec::poll_transmit`].
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// The peer's close with its status code, if any; the echo is queued for [`WsCodec::poll_transmit`].
    Close {
        /// The status code (1000 normal, 1001 going away, ...).
        code: Option<u16>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    Message,
    Ping,
    Pong,
    Close(Option<u16>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Header,
    Payload { op: Opcode, fin: bool, remaining: usize },
    Ready(Ready),
    Taken(Ready),
    Failed(WsError),
}

/// The frame codec of one connection end, holding at most `N` bytes of reassembled message.
///
/// Decoding follows the crate's contract: [`feed`](Self::feed) consumes input up to the end of one event and
/// stops; take it with [`next_event`](Self::next_event). After each event, call
/// [`poll_transmit`](Self::poll_transmit) to write any automatic reply (pong, close echo).
pub struct WsCodec<const N: usize> {
    role: Role,
    max_message: usize,
    state: State,
    hdr: [u8; 14],
    hdr_len: usize,
    mask: Option<[u8; 4]>,
    mask_pos: usize,
    msg: [u8; N],
    msg_len: usize,
    in_message: bool,
    ctrl: [u8; MAX_CONTROL_PAYLOAD],
    ctrl_len: usize,
    pong: [u8; MAX_CONTROL_PAYLOAD],
    pong_len: Option<usize>,
    close_echo: Option<Option<u16>>,
    closed_rx: bool,
    closed_tx: bool,
}

impl<const N: usize> core::fmt::Debug for WsCodec<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WsCodec")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("msg_len", &self.msg_len)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for WsCodec<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "WsCodec {{ role: {}, msg_len: {} }}", self.role, self.msg_len)
    }
}

/// Size of a frame header for `len` payload bytes, masked or not.
pub const fn header_len(len: usize, masked: bool) -> usize {
    let base = if len < 126 {
        2
    } else if len <= 0xffff {
        4
    } else {
        10
    };
    if masked { base + 4 } else { base }
}

/// XORs `buf` with the mask, `offset` bytes into the frame payload. Works on whole 4-byte words so the compiler
/// can vectorise it (masking is most of the carriage's per-byte cost).
fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset & 3);
    let mut words = buf.chunks_exact_mut(4);
    for w in &mut words {
        for (b, k) in w.iter_mut().zip(m) {
            *b ^= k;
        }
    }
    for (b, k) in words.into_remainder().iter_mut().zip(m) {
        *b ^= k;
    }
}

fn valid_close_code(c: u16) -> bool {
    matches!(c, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A parsed frame header.
struct FrameHeader {
    op: Opcode,
    fin: bool,
    len: u64,
    mask: Option<[u8; 4]>,
}

/// Bytes the header in `hdr` takes, from its first two bytes (2 to 14).
fn header_need(hdr: &[u8; 14]) -> usize {
    let [_, b1, ..] = *hdr;
    let ext = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    2 + ext + if b1 & 0x80 != 0 { 4 } else { 0 }
}

/// What RFC 6455 allows of a frame, given its header and whether a fragmented message is open (both readers, the
/// reassembling `WsCodec` and the streaming `WsReader`, apply it): a control frame is final and carries at most
/// 125 bytes, text frames are refused (MTProto is binary), a continuation only continues an open message and a
/// binary frame only starts one. Returns whether the frame starts a new message.
fn admit(op: Opcode, fin: bool, len: u64, in_message: bool) -> Result<bool, WsError> {
    if op.is_control() {
        if !fin {
            return Err(WsError::FragmentedControl);
        }
        if len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(WsError::ControlTooLong);
        }
        return Ok(false);
    }
    match (op, in_message) {
        (Opcode::Text, _) => Err(WsError::TextFrame),
        (Opcode::Continuation, false) => Err(WsError::UnexpectedContinuation),
        (Opcode::Binary, true) => Err(WsError::InterleavedMessage),
        (Opcode::Binary, false) => Ok(true),
        _ => Ok(false),
    }
}

/// Checks a complete header against RFC 6455 §5.2 for a frame received by `role`: reserved bits, the opcode, the
/// mask direction (§5.1) and a minimal length (and below 2^63).
fn parse_header(hdr: &[u8; 14], role: Role) -> Result<FrameHeader, WsError> {
    let [b0, b1, ..] = *hdr;
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let op = Opcode::from_bits(b0 & 0x0f).ok_or(WsError::UnknownOpcode)?;
    let masked = b1 & 0x80 != 0;
    match (role, masked) {
        (Role::Server, false) => return Err(WsError::Unmasked),
        (Role::Client, true) => return Err(WsError::MaskedFromServer),
        _ => {}
    }
    let (len, mask_at) = match b1 & 0x7f {
        126 => {
            let [_, _, a, b, ..] = *hdr;
            let l = u16::from_be_bytes([a, b]);
            if l < 126 {
                return Err(WsError::BadLength);
            }
            (u64::from(l), 4)
        }
        127 => {
            let [_, _, a, b, c, d, e, f, g, h, ..] = *hdr;
            let l = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
            if l <= 0xffff || l >> 63 != 0 {
                return Err(WsError::BadLength);
            }
            (l, 10)
        }
        l => (u64::from(l), 2),
    };
    let mask = if masked {
        let m = hdr.get(mask_at..mask_at + 4).ok_or(WsError::BadLength)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(m);
        Some(a)
    } else {
        None
    };
    Ok(FrameHeader { op, fin, len, mask })
}

/// Writes a frame header for `len` payload bytes into `out` (which must hold [`header_len`]`(len, mask.is_some())`);
/// returns its length. The payload that follows is the caller's to mask with [`mask_payload`].
pub fn write_header(
    op: Opcode,
    fin: bool,
    len: usize,
    mask: Option<[u8; 4]>,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let mut o = Out::new(out);
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    o.put(&[(if fin { 0x80 } else { 0 }) | op.bits()])?;
    if len < 126 {
        o.put(&[mbit | len as u8])?;
    } else if let Ok(l) = u16::try_from(len) {
        o.put(&[mbit | 126])?;
        o.put(&l.to_be_bytes())?;
    } else {
        o.put(&[mbit | 127])?;
        o.put(&(len as u64).to_be_bytes())?;
    }
    if let Some(m) = mask {
        o.put(&m)?;
    }
    Ok(o.len())
}

/// XORs a frame's payload (from its start) with its mask, in place.
pub fn mask_payload(payload: &mut [u8], mask: [u8; 4]) {
    apply_mask(payload, mask, 0);
}

/// What one [`WsReader::decode`] call produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WsRead {
    /// Nothing complete yet: the input ended (or `out` had no room for payload).
    Nothing,
    /// `n` unmasked bytes of a binary message's payload, in `out[..n]`: the next piece of the stream. A message's
    /// frames and fragments are not reassembled: the stream inside does not care where they end.
    Data(usize),
    /// A complete ping; its payload is [`WsReader::control`], owed back in a pong.
    Ping,
    /// A complete pong (nothing to do).
    Pong,
    /// The peer's close and its status code, if any; owed back once, then the connection is over.
    Close(Option<u16>),
}

/// The payload state of the frame being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Payload {
    op: Opcode,
    fin: bool,
    remaining: usize,
    mask: Option<[u8; 4]>,
    /// Payload bytes already unmasked (the mask's phase).
    done: usize,
}

/// A streaming frame reader for one connection end: it buffers nothing of a data frame (its payload is unmasked
/// into the caller's `out`, a piece at a time, for the stream inside), only a frame header (at most 14 bytes) and a
/// control frame's payload (at most 125). Each message's length is checked against `max_message` from its frame
/// headers, before any of its payload is read. Errors are fatal and sticky.
pub struct WsReader {
    role: Role,
    max_message: u64,
    hdr: [u8; 14],
    hdr_len: usize,
    frame: Option<Payload>,
    /// Bytes of the current message so far (its frames' declared lengths).
    msg_len: u64,
    in_message: bool,
    ctrl: [u8; MAX_CONTROL_PAYLOAD],
    ctrl_len: usize,
    closed: bool,
    failed: Option<WsError>,
}

impl core::fmt::Debug for WsReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WsReader")
            .field("role", &self.role)
            .field("frame", &self.frame)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for WsReader {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "WsReader {{ role: {}, failed: {} }}", self.role, self.failed)
    }
}

impl WsReader {
    /// A reader of the frames `role` receives (a server's must be masked, a client's must not), with messages of at
    /// most `max_message` bytes.
    pub const fn new(role: Role, max_message: usize) -> Self {
        WsReader {
            role,
            max_message: max_message as u64,
            hdr: [0; 14],
            hdr_len: 0,
            frame: None,
            msg_len: 0,
            in_message: false,
            ctrl: [0; MAX_CONTROL_PAYLOAD],
            ctrl_len: 0,
            closed: false,
            failed: None,
        }
    }

    /// The sticky error, if any.
    pub fn error(&self) -> Option<WsError> {
        self.failed
    }

    /// Whether the peer's close was read (any byte after it is [`WsError::AfterClose`]).
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// The payload of the last control frame ([`WsRead::Ping`], [`WsRead::Pong`], [`WsRead::Close`]).
    pub fn control(&self) -> &[u8] {
        self.ctrl.get(..self.ctrl_len).unwrap_or(&[])
    }

    /// Reads `input` up to the end of one result: a header and control frames as they complete, and at most
    /// `out.len()` bytes of data payload, unmasked into `out`. Returns the bytes consumed and what they made.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, WsRead), WsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step(input, out);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, WsRead), WsError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            let Some(f) = self.frame.as_mut() else {
                let Some(&b) = rest.first() else {
                    return Ok((pos, WsRead::Nothing));
                };
                if self.closed {
                    return Err(WsError::AfterClose);
                }
                if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                    *slot = b;
                }
                self.hdr_len += 1;
                pos += 1;
                if self.hdr_len >= 2 && self.hdr_len == header_need(&self.hdr) {
                    self.hdr_len = 0;
                    if let Some(r) = self.on_header()? {
                        return Ok((pos, r));
                    }
                }
                continue;
            };
            let room = if f.op.is_control() {
                MAX_CONTROL_PAYLOAD.saturating_sub(self.ctrl_len)
            } else {
                out.len()
            };
            let n = f.remaining.min(rest.len()).min(room);
            if n == 0 {
                return Ok((pos, WsRead::Nothing));
            }
            let dst = if f.op.is_control() {
                let d = self.ctrl.get_mut(self.ctrl_len..self.ctrl_len + n);
                self.ctrl_len += n;
                d
            } else {
                out.get_mut(..n)
            };
            let dst = dst.ok_or(WsError::ControlTooLong)?;
            dst.copy_from_slice(rest.get(..n).unwrap_or(&[]));
            if let Some(m) = f.mask {
                apply_mask(dst, m, f.done);
            }
            f.done += n;
            f.remaining -= n;
            pos += n;
            let f = *f;
            if f.remaining == 0 {
                self.frame = None;
            }
            if !f.op.is_control() {
                if f.remaining == 0 && f.fin {
                    self.in_message = false;
                }
                return Ok((pos, WsRead::Data(n)));
            }
            if f.remaining == 0 {
                return self.end_control(f.op).map(|r| (pos, r));
            }
        }
    }

    /// A complete header: checks it against the state; an empty frame ends at once (a control frame's result).
    fn on_header(&mut self) -> Result<Option<WsRead>, WsError> {
        let FrameHeader { op, fin, len, mask } = parse_header(&self.hdr, self.role)?;
        let starts_message = admit(op, fin, len, self.in_message)?;
        if op.is_control() {
            self.ctrl_len = 0;
        } else {
            if starts_message {
                self.msg_len = 0;
                self.in_message = true;
            }
            // The limit holds on the declared length: nothing of a message too large is read.
            self.msg_len = self.msg_len.saturating_add(len);
            if self.msg_len > self.max_message {
                return Err(WsError::MessageTooLarge);
            }
        }
        let remaining = usize::try_from(len).map_err(|_| WsError::MessageTooLarge)?;
        if remaining > 0 {
            self.frame = Some(Payload {
                op,
                fin,
                remaining,
                mask,
                done: 0,
            });
            return Ok(None);
        }
        if op.is_control() {
            return self.end_control(op).map(Some);
        }
        if fin {
            self.in_message = false;
        }
        Ok(None)
    }

    fn end_control(&mut self, op: Opcode) -> Result<WsRead, WsError> {
        Ok(match op {
            Opcode::Ping => WsRead::Ping,
            Opcode::Pong => WsRead::Pong,
            _ => {
                let code = match self.control() {
                    [] => None,
                    [hi, lo, reason @ ..] => {
                        let c = u16::from_be_bytes([*hi, *lo]);
                        if !valid_close_code(c) || core::str::from_utf8(reason).is_err() {
                            return Err(WsError::BadClose);
                        }
                        Some(c)
                    }
                    [_] => return Err(WsError::BadClose),
                };
                self.closed = true;
                WsRead::Close(code)
            }
        })
    }
}

impl<const N: usize> WsCodec<N> {
    /// A codec for `role`; `max_message` bounds reassembled messages (effective `min(max_message, N)`).
    pub fn new(role: Role, max_message: usize) -> Self {
        WsCodec {
            role,
            max_message,
            state: State::Header,
            hdr: [0; 14],
            hdr_len: 0,
            mask: None,
            mask_pos: 0,
            msg: [0; N],
            msg_len: 0,
            in_message: false,
            ctrl: [0; MAX_CONTROL_PAYLOAD],
            ctrl_len: 0,
            pong: [0; MAX_CONTROL_PAYLOAD],
            pong_len: None,
            close_echo: None,
            closed_rx: false,
            closed_tx: false,
        }
    }

    fn limit(&self) -> usize {
        self.max_message.min(N)
    }

    /// The sticky error, if any.
    pub fn error(&self) -> Option<WsError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the peer has closed.
    pub fn peer_closed(&self) -> bool {
        self.closed_rx
    }

    /// Consumes input up to the end of one event; returns the bytes taken.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, WsError> {
        match self.step(input) {
            Ok(n) => Ok(n),
            Err(e) => {
                self.state = State::Failed(e);
                Err(e)
            }
        }
    }

    /// Feeds, then takes at most one event.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<WsEvent<'_>>), WsError> {
        let n = self.feed(input)?;
        Ok((n, self.next_event()))
    }

    /// Takes the completed event, if any.
    pub fn next_event(&mut self) -> Option<WsEvent<'_>> {
        let State::Ready(r) = self.state else { return None };
        self.state = State::Taken(r);
        Some(match r {
            Ready::Message => WsEvent::Message(self.msg.get(..self.msg_len).unwrap_or(&[])),
            Ready::Ping => WsEvent::Ping(self.ctrl.get(..self.ctrl_len).unwrap_or(&[])),
            Ready::Pong => WsEvent::Pong(self.ctrl.get(..self.ctrl_len).unwrap_or(&[])),
            Ready::Close(code) => WsEvent::Close { code },
        })
    }

    fn header_need(&self) -> usize {
        header_need(&self.hdr)
    }

    fn on_header(&mut self) -> Result<(), WsError> {
        let FrameHeader { op, fin, len, mask } = parse_header(&self.hdr, self.role)?;
        self.mask = mask;
        self.mask_pos = 0;
        if self.closed_rx {
            return Err(WsError::AfterClose);
        }
        let starts_message = admit(op, fin, len, self.in_message)?;
        if op.is_control() {
            self.ctrl_len = 0;
        } else {
            if starts_message {
                self.msg_len = 0;
                self.in_message = true;
            }
            let total = (self.msg_len as u64).saturating_add(len);
            if total > self.limit() as u64 {
                return Err(WsError::MessageTooLarge);
            }
        }
        let remaining = usize::try_from(len).map_err(|_| WsError::MessageTooLarge)?;
        self.state = State::Payload { op, fin, remaining };
        if remaining == 0 {
            self.finish_frame(op, fin)?;
        }
        Ok(())
    }

    fn finish_frame(&mut self, op: Opcode, fin: bool) -> Result<(), WsError> {
        self.state = match op {
            Opcode::Ping => {
                let src = self.ctrl.get(..self.ctrl_len).unwrap_or(&[]);
                if let Some(dst) = self.pong.get_mut(..src.len()) {
                    dst.copy_from_slice(src);
                }
                self.pong_len = Some(self.ctrl_len);
                State::Ready(Ready::Ping)
            }
            Opcode::Pong => State::Ready(Ready::Pong),
            Opcode::Close => {
                let code = match self.ctrl.get(..self.ctrl_len).unwrap_or(&[]) {
                    [] => None,
                    [hi, lo, reason @ ..] => {
                        let c = u16::from_be_bytes([*hi, *lo]);
                        if !valid_close_code(c) || core::str::from_utf8(reason).is_err() {
                            return Err(WsError::BadClose);
                        }
                        Some(c)
                    }
                    [_] => return Err(WsError::BadClose),
                };
                self.closed_rx = true;
                if !self.closed_tx {
                    self.close_echo = Some(code);
                }
                State::Ready(Ready::Close(code))
            }
            _ if fin => {
                self.in_message = false;
                State::Ready(Ready::Message)
            }
            _ => State::Header,
        };
        Ok(())
    }

    fn step(&mut self, input: &[u8]) -> Result<usize, WsError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            match self.state {
                State::Failed(e) => return Err(e),
                State::Ready(_) => return Ok(pos),
                State::Taken(r) => {
                    if r == Ready::Message {
                        self.msg_len = 0;
                    }
                    self.hdr_len = 0;
                    self.state = State::Header;
                }
                State::Header => {
                    let Some(&b) = rest.first() else { return Ok(pos) };
                    if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                        *slot = b;
                    }
                    self.hdr_len += 1;
                    pos += 1;
                    if self.hdr_len >= 2 && self.hdr_len == self.header_need() {
                        self.hdr_len = 0;
                        self.on_header()?;
                    }
                }
                State::Payload { op, fin, remaining } => {
                    let n = remaining.min(rest.len());
                    if n == 0 {
                        return Ok(pos);
                    }
                    let src = rest.get(..n).unwrap_or(&[]);
                    let dst = if op.is_control() {
                        let d = self.ctrl.get_mut(self.ctrl_len..self.ctrl_len + n);
                        self.ctrl_len += n;
                        d
                    } else {
                        let d = self.msg.get_mut(self.msg_len..self.msg_len + n);
                        self.msg_len += n;
                        d
                    };
                    let dst = dst.ok_or(WsError::MessageTooLarge)?;
                    dst.copy_from_slice(src);
                    if let Some(mask) = self.mask {
                        apply_mask(dst, mask, self.mask_pos);
                        self.mask_pos += n;
                    }
                    pos += n;
                    if n == remaining {
                        self.finish_frame(op, fin)?;
                    } else {
                        self.state = State::Payload {
                            op,
                            fin,
                            remaining: remaining - n,
                        };
                    }
                }
            }
        }
    }

    /// The size of one unfragmented frame carrying `len` bytes from this end.
    pub fn frame_len(&self, len: usize) -> usize {
        header_len(len, self.role == Role::Client) + len
    }

    /// Writes one frame. A client masks it with a fresh mask from `rng`; a server writes it unmasked (and draws
    /// nothing). Use `fin = false` and [`Opcode::Continuation`] to fragment a message.
    pub fn encode_frame<R: CryptoRng + ?Sized>(
        &mut self,
        op: Opcode,
        fin: bool,
        payload: &[u8],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        if op.is_control() && (!fin || payload.len() > MAX_CONTROL_PAYLOAD) {
            return Err(WriteError::InvalidInput);
        }
        if self.closed_tx {
            return Err(WriteError::InvalidInput);
        }
        let total = self.frame_len(payload.len());
        if out.len() < total {
            return Err(WriteError::BufferTooSmall { required: total });
        }
        let mask = (self.role == Role::Client).then(|| {
            let mut m = [0u8; 4];
            rng.fill_bytes(&mut m);
            m
        });
        let h = write_header(op, fin, payload.len(), mask, out)?;
        let body = out
            .get_mut(h..total)
            .ok_or(WriteError::BufferTooSmall { required: total })?;
        body.copy_from_slice(payload);
        if let Some(m) = mask {
            apply_mask(body, m, 0);
        }
        if op == Opcode::Close {
            self.closed_tx = true;
        }
        Ok(total)
    }

    /// Writes one binary message as a single frame.
    pub fn encode_message<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        self.encode_frame(Opcode::Binary, true, payload, rng, out)
    }

    /// Writes a close frame with a status code (and no reason); nothing can be sent after it.
    pub fn encode_close<R: CryptoRng + ?Sized>(
        &mut self,
        code: u16,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        if !valid_close_code(code) {
            return Err(WriteError::InvalidInput);
        }
        self.encode_frame(Opcode::Close, true, &code.to_be_bytes(), rng, out)
    }

    /// Writes the automatic reply owed to the peer, if any: the pong to the last ping (only the latest one, as
    /// RFC 6455 §5.5.3 allows), then the echo of its close. Returns 0 when nothing is owed.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(&mut self, rng: &mut R, out: &mut [u8]) -> Result<usize, WriteError> {
        if let Some(len) = self.pong_len {
            let mut p = [0u8; MAX_CONTROL_PAYLOAD];
            let src = self.pong.get(..len).unwrap_or(&[]);
            if let Some(d) = p.get_mut(..src.len()) {
                d.copy_from_slice(src);
            }
            if self.closed_tx {
                self.pong_len = None;
                return Ok(0);
            }
            let n = self.encode_frame(Opcode::Pong, true, p.get(..len).unwrap_or(&[]), rng, out)?;
            self.pong_len = None;
            return Ok(n);
        }
        if let Some(code) = self.close_echo.take() {
            if self.closed_tx {
                return Ok(0);
            }
            let payload = code.map(u16::to_be_bytes);
            let n = self.encode_frame(
                Opcode::Close,
                true,
                payload.as_ref().map_or(&[][..], |p| &p[..]),
                rng,
                out,
            );
            if n.is_err() {
                self.close_echo = Some(code);
            }
            return n;
        }
        Ok(0)
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::vec;
    use std::vec::Vec;

    /// A frame as a client writes it (masked with `mask`).
    fn frame(op: u8, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![0u8; 14 + payload.len()];
        let h = write_header(Opcode::from_bits(op).unwrap(), fin, payload.len(), mask, &mut out).unwrap();
        out[h..h + payload.len()].copy_from_slice(payload);
        if let Some(m) = mask {
            mask_payload(&mut out[h..h + payload.len()], m);
        }
        out.truncate(h + payload.len());
        out
    }

    /// Reads `wire` one byte at a time (the worst split), collecting the stream and the control results.
    fn read_all(r: &mut WsReader, wire: &[u8], chunk: usize) -> Result<(Vec<u8>, Vec<WsRead>), WsError> {
        let mut stream = Vec::new();
        let mut ctl = Vec::new();
        let mut out = vec![0u8; chunk];
        for b in wire.chunks(1) {
            let mut rest = b;
            loop {
                let (n, ev) = r.decode(rest, &mut out)?;
                rest = &rest[n..];
                match ev {
                    WsRead::Data(k) => stream.extend_from_slice(&out[..k]),
                    WsRead::Nothing => {}
                    e => ctl.push(e),
                }
                if rest.is_empty() {
                    break;
                }
            }
        }
        Ok((stream, ctl))
    }

    #[test]
    fn reader_unmasks_every_length_form_and_fragments_with_controls_between() {
        let m = Some([0x12, 0x34, 0x56, 0x78]);
        let big: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let mut wire = frame(0x2, false, &big[..5], m);
        wire.extend(frame(0x9, true, b"hi", m));
        wire.extend(frame(0x0, false, &big[5..300], m));
        wire.extend(frame(0xa, true, b"", m));
        wire.extend(frame(0x0, false, &[], m));
        wire.extend(frame(0x0, true, &big[300..], m));
        wire.extend(frame(0x8, true, &[0x03, 0xe8, b'o', b'k'], m));
        let mut r = WsReader::new(Role::Server, 1 << 20);
        let (stream, ctl) = read_all(&mut r, &wire, 7).unwrap();
        assert_eq!(
            stream, big,
            "7-bit, 16-bit and 64-bit lengths, unmasked across 1-byte reads"
        );
        assert_eq!(ctl, [WsRead::Ping, WsRead::Pong, WsRead::Close(Some(1000))]);
        assert!(r.peer_closed());
        assert_eq!(r.decode(&[0x82], &mut [0; 4]), Err(WsError::AfterClose));
    }

    #[test]
    fn reader_limits_the_message_on_its_headers() {
        let m = Some([1, 2, 3, 4]);
        // 64 + 64 > 100: the second header is refused before any of its payload is read.
        let mut r = WsReader::new(Role::Server, 100);
        let mut wire = frame(0x2, false, &[0; 64], m);
        let second = frame(0x0, true, &[0; 64], m);
        wire.extend_from_slice(&second[..6]);
        assert_eq!(read_all(&mut r, &wire, 64).unwrap_err(), WsError::MessageTooLarge);
        assert_eq!(r.error(), Some(WsError::MessageTooLarge));
        // A 2^62-byte frame: refused from its 14 header bytes.
        let mut r = WsReader::new(Role::Server, 1 << 20);
        let hdr = [0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        assert_eq!(r.decode(&hdr, &mut [0; 16]), Err(WsError::MessageTooLarge));
    }

    #[test]
    fn reader_refuses_what_rfc_6455_forbids() {
        let m = Some([9, 9, 9, 9]);
        let long_ping = [0u8; 126];
        let cases: Vec<(Role, Vec<u8>, WsError)> = vec![
            (Role::Server, frame(0x2, true, b"x", None), WsError::Unmasked),
            (Role::Client, frame(0x2, true, b"x", m), WsError::MaskedFromServer),
            (Role::Server, vec![0xc2, 0x80, 0, 0, 0, 0], WsError::ReservedBits),
            (Role::Server, vec![0x83, 0x80, 0, 0, 0, 0], WsError::UnknownOpcode),
            (Role::Server, frame(0x1, true, b"x", m), WsError::TextFrame),
            (Role::Server, frame(0x9, true, &long_ping, m), WsError::ControlTooLong),
            (Role::Server, frame(0x9, false, b"", m), WsError::FragmentedControl),
            (Role::Server, frame(0x0, true, b"x", m), WsError::UnexpectedContinuation),
            (
                Role::Server,
                [frame(0x2, false, b"x", m), frame(0x2, true, b"y", m)].concat(),
                WsError::InterleavedMessage,
            ),
            (Role::Server, vec![0x82, 0xfe, 0, 5, 0, 0, 0, 0], WsError::BadLength),
            (Role::Server, frame(0x8, true, &[3], m), WsError::BadClose),
            (Role::Server, frame(0x8, true, &[0x03, 0xed], m), WsError::BadClose),
        ];
        for (role, wire, want) in cases {
            let mut r = WsReader::new(role, 1 << 20);
            assert_eq!(read_all(&mut r, &wire, 16).unwrap_err(), want, "{wire:02x?}");
            assert_eq!(r.decode(&[0], &mut [0; 4]), Err(want), "sticky");
        }
        // A client reads the server's unmasked frames.
        let mut r = WsReader::new(Role::Client, 16);
        let (s, _) = read_all(&mut r, &frame(0x2, true, b"abc", None), 16).unwrap();
        assert_eq!(s, b"abc");
    }
}
