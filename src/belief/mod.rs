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

/// `check_finite` with a vectorised fast path: `Σ 0·x` is NaN iff some `x` is NaN or infinite,
/// so the common (valid) case is one SIMD pass and only a failure pays for the index search.
pub(crate) fn check_finite_fast(name: &'static str, values: &[f64]) -> crate::Result<()> {
    let mut acc = [0.0f64; 8];
    let mut it = values.chunks_exact(8);
    for c in &mut it {
        for k in 0..8 {
            acc[k] += c[k] * 0.0;
        }
    }
    let mut t = acc.iter().sum::<f64>();
    for &x in it.remainder() {
        t += x * 0.0;
    }
    if t == 0.0 {
        Ok(())
    } else {
        crate::error::check_finite(name, values)
    }
}
