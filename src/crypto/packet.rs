//! The MTProto 2.0 encrypted-packet codec, both directions, in caller buffers and without allocation.
//!
//! ```text
//! auth_key_id (8) ‖ msg_key (16) ‖ AES-256-IGE( salt (8) ‖ session_id (8) ‖ msg_id (8) ‖ seq_no (4) ‖ msg_len (4)
//!                                              ‖ body (msg_len) ‖ padding (12..=1024) )
//! ```
//!
//! The encrypted part is a multiple of 16 bytes. [`decrypt`] runs every receiver check of docs/CHECKLIST.md items 27-30
//! and returns a [`Verified`] message, which nothing else can construct; the session-level checks (session_id, msg_id
//! window and parity, salt) belong to the session, not here.
//!
//! Uniform failure (item 29): whatever is wrong with a packet (key id, length, msg_key, msg_len, padding), `decrypt`
//! derives the key, decrypts and hashes the whole buffer (one fused pass, `crypto::aes::ige_decrypt_and_hash`) and
//! compares, then returns the one [`DecryptError::Rejected`] value and leaves the buffer zeroed. The work done depends
//! only on the packet's length.
//!
//! [`seal_v2`] and [`open_v2`] are the layout-agnostic core (msg_key + KDF + IGE over an arbitrary padded plaintext),
//! which the secret-chat layer reuses with its own plaintext layout. [`encrypt_v1_bind`] / [`decrypt_v1_bind`] are the
//! only MTProto 1.0 code, for `auth.bindTempAuthKey`.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use rand_core::CryptoRng;
use sha1::Sha1;
use sha2::Digest;
use subtle::{Choice, ConstantTimeEq, ConstantTimeGreater};
use zeroize::Zeroize;

use super::aes::{
    IgeHashLane, NotBlockAligned, ige_decrypt, ige_decrypt_and_hash, ige_decrypt_and_hash_batch, ige_encrypt,
};
use super::auth_key::AuthKey;
pub use super::kdf::Direction;
#[doc(hidden)]
pub use super::kdf::WorkMeter;
use super::kdf::{
    AesKeyIv, Meter, derive_v1, derive_v2_metered, msg_key_from_large, msg_key_hasher, msg_key_large_v2_metered,
    quick_ack_token,
};

/// Bytes of `auth_key_id`.
pub const AUTH_KEY_ID_LEN: usize = 8;
/// Bytes of `msg_key`.
pub const MSG_KEY_LEN: usize = 16;
/// Bytes of auth_key that msg_key_large hashes ahead of the plaintext.
const MSG_KEY_PREFIX_LEN: usize = 32;
/// The unencrypted prefix: `auth_key_id ‖ msg_key`.
pub const OUTER_HEADER_LEN: usize = AUTH_KEY_ID_LEN + MSG_KEY_LEN;
/// The encrypted header: salt, session_id, msg_id, seq_no, msg_len.
pub const INNER_HEADER_LEN: usize = 32;
/// Smallest padding MTProto 2.0 allows.
pub const MIN_PADDING: usize = 12;
/// Largest padding MTProto 2.0 allows.
pub const MAX_PADDING: usize = 1024;
/// Smallest valid packet: an empty body with minimal padding, rounded up to a whole block.
pub const MIN_PACKET_LEN: usize = OUTER_HEADER_LEN + (INNER_HEADER_LEN + MIN_PADDING).next_multiple_of(16);
/// Largest body the codec accepts: `msg_len` is an int32 and a multiple of 4.
pub const MAX_BODY_LEN: usize = 0x7fff_fffc;
/// Largest MTProto 1.0 plaintext [`encrypt_v1_bind`] / [`decrypt_v1_bind`] handle (`bind_auth_key_inner` needs 72).
pub const MAX_V1_BIND_PLAINTEXT: usize = 256;

/// Where the body starts in a packet: after `auth_key_id ‖ msg_key ‖ inner header`. A session can serialize its
/// message straight to `out[body_offset()..]` and call [`encrypt_in_place`].
pub const fn body_offset() -> usize {
    OUTER_HEADER_LEN + INNER_HEADER_LEN
}

/// Total packet length for a body of `body_len` bytes and `padding` bytes of padding, or `None` if that combination
/// is not a valid MTProto 2.0 packet (body not a multiple of 4 or too large, padding outside 12..=1024, or the
/// encrypted part not a multiple of 16).
pub const fn encrypted_len(body_len: usize, padding: usize) -> Option<usize> {
    if body_len > MAX_BODY_LEN || !body_len.is_multiple_of(4) || padding < MIN_PADDING || padding > MAX_PADDING {
        return None;
    }
    let plain = INNER_HEADER_LEN + body_len + padding;
    if !plain.is_multiple_of(16) {
        return None;
    }
    Some(OUTER_HEADER_LEN + plain)
}

