//! Python classes for IRTEs and remapping tables: `Irte`, `IrteTable`,
//! `AmdIrte`, `AmdIrteTables`.

use msixcore_core::{AmdIrte, AmdIrteFields, AmdIrteTables, Irte, IrteFields, IrteTable};
use pyo3::prelude::*;

use crate::convert::{py_bool, uint, IntArg};
use crate::errors::IntoPyResult;

/// A validated remapped-format Intel VT-d IRTE (immutable).
#[pyclass(name = "Irte", module = "msixcore._core", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyIrte(pub Irte);

#[pymethods]
impl PyIrte {
    #[new]
    #[pyo3(signature = (
        *, present=false, fpd=false, dest_mode=false, redir_hint=false, trigger_mode=false,
        delivery_mode=IntArg::ZERO, avail=IntArg::ZERO, vector=IntArg::ZERO,
        dest_id=IntArg::ZERO, sid=IntArg::ZERO, sq=IntArg::ZERO, svt=IntArg::ZERO
    ), text_signature = "(*, present=False, fpd=False, dest_mode=False, redir_hint=False, \
        trigger_mode=False, delivery_mode=0, avail=0, vector=0, dest_id=0, sid=0, sq=0, svt=0)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        present: bool,
        fpd: bool,
        dest_mode: bool,
        redir_hint: bool,
        trigger_mode: bool,
        delivery_mode: IntArg,
        avail: IntArg,
        vector: IntArg,
        dest_id: IntArg,
        sid: IntArg,
        sq: IntArg,
        svt: IntArg,
    ) -> PyResult<Self> {
        let fields = IrteFields {
            present,
            fpd,
            dest_mode,
            redir_hint,
            trigger_mode,
            delivery_mode: delivery_mode.get(py, "delivery_mode", 0x7u8)?,
            avail: avail.get(py, "avail", 0xFu8)?,
            vector: vector.get(py, "vector", 0xFFu8)?,
            dest_id: dest_id.get(py, "dest_id", u32::MAX)?,
            sid: sid.get(py, "sid", 0xFFFFu16)?,
            sq: sq.get(py, "sq", 0x3u8)?,
            svt: svt.get(py, "svt", 0x3u8)?,
        };
        Ok(Self(Irte::new(fields).py()?))
    }

    /// Parse a 128-bit entry; reserved bits or IM = 1 raise InvalidArgument.
    #[staticmethod]
    fn from_u128(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        let raw = uint::<u128>(value, "value")?;
        Ok(Self(Irte::from_u128(raw).py()?))
    }

    /// The 128-bit entry as the IOMMU reads it.
    fn to_u128(&self) -> u128 {
        self.0.to_u128()
    }

    /// P: the entry is valid.
    #[getter]
    fn present(&self) -> bool {
        self.0.present()
    }
    /// FPD: faults through this entry are not recorded.
    #[getter]
    fn fpd(&self) -> bool {
        self.0.fpd()
    }
    /// DM: True = logical destination.
    #[getter]
    fn dest_mode(&self) -> bool {
        self.0.dest_mode()
    }
    /// RH: redirection hint.
    #[getter]
    fn redir_hint(&self) -> bool {
        self.0.redir_hint()
    }
    /// TM: True = level.
    #[getter]
    fn trigger_mode(&self) -> bool {
        self.0.trigger_mode()
    }
    /// Delivery mode (3 bits).
    #[getter]
    fn delivery_mode(&self) -> u8 {
        self.0.delivery_mode()
    }
    /// Software-available bits (4 bits).
    #[getter]
    fn avail(&self) -> u8 {
        self.0.avail()
    }
    /// CPU vector.
    #[getter]
    fn vector(&self) -> u8 {
        self.0.vector()
    }
    /// Destination APIC id (32 bits).
    #[getter]
    fn dest_id(&self) -> u32 {
        self.0.dest_id()
    }
    /// Source id (requester id, or start bus << 8 | end bus with svt 2).
    #[getter]
    fn sid(&self) -> u16 {
        self.0.sid()
    }
    /// Source-id qualifier: 0 all 16 bits, 1 ignore bit 2, 2 bits 2:1, 3 bits 2:0.
    #[getter]
    fn sq(&self) -> u8 {
        self.0.sq()
    }
    /// Source validation: 0 none, 1 SID+SQ, 2 bus range, 3 reserved (faults).
    #[getter]
    fn svt(&self) -> u8 {
        self.0.svt()
    }

    fn __repr__(&self) -> String {
        let f = self.0.fields();
        format!(
            "Irte(present={}, fpd={}, dest_mode={}, redir_hint={}, trigger_mode={}, \
             delivery_mode={}, avail={}, vector={:#04x}, dest_id={:#x}, sid={:#06x}, sq={}, svt={})",
            py_bool(f.present),
            py_bool(f.fpd),
            py_bool(f.dest_mode),
            py_bool(f.redir_hint),
            py_bool(f.trigger_mode),
            f.delivery_mode,
            f.avail,
            f.vector,
            f.dest_id,
            f.sid,
            f.sq,
            f.svt
        )
    }
}

