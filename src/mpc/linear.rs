//! [`LinearMpc`]: one API over the MPC solvers, chosen automatically by size.

use std::time::Duration;

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, ArrayView3};

use crate::error::{check_finite, check_finite_view, Error, Result};
use crate::linalg::Par;
use crate::mpc::condensed::Condensed;
use crate::mpc::dense::ActiveSetSettings;
use crate::mpc::osqp_backend::OsqpBackend;
use crate::mpc::problem::MpcProblem;
use crate::mpc::riccati::RiccatiSettings;
use crate::mpc::status::{SolveInfo, SolveStatus};
use crate::mpc::structured::Structured;

/// Above this many condensed variables (`N·m` plus soft keep-out slacks) `Auto` picks the
/// Riccati solver.
pub const AUTO_MAX_CONDENSED: usize = 300;

/// `Auto` picks the Riccati solver when `max_k ‖A_{k−1}⋯A_0‖` over the horizon exceeds this
/// (condensing would then lose too many digits).
pub const AUTO_MAX_GROWTH: f64 = 1e3;

/// Which solver a [`LinearMpc`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MpcSolverKind {
    /// The condensed active-set solver up to [`AUTO_MAX_CONDENSED`] condensed variables, the
    /// horizon-structured Riccati solver beyond.
    #[default]
    Auto,
    /// (A) condensed dense dual active-set, Hessian factorised at set-up, hot-started.
    ActiveSet,
    /// (B) horizon-structured interior point with a Riccati recursion per iteration.
    Riccati,
    /// OSQP (through the `osqp` crate) on the sparse formulation, warm-started.
    Osqp,
}

impl MpcSolverKind {
    /// Parses `"auto"`, `"active-set"`, `"riccati"` or `"osqp"`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for any other name.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Self::Auto),
            "active-set" | "activeset" => Ok(Self::ActiveSet),
            "riccati" => Ok(Self::Riccati),
            "osqp" => Ok(Self::Osqp),
            _ => Err(Error::invalid_value(
                "solver",
                format!("expected 'auto', 'active-set', 'riccati' or 'osqp', got {name:?}"),
            )),
        }
    }

    /// The name as accepted by [`Self::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::ActiveSet => "active-set",
            Self::Riccati => "riccati",
            Self::Osqp => "osqp",
        }
    }
}

/// Solver settings of a [`LinearMpc`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MpcSettings {
    /// Which solver.
    pub solver: MpcSolverKind,
    /// Tolerance on the primal and dual residuals.
    pub eps: f64,
    /// Iteration cap per solve.
    pub max_iter: usize,
    /// Wall-clock budget per solve (checked every iteration).
    pub time_limit: Option<Duration>,
    /// Warm/hot start from the previous solution.
    pub warm_start: bool,
}

impl Default for MpcSettings {
    fn default() -> Self {
        Self {
            solver: MpcSolverKind::Auto,
            eps: 1e-6,
            max_iter: 1000,
            time_limit: None,
            warm_start: true,
        }
    }
}

impl MpcSettings {
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
        if let Some(t) = self.time_limit {
            if t.is_zero() {
                return Err(Error::invalid_value("time_limit", "must be > 0"));
            }
        }
        Ok(())
    }

    fn riccati(&self) -> RiccatiSettings {
        RiccatiSettings::default()
            .eps(self.eps)
            .max_iter(self.max_iter)
            .time_limit(self.time_limit)
            .warm_start(self.warm_start)
    }

    fn active_set(&self) -> ActiveSetSettings {
        ActiveSetSettings {
            eps: self.eps,
            max_iter: self.max_iter,
            time_limit: self.time_limit,
            hot_start: self.warm_start,
            ..ActiveSetSettings::default()
        }
    }
}

/// The result of an MPC solve.
#[derive(Clone, Debug, PartialEq)]
pub struct MpcSolution {
    /// Inputs `(N, m)`.
    pub u: Array2<f64>,
    /// Predicted states `(N + 1, n)`, `x[0] = x0`.
    pub x: Array2<f64>,
    /// Status, iterations, time (of the whole `solve`: cost and bounds, QP, roll-out) and
    /// residuals; `max_violation` is the largest keep-out slack.
    pub info: SolveInfo,
}

