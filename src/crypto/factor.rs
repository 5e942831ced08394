//! Factoring the handshake's `pq` (docs/CHECKLIST.md item 13) and choosing one for the DC role.
//!
//! pq is split by the elliptic-curve method (ECM), which needs about 25 000 modular multiplications on average for
//! two 31-bit primes where Pollard–Brent needs about 160 000; Pollard–Brent stays as the exact fallback.
//! All arithmetic is u64 Montgomery multiplication: a `u64 × u64 → u128` product is one `UMULL`-class instruction
//! pair on Cortex-M, whereas `u128 %` calls `__umodti3` and is ~50× slower. Nothing here is secret (pq travels in
//! clear), so variable time is fine; what matters is a bounded budget so a hostile server cannot burn our CPU.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;

/// Largest accepted pq encoding, in bytes (item 13).
pub const MAX_PQ_BYTES: usize = 8;
/// Largest accepted pq value (item 13): Telegram's pq is "normally ≤ 2^63−1", and the Montgomery code relies on it.
pub const MAX_PQ: u64 = (1 << 63) - 1;
/// Default work budget for factoring, in Montgomery multiplications (ECM curves and Pollard–Brent steps are both
/// charged by their multiplications). A pq of two 31-bit primes takes about 25 000 on average (a few ECM curves);
/// the budget leaves a wide margin for the rare pq that falls through to Pollard–Brent while bounding the work a
/// hostile pq can cause.
pub const DEFAULT_FACTOR_BUDGET: u32 = 1 << 22;

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
    /// n^-1 mod 2^64.
    n_inv: u64,
    /// R mod n, i.e. 1 in Montgomery form.
    one: u64,
    /// R^2 mod n, to enter Montgomery form.
    r2: u64,
}

/// A point of a Montgomery curve in x-only projective coordinates (X : Z), Montgomery form.
#[derive(Clone, Copy)]
struct Point {
    x: u64,
    z: u64,
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
        Monty { n, n_inv: inv, one, r2 }
    }

    /// a·b·R^-1 mod n for a·b < n·R. With m = lo(ab)·n^-1, m·n has the same low word as a·b, so
    /// (ab − mn)/R = hi(ab) − hi(mn) exactly: no 128-bit addition and no carry out, and the result lies in (−n, n),
    /// which one conditional add of n fixes.
    #[inline(always)]
    fn mul(&self, a: u64, b: u64) -> u64 {
        let t = u128::from(a) * u128::from(b);
        let m = (t as u64).wrapping_mul(self.n_inv);
        let mn_hi = ((u128::from(m) * u128::from(self.n)) >> 64) as u64;
        let (d, borrow) = ((t >> 64) as u64).overflowing_sub(mn_hi);
        if borrow { d.wrapping_add(self.n) } else { d }
    }

    fn enter(&self, a: u64) -> u64 {
        self.mul(a, self.r2)
    }

    /// Leaves Montgomery form.
    fn leave(&self, a: u64) -> u64 {
        self.mul(a, 1)
    }

    #[inline(always)]
    fn add(&self, a: u64, b: u64) -> u64 {
        add_mod(a, b, self.n)
    }

    #[inline(always)]
    fn sub(&self, a: u64, b: u64) -> u64 {
        sub_mod(a, b, self.n)
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

    /// 2P on the curve with (A+2)/4 = `a24`: 5 multiplications.
    #[inline(always)]
    fn xdbl(&self, p: Point, a24: u64) -> Point {
        let s = self.add(p.x, p.z);
        let s = self.mul(s, s);
        let t = self.sub(p.x, p.z);
        let t = self.mul(t, t);
        let e = self.sub(s, t);
        Point {
            x: self.mul(s, t),
            z: self.mul(e, self.add(t, self.mul(a24, e))),
        }
    }

    /// P + Q given D = P − Q: 6 multiplications.
    #[inline(always)]
    fn xadd(&self, p: Point, q: Point, d: Point) -> Point {
        let a = self.mul(self.sub(p.x, p.z), self.add(q.x, q.z));
        let b = self.mul(self.add(p.x, p.z), self.sub(q.x, q.z));
        let s = self.add(a, b);
        let t = self.sub(a, b);
        Point {
            x: self.mul(d.z, self.mul(s, s)),
            z: self.mul(d.x, self.mul(t, t)),
        }
    }

    /// (kP, (k+1)P) by the Montgomery ladder, for k ≥ 1. Variable time is fine: k is a public constant.
    fn ladder(&self, p: Point, k: u128, a24: u64) -> (Point, Point) {
        let mut r0 = p;
        let mut r1 = self.xdbl(p, a24);
        let mut i = 127u32.saturating_sub(k.leading_zeros());
        while i > 0 {
            i -= 1;
            // Both branches add the same pair; only which point is doubled and where the results go differ, so the
            // (inlined) curve formulas appear once each, which halves the ladder's flash on an MCU.
            let bit = (k >> i) & 1 == 1;
            let sum = self.xadd(r1, r0, p);
            let dbl = self.xdbl(if bit { r1 } else { r0 }, a24);
            (r0, r1) = if bit { (sum, dbl) } else { (dbl, sum) };
        }
        (r0, r1)
    }
}

