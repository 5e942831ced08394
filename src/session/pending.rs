//! The sent-message tracker: every outbound message we may still have to resend or expect an answer to.
//!
//! It validates the ids the peer refers to (`rpc_result`, `bad_msg_notification`, `bad_server_salt`, `pong`,
//! `future_salts`, `msgs_state_info`: items 42-45, 47), schedules resends with exponential backoff, requeues
//! what a new server session lost (item 46), and bounds itself by count and by bytes (item 54).
//!
//! Bodies are not stored here: the engine keeps them in its own arena and gives the tracker an opaque
//! [`BodyHandle`], which comes back when the entry is released so the engine can free the space.
//!
//! A notification's reference is proven by a [`SentRef`], which only this tracker creates and only for an id it
//! tracks. The clock and salt updates ([`Clock`](super::Clock), [`ClientSalts`](super::ClientSalts)) demand one,
//! so a replayed or forged notification about an id we never sent, or no longer track, changes nothing (B20).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

use super::{limits::DEFAULT_UNACKED_MSGS, msg_id::MsgId};
use crate::time::Instant;

/// Where the engine keeps a message's body (an arena offset, a slot index...); opaque to the tracker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BodyHandle(pub u32);

/// What a tracked message is, which decides what may refer to it and whether an ack settles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SentKind {
    /// An RPC query; settled by its `rpc_result` (an ack only stops resending).
    RpcQuery,
    /// A content-related service message expecting no answer (e.g. `msgs_state_info`); settled by an ack.
    Service,
    /// A `msg_container`; never resent itself (its members are), dropped when its last member is settled.
    Container,
    /// A `ping`; settled by the `pong` carrying the same msg_id and ping_id (item 45).
    Ping {
        /// The ping_id we sent.
        ping_id: u64,
    },
    /// A `get_future_salts`; settled by the `future_salts` naming it (item 44).
    GetFutureSalts,
    /// A `msgs_state_req`; settled by the `msgs_state_info` naming it (item 47).
    StateReq,
}

impl SentKind {
    /// Whether an answer, not just an ack, settles the message.
    pub const fn awaits_answer(self) -> bool {
        matches!(
            self,
            SentKind::RpcQuery | SentKind::Ping { .. } | SentKind::GetFutureSalts | SentKind::StateReq
        )
    }
}

/// Proof that a msg_id names a message this session sent and still tracks.
///
/// Only [`SentTracker`] creates one, and it is neither `Clone` nor constructible elsewhere; the clock and salt
/// updates that a peer's notification may trigger require it (items 35, 43).
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SentRef {
    id: MsgId,
    kind: SentKind,
    seq_no: u32,
}

impl SentRef {
    /// The referenced message's id.
    pub const fn id(&self) -> MsgId {
        self.id
    }

    /// What it was.
    pub const fn kind(&self) -> SentKind {
        self.kind
    }

    /// The seq_no it was sent with (a `bad_msg_notification` echoes it).
    pub const fn seq_no(&self) -> u32 {
        self.seq_no
    }
}

/// A message to start tracking, right after it was first sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NewSent {
    /// Its msg_id.
    pub id: MsgId,
    /// Its seq_no.
    pub seq_no: u32,
    /// Body bytes the engine keeps for it (counted against the byte limit; 0 for a container, whose members
    /// carry the bytes).
    pub bytes: u32,
    /// Where the engine keeps the body.
    pub handle: BodyHandle,
    /// What it is.
    pub kind: SentKind,
    /// The container it travelled in, if any.
    pub container: Option<MsgId>,
}

/// A message the tracker released: the engine frees `handle`.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resolved {
    /// Proof of the reference (e.g. for a salt adopted from a matching `future_salts`).
    pub proof: SentRef,
    /// The body to free.
    pub handle: BodyHandle,
    /// Its size.
    pub bytes: u32,
    /// When it was first sent (for round-trip statistics).
    pub sent_at: Instant,
}

