//! MTProto over HTTP/1.1 (<https://core.telegram.org/mtproto/transports#http>): the client `POST`s one MTProto
//! packet per request to `/api`, and the server answers with one packet per response. There is no transport
//! framing inside the bodies. Connections are kept alive, except after a message with `Connection: close` or an
//! HTTP/1.0 one without `keep-alive` ([`HttpDecoder::keep_alive`]), whose answer is the connection's last.
//!
//! The decoders parse heads with `httparse` and accept `Content-Length` and `chunked` bodies. Head bytes, body
//! bytes and chunk-size lines are bounded by [`HttpLimits`] and the decoder's const capacities; a declared length
//! above the limit is refused before a body byte is buffered. A response with a status other than 200 is
//! surfaced as [`HttpError::Status`]: Telegram's HTTP endpoint answers 404 where the TCP transports send the
//! `-404` error code (auth key not found), and 429 for flood (`-429`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::{HeadBuffer, Out, WriteError, check_header_value, header_has_token};
use crate::transport::Role;

/// Default largest head (request or status line plus headers), in bytes.
pub const DEFAULT_MAX_HEAD: usize = 4096;
/// Default largest body, in bytes (the effective limit is `min(max_body, B)`).
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;
/// Default longest chunk-size line (with extensions) and trailer line, in bytes.
pub const DEFAULT_MAX_CHUNK_LINE: usize = 256;
/// Most headers parsed in one head; more is an error.
pub const MAX_HEADERS: usize = 32;
/// The path Telegram serves MTProto on.
pub const API_PATH: &str = "/api";

/// The bounds of an [`HttpDecoder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HttpLimits {
    /// Largest head in bytes (clamped to the decoder's `H`).
    pub max_head: usize,
    /// Largest body in bytes (clamped to the decoder's `B`).
    pub max_body: usize,
    /// Longest chunk-size or trailer line.
    pub max_chunk_line: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head: DEFAULT_MAX_HEAD,
            max_body: DEFAULT_MAX_BODY,
            max_chunk_line: DEFAULT_MAX_CHUNK_LINE,
        }
    }
}

/// Why an HTTP message was refused. Fatal and sticky: close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HttpError {
    /// The head grew past `max_head` without its blank line.
    HeadTooLarge,
    /// The head is not valid HTTP/1.x.
    Malformed,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// Server: a method other than `POST`.
    BadMethod,
    /// Server: a path other than the configured one.
    BadPath,
    /// Client: the response status is not 200. 404 means what `-404` means on TCP, 429 what `-429` means.
    Status {
        /// The HTTP status code.
        code: u16,
    },
    /// Neither `Content-Length` nor `chunked` (a body delimited by connection close is not accepted).
    MissingLength,
    /// An unparsable or duplicated `Content-Length`, or one combined with `Transfer-Encoding`.
    BadContentLength,
    /// A transfer coding other than `chunked`.
    UnsupportedTransferEncoding,
    /// The declared or accumulated body exceeds `min(max_body, B)`; nothing past the limit was buffered.
    BodyTooLarge,
    /// A malformed chunk-size line, chunk terminator or trailer, or a line above `max_chunk_line`.
    BadChunk,
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HttpError::HeadTooLarge => f.write_str("HTTP head exceeds the limit"),
            HttpError::Malformed => f.write_str("malformed HTTP head"),
            HttpError::TooManyHeaders => f.write_str("too many HTTP headers"),
            HttpError::BadMethod => f.write_str("HTTP method is not POST"),
            HttpError::BadPath => f.write_str("HTTP path is not the API path"),
            HttpError::Status { code } => write!(f, "HTTP status {code}"),
            HttpError::MissingLength => f.write_str("HTTP body without Content-Length or chunked coding"),
            HttpError::BadContentLength => f.write_str("invalid Content-Length"),
            HttpError::UnsupportedTransferEncoding => f.write_str("unsupported Transfer-Encoding"),
            HttpError::BodyTooLarge => f.write_str("HTTP body exceeds the limit"),
            HttpError::BadChunk => f.write_str("malformed chunked body"),
        }
    }
}

