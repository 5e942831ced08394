//! Two-step verification: Telegram's SRP-6a with the
//! `passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow` KDF (<https://core.telegram.org/api/srp>), for
//! both roles.
//!
//! **Where the data comes from and goes.** The client's host calls `account.getPassword` and decodes from the
//! `account.password` it gets back the current algorithm's `salt1`, `salt2`, `g` and `p` (a [`PasswordKdf`]) and
//! `srp_B`, `srp_id`. [`compute_check`] (or the steps [`PasswordKdf::check`], [`CheckedKdf::hash_password`],
//! [`CheckedKdf::prove`]) turns those, the password the user typed and the host's `CryptoRng` into the
//! `inputCheckPasswordSRP` fields ([`CheckPasswordSrp`]) for `auth.checkPassword` and the other methods that take
//! one. To set a password, the host takes `new_algo`, extends its `salt1` with [`new_salt1`] and sends
//! [`CheckedKdf::verifier`] as `new_password_hash` (`account.updatePasswordSettings`).
//!
//! The DC side (test_dc) stores a password as its salts and [`Verifier`] (made by [`CheckedKdf::verifier`] from a
//! password, or taken from a client's `new_password_hash` with [`Verifier::from_bytes`]); for each
//! `account.getPassword` it draws an [`SrpServer`], answers with its `srp_id` and `srp_B`, and checks the
//! `inputCheckPasswordSRP` that comes back with [`SrpServer::check`].
//!
//! **Checks before anything is sent** (client): p is a safe 2048-bit prime and g generates the subgroup of order
//! (p − 1)/2, exactly as the handshake checks `dh_prime` and `g` (docs/CHECKLIST.md item 16, through
//! [`check_group`], so Telegram's prime is fast-pathed and other primes go through the cached Miller–Rabin test);
//! both salts are [`MIN_SALT_BYTES`]..=[`MAX_SALT_BYTES`] long; 0 < B < p (the spec, TDLib and Telethon) and B is at
//! most 256 bytes (item 56); g^b = B − k·v must lie in [2^1984, p − 2^1984], the rule item 17 puts on every DH public
//! value (Telethon applies it to exactly this value; TDLib checks only 0 < B < p, and refuses a B sent in fewer than
//! 248 bytes, which this range check covers for the value); our own A must pass the same range and u = H(A | B) must
//! not be 0, else a is drawn again (Telethon redraws on both; SRP-6a requires u ≠ 0). All of them run before the
//! 100,000-iteration PBKDF2 where they can, so a bad DC costs almost nothing.
//!
//! **Checks on the DC**: A is at most 256 bytes and lies in [2^1984, p − 2^1984] (which refuses A ≡ 0 mod p, the
//! value that would let a client prove any password, and every other degenerate A); u ≠ 0; `srp_id` is the one
//! issued; M1 is compared in constant time (`subtle`).
//!
//! **Secrets.** The password hash x, the exponents a and b, the verifier v, the shared S and K and every
//! intermediate derived from the password are zeroized (crypto-bigint's and our own values by `Zeroize`; the
//! HMAC-SHA512 states by sha2's `zeroize` feature) and never printed by `Debug`. Every exponentiation with a secret
//! exponent is constant time: g^a, g^x and g^b use the group's fixed ladder ([`DhGroup`]), (B − k·v)^(a + u·x) and
//! (A·v^u)^b crypto-bigint's constant-time `pow`.
//!
//! Nothing here allocates: values are fixed arrays and crypto-bigint's `U2048`/`U4096`.
//!
//! Both roles, as a DC host (test_dc) and a client use them (`no_run`: each password hash is 100,000 HMACs):
//! ```no_run
//! use mtproto_sansio::client::srp::{self, CheckedKdf, PasswordKdf, SrpServer, Verifier};
//! use mtproto_sansio::crypto::dh::{DhGroup, PrimeCache};
//! # fn demo(rng: &mut impl mtproto_sansio::rand_core::CryptoRng) -> Result<(), srp::SrpError> {
//! // DC, once (a command-line password): salts from its RNG, the verifier is what it stores.
//! let (salt1, salt2) = ([7u8; 40], [9u8; 16]);
//! let dc_kdf = CheckedKdf::new(DhGroup::telegram(3)?, &salt1, &salt2)?;
//! let stored: Verifier = dc_kdf.verifier(&dc_kdf.hash_password(b"hunter2"));
//! // DC, per account.getPassword: current_algo = (salt1, salt2, g, p), srp_B, srp_id.
//! let run = SrpServer::new(&dc_kdf, &stored, rng)?;
//! let p = dc_kdf.group().prime_bytes();
//! // Client: from account.password to inputCheckPasswordSRP.
//! let algo = PasswordKdf { salt1: &salt1, salt2: &salt2, g: dc_kdf.group().g(), p: &p };
//! let mut primes = PrimeCache::<2>::default();
//! let check = srp::compute_check(b"hunter2", &algo, run.srp_b(), run.srp_id(), &mut primes, rng)?;
//! // DC, on auth.checkPassword: Err(WrongPassword) is PASSWORD_HASH_INVALID, Err(SrpIdMismatch) SRP_ID_INVALID.
//! run.check(check.srp_id, &check.a, &check.m1)?;
//! # Ok(()) }
//! ```
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::num::NonZeroU32;

