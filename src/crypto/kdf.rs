//! Key derivation: MTProto 2.0 `msg_key` and AES key/iv, the MTProto 1.0 KDF, and the handshake's
//! `tmp_aes_key`/`tmp_aes_iv`.
//!
//! Formulas (<https://core.telegram.org/mtproto/description#defining-aes-key-and-initialization-vector>, with
//! `x = 0` for messages from client to server and `x = 8` the other way):
//!
//! ```text
//! msg_key_large = SHA256(auth_key[88+x .. 120+x] ‖ plaintext ‖ padding);  msg_key = msg_key_large[8..24]
//! sha256_a = SHA256(msg_key ‖ auth_key[x .. x+36]);  sha256_b = SHA256(auth_key[40+x .. 76+x] ‖ msg_key)
//! aes_key  = sha256_a[0..8] ‖ sha256_b[8..24] ‖ sha256_a[24..32]
//! aes_iv   = sha256_b[0..8] ‖ sha256_a[8..24] ‖ sha256_b[24..32]
//! ```
//!
//! The MTProto 1.0 KDF ([`derive_v1`]) exists **only** because `auth.bindTempAuthKey` still encrypts its
//! `bind_auth_key_inner` with it (<https://core.telegram.org/method/auth.bindTempAuthKey>). Nothing else of 1.0 is
//! implemented, and the 2.0 packet codec never accepts a 1.0 packet (docs/CHECKLIST.md item 40).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha1::Sha1;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::auth_key::AuthKey;

/// Which way a message travels; selects the `x` offset into the auth key, which binds the direction into the crypto
/// so that a packet reflected back to its sender fails the msg_key check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Client to server (and, in secret chats, messages from the chat's originator): `x = 0`.
    ClientToServer,
    /// Server to client (secret chats: messages to the originator): `x = 8`.
    ServerToClient,
}

impl Direction {
    /// The direction of what `sender` sends. A direction is not a third role enum: it names a packet's way, which
    /// the KDF needs, and comes from the one [`Role`](crate::Role) of whoever sends it.
    pub const fn sent_by(sender: crate::Role) -> Self {
        match sender {
            crate::Role::Client => Direction::ClientToServer,
            crate::Role::Server => Direction::ServerToClient,
        }
    }

    /// The `x` offset into the auth key.
    pub const fn x(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 8,
        }
    }

    /// The opposite direction (what the peer uses to encrypt its answers).
    pub const fn reverse(self) -> Self {
        match self {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }
}

/// An AES-256-IGE key and 32-byte iv derived for one message (or for the handshake). Secret: zeroized on drop and
/// never printed.
#[derive(Clone)]
pub struct AesKeyIv {
    /// AES-256 key.
    pub key: [u8; 32],
    /// IGE iv (MTProto layout: the first 16 bytes play the previous ciphertext block, the last 16 the previous
    /// plaintext block).
    pub iv: [u8; 32],
}

// Zeroize through byte slices: the array impl writes one volatile byte at a time, a slice is cleared in bulk (with
// a compiler barrier), which on the per-message path is the difference between ~64 stores and ~2.
impl Zeroize for AesKeyIv {
    fn zeroize(&mut self) {
        self.key.as_mut_slice().zeroize();
        self.iv.as_mut_slice().zeroize();
    }
}

impl Drop for AesKeyIv {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for AesKeyIv {}

impl core::fmt::Debug for AesKeyIv {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AesKeyIv(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for AesKeyIv {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "AesKeyIv(..)")
    }
}

/// Counts the work done by the message crypto, so tests can prove that every rejected packet of a given size costs
/// the same (docs/CHECKLIST.md item 29 / attack B3). Not part of the stable API.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WorkMeter {
    /// SHA-256 compression-function calls (64-byte blocks including the final padding block).
    pub sha256_blocks: u64,
    /// AES blocks run through IGE.
    pub aes_blocks: u64,
}

/// Work accounting; `()` records nothing and compiles away.
pub(crate) trait Meter {
    fn sha256(&mut self, bytes: usize);
    fn aes(&mut self, bytes: usize);
}

impl Meter for () {
    #[inline(always)]
    fn sha256(&mut self, _: usize) {}
    #[inline(always)]
    fn aes(&mut self, _: usize) {}
}

