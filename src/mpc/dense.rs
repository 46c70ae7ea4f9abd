//! A dense dual active-set QP solver (Goldfarb–Idnani) for small and medium problems:
//!
//! ```text
//! minimise ½ xᵀH x + fᵀx   subject to   A x = b,   lower ≤ G x ≤ upper,   lb ≤ x ≤ ub
//! ```
//!
//! Why this method: it starts from the unconstrained minimiser and adds one violated constraint
//! at a time while keeping the multipliers dual feasible, so every iterate satisfies the
//! stationarity and sign conditions exactly and the solution is exact to round-off — the same
//! answer at `eps = 1e-6` and `1e-9`. The Hessian is factorised once ([`ActiveSetSolver::set_hessian`])
//! and reused while only `f`, bounds or row bounds change (the MPC case); `J = L⁻ᵀQ` and the
//! triangular factor `R` of the active normals are updated by Givens rotations in O(n²) per
//! active-set change. Simple bounds never form a dense row: their normals are unit vectors,
//! so checking and adding one costs O(n).
//!
//! A singular (positive semidefinite) `H` is handled by proximal-point iterations on
//! `H + ρI`, each warm-started from the previous active set.
//!
//! `solve` does not allocate: every buffer is sized when the solver is built.

use std::time::{Duration, Instant};

use ndarray::{ArrayView1, ArrayView2};

use crate::error::{check_finite, check_finite_slice, check_finite_view, Error, Result};
use crate::mpc::ocp::check_bounds;
use crate::mpc::status::{SolveInfo, SolveStatus};

/// Settings of the [`ActiveSetSolver`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActiveSetSettings {
    /// Absolute feasibility tolerance on constraint rows and bounds: a constraint is added
    /// only when violated by more than `min(eps / 2, 1e-9)`, so the returned primal residual
    /// is ≤ `eps` (the steps are exact, so the tighter threshold costs at most an extra step).
    pub eps: f64,
    /// Cap on active-set changes per solve (over all proximal iterations).
    pub max_iter: usize,
    /// Wall-clock budget of one solve, checked every iteration.
    pub time_limit: Option<Duration>,
    /// Relative proximal weight used when `H` is only semidefinite.
    pub prox_weight: f64,
    /// Cap on proximal-point iterations for a semidefinite `H`.
    pub max_prox_iter: usize,
    /// Start from the previous solve's active set and factorisation when only the linear cost
    /// and bounds changed since (the MPC case): O(n²) instead of one O(n²) step per active
    /// constraint.
    pub hot_start: bool,
}

impl Default for ActiveSetSettings {
    fn default() -> Self {
        Self {
            eps: 1e-9,
            max_iter: 10_000,
            time_limit: None,
            prox_weight: 1e-6,
            max_prox_iter: 1_000,
            hot_start: true,
        }
    }
}

impl ActiveSetSettings {
    fn validate(&self) -> Result<()> {
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::invalid_value(
                "eps",
                format!("must be > 0, got {}", self.eps),
            ));
        }
        if self.max_iter == 0 {
            return Err(Error::invalid_value("max_iter", "must be ≥ 1"));
        }
        if !(self.prox_weight.is_finite() && self.prox_weight > 0.0) {
            return Err(Error::invalid_value("prox_weight", "must be > 0"));
        }
        Ok(())
    }
}

/// Index of a constraint in the solver's numbering: rows `0..me` are equalities, `me..me+mi`
/// general rows, then `n` bounds; `side` 0 is the lower side (`row ≥ lower`), 1 the upper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cid(u32);

impl Cid {
    fn new(row: usize, side: usize) -> Self {
        Cid((2 * row + side) as u32)
    }
    fn row(self) -> usize {
        (self.0 / 2) as usize
    }
    fn upper(self) -> bool {
        self.0 % 2 == 1
    }
}

/// The dense dual active-set solver; see the [module documentation](self).
///
/// ```
/// use intent_engine::mpc::dense::{ActiveSetSolver, ActiveSetSettings};
/// use ndarray::array;
///
/// // minimise ½|x|² − x₀ − x₁  subject to  x₀ + x₁ ≤ 1
/// let mut s = ActiveSetSolver::new(2, 0, 1, ActiveSetSettings::default())?;
/// s.set_hessian(array![[1.0, 0.0], [0.0, 1.0]].view())?;
/// s.set_rows(None, Some(array![[1.0, 1.0]].view()))?;
/// s.set_row_bounds(None, Some((array![f64::NEG_INFINITY].view(), array![1.0].view())))?;
/// let info = s.solve(array![-1.0, -1.0].view())?;
/// assert!(info.status.is_solved());
/// assert!((s.x()[0] - 0.5).abs() < 1e-12 && (s.x()[1] - 0.5).abs() < 1e-12);
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ActiveSetSolver {
    n: usize,
    me: usize,
    mi: usize,
    settings: ActiveSetSettings,
    // Hessian (col-major), its regularisation and J0 = L⁻ᵀ (col-major, upper triangular).
    h: Vec<f64>,
    reg: f64,
    j0: Vec<f64>,
    hessian_set: bool,
    // Cholesky factor L of H + reg·I (col-major) and whether J0 = L⁻ᵀ is current.
    l: Vec<f64>,
    j0_ready: bool,
    // J, R and `active` are consistent with the current H and rows (a hot start may use them).
    factor_valid: bool,
    // Rows (row-major, (me + mi) × n), their bounds and norms.
    rows: Vec<f64>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    lb: Vec<f64>,
    ub: Vec<f64>,
    row_norm: Vec<f64>,
    // Working state.
    f: Vec<f64>,
    fk: Vec<f64>,
    x: Vec<f64>,
    x_prev: Vec<f64>,
    j: Vec<f64>,
    r: Vec<f64>,
    d: Vec<f64>,
    z: Vec<f64>,
    rv: Vec<f64>,
    u: Vec<f64>,
    active: Vec<Cid>,
    hint: Vec<Cid>,
    hint_next: Vec<Cid>,
    // Active rows whose normal changed (dropped by `set_row`): re-added first next solve, so
    // a soft row's slack never makes the long excursion to its unconstrained value.
    readd: Vec<Cid>,
    // Bounds-only problems (no rows, H positive definite): Cholesky factor of the free block
    // H_FF (col-major, leading dimension n, in the order of `free`), the free variables, each
    // variable's position in `free` (NOT_FREE when its bound is active), whether `lf`, `free`
    // and `fpos` are current (else F is every variable in order and the factor is `l`), and
    // scratch for the direction and the column H z.
    lf: Vec<f64>,
    free: Vec<usize>,
    fpos: Vec<usize>,
    box_valid: bool,
    mark: Vec<u8>,
    prev_active: Vec<Cid>,
    prefer_hint: bool,
    wb: Vec<f64>,
    gd: Vec<f64>,
    // Results (multipliers in the convention H x + f + Aᵀy + Gᵀz + z_box = 0).
    y_eq: Vec<f64>,
    z_rows: Vec<f64>,
    z_box: Vec<f64>,
    info: SolveInfo,
}

impl ActiveSetSolver {
    /// A solver for `n` variables, `me` equality rows and `mi` general inequality rows; bounds
    /// start absent (±∞), rows start zero with infinite bounds, and `H` must be set before solving.
    ///
    /// # Errors
    /// [`Error::Shape`] when `n` is zero, [`Error::InvalidValue`] for bad settings.
    pub fn new(n: usize, me: usize, mi: usize, settings: ActiveSetSettings) -> Result<Self> {
        if n == 0 {
            return Err(Error::shape("n", "the QP needs at least one variable"));
        }
        settings.validate()?;
        let m = me + mi;
        let cap = n + m + 1;
        Ok(Self {
            n,
            me,
            mi,
            settings,
            h: vec![0.0; n * n],
            reg: 0.0,
            j0: vec![0.0; n * n],
            hessian_set: false,
            l: vec![0.0; n * n],
            j0_ready: false,
            factor_valid: false,
            rows: vec![0.0; m * n],
            lo: vec![f64::NEG_INFINITY; m],
            hi: vec![f64::INFINITY; m],
            lb: vec![f64::NEG_INFINITY; n],
            ub: vec![f64::INFINITY; n],
            row_norm: vec![0.0; m],
            f: vec![0.0; n],
            fk: vec![0.0; n],
            x: vec![0.0; n],
            x_prev: vec![0.0; n],
            j: vec![0.0; n * n],
            r: vec![0.0; n * n],
            d: vec![0.0; n],
            z: vec![0.0; n],
            rv: vec![0.0; n],
            u: vec![0.0; cap],
            active: Vec::with_capacity(cap),
            hint: Vec::with_capacity(cap),
            hint_next: Vec::with_capacity(cap),
            readd: Vec::with_capacity(cap),
            lf: vec![0.0; n * n],
            free: Vec::with_capacity(n),
            fpos: vec![NOT_FREE; n],
            box_valid: false,
            mark: vec![0; n + m],
            prev_active: Vec::with_capacity(cap),
            prefer_hint: false,
            wb: vec![0.0; n],
            gd: vec![0.0; n],
            y_eq: vec![0.0; me],
            z_rows: vec![0.0; mi],
            z_box: vec![0.0; n],
            info: SolveInfo::default(),
        })
    }

    /// Number of variables.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The settings in use.
    pub fn settings(&self) -> &ActiveSetSettings {
        &self.settings
    }

    /// Replaces the settings.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for bad settings.
    pub fn set_settings(&mut self, settings: ActiveSetSettings) -> Result<()> {
        settings.validate()?;
        self.settings = settings;
        Ok(())
    }

    /// Sets and factorises the Hessian (symmetric positive semidefinite; only its lower triangle
    /// is read). A singular `H` switches on proximal-point iterations.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`], or [`Error::NotPositiveDefinite`] when `H` has a
    /// clearly negative curvature.
    pub fn set_hessian(&mut self, h: ArrayView2<'_, f64>) -> Result<()> {
        let n = self.n;
        if h.dim() != (n, n) {
            return Err(Error::shape(
                "P",
                format!("expected shape ({n}, {n}), got {:?}", h.dim()),
            ));
        }
        check_finite_view("P", h)?;
        // Symmetrise from the lower triangle: h[c*n + r] = H[max(r,c), min(r,c)].
        if let Some(hs) = h.as_slice() {
            // Row-major input: H[r, c] (r ≥ c) lands in column c; then mirror the upper part.
            for c in 0..n {
                for r in c..n {
                    self.h[c * n + r] = hs[r * n + c];
                }
            }
            for c in 0..n {
                for r in 0..c {
                    self.h[c * n + r] = self.h[r * n + c];
                }
            }
        } else {
            for c in 0..n {
                for r in 0..n {
                    self.h[c * n + r] = if r >= c { h[[r, c]] } else { h[[c, r]] };
                }
            }
        }
        let scale = (0..n)
            .map(|i| self.h[i * n + i].abs())
            .fold(0.0, f64::max)
            .max(1e-300);
        self.reg = 0.0;
        self.factor_valid = false;
        self.box_valid = false;
        self.active.clear();
        if !self.factor() {
            // Semidefinite (or nearly so): regularise and iterate proximal points.
            self.reg = self.settings.prox_weight * scale.max(1.0);
            if !self.factor() {
                self.hessian_set = false;
                return Err(Error::NotPositiveDefinite {
                    what: "P (the QP Hessian)",
                    pivot: 0,
                    jitter: self.reg,
                });
            }
        }
        self.hessian_set = true;
        Ok(())
    }

