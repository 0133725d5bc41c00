//! Tests of the MSI-X table model: table-driven with named offsets, PBA bit
//! positions, every MMIO error, every outcome, releases, and property tests
//! against a small reference model.

use super::*;
use proptest::prelude::*;

/// Byte offset of dword `at` of entry `k` in the table.
fn entry_off(k: usize, at: u64) -> u64 {
    k as u64 * ENTRY_SIZE + at
}

fn msg(address: u64, data: u32) -> MsiMessage {
    MsiMessage::new(address, data)
}

fn table(n: usize, mode: DisabledMode) -> VectorTable {
    VectorTable::new(n, mode).expect("valid size")
}

/// A table with MSI-X enabled, Function Mask clear, every entry still masked,
/// entry k programmed with address 0xfee0_0000 + k*0x1000 and data 0x40 + k.
fn enabled(n: usize, mode: DisabledMode) -> VectorTable {
    let mut t = table(n, mode);
    for k in 0..n {
        t.set_entry(k, msg(0xfee0_0000 + k as u64 * 0x1000, 0x40 + k as u32))
            .unwrap();
    }
    assert!(t.set_control(MSIX_CONTROL_ENABLE).is_empty());
    t
}

fn is_mmio(r: &Result<impl fmt::Debug>) -> bool {
    matches!(r, Err(Error::Mmio(_)))
}

// ---- construction and reset ------------------------------------------------

#[test]
fn new_accepts_1_to_2048_only() {
    for n in [0, MAX_ENTRIES + 1, usize::MAX] {
        assert!(
            matches!(
                VectorTable::new(n, DisabledMode::Lost),
                Err(Error::InvalidArgument(_))
            ),
            "size {n}"
        );
    }
    for n in [1, 2, 63, 64, 65, MAX_ENTRIES] {
        let t = table(n, DisabledMode::Intx);
        assert_eq!(t.entries(), n);
        assert_eq!(t.disabled_mode(), DisabledMode::Intx);
    }
}

#[test]
fn reset_state_follows_the_spec() {
    let n = 130;
    let mut t = table(n, DisabledMode::Pending);
    let check = |t: &VectorTable| {
        assert_eq!(t.control(), (n - 1) as u16);
        assert!(!t.is_enabled() && !t.is_function_masked());
        assert_eq!(t.pending_count(), 0);
        for k in 0..n {
            assert_eq!(t.entry(k).unwrap(), TableEntry::RESET);
            for (at, want) in [
                (ENTRY_ADDR_LO, 0),
                (ENTRY_ADDR_HI, 0),
                (ENTRY_DATA, 0),
                (ENTRY_VECTOR_CONTROL, u64::from(VECTOR_CONTROL_MASK_BIT)),
            ] {
                assert_eq!(t.table_read(entry_off(k, at), DWORD).unwrap(), want);
            }
            assert!(t.is_entry_masked(k).unwrap());
            assert!(t.is_masked(k).unwrap());
            assert!(!t.is_pending(k).unwrap());
        }
        for off in (0..pba_size_bytes(n)).step_by(QWORD) {
            assert_eq!(t.pba_read(off, QWORD).unwrap(), 0);
        }
    };
    check(&t);
    // Dirty every kind of state, then reset.
    t.set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
    t.table_write(entry_off(5, ENTRY_ADDR_LO), QWORD, 0x1234_fee0_0000)
        .unwrap();
    t.table_write(entry_off(5, ENTRY_VECTOR_CONTROL), DWORD, 0)
        .unwrap();
    t.fire(5).unwrap();
    t.fire(129).unwrap();
    assert_eq!(t.pending_count(), 2);
    t.reset();
    check(&t);
    assert_eq!(
        t.disabled_mode(),
        DisabledMode::Pending,
        "mode survives reset"
    );
}

#[test]
fn table_size_is_read_only_and_other_control_bits_ignored() {
    for n in [1, 7, 64, MAX_ENTRIES] {
        let mut t = table(n, DisabledMode::Lost);
        let size = (n - 1) as u16;
        for (write, want) in [
            (0u16, size),
            (
                0xffff,
                MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK | size,
            ),
            (MSIX_CONTROL_TABLE_SIZE_MASK, size),
            (0x3800, size), // bits 13:11 are reserved
            (
                MSIX_CONTROL_FUNCTION_MASK,
                MSIX_CONTROL_FUNCTION_MASK | size,
            ),
            (MSIX_CONTROL_ENABLE | 0x5, MSIX_CONTROL_ENABLE | size),
        ] {
            t.set_control(write);
            assert_eq!(t.control(), want, "n={n} write={write:#x}");
            assert_eq!(t.control() & MSIX_CONTROL_TABLE_SIZE_MASK, size);
            assert_eq!(t.control_state(), MsixControl::from_bits(write));
        }
    }
}

// ---- MMIO ------------------------------------------------------------------

