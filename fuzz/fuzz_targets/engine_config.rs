//! The engine from an arbitrary config: a structured one built from the input, or the input
//! bytes as JSON. Any config the validation accepts must build and run without a panic; every
//! fired interrupt must end in exactly one outcome (per phase too); and a run stepped in a
//! fuzzer-chosen chunk pattern (optionally finished by `run()`) must give the same result, to
//! the byte, as one `run()`.
//!
//! Each exec is kept short: simulated time, rates, CPUs and table sizes are capped here (see
//! `cap`). The caps are the generator's, not the engine's: they keep an exec under a
//! millisecond, and they keep out sizes that validation accepts but that allocate without
//! bound (reported in docs/fuzzing.md).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msixcore_core::books::Outcome;
use msixcore_core::config::{
    Action, ClosedLoop, DeviceConfig, FailureMode, Grant, HandlerConfig, HostConfig, ImsStore,
    IommuKind, Mode, Phase, PolicyConfig, PolicyKind, Semantics, SimConfig, SpoofConfig, SpoofKind,
    Step, StopConfig, TimingConfig,
};
use msixcore_core::engine::Engine;
use msixcore_core::versions::Version;

/// Longest simulated run of one exec (ns).
const MAX_TIME_NS: u64 = 500_000;
/// Highest rate of one vector (per second) in one exec.
const MAX_RATE: f64 = 50_000.0;

#[derive(Arbitrary, Debug)]
struct Chunks {
    sizes: Vec<u32>,
    /// After this many chunks the rest is one `run()`.
    switch: Option<u8>,
}

#[derive(Arbitrary, Debug)]
struct Cfg {
    seed: u64,
    kernel: (u8, u8),
    qemu: (u8, u8),
    aggregated: bool,
    ncpus: u8,
    reservation_mode: Option<bool>,
    early_enable: Option<bool>,
    posted_msi: bool,
    amd: bool,
    iommus: u8,
    irte_order: u8,
    amd_order: u8,
    kvm_routes: u16,
    policy: u8,
    on_failure: u8,
    upfront_count: u16,
    upfront_request_all: bool,
    grant: u8,
    grant_n: u8,
    request_at_grant: bool,
    ims_guest_ram: bool,
    timing: [u16; 7],
    devices: Vec<Dev>,
    service_ns: Option<u16>,
    queue_capacity: u16,
    max_time_ns: Option<u32>,
    max_resizes: Option<u8>,
    stall_timeout_ns: u32,
}

#[derive(Arbitrary, Debug)]
struct Dev {
    vm: u8,
    entries: u8,
    semantics: u8,
    rate: u32,
    probe_rate: Option<u32>,
    rates: Vec<(u8, u32)>,
    program: Vec<(u32, Act)>,
    repeat: bool,
    start_ns: u32,
    closed_loop: Option<(u8, u8, u32, u32)>,
    /// A forging device: (victim offset, writes per second, kinds as a bit mask).
    spoof: Option<(u8, u32, u8)>,
}

#[derive(Arbitrary, Debug)]
enum Act {
    Negotiate(u8, u8),
    Enable,
    Unmask(u8),
    Mask(u8),
    Free(u8),
    Disable,
    Reset,
    Wait,
    Runtime,
    Probe,
}

fn pick<T: Copy>(all: &[T], i: u8) -> T {
    all[usize::from(i) % all.len()]
}

fn rate(r: u32) -> f64 {
    f64::from(r % 50_001)
}

