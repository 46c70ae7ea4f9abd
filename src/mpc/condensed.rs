//! Solver (A): the MPC condensed onto its inputs and solved by the dense dual active-set method.
//!
//! Eliminating the states (`X = Φx₀ + ΓU + c̄`) leaves a dense QP in `U` (plus one slack per soft
//! keep-out row) whose Hessian `ΓᵀQ̄Γ + R̄` does not depend on `x₀` or the references, so it is
//! factorised once at set-up; each solve only forms the linear cost and the row bounds (O(N²nm))
//! and hot-starts from the previous active set. Input bounds are simple bounds (O(1) to check).
//!
//! Soft keep-outs are solved hard first. With an exact L1 penalty the soft problem's solution
//! has zero slack exactly when the hard problem is feasible and each slack's rows carry
//! multipliers summing to at most `l1` (then `s = 0` satisfies the slack's KKT conditions,
//! whatever `l2`), so that case — the usual one — is solved on the `N·m` inputs alone, without
//! the slack variables whose lower bounds would otherwise fill the working set (with 3 rows per
//! stage: 40 instead of 100 variables in the intent pipeline). Only when that test fails is the
//! slack problem solved, seeded with the hard solve's working set, and it stays in use while
//! its solutions have positive slack.

use ndarray::{s, Array1, Array2, Array3, ArrayView1, ArrayView2};

use crate::error::{Error, Result};
use crate::mpc::dense::{ActiveSetSettings, ActiveSetSolver, ConstraintRef};
use crate::mpc::problem::{input_reference_costs, KeepoutMode, MpcProblem};
use crate::mpc::status::SolveInfo;

/// What a general row of the condensed QP stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowKind {
    /// State component `i` at stage `k` (1..N).
    State { k: usize, i: usize },
    /// Rate of input `i` at stage `k` (0..N−1).
    Rate { k: usize, i: usize },
    /// Polytope row `j` at stage `k` (0..N−1).
    Stage { k: usize, j: usize },
    /// Keep-out row `j` at stage `k` (1..N).
    Keepout { k: usize, j: usize },
}

/// The condensed problem and its solver workspace.
#[derive(Clone, Debug)]
pub(crate) struct Condensed {
    n: usize,
    m: usize,
    horizon: usize,
    /// Keep-out rows per stage.
    nko: usize,
    /// Number of slack variables (soft keep-out rows).
    ns: usize,
    /// Slack variables per stage.
    sps: usize,
    /// How keep-out rows are softened (which slack each row uses).
    mode: KeepoutMode,
    /// Γ, (N·n) × (N·m): row block k−1 maps U to x_k.
    gamma: Array2<f64>,
    /// Wᵀ = Q̄Γ, (N·n) × (N·m): row (k−1)·n + i maps a per-stage reference entry to f.
    w_t: Array2<f64>,
    /// (Σ_k W_k)ᵀ, n × (N·m): the constant-reference term.
    w_sum_t: Array2<f64>,
    /// (Σ_k W_k Φ_k)ᵀ, n × (N·m): the x0 term.
    fx_t: Array2<f64>,
    /// Σ_k W_k c̄_k: the affine-dynamics term.
    fc: Array1<f64>,
    rows: Vec<RowKind>,
    needs_free_response: bool,
    row_prev: Vec<Option<usize>>,
    /// Keep-out rows start here in the general-row numbering.
    ko_start: usize,
    solver: ActiveSetSolver,
    /// The same QP without slack variables (keep-outs hard), tried first; `None` without soft
    /// keep-out rows.
    hard: Option<ActiveSetSolver>,
    /// Whether the U-part of each keep-out row is zero (a hard solve would skip it).
    ko_zero: Vec<bool>,
    /// The last solve needed slack: go straight to the slack problem.
    soft_next: bool,
    /// Per slack: the sum of its rows' multipliers in the hard solution.
    slack_dual: Vec<f64>,
    // Per-solve buffers.
    xfree: Array2<f64>,
    lo: Array1<f64>,
    hi: Array1<f64>,
    normals: Array3<f64>,
    offsets: Array2<f64>,
    soft_l1: f64,
    row_buf: Array1<f64>,
    problem: MpcProblem,
}

