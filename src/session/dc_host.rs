//! What a DC host keeps per auth key and what a DC [`Connection`](super::Connection) may ask of it.
//!
//! A DC serves one client over many connections: each connection is a `Connection`, but the key store, the salts of
//! a key and the client's sessions outlive connections. The facade stays Sans-IO by asking the host at the few
//! points where it needs that outside state, parking the frame that raised the question until the host answers
//! (see [`HostQuery`]).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::Fault;

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::auth_key::AuthKey;

/// The DC's server-salt schedule of one auth key: a secret from which the salt of every rotation period is derived,
/// plus the handshake's first salt for the period the key was created in.
///
/// Every connection under the key must use the same schedule, or a client that kept its salt (or the
/// `future_salts` it was promised) is told `bad_server_salt` on its next connection. A DC host stores it with the
/// key ([`Connection::stored_key`](super::Connection::stored_key), [`to_bytes`](Self::to_bytes)). Zeroized on drop;
/// `Debug` does not print the secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SaltSchedule {
    pub(crate) secret: [u8; 32],
    /// (rotation period, salt): the handshake's salt overrides the derived one for the period it was made in.
    pub(crate) first: Option<(u64, u64)>,
}

/// Length of [`SaltSchedule::to_bytes`].
pub const SALT_SCHEDULE_LEN: usize = 48;

impl SaltSchedule {
    /// A schedule from a 32-byte random secret (draw it from a CSPRNG).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        SaltSchedule { secret, first: None }
    }

    /// The schedule as 48 bytes to persist with the key: the secret, then the first salt's period and the salt
    /// (zero if none), little-endian, zeroized on drop. **Secret**: store it like the key.
    pub fn to_bytes(&self) -> Zeroizing<[u8; SALT_SCHEDULE_LEN]> {
        let mut b = Zeroizing::new([0u8; SALT_SCHEDULE_LEN]);
        let (p, salt) = self.first.unwrap_or((0, 0));
        for (dst, src) in b.iter_mut().zip(
            self.secret
                .iter()
                .chain(p.to_le_bytes().iter())
                .chain(salt.to_le_bytes().iter()),
        ) {
            *dst = *src;
        }
        b
    }

    /// The inverse of [`to_bytes`](Self::to_bytes). Every 48-byte string is a valid schedule (salt 0 = no first
    /// salt, as 0 is never issued).
    pub fn from_bytes(b: &[u8; SALT_SCHEDULE_LEN]) -> Self {
        let (secret, rest) = b.split_at(32);
        let word = |s: &[u8]| u64::from_le_bytes(core::array::from_fn(|i| s.get(i).copied().unwrap_or(0)));
        let p = word(rest.get(..8).unwrap_or(&[]));
        let salt = word(rest.get(8..).unwrap_or(&[]));
        SaltSchedule {
            secret: core::array::from_fn(|i| secret.get(i).copied().unwrap_or(0)),
            first: (salt != 0).then_some((p, salt)),
        }
    }
}

impl PartialEq for SaltSchedule {
    /// Constant-time over the secret (it derives every salt of the key).
    fn eq(&self, other: &Self) -> bool {
        let first = |s: &Self| {
            s.first.map_or([0u8; 16], |(p, salt)| {
                let mut b = [0u8; 16];
                for (d, x) in b
                    .iter_mut()
                    .zip(p.to_le_bytes().iter().chain(salt.to_le_bytes().iter()))
                {
                    *d = *x;
                }
                b
            })
        };
        bool::from(self.secret.ct_eq(&other.secret) & first(self).ct_eq(&first(other)))
            && self.first.is_some() == other.first.is_some()
    }
}

impl Eq for SaltSchedule {}

impl fmt::Debug for SaltSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaltSchedule").finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for SaltSchedule {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "SaltSchedule {{ .. }}")
    }
}

