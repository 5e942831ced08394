//! Cryptographic building blocks of MTProto 2.0. Each is usable on its own, allocates nothing and takes its
//! randomness from a host-supplied `CryptoRng`.
//!
//! Secrets are zeroized on drop and never printed by `Debug`; secret-dependent comparisons use `subtle` and
//! secret exponents use constant-time `crypto-bigint` arithmetic.

pub mod aes;
pub mod auth_key;
pub mod dh;
pub mod factor;
pub mod kdf;
pub mod packet;
pub mod pem;
pub mod rsa;