    /// Cholesky of `H + reg·I` into `l`; `J0 = L⁻ᵀ` is formed lazily, on the first solve that
    /// needs a constraint. Returns false on a tiny pivot.
    fn factor(&mut self) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::linalg::simd::SimdLevel::current() != crate::linalg::simd::SimdLevel::Scalar {
            // SAFETY: `current()` is clamped to the detected level and both non-scalar levels
            // are only detected with AVX2 and FMA present, which is `factor_avx2`'s contract.
            return unsafe { self.factor_avx2() };
        }
        self.factor_body()
    }

    /// [`Self::factor_body`] compiled with AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA (`SimdLevel::current() != Scalar` guarantees both:
    /// it is clamped to the detected level, and every non-scalar level detects them).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn factor_avx2(&mut self) -> bool {
        self.factor_body()
    }

    #[inline(always)]
    fn factor_body(&mut self) -> bool {
        let n = self.n;
        self.j0_ready = false;
        let l = &mut self.l;
        l.copy_from_slice(&self.h);
        for i in 0..n {
            l[i * n + i] += self.reg;
        }
        let tiny = {
            let maxd = (0..n).map(|i| l[i * n + i].abs()).fold(0.0, f64::max);
            1e-13 * maxd.max(1e-300)
        };
        cholesky_in_place(l, n, n, tiny)
    }

    /// Forms `J0 = L⁻ᵀ` if it is not current (uses `j` as scratch).
    #[inline(always)]
    fn ensure_j0(&mut self) {
        if self.j0_ready {
            return;
        }
        let n = self.n;
        let l = &self.l;
        // X = L⁻¹ column by column (forward substitution in axpy form: contiguous, no
        // dependent divisions), then J0 = Xᵀ.
        let x = &mut self.j;
        x.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            self.d[i] = 1.0 / l[i * n + i];
        }
        for c in 0..n {
            let xc = &mut x[c * n..(c + 1) * n];
            xc[c] = 1.0;
            for i in c..n {
                let xi = xc[i] * self.d[i];
                xc[i] = xi;
                if xi != 0.0 {
                    axpy(-xi, &l[i * n + i + 1..(i + 1) * n], &mut xc[i + 1..n]);
                }
            }
        }
        for c in 0..n {
            for r in 0..n {
                self.j0[c * n + r] = x[r * n + c];
            }
        }
        self.j0_ready = true;
    }

    /// `x ← −(L Lᵀ)⁻¹ fk` by two triangular solves (no `J0` needed).
    #[inline(always)]
    fn unconstrained_minimiser(&mut self) {
        let n = self.n;
        let l = &self.l;
        let y = &mut self.d;
        y.copy_from_slice(&self.fk);
        forward_substitute(l, n, n, 0, y);
        for i in (0..n).rev() {
            let s = y[i] - dot(&l[i * n + i + 1..(i + 1) * n], &self.x[i + 1..n]);
            self.x[i] = s / l[i * n + i];
        }
        self.x.iter_mut().for_each(|v| *v = -*v);
    }

    /// Sets the equality rows `A` (`me × n`) and/or the general rows `G` (`mi × n`); `None` keeps
    /// the current ones.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::NonFinite`].
    pub fn set_rows(
        &mut self,
        a: Option<ArrayView2<'_, f64>>,
        g: Option<ArrayView2<'_, f64>>,
    ) -> Result<()> {
        let n = self.n;
        if let Some(a) = a {
            if a.dim() != (self.me, n) {
                return Err(Error::shape(
                    "A",
                    format!("expected shape ({}, {n}), got {:?}", self.me, a.dim()),
                ));
            }
            check_finite_view("A", a)?;
            if let Some(as_) = a.as_slice() {
                self.rows[..as_.len()].copy_from_slice(as_);
            } else {
                for (i, row) in a.outer_iter().enumerate() {
                    for (k, &v) in row.iter().enumerate() {
                        self.rows[i * n + k] = v;
                    }
                }
            }
        }
        if let Some(g) = g {
            if g.dim() != (self.mi, n) {
                return Err(Error::shape(
                    "G",
                    format!("expected shape ({}, {n}), got {:?}", self.mi, g.dim()),
                ));
            }
            check_finite_view("G", g)?;
            let o = self.me * n;
            if let Some(gs) = g.as_slice() {
                self.rows[o..o + gs.len()].copy_from_slice(gs);
            } else {
                for (i, row) in g.outer_iter().enumerate() {
                    for (k, &v) in row.iter().enumerate() {
                        self.rows[o + i * n + k] = v;
                    }
                }
            }
        }
        self.refresh_norms();
        self.factor_valid = false;
        self.box_valid = false;
        self.active.clear();
        Ok(())
    }

    /// Overwrites one general row `i` (`0 ≤ i < mi`) in place — for a moving keep-out half-space.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::NonFinite`].
    pub fn set_row(
        &mut self,
        i: usize,
        row: ArrayView1<'_, f64>,
        lower: f64,
        upper: f64,
    ) -> Result<()> {
        let n = self.n;
        if i >= self.mi || row.len() != n {
            return Err(Error::shape(
                "row",
                format!("row {i} of {} with {n} entries", self.mi),
            ));
        }
        check_finite_view("row", row)?;
        check_bounds(
            "row bounds",
            std::slice::from_ref(&lower),
            std::slice::from_ref(&upper),
        )?;
        // An active row whose normal changes leaves the factorisation: drop it first.
        let r = self.me + i;
        if self.factor_valid {
            if let Some(pos) = self.active.iter().position(|c| c.row() == r) {
                if self.readd.len() < self.readd.capacity() {
                    self.readd.push(self.active[pos]);
                }
                self.drop_active(pos);
            }
        }
        let o = r * n;
        match row.as_slice() {
            Some(s) => self.rows[o..o + n].copy_from_slice(s),
            None => {
                for (d, &v) in self.rows[o..o + n].iter_mut().zip(row.iter()) {
                    *d = v;
                }
            }
        }
        self.row_norm[r] = norm(&self.rows[o..o + n]);
        self.lo[self.me + i] = lower;
        self.hi[self.me + i] = upper;
        Ok(())
    }

    fn refresh_norms(&mut self) {
        let n = self.n;
        for i in 0..self.me + self.mi {
            self.row_norm[i] = norm(&self.rows[i * n..(i + 1) * n]);
        }
    }

    /// Sets the equality right-hand side `b` and/or the general row bounds `(lower, upper)`.
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] (NaN, or `b` infinite) or [`Error::InvalidValue`]
    /// when a lower bound exceeds its upper bound.
    pub fn set_row_bounds(
        &mut self,
        b: Option<ArrayView1<'_, f64>>,
        g: Option<(ArrayView1<'_, f64>, ArrayView1<'_, f64>)>,
    ) -> Result<()> {
        if let Some(b) = b {
            if b.len() != self.me {
                return Err(Error::shape(
                    "b",
                    format!("expected length {}, got {}", self.me, b.len()),
                ));
            }
            check_finite("b", b.iter())?;
            for (i, &v) in b.iter().enumerate() {
                self.lo[i] = v;
                self.hi[i] = v;
            }
        }
        if let Some((lo, hi)) = g {
            if lo.len() != self.mi || hi.len() != self.mi {
                return Err(Error::shape(
                    "h",
                    format!(
                        "expected length {}, got {} and {}",
                        self.mi,
                        lo.len(),
                        hi.len()
                    ),
                ));
            }
            let (lo, hi) = (lo.to_slice_memory_order(), hi.to_slice_memory_order());
            match (lo, hi) {
                (Some(lo), Some(hi)) => {
                    check_bounds("h", lo, hi)?;
                    self.lo[self.me..].copy_from_slice(lo);
                    self.hi[self.me..].copy_from_slice(hi);
                }
                _ => return Err(Error::shape("h", "row bounds must be contiguous")),
            }
        }
        Ok(())
    }

    /// Sets the variable bounds (`-∞` / `+∞` for none).
    ///
    /// # Errors
    /// [`Error::Shape`], [`Error::NonFinite`] or [`Error::InvalidValue`] (lower > upper).
    pub fn set_bounds(&mut self, lb: &[f64], ub: &[f64]) -> Result<()> {
        if lb.len() != self.n || ub.len() != self.n {
            return Err(Error::shape(
                "lb/ub",
                format!(
                    "expected length {}, got {} and {}",
                    self.n,
                    lb.len(),
                    ub.len()
                ),
            ));
        }
        check_bounds("lb/ub", lb, ub)?;
        self.lb.copy_from_slice(lb);
        self.ub.copy_from_slice(ub);
        Ok(())
    }

    /// Forgets the active-set guess ([`Self::hint_from_last`]), so the next solve adds
    /// violated constraints in the plain most-violated order.
    pub fn clear_hint(&mut self) {
        self.hint.clear();
    }

    /// Keeps the final active set of the last solve as the guess for the next one, after mapping
    /// each constraint through `map` (return `None` to drop it) — e.g. a one-stage shift.
    pub fn hint_from_last(&mut self, mut map: impl FnMut(ConstraintRef) -> Option<ConstraintRef>) {
        self.hint_next.clear();
        for i in 0..self.active.len() {
            let Some(cr) = self.constraint_ref(self.active[i]) else {
                continue;
            };
            if let Some(id) = map(cr).and_then(|c| self.cid(c)) {
                self.hint_next.push(id);
            }
        }
        std::mem::swap(&mut self.hint, &mut self.hint_next);
    }

    /// The final working set of the last solve (general rows and bounds; equality rows, always
    /// active, are left out), e.g. to seed another solver with [`Self::restart_with_hint`].
    pub fn active_constraints(&self) -> impl Iterator<Item = ConstraintRef> + '_ {
        self.active.iter().filter_map(|&c| self.constraint_ref(c))
    }

    /// Drops the working set and its factorisation, so the next solve starts from the
    /// unconstrained minimiser, and takes `guess` as the hint: its constraints are added first
    /// wherever violated. For switching between solvers of related problems, where the last
    /// working set of this one is stale. Entries out of range are ignored; at most `n + rows + 1`
    /// are kept (no allocation).
    pub fn restart_with_hint(&mut self, guess: impl IntoIterator<Item = ConstraintRef>) {
        self.forget_active_set();
        for c in guess {
            if self.hint.len() == self.hint.capacity() {
                break;
            }
            if let Some(id) = self.cid(c) {
                self.hint.push(id);
            }
        }
    }

    /// Hot-starts this QP from `sub`'s final working set and factorisation, where this QP is
    /// `sub` with `e = n − sub.n` variables appended (a soft constraint's slacks): the same
    /// leading Hessian block and row count, the appended block of `H` diagonal and uncoupled,
    /// each appended variable with a finite lower bound, and rows that agree with `sub`'s on
    /// the leading columns. The working set becomes the `e` lower bounds of the appended
    /// variables followed by `sub`'s, whose factorisation is exact without a step: with
    /// `D = diag(H_ee)`, `J = [[0, J_sub], [D^-1/2, 0]]` and
    /// `R = [[D^-1/2, D^-1/2 S_A], [0, R_sub]]`, `S_A` being the appended columns of the
    /// active normals. O(n²) copies instead of a cold start and one step per constraint.
    ///
    /// Returns false, changing nothing, when the structure does not hold or either solver has
    /// no usable factorisation (no rows, equalities, a regularised `H`, hot starts off); the
    /// caller then starts another way.
    pub(crate) fn adopt_working_set(&mut self, sub: &ActiveSetSolver) -> bool {
        let (n, ns) = (self.n, sub.n);
        let m = self.me + self.mi;
        if !(self.settings.hot_start
            && self.hessian_set
            && sub.hessian_set
            && sub.factor_valid
            && self.reg == 0.0
            && sub.reg == 0.0
            && self.me == 0
            && sub.me == 0
            && self.mi == sub.mi
            && self.mi > 0
            && ns < n)
        {
            return false;
        }
        let e = n - ns;
        // H = [[H_sub, 0], [0, D]] with D > 0 diagonal (col-major, both symmetric in full).
        for c in 0..ns {
            if self.h[c * n..c * n + ns] != sub.h[c * ns..(c + 1) * ns]
                || self.h[c * n + ns..(c + 1) * n].iter().any(|&v| v != 0.0)
            {
                return false;
            }
        }
        for k in 0..e {
            let col = &self.h[(ns + k) * n..(ns + k + 1) * n];
            let diag_only = col
                .iter()
                .enumerate()
                .all(|(i, &v)| (i == ns + k) == (v != 0.0));
            if !diag_only || col[ns + k] <= 0.0 || !self.lb[ns + k].is_finite() {
                return false;
            }
        }
        for r in 0..m {
            if self.rows[r * n..r * n + ns] != sub.rows[r * ns..(r + 1) * ns] {
                return false;
            }
        }
        let q = sub.active.len();
        self.forget_active_set();
        // J: the appended coordinates' columns first, then sub's J padded with zeros.
        self.j.iter_mut().for_each(|v| *v = 0.0);
        for k in 0..e {
            self.j[k * n + ns + k] = 1.0 / self.h[(ns + k) * n + ns + k].sqrt();
        }
        for k in 0..ns {
            self.j[(e + k) * n..(e + k) * n + ns].copy_from_slice(&sub.j[k * ns..(k + 1) * ns]);
        }
        // R: D^-1/2 on the appended bounds, then each active normal's appended part above
        // sub's column of R.
        for k in 0..e {
            let col = &mut self.r[k * n..k * n + k + 1];
            col.iter_mut().for_each(|v| *v = 0.0);
            col[k] = self.j[k * n + ns + k];
            self.active.push(Cid::new(m + ns + k, 0));
        }
        for (i, &c) in sub.active.iter().enumerate() {
            let (sg, _) = self.side(c);
            let row = c.row();
            let col = (e + i) * n;
            for k in 0..e {
                self.r[col + k] = if row < m {
                    sg * self.rows[row * n + ns + k] * self.j[k * n + ns + k]
                } else {
                    0.0
                };
            }
            self.r[col + e..col + e + i + 1].copy_from_slice(&sub.r[i * ns..i * ns + i + 1]);
            self.active.push(c);
        }
        debug_assert_eq!(self.active.len(), e + q);
        self.factor_valid = true;
        true
    }

    /// The public name of an internal constraint id (`None` for an equality row).
    fn constraint_ref(&self, c: Cid) -> Option<ConstraintRef> {
        let r = c.row();
        let m = self.me + self.mi;
        if r < self.me {
            None
        } else if r < m {
            Some(ConstraintRef::Row {
                index: r - self.me,
                upper: c.upper(),
            })
        } else {
            Some(ConstraintRef::Bound {
                index: r - m,
                upper: c.upper(),
            })
        }
    }

    /// The internal id of a constraint (`None` when out of range).
    fn cid(&self, c: ConstraintRef) -> Option<Cid> {
        let m = self.me + self.mi;
        match c {
            ConstraintRef::Row { index, upper } if index < self.mi => {
                Some(Cid::new(self.me + index, upper as usize))
            }
            ConstraintRef::Bound { index, upper } if index < self.n => {
                Some(Cid::new(m + index, upper as usize))
            }
            _ => None,
        }
    }

    /// The primal solution (or best iterate) of the last solve.
    pub fn x(&self) -> &[f64] {
        &self.x
    }

    /// Equality multipliers `y` (convention `Hx + f + Aᵀy + Gᵀz + z_box = 0`).
    pub fn y_eq(&self) -> &[f64] {
        &self.y_eq
    }

    /// General-row multipliers `z` (positive on an active upper side, negative on a lower one).
    pub fn z_rows(&self) -> &[f64] {
        &self.z_rows
    }

    /// Bound multipliers (positive on an active upper bound, negative on a lower one).
    pub fn z_box(&self) -> &[f64] {
        &self.z_box
    }

    /// What the last solve reported.
    pub fn info(&self) -> &SolveInfo {
        &self.info
    }

    /// Number of constraints in the final active set of the last solve.
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// Solves with linear cost `f`. Never allocates. A hot start whose iterate is not finite
    /// is retried cold; if that breaks down too, the status is [`SolveStatus::Unsolved`] and
    /// `x` is zero (never NaN).
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] for a bad `f`, [`Error::InvalidValue`] when the
    /// Hessian was never set. Solver outcomes are statuses in the returned [`SolveInfo`].
    pub fn solve(&mut self, f: ArrayView1<'_, f64>) -> Result<SolveInfo> {
        if f.len() != self.n {
            return Err(Error::shape(
                "q",
                format!("expected length {}, got {}", self.n, f.len()),
            ));
        }
        check_finite("q", f.iter())?;
        for (d, &s) in self.f.iter_mut().zip(f.iter()) {
            *d = s;
        }
        self.solve_current()
    }

    /// Solves with the linear cost already stored by [`Self::f_mut`].
    ///
    /// # Errors
    /// As [`Self::solve`].
    pub fn solve_current(&mut self) -> Result<SolveInfo> {
        if !self.hessian_set {
            return Err(Error::invalid_value(
                "P",
                "the Hessian must be set before solving",
            ));
        }
        check_finite_slice("q", &self.f)?;
        #[cfg(target_arch = "x86_64")]
        if crate::linalg::simd::SimdLevel::current() != crate::linalg::simd::SimdLevel::Scalar {
            // SAFETY: as in `factor`: a non-scalar `current()` level implies AVX2 and FMA.
            return Ok(unsafe { self.solve_avx2() });
        }
        Ok(self.solve_body())
    }

    /// The solve loop compiled for AVX2 + FMA: the Givens rotations, axpys and dot products
    /// of the inlined helpers vectorise 4-wide.
    ///
    /// # Safety
    /// As [`Self::factor_avx2`]: the CPU must support AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn solve_avx2(&mut self) -> SolveInfo {
        self.solve_body()
    }

    #[inline(always)]
    fn solve_body(&mut self) -> SolveInfo {
        let start = Instant::now();
        let deadline = self.settings.time_limit.map(|t| start + t);
        let mut iters = 0usize;
        let warm = (self.settings.hot_start && self.factor_valid && !self.active.is_empty())
            || !self.hint.is_empty()
            || !self.readd.is_empty();
        let mut status = self.solve_from_start(start, &mut iters, deadline);
        if status == SolveStatus::PrimalInfeasible && warm {
            // The dual method declares infeasibility when a violated row depends on the
            // working set; a working set carried over from the last solve (rows whose normals
            // moved, shifted hints) can make that test fire on a feasible problem. Only a
            // cold solve's verdict counts.
            self.forget_active_set();
            status = self.solve_from_start(start, &mut iters, deadline);
        }
        if !self.iterate_is_finite() {
            // Last line of defence: an iterate that is not finite (NaN fails every violation
            // test, so it would pass for optimal) means the hot start's factorisation could
            // not be trusted. Start again from the unconstrained minimiser; if even that breaks
            // down, report no solution rather than a NaN one.
            self.forget_active_set();
            status = self.solve_from_start(start, &mut iters, deadline);
            if !self.iterate_is_finite() {
                self.forget_active_set();
                self.x.iter_mut().for_each(|v| *v = 0.0);
                status = SolveStatus::Unsolved;
            }
        }
        self.readd.clear();
        self.finish(status, iters, start.elapsed());
        self.info
    }

    /// Whether `x` and the active multipliers are all finite.
    #[inline(always)]
    fn iterate_is_finite(&self) -> bool {
        self.x.iter().all(|v| v.is_finite())
            && self.u[..self.active.len()].iter().all(|v| v.is_finite())
    }

    /// Drops the working set, its factorisation and every hint: the next solve is cold.
    fn forget_active_set(&mut self) {
        self.active.clear();
        self.factor_valid = false;
        self.box_valid = false;
        self.hint.clear();
        self.readd.clear();
    }

    /// The Goldfarb–Idnani solve (with proximal-point iterations for a semidefinite `H`).
    #[inline(always)]
    fn solve_from_start(
        &mut self,
        start: Instant,
        iters: &mut usize,
        deadline: Option<Instant>,
    ) -> SolveStatus {
        let status;
        if self.reg == 0.0 && self.me + self.mi == 0 {
            self.fk.copy_from_slice(&self.f);
            status = match self.box_gi(iters, deadline) {
                Some(st) => st,
                None => {
                    // A pivot of H_FF too small to trust: the general method, from cold (the
                    // hint is kept: it still guides the additions).
                    self.active.clear();
                    self.factor_valid = false;
                    self.box_valid = false;
                    self.gi(iters, deadline)
                }
            };
        } else if self.reg == 0.0 {
            self.fk.copy_from_slice(&self.f);
            status = self.gi(iters, deadline);
        } else {
            // Proximal point: minimise ½xᵀ(H+ρI)x + (f − ρ x_k)ᵀx until x_k settles.
            self.x_prev.iter_mut().for_each(|v| *v = 0.0);
            let mut prox = 0;
            loop {
                for i in 0..self.n {
                    self.fk[i] = self.f[i] - self.reg * self.x_prev[i];
                }
                let st = self.gi(iters, deadline);
                if st != SolveStatus::Solved {
                    status = st;
                    break;
                }
                // Stop when the proximal term no longer matters: the residuals of the original
                // problem (stationarity carries ρ(x − x_k), the gap ρ(x − x_k)ᵀx) are within eps.
                self.finish(SolveStatus::Solved, *iters, start.elapsed());
                let eps = self.settings.eps;
                if self.info.dual_residual <= 0.5 * eps && self.info.duality_gap <= 0.5 * eps {
                    status = SolveStatus::Solved;
                    break;
                }
                let xmax = self.x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                prox += 1;
                if prox >= self.settings.max_prox_iter {
                    // Ever-growing iterates along a zero-curvature direction: unbounded.
                    status = if xmax > 1e12 {
                        SolveStatus::DualInfeasible
                    } else {
                        SolveStatus::MaxIterations
                    };
                    break;
                }
                // The final active set hot-starts the next proximal problem.
                self.hint.clear();
                let m = self.me + self.mi;
                for &c in &self.active {
                    if c.row() >= self.me && c.row() < m + self.n {
                        self.hint.push(c);
                    }
                }
                self.x_prev.copy_from_slice(&self.x);
            }
        }
        status
    }

    /// Mutable access to the stored linear cost, for callers that build it in place.
    pub fn f_mut(&mut self) -> &mut [f64] {
        &mut self.f
    }

    /// Normal of constraint `c` in "≥" form: `nᵀx ≥ b`, returned as (sign, b): the normal is
    /// `sign · row` (or `sign · e_j`).
    #[inline(always)]
    fn side(&self, c: Cid) -> (f64, f64) {
        let r = c.row();
        let m = self.me + self.mi;
        if r < m {
            if c.upper() {
                (-1.0, -self.hi[r])
            } else {
                (1.0, self.lo[r])
            }
        } else if c.upper() {
            (-1.0, -self.ub[r - m])
        } else {
            (1.0, self.lb[r - m])
        }
    }

    /// `nᵀx − b` for constraint `c` at the current `x`.
    #[inline(always)]
    fn slack(&self, c: Cid) -> f64 {
        let (sg, b) = self.side(c);
        let r = c.row();
        let m = self.me + self.mi;
        let v = if r < m {
            dot(&self.rows[r * self.n..(r + 1) * self.n], &self.x)
        } else {
            self.x[r - m]
        };
        sg * v - b
    }

    /// `nᵀv` for constraint `c`.
    #[inline(always)]
    fn normal_dot(&self, c: Cid, v: &[f64]) -> f64 {
        let (sg, _) = self.side(c);
        let r = c.row();
        let m = self.me + self.mi;
        if r < m {
            sg * dot(&self.rows[r * self.n..(r + 1) * self.n], v)
        } else {
            sg * v[r - m]
        }
    }

    /// `d ← Jᵀ n_c`.
    #[inline(always)]
    fn jt_normal(&mut self, c: Cid) {
        let n = self.n;
        let (sg, _) = self.side(c);
        let r = c.row();
        let m = self.me + self.mi;
        if r < m {
            let row = &self.rows[r * n..(r + 1) * n];
            dots_with_columns(&self.j, n, row, &mut self.d[..n]);
            self.d[..n].iter_mut().for_each(|v| *v *= sg);
        } else {
            let i = r - m;
            for k in 0..n {
                self.d[k] = sg * self.j[k * n + i];
            }
        }
    }

    /// The Goldfarb–Idnani loop from the unconstrained minimiser of `½xᵀ(H+ρI)x + fkᵀx`.
    #[inline(always)]
    fn gi(&mut self, iters: &mut usize, deadline: Option<Instant>) -> SolveStatus {
        let n = self.n;
        let me = self.me;
        let m = me + self.mi;
        let mut eq_next = 0usize;
        self.prev_active.clear();
        if self.settings.hot_start && self.factor_valid && self.active.len() >= me {
            // The inherited working set (rows dropped by `set_row` included), to score the
            // guesses against the final one.
            for &c in self.active.iter().chain(&self.readd) {
                if self.prev_active.len() == self.prev_active.capacity() {
                    break;
                }
                self.prev_active.push(c);
            }
            if me == 0 && self.prefer_hint && !self.hint.is_empty() {
                // As in the bounds-only path, the guess joins the start when it predicted the
                // last working set clearly better than the last working set itself did.
                self.adopt_hint();
            }
            self.hot_start();
            eq_next = me;
        } else {
            // Cold: the unconstrained minimiser; J is formed only if a constraint is violated.
            self.active.clear();
            self.factor_valid = false;
            self.box_valid = false;
            self.unconstrained_minimiser();
        }
        let eps = (0.5 * self.settings.eps).min(1e-9);
        let mut hint_pos = 0usize;
        loop {
            // Choose the constraint to add: equalities first, then violated hinted ones, then
            // the most violated (scaled by the normal's norm).
            let mut pick: Option<(Cid, f64)> = None;
            if eq_next < me {
                let c = Cid::new(eq_next, 0);
                eq_next += 1;
                pick = Some((c, self.slack(c)));
            }
            while pick.is_none() && hint_pos < self.readd.len() + self.hint.len() {
                let c = if hint_pos < self.readd.len() {
                    self.readd[hint_pos]
                } else {
                    self.hint[hint_pos - self.readd.len()]
                };
                hint_pos += 1;
                let (_, b) = self.side(c);
                // A zero row (e.g. a stage-0 MPC row, constant in the inputs, shifted in from
                // stage 1) is skipped, as the cold pass below skips it: added, it would be a
                // dependent violated constraint and read as primal infeasibility.
                let zero_row = c.row() < m && self.row_norm[c.row()] == 0.0;
                if !b.is_finite() || zero_row || self.active.contains(&c) {
                    continue;
                }
                let s = self.slack(c);
                if s < -eps {
                    pick = Some((c, s));
                }
            }
            if pick.is_none() {
                let mut worst = 0.0;
                for r in me..m {
                    let nr = self.row_norm[r];
                    if nr == 0.0 {
                        continue;
                    }
                    let v = dot(&self.rows[r * n..(r + 1) * n], &self.x);
                    let (lo, hi) = (self.lo[r], self.hi[r]);
                    let (s, side) = if v < lo { (v - lo, 0) } else { (hi - v, 1) };
                    if s < -eps {
                        let scaled = s / nr;
                        if scaled < worst {
                            worst = scaled;
                            pick = Some((Cid::new(r, side), s));
                        }
                    }
                }
                for i in 0..n {
                    let v = self.x[i];
                    let (s, side) = if v < self.lb[i] {
                        (v - self.lb[i], 0)
                    } else {
                        (self.ub[i] - v, 1)
                    };
                    if s < -eps && s < worst {
                        worst = s;
                        pick = Some((Cid::new(m + i, side), s));
                    }
                }
            }
            let Some((p, mut sp)) = pick else {
                self.score_guesses();
                return SolveStatus::Solved;
            };
            if !self.factor_valid {
                // First constraint of a cold solve: start from J = J0 = L⁻ᵀ, R empty.
                self.ensure_j0();
                self.j.copy_from_slice(&self.j0);
                self.factor_valid = true;
            }
            let is_eq = p.row() < me;
            // Multiplier of p, accumulated over the inner loop that steps until p is active.
            let mut up = 0.0;
            loop {
                *iters += 1;
                if *iters > self.settings.max_iter {
                    return SolveStatus::MaxIterations;
                }
                if let Some(dl) = deadline {
                    if Instant::now() >= dl {
                        return SolveStatus::TimeLimit;
                    }
                }
                let q = self.active.len();
                self.jt_normal(p);
                // z = J₂ d₂ (primal direction), r = R⁻¹ d₁ (dual direction).
                self.z.iter_mut().for_each(|v| *v = 0.0);
                let d = &self.d;
                debug_assert!(q <= n, "at most n constraints are active");
                axpy_columns(&self.j, n, n - q, |k| q + k, |k| d[q + k], &mut self.z);
                self.rv[..q].copy_from_slice(&self.d[..q]);
                back_substitute(&self.r, n, q, &mut self.rv[..q]);
                // Dual step limit over removable (inequality) active constraints.
                let mut t1 = f64::INFINITY;
                let mut drop_at = usize::MAX;
                for i in 0..q {
                    if self.active[i].row() >= me && self.rv[i] > 0.0 {
                        let t = self.u[i] / self.rv[i];
                        if t < t1 {
                            t1 = t;
                            drop_at = i;
                        }
                    }
                }
                let zn = self.normal_dot(p, &self.z);
                let znorm = self.z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let dnorm = self.d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                let z_zero = znorm <= 1e-13 * dnorm.max(1e-300) || zn <= 0.0;
                // Clamped at 0: after a partial step round-off may leave p just satisfied;
                // it is then added with a zero step so that its multiplier is kept.
                let t2 = if z_zero {
                    f64::INFINITY
                } else if is_eq {
                    -sp / zn
                } else {
                    (-sp / zn).max(0.0)
                };
                if is_eq {
                    if z_zero {
                        // A dependent equality: consistent (skip) or infeasible.
                        if sp.abs() <= eps * 10.0 {
                            break;
                        }
                        return SolveStatus::PrimalInfeasible;
                    }
                    // Equalities take the full step (signed), never limited by t1.
                    self.x_step(t2);
                    for i in 0..q {
                        self.u[i] -= t2 * self.rv[i];
                    }
                    self.u[q] = up + t2;
                    self.add_active(p);
                    break;
                }
                let t = t1.min(t2);
                if !t.is_finite() {
                    return SolveStatus::PrimalInfeasible;
                }
                if z_zero {
                    // Dual step only: drop the blocking constraint and retry.
                    for i in 0..q {
                        self.u[i] -= t * self.rv[i];
                    }
                    up += t;
                    self.drop_active(drop_at);
                    continue;
                }
                self.x_step(t);
                for i in 0..q {
                    self.u[i] -= t * self.rv[i];
                }
                up += t;
                if t2 <= t1 {
                    self.u[q] = up;
                    self.add_active(p);
                    break;
                }
                self.drop_active(drop_at);
                sp = self.slack(p);
            }
        }
    }

    /// Re-solves the equality-constrained problem on the previous active set with the current
    /// `fk` and bounds (`x = J₁R⁻ᵀb_W − J₂J₂ᵀfk`, `u = R⁻¹(R⁻ᵀb_W + J₁ᵀfk)`), dropping the
    /// inequality with the most negative multiplier until all are ≥ 0: a dual-feasible start.
    #[inline(always)]
    fn hot_start(&mut self) {
        let n = self.n;
        // Rows that were active before their normal changed go straight back into the
        // factorisation (no step): the working set keeps its meaning, and the multipliers
        // below are recomputed for the new normals.
        for i in 0..self.readd.len() {
            let c = self.readd[i];
            let q = self.active.len();
            if q >= n || !self.side(c).1.is_finite() || self.active.contains(&c) {
                continue;
            }
            self.jt_normal(c);
            let head = self.d.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let tail = self.d[q..].iter().fold(0.0f64, |a, v| a.max(v.abs()));
            if tail > 1e-10 * head.max(1e-300) {
                self.add_active(c);
            }
        }
        self.readd.clear();
        // A constraint whose bound has become infinite since the last solve no longer constrains
        // anything (a keep-out row disabled without touching its normal, a rate row without a
        // previous input): it leaves the working set, or the re-solve below meets b = ∓∞ and
        // its NaN iterate slips through every violation test.
        for i in (0..self.active.len()).rev() {
            if !self.side(self.active[i]).1.is_finite() {
                self.drop_active(i);
            }
        }
        let me = self.me;
        // d = Jᵀfk once: a drop rotates columns of J, and `drop_active::<true>` applies the
        // same rotations to d, so each round costs O(q²) (two triangular solves), not O(n²).
        dots_with_columns(&self.j, n, &self.fk, &mut self.d[..n]);
        // Rounds: solve for the multipliers and drop the most negative inequality. (Tried and
        // dropped: every negative one at once, and the last negative one, which is the
        // cheapest to drop; both lengthen the solves that follow a set-point change.) After a
        // drop at `from`, z[..from] is still R⁻ᵀb_W.
        let mut from = 0;
        loop {
            let q = self.active.len();
            // z[..q] = v₁ = R⁻ᵀ b_W (forward substitution; column i of R is contiguous).
            for i in from..q {
                let b = self.side(self.active[i]).1;
                let s = b - dot(&self.r[i * n..i * n + i], &self.z[..i]);
                self.z[i] = s / self.r[i * n + i];
            }
            // u = R⁻¹ (v₁ + d₁).
            for i in 0..q {
                self.u[i] = self.z[i] + self.d[i];
            }
            back_substitute(&self.r, n, q, &mut self.u[..q]);
            let mut worst = 0.0;
            let mut at = usize::MAX;
            for i in 0..q {
                if self.active[i].row() >= me && self.u[i] < worst {
                    worst = self.u[i];
                    at = i;
                }
            }
            if at == usize::MAX {
                break;
            }
            self.drop_active_impl::<true>(at);
            from = at;
        }
        // x = J₁v₁ − J₂d₂, formed once for the final working set.
        let q = self.active.len();
        self.x.iter_mut().for_each(|v| *v = 0.0);
        let (z, d) = (&self.z, &self.d);
        axpy_columns(&self.j, n, q, |k| k, |k| z[k], &mut self.x);
        axpy_columns(&self.j, n, n - q, |k| q + k, |k| -d[q + k], &mut self.x);
    }

    /// Adds the hint's constraints to the inherited working set: an active constraint whose
    /// other side the hint holds is dropped (the hint's side wins), and the hint's constraints
    /// not active replace `readd`, which [`Self::hot_start`] adds to the factorisation without
    /// a step; its multiplier rounds then drop whichever constraints of the union do not
    /// belong. The rows `set_row` queued are re-added only if the hint has them (an MPC's hint
    /// holds their shifted successors instead). The inherited constraints the hint lacks are
    /// not dropped up front: on J and R a drop costs O(qn) rotations, no less than letting
    /// the rounds drop the wrong ones, and some are right. Measured on the keep-out sequence
    /// (nearest-rank p99 / median): 2.81 as here, 2.88 dropping them first, 3.71 keeping the
    /// active side against the hint's.
    fn adopt_hint(&mut self) {
        let tag = |c: Cid| 1 + u8::from(c.upper());
        for &c in &self.hint {
            self.mark[c.row()] = tag(c);
        }
        for i in (0..self.active.len()).rev() {
            let c = self.active[i];
            let m = self.mark[c.row()];
            if m != 0 && m != tag(c) {
                self.drop_active(i);
            }
        }
        for &c in &self.hint {
            self.mark[c.row()] = 0;
        }
        for &c in &self.active {
            self.mark[c.row()] = tag(c);
        }
        self.readd.clear();
        for i in 0..self.hint.len() {
            let c = self.hint[i];
            if self.mark[c.row()] == 0 && self.readd.len() < self.readd.capacity() {
                self.readd.push(c);
                self.mark[c.row()] = tag(c);
            }
        }
        for &c in self.active.iter().chain(&self.readd) {
            self.mark[c.row()] = 0;
        }
    }

    #[inline(always)]
    fn x_step(&mut self, t: f64) {
        for (x, z) in self.x.iter_mut().zip(&self.z) {
            *x += t * z;
        }
    }

    /// Appends `p` (its `d = Jᵀn_p` is in `self.d`): rotate `d[q+1..]` into `d[q]`.
    #[inline(always)]
    fn add_active(&mut self, p: Cid) {
        let n = self.n;
        let q = self.active.len();
        // One nonzero in d[q..] (a bound on a variable that no rotation has mixed yet, such as
        // a soft constraint's slack): the columns of J₂ are any orthonormal basis of the
        // null space, so a (signed) swap does what the chain of rotations would, in O(n).
        let mut single = None;
        for k in q..n {
            if self.d[k] != 0.0 {
                if single.is_some() {
                    single = None;
                    break;
                }
                single = Some(k);
            }
        }
        if let Some(k) = single.filter(|&k| k > q) {
            let sg = self.d[k].signum();
            self.d[q] = self.d[k].abs();
            self.d[k] = 0.0;
            let (left, right) = self.j.split_at_mut(k * n);
            let (a, b) = (&mut left[q * n..(q + 1) * n], &mut right[..n]);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let xv = *x;
                *x = sg * *y;
                *y = xv;
            }
        } else {
            self.rotate_into_q(q);
        }
        for i in 0..=q {
            self.r[q * n + i] = self.d[i];
        }
        self.active.push(p);
    }

    /// Rotates `d[q+1..]` into `d[q]`, applying the same rotations to the columns of J.
    #[inline(always)]
    fn rotate_into_q(&mut self, q: usize) {
        let n = self.n;
        for k in (q + 1..n).rev() {
            let (a, b) = (self.d[k - 1], self.d[k]);
            if b == 0.0 {
                continue;
            }
            let h = (a * a + b * b).sqrt(); // operands are O(1)-scaled: no overflow guard needed
            let (c, s) = (a / h, b / h);
            self.d[k - 1] = h;
            self.d[k] = 0.0;
            let (left, right) = self.j.split_at_mut(k * n);
            rotate(&mut left[(k - 1) * n..k * n], &mut right[..n], c, s);
        }
    }

    /// Removes the active constraint at position `i`, restoring `R` to triangular form.
    #[inline(always)]
    fn drop_active(&mut self, i: usize) {
        self.drop_active_impl::<false>(i);
    }

    /// [`Self::drop_active`]; with `ROT_D`, `d = Jᵀv` is kept current through the rotations
    /// of J (the hot start's `Jᵀfk`).
    #[inline(always)]
    fn drop_active_impl<const ROT_D: bool>(&mut self, i: usize) {
        let n = self.n;
        let q = self.active.len();
        // Shift the later columns of R (and their multipliers) one place left: R becomes upper
        // Hessenberg from column i on.
        for k in i..q - 1 {
            self.r.copy_within((k + 1) * n..(k + 1) * n + k + 2, k * n);
        }
        self.u.copy_within(i + 1..q, i);
        self.active.remove(i);
        // Zero the subdiagonal with rotations of rows k, k+1 (columns k, k+1 of J).
        for k in i..q - 1 {
            let (a, b) = (self.r[k * n + k], self.r[k * n + k + 1]);
            if b == 0.0 {
                continue;
            }
            let h = (a * a + b * b).sqrt(); // operands are O(1)-scaled: no overflow guard needed
            let (c, s) = (a / h, b / h);
            self.r[k * n + k] = h;
            self.r[k * n + k + 1] = 0.0;
            // Rows k, k+1 of the later columns (one chunk per column: no index checks).
            for col in self.r[(k + 1) * n..(q - 1) * n].chunks_exact_mut(n) {
                if let [x, y] = &mut col[k..k + 2] {
                    let (xv, yv) = (*x, *y);
                    *x = c * xv + s * yv;
                    *y = -s * xv + c * yv;
                }
            }
            let (left, right) = self.j.split_at_mut((k + 1) * n);
            rotate(&mut left[k * n..(k + 1) * n], &mut right[..n], c, s);
            if ROT_D {
                let (x, y) = (self.d[k], self.d[k + 1]);
                self.d[k] = c * x + s * y;
                self.d[k + 1] = -s * x + c * y;
            }
        }
    }

    /// The Goldfarb–Idnani method of [`Self::gi`] for a problem with bounds only and a positive
    /// definite `H`, on the Cholesky factor of the free block `H_FF` instead of `J = L⁻ᵀQ`.
    /// An active bound fixes its variable, so the working set's null space is the free
    /// coordinates: adding a bound deletes a row and column of the factor, dropping one appends
    /// a row, each O(n_F²) with n_F the number of free variables (against O(n²) Givens work on
    /// `J` and `R`). Large working sets, as after a set-point change in an MPC with saturated
    /// inputs, are where it matters. `None` when a pivot of `H_FF` is too small to trust.
    #[inline(always)]
    fn box_gi(&mut self, iters: &mut usize, deadline: Option<Instant>) -> Option<SolveStatus> {
        let n = self.n;
        let reuse = self.settings.hot_start && self.box_valid;
        self.prev_active.clear();
        if reuse {
            self.prev_active.extend_from_slice(&self.active);
        }
        if !self.hint.is_empty() && (self.prefer_hint || !reuse) {
            // Start from the guess (an MPC's shifted working set) when it predicted the last
            // solve's working set better than the last working set itself did: right after a
            // set-point change the shift is what moves the saturated stages, while in steady
            // tracking the unshifted set can be the closer one.
            if !self.box_start_from_hint() {
                return None;
            }
        } else if reuse {
            if !self.box_hot_start() {
                return None;
            }
        } else {
            self.active.clear();
            self.box_valid = false;
            self.unconstrained_minimiser();
        }
        let eps = (0.5 * self.settings.eps).min(1e-9);
        let mut hint_pos = 0usize;
        loop {
            // The constraint to add: violated hinted bounds first, then the most violated.
            let mut pick: Option<(Cid, f64)> = None;
            while pick.is_none() && hint_pos < self.hint.len() {
                let c = self.hint[hint_pos];
                hint_pos += 1;
                if !self.side(c).1.is_finite() || self.fpos_of(c) == NOT_FREE {
                    continue;
                }
                let s = self.slack(c);
                if s < -eps {
                    pick = Some((c, s));
                }
            }
            if pick.is_none() {
                let mut worst = 0.0;
                for i in 0..n {
                    let v = self.x[i];
                    let (s, side) = if v < self.lb[i] {
                        (v - self.lb[i], 0)
                    } else {
                        (self.ub[i] - v, 1)
                    };
                    if s < -eps && s < worst {
                        worst = s;
                        pick = Some((Cid::new(i, side), s));
                    }
                }
            }
            let Some((p, mut sp)) = pick else {
                self.score_guesses();
                return Some(SolveStatus::Solved);
            };
            self.ensure_box_factor();
            let ip = p.row();
            let (sg, _) = self.side(p);
            let mut up = 0.0;
            loop {
                *iters += 1;
                if *iters > self.settings.max_iter {
                    return Some(SolveStatus::MaxIterations);
                }
                if let Some(dl) = deadline {
                    if Instant::now() >= dl {
                        return Some(SolveStatus::TimeLimit);
                    }
                }
                let q = self.active.len();
                let nf = self.free.len();
                let k = self.fpos[ip];
                if k == NOT_FREE {
                    // Cannot happen with a consistent working set (a fixed variable sits at its
                    // bound); if it ever does, the general method takes over rather than panic.
                    return None;
                }
                // Primal direction z_F = sg·H_FF⁻¹e_k (moves x_p towards its bound, keeps the
                // other free variables optimal); n_pᵀz = (H_FF⁻¹)_kk > 0.
                self.wb[..nf].iter_mut().for_each(|v| *v = 0.0);
                self.wb[k] = 1.0;
                chol_solve_from(&self.lf, n, nf, k, &mut self.wb[..nf]);
                let zn = self.wb[k];
                if !zn.is_finite() || zn <= 0.0 {
                    return None;
                }
                // gd = H_{:,F} z_F: the gradient's rate of change, read on the active bounds
                // as their multipliers' rates (u_i = sg_i·g_i).
                self.gd.iter_mut().for_each(|v| *v = 0.0);
                let wb = &self.wb;
                let free = &self.free;
                axpy_columns(
                    &self.h,
                    n,
                    nf,
                    |kk| free[kk],
                    |kk| sg * wb[kk],
                    &mut self.gd,
                );
                let mut t1 = f64::INFINITY;
                let mut drop_at = usize::MAX;
                for a in 0..q {
                    let c = self.active[a];
                    let rv = -self.side(c).0 * self.gd[c.row()];
                    self.rv[a] = rv;
                    if rv > 0.0 {
                        let t = self.u[a] / rv;
                        if t < t1 {
                            t1 = t;
                            drop_at = a;
                        }
                    }
                }
                let t2 = (-sp / zn).max(0.0);
                let t = t1.min(t2);
                for kk in 0..nf {
                    self.x[self.free[kk]] += t * sg * self.wb[kk];
                }
                for a in 0..q {
                    self.u[a] -= t * self.rv[a];
                }
                up += t;
                if t2 <= t1 {
                    // The bound holds exactly from here on.
                    self.x[ip] = sg * self.side(p).1;
                    self.box_delete(k);
                    self.u[q] = up;
                    self.active.push(p);
                    break;
                }
                if !self.box_drop(drop_at) {
                    return None;
                }
                sp = self.slack(p);
            }
        }
    }

    /// Which guess of the working set the next solve starts from: the hint if it was closer
    /// to this solve's final working set (fewer bounds in one and not the other) than the
    /// working set this solve inherited. Ties keep the inherited one, which needs no new factor.
    #[inline(always)]
    fn score_guesses(&mut self) {
        if self.hint.is_empty() || self.prev_active.is_empty() {
            // Nothing to compare (a cold or unguided solve): trust the guess next time.
            self.prefer_hint = true;
            return;
        }
        self.mark.iter_mut().for_each(|m| *m = 0);
        for &c in &self.active {
            self.mark[c.row()] = 1 + u8::from(c.upper());
        }
        let q = self.active.len();
        // |A Δ G| = |A| + |G| − 2|A ∩ G| for a guess G (one entry per variable counted).
        let distance = |mark: &mut [u8], guess: &[Cid]| {
            let (mut len, mut common) = (0usize, 0usize);
            for &c in guess {
                let m = &mut mark[c.row()];
                if *m >= 4 {
                    continue; // this variable was counted already
                }
                len += 1;
                if *m == 1 + u8::from(c.upper()) {
                    common += 1;
                }
                *m += 4;
            }
            for &c in guess {
                let m = &mut mark[c.row()];
                if *m >= 4 {
                    *m -= 4;
                }
            }
            q + len - 2 * common
        };
        let dh = distance(&mut self.mark, &self.hint);
        let dp = distance(&mut self.mark, &self.prev_active);
        for &c in &self.active {
            self.mark[c.row()] = 0; // other users expect a clean slate
        }
        // On the free-block factor a change of working set costs about what a step does, so
        // the closer guess wins. With rows (J and R), dropping an early constraint costs O(qn)
        // rotations, no cheaper than a step: there the guess must be clearly closer.
        self.prefer_hint = if self.me + self.mi == 0 {
            dh < dp
        } else {
            2 * dh + 2 <= dp
        };
    }

    /// Position of bound `c`'s variable in `free` (`NOT_FREE` when a bound of it is active).
    #[inline(always)]
    fn fpos_of(&self, c: Cid) -> usize {
        if self.box_valid {
            self.fpos[c.row()]
        } else {
            // Not materialised yet: every variable is free, in order.
            c.row()
        }
    }

    /// Materialises the free set as every variable, in order, with factor `L`.
    #[inline(always)]
    fn ensure_box_factor(&mut self) {
        if self.box_valid {
            return;
        }
        self.lf.copy_from_slice(&self.l);
        self.free.clear();
        self.free.extend(0..self.n);
        for (i, p) in self.fpos.iter_mut().enumerate() {
            *p = i;
        }
        self.box_valid = true;
    }

    /// Re-solves on the previous working set with the current `fk` and bounds (the
    /// bounds-only form of [`Self::hot_start`]). False when a pivot is too small.
    #[inline(always)]
    fn box_hot_start(&mut self) -> bool {
        // A bound that has become infinite no longer constrains anything.
        for a in (0..self.active.len()).rev() {
            if !self.side(self.active[a]).1.is_finite() && !self.box_drop(a) {
                return false;
            }
        }
        self.box_rounds()
    }

    /// Starts from the hinted working set (bounds with a finite value, the first per variable).
    /// Its factor comes from the last one, by dropping and adding the bounds in which the two
    /// sets differ (O(n_F²) each, no re-solve between), or, when that is estimated dearer, is
    /// formed afresh from the free block of `H` (n_F³/3). Then [`Self::box_rounds`] makes the
    /// multipliers nonnegative. False when a pivot is too small.
    #[inline(always)]
    fn box_start_from_hint(&mut self) -> bool {
        let n = self.n;
        // mark[i]: 0 free in the hint, 1 its lower bound hinted, 2 its upper.
        self.mark.iter_mut().for_each(|m| *m = 0);
        let mut nh = 0usize;
        for h in 0..self.hint.len() {
            let c = self.hint[h];
            if self.mark[c.row()] == 0 && self.side(c).1.is_finite() {
                self.mark[c.row()] = 1 + u8::from(c.upper());
                nh += 1;
            }
        }
        let wanted = |mark: &[u8], c: Cid| mark[c.row()] == 1 + u8::from(c.upper());
        if self.settings.hot_start && self.box_valid {
            let q = self.active.len();
            let keep = self
                .active
                .iter()
                .filter(|&&c| wanted(&self.mark, c) && self.side(c).1.is_finite())
                .count();
            let changes = (q - keep) + (nh - keep);
            let nf = self.free.len() as f64;
            let nf_hint = (n - nh) as f64;
            if changes as f64 * nf * nf <= nf_hint * nf_hint * nf_hint / 3.0 {
                for a in (0..q).rev() {
                    let c = self.active[a];
                    let keep = wanted(&self.mark, c) && self.side(c).1.is_finite();
                    if !keep && !self.box_drop(a) {
                        return false;
                    }
                }
                for h in 0..self.hint.len() {
                    let c = self.hint[h];
                    let k = self.fpos[c.row()];
                    if k != NOT_FREE && wanted(&self.mark, c) {
                        self.box_delete(k);
                        self.active.push(c);
                    }
                }
                return self.box_rounds();
            }
        }
        self.active.clear();
        self.free.clear();
        for h in 0..self.hint.len() {
            let c = self.hint[h];
            if wanted(&self.mark, c) {
                // Only the first entry per variable: clear the mark's match afterwards.
                self.active.push(c);
                self.mark[c.row()] = 3;
            }
        }
        for i in 0..n {
            if self.mark[i] == 0 {
                self.fpos[i] = self.free.len();
                self.free.push(i);
            } else {
                self.fpos[i] = NOT_FREE;
            }
        }
        let nf = self.free.len();
        for c in 0..nf {
            let hc = &self.h[self.free[c] * n..(self.free[c] + 1) * n];
            for r in c..nf {
                self.lf[c * n + r] = hc[self.free[r]];
            }
        }
        // The pivot test of `factor_body`, relative to H's largest diagonal entry.
        let tiny = 1e-13 * (0..n).map(|i| self.h[i * n + i]).fold(0.0, f64::max);
        self.box_valid = cholesky_in_place(&mut self.lf, n, nf, tiny);
        self.box_valid && self.box_rounds()
    }

    /// From a working set whose factor is current: `x` on it, then the bound with the most
    /// negative multiplier dropped until all are ≥ 0. Each round costs O(n_F² + n·min(q, n_F)):
    /// `t = fk + H_{:,A}x_A` is kept up to date through the drops, not re-formed. False when a
    /// pivot is too small.
    #[inline(always)]
    fn box_rounds(&mut self) -> bool {
        let n = self.n;
        // t = fk + H_{:,A} x_A, with x_A at the (current) bounds.
        self.z.copy_from_slice(&self.fk);
        for a in 0..self.active.len() {
            let c = self.active[a];
            let (sg, b) = self.side(c);
            self.x[c.row()] = sg * b;
        }
        let (active, x) = (&self.active, &self.x);
        let col = |a: usize| active[a].row();
        axpy_columns(&self.h, n, active.len(), col, |a| x[col(a)], &mut self.z);
        loop {
            // x_F = −H_FF⁻¹ t_F.
            let nf = self.free.len();
            for k in 0..nf {
                self.d[k] = -self.z[self.free[k]];
            }
            chol_solve_from(&self.lf, n, nf, 0, &mut self.d[..nf]);
            for k in 0..nf {
                self.x[self.free[k]] = self.d[k];
            }
            // Multipliers u_a = sg_a·(Hx + fk)_a: row dots for a small working set, else
            // g = t + H_{:,F}x_F by contiguous column axpys.
            let q = self.active.len();
            if q <= nf {
                for a in 0..q {
                    let c = self.active[a];
                    let i = c.row();
                    let g = dot(&self.h[i * n..(i + 1) * n], &self.x) + self.fk[i];
                    self.u[a] = self.side(c).0 * g;
                }
            } else {
                self.gd.copy_from_slice(&self.z);
                let x = &self.x;
                let free = &self.free;
                axpy_columns(&self.h, n, nf, |k| free[k], |k| x[free[k]], &mut self.gd);
                for a in 0..q {
                    let c = self.active[a];
                    self.u[a] = self.side(c).0 * self.gd[c.row()];
                }
            }
            let mut worst = 0.0;
            let mut at = usize::MAX;
            for a in 0..q {
                if self.u[a] < worst {
                    worst = self.u[a];
                    at = a;
                }
            }
            if at == usize::MAX {
                return true;
            }
            let v = self.active[at].row();
            let xv = self.x[v];
            axpy(-xv, &self.h[v * n..(v + 1) * n], &mut self.z);
            if !self.box_drop(at) {
                return false;
            }
        }
    }

    /// Drops active bound `a`: its variable joins the free set at the end, the factor gains a
    /// row (`L w = H_{F,v}`, pivot `√(H_vv − wᵀw)`). False when that pivot is too small.
    #[inline(always)]
    fn box_drop(&mut self, a: usize) -> bool {
        let n = self.n;
        let nf = self.free.len();
        let v = self.active[a].row();
        let w = &mut self.d[..nf];
        for (k, wk) in w.iter_mut().enumerate() {
            *wk = self.h[v * n + self.free[k]];
        }
        forward_substitute(&self.lf, n, nf, 0, w);
        let hvv = self.h[v * n + v];
        let piv = hvv - dot(w, w);
        if piv.is_nan() || piv <= 1e-13 * hvv {
            return false;
        }
        for c in 0..nf {
            self.lf[c * n + nf] = self.d[c];
        }
        self.lf[nf * n + nf] = piv.sqrt();
        self.fpos[v] = nf;
        self.free.push(v);
        let q = self.active.len();
        self.u.copy_within(a + 1..q, a);
        self.active.remove(a);
        true
    }

    /// Removes the free variable at position `k` (its bound became active): row and column
    /// `k` leave the factor, and the trailing block absorbs the removed column by a rank-one
    /// Cholesky update.
    #[inline(always)]
    fn box_delete(&mut self, k: usize) {
        let n = self.n;
        let nf = self.free.len();
        let lf = &mut self.lf;
        // Columns before k lose row k.
        for c in 0..k {
            lf.copy_within(c * n + k + 1..c * n + nf, c * n + k);
        }
        // The removed column below the diagonal, then the trailing block moved up-left.
        let len = nf - k - 1;
        let w = &mut self.wb[..len];
        w.copy_from_slice(&lf[k * n + k + 1..k * n + nf]);
        for c in k + 1..nf {
            lf.copy_within(c * n + c..c * n + nf, (c - 1) * n + c - 1);
        }
        // L̃L̃ᵀ = L₃₃L₃₃ᵀ + wwᵀ (rows and columns k..nf−1 now).
        for j in 0..len {
            let cix = (k + j) * n + k + j;
            let ljj = lf[cix];
            let wj = w[j];
            if wj == 0.0 {
                continue;
            }
            // r = √(l² + w²) without squaring l (pivots scale with √H): c = r/l, s = w/l.
            let s = wj / ljj;
            let c = (1.0 + s * s).sqrt();
            lf[cix] = ljj * c;
            let col = &mut lf[cix + 1..cix + len - j];
            let wt = &mut w[j + 1..];
            for (l, wv) in col.iter_mut().zip(wt.iter_mut()) {
                let lv = (*l + s * *wv) / c;
                *l = lv;
                *wv = c * *wv - s * lv;
            }
        }
        let v = self.free.remove(k);
        self.fpos[v] = NOT_FREE;
        for kk in k..self.free.len() {
            self.fpos[self.free[kk]] = kk;
        }
    }

    /// Multipliers and residuals of the final iterate.
    #[inline(always)]
    fn finish(&mut self, status: SolveStatus, iterations: usize, elapsed: Duration) {
        let n = self.n;
        let me = self.me;
        let m = me + self.mi;
        self.y_eq.iter_mut().for_each(|v| *v = 0.0);
        self.z_rows.iter_mut().for_each(|v| *v = 0.0);
        self.z_box.iter_mut().for_each(|v| *v = 0.0);
        for (i, &c) in self.active.iter().enumerate() {
            let (sg, _) = self.side(c);
            // Lagrangian ½xᵀHx + fᵀx − Σ u (nᵀx − b): the row's multiplier is −sg·u.
            let val = -sg * self.u[i];
            let r = c.row();
            if r < me {
                self.y_eq[r] += val;
            } else if r < m {
                self.z_rows[r - me] += val;
            } else {
                self.z_box[r - m] += val;
            }
        }
        // Residuals against the original (unregularised) problem.
        let mut pres = 0.0f64;
        for r in 0..m {
            let v = dot(&self.rows[r * n..(r + 1) * n], &self.x);
            pres = pres.max(self.lo[r] - v).max(v - self.hi[r]);
        }
        for i in 0..n {
            pres = pres.max(self.lb[i] - self.x[i]).max(self.x[i] - self.ub[i]);
        }
        // z ← Hx, then the stationarity residual Hx + f + Aᵀy + Gᵀz + z_box.
        self.z.iter_mut().for_each(|v| *v = 0.0);
        let x = &self.x;
        axpy_columns(&self.h, n, n, |c| c, |c| x[c], &mut self.z);
        let xhx = dot(&self.x, &self.z);
        let fx = dot(&self.f, &self.x);
        for i in 0..n {
            self.z[i] += self.f[i] + self.z_box[i];
        }
        // The dual objective's constraint term (support function at the multipliers).
        let mut support = 0.0;
        for r in 0..m {
            let w = if r < me {
                self.y_eq[r]
            } else {
                self.z_rows[r - me]
            };
            if w != 0.0 {
                axpy(w, &self.rows[r * n..(r + 1) * n], &mut self.z);
                support += if w > 0.0 {
                    w * self.hi[r]
                } else {
                    w * self.lo[r]
                };
            }
        }
        for i in 0..n {
            let w = self.z_box[i];
            if w != 0.0 {
                support += if w > 0.0 {
                    w * self.ub[i]
                } else {
                    w * self.lb[i]
                };
            }
        }
        let dres = self.z.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        self.info = SolveInfo {
            status,
            iterations,
            solve_time: elapsed,
            primal_residual: pres.max(0.0),
            dual_residual: dres,
            duality_gap: (xhx + fx + support).abs(),
            max_violation: 0.0,
        };
    }
}

