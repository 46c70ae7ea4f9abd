//! MPC and QP solving from Python: `intent_engine.LinearMPC` over [`crate::mpc::LinearMpc`],
//! and `solve_qp` / `solve_qp_solution` over [`crate::mpc::qp::solve_qp`].

use std::time::Duration;

use ndarray::{Array2, Array3, Axis};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::prelude::*;

use super::array;
use super::errors::{invalid, run, run_attached, run_renamed, to_py};
use crate::mpc::qp::{solve_qp as rust_solve_qp, QpProblem, QpSolution};
use crate::mpc::{
    KeepoutMode, LinearMpc, MpcProblem, MpcSettings, MpcSolution, MpcSolverKind, OwnedReference,
};

/// The result of `LinearMPC.solve`: inputs, predicted states, status and diagnostics.
#[pyclass(name = "MpcSolution", module = "intent_engine._core", frozen)]
pub(crate) struct PyMpcSolution {
    inner: MpcSolution,
}

#[pymethods]
impl PyMpcSolution {
    /// The first input (m,), to apply now.
    #[getter]
    fn u0<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.u.row(0).to_owned().into_pyarray(py)
    }
    /// Inputs (N, m).
    #[getter]
    fn u<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.u.clone().into_pyarray(py)
    }
    /// Predicted states (N + 1, n); x[0] is x0.
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.x.clone().into_pyarray(py)
    }
    /// "solved", "solved-inaccurate", "max-iterations", "time-limit", "primal-infeasible" or
    /// "dual-infeasible".
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.info.status.as_str()
    }
    /// Iterations (active-set changes, or ADMM / interior-point iterations).
    #[getter]
    fn iterations(&self) -> usize {
        self.inner.info.iterations
    }
    /// Solve time in seconds (inside the solver).
    #[getter]
    fn solve_time(&self) -> f64 {
        self.inner.info.solve_time.as_secs_f64()
    }
    /// Largest keep-out slack (0 when every soft row holds).
    #[getter]
    fn max_violation(&self) -> f64 {
        self.inner.info.max_violation
    }
    /// Largest violation of a hard constraint.
    #[getter]
    fn primal_residual(&self) -> f64 {
        self.inner.info.primal_residual
    }
    /// Stationarity residual.
    #[getter]
    fn dual_residual(&self) -> f64 {
        self.inner.info.dual_residual
    }
    fn __repr__(&self) -> String {
        let i = &self.inner.info;
        format!(
            "MpcSolution(status='{}', iterations={}, solve_time={:.3e}, max_violation={:.2e})",
            i.status,
            i.iterations,
            i.solve_time.as_secs_f64(),
            i.max_violation
        )
    }
}

fn opt_vec(
    obj: Option<&Bound<'_, PyAny>>,
    name: &'static str,
) -> PyResult<Option<ndarray::Array1<f64>>> {
    obj.map(|o| array::vector(o, name).map(|v| v.as_array().to_owned()))
        .transpose()
}

fn reference(obj: Option<&Bound<'_, PyAny>>, name: &'static str) -> PyResult<OwnedReference> {
    let Some(obj) = obj else {
        return Ok(OwnedReference::Zero);
    };
    let ndim = obj.cast::<PyUntypedArray>().map(|a| a.ndim()).unwrap_or(1);
    if ndim == 2 {
        Ok(OwnedReference::PerStage(
            array::matrix(obj, name)?.as_array().to_owned(),
        ))
    } else {
        Ok(OwnedReference::Constant(
            array::vector(obj, name)?.as_array().to_owned(),
        ))
    }
}

