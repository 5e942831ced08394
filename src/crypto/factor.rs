//! Factoring the handshake's `pq` (SECURITY.md item 13) and choosing one for the DC role.
//!
//! All arithmetic is u64 Montgomery multiplication: a `u64 × u64 → u128` product is one `UMULL`-class instruction
//! pair on Cortex-M, whereas `u128 %` calls `__umodti3` and is ~50× slower. Nothing here is secret (pq travels in
//! clear), so variable time is fine; what matters is a bounded budget so a hostile server cannot burn our CPU.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;

/// Largest accepted pq encoding, in bytes (item 13).
pub const MAX_PQ_BYTES: usize = 8;
/// Largest accepted pq value (item 13): Telegram's pq is "normally ≤ 2^63−1", and the Montgomery code relies on it.
pub const MAX_PQ: u64 = (1 << 63) - 1;
/// Default number of Pollard–Brent steps (per walk) before giving up. Two 31-bit factors need about 2^15 steps on
/// average; the budget leaves a wide margin while bounding the work a hostile pq can cause.
pub const DEFAULT_FACTOR_BUDGET: u32 = 1 << 20;

/// Why a pq was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FactorError {
    /// The encoding is longer than [`MAX_PQ_BYTES`] (after stripping leading zeros).
    TooLong,
    /// The value exceeds [`MAX_PQ`].
    TooLarge,
    /// pq is 0, 1, a prime, a square or has more than two prime factors: not a product of two distinct primes.
    NotSemiprime,
    /// No factor was found within the iteration budget.
    BudgetExhausted,
}

impl core::fmt::Display for FactorError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FactorError::TooLong => "pq is longer than 8 bytes",
            FactorError::TooLarge => "pq exceeds 2^63-1",
            FactorError::NotSemiprime => "pq is not a product of two distinct primes",
            FactorError::BudgetExhausted => "pq factoring budget exhausted",
        })
    }
}

impl core::error::Error for FactorError {}

/// Montgomery arithmetic modulo an odd `n < 2^63` with R = 2^64.
#[derive(Clone, Copy)]
struct Monty {
    n: u64,
    /// -n^-1 mod 2^64.
    n_neg_inv: u64,
    /// R mod n, i.e. 1 in Montgomery form.
    one: u64,
    /// R^2 mod n, to enter Montgomery form.
    r2: u64,
}

impl Monty {
    /// `n` must be odd and below 2^63 (callers guarantee it).
    fn new(n: u64) -> Self {
        // Newton iteration for n^-1 mod 2^64: each step doubles the number of correct low bits (3 → 96).
        let mut inv = n;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n.wrapping_mul(inv)));
        }
        // R mod n and R^2 mod n by doubling; division-free, 128 cheap steps, run once per n.
        let mut one = 1u64;
        for _ in 0..64 {
            one = add_mod(one, one, n);
        }
        let mut r2 = one;
        for _ in 0..64 {
            r2 = add_mod(r2, r2, n);
        }
        Monty {
            n,
            n_neg_inv: inv.wrapping_neg(),
            one,
            r2,
        }
    }

    /// a·b·R^-1 mod n for a, b < n. With n < 2^63 the 128-bit sum below cannot overflow.
    #[inline(always)]
    fn mul(&self, a: u64, b: u64) -> u64 {
        let t = u128::from(a) * u128::from(b);
        let m = (t as u64).wrapping_mul(self.n_neg_inv);
        let u = ((t + u128::from(m) * u128::from(self.n)) >> 64) as u64;
        if u >= self.n { u - self.n } else { u }
    }

    fn enter(&self, a: u64) -> u64 {
        self.mul(a, self.r2)
    }

    fn pow(&self, base_m: u64, mut e: u64) -> u64 {
        let mut acc = self.one;
        let mut b = base_m;
        while e != 0 {
            if e & 1 == 1 {
                acc = self.mul(acc, b);
            }
            b = self.mul(b, b);
            e >>= 1;
        }
        acc
    }
}

/// (a + b) mod n for a, b < n < 2^63.
#[inline(always)]
fn add_mod(a: u64, b: u64, n: u64) -> u64 {
    let s = a + b;
    if s >= n { s - n } else { s }
}

/// (a − b) mod n for a, b < n.
#[inline(always)]
fn sub_mod(a: u64, b: u64, n: u64) -> u64 {
    if a >= b { a - b } else { a + (n - b) }
}

/// Binary gcd: no division.
fn gcd(mut a: u64, mut b: u64) -> u64 {
    if a == 0 {
        return b;
    }
    if b == 0 {
        return a;
    }
    let shift = (a | b).trailing_zeros();
    a >>= a.trailing_zeros();
    loop {
        b >>= b.trailing_zeros();
        if a > b {
            core::mem::swap(&mut a, &mut b);
        }
        b -= a;
        if b == 0 {
            return a << shift;
        }
    }
}

