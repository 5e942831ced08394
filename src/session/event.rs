//! What a session tells its host: events, failure reasons, decoded RPC errors, and the per-call error types.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use core::fmt;

use super::{BadMsgCode, MsgId};

/// Something the host must learn about. Bodies borrow the session's receive buffers until the next `&mut` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'a> {
    /// Client: the answer to the query `req` (a `gzip_packed` result is already inflated).
    RpcResult {
        /// The query's msg_id, as returned by `send`.
        req: MsgId,
        /// The serialized result object.
        body: &'a [u8],
    },
    /// Client: the query `req` failed on the server with an `rpc_error`.
    RpcError {
        /// The query's msg_id.
        req: MsgId,
        /// The error code (e.g. 420, 303, 400).
        code: i32,
        /// The error message as sent (e.g. `FLOOD_WAIT_3`), not guaranteed UTF-8.
        message: &'a [u8],
        /// The message decoded where it has a known shape.
        kind: RpcErrorKind,
    },
    /// Client: the query `req` ended without an answer.
    Failed {
        /// The query's msg_id.
        req: MsgId,
        /// Why.
        reason: FailReason,
    },
    /// Client: a content-related server message that is not an answer (an update), acknowledged already.
    Update(&'a [u8]),
    /// Client: the server created a new session (`new_session_created`); messages before `first_msg_id` are being
    /// resent, and updates may have been lost (the host should fetch the difference).
    SessionReset {
        /// The first msg_id the new server session knows.
        first_msg_id: MsgId,
    },
    /// DC: a client query to execute, then answer with `answer` or `answer_error` naming `msg_id`. Each query is
    /// delivered at most once per server session.
    Request {
        /// The query's msg_id (the `req_msg_id` of the answer).
        msg_id: MsgId,
        /// The serialized query (a `gzip_packed` query is already inflated).
        body: &'a [u8],
    },
    /// DC: the client started a new session (`new_session_created` is being sent).
    SessionCreated {
        /// The client's session id.
        session_id: u64,
    },
    /// DC: the client asked, with `ping_delay_disconnect`, to be disconnected now (no ping came in time).
    DisconnectRequested,
    /// Client: the transport carried a negative error code (−404: unknown key, −429: flood...).
    TransportError(i32),
    /// The handshake on this connection created the auth key (`Connection::auth_key`). Client: persist it to skip the
    /// handshake next time. DC: store `Connection::stored_key` (the key and its salt schedule) under its id, so a later
    /// connection can be answered with `Connection::supply_stored_key`.
    AuthKeyReady,
    /// DC (`Connection::server_handshake`): an encrypted frame names an auth key this connection does not have. The
    /// frame is parked, unprocessed, and no further input is consumed until the host answers with
    /// `Connection::supply_auth_key` (the stored key, or `None` for the transport error −404).
    AuthKeyRequired {
        /// The auth_key_id the frame names.
        key_id: u64,
    },
    /// DC with the new-key check on (`Connection::set_new_key_check`): the handshake made a key with this id and waits,
    /// before `dh_gen_ok`, for the host to say whether its store already holds the id (docs/CHECKLIST.md item 25).
    /// Answer with `Connection::accept_new_key`.
    NewAuthKey {
        /// The new key's auth_key_id.
        key_id: u64,
    },
    /// DC on an obfuscated transport: the client's 64-byte init arrived and nothing after it is read until the host
    /// checked it against the replay cache it shares between connections: answer with
    /// `Connection::check_obfuscated_init` (docs/CHECKLIST.md item 9, attack B19).
    ObfuscatedInit,
    /// DC: an authenticated message names a client session this connection does not serve (its first message, or
    /// a client that moved to another session), which the host may hold on another connection. Answer with
    /// `Connection::resume_session` (the other connection's `Connection`, or `None` if no connection served it within
    /// the receive window: a new session starts).
    SessionRequired {
        /// The auth_key_id of the connection.
        key_id: u64,
        /// The client's session id.
        session_id: u64,
    },
}

/// Why a query ended without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FailReason {
    /// No answer within the configured RPC timeout, or the resend attempts ran out.
    Timeout,
    /// The server rejected the message with a `bad_msg_notification` code that resending cannot fix (34/35).
    Rejected(BadMsgCode),
    /// The answer was larger than the receive buffers (or the inflated `gzip_packed` exceeded its cap).
    ResultTooLarge,
    /// The answer could not be decoded (a truncated `rpc_error`, a broken `gzip_packed`).
    MalformedResult,
    /// The session was closed or destroyed.
    Closed,
    /// The DC refused the message and it cannot be sent again under a new msg_id, because its body names its own
    /// msg_id (`auth.bindTempAuthKey`): build a new one.
    MustRebuild,
    /// The temporary auth key the query was sent under was lost (the DC answered −404, forgot the binding, or the
    /// key expired before the answer came): the DC may or may not have executed it. A new key is a new session, so
    /// the query is not resent under it (at most once per msg_id); the host decides whether repeating it is safe.
    KeyLost,
}

