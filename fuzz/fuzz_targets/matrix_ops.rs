//! `IrqMatrix` under arbitrary sequences of the calls the kernel makes (kernel/irq/matrix.c
//! semantics, including its counter drift), with every counter recounted after every op from
//! the per-CPU maps read through the public accessors, the CPU choices of `alloc` and
//! `alloc_managed` compared with a plain scan, `alloc_any` compared with `alloc(0..ncpus)` (the
//! best-CPU buckets against the scan), and `debug_show` / `Debug` run on the result.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msixcore_core::matrix::{IrqMatrix, VectorBitmap, X86Preset};

#[derive(Arbitrary, Debug)]
enum Setup {
    Custom {
        matrix_bits: u8,
        start: u8,
        end: u8,
        ncpus: u8,
        system: Vec<u8>,
        online: Vec<u8>,
    },
    X86 {
        ncpus: u8,
        posted: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Op {
    Online(u8),
    Offline(u8),
    ReserveManaged(Vec<u8>),
    RemoveManaged(Vec<u8>),
    AllocManaged(Vec<u8>),
    Assign(u8, u8),
    Reserve,
    RemoveReserved,
    Alloc(Vec<u8>, bool),
    AllocAny(bool),
    FreeHeld(u16),
    FreeRandom(u8, u8),
    Query(u8, i32),
}

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    ops: Vec<Op>,
}

/// What the harness knows beyond the matrix: the vectors it holds and the kernel's drift.
struct Books {
    /// (cpu, bit, managed) of every allocated vector.
    held: Vec<(u32, u32, bool)>,
    reservations: u32,
    /// Per CPU: managed reservations added (+1) or removed (-1) while the CPU was offline but
    /// initialized; `available` is not adjusted then (matrix.c only touches online CPUs).
    drift: Vec<u32>,
    /// Frees on offline CPUs: `total_allocated` is only lowered for online CPUs.
    offline_frees: u32,
    pr_warnings: u64,
}

fn mask(m: &IrqMatrix, v: &[u8]) -> Vec<u32> {
    let n = m.ncpus();
    let mut out: Vec<u32> = v.iter().take(8).map(|&c| u32::from(c) % n).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Bits a new allocation on `cpu` may not take.
fn busy(m: &IrqMatrix, cpu: u32) -> VectorBitmap {
    let cm = m.cpu(cpu).unwrap();
    *cm.alloc_map() | *cm.managed_map() | *m.system_map()
}

fn first_free(m: &IrqMatrix, cpu: u32) -> Option<u32> {
    let b = busy(m, cpu);
    (m.alloc_start()..m.alloc_end()).find(|&bit| !b.contains(bit))
}

/// `matrix_find_best_cpu`: largest non-zero `available` among online CPUs, lowest on ties.
fn best_cpu(m: &IrqMatrix, cpus: &[u32]) -> Option<u32> {
    let mut best: Option<(u32, u32)> = None;
    for &c in cpus {
        let cm = m.cpu(c).unwrap();
        if !cm.online() || cm.available() == 0 {
            continue;
        }
        if best.is_none_or(|(_, a)| cm.available() > a) {
            best = Some((c, cm.available()));
        }
    }
    best.map(|b| b.0)
}

/// `matrix_find_best_cpu_managed`: fewest `managed_allocated` among online CPUs, highest on ties.
fn best_managed_cpu(m: &IrqMatrix, cpus: &[u32]) -> Option<u32> {
    let mut best: Option<(u32, u32)> = None;
    for &c in cpus {
        let cm = m.cpu(c).unwrap();
        if !cm.online() {
            continue;
        }
        if best.is_none_or(|(_, ma)| cm.managed_allocated() <= ma) {
            best = Some((c, cm.managed_allocated()));
        }
    }
    best.map(|b| b.0)
}

fn and_count(a: &VectorBitmap, b: &VectorBitmap) -> u32 {
    a.words()
        .iter()
        .zip(b.words())
        .map(|(x, y)| (x & y).count_ones())
        .sum()
}

/// Every counter against a recount from the per-CPU maps and the harness's books.
fn recount(m: &IrqMatrix, b: &Books) {
    let cpus = m.cpus();
    let online = cpus.iter().filter(|c| c.online()).count() as u32;
    assert_eq!(m.online_maps(), online, "online_maps");
    let avl = cpus
        .iter()
        .filter(|c| c.online())
        .fold(0u32, |s, c| s.wrapping_add(c.available()));
    assert_eq!(m.global_available(), avl, "global_available");
    assert_eq!(m.global_reserved(), b.reservations, "global_reserved");
    assert_eq!(m.reserved(), b.reservations);
    let allocated = cpus.iter().fold(0u32, |s, c| s.wrapping_add(c.allocated()));
    assert_eq!(
        m.total_allocated(),
        allocated.wrapping_add(b.offline_frees),
        "total_allocated"
    );
    assert_eq!(m.pr_warnings(), b.pr_warnings, "pr_warnings");
    let range = m.alloc_start()..m.alloc_end();
    let sys_in = m.system_map().iter().filter(|v| range.contains(v)).count() as u32;
    assert_eq!(m.systembits_inalloc(), sys_in, "systembits_inalloc");
    let mut held = 0usize;
    for (i, cm) in cpus.iter().enumerate() {
        let cpu = i as u32;
        assert_eq!(cm.managed(), cm.managed_map().count(), "managed, cpu {cpu}");
        assert_eq!(
            cm.allocated(),
            cm.alloc_map().count(),
            "allocated, cpu {cpu}"
        );
        let ma = and_count(cm.alloc_map(), cm.managed_map());
        assert_eq!(cm.managed_allocated(), ma, "managed_allocated, cpu {cpu}");
        assert_eq!(
            m.allocated(cpu).unwrap(),
            cm.allocated().wrapping_sub(cm.managed_allocated())
        );
        assert!(cm.alloc_map().iter().all(|v| range.contains(&v)));
        assert!(cm.managed_map().iter().all(|v| range.contains(&v)));
        assert_eq!(
            and_count(cm.alloc_map(), m.system_map()),
            0,
            "system bit allocated"
        );
        assert_eq!(
            and_count(cm.managed_map(), m.system_map()),
            0,
            "system bit managed"
        );
        if cm.initialized() {
            let want = m
                .alloc_size()
                .wrapping_sub(sys_in)
                .wrapping_sub(cm.managed())
                .wrapping_sub(cm.allocated() - cm.managed_allocated())
                .wrapping_add(b.drift[i]);
            assert_eq!(cm.available(), want, "available, cpu {cpu}");
        } else {
            assert!(!cm.online());
            assert_eq!(cm.available(), 0);
            assert_eq!(cm.allocated(), 0);
        }
        held += cm.allocated() as usize;
    }
    // The held vectors are distinct (each came from an allocation of a free bit), so with the
    // count equal they are exactly the allocated bits.
    for &(c, v, managed) in &b.held {
        let cm = m.cpu(c).unwrap();
        assert!(cm.alloc_map().contains(v), "held {c}/{v} not allocated");
        assert_eq!(
            cm.managed_map().contains(v),
            managed,
            "managed flag of {c}/{v}"
        );
    }
    assert_eq!(held, b.held.len(), "held vectors missing from the maps");
}

fn setup(s: &Setup) -> Option<(IrqMatrix, Books)> {
    let m = match s {
        Setup::X86 { ncpus, posted } => {
            let preset = if *posted {
                X86Preset::posted_msi()
            } else {
                X86Preset::mainline()
            };
            IrqMatrix::x86(u32::from(*ncpus % 40) + 1, &preset).unwrap()
        }
        Setup::Custom {
            matrix_bits,
            start,
            end,
            ncpus,
            system,
            online,
        } => {
            let bits = u32::from(*matrix_bits) + 1;
            let (start, end) = (u32::from(*start), u32::from(*end));
            let ncpus = u32::from(*ncpus % 40) + 1;
            let Ok(mut m) = IrqMatrix::new(bits, start, end, ncpus) else {
                assert!(start > end || end > bits);
                return None;
            };
            // Each system bit once, as lapic_assign_system_vectors walks a bitmap (matrix.c
            // counts a bit assigned twice twice in systembits_inalloc).
            let mut system: Vec<u8> = system.iter().take(16).copied().collect();
            system.sort_unstable();
            system.dedup();
            for &v in &system {
                let before = m.clone();
                if m.assign_system(0, u32::from(v), false).is_err() {
                    assert!(u32::from(v) >= bits);
                    assert_eq!(m, before);
                }
            }
            let _ = m.online(0);
            for &c in online.iter().take(40) {
                let _ = m.online(u32::from(c) % ncpus);
            }
            m
        }
    };
    let held = m.cpus()[0]
        .alloc_map()
        .iter()
        .map(|v| (0, v, false))
        .collect();
    let books = Books {
        held,
        reservations: 0,
        drift: vec![0; m.ncpus() as usize],
        offline_frees: 0,
        pr_warnings: 0,
    };
    Some((m, books))
}

fuzz_target!(|input: Input| {
    let Some((mut m, mut b)) = setup(&input.setup) else {
        return;
    };
    recount(&m, &b);
    let n = m.ncpus();
    for op in input.ops.iter().take(128) {
        let before = m.clone();
        match op {
            Op::Online(c) => {
                let c = u32::from(*c) % (n + 1);
                let r = m.online(c);
                if c >= n || before.is_online(c) {
                    assert!(r.is_err());
                    assert_eq!(m, before);
                } else {
                    r.unwrap();
                }
            }
            Op::Offline(c) => {
                let c = u32::from(*c) % (n + 1);
                if c >= n {
                    assert!(m.offline(c).is_err());
                    assert_eq!(m, before);
                } else if before.is_online(c) {
                    m.offline(c).unwrap();
                }
            }
            Op::ReserveManaged(v) => {
                let cpus = mask(&m, v);
                if m.reserve_managed(&cpus).is_ok() {
                    for &c in &cpus {
                        let cm = before.cpu(c).unwrap();
                        if cm.initialized() && !cm.online() {
                            b.drift[c as usize] = b.drift[c as usize].wrapping_add(1);
                        }
                        assert_eq!(m.cpu(c).unwrap().managed(), cm.managed() + 1);
                    }
                } else {
                    // Rolled back: every counter as before (the kernel's rollback may clear
                    // a different managed bit than the one it set, so maps are not compared).
                    assert!(cpus.iter().any(|&c| first_free(&before, c).is_none()));
                    for (x, y) in m.cpus().iter().zip(before.cpus()) {
                        assert_eq!(
                            (x.managed(), x.available(), x.allocated()),
                            (y.managed(), y.available(), y.allocated())
                        );
                    }
                    assert_eq!(m.global_available(), before.global_available());
                }
            }
            Op::RemoveManaged(v) => {
                let cpus = mask(&m, v);
                let mut warns = false;
                for &c in &cpus {
                    let cm = before.cpu(c).unwrap();
                    let free_managed = cm.managed_map().iter().any(|x| !cm.alloc_map().contains(x));
                    if cm.managed() == 0 || !free_managed {
                        warns = true;
                    } else if cm.initialized() && !cm.online() {
                        b.drift[c as usize] = b.drift[c as usize].wrapping_sub(1);
                    }
                }
                assert_eq!(m.remove_managed(&cpus).is_err(), warns);
            }
            Op::AllocManaged(v) => {
                let cpus = mask(&m, v);
                match m.alloc_managed(&cpus) {
                    Ok((c, bit)) => {
                        assert_eq!(Some(c), best_managed_cpu(&before, &cpus));
                        let cm = before.cpu(c).unwrap();
                        let want = cm
                            .managed_map()
                            .iter()
                            .find(|x| !cm.alloc_map().contains(*x));
                        assert_eq!(Some(bit), want, "alloc_managed bit on cpu {c}");
                        b.held.push((c, bit, true));
                    }
                    Err(_) => assert_eq!(m, before),
                }
            }
            Op::Assign(c, bit) => {
                let (c, bit) = (u32::from(*c) % n, u32::from(*bit));
                // The kernel assigns on the local (online) CPU; a bit in use is a WARN.
                if !before.is_online(c) {
                    continue;
                }
                let range = m.alloc_start()..m.alloc_end();
                let taken = busy(&before, c).contains(bit);
                if !range.contains(&bit) || before.cpu(c).unwrap().alloc_map().contains(bit) {
                    assert!(m.assign(c, bit).is_err());
                    assert_eq!(m, before);
                } else if !taken {
                    m.assign(c, bit).unwrap();
                    b.held.push((c, bit, false));
                }
            }
            Op::Reserve => {
                if before.global_reserved() == before.global_available() {
                    b.pr_warnings += 1;
                }
                m.reserve();
                b.reservations += 1;
            }
            Op::RemoveReserved => {
                if b.reservations > 0 {
                    m.remove_reserved();
                    b.reservations -= 1;
                }
            }
            Op::Alloc(_, reserved) | Op::AllocAny(reserved) => {
                let reserved = *reserved && b.reservations > 0;
                let (cpus, r) = match op {
                    Op::Alloc(..) => {
                        let cpus = mask(&m, v_of(op));
                        let r = m.alloc(&cpus, reserved);
                        (cpus, r)
                    }
                    _ => {
                        let r = m.alloc_any(reserved);
                        // The tree's pick equals the scan over the mask 0..ncpus.
                        let all: Vec<u32> = (0..n).collect();
                        let mut twin = before.clone();
                        let t = twin.alloc(&all, reserved);
                        assert_eq!(r.as_ref().ok(), t.as_ref().ok(), "alloc_any vs alloc(all)");
                        assert_eq!(m, twin);
                        (all, r)
                    }
                };
                let want_cpu = best_cpu(&before, &cpus);
                match r {
                    Ok((c, bit)) => {
                        assert_eq!(Some(c), want_cpu, "alloc cpu");
                        assert_eq!(Some(bit), first_free(&before, c), "alloc bit");
                        if reserved {
                            b.reservations -= 1;
                        }
                        b.held.push((c, bit, false));
                    }
                    Err(_) => {
                        assert!(want_cpu.is_none_or(|c| first_free(&before, c).is_none()));
                        assert_eq!(m, before);
                    }
                }
            }
            Op::FreeHeld(i) => {
                if b.held.is_empty() {
                    continue;
                }
                let (c, bit, managed) = b.held.swap_remove(usize::from(*i) % b.held.len());
                m.free(c, bit, managed).unwrap();
                if !before.is_online(c) {
                    b.offline_frees = b.offline_frees.wrapping_add(1);
                }
            }
            Op::FreeRandom(c, bit) => {
                let (c, bit) = (u32::from(*c) % n, u32::from(*bit));
                let allocated = before.cpu(c).unwrap().alloc_map().contains(bit);
                if !allocated {
                    assert!(m.free(c, bit, false).is_err());
                    assert!(m.free(c, bit, true).is_err());
                    assert_eq!(m, before);
                }
            }
            Op::Query(c, ind) => {
                let c = u32::from(*c) % (n + 1);
                assert_eq!(m.available(Some(c)).is_ok(), c < n);
                assert_eq!(m.allocated(c).is_ok(), c < n);
                assert_eq!(m.cpu(c).is_ok(), c < n);
                // Widths are clamped to 2^23 - 1 as in vsprintf: keep them small for speed.
                let text = m
                    .debug_show(*ind % 64)
                    .expect("a narrow dump fits its bound");
                assert_eq!(text.lines().count(), 6 + m.online_maps() as usize);
                assert!(text.ends_with('\n'));
                let _ = format!("{m:?}");
                assert_eq!(m, before);
            }
        }
        recount(&m, &b);
    }
    // After any sequence the debug dumps work.
    m.debug_show(-3).expect("a narrow dump fits its bound");
    let _ = format!("{m:?}");
});

fn v_of(op: &Op) -> &[u8] {
    match op {
        Op::Alloc(v, _) => v,
        _ => &[],
    }
}
