//! The user-facing MPC problem: dynamics, costs, references, bounds, stage polytopes and
//! human keep-out half-spaces, validated at set-up.
//!
//! ```text
//! minimise   Σ_{k<N} ½(x_k − r_k)ᵀQ(x_k − r_k) + ½(u_k − v_k)ᵀR(u_k − v_k) + ½(x_N − r_N)ᵀP(x_N − r_N)
//!            + Σ keep-out penalties (soft rows)
//! subject to x_{k+1} = A_k x_k + B_k u_k + c_k,  x_0 given
//!            u_min ≤ u_k ≤ u_max,  |u_k − u_{k−1}| ≤ du_max,  x_min ≤ x_k ≤ x_max (k = 1..N)
//!            lower ≤ C x_k + D u_k ≤ upper (k = 0..N−1)
//!            n_{k,j}ᵀ x_k ≤ o_{k,j}  (keep-out rows, k = 1..N; soft by default)
//! ```

use ndarray::{Array1, Array2, ArrayView2};

use crate::error::{check_finite, Error, Result};
use crate::mpc::ocp::check_bound_arrays;

/// General polytopic stage constraints `lower ≤ C x_k + D u_k ≤ upper`, applied at every stage
/// `k = 0..N−1`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageConstraints {
    /// State coefficients `(rows, n)`.
    pub c: Array2<f64>,
    /// Input coefficients `(rows, m)`.
    pub d: Array2<f64>,
    /// Lower bounds (`-∞` for none).
    pub lower: Array1<f64>,
    /// Upper bounds (`+∞` for none).
    pub upper: Array1<f64>,
}

/// How keep-out rows are enforced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum KeepoutMode {
    /// Exact penalty: a violation `v ≥ 0` costs `l1·v + ½·l2·v²`; a solution always exists.
    Soft {
        /// Linear weight (must exceed the row's multiplier for the penalty to be exact).
        l1: f64,
        /// Quadratic weight (> 0 keeps the condensed Hessian positive definite).
        l2: f64,
    },
    /// Exact penalty on each stage's largest keep-out violation: the stage's rows share one
    /// slack `v_k ≥ 0` costing `l1·v_k + ½·l2·v_k²`. Same solution as [`Self::Soft`] whenever
    /// the keep-outs can be met (and identical with one row per stage); when they cannot, it
    /// spreads no cost over several rows of one stage but limits the worst one. It has `N`
    /// slacks instead of `N·rows`, so the condensed active-set solver works on a much smaller
    /// problem (about 2x faster solves with 3 rows per stage in the intent pipeline, which
    /// still uses [`Self::Soft`]: the worst row alone gives the planner no reason to reduce the
    /// others, and on a replayed crowd that cost separation). The Riccati solver, whose stage
    /// rows are separable, applies it per row, as [`Self::Soft`].
    SoftStage {
        /// Linear weight (must exceed the sum of the stage's row multipliers to be exact).
        l1: f64,
        /// Quadratic weight (> 0 keeps the condensed Hessian positive definite).
        l2: f64,
    },
    /// Hard constraints: an unreachable keep-out makes the problem primal infeasible.
    Hard,
}

impl KeepoutMode {
    /// The penalty weights `(l1, l2)`, `None` for [`Self::Hard`].
    pub fn penalty(&self) -> Option<(f64, f64)> {
        match *self {
            KeepoutMode::Soft { l1, l2 } | KeepoutMode::SoftStage { l1, l2 } => Some((l1, l2)),
            KeepoutMode::Hard => None,
        }
    }

    /// Slack variables per stage for `rows` keep-out rows per stage.
    pub fn slacks_per_stage(&self, rows: usize) -> usize {
        match self {
            KeepoutMode::Soft { .. } => rows,
            KeepoutMode::SoftStage { .. } => rows.min(1),
            KeepoutMode::Hard => 0,
        }
    }

