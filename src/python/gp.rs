//! `intent_engine.GaussianProcess`: a thin skin over [`crate::gp::GaussianProcess`].

use ndarray::{Array2, Axis};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use pyo3::IntoPyObjectExt;

use super::array;
use super::errors::{invalid, run, run_renamed, to_py};
use super::kernels::{wrap, PyKernel};
use crate::gp::{GaussianProcess, GpSettings, GpWorkspace, HyperBounds, OptimizeSettings};

/// Exact Gaussian-process regression with a cached Cholesky factor and O(n²) streaming
/// updates (see the Rust docs of `intent_engine::gp::GaussianProcess`).
#[pyclass(name = "GaussianProcess", module = "intent_engine._core")]
pub(crate) struct PyGaussianProcess {
    pub(crate) inner: GaussianProcess,
    /// y was 1-D at fit: return 1-D means/stds.
    one_d: bool,
    /// Buffers of the single-point fast path (a contended lock falls back to fresh ones).
    ws: std::sync::Mutex<GpWorkspace>,
}

/// y as an (n, m) array, remembering whether it was 1-D.
fn targets(obj: &Bound<'_, PyAny>) -> PyResult<(Array2<f64>, bool)> {
    let one_d = match obj.cast::<numpy::PyUntypedArray>() {
        Ok(a) => numpy::PyUntypedArrayMethods::ndim(a) == 1,
        // Lists: 1-D when the first element is a number.
        Err(_) => obj
            .get_item(0)
            .ok()
            .is_some_and(|first| first.extract::<f64>().is_ok()),
    };
    if one_d {
        let v = array::vector(obj, "y")?;
        return Ok((v.as_array().insert_axis(Axis(1)).to_owned(), true));
    }
    let m = array::matrix(obj, "y")?;
    Ok((m.as_array().to_owned(), false))
}

impl PyGaussianProcess {
    fn shape_out<'py>(&self, py: Python<'py>, a: Array2<f64>) -> PyResult<Py<PyAny>> {
        if self.one_d {
            Ok(a.index_axis_move(Axis(1), 0)
                .into_pyarray(py)
                .into_any()
                .unbind())
        } else {
            Ok(a.into_pyarray(py).into_any().unbind())
        }
    }
}

/// Validates the optimiser arguments shared by optimize and optimize_in_background.
fn optimize_args(
    py: Python<'_>,
    n_restarts: i64,
    seed: u64,
    optimize_noise: bool,
    max_iters: i64,
) -> PyResult<(OptimizeSettings, HyperBounds)> {
    let n_restarts =
        usize::try_from(n_restarts).map_err(|_| invalid(py, "n_restarts", "must be >= 0"))?;
    let max_iters = u64::try_from(max_iters)
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(py, "max_iters", "must be >= 1"))?;
    let settings = OptimizeSettings {
        n_restarts,
        seed,
        max_iters,
        ..OptimizeSettings::default()
    };
    let bounds = HyperBounds {
        noise: if optimize_noise {
            HyperBounds::default().noise
        } else {
            None
        },
        ..HyperBounds::default()
    };
    Ok((settings, bounds))
}

#[pymethods]
impl PyGaussianProcess {
    #[new]
    #[pyo3(signature = (kernel, noise_variance=1e-10, normalize_y=false, max_observations=None, *, capacity=0, threads=1))]
    fn new(
        py: Python<'_>,
        kernel: PyRef<'_, PyKernel>,
        noise_variance: f64,
        normalize_y: bool,
        max_observations: Option<i64>,
        capacity: i64,
        threads: i64,
    ) -> PyResult<Self> {
        let max_observations = max_observations
            .map(|w| {
                usize::try_from(w).map_err(|_| {
                    invalid(
                        py,
                        "max_observations",
                        format_args!("must be >= 1, got {w}"),
                    )
                })
            })
            .transpose()?;
        let capacity =
            usize::try_from(capacity).map_err(|_| invalid(py, "capacity", "must be >= 0"))?;
        let settings = GpSettings {
            noise_variance,
            normalize_y,
            max_observations,
            capacity,
            par: array::par(py, threads)?,
            ..GpSettings::default()
        };
        let inner =
            GaussianProcess::new(kernel.inner.clone(), settings).map_err(|e| to_py(py, &e))?;
        Ok(Self {
            inner,
            one_d: true,
            ws: Default::default(),
        })
    }

