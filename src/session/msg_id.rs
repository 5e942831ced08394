//! Message identifiers, the sender side, the outbound msg_id generator and the clock model.
//!
//! A msg_id is "approximately unixtime·2^32": the high 32 bits are Unix seconds, the low 32 bits the sub-second
//! fraction. Client ids are divisible by 4 with non-zero low 32 bits; server ids are ≡ 1 mod 4 for responses and
//! ≡ 3 otherwise; both increase strictly within a session (DESC; docs/CHECKLIST.md items 32, 36).
//!
//! The crate never reads a clock: [`Clock`] maps the host's monotonic [`Instant`] to Unix time with an offset that
//! the host seeds and the server corrects (handshake `server_time`, or a verified `bad_msg_notification` 16/17).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use super::{pending::SentRef, ring::Keyed};
use crate::time::{Instant, UnixTime};

const MICROS_PER_SEC: u64 = 1_000_000;

/// A message identifier.
///
/// Stored unsigned: TL carries it as a signed `long`, but ids are Unix seconds·2^32, which turns negative as a
/// signed value in 2038. Ordering as `u64` stays right until 2106, and a peer's negative id simply reads as far in
/// the future (rejected by the time window). Use [`from_wire`](Self::from_wire)/[`to_wire`](Self::to_wire) at
/// the codec boundary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgId(pub u64);

impl MsgId {
    /// From the TL `long` as decoded (a bit-for-bit reinterpretation).
    pub const fn from_wire(v: i64) -> Self {
        MsgId(v as u64)
    }

    /// The TL `long` to encode (a bit-for-bit reinterpretation).
    pub const fn to_wire(self) -> i64 {
        self.0 as i64
    }

    /// The id's timestamp in whole Unix seconds.
    pub const fn unix_secs(self) -> u64 {
        self.0 >> 32
    }

    /// The id's timestamp in Unix microseconds (the fraction rounded down).
    pub const fn unix_micros(self) -> u64 {
        let secs = self.0 >> 32;
        let frac = ((self.0 & 0xffff_ffff) * MICROS_PER_SEC) >> 32;
        secs * MICROS_PER_SEC + frac
    }

    /// Whether the two low bits are those a message from `side` must carry (item 32): 0 for a client, 1 or 3 for
    /// the server.
    pub const fn has_parity_of(self, side: Role) -> bool {
        match side {
            Role::Client => self.0.is_multiple_of(4),
            Role::Server => self.0 % 2 == 1,
        }
    }

    /// For a server id: whether it marks a response to a client message (≡ 1 mod 4) rather than a message the
    /// server sent on its own (≡ 3 mod 4). Informational only: logged, not enforced
    /// (docs/CHECKLIST.md item 32).
    pub const fn is_server_response(self) -> bool {
        self.0 % 4 == 1
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

impl Keyed for MsgId {
    fn key(&self) -> u64 {
        self.0
    }
}

pub use crate::transport::Role;

/// The mapping from the host's monotonic [`Instant`] to Unix time: `unix_µs = instant_µs + unix_offset`.
///
/// A device without a real-time clock starts with a guess (or 0) and is corrected by the server: by the handshake's
/// `server_time`, by a `bad_msg_notification` 16/17 about a message we sent, or, on a client that has neither, by
/// the first authenticated message of its session (see the engine). From then on the client enforces the receive
/// time window (item 34), see [`is_synced`](Self::is_synced).
///
/// A clock set from that first message may lag the DC's (the message may have been held back on its way, by up to
/// the time since the session's first packet left); [`lag_bound`](Self::lag_bound) says by how much at most, and
/// later messages from the DC move the clock forward within that bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Clock {
    unix_offset: i64,
    synced: bool,
    /// µs by which the DC's clock may still be ahead of this one (0 once exact).
    lag_bound: u64,
}

impl Clock {
    /// A clock with the given offset in microseconds (Unix µs minus host µs), not yet confirmed by a server.
    pub const fn new(unix_offset_micros: i64) -> Self {
        Clock {
            unix_offset: unix_offset_micros,
            synced: false,
            lag_bound: 0,
        }
    }

    /// A clock seeded from the host's idea of Unix time at `now` (an RTC, NTP, a hint), not yet confirmed.
    pub fn from_unix_hint(now: Instant, unix: UnixTime) -> Self {
        Clock {
            unix_offset: offset_for(now, u128::from(unix.0) * u128::from(MICROS_PER_SEC)),
            synced: false,
            lag_bound: 0,
        }
    }

    /// The offset in microseconds.
    pub const fn unix_offset(&self) -> i64 {
        self.unix_offset
    }

