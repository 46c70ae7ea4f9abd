//! The intent pipeline in Python: `IntentEngine`, `Decision` and the scenario runner — thin
//! skins over [`crate::intent`].

use ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::array;
use super::belief::{goals_arg, point_arg as pair};
use super::errors::{invalid, run, run_attached, to_py};
use crate::belief::Goal;
use crate::intent::loadtest::{capacity, run_load, LoadReport, LoadSettings};
use crate::intent::replay::{self, ReplaySettings};
use crate::intent::scenario::{simulate, Percentiles, Scenario};
use crate::intent::{
    Decision, EngineConfig, GpResidualConfig, HumanForecast, IntentEngine, KeepoutPolicy,
    MetricsServer, RobotModel, TelemetrySnapshot, Workspace,
};

/// One decision of the pipeline (a snapshot; arrays are copies).
#[pyclass(name = "Decision", module = "intent_engine._core", frozen)]
pub(crate) struct PyDecision {
    d: Decision,
    h: usize,
    k: usize,
}

fn arr2<'py>(
    py: Python<'py>,
    v: &[f64],
    r: usize,
    c: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    Array2::from_shape_vec((r, c), v.to_vec())
        .map(|a| a.into_pyarray(py))
        .map_err(|e| to_py(py, &crate::Error::Internal(e.to_string())))
}

fn arr3<'py>(
    py: Python<'py>,
    v: &[f64],
    a: usize,
    b: usize,
    c: usize,
) -> PyResult<Bound<'py, PyArray3<f64>>> {
    Array3::from_shape_vec((a, b, c), v.to_vec())
        .map(|x| x.into_pyarray(py))
        .map_err(|e| to_py(py, &crate::Error::Internal(e.to_string())))
}

#[pymethods]
impl PyDecision {
    /// Time of the step (s).
    #[getter]
    fn t(&self) -> f64 {
        self.d.t
    }
    /// The robot command for the next control period, shape (m,).
    #[getter]
    fn command<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        Array1::from(self.d.command.clone()).into_pyarray(py)
    }
    /// True when the command is this step's plan; False when it is the safe fallback.
    #[getter]
    fn fresh(&self) -> bool {
        self.d.fresh
    }
    /// Code of the fallback reason ("overrun", "solver-failed", ...) or None.
    #[getter]
    fn fallback(&self) -> Option<&'static str> {
        self.d.fallback.map(|f| f.code())
    }
    /// Human-readable fallback reason or None.
    #[getter]
    fn reason(&self) -> Option<String> {
        self.d.fallback.map(|f| f.to_string())
    }
    /// "unseen", "tracked", "predicted" or "lost".
    #[getter]
    fn human(&self) -> &'static str {
        self.d.human.as_str()
    }
    /// Goal posterior, shape (K,).
    #[getter]
    fn goal_probabilities<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        Array1::from(self.d.goal_probabilities.clone()).into_pyarray(py)
    }
    /// Predicted mean position at t + k·plan_dt, k = 1..H: shape (H, 2); NaN without a person.
    #[getter]
    fn predicted_mean<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        arr2(py, &self.d.predicted_mean, self.h, 2)
    }
    /// Predicted position covariance, shape (H, 2, 2).
    #[getter]
    fn predicted_cov<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        arr3(py, &self.d.predicted_cov, self.h, 2, 2)
    }
    /// Per-goal predicted mean positions, shape (K, H, 2).
    #[getter]
    fn goal_means<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        arr3(py, &self.d.goal_means, self.k, self.h, 2)
    }
    /// Sampled position trajectories, shape (S, H, 2).
    #[getter]
    fn samples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let s = self.d.samples.len() / (2 * self.h).max(1);
        arr3(py, &self.d.samples, s, self.h, 2)
    }
    /// The robot's planned positions, shape (H + 1, 2).
    #[getter]
    fn robot_plan<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        arr2(py, &self.d.robot_plan, self.h + 1, 2)
    }
    /// Current robot–person distance (m; inf without a person).
    #[getter]
    fn separation(&self) -> f64 {
        self.d.separation
    }
    /// Protective distance of the speed-and-separation check (m).
    #[getter]
    fn protective_distance(&self) -> f64 {
        self.d.protective_distance
    }
    /// Whether the separation check slowed the command.
    #[getter]
    fn speed_limited(&self) -> bool {
        self.d.speed_limited
    }
    /// Smallest distance between the plan and a likely goal's predicted mean (m).
    #[getter]
    fn predicted_min_separation(&self) -> f64 {
        self.d.predicted_min_separation
    }
    /// How the MPC solve ended ("solved", "time-limit", ..., "unsolved").
    #[getter]
    fn solver_status(&self) -> &'static str {
        self.d.solver_status.as_str()
    }
    /// Solver iterations.
    #[getter]
    fn solver_iterations(&self) -> usize {
        self.d.solver_iterations
    }
    /// Time per stage in microseconds: belief, prediction, constraints, solve, safety, total.
    #[getter]
    fn timings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = &self.d.timings;
        let d = PyDict::new(py);
        for (k, v) in [
            ("belief", t.belief),
            ("prediction", t.prediction),
            ("constraints", t.constraints),
            ("solve", t.solve),
            ("safety", t.safety),
            ("total", t.total),
        ] {
            d.set_item(k, v.as_secs_f64() * 1e6)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Decision(t={:.3}, command={:?}, fresh={}, fallback={:?}, human={:?}, goal_probabilities={:?})",
            self.d.t,
            self.d.command,
            self.d.fresh,
            self.d.fallback.map(|f| f.code()),
            self.d.human.as_str(),
            self.d.goal_probabilities
        )
    }
}

