//! Run the resize storm (the CLI's storm, `Storm::default()`:
//! docs/storm.md#the-resize-storm) under `noresize` from Rust, as an embedding
//! simulator would: `cargo run --release --example storm -- [event|aggregated] [resizes] [seed]`.
//! Prints the books, the time taken, events/s and the closed-form loss; used to
//! profile the engine (`benches/profile_storm.py`).

use std::time::Instant;

use msixcore_core::books::Outcome;
use msixcore_core::config::{Mode, PolicyKind};
use msixcore_core::storm::Storm;

#[path = "../benches/workloads/mod.rs"]
mod workloads;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = match args.get(1).map_or("event", String::as_str) {
        "event" => Mode::Event,
        "aggregated" => Mode::Aggregated,
        other => {
            eprintln!("mode must be event or aggregated, got {other}");
            std::process::exit(2);
        }
    };
    let parse = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| {
            s.parse().unwrap_or_else(|_| {
                eprintln!("argument {i} must be a whole number, got {s}");
                std::process::exit(2);
            })
        })
    };
    let resizes = parse(2, 102_400);
    let seed = parse(3, 1);
    let storm = Storm::default();
    let cfg = workloads::storm_builder(&storm, PolicyKind::Noresize, resizes)
        .seed(seed)
        .mode(mode)
        .build()
        .expect("storm config");
    let t = Instant::now();
    let r = workloads::engine_run(cfg);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{resizes} resizes ({mode:?}): {:.3} s, fired {}, lost {}, {:.2} M events/s, {:.0} resizes/s, closed form {:.1} lost",
        secs,
        r.books.fired,
        r.books.get(Outcome::Lost),
        r.books.fired as f64 / secs / 1e6,
        r.stats.resizes as f64 / secs,
        storm.closed_form_lost(resizes),
    );
}