use crypto_bigint::{
    NonZero, U256, U512, U2048, U4096,
    modular::{FixedMontyForm, FixedMontyParams},
};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Fault;
use crate::crypto::dh::{
    DH_BITS, DH_BYTES, DhError, DhGroup, MAX_KEYGEN_ATTEMPTS, PrimeCache, be_bytes, check_group, normalize_be,
};

/// PBKDF2-HMAC-SHA512 iterations of the KDF (its name says 100000).
pub const PBKDF2_ITERATIONS: u32 = 100_000;
/// Bytes of every number the protocol hashes or sends (p, g, A, B, v): big-endian, left-padded to 2048 bits.
pub const SRP_BYTES: usize = DH_BYTES;
/// Bytes of M1 (a SHA-256).
pub const M1_BYTES: usize = 32;
/// Shortest salt accepted. The DC's `new_algo` salt1 is 8 bytes and salt2 16 on Telegram; the password's salt1 is
/// that plus the client's 32 bytes. A shorter salt means a DC that does not salt (an offline dictionary shared by
/// every account), so it is refused rather than used.
pub const MIN_SALT_BYTES: usize = 8;
/// Longest salt accepted (Telegram's are 8 to 40 bytes): bounds the hashing a DC can make us do and sizes [`Salt`].
pub const MAX_SALT_BYTES: usize = 128;
/// Random bytes a client appends to the DC's `new_algo.salt1` before it sets a password (the spec's 32).
pub const NEW_SALT1_RANDOM_BYTES: usize = 32;

/// A salt the client made, to send back in `new_algo` (see [`new_salt1`]).
pub type Salt = heapless::Vec<u8, MAX_SALT_BYTES>;

/// Why an SRP computation or check was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SrpError {
    /// The KDF's p or g failed the DH group checks (items 16, 56).
    Group(DhError),
    /// salt1 or salt2 is shorter than [`MIN_SALT_BYTES`] or longer than [`MAX_SALT_BYTES`].
    SaltLength,
    /// `srp_B` is 0, not below p, or longer than 256 bytes.
    BRange,
    /// g^b = B − k·v is outside [2^1984, p − 2^1984] (item 17).
    GbRange,
    /// (DC) A is outside [2^1984, p − 2^1984] or longer than 256 bytes; this includes A ≡ 0 mod p.
    ARange,
    /// (DC) u = H(A | B) is 0.
    ScramblerZero,
    /// (DC) The `srp_id` is not the one this [`SrpServer`] issued (Telegram's `SRP_ID_INVALID`).
    SrpIdMismatch,
    /// (DC) M1 does not prove the password: a wrong password or a forged proof (Telegram's
    /// `PASSWORD_HASH_INVALID`).
    WrongPassword,
    /// A verifier (a client's `new_password_hash`) is not a number in 1 < v < p − 1.
    VerifierRange,
    /// A caller-given secret exponent makes a public value outside the item 17 range, or u = 0.
    WeakSecret,
    /// The RNG kept producing exponents whose public value is out of range: a broken generator.
    KeygenFailed,
    /// The DC's `new_algo.salt1` plus [`NEW_SALT1_RANDOM_BYTES`] does not fit in [`MAX_SALT_BYTES`].
    SaltTooLong,
}

