//! The obfuscated transport (<https://core.telegram.org/mtproto/mtproto-transports#transport-obfuscation>):
//! a 64-byte random init from the client, then AES-256-CTR in each direction for the life of the connection, with
//! an abridged, intermediate or padded intermediate framing inside. With an MTProxy secret the CTR keys are
//! `SHA256(key ‖ secret)`.
//!
//! Init layout (client side, before encryption): bytes 0..8 random (with the forbidden patterns of
//! docs/CHECKLIST.md item 7 excluded), 8..40 the client→server key, 40..56 its IV, 56..60 the protocol tag, 60..62 the
//! DC id (i16 LE, optional), 62..64 random. The server→client key and IV are bytes 8..40 and 40..56 of the
//! **reversed** init. The client encrypts the whole init with its send stream and replaces bytes 56..64 with their
//! encrypted form, so the tag and DC id travel encrypted and the stream is already 64 bytes in.
//!
//! This matches tdlib's `ObfuscatedTransport::init` (tdlib/td, `td/mtproto/TcpTransport.cpp`, read at commit
//! 04813290): same forbidden first words, same reversed-buffer receive key, same `SHA256(key ‖ secret)`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::codec::{DecoderConfig, Encoder, EncoderConfig, Frame, FrameDecoder};
use super::replay::{Fingerprint, init_fingerprint};
use super::{DEFAULT_MAX_FRAME, EncodeError, Framing, Role, TransportError};
use crate::crypto::aes::AesCtr;

/// Length of the obfuscated init.
pub const INIT_LEN: usize = 64;

/// First words (little-endian) a client init must never start with, because a server would take the connection
/// for HTTP (`HEAD`, `POST`, `GET `, `OPTI`), TLS (`16 03 01 02`) or a plain intermediate / padded transport.
pub const FORBIDDEN_FIRST_WORDS: [u32; 7] = [
    0x4441_4548,
    0x5453_4f50,
    0x2054_4547,
    0x4954_504f,
    0x0201_0316,
    0xdddd_dddd,
    0xeeee_eeee,
];

/// An MTProxy secret: 16 bytes, or 17 with a leading `0xdd` that makes the padded intermediate framing mandatory.
/// Zeroized on drop; `Debug` does not print it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ProxySecret {
    key: [u8; 16],
    padded_only: bool,
}

/// A proxy secret of the wrong length or prefix (`ee` fake-TLS secrets are not supported here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BadSecret;

impl core::fmt::Display for BadSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("proxy secret must be 16 bytes, or 17 starting with 0xdd")
    }
}

impl core::error::Error for BadSecret {}

impl ProxySecret {
    /// Parses the raw (hex-decoded) secret.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, BadSecret> {
        // A 16-byte secret that happens to start with 0xdd is a plain key, not a `dd` secret missing a byte: only
        // 17 bytes make a `dd` prefix. Every other length fails the conversion below.
        let (padded_only, key) = match raw {
            [0xdd, rest @ ..] if rest.len() == 16 => (true, rest),
            _ => (false, raw),
        };
        let key: [u8; 16] = key.try_into().map_err(|_| BadSecret)?;
        Ok(ProxySecret { key, padded_only })
    }

    /// Whether only the padded intermediate framing may be used (`dd` secret).
    pub fn requires_padding(&self) -> bool {
        self.padded_only
    }

    fn allows(&self, framing: Framing) -> bool {
        !self.padded_only || framing == Framing::PaddedIntermediate
    }
}

impl core::fmt::Debug for ProxySecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ProxySecret")
            .field("padded_only", &self.padded_only)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ProxySecret {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ProxySecret {{ padded_only: {} }}", self.padded_only)
    }
}

/// Why a client init could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InitError {
    /// The full transport has no obfuscation tag.
    UnsupportedFraming,
    /// A `dd` secret requires the padded intermediate framing.
    SecretRequiresPadding,
    /// The output buffer cannot hold the opening bytes ([`INIT_LEN`] at most).
    BufferTooSmall {
        /// Bytes the buffer must have.
        required: usize,
    },
}

