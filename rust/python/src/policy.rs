//! A hypervisor policy written in Python. The engine calls it on
//! control-plane events only; each method returns the host operations to
//! perform, and the core runs them through the same path as the built-in
//! policies (`msixcore_core::policy::step`), failure mode included.
//!
//! Operations are tuples naming a `HostOp`: `("intx_disable",)`,
//! `("intx_enable",)`, `("enable_no_vec",)`, `("disable_index",)`,
//! `("enable_vectors", [bool, ...])` or `("enable_vectors", [bool, ...],
//! closes_resize)`, `("set_signalling", k)`, `("add_vector", k)`,
//! `("switch_to_userspace", k)`, `("hypercall",)` and `("untrapped", k)`.
//! `negotiate` returns `None` (no hypercall), the most vectors to grant (each
//! requested at the guest's unmask) or `(count, request_at_grant)`;
//! the optional `negotiated(dev, granted)` hears the host's answer and the
//! optional `rollback(dev)` is called when `fail_request` refuses an action.

use std::sync::{Arc, Mutex};

use msixcore_core::host::HostOp;
use msixcore_core::policy::{HostOps, Negotiation, Policy};
use msixcore_core::Error;
use pyo3::exceptions::{PyException, PyMemoryError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::convert::uint;

/// Where a policy call leaves an exception that must reach Python unchanged
/// (`KeyboardInterrupt`, `SystemExit`, `MemoryError`…): the engine sees an
/// error and stops; the binding then raises this one instead of its own.
pub type Escaped = Arc<Mutex<Option<PyErr>>>;

/// A Python object used as the engine's policy.
pub struct PyPolicy {
    obj: Py<PyAny>,
    escaped: Escaped,
}

impl PyPolicy {
    /// Wrap `obj`; exceptions that are not ordinary errors go to `escaped`.
    pub fn new(obj: Py<PyAny>, escaped: Escaped) -> Self {
        Self { obj, escaped }
    }

    /// The engine's error for `e` raised by `method`; a `BaseException` that
    /// is not an `Exception`, or a `MemoryError`, is also kept (the first one)
    /// to be raised unchanged.
    fn raised(&self, py: Python<'_>, method: &str, e: PyErr) -> Error {
        let err = py_err(method, &e);
        if !e.is_instance_of::<PyException>(py) || e.is_instance_of::<PyMemoryError>(py) {
            if let Ok(mut slot) = self.escaped.lock() {
                slot.get_or_insert(e);
            }
        }
        err
    }

    fn call(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
    ) -> msixcore_core::Result<Vec<HostOp>> {
        Python::attach(|py| {
            let args = args(py).map_err(|e| self.raised(py, method, e))?;
            let out = self
                .obj
                .bind(py)
                .call_method1(method, args)
                .map_err(|e| self.raised(py, method, e))?;
            parse_ops(method, &out)
        })
    }

    /// Call `method` if the object has it (an optional hook).
    fn notify(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
    ) -> msixcore_core::Result<()> {
        Python::attach(|py| {
            let obj = self.obj.bind(py);
            if !obj
                .hasattr(method)
                .map_err(|e| self.raised(py, method, e))?
            {
                return Ok(());
            }
            let args = args(py).map_err(|e| self.raised(py, method, e))?;
            obj.call_method1(method, args)
                .map(drop)
                .map_err(|e| self.raised(py, method, e))
        })
    }
}

fn py_err(method: &str, e: &PyErr) -> Error {
    Error::InvalidArgument(format!("policy.{method} raised: {e}"))
}

/// `obj` for an error message: its repr cut to 120 characters, or its type
/// when the repr fails (a deeply nested value). Never Python's `str()` via
/// `Display`, which reports a failure as an "unraisable" exception.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    const MAX: usize = 120;
    match obj.repr().and_then(|r| r.to_str().map(str::to_owned)) {
        Ok(text) if text.chars().count() > MAX => {
            format!("{}...", text.chars().take(MAX).collect::<String>())
        }
        Ok(text) => text,
        Err(_) => {
            let ty = obj
                .get_type()
                .name()
                .map_or_else(|_| "?".to_string(), |n| n.to_string());
            format!("<{ty} object>")
        }
    }
}

