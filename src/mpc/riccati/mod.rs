//! A horizon-structured primal-dual interior-point solver for [`OcpQp`]: Mehrotra
//! predictor-corrector steps whose Newton systems are solved by a Riccati recursion, so one
//! iteration costs `O(N·(nx + nu)³)` — linear in the horizon — and the solver suits long
//! horizons, time-varying (LTV) data and large states.
//!
//! # Problem
//! The QP of [`OcpQp`] (see [its module](crate::mpc::ocp)). Every *finite* bound becomes one
//! inequality `σ·v(x_k, u_k) ≥ b̃` with a slack `t ≥ 0` and a multiplier `λ ≥ 0` (`σ = +1`, `b̃ =
//! lower` for a lower bound, `σ = −1`, `b̃ = −upper` for an upper one); absent (infinite) bounds
//! create no variables. A soft row side gets a second slack `w ≥ 0` (its violation) with
//! multiplier `μ`, `σ·v + w ≥ b̃`, costing `l1·w + ½·l2·w²`. Dynamics `x_{k+1} = A_k x_k + B_k u_k
//! + c_k` carry multipliers `π_k` (the Lagrangian has `+π_kᵀ(A_k x_k + B_k u_k + c_k − x_{k+1})`).
//!
//! # Newton step
//! With `d = λ/t` (and `d_w = μ/w`) the slacks and multipliers of each inequality are eliminated
//! inside its stage: a hard side adds `d·∇v∇vᵀ` to the stage Hessian, a soft side adds
//! `d·(l2 + d_w)/(l2 + d_w + d)·∇v∇vᵀ` (its violation slack is eliminated too, so soft rows add no
//! Riccati dimension). The remaining equality-constrained LQ problem is solved by the backward
//! Riccati recursion
//! ```text
//! R̂ = R̃ + BᵀPB = LLᵀ,  Ŝ = L⁻¹(S̃ + BᵀPA),  P⁻ = Q̃ + AᵀPA − ŜᵀŜ
//! ```
//! and a forward roll-out. The predictor and the corrector share one factorisation.
//!
//! # Termination
//! Every iteration checks, with `ε = eps`:
//! * primal: dynamics and inequality residuals `≤ ε·max(1, ‖x‖∞, ‖u‖∞)`;
//! * dual: stationarity residual `≤ ε·max(1, ‖Hz + f‖∞, ‖λ‖∞, ‖π‖∞)`;
//! * complementarity: `max_i λ_i t_i, μ_i w_i ≤ ε`.
//!
//! A hard-infeasible problem is recognised by a Farkas certificate read off the duals: when
//! `(λ, π)` grows while its constraint part of the stationarity residual vanishes relative to it
//! and its dual objective is positive, no `x` can satisfy the hard constraints
//! ([`SolveStatus::PrimalInfeasible`]). Soft rows never make a problem infeasible.
//!
//! # Reported numbers
//! [`SolveInfo::primal_residual`] is the largest violation of a hard constraint or of the
//! dynamics at the returned iterate; [`SolveInfo::dual_residual`] the ∞-norm of the
//! stationarity residual; [`SolveInfo::duality_gap`] the total complementarity
//! `Σ λ_i t_i + Σ μ_i w_i`, which equals primal minus dual objective once the residuals vanish;
//! [`SolveInfo::max_violation`] the largest soft-row violation, recomputed from the returned
//! `x, u` (so it is exact for the returned iterate, not a slack variable's value).
//!
//! # Warm start
//! An interior-point method warm-starts poorly: the slacks must be pushed back into the
//! interior anyway. With [`RiccatiSettings::warm_start`] the previous primal solution
//! (optionally moved one stage on by [`RiccatiSolver::shift_warm_start`]) is the initial
//! `x, u, π`; slacks and multipliers restart from the interior as in a cold start. Measured on
//! the receding-horizon test (`tests/mpc_riccati.rs`, 8 closed-loop steps) it saved **no**
//! iterations (61 warm vs 61 cold), so it is off by default; it is kept as an opt-in because it
//! is harmless and cheap, and `shift_warm_start` also gives a usable shifted trajectory.
//!
//! # Cost
//! Per iteration one factorisation (`≈ N·(2nx³ + 3nx²nu + nx·nu²)` multiply-adds, 4×4 register
//! blocks, the loop compiled for AVX2/AVX-512 with FMA when the CPU has them) and two vector
//! passes; inequalities cost `O(1)` each (a general row `O(nx² + nu²)`). Nothing is allocated
//! after [`RiccatiSolver::new`] / [`RiccatiSolver::setup`]. See `benches/mpc_riccati.rs`.
//!
//! # Limitations
//! * A soft row with `l1 = l2 = 0` has an unbounded violation slack; give it a positive weight.
//! * At very tight `eps` (≲ 1e-10) the barrier weights span ~20 decades and the classical
//!   Riccati recursion may stall in the last digits: the solve then ends `SolvedInaccurate`
//!   (within 100·eps) instead of failing.
//! * Infeasibility of the *hard* constraints is detected through a Farkas certificate read off
//!   diverging multipliers; problems that are infeasible only in the limit may instead end
//!   with `MaxIterations` (never `Solved`).
//!
//! ```
//! use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
//! use intent_engine::mpc::{OcpQp, SolveStatus};
//! use ndarray::array;
//!
//! // A double integrator over 10 steps, |u| ≤ 1, driven from x0 = (1, 0) to the origin.
//! let mut qp = OcpQp::new(2, 1, 10, &[]).unwrap();
//! for k in 0..10 {
//!     qp.a[k] = array![[1.0, 0.1], [0.0, 1.0]];
//!     qp.b[k] = array![[0.005], [0.1]];
//!     qp.q[k] = ndarray::Array2::eye(2);
//!     qp.r[k] = array![[0.1]];
//!     qp.u_lower[k][0] = -1.0;
//!     qp.u_upper[k][0] = 1.0;
//! }
//! qp.q[10] = ndarray::Array2::eye(2) * 10.0;
//! let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
//! let info = solver.solve(&qp, array![1.0, 0.0].view()).unwrap();
//! assert_eq!(info.status, SolveStatus::Solved);
//! assert!(solver.u0()[0] >= -1.0 - 1e-6 && solver.u0()[0] <= 1.0 + 1e-6);
//! # assert!(solver.u0()[0] < -0.99); // saturated braking at the start
//! ```

mod dense;

use std::time::{Duration, Instant};

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{check_finite, Error, Result};
use crate::mpc::ocp::OcpQp;
use crate::mpc::status::{SolveInfo, SolveStatus};

use crate::linalg::simd::{dispatch, SimdTask};
use dense::{
    axpy, cholesky, dot, gemm_nn, gemm_tn, gemm_tn_lower, gemv_n, gemv_t, mirror_lower,
    syrk_tn_sub, trsm_lower, trsv_lower, trsv_lower_t,
};

/// Settings of [`RiccatiSolver`].
#[derive(Clone, Debug, PartialEq)]
pub struct RiccatiSettings {
    /// Tolerance on the scaled primal residual, dual residual and complementarity (see the
    /// [module docs](self)); default `1e-6`.
    pub eps: f64,
    /// Iteration cap; default 50.
    pub max_iter: usize,
    /// Wall-clock budget checked every iteration; default none.
    pub time_limit: Option<Duration>,
    /// Start from the previous (possibly shifted) primal solution; default `false`.
    pub warm_start: bool,
}

impl Default for RiccatiSettings {
    fn default() -> Self {
        Self {
            eps: 1e-6,
            max_iter: 50,
            time_limit: None,
            warm_start: false,
        }
    }
}

impl RiccatiSettings {
    /// Sets [`eps`](Self::eps).
    #[must_use]
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets [`max_iter`](Self::max_iter).
    #[must_use]
    pub fn max_iter(mut self, max_iter: usize) -> Self {
        self.max_iter = max_iter;
        self
    }

    /// Sets [`time_limit`](Self::time_limit).
    #[must_use]
    pub fn time_limit(mut self, limit: Option<Duration>) -> Self {
        self.time_limit = limit;
        self
    }

    /// Sets [`warm_start`](Self::warm_start).
    #[must_use]
    pub fn warm_start(mut self, on: bool) -> Self {
        self.warm_start = on;
        self
    }

    /// Checks the ranges: `eps` finite in `(0, 1)`, `max_iter ≥ 1`.
    ///
    /// ```
    /// use intent_engine::mpc::riccati::RiccatiSettings;
    /// assert!(RiccatiSettings::default().validate().is_ok());
    /// assert!(RiccatiSettings::default().eps(0.0).validate().is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0 && self.eps < 1.0) {
            return Err(Error::invalid_value(
                "eps",
                format!("must be in (0, 1), got {}", self.eps),
            ));
        }
        if self.max_iter == 0 {
            return Err(Error::invalid_value("max_iter", "must be at least 1"));
        }
        Ok(())
    }
}

/// What an inequality constrains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `u_k[j]`.
    U(usize),
    /// `x_k[j]`.
    X(usize),
    /// General row `r` of the stage.
    Row(usize),
}

/// One finite bound: `σ·v ≥ b̃` with `σ = −1` for an upper bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Con {
    kind: Kind,
    upper: bool,
    soft: bool,
}

impl Con {
    #[inline(always)]
    fn sigma(self) -> f64 {
        if self.upper {
            -1.0
        } else {
            1.0
        }
    }
}

