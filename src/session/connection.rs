//! The [`Connection`] facade (docs/DESIGN.md, "Layers"): one encrypted session ([`Session`]) over one transport connection
//! (a framing, optionally obfuscated), driven by the host through the run-loop verbs.
//!
//! Where a received byte goes: `handle_input` feeds it to the connection's [`Codec`] (the framing, maybe obfuscated),
//! which gathers one frame in its receive buffer; the frame goes to the engine ([`Session::handle_packet`]: copied
//! into the engine's packet buffer, decrypted there, checked, dispatched; events borrow its bodies) or, on a DC
//! waiting for its host, stays parked where it was received (the connection has no other frame buffer). Outbound, `poll_transmit` has the engine seal its next packet straight
//! into the caller's `out` after the framing's header room, and the codec frames (and encrypts) it there.
//!
//! Contract: after any `handle_*`, `send*` or `reconnect`, drain [`Connection::poll_transmit`] until `Ok(None)` and
//! [`Connection::poll_event`] until `None`; then wait for the socket, [`Connection::poll_timeout`] or the application.
//! `handle_input` takes at most one frame per call and returns how many bytes it consumed; it consumes nothing
//! while an event that borrows the receive buffers is pending (drain events first).
//!
//! ```
//! use mtproto_sansio::crypto::auth_key::AuthKey;
//! use mtproto_sansio::session::{Event, HostQuery, MsgKind, Connection, ConnectionConfig};
//! use mtproto_sansio::time::{Instant, UnixTime};
//! # let mut rng = rand::rng(); // any rand_core::CryptoRng the host trusts
//! let cfg = ConnectionConfig { unix_time_hint: Some(UnixTime(1_700_000_000)), ..ConnectionConfig::DEFAULT };
//! let key = AuthKey::from_bytes([7; 256]); // a stored key (or run the handshake: `Connection::client_handshake`)
//! let now = Instant::from_secs(1);
//! let mut client: Box<Connection<8192, 8192, 16>> = Box::new(Connection::client(cfg, key.clone(), now, &mut rng));
//! let mut dc: Box<Connection<8192, 8192, 16>> = Box::new(Connection::server(cfg, key, now, &mut rng));
//! let query = client.send(now, &[0x0d, 0xf0, 0xad, 0x0b], MsgKind::Query).unwrap();
//! let mut out = vec![0u8; client.min_transmit_len()];
//! let mut answered = None;
//! for _ in 0..4 {
//!     // Client -> DC: drain poll_transmit, feed every byte, drain events after each frame.
//!     while let Some(n) = client.poll_transmit(now, &mut rng, &mut out).unwrap() {
//!         let mut off = 0;
//!         while off < n {
//!             off += dc.handle_input(now, &out[off..n]).unwrap();
//!             // The first message names the client's session: a DC host hands over the connection that holds it,
//!             // or (none served it within the receive window) lets it start here.
//!             if let Some(HostQuery::Session { .. }) = dc.host_query() {
//!                 dc.resume_session(now, None).unwrap();
//!             }
//!             let mut requests = Vec::new();
//!             while let Some(ev) = dc.poll_event() {
//!                 if let Event::Request { msg_id, body } = ev {
//!                     requests.push((msg_id, body.to_vec()));
//!                 }
//!             }
//!             for (id, body) in requests {
//!                 dc.answer(now, id, &body).unwrap(); // echo
//!             }
//!         }
//!     }
//!     // DC -> client.
//!     while let Some(n) = dc.poll_transmit(now, &mut rng, &mut out).unwrap() {
//!         let mut off = 0;
//!         while off < n {
//!             off += client.handle_input(now, &out[off..n]).unwrap();
//!             while let Some(ev) = client.poll_event() {
//!                 if let Event::RpcResult { req, body } = ev {
//!                     answered = Some((req, body.to_vec()));
//!                 }
//!             }
//!         }
//!     }
//! }
//! assert_eq!(answered, Some((query, vec![0x0d, 0xf0, 0xad, 0x0b])));
//! // Then sleep until the earliest of the socket, `poll_timeout()` and the application.
//! assert!(client.poll_timeout().is_some());
//! ```
//!
//! A client without a stored key ([`Connection::client_handshake`]) first runs the auth-key handshake
//! ([`ClientHandshake`]) over the same transport, then starts the encrypted session on the new key with the
//! handshake's salt and server time, and reports [`Event::AuthKeyReady`] so the host can persist the key.
//!
//! A DC connection that starts without a key ([`Connection::server_handshake`]) owns a small handshake table
//! ([`ServerHandshakes`] of [`DC_HANDSHAKE_RUNS`] runs, over the host's [`handshake::ServerConfig`]):
//! - a plaintext frame (auth_key_id 0) is parked and answered by the table at the next
//!   [`poll_transmit`](Connection::poll_transmit), which has the RNG the handshake needs; when the table creates a key,
//!   the connection continues encrypted on it (with the handshake's salt) and reports [`Event::AuthKeyReady`]: the
//!   host stores [`Connection::stored_key`] under its id;
//! - an encrypted frame under an unknown auth_key_id is parked and reported as [`Event::AuthKeyRequired`]; the host
//!   looks the id up and answers with [`Connection::supply_stored_key`] (or [`Connection::supply_auth_key`]): `Some(key)`
//!   starts the encrypted session and processes the parked frame, `None` sends the transport error −404
//!   (docs/CHECKLIST.md item 27) and drops it.
//!
//! At most [`MAX_PARKED_FRAMES`] frame (of at most `RX` bytes) is parked; while it is, `handle_input` consumes
//! nothing (backpressure), so a parked frame is never overtaken or processed before its key exists.
//!
//! Why the table is owned, not borrowed from the host: the session keeps its run-loop verbs and needs no lifetime
//! or extra arguments; a run lives on one connection anyway (item 22). What a DC keeps beyond one connection is asked
//! of the host instead, as events ([`Event::AuthKeyRequired`], [`Event::NewAuthKey`], [`Event::SessionRequired`],
//! [`Event::ObfuscatedInit`], each reported once) and through [`Connection::host_query`], which tells what is pending until it is answered (each
//! answer un-parks the frame):
//! - **inits seen** (always, on an obfuscated transport): the session takes the client's 64-byte init and reads
//!   nothing after it until the host checked it against the replay cache it shares between connections
//!   ([`HostQuery::ObfuscatedInit`] → [`Connection::check_obfuscated_init`]); a replayed init fails the connection
//!   like a wrong secret (docs/CHECKLIST.md item 9, attack B19). There is no switch: a host that forgets to answer gets
//!   a connection that never reads a frame, not one open to replays;
//! - **new keys** ([`Connection::set_new_key_check`]): before `dh_gen_ok` the table parks the new key
//!   ([`ServerHandshakes::handle_deferred`]) and the host tells whether its store already holds the id
//!   ([`HostQuery::NewAuthKey`] → [`Connection::accept_new_key`]); a collision is answered `dh_gen_retry` (item 25).
//!   On by default: a host that forgets to answer gets a handshake that never finishes, not a key that may shadow
//!   another client's; a host that cannot collide (no store) turns it off with `set_new_key_check(false)`;
//! - **stored keys** carry their salt schedule ([`StoredKey`], [`Connection::stored_key`],
//!   [`Connection::supply_stored_key`]), so every connection under a key issues the same salts;
//! - **sessions**, always: a server session (the replay window that keeps a message from being executed twice,
//!   the answers not yet acknowledged) outlives its connection. A packet naming a client session this connection
//!   does not serve (its first authenticated message, or a client that moved to another session) is parked and
//!   the host asked ([`HostQuery::Session`]); it hands over the connection that holds the session
//!   ([`Connection::resume_session`]), whose engine moves here by an in-place swap (no allocation, nothing
//!   engine-sized on the stack), or, only when no connection served it within the receive window (330 s), lets a
//!   new one start. A host that never answers stalls the connection; it cannot make a query run twice (item 33,
//!   attack B7). Only the first session on a key this connection just created starts without asking.
//!
//! Memory: the engine ([`Session`]) is a field of the connection, not of its phase. Until a key exists it is inert
//! (an all-zero key, never driven); the key starts it where it lies (`Session::reset_*`), and leaving the encrypted
//! session wipes it in place. Nothing engine-sized is built on the stack and moved: an engine is tens of KB (47 KiB
//! for a `Connection<4096, 4096, 8>`) and a Cortex-M4's stack budget is 24 KiB (examples/firmware measures it). A
//! device builds the connection itself into a `static` ([`Connection::client_handshake`] is inlined for that) and
//! re-keys it there ([`Connection::restart_client_handshake`]).
//!
//! [`Connection::set_proxy_secret`] puts an MTProxy secret (16 bytes, or `dd` + 16) on the obfuscated transport.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use core::fmt;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use super::dc_host::{AcceptKeyError, HostQuery, InitCheckError, ProxySecretError, ResumeError, StoredKey};
use super::engine::{DecryptedPacket, MsgKind, Session, SessionConfig, Stats};
use super::event::{BufferTooSmall, Event, SendError};
use super::msg_id::{Clock, MsgId, Role};
use crate::carriage::layer::{Carriage, CarriageError, NoCarriage, Outbound};
use crate::crypto::auth_key::AuthKey;
use crate::handshake::{
    self, ClientHandshake, ERR_NOT_FOUND, HandshakeError, MAX_SERVER_MESSAGE, Outcome, ServerHandshakes, ServerReply,
    ServerStep, Status,
};
use crate::time::{Instant, UnixTime};
pub use crate::transport::TransportConfig;
use crate::transport::obfuscated::{INIT_LEN, ProxySecret};
use crate::transport::replay::ReplayCache;
use crate::transport::{Codec, Frame, Framing, TransportError, strip_padding};

