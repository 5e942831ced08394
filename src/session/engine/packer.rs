//! The packet builder: what [`Session::poll_packet`] writes. Timers that queue messages run first (the client's
//! keepalive and salt fetch, the DC's `new_session_created`), then the packet is built in stages, as quinn-proto
//! builds its packets: expire what ran out of attempts, plan (container or not, acks or not), lay out owed answers,
//! resends and fresh messages within the payload limit, write the payload, seal it (encrypt in place in `out`), and
//! commit (track what went, free what is fire-and-forget).
//!
//! The stages draw msg_ids and seq_nos in a fixed order (ack, owed answers, container, the ack's seq_no), so the
//! same inputs always give the same bytes.
//!
//! [`Session::poll_packet`]: super::Session::poll_packet
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand_core::CryptoRng;

use crate::crypto::packet::{self, Direction, MessageHeader};
use crate::session::event::FailReason;
use crate::session::msg_id::{MsgId, Role};
use crate::session::pending::{BodyHandle, NewSent, SentKind};
use crate::time::Instant;
use crate::tl::{self, Message, MsgContainer, MsgsAck, TlBare, Writer};

use super::outbox::NO_BODY;
use super::{CONTAINER_HDR, Core, INNER_HDR, Packet};

/// Most msg_ids one `msgs_ack` sent by this engine carries (well under the spec's 8192, to keep packets small).
pub(super) const ACKS_PER_PACKET: usize = 1024;

/// What the next packet carries, decided before anything is laid out.
struct Plan {
    /// Payload bytes the packet may hold, and messages a container may hold.
    limit: usize,
    max_msgs: usize,
    /// A held long poll is answered: the packet goes even if empty.
    release: bool,
    /// A `msgs_ack` goes in this packet, under `ack_id`.
    ack_now: bool,
    ack_id: Option<MsgId>,
    /// Room kept for that `msgs_ack` (inner header included).
    ack_reserve: usize,
    /// The payload is a container (resends always travel in one, item 38); else it is one message.
    container: bool,
    /// Inner `message` header per member: 16 in a container, else 0.
    hdr: usize,
}

/// The members of the next packet, in the order they are written.
struct Layout<const MSGS: usize> {
    /// Payload bytes laid out so far.
    used: usize,
    /// Owed answers, oldest first: (msg_id, seq_no, body length), the msg_ids made here.
    owed: heapless::Vec<(MsgId, u32, usize), MSGS>,
    /// The container's msg_id and seq_no (0 without one).
    cid: MsgId,
    cseq: u32,
    /// Slots that go: (index, resent byte-identical).
    members: heapless::Vec<(usize, bool), MSGS>,
}

impl<const MSGS: usize> Layout<MSGS> {
    fn is_empty(&self) -> bool {
        self.members.is_empty() && self.owed.is_empty()
    }

