//! Encrypted files (item 73): a fresh random 256-bit key and IV per file, the 32-bit key fingerprint sent in
//! `decryptedMessageMedia*` (`md5(key ‖ iv)[0..4] XOR md5(key ‖ iv)[4..8]`), and part-by-part AES-256-IGE that
//! carries the IGE chaining state from one upload part to the next, so a file never has to be in memory at once.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use md5::{Digest, Md5};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::aes::{NotBlockAligned, ige_decrypt, ige_encrypt};

/// The fingerprint in a received media object does not match its key and iv.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FingerprintMismatch;

impl core::fmt::Display for FingerprintMismatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("encrypted file key fingerprint mismatch")
    }
}

impl core::error::Error for FingerprintMismatch {}

/// `key_fingerprint` of an encrypted file: the first 4 bytes of md5(key ‖ iv) XOR the next 4, read little-endian.
pub fn key_fingerprint(key: &[u8; 32], iv: &[u8; 32]) -> i32 {
    let mut h = Md5::new();
    h.update(key);
    h.update(iv);
    let d: [u8; 16] = h.finalize().into();
    let mut fp = [0u8; 4];
    for (i, f) in fp.iter_mut().enumerate() {
        *f = d.get(i).copied().unwrap_or(0) ^ d.get(i + 4).copied().unwrap_or(0);
    }
    i32::from_le_bytes(fp)
}

/// Checks a received fingerprint against the media's key and iv (item 73), in constant time.
pub fn check_fingerprint(key: &[u8; 32], iv: &[u8; 32], fingerprint: i32) -> Result<(), FingerprintMismatch> {
    let ours = key_fingerprint(key, iv).to_le_bytes();
    if bool::from(ours.ct_eq(&fingerprint.to_le_bytes())) {
        Ok(())
    } else {
        Err(FingerprintMismatch)
    }
}

/// Running AES-256-IGE state over a whole file. Secret; zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
struct IgeStream {
    key: [u8; 32],
    /// Previous ciphertext block ‖ previous plaintext block (MTProto's iv layout).
    iv: [u8; 32],
}

fn last_block(buf: &[u8]) -> [u8; 16] {
    let mut b = [0u8; 16];
    if let Some(s) = buf.len().checked_sub(16).and_then(|i| buf.get(i..)) {
        b.copy_from_slice(s);
    }
    b
}

fn set_iv(iv: &mut [u8; 32], c: &[u8; 16], p: &[u8; 16]) {
    let (a, b) = iv.split_at_mut(16);
    a.copy_from_slice(c);
    b.copy_from_slice(p);
}

/// Encrypts a file part by part. Parts must be whole 16-byte blocks (pad the last part with random bytes).
pub struct FileEncryptor(IgeStream);

/// Decrypts a file part by part.
pub struct FileDecryptor(IgeStream);

impl core::fmt::Debug for FileEncryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FileEncryptor(..)")
    }
}

impl core::fmt::Debug for FileDecryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FileDecryptor(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FileEncryptor {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "FileEncryptor(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for FileDecryptor {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "FileDecryptor(..)")
    }
}

impl FileEncryptor {
    /// Draws a fresh key and iv from `rng` (never reuse them across files) and returns the encryptor with the
    /// key, iv and fingerprint to put into the media object.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> (Self, [u8; 32], [u8; 32], i32) {
        let mut key = [0u8; 32];
        let mut iv = [0u8; 32];
        rng.fill_bytes(&mut key);
        rng.fill_bytes(&mut iv);
        let fp = key_fingerprint(&key, &iv);
        (Self::new(&key, &iv), key, iv, fp)
    }

    /// An encryptor starting at the beginning of a file.
    pub fn new(key: &[u8; 32], iv: &[u8; 32]) -> Self {
        FileEncryptor(IgeStream { key: *key, iv: *iv })
    }

    /// Encrypts the next part in place.
    pub fn encrypt_part(&mut self, part: &mut [u8]) -> Result<(), NotBlockAligned> {
        if part.is_empty() {
            return Ok(());
        }
        let mut p = last_block(part);
        ige_encrypt(&self.0.key, &self.0.iv, part)?;
        set_iv(&mut self.0.iv, &last_block(part), &p);
        p.zeroize();
        Ok(())
    }
}

impl FileDecryptor {
    /// A decryptor for a file whose media object carried `key`, `iv` and `fingerprint` (checked, item 73).
    pub fn new(key: &[u8; 32], iv: &[u8; 32], fingerprint: i32) -> Result<Self, FingerprintMismatch> {
        check_fingerprint(key, iv, fingerprint)?;
        Ok(FileDecryptor(IgeStream { key: *key, iv: *iv }))
    }

    /// Decrypts the next part in place.
    pub fn decrypt_part(&mut self, part: &mut [u8]) -> Result<(), NotBlockAligned> {
        if part.is_empty() {
            return Ok(());
        }
        let c = last_block(part);
        ige_decrypt(&self.0.key, &self.0.iv, part)?;
        let mut p = last_block(part);
        set_iv(&mut self.0.iv, &c, &p);
        p.zeroize();
        Ok(())
    }
}
