//! Carriages: the ways MTProto gets through networks that block or throttle plain TCP to Telegram. Every one is a
//! Sans-IO codec without an allocator; bytes in, bytes out, with every buffer bounded by a named limit.
//!
//! - [`http`]: MTProto over HTTP/1.1 `POST /api` (<https://core.telegram.org/mtproto/transports#http>), both roles.
//!   Each request and each response body is exactly one MTProto packet, with no transport framing inside.
//! - [`ws`]: RFC 6455 WebSocket with the `binary` subprotocol, as Telegram Web uses it (`wss://…/apiws`), both
//!   roles. The payload of the binary messages is the obfuscated transport's byte stream: under the connection type
//!   it is a layer ([`layer::WsCarriage`]), or a host chains `WsCodec` → [`crate::transport::obfuscated::ObfuscatedCodec`].
//! - [`faketls`]: the fake-TLS MTProxy (`ee` secrets), both roles: ClientHello emulation with its HMAC digest and
//!   timestamp, the fake ServerHello, TLS application-data records around the obfuscated stream, and the
//!   ClientHello randoms checked against a [`crate::transport::replay::ReplayCache`] (docs/CHECKLIST.md item 9; the DC
//!   `Connection` checks every obfuscated init, inside fake-TLS and WebSocket too, against its host's).
//! - [`fallback`]: which carriage to try next after a failure, when, and which one worked last per DC.
//!
//! A server accepting every carriage on one port routes a new connection with
//! [`crate::transport::detect::detect`]: `Detected::Http` starting with `POST` goes to [`http::HttpDecoder::server`],
//! starting with `GET ` to [`ws::ServerHandshake`]; `Detected::FakeTls` goes to [`faketls::ClientHelloReader`]. The
//! same bytes are then fed from the start, since the detector consumes nothing.
//!
//! # Long polling over HTTP (`http_wait`)
//!
//! HTTP is request/response: the DC can only answer on an open exchange. So a session on HTTP keeps one request
//! outstanding that carries `http_wait max_delay:int wait_after:int max_wait:int` (it may be the only message of the
//! packet, or ride in a container with other messages). The DC holds that response for up to `max_wait`
//! milliseconds and answers it as soon as it has something to push (updates, answers to earlier requests, acks);
//! once it has something it waits `wait_after` ms more to batch, and at most `max_delay` ms. When the response
//! arrives the session immediately issues the next `http_wait`. Answers to a request can therefore arrive on a
//! different HTTP exchange than the one that carried the request; the session matches them by `msg_id` as on TCP,
//! so it runs unchanged. A host typically runs two keep-alive connections: one for the parked `http_wait`, one for
//! requests. Nothing in this module needs to know about `http_wait`: the codecs only move packets.
//!
//! # Traffic-shape hygiene (docs/CHECKLIST.md item 10)
//!
//! Censors classify MTProto by packet sizes (MTProxy issue #135). The recommended configuration whenever the
//! connection is obfuscated (plain obfuscated, `dd`, `ee`, and inside WebSocket) is:
//! - the **padded intermediate** framing (`Framing::PaddedIntermediate`; mandatory with `dd`/`ee` secrets), whose
//!   client encoder adds 0–15 random bytes per frame (`EncoderConfig::client` defaults to the full range); and
//! - **randomised MTProto padding** (12–1024 bytes, docs/CHECKLIST.md item 41) chosen per message by the session, so
//!   that equal messages do not have equal ciphertext lengths.
//!
//! Both are on by default for a client; `tests/carriage.rs::chk_010_padded_sizes_vary` checks the on-wire size
//! histogram of identical messages. Fake-TLS additionally splits the stream into records whose sizes follow the
//! writes, and its ServerHello carries 1–4 KiB of random "certificate" bytes like the real proxies.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

pub mod base64;
pub mod faketls;
pub mod fallback;
pub mod http;
pub mod layer;
pub mod ws;

/// Accumulates an HTTP head (request or status line plus headers) up to and including the blank line, and never
/// consumes a byte past it, so whatever follows (a body, WebSocket frames) stays with the caller.
#[derive(Clone)]
pub(crate) struct HeadBuffer<const H: usize> {
    buf: [u8; H],
    len: usize,
    done: bool,
}

