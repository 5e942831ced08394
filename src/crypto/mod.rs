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

/// Compile-time proof of docs/CHECKLIST.md item 77: every API that draws randomness is bound on `CryptoRng`, so a
/// generator that only implements `Rng` (a counter, an LCG, a fixed pattern) is refused by the compiler, not at run
/// time.
///
/// A counting generator without the `CryptoRng` marker does not compile:
/// ```compile_fail
/// use mtproto_sansio::crypto::{auth_key::AuthKey, packet::{self, Direction, MessageHeader}};
/// use mtproto_sansio::rand_core::TryRng;
/// struct Counter(u64);
/// impl TryRng for Counter {
///     type Error = core::convert::Infallible;
///     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { self.0 += 1; Ok(self.0 as u32) }
///     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 += 1; Ok(self.0) }
///     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(self.0 as u8); Ok(()) }
/// }
/// let key = AuthKey::from_bytes([1; 256]);
/// let header = MessageHeader { salt: 0, session_id: 0, msg_id: 4, seq_no: 0 };
/// let mut out = [0u8; 2048];
/// let _ = packet::encrypt(&key, Direction::ClientToServer, &header, &[0; 8], &mut Counter(0), &mut out);
/// ```
/// The identical code plus the marker compiles, so the failure above is the missing `CryptoRng` and nothing else:
/// ```
/// use mtproto_sansio::crypto::{auth_key::AuthKey, packet::{self, Direction, MessageHeader}};
/// use mtproto_sansio::rand_core::TryRng;
/// struct Counter(u64);
/// impl TryRng for Counter {
///     type Error = core::convert::Infallible;
///     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { self.0 += 1; Ok(self.0 as u32) }
///     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { self.0 += 1; Ok(self.0) }
///     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(self.0 as u8); Ok(()) }
/// }
/// impl mtproto_sansio::rand_core::TryCryptoRng for Counter {}
/// let key = AuthKey::from_bytes([1; 256]);
/// let header = MessageHeader { salt: 0, session_id: 0, msg_id: 4, seq_no: 0 };
/// let mut out = [0u8; 2048];
/// assert!(packet::encrypt(&key, Direction::ClientToServer, &header, &[0; 8], &mut Counter(0), &mut out).is_ok());
/// ```
#[doc(hidden)]
pub mod chk_077_non_crypto_rng_does_not_compile {}
