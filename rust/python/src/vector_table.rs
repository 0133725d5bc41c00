//! `msixcore._core.VectorTable`: one function's MSI-X capability, table and
//! PBA (the core's `VectorTable`) plus an outbox of the messages it sent.
//!
//! Integer arguments go through `convert`: an out-of-range value raises
//! `MmioError` (MMIO offsets, sizes, values) or `InvalidArgument` (vectors,
//! control values, messages), never OverflowError.

use msixcore_core::{DisabledMode, MsiMessage, Released, VectorTable};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::convert::{mmio_uint, uint};
use crate::errors::{invalid_argument, IntoPyResult};

/// Vector index argument.
fn vector(k: &Bound<'_, PyAny>) -> PyResult<usize> {
    uint(k, "vector")
}

/// One device function's MSI-X capability, vector table and PBA.
#[pyclass(name = "VectorTable", module = "msixcore._core")]
pub struct PyVectorTable {
    table: VectorTable,
    outbox: Vec<(usize, u64, u32)>,
}

impl PyVectorTable {
    fn post(&mut self, released: Released) {
        self.outbox
            .extend(released.into_iter().map(|(k, m)| (k, m.address, m.data)));
    }
}

#[pymethods]
impl PyVectorTable {
    /// A table of `entries` vectors (1..2048) in spec reset state.
    #[new]
    #[pyo3(signature = (entries, disabled = "lost"))]
    fn new(entries: &Bound<'_, PyAny>, disabled: &str) -> PyResult<Self> {
        let mode: DisabledMode = disabled.parse().py()?;
        let entries: usize = uint(entries, "table size")?;
        Ok(Self {
            table: VectorTable::new(entries, mode).py()?,
            outbox: Vec::new(),
        })
    }

    /// Number of vectors N.
    #[getter]
    fn entries(&self) -> usize {
        self.table.entries()
    }

    /// Message Control: Enable (bit 15), Function Mask (bit 14), N - 1 (bits 10:0).
    #[getter]
    fn control(&self) -> u16 {
        self.table.control()
    }

    /// Whether MSI-X Enable is set.
    #[getter]
    fn enabled(&self) -> bool {
        self.table.is_enabled()
    }

    /// Whether Function Mask is set.
    #[getter]
    fn function_masked(&self) -> bool {
        self.table.is_function_masked()
    }