/// What `IntentEngine.__reduce__` returns: the unpickling function and its arguments
/// (configuration JSON, robot goal).
type Reduced<'py> = (Bound<'py, PyAny>, (String, (f64, f64)));

/// The intent pipeline: observation in, safe decision out, every control period.
#[pyclass(name = "IntentEngine", module = "intent_engine._core")]
pub(crate) struct PyIntentEngine {
    inner: IntentEngine,
    x: Vec<f64>,
    /// Goals were added or removed at run time (the engine is then no longer the one its
    /// configuration builds, so it does not pickle).
    goals_edited: bool,
}

impl PyIntentEngine {
    fn wrap(inner: IntentEngine) -> Self {
        let nx = match &inner.config().robot {
            RobotModel::DoubleIntegrator { .. } => 4,
            RobotModel::ArmPoint { .. } => 2,
            RobotModel::Unicycle { .. } => 3,
            RobotModel::Custom(c) => c.a_plan.nrows(),
        };
        Self {
            inner,
            x: Vec::with_capacity(nx),
            goals_edited: false,
        }
    }

    fn snapshot(&self) -> PyDecision {
        let cfg = self.inner.config();
        PyDecision {
            d: self.inner.decision().clone(),
            h: cfg.timing.horizon,
            k: cfg.scene.goals.len(),
        }
    }
}

