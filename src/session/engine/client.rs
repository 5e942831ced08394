//! The client's side of a session: its state ([`ClientState`]: salts, keepalive, quick acks), its receive path
//! (msg_id checks of items 32-34 against a clock the DC corrects, then results, updates and service messages), its
//! reactions to `bad_msg_notification` / `bad_server_salt` (item 43), `new_session_created`, `future_salts` and
//! `pong`, and its housekeeping (pings, `msgs_state_req`, `get_future_salts`).
//!
//! Received bodies come from `recv.rs` (decrypted, in the receive or inflate buffer); results and updates go to the
//! host as events; messages to send go to the outbox.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use sha2::{Digest, Sha256};

use crate::session::bad_msg::BadMsgCode;
use crate::session::event::{Dropped, FailReason};
use crate::session::limits::MAX_FUTURE_SALTS;
use crate::session::msg_id::{MsgId, MsgIdGen};
use crate::session::pending::{SentKind, SentTracker};
use crate::session::replay::{MsgIdReject, TimeWindow};
use crate::session::salts::{ClientSalts, FutureSalt as SaltEntry};
use crate::session::seqno::SeqNoGen;
use crate::time::{Instant, UnixTime};
use crate::tl::gzip::GzipError;
use crate::tl::{
    self, GzipPacked, MsgContainer, MsgResendReq, NewSessionCreated, Pong, RpcError, RpcResult, ServiceMessage, TlRead,
};

use super::outbox::Slot;
use super::recv::{Buf, EvRec, Header, Held, Span, peek_ctor, span_of};
use super::{CONTAINER_HDR, Core};

/// Quick-ack tokens remembered per connection.
pub(super) const QUICK_ACKS: usize = 8;

/// What only a client engine keeps: its salts, the keepalive, quick-ack tokens, and what its clock and replay
/// checks need beyond the shared window.
pub(super) struct ClientState {
    pub(super) salts: ClientSalts<MAX_FUTURE_SALTS>,
    /// The highest id accepted below a full replay window (see `client_check`); a replay of it is refused.
    pub(super) below_window: Option<MsgId>,
    /// Quick-ack tokens of packets carrying queries, oldest first, with the packet's msg_id.
    pub(super) quick_acks: heapless::Deque<(u32, MsgId), QUICK_ACKS>,
    /// When the next keepalive `ping_delay_disconnect` is due, and the ping_id of the last one.
    pub(super) next_ping_at: Option<Instant>,
    pub(super) ping_counter: u64,
    /// A `get_future_salts` is in flight.
    pub(super) salts_requested: bool,
    /// The `unique_id` of the last `new_session_created`; a copy of it (re-sent by a DC under a new msg_id after a
    /// hand-over, [`Session::hand_over`]) is acked and ignored.
    ///
    /// [`Session::hand_over`]: super::Session::hand_over
    pub(super) nsc_seen: Option<i64>,
    /// When this engine's first packet left. A server message in its session cannot be older (the session id is
    /// fresh), which bounds how far a clock set from that message may lag (see `learn_time`).
    pub(super) first_sent: Option<Instant>,
}