impl fmt::Display for FailReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailReason::Timeout => f.write_str("no answer in time"),
            FailReason::Rejected(c) => write!(f, "rejected by the server: {c}"),
            FailReason::ResultTooLarge => f.write_str("answer larger than the receive buffer"),
            FailReason::MalformedResult => f.write_str("malformed answer"),
            FailReason::Closed => f.write_str("session closed"),
            FailReason::MustRebuild => f.write_str("refused; must be rebuilt under a new msg_id"),
            FailReason::KeyLost => f.write_str("the auth key was lost before the answer"),
        }
    }
}

/// An `rpc_error` message decoded where its shape is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RpcErrorKind {
    /// A 420-style wait (`FLOOD_WAIT_N`, `FLOOD_PREMIUM_WAIT_N`, `SLOWMODE_WAIT_N`...): retry after N seconds.
    FloodWait(u32),
    /// `*_MIGRATE_N` (PHONE, FILE, USER, NETWORK, STATS): repeat the call on DC N.
    Migrate(i32),
    /// Any other message.
    Other,
}

impl RpcErrorKind {
    /// Decodes the message's shape whatever the code (bounded work, no allocation); a number that is missing, has
    /// junk or does not fit reads as [`RpcErrorKind::Other`]. The client layer's
    /// [`RpcError::classify`](crate::client::rpc_error::RpcError::classify) reads the same names with the code and
    /// says why a number could not be read.
    pub fn parse(message: &[u8]) -> RpcErrorKind {
        use crate::client::rpc_error::{Shape, shape};
        match shape(message) {
            Some((Shape::Wait(_), Ok(n))) => RpcErrorKind::FloodWait(n),
            Some((Shape::Migrate(_), Ok(n))) => i32::try_from(n)
                .map(RpcErrorKind::Migrate)
                .unwrap_or(RpcErrorKind::Other),
            _ => RpcErrorKind::Other,
        }
    }
}

/// Why `send` (or `answer`) refused; nothing was queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SendError {
    /// The in-flight message slots or the resend arena are full: drain events, wait for answers, retry.
    QueueFull,
    /// The body can never fit (larger than the arena or than one packet), or is not a multiple of 4 bytes.
    TooLarge,
    /// The session cannot send yet (no key) or this role cannot send this (a client answering...).
    NotReady,
    /// DC: `answer` names no request waiting for one.
    UnknownRequest,
    /// The session is closed.
    Closed,
}

impl SendError {
    /// A full queue is backpressure ([`Fault::Environment`]: retry once events and packets were drained); every
    /// other refusal is the caller's ([`Fault::Host`]).
    pub const fn fault(&self) -> Fault {
        match self {
            SendError::QueueFull => Fault::Environment,
            SendError::TooLarge | SendError::NotReady | SendError::UnknownRequest | SendError::Closed => Fault::Host,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::QueueFull => "send queue full",
            SendError::TooLarge => "message too large",
            SendError::NotReady => "session not ready to send this",
            SendError::UnknownRequest => "no such request awaits an answer",
            SendError::Closed => "session closed",
        })
    }
}

impl core::error::Error for SendError {}

pub use crate::error::BufferTooSmall;

/// Why a received packet was dropped. Every cause leaves the session unchanged except where noted (a DC answers
/// some with a `bad_msg_notification`). Counted in [`Stats`](super::engine::Stats); a failed decryption is the single
/// variant `Rejected` whatever the cause (item 29).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Dropped {
    /// Decryption or the msg_key check failed (wrong key id, forged, truncated, bad padding...).
    Rejected,
    /// The packet is larger than the receive buffer.
    TooLarge,
    /// The session_id is not ours (client) (item 31).
    WrongSession,
    /// The msg_id failed the parity, time or replay checks (items 32-34).
    BadMsgId,
    /// DC: wrong salt; `bad_server_salt` was queued (item 35).
    BadSalt,
    /// DC: wrong seq_no; a `bad_msg_notification` was queued (item 37).
    BadSeqNo,
    /// A malformed or illegal container, nested container, or undecodable service message (items 48, 55).
    Malformed,
    /// The engine cannot take a packet yet: events still borrow the receive buffers, or it is working through the
    /// last packet, whose messages wait for room for their answers. Drain `poll_event` and `poll_packet`, then offer
    /// the packet again.
    Backpressure,
    /// DC strict-order mode: a msg_id below one already delivered (attack B1).
    OutOfOrder,
    /// DC: the packet names a client session this engine does not serve and the host has not allowed it to start
    /// here ([`Session::approve_session`](super::Session::approve_session)); nothing changed.
    UnknownSession,
}