impl core::error::Error for HttpError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Fixed {
        remaining: usize,
    },
    ChunkSize {
        value: usize,
        digits: usize,
        in_ext: bool,
        cr: bool,
        line: usize,
    },
    ChunkData {
        remaining: usize,
    },
    ChunkEnd {
        cr: bool,
    },
    Trailer {
        line: usize,
        cr: bool,
    },
    Ready,
    Taken,
    Failed(HttpError),
}

/// A streaming decoder of HTTP messages carrying MTProto packets: requests for [`Role::Server`], responses for
/// [`Role::Client`]. `H` bounds the head, `B` the body.
///
/// Contract (like [`crate::transport::FrameDecoder`]): [`feed`](Self::feed) consumes input only up to the end of
/// one message and returns how many bytes it took; take the body with [`next_body`](Self::next_body) before
/// feeding more (keep-alive: the next message starts right after). Pieces of any size work.
pub struct HttpDecoder<const H: usize, const B: usize> {
    parser: HttpParser<H>,
    body: [u8; B],
    filled: usize,
}

/// Where a message's body bytes go: the decoder's own buffer ([`HttpDecoder`]), or a connection's receive buffer
/// (the HTTP carriage of [`super::layer`], so a packet is held once).
pub(crate) trait BodySink {
    /// A body starts: `Some(len)` from `Content-Length` (not called for an empty one), `None` for a chunked body.
    fn begin(&mut self, len: Option<usize>) -> Result<(), HttpError>;
    /// The next body bytes (all of them are taken).
    fn put(&mut self, bytes: &[u8]) -> Result<(), HttpError>;
}

/// The decoder's own body buffer.
struct InlineBody<'a> {
    buf: &'a mut [u8],
    filled: &'a mut usize,
}

impl BodySink for InlineBody<'_> {
    fn begin(&mut self, _: Option<usize>) -> Result<(), HttpError> {
        *self.filled = 0;
        Ok(())
    }

    fn put(&mut self, src: &[u8]) -> Result<(), HttpError> {
        let end = *self.filled + src.len();
        self.buf
            .get_mut(*self.filled..end)
            .ok_or(HttpError::BodyTooLarge)?
            .copy_from_slice(src);
        *self.filled = end;
        Ok(())
    }
}

/// The message parser without a body buffer: heads, `Content-Length` and chunked bodies, bounded by
/// [`HttpLimits`] and the body cap it is given; body bytes go to a [`BodySink`].
pub(crate) struct HttpParser<const H: usize> {
    role: Role,
    path: &'static str,
    limits: HttpLimits,
    /// `min(limits.max_body, the sink's capacity)`.
    cap: usize,
    head: HeadBuffer<H>,
    state: State,
    /// Body bytes of the current message so far.
    body_len: usize,
    keep_alive: bool,
}

impl<const H: usize, const B: usize> core::fmt::Debug for HttpDecoder<H, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpDecoder")
            .field("role", &self.parser.role)
            .field("state", &self.parser.state)
            .field("filled", &self.filled)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const H: usize, const B: usize> defmt::Format for HttpDecoder<H, B> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "HttpDecoder {{ role: {}, filled: {} }}",
            self.parser.role,
            self.filled
        )
    }
}

struct Head {
    chunked: bool,
    length: Option<usize>,
    keep_alive: bool,
}

/// Reads the body delimitation and the connection's persistence (RFC 9112 §9.3): HTTP/1.1 persists unless a
/// `close` option appears in any `Connection` header (it wins over `keep-alive`, wherever each appears); HTTP/1.0
/// persists only with `keep-alive` and no `close`.
fn parse_headers(headers: &[httparse::Header<'_>], http11: bool) -> Result<Head, HttpError> {
    let mut h = Head {
        chunked: false,
        length: None,
        keep_alive: http11,
    };
    let (mut close, mut keep_alive) = (false, false);
    let mut te = false;
    for hd in headers {
        if hd.name.eq_ignore_ascii_case("content-length") {
            let v = core::str::from_utf8(hd.value).map_err(|_| HttpError::BadContentLength)?;
            let v = v.trim();
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) || h.length.is_some() {
                return Err(HttpError::BadContentLength);
            }
            h.length = Some(v.parse::<usize>().map_err(|_| HttpError::BodyTooLarge)?);
        } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            if te || !hd.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::UnsupportedTransferEncoding);
            }
            te = true;
            h.chunked = true;
        } else if hd.name.eq_ignore_ascii_case("connection") {
            close |= header_has_token(hd.value, "close");
            keep_alive |= header_has_token(hd.value, "keep-alive");
        }
    }
    h.keep_alive = !close && (http11 || keep_alive);
    // RFC 9112 §6.3: both present is a smuggling vector; refuse rather than pick one.
    if h.chunked && h.length.is_some() {
        return Err(HttpError::BadContentLength);
    }
    if !h.chunked && h.length.is_none() {
        return Err(HttpError::MissingLength);
    }
    Ok(h)
}

