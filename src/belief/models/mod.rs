//! Built-in models for the particle filter.

pub mod goal;
pub mod linear_gaussian;