    /// Whether one more member (`len` body bytes, `hdr` header) fits beside the acks and the container's count.
    fn fits(&self, plan: &Plan, hdr: usize, len: usize) -> bool {
        self.used + hdr + len + plan.ack_reserve <= plan.limit
            && self.owed.len() + self.members.len() + 1 < plan.max_msgs
            && !self.members.is_full()
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    pub(super) fn max_payload<const RX: usize>(&self) -> usize {
        RX.saturating_sub(packet::OUTER_HEADER_LEN + packet::INNER_HEADER_LEN + packet::MAX_PADDING) & !3
    }

    /// Writes the next packet into `out`: timers that queue messages run first, then what is due is planned, laid
    /// out, written, sealed (encrypted in place) and committed (tracked for acknowledgement and resending).
    pub(super) fn poll_packet<const RX: usize, R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
        rx: &[u8],
        gz: &[u8],
    ) -> Option<Packet> {
        if self.closed {
            return None;
        }
        match self.role() {
            Role::Client => self.client_housekeeping(now),
            Role::Server => self.dc_housekeeping(now, rng),
        }
        // DC: a held long poll is answered once, when due (see `LongPoll`), with an empty container if need be.
        let release = self.release_long_poll(now)?;
        let limit = self.max_payload::<RX>();
        let max_msgs = self.cfg.limits.max_container_messages.clamp(2, 1024);
        self.expire(now);
        let plan = self.plan(now, release, limit, max_msgs)?;
        let mut lay = self.layout_owed(now, &plan, rx, gz)?;
        let body_start = packet::body_offset();
        if out.len() < body_start + limit {
            return None;
        }
        self.layout_resends(now, &plan, &mut lay);
        self.layout_fresh(&plan, &mut lay);
        if plan.ack_now && !(plan.container || lay.is_empty()) {
            // Cannot happen: an ack with anything else forces a container.
            return None;
        }
        if lay.is_empty() && !plan.ack_now && !plan.release {
            return None;
        }
        let payload = out.get_mut(body_start..body_start + limit)?;
        let written = self.write_payload(now, &plan, &lay, payload, rx, gz);
        let (msg_id, seq_no) = self.packet_ids(&plan, &lay)?;
        let header = MessageHeader {
            salt: self.current_salt(),
            session_id: self.session_id,
            msg_id: msg_id.0,
            seq_no,
        };
        let dir = Direction::sent_by(self.role());
        let enc = packet::encrypt_in_place(&self.key, dir, &header, written, self.cfg.padding, rng, out).ok()?;
        self.stats.packets_out += 1;
        for _ in 0..lay.owed.len() {
            let _ = self.owed.pop_front();
        }
        let carries_query = self.commit(now, &plan, &lay);
        let quick_ack = self.cfg.quick_ack && carries_query;
        let quick_ack = quick_ack
            && match self.role.client_mut() {
                Some(c) => {
                    if c.quick_acks.is_full() {
                        let _ = c.quick_acks.pop_front();
                    }
                    let _ = c.quick_acks.push_back((enc.quick_ack | 0x8000_0000, msg_id));
                    true
                }
                None => false,
            };
        Some(Packet {
            len: enc.len,
            quick_ack,
        })
    }

    /// Gives up on messages whose attempts ran out: a query fails with `Timeout`, anything else is dropped.
    fn expire(&mut self, now: Instant) {
        while let Some(d) = self.tracker.next_due(now) {
            if !d.exhausted {
                break;
            }
            if d.kind == SentKind::RpcQuery {
                self.fail(d.id, FailReason::Timeout);
            } else if let Some(r) = self.tracker.remove(d.id) {
                if d.kind == SentKind::GetFutureSalts
                    && let Some(c) = self.role.client_mut()
                {
                    c.salts_requested = false;
                }
                self.outbox.free(r.handle);
            }
        }
    }

    /// Whether a packet goes now, and its shape: a container whenever a resend or more than one message goes (or
    /// nothing but a released long poll), and whether acknowledgements ride along (they never go alone before
    /// their flush is due). The ack's msg_id is made here, first of the packet's.
    fn plan(&mut self, now: Instant, release: bool, limit: usize, max_msgs: usize) -> Option<Plan> {
        let resend_due = self.tracker.next_due(now).is_some() || !self.outbox.forced.is_empty();
        let fresh = self.outbox.slots.iter().flatten().filter(|s| s.queued).count() + self.owed.len();
        let ack_now = !self.acks.is_empty() && (self.acks.should_flush(now) || fresh > 0 || resend_due || release);
        let count = fresh + usize::from(ack_now);
        if count == 0 && !resend_due && !release {
            return None;
        }
        let container = resend_due || count > 1 || count == 0;
        let ack_id = if ack_now {
            self.ids.next(now, &self.clock).ok()
        } else {
            None
        };
        let ack_reserve = if ack_now {
            INNER_HDR + 12 + 8 * self.acks.len().min(ACKS_PER_PACKET)
        } else {
            0
        };
        Some(Plan {
            limit,
            max_msgs,
            release,
            ack_now,
            ack_id,
            ack_reserve,
            container,
            hdr: if container { INNER_HDR } else { 0 },
        })
    }

