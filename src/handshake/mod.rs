//! The auth-key handshake (<https://core.telegram.org/mtproto/auth_key>) as two Sans-IO state machines:
//! [`ClientHandshake`] (our client creating a permanent or temporary key with a DC) and [`ServerHandshakes`] (the DC
//! role: a bounded table of concurrent runs).
//!
//! Both exchange complete *plaintext* MTProto messages: `auth_key_id = 0 (8 bytes) ‖ msg_id (8) ‖
//! message_data_length (4) ‖ body`, ready for a transport encoder, and accept the same from a transport decoder.
//! Neither allocates, reads a clock or owns an RNG: time comes in as [`Instant`], randomness as a `CryptoRng`
//! argument.
//!
//! The run loop, with both roles in memory (a real host puts a transport codec and a socket in between):
//!
//! ```
//! # fn main() -> Result<(), Box<dyn core::error::Error>> {
//! use mtproto_sansio::crypto::{dh::DhGroup, rsa::RsaPrivateKey};
//! use mtproto_sansio::handshake::*;
//! use mtproto_sansio::time::Instant;
//!
//! // Each side brings its own CSPRNG (here the OS-seeded `rand::rng()`; any `rand_core::CryptoRng`).
//! let (mut client_rng, mut dc_rng) = (rand::rng(), rand::rng());
//! // A DC loads its stored key (`crypto::pem::parse_private_pem`); this one is made for the example.
//! let dc_rsa = RsaPrivateKey::generate(&mut dc_rng)?;
//! let trusted = [*dc_rsa.public_key()];
//! let mut client = ClientHandshake::new(ClientConfig::new(&trusted, 2), Instant::ZERO);
//! let mut dc: ServerHandshakes<'_, 4> = ServerHandshakes::new(ServerConfig::new(&dc_rsa, DhGroup::telegram(3)?));
//! let (mut c2s, mut s2c) = ([0u8; MAX_CLIENT_MESSAGE], [0u8; MAX_SERVER_MESSAGE]);
//! let now = Instant::ZERO;
//! let mut dc_key_id = None;
//! while let Some(n) = client.poll_transmit(now, &mut client_rng, &mut c2s)? {
//!     match dc.handle(now, &mut dc_rng, 1, &c2s[..n], &mut s2c, &|_key_id| false)? {
//!         ServerReply::Send(len) => client.handle_packet(now, &s2c[..len])?,
//!         ServerReply::Complete { len, outcome } => {
//!             dc_key_id = Some(outcome.auth_key.id()); // the DC stores outcome.auth_key
//!             client.handle_packet(now, &s2c[..len])?
//!         }
//!         ServerReply::Error(code) => client.handle_transport_error(now, code),
//!     }
//! }
//! assert_eq!(client.status(), Status::Done);
//! let outcome = client.take_outcome().ok_or("no key")?;
//! assert_eq!(Some(outcome.auth_key.id()), dc_key_id);
//! # Ok(())
//! # }
//! ```
//!
//! Limits are named constants here ([`MAX_ENCRYPTED_ANSWER`], [`MAX_CLIENT_MESSAGE`], [`MAX_SERVER_MESSAGE`],
//! [`MAX_FINGERPRINTS`], ...), and every per-run count (restarts, DH retries, retransmits) is bounded by a config
//! field.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

mod client;
mod server;

pub use client::{ClientConfig, ClientHandshake, KeyKind, Outcome, Status};
pub use server::{KeyCheckError, RUN_LIFETIME, ServerConfig, ServerHandshakes, ServerOutcome, ServerReply, ServerStep};

use crate::crypto::aes::ige_encrypt;
use crate::crypto::kdf::AesKeyIv;
use crate::crypto::rsa::RsaError;
use crate::crypto::{dh::DhError, factor::FactorError};
use crate::time::Instant;
use crate::tl::{TlWrite, Writer};
use core::fmt;
use sha1::{Digest, Sha1};

