//! The DC's side of a session: its state ([`DcState`]: salt schedule, session admission, the held packet,
//! requests awaiting the host), its receive path (session, msg_id, salt and seq_no checks with the notifications the
//! spec asks for, then every message of the accepted packet in order as room frees up), its answers and long polls.
//!
//! Received bodies come from `recv.rs`; queries go to the host as [`Event::Request`](super::Event::Request) and
//! come back through [`Session::answer`]; service messages are answered through `owed` (`service.rs`).
//!
//! [`Session::answer`]: super::Session::answer
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::session::bad_msg::BadMsgCode;
use crate::session::event::{Dropped, SendError};
use crate::session::limits::{DEFAULT_REPLAY_WINDOW, MAX_FUTURE_SALTS};
use crate::session::msg_id::{MsgId, Role};
use crate::session::pending::{BodyHandle, SentKind, SentTracker};
use crate::session::replay::{MsgIdReject, TimeWindow, check_parity};
use crate::session::salts::{ServerSaltPolicy, ServerSalts};
use crate::session::seqno::{SeqNoChecker, SeqNoGen};
use crate::time::{Instant, UnixTime};
use crate::tl::{
    self, GzipPacked, MsgContainer, MsgCopy, MsgResendReq, NewSessionCreated, RpcResult, ServiceMessage, TlRead,
    TlWrite, Writer,
};

use super::recv::{Buf, EvRec, Header, Held, Span, is_content_related, peek_ctor, span_of};
use super::service::{Owed, Refusal};
use super::{CONTAINER_HDR, Core, MAX_DISCONNECT_DELAY, RETIRED_SESSIONS, SessionConfig};

/// DC: the host's word on a client session this engine does not serve yet (see [`Session::approve_session`]).
///
/// [`Session::approve_session`]: super::Session::approve_session
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

/// DC: a long poll a client asked for with `http_wait` (MTProto over HTTP), held until
/// [`answer_at`](Self::answer_at). While one is held, [`Session::poll_packet`] writes nothing before that instant; then
/// it writes what is queued, or (at `max_wait`, with nothing queued) an acknowledgement-only packet or an empty
/// container, and the long poll ends. The host keeps the HTTP exchange that carried the `http_wait` open until then.
///
/// An HTTP host calls `poll_packet` only when it has an open exchange to answer (one packet per response), and
/// sleeps until [`Session::poll_timeout`], which includes `answer_at`. Over TCP a client has no reason to send
/// `http_wait`; one that does only delays its own traffic, by at most [`SessionConfig::max_http_wait`].
///
/// [`Session::poll_packet`]: super::Session::poll_packet
/// [`Session::poll_timeout`]: super::Session::poll_timeout
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

/// The length of a salt rotation period, in seconds (never 0).
pub(super) fn rotation_secs(cfg: &SessionConfig) -> u64 {
    cfg.limits.salt_rotation.as_secs().max(1)
}

/// What only a DC engine keeps: the salt schedule, which client session it serves and which it may start, the
/// packet it is working through, and the requests the host has not answered yet.
pub(super) struct DcState<const MSGS: usize> {
    /// Whether a client session is served (false until the first authenticated message names one).
    pub(super) session_known: bool,
    pub(super) seq_check: SeqNoChecker<DEFAULT_REPLAY_WINDOW>,
    /// The current (and previous) salt; `None` only if the schedule could not start.
    pub(super) salts: Option<ServerSalts>,
    /// The secret every period's salt is derived from ([`DcState::derived_salt`]).
    pub(super) salt_secret: [u8; 32],
    /// A salt fixed for one rotation period (the handshake's), overriding the derived one.
    pub(super) first_salt: Option<(u64, u64)>,
    /// Requests delivered and not yet answered (at most `MSGS`; beyond, [`Owed::FloodWait`]).
    pub(super) pending_reqs: heapless::Vec<MsgId, MSGS>,
    /// The host's last answer was refused with `QueueFull` (the arena waits for acknowledgements).
    pub(super) answers_blocked: bool,
    /// When to report [`Event::DisconnectRequested`](super::Event::DisconnectRequested) (`ping_delay_disconnect`).
    pub(super) disconnect_at: Option<Instant>,
    /// The first msg_id of the new session, for its `new_session_created` (owed while `nsc_due`).
    pub(super) nsc_first: Option<MsgId>,
    pub(super) nsc_due: bool,
    /// Connection ids of this key served before and finished: their late packets are dropped.
    pub(super) retired: heapless::Deque<u64, RETIRED_SESSIONS>,
    /// Which client session the host allowed this engine to start ([`Session::approve_session`]); any other
    /// session it does not serve yet is refused with [`Dropped::UnknownSession`] and reported in `unknown_session`.
    ///
    /// [`Session::approve_session`]: super::Session::approve_session
    pub(super) approval: Approval,
    /// The (session_id, msg_id) of the last packet refused as [`Dropped::UnknownSession`].
    pub(super) unknown_session: Option<(u64, MsgId)>,
    pub(super) long_poll: Option<LongPoll>,
    /// Answers the engine gave queries itself (`FLOOD_WAIT_1`, `INPUT_FETCH_ERROR`, `rpc_answer_unknown`), newest
    /// last: they are sent once, never kept in the arena, so a client that lost the packet and sends the query
    /// again (same msg_id, already in the replay window, so never run) gets the same answer again
    /// ([`Core::resent_query`]). At most `MSGS`; the oldest is forgotten first, after which its resend is only
    /// acknowledged and the client's own timeout ends the query.
    pub(super) refused: heapless::Deque<Refusal, MSGS>,
}

