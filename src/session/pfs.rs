//! Perfect forward secrecy for a client (<https://core.telegram.org/api/pfs>): [`PfsClient`] holds the permanent
//! auth key and never encrypts a message with it. It creates a temporary key (`p_q_inner_data_temp_dc`), binds it with
//! `auth.bindTempAuthKey` (the inner message under the permanent key, docs/CHECKLIST.md item 53), tracks its expiry and
//! replaces it before it runs out, or as soon as the DC shows it lost it.
//!
//! It is a Sans-IO wrapper around one [`Connection`] and speaks the same run-loop verbs (`handle_input`,
//! `handle_timeout`, `poll_transmit`, `poll_event`, `poll_timeout`, `send`, `reconnect`), with one more duty for the
//! host: on [`PfsEvent::NewConnection`] close the socket, open a new one to the same DC and call
//! [`PfsClient::reconnect`]. All randomness comes from the `CryptoRng` passed to `poll_transmit`, all time from the
//! passed [`Instant`]s.
//!
//! # Design choices (and why)
//!
//! - **One key per connection.** A new temporary key is created by the auth-key handshake on a *new* connection:
//!   the DC side of this crate (as tdlib's handshake connections) runs one key per connection, and a key that the DC
//!   forgot is announced by −404 on the connection that used it. The session is restarted in place
//!   ([`Connection::restart_client_handshake`]), so no second session sits in memory.
//! - **What an unbound key may call.** docs/CHECKLIST.md item 53 (after the PFS page): `auth.bindTempAuthKey`,
//!   `help.getConfig` and `help.getNearestDc` ([`UNBOUND_ALLOWED`]). [`inner_method`] finds the method under the
//!   usual wrappers (`invokeWithLayer`, `invokeWithoutUpdates`, `invokeAfterMsg`, `initConnection` with its `params`
//!   skipped), iteratively and bounded ([`tl::invoke`], the reader DC hosts use too); a query whose method it cannot
//!   name (a malformed body, too many wrappers, `params` past the JSON limits) is held, which is always safe. Allowed queries at the head of the hold queue go out as soon as the key exists; every other query waits
//!   for the binding (MTProto service messages: acks, pings, salts, flow regardless).
//! - **Holding is backpressure.** Held queries wait in a bounded FIFO (`HELD` queries, at most `TX` bytes and
//!   [`PfsConfig::max_held_bytes`]); when it is full, [`PfsClient::send`] answers [`SendError::QueueFull`] and keeps
//!   nothing. A held query is never dropped: it is sent once the key is bound, or ends with
//!   [`FailReason::Closed`] if the policy gives up ([`KeyEvent::BindRefused`] `max_bind_failures` times in a row) or
//!   is closed. It was never sent, so the DC never saw it.
//! - **Queries in flight when a key is lost fail with [`FailReason::KeyLost`]; they are not resent.** A DC that
//!   forgot the key (−404), or a key that expired, may have executed them already. A new key is a new session on the
//!   DC: its msg_id replay protection does not cover the old session, so resending would risk executing a query twice.
//!   The policy keeps at-most-once execution per query and leaves the idempotency decision to the host. A query
//!   answered `401 AUTH_KEY_PERM_EMPTY` (the DC lost the binding) was *not* executed: the error is delivered as is,
//!   so the host can safely repeat it, and the policy re-keys.
//! - **Planned re-keys fail nothing.** At expiry minus [`PfsConfig::rekey_margin`] the policy stops sending on the
//!   old key (new queries are held) and waits until the queries in flight end normally; only then it moves to a new
//!   key. If they do not end within [`PfsConfig::drain_timeout`] (or before the key's expiry) the rest fail as lost.
//! - **`ENCRYPTED_MESSAGE_INVALID` for a permanent key older than 60 s** ([`PERM_KEY_PROPAGATION`]) means the DC
//!   does not know the permanent key: the policy gives up at once ([`PfsClient::gave_up`]); the host must drop the
//!   permanent key and create a new one (item 53). A younger key may not have reached every DC yet: a fresh
//!   temporary key is tried, up to [`PfsConfig::max_bind_failures`].
//! - **`401 AUTH_KEY_UNREGISTERED` does not re-key**: it says the *permanent* key is not logged in, which no new
//!   temporary key can fix (re-keying would loop); it is delivered to the host like any error.
//!
//! Every query the host [`send`](PfsClient::send)s ends in exactly one of [`PfsEvent::Result`],
//! [`PfsEvent::Error`] and [`PfsEvent::Failed`], named by the [`QueryId`] `send` returned.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;
use core::time::Duration;

use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::connection::{Connection, ConnectionConfig, Error};
use super::dc_host::ProxySecretError;
use super::engine::{MsgKind, Session};
use super::event::{BufferTooSmall, Event, FailReason, RpcErrorKind, SendError};
use super::msg_id::MsgId;
use crate::crypto::auth_key::AuthKey;
use crate::handshake::{self, ERR_NOT_FOUND, KeyKind};
use crate::time::{Instant, UnixTime};
use crate::tl;
use crate::transport::obfuscated::ProxySecret;

/// The default temporary key lifetime: one day, as the official clients use.
pub const DEFAULT_TEMP_KEY_LIFETIME: u32 = 24 * 3600;

/// Taken off a key's lifetime when the client computes its expiry: the DC starts counting at its own handshake step
/// (up to a round trip before the client sees the key) and the binding's `expires_at` is in whole seconds.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(5);

