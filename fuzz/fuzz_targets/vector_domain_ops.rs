//! `VectorDomain` under arbitrary lifecycles (alloc, activate, deactivate, set affinity,
//! complete move, CPU offline/online, free; reservation mode on or off, managed irqs, NUMA
//! nodes, legacy irqs, small vector spaces that run out). After every op the domain's books
//! are recounted from its irqs and the matrix maps, and no requested irq sits on an offline
//! CPU except where Linux leaves it there too: a regular irq whose startup move
//! (`irq_setup_affinity`, result ignored by `irq_startup`) or hotplug migration (`pr_warn`
//! "set affinity failed") found no room.
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msixcore_core::matrix::X86Preset;
use msixcore_core::vector_domain::{BootOptions, IrqInfo, IrqState, VectorDomain};

#[derive(Arbitrary, Debug)]
struct Input {
    ncpus: u8,
    reservation_mode: bool,
    /// 0: mainline, 1: posted MSI, else a tiny vector space (exhaustion).
    preset: u8,
    nodes: Option<Vec<u8>>,
    online: Option<Vec<u8>>,
    trace: bool,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Alloc(Option<Vec<u8>>, bool, Option<u8>),
    AllocAt(u16, Option<Vec<u8>>, bool),
    AllocLegacy(u8, bool),
    Activate(u8),
    Deactivate(u8),
    Free(u8),
    Offline(u8),
    Online(u8),
    SetAffinity(u8, Vec<u8>),
    CompleteMove(u8),
    Query(i8),
}

fn preset(p: u8) -> X86Preset {
    match p % 4 {
        0 => X86Preset::mainline(),
        1 => X86Preset::posted_msi(),
        // Room for a handful of vectors per CPU: exhaustion paths are reached quickly.
        _ => X86Preset::build("tiny", 0x20 + u32::from(p / 4 % 12) + 1, false, 0),
    }
}

fn cpus(v: &[u8], n: u32) -> Vec<u32> {
    v.iter().take(6).map(|&c| u32::from(c) % n).collect()
}

fn pick(d: &VectorDomain, i: u8) -> Option<u32> {
    let n = d.nr_irqs();
    (n > 0).then(|| d.irqs().nth(usize::from(i) % n).map(|(k, _)| k))?
}

/// The mask `irq_setup_affinity` hands to `irq_do_set_affinity` at startup.
fn startup_mask(d: &VectorDomain, info: &IrqInfo, node_of: &[u32]) -> Vec<u32> {
    let online = d.online_cpus();
    let own: Vec<u32> = info
        .affinity()
        .iter()
        .copied()
        .filter(|&c| d.cpu_is_online(c))
        .collect();
    let mut mask = if info.affinity_set() && !own.is_empty() {
        own
    } else {
        online.clone()
    };
    if mask.is_empty() {
        mask = online;
    }
    if let Some(node) = info.node() {
        let narrowed: Vec<u32> = mask
            .iter()
            .copied()
            .filter(|&c| node_of[c as usize] == node)
            .collect();
        if !narrowed.is_empty() {
            mask = narrowed;
        }
    }
    mask
}

/// The matrix's state for "nothing changes" checks: every counter and allocation map, but
/// not the `pr_warn` count (a failed allocation takes its global reservation back, the
/// kernel's "reservation exceeds available" message stays printed) and not which managed bits
/// are reserved (a failed `reserve_managed` rolls back with `remove_managed`, which clears the
/// lowest unallocated managed bit, not necessarily the one it set: matrix.c does the same).
fn matrix_state(d: &VectorDomain) -> impl PartialEq + std::fmt::Debug {
    let m = d.matrix();
    let cpus: Vec<_> = m
        .cpus()
        .iter()
        .map(|c| {
            (
                [
                    c.available(),
                    c.allocated(),
                    c.managed(),
                    c.managed_allocated(),
                ],
                (c.initialized(), c.online()),
                *c.alloc_map(),
            )
        })
        .collect();
    (
        cpus,
        *m.system_map(),
        [
            m.global_available(),
            m.global_reserved(),
            m.total_allocated(),
            m.online_maps(),
        ],
    )
}

