//! Per-CPU delivery queues: where remapped interrupts land on a host CPU, and
//! the handler model that drains them with a service time.
//!
//! Each queue is a bounded lock-free single-producer single-consumer ring
//! (`rtrb`): one side delivers, the CPU's handler takes.
//! [`DeliveryQueue::split`] hands the two ends to two threads (an embedding
//! simulator's device thread and CPU thread). The per-event engine, which is
//! both sides on one thread, keeps its own plain FIFO per CPU and evaluates
//! the same handler in closed form (`engine/host_cpu.rs`); [`CpuHandler`]
//! states the rules and the counters, and a property test holds the closed
//! form to it, counter for counter. A ring
//! per CPU with one producer needs no compare-and-swap, unlike an MPMC
//! queue; several producer threads would each get their own queue.
//!
//! # Batches
//!
//! Besides item-by-item [`pop`](DeliveryConsumer::pop), the taking end can
//! take a batch: [`pop_batch`](DeliveryConsumer::pop_batch) hands up to `max`
//! waiting deliveries to a callback, [`drain_into`](DeliveryConsumer::drain_into)
//! appends them to a collection. A batch is one `rtrb` read chunk: the
//! producer's index is read once, the items are read in place, and the slots
//! are released together with one store, so a batch of k costs one
//! cross-thread exchange instead of k. On the delivering end,
//! [`push_slice`](DeliveryProducer::push_slice) writes as many of a slice as
//! fit in one write chunk. Accounting, the same for every batch call:
//!
//! - it takes `min(max, waiting)` deliveries, where `waiting` is what the
//!   producer had published when the call began (later pushes wait for the
//!   next call), and returns that count; `max = 0` or an empty queue takes
//!   nothing and returns 0;
//! - the deliveries come oldest first, continuing exactly where the previous
//!   `pop` or batch stopped (FIFO across the ring's wrap-around too);
//! - every delivery taken is handed over exactly once and every one not taken
//!   stays queued: nothing is lost or repeated. If the callback panics, the
//!   batch is not released and all of it stays queued.

use rtrb::{Consumer, Producer, RingBuffer};

use crate::error::{Error, Result};

/// One interrupt that reached a host CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Simulated arrival time in nanoseconds.
    pub time_ns: u64,
    /// Index of the device that fired.
    pub device: u32,
    /// MSI-X table entry (device-local vector number).
    pub entry: u32,
    /// Host CPU the IRTE routed it to.
    pub cpu: u32,
    /// Host IDT vector the IRTE routed it to.
    pub vector: u8,
}

/// A bounded lock-free FIFO of deliveries for one host CPU (both ends).
#[derive(Debug)]
pub struct DeliveryQueue {
    producer: Producer<Delivery>,
    consumer: Consumer<Delivery>,
}

/// The delivering end of a split [`DeliveryQueue`].
#[derive(Debug)]
pub struct DeliveryProducer(Producer<Delivery>);

/// The handler's end of a split [`DeliveryQueue`].
#[derive(Debug)]
pub struct DeliveryConsumer(Consumer<Delivery>);