/// Visits the finite bounds of `qp` stage by stage in the solver's fixed order, with their
/// bound value `b̃` (already multiplied by `σ`) and soft weights.
fn for_each_con(qp: &OcpQp, mut f: impl FnMut(usize, Con, f64, f64, f64)) {
    let n = qp.horizon;
    for k in 0..=n {
        if k < n {
            let (los, his) = (&qp.u_lower[k], &qp.u_upper[k]);
            for j in 0..los.len().min(his.len()) {
                let (lo, hi) = (los[j], his[j]);
                let kind = Kind::U(j);
                if lo.is_finite() {
                    f(
                        k,
                        Con {
                            kind,
                            upper: false,
                            soft: false,
                        },
                        lo,
                        0.0,
                        0.0,
                    );
                }
                if hi.is_finite() {
                    f(
                        k,
                        Con {
                            kind,
                            upper: true,
                            soft: false,
                        },
                        -hi,
                        0.0,
                        0.0,
                    );
                }
            }
        }
        if k > 0 {
            let (los, his) = (&qp.x_lower[k], &qp.x_upper[k]);
            for j in 0..los.len().min(his.len()) {
                let (lo, hi) = (los[j], his[j]);
                let kind = Kind::X(j);
                if lo.is_finite() {
                    f(
                        k,
                        Con {
                            kind,
                            upper: false,
                            soft: false,
                        },
                        lo,
                        0.0,
                        0.0,
                    );
                }
                if hi.is_finite() {
                    f(
                        k,
                        Con {
                            kind,
                            upper: true,
                            soft: false,
                        },
                        -hi,
                        0.0,
                        0.0,
                    );
                }
            }
        }
        let rows = &qp.rows[k];
        for r in 0..rows.len() {
            let (lo, hi, soft) = (rows.lower[r], rows.upper[r], rows.soft[r]);
            let (l1, l2) = if soft {
                (rows.soft_l1[r], rows.soft_l2[r])
            } else {
                (0.0, 0.0)
            };
            let kind = Kind::Row(r);
            if lo.is_finite() {
                f(
                    k,
                    Con {
                        kind,
                        upper: false,
                        soft,
                    },
                    lo,
                    l1,
                    l2,
                );
            }
            if hi.is_finite() {
                f(
                    k,
                    Con {
                        kind,
                        upper: true,
                        soft,
                    },
                    -hi,
                    l1,
                    l2,
                );
            }
        }
    }
}

/// Fraction of the step to the boundary of the positive orthant.
const TAU: f64 = 0.995;

/// The Riccati interior-point solver with its preallocated workspace.
///
/// Created for one problem *shape*: dimensions, per-stage row counts, which bounds are finite
/// and which rows are soft. Data (matrices, bound values, weights) may change freely between
/// solves; a shape change is reported by [`solve`](Self::solve) as an error and needs
/// [`setup`](Self::setup).
///
/// ```
/// use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
/// use intent_engine::mpc::OcpQp;
/// use ndarray::array;
///
/// // Scalar integrator x+ = x + u, cost Σ x² + u², from x0 = 1: the LQR solution.
/// let mut qp = OcpQp::new(1, 1, 5, &[]).unwrap();
/// for k in 0..5 {
///     qp.a[k][[0, 0]] = 1.0;
///     qp.b[k][[0, 0]] = 1.0;
///     qp.q[k][[0, 0]] = 1.0;
/// }
/// qp.q[5][[0, 0]] = 1.0;
/// let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
/// let info = solver.solve(&qp, array![1.0].view()).unwrap();
/// assert!(info.status.is_solved());
/// assert_eq!(solver.x().dim(), (6, 1));
/// # assert!(solver.x()[[5, 0]].abs() < 0.1);
/// ```
#[derive(Clone, Debug)]
pub struct RiccatiSolver {
    settings: RiccatiSettings,
    nx: usize,
    nu: usize,
    n: usize,
    /// Row counts per stage and their prefix sums (`row_start[k]` is stage k's first row).
    row_start: Vec<usize>,
    cons: Vec<Con>,
    /// Stage of each inequality.
    con_stage: Vec<usize>,
    /// `con_start[k]..con_start[k+1]` are stage k's inequalities.
    con_start: Vec<usize>,

    // Problem data, copied (row-major) at the start of each solve.
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    q: Vec<f64>,
    r: Vec<f64>,
    s: Vec<f64>,
    ql: Vec<f64>,
    rl: Vec<f64>,
    rc: Vec<f64>,
    rd: Vec<f64>,
    bt: Vec<f64>,
    l1: Vec<f64>,
    l2: Vec<f64>,
    rlo: Vec<f64>,
    rhi: Vec<f64>,
    rsoft: Vec<bool>,
    rl1: Vec<f64>,
    rl2: Vec<f64>,

    // Iterate.
    x: Vec<f64>,
    u: Vec<f64>,
    pi: Vec<f64>,
    t: Vec<f64>,
    lam: Vec<f64>,
    w: Vec<f64>,
    mu: Vec<f64>,
    // Best iterate so far.
    bx: Vec<f64>,
    bu: Vec<f64>,
    bpi: Vec<f64>,
    bt_: Vec<f64>,
    blam: Vec<f64>,
    bw: Vec<f64>,
    bmu: Vec<f64>,

    // Residuals.
    sv: Vec<f64>,
    rp: Vec<f64>,
    rw: Vec<f64>,
    rdyn: Vec<f64>,
    rx: Vec<f64>,
    ru: Vec<f64>,
    cgx: Vec<f64>,
    cgu: Vec<f64>,

    // Newton system.
    qt: Vec<f64>,
    rt: Vec<f64>,
    st: Vec<f64>,
    gx: Vec<f64>,
    gu: Vec<f64>,
    dd: Vec<f64>,
    ddw: Vec<f64>,
    den: Vec<f64>,
    hh: Vec<f64>,
    aa: Vec<f64>,

    // Factorisation.
    pm: Vec<f64>,
    lr: Vec<f64>,
    sk: Vec<f64>,
    pv: Vec<f64>,
    gk: Vec<f64>,
    pa: Vec<f64>,
    pb: Vec<f64>,
    tx: Vec<f64>,
    x0: Vec<f64>,

    // Steps.
    dx: Vec<f64>,
    du: Vec<f64>,
    dpi: Vec<f64>,
    dt: Vec<f64>,
    dlam: Vec<f64>,
    dw: Vec<f64>,
    dmu: Vec<f64>,
    dt_a: Vec<f64>,
    dlam_a: Vec<f64>,
    dw_a: Vec<f64>,
    dmu_a: Vec<f64>,

    // Outputs.
    u_dual: Vec<f64>,
    x_dual: Vec<f64>,
    row_dual: Vec<f64>,
    viol: Vec<f64>,
    objective: f64,
    info: SolveInfo,
    has_solution: bool,
}

impl RiccatiSolver {
    /// A solver whose workspace fits `qp`'s shape.
    ///
    /// # Errors
    /// Invalid settings ([`RiccatiSettings::validate`]) or problem ([`OcpQp::validate`]).
    pub fn new(qp: &OcpQp, settings: RiccatiSettings) -> Result<Self> {
        settings.validate()?;
        qp.validate()?;
        let mut s = Self {
            settings,
            nx: 0,
            nu: 0,
            n: 0,
            row_start: Vec::new(),
            cons: Vec::new(),
            con_stage: Vec::new(),
            con_start: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
            c: Vec::new(),
            q: Vec::new(),
            r: Vec::new(),
            s: Vec::new(),
            ql: Vec::new(),
            rl: Vec::new(),
            rc: Vec::new(),
            rd: Vec::new(),
            bt: Vec::new(),
            l1: Vec::new(),
            l2: Vec::new(),
            rlo: Vec::new(),
            rhi: Vec::new(),
            rsoft: Vec::new(),
            rl1: Vec::new(),
            rl2: Vec::new(),
            x: Vec::new(),
            u: Vec::new(),
            pi: Vec::new(),
            t: Vec::new(),
            lam: Vec::new(),
            w: Vec::new(),
            mu: Vec::new(),
            bx: Vec::new(),
            bu: Vec::new(),
            bpi: Vec::new(),
            bt_: Vec::new(),
            blam: Vec::new(),
            bw: Vec::new(),
            bmu: Vec::new(),
            sv: Vec::new(),
            rp: Vec::new(),
            rw: Vec::new(),
            rdyn: Vec::new(),
            rx: Vec::new(),
            ru: Vec::new(),
            cgx: Vec::new(),
            cgu: Vec::new(),
            qt: Vec::new(),
            rt: Vec::new(),
            st: Vec::new(),
            gx: Vec::new(),
            gu: Vec::new(),
            dd: Vec::new(),
            ddw: Vec::new(),
            den: Vec::new(),
            hh: Vec::new(),
            aa: Vec::new(),
            pm: Vec::new(),
            lr: Vec::new(),
            sk: Vec::new(),
            pv: Vec::new(),
            gk: Vec::new(),
            pa: Vec::new(),
            pb: Vec::new(),
            tx: Vec::new(),
            x0: Vec::new(),
            dx: Vec::new(),
            du: Vec::new(),
            dpi: Vec::new(),
            dt: Vec::new(),
            dlam: Vec::new(),
            dw: Vec::new(),
            dmu: Vec::new(),
            dt_a: Vec::new(),
            dlam_a: Vec::new(),
            dw_a: Vec::new(),
            dmu_a: Vec::new(),
            u_dual: Vec::new(),
            x_dual: Vec::new(),
            row_dual: Vec::new(),
            viol: Vec::new(),
            objective: f64::NAN,
            info: SolveInfo::default(),
            has_solution: false,
        };
        s.setup(qp)?;
        Ok(s)
    }

