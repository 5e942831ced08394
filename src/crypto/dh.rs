//! Diffie–Hellman for the auth-key handshake and secret chats: group checks (docs/CHECKLIST.md item 16), public-value
//! checks (items 17, 60), bignum size limits (item 56), key generation and the shared secret.
//!
//! Secret exponents only ever meet constant-time `crypto-bigint` exponentiation (item 75). Group and public-value
//! checks act on public data and may take variable time.
//!
//! **Exponent size (design choice).** By default the secret exponent is a full random 2048-bit number, as the spec
//! asks, and `pow` walks all 2048 bits (≈ 5 ms on a host, ≈ 190 M instructions on a Cortex-M4). A peer cannot tell
//! the difference if the exponent is shorter, so [`DhGroup::with_exponent_bits`] lets a host bound it (e.g. 256
//! bits, ≈ 8× faster, still far beyond the ~2^112 security of a 2048-bit group). The bound is public; exponentiation
//! remains constant time for exponents below it.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::num::NonZeroU32;

use crypto_bigint::{
    CtAssign, Limb, NonZero, Odd, RandomBits, RandomMod, U2048, Uint,
    modular::{FixedMontyForm, FixedMontyParams},
};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Size of a DH modulus and of every value in its group, in bytes.
pub const DH_BYTES: usize = 256;
/// Bits of the DH modulus.
pub const DH_BITS: u32 = 2048;
/// Distance from 0 and from p that public values must keep: 2^1984 (item 17).
pub const PUBLIC_VALUE_MARGIN_BITS: u32 = 1984;
/// Default Miller–Rabin rounds for an unknown prime (item 16 asks for at least 15).
pub const DEFAULT_MR_ROUNDS: u32 = 30;
/// The fewest Miller–Rabin rounds a [`PrimeCache`] accepts.
pub const MIN_MR_ROUNDS: u32 = 15;
/// Attempts at drawing a secret exponent whose public value passes item 17 before giving up (each failure has
/// probability about 2^-63, so reaching this bound means a broken RNG).
pub const MAX_KEYGEN_ATTEMPTS: u32 = 16;
/// The smallest exponent bound [`DhGroup::with_exponent_bits`] accepts.
pub const MIN_EXPONENT_BITS: u32 = 256;

/// Telegram's current 2048-bit safe prime (`C7 1C AE B9 …`), from `tests/data/dh_prime.json`.
pub const TELEGRAM_DH_PRIME: U2048 = U2048::from_be_hex(concat!(
    "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925",
    "139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc",
    "49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d",
    "5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850c",
    "e929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b"
));

/// 2048-bit primes known to be safe (p and (p−1)/2 prime), accepted without a primality test.
pub const KNOWN_SAFE_PRIMES: &[U2048] = &[TELEGRAM_DH_PRIME];

/// Why a group, a public value or a DH computation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DhError {
    /// More than [`DH_BYTES`] significant bytes (item 56): refused before any arithmetic.
    TooLong,
    /// The prime is not exactly 2048 bits.
    PrimeSize,
    /// g is outside 2..=7.
    Generator,
    /// p does not satisfy the quadratic-residue rule for this g.
    GeneratorResidue,
    /// p or (p−1)/2 is not prime.
    NotSafePrime,
    /// A public value is outside [2^1984, p − 2^1984].
    PublicValueRange,
    /// The RNG kept producing exponents whose public value is out of range.
    KeygenFailed,
}

impl core::fmt::Display for DhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DhError::TooLong => "DH value longer than 256 bytes",
            DhError::PrimeSize => "DH prime is not 2048 bits",
            DhError::Generator => "DH generator outside 2..=7",
            DhError::GeneratorResidue => "DH prime fails the residue rule for g",
            DhError::NotSafePrime => "DH prime is not a safe prime",
            DhError::PublicValueRange => "DH public value out of range",
            DhError::KeygenFailed => "DH key generation failed",
        })
    }
}

impl core::error::Error for DhError {}

/// Strips leading zero bytes and left-pads into 256 bytes; refuses anything longer (item 56).
pub fn normalize_be(value: &[u8]) -> Result<[u8; DH_BYTES], DhError> {
    let first = value.iter().position(|&b| b != 0).unwrap_or(value.len());
    let digits = value.get(first..).unwrap_or_default();
    if digits.len() > DH_BYTES {
        return Err(DhError::TooLong);
    }
    let mut out = [0u8; DH_BYTES];
    if let Some(dst) = out.get_mut(DH_BYTES - digits.len()..) {
        dst.copy_from_slice(digits);
    }
    Ok(out)
}

