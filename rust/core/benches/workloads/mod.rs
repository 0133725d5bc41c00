//! The workloads the criterion benches time, shared with the smoke test
//! (`rust/core/tests/bench_smoke.rs` includes this module), so every bench body
//! also runs once, at a tiny size, in `cargo test`.
//!
//! The storm is the core's [`Storm`] (`msixcore_core::storm`, the CLI's
//! storm: docs/storm.md#the-resize-storm); this module only adds the stop
//! condition ([`storm_builder`]), which `rust/core/tests/engine_storm.rs` and
//! `rust/core/examples/storm.rs` reuse.
//!
//! Each `*_setup` builds the state a bench needs; each `*_op` is one timed
//! operation (or a batch, for the threaded and engine benches) and returns a
//! value the caller passes to `black_box`.

#![allow(dead_code)] // each bench target uses only its own workloads

use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread;

use crossbeam_queue::{ArrayQueue, SegQueue};
use msixcore_core::config::{Mode, PolicyKind, SimConfig, SimConfigBuilder, TimingConfig};
use msixcore_core::engine::{Engine, RunResult};
pub use msixcore_core::queue::{Delivery, DeliveryConsumer, DeliveryProducer, DeliveryQueue};
pub use msixcore_core::storm::Storm;
use msixcore_core::{
    compose_msi, DisabledMode, InterruptRemapper, IrqMatrix, Irte, IrteTable, MsiMessage,
    RemapResult, VectorDomain, VectorTable, X86Preset,
};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

// ---- matrix ------------------------------------------------------------------

/// A booted mainline x86 matrix with `ncpus` CPUs, all online, and the
/// all-CPUs mask a regular (non-managed, non-reserved) allocation uses.
pub fn matrix_setup(ncpus: u32) -> (IrqMatrix, Vec<u32>) {
    let m = IrqMatrix::x86(ncpus, &X86Preset::mainline()).expect("x86 matrix");
    (m, (0..ncpus).collect())
}

/// One `irq_matrix_alloc` (not reserved) over `mask`, then its `irq_matrix_free`.
#[inline]
pub fn matrix_alloc_free(m: &mut IrqMatrix, mask: &[u32]) -> (u32, u32) {
    let (cpu, bit) = m.alloc(mask, false).expect("alloc");
    m.free(cpu, bit, false).expect("free");
    (cpu, bit)
}

/// One `alloc_any` (not reserved: `irq_matrix_alloc` over every possible CPU, the CPU taken
/// from the matrix's best-CPU buckets), then its `irq_matrix_free`.
#[inline]
pub fn matrix_alloc_any_free(m: &mut IrqMatrix) -> (u32, u32) {
    let (cpu, bit) = m.alloc_any(false).expect("alloc_any");
    m.free(cpu, bit, false).expect("free");
    (cpu, bit)
}

// ---- irte --------------------------------------------------------------------

/// A 65,536-entry VT-d table with its lower half allocated one IRTE at a time
/// (as a host fills it), so a first-fit search walks 512 full bitmap words.
pub fn irte_half_full() -> IrteTable {
    let mut t = IrteTable::new(65_536).expect("table");
    for _ in 0..32_768 {
        t.alloc(1).expect("fill");
    }
    t
}

/// `alloc(count)` then `free` of the same block.
#[inline]
pub fn irte_alloc_free(t: &mut IrteTable, count: u32) -> u16 {
    let i = t.alloc(count).expect("alloc");
    t.free(u32::from(i), count).expect("free");
    i
}

// ---- the models of a resize --------------------------------------------------

/// Vectors one storm resize frees and allocates, rounded: the resize that adds
/// entry `k` frees `k` and allocates `k + 1`, and the default storm's resizes
/// cycle through `k` = 0..63 (`Storm::resize_entries`; QEMU 8.2 and later
/// pre-request no vector 0): a mean of 31.5 freed and 32.5 allocated.
pub const RESIZE_VECTORS: u32 = 32;

/// What a faithful host cannot skip in a resize: the x86 vector domain (irq
/// descriptors, the vector matrix in reservation mode) and a VT-d IRTE table,
/// with one device's vectors requested.
pub struct ResizeModels {
    domain: VectorDomain,
    irtes: IrteTable,
    /// Each requested vector's irq and IRTE.
    held: Vec<(u32, u16)>,
}

/// The requester id the resized device's IRTEs verify.
const RESIZE_RID: u16 = 0x0100;

