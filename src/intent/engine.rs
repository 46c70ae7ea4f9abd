//! [`IntentEngine`]: one decision per control period.

use std::fmt;
use std::time::{Duration, Instant};

use ndarray::{Array1, Array2, Array3};

use crate::belief::{FilterSettings, Goal, GoalInference, StepStatus};
use crate::error::{check_finite, Error, Result};
use crate::intent::config::{EngineConfig, KeepoutPolicy, RobotModel};
use crate::intent::predict::{norm_ppf, Predictor};
use crate::intent::residual::ResidualGp;
use crate::intent::robot::Robot;
use crate::intent::telemetry::{
    stage_bit, CountingAllocator, MetricsServer, Recorder, StepEvents, TelemetryHandle,
    TelemetrySnapshot,
};
use crate::linalg::Par;
use crate::mpc::{KeepoutMode, LinearMpc, MpcSettings, Reference, SolveStatus};

/// A stage of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Belief update (or prediction-only steps).
    Belief,
    /// Prediction of the person's positions.
    Prediction,
    /// Keep-out constraints from the prediction.
    Constraints,
    /// The MPC solve.
    Solve,
    /// Separation check and command limits.
    Safety,
    /// The whole step.
    Total,
}

impl Stage {
    /// Lowercase name, e.g. `"belief"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Belief => "belief",
            Stage::Prediction => "prediction",
            Stage::Constraints => "constraints",
            Stage::Solve => "solve",
            Stage::Safety => "safety",
            Stage::Total => "total",
        }
    }
}

/// Why a decision carries the safe fallback command instead of a fresh plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FallbackReason {
    /// The robot state had the wrong length or a non-finite entry (the last valid state is
    /// braked from).
    InvalidRobotState,
    /// The observation had a non-finite entry (the belief is left as it was).
    InvalidObservation,
    /// `t` was not finite or did not increase.
    InvalidTime,
    /// The belief could not be updated.
    BeliefFailed,
    /// The QP solve ended without a solution.
    SolverFailed(SolveStatus),
    /// The solver's plan had a non-finite entry (a solver bug; never acted on).
    NonFiniteSolution,
    /// A stage ran past its budget.
    Overrun {
        /// The stage.
        stage: Stage,
        /// Time it took.
        elapsed: Duration,
        /// Its budget.
        budget: Duration,
    },
    /// Speed-and-separation monitoring: the robot approaches the person closer than the
    /// protective distance.
    ProtectiveStop {
        /// Current separation (m).
        separation: f64,
        /// Protective distance at the commanded approach speed (m).
        required: f64,
    },
}

impl FallbackReason {
    /// A short stable code, e.g. `"overrun"`, `"protective-stop"`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            FallbackReason::InvalidRobotState => "invalid-robot-state",
            FallbackReason::InvalidObservation => "invalid-observation",
            FallbackReason::InvalidTime => "invalid-time",
            FallbackReason::BeliefFailed => "belief-failed",
            FallbackReason::SolverFailed(_) => "solver-failed",
            FallbackReason::NonFiniteSolution => "non-finite-solution",
            FallbackReason::Overrun { .. } => "overrun",
            FallbackReason::ProtectiveStop { .. } => "protective-stop",
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::InvalidRobotState => {
                f.write_str("invalid robot state (wrong length or non-finite)")
            }
            FallbackReason::InvalidObservation => {
                f.write_str("invalid human observation (non-finite)")
            }
            FallbackReason::InvalidTime => f.write_str("time is not finite or did not increase"),
            FallbackReason::BeliefFailed => f.write_str("belief update failed"),
            FallbackReason::SolverFailed(s) => write!(f, "MPC solve ended {s}"),
            FallbackReason::NonFiniteSolution => f.write_str("MPC plan is not finite"),
            FallbackReason::Overrun {
                stage,
                elapsed,
                budget,
            } => write!(
                f,
                "{} stage overran its budget ({:.0} µs > {:.0} µs)",
                stage.as_str(),
                elapsed.as_secs_f64() * 1e6,
                budget.as_secs_f64() * 1e6
            ),
            FallbackReason::ProtectiveStop {
                separation,
                required,
            } => write!(
                f,
                "protective stop: separation {separation:.2} m < protective distance {required:.2} m"
            ),
        }
    }
}

/// What the engine knows about the person.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum HumanStatus {
    /// Never observed (or forgotten after being lost): no prediction, no constraints.
    Unseen,
    /// Observed at this step.
    Tracked,
    /// Not observed at this step; predicted from the last observation `since` seconds ago.
    Predicted {
        /// Time since the last observation (s).
        since: f64,
    },
    /// Not observed for longer than the configured `lost_after`: treated as gone.
    Lost,
}

impl HumanStatus {
    /// Lowercase name, e.g. `"tracked"`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            HumanStatus::Unseen => "unseen",
            HumanStatus::Tracked => "tracked",
            HumanStatus::Predicted { .. } => "predicted",
            HumanStatus::Lost => "lost",
        }
    }

    /// Whether the person is considered present (tracked or predicted).
    #[must_use]
    pub fn is_present(&self) -> bool {
        matches!(self, HumanStatus::Tracked | HumanStatus::Predicted { .. })
    }
}

