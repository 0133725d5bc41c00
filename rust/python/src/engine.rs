//! `msixcore._core.run_simulation` and `Simulation`: the discrete-event
//! engine from Python. Configs and results cross as JSON text (validated on
//! the Rust side, errors naming the field); runs release the GIL; bulk
//! deliveries come back as numpy arrays.

use msixcore_core::config::{schema, Action, PolicyKind, SimConfig};
use msixcore_core::engine::{
    merge_results, replications_json, run_replications as core_replications, Engine, RunResult,
    TraceOptions,
};
use msixcore_core::storm::Storm;
use msixcore_core::Error;
use numpy::{IntoPyArray, PyArray1};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::uint;
use crate::errors::{invalid_argument, IntoPyResult};
use crate::policy::{Escaped, PyPolicy};

/// Build an engine from JSON, with a Python policy object if one is given,
/// and the slot where that policy leaves exceptions that must reach Python
/// unchanged. Parses, then validates once (in `Engine::new`).
fn build(config_json: &str, policy: Option<Py<PyAny>>) -> PyResult<(Engine, Escaped)> {
    let cfg = SimConfig::parse_json(config_json).py()?;
    let escaped = Escaped::default();
    let mut engine = match policy {
        None => Engine::new(cfg).py()?,
        Some(obj) => {
            Engine::with_policy(cfg, Box::new(PyPolicy::new(obj, escaped.clone()))).py()?
        }
    };
    // Ctrl-C: the engine looks every few milliseconds; a pending signal
    // stops it, and its exception (KeyboardInterrupt) is what the caller gets.
    let signals = escaped.clone();
    engine.set_interrupt_poll(Box::new(move || {
        Python::attach(|py| match py.check_signals() {
            Ok(()) => false,
            Err(e) => {
                if let Ok(mut slot) = signals.lock() {
                    slot.get_or_insert(e);
                }
                true
            }
        })
    }));
    Ok((engine, escaped))
}

/// `r` as a Python result: an error a policy call escaped with (a
/// `KeyboardInterrupt`, `SystemExit`, `MemoryError`) is raised unchanged
/// instead of the engine's own.
fn finish<T>(r: msixcore_core::Result<T>, escaped: &Escaped) -> PyResult<T> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => match escaped.lock().ok().and_then(|mut slot| slot.take()) {
            Some(original) => Err(original),
            None => Err(crate::errors::to_py(e)),
        },
    }
}

/// Validate a JSON config: `None`, or `InvalidArgument` naming the first bad
/// field — the check every run makes, and the only one.
#[pyfunction]
fn validate_config(config_json: &str) -> PyResult<()> {
    SimConfig::from_json(config_json).py().map(drop)
}

/// A JSON config with every default filled in (parsed, not validated).
#[pyfunction]
fn normalize_config(config_json: &str) -> PyResult<String> {
    SimConfig::parse_json(config_json)
        .and_then(|c| c.to_json())
        .py()
}

/// The config schema as JSON: enumerations, actions, limits and defaults.
#[pyfunction]
fn config_schema() -> String {
    schema().to_string()
}

/// The behaviours of a kernel/QEMU pair, as JSON (`early_enable` overrides
/// the kernel's).
#[pyfunction]
#[pyo3(signature = (kernel, qemu, early_enable=None))]
fn platform_behaviours(kernel: &str, qemu: &str, early_enable: Option<bool>) -> PyResult<String> {
    let p = msixcore_core::versions::Platform::parse(kernel, qemu, early_enable).py()?;
    Ok(p.behaviours().to_string())
}

/// The storm's parameters at their defaults, as JSON.
#[pyfunction]
fn storm_defaults() -> PyResult<String> {
    Storm::default().to_json().py()
}

/// The storm's JSON config under `policy` (no stop condition, no seed).
#[pyfunction]
fn storm_config(params_json: &str, policy: &str) -> PyResult<String> {
    let storm = Storm::from_json(params_json).py()?;
    let kind = PolicyKind::from_name(policy).py()?;
    storm.config(kind).into_unchecked().to_json().py()
}

/// The storm's expected loss under `noresize` with edge semantics, run to
/// `resizes` requests.
#[pyfunction]
fn storm_closed_form_lost(params_json: &str, resizes: &Bound<'_, PyAny>) -> PyResult<f64> {
    let resizes = uint::<u64>(resizes, "resizes")?;
    Ok(Storm::from_json(params_json)
        .py()?
        .closed_form_lost(resizes))
}

/// Merge JSON results of independent replications (in the given order)
/// into one JSON result: the core's one merge.
#[pyfunction]
fn merge_run_results(results_json: Vec<String>) -> PyResult<String> {
    let results = results_json
        .iter()
        .map(|t| RunResult::from_json(t))
        .collect::<msixcore_core::Result<Vec<_>>>()
        .py()?;
    if results.is_empty() {
        return Err(crate::errors::to_py(Error::InvalidArgument(
            "results: nothing to merge".into(),
        )));
    }
    merge_results(&results).and_then(|r| r.to_json()).py()
}

