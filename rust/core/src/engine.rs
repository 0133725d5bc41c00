//! The discrete-event engine: simulated time in nanoseconds, seeded and
//! deterministic. Guest driver programs and host operations are timed
//! control events; interrupts are Poisson sources on live vectors, merged
//! into one stream (superposition) so each fire costs O(1): an exponential
//! draw, a pick, the device's `VectorTable`, the IOMMU and a CPU queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp1, Poisson};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;

use crate::books::{Books, Outcome};
use crate::config::{Action, Mode, Semantics, SimConfig};
use crate::error::{Error, Result};
use crate::host::{Fx, Host, Usage};
use crate::msi::MsiMessage;
use crate::policy::{builtin, Ctx, Negotiated, Policy, StepResult};
use crate::queue::{CpuHandler, Delivery, DeliveryQueue};
use crate::vector_table::{DisabledMode, FireOutcome, VectorTable, MSIX_CONTROL_ENABLE};

const NONE: u32 = u32::MAX;

/// Everything a run reports besides the outcome books.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunStats {
    /// Simulated time at the end of the run.
    pub end_time_ns: u64,
    /// Resize windows closed (disable/re-enable of a device's MSI-X index).
    pub resizes: u64,
    /// Guest unmasks of a new highest entry since enable, completed: each is
    /// a resize on a NORESIZE host, whatever this run's policy did with it.
    pub resize_requests: u64,
    /// Sum of device-wide windows W2 (MSI-X Enable clear while the guest
    /// had the device enabled), ns.
    pub w2_time_ns: u64,
    /// Sum over live vectors of the time their entry was masked by the host
    /// (W1), ns.
    pub w1_time_ns: u64,
    /// Guests killed after a host failure.
    pub guest_kills: u64,
    /// MSIX_ENABLE requests the host refused.
    pub negotiations_refused: u64,
    /// Guest unmasks that failed visibly (the driver handled it).
    pub unmasks_refused: u64,
    /// MSI-X enables that failed visibly: the driver runs without MSI-X.
    pub enables_refused: u64,
    /// Guest unmasks skipped because the entry was past the granted count.
    pub unmasks_skipped: u64,
    /// Vectors marked dead by a host failure (guest unaware).
    pub dead_marks: u64,
    /// Host allocations that failed (CPU vectors, IRTEs).
    pub alloc_failures: u64,
    /// IOMMU remapping faults (recorded or suppressed).
    pub remap_faults: u64,
    /// Stale-queue episodes: a vector lost an interrupt while not stale.
    pub stalls: u64,
    /// Time vectors spent stale (capped at the timeout per episode), ns.
    pub stall_time_ns: u64,
    /// Stalls that lasted until the driver's timeout.
    pub stall_timeouts: u64,
    /// Stalls still open (shorter than the timeout) at the end.
    pub stalls_open: u64,
    /// Deliveries that found their CPU queue full (booked as coalesced).
    pub queue_overflows: u64,
    /// Interrupts served by the CPU handler model.
    pub handled: u64,
    /// Deepest CPU queue seen.
    pub max_queue_depth: u64,
    /// Sum of queueing delays, ns.
    pub queue_wait_ns: u64,
    /// Largest queueing delay, ns.
    pub max_queue_wait_ns: u64,
    /// Host resources at the end.
    pub final_usage: UsageStats,
    /// Host resources at their peak.
    pub peak_usage: UsageStats,
    /// Control events processed (guest steps and host effects).
    pub control_events: u64,
}

/// Host resources in use, as reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UsageStats {
    /// CPU vectors.
    pub cpu_vectors: u64,
    /// IRTEs.
    pub irtes: u64,
    /// irq descriptors.
    pub irq_descs: u64,
}