fn parse_ops(method: &str, out: &Bound<'_, PyAny>) -> msixcore_core::Result<Vec<HostOp>> {
    if out.is_none() {
        return Ok(Vec::new());
    }
    let bad = |what: String| Error::InvalidArgument(format!("policy.{method} returned {what}"));
    let list = out
        .cast::<PyList>()
        .map_err(|_| bad("something other than a list of operation tuples".into()))?;
    let mut ops = Vec::with_capacity(list.len());
    for item in list.iter() {
        let t = item
            .cast::<PyTuple>()
            .map_err(|_| bad(format!("a non-tuple operation {}", describe(&item))))?;
        let shown = describe(t.as_any());
        let name: String = t
            .get_item(0)
            .and_then(|n| n.extract())
            .map_err(|_| bad(format!("an operation without a name: {shown}")))?;
        let arity = |n: usize| -> msixcore_core::Result<()> {
            if t.len() == n {
                Ok(())
            } else {
                Err(bad(format!("{name} with {} fields: {shown}", t.len() - 1)))
            }
        };
        let vector = || -> msixcore_core::Result<u32> {
            arity(2)?;
            // The one int conversion: a bool or a float is not an entry.
            t.get_item(1)
                .and_then(|v| uint::<u32>(&v, "entry"))
                .map_err(|_| bad(format!("{name} without a valid entry: {shown}")))
        };
        ops.push(match name.as_str() {
            "intx_disable" => arity(1).map(|()| HostOp::IntxDisable)?,
            "intx_enable" => arity(1).map(|()| HostOp::IntxEnable)?,
            "enable_no_vec" => arity(1).map(|()| HostOp::EnableNoVec)?,
            "disable_index" => arity(1).map(|()| HostOp::DisableIndex)?,
            "hypercall" => arity(1).map(|()| HostOp::Hypercall)?,
            "enable_vectors" => {
                if !(2..=3).contains(&t.len()) {
                    return Err(bad(format!(
                        "enable_vectors with {} fields: {shown}",
                        t.len() - 1
                    )));
                }
                let with_fd: Vec<bool> = t
                    .get_item(1)
                    .and_then(|v| v.extract())
                    .map_err(|_| bad(format!("enable_vectors without a list of bools: {shown}")))?;
                if with_fd.is_empty() || with_fd.len() > 2048 {
                    return Err(bad(format!(
                        "enable_vectors with {} vectors (1..=2048)",
                        with_fd.len()
                    )));
                }
                let closes_resize = match t.get_item(2) {
                    Ok(v) => v.extract::<bool>().map_err(|_| {
                        bad(format!(
                            "enable_vectors with a non-bool closes_resize: {shown}"
                        ))
                    })?,
                    Err(_) => false,
                };
                HostOp::EnableVectors {
                    with_fd,
                    closes_resize,
                }
            }
            "set_signalling" => HostOp::SetSignalling { vector: vector()? },
            "add_vector" => HostOp::AddVector { vector: vector()? },
            "switch_to_userspace" => HostOp::SwitchToUserspace { vector: vector()? },
            "untrapped" => HostOp::Untrapped { vector: vector()? },
            other => return Err(bad(format!("unknown operation {other:?}"))),
        });
    }
    Ok(ops)
}

impl Policy for PyPolicy {
    fn name(&self) -> String {
        Python::attach(|py| {
            self.obj
                .bind(py)
                .getattr("name")
                .and_then(|n| n.extract::<String>())
                .unwrap_or_else(|_| "python".to_string())
        })
    }

    fn negotiate(
        &mut self,
        dev: u32,
        minvec: u32,
        maxvec: u32,
    ) -> msixcore_core::Result<Negotiation> {
        Python::attach(|py| {
            let out = self
                .obj
                .bind(py)
                .call_method1("negotiate", (dev, minvec, maxvec))
                .map_err(|e| self.raised(py, "negotiate", e))?;
            if out.is_none() {
                return Ok(Negotiation::Local);
            }
            // A count (each vector requested at the guest's unmask), or
            // (count, request_at_grant).
            // Through the one int conversion: True is not a count.
            let parsed = uint::<u32>(&out, "count")
                .map(|grant| (grant, false))
                .or_else(|_| {
                    let (grant, request) = out.extract::<(Bound<'_, PyAny>, bool)>()?;
                    Ok::<_, PyErr>((uint::<u32>(&grant, "count")?, request))
                });
            parsed
                .map(|(grant, request)| Negotiation::Hypercall { grant, request })
                .map_err(|_| {
                    Error::InvalidArgument(format!(
                        "policy.negotiate returned {}, not None, a count or (count, bool)",
                        describe(&out)
                    ))
                })
        })
    }

    fn negotiated(&mut self, dev: u32, granted: Option<u32>) -> msixcore_core::Result<()> {
        self.notify("negotiated", |py| (dev, granted).into_pyobject(py))
    }

    fn enable(&mut self, dev: u32, ops: &mut HostOps) -> msixcore_core::Result<()> {
        ops.extend(self.call("enable", |py| PyTuple::new(py, [dev]))?);
        Ok(())
    }

    fn unmask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> msixcore_core::Result<()> {
        ops.extend(self.call("unmask", |py| PyTuple::new(py, [dev, k]))?);
        Ok(())
    }

    fn mask(&mut self, dev: u32, k: u32, ops: &mut HostOps) -> msixcore_core::Result<()> {
        ops.extend(self.call("mask", |py| PyTuple::new(py, [dev, k]))?);
        Ok(())
    }

    fn disable(&mut self, dev: u32, ops: &mut HostOps) -> msixcore_core::Result<()> {
        ops.extend(self.call("disable", |py| PyTuple::new(py, [dev]))?);
        Ok(())
    }

    fn rollback(&mut self, dev: u32) -> msixcore_core::Result<()> {
        self.notify("rollback", |py| PyTuple::new(py, [dev]))
    }
}