/// Run a simulation described by a JSON config; returns the JSON result.
/// `policy` is an optional Python policy object (see `msixcore.policies`).
/// The GIL is released while it runs (a Python policy re-takes it for its
/// control-plane calls only).
#[pyfunction]
#[pyo3(signature = (config_json, policy=None))]
fn run_simulation(
    py: Python<'_>,
    config_json: &str,
    policy: Option<Py<PyAny>>,
) -> PyResult<String> {
    let (mut engine, escaped) = build(config_json, policy)?;
    let r = py.detach(move || engine.run().and_then(|r| r.to_json()));
    finish(r, &escaped)
}

/// Run one replication per seed on `threads` threads (0 = all cores) and
/// return the merged JSON result with each seed's books under
/// `replications`. Same seeds give the same bytes whatever `threads` is.
#[pyfunction]
#[pyo3(signature = (config_json, seeds, threads=None))]
fn run_replications(
    py: Python<'_>,
    config_json: &str,
    seeds: &Bound<'_, PyAny>,
    threads: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let seeds = seeds
        .try_iter()?
        .map(|s| uint::<u64>(&s?, "seeds[]"))
        .collect::<PyResult<Vec<u64>>>()?;
    let threads = threads.map_or(Ok(0), |t| uint::<usize>(t, "threads"))?;
    let cfg = SimConfig::parse_json(config_json).py()?;
    py.detach(move || {
        core_replications(&cfg, &seeds, threads).and_then(|r| replications_json(&seeds, &r))
    })
    .py()
}

/// A guest action from its Python form, through the JSON the core parses
/// (so the messages name the same fields as a config's).
fn action_from_py(action: &Bound<'_, PyAny>) -> PyResult<Action> {
    let dumps = action.py().import("json")?.getattr("dumps")?;
    let kwargs = PyDict::new(action.py());
    kwargs.set_item("allow_nan", false)?;
    let text: String = match dumps.call((action,), Some(&kwargs)) {
        Ok(text) => text.extract()?,
        Err(e) => {
            return Err(invalid_argument(format!(
                "action: not representable as JSON ({e})"
            )))
        }
    };
    Action::from_json(&text).py()
}

/// A simulation you can step, inspect and drain from Python. Calls from
/// several threads take turns (each waits for the engine, without holding
/// the GIL); `cancel` needs no turn.
#[pyclass(name = "Simulation", module = "msixcore._core")]
pub struct PySimulation {
    /// Behind a mutex because the CPU queues' ring ends may move between
    /// threads but not be shared; Python calls take it in turn.
    engine: Mutex<Engine>,
    /// Exceptions of a Python policy, or a signal, that must reach the
    /// caller unchanged.
    escaped: Escaped,
    /// Set by `cancel` from any thread: the running step stops.
    cancel: Arc<AtomicBool>,
}

fn poisoned<T>(_: T) -> msixcore_core::Error {
    msixcore_core::Error::Accounting(
        "the simulation was left inconsistent by an earlier failure".into(),
    )
}

impl PySimulation {
    /// Run `f` on the engine: wait for it without the GIL (another thread
    /// may be stepping it, and a Python policy there needs the GIL), then
    /// raise what escaped a policy or the signal poll, else the core's error.
    fn with_engine<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Engine) -> msixcore_core::Result<T> + Send,
    ) -> PyResult<T> {
        let r = py.detach(|| {
            let mut engine = self.engine.lock().map_err(poisoned)?;
            f(&mut engine)
        });
        finish(r, &self.escaped)
    }
}

#[pymethods]
impl PySimulation {
    /// Build a simulation from a JSON config (the schema of `run_simulation`),
    /// optionally with a Python policy object.
    #[new]
    #[pyo3(signature = (config_json, policy=None))]
    fn new(config_json: &str, policy: Option<Py<PyAny>>) -> PyResult<Self> {
        let (engine, escaped) = build(config_json, policy)?;
        Ok(Self {
            cancel: engine.cancel_flag(),
            engine: Mutex::new(engine),
            escaped,
        })
    }

    /// Advance to `t_ns` (or the stop condition); returns whether the run finished.
    fn step_until(&self, py: Python<'_>, t_ns: &Bound<'_, PyAny>) -> PyResult<bool> {
        let t_ns = uint::<u64>(t_ns, "t_ns")?;
        self.with_engine(py, move |e| e.step_until(t_ns))
    }

    /// Run to the stop condition; returns the JSON result (books checked).
    fn run(&self, py: Python<'_>) -> PyResult<String> {
        self.with_engine(py, |e| e.run().and_then(|r| r.to_json()))
    }

    /// The JSON result so far (settles open stalls; checks the books).
    fn result(&self, py: Python<'_>) -> PyResult<String> {
        self.with_engine(py, |e| e.result().and_then(|r| r.to_json()))
    }

    /// Run guest action `action` on device `dev` now, as a program step
    /// would; returns when the step completes, ns. `action` is a program
    /// step's action as a dict (`{"op": "unmask", "entry": 3}`); anything
    /// the core refuses raises `InvalidArgument`.
    fn act(
        &self,
        py: Python<'_>,
        dev: &Bound<'_, PyAny>,
        action: &Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let dev = uint::<u32>(dev, "dev")?;
        let action = action_from_py(action)?;
        self.with_engine(py, move |e| e.act(dev, action))
    }

