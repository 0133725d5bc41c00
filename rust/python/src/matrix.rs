//! `msixcore._core.IrqMatrix`: the Python face of `msixcore_core::IrqMatrix`
//! (Linux kernel/irq/matrix.c). Conversions only; the model lives in the core.

use msixcore_core::matrix::{CpuMap, IrqMatrix as CoreMatrix, X86Preset};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::convert::{indent, uint, uint_list};
use crate::errors::IntoPyResult;

/// One per-CPU dict, keys as in the golden traces' `state.cpus[i]`.
pub fn cpu_dict<'py>(py: Python<'py>, cm: &CpuMap) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("available", cm.available())?;
    d.set_item("allocated", cm.allocated())?;
    d.set_item("managed", cm.managed())?;
    d.set_item("managed_allocated", cm.managed_allocated())?;
    d.set_item("online", cm.online())?;
    d.set_item("initialized", cm.initialized())?;
    d.set_item("alloc_map", PyList::new(py, cm.alloc_map().iter())?)?;
    d.set_item("managed_map", PyList::new(py, cm.managed_map().iter())?)?;
    Ok(d)
}

/// The whole matrix state, keys and value types exactly as the golden traces' `state` object.
pub fn state_dict<'py>(py: Python<'py>, m: &CoreMatrix) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("matrix_bits", m.matrix_bits())?;
    d.set_item("alloc_start", m.alloc_start())?;
    d.set_item("alloc_end", m.alloc_end())?;
    d.set_item("alloc_size", m.alloc_size())?;
    d.set_item("global_available", m.global_available())?;
    d.set_item("global_reserved", m.global_reserved())?;
    d.set_item("total_allocated", m.total_allocated())?;
    d.set_item("online_maps", m.online_maps())?;
    d.set_item("systembits_inalloc", m.systembits_inalloc())?;
    d.set_item("system_map", PyList::new(py, m.system_map().iter())?)?;
    let cpus = PyList::empty(py);
    for cm in m.cpus() {
        cpus.append(cpu_dict(py, cm)?)?;
    }
    d.set_item("cpus", cpus)?;
    Ok(d)
}

/// Linux's per-CPU interrupt vector allocator (kernel/irq/matrix.c), bit for bit.
#[pyclass(module = "msixcore._core", name = "IrqMatrix")]
pub struct PyIrqMatrix {
    inner: CoreMatrix,
}

#[pymethods]
impl PyIrqMatrix {
    /// `irq_alloc_matrix`: every CPU offline and uninitialized.
    #[new]
    fn new(
        matrix_bits: &Bound<'_, PyAny>,
        alloc_start: &Bound<'_, PyAny>,
        alloc_end: &Bound<'_, PyAny>,
        ncpus: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let inner = CoreMatrix::new(
            uint(matrix_bits, "matrix_bits")?,
            uint(alloc_start, "alloc_start")?,
            uint(alloc_end, "alloc_end")?,
            uint(ncpus, "ncpus")?,
        )
        .py()?;
        Ok(Self { inner })
    }

    /// The x86 vector matrix of a mainline kernel, booted (system vectors, legacy vectors on
    /// CPU 0, every CPU online).
    #[classmethod]
    #[pyo3(signature = (ncpus, posted_msi = false))]
    fn x86(_cls: &Bound<'_, PyType>, ncpus: &Bound<'_, PyAny>, posted_msi: bool) -> PyResult<Self> {
        let inner = CoreMatrix::x86(uint(ncpus, "ncpus")?, &x86_preset(posted_msi)).py()?;
        Ok(Self { inner })
    }

    /// `irq_matrix_online`: first time sets `available`; adds it to `global_available`.
    fn online(&mut self, cpu: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.online(uint(cpu, "cpu")?).py()
    }

    /// `irq_matrix_offline`: `global_available -= available`; maps kept.
    fn offline(&mut self, cpu: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.offline(uint(cpu, "cpu")?).py()
    }

    /// `irq_matrix_assign_system` on local CPU `cpu`: mark `bit` a system vector.
    fn assign_system(
        &mut self,
        cpu: &Bound<'_, PyAny>,
        bit: &Bound<'_, PyAny>,
        replace: bool,
    ) -> PyResult<()> {
        let (cpu, bit) = (uint(cpu, "cpu")?, uint(bit, "bit")?);
        self.inner.assign_system(cpu, bit, replace).py()
    }

    /// `irq_matrix_reserve_managed`: one managed bit on every CPU of `cpus` (rolled back on
    /// NoSpace).
    fn reserve_managed(&mut self, cpus: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.reserve_managed(&uint_list(cpus, "cpus")?).py()
    }

