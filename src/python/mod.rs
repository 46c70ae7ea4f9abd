//! Python bindings (feature `python`): a thin skin over the Rust API.
//!
//! Arguments are converted and validated while attached to the interpreter
//! ([`array`]); compute runs detached through [`errors::run`], which also turns any panic
//! into an exception so none escapes as `PanicException`.

mod array;
mod belief;
mod errors;
mod gp;
mod gpu;
mod intent;
mod kernels;
mod mpc;
mod sparse;

use pyo3::prelude::*;

/// Whether a CUDA device can be used (built with the `gpu` feature and a device present).
#[pyfunction]
fn cuda_available() -> bool {
    crate::Backend::cuda_available()
}

/// The SIMD tier the hot loops use on this CPU: "avx512", "avx2" or "scalar".
#[pyfunction]
fn simd_level() -> &'static str {
    match crate::linalg::simd::SimdLevel::current() {
        crate::linalg::simd::SimdLevel::Avx512 => "avx512",
        crate::linalg::simd::SimdLevel::Avx2 => "avx2",
        crate::linalg::simd::SimdLevel::Scalar => "scalar",
    }
}

/// The embedded default scenario, as a JSON string.
#[pyfunction]
fn default_scenario_json() -> &'static str {
    crate::DEFAULT_SCENARIO_JSON
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", crate::VERSION)?;
    errors::register(py, m)?;
    kernels::register(m)?;
    gp::register(m)?;
    gpu::register(m)?;
    sparse::register(m)?;
    mpc::register(m)?;
    belief::register(m)?;
    intent::register(m)?;
    m.add_function(wrap_pyfunction!(cuda_available, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(default_scenario_json, m)?)?;
    Ok(())
}
