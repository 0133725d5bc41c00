//! The trace recorder and its Trace Event Format: valid JSON, named tracks,
//! one instant per lost, INTx or blocked interrupt, windows that sum to the
//! run's window times, a window and a cap that bound it, and books that do
//! not move.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::TraceOptions;
use crate::books::Outcome;
use crate::config::{Action, ClosedLoop, DeviceConfig, PolicyKind, Semantics, SimConfig, Step};
use crate::engine::{Engine, RunResult};
use crate::storm::Storm;

fn storm(policy: PolicyKind, semantics: Semantics) -> SimConfig {
    Storm {
        devices: 2,
        table: 8,
        semantics,
        ..Storm::default()
    }
    .config(policy)
    .seed(7)
    .max_resizes(32)
    .max_time_ns(10_000_000_000)
    .build()
    .unwrap()
}

fn traced(cfg: SimConfig, opts: TraceOptions) -> (RunResult, Value) {
    let mut e = Engine::new(cfg).unwrap();
    e.enable_trace(opts).unwrap();
    let r = e.run().unwrap();
    let json: Value = serde_json::from_str(&e.trace_json().unwrap()).unwrap();
    (r, json)
}

fn events(trace: &Value) -> &Vec<Value> {
    trace["traceEvents"].as_array().unwrap()
}

fn count(trace: &Value, ph: &str, name: &str) -> u64 {
    events(trace)
        .iter()
        .filter(|e| e["ph"] == ph && e["name"] == name)
        .count() as u64
}

/// Sum of the durations (ns) of the closed slices named `name`.
fn closed_ns(trace: &Value, name: &str) -> f64 {
    events(trace)
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == name && e["args"]["open"].is_null())
        .map(|e| e["dur"].as_f64().unwrap() * 1_000.0)
        .sum()
}

/// Every event has the keys its phase needs, every thread and process it
/// uses is named, and no two slices on one thread overlap.
fn check_format(trace: &Value) {
    assert_eq!(trace["displayTimeUnit"], "ns");
    let (mut threads, mut named_threads) = (BTreeSet::new(), BTreeSet::new());
    let (mut pids, mut named_pids) = (BTreeSet::new(), BTreeSet::new());
    let mut slices: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for e in events(trace) {
        let ph = e["ph"].as_str().unwrap();
        assert!(e["name"].is_string() && e["pid"].is_u64(), "{e}");
        assert!(e["ts"].as_f64().is_some_and(|t| t >= 0.0), "{e}");
        pids.insert(e["pid"].as_u64().unwrap());
        match ph {
            "M" => match e["name"].as_str().unwrap() {
                "process_name" => {
                    assert!(e["args"]["name"].is_string());
                    named_pids.insert(e["pid"].as_u64().unwrap());
                }
                "thread_name" => {
                    assert!(e["args"]["name"].is_string());
                    named_threads.insert(e["tid"].as_u64().unwrap());
                }
                "process_sort_index" | "thread_sort_index" => {
                    assert!(e["args"]["sort_index"].is_u64());
                }
                other => panic!("metadata {other}"),
            },
            "X" => {
                let dur = e["dur"].as_f64().unwrap();
                assert!(dur >= 0.0, "{e}");
                let tid = e["tid"].as_u64().unwrap();
                threads.insert(tid);
                let ts = e["ts"].as_f64().unwrap();
                slices.entry(tid).or_default().push((ts, ts + dur));
            }
            "i" => {
                assert_eq!(e["s"], "t");
                threads.insert(e["tid"].as_u64().unwrap());
            }
            "C" => assert!(e["args"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_number)),
            other => panic!("phase {other}"),
        }
    }
    assert!(threads.is_subset(&named_threads), "unnamed threads");
    assert_eq!(pids, named_pids, "unnamed processes");
    // An event without a tid is its process's main thread (tid = pid).
    assert!(named_threads.is_disjoint(&pids), "a thread id equals a pid");
    let keys: Vec<&String> = trace.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "displayTimeUnit, traceEvents, otherData");
    for (tid, mut s) in slices {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in s.windows(2) {
            assert!(w[1].0 >= w[0].1, "slices overlap on thread {tid}: {w:?}");
        }
    }
}