/// A host of `ncpus` CPUs (mainline preset, reservation mode, 65,536 IRTEs)
/// with `vectors` vectors of one device allocated and requested.
pub fn resize_models_setup(ncpus: u32, vectors: u32) -> ResizeModels {
    let mut m = ResizeModels {
        domain: VectorDomain::new(ncpus, &X86Preset::mainline(), true, None).expect("domain"),
        irtes: IrteTable::new(65_536).expect("IRTE table"),
        held: Vec::with_capacity(vectors as usize),
    };
    resize_models_enable(&mut m, vectors);
    m
}

/// `vfio_msi_enable(n)` on the models, in the kernel's order: every irq
/// allocated (descriptor, global reservation, IRTE), then each requested
/// (a CPU vector, the IRTE programmed, the message composed).
fn resize_models_enable(m: &mut ResizeModels, vectors: u32) -> u64 {
    for _ in 0..vectors {
        let irq = m.domain.alloc_irq(None, false, None).expect("irq");
        let irte = m.irtes.alloc(1).expect("IRTE");
        m.held.push((irq, irte));
    }
    let mut sum = 0u64;
    for &(irq, irte) in &m.held {
        let (cpu, vector) = m
            .domain
            .activate_targeted(irq)
            .expect("activate")
            .expect("a CPU");
        let entry = Irte::remapped(vector as u8, cpu).with_requester_id(RESIZE_RID);
        m.irtes.set(u32::from(irte), entry).expect("program");
        sum = sum.wrapping_add(compose_msi(irte, Some(0)).address);
    }
    sum
}

/// One resize of `RESIZE_VECTORS` vectors on the models alone, in the kernel's
/// order: `free_irq` of each (CPU vector freed and re-reserved, IRTE cleared),
/// then each freed (descriptor, reservation, IRTE), then the enable again.
/// Returns a sum of the composed messages (for `black_box`).
#[inline(never)]
pub fn resize_models_op(m: &mut ResizeModels) -> u64 {
    let n = m.held.len() as u32;
    for &(irq, irte) in &m.held {
        m.domain.deactivate(irq).expect("deactivate");
        m.irtes.clear(u32::from(irte)).expect("clear");
    }
    for &(irq, irte) in &m.held {
        m.domain.free(irq).expect("free irq");
        m.irtes.free(u32::from(irte), 1).expect("free IRTE");
    }
    m.held.clear();
    resize_models_enable(m, n)
}

/// The CPU vectors and IRTEs the models hold now.
pub fn resize_models_held(m: &ResizeModels) -> (u32, u32) {
    (m.domain.matrix().total_allocated(), m.irtes.in_use())
}

// ---- vector table ------------------------------------------------------------

/// Entries in the benched table (the largest MSI-X table).
pub const VT_ENTRIES: usize = 2048;
/// The entry the benches fire (in the upper PBA half of its word).
pub const VT_ENTRY: usize = 100;

/// An enabled 2048-entry table with every entry programmed; `VT_ENTRY`
/// unmasked when `unmasked`, masked otherwise.
pub fn vt_setup(unmasked: bool) -> VectorTable {
    let mut t = VectorTable::new(VT_ENTRIES, DisabledMode::Lost).expect("table");
    for k in 0..VT_ENTRIES {
        t.set_entry(k, compose_msi(k as u16, None))
            .expect("program");
    }
    t.set_control(msixcore_core::vector_table::MSIX_CONTROL_ENABLE);
    if unmasked {
        t.unmask(VT_ENTRY).expect("unmask");
    }
    t
}

/// One fire of `VT_ENTRY`: delivered when unmasked; coalesced into the
/// pending bit when masked (after the first fire).
#[inline]
pub fn vt_fire(t: &mut VectorTable) -> bool {
    t.fire(VT_ENTRY).expect("fire").message().is_some()
}

/// On a masked entry: fire (sets Pending), unmask (sends the message and
/// clears the bit), mask again.
#[inline]
pub fn vt_fire_unmask_mask(t: &mut VectorTable) -> usize {
    t.fire(VT_ENTRY).expect("fire");
    let released = t.unmask(VT_ENTRY).expect("unmask");
    t.mask(VT_ENTRY).expect("mask");
    released.len()
}

// ---- remap -------------------------------------------------------------------

/// Requester id of the device owning the benched IRTE.
pub const REMAP_SID: u16 = 0x0310;

