//! The array boundary: the one place that turns Python input into checked NumPy views.
//!
//! float64 C-contiguous arrays are borrowed without copying (read-only ones too). Lists/tuples
//! and float16/32 arrays are converted to float64; non-contiguous views (transposed, strided,
//! negative strides) are copied to C order, so they give the answer of the contiguous copy.
//! Integer, bool, complex and object dtypes and wrong dimensionality are rejected with an
//! `InvalidInputError` that names the argument. Finiteness is checked by the Rust core, which
//! also names the argument.

use numpy::{
    PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyReadwriteArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyList, PyTuple};

use super::errors::invalid;

fn describe(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".into(), |n| n.to_string())
}

/// Converts `obj` to a float64 NumPy array of dimension `ndim`, copying only when it must.
fn as_f64_array<'py>(
    obj: &Bound<'py, PyAny>,
    name: &'static str,
    ndim: usize,
    shape_hint: &str,
) -> PyResult<Bound<'py, PyUntypedArray>> {
    let py = obj.py();
    let arr = if let Ok(a) = obj.cast::<PyUntypedArray>() {
        a.clone()
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let np = py.import("numpy")?;
        let converted = np.call_method1("asarray", (obj, "float64")).map_err(|e| {
            invalid(
                py,
                name,
                format_args!("could not convert to a float64 array: {e}"),
            )
        })?;
        converted
            .cast_into::<PyUntypedArray>()
            .map_err(|_| invalid(py, name, "could not convert to a float64 array"))?
    } else {
        return Err(invalid(
            py,
            name,
            format_args!(
                "expected a NumPy array of shape {shape_hint}, got {}",
                describe(obj)
            ),
        ));
    };
    if arr.ndim() != ndim {
        return Err(invalid(
            py,
            name,
            format_args!(
                "expected a {ndim}-D array of shape {shape_hint}, got a {}-D array of shape {:?}",
                arr.ndim(),
                arr.shape()
            ),
        ));
    }
    let dtype = arr.dtype();
    let arr = match dtype.kind() {
        b'f' if dtype.is_equiv_to(&numpy::dtype::<f64>(py)) => arr,
        b'f' if dtype.itemsize() < 8 => arr
            .call_method1("astype", ("float64",))?
            .cast_into::<PyUntypedArray>()
            .map_err(|_| invalid(py, name, "could not convert to float64"))?,
        _ => {
            return Err(invalid(
                py,
                name,
                format_args!(
                    "dtype {} is not accepted; pass float64 (e.g. {name}.astype(np.float64))",
                    dtype.str().map_or_else(|_| "?".into(), |s| s.to_string())
                ),
            ))
        }
    };
    if !arr.is_c_contiguous() {
        // Transposed, strided or negative-stride views: one C-ordered copy, so the answer is
        // that of the contiguous array (the kernels read rows as slices).
        return py
            .import("numpy")?
            .call_method1("ascontiguousarray", (arr,))?
            .cast_into::<PyUntypedArray>()
            .map_err(|_| invalid(py, name, "could not make a contiguous copy"));
    }
    Ok(arr)
}

/// `InvalidInputError` naming `name` unless every value is finite (the core's message).
pub(crate) fn check_finite(py: Python<'_>, name: &'static str, v: &[f64]) -> PyResult<()> {
    crate::error::check_finite(name, v).map_err(|e| super::errors::to_py(py, &e))
}

/// A read-only `(n, d)` float64 view of `obj`.
pub(crate) fn matrix<'py>(
    obj: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<PyReadonlyArray2<'py, f64>> {
    let arr = as_f64_array(obj, name, 2, "(n, d)")?;
    let arr = arr
        .cast_into::<PyArray2<f64>>()
        .map_err(|_| invalid(obj.py(), name, "expected a float64 array"))?;
    arr.try_readonly()
        .map_err(|e| invalid(obj.py(), name, format_args!("cannot borrow the array: {e}")))
}

/// A read-only float64 vector view of `obj`.
pub(crate) fn vector<'py>(
    obj: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<PyReadonlyArray1<'py, f64>> {
    let arr = as_f64_array(obj, name, 1, "(n,)")?;
    let arr = arr
        .cast_into::<PyArray1<f64>>()
        .map_err(|_| invalid(obj.py(), name, "expected a float64 array"))?;
    arr.try_readonly()
        .map_err(|e| invalid(obj.py(), name, format_args!("cannot borrow the array: {e}")))
}

/// A writable `(n1, n2)` float64 C-contiguous output array (never converted: results must
/// land in the caller's buffer).
pub(crate) fn out_matrix<'py>(
    obj: &Bound<'py, PyAny>,
    name: &'static str,
) -> PyResult<PyReadwriteArray2<'py, f64>> {
    let py = obj.py();
    let arr = obj
        .cast::<PyArray2<f64>>()
        .map_err(|_| invalid(py, name, "must be a writable 2-D float64 NumPy array"))?;
    if !arr.is_c_contiguous() {
        return Err(invalid(py, name, "must be C-contiguous"));
    }
    arr.try_readwrite().map_err(|e| {
        invalid(
            py,
            name,
            format_args!("cannot borrow the array for writing: {e}"),
        )
    })
}

/// A scalar or a 1-D sequence of floats, as a vector (for length scales).
pub(crate) fn scalar_or_vector(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<Vec<f64>> {
    if obj.is_instance_of::<PyFloat>() || obj.is_instance_of::<PyInt>() {
        return Ok(vec![float(obj, name)?]);
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        if a.ndim() == 0 {
            return Ok(vec![float(obj, name)?]);
        }
    }
    Ok(vector(obj, name)?.as_array().to_vec())
}

/// A Python number as f64, with an `InvalidInputError` naming the argument otherwise.
pub(crate) fn float(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|_| {
        invalid(
            obj.py(),
            name,
            format_args!("expected a number, got {}", describe(obj)),
        )
    })
}

/// A thread count: 0 = all cores, 1 = the calling thread, k = a pool of k threads.
pub(crate) fn par(py: Python<'_>, threads: i64) -> PyResult<crate::Par> {
    usize::try_from(threads)
        .map(crate::Par::threads)
        .map_err(|_| {
            invalid(
                py,
                "threads",
                format_args!("must be >= 0 (0 = all cores), got {threads}"),
            )
        })
}
