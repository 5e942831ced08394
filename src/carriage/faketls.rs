//! Fake-TLS MTProxy (`ee` secrets), both roles.
//!
//! The construction follows mtprotoproxy (`alexbers/mtprotoproxy`, `mtprotoproxy.py`,
//! `handle_fake_tls_handshake` and `FakeTLSStreamReader/Writer`), which matches tdlib's `TlsInit` and the official
//! MTProxy:
//! - The client sends one 517-byte TLS 1.3-looking ClientHello record (`16 03 01 02 00 01 00 01 fc 03 03 …`). Its
//!   32-byte `random` (offset 11) is `HMAC-SHA-256(key, hello with random zeroed)` with the last 4 bytes XORed with
//!   the Unix time, little-endian. The server recomputes the HMAC, requires the first 28 bytes of the XOR to be
//!   zero (constant time), reads the timestamp, checks it against a skew window, requires the SNI to name the
//!   secret's domain ([`FakeTlsError::WrongDomain`]; such a client is a bad one, like a wrong digest), and refuses
//!   a random it has already seen ([`ReplayCache`], docs/CHECKLIST.md item 9). The hello has Chrome's shape as tdlib's
//!   `TlsHello` builds it: GREASE values (RFC 8701) in the cipher suites, the first and last extensions,
//!   supported_groups, key_share and supported_versions, and the extensions in random order (see
//!   [`client_hello`]).
//! - The server answers with a ServerHello record (session id echoed, cipher `13 01`, key_share and
//!   supported_versions extensions), a ChangeCipherSpec record, and an application-data record of random bytes
//!   (the fake certificate). The ServerHello `random` is `HMAC-SHA-256(key, client random ‖ those records with the
//!   random zeroed)`, which the client verifies.
//! - Then both directions are TLS application-data records (`17 03 03 len`) around the obfuscated transport
//!   (64-byte init with the 16-byte key as its secret, padded intermediate inside). ChangeCipherSpec records are
//!   skipped on receipt; alerts and other types are fatal.
//!
//! Manual interoperability check (not run in CI; it needs the session engine and a network): run `mtprotoproxy`
//! (PyPI) with `USERS = {"t": "<32 hex>"}`, `MODES = {"classic": True, "secure": True, "tls": True}` and
//! `TLS_DOMAIN = "www.google.com"`; connect a client built on [`client_hello`], [`ServerHelloReader`],
//! [`RecordEncoder::client`] and an `ObfuscatedCodec` keyed with [`FakeTlsSecret::proxy_secret`] using the secret
//! `ee<32 hex><hex of the domain>`, and complete `req_pq_multi`. Repeat with the plain and `dd` secrets over
//! `ObfuscatedCodec` alone. Then point our server side at a Telegram client configured with the same secrets.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{Out, WriteError};
use crate::transport::obfuscated::ProxySecret;
/// The replay cache moved to [`crate::transport::replay`] (the DC session consults it for every obfuscated init);
/// re-exported here, where the fake-TLS hello uses it.
pub use crate::transport::replay::{ReplayCache, Replayed};

/// Size of the emulated ClientHello record, as tdlib and mtprotoproxy expect it.
pub const CLIENT_HELLO_LEN: usize = 517;
/// Offset of the 32-byte `random` (the digest) in ClientHello and ServerHello records.
pub const DIGEST_POS: usize = 11;
/// Length of the digest.
pub const DIGEST_LEN: usize = 32;
/// The first 11 bytes mtprotoproxy requires of a ClientHello (record header, handshake header, version).
pub const CLIENT_HELLO_START: [u8; 11] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
/// The ChangeCipherSpec record.
pub const CHANGE_CIPHER_SPEC: [u8; 6] = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
/// Largest TLS record payload written (the TLS plaintext limit).
pub const MAX_RECORD_PAYLOAD: usize = 16384;
/// Default largest record payload accepted (TLS 1.3 ciphertext limit, 2^14 + 256).
pub const DEFAULT_MAX_RECORD: usize = 16384 + 256;
/// Longest SNI domain a secret may carry (DNS limit; it must also fit the 517-byte hello).
pub const MAX_DOMAIN: usize = 253;
/// Default accepted clock skew: a hello may be this many seconds older than `now` ...
pub const DEFAULT_SKEW_PAST: u32 = 20 * 60;
/// ... or this many seconds newer (mtprotoproxy's `TIME_SKEW_MIN/MAX`).
pub const DEFAULT_SKEW_FUTURE: u32 = 10 * 60;
/// Bounds of the fake certificate length drawn by the server (mtprotoproxy draws 1024..4096).
pub const FAKE_CERT_MIN: usize = 1024;
/// Upper bound (inclusive) of the fake certificate length.
pub const FAKE_CERT_MAX: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

fn hmac_parts(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 32] {
    // Any key length is valid for HMAC; the fallback is unreachable.
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return [0; 32];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// An `ee` secret: `0xee ‖ key (16) ‖ SNI domain`. Zeroized on drop; `Debug` shows only the domain.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FakeTlsSecret {
    key: [u8; 16],
    inner: ProxySecret,
    domain: [u8; MAX_DOMAIN],
    domain_len: usize,
}

/// Why a fake-TLS secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecretError {
    /// Not `0xee` followed by 16 bytes and a domain.
    BadFormat,
    /// The domain is empty, too long for the hello, or has characters outside `[A-Za-z0-9.-]`.
    BadDomain,
}

