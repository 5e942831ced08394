//! Server side: which transport does a new connection speak? Decided from its first bytes, without consuming
//! them (the caller then feeds the same bytes to the matching codec).
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::obfuscated::{INIT_LEN, ProxySecret, server_accept};
use super::{Framing, TransportError};

/// Largest payload a connection may announce in its first full-transport frame and still be taken for one.
pub const FULL_DETECT_MAX: u32 = 16 * 1024 * 1024;

/// The verdict on a connection prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Detected {
    /// Undecided: at least this many bytes in total are needed.
    NeedMore(usize),
    /// A plain framing, announced by its marker (abridged, intermediate, padded) or by a first full-transport
    /// header (a plausible length, then seqno 0). Feed from byte 0 to a server [`super::FrameDecoder`] that expects
    /// the marker.
    Plain(Framing),
    /// A valid obfuscated init: feed from byte 0 to [`super::obfuscated::ObfuscatedCodec::server`]. Valid is not
    /// fresh: a recorded init replayed by a prober is detected alike. The DC
    /// [`Connection`](crate::session::Connection) checks it against the host's replay cache before reading a frame
    /// ([`HostQuery::ObfuscatedInit`](crate::session::HostQuery::ObfuscatedInit)); a host that runs
    /// [`super::obfuscated::ObfuscatedCodec`] itself calls [`super::replay::ReplayCache::check_obfuscated_init`].
    Obfuscated {
        /// The framing named by the decrypted tag.
        framing: Framing,
        /// The unvalidated DC id field.
        dc_id: i16,
    },
    /// An HTTP request (`POST`, `GET `, `HEAD`, `OPTI`): for an HTTP carriage.
    Http,
    /// A TLS record header (`16 03 ..`): for a fake-TLS (`ee` secret) carriage.
    FakeTls,
    /// 64 bytes that are no valid obfuscated init (wrong tag, wrong secret or a tag the secret forbids).
    Rejected(TransportError),
}

const HTTP: [[u8; 4]; 4] = [*b"POST", *b"GET ", *b"HEAD", *b"OPTI"];

/// Classifies the first bytes of a connection. Only the first 64 bytes are ever looked at.
pub fn detect(prefix: &[u8], secret: Option<&ProxySecret>) -> Detected {
    let Some(&b0) = prefix.first() else {
        return Detected::NeedMore(1);
    };
    if b0 == 0xef {
        return Detected::Plain(Framing::Abridged);
    }
    let Some(first) = prefix.first_chunk::<4>() else {
        // Decide TLS early; everything else needs a whole word.
        return match prefix {
            [0x16, 0x03, ..] => Detected::FakeTls,
            _ => Detected::NeedMore(4),
        };
    };
    match *first {
        [0xee, 0xee, 0xee, 0xee] => return Detected::Plain(Framing::Intermediate),
        [0xdd, 0xdd, 0xdd, 0xdd] => return Detected::Plain(Framing::PaddedIntermediate),
        [0x16, 0x03, ..] => return Detected::FakeTls,
        w if HTTP.contains(&w) => return Detected::Http,
        _ => {}
    }
    let Some(head) = prefix.first_chunk::<8>() else {
        return Detected::NeedMore(8);
    };
    let [l0, l1, l2, l3, s0, s1, s2, s3] = *head;
    let len = u32::from_le_bytes([l0, l1, l2, l3]);
    // An obfuscated init never has zero bytes 4..8 (docs/CHECKLIST.md item 7), exactly so that it cannot be confused
    // with a first full frame, whose seqno there is 0.
    if [s0, s1, s2, s3] == [0; 4] && len >= 16 && len.is_multiple_of(4) && len - 12 <= FULL_DETECT_MAX {
        return Detected::Plain(Framing::Full);
    }
    let Some(init) = prefix.first_chunk::<INIT_LEN>() else {
        return Detected::NeedMore(INIT_LEN);
    };
    match server_accept(init, secret) {
        Ok(acc) => Detected::Obfuscated {
            framing: acc.framing,
            dc_id: acc.dc_id,
        },
        Err(e) => Detected::Rejected(e),
    }
}