/// A 65,536-entry remapper with 1024 present IRTEs that verify their
/// requester id; returns it and a remappable message naming IRTE 517.
pub fn remap_setup() -> (InterruptRemapper, MsiMessage) {
    let mut r = InterruptRemapper::new(65_536, false).expect("remapper");
    let base = r.table_mut().alloc(1024).expect("alloc");
    for i in 0..1024u32 {
        let irte = Irte::remapped(0x20 + (i % 200) as u8, i % 64).with_requester_id(REMAP_SID);
        r.table_mut()
            .set(u32::from(base) + i, irte)
            .expect("program");
    }
    (r, compose_msi(base + 517, None))
}

/// One remap from `sid`: `Some(vector)` on a hit, `None` when blocked.
#[inline]
pub fn remap_once(r: &mut InterruptRemapper, sid: u16, msg: &MsiMessage) -> Option<u8> {
    match r.remap(sid, msg) {
        RemapResult::Remapped(t) => Some(t.vector),
        RemapResult::Blocked { .. } => None,
    }
}

// ---- queue -------------------------------------------------------------------

/// Capacity of the bounded queues (the engine's default per-CPU queue).
pub const QUEUE_CAPACITY: usize = 4096;

/// How a lock-free queue's producer (queue full) or consumer (queue empty)
/// waits: spin briefly, then give the core away. Pure spinning collapses when
/// the two threads do not both hold a core (this 2-core machine is shared),
/// because the waiting thread burns the time slice the other one needs.
pub struct Wait(u32);

impl Wait {
    /// A fresh wait.
    pub fn new() -> Self {
        Self(0)
    }

    /// One unsuccessful attempt.
    #[inline]
    pub fn snooze(&mut self) {
        if self.0 < 64 {
            std::hint::spin_loop();
            self.0 += 1;
        } else {
            thread::yield_now();
        }
    }

