//! The MSI formats an IOMMU sees and the remap check that is the security
//! boundary: (requester id, address, data) → a CPU target or a blocked,
//! logged fault.
//!
//! Intel remappable format (VT-d spec §5.1.2.2; Linux `fill_msi_msg`):
//! address 0xFEEx_xxxx with bit 4 (interrupt format) = 1, handle[14:0] in
//! bits 19:5, SHV in bit 3, handle[15] in bit 2; with SHV the data's bits 15:0
//! are a sub-handle added to the handle. Linux always sets SHV (sub-handle 0
//! for MSI-X, i for vector i of a multi-MSI block).
//! Compatibility format: bit 4 = 0; destination in address bits 19:12, RH bit
//! 3, DM bit 2; vector data 7:0, delivery mode 10:8, trigger mode 15.
//!
//! AMD (Linux `amd/iommu.c` `fill_msi_msg`): a plain compatibility-format
//! address 0xFEE0_0000 and data = IRTE index; the IOMMU reads the offset from
//! data bits 10:0 in the requester's own table.

use std::collections::VecDeque;

use crate::amd_irte::{AmdIrteTables, AMD_MSI_DATA_INDEX_MASK};
use crate::error::{Error, Result};
use crate::irte::{Irte, IrteTable};
use crate::msi::{MsiMessage, MSI_ADDRESS_BASE, MSI_ADDRESS_WINDOW_MASK};

/// Address bit 4: 1 = remappable (interrupt format), 0 = compatibility.
pub const MSI_ADDR_REMAPPABLE_SHIFT: u32 = 4;
/// Address bit 3: sub-handle valid (SHV).
pub const MSI_ADDR_SHV_SHIFT: u32 = 3;
/// Address bit 2: handle[15].
pub const MSI_ADDR_HANDLE_15_SHIFT: u32 = 2;
/// Lowest address bit of handle[14:0] (bits 19:5).
pub const MSI_ADDR_HANDLE_LO_SHIFT: u32 = 5;
/// Width mask of handle[14:0].
pub const MSI_ADDR_HANDLE_LO_MASK: u64 = 0x7FFF;
/// Data bits 15:0: the sub-handle when SHV is set.
pub const MSI_DATA_SUBHANDLE_MASK: u32 = 0xFFFF;
/// Compatibility format: lowest address bit of the 8-bit destination (19:12).
pub const MSI_ADDR_DEST_ID_SHIFT: u32 = 12;
/// Compatibility format: address bit 3, redirection hint.
pub const MSI_ADDR_REDIR_HINT_SHIFT: u32 = 3;
/// Compatibility format: address bit 2, destination mode.
pub const MSI_ADDR_DEST_MODE_SHIFT: u32 = 2;
/// Compatibility format: lowest data bit of the delivery mode (10:8).
pub const MSI_DATA_DELIVERY_MODE_SHIFT: u32 = 8;
/// Compatibility format: data bit 15, trigger mode.
pub const MSI_DATA_TRIGGER_MODE_SHIFT: u32 = 15;
/// Default fault log capacity: VT-d has at most 256 fault recording registers.
pub const DEFAULT_FAULT_LOG_CAPACITY: usize = 256;
/// AMD event log entries: Linux's `EVT_BUFFER_SIZE` of 8192 bytes, 16 bytes
/// an entry (`amd_iommu_types.h`). Full, the IOMMU sets EventOverflow and
/// logs no more until software reads it.
pub const AMD_EVENT_LOG_ENTRIES: usize = 512;
/// AMD: the largest table whose indices leave MSI data bits 10:9 clear, so
/// that data 10:8 can be read as the message type.
pub const AMD_MSI_TYPE_TABLE_MAX: u32 = 512;

/// Why an interrupt request was blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultReason {
    /// The IRTE is not present (Intel P = 0, VT-d reason 22h; AMD RemapEn = 0).
    NotPresent,
    /// The index is past the table (VT-d reason 21h; AMD IntTabLen exceeded).
    IndexOutOfRange,
    /// The requester id fails the SID/SQ/SVT check (VT-d reason 26h).
    SidMismatch,
    /// The IRTE's SVT is the reserved value 11b (VT-d reason 24h, reserved field).
    ReservedSvt,
    /// A compatibility-format request while CFI (allow compatibility format) is clear (25h).
    CompatFormatBlocked,
    /// The write is not in the interrupt window 0xFEEx_xxxx (upper address
    /// bits zero): a DMA write, never an interrupt. It is translated by DMA
    /// remapping, and counted here as the fault an address VFIO never maps
    /// raises (docs/spoof.md): VT-d records DMA and interrupt faults in the
    /// same fault recording registers, AMD-Vi logs IO_PAGE_FAULT for both.
    NotInInterruptWindow,
    /// AMD: the requester has no interrupt remapping table.
    NoTable,
    /// A reserved field of the request itself is set: SHV with data bits
    /// 31:16 non-zero (VT-d reason 20h; QEMU `vtd_interrupt_remap_msi`).
    /// AMD: a reserved message type (011b, 110b) in data 10:8.
    ReservedRequestField,
    /// AMD: an SMI, NMI, INIT or ExtINT message type (data 10:8) whose
    /// device table pass bit is clear (Linux's `set_dte_irq_entry` sets
    /// none; only IVRS flags do, for legacy sources): target-aborted (QEMU
    /// `amdvi_int_remap_msi`).
    MessageTypeBlocked,
}

impl FaultReason {
    /// Every reason, in reporting order.
    pub const ALL: [FaultReason; 9] = [
        FaultReason::NotPresent,
        FaultReason::IndexOutOfRange,
        FaultReason::SidMismatch,
        FaultReason::ReservedSvt,
        FaultReason::CompatFormatBlocked,
        FaultReason::NotInInterruptWindow,
        FaultReason::NoTable,
        FaultReason::ReservedRequestField,
        FaultReason::MessageTypeBlocked,
    ];

    /// Snake-case name used in logs and at the Python boundary.
    pub const fn as_str(self) -> &'static str {
        match self {
            FaultReason::NotPresent => "not_present",
            FaultReason::IndexOutOfRange => "index_out_of_range",
            FaultReason::SidMismatch => "sid_mismatch",
            FaultReason::ReservedSvt => "reserved_svt",
            FaultReason::CompatFormatBlocked => "compat_format_blocked",
            FaultReason::NotInInterruptWindow => "not_in_interrupt_window",
            FaultReason::NoTable => "no_table",
            FaultReason::ReservedRequestField => "reserved_request_field",
            FaultReason::MessageTypeBlocked => "message_type_blocked",
        }
    }
}

