//! `intent_engine.kernels`: Python classes over [`crate::gp::Kernel`].

use ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray3};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyClassInitializer;

use super::array;
use super::errors::{invalid, run, to_py};
use crate::gp::{Kernel, KernelWorkspace, MaternNu};

/// Base class of all kernels. Kernels are immutable; compose them with `+` and `*`.
#[pyclass(name = "Kernel", module = "intent_engine._core", subclass, frozen)]
pub(crate) struct PyKernel {
    pub(crate) inner: Kernel,
}

fn init(py: Python<'_>, k: crate::Result<Kernel>) -> PyResult<PyClassInitializer<PyKernel>> {
    k.map(|inner| PyClassInitializer::from(PyKernel { inner }))
        .map_err(|e| to_py(py, &e))
}

/// Wraps a Rust kernel in the Python class matching its kind.
pub(crate) fn wrap(py: Python<'_>, k: Kernel) -> PyResult<Py<PyAny>> {
    let name = k.name();
    let base = PyClassInitializer::from(PyKernel { inner: k });
    match name {
        "RBF" => Ok(Bound::new(py, base.add_subclass(Rbf))?.into_any().unbind()),
        "Matern" => Ok(Bound::new(py, base.add_subclass(Matern))?
            .into_any()
            .unbind()),
        "RationalQuadratic" => Ok(Bound::new(py, base.add_subclass(RationalQuadratic))?
            .into_any()
            .unbind()),
        "Periodic" => Ok(Bound::new(py, base.add_subclass(Periodic))?
            .into_any()
            .unbind()),
        "Linear" => Ok(Bound::new(py, base.add_subclass(Linear))?
            .into_any()
            .unbind()),
        "Constant" => Ok(Bound::new(py, base.add_subclass(Constant))?
            .into_any()
            .unbind()),
        "White" => Ok(Bound::new(py, base.add_subclass(White))?
            .into_any()
            .unbind()),
        "Sum" => Ok(Bound::new(py, base.add_subclass(Sum))?.into_any().unbind()),
        _ => Ok(Bound::new(py, base.add_subclass(Product))?
            .into_any()
            .unbind()),
    }
}

/// `other` as a kernel: a kernel, or a positive number meaning `Constant(number)`.
/// `Ok(None)` means "not a kernel operand" (the operator returns `NotImplemented`).
fn operand(other: &Bound<'_, PyAny>) -> PyResult<Option<Kernel>> {
    if let Ok(k) = other.cast::<PyKernel>() {
        return Ok(Some(k.get().inner.clone()));
    }
    match other.extract::<f64>() {
        Ok(v) => Kernel::constant(v).map(Some).map_err(|_| {
            invalid(
                other.py(),
                "other",
                format_args!(
                    "a number combined with a kernel must be positive and finite, got {v}"
                ),
            )
        }),
        Err(_) => Ok(None),
    }
}

fn combine(
    py: Python<'_>,
    a: Kernel,
    b: Option<Kernel>,
    f: fn(Kernel, Kernel) -> crate::Result<Kernel>,
) -> PyResult<Py<PyAny>> {
    match b {
        Some(b) => wrap(py, f(a, b).map_err(|e| to_py(py, &e))?),
        None => Ok(py.NotImplemented()),
    }
}

