//! The belief core: particle filters over human intent, Bayesian goal inference and
//! acquisition functions.
//!
//! - [`filter`]: a generic particle filter ([`ParticleFilter`]) over any [`Model`] —
//!   structure-of-arrays particles in fixed chunks, log-weights with a stable log-sum-exp,
//!   ESS-triggered resampling, a running `log Z`, rayon over chunks with per-chunk RNG streams
//!   (identical results for any thread count), no allocation per step;
//! - [`resample`](mod@resample): systematic (default), stratified, residual, multinomial and rejection
//!   resampling;
//! - [`models`]: goal inference ([`GoalModel`], [`GoalInference`]), a GP velocity-field motion
//!   model ([`GpMotion`]) and the linear-Gaussian
//!   model ([`LinearGaussian`]);
//! - [`acquisition`]: UCB, EI, log EI, PI and Thompson sampling over Gaussian posteriors and
//!   particle beliefs, and an expected-utility action selector;
//! - [`eth_ucy`]: a loader for ETH/UCY-format trajectories.

pub mod acquisition;
pub mod eth_ucy;
pub mod filter;
pub mod models;
pub mod noise;
pub mod resample;

pub use filter::{
    FilterSettings, Model, ParticleFilter, Particles, ParticlesRef, StepInfo, StepStatus, CHUNK,
};
pub use models::goal::{
    goal_probabilities_into, Goal, GoalInference, GoalModel, GoalModelSettings, GoalVelocity,
};
pub use models::gp_motion::GpMotion;
pub use models::linear_gaussian::LinearGaussian;
pub use resample::{resample, Resampling};