fn small_rem<const L: usize>(x: &Uint<L>, m: NonZeroU32) -> u32 {
    // The remainder is below m < 2^32, so the narrowing is exact.
    x.rem_limb(NonZero::<Limb>::from(m)).0 as u32
}

const fn nz(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(v) => v,
        None => NonZeroU32::MIN,
    }
}

/// Odd primes below 512 for trial division before Miller–Rabin.
const SMALL_PRIMES: [u16; 96] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109,
    113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233, 239,
    241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307, 311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379,
    383, 389, 397, 401, 409, 419, 421, 431, 433, 439, 443, 449, 457, 461, 463, 467, 479, 487, 491, 499, 503, 509,
];

/// True if `n` has a prime factor below 512 other than itself.
pub(crate) fn has_small_factor<const L: usize>(n: &Uint<L>) -> bool {
    if !n.is_odd().to_bool() {
        return *n != Uint::from_u32(2);
    }
    SMALL_PRIMES
        .iter()
        .any(|&p| small_rem(n, nz(u32::from(p))) == 0 && *n != Uint::from_u32(u32::from(p)))
}

/// Miller–Rabin with `rounds` random bases in [2, n−2], after trial division. Variable time: only for public
/// numbers (DH primes) and key generation, where the candidate's timing reveals nothing about the final key beyond
/// "this candidate was rejected".
pub(crate) fn is_probable_prime<const L: usize, R: CryptoRng + ?Sized>(n: &Uint<L>, rounds: u32, rng: &mut R) -> bool {
    if *n < Uint::from_u32(2) {
        return false;
    }
    if *n < Uint::from_u32(512) {
        return *n == Uint::from_u32(2) || SMALL_PRIMES.iter().any(|&p| *n == Uint::from_u32(u32::from(p)));
    }
    if has_small_factor(n) {
        return false;
    }
    let Some(odd) = Odd::new(*n).into_option() else {
        return false;
    };
    let params = FixedMontyParams::new_vartime(odd);
    let n_minus_1 = n.wrapping_sub(&Uint::ONE);
    let s = n_minus_1.trailing_zeros_vartime();
    let d = n_minus_1.shr_vartime(s);
    let one = FixedMontyForm::one(&params);
    let minus_one = one.neg();
    let Some(span) = NonZero::new(n.wrapping_sub(&Uint::from_u32(3))).into_option() else {
        return false;
    };
    'rounds: for _ in 0..rounds {
        let a = Uint::random_mod_vartime(rng, &span).wrapping_add(&Uint::from_u32(2));
        let mut x = FixedMontyForm::new(&a, &params).pow_vartime(&d);
        if x == one || x == minus_one {
            continue;
        }
        for _ in 1..s {
            x = x.square();
            if x == minus_one {
                continue 'rounds;
            }
        }
        return false;
    }
    true
}

/// A small, bounded, caller-owned cache of primality verdicts for unknown DH primes (good and bad), keyed by the
/// SHA-256 of the prime, so a server cannot make us redo ~60 modular exponentiations per handshake.
#[derive(Clone, Debug)]
pub struct PrimeCache<const N: usize = 4> {
    entries: [Option<([u8; 32], bool)>; N],
    next: usize,
    rounds: u32,
}

#[cfg(feature = "defmt")]
impl<const N: usize> defmt::Format for PrimeCache<N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "PrimeCache {{ entries: {}, rounds: {} }}", self.len(), self.rounds)
    }
}

impl<const N: usize> Default for PrimeCache<N> {
    fn default() -> Self {
        Self::new(DEFAULT_MR_ROUNDS)
    }
}

impl<const N: usize> PrimeCache<N> {
    /// An empty cache that tests unknown primes with `rounds` Miller–Rabin rounds (raised to [`MIN_MR_ROUNDS`]).
    pub const fn new(rounds: u32) -> Self {
        PrimeCache {
            entries: [None; N],
            next: 0,
            rounds: if rounds < MIN_MR_ROUNDS { MIN_MR_ROUNDS } else { rounds },
        }
    }

