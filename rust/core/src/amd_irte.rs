//! AMD-Vi interrupt remapping: one remapping table per requester id (device
//! table entry IntTabLen / IntTablePtr), the 128-bit IRTE of the GA format,
//! and Linux's `alloc_irq_index` allocator.
//!
//! Table sizes (Linux `drivers/iommu/amd/amd_iommu_types.h`, `iommu.c`):
//! 256 entries (`MAX_IRQS_PER_TABLE 256`, DTE IntTabLen 8) until Linux 5.10;
//! 512 (`DTE_INTTABLEN_VALUE 9`) from 5.10 ("hardware only supports 512 IRTEs
//! despite the architectural limit of 2048"); 2048 (`MAX_IRQS_PER_TABLE_2K`)
//! on newer kernels when the IOMMU reports `NumIntRemapSup` in EFR2, else 512.
//! 128 is not a Linux table size (the kernel's 128 is the table's byte
//! alignment, `DTE_INTTAB_ALIGNMENT`), but the DTE field can encode any power
//! of two up to 2048, so any such size is accepted.
//!
//! IRTE format: the 128-bit GA format (`struct irte_ga`, used when the IOMMU
//! has GASup, i.e. `AMD_IOMMU_GUEST_IR_LEGACY_GA` / `VAPIC`) with GuestMode = 0
//! (remapped). Bits: RemapEn 0, SupIOPF 1, IntType 4:2, RqEoi 5, DM 6,
//! GuestMode 7, Destination[23:0] 31:8, reserved 63:32, Vector 71:64,
//! reserved 119:72, Destination[31:24] 127:120. The guest vAPIC format
//! (GuestMode = 1: GATag, GA root pointer, IsRun) and the 32-bit legacy format
//! are not modelled. Allocation is tracked in a bitmap beside the table (the
//! kernel marks allocated-but-unprogrammed GA entries with vector 0xFF).

use crate::error::{Error, Result};

/// Bit position of RemapEn (the entry is valid).
pub const AMD_IRTE_REMAP_EN_SHIFT: u32 = 0;
/// Bit position of SupIOPF (suppress I/O page fault logging for this entry).
pub const AMD_IRTE_SUP_IOPF_SHIFT: u32 = 1;
/// Lowest bit of IntType (bits 4:2).
pub const AMD_IRTE_INT_TYPE_SHIFT: u32 = 2;
/// Width mask of IntType (3 bits).
pub const AMD_IRTE_INT_TYPE_MASK: u128 = 0x7;
/// Bit position of RqEoi.
pub const AMD_IRTE_RQ_EOI_SHIFT: u32 = 5;
/// Bit position of DM (destination mode, 1 = logical).
pub const AMD_IRTE_DEST_MODE_SHIFT: u32 = 6;
/// Bit position of GuestMode (1 = guest vAPIC format, not modelled).
pub const AMD_IRTE_GUEST_MODE_SHIFT: u32 = 7;
/// Lowest bit of Destination[23:0] (bits 31:8).
pub const AMD_IRTE_DEST_LO_SHIFT: u32 = 8;
/// Width mask of Destination[23:0].
pub const AMD_IRTE_DEST_LO_MASK: u128 = 0xFF_FFFF;
/// Lowest bit of Vector (bits 71:64).
pub const AMD_IRTE_VECTOR_SHIFT: u32 = 64;
/// Width mask of Vector.
pub const AMD_IRTE_VECTOR_MASK: u128 = 0xFF;
/// Lowest bit of Destination[31:24] (bits 127:120).
pub const AMD_IRTE_DEST_HI_SHIFT: u32 = 120;
/// Width mask of Destination[31:24].
pub const AMD_IRTE_DEST_HI_MASK: u128 = 0xFF;
/// Reserved bits with GuestMode = 0 (63:32 and 119:72); must be zero.
pub const AMD_IRTE_RESERVED_MASK: u128 = (0xFFFF_FFFF << 32) | (((1u128 << 48) - 1) << 72);

/// Linux before 5.10: 256 IRTEs per device table.
pub const AMD_TABLE_256: u32 = 256;
/// Linux 5.10+: 512 IRTEs per device table (`MAX_IRQS_PER_TABLE_512`).
pub const AMD_TABLE_512: u32 = 512;
/// IOMMUs with EFR2 NumIntRemapSup on newer kernels: 2048 (`MAX_IRQS_PER_TABLE_2K`).
pub const AMD_TABLE_2K: u32 = 2048;
/// Mask of the MSI data bits the IOMMU uses as the table offset (10:0).
pub const AMD_MSI_DATA_INDEX_MASK: u32 = 0x7FF;