impl SrpError {
    /// Whose fault the error is. The DC's values (group, salts, B) are the peer's on a client, and the client's (A,
    /// M1, `srp_id`, a verifier) are the peer's on a DC; a secret the caller chose or an RNG that cannot produce a
    /// usable one is the host's.
    pub const fn fault(&self) -> Fault {
        match self {
            SrpError::Group(_)
            | SrpError::SaltLength
            | SrpError::BRange
            | SrpError::GbRange
            | SrpError::ARange
            | SrpError::ScramblerZero
            | SrpError::SrpIdMismatch
            | SrpError::WrongPassword
            | SrpError::VerifierRange
            | SrpError::SaltTooLong => Fault::Peer,
            SrpError::WeakSecret | SrpError::KeygenFailed => Fault::Host,
        }
    }
}

impl core::fmt::Display for SrpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SrpError::Group(e) => write!(f, "SRP group refused: {e}"),
            SrpError::SaltLength => f.write_str("SRP salt length out of bounds"),
            SrpError::BRange => f.write_str("SRP B is not in 0 < B < p"),
            SrpError::GbRange => f.write_str("SRP g^b = B - k*v out of range"),
            SrpError::ARange => f.write_str("SRP A out of range"),
            SrpError::ScramblerZero => f.write_str("SRP u = H(A | B) is zero"),
            SrpError::SrpIdMismatch => f.write_str("SRP id is not the one issued"),
            SrpError::WrongPassword => f.write_str("SRP proof does not match: wrong password"),
            SrpError::VerifierRange => f.write_str("SRP verifier out of range"),
            SrpError::WeakSecret => f.write_str("SRP secret exponent gives an unusable public value"),
            SrpError::KeygenFailed => f.write_str("SRP key generation failed"),
            SrpError::SaltTooLong => f.write_str("SRP new salt1 too long"),
        }
    }
}

impl core::error::Error for SrpError {}

impl From<DhError> for SrpError {
    fn from(e: DhError) -> Self {
        SrpError::Group(e)
    }
}

type HmacSha512 = Hmac<Sha512>;

/// PBKDF2 (RFC 8018) with HMAC-SHA512, filling `out` (any length; the KDF uses 64 bytes, one block).
///
/// The keyed HMAC state is computed once and cloned per iteration, so each iteration costs one HMAC of a 64-byte
/// message on a prepared state: two SHA-512 compressions, the floor for this construction.
pub fn pbkdf2_hmac_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    // HMAC takes keys of any length, so this cannot fail; the fallback keeps the function total.
    let Ok(keyed) = <HmacSha512 as KeyInit>::new_from_slice(password) else {
        out.zeroize();
        return;
    };
    for (i, chunk) in out.chunks_mut(64).enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX).wrapping_add(1);
        let mut mac = keyed.clone();
        mac.update(salt);
        mac.update(&index.to_be_bytes());
        let mut u: Zeroizing<[u8; 64]> = Zeroizing::new(mac.finalize().into_bytes().into());
        let mut t = u.clone();
        for _ in 1..iterations.get() {
            let mut mac = keyed.clone();
            mac.update(&*u);
            *u = mac.finalize().into_bytes().into();
            for (a, b) in t.iter_mut().zip(u.iter()) {
                *a ^= b;
            }
        }
        for (o, b) in chunk.iter_mut().zip(t.iter()) {
            *o = *b;
        }
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// SH(data, salt) = H(salt | data | salt).
fn salted_hash(data: &[u8], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(sha256(&[salt, data, salt]))
}

/// u (or k) from its digest; `None` for a zero digest, which SRP-6a refuses as u (a separate step so the u ≠ 0 rule
/// is testable without a SHA-256 preimage of zero).
fn scrambler(digest: &[u8; 32]) -> Option<U256> {
    let u = U256::from_be_slice(digest);
    if bool::from(u.is_zero()) { None } else { Some(u) }
}

/// g as a 256-byte big-endian number, as the hashes take it.
fn g_bytes(g: u32) -> [u8; SRP_BYTES] {
    be_bytes(&U2048::from_u32(g))
}

