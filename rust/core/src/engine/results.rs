//! What a run reports: the outcome books, the statistics, their JSON form,
//! and the one merge of independent replications.

use serde::Serialize;

use super::{Engine, PhaseBooks, SpoofReport};
use crate::books::{add_count, Books, Outcome};
use crate::config::{Phase, SimConfig};
use crate::error::{Error, Result};
use crate::host::Usage;

/// Everything a run reports besides the outcome books.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageStats {
    /// CPU vectors.
    pub cpu_vectors: u64,
    /// IRTEs.
    pub irtes: u64,
    /// irq descriptors.
    pub irq_descs: u64,
    /// KVM MSI routes of the VM with the most.
    pub kvm_routes: u64,
}

impl From<Usage> for UsageStats {
    fn from(u: Usage) -> Self {
        Self {
            cpu_vectors: u.cpu_vectors,
            irtes: u.irtes,
            irq_descs: u.irq_descs,
            kvm_routes: u.kvm_routes,
        }
    }
}

/// A finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The outcome books over the whole run (conservation checked).
    pub books: Books,
    /// The books and resize requests by phase (they sum to the totals).
    pub phases: PhaseBooks,
    /// Everything else.
    pub stats: RunStats,
    /// What forged writes came to, when a device forges (docs/spoof.md).
    pub spoof: Option<SpoofReport>,
}

impl UsageStats {
    fn max(self, o: UsageStats) -> UsageStats {
        UsageStats {
            cpu_vectors: self.cpu_vectors.max(o.cpu_vectors),
            irtes: self.irtes.max(o.irtes),
            irq_descs: self.irq_descs.max(o.irq_descs),
            kvm_routes: self.kvm_routes.max(o.kvm_routes),
        }
    }
}

impl RunResult {
    /// The result as a JSON object: `{"books": {"fired", "outcomes": {name:
    /// count, …}}, "stats": {…}}`. Keys sort, so equal runs give equal bytes.
    pub fn to_json(&self) -> Result<String> {
        let books = |b: &Books| {
            let outcomes: serde_json::Map<String, serde_json::Value> = Outcome::ALL
                .iter()
                .map(|o| (o.name().to_string(), serde_json::Value::from(b.get(*o))))
                .collect();
            serde_json::json!({ "fired": b.fired, "outcomes": outcomes })
        };
        let phases: serde_json::Map<String, serde_json::Value> = Phase::ALL
            .iter()
            .map(|&p| {
                let mut v = books(&self.phases.books(p));
                v["resizes"] = serde_json::Value::from(self.phases.requests(p));
                (p.name().to_string(), v)
            })
            .collect();
        let mut value = serde_json::json!({
            "books": books(&self.books),
            "phases": phases,
            "stats": self.stats,
        });
        if let Some(s) = &self.spoof {
            // Only when a device forges: other results keep their bytes.
            value["spoof"] = serde_json::to_value(s)
                .map_err(|e| Error::InvalidArgument(format!("result: {e}")))?;
        }
        serde_json::to_string(&value).map_err(|e| Error::InvalidArgument(format!("result: {e}")))
    }
}

impl RunResult {
    /// Parse the JSON form of [`RunResult::to_json`] (other keys, such as
    /// `replications`, are ignored); the books must balance.
    pub fn from_json(text: &str) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct BooksJson {
            fired: u64,
            outcomes: std::collections::BTreeMap<String, u64>,
            #[serde(default)]
            resizes: u64,
        }
        #[derive(serde::Deserialize)]
        struct ResultJson {
            books: BooksJson,
            phases: std::collections::BTreeMap<String, BooksJson>,
            stats: RunStats,
            #[serde(default)]
            spoof: Option<SpoofReport>,
        }
        let bad = |e: &dyn std::fmt::Display| Error::InvalidArgument(format!("result: {e}"));
        let parse = |b: &BooksJson| -> Result<Books> {
            let mut books = Books {
                fired: b.fired,
                ..Books::default()
            };
            for (name, n) in &b.outcomes {
                let o = Outcome::ALL
                    .into_iter()
                    .find(|o| o.name() == name)
                    .ok_or_else(|| bad(&format!("unknown outcome {name:?}")))?;
                books.outcomes[o as usize] = *n;
            }
            books.check()?;
            Ok(books)
        };
        let r: ResultJson = serde_json::from_str(text).map_err(|e| bad(&e))?;
        let mut by_phase = [Books::default(); 2];
        let mut requests = [0u64; 2];
        for p in Phase::ALL {
            let b = r
                .phases
                .get(p.name())
                .ok_or_else(|| bad(&format!("missing phase {:?}", p.name())))?;
            by_phase[p as usize] = parse(b)?;
            requests[p as usize] = b.resizes;
        }
        let phases = PhaseBooks::from_parts(by_phase, requests);
        let books = parse(&r.books)?;
        if phases.total()? != books {
            return Err(Error::Accounting(
                "result: the phases do not sum to the books".into(),
            ));
        }
        if let Some(sp) = &r.spoof {
            sp.check()?;
        }
        Ok(Self {
            books,
            phases,
            stats: r.stats,
            spoof: r.spoof,
        })
    }
}