/// Time spent in each stage of one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    /// Belief update.
    pub belief: Duration,
    /// Prediction.
    pub prediction: Duration,
    /// Keep-out constraints.
    pub constraints: Duration,
    /// MPC solve.
    pub solve: Duration,
    /// Separation check.
    pub safety: Duration,
    /// The whole step.
    pub total: Duration,
}

/// The decision of one step. Arrays are row-major; predictions are at the stage times
/// `t + k·plan_dt`, `k = 1..=H`, and are NaN while no person is present.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Time of the step (s).
    pub t: f64,
    /// The robot command to apply for the next control period `(m,)`.
    pub command: Vec<f64>,
    /// `true` when `command` is this step's MPC plan; `false` when it is the fallback.
    pub fresh: bool,
    /// Why the fallback was used, if it was.
    pub fallback: Option<FallbackReason>,
    /// The person's status.
    pub human: HumanStatus,
    /// Goal posterior `(K,)` (the prior while no person is present).
    pub goal_probabilities: Vec<f64>,
    /// Predicted mean position `(H, 2)` (the goal mixture's mean).
    pub predicted_mean: Vec<f64>,
    /// Predicted position covariance `(H, 2, 2)` (the mixture's).
    pub predicted_cov: Vec<f64>,
    /// Per-goal predicted mean position `(K, H, 2)`.
    pub goal_means: Vec<f64>,
    /// Sampled position trajectories `(S, H, 2)`.
    pub samples: Vec<f64>,
    /// The robot's planned positions `(H + 1, 2)` (stage 0 = now).
    pub robot_plan: Vec<f64>,
    /// Current distance between robot and person (m; ∞ without a person).
    pub separation: f64,
    /// Protective distance of the separation check at the commanded approach speed (m).
    pub protective_distance: f64,
    /// Whether speed-and-separation monitoring reduced the command's approach speed.
    pub speed_limited: bool,
    /// Smallest distance between the plan and a likely goal's predicted mean (m; ∞ without
    /// a person).
    pub predicted_min_separation: f64,
    /// How the MPC solve ended (`Unsolved` if it did not run).
    pub solver_status: SolveStatus,
    /// Solver iterations.
    pub solver_iterations: usize,
    /// Time per stage.
    pub timings: StageTimings,
}

/// Running counts since construction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineCounters {
    /// Steps taken.
    pub steps: u64,
    /// Steps that returned the fallback.
    pub fallbacks: u64,
    /// Of which overruns.
    pub overruns: u64,
    /// Of which protective stops.
    pub protective_stops: u64,
    /// Steps whose command the separation check slowed down.
    pub speed_limited: u64,
    /// Observations assimilated.
    pub observations: u64,
    /// Steps without an observation.
    pub missing_observations: u64,
    /// Belief resamplings.
    pub resamplings: u64,
    /// Belief re-initialisations (all weights collapsed, or the person re-appeared).
    pub reinitialisations: u64,
}

/// The intent pipeline: observation in, decision out (see the [module docs](super)).
#[derive(Debug)]
pub struct IntentEngine {
    cfg: EngineConfig,
    robot: Robot,
    gi: GoalInference,
    mpc: LinearMpc,
    pred: Predictor,
    residual: Option<ResidualGp>,
    rows: usize,
    normals: Array3<f64>,
    offsets: Array2<f64>,
    x0: Vec<f64>,
    xm: Vec<f64>,
    um: Vec<f64>,
    x_ref: Array1<f64>,
    robot_goal: [f64; 2],
    last_t: f64,
    belief_t: f64,
    last_obs_t: f64,
    last_obs: [f64; 2],
    decision: Decision,
    counters: EngineCounters,
    telemetry: Recorder,
    events: StepEvents,
}

