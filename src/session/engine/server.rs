//! The DC's side of a session: its salt schedule, its receive path (session, msg_id, salt and seq_no checks with the notifications the
//! spec asks for, then every message of the accepted packet in order as room frees up), its answers and long polls.
//!
//! Received bodies come from `recv.rs`; queries go to the host as [`Event::Request`](super::Event::Request) and
//! come back through [`Engine::answer`]; service messages are answered through `owed` (`service.rs`).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// DC: the host's word on a client session this engine does not serve yet (see [`Engine::approve_session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Approval {
    /// Every unknown session is refused until the host answers.
    None,
    /// This session may start here, once.
    Session(u64),
    /// The first session named may start here: the engine runs on a key this connection just created, so no
    /// other connection can hold a session under it.
    First,
}

/// DC: the packet in the receive buffer whose messages are not all processed yet (they wait for room for their
/// answers, [`Owed`], or for their [`Event::Request`](super::Event::Request)s). The packet is accepted (its
/// msg_id, and a container's, is in the replay window), and every message in it is processed, in order, as room
/// frees up ([`Engine::poll_event`], [`Engine::poll_packet`]); meanwhile no input is taken (`must_drain`), so the
/// buffer stays intact. A container is thus accepted as a whole (SECURITY.md item 48) however small the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Held {
    /// Where in the receive buffer the next message (a container's inner `message`, or the lone body) starts, and
    /// where the packet's body ends.
    pub(super) next: u32,
    pub(super) end: u32,
    /// Inner messages left.
    pub(super) left: u32,
    /// The Unix time the packet arrived at: every message in it is judged by the time window as of then.
    pub(super) unix: UnixTime,
    /// Not a container: the message's (msg_id, seq_no); its body is `next..end`.
    pub(super) single: Option<(MsgId, u32)>,
}

/// DC: a long poll a client asked for with `http_wait` (MTProto over HTTP), held until
/// [`answer_at`](Self::answer_at). While one is held, [`Engine::poll_packet`] writes nothing before that instant; then
/// it writes what is queued, or (at `max_wait`, with nothing queued) an acknowledgement-only packet or an empty
/// container, and the long poll ends. The host keeps the HTTP exchange that carried the `http_wait` open until then.
///
/// An HTTP host calls `poll_packet` only when it has an open exchange to answer (one packet per response), and
/// sleeps until [`Engine::poll_timeout`], which includes `answer_at`. Over TCP a client has no reason to send
/// `http_wait`; one that does only delays its own traffic, by at most [`EngineConfig::max_http_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LongPoll {
    /// When the `http_wait` arrived (the earliest one, if a second came before the first was answered).
    pub since: Instant,
    /// Answer at most this long after the first message queued for the client.
    pub max_delay: Duration,
    /// Answer this long after the latest message queued, unless another one comes first.
    pub wait_after: Duration,
    /// Answer (with nothing, if need be) at most this long after `since`.
    pub max_wait: Duration,
    /// When the first and the latest message for the client were queued while the poll was held.
    pub(super) first_out: Option<Instant>,
    pub(super) last_out: Option<Instant>,
}

impl LongPoll {
    /// When the held exchange must be answered: `since + max_wait`, or earlier once something is queued
    /// (`max_wait` over `max_delay` over `wait_after`, as the spec ranks them). `pending`: whether something is
    /// queued; queued before the poll arrived, it counts from `since`.
    pub fn answer_at(&self, pending: bool) -> Instant {
        let hard = self.since.saturating_add(self.max_wait);
        if !pending && self.first_out.is_none() {
            return hard;
        }
        let first = self.first_out.unwrap_or(self.since);
        let last = self.last_out.unwrap_or(self.since);
        hard.min(first.saturating_add(self.max_delay))
            .min(last.saturating_add(self.wait_after))
    }
}

