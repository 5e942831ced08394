//! The [`Session`] facade of STYLE.md section 4: one encrypted session ([`Engine`]) over one transport connection
//! (a framing, optionally obfuscated), driven by the host through the run-loop verbs.
//!
//! Contract: after any `handle_*`, `send*` or `reconnect`, drain [`Session::poll_transmit`] until `Ok(None)` and
//! [`Session::poll_event`] until `None`; then wait for the socket, [`Session::poll_timeout`] or the application.
//! `handle_input` takes at most one frame per call and returns how many bytes it consumed; it consumes nothing
//! while an event that borrows the receive buffers is pending (drain events first).
//!
//! A client without a stored key runs the handshake first; the handshake machines land separately
//! (`wip-handshake`) and plug in ahead of the engine: `Session::client` takes the key the handshake produced.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use rand_core::CryptoRng;

use super::engine::{Engine, EngineConfig, MsgKind, Stats};
use super::event::{BufferTooSmall, Event, SendError};
use super::msg_id::{Clock, MsgId, Side};
use crate::crypto::auth_key::AuthKey;
use crate::time::{Instant, UnixTime};
use crate::transport::obfuscated::{INIT_LEN, ObfuscatedCodec};
use crate::transport::{
    DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder, Framing, TransportError, strip_padding,
};

/// The transport a session speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TransportConfig {
    /// The framing.
    pub framing: Framing,
    /// Wrap it in the obfuscated transport (64-byte init, AES-CTR both ways); not with `Full`.
    pub obfuscated: bool,
    /// Client, obfuscated: the DC id carried in the init.
    pub dc_id: Option<i16>,
}

impl TransportConfig {
    /// Plain intermediate framing.
    pub const INTERMEDIATE: TransportConfig = TransportConfig {
        framing: Framing::Intermediate,
        obfuscated: false,
        dc_id: None,
    };
}

/// Everything a session needs besides the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SessionConfig {
    /// The engine's tunables and limits.
    pub engine: EngineConfig,
    /// The transport.
    pub transport: TransportConfig,
    /// The host's idea of Unix time at construction (an RTC, NTP...); corrected by the server. Default: 0.
    pub unix_time_hint: Option<UnixTime>,
    /// Client: the server salt to start with (0 if unknown: the DC answers `bad_server_salt`).
    pub salt: u64,
}

impl SessionConfig {
    /// Defaults over plain intermediate framing.
    pub const DEFAULT: SessionConfig = SessionConfig {
        engine: EngineConfig::DEFAULT,
        transport: TransportConfig::INTERMEDIATE,
        unix_time_hint: None,
        salt: 0,
    };
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig::DEFAULT
    }
}

/// A fatal, sticky session error: close the connection (and, for a client, reconnect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The transport stream is broken (bad length, CRC, marker, obfuscation tag...).
    Transport(TransportError),
    /// The session was closed.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Closed => f.write_str("session closed"),
        }
    }
}

impl core::error::Error for Error {}

// Both live variants hold an RX-sized decoder; the empty one is transient. There is no heap to box into.
#[allow(clippy::large_enum_variant)]
enum Codec<const RX: usize> {
    Plain {
        enc: Encoder,
        dec: FrameDecoder<RX>,
        marker_sent: bool,
    },
    Obfuscated(ObfuscatedCodec<RX>),
    /// A client's obfuscated connection before its init is drawn (in `poll_transmit`, which has the RNG).
    ObfuscatedPending,
}

/// An encrypted MTProto session over one transport connection. See the module docs for the run-loop contract.
pub struct Session<const RX: usize = 16_384, const TX: usize = 16_384, const MSGS: usize = 32> {
    engine: Engine<RX, TX, MSGS>,
    transport: TransportConfig,
    codec: Codec<RX>,
    scratch: [u8; RX],
    quick_acks: heapless::Deque<u32, 8>,
    error: Option<Error>,
    frames_dropped: u64,
}

/// A session sized for a microcontroller: 4 KiB frames, 4 KiB of resend arena, 8 messages in flight.
pub type SessionSmall = Session<4096, 4096, 8>;
/// A session sized for a host: 64 KiB frames, 256 KiB of resend arena, 64 messages in flight.
pub type SessionLarge = Session<65_536, 262_144, 64>;

