//! The GPU-capable entry points in Python: `GpuGaussianProcess` and `GpuGoalInference`, each
//! taking `backend="cpu" | "cuda" | "cuda:N" | "auto"`.
//!
//! `"cuda"` raises `BackendUnavailableError` with the reason when the module was built without
//! the `gpu` feature or no device opens; `"auto"` takes CUDA device 0 when it opens and the CPU
//! otherwise; `"cpu"` runs the same model on the CPU code ([`crate::gp::GaussianProcess`] with
//! an RBF-ARD kernel, [`crate::belief::GoalInference`]), so a script runs unchanged on machines
//! with and without a GPU. The `backend` property says where an object runs.

use ndarray::{Array1, Array2, Axis};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;

use super::array;
use super::belief::{count, goals_arg, point_arg, status_str, velocity_model_arg};
use super::errors::{choice, invalid, run, to_py};
use super::kernels::{wrap, PyKernel};
#[cfg(feature = "gpu")]
use crate::belief::StepStatus;
use crate::belief::{FilterSettings, GoalInference, GoalModelSettings, Resampling, StepInfo};
use crate::gp::{GaussianProcess, GpSettings, Kernel, KernelSpec};
use crate::Backend;

#[cfg(feature = "gpu")]
use crate::backend::cuda::{
    belief::GpuGoalInference,
    gp::{GpuExactGp, RbfParams, TraceEstimator},
};

/// Resolves a backend name, mapping an unavailable CUDA device to `BackendUnavailableError`.
fn backend_arg(py: Python<'_>, name: &str) -> PyResult<Backend> {
    Backend::parse(name).map_err(|e| to_py(py, &e))
}

/// RBF-ARD hyperparameters as held between fits (`length_scale` may hold one value before
/// the input dimension is known).
#[derive(Clone, Debug)]
struct Hyper {
    variance: f64,
    length_scale: Vec<f64>,
    noise_variance: f64,
}

impl Hyper {
    /// `θ = [ln s², ln l_1 … ln l_d, ln σ²]`.
    fn theta(&self) -> Vec<f64> {
        let mut t = Vec::with_capacity(self.length_scale.len() + 2);
        t.push(self.variance.ln());
        t.extend(self.length_scale.iter().map(|l| l.ln()));
        t.push(self.noise_variance.ln());
        t
    }

    fn from_theta(t: &[f64]) -> Self {
        let d = t.len().saturating_sub(2);
        Self {
            variance: t[0].exp(),
            length_scale: t[1..=d].iter().map(|v| v.exp()).collect(),
            noise_variance: t[d + 1].exp(),
        }
    }

    /// The length scales expanded to `d` values (an isotropic scale is repeated).
    fn expand(&self, py: Python<'_>, d: usize) -> PyResult<Self> {
        let ls = match self.length_scale.len() {
            1 => vec![self.length_scale[0]; d],
            k if k == d => self.length_scale.clone(),
            k => {
                return Err(invalid(
                    py,
                    "X",
                    format_args!("the kernel has {k} length scales but X has {d} columns"),
                ))
            }
        };
        Ok(Self {
            length_scale: ls,
            ..self.clone()
        })
    }

    fn cpu_gp(&self, x: ndarray::ArrayView2<'_, f64>, y: &[f64]) -> crate::Result<GaussianProcess> {
        let k = Kernel::squared_exponential(self.variance, &self.length_scale)?;
        let settings = GpSettings {
            noise_variance: self.noise_variance,
            par: crate::Par::threads(0),
            ..GpSettings::default()
        };
        let mut gp = GaussianProcess::new(k, settings)?;
        let yy = Array2::from_shape_vec((y.len(), 1), y.to_vec())
            .map_err(|e| crate::Error::shape("y", e))?;
        gp.fit(x, yy.view())?;
        Ok(gp)
    }

    #[cfg(feature = "gpu")]
    fn rbf(&self) -> RbfParams {
        RbfParams {
            variance: self.variance,
            length_scale: self.length_scale.clone(),
            noise_variance: self.noise_variance,
        }
    }
}