/// DC: whether a client message with this body may end as an [`Event::Request`](super::Event::Request) (a query for
/// the host): anything outside the service schema, `auth.bindTempAuthKey`, and `gzip_packed` (a query inside).
pub(super) fn may_request(body: &[u8]) -> bool {
    match peek_ctor(body) {
        Some(tl::AuthBindTempAuthKey::CONSTRUCTOR | GzipPacked::CONSTRUCTOR) => true,
        Some(c) => !tl::SCHEMA.iter().any(|&(_, s)| s == c),
        None => false,
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    pub(super) fn rotation_secs(&self) -> u64 {
        self.cfg.limits.salt_rotation.as_secs().max(1)
    }

    /// The DC's salt for rotation period `p`: derived from a per-engine secret, so `future_salts` can promise the
    /// salts of coming periods and rotation needs no RNG.
    pub(super) fn derived_salt(&self, p: u64) -> u64 {
        if let Some((fp, salt)) = self.first_salt
            && fp == p
        {
            return salt;
        }
        let mut h = Sha256::new();
        h.update(self.salt_secret);
        h.update(p.to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        if let Some(s) = d.get(..8) {
            b.copy_from_slice(s);
        }
        // Salt 0 means "unknown" on the wire; never issue it.
        u64::from_le_bytes(b).max(1)
    }

    pub(super) fn init_server_salts(&mut self, now: Instant) {
        let rot = self.rotation_secs();
        let unix = self.clock.unix_time(now).0;
        let p = unix / rot;
        let policy = ServerSaltPolicy {
            rotation: Duration::from_secs(rot),
            grace: self.cfg.limits.salt_grace,
        };
        self.server_salts = ServerSalts::new(self.derived_salt(p), UnixTime(p * rot), policy).ok();
    }

    pub(super) fn rotate_server_salt(&mut self, now: Instant) {
        let unix = self.clock.unix_time(now);
        let rot = self.rotation_secs();
        let mut guard = 0;
        while let Some(s) = self.server_salts.as_ref()
            && s.rotation_due(unix)
            && guard < 4
        {
            let at = s.next_rotation();
            let salt = self.derived_salt(at.0 / rot);
            if let Some(s) = self.server_salts.as_mut() {
                let _ = s.rotate(at, salt);
            }
            guard += 1;
        }
        if self.server_salts.as_ref().is_some_and(|s| s.rotation_due(unix)) {
            // A jump of more than a few periods: restart the schedule at now.
            self.init_server_salts(now);
        }
    }

    pub(super) fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
        if self.side != Side::Server {
            return Err(SendError::NotReady);
        }
        let pos = self
            .pending_reqs
            .iter()
            .position(|&r| r == req)
            .ok_or(SendError::UnknownRequest)?;
        let rr = RpcResult {
            req_msg_id: req.to_wire(),
            result,
        };
        self.saw(now);
        let r = self.queue(now, SentKind::Service, true, true, rr.tl_len(), |d| {
            rr.write(&mut Writer::new(d))
        });
        // Whether the host can answer now decides what a query beyond the pending ones gets (`room_for`).
        self.answers_blocked = r == Err(SendError::QueueFull);
        let id = r?;
        self.pending_reqs.swap_remove(pos);
        Ok(id)
    }

    pub(super) fn reset_server_session(&mut self, session_id: u64) {
        self.inbound.reset();
        self.seq_check = SeqNoChecker::new();
        let handles: heapless::Vec<usize, MSGS> = self
            .outbox
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i)
            .collect();
        for i in handles {
            if let Some(Some(s)) = self.outbox.slots.get(i) {
                let id = s.id;
                let _ = self.tracker.remove(id);
            }
            self.outbox.free(BodyHandle(i as u32));
        }
        self.tracker = SentTracker::new(TX, self.tracker.policy());
        self.pending_reqs.clear();
        self.owed.clear();
        self.held = None;
        self.answers_blocked = false;
        self.outbox.forced.clear();
        self.acks = AckQueue::new(self.cfg.limits.ack_flush_threshold, self.cfg.limits.ack_max_delay);
        self.seq = SeqNoGen::new();
        self.session_id = session_id;
        self.nsc_first = None;
        self.nsc_due = false;
        self.disconnect_at = None;
        self.long_poll = None;
    }

    /// Starts serving `session_id` (a new client session, or the client moved on): the old one is retired, and a
    /// retired one is never served again, so its late packets cannot come back with an empty replay window
    /// (item 31).
    pub(super) fn switch_session(&mut self, now: Instant, session_id: u64) -> Result<(), Dropped> {
        if self.retired.iter().any(|&r| r == session_id) {
            return Err(Dropped::WrongSession);
        }
        if self.session_known {
            if self.retired.is_full() {
                let _ = self.retired.pop_front();
            }
            let _ = self.retired.push_back(self.session_id);
        }
        self.reset_server_session(session_id);
        self.session_known = true;
        self.nsc_due = true;
        self.approval = Approval::None;
        // The session starts without the replay state of its past, if it had one: copies of its older messages
        // are refused as too old (code 16) rather than executed again (item 33).
        let unix = self.clock.unix_time(now);
        let age = self.cfg.limits.new_session_max_age;
        let floor = unix.0.saturating_sub(age.as_secs()) << 32;
        self.inbound.set_floor(MsgId(floor));
        self.push_event(EvRec::Created(session_id));
        Ok(())
    }

    /// Marks a refused, authenticated msg_id as received, so no later copy of it is ever accepted: the client
    /// re-sends the content under a new msg_id, and accepting the old one too would execute it twice.
    pub(super) fn burn(&mut self, id: MsgId, unix: UnixTime) {
        let _ = self.inbound.accept(id, unix, false);
    }

    pub(super) fn notify_bad(&mut self, now: Instant, bad: MsgId, seq_no: u32, code: BadMsgCode) {
        self.stats.bad_msgs += 1;
        self.push_owed(
            now,
            Owed::BadMsg {
                bad,
                seq_no,
                code: code.code(),
            },
        );
    }

    pub(super) fn server_packet(
        &mut self,
        now: Instant,
        h: Header,
        body: &[u8],
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) -> Result<(), Dropped> {
        let unix = self.clock.unix_time(now);
        let is_container = peek_ctor(body) == Some(MsgContainer::CONSTRUCTOR);
        let serves = self.session_known && h.session_id == self.session_id;
        if !serves {
            if self.retired.iter().any(|&r| r == h.session_id) {
                return Err(Dropped::WrongSession);
            }
            // A host's word on one session is good for the packet it was given for, no later one: by then another
            // connection may have started that session.
            let approval = core::mem::replace(&mut self.approval, Approval::None);
            let approved = match approval {
                Approval::Session(id) => id == h.session_id,
                Approval::First => !self.session_known,
                Approval::None => false,
            };
            if !approved {
                // The session may live in another connection's engine (with its replay window): the host decides.
                self.unknown_session = Some((h.session_id, h.msg_id));
                return Err(Dropped::UnknownSession);
            }
        }
        if !self.session_known {
            // The first authenticated packet names the session, even if it is refused below, so the refusal's
            // notification and spent id belong to it.
            self.switch_session(now, h.session_id)?;
        }
        let same_session = h.session_id == self.session_id;
        // A message already received is dropped silently (re-acked) before any other check, so a duplicate or
        // replay never provokes a notification that could make the client rename, and so repeat, a message.
        if same_session && self.inbound.window().contains(h.msg_id) {
            if is_container {
                self.notify_bad(now, h.msg_id, h.seq_no, BadMsgCode::ContainerIdReused);
            } else if h.seq_no % 2 == 1 {
                let _ = self.acks.push(now, h.msg_id);
            }
            return Err(Dropped::BadMsgId);
        }
        // Parity and time before the session: a stale replay must not start (and so reset) a session.
        let early = check_parity(h.msg_id, Side::Client).and_then(|()| {
            TimeWindow {
                past: self.cfg.limits.msg_id_max_past,
                future: self.cfg.limits.msg_id_max_future,
            }
            .check(h.msg_id, unix)
        });
        if let Err(e) = early {
            if same_session {
                if let Some(code) = e.bad_msg_code(is_container) {
                    self.notify_bad(now, h.msg_id, h.seq_no, code);
                }
                if e == MsgIdReject::TooHigh {
                    self.burn(h.msg_id, unix);
                }
            }
            return Err(Dropped::BadMsgId);
        }
        if h.session_id != self.session_id {
            self.switch_session(now, h.session_id)?;
        }
        if self.cfg.strict_order && self.inbound.window().highest().is_some_and(|hi| h.msg_id < hi) {
            return Err(Dropped::OutOfOrder);
        }
        match self.inbound.check(h.msg_id, unix, true) {
            Ok(()) => {}
            Err(MsgIdReject::Duplicate) => {
                if is_container {
                    self.notify_bad(now, h.msg_id, h.seq_no, BadMsgCode::ContainerIdReused);
                } else if h.seq_no % 2 == 1 {
                    let _ = self.acks.push(now, h.msg_id);
                }
                return Err(Dropped::BadMsgId);
            }
            Err(e) => {
                if let Some(code) = e.bad_msg_code(is_container) {
                    self.notify_bad(now, h.msg_id, h.seq_no, code);
                }
                return Err(Dropped::BadMsgId);
            }
        }
        // Item 35: the current salt, or the previous one during its grace period; salt 0 never passes.
        if let Some(s) = self.server_salts.as_ref()
            && s.check(h.salt, unix).is_err()
        {
            self.stats.bad_msgs += 1;
            self.push_owed(
                now,
                Owed::BadSalt {
                    bad: h.msg_id,
                    seq_no: h.seq_no,
                },
            );
            // The id is spent: a delayed copy of this packet must not be accepted once the salt (or the client's
            // clock) would pass, after the client re-sent its content under a new msg_id.
            self.burn(h.msg_id, unix);
            return Err(Dropped::BadSalt);
        }
        if is_container {
            let c = match MsgContainer::decode(body) {
                Ok(c) => c,
                Err(_) => {
                    self.notify_bad(now, h.msg_id, h.seq_no, BadMsgCode::InvalidContainer);
                    return Err(Dropped::Malformed);
                }
            };
            if let Err(e) = self.check_container(&h, &c, gz.get_mut(*gz_used..).unwrap_or(&mut [])) {
                self.notify_bad(now, h.msg_id, h.seq_no, BadMsgCode::InvalidContainer);
                return Err(e);
            }
            if let Err(e) = self.seq_check.check(h.msg_id, h.seq_no, false) {
                self.notify_bad(now, h.msg_id, h.seq_no, e.bad_msg_code());
                self.burn(h.msg_id, unix);
                return Err(Dropped::BadSeqNo);
            }
            // Accepted as a whole (item 48): every inner message is processed, now or as room frees up.
            let _ = self.inbound.accept(h.msg_id, unix, true);
            self.seq_check.record(h.msg_id, h.seq_no);
            let at = span_of(rx, body, Buf::Rx);
            self.held = Some(Held {
                next: at.off.saturating_add(CONTAINER_HDR as u32),
                end: at.off.saturating_add(at.len),
                left: u32::try_from(c.messages.len()).unwrap_or(0),
                unix,
                single: None,
            });
        } else {
            if let Err(e) = self
                .seq_check
                .check(h.msg_id, h.seq_no, is_content_related(body, h.seq_no))
            {
                self.notify_bad(now, h.msg_id, h.seq_no, e.bad_msg_code());
                self.burn(h.msg_id, unix);
                return Err(Dropped::BadSeqNo);
            }
            let _ = self.inbound.accept(h.msg_id, unix, true);
            self.seq_check.record(h.msg_id, h.seq_no);
            let at = span_of(rx, body, Buf::Rx);
            self.held = Some(Held {
                next: at.off,
                end: at.off.saturating_add(at.len),
                left: 1,
                unix,
                single: Some((h.msg_id, h.seq_no)),
            });
        }
        self.resume(now, rx, gz, gz_used);
        Ok(())
    }

    /// DC: processes the held packet's messages in order while each has room for what it produces: an answer in
    /// `owed` (every message may produce one, a notification at least) and, for a query, an event. Whatever is
    /// left waits, with no input taken meanwhile, until [`Engine::poll_event`] or [`Engine::poll_packet`] makes
    /// room: both drain without the peer's help, so the packet is always finished. (Waiting for room in the resend
    /// arena instead could wait for acknowledgements stuck behind this very packet.)
    pub(super) fn resume(&mut self, now: Instant, rx: &[u8], gz: &mut [u8], gz_used: &mut usize) {
        while let Some(mut h) = self.held {
            let rest = rx.get(h.next as usize..h.end as usize).unwrap_or(&[]);
            if let Some((id, seq_no)) = h.single {
                if !self.room_for(rest) {
                    return;
                }
                self.held = None;
                self.server_message(now, id, seq_no, rest, rx, gz, gz_used);
                continue;
            }
            if h.left == 0 {
                self.held = None;
                continue;
            }
            // The container was fully validated when it arrived (`check_container`): this cannot fail.
            let Ok(m) = Message::read_bare(&mut Reader::new(rest)) else {
                self.held = None;
                continue;
            };
            if !self.room_for(m.body) {
                return;
            }
            h.next = h.next.saturating_add((INNER_HDR + m.body.len()) as u32);
            h.left -= 1;
            self.held = (h.left > 0).then_some(h);
            self.server_member(now, h.unix, m, rx, gz, gz_used);
        }
    }

    /// Whether a received message with this body can be processed now (see [`resume`](Self::resume)): there is
    /// room for an answer, and a query has room for its event and, unless the host's last answer was refused for
    /// room in the arena, in the pending requests (a full table with answers refused gets `FLOOD_WAIT`,
    /// [`deliver_request`](Self::deliver_request)).
    pub(super) fn room_for(&self, body: &[u8]) -> bool {
        let pending_full = self.pending_reqs.is_full() && !self.answers_blocked;
        !self.owed.is_full() && !((self.events.is_full() || pending_full) && may_request(body))
    }

    /// DC: one inner message of an accepted container: its own msg_id and seq_no checks, then its processing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn server_member(
        &mut self,
        now: Instant,
        unix: UnixTime,
        m: Message<'_>,
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        let id = MsgId::from_wire(m.msg_id);
        let seq = m.seqno as u32;
        if self.inbound.window().contains(id) {
            if seq % 2 == 1 {
                let _ = self.acks.push(now, id);
            }
            return;
        }
        match self.inbound.check(id, unix, true) {
            Ok(()) => {}
            Err(MsgIdReject::Duplicate) => {
                if seq % 2 == 1 {
                    let _ = self.acks.push(now, id);
                }
                return;
            }
            Err(e) => {
                if let Some(code) = e.bad_msg_code(false) {
                    self.notify_bad(now, id, seq, code);
                }
                if e == MsgIdReject::TooHigh {
                    self.burn(id, unix);
                }
                return;
            }
        }
        if let Err(e) = self.seq_check.check(id, seq, is_content_related(m.body, seq)) {
            self.notify_bad(now, id, seq, e.bad_msg_code());
            self.burn(id, unix);
            return;
        }
        let _ = self.inbound.accept(id, unix, true);
        self.seq_check.record(id, seq);
        self.server_message(now, id, seq, m.body, rx, gz, gz_used);
    }

    /// DC: hands a query to the host, or, when `MSGS` requests already wait for its answers and the host's answers
    /// are refused for room (`answers_blocked`), refuses it with `FLOOD_WAIT_1`: answered, not executed; clients
    /// retry it after the second (Telethon on its own). Waiting instead could wait forever: the arena frees on
    /// acknowledgements, which the client queued behind this very packet.
    pub(super) fn deliver_request(&mut self, now: Instant, id: MsgId, body: Span) {
        if self.pending_reqs.push(id).is_err() {
            self.push_owed(now, Owed::FloodWait { req: id });
            return;
        }
        self.push_event(EvRec::Request { msg_id: id, body });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn server_message(
        &mut self,
        now: Instant,
        id: MsgId,
        seq_no: u32,
        body: &[u8],
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        if self.nsc_due && self.nsc_first.is_none_or(|f| id < f) {
            self.nsc_first = Some(id);
        }
        if seq_no % 2 == 1 && self.acks.push(now, id).is_err() {
            warn!("session: ack queue full");
        }
        let msg = match ServiceMessage::decode_body(body) {
            Ok(m) => m,
            Err(tl::DecodeError::UnknownConstructor(_)) => {
                self.deliver_request(now, id, span_of(rx, body, Buf::Rx));
                return;
            }
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        match msg {
            ServiceMessage::Ping(p) => self.push_owed(
                now,
                Owed::Pong {
                    ping: id,
                    ping_id: p.ping_id,
                },
            ),
            ServiceMessage::PingDelayDisconnect(p) => {
                let delay = p.disconnect_delay.clamp(0, MAX_DISCONNECT_DELAY) as u64;
                self.disconnect_at = Some(now.saturating_add(Duration::from_secs(delay)));
                self.push_owed(
                    now,
                    Owed::Pong {
                        ping: id,
                        ping_id: p.ping_id,
                    },
                );
            }
            ServiceMessage::GetFutureSalts(g) => self.push_owed(
                now,
                Owed::FutureSalts {
                    req: id,
                    num: g.num.clamp(1, MAX_FUTURE_SALTS as i32) as u8,
                },
            ),
            ServiceMessage::MsgsStateReq(q) => self.answer_state(now, id, q.msg_ids, span_of(rx, body, Buf::Rx)),
            ServiceMessage::MsgResendReq(MsgResendReq { msg_ids }) => {
                self.on_resend_req(now, id, msg_ids, span_of(rx, body, Buf::Rx));
            }
            ServiceMessage::MsgResendAnsReq(tl::MsgResendAnsReq { msg_ids }) => {
                self.on_resend_ans_req(now, id, msg_ids, span_of(rx, body, Buf::Rx));
            }
            ServiceMessage::DestroySession(d) => {
                // Only sessions of this key are visible here (item 52); this engine holds one.
                let ok = d.session_id as u64 == self.session_id;
                self.push_owed(
                    now,
                    Owed::DestroySession {
                        session_id: d.session_id,
                        ok,
                    },
                );
            }
            ServiceMessage::MsgsAck(a) => {
                for mid in a.msg_ids.iter() {
                    self.on_ack(MsgId::from_wire(mid));
                }
            }
            // An API method that happens to be in the service schema: the host verifies it (`verify_bind`).
            ServiceMessage::AuthBindTempAuthKey(_) => self.deliver_request(now, id, span_of(rx, body, Buf::Rx)),
            // Never kept for resending (see `Owed`): it carries no result, and a client that lost it asks again.
            ServiceMessage::RpcDropAnswer(_) => self.push_owed(now, Owed::AnswerUnknown { req: id }),
            ServiceMessage::GzipPacked(g) => {
                if let Some(span) = self.inflate(&g, gz, gz_used) {
                    let inner = gz.get(span.off as usize..(span.off + span.len) as usize).unwrap_or(&[]);
                    let nested = matches!(
                        peek_ctor(inner),
                        Some(GzipPacked::CONSTRUCTOR | MsgContainer::CONSTRUCTOR | MsgCopy::CONSTRUCTOR)
                    );
                    if !nested && ServiceMessage::decode_body(inner).is_err() {
                        self.deliver_request(now, id, span);
                    }
                }
            }
            ServiceMessage::HttpWait(w) => {
                let cap = self.cfg.max_http_wait;
                let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0)).min(cap);
                let since = self.long_poll.map_or(now, |lp| lp.since);
                let (first_out, last_out) = self.long_poll.map_or((None, None), |lp| (lp.first_out, lp.last_out));
                self.long_poll = Some(LongPoll {
                    since,
                    max_delay: ms(w.max_delay),
                    wait_after: ms(w.wait_after),
                    max_wait: ms(w.max_wait),
                    first_out,
                    last_out,
                });
            }
            // msg_copy is rejected (item 51); handshake and server-only constructors from a client are ignored.
            _ => {}
        }
    }
}