    /// Miller–Rabin rounds used for unknown primes.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Number of cached verdicts.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    /// True if nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup(&self, key: &[u8; 32]) -> Option<bool> {
        self.entries.iter().flatten().find(|(k, _)| k == key).map(|&(_, v)| v)
    }

    fn insert(&mut self, key: [u8; 32], verdict: bool) {
        if N == 0 {
            return;
        }
        if let Some(slot) = self.entries.get_mut(self.next % N) {
            *slot = Some((key, verdict));
        }
        self.next = (self.next + 1) % N;
    }
}

/// A checked DH group: a 2048-bit safe prime p and a generator g satisfying item 16.
#[derive(Clone)]
pub struct DhGroup {
    p: U2048,
    g: u32,
    params: FixedMontyParams<{ U2048::LIMBS }>,
    low: U2048,
    high: U2048,
    exponent_bits: u32,
}

impl core::fmt::Debug for DhGroup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DhGroup")
            .field("g", &self.g)
            .field("exponent_bits", &self.exponent_bits)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DhGroup {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DhGroup {{ g: {}, exponent_bits: {} }}", self.g, self.exponent_bits)
    }
}

/// The quadratic-residue rule of item 16: g must generate the subgroup of order (p−1)/2.
fn residue_ok(p: &U2048, g: u32) -> Result<(), DhError> {
    let ok = match g {
        2 => small_rem(p, nz(8)) == 7,
        3 => small_rem(p, nz(3)) == 2,
        4 => true,
        5 => matches!(small_rem(p, nz(5)), 1 | 4),
        6 => matches!(small_rem(p, nz(24)), 19 | 23),
        7 => matches!(small_rem(p, nz(7)), 3 | 5 | 6),
        _ => return Err(DhError::Generator),
    };
    if ok { Ok(()) } else { Err(DhError::GeneratorResidue) }
}

/// Checks a (p, g) pair from `server_DH_inner_data` or `messages.dhConfig` (items 16, 56). Known primes are accepted
/// at once; others need p and (p−1)/2 to pass the cache's Miller–Rabin rounds with bases from `rng`, and the verdict
/// is cached either way.
pub fn check_group<R: CryptoRng + ?Sized, const N: usize>(
    p: &[u8],
    g: u32,
    cache: &mut PrimeCache<N>,
    rng: &mut R,
) -> Result<DhGroup, DhError> {
    let bytes = normalize_be(p)?;
    let p = U2048::from_be_slice(&bytes);
    if p.bit_width_vartime() != DH_BITS {
        return Err(DhError::PrimeSize);
    }
    if !(2..=7).contains(&g) {
        return Err(DhError::Generator);
    }
    residue_ok(&p, g)?;
    if !KNOWN_SAFE_PRIMES.contains(&p) {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        let verdict = match cache.lookup(&key) {
            Some(v) => v,
            None => {
                let half = p.shr_vartime(1);
                // (p−1)/2 first: for a random prime it is the likelier to fail, and trial division catches most.
                let v = is_probable_prime(&half, cache.rounds, rng) && is_probable_prime(&p, cache.rounds, rng);
                cache.insert(key, v);
                v
            }
        };
        if !verdict {
            return Err(DhError::NotSafePrime);
        }
    }
    DhGroup::from_checked(p, g)
}

impl DhGroup {
    fn from_checked(p: U2048, g: u32) -> Result<Self, DhError> {
        let odd = Odd::new(p).into_option().ok_or(DhError::NotSafePrime)?;
        let margin = U2048::ONE.shl_vartime(PUBLIC_VALUE_MARGIN_BITS);
        Ok(DhGroup {
            p,
            g,
            params: FixedMontyParams::new_vartime(odd),
            low: margin,
            high: p.wrapping_sub(&margin),
            exponent_bits: DH_BITS,
        })
    }

    /// Telegram's group with generator `g` (the prime is known-good, so only the residue rule is checked).
    pub fn telegram(g: u32) -> Result<Self, DhError> {
        residue_ok(&TELEGRAM_DH_PRIME, g)?;
        Self::from_checked(TELEGRAM_DH_PRIME, g)
    }

    /// Bounds secret exponents to `bits` (clamped to [`MIN_EXPONENT_BITS`]..=2048). See the module docs: a public,
    /// deliberate speed/security trade-off; the default is the full 2048 bits.
    pub fn with_exponent_bits(mut self, bits: u32) -> Self {
        self.exponent_bits = bits.clamp(MIN_EXPONENT_BITS, DH_BITS);
        self
    }

    /// The generator.
    pub fn g(&self) -> u32 {
        self.g
    }

