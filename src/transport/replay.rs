//! The replay cache of a server or proxy (docs/CHECKLIST.md item 9, attack B19): a censor that records a client's
//! connection and replays its opening (the 64-byte obfuscated init, or a fake-TLS ClientHello) learns that it
//! talks to MTProto if the server answers. The server remembers what it has seen and refuses a repeat.
//!
//! Where the keys come from: the DC [`Connection`](crate::session::Connection) records every obfuscated init it accepts
//! (asking its host for the cache, [`HostQuery::ObfuscatedInit`](crate::session::HostQuery::ObfuscatedInit)), and
//! the fake-TLS server ([`crate::carriage::faketls::ClientHelloReader`]) every ClientHello random. One cache serves
//! all connections of a server; the host owns it (it outlives connections) and passes it in by reference.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sha2::{Digest, Sha256};

use super::obfuscated::INIT_LEN;

/// A 16-byte fingerprint of a replay key.
pub(crate) type Fingerprint = [u8; 16];

/// Fingerprint domains, so that a ClientHello random can never collide with an init's key bytes.
const DOMAIN_KEY: u8 = 0;
const DOMAIN_INIT: u8 = 1;

fn fingerprint(domain: u8, key: &[u8]) -> Fingerprint {
    let d: [u8; 32] = Sha256::new().chain_update([domain]).chain_update(key).finalize().into();
    let mut f = [0u8; 16];
    f.copy_from_slice(d.get(..16).unwrap_or(&[0; 16]));
    f
}

/// The fingerprint [`ReplayCache::check_and_insert`] records for `key` (a fake-TLS ClientHello random).
pub(crate) fn key_fingerprint(key: &[u8]) -> Fingerprint {
    fingerprint(DOMAIN_KEY, key)
}

/// The replay key of an obfuscated init: its bytes 8..56 (the client's key and IV, as sent; mtprotoproxy's
/// replay key). Bytes 0..8 and 56..64 are left out, so flipping them (bytes 0..8 are ignored by the server, and
/// 56..64 would only break the tag) does not make a recorded init new.
pub(crate) fn init_fingerprint(init: &[u8; INIT_LEN]) -> Fingerprint {
    fingerprint(DOMAIN_INIT, init.get(8..56).unwrap_or(&[]))
}

/// A bounded set of recently seen handshake fingerprints (docs/CHECKLIST.md item 9): a repeat is refused. The oldest
/// entry is evicted once `N` are stored, so memory is `16·N` bytes whatever the peers do, and an entry lives
/// for the next `N` new keys: at `r` new connections per second, `N / r` seconds. A full cache evicts, it never
/// refuses; so a peer that can make valid openings at will (anyone without an MTProxy secret, only secret holders
/// with one) can flush it with `N` connections. Size it for the connection rate and the window to cover.
///
/// Keys are hashed to 16-byte fingerprints (SHA-256, truncated) so any key length fits: the 32-byte client
/// random of a fake-TLS hello, or bytes 8..56 (key and IV) of a plain obfuscated init, which mtprotoproxy uses
/// as its replay key. A lookup scans the entries (`16·N` bytes).
#[derive(Clone)]
pub struct ReplayCache<const N: usize> {
    entries: [Fingerprint; N],
    len: usize,
    next: usize,
}

impl<const N: usize> core::fmt::Debug for ReplayCache<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplayCache")
            .field("len", &self.len)
            .field("capacity", &N)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for ReplayCache<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "ReplayCache {{ len: {}, capacity: {} }}", self.len, N)
    }
}

/// The key was seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Replayed;

impl core::fmt::Display for Replayed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("handshake replayed")
    }
}

impl core::error::Error for Replayed {}

impl<const N: usize> Default for ReplayCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReplayCache<N> {
    /// An empty cache.
    pub const fn new() -> Self {
        ReplayCache {
            entries: [[0; 16]; N],
            len: 0,
            next: 0,
        }
    }

    /// Number of stored fingerprints (at most `N`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn contains(&self, fp: &Fingerprint) -> bool {
        // Branch-free over every stored entry: the cost does not depend on where (or whether) it matches.
        let stored = self.entries.get(..self.len).unwrap_or(&[]);
        stored.iter().fold(0u8, |hit, e| hit | u8::from(e == fp)) != 0
    }

    /// Records `fp`, evicting the oldest entry when full; refuses it if it is still cached. A cache of capacity 0
    /// remembers nothing and refuses nothing.
    pub(crate) fn insert_fingerprint(&mut self, fp: Fingerprint) -> Result<(), Replayed> {
        if N == 0 {
            return Ok(());
        }
        if self.contains(&fp) {
            return Err(Replayed);
        }
        if let Some(slot) = self.entries.get_mut(self.next) {
            *slot = fp;
        }
        self.next = (self.next + 1) % N;
        self.len = (self.len + 1).min(N);
        Ok(())
    }

    /// Records `key`; refuses it if it was already recorded (and still cached).
    pub fn check_and_insert(&mut self, key: &[u8]) -> Result<(), Replayed> {
        self.insert_fingerprint(fingerprint(DOMAIN_KEY, key))
    }

    /// Records a plain obfuscated init by its bytes 8..56; refuses a repeat (attack B19). Call it only once
    /// [`crate::transport::obfuscated::server_accept`] succeeded, so garbage cannot evict real entries. The DC
    /// [`Connection`](crate::session::Connection) does this itself
    /// ([`check_obfuscated_init`](crate::session::Connection::check_obfuscated_init)).
    pub fn check_obfuscated_init(&mut self, init: &[u8; INIT_LEN]) -> Result<(), Replayed> {
        self.insert_fingerprint(init_fingerprint(init))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn keys_inits_by_bytes_8_to_56_in_their_own_domain() {
        let mut c = ReplayCache::<4>::new();
        let mut init = [0u8; INIT_LEN];
        for (i, b) in init.iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(c.check_obfuscated_init(&init), Ok(()));
        let mut edge = init;
        edge[0] ^= 1;
        edge[63] ^= 1;
        edge[57] ^= 1;
        assert_eq!(c.check_obfuscated_init(&edge), Err(Replayed));
        for pos in [8, 55] {
            let mut other = init;
            other[pos] ^= 1;
            assert_eq!(c.check_obfuscated_init(&other), Ok(()), "byte {pos} is part of the key");
        }
        // The same 48 bytes as a generic key are another domain.
        assert_eq!(c.check_and_insert(&init[8..56]), Ok(()));
        assert_eq!(c.check_and_insert(&init[8..56]), Err(Replayed));
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let mut c = ReplayCache::<0>::new();
        assert_eq!(c.check_and_insert(b"k"), Ok(()));
        assert_eq!(c.check_and_insert(b"k"), Ok(()));
        assert!(c.is_empty());
    }
}