/// Bytes of the plaintext message header: auth_key_id (8), msg_id (8), message_data_length (4).
pub const PLAIN_HEADER_LEN: usize = 20;
/// Largest `encrypted_answer` of `server_DH_params_ok` the client accepts (item 15, "derived: ≤ 1 KiB"). A real
/// answer with a 2048-bit prime is 592 bytes.
pub const MAX_ENCRYPTED_ANSWER: usize = 1024;
/// Largest `encrypted_data` of `set_client_DH_params` the DC accepts. A real one with a 256-byte g_b is 336 bytes.
pub const MAX_CLIENT_DH_ENCRYPTED: usize = 512;
/// Largest message the client emits (`set_client_DH_params` with a 256-byte g_b: 396 bytes); the buffer handed to
/// [`ClientHandshake::poll_transmit`] must hold this many bytes.
pub const MAX_CLIENT_MESSAGE: usize = 400;
/// Largest message the DC emits (`server_DH_params_ok` with a 2048-bit prime: 652 bytes); the buffer handed to
/// [`ServerHandshakes::handle`] must hold this many bytes.
pub const MAX_SERVER_MESSAGE: usize = 656;
/// Largest plaintext handshake message either side accepts: anything longer is not a handshake message.
pub const MAX_PLAIN_MESSAGE: usize = PLAIN_HEADER_LEN + 4 + 32 + 4 + MAX_ENCRYPTED_ANSWER + 256;
/// At most this many of the server's RSA fingerprints are looked at (a real resPQ lists one to three).
pub const MAX_FINGERPRINTS: usize = 32;
/// Longest `pq`, `p` or `q` string the DC accepts inside `p_q_inner_data*` (either encoding): the DC issues a pq
/// below 2^62 and 31-bit factors, so 8 bytes hold any encoding of them a client sends (minimal, or zero-padded to a
/// fixed width as pyrogram does for p and q).
pub const MAX_PQ_STRING: usize = 8;

/// TL `string`/`bytes` of `n` ≤ 253 bytes: one length byte, the bytes, zero padding to a multiple of 4.
const fn tl_short_bytes_len(n: usize) -> usize {
    (1 + n).next_multiple_of(4)
}

/// Bytes of a `p_q_inner_data*` object after its three strings: constructor, nonce, server_nonce, new_nonce.
const PQ_INNER_FIXED: usize = 4 + 16 + 16 + 32;
/// The trailing `int` fields of the four constructors: none (`p_q_inner_data`), `expires_in` (`_temp`), `dc`
/// (`_dc`), `dc` and `expires_in` (`_temp_dc`).
const PQ_INNER_TRAILERS: [usize; 4] = [0, 4, 4, 8];

/// Marks every serialized length of a `p_q_inner_data*` whose pq, p and q are each 0..=[`MAX_PQ_STRING`] bytes.
#[allow(
    clippy::indexing_slicing,
    reason = "only evaluated for PQ_INNER_DATA_LENGTHS: out of bounds is a compile error"
)]
const fn pq_inner_length_set() -> [bool; 256] {
    let mut set = [false; 256];
    let mut t = 0;
    while t < PQ_INNER_TRAILERS.len() {
        let mut a = 0;
        while a <= MAX_PQ_STRING {
            let mut b = 0;
            while b <= MAX_PQ_STRING {
                let mut c = 0;
                while c <= MAX_PQ_STRING {
                    let len = PQ_INNER_FIXED
                        + PQ_INNER_TRAILERS[t]
                        + tl_short_bytes_len(a)
                        + tl_short_bytes_len(b)
                        + tl_short_bytes_len(c);
                    set[len] = true;
                    c += 1;
                }
                b += 1;
            }
            a += 1;
        }
        t += 1;
    }
    set
}

#[allow(
    clippy::indexing_slicing,
    reason = "only evaluated for PQ_INNER_DATA_LENGTHS: out of bounds is a compile error"
)]
const fn pq_inner_length_count() -> usize {
    let set = pq_inner_length_set();
    let mut n = 0;
    let mut i = 0;
    while i < set.len() {
        if set[i] {
            n += 1;
        }
        i += 1;
    }
    n
}