/// The shortest temporary key lifetime the policy uses (a shorter `temp_key_lifetime` is raised to it): with the
/// [`EXPIRY_SLACK`] taken off and the margin at most half the lifetime, a key still serves a second before the next
/// re-key starts, so a misconfigured lifetime cannot make the policy re-key in a tight loop.
pub const MIN_TEMP_KEY_LIFETIME: u32 = 12;

/// How long a new permanent key may be unknown to a DC (propagation) before `ENCRYPTED_MESSAGE_INVALID` means it
/// is invalid (docs/CHECKLIST.md item 53).
pub const PERM_KEY_PROPAGATION: Duration = Duration::from_secs(60);

/// `help.getConfig#c4f9186b = Config;`
pub const HELP_GET_CONFIG: u32 = 0xc4f9_186b;
/// `help.getNearestDc#1fb33026 = NearestDc;`
pub const HELP_GET_NEAREST_DC: u32 = 0x1fb3_3026;
// The wrappers are read by one implementation, `tl::invoke`, shared with DC hosts; re-exported where they were.
pub use crate::tl::invoke::{
    INIT_CONNECTION, INPUT_CLIENT_PROXY, INVOKE_AFTER_MSG, INVOKE_WITH_LAYER, INVOKE_WITHOUT_UPDATES,
};
/// The application methods an unbound temporary key may call (the binding itself is the policy's own).
pub const UNBOUND_ALLOWED: &[u32] = &[HELP_GET_CONFIG, HELP_GET_NEAREST_DC];
/// Wrappers [`inner_method`] looks through before giving up.
pub const MAX_WRAPPERS: usize = 4;

/// Why [`inner_method`] could not name a query's method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InnerMethodError {
    /// The body ended inside a field.
    Truncated,
    /// More than [`MAX_WRAPPERS`] wrappers.
    TooDeep,
    /// A wrapper is malformed: an unknown proxy or `params` JSON constructor, a bad length, or `params` beyond
    /// [`tl::invoke::MAX_JSON_DEPTH`] / [`tl::invoke::MAX_JSON_VALUES`].
    Opaque,
}

impl fmt::Display for InnerMethodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InnerMethodError::Truncated => "query truncated",
            InnerMethodError::TooDeep => "too many wrappers",
            InnerMethodError::Opaque => "malformed wrapper",
        })
    }
}

impl core::error::Error for InnerMethodError {}

/// The constructor of the method a serialized query invokes, looking through at most [`MAX_WRAPPERS`]
/// `invokeWithLayer` / `invokeWithoutUpdates` / `invokeAfterMsg` / `initConnection` wrappers
/// ([`tl::invoke::unwrap`]). Iterative, no allocation.
pub fn inner_method(body: &[u8]) -> Result<u32, InnerMethodError> {
    use tl::invoke::UnwrapError;
    match tl::invoke::unwrap(body, MAX_WRAPPERS) {
        Ok(u) => Ok(u.method),
        Err(UnwrapError::TooManyWrappers) => Err(InnerMethodError::TooDeep),
        Err(UnwrapError::JsonTooLarge) => Err(InnerMethodError::Opaque),
        Err(UnwrapError::Decode(
            tl::DecodeError::Eof | tl::DecodeError::LengthPastEnd | tl::DecodeError::BadLength,
        )) => Err(InnerMethodError::Truncated),
        Err(UnwrapError::Decode(_)) => Err(InnerMethodError::Opaque),
    }
}

/// Whether an unbound temporary key may carry this query ([`UNBOUND_ALLOWED`] under the usual wrappers).
pub fn allowed_unbound(body: &[u8]) -> bool {
    inner_method(body).is_ok_and(|m| UNBOUND_ALLOWED.contains(&m))
}

/// Notices the policy reports besides session events (failures it generates itself) before it waits for room.
pub const MAX_POLICY_FAILURES: usize = 4;

/// The policy's settings.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PfsConfig {
    /// The session every temporary key runs (its `unix_time_hint` is the host's Unix time at construction).
    pub session: ConnectionConfig,
    /// The handshake that creates temporary keys (its `kind` is replaced by a temporary key of
    /// [`temp_key_lifetime`](Self::temp_key_lifetime)).
    pub handshake: handshake::ClientConfig<'static>,
    /// Seconds each temporary key lives (`expires_in`, and the binding's `expires_at` minus now); at least
    /// [`MIN_TEMP_KEY_LIFETIME`].
    pub temp_key_lifetime: u32,
    /// How long before the key's expiry the policy starts moving to a new key (clamped to half the lifetime).
    pub rekey_margin: Duration,
    /// How long a planned re-key waits for queries in flight on the old key to end.
    pub drain_timeout: Duration,
    /// Consecutive failed bindings (each on a fresh key) after which the policy gives up.
    pub max_bind_failures: u8,
    /// Bytes of held query bodies (further capped by the `TX` arena).
    pub max_held_bytes: usize,
    /// When the permanent key was created, if within the host's memory (`None`: long ago, a stored key). Decides
    /// what `ENCRYPTED_MESSAGE_INVALID` means (see [`PERM_KEY_PROPAGATION`]).
    pub perm_key_created: Option<Instant>,
}

impl PfsConfig {
    /// Defaults: a one-day key, re-keyed 5 minutes before expiry, 60 s to drain, 3 bind attempts.
    pub const fn new(session: ConnectionConfig, handshake: handshake::ClientConfig<'static>) -> Self {
        PfsConfig {
            session,
            handshake,
            temp_key_lifetime: DEFAULT_TEMP_KEY_LIFETIME,
            rekey_margin: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(60),
            max_bind_failures: 3,
            max_held_bytes: usize::MAX,
            perm_key_created: None,
        }
    }

