//! Interrupt remapping, Intel (IrteTable + InterruptRemapper) and AMD (AmdIrteTables +
//! AmdRemapper), over arbitrary table contents, messages and requester ids. Every remap is
//! compared with a decision written here from the VT-d / AMD-Vi formats: a blocked request
//! never yields a target, a target is the looked-up entry's, and the fault log counters move
//! by exactly one per block (total / overflowed / suppressed arithmetic).
#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msixcore_core::amd_irte::AmdIrte;
use msixcore_core::irte::{Irte, IrteFields};
use msixcore_core::msi::MsiMessage;
use msixcore_core::remap::{
    compose_amd_msi, compose_msi, AmdRemapper, Fault, FaultLog, FaultReason, InterruptRemapper,
    RemapResult, Target,
};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Rid {
    /// A handful of neighbours (same bus, functions differ) so SID checks both pass and fail.
    Near(u8),
    Any(u16),
}

impl Rid {
    fn get(self) -> u16 {
        match self {
            Rid::Near(i) => 0x0300 | u16::from(i % 12),
            Rid::Any(r) => r,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Msg {
    Intel(u16, Option<u16>),
    Amd(u16),
    Window(u32, u32),
    Raw(u64, u32),
}

impl Msg {
    fn get(&self) -> MsiMessage {
        match self {
            Msg::Intel(h, s) => compose_msi(*h % 512, s.map(|s| s % 8)),
            Msg::Amd(i) => compose_amd_msi(*i),
            Msg::Window(a, d) => MsiMessage::new(0xFEE0_0000 | u64::from(a & 0xF_FFFF), *d),
            Msg::Raw(a, d) => MsiMessage::new(*a, *d),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct IntelFields {
    present: bool,
    fpd: bool,
    dest_mode: bool,
    redir_hint: bool,
    trigger_mode: bool,
    delivery_mode: u8,
    vector: u8,
    dest_id: u32,
    sid: Rid,
    sq: u8,
    svt: u8,
}

#[derive(Arbitrary, Debug)]
enum IntelOp {
    Alloc(u8),
    Free(u16, u8),
    Set(u16, IntelFields),
    SetRaw(u16, u128),
    Clear(u16),
    Remap(Rid, Msg),
    Drain,
    Compat(bool),
}

#[derive(Arbitrary, Debug)]
enum AmdOp {
    Alloc(Rid, u8, bool),
    Create(Rid, u8),
    Free(Rid, u16, u8),
    Set(Rid, u16, u128),
    Clear(Rid, u16),
    Remap(Rid, Msg),
    Drain,
}

#[derive(Arbitrary, Debug)]
enum Input {
    Intel {
        order: u8,
        compat: bool,
        capacity: u8,
        ops: Vec<IntelOp>,
    },
    Amd {
        order: u8,
        capacity: u8,
        ops: Vec<AmdOp>,
    },
}

/// The fault log's arithmetic, followed from outside.
#[derive(Default)]
struct LogModel {
    total: u64,
    suppressed: u64,
    overflowed: u64,
    kept: usize,
}

impl LogModel {
    fn after(&mut self, r: &RemapResult, rid: u16, capacity: usize) {
        match r {
            RemapResult::Remapped(_) => {}
            RemapResult::Blocked { fault, suppressed } => {
                assert_eq!(fault.requester_id, rid);
                if *suppressed {
                    self.suppressed += 1;
                } else {
                    self.total += 1;
                    if self.kept < capacity {
                        self.kept += 1;
                    } else {
                        self.overflowed += 1;
                    }
                }
            }
        }
    }
    fn check(&self, log: &FaultLog, drained: u64) {
        assert_eq!(log.total(), self.total);
        assert_eq!(log.suppressed(), self.suppressed);
        assert_eq!(log.overflowed(), self.overflowed);
        assert_eq!(log.records().len(), self.kept);
        assert!(log.records().len() <= log.capacity());
        // Every counted fault is kept, was drained, or overflowed.
        assert_eq!(
            log.total(),
            log.records().len() as u64 + drained + log.overflowed()
        );
    }
}

fn blocked(index: Option<u32>, reason: FaultReason, suppressed: bool, rid: u16) -> RemapResult {
    RemapResult::Blocked {
        fault: Fault {
            requester_id: rid,
            index,
            reason,
        },
        suppressed,
    }
}

fn in_window(a: u64) -> bool {
    a >> 32 == 0 && a & 0xFFF0_0000 == 0xFEE0_0000
}

/// VT-d source validation, from the IRTE's SVT/SQ/SID fields.
fn sid_ok(e: &Irte, rid: u16) -> Result<(), FaultReason> {
    match e.svt() {
        0 => Ok(()),
        1 => {
            let ignore: u16 = match e.sq() {
                0 => 0,
                1 => 0b100,
                2 => 0b110,
                _ => 0b111,
            };
            if rid & !ignore == e.sid() & !ignore {
                Ok(())
            } else {
                Err(FaultReason::SidMismatch)
            }
        }
        2 => {
            let bus = rid >> 8;
            if (e.sid() >> 8) <= bus && bus <= (e.sid() & 0xFF) {
                Ok(())
            } else {
                Err(FaultReason::SidMismatch)
            }
        }
        _ => Err(FaultReason::ReservedSvt),
    }
}

fn intel_expected(r: &InterruptRemapper, rid: u16, m: &MsiMessage) -> RemapResult {
    let a = m.address;
    if !in_window(a) {
        return blocked(None, FaultReason::NotInInterruptWindow, false, rid);
    }
    if a & (1 << 4) == 0 {
        if !r.allow_compat() {
            return blocked(None, FaultReason::CompatFormatBlocked, false, rid);
        }
        return RemapResult::Remapped(Target {
            vector: m.data as u8,
            dest_id: ((a >> 12) & 0xFF) as u32,
            dest_mode: a & (1 << 2) != 0,
            delivery_mode: ((m.data >> 8) & 7) as u8,
            trigger_mode: m.data & (1 << 15) != 0,
            irte_index: None,
        });
    }
    let handle = ((a >> 5) & 0x7FFF) as u32 | ((((a >> 2) & 1) as u32) << 15);
    let shv = a & (1 << 3) != 0;
    if shv && m.data >> 16 != 0 {
        return blocked(None, FaultReason::ReservedRequestField, false, rid);
    }
    let index = handle + if shv { m.data & 0xFFFF } else { 0 };
    if index >= r.table().entries() {
        return blocked(Some(index), FaultReason::IndexOutOfRange, false, rid);
    }
    let e = r.table().get(index).unwrap();
    if !e.present() {
        return blocked(Some(index), FaultReason::NotPresent, e.fpd(), rid);
    }
    if let Err(reason) = sid_ok(&e, rid) {
        return blocked(Some(index), reason, e.fpd(), rid);
    }
    RemapResult::Remapped(Target {
        vector: e.vector(),
        dest_id: e.dest_id(),
        dest_mode: e.dest_mode(),
        delivery_mode: e.delivery_mode(),
        trigger_mode: e.trigger_mode(),
        irte_index: Some(index as u16),
    })
}

fn amd_expected(r: &AmdRemapper, rid: u16, m: &MsiMessage) -> RemapResult {
    if !in_window(m.address) {
        return blocked(None, FaultReason::NotInInterruptWindow, false, rid);
    }
    let index = m.data & 0x7FF;
    let Some(len) = r.tables().table_len(rid) else {
        return blocked(Some(index), FaultReason::NoTable, false, rid);
    };
    // Tables of up to 512 entries read data 10:8 as the message type (QEMU
    // amdvi_int_remap_msi): fixed and arbitrated pass, 011b/110b are reserved,
    // the rest (SMI, NMI, INIT, ExtINT) have no pass bit for an endpoint.
    if len <= 512 {
        match (m.data >> 8) & 7 {
            0 | 1 => {}
            3 | 6 => return blocked(Some(index), FaultReason::ReservedRequestField, false, rid),
            _ => return blocked(Some(index), FaultReason::MessageTypeBlocked, false, rid),
        }
    }
    if index >= len {
        return blocked(Some(index), FaultReason::IndexOutOfRange, false, rid);
    }
    let e = r.tables().get(rid, index).unwrap();
    if !e.remap_en() {
        return blocked(Some(index), FaultReason::NotPresent, e.sup_iopf(), rid);
    }
    RemapResult::Remapped(Target {
        vector: e.vector(),
        dest_id: e.destination(),
        dest_mode: e.dest_mode(),
        delivery_mode: e.int_type(),
        trigger_mode: m.data & (1 << 15) != 0,
        irte_index: Some(index as u16),
    })
}

fn run_intel(order: u8, compat: bool, capacity: u8, ops: &[IntelOp]) {
    let entries = 1u32 << (order % 9);
    let capacity = usize::from(capacity % 8);
    let mut r = InterruptRemapper::with_fault_log_capacity(entries, compat, capacity).unwrap();
    let mut log = LogModel::default();
    let mut drained = 0u64;
    // Live blocks (start, rounded size), the allocator's books followed from outside.
    let mut blocks: Vec<(u32, u32)> = Vec::new();
    for op in ops.iter().take(128) {
        match op {
            IntelOp::Alloc(c) => {
                let count = u32::from(*c % 40) + 1;
                if let Ok(start) = r.table_mut().alloc(count) {
                    let size = count.next_power_of_two();
                    let start = u32::from(start);
                    assert_eq!(start % size, 0, "block not naturally aligned");
                    assert!(start + size <= entries);
                    for &(s, z) in &blocks {
                        assert!(start + size <= s || s + z <= start, "blocks overlap");
                    }
                    blocks.push((start, size));
                }
            }
            IntelOp::Free(i, c) => {
                let (index, count) = (u32::from(*i) % (entries + 2), u32::from(*c % 40) + 1);
                let ok = r.table_mut().free(index, count).is_ok();
                let pos = blocks
                    .iter()
                    .position(|&(s, z)| s == index && z == count.next_power_of_two());
                assert_eq!(ok, pos.is_some(), "free({index}, {count})");
                if let Some(p) = pos {
                    blocks.swap_remove(p);
                }
            }
            IntelOp::Set(i, f) => {
                let fields = IrteFields {
                    present: f.present,
                    fpd: f.fpd,
                    dest_mode: f.dest_mode,
                    redir_hint: f.redir_hint,
                    trigger_mode: f.trigger_mode,
                    delivery_mode: f.delivery_mode % 9,
                    avail: 0,
                    vector: f.vector,
                    dest_id: f.dest_id,
                    sid: f.sid.get(),
                    sq: f.sq % 5,
                    svt: f.svt % 5,
                };
                let Ok(irte) = Irte::new(fields) else {
                    assert!(fields.delivery_mode > 7 || fields.sq > 3 || fields.svt > 3);
                    continue;
                };
                assert_eq!(Irte::from_u128(irte.to_u128()).unwrap(), irte);
                let index = u32::from(*i) % (entries + 2);
                let ok = r.table_mut().set(index, irte).is_ok();
                assert_eq!(ok, r.table().is_allocated(index));
                if ok {
                    assert_eq!(r.table().get(index).unwrap(), irte);
                }
            }
            IntelOp::SetRaw(i, raw) => {
                if let Ok(irte) = Irte::from_u128(*raw) {
                    assert_eq!(irte.to_u128(), *raw, "IRTE parse/encode round trip");
                    let _ = r.table_mut().set(u32::from(*i) % entries, irte);
                }
            }
            IntelOp::Clear(i) => {
                let _ = r.table_mut().clear(u32::from(*i) % entries);
            }
            IntelOp::Remap(rid, m) => {
                let (rid, m) = (rid.get(), m.get());
                let want = intel_expected(&r, rid, &m);
                let got = r.remap(rid, &m);
                assert_eq!(got, want, "remap {m:?} from {rid:#06x}");
                log.after(&got, rid, capacity);
            }
            IntelOp::Drain => {
                drained += r.fault_log_mut().drain().len() as u64;
                log.kept = 0;
            }
            IntelOp::Compat(c) => r.set_allow_compat(*c),
        }
        log.check(r.fault_log(), drained);
        intel_books(&r, &blocks);
    }
    intel_books(&r, &blocks);
}

/// The table's counters against a recount of its entries and the live blocks.
fn intel_books(r: &InterruptRemapper, blocks: &[(u32, u32)]) {
    let entries = r.table().entries();
    {
        let t = r.table();
        assert_eq!(t.blocks() as usize, blocks.len());
        assert_eq!(t.in_use(), blocks.iter().map(|b| b.1).sum::<u32>());
        assert_eq!(t.free_slots(), entries - t.in_use());
        let present = (0..entries)
            .filter(|&i| t.get(i).unwrap().present())
            .count();
        assert_eq!(t.present() as usize, present);
        // Unallocated slots are clear (free and clear zero them; set needs an allocation).
        for i in 0..entries {
            if !t.is_allocated(i) {
                assert_eq!(t.get(i).unwrap(), Irte::default());
            }
        }
    }
}

fn run_amd(order: u8, capacity: u8, ops: &[AmdOp]) {
    let size = 1u32 << (order % 7);
    let capacity = usize::from(capacity % 8);
    let mut r = AmdRemapper::with_fault_log_capacity(size, capacity).unwrap();
    let mut log = LogModel::default();
    let mut drained = 0u64;
    let mut rids: BTreeSet<u16> = BTreeSet::new();
    for op in ops.iter().take(128) {
        match op {
            AmdOp::Alloc(rid, c, aligned) => {
                let rid = rid.get();
                let count = u32::from(*c % 20) + 1;
                let res = if *aligned {
                    r.tables_mut().alloc_aligned(rid, count)
                } else {
                    r.tables_mut().alloc(rid, count)
                };
                if let Ok(start) = res {
                    rids.insert(rid);
                    let start = u32::from(start);
                    if *aligned {
                        assert_eq!(start % count.next_power_of_two(), 0);
                    }
                    assert!(start + count <= r.tables().table_len(rid).unwrap());
                }
            }
            AmdOp::Create(rid, s) => {
                let rid = rid.get();
                let had = r.tables().table_len(rid).is_some();
                let s = 1u32 << (s % 8);
                let ok = r.tables_mut().create_table(rid, s).is_ok();
                assert_eq!(ok, !had);
                if ok {
                    rids.insert(rid);
                    assert_eq!(r.tables().table_len(rid), Some(s));
                }
            }
            AmdOp::Free(rid, i, c) => {
                let _ = r
                    .tables_mut()
                    .free(rid.get(), u32::from(*i % 300), u32::from(*c % 8));
            }
            AmdOp::Set(rid, i, raw) => {
                let Ok(e) = AmdIrte::from_u128(*raw) else {
                    continue;
                };
                assert_eq!(e.to_u128(), *raw, "AMD IRTE parse/encode round trip");
                assert_eq!(AmdIrte::new(e.fields()).unwrap(), e);
                let (rid, i) = (rid.get(), u32::from(*i % 300));
                if r.tables_mut().set(rid, i, e).is_ok() {
                    assert_eq!(r.tables().get(rid, i).unwrap(), e);
                }
            }
            AmdOp::Clear(rid, i) => {
                let _ = r.tables_mut().clear(rid.get(), u32::from(*i % 300));
            }
            AmdOp::Remap(rid, m) => {
                let (rid, m) = (rid.get(), m.get());
                let want = amd_expected(&r, rid, &m);
                let got = r.remap(rid, &m);
                assert_eq!(got, want, "AMD remap {m:?} from {rid:#06x}");
                log.after(&got, rid, capacity);
            }
            AmdOp::Drain => {
                drained += r.fault_log_mut().drain().len() as u64;
                log.kept = 0;
            }
        }
        log.check(r.fault_log(), drained);
        amd_books(&r, &rids);
    }
}

/// The tables' counters against a recount over every table's entries.
fn amd_books(r: &AmdRemapper, rids: &BTreeSet<u16>) {
    {
        let t = r.tables();
        assert_eq!(t.tables() as usize, rids.len());
        let in_use: u64 = rids.iter().map(|&rid| u64::from(t.in_use_of(rid))).sum();
        assert_eq!(t.in_use(), in_use);
        let mut enabled = 0u64;
        for &rid in rids {
            let len = t.table_len(rid).unwrap();
            assert!(t.in_use_of(rid) <= len);
            for i in 0..len {
                if t.get(rid, i).unwrap().remap_en() {
                    enabled += 1;
                }
            }
        }
        assert_eq!(t.enabled(), enabled);
    }
}

fuzz_target!(|input: Input| {
    match input {
        Input::Intel {
            order,
            compat,
            capacity,
            ops,
        } => run_intel(order, compat, capacity, &ops),
        Input::Amd {
            order,
            capacity,
            ops,
        } => run_amd(order, capacity, &ops),
    }
});