#[pymethods]
impl PyKernel {
    /// The covariance matrix K(X1, X2), or K(X1, X1) when X2 is None (only then does a White
    /// kernel add its diagonal). `out`, if given, must be a C-contiguous float64 array of shape
    /// (n1, n2) and is filled and returned. `threads`: 0 = all cores, 1 = calling thread only.
    #[pyo3(signature = (X1, X2=None, *, out=None, threads=0))]
    #[allow(non_snake_case)]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        X1: &Bound<'py, PyAny>,
        X2: Option<&Bound<'py, PyAny>>,
        out: Option<&Bound<'py, PyAny>>,
        threads: i64,
    ) -> PyResult<Py<PyAny>> {
        let par = array::par(py, threads)?;
        let x1 = array::matrix(X1, "X1")?;
        let x2 = X2.map(|x| array::matrix(x, "X2")).transpose()?;
        let k = &self.inner;
        let (v1, v2) = (x1.as_array(), x2.as_ref().map(|x| x.as_array()));
        if let Some(out) = out {
            {
                let mut o = array::out_matrix(out, "out")?;
                let ov = o.as_array_mut();
                run(py, || {
                    k.matrix_into(v1, v2, ov, &mut KernelWorkspace::new(), par)
                })?;
            }
            return Ok(out.clone().unbind());
        }
        let m: Array2<f64> = run(py, || k.matrix(v1, v2, par))?;
        Ok(m.into_pyarray(py).into_any().unbind())
    }

    /// The diagonal k(x_i, x_i) of K(X, X), without forming the matrix.
    #[allow(non_snake_case)]
    fn diag<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = array::matrix(X, "X")?;
        let v = x.as_array();
        let k = &self.inner;
        Ok(run(py, || k.diag(v))?.into_pyarray(py))
    }

    /// Gradient of K(X, X) with respect to the log-hyperparameters `theta`, shape
    /// (n, n, n_params) (scikit-learn's `eval_gradient` layout).
    #[pyo3(signature = (X, *, threads=0))]
    #[allow(non_snake_case)]
    fn gradient<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        threads: i64,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let par = array::par(py, threads)?;
        let x = array::matrix(X, "X")?;
        let v = x.as_array();
        let k = &self.inner;
        Ok(run(py, || k.gradient(v, par))?.into_pyarray(py))
    }

    /// Log-hyperparameters (natural log), in the documented order.
    #[getter]
    fn theta<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        PyArray1::from_vec(py, self.inner.theta())
    }

    /// A copy of this kernel with log-hyperparameters `theta`.
    fn with_theta(&self, py: Python<'_>, theta: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let t = array::vector(theta, "theta")?;
        let t = t.as_array().to_vec();
        let k = self.inner.with_theta(&t).map_err(|e| to_py(py, &e))?;
        wrap(py, k)
    }

    /// Number of hyperparameters.
    #[getter]
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }

    /// Names of the hyperparameters, in `theta` order.
    #[getter]
    fn param_names(&self) -> Vec<String> {
        self.inner.param_names()
    }

    /// Input dimension fixed by ARD length scales, or None.
    #[getter]
    fn n_dims(&self) -> Option<usize> {
        self.inner.input_dim()
    }

    /// Hyperparameter values (not logs) by name.
    fn get_params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, t) in self.inner.param_names().into_iter().zip(self.inner.theta()) {
            d.set_item(n, t.exp())?;
        }
        Ok(d)
    }

    /// The operands (k1, k2) of a sum or product; None for a leaf kernel.
    #[getter]
    fn operands(&self, py: Python<'_>) -> PyResult<Option<(Py<PyAny>, Py<PyAny>)>> {
        self.inner
            .operands()
            .map(|(a, b)| Ok((wrap(py, a)?, wrap(py, b)?)))
            .transpose()
    }

    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        combine(py, self.inner.clone(), operand(other)?, Kernel::sum)
    }

    fn __radd__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match operand(other)? {
            Some(o) => combine(py, o, Some(self.inner.clone()), Kernel::sum),
            None => Ok(py.NotImplemented()),
        }
    }

    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        combine(py, self.inner.clone(), operand(other)?, Kernel::product)
    }

    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match operand(other)? {
            Some(o) => combine(py, o, Some(self.inner.clone()), Kernel::product),
            None => Ok(py.NotImplemented()),
        }
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyKernel>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.name().hash(&mut h);
        for t in self.inner.theta() {
            t.to_bits().hash(&mut h);
        }
        h.finish()
    }

    fn __repr__(&self) -> String {
        self.inner.to_string()
    }

    /// The kernel as JSON (data only).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_json().map_err(|e| to_py(py, &e))
    }

    /// Rebuilds a kernel from to_json() output.
    #[staticmethod]
    fn from_json(py: Python<'_>, json: &str) -> PyResult<Py<PyAny>> {
        let k = Kernel::from_json(json).map_err(|e| to_py(py, &e))?;
        wrap(py, k)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let f = py
            .import("intent_engine._core")?
            .getattr("_kernel_from_json")?;
        Ok((f, (self.inner.to_json().map_err(|e| to_py(py, &e))?,)))
    }
}

macro_rules! leaf_class {
    ($rust:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[pyclass(name = $name, module = "intent_engine._core", extends = PyKernel, frozen)]
        pub(crate) struct $rust;
    };
}

leaf_class!(
    Rbf,
    "RBF",
    "Squared-exponential kernel variance * exp(-r^2 / 2), r scaled by (ARD) length scales."
);
leaf_class!(
    Matern,
    "Matern",
    "Matern kernel with nu in {0.5, 1.5, 2.5} and (ARD) length scales."
);
leaf_class!(
    RationalQuadratic,
    "RationalQuadratic",
    "Rational-quadratic kernel variance * (1 + r^2 / (2 alpha))^-alpha."
);
leaf_class!(
    Periodic,
    "Periodic",
    "Periodic kernel variance * exp(-2 sin^2(pi |x - y| / period) / length_scale^2)."
);
leaf_class!(
    Linear,
    "Linear",
    "Linear kernel variance * x . y (add a Constant for an offset)."
);
leaf_class!(Constant, "Constant", "Constant kernel: value everywhere.");
leaf_class!(
    White,
    "White",
    "White noise: noise on the diagonal of K(X, X), zero between distinct sets."
);
leaf_class!(Sum, "Sum", "Sum of two kernels, k1 + k2.");
leaf_class!(Product, "Product", "Product of two kernels, k1 * k2.");