    /// Fits the model to X (n, d) and y (n,) or (n, outputs) with the current
    /// hyperparameters. Returns self.
    #[allow(non_snake_case)]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let py = slf.py();
        let x = array::matrix(X, "X")?;
        let (yv, one_d) = targets(y)?;
        let xv = x.as_array();
        let inner = &mut slf.inner;
        run(py, || inner.fit(xv, yv.view()))?;
        slf.one_d = one_d;
        Ok(slf)
    }

    /// Posterior mean at X; with return_std / return_var also the standard deviation or
    /// variance of the latent f; with return_cov the full covariance (n*, n*) instead.
    #[pyo3(signature = (X, return_std=false, return_var=false, return_cov=false, include_noise=false))]
    #[allow(non_snake_case)]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        return_std: bool,
        return_var: bool,
        return_cov: bool,
        include_noise: bool,
    ) -> PyResult<Py<PyAny>> {
        if usize::from(return_std) + usize::from(return_var) + usize::from(return_cov) > 1 {
            return Err(invalid(
                py,
                "return_std",
                "at most one of return_std, return_var, return_cov may be True",
            ));
        }
        let x = array::matrix(X, "X")?;
        let xv = x.as_array();
        let gp = &self.inner;
        if return_cov {
            let (mean, mut cov) = run(py, || gp.predict_cov(xv))?;
            if include_noise {
                for i in 0..cov.nrows() {
                    cov[[i, i]] += gp.noise_variance();
                }
            }
            let mean = self.shape_out(py, mean)?;
            return (mean, cov.into_pyarray(py)).into_py_any(py);
        }
        if !(return_std || return_var) {
            let mean = run(py, || gp.predict_mean(xv))?;
            return self.shape_out(py, mean);
        }
        if xv.nrows() == 1 && gp.is_fitted() {
            // One point: the allocation-free single-vector path (one forward solve).
            if let Some(row) = xv.row(0).as_slice() {
                let m = gp.n_outputs();
                let mut mean = Array2::zeros((1, m));
                let mut var = Array2::zeros((1, m));
                let mut guard = self.ws.try_lock().ok();
                let mut fresh = GpWorkspace::new();
                let ws = guard.as_deref_mut().unwrap_or(&mut fresh);
                let (mv, vv) = (mean.as_slice_mut(), var.as_slice_mut());
                if let (Some(mv), Some(vv)) = (mv, vv) {
                    run(py, || gp.predict_one_into(row, mv, Some(vv), ws))?;
                    if include_noise {
                        let noise = gp.noise_variance();
                        let scale = gp.output_scales();
                        vv.iter_mut()
                            .zip(scale)
                            .for_each(|(v, s)| *v += noise * s * s);
                    }
                }
                let spread = if return_std { var.mapv(f64::sqrt) } else { var };
                return (self.shape_out(py, mean)?, self.shape_out(py, spread)?).into_py_any(py);
            }
        }
        let p = run(py, || gp.predict_with(xv, include_noise))?;
        let spread = if return_std {
            p.var.mapv(f64::sqrt)
        } else {
            p.var
        };
        (self.shape_out(py, p.mean)?, self.shape_out(py, spread)?).into_py_any(py)
    }

    /// Appends observations in O(n²) each (no refactorisation). With max_observations, the
    /// oldest are dropped first. A failed call adds nothing.
    #[allow(non_snake_case)]
    fn add_observations(
        &mut self,
        py: Python<'_>,
        X: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let x = array::matrix(X, "X")?;
        let (yv, _) = targets(y)?;
        let xv = x.as_array();
        let inner = &mut self.inner;
        run(py, || inner.add_observations(xv, yv.view()))
    }

    /// Removes the k oldest observations in O(n² k).
    fn remove_oldest(&mut self, py: Python<'_>, k: i64) -> PyResult<()> {
        let k = usize::try_from(k)
            .map_err(|_| invalid(py, "k", format_args!("must be >= 0, got {k}")))?;
        let inner = &mut self.inner;
        run(py, || inner.remove_oldest(k))
    }

    /// Log marginal likelihood of the held data; with theta = [kernel theta..., ln noise] it is
    /// evaluated there instead, and eval_gradient=True also returns its gradient.
    #[pyo3(signature = (theta=None, eval_gradient=false))]
    fn log_marginal_likelihood(
        &self,
        py: Python<'_>,
        theta: Option<&Bound<'_, PyAny>>,
        eval_gradient: bool,
    ) -> PyResult<Py<PyAny>> {
        let gp = &self.inner;
        let params = match theta {
            Some(t) => {
                let t = array::vector(t, "theta")?.as_array().to_vec();
                array::check_finite(py, "theta", &t)?;
                t
            }
            None if eval_gradient => {
                let mut p = gp.kernel().theta();
                p.push(gp.noise_variance().max(1e-300).ln());
                p
            }
            None => return run(py, || gp.log_marginal_likelihood())?.into_py_any(py),
        };
        let (v, g) = run_renamed(py, &[("params", "theta")], || {
            gp.log_marginal_likelihood_gradient(&params)
        })?;
        if eval_gradient {
            (v, PyArray1::from_vec(py, g)).into_py_any(py)
        } else {
            v.into_py_any(py)
        }
    }

    /// Fits hyperparameters (kernel theta and, unless optimize_noise=False, the noise) by
    /// bounded multi-start L-BFGS; returns the log marginal likelihood reached.
    #[pyo3(signature = (n_restarts=0, seed=0, optimize_noise=true, max_iters=200))]
    fn optimize(
        &mut self,
        py: Python<'_>,
        n_restarts: i64,
        seed: u64,
        optimize_noise: bool,
        max_iters: i64,
    ) -> PyResult<f64> {
        let (settings, bounds) = optimize_args(py, n_restarts, seed, optimize_noise, max_iters)?;
        let inner = &mut self.inner;
        Ok(run(py, || inner.optimize(&settings, &bounds))?.log_marginal_likelihood)
    }

    /// Posterior samples of the latent f at X: (n*, n_samples) for 1-D y, else
    /// (n*, outputs, n_samples) (scikit-learn's sample_y layout). Seeded.
    #[pyo3(signature = (X, n_samples=1, seed=0))]
    #[allow(non_snake_case)]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        n_samples: i64,
        seed: u64,
    ) -> PyResult<Py<PyAny>> {
        let n_samples =
            usize::try_from(n_samples).map_err(|_| invalid(py, "n_samples", "must be >= 0"))?;
        let x = array::matrix(X, "X")?;
        let xv = x.as_array();
        let gp = &self.inner;
        let s = run(py, || gp.sample(xv, n_samples, seed))?; // (S, n*, m)
        let s = s.permuted_axes([1, 2, 0]).as_standard_layout().into_owned();
        if self.one_d {
            Ok(s.index_axis_move(Axis(1), 0)
                .into_pyarray(py)
                .into_any()
                .unbind())
        } else {
            Ok(s.into_pyarray(py).into_any().unbind())
        }
    }

    /// Gradients of the posterior mean (outputs, d) and latent variance (outputs, d) with
    /// respect to one test input x (d,).
    fn predict_gradient<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Py<PyAny>> {
        let xv = array::vector(x, "x")?.as_array().to_vec();
        let gp = &self.inner;
        let (dm, dv) = run(py, || gp.predict_gradient(&xv))?;
        (dm.into_pyarray(py), dv.into_pyarray(py)).into_py_any(py)
    }

    /// Starts a hyperparameter fit on a snapshot of this model in a background thread and
    /// returns at once; keep predicting and adding observations meanwhile, then install the
    /// result with adopt(fit.result()).
    #[pyo3(signature = (n_restarts=0, seed=0, optimize_noise=true, max_iters=200))]
    fn optimize_in_background(
        &self,
        py: Python<'_>,
        n_restarts: i64,
        seed: u64,
        optimize_noise: bool,
        max_iters: i64,
    ) -> PyResult<PyBackgroundFit> {
        let (settings, bounds) = optimize_args(py, n_restarts, seed, optimize_noise, max_iters)?;
        Ok(PyBackgroundFit {
            fit: std::sync::Mutex::new(Some(self.inner.optimize_in_background(settings, bounds))),
            one_d: self.one_d,
        })
    }

    /// Installs a model refitted in the background (from BackgroundFit.result()): the
    /// observations added or removed here since the snapshot are replayed onto it, then it
    /// replaces this model in one step.
    fn adopt(&mut self, py: Python<'_>, fitted: &mut PyGaussianProcess) -> PyResult<()> {
        let new = fitted.inner.clone();
        let inner = &mut self.inner;
        run(py, || inner.adopt(new))
    }

    /// Refactorises from scratch (drift control does this automatically).
    fn refactorize(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        run(py, || inner.refactorize())
    }

    /// Number of observations held.
    #[getter]
    fn n_observations(&self) -> usize {
        self.inner.n_observations()
    }

    /// The kernel with the current hyperparameters.
    #[getter]
    fn kernel(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        wrap(py, self.inner.kernel().clone())
    }

    /// The noise variance.
    #[getter]
    fn noise_variance(&self) -> f64 {
        self.inner.noise_variance()
    }

    /// Diagonal jitter added by the last factorisation.
    #[getter]
    fn jitter(&self) -> f64 {
        self.inner.jitter()
    }

    /// Conditioning counters (clamped variances, refactors, failed probes, duplicate jitter
    /// events, jitter escalations, updates).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("clamped_variances", s.clamped_variances)?;
        d.set_item("refactors", s.refactors)?;
        d.set_item("failed_probes", s.failed_probes)?;
        d.set_item("duplicate_jitter_events", s.duplicate_jitter_events)?;
        d.set_item("jitter_escalations", s.jitter_escalations)?;
        d.set_item("updates", s.updates)?;
        d.set_item("jitter", self.inner.jitter())?;
        Ok(d)
    }

    /// The model as JSON (format "intent_engine.GaussianProcess" v1; data only).
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_json().map_err(|e| to_py(py, &e))
    }

    /// Rebuilds a model from to_json() output (refactorising; nothing is executed).
    #[staticmethod]
    fn from_json(py: Python<'_>, json: &str) -> PyResult<Self> {
        let inner = run(py, || GaussianProcess::from_json(json))?;
        let one_d = inner.n_outputs() == 1;
        Ok(Self {
            inner,
            one_d,
            ws: Default::default(),
        })
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let me = slf.borrow();
        let cls = py
            .import("intent_engine._core")?
            .getattr("_gp_from_state")?;
        let json = if me.inner.is_fitted() {
            Some(me.inner.to_json().map_err(|e| to_py(py, &e))?)
        } else {
            None
        };
        let kernel = me.inner.kernel().to_json().map_err(|e| to_py(py, &e))?;
        let args = PyTuple::new(
            py,
            [
                json.into_py_any(py)?,
                kernel.into_py_any(py)?,
                me.one_d.into_py_any(py)?,
                me.inner.noise_variance().into_py_any(py)?,
                // settings an unfitted model must keep (a fitted one has them in its JSON)
                me.inner.settings().normalize_y.into_py_any(py)?,
                me.inner.settings().max_observations.into_py_any(py)?,
            ],
        )?;
        Ok((cls, args))
    }

    fn __repr__(&self) -> String {
        format!(
            "GaussianProcess(kernel={}, noise_variance={}, n_observations={})",
            self.inner.kernel(),
            self.inner.noise_variance(),
            self.inner.n_observations()
        )
    }
}

