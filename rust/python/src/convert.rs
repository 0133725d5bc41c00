//! Integer arguments at the binding boundary, in one place.
//!
//! Every int a Python caller passes goes through [`checked_int`]: it must be an `int` (or an
//! object with `__index__`, such as a numpy integer), not a `bool`, and inside the range the
//! model takes. So whatever the caller passes, the answer is one of
//! - `TypeError` ("`{name} must be an int, not {type}`") for a non-int,
//! - `InvalidArgument` (a `ValueError`) for a `bool` or an int out of range
//!   ("`{name} = {value} is out of range {min}..={max}`"),
//! - `MmioError` instead of `InvalidArgument` for the bus arguments of an MMIO access
//!   ([`mmio_uint`]),
//!
//! never `OverflowError` and never a panic. Nothing here truncates: values are range-checked
//! on the Python int before they become Rust integers.

use msixcore_core::Error;
use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

use crate::errors::{invalid_argument, to_py};

/// Rust unsigned integer types an argument can become.
pub trait UInt: Copy {
    /// The type's largest value.
    const MAX_U128: u128;
    /// The value as `u128`.
    fn to_u128(self) -> u128;
    /// Convert a value already checked to be at most [`UInt::MAX_U128`].
    fn from_checked(v: u128) -> Self;
}

macro_rules! impl_uint {
    ($($t:ty),*) => {$(
        impl UInt for $t {
            const MAX_U128: u128 = <$t>::MAX as u128;
            fn to_u128(self) -> u128 {
                self as u128
            }
            fn from_checked(v: u128) -> Self {
                v as $t
            }
        }
    )*};
}
impl_uint!(u8, u16, u32, u64, u128, usize);

/// `obj` as a Python int in `min..=max`; `out_of_range` builds the error for a value outside.
fn checked_int<'py>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    min: i128,
    max: u128,
    out_of_range: fn(String) -> PyErr,
) -> PyResult<Bound<'py, PyInt>> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid_argument(format!("{name} must be an int, not bool")));
    }
    let int = match obj.cast::<PyInt>() {
        Ok(int) => int.clone(),
        Err(_) => index(obj, name)?,
    };
    // Compare in Rust: i128 covers every value a caller can mean; a larger
    // int is out of range unless it fits u128 and `max` allows it.
    let in_range = match int.extract::<i128>() {
        Ok(v) => v >= min && u128::try_from(v).map_or(true, |u| u <= max),
        Err(_) => int.extract::<u128>().is_ok_and(|u| u <= max),
    };
    if !in_range {
        let range = if min == 0 {
            format!("0..={max:#x}")
        } else {
            format!("{min}..={max}")
        };
        return Err(out_of_range(format!(
            "{name} = {int} is out of range {range}"
        )));
    }
    Ok(int)
}

/// `operator.index(obj)` for non-`int` integers (numpy scalars); anything else is a TypeError.
fn index<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyInt>> {
    let not_int = || {
        let ty = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        PyTypeError::new_err(format!("{name} must be an int, not {ty}"))
    };
    if !obj.get_type().hasattr("__index__")? {
        return Err(not_int());
    }
    let value = obj.call_method0("__index__")?;
    value.cast_into::<PyInt>().map_err(|_| not_int())
}

/// An unsigned int argument in `0..=max` (`max` at most `T::MAX`); else `InvalidArgument`.
pub fn uint_max<T: UInt>(obj: &Bound<'_, PyAny>, name: &str, max: T) -> PyResult<T> {
    let int = checked_int(obj, name, 0, max.to_u128(), invalid_argument)?;
    Ok(T::from_checked(int.extract::<u128>()?))
}

/// An unsigned int argument over `T`'s whole range; else `InvalidArgument`.
pub fn uint<T: UInt>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<T> {
    let int = checked_int(obj, name, 0, T::MAX_U128, invalid_argument)?;
    Ok(T::from_checked(int.extract::<u128>()?))
}