/// Keep-out arrays as (N, r, n) and (N, r), accepting (N, n) / (N,) for one row per stage.
fn keepout_arrays(
    py: Python<'_>,
    normals: &Bound<'_, PyAny>,
    offsets: &Bound<'_, PyAny>,
) -> PyResult<(Array3<f64>, Array2<f64>)> {
    let nd = normals
        .cast::<PyUntypedArray>()
        .map(|a| a.ndim())
        .unwrap_or(2);
    let normals = match nd {
        2 => array::matrix(normals, "stage_normals")?
            .as_array()
            .to_owned()
            .insert_axis(Axis(1)),
        3 => {
            let a = normals.cast::<numpy::PyArray3<f64>>().map_err(|_| {
                invalid(
                    py,
                    "stage_normals",
                    "expected a float64 array of shape (N, r, n)",
                )
            })?;
            let ro = a
                .try_readonly()
                .map_err(|e| invalid(py, "stage_normals", e))?;
            ro.as_array().to_owned()
        }
        _ => {
            return Err(invalid(
                py,
                "stage_normals",
                "expected shape (N, n) or (N, r, n)",
            ))
        }
    };
    let od = offsets
        .cast::<PyUntypedArray>()
        .map(|a| a.ndim())
        .unwrap_or(1);
    let offsets = if od == 1 {
        array::vector(offsets, "stage_offsets")?
            .as_array()
            .to_owned()
            .insert_axis(Axis(1))
    } else {
        array::matrix(offsets, "stage_offsets")?
            .as_array()
            .to_owned()
    };
    Ok((normals, offsets))
}

/// Linear MPC with box, rate, state and human keep-out constraints, solved warm-started.
///
/// Minimises sum_k ½(x_k − x_ref)ᵀQ(x_k − x_ref) + ½(u_k − u_ref)ᵀR(u_k − u_ref) + terminal cost
/// (P, default: the DARE solution) subject to x_{k+1} = A x_k + B u_k, u_min ≤ u_k ≤ u_max,
/// |u_k − u_{k−1}| ≤ du_max, x_min ≤ x_k ≤ x_max (k = 1..N) and the keep-out half-spaces of
/// `set_keepout` (soft with an exact L1 penalty unless keepout_soft=False).
///
/// solver: "auto" (condensed active-set for small problems), "active-set", "riccati" or "osqp".
#[pyclass(name = "LinearMPC", module = "intent_engine._core")]
pub(crate) struct PyLinearMpc {
    inner: LinearMpc,
}