#[test]
fn a_traced_storm_marks_every_lost_interrupt_and_draws_the_windows_it_sums() {
    let (r, trace) = traced(
        storm(PolicyKind::Noresize, Semantics::Edge),
        TraceOptions::default(),
    );
    check_format(&trace);
    let other = &trace["otherData"];
    assert_eq!(
        (other["dropped"].as_u64(), other["outside_window"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(r.books.get(Outcome::Lost) > 0);
    assert_eq!(count(&trace, "i", "lost"), r.books.get(Outcome::Lost));
    assert_eq!(count(&trace, "i", "intx"), 0);
    assert_eq!(count(&trace, "i", "blocked"), 0);
    // Closed windows are the ones the run sums (whole ns each).
    assert!((closed_ns(&trace, "W1") - r.stats.w1_time_ns as f64).abs() < 1e-3 * 64.0);
    assert!((closed_ns(&trace, "W2") - r.stats.w2_time_ns as f64).abs() < 1e-3 * 64.0);
    let requests = events(&trace)
        .iter()
        .filter(|e| e["name"] == "resize request" && e["args"]["open"].is_null())
        .count() as u64;
    assert_eq!(requests, r.stats.resize_requests);
    let stale = events(&trace)
        .iter()
        .filter(|e| e["name"] == "stale")
        .count() as u64;
    assert_eq!(stale, r.stats.stalls);
    // The host's counters are sampled, the first at t = 0.
    let host: Vec<&Value> = events(&trace)
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == "host")
        .collect();
    assert_eq!(host[0]["ts"], 0.0);
    assert!(host.iter().any(|e| e["args"]["irtes"].as_u64() > Some(0)));
    assert_eq!(
        other["events"].as_u64(),
        Some(events(&trace).iter().filter(|e| e["ph"] != "M").count() as u64)
    );
}

#[test]
fn tracing_does_not_move_the_books_and_repeats_byte_for_byte() {
    let cfg = storm(PolicyKind::Noresize, Semantics::Edge);
    let plain = Engine::new(cfg.clone()).unwrap().run().unwrap();
    let (r, first) = traced(cfg.clone(), TraceOptions::default());
    assert_eq!(r, plain);
    let (_, again) = traced(cfg, TraceOptions::default());
    assert_eq!(first.to_string(), again.to_string());
}

#[test]
fn intx_instants_match_the_books() {
    let (r, trace) = traced(
        storm(PolicyKind::Noresize, Semantics::EdgeIntx),
        TraceOptions::default(),
    );
    assert!(r.books.get(Outcome::Intx) > 0);
    assert_eq!(count(&trace, "i", "intx"), r.books.get(Outcome::Intx));
    assert_eq!(count(&trace, "i", "lost"), r.books.get(Outcome::Lost));
}

#[test]
fn blocked_instants_match_the_books() {
    // One device, two live vectors; entry 1's message then names an IRTE
    // that is not present: its fires are blocked by the IOMMU.
    let program = vec![
        Step::now(Action::Enable),
        Step::now(Action::Unmask { entry: 0 }),
        Step::now(Action::Unmask { entry: 1 }),
        Step::after(2_000_000, Action::Wait),
    ];
    let cfg = SimConfig::builder()
        .policy(PolicyKind::Dynamic)
        .device(DeviceConfig::new(4).rate(50_000.0).program(program))
        .max_time_ns(3_000_000)
        .seed(3)
        .build()
        .unwrap();
    let mut e = Engine::new(cfg).unwrap();
    e.enable_trace(TraceOptions::default()).unwrap();
    e.step_until(1_000_000).unwrap();
    let bad = crate::remap::compose_msi(4_000, Some(0));
    e.devices[0].table.set_entry(1, bad).unwrap();
    let r = e.run().unwrap();
    assert!(r.books.get(Outcome::Blocked) > 10, "{:?}", r.books);
    let trace: Value = serde_json::from_str(&e.trace_json().unwrap()).unwrap();
    check_format(&trace);
    assert_eq!(count(&trace, "i", "blocked"), r.books.get(Outcome::Blocked));
    assert!(events(&trace)
        .iter()
        .filter(|e| e["name"] == "blocked")
        .all(|e| e["args"]["entry"] == 1));
}

#[test]
fn a_window_bounds_the_trace_and_counts_what_it_left_out() {
    let cfg = storm(PolicyKind::Noresize, Semantics::Edge);
    let (from, to) = (5_000_000u64, 7_000_000u64);
    let (r, trace) = traced(
        cfg,
        TraceOptions {
            from_ns: from,
            to_ns: to,
            ..TraceOptions::default()
        },
    );
    check_format(&trace);
    let (f, t) = (from as f64 / 1e3, to as f64 / 1e3);
    for e in events(&trace).iter().filter(|e| e["ph"] != "M") {
        let ts = e["ts"].as_f64().unwrap();
        let end = ts + e["dur"].as_f64().unwrap_or(0.0);
        assert!(end >= f && ts <= t, "{e} outside [{f}, {t}] µs");
    }
    let lost = count(&trace, "i", "lost");
    assert!(lost > 0 && lost < r.books.get(Outcome::Lost));
    assert!(trace["otherData"]["outside_window"].as_u64() > Some(0));
    // The counters start at the window with the values set before it.
    let host = events(&trace)
        .iter()
        .find(|e| e["ph"] == "C" && e["name"] == "host")
        .unwrap();
    assert_eq!(host["ts"].as_f64(), Some(f));
}

#[test]
fn the_cap_caps_and_says_what_it_dropped() {
    let cfg = storm(PolicyKind::Noresize, Semantics::Edge);
    let (_, trace) = traced(
        cfg,
        TraceOptions {
            max_events: 50,
            ..TraceOptions::default()
        },
    );
    check_format(&trace);
    let written = events(&trace).iter().filter(|e| e["ph"] != "M").count();
    assert_eq!(written, 50);
    let other = &trace["otherData"];
    assert_eq!(other["events"].as_u64(), Some(50));
    assert!(other["dropped"].as_u64() > Some(0));
    // Everything that ended before the first dropped event is there.
    let first = other["first_dropped_ns"].as_f64().unwrap() / 1e3;
    assert!(events(&trace)
        .iter()
        .filter(|e| e["ph"] != "M")
        .all(|e| e["ts"].as_f64().unwrap() <= first));
}

#[test]
fn hypercalls_take_their_round_trip() {
    let (_, trace) = traced(
        storm(PolicyKind::Hypercall, Semantics::Edge),
        TraceOptions::default(),
    );
    check_format(&trace);
    let calls: Vec<&Value> = events(&trace)
        .iter()
        .filter(|e| e["name"] == "hypercall")
        .collect();
    assert!(!calls.is_empty());
    let t = crate::config::TimingConfig::default().t_hypercall_ns as f64 / 1e3;
    assert!(calls.iter().all(|e| e["dur"].as_f64() == Some(t)));
    assert_eq!(count(&trace, "i", "lost"), 0);
}

#[test]
fn stuck_requests_that_overlap_get_lanes() {
    // Queue depth 4, a 2 ms timeout: a resize strands several completions
    // of one queue at once, stuck side by side.
    let mut program = vec![Step::now(Action::Enable)];
    program.extend((0..4).map(|k| Step::after(100_000, Action::Unmask { entry: k })));
    let mut d = DeviceConfig::new(4).program(program);
    d.closed_loop = Some(ClosedLoop {
        from_entry: 0,
        depth: 4,
        latency_ns: 2_000,
        timeout_ns: 2_000_000,
    });
    let cfg = SimConfig::builder()
        .policy(PolicyKind::Noresize)
        .device(d)
        .max_time_ns(10_000_000)
        .seed(2)
        .build()
        .unwrap();
    let (r, trace) = traced(cfg, TraceOptions::default());
    check_format(&trace);
    let stale = events(&trace)
        .iter()
        .filter(|e| e["name"] == "stale")
        .count() as u64;
    assert!(r.stats.stalls > 1);
    assert_eq!(stale, r.stats.stalls);
    assert_eq!(count(&trace, "i", "lost"), r.books.get(Outcome::Lost));
    let lanes = events(&trace)
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .filter(|e| e["args"]["name"].as_str().unwrap().contains("stale #"))
        .count();
    assert!(lanes > 0, "no overlapping stuck requests");
}

#[test]
fn bad_requests_are_errors() {
    let aggregated = storm(PolicyKind::Noresize, Semantics::Edge);
    let mut agg = aggregated.clone();
    agg.mode = crate::config::Mode::Aggregated;
    let err = Engine::new(agg)
        .unwrap()
        .enable_trace(TraceOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("aggregated"), "{err}");
    let mut e = Engine::new(aggregated.clone()).unwrap();
    assert!(e.trace_json().is_err(), "not tracing");
    let backwards = TraceOptions {
        from_ns: 2,
        to_ns: 1,
        ..TraceOptions::default()
    };
    assert!(e.enable_trace(backwards).is_err());
    let none = TraceOptions {
        max_events: 0,
        ..TraceOptions::default()
    };
    assert!(e.enable_trace(none).is_err());
    e.step_until(1_000_000).unwrap();
    assert!(e.enable_trace(TraceOptions::default()).is_err(), "started");
    assert!(!e.tracing());
}
