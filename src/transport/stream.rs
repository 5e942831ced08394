//! One connection's transport, both directions: a framing ([`FrameDecoder`] and [`Encoder`]), optionally inside
//! the obfuscated transport ([`ObfuscatedCodec`]), behind one type, so a host or a session drives any of the eight
//! TCP modes the same way.
//!
//! Bytes from the socket go into [`Codec::decode`], which returns at most one [`Frame`] borrowing the codec's
//! receive buffer, the only copy of a received frame a connection holds. Outbound, the sealer writes a packet at
//! `out[Codec::headroom()..]` of the socket buffer and [`Codec::encode_in_place`] frames (and encrypts) it there,
//! so nothing is copied on the way out either; [`Codec::encode`] frames a payload that lives elsewhere.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;

use super::obfuscated::{INIT_LEN, InitError, ObfuscatedCodec, ProxySecret};
use super::{DecoderConfig, EncodeError, Encoder, EncoderConfig, Frame, FrameDecoder, Framing, Role, TransportError};

/// The transport a connection speaks.
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

/// One connection's transport codec, receive buffer of `N` bytes (see the module docs).
// Both live variants hold an N-byte decoder; the pending one is transient. There is no heap to box into.
#[allow(clippy::large_enum_variant)]
pub enum Codec<const N: usize> {
    /// A framing in the clear; a client sends its marker first.
    Plain {
        /// Outbound framing.
        enc: Encoder,
        /// Inbound framing and the receive buffer.
        dec: FrameDecoder<N>,
        /// The marker went out (always true on a server, which sends none).
        opened: bool,
    },
    /// The obfuscated transport.
    Obfuscated(ObfuscatedCodec<N>),
    /// One packet per message of the carriage below (MTProto over HTTP, [`crate::carriage::layer`]): no framing,
    /// no marker; the carriage tells where each packet starts and ends ([`Codec::packets_mut`]). Packets land in
    /// this decoder's receive buffer, the only copy, as on TCP.
    Packets {
        /// The receive buffer; driven by `begin_packet` / `end_packet` instead of headers.
        dec: FrameDecoder<N>,
    },
    /// A client's obfuscated connection before its init is drawn ([`Codec::poll_opening`] has the RNG).
    ObfuscatedPending {
        /// The framing inside.
        framing: Framing,
        /// The DC id for the init.
        dc_id: Option<i16>,
        /// The MTProxy secret, if any.
        secret: Option<ProxySecret>,
    },
}

impl<const N: usize> core::fmt::Debug for Codec<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Codec::Plain { enc, opened, .. } => f
                .debug_struct("Codec::Plain")
                .field("framing", &enc.config().framing)
                .field("opened", opened)
                .finish_non_exhaustive(),
            Codec::Obfuscated(c) => f.debug_tuple("Codec::Obfuscated").field(c).finish(),
            Codec::Packets { .. } => f.debug_struct("Codec::Packets").finish_non_exhaustive(),
            Codec::ObfuscatedPending { framing, dc_id, .. } => f
                .debug_struct("Codec::ObfuscatedPending")
                .field("framing", framing)
                .field("dc_id", dc_id)
                .finish_non_exhaustive(),
        }
    }
}

impl<const N: usize> Codec<N> {
    /// A codec at the start of a connection; inbound frames are limited to `N` bytes. A server's obfuscated codec
    /// learns its framing from the client's init (`cfg.framing` is then unused).
    pub fn new(cfg: TransportConfig, role: Role, secret: Option<ProxySecret>) -> Self {
        match (role, cfg.obfuscated) {
            (Role::Client, false) => Codec::Plain {
                enc: Encoder::new(EncoderConfig::client(cfg.framing)),
                dec: FrameDecoder::new(DecoderConfig::client(cfg.framing).with_max_frame(N)),
                opened: false,
            },
            (Role::Server, false) => Codec::Plain {
                enc: Encoder::new(EncoderConfig::server(cfg.framing)),
                dec: FrameDecoder::new(DecoderConfig::server(cfg.framing).with_max_frame(N)),
                opened: true,
            },
            (Role::Client, true) => Codec::ObfuscatedPending {
                framing: cfg.framing,
                dc_id: cfg.dc_id,
                secret,
            },
            (Role::Server, true) => Codec::Obfuscated(ObfuscatedCodec::server(secret, N)),
        }
    }