    /// The slack column (from 0) of row `j` at stage index `k` (0-based), for `rows` rows per
    /// stage; `None` for [`Self::Hard`].
    pub(crate) fn slack_index(&self, k: usize, j: usize, rows: usize) -> Option<usize> {
        match self {
            KeepoutMode::Soft { .. } => Some(k * rows + j),
            KeepoutMode::SoftStage { .. } => Some(k),
            KeepoutMode::Hard => None,
        }
    }
}

impl Default for KeepoutMode {
    fn default() -> Self {
        KeepoutMode::Soft { l1: 1e4, l2: 1.0 }
    }
}

/// A linear MPC problem; build with [`MpcProblem::new`] and the `with_*` methods.
///
/// ```
/// use intent_engine::mpc::MpcProblem;
/// use ndarray::{array, Array2};
///
/// // Double integrator, dt = 0.1.
/// let a = array![[1.0, 0.1], [0.0, 1.0]];
/// let b = array![[0.005], [0.1]];
/// let p = MpcProblem::new(a, b, Array2::eye(2), array![[0.1]], 20)?
///     .with_input_bounds(Some(array![-1.0]), Some(array![1.0]))?;
/// assert_eq!(p.horizon(), 20);
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MpcProblem {
    pub(crate) a: Vec<Array2<f64>>,
    pub(crate) b: Vec<Array2<f64>>,
    pub(crate) c: Vec<Array1<f64>>,
    pub(crate) q: Array2<f64>,
    pub(crate) r: Array2<f64>,
    pub(crate) p: Option<Array2<f64>>,
    pub(crate) horizon: usize,
    pub(crate) u_min: Array1<f64>,
    pub(crate) u_max: Array1<f64>,
    pub(crate) x_min: Array1<f64>,
    pub(crate) x_max: Array1<f64>,
    pub(crate) du_max: Array1<f64>,
    pub(crate) stage: Option<StageConstraints>,
    pub(crate) keepout_mode: KeepoutMode,
}

fn check_shape(name: &'static str, m: ArrayView2<'_, f64>, shape: (usize, usize)) -> Result<()> {
    if m.dim() != shape {
        return Err(Error::shape(
            name,
            format!("expected shape {shape:?}, got {:?}", m.dim()),
        ));
    }
    check_finite(name, m.iter())
}

/// The state-reference terms of the stage costs: `out(k, i, −(Q_k r_k)_i)` for `k = 0..=N`
/// (`Q_N = P`); a one-row `x_ref` applies to every stage.
pub(crate) fn state_reference_costs(
    q: &Array2<f64>,
    p_term: &Array2<f64>,
    x_ref: ArrayView2<'_, f64>,
    horizon: usize,
    mut out: impl FnMut(usize, usize, f64),
) {
    for k in 0..=horizon {
        let qk = if k == horizon { p_term } else { q };
        let rk = x_ref.row(if x_ref.nrows() == 1 { 0 } else { k });
        for (i, row) in qk.rows().into_iter().enumerate() {
            out(k, i, -row.dot(&rk));
        }
    }
}

/// The input-reference terms of the stage costs: `out(k, i, −(R v_k)_i)` for `k = 0..N`; a
/// one-row `u_ref` applies to every stage.
pub(crate) fn input_reference_costs(
    r: &Array2<f64>,
    u_ref: ArrayView2<'_, f64>,
    horizon: usize,
    mut out: impl FnMut(usize, usize, f64),
) {
    for k in 0..horizon {
        let vk = u_ref.row(if u_ref.nrows() == 1 { 0 } else { k });
        for (i, row) in r.rows().into_iter().enumerate() {
            out(k, i, -row.dot(&vk));
        }
    }
}

/// Smallest eigenvalue of a symmetric matrix, and whether it is symmetric.
fn min_eig(m: &Array2<f64>) -> (f64, bool) {
    let n = m.nrows();
    let scale = m.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
    let sym = (0..n).all(|i| (0..i).all(|j| (m[[i, j]] - m[[j, i]]).abs() <= 1e-9 * scale));
    let mat = nalgebra::DMatrix::from_fn(n, n, |i, j| 0.5 * (m[[i, j]] + m[[j, i]]));
    let eig = nalgebra::SymmetricEigen::new(mat).eigenvalues;
    (eig.iter().copied().fold(f64::INFINITY, f64::min), sym)
}

