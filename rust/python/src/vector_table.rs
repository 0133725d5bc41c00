//! `msixcore._core.VectorTable`: one function's MSI-X capability, table and
//! PBA (the core's `VectorTable`) plus an outbox of the messages it sent.
//!
//! Integer arguments are taken as Python objects and range-checked here, so an
//! out-of-range value raises `MmioError` (MMIO offsets, sizes, values) or
//! `InvalidArgument` (vectors, control values, messages), never OverflowError.

use msixcore_core::{DisabledMode, Error, MsiMessage, Released, VectorTable};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::errors::{invalid_argument, to_py, IntoPyResult};

/// A Python int as u64; a non-int is a TypeError, an int outside 0..2**64 goes
/// through `range_err`.
fn uint(obj: &Bound<'_, PyAny>, what: &str, range_err: fn(String) -> PyErr) -> PyResult<u64> {
    if !obj.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!("{what} must be an int")));
    }
    obj.extract::<u64>()
        .map_err(|_| range_err(format!("{what} {obj} out of range")))
}

fn mmio_err(msg: String) -> PyErr {
    to_py(Error::Mmio(msg))
}

fn inval_err(msg: String) -> PyErr {
    invalid_argument(msg)
}

/// An MMIO argument (offset, size or value): out of range is an `MmioError`.
fn mmio_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    uint(obj, what, mmio_err)
}

/// An access size: anything that is not a small int is an `MmioError`.
fn size_arg(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let size = mmio_arg(obj, "access size")?;
    usize::try_from(size).map_err(|_| mmio_err(format!("access size {size} out of range")))
}

/// A vector index (or other control-plane int) bounded by `T`: out of range is
/// `InvalidArgument`.
fn arg<T: TryFrom<u64>>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    let v = uint(obj, what, inval_err)?;
    T::try_from(v).map_err(|_| invalid_argument(format!("{what} {v} out of range")))
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
        let entries: usize = arg(entries, "table size")?;
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
        let value: u16 = arg(value, "Message Control value")?;
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
        let offset = mmio_arg(offset, "table offset")?;
        self.table.table_read(offset, size_arg(size)?).py()
    }

    /// Write `size` (4 or 8) bytes of the table at `offset`.
    fn table_write(
        &mut self,
        offset: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let offset = mmio_arg(offset, "table offset")?;
        let size = size_arg(size)?;
        let value = mmio_arg(value, "table write value")?;
        let released = self.table.table_write(offset, size, value).py()?;
        self.post(released);
        Ok(())
    }

    /// Read `size` (4 or 8) bytes of the PBA at `offset`.
    fn pba_read(&self, offset: &Bound<'_, PyAny>, size: &Bound<'_, PyAny>) -> PyResult<u64> {
        let offset = mmio_arg(offset, "PBA offset")?;
        self.table.pba_read(offset, size_arg(size)?).py()
    }

    /// Write the PBA: always raises MmioError (the PBA is read-only).
    fn pba_write(
        &mut self,
        offset: &Bound<'_, PyAny>,
        size: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let offset = mmio_arg(offset, "PBA offset")?;
        let size = size_arg(size)?;
        let value = mmio_arg(value, "PBA write value")?;
        self.table.pba_write(offset, size, value).py()
    }

    /// The device signals vector k; returns the outcome name.
    fn fire(&mut self, k: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let k: usize = arg(k, "vector")?;
        let fired = self.table.fire(k).py()?;
        if let Some(m) = fired.message() {
            self.outbox.push((k, m.address, m.data));
        }
        Ok(fired.outcome().as_str())
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
        let k: usize = arg(k, "vector")?;
        let address: u64 = arg(address, "message address")?;
        let data: u32 = arg(data, "message data")?;
        self.table.set_entry(k, MsiMessage::new(address, data)).py()
    }

    /// Set entry k's Mask bit.
    fn mask(&mut self, k: &Bound<'_, PyAny>) -> PyResult<()> {
        let k: usize = arg(k, "vector")?;
        let released = self.table.mask(k).py()?;
        self.post(released);
        Ok(())
    }

    /// Clear entry k's Mask bit; a pending message is sent if k can now send.
    fn unmask(&mut self, k: &Bound<'_, PyAny>) -> PyResult<()> {
        let k: usize = arg(k, "vector")?;
        let released = self.table.unmask(k).py()?;
        self.post(released);
        Ok(())
    }

    /// Entry k as (address, data, vector_control).
    fn entry(&self, k: &Bound<'_, PyAny>) -> PyResult<(u64, u32, u32)> {
        let e = self.table.entry(arg(k, "vector")?).py()?;
        Ok((e.address, e.data, e.vector_control))
    }

    /// Effective mask of k: Function Mask, entry Mask, or Enable clear in "pending" mode.
    fn is_masked(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_masked(arg(k, "vector")?).py()
    }

    /// Entry k's own Mask bit.
    fn is_entry_masked(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_entry_masked(arg(k, "vector")?).py()
    }

    /// Pending[k].
    fn is_pending(&self, k: &Bound<'_, PyAny>) -> PyResult<bool> {
        self.table.is_pending(arg(k, "vector")?).py()
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
    m.add_class::<PyVectorTable>()
}