    /// Lays out the answers owed, oldest first, then makes the container's ids. Each answer fits an empty packet:
    /// the largest, a `msgs_state_info`, is an eighth of the request it answers, which came in one. Their msg_ids
    /// are made here, below the container's.
    fn layout_owed(&mut self, now: Instant, plan: &Plan, rx: &[u8], gz: &[u8]) -> Option<Layout<MSGS>> {
        let mut used = if plan.container { CONTAINER_HDR } else { 0 };
        let mut owed: heapless::Vec<(MsgId, u32, usize), MSGS> = heapless::Vec::new();
        for o in self.owed.iter() {
            let len = self.owed_body(now, o, rx, gz, None);
            if used + plan.hdr + len + plan.ack_reserve > plan.limit
                || owed.len() + 1 >= plan.max_msgs
                || owed.is_full()
            {
                break;
            }
            used += plan.hdr + len;
            let _ = owed.push((MsgId(0), 0, len));
            if !plan.container {
                break;
            }
        }
        for (id, seq, _) in owed.iter_mut() {
            // Answers are responses (a DC's msg_id ≡ 1 mod 4), and content-related.
            *id = self.ids.next_response(now, &self.clock).ok()?;
            *seq = self.seq.next(true).ok()?;
        }
        let (cid, cseq) = if plan.container {
            (self.ids.next(now, &self.clock).ok()?, self.seq.next(false).ok()?)
        } else {
            (MsgId(0), 0)
        };
        Some(Layout {
            used,
            owed,
            cid,
            cseq,
            members: heapless::Vec::new(),
        })
    }

    /// Lays out resends, after the answers: those requested by the peer, then due ones, byte-identical inside the
    /// new container (item 38). A requested one that does not fit is not kept (the peer asks again).
    fn layout_resends(&mut self, now: Instant, plan: &Plan, lay: &mut Layout<MSGS>) {
        let mut forced = core::mem::take(&mut self.outbox.forced);
        while let Some(id) = forced.pop() {
            if let Some((idx, s)) = self.outbox.slot_by_id(id)
                && !s.queued
                && lay.used + INNER_HDR + s.len as usize + plan.ack_reserve <= plan.limit
                && lay.owed.len() + lay.members.len() + 1 < plan.max_msgs
            {
                lay.used += INNER_HDR + s.len as usize;
                let _ = lay.members.push((idx, true));
                let _ = self.tracker.mark_resent(id, now, Some(lay.cid));
                self.stats.resent += 1;
            }
        }
        while let Some(d) = self.tracker.next_due(now) {
            let Some((idx, s)) = self
                .outbox
                .slots
                .get(d.handle.0 as usize)
                .copied()
                .flatten()
                .map(|s| (d.handle.0 as usize, s))
            else {
                let _ = self.tracker.remove(d.id);
                continue;
            };
            if d.exhausted || !lay.fits(plan, INNER_HDR, s.len as usize) {
                break;
            }
            lay.used += INNER_HDR + s.len as usize;
            let _ = lay.members.push((idx, true));
            let _ = self.tracker.mark_resent(d.id, now, Some(lay.cid));
            self.stats.resent += 1;
        }
    }

