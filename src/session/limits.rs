//! The session layer's bounds, in two kinds kept apart so each has one source of truth:
//! - **run-time policy** ([`Limits`]): durations, byte budgets and per-message counts a configuration may change
//!   at run time; every field is read by the engine (a field nothing reads would be a promise nothing keeps).
//! - **capacities**: the sizes of fixed arrays, which are const generics of their structures, defaulting to the
//!   `DEFAULT_*` constants below (the replay window, the to-ack queue, the sent-message tracker `MSGS`, the client's
//!   future-salt store). Outside this module: the frame limit is the decoder's const generic `RX` (capped by
//!   `transport::DEFAULT_MAX_FRAME`), and the DC's handshake table is `ServerHandshakes<N>` with its runs' lifetime
//!   in `handshake::ServerConfig::run_lifetime`.
//!
//! The README's limits table follows the docs below: each starts with a one-line summary, then `Default: ...` and
//! the reason.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

/// Default capacity of the received-msg_id replay window (`ReplayWindow`'s const generic; item 33): above tdlib's
/// 1000 and gotd's 100; a full window refuses ids below everything it stores.
pub const DEFAULT_REPLAY_WINDOW: usize = 1024;
/// Most ids one `msgs_ack`, `msgs_state_req` or `msg_resend_req` may carry (item 49).
pub const MAX_ACK_IDS: usize = 8192;
/// Default capacity of the to-ack queue (`AckQueue`'s const generic; item 54): far above the flush threshold, so a
/// full queue means the host is not draining packets, and the message whose ack did not fit waits.
pub const DEFAULT_ACK_QUEUE: usize = 1024;
/// Default of [`Limits::ack_flush_bytes`]: content bytes received after which their acknowledgement goes at once.
pub const DEFAULT_ACK_FLUSH_BYTES: usize = 64 * 1024;
/// Most salts one `future_salts` answer may carry, and the default client store size (item 44).
pub const MAX_FUTURE_SALTS: usize = 64;
/// Default number of messages the sent-message tracker holds (the engine's `MSGS`; item 54): bounds the requests
/// in flight; beyond it `send` reports backpressure.
pub const DEFAULT_UNACKED_MSGS: usize = 64;
/// Most `gzip_packed` work one received packet may cause, in multiples of the engine's receive buffer `RX`:
/// compressed bytes read plus bytes inflated, by every member of the packet, failed attempts included (item 50,
/// attack B14; counted in `Stats::inflate_work`). Past it, members fail as too large.
///
/// 2, because no legitimate packet needs more: what its members inflate to lies side by side in the `RX`-byte
/// inflate buffer (at most `RX` in all), what they inflate from lies in the packet (at most `RX`), and a member
/// whose trailer announces more than fits is refused before inflating. Only failing members could spend more:
/// without the bound each one inflated up to a whole buffer and kept nothing, so a 64 KiB packet of 354 of them
/// cost about 22 MiB of DEFLATE output; with it, inflating costs at most twice the bytes of the largest packet.
pub const INFLATE_WORK_PER_RX: usize = 2;

/// The session layer's resource bounds. `Limits::DEFAULT` is a `const`, so a configuration can live in a `static`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Limits {
    /// Largest `gzip_packed` inflate output.
    /// Default: 16 MiB. Matches `max_frame` so a legitimate gzipped container fits; stops decompression bombs
    /// (item 50; B14). gotd uses 10 MiB.
    pub max_gzip_output: usize,
    /// Most messages in one `msg_container`.
    /// Default: 1024. The spec's own limit (item 48).
    pub max_container_messages: usize,
    /// Most msg_ids in one `msgs_ack`, `msgs_state_req` or `msg_resend_req`, inbound or outbound.
    /// Default: 8192. The spec's limit (item 49); bounds the work a single request can trigger.
    pub max_ack_ids: usize,
    /// How far in the past a received msg_id's time may lie.
    /// Default: 300 s. The spec's window (item 34); older ids are dropped (server answers code 16).
    pub msg_id_max_past: Duration,
    /// How far in the future a received msg_id's time may lie.
    /// Default: 30 s. The spec's window (item 34); later ids are dropped (server answers code 17).
    pub msg_id_max_future: Duration,
    /// DC: how far in the past the msg_ids of a server session that starts on this connection (the host answered
    /// [`HostQuery::Session`](super::HostQuery::Session) with no connection that holds it) may lie.
    /// Default: 30 s, the future tolerance mirrored. A copy of a message executed more than this long ago cannot
    /// start its session again with an empty replay window: older ids are answered code 16 and the client re-sends
    /// under a new msg_id (items 33, 38; attack B7). So a host must keep a session only for
    /// [`session_retention`](Self::session_retention) after its last message, not for the whole 300 s window. It
    /// costs a client whose clock runs behind the DC's by more than this one extra round trip per new session.
    pub new_session_max_age: Duration,
    /// Total body bytes of unacknowledged outbound messages kept for resending.
    /// Default: 1 MiB. Enough for one maximal Telegram message (1,044,448 bytes) in flight; beyond it `send`
    /// reports backpressure instead of growing (item 54).
    pub max_unacked_bytes: usize,
    /// Pending acks above which a standalone `msgs_ack` is due.
    /// Default: 16. The spec's "say, over 16" (item 54).
    pub ack_flush_threshold: usize,
    /// Body bytes of the content messages awaiting acknowledgement at which a standalone `msgs_ack` is due (0: every
    /// content message is acknowledged at once).
    /// Default: 64 KiB. The peer keeps what it sent until acknowledged, within a budget of bytes (ours:
    /// [`max_unacked_bytes`](Self::max_unacked_bytes) and the resend arena); when a few large messages fill it, 16 of
    /// them never arrive and the peer would wait for [`ack_max_delay`](Self::ack_max_delay) (a window of file parts
    /// ran at 0.7 MiB/s so). A sender whose budget is at least this plus its largest message never waits for that
    /// timer. The cost is one small packet per 64 KiB received while the receiver has nothing else to send (< 0.2 %
    /// of the bytes); small messages, the traffic of a chatty session, are still acknowledged 16 at a time.
    pub ack_flush_bytes: usize,
    /// Longest an ack may wait for a message to ride on.
    /// Default: 60 s. The low end of the spec's 60-120 s, so the peer does not resend needlessly (item 54).
    pub ack_max_delay: Duration,
    /// Server role: how long the previous salt stays accepted after rotation.
    /// Default: 1800 s. The spec's grace period (item 35).
    pub salt_grace: Duration,
    /// Server role: how often the salt rotates.
    /// Default: 24 h. The spec's "say, every 24 hours" (item 35).
    pub salt_rotation: Duration,
    /// Server role: resend bytes a session may draw at once (`msg_resend_req` answers).
    /// Default: 256 KiB. Derived; caps resend amplification (item 49; B16).
    pub resend_burst_bytes: u64,
    /// Server role: resend bytes per second refilled into the budget.
    /// Default: 64 KiB/s. Derived; a flood of resend requests gets at most this sustained rate (item 49; B16).
    pub resend_bytes_per_sec: u64,
    /// Times an unacknowledged message is resent before its request fails.
    /// Default: 6. Derived; with the backoff below this is about five minutes of trying.
    pub max_resend_attempts: u8,
}

