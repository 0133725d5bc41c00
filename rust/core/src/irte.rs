//! Intel VT-d interrupt remapping: the 128-bit remapped-format IRTE and the
//! per-IOMMU interrupt remapping table with Linux's `alloc_irte` allocator.
//!
//! Bit layout (VT-d spec §9.10; Linux `struct irte` in `include/linux/dmar.h`):
//! P 0, FPD 1, DM 2, RH 3, TM 4, DLM 7:5, AVAIL 11:8, reserved 14:12, IM 15,
//! vector 23:16, reserved 31:24, destination ID 63:32, SID 79:64, SQ 81:80,
//! SVT 83:82, reserved 127:84.
//!
//! Only the remapped format (IM = 0) is modelled. The posted format (IM = 1,
//! used by VT-d posted interrupts and `CONFIG_X86_POSTED_MSI`) reinterprets
//! bits 63:24 and 127:96 as the posted-descriptor address; [`Irte::from_u128`]
//! rejects it. The destination ID is taken as a 32-bit x2APIC id; in xAPIC
//! mode Linux writes the 8-bit APIC id into bits 47:40 (`IRTE_DEST`) and the
//! hardware ignores the rest, which this model does not police.

use crate::error::{Error, Result};
use crate::remap::FaultReason;

/// Bit position of Present (P).
pub const IRTE_PRESENT_SHIFT: u32 = 0;
/// Bit position of Fault Processing Disable (FPD).
pub const IRTE_FPD_SHIFT: u32 = 1;
/// Bit position of Destination Mode (DM: 0 physical, 1 logical).
pub const IRTE_DEST_MODE_SHIFT: u32 = 2;
/// Bit position of Redirection Hint (RH).
pub const IRTE_REDIR_HINT_SHIFT: u32 = 3;
/// Bit position of Trigger Mode (TM: 0 edge, 1 level).
pub const IRTE_TRIGGER_MODE_SHIFT: u32 = 4;
/// Lowest bit of Delivery Mode (DLM, bits 7:5).
pub const IRTE_DELIVERY_MODE_SHIFT: u32 = 5;
/// Width mask of Delivery Mode (3 bits).
pub const IRTE_DELIVERY_MODE_MASK: u128 = 0x7;
/// Lowest bit of the software-available field (AVAIL, bits 11:8).
pub const IRTE_AVAIL_SHIFT: u32 = 8;
/// Width mask of AVAIL (4 bits).
pub const IRTE_AVAIL_MASK: u128 = 0xF;
/// Bit position of IRTE Mode (IM: 0 remapped, 1 posted; posted is not modelled).
pub const IRTE_MODE_SHIFT: u32 = 15;
/// Lowest bit of Vector (bits 23:16).
pub const IRTE_VECTOR_SHIFT: u32 = 16;
/// Width mask of Vector (8 bits).
pub const IRTE_VECTOR_MASK: u128 = 0xFF;
/// Lowest bit of Destination ID (bits 63:32).
pub const IRTE_DEST_ID_SHIFT: u32 = 32;
/// Width mask of Destination ID (32 bits).
pub const IRTE_DEST_ID_MASK: u128 = 0xFFFF_FFFF;
/// Lowest bit of Source Identifier (SID, bits 79:64).
pub const IRTE_SID_SHIFT: u32 = 64;
/// Width mask of SID (16 bits).
pub const IRTE_SID_MASK: u128 = 0xFFFF;
/// Lowest bit of Source-id Qualifier (SQ, bits 81:80).
pub const IRTE_SQ_SHIFT: u32 = 80;
/// Width mask of SQ (2 bits).
pub const IRTE_SQ_MASK: u128 = 0x3;
/// Lowest bit of Source Validation Type (SVT, bits 83:82).
pub const IRTE_SVT_SHIFT: u32 = 82;
/// Width mask of SVT (2 bits).
pub const IRTE_SVT_MASK: u128 = 0x3;
/// Reserved bits of the remapped format (14:12, 31:24, 127:84); must be zero.
pub const IRTE_RESERVED_MASK: u128 = (0x7 << 12) | (0xFF << 24) | (!0u128 << 84);

/// SVT 00: no source-id verification.
pub const SVT_NO_VERIFY: u8 = 0;
/// SVT 01: verify the requester id against SID, qualified by SQ.
pub const SVT_VERIFY_SID_SQ: u8 = 1;
/// SVT 10: verify the requester bus lies in [SID[15:8], SID[7:0]].
pub const SVT_VERIFY_BUS: u8 = 2;
/// SVT 11: reserved; a request through such an entry faults.
pub const SVT_RESERVED: u8 = 3;
/// SQ 00: compare all 16 bits of the requester id.
pub const SQ_ALL_16: u8 = 0;
/// SQ 01: ignore requester-id bit 2.
pub const SQ_IGNORE_BIT_2: u8 = 1;
/// SQ 10: ignore requester-id bits 2:1.
pub const SQ_IGNORE_BITS_2_1: u8 = 2;
/// SQ 11: ignore requester-id bits 2:0 (the function number).
pub const SQ_IGNORE_BITS_2_0: u8 = 3;

/// Largest VT-d remapping table: 2^16 entries (IRTA.S = 15).
pub const INTR_REMAP_TABLE_ENTRIES: u32 = 1 << 16;

/// Unchecked field values of a remapped-format IRTE; [`Irte::new`] validates them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IrteFields {
    /// P: the entry is valid.
    pub present: bool,
    /// FPD: faults through this entry are not recorded.
    pub fpd: bool,
    /// DM: false = physical, true = logical destination.
    pub dest_mode: bool,
    /// RH: redirection hint (lowest-priority style delivery among the destinations).
    pub redir_hint: bool,
    /// TM: false = edge, true = level.
    pub trigger_mode: bool,
    /// DLM: delivery mode, 3 bits (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT).
    pub delivery_mode: u8,
    /// AVAIL: 4 bits free for software.
    pub avail: u8,
    /// Vector delivered to the CPU.
    pub vector: u8,
    /// Destination APIC id (x2APIC: all 32 bits).
    pub dest_id: u32,
    /// SID: requester id (bus << 8 | devfn) or, with SVT 10, start bus << 8 | end bus.
    pub sid: u16,
    /// SQ: source-id qualifier, 2 bits.
    pub sq: u8,
    /// SVT: source validation type, 2 bits.
    pub svt: u8,
}