/// Widest `debug_show` indentation accepted: the text repeats it on every
/// line, so a huge width would only exhaust memory.
pub const MAX_INDENT: i32 = 4096;

/// A `debug_show` indentation: an int with `|ind| <= MAX_INDENT`.
pub fn indent(obj: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    let Some(obj) = obj else { return Ok(0) };
    let int = checked_int(
        obj,
        "ind",
        i128::from(-MAX_INDENT),
        MAX_INDENT as u128,
        invalid_argument,
    )?;
    int.extract::<i32>()
}

/// An MMIO offset, size or value over `T`'s range; out of range is an `MmioError` (the bus
/// does not decode it), a non-int a `TypeError`.
pub fn mmio_uint<T: UInt>(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<T> {
    let int = checked_int(obj, name, 0, T::MAX_U128, |msg| to_py(Error::Mmio(msg)))?;
    Ok(T::from_checked(int.extract::<u128>()?))
}

/// A real-number argument: a `float`, an `int` or anything with `__float__` (numpy floats), not
/// a `bool` (`InvalidArgument`, as for ints). An int too large for a float is `InvalidArgument`,
/// never `OverflowError`; NaN and infinities pass through for the core to judge.
pub fn real(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<f64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(invalid_argument(format!(
            "{name} must be a number, not bool"
        )));
    }
    if obj.is_instance_of::<PyFloat>() {
        return obj.extract::<f64>();
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<f64>()
            .map_err(|_| invalid_argument(format!("{name} = {obj} is too large for a float")));
    }
    if !obj.get_type().hasattr("__float__")? {
        let ty = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        return Err(PyTypeError::new_err(format!(
            "{name} must be a number, not {ty}"
        )));
    }
    obj.extract::<f64>()
}

/// Longest list argument: every list names CPUs, nodes or vectors, and a host has at most
/// 8192 CPUs (`NR_CPUS` with `MAXSMP`), so a longer list is refused before it is walked.
pub const MAX_LIST_LEN: usize = 8192;

/// Any iterable of ints (list, tuple, set, range, ...) as `u32`s, e.g. a CPU set; each item is
/// checked like [`uint`] (named `{name}[i]`). At most [`MAX_LIST_LEN`] items: a sized
/// iterable (`range(2**40)`) is refused by its length, an unsized one after that many items.
pub fn uint_list(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u32>> {
    let too_long = || invalid_argument(format!("{name}: more than {MAX_LIST_LEN} items"));
    // `len()` of a huge range overflows Py_ssize_t: that too is too long.
    if obj.hasattr("__len__")? {
        match obj.len() {
            Ok(n) if n > MAX_LIST_LEN => return Err(too_long()),
            Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => return Err(too_long()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    let mut out = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        if i == MAX_LIST_LEN {
            return Err(too_long());
        }
        out.push(uint(&item?, &format!("{name}[{i}]"))?);
    }
    Ok(out)
}

/// An optional int argument with a Rust-side default (the signature shows `...`; give the
/// real default in `text_signature` and the stub).
pub enum IntArg {
    /// Not given: use this value.
    Default(u128),
    /// Given by the caller, checked by [`IntArg::get`] with its name.
    Given(Py<PyAny>),
}

impl IntArg {
    /// Default 0.
    pub const ZERO: IntArg = IntArg::Default(0);

    /// The value, checked against `0..=max` like [`uint_max`] (a default is taken as is).
    pub fn get<T: UInt>(&self, py: Python<'_>, name: &str, max: T) -> PyResult<T> {
        match self {
            IntArg::Default(v) => Ok(T::from_checked((*v).min(max.to_u128()))),
            IntArg::Given(obj) => uint_max(obj.bind(py), name, max),
        }
    }
}

impl<'a, 'py> FromPyObject<'a, 'py> for IntArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        Ok(IntArg::Given(obj.to_owned().unbind()))
    }
}

/// Python's spelling of a bool, for `__repr__`.
pub const fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}