fn build(c: &Cfg) -> SimConfig {
    let devices = c
        .devices
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, d)| {
            let entries = u32::from(d.entries % 17);
            DeviceConfig {
                vm: u32::from(d.vm % 3),
                entries,
                semantics: pick(&Semantics::ALL, d.semantics),
                rate: rate(d.rate),
                probe_rate: d.probe_rate.map(rate),
                rates: d
                    .rates
                    .iter()
                    .take(4)
                    .map(|&(e, r)| (u32::from(e % 34), rate(r)))
                    .collect(),
                program: d
                    .program
                    .iter()
                    .take(24)
                    .map(|(delay, a)| Step {
                        delay_ns: u64::from(delay % 400_000),
                        action: match a {
                            Act::Negotiate(lo, hi) => Action::Negotiate {
                                minvec: u32::from(*lo % 34),
                                maxvec: u32::from(*hi % 34),
                            },
                            Act::Enable => Action::Enable,
                            Act::Unmask(e) => Action::Unmask {
                                entry: u32::from(*e % 34),
                            },
                            Act::Mask(e) => Action::Mask {
                                entry: u32::from(*e % 34),
                            },
                            Act::Free(e) => Action::Free {
                                entry: u32::from(*e % 34),
                            },
                            Act::Disable => Action::Disable,
                            Act::Reset => Action::Reset,
                            Act::Wait => Action::Wait,
                            Act::Runtime => Action::Phase {
                                phase: Phase::Runtime,
                            },
                            Act::Probe => Action::Phase {
                                phase: Phase::Probe,
                            },
                        },
                    })
                    .collect(),
                repeat: d.repeat,
                start_ns: u64::from(d.start_ns % 1_000_000),
                closed_loop: d.closed_loop.map(|(f, depth, lat, to)| ClosedLoop {
                    from_entry: u32::from(f % 34),
                    depth: u32::from(depth % 5),
                    latency_ns: u64::from(lat % 100_000),
                    timeout_ns: u64::from(to % 1_000_000),
                }),
                // Victims are other devices (the validator refuses the forger itself).
                spoof: d.spoof.map(|(v, r, mask)| SpoofConfig {
                    victims: vec![(i as u32 + 1 + u32::from(v % 2)) % 3],
                    rate: rate(r),
                    start_ns: 0,
                    kinds: SpoofKind::ALL
                        .iter()
                        .enumerate()
                        .filter(|(k, _)| mask & (1 << k) != 0)
                        .map(|(_, &k)| k)
                        .collect(),
                }),
            }
        })
        .collect();
    let t = c.timing;
    SimConfig {
        seed: c.seed,
        kernel: Version::new(u16::from(c.kernel.0 % 8), u16::from(c.kernel.1 % 20)),
        qemu: Version::new(u16::from(c.qemu.0 % 11), u16::from(c.qemu.1 % 3)),
        mode: if c.aggregated {
            Mode::Aggregated
        } else {
            Mode::Event
        },
        host: HostConfig {
            ncpus: u32::from(c.ncpus % 9),
            reservation_mode: c.reservation_mode,
            early_enable: c.early_enable,
            posted_msi: c.posted_msi,
            iommu: if c.amd {
                IommuKind::Amd
            } else {
                IommuKind::Intel
            },
            iommus: u32::from(c.iommus % 3),
            irte_entries: 1 << (c.irte_order % 11),
            amd_table_size: 1 << (c.amd_order % 12),
            kvm_routes_per_vm: u32::from(c.kvm_routes % 300),
        },
        policy: PolicyConfig {
            kind: pick(&PolicyKind::ALL, c.policy),
            on_failure: pick(&FailureMode::ALL, c.on_failure),
            upfront_count: u32::from(c.upfront_count % 40),
            upfront_request_all: c.upfront_request_all,
            grant: pick(&Grant::ALL, c.grant),
            grant_n: u32::from(c.grant_n % 40),
            request_at_grant: c.request_at_grant,
            ims_store: if c.ims_guest_ram {
                ImsStore::GuestRam
            } else {
                ImsStore::Device
            },
        },
        timing: TimingConfig {
            w0_ns: u64::from(t[0]),
            w_free_ns: u64::from(t[1] % 2_000),
            w_alloc_ns: u64::from(t[2] % 2_000),
            t_free_irq_ns: u64::from(t[3]),
            t_request_ns: u64::from(t[4]),
            t_dynamic_ns: u64::from(t[5]),
            t_hypercall_ns: u64::from(t[6]),
        },
        devices,
        handler: HandlerConfig {
            service_ns: c.service_ns.map(u64::from),
            queue_capacity: usize::from(c.queue_capacity % 300),
        },
        stop: StopConfig {
            max_time_ns: c.max_time_ns.map(u64::from),
            max_resizes: c.max_resizes.map(u64::from),
        },
        stall_timeout_ns: u64::from(c.stall_timeout_ns),
    }
}