#[pymethods]
impl PyIntentEngine {
    #[new]
    #[pyo3(signature = (goals, *, workspace=(0.0, 10.0, 0.0, 10.0), robot="double_integrator",
        max_accel=1.5, max_speed=1.0, max_turn_rate=2.0, lookahead=0.2, arm_base=None,
        arm_reach=1.0, control_period=0.01,
        plan_dt=0.1, horizon=20, observation_period=0.01, n_particles=1000, speed=1.2,
        obs_noise=0.05, switch_prob=0.0, lost_after=1.0, gp_residual=false, min_separation=0.5,
        human_speed=1.6, reaction_time=0.1, keepout="chance", risk=0.05, samples=16, seed=0,
        robot_goal=None, belief_budget=0.0015, prediction_budget=0.001, solve_budget=0.002,
        step_budget=0.004, telemetry=true, goal_prior=None, forecast=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        goals: &Bound<'_, PyAny>,
        workspace: (f64, f64, f64, f64),
        robot: &str,
        max_accel: f64,
        max_speed: f64,
        max_turn_rate: f64,
        lookahead: f64,
        arm_base: Option<&Bound<'_, PyAny>>,
        arm_reach: f64,
        control_period: f64,
        plan_dt: f64,
        horizon: i64,
        observation_period: f64,
        n_particles: i64,
        speed: f64,
        obs_noise: f64,
        switch_prob: f64,
        lost_after: f64,
        gp_residual: bool,
        min_separation: f64,
        human_speed: f64,
        reaction_time: f64,
        keepout: &str,
        risk: f64,
        samples: i64,
        seed: u64,
        robot_goal: Option<&Bound<'_, PyAny>>,
        belief_budget: f64,
        prediction_budget: f64,
        solve_budget: f64,
        step_budget: f64,
        telemetry: bool,
        goal_prior: Option<&Bound<'_, PyAny>>,
        forecast: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let goals = goals_arg(goals)?;
        // Settings of the robot models not chosen are still checked: a NaN is never accepted.
        for (name, v) in [
            ("max_turn_rate", max_turn_rate),
            ("lookahead", lookahead),
            ("arm_reach", arm_reach),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(
                    py,
                    name,
                    format_args!("must be finite and > 0, got {v}"),
                ));
            }
        }
        let (x_min, x_max, y_min, y_max) = workspace;
        let mut cfg = EngineConfig::new(
            goals,
            Workspace {
                x_min,
                x_max,
                y_min,
                y_max,
            },
        );
        cfg.robot = match robot {
            "double_integrator" => RobotModel::DoubleIntegrator {
                max_accel,
                max_speed,
            },
            "arm_point" => RobotModel::ArmPoint {
                base: match arm_base {
                    Some(b) => pair(b, "arm_base")?,
                    None => [0.5 * (x_min + x_max), 0.5 * (y_min + y_max)],
                },
                reach: arm_reach,
                max_speed,
            },
            "unicycle" => RobotModel::Unicycle {
                max_speed,
                max_turn_rate,
                lookahead,
            },
            other => {
                return Err(invalid(
                    py,
                    "robot",
                    format_args!(
                    "expected \"double_integrator\", \"unicycle\" or \"arm_point\", got {other:?}"
                ),
                ))
            }
        };
        let count = |name: &'static str, v: i64| {
            usize::try_from(v).map_err(|_| invalid(py, name, format_args!("must be >= 0, got {v}")))
        };
        let budget = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 3600.0 {
                Ok(std::time::Duration::from_secs_f64(v))
            } else {
                Err(invalid(
                    py,
                    name,
                    format_args!("must be in (0, 3600] seconds, got {v}"),
                ))
            }
        };
        cfg.timing.belief_budget = budget("belief_budget", belief_budget)?;
        cfg.timing.prediction_budget = budget("prediction_budget", prediction_budget)?;
        cfg.timing.solve_budget = budget("solve_budget", solve_budget)?;
        cfg.timing.step_budget = budget("step_budget", step_budget)?;
        cfg.timing.control_period = control_period;
        cfg.timing.plan_dt = plan_dt;
        cfg.timing.horizon = count("horizon", horizon)?;
        let h = &mut cfg.human;
        h.observation_period = observation_period;
        h.n_particles = count("n_particles", n_particles)?;
        h.speed = speed;
        h.obs_noise = obs_noise;
        h.switch_prob = switch_prob;
        h.lost_after = lost_after;
        h.seed = seed;
        h.gp_residual = gp_residual.then(GpResidualConfig::default);
        let s = &mut cfg.safety;
        s.min_separation = min_separation;
        s.human_speed = human_speed;
        s.reaction_time = reaction_time;
        let samples = count("samples", samples)?;
        s.keepout = match keepout {
            "chance" => KeepoutPolicy::Chance { risk },
            "scenario" => KeepoutPolicy::Scenario { samples },
            "none" => KeepoutPolicy::None,
            other => {
                return Err(invalid(
                    py,
                    "keepout",
                    format_args!("expected \"chance\", \"scenario\" or \"none\", got {other:?}"),
                ))
            }
        };
        cfg.samples = samples;
        cfg.telemetry = telemetry;
        cfg.human.goal_prior = goal_prior.map(super::belief::goal_prior_arg).transpose()?;
        if let Some(f) = forecast {
            let base = cfg.human.goal_settings();
            let keys = [
                "rationality",
                "velocity_noise",
                "velocity_model",
                "slow_radius",
            ];
            let f = super::belief::forecast_arg(py, f, &base, &keys)?;
            cfg.human.forecast = Some(HumanForecast {
                rationality: f.rationality,
                velocity_noise: f.velocity_noise,
                velocity: f.velocity,
            });
        }
        let mut inner = IntentEngine::new(cfg).map_err(|e| to_py(py, &e))?;
        if let Some(g) = robot_goal {
            let g = pair(g, "robot_goal")?;
            inner.set_robot_goal(g).map_err(|e| to_py(py, &e))?;
        }
        Ok(Self::wrap(inner))
    }

    /// The engine of the embedded default scenario (a shared workcell, three goals, a planar
    /// double-integrator robot), with the robot heading to the scenario's first station.
    #[staticmethod]
    fn default(py: Python<'_>) -> PyResult<Self> {
        Self::from_scenario_json(py, crate::DEFAULT_SCENARIO_JSON)
    }

    /// The engine of a scenario given as JSON text (the format of the embedded one).
    #[staticmethod]
    fn from_scenario_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let scn = Scenario::from_json(text)
            .map_err(|e| to_py(py, &super::errors::renamed(e, &[("scenario", "text")])))?;
        let mut inner = IntentEngine::new(scn.config.clone()).map_err(|e| to_py(py, &e))?;
        inner
            .set_robot_goal(scn.robot.waypoints[0])
            .map_err(|e| to_py(py, &e))?;
        Ok(Self::wrap(inner))
    }

    /// One control period. `observation` is the person's [x, y] or None; `robot_state` the
    /// robot's state; `t` the time (s, increasing). Never raises: invalid input, a failed
    /// solve or an overrun return the safe fallback command with the reason.
    #[pyo3(signature = (observation, robot_state, t))]
    fn step(
        &mut self,
        py: Python<'_>,
        observation: Option<&Bound<'_, PyAny>>,
        robot_state: &Bound<'_, PyAny>,
        t: &Bound<'_, PyAny>,
    ) -> PyDecision {
        // Unconvertible arguments become the values the engine rejects with a reason.
        let obs = observation.map(|o| pair(o, "observation").unwrap_or([f64::NAN; 2]));
        self.x.clear();
        match array::vector(robot_state, "robot_state") {
            Ok(v) => self.x.extend(v.as_array().iter()),
            Err(_) => self.x.push(f64::NAN),
        }
        let t = t.extract::<f64>().unwrap_or(f64::NAN);
        let inner = &mut self.inner;
        let x = &self.x;
        // `step` never fails; the wrapper only turns a (bug) panic into an exception-free
        // fallback by leaving the previous decision in place.
        let _ = run_attached(py, || Ok(inner.step(obs, x, t).t));
        self.snapshot()
    }

    /// The latest decision.
    fn decision(&self) -> PyDecision {
        self.snapshot()
    }

    /// Sets where the robot should go ([x, y] inside the workspace).
    fn set_robot_goal(&mut self, py: Python<'_>, goal: &Bound<'_, PyAny>) -> PyResult<()> {
        let g = pair(goal, "goal")?;
        self.inner.set_robot_goal(g).map_err(|e| to_py(py, &e))
    }

    /// The robot's goal [x, y].
    #[getter]
    fn robot_goal(&self) -> (f64, f64) {
        let g = self.inner.robot_goal();
        (g[0], g[1])
    }

    /// Number of candidate goals.
    #[getter]
    fn n_goals(&self) -> usize {
        self.inner.config().scene.goals.len()
    }

    /// Adds a candidate goal [x, y] (or [x, y, radius]) at run time.
    fn add_goal(&mut self, py: Python<'_>, goal: &Bound<'_, PyAny>) -> PyResult<()> {
        let v = array::vector(goal, "goal")?;
        let v = v.as_array();
        if v.len() != 2 && v.len() != 3 {
            return Err(invalid(py, "goal", "expected [x, y] or [x, y, radius]"));
        }
        let g = Goal {
            x: v[0],
            y: v[1],
            radius: if v.len() == 3 { v[2] } else { 0.0 },
        };
        self.inner.add_goal(g).map_err(|e| to_py(py, &e))?;
        self.goals_edited = true;
        Ok(())
    }

    /// Removes candidate goal `index`.
    fn remove_goal(&mut self, py: Python<'_>, index: i64) -> PyResult<()> {
        let i = usize::try_from(index)
            .map_err(|_| invalid(py, "index", format_args!("must be >= 0, got {index}")))?;
        self.inner.remove_goal(i).map_err(|e| to_py(py, &e))?;
        self.goals_edited = true;
        Ok(())
    }

    /// Forgets the person and the plan.
    fn reset(&mut self) {
        self.inner.reset();
    }

    /// Pickle support. Carries the full configuration (goals as currently configured, robot
    /// model, costs, human model with its seed, safety policy, timing budgets, samples) and
    /// the robot's goal: unpickling builds a fresh engine from them, which then gives the same
    /// decisions as the original for the same inputs. Only an engine that has not stepped can
    /// be pickled: the particles, random-number stream, solver warm start, last decision and
    /// counters of a running engine are not carried, so pickling one raises
    /// InvalidInputError rather than silently restarting it.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Reduced<'py>> {
        let py = slf.py();
        let me = slf.borrow();
        if me.inner.counters().steps > 0 || me.goals_edited {
            return Err(invalid(
                py,
                "IntentEngine",
                "only an engine that has not stepped (and whose goals were not edited) can be \
                 pickled: its particles, random stream and solver warm start are not carried; \
                 pickle it before its first step, or build a new one from the same settings",
            ));
        }
        let cfg = me.inner.config();
        let json = serde_json::to_string(cfg)
            .map_err(|e| invalid(py, "IntentEngine", format_args!("cannot pickle: {e}")))?;
        // JSON has no NaN/inf: refuse a configuration that would not come back equal.
        if serde_json::from_str::<EngineConfig>(&json).ok().as_ref() != Some(cfg) {
            return Err(invalid(
                py,
                "IntentEngine",
                "cannot pickle: the configuration holds a non-finite value",
            ));
        }
        let f = py
            .import("intent_engine._core")?
            .getattr("_intent_engine_from_state")?;
        let g = me.inner.robot_goal();
        Ok((f, (json, (g[0], g[1]))))
    }

    /// Running counts: steps, fallbacks, overruns, protective_stops, speed_limited,
    /// observations, missing_observations, resamplings, reinitialisations.
    fn counters<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.counters();
        let d = PyDict::new(py);
        for (k, v) in [
            ("steps", c.steps),
            ("fallbacks", c.fallbacks),
            ("overruns", c.overruns),
            ("protective_stops", c.protective_stops),
            ("speed_limited", c.speed_limited),
            ("observations", c.observations),
            ("missing_observations", c.missing_observations),
            ("resamplings", c.resamplings),
            ("reinitialisations", c.reinitialisations),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Telemetry since construction (steps taken with telemetry on): "enabled", "steps",
    /// "fresh"; "stages" maps each stage (belief, prediction, constraints, solve, safety,
    /// total) to {"count", "sum", "min", "mean", "p50", "p95", "p99", "max"} in seconds and
    /// "buckets" [(upper bound s, cumulative count), ..., (inf, count)]; "fallbacks" by reason
    /// code, "overruns" by stage, "solver_status" by status; and the counters
    /// "solver_iterations", "hot_started_solves", "observations", "missing_observations",
    /// "resamplings", "reinitialisations", "speed_limited", "keepout_normals_reused",
    /// "keepout_normals_rebuilt", "gp_jitter_escalations", "gp_duplicate_jitter",
    /// "gp_refactors", "dropped_samples", "step_allocations" (None unless the process counts
    /// allocations).
    fn telemetry<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        telemetry_dict(py, &self.inner.telemetry())
    }

    /// Switches telemetry recording on or off (what was recorded is kept).
    fn set_telemetry(&mut self, on: bool) {
        self.inner.set_telemetry(on);
    }

    /// Serves this engine's telemetry at http://127.0.0.1:PORT/metrics (Prometheus text
    /// format; loopback only) from a background thread that needs neither the GIL nor the
    /// engine, so scrapes are answered while Python steps the engine. `port=0` picks a free
    /// port: read it from the returned server's `port`. Stop with `server.stop()` (or use it as
    /// a context manager). Raises InvalidInputError for a port out of range or in use.
    #[pyo3(signature = (port=0))]
    fn serve_metrics(&self, py: Python<'_>, port: i64) -> PyResult<PyMetricsServer> {
        let port = u16::try_from(port)
            .map_err(|_| invalid(py, "port", format_args!("must be in 0..=65535, got {port}")))?;
        let server = self.inner.serve_metrics(port).map_err(|e| to_py(py, &e))?;
        Ok(PyMetricsServer {
            port: server.port(),
            inner: Some(server),
        })
    }
}