/// A constraint of an [`ActiveSetSolver`], for mapping active sets between solves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConstraintRef {
    /// General row `index`, upper side if `upper`.
    Row {
        /// Row index in `G`.
        index: usize,
        /// Upper (`≤ upper`) or lower side.
        upper: bool,
    },
    /// Bound on variable `index`, upper side if `upper`.
    Bound {
        /// Variable index.
        index: usize,
        /// Upper or lower bound.
        upper: bool,
    },
}

/// Solves `R x = b` in place (`x` holds `b` on entry) for the leading `q × q` block of the
/// upper-triangular `R` (column `k` at `r[k·n..]`), column by column: contiguous, vectorised
/// updates and no dependency chain along a row.
#[inline(always)]
fn back_substitute(r: &[f64], n: usize, q: usize, x: &mut [f64]) {
    for i in (0..q).rev() {
        let col = &r[i * n..i * n + i + 1];
        let xi = x[i] / col[i];
        x[i] = xi;
        axpy(-xi, &col[..i], &mut x[..i]);
    }
}

/// Lower Cholesky factor, in place, of the leading `nf × nf` block of the column-major `l`
/// (column `c` at `l[c·ld..]`, lower triangle read): left-looking, so the updates are
/// contiguous column axpys that vectorise. False on a pivot that is NaN or ≤ `tiny`.
#[inline(always)]
fn cholesky_in_place(l: &mut [f64], ld: usize, nf: usize, tiny: f64) -> bool {
    for c in 0..nf {
        let (prev, cur) = l.split_at_mut(c * ld);
        let col = &mut cur[c..nf];
        for k in 0..c {
            let lck = prev[k * ld + c];
            if lck != 0.0 {
                axpy(-lck, &prev[k * ld + c..k * ld + nf], col);
            }
        }
        let piv = col[0];
        if piv.is_nan() || piv <= tiny {
            return false;
        }
        let inv_s = 1.0 / piv.sqrt();
        col.iter_mut().for_each(|v| *v *= inv_s);
    }
    true
}

