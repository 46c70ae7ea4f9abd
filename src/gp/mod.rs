//! Gaussian-process inference.
//!
//! [`kernel`] holds the covariance functions (the inner loop of every GP): values,
//! diagonals and gradients with respect to log-hyperparameters. [`optimize`] is the bounded
//! multi-start L-BFGS used to fit hyperparameters. [`sparse`] is the sparse GP (Titsias'
//! VFE/SGPR bound with inducing points) for large data sets.

pub mod exact;
pub mod kernel;
pub mod optimize;
pub mod sparse;

pub use exact::{
    BackgroundFit, FitReport, GaussianProcess, GpSettings, GpStats, GpWorkspace, HyperBounds,
    Prediction,
};
pub use kernel::{Kernel, KernelSpec, KernelWorkspace, MaternNu};
pub use optimize::{minimize, OptimizeResult, OptimizeSettings};
pub use sparse::{InducingInit, SparseGaussianProcess, SparsePrediction};
