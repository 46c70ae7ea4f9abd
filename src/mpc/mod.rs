//! Model-predictive control: linear(ised) MPC posed as a structured QP and solved warm-started
//! at control-loop rate.
//!
//! - [`MpcProblem`]: dynamics (LTI or LTV, affine), costs (terminal cost from the DARE by
//!   default), references, input/rate/state bounds, polytopic stage constraints and
//!   per-stage human keep-out half-spaces (soft, exact L1 penalty, by default).
//! - [`LinearMpc`]: one API over the solvers — (A) condensed dense dual active-set
//!   ([`dense`], [`condensed`](self)), (B) a horizon-structured solver, and OSQP — with
//!   hot/warm starts, iteration caps and wall-clock budgets, statuses instead of errors for
//!   solver outcomes, and many scenarios in parallel.
//! - [`qp::solve_qp`]: a general dense QP in the `qpsolvers` convention.
//!
//! The MPC takes constraints, not models or beliefs: keep-out half-spaces arrive as plain
//! per-stage rows.

mod condensed;
pub mod dense;
pub mod linear;
pub mod models;
pub mod ocp;
mod osqp_backend;
pub mod problem;
pub mod qp;
pub mod riccati;
pub mod status;
mod structured;

pub use linear::{LinearMpc, MpcSettings, MpcSolution, MpcSolverKind, OwnedReference, Reference};
pub use ocp::{OcpQp, StageRows};
pub use problem::{KeepoutMode, MpcProblem, StageConstraints};
pub use riccati::{RiccatiSettings, RiccatiSolver};
pub use status::{SolveInfo, SolveStatus};