/// A validated remapped-format VT-d IRTE (every field within its width).
// The source-id fields are held as one word, as they sit in the entry (bits 83:64): a write
// of `set_msi_sid`'s check is one store, and the remapping hit tests it with one compare
// (measured with callgrind: about 220 instructions a resize fewer, 0.7 %, than three fields). `Debug` and
// `Hash` go through `fields()`, so they print and hash as the field struct did.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Irte {
    dest_id: u32,
    /// SVT (bits 19:18), SQ (17:16) and SID (15:0).
    source: u32,
    vector: u8,
    present: bool,
    fpd: bool,
    dest_mode: bool,
    redir_hint: bool,
    trigger_mode: bool,
    delivery_mode: u8,
    avail: u8,
}

impl std::fmt::Debug for Irte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Irte").field("f", &self.fields()).finish()
    }
}

impl std::hash::Hash for Irte {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// Lowest bit of SQ in [`Irte::source`](Irte).
const SOURCE_SQ_SHIFT: u32 = IRTE_SQ_SHIFT - IRTE_SID_SHIFT;
/// Lowest bit of SVT in [`Irte::source`](Irte).
const SOURCE_SVT_SHIFT: u32 = IRTE_SVT_SHIFT - IRTE_SID_SHIFT;
/// The source word of `set_msi_sid`'s check (SVT 01, SQ 00) without the SID.
const SOURCE_SID_SQ_ALL: u32 =
    (SVT_VERIFY_SID_SQ as u32) << SOURCE_SVT_SHIFT | (SQ_ALL_16 as u32) << SOURCE_SQ_SHIFT;

fn check_width(name: &str, value: u8, mask: u128) -> Result<()> {
    if u128::from(value) > mask {
        return Err(Error::InvalidArgument(format!(
            "IRTE field {name} = {value} does not fit in {} bits",
            mask.count_ones()
        )));
    }
    Ok(())
}

fn bit(value: u128, shift: u32) -> bool {
    (value >> shift) & 1 == 1
}

fn field(value: u128, shift: u32, mask: u128) -> u128 {
    (value >> shift) & mask
}

impl Irte {
    /// Validate `fields` (narrow fields within their width) into an IRTE.
    pub fn new(fields: IrteFields) -> Result<Self> {
        check_width(
            "delivery_mode",
            fields.delivery_mode,
            IRTE_DELIVERY_MODE_MASK,
        )?;
        check_width("avail", fields.avail, IRTE_AVAIL_MASK)?;
        check_width("sq", fields.sq, IRTE_SQ_MASK)?;
        check_width("svt", fields.svt, IRTE_SVT_MASK)?;
        Ok(Self::from_fields(fields))
    }

    /// `fields`, each within its width, held.
    fn from_fields(f: IrteFields) -> Self {
        Self {
            dest_id: f.dest_id,
            source: u32::from(f.svt) << SOURCE_SVT_SHIFT
                | u32::from(f.sq) << SOURCE_SQ_SHIFT
                | u32::from(f.sid),
            vector: f.vector,
            present: f.present,
            fpd: f.fpd,
            dest_mode: f.dest_mode,
            redir_hint: f.redir_hint,
            trigger_mode: f.trigger_mode,
            delivery_mode: f.delivery_mode,
            avail: f.avail,
        }
    }

    /// The entry Linux's `prepare_irte` writes: present, fixed, edge, physical, RH = 1, no source check.
    pub fn remapped(vector: u8, dest_id: u32) -> Self {
        Self {
            present: true,
            redir_hint: true,
            vector,
            dest_id,
            ..Self::default()
        }
    }

    /// Return a copy that verifies the full 16-bit requester id `sid` (SVT 01, SQ 00), as `set_msi_sid` does.
    pub fn with_requester_id(self, sid: u16) -> Self {
        Self {
            source: SOURCE_SID_SQ_ALL | u32::from(sid),
            ..self
        }
    }

    /// Return a copy with FPD set to `fpd`.
    pub fn with_fpd(self, fpd: bool) -> Self {
        Self { fpd, ..self }
    }

    /// The field values.
    pub fn fields(&self) -> IrteFields {
        IrteFields {
            present: self.present,
            fpd: self.fpd,
            dest_mode: self.dest_mode,
            redir_hint: self.redir_hint,
            trigger_mode: self.trigger_mode,
            delivery_mode: self.delivery_mode,
            avail: self.avail,
            vector: self.vector,
            dest_id: self.dest_id,
            sid: self.sid(),
            sq: self.sq(),
            svt: self.svt(),
        }
    }
    /// P bit.
    pub fn present(&self) -> bool {
        self.present
    }
    /// FPD bit.
    pub fn fpd(&self) -> bool {
        self.fpd
    }
    /// DM bit (true = logical).
    pub fn dest_mode(&self) -> bool {
        self.dest_mode
    }
    /// RH bit.
    pub fn redir_hint(&self) -> bool {
        self.redir_hint
    }
    /// TM bit (true = level).
    pub fn trigger_mode(&self) -> bool {
        self.trigger_mode
    }
    /// Delivery mode (3 bits).
    pub fn delivery_mode(&self) -> u8 {
        self.delivery_mode
    }
    /// AVAIL (4 bits).
    pub fn avail(&self) -> u8 {
        self.avail
    }
    /// Vector.
    pub fn vector(&self) -> u8 {
        self.vector
    }
    /// Destination ID.
    pub fn dest_id(&self) -> u32 {
        self.dest_id
    }
    /// SID.
    pub fn sid(&self) -> u16 {
        self.source as u16
    }
    /// SQ (2 bits).
    pub fn sq(&self) -> u8 {
        (self.source >> SOURCE_SQ_SHIFT) as u8 & IRTE_SQ_MASK as u8
    }
    /// SVT (2 bits).
    pub fn svt(&self) -> u8 {
        (self.source >> SOURCE_SVT_SHIFT) as u8 & IRTE_SVT_MASK as u8
    }

    /// The 128-bit entry exactly as the IOMMU reads it from memory.
    pub fn to_u128(&self) -> u128 {
        (u128::from(self.present) << IRTE_PRESENT_SHIFT)
            | (u128::from(self.fpd) << IRTE_FPD_SHIFT)
            | (u128::from(self.dest_mode) << IRTE_DEST_MODE_SHIFT)
            | (u128::from(self.redir_hint) << IRTE_REDIR_HINT_SHIFT)
            | (u128::from(self.trigger_mode) << IRTE_TRIGGER_MODE_SHIFT)
            | (u128::from(self.delivery_mode) << IRTE_DELIVERY_MODE_SHIFT)
            | (u128::from(self.avail) << IRTE_AVAIL_SHIFT)
            | (u128::from(self.vector) << IRTE_VECTOR_SHIFT)
            | (u128::from(self.dest_id) << IRTE_DEST_ID_SHIFT)
            | (u128::from(self.source) << IRTE_SID_SHIFT)
    }