#[pymethods]
impl PyLinearMpc {
    #[new]
    #[pyo3(signature = (
        A, B, Q, R, horizon, P=None, u_min=None, u_max=None, x_min=None, x_max=None, du_max=None,
        solver="auto", eps=1e-6, max_iter=1000, time_limit=None, *, keepout_soft=true,
        keepout_penalty=1e4, keepout_quadratic=1.0, warm_start=true,
    ))]
    #[allow(non_snake_case, clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        A: &Bound<'_, PyAny>,
        B: &Bound<'_, PyAny>,
        Q: &Bound<'_, PyAny>,
        R: &Bound<'_, PyAny>,
        horizon: i64,
        P: Option<&Bound<'_, PyAny>>,
        u_min: Option<&Bound<'_, PyAny>>,
        u_max: Option<&Bound<'_, PyAny>>,
        x_min: Option<&Bound<'_, PyAny>>,
        x_max: Option<&Bound<'_, PyAny>>,
        du_max: Option<&Bound<'_, PyAny>>,
        solver: &str,
        eps: f64,
        max_iter: i64,
        time_limit: Option<f64>,
        keepout_soft: bool,
        keepout_penalty: f64,
        keepout_quadratic: f64,
        warm_start: bool,
    ) -> PyResult<Self> {
        let horizon = usize::try_from(horizon)
            .map_err(|_| invalid(py, "horizon", format_args!("must be >= 1, got {horizon}")))?;
        let max_iter = usize::try_from(max_iter)
            .map_err(|_| invalid(py, "max_iter", format_args!("must be >= 1, got {max_iter}")))?;
        let time_limit = match time_limit {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
            Some(t) => {
                return Err(invalid(
                    py,
                    "time_limit",
                    format_args!("must be > 0 seconds, got {t}"),
                ))
            }
        };
        let kind = MpcSolverKind::parse(solver).map_err(|e| to_py(py, &e))?;
        let a = array::matrix(A, "A")?.as_array().to_owned();
        let b = array::matrix(B, "B")?.as_array().to_owned();
        let q = array::matrix(Q, "Q")?.as_array().to_owned();
        let r = array::matrix(R, "R")?.as_array().to_owned();
        let p = P
            .map(|p| array::matrix(p, "P").map(|v| v.as_array().to_owned()))
            .transpose()?;
        let (u_min, u_max) = (opt_vec(u_min, "u_min")?, opt_vec(u_max, "u_max")?);
        let (x_min, x_max) = (opt_vec(x_min, "x_min")?, opt_vec(x_max, "x_max")?);
        let du_max = opt_vec(du_max, "du_max")?;
        for (name, v, min_ok) in [
            ("keepout_penalty", keepout_penalty, keepout_penalty >= 0.0),
            (
                "keepout_quadratic",
                keepout_quadratic,
                keepout_quadratic > 0.0,
            ),
        ] {
            if !(v.is_finite() && min_ok) {
                let need = if name == "keepout_penalty" {
                    ">= 0"
                } else {
                    "> 0"
                };
                return Err(invalid(
                    py,
                    name,
                    format_args!("must be finite and {need}, got {v}"),
                ));
            }
        }
        let mode = if keepout_soft {
            KeepoutMode::Soft {
                l1: keepout_penalty,
                l2: keepout_quadratic,
            }
        } else {
            KeepoutMode::Hard
        };
        let settings = MpcSettings {
            solver: kind,
            eps,
            max_iter,
            time_limit,
            warm_start,
        };
        let inner = run(py, move || {
            let mut prob = MpcProblem::new(a, b, q, r, horizon)?
                .with_input_bounds(u_min, u_max)?
                .with_state_bounds(x_min, x_max)?
                .with_keepout_mode(mode)?;
            if let Some(p) = p {
                prob = prob.with_terminal_cost(p)?;
            }
            if let Some(du) = du_max {
                prob = prob.with_rate_bounds(du)?;
            }
            LinearMpc::new(prob, settings)
        })?;
        Ok(Self { inner })
    }

    /// Solves from x0 (n,). x_ref: (n,) or (N + 1, n) (stage 0 ignored); u_ref: (m,) or (N, m);
    /// u_prev: the input applied before (for du_max; default: the last solution's u0).
    #[pyo3(signature = (x0, x_ref=None, u_ref=None, u_prev=None))]
    fn solve(
        &mut self,
        py: Python<'_>,
        x0: &Bound<'_, PyAny>,
        x_ref: Option<&Bound<'_, PyAny>>,
        u_ref: Option<&Bound<'_, PyAny>>,
        u_prev: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyMpcSolution> {
        let x0 = array::vector(x0, "x0")?;
        let xr = reference(x_ref, "x_ref")?;
        let ur = reference(u_ref, "u_ref")?;
        let up = u_prev.map(|u| array::vector(u, "u_prev")).transpose()?;
        // Control-loop-sized problems solve in microseconds: stay attached (releasing and
        // re-taking the interpreter would cost a noticeable share), but still catch panics.
        let inner = run_attached(py, || {
            self.inner
                .solve(
                    x0.as_array(),
                    xr.view(),
                    ur.view(),
                    up.as_ref().map(|u| u.as_array()),
                )
                .cloned()
        })?;
        Ok(PyMpcSolution { inner })
    }

    /// Sets the keep-out half-spaces normals[k−1] · x_k ≤ offsets[k−1] for stages k = 1..N:
    /// stage_normals (N, n) with stage_offsets (N,), or (N, r, n) with (N, r) for r rows per
    /// stage. An infinite offset disables a row.
    fn set_keepout(
        &mut self,
        py: Python<'_>,
        stage_normals: &Bound<'_, PyAny>,
        stage_offsets: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (nr, off) = keepout_arrays(py, stage_normals, stage_offsets)?;
        self.inner
            .set_keepout(nr.view(), off.view())
            .map_err(|e| to_py(py, &e))
    }

    /// Solves one problem per row of x0s (S, n) in parallel (threads: 0 = all cores), with
    /// the current keep-outs, or per-scenario ones: stage_normals (S, N, n) or (S, N, r, n)
    /// with stage_offsets (S, N) or (S, N, r). Results equal solving each alone.
    #[pyo3(signature = (x0s, x_ref=None, u_ref=None, stage_normals=None, stage_offsets=None, threads=0))]
    #[allow(clippy::too_many_arguments)]
    fn solve_batch(
        &mut self,
        py: Python<'_>,
        x0s: &Bound<'_, PyAny>,
        x_ref: Option<&Bound<'_, PyAny>>,
        u_ref: Option<&Bound<'_, PyAny>>,
        stage_normals: Option<&Bound<'_, PyAny>>,
        stage_offsets: Option<&Bound<'_, PyAny>>,
        threads: i64,
    ) -> PyResult<Vec<PyMpcSolution>> {
        let x0s = array::matrix(x0s, "x0s")?.as_array().to_owned();
        let xr = reference(x_ref, "x_ref")?;
        let ur = reference(u_ref, "u_ref")?;
        let par = array::par(py, threads)?;
        let keep = match (stage_normals, stage_offsets) {
            (None, None) => None,
            (Some(nr), Some(off)) => {
                let nd = nr.cast::<PyUntypedArray>().map(|a| a.ndim()).unwrap_or(0);
                let nr: ndarray::ArrayD<f64> = match nd {
                    3 | 4 => nr
                        .cast::<numpy::PyArrayDyn<f64>>()
                        .map_err(|_| invalid(py, "stage_normals", "expected a float64 array"))?
                        .try_readonly()
                        .map_err(|e| invalid(py, "stage_normals", e))?
                        .as_array()
                        .to_owned(),
                    _ => {
                        return Err(invalid(
                            py,
                            "stage_normals",
                            "expected shape (S, N, n) or (S, N, r, n)",
                        ))
                    }
                };
                let off: ndarray::ArrayD<f64> = off
                    .cast::<numpy::PyArrayDyn<f64>>()
                    .map_err(|_| invalid(py, "stage_offsets", "expected a float64 array"))?
                    .try_readonly()
                    .map_err(|e| invalid(py, "stage_offsets", e))?
                    .as_array()
                    .to_owned();
                let sh = nr.shape().to_vec();
                let (s_, n_, r_, d_) = if nd == 3 {
                    (sh[0], sh[1], 1, sh[2])
                } else {
                    (sh[0], sh[1], sh[2], sh[3])
                };
                if off.len() != s_ * n_ * r_ {
                    return Err(invalid(
                        py,
                        "stage_offsets",
                        format_args!("expected {} entries", s_ * n_ * r_),
                    ));
                }
                let nr3 = nr
                    .into_shape_with_order((s_ * n_, r_, d_))
                    .map_err(|e| invalid(py, "stage_normals", e))?;
                let off2 = off
                    .into_shape_with_order((s_ * n_, r_))
                    .map_err(|e| invalid(py, "stage_offsets", e))?;
                Some((nr3, off2))
            }
            _ => {
                return Err(invalid(
                    py,
                    "stage_normals/stage_offsets",
                    "give both or neither",
                ))
            }
        };
        let inner = &mut self.inner;
        let sols = run_renamed(py, &[("x0", "x0s")], move || {
            inner.solve_scenarios(
                x0s.view(),
                keep.as_ref().map(|(a, b)| (a.view(), b.view())),
                xr.view(),
                ur.view(),
                par,
            )
        })?;
        Ok(sols
            .into_iter()
            .map(|inner| PyMpcSolution { inner })
            .collect())
    }

    /// The solver in use: "active-set", "riccati" or "osqp".
    #[getter]
    fn solver(&self) -> &'static str {
        self.inner.solver_kind().as_str()
    }

    /// The terminal cost P in use (n, n).
    #[getter]
    fn terminal_cost<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        self.inner.terminal_cost().clone().into_pyarray(py)
    }

    /// The horizon N.
    #[getter]
    fn horizon(&self) -> usize {
        self.inner.problem().horizon()
    }
}