impl From<Usage> for UsageStats {
    fn from(u: Usage) -> Self {
        Self {
            cpu_vectors: u.cpu_vectors,
            irtes: u.irtes,
            irq_descs: u.irq_descs,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The outcome books (conservation checked).
    pub books: Books,
    /// Everything else.
    pub stats: RunStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum What {
    /// The device's next guest driver step.
    Step,
    /// A batch of same-time host effects (an index into `Engine::batches`).
    Effects(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Ev {
    t: u64,
    seq: u64,
    dev: u32,
    what: What,
}

struct Device {
    vm: u32,
    table: VectorTable,
    live: Vec<bool>,
    dead: Vec<bool>,
    class: Vec<u16>,
    pos: Vec<u32>,
    granted: u32,
    pc: usize,
    halted: bool,
    high: Option<u32>,
    stall_since: Vec<f64>,
    /// Vectors of this device with a stall open: none means a delivery has
    /// nothing to close.
    stalled: u32,
    w2_open: Option<u64>,
    w1_open: Vec<u64>,
    /// The guest has MSI-X enabled (a host disable now opens a W2 window).
    guest_enabled: bool,
    /// Aggregated mode: the time up to which this device's fires are booked.
    booked_until: f64,
}

impl Device {
    /// Entry `k`'s open stall (-1 = none); the array is allocated on the
    /// first loss, so devices that never lose an interrupt cost nothing.
    fn stall_slot(&mut self, k: usize) -> &mut f64 {
        if self.stall_since.is_empty() {
            self.stall_since = vec![-1.0; self.live.len()];
        }
        &mut self.stall_since[k]
    }

    /// Entry `k`'s W1 start (`u64::MAX` = closed), allocated on first use.
    fn w1_slot(&mut self, k: usize) -> &mut u64 {
        if self.w1_open.is_empty() {
            self.w1_open = vec![u64::MAX; self.live.len()];
        }
        &mut self.w1_open[k]
    }
}

struct RateClass {
    rate: f64,
    members: Vec<(u32, u32)>,
}

/// One simulation run: build it from a config, then [`Engine::run`].
pub struct Engine {
    cfg: SimConfig,
    host: Host,
    policy: Box<dyn Policy>,
    devices: Vec<Device>,
    classes: Vec<RateClass>,
    total_rate: f64,
    /// Mean gap between fires of the merged stream, ns (`1e9 / total_rate`):
    /// a multiply per fire instead of a division.
    mean_gap_ns: f64,
    rng: Xoshiro256PlusPlus,
    now: f64,
    heap: BinaryHeap<Reverse<Ev>>,
    seq: u64,
    /// Effect batches waiting in the heap, by slot; freed slots are reused.
    batches: Vec<Vec<Fx>>,
    free_batches: Vec<u32>,
    /// A guest step's effects before batching (kept to reuse its allocation).
    fx_buf: Vec<(u64, Fx)>,
    queues: Vec<DeliveryQueue>,
    handlers: Vec<CpuHandler>,
    books: Books,
    stats: RunStats,
    stop_at: Option<u64>,
    finished: bool,
}

fn disabled_mode(s: Semantics) -> DisabledMode {
    match s {
        Semantics::Edge => DisabledMode::Lost,
        Semantics::EdgeIntx => DisabledMode::Intx,
        // A cause-latched (level) source is re-asserted once MSI-X is back:
        // like the PBA it holds one event per vector and delivers it late.
        Semantics::Level | Semantics::Pba => DisabledMode::Pending,
    }
}

impl Engine {
    /// Build a run with the built-in policy the config names.
    pub fn new(cfg: SimConfig) -> Result<Self> {
        cfg.validate()?;
        let policy = builtin(&cfg.policy, &cfg.devices)?;
        Self::with_policy(cfg, policy)
    }

    /// Build a run with a custom policy.
    pub fn with_policy(cfg: SimConfig, policy: Box<dyn Policy>) -> Result<Self> {
        cfg.validate()?;
        let host = Host::new(&cfg.host, cfg.devices.len())?;
        let mut classes: Vec<RateClass> = Vec::new();
        let mut devices = Vec::with_capacity(cfg.devices.len());
        for d in &cfg.devices {
            let n = d.entries as usize;
            let mut class = vec![0u16; n];
            for (k, c) in class.iter_mut().enumerate() {
                let rate = d
                    .rates
                    .iter()
                    .rev()
                    .find(|(e, _)| *e as usize == k)
                    .map_or(d.rate, |(_, r)| *r);
                let found = classes
                    .iter()
                    .position(|c| c.rate.to_bits() == rate.to_bits());
                let idx = if let Some(i) = found {
                    i
                } else {
                    if classes.len() >= u16::MAX as usize {
                        return Err(Error::InvalidArgument(
                            "rates: too many distinct rates".into(),
                        ));
                    }
                    classes.push(RateClass {
                        rate,
                        members: Vec::new(),
                    });
                    classes.len() - 1
                };
                *c = idx as u16;
            }
            devices.push(Device {
                vm: d.vm,
                table: VectorTable::new(n, disabled_mode(d.semantics))?,
                live: vec![false; n],
                dead: vec![false; n],
                class,
                pos: vec![NONE; n],
                granted: d.entries,
                pc: 0,
                halted: false,
                high: None,
                stall_since: Vec::new(),
                stalled: 0,
                w2_open: None,
                w1_open: Vec::new(),
                guest_enabled: false,
                booked_until: 0.0,
            });
        }
        let ncpus = cfg.host.ncpus as usize;
        let queues = (0..ncpus)
            .map(|_| DeliveryQueue::new(cfg.handler.queue_capacity))
            .collect::<Result<_>>()?;
        let rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
        let mut e = Self {
            host,
            policy,
            devices,
            classes,
            total_rate: 0.0,
            mean_gap_ns: 0.0,
            rng,
            now: 0.0,
            heap: BinaryHeap::new(),
            seq: 0,
            batches: Vec::new(),
            free_batches: Vec::new(),
            fx_buf: Vec::new(),
            queues,
            handlers: vec![CpuHandler::default(); ncpus],
            books: Books::default(),
            stats: RunStats::default(),
            stop_at: cfg.stop.max_time_ns,
            finished: false,
            cfg,
        };
        for (i, d) in e.cfg.devices.clone().iter().enumerate() {
            if let Some(first) = d.program.first() {
                e.schedule(d.start_ns + first.delay_ns, i as u32, What::Step);
            }
        }
        Ok(e)
    }

    fn schedule(&mut self, t: u64, dev: u32, what: What) {
        self.seq += 1;
        self.heap.push(Reverse(Ev {
            t,
            seq: self.seq,
            dev,
            what,
        }));
    }

    /// The outcome books so far.
    pub fn books(&self) -> &Books {
        &self.books
    }

    /// Simulated time now, ns.
    pub fn now_ns(&self) -> u64 {
        self.now as u64
    }

    /// Whether the run reached its stop condition.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The policy's name (a built-in's, or a custom policy's `name`).
    pub fn policy_name(&self) -> String {
        self.policy.name()
    }

    /// The host (resources, domain).
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Take every delivery waiting on host CPU `cpu`, oldest first.
    pub fn drain(&mut self, cpu: u32) -> Result<Vec<Delivery>> {
        self.queues
            .get_mut(cpu as usize)
            .map(DeliveryQueue::drain)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "cpu {cpu} is past the host's {} CPUs",
                    self.cfg.host.ncpus
                ))
            })
    }

    /// Run to the stop condition and return the checked books and stats.
    pub fn run(&mut self) -> Result<RunResult> {
        self.step_until(u64::MAX)?;
        self.result()
    }

    /// Advance simulated time to `t_ns` (or to the stop condition, if
    /// earlier). Returns whether the run has finished.
    pub fn step_until(&mut self, t_ns: u64) -> Result<bool> {
        let limit = t_ns.min(self.stop_at.unwrap_or(u64::MAX));
        if self.finished {
            return Ok(true);
        }
        loop {
            let next_ctl = self.heap.peek().map_or(u64::MAX, |Reverse(e)| e.t);
            let horizon = next_ctl.min(limit);
            if horizon == u64::MAX {
                // No control event left and no time limit: the resize count
                // cannot grow any more, so the run ends here (before any
                // fire: live sources would otherwise fire forever).
                self.finished = true;
                break;
            }
            if self.total_rate > 0.0 && self.cfg.mode == Mode::Event {
                self.fire_until(horizon as f64)?;
            }
            if next_ctl > limit {
                self.now = self.now.max(limit as f64);
                if Some(limit) == self.stop_at {
                    self.finished = true;
                }
                break;
            }
            let Some(Reverse(ev)) = self.heap.pop() else {
                break;
            };
            if self.cfg.mode == Mode::Aggregated {
                self.book_device(ev.dev, ev.t as f64)?;
            }
            self.now = self.now.max(ev.t as f64);
            self.stats.control_events += 1;
            match ev.what {
                What::Step => self.guest_step(ev.dev)?,
                What::Effects(slot) => {
                    let batch = std::mem::take(&mut self.batches[slot as usize]);
                    // One time for the whole batch (a float-to-integer conversion per effect
                    // showed in the profile).
                    let now = self.now as u64;
                    for fx in &batch {
                        self.apply(ev.dev, *fx, now)?;
                    }
                    // Keep the allocation for the next batch.
                    self.batches[slot as usize] = batch;
                    self.batches[slot as usize].clear();
                    self.free_batches.push(slot);
                }
            }
            if self.finished {
                break;
            }
        }
        if self.cfg.mode == Mode::Aggregated {
            for dev in 0..self.devices.len() as u32 {
                self.book_device(dev, self.now)?;
            }
        }
        Ok(self.finished)
    }

    /// Per-event mode: fire the merged Poisson stream up to `horizon` (ns,
    /// exclusive). Nothing a fire does changes the live set or the rates, so
    /// the stream's parameters hold for the whole stretch; the draw that
    /// lands past the horizon is dropped (the stream is memoryless).
    #[inline(never)]
    fn fire_until(&mut self, horizon: f64) -> Result<()> {
        let gap = self.mean_gap_ns;
        loop {
            // Exp(1) by the ziggurat method: no logarithm on the hot path.
            let e: f64 = Exp1.sample(&mut self.rng);
            let tf = self.now + e * gap;
            if tf >= horizon {
                return Ok(());
            }
            self.now = tf;
            let (dev, k) = self.pick();
            self.fire(dev, k)?;
        }
    }

    /// Aggregated mode: book device `dev`'s fires from its last booking up
    /// to `t` (ns). Its state is constant over that interval, so each live
    /// vector's fires are Poisson(rate · Δt) with one outcome class: vectors
    /// that would send and route, or that would be lost, diverted to INTx or
    /// fail, are summed and sampled with one draw per class; a vector whose
    /// fires latch a pending bit, or are blocked, goes through the real table
    /// and IOMMU (first fire) with the rest booked as they would end. CPU
    /// queues and stale-queue timing are not simulated in this mode.
    fn book_device(&mut self, dev: u32, t: f64) -> Result<()> {
        let di = dev as usize;
        let t0 = self.devices[di].booked_until;
        if t <= t0 {
            return Ok(());
        }
        self.devices[di].booked_until = t;
        let dt = (t - t0) * 1e-9;
        let (mut send, mut lost, mut intx, mut failed) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
        let mut slow: Vec<(u32, f64)> = Vec::new();
        let d = &self.devices[di];
        let enabled = d.table.is_enabled();
        let mode = d.table.disabled_mode();
        for (k, &live) in d.live.iter().enumerate() {
            if !live {
                continue;
            }
            let rate = self.classes[d.class[k] as usize].rate;
            if rate <= 0.0 {
                continue;
            }
            if d.dead[k] {
                failed += rate;
            } else if !enabled && mode == DisabledMode::Lost {
                lost += rate;
            } else if !enabled && mode == DisabledMode::Intx {
                intx += rate;
            } else if d.table.can_send(k)? && self.host.probe(dev, &d.table.entry(k)?.message()) {
                send += rate;
            } else {
                slow.push((k as u32, rate));
            }
        }
        for (outcome, rate) in [
            (Outcome::Delivered, send),
            (Outcome::Lost, lost),
            (Outcome::Intx, intx),
            (Outcome::Failed, failed),
        ] {
            let n = self.poisson(rate * dt)?;
            self.books.fire_n(outcome, n);
        }
        for (k, rate) in slow {
            let n = self.poisson(rate * dt)?;
            if n == 0 {
                continue;
            }
            // The first fire goes through the real table (sets the pending
            // bit, or is blocked by the IOMMU); the rest end the same way or
            // coalesce into the bit now set.
            let outcome = self.fire_table(dev, k)?;
            self.books.fire(outcome);
            let rest = match outcome {
                Outcome::Pending | Outcome::Coalesced => Outcome::Coalesced,
                Outcome::Blocked => {
                    // Each blocked request is a fault: route them for real.
                    for _ in 1..n {
                        let msg = self.devices[di].table.entry(k as usize)?.message();
                        let o = self.deliver(dev, k, msg);
                        self.books.fire(o);
                    }
                    continue;
                }
                o => o,
            };
            self.books.fire_n(rest, n - 1);
        }
        Ok(())
    }

    fn poisson(&mut self, mean: f64) -> Result<u64> {
        if mean <= 0.0 {
            return Ok(0);
        }
        let p = Poisson::new(mean)
            .map_err(|e| Error::InvalidArgument(format!("poisson mean {mean}: {e}")))?;
        Ok(p.sample(&mut self.rng) as u64)
    }

    #[inline]
    fn pick(&mut self) -> (u32, u32) {
        let r = self.rng.next_u64();
        if self.classes.len() == 1 {
            let m = &self.classes[0].members;
            let i = ((u128::from(r) * m.len() as u128) >> 64) as usize;
            return m[i];
        }
        let mut x = (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * self.total_rate;
        let last = self
            .classes
            .iter()
            .rposition(|c| !c.members.is_empty())
            .unwrap_or(0);
        for (ci, c) in self.classes.iter().enumerate() {
            let w = c.rate * c.members.len() as f64;
            if w <= 0.0 {
                continue;
            }
            if x < w || ci == last {
                let i = ((x / c.rate) as usize).min(c.members.len() - 1);
                return c.members[i];
            }
            x -= w;
        }
        self.classes[last].members[0]
    }

    fn recompute_rate(&mut self) {
        self.total_rate = self
            .classes
            .iter()
            .map(|c| c.rate * c.members.len() as f64)
            .sum();
        self.mean_gap_ns = if self.total_rate > 0.0 {
            1e9 / self.total_rate
        } else {
            0.0
        };
    }

    fn set_live(&mut self, dev: u32, k: u32, on: bool) {
        let Some(d) = self.devices.get_mut(dev as usize) else {
            return;
        };
        let ku = k as usize;
        if ku >= d.live.len() || d.live[ku] == on {
            return;
        }
        d.live[ku] = on;
        let c = d.class[ku] as usize;
        if self.classes[c].rate <= 0.0 {
            return;
        }
        if on {
            d.pos[ku] = self.classes[c].members.len() as u32;
            self.classes[c].members.push((dev, k));
        } else {
            let p = d.pos[ku] as usize;
            d.pos[ku] = NONE;
            let members = &mut self.classes[c].members;
            members.swap_remove(p);
            if let Some(&(md, mk)) = members.get(p) {
                self.devices[md as usize].pos[mk as usize] = p as u32;
            }
        }
        self.recompute_rate();
    }

    #[inline]
    fn fire(&mut self, dev: u32, k: u32) -> Result<()> {
        let outcome = if self.devices[dev as usize].dead[k as usize] {
            Outcome::Failed
        } else {
            self.fire_table(dev, k)?
        };
        self.books.fire(outcome);
        self.track_stall(dev, k, outcome);
        Ok(())
    }

    /// "Fire vector k" on the device's table, and route what it sends.
    #[inline]
    fn fire_table(&mut self, dev: u32, k: u32) -> Result<Outcome> {
        let fired = self.devices[dev as usize].table.fire(k as usize)?;
        Ok(match fired.outcome() {
            FireOutcome::Delivered => match fired.message() {
                Some(msg) => self.deliver(dev, k, msg),
                None => {
                    return Err(Error::Accounting(
                        "a delivered fire carried no message".into(),
                    ))
                }
            },
            FireOutcome::Pending => Outcome::Pending,
            FireOutcome::Coalesced => Outcome::Coalesced,
            FireOutcome::Lost => Outcome::Lost,
            FireOutcome::Intx => Outcome::Intx,
        })
    }

    /// Route a message through the IOMMU into a CPU queue.
    #[inline]
    fn deliver(&mut self, dev: u32, entry: u32, msg: MsiMessage) -> Outcome {
        let Some((cpu, vector)) = self.host.remap(dev, &msg) else {
            return Outcome::Blocked;
        };
        let Some(q) = self.queues.get_mut(cpu as usize) else {
            return Outcome::Blocked;
        };
        let t = self.now as u64;
        let h = &mut self.handlers[cpu as usize];
        let service = self.cfg.handler.service_ns;
        if let Some(s) = service {
            if h.queued > 0 {
                h.advance(q, t, s);
            }
            if h.serve_now(t, s) {
                // An idle handler with nothing queued takes it at once: the
                // push and the pop that would follow cancel out.
                return Outcome::Delivered;
            }
        }
        let item = Delivery {
            time_ns: t,
            device: dev,
            entry,
            cpu,
            vector,
        };
        if q.push(item).is_err() {
            self.stats.queue_overflows += 1;
            return Outcome::Coalesced;
        }
        h.queued += 1;
        h.observe_depth(h.queued);
        if let Some(s) = service {
            // An idle handler takes it from the queue at once.
            h.advance(q, t, s);
        }
        Outcome::Delivered
    }

    /// Open or close vector `k`'s stale-queue episode after a fire.
    #[inline]
    fn track_stall(&mut self, dev: u32, k: u32, outcome: Outcome) {
        // The common case (delivered, nothing stalled) stays on the hot path.
        if outcome == Outcome::Delivered && self.devices[dev as usize].stalled == 0 {
            return;
        }
        self.track_stall_slow(dev, k, outcome);
    }

    #[inline(never)]
    fn track_stall_slow(&mut self, dev: u32, k: u32, outcome: Outcome) {
        let d = &mut self.devices[dev as usize];
        let timeout = self.cfg.stall_timeout_ns as f64;
        let now = self.now;
        d.stall_slot(k as usize);
        let since = &mut d.stall_since[k as usize];
        match outcome {
            Outcome::Delivered => {
                if *since >= 0.0 {
                    let dur = now - *since;
                    if dur >= timeout {
                        self.stats.stall_timeouts += 1;
                    }
                    self.stats.stall_time_ns += dur.min(timeout) as u64;
                    *since = -1.0;
                    d.stalled -= 1;
                }
            }
            Outcome::Lost | Outcome::Intx | Outcome::Failed | Outcome::Blocked => {
                if *since >= 0.0 && now - *since >= timeout {
                    // The previous stall ended at its timeout; a new one starts.
                    self.stats.stall_timeouts += 1;
                    self.stats.stall_time_ns += timeout as u64;
                    *since = -1.0;
                    d.stalled -= 1;
                }
                if *since < 0.0 {
                    *since = now;
                    d.stalled += 1;
                    self.stats.stalls += 1;
                }
            }
            Outcome::Pending | Outcome::Coalesced => {}
        }
    }

    /// Route what a table change released (pending vectors sent late) and settle their books.
    #[inline]
    fn settle_released(&mut self, dev: u32, released: Vec<(usize, MsiMessage)>) -> Result<()> {
        // Most table changes release nothing: stay inline for those.
        if released.is_empty() {
            return Ok(());
        }
        self.settle_released_slow(dev, released)
    }

    #[inline(never)]
    fn settle_released_slow(&mut self, dev: u32, released: Vec<(usize, MsiMessage)>) -> Result<()> {
        for (k, msg) in released {
            let outcome = self.deliver(dev, k as u32, msg);
            self.books.settle_pending(outcome)?;
            self.track_stall(dev, k as u32, outcome);
        }
        Ok(())
    }

    /// Apply one host effect at `now` (ns) to device `dev`'s table and the run's state.
    fn apply(&mut self, dev: u32, fx: Fx, now: u64) -> Result<()> {
        let live_before: bool;
        match fx {
            Fx::Mask(k) => {
                let d = &mut self.devices[dev as usize];
                live_before = d.live.get(k as usize).copied().unwrap_or(false);
                let rel = d.table.mask(k as usize)?;
                if live_before {
                    *d.w1_slot(k as usize) = now;
                }
                self.settle_released(dev, rel)?;
            }
            Fx::Program(k, msg) => self.devices[dev as usize]
                .table
                .set_entry(k as usize, msg)?,
            Fx::Unmask(k) => {
                let d = &mut self.devices[dev as usize];
                let rel = d.table.unmask(k as usize)?;
                d.dead[k as usize] = false;
                let open = d
                    .w1_open
                    .get_mut(k as usize)
                    .map_or(u64::MAX, |w| std::mem::replace(w, u64::MAX));
                if open != u64::MAX {
                    self.stats.w1_time_ns += now - open;
                }
                self.settle_released(dev, rel)?;
            }
            Fx::Disable => {
                let d = &mut self.devices[dev as usize];
                let was_enabled = d.table.is_enabled();
                d.table.mask_all();
                for k in 0..d.live.len() {
                    if d.live[k] && d.w1_open.get(k).is_none_or(|&w| w == u64::MAX) {
                        *d.w1_slot(k) = now;
                    }
                }
                let rel = d.table.set_control(0);
                if was_enabled && d.guest_enabled {
                    d.w2_open = Some(now);
                }
                self.settle_released(dev, rel)?;
            }
            Fx::Enable { closes_resize } => {
                let d = &mut self.devices[dev as usize];
                d.table.mask_all();
                let rel = d.table.set_control(MSIX_CONTROL_ENABLE);
                if let Some(open) = d.w2_open.take() {
                    self.stats.w2_time_ns += now - open;
                }
                self.settle_released(dev, rel)?;
                if closes_resize {
                    self.stats.resizes += 1;
                }
            }
            Fx::Live(k, on) => {
                if !on {
                    if let Some(w) = self.devices[dev as usize].w1_open.get_mut(k as usize) {
                        *w = u64::MAX;
                    }
                }
                if !self.devices[dev as usize].halted || !on {
                    self.set_live(dev, k, on);
                }
            }
            Fx::Reset => {
                let d = &mut self.devices[dev as usize];
                let latched = (0..d.table.entries())
                    .filter(|&k| d.table.is_pending(k).unwrap_or(false))
                    .count();
                d.table.reset();
                d.w1_open.clear();
                d.w2_open = None;
                for _ in 0..latched {
                    self.books.settle_pending(Outcome::Lost)?;
                }
            }
            Fx::RequestDone => {
                self.stats.resize_requests += 1;
                if self
                    .cfg
                    .stop
                    .max_resizes
                    .is_some_and(|m| self.stats.resize_requests >= m)
                {
                    self.finished = true;
                }
            }
            Fx::Dead(k, on) => {
                if let Some(x) = self.devices[dev as usize].dead.get_mut(k as usize) {
                    if on && !*x {
                        self.stats.dead_marks += 1;
                    }
                    *x = on;
                }
            }
        }
        Ok(())
    }

    fn kill_vm(&mut self, vm: u32) -> Result<()> {
        self.stats.guest_kills += 1;
        let ids: Vec<u32> = (0..self.devices.len() as u32)
            .filter(|&i| self.devices[i as usize].vm == vm)
            .collect();
        for i in ids {
            if self.cfg.mode == Mode::Aggregated {
                self.book_device(i, self.now)?;
            }
            self.devices[i as usize].halted = true;
            for k in 0..self.devices[i as usize].live.len() as u32 {
                self.set_live(i, k, false);
            }
        }
        Ok(())
    }

    fn guest_step(&mut self, dev: u32) -> Result<()> {
        let di = dev as usize;
        if self.devices[di].halted {
            return Ok(());
        }
        let Some(step) = self.cfg.devices[di]
            .program
            .get(self.devices[di].pc)
            .cloned()
        else {
            return Ok(());
        };
        let now = self.now as u64;
        let entries = self.cfg.devices[di].entries;
        // The step's effects, in a buffer reused across steps.
        let mut fx = std::mem::take(&mut self.fx_buf);
        fx.clear();
        let timing = self.cfg.timing.clone();
        let mut ctx = Ctx {
            host: &mut self.host,
            dev,
            entries,
            clock: now,
            timing: &timing,
            fx: &mut fx,
        };
        let mut answer: Option<(Option<u32>, StepResult)> = None;
        let enable = matches!(step.action, Action::Enable);
        let mut request = false;
        match step.action {
            Action::Wait => {}
            Action::Negotiate { minvec, maxvec } => {
                match self.policy.negotiate(&mut ctx, minvec, maxvec)? {
                    Negotiated::Local(n) | Negotiated::Granted(n) => self.devices[di].granted = n,
                    Negotiated::Refused => {
                        self.stats.negotiations_refused += 1;
                        self.devices[di].granted = 0;
                    }
                }
            }
            Action::Enable => {
                self.devices[di].guest_enabled = true;
                answer = Some((None, self.policy.enable(&mut ctx)?));
            }
            Action::Unmask { entry } => {
                let d = &mut self.devices[di];
                if entry >= d.granted {
                    self.stats.unmasks_skipped += 1;
                } else {
                    // A new highest entry since enable: what QEMU resizes on
                    // under NORESIZE, whatever the policy does with it.
                    if d.high.is_none_or(|h| entry > h) {
                        d.high = Some(entry);
                        request = true;
                    }
                    answer = Some((Some(entry), self.policy.unmask(&mut ctx, entry)?));
                }
            }
            Action::Mask { entry } => {
                ctx.fx.push((now, Fx::Live(entry, false)));
                answer = Some((None, self.policy.mask(&mut ctx, entry)?));
            }
            Action::Disable | Action::Reset => {
                self.devices[di].guest_enabled = false;
                for k in 0..entries {
                    ctx.fx.push((now, Fx::Live(k, false)));
                }
                if step.action == Action::Reset {
                    ctx.fx.push((now, Fx::Reset));
                }
                answer = Some((None, self.policy.disable(&mut ctx)?));
                self.devices[di].granted = entries;
                self.devices[di].high = None;
            }
        }
        let done = ctx.clock.max(now);
        if let Some((entry, r)) = answer {
            if self.step_result(dev, entry, enable, r, done, &mut fx) {
                self.fx_buf = fx;
                let vm = self.devices[di].vm;
                return self.kill_vm(vm);
            }
        }
        if request {
            fx.push((done, Fx::RequestDone));
        }
        // Host effects, then the step's completion effects, in time order
        // (the sort is stable, so same-time effects keep their order).
        if !fx.is_sorted_by_key(|(t, _)| *t) {
            fx.sort_by_key(|(t, _)| *t);
        }
        let mut i = 0;
        while i < fx.len() {
            let t = fx[i].0;
            let slot = self.free_batches.pop().unwrap_or_else(|| {
                self.batches.push(Vec::new());
                (self.batches.len() - 1) as u32
            });
            let batch = &mut self.batches[slot as usize];
            while i < fx.len() && fx[i].0 == t {
                batch.push(fx[i].1);
                i += 1;
            }
            self.schedule(t.max(now), dev, What::Effects(slot));
        }
        self.fx_buf = fx;
        let d = &mut self.devices[di];
        let program = &self.cfg.devices[di].program;
        d.pc += 1;
        if d.pc >= program.len() {
            if !self.cfg.devices[di].repeat {
                return Ok(());
            }
            d.pc = 0;
        }
        let delay = program[d.pc].delay_ns;
        self.schedule(done.saturating_add(delay), dev, What::Step);
        Ok(())
    }

    /// Turn a policy's answer into completion-time effects at `done`.
    /// Returns true when the guest must be killed.
    fn step_result(
        &mut self,
        dev: u32,
        entry: Option<u32>,
        enable: bool,
        r: StepResult,
        done: u64,
        fx: &mut Vec<(u64, Fx)>,
    ) -> bool {
        let d = &self.devices[dev as usize];
        let dead: Vec<u32> = match r {
            StepResult::Kill => return true,
            StepResult::Refused => {
                if entry.is_some() {
                    self.stats.unmasks_refused += 1;
                } else if enable {
                    // pci_alloc_irq_vectors failed: no vector will be used.
                    self.stats.enables_refused += 1;
                    self.devices[dev as usize].granted = 0;
                }
                return false;
            }
            StepResult::Ok => Vec::new(),
            StepResult::Dead(list) => list,
            StepResult::DeadAll => (0..d.live.len() as u32)
                .filter(|&j| d.live[j as usize] || Some(j) == entry)
                .collect(),
        };
        fx.extend(dead.into_iter().map(|j| (done, Fx::Dead(j, true))));
        if let Some(k) = entry {
            fx.push((done, Fx::Live(k, true)));
        }
        false
    }

    /// Close the books: settle open stalls, check conservation, collect stats.
    pub fn result(&mut self) -> Result<RunResult> {
        let end = self.now;
        let timeout = self.cfg.stall_timeout_ns as f64;
        let mut stats = self.stats.clone();
        for d in &self.devices {
            for &s in &d.stall_since {
                if s >= 0.0 {
                    let dur = end - s;
                    if dur >= timeout {
                        stats.stall_timeouts += 1;
                        stats.stall_time_ns += timeout as u64;
                    } else {
                        stats.stalls_open += 1;
                        stats.stall_time_ns += dur as u64;
                    }
                }
            }
        }
        stats.end_time_ns = end as u64;
        stats.alloc_failures = self.host.alloc_failures;
        stats.remap_faults = self.host.faults();
        stats.final_usage = self.host.usage().into();
        stats.peak_usage = self.host.peak().into();
        for h in &self.handlers {
            stats.handled += h.handled;
            stats.max_queue_depth = stats.max_queue_depth.max(h.max_depth as u64);
            stats.queue_wait_ns += h.wait_ns;
            stats.max_queue_wait_ns = stats.max_queue_wait_ns.max(h.max_wait_ns);
        }
        self.books.check()?;
        Ok(RunResult {
            books: self.books,
            stats,
        })
    }
}

impl RunResult {
    /// The result as a JSON object: `{"books": {"fired", "outcomes": {name:
    /// count, …}}, "stats": {…}}`. Keys sort, so equal runs give equal bytes.
    pub fn to_json(&self) -> Result<String> {
        let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
            .iter()
            .map(|o| {
                (
                    o.name().to_string(),
                    serde_json::Value::from(self.books.get(*o)),
                )
            })
            .collect();
        let value = serde_json::json!({
            "books": { "fired": self.books.fired, "outcomes": outcomes },
            "stats": self.stats,
        });
        serde_json::to_string(&value).map_err(|e| Error::InvalidArgument(format!("result: {e}")))
    }
}

/// Parse a JSON config, run it to its stop condition, return the JSON result.
pub fn run_json(config_json: &str) -> Result<String> {
    let cfg = SimConfig::from_json(config_json)?;
    Engine::new(cfg)?.run()?.to_json()
}

impl RunStats {
    /// Fold another replication's stats in: counts and times add up, maxima
    /// and peaks take the larger value, final usage adds up (independent hosts).
    pub fn merge(&mut self, o: &RunStats) {
        self.end_time_ns += o.end_time_ns;
        self.resizes += o.resizes;
        self.resize_requests += o.resize_requests;
        self.w2_time_ns += o.w2_time_ns;
        self.w1_time_ns += o.w1_time_ns;
        self.guest_kills += o.guest_kills;
        self.negotiations_refused += o.negotiations_refused;
        self.unmasks_refused += o.unmasks_refused;
        self.enables_refused += o.enables_refused;
        self.unmasks_skipped += o.unmasks_skipped;
        self.dead_marks += o.dead_marks;
        self.alloc_failures += o.alloc_failures;
        self.remap_faults += o.remap_faults;
        self.stalls += o.stalls;
        self.stall_time_ns += o.stall_time_ns;
        self.stall_timeouts += o.stall_timeouts;
        self.stalls_open += o.stalls_open;
        self.queue_overflows += o.queue_overflows;
        self.handled += o.handled;
        self.max_queue_depth = self.max_queue_depth.max(o.max_queue_depth);
        self.queue_wait_ns += o.queue_wait_ns;
        self.max_queue_wait_ns = self.max_queue_wait_ns.max(o.max_queue_wait_ns);
        self.final_usage.cpu_vectors += o.final_usage.cpu_vectors;
        self.final_usage.irtes += o.final_usage.irtes;
        self.final_usage.irq_descs += o.final_usage.irq_descs;
        self.peak_usage.cpu_vectors = self.peak_usage.cpu_vectors.max(o.peak_usage.cpu_vectors);
        self.peak_usage.irtes = self.peak_usage.irtes.max(o.peak_usage.irtes);
        self.peak_usage.irq_descs = self.peak_usage.irq_descs.max(o.peak_usage.irq_descs);
        self.control_events += o.control_events;
    }
}

/// Independent replications of one config, one per seed, run on `threads`
/// worker threads (0 = all cores). Results come back in seed order and merge
/// in that order, so the merged result does not depend on the thread count.
pub fn run_replications(cfg: &SimConfig, seeds: &[u64], threads: usize) -> Result<Vec<RunResult>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    cfg.validate()?;
    if seeds.is_empty() {
        return Err(Error::InvalidArgument(
            "seeds: give at least one seed".into(),
        ));
    }
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    } else {
        threads
    }
    .min(seeds.len());
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<Result<RunResult>>>> = Mutex::new(vec![None; seeds.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let mut c = cfg.clone();
                c.seed = seed;
                let r = Engine::new(c).and_then(|mut e| e.run());
                if let Ok(mut s) = slots.lock() {
                    s[i] = Some(r);
                }
            });
        }
    });
    let slots = slots
        .into_inner()
        .map_err(|_| Error::Accounting("a replication thread panicked".into()))?;
    slots
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Accounting("a replication did not run".into()))))
        .collect()
}