    fn lifetime_secs(&self) -> u32 {
        self.temp_key_lifetime.max(MIN_TEMP_KEY_LIFETIME)
    }

    fn lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.lifetime_secs()))
    }

    fn margin(&self) -> Duration {
        self.rekey_margin.min(self.lifetime() / 2)
    }
}

/// Names a query sent through [`PfsClient::send`] (a held query has no msg_id yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryId(pub u64);

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query #{}", self.0)
    }
}

/// Why the DC did not bind a temporary key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BindRefusal {
    /// The DC answered `boolFalse`.
    False,
    /// The answer was neither `boolTrue` nor `boolFalse`.
    MalformedAnswer,
    /// `400 ENCRYPTED_MESSAGE_INVALID`: the DC could not verify the binding message.
    EncryptedMessageInvalid,
    /// `400 TEMP_AUTH_KEY_EMPTY`: no temporary key was provided.
    TempAuthKeyEmpty,
    /// `400 TEMP_AUTH_KEY_ALREADY_BOUND`: the temporary key is bound to another permanent key.
    TempAuthKeyAlreadyBound,
    /// `400 EXPIRES_AT_INVALID`: the expiry was refused.
    ExpiresAtInvalid,
    /// `401 AUTH_KEY_PERM_EMPTY` or any other error.
    Other {
        /// The error code.
        code: i32,
    },
    /// The request ended without an answer.
    NoAnswer(FailReason),
}

impl BindRefusal {
    /// Classifies an `rpc_error` answering `auth.bindTempAuthKey`.
    pub fn from_rpc_error(code: i32, message: &[u8]) -> BindRefusal {
        match (code, message) {
            (400, b"ENCRYPTED_MESSAGE_INVALID") => BindRefusal::EncryptedMessageInvalid,
            (400, b"TEMP_AUTH_KEY_EMPTY") => BindRefusal::TempAuthKeyEmpty,
            (400, b"TEMP_AUTH_KEY_ALREADY_BOUND") => BindRefusal::TempAuthKeyAlreadyBound,
            (400, b"EXPIRES_AT_INVALID") => BindRefusal::ExpiresAtInvalid,
            _ => BindRefusal::Other { code },
        }
    }
}

impl fmt::Display for BindRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindRefusal::False => f.write_str("binding answered boolFalse"),
            BindRefusal::MalformedAnswer => f.write_str("binding answer is not a Bool"),
            BindRefusal::EncryptedMessageInvalid => f.write_str("ENCRYPTED_MESSAGE_INVALID"),
            BindRefusal::TempAuthKeyEmpty => f.write_str("TEMP_AUTH_KEY_EMPTY"),
            BindRefusal::TempAuthKeyAlreadyBound => f.write_str("TEMP_AUTH_KEY_ALREADY_BOUND"),
            BindRefusal::ExpiresAtInvalid => f.write_str("EXPIRES_AT_INVALID"),
            BindRefusal::Other { code } => write!(f, "binding refused with error {code}"),
            BindRefusal::NoAnswer(r) => write!(f, "binding got no answer: {r}"),
        }
    }
}

impl core::error::Error for BindRefusal {}

/// Why the policy moves to a new temporary key (and a new connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RekeyReason {
    /// The key is about to expire (planned; the queries in flight ended first, or the drain timed out).
    Expiring,
    /// The DC answered the transport error −404: it does not know the key (expired early, DC restarted).
    NotFound,
    /// The DC answered `401 AUTH_KEY_PERM_EMPTY`: the key is no longer bound.
    Unbound,
    /// The binding failed; a fresh key is tried.
    BindFailed(BindRefusal),
}

/// Progress of the temporary key, reported as [`PfsEvent::Key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyEvent {
    /// The handshake created a temporary key (kept in RAM only, as the spec advises); the binding follows.
    Created,
    /// The key is bound; held queries go out now.
    Bound {
        /// Unix time the binding (and the key) expires.
        expires_at: i32,
    },
    /// The DC refused the binding (a new key follows, unless [`PfsClient::gave_up`] says otherwise).
    BindRefused(BindRefusal),
    /// The binding request was refused by a `bad_msg_notification` that needs a new msg_id: rebuilt and resent.
    BindRebuilt,
    /// The answer (or failure) of a binding the policy had already abandoned (its key expired or was lost while it
    /// was in flight); ignored.
    StaleBind,
}

/// What the policy tells its host. Bodies borrow the session's receive buffers until the next `&mut` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PfsEvent<'a> {
    /// The answer to `query`.
    Result {
        /// The query.
        query: QueryId,
        /// The serialized result.
        body: &'a [u8],
    },
    /// `query` failed with an `rpc_error`.
    Error {
        /// The query.
        query: QueryId,
        /// The error code.
        code: i32,
        /// The message as sent.
        message: &'a [u8],
        /// The message decoded where its shape is known.
        kind: RpcErrorKind,
    },
    /// `query` ended without an answer ([`FailReason::KeyLost`]: its key was lost; see the module docs).
    Failed {
        /// The query.
        query: QueryId,
        /// Why.
        reason: FailReason,
    },
    /// An update from the DC.
    Update(&'a [u8]),
    /// The DC created a new session for this key (updates may have been lost).
    SessionReset,
    /// A transport error code (−404 makes the policy re-key).
    TransportError(i32),
    /// Temporary-key progress.
    Key(KeyEvent),
    /// Close the socket, open a new one to the same DC, then call [`PfsClient::reconnect`]: a new key is created on
    /// it. Bytes still arriving on the old socket belong to the abandoned key and must not be fed.
    NewConnection(RekeyReason),
    /// The session reported something that names none of the policy's queries (a client session never does).
    Unmatched,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The handshake creates the temporary key.
    Creating,
    /// The key exists; the binding goes out at the next `poll_transmit` (it needs the RNG).
    BindDue { expiry: Instant },
    /// The binding is in flight.
    Binding {
        req: MsgId,
        expires_at: i32,
        expiry: Instant,
    },
    /// Bound: application queries flow.
    Bound {
        expires_at: i32,
        expiry: Instant,
        rekey_at: Instant,
    },
    /// A planned re-key: new queries are held until the ones in flight end or `deadline` passes.
    Draining { expires_at: i32, deadline: Instant },
    /// The key is abandoned: the session's remaining events are delivered, the queries still in flight fail as
    /// lost, then the session restarts on a new connection.
    Switching(RekeyReason),
    /// The session restarted; waiting for the host's new connection (`reconnect`).
    AwaitConnection,
    /// Binding failed `max_bind_failures` times in a row: held queries end with `Closed`, sends are refused.
    GaveUp(BindRefusal),
    /// The host closed the policy.
    Closed,
}