/// `fpos` entry of a variable whose bound is active.
const NOT_FREE: usize = usize::MAX;

/// Solves `L Lᵀ y = b` in place for the leading `nf × nf` block of the lower-triangular `L`
/// (column `c` at `l[c·ld..]`), where `b` is zero before `from` (the forward pass starts
/// there). Both passes run down contiguous columns.
#[inline(always)]
fn chol_solve_from(l: &[f64], ld: usize, nf: usize, from: usize, y: &mut [f64]) {
    forward_substitute(l, ld, nf, from, y);
    for i in (0..nf).rev() {
        let col = &l[i * ld + i..i * ld + nf];
        let s = y[i] - dot4(&col[1..], &y[i + 1..nf]);
        y[i] = s / col[0];
    }
}

/// Solves `L y = b` in place for the rows `from..nf` (`y[..from]` is zero), `L` the
/// column-major lower-triangular factor in `l` with leading dimension `ld`. Four columns at a
/// time: their 4×4 diagonal block column by column, then one pass over the rows below for all
/// four. Each entry receives the same updates in the same order as in the one-column-at-a-time
/// substitution, so the values are those of that loop, up to the sign of a zero: the blocks
/// do not skip a column whose `y_c` is ±0 (the leftover columns still do, which keeps a sparse
/// right-hand side cheap).
#[inline(always)]
fn forward_substitute(l: &[f64], ld: usize, nf: usize, from: usize, y: &mut [f64]) {
    let mut c = from;
    while c + 4 <= nf {
        for i in c..c + 4 {
            let yi = y[i] / l[i * ld + i];
            y[i] = yi;
            for r in i + 1..c + 4 {
                y[r] -= yi * l[i * ld + r];
            }
        }
        let (y0, y1, y2, y3) = (y[c], y[c + 1], y[c + 2], y[c + 3]);
        let col = |k: usize| &l[k * ld + c + 4..k * ld + nf];
        let (l0, l1, l2, l3) = (col(c), col(c + 1), col(c + 2), col(c + 3));
        let rest = &mut y[c + 4..nf];
        for ((((yv, v0), v1), v2), v3) in rest.iter_mut().zip(l0).zip(l1).zip(l2).zip(l3) {
            let mut t = *yv;
            t -= y0 * v0;
            t -= y1 * v1;
            t -= y2 * v2;
            t -= y3 * v3;
            *yv = t;
        }
        c += 4;
    }
    for c in c..nf {
        let col = &l[c * ld + c..c * ld + nf];
        let yc = y[c] / col[0];
        y[c] = yc;
        if yc != 0.0 {
            axpy(-yc, &col[1..], &mut y[c + 1..nf]);
        }
    }
}

