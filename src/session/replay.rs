//! Checks on every received msg_id: sender parity (item 32), the replay window (item 33) and the time window
//! (item 34). Each failure is a typed [`MsgIdReject`] that maps onto the `bad_msg_notification` code a server
//! answers with (or on nothing, where the spec says to ignore silently).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

use super::{
    bad_msg::BadMsgCode,
    limits::DEFAULT_REPLAY_WINDOW,
    msg_id::{MsgId, Role},
    ring::{Keyed, SortedRing},
    seqno::{self, SeqNoError},
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

/// One remembered message: its msg_id and, where the receiver checked it (a DC, item 37), its seq_no. An id kept
/// only so that no copy of it is accepted (a refused message, or any message a client receives) has none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Received {
    id: MsgId,
    seq_no: Option<u32>,
}

impl Keyed for Received {
    fn key(&self) -> u64 {
        self.id.0
    }
}

/// The received-msg_id replay window (item 33, SG): the last `N` ids are remembered. A duplicate is dropped; once
/// the window is full, an id lower than all remembered is dropped; otherwise the id is inserted and, if the window
/// was full, the lowest is forgotten.
///
/// Container inner ids go through the same window (item 48). Checking and inserting are separate so the engine
/// inserts only once every other check on the message has passed.
///
/// A DC also keeps each accepted message's seq_no here ([`insert_with_seq`](Self::insert_with_seq)) and checks new
/// ones against them ([`check_seq`](Self::check_seq), item 37): one record per message instead of a second window
/// of the same size beside this one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReplayWindow<const N: usize = DEFAULT_REPLAY_WINDOW> {
    ids: SortedRing<Received, N>,
    /// The seq_no of the newest message forgotten that had one. Messages leave in msg_id order, so it is the highest
    /// seq_no below everything remembered: the lower bound [`check_seq`](Self::check_seq) falls back on when no
    /// remembered message below the new one has a seq_no.
    evicted_seq_no: Option<u32>,
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
            ids: SortedRing::new(Received {
                id: MsgId(0),
                seq_no: None,
            }),
            evicted_seq_no: None,
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
        self.insert_record(Received { id, seq_no: None })
    }

    /// [`insert`](Self::insert), remembering the message's seq_no for [`check_seq`](Self::check_seq).
    pub fn insert_with_seq(&mut self, id: MsgId, seq_no: u32) -> Result<(), MsgIdReject> {
        self.insert_record(Received {
            id,
            seq_no: Some(seq_no),
        })
    }

    fn insert_record(&mut self, r: Received) -> Result<(), MsgIdReject> {
        let pos = match self.ids.search(r.id.0) {
            Ok(_) => return Err(MsgIdReject::Duplicate),
            Err(0) if self.ids.is_full() => return Err(MsgIdReject::OlderThanWindow),
            Err(pos) => pos,
        };
        let pos = if self.ids.is_full() {
            // The new id is above the lowest (pos > 0), so evicting the lowest shifts its position by one.
            if let Some(seq_no) = self.ids.pop_front().and_then(|old| old.seq_no) {
                self.evicted_seq_no = Some(seq_no);
            }
            pos - 1
        } else {
            pos
        };
        // Cannot fail: there is room and pos is within bounds.
        self.ids.insert(pos, r).map_err(|_| MsgIdReject::OlderThanWindow)
    }

    /// The server's seq_no check (errors 32-35, item 37) of a message whose msg_id passed [`check`](Self::check):
    /// parity against `content_related`, then order against the nearest messages below and above it that were
    /// remembered with a seq_no (an id remembered without one, such as a refused message's, is skipped; below
    /// everything remembered, the newest forgotten one stands in). Exact as comparing with every message accepted
    /// in the session would be (see [`SeqNoChecker`](super::SeqNoChecker)). Work: at most `N` records.
    pub fn check_seq(&self, id: MsgId, seq_no: u32, content_related: bool) -> Result<(), SeqNoError> {
        seqno::check_parity(seq_no, content_related)?;
        let (below, above) = match self.ids.search(id.0) {
            Ok(i) => (i, i + 1),
            Err(i) => (i, i),
        };
        let below = (0..below)
            .rev()
            .find_map(|i| self.ids.get(i).and_then(|r| r.seq_no))
            .or(self.evicted_seq_no);
        let above = (above..self.ids.len()).find_map(|i| self.ids.get(i).and_then(|r| r.seq_no));
        seqno::check_order(below, above, seq_no)
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
        self.ids.first().map(|r| r.id)
    }

    /// The highest id remembered.
    pub fn highest(&self) -> Option<MsgId> {
        self.ids.last().map(|r| r.id)
    }

    /// Remembered ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = MsgId> + '_ {
        self.ids.iter().map(|r| r.id)
    }

    /// Forgets everything (a new session).
    pub fn clear(&mut self) {
        self.ids.clear();
        self.evicted_seq_no = None;
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
        self.check_bounds(id, now, enforce_time)?;
        self.window.check(id)
    }

    /// [`check`](Self::check), then remember `id` in the replay window.
    pub fn accept(&mut self, id: MsgId, now: UnixTime, enforce_time: bool) -> Result<(), MsgIdReject> {
        self.check_bounds(id, now, enforce_time)?;
        self.window.insert(id)
    }

    /// [`accept`](Self::accept), remembering the message's seq_no too (a DC, for
    /// [`ReplayWindow::check_seq`]).
    pub fn accept_with_seq(
        &mut self,
        id: MsgId,
        seq_no: u32,
        now: UnixTime,
        enforce_time: bool,
    ) -> Result<(), MsgIdReject> {
        self.check_bounds(id, now, enforce_time)?;
        self.window.insert_with_seq(id, seq_no)
    }

    /// Everything [`check`](Self::check) decides before the replay window: parity, time, floor.
    fn check_bounds(&self, id: MsgId, now: UnixTime, enforce_time: bool) -> Result<(), MsgIdReject> {
        check_parity(id, self.peer)?;
        if enforce_time {
            self.time.check(id, now)?;
        }
        if id < self.floor {
            return Err(MsgIdReject::TooLow);
        }
        Ok(())
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
    fn seq_check_skips_ids_kept_without_a_seq_no_and_remembers_the_forgotten() {
        use crate::session::seqno::SeqNoError;
        let mut w: ReplayWindow<3> = ReplayWindow::new();
        w.insert_with_seq(MsgId(100), 5).unwrap();
        // A refused message's id: kept so no copy is accepted, but its seq_no proves nothing.
        w.insert(MsgId(104)).unwrap();
        // The neighbour below 108 is 104, which has no seq_no: 100's 5 decides.
        assert_eq!(w.check_seq(MsgId(108), 4, false), Err(SeqNoError::TooLow));
        assert_eq!(w.check_seq(MsgId(108), 5, true), Err(SeqNoError::TooLow));
        assert_eq!(w.check_seq(MsgId(108), 6, false), Ok(()));
        w.insert_with_seq(MsgId(112), 7).unwrap();
        // Full: 100 (seq_no 5) is forgotten; below everything remembered it still bounds 108's seq_no.
        w.insert(MsgId(116)).unwrap();
        assert_eq!(w.lowest(), Some(MsgId(104)));
        assert_eq!(w.check_seq(MsgId(108), 4, false), Err(SeqNoError::TooLow));
        assert_eq!(w.check_seq(MsgId(108), 7, true), Err(SeqNoError::TooHigh));
        assert_eq!(w.check_seq(MsgId(108), 6, false), Ok(()));
        w.clear();
        assert_eq!(w.check_seq(MsgId(108), 1, true), Ok(()));
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
