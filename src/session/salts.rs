//! Server salts, both roles (item 35; SM "future_salts"; DESC "Server Salt").
//!
//! **Client.** [`ClientSalts`] holds the salt in use and up to `F` future salts. It changes only through explicit
//! calls the engine makes after the message carrying the salt passed decryption and the msg_id checks *and* the
//! message it refers to was found in the [`SentTracker`](super::SentTracker): the calls demand the tracker's
//! [`SentRef`] proof, so (a) a `bad_server_salt` naming an id we never sent (or no longer track), (b) a
//! `future_salts` not answering our `get_future_salts`, or (d) a salt from an `rpc_result` matching no query of
//! ours cannot change anything (attack B20). (c) `new_session_created` carries no reference; the engine calls
//! [`ClientSalts::adopt_new_session_salt`] only for one that passed the replay and time checks.
//!
//! **Server.** [`ServerSalts`] accepts the current salt and, for a grace period after a rotation (1800 s), the
//! previous one; anything else, including salt 0 on a client's first message (INTEROP.md), gets
//! `bad_server_salt` (code 48) with the current salt.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

use subtle::ConstantTimeEq;

use super::{
    bad_msg::BadMsgCode,
    limits::MAX_FUTURE_SALTS,
    pending::{SentKind, SentRef},
};
use crate::time::UnixTime;

/// One entry of `future_salts`: `future_salt valid_since:int valid_until:int salt:long`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FutureSalt {
    /// First second the salt is valid.
    pub valid_since: UnixTime,
    /// First second it is no longer valid.
    pub valid_until: UnixTime,
    /// The salt.
    pub salt: u64,
}

/// A salt update was refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SaltError {
    /// The proof names a message of the wrong kind (e.g. `future_salts` answering something other than our
    /// `get_future_salts`).
    WrongRequest,
    /// `future_salts` carried no salt.
    Empty,
    /// More salts than the store holds (its capacity, at most 64 per item 44): backpressure, nothing stored.
    TooMany,
    /// An entry's validity range is empty (`valid_until <= valid_since`).
    BadRange,
    /// Server role: salt 0 is reserved for "no salt yet" and is never issued.
    ZeroSalt,
}

impl fmt::Display for SaltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SaltError::WrongRequest => "salt update does not answer a matching request",
            SaltError::Empty => "future_salts is empty",
            SaltError::TooMany => "too many future salts",
            SaltError::BadRange => "future salt with an empty validity range",
            SaltError::ZeroSalt => "salt 0 is never issued",
        })
    }
}

impl core::error::Error for SaltError {}

/// The client's salts: the one in use plus up to `F` future ones, sorted by `valid_since`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientSalts<const F: usize = MAX_FUTURE_SALTS> {
    current: u64,
    current_until: Option<UnixTime>,
    future: heapless::Vec<FutureSalt, F>,
    refresh_margin: Duration,
}

impl<const F: usize> ClientSalts<F> {
    /// Starts with the handshake's salt (`new_nonce[0..8] XOR server_nonce[0..8]`, authenticated by the
    /// handshake) or a persisted one. Future salts are fetched `refresh_margin` before the last known one
    /// expires.
    pub const fn new(initial: u64, refresh_margin: Duration) -> Self {
        ClientSalts {
            current: initial,
            current_until: None,
            future: heapless::Vec::new(),
            refresh_margin,
        }
    }

    /// The salt to put in outgoing messages (call [`advance`](Self::advance) first to rotate by time).
    pub const fn current(&self) -> u64 {
        self.current
    }

    /// The stored future salts, by `valid_since`.
    pub fn future(&self) -> &[FutureSalt] {
        &self.future
    }

    /// Rotates to the stored salt valid at `now`, if any, and forgets expired ones. Returns the salt to use.
    pub fn advance(&mut self, now: UnixTime) -> u64 {
        self.future.retain(|s| s.valid_until > now);
        // The latest-starting salt already valid wins; everything starting before it is superseded.
        if let Some(i) = self.future.iter().rposition(|s| s.valid_since <= now)
            && let Some(s) = self.future.get(i).copied()
        {
            self.current = s.salt;
            self.current_until = Some(s.valid_until);
            let keep = i + 1;
            let mut idx = 0;
            self.future.retain(|_| {
                idx += 1;
                idx > keep
            });
        }
        self.current
    }

    /// Adopts the salt of a `bad_server_salt` (code 48). `proof` is the tracker's reference to its
    /// `bad_msg_id`; without one (an id we never sent or no longer track) the notification is ignored.
    ///
    /// The stored future salts are forgotten: the server just refused what we believed valid, so the list is
    /// stale, and [`should_fetch`](Self::should_fetch) now asks for a fresh one.
    pub fn adopt_bad_server_salt(&mut self, proof: &SentRef, new_salt: u64) {
        let _ = proof;
        self.current = new_salt;
        self.current_until = None;
        self.future.clear();
    }

    /// Adopts the salt of an `rpc_result`'s envelope; `proof` comes from
    /// [`SentTracker::resolve_rpc`](super::SentTracker::resolve_rpc), so it must name an RPC query.
    pub fn adopt_response_salt(&mut self, proof: &SentRef, salt: u64) -> Result<(), SaltError> {
        if proof.kind() != SentKind::RpcQuery {
            return Err(SaltError::WrongRequest);
        }
        self.current = salt;
        Ok(())
    }

    /// Adopts the `server_salt` of `new_session_created`, which names no message of ours: call it only for a
    /// notification that passed decryption and the msg_id replay and time checks (item 46).
    pub fn adopt_new_session_salt(&mut self, salt: u64) {
        self.current = salt;
        self.current_until = None;
    }

