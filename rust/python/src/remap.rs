//! Python face of the remap check: `RemapResult`, `InterruptRemapper`,
//! `AmdRemapper` and the MSI format functions.

use msixcore_core::remap::DEFAULT_FAULT_LOG_CAPACITY;
use msixcore_core::{
    compose_amd_msi, compose_msi, decode_msi, AmdRemapper, Decoded, Fault, FaultLog,
    InterruptRemapper, MsiMessage, RemapResult,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{py_bool, uint, IntArg};
use crate::errors::{invalid_argument, IntoPyResult};
use crate::irte::{amd_ops, intel_ops, PyAmdIrte, PyIrte};

/// The outcome of one interrupt request: a target or a blocked fault.
#[pyclass(name = "RemapResult", module = "msixcore._core", frozen, eq)]
#[derive(Clone, PartialEq, Eq)]
pub struct PyRemapResult(pub RemapResult);

impl PyRemapResult {
    fn target(&self) -> Option<&msixcore_core::Target> {
        self.0.target()
    }
    fn fault_ref(&self) -> Option<(&Fault, bool)> {
        match &self.0 {
            RemapResult::Blocked { fault, suppressed } => Some((fault, *suppressed)),
            RemapResult::Remapped(_) => None,
        }
    }
}

#[pymethods]
impl PyRemapResult {
    /// True when the request was blocked.
    #[getter]
    fn blocked(&self) -> bool {
        self.target().is_none()
    }
    /// Target vector (None when blocked).
    #[getter]
    fn vector(&self) -> Option<u8> {
        self.target().map(|t| t.vector)
    }
    /// Target APIC id (None when blocked).
    #[getter]
    fn dest_id(&self) -> Option<u32> {
        self.target().map(|t| t.dest_id)
    }
    /// Target destination mode (None when blocked).
    #[getter]
    fn dest_mode(&self) -> Option<bool> {
        self.target().map(|t| t.dest_mode)
    }
    /// Target delivery mode (None when blocked).
    #[getter]
    fn delivery_mode(&self) -> Option<u8> {
        self.target().map(|t| t.delivery_mode)
    }
    /// Target trigger mode (None when blocked).
    #[getter]
    fn trigger_mode(&self) -> Option<bool> {
        self.target().map(|t| t.trigger_mode)
    }
    /// The IRTE used (None when blocked or for a compatibility-format pass-through).
    #[getter]
    fn irte_index(&self) -> Option<u16> {
        self.target().and_then(|t| t.irte_index)
    }
    /// Fault reason: not_present, index_out_of_range, sid_mismatch, reserved_svt,
    /// compat_format_blocked, not_in_interrupt_window, no_table, reserved_request_field;
    /// None when delivered.
    #[getter]
    fn fault(&self) -> Option<&'static str> {
        self.fault_ref().map(|(f, _)| f.reason.as_str())
    }
    /// The index the blocked request named, if any.
    #[getter]
    fn fault_index(&self) -> Option<u32> {
        self.fault_ref().and_then(|(f, _)| f.index)
    }
    /// Blocked but not recorded (FPD / SupIOPF).
    #[getter]
    fn suppressed(&self) -> bool {
        self.fault_ref().is_some_and(|(_, s)| s)
    }
    fn __repr__(&self) -> String {
        match &self.0 {
            RemapResult::Remapped(t) => format!(
                "RemapResult(vector={:#04x}, dest_id={:#x}, dest_mode={}, delivery_mode={}, \
                 trigger_mode={}, irte_index={})",
                t.vector,
                t.dest_id,
                py_bool(t.dest_mode),
                t.delivery_mode,
                py_bool(t.trigger_mode),
                t.irte_index.map_or("None".into(), |i| i.to_string())
            ),
            RemapResult::Blocked { fault, suppressed } => format!(
                "RemapResult(blocked=True, fault='{}', fault_index={}, suppressed={})",
                fault.reason,
                fault.index.map_or("None".into(), |i| i.to_string()),
                py_bool(*suppressed)
            ),
        }
    }
}

type FaultTuple = (u16, Option<u32>, &'static str);

fn fault_tuples<'a>(faults: impl Iterator<Item = &'a Fault>) -> Vec<FaultTuple> {
    faults
        .map(|f| (f.requester_id, f.index, f.reason.as_str()))
        .collect()
}

