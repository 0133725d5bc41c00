//! The engine on the resize storm (docs/storm.md#the-resize-storm): loss
//! against the closed form, no loss without windows, conservation,
//! determinism.

use msixcore_core::books::Outcome;
use msixcore_core::config::{PolicyKind, SimConfig};
use msixcore_core::engine::RunResult;
use msixcore_core::storm::Storm;

// The stop condition the benchmarks put on the storm: one helper.
#[path = "../benches/workloads/mod.rs"]
mod workloads;

/// The storm `s` (`Storm::default()` is the CLI's) under `policy`, stopping
/// after `resizes` resize requests.
fn storm_config(s: &Storm, policy: PolicyKind, resizes: u64, seed: u64) -> SimConfig {
    workloads::storm_builder(s, policy, resizes)
        .seed(seed)
        .build()
        .unwrap()
}

fn run(cfg: SimConfig) -> RunResult {
    workloads::engine_run(cfg)
}

#[test]
fn noresize_storm_loses_what_the_closed_form_says_in_both_kernel_modes() {
    let sets = [
        Storm::default(),
        Storm {
            devices: 4,
            table: 16,
            init: 2,
            rate: 50_000.0,
            w0_ns: 50_000,
            w_free_ns: 3_000,
            ..Storm::default()
        },
        Storm {
            devices: 8,
            table: 32,
            init: 8,
            rate: 10_000.0,
            w_free_ns: 1_000,
            w_alloc_ns: 2_000,
            ..Storm::default()
        },
    ];
    for (i, base) in sets.into_iter().enumerate() {
        for early_enable in [true, false] {
            let s = Storm {
                early_enable: Some(early_enable),
                ..base.clone()
            };
            let resizes = workloads::storm_cycle_resizes(&s) * 20;
            let r = run(storm_config(
                &s,
                PolicyKind::Noresize,
                resizes,
                7 + i as u64,
            ));
            assert_eq!(r.stats.resize_requests, resizes);
            assert_eq!(r.stats.resizes, resizes, "every unmask is a resize");
            let lost = r.books.get(Outcome::Lost) as f64;
            let expect = s.closed_form_lost(resizes);
            let sd = expect.sqrt();
            assert!(
                (lost - expect).abs() < 4.0 * sd,
                "set {i}, early enable {early_enable}: lost {lost} vs closed form \
                 {expect:.1} ± {sd:.1}"
            );
            assert!(lost > 0.0);
            r.books.check().unwrap();
        }
    }
}

#[test]
fn qemu_before_8_2_resizes_one_entry_less_per_cycle_and_loses_the_same() {
    let new = Storm {
        devices: 4,
        table: 16,
        ..Storm::default()
    };
    let old = Storm {
        qemu: "7.2".parse().unwrap(),
        ..new.clone()
    };
    let cycles = 40;
    let a = run(storm_config(&new, PolicyKind::Noresize, cycles * 4 * 16, 3));
    let b = run(storm_config(&old, PolicyKind::Noresize, cycles * 4 * 15, 3));
    // A cycle of T entries: T resizes under 8.2, T − 1 before (vector 0 is
    // pre-requested at enable), and the same expected loss.
    assert_eq!(a.stats.resizes, cycles * 4 * 16);
    assert_eq!(b.stats.resizes, cycles * 4 * 15);
    let expect = new.closed_form_lost(cycles * 4 * 16);
    assert!((old.closed_form_lost(cycles * 4 * 15) - expect).abs() < 1e-9 * expect);
    for r in [&a, &b] {
        let lost = r.books.get(Outcome::Lost) as f64;
        assert!(
            (lost - expect).abs() < 4.0 * expect.sqrt(),
            "{lost} vs {expect}"
        );
    }
}

