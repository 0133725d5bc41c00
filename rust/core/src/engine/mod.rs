//! The discrete-event engine: simulated time in nanoseconds, seeded and
//! deterministic. Guest driver programs and host operations are timed
//! control events; interrupts are Poisson sources on live vectors, merged
//! into one stream so each fire costs O(1): an exponential draw, a pick, the
//! device's `VectorTable`, the IOMMU and a CPU queue.
//!
//! The rooms: this file holds the engine and its event loop; [`sources`] the
//! interrupt sources, `fire` the per-event path, [`aggregated`] the sampled
//! one, `guest` the guest program interpreter, `apply` the effects of events
//! on devices, `stalls` the stale-queue episodes, [`results`] what a run
//! reports and the merge of replications, `trace` the optional timeline
//! recorder and `trace_format` its Trace Event Format JSON.

mod aggregated;
mod apply;
mod closed_loop;
mod control_queue;
mod device;
mod device_list;
mod entry_set;
mod event;
mod fire;
mod guest;
mod host_cpu;
mod hot_route;
mod interrupt;
mod phases;
mod qemu_pba;
mod results;
mod roster;
mod sources;
mod spoof;
mod spoof_books;
mod stalls;
mod trace;
mod trace_format;

pub use phases::PhaseBooks;
pub use results::{
    merge_results, replications_json, run_replications, RunResult, RunStats, UsageStats,
};
pub use spoof::OUTSIDE_WINDOW_ADDRESS;
pub use spoof_books::{KindBooks, SpoofReport};
pub(crate) use trace::Trace;
pub use trace::{TraceOptions, TraceSummary, DEFAULT_TRACE_EVENTS, MAX_TRACE_EVENTS};

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::books::Books;
use crate::config::{Mode, SimConfig};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::policy::{builtin, HostOps, Policy};
use crate::queue::Delivery;
use control_queue::ControlQueue;
use device::Device;
use device_list::DeviceList;
use event::{Event, Scheduled, What};
use sources::Sources;

/// One simulation run: build it from a config, then [`Engine::run`].
pub struct Engine {
    cfg: SimConfig,
    host: Host,
    policy: Box<dyn Policy>,
    devices: DeviceList,
    sources: Sources,
    /// Closed-loop completions and timeouts, in time order.
    loops: closed_loop::ClosedLoops,
    rng: Xoshiro256PlusPlus,
    now: f64,
    heap: ControlQueue,
    seq: u64,
    /// Event batches waiting in the heap, by slot; freed slots are reused.
    /// Each holds one step's events in time order, its runs of one time
    /// scheduled each at its time (see [`event::Run`]).
    batches: Vec<Vec<(u64, Event)>>,
    free_batches: Vec<u32>,
    /// The policy's answer to a guest action (kept to reuse the allocations).
    ops: HostOps,
    /// Aggregated mode: the vectors booked one by one (kept to reuse the
    /// allocation).
    slow: Vec<(u32, f64)>,
    /// The time limit the run stopped at, exactly: simulated time is a float
    /// inside the engine (2^53 ns and up are not all representable), and the
    /// end is reported as the integer the config gave.
    stopped_at: Option<u64>,
    /// What may stop a run from outside (a cancel flag, a signal poll).
    interrupt: interrupt::Interrupt,
    /// The first error a step or an action returned mid-run: the state past
    /// it matches no valid run, so every later step is refused, naming it.
    failure: Option<String>,
    /// Per-event mode: the merged stream's next fire, drawn before a
    /// `step_until` stopped short of the next control event.
    pending_fire: Option<f64>,
    /// Aggregated mode: the last Poisson distribution drawn from, by its
    /// mean's bits.
    last_poisson: Option<(u64, rand_distr::Poisson<f64>)>,
    /// The host CPUs: their delivery queues and handlers (per-event mode).
    cpus: Vec<host_cpu::HostCpu>,
    books: PhaseBooks,
    stats: RunStats,
    finished: bool,
    /// The timeline recorder, when asked for (`enable_trace`).
    trace: Option<Box<Trace>>,
    /// Each device's forged-write source, if it forges (by device).
    forgers: Vec<Option<spoof::Forger>>,
    /// What the forged writes came to; `None` when no device forges.
    spoof: Option<Box<SpoofReport>>,
}

