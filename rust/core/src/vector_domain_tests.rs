//! Unit and property tests of `VectorDomain`.

use super::*;
use proptest::prelude::*;

fn domain(ncpus: u32, reservation_mode: bool) -> VectorDomain {
    VectorDomain::new(ncpus, &X86Preset::mainline(), reservation_mode, None).unwrap()
}

fn total_alloc_bits(d: &VectorDomain) -> u32 {
    d.matrix()
        .cpus()
        .iter()
        .map(|c| c.alloc_map().count())
        .sum()
}

/// The domain's books agree with the matrix.
fn check(d: &VectorDomain) {
    let m = d.matrix();
    let sum = m
        .cpus()
        .iter()
        .filter(|c| c.online())
        .map(crate::matrix::CpuMap::available)
        .fold(0u32, u32::wrapping_add);
    assert_eq!(m.global_available(), sum);
    assert_eq!(m.online_maps() as usize, d.online_cpus().len());
    let mut seen = std::collections::HashSet::new();
    for (irq, info) in d.irqs() {
        if let Some((cpu, vector)) = info.target() {
            assert!(
                m.cpu(cpu).unwrap().alloc_map().contains(vector),
                "irq {irq} lost its bit"
            );
            assert!(
                seen.insert((cpu, vector)),
                "irq {irq} shares ({cpu}, {vector})"
            );
            if info.managed() {
                assert!(m.cpu(cpu).unwrap().managed_map().contains(vector));
                assert!(info.affinity().contains(&cpu));
            }
        }
    }
    let pending = d.irqs().filter(|(_, i)| i.pending_move().is_some()).count() as u32;
    let legacy = d.legacy_vectors_held().len() as u32;
    assert_eq!(
        total_alloc_bits(d),
        legacy + d.vectors_in_use() as u32 + pending
    );
    let has_res = d.irqs().filter(|(_, i)| i.has_reserved()).count() as u32;
    assert_eq!(m.reserved(), has_res);
    for cpu in 0..d.ncpus() {
        let want = d
            .irqs()
            .filter(|(_, i)| i.managed() && i.affinity().contains(&cpu))
            .count() as u32;
        let cm = m.cpu(cpu).unwrap();
        assert_eq!(cm.managed(), want, "managed reservations on cpu {cpu}");
        assert_eq!(cm.managed(), cm.managed_map().count());
        assert_eq!(cm.allocated(), cm.alloc_map().count());
    }
    check_packed(d);
}

/// The packed irq state and the domain's cached flags agree with what they are derived from.
fn check_packed(d: &VectorDomain) {
    assert_eq!(
        d.matrix_online,
        d.online.len() == d.matrix.online_maps() as usize
    );
    assert_eq!(
        d.fast,
        d.matrix_online && d.online.len() == d.ncpus() as usize && !d.tracing
    );
    assert_eq!(d.tracing, d.tracing());
    if !d.tracing {
        assert!(d.trace.is_empty());
    }
    for (irq, info) in d.irqs() {
        let placed = info.node().is_some() || !info.affinity.is_all();
        assert_eq!(info.has(flag::PLACED), placed, "irq {irq}: PLACED");
        assert!(info.has(flag::PRESENT));
        if info.has_reserved() {
            // What the default startup's one test of the flags relies on.
            assert_eq!(info.target(), None, "irq {irq} reserved with a vector");
            assert_eq!(info.pending_move(), None, "irq {irq} reserved while moving");
        }
    }
    let slab = &d.irqs;
    assert_eq!(slab.slots.len(), slab.used.len() * 64);
    for (i, slot) in slab.slots.iter().enumerate() {
        assert_eq!(
            slot.is_some(),
            slab.used[i / 64] & (1 << (i % 64)) != 0,
            "slot {i}"
        );
    }
    assert_eq!(slab.len, slab.slots.iter().flatten().count());
    assert!(slab.used[..slab.first_free_word.min(slab.used.len())]
        .iter()
        .all(|&w| w == u64::MAX));
    if let Some(&w) = slab.used.get(slab.first_free_word) {
        assert_ne!(w, u64::MAX, "first_free_word is full");
    }
}

#[test]
fn reservation_mode_holds_no_vectors_until_activation() {
    let mut on = domain(8, true);
    let mut off = domain(8, false);
    let base = total_alloc_bits(&on);
    for _ in 0..1000 {
        let a = on.alloc_irq(None, false, None).unwrap();
        assert_eq!(on.irq(a).unwrap().state(), IrqState::Reserved);
        let b = off.alloc_irq(None, false, None).unwrap();
        assert_eq!(off.irq(b).unwrap().state(), IrqState::Assigned);
    }
    assert_eq!(total_alloc_bits(&on), base);
    assert_eq!(on.reserved(), 1000);
    assert_eq!(on.vectors_in_use(), 0);
    assert_eq!(total_alloc_bits(&off), base + 1000);
    assert_eq!(off.reserved(), 0);
    assert_eq!(off.vectors_in_use(), 1000);
    check(&on);
    check(&off);
}

#[test]
fn activate_deactivate_cycle_in_reservation_mode() {
    let mut d = domain(2, true);
    let irq = d.alloc_irq(Some(&[1]), false, None).unwrap();
    d.activate(irq).unwrap();
    let info = d.irq(irq).unwrap();
    assert_eq!(info.state(), IrqState::Active);
    assert_eq!(info.target(), Some((1, 0x20)));
    assert!(!info.has_reserved());
    assert_eq!(d.reserved(), 0);
    let e = d.activate(irq).unwrap_err();
    assert!(
        matches!(e, Error::InvalidOperation { ref sites, .. } if sites == &["irq_already_requested"])
    );
    d.deactivate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::Reserved);
    assert_eq!(d.reserved(), 1);
    assert_eq!(d.vectors_in_use(), 0);
    let e = d.deactivate(irq).unwrap_err();
    assert!(
        matches!(e, Error::InvalidOperation { ref sites, .. } if sites == &["irq_not_requested"])
    );
    d.activate(irq).unwrap();
    let e = d.free(irq).unwrap_err();
    assert!(
        matches!(e, Error::InvalidOperation { ref sites, .. } if sites == &["free_requested_irq"])
    );
    d.deactivate(irq).unwrap();
    d.free(irq).unwrap();
    assert_eq!(d.reserved(), 0);
    assert_eq!(d.nr_irqs(), 0);
    assert!(matches!(d.irq(irq), Err(Error::InvalidArgument(_))));
    check(&d);
}

#[test]
fn without_reservation_mode_the_vector_stays_until_free() {
    let mut d = domain(2, false);
    let irq = d.alloc_irq(None, false, None).unwrap();
    let t = d.irq(irq).unwrap().target();
    assert_eq!(t, Some((1, 0x20))); // CPU 1 has more available than CPU 0 (legacy vectors)
    d.activate(irq).unwrap();
    d.deactivate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().target(), t);
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::Assigned);
    d.free(irq).unwrap();
    assert_eq!(d.vectors_in_use(), 0);
    check(&d);
}

