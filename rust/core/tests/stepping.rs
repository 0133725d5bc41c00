//! Stepping never changes results: `run()`, `step_until` in any chunks, and
//! any mix of the two give byte-identical books and stats for the same seed
//! (co-simulation steps msixcore in its own time slices).

use msixcore_core::config::{
    Action, ClosedLoop, DeviceConfig, Mode, Phase, PolicyKind, Semantics, SimConfig, Step,
};
use msixcore_core::engine::Engine;
use proptest::prelude::*;

/// A random small workload: up to three devices, each a probe with a phase
/// change, unmasks at random gaps, guest masks and frees, some closed-loop
/// traffic, a disable; event or aggregated mode, any built-in policy but ims;
/// host `free_irq`s that take no time or 2 µs each.
fn config() -> impl Strategy<Value = SimConfig> {
    let device = (
        4u32..=16,
        1_000.0f64..300_000.0,
        proptest::collection::vec((0u64..400_000, 0u8..6), 1..10),
        any::<bool>(),
        prop_oneof![
            Just(Semantics::Edge),
            Just(Semantics::EdgeIntx),
            Just(Semantics::Pba)
        ],
    )
        .prop_map(|(entries, rate, steps, closed, semantics)| {
            let mut program = vec![
                Step::now(Action::Negotiate {
                    minvec: 1,
                    maxvec: entries,
                }),
                Step::now(Action::Enable),
            ];
            let mut next = 0u32;
            for (gap, kind) in steps {
                let entry = next.min(entries - 1);
                let action = match kind {
                    0..=2 => {
                        next += 1;
                        Action::Unmask { entry }
                    }
                    3 => Action::Mask {
                        entry: entry.saturating_sub(1),
                    },
                    4 => Action::Free {
                        entry: entry.saturating_sub(1),
                    },
                    _ => Action::Phase {
                        phase: Phase::Runtime,
                    },
                };
                program.push(Step::after(gap, action));
            }
            program.push(Step::after(300_000, Action::Disable));
            let mut d = DeviceConfig::new(entries)
                .rate(rate)
                .semantics(semantics)
                .program(program);
            if closed {
                d.closed_loop = Some(ClosedLoop {
                    from_entry: 1,
                    depth: 2,
                    latency_ns: 20_000,
                    timeout_ns: 500_000,
                });
            }
            d
        });
    (
        proptest::collection::vec(device, 1..=3),
        prop_oneof![
            Just(PolicyKind::Noresize),
            Just(PolicyKind::Upfront),
            Just(PolicyKind::Dynamic),
            Just(PolicyKind::Hypercall)
        ],
        prop_oneof![Just(Mode::Event), Just(Mode::Aggregated)],
        any::<u64>(),
        1_000_000u64..4_000_000,
        // Each host `free_irq` takes no time (the default) or 2 µs.
        prop_oneof![3 => Just(0u64), 1 => Just(2_000u64)],
    )
        .prop_map(|(devices, policy, mode, seed, end, t_free_irq_ns)| {
            let devices = devices
                .into_iter()
                .enumerate()
                .map(|(i, d)| d.vm(i as u32).start_ns(i as u64 * 50_000));
            SimConfig::builder()
                .devices(devices)
                .policy(policy)
                .mode(mode)
                .seed(seed)
                .max_time_ns(end)
                .with_timing(|t| t.t_free_irq_ns = t_free_irq_ns)
                .build()
                .unwrap()
        })
}

