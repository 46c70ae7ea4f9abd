//! The intent pipeline: observation in, safe decision out.
//!
//! [`IntentEngine::step`] runs, every control period:
//!
//! 1. **belief** — the person's observation updates a goal-inference particle filter
//!    ([`crate::belief::GoalInference`]); a missing observation is a prediction-only step, a
//!    long gap marks the person lost, a re-appearance re-initialises the belief;
//! 2. **prediction** — per-goal Gaussian predictions over the horizon from the particles'
//!    goal-weighted moments (plus an optional online GP correction of the motion model);
//! 3. **constraints** — keep-out half-spaces for the MPC from the prediction (per-goal chance
//!    constraints with the risk split by the union bound, or the scenario approach);
//! 4. **solve** — the robot's linear MPC ([`crate::mpc::LinearMpc`], hot-started);
//! 5. **safety** — speed-and-separation monitoring in the spirit of ISO/TS 15066 as a hard
//!    outer limit.
//!
//! Each stage has a time budget; invalid input, a failed solve or an overrun returns the safe
//! fallback command (brake / hold) with the reason, never an error or a panic, and never the
//! previous command presented as fresh. Nothing allocates per step after construction.
//!
//! [`scenario`] holds the embedded default scenario and the closed-loop simulation behind the
//! demo; [`replay`] runs the engine against recorded pedestrian tracks; [`loadtest`] drives many
//! engines at their control rate on every core and searches one machine's capacity.
//! [`telemetry`] keeps per-stage latency histograms and event counters
//! ([`IntentEngine::telemetry`]) and exports them in the Prometheus format, optionally over HTTP
//! ([`IntentEngine::serve_metrics`]).

pub mod config;
pub mod engine;
pub mod loadtest;
mod predict;
pub mod replay;
mod residual;
pub mod robot;
pub mod scenario;
pub mod telemetry;

pub use config::{
    CustomRobot, EngineConfig, GpResidualConfig, HumanForecast, HumanModel, KeepoutPolicy,
    RobotCosts, RobotModel, SafetyPolicy, Scene, Timing, Workspace,
};
pub use engine::{
    Decision, EngineCounters, FallbackReason, HumanStatus, IntentEngine, Stage, StageTimings,
};
pub use telemetry::{MetricsServer, StageLatency, TelemetryHandle, TelemetrySnapshot};
