//! The streaming frame decoder and the frame encoder shared by all four framings.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::buffer::Buffer;
use rand_core::CryptoRng;

use super::{DEFAULT_MAX_FRAME, EncodeError, Framing, MAX_TRANSPORT_PADDING, Role, TransportError};

/// Payloads shorter than this on padded intermediate cannot be an MTProto packet (a plaintext packet has a 20-byte
/// header and a non-empty body), so a frame of 4..20 bytes there is an error code plus padding.
const MIN_PADDED_PACKET: usize = 20;
/// Full transport overhead: length, seqno, crc.
const FULL_OVERHEAD: u32 = 12;
/// Largest payload an abridged header can declare: 0xffffff words.
const ABRIDGED_MAX: usize = 0x00ff_ffff * 4;
/// Largest payload an intermediate header can declare (the top bit is the quick-ack flag).
const INTERMEDIATE_MAX: usize = 0x7fff_ffff;

/// How a [`FrameDecoder`] reads its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DecoderConfig {
    /// The framing of the stream.
    pub framing: Framing,
    /// Which end decodes: a client decodes server→client frames and vice versa.
    pub role: Role,
    /// Largest payload accepted, in bytes; the effective limit is `min(max_frame, N)`.
    pub max_frame: usize,
    /// Whether the stream starts with the framing's marker ([`Framing::init_bytes`]) that must be checked and
    /// skipped. True for a server on a plain connection; false on the client side and under obfuscation.
    pub expect_marker: bool,
}

impl DecoderConfig {
    /// A client decoding server→client frames (no marker; the server sends none).
    pub const fn client(framing: Framing) -> Self {
        DecoderConfig {
            framing,
            role: Role::Client,
            max_frame: DEFAULT_MAX_FRAME,
            expect_marker: false,
        }
    }

    /// A server decoding a plain (non-obfuscated) connection, starting with the client's marker.
    pub const fn server(framing: Framing) -> Self {
        DecoderConfig {
            framing,
            role: Role::Server,
            max_frame: DEFAULT_MAX_FRAME,
            expect_marker: true,
        }
    }

    /// The same configuration with another `max_frame`.
    pub const fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// The same configuration with or without the leading marker.
    pub const fn with_marker(mut self, expect_marker: bool) -> Self {
        self.expect_marker = expect_marker;
        self
    }
}

/// One decoded unit of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Frame<'a> {
    /// An MTProto packet. On padded intermediate it still carries the transport padding: strip it with
    /// [`super::strip_padding`] once the packet is known to be encrypted.
    Packet {
        /// The payload.
        data: &'a [u8],
        /// Server role only: the client asked for a quick ack of this packet.
        quick_ack: bool,
    },
    /// Client role only: the server's quick-ack token (top bit set), as the spec defines it (first 4 bytes of
    /// `msg_key_large`, little-endian, OR `0x80000000`); byte-swapping on abridged is already undone.
    QuickAck(u32),
    /// Client role only: a 4-byte payload holding a negative transport error code (−404, −429, −444, ...).
    TransportError(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ready {
    Packet,
    QuickAck(u32),
    Error(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Marker,
    Header,
    Body,
    Crc,
    Ready(Ready),
    Taken,
    Failed(TransportError),
}

/// A streaming decoder for one direction of one connection, holding at most `N` payload bytes.
///
/// Contract (backpressure): [`feed`](Self::feed) consumes input up to the end of **one** frame and stops there;
/// it returns how many bytes it took, which may be fewer than offered. Once a frame is complete, `feed` consumes
/// nothing until the caller has taken it with [`next_frame`](Self::next_frame); the frame borrows the decoder, and
/// the next `feed` reuses the storage. Input may be split anywhere (one byte per call works). The work per call is
/// bounded by the input length.
///
/// Errors are fatal and sticky. A length above `min(max_frame, N)` fails as soon as its header is complete,
/// before any payload byte is stored.
pub struct FrameDecoder<const N: usize> {
    cfg: DecoderConfig,
    state: State,
    hdr: [u8; 8],
    hdr_len: usize,
    marker_pos: usize,
    buf: Buffer<N>,
    filled: usize,
    need: usize,
    quick_ack: bool,
    crc: [u8; 4],
    crc_len: usize,
    hasher: crc32fast::Hasher,
    seq: u32,
    /// A packet begun with [`begin_packet`](Self::begin_packet)`(None)`: its end is told by
    /// [`end_packet`](Self::end_packet), not by a length (a chunked HTTP body).
    open_ended: bool,
}

impl<const N: usize> core::fmt::Debug for FrameDecoder<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .field("filled", &self.filled)
            .field("need", &self.need)
            .field("seq", &self.seq)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for FrameDecoder<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "FrameDecoder {{ cfg: {}, filled: {}, need: {}, seq: {} }}",
            self.cfg,
            self.filled,
            self.need,
            self.seq
        )
    }
}