/// What an ack did.
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Acked {
    /// The message is settled and released.
    Released(Resolved),
    /// The peer has it, so resending stops, but an answer is still expected (an RPC query, ping...).
    AwaitingAnswer,
}

/// A message whose resend deadline has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Due {
    /// Its msg_id.
    pub id: MsgId,
    /// Its body.
    pub handle: BodyHandle,
    /// What it is.
    pub kind: SentKind,
    /// Resends so far.
    pub attempts: u8,
    /// The retry limit is reached: the engine must give up on it ([`SentTracker::remove`]) and fail the request,
    /// not resend.
    pub exhausted: bool,
}

/// When to resend a message nobody acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResendPolicy {
    /// Wait before the first resend.
    pub initial: Duration,
    /// Longest wait between resends (the doubling stops here).
    pub max: Duration,
    /// Resends before giving up.
    pub max_attempts: u8,
}

impl ResendPolicy {
    /// 5 s, doubling up to 80 s, 6 resends: about five minutes before a request fails.
    pub const DEFAULT: ResendPolicy = ResendPolicy {
        initial: Duration::from_secs(5),
        max: Duration::from_secs(80),
        max_attempts: 6,
    };

    /// The wait after `attempts` resends: `initial · 2^attempts`, capped at `max`.
    pub fn timeout(&self, attempts: u8) -> Duration {
        let factor = 1u32.checked_shl(u32::from(attempts)).unwrap_or(u32::MAX);
        self.initial.checked_mul(factor).unwrap_or(self.max).min(self.max)
    }
}

impl Default for ResendPolicy {
    fn default() -> Self {
        ResendPolicy::DEFAULT
    }
}

/// A message could not be tracked (or re-tracked); nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TrackError {
    /// The count limit `N` is reached: backpressure, wait for acks or answers.
    QueueFull,
    /// The byte limit would be exceeded: backpressure.
    BytesFull,
    /// The id is already tracked (a msg_id generator misuse).
    DuplicateId,
    /// The id is not tracked.
    UnknownId,
}

impl fmt::Display for TrackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrackError::QueueFull => "too many unacknowledged messages",
            TrackError::BytesFull => "too many unacknowledged bytes",
            TrackError::DuplicateId => "msg_id already tracked",
            TrackError::UnknownId => "msg_id not tracked",
        })
    }
}

impl core::error::Error for TrackError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Entry {
    id: MsgId,
    seq_no: u32,
    bytes: u32,
    handle: BodyHandle,
    kind: SentKind,
    container: Option<MsgId>,
    sent_at: Instant,
    resend_at: Instant,
    attempts: u8,
    acked: bool,
}

impl Entry {
    fn proof(&self) -> SentRef {
        SentRef {
            id: self.id,
            kind: self.kind,
            seq_no: self.seq_no,
        }
    }

    fn resendable(&self) -> bool {
        !self.acked && self.kind != SentKind::Container
    }
}

/// Outbound messages not yet settled, at most `N` of them and at most `max_bytes` of bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SentTracker<const N: usize = DEFAULT_UNACKED_MSGS> {
    /// Sorted by id.
    entries: heapless::Vec<Entry, N>,
    bytes: usize,
    max_bytes: usize,
    policy: ResendPolicy,
}

impl<const N: usize> SentTracker<N> {
    /// An empty tracker holding at most `max_bytes` of bodies.
    pub const fn new(max_bytes: usize, policy: ResendPolicy) -> Self {
        SentTracker {
            entries: heapless::Vec::new(),
            bytes: 0,
            max_bytes,
            policy,
        }
    }

    /// Messages tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Body bytes tracked.
    pub const fn bytes(&self) -> usize {
        self.bytes
    }

    /// The byte limit.
    pub const fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The resend policy.
    pub const fn policy(&self) -> ResendPolicy {
        self.policy
    }