impl<const MSGS: usize> Drop for DcState<MSGS> {
    fn drop(&mut self) {
        self.salt_secret.zeroize();
    }
}

impl<const MSGS: usize> DcState<MSGS> {
    /// A DC waiting for its first client message; its salt schedule starts from `salt_secret` (and `first_salt`).
    pub(super) fn new(salt_secret: [u8; 32], first_salt: Option<(u64, u64)>) -> Self {
        DcState {
            session_known: false,
            seq_check: SeqNoChecker::new(),
            salts: None,
            salt_secret,
            first_salt,
            pending_reqs: heapless::Vec::new(),
            answers_blocked: false,
            disconnect_at: None,
            nsc_first: None,
            nsc_due: false,
            retired: heapless::Deque::new(),
            approval: Approval::None,
            unknown_session: None,
            long_poll: None,
            refused: heapless::Deque::new(),
        }
    }

    /// Makes this what [`new`](Self::new) returns, in place: the 12 KiB seq_no window is cleared where it lies
    /// instead of built again on the stack. Every field is named, so a new one cannot be forgotten here.
    pub(super) fn reinit(&mut self, salt_secret: [u8; 32], first_salt: Option<(u64, u64)>) {
        let DcState {
            session_known,
            seq_check,
            salts,
            salt_secret: secret,
            first_salt: first,
            pending_reqs,
            answers_blocked,
            disconnect_at,
            nsc_first,
            nsc_due,
            retired,
            approval,
            unknown_session,
            long_poll,
            refused,
        } = self;
        *session_known = false;
        seq_check.clear();
        *salts = None;
        secret.zeroize();
        *secret = salt_secret;
        *first = first_salt;
        pending_reqs.clear();
        *answers_blocked = false;
        *disconnect_at = None;
        *nsc_first = None;
        *nsc_due = false;
        retired.clear();
        *approval = Approval::None;
        *unknown_session = None;
        *long_poll = None;
        refused.clear();
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

    /// Forgets the session-bound part: what a new (or forgotten) client session starts without.
    fn reset(&mut self) {
        // In place: a new value would cross the stack (12 KiB).
        self.seq_check.clear();
        self.pending_reqs.clear();
        self.answers_blocked = false;
        self.nsc_first = None;
        self.nsc_due = false;
        self.disconnect_at = None;
        self.long_poll = None;
        self.refused.clear();
    }
}

// ---- salts ---------------------------------------------------------------------------------------------------

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    /// Starts the salt schedule at the period of `now` (a DC; nothing for a client).
    pub(super) fn init_server_salts(&mut self, now: Instant) {
        let rot = rotation_secs(&self.cfg);
        let unix = self.clock.unix_time(now).0;
        let p = unix / rot;
        let policy = ServerSaltPolicy {
            rotation: Duration::from_secs(rot),
            grace: self.cfg.limits.salt_grace,
        };
        if let Some(dc) = self.role.dc_mut() {
            dc.salts = ServerSalts::new(dc.derived_salt(p), UnixTime(p * rot), policy).ok();
        }
    }