/// A running `/metrics` endpoint (from `IntentEngine.serve_metrics`).
#[pyclass(name = "MetricsServer", module = "intent_engine._core")]
pub(crate) struct PyMetricsServer {
    inner: Option<MetricsServer>,
    port: u16,
}

#[pymethods]
impl PyMetricsServer {
    /// The bound port (the ephemeral one chosen for port=0).
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// The scrape URL, http://127.0.0.1:PORT/metrics.
    #[getter]
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// Whether the server is still serving.
    #[getter]
    fn running(&self) -> bool {
        self.inner.as_ref().is_some_and(MetricsServer::is_running)
    }

    /// Stops serving (idempotent); the port is released moments later.
    fn stop(&mut self, py: Python<'_>) {
        if let Some(s) = self.inner.take() {
            py.detach(|| s.stop());
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&mut self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        format!(
            "MetricsServer(url='{}', running={})",
            self.url(),
            if self.running() { "True" } else { "False" }
        )
    }
}

fn telemetry_dict<'py>(py: Python<'py>, t: &TelemetrySnapshot) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("enabled", t.enabled)?;
    d.set_item("steps", t.steps)?;
    d.set_item("fresh", t.fresh)?;
    let stages = PyDict::new(py);
    for s in &t.stages {
        let x = PyDict::new(py);
        x.set_item("count", s.count)?;
        x.set_item("sum", s.sum.as_secs_f64())?;
        let mean = if s.count == 0 {
            f64::NAN
        } else {
            s.sum.as_secs_f64() / s.count as f64
        };
        x.set_item("mean", mean)?;
        x.set_item("min", s.min.as_secs_f64())?;
        x.set_item("p50", s.p50.as_secs_f64())?;
        x.set_item("p95", s.p95.as_secs_f64())?;
        x.set_item("p99", s.p99.as_secs_f64())?;
        x.set_item("max", s.max.as_secs_f64())?;
        x.set_item("buckets", s.buckets.clone())?;
        stages.set_item(s.stage.as_str(), x)?;
    }
    d.set_item("stages", stages)?;
    let by = |pairs: Vec<(&str, u64)>| -> PyResult<Bound<'py, PyDict>> {
        let x = PyDict::new(py);
        for (k, v) in pairs {
            x.set_item(k, v)?;
        }
        Ok(x)
    };
    d.set_item("fallbacks", by(t.fallbacks.clone())?)?;
    d.set_item(
        "overruns",
        by(t.overruns.iter().map(|o| (o.0.as_str(), o.1)).collect())?,
    )?;
    d.set_item(
        "solver_status",
        by(t.solver_status
            .iter()
            .map(|o| (o.0.as_str(), o.1))
            .collect())?,
    )?;
    for (k, v) in [
        ("solver_iterations", t.solver_iterations),
        ("hot_started_solves", t.hot_started_solves),
        ("observations", t.observations),
        ("missing_observations", t.missing_observations),
        ("resamplings", t.resamplings),
        ("reinitialisations", t.reinitialisations),
        ("speed_limited", t.speed_limited),
        ("keepout_normals_reused", t.keepout_normals_reused),
        ("keepout_normals_rebuilt", t.keepout_normals_rebuilt),
        ("gp_jitter_escalations", t.gp_jitter_escalations),
        ("gp_duplicate_jitter", t.gp_duplicate_jitter),
        ("gp_refactors", t.gp_refactors),
        ("dropped_samples", t.dropped_samples),
    ] {
        d.set_item(k, v)?;
    }
    d.set_item("step_allocations", t.step_allocations)?;
    Ok(d)
}

