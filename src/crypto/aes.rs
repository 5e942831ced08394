//! AES-256 in the two modes MTProto uses: IGE (messages, handshake answers, RSA_PAD, secret chats, files) and CTR
//! (the obfuscated transport). Thin wrappers over RustCrypto's `aes`, `ige` and `ctr` crates, which reach the
//! hardware floor (README, "Measured"); the block cipher itself is never hand-rolled.
//!
//! One mode loop is ours: [`ige_decrypt_and_hash`], IGE decryption fused with the SHA-256 of the plaintext that the
//! MTProto 2.0 msg_key check needs. IGE decryption is a chain (each block needs the previous plaintext), so one
//! message is bound by the latency of AES, not its throughput; hashing each 64 bytes right after they are decrypted
//! lets the SHA-256 run in the shadow of the next blocks' AES chain, in one pass over memory instead of two.

use aes::{Aes256, Aes256Dec, Aes256Enc};
use cipher::consts::U16;
use cipher::{
    Array, Block, BlockCipherDecBackend, BlockCipherDecClosure, BlockCipherDecrypt, BlockModeDecrypt, BlockModeEncrypt,
    BlockSizeUser, KeyInit, KeyIvInit, StreamCipher,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

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
    // The encryption-only key schedule: `Aes256` would also derive (and later zeroize) the decryption round keys.
    ige::Encryptor::<Aes256Enc>::new(key.into(), iv.into()).encrypt_blocks(blocks);
    Ok(())
}

/// Decrypts `buf` in place with AES-256-IGE.
pub fn ige_decrypt(key: &[u8; 32], iv: &[u8; 32], buf: &mut [u8]) -> Result<(), NotBlockAligned> {
    let (blocks, rest) = Array::slice_as_chunks_mut(buf);
    if !rest.is_empty() {
        return Err(NotBlockAligned);
    }
    ige::Decryptor::<Aes256Dec>::new(key.into(), iv.into()).decrypt_blocks(blocks);
    Ok(())
}

/// Plaintext bytes decrypted between two hasher updates: one SHA-256 block, so the hash of a stretch overlaps the AES
/// chain of the next stretch (both fit in the core's out-of-order window) and the bytes are hashed while still in L1.
const FUSED_STRIDE: usize = 64;

/// Decrypts `buf` in place with AES-256-IGE (the same transformation as [`ige_decrypt`]) and feeds the plaintext to
/// `hasher` as it is produced, so `hasher` ends up exactly as if `hasher.update(buf)` had run after decryption.
///
/// `absorbed` is how many bytes `hasher` has taken before (32 for msg_key's auth_key slice): the updates then start
/// on the hasher's 64-byte block boundaries, so each stretch goes from `buf` straight to the compression function
/// without a copy through the hasher's buffer. Any value gives the same result; only the speed depends on it.
///
/// The work depends only on `buf.len()`: every block is decrypted and hashed whatever its content (the caller's
/// constant-time msg_key check relies on it). The IGE chaining state is zeroized before returning; the key
/// schedule is zeroized on drop by the `aes` crate.
pub fn ige_decrypt_and_hash(
    key: &[u8; 32],
    iv: &[u8; 32],
    buf: &mut [u8],
    hasher: &mut Sha256,
    absorbed: usize,
) -> Result<(), NotBlockAligned> {
    if !buf.len().is_multiple_of(16) {
        return Err(NotBlockAligned);
    }
    let (y, x) = iv.split_at(16);
    let lead = (FUSED_STRIDE - absorbed % FUSED_STRIDE) % FUSED_STRIDE / 16 * 16;
    let mut state = IgeDecHash {
        buf,
        lead,
        // MTProto's iv is the previous ciphertext block (y0) followed by the previous plaintext block (x0).
        x: Array::try_from(x).unwrap_or_default(),
        y: Array::try_from(y).unwrap_or_default(),
        hasher,
    };
    Aes256Dec::new(key.into()).decrypt_with_backend(&mut state);
    state.x.as_mut_slice().zeroize();
    state.y.as_mut_slice().zeroize();
    Ok(())
}

/// The mode loop of [`ige_decrypt_and_hash`], run by the `aes` crate with its fastest backend for this CPU (inlined
/// there, so the AES instructions of the chain and the hasher's calls interleave).
struct IgeDecHash<'a, 'h> {
    buf: &'a mut [u8],
    /// Bytes of the first stretch, which completes the hasher's partial block.
    lead: usize,
    /// Previous plaintext block.
    x: Block<Aes256Dec>,
    /// Previous ciphertext block.
    y: Block<Aes256Dec>,
    hasher: &'h mut Sha256,
}

