//! `msixcore._core.VectorDomain`: the Python face of `msixcore_core::VectorDomain`
//! (arch/x86/kernel/apic/vector.c on top of the matrix). Conversions only.

use msixcore_core::vector_domain::{BootOptions, MatrixEvent, VectorDomain as CoreDomain};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

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
    /// Boot an x86 host with `ncpus` CPUs (the `online` ones brought up, default all);
    /// `nodes[cpu]` is each CPU's NUMA node; `system_vectors`, `first_system_vector` and
    /// `legacy_irqs` replace the preset's; `trace` records every matrix change.
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        ncpus, *, posted_msi = false, reservation_mode = true, nodes = None, online = None,
        system_vectors = None, first_system_vector = None, legacy_irqs = None, trace = false
    ))]
    fn new(
        ncpus: &Bound<'_, PyAny>,
        posted_msi: bool,
        reservation_mode: bool,
        nodes: Option<&Bound<'_, PyAny>>,
        online: Option<&Bound<'_, PyAny>>,
        system_vectors: Option<&Bound<'_, PyAny>>,
        first_system_vector: Option<&Bound<'_, PyAny>>,
        legacy_irqs: Option<&Bound<'_, PyAny>>,
        trace: bool,
    ) -> PyResult<Self> {
        let ncpus = uint(ncpus, "ncpus")?;
        let nodes = nodes.map(|n| uint_list(n, "nodes")).transpose()?;
        let mut preset = x86_preset(posted_msi);
        if let Some(v) = system_vectors {
            preset.system_vectors = uint_list(v, "system_vectors")?;
            preset.name = format!("{} (custom system vectors)", preset.name);
        }
        if let Some(v) = first_system_vector {
            preset.first_system_vector = uint(v, "first_system_vector")?;
        }
        if let Some(v) = legacy_irqs {
            preset.nr_legacy_irqs = uint(v, "legacy_irqs")?;
        }
        let options = BootOptions {
            online: online.map(|o| uint_list(o, "online")).transpose()?,
            trace,
        };
        let inner = CoreDomain::boot(ncpus, &preset, reservation_mode, nodes, &options).py()?;
        Ok(Self { inner })
    }

    /// Allocate an interrupt (`x86_vector_alloc_irqs` + MSI early activation); its number
    /// (the lowest free one, or `irq`).
    #[pyo3(signature = (affinity = None, managed = false, node = None, *, irq = None))]
    fn alloc_irq(
        &mut self,
        affinity: Option<&Bound<'_, PyAny>>,
        managed: bool,
        node: Option<&Bound<'_, PyAny>>,
        irq: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let affinity = affinity.map(|a| uint_list(a, "affinity")).transpose()?;
        let node = node.map(|n| uint(n, "node")).transpose()?;
        match irq {
            None => self.inner.alloc_irq(affinity.as_deref(), managed, node),
            Some(irq) => {
                let irq = uint(irq, "irq")?;
                self.inner
                    .alloc_irq_at(irq, affinity.as_deref(), managed, node)
            }
        }
        .py()
    }

    /// A legacy ISA irq taken over by the IOAPIC (`vector_configure_legacy`).
    #[pyo3(signature = (irq, activated = false))]
    fn alloc_legacy_irq(&mut self, irq: &Bound<'_, PyAny>, activated: bool) -> PyResult<()> {
        self.inner
            .alloc_legacy_irq(uint(irq, "irq")?, activated)
            .py()
    }

    /// User affinity change (`irq_set_affinity`); a move keeps the old vector pending.
    fn set_affinity(
        &mut self,
        irq: &Bound<'_, PyAny>,
        affinity: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let irq = uint(irq, "irq")?;
        let affinity = uint_list(affinity, "affinity")?;
        self.inner.set_affinity(irq, &affinity).py()
    }

    /// Free the previous vector of a pending move (`vector_free_moved`).
    fn complete_move(&mut self, irq: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner.complete_move(uint(irq, "irq")?).py()
    }

    /// `(cpu, vector)` of the previous vector while a move is pending, else None.
    fn pending_move(&self, irq: &Bound<'_, PyAny>) -> PyResult<Option<(u32, u32)>> {
        Ok(self.inner.irq(uint(irq, "irq")?).py()?.pending_move())
    }

    /// The matrix events recorded since the last call: `(tracepoint, fields)` pairs.
    fn take_trace<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for e in self.inner.take_trace() {
            let pair = PyTuple::new(
                py,
                [
                    e.op.tracepoint().into_pyobject(py)?.into_any(),
                    event_dict(py, &e)?.into_any(),
                ],
            )?;
            out.append(pair)?;
        }
        Ok(out)
    }

    /// Legacy ISA irqs whose boot vector on CPU 0 is still assigned.
    fn legacy_vectors_held(&self) -> Vec<u32> {
        self.inner.legacy_vectors_held()
    }

    /// Whether matrix changes are recorded (see `take_trace`).
    #[getter]
    fn get_tracing(&self) -> bool {
        self.inner.tracing()
    }

    /// Turn the recording on or off (off drops what was recorded).
    #[setter]
    fn set_tracing(&mut self, on: bool) {
        self.inner.set_tracing(on);
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
        self.inner.debug_show(ind).py()
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

/// One matrix event as the fields its tracepoint prints (flags as 0/1), plus `irq` when the
/// domain was serving one and the call's flag (`is_managed` for a free, `reserved` for an
/// alloc).
fn event_dict<'py>(py: Python<'py>, e: &MatrixEvent) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    if let Some(irq) = e.irq {
        d.set_item("irq", irq)?;
    }
    if let Some(cpu) = e.cpu {
        d.set_item("cpu", cpu)?;
    }
    if let Some(bit) = e.bit {
        d.set_item("bit", bit)?;
    }
    if e.op.per_cpu() {
        d.set_item("online", u32::from(e.online))?;
        d.set_item("avl", e.available)?;
        d.set_item("alloc", e.allocated)?;
        d.set_item("managed", e.managed)?;
    }
    match e.op.tracepoint() {
        "irq_matrix_free" => d.set_item("is_managed", u32::from(e.flag))?,
        "irq_matrix_alloc" => d.set_item("reserved", u32::from(e.flag))?,
        _ => {}
    }
    d.set_item("online_maps", e.online_maps)?;
    d.set_item("global_avl", e.global_available)?;
    d.set_item("global_rsvd", e.global_reserved)?;
    d.set_item("total_alloc", e.total_allocated)?;
    Ok(d)
}

/// Register the class on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyVectorDomain>()
}