/// The `passwordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow` parameters as the DC sent them (in
/// `account.password.current_algo` or `new_algo`), unchecked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PasswordKdf<'a> {
    /// salt1 (for a password being set: the DC's `new_algo.salt1` extended by [`new_salt1`]).
    pub salt1: &'a [u8],
    /// salt2.
    pub salt2: &'a [u8],
    /// The generator.
    pub g: u32,
    /// The prime, big-endian.
    pub p: &'a [u8],
}

impl<'a> PasswordKdf<'a> {
    /// Checks the group (item 16, with `primes` caching verdicts on unknown primes and `rng` drawing Miller–Rabin
    /// bases) and the salt lengths.
    pub fn check<R: CryptoRng + ?Sized, const N: usize>(
        &self,
        primes: &mut PrimeCache<N>,
        rng: &mut R,
    ) -> Result<CheckedKdf<'a>, SrpError> {
        for salt in [self.salt1, self.salt2] {
            if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
                return Err(SrpError::SaltLength);
            }
        }
        let group = check_group(self.p, self.g, primes, rng)?;
        Ok(CheckedKdf::from_group(group, self.salt1, self.salt2))
    }
}

/// A [`PasswordKdf`] whose group and salts passed their checks, with the values every proof reuses (k and the
/// hashes in front of M1).
#[derive(Clone)]
pub struct CheckedKdf<'a> {
    group: DhGroup,
    salt1: &'a [u8],
    salt2: &'a [u8],
    /// k = H(p | g).
    k: U2048,
    /// H(p) xor H(g) | H(salt1) | H(salt2): the start of M1.
    m1_prefix: [u8; 96],
}

impl core::fmt::Debug for CheckedKdf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CheckedKdf")
            .field("g", &self.group.g())
            .field("salt1_len", &self.salt1.len())
            .field("salt2_len", &self.salt2.len())
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for CheckedKdf<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "CheckedKdf {{ g: {} }}", self.group.g())
    }
}

impl<'a> CheckedKdf<'a> {
    /// The KDF over a group the caller already holds checked (a DC's own group, e.g. [`DhGroup::telegram`]); the
    /// salt lengths are still checked.
    pub fn new(group: DhGroup, salt1: &'a [u8], salt2: &'a [u8]) -> Result<Self, SrpError> {
        for salt in [salt1, salt2] {
            if !(MIN_SALT_BYTES..=MAX_SALT_BYTES).contains(&salt.len()) {
                return Err(SrpError::SaltLength);
            }
        }
        Ok(Self::from_group(group, salt1, salt2))
    }

    fn from_group(group: DhGroup, salt1: &'a [u8], salt2: &'a [u8]) -> Self {
        let p = group.prime_bytes();
        let g = g_bytes(group.g());
        let k = U256::from_be_slice(&sha256(&[&p, &g])).resize();
        let mut m1_prefix = [0u8; 96];
        let hp = sha256(&[&p]);
        let hg = sha256(&[&g]);
        let parts = [sha256(&[salt1]), sha256(&[salt2])];
        for ((o, a), b) in m1_prefix.iter_mut().zip(hp.iter()).zip(hg.iter()) {
            *o = a ^ b;
        }
        for (o, b) in m1_prefix.iter_mut().skip(32).zip(parts.iter().flatten()) {
            *o = *b;
        }
        CheckedKdf {
            group,
            salt1,
            salt2,
            k,
            m1_prefix,
        }
    }

    /// The checked group.
    pub fn group(&self) -> &DhGroup {
        &self.group
    }

    /// (salt1, salt2), as the DC sends them in `passwordKdfAlgo…` (with [`DhGroup::g`] and
    /// [`DhGroup::prime_bytes`]).
    pub fn salts(&self) -> (&'a [u8], &'a [u8]) {
        (self.salt1, self.salt2)
    }