impl IntentEngine {
    /// Builds the engine: validates the configuration, sets up the particle filter, the MPC
    /// (factorised once) and every workspace. The robot's goal starts at the workspace centre.
    ///
    /// # Errors
    /// [`EngineConfig::validate`]'s errors and the MPC's set-up errors.
    ///
    /// ```
    /// use intent_engine::belief::Goal;
    /// use intent_engine::intent::{EngineConfig, IntentEngine, Workspace};
    /// let ws = Workspace { x_min: 0.0, x_max: 6.0, y_min: 0.0, y_max: 4.0 };
    /// let mut engine = IntentEngine::new(EngineConfig::new(
    ///     vec![Goal::point(5.0, 3.0), Goal::point(5.0, 1.0)], ws))?;
    /// engine.set_robot_goal([1.0, 3.0])?;
    /// let mut t = 0.0;
    /// for i in 0..50 {
    ///     t += 0.01;
    ///     let person = [0.5 + 1.2 * t, 2.0 + 1.0 * t];      // heading up-right
    ///     let d = engine.step(Some(person), &[1.0, 1.0, 0.0, 0.0], t);
    ///     // A fresh plan, or (e.g. in an unoptimised build) the fallback with its reason.
    ///     assert!(d.fresh || d.fallback.is_some());
    ///     assert!(d.command.iter().all(|c| c.is_finite()));
    /// }
    /// let p = engine.decision().goal_probabilities.clone();
    /// assert!(p[0] > p[1], "{p:?}");
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn new(cfg: EngineConfig) -> Result<Self> {
        cfg.validate()?;
        let robot = Robot::new(&cfg)?;
        let gi = Self::make_belief(&cfg)?;
        let k = cfg.scene.goals.len();
        let h = cfg.timing.horizon;
        let rows = keepout_rows(&cfg.safety.keepout, k);
        let settings = MpcSettings {
            time_limit: Some(cfg.timing.solve_budget),
            // The wall-clock budget is the real cap; a cold solve with many violated
            // keep-outs (a person appearing next to the robot) can need ~1000 active-set steps.
            max_iter: 20_000,
            ..MpcSettings::default()
        };
        let mode = match cfg.safety.soft_penalty {
            // A slack per row, not KeepoutMode::SoftStage: one slack per stage makes the QP
            // ~1.3x faster here, but penalising only a stage's worst row left a robot that a
            // person was overtaking planning at 0.1–0.2 m for a second (an ETH/UCY replay
            // violation) where the per-row sum steered it aside.
            Some(l1) => KeepoutMode::Soft { l1, l2: 1.0 },
            None => KeepoutMode::Hard,
        };
        let mpc = LinearMpc::with_keepout_rows(robot.problem(&cfg, mode)?, settings, rows)?;
        let samples = cfg.samples.max(match cfg.safety.keepout {
            KeepoutPolicy::Scenario { samples } => samples,
            _ => 0,
        });
        let (nx, nu) = (robot.nx, robot.nu);
        let w = &cfg.scene.workspace;
        let robot_goal = [0.5 * (w.x_min + w.x_max), 0.5 * (w.y_min + w.y_max)];
        let residual = match cfg.human.gp_residual {
            Some(g) => Some(ResidualGp::new(g, &cfg.human)?),
            None => None,
        };
        let mut engine = Self {
            pred: Predictor::new(k, h, samples),
            residual,
            rows,
            normals: Array3::zeros((h, rows, nx)),
            offsets: Array2::from_elem((h, rows), f64::INFINITY),
            x0: vec![0.0; robot.state_dim],
            xm: vec![0.0; nx],
            um: vec![0.0; nu],
            x_ref: Array1::zeros(nx),
            robot_goal,
            last_t: f64::NEG_INFINITY,
            belief_t: 0.0,
            last_obs_t: f64::NEG_INFINITY,
            last_obs: [f64::NAN; 2],
            decision: Decision {
                t: f64::NAN,
                command: vec![0.0; nu],
                fresh: false,
                fallback: None,
                human: HumanStatus::Unseen,
                goal_probabilities: gi.filter().model().prior().to_vec(),
                predicted_mean: vec![f64::NAN; 2 * h],
                predicted_cov: vec![f64::NAN; 4 * h],
                goal_means: vec![f64::NAN; 2 * k * h],
                samples: vec![f64::NAN; 2 * samples * h],
                robot_plan: vec![f64::NAN; 2 * (h + 1)],
                separation: f64::INFINITY,
                protective_distance: 0.0,
                speed_limited: false,
                predicted_min_separation: f64::INFINITY,
                solver_status: SolveStatus::Unsolved,
                solver_iterations: 0,
                timings: StageTimings::default(),
            },
            counters: EngineCounters::default(),
            telemetry: Recorder::new(),
            events: StepEvents::default(),
            robot,
            gi,
            mpc,
            cfg,
        };
        engine.robot.reference(robot_goal, &mut engine.x_ref);
        engine.telemetry.set_enabled(engine.cfg.telemetry);
        Ok(engine)
    }

