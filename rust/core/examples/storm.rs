//! Run the DESIGN.md §5 resize storm from Rust, as an embedding simulator
//! would: `cargo run --release --example storm -- [event|aggregated] [resizes] [seed]`.
//! Prints the books, the time taken and events/s; used to profile the engine.

use std::time::Instant;

use msixcore_core::config::Mode;

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
    let mut cfg = workloads::storm_config(workloads::STORM, resizes, seed);
    cfg.mode = mode;
    let t = Instant::now();
    let r = workloads::engine_run(cfg);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{resizes} resizes ({mode:?}): {:.3} s, fired {}, lost {}, {:.2} M events/s, {:.0} resizes/s",
        secs,
        r.books.fired,
        r.books.get(msixcore_core::books::Outcome::Lost),
        r.books.fired as f64 / secs / 1e6,
        r.stats.resizes as f64 / secs,
    );
}
