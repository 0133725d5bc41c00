//! Forged writes through the engine: every kind blocked for its reason on
//! both vendors, nothing reaching another device, the books and the fault
//! log balanced, the forger's own interrupts still delivered, and a host
//! that lets compatibility format through caught by the same counters.

use super::*;
use crate::config::{Action, DeviceConfig, HostConfig, PolicyKind, SimConfig, SpoofConfig, Step};
use crate::engine::RunResult;

/// Victim in VM 0 (dev 0), a bystander in VM 1 (dev 1), the forger in VM 1
/// (dev 2). Every device brings up `live` vectors at once; the forger writes
/// from 1 ms on, at 200,000/s, every kind, against devices 0 and 1.
fn forging(iommu: IommuKind, mode: Mode, forger_rate: f64) -> SimConfig {
    let program = |live: u32| {
        let mut p = vec![Step::now(Action::Enable)];
        p.extend((0..live).map(|k| Step::now(Action::Unmask { entry: k })));
        p
    };
    let spoof = SpoofConfig {
        victims: vec![0, 1],
        rate: 200_000.0,
        start_ns: 1_000_000,
        kinds: SpoofKind::ALL.to_vec(),
    };
    SimConfig::builder()
        .host(HostConfig {
            iommu,
            ..HostConfig::default()
        })
        .mode(mode)
        .policy(PolicyKind::Dynamic)
        .device(DeviceConfig::new(8).program(program(6)))
        .device(DeviceConfig::new(8).vm(1).program(program(4)))
        .device(
            DeviceConfig::new(4)
                .vm(1)
                .rate(forger_rate)
                .program(program(2))
                .spoof(spoof),
        )
        .max_time_ns(21_000_000)
        .seed(11)
        .build()
        .unwrap()
}

fn run(cfg: SimConfig) -> RunResult {
    Engine::new(cfg).unwrap().run().unwrap()
}

fn reasons(r: &SpoofReport, kind: SpoofKind) -> Vec<(String, u64)> {
    r.kinds[kind.name()]
        .reasons
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), *n))
        .collect()
}

#[test]
fn intel_blocks_every_kind_for_its_own_reason() {
    for mode in [Mode::Event, Mode::Aggregated] {
        let r = run(forging(IommuKind::Intel, mode, 2_000.0));
        let s = r.spoof.as_ref().unwrap();
        assert_eq!(s.iommu, "intel");
        // 200,000/s for 20 ms: ≈ 4,000 writes, a fifth of each kind.
        assert!((3_500..4_500).contains(&s.attempts()), "{}", s.attempts());
        for (kind, reason) in [
            (SpoofKind::ForeignHandle, "sid_mismatch"),
            (SpoofKind::CompatFormat, "compat_format_blocked"),
            (SpoofKind::ReservedBits, "reserved_request_field"),
            (SpoofKind::OutsideWindow, "not_in_interrupt_window"),
        ] {
            let b = &s.kinds[kind.name()];
            assert!(b.attempts > 700, "{kind:?} {mode:?}");
            assert_eq!(b.blocked, b.attempts, "{kind:?} {mode:?}");
            assert_eq!(reasons(s, kind), [(reason.to_string(), b.attempts)]);
            assert_eq!((b.own_vector, b.cross_device, b.unowned), (0, 0, 0));
        }
        // Sub-handles past a victim's handle name whoever's IRTEs follow
        // it: another device's (SID check), a free one, or the forger's own.
        let sweep = &s.kinds["sub_handle_sweep"];
        let swept = reasons(s, SpoofKind::SubHandleSweep);
        assert!(swept
            .iter()
            .all(|(r, _)| r == "sid_mismatch" || r == "not_present"));
        assert!(swept.len() == 2 && sweep.own_vector > 0, "{sweep:?}");
        assert_eq!(sweep.blocked + sweep.own_vector, sweep.attempts);
        assert_eq!((sweep.cross_device, sweep.unowned), (0, 0));
        // Every write is one fired interrupt, booked blocked unless it
        // reached the forger's own vector; the forger's own vectors (the
        // only other traffic) are delivered.
        let blocked: u64 = s.kinds.values().map(|b| b.blocked).sum();
        assert_eq!(blocked + sweep.own_vector, s.attempts());
        assert_eq!(r.books.get(Outcome::Blocked), blocked, "{mode:?}");
        assert_eq!(r.books.fired, blocked + r.books.get(Outcome::Delivered));
        assert!(r.books.get(Outcome::Delivered) > 50 + sweep.own_vector);
        // Only forged writes fault: all counted, 256 records kept.
        let log = s.fault_log;
        assert_eq!(log.recorded, blocked);
        assert_eq!((log.kept, log.capacity), (256, 256));
        assert_eq!(log.overflowed, log.recorded - log.kept);
        assert_eq!(r.stats.remap_faults, blocked);
    }
}