impl Limits {
    /// The documented defaults.
    pub const DEFAULT: Limits = Limits {
        max_gzip_output: 16 * 1024 * 1024,
        max_container_messages: 1024,
        max_ack_ids: MAX_ACK_IDS,
        msg_id_max_past: Duration::from_secs(300),
        msg_id_max_future: Duration::from_secs(30),
        new_session_max_age: Duration::from_secs(30),
        max_unacked_bytes: 1024 * 1024,
        ack_flush_threshold: 16,
        ack_flush_bytes: DEFAULT_ACK_FLUSH_BYTES,
        ack_max_delay: Duration::from_secs(60),
        salt_grace: Duration::from_secs(1800),
        salt_rotation: Duration::from_secs(24 * 3600),
        resend_burst_bytes: 256 * 1024,
        resend_bytes_per_sec: 64 * 1024,
        max_resend_attempts: 6,
    };

    /// DC: how long after a client session's last received message a host must still be able to hand it over
    /// ([`Connection::resume_session`](super::Connection::resume_session)) instead of letting a new session of the same id
    /// start: [`new_session_max_age`](Self::new_session_max_age) + [`msg_id_max_future`](Self::msg_id_max_future)
    /// (60 s by default). A copy of one of its messages carries a msg_id at most `msg_id_max_future` ahead of the
    /// DC's clock at the time it was received, so once this has passed a new session's floor refuses it.
    pub const fn session_retention(&self) -> Duration {
        self.new_session_max_age.saturating_add(self.msg_id_max_future)
    }

    /// Rejects configurations that would make the engine useless or exceed a spec limit: a zero output or resend
    /// budget, or a container or ack limit above the spec's.
    pub const fn validate(&self) -> Result<(), InvalidLimits> {
        if self.max_gzip_output == 0
            || self.max_unacked_bytes == 0
            || self.max_container_messages == 0
            || self.max_ack_ids == 0
            || self.resend_bytes_per_sec == 0
        {
            return Err(InvalidLimits::Zero);
        }
        if self.max_container_messages > 1024 || self.max_ack_ids > MAX_ACK_IDS {
            return Err(InvalidLimits::AboveSpec);
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A [`Limits`] value that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InvalidLimits {
    /// A capacity or rate is zero.
    Zero,
    /// A bound exceeds what the spec allows on the wire (1024 container messages, 8192 ids).
    AboveSpec,
}

impl fmt::Display for InvalidLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidLimits::Zero => "a session limit is zero",
            InvalidLimits::AboveSpec => "a session limit exceeds the protocol's maximum",
        })
    }
}

impl core::error::Error for InvalidLimits {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_rejected() {
        const D: Limits = Limits::DEFAULT;
        assert_eq!(D.validate(), Ok(()));
        assert_eq!(Limits::default(), D);
        assert_eq!(
            Limits {
                max_unacked_bytes: 0,
                ..D
            }
            .validate(),
            Err(InvalidLimits::Zero)
        );
        assert_eq!(
            Limits {
                resend_bytes_per_sec: 0,
                ..D
            }
            .validate(),
            Err(InvalidLimits::Zero)
        );
        assert_eq!(
            Limits {
                max_container_messages: 1025,
                ..D
            }
            .validate(),
            Err(InvalidLimits::AboveSpec)
        );
        assert_eq!(
            Limits { max_ack_ids: 8193, ..D }.validate(),
            Err(InvalidLimits::AboveSpec)
        );
    }
}
