//! `msixcore._core.VectorDomain`: the Python face of `msixcore_core::VectorDomain`
//! (arch/x86/kernel/apic/vector.c on top of the matrix). Conversions only.

use msixcore_core::vector_domain::VectorDomain as CoreDomain;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{indent, py_bool, uint, uint_list};
use crate::errors::IntoPyResult;
use crate::matrix::{state_dict, x86_preset};

/// The x86 vector domain: interrupts allocated, activated, deactivated and freed on a
/// booted x86 vector matrix, with reservation mode, managed interrupts and CPU hotplug.
#[pyclass(module = "msixcore._core", name = "VectorDomain")]
pub struct PyVectorDomain {
    inner: CoreDomain,
}

#[pymethods]
impl PyVectorDomain {
    /// Boot an x86 host with `ncpus` CPUs, all online; `nodes[cpu]` is each CPU's NUMA node.
    #[new]
    #[pyo3(signature = (ncpus, *, posted_msi = false, reservation_mode = true, nodes = None))]
    fn new(
        ncpus: &Bound<'_, PyAny>,
        posted_msi: bool,
        reservation_mode: bool,
        nodes: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let ncpus = uint(ncpus, "ncpus")?;
        let nodes = nodes.map(|n| uint_list(n, "nodes")).transpose()?;
        let inner =
            CoreDomain::new(ncpus, &x86_preset(posted_msi), reservation_mode, nodes).py()?;
        Ok(Self { inner })
    }

    /// Allocate an interrupt (`x86_vector_alloc_irqs` + MSI early activation); its number.
    #[pyo3(signature = (affinity = None, managed = false, node = None))]
    fn alloc_irq(
        &mut self,
        affinity: Option<&Bound<'_, PyAny>>,
        managed: bool,
        node: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let affinity = affinity.map(|a| uint_list(a, "affinity")).transpose()?;
        let node = node.map(|n| uint(n, "node")).transpose()?;
        self.inner
            .alloc_irq(affinity.as_deref(), managed, node)
            .py()
    }

    /// `request_irq`: give the interrupt a CPU vector.
    fn activate(&mut self, irq: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.activate(uint(irq, "irq")?).py()
    }

    /// `free_irq`: release the vector (back to a reservation / managed shutdown).
    fn deactivate(&mut self, irq: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.deactivate(uint(irq, "irq")?).py()
    }

    /// `x86_vector_free_irqs`: tear the interrupt down, its vector and its reservations.
    fn free(&mut self, irq: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.free(uint(irq, "irq")?).py()
    }

    /// CPU unplug: migrate started interrupts off `cpu` or shut managed ones down.
    fn cpu_offline(&mut self, cpu: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.cpu_offline(uint(cpu, "cpu")?).py()
    }

    /// CPU hotplug: bring `cpu` online and start managed interrupts waiting for it.
    fn cpu_online(&mut self, cpu: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.cpu_online(uint(cpu, "cpu")?).py()
    }

    /// One interrupt: state name, cpu, vector, managed, affinity, reservations.
    fn irq_state<'py>(
        &self,
        py: Python<'py>,
        irq: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let irq = uint(irq, "irq")?;
        let info = self.inner.irq(irq).py()?;
        let d = PyDict::new(py);
        d.set_item("irq", irq)?;
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

    /// Allocated interrupt numbers, ascending.
    fn irqs(&self) -> Vec<u32> {
        self.inner.irqs().map(|(k, _)| k).collect()
    }

    /// CPUs in the online mask, ascending.
    fn online_cpus(&self) -> Vec<u32> {
        self.inner.online_cpus()
    }

    /// The underlying matrix's state (as `IrqMatrix.state`).
    fn matrix_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, self.inner.matrix())
    }

    /// The matrix's debugfs text (`/sys/kernel/debug/irq/domains/VECTOR`).
    #[pyo3(signature = (ind = None), text_signature = "($self, ind=0)")]
    fn debug_show(&self, ind: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
        let ind = indent(ind)?;
        Ok(self.inner.debug_show(ind))
    }

    /// Number of possible CPUs.
    #[getter]
    fn ncpus(&self) -> u32 {
        self.inner.ncpus()
    }

    /// Whether regular interrupts reserve instead of holding a vector until activation.
    #[getter]
    fn reservation_mode(&self) -> bool {
        self.inner.reservation_mode()
    }

    /// Number of allocated interrupts.
    #[getter]
    fn nr_irqs(&self) -> usize {
        self.inner.nr_irqs()
    }

    /// Interrupts holding a CPU vector.
    #[getter]
    fn vectors_in_use(&self) -> usize {
        self.inner.vectors_in_use()
    }

    /// Global reservations outstanding (`irq_matrix_reserved`).
    #[getter]
    fn reserved(&self) -> u32 {
        self.inner.reserved()
    }

    /// Managed reservations summed over all CPUs.
    #[getter]
    fn managed_reserved(&self) -> u64 {
        self.inner.managed_reserved()
    }

    /// The matrix's `global_available`.
    #[getter]
    fn available(&self) -> u32 {
        self.inner.matrix().global_available()
    }

    /// `pr_warn` messages so far (matrix over-reservation, broken affinity, ...).
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
            py_bool(d.reservation_mode()),
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