impl core::fmt::Display for SecretError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SecretError::BadFormat => f.write_str("fake-TLS secret must be 0xee, 16 key bytes, then a domain"),
            SecretError::BadDomain => f.write_str("invalid fake-TLS SNI domain"),
        }
    }
}

impl core::error::Error for SecretError {}

impl FakeTlsSecret {
    /// Parses the raw (hex-decoded) `ee` secret.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, SecretError> {
        let [0xee, rest @ ..] = raw else {
            return Err(SecretError::BadFormat);
        };
        let (key, domain) = rest.split_first_chunk::<16>().ok_or(SecretError::BadFormat)?;
        Self::new(key, domain)
    }

    /// Builds a secret from its key and SNI domain.
    pub fn new(key: &[u8; 16], domain: &[u8]) -> Result<Self, SecretError> {
        if domain.is_empty()
            || domain.len() > MAX_DOMAIN
            || domain.len() > max_domain_in_hello()
            || !domain
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(SecretError::BadDomain);
        }
        let mut d = [0u8; MAX_DOMAIN];
        d.get_mut(..domain.len())
            .ok_or(SecretError::BadDomain)?
            .copy_from_slice(domain);
        let mut raw = [0xdd_u8; 17];
        if let Some(d) = raw.get_mut(1..) {
            d.copy_from_slice(key);
        }
        let inner = ProxySecret::from_bytes(&raw).map_err(|_| SecretError::BadFormat);
        raw.zeroize();
        Ok(FakeTlsSecret {
            key: *key,
            inner: inner?,
            domain: d,
            domain_len: domain.len(),
        })
    }

    /// The SNI domain.
    pub fn domain(&self) -> &[u8] {
        self.domain.get(..self.domain_len).unwrap_or(&[])
    }

    /// The secret of the obfuscated stream inside the records: the 16-byte key, with padded intermediate made
    /// mandatory (as with `dd`), which is what fake-TLS clients use.
    pub fn proxy_secret(&self) -> ProxySecret {
        self.inner.clone()
    }
}

impl core::fmt::Debug for FakeTlsSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FakeTlsSecret")
            .field("domain", &core::str::from_utf8(self.domain()).unwrap_or("?"))
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FakeTlsSecret {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "FakeTlsSecret {{ domain_len: {} }}", self.domain_len)
    }
}

/// Cipher suites of the emulated hello after its GREASE suite (Chrome's list, as tdlib sends it).
const CIPHERS: [u16; 15] = [
    0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
    0x0035,
];

/// How many GREASE values one hello draws (tdlib's `TlsHello::grease_size_`). Seeds used: 0 the cipher suite,
/// 2 the first extension, 4 the supported group and key share, 6 the supported version, 3 the last extension.
pub const GREASE_SEEDS: usize = 7;

/// One extension of the permuted block: its bytes, where a GREASE value goes (offset, seed), and whether the
/// X25519 key fills its last 32 bytes.
struct Ext {
    bytes: &'static [u8],
    grease: Option<(usize, usize)>,
    key: bool,
}

