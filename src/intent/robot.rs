//! The robot side of the pipeline: the MPC problem of each built-in model, its safe fallback
//! command and the quantities the separation check needs.

use ndarray::{array, Array1, Array2};

use crate::error::{Error, Result};
use crate::intent::config::{EngineConfig, RobotModel};
use crate::mpc::{models, KeepoutMode, MpcProblem, StageConstraints};

/// What the pipeline needs to know about the robot, derived once from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct Robot {
    pub(crate) model: RobotModel,
    /// Length of the robot state given to `step`.
    pub(crate) state_dim: usize,
    /// Length of the MPC state.
    pub(crate) nx: usize,
    pub(crate) nu: usize,
    pub(crate) position: [usize; 2],
    pub(crate) velocity: Option<[usize; 2]>,
    pub(crate) u_min: Array1<f64>,
    pub(crate) u_max: Array1<f64>,
    /// Braking deceleration for the stopping distance (m/s²; ∞ for velocity-controlled).
    pub(crate) brake_accel: f64,
}

impl Robot {
    pub(crate) fn new(cfg: &EngineConfig) -> Result<Self> {
        Ok(match &cfg.robot {
            RobotModel::DoubleIntegrator {
                max_accel,
                max_speed: _,
            } => Self {
                model: cfg.robot.clone(),
                state_dim: 4,
                nx: 4,
                nu: 2,
                position: [0, 1],
                velocity: Some([2, 3]),
                u_min: Array1::from_elem(2, -max_accel),
                u_max: Array1::from_elem(2, *max_accel),
                brake_accel: *max_accel,
            },
            RobotModel::ArmPoint { max_speed, .. } => Self {
                model: cfg.robot.clone(),
                state_dim: 2,
                nx: 2,
                nu: 2,
                position: [0, 1],
                velocity: None,
                u_min: Array1::from_elem(2, -max_speed),
                u_max: Array1::from_elem(2, *max_speed),
                brake_accel: f64::INFINITY,
            },
            RobotModel::Unicycle {
                max_speed,
                max_turn_rate,
                ..
            } => Self {
                model: cfg.robot.clone(),
                state_dim: 3,
                nx: 2,
                nu: 2,
                position: [0, 1],
                velocity: None,
                // Bounds of the command (v, ω); the plan's point velocity is boxed by max_speed.
                u_min: ndarray::array![-max_speed, -max_turn_rate],
                u_max: ndarray::array![*max_speed, *max_turn_rate],
                brake_accel: f64::INFINITY,
            },
            RobotModel::Custom(c) => Self {
                model: cfg.robot.clone(),
                state_dim: c.a_plan.nrows(),
                nx: c.a_plan.nrows(),
                nu: c.b_plan.ncols(),
                position: c.position,
                velocity: c.velocity,
                u_min: c.u_min.clone(),
                u_max: c.u_max.clone(),
                brake_accel: f64::INFINITY,
            },
        })
    }