impl Engine {
    /// Validate `cfg` and build a run with the built-in policy it names.
    pub fn new(cfg: SimConfig) -> Result<Self> {
        cfg.validate()?;
        Self::build(cfg, None)
    }

    /// Validate `cfg` and build a run with a custom policy.
    pub fn with_policy(cfg: SimConfig, policy: Box<dyn Policy>) -> Result<Self> {
        cfg.validate()?;
        Self::build(cfg, Some(policy))
    }

    /// Build a run from a validated config.
    fn build(cfg: SimConfig, policy: Option<Box<dyn Policy>>) -> Result<Self> {
        crate::config::reserve_check(&cfg.memory_estimate())?;
        let entries: Vec<u32> = cfg.devices.iter().map(|d| d.entries).collect();
        let policy = match policy {
            Some(p) => p,
            None => builtin(&cfg.policy, &entries, cfg.platform())?,
        };
        let vms: Vec<u32> = cfg.devices.iter().map(|d| d.vm).collect();
        let host = Host::new(&cfg.host, cfg.platform(), &vms)?;
        let mut sources = Sources::default();
        let mut devices = Vec::with_capacity(cfg.devices.len());
        for d in &cfg.devices {
            let closed_from = d.closed_loop.as_ref().map(|c| c.from_entry);
            let class = (0..d.entries)
                .map(|k| {
                    // Closed-loop entries fire on completions, not as Poisson sources.
                    let rate = if closed_from.is_some_and(|f| k >= f) {
                        0.0
                    } else {
                        d.rates
                            .iter()
                            .rev()
                            .find(|(e, _)| *e == k)
                            .map_or(d.rate, |(_, r)| *r)
                    };
                    sources.class_of(rate).ok_or_else(|| {
                        Error::InvalidArgument("rates: too many distinct rates".into())
                    })
                })
                .collect::<Result<Vec<u16>>>()?;
            let probe_class = d
                .probe_rate
                .map(|r| {
                    sources.class_of(r).ok_or_else(|| {
                        Error::InvalidArgument("rates: too many distinct rates".into())
                    })
                })
                .transpose()?;
            devices.push(Device::new(d, class, probe_class)?);
        }
        let ncpus = cfg.host.ncpus as usize;
        let cpus =
            vec![host_cpu::HostCpu::new(cfg.handler.queue_capacity, cfg.handler.service_ns); ncpus];
        let mut e = Self {
            host,
            policy,
            devices: DeviceList::new(devices),
            sources,
            loops: closed_loop::ClosedLoops::default(),
            rng: Xoshiro256PlusPlus::seed_from_u64(cfg.seed),
            now: 0.0,
            heap: ControlQueue::default(),
            seq: 0,
            batches: Vec::new(),
            free_batches: Vec::new(),
            ops: HostOps::new(),
            slow: Vec::new(),
            stopped_at: None,
            interrupt: interrupt::Interrupt::default(),
            failure: None,
            pending_fire: None,
            last_poisson: None,
            cpus,
            books: PhaseBooks::default(),
            stats: RunStats::default(),
            finished: false,
            trace: None,
            forgers: vec![None; cfg.devices.len()],
            spoof: None,
            cfg,
        };
        for i in 0..e.cfg.devices.len() {
            let d = &e.cfg.devices[i];
            if let Some(first) = d.program.first() {
                let t = d.start_ns.saturating_add(first.delay_ns);
                e.schedule(t, i as u32, What::Step);
            }
        }
        e.start_forgers();
        Ok(e)
    }

    fn schedule(&mut self, t: u64, dev: u32, what: What) {
        self.seq += 1;
        self.heap.push(Scheduled {
            t,
            seq: self.seq,
            dev,
            what,
        });
    }

