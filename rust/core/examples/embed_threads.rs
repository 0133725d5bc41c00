//! Embed the models in a threaded Rust simulator, with the core crate only
//! (no engine, no Python): the host's vector domain gives each MSI-X vector a
//! CPU vector, a VT-d remapper holds one IRTE per vector, and then two
//! threads run.
//!
//! - The device thread fires a Poisson stream on a real MSI-X table, routes
//!   each message through the remapper and pushes the delivery into the
//!   producer end of the target CPU's queue (`DeliveryQueue::split`). On the
//!   way the guest masks and unmasks a vector, masks another for good, and
//!   the host tears down one vector's IRTE while the device still uses it.
//! - The handler thread takes deliveries from the consumer ends, checking
//!   that each came to the right CPU in time order.
//!
//! The queues are the transport between the threads: a full one makes the
//! device thread wait (simulated time stands still meanwhile), so the books
//! do not depend on how the threads are scheduled. At the end every fired
//! interrupt is in exactly one outcome (delivered, pending, coalesced,
//! blocked), every delivery was taken on the handler thread, and the counts
//! are printed. Run it with
//!
//! ```sh
//! cargo run --release --example embed_threads
//! ```
//!
//! `cargo test` runs the same code (`rust/core/tests/embed_threads.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, ThreadId};

use msixcore_core::books::{Books, Outcome};
use msixcore_core::queue::{Delivery, DeliveryConsumer, DeliveryProducer, DeliveryQueue};
use msixcore_core::vector_table::MSIX_CONTROL_ENABLE;
use msixcore_core::{
    compose_msi, DisabledMode, Error, FireOutcome, InterruptRemapper, Irte, MsiMessage,
    RemapResult, Result, VectorDomain, VectorTable, X86Preset,
};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp1};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The device's requester id: bus 1, device 0, function 0.
const REQUESTER_ID: u16 = 0x0100;
/// The vector the guest masks for a while, then unmasks.
const MASKED_A_WHILE: usize = 3;
/// The vector whose IRTE the host tears down half way.
const TORN_DOWN: usize = 5;
/// The vector the guest masks for good three quarters of the way.
const MASKED_TO_THE_END: usize = 7;

/// The run's size.
#[derive(Debug, Clone)]
pub struct Params {
    /// Host CPUs, each with its own delivery queue.
    pub ncpus: u32,
    /// MSI-X table entries, all in use.
    pub entries: u32,
    /// Interrupts the device fires.
    pub fires: u64,
    /// The device's total interrupt rate, per second.
    pub rate: f64,
    /// Deliveries each CPU's queue holds.
    pub queue_capacity: usize,
    /// RNG seed.
    pub seed: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            ncpus: 4,
            entries: 16,
            fires: 200_000,
            rate: 2e6,
            queue_capacity: 256,
            seed: 1,
        }
    }
}

/// What a run came to.
#[derive(Debug)]
pub struct Report {
    /// Every fired interrupt's outcome.
    pub books: Books,
    /// Deliveries the device thread pushed, per CPU.
    pub pushed: Vec<u64>,
    /// Deliveries the handler thread took, per CPU.
    pub taken: Vec<u64>,
    /// Deliveries the handler found on the wrong CPU or out of time order.
    pub misrouted: u64,
    /// Times the device thread found a queue full and waited for the
    /// handler thread.
    pub waits: u64,
    /// Faults the remapper recorded.
    pub faults: u64,
    /// The thread that fired and pushed.
    pub device_thread: ThreadId,
    /// The thread that took.
    pub handler_thread: ThreadId,
}

/// The device thread's world: its table, the IOMMU in front of it, and the
/// producer end of every CPU's queue.
struct DeviceSide {
    table: VectorTable,
    iommu: InterruptRemapper,
    irte_base: u32,
    queues: Vec<DeliveryProducer>,
    pushed: Vec<u64>,
    waits: u64,
    books: Books,
}

