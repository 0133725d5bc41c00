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
//! The handler's counters are those as of each CPU's last arrival (what it
//! had served by then), and the depth it observes is its own count of what
//! it queued, which an embedder's drain does not reset: the count is
//! resynchronised when the handler is found idle. Both are what the results
//! have always reported.
//!
//! With a service time the handler is evaluated in closed form rather than
//! item by item: the service time is the same for every interrupt and
//! arrivals come in time order, so a queued interrupt starts exactly when
//! the work accepted before it ends (Lindley's recursion), and what still
//! waits at time `t` is the last `⌈(end − t) / service⌉ − 1` accepted. Each
//! arrival then costs a few counters on one path, idle or busy, and a
//! served interrupt is never visited again. The waits of what still waits
//! are taken back out when the counters are read ([`HostCpu::handler`]), so
//! they are exactly the item-by-item ones ([`crate::queue::CpuHandler`],
//! which the tests below drive beside it). Measured on the storm per event
//! (benches/README.md, issue 14, session 13): about as many instructions as
//! the pops and serves it replaces, but the time per event 0.68 of theirs,
//! from branches no longer mispredicted (the pop loop's trip count, and
//! idle or busy, a coin flip on a loaded CPU).

use std::collections::VecDeque;

use crate::queue::{CpuHandler, Delivery};

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

/// One host CPU: its waiting deliveries and its handler, with the handler's
/// time and counters kept over everything it accepted (see the module doc).
#[derive(Debug, Clone)]
pub(super) struct HostCpu {
    /// The deliveries written, the last of them still waiting (grown on
    /// demand up to `capacity`).
    ring: Ring,
    /// Most deliveries that may wait.
    capacity: usize,
    /// The handler's service time, fixed for the run (`None`: deliveries
    /// wait for an embedder to drain them).
    service_ns: Option<u64>,
    /// A backlog longer than this finds the FIFO full (`capacity` services).
    full_backlog_ns: u64,
    /// A backlog longer than this needs more slots (one service a slot).
    ring_backlog_ns: u64,
    /// When the handler finishes all it accepted (served or waiting).
    busy_end_ns: u64,
    /// When the last interrupt arrived: what waits is what had not started
    /// by then.
    last_arrival_ns: u64,
    /// Interrupts the handler accepted (served at once, or queued and not
    /// drained since).
    accepted: u64,
    /// Sum of the queueing delays of everything accepted, ns (wrapping, as
    /// the item-by-item sum did).
    wait_sum_ns: u64,
    /// The largest queueing delay of everything accepted.
    max_wait_all_ns: u64,
    /// The waits that raised that maximum, as (acceptance index, wait):
    /// the largest wait among the first `i` accepted is the last one
    /// noted before `i`. Kept to those that may still be asked for.
    wait_records: VecDeque<(u64, u64)>,
    /// The longest backlog an accepted arrival found (at least 1 ns, so
    /// that an arrival served at once counts a depth of 1): the deepest
    /// queue, in service times.
    max_backlog_ns: u64,
    /// The deepest queue seen where the backlog does not tell it (with a
    /// drained count, or without a handler).
    max_depth: usize,
    /// Waiting without a handler (`service_ns` is `None`).
    held: usize,
    /// Drained by an embedder but still in the handler's own count.
    stale: usize,
}

impl HostCpu {
    /// An idle CPU whose FIFO holds at most `capacity` deliveries, and whose
    /// handler serves each in `service_ns` (or leaves them to be drained).
    pub fn new(capacity: usize, service_ns: Option<u64>) -> Self {
        let s = service_ns.unwrap_or(0);
        Self {
            ring: Ring::default(),
            capacity,
            service_ns,
            full_backlog_ns: s.saturating_mul(capacity as u64),
            ring_backlog_ns: 0,
            busy_end_ns: 0,
            last_arrival_ns: 0,
            accepted: 0,
            wait_sum_ns: 0,
            max_wait_all_ns: 0,
            wait_records: VecDeque::new(),
            max_backlog_ns: 0,
            max_depth: 0,
            held: 0,
            stale: 0,
        }
    }