impl ClientState {
    /// A client starting with `salt` (0 if unknown), its first keepalive due at `next_ping_at`.
    pub(super) const fn new(salt: u64, next_ping_at: Option<Instant>) -> Self {
        ClientState {
            salts: ClientSalts::new(salt, Duration::from_secs(60)),
            below_window: None,
            quick_acks: heapless::Deque::new(),
            next_ping_at,
            ping_counter: 0,
            salts_requested: false,
            nsc_seen: None,
            first_sent: None,
        }
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    /// Client: a new session id (derived from the old one, no RNG needed) with fresh msg_ids and seq_nos; every
    /// message still in flight is sent again under a new id, except those the DC acknowledged.
    pub(super) fn restart_session(&mut self, now: Instant) {
        let mut h = Sha256::new();
        h.update(self.session_id.to_le_bytes());
        h.update(self.clock.msg_time(now).to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        if let Some(x) = d.get(..8) {
            b.copy_from_slice(x);
        }
        self.session_id = u64::from_le_bytes(b);
        self.ids = MsgIdGen::new(self.role());
        self.seq = SeqNoGen::new();
        self.inbound.reset();
        self.tracker = SentTracker::new(TX, self.tracker.policy());
        self.outbox.forced.clear();
        // Answers to the old session's messages mean nothing in the new one.
        self.owed.clear();
        if let Some(c) = self.role.client_mut() {
            c.below_window = None;
            c.quick_acks.clear();
            c.salts_requested = false;
        }
        let mut order: heapless::Vec<(MsgId, usize), MSGS> = heapless::Vec::new();
        for (i, s) in self.outbox.slots.iter().enumerate() {
            if let Some(s) = s {
                let _ = order.push((s.id, i));
            }
        }
        order.sort_unstable();
        for (id, i) in order {
            if self.outbox.slots.get(i).copied().flatten().is_some_and(|s| s.pinned) {
                self.fail(id, FailReason::MustRebuild);
                continue;
            }
            let (Ok(id), Ok(seq)) = (self.ids.next(now, &self.clock), self.seq.next(true)) else {
                continue;
            };
            if let Some(Some(s)) = self.outbox.slots.get_mut(i) {
                s.id = id;
                s.seq_no = seq;
                s.queued = true;
                s.in_tracker = false;
                s.sends = 0;
                s.acked = false;
            }
        }
        self.stats.resent += 1;
    }

    /// Whether the client may skip the time-window check for this body: a `bad_msg_notification` with code 16/17 or
    /// a `bad_server_salt` about a message we sent and still track (item 34's exception). A container is exempt
    /// (its outer id only) when it holds such a notification, as a DC may pack one with acks or other service
    /// messages; each member is still checked on its own, so only the notification gets past the window.
    pub(super) fn time_exempt(&self, body: &[u8]) -> bool {
        if peek_ctor(body) == Some(MsgContainer::CONSTRUCTOR) {
            return MsgContainer::decode(body).is_ok_and(|c| c.iter().any(|m| self.time_exempt_message(m.body)));
        }
        self.time_exempt_message(body)
    }

    pub(super) fn time_exempt_message(&self, body: &[u8]) -> bool {
        match ServiceMessage::decode_body(body) {
            Ok(ServiceMessage::BadMsg(b)) => {
                matches!(b.error_code, 16 | 17) && self.tracker.reference(MsgId::from_wire(b.bad_msg_id)).is_some()
            }
            Ok(ServiceMessage::BadServerSalt(b)) => self.tracker.reference(MsgId::from_wire(b.bad_msg_id)).is_some(),
            _ => false,
        }
    }

    pub(super) fn client_packet(
        &mut self,
        now: Instant,
        h: Header,
        body: &[u8],
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) -> Result<(), Dropped> {
        if h.session_id != self.session_id {
            return Err(Dropped::WrongSession);
        }
        if peek_ctor(body) == Some(GzipPacked::CONSTRUCTOR) {
            // gzip_packed around a whole message or container (item 50): inflate once, then process what it holds
            // from the inflate buffer; a second level of gzip inside is refused.
            let g = GzipPacked::decode(body).map_err(|_| Dropped::Malformed)?;
            // The msg_id checks come before any inflating: a replayed or stale packet costs no DEFLATE work. What a
            // gzipped body holds cannot make it time-exempt (that would need inflating it first), so a 16/17 about
            // our message reaches an off clock only unpacked, as DCs send it.
            self.client_check(now, h.msg_id, false)?;
            let start = *gz_used;
            let n = self.inflate_at(&g, gz, start).map_err(|e| match e {
                GzipError::OutputTooLarge => Dropped::TooLarge,
                _ => Dropped::Malformed,
            })?;
            if matches!(
                peek_ctor(gz.get(start..start + n).unwrap_or(&[])),
                Some(GzipPacked::CONSTRUCTOR)
            ) {
                return Err(Dropped::Malformed);
            }
            *gz_used = start + n;
            // The tail is scratch for the container check only: nothing inflates inside an inflated payload.
            let (done, rest) = gz.split_at_mut(start + n);
            let inner = done.get(start..).unwrap_or(&[]);
            return self.client_payload(now, h, inner, done, Buf::Gz, rest, &mut 0);
        }
        self.client_payload(now, h, body, rx, Buf::Rx, gz, gz_used)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn client_payload(
        &mut self,
        now: Instant,
        h: Header,
        body: &[u8],
        base: &[u8],
        which: Buf,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) -> Result<(), Dropped> {
        let exempt = self.time_exempt(body);
        self.client_check(now, h.msg_id, exempt)?;
        if peek_ctor(body) == Some(MsgContainer::CONSTRUCTOR) {
            let c = MsgContainer::decode(body).map_err(|_| Dropped::Malformed)?;
            self.check_container(&h, &c, gz.get_mut(*gz_used..).unwrap_or(&mut []))?;
            if self.events.is_full() || self.owed.is_full() {
                return Err(Dropped::Backpressure);
            }
            self.client_accept(now, h.msg_id, exempt)?;
            if !exempt {
                // Before the members: they are checked against what the container's id tells the clock.
                self.learn_time(now, h.msg_id);
            }
            // Accepted as a whole (item 48): every member is processed, now or as the host makes room.
            let at = span_of(base, body, which);
            self.held = Some(Held {
                next: at.off.saturating_add(CONTAINER_HDR as u32),
                end: at.off.saturating_add(at.len),
                left: u32::try_from(c.messages.len()).unwrap_or(0),
                buf: which,
                salt: h.salt,
                unix: self.clock.unix_time(now),
                single: None,
            });
            self.resume_in(now, base, gz, gz_used);
        } else {
            if self.events.is_full() || self.owed.is_full() {
                return Err(Dropped::Backpressure);
            }
            self.client_accept(now, h.msg_id, exempt)?;
            if !exempt {
                self.learn_time(now, h.msg_id);
            }
            self.client_message(now, h.msg_id, h.seq_no, h.salt, body, base, which, gz, gz_used);
        }
        if exempt {
            // After the notification: a 16/17 has set the clock exactly (its step decides how refused messages are
            // resent); a `bad_server_salt` about our message has not, and its id, authentic and fresh, does.
            self.learn_time(now, h.msg_id);
        }
        Ok(())
    }

    /// Client: one member of a held container (see [`Held`]), in order: its own msg_id checks, then its processing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn client_member(
        &mut self,
        now: Instant,
        id: MsgId,
        seq_no: u32,
        salt: u64,
        body: &[u8],
        base: &[u8],
        which: Buf,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        let exempt = self.time_exempt(body);
        if self.client_accept(now, id, exempt).is_err() {
            // A duplicate (a resend of something we have) or out of window: ignored, still acked.
            if seq_no % 2 == 1 {
                let _ = self.acks.push_message(now, id, body.len());
            }
            return;
        }
        self.client_message(now, id, seq_no, salt, body, base, which, gz, gz_used);
    }

    /// Client: what an accepted server msg_id tells the clock (item 34). On a clock no server has confirmed (a
    /// client on a stored key) the first one sets it, so the receive window is enforced from the session's first
    /// authenticated message on; see [`Clock::sync_to_first_server_msg`] for what that message is trusted for. Later
    /// ones move a clock that may lag forward within its bound ([`Clock::advance_within_lag`]).
    ///
    /// [`Clock::sync_to_first_server_msg`]: crate::session::Clock::sync_to_first_server_msg
    /// [`Clock::advance_within_lag`]: crate::session::Clock::advance_within_lag
    pub(super) fn learn_time(&mut self, now: Instant, id: MsgId) {
        if self.clock.is_synced() {
            self.clock.advance_within_lag(now, id);
        } else {
            // No packet sent yet: impossible for a message in our fresh session; trust no lag rather than guess.
            let since = self.role.client().and_then(|c| c.first_sent).unwrap_or(now);
            self.clock.sync_to_first_server_msg(since, now, id);
        }
    }

    /// Client: the receive time window (item 34): the configured past and future, the future widened by how far the
    /// DC's clock may still be ahead of ours ([`Clock::lag_bound`]).
    ///
    /// [`Clock::lag_bound`]: crate::session::Clock::lag_bound
    pub(super) fn client_window(&self) -> TimeWindow {
        TimeWindow {
            past: self.cfg.limits.msg_id_max_past,
            future: self
                .cfg
                .limits
                .msg_id_max_future
                .saturating_add(Duration::from_micros(self.clock.lag_bound())),
        }
    }

    /// Client: the msg_id checks of items 32-34 for a received id. The time window applies once the clock is
    /// synced, which is from the session's first authenticated message on (`learn_time`). `exempt` (a 16/17 or
    /// `bad_server_salt` about a message we sent and still track, see `time_exempt`) skips the time window and may
    /// also lie below a full replay window: a DC that restarted with its clock behind sends every id below those we
    /// remember, and its notification is the only way to learn it (the session then restarts on the corrected clock,
    /// with an empty window). Its proof makes it fresh; a replay of it is refused by `below_window`, as ids below
    /// the window are not remembered.
    pub(super) fn client_check(&self, now: Instant, id: MsgId, exempt: bool) -> Result<(), Dropped> {
        let unix = self.clock.unix_time(now);
        if self.clock.is_synced() && !exempt && self.client_window().check(id, unix).is_err() {
            return Err(Dropped::BadMsgId);
        }
        match self.inbound.check(id, unix, false) {
            Ok(()) => Ok(()),
            Err(MsgIdReject::OlderThanWindow)
                if exempt && self.role.client().and_then(|c| c.below_window).is_none_or(|b| id > b) =>
            {
                Ok(())
            }
            Err(_) => Err(Dropped::BadMsgId),
        }
    }

    /// [`client_check`](Self::client_check), then remember `id`.
    pub(super) fn client_accept(&mut self, now: Instant, id: MsgId, exempt: bool) -> Result<(), Dropped> {
        self.client_check(now, id, exempt)?;
        let unix = self.clock.unix_time(now);
        match self.inbound.accept(id, unix, false) {
            Ok(()) => Ok(()),
            Err(MsgIdReject::OlderThanWindow) => {
                if let Some(c) = self.role.client_mut() {
                    c.below_window = Some(id);
                }
                Ok(())
            }
            Err(_) => Err(Dropped::BadMsgId),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn client_message(
        &mut self,
        now: Instant,
        id: MsgId,
        seq_no: u32,
        salt: u64,
        body: &[u8],
        base: &[u8],
        which: Buf,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        if seq_no % 2 == 1 && self.acks.push_message(now, id, body.len()).is_err() {
            warn!("session: ack queue full");
        }
        let msg = match ServiceMessage::decode_body(body) {
            Ok(m) => m,
            Err(tl::DecodeError::UnknownConstructor(_)) => {
                if seq_no % 2 == 1 {
                    self.push_event(EvRec::Update(span_of(base, body, which)));
                }
                return;
            }
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        match msg {
            ServiceMessage::RpcResult(r) => self.on_rpc_result(r, salt, base, which, gz, gz_used),
            ServiceMessage::MsgsAck(a) => {
                for mid in a.msg_ids.iter() {
                    self.on_ack(MsgId::from_wire(mid));
                }
            }
            ServiceMessage::BadMsg(b) => {
                self.on_bad_msg(now, id, MsgId::from_wire(b.bad_msg_id), b.error_code, None);
            }
            ServiceMessage::BadServerSalt(b) => {
                self.on_bad_msg(
                    now,
                    id,
                    MsgId::from_wire(b.bad_msg_id),
                    b.error_code,
                    Some(b.new_server_salt as u64),
                );
            }
            // A copy of the one already handled (same unique_id) is ignored.
            ServiceMessage::NewSessionCreated(n) => self.on_new_session_created(now, &n),
            ServiceMessage::Pong(p) => self.on_pong(&p, span_of(base, body, which)),
            ServiceMessage::FutureSalts(f) => self.on_future_salts(now, &f),
            ServiceMessage::MsgsStateInfo(info) => self.on_state_info(&info),
            ServiceMessage::MsgDetailed(d) if self.tracker.reference(MsgId::from_wire(d.msg_id)).is_some() => {
                self.on_answer_exists(now, MsgId::from_wire(d.answer_msg_id));
            }
            ServiceMessage::MsgNewDetailedInfo(d) => self.on_answer_exists(now, MsgId::from_wire(d.answer_msg_id)),
            ServiceMessage::MsgResendReq(MsgResendReq { msg_ids }) => {
                self.on_resend_req(now, id, msg_ids, span_of(base, body, which));
            }
            ServiceMessage::MsgResendAnsReq(tl::MsgResendAnsReq { msg_ids }) => {
                self.on_resend_ans_req(now, id, msg_ids, span_of(base, body, which));
            }
            // Either party may ask about the state of the messages it sent (a DC's `msgs_state_req`).
            ServiceMessage::MsgsStateReq(q) => self.answer_state(now, id, q.msg_ids, span_of(base, body, which)),
            // A gzipped update inside a container; never a second level of gzip.
            ServiceMessage::GzipPacked(_) if which == Buf::Gz => self.stats.dropped += 1,
            ServiceMessage::GzipPacked(g) => self.on_gzipped_update(&g, seq_no, gz, gz_used),
            // msg_copy is rejected (item 51); the rest is informational or not for a client.
            _ => {}
        }
    }

    /// `new_session_created` (item 46: authenticated, in this session, and through the msg_id checks): the DC's
    /// salt is adopted and what we sent before `first_msg_id` goes again. A copy of the one already handled (same
    /// `unique_id`) is ignored.
    fn on_new_session_created(&mut self, now: Instant, n: &NewSessionCreated) {
        let Some(c) = self.role.client_mut() else { return };
        if c.nsc_seen == Some(n.unique_id) {
            return;
        }
        c.nsc_seen = Some(n.unique_id);
        c.salts.adopt_new_session_salt(n.server_salt as u64);
        let first = MsgId::from_wire(n.first_msg_id);
        self.tracker.requeue_before(first, now);
        self.push_event(EvRec::Reset(first));
    }

    /// `pong` (whose body is `body`): the keepalive's own ping ends silently; a ping the host sent as a query ends,
    /// like any query, in one event carrying the pong (item 45: both the msg_id and the ping_id match).
    fn on_pong(&mut self, p: &Pong, body: Span) {
        let pinged = MsgId::from_wire(p.msg_id);
        if let Some(r) = self.tracker.resolve_pong(pinged, p.ping_id as u64) {
            self.outbox.free(r.handle);
        } else if self.is_user_ping(pinged, p.ping_id)
            && let Some(res) = self.tracker.resolve_rpc(pinged)
        {
            let req = self
                .outbox
                .slots
                .get(res.handle.0 as usize)
                .copied()
                .flatten()
                .map_or(pinged, |s| s.orig);
            self.outbox.free(res.handle);
            self.push_event(EvRec::Result { req, body });
        }
    }

    /// A `gzip_packed` update (not inside an inflated payload): inflated, and reported if content-related and
    /// neither gzip nor a container inside (a container inside it is not unpacked: containers do not nest).
    fn on_gzipped_update(&mut self, g: &GzipPacked<'_>, seq_no: u32, gz: &mut [u8], gz_used: &mut usize) {
        if let Some(span) = self.inflate(g, gz, gz_used)
            && seq_no % 2 == 1
        {
            let inner = gz.get(span.off as usize..(span.off + span.len) as usize).unwrap_or(&[]);
            if !matches!(
                peek_ctor(inner),
                Some(GzipPacked::CONSTRUCTOR | MsgContainer::CONSTRUCTOR)
            ) {
                self.push_event(EvRec::Update(span));
            }
        }
    }

    /// Whether `id` is a query the host sent whose body is a `ping` or `ping_delay_disconnect` with `ping_id`.
    pub(super) fn is_user_ping(&self, id: MsgId, ping_id: i64) -> bool {
        let Some((_, s)) = self.outbox.slot_by_id(id) else {
            return false;
        };
        if s.kind != SentKind::RpcQuery {
            return false;
        }
        match ServiceMessage::decode_body(self.outbox.body_of(&s)) {
            Ok(ServiceMessage::Ping(p)) => p.ping_id == ping_id,
            Ok(ServiceMessage::PingDelayDisconnect(p)) => p.ping_id == ping_id,
            _ => false,
        }
    }

    pub(super) fn on_rpc_result(
        &mut self,
        r: RpcResult<'_>,
        salt: u64,
        base: &[u8],
        which: Buf,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        let wire_req = MsgId::from_wire(r.req_msg_id);
        // Item 42: only the first result of a query we track resolves it; anything else is ignored (still acked).
        let Some(res) = self.tracker.resolve_rpc(wire_req) else {
            return;
        };
        let req = self
            .outbox
            .slots
            .get(res.handle.0 as usize)
            .copied()
            .flatten()
            .map_or(wire_req, |s| s.orig);
        if let Some(c) = self.role.client_mut() {
            let _ = c.salts.adopt_response_salt(&res.proof, salt);
        }
        self.outbox.free(res.handle);
        // A gzipped result is inflated (once: no gzip inside gzip, item 50) and read from the inflate buffer.
        let (base, data, which): (&[u8], &[u8], Buf) = match peek_ctor(r.result) {
            Some(GzipPacked::CONSTRUCTOR) => match self.inflate_result(r.result, which, gz, gz_used) {
                Ok(s) => {
                    let d = gz.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[]);
                    (&*gz, d, Buf::Gz)
                }
                Err(reason) => return self.push_event(EvRec::Failed { req, reason }),
            },
            _ => (base, r.result, which),
        };
        match peek_ctor(data) {
            Some(RpcError::CONSTRUCTOR) => match RpcError::decode(data) {
                Ok(e) => {
                    let msg = span_of(base, e.error_message, which);
                    self.push_event(EvRec::Error {
                        req,
                        code: e.error_code,
                        msg,
                    });
                }
                Err(_) => self.push_event(EvRec::Failed {
                    req,
                    reason: FailReason::MalformedResult,
                }),
            },
            // No gzip inside gzip (item 50).
            Some(GzipPacked::CONSTRUCTOR) => {
                self.push_event(EvRec::Failed {
                    req,
                    reason: FailReason::MalformedResult,
                });
            }
            _ => self.push_event(EvRec::Result {
                req,
                body: span_of(base, data, which),
            }),
        }
    }

    /// Inflates a `gzip_packed` result into the inflate buffer; why the query fails if it cannot.
    fn inflate_result(
        &mut self,
        result: &[u8],
        which: Buf,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) -> Result<Span, FailReason> {
        // Already inside an inflated payload: no gzip inside gzip (item 50).
        if which == Buf::Gz {
            return Err(FailReason::MalformedResult);
        }
        let g = GzipPacked::decode(result).map_err(|_| FailReason::MalformedResult)?;
        let start = *gz_used;
        match self.inflate_at(&g, gz, start) {
            Ok(n) => {
                *gz_used = start + n;
                Ok(Span {
                    buf: Buf::Gz,
                    off: start as u32,
                    len: n as u32,
                })
            }
            Err(GzipError::OutputTooLarge) => Err(FailReason::ResultTooLarge),
            Err(_) => Err(FailReason::MalformedResult),
        }
    }

    pub(super) fn on_quick_ack(&mut self, token: u32) {
        let token = token | 0x8000_0000;
        let Some(c) = self.role.client_mut() else { return };
        let Some(pos) = c.quick_acks.iter().position(|&(t, _)| t == token) else {
            return;
        };
        let mut outer = MsgId(0);
        for _ in 0..=pos {
            if let Some((_, id)) = c.quick_acks.pop_front() {
                outer = id;
            }
        }
        let mut members: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for m in self.tracker.members_of(outer) {
            let _ = members.push(m);
        }
        self.on_ack(outer);
        for m in members {
            self.on_ack(m);
        }
    }

    /// `bad_msg_notification` / `bad_server_salt` (item 43): acted upon only if it names a message we sent and
    /// still track; the proof gates the clock and salt updates (B20).
    pub(super) fn on_bad_msg(&mut self, now: Instant, server_id: MsgId, bad: MsgId, code: i32, salt: Option<u64>) {
        let Some(proof) = self.tracker.reference(bad) else {
            return;
        };
        let Ok(code) = BadMsgCode::from_code(code) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.bad_msgs += 1;
        match code {
            BadMsgCode::MsgIdTooLow | BadMsgCode::MsgIdTooHigh => {
                let before = self.clock.unix_offset();
                self.clock.sync_to_server_msg_id(&proof, now, server_id);
                // A refusal explained by a clock step beyond the DC's tolerance is our clock's fault, not the
                // message's age: the DC checks for a duplicate before the time (so it does not hold this id), and
                // under the old clock the id can never pass. A message sent before (a reconnect's resend) is then
                // renamed too, as a session restart renames everything; otherwise it would be refused until its
                // attempts ran out.
                let step = self.clock.unix_offset().abs_diff(before);
                let tolerance = u64::try_from(self.cfg.limits.msg_id_max_future.as_micros()).unwrap_or(u64::MAX);
                let clock_fault = step > tolerance;
                let ahead = self
                    .ids
                    .last()
                    .is_some_and(|l| l.0 > self.clock.msg_time(now).saturating_add(30 << 32));
                if ahead {
                    // Our ids ran ahead of the corrected clock and must stay increasing within a session: start
                    // a new session, whose fresh ids follow the corrected clock (item 36).
                    self.restart_session(now);
                } else {
                    self.resend_new_id_with(now, bad, clock_fault);
                }
            }
            BadMsgCode::BadServerSalt => {
                match salt {
                    Some(s) => {
                        if let Some(c) = self.role.client_mut() {
                            c.salts.adopt_bad_server_salt(&proof, s);
                        }
                    }
                    None => return,
                }
                self.resend_new_id(now, bad);
            }
            BadMsgCode::ContainerIdReused => {
                // The DC already has a container with this id (a duplicate arrived): its members go again, under
                // their own ids, in a new container.
                let mut members: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
                for m in self.tracker.members_of(bad) {
                    let _ = members.push(m);
                }
                for m in members {
                    self.outbox.force(m);
                }
            }
            BadMsgCode::MsgIdBadParity
            | BadMsgCode::MsgTooOld
            | BadMsgCode::SeqNoTooLow
            | BadMsgCode::SeqNoTooHigh
            | BadMsgCode::InvalidContainer => self.resend_new_id(now, bad),
            BadMsgCode::EvenSeqNoExpected | BadMsgCode::OddSeqNoExpected => {
                // Our classification disagrees with the server's: resending cannot help.
                let mut ids: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
                if proof.kind() == SentKind::Container {
                    for m in self.tracker.members_of(bad) {
                        let _ = ids.push(m);
                    }
                    let _ = self.tracker.remove(bad);
                } else {
                    let _ = ids.push(bad);
                }
                for id in ids {
                    if self.tracker.kind_of(id) == Some(SentKind::RpcQuery) {
                        self.fail(id, FailReason::Rejected(code));
                    } else if let Some(r) = self.tracker.remove(id) {
                        self.outbox.free(r.handle);
                    }
                }
            }
        }
    }

    pub(super) fn on_future_salts(&mut self, now: Instant, f: &tl::FutureSalts<'_>) {
        let Some(res) = self.tracker.resolve_future_salts(MsgId::from_wire(f.req_msg_id)) else {
            return;
        };
        self.outbox.free(res.handle);
        if let Some(c) = self.role.client_mut() {
            c.salts_requested = false;
        }
        let mut v: heapless::Vec<SaltEntry, MAX_FUTURE_SALTS> = heapless::Vec::new();
        for s in f.salts.iter() {
            let e = SaltEntry {
                valid_since: UnixTime(u64::try_from(s.valid_since).unwrap_or(0)),
                valid_until: UnixTime(u64::try_from(s.valid_until).unwrap_or(0)),
                salt: s.salt as u64,
            };
            if v.push(e).is_err() {
                return;
            }
        }
        let unix = self.clock.unix_time(now);
        if let Some(c) = self.role.client_mut() {
            let _ = c.salts.store_future_salts(&res.proof, unix, &v);
        }
    }

    /// Client: asks with `msgs_state_req` about acknowledged queries still unanswered after `state_check_after`.
    pub(super) fn check_states(&mut self, now: Instant) {
        let Some(after) = self.cfg.state_check_after else {
            return;
        };
        if self.outbox.slots.iter().flatten().any(|s| s.kind == SentKind::StateReq) {
            return;
        }
        let due = |s: &Slot| {
            s.kind == SentKind::RpcQuery
                && s.acked
                && !s.queued
                && !s.pinned
                && s.checked_at
                    .or(s.sent_at)
                    .is_some_and(|t| t.saturating_add(after) <= now)
        };
        let mut ids: heapless::Vec<i64, MSGS> = heapless::Vec::new();
        for s in self.outbox.slots.iter().flatten().filter(|s| due(s)) {
            let _ = ids.push(s.id.to_wire());
        }
        if ids.is_empty() {
            return;
        }
        let req = tl::MsgsStateReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        };
        if self.queue_tl(now, SentKind::StateReq, true, false, &req) {
            for s in self.outbox.slots.iter_mut().flatten() {
                if due(s) {
                    s.checked_at = Some(now);
                }
            }
        }
    }

    /// Client housekeeping before a packet is written: the keepalive ping, `msgs_state_req` about unanswered
    /// queries, and `get_future_salts` ahead of the salt's expiry.
    pub(super) fn client_housekeeping(&mut self, now: Instant) {
        let interval = self.cfg.ping_interval;
        if let Some(c) = self.role.client_mut()
            && let Some(at) = c.next_ping_at
            && now >= at
            && let Some(iv) = interval
        {
            c.ping_counter = c.ping_counter.wrapping_add(1);
            c.next_ping_at = Some(now.saturating_add(iv));
            let ping_id = c.ping_counter as i64;
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
        }
        self.check_states(now);
        let unix = self.clock.unix_time(now);
        let Some(c) = self.role.client_mut() else { return };
        c.salts.advance(unix);
        if self.cfg.future_salts && !c.salts_requested && c.salts.should_fetch(unix) {
            let g = tl::GetFutureSalts { num: 32 };
            if self.queue_tl(now, SentKind::GetFutureSalts, true, false, &g)
                && let Some(c) = self.role.client_mut()
            {
                c.salts_requested = true;
            }
        }
    }
}