/// The smallest valid padding for a body: 12 bytes, plus what is needed to reach a whole block (12..=27).
const fn min_padding(body_len: usize) -> usize {
    let unpadded = (INNER_HEADER_LEN + body_len + MIN_PADDING) % 16;
    MIN_PADDING + (16 - unpadded) % 16
}

/// How much random padding to add beyond the minimum (docs/CHECKLIST.md item 39): the minimal padding (12..=27 bytes,
/// to reach a block boundary) plus a uniformly random number of extra 16-byte blocks in `0..=max_extra_blocks`, so that
/// on-wire sizes do not reveal body sizes to the byte and acks do not stand out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PaddingPolicy {
    max_extra_blocks: u8,
}

impl PaddingPolicy {
    /// The most extra blocks that keep every padding within 1024 bytes (27 + 62·16 = 1019).
    pub const MAX_EXTRA_BLOCKS: u8 = ((MAX_PADDING - 27) / 16) as u8;
    /// Always the minimal padding: deterministic sizes (known-answer tests, minimum bandwidth).
    pub const MINIMAL: Self = PaddingPolicy { max_extra_blocks: 0 };
    /// The default: 0..=15 extra blocks (0..=240 extra bytes, like tdlib's `+random(0..255)`).
    pub const DEFAULT: Self = PaddingPolicy { max_extra_blocks: 15 };

    /// A policy adding up to `max_extra_blocks` random blocks; `None` above [`Self::MAX_EXTRA_BLOCKS`].
    pub const fn new(max_extra_blocks: u8) -> Option<Self> {
        if max_extra_blocks > Self::MAX_EXTRA_BLOCKS {
            None
        } else {
            Some(PaddingPolicy { max_extra_blocks })
        }
    }

    /// The configured maximum of extra blocks.
    pub const fn max_extra_blocks(self) -> u8 {
        self.max_extra_blocks
    }

    /// The largest padding this policy can choose for a body of `body_len` bytes.
    pub const fn max_padding(self, body_len: usize) -> usize {
        min_padding(body_len) + 16 * self.max_extra_blocks as usize
    }

    /// The largest packet this policy can produce for a body of `body_len` bytes; `None` if the body is invalid.
    /// This is the buffer size [`encrypt`] and [`encrypt_in_place`] require.
    pub const fn max_encrypted_len(self, body_len: usize) -> Option<usize> {
        encrypted_len(body_len, self.max_padding(body_len))
    }

    fn choose<R: CryptoRng + ?Sized>(self, body_len: usize, rng: &mut R) -> usize {
        let extra = if self.max_extra_blocks == 0 {
            0
        } else {
            // Multiply-shift maps a u32 onto 0..=n with a bias below 2^-25: irrelevant for a size-hiding choice.
            ((u64::from(rng.next_u32()) * (u64::from(self.max_extra_blocks) + 1)) >> 32) as usize
        };
        min_padding(body_len) + 16 * extra
    }
}

impl Default for PaddingPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The plaintext header fields of an outgoing message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageHeader {
    /// Server salt (little-endian on the wire).
    pub salt: u64,
    /// Connection id.
    pub session_id: u64,
    /// Message id.
    pub msg_id: u64,
    /// Sequence number.
    pub seq_no: u32,
}

/// Result of a successful encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Encrypted {
    /// Bytes written to the start of `out`.
    pub len: usize,
    /// The quick-ack token the peer will echo if asked (msg_key_large[0..4] as LE u32, top bit set).
    pub quick_ack: u32,
}

/// Why [`encrypt`] (or a sibling) refused; `out` is untouched in every case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncryptError {
    /// `out` is shorter than the largest packet the call may produce.
    BufferTooSmall {
        /// The length `out` needs.
        required: usize,
    },
    /// The body is not a multiple of 4 bytes (TL always is) or exceeds [`MAX_BODY_LEN`].
    InvalidBody,
    /// The plaintext handed to a raw or 1.0 helper has an impossible length or `msg_len` field.
    InvalidPlaintext,
}

impl EncryptError {
    /// The caller's ([`Fault::Host`]): the buffer or the body it passed.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl core::fmt::Display for EncryptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EncryptError::BufferTooSmall { required } => write!(f, "output buffer too small: {required} bytes needed"),
            EncryptError::InvalidBody => f.write_str("message body not a multiple of 4 bytes or too large"),
            EncryptError::InvalidPlaintext => f.write_str("plaintext length or msg_len field invalid"),
        }
    }
}

impl core::error::Error for EncryptError {}

/// The one outcome of every rejected packet. Deliberately carries no reason: a reason would be an oracle
/// (docs/CHECKLIST.md item 29).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecryptError {
    /// Wrong key id, bad length, msg_key mismatch or bad msg_len/padding; the buffer has been zeroed.
    Rejected,
}

impl DecryptError {
    /// The peer's, or a forger's ([`Fault::Peer`]).
    pub const fn fault(&self) -> Fault {
        Fault::Peer
    }
}

impl core::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("encrypted packet rejected")
    }
}

