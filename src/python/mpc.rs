//! MPC and QP solving from Python: `intent_engine.solve_qp` / `solve_qp_solution` over
//! [`crate::mpc::qp::solve_qp`].

use std::time::Duration;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;

use super::array;
use super::errors::{invalid, run};
use crate::mpc::qp::{solve_qp as rust_solve_qp, QpProblem, QpSolution};

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
        return rust_solve_qp(problem, eps, time_limit).map_err(|e| super::errors::to_py(py, &e));
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

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyQpSolution>()?;
    m.add_function(wrap_pyfunction!(solve_qp, m)?)?;
    m.add_function(wrap_pyfunction!(solve_qp_solution, m)?)?;
    Ok(())
}