impl Meter for WorkMeter {
    fn sha256(&mut self, bytes: usize) {
        // SHA-256 appends 0x80 and a 64-bit length, then rounds up to 64-byte blocks.
        self.sha256_blocks = self
            .sha256_blocks
            .saturating_add((bytes as u64).saturating_add(9).div_ceil(64));
    }
    fn aes(&mut self, bytes: usize) {
        self.aes_blocks = self.aes_blocks.saturating_add(bytes as u64 / 16);
    }
}

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// SHA-256 driven through its compression function (`sha2::block_api::compress256`), for the fixed layouts of the
/// per-message hashes: whole blocks go from the caller's buffer to the compression with no copy, and the padding is
/// written once. `Sha256`'s streaming wrapper costs as much as a compression on these 1-3 block messages (its
/// buffer bookkeeping and the moves of the hasher). The chaining state is zeroized on drop (it hashed key material).
pub(crate) struct Sha256Blocks {
    state: [u32; 8],
    /// Bytes compressed so far (a multiple of 64).
    len: u64,
}

impl Sha256Blocks {
    pub(crate) fn new() -> Self {
        Sha256Blocks {
            state: SHA256_IV,
            len: 0,
        }
    }

    /// Compresses whole 64-byte blocks.
    pub(crate) fn blocks(&mut self, blocks: &[[u8; 64]]) {
        sha2::block_api::compress256(&mut self.state, blocks);
        self.len = self.len.wrapping_add(64u64.wrapping_mul(blocks.len() as u64));
    }

