//! Argument types of the binding boundary: Python ints and CPU lists become the core's values,
//! and anything out of range (negative, too large) raises `InvalidArgument` (a `ValueError`)
//! rather than `OverflowError` or a panic. Non-ints raise `TypeError`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::errors::invalid_argument;

fn int_in_range<T: TryFrom<i64>>(obj: Borrowed<'_, '_, PyAny>, range: &str) -> PyResult<T> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid_argument(format!(
            "expected an int in {range}, got a bool"
        )));
    }
    match obj.extract::<i64>() {
        Ok(v) => {
            T::try_from(v).map_err(|_| invalid_argument(format!("{v} is out of range {range}")))
        }
        Err(e) if obj.is_instance_of::<PyInt>() => {
            drop(e);
            Err(invalid_argument(format!("int out of range {range}")))
        }
        Err(e) => Err(e),
    }
}

/// A Python int in `0..=u32::MAX` (a CPU, bit, count).
#[derive(Clone, Copy, Debug)]
pub struct U32Arg(pub u32);

impl<'a, 'py> FromPyObject<'a, 'py> for U32Arg {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        int_in_range(obj, "0..=4294967295").map(U32Arg)
    }
}

/// A Python int in the C `int` range (the kernel's `int ind`).
#[derive(Clone, Copy, Debug)]
pub struct I32Arg(pub i32);

impl<'a, 'py> FromPyObject<'a, 'py> for I32Arg {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        int_in_range(obj, "-2147483648..=2147483647").map(I32Arg)
    }
}

/// Any iterable of ints (list, tuple, set, range, ...) taken as a CPU set.
#[derive(Clone, Debug)]
pub struct CpuList(pub Vec<u32>);

impl<'a, 'py> FromPyObject<'a, 'py> for CpuList {
    type Error = PyErr;
    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let mut out = Vec::new();
        for item in obj.try_iter()? {
            let item = item?;
            out.push(int_in_range::<u32>(item.as_borrowed(), "0..=4294967295")?);
        }
        Ok(CpuList(out))
    }
}
