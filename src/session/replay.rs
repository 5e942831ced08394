//! Checks on every received msg_id: sender parity (item 32), the replay window (item 33) and the time window
//! (item 34). Each failure is a typed [`MsgIdReject`] that maps onto the `bad_msg_notification` code a server
//! answers with (or on nothing, where the spec says to ignore silently).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

use super::{
    bad_msg::BadMsgCode,
    limits::DEFAULT_REPLAY_WINDOW,
    msg_id::{MsgId, Role},
    ring::SortedRing,
};
use crate::time::UnixTime;

/// Why a received msg_id is refused. The message is dropped and nothing from it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MsgIdReject {
    /// Its time is more than the allowed past (300 s) before now.
    TooLow,
    /// Its time is more than the allowed future (30 s) after now.
    TooHigh,
    /// Its two low bits do not match the sender (a client's must be 0; the server's odd).
    BadParity,
    /// It equals a msg_id already received in this session.
    Duplicate,
    /// The window is full and it is lower than every id remembered: it cannot be told apart from a replay.
    OlderThanWindow,
}

impl MsgIdReject {
    /// The code a server answers with in `bad_msg_notification`, per the spec's table, or `None` where the
    /// message is to be ignored without a notification. `is_container` says whether the refused id is a
    /// `msg_container`'s: only a reused container id has its own code (19); any other duplicate is a
    /// retransmission the server already has, which it acknowledges again instead of complaining.
    pub const fn bad_msg_code(self, is_container: bool) -> Option<BadMsgCode> {
        match self {
            MsgIdReject::TooLow => Some(BadMsgCode::MsgIdTooLow),
            MsgIdReject::TooHigh => Some(BadMsgCode::MsgIdTooHigh),
            MsgIdReject::BadParity => Some(BadMsgCode::MsgIdBadParity),
            MsgIdReject::Duplicate if is_container => Some(BadMsgCode::ContainerIdReused),
            MsgIdReject::Duplicate => None,
            MsgIdReject::OlderThanWindow => Some(BadMsgCode::MsgTooOld),
        }
    }
}

impl fmt::Display for MsgIdReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MsgIdReject::TooLow => "msg_id too far in the past",
            MsgIdReject::TooHigh => "msg_id too far in the future",
            MsgIdReject::BadParity => "msg_id has the wrong parity for its sender",
            MsgIdReject::Duplicate => "msg_id already received",
            MsgIdReject::OlderThanWindow => "msg_id older than the replay window",
        })
    }
}

impl core::error::Error for MsgIdReject {}

/// Checks that `id`'s low bits are those of a message sent by `from` (item 32): a client's ≡ 0 mod 4 (else the
/// server answers code 18), the server's odd. The server's 1-vs-3 distinction is not enforced
/// (docs/CHECKLIST.md item 32: until interop shows that servers always follow it, it is only logged).
pub const fn check_parity(id: MsgId, from: Role) -> Result<(), MsgIdReject> {
    if id.has_parity_of(from) {
        Ok(())
    } else {
        Err(MsgIdReject::BadParity)
    }
}

/// The received-msg_id replay window (item 33, SG): the last `N` ids are remembered. A duplicate is dropped; once
/// the window is full, an id lower than all remembered is dropped; otherwise the id is inserted and, if the window
/// was full, the lowest is forgotten.
///
/// Container inner ids go through the same window (item 48). Checking and inserting are separate so the engine
/// inserts only once every other check on the message has passed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplayWindow<const N: usize = DEFAULT_REPLAY_WINDOW> {
    ids: SortedRing<MsgId, N>,
}

impl<const N: usize> Default for ReplayWindow<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ReplayWindow<N> {
    /// An empty window (a new session). `N` must be non-zero (checked at compile time).
    pub const fn new() -> Self {
        ReplayWindow {
            ids: SortedRing::new(MsgId(0)),
        }
    }

    /// Whether `id` would be accepted, without remembering it.
    pub fn check(&self, id: MsgId) -> Result<(), MsgIdReject> {
        match self.ids.search(id.0) {
            Ok(_) => Err(MsgIdReject::Duplicate),
            Err(0) if self.ids.is_full() => Err(MsgIdReject::OlderThanWindow),
            Err(_) => Ok(()),
        }
    }

