//! Configuration of an [`IntentEngine`](super::IntentEngine): the scene, the robot, the human
//! model, the safety policy and the timing. Every field has a documented default; call
//! [`EngineConfig::validate`] (done by the engine's constructor) to check ranges.

use std::time::Duration;

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use crate::belief::Goal;
use crate::error::{check_finite, check_positive, Error, Result};

/// The workspace's axis-aligned bounds (m); the robot's planned positions stay inside.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    /// Smallest x (m).
    pub x_min: f64,
    /// Largest x (m).
    pub x_max: f64,
    /// Smallest y (m).
    pub y_min: f64,
    /// Largest y (m).
    pub y_max: f64,
}

impl Workspace {
    /// Whether `(x, y)` lies inside (bounds included).
    #[must_use]
    pub fn contains(&self, x: f64, y: f64) -> bool {
        (self.x_min..=self.x_max).contains(&x) && (self.y_min..=self.y_max).contains(&y)
    }

    fn validate(&self) -> Result<()> {
        check_finite(
            "workspace",
            [self.x_min, self.x_max, self.y_min, self.y_max].iter(),
        )?;
        if self.x_min >= self.x_max || self.y_min >= self.y_max {
            return Err(Error::invalid_value(
                "workspace",
                format_args!("needs x_min < x_max and y_min < y_max, got {self:?}"),
            ));
        }
        Ok(())
    }
}

/// The shared scene: the person's candidate goals and the workspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// Candidate goals of the person (at least one).
    pub goals: Vec<Goal>,
    /// Workspace bounds.
    pub workspace: Workspace,
}

/// A user-given linear robot model `x⁺ = A x + B u`, discretised at the planning step
/// ([`Timing::plan_dt`]) for planning and at the control period for the safety check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CustomRobot {
    /// Dynamics at the planning step, `(n, n)`.
    pub a_plan: Array2<f64>,
    /// Input matrix at the planning step, `(n, m)`.
    pub b_plan: Array2<f64>,
    /// Indices of the planar position `(x, y)` in the state.
    pub position: [usize; 2],
    /// Indices of the planar velocity in the state, if the state has one (otherwise the
    /// velocity for the separation check is taken from the plan's first step).
    pub velocity: Option<[usize; 2]>,
    /// Input lower bounds `(m,)`.
    pub u_min: Array1<f64>,
    /// Input upper bounds `(m,)`.
    pub u_max: Array1<f64>,
    /// The input of the safe fallback (e.g. zero velocity); must lie within the bounds.
    pub hold: Array1<f64>,
}

/// The robot's model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RobotModel {
    /// A planar double integrator: state `(x, y, vx, vy)`, input acceleration `(ax, ay)`.
    DoubleIntegrator {
        /// Largest acceleration per axis (m/s², > 0); also the braking deceleration.
        max_accel: f64,
        /// Largest speed per axis (m/s, > 0).
        max_speed: f64,
    },
    /// An arm's end-effector as a planar point moved by velocity commands: state `(x, y)`,
    /// input velocity `(vx, vy)`; kept within `reach` of the base (an inscribed octagon).
    /// Suits a 2-link or 7-DoF arm under a Cartesian velocity controller.
    ArmPoint {
        /// Base position `(x, y)` (m).
        base: [f64; 2],
        /// Reach of the end effector from the base (m, > 0).
        reach: f64,
        /// Largest Cartesian speed per axis (m/s, > 0).
        max_speed: f64,
    },
    /// A kinematic unicycle (differential-drive base): state `(x, y, θ)`, command
    /// `(v, ω)`. Planned through its look-ahead point `p = (x, y) + L (cos θ, sin θ)`, whose
    /// velocity `ṗ = R(θ) diag(1, L) (v, ω)` is linear in the command at the current heading:
    /// the MPC plans `p` as a single integrator and the plan's first velocity maps back to
    /// `(v, ω)` exactly at the current state (feedback linearisation), so the QP never changes.
    Unicycle {
        /// Largest forward speed (m/s, > 0); reversing is allowed at the same speed.
        max_speed: f64,
        /// Largest turn rate (rad/s, > 0).
        max_turn_rate: f64,
        /// Look-ahead distance `L` (m, > 0); keep-outs are widened by it.
        lookahead: f64,
    },
    /// A user-given linear model (boxed: it holds matrices).
    Custom(Box<CustomRobot>),
}

