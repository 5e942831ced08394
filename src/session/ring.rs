//! A fixed-capacity ring of entries kept sorted by a `u64` key: the storage behind the replay window and the
//! seq_no checker. Ids arrive almost in order, so the usual insert is an O(1) append and the usual eviction an
//! O(1) pop of the front; an out-of-order insert shifts whichever side of the ring is shorter.
#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use core::fmt;

/// An entry with a sort key.
pub(crate) trait Keyed: Copy {
    /// The key the ring is sorted by (ascending, unique).
    fn key(&self) -> u64;
}

/// Up to `N` entries sorted ascending by key, no two with the same key.
#[derive(Clone)]
pub(crate) struct SortedRing<T, const N: usize> {
    buf: [T; N],
    head: usize,
    len: usize,
}

impl<T: Keyed, const N: usize> SortedRing<T, N> {
    const NON_EMPTY: () = assert!(N > 0, "a sorted ring needs a non-zero capacity");

    /// An empty ring; `fill` only initialises unused slots.
    pub(crate) const fn new(fill: T) -> Self {
        let () = Self::NON_EMPTY;
        SortedRing {
            buf: [fill; N],
            head: 0,
            len: 0,
        }
    }

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) const fn is_full(&self) -> bool {
        self.len == N
    }

    fn phys(&self, i: usize) -> usize {
        // head < N and i < N, so the sum cannot overflow.
        (self.head + i) % N
    }

    /// The `i`-th smallest entry.
    pub(crate) fn get(&self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        self.buf.get(self.phys(i)).copied()
    }

    fn set(&mut self, i: usize, v: T) {
        let p = self.phys(i);
        if let Some(slot) = self.buf.get_mut(p) {
            *slot = v;
        }
    }

    pub(crate) fn first(&self) -> Option<T> {
        self.get(0)
    }

    pub(crate) fn last(&self) -> Option<T> {
        self.len.checked_sub(1).and_then(|i| self.get(i))
    }

    /// `Ok(i)` if an entry has `key` at position `i`, else `Err(i)` with the insertion position.
    pub(crate) fn search(&self, key: u64) -> Result<usize, usize> {
        // The common case (a new highest id) is answered without a binary search.
        match self.last() {
            None => return Err(0),
            Some(l) if l.key() < key => return Err(self.len),
            _ => {}
        }
        let (mut lo, mut hi) = (0usize, self.len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).map(|e| e.key()) {
                Some(k) if k < key => lo = mid + 1,
                Some(k) if k == key => return Ok(mid),
                _ => hi = mid,
            }
        }
        Err(lo)
    }

    /// Removes and returns the smallest entry.
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        let v = self.first()?;
        self.head = (self.head + 1) % N;
        self.len -= 1;
        Some(v)
    }

    /// Inserts `v` at sorted position `pos` (from [`search`](Self::search)); `Err(v)` if full or `pos` is past
    /// the end.
    pub(crate) fn insert(&mut self, pos: usize, v: T) -> Result<(), T> {
        if self.len == N || pos > self.len {
            return Err(v);
        }
        if pos < self.len / 2 {
            // Shift the front part one slot to the left (head moves back).
            self.head = (self.head + N - 1) % N;
            self.len += 1;
            for i in 0..pos {
                if let Some(next) = self.get(i + 1) {
                    self.set(i, next);
                }
            }
        } else {
            self.len += 1;
            let mut i = self.len - 1;
            while i > pos {
                if let Some(prev) = self.get(i - 1) {
                    self.set(i, prev);
                }
                i -= 1;
            }
        }
        self.set(pos, v);
        Ok(())
    }

    /// Entries in ascending order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = T> + '_ {
        (0..self.len).filter_map(move |i| self.get(i))
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

impl<T: Keyed + PartialEq, const N: usize> PartialEq for SortedRing<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<T: Keyed + Eq, const N: usize> Eq for SortedRing<T, N> {}

impl<T: Keyed + fmt::Debug, const N: usize> fmt::Debug for SortedRing<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl<T: Keyed, const N: usize> defmt::Format for SortedRing<T, N> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "SortedRing {{ len: {=usize}, capacity: {=usize} }}", self.len, N)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    impl Keyed for u64 {
        fn key(&self) -> u64 {
            *self
        }
    }

    proptest! {
        #[test]
        fn ring_stays_sorted_like_a_btreeset(ops in proptest::collection::vec((0u64..64, any::<bool>()), 0..400)) {
            let mut ring: SortedRing<u64, 16> = SortedRing::new(0);
            let mut model = BTreeSet::new();
            for (k, pop) in ops {
                if pop {
                    prop_assert_eq!(ring.pop_front(), model.pop_first());
                } else if let Err(pos) = ring.search(k) {
                    if ring.is_full() {
                        prop_assert!(ring.insert(pos, k).is_err());
                    } else {
                        ring.insert(pos, k).unwrap();
                        model.insert(k);
                    }
                } else {
                    prop_assert!(model.contains(&k));
                }
                prop_assert!(ring.iter().eq(model.iter().copied()));
                prop_assert_eq!(ring.len(), model.len());
            }
        }
    }
}
