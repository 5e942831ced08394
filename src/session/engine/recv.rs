//! What both roles do with a received packet: dispatch to the role's receive path (`client.rs`, `server.rs`), the
//! container check of item 48, inflating `gzip_packed` within the packet's work budget (item 50), and the records
//! events are made of.
//!
//! Bodies stay where they are: in the engine's receive buffer (`Buf::Rx`, the decrypted packet) or its inflate
//! buffer (`Buf::Gz`), and events name them by [`Span`]; [`Session::poll_event`] lends them to the host.
//!
//! [`Session::poll_event`]: super::Session::poll_event
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::session::event::{Dropped, FailReason};
use crate::session::msg_id::{MsgId, Role};
use crate::session::replay::check_parity;
use crate::time::{Instant, UnixTime};
use crate::tl::gzip::GzipError;
use crate::tl::{self, GzipPacked, Message, MsgContainer, MsgCopy, MsgsAck, Reader, TlBare};

use super::server::may_request;
use super::{Core, INNER_HDR, RoleState};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) enum Buf {
    Rx,
    Gz,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Span {
    pub(super) buf: Buf,
    pub(super) off: u32,
    pub(super) len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) enum EvRec {
    Result { req: MsgId, body: Span },
    Error { req: MsgId, code: i32, msg: Span },
    Failed { req: MsgId, reason: FailReason },
    Update(Span),
    Reset(MsgId),
    Request { msg_id: MsgId, body: Span },
    Created(u64),
    Disconnect,
    Transport(i32),
}

impl EvRec {
    pub(super) fn uses_buffers(&self) -> bool {
        matches!(
            self,
            EvRec::Result { .. } | EvRec::Error { .. } | EvRec::Update(_) | EvRec::Request { .. }
        )
    }
}

/// A received packet accepted as a whole and worked through as room frees up, in either role. Its msg_id (and a
/// container's) is in the replay window, so the peer will not send it again: every message in it is processed, in
/// order, as the host takes events ([`Session::poll_event`]) and packets ([`Session::poll_packet`]), and meanwhile
/// no input is taken (`must_drain`), so the buffer it lies in stays intact. A container is thus taken whole
/// (docs/CHECKLIST.md item 48) however small the event and owed-answer queues. The role decides only how much room
/// a message needs (`room_for`) and what is done with it (`Core::client_member`, `Core::server_member`).
///
/// [`Session::poll_event`]: super::Session::poll_event
/// [`Session::poll_packet`]: super::Session::poll_packet
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(super) struct Held {
    /// Where in `buf` the next message (a container's inner `message`, or the lone body) starts, and where the
    /// packet's body ends.
    pub(super) next: u32,
    pub(super) end: u32,
    /// Messages left.
    pub(super) left: u32,
    /// The receive buffer, or the inflate buffer for a client's container that came in `gzip_packed`.
    pub(super) buf: Buf,
    /// The packet's server salt (a client's salt bookkeeping reads it per message).
    pub(super) salt: u64,
    /// The Unix time the packet arrived at: a DC judges every message in it by the time window as of then.
    pub(super) unix: UnixTime,
    /// Not a container (a DC holds lone messages too): the message's (msg_id, seq_no); its body is `next..end`.
    pub(super) single: Option<(MsgId, u32)>,
}

/// Where a received message's header fields came from (after decryption, or from the fuzzing hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub(super) salt: u64,
    pub(super) session_id: u64,
    pub(super) msg_id: MsgId,
    pub(super) seq_no: u32,
}

pub(super) fn span_of(base: &[u8], s: &[u8], buf: Buf) -> Span {
    let off = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    Span {
        buf,
        off: u32::try_from(off).unwrap_or(u32::MAX),
        len: u32::try_from(s.len()).unwrap_or(0),
    }
}

pub(super) fn peek_ctor(body: &[u8]) -> Option<u32> {
    Reader::new(body).peek_constructor().ok()
}