    /// Re-sizes the workspace for a new problem shape (allocates); the stored solution is
    /// dropped.
    ///
    /// ```
    /// use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
    /// use intent_engine::mpc::OcpQp;
    /// let qp = OcpQp::new(2, 1, 4, &[]).unwrap();
    /// let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    /// let mut bounded = qp.clone();
    /// bounded.u_upper[0][0] = 1.0; // a new finite bound changes the shape
    /// assert!(solver.solve(&bounded, ndarray::arr1(&[0.0, 0.0]).view()).is_err());
    /// solver.setup(&bounded).unwrap();
    /// assert!(solver.solve(&bounded, ndarray::arr1(&[0.0, 0.0]).view()).is_ok());
    /// ```
    ///
    /// # Errors
    /// An invalid problem ([`OcpQp::validate`]).
    pub fn setup(&mut self, qp: &OcpQp) -> Result<()> {
        qp.validate()?;
        let (nx, nu, n) = (qp.nx, qp.nu, qp.horizon);
        self.nx = nx;
        self.nu = nu;
        self.n = n;
        self.row_start.clear();
        self.row_start.push(0);
        for k in 0..=n {
            let last = *self.row_start.last().unwrap_or(&0);
            self.row_start.push(last + qp.rows[k].len());
        }
        let nrows = self.row_start[n + 1];
        self.cons.clear();
        self.con_stage.clear();
        let (cons, stages) = (&mut self.cons, &mut self.con_stage);
        for_each_con(qp, |k, con, _, _, _| {
            cons.push(con);
            stages.push(k);
        });
        let m = self.cons.len();
        self.con_start.clear();
        let mut i = 0;
        for k in 0..=n + 1 {
            while i < m && self.con_stage[i] < k {
                i += 1;
            }
            self.con_start.push(i);
        }
        let z = |len: usize| vec![0.0; len];
        let (nxx, nuu, nux) = (nx * nx, nu * nu, nu * nx);
        self.a = z(n * nxx);
        self.b = z(n * nx * nu);
        self.c = z(n * nx);
        self.q = z((n + 1) * nxx);
        self.r = z(n * nuu);
        self.s = z(n * nux);
        self.ql = z((n + 1) * nx);
        self.rl = z(n * nu);
        self.rc = z(nrows * nx);
        self.rd = z(nrows * nu);
        self.rlo = z(nrows);
        self.rhi = z(nrows);
        self.rsoft = vec![false; nrows];
        self.rl1 = z(nrows);
        self.rl2 = z(nrows);
        for v in [&mut self.bt, &mut self.l1, &mut self.l2] {
            *v = z(m);
        }
        self.x = z((n + 1) * nx);
        self.u = z(n * nu);
        self.pi = z(n * nx);
        self.bx = z((n + 1) * nx);
        self.bu = z(n * nu);
        self.bpi = z(n * nx);
        for v in [
            &mut self.t,
            &mut self.lam,
            &mut self.w,
            &mut self.mu,
            &mut self.bt_,
            &mut self.blam,
            &mut self.bw,
            &mut self.bmu,
            &mut self.sv,
            &mut self.rp,
            &mut self.rw,
            &mut self.dd,
            &mut self.ddw,
            &mut self.den,
            &mut self.hh,
            &mut self.aa,
            &mut self.dt,
            &mut self.dlam,
            &mut self.dw,
            &mut self.dmu,
            &mut self.dt_a,
            &mut self.dlam_a,
            &mut self.dw_a,
            &mut self.dmu_a,
        ] {
            *v = z(m);
        }
        self.rdyn = z(n * nx);
        self.rx = z((n + 1) * nx);
        self.ru = z(n * nu);
        self.cgx = z((n + 1) * nx);
        self.cgu = z(n * nu);
        self.qt = z((n + 1) * nxx);
        self.rt = z(n * nuu);
        self.st = z(n * nux);
        self.gx = z((n + 1) * nx);
        self.gu = z(n * nu);
        self.pm = z((n + 1) * nxx);
        self.lr = z(n * nuu);
        self.sk = z(n * nux);
        self.pv = z((n + 1) * nx);
        self.gk = z(n * nu);
        self.pa = z(nxx);
        self.pb = z(nx * nu);
        self.tx = z(nx);
        self.x0 = z(nx);
        self.dx = z((n + 1) * nx);
        self.du = z(n * nu);
        self.dpi = z(n * nx);
        self.u_dual = z(n * nu);
        self.x_dual = z((n + 1) * nx);
        self.row_dual = z(nrows);
        self.viol = z(nrows);
        self.objective = f64::NAN;
        self.info = SolveInfo::default();
        self.has_solution = false;
        Ok(())
    }

    /// The settings.
    pub fn settings(&self) -> &RiccatiSettings {
        &self.settings
    }

    /// Replaces the settings (the workspace does not depend on them).
    ///
    /// # Errors
    /// Invalid settings ([`RiccatiSettings::validate`]); the old ones are kept.
    pub fn set_settings(&mut self, settings: RiccatiSettings) -> Result<()> {
        settings.validate()?;
        self.settings = settings;
        Ok(())
    }

    /// Number of inequalities (finite bound sides) the workspace holds.
    pub fn num_inequalities(&self) -> usize {
        self.cons.len()
    }

    /// Checks that `qp` has the shape the workspace was set up for (no allocation).
    fn check_shape(&self, qp: &OcpQp) -> Result<()> {
        if qp.nx != self.nx || qp.nu != self.nu || qp.horizon != self.n {
            return Err(Error::shape(
                "qp",
                format!(
                    "workspace is for nx = {}, nu = {}, N = {}; got {}, {}, {} (call setup)",
                    self.nx, self.nu, self.n, qp.nx, qp.nu, qp.horizon
                ),
            ));
        }
        for k in 0..=self.n {
            if qp.rows[k].len() != self.row_start[k + 1] - self.row_start[k] {
                return Err(Error::shape(
                    "qp.rows",
                    format!(
                        "stage {k} has {} rows, the workspace {} (call setup)",
                        qp.rows[k].len(),
                        self.row_start[k + 1] - self.row_start[k]
                    ),
                ));
            }
        }
        let mut i = 0;
        let mut same = true;
        let cons = &self.cons;
        let stages = &self.con_stage;
        for_each_con(qp, |k, con, _, _, _| {
            if i >= cons.len() || cons[i] != con || stages[i] != k {
                same = false;
            }
            i += 1;
        });
        if !same || i != cons.len() {
            return Err(Error::invalid_value(
                "qp",
                "the pattern of finite bounds or soft rows differs from the workspace (call setup)",
            ));
        }
        Ok(())
    }

    /// Whether every field of `qp` has the workspace's dimensions (reads no data).
    fn dims_ok(&self, qp: &OcpQp) -> bool {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let vecs = |v: &[ndarray::Array1<f64>], count: usize, len: usize| {
            v.len() == count && v.iter().all(|a| a.len() == len)
        };
        let mats = |v: &[ndarray::Array2<f64>], count: usize, shape: (usize, usize)| {
            v.len() == count && v.iter().all(|a| a.dim() == shape)
        };
        qp.nx == nx
            && qp.nu == nu
            && qp.horizon == n
            && mats(&qp.a, n, (nx, nx))
            && mats(&qp.b, n, (nx, nu))
            && vecs(&qp.c, n, nx)
            && mats(&qp.q, n + 1, (nx, nx))
            && mats(&qp.r, n, (nu, nu))
            && mats(&qp.s, n, (nu, nx))
            && vecs(&qp.q_lin, n + 1, nx)
            && vecs(&qp.r_lin, n, nu)
            && vecs(&qp.u_lower, n, nu)
            && vecs(&qp.u_upper, n, nu)
            && vecs(&qp.x_lower, n + 1, nx)
            && vecs(&qp.x_upper, n + 1, nx)
            && qp.rows.len() == n + 1
            && qp.rows.iter().enumerate().all(|(k, r)| {
                let m = self.row_start[k + 1] - self.row_start[k];
                r.c.dim() == (m, nx)
                    && r.d.dim() == (m, nu)
                    && r.lower.len() == m
                    && r.upper.len() == m
                    && r.soft.len() == m
                    && r.soft_l1.len() == m
                    && r.soft_l2.len() == m
            })
    }

    /// The checks of [`OcpQp::validate`] on the loaded (flat) data, without error messages.
    fn data_ok(&self, qp: &OcpQp) -> bool {
        let fin = |v: &[f64]| v.iter().all(|x| x.is_finite());
        let bounds = |lo: &ndarray::Array1<f64>, hi: &ndarray::Array1<f64>| {
            (0..lo.len().min(hi.len())).all(|j| {
                let (l, h) = (lo[j], hi[j]);
                !l.is_nan() && !h.is_nan() && l != f64::INFINITY && h != f64::NEG_INFINITY && l <= h
            })
        };
        let n = self.n;
        let mut ok = fin(&self.a)
            && fin(&self.b)
            && fin(&self.c)
            && fin(&self.q)
            && fin(&self.r)
            && fin(&self.s)
            && fin(&self.ql)
            && fin(&self.rl)
            && fin(&self.rc)
            && fin(&self.rd)
            && fin(&self.rl1)
            && fin(&self.rl2)
            && self.rl1.iter().chain(&self.rl2).all(|&w| w >= 0.0)
            && self.rd[self.row_start[n] * self.nu..]
                .iter()
                .all(|&v| v == 0.0);
        for k in 0..n {
            ok &= bounds(&qp.u_lower[k], &qp.u_upper[k]);
        }
        for k in 0..=n {
            ok &= bounds(&qp.x_lower[k], &qp.x_upper[k])
                && bounds(&qp.rows[k].lower, &qp.rows[k].upper);
        }
        ok
    }

