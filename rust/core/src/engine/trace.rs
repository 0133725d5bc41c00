//! The run's timeline for a trace viewer: windows, resize requests,
//! hypercalls, stale queues, lost/INTx/blocked interrupts and host resource
//! counters, each at the simulated time it happened. Off unless asked for
//! ([`Engine::enable_trace`]); bounded by a time window and a cap on events,
//! with what either left out counted. [`super::trace_format`] lays the
//! records out as Trace Event Format JSON.

use super::Engine;
use crate::books::Outcome;
use crate::config::Mode;
use crate::error::{Error, Result};
use crate::host::Usage;

/// Events a trace keeps by default: about 50 MB of JSON.
pub const DEFAULT_TRACE_EVENTS: u64 = 500_000;
/// Most events one trace keeps: ten million events are about a gigabyte once
/// written as JSON, and a cap past that would only let a trace exhaust memory.
pub const MAX_TRACE_EVENTS: u64 = 10_000_000;

/// What a trace records: the events of a time window, at most `max_events`
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// Start of the window, ns of simulated time.
    pub from_ns: u64,
    /// End of the window, ns (`u64::MAX`: the end of the run).
    pub to_ns: u64,
    /// Events kept at most (slices, instants and counter samples); later
    /// ones are dropped and counted.
    pub max_events: u64,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            from_ns: 0,
            to_ns: u64::MAX,
            max_events: DEFAULT_TRACE_EVENTS,
        }
    }
}

/// What a trace holds and what it left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceSummary {
    /// Events written (slices, instants, counter samples; no metadata).
    pub events: u64,
    /// Events inside the window the cap dropped.
    pub dropped: u64,
    /// When the first of them happened (ns): the trace is complete before.
    pub first_dropped_ns: Option<u64>,
    /// Events outside the window, not recorded.
    pub outside_window: u64,
}

/// A span of time on a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum SpanKind {
    /// A guest unmask of a new highest entry, from its trap to its completion.
    Request,
    /// An MSIX_ENABLE / MSIX_DISABLE hypercall round trip.
    Hypercall,
    /// The device-wide window W2: MSI-X Enable clear.
    W2,
    /// A live vector's entry masked by the host (W1).
    W1,
    /// A stale-queue episode (open loop) or a stuck request (closed loop).
    Stale,
}

/// A point in time on a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MarkKind {
    /// An interrupt booked `lost`.
    Lost,
    /// An interrupt booked `intx`.
    Intx,
    /// An interrupt booked `blocked` (a remapping fault).
    Blocked,
    /// A delivery that found its CPU queue full (booked `coalesced`).
    QueueFull,
}

/// A recorded span; `entry` is the vector for per-vector kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span {
    pub kind: SpanKind,
    pub dev: u32,
    pub entry: u32,
    /// ns.
    pub start: f64,
    /// ns.
    pub end: f64,
    /// Still open when the trace was written: drawn to that time.
    pub open: bool,
}

/// A recorded instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Mark {
    pub kind: MarkKind,
    pub dev: u32,
    pub entry: u32,
    /// The CPU of a [`MarkKind::QueueFull`] (0 for the others).
    pub cpu: u32,
    /// ns.
    pub t: f64,
}

/// A counter sample: host-wide usage, or one CPU's device vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Sample {
    Usage { t: f64, usage: Usage },
    Cpu { t: f64, cpu: u32, vectors: u32 },
}

impl Sample {
    pub fn t(&self) -> f64 {
        match self {
            Sample::Usage { t, .. } | Sample::Cpu { t, .. } => *t,
        }
    }
}