/// A client session under perfect forward secrecy: a permanent key that only signs bindings, and temporary keys that
/// carry every message. See the module docs for the run loop and the choices it makes.
///
/// `HELD` bounds the queries held while no key is bound (their bodies share a `TX`-byte buffer).
pub struct PfsClient<const RX: usize = 16_384, const TX: usize = 16_384, const MSGS: usize = 32, const HELD: usize = 16>
{
    session: Connection<RX, TX, MSGS>,
    cfg: PfsConfig,
    perm: AuthKey,
    state: State,
    next_query: u64,
    inflight: heapless::Vec<(MsgId, QueryId), MSGS>,
    held: heapless::Deque<(QueryId, usize), HELD>,
    held_buf: [u8; TX],
    held_used: usize,
    failed: heapless::Deque<(QueryId, FailReason), MAX_POLICY_FAILURES>,
    bind_failures: u8,
    /// The msg_id of the last binding sent on the current key.
    bind_req: Option<MsgId>,
    last_now: Instant,
    /// Unix time (seconds) at an instant, for the next handshake's time hint.
    unix_base: (Instant, u64),
    keys_created: u64,
    binds: u64,
}

impl<const RX: usize, const TX: usize, const MSGS: usize, const HELD: usize> Drop for PfsClient<RX, TX, MSGS, HELD> {
    fn drop(&mut self) {
        // Held bodies are application plaintext.
        self.held_buf.zeroize();
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize, const HELD: usize> fmt::Debug
    for PfsClient<RX, TX, MSGS, HELD>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PfsClient")
            .field("state", &self.state)
            .field("perm_key_id", &self.perm.id())
            .field("in_flight", &self.inflight.len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl<const RX: usize, const TX: usize, const MSGS: usize, const HELD: usize> PfsClient<RX, TX, MSGS, HELD> {
    /// A client that will create and bind a temporary key for `perm_key` on the host's first connection.
    pub fn new(cfg: PfsConfig, perm_key: AuthKey, now: Instant) -> Self {
        let unix = cfg.session.unix_time_hint.unwrap_or(UnixTime(0)).0;
        PfsClient {
            session: Connection::client_handshake(cfg.session, Self::temp_handshake(&cfg), now),
            cfg,
            perm: perm_key,
            state: State::Creating,
            next_query: 1,
            inflight: heapless::Vec::new(),
            held: heapless::Deque::new(),
            held_buf: [0; TX],
            held_used: 0,
            failed: heapless::Deque::new(),
            bind_failures: 0,
            bind_req: None,
            last_now: now,
            unix_base: (now, unix),
            keys_created: 0,
            binds: 0,
        }
    }

    fn temp_handshake(cfg: &PfsConfig) -> handshake::ClientConfig<'static> {
        let mut hs = cfg.handshake;
        hs.kind = KeyKind::Temporary {
            expires_in: cfg.lifetime_secs(),
        };
        hs
    }

    /// The session of the current temporary key (statistics, the key's id...).
    pub fn session(&self) -> &Connection<RX, TX, MSGS> {
        &self.session
    }

    /// The MTProxy secret of the obfuscated transport ([`Connection::set_proxy_secret`]): 16 bytes, or `dd` + 16 (the
    /// config's framing must then be `PaddedIntermediate`). It names the proxy, not the key: every connection the
    /// policy opens, including each re-key's new one, uses it. Set it before the first byte; between connections
    /// (after [`PfsEvent::NewConnection`], before [`reconnect`](Self::reconnect)) a re-key's new connection has
    /// not started, so a host may switch proxies there.
    pub fn set_proxy_secret(&mut self, secret: Option<ProxySecret>) -> Result<(), ProxySecretError> {
        self.session.set_proxy_secret(secret)
    }

    /// The permanent key's id.
    pub fn perm_key_id(&self) -> u64 {
        self.perm.id()
    }

    /// Whether the current temporary key is bound (application queries flow).
    pub fn is_bound(&self) -> bool {
        matches!(self.state, State::Bound { .. })
    }

    /// Unix time the current binding expires, once bound.
    pub fn expires_at(&self) -> Option<i32> {
        match self.state {
            State::Bound { expires_at, .. } | State::Draining { expires_at, .. } => Some(expires_at),
            _ => None,
        }
    }

    /// Queries held (waiting for a bound key).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Queries sent under the current key and not ended yet.
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Temporary keys created so far.
    pub fn keys_created(&self) -> u64 {
        self.keys_created
    }

    /// Successful bindings so far.
    pub fn binds(&self) -> u64 {
        self.binds
    }

    /// Set once binding failed [`PfsConfig::max_bind_failures`] times in a row: the policy is stopped (sends answer
    /// `Closed`); build a new one to try again.
    pub fn gave_up(&self) -> Option<BindRefusal> {
        match self.state {
            State::GaveUp(r) => Some(r),
            _ => None,
        }
    }

    /// The size `out` must have for [`poll_transmit`](Self::poll_transmit).
    pub fn min_transmit_len(&self) -> usize {
        self.session.min_transmit_len()
    }

    /// Feeds received bytes (see [`Connection::handle_input`]).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error> {
        self.last_now = now;
        if self.state == State::AwaitConnection {
            // The old connection's bytes: its key is abandoned.
            return Ok(bytes.len());
        }
        let r = self.session.handle_input(now, bytes);
        self.step(now);
        r
    }

    /// Runs the timers due at `now`: the session's, and the key's re-key and expiry.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.last_now = now;
        if self.state == State::AwaitConnection {
            return Ok(());
        }
        let r = self.session.handle_timeout(now);
        match self.state {
            State::Bound {
                expires_at,
                expiry,
                rekey_at,
            } if now >= rekey_at => {
                let deadline = now.saturating_add(self.cfg.drain_timeout).min(expiry);
                self.state = State::Draining { expires_at, deadline };
            }
            State::Draining { deadline, .. } if now >= deadline => self.state = State::Switching(RekeyReason::Expiring),
            State::BindDue { expiry } | State::Binding { expiry, .. } if now >= expiry => {
                self.state = State::Switching(RekeyReason::Expiring)
            }
            _ => {}
        }
        self.step(now);
        r
    }

