//! `solve_qp`: one call for a general dense QP in the `qpsolvers` convention,
//!
//! ```text
//! minimise ½ xᵀP x + qᵀx   subject to   G x ≤ h,   A x = b,   lb ≤ x ≤ ub
//! ```
//!
//! solved by the dense dual active-set method of [`super::dense`]. Absent parts are `None`;
//! infinite entries of `h`, `lb`, `ub` mean "no constraint".

use std::time::Duration;

use ndarray::{Array1, ArrayView1, ArrayView2};

use crate::error::{Error, Result};
use crate::mpc::dense::{ActiveSetSettings, ActiveSetSolver};
use crate::mpc::status::SolveInfo;

/// The parts of a QP; see the [module documentation](self).
#[derive(Clone, Copy, Debug)]
pub struct QpProblem<'a> {
    /// Hessian `P` (n × n, symmetric positive semidefinite).
    pub p: ArrayView2<'a, f64>,
    /// Linear cost `q` (n).
    pub q: ArrayView1<'a, f64>,
    /// Inequalities `G x ≤ h`.
    pub g: Option<(ArrayView2<'a, f64>, ArrayView1<'a, f64>)>,
    /// Equalities `A x = b`.
    pub a: Option<(ArrayView2<'a, f64>, ArrayView1<'a, f64>)>,
    /// Lower bounds.
    pub lb: Option<ArrayView1<'a, f64>>,
    /// Upper bounds.
    pub ub: Option<ArrayView1<'a, f64>>,
}

/// Solution of [`solve_qp`] with multipliers in the convention
/// `P x + q + Gᵀz + Aᵀy + z_box = 0`, `z ≥ 0`.
#[derive(Clone, Debug)]
pub struct QpSolution {
    /// The primal solution (the best iterate when not solved).
    pub x: Array1<f64>,
    /// Multipliers of `G x ≤ h` (≥ 0).
    pub z: Array1<f64>,
    /// Multipliers of `A x = b`.
    pub y: Array1<f64>,
    /// Multipliers of the bounds (positive at an upper bound, negative at a lower one).
    pub z_box: Array1<f64>,
    /// Status, iterations, time and residuals.
    pub info: SolveInfo,
}

/// Solves a dense QP; see the [module documentation](self).
///
/// ```
/// use intent_engine::mpc::qp::{solve_qp, QpProblem};
/// use ndarray::array;
///
/// let p = array![[2.0, 0.0], [0.0, 2.0]];
/// let q = array![-2.0, -5.0];
/// let (g, h) = (array![[1.0, 1.0]], array![1.0]);
/// let sol = solve_qp(QpProblem { p: p.view(), q: q.view(), g: Some((g.view(), h.view())),
///                                a: None, lb: None, ub: None }, 1e-9, None)?;
/// assert!(sol.info.status.is_solved());
/// assert!((sol.x[0] + sol.x[1] - 1.0).abs() < 1e-12 && sol.z[0] > 0.0);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] / [`Error::NonFinite`] / [`Error::InvalidValue`] for inconsistent or
/// non-finite input, [`Error::NotPositiveDefinite`] when `P` has negative curvature. Solver
/// outcomes (infeasible, iteration cap) are statuses in the solution.
pub fn solve_qp(
    problem: QpProblem<'_>,
    eps: f64,
    time_limit: Option<Duration>,
) -> Result<QpSolution> {
    let n = problem.q.len();
    if n == 0 {
        return Err(Error::shape("q", "the QP needs at least one variable"));
    }
    let me = problem.a.map_or(0, |(a, _)| a.nrows());
    let mi = problem.g.map_or(0, |(g, _)| g.nrows());
    let settings = ActiveSetSettings {
        eps,
        time_limit,
        ..ActiveSetSettings::default()
    };
    let mut s = ActiveSetSolver::new(n, me, mi, settings)?;
    if problem.p.dim() != (n, n) {
        return Err(Error::shape(
            "P",
            format!(
                "expected shape ({n}, {n}) to match q, got {:?}",
                problem.p.dim()
            ),
        ));
    }
    // P must be symmetric: the solver reads its lower triangle only.
    let pv = problem.p;
    match pv.as_slice() {
        Some(ps) => {
            let mut pscale = 0.0f64;
            for &v in ps {
                pscale = pscale.max(v.abs());
            }
            let tol = 1e-9 * pscale.max(1.0);
            for i in 0..n {
                let row = &ps[i * n..i * n + i];
                for (j, &a) in row.iter().enumerate() {
                    let b = ps[j * n + i];
                    if (a - b).abs() > tol {
                        return Err(asymmetric(i, j, a, b));
                    }
                }
            }
        }
        None => {
            let pscale = pv.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for i in 0..n {
                for j in 0..i {
                    let (a, b) = (pv[[i, j]], pv[[j, i]]);
                    if (a - b).abs() > 1e-9 * pscale.max(1.0) {
                        return Err(asymmetric(i, j, a, b));
                    }
                }
            }
        }
    }
    s.set_hessian(problem.p)?;
    if let Some((a, b)) = problem.a {
        if a.ncols() != n || b.len() != me {
            return Err(Error::shape(
                "A/b",
                format!(
                    "expected A ({me}, {n}) and b ({me},), got {:?} and ({},)",
                    a.dim(),
                    b.len()
                ),
            ));
        }
        s.set_rows(Some(a), None)?;
        s.set_row_bounds(Some(b), None)?;
    }
    if let Some((g, h)) = problem.g {
        if g.ncols() != n || h.len() != mi {
            return Err(Error::shape(
                "G/h",
                format!(
                    "expected G ({mi}, {n}) and h ({mi},), got {:?} and ({},)",
                    g.dim(),
                    h.len()
                ),
            ));
        }
        s.set_rows(None, Some(g))?;
        let lo = Array1::from_elem(mi, f64::NEG_INFINITY);
        let hi = h.to_owned();
        s.set_row_bounds(None, Some((lo.view(), hi.view())))?;
    }
    let lb = problem
        .lb
        .map_or_else(|| vec![f64::NEG_INFINITY; n], |v| v.to_vec());
    let ub = problem
        .ub
        .map_or_else(|| vec![f64::INFINITY; n], |v| v.to_vec());
    s.set_bounds(&lb, &ub)?;
    let info = s.solve(problem.q)?;
    Ok(QpSolution {
        x: Array1::from(s.x().to_vec()),
        z: Array1::from(s.z_rows().to_vec()),
        y: Array1::from(s.y_eq().to_vec()),
        z_box: Array1::from(s.z_box().to_vec()),
        info,
    })
}

fn asymmetric(i: usize, j: usize, a: f64, b: f64) -> Error {
    Error::invalid_value(
        "P",
        format!("must be symmetric: P[{i},{j}] = {a} but P[{j},{i}] = {b}"),
    )
}