impl core::error::Error for DecryptError {}

/// A decrypted packet that passed every check of docs/CHECKLIST.md items 27-30. Only [`decrypt`] can build one, so code
/// that takes a `Verified` cannot see unauthenticated data.
pub struct Verified<'a> {
    salt: u64,
    session_id: u64,
    msg_id: u64,
    seq_no: u32,
    quick_ack: u32,
    padding: usize,
    body: &'a [u8],
}

impl<'a> Verified<'a> {
    /// The server salt the sender used.
    pub fn salt(&self) -> u64 {
        self.salt
    }
    /// The session id (the session must compare it with its own).
    pub fn session_id(&self) -> u64 {
        self.session_id
    }
    /// The message id (the session checks parity, time and replay).
    pub fn msg_id(&self) -> u64 {
        self.msg_id
    }
    /// The sequence number.
    pub fn seq_no(&self) -> u32 {
        self.seq_no
    }
    /// The message body (`msg_len` bytes, a multiple of 4), borrowed from the decrypted packet buffer.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// The quick-ack token of this packet, which a server sends back when the transport asked for a quick ack.
    pub fn quick_ack_token(&self) -> u32 {
        self.quick_ack
    }
    /// Bytes of padding the sender used (12..=1024).
    pub fn padding_len(&self) -> usize {
        self.padding
    }
}

impl core::fmt::Debug for Verified<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Salt and session_id are secrets of the session (4A attack 3 needs them); the body is plaintext.
        f.debug_struct("Verified")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Verified<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Verified {{ msg_id: {=u64}, seq_no: {=u32}, body_len: {=usize} }}",
            self.msg_id,
            self.seq_no,
            self.body.len()
        )
    }
}

/// What [`seal_v2`] produced besides the ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Sealed {
    /// The 16-byte msg_key to send in front of the ciphertext.
    pub msg_key: [u8; 16],
    /// The quick-ack token of the message.
    pub quick_ack: u32,
}

/// [`open_v2`] rejected the message (msg_key mismatch or a length that is not a whole number of blocks); the buffer
/// has been zeroed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OpenError;

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("msg_key mismatch")
    }
}

impl core::error::Error for OpenError {}

/// MTProto 2.0 core, independent of the plaintext layout: computes msg_key over all of `plaintext` (padding
/// included), derives the key for `dir` and encrypts `plaintext` in place with AES-256-IGE.
///
/// The caller is responsible for the layout and for 12..=1024 bytes of CSPRNG padding; `plaintext` must be a whole
/// number of 16-byte blocks. Used by [`encrypt`] and by the secret-chat layer (which uses the chat key as
/// `auth_key`, x = 0 for the chat originator's messages).
pub fn seal_v2(auth_key: &AuthKey, dir: Direction, plaintext: &mut [u8]) -> Result<Sealed, NotBlockAligned> {
    if !plaintext.len().is_multiple_of(16) {
        return Err(NotBlockAligned);
    }
    let mut large = msg_key_large_v2_metered(auth_key, dir, plaintext, &mut ());
    let msg_key = msg_key_from_large(&large);
    let quick_ack = quick_ack_token(&large);
    large.as_mut_slice().zeroize();
    let kv = derive_v2_metered(auth_key, dir, &msg_key, &mut ());
    ige_encrypt(&kv.key, &kv.iv, plaintext)?;
    Ok(Sealed { msg_key, quick_ack })
}

/// Decrypts in place and checks `msg_key` in constant time; returns whether it matched and the quick-ack token.
/// Always does the same work for a given length: a trailing partial block is not decrypted but is still hashed.
fn open_core<M: Meter>(
    auth_key: &AuthKey,
    dir: Direction,
    msg_key: &[u8; 16],
    data: &mut [u8],
    meter: &mut M,
) -> (Choice, u32) {
    let kv = derive_v2_metered(auth_key, dir, msg_key, meter);
    let aligned = data.len() - data.len() % 16;
    let (blocks, tail) = data.split_at_mut(aligned);
    meter.aes(blocks.len());
    let mut hasher = msg_key_hasher(auth_key, dir, blocks.len() + tail.len(), meter);
    // One pass: each stretch is hashed right after it is decrypted (crypto::aes, fused). Cannot fail: `blocks` is
    // block-aligned by construction.
    let _ = ige_decrypt_and_hash(&kv.key, &kv.iv, blocks, &mut hasher, MSG_KEY_PREFIX_LEN);
    hasher.update(&*tail);
    let mut large: [u8; 32] = hasher.finalize().into();
    let ok = msg_key_matches(&msg_key_from_large(&large), msg_key);
    let token = quick_ack_token(&large);
    large.as_mut_slice().zeroize();
    (ok, token)
}

