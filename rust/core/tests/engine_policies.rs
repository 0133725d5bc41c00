//! Policies under host failure, device event semantics, IMS, and the books.

use msixcore_core::books::Outcome;
use msixcore_core::config::{
    Action, DeviceConfig, FailureMode, Grant, ImsStore, IommuKind, Mode, PolicyKind, Semantics,
    SimConfig, SimConfigBuilder, Step,
};
use msixcore_core::engine::{Engine, RunResult};

/// One device: negotiate, enable, unmask 0..n ascending `gap` apart, then
/// stop (no repeat).
fn device(entries: u32, n: u32, gap: u64, rate: f64, semantics: Semantics) -> DeviceConfig {
    let mut program = vec![
        Step::now(Action::Negotiate {
            minvec: 1,
            maxvec: entries,
        }),
        Step::now(Action::Enable),
    ];
    program.extend((0..n).map(|k| Step::after(gap, Action::Unmask { entry: k })));
    DeviceConfig::new(entries)
        .semantics(semantics)
        .rate(rate)
        .program(program)
}

/// `devices` under `policy` at seed 3, every other field at its default;
/// add a stop condition.
fn config(devices: impl IntoIterator<Item = DeviceConfig>, policy: PolicyKind) -> SimConfigBuilder {
    SimConfig::builder().seed(3).policy(policy).devices(devices)
}

fn run(cfg: SimConfigBuilder) -> RunResult {
    let r = Engine::new(cfg.build().unwrap()).unwrap().run().unwrap();
    r.books.check().unwrap();
    r
}

/// A 1-CPU host has ~190 free vectors: a 256-entry device unmasking every
/// entry runs out during a resize.
fn exhausting(mode: FailureMode) -> RunResult {
    let devs = [device(256, 256, 100_000, 1_000.0, Semantics::Edge)];
    run(config(devs, PolicyKind::Noresize)
        .max_time_ns(200_000_000)
        .with_host(|h| h.ncpus = 1)
        .on_failure(mode))
}

#[test]
fn qemu_failure_mode_leaves_every_vector_dead() {
    let r = exhausting(FailureMode::Qemu);
    assert!(r.stats.alloc_failures > 0);
    assert!(
        r.stats.dead_marks > 100,
        "every live vector is dead: {}",
        r.stats.dead_marks
    );
    assert!(r.books.get(Outcome::Failed) > 0);
    assert_eq!(r.stats.guest_kills, 0);
    // The host keeps only what the partial recovery wires up.
    assert!(r.stats.final_usage.cpu_vectors < r.stats.peak_usage.cpu_vectors);
}

#[test]
fn kill_failure_mode_kills_the_guest_and_stops_its_sources() {
    let r = exhausting(FailureMode::Kill);
    assert_eq!(r.stats.guest_kills, 1);
    assert_eq!(r.books.get(Outcome::Failed), 0);
    assert_eq!(r.stats.dead_marks, 0);
}

#[test]
fn fail_request_mode_refuses_and_keeps_the_rest_working() {
    let r = exhausting(FailureMode::FailRequest);
    assert!(r.stats.unmasks_refused > 0);
    assert_eq!(r.books.get(Outcome::Failed), 0);
    assert_eq!(r.stats.guest_kills, 0);
    // Vectors granted before the failure go on delivering to the end.
    assert!(r.stats.final_usage.cpu_vectors > 100);
}

#[test]
fn pba_and_level_devices_delay_instead_of_losing() {
    for semantics in [Semantics::Pba, Semantics::Level] {
        let devs = [device(32, 32, 50_000, 200_000.0, semantics)];
        let r = run(config(devs, PolicyKind::Noresize).max_time_ns(3_000_000));
        assert_eq!(r.books.get(Outcome::Lost), 0, "{semantics:?}");
        assert!(
            r.books.get(Outcome::Coalesced) > 0,
            "{semantics:?}: fires merge into pending bits"
        );
        assert!(r.stats.resizes == 32);
    }
    let devs = [device(32, 32, 50_000, 200_000.0, Semantics::EdgeIntx)];
    let r = run(config(devs, PolicyKind::Noresize).max_time_ns(3_000_000));
    assert!(r.books.get(Outcome::Intx) > 0);
    assert_eq!(r.books.get(Outcome::Lost), 0);
}

#[test]
fn lost_interrupts_leave_stale_queues_until_the_next_one_or_the_timeout() {
    let dev = || device(16, 16, 100_000, 20_000.0, Semantics::Edge);
    let r = run(config([dev()], PolicyKind::Noresize)
        .max_time_ns(5_000_000)
        .stall_timeout_ns(1_000_000));
    assert!(r.stats.stalls > 0);
    assert!(r.stats.stall_time_ns > 0);
    // Each stall lasts at most the timeout.
    assert!(r.stats.stall_time_ns <= (r.stats.stalls) * 1_000_000);
    let r = run(config([dev()], PolicyKind::Dynamic).max_time_ns(5_000_000));
    assert_eq!(r.stats.stalls, 0);
}

