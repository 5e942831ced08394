//! The encrypted session core, both roles, for one auth key: it turns received MTProto 2.0 packets into events and
//! queued messages into packets, and runs every session-level check and service-message reaction.
//!
//! It composes the building blocks of this module ([`MsgIdGen`], [`InboundMsgIds`], [`SeqNoGen`]/[`SeqNoChecker`],
//! [`ClientSalts`]/[`ServerSalts`], [`SentTracker`], [`AckQueue`], [`ResendBudget`]) and owns three fixed buffers:
//! `RX` bytes for the received packet (events borrow their bodies from it), `RX` bytes for inflated `gzip_packed`
//! bodies, and a `TX`-byte arena holding the plaintext body of every message that may still have to be resent.
//! `MSGS` bounds the messages in flight (queued, unacknowledged, or awaiting an answer), the pending events, the
//! answers owed to the peer (`Owed`: sent once, never kept in the arena) and a DC's requests awaiting the host's
//! answer. A DC processes every message of a packet it accepted, waiting (input paused) for room where needed
//! (`Held`), so a container is answered whole however small these tables are.
//!
//! Retransmission never re-encrypts a different plaintext under an old msg_id (item 38, attack B2): a message that
//! timed out travels again, byte-identical, inside a **new** container with a fresh msg_id, and a message the peer
//! refused (`bad_msg_notification`, `bad_server_salt`) is sent again under a **new** msg_id and seq_no.
//!
//! The engine is deterministic: randomness (padding, the session id, `new_session_created.unique_id`) is drawn only
//! in the constructors and [`Engine::poll_packet`].
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::time::Duration;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use super::acks::AckQueue;
use super::bad_msg::BadMsgCode;
use super::budget::ResendBudget;
use super::event::{Dropped, Event, FailReason, RpcErrorKind, SendError};
use super::limits::{DEFAULT_ACK_QUEUE, DEFAULT_REPLAY_WINDOW, INFLATE_WORK_PER_RX, Limits, MAX_FUTURE_SALTS};
use super::msg_id::{Clock, MsgId, MsgIdGen, Side};
use super::pending::{Acked, BodyHandle, NewSent, ResendPolicy, SentKind, SentTracker};
use super::replay::{InboundMsgIds, MsgIdReject, TimeWindow, check_parity};
use super::salts::{ClientSalts, FutureSalt as SaltEntry, ServerSaltPolicy, ServerSalts};
use super::seqno::{SeqNoChecker, SeqNoGen};
use crate::crypto::auth_key::AuthKey;
use crate::crypto::packet::{self, Direction, MessageHeader, PaddingPolicy};
use crate::time::{Instant, UnixTime};
use crate::tl::gzip::GzipError;
use crate::tl::{
    self, BadMsg, BadServerSalt, DestroySessionNone, DestroySessionOk, FutureSalt as TlFutureSalt, GzipPacked, Message,
    MsgContainer, MsgCopy, MsgResendReq, MsgsAck, MsgsStateInfo, NewSessionCreated, Pong, Reader, RpcAnswerUnknown,
    RpcError, RpcResult, ServiceMessage, TlBare, TlRead, TlWrite, Writer,
};

/// Size of a `message` header inside a container (msg_id, seqno, bytes).
const INNER_HDR: usize = 16;
/// Size of a container's own header (constructor, count).
const CONTAINER_HDR: usize = 8;
/// The handle a tracked container carries: containers own no body.
const NO_BODY: BodyHandle = BodyHandle(u32::MAX);
/// DC: session ids of this key a DC engine remembers as finished, to drop their late packets.
pub const RETIRED_SESSIONS: usize = 8;
/// Quick-ack tokens remembered per connection.
const QUICK_ACKS: usize = 8;
/// Largest `disconnect_delay` (seconds) a DC honours from `ping_delay_disconnect` (item 52).
pub const MAX_DISCONNECT_DELAY: i32 = 3600;
/// Most msg_ids one `msgs_ack` sent by this engine carries (well under the spec's 8192, to keep packets small).
const ACKS_PER_PACKET: usize = 1024;

/// What kind of message `send` queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MsgKind {
    /// An RPC query (client): it ends in exactly one event, a result, an error or a failure.
    Query,
    /// A content-related message that expects no answer (a DC's update, a client's notice): settled by an ack.
    Notice,
}

/// Tunables of the engine beyond [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EngineConfig {
    /// Resource bounds.
    pub limits: Limits,
    /// Resend timing.
    pub resend: ResendPolicy,
    /// Outbound padding (item 39).
    pub padding: PaddingPolicy,
    /// Client: how often to send `ping_delay_disconnect` on an otherwise idle session; `None` disables it.
    pub ping_interval: Option<Duration>,
    /// Client: the `disconnect_delay` of those pings, in seconds.
    pub ping_disconnect_delay: i32,
    /// Client: a query without an answer after this long ends in `Failed { reason: Timeout }`.
    pub rpc_timeout: Duration,
    /// Client: ask for transport quick acks on packets carrying queries.
    pub quick_ack: bool,
    /// Client: fetch `future_salts` ahead of expiry.
    pub future_salts: bool,
    /// DC: refuse any msg_id below the highest already delivered (attack B1's opt-in strict ordering).
    pub strict_order: bool,
    /// Client: a query the DC acknowledged but has not answered after this long is checked with
    /// `msgs_state_req` (and again every such interval); one the DC turns out not to have is sent again under a
    /// new msg_id (item 38). `None` disables it.
    pub state_check_after: Option<Duration>,
    /// DC: the longest a received `http_wait` may hold a long poll (each of its three delays is clamped to this).
    pub max_http_wait: Duration,
    /// Wrap bodies given to [`Engine::send`] and results given to [`Engine::answer`] in `gzip_packed` when that
    /// makes them smaller (`None`, the default: never). Service messages and `auth.bindTempAuthKey` are never
    /// compressed, and a resend carries the bytes first sent. Needs the `alloc` feature (miniz_oxide's compressor
    /// state is boxed) and allocates while compressing.
    #[cfg(feature = "alloc")]
    pub gzip: Option<GzipPolicy>,
}

/// When [`Engine::send`] compresses (the `alloc` feature).
#[cfg(feature = "alloc")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GzipPolicy {
    /// Bodies shorter than this go as they are.
    pub min_len: usize,
    /// DEFLATE level, 0..=10 (miniz_oxide's scale; 6 is zlib's default).
    pub level: u8,
}

#[cfg(feature = "alloc")]
impl GzipPolicy {
    /// Bodies of 512 bytes or more, level 6.
    pub const DEFAULT: GzipPolicy = GzipPolicy { min_len: 512, level: 6 };
}

impl EngineConfig {
    /// The defaults: spec limits, a 60 s keepalive, a 300 s RPC timeout, quick acks off, future salts on.
    pub const DEFAULT: EngineConfig = EngineConfig {
        limits: Limits::DEFAULT,
        resend: ResendPolicy::DEFAULT,
        padding: PaddingPolicy::DEFAULT,
        ping_interval: Some(Duration::from_secs(60)),
        ping_disconnect_delay: 75,
        rpc_timeout: Duration::from_secs(300),
        quick_ack: false,
        future_salts: true,
        strict_order: false,
        state_check_after: Some(Duration::from_secs(45)),
        max_http_wait: Duration::from_secs(60),
        #[cfg(feature = "alloc")]
        gzip: None,
    };
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::DEFAULT
    }
}

/// Counters, for hosts and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Packets accepted.
    pub packets_in: u64,
    /// Packets produced.
    pub packets_out: u64,
    /// Packets dropped by decryption (item 29: one counter for every cause).
    pub rejected: u64,
    /// Packets or messages dropped by a session check (session id, msg_id, salt, seq_no, container).
    pub dropped: u64,
    /// Messages resent (in a new container, or under a new msg_id).
    pub resent: u64,
    /// `bad_msg_notification`s sent (DC) or acted upon (client).
    pub bad_msgs: u64,
    /// Queries failed.
    pub failed: u64,
    /// `gzip_packed` work done on received packets: compressed bytes read plus bytes inflated, failed attempts
    /// included. Per packet it stays within [`INFLATE_WORK_PER_RX`] times the receive buffer (item 50, B14).
    pub inflate_work: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Buf {
    Rx,
    Gz,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Span {
    buf: Buf,
    off: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum EvRec {
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
    fn uses_buffers(&self) -> bool {
        matches!(
            self,
            EvRec::Result { .. } | EvRec::Error { .. } | EvRec::Update(_) | EvRec::Request { .. }
        )
    }
}

/// An answer the engine owes the peer for one of its messages and sends once, never resends: it is not kept in
/// the arena (whose slots and bytes bound what waits for an acknowledgement), but as this record, written straight
/// into the next packet (`Core::owed_body`) with its msg_id and seq_no made there.
///
/// This is what makes a full resend arena harmless to answers: a `pong` or a notification needs no slot, only
/// room in this queue, and the queue drains on every [`Engine::poll_packet`] without waiting for the peer. The
/// receive path takes a message only when there is room for its answer here (each message owes at most one);
/// until there is, the rest of the packet waits in the receive buffer (see `Held`). None of them carries state the
/// peer could lose: a lost `pong`, notification, state or salt list is asked for again, and the query of a lost
/// `rpc_answer_unknown` or `FLOOD_WAIT` was not executed (a client that resends it under the same msg_id after a
/// reconnection gets no second answer and ends it by its own timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum Owed {
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
    /// session, so `req` is refused, not executed (see [`Engine::answer`]).
    FloodWait { req: MsgId },
}

impl Owed {
    fn uses_buffers(&self) -> bool {
        matches!(self, Owed::StateInfo { .. })
    }
}

/// The `rpc_error` message of [`Owed::FloodWait`].
const FLOOD_WAIT: &[u8] = b"FLOOD_WAIT_1";

/// DC: the packet in the receive buffer whose messages are not all processed yet (they wait for room for their
/// answers, [`Owed`], or for their [`Event::Request`](super::Event::Request)s). The packet is accepted (its
/// msg_id, and a container's, is in the replay window), and every message in it is processed, in order, as room
/// frees up ([`Engine::poll_event`], [`Engine::poll_packet`]); meanwhile no input is taken (`must_drain`), so the
/// buffer stays intact. A container is thus accepted as a whole (SECURITY.md item 48) however small the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Held {
    /// Where in the receive buffer the next message (a container's inner `message`, or the lone body) starts, and
    /// where the packet's body ends.
    next: u32,
    end: u32,
    /// Inner messages left.
    left: u32,
    /// The Unix time the packet arrived at: every message in it is judged by the time window as of then.
    unix: UnixTime,
    /// Not a container: the message's (msg_id, seq_no); its body is `next..end`.
    single: Option<(MsgId, u32)>,
}

