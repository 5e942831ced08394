//! The to-ack queue: received content-related msg_ids we still owe a `msgs_ack` for (SMM "Acknowledgment of
//! Receipt"; items 49, 54).
//!
//! Acks ride on the next outgoing message; a standalone `msgs_ack` is due once more than `flush_threshold` are
//! pending (spec: "say, over 16"), once the content bytes they acknowledge reach `flush_bytes`, or once the oldest
//! has waited `max_delay`. The byte rule is what keeps a sender bounded by its unacknowledged bytes moving: a few
//! large messages (a window of file parts) fill the sender's budget long before 16 of them arrive, and a receiver
//! with nothing else to send would otherwise hold their acks until the timer. Small messages still wait for 16.
//! One `msgs_ack` carries at most 8192 ids, so [`AckQueue::take_batch`] never yields more.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::{fmt, time::Duration};

use super::{
    limits::{DEFAULT_ACK_FLUSH_BYTES, DEFAULT_ACK_QUEUE, MAX_ACK_IDS},
    msg_id::MsgId,
};
use crate::time::Instant;

/// The queue holds `N` ids already: flush (send a `msgs_ack`) before accepting more. The message whose ack did
/// not fit must not be processed yet (or it would never be acknowledged and the peer would resend it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckQueueFull;

impl fmt::Display for AckQueueFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ack queue full")
    }
}

impl core::error::Error for AckQueueFull {}

/// Received msg_ids to acknowledge, oldest first, at most `N`.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AckQueue<const N: usize = DEFAULT_ACK_QUEUE> {
    ids: heapless::Deque<MsgId, N>,
    /// No pending id is above this (an upper bound, exact after a push, stale-high after pops): ids arrive mostly
    /// in increasing order, so a push above it skips the duplicate scan, and a container of `k` messages costs
    /// `k` comparisons instead of `k²/2`.
    high: Option<MsgId>,
    oldest_at: Option<Instant>,
    /// Body bytes of the messages pending (saturating; 0 once the queue empties).
    bytes: usize,
    flush_threshold: usize,
    max_delay: Duration,
    flush_bytes: usize,
}

impl<const N: usize> PartialEq for AckQueue<N> {
    fn eq(&self, other: &Self) -> bool {
        // `high` is a cache of `ids`, not state.
        self.ids.iter().eq(other.ids.iter())
            && self.oldest_at == other.oldest_at
            && self.bytes == other.bytes
            && self.flush_threshold == other.flush_threshold
            && self.max_delay == other.max_delay
            && self.flush_bytes == other.flush_bytes
    }
}

impl<const N: usize> AckQueue<N> {
    /// Makes this queue what [`new`](Self::new) and [`with_flush_bytes`](Self::with_flush_bytes) return, in place:
    /// a session restarted where it lies never holds a second `N`-entry queue on the stack.
    pub fn reinit(&mut self, flush_threshold: usize, max_delay: Duration, flush_bytes: usize) {
        let AckQueue {
            ids,
            high,
            oldest_at,
            bytes,
            flush_threshold: t,
            max_delay: d,
            flush_bytes: b,
        } = self;
        ids.clear();
        *high = None;
        *oldest_at = None;
        *bytes = 0;
        *t = flush_threshold;
        *d = max_delay;
        *b = flush_bytes;
    }

    /// An empty queue flushing above `flush_threshold` ids, at [`DEFAULT_ACK_FLUSH_BYTES`] content bytes, or after
    /// `max_delay`.
    pub const fn new(flush_threshold: usize, max_delay: Duration) -> Self {
        AckQueue {
            ids: heapless::Deque::new(),
            high: None,
            oldest_at: None,
            bytes: 0,
            flush_threshold,
            max_delay,
            flush_bytes: DEFAULT_ACK_FLUSH_BYTES,
        }
    }

    /// This queue flushing once the messages pending carry `flush_bytes` body bytes (0: as soon as anything is
    /// pending).
    pub const fn with_flush_bytes(mut self, flush_bytes: usize) -> Self {
        self.flush_bytes = flush_bytes;
        self
    }

    /// Ids pending.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: MsgId) -> bool {
        self.ids.iter().any(|&i| i == id)
    }

    /// Queues `id` received at `now`, counted as an empty message. An id already pending is not queued twice (a
    /// retransmission of a message not yet acked).
    pub fn push(&mut self, now: Instant, id: MsgId) -> Result<(), AckQueueFull> {
        self.push_message(now, id, 0)
    }

    /// Queues `id` received at `now` with a body of `len` bytes, which count towards the byte rule. An id already
    /// pending is not queued (nor counted) twice.
    pub fn push_message(&mut self, now: Instant, id: MsgId, len: usize) -> Result<(), AckQueueFull> {
        if self.high.is_some_and(|h| id <= h) && self.contains(id) {
            return Ok(());
        }
        self.ids.push_back(id).map_err(|_| AckQueueFull)?;
        self.high = Some(self.high.map_or(id, |h| h.max(id)));
        self.bytes = self.bytes.saturating_add(len);
        if self.oldest_at.is_none() {
            self.oldest_at = Some(now);
        }
        Ok(())
    }

    /// Body bytes of the messages pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a standalone `msgs_ack` is due whatever the time: more than `flush_threshold` ids, or `flush_bytes`
    /// content bytes, are pending.
    pub fn flush_due(&self) -> bool {
        !self.ids.is_empty() && (self.ids.len() > self.flush_threshold || self.bytes >= self.flush_bytes)
    }

    /// Whether a standalone `msgs_ack` is due at `now`.
    pub fn should_flush(&self, now: Instant) -> bool {
        self.flush_due() || self.poll_timeout().is_some_and(|t| t <= now)
    }

    /// When the oldest pending ack reaches its maximum delay.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.oldest_at.map(|t| t.saturating_add(self.max_delay))
    }

    /// Takes up to `limit` ids (never more than 8192, one `msgs_ack`'s worth), oldest first. The iterator's
    /// `len()` is the vector count to encode. Ids not consumed stay queued.
    pub fn take_batch(&mut self, limit: usize) -> AckBatch<'_, N> {
        let n = limit.min(MAX_ACK_IDS).min(self.ids.len());
        AckBatch {
            queue: self,
            remaining: n,
        }
    }
}

