//! mtproto-sansio: Telegram's MTProto 2.0 as pure Sans-IO state machines.
//!
//! Bytes, time and randomness go in; bytes and events come out. The host owns sockets, timers and the RNG.
//! The crate is `#![no_std]`, needs no allocator, and every layer is public so it can be used on its own:
//!
//! - [`tl`]: the TL wire codec and the MTProto service schema;
//! - [`crypto`]: AES-IGE/CTR, the MTProto 2.0 packet codec, KDFs, RSA_PAD, DH checks, pq factoring;
//! - [`transport`]: abridged, intermediate, padded intermediate and full framings, the obfuscated transport.
//! - [`handshake`]: the auth-key handshake, client and DC roles.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(not(fuzzing), warn(missing_docs))]
#![warn(unreachable_pub)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[macro_use]
mod fmt;

pub mod crypto;
pub mod handshake;
pub mod session;
pub mod time;
pub mod tl;
pub mod transport;

#[doc(hidden)]
pub mod fuzzing;

/// Re-exported so hosts name the same `CryptoRng` trait this crate is bound on.
pub use rand_core;
