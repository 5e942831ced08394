//! Time as the host passes it in. The crate never reads a clock.
//!
//! [`Instant`] is monotonic microseconds since an arbitrary host epoch (boot, process start...). MTProto also needs
//! Unix time for msg_ids; sessions keep an offset between the two, seeded by the host and corrected by the server.

use core::time::Duration;

/// A monotonic point in time: microseconds since a host-chosen epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

impl Instant {
    /// The host epoch.
    pub const ZERO: Instant = Instant(0);

    /// From microseconds since the host epoch.
    pub const fn from_micros(us: u64) -> Self {
        Instant(us)
    }

    /// From milliseconds since the host epoch (saturating).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }

    /// From seconds since the host epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        Instant(s.saturating_mul(1_000_000))
    }

    /// Microseconds since the host epoch.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// Whole seconds since the host epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1_000_000
    }

    /// `self + d`, saturating at the far future instead of overflowing.
    pub fn saturating_add(self, d: Duration) -> Self {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(us))
    }

    /// The time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Seconds since the Unix epoch, as MTProto counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnixTime(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instant_arithmetic_saturates() {
        let t = Instant::from_secs(5);
        assert_eq!(t.as_micros(), 5_000_000);
        assert_eq!(t.saturating_add(Duration::from_millis(1)).as_micros(), 5_001_000);
        assert_eq!(
            Instant::from_micros(u64::MAX - 1)
                .saturating_add(Duration::MAX)
                .as_micros(),
            u64::MAX
        );
        assert_eq!(Instant::ZERO.saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Instant::from_secs(2)),
            Duration::from_secs(3)
        );
    }
}