/// Requested irqs whose vector sits on an offline CPU.
fn on_dead_cpu(d: &VectorDomain) -> Vec<u32> {
    d.irqs()
        .filter(|(_, i)| i.state() == IrqState::Active)
        .filter(|(_, i)| i.target().is_some_and(|(c, _)| !d.cpu_is_online(c)))
        .map(|(k, _)| k)
        .collect()
}

/// The domain's books recounted from its irqs and the matrix maps.
fn recount(d: &VectorDomain) {
    let m = d.matrix();
    let online: Vec<u32> = (0..d.ncpus()).filter(|&c| d.cpu_is_online(c)).collect();
    assert_eq!(online, d.online_cpus());
    for c in 0..d.ncpus() {
        assert_eq!(
            m.is_online(c),
            d.cpu_is_online(c),
            "matrix and domain online, cpu {c}"
        );
    }
    let avl = m
        .cpus()
        .iter()
        .filter(|c| c.online())
        .fold(0u32, |s, c| s.wrapping_add(c.available()));
    assert_eq!(m.global_available(), avl);
    assert_eq!(m.online_maps() as usize, online.len());
    let mut seen = BTreeSet::new();
    let (mut in_use, mut moves, mut reserved) = (0usize, 0u32, 0u32);
    for (irq, info) in d.irqs() {
        let state = info.state();
        if let Some((cpu, v)) = info.target() {
            in_use += 1;
            let cm = m.cpu(cpu).unwrap();
            assert!(
                cm.alloc_map().contains(v),
                "irq {irq}: ({cpu}, {v}) not allocated"
            );
            assert!(seen.insert((cpu, v)), "irq {irq} shares ({cpu}, {v})");
            if info.managed() {
                assert!(
                    cm.managed_map().contains(v),
                    "managed irq {irq} off its reservation"
                );
                assert!(
                    info.affinity().contains(&cpu),
                    "managed irq {irq} outside its mask"
                );
            }
        }
        if let Some((pcpu, pv)) = info.pending_move() {
            moves += 1;
            assert!(
                info.target().is_some(),
                "irq {irq}: a move without a vector"
            );
            assert!(!info.managed(), "managed irq {irq} with a user move");
            assert!(m.cpu(pcpu).unwrap().alloc_map().contains(pv));
            assert!(seen.insert((pcpu, pv)), "irq {irq}: previous vector shared");
            // A move with an end on a dead CPU is completed at the unplug.
            assert!(
                d.cpu_is_online(pcpu),
                "irq {irq}: move from offline cpu {pcpu} pending"
            );
            let (cpu, _) = info.target().unwrap();
            assert!(
                d.cpu_is_online(cpu),
                "irq {irq}: move to offline cpu {cpu} pending"
            );
        }
        if info.has_reserved() {
            reserved += 1;
            assert!(info.target().is_none(), "irq {irq}: reservation and vector");
            assert!(!info.managed());
        }
        if state == IrqState::Active && info.managed() {
            let (cpu, _) = info.target().unwrap();
            assert!(
                d.cpu_is_online(cpu),
                "managed irq {irq} active on offline cpu {cpu}"
            );
        }
        if state == IrqState::ManagedShutdown {
            assert!(info.managed());
        }
    }
    assert_eq!(in_use, d.vectors_in_use());
    assert_eq!(reserved, m.reserved(), "global reservations");
    assert_eq!(reserved, d.reserved());
    let legacy = d.legacy_vectors_held().len() as u32;
    let bits: u32 = m.cpus().iter().map(|c| c.alloc_map().count()).sum();
    assert_eq!(bits, legacy + in_use as u32 + moves, "allocated bits");
    let mut managed_total = 0u64;
    for cpu in 0..d.ncpus() {
        let want = d
            .irqs()
            .filter(|(_, i)| i.managed() && i.affinity().contains(&cpu))
            .count() as u32;
        let cm = m.cpu(cpu).unwrap();
        assert_eq!(cm.managed(), want, "managed reservations on cpu {cpu}");
        assert_eq!(cm.managed(), cm.managed_map().count());
        assert_eq!(cm.allocated(), cm.alloc_map().count());
        managed_total += u64::from(want);
    }
    assert_eq!(d.managed_reserved(), managed_total);
}