#[allow(
    clippy::indexing_slicing,
    reason = "only evaluated for PQ_INNER_DATA_LENGTHS: out of bounds is a compile error"
)]
const fn pq_inner_lengths<const N: usize>() -> [usize; N] {
    let set = pq_inner_length_set();
    let mut out = [0; N];
    let mut n = 0;
    let mut i = 0;
    while i < set.len() {
        if set[i] {
            out[n] = i;
            n += 1;
        }
        i += 1;
    }
    out
}

/// Every length a serialized `p_q_inner_data*` (any of the four constructors) can have when its pq, p and q strings
/// are at most [`MAX_PQ_STRING`] bytes, ascending: 80, 84, …, 112. The legacy `SHA1(data) ‖ data ‖ padding`
/// encoding does not say how long `data` is, so the DC hashes each of these prefixes in constant time instead of
/// parsing the secret plaintext to find out (item 24, attack B4); see [`crate::crypto::rsa::decrypt_inner_data`].
pub const PQ_INNER_DATA_LENGTHS: [usize; pq_inner_length_count()] = pq_inner_lengths();

/// Padded intermediate only: the most trailing transport padding bytes tolerated after a plaintext message.
pub const MAX_TRANSPORT_PADDING: usize = 15;

/// Transport error code: no such key / handshake run ("−404"). The only error the DC role sends for a bad run.
pub const ERR_NOT_FOUND: i32 = -404;
/// Transport error code: too many requests (flood / capacity).
pub const ERR_FLOOD: i32 = -429;
/// Transport error code: wrong DC, or test/production mismatch.
pub const ERR_WRONG_DC: i32 = -444;

pub use crate::error::BufferTooSmall;

/// Why the client handshake dropped a packet or failed.
///
/// [`HandshakeError::is_fatal`] sorts them: a non-fatal error means the packet was dropped and the state is exactly
/// as before (garbage, a stale or injected answer, a message not expected now); a fatal one means the run is over
/// ([`Status::Failed`]), and the host should close the connection, reconnect and start a new handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandshakeError {
    /// Not a well-formed plaintext handshake message (layout, auth_key_id ≠ 0, length, msg_id parity, TL). Dropped.
    Malformed,
    /// A valid message that is not the one expected in the current step. Dropped.
    Unexpected,
    /// The echoed `nonce` differs from ours (item 11). Dropped.
    NonceMismatch,
    /// The echoed `server_nonce` differs from the one of this run. Dropped.
    ServerNonceMismatch,
    /// None of the server's fingerprints names a configured RSA key (item 12).
    NoMatchingKey,
    /// `pq` is too long, too large, not a product of two distinct primes, or the budget ran out (item 13).
    Pq(FactorError),
    /// RSA_PAD encryption failed (item 14).
    Rsa(RsaError),
    /// `encrypted_answer` is empty, not a multiple of 16 or above [`MAX_ENCRYPTED_ANSWER`] (item 15).
    AnswerLength,
    /// The decrypted answer is not a `server_DH_inner_data` (item 15).
    AnswerMalformed,
    /// The SHA-1 in front of the decrypted answer does not match (item 15).
    AnswerHash,
    /// The decrypted answer carries 16 or more padding bytes (item 15).
    AnswerPadding,
    /// The nonces inside the decrypted answer differ from the outer ones (item 15).
    InnerNonceMismatch,
    /// The DH group or a public value failed its checks (items 16, 17).
    Dh(DhError),
    /// The RNG produced an all-zero nonce or exponent: refused (item 18).
    WeakRandomness,
    /// `new_nonce_hash` does not match the constructor received (item 20).
    NewNonceHash,
    /// The server asked for more `dh_gen_retry` rounds than allowed (item 20).
    TooManyDhRetries,
    /// The handshake restarted (−404, −429, `dh_gen_fail`, `server_DH_params_fail`) more often than allowed (item 22).
    TooManyRestarts,
    /// The server answered −444: wrong DC or test/production mix (item 22).
    WrongDc,
    /// Another negative transport code.
    Transport(i32),
    /// No answer after the configured retransmissions.
    Timeout,
}

