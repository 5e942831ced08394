//! seq_no: generation on send and the server's validation on receipt (DESC "Message Sequence Number"; item 37).
//!
//! A message's seq_no is twice the number of content-related messages its sender created before it, plus one if
//! it is content-related itself. So odd seq_nos are unique, and along increasing msg_id the seq_no never
//! decreases. Content-related means "requires an acknowledgment": RPC queries and results, most service answers;
//! never `msgs_ack`, `msg_container`, `msg_copy` or `gzip_packed` on their own.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

use super::{
    bad_msg::BadMsgCode,
    limits::DEFAULT_REPLAY_WINDOW,
    msg_id::MsgId,
    ring::{Keyed, SortedRing},
};

/// The session has created 2^30 content-related messages: the next odd seq_no would not fit TL's signed `int`.
/// The engine must start a new session rather than wrap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqNoExhausted;

impl fmt::Display for SeqNoExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("seq_no space exhausted")
    }
}

impl core::error::Error for SeqNoExhausted {}

/// Outbound seq_nos for one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqNoGen {
    content_count: u32,
}

impl SeqNoGen {
    const MAX_COUNT: u32 = 1 << 30;

    /// A fresh session: no content-related messages yet.
    pub const fn new() -> Self {
        SeqNoGen { content_count: 0 }
    }

    /// The seq_no for the next message: `2n + 1` (then `n += 1`) if content-related, else `2n`.
    pub fn next(&mut self, content_related: bool) -> Result<u32, SeqNoExhausted> {
        let n = self.content_count;
        if n >= Self::MAX_COUNT {
            return Err(SeqNoExhausted);
        }
        if content_related {
            self.content_count = n + 1;
            Ok(2 * n + 1)
        } else {
            Ok(2 * n)
        }
    }

    /// Content-related messages created so far.
    pub const fn content_count(&self) -> u32 {
        self.content_count
    }
}

/// Why the server refuses a received seq_no; each maps onto its `bad_msg_notification` code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SeqNoError {
    /// 32: a message with a lower msg_id came with a higher seq_no, or with this same odd seq_no.
    TooLow,
    /// 33: a message with a higher msg_id came with a lower seq_no, or with this same odd seq_no.
    TooHigh,
    /// 34: the message is not content-related, so its seq_no must be even, but it is odd.
    EvenExpected,
    /// 35: the message is content-related, so its seq_no must be odd, but it is even.
    OddExpected,
}

impl SeqNoError {
    /// The `bad_msg_notification` code.
    pub const fn bad_msg_code(self) -> BadMsgCode {
        match self {
            SeqNoError::TooLow => BadMsgCode::SeqNoTooLow,
            SeqNoError::TooHigh => BadMsgCode::SeqNoTooHigh,
            SeqNoError::EvenExpected => BadMsgCode::EvenSeqNoExpected,
            SeqNoError::OddExpected => BadMsgCode::OddSeqNoExpected,
        }
    }
}

impl fmt::Display for SeqNoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.bad_msg_code(), f)
    }
}

impl core::error::Error for SeqNoError {}

/// One accepted message, as three 4-byte words: 12 bytes where a `(MsgId, u32)` pair is padded to 16, which is a
/// quarter of a DC's window (and, through the role enum, of every engine's size).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Seen {
    id_lo: u32,
    id_hi: u32,
    seq_no: u32,
}

impl Seen {
    const fn new(id: MsgId, seq_no: u32) -> Self {
        Seen {
            id_lo: id.0 as u32,
            id_hi: (id.0 >> 32) as u32,
            seq_no,
        }
    }
}

impl Keyed for Seen {
    fn key(&self) -> u64 {
        (u64::from(self.id_hi) << 32) | u64::from(self.id_lo)
    }
}

/// The server's check of received seq_nos (errors 32-35), exactly as the spec defines them.
///
/// It remembers the (msg_id, seq_no) of the last `N` accepted messages. Everything accepted satisfies the
/// invariant "seq_no non-decreasing along msg_id, odd values unique", so comparing a new message with its nearest
/// remembered neighbours below and above decides 32/33 exactly as comparing it with every earlier message would.
/// A message older than everything remembered is refused beforehand by the replay window of the same size
/// (code 20), so the bounded memory loses no verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SeqNoChecker<const N: usize = DEFAULT_REPLAY_WINDOW> {
    seen: SortedRing<Seen, N>,
}

impl<const N: usize> Default for SeqNoChecker<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SeqNoChecker<N> {
    /// A fresh session.
    pub const fn new() -> Self {
        SeqNoChecker {
            seen: SortedRing::new(Seen::new(MsgId(0), 0)),
        }
    }

    /// Forgets every accepted message, in place: what [`new`](Self::new) returns, without an `N`-entry value on the
    /// stack.
    pub fn clear(&mut self) {
        self.seen.clear();
    }

