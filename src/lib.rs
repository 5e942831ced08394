#![doc = include_str!("../README.md")]
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

mod buffer;
pub mod error;

pub use error::{BufferTooSmall, Fault};
pub use transport::Role;

pub mod carriage;
pub mod client;
pub mod crypto;
pub mod e2e;
pub mod handshake;
pub mod session;
pub mod time;
pub mod tl;
pub mod transport;

/// Test and fuzz fixtures (seeded RNG, fixed keys, fuzz entry points): only with the `testing` feature, which a
/// production build must never enable.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzzing;

/// Re-exported so hosts name the same `CryptoRng` trait this crate is bound on.
pub use rand_core;
