//! Service messages both roles handle: acknowledgements, `msgs_state_req` / `msgs_state_info`, resend requests
//! (items 47, 49), and the answers the engine owes the peer ([`Owed`]: `pong`, `bad_msg_notification`,
//! `bad_server_salt`, `future_salts`, `destroy_session_*`, `msgs_state_info`, `rpc_answer_unknown`, `FLOOD_WAIT`).
//!
//! Owed answers are never kept in the outbox: each is a small record written straight into the next packet by
//! [`Core::owed_body`] (called twice per packet by the packer: to measure, then to write).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::session::bad_msg::BadMsgCode;
use crate::session::limits::{DEFAULT_REPLAY_WINDOW, MAX_FUTURE_SALTS};
use crate::session::msg_id::{MsgId, Role};
use crate::session::pending::{Acked, SentKind};
use crate::session::replay::{InboundMsgIds, check_parity};
use crate::session::salts::ServerSalts;
use crate::time::Instant;
use crate::tl::{
    self, BadMsg, BadServerSalt, DestroySessionNone, DestroySessionOk, FutureSalt as TlFutureSalt, MsgResendReq,
    MsgsStateInfo, Pong, RpcAnswerUnknown, RpcError, RpcResult, ServiceMessage, TlRead, TlWrite, Writer,
};

use super::Core;
use super::recv::{Buf, Span, peek_ctor};
use super::server::rotation_secs;

/// An answer the engine owes the peer for one of its messages and sends once, never resends: it is not kept in
/// the arena (whose slots and bytes bound what waits for an acknowledgement), but as this record, written straight
/// into the next packet (`Core::owed_body`) with its msg_id and seq_no made there.
///
/// This is what makes a full resend arena harmless to answers: a `pong` or a notification needs no slot, only
/// room in this queue, and the queue drains on every [`Session::poll_packet`] without waiting for the peer. The
/// receive path takes a message only when there is room for its answer here (each message owes at most one);
/// until there is, the rest of the packet waits in the receive buffer (see `Held`). None of them carries state the
/// peer could lose: a lost `pong`, notification, state or salt list is asked for again, and the query of a lost
/// `rpc_answer_unknown` or `FLOOD_WAIT` was not executed (a client that resends it under the same msg_id after a
/// reconnection gets no second answer and ends it by its own timeout).
///
/// [`Session::poll_packet`]: super::Session::poll_packet
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) enum Owed {
    /// DC: `pong` for the `ping` / `ping_delay_disconnect` `ping`.
    Pong { ping: MsgId, ping_id: i64 },
    /// DC: `bad_msg_notification`.
    BadMsg { bad: MsgId, seq_no: u32, code: i32 },
    /// DC: `bad_server_salt`, naming the salt current when it is written.
    BadSalt { bad: MsgId, seq_no: u32 },
    /// DC: `future_salts` for the `get_future_salts` `req`, computed when written.
    FutureSalts { req: MsgId, num: u8 },
    /// DC: `destroy_session_ok` (`ok`) or `destroy_session_none`.
    DestroySession { session_id: i64, ok: bool },
    /// `msgs_state_info` for the `msgs_state_req`, `msg_resend_req` or `msg_resend_ans_req` `req`, whose body
    /// stays in the receive buffers until this is written (the engine takes no input meanwhile: `must_drain`).
    StateInfo { req: MsgId, body: Span },
    /// DC: `rpc_result { req, rpc_answer_unknown }` for an `rpc_drop_answer`.
    AnswerUnknown { req: MsgId },
    /// DC: `rpc_result { req, rpc_error 420 FLOOD_WAIT_1 }`: the host has `MSGS` requests unanswered on this
    /// session, so `req` is refused, not executed (see [`Session::answer`]).
    ///
    /// [`Session::answer`]: super::Session::answer
    FloodWait { req: MsgId },
    /// DC: `rpc_result { req, rpc_error 400 INPUT_FETCH_ERROR }`: the query's `gzip_packed` body did not inflate
    /// to a query, so it is not run.
    FetchError { req: MsgId },
}

impl Owed {
    pub(super) fn uses_buffers(&self) -> bool {
        matches!(self, Owed::StateInfo { .. })
    }
}

/// An answer a DC engine gave a query itself, remembered for a resend of the query (`DcState::refused`): 16 bytes
/// where the [`Owed`] it stands for takes 24.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Refusal {
    req: MsgId,
    kind: RefusalKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefusalKind {
    AnswerUnknown,
    FloodWait,
    FetchError,
}