/// Constant-time msg_key comparison. The difference is folded into one word and compared once: subtle's slice
/// comparison costs an optimization barrier per byte, a tenth of a small packet's decryption.
fn msg_key_matches(computed: &[u8; 16], received: &[u8; 16]) -> Choice {
    let msg_key_diff = (le_u64(computed, 0) ^ le_u64(received, 0)) | (le_u64(computed, 8) ^ le_u64(received, 8));
    msg_key_diff.ct_eq(&0)
}

/// The inverse of [`seal_v2`]: decrypts `ciphertext` in place with the key derived from `msg_key` and checks, in
/// constant time, that `msg_key` matches the hash of the whole decrypted buffer. On success returns the quick-ack
/// token; the caller then parses its own layout (and checks its own length and padding rules). On failure the buffer
/// is zeroed.
pub fn open_v2(
    auth_key: &AuthKey,
    dir: Direction,
    msg_key: &[u8; 16],
    ciphertext: &mut [u8],
) -> Result<u32, OpenError> {
    let (ok, token) = open_core(auth_key, dir, msg_key, ciphertext, &mut ());
    let ok = ok & Choice::from(u8::from(ciphertext.len().is_multiple_of(16) && !ciphertext.is_empty()));
    if bool::from(ok) {
        Ok(token)
    } else {
        ciphertext.zeroize();
        Err(OpenError)
    }
}

/// Encrypts one message into `out` with [`PaddingPolicy::DEFAULT`]; see [`encrypt_with_policy`].
pub fn encrypt<R: CryptoRng + ?Sized>(
    key: &AuthKey,
    dir: Direction,
    header: &MessageHeader,
    body: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<Encrypted, EncryptError> {
    encrypt_with_policy(key, dir, header, body, PaddingPolicy::DEFAULT, rng, out)
}

/// Encrypts one message (`body` is the serialized TL object, a multiple of 4 bytes) into the start of `out` and
/// returns the packet length and quick-ack token.
///
/// `out` must hold [`PaddingPolicy::max_encrypted_len`] bytes, whatever padding is then chosen, so that the
/// required size does not depend on the RNG; otherwise `BufferTooSmall` is returned, nothing is written and the RNG
/// is not used.
pub fn encrypt_with_policy<R: CryptoRng + ?Sized>(
    key: &AuthKey,
    dir: Direction,
    header: &MessageHeader,
    body: &[u8],
    policy: PaddingPolicy,
    rng: &mut R,
    out: &mut [u8],
) -> Result<Encrypted, EncryptError> {
    let required = policy.max_encrypted_len(body.len()).ok_or(EncryptError::InvalidBody)?;
    if out.len() < required {
        return Err(EncryptError::BufferTooSmall { required });
    }
    let dst = out
        .get_mut(body_offset()..body_offset() + body.len())
        .ok_or(EncryptError::BufferTooSmall { required })?;
    dst.copy_from_slice(body);
    encrypt_in_place(key, dir, header, body.len(), policy, rng, out)
}

/// Encrypts a message whose body the caller has already written at `out[body_offset()..body_offset() + body_len]`
/// (so a session can serialize straight into the packet buffer). Writes the headers and the random padding and
/// encrypts in place.
///
/// `out` must hold `policy.max_encrypted_len(body_len)` bytes; otherwise `BufferTooSmall` is returned and `out` and
/// the RNG are untouched.
pub fn encrypt_in_place<R: CryptoRng + ?Sized>(
    key: &AuthKey,
    dir: Direction,
    header: &MessageHeader,
    body_len: usize,
    policy: PaddingPolicy,
    rng: &mut R,
    out: &mut [u8],
) -> Result<Encrypted, EncryptError> {
    let required = policy.max_encrypted_len(body_len).ok_or(EncryptError::InvalidBody)?;
    if out.len() < required {
        return Err(EncryptError::BufferTooSmall { required });
    }
    let padding = policy.choose(body_len, rng);
    let total = encrypted_len(body_len, padding).ok_or(EncryptError::InvalidBody)?;
    let packet = out.get_mut(..total).ok_or(EncryptError::BufferTooSmall { required })?;
    let (outer, plain) = packet.split_at_mut(OUTER_HEADER_LEN);
    let (inner, rest) = plain.split_at_mut(INNER_HEADER_LEN);
    write_inner_header(inner, header, body_len);
    if let Some(pad) = rest.get_mut(body_len..) {
        rng.fill_bytes(pad);
    }
    let sealed = seal_v2(key, dir, plain).map_err(|_| EncryptError::InvalidBody)?;
    write_outer_header(outer, key, &sealed.msg_key);
    Ok(Encrypted {
        len: total,
        quick_ack: sealed.quick_ack,
    })
}

fn write_inner_header(inner: &mut [u8], h: &MessageHeader, body_len: usize) {
    // body_len <= MAX_BODY_LEN < 2^31 was checked by the caller.
    let msg_len = u32::try_from(body_len).unwrap_or(u32::MAX);
    let fields: [&[u8]; 5] = [
        &h.salt.to_le_bytes(),
        &h.session_id.to_le_bytes(),
        &h.msg_id.to_le_bytes(),
        &h.seq_no.to_le_bytes(),
        &msg_len.to_le_bytes(),
    ];
    let mut rest = inner;
    for f in fields {
        let n = f.len().min(rest.len());
        let (head, tail) = core::mem::take(&mut rest).split_at_mut(n);
        head.copy_from_slice(f.get(..head.len()).unwrap_or(&[]));
        rest = tail;
    }
}

fn write_outer_header(outer: &mut [u8], key: &AuthKey, msg_key: &[u8; 16]) {
    let (id, mk) = outer.split_at_mut(AUTH_KEY_ID_LEN);
    id.copy_from_slice(&key.id().to_le_bytes());
    if let Some(mk) = mk.get_mut(..MSG_KEY_LEN) {
        mk.copy_from_slice(msg_key);
    }
}

/// **Test and fuzz helper: does no checks.** Encrypts `plaintext` exactly as given (any header, any `msg_len`
/// field, any padding, as long as it is a whole number of blocks) as an MTProto 2.0 packet into `out`, so negative
/// tests can build packets that a correct sender never would. Never use it to send real traffic: it exists only
/// with the `testing` feature.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub fn encrypt_raw_for_tests(
    key: &AuthKey,
    dir: Direction,
    plaintext: &[u8],
    out: &mut [u8],
) -> Result<Encrypted, EncryptError> {
    if !plaintext.len().is_multiple_of(16) {
        return Err(EncryptError::InvalidPlaintext);
    }
    let required = OUTER_HEADER_LEN + plaintext.len();
    let packet = out
        .get_mut(..required)
        .ok_or(EncryptError::BufferTooSmall { required })?;
    let (outer, plain) = packet.split_at_mut(OUTER_HEADER_LEN);
    plain.copy_from_slice(plaintext);
    let sealed = seal_v2(key, dir, plain).map_err(|_| EncryptError::InvalidPlaintext)?;
    write_outer_header(outer, key, &sealed.msg_key);
    Ok(Encrypted {
        len: required,
        quick_ack: sealed.quick_ack,
    })
}