impl std::fmt::Display for FaultReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A blocked request: who sent it, which index it named (if any), and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fault {
    /// Requester id (bus << 8 | devfn) of the write.
    pub requester_id: u16,
    /// The interrupt index the request named (None for compat format / outside the window).
    pub index: Option<u32>,
    /// Why it was blocked.
    pub reason: FaultReason,
}

/// Where a remapped interrupt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    /// CPU vector.
    pub vector: u8,
    /// Destination APIC id.
    pub dest_id: u32,
    /// true = logical destination mode.
    pub dest_mode: bool,
    /// Delivery mode (3 bits).
    pub delivery_mode: u8,
    /// true = level.
    pub trigger_mode: bool,
    /// The IRTE used; None for a compatibility-format message let through by CFI.
    pub irte_index: Option<u16>,
}

/// The outcome of one interrupt request through an IOMMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemapResult {
    /// Delivered to `Target`.
    Remapped(Target),
    /// Blocked; `suppressed` when FPD / SupIOPF kept it out of the fault log.
    Blocked {
        /// The fault.
        fault: Fault,
        /// Not recorded because the entry suppresses fault reporting.
        suppressed: bool,
    },
}

impl RemapResult {
    /// The target, if delivered.
    pub fn target(&self) -> Option<&Target> {
        match self {
            RemapResult::Remapped(t) => Some(t),
            RemapResult::Blocked { .. } => None,
        }
    }
}

/// A message that is not an interrupt request at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The address is outside 0x0000_0000_FEEx_xxxx.
    #[error("address {0:#x} is not in the interrupt window 0xFEEx_xxxx")]
    NotInInterruptWindow(u64),
    /// A remappable-format request with SHV set whose data bits 31:16 are not
    /// zero: reserved (VT-d spec, remappable interrupt request format).
    #[error("remappable request with SHV and reserved data bits {0:#x}")]
    ReservedData(u32),
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

/// Fields of a compatibility-format MSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompatMsi {
    /// 8-bit destination APIC id (address 19:12).
    pub dest_id: u8,
    /// Redirection hint (address bit 3).
    pub redir_hint: bool,
    /// Destination mode (address bit 2).
    pub dest_mode: bool,
    /// Vector (data 7:0).
    pub vector: u8,
    /// Delivery mode (data 10:8).
    pub delivery_mode: u8,
    /// Trigger mode (data bit 15).
    pub trigger_mode: bool,
}

/// Fields of a remappable-format MSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemappableMsi {
    /// The 16-bit handle.
    pub handle: u16,
    /// The sub-handle, present iff SHV is set.
    pub sub_handle: Option<u16>,
}

impl RemappableMsi {
    /// SHV bit.
    pub fn shv(&self) -> bool {
        self.sub_handle.is_some()
    }
    /// The IRTE index: handle + sub-handle with SHV, else handle (up to 0x1FFFE).
    pub fn index(&self) -> u32 {
        u32::from(self.handle) + u32::from(self.sub_handle.unwrap_or(0))
    }
}

/// A decoded interrupt request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decoded {
    /// Compatibility format (address bit 4 = 0).
    Compat(CompatMsi),
    /// Remappable format (address bit 4 = 1).
    Remappable(RemappableMsi),
}

/// The Intel remappable-format message for `handle` (with SHV iff `sub_handle` is given).
pub fn compose_msi(handle: u16, sub_handle: Option<u16>) -> MsiMessage {
    let h = u64::from(handle);
    let mut address = MSI_ADDRESS_BASE
        | (1 << MSI_ADDR_REMAPPABLE_SHIFT)
        | ((h & MSI_ADDR_HANDLE_LO_MASK) << MSI_ADDR_HANDLE_LO_SHIFT)
        | ((h >> 15) << MSI_ADDR_HANDLE_15_SHIFT);
    let mut data = 0;
    if let Some(sub) = sub_handle {
        address |= 1 << MSI_ADDR_SHV_SHIFT;
        data = u32::from(sub);
    }
    MsiMessage::new(address, data)
}

/// The AMD message for IRTE `index` of the sender's table (Linux: data = index).
pub fn compose_amd_msi(index: u16) -> MsiMessage {
    MsiMessage::new(MSI_ADDRESS_BASE, u32::from(index))
}

/// Whether `address` lies in the interrupt window 0x0000_0000_FEEx_xxxx.
#[inline]
pub fn in_interrupt_window(address: u64) -> bool {
    address >> 32 == 0 && address & MSI_ADDRESS_WINDOW_MASK == MSI_ADDRESS_BASE
}

/// The IRTE index `msg` names when it is a well-formed remappable-format request (in the
/// window, address bit 4 set, no reserved data bits with SHV): what [`decode_msi`] gives as
/// [`RemappableMsi::index`]. `None` for anything else (compatibility format, a decode
/// error), which only the full decode tells apart. Changes nothing.
// The remap hot path: measured with callgrind, building `Decoded` and its `Option`
// sub-handle to read them back cost about 12 instructions a message.
pub(crate) fn remappable_index(msg: &MsiMessage) -> Option<u32> {
    // The window test and address bit 4 in one compare.
    const MASK: u64 = !0 << 32 | MSI_ADDRESS_WINDOW_MASK | 1 << MSI_ADDR_REMAPPABLE_SHIFT;
    // What Linux writes for every MSI-X vector (`compose_msi(index, Some(0))` with an index
    // below 0x8000): SHV set, handle bit 15 clear, sub-handle 0. Then the index is the low
    // handle bits alone, one test of address and data (measured with callgrind: 8
    // instructions a message fewer than the general decode below, 0.7 % of a resize).
    const LINUX_MASK: u64 = MASK | 1 << MSI_ADDR_SHV_SHIFT | 1 << MSI_ADDR_HANDLE_15_SHIFT;
    const LINUX: u64 = MSI_ADDRESS_BASE | 1 << MSI_ADDR_REMAPPABLE_SHIFT | 1 << MSI_ADDR_SHV_SHIFT;
    let a = msg.address;
    if (a & LINUX_MASK ^ LINUX) | u64::from(msg.data) == 0 {
        return Some(((a >> MSI_ADDR_HANDLE_LO_SHIFT) & MSI_ADDR_HANDLE_LO_MASK) as u32);
    }
    if a & MASK != MSI_ADDRESS_BASE | 1 << MSI_ADDR_REMAPPABLE_SHIFT {
        return None;
    }
    let lo = (a >> MSI_ADDR_HANDLE_LO_SHIFT) & MSI_ADDR_HANDLE_LO_MASK;
    let hi = (a >> MSI_ADDR_HANDLE_15_SHIFT) & 1;
    let handle = (lo | (hi << 15)) as u32;
    if (a >> MSI_ADDR_SHV_SHIFT) & 1 == 0 {
        return Some(handle);
    }
    if msg.data & !MSI_DATA_SUBHANDLE_MASK != 0 {
        return None;
    }
    Some(handle + msg.data)
}

