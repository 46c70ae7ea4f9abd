//! The OSQP backend (the `osqp` crate, 0.6 line: builds offline with cmake) on the sparse MPC
//! formulation — states and inputs both variables, dynamics as equality rows.
//!
//! Between solves only vectors change (`update_lin_cost`, `update_bounds`), which OSQP absorbs
//! without refactorising; a changed keep-out normal goes through `update_A` (same sparsity: all
//! `n` entries of every keep-out row are structural), which does refactorise. OSQP warm-starts
//! from its previous iterate.

use std::borrow::Cow;
use std::time::Instant;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayView3};
use osqp::{CscMatrix, Problem, Settings, Status};

use crate::error::{Error, Result};
use crate::mpc::linear::MpcSettings;
use crate::mpc::problem::{input_reference_costs, state_reference_costs, MpcProblem};
use crate::mpc::status::{SolveInfo, SolveStatus};

/// OSQP treats magnitudes above 1e30 as infinite.
const OSQP_INF: f64 = 1e30;

fn clamp(v: f64) -> f64 {
    v.clamp(-OSQP_INF, OSQP_INF)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    Init,
    Dyn { k: usize },
    UBox { k: usize },
    XBox { k: usize, i: usize },
    Rate { k: usize, i: usize },
    Stage { k: usize, j: usize },
    Keepout { k: usize, j: usize },
}

/// OSQP on the sparse formulation; see the [module documentation](self).
pub(crate) struct OsqpBackend {
    problem: MpcProblem,
    p_term: Array2<f64>,
    settings: MpcSettings,
    nko: usize,
    soft: Option<(f64, f64)>,
    nvar: usize,
    // CSC data of P (upper triangle) and A.
    p_indptr: Vec<usize>,
    p_indices: Vec<usize>,
    p_data: Vec<f64>,
    a_indptr: Vec<usize>,
    a_indices: Vec<usize>,
    a_data: Vec<f64>,
    /// Position in `a_data` of keep-out entry (k−1, j, i).
    ko_pos: Vec<usize>,
    /// First constraint row of each block, with its meaning.
    rows: Vec<(usize, Row)>,
    n_rows: usize,
    q: Vec<f64>,
    l: Vec<f64>,
    u: Vec<f64>,
    offsets: Array2<f64>,
    a_dirty: bool,
    solver: Problem,
}

impl std::fmt::Debug for OsqpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsqpBackend")
            .field("variables", &self.nvar)
            .field("constraints", &self.n_rows)
            .finish()
    }
}

impl Clone for OsqpBackend {
    fn clone(&self) -> Self {
        // The OSQP workspace cannot be copied: a clone sets up its own from the same data.
        let solver = self.rebuild().unwrap_or_else(|_| unreachable_setup());
        Self {
            problem: self.problem.clone(),
            p_term: self.p_term.clone(),
            settings: self.settings,
            nko: self.nko,
            soft: self.soft,
            nvar: self.nvar,
            p_indptr: self.p_indptr.clone(),
            p_indices: self.p_indices.clone(),
            p_data: self.p_data.clone(),
            a_indptr: self.a_indptr.clone(),
            a_indices: self.a_indices.clone(),
            a_data: self.a_data.clone(),
            ko_pos: self.ko_pos.clone(),
            rows: self.rows.clone(),
            n_rows: self.n_rows,
            q: self.q.clone(),
            l: self.l.clone(),
            u: self.u.clone(),
            offsets: self.offsets.clone(),
            a_dirty: false,
            solver,
        }
    }
}

#[cold]
fn unreachable_setup() -> Problem {
    // The same data was set up successfully once, so a second set-up cannot fail.
    panic!("OSQP set-up failed on data that was accepted before")
}

fn csc(
    rows: usize,
    cols: usize,
    mut trip: Vec<(usize, usize, f64)>,
) -> (Vec<usize>, Vec<usize>, Vec<f64>) {
    trip.sort_by_key(|&(r, c, _)| (c, r));
    let mut indptr = vec![0usize; cols + 1];
    let mut indices = Vec::with_capacity(trip.len());
    let mut data = Vec::with_capacity(trip.len());
    let mut last: Option<(usize, usize)> = None;
    for (r, c, v) in trip {
        debug_assert!(r < rows);
        if last == Some((r, c)) {
            // Duplicate entries add up.
            if let Some(d) = data.last_mut() {
                *d += v;
            }
            continue;
        }
        indptr[c + 1] += 1;
        indices.push(r);
        data.push(v);
        last = Some((r, c));
    }
    for c in 0..cols {
        indptr[c + 1] += indptr[c];
    }
    (indptr, indices, data)
}

