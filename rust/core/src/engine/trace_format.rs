//! A recorded trace laid out in the Trace Event Format (the JSON that
//! ui.perfetto.dev and chrome://tracing open): one process for the host,
//! with a thread per CPU and the resource counters, and one process per
//! device, with a thread per track. Complete slices (`X`) on one thread must
//! not overlap without nesting, so spans that can overlap (a vector's stuck
//! requests) are spread over extra lanes, each its own thread. Thread ids are
//! unique across processes and never equal a pid: viewers key threads by tid
//! alone. Timestamps are microseconds, as the format says, whatever
//! `displayTimeUnit` (which only sets how they are shown).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;

use super::trace::{Mark, MarkKind, Sample, Span, SpanKind, Trace, TraceSummary};
use super::Engine;
use crate::error::{Error, Result};

/// The host's process id; device `i` is `DEVICE_PID + i`.
const HOST_PID: u32 = 1;
const DEVICE_PID: u32 = 2;

/// A thread of a device's process, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    Requests(u32),
    Hypercalls(u32),
    /// W2 windows and the lost, INTx and blocked interrupts.
    Msix(u32),
    W1 {
        entry: u32,
        lane: u32,
    },
    Stale {
        entry: u32,
        lane: u32,
    },
}

/// A thread: a host CPU, or a device's lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Thread {
    Cpu(u32),
    Device(u32, Lane),
}

impl Thread {
    fn pid(self) -> u32 {
        match self {
            Thread::Cpu(_) => HOST_PID,
            Thread::Device(dev, _) => DEVICE_PID + dev,
        }
    }

    fn name(self) -> String {
        let lane = |l: u32| {
            if l == 0 {
                String::new()
            } else {
                format!(" #{}", l + 1)
            }
        };
        match self {
            Thread::Cpu(c) => format!("cpu {c}"),
            Thread::Device(_, Lane::Requests(l)) => format!("resize requests{}", lane(l)),
            Thread::Device(_, Lane::Hypercalls(l)) => format!("hypercalls{}", lane(l)),
            Thread::Device(_, Lane::Msix(l)) => format!("MSI-X{}", lane(l)),
            Thread::Device(_, Lane::W1 { entry, lane: l }) => {
                format!("entry {entry} W1{}", lane(l))
            }
            Thread::Device(_, Lane::Stale { entry, lane: l }) => {
                format!("entry {entry} stale{}", lane(l))
            }
        }
    }
}

/// A span's thread with lane 0, its name and category.
fn placement(s: &Span) -> (Thread, &'static str, &'static str) {
    let (entry, dev) = (s.entry, s.dev);
    let lane = match s.kind {
        SpanKind::Request => Lane::Requests(0),
        SpanKind::Hypercall => Lane::Hypercalls(0),
        SpanKind::W2 => Lane::Msix(0),
        SpanKind::W1 => Lane::W1 { entry, lane: 0 },
        SpanKind::Stale => Lane::Stale { entry, lane: 0 },
    };
    let (name, cat) = match s.kind {
        SpanKind::Request => ("resize request", "request"),
        SpanKind::Hypercall => ("hypercall", "hypercall"),
        SpanKind::W2 => ("W2", "window"),
        SpanKind::W1 => ("W1", "window"),
        SpanKind::Stale => ("stale", "stale"),
    };
    (Thread::Device(dev, lane), name, cat)
}

/// The same thread on lane `l`.
fn on_lane(t: Thread, l: u32) -> Thread {
    match t {
        Thread::Device(d, Lane::Requests(_)) => Thread::Device(d, Lane::Requests(l)),
        Thread::Device(d, Lane::Hypercalls(_)) => Thread::Device(d, Lane::Hypercalls(l)),
        Thread::Device(d, Lane::Msix(_)) => Thread::Device(d, Lane::Msix(l)),
        Thread::Device(d, Lane::W1 { entry, .. }) => Thread::Device(d, Lane::W1 { entry, lane: l }),
        Thread::Device(d, Lane::Stale { entry, .. }) => {
            Thread::Device(d, Lane::Stale { entry, lane: l })
        }
        cpu @ Thread::Cpu(_) => cpu,
    }
}

#[derive(Serialize, Default)]
struct Args {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sort_index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_vectors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    irtes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    irq_descs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kvm_routes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vectors: Option<u32>,
}

/// One trace event.
#[derive(Serialize)]
struct Event {
    name: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    ph: &'static str,
    /// µs.
    ts: f64,
    /// µs, for complete slices.
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    /// Instant scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    args: Args,
}

fn us(ns: f64) -> f64 {
    ns / 1_000.0
}