    /// The MPC problem: track the robot's goal within the workspace and actuator limits.
    pub(crate) fn problem(&self, cfg: &EngineConfig, mode: KeepoutMode) -> Result<MpcProblem> {
        let t = &cfg.timing;
        let w = &cfg.scene.workspace;
        let c = &cfg.costs;
        let p = match &self.model {
            RobotModel::DoubleIntegrator { max_speed, .. } => {
                let (a, b) = models::double_integrator(2, t.plan_dt)?;
                let q = Array2::from_diag(&array![c.position, c.position, c.velocity, c.velocity]);
                let r = Array2::eye(2) * c.input;
                MpcProblem::new(a, b, q, r, t.horizon)?
                    .with_input_bounds(Some(self.u_min.clone()), Some(self.u_max.clone()))?
                    .with_state_bounds(
                        Some(array![w.x_min, w.y_min, -max_speed, -max_speed]),
                        Some(array![w.x_max, w.y_max, *max_speed, *max_speed]),
                    )?
            }
            RobotModel::ArmPoint { base, reach, .. } => {
                let a = Array2::eye(2);
                let b = Array2::eye(2) * t.plan_dt;
                let q = Array2::eye(2) * c.position;
                let r = Array2::eye(2) * c.input;
                // The reachable disc, inner approximation by an octagon of apothem r·cos(π/8).
                let apothem = reach * (std::f64::consts::PI / 8.0).cos();
                let mut cm = Array2::zeros((8, 2));
                let mut upper = Array1::zeros(8);
                for j in 0..8 {
                    let th = j as f64 * std::f64::consts::FRAC_PI_4;
                    let (nx, ny) = (th.cos(), th.sin());
                    cm[[j, 0]] = nx;
                    cm[[j, 1]] = ny;
                    upper[j] = apothem + nx * base[0] + ny * base[1];
                }
                // The terminal cost must exist without a stabilising feedback argument: the
                // single integrator is stable under any positive P; use the stage cost.
                MpcProblem::new(a, b, q.clone(), r, t.horizon)?
                    .with_terminal_cost(q)?
                    .with_input_bounds(Some(self.u_min.clone()), Some(self.u_max.clone()))?
                    .with_state_bounds(
                        Some(array![w.x_min, w.y_min]),
                        Some(array![w.x_max, w.y_max]),
                    )?
                    .with_stage_constraints(StageConstraints {
                        c: cm,
                        d: Array2::zeros((8, 2)),
                        lower: Array1::from_elem(8, f64::NEG_INFINITY),
                        upper,
                    })?
            }
            RobotModel::Unicycle { max_speed, .. } => {
                let q = Array2::eye(2) * c.position;
                let r = Array2::eye(2) * c.input;
                let v = Array1::from_elem(2, *max_speed);
                MpcProblem::new(
                    Array2::eye(2),
                    Array2::eye(2) * t.plan_dt,
                    q.clone(),
                    r,
                    t.horizon,
                )?
                .with_terminal_cost(q)?
                .with_input_bounds(Some(-&v), Some(v))?
                .with_state_bounds(
                    Some(array![w.x_min, w.y_min]),
                    Some(array![w.x_max, w.y_max]),
                )?
            }
            RobotModel::Custom(cr) => {
                let n = self.nx;
                let mut q = Array2::zeros((n, n));
                for &i in &cr.position {
                    q[[i, i]] = c.position;
                }
                if let Some(v) = cr.velocity {
                    for i in v {
                        q[[i, i]] = c.velocity;
                    }
                }
                let r = Array2::eye(self.nu) * c.input;
                let mut xmin = Array1::from_elem(n, f64::NEG_INFINITY);
                let mut xmax = Array1::from_elem(n, f64::INFINITY);
                xmin[cr.position[0]] = w.x_min;
                xmin[cr.position[1]] = w.y_min;
                xmax[cr.position[0]] = w.x_max;
                xmax[cr.position[1]] = w.y_max;
                MpcProblem::new(cr.a_plan.clone(), cr.b_plan.clone(), q, r, t.horizon)?
                    .with_input_bounds(Some(self.u_min.clone()), Some(self.u_max.clone()))?
                    .with_state_bounds(Some(xmin), Some(xmax))?
            }
        };
        p.with_keepout_mode(mode)
    }

    /// Writes the state reference for the robot goal `(gx, gy)` (zero velocity).
    pub(crate) fn reference(&self, goal: [f64; 2], out: &mut Array1<f64>) {
        out.fill(0.0);
        out[self.position[0]] = goal[0];
        out[self.position[1]] = goal[1];
    }

    /// Planar position of the robot state `x` (the body; for the unicycle not its
    /// look-ahead point).
    pub(crate) fn pos(&self, x: &[f64]) -> [f64; 2] {
        [x[self.position[0]], x[self.position[1]]]
    }

    /// The MPC state of the robot state `x` (the look-ahead point for the unicycle).
    pub(crate) fn mpc_state(&self, x: &[f64], out: &mut [f64]) {
        match &self.model {
            RobotModel::Unicycle { lookahead, .. } => {
                out[0] = x[0] + lookahead * x[2].cos();
                out[1] = x[1] + lookahead * x[2].sin();
            }
            _ => out.copy_from_slice(x),
        }
    }