    /// Checks a received message's seq_no: parity against `content_related` first (34/35), then order against
    /// the messages already accepted (32/33). Changes nothing; call [`record`](Self::record) once the message is
    /// accepted.
    pub fn check(&self, id: MsgId, seq_no: u32, content_related: bool) -> Result<(), SeqNoError> {
        let odd = seq_no % 2 == 1;
        if content_related && !odd {
            return Err(SeqNoError::OddExpected);
        }
        if !content_related && odd {
            return Err(SeqNoError::EvenExpected);
        }
        let (below, above) = match self.seen.search(id.0) {
            Ok(i) => (i.checked_sub(1), i + 1),
            Err(i) => (i.checked_sub(1), i),
        };
        if let Some(p) = below.and_then(|i| self.seen.get(i))
            && (p.seq_no > seq_no || (p.seq_no == seq_no && odd))
        {
            return Err(SeqNoError::TooLow);
        }
        if let Some(q) = self.seen.get(above)
            && (q.seq_no < seq_no || (q.seq_no == seq_no && odd))
        {
            return Err(SeqNoError::TooHigh);
        }
        Ok(())
    }

    /// Remembers an accepted message; the lowest is forgotten when full. An id already remembered, or lower
    /// than everything in a full memory, changes nothing.
    pub fn record(&mut self, id: MsgId, seq_no: u32) {
        let pos = match self.seen.search(id.0) {
            Ok(_) => return,
            Err(0) if self.seen.is_full() => return,
            Err(pos) => pos,
        };
        let pos = if self.seen.is_full() {
            self.seen.pop_front();
            pos - 1
        } else {
            pos
        };
        let _ = self.seen.insert(pos, Seen::new(id, seq_no));
    }

    /// [`check`](Self::check), then [`record`](Self::record) on success.
    pub fn check_and_record(&mut self, id: MsgId, seq_no: u32, content_related: bool) -> Result<(), SeqNoError> {
        self.check(id, seq_no, content_related)?;
        self.record(id, seq_no);
        Ok(())
    }

    /// The highest content-related seq_no accepted among the remembered messages.
    pub fn highest_content_seq_no(&self) -> Option<u32> {
        self.seen.iter().filter(|s| s.seq_no % 2 == 1).map(|s| s.seq_no).max()
    }

    /// Messages remembered.
    pub const fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub const fn is_empty(&self) -> bool {
        self.seen.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generator_sequence() {
        let mut g = SeqNoGen::new();
        let kinds = [false, true, true, false, true, false, false];
        let seqs: [u32; 7] = kinds.map(|k| g.next(k).unwrap());
        assert_eq!(seqs, [0, 1, 3, 4, 5, 6, 6]);
        assert_eq!(g.content_count(), 3);
        let mut g = SeqNoGen { content_count: 1 << 30 };
        assert_eq!(g.next(false), Err(SeqNoExhausted));
    }

    #[test]
    fn ids_are_ordered_by_all_64_bits() {
        // Packed as two words: 2^32 must stay above 2^32 - 4, whose low word is the larger.
        let mut c: SeqNoChecker<4> = SeqNoChecker::new();
        c.check_and_record(MsgId(1 << 32), 5, true).unwrap();
        assert_eq!(c.check(MsgId((1 << 32) - 4), 7, true), Err(SeqNoError::TooHigh));
        assert_eq!(c.check(MsgId((1 << 32) + 4), 3, true), Err(SeqNoError::TooLow));
        assert_eq!(c.check(MsgId((1 << 32) - 4), 3, true), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_forgets_the_lowest() {
        let mut c: SeqNoChecker<4> = SeqNoChecker::new();
        for i in 1..=6u64 {
            c.check_and_record(MsgId(i * 4), 2 * i as u32 - 1, true).unwrap();
        }
        assert_eq!(c.len(), 4);
        // The first two are forgotten: a stale id below everything remembered is left to the replay window.
        c.record(MsgId(4), 1);
        assert_eq!(c.len(), 4);
        assert_eq!(c.highest_content_seq_no(), Some(11));
        assert_eq!(c.check(MsgId(26), 11, true), Err(SeqNoError::TooLow));
        assert_eq!(c.check(MsgId(14), 9, true), Err(SeqNoError::TooHigh));
    }

    #[test]
    fn codes() {
        assert_eq!(SeqNoError::TooLow.bad_msg_code().code(), 32);
        assert_eq!(SeqNoError::TooHigh.bad_msg_code().code(), 33);
        assert_eq!(SeqNoError::EvenExpected.bad_msg_code().code(), 34);
        assert_eq!(SeqNoError::OddExpected.bad_msg_code().code(), 35);
    }
}
