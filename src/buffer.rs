//! The byte buffers a connection and its session own: the transport decoder's receive buffer, the session's
//! decrypted packet and inflated `gzip_packed` bodies, and the resend arena.
//!
//! `N` is each buffer's capacity, its hard limit. Without the `alloc` feature a buffer is an inline `[u8; N]`: the
//! memory a device plans for, paid up front. With `alloc` it is a heap block that grows on demand, in powers of two,
//! up to `N`, and is handed back to the allocator when the host calls [`Buffer::release`] on an idle buffer larger
//! than [`KEEP`]: a DC holding thousands of connections pays for the frames each one actually carries, not for the
//! largest frame any could carry (docs/DESIGN.md, "Memory").
//!
//! Contents are secrets (decrypted plaintext, resend bodies): a heap block is zeroized before it is freed or
//! replaced, never `realloc`ed (which could leave a copy behind), and on drop.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zeroize::Zeroize;

/// With `alloc`: a buffer no larger than this is kept when released, so a connection carrying small messages
/// allocates nothing per message once warm.
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) const KEEP: usize = 16 * 1024;

/// With `alloc`: the smallest block a buffer grows to.
#[cfg(feature = "alloc")]
const MIN_BLOCK: usize = 1024;

/// A byte buffer of capacity `N`; see the module docs.
pub(crate) struct Buffer<const N: usize> {
    #[cfg(not(feature = "alloc"))]
    bytes: [u8; N],
    #[cfg(feature = "alloc")]
    bytes: alloc::vec::Vec<u8>,
}

impl<const N: usize> Buffer<N> {
    /// An empty buffer (with `alloc`, no memory yet).
    pub(crate) const fn new() -> Self {
        Buffer {
            #[cfg(not(feature = "alloc"))]
            bytes: [0; N],
            #[cfg(feature = "alloc")]
            bytes: alloc::vec::Vec::new(),
        }
    }

    /// The addressable bytes: all `N` without `alloc`, the current block with it.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The addressable bytes, mutably.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Makes at least `len` bytes addressable, keeping the first `keep` bytes' contents. `false` when `len`
    /// exceeds `N` or (with `alloc`) the allocator refused: the caller treats it as a frame too large.
    pub(crate) fn reserve(&mut self, len: usize, keep: usize) -> bool {
        if len > N {
            return false;
        }
        #[cfg(not(feature = "alloc"))]
        {
            let _ = keep;
            true
        }
        #[cfg(feature = "alloc")]
        {
            if len <= self.bytes.len() {
                return true;
            }
            let size = len.max(MIN_BLOCK).checked_next_power_of_two().unwrap_or(N).min(N);
            let mut grown = alloc::vec::Vec::new();
            if grown.try_reserve_exact(size).is_err() {
                return false;
            }
            grown.resize(size, 0);
            let keep = keep.min(self.bytes.len());
            if let (Some(dst), Some(src)) = (grown.get_mut(..keep), self.bytes.get(..keep)) {
                dst.copy_from_slice(src);
            }
            self.bytes.zeroize();
            self.bytes = grown;
            true
        }
    }

    /// Gives an idle buffer's memory back (with `alloc`, when it is larger than [`KEEP`]); its contents are gone.
    /// Without `alloc` it does nothing.
    pub(crate) fn release(&mut self) {
        #[cfg(feature = "alloc")]
        if self.bytes.len() > KEEP {
            self.bytes.zeroize();
            self.bytes = alloc::vec::Vec::new();
        }
    }

    /// Bytes this buffer holds in memory now (`N` without `alloc`).
    pub(crate) fn footprint(&self) -> usize {
        self.bytes.len()
    }

    /// Heap bytes this buffer holds now (0 without `alloc`, where it is inline).
    pub(crate) fn heap_bytes(&self) -> usize {
        if cfg!(feature = "alloc") { self.footprint() } else { 0 }
    }

    /// Wipes the contents (the memory stays).
    pub(crate) fn wipe(&mut self) {
        self.as_mut_slice().zeroize();
    }
}

impl<const N: usize> Drop for Buffer<N> {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn reserve_refuses_past_capacity() {
        let mut b = Buffer::<4096>::new();
        assert!(b.reserve(4096, 0));
        assert!(!b.reserve(4097, 0));
        assert!(b.as_slice().len() >= 4096);
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn grows_in_powers_of_two_keeps_contents_and_releases_when_large() {
        let mut b = Buffer::<{ 1 << 20 }>::new();
        assert_eq!(b.footprint(), 0);
        assert!(b.reserve(10, 0));
        assert_eq!(b.footprint(), MIN_BLOCK);
        b.as_mut_slice()[..3].copy_from_slice(&[1, 2, 3]);
        assert!(b.reserve(5000, 3));
        assert_eq!(b.footprint(), 8192);
        assert_eq!(&b.as_slice()[..3], &[1, 2, 3]);
        b.release();
        assert_eq!(b.footprint(), 8192, "a buffer within KEEP stays");
        assert!(b.reserve(100_000, 0));
        assert_eq!(b.footprint(), 131_072);
        b.release();
        assert_eq!(b.footprint(), 0);
        // The capacity caps the growth, not the power of two.
        let mut c = Buffer::<3000>::new();
        assert!(c.reserve(2000, 0));
        assert_eq!(c.footprint(), 2048);
        assert!(c.reserve(2500, 0));
        assert_eq!(c.footprint(), 3000);
    }
}