/// Decode `msg` as an interrupt request; changes nothing.
#[inline]
pub fn decode_msi(msg: &MsiMessage) -> std::result::Result<Decoded, DecodeError> {
    let a = msg.address;
    if !in_interrupt_window(a) {
        return Err(DecodeError::NotInInterruptWindow(a));
    }
    let bit = |shift: u32| (a >> shift) & 1 == 1;
    if bit(MSI_ADDR_REMAPPABLE_SHIFT) {
        let lo = (a >> MSI_ADDR_HANDLE_LO_SHIFT) & MSI_ADDR_HANDLE_LO_MASK;
        let hi = (a >> MSI_ADDR_HANDLE_15_SHIFT) & 1;
        let handle = (lo | (hi << 15)) as u16;
        let shv = bit(MSI_ADDR_SHV_SHIFT);
        if shv && msg.data & !MSI_DATA_SUBHANDLE_MASK != 0 {
            return Err(DecodeError::ReservedData(msg.data));
        }
        let sub_handle = shv.then_some((msg.data & MSI_DATA_SUBHANDLE_MASK) as u16);
        Ok(Decoded::Remappable(RemappableMsi { handle, sub_handle }))
    } else {
        let d = msg.data;
        Ok(Decoded::Compat(CompatMsi {
            dest_id: (a >> MSI_ADDR_DEST_ID_SHIFT) as u8,
            redir_hint: bit(MSI_ADDR_REDIR_HINT_SHIFT),
            dest_mode: bit(MSI_ADDR_DEST_MODE_SHIFT),
            vector: d as u8,
            delivery_mode: ((d >> MSI_DATA_DELIVERY_MODE_SHIFT) & 0x7) as u8,
            trigger_mode: (d >> MSI_DATA_TRIGGER_MODE_SHIFT) & 1 == 1,
        }))
    }
}

/// A bounded fault log like VT-d's fault recording registers: the first `capacity`
/// unread faults are kept; later ones only count (`overflowed`) until drained.
///
/// Counters: `total` (faults recorded or overflowed, i.e. not suppressed),
/// `suppressed` (blocked but not recorded: FPD / SupIOPF), `overflowed`.
#[derive(Debug, Clone)]
pub struct FaultLog {
    records: VecDeque<Fault>,
    capacity: usize,
    total: u64,
    suppressed: u64,
    overflowed: u64,
}

impl FaultLog {
    /// An empty log holding at most `capacity` records (memory reserved up front).
    pub fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::with_capacity(capacity),
            capacity,
            total: 0,
            suppressed: 0,
            overflowed: 0,
        }
    }

    /// Count a fault and keep it if there is room (`total` +1, or `overflowed` too).
    #[inline]
    pub fn record(&mut self, fault: Fault) {
        self.total += 1;
        if self.records.len() < self.capacity {
            self.records.push_back(fault);
        } else {
            self.overflowed += 1;
        }
    }

    /// Count a blocked request whose entry suppresses reporting (`suppressed` +1).
    #[inline]
    pub fn suppress(&mut self) {
        self.suppressed += 1;
    }

    /// The kept records, oldest first.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &Fault> {
        self.records.iter()
    }
    /// Remove and return the kept records (software reading the fault registers).
    pub fn drain(&mut self) -> Vec<Fault> {
        self.records.drain(..).collect()
    }
    /// Record capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    /// Faults recorded or overflowed (not suppressed).
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Blocked requests not recorded because of FPD / SupIOPF.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
    /// Faults counted but not kept because the log was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }
}

fn block(log: &mut FaultLog, fault: Fault, suppress: bool) -> RemapResult {
    if suppress {
        log.suppress();
    } else {
        log.record(fault);
    }
    RemapResult::Blocked {
        fault,
        suppressed: suppress,
    }
}

/// One Intel VT-d IOMMU's interrupt remapping: an [`IrteTable`], the CFI setting
/// and a fault log.
#[derive(Debug, Clone)]
pub struct InterruptRemapper {
    table: IrteTable,
    allow_compat: bool,
    log: FaultLog,
}

impl InterruptRemapper {
    /// A remapper with a table of `entries` IRTEs; `allow_compat` is the CFI bit
    /// (Linux clears it: compatibility-format MSIs are blocked).
    pub fn new(entries: u32, allow_compat: bool) -> Result<Self> {
        Self::with_fault_log_capacity(entries, allow_compat, DEFAULT_FAULT_LOG_CAPACITY)
    }

    /// As [`new`](Self::new) with a fault log of `capacity` records.
    pub fn with_fault_log_capacity(
        entries: u32,
        allow_compat: bool,
        capacity: usize,
    ) -> Result<Self> {
        Ok(Self {
            table: IrteTable::new(entries)?,
            allow_compat,
            log: FaultLog::new(capacity),
        })
    }

    /// The remapping table.
    pub fn table(&self) -> &IrteTable {
        &self.table
    }
    /// The remapping table, to allocate and program entries.
    pub fn table_mut(&mut self) -> &mut IrteTable {
        &mut self.table
    }
    /// The fault log.
    pub fn fault_log(&self) -> &FaultLog {
        &self.log
    }
    /// The fault log, to drain it.
    pub fn fault_log_mut(&mut self) -> &mut FaultLog {
        &mut self.log
    }
    /// The CFI setting.
    pub fn allow_compat(&self) -> bool {
        self.allow_compat
    }
    /// Change the CFI setting.
    pub fn set_allow_compat(&mut self, allow: bool) {
        self.allow_compat = allow;
    }