/// What a DC keeps per auth key: the key and its salt schedule. Supplied back with
/// [`Connection::supply_stored_key`](super::Connection::supply_stored_key) or
/// [`Connection::server_stored`](super::Connection::server_stored).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StoredKey {
    /// The key.
    pub key: AuthKey,
    /// Its salts.
    pub salts: SaltSchedule,
}

/// What a DC [`Connection`](super::Connection) waits for from its host ([`Connection::host_query`](super::Connection::host_query)).
/// While one is pending the session parks the frame that raised it, consumes no input and sends nothing for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HostQuery {
    /// An encrypted frame names a key this connection does not have (also reported as
    /// [`Event::AuthKeyRequired`](super::Event::AuthKeyRequired)). Answer:
    /// [`supply_stored_key`](super::Connection::supply_stored_key) or [`supply_auth_key`](super::Connection::supply_auth_key).
    AuthKey {
        /// The auth_key_id the frame names.
        key_id: u64,
    },
    /// The handshake created a key and `dh_gen_ok` is held back (only with
    /// [`set_new_key_check`](super::Connection::set_new_key_check)): answer
    /// [`accept_new_key`](super::Connection::accept_new_key) with whether the store already holds `key_id` (item 25).
    NewAuthKey {
        /// The new key's auth_key_id.
        key_id: u64,
    },
    /// The client's obfuscated init arrived (every DC session on an obfuscated transport asks, before it reads a
    /// frame; also reported as [`Event::ObfuscatedInit`](super::Event::ObfuscatedInit)): answer
    /// [`check_obfuscated_init`](super::Connection::check_obfuscated_init) with the replay cache the host shares
    /// between all its connections (docs/CHECKLIST.md item 9, attack B19).
    ObfuscatedInit,
    /// An authenticated message names `session_id`, a client session this connection does not serve (always
    /// asked, except for the first session on a key the connection just created): answer
    /// [`resume_session`](super::Connection::resume_session) with the connection that holds that session, or `None`
    /// if none served it within the receive window (see there: what the host must keep, and for how long).
    Session {
        /// The key the session lives under.
        key_id: u64,
        /// The client's session id (authenticated: it was inside the decrypted message).
        session_id: u64,
    },
}

/// Why [`Connection::accept_new_key`](super::Connection::accept_new_key) did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AcceptKeyError {
    /// No new key waits for the host ([`HostQuery::NewAuthKey`] is not pending).
    NotRequested,
}

impl AcceptKeyError {
    /// The host's ([`Fault::Host`]): there was no question to answer.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl fmt::Display for AcceptKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcceptKeyError::NotRequested => f.write_str("no new auth key waits for a check"),
        }
    }
}

impl core::error::Error for AcceptKeyError {}

/// Why [`Connection::check_obfuscated_init`](super::Connection::check_obfuscated_init) did not let the connection go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InitCheckError {
    /// No init waits for a check ([`HostQuery::ObfuscatedInit`] is not pending).
    NotRequested,
    /// The cache holds this init: the connection replays a recorded one (attack B19). The session has failed with
    /// [`Error::ReplayedInit`](super::Error::ReplayedInit) without reading a frame; close the connection as for an
    /// init the secret does not open, sending nothing.
    Replayed,
}

impl InitCheckError {
    /// A replayed init is the peer's ([`Fault::Peer`]); an unasked answer the host's.
    pub const fn fault(&self) -> Fault {
        match self {
            InitCheckError::Replayed => Fault::Peer,
            InitCheckError::NotRequested => Fault::Host,
        }
    }
}

impl fmt::Display for InitCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitCheckError::NotRequested => f.write_str("no obfuscated init waits for a check"),
            InitCheckError::Replayed => f.write_str("the obfuscated init was seen before (a replayed connection)"),
        }
    }
}

impl core::error::Error for InitCheckError {}