impl InitError {
    /// The host's ([`Fault::Host`]): a framing, secret or buffer it chose.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::UnsupportedFraming => f.write_str("the full transport cannot be obfuscated"),
            InitError::SecretRequiresPadding => f.write_str("a dd proxy secret requires padded intermediate"),
            InitError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes required"),
        }
    }
}

impl core::error::Error for InitError {}

/// The two AES-256-CTR streams of an obfuscated connection. Key schedules and counters are zeroized on drop by
/// [`AesCtr`].
#[derive(Debug)]
pub struct Obfuscator {
    tx: AesCtr,
    rx: AesCtr,
}

#[cfg(feature = "defmt")]
impl defmt::Format for Obfuscator {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Obfuscator(..)")
    }
}

impl Obfuscator {
    /// Encrypts outgoing bytes in place (the stream continues across calls).
    pub fn encrypt(&mut self, buf: &mut [u8]) {
        self.tx.apply(buf);
    }

    /// Decrypts incoming bytes in place (the stream continues across calls).
    pub fn decrypt(&mut self, buf: &mut [u8]) {
        self.rx.apply(buf);
    }
}

/// Whether a candidate client init (before the tag is written) must be regenerated (docs/CHECKLIST.md item 7).
pub fn is_forbidden_init(init: &[u8; INIT_LEN]) -> bool {
    let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = *init;
    let first = u32::from_le_bytes([b0, b1, b2, b3]);
    b0 == 0xef || FORBIDDEN_FIRST_WORDS.contains(&first) || [b4, b5, b6, b7] == [0; 4]
}

/// The CTR stream keyed by bytes 8..40 / 40..56 of `bytes`, with the secret mixed in.
fn stream(bytes: &[u8; INIT_LEN], secret: Option<&ProxySecret>) -> AesCtr {
    let mut key = [0u8; 32];
    let mut iv = [0u8; 16];
    if let (Some(k), Some(i)) = (bytes.get(8..40), bytes.get(40..56)) {
        key.copy_from_slice(k);
        iv.copy_from_slice(i);
    }
    if let Some(secret) = secret {
        let mut h = Sha256::new();
        h.update(key);
        h.update(secret.key);
        let mut digest: [u8; 32] = h.finalize().into();
        key = digest;
        digest.zeroize();
    }
    let ctr = AesCtr::new(&key, &iv);
    key.zeroize();
    iv.zeroize();
    ctr
}

fn reversed(init: &[u8; INIT_LEN]) -> [u8; INIT_LEN] {
    let mut r = *init;
    r.reverse();
    r
}

/// Client side: draws a fresh init (regenerating until it is allowed), writes the protocol tag of `framing` and
/// the optional DC id, and returns the 64 bytes to send before anything else together with the connection's
/// streams. The send stream has already covered the 64 init bytes.
pub fn client_init<R: CryptoRng + ?Sized>(
    framing: Framing,
    dc_id: Option<i16>,
    secret: Option<&ProxySecret>,
    rng: &mut R,
) -> Result<([u8; INIT_LEN], Obfuscator), InitError> {
    let tag = framing.obfuscation_tag().ok_or(InitError::UnsupportedFraming)?;
    if secret.is_some_and(|s| !s.allows(framing)) {
        return Err(InitError::SecretRequiresPadding);
    }
    let mut init = [0u8; INIT_LEN];
    loop {
        rng.fill_bytes(&mut init);
        if !is_forbidden_init(&init) {
            break;
        }
    }
    if let Some(t) = init.get_mut(56..60) {
        t.copy_from_slice(&tag.to_le_bytes());
    }
    if let (Some(dc), Some(d)) = (dc_id, init.get_mut(60..62)) {
        d.copy_from_slice(&dc.to_le_bytes());
    }
    let mut rev = reversed(&init);
    let mut obf = Obfuscator {
        tx: stream(&init, secret),
        rx: stream(&rev, secret),
    };
    rev.zeroize();
    let mut enc = init;
    obf.encrypt(&mut enc);
    if let (Some(dst), Some(src)) = (init.get_mut(56..), enc.get(56..)) {
        dst.copy_from_slice(src);
    }
    enc.zeroize();
    Ok((init, obf))
}