    /// A codec of whole packets for a carriage that carries one packet per message (HTTP): inbound frames are
    /// limited to `N` bytes and bounded by the carriage ([`FrameDecoder::begin_packet`]); outbound packets go out
    /// as they are (no header room, no quick acks; an error code is its 4 bytes, which the carriage turns into a
    /// status).
    pub fn packets(role: Role) -> Self {
        let cfg = DecoderConfig {
            framing: Framing::Intermediate,
            role,
            max_frame: N,
            expect_marker: false,
        };
        Codec::Packets {
            dec: FrameDecoder::new(cfg),
        }
    }

    /// The receive buffer of a [`Codec::packets`] codec, for the carriage that bounds its packets.
    pub(crate) fn packets_mut(&mut self) -> Option<&mut FrameDecoder<N>> {
        match self {
            Codec::Packets { dec } => Some(dec),
            _ => None,
        }
    }

    /// Exactly how many stream bytes the codec takes before its next boundary (see [`FrameDecoder::wanted`]); a
    /// carriage that unwraps a stream hands it no more, so nothing unwrapped waits outside the codec.
    pub(crate) fn wanted(&self) -> usize {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.wanted(),
            Codec::Obfuscated(c) => c.wanted(),
            Codec::ObfuscatedPending { .. } => 0,
        }
    }

    /// Client: the bytes that open the connection, once, before any frame: the 64-byte obfuscated init (drawn from
    /// `rng`) or the framing's marker. `Ok(None)` once sent, for a server, and for `Full` (no marker). `out` must
    /// hold [`INIT_LEN`] bytes.
    pub fn poll_opening<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, InitError> {
        match self {
            Codec::ObfuscatedPending { framing, dc_id, secret } => {
                let dst = out
                    .get_mut(..INIT_LEN)
                    .ok_or(InitError::BufferTooSmall { required: INIT_LEN })?;
                let (codec, init) = ObfuscatedCodec::client(*framing, *dc_id, secret.take(), N, rng)?;
                dst.copy_from_slice(&init);
                *self = Codec::Obfuscated(codec);
                Ok(Some(INIT_LEN))
            }
            Codec::Plain { enc, opened, .. } if !*opened => {
                let m = enc.init_bytes();
                let dst = out
                    .get_mut(..m.len())
                    .ok_or(InitError::BufferTooSmall { required: m.len() })?;
                dst.copy_from_slice(m);
                *opened = true;
                Ok((!m.is_empty()).then_some(m.len()))
            }
            _ => Ok(None),
        }
    }

    /// Feeds received bytes and takes at most one frame: `Ok((consumed, frame))`. Consumes nothing before a
    /// client's opening was sent.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame<'_>>), TransportError> {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.decode(input),
            Codec::Obfuscated(c) => c.decode(input),
            Codec::ObfuscatedPending { .. } => Ok((0, None)),
        }
    }

    /// Feeds received bytes up to the end of one frame without taking it (see [`FrameDecoder::feed`]).
    pub(crate) fn feed(&mut self, input: &[u8]) -> Result<usize, TransportError> {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.feed(input),
            Codec::Obfuscated(c) => c.feed(input),
            Codec::ObfuscatedPending { .. } => Ok(0),
        }
    }

    /// Whether a decoded frame waits for [`next_frame`](Self::next_frame).
    pub(crate) fn has_frame(&self) -> bool {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.has_frame(),
            Codec::Obfuscated(c) => c.has_frame(),
            Codec::ObfuscatedPending { .. } => false,
        }
    }

    /// Takes the decoded frame, if one is complete.
    pub(crate) fn next_frame(&mut self) -> Option<Frame<'_>> {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.next_frame(),
            Codec::Obfuscated(c) => c.next_frame(),
            Codec::ObfuscatedPending { .. } => None,
        }
    }

    /// The room [`encode_in_place`](Self::encode_in_place) wants before the payload (see [`Encoder::headroom`]).
    pub fn headroom(&self) -> usize {
        match self {
            Codec::Plain { enc, .. } => enc.headroom(),
            Codec::Packets { .. } => 0,
            Codec::Obfuscated(c) => c.headroom(),
            Codec::ObfuscatedPending { framing, .. } => Encoder::new(EncoderConfig::client(*framing)).headroom(),
        }
    }

    /// Frames (and encrypts) a payload already written at `out[headroom()..]`; see [`Encoder::encode_in_place`].
    pub fn encode_in_place<R: CryptoRng + ?Sized>(
        &mut self,
        payload_len: usize,
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        match self {
            Codec::Plain { enc, .. } => enc.encode_in_place(payload_len, quick_ack, rng, out),
            // No framing: the packet is already where it goes. A quick ack has no place on a packet carriage.
            Codec::Packets { .. } => {
                if out.len() < payload_len {
                    return Err(EncodeError::BufferTooSmall { required: payload_len });
                }
                Ok(payload_len)
            }
            Codec::Obfuscated(c) => c.encode_in_place(payload_len, quick_ack, rng, out),
            Codec::ObfuscatedPending { .. } => Err(EncodeError::Unsupported),
        }
    }

    /// Frames (and encrypts) `payload` into `out`; see [`Encoder::encode`].
    pub fn encode<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        match self {
            Codec::Plain { enc, .. } => enc.encode(payload, quick_ack, rng, out),
            Codec::Packets { .. } => {
                let dst = out.get_mut(..payload.len()).ok_or(EncodeError::BufferTooSmall {
                    required: payload.len(),
                })?;
                dst.copy_from_slice(payload);
                Ok(payload.len())
            }
            Codec::Obfuscated(c) => c.encode(payload, quick_ack, rng, out),
            Codec::ObfuscatedPending { .. } => Err(EncodeError::Unsupported),
        }
    }

    /// Server: a quick-ack token; see [`Encoder::encode_quick_ack`].
    pub fn encode_quick_ack(&mut self, token: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Codec::Plain { enc, .. } => enc.encode_quick_ack(token, out),
            Codec::Packets { .. } => Err(EncodeError::Unsupported),
            Codec::Obfuscated(c) => c.encode_quick_ack(token, out),
            Codec::ObfuscatedPending { .. } => Err(EncodeError::Unsupported),
        }
    }

    /// Server: a transport error frame; see [`Encoder::encode_error`].
    pub fn encode_error(&mut self, code: i32, out: &mut [u8]) -> Result<usize, EncodeError> {
        match self {
            Codec::Plain { enc, .. } => enc.encode_error(code, out),
            Codec::Packets { .. } => {
                let dst = out
                    .first_chunk_mut::<4>()
                    .ok_or(EncodeError::BufferTooSmall { required: 4 })?;
                *dst = code.to_le_bytes();
                Ok(4)
            }
            Codec::Obfuscated(c) => c.encode_error(code, out),
            Codec::ObfuscatedPending { .. } => Err(EncodeError::Unsupported),
        }
    }

    /// The framing in use (a server's obfuscated codec knows it once the init arrived).
    pub fn framing(&self) -> Option<Framing> {
        match self {
            Codec::Plain { enc, .. } => Some(enc.config().framing),
            Codec::Packets { .. } => None,
            Codec::Obfuscated(c) => c.framing(),
            Codec::ObfuscatedPending { framing, .. } => Some(*framing),
        }
    }

    /// The obfuscated codec, once its init is drawn or expected.
    pub fn obfuscated_mut(&mut self) -> Option<&mut ObfuscatedCodec<N>> {
        match self {
            Codec::Obfuscated(c) => Some(c),
            _ => None,
        }
    }

    /// The obfuscated codec, once its init is drawn or expected.
    pub fn obfuscated(&self) -> Option<&ObfuscatedCodec<N>> {
        match self {
            Codec::Obfuscated(c) => Some(c),
            _ => None,
        }
    }

    /// The receive buffer while no frame is being received; the frame last taken is its first bytes (see
    /// [`FrameDecoder::idle_buf_mut`]). A connection parks that frame there while it waits for its host.
    pub(crate) fn idle_buf(&self) -> &[u8] {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.idle_buf(),
            Codec::Obfuscated(c) => c.idle_buf(),
            Codec::ObfuscatedPending { .. } => &[],
        }
    }

    /// See [`idle_buf`](Self::idle_buf).
    pub(crate) fn idle_buf_mut(&mut self) -> &mut [u8] {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.idle_buf_mut(),
            Codec::Obfuscated(c) => c.idle_buf_mut(),
            Codec::ObfuscatedPending { .. } => &mut [],
        }
    }

    /// With `alloc`: gives a large receive buffer's memory back while no frame is being received.
    pub fn release(&mut self) {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.release(),
            Codec::Obfuscated(c) => c.release(),
            Codec::ObfuscatedPending { .. } => {}
        }
    }

    /// Bytes of receive buffer held in memory now (`N` without `alloc`).
    pub fn buffer_footprint(&self) -> usize {
        match self {
            Codec::Plain { dec, .. } | Codec::Packets { dec } => dec.buffer_footprint(),
            Codec::Obfuscated(c) => c.buffer_footprint(),
            Codec::ObfuscatedPending { .. } => 0,
        }
    }
}