    /// The prime as 256 big-endian bytes.
    pub fn prime_bytes(&self) -> [u8; DH_BYTES] {
        be_bytes(&self.p)
    }

    /// Secret exponent size in bits.
    pub fn exponent_bits(&self) -> u32 {
        self.exponent_bits
    }

    /// Checks a peer's (or our own) public value: 2^1984 ≤ v ≤ p − 2^1984, which implies 1 < v < p − 1 (items 17,
    /// 60, 56).
    pub fn check_public(&self, value: &[u8]) -> Result<(), DhError> {
        let v = U2048::from_be_slice(&normalize_be(value)?);
        self.check_public_uint(&v)
    }

    /// The prime as a number and its Montgomery parameters, for SRP's arithmetic in the same checked group.
    pub(crate) fn modulus(&self) -> (&U2048, &FixedMontyParams<{ U2048::LIMBS }>) {
        (&self.p, &self.params)
    }

    pub(crate) fn check_public_uint(&self, v: &U2048) -> Result<(), DhError> {
        if *v < self.low || *v > self.high {
            Err(DhError::PublicValueRange)
        } else {
            Ok(())
        }
    }

    fn pow(&self, base: &U2048, secret: &DhSecret) -> U2048 {
        let b = FixedMontyForm::new(base, &self.params);
        // AMM exponentiation: constant time like `pow`, ~13% fewer instructions on a Cortex-M4 and a smaller window
        // table on the stack (measured in examples/firmware).
        let mut r = if secret.bits >= DH_BITS {
            b.pow_amm(&secret.x)
        } else {
            b.pow_amm_bounded_exp(&secret.x, secret.bits)
        };
        let out = r.retrieve();
        // For `shared` this is the secret in Montgomery form.
        r.zeroize();
        out
    }

    /// g^x for the group's small public generator (2..=7), constant time in x: a left-to-right ladder of `bits`
    /// squarings, each followed by a multiplication by g done with Montgomery doublings and additions (g is public and
    /// tiny, so that sequence is fixed) and a constant-time assignment on the exponent bit. It does the same work for
    /// every x, needs no window table, and replaces the full multiplications of a generic `pow`: about 20 M fewer
    /// instructions per g^x on a Cortex-M4 (examples/firmware).
    pub(crate) fn pow_g(&self, x: &U2048, bits: u32) -> U2048 {
        let mut acc = FixedMontyForm::one(&self.params);
        for i in (0..bits.min(DH_BITS)).rev() {
            acc = acc.square();
            let mut t = acc;
            // t = acc * g by binary expansion of the public g: doubling for each lower bit, adding acc where set.
            for k in (0..(31 - self.g.leading_zeros())).rev() {
                t = t.double();
                if (self.g >> k) & 1 == 1 {
                    t = t.add(&acc);
                }
            }
            acc.ct_assign(&t, x.bit(i));
            t.zeroize();
        }
        let out = acc.retrieve();
        acc.zeroize();
        out
    }

    /// g^x for a caller-drawn exponent given as 256 big-endian bytes (all 2048 bits used), left-padded to 256 bytes.
    /// For a handshake that must draw its exponent itself (a recorded transcript fixes the draw order); constant time
    /// in x.
    pub fn pow_g_be(&self, x: &[u8; DH_BYTES]) -> [u8; DH_BYTES] {
        let mut e = U2048::from_be_slice(x);
        let mut r = self.pow_g(&e, DH_BITS);
        e.zeroize();
        let out = be_bytes(&r);
        r.zeroize();
        out
    }

    /// Draws a secret exponent and returns it with g^x (256 big-endian bytes). Our own public value is checked like
    /// a peer's, and x is redrawn if it falls outside (item 17).
    pub fn gen_keypair<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<(DhSecret, [u8; DH_BYTES]), DhError> {
        for _ in 0..MAX_KEYGEN_ATTEMPTS {
            let secret = DhSecret {
                x: U2048::random_bits(rng, self.exponent_bits),
                bits: self.exponent_bits,
            };
            let public = self.pow_g(&secret.x, secret.bits);
            if self.check_public_uint(&public).is_ok() {
                return Ok((secret, be_bytes(&public)));
            }
        }
        Err(DhError::KeygenFailed)
    }

