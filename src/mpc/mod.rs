//! Model-predictive control: linear(ised) MPC posed as a structured QP and solved warm-started
//! at control-loop rate.
//!
//! The MPC takes constraints, not models or beliefs: human-safety keep-out half-spaces arrive as
//! plain per-stage rows.

pub mod dense;
pub mod ocp;
pub mod qp;
pub mod status;

pub use ocp::{OcpQp, StageRows};
pub use status::{SolveInfo, SolveStatus};