impl DeliveryQueue {
    /// A queue holding up to `capacity` deliveries (≥ 1).
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidArgument(
                "delivery queue capacity must be at least 1".into(),
            ));
        }
        let (producer, consumer) = RingBuffer::new(capacity);
        Ok(Self { producer, consumer })
    }

    /// Append a delivery; gives it back if the queue is full.
    #[inline]
    pub fn push(&mut self, d: Delivery) -> std::result::Result<(), Delivery> {
        self.producer.push(d).map_err(|rtrb::PushError::Full(d)| d)
    }

    /// Take the oldest delivery, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<Delivery> {
        self.consumer.pop().ok()
    }

    /// Number of deliveries waiting.
    pub fn len(&self) -> usize {
        self.consumer.slots()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    /// Maximum number of deliveries held.
    pub fn capacity(&self) -> usize {
        self.producer.buffer().capacity()
    }

    /// Take everything waiting, oldest first.
    pub fn drain(&mut self) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(self.len());
        self.drain_into(&mut out, usize::MAX);
        out
    }

    /// Append as many of `items` as fit, in order; returns how many (a
    /// prefix of `items`: the rest did not fit and were not queued).
    #[inline]
    pub fn push_slice(&mut self, items: &[Delivery]) -> usize {
        push_prefix(&mut self.producer, items)
    }

    /// Take up to `max` of the oldest deliveries as one batch, handing each
    /// to `f` oldest first; returns how many were taken. See the
    /// [module documentation](self#batches) for the accounting.
    #[inline]
    pub fn pop_batch(&mut self, max: usize, f: impl FnMut(&Delivery)) -> usize {
        take_batch(&mut self.consumer, max, |a, b| visit_in_order(a, b, f))
    }

    /// Take up to `max` of the oldest deliveries as one batch, appending
    /// them to `out` oldest first; returns how many were taken.
    #[inline]
    pub fn drain_into(&mut self, out: &mut impl Extend<Delivery>, max: usize) -> usize {
        take_batch(&mut self.consumer, max, |a, b| extend_from(out, a, b))
    }

    /// Separate the two ends, to deliver on one thread and handle on another.
    pub fn split(self) -> (DeliveryProducer, DeliveryConsumer) {
        (
            DeliveryProducer(self.producer),
            DeliveryConsumer(self.consumer),
        )
    }
}

impl DeliveryProducer {
    /// Append a delivery; gives it back if the queue is full.
    #[inline]
    pub fn push(&mut self, d: Delivery) -> std::result::Result<(), Delivery> {
        self.0.push(d).map_err(|rtrb::PushError::Full(d)| d)
    }

    /// Append as many of `items` as fit, in order, published to the consumer
    /// together; returns how many (a prefix of `items`: the rest did not fit
    /// and were not queued).
    #[inline]
    pub fn push_slice(&mut self, items: &[Delivery]) -> usize {
        push_prefix(&mut self.0, items)
    }

    /// Free slots: how many deliveries a push could append now.
    pub fn free(&self) -> usize {
        self.0.slots()
    }
}

impl DeliveryConsumer {
    /// Take the oldest delivery, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<Delivery> {
        self.0.pop().ok()
    }

    /// Number of deliveries waiting.
    pub fn len(&self) -> usize {
        self.0.slots()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Take up to `max` of the oldest deliveries as one batch, handing each
    /// to `f` oldest first; returns how many were taken. See the
    /// [module documentation](self#batches) for the accounting.
    #[inline]
    pub fn pop_batch(&mut self, max: usize, f: impl FnMut(&Delivery)) -> usize {
        take_batch(&mut self.0, max, |a, b| visit_in_order(a, b, f))
    }

    /// Take up to `max` of the oldest deliveries as one batch, appending
    /// them to `out` oldest first; returns how many were taken.
    #[inline]
    pub fn drain_into(&mut self, out: &mut impl Extend<Delivery>, max: usize) -> usize {
        take_batch(&mut self.0, max, |a, b| extend_from(out, a, b))
    }
}

/// Push the longest prefix of `items` that fits, as one write chunk (one
/// release of the producer's index for the whole prefix); returns its length.
#[inline]
fn push_prefix(p: &mut Producer<Delivery>, items: &[Delivery]) -> usize {
    let (pushed, _rest) = p.push_partial_slice(items);
    pushed.len()
}

/// Read `min(max, waiting)` deliveries in place as one chunk, show them to
/// `visit` (the chunk's two halves: older, then newer, the second non-empty
/// only when the chunk wraps past the ring's end), then release their slots
/// together. Returns how many were taken.
#[inline]
fn take_batch(
    c: &mut Consumer<Delivery>,
    max: usize,
    visit: impl FnOnce(&[Delivery], &[Delivery]),
) -> usize {
    // `slots` reads the producer's index once; only this consumer removes
    // items, so all `n` are still there when the chunk is taken.
    let n = max.min(c.slots());
    if n == 0 {
        return 0;
    }
    let Ok(chunk) = c.read_chunk(n) else {
        // Not reachable (see above); taking nothing keeps the accounting true.
        return 0;
    };
    let (older, newer) = chunk.as_slices();
    visit(older, newer);
    // Reached only when `visit` returned: a panicking callback leaves the
    // whole batch queued rather than half-taken.
    chunk.commit_all();
    n
}