fn check_psd(name: &'static str, m: &Array2<f64>, strict: bool) -> Result<()> {
    let (lmin, sym) = min_eig(m);
    if !sym {
        return Err(Error::invalid_value(name, "must be symmetric"));
    }
    let scale = m.iter().fold(0.0f64, |a, v| a.max(v.abs())).max(1e-300);
    if strict && lmin <= 1e-12 * scale {
        return Err(Error::invalid_value(
            name,
            format!("must be positive definite (smallest eigenvalue {lmin:e})"),
        ));
    }
    if lmin < -1e-10 * scale {
        return Err(Error::invalid_value(
            name,
            format!("must be positive semidefinite (smallest eigenvalue {lmin:e})"),
        ));
    }
    Ok(())
}

impl MpcProblem {
    /// An LTI problem `x_{k+1} = A x_k + B u_k` with stage costs `Q` (PSD), `R` (PD), horizon
    /// `N` and no constraints; the terminal cost defaults to the DARE solution.
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::NonFinite`] for inconsistent or non-finite matrices,
    /// [`Error::InvalidValue`] for a non-PSD `Q`, a non-PD `R` or a zero horizon.
    pub fn new(
        a: Array2<f64>,
        b: Array2<f64>,
        q: Array2<f64>,
        r: Array2<f64>,
        horizon: usize,
    ) -> Result<Self> {
        let n = a.nrows();
        if n == 0 {
            return Err(Error::shape("A", "needs at least one state"));
        }
        check_shape("A", a.view(), (n, n))?;
        let m = b.ncols();
        if m == 0 {
            return Err(Error::shape("B", "needs at least one input"));
        }
        check_shape("B", b.view(), (n, m))?;
        Self::build(vec![a], vec![b], q, r, horizon)
    }

    /// A linear time-varying problem with per-stage `A_k`, `B_k` (`N` of each).
    ///
    /// # Errors
    /// As [`MpcProblem::new`]; also when the sequences do not have `horizon` entries.
    pub fn time_varying(
        a: Vec<Array2<f64>>,
        b: Vec<Array2<f64>>,
        q: Array2<f64>,
        r: Array2<f64>,
        horizon: usize,
    ) -> Result<Self> {
        if a.len() != horizon || b.len() != horizon {
            return Err(Error::shape(
                "A/B",
                format!(
                    "expected {horizon} stage matrices, got {} and {}",
                    a.len(),
                    b.len()
                ),
            ));
        }
        let n = a.first().map_or(0, |a| a.nrows());
        let m = b.first().map_or(0, |b| b.ncols());
        if n == 0 || m == 0 {
            return Err(Error::shape("A/B", "need at least one state and one input"));
        }
        for k in 0..horizon {
            check_shape("A", a[k].view(), (n, n))?;
            check_shape("B", b[k].view(), (n, m))?;
        }
        Self::build(a, b, q, r, horizon)
    }

    fn build(
        a: Vec<Array2<f64>>,
        b: Vec<Array2<f64>>,
        q: Array2<f64>,
        r: Array2<f64>,
        horizon: usize,
    ) -> Result<Self> {
        let (n, m) = b[0].dim();
        if horizon == 0 {
            return Err(Error::invalid_value("horizon", "must be at least 1"));
        }
        check_shape("Q", q.view(), (n, n))?;
        check_shape("R", r.view(), (m, m))?;
        check_psd("Q", &q, false)?;
        check_psd("R", &r, true)?;
        let inf = |v: f64, len: usize| Array1::from_elem(len, v);
        // Row-major storage: the solve loops read rows as slices.
        let std = |v: Vec<Array2<f64>>| -> Vec<Array2<f64>> {
            v.into_iter()
                .map(|m| m.as_standard_layout().into_owned())
                .collect()
        };
        let (a, b) = (std(a), std(b));
        Ok(Self {
            c: vec![Array1::zeros(n); a.len()],
            a,
            b,
            q,
            r,
            p: None,
            horizon,
            u_min: inf(f64::NEG_INFINITY, m),
            u_max: inf(f64::INFINITY, m),
            x_min: inf(f64::NEG_INFINITY, n),
            x_max: inf(f64::INFINITY, n),
            du_max: inf(f64::INFINITY, m),
            stage: None,
            keepout_mode: KeepoutMode::default(),
        })
    }

    /// State dimension n.
    pub fn nx(&self) -> usize {
        self.b[0].nrows()
    }

    /// Input dimension m.
    pub fn nu(&self) -> usize {
        self.b[0].ncols()
    }

    /// Horizon N.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// Whether the dynamics are time-invariant.
    pub fn is_lti(&self) -> bool {
        self.a.len() == 1
    }

    /// `A_k` (the same matrix for every stage of an LTI problem).
    pub(crate) fn a_at(&self, k: usize) -> &Array2<f64> {
        &self.a[k.min(self.a.len() - 1)]
    }

    /// `B_k`.
    pub(crate) fn b_at(&self, k: usize) -> &Array2<f64> {
        &self.b[k.min(self.b.len() - 1)]
    }

    /// `c_k`.
    pub(crate) fn c_at(&self, k: usize) -> &Array1<f64> {
        &self.c[k.min(self.c.len() - 1)]
    }

    /// Affine dynamics term `c` (one vector, or `N` per-stage vectors for LTV problems).
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::NonFinite`].
    pub fn with_affine(mut self, c: Vec<Array1<f64>>) -> Result<Self> {
        let n = self.nx();
        if c.len() != 1 && c.len() != self.horizon {
            return Err(Error::shape(
                "c",
                format!("expected 1 or {} vectors", self.horizon),
            ));
        }
        for v in &c {
            if v.len() != n {
                return Err(Error::shape(
                    "c",
                    format!("expected length {n}, got {}", v.len()),
                ));
            }
            check_finite("c", v.iter())?;
        }
        self.c = c;
        Ok(self)
    }

    /// Terminal cost `P` (symmetric PSD). Without it the DARE solution is used.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] or [`Error::InvalidValue`] (not PSD).
    pub fn with_terminal_cost(mut self, p: Array2<f64>) -> Result<Self> {
        let n = self.nx();
        check_shape("P", p.view(), (n, n))?;
        check_psd("P", &p, false)?;
        self.p = Some(p);
        Ok(self)
    }

    /// Input bounds (`None` for absent; entries may be ±∞).
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] (NaN) or [`Error::InvalidValue`] (min > max).
    pub fn with_input_bounds(
        mut self,
        u_min: Option<Array1<f64>>,
        u_max: Option<Array1<f64>>,
    ) -> Result<Self> {
        let m = self.nu();
        self.u_min = bound_or("u_min", u_min, m, f64::NEG_INFINITY)?;
        self.u_max = bound_or("u_max", u_max, m, f64::INFINITY)?;
        check_bound_arrays("u_min/u_max", &self.u_min, &self.u_max)?;
        Ok(self)
    }

    /// State bounds, applied at stages 1..N (x_0 is given).
    ///
    /// # Errors
    /// As [`Self::with_input_bounds`].
    pub fn with_state_bounds(
        mut self,
        x_min: Option<Array1<f64>>,
        x_max: Option<Array1<f64>>,
    ) -> Result<Self> {
        let n = self.nx();
        self.x_min = bound_or("x_min", x_min, n, f64::NEG_INFINITY)?;
        self.x_max = bound_or("x_max", x_max, n, f64::INFINITY)?;
        check_bound_arrays("x_min/x_max", &self.x_min, &self.x_max)?;
        Ok(self)
    }

    /// Input-rate bounds `|u_k − u_{k−1}| ≤ du_max` (`u_{−1}` is the previously applied input).
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::InvalidValue`] (negative or NaN entries).
    pub fn with_rate_bounds(mut self, du_max: Array1<f64>) -> Result<Self> {
        let m = self.nu();
        if du_max.len() != m {
            return Err(Error::shape(
                "du_max",
                format!("expected length {m}, got {}", du_max.len()),
            ));
        }
        if du_max.iter().any(|v| v.is_nan() || *v < 0.0) {
            return Err(Error::invalid_value(
                "du_max",
                "entries must be ≥ 0 (inf for none)",
            ));
        }
        self.du_max = du_max;
        Ok(self)
    }

    /// General polytopic stage constraints.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] or [`Error::InvalidValue`].
    pub fn with_stage_constraints(mut self, s: StageConstraints) -> Result<Self> {
        let (n, m) = (self.nx(), self.nu());
        let rows = s.lower.len();
        check_shape("C", s.c.view(), (rows, n))?;
        check_shape("D", s.d.view(), (rows, m))?;
        if s.upper.len() != rows {
            return Err(Error::shape("upper", format!("expected length {rows}")));
        }
        check_bound_arrays("stage bounds", &s.lower, &s.upper)?;
        self.stage = Some(s);
        Ok(self)
    }

    /// How keep-out rows are enforced (soft exact penalty by default).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for negative or non-finite weights, or `l2 = 0`.
    pub fn with_keepout_mode(mut self, mode: KeepoutMode) -> Result<Self> {
        if let Some((l1, l2)) = mode.penalty() {
            if !(l1.is_finite() && l1 >= 0.0 && l2.is_finite() && l2 > 0.0) {
                return Err(Error::invalid_value(
                    "keepout penalty",
                    format!("need l1 ≥ 0 and l2 > 0, finite; got {l1}, {l2}"),
                ));
            }
        }
        self.keepout_mode = mode;
        Ok(self)
    }

    /// Largest ∞-norm of the state-transition products `A_{k−1}⋯A_0` over the horizon: how
    /// much condensing amplifies the initial state (≫ 1 means ill-conditioned condensing).
    pub fn growth(&self) -> f64 {
        let n = self.nx();
        let mut phi = Array2::<f64>::eye(n);
        let mut worst = 1.0f64;
        for k in 0..self.horizon {
            phi = self.a_at(k).dot(&phi);
            let norm = phi
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|v| v.abs()).sum::<f64>())
                .fold(0.0, f64::max);
            worst = worst.max(norm);
            if !worst.is_finite() {
                return f64::INFINITY;
            }
        }
        worst
    }

    /// The terminal cost in use: the given `P`, or the DARE solution.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when `(A, B)` is not stabilisable so the DARE has no solution.
    pub fn terminal_cost(&self) -> Result<Array2<f64>> {
        match &self.p {
            Some(p) => Ok(p.clone()),
            None => dare(
                self.a_at(self.horizon - 1),
                self.b_at(self.horizon - 1),
                &self.q,
                &self.r,
            ),
        }
    }
}

fn bound_or(
    name: &'static str,
    v: Option<Array1<f64>>,
    len: usize,
    fill: f64,
) -> Result<Array1<f64>> {
    match v {
        None => Ok(Array1::from_elem(len, fill)),
        Some(v) if v.len() == len => {
            if let Some(i) = v.iter().position(|x| x.is_nan()) {
                return Err(Error::NonFinite { name, index: i });
            }
            Ok(v)
        }
        Some(v) => Err(Error::shape(
            name,
            format!("expected length {len}, got {}", v.len()),
        )),
    }
}

/// The stabilising solution of the discrete algebraic Riccati equation
/// `P = Q + AᵀPA − AᵀPB(R + BᵀPB)⁻¹BᵀPA`, by the structure-preserving doubling algorithm
/// (quadratic convergence).
///
/// ```
/// use intent_engine::mpc::problem::dare;
/// use ndarray::array;
/// let p = dare(&array![[1.0]], &array![[1.0]], &array![[1.0]], &array![[1.0]])?;
/// assert!((p[[0, 0]] - (1.0 + 5f64.sqrt()) / 2.0).abs() < 1e-12);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// [`Error::Shape`] naming `A` (not square, or empty), `B` (`n` rows), `Q` (`n × n`) or `R`
/// (`m × m`, `m` = columns of `B`); [`Error::NonFinite`] naming the matrix with NaN/inf;
/// [`Error::InvalidValue`] naming `R` when it is not positive definite, or when the
/// iteration does not converge (no stabilising solution: `(A, B)` not stabilisable or
/// `(A, Q)` with unobservable modes on the unit circle).
pub fn dare(
    a: &Array2<f64>,
    b: &Array2<f64>,
    q: &Array2<f64>,
    r: &Array2<f64>,
) -> Result<Array2<f64>> {
    use nalgebra::DMatrix;
    let n = a.nrows();
    let m = b.ncols();
    // A public entry point: shape errors here would otherwise be nalgebra assertion panics.
    for (name, mat, want) in [
        ("A", a, (n, n)),
        ("B", b, (n, m)),
        ("Q", q, (n, n)),
        ("R", r, (m, m)),
    ] {
        if mat.dim() != want || n == 0 {
            return Err(Error::shape(
                name,
                format_args!(
                    "expected shape {want:?} (A is n × n, B n × m), got {:?}",
                    mat.dim()
                ),
            ));
        }
        check_finite(name, mat.iter())?;
    }
    let to = |m: &Array2<f64>| DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[[i, j]]);
    let (am, bm, qm, rm) = (to(a), to(b), to(q), to(r));
    let rinv = rm
        .clone()
        .cholesky()
        .ok_or_else(|| Error::invalid_value("R", "must be positive definite"))?
        .inverse();
    // SDA: A_0 = A, G_0 = B R⁻¹ Bᵀ, H_0 = Q.
    let mut ak = am.clone();
    let mut gk = &bm * &rinv * bm.transpose();
    let mut hk = qm.clone();
    let eye = DMatrix::<f64>::identity(n, n);
    for _ in 0..100 {
        let w = &eye + &gk * &hk;
        let wlu = w.lu();
        let Some(winv) = wlu.try_inverse() else {
            break;
        };
        let v1 = &winv * &ak; // (I + G H)⁻¹ A
        let v2 = &winv * &gk; // (I + G H)⁻¹ G
        let h_next = &hk + ak.transpose() * &hk * &v1;
        let g_next = &gk + &ak * &v2 * ak.transpose();
        let a_next = &ak * &v1;
        let diff = (&h_next - &hk).abs().max();
        let scale = h_next.abs().max().max(1e-300);
        hk = 0.5 * (&h_next + h_next.transpose());
        gk = g_next;
        ak = a_next;
        if !hk.iter().all(|v| v.is_finite()) {
            break;
        }
        if diff <= 1e-13 * scale {
            // Verify the Riccati residual: SDA also "converges" for non-stabilisable pairs.
            let p = &hk;
            let btpb = &rm + bm.transpose() * p * &bm;
            let k = btpb.clone().lu().solve(&(bm.transpose() * p * &am));
            let Some(k) = k else { break };
            let res = &qm + am.transpose() * p * &am - am.transpose() * p * &bm * &k - p;
            let closed = &am - &bm * &k;
            if !closed.iter().all(|v| v.is_finite()) {
                break;
            }
            // Capped Schur iteration: nalgebra's `complex_eigenvalues` iterates without limit
            // and never returned on a badly scaled closed loop (entries ~1e115, found by
            // fuzzing the MPC builder).
            let Some(schur) =
                nalgebra::linalg::Schur::try_new(closed, f64::EPSILON, 100 * n.max(1))
            else {
                break;
            };
            let rho = schur
                .complex_eigenvalues()
                .iter()
                .map(|e| e.norm())
                .fold(0.0, f64::max);
            if res.abs().max() <= 1e-8 * scale && rho < 1.0 {
                return Ok(Array2::from_shape_fn((n, n), |(i, j)| p[(i, j)]));
            }
            break;
        }
    }
    Err(Error::invalid_value(
        "P",
        "the DARE has no stabilising solution ((A, B) not stabilisable or (A, Q) detectability \
         fails): give a terminal cost P",
    ))
}