    /// The shared secret peer^x mod p, left-padded to 256 bytes. The peer's value is checked first (item 17).
    pub fn shared(&self, secret: &DhSecret, peer_public: &[u8]) -> Result<Zeroizing<[u8; DH_BYTES]>, DhError> {
        let peer = U2048::from_be_slice(&normalize_be(peer_public)?);
        self.check_public_uint(&peer)?;
        let mut s = self.pow(&peer, secret);
        let out = Zeroizing::new(be_bytes(&s));
        s.zeroize();
        Ok(out)
    }
}

/// Checks a public value against a group: see [`DhGroup::check_public`].
pub fn check_public(value: &[u8], group: &DhGroup) -> Result<(), DhError> {
    group.check_public(value)
}

/// A secret DH exponent; zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DhSecret {
    x: U2048,
    bits: u32,
}

impl DhSecret {
    /// A secret from caller-chosen big-endian bytes (at most 256 significant), e.g. to reproduce a recorded
    /// handshake. The exponent bound is the slice length in bits (so a 256-byte slice gets the full 2048-bit
    /// ladder), which depends only on the caller's framing, never on the secret's value.
    pub fn from_be_bytes(bytes: &[u8]) -> Result<Self, DhError> {
        let mut buf = normalize_be(bytes)?;
        let x = U2048::from_be_slice(&buf);
        buf.zeroize();
        let bits = u32::try_from(bytes.len().saturating_mul(8))
            .unwrap_or(DH_BITS)
            .clamp(1, DH_BITS);
        Ok(DhSecret { x, bits })
    }
}

impl core::fmt::Debug for DhSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DhSecret(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for DhSecret {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "DhSecret(..)")
    }
}

/// 256 big-endian bytes of a U2048.
pub(crate) fn be_bytes(v: &U2048) -> [u8; DH_BYTES] {
    let enc = v.to_be_bytes();
    let mut out = [0u8; DH_BYTES];
    for (o, b) in out.iter_mut().zip(enc.as_ref().iter()) {
        *o = *b;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The generator ladder agrees with crypto-bigint's generic `pow` for every g the checks allow, for full and
    /// bounded exponents, including the edge exponents 0, 1 and all-ones.
    #[test]
    fn pow_g_ladder_matches_generic_pow() {
        let mut rng = rand::rng();
        for g in 2..=7u32 {
            let group = DhGroup {
                g,
                ..DhGroup::telegram(3).unwrap()
            };
            let base = FixedMontyForm::new(&U2048::from_u32(g), &group.params);
            let mut xs = [U2048::ZERO, U2048::ONE, U2048::MAX].to_vec();
            xs.extend((0..3).map(|_| U2048::random_bits(&mut rng, DH_BITS)));
            for x in xs {
                assert_eq!(group.pow_g(&x, DH_BITS), base.pow(&x).retrieve(), "g={g}");
                let bounded = x.bitand(&U2048::ONE.shl_vartime(256).wrapping_sub(&U2048::ONE));
                assert_eq!(
                    group.pow_g(&bounded, 256),
                    base.pow(&bounded).retrieve(),
                    "g={g} bounded"
                );
            }
            let be = be_bytes(&U2048::from_u32(12345));
            assert_eq!(
                group.pow_g_be(&be),
                be_bytes(&base.pow(&U2048::from_u32(12345)).retrieve())
            );
        }
    }

    #[test]
    fn small_primality() {
        let mut rng = rand::rng();
        for p in [2u32, 3, 509, 521, 65537, 2_147_483_647] {
            assert!(is_probable_prime(&U2048::from_u32(p), 20, &mut rng), "{p}");
        }
        for c in [0u32, 1, 4, 511, 561, 65535, 2_147_483_649] {
            assert!(!is_probable_prime(&U2048::from_u32(c), 20, &mut rng), "{c}");
        }
    }

    #[test]
    fn telegram_prime_is_safe_and_cache_works() {
        let mut rng = rand::rng();
        assert!(is_probable_prime(&TELEGRAM_DH_PRIME, 15, &mut rng));
        assert!(is_probable_prime(&TELEGRAM_DH_PRIME.shr_vartime(1), 15, &mut rng));
        let mut cache = PrimeCache::<2>::new(1);
        assert_eq!(cache.rounds(), MIN_MR_ROUNDS);
        cache.insert([1; 32], true);
        cache.insert([2; 32], false);
        cache.insert([3; 32], true);
        assert_eq!(cache.lookup(&[1; 32]), None);
        assert_eq!(cache.lookup(&[2; 32]), Some(false));
        assert_eq!(cache.lookup(&[3; 32]), Some(true));
        assert_eq!(cache.len(), 2);
    }
}