impl Refusal {
    /// The record of an engine-made answer (`None` for everything else owed).
    pub(super) fn of(o: Owed) -> Option<Refusal> {
        let (req, kind) = match o {
            Owed::AnswerUnknown { req } => (req, RefusalKind::AnswerUnknown),
            Owed::FloodWait { req } => (req, RefusalKind::FloodWait),
            Owed::FetchError { req } => (req, RefusalKind::FetchError),
            _ => return None,
        };
        Some(Refusal { req, kind })
    }

    /// The query it answered.
    pub(super) fn req(&self) -> MsgId {
        self.req
    }

    /// The answer, owed again.
    pub(super) fn owed(self) -> Owed {
        let req = self.req;
        match self.kind {
            RefusalKind::AnswerUnknown => Owed::AnswerUnknown { req },
            RefusalKind::FloodWait => Owed::FloodWait { req },
            RefusalKind::FetchError => Owed::FetchError { req },
        }
    }
}

/// The `rpc_error` message of [`Owed::FloodWait`].
pub(super) const FLOOD_WAIT: &[u8] = b"FLOOD_WAIT_1";
/// The `rpc_error` message of [`Owed::FetchError`] (Telegram's answer to a query it cannot decode).
pub(super) const FETCH_ERROR: &[u8] = b"INPUT_FETCH_ERROR";

/// What `msgs_state_info` says about a peer's msg_id (item 47): 1 unknown or never the peer's, 2 not received but
/// within the window's range, 3 not received and above it, 4 received.
pub(super) fn state_of(inbound: &InboundMsgIds<DEFAULT_REPLAY_WINDOW>, side: Role, id: MsgId) -> u8 {
    let win = inbound.window();
    let full = win.len() == win.capacity();
    if check_parity(id, side.peer()).is_err() {
        1
    } else if win.contains(id) {
        4
    } else if full && win.lowest().is_some_and(|l| id < l) {
        1
    } else if win.highest().is_none_or(|h| id > h) {
        3
    } else {
        2
    }
}