    /// The command for the plan's first input `u` at robot state `x` (for the unicycle,
    /// `(v, ω) = diag(1, 1/L) R(θ)ᵀ ṗ`).
    pub(crate) fn command(&self, x: &[f64], u: &[f64], out: &mut [f64]) {
        match &self.model {
            RobotModel::Unicycle { lookahead, .. } => {
                let (s, c) = x[2].sin_cos();
                out[0] = c * u[0] + s * u[1];
                out[1] = (-s * u[0] + c * u[1]) / lookahead;
            }
            _ => out.copy_from_slice(u),
        }
    }

    /// Extra keep-out margin for the planned point (the unicycle's look-ahead distance).
    pub(crate) fn keepout_margin(&self) -> f64 {
        match &self.model {
            RobotModel::Unicycle { lookahead, .. } => *lookahead,
            _ => 0.0,
        }
    }

    /// The safe fallback: brake as hard as allowed toward zero velocity (double integrator),
    /// stop (velocity-controlled models), or the user's hold input.
    pub(crate) fn fallback(&self, x: &[f64], control_period: f64, out: &mut [f64]) {
        match &self.model {
            RobotModel::DoubleIntegrator { max_accel, .. } => {
                let (vx, vy) = (x[2], x[3]);
                // Direction from the velocity scaled to at most 1: −v / dt overflows to ∞
                // for a huge (finite) velocity, and ∞ · 0 gave a NaN command.
                let s = vx.abs().max(vy.abs());
                let (ux, uy) = if s > 0.0 {
                    (vx / s, vy / s)
                } else {
                    (0.0, 0.0)
                };
                let n = ux.hypot(uy);
                if s * n / control_period > *max_accel {
                    out[0] = -max_accel * ux / n;
                    out[1] = -max_accel * uy / n;
                } else {
                    out[0] = -vx / control_period;
                    out[1] = -vy / control_period;
                }
            }
            RobotModel::ArmPoint { .. } | RobotModel::Unicycle { .. } => out.fill(0.0),
            RobotModel::Custom(c) => {
                for (o, h) in out.iter_mut().zip(c.hold.iter()) {
                    *o = *h;
                }
            }
        }
    }

    /// The robot's planar velocity after applying `u` for one control period (for the
    /// separation check): exact for the built-ins; for custom models the state's velocity
    /// entries, or the plan's first displacement over `plan_dt`.
    pub(crate) fn velocity_after(
        &self,
        x: &[f64],
        u: &[f64],
        control_period: f64,
        plan_next: Option<&[f64]>,
        plan_dt: f64,
    ) -> [f64; 2] {
        match &self.model {
            RobotModel::DoubleIntegrator { .. } => {
                [x[2] + control_period * u[0], x[3] + control_period * u[1]]
            }
            RobotModel::ArmPoint { .. } => [u[0], u[1]],
            RobotModel::Unicycle { .. } => [u[0] * x[2].cos(), u[0] * x[2].sin()],
            RobotModel::Custom(_) => match (self.velocity, plan_next) {
                (Some(v), _) => [x[v[0]], x[v[1]]],
                (None, Some(nx)) => {
                    let (p0, p1) = (self.pos(x), self.pos(nx));
                    [(p1[0] - p0[0]) / plan_dt, (p1[1] - p0[1]) / plan_dt]
                }
                (None, None) => [0.0, 0.0],
            },
        }
    }

    /// Clamps `u` to the input bounds in place.
    pub(crate) fn clamp(&self, u: &mut [f64]) {
        for (i, v) in u.iter_mut().enumerate() {
            *v = v.clamp(self.u_min[i], self.u_max[i]);
        }
    }

    /// Checks a robot state given to `step`.
    pub(crate) fn check_state(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.state_dim {
            return Err(Error::shape(
                "robot_state",
                format_args!("expected length {}, got {}", self.state_dim, x.len()),
            ));
        }
        crate::error::check_finite("robot_state", x.iter())
    }
}