    /// What a fire does while Enable is clear: "lost", "intx" or "pending".
    #[getter]
    fn disabled_mode(&self) -> &'static str {
        self.table.disabled_mode().as_str()
    }

    #[setter]
    fn set_disabled_mode(&mut self, mode: &str) -> PyResult<()> {
        self.table.set_disabled_mode(mode.parse().py()?);
        Ok(())
    }

    /// Number of set pending bits.
    #[getter]
    fn pending_count(&self) -> usize {
        self.table.pending_count()
    }

    /// Write Message Control (Enable, Function Mask); releases pending vectors
    /// that can now send into the outbox.
    fn set_control(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value: u16 = uint(value, "Message Control value")?;
        let released = self.table.set_control(value);
        self.post(released);
        Ok(())
    }

    /// Back to spec reset state (the disabled mode and the outbox are kept).
    fn reset(&mut self) {
        self.table.reset();
    }

    /// Read `size` (4 or 8) bytes of the table at `offset`.
    fn table_read(&self, offset: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let offset = mmio_uint(offset, "table offset")?;
        self.table
            .table_read(offset, mmio_uint(size, "access size")?)
            .py()
    }

    /// Write `size` (4 or 8) bytes of the table at `offset`.
    fn table_write(
        &mut self,
        offset: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let offset = mmio_uint(offset, "table offset")?;
        let size = mmio_uint(size, "access size")?;
        let value = mmio_uint(value, "table write value")?;
        let released = self.table.table_write(offset, size, value).py()?;
        self.post(released);
        Ok(())
    }

    /// Read `size` (4 or 8) bytes of the PBA at `offset`.
    fn pba_read(&self, offset: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let offset = mmio_uint(offset, "PBA offset")?;
        self.table
            .pba_read(offset, mmio_uint(size, "access size")?)
            .py()
    }

    /// Write the PBA: always raises MmioError (the PBA is read-only).
    fn pba_write(
        &mut self,
        offset: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let offset = mmio_uint(offset, "PBA offset")?;
        let size = mmio_uint(size, "access size")?;
        let value = mmio_uint(value, "PBA write value")?;
        self.table.pba_write(offset, size, value).py()
    }

    /// The device signals vector k; returns the outcome name.
    fn fire(&mut self, k: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let k = vector(k)?;
        let fired = self.table.fire(k).py()?;
        if let Some(m) = fired.message() {
            self.outbox.push((k, m.address, m.data));
        }
        Ok(fired.outcome().as_str())
    }

    /// Fire many vectors in order (a numpy ``uint32`` array); returns each fire's
    /// outcome as a ``uint8`` code: index into ``FIRE_OUTCOMES`` (``delivered``,
    /// ``pending``, ``coalesced``, ``lost``, ``intx``). Delivered messages go to the
    /// outbox. A vector past the table raises ``InvalidArgument`` before any fires.
    fn fire_many<'py>(
        &mut self,
        py: Python<'py>,
        vectors: PyReadonlyArray1<'py, u32>,
    ) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let ks = vectors.as_slice()?;
        let n = self.table.entries();
        if let Some(&bad) = ks.iter().find(|&&k| k as usize >= n) {
            return Err(invalid_argument(format!(
                "vector {bad} is past the table of {n}"
            )));
        }
        let mut codes = Vec::with_capacity(ks.len());
        for &k in ks {
            let fired = self.table.fire(k as usize).py()?;
            if let Some(m) = fired.message() {
                self.outbox.push((k as usize, m.address, m.data));
            }
            codes.push(fired.outcome() as u8);
        }
        Ok(codes.into_pyarray(py))
    }

    /// Return and clear the (vector, address, data) messages sent so far.
    fn take_messages(&mut self) -> Vec<(usize, u64, u32)> {
        std::mem::take(&mut self.outbox)
    }

    /// Program entry k's Message Address and Data.
    fn program(
        &mut self,
        k: &Bound<'_, PyAny>,
        address: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let k = vector(k)?;
        let address: u64 = uint(address, "message address")?;
        let data: u32 = uint(data, "message data")?;
        self.table.set_entry(k, MsiMessage::new(address, data)).py()
    }

    /// Set entry k's Mask bit.
    fn mask(&mut self, k: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = vector(k)?;
        let released = self.table.mask(k).py()?;
        self.post(released);
        Ok(())
    }

    /// Clear entry k's Mask bit; a pending message is sent if k can now send.
    fn unmask(&mut self, k: &Bound<'_, PyAny>) -> PyResult<()> {
        let k = vector(k)?;
        let released = self.table.unmask(k).py()?;
        self.post(released);
        Ok(())
    }

    /// Entry k as (address, data, vector_control).
    fn entry(&self, k: &Bound<'_, PyAny>) -> PyResult<(u64, u32, u32)> {
        let e = self.table.entry(vector(k)?).py()?;
        Ok((e.address, e.data, e.vector_control))
    }

    /// Effective mask of k: Function Mask, entry Mask, or Enable clear in "pending" mode.
    fn is_masked(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_masked(vector(k)?).py()
    }

    /// Entry k's own Mask bit.
    fn is_entry_masked(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_entry_masked(vector(k)?).py()
    }

    /// Pending[k].
    fn is_pending(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_pending(vector(k)?).py()
    }

    fn __repr__(&self) -> String {
        format!(
            "VectorTable(entries={}, disabled='{}', control={:#06x}, pending={})",
            self.table.entries(),
            self.table.disabled_mode().as_str(),
            self.table.control(),
            self.table.pending_count(),
        )
    }
}

/// Register `VectorTable` on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let names: Vec<&str> = msixcore_core::FireOutcome::ALL
        .iter()
        .map(|o| o.as_str())
        .collect();
    m.add("FIRE_OUTCOMES", pyo3::types::PyTuple::new(m.py(), names)?)?;
    m.add_class::<PyVectorTable>()
}