    fn make_belief(cfg: &EngineConfig) -> Result<GoalInference> {
        let h = &cfg.human;
        let filter = FilterSettings {
            n_particles: h.n_particles,
            seed: h.seed,
            par: Par::Seq,
            ..FilterSettings::default()
        };
        let mut gi = GoalInference::from_model(h.goal_model(&cfg.scene.goals)?, filter)?;
        gi.set_forecast_settings(h.forecast_settings())?;
        Ok(gi)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The latest decision.
    #[must_use]
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// Running counts.
    #[must_use]
    pub fn counters(&self) -> EngineCounters {
        self.counters
    }

    /// Latency histograms (p50/p95/p99/max per stage) and event counters of the steps taken
    /// with telemetry on ([`EngineConfig::telemetry`]; `enabled` says whether it is on now).
    /// See [`telemetry`](super::telemetry) for what is recorded and how.
    ///
    /// ```
    /// use intent_engine::belief::Goal;
    /// use intent_engine::intent::{EngineConfig, IntentEngine, Stage, Workspace};
    /// let ws = Workspace { x_min: 0.0, x_max: 6.0, y_min: 0.0, y_max: 4.0 };
    /// let mut engine = IntentEngine::new(EngineConfig::new(vec![Goal::point(5.0, 3.0)], ws))?;
    /// for i in 1..=10 {
    ///     engine.step(Some([1.0, 1.0 + 0.01 * i as f64]), &[3.0, 2.0, 0.0, 0.0], 0.01 * i as f64);
    /// }
    /// let t = engine.telemetry();
    /// assert_eq!(t.steps, 10);
    /// let total = t.stage(Stage::Total);
    /// assert_eq!(total.count, 10);
    /// assert!(total.p50 <= total.p99 && total.p99 <= total.max);
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    #[must_use]
    pub fn telemetry(&self) -> TelemetrySnapshot {
        self.telemetry.handle().snapshot()
    }

    /// A thread-safe reader of this engine's telemetry, for an exporter on another thread
    /// (it never blocks the engine; see [`telemetry`](super::telemetry)).
    #[must_use]
    pub fn telemetry_handle(&self) -> TelemetryHandle {
        self.telemetry.handle()
    }

    /// Switches telemetry recording on or off at run time (see [`EngineConfig::telemetry`]);
    /// what was recorded is kept.
    pub fn set_telemetry(&mut self, on: bool) {
        self.cfg.telemetry = on;
        self.telemetry.set_enabled(on);
    }

    /// Serves this engine's telemetry at `http://127.0.0.1:PORT/metrics` (Prometheus text
    /// format) from a background thread until the returned server is stopped or dropped.
    /// `port = 0` binds a free ephemeral port ([`MetricsServer::port`]).
    ///
    /// # Errors
    /// As [`MetricsServer::start`]: [`Error::InvalidValue`] for a port that cannot be bound.
    pub fn serve_metrics(&self, port: u16) -> Result<MetricsServer> {
        MetricsServer::start(self.telemetry.handle(), port)
    }

    /// The goal-inference belief.
    #[must_use]
    pub fn belief(&self) -> &GoalInference {
        &self.gi
    }

    /// The MPC controller.
    #[must_use]
    pub fn mpc(&self) -> &LinearMpc {
        &self.mpc
    }

    /// The robot's current goal position.
    #[must_use]
    pub fn robot_goal(&self) -> [f64; 2] {
        self.robot_goal
    }

    /// Sets where the robot should go.
    ///
    /// # Errors
    /// [`Error::NonFinite`], or [`Error::InvalidValue`] for a goal outside the workspace.
    pub fn set_robot_goal(&mut self, goal: [f64; 2]) -> Result<()> {
        check_finite("robot_goal", goal.iter())?;
        if !self.cfg.scene.workspace.contains(goal[0], goal[1]) {
            return Err(Error::invalid_value(
                "robot_goal",
                format_args!("{goal:?} lies outside the workspace"),
            ));
        }
        self.robot_goal = goal;
        self.robot.reference(goal, &mut self.x_ref);
        Ok(())
    }

    /// Adds a candidate goal for the person at run time (set-up cost: the predictor and, with
    /// per-goal chance constraints, the QP are rebuilt).
    ///
    /// # Errors
    /// A non-finite goal or negative radius.
    pub fn add_goal(&mut self, goal: Goal) -> Result<()> {
        self.gi.add_goal(goal)?;
        self.cfg.scene.goals.push(goal);
        self.sync_prior();
        self.resize_goals()
    }

    /// Removes candidate goal `index` at run time.
    ///
    /// # Errors
    /// An index out of range or removing the last goal.
    pub fn remove_goal(&mut self, index: usize) -> Result<()> {
        self.gi.remove_goal(index)?;
        self.cfg.scene.goals.remove(index);
        self.sync_prior();
        self.resize_goals()
    }

    /// Keeps the configured goal prior (if any) equal to the belief's after a goal edit.
    fn sync_prior(&mut self) {
        if let Some(p) = &mut self.cfg.human.goal_prior {
            p.clear();
            p.extend_from_slice(self.gi.filter().model().prior());
        }
    }

    fn resize_goals(&mut self) -> Result<()> {
        let k = self.cfg.scene.goals.len();
        let h = self.cfg.timing.horizon;
        let s = self.pred.samples.len() / (2 * h);
        self.pred = Predictor::new(k, h, s);
        self.rows = keepout_rows(&self.cfg.safety.keepout, k);
        self.normals = Array3::zeros((h, self.rows, self.robot.nx));
        self.offsets = Array2::from_elem((h, self.rows), f64::INFINITY);
        self.mpc
            .set_keepout(self.normals.view(), self.offsets.view())?;
        self.decision.goal_probabilities = self.gi.filter().model().prior().to_vec();
        self.decision.goal_means = vec![f64::NAN; 2 * k * h];
        Ok(())
    }

    /// Forgets the person and the plan (e.g. a new session); the configuration stays.
    pub fn reset(&mut self) {
        self.gi.reset();
        if let Some(r) = &mut self.residual {
            r.reset();
        }
        self.last_t = f64::NEG_INFINITY;
        self.last_obs_t = f64::NEG_INFINITY;
        self.decision.human = HumanStatus::Unseen;
    }

    /// One control period: assimilate the person's observation (`None` when there is none this
    /// period), predict, constrain, solve, check the separation, and decide. Never fails and
    /// never panics: invalid input, a failed solve or an overrun budget give the safe fallback
    /// command with the reason. Allocation-free after construction.
    pub fn step(&mut self, human: Option<[f64; 2]>, robot_state: &[f64], t: f64) -> &Decision {
        let start = Instant::now();
        let before = self.counters;
        let allocs = (self.cfg.telemetry && CountingAllocator::is_installed())
            .then(CountingAllocator::allocations);
        self.events = StepEvents::default();
        self.counters.steps += 1;
        let d = &mut self.decision;
        d.t = t;
        d.fallback = None;
        d.fresh = false;
        d.solver_status = SolveStatus::Unsolved;
        d.solver_iterations = 0;
        d.timings = StageTimings::default();
        let reason = self.step_inner(human, robot_state, t, start);
        let d = &mut self.decision;
        if let Some(r) = reason {
            d.fallback = Some(r);
            d.fresh = false;
            self.robot
                .fallback(&self.x0, self.cfg.timing.control_period, &mut d.command);
            self.counters.fallbacks += 1;
            match r {
                FallbackReason::Overrun { .. } => self.counters.overruns += 1,
                FallbackReason::ProtectiveStop { .. } => self.counters.protective_stops += 1,
                _ => {}
            }
        }
        self.robot.clamp(&mut d.command);
        d.timings.total = start.elapsed();
        if self.cfg.telemetry {
            self.events.gp = self.residual.as_ref().map(ResidualGp::stats);
            self.telemetry
                .record(&self.decision, &before, &self.counters, &self.events);
            if let Some(a) = allocs {
                self.telemetry
                    .add_allocations(CountingAllocator::allocations().wrapping_sub(a));
            }
        }
        &self.decision
    }

    fn step_inner(
        &mut self,
        human: Option<[f64; 2]>,
        robot_state: &[f64],
        t: f64,
        start: Instant,
    ) -> Option<FallbackReason> {
        let timing = self.cfg.timing;
        if self.robot.check_state(robot_state).is_err() {
            return Some(FallbackReason::InvalidRobotState);
        }
        self.x0.copy_from_slice(robot_state);
        self.robot.mpc_state(&self.x0, &mut self.xm);
        if !t.is_finite() || t <= self.last_t {
            return Some(FallbackReason::InvalidTime);
        }
        if let Some(z) = human {
            if !(z[0].is_finite() && z[1].is_finite()) {
                return Some(FallbackReason::InvalidObservation);
            }
        }
        self.last_t = t;

        // 1. Belief.
        let t0 = Instant::now();
        if let Err(r) = self.update_belief(human, t) {
            return Some(r);
        }
        let el = t0.elapsed();
        self.decision.timings.belief = el;
        self.events.stages |= stage_bit(Stage::Belief);
        if el > timing.belief_budget {
            return Some(overrun(Stage::Belief, el, timing.belief_budget));
        }

        // 2. Prediction.
        let t1 = Instant::now();
        let present = self.decision.human.is_present();
        if present {
            self.predict(t);
        } else {
            self.clear_prediction();
        }
        self.decision.timings.prediction = t1.elapsed();
        self.events.stages |= stage_bit(Stage::Prediction);

        // 3. Keep-out constraints.
        let t2 = Instant::now();
        self.constraints(present);
        if self
            .mpc
            .set_keepout(self.normals.view(), self.offsets.view())
            .is_err()
        {
            // Only non-finite rows are rejected; fall back rather than plan without them.
            return Some(FallbackReason::SolverFailed(SolveStatus::Unsolved));
        }
        let el2 = t2.elapsed();
        self.decision.timings.constraints = el2;
        self.events.stages |= stage_bit(Stage::Constraints);
        let pred_el = self.decision.timings.prediction + el2;
        if pred_el > timing.prediction_budget {
            return Some(overrun(
                Stage::Prediction,
                pred_el,
                timing.prediction_budget,
            ));
        }

        // 4. Solve.
        self.events.hot_start = self.mpc.settings().warm_start && self.mpc.status().is_solved();
        let t3 = Instant::now();
        let status = match self.mpc.solve(
            ndarray::ArrayView1::from(&self.xm[..]),
            Reference::Constant(self.x_ref.view()),
            Reference::Zero,
            None,
        ) {
            Ok(sol) => {
                self.decision.solver_status = sol.info.status;
                self.decision.solver_iterations = sol.info.iterations;
                let d = &mut self.decision;
                for (c, u) in self.um.iter_mut().zip(sol.u.row(0).iter()) {
                    *c = *u;
                }
                self.robot.command(&self.x0, &self.um, &mut d.command);
                for k in 0..sol.x.nrows() {
                    let p = [
                        sol.x[[k, self.robot.position[0]]],
                        sol.x[[k, self.robot.position[1]]],
                    ];
                    d.robot_plan[2 * k] = p[0];
                    d.robot_plan[2 * k + 1] = p[1];
                }
                sol.info.status
            }
            Err(_) => SolveStatus::Unsolved,
        };
        let el3 = t3.elapsed();
        self.decision.timings.solve = el3;
        self.events.stages |= stage_bit(Stage::Solve);
        if !status.is_solved() {
            return Some(FallbackReason::SolverFailed(status));
        }
        // Never act on a non-finite plan, whatever the solver reported.
        if !(self.decision.command.iter().all(|c| c.is_finite())
            && self.decision.robot_plan.iter().all(|p| p.is_finite()))
        {
            return Some(FallbackReason::NonFiniteSolution);
        }
        if el3 > timing.solve_budget {
            return Some(overrun(Stage::Solve, el3, timing.solve_budget));
        }

        // 5. Separation check.
        let t4 = Instant::now();
        let stop = self.separation_check(present);
        self.decision.timings.safety = t4.elapsed();
        self.events.stages |= stage_bit(Stage::Safety);
        if let Some(r) = stop {
            return Some(r);
        }
        let total = start.elapsed();
        if total > timing.step_budget {
            return Some(overrun(Stage::Total, total, timing.step_budget));
        }
        self.decision.fresh = true;
        None
    }

    fn update_belief(&mut self, human: Option<[f64; 2]>, t: f64) -> Result<(), FallbackReason> {
        let dt_h = self.cfg.human.observation_period;
        let lost_after = self.cfg.human.lost_after;
        match human {
            Some(z) => {
                self.counters.observations += 1;
                let fresh_track = !self.decision.human.is_present()
                    || t - self.last_obs_t > lost_after
                    || !self.gi.is_initialised();
                let info = if fresh_track {
                    self.gi.reset();
                    if let Some(r) = &mut self.residual {
                        r.reset();
                    }
                    self.counters.reinitialisations += 1;
                    self.gi.update(z)
                } else {
                    // Missed steps since the belief's time are predicted, then the update.
                    let m = ((t - self.belief_t) / dt_h).round().max(1.0) as usize;
                    for _ in 1..m.min(MAX_CATCH_UP) {
                        self.gi.predict();
                    }
                    self.gi.update(z)
                };
                match info {
                    Ok(i) => match i.status {
                        StepStatus::Resampled => self.counters.resamplings += 1,
                        StepStatus::Reinitialised => self.counters.reinitialisations += 1,
                        _ => {}
                    },
                    Err(_) => return Err(FallbackReason::BeliefFailed),
                }
                self.belief_t = t;
                self.last_obs = z;
                self.last_obs_t = t;
                self.decision.human = HumanStatus::Tracked;
                if let Some(r) = &mut self.residual {
                    r.observe(z, t, &self.gi, &self.cfg.scene.goals);
                }
            }
            None => {
                self.counters.missing_observations += 1;
                if self.decision.human.is_present() {
                    let since = t - self.last_obs_t;
                    if since > lost_after {
                        self.decision.human = HumanStatus::Lost;
                        self.gi.reset();
                    } else {
                        self.decision.human = HumanStatus::Predicted { since };
                        // Keep the belief within one step of now (bounded work per call).
                        let mut n = 0;
                        while t - self.belief_t >= dt_h && n < MAX_CATCH_UP {
                            self.gi.predict();
                            self.belief_t += dt_h;
                            n += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn predict(&mut self, t: f64) {
        let h = self.cfg.timing.horizon;
        let k = self.pred.k;
        self.pred.moments(self.gi.filter());
        let lead = (t - self.belief_t).max(0.0);
        // The forecast motion model when one is set, else the belief's.
        let settings = self
            .gi
            .forecast_settings()
            .unwrap_or(self.gi.filter().model().settings());
        let goals = self.gi.filter().model().goals();
        match &mut self.residual {
            Some(r) if r.is_ready() => {
                self.pred
                    .propagate(goals, settings, lead, self.cfg.timing.plan_dt, |x, y| {
                        r.velocity(x, y)
                    });
            }
            _ => {
                self.pred
                    .propagate(goals, settings, lead, self.cfg.timing.plan_dt, |_, _| {
                        [0.0; 2]
                    });
            }
        }
        let seed = self
            .cfg
            .human
            .seed
            .wrapping_add(self.counters.steps.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.pred.sample(seed);
        let d = &mut self.decision;
        d.goal_probabilities.copy_from_slice(&self.pred.w);
        d.predicted_mean.copy_from_slice(&self.pred.mix_mean);
        d.predicted_cov.copy_from_slice(&self.pred.mix_cov);
        d.samples.copy_from_slice(&self.pred.samples);
        for g in 0..k {
            for s in 0..h {
                let m = &self.pred.means[g * h + s];
                d.goal_means[2 * (g * h + s)] = m[0];
                d.goal_means[2 * (g * h + s) + 1] = m[1];
            }
        }
    }

    fn clear_prediction(&mut self) {
        // No person: the goal prior (uniform unless configured).
        let d = &mut self.decision;
        d.goal_probabilities
            .copy_from_slice(self.gi.filter().model().prior());
        d.predicted_mean.fill(f64::NAN);
        d.predicted_cov.fill(f64::NAN);
        d.goal_means.fill(f64::NAN);
        d.samples.fill(f64::NAN);
    }

    /// Keep-out rows from the prediction, linearised about the previous plan.
    fn constraints(&mut self, present: bool) {
        self.offsets.fill(f64::INFINITY);
        if !present || self.rows == 0 {
            return;
        }
        let h = self.cfg.timing.horizon;
        let dmin = self.cfg.safety.min_separation + self.robot.keepout_margin();
        let [ix, iy] = self.robot.position;
        let here = [self.xm[ix], self.xm[iy]];
        // Rows keep their previous normal while the direction turns by less than ~3°: still a
        // valid separating half-space, and the QP then only moves the row's bound instead of
        // re-condensing it (disabled rows are left alone for the same reason).
        let normals = &mut self.normals;
        let ev = &mut self.events;
        let mut normal = |s: usize, j: usize, n: [f64; 2]| -> [f64; 2] {
            let old = [-normals[[s, j, ix]], -normals[[s, j, iy]]];
            if old[0] * n[0] + old[1] * n[1] > 0.9986 {
                ev.normals_reused += 1;
                return old;
            }
            ev.normals_rebuilt += 1;
            normals[[s, j, ix]] = -n[0];
            normals[[s, j, iy]] = -n[1];
            n
        };
        match self.cfg.safety.keepout {
            KeepoutPolicy::None => {}
            KeepoutPolicy::Chance { risk } => {
                let k = self.pred.k;
                let kf = k as f64;
                for g in 0..k {
                    let wg = self.pred.w[g];
                    // Union bound: goals below risk/(2K) are dropped (≤ risk/2 in total), the
                    // others split the remaining risk/2 in proportion 1/(K w_g).
                    if wg < risk / (2.0 * kf) {
                        continue;
                    }
                    let kappa = norm_ppf(1.0 - (risk / (2.0 * kf * wg)).min(0.5)).max(0.0);
                    for s in 0..h {
                        let m = &self.pred.means[g * h + s];
                        let c = &self.pred.covs[g * h + s];
                        let n = normal(s, g, direction(here, [m[0], m[1]]));
                        let sd =
                            (n[0] * n[0] * c[0] + 2.0 * n[0] * n[1] * c[1] + n[1] * n[1] * c[5])
                                .max(0.0)
                                .sqrt();
                        self.offsets[[s, g]] = -(n[0] * m[0] + n[1] * m[1] + dmin + kappa * sd);
                    }
                }
                // Near-parallel rows at one stage (goals whose predictions still coincide, e.g.
                // a person standing still) are redundant and make the QP degenerate: keep the
                // tightest of each group.
                for s in 0..h {
                    for g in 0..k {
                        for g2 in g + 1..k {
                            let (o1, o2) = (self.offsets[[s, g]], self.offsets[[s, g2]]);
                            if !(o1.is_finite() && o2.is_finite()) {
                                continue;
                            }
                            let dot = self.normals[[s, g, ix]] * self.normals[[s, g2, ix]]
                                + self.normals[[s, g, iy]] * self.normals[[s, g2, iy]];
                            if dot > 0.9986 {
                                let loose = if o1 <= o2 { g2 } else { g };
                                self.offsets[[s, loose]] = f64::INFINITY;
                            }
                        }
                    }
                }
            }
            KeepoutPolicy::Scenario { .. } => {
                let ns = self.pred.samples.len() / (2 * h);
                for s in 0..h {
                    let mean = [self.pred.mix_mean[2 * s], self.pred.mix_mean[2 * s + 1]];
                    let n = normal(s, 0, direction(here, mean));
                    let mut worst = f64::NEG_INFINITY;
                    for j in 0..ns {
                        let o = 2 * (j * h + s);
                        worst = worst
                            .max(n[0] * self.pred.samples[o] + n[1] * self.pred.samples[o + 1]);
                    }
                    self.offsets[[s, 0]] = -(worst + dmin);
                }
            }
        }
    }

    /// Speed-and-separation monitoring (ISO/TS 15066) on the commanded motion, and the
    /// predicted minimum separation of the plan.
    fn separation_check(&mut self, present: bool) -> Option<FallbackReason> {
        let d = &mut self.decision;
        d.separation = f64::INFINITY;
        d.protective_distance = 0.0;
        d.speed_limited = false;
        d.predicted_min_separation = f64::INFINITY;
        if !present {
            return None;
        }
        let s = &self.cfg.safety;
        let t = &self.cfg.timing;
        let x0 = &self.x0;
        let r = self.robot.pos(x0);
        let person = match d.human {
            HumanStatus::Tracked => self.last_obs,
            // The first predicted stage is plan_dt ahead; the person is now near the
            // prediction's starting point, extrapolated from the belief by the model.
            _ => {
                let m = &self.pred.means;
                let h = t.horizon;
                let (mut px, mut py) = (0.0, 0.0);
                for g in 0..self.pred.k {
                    // Step back from stage 1 by one planning step along its velocity.
                    let mm = &m[g * h];
                    px += self.pred.w[g] * (mm[0] - t.plan_dt * mm[2]);
                    py += self.pred.w[g] * (mm[1] - t.plan_dt * mm[3]);
                }
                [px, py]
            }
        };
        let (dx, dy) = (person[0] - r[0], person[1] - r[1]);
        let sep = dx.hypot(dy);
        d.separation = sep;
        let n = if sep > 1e-9 {
            [dx / sep, dy / sep]
        } else {
            [1.0, 0.0]
        };
        let plan_next = [d.robot_plan[2], d.robot_plan[3]];
        let approach_of = |cmd: &[f64]| {
            let v =
                self.robot
                    .velocity_after(x0, cmd, t.control_period, Some(&plan_next), t.plan_dt);
            (v[0] * n[0] + v[1] * n[1]).max(0.0)
        };
        // Protective distance S_p(v) = c0 + v (v_h / a + T_r) + v² / (2a) at approach speed v
        // (stopping time v / a, stopping distance v² / 2a); the largest allowed approach speed
        // solves S_p(v) = separation.
        let a = self.robot.brake_accel;
        let c0 = s.min_separation
            + s.human_speed * s.reaction_time
            + s.intrusion
            + s.position_uncertainty;
        let (b, q) = if a.is_finite() {
            (s.human_speed / a + s.reaction_time, 0.5 / a)
        } else {
            (s.reaction_time, 0.0)
        };
        let required = |v: f64| c0 + b * v + q * v * v;
        let allowed = if sep <= c0 {
            0.0
        } else if q > 0.0 {
            (-b + (b * b + 4.0 * q * (sep - c0)).sqrt()) / (2.0 * q)
        } else if b > 0.0 {
            (sep - c0) / b
        } else {
            f64::INFINITY
        };
        let mut approach = approach_of(&d.command);
        d.speed_limited = false;
        if approach > allowed {
            // Speed and separation monitoring: remove the excess approach speed from the
            // command (then the actuator limits); motion away or sideways stays allowed.
            let gain = match self.robot.model {
                RobotModel::DoubleIntegrator { .. } => 1.0 / t.control_period,
                RobotModel::ArmPoint { .. } => 1.0,
                RobotModel::Unicycle { .. } => {
                    // Slow the forward speed until its approach component is allowed.
                    let along = x0[2].cos() * n[0] + x0[2].sin() * n[1];
                    d.command[0] = allowed / along;
                    d.speed_limited = true;
                    self.counters.speed_limited += 1;
                    d.protective_distance = required(allowed);
                    return None;
                }
                RobotModel::Custom(_) => {
                    d.protective_distance = required(approach);
                    return Some(FallbackReason::ProtectiveStop {
                        separation: sep,
                        required: required(approach),
                    });
                }
            };
            let excess = approach - allowed;
            d.command[0] -= gain * excess * n[0];
            d.command[1] -= gain * excess * n[1];
            self.robot.clamp(&mut d.command);
            d.speed_limited = true;
            self.counters.speed_limited += 1;
            approach = approach_of(&d.command);
        }
        d.protective_distance = required(approach);
        // Predicted minimum separation against every likely goal's mean.
        let h = t.horizon;
        let mut best = f64::INFINITY;
        for g in 0..self.pred.k {
            if self.pred.w[g] < 0.01 {
                continue;
            }
            for k in 0..h {
                let m = &self.pred.means[g * h + k];
                let (px, py) = (d.robot_plan[2 * (k + 1)], d.robot_plan[2 * (k + 1) + 1]);
                best = best.min((m[0] - px).hypot(m[1] - py));
            }
        }
        d.predicted_min_separation = best;
        None
    }
}

/// Catch-up prediction steps per call (bounds the belief stage's cost after a dropout).
const MAX_CATCH_UP: usize = 64;

fn overrun(stage: Stage, elapsed: Duration, budget: Duration) -> FallbackReason {
    FallbackReason::Overrun {
        stage,
        elapsed,
        budget,
    }
}

fn keepout_rows(policy: &KeepoutPolicy, k: usize) -> usize {
    match policy {
        KeepoutPolicy::None => 0,
        KeepoutPolicy::Chance { .. } => k,
        KeepoutPolicy::Scenario { .. } => 1,
    }
}

/// The keep-out normal: the unit vector from the person's predicted position `m` toward the
/// robot's current position `here` (+x when they coincide). Linearising about the current
/// position rather than the previous plan keeps the plan out of its own linearisation: with
/// the plan as the point, the normals followed the plan and the plan the normals, and the
/// first input chattered between steps (measured on the default scenario, with solves 3×
/// slower); any such half-space still excludes the keep-out disc.
fn direction(here: [f64; 2], m: [f64; 2]) -> [f64; 2] {
    let (dx, dy) = (here[0] - m[0], here[1] - m[1]);
    let n = dx.hypot(dy);
    if n > 1e-6 && n.is_finite() {
        [dx / n, dy / n]
    } else {
        [1.0, 0.0]
    }
}
