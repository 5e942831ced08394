//! The `error_code` values of `bad_msg_notification` / `bad_server_salt`, exactly as the spec lists them
//! (service_messages_about_messages, "Notice of Ignored Error Message").
//!
//! The receive-side checks in this module tree return small verdict enums that map onto these codes, so a server
//! answers with the right code and a client can interpret a notification without guessing.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

/// A `bad_msg_notification` error code. The spec groups codes by `code >> 4` (1: msg_id, 2: seq_no, 3: salt,
/// 4: container); every defined value has a variant and anything else is [`UnknownBadMsgCode`] (item 43).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum BadMsgCode {
    /// 16: msg_id too low: the sender's clock is behind; resync from the notification's msg_id and resend with a
    /// new msg_id.
    MsgIdTooLow,
    /// 17: msg_id too high: the sender's clock is ahead; resync and resend.
    MsgIdTooHigh,
    /// 18: wrong two low bits (a client msg_id must be divisible by 4).
    MsgIdBadParity,
    /// 19: a container's msg_id equals one already received ("must never happen").
    ContainerIdReused,
    /// 20: too old: the receiver cannot tell whether it already saw this msg_id.
    MsgTooOld,
    /// 32: seq_no too low: a lower msg_id already came with a higher seq_no, or with this same odd seq_no.
    SeqNoTooLow,
    /// 33: seq_no too high: a higher msg_id already came with a lower seq_no, or with this same odd seq_no.
    SeqNoTooHigh,
    /// 34: an even seq_no was expected (a non-content-related message) but it is odd.
    EvenSeqNoExpected,
    /// 35: an odd seq_no was expected (a content-related message) but it is even.
    OddSeqNoExpected,
    /// 48: wrong server salt; comes as `bad_server_salt` carrying the right one.
    BadServerSalt,
    /// 64: invalid container.
    InvalidContainer,
}

/// A notification carried an `error_code` the spec does not define.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownBadMsgCode(pub i32);

impl BadMsgCode {
    /// The wire value.
    pub const fn code(self) -> i32 {
        match self {
            BadMsgCode::MsgIdTooLow => 16,
            BadMsgCode::MsgIdTooHigh => 17,
            BadMsgCode::MsgIdBadParity => 18,
            BadMsgCode::ContainerIdReused => 19,
            BadMsgCode::MsgTooOld => 20,
            BadMsgCode::SeqNoTooLow => 32,
            BadMsgCode::SeqNoTooHigh => 33,
            BadMsgCode::EvenSeqNoExpected => 34,
            BadMsgCode::OddSeqNoExpected => 35,
            BadMsgCode::BadServerSalt => 48,
            BadMsgCode::InvalidContainer => 64,
        }
    }

    /// Parses a wire value; an undefined code is an error, not a guess.
    pub const fn from_code(code: i32) -> Result<Self, UnknownBadMsgCode> {
        Ok(match code {
            16 => BadMsgCode::MsgIdTooLow,
            17 => BadMsgCode::MsgIdTooHigh,
            18 => BadMsgCode::MsgIdBadParity,
            19 => BadMsgCode::ContainerIdReused,
            20 => BadMsgCode::MsgTooOld,
            32 => BadMsgCode::SeqNoTooLow,
            33 => BadMsgCode::SeqNoTooHigh,
            34 => BadMsgCode::EvenSeqNoExpected,
            35 => BadMsgCode::OddSeqNoExpected,
            48 => BadMsgCode::BadServerSalt,
            64 => BadMsgCode::InvalidContainer,
            other => return Err(UnknownBadMsgCode(other)),
        })
    }

    /// Codes 16 and 17: the only ones after which the clock offset may be corrected from the notification's own
    /// msg_id (and only once the referenced id is proven ours, item 43).
    pub const fn is_time_sync(self) -> bool {
        matches!(self, BadMsgCode::MsgIdTooLow | BadMsgCode::MsgIdTooHigh)
    }
}

impl fmt::Display for BadMsgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            BadMsgCode::MsgIdTooLow => "msg_id too low",
            BadMsgCode::MsgIdTooHigh => "msg_id too high",
            BadMsgCode::MsgIdBadParity => "msg_id has wrong low bits",
            BadMsgCode::ContainerIdReused => "container msg_id reused",
            BadMsgCode::MsgTooOld => "message too old",
            BadMsgCode::SeqNoTooLow => "seq_no too low",
            BadMsgCode::SeqNoTooHigh => "seq_no too high",
            BadMsgCode::EvenSeqNoExpected => "even seq_no expected",
            BadMsgCode::OddSeqNoExpected => "odd seq_no expected",
            BadMsgCode::BadServerSalt => "bad server salt",
            BadMsgCode::InvalidContainer => "invalid container",
        };
        write!(f, "{} ({})", what, self.code())
    }
}

impl fmt::Display for UnknownBadMsgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown bad_msg_notification code {}", self.0)
    }
}

impl core::error::Error for UnknownBadMsgCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_rejected() {
        let defined = [16, 17, 18, 19, 20, 32, 33, 34, 35, 48, 64];
        for c in -5..200 {
            match BadMsgCode::from_code(c) {
                Ok(code) => {
                    assert!(defined.contains(&c));
                    assert_eq!(code.code(), c);
                }
                Err(e) => {
                    assert!(!defined.contains(&c));
                    assert_eq!(e, UnknownBadMsgCode(c));
                }
            }
        }
        assert!(BadMsgCode::MsgIdTooLow.is_time_sync() && BadMsgCode::MsgIdTooHigh.is_time_sync());
        assert!(!BadMsgCode::BadServerSalt.is_time_sync());
    }
}