/// Deterministic Miller–Rabin for every `n < 2^63`, with Sinclair's seven bases (exact for all 64-bit n).
pub fn is_prime_u64(n: u64) -> bool {
    const SMALL: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    const BASES: [u64; 7] = [2, 325, 9375, 28178, 450_775, 9_780_504, 1_795_265_022];
    if n < 2 {
        return false;
    }
    for p in SMALL {
        if n == p {
            return true;
        }
        if n.is_multiple_of(p) {
            return false;
        }
    }
    if n > MAX_PQ {
        // Beyond the Montgomery code's range; nothing in this module asks about such numbers.
        return false;
    }
    let m = Monty::new(n);
    let s = (n - 1).trailing_zeros();
    let d = (n - 1) >> s;
    let minus_one = sub_mod(0, m.one, n);
    'bases: for a in BASES {
        let a = a % n;
        if a == 0 {
            continue;
        }
        let mut x = m.pow(m.enter(a), d);
        if x == m.one || x == minus_one {
            continue;
        }
        for _ in 1..s {
            x = m.mul(x, x);
            if x == minus_one {
                continue 'bases;
            }
        }
        return false;
    }
    true
}

/// Integer square root by bisection (no division): the largest r with r² ≤ n.
fn isqrt(n: u64) -> u64 {
    let (mut lo, mut hi) = (0u64, 1u64 << 32);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if u128::from(mid) * u128::from(mid) <= u128::from(n) {
            lo = mid
        } else {
            hi = mid
        }
    }
    lo
}

/// Independent rho walks advanced in lock-step. One walk is a chain of dependent multiplications, bound by
/// multiplier latency; several interleaved walks keep the multiplier busy, and the first of them to collide wins, so
/// the expected number of steps per walk also drops.
const WALKS: usize = 4;

/// Finds a non-trivial factor of an odd composite `n` with Brent's variant of Pollard's rho, batching 128 steps per
/// gcd and running [`WALKS`] walks (different constants) side by side. `budget` counts steps of one walk across all
/// restarts.
fn pollard_brent(n: u64, budget: u32) -> Result<u64, FactorError> {
    const BATCH: u32 = 128;
    let m = Monty::new(n);
    let mut spent: u32 = 0;
    let f = |x: u64, c: u64| add_mod(m.mul(x, x), c, n);
    // Deterministic restarts with fresh constants: the result must not depend on an RNG.
    for round in 0u64..8 {
        let c: [u64; WALKS] = core::array::from_fn(|i| m.enter(round * WALKS as u64 + i as u64 + 1));
        let mut y = [m.enter(2); WALKS];
        let mut q = [m.one; WALKS];
        let mut r: u32 = 1;
        'walk: loop {
            let x = y;
            for _ in 0..r {
                for (yi, &ci) in y.iter_mut().zip(c.iter()) {
                    *yi = f(*yi, ci);
                }
            }
            spent = spent.saturating_add(r);
            let mut k = 0;
            while k < r {
                let ys = y;
                let steps = BATCH.min(r - k);
                for _ in 0..steps {
                    for ((yi, qi), (&xi, &ci)) in y.iter_mut().zip(q.iter_mut()).zip(x.iter().zip(c.iter())) {
                        *yi = f(*yi, ci);
                        *qi = m.mul(*qi, sub_mod(xi, *yi, n));
                    }
                }
                spent = spent.saturating_add(steps);
                k += steps;
                for (((&qi, &ysi), &xi), &ci) in q.iter().zip(ys.iter()).zip(x.iter()).zip(c.iter()) {
                    let g = gcd(qi, n);
                    if g == 1 {
                        continue;
                    }
                    if g != n {
                        return Ok(g);
                    }
                    // The batch overshot: replay this walk one step at a time from the saved point.
                    let mut z = ysi;
                    for _ in 0..steps {
                        z = f(z, ci);
                        let g2 = gcd(sub_mod(xi, z, n), n);
                        if g2 != 1 && g2 != n {
                            return Ok(g2);
                        }
                    }
                    // This walk cycled without splitting n: restart every walk with new constants.
                    break 'walk;
                }
                if spent > budget {
                    return Err(FactorError::BudgetExhausted);
                }
            }
            if spent > budget {
                return Err(FactorError::BudgetExhausted);
            }
            r = r.saturating_mul(2);
        }
    }
    Err(FactorError::BudgetExhausted)
}

/// Splits `pq` into primes `(p, q)` with `p < q`, `p·q = pq`, within `budget` iterations.
pub fn factor_pq_with_budget(pq: u64, budget: u32) -> Result<(u64, u64), FactorError> {
    if pq > MAX_PQ {
        return Err(FactorError::TooLarge);
    }
    // 6 = 2·3 is the smallest product of two distinct primes.
    if pq < 6 || is_prime_u64(pq) {
        return Err(FactorError::NotSemiprime);
    }
    let r = isqrt(pq);
    if r.wrapping_mul(r) == pq {
        return Err(FactorError::NotSemiprime);
    }
    let d = if pq & 1 == 0 { 2 } else { pollard_brent(pq, budget)? };
    let other = pq / d;
    let (p, q) = if d < other { (d, other) } else { (other, d) };
    if p == q || p.checked_mul(q) != Some(pq) || !is_prime_u64(p) || !is_prime_u64(q) {
        return Err(FactorError::NotSemiprime);
    }
    Ok((p, q))
}