/// The engine's telemetry in the Prometheus text exposition format (version 0.0.4): stage
/// latency histograms and quantile summaries in seconds, counters, metric names prefixed
/// `intent_engine_`.
#[pyfunction]
fn prometheus_text(py: Python<'_>, engine: PyRef<'_, PyIntentEngine>) -> PyResult<String> {
    engine
        .inner
        .telemetry()
        .to_prometheus()
        .map_err(|e| to_py(py, &e))
}

/// Runs a scenario (JSON text; the embedded default when None) as a closed loop in simulated
/// time. `progress(done, total)` is called every 10 steps. Returns a dict with "report"
/// (text), "summary" (dict), "svg" and "csv" (strings). `relaxed_budgets` sets every stage
/// budget to one second: the control behaviour is then independent of the machine's load (for
/// tests); the default keeps the real budgets, so overruns show as fallbacks.
#[pyfunction]
#[pyo3(signature = (scenario_json=None, progress=None, *, relaxed_budgets=false))]
fn run_scenario<'py>(
    py: Python<'py>,
    scenario_json: Option<&str>,
    progress: Option<&Bound<'py, PyAny>>,
    relaxed_budgets: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let mut scn = Scenario::from_json(scenario_json.unwrap_or(crate::DEFAULT_SCENARIO_JSON))
        .map_err(|e| {
            to_py(
                py,
                &super::errors::renamed(e, &[("scenario", "scenario_json")]),
            )
        })?;
    if let Some(cb) = progress {
        if !cb.is_callable() {
            return Err(invalid(
                py,
                "progress",
                "must be a callable progress(done, total) or None",
            ));
        }
    }
    if relaxed_budgets {
        let t = &mut scn.config.timing;
        let one = std::time::Duration::from_secs(1);
        (
            t.belief_budget,
            t.prediction_budget,
            t.solve_budget,
            t.step_budget,
        ) = (one, one, one, one);
    }
    // The simulation runs detached (other Python threads keep running); the callback
    // re-attaches for each progress report.
    let progress = progress.map(|cb| cb.clone().unbind());
    let mut cb_err: Option<PyErr> = None;
    let scn_ref = &scn;
    let run = super::errors::run(py, || {
        simulate(scn_ref, |done, total| {
            if let (Some(cb), None) = (&progress, &cb_err) {
                if let Err(e) = Python::attach(|py| cb.call1(py, (done, total)).map(drop)) {
                    cb_err = Some(e);
                }
            }
        })
    })?;
    if let Some(e) = cb_err {
        return Err(e);
    }
    let s = &run.summary;
    let summary = PyDict::new(py);
    summary.set_item("steps", s.steps)?;
    summary.set_item("simulated_s", s.simulated_s)?;
    summary.set_item("goal_accuracy", s.goal_accuracy)?;
    summary.set_item("goal_accuracy_at", s.goal_accuracy_at.to_vec())?;
    summary.set_item("min_separation", s.min_separation)?;
    summary.set_item("separation_violations", s.separation_violations)?;
    summary.set_item("fallbacks", s.fallbacks.clone())?;
    summary.set_item("waypoints_reached", s.waypoints_reached)?;
    summary.set_item("decisions_per_second", s.decisions_per_second)?;
    let lat = PyDict::new(py);
    for (name, p) in &s.latency {
        let d = PyDict::new(py);
        d.set_item("p50", p.p50)?;
        d.set_item("p95", p.p95)?;
        d.set_item("p99", p.p99)?;
        d.set_item("max", p.max)?;
        d.set_item("mean", p.mean)?;
        lat.set_item(name, d)?;
    }
    summary.set_item("latency_us", lat)?;
    let out = PyDict::new(py);
    out.set_item("report", s.report(&scn))?;
    out.set_item("summary", summary)?;
    out.set_item("svg", run.svg())?;
    out.set_item("csv", run.csv())?;
    out.set_item("goal_names", scn.goal_names.clone())?;
    Ok(out)
}

