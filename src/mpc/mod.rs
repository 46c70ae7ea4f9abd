//! Model-predictive control: linear(ised) MPC posed as a structured QP and solved warm-started
//! at control-loop rate.
//!
//! The MPC takes constraints, not models or beliefs: human-safety keep-out half-spaces arrive as
//! plain per-stage rows.

pub mod ocp;
pub mod riccati;
pub mod status;

pub use ocp::{OcpQp, StageRows};
pub use riccati::{RiccatiSettings, RiccatiSolver};
pub use status::{SolveInfo, SolveStatus};