/// Hand a chunk's two halves to `f` item by item, older first.
#[inline]
fn visit_in_order(older: &[Delivery], newer: &[Delivery], mut f: impl FnMut(&Delivery)) {
    older.iter().for_each(&mut f);
    newer.iter().for_each(f);
}

/// Append a chunk's two halves to `out`, older first.
#[inline]
fn extend_from(out: &mut impl Extend<Delivery>, older: &[Delivery], newer: &[Delivery]) {
    out.extend(older.iter().copied());
    out.extend(newer.iter().copied());
}

/// A CPU's interrupt handler: serves its queue FIFO, `service_ns` per
/// interrupt. Evaluated lazily: the queue is drained up to "now" before each
/// push, which is exact because arrivals are pushed in time order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuHandler {
    /// Time the handler finishes its current interrupt.
    pub busy_until_ns: u64,
    /// Interrupts served.
    pub handled: u64,
    /// Sum of queueing delays (start of service − arrival), ns.
    pub wait_ns: u64,
    /// Largest queueing delay seen, ns.
    pub max_wait_ns: u64,
    /// Deepest the queue has been.
    pub max_depth: usize,
    /// Deliveries this handler's engine pushed and has not served: lets the
    /// engine skip the queue's atomics when it is empty. Resynchronised
    /// (to 0) whenever a pop finds the queue empty, e.g. after an external
    /// drain.
    pub queued: usize,
}

/// Where a CPU's waiting deliveries are, as its handler takes them: the
/// lock-free [`DeliveryQueue`], or its [`DeliveryConsumer`] end. The
/// handler's rules are written once, in [`CpuHandler`], over either.
pub trait Waiting {
    /// Take the oldest waiting delivery, if any.
    fn take_oldest(&mut self) -> Option<Delivery>;
}

impl Waiting for DeliveryQueue {
    #[inline]
    fn take_oldest(&mut self) -> Option<Delivery> {
        self.pop()
    }
}

impl Waiting for DeliveryConsumer {
    #[inline]
    fn take_oldest(&mut self) -> Option<Delivery> {
        self.pop()
    }
}

impl CpuHandler {
    /// Serve every queued interrupt whose service starts at or before `now_ns`.
    #[inline]
    pub fn advance(&mut self, queue: &mut impl Waiting, now_ns: u64, service_ns: u64) {
        while self.busy_until_ns <= now_ns && self.queued > 0 {
            let Some(d) = queue.take_oldest() else {
                self.queued = 0;
                break;
            };
            self.queued -= 1;
            self.serve(d.time_ns, service_ns);
        }
    }

    /// Serve the oldest waiting interrupt, which arrived at `arrival_ns`:
    /// its service starts when the handler is free (not before it arrived)
    /// and lasts `service_ns`. Accounting: `handled + 1`, its wait added to
    /// `wait_ns` and `max_wait_ns`, `busy_until_ns` moved to its end.
    #[inline]
    pub fn serve(&mut self, arrival_ns: u64, service_ns: u64) {
        let start = self.busy_until_ns.max(arrival_ns);
        let wait = start - arrival_ns;
        self.wait_ns += wait;
        self.max_wait_ns = self.max_wait_ns.max(wait);
        self.busy_until_ns = start + service_ns;
        self.handled += 1;
    }

    /// Serve an arrival at `now_ns` directly when the handler is idle and
    /// nothing waits (what a push then [`advance`](Self::advance) would do,
    /// without touching the queue). Returns whether it was served.
    #[inline]
    pub fn serve_now(&mut self, now_ns: u64, service_ns: u64) -> bool {
        if self.queued > 0 || self.busy_until_ns > now_ns {
            return false;
        }
        self.observe_depth(1);
        self.busy_until_ns = now_ns + service_ns;
        self.handled += 1;
        true
    }