fn message(address: &Bound<'_, PyAny>, data: &Bound<'_, PyAny>) -> PyResult<MsiMessage> {
    Ok(MsiMessage::new(
        uint::<u64>(address, "address")?,
        uint::<u32>(data, "data")?,
    ))
}

fn capacity(py: Python<'_>, arg: &IntArg) -> PyResult<usize> {
    arg.get(py, "fault_log_capacity", 1usize << 20)
}

fn drain(log: &mut FaultLog) -> Vec<FaultTuple> {
    fault_tuples(log.drain().iter())
}

/// One Intel VT-d IOMMU: an IRTE table, the CFI setting and a fault log.
#[pyclass(name = "InterruptRemapper", module = "msixcore._core")]
pub struct PyInterruptRemapper(pub InterruptRemapper);

#[pymethods]
impl PyInterruptRemapper {
    #[new]
    #[pyo3(signature = (
        entries=IntArg::Default(65536), allow_compat=false,
        fault_log_capacity=IntArg::Default(DEFAULT_FAULT_LOG_CAPACITY as u128)
    ), text_signature = "(entries=65536, allow_compat=False, fault_log_capacity=256)")]
    fn new(
        py: Python<'_>,
        entries: IntArg,
        allow_compat: bool,
        fault_log_capacity: IntArg,
    ) -> PyResult<Self> {
        let n = entries.get(py, "entries", u32::MAX)?;
        let cap = capacity(py, &fault_log_capacity)?;
        Ok(Self(
            InterruptRemapper::with_fault_log_capacity(n, allow_compat, cap).py()?,
        ))
    }

    /// Remap one request (requester id, address, data): a target or a blocked fault.
    fn remap(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<PyRemapResult> {
        let rid = uint::<u16>(requester_id, "requester_id")?;
        let msg = message(address, data)?;
        Ok(PyRemapResult(self.0.remap(rid, &msg)))
    }

    /// The kept fault records (requester_id, index or None, reason), oldest first.
    fn faults(&self) -> Vec<FaultTuple> {
        fault_tuples(self.0.fault_log().records())
    }
    /// Remove and return the kept fault records.
    fn drain_faults(&mut self) -> Vec<FaultTuple> {
        drain(self.0.fault_log_mut())
    }
    /// Faults recorded (including those past the log's capacity).
    #[getter]
    fn fault_count(&self) -> u64 {
        self.0.fault_log().total()
    }
    /// Blocked requests not recorded because of FPD.
    #[getter]
    fn suppressed_faults(&self) -> u64 {
        self.0.fault_log().suppressed()
    }
    /// Faults counted but not kept because the log was full.
    #[getter]
    fn overflowed_faults(&self) -> u64 {
        self.0.fault_log().overflowed()
    }
    /// Records the fault log keeps.
    #[getter]
    fn fault_log_capacity(&self) -> usize {
        self.0.fault_log().capacity()
    }
    /// CFI: let compatibility-format MSIs through unremapped.
    #[getter]
    fn get_allow_compat(&self) -> bool {
        self.0.allow_compat()
    }
    #[setter]
    fn set_allow_compat(&mut self, allow: bool) {
        self.0.set_allow_compat(allow);
    }

    /// Allocate a naturally aligned block of next_pow2(count) IRTEs; returns its index.
    fn alloc(&mut self, count: &Bound<'_, PyAny>) -> PyResult<u16> {
        intel_ops::alloc(self.0.table_mut(), count)
    }
    /// Free the block at `index` (its rounded size must match `count`).
    fn free(&mut self, index: &Bound<'_, PyAny>, count: &Bound<'_, PyAny>) -> PyResult<()> {
        intel_ops::free(self.0.table_mut(), index, count)
    }
    /// Write `irte` at an allocated `index`.
    fn set(&mut self, index: &Bound<'_, PyAny>, irte: PyRef<'_, PyIrte>) -> PyResult<()> {
        intel_ops::set(self.0.table_mut(), index, &irte)
    }
    /// The IRTE at `index`.
    fn get(&self, index: &Bound<'_, PyAny>) -> PyResult<PyIrte> {
        intel_ops::get(self.0.table(), index)
    }
    /// Zero the IRTE at an allocated `index`.
    fn clear(&mut self, index: &Bound<'_, PyAny>) -> PyResult<()> {
        intel_ops::clear(self.0.table_mut(), index)
    }
    /// Whether `index` lies in an allocated block.
    fn is_allocated(&self, index: &Bound<'_, PyAny>) -> PyResult<bool> {
        intel_ops::is_allocated(self.0.table(), index)
    }
    /// Table size.
    #[getter]
    fn entries(&self) -> u32 {
        self.0.table().entries()
    }
    /// Allocated IRTEs.
    #[getter]
    fn in_use(&self) -> u32 {
        self.0.table().in_use()
    }
    /// IRTEs with P = 1.
    #[getter]
    fn present(&self) -> u32 {
        self.0.table().present()
    }
    /// Live allocated blocks.
    #[getter]
    fn blocks(&self) -> u32 {
        self.0.table().blocks()
    }
    fn __repr__(&self) -> String {
        let t = self.0.table();
        format!(
            "InterruptRemapper(entries={}, allow_compat={}, in_use={}, fault_count={})",
            t.entries(),
            py_bool(self.0.allow_compat()),
            t.in_use(),
            self.0.fault_log().total()
        )
    }
}