    /// Checks `id` and, if accepted, remembers it (evicting the lowest id when full).
    pub fn insert(&mut self, id: MsgId) -> Result<(), MsgIdReject> {
        let pos = match self.ids.search(id.0) {
            Ok(_) => return Err(MsgIdReject::Duplicate),
            Err(0) if self.ids.is_full() => return Err(MsgIdReject::OlderThanWindow),
            Err(pos) => pos,
        };
        let pos = if self.ids.is_full() {
            // The new id is above the lowest (pos > 0), so evicting the lowest shifts its position by one.
            self.ids.pop_front();
            pos - 1
        } else {
            pos
        };
        // Cannot fail: there is room and pos is within bounds.
        self.ids.insert(pos, id).map_err(|_| MsgIdReject::OlderThanWindow)
    }

    /// Whether `id` is remembered.
    pub fn contains(&self, id: MsgId) -> bool {
        self.ids.search(id.0).is_ok()
    }

    /// Ids remembered.
    pub const fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is remembered yet.
    pub const fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// The window size `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The lowest id remembered.
    pub fn lowest(&self) -> Option<MsgId> {
        self.ids.first()
    }

    /// The highest id remembered.
    pub fn highest(&self) -> Option<MsgId> {
        self.ids.last()
    }

    /// Remembered ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.ids.iter()
    }

    /// Forgets everything (a new session).
    pub fn clear(&mut self) {
        self.ids.clear();
    }
}

/// The msg_id time window (item 34): a received id's time must lie within `[now − past, now + future]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimeWindow {
    /// How far back an id may lie (spec: 300 s).
    pub past: Duration,
    /// How far ahead an id may lie (spec: 30 s).
    pub future: Duration,
}

impl TimeWindow {
    /// The spec's window: 300 s back, 30 s ahead.
    pub const DEFAULT: TimeWindow = TimeWindow {
        past: Duration::from_secs(300),
        future: Duration::from_secs(30),
    };

    /// Refuses an id whose time is before `now − past` ([`MsgIdReject::TooLow`], code 16) or after `now + future`
    /// ([`MsgIdReject::TooHigh`], code 17). Both edges are inclusive; the id's sub-second fraction counts.
    pub fn check(&self, id: MsgId, now: UnixTime) -> Result<(), MsgIdReject> {
        let now = u128::from(now.0) << 32;
        let t = u128::from(id.0);
        if t < now.saturating_sub(duration_to_msg_units(self.past)) {
            Err(MsgIdReject::TooLow)
        } else if t > now + duration_to_msg_units(self.future) {
            Err(MsgIdReject::TooHigh)
        } else {
            Ok(())
        }
    }
}

impl Default for TimeWindow {
    fn default() -> Self {
        TimeWindow::DEFAULT
    }
}