impl Default for RobotModel {
    fn default() -> Self {
        RobotModel::DoubleIntegrator {
            max_accel: 1.5,
            max_speed: 1.0,
        }
    }
}

/// Robot cost weights of the MPC.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobotCosts {
    /// Weight on the position error to the robot's goal (≥ 0).
    pub position: f64,
    /// Weight on velocity (≥ 0; ignored by models without a velocity state).
    pub velocity: f64,
    /// Weight on the input (> 0).
    pub input: f64,
}

impl Default for RobotCosts {
    fn default() -> Self {
        Self {
            position: 1.0,
            velocity: 0.1,
            input: 0.2,
        }
    }
}

/// An optional Gaussian-process correction of the motion model learned online from the
/// person's own track: a GP from position to the velocity the goal model failed to predict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GpResidualConfig {
    /// Observations between two training points (the residual is measured over this span).
    pub stride: usize,
    /// Training points kept (a sliding window; O(n²) per update).
    pub window: usize,
    /// Kernel length scale (m).
    pub length_scale: f64,
    /// Prior variance of the residual velocity ((m/s)²).
    pub variance: f64,
}

impl Default for GpResidualConfig {
    fn default() -> Self {
        Self {
            stride: 20,
            window: 30,
            length_scale: 1.0,
            variance: 0.04,
        }
    }
}

/// The human model: a goal-inference particle filter (see [`crate::belief::GoalModel`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanModel {
    /// Particles (default 1000).
    pub n_particles: usize,
    /// Time between the person's observations (s); the belief's time step.
    pub observation_period: f64,
    /// Nominal walking speed (m/s).
    pub speed: f64,
    /// Rate at which the velocity relaxes toward the goal direction (1/s).
    pub rationality: f64,
    /// Velocity noise intensity (m/s per √s).
    pub velocity_noise: f64,
    /// Observation noise standard deviation (m).
    pub obs_noise: f64,
    /// Per-step probability of switching goal.
    pub switch_prob: f64,
    /// After this long without an observation the person counts as gone (s).
    pub lost_after: f64,
    /// Seed of the particle filter and the trajectory samples.
    pub seed: u64,
    /// The optional online GP residual.
    pub gp_residual: Option<GpResidualConfig>,
    /// Goal prior, one weight per goal (normalised; `None`: uniform), e.g. how often each
    /// exit is taken. Switching persons draw their new goal from it.
    #[serde(default)]
    pub goal_prior: Option<Vec<f64>>,
    /// Motion settings for the prediction stage (`None`: the belief's own), see
    /// [`crate::belief::GoalInference::set_forecast_settings`].
    #[serde(default)]
    pub forecast: Option<HumanForecast>,
}

/// The prediction stage's motion model, when it differs from the belief's: e.g. each person's
/// own speed (`GoalVelocity::Heading`) and a slow turn toward the goal predict real walkers
/// a few seconds ahead better than the belief's goal-separating settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HumanForecast {
    /// Rate at which the velocity relaxes toward the goal direction (1/s).
    pub rationality: f64,
    /// Velocity noise intensity (m/s per √s).
    pub velocity_noise: f64,
    /// Target velocity model.
    pub velocity: crate::belief::GoalVelocity,
}

impl HumanModel {
    /// The belief's goal-model settings.
    #[must_use]
    pub fn goal_settings(&self) -> crate::belief::GoalModelSettings {
        crate::belief::GoalModelSettings {
            dt: self.observation_period,
            speed: self.speed,
            rationality: self.rationality,
            velocity_noise: self.velocity_noise,
            obs_noise: self.obs_noise,
            switch_prob: self.switch_prob,
            ..crate::belief::GoalModelSettings::default()
        }
    }