/// The recorder.
#[derive(Debug)]
pub(crate) struct Trace {
    pub(super) opts: TraceOptions,
    pub(super) spans: Vec<Span>,
    pub(super) marks: Vec<Mark>,
    pub(super) samples: Vec<Sample>,
    /// Each device's requests in flight: trap time and entry, oldest first.
    requests: Vec<Vec<(f64, u32)>>,
    /// The last value of each counter (none before the first sample), so
    /// unchanged values are not sampled again.
    usage: Option<Usage>,
    cpu_vectors: Vec<Option<u32>>,
    /// Vectors each CPU held at boot (legacy IRQs), not device vectors.
    boot_vectors: Vec<u32>,
    /// Counter values set before the window opened: drawn at its start.
    usage_before: Option<Usage>,
    cpu_before: Vec<Option<u32>>,
    pub(super) kept: u64,
    pub(super) dropped: u64,
    pub(super) first_dropped: Option<f64>,
    pub(super) outside: u64,
}

impl Trace {
    fn new(opts: TraceOptions, devices: usize, boot_vectors: Vec<u32>) -> Self {
        let ncpus = boot_vectors.len();
        Self {
            opts,
            spans: Vec::new(),
            marks: Vec::new(),
            samples: Vec::new(),
            requests: vec![Vec::new(); devices],
            usage: None,
            cpu_vectors: vec![None; ncpus],
            boot_vectors,
            usage_before: None,
            cpu_before: vec![None; ncpus],
            kept: 0,
            dropped: 0,
            first_dropped: None,
            outside: 0,
        }
    }

    fn from(&self) -> f64 {
        self.opts.from_ns as f64
    }

    fn to(&self) -> f64 {
        if self.opts.to_ns == u64::MAX {
            f64::INFINITY
        } else {
            self.opts.to_ns as f64
        }
    }

    /// Whether `[start, end]` meets the window; counted as outside if not.
    fn in_window(&mut self, start: f64, end: f64) -> bool {
        let inside = end >= self.from() && start <= self.to();
        if !inside {
            self.outside += 1;
        }
        inside
    }

    /// Take one event recorded at `t` under the cap, or count it dropped.
    fn admit(&mut self, t: f64) -> bool {
        if self.kept < self.opts.max_events {
            self.kept += 1;
            return true;
        }
        self.dropped += 1;
        self.first_dropped = Some(self.first_dropped.map_or(t, |f| f.min(t)));
        false
    }

    /// A span that closed at `end`.
    pub(super) fn span(&mut self, kind: SpanKind, dev: u32, entry: u32, start: f64, end: f64) {
        if self.in_window(start, end) && self.admit(end) {
            self.spans.push(Span {
                kind,
                dev,
                entry,
                start,
                end,
                open: false,
            });
        }
    }

    fn mark(&mut self, kind: MarkKind, dev: u32, entry: u32, cpu: u32, t: f64) {
        if self.in_window(t, t) && self.admit(t) {
            self.marks.push(Mark {
                kind,
                dev,
                entry,
                cpu,
                t,
            });
        }
    }

    /// An interrupt of `dev`'s entry `k` was booked `outcome` at `t`: the
    /// outcomes that mean the guest never got it are marked.
    pub(super) fn interrupt(&mut self, dev: u32, k: u32, outcome: Outcome, t: f64) {
        let kind = match outcome {
            Outcome::Lost => MarkKind::Lost,
            Outcome::Intx => MarkKind::Intx,
            Outcome::Blocked => MarkKind::Blocked,
            _ => return,
        };
        self.mark(kind, dev, k, 0, t);
    }

    /// A delivery from `dev`'s entry `k` found CPU `cpu`'s queue full.
    pub(super) fn queue_full(&mut self, dev: u32, k: u32, cpu: u32, t: f64) {
        self.mark(MarkKind::QueueFull, dev, k, cpu, t);
    }

    /// A hypercall of `dev` took `[start, end]` ns of host time.
    pub(crate) fn hypercall(&mut self, dev: u32, start: u64, end: u64) {
        self.span(SpanKind::Hypercall, dev, 0, start as f64, end as f64);
    }

    /// `dev`'s guest trapped at `t` on an unmask of entry `k` that will
    /// complete a resize request.
    pub(super) fn request(&mut self, dev: u32, k: u32, t: f64) {
        if let Some(q) = self.requests.get_mut(dev as usize) {
            q.push((t, k));
        }
    }