enum GpState {
    Unfitted,
    Cpu(Box<GaussianProcess>),
    #[cfg(feature = "gpu")]
    Cuda(Box<GpuExactGp>),
}

/// Exact GP regression with an RBF-ARD kernel plus Gaussian noise for large n, on a CUDA
/// device (float64, cuSOLVER Cholesky) or the CPU, with Adam hyperparameter fitting.
#[pyclass(name = "GpuGaussianProcess", module = "intent_engine._core")]
pub(crate) struct PyGpuGaussianProcess {
    backend: Backend,
    hyper: Hyper,
    state: GpState,
}

fn not_fitted(py: Python<'_>) -> PyErr {
    invalid(py, "self", "the model is not fitted: call fit(X, y) first")
}

impl PyGpuGaussianProcess {
    /// Hyperparameters at `θ` on the CPU path: refits the held data.
    fn cpu_refit(gp: &mut GaussianProcess, h: &Hyper) -> crate::Result<()> {
        let x = gp.inputs().to_owned();
        let y: Vec<f64> = gp.targets().column(0).to_vec();
        *gp = h.cpu_gp(x.view(), &y)?;
        Ok(())
    }
}

#[pymethods]
impl PyGpuGaussianProcess {
    #[new]
    #[pyo3(signature = (kernel, noise_variance=1e-2, *, backend="cuda"))]
    fn new(
        py: Python<'_>,
        kernel: PyRef<'_, PyKernel>,
        noise_variance: f64,
        backend: &str,
    ) -> PyResult<Self> {
        let KernelSpec::SquaredExponential {
            variance,
            length_scale,
        } = kernel.inner.to_spec()
        else {
            return Err(invalid(
                py,
                "kernel",
                format_args!(
                    "GpuGaussianProcess supports the RBF kernel only, got {}",
                    kernel.inner.name()
                ),
            ));
        };
        if !(noise_variance.is_finite() && noise_variance > 0.0) {
            return Err(invalid(
                py,
                "noise_variance",
                format_args!("must be finite and > 0, got {noise_variance}"),
            ));
        }
        Ok(Self {
            backend: backend_arg(py, backend)?,
            hyper: Hyper {
                variance,
                length_scale,
                noise_variance,
            },
            state: GpState::Unfitted,
        })
    }