/// Simulates a built-in robot model exactly for `dt` under input `u` (the demo's plant).
///
/// # Errors
/// [`Error::InvalidValue`] for a custom model (no continuous-time model is known) or a `dt`
/// that is not positive and finite; [`Error::Shape`] naming `x` (not the model's state
/// length) or `u` (not 2 entries); [`Error::NonFinite`] naming `x` or `u`. On error `x` is
/// unchanged.
pub fn simulate(model: &RobotModel, x: &mut [f64], u: &[f64], dt: f64) -> Result<()> {
    let nx = match model {
        RobotModel::DoubleIntegrator { .. } => 4,
        RobotModel::ArmPoint { .. } => 2,
        RobotModel::Unicycle { .. } => 3,
        RobotModel::Custom(_) => x.len(),
    };
    if x.len() != nx {
        return Err(Error::shape(
            "x",
            format_args!("expected {nx} state entries, got {}", x.len()),
        ));
    }
    if u.len() != 2 {
        return Err(Error::shape(
            "u",
            format_args!("expected 2 inputs, got {}", u.len()),
        ));
    }
    crate::error::check_finite("x", x.iter())?;
    crate::error::check_finite("u", u.iter())?;
    crate::error::check_positive("dt", dt)?;
    match model {
        RobotModel::DoubleIntegrator { .. } => {
            for i in 0..2 {
                x[i] += dt * x[i + 2] + 0.5 * dt * dt * u[i];
                x[i + 2] += dt * u[i];
            }
            Ok(())
        }
        RobotModel::ArmPoint { .. } => {
            x[0] += dt * u[0];
            x[1] += dt * u[1];
            Ok(())
        }
        RobotModel::Unicycle { .. } => {
            // Exact arc for a constant (v, ω) over dt.
            let (v, w, th) = (u[0], u[1], x[2]);
            if (w * dt).abs() < 1e-9 {
                x[0] += v * dt * th.cos();
                x[1] += v * dt * th.sin();
            } else {
                x[0] += v / w * ((th + w * dt).sin() - th.sin());
                x[1] -= v / w * ((th + w * dt).cos() - th.cos());
            }
            x[2] = th + w * dt;
            Ok(())
        }
        RobotModel::Custom(_) => Err(Error::invalid_value(
            "robot",
            "custom models have no plant to simulate; step your own",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::belief::Goal;
    use crate::intent::Workspace;

    #[test]
    fn fallback_brakes_finitely_for_any_finite_velocity() {
        // Regression (issue 9, hypothesis): vy = 1.8e306 gave a NaN fallback command.
        let cfg = EngineConfig::new(
            vec![Goal {
                x: 1.0,
                y: 1.0,
                radius: 0.0,
            }],
            Workspace {
                x_min: 0.0,
                x_max: 6.0,
                y_min: 0.0,
                y_max: 4.0,
            },
        );
        let robot = Robot::new(&cfg).expect("the default robot is valid");
        let dt = cfg.timing.control_period;
        let mut out = [0.0; 2];
        for v in [
            [0.0, 0.0],
            [0.001, 0.0],
            [0.0, 1.797_693_134_862_316e306],
            [-f64::MAX, f64::MAX],
            [3.0, -4.0],
            [1e-300, -1e-300],
        ] {
            robot.fallback(&[1.0, 1.0, v[0], v[1]], dt, &mut out);
            let a = out[0].hypot(out[1]);
            assert!(out.iter().all(|u| u.is_finite()), "{v:?}: {out:?}");
            assert!(a <= 1.5 + 1e-12, "{v:?}: |a| = {a}");
            // against the velocity, and exactly stopping it when that is within the limit
            assert!(out[0] * v[0] + out[1] * v[1] <= 0.0, "{v:?}: {out:?}");
        }
        robot.fallback(&[1.0, 1.0, 0.003, -0.004], dt, &mut out);
        assert_eq!(out, [-0.003 / dt, 0.004 / dt]);
    }
}