/// What the server learned from a valid init.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AcceptedInit {
    /// The framing the protocol tag names.
    pub framing: Framing,
    /// The DC id field (i16 LE at 60..62), unvalidated: most clients put no valid id there (INTEROP.md).
    pub dc_id: i16,
    /// The connection's streams; the receive stream has already covered the 64 init bytes.
    pub obfuscator: Obfuscator,
}

/// Server side: derives the streams from a received init (with the configured secret, if any), decrypts it, and
/// checks the protocol tag (docs/CHECKLIST.md item 8): it must be one of the three tags, and a `dd` secret admits only
/// padded intermediate.
pub fn server_accept(init: &[u8; INIT_LEN], secret: Option<&ProxySecret>) -> Result<AcceptedInit, TransportError> {
    let mut rev = reversed(init);
    let mut obfuscator = Obfuscator {
        rx: stream(init, secret),
        tx: stream(&rev, secret),
    };
    rev.zeroize();
    let mut plain = *init;
    obfuscator.decrypt(&mut plain);
    let [.., t0, t1, t2, t3, d0, d1, _, _] = plain;
    plain.zeroize();
    let framing = Framing::from_obfuscation_tag(u32::from_le_bytes([t0, t1, t2, t3])).ok_or(TransportError::BadTag)?;
    if secret.is_some_and(|s| !s.allows(framing)) {
        return Err(TransportError::TagSecretMismatch);
    }
    Ok(AcceptedInit {
        framing,
        dc_id: i16::from_le_bytes([d0, d1]),
        obfuscator,
    })
}

/// Bytes decrypted per step while feeding the inner decoder.
const CHUNK: usize = 256;

/// An obfuscated connection end: the init, the two CTR streams and a framing codec inside.
///
/// It follows the [`FrameDecoder`] contract: [`feed`](Self::feed) consumes (and decrypts) input only up to the end
/// of one frame, so the receive stream never runs ahead of what was consumed; take the frame with
/// [`next_frame`](Self::next_frame) before feeding more. A server first consumes exactly 64 init bytes.
pub struct ObfuscatedCodec<const N: usize> {
    role: Role,
    /// The client's init as it arrives (server): wiped by its own destructor, whatever state the codec is dropped in.
    init: Zeroizing<[u8; INIT_LEN]>,
    init_len: usize,
    secret: Option<ProxySecret>,
    obf: Option<Obfuscator>,
    dc_id: Option<i16>,
    decoder: FrameDecoder<N>,
    encoder: Encoder,
    failed: Option<TransportError>,
    /// Server: the replay key of the accepted init (its bytes are zeroized once accepted).
    init_fingerprint: Option<Fingerprint>,
}

impl<const N: usize> core::fmt::Debug for ObfuscatedCodec<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ObfuscatedCodec")
            .field("role", &self.role)
            .field("framing", &self.framing())
            .field("dc_id", &self.dc_id)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for ObfuscatedCodec<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ObfuscatedCodec {{ role: {}, dc_id: {}, failed: {} }}",
            self.role,
            self.dc_id,
            self.failed
        )
    }
}

impl<const N: usize> ObfuscatedCodec<N> {
    /// A client end: returns the codec and the 64-byte init to send first. `max_frame` bounds inbound payloads
    /// (effective limit `min(max_frame, N)`).
    pub fn client<R: CryptoRng + ?Sized>(
        framing: Framing,
        dc_id: Option<i16>,
        secret: Option<ProxySecret>,
        max_frame: usize,
        rng: &mut R,
    ) -> Result<(Self, [u8; INIT_LEN]), InitError> {
        let (init, obf) = client_init(framing, dc_id, secret.as_ref(), rng)?;
        let codec = ObfuscatedCodec {
            role: Role::Client,
            init: Zeroizing::new([0; INIT_LEN]),
            init_len: INIT_LEN,
            secret,
            obf: Some(obf),
            dc_id,
            decoder: FrameDecoder::new(DecoderConfig::client(framing).with_max_frame(max_frame)),
            encoder: Encoder::new(EncoderConfig::client(framing)),
            failed: None,
            init_fingerprint: None,
        };
        Ok((codec, init))
    }