impl HandshakeError {
    /// Whether the error ended the run (see the type's docs); non-fatal errors only dropped one packet.
    pub const fn is_fatal(self) -> bool {
        !matches!(
            self,
            HandshakeError::Malformed
                | HandshakeError::Unexpected
                | HandshakeError::NonceMismatch
                | HandshakeError::ServerNonceMismatch
        )
    }
}

impl HandshakeError {
    /// Whose fault the error is. The server's messages and checks are the peer's; the RSA keys, the DC and the RNG
    /// are the host's (a server naming none of the configured keys is almost always a test/production mix-up, and
    /// otherwise a man in the middle the host's keys refused: either way no retry helps); transport codes, lost
    /// answers and too many restarts are the environment's.
    pub const fn fault(&self) -> Fault {
        match self {
            HandshakeError::Malformed
            | HandshakeError::Unexpected
            | HandshakeError::NonceMismatch
            | HandshakeError::ServerNonceMismatch
            | HandshakeError::Pq(_)
            | HandshakeError::AnswerLength
            | HandshakeError::AnswerMalformed
            | HandshakeError::AnswerHash
            | HandshakeError::AnswerPadding
            | HandshakeError::InnerNonceMismatch
            | HandshakeError::Dh(_)
            | HandshakeError::NewNonceHash
            | HandshakeError::TooManyDhRetries => Fault::Peer,
            HandshakeError::NoMatchingKey
            | HandshakeError::Rsa(_)
            | HandshakeError::WeakRandomness
            | HandshakeError::WrongDc => Fault::Host,
            HandshakeError::TooManyRestarts | HandshakeError::Transport(_) | HandshakeError::Timeout => {
                Fault::Environment
            }
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Malformed => f.write_str("malformed handshake message"),
            HandshakeError::Unexpected => f.write_str("unexpected handshake message"),
            HandshakeError::NonceMismatch => f.write_str("nonce mismatch"),
            HandshakeError::ServerNonceMismatch => f.write_str("server_nonce mismatch"),
            HandshakeError::NoMatchingKey => f.write_str("no server RSA fingerprint matches a configured key"),
            HandshakeError::Pq(e) => write!(f, "pq: {e}"),
            HandshakeError::Rsa(e) => write!(f, "RSA: {e}"),
            HandshakeError::AnswerLength => f.write_str("encrypted_answer length invalid"),
            HandshakeError::AnswerMalformed => f.write_str("decrypted answer malformed"),
            HandshakeError::AnswerHash => f.write_str("decrypted answer SHA-1 mismatch"),
            HandshakeError::AnswerPadding => f.write_str("decrypted answer padding too long"),
            HandshakeError::InnerNonceMismatch => f.write_str("inner nonce mismatch"),
            HandshakeError::Dh(e) => write!(f, "DH: {e}"),
            HandshakeError::WeakRandomness => f.write_str("RNG produced an all-zero value"),
            HandshakeError::NewNonceHash => f.write_str("new_nonce_hash mismatch"),
            HandshakeError::TooManyDhRetries => f.write_str("too many dh_gen_retry rounds"),
            HandshakeError::TooManyRestarts => f.write_str("too many handshake restarts"),
            HandshakeError::WrongDc => f.write_str("server answered -444 (wrong DC)"),
            HandshakeError::Transport(c) => write!(f, "transport error {c}"),
            HandshakeError::Timeout => f.write_str("handshake timed out"),
        }
    }
}

impl core::error::Error for HandshakeError {}

/// Splits a plaintext message into (msg_id, body). `max_trailing` bytes after the body are tolerated (padded
/// intermediate's transport padding); otherwise the body must fill the payload exactly (item 26).
pub(crate) fn parse_plain(payload: &[u8], max_trailing: usize) -> Result<(u64, &[u8]), HandshakeError> {
    if payload.len() > MAX_PLAIN_MESSAGE + max_trailing {
        return Err(HandshakeError::Malformed);
    }
    let (head, rest) = payload
        .split_at_checked(PLAIN_HEADER_LEN)
        .ok_or(HandshakeError::Malformed)?;
    let mut r = crate::tl::Reader::new(head);
    let key_id = r.u64().map_err(|_| HandshakeError::Malformed)?;
    let msg_id = r.u64().map_err(|_| HandshakeError::Malformed)?;
    let len = r.u32().map_err(|_| HandshakeError::Malformed)? as usize;
    if key_id != 0 || len > rest.len() || rest.len() - len > max_trailing {
        return Err(HandshakeError::Malformed);
    }
    let body = rest.get(..len).ok_or(HandshakeError::Malformed)?;
    Ok((msg_id, body))
}

