//! The outbox: every message this engine sent or will send and may have to send again, its body in the arena and
//! its state in a [`Slot`]; and how it is queued, renamed (a new msg_id and seq_no, items 38 and 43) or forced out
//! again byte-identical.
//!
//! Bodies come in from [`Session::send`], [`Session::answer`] and the engine's own service messages
//! ([`Core::queue_tl`]); the packer (`packer.rs`) copies them into packets and hands them to the [`SentTracker`];
//! an acknowledgement, an answer or a failure frees them ([`Outbox::free`]).
//!
//! [`Session::send`]: super::Session::send
//! [`Session::answer`]: super::Session::answer
//! [`SentTracker`]: crate::session::SentTracker
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use zeroize::Zeroize;

use crate::buffer::Buffer;

use crate::session::event::{FailReason, SendError};
use crate::session::msg_id::{MsgId, Role};
use crate::session::pending::{BodyHandle, SentKind};
use crate::time::Instant;
#[cfg(feature = "alloc")]
use crate::tl::GzipPacked;
use crate::tl::{self, TlWrite, Writer};

use super::recv::peek_ctor;
use super::{Core, INNER_HDR, MsgKind};

/// The handle a tracked container carries: containers own no body.
pub(super) const NO_BODY: BodyHandle = BodyHandle(u32::MAX);

/// One outbound message whose body lives in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Slot {
    pub(super) off: u32,
    pub(super) len: u32,
    pub(super) id: MsgId,
    pub(super) seq_no: u32,
    pub(super) kind: SentKind,
    /// Kept until settled (false: sent once, then freed).
    pub(super) keep: bool,
    /// Waiting for its (next) first transmission.
    pub(super) queued: bool,
    /// Already known to the tracker (re-queued under a new msg_id).
    pub(super) in_tracker: bool,
    /// Client queries: when they fail with `Timeout`.
    pub(super) deadline: Option<Instant>,
    /// The msg_id `send` returned: events name it even after a resend under a new msg_id.
    pub(super) orig: MsgId,
    /// Transmissions under the current msg_id.
    pub(super) sends: u8,
    /// Its body names its own msg_id (a bind request): never renamed, failed instead.
    pub(super) pinned: bool,
    /// When it was first sent, and last checked with `msgs_state_req`.
    pub(super) sent_at: Option<Instant>,
    pub(super) checked_at: Option<Instant>,
    /// The peer acknowledged it: it has the message, so it is never renamed.
    pub(super) acked: bool,
}

/// The messages this engine sent or will send and may still have to send again: their plaintext bodies packed into
/// one `TX`-byte arena (no allocation, compacted on every free) and one [`Slot`] each, at most `MSGS`.
///
/// Bodies come in from [`Session::send`], [`Session::answer`] and the engine's own service messages; the packer
/// copies them into packets (`packer.rs`), and an acknowledgement, an answer or a failure frees them.
///
/// [`Session::send`]: super::Session::send
/// [`Session::answer`]: super::Session::answer
pub(super) struct Outbox<const TX: usize, const MSGS: usize> {
    pub(super) arena: Buffer<TX>,
    /// Arena bytes in use, from 0: bodies are packed with no gaps.
    pub(super) used: usize,
    pub(super) slots: [Option<Slot>; MSGS],
    /// Messages to resend byte-identical under their own msg_ids in the next packet (the peer asked for them, or
    /// `msgs_state_info` showed them lost): item 38's "in a new container".
    pub(super) forced: heapless::Vec<MsgId, MSGS>,
}

impl<const TX: usize, const MSGS: usize> Outbox<TX, MSGS> {
    pub(super) const fn new() -> Self {
        Outbox {
            arena: Buffer::new(),
            used: 0,
            slots: [None; MSGS],
            forced: heapless::Vec::new(),
        }
    }

    /// Empties the outbox in place, as [`new`](Self::new) makes it, wiping the arena's bodies (plaintext of the
    /// old session) instead of building a second `TX`-byte arena on the stack.
    pub(super) fn clear(&mut self) {
        let Outbox {
            arena,
            used,
            slots,
            forced,
        } = self;
        arena.wipe();
        arena.release();
        *used = 0;
        slots.fill(None);
        forced.clear();
    }