    /// A server end waiting for the client's init, with an optional MTProxy secret.
    pub fn server(secret: Option<ProxySecret>, max_frame: usize) -> Self {
        let placeholder = Framing::PaddedIntermediate;
        ObfuscatedCodec {
            role: Role::Server,
            init: Zeroizing::new([0; INIT_LEN]),
            init_len: 0,
            secret,
            obf: None,
            dc_id: None,
            decoder: FrameDecoder::new(
                DecoderConfig::server(placeholder)
                    .with_marker(false)
                    .with_max_frame(max_frame),
            ),
            encoder: Encoder::new(EncoderConfig::server(placeholder)),
            failed: None,
            init_fingerprint: None,
        }
    }

    /// A server end with the default `max_frame`.
    pub fn server_default(secret: Option<ProxySecret>) -> Self {
        Self::server(secret, DEFAULT_MAX_FRAME)
    }

    /// The framing, once known (always for a client; after the init for a server).
    pub fn framing(&self) -> Option<Framing> {
        self.obf.as_ref().map(|_| self.decoder.config().framing)
    }

    /// The DC id: the one the client put in its init, or what a server read from it (unvalidated).
    pub fn dc_id(&self) -> Option<i16> {
        self.dc_id
    }

    /// The inner encoder's padding maximum can be changed before sending (padded intermediate only).
    pub fn set_max_padding(&mut self, max_padding: u8) {
        self.encoder = Encoder::new(self.encoder.config().with_max_padding(max_padding));
    }

    /// Server: init bytes still to come before the first frame (0 once the init is in, and always for a client).
    pub(crate) fn init_missing(&self) -> usize {
        if self.obf.is_some() {
            0
        } else {
            INIT_LEN - self.init_len
        }
    }

    /// Exactly how many stream bytes [`feed`](Self::feed) takes before its next boundary: the rest of the init,
    /// then the inner decoder's [`FrameDecoder::wanted`].
    pub(crate) fn wanted(&self) -> usize {
        match self.failed {
            Some(_) => 0,
            None if self.obf.is_none() => INIT_LEN - self.init_len,
            None => self.decoder.wanted(),
        }
    }

    /// Server: the replay key of the accepted init (`None` before it is complete, on a refused one, on a client).
    pub(crate) fn init_fingerprint(&self) -> Option<Fingerprint> {
        self.init_fingerprint
    }

    /// Consumes input up to the end of one frame (after the init on a server); see the type docs.
    pub fn feed(&mut self, input: &[u8]) -> Result<usize, TransportError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let mut pos = 0;
        if self.obf.is_none() {
            let n = (INIT_LEN - self.init_len).min(input.len());
            if let (Some(dst), Some(src)) = (self.init.get_mut(self.init_len..self.init_len + n), input.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.init_len += n;
            pos = n;
            if self.init_len < INIT_LEN {
                return Ok(pos);
            }
            match server_accept(&self.init, self.secret.as_ref()) {
                Ok(acc) => {
                    self.init_fingerprint = Some(init_fingerprint(&self.init));
                    self.init.zeroize();
                    self.decoder.set_framing(acc.framing);
                    self.encoder = Encoder::new(EncoderConfig::server(acc.framing));
                    self.dc_id = Some(acc.dc_id);
                    self.obf = Some(acc.obfuscator);
                }
                Err(e) => {
                    self.init.zeroize();
                    self.failed = Some(e);
                    return Err(e);
                }
            }
        }
        let Some(obf) = self.obf.as_mut() else { return Ok(pos) };
        let mut tmp = [0u8; CHUNK];
        while !self.decoder.has_frame() {
            let rest = input.get(pos..).unwrap_or(&[]);
            let n = self.decoder.wanted().min(CHUNK).min(rest.len());
            let (Some(chunk), Some(src)) = (tmp.get_mut(..n), rest.get(..n)) else {
                break;
            };
            if n == 0 {
                break;
            }
            chunk.copy_from_slice(src);
            obf.decrypt(chunk);
            // `wanted` never exceeds what the decoder takes, so the stream stays in step with `pos`.
            let took = self.decoder.feed(chunk)?;
            debug_assert_eq!(took, n);
            pos += n;
        }
        Ok(pos)
    }