    /// Parse a 128-bit entry; reserved bits set or IM = 1 (posted) → `InvalidArgument`.
    pub fn from_u128(value: u128) -> Result<Self> {
        if bit(value, IRTE_MODE_SHIFT) {
            return Err(Error::InvalidArgument(format!(
                "IRTE {value:#034x} has IM = 1 (posted format), which is not modelled"
            )));
        }
        let reserved = value & IRTE_RESERVED_MASK;
        if reserved != 0 {
            return Err(Error::InvalidArgument(format!(
                "IRTE {value:#034x} has reserved bits set ({reserved:#034x})"
            )));
        }
        Ok(Self::from_fields(IrteFields {
            present: bit(value, IRTE_PRESENT_SHIFT),
            fpd: bit(value, IRTE_FPD_SHIFT),
            dest_mode: bit(value, IRTE_DEST_MODE_SHIFT),
            redir_hint: bit(value, IRTE_REDIR_HINT_SHIFT),
            trigger_mode: bit(value, IRTE_TRIGGER_MODE_SHIFT),
            delivery_mode: field(value, IRTE_DELIVERY_MODE_SHIFT, IRTE_DELIVERY_MODE_MASK) as u8,
            avail: field(value, IRTE_AVAIL_SHIFT, IRTE_AVAIL_MASK) as u8,
            vector: field(value, IRTE_VECTOR_SHIFT, IRTE_VECTOR_MASK) as u8,
            dest_id: field(value, IRTE_DEST_ID_SHIFT, IRTE_DEST_ID_MASK) as u32,
            sid: field(value, IRTE_SID_SHIFT, IRTE_SID_MASK) as u16,
            sq: field(value, IRTE_SQ_SHIFT, IRTE_SQ_MASK) as u8,
            svt: field(value, IRTE_SVT_SHIFT, IRTE_SVT_MASK) as u8,
        }))
    }

    /// Whether a request from `requester_id` passes [`source_check`](Self::source_check);
    /// changes nothing.
    #[inline]
    pub fn source_ok(&self, requester_id: u16) -> bool {
        self.source_check(requester_id).is_ok()
    }

    /// The SVT/SID/SQ check for a request from `requester_id`; changes nothing.
    // The entry `set_msi_sid` writes for every MSI-X vector (SVT 01, SQ 00) is settled by
    // one compare of the source word for its own SID and one for any other, ahead of the
    // general match: the remap hot path, and its SID-mismatch fault (measured with
    // callgrind and the `remap` bench).
    #[inline]
    pub fn source_check(&self, requester_id: u16) -> std::result::Result<(), FaultReason> {
        if self.source == SOURCE_SID_SQ_ALL | u32::from(requester_id) {
            return Ok(());
        }
        if self.source >> SOURCE_SQ_SHIFT == SOURCE_SID_SQ_ALL >> SOURCE_SQ_SHIFT {
            // SVT 01, SQ 00 and another SID.
            return Err(FaultReason::SidMismatch);
        }
        self.source_check_general(requester_id)
    }

    /// [`source_check`](Self::source_check) by SVT, for any entry.
    fn source_check_general(&self, requester_id: u16) -> std::result::Result<(), FaultReason> {
        match self.svt() {
            SVT_NO_VERIFY => Ok(()),
            SVT_VERIFY_SID_SQ => {
                // Function-number bits the SQ code leaves out of the compare
                // (indexed by SQ_ALL_16, SQ_IGNORE_BIT_2, _BITS_2_1, _BITS_2_0).
                const IGNORED: [u16; 4] = [0, 0b100, 0b110, 0b111];
                let ignored = IGNORED[usize::from(self.sq() & 3)];
                if (requester_id ^ self.sid()) & !ignored == 0 {
                    Ok(())
                } else {
                    Err(FaultReason::SidMismatch)
                }
            }
            SVT_VERIFY_BUS => {
                let bus = requester_id >> 8;
                let (start, end) = (self.sid() >> 8, self.sid() & 0xFF);
                if start <= bus && bus <= end {
                    Ok(())
                } else {
                    Err(FaultReason::SidMismatch)
                }
            }
            _ => Err(FaultReason::ReservedSvt),
        }
    }
}

/// The error for an IRTE index at or past the table's `len` entries (`InvalidArgument`).
#[cold]
fn index_past_table(index: u32, len: u32) -> Error {
    Error::InvalidArgument(format!(
        "IRTE index {index} is past the table ({len} entries)"
    ))
}

/// The error for a write to an IRTE that is not allocated (`InvalidOperation` named `site`).
#[cold]
fn irte_not_allocated(site: &str, index: u32) -> Error {
    Error::invalid_op(site, format!("IRTE {index} is not allocated"))
}

/// Bits set at every `1 << order`-aligned position of a word, for orders 0..=6.
const ALIGNED_STARTS: [u64; 7] = [
    u64::MAX,
    0x5555_5555_5555_5555,
    0x1111_1111_1111_1111,
    0x0101_0101_0101_0101,
    0x0001_0001_0001_0001,
    0x0000_0001_0000_0001,
    0x0000_0000_0000_0001,
];

/// One VT-d interrupt remapping table and Linux's allocation bitmap for it.
///
/// Counters: `in_use` (allocated slots), `present` (entries with P = 1),
/// `blocks` (live allocations).
#[derive(Debug, Clone)]
pub struct IrteTable {
    entries: Vec<Irte>,
    /// Allocation bitmap; bits past `len` in the last word are kept set.
    bitmap: Vec<u64>,
    /// At a block's first index: log2(block size) + 1; elsewhere 0.
    block_order: Vec<u8>,
    /// Every bitmap word below this one is full: first fit starts here.
    first_nonfull: usize,
    len: u32,
    in_use: u32,
    present: u32,
    blocks: u32,
}

impl Default for IrteTable {
    fn default() -> Self {
        Self::with_len(INTR_REMAP_TABLE_ENTRIES)
    }
}

impl IrteTable {
    /// A table of `entries` IRTEs (a power of two in 1..=65536), all clear and free.
    pub fn new(entries: u32) -> Result<Self> {
        if entries == 0 || entries > INTR_REMAP_TABLE_ENTRIES || !entries.is_power_of_two() {
            return Err(Error::InvalidArgument(format!(
                "IRTE table size {entries} must be a power of two in 1..=65536"
            )));
        }
        Ok(Self::with_len(entries))
    }