/// Splits `pq` with the [`DEFAULT_FACTOR_BUDGET`].
pub fn factor_pq(pq: u64) -> Result<(u64, u64), FactorError> {
    factor_pq_with_budget(pq, DEFAULT_FACTOR_BUDGET)
}

/// Parses the big-endian `pq` bytes of `resPQ` (leading zeros tolerated, at most [`MAX_PQ_BYTES`] significant bytes)
/// and factors them.
pub fn factor_pq_bytes(pq: &[u8]) -> Result<(u64, u64), FactorError> {
    let first = pq.iter().position(|&b| b != 0).unwrap_or(pq.len());
    let digits = pq.get(first..).unwrap_or_default();
    if digits.len() > MAX_PQ_BYTES {
        return Err(FactorError::TooLong);
    }
    let v = digits.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    factor_pq(v)
}

/// Big-endian bytes of a u32 without leading zeros, as TL `bytes` carry p and q.
pub fn u32_be_trimmed(v: u32) -> ([u8; 4], usize) {
    let bytes = v.to_be_bytes();
    let skip = (v.leading_zeros() / 8) as usize;
    let mut out = [0u8; 4];
    let len = 4 - skip;
    if let (Some(dst), Some(src)) = (out.get_mut(..len), bytes.get(skip..)) {
        dst.copy_from_slice(src);
    }
    (out, len)
}

/// A random 31-bit prime (2^30 < p < 2^31), so that two of them always multiply below 2^62 < 2^63.
fn random_prime_u32<R: CryptoRng + ?Sized>(rng: &mut R) -> u32 {
    loop {
        // Bit 30 set, bit 31 clear: 2^30 < p < 2^31, so p·q < 2^62 always fits below 2^63.
        let cand = (rng.next_u32() & 0x7fff_ffff) | 0x4000_0001;
        if is_prime_u64(u64::from(cand)) {
            return cand;
        }
    }
}

/// A fresh pq for the DC role: two distinct random 31-bit primes `p < q` (each fits in 4 bytes, as clients expect)
/// and their product `pq < 2^62`. Returns `(pq, p, q)`.
pub fn random_pq<R: CryptoRng + ?Sized>(rng: &mut R) -> (u64, u32, u32) {
    let a = random_prime_u32(rng);
    let mut b = random_prime_u32(rng);
    while b == a {
        b = random_prime_u32(rng);
    }
    let (p, q) = if a < b { (a, b) } else { (b, a) };
    (u64::from(p) * u64::from(q), p, q)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn montgomery_matches_u128() {
        for n in [3u64, 97, 0x130B7475669FEB8B, MAX_PQ, MAX_PQ - 2, 1_000_000_007] {
            let m = Monty::new(n);
            for (a, b) in [(1u64, 1u64), (n - 1, n - 1), (12345 % n, 67890 % n), (n / 2, n / 3)] {
                let got = m.mul(m.mul(m.enter(a), m.enter(b)), 1);
                let want = (u128::from(a) * u128::from(b) % u128::from(n)) as u64;
                assert_eq!(got, want, "n={n} a={a} b={b}");
            }
        }
    }

    #[test]
    fn primality_and_gcd_and_isqrt() {
        let primes = [
            2u64,
            3,
            5,
            1_141_464_581,
            1_202_243_663,
            2_147_483_647,
            9_223_372_036_854_775_783,
        ];
        for p in primes {
            assert!(is_prime_u64(p), "{p}");
        }
        // 3215031751 is a strong pseudoprime to bases 2, 3, 5, 7; 2^63 - 1 is composite.
        for c in [0u64, 1, 4, 561, 3_215_031_751, MAX_PQ, 1_141_464_581 * 3] {
            assert!(!is_prime_u64(c), "{c}");
        }
        assert_eq!(gcd(48, 18), 6);
        assert_eq!(gcd(0, 7), 7);
        assert_eq!(isqrt(MAX_PQ), 3_037_000_499);
        assert_eq!(isqrt(16), 4);
        assert_eq!(isqrt(15), 3);
    }

    #[test]
    fn even_pq_and_trim() {
        assert_eq!(factor_pq(2 * 1_000_000_007), Ok((2, 1_000_000_007)));
        assert_eq!(factor_pq(6), Ok((2, 3)));
        assert_eq!(u32_be_trimmed(0x44095E05), ([0x44, 0x09, 0x5E, 0x05], 4));
        assert_eq!(u32_be_trimmed(0x0000_0105), ([1, 5, 0, 0], 2));
        assert_eq!(factor_pq_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 6]), Ok((2, 3)));
    }
}