impl RunStats {
    /// Fold another replication's stats in: counts and times add up; maxima,
    /// peaks and the final usage take the larger value (each replication is
    /// its own host, so the merged run's host is "the largest of them").
    /// `InvalidArgument`, and nothing changes, if a sum passes `u64::MAX`.
    pub fn merge(&mut self, o: &RunStats) -> Result<()> {
        let mut s = self.clone();
        s.end_time_ns = add_count(s.end_time_ns, o.end_time_ns)?;
        s.resizes = add_count(s.resizes, o.resizes)?;
        s.resize_requests = add_count(s.resize_requests, o.resize_requests)?;
        s.w2_time_ns = add_count(s.w2_time_ns, o.w2_time_ns)?;
        s.w1_time_ns = add_count(s.w1_time_ns, o.w1_time_ns)?;
        s.guest_kills = add_count(s.guest_kills, o.guest_kills)?;
        s.negotiations_refused = add_count(s.negotiations_refused, o.negotiations_refused)?;
        s.unmasks_refused = add_count(s.unmasks_refused, o.unmasks_refused)?;
        s.enables_refused = add_count(s.enables_refused, o.enables_refused)?;
        s.unmasks_skipped = add_count(s.unmasks_skipped, o.unmasks_skipped)?;
        s.dead_marks = add_count(s.dead_marks, o.dead_marks)?;
        s.alloc_failures = add_count(s.alloc_failures, o.alloc_failures)?;
        s.remap_faults = add_count(s.remap_faults, o.remap_faults)?;
        s.stalls = add_count(s.stalls, o.stalls)?;
        s.stall_time_ns = add_count(s.stall_time_ns, o.stall_time_ns)?;
        s.stall_timeouts = add_count(s.stall_timeouts, o.stall_timeouts)?;
        s.stalls_open = add_count(s.stalls_open, o.stalls_open)?;
        s.queue_overflows = add_count(s.queue_overflows, o.queue_overflows)?;
        s.handled = add_count(s.handled, o.handled)?;
        s.max_queue_depth = s.max_queue_depth.max(o.max_queue_depth);
        s.queue_wait_ns = add_count(s.queue_wait_ns, o.queue_wait_ns)?;
        s.max_queue_wait_ns = s.max_queue_wait_ns.max(o.max_queue_wait_ns);
        s.final_usage = s.final_usage.max(o.final_usage);
        s.peak_usage = s.peak_usage.max(o.peak_usage);
        s.control_events = add_count(s.control_events, o.control_events)?;
        *self = s;
        Ok(())
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
                // Validated once above: only the seed differs.
                let r = Engine::build(c, None).and_then(|mut e| e.run());
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
        phases: PhaseBooks::default(),
        stats: RunStats::default(),
        spoof: None,
    };
    for r in results {
        merged.books.merge(&r.books)?;
        merged.phases.merge(&r.phases)?;
        merged.stats.merge(&r.stats)?;
        match (&mut merged.spoof, &r.spoof) {
            (Some(m), Some(s)) => m.merge(s)?,
            (m @ None, Some(s)) => *m = Some(s.clone()),
            (_, None) => {}
        }
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

impl Engine {
    /// Close the books: settle open stalls, check conservation, collect stats.
    pub fn result(&mut self) -> Result<RunResult> {
        // A run that failed mid-step has no valid result.
        self.check_not_failed()?;
        let end = self.now;
        let mut stats = self.stats.clone();
        self.settle_stalls(end, &mut stats);
        self.settle_loops(end, &mut stats);
        stats.end_time_ns = self.stopped_at.unwrap_or(end as u64);
        stats.alloc_failures = self.host.alloc_failures();
        stats.remap_faults = self.host.faults();
        stats.final_usage = self.host.usage().into();
        stats.peak_usage = self.host.peak().into();
        for h in self.cpus.iter().map(super::host_cpu::HostCpu::handler) {
            stats.handled += h.handled;
            stats.max_queue_depth = stats.max_queue_depth.max(h.max_depth as u64);
            stats.queue_wait_ns += h.wait_ns;
            stats.max_queue_wait_ns = stats.max_queue_wait_ns.max(h.max_wait_ns);
        }
        self.books.check()?;
        let books = self.books.total()?;
        if self.books.total_requests() != stats.resize_requests {
            return Err(Error::Accounting(
                "resize requests by phase do not sum to the total".into(),
            ));
        }
        let spoof = match self.spoof.as_deref() {
            Some(s) => {
                let mut s = s.clone();
                s.fault_log = self.host.fault_log_stats();
                s.check()?;
                Some(s)
            }
            None => None,
        };
        Ok(RunResult {
            books,
            phases: self.books,
            stats,
            spoof,
        })
    }
}
