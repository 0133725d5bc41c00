//! The host CPUs as the per-event engine models them: each keeps the
//! deliveries waiting for its interrupt handler in a bounded FIFO, and the
//! handler serves them one at a time, `service_ns` each.
//!
//! The engine is the FIFO's only producer and only consumer (an embedder
//! takes what waits through `Engine::drain`, on the engine's thread), so it
//! is a plain ring: no atomics and no split ends on the per-event path.
//! [`crate::queue::DeliveryQueue`] is the lock-free one, for an embedding
//! simulator that delivers on one thread and handles on another.
//!
//! The handler is evaluated lazily: a CPU serves what is due only when an
//! interrupt arrives there, exact because arrivals come in time order. Its
//! counters are therefore those as of its last arrival, and the depth it
//! observes is its own count of what it queued, which an embedder's drain
//! does not reset: the count is resynchronised when serving finds the FIFO
//! empty. Both are what the results have always reported.

use crate::queue::{CpuHandler, Delivery, Waiting};

/// What became of an interrupt that reached a CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrival {
    /// The handler was idle with nothing waiting: it took the interrupt at once.
    Served,
    /// It waits in the CPU's FIFO.
    Queued,
    /// The FIFO was full: nothing changed.
    Full,
}

/// One host CPU: its waiting deliveries and its handler.
#[derive(Debug, Clone)]
pub(super) struct HostCpu {
    /// Deliveries waiting, oldest first (grown on demand up to `capacity`).
    waiting: Ring,
    /// Most deliveries that may wait.
    capacity: usize,
    /// The handler: its time, its counters, and `queued`, its own count of
    /// what waits, which may exceed what does after an embedder's drain
    /// (see the module doc).
    pub handler: CpuHandler,
}

impl HostCpu {
    /// An idle CPU whose FIFO holds at most `capacity` deliveries.
    pub fn new(capacity: usize) -> Self {
        Self {
            waiting: Ring::default(),
            capacity,
            handler: CpuHandler::default(),
        }
    }

    /// Delivery `d` arrives (at `d.time_ns`, never before an earlier
    /// arrival). With a service time the handler first serves what is due
    /// and takes the arrival at once when it is free with nothing waiting;
    /// otherwise (or without a service time, when deliveries wait for an
    /// embedder to drain them) it waits, or finds the FIFO full.
    ///
    /// Branches, not selections: a branch-free version of the common case
    /// (fewer mispredicts in the storm, where a CPU's load makes them coin
    /// flips) ran 8 % slower than this on the FPGA scenario, whose CPUs are
    /// mostly idle and the branches easy to predict, and "nothing else gets
    /// slower" decided (benches/README.md, issue 14).
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn arrive(&mut self, d: Delivery, service_ns: Option<u64>) -> Arrival {
        let t = d.time_ns;
        if let Some(s) = service_ns {
            let h = &mut self.handler;
            // A handler busy past `t` has nothing due, and nothing would be
            // after the push either: asked first, as it is the likelier.
            if h.busy_until_ns <= t {
                if h.queued > 0 {
                    h.advance(&mut self.waiting, t, s);
                }
                // Idle with nothing queued: the push and the pop that would
                // follow cancel out.
                if h.serve_now(t, s) {
                    return Arrival::Served;
                }
            }
        }
        if self.waiting.len >= self.capacity {
            return Arrival::Full;
        }
        self.push(d);
        let h = &mut self.handler;
        h.queued += 1;
        h.observe_depth(h.queued);
        Arrival::Queued
    }

    /// Take everything waiting, oldest first (the handler's count stays).
    pub fn drain(&mut self) -> Vec<Delivery> {
        self.waiting.drain()
    }

    /// Append to the FIFO, growing it by doubling but never past `capacity`
    /// (the memory estimate counts `capacity` deliveries per CPU).
    fn push(&mut self, d: Delivery) {
        if self.waiting.len == self.waiting.slots.len() {
            self.waiting.grow(self.capacity);
        }
        self.waiting.put_behind(d);
        self.waiting.len += 1;
    }
}

impl Waiting for Ring {
    #[inline]
    fn take_oldest(&mut self) -> Option<Delivery> {
        self.pop()
    }
}

/// A FIFO of deliveries in a ring of slots, grown on demand.
#[derive(Debug, Clone, Default)]
struct Ring {
    /// The slots; those from `head` on (wrapping) for `len` are waiting.
    slots: Vec<Delivery>,
    /// Slot of the oldest.
    head: usize,
    /// How many wait.
    len: usize,
}

impl Ring {
    /// Slot `i` positions past `from`, wrapped.
    #[inline]
    fn slot(&self, from: usize, i: usize) -> usize {
        let at = from + i;
        if at >= self.slots.len() {
            at - self.slots.len()
        } else {
            at
        }
    }