    /// Note the queue depth after a push.
    #[inline]
    pub fn observe_depth(&mut self, depth: usize) {
        if depth > self.max_depth {
            self.max_depth = depth;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(t: u64) -> Delivery {
        Delivery {
            time_ns: t,
            ..Delivery::default()
        }
    }

    #[test]
    fn fifo_and_capacity() {
        let mut q = DeliveryQueue::new(2).unwrap();
        assert_eq!(q.capacity(), 2);
        assert!(q.push(d(1)).is_ok());
        assert!(q.push(d(2)).is_ok());
        assert_eq!(q.push(d(3)), Err(d(3)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.drain(), vec![d(1), d(2)]);
        assert!(q.is_empty());
        assert!(DeliveryQueue::new(0).is_err());
    }

    #[test]
    fn handler_serves_in_order_with_service_time() {
        let mut q = DeliveryQueue::new(16).unwrap();
        let mut h = CpuHandler::default();
        // Three arrivals at t=0,1,2 with 10 ns service: they queue.
        for t in 0..3 {
            h.advance(&mut q, t, 10);
            q.push(d(t)).unwrap();
            h.queued += 1;
            h.observe_depth(q.len());
        }
        // At t=2: the first started at 0 (busy until 10), others wait.
        assert_eq!(h.handled, 1);
        h.advance(&mut q, 25, 10);
        // Second starts at 10, third at 20: both started by 25.
        assert_eq!(h.handled, 3);
        assert_eq!(h.busy_until_ns, 30);
        assert_eq!(h.wait_ns, (10 - 1) + (20 - 2));
        assert_eq!(h.max_wait_ns, 18);
        assert_eq!(h.max_depth, 2);
    }

    #[test]
    fn serve_now_matches_push_then_advance() {
        // Arrivals at these times, 10 ns service: some find the handler idle.
        let times = [0u64, 3, 15, 16, 17, 40, 41, 90];
        let mut q1 = DeliveryQueue::new(16).unwrap();
        let mut h1 = CpuHandler::default();
        let mut q2 = DeliveryQueue::new(16).unwrap();
        let mut h2 = CpuHandler::default();
        let mut direct = 0;
        for &t in &times {
            // Reference: always through the queue.
            h1.advance(&mut q1, t, 10);
            q1.push(d(t)).unwrap();
            h1.queued += 1;
            h1.observe_depth(h1.queued);
            h1.advance(&mut q1, t, 10);
            // Engine path: direct service when idle and empty.
            h2.advance(&mut q2, t, 10);
            if h2.serve_now(t, 10) {
                direct += 1;
                continue;
            }
            q2.push(d(t)).unwrap();
            h2.queued += 1;
            h2.observe_depth(h2.queued);
            h2.advance(&mut q2, t, 10);
        }
        h1.advance(&mut q1, 1000, 10);
        h2.advance(&mut q2, 1000, 10);
        assert_eq!(
            direct, 2,
            "only the arrivals at 0 and 90 find the handler idle"
        );
        assert_eq!(
            (
                h1.handled,
                h1.wait_ns,
                h1.max_wait_ns,
                h1.max_depth,
                h1.busy_until_ns
            ),
            (
                h2.handled,
                h2.wait_ns,
                h2.max_wait_ns,
                h2.max_depth,
                h2.busy_until_ns
            )
        );
        assert!(h2.handled == times.len() as u64 && q2.is_empty());
    }

    #[test]
    fn cross_thread_push_pop_loses_nothing() {
        let (mut tx, mut rx) = DeliveryQueue::new(64).unwrap().split();
        let n = 10_000u64;
        let producer = std::thread::spawn(move || {
            for t in 0..n {
                let mut item = d(t);
                while let Err(back) = tx.push(item) {
                    item = back;
                    std::thread::yield_now();
                }
            }
        });
        let mut seen = 0u64;
        let mut last = None;
        while seen < n {
            if let Some(x) = rx.pop() {
                if let Some(l) = last {
                    assert!(x.time_ns > l, "FIFO order broken");
                }
                last = Some(x.time_ns);
                seen += 1;
            } else {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(rx.is_empty());
        assert_eq!(rx.len(), 0);
    }

    // ---- batches -------------------------------------------------------------

    /// Deliveries with times `from..to`, each field derived from the time so
    /// that a swapped or repeated item changes every field.
    fn run(from: u64, to: u64) -> Vec<Delivery> {
        (from..to)
            .map(|t| Delivery {
                time_ns: t,
                device: (t % 7) as u32,
                entry: (t % 13) as u32,
                cpu: (t % 3) as u32,
                vector: (t % 251) as u8,
            })
            .collect()
    }

    /// Everything `pop_batch(max)` hands over, in order, and its return value.
    fn batch(q: &mut DeliveryQueue, max: usize) -> (usize, Vec<Delivery>) {
        let mut seen = Vec::new();
        let n = q.pop_batch(max, |x| seen.push(*x));
        (n, seen)
    }

    #[test]
    fn batch_keeps_fifo_across_the_wrap() {
        // Capacity 5: after 3 in and 3 out, the next 5 occupy slots 3, 4, 0,
        // 1, 2, so one batch of all of them is a chunk in two halves.
        let mut q = DeliveryQueue::new(5).unwrap();
        assert_eq!(q.push_slice(&run(0, 3)), 3);
        assert_eq!(batch(&mut q, 3), (3, run(0, 3)));
        assert_eq!(q.push_slice(&run(3, 8)), 5);
        assert_eq!(batch(&mut q, 99), (5, run(3, 8)));
        // drain_into takes the wrapped halves in the same order.
        assert_eq!(q.push_slice(&run(8, 13)), 5);
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, usize::MAX), 5);
        assert_eq!(out, run(8, 13));
        assert!(q.is_empty());
    }

    #[test]
    fn partial_batches_continue_where_the_last_stopped() {
        let mut q = DeliveryQueue::new(8).unwrap();
        assert_eq!(q.push_slice(&run(0, 7)), 7);
        assert_eq!(batch(&mut q, 2), (2, run(0, 2)));
        assert_eq!(q.len(), 5);
        // An item-by-item pop in between takes the next one.
        assert_eq!(q.pop(), run(2, 3).pop());
        let mut out = vec![Delivery::default()];
        assert_eq!(q.drain_into(&mut out, 3), 3);
        // drain_into appends: what was in `out` stays in front.
        assert_eq!(out[0], Delivery::default());
        assert_eq!(out[1..], run(3, 6)[..]);
        assert_eq!(batch(&mut q, 10), (1, run(6, 7)));
        assert!(q.is_empty());
    }

    #[test]
    fn empty_queue_and_zero_max_take_nothing() {
        let mut q = DeliveryQueue::new(4).unwrap();
        let mut calls = 0;
        assert_eq!(q.pop_batch(4, |_| calls += 1), 0);
        let mut out = Vec::new();
        assert_eq!(q.drain_into(&mut out, 4), 0);
        q.push(run(0, 1)[0]).unwrap();
        assert_eq!(q.pop_batch(0, |_| calls += 1), 0);
        assert_eq!(q.drain_into(&mut out, 0), 0);
        assert_eq!((calls, out.len(), q.len()), (0, 0, 1));
        // Empty input pushes nothing.
        assert_eq!(q.push_slice(&[]), 0);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn full_queue_pushes_a_prefix_and_a_batch_makes_room() {
        let mut q = DeliveryQueue::new(4).unwrap();
        // Six offered, four fit: the first four, in order.
        assert_eq!(q.push_slice(&run(0, 6)), 4);
        assert_eq!(q.push(run(9, 10)[0]), Err(run(9, 10)[0]));
        assert_eq!(q.push_slice(&run(4, 6)), 0);
        assert_eq!(batch(&mut q, 4), (4, run(0, 4)));
        // The whole ring is free again after one batch.
        assert_eq!(q.push_slice(&run(4, 8)), 4);
        assert_eq!(q.drain(), run(4, 8));
        // The split ends count the same way.
        let (mut tx, mut rx) = DeliveryQueue::new(3).unwrap().split();
        assert_eq!(tx.free(), 3);
        assert_eq!(tx.push_slice(&run(0, 5)), 3);
        assert_eq!(tx.free(), 0);
        let mut seen = Vec::new();
        assert_eq!(rx.pop_batch(2, |x| seen.push(*x)), 2);
        assert_eq!(tx.free(), 2);
        assert_eq!(rx.drain_into(&mut seen, 2), 1);
        assert_eq!(seen, run(0, 3));
        assert!(rx.is_empty());
    }

    #[test]
    fn a_panicking_callback_leaves_the_batch_queued() {
        let mut q = DeliveryQueue::new(4).unwrap();
        q.push_slice(&run(0, 3));
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            q.pop_batch(3, |x| assert!(x.time_ns < 1, "handler fails"));
        }));
        assert!(caught.is_err());
        assert_eq!(q.drain(), run(0, 3));
    }

    #[test]
    fn cross_thread_batches_lose_and_repeat_nothing() {
        // A small ring so both the full and the empty case happen often.
        let (mut tx, mut rx) = DeliveryQueue::new(61).unwrap().split();
        let n = 200_000u64;
        let all = run(0, n);
        let producer = std::thread::spawn(move || {
            // Alternate single pushes and slices of varying length.
            let mut at = 0usize;
            let mut step = 0usize;
            while at < all.len() {
                step = (step + 1) % 97;
                let pushed = if step % 2 == 0 {
                    usize::from(tx.push(all[at]).is_ok())
                } else {
                    let end = (at + step).min(all.len());
                    tx.push_slice(&all[at..end])
                };
                at += pushed;
                if pushed == 0 {
                    std::thread::yield_now();
                }
            }
        });
        // Every item must be the one after the last: a loss, repeat or
        // reordering breaks `next` and the checksum both.
        let (mut next, mut sum, mut max, mut out) = (0u64, 0u64, 0usize, Vec::new());
        while next < n {
            max = (max + 1) % 300;
            if max % 4 == 1 {
                // Let the ring fill past most of its 61 slots, so that the
                // next batch is long and often wraps past the ring's end.
                let want = 50.min(n - next) as usize;
                while rx.len() < want {
                    std::thread::yield_now();
                }
            }
            let took = if max % 3 == 0 {
                out.clear();
                let k = rx.drain_into(&mut out, max);
                for x in &out {
                    assert_eq!(*x, run(next, next + 1)[0], "item out of order");
                    next += 1;
                    sum = sum.wrapping_add(x.time_ns);
                }
                k
            } else {
                rx.pop_batch(max, |x| {
                    assert_eq!(x.time_ns, next, "item out of order");
                    next += 1;
                    sum = sum.wrapping_add(x.time_ns);
                })
            };
            assert!(took <= max);
            if took == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(next, n);
        assert_eq!(sum, n * (n - 1) / 2);
        assert!(rx.is_empty());
    }

    /// One step of the proptest below.
    #[derive(Debug, Clone)]
    enum Op {
        /// Offer this many new deliveries as one slice.
        Push(usize),
        /// Take up to this many.
        Take(usize),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..12).prop_map(Op::Push),
            (0usize..12).prop_map(Op::Take)
        ]
    }