    /// x = PH2(password, salt1, salt2): SH(PBKDF2-HMAC-SHA512(PH1(password, salt1, salt2), salt1, 100000), salt2)
    /// with PH1 = SH(SH(password, salt1), salt2). The expensive step (100,000 HMAC-SHA512): a host that checks the
    /// same password twice may keep the result.
    pub fn hash_password(&self, password: &[u8]) -> PasswordHash {
        let ph1 = salted_hash(&*salted_hash(password, self.salt1), self.salt2);
        let mut stretched = Zeroizing::new([0u8; 64]);
        let iterations = NonZeroU32::new(PBKDF2_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        pbkdf2_hmac_sha512(&*ph1, self.salt1, iterations, &mut *stretched);
        PasswordHash {
            x: *salted_hash(&*stretched, self.salt2),
        }
    }

    fn params(&self) -> &FixedMontyParams<{ U2048::LIMBS }> {
        self.group.modulus().1
    }

    /// v = g^x mod p as a number (constant time in x: the group's ladder over x's 256 bits).
    fn v_uint(&self, hash: &PasswordHash) -> U2048 {
        let mut x = U256::from_be_slice(&hash.x).resize::<{ U2048::LIMBS }>();
        let v = self.group.pow_g(&x, 256);
        x.zeroize();
        v
    }

    /// The verifier v = g^x mod p: `new_password_hash` for `account.updatePasswordSettings` (with this KDF's salts
    /// as `new_algo`), and what a DC stores for the password.
    pub fn verifier(&self, hash: &PasswordHash) -> Verifier {
        let mut v = self.v_uint(hash);
        let out = Verifier { v: be_bytes(&v) };
        v.zeroize();
        out
    }

    /// Checks `srp_B` (0 < B < p, at most 256 bytes) without needing the password, so a bad DC is refused before
    /// the PBKDF2. [`CheckedKdf::prove`] checks it again.
    pub fn check_srp_b(&self, srp_b: &[u8]) -> Result<(), SrpError> {
        self.parse_b(srp_b).map(|_| ())
    }

    fn parse_b(&self, srp_b: &[u8]) -> Result<([u8; SRP_BYTES], U2048), SrpError> {
        let bytes = normalize_be(srp_b).map_err(|_| SrpError::BRange)?;
        let b = U2048::from_be_slice(&bytes);
        if bool::from(b.is_zero()) || b >= *self.group.modulus().0 {
            return Err(SrpError::BRange);
        }
        Ok((bytes, b))
    }

    /// The `inputCheckPasswordSRP` for `srp_B`/`srp_id` (from the same `account.password` as this KDF), drawing a
    /// 2048-bit a from `rng` (again, up to [`MAX_KEYGEN_ATTEMPTS`] times, while A falls outside the item 17 range or
    /// u = 0).
    pub fn prove<R: CryptoRng + ?Sized>(
        &self,
        hash: &PasswordHash,
        srp_b: &[u8],
        srp_id: i64,
        rng: &mut R,
    ) -> Result<CheckPasswordSrp, SrpError> {
        let mut session = self.start(hash, srp_b)?;
        let mut a = Zeroizing::new([0u8; SRP_BYTES]);
        for _ in 0..MAX_KEYGEN_ATTEMPTS {
            rng.fill_bytes(&mut *a);
            match self.finish(&mut session, &a, srp_id) {
                Err(SrpError::WeakSecret) => continue,
                other => return other,
            }
        }
        Err(SrpError::KeygenFailed)
    }

    /// [`CheckedKdf::prove`] with a caller-chosen a (256 big-endian bytes), to reproduce a recorded run or a known
    /// answer. An a whose A fails the range check, or that makes u = 0, is refused with
    /// [`SrpError::WeakSecret`]; a must never be reused across proofs.
    pub fn prove_with_secret(
        &self,
        hash: &PasswordHash,
        srp_b: &[u8],
        srp_id: i64,
        a: &[u8; SRP_BYTES],
    ) -> Result<CheckPasswordSrp, SrpError> {
        let mut session = self.start(hash, srp_b)?;
        self.finish(&mut session, a, srp_id)
    }

    /// Everything of a proof that does not depend on a: B checked, g^b = B − k·v checked, x kept for the exponent.
    fn start(&self, hash: &PasswordHash, srp_b: &[u8]) -> Result<ClientSession, SrpError> {
        let (b_bytes, b) = self.parse_b(srp_b)?;
        let params = self.params();
        let mut v = FixedMontyForm::new(&self.v_uint(hash), params);
        let mut kv = FixedMontyForm::new(&self.k, params).mul(&v);
        let mut gb_m = FixedMontyForm::new(&b, params).sub(&kv);
        let gb = gb_m.retrieve();
        v.zeroize();
        kv.zeroize();
        gb_m.zeroize();
        // The item 17 rule on the server's actual DH public value. It depends on v, but only through whether an
        // honest server's g^b lands within 2^-63 of either end, so its timing says nothing useful about v.
        if self.group.check_public_uint(&gb).is_err() {
            return Err(SrpError::GbRange);
        }
        Ok(ClientSession {
            b_bytes,
            gb,
            x: U256::from_be_slice(&hash.x),
        })
    }

    fn finish(
        &self,
        s: &mut ClientSession,
        a_bytes: &[u8; SRP_BYTES],
        srp_id: i64,
    ) -> Result<CheckPasswordSrp, SrpError> {
        let (p, params) = self.group.modulus();
        let mut a = U2048::from_be_slice(a_bytes);
        let big_a = self.group.pow_g(&a, DH_BITS);
        if self.group.check_public_uint(&big_a).is_err() {
            a.zeroize();
            return Err(SrpError::WeakSecret);
        }
        let a_pub = be_bytes(&big_a);
        let Some(u) = scrambler(&sha256(&[&a_pub, &s.b_bytes])) else {
            a.zeroize();
            return Err(SrpError::WeakSecret);
        };
        // S = (g^b)^(a + u·x) mod p. a + u·x has up to 2049 bits; g^b is not 0 mod p (range-checked), so the
        // exponent may be reduced mod p − 1 (Fermat) to stay a 2048-bit constant-time exponentiation.
        let mut ux: U512 = u.concatenating_mul(&s.x);
        let mut e: U4096 = a.resize::<{ U4096::LIMBS }>().wrapping_add(&ux.resize());
        let p_minus_1 = NonZero::new(p.wrapping_sub(&U2048::ONE)).into_option();
        let mut e_red = match p_minus_1 {
            Some(m) => e.rem(&m),
            None => U2048::ZERO,
        };
        let mut sm = FixedMontyForm::new(&s.gb, params).pow_amm(&e_red);
        let mut shared = sm.retrieve();
        let mut shared_bytes = Zeroizing::new(be_bytes(&shared));
        let k_session = Zeroizing::new(sha256(&[&*shared_bytes]));
        let m1 = sha256(&[&self.m1_prefix, &a_pub, &s.b_bytes, &*k_session]);
        a.zeroize();
        ux.zeroize();
        e.zeroize();
        e_red.zeroize();
        sm.zeroize();
        shared.zeroize();
        shared_bytes.zeroize();
        Ok(CheckPasswordSrp { srp_id, a: a_pub, m1 })
    }
}

/// The part of a client's proof that does not depend on a; x is secret.
struct ClientSession {
    b_bytes: [u8; SRP_BYTES],
    gb: U2048,
    x: U256,
}

impl Drop for ClientSession {
    fn drop(&mut self) {
        self.gb.zeroize();
        self.x.zeroize();
    }
}

/// x = PH2(password, salt1, salt2), the password-derived secret. Zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PasswordHash {
    x: [u8; 32],
}