    /// Copies the problem data into the workspace.
    fn load(&mut self, qp: &OcpQp) {
        fn copy2(dst: &mut [f64], src: &ndarray::Array2<f64>) {
            match src.as_slice() {
                Some(sl) if sl.len() == dst.len() => dst.copy_from_slice(sl),
                _ => {
                    for (d, s) in dst.iter_mut().zip(src.iter()) {
                        *d = *s;
                    }
                }
            }
        }
        fn copy1(dst: &mut [f64], src: &ndarray::Array1<f64>) {
            match src.as_slice() {
                Some(sl) if sl.len() == dst.len() => dst.copy_from_slice(sl),
                _ => {
                    for (d, s) in dst.iter_mut().zip(src.iter()) {
                        *d = *s;
                    }
                }
            }
        }
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let (nxx, nuu, nux) = (nx * nx, nu * nu, nu * nx);
        for k in 0..n {
            copy2(&mut self.a[k * nxx..(k + 1) * nxx], &qp.a[k]);
            copy2(&mut self.b[k * nx * nu..(k + 1) * nx * nu], &qp.b[k]);
            copy1(&mut self.c[k * nx..(k + 1) * nx], &qp.c[k]);
            copy2(&mut self.r[k * nuu..(k + 1) * nuu], &qp.r[k]);
            copy2(&mut self.s[k * nux..(k + 1) * nux], &qp.s[k]);
            copy1(&mut self.rl[k * nu..(k + 1) * nu], &qp.r_lin[k]);
        }
        for k in 0..=n {
            copy2(&mut self.q[k * nxx..(k + 1) * nxx], &qp.q[k]);
            copy1(&mut self.ql[k * nx..(k + 1) * nx], &qp.q_lin[k]);
            let rows = &qp.rows[k];
            let r0 = self.row_start[k];
            let m = rows.len();
            copy2(&mut self.rc[r0 * nx..(r0 + m) * nx], &rows.c);
            copy2(&mut self.rd[r0 * nu..(r0 + m) * nu], &rows.d);
            copy1(&mut self.rlo[r0..r0 + m], &rows.lower);
            copy1(&mut self.rhi[r0..r0 + m], &rows.upper);
            for r in 0..m {
                self.rsoft[r0 + r] = rows.soft[r];
                self.rl1[r0 + r] = rows.soft_l1[r];
                self.rl2[r0 + r] = rows.soft_l2[r];
            }
        }
        let mut i = 0;
        let (bt, l1, l2) = (&mut self.bt, &mut self.l1, &mut self.l2);
        // A pattern that differs from the workspace is reported afterwards by `check_shape`;
        // here it must only not write out of bounds.
        for_each_con(qp, |_, _, b, w1, w2| {
            if i < bt.len() {
                bt[i] = b;
                l1[i] = w1;
                l2[i] = w2;
            }
            i += 1;
        });
    }

    /// `σ·v` of every inequality at the current iterate, into `sv`.
    #[inline(always)]
    fn eval_cons<const FMA: bool>(&mut self) {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        for k in 0..=n {
            let xk = &self.x[k * nx..(k + 1) * nx];
            let uk = if k < n {
                &self.u[k * nu..(k + 1) * nu]
            } else {
                &self.u[0..0]
            };
            for i in self.con_start[k]..self.con_start[k + 1] {
                let con = self.cons[i];
                let v = match con.kind {
                    Kind::U(j) => uk[j],
                    Kind::X(j) => xk[j],
                    Kind::Row(r) => {
                        let row = self.row_start[k] + r;
                        let mut v = dot::<FMA>(&self.rc[row * nx..(row + 1) * nx], xk);
                        if k < n {
                            v += dot::<FMA>(&self.rd[row * nu..(row + 1) * nu], uk);
                        }
                        v
                    }
                };
                self.sv[i] = con.sigma() * v;
            }
        }
    }

    /// Adds `coef·σ·∇v` of inequality `i` (stage `k`) to the stage vectors `gx_k`, `gu_k`.
    #[inline(always)]
    fn scatter_grad<const FMA: bool>(
        &self,
        i: usize,
        k: usize,
        coef: f64,
        gx: &mut [f64],
        gu: &mut [f64],
    ) {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let con = self.cons[i];
        let c = coef * con.sigma();
        match con.kind {
            Kind::U(j) => gu[k * nu + j] += c,
            Kind::X(j) => gx[k * nx + j] += c,
            Kind::Row(r) => {
                let row = self.row_start[k] + r;
                if k > 0 {
                    axpy::<FMA>(
                        c,
                        &self.rc[row * nx..(row + 1) * nx],
                        &mut gx[k * nx..(k + 1) * nx],
                    );
                }
                if k < n {
                    axpy::<FMA>(
                        c,
                        &self.rd[row * nu..(row + 1) * nu],
                        &mut gu[k * nu..(k + 1) * nu],
                    );
                }
            }
        }
    }

    /// All residuals at the current iterate; returns their norms.
    #[inline(always)]
    fn residuals<const FMA: bool>(&mut self, x0: &[f64]) -> Norms {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let (nxx, nuu, nux) = (nx * nx, nu * nu, nu * nx);
        self.x[..nx].copy_from_slice(x0);
        self.eval_cons::<FMA>();
        // Dynamics.
        let mut res_dyn = 0.0f64;
        for k in 0..n {
            let rd = &mut self.rdyn[k * nx..(k + 1) * nx];
            gemv_n::<FMA>(
                nx,
                nx,
                &self.a[k * nxx..(k + 1) * nxx],
                &self.x[k * nx..(k + 1) * nx],
                rd,
                false,
            );
            gemv_n::<FMA>(
                nx,
                nu,
                &self.b[k * nx * nu..(k + 1) * nx * nu],
                &self.u[k * nu..(k + 1) * nu],
                rd,
                true,
            );
            for j in 0..nx {
                rd[j] += self.c[k * nx + j] - self.x[(k + 1) * nx + j];
                res_dyn = res_dyn.max(rd[j].abs());
            }
        }
        // Cost gradient Hz + f.
        for k in 0..=n {
            let xk = &self.x[k * nx..(k + 1) * nx];
            let g = &mut self.cgx[k * nx..(k + 1) * nx];
            g.copy_from_slice(&self.ql[k * nx..(k + 1) * nx]);
            gemv_n::<FMA>(nx, nx, &self.q[k * nxx..(k + 1) * nxx], xk, g, true);
            if k < n {
                let uk = &self.u[k * nu..(k + 1) * nu];
                gemv_t::<FMA>(nu, nx, &self.s[k * nux..(k + 1) * nux], uk, g, true);
                let gu = &mut self.cgu[k * nu..(k + 1) * nu];
                gu.copy_from_slice(&self.rl[k * nu..(k + 1) * nu]);
                gemv_n::<FMA>(nu, nu, &self.r[k * nuu..(k + 1) * nuu], uk, gu, true);
                gemv_n::<FMA>(nu, nx, &self.s[k * nux..(k + 1) * nux], xk, gu, true);
            }
        }
        let mut cost_norm = 0.0f64;
        for v in self.cgx[nx..].iter().chain(&self.cgu) {
            cost_norm = cost_norm.max(v.abs());
        }
        // Constraint part of stationarity: Aᵀπ_k − π_{k−1}, Bᵀπ_k, −Σ σλ∇v.
        self.rx.fill(0.0);
        self.ru.fill(0.0);
        for k in 0..n {
            let pk = &self.pi[k * nx..(k + 1) * nx];
            gemv_t::<FMA>(
                nx,
                nx,
                &self.a[k * nxx..(k + 1) * nxx],
                pk,
                &mut self.rx[k * nx..(k + 1) * nx],
                true,
            );
            gemv_t::<FMA>(
                nx,
                nu,
                &self.b[k * nx * nu..(k + 1) * nx * nu],
                pk,
                &mut self.ru[k * nu..(k + 1) * nu],
                true,
            );
            for j in 0..nx {
                self.rx[(k + 1) * nx + j] -= pk[j];
            }
        }
        let mut rx = std::mem::take(&mut self.rx);
        let mut ru = std::mem::take(&mut self.ru);
        for k in 0..=n {
            for i in self.con_start[k]..self.con_start[k + 1] {
                self.scatter_grad::<FMA>(i, k, -self.lam[i], &mut rx, &mut ru);
            }
        }
        // ρ (constraint part) is what the infeasibility certificate needs; keep its norm, then
        // add the cost part.
        let mut rho = 0.0f64;
        for v in rx[nx..].iter().chain(&ru) {
            rho = rho.max(v.abs());
        }
        let mut res_dual = 0.0f64;
        for j in nx..rx.len() {
            rx[j] += self.cgx[j];
            res_dual = res_dual.max(rx[j].abs());
        }
        for j in 0..ru.len() {
            ru[j] += self.cgu[j];
            res_dual = res_dual.max(ru[j].abs());
        }
        self.rx = rx;
        self.ru = ru;
        // Inequalities.
        let mut res_ineq = 0.0f64;
        let mut comp = 0.0f64;
        let mut gap = 0.0f64;
        let mut pairs = 0usize;
        let mut cert = 0.0f64;
        let mut lam_max = 0.0f64;
        for i in 0..self.cons.len() {
            let soft = self.cons[i].soft;
            let w = if soft { self.w[i] } else { 0.0 };
            self.rp[i] = self.sv[i] - self.bt[i] + w - self.t[i];
            res_ineq = res_ineq.max(self.rp[i].abs());
            let c1 = self.lam[i] * self.t[i];
            comp = comp.max(c1);
            gap += c1;
            pairs += 1;
            lam_max = lam_max.max(self.lam[i]);
            if soft {
                self.rw[i] = self.l1[i] + self.l2[i] * w - self.lam[i] - self.mu[i];
                res_dual = res_dual.max(self.rw[i].abs());
                let c2 = self.mu[i] * w;
                comp = comp.max(c2);
                gap += c2;
                pairs += 1;
            } else {
                // Certificate: h = b̃ minus the part of σv fixed by x0 (stage-0 rows).
                let mut h = self.bt[i];
                if self.con_stage[i] == 0 {
                    if let Kind::Row(r) = self.cons[i].kind {
                        h -= self.cons[i].sigma() * dot::<FMA>(&self.rc[r * nx..(r + 1) * nx], x0);
                    }
                }
                cert += self.lam[i] * h;
            }
        }
        // −eᵀπ = Σ π_kᵀ c_k + π_0ᵀ A_0 x0.
        let mut pi_max = 0.0f64;
        for k in 0..n {
            let pk = &self.pi[k * nx..(k + 1) * nx];
            cert += dot::<FMA>(pk, &self.c[k * nx..(k + 1) * nx]);
            for v in pk {
                pi_max = pi_max.max(v.abs());
            }
        }
        if n > 0 {
            gemv_n::<FMA>(nx, nx, &self.a[..nxx], x0, &mut self.tx, false);
            cert += dot::<FMA>(&self.pi[..nx], &self.tx);
        }
        let (mut z_max, mut z_l1) = (0.0f64, 0.0f64);
        for v in self.x.iter().chain(&self.u) {
            z_max = z_max.max(v.abs());
            z_l1 += v.abs();
        }
        Norms {
            primal: res_dyn.max(res_ineq),
            dual: res_dual,
            comp,
            mu: if pairs > 0 { gap / pairs as f64 } else { 0.0 },
            gap,
            pscale: z_max.max(1.0),
            dscale: cost_norm.max(lam_max).max(pi_max).max(1.0),
            rho,
            cert,
            dual_max: lam_max.max(pi_max),
            cost_norm,
            z_l1,
        }
    }