/// One AMD IOMMU: per-device remapping tables and a fault log.
#[pyclass(name = "AmdRemapper", module = "msixcore._core")]
pub struct PyAmdRemapper(pub AmdRemapper);

#[pymethods]
impl PyAmdRemapper {
    #[new]
    #[pyo3(signature = (
        table_size=IntArg::Default(512),
        fault_log_capacity=IntArg::Default(DEFAULT_FAULT_LOG_CAPACITY as u128)
    ), text_signature = "(table_size=512, fault_log_capacity=256)")]
    fn new(py: Python<'_>, table_size: IntArg, fault_log_capacity: IntArg) -> PyResult<Self> {
        let n = table_size.get(py, "table_size", u32::MAX)?;
        let cap = capacity(py, &fault_log_capacity)?;
        Ok(Self(AmdRemapper::with_fault_log_capacity(n, cap).py()?))
    }

    /// Remap one request through the requester's own table (index = data[10:0]).
    fn remap(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<PyRemapResult> {
        let rid = uint::<u16>(requester_id, "requester_id")?;
        let msg = message(address, data)?;
        Ok(PyRemapResult(self.0.remap(rid, &msg)))
    }

    /// The kept fault records (requester_id, index or None, reason), oldest first.
    fn faults(&self) -> Vec<FaultTuple> {
        fault_tuples(self.0.fault_log().records())
    }
    /// Remove and return the kept fault records.
    fn drain_faults(&mut self) -> Vec<FaultTuple> {
        drain(self.0.fault_log_mut())
    }
    /// Faults recorded (including those past the log's capacity).
    #[getter]
    fn fault_count(&self) -> u64 {
        self.0.fault_log().total()
    }
    /// Blocked requests not recorded because of SupIOPF.
    #[getter]
    fn suppressed_faults(&self) -> u64 {
        self.0.fault_log().suppressed()
    }
    /// Faults counted but not kept because the log was full.
    #[getter]
    fn overflowed_faults(&self) -> u64 {
        self.0.fault_log().overflowed()
    }
    /// Records the fault log keeps.
    #[getter]
    fn fault_log_capacity(&self) -> usize {
        self.0.fault_log().capacity()
    }

    /// Allocate `count` contiguous entries in the device's table.
    #[pyo3(signature = (requester_id, count, aligned=false))]
    fn alloc(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        count: &Bound<'_, PyAny>,
        aligned: bool,
    ) -> PyResult<u16> {
        amd_ops::alloc(self.0.tables_mut(), requester_id, count, aligned)
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
        amd_ops::free(self.0.tables_mut(), requester_id, index, count)
    }
    /// Write `irte` at an allocated index of the device's table.
    fn set(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
        irte: PyRef<'_, PyAmdIrte>,
    ) -> PyResult<()> {
        amd_ops::set(self.0.tables_mut(), requester_id, index, &irte)
    }
    /// The entry at `index` of the device's table.
    fn get(
        &self,
        requester_id: &Bound<'_, PyAny>,
        index: &Bound<'_, PyAny>,
    ) -> PyResult<PyAmdIrte> {
        amd_ops::get(self.0.tables(), requester_id, index)
    }
    /// Zero an allocated entry of the device's table.
    fn clear(&mut self, requester_id: &Bound<'_, PyAny>, index: &Bound<'_, PyAny>) -> PyResult<()> {
        amd_ops::clear(self.0.tables_mut(), requester_id, index)
    }
    /// Give the device a table of `size` entries now.
    fn create_table(
        &mut self,
        requester_id: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        amd_ops::create_table(self.0.tables_mut(), requester_id, size)
    }
    /// Size of the device's table, or None.
    fn table_len(&self, requester_id: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
        amd_ops::table_len(self.0.tables(), requester_id)
    }
    /// Size given to tables created on first use.
    #[getter]
    fn table_size(&self) -> u32 {
        self.0.tables().table_size()
    }
    /// Devices with a table.
    #[getter]
    fn tables(&self) -> u32 {
        self.0.tables().tables()
    }
    /// Allocated entries over all tables.
    #[getter]
    fn in_use(&self) -> u64 {
        self.0.tables().in_use()
    }
    /// Entries with RemapEn = 1.
    #[getter]
    fn enabled(&self) -> u64 {
        self.0.tables().enabled()
    }
    fn __repr__(&self) -> String {
        let t = self.0.tables();
        format!(
            "AmdRemapper(table_size={}, tables={}, in_use={}, fault_count={})",
            t.table_size(),
            t.tables(),
            t.in_use(),
            self.0.fault_log().total()
        )
    }
}