impl core::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for PasswordHash {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "PasswordHash(..)")
    }
}

/// A password verifier v = g^x mod p, 256 big-endian bytes. Not a secret in the protocol's sense, but it allows an
/// offline dictionary attack on the password, so it is zeroized on drop and not printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Verifier {
    v: [u8; SRP_BYTES],
}

impl Verifier {
    /// A verifier from a client's `new_password_hash` (or the DC's storage), checked against `kdf`'s group:
    /// at most 256 significant bytes and 1 < v < p − 1 (v = 0 or 1 or p − 1 would make every B predictable).
    pub fn from_bytes(kdf: &CheckedKdf<'_>, bytes: &[u8]) -> Result<Self, SrpError> {
        let norm = Zeroizing::new(normalize_be(bytes).map_err(|_| SrpError::VerifierRange)?);
        let mut v = U2048::from_be_slice(&*norm);
        let p = kdf.group.modulus().0;
        let ok = v > U2048::ONE && v < p.wrapping_sub(&U2048::ONE);
        v.zeroize();
        if ok {
            Ok(Verifier { v: *norm })
        } else {
            Err(SrpError::VerifierRange)
        }
    }

    /// The 256 bytes, for `new_password_hash` or the DC's storage.
    pub fn as_bytes(&self) -> &[u8; SRP_BYTES] {
        &self.v
    }
}

