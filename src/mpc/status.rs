//! Solver outcomes shared by every MPC / QP solver of the crate.
//!
//! Outcomes are statuses, not errors: a solver that hits its iteration cap or its wall-clock
//! budget still returns its best iterate together with residuals that say how good it is.

use std::time::Duration;

/// How a solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SolveStatus {
    /// Converged to the requested tolerance.
    Solved,
    /// Stopped close to, but not within, the requested tolerance (residuals within 100 × eps).
    SolvedInaccurate,
    /// Hit the iteration cap; the best iterate so far is returned.
    MaxIterations,
    /// Hit the wall-clock budget; the best iterate so far is returned.
    TimeLimit,
    /// The hard constraints admit no solution (soft rows are reported through their slacks).
    PrimalInfeasible,
    /// The problem is unbounded below (only possible with a singular cost).
    DualInfeasible,
    /// No solve has run yet, or the solve broke down numerically (a non-finite iterate even
    /// from a cold start): there is no usable iterate.
    #[default]
    Unsolved,
}

impl SolveStatus {
    /// The status as a short lowercase string (the Python spelling), e.g. `"max-iterations"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SolveStatus::Solved => "solved",
            SolveStatus::SolvedInaccurate => "solved-inaccurate",
            SolveStatus::MaxIterations => "max-iterations",
            SolveStatus::TimeLimit => "time-limit",
            SolveStatus::PrimalInfeasible => "primal-infeasible",
            SolveStatus::DualInfeasible => "dual-infeasible",
            SolveStatus::Unsolved => "unsolved",
        }
    }

    /// Whether the returned iterate is a solution (to the requested or a relaxed tolerance).
    pub fn is_solved(self) -> bool {
        matches!(self, SolveStatus::Solved | SolveStatus::SolvedInaccurate)
    }
}

impl std::fmt::Display for SolveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a solve reports besides its iterate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SolveInfo {
    /// How the solve ended.
    pub status: SolveStatus,
    /// Iterations taken (active-set changes, interior-point or ADMM iterations).
    pub iterations: usize,
    /// Wall-clock time of the solve.
    pub solve_time: Duration,
    /// Largest violation of a hard constraint (dynamics included), ∞-norm.
    pub primal_residual: f64,
    /// ∞-norm of the stationarity residual of the Lagrangian.
    pub dual_residual: f64,
    /// |primal objective − dual objective|.
    pub duality_gap: f64,
    /// Largest slack taken by a soft constraint (0 when every soft row is satisfied).
    pub max_violation: f64,
}
