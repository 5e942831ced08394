//! AES-256 in the two modes MTProto uses: IGE (messages, handshake answers, RSA_PAD, secret chats, files) and CTR
//! (the obfuscated transport). Thin wrappers over RustCrypto's `ige` and `ctr` crates, which reach the hardware
//! floor (see DEPENDENCIES.md); nothing here is hand-rolled.

use aes::Aes256;
use cipher::{Array, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit, StreamCipher};

/// IGE input whose length is not a multiple of the 16-byte block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NotBlockAligned;

impl core::fmt::Display for NotBlockAligned {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IGE input is not a multiple of 16 bytes")
    }
}

impl core::error::Error for NotBlockAligned {}

/// Encrypts `buf` in place with AES-256-IGE. `iv` is MTProto's 32-byte IGE iv (x0 ‖ y0 as the `ige` crate lays it).
pub fn ige_encrypt(key: &[u8; 32], iv: &[u8; 32], buf: &mut [u8]) -> Result<(), NotBlockAligned> {
    let (blocks, rest) = Array::slice_as_chunks_mut(buf);
    if !rest.is_empty() {
        return Err(NotBlockAligned);
    }
    ige::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_blocks(blocks);
    Ok(())
}

/// Decrypts `buf` in place with AES-256-IGE.
pub fn ige_decrypt(key: &[u8; 32], iv: &[u8; 32], buf: &mut [u8]) -> Result<(), NotBlockAligned> {
    let (blocks, rest) = Array::slice_as_chunks_mut(buf);
    if !rest.is_empty() {
        return Err(NotBlockAligned);
    }
    ige::Decryptor::<Aes256>::new(key.into(), iv.into()).decrypt_blocks(blocks);
    Ok(())
}

/// AES-256-CTR keystream state with a 128-bit big-endian counter, kept for the life of a connection.
///
/// The key schedule and counter are zeroized on drop by the `ctr`/`aes` crates (`zeroize` feature).
pub struct AesCtr(ctr::Ctr128BE<Aes256>);

impl AesCtr {
    /// A keystream starting at counter block `iv`.
    pub fn new(key: &[u8; 32], iv: &[u8; 16]) -> Self {
        AesCtr(ctr::Ctr128BE::<Aes256>::new(key.into(), iv.into()))
    }

    /// XORs the next `buf.len()` keystream bytes into `buf` (encrypt and decrypt are the same operation).
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }
}

impl core::fmt::Debug for AesCtr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("AesCtr(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ige_round_trip_and_alignment() {
        let key = [7u8; 32];
        let iv = [9u8; 32];
        let mut buf = [0u8; 64];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8;
        }
        let orig = buf;
        ige_encrypt(&key, &iv, &mut buf).unwrap();
        assert_ne!(buf, orig);
        ige_decrypt(&key, &iv, &mut buf).unwrap();
        assert_eq!(buf, orig);
        assert_eq!(ige_encrypt(&key, &iv, &mut buf[..15]), Err(NotBlockAligned));
        assert_eq!(ige_decrypt(&key, &iv, &mut buf[..17]), Err(NotBlockAligned));
    }

    #[test]
    fn ctr_is_a_continuous_stream() {
        let mut a = AesCtr::new(&[1; 32], &[2; 16]);
        let mut b = AesCtr::new(&[1; 32], &[2; 16]);
        let mut whole = [0u8; 100];
        a.apply(&mut whole);
        let mut parts = [0u8; 100];
        b.apply(&mut parts[..7]);
        b.apply(&mut parts[7..50]);
        b.apply(&mut parts[50..]);
        assert_eq!(whole, parts);
    }
}