#[test]
fn dword_writes_land_at_named_offsets() {
    let mut t = table(4, DisabledMode::Lost);
    let k = 2;
    for (at, value, want) in [
        (ENTRY_ADDR_LO, 0xfee0_100c_u64, 0xfee0_100c_u64),
        (ENTRY_ADDR_HI, 0x0000_0001, 0x0000_0001),
        (ENTRY_DATA, 0xdead_beef, 0xdead_beef),
        (ENTRY_VECTOR_CONTROL, 0xffff_fffe, 0), // reserved bits read 0
        (ENTRY_VECTOR_CONTROL, 0xffff_ffff, 1),
        (ENTRY_VECTOR_CONTROL, 0x0000_0000, 0),
    ] {
        assert!(t
            .table_write(entry_off(k, at), DWORD, value)
            .unwrap()
            .is_empty());
        assert_eq!(t.table_read(entry_off(k, at), DWORD).unwrap(), want);
    }
    assert_eq!(
        t.entry(k).unwrap(),
        TableEntry {
            address: 0x1_fee0_100c,
            data: 0xdead_beef,
            vector_control: 0
        }
    );
    // Neighbours untouched.
    assert_eq!(t.entry(1).unwrap(), TableEntry::RESET);
    assert_eq!(t.entry(3).unwrap(), TableEntry::RESET);
}

#[test]
fn qword_accesses_cover_two_dwords_of_one_entry() {
    let mut t = table(3, DisabledMode::Lost);
    t.table_write(entry_off(1, ENTRY_ADDR_LO), QWORD, 0x0000_0002_fee0_3000)
        .unwrap();
    assert_eq!(
        t.table_read(entry_off(1, ENTRY_ADDR_LO), DWORD).unwrap(),
        0xfee0_3000
    );
    assert_eq!(t.table_read(entry_off(1, ENTRY_ADDR_HI), DWORD).unwrap(), 2);
    assert_eq!(
        t.table_read(entry_off(1, ENTRY_ADDR_LO), QWORD).unwrap(),
        0x0000_0002_fee0_3000
    );
    // data + vector control: reserved control bits dropped.
    t.table_write(entry_off(1, ENTRY_DATA), QWORD, 0xffff_fffe_0000_0041)
        .unwrap();
    assert_eq!(t.table_read(entry_off(1, ENTRY_DATA), DWORD).unwrap(), 0x41);
    assert_eq!(
        t.table_read(entry_off(1, ENTRY_VECTOR_CONTROL), DWORD)
            .unwrap(),
        0
    );
    assert_eq!(t.table_read(entry_off(1, ENTRY_DATA), QWORD).unwrap(), 0x41);
    t.table_write(entry_off(1, ENTRY_DATA), QWORD, 0x0000_0001_0000_0042)
        .unwrap();
    assert_eq!(
        t.table_read(entry_off(1, ENTRY_DATA), QWORD).unwrap(),
        0x0000_0001_0000_0042
    );
    assert_eq!(t.entry(0).unwrap(), TableEntry::RESET);
    assert_eq!(t.entry(2).unwrap(), TableEntry::RESET);
}

#[test]
fn address_low_bits_are_stored_as_written() {
    let mut t = enabled(1, DisabledMode::Lost);
    t.table_write(entry_off(0, ENTRY_ADDR_LO), DWORD, 0xfee0_0003)
        .unwrap();
    t.unmask(0).unwrap();
    assert_eq!(
        t.table_read(entry_off(0, ENTRY_ADDR_LO), DWORD).unwrap(),
        0xfee0_0003
    );
    assert_eq!(t.fire(0).unwrap().message().unwrap().address, 0xfee0_0003);
}