    /// A successful attempt: spin again next time.
    #[inline]
    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

fn item(i: u64) -> Delivery {
    Delivery {
        time_ns: i,
        device: (i % 16) as u32,
        entry: (i % 64) as u32,
        cpu: 0,
        vector: 0x21,
    }
}

/// The producer side of the bounded lock-free benches: push deliveries `0..n`,
/// retrying a full queue with [`Wait`]. Generic, so each queue's push inlines.
fn produce(n: u64, mut push: impl FnMut(Delivery) -> Result<(), Delivery>) {
    for i in 0..n {
        let mut x = item(i);
        let mut w = Wait::new();
        while let Err(back) = push(x) {
            x = back;
            w.snooze();
        }
    }
}

/// The consumer side of the lock-free benches: pop `n` deliveries, waiting with
/// [`Wait`] while empty; returns the sum of their times (checked by the caller to
/// catch lost items).
fn consume(n: u64, mut pop: impl FnMut() -> Option<Delivery>) -> u64 {
    let mut sum = 0u64;
    let mut seen = 0u64;
    let mut w = Wait::new();
    while seen < n {
        if let Some(d) = pop() {
            w.reset();
            sum = sum.wrapping_add(d.time_ns);
            seen += 1;
        } else {
            w.snooze();
        }
    }
    sum
}

/// Deliveries the batched producer writes per `DeliveryProducer::push_slice`
/// (one publication of the ring's write index per chunk instead of per item):
/// a quarter of the ring. With the two threads on two cores of this VM, the
/// rate grows with the chunk (a pinned run of 20 M items: 44 M/s at 64,
/// 90 at 256, 116 at 1,024), because the consumer then reads long runs of
/// slots the producer has finished with instead of chasing it chunk by chunk.
pub const QUEUE_CHUNK: usize = 1024;

/// Most deliveries the batched consumer takes per batch: its slots are
/// released only at the end of a batch, so a cap (one producer chunk) lets
/// the producer refill the ring while a batch is being read.
pub const QUEUE_BATCH: usize = 1024;

/// The producer side with chunks: build deliveries `0..n` [`QUEUE_CHUNK`] at
/// a time in a local buffer, then push each chunk with
/// `DeliveryProducer::push_slice` (which queues the prefix that fits),
/// retrying the rest of a chunk with [`Wait`] while the ring is full.
fn produce_chunked(n: u64, tx: &mut DeliveryProducer) {
    // On the heap: a chunk is 24 KiB, too much for a stack array.
    let mut buf = vec![Delivery::default(); QUEUE_CHUNK];
    let mut next = 0u64;
    while next < n {
        let len = (n - next).min(QUEUE_CHUNK as u64) as usize;
        for (k, slot) in buf[..len].iter_mut().enumerate() {
            *slot = item(next + k as u64);
        }
        let mut rest = &buf[..len];
        let mut w = Wait::new();
        while !rest.is_empty() {
            let pushed = tx.push_slice(rest);
            if pushed == 0 {
                w.snooze();
            } else {
                w.reset();
                rest = &rest[pushed..];
            }
        }
        next += len as u64;
    }
}

/// The consumer side with batches: take up to [`QUEUE_BATCH`] waiting
/// deliveries per call (`DeliveryConsumer::pop_batch`), summing every one,
/// until `n` are taken; [`Wait`] while empty. Returns the sum of their times.
fn consume_batched(n: u64, q: &mut DeliveryConsumer) -> u64 {
    let mut sum = 0u64;
    let mut seen = 0u64;
    let mut w = Wait::new();
    while seen < n {
        let took = q.pop_batch(QUEUE_BATCH, |d| sum = sum.wrapping_add(d.time_ns));
        if took == 0 {
            w.snooze();
        } else {
            w.reset();
            seen += took as u64;
        }
    }
    sum
}

/// One producer thread pushes `n` deliveries, this thread takes them; returns
/// the sum of their times (checked by the caller to catch lost items).
/// Ours: `DeliveryQueue` (a lock-free SPSC ring, split into its two ends)
/// with both ends in batches: the producer pushes chunks
/// ([`produce_chunked`]), the consumer takes batches ([`consume_batched`]);
/// both sides [`Wait`] as every other queue's do.
pub fn queue_delivery(n: u64) -> u64 {
    let (mut tx, mut q) = DeliveryQueue::new(QUEUE_CAPACITY).expect("queue").split();
    let producer = thread::spawn(move || produce_chunked(n, &mut tx));
    let sum = consume_batched(n, &mut q);
    producer.join().expect("producer");
    sum
}

/// As [`queue_delivery`] with batches on the consumer side only: the
/// producer pushes item by item, as it must with `ArrayQueue`.
pub fn queue_delivery_consumer_batch(n: u64) -> u64 {
    let (mut tx, mut q) = DeliveryQueue::new(QUEUE_CAPACITY).expect("queue").split();
    let producer = thread::spawn(move || produce(n, |x| tx.push(x)));
    let sum = consume_batched(n, &mut q);
    producer.join().expect("producer");
    sum
}

/// As [`queue_delivery`] item by item on both sides, as `ArrayQueue` is
/// used.
pub fn queue_delivery_item(n: u64) -> u64 {
    let (mut tx, mut q) = DeliveryQueue::new(QUEUE_CAPACITY).expect("queue").split();
    let producer = thread::spawn(move || produce(n, |x| tx.push(x)));
    let sum = consume(n, || q.pop());
    producer.join().expect("producer");
    sum
}

/// As [`queue_delivery`] on crossbeam's bounded MPMC `ArrayQueue` (the queue we used first).
pub fn queue_array(n: u64) -> u64 {
    let q = Arc::new(ArrayQueue::new(QUEUE_CAPACITY));
    let producer = {
        let q = Arc::clone(&q);
        thread::spawn(move || produce(n, |x| q.push(x)))
    };
    let sum = consume(n, || q.pop());
    producer.join().expect("producer");
    sum
}

/// The alternative not chosen: crossbeam's unbounded `SegQueue` (no
/// back-pressure, so no `coalesced` on a full queue; allocates segments).
pub fn queue_seg(n: u64) -> u64 {
    let q = Arc::new(SegQueue::new());
    let producer = {
        let q = Arc::clone(&q);
        thread::spawn(move || {
            for i in 0..n {
                q.push(item(i));
            }
        })
    };
    let sum = consume(n, || q.pop());
    producer.join().expect("producer");
    sum
}

/// The other alternative: std's bounded `sync_channel` (blocking on full /
/// empty instead of spinning; single consumer only).
pub fn queue_channel(n: u64) -> u64 {
    let (tx, rx) = sync_channel::<Delivery>(QUEUE_CAPACITY);
    let producer = thread::spawn(move || {
        for i in 0..n {
            tx.send(item(i)).expect("send");
        }
    });
    let mut sum = 0u64;
    for _ in 0..n {
        sum = sum.wrapping_add(rx.recv().expect("recv").time_ns);
    }
    producer.join().expect("producer");
    sum
}

/// Same-thread cost (what the single-threaded engine pays per delivery):
/// push `batch` deliveries into our `DeliveryQueue`, then pop them all.
#[inline]
pub fn queue_local_delivery(q: &mut DeliveryQueue, batch: u64) -> u64 {
    for i in 0..batch {
        q.push(item(i)).expect("room");
    }
    let mut sum = 0u64;
    while let Some(d) = q.pop() {
        sum = sum.wrapping_add(d.time_ns);
    }
    sum
}

/// As [`queue_local_delivery`] on a `SegQueue`.
#[inline]
pub fn queue_local_seg(q: &SegQueue<Delivery>, batch: u64) -> u64 {
    for i in 0..batch {
        q.push(item(i));
    }
    let mut sum = 0u64;
    while let Some(d) = q.pop() {
        sum = sum.wrapping_add(d.time_ns);
    }
    sum
}

/// Sum of times `0..n` (what every queue workload must return).
pub fn queue_expected(n: u64) -> u64 {
    (0..n).fold(0u64, u64::wrapping_add)
}

// ---- engine ------------------------------------------------------------------

/// Resizes in one cycle of `s` (every device unmasks its whole table).
pub fn storm_cycle_resizes(s: &Storm) -> u64 {
    u64::from(s.devices) * u64::from(s.table)
}

/// A generous `max_time_ns` for a run of `s` to `resizes` requests, from its
/// program: twice the cycles needed (plus one) times the cycle length, each
/// step charged the slowest host operation any policy runs, plus one second.
pub fn storm_time_bound_ns(s: &Storm, resizes: u64) -> u64 {
    let t = TimingConfig::default();
    let slowest_op = t.t_hypercall_ns
        + s.w0_ns
        + u64::from(s.table)
            * (s.w_free_ns + s.w_alloc_ns + t.t_free_irq_ns + t.t_request_ns + t.t_dynamic_ns);
    let program = s.program();
    let delays: u64 = program.iter().map(|p| p.delay_ns).sum();
    let cycle_ns = delays + program.len() as u64 * slowest_op;
    let cycles = resizes.div_ceil(storm_cycle_resizes(s).max(1)) + 1;
    2 * cycles * cycle_ns + 1_000_000_000
}

/// The storm `s` (`Storm::default()` is the CLI's storm, docs/storm.md#parameters)
/// under `policy`, stopping after `resizes` resize requests, with a time bound
/// from [`storm_time_bound_ns`]; add `.seed`, `.mode`, then `.build()`.
pub fn storm_builder(s: &Storm, policy: PolicyKind, resizes: u64) -> SimConfigBuilder {
    s.config(policy)
        .max_resizes(resizes)
        .max_time_ns(storm_time_bound_ns(s, resizes))
}

/// The storm `s` under `noresize` for `resizes` resizes, per-event mode
/// (what the engine bench and the storm example run).
pub fn storm_config(s: &Storm, resizes: u64, seed: u64) -> SimConfig {
    storm_config_in(s, Mode::Event, resizes, seed)
}

/// [`storm_config`] in `mode` (aggregated: what `msixcore run storm` runs by
/// default for a resize count).
pub fn storm_config_in(s: &Storm, mode: Mode, resizes: u64, seed: u64) -> SimConfig {
    storm_builder(s, PolicyKind::Noresize, resizes)
        .mode(mode)
        .seed(seed)
        .build()
        .expect("storm config")
}

/// Build and run a storm config; the caller divides `books.fired` by the time.
pub fn engine_run(cfg: SimConfig) -> RunResult {
    Engine::new(cfg).expect("config").run().expect("run")
}

/// The floor any faithful per-event engine pays (docs/storm.md#speed-baselines): one
/// exponential inter-arrival per event, drawn exactly as the engine draws
/// it (xoshiro256++, `-ln(u)/rate`), and one comparison against a resize
/// window (`window_ns` open at the start of every `period_ns`). Returns the
/// number of events inside windows; `events` are drawn at `total_rate`/s.
#[inline(never)]
pub fn bare_loop(events: u64, total_rate: f64, period_ns: f64, window_ns: f64, seed: u64) -> u64 {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let scale = 1e9 / total_rate;
    let mut now = 0.0f64;
    let mut window_end = window_ns;
    let mut next_window = period_ns;
    let mut lost = 0u64;
    for _ in 0..events {
        let u: f64 = 1.0 - (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        now -= u.ln() * scale;
        while now >= next_window {
            window_end = next_window + window_ns;
            next_window += period_ns;
        }
        lost += u64::from(now < window_end);
    }
    lost
}