/// Writes `auth_key_id 0 ‖ msg_id ‖ len ‖ body` into `out`; returns the message length.
pub(crate) fn write_plain<T: TlWrite>(out: &mut [u8], msg_id: u64, body: &T) -> Result<usize, BufferTooSmall> {
    let body_len = body.tl_len();
    let total = PLAIN_HEADER_LEN + body_len;
    let dst = out.get_mut(..total).ok_or(BufferTooSmall { required: total })?;
    let mut w = Writer::new(dst);
    let len32 = u32::try_from(body_len).map_err(|_| BufferTooSmall { required: total })?;
    w.u64(0)
        .and_then(|()| w.u64(msg_id))
        .and_then(|()| w.u32(len32))
        .and_then(|()| w.put(body))
        .map_err(|_| BufferTooSmall { required: total })?;
    Ok(total)
}

/// Strictly increasing msg_ids for one side: Unix time·2^32 with the low two bits set to the side's parity
/// (0 for a client, 1 for a server response).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MsgIds {
    last: u64,
}

impl MsgIds {
    pub(crate) fn next(&mut self, unix_micros: u64, parity: u64) -> u64 {
        let secs = unix_micros / 1_000_000;
        let frac = ((unix_micros % 1_000_000) << 32) / 1_000_000;
        let mut id = (secs << 32) | (frac & !3) | parity;
        if id <= self.last {
            id = self.last.wrapping_add(4);
        }
        self.last = id;
        id
    }
}

/// Unix microseconds at `now`, given Unix microseconds at [`Instant::ZERO`].
pub(crate) fn unix_micros(unix_micros_at_zero: u64, now: Instant) -> u64 {
    unix_micros_at_zero.saturating_add(now.as_micros())
}

/// `new_nonce_hashN` = the low 128 bits of SHA1(new_nonce ‖ N ‖ auth_key_aux_hash) (item 20).
pub(crate) fn new_nonce_hash(new_nonce: &[u8; 32], n: u8, aux_hash: u64) -> [u8; 16] {
    let digest: [u8; 20] = Sha1::new()
        .chain_update(new_nonce)
        .chain_update([n])
        .chain_update(aux_hash.to_le_bytes())
        .finalize()
        .into();
    low128(&digest)
}

/// `server_DH_params_fail.new_nonce_hash` = the low 128 bits of SHA1(new_nonce).
pub(crate) fn plain_new_nonce_hash(new_nonce: &[u8; 32]) -> [u8; 16] {
    let digest: [u8; 20] = Sha1::digest(new_nonce).into();
    low128(&digest)
}

fn low128(digest: &[u8; 20]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest.iter().skip(4)) {
        *o = *d;
    }
    out
}