    /// Delivery `d` arrives (at `d.time_ns`, never before an earlier
    /// arrival). With a service time the handler takes it at once when it
    /// is free by then, else it waits, or finds the FIFO full; without one
    /// it waits for an embedder to drain it, or finds the FIFO full.
    ///
    /// With a service time, one path for idle and busy, with selections:
    /// on a loaded CPU which one is a coin flip (a branch on it was
    /// mispredicted about 0.4 times an event in the storm). The backlog,
    /// the time until the handler is free, says it all: 0 when idle, and
    /// else what waits is `⌈backlog / service⌉ − 1`, so the FIFO is full
    /// past `capacity` services of backlog and the ring needs more slots
    /// past one service a slot. The delivery is written even when served
    /// at once, into a free slot the next write takes again.
    #[allow(clippy::inline_always)]
    #[inline(always)]
    pub fn arrive(&mut self, d: Delivery) -> Arrival {
        let t = d.time_ns;
        let Some(s) = self.service_ns else {
            return self.arrive_undrained(d);
        };
        let end = self.busy_end_ns;
        let backlog = end.saturating_sub(t);
        self.last_arrival_ns = t;
        if backlog > self.full_backlog_ns {
            return Arrival::Full;
        }
        // One test for both rare cases (measured with callgrind: `||` made
        // two, +2.5 % instructions on the storm).
        #[allow(clippy::needless_bitwise_bool)]
        let uncommon = (backlog > self.ring_backlog_ns) | (self.stale != 0);
        if uncommon {
            self.arrive_uncommon(backlog, s);
        }
        // Its wait is the backlog.
        self.wait_sum_ns = self.wait_sum_ns.wrapping_add(backlog);
        if backlog > self.max_wait_all_ns {
            self.record_wait(backlog, s);
        }
        let queued = backlog > 0;
        self.ring.put(d, usize::from(queued));
        self.busy_end_ns = end.max(t) + s;
        self.accepted += 1;
        self.max_backlog_ns = self.max_backlog_ns.max(backlog.max(1));
        if queued {
            Arrival::Queued
        } else {
            Arrival::Served
        }
    }

    /// What `n` wait behind a backlog of `backlog` ns (`s` > 0 if the
    /// backlog is).
    fn waiting_behind(backlog: u64, s: u64) -> usize {
        (backlog.saturating_sub(1).checked_div(s).unwrap_or(0)) as usize
    }

    /// An accepted arrival behind a backlog the ring has no slot for, or
    /// with a drained count in the handler's: grow the ring, count the
    /// depth with the drained ones, forget them once the handler is idle.
    #[cold]
    #[inline(never)]
    fn arrive_uncommon(&mut self, backlog: u64, s: u64) {
        let n = Self::waiting_behind(backlog, s);
        if backlog > self.ring_backlog_ns {
            self.ring.grow(n, self.capacity);
            self.ring_backlog_ns = s.saturating_mul(self.ring.slots.len() as u64);
        }
        if backlog == 0 {
            self.stale = 0;
        }
        self.max_depth = self.max_depth.max(n + 1 + self.stale);
    }

    /// [`HostCpu::arrive`] without a handler: the delivery waits (or finds
    /// the FIFO full) until an embedder drains it.
    #[inline(never)]
    fn arrive_undrained(&mut self, d: Delivery) -> Arrival {
        if self.held >= self.capacity {
            return Arrival::Full;
        }
        if self.held >= self.ring.slots.len() {
            self.ring.grow(self.held, self.capacity);
        }
        self.ring.put(d, 1);
        self.held += 1;
        self.max_depth = self.max_depth.max(self.held + self.stale);
        Arrival::Queued
    }

    /// Note a wait larger than any accepted before (behind a backlog of
    /// that many ns), by the next acceptance index; forget the records no
    /// read can ask for (those before the last one among the interrupts
    /// already started).
    #[cold]
    #[inline(never)]
    fn record_wait(&mut self, wait: u64, s: u64) {
        let started = self
            .accepted
            .saturating_sub(Self::waiting_behind(wait, s) as u64);
        while self.wait_records.get(1).is_some_and(|r| r.0 < started) {
            self.wait_records.pop_front();
        }
        self.wait_records.push_back((self.accepted, wait));
        self.max_wait_all_ns = wait;
    }

    /// How many wait, as of the last arrival.
    fn waiting(&self) -> usize {
        match self.service_ns {
            Some(s) => {
                Self::waiting_behind(self.busy_end_ns.saturating_sub(self.last_arrival_ns), s)
            }
            None => self.held,
        }
    }

    /// The waits of the `n` deliveries still waiting, summed (wrapping):
    /// they start back to back up to the end of all accepted work.
    fn waiting_wait_sum(&self, n: usize, s: u64) -> u64 {
        self.ring.last(n).enumerate().fold(0u64, |sum, (i, d)| {
            let start = self.busy_end_ns - (n - i) as u64 * s;
            sum.wrapping_add(start.wrapping_sub(d.time_ns))
        })
    }

