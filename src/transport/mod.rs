//! MTProto TCP transports: abridged, intermediate, padded intermediate and full framings
//! (<https://core.telegram.org/mtproto/mtproto-transports>), the obfuscated transport on top of them, and a
//! server-side detector that tells them apart from the first bytes of a connection.
//!
//! Everything here is Sans-IO and allocation-free:
//! - [`FrameDecoder<N>`] turns a byte stream, delivered in pieces of any size (one byte at a time works), into
//!   [`Frame`]s. Its storage is an inline `[u8; N]`, so a session embeds it with a const-generic RX capacity. The
//!   declared length of every frame is checked against `min(max_frame, N)` **before** a single payload byte is
//!   buffered (docs/CHECKLIST.md items 1, 2, 4; attack B15).
//! - [`Encoder`] writes frames into a caller buffer, with an exact size known up front.
//! - [`obfuscated`] wraps both in AES-256-CTR (items 7, 8); [`detect`] classifies a new server connection;
//!   [`replay`] is the server's bounded memory of the inits it has seen (item 9).
//!
//! The quick-ack semantics differ by [`Role`]: a client *requests* a quick ack by setting the top bit of a length,
//! and the server *answers* with a bare 4-byte token whose top bit is set (byte-swapped on abridged). So a decoder
//! always knows which side of the connection it sits on.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

mod codec;
pub mod detect;
pub mod obfuscated;
pub mod replay;
mod stream;

pub use codec::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder};
pub use stream::{Codec, TransportConfig};

/// The four TCP framings of MTProto.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Framing {
    /// One length byte (payload/4), or `0x7f` and three little-endian bytes. Client marker `0xef`.
    Abridged,
    /// A 4-byte little-endian length. Client marker `0xeeeeeeee`.
    Intermediate,
    /// Intermediate with 0–15 random trailing bytes counted in the length. Client marker `0xdddddddd`.
    PaddedIntermediate,
    /// Length, sequence number, payload, CRC32. No marker.
    Full,
}

impl Framing {
    /// The bytes a client sends once, before anything else, on a non-obfuscated connection (empty for `Full`).
    pub const fn init_bytes(self) -> &'static [u8] {
        match self {
            Framing::Abridged => &[0xef],
            Framing::Intermediate => &[0xee; 4],
            Framing::PaddedIntermediate => &[0xdd; 4],
            Framing::Full => &[],
        }
    }

    /// The 4-byte protocol tag at offset 56 of an obfuscated init, or `None` for `Full` (which obfuscation
    /// does not carry).
    pub const fn obfuscation_tag(self) -> Option<u32> {
        match self {
            Framing::Abridged => Some(TAG_ABRIDGED),
            Framing::Intermediate => Some(TAG_INTERMEDIATE),
            Framing::PaddedIntermediate => Some(TAG_PADDED),
            Framing::Full => None,
        }
    }

    /// The framing an obfuscation protocol tag names.
    pub const fn from_obfuscation_tag(tag: u32) -> Option<Framing> {
        match tag {
            TAG_ABRIDGED => Some(Framing::Abridged),
            TAG_INTERMEDIATE => Some(Framing::Intermediate),
            TAG_PADDED => Some(Framing::PaddedIntermediate),
            _ => None,
        }
    }
}

/// Obfuscation protocol tag of the abridged framing.
pub const TAG_ABRIDGED: u32 = 0xefef_efef;
/// Obfuscation protocol tag (and plain marker) of the intermediate framing.
pub const TAG_INTERMEDIATE: u32 = 0xeeee_eeee;
/// Obfuscation protocol tag (and plain marker) of the padded intermediate framing.
pub const TAG_PADDED: u32 = 0xdddd_dddd;

/// Default `max_frame`: the largest payload a decoder accepts before even looking at its capacity. The
/// effective limit of a [`FrameDecoder<N>`] is `min(max_frame, N)`.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest transport padding the padded intermediate framing allows on receipt (and on send).
pub const MAX_TRANSPORT_PADDING: u8 = 15;

/// Which end a state machine plays, the same at every layer (re-exported as `crate::Role` and `session::Role`): of
/// a connection (a transport codec, a carriage), of the auth-key handshake, of an MTProto session (which end a
/// message comes from).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Role {
    /// The party that creates the auth key and sends queries. On the wire it may ask for quick acks and receives
    /// quick-ack tokens and transport error codes.
    Client,
    /// The DC. It sees quick-ack requests and sends quick-ack tokens and error codes.
    Server,
}

impl Role {
    /// The other end.
    pub const fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// A fatal framing error: the connection must be closed and the peer reconnected to (docs/CHECKLIST.md,
/// conventions). Decoders are sticky: once one is returned, every later call returns it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransportError {
    /// The declared payload length exceeds `min(max_frame, capacity)`; nothing was buffered.
    FrameTooLarge {
        /// The payload length the peer declared, in bytes.
        declared: u32,
    },
    /// A frame declared an empty payload.
    ZeroLength,
    /// A declared length that no valid frame can have (not a multiple of 4, below the minimum, or a short
    /// frame that is not a negative error code).
    InvalidLength {
        /// The payload length the peer declared, in bytes.
        declared: u32,
    },
    /// Full transport: the sequence number is not the next one expected.
    BadSeqno {
        /// The number this direction was due to carry.
        expected: u32,
        /// The number the frame carried.
        got: u32,
    },
    /// Full transport: the CRC32 does not match.
    BadCrc,
    /// The non-obfuscated connection did not start with the framing's marker bytes.
    BadMarker,
    /// The obfuscated init decrypted to an unknown protocol tag (wrong secret, probe or garbage).
    BadTag,
    /// The obfuscated init names a framing the configured secret does not allow (a `dd` secret requires padded
    /// intermediate).
    TagSecretMismatch,
}