    /// The entry a request from `requester_id` is remapped through when it is a
    /// remappable-format message whose entry is present and passes the source check;
    /// `None` for any other request (blocked, or compatibility format). Records nothing.
    pub(crate) fn remapped_entry(&self, requester_id: u16, msg: &MsiMessage) -> Option<&Irte> {
        self.entry_through(requester_id, remappable_index(msg)?)
    }

    /// IRTE `index` when a request from `requester_id` through it is remapped: it exists, is
    /// present and passes the source check. Records nothing.
    #[inline]
    fn entry_through(&self, requester_id: u16, index: u32) -> Option<&Irte> {
        self.table
            .lookup(index)
            .filter(|irte| irte.present() && irte.source_ok(requester_id))
    }

    /// Where `msg` from `requester_id` would be remapped — the `(dest_id, vector)` of
    /// [`remap`](Self::remap) — or `None` if it would be blocked; records nothing.
    #[inline]
    pub(crate) fn target(&self, requester_id: u16, msg: &MsiMessage) -> Option<(u32, u8)> {
        match remappable_index(msg) {
            Some(index) => self
                .entry_through(requester_id, index)
                .map(|irte| (irte.dest_id(), irte.vector())),
            None => self.target_other(msg),
        }
    }

    /// [`target`](Self::target) of a message that is not a well-formed remappable one.
    // Out of line: in line, the compatibility-format test came first on the hot path.
    #[cold]
    #[inline(never)]
    fn target_other(&self, msg: &MsiMessage) -> Option<(u32, u8)> {
        match decode_msi(msg) {
            Ok(Decoded::Compat(c)) if self.allow_compat => Some((u32::from(c.dest_id), c.vector)),
            // A remappable message `remappable_index` refused has a decode error.
            Ok(_) | Err(_) => None,
        }
    }

    /// Remap one request from `requester_id`; a block adds one to the fault log's `total`
    /// or `suppressed`. No allocation on any path.
    #[inline]
    pub fn remap(&mut self, requester_id: u16, msg: &MsiMessage) -> RemapResult {
        // A well-formed remappable message takes the checks in `remap_other`'s order from
        // the fast decode on; anything else takes `remap_other` whole.
        let Some(index) = remappable_index(msg) else {
            return self.remap_other(requester_id, msg);
        };
        let Some(irte) = self.table.lookup(index) else {
            return self.blocked(requester_id, index, FaultReason::IndexOutOfRange, false);
        };
        if !irte.present() {
            let fpd = irte.fpd();
            return self.blocked(requester_id, index, FaultReason::NotPresent, fpd);
        }
        if let Err(reason) = irte.source_check(requester_id) {
            let fpd = irte.fpd();
            return self.blocked(requester_id, index, reason, fpd);
        }
        RemapResult::Remapped(remapped_target(index, irte))
    }

    /// Block a request from `requester_id` through IRTE `index` for `reason`: the fault
    /// log's `total` +1, or `suppressed` +1 when `suppress` (FPD).
    // Out of line: the fault record keeps its registers off the hit path.
    #[cold]
    #[inline(never)]
    fn blocked(
        &mut self,
        requester_id: u16,
        index: u32,
        reason: FaultReason,
        suppress: bool,
    ) -> RemapResult {
        let fault = Fault {
            requester_id,
            index: Some(index),
            reason,
        };
        block(&mut self.log, fault, suppress)
    }

    /// [`remap`](Self::remap) of any request, taking every check in turn (same effects): the
    /// path of compatibility-format and malformed messages, and of the host's misses.
    #[inline(never)]
    pub(crate) fn remap_other(&mut self, requester_id: u16, msg: &MsiMessage) -> RemapResult {
        let fault = |index, reason| Fault {
            requester_id,
            index,
            reason,
        };
        let decoded = match decode_msi(msg) {
            Ok(d) => d,
            Err(DecodeError::ReservedData(_)) => {
                let f = fault(None, FaultReason::ReservedRequestField);
                return block(&mut self.log, f, false);
            }
            Err(DecodeError::NotInInterruptWindow(_)) => {
                let f = fault(None, FaultReason::NotInInterruptWindow);
                return block(&mut self.log, f, false);
            }
        };
        let rmsg = match decoded {
            Decoded::Compat(c) if self.allow_compat => {
                return RemapResult::Remapped(Target {
                    vector: c.vector,
                    dest_id: u32::from(c.dest_id),
                    dest_mode: c.dest_mode,
                    delivery_mode: c.delivery_mode,
                    trigger_mode: c.trigger_mode,
                    irte_index: None,
                });
            }
            Decoded::Compat(_) => {
                let f = fault(None, FaultReason::CompatFormatBlocked);
                return block(&mut self.log, f, false);
            }
            Decoded::Remappable(r) => r,
        };
        let index = rmsg.index();
        let Some(irte) = self.table.lookup(index) else {
            let f = fault(Some(index), FaultReason::IndexOutOfRange);
            return block(&mut self.log, f, false);
        };
        if !irte.present() {
            let f = fault(Some(index), FaultReason::NotPresent);
            return block(&mut self.log, f, irte.fpd());
        }
        if let Err(reason) = irte.source_check(requester_id) {
            let f = fault(Some(index), reason);
            return block(&mut self.log, f, irte.fpd());
        }
        RemapResult::Remapped(remapped_target(index, irte))
    }
}

/// The target of a request remapped through the entry `irte` at `index`.
fn remapped_target(index: u32, irte: &Irte) -> Target {
    Target {
        vector: irte.vector(),
        dest_id: irte.dest_id(),
        dest_mode: irte.dest_mode(),
        delivery_mode: irte.delivery_mode(),
        trigger_mode: irte.trigger_mode(),
        irte_index: Some(index as u16),
    }
}

/// One AMD IOMMU's interrupt remapping: per-device tables and a fault log. The
/// source check is implicit: a device can only name entries of its own table.
#[derive(Debug, Clone)]
pub struct AmdRemapper {
    tables: AmdIrteTables,
    log: FaultLog,
}

impl AmdRemapper {
    /// A remapper whose device tables get `table_size` entries on first use,
    /// with Linux's event log of [`AMD_EVENT_LOG_ENTRIES`].
    pub fn new(table_size: u32) -> Result<Self> {
        Self::with_fault_log_capacity(table_size, AMD_EVENT_LOG_ENTRIES)
    }

