//! Entry points for the fuzz targets under `fuzz/`, kept in the library so that a stable test
//! (`tests/fuzz_corpus.rs`) can replay every checked-in corpus file through exactly the code the fuzzer runs.
//! Not part of the public API.

pub mod crypto;
pub mod e2e;
pub mod handshake;
pub mod keys;
pub mod session;
pub mod tl;
pub mod transport;

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
        .copied()
}
