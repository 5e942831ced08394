//! Classifying an `rpc_error` into what a client does about it.
//!
//! Data comes from the session layer: [`Event::RpcError`](crate::session::Event) carries the error's code and its
//! message (not guaranteed UTF-8, at most as long as the receive buffer). [`RpcError::classify`] turns them into an
//! [`ErrorKind`]: a wait ([`flood`](super::flood) holds the request), a migration ([`router`](super::router) moves it
//! or the home DC), a retryable server error (the flood scheduler's backoff), the 401 family (the authorization is
//! gone: sign in again, or import it again on that DC), or anything else, kept as its code and name for the caller.
//!
//! Like TDLib (`NetQueryDispatcher::dispatch`, `NetQueryDelayer::delay`) the code decides the family: only a 303
//! is a migration and only a 420 a wait, so a message that merely looks like one under another code stays
//! [`ErrorKind::Other`]. Unlike TDLib, which reads the trailing number with a lenient `to_integer` (junk reads as 0,
//! overflow wraps), a number that is missing, has junk in it or does not fit is a typed [`ClassifyError`]: a server
//! that says "wait" without saying how long has sent something the client cannot act on safely, and the host should
//! surface it rather than guess a delay.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use super::DcId;
use crate::error::Fault;

/// An `rpc_error` as the client acts on it: its code and name as received, and what they mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RpcError<'a> {
    /// The error code (303, 400, 401, 420, 500, -503...).
    pub code: i32,
    /// The error message as sent (e.g. `FLOOD_WAIT_3`).
    pub name: &'a [u8],
    /// What the code and name mean.
    pub kind: ErrorKind,
}

/// The families of `rpc_error` a client handles on its own; everything else is [`ErrorKind::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// 420 with a wait: the same call may be repeated after `seconds` (the server counts the limit per method and
    /// account, so every call of that method waits).
    Wait {
        /// Which wait.
        reason: WaitReason,
        /// Seconds to wait, as sent (0 is possible; the scheduler waits at least one second, as TDLib does).
        seconds: u32,
    },
    /// 303: repeat the call on DC `dc`.
    Migrate {
        /// Which migration: PHONE, NETWORK and USER move the home DC, FILE and STATS only this call.
        reason: MigrateReason,
        /// The DC to use.
        dc: DcId,
    },
    /// A transient failure of the server: retry with a backoff (bounded attempts).
    Retry(RetryReason),
    /// 401: the authorization this call relied on is gone (or never was).
    Unauthorized(AuthProblem),
    /// 401 `SESSION_PASSWORD_NEEDED`: the sign-in needs the two-step verification password.
    PasswordNeeded,
    /// Any other error: the caller's to handle, by its code and name.
    Other,
}

/// The 420 errors that carry a wait in seconds (TDLib's `NetQueryDelayer` prefixes, plus the test-phone one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum WaitReason {
    /// `FLOOD_WAIT_X`.
    Flood,
    /// `FLOOD_PREMIUM_WAIT_X`: a speed limit a Premium account would not have (uploads, downloads).
    FloodPremium,
    /// `SLOWMODE_WAIT_X`: the chat's slow mode.
    Slowmode,
    /// `FLOOD_TEST_PHONE_WAIT_X`: a test-DC phone number was used too often.
    FloodTestPhone,
    /// `TAKEOUT_INIT_DELAY_X`: a data export may start only after the delay.
    TakeoutInitDelay,
    /// `2FA_CONFIRM_WAIT_X`: an account reset waits for the 2FA confirmation period (usually days).
    TwoFaConfirm,
}

/// The 303 errors (`*_MIGRATE_X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MigrateReason {
    /// `PHONE_MIGRATE_X`: the phone number belongs to DC X (sign-in).
    Phone,
    /// `NETWORK_MIGRATE_X`: the client's network is served by DC X.
    Network,
    /// `USER_MIGRATE_X`: the user's account lives on DC X.
    User,
    /// `FILE_MIGRATE_X`: the file is stored on DC X.
    File,
    /// `STATS_MIGRATE_X`: the channel's statistics are on DC X.
    Stats,
}