    /// As [`new`](Self::new) with a fault log of `capacity` records.
    pub fn with_fault_log_capacity(table_size: u32, capacity: usize) -> Result<Self> {
        Ok(Self {
            tables: AmdIrteTables::new(table_size)?,
            log: FaultLog::new(capacity),
        })
    }

    /// The per-device tables.
    pub fn tables(&self) -> &AmdIrteTables {
        &self.tables
    }
    /// The per-device tables, to allocate and program entries.
    pub fn tables_mut(&mut self) -> &mut AmdIrteTables {
        &mut self.tables
    }
    /// The fault log.
    pub fn fault_log(&self) -> &FaultLog {
        &self.log
    }
    /// The fault log, to drain it.
    pub fn fault_log_mut(&mut self) -> &mut FaultLog {
        &mut self.log
    }

    /// The message type in data 10:8 (QEMU `amdvi_int_remap_msi`): fixed and
    /// arbitrated are remapped; SMI, NMI, INIT and ExtINT pass only with their
    /// device table pass bit, clear for a passed-through endpoint; 011b and 110b are
    /// reserved. With a 2048-entry table bits 10:9 are index bits (Linux hands
    /// out indices up to 2047 there), so the type is not read from them.
    /// A requester without a table is left to the lookup (`NoTable`).
    #[inline]
    pub fn message_type_check(
        &self,
        requester_id: u16,
        data: u32,
    ) -> std::result::Result<(), FaultReason> {
        match self.tables.table_len(requester_id) {
            Some(len) if len <= AMD_MSI_TYPE_TABLE_MAX => {}
            _ => return Ok(()),
        }
        match (data >> MSI_DATA_DELIVERY_MODE_SHIFT) & 0x7 {
            0 | 1 => Ok(()),
            3 | 6 => Err(FaultReason::ReservedRequestField),
            _ => Err(FaultReason::MessageTypeBlocked),
        }
    }

