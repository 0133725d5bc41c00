//! Per-CPU delivery queues: where remapped interrupts land on a host CPU, and
//! the handler model that drains them with a service time.
//!
//! Each queue is a bounded lock-free single-producer single-consumer ring
//! (`rtrb`): one side delivers, the CPU's handler takes. The engine holds
//! both ends on its one thread; [`DeliveryQueue::split`] hands them to two
//! threads (an embedding simulator's device thread and CPU thread). A ring
//! per CPU with one producer needs no compare-and-swap, unlike an MPMC
//! queue; several producer threads would each get their own queue.

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
        while let Some(d) = self.pop() {
            out.push(d);
        }
        out
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
}

/// A CPU's interrupt handler: serves its queue FIFO, `service_ns` per
/// interrupt. Evaluated lazily: the queue is drained up to "now" before each
/// push, which is exact because arrivals are pushed in time order.
#[derive(Debug, Clone, Default)]
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

impl CpuHandler {
    /// Serve every queued interrupt whose service starts at or before `now_ns`.
    #[inline]
    pub fn advance(&mut self, queue: &mut DeliveryQueue, now_ns: u64, service_ns: u64) {
        while self.busy_until_ns <= now_ns && self.queued > 0 {
            let Some(d) = queue.pop() else {
                self.queued = 0;
                break;
            };
            self.queued -= 1;
            let start = self.busy_until_ns.max(d.time_ns);
            let wait = start - d.time_ns;
            self.wait_ns += wait;
            self.max_wait_ns = self.max_wait_ns.max(wait);
            self.busy_until_ns = start + service_ns;
            self.handled += 1;
        }
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
}
