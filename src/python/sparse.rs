//! `intent_engine.SparseGaussianProcess`: the Python class over
//! [`crate::gp::SparseGaussianProcess`].
//!
//! Arguments are converted and checked while attached ([`super::array`]); fitting,
//! optimisation and prediction run detached through [`run`]. Targets may be 1-D or 2-D; a
//! model fitted on 1-D targets returns 1-D predictions.

use ndarray::{Array2, Axis};
use numpy::{IntoPyArray, PyArray2, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use super::array;
use super::errors::{invalid, run, to_py};
use super::kernels::{wrap, PyKernel};
use crate::gp::{InducingInit, OptimizeSettings, SparseGaussianProcess};

/// How the inducing inputs are chosen at `fit`.
#[derive(Clone, Debug)]
enum Inducing {
    KMeans,
    Greedy,
    Given(Array2<f64>),
}

/// Sparse Gaussian-process regression (Titsias' variational bound, SGPR/VFE) with inducing
/// points: O(n m^2) to fit, O(m^2) per predicted point.
///
/// `inducing` is "kmeans" (k-means++ seeded from `seed`, then Lloyd iterations),
/// "greedy" (greedy conditional-variance selection from the data) or an (m, d) array of
/// inducing inputs. `n_inducing` is clamped to the number of (distinct) training points.
/// Hyperparameter optimisation keeps the inducing inputs fixed.
#[pyclass(name = "SparseGaussianProcess", module = "intent_engine._core")]
pub(crate) struct PySparseGp {
    inner: SparseGaussianProcess,
    inducing: Inducing,
    n_inducing: usize,
    seed: u64,
    kmeans_iters: usize,
    /// Targets were 1-D at the last fit: predictions come back 1-D.
    y_1d: bool,
}

fn non_negative(py: Python<'_>, name: &'static str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| invalid(py, name, format_args!("must be >= 0, got {v}")))
}