    /// The outcome books so far, over both phases.
    pub fn books(&self) -> Books {
        // The engine's own counts stay far below u64::MAX.
        self.books.total().unwrap_or_default()
    }

    /// The books so far, by phase.
    pub fn phase_books(&self) -> &PhaseBooks {
        &self.books
    }

    /// Run every fire through its device and the IOMMU, never by a route a
    /// vector learnt: the same results, slower. For the tests that check the
    /// learnt routes change nothing.
    #[doc(hidden)]
    pub fn forget_routes(&mut self) {
        self.sources.learning = false;
    }

    /// Send a Mask effect for every vector a host disable frees, also when
    /// it falls at the Disable's own time: the same results, slower. For the
    /// tests that check leaving those Masks to the Disable changes nothing.
    #[doc(hidden)]
    pub fn mask_each_freed(&mut self) {
        self.host.mask_each_freed = true;
    }

    /// Simulated time now, ns.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        whole_ns(self.now)
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

    /// The run's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Take every delivery waiting on host CPU `cpu`, oldest first.
    pub fn drain(&mut self, cpu: u32) -> Result<Vec<Delivery>> {
        self.cpus
            .get_mut(cpu as usize)
            .map(host_cpu::HostCpu::drain)
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
        self.check_not_failed()?;
        // A cancel made while no step ran stops this one at once, however
        // short it is (the loop below looks only every few hundred events).
        self.check_interrupt()?;
        let r = self.step_until_inner(t_ns);
        self.note_failure(&r);
        r
    }

    /// Refuse to go on after a failure, naming the first one.
    fn check_not_failed(&self) -> Result<()> {
        match &self.failure {
            Some(first) => Err(Error::invalid_op(
                "simulation_failed",
                format!("an earlier step failed: {first}; build a new simulation"),
            )),
            None => Ok(()),
        }
    }

    /// Remember the first error of a run (an interruption stops a run where
    /// its state is whole: it is not a failure).
    fn note_failure<T>(&mut self, r: &Result<T>) {
        if let (Err(e), None) = (r, &self.failure) {
            if !matches!(e, Error::Interrupted(_)) {
                self.failure = Some(e.to_string());
            }
        }
    }

    fn step_until_inner(&mut self, t_ns: u64) -> Result<bool> {
        let stop_at = self.cfg.stop.max_time_ns;
        let limit = t_ns.min(stop_at.unwrap_or(u64::MAX));
        if self.finished {
            return Ok(true);
        }
        let aggregated = self.cfg.mode == Mode::Aggregated;
        let mut events = 0u32;
        loop {
            events = events.wrapping_add(1);
            if events % interrupt::EVENTS_PER_POLL == 0 {
                self.check_interrupt()?;
            }
            let next_ctl = self.heap.next_time().unwrap_or(u64::MAX);
            let horizon = next_ctl.min(limit);
            if horizon == u64::MAX {
                // No control event left and no time limit: the resize count
                // cannot grow any more, so the run ends here (before any
                // fire: live sources would otherwise fire forever).
                self.finished = true;
                break;
            }
            if self.sources.total_rate > 0.0 && !aggregated {
                // Stopping at `limit` before the next control event: the
                // stream's next draw is kept for the next call.
                self.fire_until(horizon as f64, next_ctl > limit)?;
            }
            self.loops_until(horizon as f64)?;
            if next_ctl > limit {
                self.now = self.now.max(limit as f64);
                if Some(limit) == stop_at {
                    self.finished = true;
                    self.stopped_at = Some(limit);
                }
                break;
            }
            let Some(ev) = self.heap.pop() else {
                break;
            };
            if ev.what == What::Forge {
                // A forged write changes no table: no interval to book, and
                // it is no control event of the device.
                self.now = self.now.max(ev.t as f64);
                self.forge(ev.dev)?;
                continue;
            }
            if aggregated {
                self.book_device(ev.dev, ev.t as f64)?;
            }
            self.now = self.now.max(ev.t as f64);
            self.stats.control_events += 1;
            match ev.what {
                What::Step => {
                    self.guest_step(ev.dev)?;
                    // Only a guest step changes the host's resources.
                    self.trace_host();
                }
                What::Batch(slot) => self.apply_batch(ev.dev, slot)?,
                What::Forge => {}
            }
            if self.finished {
                break;
            }
        }
        // Aggregated mode books a device's interval at its control events and
        // at the end of the run only: booking at every stop of a stepped run
        // would split intervals, and so draw other counts than one run.
        if aggregated && self.finished {
            for dev in 0..self.devices.len() as u32 {
                self.book_device(dev, self.now)?;
            }
        }
        Ok(self.finished)
    }
}