/// A hyperparameter fit running in a background thread (GaussianProcess.optimize_in_background).
#[pyclass(name = "BackgroundFit", module = "intent_engine._core")]
pub(crate) struct PyBackgroundFit {
    fit: std::sync::Mutex<Option<crate::gp::BackgroundFit>>,
    one_d: bool,
}

#[pymethods]
impl PyBackgroundFit {
    /// Whether the fit has finished (result() will not block).
    fn done(&self) -> bool {
        self.fit
            .lock()
            .map(|f| f.as_ref().is_none_or(crate::gp::BackgroundFit::is_finished))
            .unwrap_or(true)
    }

    /// Waits for the fit and returns the refitted model (a GaussianProcess on the snapshot's
    /// data) and its log marginal likelihood; pass the model to GaussianProcess.adopt.
    fn result(&self, py: Python<'_>) -> PyResult<(PyGaussianProcess, f64)> {
        let fit = self
            .fit
            .lock()
            .map_err(|_| invalid(py, "fit", "state poisoned"))?
            .take()
            .ok_or_else(|| invalid(py, "fit", "result() was already taken"))?;
        let (gp, report) = run(py, move || fit.wait())?;
        Ok((
            PyGaussianProcess {
                inner: gp,
                one_d: self.one_d,
                ws: Default::default(),
            },
            report.log_marginal_likelihood,
        ))
    }
}