    pub(super) fn rotate_server_salt(&mut self, now: Instant) {
        let unix = self.clock.unix_time(now);
        let rot = rotation_secs(&self.cfg);
        let Some(dc) = self.role.dc_mut() else { return };
        let mut guard = 0;
        while let Some(s) = dc.salts.as_ref()
            && s.rotation_due(unix)
            && guard < 4
        {
            let at = s.next_rotation();
            let salt = dc.derived_salt(at.0 / rot);
            if let Some(s) = dc.salts.as_mut() {
                let _ = s.rotate(at, salt);
            }
            guard += 1;
        }
        if dc.salts.as_ref().is_some_and(|s| s.rotation_due(unix)) {
            // A jump of more than a few periods: restart the schedule at now.
            self.init_server_salts(now);
        }
    }

    /// DC housekeeping before a packet is written: the salt rotation, and `new_session_created` once the new
    /// session's first message is known.
    pub(super) fn dc_housekeeping<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
        self.rotate_server_salt(now);
        let Some(dc) = self.role.dc() else { return };
        if dc.nsc_due
            && let Some(first) = dc.nsc_first
        {
            let salt = dc.salts.as_ref().map_or(0, ServerSalts::current);
            let n = NewSessionCreated {
                first_msg_id: first.to_wire(),
                unique_id: rng.next_u64() as i64,
                server_salt: salt as i64,
            };
            if self.queue_tl(now, SentKind::Service, true, false, &n)
                && let Some(dc) = self.role.dc_mut()
            {
                dc.nsc_due = false;
            }
        }
    }

    /// DC: whether `poll_packet` may write now, given a held long poll (see [`LongPoll`]): `None` while it is
    /// held, `Some(true)` when it is answered now (with an empty container if need be), `Some(false)` without one.
    pub(super) fn release_long_poll(&mut self, now: Instant) -> Option<bool> {
        let Some(lp) = self.role.dc().and_then(|dc| dc.long_poll) else {
            return Some(false);
        };
        if now < lp.answer_at(self.has_outbound(now)) {
            return None;
        }
        if let Some(dc) = self.role.dc_mut() {
            dc.long_poll = None;
        }
        Some(true)
    }

    // ---- answers -----------------------------------------------------------------------------------------------

    pub(super) fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
        let Some(dc) = self.role.dc() else {
            return Err(SendError::NotReady);
        };
        let pos = dc
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
        let Some(dc) = self.role.dc_mut() else { return r };
        // Whether the host can answer now decides what a query beyond the pending ones gets (`room_for`).
        dc.answers_blocked = r == Err(SendError::QueueFull);
        let id = r?;
        dc.pending_reqs.swap_remove(pos);
        Ok(id)
    }

    /// DC: hands a query to the host, or, when `MSGS` requests already wait for its answers and the host's answers
    /// are refused for room (`answers_blocked`), refuses it with `FLOOD_WAIT_1`: answered, not executed; clients
    /// retry it after the second (Telethon on its own). Waiting instead could wait forever: the arena frees on
    /// acknowledgements, which the client queued behind this very packet.
    fn deliver_request(&mut self, now: Instant, id: MsgId, body: Span) {
        if self.role.dc_mut().is_none_or(|dc| dc.pending_reqs.push(id).is_err()) {
            self.refuse_query(now, Owed::FloodWait { req: id });
            return;
        }
        self.push_event(EvRec::Request { msg_id: id, body });
    }

    // ---- sessions ----------------------------------------------------------------------------------------------

    /// Forgets the client session's state: replay window, what was sent and owed, and the DC's session-bound
    /// state; the engine then serves `session_id`.
    pub(super) fn reset_server_session(&mut self, session_id: u64) {
        self.inbound.reset();
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
        self.owed.clear();
        self.outbox.forced.clear();
        let l = self.cfg.limits;
        self.acks
            .reinit(l.ack_flush_threshold, l.ack_max_delay, l.ack_flush_bytes);
        self.seq = SeqNoGen::new();
        self.session_id = session_id;
        self.held = None;
        if let Some(dc) = self.role.dc_mut() {
            dc.reset();
        }
    }

    /// Starts serving `session_id` (a new client session, or the client moved on): the old one is retired, and a
    /// retired one is never served again, so its late packets cannot come back with an empty replay window
    /// (item 31).
    fn switch_session(&mut self, now: Instant, session_id: u64) -> Result<(), Dropped> {
        let old = self.session_id;
        let Some(dc) = self.role.dc_mut() else {
            return Err(Dropped::WrongSession);
        };
        if dc.retired.iter().any(|&r| r == session_id) {
            return Err(Dropped::WrongSession);
        }
        if dc.session_known {
            if dc.retired.is_full() {
                let _ = dc.retired.pop_front();
            }
            let _ = dc.retired.push_back(old);
        }
        self.reset_server_session(session_id);
        if let Some(dc) = self.role.dc_mut() {
            dc.session_known = true;
            dc.nsc_due = true;
            dc.approval = Approval::None;
        }
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
    fn burn(&mut self, id: MsgId, unix: UnixTime) {
        let _ = self.inbound.accept(id, unix, false);
    }

    fn notify_bad(&mut self, now: Instant, bad: MsgId, seq_no: u32, code: BadMsgCode) {
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

    // ---- receiving -------------------------------------------------------------------------------------------

    /// DC: one authenticated packet. Its session is admitted, its msg_id, salt and seq_no checked (a refusal is
    /// notified to the client where the spec says so); then it is accepted as a whole and held, and its messages
    /// are processed as far as there is room (`resume`).
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
        self.admit_session(now, &h)?;
        self.check_packet_id(now, &h, unix, is_container)?;
        self.check_packet_salt(now, &h, unix)?;
        let at = span_of(rx, body, Buf::Rx);
        let held = if is_container {
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
            self.check_seq(now, h.msg_id, h.seq_no, false, unix)?;
            // Accepted as a whole (item 48): every inner message is processed, now or as room frees up.
            Held {
                next: at.off.saturating_add(CONTAINER_HDR as u32),
                end: at.off.saturating_add(at.len),
                left: u32::try_from(c.messages.len()).unwrap_or(0),
                buf: Buf::Rx,
                salt: h.salt,
                unix,
                single: None,
            }
        } else {
            self.check_seq(now, h.msg_id, h.seq_no, is_content_related(body, h.seq_no), unix)?;
            Held {
                next: at.off,
                end: at.off.saturating_add(at.len),
                left: 1,
                buf: Buf::Rx,
                salt: h.salt,
                unix,
                single: Some((h.msg_id, h.seq_no)),
            }
        };
        self.accept_id(h.msg_id, h.seq_no, unix);
        self.held = Some(held);
        self.resume(now, rx, gz, gz_used);
        Ok(())
    }

    /// DC: whether the packet's session may be served here: the one served, or a new one the host approved
    /// ([`Session::approve_session`]); the first one named starts being served at once.
    ///
    /// [`Session::approve_session`]: super::Session::approve_session
    fn admit_session(&mut self, now: Instant, h: &Header) -> Result<(), Dropped> {
        let session_id = self.session_id;
        let Some(dc) = self.role.dc_mut() else {
            return Err(Dropped::WrongSession);
        };
        let serves = dc.session_known && h.session_id == session_id;
        if !serves {
            if dc.retired.iter().any(|&r| r == h.session_id) {
                return Err(Dropped::WrongSession);
            }
            // A host's word on one session is good for the packet it was given for, no later one: by then another
            // connection may have started that session.
            let approval = core::mem::replace(&mut dc.approval, Approval::None);
            let approved = match approval {
                Approval::Session(id) => id == h.session_id,
                Approval::First => !dc.session_known,
                Approval::None => false,
            };
            if !approved {
                // The session may live in another connection's engine (with its replay window): the host decides.
                dc.unknown_session = Some((h.session_id, h.msg_id));
                return Err(Dropped::UnknownSession);
            }
        }
        if !dc.session_known {
            // The first authenticated packet names the session, even if it is refused below, so the refusal's
            // notification and spent id belong to it.
            self.switch_session(now, h.session_id)?;
        }
        Ok(())
    }

    /// DC: the packet's msg_id checks (items 32-34), and the switch to an approved new session once they pass.
    fn check_packet_id(&mut self, now: Instant, h: &Header, unix: UnixTime, is_container: bool) -> Result<(), Dropped> {
        let same_session = h.session_id == self.session_id;
        // A message already received is dropped silently (re-acked) before any other check, so a duplicate or
        // replay never provokes a notification that could make the client rename, and so repeat, a message.
        if same_session && self.inbound.window().contains(h.msg_id) {
            self.refuse_duplicate(now, h, is_container);
            return Err(Dropped::BadMsgId);
        }
        // Parity and time before the session: a stale replay must not start (and so reset) a session.
        let early = check_parity(h.msg_id, Role::Client).and_then(|()| {
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
            Ok(()) => Ok(()),
            Err(MsgIdReject::Duplicate) => {
                self.refuse_duplicate(now, h, is_container);
                Err(Dropped::BadMsgId)
            }
            Err(e) => {
                if let Some(code) = e.bad_msg_code(is_container) {
                    self.notify_bad(now, h.msg_id, h.seq_no, code);
                }
                Err(Dropped::BadMsgId)
            }
        }
    }

    /// A packet received before: a container's id reused is notified (its members may differ), a lone
    /// content-related message is acknowledged again (and answered again if the engine refused it itself).
    fn refuse_duplicate(&mut self, now: Instant, h: &Header, is_container: bool) {
        if is_container {
            self.notify_bad(now, h.msg_id, h.seq_no, BadMsgCode::ContainerIdReused);
        } else {
            self.resent_query(now, h.msg_id, h.seq_no);
        }
    }

    /// A message received before came again (a client resending a query whose answer it has not seen): it is
    /// acknowledged again if content-related, and an answer the engine gave it itself is owed again (see
    /// `DcState::refused`). A query the host ran or runs is never run again; its answer is resent by the tracker.
    fn resent_query(&mut self, now: Instant, id: MsgId, seq_no: u32) {
        if seq_no % 2 == 1 {
            let _ = self.acks.push(now, id);
        }
        let again = self
            .role
            .dc()
            .and_then(|dc| dc.refused.iter().find(|r| r.req() == id).copied());
        if let Some(r) = again {
            self.push_owed(now, r.owed());
        }
    }

    /// DC: an answer the engine gives a query itself (not the host's): owed now, and remembered for a resend of the
    /// query (see `DcState::refused`).
    fn refuse_query(&mut self, now: Instant, o: Owed) {
        if let Some(dc) = self.role.dc_mut()
            && let Some(r) = Refusal::of(o)
        {
            if dc.refused.is_full() {
                dc.refused.pop_front();
            }
            let _ = dc.refused.push_back(r);
        }
        self.push_owed(now, o);
    }

    /// Item 35: the current salt, or the previous one during its grace period; salt 0 never passes.
    fn check_packet_salt(&mut self, now: Instant, h: &Header, unix: UnixTime) -> Result<(), Dropped> {
        let bad = self
            .role
            .dc()
            .and_then(|dc| dc.salts.as_ref())
            .is_some_and(|s| s.check(h.salt, unix).is_err());
        if !bad {
            return Ok(());
        }
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
        Err(Dropped::BadSalt)
    }

    /// Item 37: the seq_no of a message (or container) whose msg_id passed; a refusal is notified and spends the id.
    fn check_seq(
        &mut self,
        now: Instant,
        id: MsgId,
        seq_no: u32,
        content: bool,
        unix: UnixTime,
    ) -> Result<(), Dropped> {
        let r = self
            .role
            .dc()
            .map_or(Ok(()), |dc| dc.seq_check.check(id, seq_no, content));
        if let Err(e) = r {
            self.notify_bad(now, id, seq_no, e.bad_msg_code());
            self.burn(id, unix);
            return Err(Dropped::BadSeqNo);
        }
        Ok(())
    }

    /// Remembers an accepted message's msg_id and seq_no.
    fn accept_id(&mut self, id: MsgId, seq_no: u32, unix: UnixTime) {
        let _ = self.inbound.accept(id, unix, true);
        if let Some(dc) = self.role.dc_mut() {
            dc.seq_check.record(id, seq_no);
        }
    }

    /// DC: one inner message of an accepted container: its own msg_id and seq_no checks, then its processing.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn server_member(
        &mut self,
        now: Instant,
        unix: UnixTime,
        id: MsgId,
        seq: u32,
        body: &[u8],
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        if self.inbound.window().contains(id) {
            self.resent_query(now, id, seq);
            return;
        }
        match self.inbound.check(id, unix, true) {
            Ok(()) => {}
            Err(MsgIdReject::Duplicate) => {
                self.resent_query(now, id, seq);
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
        if self
            .check_seq(now, id, seq, is_content_related(body, seq), unix)
            .is_err()
        {
            return;
        }
        self.accept_id(id, seq, unix);
        self.server_message(now, id, seq, body, rx, gz, gz_used);
    }

    /// DC: one accepted message from the client: a query goes to the host (`deliver_request`), a service message
    /// is answered (`owed`) or acted upon here.
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
        if let Some(dc) = self.role.dc_mut()
            && dc.nsc_due
            && dc.nsc_first.is_none_or(|f| id < f)
        {
            dc.nsc_first = Some(id);
        }
        if seq_no % 2 == 1 && self.acks.push_message(now, id, body.len()).is_err() {
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
        let span = span_of(rx, body, Buf::Rx);
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
                if let Some(dc) = self.role.dc_mut() {
                    dc.disconnect_at = Some(now.saturating_add(Duration::from_secs(delay)));
                }
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
            ServiceMessage::MsgsStateReq(q) => self.answer_state(now, id, q.msg_ids, span),
            ServiceMessage::MsgResendReq(MsgResendReq { msg_ids }) => self.on_resend_req(now, id, msg_ids, span),
            ServiceMessage::MsgResendAnsReq(tl::MsgResendAnsReq { msg_ids }) => {
                self.on_resend_ans_req(now, id, msg_ids, span);
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
            ServiceMessage::AuthBindTempAuthKey(_) => self.deliver_request(now, id, span),
            // Never kept in the arena (it carries no result); a resend of the request gets it again.
            ServiceMessage::RpcDropAnswer(_) => self.refuse_query(now, Owed::AnswerUnknown { req: id }),
            ServiceMessage::GzipPacked(g) => self.on_gzipped_request(now, id, seq_no % 2 == 1, &g, gz, gz_used),
            ServiceMessage::HttpWait(w) => self.on_http_wait(now, &w),
            // msg_copy is rejected (item 51); handshake and server-only constructors from a client are ignored.
            _ => {}
        }
    }

    /// A `gzip_packed` message: a query inside goes to the host. One that fails to inflate, or holds a container,
    /// a copy, a second level of gzip (item 50) or a service message (the DC does not look inside gzip for them), is
    /// not run; if the client expects an answer (content-related), it gets `rpc_error 400 INPUT_FETCH_ERROR`, as a
    /// query the DC cannot decode does, instead of waiting out its resend timer for one that never comes.
    fn on_gzipped_request(
        &mut self,
        now: Instant,
        id: MsgId,
        content: bool,
        g: &GzipPacked<'_>,
        gz: &mut [u8],
        gz_used: &mut usize,
    ) {
        if let Some(span) = self.inflate(g, gz, gz_used) {
            let inner = gz.get(span.off as usize..(span.off + span.len) as usize).unwrap_or(&[]);
            let nested = matches!(
                peek_ctor(inner),
                Some(GzipPacked::CONSTRUCTOR | MsgContainer::CONSTRUCTOR | MsgCopy::CONSTRUCTOR)
            );
            if !nested && ServiceMessage::decode_body(inner).is_err() {
                self.deliver_request(now, id, span);
                return;
            }
        }
        if content {
            self.refuse_query(now, Owed::FetchError { req: id });
        }
    }

    /// `http_wait`: hold the next answer as a long poll (see [`LongPoll`]), each delay clamped to
    /// [`SessionConfig::max_http_wait`]; a second one before the first is answered keeps its start.
    fn on_http_wait(&mut self, now: Instant, w: &tl::HttpWait) {
        let cap = self.cfg.max_http_wait;
        let ms = |v: i32| Duration::from_millis(u64::try_from(v).unwrap_or(0)).min(cap);
        let Some(dc) = self.role.dc_mut() else { return };
        let since = dc.long_poll.map_or(now, |lp| lp.since);
        let (first_out, last_out) = dc.long_poll.map_or((None, None), |lp| (lp.first_out, lp.last_out));
        dc.long_poll = Some(LongPoll {
            since,
            max_delay: ms(w.max_delay),
            wait_after: ms(w.wait_after),
            max_wait: ms(w.max_wait),
            first_out,
            last_out,
        });
    }

    /// A message for the client was queued: a held long poll counts its delays from it (see [`LongPoll`]).
    pub(super) fn note_outbound(&mut self, now: Instant) {
        if let Some(lp) = self.role.dc_mut().and_then(|dc| dc.long_poll.as_mut()) {
            lp.first_out.get_or_insert(now);
            lp.last_out = Some(now);
        }
    }
}
