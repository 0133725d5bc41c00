//! The core's Poisson interval and per-million rates, for `msixcore.stats`.

use msixcore_core::poisson_interval;
use pyo3::prelude::*;

use crate::convert::{real, uint};
use crate::errors::IntoPyResult;

/// The `confidence` argument; 0.95 when not given.
fn confidence_of(obj: Option<&Bound<'_, PyAny>>) -> PyResult<f64> {
    obj.map_or(Ok(0.95), |c| real(c, "confidence"))
}

/// Garwood's exact interval `(lower, upper)` for a Poisson mean observed as
/// `count`, at `confidence`.
#[pyfunction]
#[pyo3(signature = (count, confidence=None), text_signature = "(count, confidence=0.95)")]
fn garwood_interval(
    count: &Bound<'_, PyAny>,
    confidence: Option<&Bound<'_, PyAny>>,
) -> PyResult<(f64, f64)> {
    let confidence = confidence_of(confidence)?;
    poisson_interval::garwood_interval(uint::<u64>(count, "count")?, confidence).py()
}

/// `count` per million of `resizes`, with its interval: `(value, lower,
/// upper)`, each `None` when there were no resizes.
#[pyfunction]
#[pyo3(
    signature = (count, resizes, confidence=None),
    text_signature = "(count, resizes, confidence=0.95)"
)]
fn rate_per_million(
    count: &Bound<'_, PyAny>,
    resizes: &Bound<'_, PyAny>,
    confidence: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Option<f64>, Option<f64>, Option<f64>)> {
    let confidence = confidence_of(confidence)?;
    let r = poisson_interval::per_million(
        uint::<u64>(count, "count")?,
        uint::<u64>(resizes, "resizes")?,
        confidence,
    )
    .py()?;
    Ok((r.value, r.lower, r.upper))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(garwood_interval, m)?)?;
    m.add_function(wrap_pyfunction!(rate_per_million, m)?)?;
    Ok(())
}