/// Unchecked field values of a GA-format IRTE with GuestMode = 0; [`AmdIrte::new`] validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AmdIrteFields {
    /// RemapEn: the entry is valid.
    pub remap_en: bool,
    /// SupIOPF: faults through this entry are not logged.
    pub sup_iopf: bool,
    /// IntType, 3 bits (0 fixed, 1 arbitrated, 2 SMI, 3 NMI, 4 INIT, 5 ExtINT).
    pub int_type: u8,
    /// RqEoi: request EOI.
    pub rq_eoi: bool,
    /// DM: false = physical, true = logical.
    pub dest_mode: bool,
    /// Destination APIC id, 32 bits (split over bits 31:8 and 127:120).
    pub destination: u32,
    /// Vector.
    pub vector: u8,
}

/// A validated AMD GA-format IRTE in remapped mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct AmdIrte {
    f: AmdIrteFields,
}

fn bit(value: u128, shift: u32) -> bool {
    (value >> shift) & 1 == 1
}

impl AmdIrte {
    /// Validate `fields` (IntType within 3 bits) into an entry.
    pub fn new(fields: AmdIrteFields) -> Result<Self> {
        if u128::from(fields.int_type) > AMD_IRTE_INT_TYPE_MASK {
            return Err(Error::InvalidArgument(format!(
                "AMD IRTE int_type {} does not fit in 3 bits",
                fields.int_type
            )));
        }
        Ok(Self { f: fields })
    }

    /// The entry Linux's `irte_ga_prepare` + activate write: valid, fixed, physical.
    pub fn remapped(vector: u8, destination: u32) -> Self {
        Self {
            f: AmdIrteFields {
                remap_en: true,
                vector,
                destination,
                ..AmdIrteFields::default()
            },
        }
    }

    /// The field values.
    pub fn fields(&self) -> AmdIrteFields {
        self.f
    }
    /// RemapEn.
    pub fn remap_en(&self) -> bool {
        self.f.remap_en
    }
    /// SupIOPF.
    pub fn sup_iopf(&self) -> bool {
        self.f.sup_iopf
    }
    /// IntType (3 bits).
    pub fn int_type(&self) -> u8 {
        self.f.int_type
    }
    /// RqEoi.
    pub fn rq_eoi(&self) -> bool {
        self.f.rq_eoi
    }
    /// DM (true = logical).
    pub fn dest_mode(&self) -> bool {
        self.f.dest_mode
    }
    /// Destination (32 bits).
    pub fn destination(&self) -> u32 {
        self.f.destination
    }
    /// Vector.
    pub fn vector(&self) -> u8 {
        self.f.vector
    }

    /// The 128-bit entry exactly as the IOMMU reads it.
    pub fn to_u128(&self) -> u128 {
        let f = &self.f;
        let dest = u128::from(f.destination);
        (u128::from(f.remap_en) << AMD_IRTE_REMAP_EN_SHIFT)
            | (u128::from(f.sup_iopf) << AMD_IRTE_SUP_IOPF_SHIFT)
            | (u128::from(f.int_type) << AMD_IRTE_INT_TYPE_SHIFT)
            | (u128::from(f.rq_eoi) << AMD_IRTE_RQ_EOI_SHIFT)
            | (u128::from(f.dest_mode) << AMD_IRTE_DEST_MODE_SHIFT)
            | ((dest & AMD_IRTE_DEST_LO_MASK) << AMD_IRTE_DEST_LO_SHIFT)
            | (u128::from(f.vector) << AMD_IRTE_VECTOR_SHIFT)
            | ((dest >> 24) << AMD_IRTE_DEST_HI_SHIFT)
    }