fn map_httparse(e: httparse::Error) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::TooManyHeaders,
        _ => HttpError::Malformed,
    }
}

impl<const H: usize> HttpParser<H> {
    pub(crate) fn new(role: Role, path: &'static str, limits: HttpLimits, cap: usize) -> Self {
        HttpParser {
            role,
            path,
            limits,
            cap: limits.max_body.min(cap),
            head: HeadBuffer::new(),
            state: State::Head,
            body_len: 0,
            keep_alive: true,
        }
    }

    fn max_body(&self) -> usize {
        self.cap
    }

    /// The limits in use.
    pub(crate) fn limits(&self) -> HttpLimits {
        self.limits
    }

    /// Body bytes of the current (or just completed) message.
    pub(crate) fn body_len(&self) -> usize {
        self.body_len
    }

    /// Whether the message is complete and not taken yet.
    pub(crate) fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Takes the completed message: the next byte fed starts the following one.
    pub(crate) fn take(&mut self) -> bool {
        let ready = self.state == State::Ready;
        if ready {
            self.state = State::Taken;
        }
        ready
    }

    /// Whether the last message allows another on the same connection. `false` after a message with a `close`
    /// connection option, or an HTTP/1.0 one without `keep-alive`: a server answers that request with
    /// [`encode_response`]`(.., keep_alive: false, ..)`, processes nothing after it and closes the connection once
    /// the answer is out (RFC 9112 §9.6); a client reads no further response. Valid from the moment the head is
    /// complete (so also while the body arrives, and after [`next_body`](Self::next_body)).
    pub(crate) fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// The sticky error, if any.
    pub(crate) fn error(&self) -> Option<HttpError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    fn fail(&mut self, e: HttpError) -> HttpError {
        self.state = State::Failed(e);
        e
    }