fuzz_target!(|input: Input| {
    let n = u32::from(input.ncpus % 8) + 1;
    let nodes: Option<Vec<u32>> = input.nodes.as_ref().map(|v| {
        (0..n as usize)
            .map(|i| u32::from(v.get(i).copied().unwrap_or(0) % 3))
            .collect()
    });
    let node_of: Vec<u32> = nodes.clone().unwrap_or_else(|| vec![0; n as usize]);
    let opts = BootOptions {
        online: input.online.as_ref().map(|v| {
            let mut c = cpus(v, n);
            c.push(0);
            c
        }),
        trace: input.trace,
    };
    let Ok(mut d) = VectorDomain::boot(
        n,
        &preset(input.preset),
        input.reservation_mode,
        nodes,
        &opts,
    ) else {
        return;
    };
    recount(&d);
    // Irqs Linux leaves on a dead CPU too (see the module doc).
    let mut stranded: BTreeSet<u32> = BTreeSet::new();
    for op in input.ops.iter().take(96) {
        let before = d.clone();
        let warns = d.pr_warnings();
        match op {
            Op::Alloc(aff, managed, node) => {
                let aff = aff.as_ref().map(|v| cpus(v, n + 1));
                let node = node.map(|x| u32::from(x % 4));
                if let Ok(irq) = d.alloc_irq(aff.as_deref(), *managed, node) {
                    assert!(before.irq(irq).is_err());
                    let info = d.irq(irq).unwrap();
                    assert_eq!(info.managed(), *managed);
                    assert!(!info.requested());
                } else {
                    assert_eq!(
                        matrix_state(&d),
                        matrix_state(&before),
                        "failed alloc changed the matrix"
                    );
                    assert_eq!(d.nr_irqs(), before.nr_irqs());
                }
            }
            Op::AllocAt(irq, aff, managed) => {
                let aff = aff.as_ref().map(|v| cpus(v, n));
                // Numbers stay small: the irq slab grows to the largest one.
                let irq = u32::from(*irq % 256);
                let r = d.alloc_irq_at(irq, aff.as_deref(), *managed, None);
                if before.irq(irq).is_ok() {
                    assert!(r.is_err());
                }
            }
            Op::AllocLegacy(isa, activated) => {
                let _ = d.alloc_legacy_irq(u32::from(*isa % 17), *activated);
            }
            Op::Activate(i) => {
                let Some(irq) = pick(&d, *i) else { continue };
                let pre = before.irq(irq).unwrap().clone();
                match d.activate(irq) {
                    Ok(()) => {
                        let info = d.irq(irq).unwrap();
                        assert!(info.requested());
                        let st = info.state();
                        assert!(st == IrqState::Active || st == IrqState::ManagedShutdown);
                        if st == IrqState::ManagedShutdown {
                            assert!(info.affinity().iter().all(|&c| !d.cpu_is_online(c)));
                        }
                        let (cpu, _) = info.target().unwrap_or((0, 0));
                        if st == IrqState::Active && !d.cpu_is_online(cpu) {
                            // Allowed only when the startup move had nowhere to go.
                            assert!(!pre.managed());
                            assert!(
                                pre.pending_move().is_none(),
                                "irq {irq} started on offline cpu {cpu} behind a pending move"
                            );
                            let mask = startup_mask(&before, &pre, &node_of);
                            let mut mx = before.matrix().clone();
                            assert!(
                                mx.alloc(&mask, false).is_err(),
                                "irq {irq} started on offline cpu {cpu} though {mask:?} had room"
                            );
                            stranded.insert(irq);
                        }
                    }
                    Err(_) => {
                        assert_eq!(
                            d.irq(irq).unwrap(),
                            &pre,
                            "failed activate changed irq {irq}"
                        );
                        assert_eq!(
                            matrix_state(&d),
                            matrix_state(&before),
                            "failed activate changed matrix"
                        );
                    }
                }
            }
            Op::Deactivate(i) => {
                let Some(irq) = pick(&d, *i) else { continue };
                let was = before.irq(irq).unwrap().requested();
                assert_eq!(d.deactivate(irq).is_ok(), was);
                assert!(!d.irq(irq).unwrap().requested());
            }
            Op::Free(i) => {
                let Some(irq) = pick(&d, *i) else { continue };
                let was = before.irq(irq).unwrap().requested();
                assert_eq!(d.free(irq).is_ok(), !was);
                assert_eq!(d.irq(irq).is_ok(), was);
                if !was {
                    stranded.remove(&irq);
                }
            }
            Op::Offline(c) => {
                let c = u32::from(*c) % (n + 1);
                match d.cpu_offline(c) {
                    Ok(()) => {
                        assert!(!d.cpu_is_online(c));
                        // Started irqs left on the dying CPU: each one a failed migration.
                        let left: Vec<u32> = on_dead_cpu(&d)
                            .into_iter()
                            .filter(|irq| d.irq(*irq).unwrap().target().unwrap().0 == c)
                            .collect();
                        assert!(d.pr_warnings() - warns >= left.len() as u64);
                        for irq in left {
                            assert!(!d.irq(irq).unwrap().managed());
                            stranded.insert(irq);
                        }
                    }
                    Err(_) => {
                        assert_eq!(
                            matrix_state(&d),
                            matrix_state(&before),
                            "refused unplug changed matrix"
                        );
                        assert_eq!(d.online_cpus(), before.online_cpus());
                    }
                }
            }
            Op::Online(c) => {
                let c = u32::from(*c) % (n + 1);
                let ok = d.cpu_online(c).is_ok();
                assert_eq!(ok, c < n && !before.cpu_is_online(c));
            }
            Op::SetAffinity(i, mask) => {
                let Some(irq) = pick(&d, *i) else { continue };
                let mask = cpus(mask, n + 1);
                match d.set_affinity(irq, &mask) {
                    Ok(()) => {
                        let info = d.irq(irq).unwrap();
                        assert!(info.affinity_set());
                        if let Some((cpu, _)) = info.target() {
                            if before.irq(irq).unwrap().target() != info.target() {
                                assert!(d.cpu_is_online(cpu), "moved irq {irq} to offline cpu");
                                assert!(mask.contains(&cpu), "moved irq {irq} outside its mask");
                            }
                        }
                    }
                    Err(_) => {
                        assert_eq!(d.irq(irq).unwrap(), before.irq(irq).unwrap());
                        assert_eq!(
                            matrix_state(&d),
                            matrix_state(&before),
                            "failed set_affinity changed matrix"
                        );
                    }
                }
            }
            Op::CompleteMove(i) => {
                let Some(irq) = pick(&d, *i) else { continue };
                let had = before.irq(irq).unwrap().pending_move().is_some();
                assert_eq!(d.complete_move(irq).is_ok(), had);
                assert_eq!(d.irq(irq).unwrap().pending_move(), None);
            }
            Op::Query(ind) => {
                let text = d
                    .debug_show(i32::from(*ind))
                    .expect("a narrow dump fits its bound");
                assert_eq!(Ok(text), d.matrix().debug_show(i32::from(*ind)));
                let _ = format!("{d:?}");
            }
        }
        recount(&d);
        // No requested irq on an offline CPU unless Linux would leave it there as well.
        let dead: BTreeSet<u32> = on_dead_cpu(&d).into_iter().collect();
        for irq in &dead {
            assert!(
                stranded.contains(irq),
                "irq {irq} active on an offline cpu after {op:?}"
            );
        }
        stranded.retain(|irq| dead.contains(irq));
        if d.tracing() {
            let events = d.take_trace();
            if let Some(e) = events.last() {
                let m = d.matrix();
                assert_eq!(
                    (
                        e.online_maps,
                        e.global_available,
                        e.global_reserved,
                        e.total_allocated
                    ),
                    (
                        m.online_maps(),
                        m.global_available(),
                        m.global_reserved(),
                        m.total_allocated()
                    )
                );
            }
        }
    }
    d.debug_show(-2).expect("a narrow dump fits its bound");
    let _ = format!("{d:?}");
});