    /// Barrier weights, stage Hessians and the Riccati factorisation.
    #[inline(always)]
    fn factor<const FMA: bool>(&mut self) -> Result<()> {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let (nxx, nuu, nux, nxu) = (nx * nx, nu * nu, nu * nx, nx * nu);
        // Per-inequality weights.
        for i in 0..self.cons.len() {
            let d = self.lam[i] / self.t[i];
            self.dd[i] = d;
            if self.cons[i].soft {
                let dw = self.mu[i] / self.w[i];
                self.ddw[i] = dw;
                let den = self.l2[i] + dw + d;
                self.den[i] = den;
                self.hh[i] = d * (self.l2[i] + dw) / den;
            } else {
                self.hh[i] = d;
            }
        }
        self.qt.copy_from_slice(&self.q);
        self.rt.copy_from_slice(&self.r);
        self.st.copy_from_slice(&self.s);
        for k in 0..=n {
            for i in self.con_start[k]..self.con_start[k + 1] {
                let h = self.hh[i];
                match self.cons[i].kind {
                    Kind::U(j) => self.rt[k * nuu + j * nu + j] += h,
                    Kind::X(j) => self.qt[k * nxx + j * nx + j] += h,
                    Kind::Row(r) => {
                        let row = self.row_start[k] + r;
                        let cr = &self.rc[row * nx..(row + 1) * nx];
                        if k > 0 {
                            let qk = &mut self.qt[k * nxx..(k + 1) * nxx];
                            for a in 0..nx {
                                let ha = h * cr[a];
                                if ha != 0.0 {
                                    axpy::<FMA>(ha, cr, &mut qk[a * nx..(a + 1) * nx]);
                                }
                            }
                        }
                        if k < n {
                            let dr = &self.rd[row * nu..(row + 1) * nu];
                            for a in 0..nu {
                                let ha = h * dr[a];
                                if ha != 0.0 {
                                    axpy::<FMA>(
                                        ha,
                                        dr,
                                        &mut self.rt[k * nuu + a * nu..k * nuu + (a + 1) * nu],
                                    );
                                    if k > 0 {
                                        axpy::<FMA>(
                                            ha,
                                            cr,
                                            &mut self.st[k * nux + a * nx..k * nux + (a + 1) * nx],
                                        );
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        // Backward Riccati on the matrices.
        self.pm[n * nxx..].copy_from_slice(&self.qt[n * nxx..]);
        for k in (0..n).rev() {
            let (pk, pk1) = self.pm.split_at_mut((k + 1) * nxx);
            let p = &pk1[..nxx];
            let ak = &self.a[k * nxx..(k + 1) * nxx];
            let bk = &self.b[k * nxu..(k + 1) * nxu];
            gemm_nn::<FMA>(nx, nu, nx, p, bk, &mut self.pb, false);
            let lk = &mut self.lr[k * nuu..(k + 1) * nuu];
            lk.copy_from_slice(&self.rt[k * nuu..(k + 1) * nuu]);
            gemm_tn::<FMA>(nu, nu, nx, bk, &self.pb, lk, true);
            if let Err(e) = cholesky::<FMA>(nu, lk, 1e-13) {
                return Err(Error::Numerical {
                    what: "Riccati factorisation",
                    detail: format!(
                        "stage {k}: R + BᵀPB is not positive definite (pivot {} = {:e}); \
                         check that R_k is positive definite and Q_k positive semi-definite",
                        e.pivot, e.value
                    ),
                });
            }
            if k == 0 {
                break;
            }
            gemm_nn::<FMA>(nx, nx, nx, p, ak, &mut self.pa, false);
            let skk = &mut self.sk[k * nux..(k + 1) * nux];
            skk.copy_from_slice(&self.st[k * nux..(k + 1) * nux]);
            gemm_tn::<FMA>(nu, nx, nx, bk, &self.pa, skk, true);
            trsm_lower::<FMA>(nu, nx, lk, skk);
            let pnew = &mut pk[k * nxx..(k + 1) * nxx];
            pnew.copy_from_slice(&self.qt[k * nxx..(k + 1) * nxx]);
            // AᵀPA and ŜᵀŜ are symmetric: lower triangles, then mirrored (this also keeps P
            // exactly symmetric).
            gemm_tn_lower::<FMA>(nx, nx, ak, &self.pa, pnew);
            syrk_tn_sub::<FMA>(nx, nu, skk, pnew);
            mirror_lower(nx, pnew);
        }
        Ok(())
    }

    /// Solves the Newton system for the complementarity targets `λt → λt + corr_i` (predictor:
    /// `corrector = None`; corrector: `Some(σμ)` with the affine step in `*_a`). Writes the
    /// step into `dx, du, dpi, dt, dlam, dw, dmu`.
    #[inline(always)]
    fn newton<const FMA: bool>(&mut self, corrector: Option<f64>) {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let (nxx, nuu, nux, nxu) = (nx * nx, nu * nu, nu * nx, nx * nu);
        let m = self.cons.len();
        let rc1 = |s: &Self, i: usize| -> f64 {
            let mut v = s.lam[i] * s.t[i];
            if let Some(sm) = corrector {
                v += s.dt_a[i] * s.dlam_a[i] - sm;
            }
            v
        };
        let rc2 = |s: &Self, i: usize| -> f64 {
            let mut v = s.mu[i] * s.w[i];
            if let Some(sm) = corrector {
                v += s.dw_a[i] * s.dmu_a[i] - sm;
            }
            v
        };
        // LQ gradient g = r − Σ σβ∇v.
        let mut gx = std::mem::take(&mut self.gx);
        let mut gu = std::mem::take(&mut self.gu);
        gx.copy_from_slice(&self.rx);
        gu.copy_from_slice(&self.ru);
        for k in 0..=n {
            for i in self.con_start[k]..self.con_start[k + 1] {
                let d = self.dd[i];
                let c1 = rc1(self, i);
                let mut beta = -c1 / self.t[i] - d * self.rp[i];
                if self.cons[i].soft {
                    let a =
                        -self.rw[i] - c1 / self.t[i] - rc2(self, i) / self.w[i] - d * self.rp[i];
                    self.aa[i] = a;
                    beta -= d * a / self.den[i];
                }
                self.scatter_grad::<FMA>(i, k, -beta, &mut gx, &mut gu);
            }
        }
        // Backward vector pass.
        self.pv[n * nx..].copy_from_slice(&gx[n * nx..]);
        for k in (0..n).rev() {
            let p = &self.pm[(k + 1) * nxx..(k + 2) * nxx];
            let (pvk, pvk1) = self.pv.split_at_mut((k + 1) * nx);
            let pd = &mut self.tx;
            gemv_n::<FMA>(nx, nx, p, &self.rdyn[k * nx..(k + 1) * nx], pd, false);
            for j in 0..nx {
                pd[j] += pvk1[j];
            }
            let gkk = &mut self.gk[k * nu..(k + 1) * nu];
            gkk.copy_from_slice(&gu[k * nu..(k + 1) * nu]);
            gemv_t::<FMA>(nx, nu, &self.b[k * nxu..(k + 1) * nxu], pd, gkk, true);
            trsv_lower::<FMA>(nu, &self.lr[k * nuu..(k + 1) * nuu], gkk);
            if k > 0 {
                let pk = &mut pvk[k * nx..(k + 1) * nx];
                pk.copy_from_slice(&gx[k * nx..(k + 1) * nx]);
                gemv_t::<FMA>(nx, nx, &self.a[k * nxx..(k + 1) * nxx], pd, pk, true);
                let skk = &self.sk[k * nux..(k + 1) * nux];
                for a in 0..nu {
                    axpy::<FMA>(-gkk[a], &skk[a * nx..(a + 1) * nx], pk);
                }
            }
        }
        self.gx = gx;
        self.gu = gu;
        // Forward roll-out.
        self.dx[..nx].fill(0.0);
        for k in 0..n {
            let duk = &mut self.du[k * nu..(k + 1) * nu];
            duk.copy_from_slice(&self.gk[k * nu..(k + 1) * nu]);
            if k > 0 {
                gemv_n::<FMA>(
                    nu,
                    nx,
                    &self.sk[k * nux..(k + 1) * nux],
                    &self.dx[k * nx..(k + 1) * nx],
                    duk,
                    true,
                );
            }
            for v in duk.iter_mut() {
                *v = -*v;
            }
            trsv_lower_t::<FMA>(nu, &self.lr[k * nuu..(k + 1) * nuu], duk);
            let (xa, xb) = self.dx.split_at_mut((k + 1) * nx);
            let dxk1 = &mut xb[..nx];
            gemv_n::<FMA>(
                nx,
                nx,
                &self.a[k * nxx..(k + 1) * nxx],
                &xa[k * nx..],
                dxk1,
                false,
            );
            gemv_n::<FMA>(nx, nu, &self.b[k * nxu..(k + 1) * nxu], duk, dxk1, true);
            let rd = &self.rdyn[k * nx..(k + 1) * nx];
            for j in 0..nx {
                dxk1[j] += rd[j];
            }
            let dpk = &mut self.dpi[k * nx..(k + 1) * nx];
            gemv_n::<FMA>(
                nx,
                nx,
                &self.pm[(k + 1) * nxx..(k + 2) * nxx],
                dxk1,
                dpk,
                false,
            );
            let pvn = &self.pv[(k + 1) * nx..(k + 2) * nx];
            for j in 0..nx {
                dpk[j] += pvn[j];
            }
        }
        // Recover the inequality steps.
        for k in 0..=n {
            for i in self.con_start[k]..self.con_start[k + 1] {
                let ds = self.con_dv::<FMA>(i, k);
                let c1 = rc1(self, i);
                if self.cons[i].soft {
                    let dwi = (self.aa[i] - self.dd[i] * ds) / self.den[i];
                    self.dw[i] = dwi;
                    self.dt[i] = ds + dwi + self.rp[i];
                    self.dmu[i] = (-rc2(self, i) - self.mu[i] * dwi) / self.w[i];
                } else {
                    self.dt[i] = ds + self.rp[i];
                    self.dw[i] = 0.0;
                    self.dmu[i] = 0.0;
                }
                self.dlam[i] = (-c1 - self.lam[i] * self.dt[i]) / self.t[i];
            }
        }
        let _ = m;
    }

    /// `σ·Δv` of inequality `i` (stage `k`) for the current step.
    #[inline(always)]
    fn con_dv<const FMA: bool>(&self, i: usize, k: usize) -> f64 {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let con = self.cons[i];
        let v = match con.kind {
            Kind::U(j) => self.du[k * nu + j],
            Kind::X(j) => self.dx[k * nx + j],
            Kind::Row(r) => {
                let row = self.row_start[k] + r;
                let mut v = 0.0;
                if k > 0 {
                    v += dot::<FMA>(
                        &self.rc[row * nx..(row + 1) * nx],
                        &self.dx[k * nx..(k + 1) * nx],
                    );
                }
                if k < n {
                    v += dot::<FMA>(
                        &self.rd[row * nu..(row + 1) * nu],
                        &self.du[k * nu..(k + 1) * nu],
                    );
                }
                v
            }
        };
        con.sigma() * v
    }

    /// Largest step keeping `t, λ, w, μ` nonnegative (∞ when no component decreases).
    #[inline(always)]
    fn max_step<const FMA: bool>(&self) -> f64 {
        let mut alpha = f64::INFINITY;
        let ratio = |v: f64, dv: f64, a: &mut f64| {
            if dv < 0.0 {
                *a = a.min(-v / dv);
            }
        };
        for i in 0..self.cons.len() {
            ratio(self.t[i], self.dt[i], &mut alpha);
            ratio(self.lam[i], self.dlam[i], &mut alpha);
            if self.cons[i].soft {
                ratio(self.w[i], self.dw[i], &mut alpha);
                ratio(self.mu[i], self.dmu[i], &mut alpha);
            }
        }
        alpha
    }

    /// Initial slacks and multipliers for the current `x, u`.
    #[inline(always)]
    fn init_slacks<const FMA: bool>(&mut self, x0: &[f64]) {
        let (nx, n) = (self.nx, self.n);
        self.x[..nx].copy_from_slice(x0);
        self.eval_cons::<FMA>();
        // Hard multipliers start at the size of a typical cost gradient, ‖Q‖·max(1, ‖x0‖): a
        // multiplier balances one, and starting near its scale saves the IPM's first iterations
        // (16 → 11 on the quadrotor bench, unchanged on unit-scale problems).
        let mut qmax = 0.0f64;
        for k in 0..n {
            for j in 0..nx {
                qmax = qmax.max(self.q[k * nx * nx + j * nx + j].abs());
            }
        }
        let xmax = x0.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let lam0 = (qmax * xmax).clamp(1.0, 1e4);
        for i in 0..self.cons.len() {
            let s0 = self.sv[i] - self.bt[i];
            if self.cons[i].soft {
                let w = (-s0).max(0.0) + 1.0;
                self.w[i] = w;
                self.t[i] = s0 + w;
                self.lam[i] = 1.0;
                self.mu[i] = 1.0;
            } else {
                self.t[i] = s0.max(1.0);
                self.lam[i] = lam0;
                self.w[i] = 0.0;
                self.mu[i] = 0.0;
            }
        }
    }

    /// Whether the primal-dual iterate holds only finite values.
    fn iterate_is_finite(&self) -> bool {
        [
            &self.x, &self.u, &self.pi, &self.t, &self.lam, &self.w, &self.mu,
        ]
        .iter()
        .all(|v| v.iter().all(|a| a.is_finite()))
    }

    fn save_best(&mut self) {
        self.bx.copy_from_slice(&self.x);
        self.bu.copy_from_slice(&self.u);
        self.bpi.copy_from_slice(&self.pi);
        self.bt_.copy_from_slice(&self.t);
        self.blam.copy_from_slice(&self.lam);
        self.bw.copy_from_slice(&self.w);
        self.bmu.copy_from_slice(&self.mu);
    }

    fn restore_best(&mut self) {
        self.x.copy_from_slice(&self.bx);
        self.u.copy_from_slice(&self.bu);
        self.pi.copy_from_slice(&self.bpi);
        self.t.copy_from_slice(&self.bt_);
        self.lam.copy_from_slice(&self.blam);
        self.w.copy_from_slice(&self.bw);
        self.mu.copy_from_slice(&self.bmu);
    }

    /// Solves `qp` from the initial state `x0`. Does not allocate (the workspace was sized by
    /// [`new`](Self::new) / [`setup`](Self::setup)). Convergence outcomes are statuses in the
    /// returned [`SolveInfo`]; the iterate (the best one seen, when not converged) is read
    /// through [`x`](Self::x), [`u`](Self::u) and the other accessors.
    ///
    /// ```
    /// use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
    /// use intent_engine::mpc::{OcpQp, SolveStatus};
    /// use ndarray::array;
    /// let mut qp = OcpQp::new(1, 1, 3, &[]).unwrap();
    /// for k in 0..3 {
    ///     qp.a[k][[0, 0]] = 1.0;
    ///     qp.b[k][[0, 0]] = 1.0;
    ///     qp.x_lower[k + 1][0] = 5.0; // unreachable from x0 = 0 with |u| ≤ 1
    ///     qp.u_lower[k][0] = -1.0;
    ///     qp.u_upper[k][0] = 1.0;
    /// }
    /// let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    /// let info = solver.solve(&qp, array![0.0].view()).unwrap();
    /// assert_eq!(info.status, SolveStatus::PrimalInfeasible);
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::NonFinite`] for a bad `x0`, the errors of
    /// [`OcpQp::validate`], [`Error::InvalidValue`] or [`Error::Shape`] when the problem's shape
    /// differs from the workspace's (call [`setup`](Self::setup)), and [`Error::Numerical`]
    /// when a Riccati stage matrix is not positive definite (non-convex data).
    pub fn solve(&mut self, qp: &OcpQp, x0: ArrayView1<'_, f64>) -> Result<SolveInfo> {
        let start = Instant::now();
        if x0.len() != self.nx {
            return Err(Error::shape(
                "x0",
                format!("expected length {} (nx), got {}", self.nx, x0.len()),
            ));
        }
        check_finite("x0", x0.iter())?;
        // Cheap checks on the hot path; on any doubt the full `validate` names the fault.
        if !self.dims_ok(qp) {
            qp.validate()?;
            self.check_shape(qp)?;
            return Err(Error::shape(
                "qp",
                "does not match the workspace (call setup)",
            ));
        }
        self.load(qp);
        if !self.data_ok(qp) {
            qp.validate()?;
            return Err(Error::invalid_value("qp", "invalid problem data"));
        }
        self.check_shape(qp)?;
        for (d, s) in self.x0.iter_mut().zip(x0.iter()) {
            *d = *s;
        }
        let x0s = std::mem::take(&mut self.x0);
        let out = self.run(&x0s, start);
        self.x0 = x0s;
        out
    }

    /// The interior-point loop in the best SIMD tier of this CPU.
    fn run(&mut self, x0: &[f64], start: Instant) -> Result<SolveInfo> {
        dispatch(Run {
            solver: self,
            x0,
            start,
        })
    }

    /// The interior-point loop (`x0` is the validated initial state).
    #[inline(always)]
    fn run_impl<const FMA: bool>(&mut self, x0: &[f64], start: Instant) -> Result<SolveInfo> {
        let nx = self.nx;
        self.x[..nx].copy_from_slice(x0);
        if !(self.settings.warm_start && self.has_solution) {
            self.x[nx..].fill(0.0);
            self.u.fill(0.0);
            self.pi.fill(0.0);
        }
        self.has_solution = false;
        self.init_slacks::<FMA>(x0);
        let eps = self.settings.eps;
        let mut best = f64::INFINITY;
        let mut best_norms = Norms::default();
        let mut iterations = 0;
        let (status, norms) = loop {
            let nm = self.residuals::<FMA>(x0);
            // The norms are maxima that skip NaN: a NaN iterate (µ underflowing to 0/0 after a
            // stalled dual residual, or data overflowing f64) would read as converged.
            if !(nm.is_finite() && self.iterate_is_finite()) {
                if best.is_finite() {
                    // Breakdown after progress: grade the best iterate like an iteration cap.
                    self.restore_best();
                    let nm = self.residuals::<FMA>(x0);
                    break (SolveStatus::MaxIterations, nm);
                }
                return Err(non_finite_iterate());
            }
            if nm.primal <= eps * nm.pscale && nm.dual <= eps * nm.dscale && nm.comp <= eps {
                break (SolveStatus::Solved, nm);
            }
            if nm.is_infeasibility_certificate(eps) {
                break (SolveStatus::PrimalInfeasible, nm);
            }
            let merit = nm.merit();
            if merit < best {
                best = merit;
                best_norms = nm;
                self.save_best();
            }
            if iterations >= self.settings.max_iter {
                break (SolveStatus::MaxIterations, nm);
            }
            if let Some(limit) = self.settings.time_limit {
                if start.elapsed() >= limit {
                    break (SolveStatus::TimeLimit, nm);
                }
            }
            if let Err(e) = self.factor::<FMA>() {
                // Barrier weights that span too many orders of magnitude late in a solve: keep
                // the best iterate if it is acceptable, else report the failure.
                if iterations > 0 && best <= 100.0 * eps {
                    break (SolveStatus::SolvedInaccurate, nm);
                }
                return Err(e);
            }
            // Predictor.
            self.newton::<FMA>(None);
            let alpha_aff = self.max_step::<FMA>().min(1.0);
            let mut gap_aff = 0.0;
            let mut pairs = 0usize;
            for i in 0..self.cons.len() {
                gap_aff +=
                    (self.t[i] + alpha_aff * self.dt[i]) * (self.lam[i] + alpha_aff * self.dlam[i]);
                pairs += 1;
                if self.cons[i].soft {
                    gap_aff += (self.w[i] + alpha_aff * self.dw[i])
                        * (self.mu[i] + alpha_aff * self.dmu[i]);
                    pairs += 1;
                }
            }
            // Corrector (Mehrotra's centring σ = (μ_aff/μ)³ and second-order term).
            if pairs > 0 {
                let mu_aff = gap_aff / pairs as f64;
                let ratio = if nm.mu > 0.0 {
                    (mu_aff / nm.mu).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let sigma_mu = ratio * ratio * ratio * nm.mu;
                self.dt_a.copy_from_slice(&self.dt);
                self.dlam_a.copy_from_slice(&self.dlam);
                self.dw_a.copy_from_slice(&self.dw);
                self.dmu_a.copy_from_slice(&self.dmu);
                self.newton::<FMA>(Some(sigma_mu));
            }
            let alpha = (TAU * self.max_step::<FMA>()).min(1.0);
            self.take_step::<FMA>(alpha);
            iterations += 1;
        };
        let (status, norms) = match status {
            SolveStatus::MaxIterations | SolveStatus::TimeLimit | SolveStatus::SolvedInaccurate => {
                if best < norms.merit() {
                    self.restore_best();
                    self.residuals::<FMA>(x0);
                }
                let nm = if best < norms.merit() {
                    best_norms
                } else {
                    norms
                };
                let loose = 100.0 * eps;
                if nm.primal <= loose * nm.pscale
                    && nm.dual <= loose * nm.dscale
                    && nm.comp <= loose
                {
                    (SolveStatus::SolvedInaccurate, nm)
                } else if nm.is_infeasibility_certificate(eps.sqrt()) {
                    (SolveStatus::PrimalInfeasible, nm)
                } else {
                    (status, nm)
                }
            }
            _ => (status, norms),
        };
        self.finish::<FMA>(x0);
        if !self.iterate_is_finite() {
            return Err(non_finite_iterate());
        }
        self.info = SolveInfo {
            status,
            iterations,
            solve_time: start.elapsed(),
            primal_residual: self.hard_violation(norms),
            dual_residual: norms.dual,
            duality_gap: norms.gap,
            max_violation: self.viol.iter().fold(0.0, |m: f64, &v| m.max(v)),
        };
        self.has_solution = status.is_solved();
        Ok(self.info)
    }

    /// Moves the iterate by `alpha` along the step.
    #[inline(always)]
    fn take_step<const FMA: bool>(&mut self, alpha: f64) {
        let nx = self.nx;
        for j in nx..self.x.len() {
            self.x[j] += alpha * self.dx[j];
        }
        for j in 0..self.u.len() {
            self.u[j] += alpha * self.du[j];
        }
        for j in 0..self.pi.len() {
            self.pi[j] += alpha * self.dpi[j];
        }
        for i in 0..self.cons.len() {
            self.t[i] += alpha * self.dt[i];
            self.lam[i] += alpha * self.dlam[i];
            if self.cons[i].soft {
                self.w[i] += alpha * self.dw[i];
                self.mu[i] += alpha * self.dmu[i];
            }
        }
    }

    /// Largest violation of a hard constraint at the final iterate (dynamics included).
    fn hard_violation(&self, nm: Norms) -> f64 {
        let _ = nm;
        let mut v = 0.0f64;
        for r in &self.rdyn {
            v = v.max(r.abs());
        }
        for i in 0..self.cons.len() {
            if !self.cons[i].soft {
                v = v.max(self.bt[i] - self.sv[i]);
            }
        }
        v
    }

    /// Output duals, soft violations and the objective of the final iterate.
    #[inline(always)]
    fn finish<const FMA: bool>(&mut self, x0: &[f64]) {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        let (nxx, nuu, nux) = (nx * nx, nu * nu, nu * nx);
        self.x[..nx].copy_from_slice(x0);
        self.eval_cons::<FMA>();
        self.u_dual.fill(0.0);
        self.x_dual.fill(0.0);
        self.row_dual.fill(0.0);
        for k in 0..=n {
            for i in self.con_start[k]..self.con_start[k + 1] {
                let y = -self.cons[i].sigma() * self.lam[i];
                match self.cons[i].kind {
                    Kind::U(j) => self.u_dual[k * nu + j] += y,
                    Kind::X(j) => self.x_dual[k * nx + j] += y,
                    Kind::Row(r) => self.row_dual[self.row_start[k] + r] += y,
                }
            }
        }
        let mut obj = 0.0;
        for k in 0..=n {
            let xk = &self.x[k * nx..(k + 1) * nx];
            gemv_n::<FMA>(
                nx,
                nx,
                &self.q[k * nxx..(k + 1) * nxx],
                xk,
                &mut self.tx,
                false,
            );
            obj += 0.5 * dot::<FMA>(xk, &self.tx) + dot::<FMA>(&self.ql[k * nx..(k + 1) * nx], xk);
            if k < n {
                let uk = &self.u[k * nu..(k + 1) * nu];
                let mut ru = 0.0;
                for a in 0..nu {
                    ru += uk[a] * dot::<FMA>(&self.r[k * nuu + a * nu..k * nuu + (a + 1) * nu], uk);
                    obj +=
                        uk[a] * dot::<FMA>(&self.s[k * nux + a * nx..k * nux + (a + 1) * nx], xk);
                }
                obj += 0.5 * ru + dot::<FMA>(&self.rl[k * nu..(k + 1) * nu], uk);
            }
            // Row violations (soft rows) and their penalties.
            for r in self.row_start[k]..self.row_start[k + 1] {
                let mut v = dot::<FMA>(&self.rc[r * nx..(r + 1) * nx], xk);
                if k < n {
                    v += dot::<FMA>(
                        &self.rd[r * nu..(r + 1) * nu],
                        &self.u[k * nu..(k + 1) * nu],
                    );
                }
                let viol = if self.rsoft[r] {
                    (self.rlo[r] - v).max(v - self.rhi[r]).max(0.0)
                } else {
                    0.0
                };
                self.viol[r] = viol;
                obj += self.rl1[r] * viol + 0.5 * self.rl2[r] * viol * viol;
            }
        }
        self.objective = obj;
    }

    /// Moves the stored primal solution one stage on (`x_k ← x_{k+1}`, `u_k ← u_{k+1}`,
    /// `π_k ← π_{k+1}`, last stage repeated), the initial guess of the next warm-started solve.
    ///
    /// ```
    /// use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
    /// use intent_engine::mpc::OcpQp;
    /// let mut qp = OcpQp::new(1, 1, 4, &[]).unwrap();
    /// for k in 0..4 {
    ///     qp.a[k][[0, 0]] = 1.0;
    ///     qp.b[k][[0, 0]] = 1.0;
    ///     qp.q[k][[0, 0]] = 1.0;
    /// }
    /// let settings = RiccatiSettings::default().warm_start(true);
    /// let mut solver = RiccatiSolver::new(&qp, settings).unwrap();
    /// solver.solve(&qp, ndarray::arr1(&[1.0]).view()).unwrap();
    /// let u1 = solver.u()[[1, 0]];
    /// solver.shift_warm_start();
    /// assert_eq!(solver.u()[[0, 0]], u1);
    /// ```
    pub fn shift_warm_start(&mut self) {
        let (nx, nu, n) = (self.nx, self.nu, self.n);
        if n == 0 {
            return;
        }
        // Block j takes block j + 1; the last block keeps its value (repeated).
        self.x.copy_within(nx..(n + 1) * nx, 0);
        self.u.copy_within(nu..n * nu, 0);
        self.pi.copy_within(nx..n * nx, 0);
    }

    /// States `x_0 … x_N` of the last solve, shape `(N + 1, nx)`.
    pub fn x(&self) -> ArrayView2<'_, f64> {
        view2(&self.x, self.n + 1, self.nx)
    }

    /// Inputs `u_0 … u_{N−1}`, shape `(N, nu)`.
    pub fn u(&self) -> ArrayView2<'_, f64> {
        view2(&self.u, self.n, self.nu)
    }

    /// The first input `u_0`, the one an MPC applies.
    pub fn u0(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.u[..self.nu])
    }

    /// Dynamics multipliers `π_k` (of `x_{k+1} = A_k x_k + B_k u_k + c_k`), shape `(N, nx)`,
    /// with the Lagrangian convention `+π_kᵀ(A_k x_k + B_k u_k + c_k − x_{k+1})`.
    pub fn dynamics_duals(&self) -> ArrayView2<'_, f64> {
        view2(&self.pi, self.n, self.nx)
    }

    /// Input bound multipliers `y = λ_upper − λ_lower`, shape `(N, nu)`: positive when the
    /// upper bound is active, negative for the lower one (OSQP's sign convention).
    pub fn u_bound_duals(&self) -> ArrayView2<'_, f64> {
        view2(&self.u_dual, self.n, self.nu)
    }

    /// State bound multipliers (same convention), shape `(N + 1, nx)`; row 0 is zero.
    pub fn x_bound_duals(&self) -> ArrayView2<'_, f64> {
        view2(&self.x_dual, self.n + 1, self.nx)
    }

    /// General-row multipliers (same convention), all stages' rows one after the other
    /// (stage 0 first).
    pub fn row_duals(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.row_dual[..])
    }

    /// Violation `max(lower − row, row − upper, 0)` of every general row, laid out like
    /// [`row_duals`](Self::row_duals); zero for hard rows.
    pub fn soft_violations(&self) -> ArrayView1<'_, f64> {
        ArrayView1::from(&self.viol[..])
    }