#[test]
fn exhaustion_surfaces_at_activate_or_alloc() {
    // One CPU: 204 - 2 system bits - 15 legacy = 187 free vectors.
    let mut on = domain(1, true);
    let irqs: Vec<u32> = (0..200)
        .map(|_| on.alloc_irq(None, false, None).unwrap())
        .collect();
    assert_eq!(on.matrix().pr_warnings(), 1); // over-reservation warned once
    for &irq in &irqs[..187] {
        on.activate(irq).unwrap();
    }
    let before = on.matrix().clone();
    assert!(matches!(on.activate(irqs[187]), Err(Error::NoSpace(_))));
    assert_eq!(on.matrix(), &before);
    assert_eq!(on.irq(irqs[187]).unwrap().state(), IrqState::Reserved);
    check(&on);

    let mut off = domain(1, false);
    for _ in 0..187 {
        off.alloc_irq(None, false, None).unwrap();
    }
    let before = off.matrix().clone();
    assert!(matches!(
        off.alloc_irq(None, false, None),
        Err(Error::NoSpace(_))
    ));
    // Undone, except that the reserve() before the failed activation pr_warned.
    assert_eq!(off.matrix().cpus(), before.cpus());
    assert_eq!(off.matrix().reserved(), 0);
    assert_eq!(off.matrix().pr_warnings(), before.pr_warnings() + 1);
    assert_eq!(off.nr_irqs(), 187);
    check(&off);
}

#[test]
fn managed_lifecycle_and_hotplug() {
    let mut d = domain(4, true);
    let irq = d.alloc_irq(Some(&[2, 3]), true, None).unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::ManagedReserved);
    assert_eq!(d.managed_reserved(), 2);
    d.activate(irq).unwrap();
    // Fewest managed_allocated, ties to the highest CPU.
    assert_eq!(d.irq(irq).unwrap().target(), Some((3, 0x20)));
    // CPU 3 goes: the irq moves within its mask to CPU 2.
    d.cpu_offline(3).unwrap();
    assert_eq!(d.irq(irq).unwrap().target(), Some((2, 0x20)));
    // CPU 2 goes: no CPU of the mask is left: managed shutdown.
    d.cpu_offline(2).unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::ManagedShutdown);
    assert_eq!(d.vectors_in_use(), 0);
    check(&d);
    // A CPU of the mask coming back restarts it there.
    d.cpu_online(2).unwrap();
    assert_eq!(d.irq(irq).unwrap().target(), Some((2, 0x20)));
    d.cpu_offline(2).unwrap();
    d.cpu_online(3).unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::Active);
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(3));
    d.deactivate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::ManagedReserved);
    d.free(irq).unwrap();
    assert_eq!(d.managed_reserved(), 0);
    check(&d);
}

#[test]
fn managed_request_while_mask_offline_waits_for_cpu() {
    for mode in [true, false] {
        let mut d = domain(3, mode);
        d.cpu_offline(2).unwrap();
        let irq = d.alloc_irq(Some(&[2]), true, None).unwrap();
        d.activate(irq).unwrap(); // succeeds, stays shut down
        assert_eq!(d.irq(irq).unwrap().state(), IrqState::ManagedShutdown);
        d.cpu_online(2).unwrap();
        assert_eq!(d.irq(irq).unwrap().state(), IrqState::Active);
        assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(2));
        check(&d);
    }
}

#[test]
fn regular_irq_migrates_and_breaks_affinity() {
    let mut d = domain(3, true);
    let irq = d.alloc_irq(Some(&[2]), false, None).unwrap();
    d.activate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(2));
    d.cpu_offline(2).unwrap();
    // Affinity broken: moved to all online CPUs, the one with most available (CPU 1).
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(1));
    assert_eq!(d.matrix().cpu(2).unwrap().allocated(), 0);
    // irq_do_set_affinity stored the mask it was given: the online CPUs (the real trace's
    // eth0-rx-0 reads 0-2 in smp_affinity_list after its CPU 3 went offline).
    assert_eq!(d.irq(irq).unwrap().affinity(), &[0, 1]);
    check(&d);
    // Deactivate + reactivate goes through the chain again, within the stored affinity: CPU 2
    // back online is not in it.
    d.deactivate(irq).unwrap();
    d.cpu_online(2).unwrap();
    d.activate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(1));
    check(&d);
}

#[test]
fn unplug_refused_when_vectors_do_not_fit() {
    let mut d = domain(2, true);
    // Fill CPU 1 and most of CPU 0 so CPU 1's vectors cannot move.
    let mut n = 0;
    while let Ok(irq) = d.alloc_irq(None, false, None) {
        if d.activate(irq).is_err() {
            break;
        }
        n += 1;
    }
    assert_eq!(n, 187 + 202);
    let before = d.matrix().clone();
    assert!(matches!(d.cpu_offline(1), Err(Error::NoSpace(_))));
    assert_eq!(d.matrix(), &before);
    assert!(d.cpu_is_online(1));
    assert!(matches!(d.cpu_offline(5), Err(Error::InvalidArgument(_))));
    d.cpu_offline(0).unwrap_err();
    check(&d);
}

