//! chk_077_default_build_has_no_test_fixtures (docs/CHECKLIST.md item 77): a build of mtproto-sansio without the
//! `testing` feature exposes none of the test fixtures: no `fuzzing` module (its seeded `CryptoRng` and fixed RSA
//! key) and no `crypto::packet::encrypt_raw_for_tests` (an encryptor without sender checks).
//!
//! Not a test target of the main crate (cargo discovers only `tests/*.rs` and `tests/*/main.rs`), because every
//! test target there is built with `testing` on. It is compiled by `nostd-check/` (`#[path]` module), a separate
//! workspace that depends on the library with default features only, which `.ci/run` builds.
//!
//! How it fails: each probe glob-imports the library next to a local decoy of the same name and then uses the
//! name. Two glob imports of one name are only an error when the name is used, so the build succeeds exactly while
//! the library does not export the fixture, and fails with E0659 ("`fuzzing` is ambiguous") the moment someone
//! removes its `#[cfg(feature = "testing")]`.

mod crate_root {
    mod decoy {
        pub mod fuzzing {
            pub const ABSENT: u8 = 0;
        }
    }
    use decoy::*;
    #[allow(unused_imports)] // only `fuzzing` is probed; the rest of the crate root is imported for the ambiguity
    use mtproto_sansio::*;

    pub(crate) fn probe() -> u8 {
        fuzzing::ABSENT
    }
}

mod packet {
    mod decoy {
        pub fn encrypt_raw_for_tests() -> u8 {
            0
        }
    }
    use decoy::*;
    #[allow(unused_imports)] // as above: only the probed name matters
    use mtproto_sansio::crypto::packet::*;

    pub(crate) fn probe() -> u8 {
        encrypt_raw_for_tests()
    }
}

/// 0 when every probe resolved to its decoy (which it must, or this file does not compile).
pub(crate) fn check() -> u8 {
    crate_root::probe() | packet::probe()
}
