//! Solver (B) behind [`super::LinearMpc`]: the MPC posed stage-wise as an [`OcpQp`] and solved
//! by the Riccati interior-point method ([`super::riccati`]); cost linear in the horizon, so it
//! suits long horizons, large states and LTV models.
//!
//! Input-rate bounds couple consecutive stages; they are expressed by augmenting the state with
//! the previous input (`x̃ = [x; u_{k−1}]`), so every constraint stays stage-local.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayView3};

use crate::error::Result;
use crate::mpc::ocp::{OcpQp, StageRows};
use crate::mpc::problem::{input_reference_costs, state_reference_costs, MpcProblem};
use crate::mpc::riccati::{RiccatiSettings, RiccatiSolver};
use crate::mpc::status::SolveInfo;

#[derive(Clone, Debug)]
pub(crate) struct Structured {
    n: usize,
    horizon: usize,
    /// Rate-bounded inputs (their rows come first at every stage k < N).
    rate_inputs: Vec<usize>,
    /// Polytope rows per stage (after the rate rows).
    n_stage: usize,
    /// Keep-out rows per stage (last; stages 1..N).
    nko: usize,
    q: Array2<f64>,
    p_term: Array2<f64>,
    r: Array2<f64>,
    du_max: Array1<f64>,
    ocp: OcpQp,
    solver: RiccatiSolver,
    x0: Array1<f64>,
    /// Finite-bound pattern of the keep-out rows the solver was set up for.
    ko_active: Vec<bool>,
    /// Whether the stage-0 rate rows are present (they need the previous input).
    rate0_active: bool,
}

impl Structured {
    pub(crate) fn new(
        problem: &MpcProblem,
        p_term: &Array2<f64>,
        nko: usize,
        settings: RiccatiSettings,
    ) -> Result<Self> {
        let (n, m, nh) = (problem.nx(), problem.nu(), problem.horizon());
        let rate_inputs: Vec<usize> = (0..m).filter(|&i| problem.du_max[i].is_finite()).collect();
        let aug = !rate_inputs.is_empty();
        let nx = if aug { n + m } else { n };
        let n_stage = problem.stage.as_ref().map_or(0, |s| s.lower.len());
        let rows: Vec<usize> = (0..=nh)
            .map(|k| {
                let mut r = 0;
                if k < nh {
                    r += rate_inputs.len() + n_stage;
                }
                if k >= 1 {
                    r += nko;
                }
                r
            })
            .collect();
        let mut ocp = OcpQp::new(nx, m, nh, &rows)?;
        for k in 0..nh {
            ocp.a[k].slice_mut(s![..n, ..n]).assign(problem.a_at(k));
            ocp.b[k].slice_mut(s![..n, ..]).assign(problem.b_at(k));
            ocp.c[k].slice_mut(s![..n]).assign(problem.c_at(k));
            if aug {
                // The augmented block carries u_k forward as next stage's "previous input".
                ocp.b[k].slice_mut(s![n.., ..]).assign(&Array2::eye(m));
            }
            ocp.q[k].slice_mut(s![..n, ..n]).assign(&problem.q);
            ocp.r[k].assign(&problem.r);
            ocp.u_lower[k].assign(&problem.u_min);
            ocp.u_upper[k].assign(&problem.u_max);
        }
        ocp.q[nh].slice_mut(s![..n, ..n]).assign(p_term);
        for k in 1..=nh {
            ocp.x_lower[k].slice_mut(s![..n]).assign(&problem.x_min);
            ocp.x_upper[k].slice_mut(s![..n]).assign(&problem.x_max);
        }
        // Stage rows are separable here: SoftStage is applied per row, as Soft (documented).
        let (soft, l1, l2) = problem
            .keepout_mode
            .penalty()
            .map_or((false, 0.0, 0.0), |(a, b)| (true, a, b));
        for k in 0..=nh {
            let rows = &mut ocp.rows[k];
            let mut r = 0;
            if k < nh {
                for &i in &rate_inputs {
                    // u_k,i − u_{k−1},i ∈ [−du, du]; at k = 0 set per solve from u_prev.
                    rows.c[[r, n + i]] = -1.0;
                    rows.d[[r, i]] = 1.0;
                    if k > 0 {
                        rows.lower[r] = -problem.du_max[i];
                        rows.upper[r] = problem.du_max[i];
                    }
                    r += 1;
                }
                if let Some(sc) = &problem.stage {
                    for j in 0..n_stage {
                        rows.c.slice_mut(s![r, ..n]).assign(&sc.c.row(j));
                        rows.d.row_mut(r).assign(&sc.d.row(j));
                        rows.lower[r] = sc.lower[j];
                        rows.upper[r] = sc.upper[j];
                        r += 1;
                    }
                }
            }
            if k >= 1 {
                for _ in 0..nko {
                    rows.soft[r] = soft;
                    rows.soft_l1[r] = l1;
                    rows.soft_l2[r] = l2;
                    r += 1;
                }
            }
        }
        let solver = RiccatiSolver::new(&ocp, settings)?;
        Ok(Self {
            n,
            horizon: nh,
            n_stage,
            nko,
            q: problem.q.clone(),
            p_term: p_term.clone(),
            r: problem.r.clone(),
            du_max: problem.du_max.clone(),
            x0: Array1::zeros(nx),
            ocp,
            solver,
            ko_active: vec![false; nh * nko],
            rate0_active: false,
            rate_inputs,
        })
    }