/// One outbound message whose body lives in the arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Slot {
    off: u32,
    len: u32,
    id: MsgId,
    seq_no: u32,
    kind: SentKind,
    /// Kept until settled (false: sent once, then freed).
    keep: bool,
    /// Waiting for its (next) first transmission.
    queued: bool,
    /// Already known to the tracker (re-queued under a new msg_id).
    in_tracker: bool,
    /// Client queries: when they fail with `Timeout`.
    deadline: Option<Instant>,
    /// The msg_id `send` returned: events name it even after a resend under a new msg_id.
    orig: MsgId,
    /// Transmissions under the current msg_id.
    sends: u8,
    /// Its body names its own msg_id (a bind request): never renamed, failed instead.
    pinned: bool,
    /// When it was first sent, and last checked with `msgs_state_req`.
    sent_at: Option<Instant>,
    checked_at: Option<Instant>,
    /// The peer acknowledged it: it has the message, so it is never renamed.
    acked: bool,
}

/// A packet [`Engine::poll_packet`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet {
    /// Its length at the start of `out`.
    pub len: usize,
    /// Client: ask the transport for a quick ack of it.
    pub quick_ack: bool,
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
    first_out: Option<Instant>,
    last_out: Option<Instant>,
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

/// Where a received message's header fields came from (after decryption, or from the fuzzing hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    salt: u64,
    session_id: u64,
    msg_id: MsgId,
    seq_no: u32,
}