#[test]
fn amd_looks_every_index_up_in_the_forgers_own_table() {
    let r = run(forging(IommuKind::Amd, Mode::Event, 2_000.0));
    let s = r.spoof.as_ref().unwrap();
    assert_eq!(s.iommu, "amd");
    // The victims' indices 0..6 and 0..4 name the forger's own entries:
    // 0 and 1 are its live vectors, the rest were never allocated.
    let foreign = &s.kinds["foreign_handle"];
    assert_eq!(
        reasons(s, SpoofKind::ForeignHandle),
        [("not_present".to_string(), foreign.blocked)]
    );
    assert!(
        foreign.own_vector > 0 && foreign.blocked > foreign.own_vector,
        "{foreign:?}"
    );
    assert_eq!(foreign.blocked + foreign.own_vector, foreign.attempts);
    // Indices past the victims' own, in the forger's table: mostly never
    // allocated, sometimes its own second vector.
    let sweep = &s.kinds["sub_handle_sweep"];
    assert_eq!(
        reasons(s, SpoofKind::SubHandleSweep),
        [("not_present".to_string(), sweep.blocked)]
    );
    assert!(sweep.own_vector > 0 && sweep.blocked + sweep.own_vector == sweep.attempts);
    // A compat write's data is a vector (≥ 0x20): an unallocated index.
    let compat = &s.kinds["compat_format"];
    assert_eq!(
        reasons(s, SpoofKind::CompatFormat),
        [("not_present".to_string(), compat.attempts)]
    );
    let rb = &s.kinds["reserved_bits"];
    assert_eq!(
        reasons(s, SpoofKind::ReservedBits),
        [("reserved_request_field".to_string(), rb.attempts)]
    );
    let out = &s.kinds["outside_window"];
    assert_eq!(
        reasons(s, SpoofKind::OutsideWindow),
        [("not_in_interrupt_window".to_string(), out.attempts)]
    );
    for b in s.kinds.values() {
        assert_eq!((b.cross_device, b.cross_vm, b.unowned), (0, 0, 0));
    }
    // Own-vector writes are delivered like the forger's own interrupts.
    let blocked: u64 = s.kinds.values().map(|b| b.blocked).sum();
    assert_eq!(r.books.get(Outcome::Blocked), blocked);
    // The event log holds Linux's 512 entries; the rest overflowed.
    assert_eq!(s.fault_log.recorded, blocked);
    assert_eq!((s.fault_log.capacity, s.fault_log.kept), (512, 512));
    assert_eq!(s.fault_log.overflowed, blocked - 512);
}