/// The extensions Chrome sends in random order (tdlib's `Op::permutation`), after the SNI extension which is
/// built from the domain. Left out against tdlib's current list: the X25519MLKEM768 key share and group and the
/// ECH extension, which would take the hello past the 517 bytes every MTProxy implementation reads.
const EXTS: [Ext; 14] = [
    // status_request
    Ext {
        bytes: &[0x00, 0x05, 0x00, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00],
        grease: None,
        key: false,
    },
    // supported_groups: GREASE, x25519, secp256r1, secp384r1
    Ext {
        bytes: &[
            0x00, 0x0a, 0x00, 0x0a, 0x00, 0x08, 0x0a, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18,
        ],
        grease: Some((6, 4)),
        key: false,
    },
    // ec_point_formats
    Ext {
        bytes: &[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00],
        grease: None,
        key: false,
    },
    // signature_algorithms
    Ext {
        bytes: &[
            0x00, 0x0d, 0x00, 0x12, 0x00, 0x10, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01,
            0x08, 0x06, 0x06, 0x01,
        ],
        grease: None,
        key: false,
    },
    // ALPN: h2, http/1.1
    Ext {
        bytes: &[
            0x00, 0x10, 0x00, 0x0e, 0x00, 0x0c, 0x02, b'h', b'2', 0x08, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
        grease: None,
        key: false,
    },
    // signed_certificate_timestamp
    Ext {
        bytes: &[0x00, 0x12, 0x00, 0x00],
        grease: None,
        key: false,
    },
    // extended_master_secret
    Ext {
        bytes: &[0x00, 0x17, 0x00, 0x00],
        grease: None,
        key: false,
    },
    // compress_certificate: brotli
    Ext {
        bytes: &[0x00, 0x1b, 0x00, 0x03, 0x02, 0x00, 0x02],
        grease: None,
        key: false,
    },
    // session_ticket
    Ext {
        bytes: &[0x00, 0x23, 0x00, 0x00],
        grease: None,
        key: false,
    },
    // supported_versions: GREASE, TLS 1.3, TLS 1.2
    Ext {
        bytes: &[0x00, 0x2b, 0x00, 0x07, 0x06, 0x0a, 0x0a, 0x03, 0x04, 0x03, 0x03],
        grease: Some((5, 6)),
        key: false,
    },
    // psk_key_exchange_modes
    Ext {
        bytes: &[0x00, 0x2d, 0x00, 0x02, 0x01, 0x01],
        grease: None,
        key: false,
    },
    // key_share: a GREASE group with a one-byte key, then x25519 with 32 bytes
    Ext {
        bytes: &[
            0x00, 0x33, 0x00, 0x2b, 0x00, 0x29, 0x0a, 0x0a, 0x00, 0x01, 0x00, 0x00, 0x1d, 0x00, 0x20, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        grease: Some((6, 4)),
        key: true,
    },
    // application_settings (ALPS): h2
    Ext {
        bytes: &[0x44, 0xcd, 0x00, 0x05, 0x00, 0x03, 0x02, b'h', b'2'],
        grease: None,
        key: false,
    },
    // renegotiation_info
    Ext {
        bytes: &[0xff, 0x01, 0x00, 0x01, 0x00],
        grease: None,
        key: false,
    },
];

/// Hello bytes before the extensions: record + handshake headers, version, random, session id, GREASE + cipher
/// suites, compression, extensions length.
const PRE_EXT: usize = 11 + 32 + 1 + 32 + 2 + 2 + CIPHERS.len() * 2 + 2 + 2;
/// The empty GREASE extension first, and the one-byte GREASE extension last.
const GREASE_EXTS_LEN: usize = 4 + 5;
/// SNI extension overhead: type, length, list length, name type, name length.
const SNI_OVERHEAD: usize = 9;
/// Padding extension header.
const PADDING_HDR: usize = 4;

const fn exts_len() -> usize {
    let mut rest: &[Ext] = &EXTS;
    let mut n = 0;
    while let [first, tail @ ..] = rest {
        n += first.bytes.len();
        rest = tail;
    }
    n
}

const fn max_domain_in_hello() -> usize {
    CLIENT_HELLO_LEN - PRE_EXT - GREASE_EXTS_LEN - SNI_OVERHEAD - exts_len() - PADDING_HDR
}

/// Whether `v` is a GREASE value of RFC 8701 (`0x?A?A` with both bytes equal).
pub const fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// tdlib's `Grease::init`: random `0x?A` bytes, with each odd seed made to differ from the even one before it so
/// that the first and last GREASE extensions never share a type.
fn grease_bytes<R: CryptoRng + ?Sized>(rng: &mut R) -> [u8; GREASE_SEEDS] {
    let mut g = [0u8; GREASE_SEEDS];
    rng.fill_bytes(&mut g);
    for b in &mut g {
        *b = (*b & 0xf0) | 0x0a;
    }
    for pair in g.chunks_exact_mut(2) {
        if let [a, b] = pair
            && a == b
        {
            *b ^= 0x10;
        }
    }
    g
}

/// A uniform index below `n` (rejection sampling; `n` is at most the number of extensions).
fn uniform<R: CryptoRng + ?Sized>(rng: &mut R, n: u32) -> u32 {
    let n = n.max(1);
    let zone = u32::MAX - u32::MAX % n;
    // Each draw is accepted with probability above 1 - 2^-27, so the bound is never reached in practice; it
    // keeps the loop finite for any RNG.
    for _ in 0..64 {
        let x = rng.next_u32();
        if x < zone {
            return x % n;
        }
    }
    0
}

/// What a client keeps between its hello and the server's answer.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientHelloState {
    random: [u8; DIGEST_LEN],
}

impl core::fmt::Debug for ClientHelloState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ClientHelloState(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for ClientHelloState {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ClientHelloState(..)")
    }
}

impl ClientHelloState {
    /// The digest the hello carried in its `random`.
    pub fn client_random(&self) -> &[u8; DIGEST_LEN] {
        &self.random
    }
}

/// Client side: builds the 517-byte ClientHello for `secret` at Unix time `now`, and the state needed to verify
/// the server's answer. The layout is Chrome's as tdlib's `TlsHello` emits it: a GREASE cipher suite first, a
/// GREASE extension first and last, GREASE in supported_groups, key_share and supported_versions, the other
/// extensions (SNI included) in random order, then padding to 517 bytes. Every random choice (GREASE values,
/// session id, key share, extension order) comes from `rng`.
pub fn client_hello<R: CryptoRng + ?Sized>(
    secret: &FakeTlsSecret,
    now: u32,
    rng: &mut R,
) -> Result<([u8; CLIENT_HELLO_LEN], ClientHelloState), WriteError> {
    let mut hello = [0u8; CLIENT_HELLO_LEN];
    let domain = secret.domain();
    let grease = grease_bytes(rng);
    let g = |seed: usize| {
        let b = grease.get(seed).copied().unwrap_or(0x0a);
        [b, b]
    };
    let mut o = Out::new(&mut hello);
    o.put(&CLIENT_HELLO_START)?;
    o.put(&[0; DIGEST_LEN])?;
    o.put(&[32])?;
    rng.fill_bytes(o.reserve(32)?);
    o.put(&(((CIPHERS.len() + 1) * 2) as u16).to_be_bytes())?;
    o.put(&g(0))?;
    for c in CIPHERS {
        o.put(&c.to_be_bytes())?;
    }
    o.put(&[0x01, 0x00])?;
    o.put(&((CLIENT_HELLO_LEN - PRE_EXT) as u16).to_be_bytes())?;
    o.put(&g(2))?;
    o.put(&[0x00, 0x00])?;
    let mut key = [0u8; 32];
    rng.fill_bytes(&mut key);
    // A canonical X25519 u-coordinate has its top bit clear; a set bit would mark the hello as synthetic.
    if let Some(last) = key.last_mut() {
        *last &= 0x7f;
    }
    // Index 0 is SNI, 1.. the entries of EXTS; Fisher-Yates with the caller's RNG.
    let mut order: [u8; EXTS.len() + 1] = core::array::from_fn(|i| i as u8);
    for i in (1..order.len()).rev() {
        let j = uniform(rng, (i + 1) as u32) as usize;
        order.swap(i, j);
    }
    let dl = u16::try_from(domain.len()).map_err(|_| WriteError::InvalidInput)?;
    for idx in order {
        let Some(ext) = usize::from(idx).checked_sub(1).and_then(|i| EXTS.get(i)) else {
            o.put(&[0x00, 0x00])?;
            o.put(&(dl + 5).to_be_bytes())?;
            o.put(&(dl + 3).to_be_bytes())?;
            o.put(&[0x00])?;
            o.put(&dl.to_be_bytes())?;
            o.put(domain)?;
            continue;
        };
        let dst = o.reserve(ext.bytes.len())?;
        dst.copy_from_slice(ext.bytes);
        if let Some((at, seed)) = ext.grease
            && let Some(d) = dst.get_mut(at..at + 2)
        {
            d.copy_from_slice(&g(seed));
        }
        if ext.key {
            let n = dst.len();
            if let Some(d) = dst.get_mut(n.saturating_sub(32)..) {
                d.copy_from_slice(&key);
            }
        }
    }
    key.zeroize();
    o.put(&g(3))?;
    o.put(&[0x00, 0x01, 0x00])?;
    let pad = CLIENT_HELLO_LEN
        .checked_sub(o.len() + PADDING_HDR)
        .ok_or(WriteError::InvalidInput)?;
    o.put(&[0x00, 0x15])?;
    o.put(&(pad as u16).to_be_bytes())?;
    o.reserve(pad)?;
    let mut random = hmac_parts(&secret.key, &[&hello]);
    for (r, t) in random.iter_mut().skip(DIGEST_LEN - 4).zip(now.to_le_bytes()) {
        *r ^= t;
    }
    if let Some(d) = hello.get_mut(DIGEST_POS..DIGEST_POS + DIGEST_LEN) {
        d.copy_from_slice(&random);
    }
    Ok((hello, ClientHelloState { random }))
}

/// The server name a ClientHello record (header included) names in its SNI extension: the first `host_name`
/// entry. `Ok(None)` when the hello has no SNI extension.
pub fn client_hello_sni(record: &[u8]) -> Result<Option<&[u8]>, FakeTlsError> {
    let body = record.get(5 + 4 + 2 + DIGEST_LEN..).ok_or(FakeTlsError::Malformed)?;
    let (&sid_len, rest) = body.split_first().ok_or(FakeTlsError::Malformed)?;
    let rest = rest.get(usize::from(sid_len)..).ok_or(FakeTlsError::Malformed)?;
    let (cs_len, rest) = rest.split_first_chunk::<2>().ok_or(FakeTlsError::Malformed)?;
    let rest = rest
        .get(usize::from(u16::from_be_bytes(*cs_len))..)
        .ok_or(FakeTlsError::Malformed)?;
    let (&comp_len, rest) = rest.split_first().ok_or(FakeTlsError::Malformed)?;
    let rest = rest.get(usize::from(comp_len)..).ok_or(FakeTlsError::Malformed)?;
    let (ext_len, rest) = rest.split_first_chunk::<2>().ok_or(FakeTlsError::Malformed)?;
    let mut exts = rest
        .get(..usize::from(u16::from_be_bytes(*ext_len)))
        .ok_or(FakeTlsError::Malformed)?;
    // Each round consumes at least four bytes, so the walk ends.
    while let Some((hdr, after)) = exts.split_first_chunk::<4>() {
        let [t0, t1, l0, l1] = *hdr;
        let data = after
            .get(..usize::from(u16::from_be_bytes([l0, l1])))
            .ok_or(FakeTlsError::Malformed)?;
        exts = after.get(data.len()..).unwrap_or(&[]);
        if [t0, t1] != [0, 0] {
            continue;
        }
        let (list_len, list) = data.split_first_chunk::<2>().ok_or(FakeTlsError::Malformed)?;
        let list = list
            .get(..usize::from(u16::from_be_bytes(*list_len)))
            .ok_or(FakeTlsError::Malformed)?;
        let [0, n0, n1, name @ ..] = list else {
            return Err(FakeTlsError::Malformed);
        };
        return name
            .get(..usize::from(u16::from_be_bytes([*n0, *n1])))
            .map(Some)
            .ok_or(FakeTlsError::Malformed);
    }
    if !exts.is_empty() {
        return Err(FakeTlsError::Malformed);
    }
    Ok(None)
}

/// A fake-TLS handshake failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FakeTlsError {
    /// A record header of the wrong type or version for this point of the handshake.
    UnexpectedRecord,
    /// A record longer than the configured limit, or a handshake larger than the reader's buffer.
    RecordTooLarge,
    /// The hello is structurally invalid (handshake type, session id length, ...).
    Malformed,
    /// The HMAC digest does not verify (wrong secret, tampering, or a probe).
    BadDigest,
    /// The client timestamp lies outside the accepted skew window.
    StaleTimestamp {
        /// The timestamp the hello carried.
        timestamp: u32,
    },
    /// The hello's random was already seen (docs/CHECKLIST.md item 9, attack B19).
    Replayed,
    /// The hello's SNI is missing or names another domain than the secret's (mtprotoproxy treats such a client
    /// as a bad one, like a wrong digest).
    WrongDomain,
    /// A TLS alert record from the peer.
    Alert {
        /// The alert level and description bytes.
        level: u8,
        /// The alert description.
        description: u8,
    },
}