    /// Parse a 128-bit entry; GuestMode = 1 or reserved bits set → `InvalidArgument`.
    pub fn from_u128(value: u128) -> Result<Self> {
        if bit(value, AMD_IRTE_GUEST_MODE_SHIFT) {
            return Err(Error::InvalidArgument(format!(
                "AMD IRTE {value:#034x} has GuestMode = 1 (guest vAPIC format), which is not modelled"
            )));
        }
        let reserved = value & AMD_IRTE_RESERVED_MASK;
        if reserved != 0 {
            return Err(Error::InvalidArgument(format!(
                "AMD IRTE {value:#034x} has reserved bits set ({reserved:#034x})"
            )));
        }
        let lo = (value >> AMD_IRTE_DEST_LO_SHIFT) & AMD_IRTE_DEST_LO_MASK;
        let hi = (value >> AMD_IRTE_DEST_HI_SHIFT) & AMD_IRTE_DEST_HI_MASK;
        Ok(Self {
            f: AmdIrteFields {
                remap_en: bit(value, AMD_IRTE_REMAP_EN_SHIFT),
                sup_iopf: bit(value, AMD_IRTE_SUP_IOPF_SHIFT),
                int_type: ((value >> AMD_IRTE_INT_TYPE_SHIFT) & AMD_IRTE_INT_TYPE_MASK) as u8,
                rq_eoi: bit(value, AMD_IRTE_RQ_EOI_SHIFT),
                dest_mode: bit(value, AMD_IRTE_DEST_MODE_SHIFT),
                destination: ((hi << 24) | lo) as u32,
                vector: ((value >> AMD_IRTE_VECTOR_SHIFT) & AMD_IRTE_VECTOR_MASK) as u8,
            },
        })
    }
}

/// One device's remapping table.
#[derive(Debug, Clone)]
struct DeviceTable {
    entries: Vec<AmdIrte>,
    allocated: Vec<bool>,
    in_use: u32,
}

impl DeviceTable {
    fn new(len: u32) -> Self {
        Self {
            entries: vec![AmdIrte::default(); len as usize],
            allocated: vec![false; len as usize],
            in_use: 0,
        }
    }
}

/// The per-device interrupt remapping tables of one AMD IOMMU (one PCI segment).
///
/// Counters: `tables` (devices with a table), `in_use` (allocated entries over all tables),
/// `enabled` (entries with RemapEn = 1).
#[derive(Debug, Clone)]
pub struct AmdIrteTables {
    tables: Vec<Option<Box<DeviceTable>>>,
    table_size: u32,
    n_tables: u32,
    in_use: u64,
    enabled: u64,
}

fn check_table_size(size: u32) -> Result<()> {
    if size == 0 || size > AMD_TABLE_2K || !size.is_power_of_two() {
        return Err(Error::InvalidArgument(format!(
            "AMD remapping table size {size} must be a power of two in 1..=2048 \
             (Linux uses 256, 512 or 2048)"
        )));
    }
    Ok(())
}

impl AmdIrteTables {
    /// No tables yet; tables created on first use get `table_size` entries.
    pub fn new(table_size: u32) -> Result<Self> {
        check_table_size(table_size)?;
        Ok(Self {
            tables: (0..=u16::MAX).map(|_| None).collect(),
            table_size,
            n_tables: 0,
            in_use: 0,
            enabled: 0,
        })
    }

    /// Size given to tables created on first use.
    pub fn table_size(&self) -> u32 {
        self.table_size
    }
    /// Devices that have a table.
    pub fn tables(&self) -> u32 {
        self.n_tables
    }
    /// Allocated entries over all tables.
    pub fn in_use(&self) -> u64 {
        self.in_use
    }
    /// Entries with RemapEn = 1 over all tables.
    pub fn enabled(&self) -> u64 {
        self.enabled
    }

    fn table(&self, rid: u16) -> Option<&DeviceTable> {
        self.tables[usize::from(rid)].as_deref()
    }

    /// Size of `requester_id`'s table, or `None` if it has none.
    pub fn table_len(&self, requester_id: u16) -> Option<u32> {
        self.table(requester_id).map(|t| t.entries.len() as u32)
    }

    /// Allocated entries in `requester_id`'s table (0 without a table).
    pub fn in_use_of(&self, requester_id: u16) -> u32 {
        self.table(requester_id).map_or(0, |t| t.in_use)
    }

    /// Give `requester_id` a table of `size` entries now (instead of `table_size` on first
    /// use); adds one to `tables`. A second table for the same device → `InvalidOperation`.
    pub fn create_table(&mut self, requester_id: u16, size: u32) -> Result<()> {
        check_table_size(size)?;
        let slot = &mut self.tables[usize::from(requester_id)];
        if slot.is_some() {
            return Err(Error::invalid_op(
                "table_exists",
                format!("requester {requester_id:#06x} already has a remapping table"),
            ));
        }
        *slot = Some(Box::new(DeviceTable::new(size)));
        self.n_tables += 1;
        Ok(())
    }