/// `t as u64` (a time in ns, whole ns). Every time a run reaches is in
/// `[0, 2^63)`: there the truncation needs no clamp. Measured with
/// callgrind: the safe conversions keep their clamps (7 instructions) even
/// behind a range check; other times (and NaN) go out of line to the plain
/// conversion.
///
/// On x86-64 the processor's own truncation (`cvttsd2si`) says whether the
/// time is in range: it gives the whole part for any time in `(-1, 2^63)`
/// and `i64::MIN` for any other (and NaN), so one sign test replaces the
/// two range compares (3 instructions an event fewer).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn whole_ns(t: f64) -> u64 {
    use std::arch::x86_64::{_mm_cvttsd_si64, _mm_set_sd};
    // SAFETY: SSE2 is part of every x86-64 processor (the target's
    // baseline), which is all these two need.
    let whole = unsafe { _mm_cvttsd_si64(_mm_set_sd(t)) };
    if whole >= 0 {
        whole as u64
    } else {
        whole_ns_cold(t)
    }
}

/// `t as u64` (a time in ns, whole ns), as [`whole_ns`] on x86-64: in
/// `[0, 2^63)` the truncation needs no clamp.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn whole_ns(t: f64) -> u64 {
    // 2^63, exact in an f64.
    const SIGNED_END: f64 = 9_223_372_036_854_775_808.0;
    if (0.0..SIGNED_END).contains(&t) {
        // SAFETY: `t` is finite (NaN and the infinities fail the range),
        // and its whole part is in `[0, 2^63)`, which `i64` represents.
        unsafe { t.to_int_unchecked::<i64>() as u64 }
    } else {
        whole_ns_cold(t)
    }
}

/// [`whole_ns`] of a time outside `[0, 2^63)` ns, or NaN.
#[cold]
#[inline(never)]
fn whole_ns_cold(t: f64) -> u64 {
    t as u64
}