/// Everything a session needs besides the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnectionConfig {
    /// The engine's tunables and limits.
    pub engine: SessionConfig,
    /// The transport.
    pub transport: TransportConfig,
    /// The host's idea of Unix time at construction (an RTC, NTP...); corrected by the server. Default: 0.
    pub unix_time_hint: Option<UnixTime>,
    /// Client: the server salt to start with (0 if unknown: the DC answers `bad_server_salt`).
    pub salt: u64,
}

impl ConnectionConfig {
    /// Defaults over plain intermediate framing.
    pub const DEFAULT: ConnectionConfig = ConnectionConfig {
        engine: SessionConfig::DEFAULT,
        transport: TransportConfig::INTERMEDIATE,
        unix_time_hint: None,
        salt: 0,
    };
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig::DEFAULT
    }
}

/// A fatal, sticky session error: close the connection (and, for a client, reconnect).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The transport stream is broken (bad length, CRC, marker, obfuscation tag...).
    Transport(TransportError),
    /// The auth-key handshake failed for good.
    Handshake(HandshakeError),
    /// The session was closed.
    Closed,
    /// DC: the client session moved to another connection ([`Connection::resume_session`]); close this one.
    Moved,
    /// DC: the obfuscated init is one the host's replay cache has seen ([`Connection::check_obfuscated_init`]): a
    /// recorded connection replayed (attack B19). Nothing after the init was read; close the connection as for a
    /// [`TransportError::BadTag`], sending nothing, so a prober cannot tell the two apart. On fake-TLS, also a
    /// replayed ClientHello random (the host's cache is asked for both).
    ReplayedInit,
    /// The carriage under the framing failed (HTTP, fake-TLS; [`Connection::set_carriage`]).
    Carriage(CarriageError),
}

impl Error {
    /// Whose fault the session's end is: a transport or handshake error says itself; a replayed init is the
    /// peer's; `Closed` and `Moved` are the host's own doing ([`Fault::Host`]: not an accident to retry).
    pub const fn fault(&self) -> Fault {
        match self {
            Error::Transport(e) => e.fault(),
            Error::Handshake(e) => e.fault(),
            Error::ReplayedInit => Fault::Peer,
            Error::Carriage(e) => e.fault(),
            Error::Closed | Error::Moved => Fault::Host,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Handshake(e) => write!(f, "handshake: {e}"),
            Error::Closed => f.write_str("session closed"),
            Error::Moved => f.write_str("session moved to another connection"),
            Error::ReplayedInit => f.write_str("replayed obfuscated init"),
            Error::Carriage(e) => write!(f, "carriage: {e}"),
        }
    }
}

impl core::error::Error for Error {}

/// Handshake runs a [`Connection::server_handshake`] connection may hold at once: one in progress plus one finished
/// run kept for a retransmitted request.
pub const DC_HANDSHAKE_RUNS: usize = 2;

/// Frames a DC session parks while it waits for the handshake step or for [`Connection::supply_auth_key`].
pub const MAX_PARKED_FRAMES: usize = 1;

/// Why [`Connection::supply_auth_key`] refused a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SupplyKeyError {
    /// No frame waits for a key ([`Event::AuthKeyRequired`] was not reported).
    NotRequested,
    /// The key's id is not the one the parked frame names; the frame stays parked.
    WrongKey,
}

impl SupplyKeyError {
    /// The host's ([`Fault::Host`]).
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl fmt::Display for SupplyKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupplyKeyError::NotRequested => f.write_str("no frame waits for an auth key"),
            SupplyKeyError::WrongKey => f.write_str("the key is not the one the parked frame names"),
        }
    }
}

impl core::error::Error for SupplyKeyError {}

/// A frame a DC connection holds in the codec's receive buffer (it stays where it was received, and input is
/// paused until the host answered), or the reason it waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Parked {
    Empty,
    /// A plaintext handshake message of this length, answered at the next `poll_transmit`.
    Plain(usize),
    /// An encrypted packet (padding stripped) under an unknown key, waiting for `supply_auth_key`.
    UnknownKey {
        len: usize,
        key_id: u64,
    },
    /// Nothing held: the handshake table holds a new key until `accept_new_key`.
    NewKey {
        key_id: u64,
    },
    /// A plaintext handshake answer, written over the consumed request, framed and sent at the next `poll_transmit`.
    Reply(usize),
    /// Nothing held: the obfuscated codec took the client's init and holds its replay key until
    /// `check_obfuscated_init`.
    ObfuscatedInit,
    /// An encrypted packet (padding stripped) naming a session this fresh engine does not know, waiting for
    /// `resume_session`.
    Session {
        len: usize,
        session_id: u64,
        msg_id: MsgId,
        quick_ack: bool,
        /// The engine decrypted it in place (`None`: still encrypted, when a fresh engine was started on it).
        decrypted: Option<DecryptedPacket>,
    },
}