    /// Hashes `rest` (any length: its whole blocks are compressed in place) and the padding; returns the digest.
    pub(crate) fn finish(mut self, rest: &[u8]) -> [u8; 32] {
        let (blocks, tail) = rest.as_chunks::<64>();
        self.blocks(blocks);
        let bits = self.len.wrapping_add(tail.len() as u64).wrapping_mul(8);
        let mut pad = [[0u8; 64]; 2];
        let n = if tail.len() < 56 { 1 } else { 2 };
        if let Some(flat) = pad.as_flattened_mut().get_mut(..64 * n) {
            let (msg, after) = flat.split_at_mut(tail.len());
            msg.copy_from_slice(tail);
            if let Some(first) = after.first_mut() {
                *first = 0x80;
            }
            if let Some(l) = after.last_chunk_mut::<8>() {
                *l = bits.to_be_bytes();
            }
        }
        sha2::block_api::compress256(&mut self.state, pad.get(..n).unwrap_or(&[]));
        pad.as_flattened_mut().zeroize();
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

impl Drop for Sha256Blocks {
    fn drop(&mut self) {
        self.state.as_mut_slice().zeroize();
    }
}

/// `auth_key[range]`; the ranges used here are constant and inside 256 bytes, so the empty fallback is unreachable.
fn part(key: &AuthKey, start: usize, len: usize) -> &[u8] {
    key.as_bytes().get(start..start.saturating_add(len)).unwrap_or(&[])
}

/// Fills `dst` with `auth_key[start..start + dst.len()]` (constant, in-bounds ranges at every call site).
fn copy_part(dst: &mut [u8], key: &AuthKey, start: usize) {
    let src = part(key, start, dst.len());
    if let Some(d) = dst.get_mut(..src.len()) {
        d.copy_from_slice(src);
    }
}

/// Copies `src[from..from + N]` into `dst[at..at + N]`; both ranges are constant and in bounds at every call site.
fn put(dst: &mut [u8; 32], at: usize, src: &[u8; 32], from: usize, len: usize) {
    if let (Some(d), Some(s)) = (dst.get_mut(at..at + len), src.get(from..from + len)) {
        d.copy_from_slice(s);
    }
}

/// `SHA256(auth_key[88+x .. 120+x] ‖ plaintext)`: the 32-byte `msg_key_large`. `plaintext` is the whole encrypted
/// part, padding included.
pub fn msg_key_large_v2(auth_key: &AuthKey, dir: Direction, plaintext: &[u8]) -> [u8; 32] {
    msg_key_large_v2_metered(auth_key, dir, plaintext, &mut ())
}

pub(crate) fn msg_key_large_v2_metered<M: Meter>(
    auth_key: &AuthKey,
    dir: Direction,
    plaintext: &[u8],
    meter: &mut M,
) -> [u8; 32] {
    meter.sha256(32usize.saturating_add(plaintext.len()));
    // The first block is the 32-byte auth_key slice and the first 32 plaintext bytes; the rest goes straight from
    // `plaintext`.
    let mut first = [0u8; 64];
    let (prefix, head) = first.split_at_mut(32);
    copy_part(prefix, auth_key, 88 + dir.x());
    let mut h = Sha256Blocks::new();
    let large = match plaintext.split_at_checked(32) {
        Some((p, rest)) => {
            head.copy_from_slice(p);
            h.blocks(core::slice::from_ref(&first));
            h.finish(rest)
        }
        None => {
            let n = 32 + plaintext.len();
            if let Some(d) = head.get_mut(..plaintext.len()) {
                d.copy_from_slice(plaintext);
            }
            h.finish(first.get(..n).unwrap_or(&[]))
        }
    };
    first.as_mut_slice().zeroize();
    large
}

/// A SHA-256 that has absorbed `auth_key[88+x .. 120+x]`: fed the `plaintext_len` bytes of plaintext (which the
/// fused decryption does block by block) it finishes as `msg_key_large`. Counts the whole hash into `meter`.
pub(crate) fn msg_key_hasher<M: Meter>(
    auth_key: &AuthKey,
    dir: Direction,
    plaintext_len: usize,
    meter: &mut M,
) -> Sha256 {
    let prefix = part(auth_key, 88 + dir.x(), 32);
    meter.sha256(prefix.len().saturating_add(plaintext_len));
    Sha256::new_with_prefix(prefix)
}

/// `msg_key` = the middle 128 bits (bytes 8..24) of `msg_key_large`.
pub fn msg_key_from_large(msg_key_large: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(mid) = msg_key_large.get(8..24) {
        out.copy_from_slice(mid);
    }
    out
}

/// The quick-ack token for a message: the first 4 bytes of `msg_key_large` as a little-endian u32, top bit set
/// (<https://core.telegram.org/mtproto/mtproto-transports#quick-ack>; docs/CHECKLIST.md item 6).
pub fn quick_ack_token(msg_key_large: &[u8; 32]) -> u32 {
    let [a, b, c, d, ..] = *msg_key_large;
    u32::from_le_bytes([a, b, c, d]) | 0x8000_0000
}

/// MTProto 2.0 AES key and iv for `msg_key` in direction `dir`.
pub fn derive_v2(auth_key: &AuthKey, dir: Direction, msg_key: &[u8; 16]) -> AesKeyIv {
    derive_v2_metered(auth_key, dir, msg_key, &mut ())
}

pub(crate) fn derive_v2_metered<M: Meter>(
    auth_key: &AuthKey,
    dir: Direction,
    msg_key: &[u8; 16],
    meter: &mut M,
) -> AesKeyIv {
    let x = dir.x();
    meter.sha256(52);
    meter.sha256(52);
    // Each 52-byte input assembled in one buffer and hashed by `Sha256Blocks` (one compression of it and its
    // padding).
    let mut m = [0u8; 52];
    let (head, tail) = m.split_at_mut(16);
    head.copy_from_slice(msg_key);
    copy_part(tail, auth_key, x);
    let mut a = Sha256Blocks::new().finish(&m);
    let (head, tail) = m.split_at_mut(36);
    copy_part(head, auth_key, 40 + x);
    tail.copy_from_slice(msg_key);
    let mut b = Sha256Blocks::new().finish(&m);
    m.as_mut_slice().zeroize();
    let mut out = AesKeyIv {
        key: [0; 32],
        iv: [0; 32],
    };
    put(&mut out.key, 0, &a, 0, 8);
    put(&mut out.key, 8, &b, 8, 16);
    put(&mut out.key, 24, &a, 24, 8);
    put(&mut out.iv, 0, &b, 0, 8);
    put(&mut out.iv, 8, &a, 8, 16);
    put(&mut out.iv, 24, &b, 24, 8);
    a.as_mut_slice().zeroize();
    b.as_mut_slice().zeroize();
    out
}

/// MTProto **1.0** AES key and iv (SHA-1 based, <https://core.telegram.org/mtproto/description_v1>).
///
/// Only for the `bind_auth_key_inner` message of `auth.bindTempAuthKey`, which Telegram still encrypts with 1.0
/// under the permanent key. Never use it for session traffic (docs/CHECKLIST.md item 40).
pub fn derive_v1(auth_key: &AuthKey, dir: Direction, msg_key: &[u8; 16]) -> AesKeyIv {
    let x = dir.x();
    let mut sha1_a: [u8; 20] = Sha1::new()
        .chain_update(msg_key)
        .chain_update(part(auth_key, x, 32))
        .finalize()
        .into();
    let mut sha1_b: [u8; 20] = Sha1::new()
        .chain_update(part(auth_key, 32 + x, 16))
        .chain_update(msg_key)
        .chain_update(part(auth_key, 48 + x, 16))
        .finalize()
        .into();
    let mut sha1_c: [u8; 20] = Sha1::new()
        .chain_update(part(auth_key, 64 + x, 32))
        .chain_update(msg_key)
        .finalize()
        .into();
    let mut sha1_d: [u8; 20] = Sha1::new()
        .chain_update(msg_key)
        .chain_update(part(auth_key, 96 + x, 32))
        .finalize()
        .into();
    // aes_key = a[0..8] ‖ b[8..20] ‖ c[4..16];  aes_iv = a[8..20] ‖ b[0..8] ‖ c[16..20] ‖ d[0..8]
    let mut out = AesKeyIv {
        key: [0; 32],
        iv: [0; 32],
    };
    let key_parts: [&[u8]; 3] = [
        sha1_a.get(0..8).unwrap_or(&[]),
        sha1_b.get(8..20).unwrap_or(&[]),
        sha1_c.get(4..16).unwrap_or(&[]),
    ];
    let iv_parts: [&[u8]; 4] = [
        sha1_a.get(8..20).unwrap_or(&[]),
        sha1_b.get(0..8).unwrap_or(&[]),
        sha1_c.get(16..20).unwrap_or(&[]),
        sha1_d.get(0..8).unwrap_or(&[]),
    ];
    concat_into(&mut out.key, &key_parts);
    concat_into(&mut out.iv, &iv_parts);
    sha1_a.zeroize();
    sha1_b.zeroize();
    sha1_c.zeroize();
    sha1_d.zeroize();
    out
}

fn concat_into(dst: &mut [u8; 32], parts: &[&[u8]]) {
    let mut rest: &mut [u8] = dst;
    for p in parts {
        let n = p.len().min(rest.len());
        let (head, tail) = core::mem::take(&mut rest).split_at_mut(n);
        head.copy_from_slice(p.get(..head.len()).unwrap_or(&[]));
        rest = tail;
    }
}

/// The handshake's temporary AES key and iv, which encrypt `server_DH_inner_data` and `client_DH_inner_data`
/// (<https://core.telegram.org/mtproto/auth_key>, step 5):
///
/// ```text
/// tmp_aes_key = SHA1(new_nonce ‖ server_nonce) ‖ SHA1(server_nonce ‖ new_nonce)[0..12]
/// tmp_aes_iv  = SHA1(server_nonce ‖ new_nonce)[12..20] ‖ SHA1(new_nonce ‖ new_nonce) ‖ new_nonce[0..4]
/// ```
pub fn tmp_aes_key_iv(new_nonce: &[u8; 32], server_nonce: &[u8; 16]) -> AesKeyIv {
    let mut ns: [u8; 20] = Sha1::new()
        .chain_update(new_nonce)
        .chain_update(server_nonce)
        .finalize()
        .into();
    let mut sn: [u8; 20] = Sha1::new()
        .chain_update(server_nonce)
        .chain_update(new_nonce)
        .finalize()
        .into();
    let mut nn: [u8; 20] = Sha1::new()
        .chain_update(new_nonce)
        .chain_update(new_nonce)
        .finalize()
        .into();
    let mut out = AesKeyIv {
        key: [0; 32],
        iv: [0; 32],
    };
    concat_into(&mut out.key, &[&ns, sn.get(0..12).unwrap_or(&[])]);
    concat_into(
        &mut out.iv,
        &[sn.get(12..20).unwrap_or(&[]), &nn, new_nonce.get(0..4).unwrap_or(&[])],
    );
    ns.zeroize();
    sn.zeroize();
    nn.zeroize();
    out
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sha256_blocks_equals_sha256() {
        let mut data = [0u8; 300];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i * 31 + 7) as u8;
        }
        // Every padding case (tail below 56, 56..64, whole blocks) and the msg_key layout's short plaintexts.
        for len in 0..data.len() {
            let want: [u8; 32] = Sha256::digest(&data[..len]).into();
            assert_eq!(Sha256Blocks::new().finish(&data[..len]), want, "len {len}");
            let key = AuthKey::from_bytes(core::array::from_fn(|i| (i * 3) as u8));
            let dir = if len % 2 == 0 {
                Direction::ClientToServer
            } else {
                Direction::ServerToClient
            };
            let want: [u8; 32] = Sha256::new()
                .chain_update(&key.as_bytes()[88 + dir.x()..120 + dir.x()])
                .chain_update(&data[..len])
                .finalize()
                .into();
            assert_eq!(msg_key_large_v2(&key, dir, &data[..len]), want, "len {len}");
        }
    }

    #[test]
    fn meter_counts_sha256_blocks() {
        let mut m = WorkMeter::default();
        m.sha256(55);
        assert_eq!(m.sha256_blocks, 1);
        m.sha256(56);
        assert_eq!(m.sha256_blocks, 3);
        m.aes(48);
        assert_eq!(m.aes_blocks, 3);
    }

    #[test]
    fn directions_use_different_key_material() {
        let key = AuthKey::from_bytes(core::array::from_fn(|i| i as u8));
        let a = derive_v2(&key, Direction::ClientToServer, &[1; 16]);
        let b = derive_v2(&key, Direction::ServerToClient, &[1; 16]);
        assert_ne!(a.key, b.key);
        assert_eq!(Direction::ClientToServer.reverse(), Direction::ServerToClient);
    }

    #[test]
    fn quick_ack_sets_top_bit() {
        let mut large = [0u8; 32];
        large[..4].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(quick_ack_token(&large), 0x8403_0201);
    }
}