    /// `dev`'s oldest request in flight completed at `t`.
    pub(super) fn request_done(&mut self, dev: u32, t: f64) {
        let Some(q) = self.requests.get_mut(dev as usize) else {
            return;
        };
        if q.is_empty() {
            return;
        }
        let (start, k) = q.remove(0);
        self.span(SpanKind::Request, dev, k, start, t);
    }

    /// Sample a counter value set at `t`: kept when in the window, carried
    /// to the window's start when before it.
    fn sample(&mut self, t: f64, s: Sample) {
        if t < self.from() {
            // One event per counter, taken under the cap when first set.
            let slot = match s {
                Sample::Usage { usage, .. } => (self.usage_before.is_none(), Some(usage), None),
                Sample::Cpu { cpu, vectors, .. } => (
                    self.cpu_before[cpu as usize].is_none(),
                    None,
                    Some((cpu, vectors)),
                ),
            };
            if slot.0 && !self.admit(t) {
                return;
            }
            match slot {
                (_, Some(usage), _) => self.usage_before = Some(usage),
                (_, _, Some((cpu, vectors))) => self.cpu_before[cpu as usize] = Some(vectors),
                _ => {}
            }
        } else if self.in_window(t, t) && self.admit(t) {
            self.samples.push(s);
        }
    }

    /// The host's resources at `t`, and each CPU's allocated vectors (boot
    /// vectors included; `cpu_allocated` gives CPU `i`'s count): the values
    /// that changed are sampled.
    fn host_state(&mut self, t: f64, usage: Usage, cpu_allocated: impl Fn(u32) -> u32) {
        if self.usage != Some(usage) {
            self.usage = Some(usage);
            self.sample(t, Sample::Usage { t, usage });
        }
        for cpu in 0..self.cpu_vectors.len() as u32 {
            let vectors = cpu_allocated(cpu).saturating_sub(self.boot_vectors[cpu as usize]);
            if self.cpu_vectors[cpu as usize] != Some(vectors) {
                self.cpu_vectors[cpu as usize] = Some(vectors);
                self.sample(t, Sample::Cpu { t, cpu, vectors });
            }
        }
    }

    /// The counter values carried to the window's start.
    pub(super) fn carried(&self) -> impl Iterator<Item = Sample> + '_ {
        let t = self.from();
        let usage = self.usage_before.map(|usage| Sample::Usage { t, usage });
        let cpus = self
            .cpu_before
            .iter()
            .enumerate()
            .filter_map(move |(cpu, v)| {
                v.map(|vectors| Sample::Cpu {
                    t,
                    cpu: cpu as u32,
                    vectors,
                })
            });
        usage.into_iter().chain(cpus)
    }

    /// The requests still in flight, as open spans ending at `now`.
    fn open_requests(&self, now: f64) -> impl Iterator<Item = Span> + '_ {
        self.requests.iter().enumerate().flat_map(move |(dev, q)| {
            q.iter().map(move |&(start, entry)| Span {
                kind: SpanKind::Request,
                dev: dev as u32,
                entry,
                start,
                end: now,
                open: true,
            })
        })
    }
}

impl Engine {
    /// Record this run's timeline from now on (see `docs/trace.md`); read
    /// it with [`Engine::trace_json`]. Only before the run starts, and only
    /// in event mode: aggregated mode books counts, not single interrupts.
    pub fn enable_trace(&mut self, opts: TraceOptions) -> Result<()> {
        if self.cfg.mode == Mode::Aggregated {
            return Err(Error::InvalidArgument(
                "trace: aggregated mode books counts, not single interrupts; trace a run in \
                 event mode"
                    .into(),
            ));
        }
        if self.stats.control_events > 0 || self.now > 0.0 {
            return Err(Error::InvalidArgument(
                "trace: enable it before the run starts".into(),
            ));
        }
        if opts.from_ns > opts.to_ns {
            return Err(Error::InvalidArgument(format!(
                "trace: the window starts at {} ns, after its end at {} ns",
                opts.from_ns, opts.to_ns
            )));
        }
        if !(1..=MAX_TRACE_EVENTS).contains(&opts.max_events) {
            return Err(Error::InvalidArgument(format!(
                "trace: max_events must be 1..={MAX_TRACE_EVENTS}, got {}",
                opts.max_events
            )));
        }
        let matrix = self.host.domain().matrix();
        let boot = (0..self.cfg.host.ncpus)
            .map(|cpu| matrix.allocated(cpu))
            .collect::<Result<Vec<u32>>>()?;
        self.trace = Some(Box::new(Trace::new(opts, self.devices.len(), boot)));
        self.trace_host();
        Ok(())
    }