/// Merge replications (in the given order) into one result.
pub fn merge_results(results: &[RunResult]) -> Result<RunResult> {
    let mut merged = RunResult {
        books: Books::default(),
        stats: RunStats::default(),
    };
    for r in results {
        merged.books.merge(&r.books);
        merged.stats.merge(&r.stats);
    }
    merged.books.check()?;
    Ok(merged)
}

/// JSON form of replications: the merged result plus each seed's books.
pub fn replications_json(seeds: &[u64], results: &[RunResult]) -> Result<String> {
    let merged = merge_results(results)?;
    let per: Vec<serde_json::Value> = seeds
        .iter()
        .zip(results)
        .map(|(seed, r)| {
            let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
                .iter()
                .map(|o| {
                    (
                        o.name().to_string(),
                        serde_json::Value::from(r.books.get(*o)),
                    )
                })
                .collect();
            serde_json::json!({
                "seed": seed,
                "fired": r.books.fired,
                "outcomes": outcomes,
                "resizes": r.stats.resizes,
                "resize_requests": r.stats.resize_requests,
            })
        })
        .collect();
    let mut v: serde_json::Value = serde_json::from_str(&merged.to_json()?)
        .map_err(|e| Error::InvalidArgument(format!("result: {e}")))?;
    v["replications"] = serde_json::Value::Array(per);
    serde_json::to_string(&v).map_err(|e| Error::InvalidArgument(format!("result: {e}")))
}