    /// Whether a server has confirmed the offset; a client enforces the msg_id time window from then on (item 34).
    pub const fn is_synced(&self) -> bool {
        self.synced
    }

    /// How far (µs) the DC's clock may be ahead of this one: non-zero only after a sync from a session's first
    /// message, whose transit time is unknown. A client accepts DC msg_ids up to this much beyond the window's
    /// future edge, and moves the clock forward when it sees one.
    pub const fn lag_bound(&self) -> u64 {
        self.lag_bound
    }

    /// Unix microseconds at `now`, clamped at 0 and at `u64::MAX`.
    pub fn unix_micros(&self, now: Instant) -> u64 {
        let v = i128::from(now.as_micros()) + i128::from(self.unix_offset);
        u64::try_from(v.max(0)).unwrap_or(u64::MAX)
    }

    /// Unix seconds at `now`.
    pub fn unix_time(&self, now: Instant) -> UnixTime {
        UnixTime(self.unix_micros(now) / MICROS_PER_SEC)
    }

    /// Unix time at `now` in msg_id units (seconds·2^32 + fraction), saturating at the largest 32-bit second.
    pub fn msg_time(&self, now: Instant) -> u64 {
        micros_to_msg_time(self.unix_micros(now))
    }

    /// Adopts the handshake's `server_time` (trusted: the handshake's nonces and hashes authenticated it).
    pub fn sync_to_server_time(&mut self, now: Instant, server_time: UnixTime) {
        self.unix_offset = offset_for(now, u128::from(server_time.0) * u128::from(MICROS_PER_SEC));
        self.synced = true;
        self.lag_bound = 0;
    }

    /// Adopts the time of the first authenticated server message of a session, received at `now`, on a clock no
    /// server has confirmed yet (a client on a stored key); a synced clock is left alone.
    ///
    /// What that message proves: the DC made it (it passed the msg_key check under our key) for our session, whose
    /// id is fresh and unpredictable, so it was made after the session's first packet left at `since`, and before
    /// `now`. Its msg_id is the DC's time at some moment in between: the DC's clock reads at least that time now, and
    /// at most that time plus `now − since`. The clock is set to the lower end (it never runs ahead of the DC's) and
    /// remembers the width as [`lag_bound`](Self::lag_bound). What it does not prove: that the message was not held
    /// back within that span, so the window's past edge is that much looser until the DC's next message moves the
    /// clock forward ([`advance_within_lag`](Self::advance_within_lag)).
    pub(crate) fn sync_to_first_server_msg(&mut self, since: Instant, now: Instant, server_msg_id: MsgId) {
        if self.synced {
            return;
        }
        self.unix_offset = offset_for(now, u128::from(server_msg_id.unix_micros()));
        self.synced = true;
        self.lag_bound = now.as_micros().saturating_sub(since.as_micros());
    }

    /// A later authenticated server message received at `now`: the DC made it before `now`, so its time is a lower
    /// bound of the DC's clock. If it is ahead of this clock, move forward by up to [`lag_bound`](Self::lag_bound)
    /// (never beyond what the first message allowed), shrinking the bound by as much.
    pub(crate) fn advance_within_lag(&mut self, now: Instant, server_msg_id: MsgId) {
        let ours = self.unix_micros(now);
        let ahead = server_msg_id.unix_micros().saturating_sub(ours).min(self.lag_bound);
        if ahead == 0 {
            return;
        }
        let step = i64::try_from(ahead).unwrap_or(i64::MAX);
        self.unix_offset = self.unix_offset.saturating_add(step);
        self.lag_bound = self.lag_bound.saturating_sub(ahead);
    }

    /// Adopts the time carried by a server msg_id (of a `bad_msg_notification` with code 16 or 17).
    ///
    /// `_proof` shows the notification named a message we sent and still track (item 43): a replayed or forged
    /// notification about an id we never sent cannot move the clock (B20). The engine must also check the code is
    /// 16 or 17 ([`BadMsgCode::is_time_sync`](super::BadMsgCode::is_time_sync)).
    pub fn sync_to_server_msg_id(&mut self, _proof: &SentRef, now: Instant, server_msg_id: MsgId) {
        self.unix_offset = offset_for(now, u128::from(server_msg_id.unix_micros()));
        self.synced = true;
        self.lag_bound = 0;
    }
}

fn offset_for(now: Instant, unix_micros: u128) -> i64 {
    let d = i128::try_from(unix_micros).unwrap_or(i128::MAX) - i128::from(now.as_micros());
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

fn micros_to_msg_time(us: u64) -> u64 {
    let secs = (us / MICROS_PER_SEC).min(u64::from(u32::MAX));
    let frac = ((us % MICROS_PER_SEC) << 32) / MICROS_PER_SEC;
    (secs << 32) | frac
}

/// msg_ids ran out: the previous id is within 8 of `u64::MAX` (only reachable if a peer pushed the clock to the
/// year 2106). The session must be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgIdExhausted;

impl fmt::Display for MsgIdExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("msg_id space exhausted")
    }
}