    /// Allocate `count` contiguous entries, first fit (Linux `alloc_irq_index` for MSI-X,
    /// alignment 1); creates the device's table on first use. Adds `count` to `in_use`.
    pub fn alloc(&mut self, requester_id: u16, count: u32) -> Result<u16> {
        self.alloc_inner(requester_id, count, false)
    }

    /// As [`alloc`](Self::alloc) but aligned to `count.next_power_of_two()` (multi-MSI).
    pub fn alloc_aligned(&mut self, requester_id: u16, count: u32) -> Result<u16> {
        self.alloc_inner(requester_id, count, true)
    }

    fn alloc_inner(&mut self, rid: u16, count: u32, align: bool) -> Result<u16> {
        let size = self.table_len(rid).unwrap_or(self.table_size);
        if count == 0 || count > size {
            return Err(Error::InvalidArgument(format!(
                "AMD IRTE count {count} must be in 1..={size}"
            )));
        }
        if self.tables[usize::from(rid)].is_none() {
            // Linux creates the table (alloc_irq_table) before scanning it.
            self.create_table(rid, size)?;
        }
        let Some(table) = self.tables[usize::from(rid)].as_deref_mut() else {
            return Err(Error::invalid_op("no_table", "table vanished"));
        };
        let alignment = if align {
            count.next_power_of_two() as usize
        } else {
            1
        };
        let want = count as usize;
        let mut index = 0usize;
        let mut run = 0usize;
        while index < table.allocated.len() {
            if table.allocated[index] {
                run = 0;
                index = (index + 1).next_multiple_of(alignment);
                continue;
            }
            run += 1;
            if run == want {
                let start = index + 1 - want;
                for slot in &mut table.allocated[start..=index] {
                    *slot = true;
                }
                table.in_use += count;
                self.in_use += u64::from(count);
                return Ok(start as u16);
            }
            index += 1;
        }
        Err(Error::NoSpace(format!(
            "no {count} free contiguous IRTEs in the table of requester {rid:#06x} \
             ({} of {size} in use)",
            table.in_use
        )))
    }

    fn device_mut(&mut self, rid: u16, index: u32, op: &str) -> Result<&mut DeviceTable> {
        let Some(table) = self.tables[usize::from(rid)].as_deref_mut() else {
            return Err(Error::invalid_op(
                &format!("{op}_no_table"),
                format!("requester {rid:#06x} has no remapping table"),
            ));
        };
        if index as usize >= table.entries.len() {
            return Err(Error::InvalidArgument(format!(
                "AMD IRTE index {index} is past the table of requester {rid:#06x} ({} entries)",
                table.entries.len()
            )));
        }
        Ok(table)
    }

    /// Free entries `index..index + count` of `requester_id` (each must be allocated) and
    /// zero them (Linux `free_irte`). Lowers `in_use` and `enabled`; on error nothing changes.
    pub fn free(&mut self, requester_id: u16, index: u32, count: u32) -> Result<()> {
        if count == 0 {
            return Err(Error::InvalidArgument("AMD IRTE count must be ≥ 1".into()));
        }
        let end = index.saturating_add(count - 1);
        let table = self.device_mut(requester_id, end, "free")?;
        let range = index as usize..=end as usize;
        if let Some(off) = table.allocated[range.clone()].iter().position(|a| !a) {
            return Err(Error::invalid_op(
                "free_not_allocated",
                format!(
                    "IRTE {} of requester {requester_id:#06x} is not allocated",
                    index as usize + off
                ),
            ));
        }
        let mut disabled = 0u64;
        for i in range {
            if table.entries[i].remap_en() {
                disabled += 1;
            }
            table.entries[i] = AmdIrte::default();
            table.allocated[i] = false;
        }
        table.in_use -= count;
        self.in_use -= u64::from(count);
        self.enabled -= disabled;
        Ok(())
    }

    fn write(&mut self, rid: u16, index: u32, irte: AmdIrte, op: &str) -> Result<()> {
        let table = self.device_mut(rid, index, op)?;
        let i = index as usize;
        if !table.allocated[i] {
            return Err(Error::invalid_op(
                &format!("{op}_not_allocated"),
                format!("IRTE {index} of requester {rid:#06x} is not allocated"),
            ));
        }
        let was = table.entries[i].remap_en();
        table.entries[i] = irte;
        match (was, irte.remap_en()) {
            (false, true) => self.enabled += 1,
            (true, false) => self.enabled -= 1,
            _ => {}
        }
        Ok(())
    }