    /// Uploads X (n, d) and y (n,) and returns self (the factorisation happens lazily).
    #[allow(non_snake_case)]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        X: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let py = slf.py();
        let x = array::matrix(X, "X")?;
        let yv = array::vector(y, "y")?;
        let (xv, yv) = (x.as_array(), yv.as_array().to_vec());
        if xv.nrows() != yv.len() {
            return Err(invalid(
                py,
                "y",
                format_args!(
                    "expected {} values (rows of X), got {}",
                    xv.nrows(),
                    yv.len()
                ),
            ));
        }
        let h = slf.hyper.expand(py, xv.ncols())?;
        let state = match &slf.backend {
            Backend::Cpu => GpState::Cpu(Box::new(run(py, || h.cpu_gp(xv, &yv))?)),
            #[cfg(feature = "gpu")]
            Backend::Cuda(dev) => {
                let p = h.rbf();
                GpState::Cuda(Box::new(run(py, || GpuExactGp::new(dev, xv, &yv, p))?))
            }
        };
        slf.hyper = h;
        slf.state = state;
        Ok(slf)
    }

    /// Maximises the log marginal likelihood with `steps` Adam steps on θ = [ln variance,
    /// ln length_scale…, ln noise_variance] (gradient divided by n, as GPyTorch's
    /// ExactMarginalLogLikelihood). `trace="hutchinson"` estimates the gradient's trace term with
    /// `probes` Rademacher vectors on CUDA (the CPU path always uses the exact gradient).
    /// Returns the log marginal likelihood at the start of each step.
    #[pyo3(signature = (steps=20, lr=0.1, *, trace="exact", probes=8, seed=0))]
    fn optimize<'py>(
        &mut self,
        py: Python<'py>,
        steps: i64,
        lr: f64,
        trace: &str,
        probes: i64,
        seed: u64,
    ) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
        let steps = count(py, "steps", steps)?;
        let probes = count(py, "probes", probes)?;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(invalid(
                py,
                "lr",
                format_args!("must be finite and > 0, got {lr}"),
            ));
        }
        let hutchinson = choice(py, "trace", trace, "exact", "hutchinson")?;
        if hutchinson && !(1..=16).contains(&probes) {
            return Err(invalid(
                py,
                "probes",
                format_args!("must be in 1..=16, got {probes}"),
            ));
        }
        // On error: the CPU model is unchanged; the CUDA one keeps the last good step's
        // hyperparameters (`GpuExactGp::fit_adam`), which `self.hyper` then follows.
        let lml = match &mut self.state {
            GpState::Unfitted => return Err(not_fitted(py)),
            GpState::Cpu(gp) => {
                let start = self.hyper.theta();
                let (lml, h) = run(py, || {
                    let (res, th) = cpu_adam(gp, start, steps, lr);
                    let lml = res?;
                    let h = Hyper::from_theta(&th);
                    Self::cpu_refit(gp, &h)?;
                    Ok((lml, h))
                })?;
                self.hyper = h;
                lml
            }
            #[cfg(feature = "gpu")]
            GpState::Cuda(g) => {
                let t = if hutchinson {
                    TraceEstimator::Hutchinson { probes, seed }
                } else {
                    TraceEstimator::Exact
                };
                let rep = run(py, || g.fit_adam(steps, lr, t));
                let p = g.params();
                self.hyper = Hyper {
                    variance: p.variance,
                    length_scale: p.length_scale.clone(),
                    noise_variance: p.noise_variance,
                };
                rep?.lml
            }
        };
        #[cfg(not(feature = "gpu"))]
        let _ = (seed, hutchinson);
        Ok(Array1::from(lml).into_pyarray(py))
    }

    /// The exact log marginal likelihood of the data at the current hyperparameters.
    fn log_marginal_likelihood(&mut self, py: Python<'_>) -> PyResult<f64> {
        match &mut self.state {
            GpState::Unfitted => Err(not_fitted(py)),
            GpState::Cpu(gp) => run(py, || gp.log_marginal_likelihood()),
            #[cfg(feature = "gpu")]
            GpState::Cuda(g) => run(py, || g.log_marginal_likelihood()),
        }
    }

    /// The log marginal likelihood and its exact gradient with respect to θ.
    fn log_marginal_likelihood_gradient<'py>(
        &mut self,
        py: Python<'py>,
    ) -> PyResult<(f64, Bound<'py, numpy::PyArray1<f64>>)> {
        let theta = self.hyper.theta();
        let (v, g) = match &mut self.state {
            GpState::Unfitted => return Err(not_fitted(py)),
            GpState::Cpu(gp) => run(py, || gp.log_marginal_likelihood_gradient(&theta))?,
            #[cfg(feature = "gpu")]
            GpState::Cuda(g) => run(py, || g.lml_and_gradient(TraceEstimator::Exact))?,
        };
        Ok((v, Array1::from(g).into_pyarray(py)))
    }

    /// Posterior mean at X (m, d); with return_std / return_var also the standard deviation or
    /// variance of the latent f (of a new observation with include_noise).
    #[pyo3(signature = (X, return_std=false, return_var=false, include_noise=false))]
    #[allow(non_snake_case)]
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        X: &Bound<'py, PyAny>,
        return_std: bool,
        return_var: bool,
        include_noise: bool,
    ) -> PyResult<Py<PyAny>> {
        if return_std && return_var {
            return Err(invalid(
                py,
                "return_std",
                "at most one of return_std, return_var may be True",
            ));
        }
        let x = array::matrix(X, "X")?;
        let xv = x.as_array();
        let (mean, var) = match &mut self.state {
            GpState::Unfitted => return Err(not_fitted(py)),
            GpState::Cpu(gp) => {
                let p = run(py, || gp.predict_with(xv, include_noise))?;
                (
                    p.mean.index_axis_move(Axis(1), 0),
                    p.var.index_axis_move(Axis(1), 0),
                )
            }
            #[cfg(feature = "gpu")]
            GpState::Cuda(g) => {
                let (m, v) = run(py, || g.predict(xv, include_noise))?;
                (Array1::from(m), Array1::from(v))
            }
        };
        let mean = mean.into_pyarray(py);
        if return_var {
            (mean, var.into_pyarray(py)).into_py_any(py)
        } else if return_std {
            (mean, var.mapv(f64::sqrt).into_pyarray(py)).into_py_any(py)
        } else {
            mean.into_py_any(py)
        }
    }

    /// Where the model runs: "cpu" or "cuda:N".
    #[getter]
    fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// The RBF kernel at the current hyperparameters.
    #[getter]
    fn kernel(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let k = Kernel::squared_exponential(self.hyper.variance, &self.hyper.length_scale)
            .map_err(|e| to_py(py, &e))?;
        wrap(py, k)
    }

    /// The noise variance.
    #[getter]
    fn noise_variance(&self) -> f64 {
        self.hyper.noise_variance
    }

    /// θ = [ln variance, ln length_scale…, ln noise_variance].
    #[getter]
    fn theta<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        Array1::from(self.hyper.theta()).into_pyarray(py)
    }

    /// Number of training points (0 before fit).
    #[getter]
    fn n_observations(&self) -> usize {
        match &self.state {
            GpState::Unfitted => 0,
            GpState::Cpu(gp) => gp.n_observations(),
            #[cfg(feature = "gpu")]
            GpState::Cuda(g) => g.n(),
        }
    }
}