/// Decrypts an MTProto 2.0 packet in place and runs every receiver check: auth_key_id equals `key.id()` (and is not
/// 0), the length is at least [`MIN_PACKET_LEN`] with a whole number of blocks after the 24-byte prefix, msg_key
/// equals SHA256(auth_key[88+x..120+x] ‖ the whole decrypted buffer including padding)[8..24] (constant-time), and
/// msg_len is non-negative, a multiple of 4 and leaves 12..=1024 bytes of padding.
///
/// `dir` is the direction the packet travelled (a client decrypts with [`Direction::ServerToClient`]). Every failure
/// costs the same work and returns the same [`DecryptError::Rejected`], with `packet` zeroed.
pub fn decrypt<'a>(key: &AuthKey, dir: Direction, packet: &'a mut [u8]) -> Result<Verified<'a>, DecryptError> {
    decrypt_impl(key, dir, packet, &mut ())
}

/// [`decrypt`] that also counts the hashing and cipher work into `meter`, for work-equivalence tests
/// (docs/CHECKLIST.md item 29, attack B3). Not part of the stable API.
#[doc(hidden)]
pub fn decrypt_metered<'a>(
    key: &AuthKey,
    dir: Direction,
    packet: &'a mut [u8],
    meter: &mut WorkMeter,
) -> Result<Verified<'a>, DecryptError> {
    decrypt_impl(key, dir, packet, meter)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn decrypt_impl<'a, M: Meter>(
    key: &AuthKey,
    dir: Direction,
    packet: &'a mut [u8],
    meter: &mut M,
) -> Result<Verified<'a>, DecryptError> {
    let total = packet.len();
    let (outer, data) = packet.split_at_mut(total.min(OUTER_HEADER_LEN));
    let (id_ok, msg_key) = read_outer(key, outer);
    // The hash runs over whatever is there before any length verdict is acted on (item 29).
    let (mac_ok, quick_ack) = open_core(key, dir, &msg_key, data, meter);
    check_and_parse(total, outer, data, id_ok & mac_ok, quick_ack)
}

/// The unencrypted prefix: whether auth_key_id is `key`'s (and not 0), and the received msg_key (zeros where the
/// packet is too short to hold it).
fn read_outer(key: &AuthKey, outer: &[u8]) -> (Choice, [u8; MSG_KEY_LEN]) {
    let id_ok = match outer.get(..AUTH_KEY_ID_LEN) {
        Some(_) => {
            let id = le_u64(outer, 0);
            id.ct_eq(&key.id()) & !id.ct_eq(&0)
        }
        None => Choice::from(0),
    };
    let mut msg_key = [0u8; MSG_KEY_LEN];
    if let Some(mk) = outer.get(AUTH_KEY_ID_LEN..OUTER_HEADER_LEN) {
        msg_key.copy_from_slice(mk);
    }
    (id_ok, msg_key)
}