fn duration_to_msg_units(d: Duration) -> u128 {
    (u128::from(d.as_secs()) << 32) + ((u128::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// [`TimeWindow::DEFAULT`]`.check(id, now_unix)`.
pub fn check_time(id: MsgId, now_unix: UnixTime) -> Result<(), MsgIdReject> {
    TimeWindow::DEFAULT.check(id, now_unix)
}

/// All inbound msg_id checks for one session, in the order the verdicts are meant to be reported: parity (18),
/// time (16/17), then replay (duplicate / 20).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InboundMsgIds<const N: usize = DEFAULT_REPLAY_WINDOW> {
    peer: Role,
    time: TimeWindow,
    window: ReplayWindow<N>,
    /// Ids below it are refused as too old ([`MsgIdReject::TooLow`]), whatever the time window says: a session
    /// that starts without the replay state of its past (see [`set_floor`](Self::set_floor)).
    floor: MsgId,
}

impl<const N: usize> InboundMsgIds<N> {
    /// Checks for messages sent by `peer` (the server, on a client).
    pub const fn new(peer: Role, time: TimeWindow) -> Self {
        InboundMsgIds {
            peer,
            time,
            window: ReplayWindow::new(),
            floor: MsgId(0),
        }
    }

    /// Whether `id` would be accepted. `enforce_time` applies this window's time check (a DC always does); the
    /// client engine passes `false` and applies its own window, whose future edge is widened while its clock was
    /// set from a first server message that may have been held back (`Clock::lag_bound`), and skips it for a
    /// `bad_msg_notification` 16/17 or `bad_server_salt` about our own recent id (item 34's exception). The floor
    /// ([`set_floor`](Self::set_floor)) applies either way.
    pub fn check(&self, id: MsgId, now: UnixTime, enforce_time: bool) -> Result<(), MsgIdReject> {
        check_parity(id, self.peer)?;
        if enforce_time {
            self.time.check(id, now)?;
        }
        if id < self.floor {
            return Err(MsgIdReject::TooLow);
        }
        self.window.check(id)
    }

    /// [`check`](Self::check), then remember `id` in the replay window.
    pub fn accept(&mut self, id: MsgId, now: UnixTime, enforce_time: bool) -> Result<(), MsgIdReject> {
        check_parity(id, self.peer)?;
        if enforce_time {
            self.time.check(id, now)?;
        }
        if id < self.floor {
            return Err(MsgIdReject::TooLow);
        }
        self.window.insert(id)
    }

    /// The replay window.
    pub const fn window(&self) -> &ReplayWindow<N> {
        &self.window
    }

    /// Makes this what [`new`](Self::new) returns, in place (no `N`-entry window on the stack).
    pub fn reinit(&mut self, peer: Role, time: TimeWindow) {
        self.peer = peer;
        self.time = time;
        self.reset();
    }

    /// Forgets all received ids and the floor (a new session).
    pub fn reset(&mut self) {
        self.window.clear();
        self.floor = MsgId(0);
    }

    /// Refuses every id below `floor` from now on, as [`MsgIdReject::TooLow`] (code 16: the sender re-sends under
    /// a new id). A DC sets it when a session starts with an empty window although copies of its earlier messages
    /// may exist (item 33): such a copy is refused instead of executed again.
    pub fn set_floor(&mut self, floor: MsgId) {
        self.floor = floor;
    }

    /// The floor set by [`set_floor`](Self::set_floor) (0: none).
    pub const fn floor(&self) -> MsgId {
        self.floor
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_exactly() {
        assert_eq!(MsgIdReject::TooLow.bad_msg_code(false).map(BadMsgCode::code), Some(16));
        assert_eq!(MsgIdReject::TooHigh.bad_msg_code(false).map(BadMsgCode::code), Some(17));
        assert_eq!(
            MsgIdReject::BadParity.bad_msg_code(false).map(BadMsgCode::code),
            Some(18)
        );
        assert_eq!(
            MsgIdReject::Duplicate.bad_msg_code(true).map(BadMsgCode::code),
            Some(19)
        );
        assert_eq!(MsgIdReject::Duplicate.bad_msg_code(false), None);
        assert_eq!(
            MsgIdReject::OlderThanWindow.bad_msg_code(false).map(BadMsgCode::code),
            Some(20)
        );
    }

    #[test]
    fn not_full_window_accepts_lower_ids() {
        let mut w: ReplayWindow<4> = ReplayWindow::new();
        w.insert(MsgId(100)).unwrap();
        w.insert(MsgId(50)).unwrap();
        assert_eq!(w.lowest(), Some(MsgId(50)));
        w.insert(MsgId(200)).unwrap();
        w.insert(MsgId(300)).unwrap();
        assert_eq!(w.insert(MsgId(40)), Err(MsgIdReject::OlderThanWindow));
        w.insert(MsgId(150)).unwrap();
        assert!(w.iter().eq([100, 150, 200, 300].map(MsgId)));
    }

    #[test]
    fn contains_and_is_empty_follow_what_was_inserted() {
        let mut w: ReplayWindow<4> = ReplayWindow::new();
        assert!(w.is_empty());
        assert!(!w.contains(MsgId(100)));
        w.insert(MsgId(100)).unwrap();
        assert!(!w.is_empty());
        assert!(w.contains(MsgId(100)));
        assert!(!w.contains(MsgId(104)));
    }

    /// The floor refuses ids strictly below it, in `check` and in `accept` alike; the floor itself passes.
    #[test]
    fn floor_edges_in_check_and_accept() {
        let floor = MsgId(1000 << 32);
        let mut ids: InboundMsgIds<8> = InboundMsgIds::new(Role::Client, TimeWindow::DEFAULT);
        ids.set_floor(floor);
        let below = MsgId(floor.0 - 4);
        assert_eq!(ids.check(below, UnixTime(1000), false), Err(MsgIdReject::TooLow));
        assert_eq!(ids.accept(below, UnixTime(1000), false), Err(MsgIdReject::TooLow));
        assert_eq!(ids.check(floor, UnixTime(1000), false), Ok(()));
        assert_eq!(ids.accept(floor, UnixTime(1000), false), Ok(()));
        assert!(ids.window().contains(floor));
    }

    #[test]
    fn fractional_durations_count() {
        let w = TimeWindow {
            past: Duration::from_millis(500),
            future: Duration::from_millis(500),
        };
        let now = UnixTime(1000);
        assert_eq!(w.check(MsgId((1000 << 32) + (1 << 31)), now), Ok(()));
        assert_eq!(
            w.check(MsgId((1000 << 32) + (1 << 31) + 4), now),
            Err(MsgIdReject::TooHigh)
        );
        assert_eq!(
            w.check(MsgId((999 << 32) + (1 << 31) - 4), now),
            Err(MsgIdReject::TooLow)
        );
    }
}