/// The head exceeded the configured limit before its blank line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeadTooLarge;

impl<const H: usize> HeadBuffer<H> {
    pub(crate) const fn new() -> Self {
        HeadBuffer {
            buf: [0; H],
            len: 0,
            done: false,
        }
    }

    pub(crate) fn reset(&mut self) {
        self.len = 0;
        self.done = false;
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    pub(crate) fn head(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Takes bytes up to the end of the head; returns how many were taken. `limit` is clamped to `H`.
    pub(crate) fn feed(&mut self, input: &[u8], limit: usize) -> Result<usize, HeadTooLarge> {
        let limit = limit.min(H);
        let mut taken = 0;
        for &b in input {
            if self.done {
                break;
            }
            let slot = self
                .buf
                .get_mut(self.len)
                .filter(|_| self.len < limit)
                .ok_or(HeadTooLarge)?;
            *slot = b;
            self.len += 1;
            taken += 1;
            if b == b'\n' && self.buf.get(..self.len).is_some_and(|h| h.ends_with(b"\r\n\r\n")) {
                self.done = true;
            }
        }
        Ok(taken)
    }
}

/// Why bytes could not be written into a caller buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WriteError {
    /// `out` is too short; nothing useful was written.
    BufferTooSmall {
        /// Bytes the buffer must have (`usize::MAX`: more than memory holds).
        required: usize,
    },
    /// An argument cannot be encoded (a header value with CR/LF, a payload above the configured maximum, ...).
    InvalidInput,
}

impl WriteError {
    /// The caller's ([`Fault::Host`]).
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WriteError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes required"),
            WriteError::InvalidInput => f.write_str("input cannot be encoded"),
        }
    }
}

impl core::error::Error for WriteError {}

/// A cursor writing into a caller buffer; every write is bounds-checked.
pub(crate) struct Out<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Out<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Out { buf, pos: 0 }
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self
            .pos
            .checked_add(bytes.len())
            .ok_or(WriteError::BufferTooSmall { required: usize::MAX })?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(WriteError::BufferTooSmall { required: end })?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }

    /// Writes `n` in decimal.
    pub(crate) fn put_dec(&mut self, mut n: u64) -> Result<(), WriteError> {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        self.put(digits.get(i..).unwrap_or(&[]))
    }

    /// Reserves `n` bytes and returns them for the caller to fill.
    pub(crate) fn reserve(&mut self, n: usize) -> Result<&mut [u8], WriteError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(WriteError::BufferTooSmall { required: usize::MAX })?;
        let slice = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(WriteError::BufferTooSmall { required: end })?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn len(&self) -> usize {
        self.pos
    }
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive), as `Connection: keep-alive,
/// Upgrade` must match `upgrade`.
pub(crate) fn header_has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Validates a value that will be written into a header line.
pub(crate) fn check_header_value(v: &[u8]) -> Result<(), WriteError> {
    if v.is_empty() || v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(WriteError::InvalidInput);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn head_buffer_stops_at_blank_line() {
        let mut h = HeadBuffer::<64>::new();
        let input = b"GET / HTTP/1.1\r\nA: b\r\n\r\nBODY";
        assert_eq!(h.feed(input, 64).unwrap(), input.len() - 4);
        assert!(h.is_done());
        assert_eq!(h.feed(b"x", 64).unwrap(), 0);
        let mut h = HeadBuffer::<64>::new();
        assert_eq!(h.feed(&[b'a'; 20], 10), Err(HeadTooLarge));
    }

    #[test]
    fn out_decimal_and_tokens() {
        let mut b = [0u8; 32];
        let mut o = Out::new(&mut b);
        o.put_dec(0).unwrap();
        o.put(b",").unwrap();
        o.put_dec(18_446_744_073_709_551_615).unwrap();
        let n = o.len();
        assert_eq!(&b[..n], b"0,18446744073709551615");
        assert!(header_has_token(b"keep-alive, Upgrade", "upgrade"));
        assert!(!header_has_token(b"keep-alive", "upgrade"));
        assert_eq!(check_header_value(b"a\r\nb"), Err(WriteError::InvalidInput));
    }
}