/// The checks after decryption, shared by [`decrypt`] and [`decrypt_batch`]: `ok` (key id and msg_key) with the
/// shape and msg_len checks folded in without branches, then the one uniform failure or the parsed [`Verified`].
fn check_and_parse<'a>(
    total: usize,
    outer: &mut [u8],
    data: &'a mut [u8],
    ok: Choice,
    quick_ack: u32,
) -> Result<Verified<'a>, DecryptError> {
    // Lengths are public (the attacker chose them); msg_len is secret until authenticated, so it is checked without
    // branches.
    let shape_ok = Choice::from(u8::from(total >= MIN_PACKET_LEN && data.len().is_multiple_of(16)));
    let raw_len = le_u32(data, 28);
    let len = u64::from(raw_len);
    let avail = data.len().saturating_sub(INNER_HEADER_LEN) as u64;
    let len_ok = (raw_len >> 31).ct_eq(&0)
        & (raw_len & 3).ct_eq(&0)
        & !(len + MIN_PADDING as u64).ct_gt(&avail)
        & !avail.ct_gt(&(len + MAX_PADDING as u64));

    if !bool::from(ok & shape_ok & len_ok) {
        outer.zeroize();
        data.zeroize();
        return Err(DecryptError::Rejected);
    }

    let data: &'a [u8] = data;
    let body_len = usize::try_from(len).map_err(|_| DecryptError::Rejected)?;
    let body = data
        .get(INNER_HEADER_LEN..INNER_HEADER_LEN + body_len)
        .ok_or(DecryptError::Rejected)?;
    Ok(Verified {
        salt: le_u64(data, 0),
        session_id: le_u64(data, 8),
        msg_id: le_u64(data, 16),
        seq_no: le_u32(data, 24),
        quick_ack,
        padding: data.len() - INNER_HEADER_LEN - body_len,
        body,
    })
}

/// Most packets [`decrypt_batch`] decrypts side by side; a longer batch is taken in groups of this many.
pub use super::aes::MAX_BATCH;

/// One received packet of a [`decrypt_batch`], with the auth key of the session it arrived on.
pub struct BatchPacket<'k, 'a> {
    /// The key the packet must be under (its session's; each packet of a batch may have its own).
    pub key: &'k AuthKey,
    /// The whole packet (`auth_key_id ‖ msg_key ‖ encrypted part`), decrypted in place. [`decrypt_batch`] takes it
    /// (leaving an empty slice here) and hands it back as the [`Verified`] body.
    pub packet: &'a mut [u8],
}

impl core::fmt::Debug for BatchPacket<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchPacket")
            .field("key_id", &self.key.id())
            .field("len", &self.packet.len())
            .finish()
    }
}

/// Decrypts several received packets (typically of different sessions, each under its own auth key) with their
/// AES-256-IGE chains interleaved, and hands each outcome to `each` with the packet's index in `batch`.
///
/// IGE decryption of one packet is a chain: each block waits for the previous one's 14 AES rounds, so one packet is
/// bound by AES latency and leaves most of the core idle. Up to [`MAX_BATCH`] packets here are decrypted block by
/// block side by side (`crypto::aes::ige_decrypt_and_hash_batch`), their msg_key hashes fed as in the one-packet
/// fused pass, so a DC draining many sessions' sockets gets several chains' work done in the time of one. Each
/// outcome is exactly what [`decrypt`] would return for that packet: the same receiver checks, the same
/// [`DecryptError::Rejected`] with that packet zeroed, the same work for a given length whatever is wrong with it.
/// One bad packet fails alone; the others are unaffected.
///
/// `dir` is the direction every packet travelled (a DC decrypts [`Direction::ClientToServer`]). Nothing is
/// allocated; the stack holds [`MAX_BATCH`] key schedules and hashers (about 9 KiB with the software AES backend),
/// zeroized when done.
///
/// The DC role's entry point: a host serving many connections can collect the frames it has read in one turn, batch
/// their packets with their sessions' keys, and hand each verified message to its session. `Connection` decrypts
/// its frames itself, one at a time; it does not use this yet (README, Known gaps).
pub fn decrypt_batch<'a>(
    dir: Direction,
    batch: &mut [BatchPacket<'_, 'a>],
    mut each: impl FnMut(usize, Result<Verified<'a>, DecryptError>),
) {
    for (g, group) in batch.chunks_mut(MAX_BATCH).enumerate() {
        decrypt_group(dir, group, &mut |i, r| each(g * MAX_BATCH + i, r));
    }
}

/// One packet of a group between its opening (key id, msg_key, KDF) and its checks.
struct Opening<'a> {
    total: usize,
    outer: &'a mut [u8],
    data: &'a mut [u8],
    id_ok: Choice,
    msg_key: [u8; MSG_KEY_LEN],
    kv: AesKeyIv,
    hasher: sha2::Sha256,
}