impl core::fmt::Display for FakeTlsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FakeTlsError::UnexpectedRecord => f.write_str("unexpected TLS record"),
            FakeTlsError::RecordTooLarge => f.write_str("TLS record exceeds the limit"),
            FakeTlsError::Malformed => f.write_str("malformed TLS hello"),
            FakeTlsError::BadDigest => f.write_str("fake-TLS digest does not verify"),
            FakeTlsError::StaleTimestamp { timestamp } => write!(f, "fake-TLS timestamp {timestamp} outside window"),
            FakeTlsError::Replayed => f.write_str("replayed fake-TLS hello"),
            FakeTlsError::WrongDomain => f.write_str("fake-TLS hello names another domain"),
            FakeTlsError::Alert { level, description } => write!(f, "TLS alert {level}/{description}"),
        }
    }
}

impl core::error::Error for FakeTlsError {}

/// Reads a fixed sequence of TLS records (their types given by `expect`) into a bounded buffer, never consuming a
/// byte past the last one.
struct RecordsReader<const M: usize> {
    buf: [u8; M],
    len: usize,
    record: usize,
    record_start: usize,
    max_record: usize,
}

impl<const M: usize> RecordsReader<M> {
    const fn new(max_record: usize) -> Self {
        RecordsReader {
            buf: [0; M],
            len: 0,
            record: 0,
            record_start: 0,
            max_record,
        }
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Returns bytes consumed and whether all records are in.
    fn feed(&mut self, input: &[u8], expect: &[[u8; 3]]) -> Result<(usize, bool), FakeTlsError> {
        let mut pos = 0;
        loop {
            if self.record >= expect.len() {
                return Ok((pos, true));
            }
            let in_record = self.len - self.record_start;
            let need = if in_record < 5 {
                5 - in_record
            } else {
                let [_, _, _, hi, lo] = *self
                    .buf
                    .get(self.record_start..self.record_start + 5)
                    .and_then(|h| h.first_chunk::<5>())
                    .ok_or(FakeTlsError::Malformed)?;
                5 + usize::from(u16::from_be_bytes([hi, lo])) - in_record
            };
            if need == 0 {
                self.record += 1;
                self.record_start = self.len;
                continue;
            }
            let rest = input.get(pos..).unwrap_or(&[]);
            let n = need.min(rest.len());
            if n == 0 {
                return Ok((pos, false));
            }
            let dst = self
                .buf
                .get_mut(self.len..self.len + n)
                .ok_or(FakeTlsError::RecordTooLarge)?;
            dst.copy_from_slice(rest.get(..n).unwrap_or(&[]));
            self.len += n;
            pos += n;
            if in_record < 5 && self.len - self.record_start >= 5 {
                let hdr = self.buf.get(self.record_start..self.record_start + 5).unwrap_or(&[]);
                let exp = expect.get(self.record).ok_or(FakeTlsError::Malformed)?;
                if let [0x15, 0x03, _, ..] = hdr {
                    return Err(FakeTlsError::Alert {
                        level: 0,
                        description: 0,
                    });
                }
                if hdr.get(..3) != Some(&exp[..]) {
                    return Err(FakeTlsError::UnexpectedRecord);
                }
                let l = usize::from(u16::from_be_bytes([
                    hdr.get(3).copied().unwrap_or(0),
                    hdr.get(4).copied().unwrap_or(0),
                ]));
                if l > self.max_record || self.record_start + 5 + l > M {
                    return Err(FakeTlsError::RecordTooLarge);
                }
            }
        }
    }
}

/// The client waiting for the server's hello records; `M` bounds them (ServerHello + CCS + fake certificate,
/// about 4.2 KiB with the default certificate range).
pub struct ServerHelloReader<const M: usize> {
    state: ClientHelloState,
    reader: RecordsReader<M>,
    failed: Option<FakeTlsError>,
    verified: bool,
}

impl<const M: usize> core::fmt::Debug for ServerHelloReader<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerHelloReader")
            .field("len", &self.reader.len)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const M: usize> defmt::Format for ServerHelloReader<M> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ServerHelloReader {{ failed: {} }}", self.failed)
    }
}

