//! The encrypted session core, both roles, for one auth key: it turns received MTProto 2.0 packets into events and
//! queued messages into packets, and runs every session-level check and service-message reaction.
//!
//! It composes the building blocks of this module ([`MsgIdGen`], [`InboundMsgIds`],
//! [`SeqNoGen`]/[`SeqNoChecker`], [`ClientSalts`]/[`ServerSalts`],
//! [`SentTracker`], [`AckQueue`], [`ResendBudget`]) and owns three buffers ([`crate::buffer`]: inline at their
//! capacity without `alloc`, grown on demand and given back when idle with it): up to `RX` bytes for the received
//! packet (decrypted in place; events borrow their bodies from it), up to `RX` bytes for inflated `gzip_packed`
//! bodies (and a container's msg_id check), and an arena of up to `TX` bytes holding the plaintext body of every
//! message that may still have to be resent.
//! `MSGS` bounds the messages in flight (queued, unacknowledged, or awaiting an answer), the pending events, the
//! answers owed to the peer (`Owed`: sent once, never kept in the arena) and a DC's requests awaiting the host's
//! answer. Either role processes every message of a packet it accepted, waiting (input paused) for room where
//! needed (`Held`), so a container is taken whole however small these tables are.
//!
//! Retransmission never re-encrypts a different plaintext under an old msg_id (item 38, attack B2): a message that
//! timed out travels again, byte-identical, inside a **new** container with a fresh msg_id, and a message the peer
//! refused (`bad_msg_notification`, `bad_server_salt`) is sent again under a **new** msg_id and seq_no.
//!
//! An engine can be restarted where it lies (`Session::reset_*`), as its constructor would build it: every table is
//! cleared in place and the old key and queued bodies are wiped, so a connection never builds an engine by value
//! on a device's small stack.
//!
//! The engine is deterministic: randomness (padding, the session id, `new_session_created.unique_id`) is drawn only
//! in the constructors and [`Session::poll_packet`].
//!
//! The code is split by concern, as quinn-proto splits a connection. A received packet goes: [`Session::handle_packet`]
//! (copied into `rx`, decrypted there) → `recv.rs` (dispatch, container and gzip checks) → `client.rs` or `server.rs`
//! (that role's checks and messages; service messages in `service.rs`) → events borrowing `rx`/`gz`
//! ([`Session::poll_event`]) or answers owed to the peer. Outbound, bodies wait in `outbox.rs` (the arena and its
//! slots) and `packer.rs` builds each packet ([`Session::poll_packet`]). Each role's own state is in `RoleState` (a
//! client's `ClientState`, a DC's `DcState`), so the DC path never reads client fields; `Core` keeps what both share.
//!
//! [`SeqNoChecker`]: super::SeqNoChecker
//! [`ClientSalts`]: super::ClientSalts
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client;
mod outbox;
mod packer;
mod recv;
#[cfg(test)]
mod reset_tests;
mod server;
mod service;

use core::time::Duration;
use rand_core::CryptoRng;
use zeroize::Zeroize;

use crate::buffer::Buffer;
use crate::crypto::auth_key::AuthKey;
use crate::crypto::packet::{self, Direction, PaddingPolicy};
use crate::session::acks::AckQueue;
use crate::session::budget::ResendBudget;
use crate::session::event::{Dropped, Event, FailReason, RpcErrorKind, SendError};
use crate::session::limits::{DEFAULT_ACK_QUEUE, DEFAULT_REPLAY_WINDOW, INFLATE_WORK_PER_RX, Limits};
use crate::session::msg_id::{Clock, MsgId, MsgIdGen, Role};
use crate::session::pending::{BodyHandle, ResendPolicy, SentKind, SentTracker};
use crate::session::replay::{InboundMsgIds, MsgIdReject, TimeWindow};
use crate::session::salts::ServerSalts;
use crate::session::seqno::SeqNoGen;
use crate::time::Instant;
use crate::tl::{self, RpcError, TlWrite};

use client::ClientState;
use outbox::Outbox;
use recv::{Buf, EvRec, Header, Held, Span};
pub use server::LongPoll;
use server::{Approval, DcState, rotation_secs};
use service::Owed;

/// Size of a `message` header inside a container (msg_id, seqno, bytes).
const INNER_HDR: usize = 16;

/// Size of a container's own header (constructor, count).
const CONTAINER_HDR: usize = 8;

/// DC: session ids of this key a DC engine remembers as finished, to drop their late packets.
pub const RETIRED_SESSIONS: usize = 8;

/// Largest `disconnect_delay` (seconds) a DC honours from `ping_delay_disconnect` (item 52).
pub const MAX_DISCONNECT_DELAY: i32 = 3600;

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
pub struct SessionConfig {
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
    /// Wrap bodies given to [`Session::send`] and results given to [`Session::answer`] in `gzip_packed` when that
    /// makes them smaller (`None`, the default: never). Service messages and `auth.bindTempAuthKey` are never
    /// compressed, and a resend carries the bytes first sent. Needs the `alloc` feature (miniz_oxide's compressor
    /// state is boxed) and allocates while compressing.
    #[cfg(feature = "alloc")]
    pub gzip: Option<GzipPolicy>,
}

/// When [`Session::send`] compresses (the `alloc` feature).
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

