//! The Python exception hierarchy and the one mapping from [`crate::Error`].
//!
//! ```text
//! IntentEngineError(Exception)
//! ├── InvalidInputError(IntentEngineError, ValueError)      shapes, NaN/inf, bad settings
//! ├── NumericalError(IntentEngineError, ArithmeticError)    numerical failures
//! └── BackendUnavailableError(IntentEngineError, RuntimeError)
//! ```
//! The classes need two bases, which `create_exception!` cannot express, so they are built
//! with `type(name, bases, dict)` once per interpreter.

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::exceptions::{PyArithmeticError, PyException, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::error::{Error, ErrorKind};

struct Types {
    base: Py<PyType>,
    invalid: Py<PyType>,
    numerical: Py<PyType>,
    backend: Py<PyType>,
}

static TYPES: PyOnceLock<Types> = PyOnceLock::new();

fn new_type<'py>(
    py: Python<'py>,
    name: &str,
    doc: &str,
    bases: Vec<Bound<'py, PyType>>,
) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", "intent_engine")?;
    dict.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, dict))?
        .cast_into::<PyType>()?
        .unbind())
}

fn types(py: Python<'_>) -> PyResult<&Types> {
    TYPES.get_or_try_init(py, || {
        let base = new_type(
            py,
            "IntentEngineError",
            "Base class of every error raised by intent_engine.",
            vec![py.get_type::<PyException>()],
        )?;
        let b = base.bind(py).clone();
        Ok::<_, PyErr>(Types {
            invalid: new_type(
                py,
                "InvalidInputError",
                "Bad input: wrong shape or dtype, NaN/inf, or a setting out of range.",
                vec![b.clone(), py.get_type::<PyValueError>()],
            )?,
            numerical: new_type(
                py,
                "NumericalError",
                "A numerical failure on valid input (e.g. a matrix that is not positive definite).",
                vec![b.clone(), py.get_type::<PyArithmeticError>()],
            )?,
            backend: new_type(
                py,
                "BackendUnavailableError",
                "The requested compute backend is not compiled in or not present.",
                vec![b, py.get_type::<PyRuntimeError>()],
            )?,
            base,
        })
    })
}

pub(crate) fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    let t = types(py)?;
    m.add("IntentEngineError", t.base.bind(py))?;
    m.add("InvalidInputError", t.invalid.bind(py))?;
    m.add("NumericalError", t.numerical.bind(py))?;
    m.add("BackendUnavailableError", t.backend.bind(py))?;
    Ok(())
}

fn raise(py: Python<'_>, kind: ErrorKind, msg: String) -> PyErr {
    match types(py) {
        Ok(t) => {
            let ty = match kind {
                ErrorKind::InvalidInput => &t.invalid,
                ErrorKind::Numerical => &t.numerical,
                ErrorKind::BackendUnavailable => &t.backend,
                ErrorKind::Internal => &t.base,
            };
            PyErr::from_type(ty.bind(py).clone(), msg)
        }
        Err(e) => e,
    }
}

/// Converts a crate error into the matching Python exception.
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    raise(py, e.kind(), e.to_string())
}

/// An `InvalidInputError` naming the argument.
pub(crate) fn invalid(py: Python<'_>, name: &str, detail: impl std::fmt::Display) -> PyErr {
    raise(py, ErrorKind::InvalidInput, format!("{name}: {detail}"))
}

/// Runs `f` detached from the interpreter, mapping errors and catching panics.
pub(crate) fn run<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    finish(py, py.detach(|| catch_unwind(AssertUnwindSafe(f))))
}

/// The core's argument name replaced by the binding's where they differ (e.g. the core's
/// `observation` is Python's `z`), so the message names what the caller passed.
pub(crate) fn renamed(e: Error, renames: &[(&'static str, &'static str)]) -> Error {
    e.renamed(|name| {
        renames
            .iter()
            .find(|(from, _)| *from == name)
            .map_or(name, |(_, to)| *to)
    })
}

/// As [`run`], with the core's argument names mapped to Python's (see [`renamed`]).
pub(crate) fn run_renamed<T: Send>(
    py: Python<'_>,
    renames: &[(&'static str, &'static str)],
    f: impl FnOnce() -> crate::Result<T> + Send,
) -> PyResult<T> {
    run(py, || f().map_err(|e| renamed(e, renames)))
}

/// As [`run`], but attached: for calls of a few microseconds, where releasing and re-taking
/// the interpreter would cost a noticeable share.
pub(crate) fn run_attached<T>(py: Python<'_>, f: impl FnOnce() -> crate::Result<T>) -> PyResult<T> {
    finish(py, catch_unwind(AssertUnwindSafe(f)))
}

/// Maps a result or a caught panic to Python.
fn finish<T>(py: Python<'_>, r: std::thread::Result<crate::Result<T>>) -> PyResult<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(to_py(py, &e)),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(ToString::to_string)
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(raise(
                py,
                ErrorKind::Internal,
                format!("internal error (please report): {msg}"),
            ))
        }
    }
}

/// A two-way string option: `false` for `off`, `true` for `on`, anything else an
/// `InvalidInputError` naming the argument and both accepted values.
pub(crate) fn choice(
    py: Python<'_>,
    name: &str,
    value: &str,
    off: &str,
    on: &str,
) -> PyResult<bool> {
    match value {
        v if v == off => Ok(false),
        v if v == on => Ok(true),
        other => Err(invalid(
            py,
            name,
            format_args!("expected {off:?} or {on:?}, got {other:?}"),
        )),
    }
}