/// Where the connection stands. The engine is not in here: it is a field of the connection that starts in place
/// when the key exists (see [`Connection`]'s `engine`).
// The DC's handshake table is the larger; both are transient alternatives and there is no heap to box into.
#[allow(clippy::large_enum_variant)]
enum Phase {
    /// Creating the auth key.
    Handshake(ClientHandshake<'static>),
    /// The encrypted session runs in the connection's engine.
    Encrypted,
    /// DC without a key: handshakes are answered, an unknown key is asked of the host.
    DcHandshake(ServerHandshakes<'static, DC_HANDSHAKE_RUNS>),
}

/// An encrypted MTProto session over one transport connection. See the module docs for the run-loop contract.
///
/// `C` is the carriage under the framing ([`Connection::set_carriage`]): [`NoCarriage`] (TCP, zero-sized) by
/// default, or [`crate::carriage::layer::Layer`] for HTTP and fake-TLS.
pub struct Connection<const RX: usize = 16_384, const TX: usize = 16_384, const MSGS: usize = 32, C = NoCarriage> {
    phase: Phase,
    /// The encrypted session: live in [`Phase::Encrypted`]; before (a handshake) and after (a DC back to a
    /// handshake, a client re-keying) an inert engine holding an all-zero key. It is never moved or rebuilt by
    /// value: a key starts it where it lies (`Session::reset_*`), because an engine is tens of KB (50 KB for a
    /// `Connection<4096, 4096, 8>`) and a device's whole stack is 24 KiB (examples/firmware). It costs its size
    /// during the handshake too, which a device plans for anyway.
    engine: Session<RX, TX, MSGS>,
    cfg: ConnectionConfig,
    hs_cfg: Option<handshake::ClientConfig<'static>>,
    /// DC (`server_handshake`): the handshake settings, kept so a client that restarts its handshake on the same
    /// connection (Telethon and GramJS do when their own check of the new key fails) is answered again.
    dc_hs_cfg: Option<handshake::ServerConfig<'static>>,
    key_ready_event: bool,
    role: Role,
    transport: TransportConfig,
    codec: Codec<RX>,
    quick_acks: heapless::Deque<u32, 8>,
    error: Option<Error>,
    drops: super::event::DropCounts,
    parked: Parked,
    host_event: bool,
    transport_error: Option<i32>,
    /// DC: hold `dh_gen_ok` back until the host checked the new key id ([`HostQuery::NewAuthKey`]).
    new_key_check: bool,
    /// The MTProxy secret of the obfuscated transport.
    secret: Option<ProxySecret>,
    /// Bytes went out or came in on this connection (the proxy secret can no longer change).
    io_started: bool,
    /// DC: the lifetime the client asked for the key this connection created (`Some`: temporary, PFS).
    new_key_expires_in: Option<u32>,
    /// Whether input past the transport's opening may be read: false on a DC's obfuscated connection until the
    /// host's replay cache passed its init ([`HostQuery::ObfuscatedInit`]).
    init_checked: bool,
    /// The carriage under the framing.
    carriage: C,
}

/// A session sized for a microcontroller: 4 KiB frames, 4 KiB of resend arena, 8 messages in flight.
pub type ConnectionSmall = Connection<4096, 4096, 8>;
/// A session sized for a host: 64 KiB frames, 256 KiB of resend arena, 64 messages in flight.
pub type ConnectionLarge = Connection<65_536, 262_144, 64>;

impl<const RX: usize, const TX: usize, const MSGS: usize, C: Carriage + Default> fmt::Debug
    for Connection<RX, TX, MSGS, C>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("engine", &self.session())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize, C: Carriage + Default> Connection<RX, TX, MSGS, C> {
    /// A client session under `key` (stored, or produced by the handshake).
    pub fn client<R: CryptoRng + ?Sized>(cfg: ConnectionConfig, key: AuthKey, now: Instant, rng: &mut R) -> Self {
        let clock = Clock::from_unix_hint(now, cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let engine = Session::client(cfg.engine, key, cfg.salt, clock, now, rng);
        Self::wrap(Phase::Encrypted, engine, cfg, Role::Client)
    }

    /// A client session without a key: it first runs the auth-key handshake with `hs` (its
    /// `unix_micros_at_zero` is derived from `cfg.unix_time_hint`), then continues as [`client`](Self::client) would
    /// on the new key. [`Event::AuthKeyReady`] announces the key; `send` answers `NotReady` until then.
    #[inline(always)]
    pub fn client_handshake(cfg: ConnectionConfig, mut hs: handshake::ClientConfig<'static>, now: Instant) -> Self {
        let unix_us = cfg.unix_time_hint.unwrap_or(UnixTime(0)).0.saturating_mul(1_000_000);
        hs.unix_micros_at_zero = unix_us.saturating_sub(now.as_micros());
        hs.transport_padding = cfg.transport.framing == Framing::PaddedIntermediate;
        let phase = Phase::Handshake(ClientHandshake::new(hs, now));
        let mut s = Self::wrap(phase, Session::inert(Role::Client), cfg, Role::Client);
        s.hs_cfg = Some(hs);
        s
    }

    /// A DC session for a connection whose client uses `key` (the host looked it up by its id). Its first message
    /// (and any naming another client session) is parked until the host answers [`HostQuery::Session`].
    pub fn server<R: CryptoRng + ?Sized>(cfg: ConnectionConfig, key: AuthKey, now: Instant, rng: &mut R) -> Self {
        let clock = Clock::from_unix_hint(now, cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let engine = Session::server(cfg.engine, key, clock, now, rng);
        Self::wrap(Phase::Encrypted, engine, cfg, Role::Server)
    }

    /// A DC session for a fresh connection whose client may have no key yet: plaintext frames run the auth-key
    /// handshake on a table owned by this session (`hs.unix_micros_at_zero` is derived from `cfg.unix_time_hint`,
    /// `hs.transport_padding` from the framing); an encrypted frame under an unknown key is reported as
    /// [`Event::AuthKeyRequired`]. See the module docs.
    #[inline(always)]
    pub fn server_handshake(cfg: ConnectionConfig, mut hs: handshake::ServerConfig<'static>, now: Instant) -> Self {
        let unix_us = cfg.unix_time_hint.unwrap_or(UnixTime(0)).0.saturating_mul(1_000_000);
        hs.unix_micros_at_zero = unix_us.saturating_sub(now.as_micros());
        hs.transport_padding = cfg.transport.framing == Framing::PaddedIntermediate;
        let phase = Phase::DcHandshake(ServerHandshakes::new(hs.clone()));
        let mut s = Self::wrap(phase, Session::inert(Role::Server), cfg, Role::Server);
        s.dc_hs_cfg = Some(hs);
        s
    }

    /// DC: answers [`Event::AuthKeyRequired`]. `Some(key)` (whose id must be the one reported) starts the encrypted
    /// session on it and processes the parked frame; `None` drops the frame and queues the transport error −404, so
    /// the client creates a new key (docs/CHECKLIST.md item 27). Either way input is consumed again afterwards.
    ///
    /// The engine draws a fresh salt schedule, so a client that kept its salt from an earlier connection is told
    /// `bad_server_salt` once; a host that stores [`Connection::stored_key`] answers with
    /// [`supply_stored_key`](Self::supply_stored_key) instead.
    pub fn supply_auth_key<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        key: Option<AuthKey>,
        rng: &mut R,
    ) -> Result<(), SupplyKeyError> {
        let Some(len) = self.take_key_request(key.as_ref().map(AuthKey::id))? else {
            return Ok(());
        };
        let Some(key) = key else { return Ok(()) };
        let clock = Clock::from_unix_hint(now, self.cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        self.engine.reset_server(self.cfg.engine, key, clock, now, rng);
        self.start_parked(now, len, false);
        Ok(())
    }

    /// DC: answers [`Event::AuthKeyRequired`] with what the host stored for the key ([`Connection::stored_key`]): the
    /// key and its salt schedule, so the salts of this connection are those of every other connection under the
    /// key and a client that kept its salt (or its `future_salts`) is not told `bad_server_salt`. Otherwise as
    /// [`supply_auth_key`](Self::supply_auth_key) (`None`: −404).
    pub fn supply_stored_key(&mut self, now: Instant, key: Option<&StoredKey>) -> Result<(), SupplyKeyError> {
        let Some(len) = self.take_key_request(key.map(|k| k.key.id()))? else {
            return Ok(());
        };
        let Some(stored) = key else { return Ok(()) };
        let clock = Clock::from_unix_hint(now, self.cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let (key, salts) = (stored.key.clone(), &stored.salts);
        self.engine
            .reset_server_with_schedule(self.cfg.engine, key, salts, clock, now);
        self.start_parked(now, len, false);
        Ok(())
    }

    /// Checks an answer to `AuthKeyRequired` naming `supplied` (the key's id, `None` for no key): on `None` the
    /// frame is dropped and −404 queued (`Ok(None)`); on the right id the parked frame's length is returned.
    fn take_key_request(&mut self, supplied: Option<u64>) -> Result<Option<usize>, SupplyKeyError> {
        let Parked::UnknownKey { len, key_id } = self.parked else {
            return Err(SupplyKeyError::NotRequested);
        };
        let Some(id) = supplied else {
            self.parked = Parked::Empty;
            self.host_event = false;
            self.transport_error = Some(ERR_NOT_FOUND);
            return Ok(None);
        };
        if id != key_id {
            return Err(SupplyKeyError::WrongKey);
        }
        self.parked = Parked::Empty;
        self.host_event = false;
        Ok(Some(len))
    }

    /// Runs the DC engine (just started in place on the supplied key) on the packet parked in the receive buffer (its
    /// first `len` bytes) (the engine refuses a session the host has not placed, which parks the packet again as
    /// [`HostQuery::Session`]).
    fn start_parked(&mut self, now: Instant, len: usize, quick_ack: bool) {
        self.phase = Phase::Encrypted;
        self.process_parked(now, len, quick_ack, None);
    }

    /// Processes the packet parked in the receive buffer (its first `len` bytes) in this connection's engine: still
    /// encrypted (`decrypted` is `None`: it is decrypted in place), or as an engine of this key decrypted it.
    fn process_parked(&mut self, now: Instant, len: usize, quick_ack: bool, decrypted: Option<DecryptedPacket>) {
        if !matches!(self.phase, Phase::Encrypted) {
            return;
        }
        let engine = &mut self.engine;
        let res = match &decrypted {
            Some(p) => engine.handle_decrypted(now, p, self.codec.idle_buf()),
            None => engine.handle_frame(now, self.codec.idle_buf_mut().get_mut(..len).unwrap_or(&mut [])),
        };
        if let Some(p) = Self::after_packet(engine, &mut self.quick_acks, &mut self.drops, res, quick_ack) {
            // Still in the receive buffer, now decrypted: park it again under the session question.
            self.parked = Parked::Session {
                len,
                session_id: p.0,
                msg_id: p.1,
                quick_ack,
                decrypted: engine.take_decrypted(),
            };
            self.host_event = true;
        }
        self.release_idle();
    }

    /// Books the result of one packet handed to the engine: a DC quick-ack token, a dropped frame, or (returned) the
    /// (session_id, msg_id) of a packet naming a client session the engine may not start without the host.
    fn after_packet(
        engine: &mut Session<RX, TX, MSGS>,
        quick_acks: &mut heapless::Deque<u32, 8>,
        drops: &mut super::event::DropCounts,
        res: Result<u32, super::event::Dropped>,
        quick_ack: bool,
    ) -> Option<(u64, MsgId)> {
        match res {
            Ok(token) => {
                if quick_ack && engine.role() == Role::Server {
                    if quick_acks.is_full() {
                        let _ = quick_acks.pop_front();
                    }
                    let _ = quick_acks.push_back(token);
                }
                None
            }
            Err(super::event::Dropped::UnknownSession) => {
                let unknown = engine.take_unknown_session();
                if unknown.is_none() {
                    drops.record(super::event::Dropped::UnknownSession);
                }
                unknown
            }
            Err(reason) => {
                drops.record(reason);
                None
            }
        }
    }

    /// A DC session for a connection whose client uses a stored key, on the key's stored salt schedule (see
    /// [`supply_stored_key`](Self::supply_stored_key)).
    pub fn server_stored(cfg: ConnectionConfig, key: &StoredKey, now: Instant) -> Self {
        let clock = Clock::from_unix_hint(now, cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        let engine = Session::server_with_schedule(cfg.engine, key.key.clone(), &key.salts, clock, now);
        Self::wrap(Phase::Encrypted, engine, cfg, Role::Server)
    }

    /// DC: what the host should store for this connection's key (after [`Event::AuthKeyReady`], or to refresh):
    /// the key and its salt schedule. `None` before the key exists and on a client.
    pub fn stored_key(&self) -> Option<StoredKey> {
        match (&self.phase, self.role) {
            (Phase::Encrypted, Role::Server) => Some(StoredKey {
                key: self.engine.auth_key().clone(),
                salts: self.engine.salt_schedule(),
            }),
            _ => None,
        }
    }

    /// DC: the `expires_in` of the key this connection's handshake created: `Some(seconds)` for a temporary key
    /// (`p_q_inner_data_temp_dc`, PFS), which a host keeps in memory only and never persists; `None` for a
    /// permanent key, a key the host supplied, or before [`Event::AuthKeyReady`].
    pub fn new_key_expires_in(&self) -> Option<u32> {
        self.new_key_expires_in
    }

    /// DC: hold every new key's `dh_gen_ok` back until the host checked the key id against its store
    /// ([`HostQuery::NewAuthKey`], answered by [`accept_new_key`](Self::accept_new_key)), so a colliding id gets
    /// `dh_gen_retry` (docs/CHECKLIST.md item 25). On by default for a DC: a host that never answers gets a
    /// handshake that stalls, never a duplicate key id; a host without a key store (nothing to collide with) may
    /// turn it off. Set it before the handshake starts.
    pub fn set_new_key_check(&mut self, on: bool) {
        self.new_key_check = on;
    }

    /// The MTProxy secret of the obfuscated transport, both roles: 16 bytes, or 17 starting with `0xdd` (padded
    /// intermediate only); the CTR keys become `SHA256(key ‖ secret)` (`ee` fake-TLS secrets belong to
    /// [`crate::carriage`]). Set it before the first byte is sent or received; it survives
    /// [`reconnect`](Self::reconnect). A DC with a secret refuses a client with another (or none): its init does not
    /// decrypt to a valid tag, and `handle_input` fails with a transport error.
    pub fn set_proxy_secret(&mut self, secret: Option<ProxySecret>) -> Result<(), ProxySecretError> {
        if self.io_started {
            return Err(ProxySecretError::Started);
        }
        if let Some(s) = &secret {
            if !self.transport.obfuscated {
                return Err(ProxySecretError::NotObfuscated);
            }
            if s.requires_padding() && self.transport.framing != Framing::PaddedIntermediate {
                return Err(ProxySecretError::RequiresPadding);
            }
        }
        if self.carriage.packets() || self.carriage.proxy_secret().is_some() {
            // HTTP carries no obfuscated stream; fake-TLS brings its own secret.
            return Err(ProxySecretError::NotPlainIntermediate);
        }
        self.secret = secret;
        self.codec = Self::new_codec(self.transport, self.role, self.secret.as_ref(), &self.carriage);
        Ok(())
    }

    /// DC: what this connection waits for from the host, if anything. While a query is pending, `handle_input`
    /// consumes nothing and the frame that raised it is parked. Each query is also reported once by
    /// [`poll_event`](Self::poll_event) ([`Event::AuthKeyRequired`], [`Event::NewAuthKey`],
    /// [`Event::SessionRequired`], [`Event::ObfuscatedInit`]); this accessor keeps answering until the host has.
    pub fn host_query(&self) -> Option<HostQuery> {
        match self.parked {
            Parked::UnknownKey { key_id, .. } => Some(HostQuery::AuthKey { key_id }),
            Parked::NewKey { key_id } => Some(HostQuery::NewAuthKey { key_id }),
            Parked::ObfuscatedInit => Some(HostQuery::ObfuscatedInit),
            Parked::Session { session_id, .. } => Some(HostQuery::Session {
                key_id: self.session().map_or(0, |e| e.auth_key().id()),
                session_id,
            }),
            Parked::Empty | Parked::Plain(_) => None,
            Parked::Reply(_) => None,
        }
    }

    /// DC: the handshake on this connection made a key; the encrypted session starts on it (and `AuthKeyReady`
    /// is raised). No other connection can hold a session under a key made here, so its first session starts
    /// without asking the host.
    fn start_new_key_engine<R: CryptoRng + ?Sized>(&mut self, now: Instant, o: handshake::ServerOutcome, rng: &mut R) {
        let clock = Clock::from_unix_hint(now, self.cfg.unix_time_hint.unwrap_or(UnixTime(0)));
        self.engine
            .reset_server_with_salt(self.cfg.engine, o.auth_key, clock, now, rng, o.server_salt);
        self.engine.approve_first_session();
        self.new_key_expires_in = o.expires_in;
        self.phase = Phase::Encrypted;
        self.key_ready_event = true;
    }

    /// DC: answers [`HostQuery::NewAuthKey`]. `taken` = the key store already holds that key id: the client is
    /// told `dh_gen_retry` and repeats its last step with a new key (or `dh_gen_fail` once
    /// `ServerConfig::max_dh_retries` rounds collided). Not taken: `dh_gen_ok` is sent, the session continues
    /// encrypted on the key and reports [`Event::AuthKeyReady`]; reserve the id in the store now. The answer goes
    /// out at the next [`poll_transmit`](Self::poll_transmit); if the run expired meanwhile, the transport error −404.
    pub fn accept_new_key<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        taken: bool,
        rng: &mut R,
    ) -> Result<(), AcceptKeyError> {
        let (Parked::NewKey { key_id }, Phase::DcHandshake(hs)) = (self.parked, &mut self.phase) else {
            return Err(AcceptKeyError::NotRequested);
        };
        self.parked = Parked::Empty;
        let mut reply = [0u8; MAX_SERVER_MESSAGE];
        let (n, key) = match hs.finish_key_check(now, 0, key_id, taken, &mut reply) {
            Ok(ServerReply::Send(n)) => (n, None),
            Ok(ServerReply::Complete { len, outcome }) => (len, Some(outcome)),
            Ok(ServerReply::Error(code)) => {
                self.transport_error = Some(code);
                return Ok(());
            }
            Err(_) => {
                self.transport_error = Some(ERR_NOT_FOUND);
                return Ok(());
            }
        };
        // The request this answers was consumed: its place in the receive buffer holds the answer until it is sent.
        match (reply.get(..n), self.codec.idle_buf_mut().get_mut(..n)) {
            (Some(src), Some(dst)) => {
                dst.copy_from_slice(src);
                self.parked = Parked::Reply(n);
            }
            // The receive buffer cannot hold a handshake answer: the client cannot finish on this connection.
            _ => {
                self.transport_error = Some(ERR_NOT_FOUND);
                return Ok(());
            }
        }
        if let Some(o) = key {
            self.start_new_key_engine(now, o, rng);
        }
        Ok(())
    }

    /// DC: answers [`HostQuery::Session`]. `Some(old)`: the connection that holds the session (its connection may be
    /// dead or alive; drain its events first); its server session moves here, the parked message is processed in
    /// it (a message it already received is not delivered again), everything it had not seen acknowledged is resent
    /// on this connection under new msg_ids ([`Session::hand_over`]: clients refuse the old connection's msg_ids on
    /// a new one), and `old` fails from now on with [`Error::Moved`] (a racing connection loses). A message `old`'s
    /// session already received (or older than its windows) is a replay: it is dropped, nothing moves, and this
    /// connection waits for its next message ([`ResumeError::Replayed`]).
    ///
    /// `None`: no connection under this key received a message of that session within
    /// [`Limits::session_retention`](super::Limits::session_retention) (60 s by default) before now; it starts here as
    /// a new session (`new_session_created`) that refuses msg_ids older than
    /// [`Limits::new_session_max_age`](super::Limits::new_session_max_age) (code 16: the client re-sends under new
    /// ids). **This is the host's promise** that makes "executed at most once" hold across connections (item 33,
    /// attack B7): a host keeps every connection's session (the `Connection` that served it, open or closed) for that
    /// long after its connection closed, indexed by (key id, session id). A host that cannot (a restart, a full
    /// table) refuses the connection instead of answering `None` until that time has passed.
    ///
    /// Index the session under ([`HostQuery::Session::key_id`], session id) → this connection afterwards.
    pub fn resume_session(&mut self, now: Instant, from: Option<&mut Self>) -> Result<(), ResumeError> {
        let Parked::Session {
            len,
            session_id,
            msg_id,
            quick_ack,
            decrypted,
        } = self.parked
        else {
            return Err(ResumeError::NotRequested);
        };
        if let Some(old) = from {
            let ok = match (&self.phase, &old.phase) {
                (Phase::Encrypted, Phase::Encrypted) => {
                    let (new, o) = (&self.engine, &old.engine);
                    o.role() == Role::Server
                        && o.has_session()
                        && o.session_id() == session_id
                        && !o.is_closed()
                        && o.auth_key() == new.auth_key()
                }
                _ => false,
            };
            if !ok {
                return Err(ResumeError::Mismatch);
            }
            if old.engine.must_drain() {
                // Its events or held packet borrow the old connection's receive buffer, which does not move.
                return Err(ResumeError::Busy);
            }
            if old.engine.is_replay(now, msg_id) {
                // A copy of a message the session already had (an attacker replaying a captured connection): it
                // must not pull the session away from the client's connection.
                self.parked = Parked::Empty;
                self.drops.record(super::event::Dropped::BadMsgId);
                return Err(ResumeError::Replayed);
            }
            // Swapped in place (both connections are encrypted): no engine-sized value crosses the stack.
            core::mem::swap(&mut self.engine, &mut old.engine);
            old.error = Some(Error::Moved);
            old.parked = Parked::Empty;
            old.quick_acks.clear();
            self.engine.hand_over_in(now, Some(self.codec.idle_buf()));
        } else if matches!(self.phase, Phase::Encrypted) {
            // No engine holds it: the host vouches that none served it within the receive window.
            self.engine.approve_session(session_id);
        }
        self.parked = Parked::Empty;
        self.process_parked(now, len, quick_ack, decrypted);
        Ok(())
    }

    // Always inlined, with the constructors that call it: a connection built into a `static` is then written there
    // field by field (its engine included, see `Session::inert`), never built on the stack and moved.
    #[inline(always)]
    fn wrap(phase: Phase, engine: Session<RX, TX, MSGS>, cfg: ConnectionConfig, role: Role) -> Self {
        let transport = cfg.transport;
        Connection {
            phase,
            engine,
            cfg,
            hs_cfg: None,
            dc_hs_cfg: None,
            key_ready_event: false,
            role,
            transport,
            codec: Self::new_codec(transport, role, None, &C::default()),
            quick_acks: heapless::Deque::new(),
            error: None,
            drops: super::event::DropCounts::default(),
            parked: Parked::Empty,
            host_event: false,
            transport_error: None,
            new_key_check: role == Role::Server,
            secret: None,
            io_started: false,
            new_key_expires_in: None,
            init_checked: !Self::init_needs_check(transport, role),
            carriage: C::default(),
        }
    }

    /// A DC reads an obfuscated client's init first, and nothing after it until the host checked it for a replay.
    fn init_needs_check(t: TransportConfig, role: Role) -> bool {
        role == Role::Server && t.obfuscated
    }

    /// DC, obfuscated, before the init is checked: feeds the codec no more than the init (through the carriage,
    /// whose own opening comes first) and, once the codec accepted it, parks the connection on
    /// [`HostQuery::ObfuscatedInit`]. A carriage's opening that needs the replay check (a fake-TLS ClientHello)
    /// parks it the same way first.
    fn read_obfuscated_init(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error> {
        let Some(missing) = self.codec.obfuscated().map(|c| c.init_missing()) else {
            self.init_checked = true;
            return Ok(0);
        };
        let n = match self.carriage.decode(now, &mut self.codec, bytes, missing) {
            Ok((n, _)) => n,
            Err(e) => return Err(self.fail_carriage(e)),
        };
        self.io_started |= n > 0;
        let init_in = self.codec.obfuscated().and_then(|c| c.init_fingerprint()).is_some();
        if self.carriage.replay_key().is_some() || init_in {
            self.parked = Parked::ObfuscatedInit;
            self.host_event = true;
        }
        Ok(n)
    }

    /// A carriage (or the transport inside it) failed: the sticky error.
    fn fail_carriage(&mut self, e: CarriageError) -> Error {
        let e = match e {
            CarriageError::Transport(t) => Error::Transport(t),
            e => Error::Carriage(e),
        };
        self.error = Some(e);
        e
    }

    /// DC: answers [`HostQuery::ObfuscatedInit`] with the replay cache the host shares between all its connections
    /// (one per listening server, outliving connections; see [`ReplayCache`] for sizing): the crate looks the
    /// init up and records it. A new init lets the connection go on (input is consumed again). A cached one is a
    /// replayed connection (docs/CHECKLIST.md item 9, attack B19): the session fails with [`Error::ReplayedInit`]
    /// before reading a frame, as for an init the secret does not open, and the host closes the connection without
    /// sending anything ([`InitCheckError::Replayed`]). The cache's capacity must not be 0.
    pub fn check_obfuscated_init<const N: usize>(&mut self, cache: &mut ReplayCache<N>) -> Result<(), InitCheckError> {
        const { assert!(N > 0, "a replay cache of capacity 0 remembers nothing") };
        if let (Parked::ObfuscatedInit, Some(fp)) = (self.parked, self.carriage.replay_key()) {
            // The carriage's opening (a fake-TLS ClientHello random); the init inside is asked next.
            self.parked = Parked::Empty;
            self.host_event = false;
            if cache.insert_fingerprint(fp).is_err() {
                self.error = Some(Error::ReplayedInit);
                return Err(InitCheckError::Replayed);
            }
            self.carriage.replay_checked();
            return Ok(());
        }
        let (Parked::ObfuscatedInit, Some(c)) = (self.parked, self.codec.obfuscated()) else {
            return Err(InitCheckError::NotRequested);
        };
        let Some(fp) = c.init_fingerprint() else {
            return Err(InitCheckError::NotRequested);
        };
        self.parked = Parked::Empty;
        self.host_event = false;
        if cache.insert_fingerprint(fp).is_err() {
            self.error = Some(Error::ReplayedInit);
            return Err(InitCheckError::Replayed);
        }
        self.init_checked = true;
        if let Some(f) = self.codec.framing() {
            self.adopt_framing(f);
        }
        Ok(())
    }

    /// DC: the framing the client's init named (inside a carriage the host could not read it before the connection
    /// was built): padding is stripped, and the handshake parsed, by it. Nothing was decoded under the old one.
    fn adopt_framing(&mut self, framing: Framing) {
        if framing == self.transport.framing {
            return;
        }
        self.transport.framing = framing;
        let padded = framing == Framing::PaddedIntermediate;
        if let Some(cfg) = self.dc_hs_cfg.as_mut() {
            cfg.transport_padding = padded;
            if matches!(self.phase, Phase::DcHandshake(_)) {
                self.phase = Phase::DcHandshake(ServerHandshakes::new(cfg.clone()));
            }
        }
    }

    fn new_codec(t: TransportConfig, role: Role, secret: Option<&ProxySecret>, carriage: &C) -> Codec<RX> {
        if carriage.packets() {
            return Codec::packets(role);
        }
        Codec::new(t, role, secret.cloned().or_else(|| carriage.proxy_secret()))
    }

    /// Puts a carriage under the framing (before the first byte is sent or received; it survives
    /// [`reconnect`](Self::reconnect), which opens it again). From then on `handle_input` takes the carriage's
    /// bytes and `poll_transmit` writes them: a host drives every carriage as it drives TCP.
    /// - HTTP ([`crate::carriage::layer::HttpCarriage`]): one packet per body, so the transport must be plain
    ///   intermediate (no obfuscation, no secret). A DC writes only when a request is open to answer; a client's
    ///   `http_wait` ([`http_wait`](Self::http_wait)) is held by the DC's engine up to its `max_wait`.
    /// - fake-TLS ([`crate::carriage::layer::FakeTlsCarriage`]): the transport must be obfuscated, padded
    ///   intermediate; the `ee` secret's key becomes the proxy secret. A DC asks its host for the replay check of the
    ///   ClientHello random ([`HostQuery::ObfuscatedInit`], answered by
    ///   [`check_obfuscated_init`](Self::check_obfuscated_init)) before it answers, and again for the init inside.
    /// - WebSocket ([`crate::carriage::layer::WsCarriage`]): the transport must be obfuscated (any framing, and a
    ///   proxy secret if the host wants one, [`set_proxy_secret`](Self::set_proxy_secret)). A DC takes the framing
    ///   its client's init names (it cannot know it before the upgrade), as it does inside fake-TLS.
    pub fn set_carriage(&mut self, carriage: C) -> Result<(), ProxySecretError> {
        if self.io_started {
            return Err(ProxySecretError::Started);
        }
        let t = self.transport;
        if carriage.packets() && (t.obfuscated || t.framing != Framing::Intermediate || self.secret.is_some()) {
            return Err(ProxySecretError::NotPlainIntermediate);
        }
        if carriage.obfuscated_only() && !t.obfuscated {
            return Err(ProxySecretError::NotObfuscated);
        }
        if carriage.proxy_secret().is_some() && t.framing != Framing::PaddedIntermediate {
            return Err(ProxySecretError::RequiresPadding);
        }
        self.codec = Self::new_codec(t, self.role, self.secret.as_ref(), &carriage);
        self.carriage = carriage;
        Ok(())
    }

    /// The carriage under the framing.
    pub fn carriage(&self) -> &C {
        &self.carriage
    }

    /// The carriage ended the connection (an HTTP request with `Connection: close` was answered): send what
    /// `poll_transmit` wrote, then close the socket.
    pub fn is_finished(&self) -> bool {
        self.carriage.is_finished()
    }

    /// The engine (statistics, clock, salt...), once the session is encrypted.
    pub fn session(&self) -> Option<&Session<RX, TX, MSGS>> {
        matches!(self.phase, Phase::Encrypted).then_some(&self.engine)
    }

    /// The engine, mutably (tests and advanced hosts).
    pub fn session_mut(&mut self) -> Option<&mut Session<RX, TX, MSGS>> {
        matches!(self.phase, Phase::Encrypted).then_some(&mut self.engine)
    }

    /// Counters (all zero during the handshake).
    pub fn stats(&self) -> Stats {
        self.session().map(Session::stats).unwrap_or_default()
    }

    /// The auth key, once it exists.
    pub fn auth_key(&self) -> Option<&AuthKey> {
        self.session().map(Session::auth_key)
    }

    /// Whether the encrypted session runs (the handshake, if any, is done).
    pub fn is_encrypted(&self) -> bool {
        matches!(self.phase, Phase::Encrypted)
    }

    /// Heap bytes this connection holds now: with `alloc`, its receive buffer and its engine's buffers, which grow to
    /// the frames it carries and are given back when idle. Its whole memory is `size_of::<Self>()` plus this (0
    /// without `alloc`, where every buffer is inline at its capacity).
    pub fn heap_bytes(&self) -> usize {
        let rx = if cfg!(feature = "alloc") {
            self.codec.buffer_footprint()
        } else {
            0
        };
        rx + self.session().map_or(0, Session::heap_bytes)
    }

    /// Received frames dropped without effect, handshake frames included (`drops().total()`).
    pub fn frames_dropped(&self) -> u64 {
        self.drops.total()
    }

    /// Received frames dropped without effect, by reason, and the last reason: what a host logs or exports to tell
    /// forged packets, replays and clock or salt trouble apart.
    pub fn drops(&self) -> &super::event::DropCounts {
        &self.drops
    }

    /// Feeds received bytes; returns how many were consumed (at most one frame's worth). Call again with the rest.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.session().is_some_and(Session::must_drain)
            || bytes.is_empty()
            || self.key_ready_event
            || self.parked != Parked::Empty
        {
            return Ok(0);
        }
        if !self.init_checked {
            return self.read_obfuscated_init(now, bytes);
        }
        let framing = self.transport.framing;
        let res = self.carriage.decode(now, &mut self.codec, bytes, usize::MAX);
        let (n, frame) = match res {
            Ok(v) => v,
            Err(e) => return Err(self.fail_carriage(e)),
        };
        self.io_started |= n > 0;
        // An encrypted packet for the engine: its length (padding stripped) and quick-ack flag. It is decrypted in
        // place, in the codec's buffer, once the frame's borrow of the codec ends below.
        let mut to_engine = None;
        match (&mut self.phase, frame) {
            (Phase::Handshake(hs), Some(Frame::Packet { data, .. })) => {
                // A malformed or unexpected handshake message is dropped; the machine decides what is fatal.
                let refused = hs.handle_packet(now, data).is_err();
                self.drops.record_handshake_if(refused);
            }
            (Phase::Handshake(hs), Some(Frame::TransportError(code))) => hs.handle_transport_error(now, code),
            // A client that made a key here but never used it starts a new handshake on this connection (its own
            // check of the key failed: Telethon strips a leading zero byte of g^ab, about 1 key in 256): the DC
            // answers it afresh instead of dropping plaintext forever.
            (Phase::Encrypted, Some(Frame::Packet { data, .. }))
                if self.role == Role::Server
                    && !self.engine.has_session()
                    && self.dc_hs_cfg.is_some()
                    && data.first_chunk::<8>() == Some(&[0u8; 8]) =>
            {
                // Parked where it was received: the frame stays in the codec's buffer until it is answered.
                if let Some(cfg) = self.dc_hs_cfg.clone() {
                    self.parked = Parked::Plain(data.len());
                    self.phase = Phase::DcHandshake(ServerHandshakes::new(cfg));
                    // The unused key goes (wiped in place, as dropping the engine would).
                    self.engine.make_inert(Role::Server);
                }
            }
            (Phase::Encrypted, Some(Frame::Packet { data, quick_ack })) => {
                let data = if framing == Framing::PaddedIntermediate {
                    strip_padding(framing, data).unwrap_or(data)
                } else {
                    data
                };
                to_engine = Some((data.len(), quick_ack));
            }
            (Phase::Encrypted, Some(Frame::QuickAck(token))) => self.engine.handle_quick_ack(token),
            (Phase::Encrypted, Some(Frame::TransportError(code))) => self.engine.handle_transport_error(code),
            (Phase::DcHandshake(_), Some(Frame::Packet { data, .. })) => {
                let key_id = data.first_chunk::<8>().map(|b| u64::from_le_bytes(*b));
                // The handshake table tolerates transport padding itself; an encrypted packet must be stripped, and
                // one that is not 24 + a multiple of 16 (padding on an unpadded framing) is dropped before the host
                // is asked about its key.
                let data = match key_id {
                    Some(0) | None => Some(data),
                    Some(_) => strip_padding(framing, data).ok(),
                };
                // Either way the frame stays where it was received (padding stripped: a prefix of it).
                match (key_id, data) {
                    (Some(id), Some(d)) => {
                        if id == 0 {
                            self.parked = Parked::Plain(d.len());
                        } else {
                            self.parked = Parked::UnknownKey {
                                len: d.len(),
                                key_id: id,
                            };
                            self.host_event = true;
                        }
                    }
                    // No key id, or a padded length on an unpadded framing.
                    (None, _) | (Some(_), None) => self.drops.record(super::event::Dropped::Malformed),
                }
            }
            _ => {}
        }
        if let Some((len, quick_ack)) = to_engine
            && matches!(self.phase, Phase::Encrypted)
        {
            let engine = &mut self.engine;
            let frame = self.codec.idle_buf_mut().get_mut(..len).unwrap_or(&mut []);
            let res = engine.handle_frame(now, frame);
            let unknown = Self::after_packet(engine, &mut self.quick_acks, &mut self.drops, res, quick_ack);
            if let Some((session_id, msg_id)) = unknown {
                // A DC packet naming a session this connection does not serve: the host may hold it in another
                // connection, with the replay state that keeps its messages from running twice. Park and ask. It stays
                // where it was received, decrypted (a prefix of the frame: padding stripped), until the host answers.
                self.parked = Parked::Session {
                    len,
                    session_id,
                    msg_id,
                    quick_ack,
                    decrypted: engine.take_decrypted(),
                };
                self.host_event = true;
                return Ok(n);
            }
        }
        self.after_handshake_step(now);
        self.release_idle();
        Ok(n)
    }

    /// With `alloc`: nothing is parked and nothing of the engine's borrows the receive buffer any more (no event,
    /// held packet or owed answer), so a large receive buffer goes back to the allocator (see [`crate::buffer`]).
    fn release_idle(&mut self) {
        if self.parked == Parked::Empty && !self.session().is_some_and(Session::must_drain) {
            self.codec.release();
        }
    }

    /// Runs the timers due at `now` (an early call does nothing).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match &mut self.phase {
            Phase::Handshake(hs) => hs.handle_timeout(now),
            Phase::Encrypted => self.engine.handle_timeout(now),
            Phase::DcHandshake(hs) => hs.handle_timeout(now),
        }
        self.after_handshake_step(now);
        self.error.map_or(Ok(()), Err)
    }

    /// Moves a finished handshake on: the engine starts on the new key at once (so `send` works right after
    /// [`Event::AuthKeyReady`]); a failure becomes the sticky error.
    fn after_handshake_step(&mut self, now: Instant) {
        let Phase::Handshake(hs) = &mut self.phase else { return };
        match hs.status() {
            Status::Running => {}
            Status::Failed(e) => self.error = Some(Error::Handshake(e)),
            Status::Done => {
                if let Some(o) = hs.take_outcome() {
                    self.start_engine(now, &o);
                    self.key_ready_event = true;
                }
            }
        }
    }

    /// Builds the engine on a fresh key: the handshake's salt, its authenticated server time, and a session id
    /// derived from the new key's secret (unpredictable, unique per key; no RNG needed here). The engine starts in
    /// place (the handshake ends here and goes with its secrets).
    fn start_engine(&mut self, now: Instant, o: &Outcome) {
        let ours = self.cfg.unix_time_hint.unwrap_or(UnixTime(0)).0 as i64;
        let server_unix = UnixTime(u64::try_from(ours.saturating_add(o.server_time_offset)).unwrap_or(0));
        let mut clock = Clock::new(0);
        clock.sync_to_server_time(now, server_unix);
        let mut h = Sha256::new();
        h.update(b"mtproto-sansio session id");
        h.update(o.auth_key.as_bytes());
        h.update(o.server_salt.to_le_bytes());
        let d = h.finalize();
        let mut sid = [0u8; 8];
        if let Some(x) = d.get(..8) {
            sid.copy_from_slice(x);
        }
        self.engine.reset_client_with_session_id(
            self.cfg.engine,
            o.auth_key.clone(),
            o.server_salt,
            clock,
            now,
            u64::from_le_bytes(sid),
        );
        self.phase = Phase::Encrypted;
    }

    /// The size `out` must have for [`poll_transmit`](Self::poll_transmit).
    pub fn min_transmit_len(&self) -> usize {
        let p = Session::<RX, TX, MSGS>::min_out_len_with(self.cfg.engine.padding)
            .max(handshake::MAX_CLIENT_MESSAGE)
            .max(MAX_SERVER_MESSAGE);
        // Worst case over framings: 4-byte header, 15 bytes of padding, 4-byte CRC; or the 64-byte init.
        let inner = (p + 4 + 15 + 4).max(INIT_LEN);
        // And what the carriage adds around it, or needs for its own opening (zero without a carriage).
        (self.carriage.headroom() + inner + self.carriage.overhead(inner)).max(self.carriage.min_out())
    }

    /// Writes the next bytes to send into `out`: the connection's init or marker, a quick-ack token (DC), or one
    /// framed packet. `Ok(None)` when there is nothing to send.
    ///
    /// Packets are sealed straight into `out` after the framing's header room and framed there: the only copy of an
    /// outbound packet is the one the host sends.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        let required = self.min_transmit_len();
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        if self.error.is_some() || self.session().is_some_and(Session::is_closed) {
            return Ok(None);
        }
        let long_poll = self.session().and_then(Session::long_poll).is_some();
        match self.carriage.poll_transmit(now, long_poll, rng, out) {
            Ok(Some(n)) => {
                self.io_started = true;
                return Ok(Some(n));
            }
            Ok(None) => {}
            Err(e) => {
                self.fail_carriage(e);
                return Ok(None);
            }
        }
        if !self.carriage.may_send() {
            return Ok(None);
        }
        let h = self.carriage.headroom();
        let Some((n, kind)) = self.poll_inner(now, rng, out.get_mut(h..).unwrap_or(&mut []))? else {
            return Ok(None);
        };
        match self.carriage.wrap(kind, n, rng, out) {
            Ok(n) => Ok(Some(n)),
            Err(e) => {
                self.fail_carriage(e);
                Ok(None)
            }
        }
    }

    /// `poll_transmit` under the carriage: the codec's next bytes, written into `out` (after the carriage's
    /// headroom), and what they are. Inlined: without a carriage this is `poll_transmit`, with no frame of its own.
    #[inline(always)]
    fn poll_inner<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<(usize, Outbound)>, BufferTooSmall> {
        let data = |n: usize| Some((n, Outbound::Data));
        match Self::open_transport(&mut self.codec, rng, out) {
            Ok(Some(n)) => {
                self.io_started = true;
                return Ok(data(n));
            }
            Ok(None) => {}
            Err(_) => {
                self.error = Some(Error::Transport(TransportError::BadTag));
                return Ok(None);
            }
        }
        if let Some(code) = self.transport_error.take()
            && let Ok(n) = self.codec.encode_error(code, out)
        {
            return Ok(Some((n, Outbound::Error(code))));
        }
        let room = self.codec.headroom();
        if let Parked::Reply(n) = self.parked {
            self.parked = Parked::Empty;
            // The answer waits in the receive buffer; copied once into place (handshake answers are small).
            let copied = match (self.codec.idle_buf().get(..n), out.get_mut(room..room + n)) {
                (Some(src), Some(dst)) => {
                    dst.copy_from_slice(src);
                    true
                }
                _ => false,
            };
            let r = copied.then(|| self.codec.encode_in_place(n, false, rng, out).ok());
            self.release_idle();
            return Ok(r.flatten().and_then(data));
        }
        if let Phase::DcHandshake(_) = self.phase {
            return Ok(self.dc_handshake_step(now, rng, out));
        }
        if let Some(token) = self.quick_acks.pop_front()
            && let Ok(n) = self.codec.encode_quick_ack(token, out)
        {
            return Ok(data(n));
        }
        let body = out.get_mut(room..).unwrap_or(&mut []);
        let rx = self.codec.idle_buf();
        let (len, quick_ack) = match &mut self.phase {
            Phase::Encrypted => match Self::seal(&mut self.engine, now, rng, body, rx)? {
                Some(p) => (p.len, p.quick_ack),
                None => return Ok(None),
            },
            Phase::Handshake(hs) => match Self::handshake_transmit(hs, now, rng, body) {
                Ok(Some(n)) => (n, false),
                Ok(None) => return Ok(None),
                Err(e) => return Err(BufferTooSmall { required: e.required }),
            },
            Phase::DcHandshake(_) => return Ok(None),
        };
        self.after_handshake_step(now);
        let qa = quick_ack && self.transport.framing != Framing::Full;
        match self.codec.encode_in_place(len, qa, rng, out) {
            Ok(n) => Ok(data(n)),
            // Cannot happen with `out` at least `min_transmit_len`; the packet counts as lost and is resent.
            Err(_) => Ok(None),
        }
    }

    // `poll_transmit` calls one of the next three per call. None is inlined into it, so its own frame stays small and
    // the deepest of them (the handshake's DH step, about 20 KiB on a Cortex-M4) is not stacked on the others'
    // locals (the obfuscated codec built on the first call, the packer's layout): stack is the scarce resource on a
    // device (examples/firmware), a call is not.

    /// Client: the connection's opening (the obfuscated init builds a codec).
    #[inline(never)]
    fn open_transport<R: CryptoRng + ?Sized>(
        codec: &mut Codec<RX>,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, crate::transport::obfuscated::InitError> {
        codec.poll_opening(rng, out)
    }

    /// The engine's next packet, sealed into `body`.
    #[inline(never)]
    fn seal<R: CryptoRng + ?Sized>(
        engine: &mut Session<RX, TX, MSGS>,
        now: Instant,
        rng: &mut R,
        body: &mut [u8],
        rx: &[u8],
    ) -> Result<Option<super::engine::Packet>, BufferTooSmall> {
        engine.poll_packet_in(now, rng, body, Some(rx))
    }

    /// The client handshake's next message, written into `body`.
    #[inline(never)]
    fn handshake_transmit<R: CryptoRng + ?Sized>(
        hs: &mut ClientHandshake<'static>,
        now: Instant,
        rng: &mut R,
        body: &mut [u8],
    ) -> Result<Option<usize>, handshake::BufferTooSmall> {
        hs.poll_transmit(now, rng, body)
    }

    /// DC without a key: answers the parked handshake message (if any), writing the reply straight after the
    /// framing's header room in `out` and framing it there; a completed handshake switches to the encrypted session
    /// on the new key.
    // Never inlined into `poll_transmit`: its frame (the DC's handshake: RSA decryption, DH) would be reserved by
    // every `poll_transmit` of a client too, which links this path (the role is chosen at run time).
    #[inline(never)]
    fn dc_handshake_step<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Option<(usize, Outbound)> {
        let Parked::Plain(len) = self.parked else { return None };
        self.parked = Parked::Empty;
        let Phase::DcHandshake(hs) = &mut self.phase else {
            return None;
        };
        let room = self.codec.headroom();
        let msg = self.codec.idle_buf().get(..len).unwrap_or(&[]);
        let reply = out.get_mut(room..).unwrap_or(&mut []);
        // The table's own capacity caps runs; this session is its only peer. Collisions: checked by the host if asked to.
        let step = if self.new_key_check {
            hs.handle_deferred(now, rng, 0, msg, reply)
        } else {
            hs.handle(now, rng, 0, msg, reply, &|_| false).map(ServerStep::Reply)
        };
        let (n, key) = match step {
            Ok(ServerStep::CheckKeyId { key_id }) => {
                self.parked = Parked::NewKey { key_id };
                self.host_event = true;
                return None;
            }
            Ok(ServerStep::Reply(ServerReply::Send(n))) => (n, None),
            Ok(ServerStep::Reply(ServerReply::Complete { len, outcome })) => (len, Some(outcome)),
            Ok(ServerStep::Reply(ServerReply::Error(code))) => {
                self.release_idle();
                return self
                    .codec
                    .encode_error(code, out)
                    .ok()
                    .map(|n| (n, Outbound::Error(code)));
            }
            // `out` holds `min_transmit_len` bytes, more than MAX_SERVER_MESSAGE after the header room.
            Err(_) => return None,
        };
        if let Some(o) = key {
            self.start_new_key_engine(now, o, rng);
        }
        self.release_idle();
        self.codec
            .encode_in_place(n, false, rng, out)
            .ok()
            .map(|n| (n, Outbound::Data))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        if self.key_ready_event && matches!(self.phase, Phase::Encrypted) {
            self.key_ready_event = false;
            return Some(Event::AuthKeyReady);
        }
        if self.host_event {
            // Reported once per parked frame; `host_query` keeps telling until the host answers.
            self.host_event = false;
            match self.host_query() {
                Some(HostQuery::AuthKey { key_id }) => return Some(Event::AuthKeyRequired { key_id }),
                Some(HostQuery::NewAuthKey { key_id }) => return Some(Event::NewAuthKey { key_id }),
                Some(HostQuery::ObfuscatedInit) => return Some(Event::ObfuscatedInit),
                Some(HostQuery::Session { key_id, session_id }) => {
                    return Some(Event::SessionRequired { key_id, session_id });
                }
                None => {}
            }
        }
        if !matches!(self.phase, Phase::Encrypted) {
            return None;
        }
        if self.engine.pending_events() == 0 {
            // Drained: the engine gives its idle buffers back, and so does the codec once nothing borrows its own.
            let _ = self.engine.poll_event_in(None);
            self.release_idle();
            return None;
        }
        // Bodies borrow the receive buffer the packet was decrypted in.
        self.engine.poll_event_in(Some(self.codec.idle_buf()))
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.error.is_some() {
            return None;
        }
        let t = match &self.phase {
            Phase::Encrypted => self.engine.poll_timeout(),
            Phase::Handshake(hs) => hs.poll_timeout(),
            Phase::DcHandshake(hs) => hs.poll_timeout(),
        };
        match (t, self.carriage.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Queues a message; returns its msg_id (every [`MsgKind::Query`] ends in exactly one event naming it).
    pub fn send(&mut self, now: Instant, body: &[u8], kind: MsgKind) -> Result<MsgId, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        match &mut self.phase {
            Phase::Encrypted => self.engine.send(now, body, kind),
            _ => Err(SendError::NotReady),
        }
    }

    /// Client over HTTP: queues `http_wait` (see [`Session::http_wait`]).
    pub fn http_wait(&mut self, now: Instant, wait: crate::tl::HttpWait) -> Result<MsgId, SendError> {
        if self.error.is_some() {
            return Err(SendError::Closed);
        }
        match &mut self.phase {
            Phase::Encrypted => self.engine.http_wait(now, wait),
            _ => Err(SendError::NotReady),
        }
    }

    /// DC: the long poll a client's `http_wait` asked for, while it is held (see [`Session::long_poll`]).
    pub fn long_poll(&self) -> Option<super::LongPoll> {
        self.session().and_then(Session::long_poll)
    }

    /// Client, on a temporary key: queues `auth.bindTempAuthKey` binding it to `perm_key` (see
    /// [`Session::bind_temp_key`]).
    pub fn bind_temp_key<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        perm_key: &AuthKey,
        expires_at: i32,
        rng: &mut R,
    ) -> Result<MsgId, SendError> {
        match &mut self.phase {
            Phase::Encrypted => self.engine.bind_temp_key(now, perm_key, expires_at, rng),
            _ => Err(SendError::NotReady),
        }
    }

    /// Client: drops the current key and connection and starts the auth-key handshake for a new key in place, as
    /// [`client_handshake`](Self::client_handshake) would (`cfg.unix_time_hint` is Unix time at `now`). Used by the
    /// PFS policy ([`super::pfs`]) to re-key without a second session in memory; the host must have ended every
    /// outstanding query first (the engine and its events are discarded).
    pub fn restart_client_handshake(
        &mut self,
        cfg: ConnectionConfig,
        mut hs: handshake::ClientConfig<'static>,
        now: Instant,
    ) {
        let unix_us = cfg.unix_time_hint.unwrap_or(UnixTime(0)).0.saturating_mul(1_000_000);
        hs.unix_micros_at_zero = unix_us.saturating_sub(now.as_micros());
        hs.transport_padding = cfg.transport.framing == Framing::PaddedIntermediate;
        self.cfg = cfg;
        self.transport = cfg.transport;
        self.role = Role::Client;
        // A proxy secret set with `set_proxy_secret` names the proxy, not the key: it stays for the new connection.
        self.carriage.reset();
        self.codec = Self::new_codec(self.transport, Role::Client, self.secret.as_ref(), &self.carriage);
        self.init_checked = true;
        self.io_started = false;
        self.quick_acks.clear();
        self.error = None;
        self.parked = Parked::Empty;
        self.host_event = false;
        self.key_ready_event = false;
        self.transport_error = None;
        self.hs_cfg = Some(hs);
        self.phase = Phase::Handshake(ClientHandshake::new(hs, now));
        // The old key and session go, wiped in place (the engine stays for the next key).
        self.engine.make_inert(Role::Client);
    }

    /// DC: answers a request with `rpc_result`.
    pub fn answer(&mut self, now: Instant, req: MsgId, result: &[u8]) -> Result<MsgId, SendError> {
        match &mut self.phase {
            Phase::Encrypted => self.engine.answer_in(now, req, result, Some(self.codec.idle_buf())),
            _ => Err(SendError::NotReady),
        }
    }

    /// DC: answers a request with `rpc_error`.
    pub fn answer_error(&mut self, now: Instant, req: MsgId, code: i32, message: &[u8]) -> Result<MsgId, SendError> {
        match &mut self.phase {
            Phase::Encrypted => self
                .engine
                .answer_error_in(now, req, code, message, Some(self.codec.idle_buf())),
            _ => Err(SendError::NotReady),
        }
    }

    /// A new transport connection under the same session: the framing restarts (a new init or marker) and every
    /// unacknowledged message is resent. Clears a transport error.
    pub fn reconnect(&mut self, now: Instant) {
        // Events not drained yet borrow the old transport's receive buffer: the engine keeps a copy.
        if matches!(self.phase, Phase::Encrypted) {
            self.engine.detach(self.codec.idle_buf());
        }
        self.carriage.reset();
        self.codec = Self::new_codec(self.transport, self.role, self.secret.as_ref(), &self.carriage);
        self.init_checked = !Self::init_needs_check(self.transport, self.role);
        self.io_started = false;
        self.quick_acks.clear();
        self.error = None;
        self.parked = Parked::Empty;
        self.host_event = false;
        self.transport_error = None;
        match &mut self.phase {
            Phase::Encrypted => self.engine.reconnect(now),
            // A handshake does not survive its connection (item 22): start a new run.
            Phase::Handshake(hs) => {
                if let Some(cfg) = self.hs_cfg {
                    *hs = ClientHandshake::new(cfg, now);
                }
            }
            Phase::DcHandshake(_) => {}
        }
    }

    /// Fails every outstanding query with `Closed` (events follow) and stops sending.
    pub fn close(&mut self) {
        match &mut self.phase {
            Phase::Encrypted => self.engine.close(),
            _ => self.error = Some(Error::Closed),
        }
    }
}