    /// `irq_matrix_remove_managed`: drop one unallocated managed bit per CPU of `cpus`.
    fn remove_managed(&mut self, cpus: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.remove_managed(&uint_list(cpus, "cpus")?).py()
    }

    /// `irq_matrix_alloc_managed`: `(cpu, vector)` from the managed reservations.
    fn alloc_managed(&mut self, cpus: &Bound<'_, PyAny>) -> PyResult<(u32, u32)> {
        self.inner.alloc_managed(&uint_list(cpus, "cpus")?).py()
    }

    /// `irq_matrix_assign` on local CPU `cpu`: mark a preallocated vector.
    fn assign(&mut self, cpu: &Bound<'_, PyAny>, bit: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.assign(uint(cpu, "cpu")?, uint(bit, "bit")?).py()
    }

    /// `irq_matrix_reserve`: `global_reserved += 1`.
    fn reserve(&mut self) {
        self.inner.reserve();
    }

    /// `irq_matrix_remove_reserved`: `global_reserved -= 1`.
    fn remove_reserved(&mut self) {
        self.inner.remove_reserved();
    }

    /// `irq_matrix_alloc`: `(cpu, vector)` on the CPU of `cpus` with the most available.
    #[pyo3(signature = (cpus, reserved = false))]
    fn alloc(&mut self, cpus: &Bound<'_, PyAny>, reserved: bool) -> PyResult<(u32, u32)> {
        self.inner.alloc(&uint_list(cpus, "cpus")?, reserved).py()
    }

    /// `irq_matrix_free`: release `bit` on `cpu`.
    #[pyo3(signature = (cpu, bit, managed = false))]
    fn free(
        &mut self,
        cpu: &Bound<'_, PyAny>,
        bit: &Bound<'_, PyAny>,
        managed: bool,
    ) -> PyResult<()> {
        let (cpu, bit) = (uint(cpu, "cpu")?, uint(bit, "bit")?);
        self.inner.free(cpu, bit, managed).py()
    }

    /// `irq_matrix_available`: `global_available`, minus `cpudown_cpu`'s `available`.
    #[pyo3(signature = (cpudown_cpu = None))]
    fn available(&self, cpudown_cpu: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
        let cpu = cpudown_cpu.map(|c| uint(c, "cpudown_cpu")).transpose()?;
        self.inner.available(cpu).py()
    }

    /// `irq_matrix_reserved`: `global_reserved`.
    fn reserved(&self) -> u32 {
        self.inner.reserved()
    }

    /// `irq_matrix_allocated` on `cpu`: `allocated - managed_allocated`.
    fn allocated(&self, cpu: &Bound<'_, PyAny>) -> PyResult<u32> {
        self.inner.allocated(uint(cpu, "cpu")?).py()
    }

    /// The whole state, keys and types as the golden traces' `state` object.
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, &self.inner)
    }

    /// One CPU's state (one entry of `state()["cpus"]`).
    fn cpu_state<'py>(
        &self,
        py: Python<'py>,
        cpu: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cm = self.inner.cpu(uint(cpu, "cpu")?).py()?;
        cpu_dict(py, cm)
    }

    /// `irq_matrix_debug_show`: the debugfs text, character for character.
    #[pyo3(signature = (ind = None), text_signature = "($self, ind=0)")]
    fn debug_show(&self, ind: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        let ind = indent(ind)?;
        self.inner.debug_show(ind).py()
    }

    /// Number of `pr_warn` messages printed (over-reservation).
    #[getter]
    fn warnings(&self) -> u64 {
        self.inner.pr_warnings()
    }

    /// Number of possible CPUs.
    #[getter]
    fn ncpus(&self) -> u32 {
        self.inner.ncpus()
    }

    fn __repr__(&self) -> String {
        let m = &self.inner;
        format!(
            "IrqMatrix(matrix_bits={}, alloc=[{}, {}), ncpus={}, online={}, \
             global_available={}, global_reserved={}, total_allocated={})",
            m.matrix_bits(),
            m.alloc_start(),
            m.alloc_end(),
            m.ncpus(),
            m.online_maps(),
            m.global_available(),
            m.global_reserved(),
            m.total_allocated()
        )
    }
}

/// The named x86 boot preset: mainline, or with CONFIG_X86_POSTED_MSI.
pub fn x86_preset(posted_msi: bool) -> X86Preset {
    if posted_msi {
        X86Preset::posted_msi()
    } else {
        X86Preset::mainline()
    }
}

/// Register the class on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIrqMatrix>()
}