    fn ko_row(&self, k: usize) -> usize {
        // Keep-out rows sit after the rate and polytope rows of stage k (none at k = N).
        if k < self.horizon {
            self.rate_inputs.len() + self.n_stage
        } else {
            0
        }
    }

    pub(crate) fn set_settings(&mut self, settings: RiccatiSettings) -> Result<()> {
        self.solver.set_settings(settings)
    }

    pub(crate) fn set_keepout(
        &mut self,
        normals: ArrayView3<'_, f64>,
        offsets: ArrayView2<'_, f64>,
    ) -> Result<()> {
        let n = self.n;
        let mut pattern_changed = false;
        for k in 1..=self.horizon {
            let base = self.ko_row(k);
            for j in 0..self.nko {
                let rows: &mut StageRows = &mut self.ocp.rows[k];
                rows.c
                    .slice_mut(s![base + j, ..n])
                    .assign(&normals.slice(s![k - 1, j, ..]));
                let off = offsets[[k - 1, j]];
                rows.upper[base + j] = off;
                let act = off.is_finite();
                let idx = (k - 1) * self.nko + j;
                if self.ko_active[idx] != act {
                    self.ko_active[idx] = act;
                    pattern_changed = true;
                }
            }
        }
        if pattern_changed {
            // A row switched between absent and present: the workspace is re-sized (set-up
            // cost, not on the per-step path when the keep-out rows stay present).
            self.solver.setup(&self.ocp)?;
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
        let (n, nh) = (self.n, self.horizon);
        // Linear costs from the references: q_k = −Q r_k (P at N), r_k = −R v_k.
        let (ql, rl) = (&mut self.ocp.q_lin, &mut self.ocp.r_lin);
        state_reference_costs(&self.q, &self.p_term, x_ref, nh, |k, i, v| ql[k][i] = v);
        input_reference_costs(&self.r, u_ref, nh, |k, i, v| rl[k][i] = v);
        self.x0.slice_mut(s![..n]).assign(&x0);
        if !self.rate_inputs.is_empty() {
            let rows = &mut self.ocp.rows[0];
            for (r, &i) in self.rate_inputs.iter().enumerate() {
                let (lo, hi, prev) = match u_prev {
                    Some(up) => (-self.du_max[i], self.du_max[i], up[i]),
                    None => (f64::NEG_INFINITY, f64::INFINITY, 0.0),
                };
                rows.lower[r] = lo;
                rows.upper[r] = hi;
                self.x0[n + i] = prev;
            }
            if u_prev.is_some() != self.rate0_active {
                // Present from the second solve on (the previous input is then known).
                self.rate0_active = u_prev.is_some();
                self.solver.setup(&self.ocp)?;
            }
        }
        let mut info = self.solver.solve(&self.ocp, self.x0.view())?;
        u_out.assign(&self.solver.u());
        info.max_violation = self
            .solver
            .soft_violations()
            .iter()
            .fold(0.0f64, |a, &v| a.max(v));
        if self.solver.settings().warm_start {
            self.solver.shift_warm_start();
        }
        Ok(info)
    }
}