/// Table operations shared by `IrteTable` and `InterruptRemapper`.
pub mod intel_ops {
    use super::{uint, IntoPyResult, IrteTable, PyIrte};
    use pyo3::prelude::*;

    pub fn alloc(t: &mut IrteTable, count: &Bound<'_, PyAny>) -> PyResult<u16> {
        t.alloc(uint::<u32>(count, "count")?).py()
    }
    pub fn free(
        t: &mut IrteTable,
        index: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        t.free(uint::<u32>(index, "index")?, uint::<u32>(count, "count")?)
            .py()
    }
    pub fn set(t: &mut IrteTable, index: &Bound<'_, PyAny>, irte: &PyIrte) -> PyResult<()> {
        t.set(uint::<u32>(index, "index")?, irte.0).py()
    }
    pub fn get(t: &IrteTable, index: &Bound<'_, PyAny>) -> PyResult<PyIrte> {
        Ok(PyIrte(t.get(uint::<u32>(index, "index")?).py()?))
    }
    pub fn clear(t: &mut IrteTable, index: &Bound<'_, PyAny>) -> PyResult<()> {
        t.clear(uint::<u32>(index, "index")?).py()
    }
    pub fn is_allocated(t: &IrteTable, index: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(t.is_allocated(uint::<u32>(index, "index")?))
    }
}

/// One Intel VT-d interrupt remapping table with Linux's `alloc_irte` allocator.
#[pyclass(name = "IrteTable", module = "msixcore._core")]
pub struct PyIrteTable(pub IrteTable);

#[pymethods]
impl PyIrteTable {
    #[new]
    #[pyo3(signature = (entries=IntArg::Default(65536)), text_signature = "(entries=65536)")]
    fn new(py: Python<'_>, entries: IntArg) -> PyResult<Self> {
        let n = entries.get(py, "entries", u32::MAX)?;
        Ok(Self(IrteTable::new(n).py()?))
    }

    /// Allocate a naturally aligned block of next_pow2(count) entries; returns its index.
    fn alloc(&mut self, count: &Bound<'_, PyAny>) -> PyResult<u16> {
        intel_ops::alloc(&mut self.0, count)
    }
    /// Free the block at `index` (its rounded size must match `count`), zeroing its entries.
    fn free(&mut self, index: &Bound<'_, PyAny>, count: &Bound<'_, PyAny>) -> PyResult<()> {
        intel_ops::free(&mut self.0, index, count)
    }
    /// Write `irte` at an allocated `index`.
    fn set(&mut self, index: &Bound<'_, PyAny>, irte: PyRef<'_, PyIrte>) -> PyResult<()> {
        intel_ops::set(&mut self.0, index, &irte)
    }
    /// The entry at `index`.
    fn get(&self, index: &Bound<'_, PyAny>) -> PyResult<PyIrte> {
        intel_ops::get(&self.0, index)
    }
    /// Zero the entry at an allocated `index`.
    fn clear(&mut self, index: &Bound<'_, PyAny>) -> PyResult<()> {
        intel_ops::clear(&mut self.0, index)
    }
    /// Whether `index` lies in an allocated block.
    fn is_allocated(&self, index: &Bound<'_, PyAny>) -> PyResult<bool> {
        intel_ops::is_allocated(&self.0, index)
    }
    /// Table size.
    #[getter]
    fn entries(&self) -> u32 {
        self.0.entries()
    }
    /// Allocated slots (sum of live block sizes).
    #[getter]
    fn in_use(&self) -> u32 {
        self.0.in_use()
    }
    /// Slots not allocated.
    #[getter]
    fn free_slots(&self) -> u32 {
        self.0.free_slots()
    }
    /// Entries with P = 1.
    #[getter]
    fn present(&self) -> u32 {
        self.0.present()
    }
    /// Live allocated blocks.
    #[getter]
    fn blocks(&self) -> u32 {
        self.0.blocks()
    }
    fn __repr__(&self) -> String {
        let t = &self.0;
        format!(
            "IrteTable(entries={}, in_use={}, present={}, blocks={})",
            t.entries(),
            t.in_use(),
            t.present(),
            t.blocks()
        )
    }
}