/// Pickle support: rebuilds a GaussianProcess from its JSON (or an unfitted one with its
/// settings; the two trailing arguments default for pickles of earlier versions).
#[pyfunction]
#[pyo3(signature = (json, kernel, one_d, noise_variance, normalize_y=false, max_observations=None))]
fn _gp_from_state(
    py: Python<'_>,
    json: Option<&str>,
    kernel: &str,
    one_d: bool,
    noise_variance: f64,
    normalize_y: bool,
    max_observations: Option<usize>,
) -> PyResult<PyGaussianProcess> {
    match json {
        Some(j) => {
            let inner = run(py, || GaussianProcess::from_json(j))?;
            Ok(PyGaussianProcess {
                inner,
                one_d,
                ws: Default::default(),
            })
        }
        None => {
            let k = crate::gp::Kernel::from_json(kernel)
                .map_err(|e| to_py(py, &super::errors::renamed(e, &[("json", "kernel")])))?;
            let inner = GaussianProcess::new(
                k,
                GpSettings {
                    noise_variance,
                    normalize_y,
                    max_observations,
                    ..GpSettings::default()
                },
            )
            .map_err(|e| to_py(py, &e))?;
            Ok(PyGaussianProcess {
                inner,
                one_d,
                ws: Default::default(),
            })
        }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGaussianProcess>()?;
    m.add_class::<PyBackgroundFit>()?;
    m.add_function(wrap_pyfunction!(_gp_from_state, m)?)?;
    Ok(())
}