const SERVER_RECORDS: [[u8; 3]; 3] = [[0x16, 0x03, 0x03], [0x14, 0x03, 0x03], [0x17, 0x03, 0x03]];

impl<const M: usize> ServerHelloReader<M> {
    /// Starts reading the answer to the hello that produced `state`.
    pub fn new(state: ClientHelloState) -> Self {
        ServerHelloReader {
            state,
            reader: RecordsReader::new(DEFAULT_MAX_RECORD),
            failed: None,
            verified: false,
        }
    }

    /// Consumes the server's hello records (never past them: application data may follow in the same input);
    /// returns the bytes consumed and whether the server was verified (then switch to [`RecordDecoder`]).
    pub fn feed(&mut self, secret: &FakeTlsSecret, input: &[u8]) -> Result<(usize, bool), FakeTlsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.verified {
            return Ok((0, true));
        }
        let r = self.step(secret, input);
        self.verified = matches!(r, Ok((_, true)));
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step(&mut self, secret: &FakeTlsSecret, input: &[u8]) -> Result<(usize, bool), FakeTlsError> {
        let (n, done) = self.reader.feed(input, &SERVER_RECORDS)?;
        if !done {
            return Ok((n, false));
        }
        let all = self.reader.bytes();
        let got = all
            .get(DIGEST_POS..DIGEST_POS + DIGEST_LEN)
            .ok_or(FakeTlsError::Malformed)?;
        let (head, tail) = (
            all.get(..DIGEST_POS).unwrap_or(&[]),
            all.get(DIGEST_POS + DIGEST_LEN..).unwrap_or(&[]),
        );
        let expected = hmac_parts(&secret.key, &[&self.state.random, head, &[0; DIGEST_LEN], tail]);
        if !bool::from(got.ct_eq(&expected)) {
            return Err(FakeTlsError::BadDigest);
        }
        Ok((n, true))
    }
}