/// A validated AMD GA-format IRTE in remapped mode (immutable).
#[pyclass(name = "AmdIrte", module = "msixcore._core", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyAmdIrte(pub AmdIrte);

#[pymethods]
impl PyAmdIrte {
    #[new]
    #[pyo3(signature = (
        *, remap_en=false, sup_iopf=false, int_type=IntArg::ZERO, rq_eoi=false,
        dest_mode=false, destination=IntArg::ZERO, vector=IntArg::ZERO
    ), text_signature = "(*, remap_en=False, sup_iopf=False, int_type=0, rq_eoi=False, \
        dest_mode=False, destination=0, vector=0)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        remap_en: bool,
        sup_iopf: bool,
        int_type: IntArg,
        rq_eoi: bool,
        dest_mode: bool,
        destination: IntArg,
        vector: IntArg,
    ) -> PyResult<Self> {
        let fields = AmdIrteFields {
            remap_en,
            sup_iopf,
            int_type: int_type.get(py, "int_type", 0x7u8)?,
            rq_eoi,
            dest_mode,
            destination: destination.get(py, "destination", u32::MAX)?,
            vector: vector.get(py, "vector", 0xFFu8)?,
        };
        Ok(Self(AmdIrte::new(fields).py()?))
    }

    /// Parse a 128-bit entry; GuestMode = 1 or reserved bits raise InvalidArgument.
    #[staticmethod]
    fn from_u128(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        let raw = uint::<u128>(value, "value")?;
        Ok(Self(AmdIrte::from_u128(raw).py()?))
    }

    /// The 128-bit entry as the IOMMU reads it.
    fn to_u128(&self) -> u128 {
        self.0.to_u128()
    }

    /// RemapEn: the entry is valid.
    #[getter]
    fn remap_en(&self) -> bool {
        self.0.remap_en()
    }
    /// SupIOPF: faults through this entry are not logged.
    #[getter]
    fn sup_iopf(&self) -> bool {
        self.0.sup_iopf()
    }
    /// Interrupt type (3 bits).
    #[getter]
    fn int_type(&self) -> u8 {
        self.0.int_type()
    }
    /// RqEoi.
    #[getter]
    fn rq_eoi(&self) -> bool {
        self.0.rq_eoi()
    }
    /// DM: True = logical.
    #[getter]
    fn dest_mode(&self) -> bool {
        self.0.dest_mode()
    }
    /// Destination APIC id (32 bits).
    #[getter]
    fn destination(&self) -> u32 {
        self.0.destination()
    }
    /// CPU vector.
    #[getter]
    fn vector(&self) -> u8 {
        self.0.vector()
    }

    fn __repr__(&self) -> String {
        let f = self.0.fields();
        format!(
            "AmdIrte(remap_en={}, sup_iopf={}, int_type={}, rq_eoi={}, dest_mode={}, \
             destination={:#x}, vector={:#04x})",
            py_bool(f.remap_en),
            py_bool(f.sup_iopf),
            f.int_type,
            py_bool(f.rq_eoi),
            py_bool(f.dest_mode),
            f.destination,
            f.vector
        )
    }
}

/// Table operations shared by `AmdIrteTables` and `AmdRemapper`.
pub mod amd_ops {
    use super::{uint, AmdIrteTables, IntoPyResult, PyAmdIrte};
    use pyo3::prelude::*;

    pub fn alloc(
        t: &mut AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        aligned: bool,
    ) -> PyResult<u16> {
        let rid = uint::<u16>(rid, "requester_id")?;
        let count = uint::<u32>(count, "count")?;
        if aligned {
            t.alloc_aligned(rid, count).py()
        } else {
            t.alloc(rid, count).py()
        }
    }
    pub fn free(
        t: &mut AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        count: u32,
    ) -> PyResult<()> {
        t.free(
            uint::<u16>(rid, "requester_id")?,
            uint::<u32>(index, "index")?,
            count,
        )
        .py()
    }
    pub fn set(
        t: &mut AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        irte: &PyAmdIrte,
    ) -> PyResult<()> {
        t.set(
            uint::<u16>(rid, "requester_id")?,
            uint::<u32>(index, "index")?,
            irte.0,
        )
        .py()
    }
    pub fn get(
        t: &AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
    ) -> PyResult<PyAmdIrte> {
        let e = t.get(
            uint::<u16>(rid, "requester_id")?,
            uint::<u32>(index, "index")?,
        );
        Ok(PyAmdIrte(e.py()?))
    }
    pub fn clear(
        t: &mut AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        t.clear(
            uint::<u16>(rid, "requester_id")?,
            uint::<u32>(index, "index")?,
        )
        .py()
    }
    pub fn create_table(
        t: &mut AmdIrteTables,
        rid: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        t.create_table(
            uint::<u16>(rid, "requester_id")?,
            uint::<u32>(size, "size")?,
        )
        .py()
    }
    pub fn table_len(t: &AmdIrteTables, rid: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        Ok(t.table_len(uint::<u16>(rid, "requester_id")?))
    }
    pub fn in_use_of(t: &AmdIrteTables, rid: &Bound<'_, PyAny>) -> PyResult<u32> {
        Ok(t.in_use_of(uint::<u16>(rid, "requester_id")?))
    }
}