/// Parse a JSON config, run it to its stop condition, return the JSON result.
pub fn run_json(config_json: &str) -> Result<String> {
    let cfg = SimConfig::parse_json(config_json)?;
    Engine::new(cfg)?.run()?.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Action, DeviceConfig, PolicyKind, Step};
    use crate::storm::Storm;

    #[test]
    fn whole_ns_is_the_plain_conversion() {
        let edges = [
            0.0,
            -0.0,
            -1.5,
            -0.5,
            0.999,
            1.0,
            1e9 + 0.5,
            9_223_372_036_854_775_807.0,
            9_223_372_036_854_775_808.0,
            9_223_372_036_854_777_856.0,
            -9_223_372_036_854_775_808.0,
            -1e30,
            18_446_744_073_709_551_615.0,
            1e30,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::MIN_POSITIVE,
        ];
        for t in edges {
            assert_eq!(whole_ns(t), t as u64, "{t}");
        }
        // Every binade, around 2^63 especially.
        for e in 0..70 {
            let p = 2f64.powi(e);
            for t in [p, p.next_down(), p.next_up(), p * 1.3, -p] {
                assert_eq!(whole_ns(t), t as u64, "{t}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn whole_ns_is_the_plain_conversion_of_any_time(bits in proptest::prelude::any::<u64>(), t in 0.0..1e19f64) {
            let any = f64::from_bits(bits);
            proptest::prop_assert_eq!(whole_ns(any), any as u64);
            proptest::prop_assert_eq!(whole_ns(t), t as u64);
        }
    }

    fn small_storm(policy: PolicyKind, mode: Mode) -> SimConfig {
        let storm = Storm {
            devices: 2,
            table: 8,
            ..Storm::default()
        };
        storm
            .config(policy)
            .mode(mode)
            .seed(3)
            .max_resizes(64)
            .max_time_ns(10_000_000_000)
            .build()
            .unwrap()
    }

    #[test]
    fn a_run_balances_its_books_and_counts_resizes_once() {
        for mode in [Mode::Event, Mode::Aggregated] {
            let r = Engine::new(small_storm(PolicyKind::Noresize, mode))
                .unwrap()
                .run()
                .unwrap();
            assert!(r.books.fired > 0);
            assert_eq!(r.stats.resize_requests, 64, "{mode:?}");
            // Every request of a NORESIZE storm is a window closed by its
            // re-enable, counted once, when the enable takes effect.
            assert_eq!(r.stats.resizes, 64, "{mode:?}");
            let dynamic = Engine::new(small_storm(PolicyKind::Dynamic, mode))
                .unwrap()
                .run()
                .unwrap();
            assert_eq!(dynamic.stats.resizes, 0, "{mode:?}");
            assert_eq!(dynamic.books.get(crate::books::Outcome::Lost), 0);
        }
    }

    #[test]
    fn stepping_in_chunks_reaches_the_same_end() {
        let cfg = small_storm(PolicyKind::Noresize, Mode::Aggregated);
        let whole = Engine::new(cfg.clone()).unwrap().run().unwrap();
        let mut e = Engine::new(cfg).unwrap();
        let mut t = 0;
        while !e.step_until(t).unwrap() {
            t += 7_000_000;
        }
        let chunked = e.result().unwrap();
        assert_eq!(chunked.stats.resize_requests, whole.stats.resize_requests);
        assert!(chunked.books.fired > 0);
    }

    #[test]
    fn books_are_kept_by_phase_and_sum_to_the_totals() {
        use crate::books::Outcome;
        use crate::config::Phase;
        // Probe: entries 0 and 1 live at 1,000/s for 10 ms; runtime: the
        // same vectors at 50,000/s for 10 ms, with a resize in each phase.
        let program = vec![
            Step::now(Action::Enable),
            Step::now(Action::Unmask { entry: 0 }),
            Step::now(Action::Unmask { entry: 1 }),
            Step::after(
                10_000_000,
                Action::Phase {
                    phase: Phase::Runtime,
                },
            ),
            Step::now(Action::Unmask { entry: 2 }),
            Step::after(10_000_000, Action::Wait),
        ];
        let device = DeviceConfig::new(4)
            .rate(50_000.0)
            .probe_rate(1_000.0)
            .program(program);
        let cfg = SimConfig::builder()
            .device(device)
            .max_time_ns(30_000_000)
            .seed(5)
            .build()
            .unwrap();
        let r = Engine::new(cfg).unwrap().run().unwrap();
        let (probe, runtime) = (r.phases.books(Phase::Probe), r.phases.books(Phase::Runtime));
        assert_eq!(probe.fired + runtime.fired, r.books.fired);
        for o in Outcome::ALL {
            assert_eq!(probe.get(o) + runtime.get(o), r.books.get(o), "{o:?}");
        }
        // ≈ 2 × 1,000/s × 10 ms in probe, ≈ 3 × 50,000/s × 10 ms at runtime.
        assert!((5..=45).contains(&probe.fired), "{}", probe.fired);
        assert!(runtime.fired > 1_000, "{}", runtime.fired);
        assert_eq!(r.phases.requests(Phase::Probe), 2);
        assert_eq!(r.phases.requests(Phase::Runtime), 1);
        assert!(
            runtime.get(Outcome::Lost) > 0 && probe.get(Outcome::Lost) < runtime.get(Outcome::Lost)
        );
    }

    fn closed_loop_device() -> DeviceConfig {
        use crate::config::ClosedLoop;
        // Queue depth 1, 20 µs device latency: ~50,000 completions/s per queue,
        // each needing the previous one handled. Entries come up 100 µs apart.
        let mut program = vec![Step::now(Action::Enable)];
        program.extend((0..8).map(|k| Step::after(100_000, Action::Unmask { entry: k })));
        let mut d = DeviceConfig::new(8).program(program);
        d.closed_loop = Some(ClosedLoop {
            from_entry: 0,
            depth: 1,
            latency_ns: 20_000,
            timeout_ns: 2_000_000,
        });
        d
    }

    #[test]
    fn a_lost_completion_stalls_its_queue_until_the_driver_timeout() {
        let run = |policy| {
            let cfg = SimConfig::builder()
                .policy(policy)
                .device(closed_loop_device())
                .max_time_ns(20_000_000)
                .seed(2)
                .build()
                .unwrap();
            Engine::new(cfg).unwrap().run().unwrap()
        };
        let r = run(PolicyKind::Noresize);
        // Resizes lose completions: each stalls its queue (depth 1) for
        // exactly the 2 ms timeout, then the driver reissues it.
        assert!(r.stats.stalls > 0);
        assert_eq!(r.stats.stall_timeouts, r.stats.stalls - r.stats.stalls_open);
        assert!(r.stats.stall_time_ns >= r.stats.stall_timeouts * 2_000_000);
        assert!(r.books.get(crate::books::Outcome::Lost) > 0);
        // Throughput follows the loop: ≈ 8 queues × 50,000/s × 19 ms at most.
        assert!(r.books.fired < 8 * 50_000 * 20 / 1_000 + 2_000);
        let d = run(PolicyKind::Dynamic);
        assert_eq!(
            (d.stats.stalls, d.books.get(crate::books::Outcome::Lost)),
            (0, 0)
        );
        assert!(
            d.books.fired > r.books.fired,
            "the stalled queues did less work"
        );
    }

    #[test]
    fn the_end_time_is_the_time_limit_as_given() {
        // A limit a float cannot hold (2^53 + 3 ns rounds to 2^53 + 4): the
        // run reports it exactly, never past it.
        let limit = (1u64 << 53) + 3;
        let cfg = SimConfig::builder()
            .device(DeviceConfig::new(2).program(vec![Step::now(Action::Enable)]))
            .max_time_ns(limit)
            .build()
            .unwrap();
        let r = Engine::new(cfg).unwrap().run().unwrap();
        assert_eq!(r.stats.end_time_ns, limit);
    }

    #[test]
    fn host_time_past_u64_is_a_typed_error_not_a_wrapped_clock() {
        // Timings the validator accepts (each resize shorter than the run)
        // whose sum passes 2^64 ns: the run stops with InvalidArgument, it
        // does not wrap its clock (or panic in a debug build).
        let mut cfg = small_storm(PolicyKind::Noresize, Mode::Event);
        cfg.stop.max_time_ns = Some(u64::MAX - 1);
        cfg.timing.w0_ns = u64::MAX / 3;
        let err = Engine::new(cfg).unwrap().run().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument(m) if m.contains("simulated time overflows")),
            "{err}"
        );
    }

    #[test]
    fn a_device_without_a_time_bound_ends_when_its_program_does() {
        let program = vec![
            Step::now(Action::Enable),
            Step::after(1_000, Action::Unmask { entry: 0 }),
        ];
        let cfg = SimConfig::builder()
            .device(DeviceConfig::new(2).rate(1e6).program(program))
            .max_resizes(5)
            .build()
            .unwrap();
        let r = Engine::new(cfg).unwrap().run().unwrap();
        // One request completed; no control event is left, so the run ends
        // (the live source would otherwise fire forever).
        assert_eq!(r.stats.resize_requests, 1);
        assert_eq!(r.books.fired, 0);
    }
}