/// Server-side policy of the fake-TLS handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerConfig {
    /// A hello may be at most this many seconds older than `now`.
    pub skew_past: u32,
    /// A hello may be at most this many seconds newer than `now`.
    pub skew_future: u32,
    /// Largest ClientHello record payload accepted (clamped to the reader's buffer).
    pub max_hello: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            skew_past: DEFAULT_SKEW_PAST,
            skew_future: DEFAULT_SKEW_FUTURE,
            max_hello: 2048,
        }
    }
}

/// What the server learned from a valid hello, needed for its answer.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AcceptedHello {
    client_random: [u8; DIGEST_LEN],
    session_id: [u8; 32],
    session_id_len: usize,
    /// The client's Unix time.
    pub timestamp: u32,
}

impl AcceptedHello {
    /// The client's random (its digest): the hello's replay key.
    pub(crate) fn client_random(&self) -> &[u8; DIGEST_LEN] {
        &self.client_random
    }
}

impl core::fmt::Debug for AcceptedHello {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AcceptedHello")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for AcceptedHello {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "AcceptedHello {{ timestamp: {} }}", self.timestamp)
    }
}

/// The server reading a ClientHello record into a bounded buffer of `M` bytes.
pub struct ClientHelloReader<const M: usize> {
    reader: RecordsReader<M>,
    failed: Option<FakeTlsError>,
    accepted: bool,
}

impl<const M: usize> core::fmt::Debug for ClientHelloReader<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientHelloReader")
            .field("len", &self.reader.len)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl<const M: usize> defmt::Format for ClientHelloReader<M> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ClientHelloReader {{ failed: {} }}", self.failed)
    }
}

const CLIENT_RECORDS: [[u8; 3]; 1] = [[0x16, 0x03, 0x01]];

impl<const M: usize> ClientHelloReader<M> {
    /// A reader with the configured `max_hello`.
    pub fn new(cfg: &ServerConfig) -> Self {
        ClientHelloReader {
            reader: RecordsReader::new(cfg.max_hello),
            failed: None,
            accepted: false,
        }
    }

    /// Consumes the ClientHello record (never past it); once complete, validates it against `secret` at Unix time
    /// `now`, consults and updates `replay`, and returns what the answer needs. `Ok((n, None))` means more input
    /// is needed. The hello is returned once; afterwards `feed` consumes nothing and returns `Ok((0, None))`.
    pub fn feed<const R: usize>(
        &mut self,
        secret: &FakeTlsSecret,
        cfg: &ServerConfig,
        now: u32,
        replay: &mut ReplayCache<R>,
        input: &[u8],
    ) -> Result<(usize, Option<AcceptedHello>), FakeTlsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.accepted {
            return Ok((0, None));
        }
        let r = self.step(secret, cfg, now, replay, input);
        self.accepted = matches!(r, Ok((_, Some(_))));
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step<const R: usize>(
        &mut self,
        secret: &FakeTlsSecret,
        cfg: &ServerConfig,
        now: u32,
        replay: &mut ReplayCache<R>,
        input: &[u8],
    ) -> Result<(usize, Option<AcceptedHello>), FakeTlsError> {
        let (n, done) = self.reader.feed(input, &CLIENT_RECORDS)?;
        if !done {
            return Ok((n, None));
        }
        let acc = validate_client_hello(secret, cfg, now, self.reader.bytes())?;
        replay
            .check_and_insert(&acc.client_random)
            .map_err(|_| FakeTlsError::Replayed)?;
        Ok((n, Some(acc)))
    }
}