    /// Moves held queries out and ends a finished drain.
    fn step(&mut self, now: Instant) {
        match self.state {
            State::Bound { .. } | State::BindDue { .. } | State::Binding { .. } => {
                let bound = matches!(self.state, State::Bound { .. });
                while let Some(&(q, len)) = self.held.front() {
                    if self.inflight.is_full() {
                        break;
                    }
                    let body = self.held_buf.get(..len).unwrap_or(&[]);
                    // Unbound: only allowed methods, from the head (the queue's order is kept).
                    if !bound && !allowed_unbound(body) {
                        break;
                    }
                    match self.session.send(now, body, MsgKind::Query) {
                        Ok(id) => {
                            let _ = self.inflight.push((id, q));
                        }
                        Err(SendError::QueueFull) => break,
                        Err(_) => {
                            // Cannot happen (checked when held); the query still ends, once.
                            if self.failed.push_back((q, FailReason::Closed)).is_err() {
                                break;
                            }
                        }
                    }
                    self.pop_held();
                }
            }
            State::Draining { .. } if self.inflight.is_empty() => {
                self.state = State::Switching(RekeyReason::Expiring);
            }
            _ => {}
        }
    }

    fn pop_held(&mut self) -> Option<QueryId> {
        let (q, len) = self.held.pop_front()?;
        self.held_buf.copy_within(len..self.held_used, 0);
        self.held_used -= len;
        // The tail held a body that moved: wipe it.
        if let Some(tail) = self.held_buf.get_mut(self.held_used..self.held_used + len) {
            tail.zeroize();
        }
        Some(q)
    }

    /// Writes the next bytes to send (see [`Connection::poll_transmit`]); sends the binding when the key is ready.
    pub fn poll_transmit<R: CryptoRng + ?Sized>(
        &mut self,
        now: Instant,
        rng: &mut R,
        out: &mut [u8],
    ) -> Result<Option<usize>, BufferTooSmall> {
        self.last_now = now;
        let required = self.session.min_transmit_len();
        if out.len() < required {
            return Err(BufferTooSmall { required });
        }
        // Allowed queries held while there was no key go out first (on the wire before the binding).
        self.step(now);
        match self.state {
            State::AwaitConnection | State::Switching(_) | State::GaveUp(_) | State::Closed => return Ok(None),
            State::BindDue { expiry } => {
                if let Some(unix) = self.session.session().map(|e| e.clock().unix_time(now).0) {
                    let exp = unix.saturating_add(u64::from(self.cfg.lifetime_secs()));
                    let expires_at = i32::try_from(exp).unwrap_or(i32::MAX);
                    match self.session.bind_temp_key(now, &self.perm, expires_at, rng) {
                        Ok(req) => {
                            self.bind_req = Some(req);
                            self.state = State::Binding {
                                req,
                                expires_at,
                                expiry,
                            }
                        }
                        // Room comes back as acks arrive.
                        Err(SendError::QueueFull) => {}
                        Err(_) => self.refuse(BindRefusal::NoAnswer(FailReason::Closed)),
                    }
                }
            }
            _ => {}
        }
        self.step(now);
        self.session.poll_transmit(now, rng, out)
    }

    /// Counts a failed binding: a fresh key, or giving up.
    fn refuse(&mut self, r: BindRefusal) {
        self.bind_failures = self.bind_failures.saturating_add(1);
        self.state = if self.bind_failures >= self.cfg.max_bind_failures.max(1)
            || perm_key_invalid(&self.cfg, r, self.last_now)
        {
            State::GaveUp(r)
        } else {
            State::Switching(RekeyReason::BindFailed(r))
        };
    }