impl MpcSolution {
    /// The first input, to apply now.
    pub fn u0(&self) -> ArrayView1<'_, f64> {
        self.u.row(0)
    }
}

#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
enum Backend {
    ActiveSet(Condensed),
    Riccati(Structured),
    Osqp(OsqpBackend),
}

/// A reference: one vector for every stage, or one per stage.
#[derive(Clone, Copy, Debug)]
pub enum Reference<'a> {
    /// Zero.
    Zero,
    /// The same value at every stage.
    Constant(ArrayView1<'a, f64>),
    /// Per stage: `(N + 1, n)` for states, `(N, m)` for inputs.
    PerStage(ArrayView2<'a, f64>),
}

/// A linear MPC controller; see [`super::problem`] for the problem it solves.
///
/// ```
/// use intent_engine::mpc::{LinearMpc, MpcProblem, MpcSettings, Reference};
/// use ndarray::{array, Array2};
///
/// let a = array![[1.0, 0.1], [0.0, 1.0]];
/// let b = array![[0.005], [0.1]];
/// let problem = MpcProblem::new(a, b, Array2::eye(2), array![[0.1]], 20)?
///     .with_input_bounds(Some(array![-1.0]), Some(array![1.0]))?;
/// let mut mpc = LinearMpc::new(problem, MpcSettings::default())?;
/// let sol = mpc.solve(array![1.0, 0.0].view(), Reference::Zero, Reference::Zero, None)?;
/// assert!(sol.info.status.is_solved());
/// assert!((sol.u0()[0] + 1.0).abs() < 1e-9); // saturated: push back at full effort
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct LinearMpc {
    problem: MpcProblem,
    settings: MpcSettings,
    kind: MpcSolverKind,
    p_term: Array2<f64>,
    backend: Backend,
    keepout_normals: Array3<f64>,
    keepout_offsets: Array2<f64>,
    x_ref: Array2<f64>,
    u_ref: Array2<f64>,
    u_prev: Array1<f64>,
    solution: MpcSolution,
    has_solution: bool,
    workers: Vec<LinearMpc>,
}

impl LinearMpc {
    /// Builds the controller: validates, computes the terminal cost (DARE unless given), picks
    /// the solver and preallocates its workspace.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for bad settings or a DARE without stabilising solution, and
    /// the solver's set-up errors.
    pub fn new(problem: MpcProblem, settings: MpcSettings) -> Result<Self> {
        Self::with_keepout_rows(problem, settings, 0)
    }

    /// As [`Self::new`], reserving `rows` keep-out rows per stage.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_keepout_rows(
        problem: MpcProblem,
        settings: MpcSettings,
        rows: usize,
    ) -> Result<Self> {
        settings.validate()?;
        let p_term = problem.terminal_cost()?;
        let (n, m, nh) = (problem.nx(), problem.nu(), problem.horizon());
        let kind = match settings.solver {
            // The condensed Hessian has N·m (+ soft rows) variables and O(n²) active-set steps:
            // past a few hundred variables the horizon-linear Riccati solver wins.
            MpcSolverKind::Auto
                if nh * m + nh * problem.keepout_mode.slacks_per_stage(rows)
                    > AUTO_MAX_CONDENSED =>
            {
                MpcSolverKind::Riccati
            }
            // Condensing multiplies by A^k: with unstable dynamics over a long horizon the
            // condensed Hessian loses the digits the active-set method needs.
            MpcSolverKind::Auto if problem.growth() > AUTO_MAX_GROWTH => MpcSolverKind::Riccati,
            MpcSolverKind::Auto => MpcSolverKind::ActiveSet,
            k => k,
        };
        let backend = Self::make_backend(&problem, &p_term, rows, &settings, kind)?;
        Ok(Self {
            kind,
            p_term,
            backend,
            keepout_normals: Array3::zeros((nh, rows, n)),
            keepout_offsets: Array2::from_elem((nh, rows), f64::INFINITY),
            x_ref: Array2::zeros((nh + 1, n)),
            u_ref: Array2::zeros((nh, m)),
            u_prev: Array1::zeros(m),
            solution: MpcSolution {
                u: Array2::zeros((nh, m)),
                x: Array2::zeros((nh + 1, n)),
                info: SolveInfo::default(),
            },
            has_solution: false,
            workers: Vec::new(),
            problem,
            settings,
        })
    }

    fn make_backend(
        problem: &MpcProblem,
        p_term: &Array2<f64>,
        rows: usize,
        settings: &MpcSettings,
        kind: MpcSolverKind,
    ) -> Result<Backend> {
        Ok(match kind {
            MpcSolverKind::Osqp => {
                Backend::Osqp(OsqpBackend::new(problem, p_term, rows, settings)?)
            }
            MpcSolverKind::Riccati => {
                Backend::Riccati(Structured::new(problem, p_term, rows, settings.riccati())?)
            }
            _ => Backend::ActiveSet(Condensed::new(
                problem,
                p_term,
                rows,
                settings.active_set(),
            )?),
        })
    }

    /// The solver in use (never `Auto`).
    pub fn solver_kind(&self) -> MpcSolverKind {
        self.kind
    }

    /// The problem.
    pub fn problem(&self) -> &MpcProblem {
        &self.problem
    }

    /// The terminal cost in use.
    pub fn terminal_cost(&self) -> &Array2<f64> {
        &self.p_term
    }

    /// The settings.
    pub fn settings(&self) -> &MpcSettings {
        &self.settings
    }

    /// Keep-out rows per stage currently reserved.
    pub fn keepout_rows(&self) -> usize {
        self.keepout_offsets.ncols()
    }

    /// Sets the keep-out half-spaces `normals[k-1, j] · x_k ≤ offsets[k-1, j]` for stages
    /// `k = 1..N` (`normals (N, r, n)`, `offsets (N, r)`; an infinite offset disables a row).
    /// The same `r` as before updates rows in place without allocating; a new `r` rebuilds the
    /// solver (set-up cost).
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::NonFinite`] for bad arrays (normals must be finite, offsets
    /// may be `+∞` but not NaN).
    pub fn set_keepout(
        &mut self,
        normals: ArrayView3<'_, f64>,
        offsets: ArrayView2<'_, f64>,
    ) -> Result<()> {
        let (n, nh) = (self.problem.nx(), self.problem.horizon());
        let r = normals.dim().1;
        if normals.dim() != (nh, r, n) || offsets.dim() != (nh, r) {
            return Err(Error::shape(
                "stage_normals/stage_offsets",
                format!(
                    "expected ({nh}, r, {n}) and ({nh}, r), got {:?} and {:?}",
                    normals.dim(),
                    offsets.dim()
                ),
            ));
        }
        check_finite_view("stage_normals", normals)?;
        if let Some(i) = offsets
            .iter()
            .position(|v| v.is_nan() || *v == f64::NEG_INFINITY)
        {
            return Err(Error::NonFinite {
                name: "stage_offsets",
                index: i,
            });
        }
        if r != self.keepout_rows() {
            let backend =
                Self::make_backend(&self.problem, &self.p_term, r, &self.settings, self.kind)?;
            self.backend = backend;
            self.keepout_normals = Array3::zeros((nh, r, n));
            self.keepout_offsets = Array2::from_elem((nh, r), f64::INFINITY);
            self.workers.clear();
        }
        self.keepout_normals.assign(&normals);
        self.keepout_offsets.assign(&offsets);
        match &mut self.backend {
            Backend::ActiveSet(c) => {
                for k in 0..nh {
                    c.set_keepout(normals.index_axis(ndarray::Axis(0), k), offsets.row(k), k)?;
                }
            }
            Backend::Riccati(r) => r.set_keepout(normals, offsets)?,
            Backend::Osqp(o) => o.set_keepout(normals, offsets)?,
        }
        Ok(())
    }

    /// Solves from state `x0` with references (states: `(n,)` or `(N + 1, n)`, stage 0
    /// ignored; inputs: `(m,)` or `(N, m)`), and the previously applied input for rate bounds
    /// (`None`: the last solution's first input, if any). Does not allocate.
    ///
    /// # Errors
    /// [`Error::Shape`] / [`Error::NonFinite`] for bad `x0` or references;
    /// [`Error::Numerical`] when the plan or its predicted states are not finite (data near
    /// f64's range). Solver outcomes are statuses in the solution.
    pub fn solve(
        &mut self,
        x0: ArrayView1<'_, f64>,
        x_ref: Reference<'_>,
        u_ref: Reference<'_>,
        u_prev: Option<ArrayView1<'_, f64>>,
    ) -> Result<&MpcSolution> {
        let started = std::time::Instant::now();
        let (n, m, nh) = (self.problem.nx(), self.problem.nu(), self.problem.horizon());
        if x0.len() != n {
            return Err(Error::shape(
                "x0",
                format!("expected length {n}, got {}", x0.len()),
            ));
        }
        check_finite("x0", x0.iter())?;
        let xr_rows = fill_reference("x_ref", x_ref, &mut self.x_ref, nh + 1, n)?;
        let ur_rows = fill_reference("u_ref", u_ref, &mut self.u_ref, nh, m)?;
        if let Some(up) = u_prev {
            if up.len() != m {
                return Err(Error::shape(
                    "u_prev",
                    format!("expected length {m}, got {}", up.len()),
                ));
            }
            check_finite("u_prev", up.iter())?;
        }
        // Rate bounds at stage 0 refer to the previously applied input (by default the last
        // solution's u0, copied out because the solve overwrites `solution.u`).
        let prev: Option<ArrayView1<'_, f64>> = match u_prev {
            Some(u) => Some(u),
            None if self.has_solution && self.solution.info.status.is_solved() => {
                self.u_prev.assign(&self.solution.u.row(0));
                Some(self.u_prev.view())
            }
            None => None,
        };
        let xr = self.x_ref.slice(ndarray::s![..xr_rows, ..]);
        let ur = self.u_ref.slice(ndarray::s![..ur_rows, ..]);
        let info = match &mut self.backend {
            Backend::ActiveSet(c) => c.solve(x0, xr, ur, prev, &mut self.solution.u)?,
            Backend::Riccati(r) => r.solve(x0, xr, ur, prev, &mut self.solution.u)?,
            Backend::Osqp(o) => o.solve(x0, xr, ur, prev, &mut self.solution.u)?,
        };
        // Predicted states from the dynamics (row-major slices: no index checks in the loop).
        self.solution.x.row_mut(0).assign(&x0);
        for k in 0..nh {
            let (a, b, c) = (
                self.problem.a_at(k),
                self.problem.b_at(k),
                self.problem.c_at(k),
            );
            let (Some(a), Some(b), Some(c)) = (a.as_slice(), b.as_slice(), c.as_slice()) else {
                return Err(Error::Internal(
                    "dynamics matrices must be in standard layout".into(),
                ));
            };
            let xs = self
                .solution
                .x
                .as_slice_mut()
                .ok_or_else(|| Error::Internal("x layout".into()))?;
            let (done, next) = xs.split_at_mut((k + 1) * n);
            let xk = &done[k * n..];
            let uk = &self
                .solution
                .u
                .as_slice()
                .ok_or_else(|| Error::Internal("u layout".into()))?[k * m..(k + 1) * m];
            for i in 0..n {
                let ar = &a[i * n..(i + 1) * n];
                let br = &b[i * m..(i + 1) * m];
                let mut acc = c[i];
                for j in 0..n {
                    acc += ar[j] * xk[j];
                }
                for j in 0..m {
                    acc += br[j] * uk[j];
                }
                next[i] = acc;
            }
        }
        // A "solved" plan with NaN/inf inputs or predicted states (seen from OSQP on data
        // near f64's range, found by fuzzing) is no answer: report it, and keep it out of the
        // next warm start and rate bound.
        if !(self.solution.u.iter().all(|v| v.is_finite())
            && self.solution.x.iter().all(|v| v.is_finite()))
        {
            self.has_solution = false;
            self.solution.info = SolveInfo {
                status: SolveStatus::Unsolved,
                ..info
            };
            return Err(Error::Numerical {
                what: "mpc solve",
                detail: format!(
                    "the {} solver's plan is not finite (status {}): the problem data or x0 \
                     are too close to f64's range",
                    self.solver_kind().as_str(),
                    info.status.as_str()
                ),
            });
        }
        self.solution.info = info;
        // The whole solve, including forming the cost and bounds and the state roll-out.
        self.solution.info.solve_time = started.elapsed();
        self.has_solution = true;
        Ok(&self.solution)
    }

    /// The last solution.
    pub fn solution(&self) -> &MpcSolution {
        &self.solution
    }

    /// Solves one problem per row of `x0s` (`(S, n)`) in parallel, with the current keep-outs
    /// and references. Each scenario is solved cold in a workspace of its own while it runs:
    /// for the active-set and Riccati backends one per thread (created on the first call, each
    /// taking the next scenario until none is left), for OSQP one per scenario. Results are
    /// identical to solving the scenarios one by one with fresh controllers, for any thread
    /// count. (OSQP's per-scenario workspaces keep the step size it adapted, so with that
    /// backend a repeated call on the same object may differ at the solver tolerance.)
    ///
    /// # Errors
    /// As [`Self::solve`].
    pub fn solve_batch(
        &mut self,
        x0s: ArrayView2<'_, f64>,
        x_ref: Reference<'_>,
        u_ref: Reference<'_>,
        par: Par,
    ) -> Result<Vec<MpcSolution>> {
        let keepouts: Option<(ArrayView3<'_, f64>, ArrayView2<'_, f64>)> = None;
        self.solve_scenarios(x0s, keepouts, x_ref, u_ref, par)
    }

    /// As [`Self::solve_batch`], with per-scenario keep-outs `normals (S, N, r, n)` given as a
    /// `(S·N, r, n)` array and `offsets (S·N, r)` — e.g. one scenario per sampled human
    /// trajectory.
    ///
    /// # Errors
    /// As [`Self::solve`] and [`Self::set_keepout`].
    pub fn solve_scenarios(
        &mut self,
        x0s: ArrayView2<'_, f64>,
        keepouts: Option<(ArrayView3<'_, f64>, ArrayView2<'_, f64>)>,
        x_ref: Reference<'_>,
        u_ref: Reference<'_>,
        par: Par,
    ) -> Result<Vec<MpcSolution>> {
        let scen = x0s.nrows();
        let nh = self.problem.horizon();
        if let Some((nr, off)) = keepouts {
            if nr.dim().0 != scen * nh || off.dim().0 != scen * nh {
                return Err(Error::shape(
                    "keepouts",
                    format!(
                        "expected {} stage rows (S·N), got {} and {}",
                        scen * nh,
                        nr.dim().0,
                        off.dim().0
                    ),
                ));
            }
        }
        // Workers solve cold (no hot start, no hints), so a result never depends on which
        // scenario a worker solved before. The active-set and Riccati backends keep no other
        // state between solves, so they get one worker per thread, each taking the next
        // scenario until none is left: a few workspaces that stay in cache (one per scenario,
        // 64 × ~0.4 MB, overflowed L2 and shared L3 and scaled worse on two threads). OSQP
        // carries its step size from solve to solve, so it keeps one worker per scenario.
        let per_scenario = matches!(self.backend, Backend::Osqp(_));
        let nw = if per_scenario {
            scen
        } else {
            par.num_threads().clamp(1, scen.max(1))
        };
        if self.workers.len() < nw {
            let mut t = self.clone();
            t.workers.clear();
            t.settings.warm_start = false;
            t.set_warm_start(false)?;
            self.workers.resize(nw, t);
        }
        let (own_nr, own_off) = (&self.keepout_normals, &self.keepout_offsets);
        let workers = &mut self.workers[..nw];
        let run = |s: usize, w: &mut LinearMpc| -> Result<MpcSolution> {
            match keepouts {
                Some((nr, off)) => {
                    let nr = nr.slice(ndarray::s![s * nh..(s + 1) * nh, .., ..]);
                    let off = off.slice(ndarray::s![s * nh..(s + 1) * nh, ..]);
                    w.set_keepout(nr, off)?;
                }
                None => w.set_keepout(own_nr.view(), own_off.view())?,
            }
            w.has_solution = false;
            w.solve(x0s.row(s), x_ref, u_ref, None).cloned()
        };
        let results: Vec<Result<MpcSolution>> = if per_scenario {
            match par {
                #[cfg(feature = "rayon")]
                Par::Rayon(_) => {
                    use rayon::prelude::*;
                    par.install(|| {
                        workers
                            .par_iter_mut()
                            .enumerate()
                            .map(|(s, w)| run(s, w))
                            .collect()
                    })
                }
                _ => workers
                    .iter_mut()
                    .enumerate()
                    .map(|(s, w)| run(s, w))
                    .collect(),
            }
        } else if nw == 1 {
            let w = &mut workers[0];
            (0..scen).map(|s| run(s, w)).collect()
        } else {
            #[cfg(feature = "rayon")]
            {
                use rayon::prelude::*;
                use std::sync::atomic::{AtomicUsize, Ordering};
                let next = AtomicUsize::new(0);
                let mut done: Vec<(usize, Result<MpcSolution>)> = par.install(|| {
                    workers
                        .par_iter_mut()
                        .flat_map_iter(|w| {
                            let mut mine = Vec::new();
                            loop {
                                let s = next.fetch_add(1, Ordering::Relaxed);
                                if s >= scen {
                                    break mine;
                                }
                                mine.push((s, run(s, w)));
                            }
                        })
                        .collect()
                });
                // Every scenario index was taken exactly once.
                done.sort_unstable_by_key(|d| d.0);
                done.into_iter().map(|d| d.1).collect()
            }
            // Without the `rayon` feature `Par::Rayon` runs sequentially (as documented), and
            // `num_threads` is then 1.
            #[cfg(not(feature = "rayon"))]
            {
                let w = &mut workers[0];
                (0..scen).map(|s| run(s, w)).collect()
            }
        };
        results.into_iter().collect()
    }

    /// Switches warm/hot starting on or off.
    ///
    /// # Errors
    /// Never in practice (the settings were validated at set-up).
    pub fn set_warm_start(&mut self, on: bool) -> Result<()> {
        self.settings.warm_start = on;
        match &mut self.backend {
            Backend::ActiveSet(c) => c.set_settings(self.settings.active_set()),
            Backend::Riccati(r) => r.set_settings(self.settings.riccati()),
            Backend::Osqp(o) => o.set_warm_start(on),
        }
    }

    /// Status of the last solve.
    pub fn status(&self) -> SolveStatus {
        self.solution.info.status
    }
}

/// Copies a reference into `buf`; returns the number of rows used (1 for constant).
fn fill_reference(
    name: &'static str,
    r: Reference<'_>,
    buf: &mut Array2<f64>,
    stages: usize,
    dim: usize,
) -> Result<usize> {
    match r {
        Reference::Zero => {
            buf.row_mut(0).fill(0.0);
            Ok(1)
        }
        Reference::Constant(v) => {
            if v.len() != dim {
                return Err(Error::shape(
                    name,
                    format!("expected ({dim},) or ({stages}, {dim}), got ({},)", v.len()),
                ));
            }
            check_finite(name, v.iter())?;
            buf.row_mut(0).assign(&v);
            Ok(1)
        }
        Reference::PerStage(m) => {
            if m.dim() != (stages, dim) {
                return Err(Error::shape(
                    name,
                    format!("expected ({dim},) or ({stages}, {dim}), got {:?}", m.dim()),
                ));
            }
            check_finite(name, m.iter())?;
            buf.assign(&m);
            Ok(stages)
        }
    }
}

/// An owned reference (for bindings).
#[derive(Clone, Debug)]
pub enum OwnedReference {
    /// Zero.
    Zero,
    /// Constant.
    Constant(Array1<f64>),
    /// Per stage.
    PerStage(Array2<f64>),
}

impl OwnedReference {
    /// Borrowed view.
    pub fn view(&self) -> Reference<'_> {
        match self {
            OwnedReference::Zero => Reference::Zero,
            OwnedReference::Constant(v) => Reference::Constant(v.view()),
            OwnedReference::PerStage(m) => Reference::PerStage(m.view()),
        }
    }
}