    /// The belief's goal model over `goals`, with [`HumanModel::goal_prior`] when set.
    ///
    /// # Errors
    /// Invalid goals or settings; a prior of the wrong length or with invalid weights
    /// (reported as `goal_prior`).
    pub fn goal_model(&self, goals: &[crate::belief::Goal]) -> Result<crate::belief::GoalModel> {
        let m = crate::belief::GoalModel::new(goals, self.goal_settings())?;
        match &self.goal_prior {
            Some(p) => m.with_prior(p).map_err(|e| e.renamed(|_| "goal_prior")),
            None => Ok(m),
        }
    }

    /// The prediction stage's settings, if [`HumanModel::forecast`] is set.
    #[must_use]
    pub fn forecast_settings(&self) -> Option<crate::belief::GoalModelSettings> {
        self.forecast
            .as_ref()
            .map(|f| crate::belief::GoalModelSettings {
                rationality: f.rationality,
                velocity_noise: f.velocity_noise,
                velocity: f.velocity,
                ..self.goal_settings()
            })
    }
}

impl Default for HumanModel {
    fn default() -> Self {
        Self {
            n_particles: 1000,
            observation_period: 0.01,
            speed: 1.2,
            rationality: 1.0,
            velocity_noise: 0.5,
            obs_noise: 0.05,
            switch_prob: 0.0,
            lost_after: 1.0,
            seed: 0,
            gp_residual: None,
            goal_prior: None,
            forecast: None,
        }
    }
}

/// How the predicted human distribution becomes keep-out constraints in the MPC.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum KeepoutPolicy {
    /// No keep-out constraints (the separation check alone protects the person).
    None,
    /// One chance constraint per likely goal and stage: the linearised keep-out
    /// `nᵀ(p − μ) ≥ d + κ σₙ`, with the risk `risk` split over goals by the union bound.
    Chance {
        /// Allowed probability of entering the minimum separation per stage (0 < risk < 0.5).
        risk: f64,
    },
    /// One constraint per stage that every one of `samples` sampled human positions
    /// satisfies (the scenario approach).
    Scenario {
        /// Sampled trajectories (≥ 1).
        samples: usize,
    },
}

impl Default for KeepoutPolicy {
    fn default() -> Self {
        KeepoutPolicy::Chance { risk: 0.05 }
    }
}

/// The safety policy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SafetyPolicy {
    /// Minimum separation between the robot's and the person's reference points (m, > 0).
    pub min_separation: f64,
    /// Speed-and-separation monitoring (ISO/TS 15066): the person's assumed speed (m/s;
    /// ISO 13855 uses 1.6).
    pub human_speed: f64,
    /// Reaction time of the robot system (s): detection plus one control period.
    pub reaction_time: f64,
    /// Intrusion distance `C` (m) added to the protective distance.
    pub intrusion: f64,
    /// Position uncertainty of the person and robot, `Z_d + Z_r` (m).
    pub position_uncertainty: f64,
    /// How the prediction enters the MPC.
    pub keepout: KeepoutPolicy,
    /// L1 weight of the soft keep-outs (exact penalty, one slack per row); hard when `None`.
    pub soft_penalty: Option<f64>,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        Self {
            min_separation: 0.5,
            human_speed: 1.6,
            reaction_time: 0.1,
            intrusion: 0.0,
            position_uncertainty: 0.05,
            keepout: KeepoutPolicy::default(),
            soft_penalty: Some(1e4),
        }
    }
}

/// Control timing and the per-stage budgets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// The control period (s): the robot applies each command for this long.
    pub control_period: f64,
    /// The MPC's planning step (s).
    pub plan_dt: f64,
    /// MPC horizon in planning steps (the prediction horizon too).
    pub horizon: usize,
    /// Budget of the belief stage (update or prediction-only steps).
    pub belief_budget: Duration,
    /// Budget of the prediction and constraint stages together.
    pub prediction_budget: Duration,
    /// Budget of the QP solve (also the solver's wall-clock limit).
    pub solve_budget: Duration,
    /// Budget of the whole step.
    pub step_budget: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            control_period: 0.01,
            plan_dt: 0.1,
            horizon: 20,
            belief_budget: Duration::from_micros(1500),
            prediction_budget: Duration::from_micros(1000),
            solve_budget: Duration::from_micros(2000),
            step_budget: Duration::from_micros(4000),
        }
    }
}