    /// Objective value (soft penalties included) at the returned iterate.
    pub fn objective(&self) -> f64 {
        self.objective
    }

    /// The report of the last solve.
    pub fn info(&self) -> SolveInfo {
        self.info
    }
}

fn view2(v: &[f64], rows: usize, cols: usize) -> ArrayView2<'_, f64> {
    // The workspace vectors are sized rows·cols in `setup`.
    ArrayView2::from_shape((rows, cols), &v[..rows * cols]).expect("workspace sized in setup")
}

/// [`RiccatiSolver::run_impl`] as a SIMD task.
struct Run<'a> {
    solver: &'a mut RiccatiSolver,
    x0: &'a [f64],
    start: Instant,
}

impl SimdTask for Run<'_> {
    type Output = Result<SolveInfo>;
    #[inline(always)]
    fn run<const FMA: bool>(self) -> Result<SolveInfo> {
        self.solver.run_impl::<FMA>(self.x0, self.start)
    }
}

/// Norms of one iterate's residuals.
#[derive(Clone, Copy, Debug, Default)]
struct Norms {
    primal: f64,
    dual: f64,
    comp: f64,
    mu: f64,
    gap: f64,
    pscale: f64,
    dscale: f64,
    rho: f64,
    cert: f64,
    dual_max: f64,
    cost_norm: f64,
    z_l1: f64,
}