impl Condensed {
    pub(crate) fn new(
        problem: &MpcProblem,
        p_term: &Array2<f64>,
        keepout_rows: usize,
        settings: ActiveSetSettings,
    ) -> Result<Self> {
        let (n, m, nh) = (problem.nx(), problem.nu(), problem.horizon());
        let nm = nh * m;
        // Γ and the free response are built by the stage recursion (works for LTV too).
        let mut gamma = Array2::<f64>::zeros((nh * n, nm));
        for k in 1..=nh {
            let a = problem.a_at(k - 1);
            let b = problem.b_at(k - 1);
            if k >= 2 {
                let prev = gamma
                    .slice(s![(k - 2) * n..(k - 1) * n, ..(k - 1) * m])
                    .to_owned();
                let next = a.dot(&prev);
                gamma
                    .slice_mut(s![(k - 1) * n..k * n, ..(k - 1) * m])
                    .assign(&next);
            }
            gamma
                .slice_mut(s![(k - 1) * n..k * n, (k - 1) * m..k * m])
                .assign(b);
        }
        let mode = problem.keepout_mode;
        let (l1, l2) = mode.penalty().unwrap_or((0.0, 0.0));
        let sps = mode.slacks_per_stage(keepout_rows);
        let ns = sps * nh;
        let nv = nm + ns;
        // W = ΓᵀQ̄ and H = ΓᵀQ̄Γ + R̄ (+ slack block).
        let mut w = Array2::<f64>::zeros((nm, nh * n));
        let mut w_sum = Array2::<f64>::zeros((nm, n));
        let mut fx = Array2::<f64>::zeros((nm, n));
        let mut fc = Array1::<f64>::zeros(nm);
        let mut phi = Array2::<f64>::eye(n);
        let mut cbar = Array1::<f64>::zeros(n);
        for k in 1..=nh {
            let qk = if k == nh { p_term } else { &problem.q };
            let gk = gamma.slice(s![(k - 1) * n..k * n, ..]);
            let wk = gk.t().dot(qk);
            phi = problem.a_at(k - 1).dot(&phi);
            cbar = problem.a_at(k - 1).dot(&cbar) + problem.c_at(k - 1);
            fx += &wk.dot(&phi);
            fc += &wk.dot(&cbar);
            w.slice_mut(s![.., (k - 1) * n..k * n]).assign(&wk);
            w_sum += &wk;
        }
        let mut h = Array2::<f64>::zeros((nv, nv));
        h.slice_mut(s![..nm, ..nm]).assign(&w.dot(&gamma));
        for k in 0..nh {
            let mut blk = h.slice_mut(s![k * m..(k + 1) * m, k * m..(k + 1) * m]);
            blk += &problem.r;
        }
        for j in 0..ns {
            h[[nm + j, nm + j]] = l2;
        }
        // General rows, in a fixed order so that a stage shift maps row to row.
        let mut rows = Vec::new();
        for k in 1..=nh {
            for i in 0..n {
                if problem.x_min[i].is_finite() || problem.x_max[i].is_finite() {
                    rows.push(RowKind::State { k, i });
                }
            }
        }
        for k in 0..nh {
            for i in 0..m {
                if problem.du_max[i].is_finite() {
                    rows.push(RowKind::Rate { k, i });
                }
            }
        }
        if let Some(sc) = &problem.stage {
            for k in 0..nh {
                for j in 0..sc.lower.len() {
                    rows.push(RowKind::Stage { k, j });
                }
            }
        }
        let ko_start = rows.len();
        for k in 1..=nh {
            for j in 0..keepout_rows {
                rows.push(RowKind::Keepout { k, j });
            }
        }
        let row_prev = rows
            .iter()
            .map(|r| {
                let prev = match *r {
                    RowKind::State { k, i } if k > 1 => RowKind::State { k: k - 1, i },
                    RowKind::Rate { k, i } if k > 0 => RowKind::Rate { k: k - 1, i },
                    RowKind::Stage { k, j } if k > 0 => RowKind::Stage { k: k - 1, j },
                    RowKind::Keepout { k, j } if k > 1 => RowKind::Keepout { k: k - 1, j },
                    _ => return None,
                };
                rows.iter().position(|x| *x == prev)
            })
            .collect();
        let mi = rows.len();
        let mut g = Array2::<f64>::zeros((mi, nv));
        for (ri, r) in rows.iter().enumerate() {
            match *r {
                RowKind::State { k, i } => g
                    .row_mut(ri)
                    .slice_mut(s![..nm])
                    .assign(&gamma.row((k - 1) * n + i)),
                RowKind::Rate { k, i } => {
                    g[[ri, k * m + i]] = 1.0;
                    if k > 0 {
                        g[[ri, (k - 1) * m + i]] = -1.0;
                    }
                }
                RowKind::Stage { k, j } => {
                    let sc = problem
                        .stage
                        .as_ref()
                        .ok_or_else(|| Error::Internal("stage rows".into()))?;
                    if k > 0 {
                        let gk = gamma.slice(s![(k - 1) * n..k * n, ..]);
                        let row = sc.c.row(j).dot(&gk);
                        g.row_mut(ri).slice_mut(s![..nm]).assign(&row);
                    }
                    for i in 0..m {
                        g[[ri, k * m + i]] += sc.d[[j, i]];
                    }
                }
                RowKind::Keepout { k, j } => {
                    // Inactive (zero normal, infinite bound) until set_keepout.
                    if let Some(c) = mode.slack_index(k - 1, j, keepout_rows) {
                        g[[ri, nm + c]] = -1.0;
                    }
                }
            }
        }
        let mut solver = ActiveSetSolver::new(nv, 0, mi, settings)?;
        solver.set_hessian(h.view())?;
        solver.set_rows(None, Some(g.view()))?;
        let mut hard = if ns > 0 && l1 > 0.0 {
            let mut hs = ActiveSetSolver::new(nm, 0, mi, settings)?;
            hs.set_hessian(h.slice(s![..nm, ..nm]))?;
            hs.set_rows(None, Some(g.slice(s![.., ..nm])))?;
            Some(hs)
        } else {
            None
        };
        let mut lb = vec![f64::NEG_INFINITY; nv];
        let mut ub = vec![f64::INFINITY; nv];
        for k in 0..nh {
            for i in 0..m {
                lb[k * m + i] = problem.u_min[i];
                ub[k * m + i] = problem.u_max[i];
            }
        }
        for j in 0..ns {
            lb[nm + j] = 0.0;
        }
        solver.set_bounds(&lb, &ub)?;
        if let Some(hs) = hard.as_mut() {
            hs.set_bounds(&lb[..nm], &ub[..nm])?;
        }
        Ok(Self {
            n,
            m,
            horizon: nh,
            nko: keepout_rows,
            ns,
            sps,
            mode,
            gamma,
            w_t: w.t().as_standard_layout().into_owned(),
            w_sum_t: w_sum.t().as_standard_layout().into_owned(),
            fx_t: fx.t().as_standard_layout().into_owned(),
            fc,
            needs_free_response: rows.iter().any(|r| !matches!(r, RowKind::Rate { .. })),
            rows,
            row_prev,
            ko_start,
            solver,
            hard,
            ko_zero: vec![true; nh * keepout_rows],
            soft_next: false,
            slack_dual: vec![0.0; ns],
            xfree: Array2::zeros((nh + 1, n)),
            lo: Array1::from_elem(mi, f64::NEG_INFINITY),
            hi: Array1::from_elem(mi, f64::INFINITY),
            normals: Array3::zeros((nh, keepout_rows, n)),
            offsets: Array2::from_elem((nh, keepout_rows), f64::INFINITY),
            soft_l1: l1,
            row_buf: Array1::zeros(nv),
            problem: problem.clone(),
        })
    }