impl BlockSizeUser for &mut IgeDecHash<'_, '_> {
    type BlockSize = U16;
}

impl BlockCipherDecClosure for &mut IgeDecHash<'_, '_> {
    #[inline(always)]
    fn call<B: BlockCipherDecBackend<BlockSize = U16>>(self, backend: &B) {
        // The chaining blocks live in locals (registers) inside a stretch: kept in `self`, each block would store its
        // plaintext and load it back for the next, a store-to-load round trip on the chain's critical path.
        let (mut x, mut y) = (self.x, self.y);
        let (first, rest) = self.buf.split_at_mut(self.lead.min(self.buf.len()));
        // The hash lags one stretch behind: stretch k-1 is hashed after stretch k's blocks are issued, so its
        // inputs are ready and it executes while stretch k's AES chain is in flight. Hashing stretch k right after
        // its own blocks would wait for their chain to finish and hold up the next stretch behind it.
        let mut behind: &[u8] = &[];
        for stretch in core::iter::once(first).chain(rest.chunks_mut(FUSED_STRIDE)) {
            let (blocks, _) = Array::slice_as_chunks_mut(stretch);
            for block in blocks {
                // p_i = D(c_i ^ p_{i-1}) ^ c_{i-1}
                let c = *block;
                let mut t = c;
                xor16(&mut t, &x);
                backend.decrypt_block((&mut t).into());
                xor16(&mut t, &y);
                *block = t;
                x = t;
                y = c;
            }
            self.hasher.update(behind);
            behind = stretch;
        }
        self.hasher.update(behind);
        self.x = x;
        self.y = y;
    }
}

#[inline(always)]
fn xor16(out: &mut Block<Aes256Dec>, other: &Block<Aes256Dec>) {
    for (a, b) in out.iter_mut().zip(other.iter()) {
        *a ^= *b;
    }
}

/// Most IGE chains [`ige_decrypt_and_hash_batch`] runs side by side; longer batches are taken in groups of this many.
///
/// Eight chains of AES-256 decryption (14 rounds each) keep a core's AES units busy where one chain leaves them idle
/// between dependent rounds, and their key schedules (up to 960 bytes each with the software backend) stay a few KiB
/// of stack.
pub const MAX_BATCH: usize = 8;

/// One IGE chain of a batch: `buf` is decrypted in place under `key`/`iv` and its plaintext fed to `hasher`, exactly
/// as [`ige_decrypt_and_hash`] would.
pub struct IgeHashLane<'a> {
    /// AES-256 key of this chain.
    pub key: &'a [u8; 32],
    /// MTProto's 32-byte IGE iv (y0 ‖ x0).
    pub iv: &'a [u8; 32],
    /// Ciphertext, decrypted in place; a multiple of 16 bytes.
    pub buf: &'a mut [u8],
    /// Takes the plaintext as it is produced.
    pub hasher: &'a mut Sha256,
}

impl core::fmt::Debug for IgeHashLane<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IgeHashLane")
            .field("len", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// [`ige_decrypt_and_hash`] for several independent chains (packets of different sessions, each with its own key), run
/// side by side: block `j` of every chain is decrypted before block `j + 1` of any, so the chains' AES work
/// overlaps in the core instead of each block waiting for the previous one of its own chain. Each lane ends exactly
/// as [`ige_decrypt_and_hash`] would leave it; lanes may have different lengths.
///
/// `absorbed` is what every lane's hasher has taken before (see [`ige_decrypt_and_hash`]). Returns
/// [`NotBlockAligned`] without touching any lane if one is not a multiple of 16 bytes. The work for each lane depends
/// only on its length; the chaining state is zeroized before returning and the key schedules on drop.
pub fn ige_decrypt_and_hash_batch(lanes: &mut [IgeHashLane<'_>], absorbed: usize) -> Result<(), NotBlockAligned> {
    if lanes.iter().any(|l| !l.buf.len().is_multiple_of(16)) {
        return Err(NotBlockAligned);
    }
    let lead = (FUSED_STRIDE - absorbed % FUSED_STRIDE) % FUSED_STRIDE / 16 * 16;
    for group in lanes.chunks_mut(MAX_BATCH) {
        interleave(group, lead);
    }
    Ok(())
}

/// The state of one chain inside [`interleave`]: its key schedule, chaining blocks and where it is in its buffer.
struct Chain<'a> {
    cipher: Aes256Dec,
    /// Previous plaintext block.
    x: Block<Aes256Dec>,
    /// Previous ciphertext block.
    y: Block<Aes256Dec>,
    /// The stretch being decrypted this round.
    cur: &'a mut [u8],
    /// The stretch decrypted last round, hashed this round (one behind, as in [`ige_decrypt_and_hash`]).
    behind: &'a [u8],
    /// What is left to decrypt.
    rest: &'a mut [u8],
}

impl Drop for Chain<'_> {
    fn drop(&mut self) {
        self.x.as_mut_slice().zeroize();
        self.y.as_mut_slice().zeroize();
    }
}