/// Ids taken from an [`AckQueue`], oldest first.
pub struct AckBatch<'a, const N: usize> {
    queue: &'a mut AckQueue<N>,
    remaining: usize,
}

impl<const N: usize> Iterator for AckBatch<'_, N> {
    type Item = MsgId;

    fn next(&mut self) -> Option<MsgId> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.queue.ids.pop_front()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<const N: usize> ExactSizeIterator for AckBatch<'_, N> {}

impl<const N: usize> Drop for AckBatch<'_, N> {
    fn drop(&mut self) {
        // Ids left behind are no newer than the batch's first, so keeping the old timestamp errs towards
        // flushing them early, never late.
        // The same for their bytes: kept whole until the last id goes, so a partial batch is followed by another.
        if self.queue.ids.is_empty() {
            self.queue.oldest_at = None;
            self.queue.high = None;
            self.queue.bytes = 0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn flush_by_count_and_by_delay() {
        let mut q: AckQueue<64> = AckQueue::new(16, Duration::from_secs(60));
        let t0 = Instant::from_secs(100);
        assert_eq!(q.poll_timeout(), None);
        for i in 0..16 {
            q.push(t0, MsgId(i * 4 + 1)).unwrap();
        }
        q.push(t0, MsgId(1)).unwrap(); // duplicate, not queued twice
        assert_eq!(q.len(), 16);
        assert!(!q.should_flush(t0));
        assert!(q.should_flush(Instant::from_secs(160)));
        q.push(t0, MsgId(1001)).unwrap();
        assert!(q.should_flush(t0));
        let batch: Vec<MsgId> = q.take_batch(10).collect();
        assert_eq!(batch.len(), 10);
        assert_eq!(batch[0], MsgId(1));
        assert_eq!(q.poll_timeout(), Some(Instant::from_secs(160)));
        let rest = q.take_batch(usize::MAX);
        assert_eq!(rest.len(), 7);
        assert_eq!(rest.count(), 7);
        assert!(q.is_empty());
        assert_eq!(q.poll_timeout(), None);
    }

    #[test]
    fn flush_by_bytes_before_the_count_and_the_timer() {
        let mut q: AckQueue<64> = AckQueue::new(16, Duration::from_secs(60)).with_flush_bytes(1000);
        let t0 = Instant::from_secs(100);
        assert!(!q.flush_due(), "nothing pending, nothing due");
        q.push_message(t0, MsgId(1), 600).unwrap();
        assert!(!q.should_flush(t0));
        q.push_message(t0, MsgId(1), 600).unwrap(); // a retransmission is not counted twice
        assert_eq!(q.bytes(), 600);
        assert!(!q.flush_due());
        q.push_message(t0, MsgId(5), 400).unwrap();
        assert!(q.flush_due() && q.should_flush(t0), "1000 bytes in two messages");
        assert_eq!(q.take_batch(1).count(), 1);
        assert!(q.flush_due(), "a partial batch leaves the bytes due");
        assert_eq!(q.take_batch(usize::MAX).count(), 1);
        assert_eq!(q.bytes(), 0);
        // 0: every content message is acknowledged at once.
        let mut q: AckQueue<64> = AckQueue::new(16, Duration::from_secs(60)).with_flush_bytes(0);
        assert!(!q.flush_due());
        q.push(t0, MsgId(9)).unwrap();
        assert!(q.flush_due());
        q.reinit(16, Duration::from_secs(60), usize::MAX);
        q.push_message(t0, MsgId(9), usize::MAX).unwrap();
        q.push_message(t0, MsgId(13), usize::MAX).unwrap();
        assert_eq!(q.bytes(), usize::MAX, "saturates");
    }

    #[test]
    fn duplicates_are_found_below_and_at_the_highest_pending_id() {
        let mut q: AckQueue<64> = AckQueue::new(16, Duration::from_secs(60));
        let t0 = Instant::from_secs(100);
        for id in [9, 5, 13] {
            q.push(t0, MsgId(id)).unwrap();
        }
        // The highest pending id, one below it, and one out of order below the first: all already queued.
        for id in [13, 9, 5] {
            q.push(t0, MsgId(id)).unwrap();
        }
        assert_eq!(q.len(), 3);
        // After a partial take the bound is stale-high: ids under it are still checked, new ones still queued.
        assert_eq!(q.take_batch(2).count(), 2);
        q.push(t0, MsgId(13)).unwrap();
        q.push(t0, MsgId(11)).unwrap();
        assert_eq!(q.take_batch(usize::MAX).collect::<Vec<_>>(), [MsgId(13), MsgId(11)]);
        // Emptied: the bound resets, so an id below the old one is queued again.
        q.push(t0, MsgId(1)).unwrap();
        q.push(t0, MsgId(1)).unwrap();
        assert_eq!(q.len(), 1);
    }
}