impl<const RX: usize, const TX: usize, const MSGS: usize> fmt::Debug for Session<RX, TX, MSGS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("engine", &self.engine)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Session<RX, TX, MSGS> {
    /// A client session under `key` (stored, or produced by the handshake).
    pub fn client<R: CryptoRng + ?Sized>(cfg: SessionConfig, key: AuthKey, now: Instant, rng: &mut R) -> Self {
        let clock = Clock::from_unix_hint(now, cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let engine = Engine::client(cfg.engine, key, cfg.salt, clock, now, rng);
        Self::wrap(engine, cfg.transport, Side::Client)
    }

    /// A DC session for a connection whose client uses `key` (the host looked it up by its id).
    pub fn server<R: CryptoRng + ?Sized>(cfg: SessionConfig, key: AuthKey, now: Instant, rng: &mut R) -> Self {
        let clock = Clock::from_unix_hint(now, cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let engine = Engine::server(cfg.engine, key, clock, now, rng);
        Self::wrap(engine, cfg.transport, Side::Server)
    }

    fn wrap(engine: Engine<RX, TX, MSGS>, transport: TransportConfig, side: Side) -> Self {
        Session {
            engine,
            transport,
            codec: Self::new_codec(transport, side),
            scratch: [0; RX],
            quick_acks: heapless::Deque::new(),
            error: None,
            frames_dropped: 0,
        }
    }

    fn new_codec(t: TransportConfig, side: Side) -> Codec<RX> {
        match (side, t.obfuscated) {
            (Side::Client, false) => Codec::Plain {
                enc: Encoder::new(EncoderConfig::client(t.framing)),
                dec: FrameDecoder::new(DecoderConfig::client(t.framing).with_max_frame(RX)),
                marker_sent: false,
            },
            (Side::Server, false) => Codec::Plain {
                enc: Encoder::new(EncoderConfig::server(t.framing)),
                dec: FrameDecoder::new(DecoderConfig::server(t.framing).with_max_frame(RX)),
                marker_sent: true,
            },
            (Side::Client, true) => Codec::ObfuscatedPending,
            (Side::Server, true) => Codec::Obfuscated(ObfuscatedCodec::server(None, RX)),
        }
    }

    /// The engine (statistics, clock, salt...).
    pub fn engine(&self) -> &Engine<RX, TX, MSGS> {
        &self.engine
    }

    /// The engine, mutably (tests and advanced hosts).
    pub fn engine_mut(&mut self) -> &mut Engine<RX, TX, MSGS> {
        &mut self.engine
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.engine.stats()
    }

    /// The auth key.
    pub fn auth_key(&self) -> &AuthKey {
        self.engine.auth_key()
    }

    /// Received frames dropped by the engine (they changed nothing).
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped
    }

    /// Feeds received bytes; returns how many were consumed (at most one frame's worth). Call again with the rest.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.engine.must_drain() || bytes.is_empty() {
            return Ok(0);
        }
        let framing = self.transport.framing;
        let res = match &mut self.codec {
            Codec::Plain { dec, .. } => dec.decode(bytes),
            Codec::Obfuscated(c) => c.decode(bytes),
            Codec::ObfuscatedPending => return Ok(0),
        };
        let (n, frame) = match res {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(Error::Transport(e));
                return Err(Error::Transport(e));
            }
        };
        match frame {
            Some(Frame::Packet { data, quick_ack }) => {
                let data = if framing == Framing::PaddedIntermediate {
                    strip_padding(framing, data).unwrap_or(data)
                } else {
                    data
                };
                match self.engine.handle_packet(now, data) {
                    Ok(token) => {
                        if quick_ack && self.engine.side() == Side::Server {
                            if self.quick_acks.is_full() {
                                let _ = self.quick_acks.pop_front();
                            }
                            let _ = self.quick_acks.push_back(token);
                        }
                    }
                    Err(_) => self.frames_dropped += 1,
                }
            }
            Some(Frame::QuickAck(token)) => self.engine.handle_quick_ack(token),
            Some(Frame::TransportError(code)) => self.engine.handle_transport_error(code),
            None => {}
        }
        Ok(n)
    }

    /// Runs the timers due at `now` (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.engine.handle_timeout(now);
        Ok(())
    }

    /// The size `out` must have for [`poll_transmit`](Self::poll_transmit).
    pub fn min_transmit_len(&self) -> usize {
        let p = self.engine.min_out_len();
        // Worst case over framings: 4-byte header, 15 bytes of padding, 4-byte CRC; or the 64-byte init.
        (p + 4 + 15 + 4).max(INIT_LEN)
    }

    /// Writes the next bytes to send into `out`: the connection's init or marker, a quick-ack token (DC), or one
    /// framed packet. `Ok(None)` when there is nothing to send.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        let required = self.min_transmit_len();
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        if self.error.is_some() || self.engine.is_closed() {
            return Ok(None);
        }
        match &mut self.codec {
            Codec::ObfuscatedPending => {
                match ObfuscatedCodec::client(self.transport.framing, self.transport.dc_id, None, RX, rng) {
                    Ok((codec, init)) => {
                        if let Some(dst) = out.get_mut(..INIT_LEN) {
                            dst.copy_from_slice(&init);
                        }
                        self.codec = Codec::Obfuscated(codec);
                        return Ok(Some(INIT_LEN));
                    }
                    Err(_) => {
                        self.error = Some(Error::Transport(TransportError::BadTag));
                        return Ok(None);
                    }
                }
            }
            Codec::Plain { enc, marker_sent, .. } if !*marker_sent => {
                *marker_sent = true;
                let m = enc.init_bytes();
                if !m.is_empty() {
                    if let Some(dst) = out.get_mut(..m.len()) {
                        dst.copy_from_slice(m);
                    }
                    return Ok(Some(m.len()));
                }
            }
            _ => {}
        }
        if let Some(token) = self.quick_acks.pop_front() {
            let r = match &mut self.codec {
                Codec::Plain { enc, .. } => enc.encode_quick_ack(token, out),
                Codec::Obfuscated(c) => c.encode_quick_ack(token, out),
                Codec::ObfuscatedPending => return Ok(None),
            };
            if let Ok(n) = r {
                return Ok(Some(n));
            }
        }
        let pkt = self.engine.poll_packet(now, rng, &mut self.scratch)?;
        let Some(pkt) = pkt else { return Ok(None) };
        let payload = self.scratch.get(..pkt.len).unwrap_or(&[]);
        let qa = pkt.quick_ack && self.transport.framing != Framing::Full;
        let r = match &mut self.codec {
            Codec::Plain { enc, .. } => enc.encode(payload, qa, rng, out),
            Codec::Obfuscated(c) => c.encode(payload, qa, rng, out),
            Codec::ObfuscatedPending => return Ok(None),
        };
        match r {
            Ok(n) => Ok(Some(n)),
            // Cannot happen with `out` at least `min_transmit_len`; the packet counts as lost and is resent.
            Err(_) => Ok(None),
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        self.engine.poll_event()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            None
        } else {
            self.engine.poll_timeout()
        }
    }

    /// Queues a message; returns its msg_id (every [`MsgKind::Query`] ends in exactly one event naming it).
    pub fn send(&mut self, now: Instant, body: &[u8], kind: MsgKind) -> Result<MsgId, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        self.engine.send(now, body, kind)
    }

    /// DC: answers a request with `rpc_result`.
    pub fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
        self.engine.answer(now, req, result)
    }

    /// DC: answers a request with `rpc_error`.
    pub fn answer_error(&mut self, now: Instant, req: MsgId, code: i32, message: &[u8]) -> Result<MsgId, SendError> {
        self.engine.answer_error(now, req, code, message)
    }

    /// A new transport connection under the same session: the framing restarts (a new init or marker) and every
    /// unacknowledged message is resent. Clears a transport error.
    pub fn reconnect(&mut self, now: Instant) {
        self.codec = Self::new_codec(self.transport, self.engine.side());
        self.quick_acks.clear();
        self.error = None;
        self.engine.reconnect(now);
    }

    /// Fails every outstanding query with `Closed` (events follow) and stops sending.
    pub fn close(&mut self) {
        self.engine.close();
    }
}