impl core::error::Error for MsgIdExhausted {}

/// Outbound msg_ids for one session (item 36).
///
/// Each id follows the clock, but never goes backwards: if the clock (or its correction) steps back, the next id
/// is the previous one plus 4, so ids stay unique and strictly increasing and the server never sees a duplicate
/// (a container generated after its contents automatically gets a higher id than they do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsgIdGen {
    side: Role,
    last: u64,
}

impl MsgIdGen {
    /// A generator for messages sent by `side`, for a fresh session.
    pub const fn new(side: Role) -> Self {
        MsgIdGen { side, last: 0 }
    }

    /// The side this generator sends as.
    pub const fn role(&self) -> Role {
        self.side
    }

    /// The last id handed out.
    pub const fn last(&self) -> Option<MsgId> {
        if self.last == 0 { None } else { Some(MsgId(self.last)) }
    }

    /// The next id for a message that is not a response: ≡ 0 mod 4 from a client, ≡ 3 mod 4 from the server.
    pub fn next(&mut self, now: Instant, clock: &Clock) -> Result<MsgId, MsgIdExhausted> {
        let low = match self.side {
            Role::Client => 0,
            Role::Server => 3,
        };
        self.next_with(clock.msg_time(now), low)
    }

    /// The next id for a response to a peer's message: ≡ 1 mod 4 from the server. A client's ids carry no
    /// response marker, so on a client this is the same as [`next`](Self::next).
    pub fn next_response(&mut self, now: Instant, clock: &Clock) -> Result<MsgId, MsgIdExhausted> {
        let low = match self.side {
            Role::Client => 0,
            Role::Server => 1,
        };
        self.next_with(clock.msg_time(now), low)
    }

    fn next_with(&mut self, msg_time: u64, low: u64) -> Result<MsgId, MsgIdExhausted> {
        let mut id = (msg_time & !3) | low;
        if id <= self.last {
            id = (self.last & !3).checked_add(4).ok_or(MsgIdExhausted)? | low;
        }
        // The low 32 bits must carry the fraction, never be all zero (DESC, anti-replay).
        if id & 0xffff_ffff == 0 {
            id = id.checked_add(4).ok_or(MsgIdExhausted)?;
        }
        self.last = id;
        Ok(MsgId(id))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn msg_time_layout() {
        let c = Clock::from_unix_hint(Instant::from_secs(10), UnixTime(1_700_000_000));
        let t = c.msg_time(Instant::from_micros(10_500_000));
        assert_eq!(t >> 32, 1_700_000_000);
        assert_eq!(t & 0xffff_ffff, 1 << 31); // half a second
        assert_eq!(MsgId(t).unix_micros(), 1_700_000_000_500_000);
        assert!(!c.is_synced());
    }

    #[test]
    fn whole_second_ids_get_nonzero_low_bits() {
        let c = Clock::from_unix_hint(Instant::ZERO, UnixTime(1_700_000_000));
        let mut g = MsgIdGen::new(Role::Client);
        let id = g.next(Instant::ZERO, &c).unwrap();
        assert_eq!(id.0 >> 32, 1_700_000_000);
        assert_eq!(id.0 & 0xffff_ffff, 4);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let mut g = MsgIdGen {
            side: Role::Client,
            last: u64::MAX - 3,
        };
        assert_eq!(g.next(Instant::ZERO, &Clock::new(0)), Err(MsgIdExhausted));
    }

    #[test]
    fn wire_round_trip_and_parity() {
        assert_eq!(MsgId::from_wire(-1).0, u64::MAX);
        assert_eq!(MsgId(u64::MAX).to_wire(), -1);
        assert!(MsgId(8).has_parity_of(Role::Client) && !MsgId(8).has_parity_of(Role::Server));
        assert!(MsgId(9).has_parity_of(Role::Server) && MsgId(11).has_parity_of(Role::Server));
        assert!(!MsgId(10).has_parity_of(Role::Server) && !MsgId(10).has_parity_of(Role::Client));
        assert!(MsgId(9).is_server_response() && !MsgId(11).is_server_response());
        assert_eq!(Role::Client.peer(), Role::Server);
    }
}