/// Runs up to [`MAX_BATCH`] lanes side by side, in stretches of [`FUSED_STRIDE`] bytes (the first `lead` bytes long).
fn interleave(group: &mut [IgeHashLane<'_>], lead: usize) {
    let mut chains: heapless::Vec<Chain<'_>, MAX_BATCH> = heapless::Vec::new();
    let mut hashers: heapless::Vec<&mut Sha256, MAX_BATCH> = heapless::Vec::new();
    for lane in group.iter_mut() {
        let (y, x) = lane.iv.split_at(16);
        let chain = Chain {
            cipher: Aes256Dec::new(lane.key.into()),
            x: Array::try_from(x).unwrap_or_default(),
            y: Array::try_from(y).unwrap_or_default(),
            cur: &mut [],
            behind: &[],
            rest: &mut *lane.buf,
        };
        // `group` holds at most MAX_BATCH lanes (chunks_mut), so neither push can fail.
        let _ = chains.push(chain);
        let _ = hashers.push(&mut *lane.hasher);
    }
    let mut stride = lead;
    loop {
        let mut left = false;
        for c in chains.iter_mut() {
            let n = stride.min(c.rest.len());
            let (cur, rest) = core::mem::take(&mut c.rest).split_at_mut(n);
            left |= !cur.is_empty();
            c.cur = cur;
            c.rest = rest;
        }
        if !left && stride != 0 {
            break;
        }
        // Block by block across the chains: the chains are independent, so one's AES rounds run while another's
        // wait for their previous round.
        for at in (0..stride).step_by(16) {
            for c in chains.iter_mut() {
                if let Some(block) = c.cur.get_mut(at..at + 16) {
                    // p_i = D(c_i ^ p_{i-1}) ^ c_{i-1}
                    let ct = Array::<u8, U16>::try_from(&*block).unwrap_or_default();
                    let mut t = ct;
                    xor16(&mut t, &c.x);
                    c.cipher.decrypt_block(&mut t);
                    xor16(&mut t, &c.y);
                    block.copy_from_slice(&t);
                    c.x = t;
                    c.y = ct;
                }
            }
        }
        for (c, h) in chains.iter_mut().zip(hashers.iter_mut()) {
            h.update(c.behind);
            let done: &mut [u8] = core::mem::take(&mut c.cur);
            c.behind = done;
        }
        stride = FUSED_STRIDE;
    }
    for (c, h) in chains.iter_mut().zip(hashers.iter_mut()) {
        h.update(c.behind);
    }
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
    fn fused_decrypt_equals_decrypt_then_hash() {
        let key = [3u8; 32];
        let iv: [u8; 32] = core::array::from_fn(|i| i as u8);
        // Lengths around the 64-byte stride, and a prefix that leaves the hasher mid-block as msg_key's 32 bytes do.
        for len in [0usize, 16, 48, 64, 80, 128, 144, 1040] {
            let mut orig = [0u8; 1040];
            for (i, b) in orig.iter_mut().enumerate() {
                *b = (i * 7 + len) as u8;
            }
            let orig = &orig[..len];
            let mut fused = [0u8; 1040];
            let fused = &mut fused[..len];
            fused.copy_from_slice(orig);
            ige_encrypt(&key, &iv, fused).unwrap();
            let mut serial = [0u8; 1040];
            let serial = &mut serial[..len];
            serial.copy_from_slice(fused);
            ige_decrypt(&key, &iv, serial).unwrap();
            let mut h = Sha256::new();
            h.update([9u8; 32]);
            // The absorbed count only changes where the updates fall, never the result.
            ige_decrypt_and_hash(&key, &iv, fused, &mut h, len % 3 * 16).unwrap();
            assert_eq!(fused, orig);
            assert_eq!(serial, orig);
            let want = Sha256::new().chain_update([9u8; 32]).chain_update(orig).finalize();
            assert_eq!(h.finalize(), want, "len {len}");
        }
        let mut h = Sha256::new();
        assert_eq!(
            ige_decrypt_and_hash(&key, &iv, &mut [0u8; 17], &mut h, 32),
            Err(NotBlockAligned)
        );
    }

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