impl core::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Verifier(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Verifier {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "Verifier(..)")
    }
}

/// The fields of `inputCheckPasswordSRP`: what the client sends. Public values (A and the proof M1).
#[derive(Clone, PartialEq, Eq)]
pub struct CheckPasswordSrp {
    /// `srp_id`, echoed from `account.password`.
    pub srp_id: i64,
    /// A = g^a mod p, 256 big-endian bytes.
    pub a: [u8; SRP_BYTES],
    /// M1 = H(H(p) xor H(g) | H(salt1) | H(salt2) | A | B | H(S)).
    pub m1: [u8; M1_BYTES],
}

impl core::fmt::Debug for CheckPasswordSrp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CheckPasswordSrp")
            .field("srp_id", &self.srp_id)
            .field("m1", &self.m1)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for CheckPasswordSrp {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "CheckPasswordSrp {{ srp_id: {}, m1: {} }}", self.srp_id, self.m1)
    }
}

/// The whole client side in one call: checks `kdf` (group and salts) and `srp_B` first, then hashes the password
/// (the 100,000-iteration PBKDF2) and proves it. For `auth.checkPassword` and every method that takes an
/// `InputCheckPasswordSRP`.
pub fn compute_check<R: CryptoRng + ?Sized, const N: usize>(
    password: &[u8],
    kdf: &PasswordKdf<'_>,
    srp_b: &[u8],
    srp_id: i64,
    primes: &mut PrimeCache<N>,
    rng: &mut R,
) -> Result<CheckPasswordSrp, SrpError> {
    let checked = kdf.check(primes, rng)?;
    checked.check_srp_b(srp_b)?;
    let hash = checked.hash_password(password);
    checked.prove(&hash, srp_b, srp_id, rng)
}

/// The salt1 of a password being set: the DC's `new_algo.salt1` followed by [`NEW_SALT1_RANDOM_BYTES`] from `rng`
/// (the spec; TDLib and Telethon do the same). Send it back in `new_algo`, and hash the new password with it.
pub fn new_salt1<R: CryptoRng + ?Sized>(server_salt1: &[u8], rng: &mut R) -> Result<Salt, SrpError> {
    let mut out = Salt::new();
    out.extend_from_slice(server_salt1).map_err(|_| SrpError::SaltTooLong)?;
    let mut random = Zeroizing::new([0u8; NEW_SALT1_RANDOM_BYTES]);
    rng.fill_bytes(&mut *random);
    out.extend_from_slice(&*random).map_err(|_| SrpError::SaltTooLong)?;
    Ok(out)
}

/// The DC's secrets of one SRP run: b and the verifier.
#[derive(Zeroize, ZeroizeOnDrop)]
struct ServerSecrets {
    b: U2048,
    v: U2048,
}

/// The DC side of one `account.getPassword` → `auth.checkPassword` exchange: it draws b and `srp_id`, offers
/// B = k·v + g^b, and checks a client's A and M1. The host draws a new one for each `account.getPassword` and
/// decides how many checks one may take (Telegram keeps an `srp_id` valid until the password changes; a DC
/// rate-limits wrong passwords per account).
pub struct SrpServer {
    group: DhGroup,
    m1_prefix: [u8; 96],
    secrets: ServerSecrets,
    srp_b: [u8; SRP_BYTES],
    srp_id: i64,
}

impl core::fmt::Debug for SrpServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrpServer")
            .field("srp_id", &self.srp_id)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SrpServer {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "SrpServer {{ srp_id: {} }}", self.srp_id)
    }
}