    fn on_head<S: BodySink>(&mut self, sink: &mut S) -> Result<(), HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let head = self.head.head();
        let parsed = match self.role {
            Role::Server => {
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(head).map_err(map_httparse)? {
                    httparse::Status::Complete(_) => {}
                    httparse::Status::Partial => return Err(HttpError::Malformed),
                }
                if req.method != Some("POST") {
                    return Err(HttpError::BadMethod);
                }
                if req.path != Some(self.path) {
                    return Err(HttpError::BadPath);
                }
                parse_headers(req.headers, req.version == Some(1))?
            }
            Role::Client => {
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(head).map_err(map_httparse)? {
                    httparse::Status::Complete(_) => {}
                    httparse::Status::Partial => return Err(HttpError::Malformed),
                }
                let code = resp.code.ok_or(HttpError::Malformed)?;
                if code != 200 {
                    return Err(HttpError::Status { code });
                }
                parse_headers(resp.headers, resp.version == Some(1))?
            }
        };
        self.keep_alive = parsed.keep_alive;
        self.body_len = 0;
        self.state = match parsed.length {
            Some(n) if n > self.max_body() => return Err(HttpError::BodyTooLarge),
            Some(0) => State::Ready,
            Some(n) => {
                sink.begin(Some(n))?;
                State::Fixed { remaining: n }
            }
            None => {
                sink.begin(None)?;
                State::ChunkSize {
                    value: 0,
                    digits: 0,
                    in_ext: false,
                    cr: false,
                    line: 0,
                }
            }
        };
        Ok(())
    }

    fn store<S: BodySink>(&mut self, sink: &mut S, src: &[u8]) -> Result<(), HttpError> {
        let end = self.body_len + src.len();
        if end > self.max_body() {
            return Err(HttpError::BodyTooLarge);
        }
        sink.put(src)?;
        self.body_len = end;
        Ok(())
    }

    /// Consumes input up to the end of one message, body bytes into `sink`; see [`HttpDecoder`]'s contract.
    pub(crate) fn feed<S: BodySink>(&mut self, input: &[u8], sink: &mut S) -> Result<usize, HttpError> {
        match self.step(input, sink) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn step<S: BodySink>(&mut self, input: &[u8], sink: &mut S) -> Result<usize, HttpError> {
        let mut pos = 0;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            match self.state {
                State::Failed(e) => return Err(e),
                State::Ready => return Ok(pos),
                State::Taken => {
                    self.head.reset();
                    self.body_len = 0;
                    self.state = State::Head;
                }
                State::Head => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    pos += self
                        .head
                        .feed(rest, self.limits.max_head)
                        .map_err(|_| HttpError::HeadTooLarge)?;
                    if !self.head.is_done() {
                        return Ok(pos);
                    }
                    self.on_head(sink)?;
                }
                State::Fixed { remaining } => {
                    let n = remaining.min(rest.len());
                    if n == 0 {
                        return Ok(pos);
                    }
                    self.store(sink, rest.get(..n).unwrap_or(&[]))?;
                    pos += n;
                    self.state = if n == remaining {
                        State::Ready
                    } else {
                        State::Fixed {
                            remaining: remaining - n,
                        }
                    };
                }
                State::ChunkData { remaining } => {
                    let n = remaining.min(rest.len());
                    if n == 0 {
                        return Ok(pos);
                    }
                    self.store(sink, rest.get(..n).unwrap_or(&[]))?;
                    pos += n;
                    self.state = if n == remaining {
                        State::ChunkEnd { cr: false }
                    } else {
                        State::ChunkData {
                            remaining: remaining - n,
                        }
                    };
                }
                State::ChunkSize { .. } | State::ChunkEnd { .. } | State::Trailer { .. } => {
                    let Some(&b) = rest.first() else { return Ok(pos) };
                    pos += 1;
                    self.line_byte(b)?;
                }
            }
        }
    }

    fn line_byte(&mut self, b: u8) -> Result<(), HttpError> {
        let max_line = self.limits.max_chunk_line;
        self.state = match self.state {
            State::ChunkSize {
                value,
                digits,
                in_ext,
                cr,
                line,
            } => {
                if line >= max_line {
                    return Err(HttpError::BadChunk);
                }
                match (b, cr) {
                    (b'\n', true) if digits > 0 => match value {
                        0 => State::Trailer { line: 0, cr: false },
                        n if self.body_len + n > self.max_body() => return Err(HttpError::BodyTooLarge),
                        n => State::ChunkData { remaining: n },
                    },
                    (_, true) => return Err(HttpError::BadChunk),
                    (b'\r', false) => State::ChunkSize {
                        value,
                        digits,
                        in_ext,
                        cr: true,
                        line: line + 1,
                    },
                    (_, false) if in_ext => State::ChunkSize {
                        value,
                        digits,
                        in_ext,
                        cr,
                        line: line + 1,
                    },
                    (b';', false) if digits > 0 => State::ChunkSize {
                        value,
                        digits,
                        in_ext: true,
                        cr,
                        line: line + 1,
                    },
                    (d, false) => {
                        let v = (d as char).to_digit(16).ok_or(HttpError::BadChunk)? as usize;
                        // Refuse before overflow: anything above the body limit fails anyway.
                        let value = value
                            .checked_mul(16)
                            .and_then(|x| x.checked_add(v))
                            .filter(|&x| x <= self.max_body())
                            .ok_or(HttpError::BodyTooLarge)?;
                        State::ChunkSize {
                            value,
                            digits: digits + 1,
                            in_ext,
                            cr,
                            line: line + 1,
                        }
                    }
                }
            }
            State::ChunkEnd { cr } => match (b, cr) {
                (b'\r', false) => State::ChunkEnd { cr: true },
                (b'\n', true) => State::ChunkSize {
                    value: 0,
                    digits: 0,
                    in_ext: false,
                    cr: false,
                    line: 0,
                },
                _ => return Err(HttpError::BadChunk),
            },
            State::Trailer { line, cr } => {
                if line >= max_line {
                    return Err(HttpError::BadChunk);
                }
                match (b, cr) {
                    (b'\n', true) if line == 0 => State::Ready,
                    (b'\n', true) => State::Trailer { line: 0, cr: false },
                    (_, true) => return Err(HttpError::BadChunk),
                    (b'\r', false) => State::Trailer { line, cr: true },
                    (_, false) => State::Trailer { line: line + 1, cr },
                }
            }
            s => s,
        };
        Ok(())
    }
}