/// The error for an iterate that left f64's range before any usable iterate was found (the
/// next solve starts cold: the failed solve never sets `has_solution`).
fn non_finite_iterate() -> Error {
    Error::Numerical {
        what: "riccati solve",
        detail: "the iterate became non-finite: the problem data or x0 overflow f64 \
                 (rescale; |x0|·|Q| must stay well below 1e300)"
            .into(),
    }
}

impl Norms {
    /// All scalar norms finite (no overflow in the residuals).
    fn is_finite(&self) -> bool {
        [
            self.primal,
            self.dual,
            self.comp,
            self.mu,
            self.pscale,
            self.dscale,
        ]
        .iter()
        .all(|v| v.is_finite())
    }

    /// Worst of the scaled residuals (what "best iterate" minimises).
    fn merit(&self) -> f64 {
        let m = (self.primal / self.pscale)
            .max(self.dual / self.dscale)
            .max(self.comp);
        if m.is_nan() {
            f64::INFINITY
        } else {
            m
        }
    }

    /// Whether the duals are (to tolerance `tol`) a Farkas certificate of primal
    /// infeasibility: `‖ρ‖ ≤ tol·‖(λ, π)‖` and a positive dual objective `hᵀλ − eᵀπ > tol·‖(λ, π)‖`,
    /// with the duals large compared with the cost gradient (so an ordinary optimum never
    /// qualifies). For any feasible `z`, `hᵀλ − eᵀπ ≤ ‖z‖₁·‖ρ‖∞`; requiring the dual objective to
    /// exceed ten times that bound at the current `z` keeps a feasible problem with large
    /// multipliers from being misreported.
    fn is_infeasibility_certificate(&self, tol: f64) -> bool {
        let d = self.dual_max;
        d.is_finite()
            && d > 1e3 * self.dscale_cost().max(1.0)
            && self.rho <= tol * d
            && self.cert > tol * d
            && self.cert > 10.0 * self.rho * (1.0 + self.z_l1)
    }