impl MigrateReason {
    /// Whether the migration moves the home DC (PHONE, NETWORK, USER) rather than just this call (FILE, STATS).
    #[must_use]
    pub const fn moves_home(self) -> bool {
        matches!(
            self,
            MigrateReason::Phone | MigrateReason::Network | MigrateReason::User
        )
    }
}

/// Transient server failures worth a retry after a backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetryReason {
    /// A 420 that names no wait (TDLib backs these off too).
    Flood,
    /// A 500 (an internal server error), or a negative code other than -503.
    Internal,
    /// 500 `WORKER_BUSY_TOO_LONG_RETRY`: retry after a second.
    WorkerBusy,
    /// -503 `Timeout`: the server gave up waiting for an internal answer; the call may or may not have run.
    Timeout,
}

/// The 401 errors: what happened to the authorization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AuthProblem {
    /// `AUTH_KEY_UNREGISTERED`: the key is not (or no longer) signed in on this DC.
    KeyUnregistered,
    /// `AUTH_KEY_INVALID`.
    KeyInvalid,
    /// `USER_DEACTIVATED`.
    UserDeactivated,
    /// `USER_DEACTIVATED_BAN`.
    UserDeactivatedBan,
    /// `SESSION_REVOKED`: the user ended this session from another device.
    SessionRevoked,
    /// `SESSION_EXPIRED`.
    SessionExpired,
    /// `AUTH_KEY_PERM_EMPTY`: a temporary key is not bound to a permanent one.
    KeyPermEmpty,
    /// Another 401.
    Other,
}

/// Why an `rpc_error` that names a wait or a migration could not be read. The error came from the server (or
/// whoever forged it through it): [`Fault::Peer`]. The host should surface the raw error to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClassifyError {
    /// The name has the prefix but no number (`FLOOD_WAIT_`, `FLOOD_WAIT`).
    MissingNumber,
    /// The number has a character other than an ASCII digit (`FLOOD_WAIT_3s`, `FLOOD_WAIT_-1`).
    Junk,
    /// The number does not fit 32 bits.
    Overflow,
    /// A migration names a DC id outside 1..=[`DcId::MAX`].
    DcOutOfRange,
}

impl ClassifyError {
    /// Always [`Fault::Peer`].
    pub const fn fault(&self) -> Fault {
        Fault::Peer
    }
}

impl fmt::Display for ClassifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClassifyError::MissingNumber => "rpc_error names a wait or a DC but has no number",
            ClassifyError::Junk => "rpc_error number has a non-digit",
            ClassifyError::Overflow => "rpc_error number does not fit 32 bits",
            ClassifyError::DcOutOfRange => "rpc_error migrates to a DC id out of range",
        })
    }
}

impl core::error::Error for ClassifyError {}

/// The shape a message names regardless of its code: a wait or a migration, with its number read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Wait(WaitReason),
    Migrate(MigrateReason),
}

const WAITS: [(&[u8], WaitReason); 6] = [
    (b"FLOOD_WAIT", WaitReason::Flood),
    (b"FLOOD_PREMIUM_WAIT", WaitReason::FloodPremium),
    (b"SLOWMODE_WAIT", WaitReason::Slowmode),
    (b"FLOOD_TEST_PHONE_WAIT", WaitReason::FloodTestPhone),
    (b"TAKEOUT_INIT_DELAY", WaitReason::TakeoutInitDelay),
    (b"2FA_CONFIRM_WAIT", WaitReason::TwoFaConfirm),
];