impl<const H: usize, const B: usize> HttpDecoder<H, B> {
    /// A client decoding responses.
    pub fn client(limits: HttpLimits) -> Self {
        Self::new(Role::Client, API_PATH, limits)
    }

    /// A server decoding `POST` requests to `path` (normally [`API_PATH`]).
    pub fn server(path: &'static str, limits: HttpLimits) -> Self {
        Self::new(Role::Server, path, limits)
    }

    fn new(role: Role, path: &'static str, limits: HttpLimits) -> Self {
        HttpDecoder {
            parser: HttpParser::new(role, path, limits, B),
            body: [0; B],
            filled: 0,
        }
    }

    /// Whether the last message allows another on the same connection. `false` after a message with a `close`
    /// connection option, or an HTTP/1.0 one without `keep-alive`: a server answers that request with
    /// [`encode_response`]`(.., keep_alive: false, ..)`, processes nothing after it and closes the connection once
    /// the answer is out (RFC 9112 §9.6); a client reads no further response. Valid from the moment the head is
    /// complete (so also while the body arrives, and after [`next_body`](Self::next_body)).
    pub fn keep_alive(&self) -> bool {
        self.parser.keep_alive()
    }

    /// The sticky error, if any.
    pub fn error(&self) -> Option<HttpError> {
        self.parser.error()
    }

    /// Whether a complete body waits in [`next_body`](Self::next_body).
    pub fn has_body(&self) -> bool {
        self.parser.is_ready()
    }

    /// Takes the body of the completed message (one MTProto packet; may be empty).
    pub fn next_body(&mut self) -> Option<&[u8]> {
        if !self.parser.take() {
            return None;
        }
        self.body.get(..self.parser.body_len())
    }

    /// Consumes input up to the end of one message; see the type docs.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, HttpError> {
        let mut sink = InlineBody {
            buf: &mut self.body,
            filled: &mut self.filled,
        };
        self.parser.feed(input, &mut sink)
    }
}

/// Writes a client request carrying one MTProto packet: `POST {path} HTTP/1.1`, `Host`, `Connection: keep-alive`,
/// `Content-Length`, then the body. Returns the bytes written.
pub fn encode_request(host: &str, path: &str, body: &[u8], out: &mut [u8]) -> Result<usize, WriteError> {
    let h = encode_request_head(host, path, body.len(), out)?;
    let mut o = Out::new(out.get_mut(h..).unwrap_or(&mut []));
    o.put(body)?;
    Ok(h + o.len())
}

/// The head of [`encode_request`] for a body of `len` bytes.
pub(crate) fn encode_request_head(host: &str, path: &str, len: usize, out: &mut [u8]) -> Result<usize, WriteError> {
    check_header_value(host.as_bytes())?;
    if !path.starts_with('/') {
        return Err(WriteError::InvalidInput);
    }
    check_header_value(path.as_bytes())?;
    if path.bytes().any(|b| b == b' ') {
        return Err(WriteError::InvalidInput);
    }
    let mut o = Out::new(out);
    o.put(b"POST ")?;
    o.put(path.as_bytes())?;
    o.put(b" HTTP/1.1\r\nHost: ")?;
    o.put(host.as_bytes())?;
    o.put(b"\r\nConnection: keep-alive\r\nContent-Type: application/octet-stream\r\nContent-Length: ")?;
    o.put_dec(len as u64)?;
    o.put(b"\r\n\r\n")?;
    Ok(o.len())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        411 => "Length Required",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        _ => "Error",
    }
}