impl DeviceSide {
    /// Send one message from entry `k` through the IOMMU to a CPU queue.
    fn route(&mut self, k: usize, msg: &MsiMessage, time_ns: u64) -> Outcome {
        let target = match self.iommu.remap(REQUESTER_ID, msg) {
            RemapResult::Remapped(t) => t,
            RemapResult::Blocked { .. } => return Outcome::Blocked,
        };
        // APIC id i is CPU i on this host.
        let cpu = target.dest_id;
        let Some(queue) = self.queues.get_mut(cpu as usize) else {
            return Outcome::Blocked; // no such CPU: nothing accepts the write
        };
        let mut d = Delivery {
            time_ns,
            device: 0,
            entry: k as u32,
            cpu,
            vector: target.vector,
        };
        // A full queue means the handler thread is behind in wall-clock
        // time. Simulated time stands still while the device waits, so
        // waiting changes no outcome: the books do not depend on the threads.
        while let Err(back) = queue.push(d) {
            d = back;
            self.waits += 1;
            thread::yield_now();
        }
        self.pushed[cpu as usize] += 1;
        Outcome::Delivered
    }

    /// The device signals vector `k` at `time_ns`; book where it ends.
    fn fire(&mut self, k: usize, time_ns: u64) -> Result<()> {
        let fired = self.table.fire(k)?;
        let outcome = match (fired.outcome(), fired.message()) {
            (FireOutcome::Delivered, Some(msg)) => self.route(k, &msg, time_ns),
            (FireOutcome::Pending, _) => Outcome::Pending,
            (FireOutcome::Coalesced, _) => Outcome::Coalesced,
            (FireOutcome::Intx, _) => Outcome::Intx,
            _ => Outcome::Lost,
        };
        self.books.fire(outcome);
        Ok(())
    }

    /// The guest unmasks entry `k`: a latched interrupt is sent now, and its
    /// pending book moves to where it ends.
    fn unmask(&mut self, k: usize, time_ns: u64) -> Result<()> {
        for (k, msg) in self.table.unmask(k)? {
            let outcome = self.route(k, &msg, time_ns);
            self.books.settle_pending(outcome)?;
        }
        Ok(())
    }

    /// Fire `p.fires` interrupts, uniformly over the entries, with what the
    /// guest and the host do on the way.
    fn run(&mut self, p: &Params) -> Result<()> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(p.seed);
        let mean_gap_ns = 1e9 / p.rate;
        let mut now = 0.0f64;
        for i in 0..p.fires {
            if i == p.fires / 4 {
                self.table.mask(MASKED_A_WHILE)?;
            }
            if i == p.fires / 2 {
                self.unmask(MASKED_A_WHILE, now as u64)?;
                // free_irq on the host while the device still signals:
                // the IRTE is no longer present, the IOMMU blocks.
                self.iommu
                    .table_mut()
                    .clear(self.irte_base + TORN_DOWN as u32)?;
            }
            if i == 3 * p.fires / 4 {
                self.table.mask(MASKED_TO_THE_END)?;
            }
            let gap: f64 = Exp1.sample(&mut rng);
            now += gap * mean_gap_ns;
            let k = rng.random_range(0..p.entries) as usize;
            self.fire(k, now as u64)?;
        }
        Ok(())
    }
}

/// The host's setup of the device: one irq per entry, requested, with its
/// IRTE pointing at the CPU vector the domain chose; then the guest's
/// enable (every entry unmasked).
fn set_up(p: &Params) -> Result<(VectorTable, InterruptRemapper, u32)> {
    let mut domain = VectorDomain::new(p.ncpus, &X86Preset::mainline(), true, None)?;
    let mut iommu = InterruptRemapper::new(1024, false)?;
    let mut table = VectorTable::new(p.entries as usize, DisabledMode::Lost)?;
    let base = u32::from(iommu.table_mut().alloc(p.entries)?);
    for k in 0..p.entries {
        let irq = domain.alloc_irq(None, false, None)?;
        domain.activate(irq)?;
        let (cpu, vector) = domain.irq(irq)?.target().ok_or_else(|| {
            Error::InvalidArgument(format!("irq {irq} holds no vector after activation"))
        })?;
        let vector = u8::try_from(vector)
            .map_err(|_| Error::InvalidArgument(format!("vector {vector} is not an IDT vector")))?;
        let irte = Irte::remapped(vector, cpu).with_requester_id(REQUESTER_ID);
        iommu.table_mut().set(base + k, irte)?;
        // Linux's remappable format: handle = IRTE index, SHV with sub-handle 0.
        let handle = u16::try_from(base + k)
            .map_err(|_| Error::InvalidArgument(format!("IRTE index {} too large", base + k)))?;
        table.set_entry(k as usize, compose_msi(handle, Some(0)))?;
    }
    table.set_control(MSIX_CONTROL_ENABLE);
    for k in 0..p.entries as usize {
        table.unmask(k)?;
    }
    Ok((table, iommu, base))
}

