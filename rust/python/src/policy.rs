//! A hypervisor policy written in Python. The engine calls it on
//! control-plane events only (negotiate, enable, unmask, mask, disable);
//! each method returns the host operations to perform, which run in Rust.
//!
//! Operations are tuples: `("enable_no_vec",)`, `("disable_index",)`,
//! `("enable_vectors", [bool, ...])` (one flag per vector: requested or
//! not), `("set_signalling", entry)` (one vector on a host that cannot add
//! vectors dynamically) and `("add_vector", entry)` (dynamic MSI-X add).
//! `negotiate` returns `None` (no hypercall: the driver takes maxvec) or the
//! number of vectors to grant (0 refuses); the engine then sets them up.
//! A host allocation failure is handled by the config's `on_failure`.

use msixcore_core::config::FailureMode;
use msixcore_core::policy::{is_host_failure, Ctx, Negotiated, Policy, StepResult};
use msixcore_core::vfio::HostOp;
use msixcore_core::Error;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// One host operation a Python policy asked for.
enum PyOp {
    Vfio(HostOp),
    AddVector(u32),
}

/// A Python object used as the engine's policy.
pub struct PyPolicy {
    obj: Py<PyAny>,
    on_failure: FailureMode,
}

impl PyPolicy {
    /// Wrap `obj`; `on_failure` says what a host allocation failure does.
    pub fn new(obj: Py<PyAny>, on_failure: FailureMode) -> Self {
        Self { obj, on_failure }
    }

    fn call(
        &self,
        method: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
    ) -> msixcore_core::Result<Vec<PyOp>> {
        Python::attach(|py| {
            let args = args(py).map_err(|e| py_err(method, &e))?;
            let out = self
                .obj
                .bind(py)
                .call_method1(method, args)
                .map_err(|e| py_err(method, &e))?;
            parse_ops(method, &out)
        })
    }

    fn run(
        &mut self,
        ctx: &mut Ctx<'_>,
        ops: &[PyOp],
        entry: Option<u32>,
    ) -> msixcore_core::Result<StepResult> {
        let mut after_disable = false;
        for op in ops {
            let r = match op {
                PyOp::Vfio(op) => {
                    let closes = after_disable && matches!(op, HostOp::EnableVectors { .. });
                    after_disable = matches!(op, HostOp::DisableIndex);
                    ctx.exec(op, false, closes)
                }
                PyOp::AddVector(k) => {
                    after_disable = false;
                    ctx.exec(&HostOp::SetSignalling { vector: *k }, true, false)
                }
            };
            match r {
                Ok(()) => {}
                Err(Error::NoSpace(_)) => {
                    return Ok(
                        match (self.on_failure, ctx.host.index_enabled(ctx.dev), entry) {
                            (FailureMode::Kill, _, _) => StepResult::Kill,
                            (FailureMode::FailRequest, _, _) => StepResult::Refused,
                            (FailureMode::Qemu, true, Some(k)) => StepResult::Dead(vec![k]),
                            (FailureMode::Qemu, true, None) => StepResult::Ok,
                            (FailureMode::Qemu, false, _) => StepResult::DeadAll,
                        },
                    )
                }
                Err(e) => return Err(e),
            }
        }
        Ok(StepResult::Ok)
    }
}

fn py_err(method: &str, e: &PyErr) -> Error {
    Error::InvalidArgument(format!("policy.{method} raised: {e}"))
}

fn parse_ops(method: &str, out: &Bound<'_, PyAny>) -> msixcore_core::Result<Vec<PyOp>> {
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
            .map_err(|_| bad(format!("a non-tuple operation {item}")))?;
        let name: String = t
            .get_item(0)
            .and_then(|n| n.extract())
            .map_err(|_| bad(format!("an operation without a name: {t}")))?;
        let entry = || -> msixcore_core::Result<u32> {
            t.get_item(1)
                .and_then(|v| v.extract::<u32>())
                .map_err(|_| bad(format!("{name} without a valid entry: {t}")))
        };
        ops.push(match name.as_str() {
            "enable_no_vec" => PyOp::Vfio(HostOp::EnableNoVec),
            "disable_index" => PyOp::Vfio(HostOp::DisableIndex),
            "enable_vectors" => {
                let with_fd: Vec<bool> = t
                    .get_item(1)
                    .and_then(|v| v.extract())
                    .map_err(|_| bad(format!("enable_vectors without a list of bools: {t}")))?;
                if with_fd.is_empty() || with_fd.len() > 2048 {
                    return Err(bad(format!(
                        "enable_vectors with {} vectors (1..=2048)",
                        with_fd.len()
                    )));
                }
                PyOp::Vfio(HostOp::EnableVectors { with_fd })
            }
            "set_signalling" => PyOp::Vfio(HostOp::SetSignalling { vector: entry()? }),
            "add_vector" => PyOp::AddVector(entry()?),
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
        ctx: &mut Ctx<'_>,
        minvec: u32,
        maxvec: u32,
    ) -> msixcore_core::Result<Negotiated> {
        let dev = ctx.dev;
        let granted: Option<u32> = Python::attach(|py| {
            let out = self
                .obj
                .bind(py)
                .call_method1("negotiate", (dev, minvec, maxvec))
                .map_err(|e| py_err("negotiate", &e))?;
            if out.is_none() {
                return Ok(None);
            }
            out.extract::<u32>().map(Some).map_err(|_| {
                Error::InvalidArgument(format!(
                    "policy.negotiate returned {out}, not None or a count"
                ))
            })
        })?;
        let Some(n) = granted else {
            return Ok(Negotiated::Local(maxvec));
        };
        if n == 0 || n < minvec || n > maxvec {
            return Ok(Negotiated::Refused);
        }
        if ctx.host.index_enabled(dev) {
            ctx.exec(&HostOp::DisableIndex, false, false)?;
        }
        match ctx.exec(
            &HostOp::EnableVectors {
                with_fd: vec![true; n as usize],
            },
            false,
            false,
        ) {
            Ok(()) => Ok(Negotiated::Granted(n)),
            Err(e) if is_host_failure(&e) => Ok(Negotiated::Refused),
            Err(e) => Err(e),
        }
    }

    fn enable(&mut self, ctx: &mut Ctx<'_>) -> msixcore_core::Result<StepResult> {
        let dev = ctx.dev;
        let ops = self.call("enable", |py| PyTuple::new(py, [dev]))?;
        self.run(ctx, &ops, None)
    }

    fn unmask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> msixcore_core::Result<StepResult> {
        let dev = ctx.dev;
        let ops = self.call("unmask", |py| PyTuple::new(py, [dev, k]))?;
        self.run(ctx, &ops, Some(k))
    }

    fn mask(&mut self, ctx: &mut Ctx<'_>, k: u32) -> msixcore_core::Result<StepResult> {
        let dev = ctx.dev;
        let ops = self.call("mask", |py| PyTuple::new(py, [dev, k]))?;
        self.run(ctx, &ops, None)
    }

    fn disable(&mut self, ctx: &mut Ctx<'_>) -> msixcore_core::Result<StepResult> {
        let dev = ctx.dev;
        let ops = self.call("disable", |py| PyTuple::new(py, [dev]))?;
        self.run(ctx, &ops, None)
    }
}
