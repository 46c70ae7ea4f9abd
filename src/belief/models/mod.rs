//! Built-in models for the particle filter.

pub mod goal;
pub mod gp_motion;
pub mod linear_gaussian;
