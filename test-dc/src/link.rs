//! One TCP connection's transport codec, either end: a plain framing (abridged, intermediate, padded
//! intermediate, full) or the obfuscated transport around one of the first three. A [`Transport`] also names the
//! carriage around the stream (HTTP, WebSocket, fake-TLS; see [`crate::carriage_conn`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::str::FromStr;

pub use crate::carriage_conn::Carriage;
use mtproto_sansio::rand_core::CryptoRng;
use mtproto_sansio::transport::obfuscated::{InitError, ObfuscatedCodec, ProxySecret};
use mtproto_sansio::transport::{
    DecoderConfig, EncodeError, Encoder, EncoderConfig, Frame, FrameDecoder, Framing, TransportError,
};

/// A transport as named on a command line: `abridged`, `intermediate`, `padded`, `full`, or one of the first three
/// prefixed with `obf-` (the obfuscated transport); or a carriage: `http` (`POST /api`, the intermediate framing
/// inside the pump, one packet per body), `ws` (WebSocket carrying obfuscated padded intermediate) or `faketls`
/// (fake-TLS records carrying obfuscated padded intermediate; needs an `ee` secret).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transport {
    /// The framing.
    pub framing: Framing,
    /// Wrapped in the obfuscated transport.
    pub obfuscated: bool,
    /// What carries the stream.
    pub carriage: Carriage,
}

impl Transport {
    /// The default of the demo and the clients: obfuscated padded intermediate.
    pub const DEFAULT: Transport = Transport {
        framing: Framing::PaddedIntermediate,
        obfuscated: true,
        carriage: Carriage::Tcp,
    };
    /// The carriages a client can pick.
    pub const CARRIAGES: [Transport; 3] = [
        Transport {
            framing: Framing::Intermediate,
            obfuscated: false,
            carriage: Carriage::Http,
        },
        Transport {
            framing: Framing::PaddedIntermediate,
            obfuscated: true,
            carriage: Carriage::Ws,
        },
        Transport {
            framing: Framing::PaddedIntermediate,
            obfuscated: true,
            carriage: Carriage::FakeTls,
        },
    ];
    /// Every transport a client can pick straight on TCP.
    pub const ALL: [Transport; 7] = [
        Transport::plain(Framing::Abridged),
        Transport::plain(Framing::Intermediate),
        Transport::plain(Framing::PaddedIntermediate),
        Transport::plain(Framing::Full),
        Transport::obf(Framing::Abridged),
        Transport::obf(Framing::Intermediate),
        Transport::obf(Framing::PaddedIntermediate),
    ];

    /// A plain framing.
    pub const fn plain(framing: Framing) -> Self {
        Transport {
            framing,
            obfuscated: false,
            carriage: Carriage::Tcp,
        }
    }

    /// An obfuscated framing.
    pub const fn obf(framing: Framing) -> Self {
        Transport {
            framing,
            obfuscated: true,
            carriage: Carriage::Tcp,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.carriage {
            Carriage::Tcp => {}
            Carriage::Http => return f.write_str("http"),
            Carriage::Ws => return f.write_str("ws"),
            Carriage::FakeTls => return f.write_str("faketls"),
        }
        let name = match self.framing {
            Framing::Abridged => "abridged",
            Framing::Intermediate => "intermediate",
            Framing::PaddedIntermediate => "padded",
            Framing::Full => "full",
        };
        if self.obfuscated {
            write!(f, "obf-{name}")
        } else {
            f.write_str(name)
        }
    }
}

impl FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Transport::ALL
            .into_iter()
            .chain(Transport::CARRIAGES)
            .find(|t| t.to_string() == s)
            .ok_or_else(|| format!("unknown transport {s:?} (abridged, intermediate, padded, full, obf-abridged, obf-intermediate, obf-padded, http, ws, faketls)"))
    }
}

/// What one decoded frame was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A packet, copied into the caller's buffer.
    Packet {
        /// The sender asked for a quick ack.
        quick_ack: bool,
    },
    /// A quick-ack token (client end).
    QuickAck(u32),
    /// A transport error code (client end).
    Error(i32),
}

/// The codec of one connection; `N` bounds an inbound frame.
pub enum Link<const N: usize> {
    /// A plain framing.
    Plain {
        /// Outbound frames.
        enc: Encoder,
        /// Inbound frames.
        dec: Box<FrameDecoder<N>>,
    },
    /// The obfuscated transport.
    Obfuscated(Box<ObfuscatedCodec<N>>),
}