    /// The handler as of the last arrival: what it had served by then, its
    /// time, and its own count of what it queued.
    pub fn handler(&self) -> CpuHandler {
        let waiting = self.waiting();
        let queued = waiting + self.stale;
        let Some(s) = self.service_ns else {
            return CpuHandler {
                max_depth: self.max_depth,
                queued,
                ..CpuHandler::default()
            };
        };
        let started = self.accepted.saturating_sub(waiting as u64);
        let max_wait_ns = self
            .wait_records
            .iter()
            .rev()
            .find(|r| r.0 < started)
            .map_or(0, |r| r.1);
        let deepest = match self.max_backlog_ns {
            0 => 0,
            b => b.div_ceil(s.max(1)) as usize,
        };
        CpuHandler {
            busy_until_ns: self.busy_end_ns - waiting as u64 * s,
            handled: started,
            wait_ns: self
                .wait_sum_ns
                .wrapping_sub(self.waiting_wait_sum(waiting, s)),
            max_wait_ns,
            max_depth: self.max_depth.max(deepest),
            queued,
        }
    }

    /// Take everything waiting, oldest first (the handler's count stays):
    /// the handler will not serve them, so they leave its time and
    /// counters.
    pub fn drain(&mut self) -> Vec<Delivery> {
        let waiting = self.waiting();
        let out: Vec<Delivery> = self.ring.last(waiting).collect();
        if let Some(s) = self.service_ns {
            self.wait_sum_ns = self
                .wait_sum_ns
                .wrapping_sub(self.waiting_wait_sum(waiting, s));
            self.busy_end_ns -= waiting as u64 * s;
            self.accepted = self.accepted.saturating_sub(waiting as u64);
            while self
                .wait_records
                .back()
                .is_some_and(|r| r.0 >= self.accepted)
            {
                self.wait_records.pop_back();
            }
            self.max_wait_all_ns = self.wait_records.back().map_or(0, |r| r.1);
        }
        self.stale += waiting;
        self.held = 0;
        out
    }
}

/// The deliveries written, in a ring of slots grown on demand: the last
/// ones written are at hand, oldest first.
#[derive(Debug, Clone, Default)]
struct Ring {
    slots: Vec<Delivery>,
    /// Slot the next delivery is written to.
    next: usize,
}

impl Ring {
    /// Write `d` in the next slot (if there are slots), and keep it if
    /// `keep` is 1 (with 0 the slot stays free, and the next write takes it
    /// again). The caller made room: the slot is not one still waiting.
    #[inline]
    fn put(&mut self, d: Delivery, keep: usize) {
        if let Some(s) = self.slots.get_mut(self.next) {
            *s = d;
        }
        let next = self.next + keep;
        self.next = if next >= self.slots.len() { 0 } else { next };
    }

