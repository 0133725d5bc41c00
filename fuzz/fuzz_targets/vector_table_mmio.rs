//! `VectorTable` under arbitrary MMIO, config and device sequences, checked op by op
//! against a plain reference model of the PCI MSI-X capability as vector_table.rs documents
//! it (bus contract, Vector Control bit 0 only, PBA read-only, releases on unmask).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use msixcore_core::msi::MsiMessage;
use msixcore_core::vector_table::{DisabledMode, FireOutcome, VectorTable};

#[derive(Arbitrary, Debug)]
enum Size {
    Dword,
    Qword,
    Other(u8),
}

impl Size {
    fn bytes(&self) -> usize {
        match self {
            Size::Dword => 4,
            Size::Qword => 8,
            Size::Other(n) => usize::from(*n),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Offset {
    /// Mostly inside (or just past) a small region.
    Near(u16),
    Far(u64),
}

impl Offset {
    fn get(&self) -> u64 {
        match self {
            Offset::Near(o) => u64::from(*o % 4096),
            Offset::Far(o) => *o,
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    TableRead(Offset, Size),
    TableWrite(Offset, Size, u64),
    PbaRead(Offset, Size),
    PbaWrite(Offset, Size, u64),
    SetControl(u16),
    Fire(u16),
    Mask(u16),
    Unmask(u16),
    MaskAll,
    SetEntry(u16, u64, u32),
    SetDisabledMode(u8),
    Reset,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: u8,
    big: bool,
    mode: u8,
    ops: Vec<Op>,
}

fn mode_of(b: u8) -> DisabledMode {
    DisabledMode::ALL[usize::from(b) % DisabledMode::ALL.len()]
}

/// The reference: dwords exactly as the spec lays them out.
#[derive(Clone, Debug, PartialEq)]
struct Model {
    /// Per entry: address low, address high, data, vector control (bit 0 only).
    dwords: Vec<[u32; 4]>,
    pending: Vec<bool>,
    enable: bool,
    fmask: bool,
    mode: DisabledMode,
}

impl Model {
    fn new(n: usize, mode: DisabledMode) -> Self {
        Self {
            dwords: vec![[0, 0, 0, 1]; n],
            pending: vec![false; n],
            enable: false,
            fmask: false,
            mode,
        }
    }
    fn n(&self) -> usize {
        self.dwords.len()
    }
    fn msg(&self, k: usize) -> MsiMessage {
        let d = self.dwords[k];
        MsiMessage::new(u64::from(d[0]) | (u64::from(d[1]) << 32), d[2])
    }
    fn function_can_send(&self) -> bool {
        self.enable && !self.fmask
    }
    fn can_send(&self, k: usize) -> bool {
        self.function_can_send() && self.dwords[k][3] & 1 == 0
    }
    /// Whether an access of `size` bytes at `offset` is valid for a region of `len` bytes.
    fn valid(offset: u64, size: usize, len: u64) -> bool {
        (size == 4 || size == 8)
            && offset % size as u64 == 0
            && offset.checked_add(size as u64).is_some_and(|e| e <= len)
    }
    fn table_len(&self) -> u64 {
        self.n() as u64 * 16
    }
    fn pba_len(&self) -> u64 {
        self.n().div_ceil(64) as u64 * 8
    }
    fn pba_word(&self, w: usize) -> u64 {
        (0..64)
            .filter(|b| self.pending.get(w * 64 + b).copied().unwrap_or(false))
            .fold(0u64, |acc, b| acc | (1 << b))
    }
    /// Apply a change to entry k; the release rule of `update_entry`.
    fn update(&mut self, k: usize, f: impl FnOnce(&mut [u32; 4])) -> Vec<(usize, MsiMessage)> {
        let could = self.can_send(k);
        f(&mut self.dwords[k]);
        self.dwords[k][3] &= 1;
        if !could && self.can_send(k) && self.pending[k] {
            self.pending[k] = false;
            return vec![(k, self.msg(k))];
        }
        Vec::new()
    }
}

/// Compare the function-wide state and every entry, or only entry `only` (after an op that
/// touches one entry; `pending_count` still covers the whole PBA).
fn check_state(t: &VectorTable, m: &Model, only: Option<usize>) {
    let n = m.n();
    assert_eq!(t.entries(), n);
    assert_eq!(t.is_enabled(), m.enable);
    assert_eq!(t.is_function_masked(), m.fmask);
    assert_eq!(t.disabled_mode(), m.mode);
    let mut want_control = (n as u16 - 1) & 0x7ff;
    if m.enable {
        want_control |= 1 << 15;
    }
    if m.fmask {
        want_control |= 1 << 14;
    }
    assert_eq!(t.control(), want_control);
    assert_eq!(t.pending_count(), m.pending.iter().filter(|&&p| p).count());
    let range = match only {
        Some(k) => k.min(n - 1)..k.min(n - 1) + 1,
        None => 0..n,
    };
    for k in range {
        let e = t.entry(k).unwrap();
        assert_eq!(e.message(), m.msg(k), "entry {k}");
        assert_eq!(e.vector_control, m.dwords[k][3], "entry {k} vector control");
        assert_eq!(t.is_pending(k).unwrap(), m.pending[k]);
        assert_eq!(t.can_send(k).unwrap(), m.can_send(k));
        let masked =
            m.fmask || m.dwords[k][3] & 1 != 0 || (!m.enable && m.mode == DisabledMode::Pending);
        assert_eq!(t.is_masked(k).unwrap(), masked);
        // A vector that can send never keeps a pending bit (it would have been released).
        assert!(
            !(m.can_send(k) && m.pending[k]),
            "vector {k} sendable with Pending set"
        );
    }
    assert!(t.entry(n).is_err());
    assert!(t.is_pending(n).is_err());
    // Bits past N in the last PBA qword read 0.
    let last = (n - 1) / 64;
    let word = t.pba_read(last as u64 * 8, 8).unwrap();
    let used = n - last * 64;
    if used < 64 {
        assert_eq!(word >> used, 0, "PBA bits past the table");
    }
}

fuzz_target!(|input: Input| {
    let n = if input.big {
        1 + usize::from(input.entries) * 8 // up to 2041: PBA of 32 qwords
    } else {
        1 + usize::from(input.entries % 140)
    };
    let mode = mode_of(input.mode);
    assert!(VectorTable::new(0, mode).is_err());
    assert!(VectorTable::new(2049, mode).is_err());
    let mut t = VectorTable::new(n, mode).unwrap();
    let mut m = Model::new(n, mode);
    for op in input.ops.iter().take(128) {
        let only = match op {
            Op::TableRead(o, _) | Op::TableWrite(o, _, _) => Some((o.get() / 16) as usize),
            Op::Fire(k) | Op::Mask(k) | Op::Unmask(k) | Op::SetEntry(k, _, _) => {
                Some(usize::from(*k) % (n + 1))
            }
            Op::PbaRead(..) | Op::PbaWrite(..) => Some(0),
            _ => None,
        };
        match op {
            Op::TableRead(o, s) => {
                let (off, size) = (o.get(), s.bytes());
                let r = t.table_read(off, size);
                if Model::valid(off, size, m.table_len()) {
                    let (k, at) = ((off / 16) as usize, (off % 16 / 4) as usize);
                    let d = m.dwords[k];
                    let want = if size == 4 {
                        u64::from(d[at])
                    } else {
                        u64::from(d[at]) | (u64::from(d[at + 1]) << 32)
                    };
                    assert_eq!(r.unwrap(), want, "table read {off:#x}/{size}");
                } else {
                    assert!(r.is_err(), "bad table read {off:#x}/{size} accepted");
                }
            }
            Op::TableWrite(o, s, v) => {
                let (off, size) = (o.get(), s.bytes());
                let before = t.clone();
                let r = t.table_write(off, size, *v);
                let fits = size == 8 || *v <= u64::from(u32::MAX);
                if Model::valid(off, size, m.table_len()) && fits {
                    let (k, at) = ((off / 16) as usize, (off % 16 / 4) as usize);
                    let want = m.update(k, |d| {
                        d[at] = *v as u32;
                        if size == 8 {
                            d[at + 1] = (*v >> 32) as u32;
                        }
                    });
                    assert_eq!(r.unwrap(), want, "table write {off:#x}/{size}");
                } else {
                    assert!(r.is_err(), "bad table write {off:#x}/{size} accepted");
                    assert_eq!(t, before, "a refused write changed the table");
                }
            }
            Op::PbaRead(o, s) => {
                let (off, size) = (o.get(), s.bytes());
                let r = t.pba_read(off, size);
                if Model::valid(off, size, m.pba_len()) {
                    let word = m.pba_word((off / 8) as usize);
                    let want = match (size, off % 8) {
                        (8, _) => word,
                        (_, 0) => word & 0xffff_ffff,
                        _ => word >> 32,
                    };
                    assert_eq!(r.unwrap(), want, "PBA read {off:#x}/{size}");
                } else {
                    assert!(r.is_err(), "bad PBA read {off:#x}/{size} accepted");
                }
            }
            Op::PbaWrite(o, s, v) => {
                let before = t.clone();
                assert!(t.pba_write(o.get(), s.bytes(), *v).is_err());
                assert_eq!(t, before, "a PBA write changed the table");
            }
            Op::SetControl(v) => {
                let could = m.function_can_send();
                m.enable = v & (1 << 15) != 0;
                m.fmask = v & (1 << 14) != 0;
                let mut want = Vec::new();
                if !could && m.function_can_send() {
                    for k in 0..n {
                        if m.pending[k] && m.dwords[k][3] & 1 == 0 {
                            m.pending[k] = false;
                            want.push((k, m.msg(k)));
                        }
                    }
                }
                assert_eq!(t.set_control(*v), want, "set_control {v:#x}");
            }
            Op::Fire(k) => {
                let k = usize::from(*k) % (n + 1);
                let r = t.fire(k);
                if k >= n {
                    assert!(r.is_err());
                    continue;
                }
                let f = r.unwrap();
                let want = if !m.enable && m.mode == DisabledMode::Lost {
                    FireOutcome::Lost
                } else if !m.enable && m.mode == DisabledMode::Intx {
                    FireOutcome::Intx
                } else if m.can_send(k) {
                    FireOutcome::Delivered
                } else if m.pending[k] {
                    FireOutcome::Coalesced
                } else {
                    m.pending[k] = true;
                    FireOutcome::Pending
                };
                assert_eq!(f.outcome(), want, "fire {k}");
                let msg = (want == FireOutcome::Delivered).then(|| m.msg(k));
                assert_eq!(f.message(), msg);
            }
            Op::Mask(k) | Op::Unmask(k) => {
                let k = usize::from(*k) % (n + 1);
                let unmask = matches!(op, Op::Unmask(_));
                let r = if unmask { t.unmask(k) } else { t.mask(k) };
                if k >= n {
                    assert!(r.is_err());
                    continue;
                }
                let want = m.update(k, |d| d[3] = u32::from(!unmask));
                assert_eq!(r.unwrap(), want);
            }
            Op::MaskAll => {
                t.mask_all();
                for d in &mut m.dwords {
                    d[3] = 1;
                }
            }
            Op::SetEntry(k, a, d) => {
                let k = usize::from(*k) % (n + 1);
                let r = t.set_entry(k, MsiMessage::new(*a, *d));
                if k >= n {
                    assert!(r.is_err());
                    continue;
                }
                r.unwrap();
                // Mask unchanged: nothing can be released.
                let released = m.update(k, |e| {
                    e[0] = *a as u32;
                    e[1] = (*a >> 32) as u32;
                    e[2] = *d;
                });
                assert!(released.is_empty());
            }
            Op::SetDisabledMode(b) => {
                m.mode = mode_of(*b);
                t.set_disabled_mode(m.mode);
            }
            Op::Reset => {
                t.reset();
                m = Model::new(n, m.mode);
            }
        }
        check_state(&t, &m, only);
    }
    check_state(&t, &m, None);
});
