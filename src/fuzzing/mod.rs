//! Entry points for the fuzz targets under `fuzz/`, kept in the library so that a stable test
//! (`tests/fuzz_corpus.rs`) can replay every checked-in corpus file through exactly the code the fuzzer runs.
//! Not part of the public API.

use sha2::{Digest, Sha256};

pub mod carriage;
pub mod client;
pub mod connection;
pub mod crypto;
pub mod e2e;
pub mod files;
pub mod handshake;
pub mod keys;
pub mod pfs;
pub mod session;
pub mod signin;
pub mod store;
pub mod tl;
pub mod transport;
pub mod updates;

/// A fuzz input read front to back as operations and operands; a read past its end yields what is left (or `None`
/// for a whole value), so every input, however short, is a valid program.
#[cfg_attr(not(feature = "api"), allow(dead_code))]
pub(crate) struct Input<'a>(&'a [u8]);

#[cfg_attr(not(feature = "api"), allow(dead_code))]
impl<'a> Input<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Input(data)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*b)
    }

    /// A little-endian u16, `None` if the input ends first.
    pub(crate) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }

    /// A little-endian u16 length, missing bytes read as 0.
    pub(crate) fn len16(&mut self) -> usize {
        let lo = self.u8().unwrap_or(0);
        let hi = self.u8().unwrap_or(0);
        usize::from(u16::from_le_bytes([lo, hi]))
    }

    /// The next `n` bytes, or fewer at the end.
    pub(crate) fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// A fuzz target: it must never panic, whatever the input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its file in `fuzz/fuzz_targets/` and its corpus directory in `fuzz/corpus/`.
pub fn targets() -> impl Iterator<Item = (&'static str, Target)> {
    tl::TARGETS
        .iter()
        .chain(crypto::TARGETS)
        .chain(e2e::TARGETS)
        .chain(handshake::TARGETS)
        .chain(transport::TARGETS)
        .chain(session::TARGETS)
        .chain(keys::TARGETS)
        .chain(carriage::TARGETS)
        .chain(pfs::TARGETS)
        .chain(connection::TARGETS)
        .chain(client::TARGETS)
        .chain(signin::TARGETS)
        .chain(store::TARGETS)
        .chain(updates::TARGETS)
        .chain(files::TARGETS)
        .copied()
}

/// Deterministic CSPRNG for tests and fuzzing (SHA-256 in counter mode over a seed), so a run reproduces from its
/// seed. Not for production: the library itself never constructs an RNG.
#[derive(Clone, Debug)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRng {
    /// A generator keyed by `seed`.
    pub fn new(seed: &[u8]) -> Self {
        SeededRng {
            seed: Sha256::digest(seed).into(),
            counter: 0,
        }
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(32) {
            let block: [u8; 32] = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize()
                .into();
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(block.get(..chunk.len()).unwrap_or(&[]));
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SeededRng {}

#[cfg(feature = "defmt")]
impl defmt::Format for SeededRng {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "SeededRng {{ counter: {} }}", self.counter)
    }
}