fn span_of(base: &[u8], s: &[u8], buf: Buf) -> Span {
    let off = (s.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    Span {
        buf,
        off: u32::try_from(off).unwrap_or(u32::MAX),
        len: u32::try_from(s.len()).unwrap_or(0),
    }
}

fn peek_ctor(body: &[u8]) -> Option<u32> {
    Reader::new(body).peek_constructor().ok()
}

/// Whether a client message with this body, arriving with this seq_no, must carry an odd seq_no (item 37).
/// `ping` is taken with either parity: Pyrogram and kurigram send it as not content-related (an even seq_no) and
/// Telegram's DCs answer it, so a DC refusing it with 35 breaks their every connect (examples/interop/NOTES.md).
fn is_content_related(body: &[u8], seq_no: u32) -> bool {
    match peek_ctor(body) {
        Some(MsgsAck::CONSTRUCTOR | MsgContainer::CONSTRUCTOR | MsgCopy::CONSTRUCTOR | tl::HttpWait::CONSTRUCTOR) => {
            false
        }
        Some(tl::Ping::CONSTRUCTOR) => seq_no % 2 == 1,
        _ => true,
    }
}

/// DC: whether a client message with this body may end as an [`Event::Request`](super::Event::Request) (a query for
/// the host): anything outside the service schema, `auth.bindTempAuthKey`, and `gzip_packed` (a query inside).
fn may_request(body: &[u8]) -> bool {
    match peek_ctor(body) {
        Some(tl::AuthBindTempAuthKey::CONSTRUCTOR | GzipPacked::CONSTRUCTOR) => true,
        Some(c) => !tl::SCHEMA.iter().any(|&(_, s)| s == c),
        None => false,
    }
}

/// What `msgs_state_info` says about a peer's msg_id (item 47): 1 unknown or never the peer's, 2 not received but
/// within the window's range, 3 not received and above it, 4 received.
fn state_of(inbound: &InboundMsgIds<DEFAULT_REPLAY_WINDOW>, side: Side, id: MsgId) -> u8 {
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
fn write_state_info(w: &mut Writer<'_>, req: MsgId, ids: tl::LongVec<'_>, n: usize, state: impl Fn(MsgId) -> u8) {
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

/// The encrypted-session engine of one role for one auth key.
pub struct Engine<const RX: usize, const TX: usize, const MSGS: usize> {
    core: Core<TX, MSGS>,
    rx: [u8; RX],
    gz: [u8; RX],
    gz_used: usize,
}

/// DC: the host's word on a client session this engine does not serve yet (see [`Engine::approve_session`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Approval {
    /// Every unknown session is refused until the host answers.
    None,
    /// This session may start here, once.
    Session(u64),
    /// The first session named may start here: the engine runs on a key this connection just created, so no
    /// other connection can hold a session under it.
    First,
}

struct Core<const TX: usize, const MSGS: usize> {
    side: Side,
    cfg: EngineConfig,
    key: AuthKey,
    session_id: u64,
    session_known: bool,
    clock: Clock,
    ids: MsgIdGen,
    seq: SeqNoGen,
    inbound: InboundMsgIds<DEFAULT_REPLAY_WINDOW>,
    /// Client: the highest id accepted below a full replay window (see `client_check`); a replay of it is refused.
    below_window: Option<MsgId>,
    seq_check: SeqNoChecker<DEFAULT_REPLAY_WINDOW>,
    client_salts: ClientSalts<MAX_FUTURE_SALTS>,
    server_salts: Option<ServerSalts>,
    salt_secret: [u8; 32],
    /// A salt fixed for one rotation period (the handshake's), overriding the derived one.
    first_salt: Option<(u64, u64)>,
    tracker: SentTracker<MSGS>,
    acks: AckQueue<DEFAULT_ACK_QUEUE>,
    budget: ResendBudget,
    arena: [u8; TX],
    arena_used: usize,
    slots: [Option<Slot>; MSGS],
    events: heapless::Deque<EvRec, MSGS>,
    /// DC: requests delivered and not yet answered (at most `MSGS`; beyond, [`Owed::FloodWait`]).
    pending_reqs: heapless::Vec<MsgId, MSGS>,
    /// Answers owed to the peer, sent once each by the next packets.
    owed: heapless::Deque<Owed, MSGS>,
    /// DC: the received packet still being worked through.
    held: Option<Held>,
    /// DC: the host's last answer was refused with `QueueFull` (the arena waits for acknowledgements).
    answers_blocked: bool,
    /// The latest instant a host call passed in (for work resumed by [`Engine::poll_event`], which takes none).
    last_now: Instant,
    forced: heapless::Vec<MsgId, MSGS>,
    quick_acks: heapless::Deque<(u32, MsgId), QUICK_ACKS>,
    next_ping_at: Option<Instant>,
    ping_counter: u64,
    salts_requested: bool,
    disconnect_at: Option<Instant>,
    nsc_first: Option<MsgId>,
    nsc_due: bool,
    /// Client: the `unique_id` of the last `new_session_created`; a copy of it (re-sent by a DC under a new msg_id
    /// after a hand-over, [`Engine::hand_over`]) is acked and ignored.
    nsc_seen: Option<i64>,
    retired: heapless::Deque<u64, RETIRED_SESSIONS>,
    /// DC: which client session the host allowed this engine to start ([`Engine::approve_session`]); any other
    /// session it does not serve yet is refused with [`Dropped::UnknownSession`] and reported in `unknown_session`.
    approval: Approval,
    /// DC: the (session_id, msg_id) of the last packet refused as [`Dropped::UnknownSession`].
    unknown_session: Option<(u64, MsgId)>,
    long_poll: Option<LongPoll>,
    /// `gzip_packed` work the packet being processed may still cause (see [`INFLATE_WORK_PER_RX`]).
    inflate_left: usize,
    /// Client: when this engine's first packet left. A server message in its session cannot be older (the session id
    /// is fresh), which bounds how far a clock set from that message may lag (see `learn_time`).
    first_sent: Option<Instant>,
    stats: Stats,
    closed: bool,
}

impl<const TX: usize, const MSGS: usize> Drop for Core<TX, MSGS> {
    fn drop(&mut self) {
        self.salt_secret.zeroize();
        self.arena.zeroize();
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Drop for Engine<RX, TX, MSGS> {
    fn drop(&mut self) {
        self.rx.zeroize();
        self.gz.zeroize();
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> core::fmt::Debug for Engine<RX, TX, MSGS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("side", &self.core.side)
            .field("key_id", &self.core.key.id())
            .field("stats", &self.core.stats)
            .finish_non_exhaustive()
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Engine<RX, TX, MSGS> {
    /// A client session under `key`, starting with `salt` (0 if unknown: the server answers `bad_server_salt`)
    /// and `clock` (seeded from a Unix time hint, corrected by the server). The session id is drawn from `rng`.
    pub fn client<R: CryptoRng + ?Sized>(
        cfg: EngineConfig,
        key: AuthKey,
        salt: u64,
        clock: Clock,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        Self::client_with_session_id(cfg, key, salt, clock, now, rng.next_u64())
    }

    /// [`client`](Self::client) with a given session id (it must be unpredictable and unique per key, e.g.
    /// derived from a fresh key's secret material).
    pub fn client_with_session_id(
        cfg: EngineConfig,
        key: AuthKey,
        salt: u64,
        clock: Clock,
        now: Instant,
        session_id: u64,
    ) -> Self {
        let mut core = Core::new(Side::Client, cfg, key, clock, now);
        core.session_id = session_id;
        core.session_known = true;
        core.client_salts = ClientSalts::new(salt, Duration::from_secs(60));
        core.next_ping_at = cfg.ping_interval.map(|d| now.saturating_add(d));
        Self::wrap(core)
    }

    /// A DC session under `key` (the host looked it up by its id), waiting for the client's first message. The salt
    /// schedule's secret is drawn from `rng`; `clock` is the DC's Unix clock.
    pub fn server<R: CryptoRng + ?Sized>(
        cfg: EngineConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        let mut core = Core::new(Side::Server, cfg, key, clock, now);
        rng.fill_bytes(&mut core.salt_secret);
        core.init_server_salts(now);
        Self::wrap(core)
    }

    /// [`server`](Self::server) for a key the DC has just created: the handshake's salt
    /// (`new_nonce[0..8] XOR server_nonce[0..8]`) is the salt of the current rotation period, so the client's first
    /// messages are accepted.
    pub fn server_with_salt<R: CryptoRng + ?Sized>(
        cfg: EngineConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
        salt: u64,
    ) -> Self {
        let mut core = Core::new(Side::Server, cfg, key, clock, now);
        rng.fill_bytes(&mut core.salt_secret);
        let p = core.clock.unix_time(now).0 / core.rotation_secs();
        core.first_salt = Some((p, salt.max(1)));
        core.init_server_salts(now);
        Self::wrap(core)
    }

    /// [`server`](Self::server) on a stored salt schedule (what a DC keeps per key, so every connection under the
    /// key issues the same salts and a client keeps its salt across connections).
    pub fn server_with_schedule(
        cfg: EngineConfig,
        key: AuthKey,
        schedule: &super::dc_host::SaltSchedule,
        clock: Clock,
        now: Instant,
    ) -> Self {
        let mut core = Core::new(Side::Server, cfg, key, clock, now);
        core.salt_secret = schedule.secret;
        core.first_salt = schedule.first;
        core.init_server_salts(now);
        Self::wrap(core)
    }

    /// DC: this engine's salt schedule, to store with the key.
    pub fn salt_schedule(&self) -> super::dc_host::SaltSchedule {
        super::dc_host::SaltSchedule {
            secret: self.core.salt_secret,
            first: self.core.first_salt,
        }
    }

    /// DC: whether a client session is being served (false until the first authenticated message).
    pub fn has_session(&self) -> bool {
        self.core.session_known
    }

    /// DC: lets the next packet handed in start `session_id` here, if it names that session, as a **new** server
    /// session: empty replay window, `new_session_created`, and a floor under which msg_ids are refused as too old
    /// ([`Limits::new_session_max_age`](super::Limits::new_session_max_age)). The approval is spent by the next
    /// packet naming a session this engine does not serve, whichever it names.
    ///
    /// A DC engine never starts (or switches to) a client session on its own: a packet naming a session it does
    /// not serve is refused with [`Dropped::UnknownSession`] and nothing changes, because that session may live
    /// on in another connection's engine with the replay state that stops a copy of its messages from being
    /// executed twice (item 33, attack B7). The host looks the session up (the [`Session`](super::Session) facade
    /// asks it with [`HostQuery::Session`](super::HostQuery::Session)); only when no engine holds it does it call
    /// this and hand the packet in again.
    pub fn approve_session(&mut self, session_id: u64) {
        self.core.approval = Approval::Session(session_id);
    }

    /// DC: lets the first session named start without asking, for an engine on a key this connection has just
    /// created (no other connection can hold a session under it). See [`approve_session`](Self::approve_session).
    pub fn approve_first_session(&mut self) {
        if !self.core.session_known {
            self.core.approval = Approval::First;
        }
    }

    /// DC: the (session_id, msg_id) of the last packet refused with [`Dropped::UnknownSession`], taken.
    pub fn take_unknown_session(&mut self) -> Option<(u64, MsgId)> {
        self.core.unknown_session.take()
    }

    /// Decrypts `packet` (checking it fully) into the receive buffer only to read its session id and msg_id;
    /// nothing else changes. `None` if it does not decrypt or events still borrow the buffer.
    pub fn peek_ids(&mut self, packet: &[u8]) -> Option<(u64, MsgId)> {
        if self.must_drain() {
            return None;
        }
        let dir = match self.core.side {
            Side::Client => Direction::ServerToClient,
            Side::Server => Direction::ClientToServer,
        };
        let buf = self.rx.get_mut(..packet.len())?;
        buf.copy_from_slice(packet);
        let ids = packet::decrypt(&self.core.key, dir, buf)
            .ok()
            .map(|v| (v.session_id(), MsgId(v.msg_id())));
        buf.zeroize();
        ids
    }

    /// DC: whether a client message with this id can only be a replay in the current session: already received,
    /// below the replay window, or older than the allowed past.
    pub fn is_replay(&self, now: Instant, id: MsgId) -> bool {
        let unix = self.core.clock.unix_time(now);
        matches!(
            self.core.inbound.check(id, unix, true),
            Err(MsgIdReject::Duplicate | MsgIdReject::OlderThanWindow | MsgIdReject::TooLow)
        )
    }

    fn wrap(core: Core<TX, MSGS>) -> Self {
        Engine {
            core,
            rx: [0; RX],
            gz: [0; RX],
            gz_used: 0,
        }
    }

    /// This engine's role.
    pub fn side(&self) -> Side {
        self.core.side
    }

    /// The session id (a DC's is 0 until the client's first message).
    pub fn session_id(&self) -> u64 {
        self.core.session_id
    }

    /// The auth key.
    pub fn auth_key(&self) -> &AuthKey {
        &self.core.key
    }

    /// The clock (Unix offset, synced or not).
    pub fn clock(&self) -> &Clock {
        &self.core.clock
    }

    /// The salt the next packet carries (client) or the DC's current salt.
    pub fn current_salt(&self) -> u64 {
        match &self.core.server_salts {
            Some(s) => s.current(),
            None => self.core.client_salts.current(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Messages in flight (queued, unacknowledged or awaiting an answer).
    pub fn in_flight(&self) -> usize {
        self.core.slots.iter().flatten().count()
    }

    /// Arena bytes in use.
    pub fn arena_used(&self) -> usize {
        self.core.arena_used
    }

    /// Received msg_ids waiting to be acknowledged.
    pub fn pending_acks(&self) -> usize {
        self.core.acks.len()
    }

    /// Events not yet taken.
    pub fn pending_events(&self) -> usize {
        self.core.events.len()
    }

    /// Whether the engine cannot take a packet now: an event borrowing the receive buffers is pending, the last
    /// packet is still being worked through (it waits for room for its answers or events), or answers are owed that
    /// need the buffers or fill their queue. The host drains [`poll_event`](Self::poll_event) and
    /// [`poll_packet`](Self::poll_packet) (both free room and resume the held packet), then offers the packet again;
    /// [`handle_packet`](Self::handle_packet) meanwhile refuses it with [`Dropped::Backpressure`], changing nothing.
    pub fn must_drain(&self) -> bool {
        let c = &self.core;
        c.events.iter().any(EvRec::uses_buffers)
            || c.held.is_some()
            || c.owed.is_full()
            || c.owed.iter().any(Owed::uses_buffers)
    }

    /// Answers owed to the peer and not yet written into a packet (`pong`s, notifications, `msgs_state_info`...).
    pub fn owed_answers(&self) -> usize {
        self.core.owed.len()
    }

    /// DC: works on through the held packet as far as there is room (see `Held`).
    fn resume(&mut self, now: Instant) {
        if self.core.held.is_some() {
            self.core.resume(now, &self.rx, &mut self.gz, &mut self.gz_used);
        }
    }

    /// Queues a message (see [`MsgKind`]); returns its msg_id. The body (a serialized TL object, a multiple of 4
    /// bytes) is kept in the arena until the message is settled. Full queues are backpressure, never loss.
    pub fn send(&mut self, now: Instant, body: &[u8], kind: MsgKind) -> Result<MsgId, SendError> {
        if body.len() > Self::max_body() {
            return Err(SendError::TooLarge);
        }
        #[cfg(feature = "alloc")]
        if let Some(packed) = self.core.gzipped(body) {
            return self.core.send(now, &packed, kind);
        }
        self.core.send(now, body, kind)
    }

    /// Client (MTProto over HTTP): queues `http_wait`, asking the DC to hold the HTTP exchange that carries it open
    /// until it has something to send (see [`LongPoll`]). It is not content-related: it rides in the next packet
    /// (alone, or in the container with whatever else is queued) with an even seq_no, and is never acknowledged,
    /// tracked or resent. A second call before it leaves replaces its parameters.
    pub fn http_wait(&mut self, now: Instant, wait: tl::HttpWait) -> Result<MsgId, SendError> {
        self.core.http_wait(now, wait)
    }

    /// DC: the long poll a received `http_wait` asked for, while it is held.
    pub fn long_poll(&self) -> Option<LongPoll> {
        self.core.long_poll
    }

    /// Client, on a temporary key's session: queues `auth.bindTempAuthKey` binding this key to `perm_key` until
    /// `expires_at` (item 53; the inner message is MTProto 1.0 under `perm_key`, its msg_id the request's). It ends
    /// like any query; if the DC refuses it with a notification that would need a new msg_id, it fails with
    /// [`FailReason::MustRebuild`] and must be sent again.
    pub fn bind_temp_key<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        perm_key: &AuthKey,
        expires_at: i32,
        rng: &mut R,
    ) -> Result<MsgId, SendError> {
        let params = super::bind::BindParams {
            temp_auth_key_id: self.core.key.id(),
            temp_session_id: self.core.session_id,
            expires_at,
        };
        let id = self
            .core
            .send(now, &[0u8; super::bind::BIND_BODY_LEN], MsgKind::Query)?;
        let Some((idx, slot)) = self.core.slot_by_id(id) else {
            return Err(SendError::QueueFull);
        };
        let range = slot.off as usize..(slot.off + slot.len) as usize;
        let written = match self.core.arena.get_mut(range) {
            Some(dst) => super::bind::write_bind_request(perm_key, &params, id, rng, dst).is_ok(),
            None => false,
        };
        if !written {
            self.core.free(BodyHandle(idx as u32));
            return Err(SendError::TooLarge);
        }
        if let Some(Some(s)) = self.core.slots.get_mut(idx) {
            s.pinned = true;
        }
        Ok(id)
    }

    /// DC: verifies an `auth.bindTempAuthKey` request (`body` of [`Event::Request`] `req`) received on this
    /// session, against the permanent key the host found by [`bind_perm_key_id`](super::bind::bind_perm_key_id)
    /// (item 53). On success the host records the binding and answers `boolTrue`; otherwise it answers
    /// `rpc_error 400 ENCRYPTED_MESSAGE_INVALID`.
    pub fn verify_bind(
        &self,
        now: Instant,
        perm_key: &AuthKey,
        req: MsgId,
        body: &[u8],
    ) -> Result<super::bind::BindParams, super::bind::BindError> {
        let session = super::bind::BindParams {
            temp_auth_key_id: self.core.key.id(),
            temp_session_id: self.core.session_id,
            expires_at: 0,
        };
        super::bind::verify_bind(perm_key, &session, req, body, self.core.clock.unix_time(now))
    }

    /// DC: answers the request `req` (delivered as [`Event::Request`]) with `rpc_result { req, result }`. The answer
    /// is kept until the client acknowledges it (it is resent after a reconnection).
    ///
    /// [`SendError::QueueFull`] is backpressure, and nothing was queued: the resend arena holds `MSGS` messages (or
    /// its bytes) the client has not acknowledged yet. Keep the answer and call again after
    /// [`poll_packet`](Self::poll_packet) and after the next input (acknowledgements free room); the request stays
    /// pending meanwhile. While answers are refused so, queries beyond the `MSGS` the host holds unanswered are
    /// answered by the engine itself with `FLOOD_WAIT_1` rather than delivered (clients retry them), so the client's
    /// acknowledgements are never stuck behind queries the DC cannot take. [`SendError::TooLarge`] is final:
    /// answer with an error instead.
    pub fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
        if result.len() + 12 > Self::max_body() {
            return Err(SendError::TooLarge);
        }
        #[cfg(feature = "alloc")]
        if let Some(packed) = self.core.gzipped(result) {
            let r = self.core.answer(now, req, &packed);
            self.resume(now);
            return r;
        }
        let r = self.core.answer(now, req, result);
        self.resume(now);
        r
    }

    /// DC: answers the request `req` with `rpc_error { code, message }`; errors as for [`answer`](Self::answer).
    pub fn answer_error(&mut self, now: Instant, req: MsgId, code: i32, message: &[u8]) -> Result<MsgId, SendError> {
        let err = RpcError {
            error_code: code,
            error_message: message,
        };
        if err.tl_len() + 12 > Self::max_body() || message.len() > tl::MAX_BYTES_LEN {
            return Err(SendError::TooLarge);
        }
        let mut buf = [0u8; 256];
        let n = tl::encode(&err, &mut buf).map_err(|_| SendError::TooLarge)?;
        let r = self.core.answer(now, req, buf.get(..n).unwrap_or(&[]));
        self.resume(now);
        r
    }

    /// The largest body `send` accepts: it must fit, wrapped in a container, in one `RX`-sized packet (the peer's
    /// receive buffer is assumed to be as large as ours) and in the arena.
    pub const fn max_body() -> usize {
        let packet_room = RX.saturating_sub(packet::OUTER_HEADER_LEN + packet::INNER_HEADER_LEN + packet::MAX_PADDING);
        let room = packet_room.saturating_sub(CONTAINER_HDR + INNER_HDR + 40);
        if room < TX { room & !3 } else { TX & !3 }
    }

    /// The smallest `out` [`poll_packet`](Self::poll_packet) accepts.
    pub fn min_out_len(&self) -> usize {
        Self::min_out_len_with(self.core.cfg.padding)
    }

    /// [`min_out_len`](Self::min_out_len) for an engine of this size with `padding`, before one exists.
    pub fn min_out_len_with(padding: PaddingPolicy) -> usize {
        let payload = RX.saturating_sub(packet::OUTER_HEADER_LEN + packet::INNER_HEADER_LEN + packet::MAX_PADDING) & !3;
        padding.max_encrypted_len(payload).unwrap_or(RX)
    }

    /// Processes one received MTProto packet (the transport's payload). `Ok` means it was accepted; `Err` tells why it
    /// was dropped (a DC may have queued a `bad_msg_notification`). Returns the quick-ack token of the packet.
    ///
    /// On padded intermediate the transport payload carries 0-15 trailing random bytes: pass it through
    /// [`crate::transport::strip_padding`] first (the [`Session`](super::Session) facade does).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) -> Result<u32, Dropped> {
        self.core.saw(now);
        self.resume(now);
        if self.must_drain() {
            return Err(Dropped::Backpressure);
        }
        let n = packet.len();
        let Some(dst) = self.rx.get_mut(..n) else {
            self.core.stats.dropped += 1;
            return Err(Dropped::TooLarge);
        };
        dst.copy_from_slice(packet);
        self.handle_rx(now, n)
    }

    fn handle_rx(&mut self, now: Instant, n: usize) -> Result<u32, Dropped> {
        let dir = match self.core.side {
            Side::Client => Direction::ServerToClient,
            Side::Server => Direction::ClientToServer,
        };
        let (hdr, len, token) = {
            let Some(buf) = self.rx.get_mut(..n) else {
                return Err(Dropped::TooLarge);
            };
            match packet::decrypt(&self.core.key, dir, buf) {
                Ok(v) => (
                    Header {
                        salt: v.salt(),
                        session_id: v.session_id(),
                        msg_id: MsgId(v.msg_id()),
                        seq_no: v.seq_no(),
                    },
                    v.body().len(),
                    v.quick_ack_token(),
                ),
                Err(_) => {
                    self.core.stats.rejected += 1;
                    return Err(Dropped::Rejected);
                }
            }
        };
        self.gz_used = 0;
        self.core.inflate_left = INFLATE_WORK_PER_RX.saturating_mul(RX);
        let off = packet::body_offset();
        let body = self.rx.get(off..off + len).ok_or(Dropped::TooLarge)?;
        let r = self
            .core
            .on_packet(now, hdr, body, &self.rx, &mut self.gz, &mut self.gz_used);
        match r {
            Ok(()) => self.core.stats.packets_in += 1,
            Err(_) => self.core.stats.dropped += 1,
        }
        r.map(|()| token)
    }

    /// **Fuzzing only**: processes a message as if it had passed decryption, so a fuzzer reaches the session logic
    /// without forging msg_keys.
    #[cfg(fuzzing)]
    pub fn handle_plaintext_unchecked(
        &mut self,
        now: Instant,
        salt: u64,
        session_id: u64,
        msg_id: u64,
        seq_no: u32,
        body: &[u8],
    ) -> Result<(), Dropped> {
        if self.must_drain() {
            return Err(Dropped::Backpressure);
        }
        let off = packet::body_offset();
        let dst = self.rx.get_mut(off..off + body.len()).ok_or(Dropped::TooLarge)?;
        dst.copy_from_slice(body);
        self.gz_used = 0;
        self.core.inflate_left = INFLATE_WORK_PER_RX.saturating_mul(RX);
        let body = self.rx.get(off..off + body.len()).ok_or(Dropped::TooLarge)?;
        let hdr = Header {
            salt,
            session_id,
            msg_id: MsgId(msg_id),
            seq_no,
        };
        self.core
            .on_packet(now, hdr, body, &self.rx, &mut self.gz, &mut self.gz_used)
    }

    /// A quick-ack token arrived from the transport (client): the packet it names was received.
    pub fn handle_quick_ack(&mut self, token: u32) {
        self.core.on_quick_ack(token);
    }

    /// A transport error code arrived (client): reported as [`Event::TransportError`].
    pub fn handle_transport_error(&mut self, code: i32) {
        let _ = self.core.events.push_back(EvRec::Transport(code));
    }

    /// Runs the timers due at `now`: query deadlines, the DC's salt rotation and disconnect timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.core.saw(now);
        self.core.on_timeout(now);
    }

    /// The next instant [`handle_timeout`](Self::handle_timeout) or [`poll_packet`](Self::poll_packet) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }

    /// The next event, borrowing the receive buffers. Taking one makes room for the held packet to go on.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let rec = self.core.events.pop_front()?;
        self.resume(self.core.last_now);
        let get = |s: Span| -> &[u8] {
            let b: &[u8] = match s.buf {
                Buf::Rx => &self.rx,
                Buf::Gz => &self.gz,
            };
            b.get(s.off as usize..(s.off as usize).saturating_add(s.len as usize))
                .unwrap_or(&[])
        };
        Some(match rec {
            EvRec::Result { req, body } => Event::RpcResult { req, body: get(body) },
            EvRec::Error { req, code, msg } => {
                let message = get(msg);
                Event::RpcError {
                    req,
                    code,
                    message,
                    kind: RpcErrorKind::parse(message),
                }
            }
            EvRec::Failed { req, reason } => Event::Failed { req, reason },
            EvRec::Update(s) => Event::Update(get(s)),
            EvRec::Reset(first_msg_id) => Event::SessionReset { first_msg_id },
            EvRec::Request { msg_id, body } => Event::Request {
                msg_id,
                body: get(body),
            },
            EvRec::Created(session_id) => Event::SessionCreated { session_id },
            EvRec::Disconnect => Event::DisconnectRequested,
            EvRec::Transport(c) => Event::TransportError(c),
        })
    }

    /// Writes the next packet (resends, queued messages, acks, service messages; several are packed into a
    /// container) into `out`, or returns `Ok(None)` if there is nothing to send. `out` must hold
    /// [`min_out_len`](Self::min_out_len) bytes; otherwise nothing changes.
    pub fn poll_packet<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<Packet>, super::event::BufferTooSmall> {
        let required = self.min_out_len();
        if out.len() < required {
            return Err(super::event::BufferTooSmall { required });
        }
        self.core.saw(now);
        // The last packet's owed answers went out: its next messages may have room now.
        self.resume(now);
        let p = self.core.poll_packet::<RX, R>(now, rng, out, &self.rx, &self.gz);
        if p.is_some() && self.core.first_sent.is_none() {
            self.core.first_sent = Some(now);
        }
        Ok(p)
    }

    /// A new transport connection under the same session: every unacknowledged message becomes due for resending
    /// (in a new container, item 38) and quick-ack tokens of the old connection are forgotten.
    pub fn reconnect(&mut self, now: Instant) {
        self.core.quick_acks.clear();
        if let Some(first) = self.core.ids.last() {
            // Everything sent so far (ids up to the last one) is due now.
            self.core.tracker.requeue_before(MsgId(first.0.saturating_add(1)), now);
        }
    }

    /// DC: this session was taken over by a new transport connection ([`Session::resume_session`]). Quick-ack
    /// tokens of the old connection are forgotten, and every message the old connection sent that the client has
    /// not acknowledged goes again at once under a **new** msg_id and seq_no (a new message, never a re-encryption
    /// under an old id: item 38's invariant holds).
    ///
    /// Not under its old msg_id, as [`reconnect`](Self::reconnect) does: clients treat the msg_ids they received on
    /// the connection they just closed as replays on the new one (kurigram drops the whole packet, and with it the
    /// answers packed beside the copy, so the client's first request on the new connection times out and it
    /// reconnects again). Item 38 renames only what `msgs_state_info` showed lost, because a peer could execute a
    /// renamed *query* twice; a DC sends no queries, and a copy of what it sends is harmless to a client that had
    /// it: a second `rpc_result` for a settled `req_msg_id` is ignored (item 42), a second `new_session_created`
    /// carries the same `unique_id` (this crate's client ignores it), updates carry their pts/qts/seq.
    ///
    /// [`Session::resume_session`]: super::Session::resume_session
    pub fn hand_over(&mut self, now: Instant) {
        self.core.quick_acks.clear();
        if self.core.side == Side::Server {
            self.core.rename_in_flight(now);
        } else {
            self.reconnect(now);
        }
        // A packet the old connection left half done goes on (its answers are owed on this connection).
        self.core.saw(now);
        self.resume(now);
    }

    /// Fails every outstanding query with `Closed` and stops the engine.
    pub fn close(&mut self) {
        self.core.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.core.closed
    }

    /// DC: forgets the client session (as a DC that lost its state would): the next message starts a new one.
    pub fn forget_session(&mut self) {
        self.core.reset_server_session(0);
        self.core.session_known = false;
        self.core.retired.clear();
        self.core.approval = Approval::None;
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    fn new(side: Side, cfg: EngineConfig, key: AuthKey, clock: Clock, now: Instant) -> Self {
        let l = &cfg.limits;
        Core {
            side,
            cfg,
            key,
            session_id: 0,
            session_known: false,
            clock,
            ids: MsgIdGen::new(side),
            seq: SeqNoGen::new(),
            inbound: InboundMsgIds::new(
                side.peer(),
                TimeWindow {
                    past: l.msg_id_max_past,
                    future: l.msg_id_max_future,
                },
            ),
            below_window: None,
            seq_check: SeqNoChecker::new(),
            client_salts: ClientSalts::new(0, Duration::from_secs(60)),
            server_salts: None,
            salt_secret: [0; 32],
            first_salt: None,
            tracker: SentTracker::new(
                TX,
                ResendPolicy {
                    max_attempts: l.max_resend_attempts,
                    ..cfg.resend
                },
            ),
            acks: AckQueue::new(l.ack_flush_threshold, l.ack_max_delay),
            budget: ResendBudget::new(now, l.resend_burst_bytes, l.resend_bytes_per_sec),
            arena: [0; TX],
            arena_used: 0,
            slots: [None; MSGS],
            events: heapless::Deque::new(),
            pending_reqs: heapless::Vec::new(),
            owed: heapless::Deque::new(),
            held: None,
            answers_blocked: false,
            last_now: now,
            forced: heapless::Vec::new(),
            quick_acks: heapless::Deque::new(),
            next_ping_at: None,
            ping_counter: 0,
            salts_requested: false,
            disconnect_at: None,
            nsc_first: None,
            nsc_due: false,
            nsc_seen: None,
            retired: heapless::Deque::new(),
            approval: Approval::None,
            unknown_session: None,
            long_poll: None,
            inflate_left: 0,
            first_sent: None,
            stats: Stats::default(),
            closed: false,
        }
    }

    fn max_payload<const RX: usize>(&self) -> usize {
        RX.saturating_sub(packet::OUTER_HEADER_LEN + packet::INNER_HEADER_LEN + packet::MAX_PADDING) & !3
    }

    // ---- salts (DC) --------------------------------------------------------------------------------------------

    fn rotation_secs(&self) -> u64 {
        self.cfg.limits.salt_rotation.as_secs().max(1)
    }

    /// The DC's salt for rotation period `p`: derived from a per-engine secret, so `future_salts` can promise the
    /// salts of coming periods and rotation needs no RNG.
    fn derived_salt(&self, p: u64) -> u64 {
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

    fn init_server_salts(&mut self, now: Instant) {
        let rot = self.rotation_secs();
        let unix = self.clock.unix_time(now).0;
        let p = unix / rot;
        let policy = ServerSaltPolicy {
            rotation: Duration::from_secs(rot),
            grace: self.cfg.limits.salt_grace,
        };
        self.server_salts = ServerSalts::new(self.derived_salt(p), UnixTime(p * rot), policy).ok();
    }

    fn rotate_server_salt(&mut self, now: Instant) {
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

    // ---- the arena ---------------------------------------------------------------------------------------------

    fn body_limit(&self) -> usize {
        self.cfg.limits.max_unacked_bytes.min(TX)
    }

    /// Allocates a slot and writes its body with `f`, which gets exactly `len` bytes.
    fn alloc(
        &mut self,
        len: usize,
        mut slot: Slot,
        f: impl FnOnce(&mut [u8]) -> Result<(), tl::Full>,
    ) -> Result<usize, SendError> {
        if !len.is_multiple_of(4) || len > TX {
            return Err(SendError::TooLarge);
        }
        if self.arena_used + len > self.body_limit() {
            return Err(SendError::QueueFull);
        }
        let idx = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(SendError::QueueFull)?;
        let off = self.arena_used;
        let dst = self.arena.get_mut(off..off + len).ok_or(SendError::QueueFull)?;
        f(dst).map_err(|_| SendError::TooLarge)?;
        self.arena_used += len;
        slot.off = off as u32;
        slot.len = len as u32;
        if let Some(s) = self.slots.get_mut(idx) {
            *s = Some(slot);
        }
        Ok(idx)
    }

    /// Frees a slot and compacts the arena (bounded by `TX` bytes moved).
    fn free(&mut self, h: BodyHandle) {
        if h == NO_BODY {
            return;
        }
        let Some(slot) = self.slots.get_mut(h.0 as usize).and_then(Option::take) else {
            return;
        };
        let (off, len) = (slot.off as usize, slot.len as usize);
        let end = self.arena_used;
        self.arena.copy_within(off + len..end, off);
        self.arena_used -= len;
        if let Some(tail) = self.arena.get_mut(self.arena_used..end) {
            tail.fill(0);
        }
        for s in self.slots.iter_mut().flatten() {
            if s.off as usize > off {
                s.off -= len as u32;
            }
        }
    }

    fn slot_by_id(&self, id: MsgId) -> Option<(usize, Slot)> {
        self.slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| s.filter(|s| s.id == id).map(|s| (i, s)))
    }

    fn body_of(&self, s: &Slot) -> &[u8] {
        self.arena.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[])
    }

    fn saw(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    /// Owes the peer an answer. The receive path checked for room before taking the message (`room_for`; a
    /// packet-level notification has the room `must_drain` keeps free), so this cannot fail.
    fn push_owed(&mut self, now: Instant, o: Owed) {
        if self.owed.push_back(o).is_err() {
            warn!("session: owed answers full");
            return;
        }
        if let Some(lp) = self.long_poll.as_mut() {
            lp.first_out.get_or_insert(now);
            lp.last_out = Some(now);
        }
    }

    fn push_event(&mut self, e: EvRec) {
        // Capacity was reserved before processing began (see `on_packet`); a failure here would be a bug.
        if self.events.push_back(e).is_err() {
            warn!("session: event queue full");
        }
    }

    // ---- sending -----------------------------------------------------------------------------------------------

    fn send(&mut self, now: Instant, body: &[u8], kind: MsgKind) -> Result<MsgId, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let sent_kind = match (kind, self.side) {
            (MsgKind::Query, Side::Client) => SentKind::RpcQuery,
            (MsgKind::Query, Side::Server) => return Err(SendError::NotReady),
            (MsgKind::Notice, _) => SentKind::Service,
        };
        if self.side == Side::Server && !self.session_known {
            return Err(SendError::NotReady);
        }
        // A query must be able to end in an event: keep one event slot per query in flight.
        if sent_kind == SentKind::RpcQuery && self.queries_in_flight() + 1 > MSGS.saturating_sub(1) {
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
    fn gzipped(&self, body: &[u8]) -> Option<alloc::vec::Vec<u8>> {
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

    fn queries_in_flight(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.kind == SentKind::RpcQuery)
            .count()
    }

    /// Queues a content-related message. `keep`: tracked until settled; `response`: a DC answer (id ≡ 1 mod 4).
    fn queue(
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
    fn queue_as(
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
        let idx = self.alloc(len, slot, f)?;
        let id = if response {
            self.ids.next_response(now, &self.clock)
        } else {
            self.ids.next(now, &self.clock)
        };
        let seq = self.seq.next(content);
        let (Ok(id), Ok(seq)) = (id, seq) else {
            self.free(BodyHandle(idx as u32));
            return Err(SendError::Closed);
        };
        if let Some(Some(s)) = self.slots.get_mut(idx) {
            s.id = id;
            s.seq_no = seq;
            s.orig = id;
        }
        if let Some(lp) = self.long_poll.as_mut() {
            lp.first_out.get_or_insert(now);
            lp.last_out = Some(now);
        }
        Ok(id)
    }

    fn http_wait(&mut self, now: Instant, wait: tl::HttpWait) -> Result<MsgId, SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        if self.side != Side::Client {
            return Err(SendError::NotReady);
        }
        let queued = self
            .slots
            .iter()
            .flatten()
            .copied()
            .find(|s| s.queued && !s.keep && peek_ctor(self.body_of(s)) == Some(tl::HttpWait::CONSTRUCTOR));
        if let Some(s) = queued {
            let dst = self
                .arena
                .get_mut(s.off as usize..(s.off + s.len) as usize)
                .ok_or(SendError::TooLarge)?;
            wait.write(&mut Writer::new(dst)).map_err(|_| SendError::TooLarge)?;
            return Ok(s.id);
        }
        self.queue_as(now, SentKind::Service, false, false, false, wait.tl_len(), |d| {
            wait.write(&mut Writer::new(d))
        })
    }

    /// DC: whether something is waiting to be sent (what a held long poll is released for).
    fn has_outbound(&self, now: Instant) -> bool {
        !self.forced.is_empty()
            || !self.owed.is_empty()
            || self.slots.iter().flatten().any(|s| s.queued)
            || self.tracker.next_due(now).is_some_and(|d| !d.exhausted)
    }

    /// Queues a service message written by `w` (a TL value).
    fn queue_tl<T: TlWrite>(&mut self, now: Instant, kind: SentKind, keep: bool, response: bool, v: &T) -> bool {
        let len = v.tl_len();
        self.queue(now, kind, keep, response, len, |d| {
            let mut w = Writer::new(d);
            v.write(&mut w)
        })
        .is_ok()
    }

    fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
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

    /// Sends a refused message's body again under a new msg_id and seq_no (items 38, 43). A container's members
    /// are each re-sent.
    fn resend_new_id(&mut self, now: Instant, id: MsgId) {
        self.resend_new_id_with(now, id, false);
    }

    /// [`resend_new_id`](Self::resend_new_id); `clock_fault`: the refusal was our clock's (a 16/17 that moved it by
    /// more than the DC's tolerance), so a message sent before under its id is renamed too (see `on_bad_msg`).
    fn resend_new_id_with(&mut self, now: Instant, id: MsgId, clock_fault: bool) {
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
                    .slot_by_id(m)
                    .is_some_and(|(_, s)| s.acked || (s.sends > 1 && !clock_fault))
                {
                    if !self.forced.contains(&m) {
                        let _ = self.forced.push(m);
                    }
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
    fn resend_one_new_id(&mut self, now: Instant, id: MsgId, clock_fault: bool) {
        let Some((idx, slot)) = self.slot_by_id(id) else { return };
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
    fn rename_slot(&mut self, now: Instant, idx: usize, id: MsgId) {
        let response = self.side == Side::Server && id.is_server_response();
        let new = if response {
            self.ids.next_response(now, &self.clock)
        } else {
            self.ids.next(now, &self.clock)
        };
        let (Ok(new), Ok(seq)) = (new, self.seq.next(true)) else {
            return;
        };
        let in_tracker = self.tracker.replace_id(id, new, seq, now).is_ok();
        if let Some(Some(s)) = self.slots.get_mut(idx) {
            s.id = new;
            s.seq_no = seq;
            s.queued = true;
            s.in_tracker = in_tracker;
            s.sends = 0;
            s.acked = false;
        }
        self.stats.resent += 1;
    }

    /// DC hand-over ([`Engine::hand_over`]): every message sent and not acknowledged is queued again under a new
    /// msg_id and seq_no. The containers it travelled in are forgotten (their members are renamed).
    fn rename_in_flight(&mut self, now: Instant) {
        let mut ids: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for s in self.slots.iter().flatten() {
            if s.keep && !s.queued && !s.acked && s.sends > 0 && !s.pinned {
                let _ = ids.push(s.id);
            }
        }
        self.forced.clear();
        for id in ids {
            let Some((idx, _)) = self.slot_by_id(id) else { continue };
            if let Some(c) = self.tracker.container_of(id) {
                let _ = self.tracker.remove(c);
            }
            self.rename_slot(now, idx, id);
        }
    }

    /// Client: a new session id (derived from the old one, no RNG needed) with fresh msg_ids and seq_nos; every
    /// message still in flight is sent again under a new id, except those the DC acknowledged.
    fn restart_session(&mut self, now: Instant) {
        let mut h = Sha256::new();
        h.update(self.session_id.to_le_bytes());
        h.update(self.clock.msg_time(now).to_le_bytes());
        let d = h.finalize();
        let mut b = [0u8; 8];
        if let Some(x) = d.get(..8) {
            b.copy_from_slice(x);
        }
        self.session_id = u64::from_le_bytes(b);
        self.ids = MsgIdGen::new(self.side);
        self.seq = SeqNoGen::new();
        self.inbound.reset();
        self.below_window = None;
        self.tracker = SentTracker::new(TX, self.tracker.policy());
        self.quick_acks.clear();
        self.forced.clear();
        // Answers to the old session's messages mean nothing in the new one.
        self.owed.clear();
        self.salts_requested = false;
        let mut order: heapless::Vec<(MsgId, usize), MSGS> = heapless::Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                let _ = order.push((s.id, i));
            }
        }
        order.sort_unstable();
        for (id, i) in order {
            if self.slots.get(i).copied().flatten().is_some_and(|s| s.pinned) {
                self.fail(id, FailReason::MustRebuild);
                continue;
            }
            let (Ok(id), Ok(seq)) = (self.ids.next(now, &self.clock), self.seq.next(true)) else {
                continue;
            };
            if let Some(Some(s)) = self.slots.get_mut(i) {
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

    fn fail(&mut self, id: MsgId, reason: FailReason) {
        let req = self.slot_by_id(id).map_or(id, |(_, s)| s.orig);
        if let Some(r) = self.tracker.remove(id) {
            self.free(r.handle);
        } else if let Some((idx, _)) = self.slot_by_id(id) {
            self.free(BodyHandle(idx as u32));
        }
        self.stats.failed += 1;
        self.push_event(EvRec::Failed { req, reason });
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.held = None;
        self.owed.clear();
        let mut queries: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for s in self.slots.iter().flatten().filter(|s| s.kind == SentKind::RpcQuery) {
            let _ = queries.push(s.id);
        }
        for q in queries {
            self.fail(q, FailReason::Closed);
        }
    }

    // ---- receiving ---------------------------------------------------------------------------------------------

    fn on_packet(
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
        match self.side {
            Side::Client => self.client_packet(now, h, body, rx, gz, gz_used),
            Side::Server => self.server_packet(now, h, body, rx, gz, gz_used),
        }
    }

    /// Validates a container's structure (item 48): at most the configured count, no nesting or copies, inner
    /// ids below the container's, unique, with the sender's parity, and inner seq_nos not above the container's.
    ///
    /// Uniqueness is found by sorting a copy of the ids in `scratch` (the unused part of the inflate buffer), not
    /// on the stack and not by a pairwise scan (~500k header decodes for 1024 messages, a 100x amplification of
    /// the packet's own decryption cost). A container in the receive buffer always leaves room: each inner message
    /// takes at least 20 bytes, its id 8. Only a `gzip_packed` container inflating to more than ~5/7 of the buffer
    /// can lack it, and is dropped as too large.
    fn check_container(&self, h: &Header, c: &MsgContainer<'_>, scratch: &mut [u8]) -> Result<usize, Dropped> {
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
                || check_parity(id, self.side.peer()).is_err()
                || m.seqno < 0
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

    /// Whether the client may skip the time-window check for this body: a `bad_msg_notification` with code 16/17 or
    /// a `bad_server_salt` about a message we sent and still track (item 34's exception). A container is exempt
    /// (its outer id only) when it holds such a notification, as a DC may pack one with acks or other service
    /// messages; each member is still checked on its own, so only the notification gets past the window.
    fn time_exempt(&self, body: &[u8]) -> bool {
        if peek_ctor(body) == Some(MsgContainer::CONSTRUCTOR) {
            return MsgContainer::decode(body).is_ok_and(|c| c.iter().any(|m| self.time_exempt_message(m.body)));
        }
        self.time_exempt_message(body)
    }

    fn time_exempt_message(&self, body: &[u8]) -> bool {
        match ServiceMessage::decode_body(body) {
            Ok(ServiceMessage::BadMsg(b)) => {
                matches!(b.error_code, 16 | 17) && self.tracker.reference(MsgId::from_wire(b.bad_msg_id)).is_some()
            }
            Ok(ServiceMessage::BadServerSalt(b)) => self.tracker.reference(MsgId::from_wire(b.bad_msg_id)).is_some(),
            _ => false,
        }
    }

    fn client_packet(
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
    fn client_payload(
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
            for m in c.iter() {
                if self.events.is_full() || self.owed.is_full() {
                    // Local backpressure: the rest is neither accepted nor acknowledged, so the DC sends it again
                    // (in a new container) once the host has drained its events and our packets.
                    break;
                }
                let id = MsgId::from_wire(m.msg_id);
                let exempt = self.time_exempt(m.body);
                if self.client_accept(now, id, exempt).is_err() {
                    // A duplicate (a resend of something we have) or out of window: ignored, still acked.
                    if m.seqno % 2 == 1 {
                        let _ = self.acks.push(now, id);
                    }
                    continue;
                }
                self.client_message(now, id, m.seqno as u32, h.salt, m.body, base, which, gz, gz_used);
            }
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

    /// Client: what an accepted server msg_id tells the clock (item 34). On a clock no server has confirmed (a
    /// client on a stored key) the first one sets it, so the receive window is enforced from the session's first
    /// authenticated message on; see [`Clock::sync_to_first_server_msg`] for what that message is trusted for. Later
    /// ones move a clock that may lag forward within its bound ([`Clock::advance_within_lag`]).
    fn learn_time(&mut self, now: Instant, id: MsgId) {
        if self.clock.is_synced() {
            self.clock.advance_within_lag(now, id);
        } else {
            // No packet sent yet: impossible for a message in our fresh session; trust no lag rather than guess.
            let since = self.first_sent.unwrap_or(now);
            self.clock.sync_to_first_server_msg(since, now, id);
        }
    }

    /// Client: the receive time window (item 34): the configured past and future, the future widened by how far the
    /// DC's clock may still be ahead of ours ([`Clock::lag_bound`]).
    fn client_window(&self) -> TimeWindow {
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
    fn client_check(&self, now: Instant, id: MsgId, exempt: bool) -> Result<(), Dropped> {
        let unix = self.clock.unix_time(now);
        if self.clock.is_synced() && !exempt && self.client_window().check(id, unix).is_err() {
            return Err(Dropped::BadMsgId);
        }
        match self.inbound.check(id, unix, false) {
            Ok(()) => Ok(()),
            Err(MsgIdReject::OlderThanWindow) if exempt && self.below_window.is_none_or(|b| id > b) => Ok(()),
            Err(_) => Err(Dropped::BadMsgId),
        }
    }

    /// [`client_check`](Self::client_check), then remember `id`.
    fn client_accept(&mut self, now: Instant, id: MsgId, exempt: bool) -> Result<(), Dropped> {
        self.client_check(now, id, exempt)?;
        let unix = self.clock.unix_time(now);
        match self.inbound.accept(id, unix, false) {
            Ok(()) => Ok(()),
            Err(MsgIdReject::OlderThanWindow) => {
                self.below_window = Some(id);
                Ok(())
            }
            Err(_) => Err(Dropped::BadMsgId),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn client_message(
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
        if seq_no % 2 == 1 && self.acks.push(now, id).is_err() {
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
            ServiceMessage::NewSessionCreated(n) if self.nsc_seen != Some(n.unique_id) => {
                self.nsc_seen = Some(n.unique_id);
                // Authenticated, in this session, and through the msg_id checks (item 46).
                self.client_salts.adopt_new_session_salt(n.server_salt as u64);
                let first = MsgId::from_wire(n.first_msg_id);
                self.tracker.requeue_before(first, now);
                self.push_event(EvRec::Reset(first));
            }
            ServiceMessage::Pong(p) => {
                let pinged = MsgId::from_wire(p.msg_id);
                if let Some(r) = self.tracker.resolve_pong(pinged, p.ping_id as u64) {
                    // The keepalive's own ping: silent.
                    self.free(r.handle);
                } else if self.is_user_ping(pinged, p.ping_id) {
                    // A ping the host sent as a query ends, like any query, in one event carrying the pong (item 45:
                    // both the msg_id and the ping_id match).
                    if let Some(res) = self.tracker.resolve_rpc(pinged) {
                        let req = self
                            .slots
                            .get(res.handle.0 as usize)
                            .copied()
                            .flatten()
                            .map_or(pinged, |s| s.orig);
                        self.free(res.handle);
                        self.push_event(EvRec::Result {
                            req,
                            body: span_of(base, body, which),
                        });
                    }
                }
            }
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
            ServiceMessage::GzipPacked(g) => {
                // A gzipped update inside a container (a container inside it is not unpacked: containers do not
                // nest); never a second level of gzip.
                if which == Buf::Gz {
                    self.stats.dropped += 1;
                    return;
                }
                if let Some(span) = self.inflate(&g, gz, gz_used)
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
            // msg_copy is rejected (item 51); the rest is informational or not for a client.
            _ => {}
        }
    }

    /// Whether `id` is a query the host sent whose body is a `ping` or `ping_delay_disconnect` with `ping_id`.
    fn is_user_ping(&self, id: MsgId, ping_id: i64) -> bool {
        let Some((_, s)) = self.slot_by_id(id) else {
            return false;
        };
        if s.kind != SentKind::RpcQuery {
            return false;
        }
        match ServiceMessage::decode_body(self.body_of(&s)) {
            Ok(ServiceMessage::Ping(p)) => p.ping_id == ping_id,
            Ok(ServiceMessage::PingDelayDisconnect(p)) => p.ping_id == ping_id,
            _ => false,
        }
    }

    /// Inflates `g` into `gz` from `start` on, at most `max_gzip_output` bytes, charging the work, successful or
    /// not, to the packet's budget (item 50, B14): the output room is what the budget leaves after reserving the
    /// member's input, so no attempt can overdraw it, and an exhausted budget refuses the member as too large
    /// without inflating. Every inflate of a received packet goes through here.
    fn inflate_at(&mut self, g: &GzipPacked<'_>, gz: &mut [u8], start: usize) -> Result<usize, GzipError> {
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

    fn inflate(&mut self, g: &GzipPacked<'_>, gz: &mut [u8], gz_used: &mut usize) -> Option<Span> {
        let start = *gz_used;
        let n = self.inflate_at(g, gz, start).ok()?;
        *gz_used = start + n;
        Some(Span {
            buf: Buf::Gz,
            off: start as u32,
            len: n as u32,
        })
    }

    fn on_rpc_result(
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
            .slots
            .get(res.handle.0 as usize)
            .copied()
            .flatten()
            .map_or(wire_req, |s| s.orig);
        let _ = self.client_salts.adopt_response_salt(&res.proof, salt);
        self.free(res.handle);
        let (buf_is_gz, result): (Option<Span>, &[u8]) = match peek_ctor(r.result) {
            // Already inside an inflated payload: no gzip inside gzip (item 50).
            Some(GzipPacked::CONSTRUCTOR) if which == Buf::Gz => {
                return self.push_event(EvRec::Failed {
                    req,
                    reason: FailReason::MalformedResult,
                });
            }
            Some(GzipPacked::CONSTRUCTOR) => {
                let Ok(g) = GzipPacked::decode(r.result) else {
                    return self.push_event(EvRec::Failed {
                        req,
                        reason: FailReason::MalformedResult,
                    });
                };
                let start = *gz_used;
                match self.inflate_at(&g, gz, start) {
                    Ok(n) => {
                        *gz_used = start + n;
                        (
                            Some(Span {
                                buf: Buf::Gz,
                                off: start as u32,
                                len: n as u32,
                            }),
                            &[],
                        )
                    }
                    Err(GzipError::OutputTooLarge) => {
                        return self.push_event(EvRec::Failed {
                            req,
                            reason: FailReason::ResultTooLarge,
                        });
                    }
                    Err(_) => {
                        return self.push_event(EvRec::Failed {
                            req,
                            reason: FailReason::MalformedResult,
                        });
                    }
                }
            }
            _ => (None, r.result),
        };
        let (base, data, which): (&[u8], &[u8], Buf) = match buf_is_gz {
            Some(s) => {
                let d = gz.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[]);
                (&*gz, d, Buf::Gz)
            }
            None => (base, result, which),
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

    fn on_ack(&mut self, id: MsgId) {
        match self.tracker.ack(id) {
            Some(Acked::Released(r)) => self.free(r.handle),
            Some(Acked::AwaitingAnswer) => {
                if let Some((idx, _)) = self.slot_by_id(id)
                    && let Some(Some(s)) = self.slots.get_mut(idx)
                {
                    s.acked = true;
                }
            }
            None => {}
        }
    }

    fn on_quick_ack(&mut self, token: u32) {
        let token = token | 0x8000_0000;
        let Some(pos) = self.quick_acks.iter().position(|&(t, _)| t == token) else {
            return;
        };
        let mut outer = MsgId(0);
        for _ in 0..=pos {
            if let Some((_, id)) = self.quick_acks.pop_front() {
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
    fn on_bad_msg(&mut self, now: Instant, server_id: MsgId, bad: MsgId, code: i32, salt: Option<u64>) {
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
                    Some(s) => self.client_salts.adopt_bad_server_salt(&proof, s),
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
                    if !self.forced.contains(&m) {
                        let _ = self.forced.push(m);
                    }
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
                        self.free(r.handle);
                    }
                }
            }
        }
    }

    fn on_future_salts(&mut self, now: Instant, f: &tl::FutureSalts<'_>) {
        let Some(res) = self.tracker.resolve_future_salts(MsgId::from_wire(f.req_msg_id)) else {
            return;
        };
        self.free(res.handle);
        self.salts_requested = false;
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
        let _ = self.client_salts.store_future_salts(&res.proof, unix, &v);
    }

    /// `msgs_state_info` (item 47): must answer our `msgs_state_req` with one byte per id asked.
    fn on_state_info(&mut self, info: &MsgsStateInfo<'_>) {
        let req = MsgId::from_wire(info.req_msg_id);
        let Some((_, slot)) = self.slot_by_id(req) else { return };
        if slot.kind != SentKind::StateReq {
            return;
        }
        let mut asked: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        let count = match tl::MsgsStateReq::decode(self.body_of(&slot)) {
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
            self.free(r.handle);
        }
        for (id, state) in asked.iter().zip(info.info.iter()) {
            // 1-3: the server does not have it.
            // It goes again under its own msg_id, in a new container (item 38): if a copy is still on its way
            // (a resend after new_session_created...), the DC's replay window drops the second one, which a
            // renamed copy would not.
            if matches!(state & 7, 1..=3) && self.tracker.reference(*id).is_some() && !self.forced.contains(id) {
                let _ = self.forced.push(*id);
                if let Some((idx, _)) = self.slot_by_id(*id)
                    && let Some(Some(s)) = self.slots.get_mut(idx)
                {
                    s.acked = false;
                }
            }
        }
    }

    /// `msg_detailed_info` / `msg_new_detailed_info`: ack the answer if we have it, otherwise ask for it.
    fn on_answer_exists(&mut self, now: Instant, answer: MsgId) {
        if check_parity(answer, self.side.peer()).is_err() {
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
    fn on_resend_req(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        let mut unknown = false;
        for id in ids.iter().take(self.cfg.limits.max_ack_ids).map(MsgId::from_wire) {
            match self.slot_by_id(id) {
                // Still waiting for its first transmission: it goes anyway.
                Some((_, s)) if s.queued => {}
                Some((_, s)) if check_parity(id, self.side).is_ok() => {
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
    fn on_resend_ans_req(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        for asked in ids.iter().take(self.cfg.limits.max_ack_ids) {
            let answer = self.slots.iter().flatten().find(|s| {
                let b = self.body_of(s);
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

    /// Queues a held message for a byte-identical resend under its own msg_id; false once the budget is spent.
    fn force(&mut self, now: Instant, id: MsgId, len: u32) -> bool {
        let cost = u64::from(len) + INNER_HDR as u64;
        if self.budget.try_spend(now, cost).is_err() {
            return false;
        }
        if !self.forced.contains(&id) {
            let _ = self.forced.push(id);
        }
        true
    }

    // ---- DC role ---------------------------------------------------------------------------------------------

    fn reset_server_session(&mut self, session_id: u64) {
        self.inbound.reset();
        self.seq_check = SeqNoChecker::new();
        let handles: heapless::Vec<usize, MSGS> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i)
            .collect();
        for i in handles {
            if let Some(Some(s)) = self.slots.get(i) {
                let id = s.id;
                let _ = self.tracker.remove(id);
            }
            self.free(BodyHandle(i as u32));
        }
        self.tracker = SentTracker::new(TX, self.tracker.policy());
        self.pending_reqs.clear();
        self.owed.clear();
        self.held = None;
        self.answers_blocked = false;
        self.forced.clear();
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
    fn switch_session(&mut self, now: Instant, session_id: u64) -> Result<(), Dropped> {
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

    fn server_packet(
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
    fn resume(&mut self, now: Instant, rx: &[u8], gz: &mut [u8], gz_used: &mut usize) {
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
    fn room_for(&self, body: &[u8]) -> bool {
        let pending_full = self.pending_reqs.is_full() && !self.answers_blocked;
        !self.owed.is_full() && !((self.events.is_full() || pending_full) && may_request(body))
    }

    /// DC: one inner message of an accepted container: its own msg_id and seq_no checks, then its processing.
    #[allow(clippy::too_many_arguments)]
    fn server_member(
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
    fn deliver_request(&mut self, now: Instant, id: MsgId, body: Span) {
        if self.pending_reqs.push(id).is_err() {
            self.push_owed(now, Owed::FloodWait { req: id });
            return;
        }
        self.push_event(EvRec::Request { msg_id: id, body });
    }

    #[allow(clippy::too_many_arguments)]
    fn server_message(
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

    /// Answers `msgs_state_req` `req` (or a `msg_resend_req` naming unknown ids, item 49; or a
    /// `msg_resend_ans_req`) asking about `ids`, whose body is `body`, with `msgs_state_info`: one byte per id
    /// asked, about the messages we received. Written into the arena at once when it has room (sent once, never
    /// kept), so the receive buffer is free for the next packet; otherwise owed, computed when written, and the
    /// request stays in the buffer until then (no input is taken meanwhile).
    fn answer_state(&mut self, now: Instant, req: MsgId, ids: tl::LongVec<'_>, body: Span) {
        let n = ids.len().min(self.cfg.limits.max_ack_ids);
        let len = 12 + tl::bytes_len(n);
        if let Ok(id) = self.queue(now, SentKind::Service, false, true, len, |_| Ok(()))
            && let Some((_, slot)) = self.slot_by_id(id)
        {
            let (inbound, side) = (&self.inbound, self.side);
            let range = slot.off as usize..(slot.off + slot.len) as usize;
            if let Some(dst) = self.arena.get_mut(range) {
                write_state_info(&mut Writer::new(dst), req, ids, n, |id| state_of(inbound, side, id));
            }
            return;
        }
        self.push_owed(now, Owed::StateInfo { req, body });
    }

    /// The ids a `msgs_state_req`, `msg_resend_req` or `msg_resend_ans_req` body asks about.
    fn asked_ids(body: &[u8]) -> Option<tl::LongVec<'_>> {
        match ServiceMessage::decode_body(body).ok()? {
            ServiceMessage::MsgsStateReq(q) => Some(q.msg_ids),
            ServiceMessage::MsgResendReq(q) => Some(q.msg_ids),
            ServiceMessage::MsgResendAnsReq(q) => Some(q.msg_ids),
            _ => None,
        }
    }

    /// The body of an owed answer: its length, and with `w` written there (the same bytes `owed_body` measured:
    /// nothing it depends on changes in between).
    fn owed_body(&self, now: Instant, o: &Owed, rx: &[u8], gz: &[u8], w: Option<&mut Writer<'_>>) -> usize {
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
                    new_server_salt: self.server_salts.as_ref().map_or(0, ServerSalts::current) as i64,
                },
                w,
            ),
            Owed::FutureSalts { req, num } => {
                let rot = self.rotation_secs();
                let unix = self.clock.unix_time(now).0;
                let p0 = unix / rot;
                let mut salts: heapless::Vec<TlFutureSalt, MAX_FUTURE_SALTS> = heapless::Vec::new();
                for p in p0..p0 + u64::from(num) {
                    let _ = salts.push(TlFutureSalt {
                        valid_since: i32::try_from(p * rot).unwrap_or(i32::MAX),
                        valid_until: i32::try_from((p + 1) * rot).unwrap_or(i32::MAX),
                        salt: self.derived_salt(p) as i64,
                    });
                }
                emit(
                    &tl::FutureSalts {
                        req_msg_id: req.to_wire(),
                        now: i32::try_from(unix).unwrap_or(i32::MAX),
                        salts: tl::TlVec::from_slice(&salts),
                    },
                    w,
                )
            }
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
                    write_state_info(w, req, ids, n, |id| state_of(&self.inbound, self.side, id));
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
            Owed::FloodWait { req } => {
                let err = RpcError {
                    error_code: 420,
                    error_message: FLOOD_WAIT,
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

    // ---- timers ------------------------------------------------------------------------------------------------

    fn on_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if self.side == Side::Server {
            self.rotate_server_salt(now);
            if self.disconnect_at.is_some_and(|t| t <= now) {
                self.disconnect_at = None;
                self.push_event(EvRec::Disconnect);
            }
            return;
        }
        let mut expired: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for s in self.slots.iter().flatten() {
            if s.kind == SentKind::RpcQuery && s.deadline.is_some_and(|d| d <= now) {
                let _ = expired.push(s.id);
            }
        }
        for id in expired {
            self.fail(id, FailReason::Timeout);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut min = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if let Some(lp) = self.long_poll {
            // A held long poll defers every send to its answer; a resend falling due counts as something queued.
            let pending =
                !self.forced.is_empty() || !self.owed.is_empty() || self.slots.iter().flatten().any(|s| s.queued);
            min(Some(lp.answer_at(pending)));
            min(self.tracker.poll_timeout().map(|r| r.max(lp.answer_at(true))));
        } else {
            min(self.tracker.poll_timeout());
            min(self.acks.poll_timeout());
            // Answers owed go out now: some are made by `poll_event`, after the host's last `poll_packet`.
            if !self.owed.is_empty() {
                min(Some(self.last_now));
            }
        }
        min(self.next_ping_at);
        min(self.disconnect_at);
        let check = self.cfg.state_check_after;
        for s in self.slots.iter().flatten() {
            min(s.deadline);
            if let Some(after) = check
                && s.kind == SentKind::RpcQuery
                && s.acked
            {
                min(s.checked_at.or(s.sent_at).map(|t| t.saturating_add(after)));
            }
        }
        if let Some(s) = self.server_salts.as_ref() {
            let secs = s.next_rotation().0 as i128 - self.clock.unix_offset() as i128 / 1_000_000;
            min(Some(Instant::from_secs(u64::try_from(secs.max(0)).unwrap_or(u64::MAX))));
        }
        t
    }

    // ---- transmitting ------------------------------------------------------------------------------------------

    /// Client: asks with `msgs_state_req` about acknowledged queries still unanswered after `state_check_after`.
    fn check_states(&mut self, now: Instant) {
        let Some(after) = self.cfg.state_check_after else {
            return;
        };
        if self.slots.iter().flatten().any(|s| s.kind == SentKind::StateReq) {
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
        for s in self.slots.iter().flatten().filter(|s| due(s)) {
            let _ = ids.push(s.id.to_wire());
        }
        if ids.is_empty() {
            return;
        }
        let req = tl::MsgsStateReq {
            msg_ids: tl::TlVec::from_slice(&ids),
        };
        if self.queue_tl(now, SentKind::StateReq, true, false, &req) {
            for s in self.slots.iter_mut().flatten() {
                if due(s) {
                    s.checked_at = Some(now);
                }
            }
        }
    }

    fn housekeeping<R: CryptoRng + ?Sized>(&mut self, now: Instant, rng: &mut R) {
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

    fn poll_packet<const RX: usize, R: CryptoRng + ?Sized>(
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
                self.free(r.handle);
            }
        }

        let resend_due = self.tracker.next_due(now).is_some() || !self.forced.is_empty();
        let fresh = self.slots.iter().flatten().filter(|s| s.queued).count() + self.owed.len();
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
        let mut forced = core::mem::take(&mut self.forced);
        while let Some(id) = forced.pop() {
            if let Some((idx, s)) = self.slot_by_id(id)
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
                let Some(Some(s)) = self.slots.get(idx) else { continue };
                let body = self.arena.get(s.off as usize..(s.off + s.len) as usize).unwrap_or(&[]);
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
            let Some(Some(s)) = self.slots.get(idx) else {
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
            if let Some(Some(slot)) = self.slots.get_mut(idx) {
                slot.sends = slot.sends.saturating_add(1);
            }
            if resend {
                tracked_in_container = true;
                continue;
            }
            let Some(Some(s)) = self.slots.get(idx).copied() else {
                continue;
            };
            if !s.keep {
                self.free(BodyHandle(idx as u32));
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
            if let Some(Some(slot)) = self.slots.get_mut(idx) {
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
            let untracked_live = self.slots.iter().flatten().filter(|s| s.keep && !s.in_tracker).count();
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