/// Validates a complete ClientHello record (header included) without touching a replay cache: handshake
/// structure, HMAC digest (constant time), timestamp window, and an SNI naming the secret's domain
/// ([`FakeTlsError::WrongDomain`] otherwise).
pub fn validate_client_hello(
    secret: &FakeTlsSecret,
    cfg: &ServerConfig,
    now: u32,
    record: &[u8],
) -> Result<AcceptedHello, FakeTlsError> {
    // Record header (5), handshake type 1 and a 3-byte length matching the record, legacy version 3.3.
    let [0x16, 0x03, 0x01, _, _, 0x01, l0, l1, l2, 0x03, 0x03, rest @ ..] = record else {
        return Err(FakeTlsError::Malformed);
    };
    let hs_len = usize::from(*l0) << 16 | usize::from(*l1) << 8 | usize::from(*l2);
    if hs_len + 9 != record.len() {
        return Err(FakeTlsError::Malformed);
    }
    let (digest, after) = rest.split_first_chunk::<DIGEST_LEN>().ok_or(FakeTlsError::Malformed)?;
    let (&sid_len, after) = after.split_first().ok_or(FakeTlsError::Malformed)?;
    let sid_len = usize::from(sid_len);
    let sid = after
        .get(..sid_len)
        .filter(|_| sid_len <= 32)
        .ok_or(FakeTlsError::Malformed)?;
    let head = record.get(..DIGEST_POS).unwrap_or(&[]);
    let tail = record.get(DIGEST_POS + DIGEST_LEN..).unwrap_or(&[]);
    let mut computed = hmac_parts(&secret.key, &[head, &[0; DIGEST_LEN], tail]);
    for (c, d) in computed.iter_mut().zip(digest) {
        *c ^= d;
    }
    let [x @ .., t0, t1, t2, t3] = computed;
    computed.zeroize();
    if !bool::from(x.ct_eq(&[0u8; DIGEST_LEN - 4])) {
        return Err(FakeTlsError::BadDigest);
    }
    let timestamp = u32::from_le_bytes([t0, t1, t2, t3]);
    let ok = if timestamp <= now {
        now - timestamp <= cfg.skew_past
    } else {
        timestamp - now <= cfg.skew_future
    };
    if !ok {
        return Err(FakeTlsError::StaleTimestamp { timestamp });
    }
    // Checked once the digest holds: an unauthenticated prober learns nothing from the order of the checks.
    match client_hello_sni(record)? {
        Some(name) if name.eq_ignore_ascii_case(secret.domain()) => {}
        _ => return Err(FakeTlsError::WrongDomain),
    }
    let mut session_id = [0u8; 32];
    session_id
        .get_mut(..sid_len)
        .ok_or(FakeTlsError::Malformed)?
        .copy_from_slice(sid);
    Ok(AcceptedHello {
        client_random: *digest,
        session_id,
        session_id_len: sid_len,
        timestamp,
    })
}

/// Largest server answer [`encode_server_hello`] writes.
pub const MAX_SERVER_HELLO_LEN: usize =
    5 + 4 + 2 + 32 + 1 + 32 + 3 + 2 + 46 + CHANGE_CIPHER_SPEC.len() + 5 + FAKE_CERT_MAX;

/// Server side: writes the ServerHello, ChangeCipherSpec and fake-certificate records answering `hello`, with
/// the HMAC digest in the ServerHello `random`. Returns the bytes written.
pub fn encode_server_hello<R: CryptoRng + ?Sized>(
    secret: &FakeTlsSecret,
    hello: &AcceptedHello,
    rng: &mut R,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let sid = hello.session_id.get(..hello.session_id_len).unwrap_or(&[]);
    let body_len = 2 + DIGEST_LEN + 1 + sid.len() + 3 + 2 + 46;
    let span = (FAKE_CERT_MAX - FAKE_CERT_MIN + 1) as u32;
    let cert_len = FAKE_CERT_MIN + (rng.next_u32() % span) as usize;
    let total = 5 + 4 + body_len + CHANGE_CIPHER_SPEC.len() + 5 + cert_len;
    let out = out
        .get_mut(..total)
        .ok_or(WriteError::BufferTooSmall { required: total })?;
    let mut o = Out::new(out);
    o.put(&[0x16, 0x03, 0x03])?;
    o.put(&((body_len + 4) as u16).to_be_bytes())?;
    o.put(&[0x02, 0x00])?;
    o.put(&(body_len as u16).to_be_bytes())?;
    o.put(&[0x03, 0x03])?;
    o.put(&[0; DIGEST_LEN])?;
    o.put(&[sid.len() as u8])?;
    o.put(sid)?;
    o.put(&[0x13, 0x01, 0x00])?;
    o.put(&[0x00, 0x2e, 0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20])?;
    let ks = o.reserve(32)?;
    rng.fill_bytes(ks);
    if let Some(last) = ks.last_mut() {
        *last &= 0x7f;
    }
    o.put(&[0x00, 0x2b, 0x00, 0x02, 0x03, 0x04])?;
    o.put(&CHANGE_CIPHER_SPEC)?;
    o.put(&[0x17, 0x03, 0x03])?;
    o.put(&(cert_len as u16).to_be_bytes())?;
    rng.fill_bytes(o.reserve(cert_len)?);
    let n = o.len();
    let digest = hmac_parts(&secret.key, &[&hello.client_random, out.get(..n).unwrap_or(&[])]);
    out.get_mut(DIGEST_POS..DIGEST_POS + DIGEST_LEN)
        .ok_or(WriteError::BufferTooSmall {
            required: DIGEST_POS + DIGEST_LEN,
        })?
        .copy_from_slice(&digest);
    Ok(n)
}

/// Streaming decoder of application-data records: passes their payload bytes through without buffering a whole
/// record, skips ChangeCipherSpec, and fails on alerts and anything else.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordDecoder {
    max_record: usize,
    hdr: [u8; 5],
    hdr_len: usize,
    remaining: usize,
    kind: u8,
    failed: Option<FakeTlsError>,
}

impl RecordDecoder {
    /// A decoder refusing records above `max_record` payload bytes (normally [`DEFAULT_MAX_RECORD`]).
    pub const fn new(max_record: usize) -> Self {
        RecordDecoder {
            max_record,
            hdr: [0; 5],
            hdr_len: 0,
            remaining: 0,
            kind: 0,
            failed: None,
        }
    }