/// Unpickles an IntentEngine (see `IntentEngine.__reduce__`): the configuration as JSON and
/// the robot's goal.
#[pyfunction]
fn _intent_engine_from_state(
    py: Python<'_>,
    config_json: &str,
    robot_goal: (f64, f64),
) -> PyResult<PyIntentEngine> {
    let cfg: EngineConfig = serde_json::from_str(config_json)
        .map_err(|e| invalid(py, "config_json", format_args!("{e}")))?;
    let mut inner = IntentEngine::new(cfg).map_err(|e| to_py(py, &e))?;
    inner
        .set_robot_goal([robot_goal.0, robot_goal.1])
        .map_err(|e| to_py(py, &e))?;
    Ok(PyIntentEngine::wrap(inner))
}

fn percentiles<'py>(py: Python<'py>, p: &Percentiles) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in [
        ("p50", p.p50),
        ("p95", p.p95),
        ("p99", p.p99),
        ("max", p.max),
        ("mean", p.mean),
    ] {
        d.set_item(k, v)?;
    }
    Ok(d)
}

fn load_report<'py>(py: Python<'py>, r: &LoadReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("engines", r.engines)?;
    d.set_item("threads", r.threads)?;
    d.set_item("rate_hz", r.rate_hz)?;
    d.set_item("deadline_ms", r.deadline.as_secs_f64() * 1e3)?;
    d.set_item("wall_s", r.wall_s)?;
    d.set_item("released", r.released)?;
    d.set_item("decisions", r.decisions)?;
    d.set_item("decisions_per_second", r.decisions_per_second)?;
    d.set_item("target_per_second", r.target_per_second)?;
    d.set_item("missed", r.missed)?;
    d.set_item("missed_fraction", r.missed_fraction)?;
    d.set_item("fallbacks", r.fallbacks)?;
    d.set_item("latency_us", percentiles(py, &r.latency)?)?;
    d.set_item("compute_us", percentiles(py, &r.compute)?)?;
    Ok(d)
}

