//! `msixcore._core`: the PyO3 face of msixcore-core. Bindings only: every
//! model lives in the core crate; this crate converts types and errors and
//! releases the GIL around long work.

use pyo3::prelude::*;

mod convert;
mod engine;
mod errors;
mod irte;
mod matrix;
mod policy;
mod remap;
mod stats;
mod vector_domain;
mod vector_table;

/// The extension module. Each model registers its classes from its own file.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    vector_table::register(m)?;
    irte::register(m)?;
    remap::register(m)?;
    matrix::register(m)?;
    engine::register(m)?;
    vector_domain::register(m)?;
    stats::register(m)?;
    Ok(())
}