fn metadata(name: &'static str, pid: u32, tid: Option<u32>, args: Args) -> Event {
    Event {
        name: Cow::Borrowed(name),
        cat: None,
        ph: "M",
        ts: 0.0,
        dur: None,
        pid,
        tid,
        s: None,
        args,
    }
}

/// The open spans the window and the cap admit, in time order, and the
/// numbers the summary adds for them: (outside the window, dropped, the
/// time of the first dropped).
fn admit_open(trace: &Trace, open: &[Span]) -> (Vec<Span>, u64, u64, Option<f64>) {
    let (from, to) = (
        trace.opts.from_ns as f64,
        if trace.opts.to_ns == u64::MAX {
            f64::INFINITY
        } else {
            trace.opts.to_ns as f64
        },
    );
    let mut inside: Vec<Span> = open
        .iter()
        .copied()
        .filter(|s| s.end >= from && s.start <= to)
        .collect();
    let outside = (open.len() - inside.len()) as u64;
    inside.sort_by(|a, b| a.start.total_cmp(&b.start));
    let room = trace.opts.max_events.saturating_sub(trace.kept) as usize;
    let dropped = inside.len().saturating_sub(room) as u64;
    // An open span is taken when the trace is written, after every recorded event.
    let first = inside.get(room).map(|s| s.end);
    inside.truncate(room);
    (inside, outside, dropped, first)
}

fn summarize(
    trace: &Trace,
    admitted: usize,
    outside: u64,
    dropped: u64,
    first: Option<f64>,
) -> TraceSummary {
    let first = match (trace.first_dropped, first) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    TraceSummary {
        events: trace.kept + admitted as u64,
        dropped: trace.dropped + dropped,
        first_dropped_ns: first.map(|t| t as u64),
        outside_window: trace.outside + outside,
    }
}

/// What [`trace_json`] would write now.
pub(super) fn summary(trace: &Trace, open: &[Span]) -> TraceSummary {
    let (admitted, outside, dropped, first) = admit_open(trace, open);
    summarize(trace, admitted.len(), outside, dropped, first)
}

/// Put each span on a lane of its track where it overlaps no other span:
/// the first lane free at its start.
fn lanes(spans: &[&Span]) -> Vec<Thread> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by(|&a, &b| spans[a].start.total_cmp(&spans[b].start));
    let mut free_at: BTreeMap<Thread, Vec<f64>> = BTreeMap::new();
    let mut out = vec![Thread::Cpu(0); spans.len()];
    for i in order {
        let s = spans[i];
        let (base, _, _) = placement(s);
        let ends = free_at.entry(base).or_default();
        let lane = ends.iter().position(|&e| e <= s.start).unwrap_or_else(|| {
            ends.push(f64::NEG_INFINITY);
            ends.len() - 1
        });
        ends[lane] = s.end;
        out[i] = on_lane(base, lane as u32);
    }
    out
}

fn mark_event(m: &Mark, tid: u32) -> Event {
    let (name, pid, args) = match m.kind {
        MarkKind::Lost => ("lost", DEVICE_PID + m.dev, Args::default()),
        MarkKind::Intx => ("intx", DEVICE_PID + m.dev, Args::default()),
        MarkKind::Blocked => ("blocked", DEVICE_PID + m.dev, Args::default()),
        MarkKind::QueueFull => (
            "queue full",
            HOST_PID,
            Args {
                device: Some(m.dev),
                ..Args::default()
            },
        ),
    };
    Event {
        name: Cow::Borrowed(name),
        cat: Some("interrupt"),
        ph: "i",
        ts: us(m.t),
        dur: None,
        pid,
        tid: Some(tid),
        s: Some("t"),
        args: Args {
            // A forged write comes from no table entry.
            entry: (m.entry != super::spoof::FORGED_ENTRY).then_some(m.entry),
            ..args
        },
    }
}

fn counter_event(s: &Sample) -> Event {
    let (name, args) = match *s {
        Sample::Usage { usage, .. } => (
            Cow::Borrowed("host"),
            Args {
                cpu_vectors: Some(usage.cpu_vectors),
                irtes: Some(usage.irtes),
                irq_descs: Some(usage.irq_descs),
                kvm_routes: Some(usage.kvm_routes),
                ..Args::default()
            },
        ),
        Sample::Cpu { cpu, vectors, .. } => (
            Cow::Owned(format!("cpu {cpu}")),
            Args {
                vectors: Some(vectors),
                ..Args::default()
            },
        ),
    };
    Event {
        name,
        cat: Some("usage"),
        ph: "C",
        ts: us(s.t()),
        dur: None,
        pid: HOST_PID,
        tid: None,
        s: None,
        args,
    }
}