    /// Write `irte` at an allocated `index` of `requester_id`'s table; updates `enabled`.
    pub fn set(&mut self, requester_id: u16, index: u32, irte: AmdIrte) -> Result<()> {
        self.write(requester_id, index, irte, "set")
    }

    /// Zero the allocated entry at `index` (what deactivation leaves); updates `enabled`.
    pub fn clear(&mut self, requester_id: u16, index: u32) -> Result<()> {
        self.write(requester_id, index, AmdIrte::default(), "clear")
    }

    /// The entry at `index` of `requester_id`'s table; changes nothing.
    pub fn get(&self, requester_id: u16, index: u32) -> Result<AmdIrte> {
        let Some(table) = self.table(requester_id) else {
            return Err(Error::invalid_op(
                "get_no_table",
                format!("requester {requester_id:#06x} has no remapping table"),
            ));
        };
        table.entries.get(index as usize).copied().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "AMD IRTE index {index} is past the table of requester {requester_id:#06x}"
            ))
        })
    }

    /// Remapping hot path: `Err(None)` without a table, `Err(Some(len))` past it.
    #[inline]
    pub fn lookup(
        &self,
        requester_id: u16,
        index: u32,
    ) -> std::result::Result<&AmdIrte, Option<u32>> {
        let table = self.table(requester_id).ok_or(None)?;
        table
            .entries
            .get(index as usize)
            .ok_or(Some(table.entries.len() as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_field_sets_exactly_its_bits() {
        let d = AmdIrteFields::default;
        let cases: [(AmdIrteFields, u128); 8] = [
            (
                AmdIrteFields {
                    remap_en: true,
                    ..d()
                },
                1,
            ),
            (
                AmdIrteFields {
                    sup_iopf: true,
                    ..d()
                },
                1 << 1,
            ),
            (AmdIrteFields { int_type: 7, ..d() }, 0b111 << 2),
            (
                AmdIrteFields {
                    rq_eoi: true,
                    ..d()
                },
                1 << 5,
            ),
            (
                AmdIrteFields {
                    dest_mode: true,
                    ..d()
                },
                1 << 6,
            ),
            (
                AmdIrteFields {
                    destination: 0x00FF_FFFF,
                    ..d()
                },
                0xFF_FFFF << 8,
            ),
            (
                AmdIrteFields {
                    destination: 0xFF00_0000,
                    ..d()
                },
                0xFF << 120,
            ),
            (
                AmdIrteFields {
                    vector: 0xFF,
                    ..d()
                },
                0xFF << 64,
            ),
        ];
        let mut union = 0u128;
        for (f, bits) in cases {
            let irte = AmdIrte::new(f).unwrap();
            assert_eq!(irte.to_u128(), bits, "{f:?}");
            assert_eq!(AmdIrte::from_u128(bits).unwrap(), irte);
            assert_eq!(union & bits, 0);
            union |= bits;
        }
        assert_eq!(
            union | AMD_IRTE_RESERVED_MASK | (1 << AMD_IRTE_GUEST_MODE_SHIFT),
            u128::MAX
        );
    }

    #[test]
    fn rejects_guest_mode_reserved_and_wide_int_type() {
        assert!(AmdIrte::from_u128(1 << 7)
            .unwrap_err()
            .to_string()
            .contains("GuestMode"));
        for b in (32..64).chain(72..120) {
            assert!(AmdIrte::from_u128(1u128 << b).is_err(), "bit {b}");
        }
        assert!(AmdIrte::new(AmdIrteFields {
            int_type: 8,
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn table_sizes() {
        for bad in [0, 3, 4096, 1000] {
            assert!(matches!(
                AmdIrteTables::new(bad),
                Err(Error::InvalidArgument(_))
            ));
        }
        let mut t = AmdIrteTables::new(AMD_TABLE_512).unwrap();
        assert_eq!(t.table_len(5), None);
        t.create_table(5, AMD_TABLE_2K).unwrap();
        assert_eq!(t.table_len(5), Some(2048));
        assert!(matches!(
            t.create_table(5, 256),
            Err(Error::InvalidOperation { .. })
        ));
        t.alloc(6, 1).unwrap();
        assert_eq!(t.table_len(6), Some(512));
        assert_eq!(t.tables(), 2);
    }

    #[test]
    fn alloc_contiguous_first_fit_and_aligned() {
        let mut t = AmdIrteTables::new(128).unwrap();
        assert_eq!(t.alloc(1, 3).unwrap(), 0);
        assert_eq!(t.alloc(1, 2).unwrap(), 3); // MSI-X: no alignment
        assert_eq!(t.alloc_aligned(1, 3).unwrap(), 8); // aligned to 4
        assert_eq!(t.alloc(1, 3).unwrap(), 5);
        assert_eq!(t.alloc(2, 1).unwrap(), 0); // separate table per device
        assert_eq!(t.in_use_of(1), 3 + 2 + 3 + 3);
        assert_eq!(t.in_use(), 12);
        t.free(1, 3, 2).unwrap();
        assert_eq!(t.alloc(1, 2).unwrap(), 3);
        assert!(matches!(t.alloc(1, 0), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.alloc(1, 129), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.alloc(1, 128), Err(Error::NoSpace(_))));
        assert_eq!(t.alloc(1, 117).unwrap(), 11);
        assert!(matches!(t.alloc(1, 1), Err(Error::NoSpace(_))));
        // A failed alloc with an invalid count creates no table.
        assert!(t.alloc(9, 0).is_err());
        assert_eq!(t.table_len(9), None);
    }

    #[test]
    fn set_get_clear_free_errors() {
        let mut t = AmdIrteTables::new(256).unwrap();
        let site = |e: Error| match e {
            Error::InvalidOperation { sites, .. } => sites[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(site(t.get(1, 0).unwrap_err()), "get_no_table");
        assert_eq!(
            site(t.set(1, 0, AmdIrte::default()).unwrap_err()),
            "set_no_table"
        );
        assert_eq!(site(t.free(1, 0, 1).unwrap_err()), "free_no_table");
        let i = u32::from(t.alloc(1, 2).unwrap());
        assert_eq!(
            site(t.set(1, 5, AmdIrte::default()).unwrap_err()),
            "set_not_allocated"
        );
        assert_eq!(site(t.clear(1, 5).unwrap_err()), "clear_not_allocated");
        assert!(matches!(t.get(1, 256), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.free(1, 255, 2), Err(Error::InvalidArgument(_))));
        assert!(matches!(t.free(1, 0, 0), Err(Error::InvalidArgument(_))));
        t.set(1, i, AmdIrte::remapped(0x41, 3)).unwrap();
        t.set(1, i + 1, AmdIrte::remapped(0x42, 3)).unwrap();
        assert_eq!(t.enabled(), 2);
        assert_eq!(site(t.free(1, i, 3).unwrap_err()), "free_not_allocated");
        assert_eq!((t.in_use(), t.enabled()), (2, 2));
        t.clear(1, i).unwrap();
        assert_eq!(t.enabled(), 1);
        assert_eq!(t.get(1, i).unwrap(), AmdIrte::default());
        t.free(1, i, 2).unwrap();
        assert_eq!((t.in_use(), t.enabled(), t.tables()), (0, 0, 1));
        assert_eq!(t.lookup(1, 256).unwrap_err(), Some(256));
        assert_eq!(t.lookup(2, 0).unwrap_err(), None);
    }

    proptest! {
        #[test]
        fn amd_irte_round_trips(
            b in any::<[bool; 4]>(), int_type in 0u8..8, destination in any::<u32>(), vector in any::<u8>()
        ) {
            let f = AmdIrteFields {
                remap_en: b[0], sup_iopf: b[1], rq_eoi: b[2], dest_mode: b[3],
                int_type, destination, vector,
            };
            let irte = AmdIrte::new(f).unwrap();
            prop_assert_eq!(irte.to_u128() & AMD_IRTE_RESERVED_MASK, 0);
            prop_assert_eq!(AmdIrte::from_u128(irte.to_u128()).unwrap(), irte);
            prop_assert_eq!(irte.fields(), f);
        }

        #[test]
        fn amd_from_u128_never_panics(raw in any::<u128>()) {
            if let Ok(irte) = AmdIrte::from_u128(raw) {
                prop_assert_eq!(irte.to_u128(), raw);
            }
        }
    }

    #[test]
    fn table_size_is_the_size_of_tables_made_on_first_use() {
        let mut t = AmdIrteTables::new(AMD_TABLE_256).unwrap();
        assert_eq!(t.table_size(), 256);
        t.create_table(2, AMD_TABLE_2K).unwrap();
        t.alloc(1, 1).unwrap();
        assert_eq!(
            (t.table_len(1), t.table_len(2), t.table_len(3)),
            (Some(256), Some(2048), None)
        );
        assert_eq!(t.table_size(), 256);
    }
}
