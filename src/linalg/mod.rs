//! Shared numerics used by every core: parallelism control and SIMD building blocks.
//!
//! Nothing here depends on a core (`gp`, `mpc`, `belief`).

mod par;
pub mod simd;
pub mod tri;

pub use par::Par;