    fn with_len(len: u32) -> Self {
        let n = len as usize;
        let words = n.div_ceil(64);
        let mut bitmap = vec![0u64; words];
        if n % 64 != 0 {
            bitmap[words - 1] = !0u64 << (n % 64);
        }
        Self {
            entries: vec![Irte::default(); n],
            bitmap,
            block_order: vec![0; n],
            first_nonfull: 0,
            len,
            in_use: 0,
            present: 0,
            blocks: 0,
        }
    }

    /// Table size in entries.
    pub fn entries(&self) -> u32 {
        self.len
    }
    /// Allocated slots (sum of live block sizes).
    pub fn in_use(&self) -> u32 {
        self.in_use
    }
    /// Free slots.
    pub fn free_slots(&self) -> u32 {
        self.len - self.in_use
    }
    /// Entries with P = 1.
    pub fn present(&self) -> u32 {
        self.present
    }
    /// Live allocated blocks.
    pub fn blocks(&self) -> u32 {
        self.blocks
    }

    /// Whether slot `index` belongs to an allocated block (false past the table).
    pub fn is_allocated(&self, index: u32) -> bool {
        let i = index as usize;
        // `entries` has `len` entries: the same test as `check_index`.
        i < self.entries.len()
            && self
                .bitmap
                .get(i / 64)
                .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    #[inline]
    fn check_count(&self, count: u32) -> Result<u32> {
        if count == 0 || count > self.len {
            return Err(Error::InvalidArgument(format!(
                "IRTE count {count} must be in 1..={}",
                self.len
            )));
        }
        Ok(count.next_power_of_two().trailing_zeros())
    }

    fn check_index(&self, index: u32) -> Result<usize> {
        if index >= self.len {
            return Err(index_past_table(index, self.len));
        }
        Ok(index as usize)
    }

    /// First free naturally aligned run of `1 << order` slots (`bitmap_find_free_region`).
    #[inline]
    fn find_free_region(&self, order: u32) -> Option<usize> {
        let size = 1usize << order;
        let skip = self.first_nonfull.min(self.bitmap.len());
        if order <= 6 {
            for (wi, &word) in self.bitmap.iter().enumerate().skip(skip) {
                if word == u64::MAX {
                    continue;
                }
                let mut runs = !word;
                let mut step = 1;
                while step < size {
                    runs &= runs >> step;
                    step <<= 1;
                }
                runs &= ALIGNED_STARTS[order as usize];
                if runs != 0 {
                    return Some(wi * 64 + runs.trailing_zeros() as usize);
                }
            }
            None
        } else {
            let words = size / 64;
            let first = skip / words;
            self.bitmap
                .chunks_exact(words)
                .skip(first)
                .position(|group| group.iter().all(|&w| w == 0))
                .map(|g| (first + g) * size)
        }
    }

    #[inline]
    fn mark(&mut self, start: usize, size: usize, allocated: bool) {
        if size < 64 {
            let mask = ((1u64 << size) - 1) << (start % 64);
            let word = &mut self.bitmap[start / 64];
            if allocated {
                *word |= mask;
            } else {
                *word &= !mask;
            }
        } else {
            let fill = if allocated { u64::MAX } else { 0 };
            for word in &mut self.bitmap[start / 64..(start + size) / 64] {
                *word = fill;
            }
        }
        if allocated {
            self.skip_full_words();
        } else {
            self.first_nonfull = self.first_nonfull.min(start / 64);
        }
    }

    /// Move `first_nonfull` past the full words at and after it (no accounting effect).
    fn skip_full_words(&mut self) {
        while self.bitmap.get(self.first_nonfull) == Some(&u64::MAX) {
            self.first_nonfull += 1;
        }
    }

    /// Allocate `count.next_power_of_two()` naturally aligned slots, first fit (Linux `alloc_irte`);
    /// returns the first index. Adds the block size to `in_use` and one to `blocks`.
    // In line (the extension's build left it a call, 2.3 % of its storm); so is `free` now
    // (c37edf9 left it to the inliner: in line, blocks of 128 were 12 % slower, criterion;
    // with `free_block`'s branch-free count, callgrind counts 666 instructions for alloc and
    // free of 128 on the half-full table against 854 then).
    #[inline]
    pub fn alloc(&mut self, count: u32) -> Result<u16> {
        // MSI-X allocates one IRTE a vector: measured with callgrind, the general search
        // and marking cost it about 20 instructions more than `alloc_one`.
        if count == 1 {
            return match self.alloc_one() {
                Some(start) => Ok(start),
                None => self.alloc_block_cold(count),
            };
        }
        self.alloc_block(count)
    }

    /// `alloc(1)` when the word at `first_nonfull` has room: every word below it is full,
    /// so its lowest clear bit is the slot first fit picks. Adds one to `in_use` and
    /// `blocks`. `None`, changing nothing, when the table is full.
    fn alloc_one(&mut self) -> Option<u16> {
        let w = self.first_nonfull;
        let word = self.bitmap.get_mut(w)?;
        if *word == u64::MAX {
            return None;
        }
        let bit = (!*word).trailing_zeros() as usize;
        *word |= 1 << bit;
        let full = *word == u64::MAX;
        let start = w * 64 + bit;
        // A clear bit lies below `len` (the bits past it are kept set).
        *self.block_order.get_mut(start)? = 1;
        if full {
            self.skip_full_words();
        }
        self.in_use += 1;
        self.blocks += 1;
        Some(start as u16)
    }

    /// [`alloc_block`](Self::alloc_block) where `alloc_one` found no room (a full table):
    /// out of line, so that `alloc(1)` in line carries no general search.
    #[cold]
    #[inline(never)]
    fn alloc_block_cold(&mut self, count: u32) -> Result<u16> {
        self.alloc_block(count)
    }

    /// `alloc` of any `count`: the general first-fit search (same effects and errors).
    // It and the helpers it calls are in line in `alloc` for other counts (as before the
    // one-slot path): out of line, blocks of 4 cost about 40 instructions more (callgrind).
    #[inline]
    fn alloc_block(&mut self, count: u32) -> Result<u16> {
        let order = self.check_count(count)?;
        let Some(start) = self.find_free_region(order) else {
            return Err(Error::NoSpace(format!(
                "no free aligned block of {} IRTEs ({} of {} in use)",
                1u32 << order,
                self.in_use,
                self.len
            )));
        };
        let size = 1usize << order;
        self.mark(start, size, true);
        self.block_order[start] = order as u8 + 1;
        self.in_use += 1 << order;
        self.blocks += 1;
        Ok(start as u16)
    }

    /// Free the block starting at `index` whose rounded size matches `count`, clearing its
    /// entries (Linux `clear_entries`). Lowers `in_use`, `blocks` and `present`; on error
    /// nothing changes.
    #[inline]
    pub fn free(&mut self, index: u32, count: u32) -> Result<()> {
        // MSI-X frees one IRTE a vector: `free_one` skips the count check and the loop.
        if count == 1 {
            return if self.free_one(index) {
                Ok(())
            } else {
                self.free_block_cold(index, count)
            };
        }
        self.free_block(index, count)
    }

    /// `free(index, 1)` of a one-slot block at `index`: clears the entry, lowers `in_use`
    /// and `blocks` by one and `present` if it was set. `false`, changing nothing, when
    /// no one-slot block starts at `index`.
    fn free_one(&mut self, index: u32) -> bool {
        let i = index as usize;
        let (Some(order), Some(entry)) = (self.block_order.get_mut(i), self.entries.get_mut(i))
        else {
            return false;
        };
        if *order != 1 {
            return false;
        }
        *order = 0;
        if entry.present() {
            self.present -= 1;
        }
        *entry = Irte::default();
        if let Some(word) = self.bitmap.get_mut(i / 64) {
            *word &= !(1 << (i % 64));
        }
        self.first_nonfull = self.first_nonfull.min(i / 64);
        self.in_use -= 1;
        self.blocks -= 1;
        true
    }

    /// [`free_block`](Self::free_block) where `free_one` refused (no one-slot block at
    /// `index`: always an error): out of line, so that `free(_, 1)` in line carries no loop.
    #[cold]
    #[inline(never)]
    fn free_block_cold(&mut self, index: u32, count: u32) -> Result<()> {
        self.free_block(index, count)
    }

    /// `free` of any `count`: the general path (same effects and errors).
    #[inline]
    fn free_block(&mut self, index: u32, count: u32) -> Result<()> {
        let order = self.check_count(count)?;
        // `block_order` has `len` entries: the same test as `check_index`, one look-up.
        let Some(&stored) = self.block_order.get(index as usize) else {
            return Err(index_past_table(index, self.len));
        };
        if u32::from(stored) != order + 1 {
            return Err(self.free_error(index, count, order, stored));
        }
        let i = index as usize;
        let size = 1usize << order;
        // Counted without a branch: measured with callgrind, a block of 128 costs 175
        // instructions fewer than lowering `present` entry by entry.
        let mut present = 0;
        for entry in &mut self.entries[i..i + size] {
            present += u32::from(entry.present());
            *entry = Irte::default();
        }
        self.present -= present;
        self.mark(i, size, false);
        self.block_order[i] = 0;
        self.in_use -= 1 << order;
        self.blocks -= 1;
        Ok(())
    }

    /// Why a write to `index` is refused: past the table → `InvalidArgument`; not
    /// allocated → `InvalidOperation` named `site`. Changes nothing.
    // Out of line and returning the caller's own `Result`: the refusal is a tail call, so
    // `set` and `clear` save no registers for it (measured with callgrind: 8 instructions
    // a call when the error came back through an `Option`/`Result` of the entry).
    #[cold]
    #[inline(never)]
    fn write_refused<T>(&self, index: u32, site: &'static str) -> Result<T> {
        if index >= self.len {
            return Err(index_past_table(index, self.len));
        }
        Err(irte_not_allocated(site, index))
    }

    /// Why `free(index, count)` (`count` rounding to `1 << order`) is refused, the block
    /// order stored at `index` being `stored`: not a block start, not allocated, or another
    /// size. Changes nothing.
    #[cold]
    fn free_error(&self, index: u32, count: u32, order: u32, stored: u8) -> Error {
        match stored {
            0 if self.is_allocated(index) => Error::invalid_op(
                "free_not_block_start",
                format!("IRTE {index} lies inside an allocated block"),
            ),
            0 => irte_not_allocated("free_not_allocated", index),
            _ => Error::invalid_op(
                "free_count_mismatch",
                format!(
                    "block at {index} has {} IRTEs, free asked for {count} (rounds to {})",
                    1u32 << (stored - 1),
                    1u32 << order
                ),
            ),
        }
    }

    /// Write `irte` at an allocated `index` (Linux `modify_irte`); updates `present`.
    // `set` and `clear` run once per vector of a resize: in line, the 16-byte `irte` is not
    // passed through the stack (the extension's build did, and stalled on it).
    #[inline]
    pub fn set(&mut self, index: u32, irte: Irte) -> Result<()> {
        self.set_then(index, irte, ())
    }

    /// [`set`](Self::set), answering `ok` once written: a caller that returns another
    /// `Result` gets the refusal as a tail call too (no registers saved for it).
    #[inline]
    pub(crate) fn set_then<T>(&mut self, index: u32, irte: Irte, ok: T) -> Result<T> {
        if !self.is_allocated(index) {
            return self.write_refused(index, "set_not_allocated");
        }
        let entry = &mut self.entries[index as usize];
        let old = entry.present();
        *entry = irte;
        if old != irte.present() {
            if irte.present() {
                self.present += 1;
            } else {
                self.present -= 1;
            }
        }
        Ok(ok)
    }

    /// Zero the entry at an allocated `index` (what deactivation writes); updates `present`.
    #[inline]
    pub fn clear(&mut self, index: u32) -> Result<()> {
        if !self.is_allocated(index) {
            return self.write_refused(index, "clear_not_allocated");
        }
        let entry = &mut self.entries[index as usize];
        let was_present = entry.present();
        *entry = Irte::default();
        if was_present {
            self.present -= 1;
        }
        Ok(())
    }

    /// The entry at `index` (all zero if never written); changes nothing.
    pub fn get(&self, index: u32) -> Result<Irte> {
        let i = self.check_index(index)?;
        Ok(self.entries[i])
    }

    /// The entry at `index`, or `None` past the table: the remapping hot path.
    #[inline]
    pub fn lookup(&self, index: u32) -> Option<&Irte> {
        self.entries.get(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_ones(mut f: IrteFields, name: &str) -> IrteFields {
        match name {
            "present" => f.present = true,
            "fpd" => f.fpd = true,
            "dest_mode" => f.dest_mode = true,
            "redir_hint" => f.redir_hint = true,
            "trigger_mode" => f.trigger_mode = true,
            "delivery_mode" => f.delivery_mode = 0x7,
            "avail" => f.avail = 0xF,
            "vector" => f.vector = 0xFF,
            "dest_id" => f.dest_id = u32::MAX,
            "sid" => f.sid = u16::MAX,
            "sq" => f.sq = 3,
            "svt" => f.svt = 3,
            _ => unreachable!(),
        }
        f
    }

    /// Each field alone at all-ones lands exactly on its documented bits.
    #[test]
    fn each_field_sets_exactly_its_bits() {
        let cases: [(&str, u128); 12] = [
            ("present", 1 << 0),
            ("fpd", 1 << 1),
            ("dest_mode", 1 << 2),
            ("redir_hint", 1 << 3),
            ("trigger_mode", 1 << 4),
            ("delivery_mode", 0b111 << 5),
            ("avail", 0xF << 8),
            ("vector", 0xFF << 16),
            ("dest_id", 0xFFFF_FFFF << 32),
            ("sid", 0xFFFF << 64),
            ("sq", 0b11 << 80),
            ("svt", 0b11 << 82),
        ];
        let mut union = 0u128;
        for (name, bits) in cases {
            let irte = Irte::new(all_ones(IrteFields::default(), name)).unwrap();
            assert_eq!(irte.to_u128(), bits, "{name}");
            assert_eq!(Irte::from_u128(bits).unwrap(), irte, "{name}");
            assert_eq!(union & bits, 0, "{name} overlaps another field");
            union |= bits;
        }
        // Fields, IM and reserved bits tile the whole 128 bits.
        assert_eq!(
            union | IRTE_RESERVED_MASK | (1 << IRTE_MODE_SHIFT),
            u128::MAX
        );
    }

    #[test]
    fn reserved_and_posted_bits_are_rejected() {
        for b in (12..15).chain(24..32).chain(84..128) {
            let err = Irte::from_u128(1u128 << b).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(_)), "bit {b}");
        }
        let err = Irte::from_u128(1 << 15).unwrap_err();
        assert!(err.to_string().contains("posted"));
    }

    #[test]
    fn narrow_fields_out_of_width_are_rejected() {
        let bad = [
            IrteFields {
                delivery_mode: 8,
                ..Default::default()
            },
            IrteFields {
                avail: 16,
                ..Default::default()
            },
            IrteFields {
                sq: 4,
                ..Default::default()
            },
            IrteFields {
                svt: 4,
                ..Default::default()
            },
        ];
        for f in bad {
            assert!(matches!(Irte::new(f), Err(Error::InvalidArgument(_))));
        }
    }

    #[test]
    fn source_check_sq_and_svt() {
        let sid = 0x1234u16; // bus 0x12, dev 6, fn 4
        let e = |svt, sq| {
            Irte::new(IrteFields {
                sid,
                sq,
                svt,
                ..Default::default()
            })
            .unwrap()
        };
        assert!(e(0, 0).source_check(0xFFFF).is_ok());
        assert!(e(1, 0).source_check(sid).is_ok());
        assert_eq!(e(1, 0).source_check(sid ^ 1), Err(FaultReason::SidMismatch));
        // SQ 01 ignores bit 2 only.
        assert!(e(1, 1).source_check(sid ^ 0b100).is_ok());
        assert!(e(1, 1).source_check(sid ^ 0b010).is_err());
        // SQ 10 ignores bits 2:1.
        assert!(e(1, 2).source_check(sid ^ 0b110).is_ok());
        assert!(e(1, 2).source_check(sid ^ 0b001).is_err());
        // SQ 11 ignores bits 2:0.
        assert!(e(1, 3).source_check(sid ^ 0b111).is_ok());
        assert!(e(1, 3).source_check(sid ^ 0b1000).is_err());
        // SVT 10: bus in [0x12, 0x34].
        for (rid, ok) in [
            (0x1100, false),
            (0x1200, true),
            (0x34FF, true),
            (0x3500, false),
        ] {
            assert_eq!(e(2, 0).source_check(rid).is_ok(), ok, "{rid:#x}");
        }
        assert_eq!(e(3, 0).source_check(sid), Err(FaultReason::ReservedSvt));
    }

    #[test]
    fn table_size_must_be_power_of_two() {
        for bad in [0, 3, 100, 65537, 1 << 17] {
            assert!(matches!(
                IrteTable::new(bad),
                Err(Error::InvalidArgument(_))
            ));
        }
        for good in [1, 2, 64, 4096, 65536] {
            assert_eq!(IrteTable::new(good).unwrap().entries(), good);
        }
        assert_eq!(IrteTable::default().entries(), 65536);
    }

    #[test]
    fn alloc_is_aligned_first_fit() {
        let mut t = IrteTable::new(256).unwrap();
        assert_eq!(t.alloc(1).unwrap(), 0);
        assert_eq!(t.alloc(3).unwrap(), 4); // 4 slots, aligned to 4
        assert_eq!(t.alloc(1).unwrap(), 1);
        assert_eq!(t.alloc(2).unwrap(), 2);
        assert_eq!(t.alloc(8).unwrap(), 8);
        assert_eq!(t.alloc(100).unwrap(), 128); // 128 slots
        assert_eq!(t.alloc(1).unwrap(), 16);
        assert_eq!((t.in_use(), t.blocks()), (1 + 4 + 1 + 2 + 8 + 128 + 1, 7));
        t.free(4, 4).unwrap();
        assert_eq!(t.alloc(2).unwrap(), 4);
        assert_eq!(t.alloc(64).unwrap(), 64);
        assert!(matches!(t.alloc(64), Err(Error::NoSpace(_))));
    }

    #[test]
    fn alloc_small_tables_and_errors() {
        let mut t = IrteTable::new(4).unwrap();
        assert!(matches!(t.alloc(0), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.alloc(5), Err(Error::InvalidArgument(_))));
        assert_eq!(t.alloc(4).unwrap(), 0);
        assert!(matches!(t.alloc(1), Err(Error::NoSpace(_))));
        t.free(0, 3).unwrap();
        assert_eq!(t.alloc(1).unwrap(), 0);
        assert_eq!(t.alloc(2).unwrap(), 2);
        assert_eq!(t.alloc(1).unwrap(), 1);
        assert!(matches!(t.alloc(1), Err(Error::NoSpace(_))));
    }

    #[test]
    fn full_table_fills_exactly() {
        let mut t = IrteTable::default();
        for i in 0..65536u32 {
            assert_eq!(u32::from(t.alloc(1).unwrap()), i);
        }
        assert!(matches!(t.alloc(1), Err(Error::NoSpace(_))));
        t.free(40000, 1).unwrap();
        assert_eq!(t.alloc(1).unwrap(), 40000);
        let mut t = IrteTable::default();
        assert_eq!(t.alloc(32768).unwrap(), 0);
        assert_eq!(t.alloc(20000).unwrap(), 32768);
        assert!(matches!(t.alloc(1), Err(Error::NoSpace(_))));
    }

    #[test]
    fn free_errors_leave_state_unchanged() {
        let mut t = IrteTable::new(64).unwrap();
        let b = u32::from(t.alloc(4).unwrap());
        t.set(b + 1, Irte::remapped(0x40, 1)).unwrap();
        let before = (t.in_use(), t.present(), t.blocks());
        let site = |e: Error| match e {
            Error::InvalidOperation { sites, .. } => sites[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(site(t.free(b + 1, 1).unwrap_err()), "free_not_block_start");
        assert_eq!(site(t.free(b, 8).unwrap_err()), "free_count_mismatch");
        assert_eq!(site(t.free(b, 1).unwrap_err()), "free_count_mismatch");
        assert_eq!(site(t.free(32, 1).unwrap_err()), "free_not_allocated");
        assert!(matches!(t.free(64, 1), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.free(b, 0), Err(Error::InvalidArgument(_))));
        assert_eq!((t.in_use(), t.present(), t.blocks()), before);
        assert_eq!(t.get(b + 1).unwrap().vector(), 0x40);
        t.free(b, 4).unwrap();
        assert_eq!((t.in_use(), t.present(), t.blocks()), (0, 0, 0));
        assert_eq!(t.get(b + 1).unwrap(), Irte::default());
        assert_eq!(site(t.free(b, 4).unwrap_err()), "free_not_allocated");
    }

    #[test]
    fn set_get_clear_track_present() {
        let mut t = IrteTable::new(16).unwrap();
        let site = |e: Error| match e {
            Error::InvalidOperation { sites, .. } => sites[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            site(t.set(0, Irte::remapped(1, 1)).unwrap_err()),
            "set_not_allocated"
        );
        assert_eq!(site(t.clear(0).unwrap_err()), "clear_not_allocated");
        assert!(matches!(t.get(16), Err(Error::InvalidArgument(_))));
        assert!(matches!(
            t.set(16, Irte::default()),
            Err(Error::InvalidArgument(_))
        ));
        assert!(t.lookup(16).is_none());
        t.alloc(2).unwrap();
        t.set(0, Irte::remapped(0x30, 2)).unwrap();
        t.set(0, Irte::remapped(0x31, 2)).unwrap();
        assert_eq!(t.present(), 1);
        t.set(1, Irte::remapped(0x32, 2)).unwrap();
        assert_eq!(t.present(), 2);
        t.set(1, Irte::default()).unwrap();
        assert_eq!(t.present(), 1);
        t.clear(0).unwrap();
        t.clear(0).unwrap();
        assert_eq!(t.present(), 0);
        assert_eq!(t.get(0).unwrap(), Irte::default());
    }

    fn arb_fields() -> impl Strategy<Value = IrteFields> {
        (
            any::<[bool; 5]>(),
            0u8..8,
            0u8..16,
            any::<u8>(),
            any::<u32>(),
            any::<u16>(),
            0u8..4,
            0u8..4,
        )
            .prop_map(|(b, delivery_mode, avail, vector, dest_id, sid, sq, svt)| {
                IrteFields {
                    present: b[0],
                    fpd: b[1],
                    dest_mode: b[2],
                    redir_hint: b[3],
                    trigger_mode: b[4],
                    delivery_mode,
                    avail,
                    vector,
                    dest_id,
                    sid,
                    sq,
                    svt,
                }
            })
    }

    proptest! {
        #[test]
        fn irte_round_trips(f in arb_fields()) {
            let irte = Irte::new(f).unwrap();
            let raw = irte.to_u128();
            prop_assert_eq!(raw & IRTE_RESERVED_MASK, 0);
            prop_assert_eq!(Irte::from_u128(raw).unwrap(), irte);
            prop_assert_eq!(irte.fields(), f);
        }

        #[test]
        fn from_u128_never_panics(raw in any::<u128>()) {
            match Irte::from_u128(raw) {
                Ok(irte) => prop_assert_eq!(irte.to_u128(), raw),
                Err(e) => prop_assert!(matches!(e, Error::InvalidArgument(_))),
            }
        }

        /// `source_check`'s compares settle what the general match by SVT does, for every
        /// SVT, SQ and SID.
        #[test]
        fn source_check_matches_the_general_match(f in arb_fields(), near in 0u16..16, any_rid in any::<u16>(), pick in any::<bool>(), linux in any::<bool>()) {
            // Half of the entries as `set_msi_sid` writes them (SVT 01, SQ 00), which the
            // compares settle; the rest anything.
            let f = if linux { IrteFields { svt: 1, sq: 0, ..f } } else { f };
            let irte = Irte::new(f).unwrap();
            // Requester ids equal to the SID or differing in its low bits, and any other.
            let rid = if pick { f.sid ^ near } else { any_rid };
            prop_assert_eq!(irte.source_check(rid), irte.source_check_general(rid));
            prop_assert_eq!(irte.source_ok(rid), irte.source_check_general(rid).is_ok());
        }

        /// `Debug` and `Hash` are those of the field struct the entry was held as before
        /// (`Irte { f: IrteFields }`, derived), and the fields come back as given.
        #[test]
        fn debug_and_hash_are_the_fields(f in arb_fields()) {
            use std::hash::{BuildHasher, BuildHasherDefault};
            mod before {
                #[derive(Debug, Hash)]
                pub struct Irte {
                    pub f: super::IrteFields,
                }
            }
            let irte = Irte::new(f).unwrap();
            let old = before::Irte { f };
            prop_assert_eq!(irte.fields(), f);
            prop_assert_eq!(format!("{irte:?}"), format!("{old:?}"));
            prop_assert_eq!(format!("{irte:#?}"), format!("{old:#?}"));
            let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
            prop_assert_eq!(h.hash_one(irte), h.hash_one(&old));
        }

        /// Allocations never overlap, are aligned, and counters equal the sum of live blocks.
        #[test]
        fn alloc_free_invariants(ops in prop::collection::vec((any::<bool>(), 1u32..40), 1..200)) {
            let mut t = IrteTable::new(256).unwrap();
            let mut live: Vec<(u32, u32)> = Vec::new();
            for (do_alloc, n) in ops {
                if do_alloc || live.is_empty() {
                    let size = n.next_power_of_two();
                    match t.alloc(n) {
                        Ok(start) => {
                            let start = u32::from(start);
                            prop_assert_eq!(start % size, 0);
                            for &(s, z) in &live {
                                prop_assert!(start + size <= s || s + z <= start);
                            }
                            // First fit: no lower aligned free block existed.
                            for cand in (0..start).step_by(size as usize) {
                                prop_assert!(live.iter().any(|&(s, z)| cand < s + z && s < cand + size));
                            }
                            live.push((start, size));
                        }
                        Err(Error::NoSpace(_)) => {
                            for cand in (0..256).step_by(size as usize) {
                                prop_assert!(live.iter().any(|&(s, z)| cand < s + z && s < cand + size));
                            }
                        }
                        Err(e) => prop_assert!(false, "{e}"),
                    }
                } else {
                    let (s, z) = live.remove(n as usize % live.len());
                    t.free(s, z).unwrap();
                }
                prop_assert_eq!(t.in_use(), live.iter().map(|&(_, z)| z).sum::<u32>());
                prop_assert_eq!(t.blocks() as usize, live.len());
            }
        }
    }

    #[test]
    fn builders_counters_and_allocation_bitmap() {
        let e = Irte::remapped(0x41, 7);
        assert_eq!(e.to_u128(), (0x41 << 16) | (7u128 << 32) | 0b1001);
        let e = e.with_requester_id(0x0310);
        assert_eq!(
            (e.svt(), e.sq(), e.sid()),
            (SVT_VERIFY_SID_SQ, SQ_ALL_16, 0x0310)
        );
        assert_eq!(e.to_u128() >> 64, 0x0310 | (1 << 18));
        assert_eq!(e.source_check(0x0310), Ok(()));
        assert_eq!(e.source_check(0x0311), Err(FaultReason::SidMismatch));
        assert!(e.with_fpd(true).fpd() && !e.with_fpd(true).with_fpd(false).fpd());
        assert_eq!(e.with_fpd(true).to_u128(), e.to_u128() | 0b10);

        let mut t = IrteTable::new(64).unwrap();
        assert_eq!((t.entries(), t.free_slots(), t.in_use()), (64, 64, 0));
        let a = t.alloc(3).unwrap(); // 4 slots at 0
        assert_eq!(a, 0);
        assert_eq!((t.free_slots(), t.in_use(), t.blocks()), (60, 4, 1));
        assert!((0..4).all(|i| t.is_allocated(i)));
        assert!(!t.is_allocated(4) && !t.is_allocated(64) && !t.is_allocated(u32::MAX));
        t.free(0, 4).unwrap();
        assert_eq!((t.free_slots(), t.blocks()), (64, 0));
        assert!(!t.is_allocated(0));
    }

    /// Naive first fit over a bool map: the smallest aligned free block.
    fn reference_alloc(used: &mut [bool], count: u32) -> Option<usize> {
        let size = count.next_power_of_two() as usize;
        let start = (0..used.len())
            .step_by(size)
            .find(|&s| s + size <= used.len() && used[s..s + size].iter().all(|u| !u))?;
        used[start..start + size].iter_mut().for_each(|u| *u = true);
        Some(start)
    }

    proptest! {
        /// The first-free-word hint never changes which block first fit picks.
        #[test]
        fn alloc_matches_naive_first_fit(ops in prop::collection::vec((any::<bool>(), 1u32..200, any::<prop::sample::Index>()), 1..300)) {
            let mut t = IrteTable::new(1024).unwrap();
            let mut used = vec![false; 1024];
            let mut live: Vec<(u32, u32)> = Vec::new();
            for (do_alloc, count, pick) in ops {
                if do_alloc || live.is_empty() {
                    let want = reference_alloc(&mut used, count);
                    let got = t.alloc(count).ok().map(usize::from);
                    prop_assert_eq!(got, want);
                    if let Some(s) = got {
                        live.push((s as u32, count));
                    }
                } else {
                    let (s, c) = live.swap_remove(pick.index(live.len()));
                    t.free(s, c).unwrap();
                    let size = c.next_power_of_two() as usize;
                    used[s as usize..s as usize + size].iter_mut().for_each(|u| *u = false);
                }
                prop_assert_eq!(t.in_use() as usize, used.iter().filter(|u| **u).count());
            }
        }
    }

    /// Every field of the table, for comparing two tables exactly.
    #[allow(clippy::type_complexity)]
    fn state(t: &IrteTable) -> (Vec<Irte>, Vec<u64>, Vec<u8>, usize, [u32; 4]) {
        (
            t.entries.clone(),
            t.bitmap.clone(),
            t.block_order.clone(),
            t.first_nonfull,
            [t.len, t.in_use, t.present, t.blocks],
        )
    }

    proptest! {
        /// `alloc(1)` and `free(_, 1)` (the one-slot fast paths) answer and change exactly
        /// what the general paths do, errors included, on tables of every size (below 64
        /// entries the last word's padding bits are set), mixed with blocks of other sizes.
        #[test]
        fn one_slot_paths_match_general_paths(
            log_len in 0u32..9,
            ops in prop::collection::vec((0u8..4, 0u32..6, any::<prop::sample::Index>(), any::<u32>()), 1..400),
        ) {
            let len = 1u32 << log_len;
            let mut fast = IrteTable::new(len).unwrap();
            let mut general = IrteTable::new(len).unwrap();
            let mut live: Vec<(u32, u32)> = Vec::new();
            for (kind, log_count, pick, raw) in ops {
                // Mostly single slots, as MSI-X allocates.
                let count = if log_count >= 3 { 1 } else { 1 << log_count };
                match kind {
                    0 | 1 => {
                        let got = fast.alloc(count);
                        prop_assert_eq!(&got, &general.alloc_block(count));
                        if let Ok(s) = got {
                            live.push((u32::from(s), count));
                            // Some entries present, so that freeing lowers `present`.
                            if raw % 2 == 0 {
                                let e = Irte::remapped(raw as u8, raw);
                                fast.set(u32::from(s), e).unwrap();
                                general.set(u32::from(s), e).unwrap();
                            }
                        }
                    }
                    2 if !live.is_empty() => {
                        let (s, c) = live.swap_remove(pick.index(live.len()));
                        prop_assert_eq!(fast.free(s, c), general.free_block(s, c));
                    }
                    _ => {
                        // Any index (inside a block, free, past the table) and count.
                        let index = raw % (2 * len + 1);
                        let count = if raw & (1 << 31) != 0 { 1 } else { count };
                        let got = fast.free(index, count);
                        prop_assert_eq!(&got, &general.free_block(index, count));
                        if got.is_ok() {
                            live.retain(|&(s, _)| s != index);
                        }
                    }
                }
                prop_assert_eq!(state(&fast), state(&general));
            }
        }
    }
}