    fn dscale_cost(&self) -> f64 {
        self.cost_norm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::arr1;

    /// One step of x⁺ = x + u from x0 = 1 with cost ½u² + ½·q·x₁².
    fn one_step(q: f64) -> OcpQp {
        let mut qp = OcpQp::new(1, 1, 1, &[0, 1]).unwrap();
        qp.a[0][[0, 0]] = 1.0;
        qp.b[0][[0, 0]] = 1.0;
        qp.q[1][[0, 0]] = q;
        qp
    }

    #[test]
    fn active_lower_input_bound_and_its_multiplier() {
        let mut qp = one_step(1.0);
        qp.u_lower[0][0] = -0.2; // unconstrained optimum is −0.5
        let mut s = RiccatiSolver::new(&qp, RiccatiSettings::default().eps(1e-10)).unwrap();
        let info = s.solve(&qp, arr1(&[1.0]).view()).unwrap();
        assert!(info.status.is_solved(), "{info:?}");
        assert!((s.u0()[0] + 0.2).abs() < 1e-8);
        assert!((s.x()[[1, 0]] - 0.8).abs() < 1e-8);
        // u + q·x₁ − λ = 0 → λ = 0.6; lower bound active → y = −λ.
        assert!((s.u_bound_duals()[[0, 0]] + 0.6).abs() < 1e-7);
        // π₀ = q·x₁ (x₁ stationarity: q·x₁ − π₀ = 0).
        assert!((s.dynamics_duals()[[0, 0]] - 0.8).abs() < 1e-7);
        assert!((s.objective() - (0.5 * 0.04 + 0.5 * 0.64)).abs() < 1e-8);
    }

    #[test]
    fn quadratic_soft_row_gives_the_closed_form_violation() {
        // Soft x₁ ≤ 0 with l2 = 3, no state cost: min ½u² + ½·3·(1 + u)² → u = −3/4, v = 1/4.
        let mut qp = one_step(0.0);
        let rows = &mut qp.rows[1];
        rows.c[[0, 0]] = 1.0;
        rows.upper[0] = 0.0;
        rows.soft[0] = true;
        rows.soft_l2[0] = 3.0;
        let mut s = RiccatiSolver::new(&qp, RiccatiSettings::default().eps(1e-10)).unwrap();
        let info = s.solve(&qp, arr1(&[1.0]).view()).unwrap();
        assert!(info.status.is_solved(), "{info:?}");
        assert!((s.u0()[0] + 0.75).abs() < 1e-7);
        assert!((s.soft_violations()[0] - 0.25).abs() < 1e-7);
        assert!((info.max_violation - 0.25).abs() < 1e-7);
        assert!(info.primal_residual < 1e-8);
    }

    #[test]
    fn pattern_growth_is_an_error_not_a_panic() {
        let qp = one_step(1.0);
        let mut s = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
        let mut more = qp.clone();
        more.u_lower[0][0] = -1.0;
        more.x_upper[1][0] = 2.0;
        more.rows[1].upper[0] = 5.0;
        assert!(s.solve(&more, arr1(&[1.0]).view()).is_err());
        s.setup(&more).unwrap();
        assert_eq!(s.num_inequalities(), 3);
        assert!(s
            .solve(&more, arr1(&[1.0]).view())
            .unwrap()
            .status
            .is_solved());
    }

    #[test]
    fn shift_moves_every_stage_and_repeats_the_last() {
        let mut qp = OcpQp::new(1, 1, 3, &[]).unwrap();
        for k in 0..3 {
            qp.a[k][[0, 0]] = 1.0;
            qp.b[k][[0, 0]] = 1.0;
            qp.q[k][[0, 0]] = 1.0;
        }
        let mut s = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
        s.solve(&qp, arr1(&[1.0]).view()).unwrap();
        let (x, u) = (s.x().to_owned(), s.u().to_owned());
        s.shift_warm_start();
        for k in 0..3 {
            assert_eq!(s.x()[[k, 0]], x[[k + 1, 0]]);
        }
        assert_eq!(s.x()[[3, 0]], x[[3, 0]]);
        assert_eq!(s.u()[[0, 0]], u[[1, 0]]);
        assert_eq!(s.u()[[2, 0]], u[[2, 0]]);
    }
}