fn decrypt_group<'a>(
    dir: Direction,
    group: &mut [BatchPacket<'_, 'a>],
    each: &mut impl FnMut(usize, Result<Verified<'a>, DecryptError>),
) {
    let mut open: heapless::Vec<Opening<'a>, MAX_BATCH> = heapless::Vec::new();
    for p in group.iter_mut() {
        let packet = core::mem::take(&mut p.packet);
        let total = packet.len();
        let (outer, data) = packet.split_at_mut(total.min(OUTER_HEADER_LEN));
        let (id_ok, msg_key) = read_outer(p.key, outer);
        let kv = derive_v2_metered(p.key, dir, &msg_key, &mut ());
        let hasher = msg_key_hasher(p.key, dir, data.len(), &mut ());
        // `group` is a chunk of at most MAX_BATCH packets: the push cannot fail.
        let _ = open.push(Opening {
            total,
            outer,
            data,
            id_ok,
            msg_key,
            kv,
            hasher,
        });
    }
    {
        let mut lanes: heapless::Vec<IgeHashLane<'_>, MAX_BATCH> = heapless::Vec::new();
        for o in open.iter_mut() {
            // As in `open_core`: whole blocks are decrypted and hashed, a trailing partial block only hashed.
            let aligned = o.data.len() - o.data.len() % 16;
            let _ = lanes.push(IgeHashLane {
                key: &o.kv.key,
                iv: &o.kv.iv,
                buf: o.data.get_mut(..aligned).unwrap_or_default(),
                hasher: &mut o.hasher,
            });
        }
        // Cannot fail: every lane is block-aligned by construction.
        let _ = ige_decrypt_and_hash_batch(&mut lanes, MSG_KEY_PREFIX_LEN);
    }
    for (i, mut o) in open.into_iter().enumerate() {
        let aligned = o.data.len() - o.data.len() % 16;
        o.hasher.update(o.data.get(aligned..).unwrap_or_default());
        let mut large: [u8; 32] = o.hasher.finalize_reset().into();
        let mac_ok = msg_key_matches(&msg_key_from_large(&large), &o.msg_key);
        let quick_ack = quick_ack_token(&large);
        large.as_mut_slice().zeroize();
        each(
            i,
            check_and_parse(o.total, o.outer, o.data, o.id_ok & mac_ok, quick_ack),
        );
    }
}

/// A verified MTProto 1.0 message (only ever `bind_auth_key_inner` wrapped for `auth.bindTempAuthKey`).
pub struct V1BindMessage<'a> {
    random: [u8; 16],
    msg_id: u64,
    seq_no: u32,
    body: &'a [u8],
}

impl<'a> V1BindMessage<'a> {
    /// The leading random int128 (where 1.0 session traffic had salt and session_id).
    pub fn random(&self) -> &[u8; 16] {
        &self.random
    }
    /// The inner msg_id (the DC checks it equals the outer request's).
    pub fn msg_id(&self) -> u64 {
        self.msg_id
    }
    /// The inner seq_no (must be 0).
    pub fn seq_no(&self) -> u32 {
        self.seq_no
    }
    /// The serialized `bind_auth_key_inner`.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
}

impl core::fmt::Debug for V1BindMessage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("V1BindMessage")
            .field("msg_id", &self.msg_id)
            .field("seq_no", &self.seq_no)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for V1BindMessage<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "V1BindMessage {{ msg_id: {=u64}, seq_no: {=u32} }}",
            self.msg_id,
            self.seq_no
        )
    }
}

fn sha1_msg_key(data: &[u8]) -> [u8; 16] {
    let digest: [u8; 20] = Sha1::digest(data).into();
    let mut out = [0u8; 16];
    if let Some(s) = digest.get(4..20) {
        out.copy_from_slice(s);
    }
    out
}