#[allow(clippy::too_many_arguments)]
fn load_settings(
    py: Python<'_>,
    engines: i64,
    seconds: f64,
    rate_hz: Option<f64>,
    deadline_ms: f64,
    threads: i64,
    scenario_json: Option<&str>,
) -> PyResult<LoadSettings> {
    let engines = usize::try_from(engines)
        .map_err(|_| invalid(py, "engines", format_args!("must be >= 1, got {engines}")))?;
    let threads = usize::try_from(threads)
        .map_err(|_| invalid(py, "threads", format_args!("must be >= 0, got {threads}")))?;
    if !(deadline_ms.is_finite() && deadline_ms > 0.0 && deadline_ms <= 3.6e6) {
        return Err(invalid(
            py,
            "deadline_ms",
            format_args!("must be in (0, 3.6e6], got {deadline_ms}"),
        ));
    }
    let scenario = Scenario::from_json(scenario_json.unwrap_or(crate::DEFAULT_SCENARIO_JSON))
        .map_err(|e| {
            to_py(
                py,
                &super::errors::renamed(e, &[("scenario", "scenario_json")]),
            )
        })?;
    let s = LoadSettings {
        engines,
        seconds,
        rate_hz,
        deadline: std::time::Duration::from_secs_f64(deadline_ms * 1e-3),
        threads,
        scenario,
    };
    s.validate().map_err(|e| to_py(py, &e))?;
    Ok(s)
}

/// Drives `engines` engines (one simulated person and robot each, the scenario's scripted walk
/// with per-engine noise) at `rate_hz` (default: the scenario's control rate) for `seconds`
/// of wall time on `threads` threads (0 = every core), without the interpreter lock. Returns a
/// dict: engines, threads, rate_hz, deadline_ms, wall_s, released, decisions,
/// decisions_per_second, target_per_second, missed, missed_fraction, fallbacks, latency_us and
/// compute_us (dicts of p50/p95/p99/max/mean; latency counts from each decision's release).
#[pyfunction]
#[pyo3(signature = (engines, seconds, *, rate_hz=None, deadline_ms=10.0, threads=0, scenario_json=None))]
fn load_test<'py>(
    py: Python<'py>,
    engines: i64,
    seconds: f64,
    rate_hz: Option<f64>,
    deadline_ms: f64,
    threads: i64,
    scenario_json: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = load_settings(
        py,
        engines,
        seconds,
        rate_hz,
        deadline_ms,
        threads,
        scenario_json,
    )?;
    let r = run(py, || run_load(&s))?;
    load_report(py, &r)
}

/// Searches the largest number of engines (up to `max_engines`) that keeps the fraction of
/// missed deadlines within `max_miss_fraction`, each trial `seconds` long (doubling, then
/// bisection). Returns {"engines": best, "trials": [load_test dicts in the order run]}.
#[pyfunction]
#[pyo3(signature = (seconds, *, max_engines=1024, rate_hz=None, deadline_ms=10.0, threads=0,
    max_miss_fraction=0.01, scenario_json=None))]