    /// Allocates a slot and writes its body with `f`, which gets exactly `len` bytes; `limit` bounds the arena
    /// bytes in use ([`Limits::max_unacked_bytes`]).
    ///
    /// [`Limits::max_unacked_bytes`]: crate::session::Limits::max_unacked_bytes
    pub(super) fn alloc(
        &mut self,
        len: usize,
        limit: usize,
        mut slot: Slot,
        f: impl FnOnce(&mut [u8]) -> Result<(), tl::Full>,
    ) -> Result<usize, SendError> {
        if !len.is_multiple_of(4) || len > TX {
            return Err(SendError::TooLarge);
        }
        if self.used + len > limit {
            return Err(SendError::QueueFull);
        }
        let idx = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(SendError::QueueFull)?;
        let off = self.used;
        // With `alloc` the arena grows to what is queued (its bodies kept); refused only by the allocator.
        if !self.arena.reserve(off + len, off) {
            return Err(SendError::QueueFull);
        }
        let dst = self
            .arena
            .as_mut_slice()
            .get_mut(off..off + len)
            .ok_or(SendError::QueueFull)?;
        f(dst).map_err(|_| SendError::TooLarge)?;
        self.used += len;
        slot.off = off as u32;
        slot.len = len as u32;
        if let Some(s) = self.slots.get_mut(idx) {
            *s = Some(slot);
        }
        Ok(idx)
    }

    /// Frees a slot and compacts the arena (bounded by `TX` bytes moved).
    pub(super) fn free(&mut self, h: BodyHandle) {
        if h == NO_BODY {
            return;
        }
        let Some(slot) = self.slots.get_mut(h.0 as usize).and_then(Option::take) else {
            return;
        };
        let (off, len) = (slot.off as usize, slot.len as usize);
        let end = self.used;
        let arena = self.arena.as_mut_slice();
        if off + len <= end && end <= arena.len() {
            arena.copy_within(off + len..end, off);
        }
        self.used -= len;
        if let Some(tail) = arena.get_mut(self.used..end) {
            tail.zeroize();
        }
        if self.used == 0 {
            // Nothing waits for an acknowledgement: an idle session gives a large arena back.
            self.arena.release();
        }
        for s in self.slots.iter_mut().flatten() {
            if s.off as usize > off {
                s.off -= len as u32;
            }
        }
    }