#[test]
fn every_mmio_error() {
    let n = 65; // table 1040 bytes, PBA 16 bytes
    let mut t = table(n, DisabledMode::Lost);
    let tlen = table_size_bytes(n);
    let plen = pba_size_bytes(n);
    assert_eq!((tlen, plen), (1040, 16));
    // (offset, size, what the message must mention)
    let table_cases: &[(u64, usize, &str)] = &[
        (0, 0, "only 4- or 8-byte"),
        (0, 1, "only 4- or 8-byte"),
        (0, 2, "only 4- or 8-byte"),
        (0, 3, "only 4- or 8-byte"),
        (0, 5, "only 4- or 8-byte"),
        (0, 16, "only 4- or 8-byte"),
        (1, DWORD, "misaligned"),
        (2, DWORD, "misaligned"),
        (entry_off(0, ENTRY_ADDR_HI), QWORD, "misaligned"),
        (entry_off(3, ENTRY_VECTOR_CONTROL), QWORD, "misaligned"),
        (tlen, DWORD, "beyond the table"),
        (tlen, QWORD, "beyond the table"),
        (tlen + 4, DWORD, "beyond the table"),
        (u64::MAX - 3, DWORD, "beyond the table"),
        (u64::MAX - 7, QWORD, "beyond the table"),
    ];
    for &(off, size, why) in table_cases {
        for r in [
            t.table_read(off, size),
            t.table_write(off, size, 0).map(|_| 0),
        ] {
            match r {
                Err(Error::Mmio(m)) => assert!(m.contains(why), "{off:#x}/{size}: {m}"),
                other => panic!("{off:#x}/{size}: {other:?}"),
            }
        }
    }
    // Last dword and last qword of the table are fine.
    assert!(t.table_read(tlen - 4, DWORD).is_ok());
    assert!(t.table_read(tlen - 8, QWORD).is_ok());
    // A dword write of a value wider than 32 bits.
    match t.table_write(entry_off(0, ENTRY_DATA), DWORD, 1 << 32) {
        Err(Error::Mmio(m)) => assert!(m.contains("wider than a 4-byte access"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.entry(0).unwrap(),
        TableEntry::RESET,
        "refused write changes nothing"
    );

    let pba_cases: &[(u64, usize, &str)] = &[
        (0, 2, "only 4- or 8-byte"),
        (0, 16, "only 4- or 8-byte"),
        (2, DWORD, "misaligned"),
        (4, QWORD, "misaligned"),
        (plen, DWORD, "beyond the PBA"),
        (plen, QWORD, "beyond the PBA"),
        (u64::MAX - 3, DWORD, "beyond the PBA"),
    ];
    for &(off, size, why) in pba_cases {
        match t.pba_read(off, size) {
            Err(Error::Mmio(m)) => assert!(m.contains(why), "{off:#x}/{size}: {m}"),
            other => panic!("{off:#x}/{size}: {other:?}"),
        }
    }
    assert!(t.pba_read(plen - 4, DWORD).is_ok());
    assert!(t.pba_read(plen - 8, QWORD).is_ok());
    // PBA writes: always refused, well-formed or not.
    for (off, size) in [(0, DWORD), (0, QWORD), (4, DWORD), (plen, DWORD), (1, 1)] {
        assert!(is_mmio(&t.pba_write(off, size, 0)), "{off}/{size}");
    }
    match t.pba_write(0, QWORD, u64::MAX) {
        Err(Error::Mmio(m)) => assert!(m.contains("read-only"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A one-entry table: 16-byte table, 8-byte PBA.
    let t1 = table(1, DisabledMode::Lost);
    assert!(is_mmio(&t1.table_read(16, DWORD)));
    assert!(is_mmio(&t1.pba_read(8, DWORD)));
    assert!(t1.pba_read(4, DWORD).is_ok());
}

#[test]
fn out_of_range_vectors_are_invalid_arguments() {
    let mut t = table(3, DisabledMode::Lost);
    for k in [3, 4, usize::MAX] {
        let inval = |r: Result<()>| matches!(r, Err(Error::InvalidArgument(_)));
        assert!(inval(t.fire(k).map(|_| ())), "fire {k}");
        assert!(inval(t.mask(k).map(|_| ())));
        assert!(inval(t.unmask(k).map(|_| ())));
        assert!(inval(t.set_entry(k, msg(1, 1))));
        assert!(inval(t.entry(k).map(|_| ())));
        assert!(inval(t.is_masked(k).map(|_| ())));
        assert!(inval(t.is_entry_masked(k).map(|_| ())));
        assert!(inval(t.is_pending(k).map(|_| ())));
        assert!(inval(t.can_send(k).map(|_| ())));
    }
}

// ---- PBA bit positions ------------------------------------------------------

#[test]
fn pba_bit_positions_by_dword_and_qword() {
    for n in [130, MAX_ENTRIES] {
        for k in [0, 31, 32, 63, 64, 95, 127, n - 1] {
            let mut t = enabled(n, DisabledMode::Lost);
            assert_eq!(t.fire(k).unwrap().outcome(), FireOutcome::Pending);
            assert!(t.is_pending(k).unwrap());
            assert_eq!(t.pending_count(), 1);
            // Qword view: bit k % 64 of qword k / 64.
            let words = pba_size_bytes(n) / PBA_WORD_SIZE;
            for w in 0..words {
                let want = if w == (k / 64) as u64 {
                    1u64 << (k % 64)
                } else {
                    0
                };
                assert_eq!(
                    t.pba_read(w * PBA_WORD_SIZE, QWORD).unwrap(),
                    want,
                    "n={n} k={k}"
                );
            }
            // Dword view: bit k % 32 of dword k / 32.
            for d in 0..words * 2 {
                let want = if d == (k / 32) as u64 {
                    1u64 << (k % 32)
                } else {
                    0
                };
                assert_eq!(t.pba_read(d * 4, DWORD).unwrap(), want, "n={n} k={k} d={d}");
            }
        }
    }
}

#[test]
fn pba_helpers_are_64_bit() {
    assert_eq!(pba_word_index(63), 0);
    assert_eq!(pba_word_index(64), 1);
    assert_eq!(pba_bit(32), 1 << 32);
    assert_eq!(pba_bit(63), 1 << 63);
    assert_eq!(pba_bit(64), 1);
    assert_eq!(pba_size_bytes(1), 8);
    assert_eq!(pba_size_bytes(64), 8);
    assert_eq!(pba_size_bytes(65), 16);
    assert_eq!(pba_size_bytes(MAX_ENTRIES), 256);
    assert_eq!(table_size_bytes(MAX_ENTRIES), 32768);
}

// ---- outcomes ---------------------------------------------------------------

#[test]
fn every_outcome() {
    use FireOutcome::*;
    // (mode, control, entry masked, already pending, expected)
    let cases = [
        (DisabledMode::Lost, 0, false, false, Lost),
        (DisabledMode::Lost, 0, true, false, Lost),
        (DisabledMode::Intx, 0, false, false, Intx),
        (
            DisabledMode::Intx,
            MSIX_CONTROL_FUNCTION_MASK,
            true,
            false,
            Intx,
        ),
        (DisabledMode::Pending, 0, false, false, Pending),
        (DisabledMode::Pending, 0, false, true, Coalesced),
        (
            DisabledMode::Lost,
            MSIX_CONTROL_ENABLE,
            true,
            false,
            Pending,
        ),
        (
            DisabledMode::Lost,
            MSIX_CONTROL_ENABLE,
            true,
            true,
            Coalesced,
        ),
        (
            DisabledMode::Intx,
            MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK,
            false,
            false,
            Pending,
        ),
        (
            DisabledMode::Pending,
            MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK,
            false,
            true,
            Coalesced,
        ),
        (
            DisabledMode::Lost,
            MSIX_CONTROL_ENABLE,
            false,
            false,
            Delivered,
        ),
        (
            DisabledMode::Pending,
            MSIX_CONTROL_ENABLE,
            false,
            false,
            Delivered,
        ),
    ];
    for (i, &(mode, control, entry_masked, already, want)) in cases.iter().enumerate() {
        let mut t = table(2, mode);
        t.set_entry(1, msg(0xfee0_1000, 0x41)).unwrap();
        if already {
            // Latch the bit first with the vector masked.
            t.set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
            assert_eq!(t.fire(1).unwrap().outcome(), Pending);
        }
        if !entry_masked {
            t.unmask(1).unwrap();
        }
        t.set_control(control);
        assert_eq!(t.is_pending(1).unwrap(), already, "case {i}");
        let fired = t.fire(1).unwrap();
        assert_eq!(fired.outcome(), want, "case {i}");
        assert_eq!(
            fired.message(),
            (want == Delivered).then(|| msg(0xfee0_1000, 0x41)),
            "case {i}"
        );
        let pending_after = matches!(want, Pending | Coalesced) || already;
        assert_eq!(t.is_pending(1).unwrap(), pending_after, "case {i}");
        assert!(!t.is_pending(0).unwrap());
    }
}

#[test]
fn effective_mask_per_mode() {
    for mode in DisabledMode::ALL {
        let mut t = table(1, mode);
        t.unmask(0).unwrap();
        // Enable clear: counts as masked only in Pending mode.
        assert_eq!(t.is_masked(0).unwrap(), mode == DisabledMode::Pending);
        assert!(!t.can_send(0).unwrap());
        t.set_control(MSIX_CONTROL_ENABLE);
        assert!(!t.is_masked(0).unwrap());
        assert!(t.can_send(0).unwrap());
        t.set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
        assert!(t.is_masked(0).unwrap());
        assert!(!t.is_entry_masked(0).unwrap());
        t.set_control(MSIX_CONTROL_ENABLE);
        t.mask(0).unwrap();
        assert!(t.is_masked(0).unwrap() && t.is_entry_masked(0).unwrap());
    }
}

#[test]
fn coalescing_keeps_one_bit_and_sends_once() {
    let mut t = enabled(4, DisabledMode::Lost);
    let outcomes: Vec<_> = (0..5).map(|_| t.fire(2).unwrap().outcome()).collect();
    assert_eq!(
        outcomes,
        [
            FireOutcome::Pending,
            FireOutcome::Coalesced,
            FireOutcome::Coalesced,
            FireOutcome::Coalesced,
            FireOutcome::Coalesced
        ]
    );
    assert_eq!(t.pending_count(), 1);
    assert_eq!(t.unmask(2).unwrap(), vec![(2, msg(0xfee0_2000, 0x42))]);
    assert_eq!(t.pending_count(), 0);
    assert!(
        t.unmask(2).unwrap().is_empty(),
        "already unmasked: no second send"
    );
}

// ---- releases ---------------------------------------------------------------

#[test]
fn entry_unmask_releases_the_message_as_written() {
    let mut t = enabled(8, DisabledMode::Lost);
    t.fire(5).unwrap();
    // Reprogram while masked: the release carries the new message.
    t.table_write(entry_off(5, ENTRY_ADDR_LO), QWORD, 0x0000_0001_fee0_9000)
        .unwrap();
    t.table_write(entry_off(5, ENTRY_DATA), DWORD, 0x99)
        .unwrap();
    // Writing the mask bit again (still masked) releases nothing.
    assert!(t
        .table_write(entry_off(5, ENTRY_VECTOR_CONTROL), DWORD, 1)
        .unwrap()
        .is_empty());
    let released = t
        .table_write(entry_off(5, ENTRY_VECTOR_CONTROL), DWORD, 0)
        .unwrap();
    assert_eq!(released, vec![(5, msg(0x1_fee0_9000, 0x99))]);
    assert!(!t.is_pending(5).unwrap());
    // A qword data+control write that unmasks sends the data it wrote.
    t.mask(5).unwrap();
    t.fire(5).unwrap();
    let released = t
        .table_write(entry_off(5, ENTRY_DATA), QWORD, 0x0000_0000_0000_0077)
        .unwrap();
    assert_eq!(released, vec![(5, msg(0x1_fee0_9000, 0x77))]);
    // Unmask with nothing pending: nothing sent.
    t.mask(5).unwrap();
    assert!(t.unmask(5).unwrap().is_empty());
}

#[test]
fn function_mask_clear_releases_pending_unmasked_ascending() {
    let n = 130;
    let mut t = enabled(n, DisabledMode::Lost);
    for k in [0, 3, 64, 127, 129] {
        t.unmask(k).unwrap();
    }
    t.set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK);
    for k in [129, 64, 3, 0, 127, 5] {
        assert_eq!(t.fire(k).unwrap().outcome(), FireOutcome::Pending);
    }
    // Entry unmask under Function Mask: still masked, nothing sent.
    assert!(t.unmask(7).unwrap().is_empty());
    let released = t.set_control(MSIX_CONTROL_ENABLE);
    let vectors: Vec<usize> = released.iter().map(|(k, _)| *k).collect();
    assert_eq!(vectors, [0, 3, 64, 127, 129]);
    assert_eq!(released[2].1, msg(0xfee0_0000 + 64 * 0x1000, 0x40 + 64));
    // Vector 5 is still masked by its entry: still pending.
    assert_eq!(t.pending_count(), 1);
    assert!(t.is_pending(5).unwrap());
    // Setting the same control again releases nothing.
    assert!(t.set_control(MSIX_CONTROL_ENABLE).is_empty());
    assert_eq!(t.unmask(5).unwrap(), vec![(5, msg(0xfee0_5000, 0x45))]);
}

#[test]
fn enable_releases_in_pending_mode() {
    let mut t = table(70, DisabledMode::Pending);
    t.unmask(1).unwrap();
    t.unmask(66).unwrap();
    t.set_entry(66, msg(0xfee4_2000, 0x66)).unwrap();
    assert_eq!(t.fire(66).unwrap().outcome(), FireOutcome::Pending);
    assert_eq!(t.fire(66).unwrap().outcome(), FireOutcome::Coalesced);
    assert_eq!(t.fire(1).unwrap().outcome(), FireOutcome::Pending);
    // Entry 2 is still masked by its entry.
    assert_eq!(t.fire(2).unwrap().outcome(), FireOutcome::Pending);
    // Enable together with Function Mask: still masked.
    assert!(t
        .set_control(MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK)
        .is_empty());
    let released = t.set_control(MSIX_CONTROL_ENABLE);
    assert_eq!(released, vec![(1, msg(0, 0)), (66, msg(0xfee4_2000, 0x66))]);
    assert_eq!(t.pending_count(), 1);
}

#[test]
fn disabled_unmask_does_not_send_in_any_mode() {
    // While Enable is clear no message may leave the function (spec), so an
    // entry unmask with a latched bit waits for Enable.
    for mode in DisabledMode::ALL {
        let mut t = enabled(2, mode);
        assert_eq!(t.fire(1).unwrap().outcome(), FireOutcome::Pending);
        t.set_control(0);
        assert!(t.unmask(1).unwrap().is_empty(), "{mode}");
        assert!(t.is_pending(1).unwrap());
        assert_eq!(
            t.set_control(MSIX_CONTROL_ENABLE),
            vec![(1, msg(0xfee0_1000, 0x41))],
            "{mode}"
        );
    }
}

#[test]
fn set_disabled_mode_changes_later_fires_only() {
    let mut t = table(1, DisabledMode::Lost);
    assert_eq!(t.fire(0).unwrap().outcome(), FireOutcome::Lost);
    t.set_disabled_mode(DisabledMode::Intx);
    assert_eq!(t.disabled_mode(), DisabledMode::Intx);
    assert_eq!(t.fire(0).unwrap().outcome(), FireOutcome::Intx);
    t.set_disabled_mode(DisabledMode::Pending);
    assert_eq!(t.fire(0).unwrap().outcome(), FireOutcome::Pending);
    assert_eq!(t.control(), 0);
}

#[test]
fn names_round_trip() {
    for m in DisabledMode::ALL {
        assert_eq!(m.as_str().parse::<DisabledMode>().unwrap(), m);
        assert_eq!(m.to_string(), m.as_str());
    }
    for bad in ["", "Lost", "masked", "pending "] {
        assert!(matches!(
            bad.parse::<DisabledMode>(),
            Err(Error::InvalidArgument(_))
        ));
    }
    let names: Vec<_> = FireOutcome::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(names, ["delivered", "pending", "coalesced", "lost", "intx"]);
}

// ---- property tests ---------------------------------------------------------

/// A deliberately naive model: one bool per pending bit, dwords per entry, and
/// PBA reads assembled bit by bit.
#[derive(Debug, Clone)]
struct Model {
    n: usize,
    mode: DisabledMode,
    enable: bool,
    fmask: bool,
    dwords: Vec<[u32; 4]>,
    pending: Vec<bool>,
}

impl Model {
    fn new(n: usize, mode: DisabledMode) -> Self {
        Self {
            n,
            mode,
            enable: false,
            fmask: false,
            dwords: vec![[0, 0, 0, 1]; n],
            pending: vec![false; n],
        }
    }

    fn message(&self, k: usize) -> MsiMessage {
        let d = self.dwords[k];
        msg(u64::from(d[0]) | (u64::from(d[1]) << 32), d[2])
    }

    fn can_send(&self, k: usize) -> bool {
        self.enable && !self.fmask && self.dwords[k][3] & 1 == 0
    }

    fn fire(&mut self, k: usize) -> Option<(FireOutcome, Option<MsiMessage>)> {
        if k >= self.n {
            return None;
        }
        if !self.enable && self.mode == DisabledMode::Lost {
            return Some((FireOutcome::Lost, None));
        }
        if !self.enable && self.mode == DisabledMode::Intx {
            return Some((FireOutcome::Intx, None));
        }
        if self.can_send(k) {
            return Some((FireOutcome::Delivered, Some(self.message(k))));
        }
        let was = std::mem::replace(&mut self.pending[k], true);
        Some((
            if was {
                FireOutcome::Coalesced
            } else {
                FireOutcome::Pending
            },
            None,
        ))
    }

    fn valid(size: usize, offset: u64, len: u64) -> bool {
        (size == 4 || size == 8)
            && offset % size as u64 == 0
            && offset.checked_add(size as u64).is_some_and(|e| e <= len)
    }

    fn write_dwords(&mut self, k: usize, writes: &[(usize, u32)]) -> Released {
        let before = self.can_send(k);
        for &(d, v) in writes {
            self.dwords[k][d] = if d == 3 { v & 1 } else { v };
        }
        if !before && self.can_send(k) && self.pending[k] {
            self.pending[k] = false;
            return vec![(k, self.message(k))];
        }
        vec![]
    }

    fn table_write(&mut self, offset: u64, size: usize, value: u64) -> Option<Released> {
        if !Self::valid(size, offset, self.n as u64 * 16) || (size == 4 && value >> 32 != 0) {
            return None;
        }
        let k = (offset / 16) as usize;
        let d = ((offset % 16) / 4) as usize;
        let lo = value as u32;
        let hi = (value >> 32) as u32;
        Some(if size == 4 {
            self.write_dwords(k, &[(d, lo)])
        } else {
            self.write_dwords(k, &[(d, lo), (d + 1, hi)])
        })
    }

    fn table_read(&self, offset: u64, size: usize) -> Option<u64> {
        if !Self::valid(size, offset, self.n as u64 * 16) {
            return None;
        }
        let k = (offset / 16) as usize;
        let d = ((offset % 16) / 4) as usize;
        let lo = u64::from(self.dwords[k][d]);
        Some(if size == 4 {
            lo
        } else {
            lo | (u64::from(self.dwords[k][d + 1]) << 32)
        })
    }

    fn pba_read(&self, offset: u64, size: usize) -> Option<u64> {
        let len = self.n.div_ceil(64) as u64 * 8;
        if !Self::valid(size, offset, len) {
            return None;
        }
        let first = offset as usize * 8;
        let mut v = 0u64;
        for i in 0..size * 8 {
            if self.pending.get(first + i).copied().unwrap_or(false) {
                v |= 1u64 << i;
            }
        }
        Some(v)
    }

    fn set_control(&mut self, value: u16) -> Released {
        let before = self.enable && !self.fmask;
        self.enable = value & 0x8000 != 0;
        self.fmask = value & 0x4000 != 0;
        let mut out = vec![];
        if !before && self.enable && !self.fmask {
            for k in 0..self.n {
                if self.pending[k] && self.can_send(k) {
                    self.pending[k] = false;
                    out.push((k, self.message(k)));
                }
            }
        }
        out
    }

    fn control(&self) -> u16 {
        (u16::from(self.enable) << 15) | (u16::from(self.fmask) << 14) | (self.n - 1) as u16
    }
}

#[derive(Debug, Clone)]
enum Op {
    TableWrite(u64, usize, u64),
    TableRead(u64, usize),
    PbaRead(u64, usize),
    SetControl(u16),
    Fire(usize),
    Mask(usize),
    Unmask(usize),
    Program(usize, u64, u32),
    SetMode(DisabledMode),
    Reset,
}

fn mode_strategy() -> impl Strategy<Value = DisabledMode> {
    prop_oneof![
        Just(DisabledMode::Lost),
        Just(DisabledMode::Intx),
        Just(DisabledMode::Pending)
    ]
}

fn op_strategy(n: usize) -> impl Strategy<Value = Op> {
    // Mostly a few hot vectors, so fires, unmasks and writes meet on one entry.
    let hot = prop::sample::select(vec![0, 1.min(n - 1), n - 1]);
    let tlen = n as u64 * 16;
    let offset = prop_oneof![
        4 => (prop_oneof![hot.clone(), 0..n + 1], prop::sample::select(vec![0u64, 4, 8, 12]))
            .prop_map(|(k, at)| k as u64 * 16 + at),
        1 => 0..tlen + 24,
    ];
    let pba_offset = prop_oneof![4 => (0u64..48).prop_map(|o| o & !3), 1 => 0u64..48];
    let size = prop_oneof![4 => Just(4usize), 4 => Just(8usize), 1 => 0usize..12];
    let value = prop_oneof![
        3 => 0u64..4,
        2 => any::<u32>().prop_map(u64::from),
        1 => any::<u64>(),
    ];
    let control = prop_oneof![
        4 => prop::sample::select(vec![0u16, 0x8000, 0x4000, 0xc000]),
        1 => any::<u16>(),
    ];
    let k = prop_oneof![3 => hot.clone(), 1 => 0..n + 2];
    prop_oneof![
        3 => (offset.clone(), size.clone(), value).prop_map(|(o, s, v)| Op::TableWrite(o, s, v)),
        1 => (offset, size.clone()).prop_map(|(o, s)| Op::TableRead(o, s)),
        1 => (pba_offset, size).prop_map(|(o, s)| Op::PbaRead(o, s)),
        2 => control.prop_map(Op::SetControl),
        8 => k.clone().prop_map(Op::Fire),
        2 => k.clone().prop_map(Op::Mask),
        2 => k.clone().prop_map(Op::Unmask),
        1 => (k, any::<u64>(), any::<u32>()).prop_map(|(k, a, d)| Op::Program(k, a, d)),
        1 => mode_strategy().prop_map(Op::SetMode),
        1 => Just(Op::Reset),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, DisabledMode, Vec<Op>)> {
    (
        prop::sample::select(vec![1usize, 2, 3, 31, 64, 65, 130]),
        mode_strategy(),
    )
        .prop_flat_map(|(n, mode)| {
            (
                Just(n),
                Just(mode),
                prop::collection::vec(op_strategy(n), 1..200),
            )
        })
}

/// Check everything observable after a step, and the invariants.
fn check_state(t: &VectorTable, m: &Model) {
    assert_eq!(t.control(), m.control());
    assert_eq!(t.disabled_mode(), m.mode);
    let mut count = 0;
    for k in 0..m.n {
        let entry = t.entry(k).unwrap();
        assert_eq!(entry.message(), m.message(k));
        assert_eq!(entry.vector_control, m.dwords[k][3], "vector control {k}");
        assert_eq!(t.is_pending(k).unwrap(), m.pending[k], "pending {k}");
        count += usize::from(m.pending[k]);
    }
    assert_eq!(t.pending_count(), count);
    // PBA reads (both widths) agree with is_pending.
    for off in (0..pba_size_bytes(m.n)).step_by(4) {
        let dw = t.pba_read(off, DWORD).unwrap();
        for b in 0..32 {
            let k = off as usize * 8 + b;
            let want = k < m.n && t.is_pending(k).unwrap();
            assert_eq!(dw >> b & 1 == 1, want, "PBA dword {off:#x} bit {b}");
        }
        if off % 8 == 0 {
            let qw = t.pba_read(off, QWORD).unwrap();
            assert_eq!(qw as u32 as u64, dw);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn matches_reference_model((n, mode, ops) in scenario()) {
        let mut t = VectorTable::new(n, mode).unwrap();
        let mut m = Model::new(n, mode);
        let mut fires = 0usize;
        let mut by_outcome = [0usize; 5];
        for op in ops {
            // Messages sent by this op: each must come from a vector that can send.
            let sent: Released = match op {
                Op::TableWrite(o, s, v) => {
                    let got = t.table_write(o, s, v);
                    let want = m.table_write(o, s, v);
                    prop_assert_eq!(got.is_err(), want.is_none(), "write {:#x}/{}", o, s);
                    prop_assert!(got.is_ok() || is_mmio(&got));
                    let got = got.unwrap_or_default();
                    prop_assert_eq!(&got, &want.unwrap_or_default());
                    got
                }
                Op::TableRead(o, s) => {
                    let got = t.table_read(o, s);
                    prop_assert!(got.is_ok() || is_mmio(&got));
                    prop_assert_eq!(got.ok(), m.table_read(o, s));
                    vec![]
                }
                Op::PbaRead(o, s) => {
                    let got = t.pba_read(o, s);
                    prop_assert!(got.is_ok() || is_mmio(&got));
                    prop_assert_eq!(got.ok(), m.pba_read(o, s));
                    vec![]
                }
                Op::SetControl(v) => {
                    let got = t.set_control(v);
                    prop_assert_eq!(&got, &m.set_control(v));
                    got
                }
                Op::Fire(k) => {
                    // `sending` names the message exactly when `fire` sends it.
                    let sending = t.sending(k);
                    // On a latching table `latch` is `fire`: the same
                    // outcome (or error) and the same table after.
                    let latched = t.latches_every_fire().then(|| {
                        let mut u = t.clone();
                        (u.latch(k), u)
                    });
                    let got = t.fire(k);
                    if let Some((latch, u)) = latched {
                        let outcome = got.as_ref().ok().map(Fired::outcome);
                        let want = latch.ok().map(|clear| {
                            if clear { FireOutcome::Pending } else { FireOutcome::Coalesced }
                        });
                        prop_assert_eq!(outcome, want, "latch({})", k);
                        prop_assert_eq!(&u, &t);
                    }
                    let sent = got.as_ref().ok().and_then(Fired::message);
                    prop_assert_eq!(sending, sent, "sending({})", k);
                    let want = m.fire(k);
                    match (got, want) {
                        (Err(Error::InvalidArgument(_)), None) => vec![],
                        (Ok(f), Some((outcome, message))) => {
                            fires += 1;
                            let slot = FireOutcome::ALL.iter().position(|&o| o == f.outcome());
                            by_outcome[slot.unwrap()] += 1;
                            prop_assert_eq!(f.outcome(), outcome);
                            prop_assert_eq!(f.message(), message);
                            prop_assert_eq!(
                                f.message().is_some(),
                                f.outcome() == FireOutcome::Delivered
                            );
                            f.message().map(|msg| (k, msg)).into_iter().collect()
                        }
                        (got, want) => {
                            let why = format!("fire {k}: {got:?} vs {want:?}");
                            return Err(TestCaseError::fail(why));
                        }
                    }
                }
                Op::Mask(k) | Op::Unmask(k) => {
                    let bit = u32::from(matches!(op, Op::Mask(_)));
                    let got = if bit == 1 { t.mask(k) } else { t.unmask(k) };
                    if k < n {
                        let want = m.write_dwords(k, &[(3, bit)]);
                        prop_assert_eq!(got.as_ref().ok(), Some(&want));
                    } else {
                        prop_assert!(matches!(got, Err(Error::InvalidArgument(_))));
                    }
                    got.unwrap_or_default()
                }
                Op::Program(k, a, d) => {
                    let got = t.set_entry(k, msg(a, d));
                    if k < n {
                        prop_assert!(got.is_ok());
                        let writes = [(0, a as u32), (1, (a >> 32) as u32), (2, d)];
                        let released = m.write_dwords(k, &writes);
                        prop_assert!(released.is_empty());
                    } else {
                        prop_assert!(matches!(got, Err(Error::InvalidArgument(_))));
                    }
                    vec![]
                }
                Op::SetMode(mode) => {
                    t.set_disabled_mode(mode);
                    m.mode = mode;
                    vec![]
                }
                Op::Reset => {
                    t.reset();
                    m = Model { mode: m.mode, ..Model::new(n, m.mode) };
                    vec![]
                }
            };
            // No message leaves a vector that is (effectively) masked, and a
            // sent vector's pending bit is clear afterwards.
            for (k, message) in &sent {
                prop_assert!(t.can_send(*k).unwrap());
                prop_assert!(!t.is_masked(*k).unwrap());
                prop_assert!(!t.is_pending(*k).unwrap());
                prop_assert_eq!(*message, t.entry(*k).unwrap().message());
            }
            // Released lists are ascending.
            prop_assert!(sent.windows(2).all(|w| w[0].0 < w[1].0));
            check_state(&t, &m);
        }
        prop_assert_eq!(fires, by_outcome.iter().sum::<usize>());
    }

    #[test]
    fn never_panics_on_any_input(
        n in prop_oneof![0usize..3000, any::<usize>()],
        mode in mode_strategy(),
        ops in prop::collection::vec(
            (
                0u8..10,
                any::<u64>(),
                prop_oneof![0usize..17, any::<usize>()],
                any::<u64>(),
                any::<usize>(),
            ),
            0..100,
        ),
    ) {
        let Ok(mut t) = VectorTable::new(n, mode) else {
            prop_assert!(n == 0 || n > MAX_ENTRIES);
            return Ok(());
        };
        for (which, offset, size, value, k) in ops {
            // Half the time fold the arbitrary values into the interesting range.
            let (offset, k) = if value & 1 == 0 {
                (offset % (table_size_bytes(n) + 32), k % (n + 2))
            } else {
                (offset, k)
            };
            let _ = match which {
                0 => t.table_read(offset, size).map(|_| ()),
                1 => t.table_write(offset, size, value).map(|_| ()),
                2 => t.pba_read(offset, size).map(|_| ()),
                3 => t.pba_write(offset, size, value),
                4 => t.fire(k).map(|_| ()),
                5 => t.mask(k).map(|_| ()),
                6 => t.unmask(k).map(|_| ()),
                7 => t.set_entry(k, msg(value, offset as u32)),
                8 => {
                    t.set_control(value as u16);
                    Ok(())
                }
                _ => t.entry(k).and(t.is_masked(k)).and(t.is_pending(k)).map(|_| ()),
            };
            prop_assert!(t.pending_count() <= t.entries());
        }
    }
}

#[test]
fn mask_all_masks_every_entry_and_keeps_pending_bits() {
    let mut t = VectorTable::new(130, DisabledMode::Lost).unwrap();
    t.set_control(MSIX_CONTROL_ENABLE);
    for k in [0, 64, 129] {
        t.unmask(k).unwrap();
    }
    t.mask_all();
    for k in 0..130 {
        assert!(t.is_entry_masked(k).unwrap(), "entry {k}");
    }
    // A fire now latches; unmasking releases it, as after any mask.
    assert_eq!(t.fire(64).unwrap().outcome(), FireOutcome::Pending);
    assert_eq!(t.unmask(64).unwrap().len(), 1);
}

#[test]
fn program_unmask_is_set_entry_then_unmask() {
    // Every control state and mask state, with and without a pending bit:
    // the one update leaves the table as the two did and releases the same.
    let new = msg(0xfee0_5000, 0x77);
    for control in [
        0,
        MSIX_CONTROL_ENABLE,
        MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK,
    ] {
        for masked in [true, false] {
            for fire_first in [true, false] {
                let mut a = enabled(4, DisabledMode::Pending);
                if !masked {
                    a.unmask_one(2).unwrap();
                }
                a.set_control(control);
                if fire_first {
                    a.fire(2).unwrap();
                }
                let mut b = a.clone();
                a.set_entry(2, new).unwrap();
                let want = a.unmask_one(2).unwrap();
                assert_eq!(b.program_unmask(2, new).unwrap(), want);
                assert_eq!(
                    b, a,
                    "control {control:#x} masked {masked} fired {fire_first}"
                );
            }
        }
    }
    assert!(enabled(4, DisabledMode::Lost)
        .program_unmask(4, new)
        .is_err());
}