#[pymethods]
impl Rbf {
    #[new]
    #[pyo3(signature = (length_scale=None, variance=1.0))]
    fn new(
        py: Python<'_>,
        length_scale: Option<&Bound<'_, PyAny>>,
        variance: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let ls = length_scale.map_or(Ok(vec![1.0]), |l| {
            array::scalar_or_vector(l, "length_scale")
        })?;
        Ok(init(py, Kernel::squared_exponential(variance, &ls))?.add_subclass(Rbf))
    }
}

#[pymethods]
impl Matern {
    #[new]
    #[pyo3(signature = (nu=1.5, length_scale=None, variance=1.0))]
    fn new(
        py: Python<'_>,
        nu: f64,
        length_scale: Option<&Bound<'_, PyAny>>,
        variance: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let nu = MaternNu::from_f64(nu).map_err(|e| to_py(py, &e))?;
        let ls = length_scale.map_or(Ok(vec![1.0]), |l| {
            array::scalar_or_vector(l, "length_scale")
        })?;
        Ok(init(py, Kernel::matern(nu, variance, &ls))?.add_subclass(Matern))
    }
}

#[pymethods]
impl RationalQuadratic {
    #[new]
    #[pyo3(signature = (length_scale=None, alpha=1.0, variance=1.0))]
    fn new(
        py: Python<'_>,
        length_scale: Option<&Bound<'_, PyAny>>,
        alpha: f64,
        variance: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        let ls = length_scale.map_or(Ok(vec![1.0]), |l| {
            array::scalar_or_vector(l, "length_scale")
        })?;
        Ok(init(py, Kernel::rational_quadratic(variance, &ls, alpha))?
            .add_subclass(RationalQuadratic))
    }
}

#[pymethods]
impl Periodic {
    #[new]
    #[pyo3(signature = (length_scale=1.0, period=1.0, variance=1.0))]
    fn new(
        py: Python<'_>,
        length_scale: f64,
        period: f64,
        variance: f64,
    ) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::periodic(variance, length_scale, period))?.add_subclass(Periodic))
    }
}

#[pymethods]
impl Linear {
    #[new]
    #[pyo3(signature = (variance=1.0))]
    fn new(py: Python<'_>, variance: f64) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::linear(variance))?.add_subclass(Linear))
    }
}

#[pymethods]
impl Constant {
    #[new]
    #[pyo3(signature = (value=1.0))]
    fn new(py: Python<'_>, value: f64) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::constant(value))?.add_subclass(Constant))
    }
}

#[pymethods]
impl White {
    #[new]
    #[pyo3(signature = (noise=1.0))]
    fn new(py: Python<'_>, noise: f64) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::white(noise))?.add_subclass(White))
    }
}

#[pymethods]
impl Sum {
    #[new]
    fn new(
        py: Python<'_>,
        k1: PyRef<'_, PyKernel>,
        k2: PyRef<'_, PyKernel>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::sum(k1.inner.clone(), k2.inner.clone()))?.add_subclass(Sum))
    }
}

#[pymethods]
impl Product {
    #[new]
    fn new(
        py: Python<'_>,
        k1: PyRef<'_, PyKernel>,
        k2: PyRef<'_, PyKernel>,
    ) -> PyResult<PyClassInitializer<Self>> {
        Ok(init(py, Kernel::product(k1.inner.clone(), k2.inner.clone()))?.add_subclass(Product))
    }
}

/// Pickle support: a kernel from its JSON.
#[pyfunction]
fn _kernel_from_json(py: Python<'_>, json: &str) -> PyResult<Py<PyAny>> {
    let k = Kernel::from_json(json).map_err(|e| to_py(py, &e))?;
    wrap(py, k)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_kernel_from_json, m)?)?;
    m.add_class::<PyKernel>()?;
    m.add_class::<Rbf>()?;
    m.add_class::<Matern>()?;
    m.add_class::<RationalQuadratic>()?;
    m.add_class::<Periodic>()?;
    m.add_class::<Linear>()?;
    m.add_class::<Constant>()?;
    m.add_class::<White>()?;
    m.add_class::<Sum>()?;
    m.add_class::<Product>()?;
    Ok(())
}