    use proptest::prelude::*;

    proptest! {
        /// A batch of `max` hands over exactly what `max` item-by-item pops
        /// would, whatever the history of pushes and takes before it.
        #[test]
        fn batches_match_item_by_item_pops(
            cap in 1usize..10,
            ops in proptest::collection::vec(arb_op(), 0..60),
        ) {
            let mut batched = DeliveryQueue::new(cap).unwrap();
            let mut single = DeliveryQueue::new(cap).unwrap();
            let mut next = 0u64;
            for op in ops {
                match op {
                    Op::Push(k) => {
                        let items = run(next, next + k as u64);
                        let pushed = batched.push_slice(&items);
                        let mut one_by_one = 0;
                        for x in &items {
                            if single.push(*x).is_err() {
                                break;
                            }
                            one_by_one += 1;
                        }
                        prop_assert_eq!(pushed, one_by_one);
                        next += pushed as u64;
                    }
                    Op::Take(max) => {
                        let (n, got) = batch(&mut batched, max);
                        let want: Vec<_> = (0..max).map_while(|_| single.pop()).collect();
                        prop_assert_eq!(n, got.len());
                        prop_assert_eq!(got, want);
                    }
                }
                prop_assert_eq!(batched.len(), single.len());
            }
            prop_assert_eq!(batched.drain(), single.drain());
        }
    }
}
