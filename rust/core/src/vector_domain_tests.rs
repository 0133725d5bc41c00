//! Unit and property tests of `VectorDomain`.

use super::*;
use proptest::prelude::*;

/// Legacy ISA vectors the x86 boot assigns on CPU 0 (0x30–0x3f minus the cascade).
const LEGACY: u32 = 15;

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
    assert_eq!(total_alloc_bits(d), LEGACY + d.vectors_in_use() as u32);
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
    check(&d);
    // Deactivate + reactivate goes through the chain again; CPU 2 back online is preferred.
    d.deactivate(irq).unwrap();
    d.cpu_online(2).unwrap();
    d.activate(irq).unwrap();
    assert_eq!(d.irq(irq).unwrap().target().map(|t| t.0), Some(2));
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
    // node ∩ affinity empty (-EINVAL), node mask {2, 3}: CPU 3 (more available); then
    // irq_setup_affinity moves it into its affinity {0}, with an "affinity broken" warning.
    let b = d.alloc_irq(Some(&[0]), false, Some(1)).unwrap();
    d.activate(b).unwrap();
    assert_eq!(d.pr_warnings(), 1);
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
    ]
}

fn pick(d: &VectorDomain, i: usize) -> Option<u32> {
    let ids: Vec<u32> = d.irqs().map(|(k, _)| k).collect();
    (!ids.is_empty()).then(|| ids[i % ids.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_sequences_keep_the_books(
        mode in any::<bool>(),
        ops in proptest::collection::vec(op_strategy(), 1..300),
    ) {
        let mut d = VectorDomain::new(4, &X86Preset::mainline(), mode, Some(vec![0, 0, 1, 1])).unwrap();
        for op in ops {
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
            }
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
    assert_eq!(d.debug_show(0), d.matrix().debug_show(0));
    assert!(d
        .debug_show(2)
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
