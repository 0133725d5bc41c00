//! One mapping from core errors to the Python exception hierarchy:
//! `MsixError` at the root; `InvalidArgument` is also a `ValueError`.

use msixcore_core::Error;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

pyo3::create_exception!(
    msixcore._core,
    MsixError,
    PyException,
    "Base class of every msixcore error."
);
pyo3::create_exception!(
    msixcore._core,
    NoSpace,
    MsixError,
    "A resource ran out (the kernel's -ENOSPC)."
);
pyo3::create_exception!(
    msixcore._core,
    InvalidOperation,
    MsixError,
    "The kernel would WARN or BUG; `.sites` names the conditions."
);
pyo3::create_exception!(
    msixcore._core,
    MmioError,
    MsixError,
    "A bus access the device does not decode."
);
pyo3::create_exception!(
    msixcore._core,
    AccountingError,
    MsixError,
    "A simulation's books do not balance."
);

/// `InvalidArgument(MsixError, ValueError)`: built at import time because a
/// PyO3 exception macro takes a single base class.
static INVALID_ARGUMENT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn invalid_argument_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    INVALID_ARGUMENT
        .get_or_try_init(py, || {
            let bases = PyTuple::new(
                py,
                [
                    py.get_type::<MsixError>().into_any(),
                    py.get_type::<PyValueError>().into_any(),
                ],
            )?;
            let ns = PyDict::new(py);
            ns.set_item("__module__", "msixcore._core")?;
            ns.set_item(
                "__doc__",
                "A bad argument (the kernel's -EINVAL); also a ValueError.",
            )?;
            let t = py
                .get_type::<PyType>()
                .call1(("InvalidArgument", bases, ns))?
                .cast_into::<PyType>()?;
            Ok(t.unbind())
        })
        .map(|t| t.bind(py))
}

/// Build an `InvalidArgument` error with `msg`.
pub fn invalid_argument(msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match invalid_argument_type(py) {
        Ok(t) => PyErr::from_type(t.clone(), msg),
        Err(e) => e,
    })
}

/// Convert a core error into the matching Python exception.
pub fn to_py(err: Error) -> PyErr {
    let msg = err.to_string();
    match err {
        Error::InvalidArgument(_) => invalid_argument(msg),
        Error::NoSpace(_) => NoSpace::new_err(msg),
        Error::Mmio(_) => MmioError::new_err(msg),
        Error::Accounting(_) => AccountingError::new_err(msg),
        Error::InvalidOperation { sites, .. } => {
            let e = InvalidOperation::new_err(msg);
            Python::attach(|py| {
                if let Ok(list) = PyList::new(py, &sites) {
                    let _ = e.value(py).setattr("sites", list);
                }
            });
            e
        }
        // Stopped from outside (Simulation.cancel): the run can go on. A
        // signal's own exception is raised instead, by the caller.
        Error::Interrupted(_) => {
            let e = InvalidOperation::new_err(msg);
            Python::attach(|py| {
                if let Ok(list) = PyList::new(py, ["cancelled"]) {
                    let _ = e.value(py).setattr("sites", list);
                }
            });
            e
        }
        // A variant added to the core later: the base class, never a panic.
        _ => MsixError::new_err(msg),
    }
}

/// Extension trait: `result.py()?` turns a core result into a `PyResult`.
pub trait IntoPyResult<T> {
    /// Map the error side through [`to_py`].
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for msixcore_core::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Register the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MsixError", py.get_type::<MsixError>())?;
    m.add("InvalidArgument", invalid_argument_type(py)?)?;
    m.add("NoSpace", py.get_type::<NoSpace>())?;
    m.add("InvalidOperation", py.get_type::<InvalidOperation>())?;
    m.add("MmioError", py.get_type::<MmioError>())?;
    m.add("AccountingError", py.get_type::<AccountingError>())?;
    Ok(())
}