/// Writes a server response: status line, `Connection`, `Content-Length` (and the CORS header browsers need for
/// Telegram Web), then the body. Returns the bytes written.
pub fn encode_response(status: u16, keep_alive: bool, body: &[u8], out: &mut [u8]) -> Result<usize, WriteError> {
    let h = encode_response_head(status, keep_alive, body.len(), out)?;
    let mut o = Out::new(out.get_mut(h..).unwrap_or(&mut []));
    o.put(body)?;
    Ok(h + o.len())
}

/// The head of [`encode_response`] for a body of `len` bytes.
pub(crate) fn encode_response_head(
    status: u16,
    keep_alive: bool,
    len: usize,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    if !(100..=999).contains(&status) {
        return Err(WriteError::InvalidInput);
    }
    let mut o = Out::new(out);
    o.put(b"HTTP/1.1 ")?;
    o.put_dec(u64::from(status))?;
    o.put(b" ")?;
    o.put(reason(status).as_bytes())?;
    o.put(if keep_alive {
        b"\r\nConnection: keep-alive".as_slice()
    } else {
        b"\r\nConnection: close".as_slice()
    })?;
    o.put(b"\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/octet-stream\r\nContent-Length: ")?;
    o.put_dec(len as u64)?;
    o.put(b"\r\n\r\n")?;
    Ok(o.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    fn decode_all<const H: usize, const B: usize>(d: &mut HttpDecoder<H, B>, mut input: &[u8]) -> Option<[u8; 64]> {
        while !input.is_empty() {
            let n = d.feed(input).ok()?;
            input = &input[n..];
            if let Some(b) = d.next_body() {
                let mut out = [0u8; 64];
                out[..b.len()].copy_from_slice(b);
                return Some(out);
            }
        }
        None
    }

    #[test]
    fn chunked_response_with_extension_and_trailer() {
        let mut d = HttpDecoder::<256, 64>::client(HttpLimits::default());
        let msg = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n2\r\nef\r\n0\r\nT: v\r\n\r\n";
        let body = decode_all(&mut d, msg).unwrap();
        assert_eq!(&body[..6], b"abcdef");
    }

    fn request_keep_alive(head: &[u8]) -> bool {
        let mut d = HttpDecoder::<256, 64>::server(API_PATH, HttpLimits::default());
        assert_eq!(d.feed(head), Ok(head.len()));
        assert_eq!(d.next_body(), Some(&[][..]));
        d.keep_alive()
    }

    #[test]
    fn connection_close_and_http10_end_the_connection() {
        let cases: [(&[u8], bool); 9] = [
            (b"POST /api HTTP/1.1\r\nContent-Length: 0\r\n\r\n", true),
            (
                b"POST /api HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"POST /api HTTP/1.1\r\nConnection: CLOSE\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"POST /api HTTP/1.1\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            // `close` wins over a `keep-alive` in a later header too.
            (
                b"POST /api HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
            (
                b"POST /api HTTP/1.1\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (b"POST /api HTTP/1.0\r\nContent-Length: 0\r\n\r\n", false),
            (
                b"POST /api HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
                true,
            ),
            (
                b"POST /api HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                false,
            ),
        ];
        for (head, want) in cases {
            assert_eq!(
                request_keep_alive(head),
                want,
                "{}",
                core::str::from_utf8(head).unwrap()
            );
        }
        // Per message: a closing request after a persistent one on the same decoder.
        let mut d = HttpDecoder::<256, 64>::server(API_PATH, HttpLimits::default());
        let two = b"POST /api HTTP/1.1\r\nContent-Length: 0\r\n\r\nPOST /api HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let n = d.feed(two).unwrap();
        assert!(d.next_body().is_some() && d.keep_alive());
        assert_eq!(d.feed(&two[n..]), Ok(two.len() - n));
        assert!(d.next_body().is_some() && !d.keep_alive());
    }

    #[test]
    fn status_is_typed() {
        let mut d = HttpDecoder::<256, 64>::client(HttpLimits::default());
        assert_eq!(
            d.feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Err(HttpError::Status { code: 404 })
        );
        assert_eq!(d.feed(b"x"), Err(HttpError::Status { code: 404 }));
    }
}
