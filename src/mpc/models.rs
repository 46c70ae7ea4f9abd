//! Reference plant models for examples, tests and benchmarks, discretised exactly (zero-order
//! hold): a planar/spatial double integrator and a 12-state quadrotor linearised at hover.

use ndarray::{s, Array2};

use crate::error::{Error, Result};

/// Exact zero-order-hold discretisation of a nilpotent continuous pair (Ac, Bc) — true for
/// chains of integrators, as in both models here — by the terminating series
/// `Ad = Σ (Ac dt)^k / k!`, `Bd = Σ Ac^k Bc dt^{k+1} / (k+1)!`.
fn zoh_nilpotent(ac: &Array2<f64>, bc: &Array2<f64>, dt: f64) -> (Array2<f64>, Array2<f64>) {
    let n = ac.nrows();
    let mut ad = Array2::<f64>::eye(n);
    let mut bd = bc * dt;
    let mut term = Array2::<f64>::eye(n); // (Ac dt)^k / k!
    for k in 1..=n {
        term = term.dot(ac) * (dt / k as f64);
        if term.iter().all(|v| *v == 0.0) {
            break;
        }
        ad += &term;
        bd += &(term.dot(bc) * (dt / (k + 1) as f64));
    }
    (ad, bd)
}

/// A `dim`-dimensional double integrator (state `[p; v]`, input acceleration), step `dt`.
///
/// ```
/// let (a, b) = intent_engine::mpc::models::double_integrator(2, 0.1)?;
/// assert_eq!((a.dim(), b.dim()), ((4, 4), (4, 2)));
/// assert!((b[[0, 0]] - 0.005).abs() < 1e-15);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidValue`] when `dim` is zero or `dt` is not positive and finite.
pub fn double_integrator(dim: usize, dt: f64) -> Result<(Array2<f64>, Array2<f64>)> {
    if dim == 0 || !(dt.is_finite() && dt > 0.0) {
        return Err(Error::invalid_value(
            "double_integrator",
            "need dim ≥ 1 and dt > 0",
        ));
    }
    let mut ac = Array2::zeros((2 * dim, 2 * dim));
    ac.slice_mut(s![..dim, dim..]).assign(&Array2::eye(dim));
    let mut bc = Array2::zeros((2 * dim, dim));
    bc.slice_mut(s![dim.., ..]).assign(&Array2::eye(dim));
    Ok(zoh_nilpotent(&ac, &bc, dt))
}

/// A Crazyflie-class quadrotor (27 g, 46 mm arms) linearised at hover: state
/// `[x, y, z, φ, θ, ψ, vx, vy, vz, p, q, r]` (m, rad, m/s, rad/s), input the four motor thrusts
/// as deviations from hover in units of the hover thrust (so `u = -1` is a motor off).
///
/// ```
/// let (a, b) = intent_engine::mpc::models::quadrotor_hover(0.02)?;
/// assert_eq!((a.dim(), b.dim()), ((12, 12), (12, 4)));
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidValue`] when `dt` is not positive and finite.
pub fn quadrotor_hover(dt: f64) -> Result<(Array2<f64>, Array2<f64>)> {
    if !(dt.is_finite() && dt > 0.0) {
        return Err(Error::invalid_value("dt", "must be > 0"));
    }
    let (mass, g, arm) = (0.027, 9.81, 0.046);
    let (ixx, iyy, izz) = (16.6e-6, 16.6e-6, 29.3e-6);
    let kappa = 0.006; // yaw torque per unit thrust (m)
    let t_hover = mass * g / 4.0;
    let l = arm / std::f64::consts::SQRT_2;
    let mut ac = Array2::<f64>::zeros((12, 12));
    for i in 0..3 {
        ac[[i, 6 + i]] = 1.0; // position ← velocity
        ac[[3 + i, 9 + i]] = 1.0; // attitude ← body rates (small angles)
    }
    ac[[6, 4]] = g; // vx ← θ
    ac[[7, 3]] = -g; // vy ← φ
    let mut bc = Array2::<f64>::zeros((12, 4));
    // X configuration, motors 1..4 clockwise from front-right.
    let roll = [-1.0, -1.0, 1.0, 1.0];
    let pitch = [-1.0, 1.0, 1.0, -1.0];
    let yaw = [-1.0, 1.0, -1.0, 1.0];
    for j in 0..4 {
        bc[[8, j]] = t_hover / mass;
        bc[[9, j]] = t_hover * l * roll[j] / ixx;
        bc[[10, j]] = t_hover * l * pitch[j] / iyy;
        bc[[11, j]] = t_hover * kappa * yaw[j] / izz;
    }
    Ok(zoh_nilpotent(&ac, &bc, dt))
}
