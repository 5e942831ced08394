//! The packet builder: what [`Engine::poll_packet`] writes. Timers that queue messages run first (the client's
//! keepalive and salt fetch, the DC's `new_session_created`), then the packet is built in stages, as quinn-proto
//! builds its packets: expire what ran out of attempts, plan (container or not, acks or not), lay out owed answers,
//! resends and fresh messages within the payload limit, write the payload, seal it (encrypt in place in `out`), and
//! commit (track what went, free what is fire-and-forget).
//!
//! The stages draw msg_ids and seq_nos in a fixed order (ack, owed answers, container, the ack's seq_no), so the
//! same inputs always give the same bytes.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// Most msg_ids one `msgs_ack` sent by this engine carries (well under the spec's 8192, to keep packets small).
pub(super) const ACKS_PER_PACKET: usize = 1024;

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    pub(super) fn max_payload<const RX: usize>(&self) -> usize {
        RX.saturating_sub(packet::OUTER_HEADER_LEN + packet::INNER_HEADER_LEN + packet::MAX_PADDING) & !3
    }

    pub(super) fn housekeeping<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        match self.side {
            Side::Client => {
                if let Some(at) = self.next_ping_at
                    && now >= at
                    && let Some(iv) = self.cfg.ping_interval
                {
                    self.ping_counter = self.ping_counter.wrapping_add(1);
                    let ping_id = self.ping_counter as i64;
                    let p = tl::PingDelayDisconnect {
                        ping_id,
                        disconnect_delay: self.cfg.ping_disconnect_delay,
                    };
                    self.queue_tl(
                        now,
                        SentKind::Ping {
                            ping_id: ping_id as u64,
                        },
                        true,
                        false,
                        &p,
                    );
                    self.next_ping_at = Some(now.saturating_add(iv));
                }
                self.check_states(now);
                let unix = self.clock.unix_time(now);
                self.client_salts.advance(unix);
                if self.cfg.future_salts && !self.salts_requested && self.client_salts.should_fetch(unix) {
                    let g = tl::GetFutureSalts { num: 32 };
                    if self.queue_tl(now, SentKind::GetFutureSalts, true, false, &g) {
                        self.salts_requested = true;
                    }
                }
            }
            Side::Server => {
                self.rotate_server_salt(now);
                if self.nsc_due
                    && let Some(first) = self.nsc_first
                {
                    let salt = self.server_salts.as_ref().map_or(0, ServerSalts::current);
                    let n = NewSessionCreated {
                        first_msg_id: first.to_wire(),
                        unique_id: rng.next_u64() as i64,
                        server_salt: salt as i64,
                    };
                    if self.queue_tl(now, SentKind::Service, true, false, &n) {
                        self.nsc_due = false;
                    }
                }
            }
        }
    }

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
        self.housekeeping(now, rng);
        // DC: a held long poll is answered once, when due (see `LongPoll`), with an empty container if need be.
        let mut release = false;
        if let Some(lp) = self.long_poll {
            if now < lp.answer_at(self.has_outbound(now)) {
                return None;
            }
            self.long_poll = None;
            release = true;
        }
        let limit = self.max_payload::<RX>();
        let max_msgs = self.cfg.limits.max_container_messages.clamp(2, 1024);

        // Give up on messages whose attempts ran out.
        while let Some(d) = self.tracker.next_due(now) {
            if !d.exhausted {
                break;
            }
            if d.kind == SentKind::RpcQuery {
                self.fail(d.id, FailReason::Timeout);
            } else if let Some(r) = self.tracker.remove(d.id) {
                if d.kind == SentKind::GetFutureSalts {
                    self.salts_requested = false;
                }
                self.outbox.free(r.handle);
            }
        }

        let resend_due = self.tracker.next_due(now).is_some() || !self.outbox.forced.is_empty();
        let fresh = self.outbox.slots.iter().flatten().filter(|s| s.queued).count() + self.owed.len();
        let ack_now = !self.acks.is_empty() && (self.acks.should_flush(now) || fresh > 0 || resend_due || release);
        let count = fresh + usize::from(ack_now);
        if count == 0 && !resend_due && !release {
            return None;
        }
        let need_container = resend_due || count > 1 || count == 0;
        let ack_id = if ack_now {
            self.ids.next(now, &self.clock).ok()
        } else {
            None
        };

        // Lay the members out; `used` counts payload bytes.
        let mut used = if need_container { CONTAINER_HDR } else { 0 };
        let ack_reserve = if ack_now {
            INNER_HDR + 12 + 8 * self.acks.len().min(ACKS_PER_PACKET)
        } else {
            0
        };
        let hdr = if need_container { INNER_HDR } else { 0 };
        // 0. Answers owed, oldest first. Each fits an empty packet: the largest, a `msgs_state_info`, is an eighth
        // of the request it answers, which came in one. Their msg_ids are made here, below the container's.
        let mut owed: heapless::Vec<(MsgId, u32, usize), MSGS> = heapless::Vec::new();
        for o in self.owed.iter() {
            let len = self.owed_body(now, o, rx, gz, None);
            if used + hdr + len + ack_reserve > limit || owed.len() + 1 >= max_msgs || owed.is_full() {
                break;
            }
            used += hdr + len;
            let _ = owed.push((MsgId(0), 0, len));
            if !need_container {
                break;
            }
        }
        for (id, seq, _) in owed.iter_mut() {
            // Answers are responses (a DC's msg_id ≡ 1 mod 4), and content-related.
            *id = self.ids.next_response(now, &self.clock).ok()?;
            *seq = self.seq.next(true).ok()?;
        }
        let (cid, cseq) = if need_container {
            (self.ids.next(now, &self.clock).ok()?, self.seq.next(false).ok()?)
        } else {
            (MsgId(0), 0)
        };
        let body_start = packet::body_offset();
        let payload = out.get_mut(body_start..body_start + limit)?;
        let mut members: heapless::Vec<(usize, bool), MSGS> = heapless::Vec::new();
        // 1. Resends requested by the peer, then due ones: byte-identical inside the new container (item 38).
        let mut forced = core::mem::take(&mut self.outbox.forced);
        while let Some(id) = forced.pop() {
            if let Some((idx, s)) = self.outbox.slot_by_id(id)
                && !s.queued
                && used + INNER_HDR + s.len as usize + ack_reserve <= limit
                && owed.len() + members.len() + 1 < max_msgs
            {
                used += INNER_HDR + s.len as usize;
                let _ = members.push((idx, true));
                let _ = self.tracker.mark_resent(id, now, Some(cid));
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
            if d.exhausted
                || used + INNER_HDR + s.len as usize + ack_reserve > limit
                || owed.len() + members.len() + 1 >= max_msgs
                || members.is_full()
            {
                break;
            }
            used += INNER_HDR + s.len as usize;
            let _ = members.push((idx, true));
            let _ = self.tracker.mark_resent(d.id, now, Some(cid));
            self.stats.resent += 1;
        }
        // 2. Fresh messages, in msg_id order.
        loop {
            // Without a container, exactly one message goes.
            if !need_container && (!members.is_empty() || !owed.is_empty()) {
                break;
            }
            let next = self
                .outbox
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    s.filter(|s| s.queued && !members.iter().any(|&(m, _)| m == i))
                        .map(|s| (i, s))
                })
                .min_by_key(|(_, s)| s.id);
            let Some((idx, s)) = next else { break };
            if used + hdr + s.len as usize + ack_reserve > limit
                || owed.len() + members.len() + 1 >= max_msgs
                || members.is_full()
            {
                break;
            }
            used += hdr + s.len as usize;
            let _ = members.push((idx, false));
        }
        let fresh_sent = members.iter().filter(|(_, r)| !*r).count();
        if ack_now && !(need_container || (members.is_empty() && owed.is_empty())) {
            // Cannot happen: an ack with anything else forces a container.
            return None;
        }
        if members.is_empty() && owed.is_empty() && !ack_now && !release {
            return None;
        }

        // Write the payload.
        let total_members = owed.len() + members.len() + usize::from(ack_now);
        let w_off = {
            let mut w = Writer::new(&mut *payload);
            if need_container {
                let _ = w.u32(MsgContainer::CONSTRUCTOR);
                let _ = w.u32(total_members as u32);
            }
            for (o, &(id, seq, len)) in self.owed.iter().zip(owed.iter()) {
                if need_container {
                    let _ = w.i64(id.to_wire());
                    let _ = w.i32(seq as i32);
                    let _ = w.i32(len as i32);
                }
                self.owed_body(now, o, rx, gz, Some(&mut w));
            }
            for &(idx, _) in members.iter() {
                let Some(Some(s)) = self.outbox.slots.get(idx) else {
                    continue;
                };
                let body = self
                    .outbox
                    .arena
                    .get(s.off as usize..(s.off + s.len) as usize)
                    .unwrap_or(&[]);
                if need_container {
                    let _ = Message::new(s.id.to_wire(), s.seq_no as i32, body).write_bare(&mut w);
                } else {
                    let _ = w.raw(body);
                }
            }
            if let Some(aid) = ack_id.filter(|_| ack_now) {
                let n = self.acks.len().min(ACKS_PER_PACKET);
                let blen = 12 + 8 * n;
                if need_container {
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
        };
        let (msg_id, seq_no) = if need_container {
            (cid, cseq)
        } else if let Some(&(id, seq, _)) = owed.first() {
            (id, seq)
        } else if let Some(&(idx, _)) = members.first() {
            let Some(Some(s)) = self.outbox.slots.get(idx) else {
                return None;
            };
            (s.id, s.seq_no)
        } else {
            (ack_id?, self.seq.next(false).ok()?)
        };
        let salt = match &self.server_salts {
            Some(s) => s.current(),
            None => self.client_salts.current(),
        };
        let header = MessageHeader {
            salt,
            session_id: self.session_id,
            msg_id: msg_id.0,
            seq_no,
        };
        let dir = match self.side {
            Side::Client => Direction::ClientToServer,
            Side::Server => Direction::ServerToClient,
        };
        let enc = packet::encrypt_in_place(&self.key, dir, &header, w_off, self.cfg.padding, rng, out).ok()?;
        self.stats.packets_out += 1;
        for _ in 0..owed.len() {
            let _ = self.owed.pop_front();
        }

        // Commit: track what was sent, free what is fire-and-forget.
        let mut carries_query = false;
        let mut tracked_in_container = false;
        for &(idx, resend) in members.iter() {
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
            let container = need_container.then_some(cid);
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
            tracked_in_container |= need_container;
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
        let _ = fresh_sent;
        if need_container && tracked_in_container {
            // Best effort: a container entry lets a bad_msg_notification about it reach its members. Keep room
            // for every live slot, so a message never fails to be tracked because of containers.
            let untracked_live = self
                .outbox
                .slots
                .iter()
                .flatten()
                .filter(|s| s.keep && !s.in_tracker)
                .count();
            if self.tracker.len() + untracked_live < MSGS {
                let ns = NewSent {
                    id: cid,
                    seq_no: cseq,
                    bytes: 0,
                    handle: NO_BODY,
                    kind: SentKind::Container,
                    container: None,
                };
                let _ = self.tracker.track(now, ns);
            }
        }
        let quick_ack = self.cfg.quick_ack && carries_query && self.side == Side::Client;
        if quick_ack {
            if self.quick_acks.is_full() {
                let _ = self.quick_acks.pop_front();
            }
            let _ = self.quick_acks.push_back((enc.quick_ack | 0x8000_0000, msg_id));
        }
        Some(Packet {
            len: enc.len,
            quick_ack,
        })
    }
}