/// A dot product with four lanes: for the short columns of a free-block factor, where the
/// eight-lane [`dot`] spends more on its remainder and reduction than on the products.
#[inline(always)]
fn dot4(a: &[f64], b: &[f64]) -> f64 {
    dot_lanes::<4>(a, b)
}

#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    dot_lanes::<8>(a, b)
}

/// `L` independent lanes (L = 4 or 8): vectorises without reassociating any single lane, so
/// the result is the same on every SIMD tier. Reduced as lane i + lane i + L/2, then adjacent
/// pairs: ((a0+a4)+(a1+a5))+((a2+a6)+(a3+a7)) for 8, (a0+a2)+(a1+a3) for 4.
#[inline(always)]
fn dot_lanes<const L: usize>(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; L];
    let mut ca = a.chunks_exact(L);
    let mut cb = b.chunks_exact(L);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for j in 0..L {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    reduce_lanes(acc, tail)
}

/// `out[k] = M[k] · b` for the first `out.len()` columns of the column-major `m` (leading
/// dimension `n`, `b.len() ≤ n`), four columns per pass over `b`. Each is formed exactly as
/// [`dot`] forms it (the same eight lanes, tail and reduction), so the values are [`dot`]'s.
#[inline(always)]
fn dots_with_columns(m: &[f64], n: usize, b: &[f64], out: &mut [f64]) {
    let len = b.len();
    debug_assert!(len <= n, "columns are at most n long");
    let column = |k: usize| &m[k * n..k * n + len];
    let count = out.len();
    let mut k = 0;
    while k + 4 <= count {
        let cols = [column(k), column(k + 1), column(k + 2), column(k + 3)];
        let mut acc = [[0.0f64; 8]; 4];
        let mut cb = b.chunks_exact(8);
        let mut off = 0;
        for y in &mut cb {
            for (acc, col) in acc.iter_mut().zip(&cols) {
                let x = &col[off..off + 8];
                for j in 0..8 {
                    acc[j] += x[j] * y[j];
                }
            }
            off += 8;
        }
        for (i, (acc, col)) in acc.iter().zip(&cols).enumerate() {
            let mut tail = 0.0;
            for (x, y) in col[off..].iter().zip(cb.remainder()) {
                tail += x * y;
            }
            out[k + i] = reduce_lanes(*acc, tail);
        }
        k += 4;
    }
    while k < count {
        out[k] = dot(column(k), b);
        k += 1;
    }
}