#[test]
fn hypercall_grants_what_fits_or_refuses() {
    let dev = || device(16, 16, 10_000, 10_000.0, Semantics::Edge);
    // Grant at most 4: the driver uses 4 vectors, the rest are skipped.
    let r = run(config([dev()], PolicyKind::Hypercall)
        .max_time_ns(2_000_000)
        .with_policy(|p| {
            p.grant = Grant::N;
            p.grant_n = 4;
        }));
    assert_eq!(r.stats.unmasks_skipped, 12);
    assert_eq!(r.stats.final_usage.cpu_vectors, 4);
    assert_eq!(r.books.get(Outcome::Lost), 0);
    // Refuse: the driver gets nothing and never unmasks.
    let r = run(config([dev()], PolicyKind::Hypercall)
        .max_time_ns(2_000_000)
        .with_policy(|p| p.grant = Grant::Refuse));
    assert_eq!(r.stats.negotiations_refused, 1);
    assert_eq!(r.books.fired, 0);
    // On a 1-CPU host, a 256-vector request when every granted vector is
    // requested at MSIX_ENABLE: granted as much as fits.
    let devs = || [device(256, 256, 10_000, 1_000.0, Semantics::Edge)];
    let r = run(config(devs(), PolicyKind::Hypercall)
        .max_time_ns(10_000_000)
        .with_host(|h| h.ncpus = 1)
        .with_policy(|p| p.request_at_grant = true));
    let granted = r.stats.final_usage.cpu_vectors;
    assert!((150..256).contains(&granted), "granted {granted}");
    assert_eq!(r.stats.unmasks_skipped, 256 - granted);
    assert_eq!(r.books.get(Outcome::Failed), 0);
    // As the seed proposes it: the grant only allocates (reservations), and
    // each request_irq at the guest's unmask can still fail — and is counted.
    let r = run(config(devs(), PolicyKind::Hypercall)
        .max_time_ns(10_000_000)
        .with_host(|h| h.ncpus = 1));
    assert_eq!(r.stats.unmasks_skipped, 0, "all 256 granted");
    assert_eq!(r.stats.final_usage.irtes, 256);
    assert!((150..256).contains(&r.stats.final_usage.cpu_vectors));
    assert!(r.stats.alloc_failures > 0 && r.stats.dead_marks > 0);
    assert!(r.books.get(Outcome::Failed) > 0);
}

#[test]
fn a_short_grant_spreads_the_queues_instead_of_dropping_them() {
    // 16 queues at 10,000/s each; a grant of 4 vectors: the driver spreads
    // its 16 queues over the 4, so the device's traffic is the same.
    let dev = || device(16, 16, 10_000, 10_000.0, Semantics::Edge);
    let full = run(config([dev()], PolicyKind::Hypercall).max_time_ns(50_000_000));
    let short = run(config([dev()], PolicyKind::Hypercall)
        .max_time_ns(50_000_000)
        .with_policy(|p| {
            p.grant = Grant::N;
            p.grant_n = 4;
        }));
    assert_eq!(short.stats.peak_usage.cpu_vectors, 4);
    let (a, b) = (full.books.fired as f64, short.books.fired as f64);
    assert!(
        (a - b).abs() < 5.0 * a.sqrt(),
        "fired {a} with 16 vectors, {b} with 4"
    );
}

#[test]
fn ims_in_guest_ram_fails_visibly_without_a_hypercall() {
    let mut dev = device(8, 8, 10_000, 10_000.0, Semantics::Edge);
    dev.program.remove(0); // no negotiation: an unaware guest
    let r = run(config([dev], PolicyKind::Ims)
        .max_time_ns(2_000_000)
        .with_policy(|p| p.ims_store = ImsStore::GuestRam));
    assert!(r.books.get(Outcome::Failed) > 0);
    assert_eq!(r.books.get(Outcome::Delivered), 0);
    // With the hypercall it works.
    let devs = [device(8, 8, 10_000, 10_000.0, Semantics::Edge)];
    let r = run(config(devs, PolicyKind::Ims)
        .max_time_ns(2_000_000)
        .with_policy(|p| p.ims_store = ImsStore::GuestRam));
    assert_eq!(r.books.get(Outcome::Failed), 0);
    assert!(r.books.get(Outcome::Delivered) > 0);
}

#[test]
fn upfront_without_reservation_mode_holds_every_vector() {
    let upfront = |reservation_mode: bool| {
        let devs = [device(64, 2, 10_000, 0.0, Semantics::Edge)];
        run(config(devs, PolicyKind::Upfront)
            .max_time_ns(1_000_000)
            .with_host(|h| h.reservation_mode = Some(reservation_mode)))
    };
    let r = upfront(false);
    assert_eq!(r.stats.peak_usage.cpu_vectors, 64);
    assert_eq!(r.stats.peak_usage.irtes, 64);
    let r = upfront(true);
    assert_eq!(r.stats.peak_usage.cpu_vectors, 2);
    assert_eq!(r.stats.peak_usage.irtes, 64);
    assert_eq!(r.stats.peak_usage.irq_descs, 64);
}