    /// The last `n` written (`n` ≤ the slots), oldest first.
    fn last(&self, n: usize) -> impl Iterator<Item = Delivery> + '_ {
        let len = self.slots.len();
        let first = (self.next + len - n.min(len)) % len.max(1);
        (0..n.min(len)).filter_map(move |i| self.slots.get((first + i) % len).copied())
    }

    /// Double the slots (at least 8, and at least one more than `kept`),
    /// but to no more than `capacity`, keeping the last `kept` in order.
    /// The next write goes behind them.
    #[cold]
    #[inline(never)]
    fn grow(&mut self, kept: usize, capacity: usize) {
        let n = (self.slots.len() * 2).max(8).max(kept + 1).min(capacity);
        let mut slots: Vec<Delivery> = Vec::with_capacity(n);
        slots.extend(self.last(kept));
        self.next = slots.len() % n.max(1);
        slots.resize(n, Delivery::default());
        self.slots = slots;
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
        let mut c = HostCpu::new(cap, service);
        for (i, &t) in times.iter().enumerate() {
            if drains.contains(&i) {
                assert_eq!(c.drain(), r.q.drain(), "drain before arrival {i}");
                assert_eq!(c.handler(), r.h, "after the drain before arrival {i}");
            }
            assert_eq!(c.arrive(at(t)), r.arrive(at(t), service), "{i}");
            assert_eq!(c.handler(), r.h, "after arrival {i} at {t}");
        }
        assert_eq!(c.drain(), r.q.drain());
        assert_eq!(c.handler(), r.h, "after the last drain");
    }

    /// Arrival times in order: bursts that queue, gaps that empty the
    /// queue, equal times.
    fn bursty(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| i * 7 + (i % 11) * 13 + (i / 50) * 900)
            .scan(0, |last, t| {
                *last = t.max(*last);
                Some(*last)
            })
            .collect()
    }

    #[test]
    fn serves_and_queues_exactly_as_the_ring_and_handler_did() {
        let times = bursty(400);
        for service in [Some(0), Some(1), Some(10), Some(30), Some(1_000), None] {
            for cap in [1, 2, 5, 9, 64] {
                same_as_reference(&times, service, cap, &[]);
                // An embedder's drains mid-run leave the handler's count stale.
                same_as_reference(&times, service, cap, &[3, 40, 41, 200]);
                same_as_reference(&times, service, cap, &[1, 2, 3, 4, 5, 399]);
            }
        }
    }

    proptest::proptest! {
        /// Any arrivals in time order, any service time and capacity, any
        /// drains: the closed-form handler is the item-by-item one.
        #[test]
        fn the_closed_form_is_the_item_by_item_handler(
            gaps in proptest::collection::vec(0u64..60, 1..300),
            service in proptest::option::of(0u64..40),
            cap in 1usize..20,
            drains in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let times: Vec<u64> = gaps
                .iter()
                .scan(0u64, |t, g| {
                    *t += g;
                    Some(*t)
                })
                .collect();
            same_as_reference(&times, service, cap, &drains);
        }
    }

    #[test]
    fn a_full_fifo_refuses_and_the_capacity_bounds_the_ring() {
        let mut c = HostCpu::new(3, Some(100));
        assert_eq!(c.arrive(at(0)), Arrival::Served);
        for t in 1..=3 {
            assert_eq!(c.arrive(at(t)), Arrival::Queued);
        }
        assert_eq!(c.arrive(at(4)), Arrival::Full);
        let h = c.handler();
        assert_eq!((h.max_depth, h.handled, h.queued), (3, 1, 3));
        assert_eq!(c.ring.slots.len(), 3);
        assert_eq!(c.drain(), vec![at(1), at(2), at(3)]);
        // The handler never serves what was drained: its time is the first's.
        assert_eq!(c.handler().busy_until_ns, 100);
    }

    #[test]
    fn the_largest_wait_counts_only_once_its_interrupt_has_started() {
        // 10 ns each: arrivals at 0, 1, 2 wait 0, 9 and 18 ns.
        let mut c = HostCpu::new(8, Some(10));
        for t in 0..3 {
            c.arrive(at(t));
        }
        // At 2, the one that arrived at 1 has not started (it starts at 10).
        assert_eq!(c.handler().max_wait_ns, 0);
        c.arrive(at(15));
        // At 15 it has (9 ns), the one from 2 has not (it starts at 20).
        assert_eq!((c.handler().max_wait_ns, c.handler().wait_ns), (9, 9));
        c.arrive(at(25));
        assert_eq!((c.handler().max_wait_ns, c.handler().wait_ns), (18, 27));
    }

    #[test]
    fn arrivals_out_of_time_order_panic_nowhere() {
        // The engine's times never go back; were one to, the handler's
        // reads and drains still take no overflow (tests run with overflow
        // checks on).
        for service in [Some(0), Some(10), Some(1_000), None] {
            let mut c = HostCpu::new(4, service);
            for (i, t) in [100, 50, 0, 200, 199, 3, 1_000_000, 5]
                .into_iter()
                .enumerate()
            {
                c.arrive(at(t));
                assert!(c.handler().handled <= i as u64 + 1);
                assert!(c.ring.slots.len() <= 4);
            }
            assert!(c.drain().len() <= 4);
            c.arrive(at(7));
            let _ = c.handler();
        }
    }

    #[test]
    fn the_ring_grows_keeping_the_waiting_in_order() {
        let mut c = HostCpu::new(100, Some(1_000));
        let times: Vec<u64> = (0..50).collect();
        for &t in &times {
            c.arrive(at(t));
        }
        // The first was served; 49 wait, through growths from 8 slots.
        assert!(c.ring.slots.len() >= 49 && c.ring.slots.len() <= 100);
        let drained: Vec<u64> = c.drain().iter().map(|d| d.time_ns).collect();
        assert_eq!(drained, times[1..]);
    }
}