    /// Decodes `input` into `out`: returns `(consumed, produced)`. Stops when `out` is full; the payload bytes
    /// written are the obfuscated stream to feed onward.
    pub fn decode(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), FakeTlsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.step(input, out);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), FakeTlsError> {
        let (mut pos, mut produced) = (0, 0);
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            if self.remaining == 0 {
                let Some(&b) = rest.first() else {
                    return Ok((pos, produced));
                };
                if let Some(s) = self.hdr.get_mut(self.hdr_len) {
                    *s = b;
                }
                self.hdr_len += 1;
                pos += 1;
                if self.hdr_len < 5 {
                    continue;
                }
                self.hdr_len = 0;
                let [t, v0, v1, l0, l1] = self.hdr;
                let len = usize::from(u16::from_be_bytes([l0, l1]));
                if [v0, v1] != [0x03, 0x03] {
                    return Err(FakeTlsError::UnexpectedRecord);
                }
                match t {
                    0x17 if len == 0 => continue,
                    0x17 | 0x15 | 0x14 if len > self.max_record => return Err(FakeTlsError::RecordTooLarge),
                    0x17 => {}
                    0x14 if len == 1 => {}
                    0x15 if len == 2 => {}
                    _ => return Err(FakeTlsError::UnexpectedRecord),
                }
                self.kind = t;
                self.remaining = len;
                self.hdr = [0; 5];
                continue;
            }
            match self.kind {
                0x17 => {
                    let room = out.len() - produced;
                    let n = self.remaining.min(rest.len()).min(room);
                    if n == 0 {
                        return Ok((pos, produced));
                    }
                    if let (Some(d), Some(s)) = (out.get_mut(produced..produced + n), rest.get(..n)) {
                        d.copy_from_slice(s);
                    }
                    pos += n;
                    produced += n;
                    self.remaining -= n;
                }
                0x14 => {
                    let Some(&b) = rest.first() else {
                        return Ok((pos, produced));
                    };
                    if b != 0x01 {
                        return Err(FakeTlsError::UnexpectedRecord);
                    }
                    pos += 1;
                    self.remaining = 0;
                }
                _ => {
                    // An alert: collect its two bytes, then fail.
                    let Some(&b) = rest.first() else {
                        return Ok((pos, produced));
                    };
                    pos += 1;
                    self.remaining -= 1;
                    if let Some(s) = self.hdr.get_mut(self.hdr_len) {
                        *s = b;
                    }
                    self.hdr_len += 1;
                    if self.remaining == 0 {
                        let [level, description, ..] = self.hdr;
                        return Err(FakeTlsError::Alert { level, description });
                    }
                }
            }
        }
    }
}

/// Writes application-data records around outgoing bytes. A client's first write is preceded by a
/// ChangeCipherSpec record, as real TLS 1.3 clients in middlebox-compatibility mode (and tdlib) send one.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecordEncoder {
    max_payload: usize,
    ccs_pending: bool,
}

impl RecordEncoder {
    /// A client encoder (sends ChangeCipherSpec first).
    pub const fn client() -> Self {
        RecordEncoder {
            max_payload: MAX_RECORD_PAYLOAD,
            ccs_pending: true,
        }
    }

    /// A server encoder.
    pub const fn server() -> Self {
        RecordEncoder {
            max_payload: MAX_RECORD_PAYLOAD,
            ccs_pending: false,
        }
    }

    /// The same encoder with another record size (1..=16384).
    pub const fn with_max_payload(mut self, max_payload: usize) -> Self {
        self.max_payload = if max_payload == 0 {
            1
        } else if max_payload > MAX_RECORD_PAYLOAD {
            MAX_RECORD_PAYLOAD
        } else {
            max_payload
        };
        self
    }

    /// The bytes [`encode`](Self::encode) writes for `len` payload bytes.
    pub fn encoded_len(&self, len: usize) -> usize {
        let ccs = if self.ccs_pending { CHANGE_CIPHER_SPEC.len() } else { 0 };
        ccs + len + 5 * len.div_ceil(self.max_payload.max(1))
    }

    /// Wraps `payload` in as many records as needed. Nothing is written when `out` is too small.
    pub fn encode(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, WriteError> {
        let required = self.encoded_len(payload.len());
        if out.len() < required {
            return Err(WriteError::BufferTooSmall { required });
        }
        let mut o = Out::new(out);
        if self.ccs_pending {
            o.put(&CHANGE_CIPHER_SPEC)?;
        }
        for chunk in payload.chunks(self.max_payload.max(1)) {
            o.put(&[0x17, 0x03, 0x03])?;
            o.put(&(chunk.len() as u16).to_be_bytes())?;
            o.put(chunk)?;
        }
        self.ccs_pending = false;
        Ok(o.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    struct Xs(u64);
    impl rand_core::TryRng for Xs {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(self.try_next_u64()? as u32)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            Ok(self.0)
        }
        fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> {
            for b in d {
                *b = self.try_next_u64()? as u8;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Xs {}

    #[test]
    fn hello_layout() {
        let s = FakeTlsSecret::new(&[7; 16], b"example.com").unwrap();
        let (h, _) = client_hello(&s, 1_700_000_000, &mut Xs(1)).unwrap();
        assert_eq!(h[..11], CLIENT_HELLO_START);
        assert!(max_domain_in_hello() >= 200, "{}", max_domain_in_hello());
        let acc = validate_client_hello(&s, &ServerConfig::default(), 1_700_000_000, &h).unwrap();
        assert_eq!(acc.timestamp, 1_700_000_000);
        assert_eq!(acc.session_id_len, 32);
    }
}