#[test]
fn last_cpu_and_bad_arguments() {
    let mut d = domain(2, true);
    d.cpu_offline(1).unwrap();
    assert!(matches!(d.cpu_offline(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(d.cpu_offline(1), Err(Error::InvalidArgument(_))));
    assert!(matches!(d.cpu_online(0), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        d.alloc_irq(Some(&[]), false, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.alloc_irq(Some(&[2]), false, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.alloc_irq(None, false, Some(1)),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(d.activate(99), Err(Error::InvalidArgument(_))));
    assert!(matches!(d.free(99), Err(Error::InvalidArgument(_))));
    assert!(VectorDomain::new(2, &X86Preset::mainline(), true, Some(vec![0])).is_err());
    // A node id at or past MAX_NUMNODES is refused (u32::MAX used to overflow `max + 1`).
    for bad in [MAX_NUMNODES, u32::MAX] {
        assert!(matches!(
            VectorDomain::new(2, &X86Preset::mainline(), true, Some(vec![0, bad])),
            Err(Error::InvalidArgument(_))
        ));
    }
    let top = VectorDomain::new(
        2,
        &X86Preset::mainline(),
        true,
        Some(vec![0, MAX_NUMNODES - 1]),
    );
    assert_eq!(top.unwrap().nr_nodes(), MAX_NUMNODES);
    check(&d);
}

#[test]
fn numa_chain_prefers_node_then_falls_back() {
    let nodes = vec![0, 0, 1, 1];
    let mut d = VectorDomain::new(4, &X86Preset::mainline(), true, Some(nodes)).unwrap();
    assert_eq!(d.nr_nodes(), 2);
    // node ∩ affinity = {2}
    let a = d.alloc_irq(Some(&[0, 2]), false, Some(1)).unwrap();
    d.activate(a).unwrap();
    assert_eq!(d.irq(a).unwrap().target().map(|t| t.0), Some(2));
    // node ∩ affinity empty (-EINVAL), then affinity ∩ online {0}: CPU 0 at once, no warning
    // (the node mask comes only after the affinity since Linux 5.10).
    let b = d.alloc_irq(Some(&[0]), false, Some(1)).unwrap();
    d.activate(b).unwrap();
    assert_eq!(d.pr_warnings(), 0);
    assert_eq!(d.irq(b).unwrap().target().map(|t| t.0), Some(0));
    check(&d);
}

// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Alloc(Option<Vec<u32>>, bool, Option<u32>),
    Activate(usize),
    Deactivate(usize),
    Free(usize),
    Offline(u32),
    Online(u32),
    SetAffinity(usize, Vec<u32>),
    CompleteMove(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let mask = proptest::option::of(proptest::collection::vec(0u32..4, 1..3));
    prop_oneof![
        4 => (mask, any::<bool>(), proptest::option::of(0u32..2)).prop_map(|(m, g, n)| Op::Alloc(m, g, n)),
        4 => any::<usize>().prop_map(Op::Activate),
        2 => any::<usize>().prop_map(Op::Deactivate),
        2 => any::<usize>().prop_map(Op::Free),
        1 => (0u32..4).prop_map(Op::Offline),
        1 => (0u32..4).prop_map(Op::Online),
        2 => (any::<usize>(), proptest::collection::vec(0u32..4, 1..3))
            .prop_map(|(i, m)| Op::SetAffinity(i, m)),
        2 => any::<usize>().prop_map(Op::CompleteMove),
    ]
}

fn pick(d: &VectorDomain, i: usize) -> Option<u32> {
    let ids: Vec<u32> = d.irqs().map(|(k, _)| k).collect();
    (!ids.is_empty()).then(|| ids[i % ids.len()])
}

/// `op` on `d`, ignoring the outcome (the twin of the domain under test).
fn apply(d: &mut VectorDomain, op: &Op) -> bool {
    match op {
        Op::Alloc(mask, managed, node) => d.alloc_irq(mask.as_deref(), *managed, *node).is_ok(),
        Op::Activate(i) => pick(d, *i).is_some_and(|irq| d.activate(irq).is_ok()),
        Op::Deactivate(i) => pick(d, *i).is_some_and(|irq| d.deactivate(irq).is_ok()),
        Op::Free(i) => pick(d, *i).is_some_and(|irq| d.free(irq).is_ok()),
        Op::Offline(c) => d.cpu_offline(*c).is_ok(),
        Op::Online(c) => d.cpu_online(*c).is_ok(),
        Op::SetAffinity(i, m) => pick(d, *i).is_some_and(|irq| d.set_affinity(irq, m).is_ok()),
        Op::CompleteMove(i) => pick(d, *i).is_some_and(|irq| d.complete_move(irq).is_ok()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sequences_keep_the_books(
        mode in any::<bool>(),
        ops in proptest::collection::vec(op_strategy(), 1..300),
    ) {
        let nodes = Some(vec![0, 0, 1, 1]);
        let mut d = VectorDomain::new(4, &X86Preset::mainline(), mode, nodes.clone()).unwrap();
        // A twin that records every matrix change: tracing must not change what happens.
        let opts = BootOptions { online: None, trace: true };
        let mut t = VectorDomain::boot(4, &X86Preset::mainline(), mode, nodes, &opts).unwrap();
        prop_assert_eq!(d.matrix(), t.matrix());
        t.take_trace();
        for op in ops {
            let r = apply(&mut t, &op);
            match op {
                Op::Alloc(mask, managed, node) => { let _ = d.alloc_irq(mask.as_deref(), managed, node); }
                Op::Activate(i) => if let Some(irq) = pick(&d, i) {
                    let before = d.irq(irq).unwrap().clone();
                    if d.activate(irq).is_ok() {
                        let info = d.irq(irq).unwrap();
                        prop_assert!(info.requested());
                        prop_assert!(info.target().is_some() || info.state() == IrqState::ManagedShutdown);
                    } else {
                        prop_assert_eq!(d.irq(irq).unwrap(), &before);
                    }
                },
                Op::Deactivate(i) => if let Some(irq) = pick(&d, i) { let _ = d.deactivate(irq); },
                Op::Free(i) => if let Some(irq) = pick(&d, i) { let _ = d.free(irq); },
                Op::Offline(c) => { let _ = d.cpu_offline(c); },
                Op::Online(c) => { let _ = d.cpu_online(c); },
                Op::SetAffinity(i, ref m) => if let Some(irq) = pick(&d, i) {
                    let before = d.irq(irq).unwrap().clone();
                    if d.set_affinity(irq, m).is_err() {
                        prop_assert_eq!(d.irq(irq).unwrap(), &before);
                    }
                },
                Op::CompleteMove(i) => if let Some(irq) = pick(&d, i) {
                    let _ = d.complete_move(irq);
                    prop_assert_eq!(d.irq(irq).unwrap().pending_move(), None);
                },
            }
            prop_assert_eq!(d.matrix(), t.matrix());
            prop_assert_eq!(d.irqs().collect::<Vec<_>>(), t.irqs().collect::<Vec<_>>());
            // The last event carries the counters as they are now.
            let events = t.take_trace();
            if let Some(e) = events.last() {
                let m = t.matrix();
                prop_assert_eq!(
                    (e.online_maps, e.global_available, e.global_reserved, e.total_allocated),
                    (m.online_maps(), m.global_available(), m.global_reserved(), m.total_allocated())
                );
            }
            let _ = r;
            check(&d);
            // Every active managed irq sits on an online CPU of its mask. (A regular irq can
            // stay on a dead CPU when its migration fails, as in the kernel.)
            for (_, info) in d.irqs() {
                if info.state() == IrqState::Active && info.managed() {
                    let (cpu, _) = info.target().unwrap();
                    prop_assert!(d.cpu_is_online(cpu));
                    prop_assert!(info.affinity().contains(&cpu));
                }
            }
        }
    }
}

#[test]
fn state_names_flags_and_debug_show() {
    let names: Vec<&str> = [
        IrqState::Reserved,
        IrqState::Assigned,
        IrqState::Active,
        IrqState::ManagedReserved,
        IrqState::ManagedShutdown,
    ]
    .iter()
    .map(|s| s.name())
    .collect();
    assert_eq!(
        names,
        [
            "reserved",
            "assigned",
            "active",
            "managed_reserved",
            "managed_shutdown"
        ]
    );
    let mut d = domain(2, true);
    let r = d.alloc_irq(None, false, None).unwrap();
    let m = d.alloc_irq(Some(&[1]), true, None).unwrap();
    assert!(d.irq(r).unwrap().can_reserve() && !d.irq(m).unwrap().can_reserve());
    assert_eq!(d.debug_show(0).unwrap(), d.matrix().debug_show(0).unwrap());
    assert!(d
        .debug_show(2)
        .unwrap()
        .contains("\n  | CPU | avl | man | mac | act | vectors\n"));
    let mut off = domain(2, false);
    let a = off.alloc_irq(None, false, None).unwrap();
    // Outside reservation mode the irq holds its vector from allocation and cannot reserve.
    assert!(!off.irq(a).unwrap().can_reserve());
    assert_eq!(off.irq(a).unwrap().state(), IrqState::Assigned);
}

#[test]
fn migration_never_picks_the_cpu_going_down() {
    // While `cpu_offline` migrates, the dying CPU has left the online mask but its matrix map is
    // still online: the move must scan the online list, not take the matrix's best CPU.
    let mut d = domain(3, true);
    let mut on = Vec::new();
    for _ in 0..3 {
        let irq = d.alloc_irq(None, false, None).unwrap();
        d.activate(irq).unwrap();
        on.push(d.irq(irq).unwrap().target().unwrap().0);
    }
    // CPU 0 holds the legacy vectors: 1 (tie, lowest), 2, 1.
    assert_eq!(on, [1, 2, 1]);
    let avl = |d: &VectorDomain, c: u32| d.matrix().cpu(c).unwrap().available();
    assert!(avl(&d, 2) > avl(&d, 1) && avl(&d, 1) > avl(&d, 0));
    let moved = d
        .irqs()
        .find(|(_, i)| i.target().unwrap().0 == 2)
        .unwrap()
        .0;
    d.cpu_offline(2).unwrap();
    assert_eq!(d.irq(moved).unwrap().target().map(|t| t.0), Some(1));
    check(&d);
    // Back online, the default affinity goes through alloc_any again and finds CPU 2.
    d.cpu_online(2).unwrap();
    let irq = d.alloc_irq(None, false, None).unwrap();
    d.activate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(2));
    check(&d);
}

// ------------------------------------------------------------------------ the real 6.1 trace
//
// The tests below replay pieces of a real Linux 6.1 (Debian 6.1.0-57) trace captured under QEMU
// (4 of 8 possible CPUs online, NVMe with 9 managed MSI-X vectors, an e1000e NIC); the numbers
// they check are the ones the kernel's irq_matrix_* tracepoints printed.

/// `FIRST_SYSTEM_VECTOR` and `system_vectors` of the traced 6.1 kernel (its
/// `irq_matrix_assign_system` lines): exceptions 0–19 and 29, IRQ_MOVE_CLEANUP_VECTOR 0x20
/// (gone since 6.6), 0x80, LOCAL_TIMER 0xec, 0xf0–0xf2, 0xf4, 0xf6–0xff; the PIC cascade 0x32
/// comes from the 16 legacy irqs.
fn preset_6_1() -> X86Preset {
    let mut system: Vec<u32> = (0..20).collect();
    system.extend([29, 0x20, 0x80, 0xec, 0xf0, 0xf1, 0xf2, 0xf4]);
    system.extend(0xf6..=0xff);
    X86Preset {
        name: "Debian 6.1".to_string(),
        first_system_vector: 0xec,
        system_vectors: system,
        nr_legacy_irqs: 16,
    }
}

/// `(tracepoint, cpu, bit, avl, alloc, managed, global_avl, global_rsvd, total_alloc)`.
type Ev = (
    &'static str,
    Option<u32>,
    Option<u32>,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
);

fn ev(e: &MatrixEvent) -> Ev {
    (
        e.op.tracepoint(),
        e.cpu,
        e.bit,
        e.available,
        e.allocated,
        e.managed,
        e.global_available,
        e.global_reserved,
        e.total_allocated,
    )
}

fn traced_boot(online: &[u32]) -> VectorDomain {
    let opts = BootOptions {
        online: Some(online.to_vec()),
        trace: true,
    };
    VectorDomain::boot(8, &preset_6_1(), true, None, &opts).unwrap()
}

#[test]
fn boot_cpu_first_then_secondaries_as_the_real_trace() {
    let mut d = traced_boot(&[0]);
    let events = d.take_trace();
    // 38 system vectors + the cascade, CPU 0 online, 15 legacy vectors.
    assert_eq!(events.len(), 39 + 1 + 15);
    assert!(events[..39]
        .iter()
        .all(|e| e.op == MatrixOp::AssignSystem && e.global_available == 0));
    assert_eq!(events[38].bit, Some(0x32));
    assert_eq!(
        (
            events[39].op,
            events[39].online_maps,
            events[39].global_available
        ),
        (MatrixOp::Online, 1, 201)
    );
    let last = ev(&events[54]);
    assert_eq!(
        last,
        (
            "irq_matrix_assign",
            Some(0),
            Some(63),
            186,
            15,
            0,
            186,
            0,
            15
        )
    );
    assert_eq!(d.online_cpus(), [0]);
    assert_eq!(d.legacy_vectors_held().len(), 15);

    // irq 24 (dmar0): reserve, then its request takes vector 33 on CPU 0.
    d.alloc_irq_at(24, None, false, None).unwrap();
    d.activate(24).unwrap();
    let e: Vec<Ev> = d.take_trace().iter().map(ev).collect();
    assert_eq!(
        e,
        [
            ("irq_matrix_reserve", None, None, 0, 0, 0, 186, 1, 15),
            (
                "irq_matrix_alloc",
                Some(0),
                Some(33),
                185,
                16,
                0,
                185,
                0,
                16
            ),
        ]
    );
    // The IOAPIC takes the legacy irqs over: the timer keeps vector 48, the others release.
    d.alloc_legacy_irq(1, false).unwrap();
    let e: Vec<Ev> = d.take_trace().iter().map(ev).collect();
    assert_eq!(
        e,
        [
            ("irq_matrix_free", Some(0), Some(49), 186, 15, 0, 186, 0, 15),
            ("irq_matrix_reserve", None, None, 0, 0, 0, 186, 1, 15),
        ]
    );
    d.alloc_legacy_irq(0, true).unwrap();
    assert!(d.take_trace().is_empty());
    assert_eq!(d.irq(0).unwrap().target(), Some((0, 48)));
    assert_eq!(d.irq(0).unwrap().state(), IrqState::Active);
    for irq in 3..16 {
        d.alloc_legacy_irq(irq, false).unwrap();
    }
    let last = *d.take_trace().last().unwrap();
    assert_eq!(
        (
            last.global_available,
            last.global_reserved,
            last.total_allocated
        ),
        (199, 14, 2)
    );
    for cpu in 1..4 {
        d.cpu_online(cpu).unwrap();
    }
    let globals: Vec<u32> = d.take_trace().iter().map(|e| e.global_available).collect();
    assert_eq!(globals, [400, 601, 802]);
    // irq 9 (acpi) lands on CPU 1: CPU 0 holds the timer and dmar0.
    d.activate(9).unwrap();
    let e: Vec<Ev> = d.take_trace().iter().map(ev).collect();
    assert_eq!(
        e,
        [("irq_matrix_alloc", Some(1), Some(33), 200, 1, 0, 801, 13, 3)]
    );
    // Startup stored default ∩ online as its affinity (smp_affinity_list 0-3).
    assert_eq!(d.irq(9).unwrap().affinity(), &[0, 1, 2, 3]);
    assert_eq!(d.irq(24).unwrap().affinity(), &[0]);
    assert!(matches!(
        d.alloc_legacy_irq(1, false),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.alloc_legacy_irq(2, false),
        Err(Error::InvalidArgument(_))
    ));
    check(&d);
}

#[test]
fn managed_vectors_of_offline_cpus_as_the_real_trace() {
    let mut d = traced_boot(&[0, 1, 2, 3]);
    d.take_trace();
    // nvme0q5: affinity {4}, a CPU never brought up: the reservation counts on CPU 4 only.
    d.alloc_irq_at(30, Some(&[4]), true, None).unwrap();
    let e: Vec<Ev> = d.take_trace().iter().map(ev).collect();
    assert_eq!(
        e,
        [(
            "irq_matrix_reserve_managed",
            Some(4),
            Some(33),
            0,
            0,
            1,
            789,
            0,
            15
        )]
    );
    // request_irq: IRQ_STARTUP_ABORT, no vector, no matrix change.
    d.activate(30).unwrap();
    assert!(d.take_trace().is_empty());
    assert_eq!(d.irq(30).unwrap().state(), IrqState::ManagedShutdown);
    d.deactivate(30).unwrap();
    d.free(30).unwrap();
    let e: Vec<Ev> = d.take_trace().iter().map(ev).collect();
    assert_eq!(
        e,
        [(
            "irq_matrix_remove_managed",
            Some(4),
            Some(33),
            0,
            0,
            0,
            789,
            0,
            15
        )]
    );
    // write_queues=2: nvme0q1's mask {0, 1, 4, 5}: one reservation per CPU, ascending; the
    // request picks the online CPU with the fewest managed allocations, the last on a tie.
    d.alloc_irq_at(26, Some(&[5, 4, 1, 0]), true, None).unwrap();
    let cpus: Vec<Option<u32>> = d.take_trace().iter().map(|e| e.cpu).collect();
    assert_eq!(cpus, [Some(0), Some(1), Some(4), Some(5)]);
    d.activate(26).unwrap();
    let e = d.take_trace();
    assert_eq!(
        (e.len(), e[0].op, e[0].cpu, e[0].irq),
        (1, MatrixOp::AllocManaged, Some(1), Some(26))
    );
    check(&d);
}

#[test]
fn set_affinity_keeps_the_old_vector_until_the_move_completes() {
    let mut d = traced_boot(&[0, 1, 2, 3]);
    let rx = d.alloc_irq_at(34, None, false, None).unwrap();
    d.activate(rx).unwrap();
    let (cpu, vector) = d.irq(rx).unwrap().target().unwrap();
    d.take_trace();
    // echo 3 > /proc/irq/34/smp_affinity_list: the new vector on CPU 3, the old one kept.
    d.set_affinity(rx, &[3]).unwrap();
    let e = d.take_trace();
    assert_eq!(
        e.iter().map(|e| (e.op, e.cpu, e.flag)).collect::<Vec<_>>(),
        [(MatrixOp::Alloc, Some(3), false)]
    );
    assert_eq!(d.irq(rx).unwrap().pending_move(), Some((cpu, vector)));
    assert_eq!(d.irq(rx).unwrap().affinity(), &[3]);
    check(&d);
    // A second move before the first interrupt on the new vector: -EBUSY, nothing changes.
    let before = d.irq(rx).unwrap().clone();
    let err = d.set_affinity(rx, &[2]).unwrap_err();
    assert!(
        matches!(err, Error::InvalidOperation { ref sites, .. } if sites == &["move_in_progress"])
    );
    assert_eq!(d.irq(rx).unwrap(), &before);
    // vector_free_moved: the old vector goes back.
    d.complete_move(rx).unwrap();
    let e: Vec<_> = d
        .take_trace()
        .iter()
        .map(|e| (e.op, e.cpu, e.bit))
        .collect();
    assert_eq!(e, [(MatrixOp::Free, Some(cpu), Some(vector))]);
    assert!(matches!(
        d.complete_move(rx),
        Err(Error::InvalidOperation { ref sites, .. }) if sites == &["no_move_pending"]
    ));
    // Already on a CPU of the new mask: nothing moves.
    d.set_affinity(rx, &[1, 3]).unwrap();
    assert!(d.take_trace().is_empty());
    // Errors: no online CPU in the mask, a managed irq, bad masks.
    assert!(matches!(
        d.set_affinity(rx, &[6]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.set_affinity(rx, &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.set_affinity(rx, &[8]),
        Err(Error::InvalidArgument(_))
    ));
    let m = d.alloc_irq(Some(&[1]), true, None).unwrap();
    assert!(matches!(
        d.set_affinity(m, &[2]),
        Err(Error::InvalidOperation { ref sites, .. }) if sites == &["managed_affinity"]
    ));
    // Not activated: only recorded; the request then starts on that mask.
    let tx = d.alloc_irq(None, false, None).unwrap();
    d.take_trace();
    d.set_affinity(tx, &[2]).unwrap();
    assert!(d.take_trace().is_empty());
    d.activate(tx).unwrap();
    assert_eq!(d.irq(tx).unwrap().target().map(|t| t.0), Some(2));
    // Freeing an irq with a move pending frees both vectors (clear_irq_vector).
    d.set_affinity(tx, &[0]).unwrap();
    d.deactivate(tx).unwrap();
    let frees = d
        .take_trace()
        .iter()
        .filter(|e| e.op == MatrixOp::Free)
        .count();
    assert_eq!(frees, 2);
    check(&d);
}

#[test]
fn cpu_offline_and_online_as_the_real_trace() {
    let mut d = traced_boot(&[0, 1, 2, 3]);
    // nvme0q4: managed, affinity {3}; eth0-rx-0: moved to CPU 3 by the user.
    let q4 = d.alloc_irq_at(29, Some(&[3]), true, None).unwrap();
    d.activate(q4).unwrap();
    let (_, q4_vector) = d.irq(q4).unwrap().target().unwrap();
    let rx = d.alloc_irq_at(34, None, false, None).unwrap();
    d.activate(rx).unwrap();
    d.set_affinity(rx, &[3]).unwrap();
    d.complete_move(rx).unwrap();
    let (_, rx_vector) = d.irq(rx).unwrap().target().unwrap();
    d.take_trace();
    d.cpu_offline(3).unwrap();
    let e: Vec<_> = d
        .take_trace()
        .iter()
        .map(|e| (e.op, e.irq, e.cpu, e.bit, e.flag))
        .collect();
    // In irq order: nvme0q4 shuts down (managed free), eth0-rx-0 breaks its affinity and moves
    // to the online CPU with the most room (its old vector freed at once), then the map goes.
    let (new_cpu, new_vector) = d.irq(rx).unwrap().target().unwrap();
    assert_eq!(
        e,
        [
            (MatrixOp::Free, Some(29), Some(3), Some(q4_vector), true),
            (
                MatrixOp::Alloc,
                Some(34),
                Some(new_cpu),
                Some(new_vector),
                false
            ),
            (MatrixOp::Free, Some(34), Some(3), Some(rx_vector), false),
            (MatrixOp::Offline, None, Some(3), None, false),
        ]
    );
    assert_eq!(d.irq(rx).unwrap().affinity(), &[0, 1, 2]);
    assert_eq!(d.irq(q4).unwrap().state(), IrqState::ManagedShutdown);
    check(&d);
    // CPU 3 back: the map comes online, then nvme0q4 restarts on its reserved bit.
    d.cpu_online(3).unwrap();
    let e: Vec<_> = d
        .take_trace()
        .iter()
        .map(|e| (e.op, e.irq, e.cpu, e.bit))
        .collect();
    assert_eq!(
        e,
        [
            (MatrixOp::Online, None, Some(3), None),
            (MatrixOp::AllocManaged, Some(29), Some(3), Some(q4_vector)),
        ]
    );
    // eth0-rx-0 keeps its stored affinity {0, 1, 2}: not back on CPU 3.
    assert_ne!(d.irq(rx).unwrap().target().map(|t| t.0), Some(3));
    check(&d);
}

#[test]
fn affinity_comes_before_the_node_mask() {
    // The real trace's timer (irq 0, node 0 while its node mask was still empty at early
    // boot) shows a single failed vector_alloc (-EINVAL) before its affinity ∩ online is
    // tried: the node mask is the third step, not the second.
    let nodes = vec![0, 0, 1, 1];
    let mut d = VectorDomain::new(4, &X86Preset::mainline(), true, Some(nodes)).unwrap();
    let irq = d.alloc_irq(Some(&[0, 1]), false, Some(1)).unwrap();
    d.activate(irq).unwrap();
    // node ∩ affinity = ∅ → affinity ∩ online: CPU 1 (CPU 0 holds the legacy vectors).
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(1));
    assert_eq!(d.pr_warnings(), 0);
    // With the affinity's CPUs full, the node mask is next: CPU 2 or 3, affinity broken.
    let mut d = VectorDomain::new(4, &X86Preset::mainline(), true, Some(vec![0, 0, 1, 1])).unwrap();
    loop {
        let filler = d.alloc_irq(Some(&[0, 1]), false, None).unwrap();
        d.activate(filler).unwrap();
        if d.irq(filler).unwrap().target().unwrap().0 > 1 {
            d.deactivate(filler).unwrap();
            d.free(filler).unwrap();
            break;
        }
    }
    let warned = d.pr_warnings();
    let irq = d.alloc_irq(Some(&[0, 1]), false, Some(1)).unwrap();
    d.activate(irq).unwrap();
    assert!(d.irq(irq).unwrap().target().unwrap().0 >= 2);
    assert_eq!(d.pr_warnings(), warned + 1);
    check(&d);
}

#[test]
fn boot_options_and_numbers_are_checked() {
    let p = X86Preset::mainline();
    let boot = |online: Vec<u32>| {
        let opts = BootOptions {
            online: Some(online),
            trace: false,
        };
        VectorDomain::boot(4, &p, true, None, &opts)
    };
    assert!(matches!(boot(vec![1, 2]), Err(Error::InvalidArgument(_))));
    assert!(matches!(boot(vec![0, 4]), Err(Error::InvalidArgument(_))));
    let d = boot(vec![2, 0, 0]).unwrap();
    assert_eq!(d.online_cpus(), [0, 2]);
    assert!(!d.tracing());
    let full = boot(vec![0, 1, 2, 3]).unwrap();
    assert_eq!(
        full.matrix(),
        VectorDomain::new(4, &p, true, None).unwrap().matrix()
    );
    let mut bad = p.clone();
    bad.system_vectors.push(256);
    assert!(VectorDomain::boot(2, &bad, true, None, &BootOptions::default()).is_err());
    let mut bad = p.clone();
    bad.nr_legacy_irqs = 17;
    assert!(VectorDomain::boot(2, &bad, true, None, &BootOptions::default()).is_err());
    let mut bad = p;
    bad.first_system_vector = 300;
    assert!(VectorDomain::boot(2, &bad, true, None, &BootOptions::default()).is_err());

    let mut d = domain(2, true);
    assert_eq!(d.alloc_irq_at(40, None, false, None).unwrap(), 40);
    assert!(matches!(
        d.alloc_irq_at(40, None, false, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        d.alloc_irq_at(MAX_IRQ_NUMBER, None, false, None),
        Err(Error::InvalidArgument(_))
    ));
    // Dynamic numbers still start at the lowest free one.
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 0);
    d.set_tracing(true);
    assert!(d.tracing());
    d.activate(40).unwrap();
    assert_eq!(d.take_trace().len(), 1);
    d.set_tracing(false);
    d.deactivate(40).unwrap();
    assert!(d.take_trace().is_empty());
    let names: Vec<&str> = [
        MatrixOp::AssignSystem,
        MatrixOp::Online,
        MatrixOp::Offline,
        MatrixOp::Assign,
        MatrixOp::Reserve,
        MatrixOp::RemoveReserved,
        MatrixOp::ReserveManaged,
        MatrixOp::RemoveManaged,
        MatrixOp::AllocManaged,
        MatrixOp::Alloc,
        MatrixOp::Free,
    ]
    .iter()
    .filter(|o| o.per_cpu())
    .map(|o| o.tracepoint())
    .collect();
    assert_eq!(
        names,
        [
            "irq_matrix_assign",
            "irq_matrix_reserve_managed",
            "irq_matrix_remove_managed",
            "irq_matrix_alloc_managed",
            "irq_matrix_alloc",
            "irq_matrix_free"
        ]
    );
    check(&d);
}

#[test]
fn managed_reservation_rollback_is_traced() {
    // One CPU with every vector taken but one: a managed mask {0, 1} reserves on CPU 0, fails
    // on CPU 1, and the cleanup removes CPU 0's reservation again, each step traced.
    let opts = BootOptions {
        online: None,
        trace: true,
    };
    let mut d = VectorDomain::boot(2, &X86Preset::mainline(), true, None, &opts).unwrap();
    while d.matrix().cpu(1).unwrap().available() > 0 {
        let irq = d.alloc_irq(Some(&[1]), false, None).unwrap();
        d.activate(irq).unwrap();
    }
    d.take_trace();
    let before = d.matrix().clone();
    assert!(matches!(
        d.alloc_irq(Some(&[0, 1]), true, None),
        Err(Error::NoSpace(_))
    ));
    let e: Vec<_> = d.take_trace().iter().map(|e| (e.op, e.cpu)).collect();
    assert_eq!(
        e,
        [
            (MatrixOp::ReserveManaged, Some(0)),
            (MatrixOp::RemoveManaged, Some(0))
        ]
    );
    assert_eq!(d.matrix(), &before);
    check(&d);
}

/// `activate` of `irq` on `d` through the default-startup fast path when it applies, checked
/// against the general `irq_startup` run on a clone: same result, same matrix, same irqs (their
/// affinity shared with the default alike), same warnings and the same recorded events.
/// Returns whether the fast path was taken.
fn activate_both_ways(d: &mut VectorDomain, irq: u32) -> bool {
    let fast = d
        .irq(irq)
        .is_ok_and(|i| d.fast && !i.requested() && i.default_startup());
    if !fast {
        let _ = d.activate(irq);
        return false;
    }
    let mut g = d.clone();
    let r_fast = d.activate(irq);
    let r_general = g.startup(irq);
    assert_same(d, &mut g, &r_fast, &r_general, irq);
    true
}

/// The domain `d` after a fast path and `g` (a clone before it) after the general path of the
/// same operation: same result, same matrix, same irqs (their affinity shared with the default
/// alike), same warnings and the same recorded events.
fn assert_same(
    d: &mut VectorDomain,
    g: &mut VectorDomain,
    r_fast: &Result<()>,
    r_general: &Result<()>,
    irq: u32,
) {
    assert_eq!(r_fast, r_general, "irq {irq}");
    assert_eq!(d.matrix(), g.matrix(), "irq {irq}");
    assert_eq!(
        d.irqs().collect::<Vec<_>>(),
        g.irqs().collect::<Vec<_>>(),
        "irq {irq}"
    );
    let shared = |v: &VectorDomain| {
        v.irqs()
            .map(|(_, i)| i.affinity.is_all())
            .collect::<Vec<_>>()
    };
    assert_eq!(shared(d), shared(g), "irq {irq}");
    assert_eq!(d.pr_warnings(), g.pr_warnings());
    assert_eq!(d.take_trace(), g.take_trace(), "irq {irq}");
    assert_eq!(d.irqs.first_free_word, g.irqs.first_free_word);
    assert_eq!(d.nr_irqs(), g.nr_irqs());
}

/// Whether `deactivate` of `irq` takes its fast path (one test of the flags).
fn deactivate_is_fast(d: &VectorDomain, irq: u32) -> bool {
    use flag::{ACTIVATED, CAN_RESERVE, HAS_RESERVED, MANAGED, REQUESTED};
    d.irq(irq).is_ok_and(|i| {
        d.fast
            && i.bits() & (REQUESTED | ACTIVATED | CAN_RESERVE | HAS_RESERVED | MANAGED)
                == REQUESTED | ACTIVATED | CAN_RESERVE
    })
}

/// `deactivate` of `irq` on `d`, checked against `deactivate_general` on a clone. Returns
/// whether the fast path was taken.
fn deactivate_both_ways(d: &mut VectorDomain, irq: u32) -> bool {
    let fast = deactivate_is_fast(d, irq);
    let mut g = d.clone();
    let r_fast = d.deactivate(irq);
    let r_general = g.deactivate_general(irq);
    assert_same(d, &mut g, &r_fast, &r_general, irq);
    fast
}

/// `alloc_irq` on `d`, checked against the number read first and the general
/// `alloc_irq_inner` on a clone: same result, same irqs, matrix, warnings and events.
fn alloc_both_ways(d: &mut VectorDomain, mask: Option<&[u32]>, managed: bool, node: Option<u32>) {
    let mut g = d.clone();
    let r_fast = d.alloc_irq(mask, managed, node);
    let r_general = match g.irqs.next_number() {
        Some(irq) => g.alloc_irq_inner(irq, mask, managed, node),
        None => Err(irq_numbers_exhausted()),
    };
    assert_eq!(r_fast, r_general);
    let irq = r_fast.unwrap_or(u32::MAX);
    assert_same(d, &mut g, &Ok(()), &Ok(()), irq);
    assert_eq!(d.irqs.used, g.irqs.used);
}

/// `release_default` of `irq` on `d`, checked against `deactivate_general` then
/// `free_general` on a clone when it acted, and against nothing changing when it did not.
/// Returns whether it acted (asserted to be exactly when both fast paths apply).
fn release_both_ways(d: &mut VectorDomain, irq: u32) -> bool {
    let want = deactivate_is_fast(d, irq) && d.irq(irq).is_ok_and(|i| !i.has(flag::PLACED));
    let mut g = d.clone();
    let done = d.release_default(irq);
    assert_eq!(done, want, "irq {irq}");
    let r_general = if done {
        g.deactivate_general(irq).and_then(|()| g.free_general(irq))
    } else {
        Ok(())
    };
    assert_same(d, &mut g, &Ok(()), &r_general, irq);
    done
}

/// Whether `free` of `irq` takes its fast path.
fn free_is_fast(d: &VectorDomain, irq: u32) -> bool {
    use flag::{HAS_RESERVED, MANAGED, PLACED, REQUESTED};
    d.irq(irq)
        .is_ok_and(|i| i.bits() & (REQUESTED | MANAGED | HAS_RESERVED | PLACED) == HAS_RESERVED)
}

/// `free` of `irq` on `d`, checked against `free_general` on a clone. Returns whether the
/// fast path was taken.
fn free_both_ways(d: &mut VectorDomain, irq: u32) -> bool {
    let fast = free_is_fast(d, irq);
    let mut g = d.clone();
    let r_fast = d.free(irq);
    let r_general = g.free_general(irq);
    assert_same(d, &mut g, &r_fast, &r_general, irq);
    fast
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fast_paths_are_the_general_paths(
        mode in any::<bool>(),
        partial in any::<bool>(),
        trace in any::<bool>(),
        ops in proptest::collection::vec(op_strategy(), 1..300),
    ) {
        // The fast paths apply without tracing, with every CPU online (then the general ones
        // run, recording their events).
        let opts = BootOptions { online: partial.then(|| vec![0, 1, 3]), trace };
        let nodes = Some(vec![0, 0, 1, 1]);
        let mut d = VectorDomain::boot(4, &X86Preset::mainline(), mode, nodes, &opts).unwrap();
        for op in ops {
            match op {
                Op::Alloc(ref mask, managed, node) => alloc_both_ways(&mut d, mask.as_deref(), managed, node),
                Op::Activate(i) => if let Some(irq) = pick(&d, i) {
                    activate_both_ways(&mut d, irq);
                },
                Op::Deactivate(i) => if let Some(irq) = pick(&d, i) {
                    if i % 2 == 0 {
                        deactivate_both_ways(&mut d, irq);
                    } else {
                        release_both_ways(&mut d, irq);
                    }
                },
                Op::Free(i) => if let Some(irq) = pick(&d, i) {
                    free_both_ways(&mut d, irq);
                },
                ref op => { apply(&mut d, op); }
            }
            check(&d);
        }
    }
}

#[test]
fn default_startup_cases() {
    // Every CPU online: the vector comes from alloc_any, the affinity stays the shared default.
    let mut d = domain(2, true);
    let irq = d.alloc_irq(None, false, None).unwrap();
    assert!(activate_both_ways(&mut d, irq));
    let info = d.irq(irq).unwrap();
    assert_eq!(info.state(), IrqState::Active);
    assert!(!info.has_reserved() && info.can_reserve());
    assert_eq!(info.affinity(), [0, 1]);
    // Deactivated, it takes its reservation back and the next startup is the fast one again.
    d.deactivate(irq).unwrap();
    assert!(activate_both_ways(&mut d, irq));

    // Exhaustion: NoSpace, nothing changes (the irq keeps its reservation).
    let mut d = domain(1, true);
    let mut failed = None;
    for _ in 0..300 {
        let irq = d.alloc_irq(None, false, None).unwrap();
        assert!(activate_both_ways(&mut d, irq));
        if d.irq(irq).unwrap().state() == IrqState::Reserved {
            failed = Some(irq);
            break;
        }
    }
    let irq = failed.expect("one CPU runs out of vectors");
    assert!(matches!(d.activate(irq), Err(Error::NoSpace(_))));
    assert!(d.irq(irq).unwrap().has_reserved());
    check(&d);

    // Tracing: the general path, which records the allocation.
    let mut d = domain(2, true);
    d.set_tracing(true);
    let irq = d.alloc_irq(None, false, None).unwrap();
    d.take_trace();
    assert!(!activate_both_ways(&mut d, irq));
    let events = d.take_trace();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].op, events[0].flag), (MatrixOp::Alloc, true));
    d.set_tracing(false);
    d.deactivate(irq).unwrap();
    assert!(activate_both_ways(&mut d, irq));

    // Part of the CPUs online: the general path; the affinity becomes the online mask, as
    // irq_setup_affinity leaves it, and the next startup keeps it.
    let opts = BootOptions {
        online: Some(vec![0, 2]),
        trace: true,
    };
    let mut d = VectorDomain::boot(4, &X86Preset::mainline(), true, None, &opts).unwrap();
    d.set_tracing(false);
    let irq = d.alloc_irq(None, false, None).unwrap();
    assert!(!activate_both_ways(&mut d, irq));
    assert_eq!(d.irq(irq).unwrap().affinity(), [0, 2]);
    d.deactivate(irq).unwrap();
    assert!(!activate_both_ways(&mut d, irq));
    assert_eq!(d.irq(irq).unwrap().affinity(), [0, 2]);
    check(&d);

    // Without reservation mode a legacy irq released at take-over still reserves: its startup
    // is the fast one and clears can_reserve, as activate_reserved does.
    let mut d = domain(2, false);
    d.alloc_legacy_irq(1, false).unwrap();
    assert!(d.irq(1).unwrap().has_reserved());
    assert!(activate_both_ways(&mut d, 1));
    assert!(!d.irq(1).unwrap().can_reserve());
    check(&d);
}

#[test]
fn irq_numbers_lowest_free_across_words() {
    let mut d = domain(4, true);
    assert_eq!(d.alloc_irq_at(130, None, false, None).unwrap(), 130);
    for want in 0..130 {
        assert_eq!(d.alloc_irq(None, false, None).unwrap(), want);
    }
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 131);
    assert_eq!(d.nr_irqs(), 132);
    d.free(70).unwrap();
    d.free(5).unwrap();
    d.free(131).unwrap();
    assert_eq!(d.nr_irqs(), 129);
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 5);
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 70);
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 131);
    assert_eq!(d.alloc_irq(None, false, None).unwrap(), 132);
    assert!(matches!(
        d.alloc_irq_at(64, None, false, None),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(d.irqs().count(), d.nr_irqs());
    assert_eq!(d.reserved() as usize, d.nr_irqs());
    check(&d);
}

/// An assigned (not requested) irq whose new vector's CPU goes offline while a user move is
/// pending: the unplug completes the move (the kernel's irq_force_complete_move runs for every
/// irq, started or not), so a later request moves it onto an online CPU instead of starting
/// it on the dead one with the move still pending.
#[test]
fn unplug_completes_a_pending_move_of_an_unrequested_irq() {
    let mut d = domain(3, false);
    let irq = d.alloc_irq(None, false, None).unwrap();
    let (first, _) = d.irq(irq).unwrap().target().unwrap();
    assert_eq!(d.irq(irq).unwrap().state(), IrqState::Assigned);
    let dest = (1..3).find(|&c| c != first).unwrap();
    d.set_affinity(irq, &[dest]).unwrap();
    assert_eq!(d.irq(irq).unwrap().target().unwrap().0, dest);
    assert!(d.irq(irq).unwrap().pending_move().is_some());
    d.cpu_offline(dest).unwrap();
    // Nothing moves (the irq is not started), but the previous vector is freed.
    assert_eq!(d.irq(irq).unwrap().target().unwrap().0, dest);
    assert_eq!(d.irq(irq).unwrap().pending_move(), None);
    check(&d);
    d.activate(irq).unwrap();
    let info = d.irq(irq).unwrap();
    assert_eq!(info.state(), IrqState::Active);
    let (cpu, _) = info.target().unwrap();
    assert!(
        d.cpu_is_online(cpu),
        "irq {irq} started on offline cpu {cpu}"
    );
    assert_eq!(info.pending_move(), None);
    check(&d);
}

/// A legacy irq kept running on its boot vector needs that vector's CPU (0) online: the
/// takeover after CPU 0 went offline would start the irq on a dead CPU, so it is refused
/// (the kernel takes legacy irqs over at boot). Releasing the vector still works.
#[test]
fn legacy_takeover_keeps_no_running_irq_on_an_offline_cpu0() {
    let mut d = domain(2, true);
    d.cpu_offline(0).unwrap();
    assert!(matches!(
        d.alloc_legacy_irq(1, true),
        Err(Error::InvalidArgument(_))
    ));
    assert!(d.irq(1).is_err());
    assert!(d.legacy_vectors_held().contains(&1));
    check(&d);
    d.alloc_legacy_irq(1, false).unwrap();
    assert_eq!(d.irq(1).unwrap().state(), IrqState::Reserved);
    d.cpu_online(0).unwrap();
    d.alloc_legacy_irq(3, true).unwrap();
    assert_eq!(
        d.irq(3).unwrap().target(),
        Some((0, X86_ISA_IRQ0_VECTOR + 3))
    );
    check(&d);
}

#[test]
fn packed_irq_info_sizes() {
    // The slab's `Option` takes the flags' niche: no tag word of its own.
    assert_eq!(std::mem::size_of::<IrqInfo>(), 40);
    assert_eq!(std::mem::size_of::<Option<IrqInfo>>(), 40);
    let mut v = CpuVector::NONE;
    assert_eq!(v.get(), None);
    v = CpuVector::new((8191, 255));
    assert_eq!((v.get(), v.cpu()), (Some((8191, 255)), Some(8191)));
    assert_eq!(v.take(), Some((8191, 255)));
    assert_eq!(v, CpuVector::NONE);
    assert_eq!(CpuVector::from(Some((0, 0))).get(), Some((0, 0)));
    // Debug reads as the unpacked struct did.
    let mut d = domain(2, true);
    let irq = d.alloc_irq(None, false, None).unwrap();
    assert_eq!(
        format!("{:?}", d.irq(irq).unwrap()),
        "IrqInfo { affinity: All(2), node: None, managed: false, can_reserve: true, \
         has_reserved: true, activated: false, managed_shutdown: false, requested: false, \
         target: None, affinity_set: false, moving: None }"
    );
}

#[test]
fn deactivate_and_free_fast_cases() {
    // Reservation mode, default irq: both fast, as the resize storm runs them.
    let mut d = domain(2, true);
    let irq = d.alloc_irq(None, false, None).unwrap();
    assert!(!free_is_fast(&d, 99));
    assert!(activate_both_ways(&mut d, irq));
    // Requested: the free fails alike both ways.
    assert!(!free_both_ways(&mut d, irq));
    // Both steps in one: as the two general paths.
    let mut twin = d.clone();
    assert!(release_both_ways(&mut twin, irq));
    assert!(twin.irq(irq).is_err());
    assert!(!release_both_ways(&mut twin, irq));
    assert!(deactivate_both_ways(&mut d, irq));
    // Not requested: the deactivate fails alike both ways.
    assert!(!deactivate_both_ways(&mut d, irq));
    assert!(free_both_ways(&mut d, irq));
    check(&d);

    // A chosen affinity or a node: the deactivate is fast, the free is not (a mask to drop,
    // or a node kept apart).
    let a = d.alloc_irq(Some(&[1]), false, None).unwrap();
    let n = d.alloc_irq(None, false, Some(0)).unwrap();
    for irq in [a, n] {
        d.activate(irq).unwrap();
        assert!(!release_both_ways(&mut d, irq));
        assert!(deactivate_both_ways(&mut d, irq));
        assert!(!free_both_ways(&mut d, irq));
    }
    // Managed: neither.
    let m = d.alloc_irq(Some(&[0, 1]), true, None).unwrap();
    d.activate(m).unwrap();
    assert!(!release_both_ways(&mut d, m));
    assert!(!deactivate_both_ways(&mut d, m));
    assert!(!free_both_ways(&mut d, m));
    check(&d);

    // Reservation mode off: the vector stays at deactivation, so neither is fast.
    let mut d = domain(2, false);
    let irq = d.alloc_irq(None, false, None).unwrap();
    d.activate(irq).unwrap();
    assert!(!deactivate_both_ways(&mut d, irq));
    assert!(!free_both_ways(&mut d, irq));
    check(&d);

    // Part of the CPUs online, or tracing: the general paths (the free's is the online
    // mask the startup left to drop).
    let opts = BootOptions {
        online: Some(vec![0, 2]),
        trace: false,
    };
    let mut d = VectorDomain::boot(4, &X86Preset::mainline(), true, None, &opts).unwrap();
    let irq = d.alloc_irq(None, false, None).unwrap();
    assert!(!activate_both_ways(&mut d, irq));
    assert!(!deactivate_both_ways(&mut d, irq));
    assert!(!free_both_ways(&mut d, irq));
    check(&d);
    // Tracing: the free's fast path records its removal like the general one.
    let mut d = domain(2, true);
    d.set_tracing(true);
    let irq = d.alloc_irq(None, false, None).unwrap();
    d.activate(irq).unwrap();
    assert!(!deactivate_both_ways(&mut d, irq));
    d.take_trace();
    let mut twin = d.clone();
    assert!(free_both_ways(&mut d, irq));
    twin.free(irq).unwrap();
    let events = twin.take_trace();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].op, MatrixOp::RemoveReserved);
    check(&d);
}