/// The per-device AMD interrupt remapping tables of one IOMMU.
#[pyclass(name = "AmdIrteTables", module = "msixcore._core")]
pub struct PyAmdIrteTables(pub AmdIrteTables);

#[pymethods]
impl PyAmdIrteTables {
    #[new]
    #[pyo3(signature = (table_size=IntArg::Default(512)), text_signature = "(table_size=512)")]
    fn new(py: Python<'_>, table_size: IntArg) -> PyResult<Self> {
        let n = table_size.get(py, "table_size", u32::MAX)?;
        Ok(Self(AmdIrteTables::new(n).py()?))
    }

    /// Allocate `count` contiguous entries (aligned to next_pow2(count) if `aligned`).
    #[pyo3(signature = (requester_id, count, aligned=false))]
    fn alloc(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        aligned: bool,
    ) -> PyResult<u16> {
        amd_ops::alloc(&mut self.0, requester_id, count, aligned)
    }
    /// Free entries index..index+count of the device's table.
    #[pyo3(
        signature = (requester_id, index, count=IntArg::Default(1)),
        text_signature = "($self, requester_id, index, count=1)"
    )]
    fn free(
        &mut self,
        py: Python<'_>,
        requester_id: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        count: IntArg,
    ) -> PyResult<()> {
        let count = count.get(py, "count", u32::MAX)?;
        amd_ops::free(&mut self.0, requester_id, index, count)
    }
    /// Write `irte` at an allocated index of the device's table.
    fn set(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        irte: PyRef<'_, PyAmdIrte>,
    ) -> PyResult<()> {
        amd_ops::set(&mut self.0, requester_id, index, &irte)
    }
    /// The entry at `index` of the device's table.
    fn get(
        &self,
        requester_id: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
    ) -> PyResult<PyAmdIrte> {
        amd_ops::get(&self.0, requester_id, index)
    }
    /// Zero an allocated entry of the device's table.
    fn clear(&mut self, requester_id: &Bound<'_, PyAny>, index: &Bound<'_, PyAny>) -> PyResult<()> {
        amd_ops::clear(&mut self.0, requester_id, index)
    }
    /// Give the device a table of `size` entries now.
    fn create_table(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        amd_ops::create_table(&mut self.0, requester_id, size)
    }
    /// Size of the device's table, or None.
    fn table_len(&self, requester_id: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        amd_ops::table_len(&self.0, requester_id)
    }
    /// Allocated entries in the device's table.
    fn in_use_of(&self, requester_id: &Bound<'_, PyAny>) -> PyResult<u32> {
        amd_ops::in_use_of(&self.0, requester_id)
    }
    /// Size given to tables created on first use.
    #[getter]
    fn table_size(&self) -> u32 {
        self.0.table_size()
    }
    /// Devices with a table.
    #[getter]
    fn tables(&self) -> u32 {
        self.0.tables()
    }
    /// Allocated entries over all tables.
    #[getter]
    fn in_use(&self) -> u64 {
        self.0.in_use()
    }
    /// Entries with RemapEn = 1 over all tables.
    #[getter]
    fn enabled(&self) -> u64 {
        self.0.enabled()
    }
    fn __repr__(&self) -> String {
        let t = &self.0;
        format!(
            "AmdIrteTables(table_size={}, tables={}, in_use={}, enabled={})",
            t.table_size(),
            t.tables(),
            t.in_use(),
            t.enabled()
        )
    }
}

/// Register the classes of this file.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIrte>()?;
    m.add_class::<PyIrteTable>()?;
    m.add_class::<PyAmdIrte>()?;
    m.add_class::<PyAmdIrteTables>()?;
    Ok(())
}