/// Take deliveries until the device thread is done and the queues are empty.
/// Returns what it took per CPU and how many were misrouted.
fn handle(mut queues: Vec<DeliveryConsumer>, done: &AtomicBool) -> (Vec<u64>, u64) {
    let mut taken = vec![0u64; queues.len()];
    let mut last = vec![0u64; queues.len()];
    let mut misrouted = 0;
    loop {
        // Read the flag before the sweep: every push made before it was set
        // is then visible to the sweep, so a sweep after it empties the queues.
        let finished = done.load(Ordering::Acquire);
        let mut any = false;
        for (cpu, q) in queues.iter_mut().enumerate() {
            // One batch per queue: everything published when the batch
            // begins, so pushes made before the flag was read are in it.
            let took = q.pop_batch(usize::MAX, |d| {
                if d.cpu as usize != cpu || d.time_ns < last[cpu] {
                    misrouted += 1;
                }
                last[cpu] = d.time_ns;
            });
            taken[cpu] += took as u64;
            any |= took > 0;
        }
        if finished {
            return (taken, misrouted);
        }
        if !any {
            thread::yield_now();
        }
    }
}

/// Set the host up, run the device and handler threads, and check the books.
pub fn run(p: &Params) -> Result<Report> {
    let (table, iommu, irte_base) = set_up(p)?;
    let (producers, consumers): (Vec<_>, Vec<_>) = (0..p.ncpus)
        .map(|_| DeliveryQueue::new(p.queue_capacity).map(DeliveryQueue::split))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let done = Arc::new(AtomicBool::new(false));
    let handler = {
        let done = Arc::clone(&done);
        thread::spawn(move || (thread::current().id(), handle(consumers, &done)))
    };
    let device = {
        let p = p.clone();
        thread::spawn(move || {
            let mut side = DeviceSide {
                table,
                iommu,
                irte_base,
                pushed: vec![0; producers.len()],
                waits: 0,
                queues: producers,
                books: Books::default(),
            };
            let r = side.run(&p);
            done.store(true, Ordering::Release);
            r.map(|()| (thread::current().id(), side))
        })
    };
    let joined = |what: &str| Error::Accounting(format!("the {what} thread panicked"));
    let (device_thread, side) = device.join().map_err(|_| joined("device"))??;
    let (handler_thread, (taken, misrouted)) = handler.join().map_err(|_| joined("handler"))?;
    side.books.check()?;
    let pushed: u64 = side.pushed.iter().sum();
    if pushed != side.books.get(Outcome::Delivered) || side.pushed != taken {
        return Err(Error::Accounting(format!(
            "delivered {} but pushed {:?} and taken {taken:?}",
            side.books.get(Outcome::Delivered),
            side.pushed
        )));
    }
    Ok(Report {
        books: side.books,
        pushed: side.pushed,
        taken,
        misrouted,
        waits: side.waits,
        faults: side.iommu.fault_log().total(),
        device_thread,
        handler_thread,
    })
}

pub fn main() -> Result<()> {
    let p = Params::default();
    let r = run(&p)?;
    println!(
        "{} interrupts fired on {} vectors, handled on another thread over {} CPUs",
        r.books.fired, p.entries, p.ncpus
    );
    for o in Outcome::ALL {
        println!("  {:<10} {}", o.name(), r.books.get(o));
    }
    println!(
        "  pushed per CPU on {:?}: {:?}; taken on {:?}: {:?}",
        r.device_thread, r.pushed, r.handler_thread, r.taken
    );
    println!(
        "  IOMMU faults: {}; misrouted deliveries: {}; waits for a full queue: {}",
        r.faults, r.misrouted, r.waits
    );
    Ok(())
}