impl OsqpBackend {
    pub(crate) fn new(
        problem: &MpcProblem,
        p_term: &Array2<f64>,
        nko: usize,
        settings: &MpcSettings,
    ) -> Result<Self> {
        let (n, m, nh) = (problem.nx(), problem.nu(), problem.horizon());
        let mode = problem.keepout_mode;
        let soft = mode.penalty();
        let ns = nh * mode.slacks_per_stage(nko);
        let xo = |k: usize| k * n; // offset of x_k
        let uo = |k: usize| (nh + 1) * n + k * m;
        let so = (nh + 1) * n + nh * m;
        let nvar = so + ns;
        // P, upper triangle.
        let mut pt = Vec::new();
        for k in 0..=nh {
            let qk = if k == nh { p_term } else { &problem.q };
            for i in 0..n {
                for j in i..n {
                    if qk[[i, j]] != 0.0 || i == j {
                        pt.push((xo(k) + i, xo(k) + j, qk[[i, j]]));
                    }
                }
            }
        }
        for k in 0..nh {
            for i in 0..m {
                for j in i..m {
                    if problem.r[[i, j]] != 0.0 || i == j {
                        pt.push((uo(k) + i, uo(k) + j, problem.r[[i, j]]));
                    }
                }
            }
        }
        if let Some((_, l2)) = soft {
            for s in 0..ns {
                pt.push((so + s, so + s, l2));
            }
        }
        let (p_indptr, p_indices, p_data) = csc(nvar, nvar, pt);
        // A.
        let mut at = Vec::new();
        let mut rows = Vec::new();
        let mut r = 0usize;
        rows.push((r, Row::Init));
        for i in 0..n {
            at.push((r + i, xo(0) + i, 1.0));
        }
        r += n;
        for k in 0..nh {
            rows.push((r, Row::Dyn { k }));
            let (a, b) = (problem.a_at(k), problem.b_at(k));
            for i in 0..n {
                at.push((r + i, xo(k + 1) + i, 1.0));
                for j in 0..n {
                    if a[[i, j]] != 0.0 {
                        at.push((r + i, xo(k) + j, -a[[i, j]]));
                    }
                }
                for j in 0..m {
                    if b[[i, j]] != 0.0 {
                        at.push((r + i, uo(k) + j, -b[[i, j]]));
                    }
                }
            }
            r += n;
        }
        for k in 0..nh {
            rows.push((r, Row::UBox { k }));
            for i in 0..m {
                at.push((r + i, uo(k) + i, 1.0));
            }
            r += m;
        }
        for k in 1..=nh {
            for i in 0..n {
                if problem.x_min[i].is_finite() || problem.x_max[i].is_finite() {
                    rows.push((r, Row::XBox { k, i }));
                    at.push((r, xo(k) + i, 1.0));
                    r += 1;
                }
            }
        }
        for k in 0..nh {
            for i in 0..m {
                if problem.du_max[i].is_finite() {
                    rows.push((r, Row::Rate { k, i }));
                    at.push((r, uo(k) + i, 1.0));
                    if k > 0 {
                        at.push((r, uo(k - 1) + i, -1.0));
                    }
                    r += 1;
                }
            }
        }
        if let Some(sc) = &problem.stage {
            for k in 0..nh {
                for j in 0..sc.lower.len() {
                    rows.push((r, Row::Stage { k, j }));
                    for i in 0..n {
                        if sc.c[[j, i]] != 0.0 {
                            at.push((r, xo(k) + i, sc.c[[j, i]]));
                        }
                    }
                    for i in 0..m {
                        if sc.d[[j, i]] != 0.0 {
                            at.push((r, uo(k) + i, sc.d[[j, i]]));
                        }
                    }
                    r += 1;
                }
            }
        }
        let ko_first = r;
        for k in 1..=nh {
            for j in 0..nko {
                rows.push((r, Row::Keepout { k, j }));
                for i in 0..n {
                    at.push((r, xo(k) + i, 0.0));
                }
                if let Some(c) = mode.slack_index(k - 1, j, nko) {
                    at.push((r, so + c, -1.0));
                }
                r += 1;
            }
        }
        // Slacks are non-negative.
        let slack_first = r;
        for j in 0..ns {
            at.push((r, so + j, 1.0));
            r += 1;
        }
        let n_rows = r;
        let (a_indptr, a_indices, a_data) = csc(n_rows, nvar, at);
        // Locate the keep-out entries in the CSC data.
        let mut ko_pos = vec![usize::MAX; nh * nko * n];
        for c in 0..nvar {
            for p in a_indptr[c]..a_indptr[c + 1] {
                let row = a_indices[p];
                if row >= ko_first && row < slack_first && c < (nh + 1) * n {
                    let idx = row - ko_first;
                    let (k1, j) = (idx / nko.max(1), idx % nko.max(1));
                    let (k, i) = (c / n, c % n);
                    if k == k1 + 1 {
                        ko_pos[(k1 * nko + j) * n + i] = p;
                    }
                }
            }
        }
        let mut l = vec![-OSQP_INF; n_rows];
        let mut u = vec![OSQP_INF; n_rows];
        for &(r0, row) in &rows {
            match row {
                Row::Dyn { k } => {
                    let c = problem.c_at(k);
                    for i in 0..n {
                        l[r0 + i] = c[i];
                        u[r0 + i] = c[i];
                    }
                }
                Row::UBox { .. } => {
                    for i in 0..m {
                        l[r0 + i] = clamp(problem.u_min[i]);
                        u[r0 + i] = clamp(problem.u_max[i]);
                    }
                }
                Row::XBox { i, .. } => {
                    l[r0] = clamp(problem.x_min[i]);
                    u[r0] = clamp(problem.x_max[i]);
                }
                Row::Rate { k, i } if k > 0 => {
                    l[r0] = clamp(-problem.du_max[i]);
                    u[r0] = clamp(problem.du_max[i]);
                }
                Row::Stage { j, .. } => {
                    if let Some(sc) = &problem.stage {
                        l[r0] = clamp(sc.lower[j]);
                        u[r0] = clamp(sc.upper[j]);
                    }
                }
                _ => {}
            }
        }
        for v in l[slack_first..n_rows].iter_mut() {
            *v = 0.0;
        }
        let mut q = vec![0.0; nvar];
        if let Some((l1, _)) = soft {
            for v in q[so..].iter_mut() {
                *v = l1;
            }
        }
        let solver = Self::setup(
            &p_indptr, &p_indices, &p_data, &a_indptr, &a_indices, &a_data, &q, &l, &u, nvar,
            n_rows, settings,
        )?;
        Ok(Self {
            problem: problem.clone(),
            p_term: p_term.clone(),
            settings: *settings,
            nko,
            soft,
            nvar,
            p_indptr,
            p_indices,
            p_data,
            a_indptr,
            a_indices,
            a_data,
            ko_pos,
            rows,
            n_rows,
            q,
            l,
            u,
            offsets: Array2::from_elem((nh, nko), f64::INFINITY),
            a_dirty: false,
            solver,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn setup(
        p_indptr: &[usize],
        p_indices: &[usize],
        p_data: &[f64],
        a_indptr: &[usize],
        a_indices: &[usize],
        a_data: &[f64],
        q: &[f64],
        l: &[f64],
        u: &[f64],
        nvar: usize,
        n_rows: usize,
        settings: &MpcSettings,
    ) -> Result<Problem> {
        let pm = CscMatrix {
            nrows: nvar,
            ncols: nvar,
            indptr: Cow::Borrowed(p_indptr),
            indices: Cow::Borrowed(p_indices),
            data: Cow::Borrowed(p_data),
        };
        let am = CscMatrix {
            nrows: n_rows,
            ncols: nvar,
            indptr: Cow::Borrowed(a_indptr),
            indices: Cow::Borrowed(a_indices),
            data: Cow::Borrowed(a_data),
        };
        let max_iter = u32::try_from(settings.max_iter).unwrap_or(u32::MAX);
        let s = Settings::default()
            .verbose(false)
            .eps_abs(settings.eps)
            .eps_rel(settings.eps)
            .max_iter(max_iter)
            .time_limit(settings.time_limit)
            .warm_start(settings.warm_start)
            // OSQP's default ("automatic") adapts the step size after a fraction of the
            // measured set-up time, so iterates depended on timing: results differed from run
            // to run and with the thread count. A fixed interval (OSQP's suggestion for
            // reproducible runs) makes a solve a function of its data.
            .adaptive_rho_interval(Some(25))
            .polish(true);
        Problem::new(pm, q, am, l, u, &s).map_err(|e| Error::Numerical {
            what: "OSQP set-up",
            detail: format!("{e:?}"),
        })
    }

    /// A fresh OSQP workspace from the stored data and settings.
    fn rebuild(&self) -> Result<Problem> {
        Self::setup(
            &self.p_indptr,
            &self.p_indices,
            &self.p_data,
            &self.a_indptr,
            &self.a_indices,
            &self.a_data,
            &self.q,
            &self.l,
            &self.u,
            self.nvar,
            self.n_rows,
            &self.settings,
        )
    }

    pub(crate) fn set_warm_start(&mut self, on: bool) -> Result<()> {
        self.settings.warm_start = on;
        // OSQP 0.6 fixes warm starting at set-up: rebuild with the new setting.
        self.solver = self.rebuild()?;
        Ok(())
    }

    pub(crate) fn set_keepout(
        &mut self,
        normals: ArrayView3<'_, f64>,
        offsets: ArrayView2<'_, f64>,
    ) -> Result<()> {
        let (n, nh, nko) = (self.problem.nx(), self.problem.horizon(), self.nko);
        for k in 0..nh {
            for j in 0..nko {
                for i in 0..n {
                    let p = self.ko_pos[(k * nko + j) * n + i];
                    let v = normals[[k, j, i]];
                    if self.a_data[p] != v {
                        self.a_data[p] = v;
                        self.a_dirty = true;
                    }
                }
                self.offsets[[k, j]] = offsets[[k, j]];
            }
        }
        if self.a_dirty {
            let am = CscMatrix {
                nrows: self.n_rows,
                ncols: self.nvar,
                indptr: Cow::Borrowed(&self.a_indptr),
                indices: Cow::Borrowed(&self.a_indices),
                data: Cow::Borrowed(&self.a_data),
            };
            self.solver.update_A(am);
            self.a_dirty = false;
        }
        Ok(())
    }

    pub(crate) fn solve(
        &mut self,
        x0: ArrayView1<'_, f64>,
        x_ref: ArrayView2<'_, f64>,
        u_ref: ArrayView2<'_, f64>,
        u_prev: Option<ArrayView1<'_, f64>>,
        u_out: &mut Array2<f64>,
    ) -> Result<SolveInfo> {
        let start = Instant::now();
        let (n, m, nh) = (self.problem.nx(), self.problem.nu(), self.problem.horizon());
        let p = &self.problem;
        let uo = (nh + 1) * n;
        // Linear cost −Q r_k, −R v_k.
        let q = &mut self.q;
        state_reference_costs(&p.q, &self.p_term, x_ref, nh, |k, i, v| q[k * n + i] = v);
        input_reference_costs(&p.r, u_ref, nh, |k, i, v| q[uo + k * m + i] = v);
        for &(r0, row) in &self.rows {
            match row {
                Row::Init => {
                    for i in 0..n {
                        self.l[r0 + i] = x0[i];
                        self.u[r0 + i] = x0[i];
                    }
                }
                Row::Rate { k: 0, i } => {
                    let du = p.du_max[i];
                    let (lo, hi) = match u_prev {
                        Some(up) => (up[i] - du, up[i] + du),
                        None => (f64::NEG_INFINITY, f64::INFINITY),
                    };
                    self.l[r0] = clamp(lo);
                    self.u[r0] = clamp(hi);
                }
                Row::Keepout { k, j } => {
                    self.u[r0] = clamp(self.offsets[[k - 1, j]]);
                }
                _ => {}
            }
        }
        self.solver.update_lin_cost(&self.q);
        self.solver.update_bounds(&self.l, &self.u);
        let status = self.solver.solve();
        let iterations = status.iter() as usize;
        let (st, sol) = match &status {
            Status::Solved(s) => (SolveStatus::Solved, Some(s.clone())),
            Status::SolvedInaccurate(s) => (SolveStatus::SolvedInaccurate, Some(s.clone())),
            Status::MaxIterationsReached(s) => (SolveStatus::MaxIterations, Some(s.clone())),
            Status::TimeLimitReached(s) => (SolveStatus::TimeLimit, Some(s.clone())),
            Status::PrimalInfeasible(_) | Status::PrimalInfeasibleInaccurate(_) => {
                (SolveStatus::PrimalInfeasible, None)
            }
            Status::DualInfeasible(_) | Status::DualInfeasibleInaccurate(_) => {
                (SolveStatus::DualInfeasible, None)
            }
            _ => (SolveStatus::DualInfeasible, None),
        };
        let mut info = SolveInfo {
            status: st,
            iterations,
            ..SolveInfo::default()
        };
        if let Some(sol) = sol {
            let x = sol.x();
            for k in 0..nh {
                for i in 0..m {
                    u_out[[k, i]] = x[uo + k * m + i];
                }
            }
            info.primal_residual = sol.pri_res();
            info.dual_residual = sol.dua_res();
            let so = uo + nh * m;
            info.max_violation = x[so..].iter().fold(0.0f64, |a, &v| a.max(v));
        }
        info.solve_time = start.elapsed();
        Ok(info)
    }
}