#[allow(clippy::too_many_arguments)]
fn load_capacity<'py>(
    py: Python<'py>,
    seconds: f64,
    max_engines: i64,
    rate_hz: Option<f64>,
    deadline_ms: f64,
    threads: i64,
    max_miss_fraction: f64,
    scenario_json: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let s = load_settings(py, 1, seconds, rate_hz, deadline_ms, threads, scenario_json)?;
    let max_engines = usize::try_from(max_engines).map_err(|_| {
        invalid(
            py,
            "max_engines",
            format_args!("must be >= 1, got {max_engines}"),
        )
    })?;
    let c = run(py, || capacity(&s, max_engines, max_miss_fraction))?;
    let d = PyDict::new(py);
    d.set_item("engines", c.engines)?;
    let trials = c
        .trials
        .iter()
        .map(|r| load_report(py, r))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("trials", trials)?;
    Ok(d)
}

/// Replays one recorded ETH/UCY scene file (`frame,id,x,y` CSV, 0.4 s frames) through the
/// engine with a simulated robot crossing each pedestrian's path (see `intent::replay`), and
/// returns what it measured as a dict: scene, goals, tracks, steps, simulated_s, accuracy_at
/// (after 25/50/75 % of each segment), violations (dict), min_separation, fallbacks,
/// unexplained, latency_us. `relaxed_budgets` (the default) makes every decision independent of
/// the machine's load, so the same arguments give the same result everywhere (latency aside).
#[pyfunction]
#[pyo3(signature = (path, *, goals=3, min_frames=8, max_tracks=None, n_particles=1000, seed=0,
    rationality=0.5, velocity_noise=0.4, obs_noise=0.1, switch_prob=0.02, relaxed_budgets=true))]
#[allow(clippy::too_many_arguments)]
fn replay_scene<'py>(
    py: Python<'py>,
    path: std::path::PathBuf,
    goals: i64,
    min_frames: i64,
    max_tracks: Option<i64>,
    n_particles: i64,
    seed: u64,
    rationality: f64,
    velocity_noise: f64,
    obs_noise: f64,
    switch_prob: f64,
    relaxed_budgets: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let count = |name: &'static str, v: i64| {
        usize::try_from(v).map_err(|_| invalid(py, name, format_args!("must be >= 0, got {v}")))
    };
    let mut s = ReplaySettings {
        goals: count("goals", goals)?,
        min_frames: count("min_frames", min_frames)?,
        max_tracks: max_tracks.map(|m| count("max_tracks", m)).transpose()?,
        ..ReplaySettings::default()
    };
    s.human.n_particles = count("n_particles", n_particles)?;
    s.human.seed = seed;
    s.human.rationality = rationality;
    s.human.velocity_noise = velocity_noise;
    s.human.obs_noise = obs_noise;
    s.human.switch_prob = switch_prob;
    if relaxed_budgets {
        s = s.with_relaxed_budgets();
    }
    let r = run(py, || replay::replay_scene(&path, &s))?;
    let d = PyDict::new(py);
    d.set_item("scene", &r.scene)?;
    d.set_item(
        "goals",
        r.goals
            .iter()
            .map(|g| (g.x, g.y, g.radius))
            .collect::<Vec<_>>(),
    )?;
    d.set_item("tracks", r.tracks)?;
    d.set_item("steps", r.steps)?;
    d.set_item("simulated_s", r.simulated_s)?;
    d.set_item("accuracy_at", r.accuracy_at.to_vec())?;
    let v = PyDict::new(py);
    v.set_item("total", r.violations.total)?;
    v.set_item("person_too_fast", r.violations.person_too_fast)?;
    v.set_item("robot_approaching", r.violations.robot_approaching)?;
    v.set_item("robot_at_rest", r.violations.robot_at_rest)?;
    v.set_item("within_model", r.violations.within_model())?;
    d.set_item("violations", v)?;
    d.set_item("min_separation", r.min_separation)?;
    d.set_item("fallbacks", r.fallbacks.clone())?;
    d.set_item("unexplained", r.unexplained)?;
    d.set_item("latency_us", percentiles(py, &r.latency)?)?;
    Ok(d)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIntentEngine>()?;
    m.add_class::<PyDecision>()?;
    m.add_class::<PyMetricsServer>()?;
    m.add_function(wrap_pyfunction!(run_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(_intent_engine_from_state, m)?)?;
    m.add_function(wrap_pyfunction!(load_test, m)?)?;
    m.add_function(wrap_pyfunction!(load_capacity, m)?)?;
    m.add_function(wrap_pyfunction!(replay_scene, m)?)?;
    m.add_function(wrap_pyfunction!(prometheus_text, m)?)?;
    Ok(())
}