/// The trace as Trace Event Format JSON, and its summary. `open` holds the
/// spans still open now (drawn to now, `args.open = true`).
pub(super) fn trace_json(
    engine: &Engine,
    trace: &Trace,
    open: &[Span],
) -> Result<(String, TraceSummary)> {
    let (admitted, outside, dropped, first) = admit_open(trace, open);
    let summary = summarize(trace, admitted.len(), outside, dropped, first);
    let spans: Vec<&Span> = trace.spans.iter().chain(&admitted).collect();
    let threads_of = lanes(&spans);
    let mark_thread = |m: &Mark| match m.kind {
        MarkKind::QueueFull => Thread::Cpu(m.cpu),
        _ => Thread::Device(m.dev, Lane::Msix(0)),
    };
    // Every CPU is named, and every thread that holds an event; tids in
    // display order.
    let mut tids: BTreeMap<Thread, u32> = (0..engine.cfg.host.ncpus)
        .map(|c| (Thread::Cpu(c), 0))
        .collect();
    tids.extend(threads_of.iter().map(|&t| (t, 0)));
    tids.extend(trace.marks.iter().map(|m| (mark_thread(m), 0)));
    // An event without a tid stands for its process's main thread, whose tid
    // is the pid: thread ids start past the last pid so they never meet one.
    let first_tid = DEVICE_PID + engine.cfg.devices.len() as u32;
    for (i, tid) in tids.values_mut().enumerate() {
        *tid = first_tid + i as u32;
    }

    let mut events: Vec<Event> =
        Vec::with_capacity(spans.len() + trace.marks.len() + trace.samples.len());
    for (s, thread) in spans.iter().zip(&threads_of) {
        let (_, name, cat) = placement(s);
        let per_vector = matches!(s.kind, SpanKind::Request | SpanKind::W1 | SpanKind::Stale);
        events.push(Event {
            name: Cow::Borrowed(name),
            cat: Some(cat),
            ph: "X",
            ts: us(s.start),
            dur: Some(us(s.end - s.start)),
            pid: thread.pid(),
            tid: Some(tids[thread]),
            s: None,
            args: Args {
                entry: per_vector.then_some(s.entry),
                open: s.open.then_some(true),
                ..Args::default()
            },
        });
    }
    events.extend(
        trace
            .marks
            .iter()
            .map(|m| mark_event(m, tids[&mark_thread(m)])),
    );
    events.extend(
        trace
            .carried()
            .chain(trace.samples.iter().copied())
            .map(|s| counter_event(&s)),
    );
    events.sort_by(|a, b| a.ts.total_cmp(&b.ts));

    let processes = std::iter::once((HOST_PID, format!("host ({} CPUs)", engine.cfg.host.ncpus)))
        .chain(
            engine
                .cfg
                .devices
                .iter()
                .enumerate()
                .map(|(i, d)| (DEVICE_PID + i as u32, format!("device {i} (VM {})", d.vm))),
        );
    let mut meta = Vec::new();
    for (pid, name) in processes {
        meta.push(metadata(
            "process_name",
            pid,
            None,
            Args {
                name: Some(name),
                ..Args::default()
            },
        ));
        meta.push(metadata(
            "process_sort_index",
            pid,
            None,
            Args {
                sort_index: Some(pid),
                ..Args::default()
            },
        ));
    }
    for (thread, &tid) in &tids {
        meta.push(metadata(
            "thread_name",
            thread.pid(),
            Some(tid),
            Args {
                name: Some(thread.name()),
                ..Args::default()
            },
        ));
        meta.push(metadata(
            "thread_sort_index",
            thread.pid(),
            Some(tid),
            Args {
                sort_index: Some(tid),
                ..Args::default()
            },
        ));
    }

    let other = serde_json::json!({
        "generator": concat!("msixcore ", env!("CARGO_PKG_VERSION")),
        "policy": engine.policy_name(),
        "seed": engine.cfg.seed,
        "end_ns": engine.now as u64,
        "window_from_ns": trace.opts.from_ns,
        "window_to_ns": (trace.opts.to_ns != u64::MAX).then_some(trace.opts.to_ns),
        "max_events": trace.opts.max_events,
        "events": summary.events,
        "dropped": summary.dropped,
        "first_dropped_ns": summary.first_dropped_ns,
        "outside_window": summary.outside_window,
    });
    let mut out = String::with_capacity(64 + 120 * (events.len() + meta.len()));
    // displayTimeUnit first (Perfetto reads it from the file's start), the
    // events next, otherData last: a reader that stops at a key it does not
    // know has every event by then.
    out.push_str("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
    for (i, e) in meta.iter().chain(&events).enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str(
            &serde_json::to_string(e).map_err(|e| Error::InvalidArgument(format!("trace: {e}")))?,
        );
    }
    out.push_str("],\"otherData\":");
    out.push_str(&other.to_string());
    out.push_str("}\n");
    Ok((out, summary))
}