/// Everything an [`IntentEngine`](super::IntentEngine) needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Goals and workspace.
    pub scene: Scene,
    /// Robot model.
    pub robot: RobotModel,
    /// Robot cost weights.
    pub costs: RobotCosts,
    /// Human model.
    pub human: HumanModel,
    /// Safety policy.
    pub safety: SafetyPolicy,
    /// Timing and budgets.
    pub timing: Timing,
    /// Sampled human trajectories reported in each decision (and used by the scenario policy).
    pub samples: usize,
    /// Record telemetry (latency histograms and counters, [`IntentEngine::telemetry`](super::IntentEngine::telemetry));
    /// default on. Off, a step skips recording entirely (to measure its overhead, or for the
    /// last fraction of a percent); [`IntentEngine::set_telemetry`](super::IntentEngine::set_telemetry)
    /// switches it at run time. Configurations serialised without it read as on.
    #[serde(default = "telemetry_default")]
    pub telemetry: bool,
}

fn telemetry_default() -> bool {
    true
}

impl EngineConfig {
    /// A configuration with the given goals and workspace and defaults elsewhere.
    #[must_use]
    pub fn new(goals: Vec<Goal>, workspace: Workspace) -> Self {
        Self {
            scene: Scene { goals, workspace },
            robot: RobotModel::default(),
            costs: RobotCosts::default(),
            human: HumanModel::default(),
            safety: SafetyPolicy::default(),
            timing: Timing::default(),
            samples: 16,
            telemetry: true,
        }
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] / [`Error::Shape`] / [`Error::NonFinite`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.scene.goals.is_empty() {
            return Err(Error::invalid_value("goals", "need at least one goal"));
        }
        for g in &self.scene.goals {
            check_finite("goals", [g.x, g.y, g.radius].iter())?;
            if g.radius < 0.0 {
                return Err(Error::invalid_value("goals", "radius must be >= 0"));
            }
        }
        self.scene.workspace.validate()?;
        match &self.robot {
            RobotModel::DoubleIntegrator {
                max_accel,
                max_speed,
            } => {
                check_positive("max_accel", *max_accel)?;
                check_positive("max_speed", *max_speed)?;
            }
            RobotModel::ArmPoint {
                base,
                reach,
                max_speed,
            } => {
                check_finite("base", base.iter())?;
                check_positive("reach", *reach)?;
                check_positive("max_speed", *max_speed)?;
            }
            RobotModel::Unicycle {
                max_speed,
                max_turn_rate,
                lookahead,
            } => {
                check_positive("max_speed", *max_speed)?;
                check_positive("max_turn_rate", *max_turn_rate)?;
                check_positive("lookahead", *lookahead)?;
            }
            RobotModel::Custom(c) => c.validate()?,
        }
        let c = &self.costs;
        for (name, v) in [
            ("position_weight", c.position),
            ("velocity_weight", c.velocity),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_value(name, "must be >= 0 and finite"));
            }
        }
        check_positive("input_weight", c.input)?;
        let h = &self.human;
        if h.n_particles == 0 {
            return Err(Error::invalid_value("n_particles", "must be >= 1"));
        }
        check_positive("observation_period", h.observation_period)?;
        // The goal model's own checks (speed, rationality, noises, switch_prob, the prior's
        // length and weights, the forecast settings), as the engine builds it, so `validate`
        // agrees with `IntentEngine::new`.
        h.goal_model(&self.scene.goals)?;
        if let Some(f) = h.forecast_settings() {
            f.validate()
                .map_err(|e| Error::invalid_value("forecast", e))?;
        }
        check_positive("lost_after", h.lost_after)?;
        if let Some(g) = &h.gp_residual {
            if g.stride == 0 || g.window < 2 {
                return Err(Error::invalid_value(
                    "gp_residual",
                    "needs stride >= 1 and window >= 2",
                ));
            }
            check_positive("gp_residual.length_scale", g.length_scale)?;
            check_positive("gp_residual.variance", g.variance)?;
        }
        let s = &self.safety;
        check_positive("min_separation", s.min_separation)?;
        for (name, v) in [
            ("human_speed", s.human_speed),
            ("reaction_time", s.reaction_time),
            ("intrusion", s.intrusion),
            ("position_uncertainty", s.position_uncertainty),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_value(name, "must be >= 0 and finite"));
            }
        }
        match s.keepout {
            KeepoutPolicy::Chance { risk } if !(risk > 0.0 && risk < 0.5) => {
                return Err(Error::invalid_value("risk", "must be in (0, 0.5)"));
            }
            KeepoutPolicy::Scenario { samples: 0 } => {
                return Err(Error::invalid_value("samples", "must be >= 1"));
            }
            _ => {}
        }
        if let Some(l1) = s.soft_penalty {
            check_positive("soft_penalty", l1)?;
        }
        let t = &self.timing;
        check_positive("control_period", t.control_period)?;
        check_positive("plan_dt", t.plan_dt)?;
        if t.horizon == 0 {
            return Err(Error::invalid_value("horizon", "must be >= 1"));
        }
        for (name, d) in [
            ("belief_budget", t.belief_budget),
            ("prediction_budget", t.prediction_budget),
            ("solve_budget", t.solve_budget),
            ("step_budget", t.step_budget),
        ] {
            if d.is_zero() {
                return Err(Error::invalid_value(name, "must be > 0"));
            }
        }
        Ok(())
    }
}