/// Multiplications of [`Monty::ladder`] for scalar `k`.
const fn ladder_muls(k: u128) -> u32 {
    5 + 11 * (127u32.saturating_sub(k.leading_zeros()))
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

/// Work already done against a budget, in Montgomery multiplications.
struct Work {
    spent: u32,
    budget: u32,
}

impl Work {
    /// Charges `muls` before they are spent, so that the budget is never overrun.
    fn charge(&mut self, muls: u32) -> Result<(), FactorError> {
        self.spent = self.spent.saturating_add(muls);
        if self.spent > self.budget {
            Err(FactorError::BudgetExhausted)
        } else {
            Ok(())
        }
    }
}

/// ECM stage-1 bound: every prime power up to it divides the stage-1 scalar.
const ECM_B1: u64 = 150;
/// ECM stage-2 bound: one extra prime up to it is covered. B1 = 150, B2 = 25·B1 gave the fewest multiplications per
/// pq (about 25 000 on average over 2000 products of two 31-bit primes, against about 160 000 for 4-walk Pollard–Brent).
const ECM_B2: u64 = 25 * ECM_B1;
/// Giant-step width of stage 2; baby steps are the j < D/2 coprime to D.
const ECM_D: u64 = 210;
/// φ(210)/2: the number of baby steps.
const ECM_BABIES: usize = 24;
/// Curves tried before falling back to Pollard–Brent. About one curve in six splits a product of two 31-bit primes
/// (half of them need at most 4 curves); of 20 000 such products, 2 were still unsplit after 64 curves. The fallback
/// keeps the answer exact in any case.
const ECM_CURVES: u64 = 64;

const fn is_small_prime(p: u64) -> bool {
    let mut d = 2;
    while d * d <= p {
        if p.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    p >= 2
}

/// The stage-1 scalar, the product of the largest prime powers ≤ `b1`, as u128 factors (a u128 ladder needs no
/// bignum; 0 marks an unused slot). A bound too large for the slots saturates a slot to 0, which the unit test
/// catches.
const fn stage1_scalars(b1: u64) -> [u128; 2] {
    let (mut lo, mut hi) = (1u128, 1u128);
    let mut p = 2;
    while p <= b1 {
        if is_small_prime(p) {
            let mut e = p;
            while e * p <= b1 {
                e *= p;
            }
            match (hi == 1, lo.checked_mul(e as u128)) {
                (true, Some(v)) => lo = v,
                _ => {
                    hi = match hi.checked_mul(e as u128) {
                        Some(v) => v,
                        None => 0,
                    }
                }
            }
        }
        p += 1;
    }
    [lo, if hi == 1 { 0 } else { hi }]
}

const ECM_STAGE1: [u128; 2] = stage1_scalars(ECM_B1);
/// First giant step of stage 2.
const ECM_I0: u64 = if ECM_B1 / ECM_D == 0 { 1 } else { ECM_B1 / ECM_D };
/// Giant steps of stage 2, each covering i·D ± j for every baby step j.
const ECM_WINDOWS: u64 = (ECM_B2 + ECM_D) / ECM_D - ECM_I0;

/// Multiplications of one ECM curve, charged up front: curve setup, stage 1, baby steps, giant steps.
const ECM_CURVE_MULS: u32 = {
    let setup = 24;
    let stage1 = ladder_muls(ECM_STAGE1[0])
        + if ECM_STAGE1[1] > 1 {
            ladder_muls(ECM_STAGE1[1])
        } else {
            0
        };
    let babies = 5 + 6 * (ECM_D as u32 / 4);
    let giants = ladder_muls(ECM_D as u128) + ladder_muls(ECM_I0 as u128);
    let windows = (ECM_WINDOWS as u32) * (3 * ECM_BABIES as u32 + 6);
    setup + stage1 + babies + giants + windows
};

/// a^-1 mod n by the binary extended Euclid algorithm, for odd `n < 2^63` and gcd(a, n) = 1 (plain residues).
fn inv_mod(a: u64, n: u64) -> u64 {
    // Invariants: x1·a ≡ u and x2·a ≡ v (mod n); u and v stay positive while gcd(u, v) = 1.
    let (mut u, mut v, mut x1, mut x2) = (a, n, 1u64, 0u64);
    // x/2 mod n; x + n < 2^64 as both are below 2^63.
    let half = |x: u64| if x & 1 == 0 { x >> 1 } else { (x + n) >> 1 };
    while u != 1 && v != 1 {
        if u == 0 || v == 0 {
            // Only when gcd(a, n) ≠ 1, which callers exclude; bail out rather than loop.
            return 0;
        }
        while u & 1 == 0 {
            u >>= 1;
            x1 = half(x1);
        }
        while v & 1 == 0 {
            v >>= 1;
            x2 = half(x2);
        }
        if u >= v {
            u -= v;
            x1 = sub_mod(x1, x2, n);
        } else {
            v -= u;
            x2 = sub_mod(x2, x1, n);
        }
    }
    if u == 1 { x1 } else { x2 }
}

/// Lenstra's elliptic-curve method with Suyama's parametrisation (group orders divisible by 12) on x-only Montgomery
/// curves. A 31-bit prime p divides the result once some curve's order mod p is B1-smooth but for one prime ≤ B2,
/// which happens about once in six curves; Pollard rho instead needs ~√p steps. Curves are σ = 6, 7, 8, …, so the
/// same n always takes the same work. `Ok(None)` when no curve split n.
fn ecm(n: u64, work: &mut Work) -> Result<Option<u64>, FactorError> {
    let m = Monty::new(n);
    let nontrivial = |g: u64| g != 1 && g != n;
    for sigma in 6..6 + ECM_CURVES {
        work.charge(ECM_CURVE_MULS)?;
        // u = σ² − 5, v = 4σ, x0 = u³/v³, (A + 2)/4 = (v − u)³(3u + v)/(16u³v).
        let s = m.enter(sigma % n);
        let u = m.sub(m.mul(s, s), m.enter(5 % n));
        let v = m.add(m.add(s, s), m.add(s, s));
        let u3 = m.mul(m.mul(u, u), u);
        let v3 = m.mul(m.mul(v, v), v);
        let vmu = m.sub(v, u);
        let num = m.mul(m.mul(m.mul(vmu, vmu), vmu), m.add(m.add(m.add(u, u), u), v));
        let den = m.mul(m.mul(m.enter(16 % n), u3), v);
        // One inversion serves both denominators: 1/den = v³/(den·v³) and 1/v³ = den/(den·v³).
        let both = m.leave(m.mul(den, v3));
        let g = gcd(both, n);
        if g != 1 {
            if nontrivial(g) {
                return Ok(Some(g));
            }
            continue;
        }
        let inv = m.enter(inv_mod(both, n));
        let a24 = m.mul(num, m.mul(inv, v3));
        let mut q = Point {
            x: m.mul(u3, m.mul(inv, den)),
            z: m.one,
        };
        // Stage 1: q ← k·q for the scalar k = lcm(prime powers ≤ B1).
        for k in ECM_STAGE1 {
            if k > 1 {
                q = m.ladder(q, k, a24).0;
            }
        }
        let g = gcd(q.z, n);
        if g != 1 {
            if nontrivial(g) {
                return Ok(Some(g));
            }
            continue;
        }
        // Stage 2: x(i·D·q) = x(j·q) mod p exactly when (i·D ± j)·q = 0 mod p, so the product of the cross
        // differences X_i·Z_j − X_j·Z_i over giant steps i and baby steps j catches one prime i·D ± j ≤ B2.
        let q2 = m.xdbl(q, a24);
        let mut babies = [Point { x: 0, z: 0 }; ECM_BABIES];
        let mut slots = babies.iter_mut();
        let (mut prev, mut cur) = (q, q);
        let mut j = 1;
        while j < ECM_D / 2 {
            if j % 3 != 0
                && j % 5 != 0
                && j % 7 != 0
                && let Some(slot) = slots.next()
            {
                *slot = cur;
            }
            // (j+2)q = jq + 2q with difference (j−2)q; for j = 1 the difference is q itself.
            let next = m.xadd(cur, q2, if j == 1 { q } else { prev });
            prev = cur;
            cur = next;
            j += 2;
        }
        let dq = m.ladder(q, u128::from(ECM_D), a24).0;
        let (mut g0, mut g1) = m.ladder(dq, u128::from(ECM_I0), a24);
        let mut acc = m.one;
        for _ in 0..ECM_WINDOWS {
            for b in &babies {
                acc = m.mul(acc, m.sub(m.mul(g0.x, b.z), m.mul(b.x, g0.z)));
            }
            let g2 = m.xadd(g1, dq, g0);
            g0 = g1;
            g1 = g2;
        }
        let g = gcd(acc, n);
        if nontrivial(g) {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// Independent rho walks advanced in lock-step. One walk is a chain of dependent multiplications, bound by
/// multiplier latency; several interleaved walks keep the multiplier busy, and the first of them to collide wins, so
/// the expected number of steps per walk also drops.
const WALKS: usize = 4;

/// Finds a non-trivial factor of an odd composite `n` with Brent's variant of Pollard's rho, batching 128 steps per
/// gcd and running [`WALKS`] walks (different constants) side by side; one gcd per batch serves all walks (of the
/// product of their accumulators). The fallback when ECM fails: slow but certain.
fn pollard_brent(n: u64, work: &mut Work) -> Result<u64, FactorError> {
    const BATCH: u32 = 128;
    const W: u32 = WALKS as u32;
    let m = Monty::new(n);
    let f = |x: u64, c: u64| add_mod(m.mul(x, x), c, n);
    // Deterministic restarts with fresh constants: the result must not depend on an RNG.
    for round in 0u64..8 {
        let c: [u64; WALKS] = core::array::from_fn(|i| m.enter((round * WALKS as u64 + i as u64 + 1) % n));
        let mut y = [m.enter(2 % n); WALKS];
        let mut q = [m.one; WALKS];
        let mut r: u32 = 1;
        'walk: loop {
            let x = y;
            work.charge(r.saturating_mul(W))?;
            for _ in 0..r {
                for (yi, &ci) in y.iter_mut().zip(c.iter()) {
                    *yi = f(*yi, ci);
                }
            }
            let mut k = 0;
            while k < r {
                let ys = y;
                let steps = BATCH.min(r - k);
                work.charge((2 * steps + 1) * W)?;
                for _ in 0..steps {
                    for ((yi, qi), (&xi, &ci)) in y.iter_mut().zip(q.iter_mut()).zip(x.iter().zip(c.iter())) {
                        *yi = f(*yi, ci);
                        *qi = m.mul(*qi, sub_mod(xi, *yi, n));
                    }
                }
                k += steps;
                let all = q.iter().fold(m.one, |a, &qi| m.mul(a, qi));
                let g = gcd(all, n);
                if g == 1 {
                    continue;
                }
                if g != n {
                    return Ok(g);
                }
                for (((&qi, &ysi), &xi), &ci) in q.iter().zip(ys.iter()).zip(x.iter()).zip(c.iter()) {
                    let g = gcd(qi, n);
                    if g == 1 {
                        continue;
                    }
                    if g != n {
                        return Ok(g);
                    }
                    // The batch overshot: replay this walk one step at a time from the saved point.
                    work.charge(steps)?;
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
            }
            r = r.saturating_mul(2);
        }
    }
    Err(FactorError::BudgetExhausted)
}

/// Below this, n is split by Pollard–Brent directly: its factors are so small that ECM's group orders are smooth
/// modulo both of them at once (gcd = n), while rho needs only ~n^¼ steps.
const ECM_MIN_N: u64 = 1 << 32;

/// A non-trivial factor of an odd composite `n < 2^63` that is not a square.
fn find_factor(n: u64, budget: u32) -> Result<u64, FactorError> {
    let mut work = Work { spent: 0, budget };
    if n >= ECM_MIN_N
        && let Some(d) = ecm(n, &mut work)?
    {
        return Ok(d);
    }
    pollard_brent(n, &mut work)
}

/// Splits `pq` into primes `(p, q)` with `p < q`, `p·q = pq`, within `budget` Montgomery multiplications: ECM
/// (a few curves for two 31-bit primes), then Pollard–Brent if no curve split it.
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
    let d = if pq & 1 == 0 { 2 } else { find_factor(pq, budget)? };
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
    extern crate std;
    use super::*;
    use std::vec::Vec;

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

    /// Deterministic products of two distinct 31-bit primes (xorshift stream, so no RNG crate is needed).
    fn products_31(count: usize, mut s: u64) -> Vec<u64> {
        let mut prime = || loop {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let c = (s & 0x7fff_ffff) | 0x4000_0001;
            if is_prime_u64(c) {
                return c;
            }
        };
        (0..count)
            .map(|_| {
                loop {
                    let (a, b) = (prime(), prime());
                    if a != b {
                        return a * b;
                    }
                }
            })
            .collect()
    }

    /// Trial division: is n the product of two distinct primes?
    fn is_semiprime_oracle(n: u64) -> Option<(u64, u64)> {
        let mut d = 2;
        while d * d <= n {
            if n.is_multiple_of(d) {
                let q = n / d;
                return (q != d && is_prime_u64(q)).then_some((d, q));
            }
            d += 1;
        }
        None
    }

    #[test]
    fn stage1_scalars_are_the_lcm_of_prime_powers() {
        let mut want = num_bigint::BigUint::from(1u32);
        for p in (2..=ECM_B1).filter(|&p| is_prime_u64(p)) {
            let mut e = p;
            while e * p <= ECM_B1 {
                e *= p;
            }
            want *= e;
        }
        let [lo, hi] = ECM_STAGE1;
        assert!(lo > 1 && hi > 1, "B1 = {ECM_B1} needs exactly two u128 slots");
        assert_eq!(num_bigint::BigUint::from(lo) * num_bigint::BigUint::from(hi), want);
        assert_eq!(
            stage1_scalars(80)[1],
            0,
            "a scalar that fits one slot leaves the second unused"
        );
    }

    #[test]
    fn inv_mod_inverts() {
        for n in [3u64, 15, 1_000_000_007, 0x130B7475669FEB8B, MAX_PQ] {
            for a in [1u64, 2, 7, n - 1, n / 3 + 1, 0x1234_5678_9abc % n] {
                if gcd(a, n) == 1 {
                    let i = inv_mod(a, n);
                    assert_eq!(u128::from(a) * u128::from(i) % u128::from(n), 1, "a={a} n={n}");
                }
            }
        }
        // Not invertible: no hang, no panic.
        assert_eq!(inv_mod(0, 15), 0);
        assert_eq!(inv_mod(6, 15), 0);
    }

    #[test]
    fn ecm_and_pollard_brent_both_split_products_of_31_bit_primes() {
        for n in products_31(100, 7) {
            let mut work = Work {
                spent: 0,
                budget: DEFAULT_FACTOR_BUDGET,
            };
            let d = ecm(n, &mut work).unwrap().unwrap();
            assert!(d > 1 && d < n && n % d == 0, "{n:#x}");
            let mut work = Work {
                spent: 0,
                budget: DEFAULT_FACTOR_BUDGET,
            };
            let d = pollard_brent(n, &mut work).unwrap();
            assert!(d > 1 && d < n && n % d == 0, "{n:#x}");
        }
    }

    /// ECM is what makes factoring cheap: 2000 products of two 31-bit primes take under 30 000 multiplications on
    /// average (measured: about 25 000), where Pollard–Brent alone needs about 160 000.
    #[test]
    fn ecm_work_per_pq_is_bounded() {
        let set = products_31(2000, 99);
        let (mut total, mut max) = (0u64, 0u32);
        for &n in &set {
            let mut work = Work {
                spent: 0,
                budget: DEFAULT_FACTOR_BUDGET,
            };
            let d = ecm(n, &mut work)
                .transpose()
                .unwrap_or_else(|| pollard_brent(n, &mut work))
                .unwrap();
            assert!(d > 1 && d < n && n % d == 0, "{n:#x}");
            total += u64::from(work.spent);
            max = max.max(work.spent);
        }
        std::println!(
            "ECM then Pollard-Brent: mean {} max {max} multiplications",
            total / 2000
        );
        assert!(total / 2000 < 30_000, "mean {}", total / 2000);
        let rho_total: u64 = set
            .iter()
            .take(200)
            .map(|&n| {
                let mut work = Work {
                    spent: 0,
                    budget: DEFAULT_FACTOR_BUDGET,
                };
                pollard_brent(n, &mut work).unwrap();
                u64::from(work.spent)
            })
            .sum();
        std::println!("Pollard-Brent: mean {} multiplications", rho_total / 200);
        assert!(rho_total / 200 > 60_000, "rho mean {}", rho_total / 200);
    }

    #[test]
    fn small_and_odd_inputs_match_trial_division() {
        // Every n below 20 000 (the Pollard–Brent path) and a window at the ECM threshold.
        for n in (0..20_000u64).chain(ECM_MIN_N - 2000..ECM_MIN_N + 2000) {
            match factor_pq(n) {
                Ok((p, q)) => assert_eq!(Some((p, q)), is_semiprime_oracle(n), "{n}"),
                Err(e) => {
                    assert_eq!(e, FactorError::NotSemiprime, "{n}");
                    assert_eq!(is_semiprime_oracle(n), None, "{n}");
                }
            }
        }
    }

    #[test]
    fn unbalanced_and_composite_inputs() {
        let big = 9_223_372_036_854_775_783u64; // the largest prime below 2^63
        assert_eq!(factor_pq(u64::MAX), Err(FactorError::TooLarge));
        assert_eq!(factor_pq(big), Err(FactorError::NotSemiprime));
        // Factors of very different sizes.
        for (p, q) in [
            (41u64, 200_000_000_000_000_003u64),
            (65_537, 100_000_000_000_031),
            (1_000_003, 9_000_000_000_059),
        ] {
            assert!(is_prime_u64(p) && is_prime_u64(q) && p * q <= MAX_PQ);
            assert_eq!(factor_pq(p * q), Ok((p, q)));
        }
        // Three primes, a prime squared times a prime, a cube: a factor is found, then refused.
        for n in [
            1_000_003u64 * 1_000_033 * 1_000_037,
            1_000_003 * 1_000_003 * 1_000_033,
            2_097_143u64.pow(3),
        ] {
            assert_eq!(factor_pq(n), Err(FactorError::NotSemiprime), "{n}");
        }
    }

    #[test]
    fn pollard_brent_fallback_when_every_curve_fails() {
        // Found by the 20 000-product survey: no curve σ = 6..69 splits it.
        let n = 0x17AA_AF4B_6BA3_C37B;
        let mut work = Work {
            spent: 0,
            budget: DEFAULT_FACTOR_BUDGET,
        };
        assert_eq!(ecm(n, &mut work), Ok(None));
        assert_eq!(work.spent, ECM_CURVES as u32 * ECM_CURVE_MULS);
        assert_eq!(factor_pq(n), Ok((1_271_993_651, 1_340_704_921)));
        // The fallback is charged on top of the curves.
        assert_eq!(
            factor_pq_with_budget(n, work.spent + 100),
            Err(FactorError::BudgetExhausted)
        );
    }

    proptest::proptest! {
        /// Any value: an answer within the budget (never a panic or a hang), and every answer exact.
        #[test]
        fn any_pq_is_answered_exactly(n in 0u64..=MAX_PQ) {
            if let Ok((p, q)) = factor_pq(n) {
                proptest::prop_assert!(p < q && is_prime_u64(p) && is_prime_u64(q) && p.checked_mul(q) == Some(n));
            }
        }

        #[test]
        fn products_of_a_small_and_a_large_prime(a in 3u64..1 << 20, b in 1u64 << 20..1 << 42) {
            let p = (a..).find(|&x| is_prime_u64(x)).unwrap();
            let q = (b..).find(|&x| is_prime_u64(x)).unwrap();
            proptest::prop_assert_eq!(factor_pq(p * q), Ok((p.min(q), p.max(q))));
        }
    }

    #[test]
    fn budget_is_charged_for_ecm_and_rho() {
        assert_eq!(
            factor_pq_with_budget(0x17ED48941A08F981, 0),
            Err(FactorError::BudgetExhausted)
        );
        assert_eq!(
            factor_pq_with_budget(0x17ED48941A08F981, ECM_CURVE_MULS - 1),
            Err(FactorError::BudgetExhausted)
        );
        // Below ECM_MIN_N only Pollard–Brent runs, and it is charged too.
        assert_eq!(
            factor_pq_with_budget(65_521 * 65_519, 8),
            Err(FactorError::BudgetExhausted)
        );
        assert_eq!(factor_pq_with_budget(65_521 * 65_519, 1 << 20), Ok((65_519, 65_521)));
    }
}