/// Whether a client message with this body, arriving with this seq_no, must carry an odd seq_no (item 37).
/// `ping` is taken with either parity: Pyrogram and kurigram send it as not content-related (an even seq_no) and
/// Telegram's DCs answer it, so a DC refusing it with 35 breaks their every connect (examples/interop/NOTES.md).
pub(super) fn is_content_related(body: &[u8], seq_no: u32) -> bool {
    match peek_ctor(body) {
        Some(MsgsAck::CONSTRUCTOR | MsgContainer::CONSTRUCTOR | MsgCopy::CONSTRUCTOR | tl::HttpWait::CONSTRUCTOR) => {
            false
        }
        Some(tl::Ping::CONSTRUCTOR) => seq_no % 2 == 1,
        _ => true,
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    /// Processes the held packet's messages in order while each has room for what it produces (see [`Held`]).
    /// `rx` is the buffer the packet was received in; `gz`, the inflate buffer, of which `gz_used` bytes are taken.
    /// Whatever is left waits until [`Session::poll_event`] or [`Session::poll_packet`] makes room: both drain
    /// without the peer's help, so the packet is always finished. (Waiting for room in the resend arena instead could
    /// wait for acknowledgements stuck behind this very packet.)
    ///
    /// [`Session::poll_event`]: super::Session::poll_event
    /// [`Session::poll_packet`]: super::Session::poll_packet
    pub(super) fn resume(&mut self, now: Instant, rx: &[u8], gz: &mut [u8], gz_used: &mut usize) {
        match self.held.map(|h| h.buf) {
            None => {}
            Some(Buf::Rx) => self.resume_in(now, rx, gz, gz_used),
            Some(Buf::Gz) => {
                // An inflated container: its members lie in the inflate buffer, and nothing inflates inside an
                // inflated payload (the rest of the buffer is scratch for nothing else).
                let (done, rest) = gz.split_at_mut((*gz_used).min(gz.len()));
                self.resume_in(now, done, rest, &mut 0);
            }
        }
    }

    /// Whether a held message with this body can be processed now (see [`Held`]). A client needs room for an event
    /// and an owed answer, whatever the message (an update, a result or a service message's reaction). A DC needs
    /// room for an answer, and for a query room for its event and, unless the host's last answer was refused for
    /// room in the arena, in the pending requests (a full table with answers refused gets `FLOOD_WAIT`,
    /// `Core::deliver_request`).
    pub(super) fn room_for(&self, body: &[u8]) -> bool {
        match &self.role {
            RoleState::Client(_) => !self.events.is_full() && !self.owed.is_full(),
            RoleState::Dc(dc) => {
                let pending_full = dc.pending_reqs.is_full() && !dc.answers_blocked;
                !self.owed.is_full() && !((self.events.is_full() || pending_full) && may_request(body))
            }
        }
    }

    /// [`resume`](Self::resume) with the held packet's buffer `base` chosen.
    pub(super) fn resume_in(&mut self, now: Instant, base: &[u8], gz: &mut [u8], gz_used: &mut usize) {
        while let Some(mut h) = self.held {
            let rest = base.get(h.next as usize..h.end as usize).unwrap_or(&[]);
            let (id, seq_no, body, member) = match h.single {
                Some((id, seq_no)) => (id, seq_no, rest, false),
                None => {
                    // The container was fully validated when it arrived (`check_container`): this cannot fail.
                    let Ok(m) = Message::read_bare(&mut Reader::new(rest)) else {
                        self.held = None;
                        return;
                    };
                    (MsgId::from_wire(m.msg_id), m.seqno as u32, m.body, true)
                }
            };
            if !self.room_for(body) {
                return;
            }
            h.next = h.next.saturating_add((INNER_HDR + body.len()) as u32);
            h.left = h.left.saturating_sub(1);
            self.held = (h.left > 0).then_some(h);
            if self.role() == Role::Client {
                self.client_member(now, id, seq_no, h.salt, body, base, h.buf, gz, gz_used);
            } else if member {
                self.server_member(now, h.unix, id, seq_no, body, base, gz, gz_used);
            } else {
                self.server_message(now, id, seq_no, body, base, gz, gz_used);
            }
        }
    }

    pub(super) fn on_packet(
        &mut self,
        now: Instant,
        h: Header,
        body: &[u8],
        rx: &[u8],
        gz: &mut [u8],
        gz_used: &mut usize,
    ) -> Result<(), Dropped> {
        if self.closed {
            return Err(Dropped::WrongSession);
        }
        match self.role() {
            Role::Client => self.client_packet(now, h, body, rx, gz, gz_used),
            Role::Server => self.server_packet(now, h, body, rx, gz, gz_used),
        }
    }

    /// Validates a container's structure (item 48): at most the configured count, no nesting or copies, inner
    /// ids below the container's, unique, with the sender's parity, and inner seq_nos not above the container's.
    /// A seq_no is an unsigned count everywhere in the crate (a lone message's, the container's own, the seq_no
    /// checker's): an inner one is read the same way (its TL `int` reinterpreted), so a container at 2^31 or above
    /// holds what the same messages sent one by one would deliver (`seq_nos_at_2_31_and_above_read_as_unsigned_in_a_container`).
    ///
    /// Uniqueness is found by sorting a copy of the ids in `scratch` (the unused part of the inflate buffer), not
    /// on the stack and not by a pairwise scan (~500k header decodes for 1024 messages, a 100x amplification of
    /// the packet's own decryption cost). A container in the receive buffer always leaves room: each inner message
    /// takes at least 20 bytes, its id 8. Only a `gzip_packed` container inflating to more than ~5/7 of the buffer
    /// can lack it, and is dropped as too large.
    pub(super) fn check_container(
        &self,
        h: &Header,
        c: &MsgContainer<'_>,
        scratch: &mut [u8],
    ) -> Result<usize, Dropped> {
        let n = c.messages.len();
        if n > self.cfg.limits.max_container_messages {
            return Err(Dropped::Malformed);
        }
        let scratch = scratch.get_mut(..n.saturating_mul(8)).ok_or(Dropped::TooLarge)?;
        let (ids, _) = scratch.as_chunks_mut::<8>();
        let mut count = 0usize;
        for m in c.iter() {
            let id = MsgId::from_wire(m.msg_id);
            if id >= h.msg_id
                || check_parity(id, self.role().peer()).is_err()
                || m.seqno as u32 > h.seq_no
                || matches!(
                    peek_ctor(m.body),
                    Some(MsgContainer::CONSTRUCTOR | MsgCopy::CONSTRUCTOR)
                )
            {
                return Err(Dropped::Malformed);
            }
            let slot = ids.get_mut(count).ok_or(Dropped::Malformed)?;
            *slot = m.msg_id.to_le_bytes();
            count += 1;
        }
        let ids = ids.get_mut(..count).ok_or(Dropped::Malformed)?;
        ids.sort_unstable();
        if ids.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(Dropped::Malformed);
        }
        Ok(n)
    }

    /// Inflates `g` into `gz` from `start` on, at most `max_gzip_output` bytes, charging the work, successful or
    /// not, to the packet's budget (item 50, B14): the output room is what the budget leaves after reserving the
    /// member's input, so no attempt can overdraw it, and an exhausted budget refuses the member as too large
    /// without inflating. Every inflate of a received packet goes through here.
    pub(super) fn inflate_at(&mut self, g: &GzipPacked<'_>, gz: &mut [u8], start: usize) -> Result<usize, GzipError> {
        let room = self
            .inflate_left
            .checked_sub(g.packed_data.len())
            .ok_or(GzipError::OutputTooLarge)?;
        let cap = start
            .saturating_add(self.cfg.limits.max_gzip_output.min(room))
            .min(gz.len());
        let out = gz.get_mut(start..cap).ok_or(GzipError::OutputTooLarge)?;
        let (r, work) = tl::gzip::inflate_metered(g.packed_data, out);
        self.inflate_left = self.inflate_left.saturating_sub(work.total());
        self.stats.inflate_work = self.stats.inflate_work.saturating_add(work.total() as u64);
        r
    }

    pub(super) fn inflate(&mut self, g: &GzipPacked<'_>, gz: &mut [u8], gz_used: &mut usize) -> Option<Span> {
        let start = *gz_used;
        let n = self.inflate_at(g, gz, start).ok()?;
        *gz_used = start + n;
        Some(Span {
            buf: Buf::Gz,
            off: start as u32,
            len: n as u32,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn content_related_classes() {
        for seq in [0, 1] {
            assert!(!is_content_related(&MsgsAck::CONSTRUCTOR.to_le_bytes(), seq));
            assert!(!is_content_related(&MsgContainer::CONSTRUCTOR.to_le_bytes(), seq));
            assert!(is_content_related(&0x1234_5678u32.to_le_bytes(), seq));
        }
        // ping: whichever parity it came with (kurigram sends it even).
        assert!(is_content_related(&tl::Ping::CONSTRUCTOR.to_le_bytes(), 1));
        assert!(!is_content_related(&tl::Ping::CONSTRUCTOR.to_le_bytes(), 4));
    }
}