impl<const N: usize> FrameDecoder<N> {
    /// A decoder at the start of a stream.
    pub fn new(cfg: DecoderConfig) -> Self {
        let state = if cfg.expect_marker && !cfg.framing.init_bytes().is_empty() {
            State::Marker
        } else {
            State::Header
        };
        FrameDecoder {
            cfg,
            state,
            hdr: [0; 8],
            hdr_len: 0,
            marker_pos: 0,
            buf: Buffer::new(),
            filled: 0,
            need: 0,
            quick_ack: false,
            crc: [0; 4],
            crc_len: 0,
            hasher: crc32fast::Hasher::new(),
            seq: 0,
            open_ended: false,
        }
    }

    /// A packet whose bounds the layer below gives (one packet per HTTP body, see [`super::Codec::packets`]): no
    /// header is read; the next `len` bytes fed are the packet, or with `None` every byte fed until
    /// [`end_packet`](Self::end_packet) (a chunked body). The length is checked against `min(max_frame, N)` before a
    /// byte is stored, as a header's would be (docs/CHECKLIST.md items 1, 2). Only between frames.
    pub(crate) fn begin_packet(&mut self, len: Option<usize>) -> Result<(), TransportError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        if self.state == State::Taken {
            self.reset_frame();
        }
        if self.state != State::Header || self.hdr_len != 0 {
            return self.fail(TransportError::InvalidLength { declared: 0 }).map(|_| ());
        }
        let need = match len {
            Some(n) if n > self.max_payload() => {
                return self
                    .fail(TransportError::FrameTooLarge { declared: len_u32(n) })
                    .map(|_| ());
            }
            Some(n) if n == 0 || !n.is_multiple_of(4) => {
                return self
                    .fail(TransportError::InvalidLength { declared: len_u32(n) })
                    .map(|_| ());
            }
            Some(n) => n,
            None => 0,
        };
        if !self.buf.reserve(need, 0) {
            return self
                .fail(TransportError::FrameTooLarge {
                    declared: len_u32(need),
                })
                .map(|_| ());
        }
        self.open_ended = len.is_none();
        self.need = need;
        self.filled = 0;
        self.state = State::Body;
        Ok(())
    }

    /// Ends a packet begun with `begin_packet(None)`: `Ok(true)` when a frame is ready, `Ok(false)` for an empty
    /// body (nothing to take; the decoder waits for the next packet). A packet begun with a length ends by itself.
    pub(crate) fn end_packet(&mut self) -> Result<bool, TransportError> {
        if let State::Failed(e) = self.state {
            return Err(e);
        }
        if self.state != State::Body || !self.open_ended {
            return Ok(self.has_frame());
        }
        self.open_ended = false;
        if self.filled == 0 {
            self.state = State::Taken;
            return Ok(false);
        }
        if !self.filled.is_multiple_of(4) {
            let declared = len_u32(self.filled);
            return self.fail(TransportError::InvalidLength { declared }).map(|_| false);
        }
        self.need = self.filled;
        match self.finish() {
            Ok(_) => Ok(true),
            Err(e) => self.fail(e).map(|_| false),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DecoderConfig {
        &self.cfg
    }

    /// Switches framing before any byte was fed (used once the obfuscated init names the framing).
    pub(crate) fn set_framing(&mut self, framing: Framing) {
        self.cfg.framing = framing;
    }

    /// The effective payload limit, `min(max_frame, N)`.
    pub fn max_payload(&self) -> usize {
        self.cfg.max_frame.min(N)
    }

    /// Whether a decoded frame waits for [`next_frame`](Self::next_frame).
    pub fn has_frame(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// The sticky error, if the stream has failed.
    pub fn error(&self) -> Option<TransportError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// Exactly how many more bytes the decoder can take before it reaches the next boundary (the end of a marker,
    /// header part, payload or CRC); `0` while a frame waits to be taken or after an error. A wrapper that must
    /// not transform more input than is consumed (the obfuscation CTR) feeds at most this many bytes.
    pub fn wanted(&self) -> usize {
        match self.state {
            State::Marker => self.cfg.framing.init_bytes().len().saturating_sub(self.marker_pos),
            State::Header | State::Taken => {
                let have = if self.state == State::Taken { 0 } else { self.hdr_len };
                self.header_len(have).saturating_sub(have)
            }
            State::Body if self.open_ended => self.max_payload().saturating_sub(self.filled),
            State::Body => self.need - self.filled,
            State::Crc => 4 - self.crc_len,
            State::Ready(_) | State::Failed(_) => 0,
        }
    }

    /// Takes the decoded frame, if one is complete. The next [`feed`](Self::feed) starts the following frame.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let State::Ready(ready) = self.state else { return None };
        self.state = State::Taken;
        Some(match ready {
            Ready::Packet => Frame::Packet {
                data: self.buf.as_slice().get(..self.filled).unwrap_or(&[]),
                quick_ack: self.quick_ack,
            },
            Ready::QuickAck(t) => Frame::QuickAck(t),
            Ready::Error(c) => Frame::TransportError(c),
        })
    }

    /// The receive buffer while no frame is being received (after [`next_frame`](Self::next_frame) took one, and
    /// before the next [`feed`](Self::feed)): the frame just taken is its first bytes. A connection parks that frame
    /// here while it waits for its host, and writes a handshake answer over it once it is consumed, so it needs
    /// no buffer of its own. Empty while a frame is being received.
    pub(crate) fn idle_buf_mut(&mut self) -> &mut [u8] {
        match self.state {
            State::Taken | State::Header | State::Marker => self.buf.as_mut_slice(),
            _ => &mut [],
        }
    }

    /// See [`idle_buf_mut`](Self::idle_buf_mut).
    pub(crate) fn idle_buf(&self) -> &[u8] {
        match self.state {
            State::Taken | State::Header | State::Marker => self.buf.as_slice(),
            _ => &[],
        }
    }

    /// With `alloc`: gives the receive buffer's memory back when it is large and no frame is being received (see
    /// [`crate::buffer`]); the frame last taken is gone. Without `alloc` it does nothing.
    pub(crate) fn release(&mut self) {
        if matches!(self.state, State::Taken | State::Header | State::Marker) {
            self.buf.release();
        }
    }

    /// Bytes of receive buffer held in memory now.
    pub fn buffer_footprint(&self) -> usize {
        self.buf.footprint()
    }

    /// Feeds then takes at most one frame: `Ok((consumed, frame))`.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame<'_>>), TransportError> {
        let n = self.feed(input)?;
        Ok((n, self.next_frame()))
    }

    /// Consumes input up to the end of one frame; see the type docs for the contract.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, TransportError> {
        let mut pos = 0usize;
        if self.state == State::Taken {
            self.reset_frame();
        }
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            match self.state {
                State::Failed(e) => return Err(e),
                State::Ready(_) => return Ok(pos),
                State::Taken => self.reset_frame(),
                _ if rest.is_empty() => return Ok(pos),
                State::Marker => {
                    let marker = self.cfg.framing.init_bytes();
                    let Some((&b, &m)) = rest.first().zip(marker.get(self.marker_pos)) else {
                        return self.fail(TransportError::BadMarker);
                    };
                    if b != m {
                        return self.fail(TransportError::BadMarker);
                    }
                    pos += 1;
                    self.marker_pos += 1;
                    if self.marker_pos == marker.len() {
                        self.state = State::Header;
                    }
                }
                State::Header => {
                    let want = self.header_len(self.hdr_len).saturating_sub(self.hdr_len);
                    let n = want.min(rest.len());
                    let (Some(dst), Some(src)) = (self.hdr.get_mut(self.hdr_len..self.hdr_len + n), rest.get(..n))
                    else {
                        return self.fail(TransportError::InvalidLength { declared: 0 });
                    };
                    dst.copy_from_slice(src);
                    self.hdr_len += n;
                    pos += n;
                    if self.hdr_len == self.header_len(self.hdr_len)
                        && let Err(e) = self.parse_header()
                    {
                        return self.fail(e);
                    }
                }
                State::Body if self.open_ended => {
                    let end = self.filled.saturating_add(rest.len());
                    if end > self.max_payload() || !self.buf.reserve(end, self.filled) {
                        return self.fail(TransportError::FrameTooLarge { declared: len_u32(end) });
                    }
                    let (Some(dst), n) = (self.buf.as_mut_slice().get_mut(self.filled..end), rest.len()) else {
                        return self.fail(TransportError::FrameTooLarge { declared: len_u32(end) });
                    };
                    dst.copy_from_slice(rest);
                    self.filled = end;
                    pos += n;
                }
                State::Body => {
                    let n = (self.need - self.filled).min(rest.len());
                    let (Some(dst), Some(src)) = (
                        self.buf.as_mut_slice().get_mut(self.filled..self.filled + n),
                        rest.get(..n),
                    ) else {
                        return self.fail(TransportError::FrameTooLarge {
                            declared: len_u32(self.need),
                        });
                    };
                    dst.copy_from_slice(src);
                    if self.cfg.framing == Framing::Full {
                        self.hasher.update(src);
                    }
                    self.filled += n;
                    pos += n;
                    if self.filled == self.need {
                        if self.cfg.framing == Framing::Full {
                            self.state = State::Crc;
                        } else if let Err(e) = self.finish() {
                            return self.fail(e);
                        }
                    }
                }
                State::Crc => {
                    let n = (4 - self.crc_len).min(rest.len());
                    if let (Some(dst), Some(src)) = (self.crc.get_mut(self.crc_len..self.crc_len + n), rest.get(..n)) {
                        dst.copy_from_slice(src);
                    }
                    self.crc_len += n;
                    pos += n;
                    if self.crc_len == 4 {
                        let got = u32::from_le_bytes(self.crc);
                        if got != self.hasher.clone().finalize() {
                            return self.fail(TransportError::BadCrc);
                        }
                        self.seq = self.seq.wrapping_add(1);
                        if let Err(e) = self.finish() {
                            return self.fail(e);
                        }
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: TransportError) -> Result<usize, TransportError> {
        warn!("transport: fatal framing error");
        self.state = State::Failed(e);
        Err(e)
    }

    fn reset_frame(&mut self) {
        self.state = State::Header;
        self.hdr_len = 0;
        self.filled = 0;
        self.need = 0;
        self.quick_ack = false;
        self.crc_len = 0;
        self.open_ended = false;
    }

    /// Total header length once `have` bytes of it are known (the abridged header grows after its first byte).
    fn header_len(&self, have: usize) -> usize {
        match self.cfg.framing {
            Framing::Abridged => {
                let Some(&b) = self.hdr.first().filter(|_| have > 0) else {
                    return 1;
                };
                if (self.cfg.role == Role::Client && b & 0x80 != 0) || b & 0x7f == 0x7f {
                    4
                } else {
                    1
                }
            }
            Framing::Intermediate | Framing::PaddedIntermediate => 4,
            Framing::Full => 8,
        }
    }

    fn parse_header(&mut self) -> Result<(), TransportError> {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = self.hdr;
        let client = self.cfg.role == Role::Client;
        let len: u32 = match self.cfg.framing {
            Framing::Abridged => {
                if client && b0 & 0x80 != 0 {
                    // The server's quick-ack token, byte-swapped: it arrives big-endian.
                    self.state = State::Ready(Ready::QuickAck(u32::from_be_bytes([b0, b1, b2, b3])));
                    return Ok(());
                }
                self.quick_ack = b0 & 0x80 != 0;
                let words = if b0 & 0x7f == 0x7f {
                    u32::from_le_bytes([b1, b2, b3, 0])
                } else {
                    u32::from(b0 & 0x7f)
                };
                if words == 0 {
                    return Err(TransportError::ZeroLength);
                }
                words * 4
            }
            Framing::Intermediate | Framing::PaddedIntermediate => {
                let raw = u32::from_le_bytes([b0, b1, b2, b3]);
                if raw & 0x8000_0000 != 0 {
                    if client {
                        self.state = State::Ready(Ready::QuickAck(raw));
                        return Ok(());
                    }
                    self.quick_ack = true;
                }
                let len = raw & 0x7fff_ffff;
                if len == 0 {
                    return Err(TransportError::ZeroLength);
                }
                if len as usize > self.max_payload() {
                    return Err(TransportError::FrameTooLarge { declared: len });
                }
                if len < 4 || (self.cfg.framing == Framing::Intermediate && !len.is_multiple_of(4)) {
                    return Err(TransportError::InvalidLength { declared: len });
                }
                len
            }
            Framing::Full => {
                let total = u32::from_le_bytes([b0, b1, b2, b3]);
                let seq = u32::from_le_bytes([b4, b5, b6, b7]);
                let payload = total.saturating_sub(FULL_OVERHEAD);
                if total == FULL_OVERHEAD {
                    return Err(TransportError::ZeroLength);
                }
                if payload as usize > self.max_payload() {
                    return Err(TransportError::FrameTooLarge { declared: payload });
                }
                if total < FULL_OVERHEAD + 4 || !payload.is_multiple_of(4) {
                    return Err(TransportError::InvalidLength { declared: payload });
                }
                if seq != self.seq {
                    return Err(TransportError::BadSeqno {
                        expected: self.seq,
                        got: seq,
                    });
                }
                self.hasher = crc32fast::Hasher::new();
                self.hasher.update(&self.hdr);
                payload
            }
        };
        if len as usize > self.max_payload() {
            return Err(TransportError::FrameTooLarge { declared: len });
        }
        // With `alloc` the buffer grows to the frame now, before a payload byte arrives; `false` only when the
        // allocator refused.
        if !self.buf.reserve(len as usize, 0) {
            return Err(TransportError::FrameTooLarge { declared: len });
        }
        self.need = len as usize;
        self.filled = 0;
        self.state = State::Body;
        Ok(())
    }

    /// Classifies a complete payload: short ones are error codes (client role only), the rest packets.
    fn finish(&mut self) -> Result<usize, TransportError> {
        let short = match self.cfg.framing {
            Framing::PaddedIntermediate => self.filled < MIN_PADDED_PACKET,
            _ => self.filled == 4,
        };
        if !short {
            self.state = State::Ready(Ready::Packet);
            return Ok(0);
        }
        let declared = len_u32(self.filled);
        match (self.cfg.role, self.buf.as_slice().first_chunk::<4>()) {
            (Role::Client, Some(code)) if i32::from_le_bytes(*code) < 0 => {
                self.state = State::Ready(Ready::Error(i32::from_le_bytes(*code)));
                Ok(0)
            }
            _ => Err(TransportError::InvalidLength { declared }),
        }
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How an [`Encoder`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EncoderConfig {
    /// The framing.
    pub framing: Framing,
    /// Which end sends.
    pub role: Role,
    /// Padded intermediate only: the largest number of random padding bytes added to a frame (clamped to 15).
    /// The default is 15 for a client (the spec's range, best size shaping, docs/CHECKLIST.md item 10) and 3 for a
    /// server, because Telethon strips at most 3 bytes of transport padding (INTEROP.md).
    pub max_padding: u8,
}

impl EncoderConfig {
    /// A client writing client→server frames.
    pub const fn client(framing: Framing) -> Self {
        EncoderConfig {
            framing,
            role: Role::Client,
            max_padding: MAX_TRANSPORT_PADDING,
        }
    }

    /// A server writing server→client frames.
    pub const fn server(framing: Framing) -> Self {
        EncoderConfig {
            framing,
            role: Role::Server,
            max_padding: 3,
        }
    }

    /// The same configuration with another padding maximum (clamped to 15).
    pub const fn with_max_padding(mut self, max_padding: u8) -> Self {
        self.max_padding = if max_padding > MAX_TRANSPORT_PADDING {
            MAX_TRANSPORT_PADDING
        } else {
            max_padding
        };
        self
    }
}

/// Writes frames of one direction of one connection into caller buffers. Holds only the full transport's seqno.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encoder {
    cfg: EncoderConfig,
    seq: u32,
}

impl Encoder {
    /// An encoder at the start of a stream.
    pub const fn new(cfg: EncoderConfig) -> Self {
        let max_padding = if cfg.max_padding > MAX_TRANSPORT_PADDING {
            MAX_TRANSPORT_PADDING
        } else {
            cfg.max_padding
        };
        Encoder {
            cfg: EncoderConfig { max_padding, ..cfg },
            seq: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// The marker a client sends once before its first frame on a plain connection (not under obfuscation, where
    /// the init's protocol tag replaces it). Empty for a server and for `Full`.
    pub fn init_bytes(&self) -> &'static [u8] {
        match self.cfg.role {
            Role::Client => self.cfg.framing.init_bytes(),
            Role::Server => &[],
        }
    }

    fn header_len(&self, payload_len: usize) -> Result<usize, EncodeError> {
        let aligned = payload_len > 0 && payload_len.is_multiple_of(4);
        match self.cfg.framing {
            Framing::Abridged if aligned && payload_len <= ABRIDGED_MAX => {
                Ok(if payload_len / 4 < 0x7f { 1 } else { 4 })
            }
            Framing::Intermediate | Framing::PaddedIntermediate if aligned && payload_len <= INTERMEDIATE_MAX - 15 => {
                Ok(4)
            }
            Framing::Full if aligned && payload_len <= (u32::MAX - FULL_OVERHEAD) as usize => Ok(8),
            _ => Err(EncodeError::InvalidPayload),
        }
    }

    /// The size `out` must have for [`encode`](Self::encode) of a `payload_len`-byte payload. Exact for every
    /// framing except padded intermediate, where it includes the maximum padding (the actual padding is drawn
    /// only once the buffer is known to be large enough, so a too-small buffer consumes no randomness).
    pub fn max_encoded_len(&self, payload_len: usize) -> Result<usize, EncodeError> {
        let hdr = self.header_len(payload_len)?;
        let tail = match self.cfg.framing {
            Framing::PaddedIntermediate => usize::from(self.cfg.max_padding),
            Framing::Full => 4,
            _ => 0,
        };
        Ok(hdr + payload_len + tail)
    }

    /// Frames `payload` (a whole MTProto packet, a non-empty multiple of 4 bytes) into `out`; returns the bytes
    /// written. `quick_ack` asks the server for a quick ack (client role; not on the full transport). The RNG is
    /// used only for padded intermediate padding. On error nothing is written and no state changes.
    pub fn encode<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        if quick_ack && (self.cfg.role == Role::Server || self.cfg.framing == Framing::Full) {
            return Err(EncodeError::Unsupported);
        }
        let required = self.max_encoded_len(payload.len())?;
        if out.len() < required {
            return Err(EncodeError::BufferTooSmall { required });
        }
        let pad = self.draw_padding(rng);
        self.write(payload, quick_ack, pad, |tail| rng.fill_bytes(tail), out)
    }

    /// The room [`encode_in_place`](Self::encode_in_place) wants before the payload: the longest header of the
    /// framing (8 bytes on `Full`, 4 otherwise).
    pub const fn headroom(&self) -> usize {
        match self.cfg.framing {
            Framing::Full => 8,
            _ => 4,
        }
    }

    /// Frames a payload the caller already wrote at `out[headroom()..headroom() + payload_len]`, so a packet
    /// sealed straight into the socket buffer is never copied: the header goes before it (a 1-byte abridged header
    /// moves the payload down by 3 bytes; such payloads are at most 504 bytes), the padding or CRC after it.
    /// Returns the frame's length, from `out[0]`. The same checks and errors as [`encode`](Self::encode), with
    /// `out` needing `headroom()` bytes more than the header takes; on error nothing changes.
    pub fn encode_in_place<R: CryptoRng + ?Sized>(
        &mut self,
        payload_len: usize,
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        if quick_ack && (self.cfg.role == Role::Server || self.cfg.framing == Framing::Full) {
            return Err(EncodeError::Unsupported);
        }
        let hdr = self.header_len(payload_len)?;
        let room = self.headroom();
        let required = self.max_encoded_len(payload_len)? - hdr + room;
        if out.len() < required {
            return Err(EncodeError::BufferTooSmall { required });
        }
        let pad = self.draw_padding(rng);
        if hdr != room {
            out.copy_within(room..room + payload_len, hdr);
        }
        self.frame(hdr, payload_len, quick_ack, pad, |tail| rng.fill_bytes(tail), out)
    }

    /// The padded-intermediate padding length of the next frame (0 on other framings).
    fn draw_padding<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> usize {
        match self.cfg.framing {
            Framing::PaddedIntermediate if self.cfg.max_padding > 0 => {
                (rng.next_u32() % (u32::from(self.cfg.max_padding) + 1)) as usize
            }
            _ => 0,
        }
    }

    /// Writes one frame; `fill_padding` fills the padded-intermediate tail (which is empty when `pad` is 0).
    fn write(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        pad: usize,
        fill_padding: impl FnOnce(&mut [u8]),
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let len = payload.len();
        let hdr_len = self.header_len(len)?;
        let body = out.get_mut(hdr_len..hdr_len + len).ok_or(EncodeError::BufferTooSmall {
            required: hdr_len + len,
        })?;
        body.copy_from_slice(payload);
        self.frame(hdr_len, len, quick_ack, pad, fill_padding, out)
    }

    /// Writes the header before, and the padding or CRC after, a `len`-byte payload already at `out[hdr_len..]`.
    fn frame(
        &mut self,
        hdr_len: usize,
        len: usize,
        quick_ack: bool,
        pad: usize,
        fill_padding: impl FnOnce(&mut [u8]),
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let qa = if quick_ack { 0x80u8 } else { 0 };
        let total = hdr_len + len + pad + if self.cfg.framing == Framing::Full { 4 } else { 0 };
        let frame = out
            .get_mut(..total)
            .ok_or(EncodeError::BufferTooSmall { required: total })?;
        let (hdr, rest) = frame.split_at_mut(hdr_len);
        let (body, tail) = rest.split_at_mut(len);
        match self.cfg.framing {
            Framing::Abridged => {
                let words = (len / 4) as u32;
                if let [b] = hdr {
                    *b = words as u8 | qa;
                } else {
                    let [w0, w1, w2, _] = words.to_le_bytes();
                    hdr.copy_from_slice(&[0x7f | qa, w0, w1, w2]);
                }
            }
            Framing::Intermediate | Framing::PaddedIntermediate => {
                let mut v = (len + pad) as u32;
                if quick_ack {
                    v |= 0x8000_0000;
                }
                hdr.copy_from_slice(&v.to_le_bytes());
                fill_padding(tail);
            }
            Framing::Full => {
                let mut h = [0u8; 8];
                let (l, s) = h.split_at_mut(4);
                l.copy_from_slice(&((len as u32) + FULL_OVERHEAD).to_le_bytes());
                s.copy_from_slice(&self.seq.to_le_bytes());
                hdr.copy_from_slice(&h);
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&h);
                hasher.update(body);
                tail.copy_from_slice(&hasher.finalize().to_le_bytes());
                self.seq = self.seq.wrapping_add(1);
            }
        }
        Ok(total)
    }

    /// Server role: writes the quick-ack `token` (its top bit is forced on) as the spec's bare 4-byte packet:
    /// byte-swapped on abridged, little-endian on (padded) intermediate, without padding. Not on the full
    /// transport, which has no quick acks.
    pub fn encode_quick_ack(&self, token: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.cfg.role != Role::Server || self.cfg.framing == Framing::Full {
            return Err(EncodeError::Unsupported);
        }
        let dst = out.get_mut(..4).ok_or(EncodeError::BufferTooSmall { required: 4 })?;
        let token = token | 0x8000_0000;
        dst.copy_from_slice(&match self.cfg.framing {
            Framing::Abridged => token.to_be_bytes(),
            _ => token.to_le_bytes(),
        });
        Ok(4)
    }

    /// Server role: writes a transport error frame carrying the negative `code` (−404, −429, −444, ...), with no
    /// padding. On the full transport it takes the next seqno.
    pub fn encode_error(&mut self, code: i32, out: &mut [u8]) -> Result<usize, EncodeError> {
        if self.cfg.role != Role::Server || code >= 0 {
            return Err(EncodeError::Unsupported);
        }
        let body = code.to_le_bytes();
        let hdr = self.header_len(4)?;
        let required = hdr + 4 + if self.cfg.framing == Framing::Full { 4 } else { 0 };
        if out.len() < required {
            return Err(EncodeError::BufferTooSmall { required });
        }
        self.write(&body, false, 0, |tail| tail.fill(0), out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]
    use super::*;

    struct Ctr(u32);
    impl rand_core::TryRng for Ctr {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0 = self.0.wrapping_add(1);
            Ok(self.0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.try_next_u32()?))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for b in dst {
                *b = self.try_next_u32()? as u8;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Ctr {}

    #[test]
    fn encode_in_place_writes_the_bytes_encode_writes() {
        for framing in [
            Framing::Abridged,
            Framing::Intermediate,
            Framing::PaddedIntermediate,
            Framing::Full,
        ] {
            for len in [4usize, 8, 500, 504, 508, 512, 4096] {
                for qa in [false, true] {
                    if qa && framing == Framing::Full {
                        continue;
                    }
                    let mut payload = [0u8; 4096];
                    for (i, p) in payload.iter_mut().enumerate() {
                        *p = (i * 7) as u8;
                    }
                    let payload = &payload[..len];
                    let mut a = Encoder::new(EncoderConfig::client(framing));
                    let mut b = a.clone();
                    let mut want = [0u8; 4096 + 32];
                    let n = a.encode(payload, qa, &mut Ctr(3), &mut want).unwrap();
                    let mut got = [0xaau8; 4096 + 32];
                    let room = b.headroom();
                    got[room..room + len].copy_from_slice(payload);
                    let m = b.encode_in_place(len, qa, &mut Ctr(3), &mut got).unwrap();
                    assert_eq!(&got[..m], &want[..n], "{framing:?} len {len} quick ack {qa}");
                    // Too small by one byte: refused, nothing changes (the full framing's seqno included).
                    let required = b.max_encoded_len(len).unwrap() - b.header_len(len).unwrap() + room;
                    let mut short = [0u8; 4096 + 32];
                    let short = &mut short[..required - 1];
                    let before = b.clone();
                    assert!(matches!(
                        b.encode_in_place(len, qa, &mut Ctr(3), short),
                        Err(EncodeError::BufferTooSmall { .. })
                    ));
                    assert_eq!(b, before);
                }
            }
        }
    }

    #[test]
    fn wanted_never_crosses_a_boundary() {
        let mut enc = Encoder::new(EncoderConfig::client(Framing::Full));
        let mut out = [0u8; 64];
        let n = enc.encode(&[7u8; 8], false, &mut Ctr(0), &mut out).unwrap();
        let m = enc.encode(&[9u8; 8], false, &mut Ctr(0), &mut out[n..]).unwrap();
        let mut dec = FrameDecoder::<64>::new(DecoderConfig::server(Framing::Full));
        let mut pos = 0;
        let mut frames = 0;
        while pos < n + m {
            let w = dec.wanted();
            assert!(w > 0);
            pos += dec.feed(&out[pos..(pos + w).min(n + m)]).unwrap();
            if let Some(Frame::Packet { data, .. }) = dec.next_frame() {
                frames += 1;
                assert_eq!(data.len(), 8);
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn error_frames_only_from_server() {
        let mut enc = Encoder::new(EncoderConfig::client(Framing::Intermediate));
        assert_eq!(enc.encode_error(-404, &mut [0; 16]), Err(EncodeError::Unsupported));
        let mut enc = Encoder::new(EncoderConfig::server(Framing::Intermediate));
        assert_eq!(enc.encode_error(404, &mut [0; 16]), Err(EncodeError::Unsupported));
        assert_eq!(
            enc.encode_error(-404, &mut [0; 7]),
            Err(EncodeError::BufferTooSmall { required: 8 })
        );
    }
}