impl SrpServer {
    /// Draws b (2048 bits, again while g^b falls outside the item 17 range or B is 0) and `srp_id` from `rng`, for
    /// the password whose verifier is `verifier` under `kdf`.
    pub fn new<R: CryptoRng + ?Sized>(
        kdf: &CheckedKdf<'_>,
        verifier: &Verifier,
        rng: &mut R,
    ) -> Result<Self, SrpError> {
        let params = kdf.params();
        let mut v = U2048::from_be_slice(&verifier.v);
        let mut kv = FixedMontyForm::new(&kdf.k, params).mul(&FixedMontyForm::new(&v, params));
        let mut secret = Zeroizing::new([0u8; SRP_BYTES]);
        for _ in 0..MAX_KEYGEN_ATTEMPTS {
            rng.fill_bytes(&mut *secret);
            let mut b = U2048::from_be_slice(&*secret);
            let mut gb = kdf.group.pow_g(&b, DH_BITS);
            let mut gb_m = FixedMontyForm::new(&gb, params);
            let big_b = kv.add(&gb_m).retrieve();
            // g^b stays secret: with B it gives k·v, hence v and an offline dictionary attack on the password.
            let usable = kdf.group.check_public_uint(&gb).is_ok() && !bool::from(big_b.is_zero());
            gb.zeroize();
            gb_m.zeroize();
            if !usable {
                b.zeroize();
                continue;
            }
            kv.zeroize();
            let srp_id = i64::from_be_bytes(rng.next_u64().to_be_bytes());
            let server = SrpServer {
                group: kdf.group.clone(),
                m1_prefix: kdf.m1_prefix,
                secrets: ServerSecrets { b, v },
                srp_b: be_bytes(&big_b),
                srp_id,
            };
            v.zeroize();
            return Ok(server);
        }
        kv.zeroize();
        v.zeroize();
        Err(SrpError::KeygenFailed)
    }

    /// `srp_id` for `account.password`.
    pub fn srp_id(&self) -> i64 {
        self.srp_id
    }

    /// `srp_B` for `account.password`: 256 big-endian bytes.
    pub fn srp_b(&self) -> &[u8; SRP_BYTES] {
        &self.srp_b
    }

    /// Checks a client's `inputCheckPasswordSRP`: `srp_id` must be ours, A in [2^1984, p − 2^1984] (so never 0 mod
    /// p), u ≠ 0, and M1 equal, in constant time, to the proof computed from S = (A·v^u)^b.
    pub fn check(&self, srp_id: i64, a: &[u8], m1: &[u8]) -> Result<(), SrpError> {
        if srp_id != self.srp_id {
            return Err(SrpError::SrpIdMismatch);
        }
        let a_bytes = normalize_be(a).map_err(|_| SrpError::ARange)?;
        let big_a = U2048::from_be_slice(&a_bytes);
        if self.group.check_public_uint(&big_a).is_err() {
            return Err(SrpError::ARange);
        }
        let u = scrambler(&sha256(&[&a_bytes, &self.srp_b])).ok_or(SrpError::ScramblerZero)?;
        let params = self.group.modulus().1;
        // v^u: u is public, but v is secret, so a fixed 256-bit ladder; then (A·v^u)^b over all of b's bits.
        let mut vu = FixedMontyForm::new(&self.secrets.v, params).pow_bounded_exp(&u, 256);
        let mut base = FixedMontyForm::new(&big_a, params).mul(&vu);
        let mut sm = base.pow_amm(&self.secrets.b);
        let mut shared = sm.retrieve();
        let shared_bytes = Zeroizing::new(be_bytes(&shared));
        let k_session = Zeroizing::new(sha256(&[&*shared_bytes]));
        let expected = sha256(&[&self.m1_prefix, &a_bytes, &self.srp_b, &*k_session]);
        vu.zeroize();
        base.zeroize();
        sm.zeroize();
        shared.zeroize();
        // A wrong length compares unequal, still in constant time in the contents.
        if bool::from(expected.as_slice().ct_eq(m1)) {
            Ok(())
        } else {
            Err(SrpError::WrongPassword)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// SRP-6a's u ≠ 0 rule (the scrambler that binds the proof to x): a zero digest gives no u. Reaching it through
    /// the protocol would take a SHA-256 preimage of zero, so the rule is tested on its own step.
    #[test]
    fn srp_zero_scrambler_is_refused() {
        assert_eq!(scrambler(&[0; 32]), None);
        let mut one = [0; 32];
        one[31] = 1;
        assert_eq!(scrambler(&one), Some(U256::ONE));
    }
}