const MIGRATES: [(&[u8], MigrateReason); 5] = [
    (b"PHONE_MIGRATE", MigrateReason::Phone),
    (b"NETWORK_MIGRATE", MigrateReason::Network),
    (b"USER_MIGRATE", MigrateReason::User),
    (b"FILE_MIGRATE", MigrateReason::File),
    (b"STATS_MIGRATE", MigrateReason::Stats),
];

const AUTH: [(&[u8], AuthProblem); 7] = [
    (b"AUTH_KEY_UNREGISTERED", AuthProblem::KeyUnregistered),
    (b"AUTH_KEY_INVALID", AuthProblem::KeyInvalid),
    (b"USER_DEACTIVATED", AuthProblem::UserDeactivated),
    (b"USER_DEACTIVATED_BAN", AuthProblem::UserDeactivatedBan),
    (b"SESSION_REVOKED", AuthProblem::SessionRevoked),
    (b"SESSION_EXPIRED", AuthProblem::SessionExpired),
    (b"AUTH_KEY_PERM_EMPTY", AuthProblem::KeyPermEmpty),
];

/// Reads `name` as `STEM_<decimal u32>` for one of the known stems (`STEM` alone reads as a missing number).
/// `None` when the name has none of the stems. Work is linear in the name's length; nothing panics.
pub(crate) fn shape(name: &[u8]) -> Option<(Shape, Result<u32, ClassifyError>)> {
    let stems = WAITS
        .iter()
        .map(|&(s, r)| (s, Shape::Wait(r)))
        .chain(MIGRATES.iter().map(|&(s, r)| (s, Shape::Migrate(r))));
    for (stem, shape) in stems {
        let Some(rest) = name.strip_prefix(stem) else {
            continue;
        };
        let number = match rest.split_first() {
            None => Err(ClassifyError::MissingNumber),
            Some((b'_', digits)) => parse_u32(digits),
            // A longer word with this stem (`FLOOD_WAITING`): not this error.
            Some(_) => continue,
        };
        return Some((shape, number));
    }
    None
}

/// A decimal `u32` with no sign, no spaces and at least one digit (leading zeros allowed, as `to_integer` reads them).
fn parse_u32(digits: &[u8]) -> Result<u32, ClassifyError> {
    if digits.is_empty() {
        return Err(ClassifyError::MissingNumber);
    }
    let mut n: u32 = 0;
    let mut overflow = false;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(ClassifyError::Junk);
        }
        match n.checked_mul(10).and_then(|v| v.checked_add(u32::from(d - b'0'))) {
            Some(v) => n = v,
            // Keep scanning: junk after the overflow is reported as junk, whichever comes first in the name.
            None => overflow = true,
        }
    }
    if overflow { Err(ClassifyError::Overflow) } else { Ok(n) }
}

