//! Engine events/s on the resize storm (the CLI's storm, `Storm::default()`:
//! docs/storm.md#parameters, 32 host CPUs, 1 µs handler; `noresize`,
//! per-event mode) for a fixed number of resizes, next to the bare-loop
//! floor in the same run: one exponential draw per event compared against a
//! resize window. Both report elements/s = interrupt events (`books.fired`
//! for the engine) per second; the engine's fraction of the floor is their
//! ratio (`benches/summarize.py` prints it). The `storm_resize` group times
//! the same storm in aggregated mode per resize, next to the host models'
//! floor of one resize.
//!
//! Figures recorded before the storm came from `msixcore_core::storm` ran
//! the old bench-only storm (same devices, table, rates and windows, but
//! every device in VM 0, 8 host CPUs and a 200 ns handler); the bench names did not change.

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use msixcore_core::config::{Mode, SimConfig};
use msixcore_core::engine::RunResult;

mod workloads;

/// Five storm cycles (16 devices × 64 entries each: 5,120 resizes).
const CYCLES: u64 = 5;

fn engine(c: &mut Criterion) {
    let s = workloads::Storm::default();
    let resizes = CYCLES * workloads::storm_cycle_resizes(&s);
    let cfg = workloads::storm_config(&s, resizes, 1);
    // The run is deterministic: its event count is the throughput unit.
    let probe = workloads::engine_run(cfg.clone());
    let fired = probe.books.fired;
    let sim_ns = probe.stats.end_time_ns as f64;

    let mut g = c.benchmark_group("engine_storm");
    g.sample_size(10);
    g.throughput(Throughput::Elements(fired));
    bench_runs(&mut g, "per_event_noresize", &cfg, |r| r.books.fired);
    // Same number of events at the run's mean event rate; windows of the
    // storm's mean W2 length opening once per resize slot.
    let total_rate = fired as f64 / (sim_ns * 1e-9);
    let period_ns = sim_ns * s.devices as f64 / resizes as f64;
    // The mean device-wide window over a cycle's entries k = 0..T−1.
    let window_ns = (0..s.table).map(|k| s.window_s(k)).sum::<f64>() * 1e9 / f64::from(s.table);
    g.bench_function("bare_loop_floor", |b| {
        b.iter(|| {
            black_box(workloads::bare_loop(
                black_box(fired),
                total_rate,
                period_ns,
                window_ns,
                7,
            ))
        });
    });
    g.finish();
}

/// The storm in aggregated mode, per resize, next to what the host's models
/// alone cost for a resize of the storm's mean size in the same run
/// (`workloads::resize_models_op`): their ratio is how far the engine is from
/// the floor of a faithful aggregated run.
fn resize(c: &mut Criterion) {
    let s = workloads::Storm::default();
    let resizes = CYCLES * workloads::storm_cycle_resizes(&s);
    let cfg = workloads::storm_config_in(&s, Mode::Aggregated, resizes, 1);
    let mut g = c.benchmark_group("storm_resize");
    g.sample_size(10);
    g.throughput(Throughput::Elements(resizes));
    bench_runs(&mut g, "aggregated_noresize", &cfg, |r| r.stats.resizes);
    g.throughput(Throughput::Elements(1));
    let mut m = workloads::resize_models_setup(s.ncpus, workloads::RESIZE_VECTORS);
    g.bench_function("models_floor", |b| {
        b.iter(|| black_box(workloads::resize_models_op(&mut m)));
    });
    g.finish();
}

/// Time whole runs of `cfg` (a fresh clone each, outside the timing) as
/// bench `name` of `g`; `out` picks the figure kept from `black_box`.
fn bench_runs(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    cfg: &SimConfig,
    out: impl Fn(RunResult) -> u64,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || cfg.clone(),
            |cfg| black_box(out(workloads::engine_run(cfg))),
            criterion::BatchSize::LargeInput,
        );
    });
}

criterion_group!(benches, engine, resize);
criterion_main!(benches);