/// The Intel remappable-format MSI for `handle` (SHV iff `sub_handle` is given): (address, data).
#[pyfunction(name = "compose_msi")]
#[pyo3(signature = (handle, sub_handle=None))]
fn py_compose_msi(
    handle: &Bound<'_, PyAny>,
    sub_handle: Option<&Bound<'_, PyAny>>,
) -> PyResult<(u64, u32)> {
    let handle = uint::<u16>(handle, "handle")?;
    let sub = sub_handle
        .map(|s| uint::<u16>(s, "sub_handle"))
        .transpose()?;
    let m = compose_msi(handle, sub);
    Ok((m.address, m.data))
}

/// The AMD MSI for IRTE `index` of the sender's table: (address, data).
#[pyfunction(name = "compose_amd_msi")]
fn py_compose_amd_msi(index: &Bound<'_, PyAny>) -> PyResult<(u64, u32)> {
    let m = compose_amd_msi(uint::<u16>(index, "index")?);
    Ok((m.address, m.data))
}

/// Decode an MSI (address, data) into a dict; outside 0xFEEx_xxxx → InvalidArgument.
#[pyfunction(name = "decode_msi")]
fn py_decode_msi<'py>(
    address: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let py = address.py();
    let msg = message(address, data)?;
    let decoded = decode_msi(&msg).map_err(|e| invalid_argument(e.to_string()))?;
    let d = PyDict::new(py);
    match decoded {
        Decoded::Remappable(r) => {
            d.set_item("format", "remappable")?;
            d.set_item("handle", r.handle)?;
            d.set_item("shv", r.shv())?;
            d.set_item("sub_handle", r.sub_handle)?;
            d.set_item("index", r.index())?;
        }
        Decoded::Compat(c) => {
            d.set_item("format", "compat")?;
            d.set_item("dest_id", c.dest_id)?;
            d.set_item("redir_hint", c.redir_hint)?;
            d.set_item("dest_mode", c.dest_mode)?;
            d.set_item("vector", c.vector)?;
            d.set_item("delivery_mode", c.delivery_mode)?;
            d.set_item("trigger_mode", c.trigger_mode)?;
        }
    }
    Ok(d)
}

/// Register the classes and functions of this file.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyRemapResult>()?;
    m.add_class::<PyInterruptRemapper>()?;
    m.add_class::<PyAmdRemapper>()?;
    m.add_function(wrap_pyfunction!(py_compose_msi, m)?)?;
    m.add_function(wrap_pyfunction!(py_compose_amd_msi, m)?)?;
    m.add_function(wrap_pyfunction!(py_decode_msi, m)?)?;
    Ok(())
}
