//! # intent_engine
//!
//! A numerical inference engine for real-time human intent recognition: a robot sharing space
//! with a person calls it inside its control loop to infer which goal the person is heading
//! for, predict where they will be (with calibrated uncertainty) and plan a safe action.
//!
//! This release provides the foundation the cores are built on:
//! - [`gp::kernel`]: covariance kernels (squared exponential, Matérn ½/3⁄2/5⁄2 with ARD,
//!   rational quadratic, periodic, linear, constant, white; sums and products), their
//!   diagonals and gradients with respect to log-hyperparameters — SIMD hot loops with
//!   runtime dispatch, rayon over row blocks;
//! - [`linalg`]: shared numerics ([`Par`], SIMD building blocks);
//! - [`backend`]: compute-backend selection (CPU, or CUDA behind the `gpu` feature);
//! - [`Error`]: one error type; bad input is an error, never a panic.
//!
//! ```
//! use intent_engine::{gp::{Kernel, MaternNu}, Par};
//! use ndarray::array;
//!
//! let k = Kernel::matern(MaternNu::FiveHalves, 1.0, &[0.5, 2.0])?;
//! let x = array![[0.0, 0.0], [0.5, 1.0]];
//! let kxx = k.matrix(x.view(), None, Par::Seq)?;
//! assert_eq!(kxx.dim(), (2, 2));
//! assert!((kxx[[1, 0]] - kxx[[0, 1]]).abs() < 1e-15);
//! # Ok::<(), intent_engine::Error>(())
//! ```
#![warn(rustdoc::broken_intra_doc_links)]

pub mod backend;
pub mod belief;
pub mod error;
pub mod gp;
pub mod intent;
pub mod linalg;
pub mod mpc;
#[cfg(feature = "python")]
mod python;

pub use backend::Backend;
pub use error::{Error, ErrorKind, Result};
pub use linalg::Par;

/// The embedded default scenario (`data/default_scenario.json`): a shared workcell with three
/// goals, a scripted walking person and a planar double-integrator robot.
pub const DEFAULT_SCENARIO_JSON: &str = include_str!("../data/default_scenario.json");

/// The crate version, as in `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