    /// Remap one request from `requester_id` through its own table (index = data[10:0]);
    /// a block adds one to the fault log's `total` or `suppressed`. The trigger mode is
    /// taken from data bit 15 (the GA IRTE has no trigger-mode field). No allocation.
    #[inline]
    pub fn remap(&mut self, requester_id: u16, msg: &MsiMessage) -> RemapResult {
        let fault = |index, reason| Fault {
            requester_id,
            index,
            reason,
        };
        if !in_interrupt_window(msg.address) {
            let f = fault(None, FaultReason::NotInInterruptWindow);
            return block(&mut self.log, f, false);
        }
        let index = msg.data & AMD_MSI_DATA_INDEX_MASK;
        if let Err(reason) = self.message_type_check(requester_id, msg.data) {
            return block(&mut self.log, fault(Some(index), reason), false);
        }
        let irte = match self.tables.lookup(requester_id, index) {
            Ok(irte) => irte,
            Err(None) => {
                return block(
                    &mut self.log,
                    fault(Some(index), FaultReason::NoTable),
                    false,
                )
            }
            Err(Some(_)) => {
                let f = fault(Some(index), FaultReason::IndexOutOfRange);
                return block(&mut self.log, f, false);
            }
        };
        if !irte.remap_en() {
            let f = fault(Some(index), FaultReason::NotPresent);
            return block(&mut self.log, f, irte.sup_iopf());
        }
        RemapResult::Remapped(Target {
            vector: irte.vector(),
            dest_id: irte.destination(),
            dest_mode: irte.dest_mode(),
            delivery_mode: irte.int_type(),
            trigger_mode: (msg.data >> MSI_DATA_TRIGGER_MODE_SHIFT) & 1 == 1,
            irte_index: Some(index as u16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amd_irte::AmdIrte;
    use crate::irte::{Irte, IrteFields};
    use proptest::prelude::*;

    #[test]
    fn shv_with_reserved_data_bits_is_a_reserved_field_fault() {
        let mut r = InterruptRemapper::new(64, false).unwrap();
        let i = r.table_mut().alloc(2).unwrap();
        r.table_mut()
            .set(u32::from(i) + 1, Irte::remapped(0x40, 1))
            .unwrap();
        let good = compose_msi(i, Some(1));
        assert!(matches!(r.remap(0, &good), RemapResult::Remapped(_)));
        // Data bits 31:16 are reserved when SHV is set (VT-d reason 20h).
        let bad = MsiMessage::new(good.address, good.data | 0x1_0000);
        assert_eq!(decode_msi(&bad), Err(DecodeError::ReservedData(0x1_0001)));
        match r.remap(0, &bad) {
            RemapResult::Blocked { fault, .. } => {
                assert_eq!(fault.reason, FaultReason::ReservedRequestField);
            }
            other @ RemapResult::Remapped(_) => panic!("delivered: {other:?}"),
        }
        // Without SHV the data bits are not the sub-handle: no such check.
        let plain = MsiMessage::new(compose_msi(i + 1, None).address, 0x1_0000);
        assert!(matches!(r.remap(0, &plain), RemapResult::Remapped(_)));
    }

    #[test]
    fn amd_message_types_other_than_fixed_and_arbitrated_are_blocked() {
        let mut r = AmdRemapper::new(512).unwrap();
        let rid = 0x0300;
        let i = r.tables_mut().alloc(rid, 1).unwrap();
        r.tables_mut()
            .set(rid, u32::from(i), AmdIrte::remapped(0x44, 2))
            .unwrap();
        let with_type = |t: u32| MsiMessage::new(0xFEE0_0000, u32::from(i) | t << 8);
        // Fixed and arbitrated: remapped (an index ≥ 256 reads as arbitrated).
        assert!(r.remap(rid, &with_type(0)).target().is_some());
        assert!(
            r.remap(rid, &with_type(1)).target().is_none(),
            "index 256+: not allocated"
        );
        for (t, reason) in [
            (2, FaultReason::MessageTypeBlocked),
            (3, FaultReason::ReservedRequestField),
            (4, FaultReason::MessageTypeBlocked),
            (5, FaultReason::MessageTypeBlocked),
            (6, FaultReason::ReservedRequestField),
            (7, FaultReason::MessageTypeBlocked),
        ] {
            assert_eq!(
                blocked(r.remap(rid, &with_type(t))),
                (reason, false),
                "type {t}"
            );
        }
        // With a 2048-entry table data 10:9 are index bits: no type is read.
        let mut big = AmdRemapper::new(2048).unwrap();
        big.tables_mut().alloc(rid, 1).unwrap();
        assert_eq!(
            blocked(big.remap(rid, &with_type(3))),
            (FaultReason::NotPresent, false)
        );
        assert_eq!(r.fault_log().capacity(), AMD_EVENT_LOG_ENTRIES);
    }

    #[test]
    fn compose_bit_positions() {
        // handle[14:0] → 19:5, handle[15] → bit 2, bit 4 set, SHV bit 3.
        assert_eq!(compose_msi(0, None), MsiMessage::new(0xFEE0_0010, 0));
        assert_eq!(compose_msi(1, None).address, 0xFEE0_0030);
        assert_eq!(compose_msi(0x7FFF, None).address, 0xFEEF_FFF0);
        assert_eq!(compose_msi(0x8000, None).address, 0xFEE0_0014);
        assert_eq!(compose_msi(0xFFFF, None).address, 0xFEEF_FFF4);
        assert_eq!(compose_msi(5, Some(3)), MsiMessage::new(0xFEE0_00B8, 3));
        assert_eq!(compose_amd_msi(7), MsiMessage::new(0xFEE0_0000, 7));
    }

    #[test]
    fn decode_formats_and_window() {
        let d = decode_msi(&compose_msi(0x8001, Some(0xFFFF))).unwrap();
        let Decoded::Remappable(r) = d else { panic!() };
        assert_eq!(
            (r.handle, r.sub_handle, r.shv()),
            (0x8001, Some(0xFFFF), true)
        );
        assert_eq!(r.index(), 0x18000);
        // Without SHV the data is ignored.
        let m = MsiMessage::new(compose_msi(9, None).address, 0xABCD);
        let Decoded::Remappable(r) = decode_msi(&m).unwrap() else {
            panic!()
        };
        assert_eq!((r.index(), r.shv()), (9, false));
        // Compatibility: dest 0x12, RH, DM, vector 0x41, delivery 1, level.
        let m = MsiMessage::new(0xFEE1_200C, 0x8141);
        assert_eq!(
            decode_msi(&m).unwrap(),
            Decoded::Compat(CompatMsi {
                dest_id: 0x12,
                redir_hint: true,
                dest_mode: true,
                vector: 0x41,
                delivery_mode: 1,
                trigger_mode: true,
            })
        );
        for bad in [0xFED0_0000u64, 0xFEF0_0000, 0x1_FEE0_0000, 0, u64::MAX] {
            assert_eq!(
                decode_msi(&MsiMessage::new(bad, 0)),
                Err(DecodeError::NotInInterruptWindow(bad))
            );
        }
        let e: Error = DecodeError::NotInInterruptWindow(1).into();
        assert!(matches!(e, Error::InvalidArgument(_)));
    }

    fn blocked(r: RemapResult) -> (FaultReason, bool) {
        match r {
            RemapResult::Blocked { fault, suppressed } => (fault.reason, suppressed),
            RemapResult::Remapped(t) => panic!("remapped to {t:?}"),
        }
    }

    #[test]
    fn intel_remap_paths() {
        let mut r = InterruptRemapper::new(256, false).unwrap();
        let rid = 0x0310;
        let base = r.table_mut().alloc(2).unwrap();
        let irte = Irte::new(IrteFields {
            present: true,
            dest_mode: true,
            delivery_mode: 1,
            trigger_mode: true,
            vector: 0x55,
            dest_id: 0x0102_0304,
            ..Default::default()
        })
        .unwrap()
        .with_requester_id(rid);
        r.table_mut().set(u32::from(base), irte).unwrap();
        let t = *r.remap(rid, &compose_msi(base, Some(0))).target().unwrap();
        assert_eq!(
            t,
            Target {
                vector: 0x55,
                dest_id: 0x0102_0304,
                dest_mode: true,
                delivery_mode: 1,
                trigger_mode: true,
                irte_index: Some(base),
            }
        );
        // Another device → SID mismatch, recorded.
        assert_eq!(
            blocked(r.remap(rid + 1, &compose_msi(base, None))),
            (FaultReason::SidMismatch, false)
        );
        // Allocated but never programmed → not present.
        assert_eq!(
            blocked(r.remap(rid, &compose_msi(base, Some(1)))),
            (FaultReason::NotPresent, false)
        );
        // Past the table, including handle + sub-handle overflow past 16 bits.
        assert_eq!(
            blocked(r.remap(rid, &compose_msi(256, None))),
            (FaultReason::IndexOutOfRange, false)
        );
        assert_eq!(
            blocked(r.remap(rid, &compose_msi(0xFFFF, Some(0xFFFF)))),
            (FaultReason::IndexOutOfRange, false)
        );
        assert_eq!(
            blocked(r.remap(rid, &MsiMessage::new(0xFEE0_0000, 0x30))),
            (FaultReason::CompatFormatBlocked, false)
        );
        assert_eq!(
            blocked(r.remap(rid, &MsiMessage::new(0x1000, 0))),
            (FaultReason::NotInInterruptWindow, false)
        );
        // Reserved SVT.
        let bad = Irte::new(IrteFields {
            present: true,
            svt: 3,
            ..Default::default()
        })
        .unwrap();
        r.table_mut().set(u32::from(base) + 1, bad).unwrap();
        assert_eq!(
            blocked(r.remap(rid, &compose_msi(base + 1, None))),
            (FaultReason::ReservedSvt, false)
        );
        assert_eq!(r.fault_log().total(), 7);
        assert_eq!(r.fault_log().suppressed(), 0);
        let log: Vec<_> = r
            .fault_log()
            .records()
            .map(|f| (f.index, f.reason))
            .collect();
        assert_eq!(log[0], (Some(u32::from(base)), FaultReason::SidMismatch));
        assert_eq!(log[3], (Some(0x1FFFE), FaultReason::IndexOutOfRange));
        assert_eq!(log[4], (None, FaultReason::CompatFormatBlocked));
        // FPD suppresses records for entry-level faults only.
        r.table_mut()
            .set(u32::from(base), irte.with_fpd(true))
            .unwrap();
        assert_eq!(
            blocked(r.remap(rid + 1, &compose_msi(base, None))),
            (FaultReason::SidMismatch, true)
        );
        r.table_mut()
            .set(u32::from(base), Irte::default().with_fpd(true))
            .unwrap();
        assert_eq!(
            blocked(r.remap(rid, &compose_msi(base, None))),
            (FaultReason::NotPresent, true)
        );
        assert_eq!((r.fault_log().total(), r.fault_log().suppressed()), (7, 2));
        assert_eq!(r.fault_log_mut().drain().len(), 7);
        assert_eq!(r.fault_log().records().len(), 0);
        assert_eq!(r.fault_log().total(), 7);
    }

    #[test]
    fn intel_compat_allowed_passes_through() {
        let mut r = InterruptRemapper::new(16, true).unwrap();
        assert!(r.allow_compat());
        let t = *r
            .remap(1, &MsiMessage::new(0xFEE0_3000, 0x0031))
            .target()
            .unwrap();
        assert_eq!((t.vector, t.dest_id, t.irte_index), (0x31, 3, None));
        r.set_allow_compat(false);
        assert_eq!(
            blocked(r.remap(1, &MsiMessage::new(0xFEE0_3000, 0x31))),
            (FaultReason::CompatFormatBlocked, false)
        );
    }

    #[test]
    fn fault_log_is_bounded() {
        let mut r = InterruptRemapper::with_fault_log_capacity(16, false, 2).unwrap();
        for _ in 0..5 {
            r.remap(1, &compose_msi(3, None));
        }
        let log = r.fault_log();
        assert_eq!(
            (
                log.total(),
                log.overflowed(),
                log.records().len(),
                log.capacity()
            ),
            (5, 3, 2, 2)
        );
        r.fault_log_mut().drain();
        r.remap(1, &compose_msi(3, None));
        assert_eq!(r.fault_log().records().len(), 1);
    }

    #[test]
    fn amd_remap_paths() {
        let mut r = AmdRemapper::new(256).unwrap();
        let rid = 0x0800;
        let i = r.tables_mut().alloc(rid, 2).unwrap();
        r.tables_mut()
            .set(rid, u32::from(i), AmdIrte::remapped(0x61, 0x0A00_0001))
            .unwrap();
        let msg = compose_amd_msi(i);
        let t = *r.remap(rid, &msg).target().unwrap();
        assert_eq!(
            (t.vector, t.dest_id, t.irte_index, t.trigger_mode),
            (0x61, 0x0A00_0001, Some(i), false)
        );
        // Same message from another device: its own (missing) table.
        assert_eq!(
            blocked(r.remap(rid + 1, &msg)),
            (FaultReason::NoTable, false)
        );
        // Another device with a table reaches only its own entries.
        r.tables_mut().alloc(rid + 1, 1).unwrap();
        assert_eq!(
            blocked(r.remap(rid + 1, &msg)),
            (FaultReason::NotPresent, false)
        );
        assert_eq!(
            blocked(r.remap(rid, &compose_amd_msi(300))),
            (FaultReason::IndexOutOfRange, false)
        );
        assert_eq!(
            blocked(r.remap(rid, &MsiMessage::new(0xFED0_0000, 0))),
            (FaultReason::NotInInterruptWindow, false)
        );
        let quiet = AmdIrte::new(crate::amd_irte::AmdIrteFields {
            sup_iopf: true,
            ..Default::default()
        })
        .unwrap();
        r.tables_mut().set(rid, u32::from(i) + 1, quiet).unwrap();
        assert_eq!(
            blocked(r.remap(rid, &compose_amd_msi(i + 1))),
            (FaultReason::NotPresent, true)
        );
        assert_eq!((r.fault_log().total(), r.fault_log().suppressed()), (4, 1));
        // Data bits above 10 are not part of the index; bit 15 is the trigger mode.
        let t = *r
            .remap(rid, &MsiMessage::new(0xFEE0_0000, 0x8800 | u32::from(i)))
            .target()
            .unwrap();
        assert!(t.trigger_mode);
    }

    /// One IRTE owned by a device, remembered with its owner.
    #[derive(Debug, Clone, Copy)]
    struct Owned {
        rid: u16,
        fpd: bool,
    }

    fn rid_strategy() -> impl Strategy<Value = u16> {
        prop_oneof![
            // The devices themselves and close neighbours (same bus, function bits differ).
            (0usize..6).prop_map(|i| DEVICES[i]),
            (0usize..6, 0u16..8).prop_map(|(i, x)| DEVICES[i] ^ x),
            any::<u16>(),
        ]
    }

    const DEVICES: [u16; 6] = [0x0100, 0x0101, 0x0108, 0x0200, 0x3A00, 0xFF07];

    fn msg_strategy() -> impl Strategy<Value = MsiMessage> {
        prop_oneof![
            (0u16..300, prop::option::of(0u16..8)).prop_map(|(h, s)| compose_msi(h, s)),
            (any::<u16>(), prop::option::of(any::<u16>())).prop_map(|(h, s)| compose_msi(h, s)),
            (0xFEE0_0000u64..0xFEF0_0000, any::<u32>()).prop_map(|(a, d)| MsiMessage::new(a, d)),
            (any::<u64>(), any::<u32>()).prop_map(|(a, d)| MsiMessage::new(a, d)),
        ]
    }

    proptest! {
        /// A device never reaches a vector it does not own, and each block counts once.
        #[test]
        fn intel_device_never_reaches_foreign_vector(
            allocs in prop::collection::vec((0usize..6, 1u32..9, any::<bool>()), 1..40),
            sends in prop::collection::vec((rid_strategy(), msg_strategy()), 1..300),
        ) {
            let mut r = InterruptRemapper::new(512, false).unwrap();
            let mut owner: Vec<Option<Owned>> = vec![None; 512];
            for (dev, count, fpd) in allocs {
                let rid = DEVICES[dev];
                let Ok(base) = r.table_mut().alloc(count) else { continue };
                for i in u32::from(base)..u32::from(base) + count {
                    // Vector and destination encode the owner so a target reveals it.
                    let irte = Irte::remapped((i % 256) as u8, u32::from(rid))
                        .with_requester_id(rid)
                        .with_fpd(fpd);
                    r.table_mut().set(i, irte).unwrap();
                    owner[i as usize] = Some(Owned { rid, fpd });
                }
            }
            for (rid, msg) in sends {
                let before = (r.fault_log().total(), r.fault_log().suppressed());
                match r.remap(rid, &msg) {
                    RemapResult::Remapped(t) => {
                        let index = t.irte_index.expect("compat format is blocked");
                        let o = owner[usize::from(index)].expect("remapped through an unprogrammed IRTE");
                        prop_assert_eq!(o.rid, rid);
                        prop_assert_eq!(t.dest_id, u32::from(rid));
                        prop_assert!(r.table().get(u32::from(index)).unwrap().source_check(rid).is_ok());
                        prop_assert_eq!((r.fault_log().total(), r.fault_log().suppressed()), before);
                    }
                    RemapResult::Blocked { fault, suppressed } => {
                        prop_assert_eq!(fault.requester_id, rid);
                        let after = (r.fault_log().total(), r.fault_log().suppressed());
                        let expected = if suppressed { (before.0, before.1 + 1) } else { (before.0 + 1, before.1) };
                        prop_assert_eq!(after, expected);
                        if suppressed {
                            let o = fault.index.and_then(|i| owner.get(i as usize).copied().flatten());
                            prop_assert!(o.is_some_and(|o| o.fpd));
                        }
                        // A blocked request to an owned entry from its owner is impossible.
                        if let (Some(i), FaultReason::SidMismatch) = (fault.index, fault.reason) {
                            prop_assert_ne!(owner[i as usize].map(|o| o.rid), Some(rid));
                        }
                    }
                }
            }
            prop_assert!(r.fault_log().records().len() <= DEFAULT_FAULT_LOG_CAPACITY);
        }

        /// AMD: per-device tables make foreign entries unreachable.
        #[test]
        fn amd_device_never_reaches_foreign_vector(
            allocs in prop::collection::vec((0usize..6, 1u32..9), 1..40),
            sends in prop::collection::vec((rid_strategy(), any::<u16>(), any::<bool>()), 1..300),
        ) {
            let mut r = AmdRemapper::new(128).unwrap();
            for (dev, count) in allocs {
                let rid = DEVICES[dev];
                let Ok(base) = r.tables_mut().alloc(rid, count) else { continue };
                for i in u32::from(base)..u32::from(base) + count {
                    r.tables_mut().set(rid, i, AmdIrte::remapped(i as u8, u32::from(rid))).unwrap();
                }
            }
            for (rid, data, window) in sends {
                let addr = if window { MSI_ADDRESS_BASE } else { 0xFEC0_0000 };
                let before = r.fault_log().total();
                match r.remap(rid, &MsiMessage::new(addr, u32::from(data))) {
                    RemapResult::Remapped(t) => prop_assert_eq!(t.dest_id, u32::from(rid)),
                    RemapResult::Blocked { suppressed, .. } => {
                        prop_assert!(!suppressed);
                        prop_assert_eq!(r.fault_log().total(), before + 1);
                    }
                }
            }
        }
    }

    /// Everything a fault log holds, for comparing two logs exactly.
    fn log_state(log: &FaultLog) -> (Vec<Fault>, u64, u64, u64) {
        (
            log.records().copied().collect(),
            log.total(),
            log.suppressed(),
            log.overflowed(),
        )
    }

    proptest! {
        /// The hot paths (`remappable_index`, `remapped_entry`, `target`, `remap`'s hit)
        /// answer exactly what the full decode and `remap_other` do, faults included, for
        /// entries of every SVT/SQ/P/FPD and messages of every format.
        #[test]
        fn fast_paths_match_full_remap(
            entries in prop::collection::vec((any::<bool>(), any::<bool>(), 0usize..7, 0u8..4, 0u8..4), 0..300),
            allow_compat in any::<bool>(),
            sends in prop::collection::vec((rid_strategy(), msg_strategy()), 1..200),
        ) {
            let mut r = InterruptRemapper::with_fault_log_capacity(512, allow_compat, 8).unwrap();
            for (i, (present, fpd, dev, sq, svt)) in entries.into_iter().enumerate() {
                let index = r.table_mut().alloc(1).unwrap();
                let irte = Irte::new(IrteFields {
                    present,
                    fpd,
                    sid: DEVICES.get(dev).copied().unwrap_or(0x0107),
                    sq,
                    svt,
                    vector: i as u8,
                    dest_id: i as u32,
                    ..IrteFields::default()
                })
                .unwrap();
                r.table_mut().set(u32::from(index), irte).unwrap();
            }
            for (rid, msg) in sends {
                let index = match decode_msi(&msg) {
                    Ok(Decoded::Remappable(m)) => Some(m.index()),
                    _ => None,
                };
                prop_assert_eq!(remappable_index(&msg), index);
                let mut full = r.clone();
                let want = full.remap_other(rid, &msg);
                let hit = want.target().copied().filter(|t| t.irte_index.is_some());
                prop_assert_eq!(r.remapped_entry(rid, &msg).zip(index).map(|(e, i)| remapped_target(i, e)), hit);
                prop_assert_eq!(r.target(rid, &msg), want.target().map(|t| (t.dest_id, t.vector)));
                prop_assert_eq!(r.remap(rid, &msg), want);
                prop_assert_eq!(log_state(r.fault_log()), log_state(full.fault_log()));
            }
        }
    }

    #[test]
    fn fault_log_counters_and_reason_names() {
        let mut log = FaultLog::new(1);
        let f = |reason| Fault {
            requester_id: 9,
            index: None,
            reason,
        };
        log.record(f(FaultReason::NotPresent));
        log.record(f(FaultReason::NoTable));
        log.suppress();
        assert_eq!(
            (
                log.total(),
                log.overflowed(),
                log.suppressed(),
                log.capacity()
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(log.records().len(), 1);
        assert_eq!(log.drain(), vec![f(FaultReason::NotPresent)]);
        assert_eq!((log.records().len(), log.total()), (0, 2));
        let names: Vec<&str> = FaultReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "not_present",
                "index_out_of_range",
                "sid_mismatch",
                "reserved_svt",
                "compat_format_blocked",
                "not_in_interrupt_window",
                "no_table",
                "reserved_request_field",
                "message_type_blocked"
            ]
        );
        assert_eq!(FaultReason::NoTable.to_string(), "no_table");
    }

    #[test]
    fn interrupt_window_edges() {
        for (a, inside) in [
            (0xFEE0_0000u64, true),
            (0xFEEF_FFFF, true),
            (0xFEDF_FFFF, false),
            (0xFEF0_0000, false),
            (0x1_FEE0_0000, false),
            (0, false),
        ] {
            assert_eq!(in_interrupt_window(a), inside, "{a:#x}");
        }
    }
}