    pub(crate) fn set_settings(&mut self, s: ActiveSetSettings) -> Result<()> {
        if !s.hot_start {
            self.solver.clear_hint();
        }
        if let Some(h) = self.hard.as_mut() {
            if !s.hot_start {
                h.clear_hint();
            }
            h.set_settings(s)?;
        }
        self.solver.set_settings(s)
    }

    /// Replaces the keep-out rows: `normals (N, r, n)`, `offsets (N, r)` for stages 1..N.
    /// Rows whose data is unchanged keep their place in the factorisation.
    pub(crate) fn set_keepout(
        &mut self,
        normals: ArrayView2<'_, f64>,
        offsets: ArrayView1<'_, f64>,
        stage: usize,
    ) -> Result<()> {
        let (n, m, nm) = (self.n, self.m, self.horizon * self.m);
        for j in 0..self.nko {
            let nrm = normals.row(j);
            let off = offsets[j];
            if self.normals.slice(s![stage, j, ..]) == nrm {
                // Same normal: only the bound moves, and bounds are set at every solve.
                self.offsets[[stage, j]] = off;
                continue;
            }
            self.normals.slice_mut(s![stage, j, ..]).assign(&nrm);
            self.offsets[[stage, j]] = off;
            // Row = nᵀΓ_k on U (and −1 on the slack); only the first k·m columns are nonzero.
            let k = stage + 1;
            self.row_buf.fill(0.0);
            // Σ_i n_i · (row i of Γ_k): contiguous axpys over the k·m nonzero columns.
            let km = k * m;
            for (i, &ni) in nrm.iter().enumerate() {
                let g = self.gamma.row((k - 1) * n + i);
                let (Some(g), Some(buf)) = (g.as_slice(), self.row_buf.as_slice_mut()) else {
                    return Err(Error::Internal("condensed Γ layout".into()));
                };
                for (b, &gv) in buf[..km].iter_mut().zip(&g[..km]) {
                    *b += ni * gv;
                }
            }
            if let Some(c) = self.mode.slack_index(stage, j, self.nko) {
                self.row_buf[nm + c] = -1.0;
            }
            let ri = self.ko_start + stage * self.nko + j;
            let (lo, hi) = (self.lo[ri], self.hi[ri]);
            self.solver.set_row(ri, self.row_buf.view(), lo, hi)?;
            if let Some(h) = self.hard.as_mut() {
                let u_part = self.row_buf.slice(s![..nm]);
                self.ko_zero[stage * self.nko + j] = u_part.iter().all(|&v| v == 0.0);
                h.set_row(ri, u_part, lo, hi)?;
            }
        }
        Ok(())
    }