    /// Stores the answer to our `get_future_salts` (item 44). `proof` must come from
    /// [`SentTracker::resolve_future_salts`](super::SentTracker::resolve_future_salts). The salts replace the
    /// stored ones; there must be 1 to `min(F, 64)` of them, each with a non-empty range. Already-expired ones are
    /// dropped, then the salt valid at `now` is adopted. Returns how many are stored.
    pub fn store_future_salts(
        &mut self,
        proof: &SentRef,
        now: UnixTime,
        salts: &[FutureSalt],
    ) -> Result<usize, SaltError> {
        if proof.kind() != SentKind::GetFutureSalts {
            return Err(SaltError::WrongRequest);
        }
        if salts.is_empty() {
            return Err(SaltError::Empty);
        }
        if salts.len() > F || salts.len() > MAX_FUTURE_SALTS {
            return Err(SaltError::TooMany);
        }
        if salts.iter().any(|s| s.valid_until <= s.valid_since) {
            return Err(SaltError::BadRange);
        }
        let mut fresh: heapless::Vec<FutureSalt, F> = heapless::Vec::new();
        for s in salts.iter().filter(|s| s.valid_until > now) {
            fresh.push(*s).map_err(|_| SaltError::TooMany)?;
        }
        fresh.sort_unstable_by_key(|s| (s.valid_since, s.valid_until));
        self.future = fresh;
        self.advance(now);
        Ok(self.future.len())
    }

    /// The Unix time from which new future salts should be fetched: `refresh_margin` before the last known
    /// validity ends, or 0 (now) if no validity is known.
    pub fn fetch_due_at(&self) -> UnixTime {
        let last = self.future.iter().map(|s| s.valid_until).max().or(self.current_until);
        match last {
            Some(t) => UnixTime(t.0.saturating_sub(self.refresh_margin.as_secs())),
            None => UnixTime(0),
        }
    }

    /// Whether a `get_future_salts` should be sent at `now`.
    pub fn should_fetch(&self, now: UnixTime) -> bool {
        now >= self.fetch_due_at()
    }
}

/// The server's answer to a wrong salt: `bad_server_salt` (code 48) carrying `new_salt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BadServerSalt {
    /// The salt to tell the client.
    pub new_salt: u64,
}

impl BadServerSalt {
    /// Always 48.
    pub const fn bad_msg_code(self) -> BadMsgCode {
        BadMsgCode::BadServerSalt
    }
}

impl fmt::Display for BadServerSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bad server salt")
    }
}

impl core::error::Error for BadServerSalt {}

/// How a server rotates salts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerSaltPolicy {
    /// Time between rotations (spec: "say, every 24 hours").
    pub rotation: Duration,
    /// How long the previous salt stays accepted (spec: 1800 s).
    pub grace: Duration,
}

impl ServerSaltPolicy {
    /// 24 h rotation, 1800 s grace.
    pub const DEFAULT: ServerSaltPolicy = ServerSaltPolicy {
        rotation: Duration::from_secs(24 * 3600),
        grace: Duration::from_secs(1800),
    };
}

impl Default for ServerSaltPolicy {
    fn default() -> Self {
        ServerSaltPolicy::DEFAULT
    }
}

/// The server's salts for one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerSalts {
    current: u64,
    previous: Option<(u64, UnixTime)>,
    rotate_at: UnixTime,
    policy: ServerSaltPolicy,
}

impl ServerSalts {
    /// Starts with `salt` (drawn by the engine from its CSPRNG) at `now`. Salt 0 is refused: it is what
    /// clients send before they know a salt.
    pub fn new(salt: u64, now: UnixTime, policy: ServerSaltPolicy) -> Result<Self, SaltError> {
        if salt == 0 {
            return Err(SaltError::ZeroSalt);
        }
        Ok(ServerSalts {
            current: salt,
            previous: None,
            rotate_at: UnixTime(now.0.saturating_add(policy.rotation.as_secs())),
            policy,
        })
    }

    /// The salt in force.
    pub const fn current(&self) -> u64 {
        self.current
    }

    /// When [`rotate`](Self::rotate) is next due.
    pub const fn next_rotation(&self) -> UnixTime {
        self.rotate_at
    }

    /// Whether a rotation is due at `now`.
    pub fn rotation_due(&self, now: UnixTime) -> bool {
        now >= self.rotate_at
    }

    /// Installs `new_salt` at `now`; the old salt stays accepted for the grace period.
    pub fn rotate(&mut self, now: UnixTime, new_salt: u64) -> Result<(), SaltError> {
        if new_salt == 0 {
            return Err(SaltError::ZeroSalt);
        }
        self.previous = Some((
            self.current,
            UnixTime(now.0.saturating_add(self.policy.grace.as_secs())),
        ));
        self.current = new_salt;
        self.rotate_at = UnixTime(now.0.saturating_add(self.policy.rotation.as_secs()));
        Ok(())
    }

    /// Checks the salt of a received message at `now` (compared in constant time).
    pub fn check(&self, salt: u64, now: UnixTime) -> Result<(), BadServerSalt> {
        let bytes = salt.to_le_bytes();
        let mut ok = bytes.ct_eq(&self.current.to_le_bytes());
        if let Some((prev, until)) = self.previous {
            ok |= bytes.ct_eq(&prev.to_le_bytes()) & subtle::Choice::from(u8::from(now < until));
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(BadServerSalt { new_salt: self.current })
        }
    }
}
