//! Integer arguments from Python: any `int` is accepted at the boundary and
//! range-checked here, so a negative or too-wide value is `InvalidArgument`
//! (a `ValueError`), never an `OverflowError` or a panic.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyInt;

use crate::errors::invalid_argument;

/// Check that `obj` is an int in `0..=max` and return it.
pub fn uint(obj: &Bound<'_, PyAny>, name: &str, max: u128) -> PyResult<u128> {
    let Ok(int) = obj.cast::<PyInt>() else {
        let ty = obj.get_type().name()?;
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, not {ty}"
        )));
    };
    if int.lt(0)? || int.gt(max)? {
        return Err(invalid_argument(format!(
            "{name} = {int} is out of range 0..={max:#x}"
        )));
    }
    int.extract::<u128>()
}

/// [`uint`] for a 16-bit value.
pub fn uint16(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u16> {
    uint(obj, name, u128::from(u16::MAX)).map(|v| v as u16)
}

/// [`uint`] for a 32-bit value.
pub fn uint32(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u32> {
    uint(obj, name, u128::from(u32::MAX)).map(|v| v as u32)
}

/// [`uint`] for a 64-bit value.
pub fn uint64(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    uint(obj, name, u128::from(u64::MAX)).map(|v| v as u64)
}

/// An optional int argument with a Rust-side default (shown as `...` in the
/// signature; the stub documents the real default).
pub enum IntArg {
    /// Not given: use this value.
    Default(u128),
    /// Given by the caller, checked later with its name.
    Given(Py<PyAny>),
}

impl IntArg {
    /// Default 0.
    pub const ZERO: IntArg = IntArg::Default(0);

    /// The value, checked against `0..=max`.
    pub fn get(&self, py: Python<'_>, name: &str, max: u128) -> PyResult<u128> {
        match self {
            IntArg::Default(v) => Ok(*v),
            IntArg::Given(obj) => uint(obj.bind(py), name, max),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for IntArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(IntArg::Given(obj.to_owned().unbind()))
    }
}