/// Adam on θ with the exact CPU gradient, with the constants of
/// [`crate::backend::cuda::gp::GpuExactGp::fit_adam`]. Returns the per-step log marginal
/// likelihoods (or the error) and the last good θ.
fn cpu_adam(
    gp: &GaussianProcess,
    mut th: Vec<f64>,
    steps: usize,
    lr: f64,
) -> (crate::Result<Vec<f64>>, Vec<f64>) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let p = th.len();
    let (mut mom, mut vel) = (vec![0.0; p], vec![0.0; p]);
    let mut lml = Vec::with_capacity(steps);
    let inv_n = 1.0 / gp.n_observations().max(1) as f64;
    for t in 1..=steps {
        let (v, g) = match gp.log_marginal_likelihood_gradient(&th) {
            Ok(r) => r,
            Err(e) => return (Err(e), th),
        };
        lml.push(v);
        let ti = i32::try_from(t).unwrap_or(i32::MAX);
        let (c1, c2) = (1.0 - b1.powi(ti), 1.0 - b2.powi(ti));
        for j in 0..p {
            let gj = g[j] * inv_n;
            mom[j] = b1 * mom[j] + (1.0 - b1) * gj;
            vel[j] = b2 * vel[j] + (1.0 - b2) * gj * gj;
            th[j] += lr * (mom[j] / c1) / ((vel[j] / c2).sqrt() + eps);
        }
    }
    (Ok(lml), th)
}

enum PfState {
    Cpu(Box<GoalInference>),
    #[cfg(feature = "gpu")]
    Cuda(Box<GpuGoalInference>),
}

/// The goal-inference particle filter of `GoalInference` for 10^5–10^7 particles on a CUDA
/// device (float32 particles, float64 sums, systematic resampling from float64 prefix sums),
/// or on the CPU.
#[pyclass(name = "GpuGoalInference", module = "intent_engine._core")]
pub(crate) struct PyGpuGoalInference {
    backend: Backend,
    state: PfState,
    n: usize,
    k: usize,
    ess: f64,
}