    /// The next event. Every query ends in exactly one `Result`, `Error` or `Failed` naming it.
    pub fn poll_event(&mut self) -> Option<PfsEvent<'_>> {
        // Whether the session has an event: a client session's are the engine's queue and, right after the
        // handshake, `AuthKeyReady` (seen exactly once, in `Creating`). Checked first because a borrow returned from
        // `Connection::poll_event` cannot be given up conditionally.
        let key_ready = self.state == State::Creating && self.session.is_encrypted();
        let engine_events = self.session.session().is_some_and(|e| e.pending_events() > 0);
        if self.state != State::AwaitConnection && (key_ready || engine_events) {
            let mut t = Translate {
                state: &mut self.state,
                inflight: &mut self.inflight,
                bind_failures: &mut self.bind_failures,
                bind_req: self.bind_req,
                binds: &mut self.binds,
                keys_created: &mut self.keys_created,
                cfg: &self.cfg,
                now: self.last_now,
            };
            return self.session.poll_event().map(|ev| t.translate(ev));
        }
        self.policy_event()
    }

    /// Events the policy generates itself, once the session has none left.
    fn policy_event(&mut self) -> Option<PfsEvent<'static>> {
        if let Some((query, reason)) = self.failed.pop_front() {
            return Some(PfsEvent::Failed { query, reason });
        }
        match self.state {
            State::Switching(reason) => {
                if let Some((_, query)) = self.inflight.pop() {
                    return Some(PfsEvent::Failed {
                        query,
                        reason: FailReason::KeyLost,
                    });
                }
                self.restart();
                Some(PfsEvent::NewConnection(reason))
            }
            State::GaveUp(_) | State::Closed => {
                if let Some((_, query)) = self.inflight.pop() {
                    return Some(PfsEvent::Failed {
                        query,
                        reason: FailReason::Closed,
                    });
                }
                self.pop_held().map(|query| PfsEvent::Failed {
                    query,
                    reason: FailReason::Closed,
                })
            }
            _ => None,
        }
    }

    /// Starts the handshake for a new key, in place, with the best Unix time estimate as the hint.
    fn restart(&mut self) {
        let now = self.last_now;
        let unix = match self.session.session() {
            Some(e) => e.clock().unix_time(now).0,
            None => self
                .unix_base
                .1
                .saturating_add(now.saturating_duration_since(self.unix_base.0).as_secs()),
        };
        self.unix_base = (now, unix);
        let mut scfg = self.cfg.session;
        scfg.unix_time_hint = Some(UnixTime(unix));
        self.session
            .restart_client_handshake(scfg, Self::temp_handshake(&self.cfg), now);
        self.bind_req = None;
        self.state = State::AwaitConnection;
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: the session's timers, the re-key instant, the
    /// drain deadline, or now if a binding or held queries are ready to go.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let own = match self.state {
            State::AwaitConnection | State::GaveUp(_) | State::Closed => return None,
            State::BindDue { .. } => Some(self.last_now),
            State::Bound { .. } if !self.held.is_empty() => Some(self.last_now),
            State::Bound { rekey_at, .. } => Some(rekey_at),
            State::Draining { deadline, .. } => Some(deadline),
            State::Binding { expiry, .. } => Some(expiry),
            State::Creating | State::Switching(_) => None,
        };
        match (own, self.session.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Queues a query; it is sent at once on a bound key (or, for [`UNBOUND_ALLOWED`] methods, on an unbound one),
    /// or held (in order) until one is bound. A full hold queue or session is backpressure: `QueueFull`, nothing
    /// kept.
    pub fn send(&mut self, now: Instant, body: &[u8]) -> Result<QueryId, SendError> {
        self.last_now = now;
        if matches!(self.state, State::GaveUp(_) | State::Closed) {
            return Err(SendError::Closed);
        }
        if body.len() > Session::<RX, TX, MSGS>::max_body() || !body.len().is_multiple_of(4) {
            return Err(SendError::TooLarge);
        }
        let query = QueryId(self.next_query);
        let direct = match self.state {
            State::Bound { .. } => true,
            State::BindDue { .. } | State::Binding { .. } => allowed_unbound(body),
            _ => false,
        };
        if direct && self.held.is_empty() {
            if self.inflight.is_full() {
                return Err(SendError::QueueFull);
            }
            let id = self.session.send(now, body, MsgKind::Query)?;
            let _ = self.inflight.push((id, query));
        } else {
            let cap = self.cfg.max_held_bytes.min(TX);
            let end = self.held_used + body.len();
            if self.held.is_full() || end > cap {
                return Err(SendError::QueueFull);
            }
            let Some(dst) = self.held_buf.get_mut(self.held_used..end) else {
                return Err(SendError::QueueFull);
            };
            dst.copy_from_slice(body);
            self.held_used = end;
            let _ = self.held.push_back((query, body.len()));
        }
        self.next_query += 1;
        Ok(query)
    }

    /// The host opened a new connection: after [`PfsEvent::NewConnection`] the new key's handshake starts on it;
    /// otherwise the current session resends its unacknowledged messages on it (see [`Connection::reconnect`]).
    pub fn reconnect(&mut self, now: Instant) {
        self.last_now = now;
        if self.state == State::AwaitConnection {
            self.state = State::Creating;
        } else {
            self.session.reconnect(now);
        }
        self.step(now);
    }

    /// Ends every query: those in flight and those held fail with `Closed` (events follow); sends are refused.
    pub fn close(&mut self) {
        self.session.close();
        self.state = State::Closed;
    }
}

/// `ENCRYPTED_MESSAGE_INVALID` for a permanent key past its propagation time: the DC does not know it.
fn perm_key_invalid(cfg: &PfsConfig, r: BindRefusal, now: Instant) -> bool {
    r == BindRefusal::EncryptedMessageInvalid
        && cfg
            .perm_key_created
            .is_none_or(|t| now.saturating_duration_since(t) >= PERM_KEY_PROPAGATION)
}

