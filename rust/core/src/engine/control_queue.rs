//! The engine's queue of control events, earliest first: by time, then by
//! insertion order (`Scheduled::seq`, which the engine never repeats).
//! A binary heap of entries keyed by the pair packed into one `u128`, so a
//! comparison in its sifts is one wide compare instead of the derived
//! field-by-field order (a storm pushes and pops about four control events
//! a resize, into a heap of about 40: measured with callgrind, 1.25 % of
//! an aggregated storm). A ring kept sorted cost more than the heap (its
//! inserts land about a quarter of the way in, and shift).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::event::{Scheduled, What};

/// One waiting event, ordered so that the heap's greatest is the earliest.
#[derive(Clone, Copy)]
struct Entry {
    /// [`Scheduled::key`]: `t` in the high half, `seq` in the low half.
    key: u128,
    dev: u32,
    what: What,
}

impl Entry {
    fn new(ev: Scheduled) -> Self {
        Self {
            key: ev.key(),
            dev: ev.dev,
            what: ev.what,
        }
    }

    fn scheduled(self) -> Scheduled {
        Scheduled {
            t: (self.key >> 64) as u64,
            seq: self.key as u64,
            dev: self.dev,
            what: self.what,
        }
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Reversed: the heap is a max-heap, the queue wants the earliest.
impl Ord for Entry {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The waiting control events (see the module doc).
#[derive(Default)]
pub(super) struct ControlQueue {
    heap: BinaryHeap<Entry>,
}

impl ControlQueue {
    /// Add `ev`; its `seq` must be unlike every other waiting event's.
    #[inline]
    pub fn push(&mut self, ev: Scheduled) {
        self.heap.push(Entry::new(ev));
    }

    /// The earliest event's time, if any.
    #[inline]
    pub fn next_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| (e.key >> 64) as u64)
    }

    /// Take the earliest event, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<Scheduled> {
        self.heap.pop().map(Entry::scheduled)
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Reverse;

    use super::*;

    proptest::proptest! {
        /// The queue pops what a binary heap of the same events (in their
        /// derived order) pops, in every order of pushes and pops.
        #[test]
        fn pops_as_a_binary_heap_of_events(ops in proptest::collection::vec((proptest::prelude::any::<u64>(), 0u64..40, 0u32..4, proptest::prelude::any::<bool>()), 0..300)) {
            let mut q = ControlQueue::default();
            let mut h = BinaryHeap::new();
            let mut seq = 0;
            for (wide, t, dev, pop) in ops {
                if pop && dev == 0 {
                    proptest::prop_assert_eq!(q.pop(), h.pop().map(|Reverse(e)| e));
                } else {
                    seq += 1 + wide % 3;
                    // Times near each other (ties) and anywhere in u64.
                    let t = if dev == 3 { wide } else { t };
                    let what = if dev == 1 { What::Batch(crate::engine::event::Run { slot: wide as u32, start: 0 }) } else { What::Step };
                    let ev = Scheduled { t, seq, dev, what };
                    q.push(ev);
                    h.push(Reverse(ev));
                }
                proptest::prop_assert_eq!(q.next_time(), h.peek().map(|Reverse(e)| e.t));
            }
            while let Some(Reverse(e)) = h.pop() {
                proptest::prop_assert_eq!(q.pop(), Some(e));
            }
            proptest::prop_assert_eq!(q.pop(), None);
        }
    }
}