    /// Lays out fresh messages last, in msg_id order; without a container, exactly one message goes.
    fn layout_fresh(&self, plan: &Plan, lay: &mut Layout<MSGS>) {
        loop {
            if !plan.container && !lay.is_empty() {
                break;
            }
            let next = self
                .outbox
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.filter(|s| s.queued && !lay.members.iter().any(|&(m, _)| m == i))
                        .map(|s| (i, s))
                })
                .min_by_key(|(_, s)| s.id);
            let Some((idx, s)) = next else { break };
            if !lay.fits(plan, plan.hdr, s.len as usize) {
                break;
            }
            lay.used += plan.hdr + s.len as usize;
            let _ = lay.members.push((idx, false));
        }
    }

    /// Writes the payload laid out in `lay` into `payload`: the container header, owed answers, members, and the
    /// `msgs_ack` (whose seq_no, in a container, is made here). Returns its length.
    fn write_payload(
        &mut self,
        now: Instant,
        plan: &Plan,
        lay: &Layout<MSGS>,
        payload: &mut [u8],
        rx: &[u8],
        gz: &[u8],
    ) -> usize {
        let total_members = lay.owed.len() + lay.members.len() + usize::from(plan.ack_now);
        let mut w = Writer::new(payload);
        if plan.container {
            let _ = w.u32(MsgContainer::CONSTRUCTOR);
            let _ = w.u32(total_members as u32);
        }
        for (o, &(id, seq, len)) in self.owed.iter().zip(lay.owed.iter()) {
            if plan.container {
                let _ = w.i64(id.to_wire());
                let _ = w.i32(seq as i32);
                let _ = w.i32(len as i32);
            }
            self.owed_body(now, o, rx, gz, Some(&mut w));
        }
        for &(idx, _) in lay.members.iter() {
            let Some(Some(s)) = self.outbox.slots.get(idx) else {
                continue;
            };
            let body = self.outbox.body_of(s);
            if plan.container {
                let _ = Message::new(s.id.to_wire(), s.seq_no as i32, body).write_bare(&mut w);
            } else {
                let _ = w.raw(body);
            }
        }
        if let Some(aid) = plan.ack_id.filter(|_| plan.ack_now) {
            let n = self.acks.len().min(ACKS_PER_PACKET);
            let blen = 12 + 8 * n;
            if plan.container {
                let _ = w.i64(aid.to_wire());
                let _ = w.i32(self.seq.next(false).unwrap_or(0) as i32);
                let _ = w.i32(blen as i32);
            }
            let _ = w.u32(MsgsAck::CONSTRUCTOR);
            let _ = w.u32(tl::VECTOR);
            let _ = w.u32(n as u32);
            for id in self.acks.take_batch(n) {
                let _ = w.i64(id.to_wire());
            }
        }
        w.written()
    }

    /// The packet's own msg_id and seq_no: the container's, or its only message's (a lone ack's seq_no is made
    /// here).
    fn packet_ids(&mut self, plan: &Plan, lay: &Layout<MSGS>) -> Option<(MsgId, u32)> {
        if plan.container {
            Some((lay.cid, lay.cseq))
        } else if let Some(&(id, seq, _)) = lay.owed.first() {
            Some((id, seq))
        } else if let Some(&(idx, _)) = lay.members.first() {
            let Some(Some(s)) = self.outbox.slots.get(idx) else {
                return None;
            };
            Some((s.id, s.seq_no))
        } else {
            Some((plan.ack_id?, self.seq.next(false).ok()?))
        }
    }

    /// After sealing: tracks what was sent for acknowledgement and resending, frees what is fire-and-forget, and
    /// starts query deadlines. Returns whether a query went (a client then asks for a quick ack).
    fn commit(&mut self, now: Instant, plan: &Plan, lay: &Layout<MSGS>) -> bool {
        let mut carries_query = false;
        let mut tracked_in_container = false;
        let container = plan.container.then_some(lay.cid);
        for &(idx, resend) in lay.members.iter() {
            if let Some(Some(slot)) = self.outbox.slots.get_mut(idx) {
                slot.sends = slot.sends.saturating_add(1);
            }
            if resend {
                tracked_in_container = true;
                continue;
            }
            let Some(Some(s)) = self.outbox.slots.get(idx).copied() else {
                continue;
            };
            if !s.keep {
                self.outbox.free(BodyHandle(idx as u32));
                continue;
            }
            if s.in_tracker {
                let _ = self.tracker.mark_resent(s.id, now, container);
            } else {
                let ns = NewSent {
                    id: s.id,
                    seq_no: s.seq_no,
                    bytes: s.len,
                    handle: BodyHandle(idx as u32),
                    kind: s.kind,
                    container,
                };
                if self.tracker.track(now, ns).is_err() {
                    warn!("session: tracker full");
                }
            }
            tracked_in_container |= plan.container;
            carries_query |= s.kind == SentKind::RpcQuery;
            if let Some(Some(slot)) = self.outbox.slots.get_mut(idx) {
                slot.queued = false;
                slot.in_tracker = true;
                if slot.kind == SentKind::RpcQuery && slot.deadline.is_none() {
                    slot.deadline = Some(now.saturating_add(self.cfg.rpc_timeout));
                }
                if slot.sent_at.is_none() {
                    slot.sent_at = Some(now);
                }
            }
        }
        if plan.container && tracked_in_container {
            self.track_container(now, lay);
        }
        carries_query
    }

    /// Best effort: a container entry lets a bad_msg_notification about it reach its members. Room is kept for
    /// every live slot, so a message never fails to be tracked because of containers.
    fn track_container(&mut self, now: Instant, lay: &Layout<MSGS>) {
        let untracked_live = self
            .outbox
            .slots
            .iter()
            .flatten()
            .filter(|s| s.keep && !s.in_tracker)
            .count();
        if self.tracker.len() + untracked_live < MSGS {
            let ns = NewSent {
                id: lay.cid,
                seq_no: lay.cseq,
                bytes: 0,
                handle: NO_BODY,
                kind: SentKind::Container,
                container: None,
            };
            let _ = self.tracker.track(now, ns);
        }
    }
}