    /// Whether a decoded frame waits for [`next_frame`](Self::next_frame).
    pub(crate) fn has_frame(&self) -> bool {
        self.decoder.has_frame()
    }

    /// Takes the decoded frame, if one is complete.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        self.decoder.next_frame()
    }

    /// Feeds then takes at most one frame.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Frame<'_>>), TransportError> {
        let n = self.feed(input)?;
        Ok((n, self.next_frame()))
    }

    /// The size `out` needs for [`encode`](Self::encode) (see [`Encoder::max_encoded_len`]).
    pub fn max_encoded_len(&self, payload_len: usize) -> Result<usize, EncodeError> {
        self.encoder.max_encoded_len(payload_len)
    }

    /// Frames and encrypts one payload into `out`. A server cannot send before the init has arrived.
    pub fn encode<R: CryptoRng + ?Sized>(
        &mut self,
        payload: &[u8],
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let obf = self.obf.as_mut().ok_or(EncodeError::Unsupported)?;
        let n = self.encoder.encode(payload, quick_ack, rng, out)?;
        obf.encrypt(out.get_mut(..n).unwrap_or(&mut []));
        Ok(n)
    }

    /// See [`Encoder::headroom`].
    pub const fn headroom(&self) -> usize {
        self.encoder.headroom()
    }

    /// Frames and encrypts, in place, a payload already at `out[headroom()..]` (see [`Encoder::encode_in_place`]).
    pub fn encode_in_place<R: CryptoRng + ?Sized>(
        &mut self,
        payload_len: usize,
        quick_ack: bool,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<usize, EncodeError> {
        let obf = self.obf.as_mut().ok_or(EncodeError::Unsupported)?;
        let n = self.encoder.encode_in_place(payload_len, quick_ack, rng, out)?;
        obf.encrypt(out.get_mut(..n).unwrap_or(&mut []));
        Ok(n)
    }

    /// See [`FrameDecoder::idle_buf_mut`].
    pub(crate) fn idle_buf_mut(&mut self) -> &mut [u8] {
        self.decoder.idle_buf_mut()
    }

    /// See [`FrameDecoder::idle_buf_mut`].
    pub(crate) fn idle_buf(&self) -> &[u8] {
        self.decoder.idle_buf()
    }

    /// See [`FrameDecoder::release`].
    pub(crate) fn release(&mut self) {
        self.decoder.release();
    }

    /// Bytes of receive buffer held in memory now.
    pub fn buffer_footprint(&self) -> usize {
        self.decoder.buffer_footprint()
    }

    /// Server role: an encrypted quick-ack token.
    pub fn encode_quick_ack(&mut self, token: u32, out: &mut [u8]) -> Result<usize, EncodeError> {
        let obf = self.obf.as_mut().ok_or(EncodeError::Unsupported)?;
        let n = self.encoder.encode_quick_ack(token, out)?;
        obf.encrypt(out.get_mut(..n).unwrap_or(&mut []));
        Ok(n)
    }

    /// Server role: an encrypted transport error frame.
    pub fn encode_error(&mut self, code: i32, out: &mut [u8]) -> Result<usize, EncodeError> {
        let obf = self.obf.as_mut().ok_or(EncodeError::Unsupported)?;
        let n = self.encoder.encode_error(code, out)?;
        obf.encrypt(out.get_mut(..n).unwrap_or(&mut []));
        Ok(n)
    }
}