impl<const N: usize> Link<N> {
    /// A client end; returns the codec and the bytes to send before the first frame (the marker, or the 64-byte
    /// obfuscated init).
    pub fn client<R: CryptoRng + ?Sized>(
        t: Transport,
        dc_id: i16,
        secret: Option<ProxySecret>,
        rng: &mut R,
    ) -> Result<(Self, Vec<u8>), InitError> {
        if t.obfuscated {
            let (codec, init) = ObfuscatedCodec::client(t.framing, Some(dc_id), secret, N, rng)?;
            Ok((Link::Obfuscated(Box::new(codec)), init.to_vec()))
        } else {
            let enc = Encoder::new(EncoderConfig::client(t.framing));
            let first = enc.init_bytes().to_vec();
            let dec = Box::new(FrameDecoder::new(DecoderConfig::client(t.framing).with_max_frame(N)));
            Ok((Link::Plain { enc, dec }, first))
        }
    }

    /// A DC end of a plain connection, fed from its first byte (the marker).
    pub fn server_plain(framing: Framing) -> Self {
        Link::Plain {
            enc: Encoder::new(EncoderConfig::server(framing)),
            dec: Box::new(FrameDecoder::new(DecoderConfig::server(framing).with_max_frame(N))),
        }
    }

    /// A DC end of an obfuscated connection, fed from its first byte (the init).
    pub fn server_obfuscated(secret: Option<ProxySecret>) -> Self {
        Link::Obfuscated(Box::new(ObfuscatedCodec::server(secret, N)))
    }

    /// The framing (for an obfuscated DC end: once the init has arrived).
    pub fn framing(&self) -> Option<Framing> {
        match self {
            Link::Plain { enc, .. } => Some(enc.config().framing),
            Link::Obfuscated(c) => c.framing(),
        }
    }

    /// Consumes `input` up to the end of at most one frame; a packet is copied into `packet`.
    pub fn decode(&mut self, input: &[u8], packet: &mut Vec<u8>) -> Result<(usize, Option<Incoming>), TransportError> {
        let (n, frame) = match self {
            Link::Plain { dec, .. } => dec.decode(input)?,
            Link::Obfuscated(c) => c.decode(input)?,
        };
        let inc = match frame {
            Some(Frame::Packet { data, quick_ack }) => {
                packet.clear();
                packet.extend_from_slice(data);
                Some(Incoming::Packet { quick_ack })
            }
            Some(Frame::QuickAck(t)) => Some(Incoming::QuickAck(t)),
            Some(Frame::TransportError(c)) => Some(Incoming::Error(c)),
            None => None,
        };
        Ok((n, inc))
    }

    /// Frames `payload` and appends the wire bytes to `wire`.
    pub fn encode<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        wire: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let need = match self {
            Link::Plain { enc, .. } => enc.max_encoded_len(payload.len())?,
            Link::Obfuscated(c) => c.max_encoded_len(payload.len())?,
        };
        let start = wire.len();
        wire.resize(start + need, 0);
        let dst = wire.get_mut(start..).unwrap_or_default();
        let r = match self {
            Link::Plain { enc, .. } => enc.encode(payload, quick_ack, rng, dst),
            Link::Obfuscated(c) => c.encode(payload, quick_ack, rng, dst),
        };
        let n = r.inspect_err(|_| wire.truncate(start))?;
        wire.truncate(start + n);
        Ok(())
    }

    /// DC end: appends a transport error frame (−404, −429, −444).
    pub fn encode_error(&mut self, code: i32, wire: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut buf = [0u8; 16];
        let n = match self {
            Link::Plain { enc, .. } => enc.encode_error(code, &mut buf)?,
            Link::Obfuscated(c) => c.encode_error(code, &mut buf)?,
        };
        wire.extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(())
    }

    /// DC end: appends a quick-ack token.
    pub fn encode_quick_ack(&mut self, token: u32, wire: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut buf = [0u8; 16];
        let n = match self {
            Link::Plain { enc, .. } => enc.encode_quick_ack(token, &mut buf)?,
            Link::Obfuscated(c) => c.encode_quick_ack(token, &mut buf)?,
        };
        wire.extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(())
    }
}