/// MTProto **1.0** encryption of one message, for `auth.bindTempAuthKey`'s `encrypted_message` only
/// (docs/CHECKLIST.md items 40 and 53): `perm_auth_key_id ‖ msg_key ‖ AES-IGE(plaintext ‖ 0..15 random bytes)`, with
/// msg_key = SHA1(plaintext)[4..20] (padding excluded) and the SHA-1 KDF with x = 0.
///
/// `plaintext` is `random:int128 ‖ msg_id ‖ seq_no ‖ msg_len ‖ bind_auth_key_inner`, built by the caller; its
/// `msg_len` field must equal its length minus 32. Returns the bytes written to `out`, which must hold
/// `24 + plaintext.len()` rounded up to 16.
pub fn encrypt_v1_bind<R: CryptoRng + ?Sized>(
    perm_key: &AuthKey,
    plaintext: &[u8],
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, EncryptError> {
    let n = plaintext.len();
    if !(INNER_HEADER_LEN..=MAX_V1_BIND_PLAINTEXT).contains(&n)
        || usize::try_from(le_u32(plaintext, 28)).ok() != Some(n - INNER_HEADER_LEN)
        || !n.is_multiple_of(4)
    {
        return Err(EncryptError::InvalidPlaintext);
    }
    let required = OUTER_HEADER_LEN + n.next_multiple_of(16);
    let packet = out
        .get_mut(..required)
        .ok_or(EncryptError::BufferTooSmall { required })?;
    let (outer, plain) = packet.split_at_mut(OUTER_HEADER_LEN);
    let (msg, pad) = plain.split_at_mut(n);
    msg.copy_from_slice(plaintext);
    rng.fill_bytes(pad);
    let msg_key = sha1_msg_key(plaintext);
    let kv = derive_v1(perm_key, Direction::ClientToServer, &msg_key);
    ige_encrypt(&kv.key, &kv.iv, plain).map_err(|_| EncryptError::InvalidPlaintext)?;
    write_outer_header(outer, perm_key, &msg_key);
    Ok(required)
}

/// The DC side of [`encrypt_v1_bind`]: decrypts `encrypted_message` in place under the permanent key and checks the
/// key id, the block alignment, `msg_len` (non-negative, a multiple of 4, within the plaintext, padding 0..=15) and
/// msg_key = SHA1(plaintext without padding)[4..20] in constant time. On failure `encrypted` is zeroed.
///
/// MTProto 1.0 cannot hash before it knows msg_len, so this path is not work-uniform; it only ever sees the one
/// `bind_auth_key_inner` per temporary key and is never used for session traffic.
pub fn decrypt_v1_bind<'a>(perm_key: &AuthKey, encrypted: &'a mut [u8]) -> Result<V1BindMessage<'a>, DecryptError> {
    let total = encrypted.len();
    let (outer, data) = encrypted.split_at_mut(total.min(OUTER_HEADER_LEN));
    let shape_ok = total >= OUTER_HEADER_LEN + INNER_HEADER_LEN
        && total <= OUTER_HEADER_LEN + MAX_V1_BIND_PLAINTEXT.next_multiple_of(16)
        && data.len().is_multiple_of(16);
    let id_ok = outer
        .get(..AUTH_KEY_ID_LEN)
        .map(|id| bool::from(id.ct_eq(&perm_key.id().to_le_bytes())))
        .unwrap_or(false);
    let mut msg_key = [0u8; MSG_KEY_LEN];
    if let Some(mk) = outer.get(AUTH_KEY_ID_LEN..OUTER_HEADER_LEN) {
        msg_key.copy_from_slice(mk);
    }
    let mut ok = false;
    let mut body_len = 0usize;
    if shape_ok && id_ok {
        let kv = derive_v1(perm_key, Direction::ClientToServer, &msg_key);
        let _ = ige_decrypt(&kv.key, &kv.iv, data);
        let raw_len = le_u32(data, 28);
        let avail = data.len() - INNER_HEADER_LEN;
        if let Ok(len) = usize::try_from(raw_len)
            && raw_len >> 31 == 0
            && len.is_multiple_of(4)
            && len <= avail
            && avail - len < 16
        {
            let covered = data.get(..INNER_HEADER_LEN + len).unwrap_or(&[]);
            ok = bool::from(sha1_msg_key(covered).ct_eq(&msg_key));
            body_len = len;
        }
    }
    if !ok {
        outer.zeroize();
        data.zeroize();
        return Err(DecryptError::Rejected);
    }
    let data: &'a [u8] = data;
    let mut random = [0u8; 16];
    if let Some(r) = data.get(..16) {
        random.copy_from_slice(r);
    }
    Ok(V1BindMessage {
        random,
        msg_id: le_u64(data, 16),
        seq_no: le_u32(data, 24),
        body: data.get(INNER_HEADER_LEN..INNER_HEADER_LEN + body_len).unwrap_or(&[]),
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn msg_key_comparison_sees_every_bit() {
        let a: [u8; 16] = core::array::from_fn(|i| (i * 17 + 3) as u8);
        assert!(bool::from(msg_key_matches(&a, &a)));
        for bit in 0..128 {
            let mut b = a;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(!bool::from(msg_key_matches(&a, &b)), "bit {bit}");
            assert!(!bool::from(msg_key_matches(&b, &a)), "bit {bit}");
        }
    }

    #[test]
    fn min_padding_reaches_a_block() {
        for body in (0..256).step_by(4) {
            let p = min_padding(body);
            assert!((MIN_PADDING..MIN_PADDING + 16).contains(&p));
            assert_eq!((INNER_HEADER_LEN + body + p) % 16, 0);
            assert!(encrypted_len(body, p).is_some());
            assert!(
                PaddingPolicy::new(PaddingPolicy::MAX_EXTRA_BLOCKS)
                    .unwrap()
                    .max_padding(body)
                    <= MAX_PADDING
            );
        }
        assert_eq!(MIN_PACKET_LEN, 72);
        assert!(PaddingPolicy::new(PaddingPolicy::MAX_EXTRA_BLOCKS + 1).is_none());
        assert_eq!(encrypted_len(2, 14), None);
        assert_eq!(encrypted_len(0, 1040), None);
    }
}
