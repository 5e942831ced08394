//! The resend byte budget (item 49; attack B16): a token bucket bounding how many bytes a session may resend in
//! answer to `msg_resend_req` (or `msgs_state_req`-driven resends), so a small request cannot trigger megabytes.
//!
//! Integer arithmetic only, in byte·µs units, so the same inputs always give the same verdicts.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use crate::time::Instant;

const MICROS_PER_SEC: u128 = 1_000_000;

/// The budget cannot cover the bytes asked for right now; nothing was spent. Answer later, or with
/// `msgs_state_info` instead of the bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BudgetExhausted;

impl fmt::Display for BudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("resend byte budget exhausted")
    }
}

impl core::error::Error for BudgetExhausted {}

/// A token bucket of bytes: holds at most `burst` bytes, refilled at `bytes_per_sec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResendBudget {
    burst: u64,
    bytes_per_sec: u64,
    /// Tokens in byte·µs, so refills of less than a byte are not lost.
    tokens: u128,
    last: Instant,
}

impl ResendBudget {
    /// A full bucket at `now`.
    pub const fn new(now: Instant, burst: u64, bytes_per_sec: u64) -> Self {
        ResendBudget {
            burst,
            bytes_per_sec,
            tokens: burst as u128 * MICROS_PER_SEC,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = u128::from(now.saturating_duration_since(self.last).as_micros() as u64);
        if now > self.last {
            self.last = now;
        }
        let cap = u128::from(self.burst) * MICROS_PER_SEC;
        self.tokens = self
            .tokens
            .saturating_add(elapsed * u128::from(self.bytes_per_sec))
            .min(cap);
    }

    /// Whole bytes available at `now`.
    pub fn available(&mut self, now: Instant) -> u64 {
        self.refill(now);
        u64::try_from(self.tokens / MICROS_PER_SEC).unwrap_or(u64::MAX)
    }

    /// Spends `bytes` at `now` if the budget covers all of them; otherwise spends nothing.
    pub fn try_spend(&mut self, now: Instant, bytes: u64) -> Result<(), BudgetExhausted> {
        self.refill(now);
        let cost = u128::from(bytes) * MICROS_PER_SEC;
        if cost > self.tokens {
            return Err(BudgetExhausted);
        }
        self.tokens -= cost;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_rate_up_to_burst() {
        let mut b = ResendBudget::new(Instant::ZERO, 1000, 100);
        b.try_spend(Instant::ZERO, 1000).unwrap();
        assert_eq!(b.try_spend(Instant::ZERO, 1), Err(BudgetExhausted));
        assert_eq!(b.available(Instant::from_millis(15)), 1); // 1.5 bytes, rounded down
        assert_eq!(b.available(Instant::from_secs(5)), 500);
        assert_eq!(b.available(Instant::from_secs(500)), 1000);
        // A clock going backwards refills nothing and does not rewind.
        b.try_spend(Instant::from_secs(500), 1000).unwrap();
        assert_eq!(b.available(Instant::from_secs(1)), 0);
    }
}