/// Chunk lengths (ns), used in turn until the run ends; and after how many
/// chunks the rest is done by one `run()` (none: stepping to the end).
fn chunks() -> impl Strategy<Value = (Vec<u64>, Option<usize>)> {
    (
        proptest::collection::vec(
            prop_oneof![1u64..1_000, 1_000u64..100_000, 100_000u64..2_000_000],
            1..6,
        ),
        proptest::option::of(0usize..40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn run_and_any_stepping_give_the_same_result(cfg in config(), (sizes, switch) in chunks()) {
        let whole = Engine::new(cfg.clone()).unwrap().run().unwrap().to_json().unwrap();
        let mut e = Engine::new(cfg).unwrap();
        let mut t = 0u64;
        let mut n = 0usize;
        let stepped = loop {
            if switch == Some(n) {
                break e.run().unwrap();
            }
            t = t.saturating_add(sizes[n % sizes.len()]);
            n += 1;
            if e.step_until(t).unwrap() {
                break e.result().unwrap();
            }
        };
        prop_assert_eq!(stepped.to_json().unwrap(), whole);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A fire that goes straight to the CPU by the route its vector learnt
    /// ends as the full path through the device and the IOMMU would: the
    /// same results with the learnt routes as without, whatever the guest,
    /// the policy and the host change between fires.
    #[test]
    fn learnt_routes_change_no_result(cfg in config()) {
        let mut cfg = cfg;
        cfg.mode = Mode::Event;
        let learnt = Engine::new(cfg.clone()).unwrap().run().unwrap().to_json().unwrap();
        let mut e = Engine::new(cfg).unwrap();
        e.forget_routes();
        prop_assert_eq!(e.run().unwrap().to_json().unwrap(), learnt);
    }

    /// A host disable whose `free_irq`s take no time leaves each freed
    /// vector's Mask to the Disable at the same time: the same results as
    /// with every Mask sent, in either mode, whatever came before it.
    #[test]
    fn masks_left_to_the_disable_change_no_result(cfg in config()) {
        let folded = Engine::new(cfg.clone()).unwrap().run().unwrap().to_json().unwrap();
        let mut e = Engine::new(cfg).unwrap();
        e.mask_each_freed();
        prop_assert_eq!(e.run().unwrap().to_json().unwrap(), folded);
    }
}

/// The CLI's storm under `noresize` in `mode` at `seed`, to `max_resizes`
/// (if any) or `max_time_ns`.
fn storm(mode: Mode, seed: u64, max_resizes: Option<u64>, max_time_ns: u64) -> SimConfig {
    let mut b = msixcore_core::storm::Storm::default()
        .config(PolicyKind::Noresize)
        .mode(mode)
        .seed(seed)
        .max_time_ns(max_time_ns);
    if let Some(n) = max_resizes {
        b = b.max_resizes(n);
    }
    b.build().unwrap()
}

/// The storm, per event, with and without learnt routes: the same books
/// (its resizes move every live vector's IRTE, its masks hold fires in
/// QEMU, its queues fill).
#[test]
fn the_storm_per_event_is_the_same_without_learnt_routes() {
    let cfg = storm(Mode::Event, 9, Some(2_048), 10_000_000_000);
    let learnt = Engine::new(cfg.clone()).unwrap().run().unwrap();
    let mut e = Engine::new(cfg).unwrap();
    e.forget_routes();
    let full = e.run().unwrap();
    assert!(learnt.books.fired > 1_000_000, "{}", learnt.books.fired);
    assert_eq!(full.to_json().unwrap(), learnt.to_json().unwrap());
}

/// A run stopped from outside (every third look at its poll, or by its
/// cancel flag) goes on to the books it would have given without the stops.
#[test]
fn an_interrupted_run_goes_on_to_the_same_result() {
    use msixcore_core::Error;
    use std::sync::atomic::Ordering;
    for mode in [Mode::Event, Mode::Aggregated] {
        let cfg = storm(mode, 4, Some(1_024), 10_000_000_000);
        let whole = Engine::new(cfg.clone())
            .unwrap()
            .run()
            .unwrap()
            .to_json()
            .unwrap();
        let mut e = Engine::new(cfg).unwrap();
        let mut looks = 0u32;
        e.set_interrupt_poll(Box::new(move || {
            looks += 1;
            looks % 3 == 0
        }));
        let cancel = e.cancel_flag();
        cancel.store(true, Ordering::Relaxed);
        let mut stops = 0;
        let result = loop {
            match e.run() {
                Ok(r) => break r,
                Err(Error::Interrupted(_)) => stops += 1,
                Err(other) => panic!("{other}"),
            }
            assert!(stops < 10_000, "{mode:?}: no progress");
        };
        assert!(stops >= 2, "{mode:?}: {stops} stops");
        assert!(
            !cancel.load(Ordering::Relaxed),
            "the flag is cleared when it stops a run"
        );
        assert_eq!(result.to_json().unwrap(), whole, "{mode:?}");
    }
}

/// A cancel made between steps stops the next step at once, even one too
/// short to reach the loop's periodic look, and is not left armed to stop a
/// later one half-way.
#[test]
fn a_cancel_between_steps_stops_the_next_one_however_short() {
    use msixcore_core::Error;
    use std::sync::atomic::Ordering;
    let cfg = storm(Mode::Event, 2, None, 50_000_000);
    let whole = Engine::new(cfg.clone()).unwrap().run().unwrap();
    let mut e = Engine::new(cfg).unwrap();
    e.step_until(1_000).unwrap();
    let cancel = e.cancel_flag();
    cancel.store(true, Ordering::Relaxed);
    // 1 µs more: a handful of events, fewer than one look's worth.
    assert!(matches!(e.step_until(2_000), Err(Error::Interrupted(_))));
    assert_eq!(e.now_ns(), 1_000, "a cancelled step does not move time");
    assert!(!cancel.load(Ordering::Relaxed));
    assert!(!e.step_until(3_000).unwrap());
    assert_eq!(
        e.run().unwrap().to_json().unwrap(),
        whole.to_json().unwrap()
    );
}