impl TransportError {
    /// Every framing error is the peer's: the stream it sent is not a valid one ([`Fault::Peer`]).
    pub const fn fault(&self) -> Fault {
        Fault::Peer
    }
}

impl core::fmt::Display for TransportError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TransportError::FrameTooLarge { declared } => write!(f, "frame of {declared} bytes exceeds max_frame"),
            TransportError::ZeroLength => f.write_str("zero-length frame"),
            TransportError::InvalidLength { declared } => write!(f, "invalid frame length {declared}"),
            TransportError::BadSeqno { expected, got } => write!(f, "full transport seqno {got}, expected {expected}"),
            TransportError::BadCrc => f.write_str("full transport CRC32 mismatch"),
            TransportError::BadMarker => f.write_str("connection does not start with the transport marker"),
            TransportError::BadTag => f.write_str("obfuscated init carries an unknown protocol tag"),
            TransportError::TagSecretMismatch => f.write_str("obfuscated protocol tag not allowed by the secret"),
        }
    }
}

impl core::error::Error for TransportError {}

/// Why a frame could not be encoded. The output buffer and the encoder state are left untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// `out` is shorter than the frame needs.
    BufferTooSmall {
        /// The size `out` must have.
        required: usize,
    },
    /// The payload is empty, not a multiple of 4, or longer than the framing can declare.
    InvalidPayload,
    /// The operation does not exist for this framing or role (a server requesting a quick ack, a client sending
    /// a quick-ack token or an error code, a quick ack on the full transport, a non-negative error code).
    Unsupported,
}

impl EncodeError {
    /// Always the caller's ([`Fault::Host`]): a buffer too small, a payload the framing cannot carry, or a call the
    /// role does not have.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl core::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncodeError::BufferTooSmall { required } => write!(f, "output buffer too small, {required} bytes needed"),
            EncodeError::InvalidPayload => f.write_str("payload empty, unaligned or too long for the framing"),
            EncodeError::Unsupported => f.write_str("operation not supported by this framing or role"),
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why [`strip_padding`] refused a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PaddingError {
    /// Shorter than the 24-byte header of an encrypted packet (auth_key_id + msg_key).
    TooShort,
    /// `(len − 24) mod 16 != 0` on a framing that carries no transport padding.
    Misaligned,
}

impl PaddingError {
    /// The peer's ([`Fault::Peer`]): a packet whose length no padding explains.
    pub const fn fault(&self) -> Fault {
        Fault::Peer
    }
}

impl core::fmt::Display for PaddingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PaddingError::TooShort => f.write_str("encrypted packet shorter than 24 bytes"),
            PaddingError::Misaligned => f.write_str("encrypted packet not block aligned"),
        }
    }
}

impl core::error::Error for PaddingError {}

/// Returns the canonical body of an **encrypted** MTProto packet (auth_key_id ≠ 0) received on `framing`
/// (docs/CHECKLIST.md item 3).
///
/// An encrypted packet is auth_key_id (8) ‖ msg_key (16) ‖ AES-IGE ciphertext (a multiple of 16), so
/// `(len − 24) mod 16` bytes are transport padding. Only the padded intermediate framing may carry them, and this
/// strips them; on every other framing they are refused, so a packet has exactly one accepted encoding.
///
/// Do not call this on plaintext handshake packets (auth_key_id = 0): their length is `20 + body` and is not
/// block aligned. Their own `message_data_length` field delimits them, and any padded-intermediate tail is ignored
/// by the plaintext parser.
pub fn strip_padding(framing: Framing, packet: &[u8]) -> Result<&[u8], PaddingError> {
    let extra = packet.len().checked_sub(24).ok_or(PaddingError::TooShort)? % 16;
    match (framing, extra) {
        (_, 0) => Ok(packet),
        (Framing::PaddedIntermediate, n) => packet.get(..packet.len() - n).ok_or(PaddingError::TooShort),
        _ => Err(PaddingError::Misaligned),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tags_round_trip() {
        for f in [Framing::Abridged, Framing::Intermediate, Framing::PaddedIntermediate] {
            assert_eq!(Framing::from_obfuscation_tag(f.obfuscation_tag().unwrap()), Some(f));
        }
        assert_eq!(Framing::Full.obfuscation_tag(), None);
        assert_eq!(Framing::from_obfuscation_tag(0x1234_5678), None);
    }

    #[test]
    fn strip_padding_rules() {
        let p = [1u8; 24 + 32 + 5];
        assert_eq!(strip_padding(Framing::PaddedIntermediate, &p).unwrap().len(), 56);
        assert_eq!(strip_padding(Framing::Intermediate, &p), Err(PaddingError::Misaligned));
        assert_eq!(strip_padding(Framing::Intermediate, &p[..56]).unwrap().len(), 56);
        assert_eq!(strip_padding(Framing::Full, &p[..23]), Err(PaddingError::TooShort));
    }
}