    pub(super) fn slot_by_id(&self, id: MsgId) -> Option<(usize, Slot)> {
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.filter(|s| s.id == id).map(|s| (i, s)))
    }

    pub(super) fn body_of(&self, s: &Slot) -> &[u8] {
        self.arena
            .as_slice()
            .get(s.off as usize..(s.off + s.len) as usize)
            .unwrap_or(&[])
    }

    /// The arena bytes of `s`, to write its body in place.
    pub(super) fn body_mut(&mut self, s: &Slot) -> Option<&mut [u8]> {
        self.arena
            .as_mut_slice()
            .get_mut(s.off as usize..(s.off + s.len) as usize)
    }

    /// Queues `id` for a byte-identical resend under its own msg_id (once).
    pub(super) fn force(&mut self, id: MsgId) {
        if !self.forced.contains(&id) {
            let _ = self.forced.push(id);
        }
    }

    pub(super) fn queries_in_flight(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.kind == SentKind::RpcQuery)
            .count()
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    pub(super) fn body_limit(&self) -> usize {
        self.cfg.limits.max_unacked_bytes.min(TX)
    }

    pub(super) fn send(&mut self, now: Instant, body: &[u8], kind: MsgKind) -> Result<MsgId, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let sent_kind = match (kind, self.role()) {
            (MsgKind::Query, Role::Client) => SentKind::RpcQuery,
            (MsgKind::Query, Role::Server) => return Err(SendError::NotReady),
            (MsgKind::Notice, _) => SentKind::Service,
        };
        if self.role.dc().is_some_and(|dc| !dc.session_known) {
            return Err(SendError::NotReady);
        }
        // A query must be able to end in an event: keep one event slot per query in flight.
        if sent_kind == SentKind::RpcQuery && self.outbox.queries_in_flight() + 1 > MSGS.saturating_sub(1) {
            return Err(SendError::QueueFull);
        }
        self.queue(now, sent_kind, true, false, body.len(), |d| {
            d.copy_from_slice(body);
            Ok(())
        })
    }

    /// `body` as `gzip_packed`, if the policy asks for it and it comes out smaller. Never a service constructor
    /// (the whole service schema, `auth.bindTempAuthKey` and `gzip_packed` itself included): a DC answers those
    /// itself and does not look inside gzip for them.
    #[cfg(feature = "alloc")]
    pub(super) fn gzipped(&self, body: &[u8]) -> Option<alloc::vec::Vec<u8>> {
        let policy = self.cfg.gzip?;
        if body.len() < policy.min_len {
            return None;
        }
        let ctor = peek_ctor(body)?;
        if tl::SCHEMA.iter().any(|&(_, c)| c == ctor) {
            return None;
        }
        let gz = tl::gzip::deflate_gzip(body, policy.level);
        let g = GzipPacked { packed_data: &gz };
        let len = g.tl_len();
        if len >= body.len() {
            return None;
        }
        let mut out = alloc::vec![0u8; len];
        let n = tl::encode(&g, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// Queues a content-related message. `keep`: tracked until settled; `response`: a DC answer (id ≡ 1 mod 4).
    pub(super) fn queue(
        &mut self,
        now: Instant,
        kind: SentKind,
        keep: bool,
        response: bool,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> Result<(), tl::Full>,
    ) -> Result<MsgId, SendError> {
        self.queue_as(now, kind, keep, response, true, len, f)
    }

    /// [`queue`](Self::queue), for a content-related message or not (`content`: an odd seq_no).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn queue_as(
        &mut self,
        now: Instant,
        kind: SentKind,
        keep: bool,
        response: bool,
        content: bool,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> Result<(), tl::Full>,
    ) -> Result<MsgId, SendError> {
        if keep && self.tracker.can_track(len as u32).is_err() {
            return Err(SendError::QueueFull);
        }
        let slot = Slot {
            off: 0,
            len: 0,
            id: MsgId(0),
            seq_no: 0,
            kind,
            keep,
            queued: true,
            in_tracker: false,
            deadline: None,
            orig: MsgId(0),
            sends: 0,
            acked: false,
            pinned: false,
            sent_at: None,
            checked_at: None,
        };
        let limit = self.body_limit();
        let idx = self.outbox.alloc(len, limit, slot, f)?;
        let id = if response {
            self.ids.next_response(now, &self.clock)
        } else {
            self.ids.next(now, &self.clock)
        };
        let seq = self.seq.next(content);
        let (Ok(id), Ok(seq)) = (id, seq) else {
            self.outbox.free(BodyHandle(idx as u32));
            return Err(SendError::Closed);
        };
        if let Some(Some(s)) = self.outbox.slots.get_mut(idx) {
            s.id = id;
            s.seq_no = seq;
            s.orig = id;
        }
        self.note_outbound(now);
        Ok(id)
    }

    pub(super) fn http_wait(&mut self, now: Instant, wait: tl::HttpWait) -> Result<MsgId, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if self.role() != Role::Client {
            return Err(SendError::NotReady);
        }
        let queued = self
            .outbox
            .slots
            .iter()
            .flatten()
            .copied()
            .find(|s| s.queued && !s.keep && peek_ctor(self.outbox.body_of(s)) == Some(tl::HttpWait::CONSTRUCTOR));
        if let Some(s) = queued {
            let dst = self.outbox.body_mut(&s).ok_or(SendError::TooLarge)?;
            wait.write(&mut Writer::new(dst)).map_err(|_| SendError::TooLarge)?;
            return Ok(s.id);
        }
        self.queue_as(now, SentKind::Service, false, false, false, wait.tl_len(), |d| {
            wait.write(&mut Writer::new(d))
        })
    }

    /// DC: whether something is waiting to be sent (what a held long poll is released for).
    pub(super) fn has_outbound(&self, now: Instant) -> bool {
        !self.outbox.forced.is_empty()
            || !self.owed.is_empty()
            || self.outbox.slots.iter().flatten().any(|s| s.queued)
            || self.tracker.next_due(now).is_some_and(|d| !d.exhausted)
    }

    /// Queues a service message written by `w` (a TL value).
    pub(super) fn queue_tl<T: TlWrite>(
        &mut self,
        now: Instant,
        kind: SentKind,
        keep: bool,
        response: bool,
        v: &T,
    ) -> bool {
        let len = v.tl_len();
        self.queue(now, kind, keep, response, len, |d| {
            let mut w = Writer::new(d);
            v.write(&mut w)
        })
        .is_ok()
    }

    /// Sends a refused message's body again under a new msg_id and seq_no (items 38, 43). A container's members
    /// are each re-sent.
    pub(super) fn resend_new_id(&mut self, now: Instant, id: MsgId) {
        self.resend_new_id_with(now, id, false);
    }

    /// [`resend_new_id`](Self::resend_new_id); `clock_fault`: the refusal was our clock's (a 16/17 that moved it by
    /// more than the DC's tolerance), so a message sent before under its id is renamed too (see `on_bad_msg`).
    pub(super) fn resend_new_id_with(&mut self, now: Instant, id: MsgId, clock_fault: bool) {
        if self.tracker.kind_of(id) == Some(SentKind::Container) {
            let mut members: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
            for m in self.tracker.members_of(id) {
                let _ = members.push(m);
            }
            let _ = self.tracker.remove(id);
            for m in members {
                // A member that travelled before this container may have been received and executed: it goes
                // again under its own msg_id (the DC drops a duplicate). Only a first transmission is renamed.
                if self
                    .outbox
                    .slot_by_id(m)
                    .is_some_and(|(_, s)| s.acked || (s.sends > 1 && !clock_fault))
                {
                    self.outbox.force(m);
                } else {
                    self.resend_one_new_id(now, m, clock_fault);
                }
            }
        } else {
            self.resend_one_new_id(now, id, clock_fault);
        }
    }

    /// Sends a message again under a new msg_id and seq_no; a message the peer acknowledged or may have from an
    /// earlier transmission is left alone.
    pub(super) fn resend_one_new_id(&mut self, now: Instant, id: MsgId, clock_fault: bool) {
        let Some((idx, slot)) = self.outbox.slot_by_id(id) else {
            return;
        };
        if slot.acked || (slot.sends > 1 && !clock_fault) {
            // The peer has it, or may have it from an earlier transmission (and may have executed it): never
            // renamed; its answer is awaited, or its attempts run out.
            return;
        }
        if slot.pinned {
            self.fail(id, FailReason::MustRebuild);
            return;
        }
        self.rename_slot(now, idx, id);
    }

    /// Gives the message in slot `idx` (now `id`) a new msg_id and seq_no and queues it to be sent again; a server
    /// response keeps its response parity. Nothing changes if no id can be made.
    pub(super) fn rename_slot(&mut self, now: Instant, idx: usize, id: MsgId) {
        let response = self.role() == Role::Server && id.is_server_response();
        let new = if response {
            self.ids.next_response(now, &self.clock)
        } else {
            self.ids.next(now, &self.clock)
        };
        let (Ok(new), Ok(seq)) = (new, self.seq.next(true)) else {
            return;
        };
        let in_tracker = self.tracker.replace_id(id, new, seq, now).is_ok();
        if let Some(Some(s)) = self.outbox.slots.get_mut(idx) {
            s.id = new;
            s.seq_no = seq;
            s.queued = true;
            s.in_tracker = in_tracker;
            s.sends = 0;
            s.acked = false;
        }
        self.stats.resent += 1;
    }

    /// DC hand-over ([`Session::hand_over`]): every message sent and not acknowledged is queued again under a new
    /// msg_id and seq_no. The containers it travelled in are forgotten (their members are renamed).
    ///
    /// [`Session::hand_over`]: super::Session::hand_over
    pub(super) fn rename_in_flight(&mut self, now: Instant) {
        let mut ids: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for s in self.outbox.slots.iter().flatten() {
            if s.keep && !s.queued && !s.acked && s.sends > 0 && !s.pinned {
                let _ = ids.push(s.id);
            }
        }
        self.outbox.forced.clear();
        for id in ids {
            let Some((idx, _)) = self.outbox.slot_by_id(id) else {
                continue;
            };
            if let Some(c) = self.tracker.container_of(id) {
                let _ = self.tracker.remove(c);
            }
            self.rename_slot(now, idx, id);
        }
    }

    /// Queues a held message for a byte-identical resend under its own msg_id; false once the budget is spent.
    pub(super) fn force(&mut self, now: Instant, id: MsgId, len: u32) -> bool {
        let cost = u64::from(len) + INNER_HDR as u64;
        if self.budget.try_spend(now, cost).is_err() {
            return false;
        }
        self.outbox.force(id);
        true
    }
}
