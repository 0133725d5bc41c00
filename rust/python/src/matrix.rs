//! `msixcore._core.IrqMatrix`: the Python face of `msixcore_core::IrqMatrix`
//! (Linux kernel/irq/matrix.c). Conversions only; the model lives in the core.

use msixcore_core::matrix::{CpuMap, IrqMatrix as CoreMatrix, X86Preset};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyType};

use crate::convert::{CpuList, I32Arg, U32Arg};
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
    #[new]
    fn new(
        matrix_bits: U32Arg,
        alloc_start: U32Arg,
        alloc_end: U32Arg,
        ncpus: U32Arg,
    ) -> PyResult<Self> {
        let inner = CoreMatrix::new(matrix_bits.0, alloc_start.0, alloc_end.0, ncpus.0).py()?;
        Ok(Self { inner })
    }

    /// The x86 vector matrix of a mainline kernel, booted (system vectors, legacy vectors on
    /// CPU 0, every CPU online).
    #[classmethod]
    #[pyo3(signature = (ncpus, posted_msi = false))]
    fn x86(_cls: &Bound<'_, PyType>, ncpus: U32Arg, posted_msi: bool) -> PyResult<Self> {
        let preset = if posted_msi {
            X86Preset::posted_msi()
        } else {
            X86Preset::mainline()
        };
        let inner = CoreMatrix::x86(ncpus.0, &preset).py()?;
        Ok(Self { inner })
    }

    fn online(&mut self, cpu: U32Arg) -> PyResult<()> {
        self.inner.online(cpu.0).py()
    }

    fn offline(&mut self, cpu: U32Arg) -> PyResult<()> {
        self.inner.offline(cpu.0).py()
    }

    fn assign_system(&mut self, cpu: U32Arg, bit: U32Arg, replace: bool) -> PyResult<()> {
        self.inner.assign_system(cpu.0, bit.0, replace).py()
    }

    fn reserve_managed(&mut self, cpus: CpuList) -> PyResult<()> {
        self.inner.reserve_managed(&cpus.0).py()
    }

    fn remove_managed(&mut self, cpus: CpuList) -> PyResult<()> {
        self.inner.remove_managed(&cpus.0).py()
    }

    fn alloc_managed(&mut self, cpus: CpuList) -> PyResult<(u32, u32)> {
        self.inner.alloc_managed(&cpus.0).py()
    }

    fn assign(&mut self, cpu: U32Arg, bit: U32Arg) -> PyResult<()> {
        self.inner.assign(cpu.0, bit.0).py()
    }

    fn reserve(&mut self) {
        self.inner.reserve();
    }

    fn remove_reserved(&mut self) {
        self.inner.remove_reserved();
    }

    #[pyo3(signature = (cpus, reserved = false))]
    fn alloc(&mut self, cpus: CpuList, reserved: bool) -> PyResult<(u32, u32)> {
        self.inner.alloc(&cpus.0, reserved).py()
    }

    #[pyo3(signature = (cpu, bit, managed = false))]
    fn free(&mut self, cpu: U32Arg, bit: U32Arg, managed: bool) -> PyResult<()> {
        self.inner.free(cpu.0, bit.0, managed).py()
    }

    #[pyo3(signature = (cpudown_cpu = None))]
    fn available(&self, cpudown_cpu: Option<U32Arg>) -> PyResult<u32> {
        self.inner.available(cpudown_cpu.map(|c| c.0)).py()
    }

    fn reserved(&self) -> u32 {
        self.inner.reserved()
    }

    fn allocated(&self, cpu: U32Arg) -> PyResult<u32> {
        self.inner.allocated(cpu.0).py()
    }

    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, &self.inner)
    }

    fn cpu_state<'py>(&self, py: Python<'py>, cpu: U32Arg) -> PyResult<Bound<'py, PyDict>> {
        let cm = self.inner.cpu(cpu.0).py()?;
        cpu_dict(py, cm)
    }

    #[pyo3(signature = (ind = I32Arg(0)), text_signature = "($self, ind=0)")]
    fn debug_show(&self, ind: I32Arg) -> String {
        self.inner.debug_show(ind.0)
    }

    #[getter]
    fn warnings(&self) -> u64 {
        self.inner.pr_warnings()
    }

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

/// Register the class on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIrqMatrix>()
}