/// Keep an exec short and bounded: time, rates, CPUs, IOMMU and queue sizes. Returns false
/// when the capped config is no longer one validation accepts.
fn cap(cfg: &mut SimConfig) -> bool {
    let t = cfg.stop.max_time_ns.unwrap_or(MAX_TIME_NS);
    cfg.stop.max_time_ns = Some(t.min(MAX_TIME_NS));
    cfg.host.ncpus = cfg.host.ncpus.min(8);
    cfg.host.iommus = cfg.host.iommus.min(2);
    if cfg.host.iommu == IommuKind::Amd {
        // Each AMD IOMMU holds a slot for all 65,536 requester ids: building and dropping
        // them dominated an exec.
        cfg.host.iommus = 1;
    }
    cfg.host.irte_entries = cfg.host.irte_entries.min(1024);
    cfg.handler.queue_capacity = cfg.handler.queue_capacity.min(256);
    cfg.devices.truncate(3);
    for d in &mut cfg.devices {
        d.entries = d.entries.min(32);
        d.rate = d.rate.min(MAX_RATE);
        d.probe_rate = d.probe_rate.map(|r| r.min(MAX_RATE));
        for (_, r) in &mut d.rates {
            *r = r.min(MAX_RATE);
        }
        d.program.truncate(32);
    }
    cfg.validate().is_ok()
}

fn stepped(cfg: SimConfig, chunks: &Chunks) -> Option<String> {
    let mut e = Engine::new(cfg).expect("a config built once builds again");
    let mut t = 0u64;
    let sizes: Vec<u64> = if chunks.sizes.is_empty() {
        vec![100_000]
    } else {
        chunks
            .sizes
            .iter()
            .take(8)
            .map(|&s| u64::from(s % 700_000) + 1)
            .collect()
    };
    for n in 0.. {
        // At most 200 steps (chunks can be 1 ns), then the rest in one run().
        if chunks.switch.is_some_and(|s| usize::from(s) == n) || n == 200 {
            return e.run().ok().map(|r| r.to_json().unwrap());
        }
        t = t.saturating_add(sizes[n % sizes.len()]);
        match e.step_until(t) {
            Ok(true) => return e.result().ok().map(|r| r.to_json().unwrap()),
            Ok(false) => {}
            Err(_) => return None,
        }
    }
    None
}

fn check(mut cfg: SimConfig, chunks: &Chunks) {
    if !cap(&mut cfg) {
        return;
    }
    let Ok(mut e) = Engine::new(cfg.clone()) else {
        return;
    };
    let whole = e.run();
    let Ok(result) = whole else {
        // A run may fail (a typed error, never a panic); stepping must fail too.
        assert!(
            stepped(cfg, chunks).is_none(),
            "run() failed, stepping did not"
        );
        return;
    };
    // Conservation: every fired interrupt is in exactly one book, per phase as well.
    let b = result.books;
    assert_eq!(b.fired, Outcome::ALL.iter().map(|&o| b.get(o)).sum::<u64>());
    b.check().unwrap();
    assert_eq!(
        result
            .phases
            .total()
            .expect("phase books add up within u64"),
        b,
        "phase books do not sum to the totals"
    );
    result.phases.check().unwrap();
    assert!(result.stats.end_time_ns <= cfg.stop.max_time_ns.unwrap());
    let json = result.to_json().unwrap();
    assert_eq!(
        stepped(cfg, chunks).as_deref(),
        Some(json.as_str()),
        "stepping changed the result"
    );
}

// An input starting with `{` is a JSON config (so JSON files seed the corpus as they are),
// stepped in chunks derived from its bytes; anything else builds a structured config.
fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        let sum = data
            .iter()
            .fold(0u32, |s, &b| s.wrapping_mul(31).wrapping_add(u32::from(b)));
        let chunks = Chunks {
            sizes: vec![sum, sum.rotate_left(11), 1_000],
            switch: (sum % 3 == 0).then_some((sum >> 8) as u8),
        };
        if let Ok(cfg) = SimConfig::from_json(text) {
            check(cfg, &chunks);
        }
        return;
    }
    let mut u = arbitrary::Unstructured::new(data);
    let (Ok(c), Ok(chunks)) = (Cfg::arbitrary(&mut u), Chunks::arbitrary(&mut u)) else {
        return;
    };
    check(build(&c), &chunks);
});