impl CustomRobot {
    fn validate(&self) -> Result<()> {
        let n = self.a_plan.nrows();
        if n == 0 || self.a_plan.ncols() != n {
            return Err(Error::shape(
                "a_plan",
                format_args!("must be square and non-empty, got {:?}", self.a_plan.dim()),
            ));
        }
        let m = self.b_plan.ncols();
        if self.b_plan.nrows() != n || m == 0 {
            return Err(Error::shape(
                "b_plan",
                format_args!("expected ({n}, m >= 1), got {:?}", self.b_plan.dim()),
            ));
        }
        check_finite("a_plan", self.a_plan.iter())?;
        check_finite("b_plan", self.b_plan.iter())?;
        let idx_ok = |i: &[usize; 2]| i[0] < n && i[1] < n && i[0] != i[1];
        if !idx_ok(&self.position) {
            return Err(Error::invalid_value(
                "position",
                format_args!("two distinct state indices < {n}, got {:?}", self.position),
            ));
        }
        if let Some(v) = &self.velocity {
            if !idx_ok(v) {
                return Err(Error::invalid_value(
                    "velocity",
                    format_args!("two distinct state indices < {n}, got {v:?}"),
                ));
            }
        }
        for (name, v) in [
            ("u_min", &self.u_min),
            ("u_max", &self.u_max),
            ("hold", &self.hold),
        ] {
            if v.len() != m {
                return Err(Error::shape(
                    name,
                    format_args!("expected length {m}, got {}", v.len()),
                ));
            }
        }
        check_finite("hold", self.hold.iter())?;
        for i in 0..m {
            if self.u_min[i].is_nan() || self.u_max[i].is_nan() || self.u_min[i] > self.u_max[i] {
                return Err(Error::invalid_value(
                    "u_min/u_max",
                    format_args!("need u_min <= u_max (input {i})"),
                ));
            }
            if !(self.u_min[i]..=self.u_max[i]).contains(&self.hold[i]) {
                return Err(Error::invalid_value(
                    "hold",
                    format_args!("input {i} outside its bounds"),
                ));
            }
        }
        Ok(())
    }
}