impl SessionConfig {
    /// The defaults: spec limits, a 60 s keepalive, a 300 s RPC timeout, quick acks off, future salts on.
    pub const DEFAULT: SessionConfig = SessionConfig {
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

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig::DEFAULT
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

/// A packet [`Session::poll_packet`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Packet {
    /// Its length at the start of `out`.
    pub len: usize,
    /// Client: ask the transport for a quick ack of it.
    pub quick_ack: bool,
}

/// A DC packet the engine decrypted in a connection's buffer but could not process yet: its session waits for the
/// host ([`HostQuery::Session`](super::HostQuery::Session)). Only the engine makes one, after every check of the
/// decryption passed; the plaintext stays where it was decrypted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct DecryptedPacket {
    hdr: Header,
    len: usize,
    token: u32,
}

impl core::fmt::Debug for DecryptedPacket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The salt and session id are the session's secrets.
        f.debug_struct("DecryptedPacket")
            .field("msg_id", &self.hdr.msg_id)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The encrypted-session engine of one role for one auth key.
pub struct Session<const RX: usize, const TX: usize, const MSGS: usize> {
    core: Core<TX, MSGS>,
    rx: Buffer<RX>,
    gz: Buffer<RX>,
    gz_used: usize,
    /// In a connection: what borrowed the connection's receive buffer (events, the held packet, owed answers) was
    /// copied into `rx` because the connection replaced its transport before the host drained it
    /// ([`detach`](Self::detach)); until the next frame, the engine reads `rx`.
    detached: bool,
}

/// What both roles share: the key and session, msg_id and seq_no generation, the inbound replay window, what was
/// sent ([`SentTracker`], [`Outbox`]), what is owed or pending for the host, and the counters. What only one role
/// needs is in `role`.
struct Core<const TX: usize, const MSGS: usize> {
    role: RoleState<MSGS>,
    cfg: SessionConfig,
    key: AuthKey,
    session_id: u64,
    clock: Clock,
    ids: MsgIdGen,
    seq: SeqNoGen,
    inbound: InboundMsgIds<DEFAULT_REPLAY_WINDOW>,
    tracker: SentTracker<MSGS>,
    acks: AckQueue<DEFAULT_ACK_QUEUE>,
    budget: ResendBudget,
    outbox: Outbox<TX, MSGS>,
    events: heapless::Deque<EvRec, MSGS>,
    /// Answers owed to the peer, sent once each by the next packets.
    owed: heapless::Deque<Owed, MSGS>,
    /// The latest instant a host call passed in (for work resumed by [`Session::poll_event`], which takes none).
    last_now: Instant,
    /// `gzip_packed` work the packet being processed may still cause (see [`INFLATE_WORK_PER_RX`]).
    inflate_left: usize,
    /// DC, in a connection: the packet decrypted in the connection's buffer whose session waits for the host.
    decrypted: Option<DecryptedPacket>,
    /// The received packet still being worked through (both roles).
    held: Option<Held>,
    stats: Stats,
    closed: bool,
}

/// The state only one role has: a client's salts, pings and quick acks ([`ClientState`]), a DC's salt schedule,
/// session admission, held packet and pending requests ([`DcState`]). An engine's role never changes.
///
/// The DC variant is the larger (its seq_no window is 12 KiB): with no allocator it cannot be boxed, and the enum
/// still costs less than both roles' fields side by side did.
#[allow(clippy::large_enum_variant)]
enum RoleState<const MSGS: usize> {
    Client(ClientState),
    Dc(DcState<MSGS>),
}

/// How an engine's role starts: what [`Core::reinit`] sets up besides what both roles share.
enum RoleInit<'a> {
    /// A client with its first salt and keepalive.
    Client { salt: u64, next_ping_at: Option<Instant> },
    /// A DC with its salt schedule (the caller wipes the secret).
    Dc {
        salt_secret: &'a [u8; 32],
        first_salt: Option<(u64, u64)>,
    },
}

impl<const MSGS: usize> RoleState<MSGS> {
    fn role(&self) -> Role {
        match self {
            RoleState::Client(_) => Role::Client,
            RoleState::Dc(_) => Role::Server,
        }
    }

    fn client(&self) -> Option<&ClientState> {
        match self {
            RoleState::Client(c) => Some(c),
            RoleState::Dc(_) => None,
        }
    }

    fn client_mut(&mut self) -> Option<&mut ClientState> {
        match self {
            RoleState::Client(c) => Some(c),
            RoleState::Dc(_) => None,
        }
    }

    fn dc(&self) -> Option<&DcState<MSGS>> {
        match self {
            RoleState::Dc(d) => Some(d),
            RoleState::Client(_) => None,
        }
    }