#[test]
fn amd_iommu_routes_and_counts_per_device_tables() {
    let devs = vec![device(16, 16, 10_000, 50_000.0, Semantics::Edge); 2];
    let r = run(config(devs, PolicyKind::Dynamic)
        .max_time_ns(2_000_000)
        .with_host(|h| h.iommu = IommuKind::Amd));
    assert!(r.books.get(Outcome::Delivered) > 0);
    assert_eq!(r.books.get(Outcome::Blocked), 0);
    assert_eq!(r.stats.final_usage.irtes, 32);
}

#[test]
fn a_freed_vector_stops_its_source() {
    let mut dev = device(4, 4, 10_000, 100_000.0, Semantics::Edge);
    dev.program
        .extend((0..4).map(|k| Step::now(Action::Free { entry: k })));
    let r = run(config([dev], PolicyKind::Noresize).max_time_ns(50_000_000));
    // Live for ~10-40 µs each at 100k/s: a handful of fires, then silence.
    assert!(r.books.fired < 100, "fired {}", r.books.fired);
}

#[test]
fn qemu_holds_one_interrupt_per_guest_masked_vector_until_the_unmask() {
    // Four vectors at 100k/s, masked by the guest for 10 ms, then unmasked:
    // the device keeps firing, QEMU's emulated PBA holds one per vector
    // (the rest coalesce) and sends it at the unmask. Nothing is lost.
    for mode in [Mode::Event, Mode::Aggregated] {
        let mut dev = device(4, 4, 10_000, 100_000.0, Semantics::Edge);
        dev.program
            .extend((0..4).map(|k| Step::now(Action::Mask { entry: k })));
        dev.program.push(Step::after(10_000_000, Action::Wait));
        dev.program
            .extend((0..4).map(|k| Step::now(Action::Unmask { entry: k })));
        let r = run(config([dev.clone()], PolicyKind::Dynamic)
            .mode(mode)
            .max_time_ns(11_000_000));
        let coalesced = r.books.get(Outcome::Coalesced);
        // ≈ 4 × 100k/s × 10 ms = 4,000 fires while masked, all but 4 merged.
        assert!(
            (3_500..=4_500).contains(&coalesced),
            "{mode:?}: {coalesced}"
        );
        assert_eq!(
            r.books.get(Outcome::Pending),
            0,
            "{mode:?}: all sent at the unmask"
        );
        assert_eq!(r.books.get(Outcome::Lost), 0, "{mode:?}");
        // Masked at the end of the run instead: each vector's one held
        // interrupt is still pending in QEMU's PBA.
        dev.program.truncate(dev.program.len() - 4);
        let r = run(config([dev], PolicyKind::Dynamic)
            .mode(mode)
            .max_time_ns(11_000_000));
        assert_eq!(r.books.get(Outcome::Pending), 4, "{mode:?}");
    }
}

/// Many devices on a 1-CPU host without reservation mode: enables run out.
fn crowded(mode: FailureMode, policy: PolicyKind) -> RunResult {
    let devs = (0..8).map(|i| {
        device(64, 4, 10_000, 1_000.0, Semantics::Edge)
            .vm(i)
            .start_ns(u64::from(i) * 1_000_000)
    });
    run(config(devs, policy)
        .max_time_ns(20_000_000)
        .with_host(|h| {
            h.ncpus = 1;
            h.reservation_mode = Some(false);
        })
        .on_failure(mode))
}

#[test]
fn a_refused_enable_leaves_the_driver_without_msix() {
    let r = crowded(FailureMode::FailRequest, PolicyKind::Upfront);
    assert!(r.stats.enables_refused > 0);
    assert_eq!(
        r.books.get(Outcome::Lost),
        0,
        "no vector of a refused device goes live"
    );
    assert_eq!(r.books.get(Outcome::Failed), 0);
    let r = crowded(FailureMode::Qemu, PolicyKind::Upfront);
    assert!(r.books.get(Outcome::Failed) > 0);
    let r = crowded(FailureMode::Kill, PolicyKind::Upfront);
    assert!(r.stats.guest_kills > 0);
}

#[test]
fn a_refused_hypercall_never_falls_back_to_trapping() {
    let r = crowded(FailureMode::Kill, PolicyKind::Hypercall);
    // Grants shrink to what fits; once nothing fits the driver is refused
    // and runs without MSI-X: nobody is killed, nothing is lost.
    assert_eq!(r.stats.guest_kills, 0);
    assert_eq!(r.books.get(Outcome::Lost), 0);
    assert!(r.stats.negotiations_refused > 0);
}

#[test]
fn a_resize_bound_that_can_never_be_reached_ends_when_the_programs_do() {
    // Four unmasks, a bound of 100 resize requests, no time limit: the run
    // must end once the program is done (live sources must not run forever).
    let devs = [device(4, 4, 1_000, 50_000.0, Semantics::Edge)];
    let r = run(config(devs, PolicyKind::Noresize).max_resizes(100));
    assert_eq!(r.stats.resize_requests, 4);
    assert!(r.books.fired < 1_000);
}