#[test]
fn the_forgers_own_interrupts_are_delivered() {
    // The same run with the forger's own traffic off: the deliveries
    // missing are its legitimate interrupts, which the IOMMU let through.
    let with = run(forging(IommuKind::Intel, Mode::Event, 2_000.0));
    let without = run(forging(IommuKind::Intel, Mode::Event, 0.0));
    let own_writes = |r: &RunResult| -> u64 {
        r.spoof
            .as_ref()
            .unwrap()
            .kinds
            .values()
            .map(|b| b.own_vector)
            .sum()
    };
    let legit = with.books.get(Outcome::Delivered) - own_writes(&with);
    assert!(legit > 20, "{:?}", with.books);
    // Without it, the only deliveries are forged writes to its own vectors.
    assert_eq!(without.books.get(Outcome::Delivered), own_writes(&without));
}

#[test]
fn a_host_that_lets_compat_format_through_is_caught() {
    // CFI set (what Linux never does): the forged compat writes reach the
    // victims' vectors, and the counters say so.
    let mut e = Engine::new(forging(IommuKind::Intel, Mode::Event, 2_000.0)).unwrap();
    e.host.allow_compat_format();
    let r = e.run().unwrap();
    let c = &r.spoof.as_ref().unwrap().kinds["compat_format"];
    assert_eq!(c.blocked, 0);
    assert_eq!(c.cross_device, c.attempts);
    // Half the writes aim at device 0 (VM 0), half at device 1 (VM 1, the
    // forger's own VM).
    assert!(c.cross_vm > 0 && c.cross_vm < c.cross_device, "{c:?}");
    let s = r.spoof.as_ref().unwrap();
    let own: u64 = s.kinds.values().map(|b| b.own_vector).sum();
    assert_eq!(
        r.books.get(Outcome::Blocked) + c.cross_device + own,
        s.attempts()
    );
}

#[test]
fn a_forger_needs_other_devices_and_a_time_limit() {
    let mut cfg = forging(IommuKind::Intel, Mode::Event, 1.0);
    cfg.devices[2].spoof.as_mut().unwrap().victims = vec![2];
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("devices[2].spoof.victims[0]"), "{e}");
    let mut cfg = forging(IommuKind::Intel, Mode::Event, 1.0);
    cfg.stop.max_time_ns = None;
    cfg.stop.max_resizes = Some(1);
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("stop.max_time_ns"), "{e}");
    let mut cfg = forging(IommuKind::Intel, Mode::Event, 1.0);
    cfg.devices[2].spoof.as_mut().unwrap().kinds.clear();
    assert!(cfg.validate().is_err());
}

#[test]
fn results_round_trip_and_merge_with_the_spoof_report() {
    let r = run(forging(IommuKind::Amd, Mode::Event, 2_000.0));
    let back = RunResult::from_json(&r.to_json().unwrap()).unwrap();
    assert_eq!(back, r);
    let merged = crate::engine::merge_results(&[r.clone(), r.clone()]).unwrap();
    let (m, s) = (merged.spoof.unwrap(), r.spoof.unwrap());
    assert_eq!(m.attempts(), 2 * s.attempts());
    m.check().unwrap();
    // A run without a forger has no report, and its JSON no key.
    let plain = SimConfig::builder()
        .device(DeviceConfig::new(2).program(vec![Step::now(Action::Enable)]))
        .max_time_ns(1_000_000)
        .build()
        .unwrap();
    let p = run(plain);
    assert!(p.spoof.is_none());
    assert!(!p.to_json().unwrap().contains("spoof"));
}

#[test]
fn a_trace_marks_each_blocked_forged_write_without_an_entry() {
    let mut e = Engine::new(forging(IommuKind::Intel, Mode::Event, 2_000.0)).unwrap();
    e.enable_trace(crate::engine::TraceOptions::default())
        .unwrap();
    let r = e.run().unwrap();
    let trace: serde_json::Value = serde_json::from_str(&e.trace_json().unwrap()).unwrap();
    let blocked: Vec<&serde_json::Value> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|ev| ev["name"] == "blocked")
        .collect();
    assert_eq!(blocked.len() as u64, r.books.get(Outcome::Blocked));
    assert!(blocked.iter().all(|ev| ev["args"].get("entry").is_none()));
}