#[test]
fn policies_without_windows_lose_nothing() {
    let s = Storm {
        devices: 4,
        table: 16,
        ..Storm::default()
    };
    let resizes = workloads::storm_cycle_resizes(&s) * 10;
    for policy in [
        PolicyKind::Dynamic,
        PolicyKind::Upfront,
        PolicyKind::Hypercall,
        PolicyKind::Ims,
    ] {
        let r = run(storm_config(&s, policy, resizes, 1));
        assert_eq!(r.books.get(Outcome::Lost), 0, "{policy:?}");
        assert_eq!(r.books.get(Outcome::Intx), 0, "{policy:?}");
        assert!(r.books.get(Outcome::Delivered) > 0, "{policy:?}");
        assert_eq!(r.stats.resize_requests, resizes, "{policy:?}");
        assert_eq!(r.stats.resizes, 0, "{policy:?}");
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_counts() {
    let s = Storm {
        devices: 2,
        table: 16,
        ..Storm::default()
    };
    let a = run(storm_config(&s, PolicyKind::Noresize, 320, 42))
        .to_json()
        .unwrap();
    let b = run(storm_config(&s, PolicyKind::Noresize, 320, 42))
        .to_json()
        .unwrap();
    let c = run(storm_config(&s, PolicyKind::Noresize, 320, 43))
        .to_json()
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn window_time_matches_the_storm_definition() {
    for early_enable in [true, false] {
        let s = Storm {
            devices: 1,
            table: 8,
            init: 8,
            w_free_ns: 700,
            w_alloc_ns: 300,
            early_enable: Some(early_enable),
            ..Storm::default()
        };
        let r = run(storm_config(&s, PolicyKind::Noresize, 8, 3));
        // W2 of resize k (k = 0..7): w0 + w_free·(vectors freed), plus
        // w_alloc·(k+1) without early enable. The host frees k vectors, but
        // one at the first resize: the vector QEMU's enable allocated with
        // no eventfd (vfio_enable_msix_no_vec).
        let freed = |k: u64| k.max(1);
        let alloc = |k: u64| {
            if early_enable {
                0
            } else {
                s.w_alloc_ns * (k + 1)
            }
        };
        let w2 = |k: u64| s.w0_ns + s.w_free_ns * freed(k) + alloc(k);
        assert_eq!(r.stats.w2_time_ns, (0..8u64).map(w2).sum::<u64>());
        // W1: each live vector j < k is masked from its free_irq to its
        // request_irq, the whole resize in both modes.
        let host = |k: u64| s.w0_ns + s.w_free_ns * freed(k) + s.w_alloc_ns * (k + 1);
        assert_eq!(
            r.stats.w1_time_ns,
            (0..8u64).map(|k| k * host(k)).sum::<u64>()
        );
    }
}

#[test]
fn an_unaware_guest_under_hypercall_falls_back_to_resizing() {
    let s = Storm {
        devices: 2,
        table: 16,
        ..Storm::default()
    };
    let mut cfg = storm_config(&s, PolicyKind::Hypercall, 320, 5);
    for d in &mut cfg.devices {
        d.program.remove(0); // no pci_enable_msix_range hypercall
    }
    let r = run(cfg);
    assert_eq!(r.stats.resizes, 320);
    assert!(r.books.get(Outcome::Lost) > 0);
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, v)
}

#[test]
fn aggregated_mode_agrees_in_distribution_with_per_event_mode() {
    use msixcore_core::config::Mode;
    let s = Storm {
        devices: 2,
        table: 16,
        init: 2,
        rate: 50_000.0,
        w0_ns: 50_000,
        service_ns: 10, // the handler is never the bottleneck here
        ..Storm::default()
    };
    let resizes = workloads::storm_cycle_resizes(&s) * 4;
    let seeds = 60u64;
    let mut per_mode = Vec::new();
    for mode in [Mode::Event, Mode::Aggregated] {
        let (mut lost, mut delivered) = (Vec::new(), Vec::new());
        for seed in 0..seeds {
            let cfg = workloads::storm_builder(&s, PolicyKind::Noresize, resizes)
                .seed(1000 + seed)
                .mode(mode)
                .build()
                .unwrap();
            let r = run(cfg);
            r.books.check().unwrap();
            lost.push(r.books.get(Outcome::Lost) as f64);
            delivered.push(r.books.get(Outcome::Delivered) as f64);
        }
        per_mode.push((mean_var(&lost), mean_var(&delivered)));
    }
    let n = seeds as f64;
    for (name, (a, b)) in [
        ("lost", (per_mode[0].0, per_mode[1].0)),
        ("delivered", (per_mode[0].1, per_mode[1].1)),
    ] {
        let se = ((a.1 + b.1) / n).sqrt();
        assert!(
            (a.0 - b.0).abs() < 4.0 * se,
            "{name}: means {} vs {} (se {se})",
            a.0,
            b.0
        );
        let ratio = a.1 / b.1;
        assert!(
            (0.35..2.9).contains(&ratio),
            "{name}: variances {} vs {} (ratio {ratio})",
            a.1,
            b.1
        );
    }
    // Both see losses, and Poisson counts: variance ≈ mean for lost.
    let (lost_mean, lost_var) = per_mode[1].0;
    assert!(lost_mean > 50.0);
    assert!((0.5..2.0).contains(&(lost_var / lost_mean)));
}

#[test]
fn replications_merge_the_same_whatever_the_thread_count() {
    use msixcore_core::engine::{merge_results, replications_json, run_replications};
    let s = Storm {
        devices: 2,
        table: 8,
        ..Storm::default()
    };
    let cfg = storm_config(&s, PolicyKind::Noresize, 64, 0);
    let seeds: Vec<u64> = (10..16).collect();
    let one = run_replications(&cfg, &seeds, 1).unwrap();
    let two = run_replications(&cfg, &seeds, 2).unwrap();
    assert_eq!(
        replications_json(&seeds, &one).unwrap(),
        replications_json(&seeds, &two).unwrap()
    );
    let merged = merge_results(&one).unwrap();
    let sum: u64 = one.iter().map(|r| r.books.get(Outcome::Lost)).sum();
    assert_eq!(merged.books.get(Outcome::Lost), sum);
    // Each replication equals a single run with that seed.
    let single = run(storm_config(&s, PolicyKind::Noresize, 64, 12));
    assert_eq!(one[2].books, single.books);
    assert!(run_replications(&cfg, &[], 2).is_err());
}

#[test]
fn run_json_is_run_then_to_json() {
    use msixcore_core::engine::run_json;
    let s = Storm {
        devices: 1,
        table: 8,
        ..Storm::default()
    };
    let cfg = storm_config(&s, PolicyKind::Noresize, 16, 4);
    let text = serde_json::to_string(&cfg).unwrap();
    assert_eq!(run_json(&text).unwrap(), run(cfg).to_json().unwrap());
    assert!(run_json("{}").unwrap_err().to_string().contains("devices"));
}

/// Set books `b` (a result's `books` or one of its `phases`) to `fired`
/// interrupts with `outcomes` (the others 0).
fn set_books(b: &mut serde_json::Value, fired: u64, outcomes: &[(&str, u64)]) {
    b["fired"] = fired.into();
    for o in b["outcomes"].as_object_mut().unwrap().values_mut() {
        *o = 0.into();
    }
    for &(name, n) in outcomes {
        b["outcomes"][name] = n.into();
    }
}

#[test]
fn merging_results_past_u64_max_is_an_invalid_argument_not_an_overflow() {
    use msixcore_core::engine::merge_results;
    use msixcore_core::Error;
    let s = Storm {
        devices: 1,
        table: 8,
        ..Storm::default()
    };
    let real = run(storm_config(&s, PolicyKind::Noresize, 4, 1));
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&real.to_json().unwrap()).unwrap();
        f(&mut v);
        RunResult::from_json(&v.to_string())
    };
    // A huge stat parses; two of them do not merge (debug builds panicked).
    let big = edit(&|v| v["stats"]["end_time_ns"] = u64::MAX.into()).unwrap();
    let err = merge_results(&[big.clone(), big]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    // Books whose outcomes sum past u64::MAX do not balance, whatever the wrap.
    let half = 1u64 << 63;
    let over = edit(&|v| {
        set_books(&mut v["books"], 0, &[("lost", half), ("failed", half)]);
        set_books(
            &mut v["phases"]["runtime"],
            0,
            &[("lost", half), ("failed", half)],
        );
        set_books(&mut v["phases"]["probe"], 0, &[]);
    });
    assert!(over.is_err());
    // Phases whose sum passes u64::MAX.
    let phases = edit(&|v| {
        set_books(&mut v["phases"]["runtime"], u64::MAX, &[("lost", u64::MAX)]);
        set_books(&mut v["phases"]["probe"], u64::MAX, &[("lost", u64::MAX)]);
    });
    assert!(matches!(phases, Err(Error::InvalidArgument(_))));
    // Books near the top still merge when the sum fits.
    let top = edit(&|v| {
        set_books(&mut v["books"], u64::MAX / 2, &[("lost", u64::MAX / 2)]);
        set_books(
            &mut v["phases"]["runtime"],
            u64::MAX / 2,
            &[("lost", u64::MAX / 2)],
        );
        set_books(&mut v["phases"]["probe"], 0, &[]);
    })
    .unwrap();
    let m = merge_results(&[top.clone(), top]).unwrap();
    assert_eq!(m.books.fired, u64::MAX - 1);
}