/// The full result of `solve_qp_solution`: primal solution, multipliers (convention
/// `P x + q + Gᵀz + Aᵀy + z_box = 0`, `z ≥ 0`), status and residuals.
#[pyclass(name = "QpSolution", module = "intent_engine._core", frozen)]
pub(crate) struct PyQpSolution {
    inner: QpSolution,
}

#[pymethods]
impl PyQpSolution {
    /// The primal solution (best iterate when not solved).
    #[getter]
    fn x<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.x.clone().into_pyarray(py)
    }
    /// Multipliers of `G x <= h` (>= 0).
    #[getter]
    fn z<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.z.clone().into_pyarray(py)
    }
    /// Multipliers of `A x = b`.
    #[getter]
    fn y<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.y.clone().into_pyarray(py)
    }
    /// Multipliers of the bounds (positive at an upper bound, negative at a lower one).
    #[getter]
    fn z_box<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.inner.z_box.clone().into_pyarray(py)
    }
    /// "solved", "solved-inaccurate", "max-iterations", "time-limit", "primal-infeasible" or
    /// "dual-infeasible".
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.info.status.as_str()
    }
    /// Whether the status is "solved" or "solved-inaccurate".
    #[getter]
    fn found(&self) -> bool {
        self.inner.info.status.is_solved()
    }
    /// Active-set changes taken.
    #[getter]
    fn iterations(&self) -> usize {
        self.inner.info.iterations
    }
    /// Solve time in seconds (inside the solver).
    #[getter]
    fn solve_time(&self) -> f64 {
        self.inner.info.solve_time.as_secs_f64()
    }
    /// Largest constraint violation (inf-norm).
    #[getter]
    fn primal_residual(&self) -> f64 {
        self.inner.info.primal_residual
    }
    /// Inf-norm of `P x + q + Gᵀz + Aᵀy + z_box`.
    #[getter]
    fn dual_residual(&self) -> f64 {
        self.inner.info.dual_residual
    }
    /// |primal objective − dual objective|.
    #[getter]
    fn duality_gap(&self) -> f64 {
        self.inner.info.duality_gap
    }
    fn __repr__(&self) -> String {
        let i = &self.inner.info;
        format!(
            "QpSolution(status='{}', iterations={}, primal_residual={:.2e}, dual_residual={:.2e}, duality_gap={:.2e})",
            i.status, i.iterations, i.primal_residual, i.dual_residual, i.duality_gap
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn solve_impl(
    py: Python<'_>,
    p: &Bound<'_, PyAny>,
    q: &Bound<'_, PyAny>,
    g: Option<&Bound<'_, PyAny>>,
    h: Option<&Bound<'_, PyAny>>,
    a: Option<&Bound<'_, PyAny>>,
    b: Option<&Bound<'_, PyAny>>,
    lb: Option<&Bound<'_, PyAny>>,
    ub: Option<&Bound<'_, PyAny>>,
    eps: f64,
    time_limit: Option<f64>,
) -> PyResult<QpSolution> {
    let p = array::matrix(p, "P")?;
    let q = array::vector(q, "q")?;
    if g.is_some() != h.is_some() {
        return Err(invalid(py, "G/h", "give both G and h, or neither"));
    }
    if a.is_some() != b.is_some() {
        return Err(invalid(py, "A/b", "give both A and b, or neither"));
    }
    let g = g.map(|g| array::matrix(g, "G")).transpose()?;
    let h = h.map(|h| array::vector(h, "h")).transpose()?;
    let a = a.map(|a| array::matrix(a, "A")).transpose()?;
    let b = b.map(|b| array::vector(b, "b")).transpose()?;
    let lb = lb.map(|v| array::vector(v, "lb")).transpose()?;
    let ub = ub.map(|v| array::vector(v, "ub")).transpose()?;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(invalid(py, "eps", format_args!("must be > 0, got {eps}")));
    }
    let time_limit = match time_limit {
        None => None,
        Some(t) if t.is_finite() && t > 0.0 => Some(Duration::from_secs_f64(t)),
        Some(t) => {
            return Err(invalid(
                py,
                "time_limit",
                format_args!("must be > 0 seconds, got {t}"),
            ))
        }
    };
    let problem = QpProblem {
        p: p.as_array(),
        q: q.as_array(),
        g: g.as_ref()
            .zip(h.as_ref())
            .map(|(g, h)| (g.as_array(), h.as_array())),
        a: a.as_ref()
            .zip(b.as_ref())
            .map(|(a, b)| (a.as_array(), b.as_array())),
        lb: lb.as_ref().map(|v| v.as_array()),
        ub: ub.as_ref().map(|v| v.as_array()),
    };
    // Small problems solve in microseconds: releasing the interpreter would cost more.
    if problem.q.len() <= 64 {
        return run_attached(py, || rust_solve_qp(problem, eps, time_limit));
    }
    run(py, || rust_solve_qp(problem, eps, time_limit))
}

/// Solves `min ½xᵀPx + qᵀx  s.t.  Gx <= h, Ax = b, lb <= x <= ub` (qpsolvers convention; None
/// for absent parts, infinite entries of h/lb/ub for absent rows) with the dense dual
/// active-set solver. Returns the solution, or None when the problem is infeasible or the solver
/// stopped early (see `solve_qp_solution` for the status and multipliers).
#[pyfunction]
#[pyo3(signature = (P, q, G=None, h=None, A=None, b=None, lb=None, ub=None, eps=1e-6))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn solve_qp<'py>(
    py: Python<'py>,
    P: &Bound<'py, PyAny>,
    q: &Bound<'py, PyAny>,
    G: Option<&Bound<'py, PyAny>>,
    h: Option<&Bound<'py, PyAny>>,
    A: Option<&Bound<'py, PyAny>>,
    b: Option<&Bound<'py, PyAny>>,
    lb: Option<&Bound<'py, PyAny>>,
    ub: Option<&Bound<'py, PyAny>>,
    eps: f64,
) -> PyResult<Option<Bound<'py, PyArray1<f64>>>> {
    let sol = solve_impl(py, P, q, G, h, A, b, lb, ub, eps, None)?;
    Ok(sol.info.status.is_solved().then(|| sol.x.into_pyarray(py)))
}

