//! The 2048-bit MTProto authorization key and the two 64-bit values derived from its SHA-1.
//!
//! The key is the one long-term secret of a connection (or, for secret chats, of a chat): everything here keeps it out
//! of logs and clears it on drop.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of an auth key in bytes (2048 bits, left-padded with zeros).
pub const AUTH_KEY_LEN: usize = 256;

/// A 256-byte MTProto authorization key (also the shape of a secret-chat key).
///
/// `id()` and `aux_hash()` are computed once at construction, because the packet codec needs the id for every message
/// and SHA-1 over 256 bytes is not free on a microcontroller. The key bytes are zeroized on drop; `Debug` prints only
/// the (public) key id, and equality is constant-time.
#[derive(Clone)]
pub struct AuthKey {
    key: [u8; AUTH_KEY_LEN],
    id: u64,
    aux_hash: u64,
}

impl AuthKey {
    /// Wraps 256 key bytes (big-endian g^ab, left-padded with zeros to 256 bytes).
    pub fn from_bytes(key: [u8; AUTH_KEY_LEN]) -> Self {
        let mut digest: [u8; 20] = Sha1::digest(key).into();
        // MTProto reads "the 64 lower-order bits of SHA1" as the last 8 bytes of the 20-byte string, little-endian,
        // and the aux hash ("64 higher-order bits") as the first 8 bytes, also little-endian.
        let (hi, rest) = digest.split_at(8);
        let lo = rest.get(4..12).unwrap_or(&[0; 8]);
        let aux_hash = u64::from_le_bytes(hi.try_into().unwrap_or([0; 8]));
        let id = u64::from_le_bytes(lo.try_into().unwrap_or([0; 8]));
        digest.zeroize();
        AuthKey { key, id, aux_hash }
    }

    /// The auth_key_id sent in front of every encrypted packet: the low 64 bits of SHA1(key), i.e. bytes 12..20 of
    /// the digest read as a little-endian u64. Also the secret-chat `key_fingerprint`.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `auth_key_aux_hash`: the high 64 bits of SHA1(key), i.e. bytes 0..8 of the digest read little-endian. Used
    /// by the handshake's `new_nonce_hashN` and `retry_id`; it is not transmitted except as `retry_id`.
    pub fn aux_hash(&self) -> u64 {
        self.aux_hash
    }

    /// The raw key bytes. **Secret**: never log, print or persist them unencrypted. Exposed so a host can store the
    /// key and so the secret-chat layer can derive its visualisation hash.
    pub fn as_bytes(&self) -> &[u8; AUTH_KEY_LEN] {
        &self.key
    }
}

impl AuthKey {
    /// What the destructor runs; separate so a unit test can observe its effect.
    fn wipe(&mut self) {
        self.key.zeroize();
        self.id = 0;
        self.aux_hash = 0;
    }
}

impl Drop for AuthKey {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl ZeroizeOnDrop for AuthKey {}

impl ConstantTimeEq for AuthKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.key.ct_eq(&other.key)
    }
}

impl PartialEq for AuthKey {
    /// Constant-time over the key bytes.
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for AuthKey {}

impl core::fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AuthKey {{ id: {:016x} }}", self.id)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for AuthKey {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "AuthKey {{ id: {=u64:x} }}", self.id)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn drop_clears_key_bytes() {
        let mut key = AuthKey::from_bytes([0xAB; AUTH_KEY_LEN]);
        assert_ne!(key.id(), 0);
        // The destructor only calls `wipe`; tests/secret_drop.rs observes a real drop (it may use unsafe, src may not).
        key.wipe();
        assert!(key.as_bytes().iter().all(|&b| b == 0));
        assert_eq!((key.id(), key.aux_hash()), (0, 0));
    }

    #[test]
    fn equality_is_over_key_bytes() {
        let a = AuthKey::from_bytes([1; AUTH_KEY_LEN]);
        let mut other = [1; AUTH_KEY_LEN];
        other[255] = 2;
        assert_eq!(a, a.clone());
        assert_ne!(a, AuthKey::from_bytes(other));
    }
}