    fn find(&self, id: MsgId) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, |e| e.id)
    }

    fn entry(&self, id: MsgId) -> Option<&Entry> {
        self.find(id).ok().and_then(|i| self.entries.get(i))
    }

    fn entry_mut(&mut self, id: MsgId) -> Option<&mut Entry> {
        let i = self.find(id).ok()?;
        self.entries.get_mut(i)
    }

    /// Whether a message of `bytes` would fit now; the engine asks before encoding it.
    pub fn can_track(&self, bytes: u32) -> Result<(), TrackError> {
        if self.entries.is_full() {
            return Err(TrackError::QueueFull);
        }
        let total = self.bytes.checked_add(bytes as usize).ok_or(TrackError::BytesFull)?;
        if total > self.max_bytes {
            return Err(TrackError::BytesFull);
        }
        Ok(())
    }

    /// Starts tracking a message sent at `now`; its first resend falls due after `policy.initial`.
    pub fn track(&mut self, now: Instant, msg: NewSent) -> Result<(), TrackError> {
        self.can_track(msg.bytes)?;
        let pos = match self.find(msg.id) {
            Ok(_) => return Err(TrackError::DuplicateId),
            Err(pos) => pos,
        };
        let entry = Entry {
            id: msg.id,
            seq_no: msg.seq_no,
            bytes: msg.bytes,
            handle: msg.handle,
            kind: msg.kind,
            container: msg.container,
            sent_at: now,
            resend_at: now.saturating_add(self.policy.timeout(0)),
            attempts: 0,
            acked: false,
        };
        self.entries.insert(pos, entry).map_err(|_| TrackError::QueueFull)?;
        self.bytes += msg.bytes as usize;
        Ok(())
    }

    /// A proof that `id` names a message we sent and still track (for `bad_msg_notification` and
    /// `bad_server_salt`, item 43), or `None`: then the notification must be ignored. Changes nothing.
    pub fn reference(&self, id: MsgId) -> Option<SentRef> {
        self.entry(id).map(Entry::proof)
    }

    /// The container `id` last travelled in, if tracked and sent in one.
    pub fn container_of(&self, id: MsgId) -> Option<MsgId> {
        self.entry(id).and_then(|e| e.container)
    }

    /// What `id` was sent as, if tracked.
    pub fn kind_of(&self, id: MsgId) -> Option<SentKind> {
        self.entry(id).map(|e| e.kind)
    }

    /// Removes `id` if `accept` approves of its kind; frees an emptied container.
    fn take_if(&mut self, id: MsgId, accept: impl FnOnce(SentKind) -> bool) -> Option<Resolved> {
        let i = self.find(id).ok()?;
        if !accept(self.entries.get(i)?.kind) {
            return None;
        }
        let e = self.entries.remove(i);
        self.bytes -= e.bytes as usize;
        if let Some(c) = e.container
            && !self.entries.iter().any(|m| m.container == Some(c))
            && let Ok(ci) = self.find(c)
            && self.entries.get(ci).is_some_and(|ce| ce.kind == SentKind::Container)
        {
            let ce = self.entries.remove(ci);
            self.bytes -= ce.bytes as usize;
        }
        Some(Resolved {
            proof: e.proof(),
            handle: e.handle,
            bytes: e.bytes,
            sent_at: e.sent_at,
        })
    }

    /// An `rpc_result` for `req_msg_id` (item 42): `Some` for the first result of an RPC query we track, `None`
    /// for an unknown id, a duplicate result or an id that was not a query; then ignore the result (still ack it).
    pub fn resolve_rpc(&mut self, req_msg_id: MsgId) -> Option<Resolved> {
        self.take_if(req_msg_id, |k| k == SentKind::RpcQuery)
    }

    /// A `pong` (item 45): settles our `ping` only if both its msg_id and ping_id match; otherwise `None` and
    /// nothing changes.
    pub fn resolve_pong(&mut self, msg_id: MsgId, ping_id: u64) -> Option<Resolved> {
        self.take_if(msg_id, |k| k == SentKind::Ping { ping_id })
    }

    /// A `future_salts` (item 44): settles our `get_future_salts`; the returned proof lets
    /// [`ClientSalts::store_future_salts`](super::ClientSalts::store_future_salts) accept the salts.
    pub fn resolve_future_salts(&mut self, req_msg_id: MsgId) -> Option<Resolved> {
        self.take_if(req_msg_id, |k| k == SentKind::GetFutureSalts)
    }

    /// A `msgs_state_info` (item 47): settles our `msgs_state_req`.
    pub fn resolve_state_req(&mut self, req_msg_id: MsgId) -> Option<Resolved> {
        self.take_if(req_msg_id, |k| k == SentKind::StateReq)
    }

    /// Stops tracking `id` whatever it is (the request failed, was cancelled or is being given up).
    pub fn remove(&mut self, id: MsgId) -> Option<Resolved> {
        self.take_if(id, |_| true)
    }

    /// A `msgs_ack` naming `id`: a message expecting no answer is released; one awaiting an answer stops being
    /// resent. `None` if `id` is not tracked (ignored).
    pub fn ack(&mut self, id: MsgId) -> Option<Acked> {
        let e = self.entry_mut(id)?;
        if e.kind.awaits_answer() {
            e.acked = true;
            return Some(Acked::AwaitingAnswer);
        }
        self.take_if(id, |_| true).map(Acked::Released)
    }

    /// Ids of the tracked messages that travelled in container `container`.
    pub fn members_of(&self, container: MsgId) -> impl Iterator<Item = MsgId> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.container == Some(container))
            .map(|e| e.id)
    }

    /// The message was resent at `now` unchanged (byte-identical, or inside a new container `container`), item 38.
    /// Counts the attempt and pushes its deadline out by the backoff.
    pub fn mark_resent(&mut self, id: MsgId, now: Instant, container: Option<MsgId>) -> Result<(), TrackError> {
        let policy = self.policy;
        let e = self.entry_mut(id).ok_or(TrackError::UnknownId)?;
        e.attempts = e.attempts.saturating_add(1);
        e.resend_at = now.saturating_add(policy.timeout(e.attempts));
        e.container = container;
        Ok(())
    }

    /// The message is being resent under a new msg_id and seq_no (after `bad_msg_notification` 16/17/48... or a
    /// `msgs_state_info` showing it was not received, item 38/43). The old id stops being tracked, so a late
    /// notification naming it is ignored.
    pub fn replace_id(&mut self, old: MsgId, new: MsgId, new_seq_no: u32, now: Instant) -> Result<(), TrackError> {
        let i = self.find(old).map_err(|_| TrackError::UnknownId)?;
        if self.find(new).is_ok() {
            return Err(TrackError::DuplicateId);
        }
        let mut e = self.entries.remove(i);
        e.id = new;
        e.seq_no = new_seq_no;
        e.container = None;
        e.acked = false;
        e.attempts = e.attempts.saturating_add(1);
        e.resend_at = now.saturating_add(self.policy.timeout(e.attempts));
        let pos = match self.find(new) {
            Ok(p) | Err(p) => p,
        };
        // Cannot fail: one slot was just freed.
        self.entries.insert(pos, e).map_err(|_| TrackError::QueueFull)
    }

    /// After `new_session_created` (item 46): every message below `first_msg_id` (the first id the new server
    /// session saw) may be lost with the old session, so each becomes due for resending at `now`, acked or not
    /// (an acked query's answer died with the old session). Returns how many.
    pub fn requeue_before(&mut self, first_msg_id: MsgId, now: Instant) -> usize {
        let mut n = 0;
        for e in self
            .entries
            .iter_mut()
            .filter(|e| e.id < first_msg_id && e.kind != SentKind::Container)
        {
            e.acked = false;
            e.resend_at = now;
            n += 1;
        }
        n
    }

    /// The earliest resend deadline, for the engine's `poll_timeout`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| e.resendable())
            .map(|e| e.resend_at)
            .min()
    }

    /// The lowest-id message whose resend deadline has passed at `now`. The engine then resends it
    /// ([`mark_resent`](Self::mark_resent) / [`replace_id`](Self::replace_id)) or, if `exhausted`, gives up
    /// ([`remove`](Self::remove)); either moves it out of the way, so looping until `None` terminates.
    pub fn next_due(&self, now: Instant) -> Option<Due> {
        self.entries
            .iter()
            .find(|e| e.resendable() && e.resend_at <= now)
            .map(|e| Due {
                id: e.id,
                handle: e.handle,
                kind: e.kind,
                attempts: e.attempts,
                exhausted: e.attempts >= self.policy.max_attempts,
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(id: u64, kind: SentKind, container: Option<u64>) -> NewSent {
        NewSent {
            id: MsgId(id),
            seq_no: 1,
            bytes: 10,
            handle: BodyHandle(id as u32),
            kind,
            container: container.map(MsgId),
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = ResendPolicy::DEFAULT;
        assert_eq!(p.timeout(0), Duration::from_secs(5));
        assert_eq!(p.timeout(3), Duration::from_secs(40));
        assert_eq!(p.timeout(4), Duration::from_secs(80));
        assert_eq!(p.timeout(200), Duration::from_secs(80));
    }

    #[test]
    fn container_released_with_last_member() {
        let mut t: SentTracker<8> = SentTracker::new(1000, ResendPolicy::DEFAULT);
        let now = Instant::from_secs(1);
        t.track(now, msg(8, SentKind::RpcQuery, Some(16))).unwrap();
        t.track(now, msg(12, SentKind::Service, Some(16))).unwrap();
        t.track(
            now,
            NewSent {
                bytes: 0,
                ..msg(16, SentKind::Container, None)
            },
        )
        .unwrap();
        assert!(t.members_of(MsgId(16)).eq([MsgId(8), MsgId(12)]));
        assert!(matches!(t.ack(MsgId(12)), Some(Acked::Released(_))));
        assert_eq!(t.len(), 2);
        assert_eq!(t.ack(MsgId(8)), Some(Acked::AwaitingAnswer));
        assert_eq!(t.poll_timeout(), None); // acked query and container are not resent
        assert!(t.resolve_rpc(MsgId(8)).is_some());
        assert!(t.is_empty());
        assert_eq!(t.bytes(), 0);
    }

    #[test]
    fn resend_schedule_and_exhaustion() {
        let policy = ResendPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
            max_attempts: 2,
        };
        let mut t: SentTracker<4> = SentTracker::new(1000, policy);
        t.track(Instant::ZERO, msg(4, SentKind::RpcQuery, None)).unwrap();
        assert_eq!(t.poll_timeout(), Some(Instant::from_secs(1)));
        assert_eq!(t.next_due(Instant::from_millis(999)), None);
        let d = t.next_due(Instant::from_secs(1)).unwrap();
        assert!(!d.exhausted && d.attempts == 0);
        t.mark_resent(MsgId(4), Instant::from_secs(1), None).unwrap();
        assert_eq!(t.poll_timeout(), Some(Instant::from_secs(3)));
        t.replace_id(MsgId(4), MsgId(20), 3, Instant::from_secs(3)).unwrap();
        assert!(t.reference(MsgId(4)).is_none());
        assert_eq!(t.reference(MsgId(20)).unwrap().seq_no(), 3);
        assert_eq!(t.poll_timeout(), Some(Instant::from_secs(7)));
        assert!(t.next_due(Instant::from_secs(7)).unwrap().exhausted);
        assert!(t.remove(MsgId(20)).is_some());
        assert_eq!(
            t.replace_id(MsgId(20), MsgId(24), 5, Instant::ZERO),
            Err(TrackError::UnknownId)
        );
    }
}