#[pymethods]
impl PyGpuGoalInference {
    #[new]
    #[pyo3(signature = (goals, *, n_particles=1000, dt=0.1, seed=0, speed=1.2, obs_noise=0.05,
        ess_threshold=0.5, rationality=1.0, velocity_noise=0.5, switch_prob=0.0,
        slow_radius=0.5, velocity_model="constant_speed", threads=1, backend="cuda"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        goals: &Bound<'_, PyAny>,
        n_particles: i64,
        dt: f64,
        seed: u64,
        speed: f64,
        obs_noise: f64,
        ess_threshold: f64,
        rationality: f64,
        velocity_noise: f64,
        switch_prob: f64,
        slow_radius: f64,
        velocity_model: &str,
        threads: i64,
        backend: &str,
    ) -> PyResult<Self> {
        let goals = goals_arg(goals)?;
        let model = GoalModelSettings {
            dt,
            speed,
            rationality,
            velocity_noise,
            obs_noise,
            switch_prob,
            velocity: velocity_model_arg(py, velocity_model, slow_radius)?,
            ..Default::default()
        };
        let filter = FilterSettings {
            n_particles: count(py, "n_particles", n_particles)?,
            resampling: Resampling::Systematic,
            ess_threshold,
            seed,
            par: array::par(py, threads)?,
        };
        let backend = backend_arg(py, backend)?;
        let n = filter.n_particles;
        let state = match &backend {
            Backend::Cpu => PfState::Cpu(Box::new(
                GoalInference::new(&goals, model, filter).map_err(|e| to_py(py, &e))?,
            )),
            #[cfg(feature = "gpu")]
            Backend::Cuda(dev) => PfState::Cuda(Box::new(run(py, || {
                GpuGoalInference::new(dev, &goals, model, filter)
            })?)),
        };
        Ok(Self {
            backend,
            state,
            n,
            k: goals.len(),
            ess: n as f64,
        })
    }

    /// Assimilates an observed position [x, y]; returns "ok", "resampled" or "reinitialised".
    fn update(&mut self, py: Python<'_>, z: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let z = point_arg(z, "z")?;
        let info: StepInfo = match &mut self.state {
            PfState::Cpu(gi) => run(py, || gi.update(z))?,
            #[cfg(feature = "gpu")]
            PfState::Cuda(gi) => run(py, || gi.update(z))?,
        };
        self.ess = match (&self.state, info.status) {
            (PfState::Cpu(gi), _) => gi.filter().ess(),
            // Uniform weights after resampling or reinitialisation, as on the CPU.
            #[cfg(feature = "gpu")]
            (PfState::Cuda(_), StepStatus::Ok) => info.ess,
            #[cfg(feature = "gpu")]
            (PfState::Cuda(_), _) => self.n as f64,
        };
        Ok(status_str(&info))
    }

    /// Posterior probability of each goal, shape (K,).
    fn goal_probabilities<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        let p = match &self.state {
            PfState::Cpu(gi) => gi.goal_probabilities(),
            #[cfg(feature = "gpu")]
            PfState::Cuda(gi) => gi.goal_probabilities(),
        };
        Array1::from(p).into_pyarray(py)
    }

    /// Effective sample size of the current weights (N right after resampling), as
    /// `GoalInference.effective_sample_size`.
    fn effective_sample_size(&self) -> f64 {
        self.ess
    }

    /// Running log-likelihood estimate log Z of the observations so far.
    #[getter]
    fn log_likelihood(&self) -> f64 {
        match &self.state {
            PfState::Cpu(gi) => gi.filter().log_z(),
            #[cfg(feature = "gpu")]
            PfState::Cuda(gi) => gi.log_z(),
        }
    }

    /// Number of goals.
    #[getter]
    fn n_goals(&self) -> usize {
        self.k
    }

    /// Number of particles.
    #[getter]
    fn n_particles(&self) -> usize {
        self.n
    }

    /// Where the filter runs: "cpu" or "cuda:N".
    #[getter]
    fn backend(&self) -> String {
        self.backend.to_string()
    }
}

/// Why CUDA cannot be used, or None when device 0 opens.
#[pyfunction]
fn cuda_unavailable_reason() -> Option<String> {
    Backend::cuda_unavailable_reason()
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyGpuGaussianProcess>()?;
    m.add_class::<PyGpuGoalInference>()?;
    m.add_function(wrap_pyfunction!(cuda_unavailable_reason, m)?)?;
    Ok(())
}