    /// Stop the step running now (from any thread): it raises
    /// `InvalidOperation` (`cancelled`) where the run's state is whole, and
    /// the simulation can go on. With no step running, the next one stops at
    /// once.
    fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Simulated time now, ns.
    #[getter]
    fn now_ns(&self, py: Python<'_>) -> PyResult<u64> {
        self.with_engine(py, |e| Ok(e.now_ns()))
    }

    /// The policy's name (built-in, or the Python policy's ``name``).
    #[getter]
    fn policy(&self, py: Python<'_>) -> PyResult<String> {
        self.with_engine(py, |e| Ok(e.policy_name()))
    }

    /// Whether the stop condition was reached.
    #[getter]
    fn finished(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_engine(py, |e| Ok(e.finished()))
    }

    /// Fired count and each outcome's count so far.
    fn books<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let b = self.with_engine(py, |e| Ok(e.books()))?;
        let d = PyDict::new(py);
        d.set_item("fired", b.fired)?;
        for o in msixcore_core::books::Outcome::ALL {
            d.set_item(o.name(), b.get(o))?;
        }
        Ok(d)
    }

    /// Record the run's timeline (docs/trace.md): what happens from
    /// `from_ns` to `to_ns` (None: the end of the run), at most
    /// `max_events` events (None: the core's default). Before the first step
    /// only, and not in aggregated mode.
    #[pyo3(signature = (from_ns=None, to_ns=None, max_events=None))]
    fn trace(
        &self,
        py: Python<'_>,
        from_ns: Option<&Bound<'_, PyAny>>,
        to_ns: Option<&Bound<'_, PyAny>>,
        max_events: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let defaults = TraceOptions::default();
        let opt = |v: Option<&Bound<'_, PyAny>>, name: &str, d: u64| -> PyResult<u64> {
            v.map_or(Ok(d), |v| uint::<u64>(v, name))
        };
        let opts = TraceOptions {
            from_ns: opt(from_ns, "from_ns", 0)?,
            to_ns: opt(to_ns, "to_ns", defaults.to_ns)?,
            max_events: opt(max_events, "max_events", defaults.max_events)?,
        };
        self.with_engine(py, move |e| e.enable_trace(opts))
    }

    /// The trace so far as Trace Event Format JSON (open windows drawn to now).
    fn trace_json(&self, py: Python<'_>) -> PyResult<String> {
        self.with_engine(py, |e| e.trace_json())
    }

    /// What `trace_json` writes now: `events`, `dropped` (by the cap),
    /// `first_dropped_ns` (None if nothing was) and `outside_window`.
    fn trace_summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.with_engine(py, |e| e.trace_summary())?;
        let d = PyDict::new(py);
        d.set_item("events", s.events)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("first_dropped_ns", s.first_dropped_ns)?;
        d.set_item("outside_window", s.outside_window)?;
        Ok(d)
    }

    /// Take the deliveries waiting on host CPU `cpu` as numpy arrays:
    /// `time_ns` (uint64), `device`, `entry`, `cpu` (uint32), `vector` (uint8).
    fn drain<'py>(&self, py: Python<'py>, cpu: &Bound<'_, PyAny>) -> PyResult<Bound<'py, PyDict>> {
        let cpu = uint::<u32>(cpu, "cpu")?;
        let items = self.with_engine(py, move |e| e.drain(cpu))?;
        let d = PyDict::new(py);
        let col = |f: fn(&msixcore_core::queue::Delivery) -> u64| {
            items.iter().map(f).collect::<Vec<u64>>()
        };
        d.set_item("time_ns", col(|x| x.time_ns).into_pyarray(py))?;
        let c32 = |f: fn(&msixcore_core::queue::Delivery) -> u32| {
            items.iter().map(f).collect::<Vec<u32>>()
        };
        d.set_item("device", c32(|x| x.device).into_pyarray(py))?;
        d.set_item("entry", c32(|x| x.entry).into_pyarray(py))?;
        d.set_item("cpu", c32(|x| x.cpu).into_pyarray(py))?;
        let v: Vec<u8> = items.iter().map(|x| x.vector).collect();
        let arr: Bound<'py, PyArray1<u8>> = v.into_pyarray(py);
        d.set_item("vector", arr)?;
        Ok(d)
    }
}

/// Register the engine API.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run_simulation, m)?)?;
    m.add_function(wrap_pyfunction!(run_replications, m)?)?;
    m.add_function(wrap_pyfunction!(validate_config, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_config, m)?)?;
    m.add_function(wrap_pyfunction!(config_schema, m)?)?;
    m.add_function(wrap_pyfunction!(storm_defaults, m)?)?;
    m.add_function(wrap_pyfunction!(platform_behaviours, m)?)?;
    m.add_function(wrap_pyfunction!(storm_config, m)?)?;
    m.add_function(wrap_pyfunction!(storm_closed_form_lost, m)?)?;
    m.add_function(wrap_pyfunction!(merge_run_results, m)?)?;
    m.add_class::<PySimulation>()?;
    Ok(())
}