/// Why [`Connection::resume_session`](super::Connection::resume_session) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResumeError {
    /// No frame waits for a session ([`HostQuery::Session`] is not pending).
    NotRequested,
    /// The offered connection does not hold that session under that key; nothing changed, the frame stays parked.
    Mismatch,
    /// The parked message is one the session already received (a replayed connection): it was dropped and
    /// nothing moved.
    Replayed,
    /// The offered connection still has events, a held packet or owed answers that borrow its receive buffer (its
    /// engine's [`must_drain`](super::Session::must_drain)); nothing changed, the frame stays parked. Drain it
    /// (`poll_event` until `None`, `poll_transmit` until `None`) and answer again.
    Busy,
}

impl ResumeError {
    /// A replayed message is the peer's ([`Fault::Peer`]); naming the wrong connection, or answering an unasked
    /// question, the host's.
    pub const fn fault(&self) -> Fault {
        match self {
            ResumeError::Replayed => Fault::Peer,
            ResumeError::NotRequested | ResumeError::Mismatch | ResumeError::Busy => Fault::Host,
        }
    }
}

impl fmt::Display for ResumeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResumeError::NotRequested => f.write_str("no frame waits for a session"),
            ResumeError::Mismatch => f.write_str("the connection does not hold that session"),
            ResumeError::Busy => f.write_str("the connection that holds the session must be drained first"),
            ResumeError::Replayed => f.write_str("the message is a replay; the session stays where it is"),
        }
    }
}

impl core::error::Error for ResumeError {}

/// Why [`Connection::set_proxy_secret`](super::Connection::set_proxy_secret) refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProxySecretError {
    /// The transport is not obfuscated (`TransportConfig::obfuscated` is false).
    NotObfuscated,
    /// A `dd` secret needs the padded intermediate framing.
    RequiresPadding,
    /// The connection already sent or received bytes; set the secret first (it survives `reconnect`).
    Started,
    /// A packet carriage (HTTP, [`crate::carriage::layer::HttpCarriage`]) carries packets, not a stream: the
    /// transport must be plain intermediate (not obfuscated), and no proxy secret applies.
    NotPlainIntermediate,
}

impl ProxySecretError {
    /// The host's ([`Fault::Host`]): a secret set too late or for a transport that cannot carry it.
    pub const fn fault(&self) -> Fault {
        Fault::Host
    }
}

impl fmt::Display for ProxySecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySecretError::NotObfuscated => f.write_str("a proxy secret needs the obfuscated transport"),
            ProxySecretError::RequiresPadding => f.write_str("a dd proxy secret requires padded intermediate"),
            ProxySecretError::NotPlainIntermediate => {
                f.write_str("a packet carriage needs plain intermediate framing and no proxy secret")
            }
            ProxySecretError::Started => f.write_str("the connection already started"),
        }
    }
}

impl core::error::Error for ProxySecretError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn salt_schedule_bytes_round_trip() {
        let s = SaltSchedule {
            secret: [9; 32],
            first: Some((19_675, 0x1234_5678_9abc_def0)),
        };
        assert_eq!(SaltSchedule::from_bytes(&s.to_bytes()), s);
        let n = SaltSchedule::from_secret([3; 32]);
        let b = n.to_bytes();
        assert_eq!(&b[32..], &[0; 16]);
        assert_eq!(SaltSchedule::from_bytes(&b), n);
        let mut dbg: heapless::String<64> = heapless::String::new();
        core::fmt::Write::write_fmt(&mut dbg, format_args!("{s:?}")).unwrap();
        assert_eq!(dbg.as_str(), "SaltSchedule { .. }");
    }

    #[test]
    fn salt_schedules_compare_by_secret_and_first_salt() {
        let a = SaltSchedule {
            secret: [7; 32],
            first: Some((5, 0x1234)),
        };
        let mut other_secret = a.clone();
        other_secret.secret[31] ^= 1;
        assert_ne!(other_secret, a);
        let mut other_first = a.clone();
        other_first.first = Some((5, 0x1235));
        assert_ne!(other_first, a);
        let mut none = a.clone();
        none.first = None;
        assert_ne!(none, a);
        assert_eq!(none, SaltSchedule::from_secret([7; 32]));
    }
}
