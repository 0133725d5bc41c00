//! `msixcore._core.VectorDomain`: the Python face of `msixcore_core::VectorDomain`
//! (arch/x86/kernel/apic/vector.c on top of the matrix). Conversions only.

use msixcore_core::matrix::X86Preset;
use msixcore_core::vector_domain::VectorDomain as CoreDomain;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{CpuList, I32Arg, U32Arg};
use crate::errors::IntoPyResult;
use crate::matrix::state_dict;

/// The x86 vector domain: interrupts allocated, activated, deactivated and freed on a
/// booted x86 vector matrix, with reservation mode, managed interrupts and CPU hotplug.
#[pyclass(module = "msixcore._core", name = "VectorDomain")]
pub struct PyVectorDomain {
    inner: CoreDomain,
}

#[pymethods]
impl PyVectorDomain {
    #[new]
    #[pyo3(signature = (ncpus, *, posted_msi = false, reservation_mode = true, nodes = None))]
    fn new(
        ncpus: U32Arg,
        posted_msi: bool,
        reservation_mode: bool,
        nodes: Option<CpuList>,
    ) -> PyResult<Self> {
        let preset = if posted_msi {
            X86Preset::posted_msi()
        } else {
            X86Preset::mainline()
        };
        let inner = CoreDomain::new(ncpus.0, &preset, reservation_mode, nodes.map(|n| n.0)).py()?;
        Ok(Self { inner })
    }

    #[pyo3(signature = (affinity = None, managed = false, node = None))]
    fn alloc_irq(
        &mut self,
        affinity: Option<CpuList>,
        managed: bool,
        node: Option<U32Arg>,
    ) -> PyResult<u32> {
        self.inner
            .alloc_irq(
                affinity.as_ref().map(|a| a.0.as_slice()),
                managed,
                node.map(|n| n.0),
            )
            .py()
    }

    fn activate(&mut self, irq: U32Arg) -> PyResult<()> {
        self.inner.activate(irq.0).py()
    }

    fn deactivate(&mut self, irq: U32Arg) -> PyResult<()> {
        self.inner.deactivate(irq.0).py()
    }

    fn free(&mut self, irq: U32Arg) -> PyResult<()> {
        self.inner.free(irq.0).py()
    }

    fn cpu_offline(&mut self, cpu: U32Arg) -> PyResult<()> {
        self.inner.cpu_offline(cpu.0).py()
    }

    fn cpu_online(&mut self, cpu: U32Arg) -> PyResult<()> {
        self.inner.cpu_online(cpu.0).py()
    }

    fn irq_state<'py>(&self, py: Python<'py>, irq: U32Arg) -> PyResult<Bound<'py, PyDict>> {
        let info = self.inner.irq(irq.0).py()?;
        let d = PyDict::new(py);
        d.set_item("irq", irq.0)?;
        d.set_item("state", info.state().name())?;
        d.set_item("cpu", info.target().map(|t| t.0))?;
        d.set_item("vector", info.target().map(|t| t.1))?;
        d.set_item("managed", info.managed())?;
        d.set_item("affinity", PyList::new(py, info.affinity())?)?;
        d.set_item("node", info.node())?;
        d.set_item("requested", info.requested())?;
        d.set_item("has_reserved", info.has_reserved())?;
        d.set_item("can_reserve", info.can_reserve())?;
        Ok(d)
    }

    fn irqs(&self) -> Vec<u32> {
        self.inner.irqs().map(|(k, _)| k).collect()
    }

    fn online_cpus(&self) -> Vec<u32> {
        self.inner.online_cpus()
    }

    fn matrix_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, self.inner.matrix())
    }

    #[pyo3(signature = (ind = I32Arg(0)), text_signature = "($self, ind=0)")]
    fn debug_show(&self, ind: I32Arg) -> String {
        self.inner.debug_show(ind.0)
    }

    #[getter]
    fn ncpus(&self) -> u32 {
        self.inner.ncpus()
    }

    #[getter]
    fn reservation_mode(&self) -> bool {
        self.inner.reservation_mode()
    }

    #[getter]
    fn nr_irqs(&self) -> usize {
        self.inner.nr_irqs()
    }

    #[getter]
    fn vectors_in_use(&self) -> usize {
        self.inner.vectors_in_use()
    }

    #[getter]
    fn reserved(&self) -> u32 {
        self.inner.reserved()
    }

    #[getter]
    fn managed_reserved(&self) -> u64 {
        self.inner.managed_reserved()
    }

    #[getter]
    fn available(&self) -> u32 {
        self.inner.matrix().global_available()
    }

    #[getter]
    fn warnings(&self) -> u64 {
        self.inner.pr_warnings() + self.inner.matrix().pr_warnings()
    }

    fn __repr__(&self) -> String {
        let d = &self.inner;
        format!(
            "VectorDomain(ncpus={}, online={}, reservation_mode={}, irqs={}, \
             vectors_in_use={}, reserved={}, available={})",
            d.ncpus(),
            d.online_cpus().len(),
            if d.reservation_mode() {
                "True"
            } else {
                "False"
            },
            d.nr_irqs(),
            d.vectors_in_use(),
            d.reserved(),
            d.matrix().global_available()
        )
    }
}

/// Register the class on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVectorDomain>()
}