/// The first server salt: new_nonce[0..8] XOR server_nonce[0..8], read as the little-endian `long` it is on the wire.
pub(crate) fn first_salt(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> u64 {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    for (o, i) in a.iter_mut().zip(new_nonce.iter()) {
        *o = *i;
    }
    for (o, i) in b.iter_mut().zip(server_nonce.iter()) {
        *o = *i;
    }
    u64::from_le_bytes(a) ^ u64::from_le_bytes(b)
}

/// Big-endian magnitude of at most 8 significant bytes (leading zeros tolerated), for pq, p and q.
pub(crate) fn be_u64(bytes: &[u8]) -> Option<u64> {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let digits = bytes.get(first..)?;
    if digits.len() > 8 {
        return None;
    }
    Some(digits.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// Big-endian bytes of `v` without leading zeros, in a fixed buffer, with their length.
pub(crate) fn be_trimmed(v: u64) -> ([u8; 8], usize) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    let mut out = [0u8; 8];
    let len = 8 - skip.min(8);
    for (o, b) in out.iter_mut().zip(bytes.iter().skip(8 - len)) {
        *o = *b;
    }
    (out, len)
}

/// `SHA1(data) ‖ data ‖ random padding` encrypted in place with the handshake's tmp AES key. `buf` holds `data` at
/// `[20..20 + data_len]`; returns the total (a multiple of 16). Draws `pad` bytes from `rng`.
pub(crate) fn seal_with_sha1<R: rand_core::CryptoRng + ?Sized>(
    tmp: &AesKeyIv,
    buf: &mut [u8],
    data_len: usize,
    rng: &mut R,
) -> Option<usize> {
    let unpadded = 20 + data_len;
    let total = unpadded.next_multiple_of(16);
    let digest: [u8; 20] = Sha1::digest(buf.get(20..unpadded)?).into();
    buf.get_mut(..20)?.copy_from_slice(&digest);
    rng.fill_bytes(buf.get_mut(unpadded..total)?);
    ige_encrypt(&tmp.key, &tmp.iv, buf.get_mut(..total)?).ok()?;
    Some(total)
}

/// Checks a decrypted `SHA1(data) ‖ data ‖ padding` buffer, where `data_len` is the TL length of the object after
/// the hash: the padding must be below 16 bytes and the SHA-1 must match (compared in constant time).
pub(crate) fn check_sha1_padding(plain: &[u8], data_len: usize) -> Result<(), HandshakeError> {
    use subtle::ConstantTimeEq;
    let pad = plain
        .len()
        .checked_sub(20 + data_len)
        .ok_or(HandshakeError::AnswerMalformed)?;
    let (hash, rest) = plain.split_at_checked(20).ok_or(HandshakeError::AnswerMalformed)?;
    let data = rest.get(..data_len).ok_or(HandshakeError::AnswerMalformed)?;
    let digest: [u8; 20] = Sha1::digest(data).into();
    let hash_ok: bool = digest.ct_eq(hash).into();
    if pad >= 16 {
        return Err(HandshakeError::AnswerPadding);
    }
    if !hash_ok {
        return Err(HandshakeError::AnswerHash);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_increase_with_parity() {
        let mut ids = MsgIds::default();
        let a = ids.next(1_735_910_891_000_085, 0);
        let b = ids.next(1_735_910_891_000_085, 0);
        let c = ids.next(1_735_910_890_000_000, 0);
        assert!(a < b && b < c);
        assert!(a % 4 == 0 && b % 4 == 0 && c % 4 == 0);
        assert_eq!(a >> 32, 1_735_910_891);
        let mut s = MsgIds::default();
        assert_eq!(s.next(1_000_000, 1) % 4, 1);
    }

    #[test]
    fn plain_layout_is_strict() {
        let mut buf = [0u8; 64];
        let n = write_plain(
            &mut buf,
            0x1234_5678_9abc_def0,
            &crate::tl::ReqPqMulti { nonce: [7; 16] },
        )
        .unwrap();
        assert_eq!(n, 40);
        let (id, body) = parse_plain(&buf[..n], 0).unwrap();
        assert_eq!(id, 0x1234_5678_9abc_def0);
        assert_eq!(body.len(), 20);
        assert_eq!(parse_plain(&buf[..n + 4], 0), Err(HandshakeError::Malformed));
        assert!(parse_plain(&buf[..n + 4], 15).is_ok());
        assert_eq!(parse_plain(&buf[..n - 1], 0), Err(HandshakeError::Malformed));
        buf[0] = 1;
        assert_eq!(parse_plain(&buf[..n], 0), Err(HandshakeError::Malformed));
    }

    #[test]
    fn be_helpers() {
        assert_eq!(be_u64(&[0, 0, 1, 2]), Some(0x102));
        assert_eq!(be_u64(&[1; 9]), None);
        assert_eq!(be_u64(&[0; 12]), Some(0));
        let (b, n) = be_trimmed(0x44095E05);
        assert_eq!(&b[..n], &[0x44, 0x09, 0x5E, 0x05]);
        assert_eq!(be_trimmed(0).1, 0);
    }
}