    /// Write `d` in the slot behind the waiting ones (the caller made room:
    /// `len < slots.len()`); it waits once `len` counts it.
    #[inline]
    fn put_behind(&mut self, d: Delivery) {
        let at = self.slot(self.head, self.len);
        if let Some(s) = self.slots.get_mut(at) {
            *s = d;
        }
    }

    /// Take the oldest, if any.
    #[inline]
    fn pop(&mut self) -> Option<Delivery> {
        if self.len == 0 {
            return None;
        }
        let d = self.slots.get(self.head).copied();
        self.head = self.slot(self.head, 1);
        self.len -= 1;
        d
    }

    /// Double the slots (at least 8), but to no more than `capacity`,
    /// keeping the order.
    #[cold]
    fn grow(&mut self, capacity: usize) {
        let n = (self.slots.len() * 2).max(8).min(capacity);
        let mut slots = Vec::with_capacity(n);
        slots
            .extend((0..self.len).filter_map(|i| self.slots.get(self.slot(self.head, i)).copied()));
        slots.resize(n, Delivery::default());
        self.slots = slots;
        self.head = 0;
    }

    /// Take everything, oldest first.
    fn drain(&mut self) -> Vec<Delivery> {
        let out = (0..self.len)
            .filter_map(|i| self.slots.get(self.slot(self.head, i)).copied())
            .collect();
        self.head = 0;
        self.len = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{CpuHandler, DeliveryQueue};

    fn at(t: u64) -> Delivery {
        Delivery {
            time_ns: t,
            device: (t % 3) as u32,
            entry: (t % 5) as u32,
            cpu: 0,
            vector: 0x40,
        }
    }

    /// The model this replaces, kept as the reference: a lock-free ring and
    /// [`CpuHandler`], as the engine drove them.
    struct Reference {
        q: DeliveryQueue,
        h: CpuHandler,
    }

    impl Reference {
        fn arrive(&mut self, d: Delivery, service: Option<u64>) -> Arrival {
            let (q, h, t) = (&mut self.q, &mut self.h, d.time_ns);
            if let Some(s) = service {
                if h.queued > 0 {
                    h.advance(q, t, s);
                }
                if h.serve_now(t, s) {
                    return Arrival::Served;
                }
            }
            if q.push(d).is_err() {
                return Arrival::Full;
            }
            h.queued += 1;
            h.observe_depth(h.queued);
            if let Some(s) = service {
                h.advance(q, t, s);
            }
            Arrival::Queued
        }
    }

    /// Drive both with the same arrivals (and drains at the given steps)
    /// and compare every observable: outcomes, drained contents, counters.
    fn same_as_reference(times: &[u64], service: Option<u64>, cap: usize, drains: &[usize]) {
        let mut r = Reference {
            q: DeliveryQueue::new(cap).unwrap(),
            h: CpuHandler::default(),
        };
        let mut c = HostCpu::new(cap);
        for (i, &t) in times.iter().enumerate() {
            if drains.contains(&i) {
                assert_eq!(c.drain(), r.q.drain(), "drain before arrival {i}");
            }
            assert_eq!(c.arrive(at(t), service), r.arrive(at(t), service), "{i}");
            let (h, ch) = (&r.h, &c.handler);
            let counters = (ch.handled, ch.wait_ns, ch.max_wait_ns, ch.max_depth);
            assert_eq!(counters, (h.handled, h.wait_ns, h.max_wait_ns, h.max_depth));
            assert_eq!((ch.busy_until_ns, ch.queued), (h.busy_until_ns, h.queued));
        }
        assert_eq!(c.drain(), r.q.drain());
    }

    #[test]
    fn serves_and_queues_exactly_as_the_ring_and_handler_did() {
        // Bursts that queue, gaps that empty the queue, equal times.
        let times: Vec<u64> = (0..400u64)
            .map(|i| i * 7 + (i % 11) * 13 + (i / 50) * 900)
            .scan(0, |last, t| {
                *last = t.max(*last);
                Some(*last)
            })
            .collect();
        for service in [Some(1), Some(10), Some(30), Some(1_000), None] {
            for cap in [1, 2, 5, 64] {
                same_as_reference(&times, service, cap, &[]);
                // An embedder's drains mid-run leave the handler's count stale.
                same_as_reference(&times, service, cap, &[3, 40, 41, 200]);
            }
        }
    }

    #[test]
    fn a_full_fifo_refuses_and_the_capacity_bounds_the_ring() {
        let mut c = HostCpu::new(3);
        assert_eq!(c.arrive(at(0), Some(100)), Arrival::Served);
        for t in 1..=3 {
            assert_eq!(c.arrive(at(t), Some(100)), Arrival::Queued);
        }
        assert_eq!(c.arrive(at(4), Some(100)), Arrival::Full);
        assert_eq!(c.handler.max_depth, 3);
        assert_eq!(c.waiting.slots.len(), 3);
        assert_eq!(c.drain(), vec![at(1), at(2), at(3)]);
    }
}