/// As `solve_qp`, returning a `QpSolution` with status, multipliers and residuals;
/// `time_limit` (seconds) bounds the solve.
#[pyfunction]
#[pyo3(signature = (P, q, G=None, h=None, A=None, b=None, lb=None, ub=None, eps=1e-6, time_limit=None))]
#[allow(non_snake_case, clippy::too_many_arguments)]
fn solve_qp_solution(
    py: Python<'_>,
    P: &Bound<'_, PyAny>,
    q: &Bound<'_, PyAny>,
    G: Option<&Bound<'_, PyAny>>,
    h: Option<&Bound<'_, PyAny>>,
    A: Option<&Bound<'_, PyAny>>,
    b: Option<&Bound<'_, PyAny>>,
    lb: Option<&Bound<'_, PyAny>>,
    ub: Option<&Bound<'_, PyAny>>,
    eps: f64,
    time_limit: Option<f64>,
) -> PyResult<PyQpSolution> {
    let inner = solve_impl(py, P, q, G, h, A, b, lb, ub, eps, time_limit)?;
    Ok(PyQpSolution { inner })
}

/// Two matrices returned to Python, e.g. (A, B).
type MatrixPair<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

/// A 12-state quadrotor linearised at hover, discretised with step dt (ZOH): returns (A, B).
/// State [x, y, z, roll, pitch, yaw, vx, vy, vz, p, q, r]; input: the four motor thrusts as
/// deviations from hover, in units of the hover thrust.
#[pyfunction]
fn quadrotor_hover_model<'py>(py: Python<'py>, dt: f64) -> PyResult<MatrixPair<'py>> {
    let (a, b) = crate::mpc::models::quadrotor_hover(dt).map_err(|e| to_py(py, &e))?;
    Ok((a.into_pyarray(py), b.into_pyarray(py)))
}

/// A dim-dimensional double integrator (state [p; v], input acceleration), step dt: (A, B).
#[pyfunction]
fn double_integrator_model<'py>(py: Python<'py>, dim: usize, dt: f64) -> PyResult<MatrixPair<'py>> {
    let (a, b) = crate::mpc::models::double_integrator(dim, dt).map_err(|e| to_py(py, &e))?;
    Ok((a.into_pyarray(py), b.into_pyarray(py)))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(quadrotor_hover_model, m)?)?;
    m.add_function(wrap_pyfunction!(double_integrator_model, m)?)?;
    m.add_class::<PyQpSolution>()?;
    m.add_class::<PyMpcSolution>()?;
    m.add_class::<PyLinearMpc>()?;
    m.add_function(wrap_pyfunction!(solve_qp, m)?)?;
    m.add_function(wrap_pyfunction!(solve_qp_solution, m)?)?;
    Ok(())
}