#[pymethods]
impl PySparseGp {
    #[new]
    #[pyo3(signature = (
        kernel,
        noise_variance=1e-2,
        normalize_y=false,
        n_inducing=256,
        inducing=None,
        seed=0,
        *,
        kmeans_iters=30,
        threads=0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        kernel: PyRef<'_, PyKernel>,
        noise_variance: f64,
        normalize_y: bool,
        n_inducing: i64,
        inducing: Option<&Bound<'_, PyAny>>,
        seed: i64,
        kmeans_iters: i64,
        threads: i64,
    ) -> PyResult<Self> {
        let par = array::par(py, threads)?;
        let n_inducing = non_negative(py, "n_inducing", n_inducing)?;
        if n_inducing == 0 {
            return Err(invalid(py, "n_inducing", "must be at least 1"));
        }
        let seed = u64::try_from(seed)
            .map_err(|_| invalid(py, "seed", format_args!("must be >= 0, got {seed}")))?;
        let kmeans_iters = non_negative(py, "kmeans_iters", kmeans_iters)?;
        let inducing = match inducing {
            None => Inducing::KMeans,
            Some(obj) if obj.is_instance_of::<PyString>() => {
                let s: String = obj.extract()?;
                match s.as_str() {
                    "kmeans" => Inducing::KMeans,
                    "greedy" => Inducing::Greedy,
                    other => {
                        return Err(invalid(
                            py,
                            "inducing",
                            format_args!(
                                "expected \"kmeans\", \"greedy\" or an (m, d) array, got {other:?}"
                            ),
                        ))
                    }
                }
            }
            Some(obj) => Inducing::Given(array::matrix(obj, "inducing")?.as_array().to_owned()),
        };
        let inner = SparseGaussianProcess::new(kernel.inner.clone(), noise_variance)
            .map_err(|e| to_py(py, &e))?
            .with_normalize_y(normalize_y)
            .with_par(par);
        Ok(Self {
            inner,
            inducing,
            n_inducing,
            seed,
            kmeans_iters,
            y_1d: false,
        })
    }

    /// Chooses the inducing inputs, computes the posterior and returns self. `X` is (n, d);
    /// `y` is (n,) or (n, k) (k outputs sharing the kernel and noise).
    #[allow(non_snake_case)]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let py = slf.py();
        let x = array::matrix(X, "X")?;
        let ndim = match y.cast::<PyUntypedArray>() {
            Ok(a) => a.ndim(),
            Err(_) => py
                .import("numpy")?
                .call_method1("ndim", (y,))?
                .extract::<usize>()?,
        };
        let init = match &slf.inducing {
            Inducing::KMeans => InducingInit::KMeans {
                m: slf.n_inducing,
                seed: slf.seed,
                iters: slf.kmeans_iters,
            },
            Inducing::Greedy => InducingInit::Greedy { m: slf.n_inducing },
            Inducing::Given(z) => InducingInit::Given(z.clone()),
        };
        let xv = x.as_array();
        let inner = &mut slf.inner;
        let y_1d = ndim == 1;
        if y_1d {
            let yv = array::vector(y, "y")?;
            let yv = yv.as_array().insert_axis(Axis(1));
            run(py, || inner.fit(xv, yv, init))?;
        } else {
            let yv = array::matrix(y, "y")?;
            let yv = yv.as_array();
            run(py, || inner.fit(xv, yv, init))?;
        }
        slf.y_1d = y_1d;
        Ok(slf)
    }

    /// Predictive mean at X (n*, d); with `return_std` / `return_var` also the standard
    /// deviation / variance of the latent function (plus the noise variance if
    /// `include_noise`). Returns `mean`, `(mean, std)`, `(mean, var)` or `(mean, std, var)`.
    /// Shapes are (n*,) for a model fitted on 1-D targets, else (n*, k).
    #[pyo3(signature = (X, return_std=false, return_var=false, *, include_noise=false))]
    #[allow(non_snake_case)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        return_std: bool,
        return_var: bool,
        include_noise: bool,
    ) -> PyResult<Py<PyAny>> {
        let x = array::matrix(X, "X")?;
        let xv = x.as_array();
        let inner = &self.inner;
        let out = |a: Array2<f64>| -> PyResult<Py<PyAny>> {
            if self.y_1d {
                let v = a.index_axis(Axis(1), 0).to_owned();
                Ok(v.into_pyarray(py).into_any().unbind())
            } else {
                Ok(a.into_pyarray(py).into_any().unbind())
            }
        };
        if !(return_std || return_var) {
            let mean = run(py, || inner.predict_mean(xv))?;
            return out(mean);
        }
        let p = run(py, || inner.predict(xv, include_noise))?;
        let mut items = vec![out(p.mean)?];
        if return_std {
            items.push(out(p.var.mapv(f64::sqrt))?);
        }
        if return_var {
            items.push(out(p.var)?);
        }
        Ok(PyTuple::new(py, items)?.into_any().unbind())
    }

    /// The variational lower bound on the log marginal likelihood at the current
    /// hyperparameters (of the normalised targets when normalize_y is on).
    fn log_marginal_likelihood(&self, py: Python<'_>) -> PyResult<f64> {
        self.inner
            .log_marginal_likelihood_bound()
            .map_err(|e| to_py(py, &e))
    }

    /// Maximises the bound over the kernel's log-hyperparameters and log noise variance
    /// (bounded L-BFGS from the current values plus `n_restarts` random starts drawn from
    /// `seed`; inducing inputs fixed), refits, and returns the new bound.
    #[pyo3(signature = (n_restarts=0, seed=0))]
    fn optimize(&mut self, py: Python<'_>, n_restarts: i64, seed: i64) -> PyResult<f64> {
        let n_restarts = non_negative(py, "n_restarts", n_restarts)?;
        let seed = u64::try_from(seed)
            .map_err(|_| invalid(py, "seed", format_args!("must be >= 0, got {seed}")))?;
        let settings = OptimizeSettings {
            n_restarts,
            seed,
            ..OptimizeSettings::default()
        };
        let inner = &mut self.inner;
        run(py, || {
            inner.optimize(&settings, None)?;
            inner.log_marginal_likelihood_bound()
        })
    }

    /// The inducing inputs (m, d) chosen at fit (a copy), or None before fitting.
    #[getter]
    fn inducing_points<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        self.inner
            .inducing_points()
            .map(|z| z.to_owned().into_pyarray(py))
    }

    /// Number of training points (0 before fitting).
    #[getter]
    fn n_observations(&self) -> usize {
        self.inner.n_observations()
    }

    /// The Gaussian noise variance (in normalised units when normalize_y is on).
    #[getter]
    fn noise_variance(&self) -> f64 {
        self.inner.noise_variance()
    }

    /// The kernel with the current hyperparameters (a copy).
    #[getter]
    fn kernel(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        wrap(py, self.inner.kernel().clone())
    }

    /// The diagonal jitter added to K(Z, Z) at the last fit, or None before fitting.
    #[getter]
    fn jitter(&self) -> Option<f64> {
        self.inner.jitter()
    }

    /// The fitted model as JSON (format "intent_engine.SparseGaussianProcess" v1; data only).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_json().map_err(|e| to_py(py, &e))
    }

    /// Rebuilds a fitted model from to_json() output (refits with the stored inducing inputs).
    #[staticmethod]
    fn from_json(py: Python<'_>, json: &str) -> PyResult<Self> {
        let inner = run(py, || SparseGaussianProcess::from_json(json))?;
        let z = inner
            .inducing_points()
            .map(|z| z.to_owned())
            .unwrap_or_else(|| Array2::zeros((0, 0)));
        let (y_1d, n_inducing) = (inner.n_outputs() == 1, z.nrows().max(1));
        Ok(Self {
            inner,
            inducing: Inducing::Given(z),
            n_inducing,
            seed: 0,
            kmeans_iters: 30,
            y_1d,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let py = slf.py();
        let f = py
            .import("intent_engine._core")?
            .getattr("_sparse_gp_from_json")?;
        let json = slf.borrow().inner.to_json().map_err(|e| to_py(py, &e))?;
        Ok((f, (json,)))
    }

    fn __repr__(&self) -> String {
        format!(
            "SparseGaussianProcess(kernel={}, noise_variance={}, normalize_y={}, n_inducing={}, n_observations={})",
            self.inner.kernel(),
            self.inner.noise_variance(),
            if self.inner.normalize_y() { "True" } else { "False" },
            self.inner.inducing_points().map_or(self.n_inducing, |z| z.nrows()),
            self.inner.n_observations()
        )
    }
}

/// Adds `SparseGaussianProcess` to the module.
/// Pickle support: a fitted SparseGaussianProcess from its JSON (unfitted models do not
/// pickle: they hold nothing worth saving beyond their constructor arguments).
#[pyfunction]
fn _sparse_gp_from_json(py: Python<'_>, json: &str) -> PyResult<PySparseGp> {
    PySparseGp::from_json(py, json)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_sparse_gp_from_json, m)?)?;
    m.add_class::<PySparseGp>()
}