/// The reduction of [`dot_lanes`]: lane i + lane i + L/2, then adjacent pairs, then the tail.
#[inline(always)]
fn reduce_lanes<const L: usize>(mut acc: [f64; L], tail: f64) -> f64 {
    let half = L / 2;
    for i in 0..half {
        acc[i] += acc[i + half];
    }
    let mut width = half;
    while width > 1 {
        for i in 0..width / 2 {
            acc[i] = acc[2 * i] + acc[2 * i + 1];
        }
        width /= 2;
    }
    acc[0] + tail
}

#[inline(always)]
fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

/// `y += Σ_{k<count} alpha(k)·M[col(k)]` over columns of the column-major `m` (leading
/// dimension `n`, columns as long as `y`), four columns per pass over `y`: one load and store
/// of `y` per four columns instead of per column. The sums are formed in the order of `k`, so
/// the result is that of one [`axpy`] per column, bit for bit.
#[inline(always)]
fn axpy_columns(
    m: &[f64],
    n: usize,
    count: usize,
    col: impl Fn(usize) -> usize,
    alpha: impl Fn(usize) -> f64,
    y: &mut [f64],
) {
    let len = y.len();
    debug_assert!(len <= n, "columns are at most n long");
    let column = |k: usize| {
        let j = col(k);
        &m[j * n..j * n + len]
    };
    let mut k = 0;
    while k + 4 <= count {
        let (a0, a1, a2, a3) = (alpha(k), alpha(k + 1), alpha(k + 2), alpha(k + 3));
        let (x0, x1, x2, x3) = (column(k), column(k + 1), column(k + 2), column(k + 3));
        for ((((yv, v0), v1), v2), v3) in y.iter_mut().zip(x0).zip(x1).zip(x2).zip(x3) {
            let mut t = *yv;
            t += a0 * v0;
            t += a1 * v1;
            t += a2 * v2;
            t += a3 * v3;
            *yv = t;
        }
        k += 4;
    }
    while k < count {
        axpy(alpha(k), column(k), y);
        k += 1;
    }
}