/// The disjoint parts of the policy a session event updates (the event itself borrows the session).
struct Translate<'p, const MSGS: usize> {
    state: &'p mut State,
    inflight: &'p mut heapless::Vec<(MsgId, QueryId), MSGS>,
    bind_failures: &'p mut u8,
    bind_req: Option<MsgId>,
    binds: &'p mut u64,
    keys_created: &'p mut u64,
    cfg: &'p PfsConfig,
    now: Instant,
}

impl<const MSGS: usize> Translate<'_, MSGS> {
    /// Maps one session event to exactly one policy event, updating the key's state on the way.
    fn translate<'a>(&mut self, ev: Event<'a>) -> PfsEvent<'a> {
        match ev {
            Event::RpcResult { req, body } => {
                if self.stale_bind(req) {
                    return PfsEvent::Key(KeyEvent::StaleBind);
                }
                if let State::Binding {
                    req: b,
                    expires_at,
                    expiry,
                } = *self.state
                    && b == req
                {
                    return match body.first_chunk::<4>().map(|c| u32::from_le_bytes(*c)) {
                        Some(tl::BOOL_TRUE) => {
                            *self.bind_failures = 0;
                            *self.binds += 1;
                            let left = expiry.saturating_duration_since(self.now);
                            let rekey_at = self.now.saturating_add(left.saturating_sub(self.cfg.margin()));
                            *self.state = State::Bound {
                                expires_at,
                                expiry,
                                rekey_at,
                            };
                            PfsEvent::Key(KeyEvent::Bound { expires_at })
                        }
                        Some(tl::BOOL_FALSE) => self.refuse(BindRefusal::False),
                        _ => self.refuse(BindRefusal::MalformedAnswer),
                    };
                }
                match self.take(req) {
                    Some(query) => PfsEvent::Result { query, body },
                    None => PfsEvent::Unmatched,
                }
            }
            Event::RpcError {
                req,
                code,
                message,
                kind,
            } => {
                if self.stale_bind(req) {
                    return PfsEvent::Key(KeyEvent::StaleBind);
                }
                if self.is_bind(req) {
                    return self.refuse(BindRefusal::from_rpc_error(code, message));
                }
                match self.take(req) {
                    Some(query) => {
                        if code == 401 && message == b"AUTH_KEY_PERM_EMPTY" {
                            self.lose(RekeyReason::Unbound);
                        }
                        PfsEvent::Error {
                            query,
                            code,
                            message,
                            kind,
                        }
                    }
                    None => PfsEvent::Unmatched,
                }
            }
            Event::Failed { req, reason } => {
                if self.stale_bind(req) {
                    return PfsEvent::Key(KeyEvent::StaleBind);
                }
                if self.is_bind(req) {
                    if reason == FailReason::MustRebuild
                        && let State::Binding { expiry, .. } = *self.state
                    {
                        *self.state = State::BindDue { expiry };
                        return PfsEvent::Key(KeyEvent::BindRebuilt);
                    }
                    return self.refuse(BindRefusal::NoAnswer(reason));
                }
                match self.take(req) {
                    Some(query) => PfsEvent::Failed { query, reason },
                    None => PfsEvent::Unmatched,
                }
            }
            Event::Update(b) => PfsEvent::Update(b),
            Event::SessionReset { .. } => PfsEvent::SessionReset,
            Event::TransportError(code) => {
                if code == ERR_NOT_FOUND {
                    self.lose(RekeyReason::NotFound);
                }
                PfsEvent::TransportError(code)
            }
            Event::AuthKeyReady => {
                if *self.state != State::Creating {
                    return PfsEvent::Unmatched;
                }
                *self.keys_created += 1;
                *self.state = State::BindDue {
                    expiry: self
                        .now
                        .saturating_add(self.cfg.lifetime().saturating_sub(EXPIRY_SLACK)),
                };
                PfsEvent::Key(KeyEvent::Created)
            }
            Event::Request { .. }
            | Event::SessionCreated { .. }
            | Event::DisconnectRequested
            | Event::AuthKeyRequired { .. }
            | Event::NewAuthKey { .. }
            | Event::ObfuscatedInit
            | Event::SessionRequired { .. } => PfsEvent::Unmatched,
        }
    }

    /// A binding sent on this key whose answer no longer matters (the policy moved on while it was in flight).
    fn stale_bind(&self, req: MsgId) -> bool {
        self.bind_req == Some(req) && !self.is_bind(req)
    }

    fn is_bind(&self, req: MsgId) -> bool {
        matches!(*self.state, State::Binding { req: b, .. } if b == req)
    }

    /// Ends a tracked query; a drain that ran empty moves on to the new key.
    fn take(&mut self, req: MsgId) -> Option<QueryId> {
        let i = self.inflight.iter().position(|&(id, _)| id == req)?;
        let (_, q) = self.inflight.swap_remove(i);
        if self.inflight.is_empty() && matches!(*self.state, State::Draining { .. }) {
            *self.state = State::Switching(RekeyReason::Expiring);
        }
        Some(q)
    }

    /// The key is gone: abandon it (unless that is already under way or the policy stopped).
    fn lose(&mut self, reason: RekeyReason) {
        if matches!(
            *self.state,
            State::BindDue { .. } | State::Binding { .. } | State::Bound { .. } | State::Draining { .. }
        ) {
            *self.state = State::Switching(reason);
        }
    }

    fn refuse(&mut self, r: BindRefusal) -> PfsEvent<'static> {
        *self.bind_failures = self.bind_failures.saturating_add(1);
        *self.state =
            if *self.bind_failures >= self.cfg.max_bind_failures.max(1) || perm_key_invalid(self.cfg, r, self.now) {
                State::GaveUp(r)
            } else {
                State::Switching(RekeyReason::BindFailed(r))
            };
        PfsEvent::Key(KeyEvent::BindRefused(r))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_short_lifetime_is_raised_so_rekeys_cannot_loop() {
        for (lifetime, margin) in [(0, 300), (1, 300), (5, 1), (MIN_TEMP_KEY_LIFETIME, 300)] {
            let mut cfg = PfsConfig::new(ConnectionConfig::DEFAULT, handshake::ClientConfig::new(&[], 2));
            cfg.temp_key_lifetime = lifetime;
            cfg.rekey_margin = Duration::from_secs(margin);
            assert_eq!(cfg.lifetime_secs(), MIN_TEMP_KEY_LIFETIME);
            // The key serves at least a second between its creation and the start of the next re-key.
            let serves = cfg.lifetime().saturating_sub(EXPIRY_SLACK).saturating_sub(cfg.margin());
            assert!(serves >= Duration::from_secs(1), "lifetime {lifetime}: {serves:?}");
        }
        let mut cfg = PfsConfig::new(ConnectionConfig::DEFAULT, handshake::ClientConfig::new(&[], 2));
        cfg.temp_key_lifetime = 3600;
        assert_eq!(cfg.lifetime_secs(), 3600);
    }

    fn string(w: &mut heapless::Vec<u8, 256>, s: &[u8]) {
        w.push(s.len() as u8).unwrap();
        w.extend_from_slice(s).unwrap();
        while !w.len().is_multiple_of(4) {
            w.push(0).unwrap();
        }
    }

    fn init_connection(flags: u32, proxy: bool, inner: u32) -> heapless::Vec<u8, 256> {
        let mut w = heapless::Vec::new();
        w.extend_from_slice(&INVOKE_WITH_LAYER.to_le_bytes()).unwrap();
        w.extend_from_slice(&214i32.to_le_bytes()).unwrap();
        w.extend_from_slice(&INIT_CONNECTION.to_le_bytes()).unwrap();
        w.extend_from_slice(&flags.to_le_bytes()).unwrap();
        w.extend_from_slice(&12345i32.to_le_bytes()).unwrap();
        for s in [&b"device"[..], b"os", b"1.0", b"en", b"", b"en"] {
            string(&mut w, s);
        }
        if proxy {
            w.extend_from_slice(&INPUT_CLIENT_PROXY.to_le_bytes()).unwrap();
            string(&mut w, b"proxy.example");
            w.extend_from_slice(&443i32.to_le_bytes()).unwrap();
        }
        w.extend_from_slice(&inner.to_le_bytes()).unwrap();
        w
    }

    #[test]
    fn inner_method_through_wrappers() {
        assert_eq!(inner_method(&HELP_GET_CONFIG.to_le_bytes()), Ok(HELP_GET_CONFIG));
        let b = init_connection(0, false, HELP_GET_NEAREST_DC);
        assert_eq!(inner_method(&b), Ok(HELP_GET_NEAREST_DC));
        assert!(allowed_unbound(&b));
        let b = init_connection(1, true, HELP_GET_CONFIG);
        assert_eq!(inner_method(&b), Ok(HELP_GET_CONFIG));
        // Not on the list, or not nameable: held.
        assert!(!allowed_unbound(&init_connection(0, false, 0x0bad_f00d)));
        // Flag 1 (params) without a JSONValue: the method's id is no JSON constructor.
        assert_eq!(
            inner_method(&init_connection(2, false, HELP_GET_CONFIG)),
            Err(InnerMethodError::Opaque)
        );
        // params present (jsonObject [ "k": jsonNull ]) are skipped: the method under them is named.
        let mut b = init_connection(2, false, tl::invoke::JSON_OBJECT);
        for word in [tl::VECTOR, 1, tl::invoke::JSON_OBJECT_VALUE] {
            b.extend_from_slice(&word.to_le_bytes()).unwrap();
        }
        string(&mut b, b"k");
        for word in [tl::invoke::JSON_NULL, HELP_GET_CONFIG] {
            b.extend_from_slice(&word.to_le_bytes()).unwrap();
        }
        assert_eq!(inner_method(&b), Ok(HELP_GET_CONFIG));
        assert!(allowed_unbound(&b));
        // invokeAfterMsg is looked through as well.
        let mut b = heapless::Vec::<u8, 16>::new();
        b.extend_from_slice(&INVOKE_AFTER_MSG.to_le_bytes()).unwrap();
        b.extend_from_slice(&7i64.to_le_bytes()).unwrap();
        b.extend_from_slice(&HELP_GET_NEAREST_DC.to_le_bytes()).unwrap();
        assert_eq!(inner_method(&b), Ok(HELP_GET_NEAREST_DC));
        let b = init_connection(0, false, HELP_GET_CONFIG);
        assert_eq!(inner_method(&b[..b.len() - 1]), Err(InnerMethodError::Truncated));
        assert_eq!(inner_method(&[]), Err(InnerMethodError::Truncated));
        let mut deep = [0u8; 4 * (MAX_WRAPPERS + 2)];
        for c in deep.chunks_mut(4) {
            c.copy_from_slice(&INVOKE_WITHOUT_UPDATES.to_le_bytes());
        }
        assert_eq!(inner_method(&deep), Err(InnerMethodError::TooDeep));
        deep[4 * MAX_WRAPPERS..4 * MAX_WRAPPERS + 4].copy_from_slice(&HELP_GET_CONFIG.to_le_bytes());
        assert_eq!(inner_method(&deep), Ok(HELP_GET_CONFIG));
    }
}