    /// Whether a trace is being recorded.
    pub fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// The trace so far as Trace Event Format JSON (what ui.perfetto.dev
    /// and chrome://tracing open); windows still open are drawn to now.
    pub fn trace_json(&self) -> Result<String> {
        let trace = self.trace.as_deref().ok_or_else(not_tracing)?;
        super::trace_format::trace_json(self, trace, &self.open_spans(trace)).map(|(json, _)| json)
    }

    /// How many events [`Engine::trace_json`] writes now and what it leaves out.
    pub fn trace_summary(&self) -> Result<TraceSummary> {
        let trace = self.trace.as_deref().ok_or_else(not_tracing)?;
        Ok(super::trace_format::summary(trace, &self.open_spans(trace)))
    }

    /// Sample the host's counters now (after a guest step changed them).
    #[inline]
    pub(super) fn trace_host(&mut self) {
        if self.trace.is_some() {
            self.trace_host_now();
        }
    }

    #[cold]
    #[inline(never)]
    fn trace_host_now(&mut self) {
        let Some(t) = self.trace.as_deref_mut() else {
            return;
        };
        let matrix = self.host.domain().matrix();
        t.host_state(self.now, self.host.usage(), |cpu| {
            matrix.allocated(cpu).unwrap_or(0)
        });
    }

    /// An interrupt of `dev`'s entry `k` was booked `outcome` now.
    #[inline]
    pub(super) fn trace_interrupt(&mut self, dev: u32, k: u32, outcome: Outcome) {
        if self.trace.is_some() {
            self.trace_interrupt_now(dev, k, outcome);
        }
    }

    #[cold]
    #[inline(never)]
    fn trace_interrupt_now(&mut self, dev: u32, k: u32, outcome: Outcome) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.interrupt(dev, k, outcome, self.now);
        }
    }

    /// A span of `dev` (entry `k`) closed now, having opened at `start` (ns).
    #[inline]
    pub(super) fn trace_span(&mut self, kind: SpanKind, dev: u32, k: u32, start: f64) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.span(kind, dev, k, start, self.now);
        }
    }

    /// The windows, stale queues and requests open now, as spans ending now
    /// (an open-loop stale episode past its timeout ended at the timeout).
    fn open_spans(&self, trace: &Trace) -> Vec<Span> {
        let now = self.now;
        let timeout = self.cfg.stall_timeout_ns as f64;
        let span = |kind, dev: usize, entry: usize, start: f64, end: f64, open| Span {
            kind,
            dev: dev as u32,
            entry: entry as u32,
            start,
            end,
            open,
        };
        let mut out: Vec<Span> = trace.open_requests(now).collect();
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(open) = d.w2_open {
                out.push(span(SpanKind::W2, i, 0, open as f64, now, true));
            }
            for (k, w) in d.w1_open.iter().enumerate() {
                if let Some(open) = w {
                    out.push(span(SpanKind::W1, i, k, *open as f64, now, true));
                }
            }
            for (k, s) in d.stall_starts().iter().enumerate() {
                if let Some(s) = s {
                    let ended = now - s >= timeout;
                    let end = if ended { s + timeout } else { now };
                    out.push(span(SpanKind::Stale, i, k, *s, end, !ended));
                }
            }
            for (k, l) in d.loops.iter().enumerate() {
                for &s in &l.stuck_since {
                    out.push(span(SpanKind::Stale, i, k, s, now, true));
                }
            }
        }
        out
    }
}

fn not_tracing() -> Error {
    Error::InvalidArgument("trace: this run is not being traced (enable_trace first)".into())
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