    /// Forms the linear cost and row bounds for `x0`, references and `u_prev`, and solves.
    pub(crate) fn solve(
        &mut self,
        x0: ArrayView1<'_, f64>,
        x_ref: ArrayView2<'_, f64>,
        u_ref: ArrayView2<'_, f64>,
        u_prev: Option<ArrayView1<'_, f64>>,
        u_out: &mut Array2<f64>,
    ) -> Result<SolveInfo> {
        let (n, m, nh) = (self.n, self.m, self.horizon);
        let nm = nh * m;
        let p = &self.problem;
        // Free response x̄_k = Φ_k x0 + c̄_k, needed only by rows whose bounds move with x0.
        self.xfree.row_mut(0).assign(&x0);
        if self.needs_free_response {
            // Row-major slices: ndarray's per-row `dot` cost more than the arithmetic here.
            let xs = self
                .xfree
                .as_slice_mut()
                .ok_or_else(|| Error::Internal("free response layout".into()))?;
            for k in 1..=nh {
                let (a, c) = (p.a_at(k - 1), p.c_at(k - 1));
                let (Some(a), Some(c)) = (a.as_slice(), c.as_slice()) else {
                    return Err(Error::Internal(
                        "dynamics matrices must be in standard layout".into(),
                    ));
                };
                let (done, next) = xs.split_at_mut(k * n);
                let prev = &done[(k - 1) * n..];
                for ((nv, &cv), ar) in next[..n].iter_mut().zip(c).zip(a.chunks_exact(n)) {
                    *nv = cv + ar.iter().zip(prev).map(|(x, y)| x * y).sum::<f64>();
                }
            }
        }
        // f = Σ_k W_k (Φ_k x0 + c̄_k − r_k) − R v_k (slack part: l1), from precomputed rows.
        {
            let f = self.solver.f_mut();
            for (fv, &c) in f[..nm].iter_mut().zip(self.fc.iter()) {
                *fv = c;
            }
            let axpy_row = |f: &mut [f64], row: ArrayView1<'_, f64>, alpha: f64| {
                if alpha != 0.0 {
                    for (fv, &wv) in f.iter_mut().zip(row.iter()) {
                        *fv += alpha * wv;
                    }
                }
            };
            for i in 0..n {
                axpy_row(&mut f[..nm], self.fx_t.row(i), x0[i]);
            }
            if x_ref.nrows() == 1 {
                for i in 0..n {
                    axpy_row(&mut f[..nm], self.w_sum_t.row(i), -x_ref[[0, i]]);
                }
            } else {
                for k in 1..=nh {
                    for i in 0..n {
                        axpy_row(&mut f[..nm], self.w_t.row((k - 1) * n + i), -x_ref[[k, i]]);
                    }
                }
            }
            input_reference_costs(&p.r, u_ref, nh, |k, i, v| f[k * m + i] += v);
            for v in f[nm..].iter_mut() {
                *v = self.soft_l1;
            }
        }
        // Row bounds shift with the free response.
        for (ri, r) in self.rows.iter().enumerate() {
            let (lo, hi) = match *r {
                RowKind::State { k, i } => {
                    let xf = self.xfree[[k, i]];
                    (p.x_min[i] - xf, p.x_max[i] - xf)
                }
                RowKind::Rate { k, i } => {
                    let du = p.du_max[i];
                    if k > 0 {
                        (-du, du)
                    } else if let Some(up) = u_prev {
                        (up[i] - du, up[i] + du)
                    } else {
                        (f64::NEG_INFINITY, f64::INFINITY)
                    }
                }
                RowKind::Stage { k, j } => {
                    let sc = p
                        .stage
                        .as_ref()
                        .ok_or_else(|| Error::Internal("stage rows".into()))?;
                    let cx: f64 = (0..n).map(|i| sc.c[[j, i]] * self.xfree[[k, i]]).sum();
                    (sc.lower[j] - cx, sc.upper[j] - cx)
                }
                RowKind::Keepout { k, j } => {
                    let off = self.offsets[[k - 1, j]];
                    if off.is_finite() {
                        let nx: f64 = (0..n)
                            .map(|i| self.normals[[k - 1, j, i]] * self.xfree[[k, i]])
                            .sum();
                        (f64::NEG_INFINITY, off - nx)
                    } else {
                        (f64::NEG_INFINITY, f64::INFINITY)
                    }
                }
            };
            self.lo[ri] = lo;
            self.hi[ri] = hi;
        }
        self.solver
            .set_row_bounds(None, Some((self.lo.view(), self.hi.view())))?;
        let hot = self.solver.settings().hot_start;
        if !hot {
            self.solver.clear_hint();
        }
        let (mut info, used_soft) = match self.try_hard()? {
            Some(r) => r,
            None => (self.solver.solve_current()?, true),
        };
        let x = if used_soft {
            self.solver.x()
        } else {
            self.hard.as_ref().map_or(self.solver.x(), |h| h.x())
        };
        for k in 0..nh {
            for i in 0..m {
                u_out[[k, i]] = x[k * m + i];
            }
        }
        info.max_violation = if used_soft {
            x[nm..].iter().fold(0.0f64, |a, &v| a.max(v))
        } else {
            0.0
        };
        // Positive slack: the next problem (one step on) most likely needs it too. A hot-start
        // heuristic only: cold solves stay a function of the problem alone.
        self.soft_next = hot && used_soft && self.hard.is_some() && info.max_violation > 0.0;
        if !hot {
            return Ok(info);
        }
        // Hot-start hints for the next solve: the active set shifted one stage earlier.
        let (row_prev, sps, nsl) = (&self.row_prev, self.sps, self.ns);
        let shift = |c: ConstraintRef| match c {
            ConstraintRef::Row { index, upper } => {
                row_prev[index].map(|index| ConstraintRef::Row { index, upper })
            }
            ConstraintRef::Bound { index, upper } => {
                if index < nm {
                    (index >= m).then(|| ConstraintRef::Bound {
                        index: index - m,
                        upper,
                    })
                } else if nsl > 0 {
                    let j = index - nm;
                    (j >= sps).then(|| ConstraintRef::Bound {
                        index: index - sps,
                        upper,
                    })
                } else {
                    None
                }
            }
        };
        match (self.hard.as_mut(), used_soft, self.soft_next) {
            // Back to the hard problem: seed it with the slack solve's working set, shifted,
            // without the slack bounds.
            (Some(h), true, false) => h.restart_with_hint(
                self.solver
                    .active_constraints()
                    .filter_map(shift)
                    .filter(|c| !matches!(*c, ConstraintRef::Bound { index, .. } if index >= nm)),
            ),
            (Some(h), false, _) => h.hint_from_last(shift),
            _ => self.solver.hint_from_last(shift),
        }
        Ok(info)
    }

    /// Solves the hard problem (keep-out rows without slack) with the cost and bounds the slack
    /// problem already holds, and returns `(info, false)` when its solution is also the slack
    /// problem's. Otherwise (infeasible, a multiplier above `l1`, a budget hit) solves the slack
    /// problem seeded with the hard working set and returns `(info, true)`, iterations and
    /// time of both solves counted. `None` when the hard solve is skipped.
    fn try_hard(&mut self) -> Result<Option<(SolveInfo, bool)>> {
        let nm = self.horizon * self.m;
        let Some(hard) = self.hard.as_mut() else {
            return Ok(None);
        };
        // A keep-out row with no dependence on the inputs is skipped by the hard solve even when
        // violated; only the slack problem can report it.
        let unreachable = self
            .ko_zero
            .iter()
            .zip(self.hi.iter().skip(self.ko_start))
            .any(|(&z, &h)| z && h < 0.0);
        if self.soft_next || unreachable {
            return Ok(None);
        }
        hard.f_mut().copy_from_slice(&self.solver.f_mut()[..nm]);
        hard.set_row_bounds(None, Some((self.lo.view(), self.hi.view())))?;
        let info = hard.solve_current()?;
        if info.status.is_solved() {
            // Sum each slack's row multipliers (upper sides: z ≥ 0).
            self.slack_dual.iter_mut().for_each(|v| *v = 0.0);
            let z = hard.z_rows();
            for st in 0..self.horizon {
                for j in 0..self.nko {
                    if let Some(c) = self.mode.slack_index(st, j, self.nko) {
                        self.slack_dual[c] += z[self.ko_start + st * self.nko + j].max(0.0);
                    }
                }
            }
            if self.slack_dual.iter().all(|&d| d <= self.soft_l1) {
                return Ok(Some((info, false)));
            }
        }
        // The slack solve starts from the hard solve's working set and factorisation, every
        // slack at its bound added in O(n²) (then the hot start drops the slack bounds whose
        // multiplier l1 − Σ z is negative); without a hot start, from cold with that working
        // set as the hint (slack bounds first: violated at the unconstrained minimiser, where
        // slacks sit at −l1/l2).
        if !self.solver.adopt_working_set(hard) {
            let ns = self.ns;
            self.solver.restart_with_hint(
                (0..ns)
                    .map(|j| ConstraintRef::Bound {
                        index: nm + j,
                        upper: false,
                    })
                    .chain(hard.active_constraints()),
            );
        }
        // The time limit covers both solves.
        let settings = *self.solver.settings();
        if let Some(limit) = settings.time_limit {
            let mut s = settings;
            s.time_limit = Some(limit.saturating_sub(info.solve_time));
            self.solver.set_settings(s)?;
        }
        let soft = self.solver.solve_current();
        if settings.time_limit.is_some() {
            self.solver.set_settings(settings)?;
        }
        let mut soft = soft?;
        soft.iterations += info.iterations;
        soft.solve_time += info.solve_time;
        Ok(Some((soft, true)))
    }
}