impl Dropped {
    /// Whose fault a dropped packet is: [`Dropped::Backpressure`] is the host's (it fed input before draining
    /// events); every other reason is the peer's, or a forger's, or a network's that replays or reorders.
    pub const fn fault(&self) -> Fault {
        match self {
            Dropped::Backpressure => Fault::Host,
            _ => Fault::Peer,
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dropped::Rejected => "packet rejected",
            Dropped::TooLarge => "packet too large",
            Dropped::WrongSession => "wrong session",
            Dropped::BadMsgId => "bad msg_id",
            Dropped::BadSalt => "bad server salt",
            Dropped::BadSeqNo => "bad seq_no",
            Dropped::Malformed => "malformed message",
            Dropped::Backpressure => "not taken yet: drain events and packets first",
            Dropped::OutOfOrder => "msg_id out of order",
            Dropped::UnknownSession => "session not served here",
        })
    }
}

impl core::error::Error for Dropped {}

impl Dropped {
    /// Every reason, in [`Dropped::index`] order.
    pub const ALL: [Dropped; 10] = [
        Dropped::Rejected,
        Dropped::TooLarge,
        Dropped::WrongSession,
        Dropped::BadMsgId,
        Dropped::BadSalt,
        Dropped::BadSeqNo,
        Dropped::Malformed,
        Dropped::Backpressure,
        Dropped::OutOfOrder,
        Dropped::UnknownSession,
    ];

    /// A dense index of the reason (its position in [`Dropped::ALL`]), for per-reason counters: the declaration
    /// order, which `ALL` follows (a unit test checks that they agree).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Received frames a connection dropped without effect, by reason: what a host logs or exports as metrics to tell
/// an attack (forged packets: [`Dropped::Rejected`]), a replay ([`Dropped::BadMsgId`]) and a clock or salt problem
/// apart. Counts saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DropCounts {
    by_reason: [u64; Dropped::ALL.len()],
    handshake: u64,
    last: Option<Dropped>,
}

impl DropCounts {
    /// Counts one encrypted frame dropped for `reason`.
    pub fn record(&mut self, reason: Dropped) {
        if let Some(n) = self.by_reason.get_mut(reason.index()) {
            *n = n.saturating_add(1);
        }
        self.last = Some(reason);
    }

    /// Counts one handshake frame if the handshake refused it (malformed or unexpected; the handshake decides what
    /// is fatal).
    pub fn record_handshake_if(&mut self, refused: bool) {
        self.handshake = self.handshake.saturating_add(u64::from(refused));
    }

    /// Encrypted frames dropped for `reason`.
    pub fn count(&self, reason: Dropped) -> u64 {
        self.by_reason.get(reason.index()).copied().unwrap_or(0)
    }

    /// Handshake frames refused.
    pub fn handshake(&self) -> u64 {
        self.handshake
    }

    /// The reason of the last encrypted frame dropped, if any.
    pub fn last(&self) -> Option<Dropped> {
        self.last
    }

    /// Every frame dropped, handshake ones included.
    pub fn total(&self) -> u64 {
        self.by_reason.iter().fold(self.handshake, |a, &n| a.saturating_add(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_have_distinct_indices_and_counters() {
        // A new reason must join `Dropped::ALL` (which sizes the counters): this match stops compiling until it does.
        const fn listed(d: Dropped) -> bool {
            match d {
                Dropped::Rejected
                | Dropped::TooLarge
                | Dropped::WrongSession
                | Dropped::BadMsgId
                | Dropped::BadSalt
                | Dropped::BadSeqNo
                | Dropped::Malformed
                | Dropped::Backpressure
                | Dropped::OutOfOrder
                | Dropped::UnknownSession => true,
            }
        }
        assert!(Dropped::ALL.iter().all(|d| listed(*d)));
        let mut d = DropCounts::default();
        for (i, r) in Dropped::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            for _ in 0..=i {
                d.record(*r);
            }
            assert_eq!(d.last(), Some(*r));
        }
        for (i, r) in Dropped::ALL.iter().enumerate() {
            assert_eq!(d.count(*r), i as u64 + 1);
        }
        d.record_handshake_if(false);
        d.record_handshake_if(true);
        assert_eq!((d.handshake(), d.total()), (1, 56));
    }

    #[test]
    fn rpc_error_shapes() {
        assert_eq!(RpcErrorKind::parse(b"FLOOD_WAIT_31"), RpcErrorKind::FloodWait(31));
        assert_eq!(RpcErrorKind::parse(b"FLOOD_PREMIUM_WAIT_5"), RpcErrorKind::FloodWait(5));
        assert_eq!(RpcErrorKind::parse(b"SLOWMODE_WAIT_7"), RpcErrorKind::FloodWait(7));
        assert_eq!(RpcErrorKind::parse(b"PHONE_MIGRATE_4"), RpcErrorKind::Migrate(4));
        assert_eq!(RpcErrorKind::parse(b"NETWORK_MIGRATE_2"), RpcErrorKind::Migrate(2));
        assert_eq!(RpcErrorKind::parse(b"FILE_MIGRATE_"), RpcErrorKind::Other);
        assert_eq!(RpcErrorKind::parse(b"FLOOD_WAIT_99999999999"), RpcErrorKind::Other);
        assert_eq!(RpcErrorKind::parse(b"AUTH_KEY_UNREGISTERED"), RpcErrorKind::Other);
        assert_eq!(RpcErrorKind::parse(b""), RpcErrorKind::Other);
    }
}