/// Writes `msgs_state_info { req, info }` for the first `n` of `ids` (`12 + bytes_len(n)` bytes), the info bytes one
/// by one from `state` (no `n`-byte buffer on the stack).
pub(super) fn write_state_info(
    w: &mut Writer<'_>,
    req: MsgId,
    ids: tl::LongVec<'_>,
    n: usize,
    state: impl Fn(MsgId) -> u8,
) {
    let head: &[u8] = if n < 254 {
        &[n as u8]
    } else {
        &[254, n as u8, (n >> 8) as u8, (n >> 16) as u8]
    };
    let _ = w.u32(MsgsStateInfo::CONSTRUCTOR);
    let _ = w.i64(req.to_wire());
    let _ = w.raw(head);
    for id in ids.iter().take(n) {
        let _ = w.raw(&[state(MsgId::from_wire(id))]);
    }
    let pad = tl::bytes_len(n) - head.len() - n;
    let _ = w.raw([0u8; 3].get(..pad).unwrap_or(&[]));
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    /// Owes the peer an answer. The receive path checked for room before taking the message (`room_for`; a
    /// packet-level notification has the room `must_drain` keeps free), so this cannot fail.
    pub(super) fn push_owed(&mut self, now: Instant, o: Owed) {
        if self.owed.push_back(o).is_err() {
            warn!("session: owed answers full");
            return;
        }
        self.note_outbound(now);
    }

    pub(super) fn on_ack(&mut self, id: MsgId) {
        match self.tracker.ack(id) {
            Some(Acked::Released(r)) => self.outbox.free(r.handle),
            Some(Acked::AwaitingAnswer) => {
                if let Some((idx, _)) = self.outbox.slot_by_id(id)
                    && let Some(Some(s)) = self.outbox.slots.get_mut(idx)
                {
                    s.acked = true;
                }
            }
            None => {}
        }
    }

    /// `msgs_state_info` (item 47): must answer our `msgs_state_req` with one byte per id asked.
    pub(super) fn on_state_info(&mut self, info: &MsgsStateInfo<'_>) {
        let req = MsgId::from_wire(info.req_msg_id);
        let Some((_, slot)) = self.outbox.slot_by_id(req) else {
            return;
        };
        if slot.kind != SentKind::StateReq {
            return;
        }
        let mut asked: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        let count = match tl::MsgsStateReq::decode(self.outbox.body_of(&slot)) {
            Ok(q) => {
                for id in q.msg_ids.iter() {
                    let _ = asked.push(MsgId::from_wire(id));
                }
                q.msg_ids.len()
            }
            Err(_) => return,
        };
        if count != info.info.len() {
            return;
        }
        if let Some(r) = self.tracker.resolve_state_req(req) {
            self.outbox.free(r.handle);
        }
        for (id, state) in asked.iter().zip(info.info.iter()) {
            // 1-3: the server does not have it.
            // It goes again under its own msg_id, in a new container (item 38): if a copy is still on its way
            // (a resend after new_session_created...), the DC's replay window drops the second one, which a
            // renamed copy would not.
            if matches!(state & 7, 1..=3) && self.tracker.reference(*id).is_some() && !self.outbox.forced.contains(id) {
                let _ = self.outbox.forced.push(*id);
                if let Some((idx, _)) = self.outbox.slot_by_id(*id)
                    && let Some(Some(s)) = self.outbox.slots.get_mut(idx)
                {
                    s.acked = false;
                }
            }
        }
    }

    /// `msg_detailed_info` / `msg_new_detailed_info`: ack the answer if we have it, otherwise ask for it.
    pub(super) fn on_answer_exists(&mut self, now: Instant, answer: MsgId) {
        if check_parity(answer, self.role().peer()).is_err() {
            return;
        }
        if self.inbound.window().contains(answer) {
            let _ = self.acks.push(now, answer);
        } else {
            let ids = [answer.to_wire()];
            let req = MsgResendReq {
                msg_ids: tl::TlVec::from_slice(&ids),
            };
            self.queue_tl(now, SentKind::Service, false, false, &req);
        }
    }

    /// A peer's `msg_resend_req` (`req`): messages we sent and still hold go again, byte-identical under their own
    /// msg_ids in a new container (item 38), within the byte budget (item 49, B16). If any id is unknown, forgotten,
    /// or has the requester's own parity, every id asked is answered with `msgs_state_info`, as the spec says.
    pub(super) fn on_resend_req(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        let mut unknown = false;
        for id in ids.iter().take(self.cfg.limits.max_ack_ids).map(MsgId::from_wire) {
            match self.outbox.slot_by_id(id) {
                // Still waiting for its first transmission: it goes anyway.
                Some((_, s)) if s.queued => {}
                Some((_, s)) if check_parity(id, self.role()).is_ok() => {
                    if !self.force(now, id, s.len) {
                        break;
                    }
                }
                _ => unknown = true,
            }
        }
        if unknown {
            self.answer_state(now, req, ids, body);
        }
    }

    /// A peer's `msg_resend_ans_req` (`req`): the answers we still hold to the peer's messages it names go again
    /// as [`on_resend_req`](Self::on_resend_req) sends messages, within the same budget; every id asked is answered
    /// with `msgs_state_info`.
    pub(super) fn on_resend_ans_req(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        for asked in ids.iter().take(self.cfg.limits.max_ack_ids) {
            let answer = self.outbox.slots.iter().flatten().find(|s| {
                let b = self.outbox.body_of(s);
                peek_ctor(b) == Some(RpcResult::CONSTRUCTOR) && b.get(4..12) == Some(&asked.to_le_bytes()[..])
            });
            if let Some(s) = answer.copied()
                && !s.queued
                && !self.force(now, s.id, s.len)
            {
                break;
            }
        }
        self.answer_state(now, req, ids, body);
    }

    /// Answers `msgs_state_req` `req` (or a `msg_resend_req` naming unknown ids, item 49; or a
    /// `msg_resend_ans_req`) asking about `ids`, whose body is `body`, with `msgs_state_info`: one byte per id
    /// asked, about the messages we received. Written into the arena at once when it has room (sent once, never
    /// kept), so the receive buffer is free for the next packet; otherwise owed, computed when written, and the
    /// request stays in the buffer until then (no input is taken meanwhile).
    pub(super) fn answer_state(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        let n = ids.len().min(self.cfg.limits.max_ack_ids);
        let len = 12 + tl::bytes_len(n);
        if let Ok(id) = self.queue(now, SentKind::Service, false, true, len, |_| Ok(()))
            && let Some((_, slot)) = self.outbox.slot_by_id(id)
        {
            let (inbound, side) = (&self.inbound, self.role());
            if let Some(dst) = self.outbox.body_mut(&slot) {
                write_state_info(&mut Writer::new(dst), req, ids, n, |id| state_of(inbound, side, id));
            }
            return;
        }
        self.push_owed(now, Owed::StateInfo { req, body });
    }

    /// The ids a `msgs_state_req`, `msg_resend_req` or `msg_resend_ans_req` body asks about.
    pub(super) fn asked_ids(body: &[u8]) -> Option<tl::LongVec<'_>> {
        match ServiceMessage::decode_body(body).ok()? {
            ServiceMessage::MsgsStateReq(q) => Some(q.msg_ids),
            ServiceMessage::MsgResendReq(q) => Some(q.msg_ids),
            ServiceMessage::MsgResendAnsReq(q) => Some(q.msg_ids),
            _ => None,
        }
    }

    /// The body of an owed answer: its length, and with `w` written there (the same bytes `owed_body` measured:
    /// nothing it depends on changes in between).
    pub(super) fn owed_body(&self, now: Instant, o: &Owed, rx: &[u8], gz: &[u8], w: Option<&mut Writer<'_>>) -> usize {
        fn emit<T: TlWrite>(v: &T, w: Option<&mut Writer<'_>>) -> usize {
            if let Some(w) = w {
                let _ = v.write(w);
            }
            v.tl_len()
        }
        match *o {
            Owed::Pong { ping, ping_id } => emit(
                &Pong {
                    msg_id: ping.to_wire(),
                    ping_id,
                },
                w,
            ),
            Owed::BadMsg { bad, seq_no, code } => emit(
                &BadMsg {
                    bad_msg_id: bad.to_wire(),
                    bad_msg_seqno: seq_no as i32,
                    error_code: code,
                },
                w,
            ),
            Owed::BadSalt { bad, seq_no } => emit(
                &BadServerSalt {
                    bad_msg_id: bad.to_wire(),
                    bad_msg_seqno: seq_no as i32,
                    error_code: BadMsgCode::BadServerSalt.code(),
                    new_server_salt: self
                        .role
                        .dc()
                        .and_then(|dc| dc.salts.as_ref())
                        .map_or(0, ServerSalts::current) as i64,
                },
                w,
            ),
            Owed::FutureSalts { req, num } => self.future_salts_body(now, req, num, w),
            Owed::DestroySession { session_id, ok: true } => emit(&DestroySessionOk { session_id }, w),
            Owed::DestroySession { session_id, ok: false } => emit(&DestroySessionNone { session_id }, w),
            Owed::StateInfo { req, body } => {
                let base = match body.buf {
                    Buf::Rx => rx,
                    Buf::Gz => gz,
                };
                let body = base
                    .get(body.off as usize..(body.off as usize).saturating_add(body.len as usize))
                    .unwrap_or(&[]);
                // Decoded when it arrived, and the buffer is untouched since (`must_drain`).
                let ids = Self::asked_ids(body);
                let n = ids.map_or(0, |v| v.len()).min(self.cfg.limits.max_ack_ids);
                if let (Some(w), Some(ids)) = (w, ids) {
                    write_state_info(w, req, ids, n, |id| state_of(&self.inbound, self.role(), id));
                }
                12 + tl::bytes_len(n)
            }
            Owed::AnswerUnknown { req } => emit(
                &RpcResult {
                    req_msg_id: req.to_wire(),
                    result: &RpcAnswerUnknown::CONSTRUCTOR.to_le_bytes(),
                },
                w,
            ),
            Owed::FloodWait { req } | Owed::FetchError { req } => {
                let err = match *o {
                    Owed::FloodWait { .. } => RpcError {
                        error_code: 420,
                        error_message: FLOOD_WAIT,
                    },
                    _ => RpcError {
                        error_code: 400,
                        error_message: FETCH_ERROR,
                    },
                };
                let mut b = [0u8; 32];
                let n = tl::encode(&err, &mut b).unwrap_or(0);
                emit(
                    &RpcResult {
                        req_msg_id: req.to_wire(),
                        result: b.get(..n).unwrap_or(&[]),
                    },
                    w,
                )
            }
        }
    }

    /// DC: `future_salts` for `req`, the salts of `num` periods from the current one (derived, so promised).
    fn future_salts_body(&self, now: Instant, req: MsgId, num: u8, w: Option<&mut Writer<'_>>) -> usize {
        let rot = rotation_secs(&self.cfg);
        let unix = self.clock.unix_time(now).0;
        let p0 = unix / rot;
        let mut salts: heapless::Vec<TlFutureSalt, MAX_FUTURE_SALTS> = heapless::Vec::new();
        for p in p0..p0 + u64::from(num) {
            let _ = salts.push(TlFutureSalt {
                valid_since: i32::try_from(p * rot).unwrap_or(i32::MAX),
                valid_until: i32::try_from((p + 1) * rot).unwrap_or(i32::MAX),
                salt: self.role.dc().map_or(0, |dc| dc.derived_salt(p)) as i64,
            });
        }
        let f = tl::FutureSalts {
            req_msg_id: req.to_wire(),
            now: i32::try_from(unix).unwrap_or(i32::MAX),
            salts: tl::TlVec::from_slice(&salts),
        };
        if let Some(w) = w {
            let _ = f.write(w);
        }
        f.tl_len()
    }
}