impl<'a> RpcError<'a> {
    /// Classifies an `rpc_error` by its code and message. Bounded work (linear in the message), no allocation.
    ///
    /// # Errors
    /// A 420 that names a wait or a 303 that names a migration whose number is missing, malformed, too large, or (a
    /// migration) not a valid DC id.
    pub fn classify(code: i32, name: &'a [u8]) -> Result<RpcError<'a>, ClassifyError> {
        let kind = match code {
            303 => match shape(name) {
                Some((Shape::Migrate(reason), n)) => {
                    let dc = DcId::new(i64::from(n?)).ok_or(ClassifyError::DcOutOfRange)?;
                    ErrorKind::Migrate { reason, dc }
                }
                _ => ErrorKind::Other,
            },
            420 => match shape(name) {
                Some((Shape::Wait(reason), n)) => ErrorKind::Wait { reason, seconds: n? },
                Some((Shape::Migrate(_), _)) => ErrorKind::Other,
                // TDLib's exceptions: a story flood names a period, not a wait; a frozen account's call never passes.
                None if name.starts_with(b"STORY_SEND_FLOOD_")
                    || name.starts_with(b"PREMIUM_SUB_ACTIVE_UNTIL_")
                    || name == b"FROZEN_METHOD_INVALID" =>
                {
                    ErrorKind::Other
                }
                None => ErrorKind::Retry(RetryReason::Flood),
            },
            401 if name == b"SESSION_PASSWORD_NEEDED" => ErrorKind::PasswordNeeded,
            401 => ErrorKind::Unauthorized(
                AUTH.iter()
                    .find(|(n, _)| *n == name)
                    .map_or(AuthProblem::Other, |&(_, p)| p),
            ),
            500 if name == b"WORKER_BUSY_TOO_LONG_RETRY" => ErrorKind::Retry(RetryReason::WorkerBusy),
            500 => ErrorKind::Retry(RetryReason::Internal),
            -503 => ErrorKind::Retry(RetryReason::Timeout),
            c if c < 0 => ErrorKind::Retry(RetryReason::Internal),
            _ => ErrorKind::Other,
        };
        Ok(RpcError { code, name, kind })
    }

    /// The wait this error asks for, if it is a [`ErrorKind::Wait`].
    #[must_use]
    pub const fn wait_seconds(&self) -> Option<u32> {
        match self.kind {
            ErrorKind::Wait { seconds, .. } => Some(seconds),
            _ => None,
        }
    }
}

impl fmt::Display for RpcError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rpc_error {} ", self.code)?;
        for &b in self.name {
            if b.is_ascii_graphic() {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kind(code: i32, name: &[u8]) -> Result<ErrorKind, ClassifyError> {
        RpcError::classify(code, name).map(|e| e.kind)
    }

    #[test]
    fn numbers_parse_strictly() {
        assert_eq!(parse_u32(b"0"), Ok(0));
        assert_eq!(parse_u32(b"007"), Ok(7));
        assert_eq!(parse_u32(b"4294967295"), Ok(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), Err(ClassifyError::Overflow));
        assert_eq!(parse_u32(b"99999999999999999999999"), Err(ClassifyError::Overflow));
        assert_eq!(parse_u32(b"99999999999999999999999x"), Err(ClassifyError::Junk));
        assert_eq!(parse_u32(b""), Err(ClassifyError::MissingNumber));
        assert_eq!(parse_u32(b"+1"), Err(ClassifyError::Junk));
        assert_eq!(parse_u32(b"1 "), Err(ClassifyError::Junk));
    }

    #[test]
    fn stems_need_the_underscore() {
        assert_eq!(kind(420, b"FLOOD_WAITING_5"), Ok(ErrorKind::Retry(RetryReason::Flood)));
        assert_eq!(kind(420, b"FLOOD_WAIT"), Err(ClassifyError::MissingNumber));
        assert_eq!(
            kind(420, b"FLOOD_PREMIUM_WAIT_9"),
            Ok(ErrorKind::Wait {
                reason: WaitReason::FloodPremium,
                seconds: 9
            })
        );
    }

    #[test]
    fn code_decides_the_family() {
        assert_eq!(kind(400, b"FLOOD_WAIT_5"), Ok(ErrorKind::Other));
        assert_eq!(kind(400, b"PHONE_MIGRATE_2"), Ok(ErrorKind::Other));
        assert_eq!(kind(420, b"PHONE_MIGRATE_2"), Ok(ErrorKind::Other));
        assert_eq!(kind(303, b"FLOOD_WAIT_2"), Ok(ErrorKind::Other));
        assert_eq!(kind(-500, b"X"), Ok(ErrorKind::Retry(RetryReason::Internal)));
        assert_eq!(kind(420, b"STORY_SEND_FLOOD_WEEKLY_3"), Ok(ErrorKind::Other));
    }

    #[test]
    fn display_escapes_bytes() {
        use core::fmt::Write;
        let e = RpcError::classify(400, b"BAD\n\xff").unwrap();
        let mut s = heapless::String::<64>::new();
        write!(s, "{e}").unwrap();
        assert_eq!(s.as_str(), "rpc_error 400 BAD\\x0a\\xff");
    }
}
