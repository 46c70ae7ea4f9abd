//! Gaussian-process inference.
//!
//! [`kernel`] holds the covariance functions (the inner loop of every GP): values,
//! diagonals and gradients with respect to log-hyperparameters.

pub mod kernel;

pub use kernel::{Kernel, KernelWorkspace, MaternNu};