    fn dc_mut(&mut self) -> Option<&mut DcState<MSGS>> {
        match self {
            RoleState::Dc(d) => Some(d),
            RoleState::Client(_) => None,
        }
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Drop for Session<RX, TX, MSGS> {
    fn drop(&mut self) {
        self.rx.wipe();
        self.gz.wipe();
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> core::fmt::Debug for Session<RX, TX, MSGS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("role", &self.core.role())
            .field("key_id", &self.core.key.id())
            .field("stats", &self.core.stats)
            .finish_non_exhaustive()
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize> Session<RX, TX, MSGS> {
    /// A client session under `key`, starting with `salt` (0 if unknown: the server answers `bad_server_salt`)
    /// and `clock` (seeded from a Unix time hint, corrected by the server). The session id is drawn from `rng`.
    pub fn client<R: CryptoRng + ?Sized>(
        cfg: SessionConfig,
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
        cfg: SessionConfig,
        key: AuthKey,
        salt: u64,
        clock: Clock,
        now: Instant,
        session_id: u64,
    ) -> Self {
        let role = RoleState::Client(ClientState::new(salt, cfg.ping_interval.map(|d| now.saturating_add(d))));
        let mut core = Core::new(role, cfg, key, clock, now);
        core.session_id = session_id;
        Self::wrap(core)
    }

    /// A DC session under `key` (the host looked it up by its id), waiting for the client's first message. The salt
    /// schedule's secret is drawn from `rng`; `clock` is the DC's Unix clock.
    pub fn server<R: CryptoRng + ?Sized>(
        cfg: SessionConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
    ) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let core = Core::new(RoleState::Dc(DcState::new(secret, None)), cfg, key, clock, now);
        secret.zeroize();
        Self::wrap(core)
    }

    /// [`server`](Self::server) for a key the DC has just created: the handshake's salt
    /// (`new_nonce[0..8] XOR server_nonce[0..8]`) is the salt of the current rotation period, so the client's first
    /// messages are accepted.
    pub fn server_with_salt<R: CryptoRng + ?Sized>(
        cfg: SessionConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
        salt: u64,
    ) -> Self {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let p = clock.unix_time(now).0 / rotation_secs(&cfg);
        let core = Core::new(
            RoleState::Dc(DcState::new(secret, Some((p, salt.max(1))))),
            cfg,
            key,
            clock,
            now,
        );
        secret.zeroize();
        Self::wrap(core)
    }

    /// [`server`](Self::server) on a stored salt schedule (what a DC keeps per key, so every connection under the
    /// key issues the same salts and a client keeps its salt across connections).
    pub fn server_with_schedule(
        cfg: SessionConfig,
        key: AuthKey,
        schedule: &super::dc_host::SaltSchedule,
        clock: Clock,
        now: Instant,
    ) -> Self {
        let role = RoleState::Dc(DcState::new(schedule.secret, schedule.first));
        let core = Core::new(role, cfg, key, clock, now);
        Self::wrap(core)
    }

    /// DC: this engine's salt schedule, to store with the key.
    pub fn salt_schedule(&self) -> super::dc_host::SaltSchedule {
        match self.core.role.dc() {
            Some(dc) => super::dc_host::SaltSchedule {
                secret: dc.salt_secret,
                first: dc.first_salt,
            },
            None => super::dc_host::SaltSchedule {
                secret: [0; 32],
                first: None,
            },
        }
    }

    /// DC: whether a client session is being served (false until the first authenticated message).
    pub fn has_session(&self) -> bool {
        self.core.role.dc().is_none_or(|dc| dc.session_known)
    }

    /// DC: lets the next packet handed in start `session_id` here, if it names that session, as a **new** server
    /// session: empty replay window, `new_session_created`, and a floor under which msg_ids are refused as too old
    /// ([`Limits::new_session_max_age`]). The approval is spent by the next
    /// packet naming a session this engine does not serve, whichever it names.
    ///
    /// A DC engine never starts (or switches to) a client session on its own: a packet naming a session it does
    /// not serve is refused with [`Dropped::UnknownSession`] and nothing changes, because that session may live
    /// on in another connection's engine with the replay state that stops a copy of its messages from being
    /// executed twice (item 33, attack B7). The host looks the session up (the [`Connection`](super::Connection) facade
    /// asks it with [`HostQuery::Session`](super::HostQuery::Session)); only when no engine holds it does it call
    /// this and hand the packet in again.
    pub fn approve_session(&mut self, session_id: u64) {
        if let Some(dc) = self.core.role.dc_mut() {
            dc.approval = Approval::Session(session_id);
        }
    }

    /// DC: lets the first session named start without asking, for an engine on a key this connection has just
    /// created (no other connection can hold a session under it). See [`approve_session`](Self::approve_session).
    pub fn approve_first_session(&mut self) {
        if let Some(dc) = self.core.role.dc_mut()
            && !dc.session_known
        {
            dc.approval = Approval::First;
        }
    }

    /// DC: the (session_id, msg_id) of the last packet refused with [`Dropped::UnknownSession`], taken.
    pub fn take_unknown_session(&mut self) -> Option<(u64, MsgId)> {
        self.core.role.dc_mut().and_then(|dc| dc.unknown_session.take())
    }

    /// Decrypts `packet` (checking it fully) into the receive buffer only to read its session id and msg_id;
    /// nothing else changes. `None` if it does not decrypt or events still borrow the buffer.
    pub fn peek_ids(&mut self, packet: &[u8]) -> Option<(u64, MsgId)> {
        if self.must_drain() {
            return None;
        }
        let dir = Direction::sent_by(self.core.role().peer());
        if !self.rx.reserve(packet.len(), 0) {
            return None;
        }
        let buf = self.rx.as_mut_slice().get_mut(..packet.len())?;
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
        Session {
            core,
            rx: Buffer::new(),
            gz: Buffer::new(),
            gz_used: 0,
            detached: false,
        }
    }

    /// An engine of `role` holding no key (all zero) and no session: the storage a
    /// [`Connection`](super::Connection) keeps for its session until a key exists, then restarts in place with a
    /// `reset_*` method. It must not be driven before that.
    ///
    /// Always inlined and built as one literal, so a connection constructed in place (a `static` on a device) gets
    /// its engine written there, not built on the stack and moved (an engine is tens of KB).
    #[inline(always)]
    pub(crate) fn inert(role: Role) -> Self {
        let key = AuthKey::from_bytes([0; crate::crypto::auth_key::AUTH_KEY_LEN]);
        let state = match role {
            Role::Client => RoleState::Client(ClientState::new(0, None)),
            Role::Server => RoleState::Dc(DcState::new([0; 32], None)),
        };
        Session {
            core: Core::blank(state, SessionConfig::DEFAULT, key, Clock::new(0), Instant::ZERO),
            rx: Buffer::new(),
            gz: Buffer::new(),
            gz_used: 0,
            detached: false,
        }
    }

    /// Makes this engine [`inert`](Self::inert) again, in place: the key, the session, the buffers and every queued
    /// body are wiped (a connection leaving its encrypted session keeps nothing of it).
    pub(crate) fn make_inert(&mut self, role: Role) {
        let key = AuthKey::from_bytes([0; crate::crypto::auth_key::AUTH_KEY_LEN]);
        match role {
            Role::Client => {
                self.reset_client_with_session_id(SessionConfig::DEFAULT, key, 0, Clock::new(0), Instant::ZERO, 0)
            }
            Role::Server => {
                let schedule = super::dc_host::SaltSchedule {
                    secret: [0; 32],
                    first: None,
                };
                self.reset_server_with_schedule(SessionConfig::DEFAULT, key, &schedule, Clock::new(0), Instant::ZERO);
            }
        }
    }

    /// Restarts this engine in place as `Session::client_with_session_id(cfg, key, salt, clock, now, session_id)`
    /// would build it: same state, same bytes out for the same inputs, but nothing engine-sized on the stack (an
    /// engine of a `Connection<4096, 4096, 8>` is about 50 KB, twice a Cortex-M4's stack budget). Nothing of the
    /// previous key or session survives: the key and the buffers are zeroized, every table emptied.
    pub fn reset_client_with_session_id(
        &mut self,
        cfg: SessionConfig,
        key: AuthKey,
        salt: u64,
        clock: Clock,
        now: Instant,
        session_id: u64,
    ) {
        let next_ping_at = cfg.ping_interval.map(|d| now.saturating_add(d));
        self.reinit(RoleInit::Client { salt, next_ping_at }, cfg, key, clock, now);
        self.core.session_id = session_id;
    }

    /// [`server`](Self::server) in place (see [`reset_client_with_session_id`](Self::reset_client_with_session_id)).
    pub fn reset_server<R: CryptoRng + ?Sized>(
        &mut self,
        cfg: SessionConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
    ) {
        let mut salt_secret = [0u8; 32];
        rng.fill_bytes(&mut salt_secret);
        let init = RoleInit::Dc {
            salt_secret: &salt_secret,
            first_salt: None,
        };
        self.reinit(init, cfg, key, clock, now);
        salt_secret.zeroize();
    }

    /// [`server_with_salt`](Self::server_with_salt) in place (see
    /// [`reset_client_with_session_id`](Self::reset_client_with_session_id)).
    pub fn reset_server_with_salt<R: CryptoRng + ?Sized>(
        &mut self,
        cfg: SessionConfig,
        key: AuthKey,
        clock: Clock,
        now: Instant,
        rng: &mut R,
        salt: u64,
    ) {
        let mut salt_secret = [0u8; 32];
        rng.fill_bytes(&mut salt_secret);
        let p = clock.unix_time(now).0 / rotation_secs(&cfg);
        let init = RoleInit::Dc {
            salt_secret: &salt_secret,
            first_salt: Some((p, salt.max(1))),
        };
        self.reinit(init, cfg, key, clock, now);
        salt_secret.zeroize();
    }

    /// [`server_with_schedule`](Self::server_with_schedule) in place (see
    /// [`reset_client_with_session_id`](Self::reset_client_with_session_id)).
    pub fn reset_server_with_schedule(
        &mut self,
        cfg: SessionConfig,
        key: AuthKey,
        schedule: &super::dc_host::SaltSchedule,
        clock: Clock,
        now: Instant,
    ) {
        let init = RoleInit::Dc {
            salt_secret: &schedule.secret,
            first_salt: schedule.first,
        };
        self.reinit(init, cfg, key, clock, now);
    }

    /// Restarts the whole engine in place; see [`Core::reinit`].
    fn reinit(&mut self, init: RoleInit<'_>, cfg: SessionConfig, key: AuthKey, clock: Clock, now: Instant) {
        let Session {
            core,
            rx,
            gz,
            gz_used,
            detached,
        } = self;
        rx.wipe();
        rx.release();
        gz.wipe();
        gz.release();
        *gz_used = 0;
        *detached = false;
        core.reinit(init, cfg, key, clock, now);
    }

    /// This engine's role.
    pub fn role(&self) -> Role {
        self.core.role()
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
        self.core.current_salt()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Messages in flight (queued, unacknowledged or awaiting an answer).
    pub fn in_flight(&self) -> usize {
        self.core.outbox.slots.iter().flatten().count()
    }

    /// Arena bytes in use.
    pub fn arena_used(&self) -> usize {
        self.core.outbox.used
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

    /// Heap bytes the engine holds now: with `alloc`, its packet and inflate buffers and resend arena, which grow
    /// with the traffic and are given back when idle (0 without `alloc`: everything is inline, `size_of`).
    pub fn heap_bytes(&self) -> usize {
        self.rx.heap_bytes() + self.gz.heap_bytes() + self.core.outbox.arena.heap_bytes()
    }

    /// Answers owed to the peer and not yet written into a packet (`pong`s, notifications, `msgs_state_info`...).
    pub fn owed_answers(&self) -> usize {
        self.core.owed.len()
    }

    /// Works on through the held packet (see `Held`) as far as there is room. `ext`: the connection's buffer the held packet lies in (`None`: the engine's own, for
    /// [`handle_packet`](Self::handle_packet)).
    fn resume(&mut self, now: Instant, ext: Option<&[u8]>) {
        let rx = match ext {
            Some(b) if !self.detached => b,
            _ => self.rx.as_slice(),
        };
        self.core.resume(now, rx, self.gz.as_mut_slice(), &mut self.gz_used);
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
        self.core.role.dc().and_then(|dc| dc.long_poll)
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
        let Some((idx, slot)) = self.core.outbox.slot_by_id(id) else {
            return Err(SendError::QueueFull);
        };
        let written = match self.core.outbox.body_mut(&slot) {
            Some(dst) => super::bind::write_bind_request(perm_key, &params, id, rng, dst).is_ok(),
            None => false,
        };
        if !written {
            self.core.outbox.free(BodyHandle(idx as u32));
            return Err(SendError::TooLarge);
        }
        if let Some(Some(s)) = self.core.outbox.slots.get_mut(idx) {
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
        self.answer_in(now, req, result, None)
    }

    /// [`answer`](Self::answer) for an engine in a connection, whose packets lie in the connection's buffer `ext`.
    pub(crate) fn answer_in(
        &mut self,
        now: Instant,
        req: MsgId,
        result: &[u8],
        ext: Option<&[u8]>,
    ) -> Result<MsgId, SendError> {
        if result.len() + 12 > Self::max_body() {
            return Err(SendError::TooLarge);
        }
        #[cfg(feature = "alloc")]
        if let Some(packed) = self.core.gzipped(result) {
            let r = self.core.answer(now, req, &packed);
            self.resume(now, ext);
            return r;
        }
        let r = self.core.answer(now, req, result);
        self.resume(now, ext);
        r
    }

    /// DC: answers the request `req` with `rpc_error { code, message }`; errors as for [`answer`](Self::answer).
    pub fn answer_error(&mut self, now: Instant, req: MsgId, code: i32, message: &[u8]) -> Result<MsgId, SendError> {
        self.answer_error_in(now, req, code, message, None)
    }

    /// [`answer_error`](Self::answer_error) for an engine in a connection (see [`answer_in`](Self::answer_in)).
    pub(crate) fn answer_error_in(
        &mut self,
        now: Instant,
        req: MsgId,
        code: i32,
        message: &[u8],
        ext: Option<&[u8]>,
    ) -> Result<MsgId, SendError> {
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
        self.resume(now, ext);
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
    /// [`crate::transport::strip_padding`] first (the [`Connection`](super::Connection) facade does).
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) -> Result<u32, Dropped> {
        self.core.saw(now);
        self.resume(now, None);
        if self.must_drain() {
            return Err(Dropped::Backpressure);
        }
        let n = packet.len();
        let Some(dst) = self
            .rx
            .reserve(n, 0)
            .then(|| self.rx.as_mut_slice().get_mut(..n))
            .flatten()
        else {
            self.core.stats.dropped += 1;
            return Err(Dropped::TooLarge);
        };
        dst.copy_from_slice(packet);
        self.handle_rx(now, n)
    }

    /// With `alloc`: sizes the second buffer before a packet is processed (it starts empty, and most packets never
    /// need it). A packet with a word-aligned `gzip_packed` constructor anywhere in its body gets the whole `RX`
    /// (the inflated size is unknown until inflated; a false positive costs memory until the next release, never
    /// correctness); a container gets the room its msg_id check needs (8 bytes a message, at most
    /// `max_container_messages`), which stays within [`crate::buffer`]'s kept size.
    fn reserve_inflate(gz: &mut Buffer<RX>, max_container_messages: usize, body: &[u8]) {
        if !cfg!(feature = "alloc") || gz.footprint() >= RX {
            return;
        }
        let gzip = tl::GzipPacked::CONSTRUCTOR.to_le_bytes();
        let need = if body.chunks_exact(4).any(|w| w == gzip) {
            RX
        } else if body.first_chunk::<4>() == Some(&tl::MsgContainer::CONSTRUCTOR.to_le_bytes()) {
            let count = body
                .get(4..8)
                .and_then(|b| b.first_chunk::<4>())
                .map_or(0, |b| u32::from_le_bytes(*b) as usize);
            count.min(max_container_messages).saturating_mul(8)
        } else {
            0
        };
        // Refused by the allocator: the check or the inflation then fails as for a body too large, a typed drop.
        let _ = need > 0 && gz.reserve(need.min(RX), 0);
    }

    fn handle_rx(&mut self, now: Instant, n: usize) -> Result<u32, Dropped> {
        let Some(buf) = self.rx.as_mut_slice().get_mut(..n) else {
            return Err(Dropped::TooLarge);
        };
        let r = Self::open(&mut self.core, &mut self.gz, &mut self.gz_used, now, buf);
        // The caller keeps its own copy of the packet: nothing stays decrypted for it.
        self.core.decrypted = None;
        r
    }

    /// Decrypts `buf` (the whole packet) in place and processes it, its events and held messages borrowing `buf`.
    /// A DC packet naming a session the engine may not start is returned decrypted, as a [`DecryptedPacket`], for the
    /// connection to process once its host answered (`Err(UnknownSession)` and the packet).
    fn open(
        core: &mut Core<TX, MSGS>,
        gz: &mut Buffer<RX>,
        gz_used: &mut usize,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<u32, Dropped> {
        let dir = Direction::sent_by(core.role().peer());
        let (hdr, len, token) = match packet::decrypt(&core.key, dir, buf) {
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
                core.stats.rejected += 1;
                return Err(Dropped::Rejected);
            }
        };
        let p = DecryptedPacket { hdr, len, token };
        let r = Self::process(core, gz, gz_used, now, &p, buf);
        if r == Err(Dropped::UnknownSession) {
            // Kept, decrypted where it lies, for the host's answer (see `take_decrypted`).
            core.decrypted = Some(p);
        }
        r
    }

    /// Processes a decrypted packet whose body lies in `rx` (after `packet::body_offset()`).
    fn process(
        core: &mut Core<TX, MSGS>,
        gz: &mut Buffer<RX>,
        gz_used: &mut usize,
        now: Instant,
        p: &DecryptedPacket,
        rx: &[u8],
    ) -> Result<u32, Dropped> {
        *gz_used = 0;
        core.inflate_left = INFLATE_WORK_PER_RX.saturating_mul(RX);
        let off = packet::body_offset();
        let body = rx.get(off..off + p.len).ok_or(Dropped::TooLarge)?;
        Self::reserve_inflate(gz, core.cfg.limits.max_container_messages, body);
        let r = core.on_packet(now, p.hdr, body, rx, gz.as_mut_slice(), gz_used);
        match r {
            Ok(()) => core.stats.packets_in += 1,
            Err(_) => core.stats.dropped += 1,
        }
        r.map(|()| p.token)
    }

    /// For a connection (the [`Connection`](super::Connection) facade): decrypts the packet in `frame`, the connection's
    /// receive buffer, in place and processes it there, so an accepted frame is never copied. Its events, a DC's held
    /// packet and owed answers then borrow `frame`: until [`must_drain`](Self::must_drain) is false the connection
    /// passes the same buffer to every call that takes one (`*_in`) and feeds no input. A DC packet naming a session
    /// the host must place is kept decrypted ([`take_decrypted`](Self::take_decrypted)).
    pub(crate) fn handle_frame(&mut self, now: Instant, frame: &mut [u8]) -> Result<u32, Dropped> {
        self.core.saw(now);
        if self.must_drain() {
            return Err(Dropped::Backpressure);
        }
        self.core.decrypted = None;
        self.detached = false;
        Self::open(&mut self.core, &mut self.gz, &mut self.gz_used, now, frame)
    }

    /// For a connection about to replace its transport (and with it the receive buffer `ext`) before the host drained
    /// what borrows it: copies `ext` into the engine's own buffer and reads that until the next frame, so a pending
    /// event keeps its body and a held packet its messages. Nothing happens when nothing borrows `ext`.
    pub(crate) fn detach(&mut self, ext: &[u8]) {
        if self.detached || !self.must_drain() {
            return;
        }
        if self.rx.reserve(ext.len(), 0)
            && let Some(dst) = self.rx.as_mut_slice().get_mut(..ext.len())
        {
            dst.copy_from_slice(ext);
            self.detached = true;
        }
    }

    /// DC, for a connection: the packet [`handle_frame`](Self::handle_frame) decrypted but could not process because
    /// its session was not placed by the host yet; it still lies decrypted in the connection's buffer.
    pub(crate) fn take_decrypted(&mut self) -> Option<DecryptedPacket> {
        self.core.decrypted.take()
    }

    /// DC, for a connection: processes a packet this key's engine decrypted earlier ([`take_decrypted`]
    /// (Self::take_decrypted)), lying decrypted in `rx`, once the host placed its session.
    pub(crate) fn handle_decrypted(&mut self, now: Instant, p: &DecryptedPacket, rx: &[u8]) -> Result<u32, Dropped> {
        self.core.saw(now);
        if self.must_drain() {
            return Err(Dropped::Backpressure);
        }
        self.detached = false;
        let r = Self::process(&mut self.core, &mut self.gz, &mut self.gz_used, now, p, rx);
        if r == Err(Dropped::UnknownSession) {
            self.core.decrypted = Some(*p);
        }
        r
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
        if !self.rx.reserve(off + body.len(), 0) {
            return Err(Dropped::TooLarge);
        }
        let dst = self
            .rx
            .as_mut_slice()
            .get_mut(off..off + body.len())
            .ok_or(Dropped::TooLarge)?;
        dst.copy_from_slice(body);
        self.gz_used = 0;
        self.core.inflate_left = INFLATE_WORK_PER_RX.saturating_mul(RX);
        let copied = self.rx.as_slice().get(off..off + body.len()).unwrap_or(&[]);
        Self::reserve_inflate(&mut self.gz, self.core.cfg.limits.max_container_messages, copied);
        let rx = self.rx.as_slice();
        let body = rx.get(off..off + body.len()).ok_or(Dropped::TooLarge)?;
        let hdr = Header {
            salt,
            session_id,
            msg_id: MsgId(msg_id),
            seq_no,
        };
        self.core
            .on_packet(now, hdr, body, rx, self.gz.as_mut_slice(), &mut self.gz_used)
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
        self.poll_event_in(None)
    }

    /// [`poll_event`](Self::poll_event) for an engine in a connection: bodies are borrowed from the connection's
    /// buffer `ext` (or the inflate buffer).
    pub(crate) fn poll_event_in<'a>(&'a mut self, ext: Option<&'a [u8]>) -> Option<Event<'a>> {
        let Some(rec) = self.core.events.pop_front() else {
            // Drained, and no event borrows the buffers any more: an idle session gives large ones back.
            if !self.must_drain() {
                self.rx.release();
                self.gz.release();
            }
            return None;
        };
        self.resume(self.core.last_now, ext);
        let rx: &[u8] = match ext {
            Some(b) if !self.detached => b,
            _ => self.rx.as_slice(),
        };
        let gz = self.gz.as_slice();
        let get = |s: Span| -> &'a [u8] {
            let b: &[u8] = match s.buf {
                Buf::Rx => rx,
                Buf::Gz => gz,
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
        self.poll_packet_in(now, rng, out, None)
    }

    /// [`poll_packet`](Self::poll_packet) for an engine in a connection, whose packets lie in its buffer `ext`.
    pub(crate) fn poll_packet_in<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
        ext: Option<&[u8]>,
    ) -> Result<Option<Packet>, super::event::BufferTooSmall> {
        let required = self.min_out_len();
        if out.len() < required {
            return Err(super::event::BufferTooSmall { required });
        }
        self.core.saw(now);
        // The last packet's owed answers went out: its next messages may have room now.
        self.resume(now, ext);
        let rx = match ext {
            Some(b) if !self.detached => b,
            _ => self.rx.as_slice(),
        };
        let p = self.core.poll_packet::<RX, R>(now, rng, out, rx, self.gz.as_slice());
        if p.is_some()
            && let Some(c) = self.core.role.client_mut()
            && c.first_sent.is_none()
        {
            c.first_sent = Some(now);
        }
        Ok(p)
    }

    /// A new transport connection under the same session: every unacknowledged message becomes due for resending
    /// (in a new container, item 38) and quick-ack tokens of the old connection are forgotten.
    pub fn reconnect(&mut self, now: Instant) {
        if let Some(c) = self.core.role.client_mut() {
            c.quick_acks.clear();
        }
        if let Some(first) = self.core.ids.last() {
            // Everything sent so far (ids up to the last one) is due now.
            self.core.tracker.requeue_before(MsgId(first.0.saturating_add(1)), now);
        }
    }

    /// DC: this session was taken over by a new transport connection ([`Connection::resume_session`]). Quick-ack
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
    /// [`Connection::resume_session`]: super::Connection::resume_session
    pub fn hand_over(&mut self, now: Instant) {
        self.hand_over_in(now, None);
    }

    /// [`hand_over`](Self::hand_over) for an engine moving into a connection whose buffer is `ext`.
    pub(crate) fn hand_over_in(&mut self, now: Instant, ext: Option<&[u8]>) {
        if let Some(c) = self.core.role.client_mut() {
            c.quick_acks.clear();
        }
        if self.core.role() == Role::Server {
            self.core.rename_in_flight(now);
        } else {
            self.reconnect(now);
        }
        // A packet the old connection left half done goes on (its answers are owed on this connection).
        self.core.saw(now);
        self.resume(now, ext);
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
        if let Some(dc) = self.core.role.dc_mut() {
            dc.session_known = false;
            dc.retired.clear();
            dc.approval = Approval::None;
        }
    }
}

impl<const TX: usize, const MSGS: usize> Core<TX, MSGS> {
    fn new(role: RoleState<MSGS>, cfg: SessionConfig, key: AuthKey, clock: Clock, now: Instant) -> Self {
        let mut core = Self::blank(role, cfg, key, clock, now);
        core.init_server_salts(now);
        core
    }

    /// [`new`](Self::new) without a DC's salt schedule, returned as one literal and always inlined, so the compiler
    /// writes it straight into its final place (an inert engine's, see [`Session::inert`]).
    #[inline(always)]
    fn blank(role: RoleState<MSGS>, cfg: SessionConfig, key: AuthKey, clock: Clock, now: Instant) -> Self {
        let side = role.role();
        let l = &cfg.limits;
        Core {
            role,
            cfg,
            key,
            session_id: 0,
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
            tracker: SentTracker::new(
                TX,
                ResendPolicy {
                    max_attempts: l.max_resend_attempts,
                    ..cfg.resend
                },
            ),
            acks: AckQueue::new(l.ack_flush_threshold, l.ack_max_delay).with_flush_bytes(l.ack_flush_bytes),
            budget: ResendBudget::new(now, l.resend_burst_bytes, l.resend_bytes_per_sec),
            outbox: Outbox::new(),
            events: heapless::Deque::new(),
            owed: heapless::Deque::new(),
            last_now: now,
            inflate_left: 0,
            decrypted: None,
            held: None,
            stats: Stats::default(),
            closed: false,
        }
    }

    /// Makes this what [`new`](Self::new) builds, where it lies: the old key is wiped (its `Drop`), the arena's
    /// bodies are zeroized, and the large tables (replay window, ack queue, a DC's seq_no window, the arena) are
    /// cleared in place, so restarting an engine never puts one on the stack. Every field is named, so a field added
    /// to `Core` must be handled here too (and in `new`).
    fn reinit(&mut self, init: RoleInit<'_>, cfg: SessionConfig, key: AuthKey, clock: Clock, now: Instant) {
        let Core {
            role,
            cfg: c,
            key: k,
            session_id,
            clock: cl,
            ids,
            seq,
            inbound,
            tracker,
            acks,
            budget,
            outbox,
            events,
            owed,
            last_now,
            inflate_left,
            decrypted,
            held,
            stats,
            closed,
        } = self;
        match (&mut *role, init) {
            (RoleState::Client(c), RoleInit::Client { salt, next_ping_at }) => {
                *c = ClientState::new(salt, next_ping_at)
            }
            (
                RoleState::Dc(d),
                RoleInit::Dc {
                    salt_secret,
                    first_salt,
                },
            ) => d.reinit(*salt_secret, first_salt),
            // A role change (a connection's engine serves one role only): built anew, out of line, so the DC state
            // it builds (17 KB) is not reserved in the frame of every restart.
            (r, init) => Self::change_role(r, init),
        }
        let side = role.role();
        let l = &cfg.limits;
        *c = cfg;
        *k = key;
        *session_id = 0;
        *cl = clock;
        *ids = MsgIdGen::new(side);
        *seq = SeqNoGen::new();
        inbound.reinit(
            side.peer(),
            TimeWindow {
                past: l.msg_id_max_past,
                future: l.msg_id_max_future,
            },
        );
        *tracker = SentTracker::new(
            TX,
            ResendPolicy {
                max_attempts: l.max_resend_attempts,
                ..cfg.resend
            },
        );
        acks.reinit(l.ack_flush_threshold, l.ack_max_delay, l.ack_flush_bytes);
        *budget = ResendBudget::new(now, l.resend_burst_bytes, l.resend_bytes_per_sec);
        outbox.clear();
        events.clear();
        owed.clear();
        *last_now = now;
        *inflate_left = 0;
        *decrypted = None;
        *held = None;
        *stats = Stats::default();
        *closed = false;
        self.init_server_salts(now);
    }

    #[cold]
    #[inline(never)]
    fn change_role(r: &mut RoleState<MSGS>, init: RoleInit<'_>) {
        *r = match init {
            RoleInit::Client { salt, next_ping_at } => RoleState::Client(ClientState::new(salt, next_ping_at)),
            RoleInit::Dc {
                salt_secret,
                first_salt,
            } => RoleState::Dc(DcState::new(*salt_secret, first_salt)),
        };
    }

    fn role(&self) -> Role {
        self.role.role()
    }

    /// The salt the next packet carries: the client's current one, or the DC's (0 if its schedule could not start).
    fn current_salt(&self) -> u64 {
        match &self.role {
            RoleState::Client(c) => c.salts.current(),
            RoleState::Dc(dc) => dc.salts.as_ref().map_or(0, ServerSalts::current),
        }
    }

    fn saw(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    fn push_event(&mut self, e: EvRec) {
        // Capacity was reserved before processing began (see `on_packet`); a failure here would be a bug.
        if self.events.push_back(e).is_err() {
            warn!("session: event queue full");
        }
    }

    fn fail(&mut self, id: MsgId, reason: FailReason) {
        let req = self.outbox.slot_by_id(id).map_or(id, |(_, s)| s.orig);
        if let Some(r) = self.tracker.remove(id) {
            self.outbox.free(r.handle);
        } else if let Some((idx, _)) = self.outbox.slot_by_id(id) {
            self.outbox.free(BodyHandle(idx as u32));
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
        for s in self
            .outbox
            .slots
            .iter()
            .flatten()
            .filter(|s| s.kind == SentKind::RpcQuery)
        {
            let _ = queries.push(s.id);
        }
        for q in queries {
            self.fail(q, FailReason::Closed);
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.closed {
            return;
        }
        if let Some(dc) = self.role.dc_mut() {
            let disconnect = dc.disconnect_at.is_some_and(|t| t <= now);
            if disconnect {
                dc.disconnect_at = None;
            }
            self.rotate_server_salt(now);
            if disconnect {
                self.push_event(EvRec::Disconnect);
            }
            return;
        }
        let mut expired: heapless::Vec<MsgId, MSGS> = heapless::Vec::new();
        for s in self.outbox.slots.iter().flatten() {
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
        if let Some(lp) = self.role.dc().and_then(|dc| dc.long_poll) {
            // A held long poll defers every send to its answer; a resend falling due counts as something queued.
            let pending = !self.outbox.forced.is_empty()
                || !self.owed.is_empty()
                || self.outbox.slots.iter().flatten().any(|s| s.queued);
            min(Some(lp.answer_at(pending)));
            min(self.tracker.poll_timeout().map(|r| r.max(lp.answer_at(true))));
        } else {
            min(self.tracker.poll_timeout());
            min(self.acks.poll_timeout());
            // Answers owed go out now: some are made by `poll_event`, after the host's last `poll_packet`. So do
            // acknowledgements due by count or bytes (a held container's members are taken in `poll_event` too).
            if !self.owed.is_empty() || self.acks.flush_due() {
                min(Some(self.last_now));
            }
        }
        min(self.role.client().and_then(|c| c.next_ping_at));
        min(self.role.dc().and_then(|dc| dc.disconnect_at));
        let check = self.cfg.state_check_after;
        for s in self.outbox.slots.iter().flatten() {
            min(s.deadline);
            if let Some(after) = check
                && s.kind == SentKind::RpcQuery
                && s.acked
            {
                min(s.checked_at.or(s.sent_at).map(|t| t.saturating_add(after)));
            }
        }
        if let Some(s) = self.role.dc().and_then(|dc| dc.salts.as_ref()) {
            let secs = s.next_rotation().0 as i128 - self.clock.unix_offset() as i128 / 1_000_000;
            min(Some(Instant::from_secs(u64::try_from(secs.max(0)).unwrap_or(u64::MAX))));
        }
        t
    }
}