#[inline(always)]
fn rotate(a: &mut [f64], b: &mut [f64], c: f64, s: f64) {
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (xv, yv) = (*x, *y);
        *x = c * xv + s * yv;
        *y = -s * xv + c * yv;
    }
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, s, Array1, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    struct Qp {
        h: Array2<f64>,
        f: Array1<f64>,
        a: Array2<f64>,
        b: Array1<f64>,
        g: Array2<f64>,
        lo: Array1<f64>,
        hi: Array1<f64>,
        lb: Vec<f64>,
        ub: Vec<f64>,
    }

    fn random_qp(rng: &mut ChaCha8Rng, n: usize, me: usize, mi: usize, rank: usize) -> Qp {
        let m = Array2::from_shape_fn((rank, n), |_| rng.random_range(-1.0..1.0));
        let mut h = m.t().dot(&m);
        if rank >= n {
            for i in 0..n {
                h[[i, i]] += 0.1;
            }
        }
        let f = Array1::from_shape_fn(n, |_| rng.random_range(-3.0..3.0));
        // A feasible point x̂ makes the constraints consistent.
        let xh = Array1::from_shape_fn(n, |_| rng.random_range(-0.5..0.5));
        let a = Array2::from_shape_fn((me, n), |_| rng.random_range(-1.0..1.0));
        let b = a.dot(&xh);
        let g = Array2::from_shape_fn((mi, n), |_| rng.random_range(-1.0..1.0));
        let gx = g.dot(&xh);
        let lo = Array1::from_shape_fn(mi, |i| {
            if i % 3 == 0 {
                f64::NEG_INFINITY
            } else {
                gx[i] - rng.random_range(0.0..0.5)
            }
        });
        let hi = Array1::from_shape_fn(mi, |i| {
            if i % 3 == 1 {
                f64::INFINITY
            } else {
                gx[i] + rng.random_range(0.0..0.5)
            }
        });
        let lb = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    xh[i] - 0.3
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        let ub = (0..n)
            .map(|i| if i % 4 == 1 { xh[i] + 0.2 } else { 1.0 })
            .collect();
        Qp {
            h,
            f,
            a,
            b,
            g,
            lo,
            hi,
            lb,
            ub,
        }
    }

    fn solver_for(qp: &Qp) -> ActiveSetSolver {
        let n = qp.f.len();
        let mut s =
            ActiveSetSolver::new(n, qp.b.len(), qp.lo.len(), ActiveSetSettings::default()).unwrap();
        s.set_hessian(qp.h.view()).unwrap();
        s.set_rows(Some(qp.a.view()), Some(qp.g.view())).unwrap();
        s.set_row_bounds(Some(qp.b.view()), Some((qp.lo.view(), qp.hi.view())))
            .unwrap();
        s.set_bounds(&qp.lb, &qp.ub).unwrap();
        s
    }

    /// KKT conditions of a convex QP: optimality follows from them, no reference needed.
    fn assert_kkt(qp: &Qp, s: &ActiveSetSolver, tol: f64) {
        let x = Array1::from(s.x().to_vec());
        let (y, z, zb) = (
            Array1::from(s.y_eq().to_vec()),
            Array1::from(s.z_rows().to_vec()),
            Array1::from(s.z_box().to_vec()),
        );
        let stat = qp.h.dot(&x) + &qp.f + qp.a.t().dot(&y) + qp.g.t().dot(&z) + &zb;
        let scale = 1.0 + qp.f.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            stat.iter().all(|v| v.abs() < tol * scale),
            "stationarity {stat}"
        );
        let ax = qp.a.dot(&x);
        assert!((&ax - &qp.b).iter().all(|v| v.abs() < tol), "equalities");
        let gx = qp.g.dot(&x);
        for i in 0..gx.len() {
            assert!(
                gx[i] >= qp.lo[i] - tol && gx[i] <= qp.hi[i] + tol,
                "row {i}"
            );
            // Complementarity with signs: z > 0 only at the upper side, z < 0 at the lower.
            if z[i] > tol {
                assert!((gx[i] - qp.hi[i]).abs() < tol);
            }
            if z[i] < -tol {
                assert!((gx[i] - qp.lo[i]).abs() < tol);
            }
        }
        for i in 0..x.len() {
            assert!(
                x[i] >= qp.lb[i] - tol && x[i] <= qp.ub[i] + tol,
                "bound {i}"
            );
            if zb[i] > tol {
                assert!((x[i] - qp.ub[i]).abs() < tol);
            }
            if zb[i] < -tol {
                assert!((x[i] - qp.lb[i]).abs() < tol);
            }
        }
        let info = s.info();
        assert!(
            info.primal_residual < tol && info.dual_residual < tol * scale,
            "{info:?}"
        );
        assert!(info.duality_gap < tol * scale * 10.0, "{info:?}");
    }

    #[test]
    fn random_strictly_convex_qps_satisfy_kkt() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for &(n, me, mi) in &[(1, 0, 1), (5, 0, 8), (10, 2, 20), (30, 5, 60), (60, 10, 90)] {
            for _ in 0..5 {
                let qp = random_qp(&mut rng, n, me, mi, n + 2);
                let mut s = solver_for(&qp);
                let info = s.solve(qp.f.view()).unwrap();
                assert_eq!(info.status, SolveStatus::Solved, "n={n}");
                assert_kkt(&qp, &s, 1e-9);
                assert!(
                    n < 10 || s.active_len() > me,
                    "constraints should be active"
                );
                // A second solve from the final active set as a hint gives the same answer.
                let x1 = s.x().to_vec();
                s.hint_from_last(Some);
                s.solve(qp.f.view()).unwrap();
                for (a, b) in x1.iter().zip(s.x()) {
                    assert!((a - b).abs() < 1e-10);
                }
            }
        }
    }

    /// The bounds-only path (factor of the free block) against the general one (the same QP
    /// with one row that never binds, which routes it through `J` and `R`): equal solutions
    /// and KKT to 1e-9 over a hot-started sequence whose costs and bounds move, with bounds
    /// switched off and on, one-stage-shift-like hints, and a proximal (semidefinite) case.
    #[test]
    fn bounds_only_path_matches_the_general_path_over_a_hot_started_sequence() {
        const INF: f64 = f64::INFINITY;
        let mut rng = ChaCha8Rng::seed_from_u64(19);
        // Wild steps (most of the working set changes) and slow ones (a few bounds change,
        // so the new working set is reached by updating the last factor).
        for (n, slow) in [1usize, 2, 7, 30, 80]
            .into_iter()
            .flat_map(|n| [(n, false), (n, true)])
        {
            let base = random_qp(&mut rng, n, 0, 0, n + 3);
            let mut qp = Qp {
                g: Array2::zeros((0, n)),
                lo: Array1::zeros(0),
                hi: Array1::zeros(0),
                ..base
            };
            let mut with_row = random_qp(&mut rng, n, 0, 1, n + 3);
            with_row.h = qp.h.clone();
            with_row.lo[0] = -INF;
            with_row.hi[0] = INF;
            let mut fast = solver_for(&qp);
            let mut general = solver_for(&with_row);
            for step in 0..40 {
                if slow {
                    for v in qp.f.iter_mut() {
                        *v += rng.random_range(-0.1..0.1);
                    }
                    // Shift the bounds' pattern one place now and then, as an MPC's does.
                    if step % 5 == 4 {
                        qp.lb.rotate_left(1);
                        qp.ub.rotate_left(1);
                    }
                } else {
                    for v in qp.f.iter_mut() {
                        *v = 0.7 * *v + rng.random_range(-3.0..3.0);
                    }
                }
                for i in (0..n).filter(|_| !slow) {
                    // Bounds move, and now and then vanish or come back.
                    let lo = rng.random_range(-0.6..0.0);
                    let hi = rng.random_range(0.0..0.6);
                    qp.lb[i] = if (step + i) % 7 == 0 { -INF } else { lo };
                    qp.ub[i] = if (step + 2 * i) % 9 == 0 { INF } else { hi };
                }
                fast.set_bounds(&qp.lb, &qp.ub).unwrap();
                general.set_bounds(&qp.lb, &qp.ub).unwrap();
                let fi = fast.solve(qp.f.view()).unwrap();
                let gi = general.solve(qp.f.view()).unwrap();
                assert_eq!(fi.status, SolveStatus::Solved, "n={n} step {step}");
                assert_eq!(gi.status, SolveStatus::Solved, "n={n} step {step}");
                assert_kkt(&qp, &fast, 1e-9);
                for (a, b) in fast.x().iter().zip(general.x()) {
                    assert!((a - b).abs() < 1e-9, "n={n} step {step}: {a} vs {b}");
                }
                for (a, b) in fast.z_box().iter().zip(general.z_box()) {
                    assert!((a - b).abs() < 1e-8, "n={n} step {step}: {a} vs {b}");
                }
                // A shifted hint, as an MPC gives: bound i stands for bound i − 1 next time.
                let shift = |c: ConstraintRef| match c {
                    ConstraintRef::Bound { index, upper } if index > 0 => {
                        Some(ConstraintRef::Bound {
                            index: index - 1,
                            upper,
                        })
                    }
                    _ => None,
                };
                fast.hint_from_last(shift);
                general.hint_from_last(shift);
            }
            // Cold (no hot start, no hint) agrees too.
            let mut cold = solver_for(&qp);
            cold.set_settings(ActiveSetSettings {
                hot_start: false,
                ..Default::default()
            })
            .unwrap();
            cold.solve(qp.f.view()).unwrap();
            for (a, b) in cold.x().iter().zip(fast.x()) {
                assert!((a - b).abs() < 1e-9, "n={n}: {a} vs {b}");
            }
        }
        // A semidefinite Hessian keeps the proximal path (rows or not).
        let qp = random_qp(&mut rng, 12, 0, 0, 5);
        let mut s = solver_for(&qp);
        assert!(s.solve(qp.f.view()).unwrap().status.is_solved());
        assert_kkt(&qp, &s, 1e-6);
    }

    /// `set_rows` forgets the working set; the free-block factor must go with it, or the
    /// variables whose bounds were active would be neither free nor fixed at the next solve.
    #[test]
    fn set_rows_resets_the_bounds_only_working_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let mut qp = random_qp(&mut rng, 12, 0, 0, 15);
        let mut s = solver_for(&qp);
        assert!(s.solve(qp.f.view()).unwrap().status.is_solved());
        assert!(s.active_len() > 0);
        s.set_rows(None, None).unwrap();
        // Move every finite bound so that formerly active variables are violated if stale.
        for i in 0..12 {
            if qp.lb[i].is_finite() {
                qp.lb[i] += 0.2;
            }
            qp.ub[i] = qp.ub[i].max(qp.lb[i] + 0.1);
        }
        s.set_bounds(&qp.lb, &qp.ub).unwrap();
        let info = s.solve(qp.f.view()).unwrap();
        assert_eq!(info.status, SolveStatus::Solved);
        assert_kkt(&qp, &s, 1e-9);
    }

    #[test]
    fn bounds_only_path_reports_the_iteration_cap_as_a_status() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        let mut qp = random_qp(&mut rng, 20, 0, 0, 23);
        // Every bound is violated at the unconstrained minimiser: 20 additions needed.
        for i in 0..20 {
            qp.lb[i] = 1.0;
            qp.ub[i] = 2.0;
        }
        qp.f.fill(10.0);
        let mut s = solver_for(&qp);
        s.set_settings(ActiveSetSettings {
            max_iter: 3,
            ..Default::default()
        })
        .unwrap();
        let info = s.solve(qp.f.view()).unwrap();
        assert_eq!(info.status, SolveStatus::MaxIterations);
        assert!(s.x().iter().all(|v| v.is_finite()));
        s.set_settings(ActiveSetSettings::default()).unwrap();
        assert!(s.solve(qp.f.view()).unwrap().status.is_solved());
        assert_kkt(&qp, &s, 1e-9);
    }

    /// Bounds on variables that `H` does not couple (a soft constraint's slacks) are added by a
    /// column swap in `J` instead of a chain of rotations: the KKT conditions still hold.
    #[test]
    fn decoupled_bounds_added_by_a_swap_keep_the_kkt_conditions() {
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let (nu, ns) = (10usize, 6usize);
        let n = nu + ns;
        let mut qp = random_qp(&mut rng, n, 1, 8, n + 2);
        let mut h = Array2::<f64>::zeros((n, n));
        let hu = {
            let m = Array2::from_shape_fn((nu + 2, nu), |_| rng.random_range(-1.0..1.0));
            m.t().dot(&m) + Array2::<f64>::eye(nu) * 0.1
        };
        h.slice_mut(ndarray::s![..nu, ..nu]).assign(&hu);
        for j in 0..ns {
            h[[nu + j, nu + j]] = 2.0 + j as f64;
            // Pushed past a bound at 0 (lower for even j, upper for odd: normals of both
            // signs): every slack bound ends active.
            let up = j % 2 == 1;
            qp.f[nu + j] = if up { -5.0 } else { 5.0 };
            qp.lb[nu + j] = if up { f64::NEG_INFINITY } else { 0.3 };
            qp.ub[nu + j] = if up { -0.3 } else { f64::INFINITY };
            // The rows do not involve the slacks, so nothing lifts them off their bounds.
            qp.a[[0, nu + j]] = 0.0;
            for r in 0..qp.g.nrows() {
                qp.g[[r, nu + j]] = 0.0;
            }
        }
        qp.h = h;
        // Keep the rows consistent with x̂ = 0 (they were built for some x̂).
        qp.b.fill(0.0);
        for r in 0..qp.g.nrows() {
            qp.lo[r] = qp.lo[r].min(0.0);
            qp.hi[r] = qp.hi[r].max(0.0);
        }
        for i in 0..nu {
            qp.lb[i] = qp.lb[i].min(0.0);
            qp.ub[i] = qp.ub[i].max(0.0);
        }
        let mut s = solver_for(&qp);
        // The second solve hot-starts from the working set the swaps built. The perturbation
        // leaves the working set optimal, so a right factorisation needs no change (a swap
        // without the sign puts the slacks on the wrong side and costs repairs).
        for pass in 0..2 {
            let info = s.solve(qp.f.view()).unwrap();
            assert_eq!(info.status, SolveStatus::Solved);
            assert_kkt(&qp, &s, 1e-9);
            if pass == 1 {
                assert_eq!(info.iterations, 0);
            }
            for (j, &v) in s.x()[nu..].iter().enumerate() {
                let want = if j % 2 == 1 { -0.3 } else { 0.3 };
                assert!((v - want).abs() < 1e-12, "slack {j}: {v}");
            }
            for v in qp.f.iter_mut().take(nu) {
                *v += rng.random_range(-0.3..0.3);
            }
        }
    }

    #[test]
    fn hot_start_drops_active_constraints_whose_bound_became_infinite() {
        const INF: f64 = f64::INFINITY;
        // minimise ½|x|² − x₀ − x₁: the row x₀ + x₁ ≤ 1 and the bound x₀ ≤ 0.2 are active,
        // then both are switched off (±∞) without touching the row itself.
        let mut s = ActiveSetSolver::new(2, 0, 1, ActiveSetSettings::default()).unwrap();
        s.set_hessian(array![[1.0, 0.0], [0.0, 1.0]].view())
            .unwrap();
        s.set_rows(None, Some(array![[1.0, 1.0]].view())).unwrap();
        s.set_row_bounds(None, Some((array![-INF].view(), array![1.0].view())))
            .unwrap();
        s.set_bounds(&[-INF, -INF], &[0.2, INF]).unwrap();
        let f = array![-1.0, -1.0];
        assert!(s.solve(f.view()).unwrap().status.is_solved());
        assert_eq!(s.active_len(), 2);
        assert!((s.x()[0] - 0.2).abs() < 1e-12 && (s.x()[1] - 0.8).abs() < 1e-12);
        s.set_row_bounds(None, Some((array![-INF].view(), array![INF].view())))
            .unwrap();
        s.set_bounds(&[-INF, -INF], &[INF, INF]).unwrap();
        let info = s.solve(f.view()).unwrap();
        assert_eq!(info.status, SolveStatus::Solved);
        assert!((s.x()[0] - 1.0).abs() < 1e-12 && (s.x()[1] - 1.0).abs() < 1e-12);
        assert_eq!(s.active_len(), 0);
    }

    #[test]
    fn hot_starts_equal_cold_solves_when_costs_bounds_and_rows_change() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut qp = random_qp(&mut rng, 25, 3, 40, 27);
        let mut hot = solver_for(&qp);
        let cold_settings = ActiveSetSettings {
            hot_start: false,
            ..Default::default()
        };
        for step in 0..30 {
            // Perturb f, the bounds and (every third step) one general row.
            for v in qp.f.iter_mut() {
                *v += rng.random_range(-0.5..0.5);
            }
            for i in 0..qp.hi.len() {
                if qp.hi[i].is_finite() {
                    qp.hi[i] += rng.random_range(0.0..0.05);
                }
            }
            hot.set_row_bounds(None, Some((qp.lo.view(), qp.hi.view())))
                .unwrap();
            if step % 3 == 0 {
                let i = step % qp.lo.len();
                for v in qp.g.row_mut(i).iter_mut() {
                    *v += rng.random_range(-0.2..0.2);
                }
                hot.set_row(i, qp.g.row(i), qp.lo[i], qp.hi[i]).unwrap();
            }
            let info = hot.solve(qp.f.view()).unwrap();
            assert_eq!(info.status, SolveStatus::Solved);
            assert_kkt(&qp, &hot, 1e-9);
            let mut cold = solver_for(&qp);
            cold.set_settings(cold_settings).unwrap();
            cold.solve(qp.f.view()).unwrap();
            for (a, b) in hot.x().iter().zip(cold.x()) {
                assert!((a - b).abs() < 1e-9, "step {step}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn semidefinite_hessian_uses_proximal_iterations() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &(n, me, mi) in &[(6, 1, 10), (20, 4, 30)] {
            let qp = random_qp(&mut rng, n, me, mi, n / 2);
            let mut s = solver_for(&qp);
            let info = s.solve(qp.f.view()).unwrap();
            assert!(info.status.is_solved(), "{info:?}");
            assert_kkt(&qp, &s, 1e-6);
        }
    }

    #[test]
    fn a_violated_zero_row_offered_as_a_hint_is_skipped_like_a_cold_solve_skips_it() {
        // Row 0 (x₀ ≥ 1) ends active; the hint maps it onto row 1, which has since become a
        // zero row with a violated bound (0 ≥ 1, nothing the variables can change). Cold
        // solves skip such rows; the hot start used to add it and report PrimalInfeasible.
        let mut s = ActiveSetSolver::new(2, 0, 2, ActiveSetSettings::default()).unwrap();
        s.set_hessian(Array2::eye(2).view()).unwrap();
        s.set_rows(None, Some(ndarray::array![[1.0, 0.0], [0.0, 1.0]].view()))
            .unwrap();
        let lo = ndarray::array![1.0, f64::NEG_INFINITY];
        let hi = ndarray::array![f64::INFINITY, f64::INFINITY];
        s.set_row_bounds(None, Some((lo.view(), hi.view())))
            .unwrap();
        let f = ndarray::array![0.0, 0.0];
        assert_eq!(s.solve(f.view()).unwrap().status, SolveStatus::Solved);
        assert!((s.x()[0] - 1.0).abs() < 1e-12);
        s.hint_from_last(|c| match c {
            ConstraintRef::Row { index: 0, upper } => Some(ConstraintRef::Row { index: 1, upper }),
            _ => None,
        });
        s.set_row(1, ndarray::array![0.0, 0.0].view(), 1.0, f64::INFINITY)
            .unwrap();
        let info = s.solve(f.view()).unwrap();
        assert_eq!(info.status, SolveStatus::Solved);
        assert!((s.x()[0] - 1.0).abs() < 1e-12 && s.x()[1].abs() < 1e-12);
    }

    #[test]
    fn infeasible_problems_are_reported() {
        // x ≥ 1 and x ≤ 0 through two rows.
        let mut s = ActiveSetSolver::new(1, 0, 2, ActiveSetSettings::default()).unwrap();
        s.set_hessian(ndarray::array![[1.0]].view()).unwrap();
        s.set_rows(None, Some(ndarray::array![[1.0], [1.0]].view()))
            .unwrap();
        let lo = ndarray::array![1.0, f64::NEG_INFINITY];
        let hi = ndarray::array![f64::INFINITY, 0.0];
        s.set_row_bounds(None, Some((lo.view(), hi.view())))
            .unwrap();
        let info = s.solve(ndarray::array![0.0].view()).unwrap();
        assert_eq!(info.status, SolveStatus::PrimalInfeasible);
        // Inconsistent equalities.
        let mut s = ActiveSetSolver::new(2, 2, 0, ActiveSetSettings::default()).unwrap();
        s.set_hessian(Array2::eye(2).view()).unwrap();
        s.set_rows(Some(ndarray::array![[1.0, 1.0], [2.0, 2.0]].view()), None)
            .unwrap();
        s.set_row_bounds(Some(ndarray::array![1.0, 3.0].view()), None)
            .unwrap();
        assert_eq!(
            s.solve(ndarray::array![0.0, 0.0].view()).unwrap().status,
            SolveStatus::PrimalInfeasible
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(ActiveSetSolver::new(0, 0, 0, ActiveSetSettings::default()).is_err());
        let mut s = ActiveSetSolver::new(2, 0, 0, ActiveSetSettings::default()).unwrap();
        assert!(
            s.solve(ndarray::array![0.0, 0.0].view()).is_err(),
            "no Hessian yet"
        );
        assert!(s
            .set_hessian(ndarray::array![[1.0, 0.0], [0.0, -1.0]].view())
            .is_err());
        assert!(s
            .set_hessian(ndarray::array![[1.0, 0.0], [0.0, f64::NAN]].view())
            .is_err());
        s.set_hessian(Array2::eye(2).view()).unwrap();
        assert!(s.solve(ndarray::array![0.0, f64::NAN].view()).is_err());
        assert!(s.solve(ndarray::array![0.0].view()).is_err());
        assert!(s.set_bounds(&[1.0, 0.0], &[0.0, 0.0]).is_err());
        let st = ActiveSetSettings {
            max_iter: 1,
            ..Default::default()
        };
        let mut s = ActiveSetSolver::new(3, 0, 0, st).unwrap();
        s.set_hessian(Array2::eye(3).view()).unwrap();
        s.set_bounds(&[1.0; 3], &[2.0; 3]).unwrap();
        assert_eq!(
            s.solve(ndarray::array![0.0, 0.0, 0.0].view())
                .unwrap()
                .status,
            SolveStatus::MaxIterations
        );
    }

    /// A slack-extended QP hot-started from the unextended one's working set
    /// ([`ActiveSetSolver::adopt_working_set`]) solves to the same point as from cold, whether
    /// the unextended QP was solved, infeasible or stopped at its iteration cap; structures the
    /// adoption does not fit are refused without touching the solver.
    #[test]
    fn slack_extended_qp_adopts_the_working_set_of_the_unextended_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(23);
        for (case, &(n, mi, e)) in [(4, 3, 2), (12, 8, 6), (30, 20, 20), (40, 12, 9)]
            .iter()
            .enumerate()
        {
            for trial in 0..6 {
                let mut hard = random_qp(&mut rng, n, 0, mi, n + 2);
                if trial % 2 == 1 {
                    // Out of reach: a row's upper side far below what the bounds allow.
                    hard.lo[0] = f64::NEG_INFINITY;
                    hard.hi[0] = -50.0;
                }
                let ne = n + e;
                // H = [[H, 0], [0, D]], f = [f; l1], rows [G, −E] (row i < e on slack i).
                let mut h = Array2::zeros((ne, ne));
                h.slice_mut(s![..n, ..n]).assign(&hard.h);
                for k in 0..e {
                    h[[n + k, n + k]] = rng.random_range(0.5..2.0);
                }
                let mut f = Array1::zeros(ne);
                f.slice_mut(s![..n]).assign(&hard.f);
                f.slice_mut(s![n..]).fill(rng.random_range(0.1..5.0));
                let mut g = Array2::zeros((mi, ne));
                g.slice_mut(s![.., ..n]).assign(&hard.g);
                for k in 0..e {
                    g[[k, n + k]] = -1.0;
                }
                let mut lb = hard.lb.clone();
                lb.extend(std::iter::repeat_n(0.0, e));
                let mut ub = hard.ub.clone();
                ub.extend(std::iter::repeat_n(f64::INFINITY, e));
                let soft = Qp {
                    h,
                    f,
                    a: Array2::zeros((0, ne)),
                    b: Array1::zeros(0),
                    g,
                    lo: hard.lo.clone(),
                    hi: hard.hi.clone(),
                    lb,
                    ub,
                };
                let mut sub = solver_for(&hard);
                if trial % 3 == 2 {
                    let mut st = *sub.settings();
                    st.max_iter = 2;
                    sub.set_settings(st).unwrap();
                }
                let sub_status = sub.solve(hard.f.view()).unwrap().status;
                let mut cold = solver_for(&soft);
                assert_eq!(
                    cold.solve(soft.f.view()).unwrap().status,
                    SolveStatus::Solved
                );
                let mut warm = solver_for(&soft);
                assert!(
                    warm.adopt_working_set(&sub),
                    "case {case} trial {trial}: {sub_status:?}"
                );
                assert_eq!(warm.active_len(), e + sub.active_len());
                let info = warm.solve(soft.f.view()).unwrap();
                assert_eq!(info.status, SolveStatus::Solved);
                assert_kkt(&soft, &warm, 1e-9);
                for (a, b) in warm.x().iter().zip(cold.x()) {
                    assert!(
                        (a - b).abs() < 1e-8,
                        "case {case} trial {trial}: {a} vs {b}"
                    );
                }
                if trial == 1 {
                    assert!(
                        warm.x()[n..].iter().any(|&v| v > 1e-3),
                        "the unreachable row must use its slack"
                    );
                }
                // Refused, and the working set left as it was: a coupled slack, rows that
                // differ on the leading columns, a slack without a lower bound.
                let before = warm.active_len();
                let mut coupled = soft.h.clone();
                coupled[[0, n]] = 0.1;
                coupled[[n, 0]] = 0.1;
                let mut other = solver_for(&soft);
                other.set_hessian(coupled.view()).unwrap();
                assert!(!other.adopt_working_set(&sub));
                let mut other = solver_for(&soft);
                let mut g2 = soft.g.clone();
                g2[[mi - 1, 0]] += 1.0;
                other.set_rows(None, Some(g2.view())).unwrap();
                assert!(!other.adopt_working_set(&sub));
                let mut other = solver_for(&soft);
                let mut lb2 = soft.lb.clone();
                lb2[ne - 1] = f64::NEG_INFINITY;
                other.set_bounds(&lb2, &soft.ub).unwrap();
                assert!(!other.adopt_working_set(&sub));
                assert!(!warm.adopt_working_set(&warm.clone()));
                assert_eq!(warm.active_len(), before);
            }
        }
    }

    /// The general method's guess joins the inherited working set: an active constraint whose
    /// other side is hinted gives way, the hint's others are queued, the rest is kept, and the
    /// marks are clean afterwards (a solve's guess scoring leaves none behind).
    #[test]
    fn general_method_adds_the_hint_to_the_inherited_working_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(29);
        let qp = random_qp(&mut rng, 20, 0, 30, 22);
        let mut s = solver_for(&qp);
        s.solve(qp.f.view()).unwrap();
        s.hint_from_last(Some);
        s.solve(qp.f.view()).unwrap();
        assert!(s.mark.iter().all(|&m| m == 0), "scoring left marks");
        let inherited = s.active.clone();
        assert!(inherited.len() >= 3, "{}", inherited.len());
        let flipped = inherited[1];
        let opposite = Cid::new(flipped.row(), usize::from(!flipped.upper()));
        let m = s.me + s.mi;
        let fresh = (0..s.n)
            .flat_map(|v| [Cid::new(m + v, 0), Cid::new(m + v, 1)])
            .find(|c| inherited.iter().all(|a| a.row() != c.row()))
            .unwrap();
        s.hint.clear();
        s.hint.extend([opposite, fresh, inherited[0]]);
        s.readd.clear();
        s.readd.push(inherited[2]); // as set_row would queue a row it dropped
        s.adopt_hint();
        let kept: Vec<Cid> = inherited
            .iter()
            .copied()
            .filter(|&c| c != flipped)
            .collect();
        assert_eq!(s.active, kept);
        assert_eq!(s.readd, vec![opposite, fresh]);
        assert!(s.mark.iter().all(|&m| m == 0), "adopt_hint left marks");
    }

    /// The four-column kernels give what one column at a time gives, exactly: the same updates
    /// (or lanes) in the same order. A change of summation order shows in the last bits of
    /// random data; lengths run past two eight-lane chunks, with and without a tail.
    #[test]
    fn four_column_kernels_equal_the_one_column_loops() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        let ld = 21;
        let m: Vec<f64> = (0..ld * ld).map(|_| rng.random_range(-1.0..1.0)).collect();
        for count in 0..=ld {
            let cols: Vec<usize> = (0..count).map(|k| (7 * k + 3) % ld).collect();
            let alpha: Vec<f64> = (0..count).map(|_| rng.random_range(-2.0..2.0)).collect();
            let y0: Vec<f64> = (0..ld - count % 3)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let mut want = y0.clone();
            for (&j, &a) in cols.iter().zip(&alpha) {
                axpy(a, &m[j * ld..j * ld + want.len()], &mut want);
            }
            let mut got = y0;
            axpy_columns(&m, ld, count, |k| cols[k], |k| alpha[k], &mut got);
            assert_eq!(got, want, "axpy_columns, {count} columns");
            let b = &m[ld + 1..ld + 1 + (3 * count + 5) % (ld + 1)];
            let want: Vec<f64> = (0..count)
                .map(|k| dot(&m[k * ld..(k + 1) * ld], b))
                .collect();
            let mut got = vec![0.0; count];
            dots_with_columns(&m, ld, b, &mut got);
            assert_eq!(
                got,
                want,
                "dots_with_columns, {count} columns of {}",
                b.len()
            );
        }
        // A lower-triangular factor with a dominant diagonal, column c at l[c·ld..].
        let mut l = m.clone();
        for c in 0..ld {
            l[c * ld + c] = 2.0 + l[c * ld + c].abs();
        }
        for nf in 0..=ld {
            for from in 0..=nf {
                let mut y0: Vec<f64> = (0..ld).map(|_| rng.random_range(-1.0..1.0)).collect();
                y0[..from].iter_mut().for_each(|v| *v = 0.0);
                let mut want = y0.clone();
                for c in from..nf {
                    let yc = want[c] / l[c * ld + c];
                    want[c] = yc;
                    axpy(-yc, &l[c * ld + c + 1..c * ld + nf], &mut want[c + 1..nf]);
                }
                let mut got = y0;
                forward_substitute(&l, ld, nf, from, &mut got);
                assert_eq!(got, want, "forward_substitute, nf = {nf}, from = {from}");
            }
        }
    }
}
