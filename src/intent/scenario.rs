//! Scenarios and the closed-loop simulation behind the demo.
//!
//! A scenario (JSON, see `data/default_scenario.json`, embedded as
//! [`crate::DEFAULT_SCENARIO_JSON`]) describes the workspace and goals, a scripted person
//! (legs to named goals with pauses, tracking noise and dropouts), a robot shuttling between
//! waypoints, and the engine's settings. [`simulate`] runs the engine on it as a control loop
//! in simulated time and returns a per-step log, a [`Summary`], and writers for a CSV log
//! and an SVG picture of the run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Deserialize;

use crate::belief::Goal;
use crate::error::{Error, Result};
use crate::intent::config::{EngineConfig, KeepoutPolicy, RobotModel, Timing, Workspace};
use crate::intent::engine::{Decision, IntentEngine};
use crate::intent::robot::simulate as plant;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceJson {
    x_min: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

/// One leg of the scripted person: walk to `goal`, then stay `pause_s` seconds.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Leg {
    /// Name of the goal (a key of the scenario's `goals`).
    pub goal: String,
    /// Time spent at the goal (s).
    #[serde(default)]
    pub pause_s: f64,
}

/// The scripted person.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HumanScript {
    /// Start position.
    pub start: [f64; 2],
    /// Legs (walk to a goal, pause).
    pub legs: Vec<Leg>,
    /// Walking speed (m/s).
    pub speed: f64,
    /// Initial heading offset from the goal direction (rad), relaxing over 1.5 s.
    #[serde(default)]
    pub curvature: f64,
    /// Tracking noise (m).
    pub observation_noise: f64,
    /// Observation rate (Hz).
    pub rate_hz: f64,
    /// Intervals `[t0, t1]` (s) without observations.
    #[serde(default)]
    pub dropouts: Vec<[f64; 2]>,
    /// Simulated duration (s).
    pub duration_s: f64,
    /// Seed of the tracking noise and the engine.
    #[serde(default)]
    pub seed: u64,
}

/// The simulated robot.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RobotScript {
    /// `"double_integrator"`.
    pub model: String,
    /// Initial state `(x, y, vx, vy)`.
    pub state: Vec<f64>,
    /// Largest acceleration (m/s²).
    pub max_accel: f64,
    /// Largest speed (m/s).
    pub max_speed: f64,
    /// Stations visited in turn.
    pub waypoints: Vec<[f64; 2]>,
    /// Distance at which a station counts as reached (m).
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

/// Longest scripted run [`Scenario::from_json`] accepts (s).
const MAX_DURATION_S: f64 = 1e5;

fn default_tolerance() -> f64 {
    0.15
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineJson {
    control_hz: f64,
    plan_dt: f64,
    horizon: usize,
    n_particles: usize,
    #[serde(default)]
    switch_rate_hz: f64,
    min_separation: f64,
    keepout: String,
    #[serde(default = "default_risk")]
    risk: f64,
    #[serde(default = "default_samples")]
    samples: usize,
}

fn default_risk() -> f64 {
    0.05
}
fn default_samples() -> usize {
    16
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioJson {
    name: String,
    #[serde(default)]
    description: String,
    /// Where the scenario's numbers come from (documentation only).
    #[serde(default, rename = "provenance")]
    _provenance: String,
    workspace: WorkspaceJson,
    goals: BTreeMap<String, [f64; 2]>,
    human: HumanScript,
    robot: RobotScript,
    engine: EngineJson,
}

/// A parsed scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Goal names, in the order of [`EngineConfig`]'s goals.
    pub goal_names: Vec<String>,
    /// The scripted person.
    pub human: HumanScript,
    /// The simulated robot.
    pub robot: RobotScript,
    /// The engine's configuration.
    pub config: EngineConfig,
}

impl Scenario {
    /// The embedded default scenario.
    ///
    /// # Errors
    /// Never for the shipped file (a test parses it); the signature matches [`Scenario::from_json`].
    pub fn default_embedded() -> Result<Self> {
        Self::from_json(crate::DEFAULT_SCENARIO_JSON)
    }

    /// Parses and validates a scenario.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `scenario` for malformed JSON, unknown fields (a
    /// misspelt optional setting would otherwise fall back to its default), unknown goal names or
    /// out-of-range settings.
    pub fn from_json(text: &str) -> Result<Self> {
        let s: ScenarioJson = serde_json::from_str(text)
            .map_err(|e| Error::invalid_value("scenario", format_args!("{e}")))?;
        let goal_names: Vec<String> = s.goals.keys().cloned().collect();
        let goals: Vec<Goal> = s.goals.values().map(|g| Goal::point(g[0], g[1])).collect();
        for leg in &s.human.legs {
            if !s.goals.contains_key(&leg.goal) {
                return Err(Error::invalid_value(
                    "scenario",
                    format_args!("human leg goal {:?} is not one of the goals", leg.goal),
                ));
            }
        }
        if s.human.legs.is_empty() || s.robot.waypoints.is_empty() {
            return Err(Error::invalid_value(
                "scenario",
                "needs at least one human leg and one robot waypoint",
            ));
        }
        for (name, v) in [
            ("human.speed", s.human.speed),
            ("human.rate_hz", s.human.rate_hz),
            ("human.duration_s", s.human.duration_s),
            ("human.observation_noise", s.human.observation_noise),
            ("engine.control_hz", s.engine.control_hz),
        ] {
            crate::error::check_positive(name, v)?;
        }
        if s.robot.model != "double_integrator" || s.robot.state.len() != 4 {
            return Err(Error::invalid_value(
                "robot.model",
                "the simulated robot must be a double_integrator with a 4-entry state",
            ));
        }
        crate::error::check_positive("robot.tolerance", s.robot.tolerance)?;
        // The simulation allocates one path point per control step: bound the run (1e5 s is
        // 10⁷ steps at 100 Hz).
        if s.human.duration_s > MAX_DURATION_S {
            return Err(Error::invalid_value(
                "human.duration_s",
                format_args!("at most {MAX_DURATION_S} s, got {}", s.human.duration_s),
            ));
        }
        crate::error::check_finite("human.start", s.human.start.iter())?;
        crate::error::check_finite("robot.state", s.robot.state.iter())?;
        crate::error::check_finite("robot.waypoints", s.robot.waypoints.iter().flatten())?;
        crate::error::check_finite("goals", s.goals.values().flatten())?;
        for d in &s.human.dropouts {
            if !(d[0].is_finite() && d[1].is_finite() && d[0] <= d[1]) {
                return Err(Error::invalid_value(
                    "human.dropouts",
                    format_args!("each [start, end] must be finite with start <= end, got {d:?}"),
                ));
            }
        }
        let w = &s.workspace;
        let mut cfg = EngineConfig::new(
            goals,
            Workspace {
                x_min: w.x_min,
                x_max: w.x_max,
                y_min: w.y_min,
                y_max: w.y_max,
            },
        );
        cfg.robot = RobotModel::DoubleIntegrator {
            max_accel: s.robot.max_accel,
            max_speed: s.robot.max_speed,
        };
        let e = &s.engine;
        cfg.timing = Timing {
            control_period: 1.0 / e.control_hz,
            plan_dt: e.plan_dt,
            horizon: e.horizon,
            ..Timing::default()
        };
        cfg.human.n_particles = e.n_particles;
        cfg.human.observation_period = 1.0 / s.human.rate_hz;
        cfg.human.obs_noise = s.human.observation_noise.max(0.01);
        cfg.human.speed = s.human.speed;
        cfg.human.switch_prob = (e.switch_rate_hz / s.human.rate_hz).clamp(0.0, 1.0);
        cfg.human.seed = s.human.seed;
        cfg.safety.min_separation = e.min_separation;
        cfg.safety.keepout = match e.keepout.as_str() {
            "chance" => KeepoutPolicy::Chance { risk: e.risk },
            "scenario" => KeepoutPolicy::Scenario { samples: e.samples },
            "none" => KeepoutPolicy::None,
            other => {
                return Err(Error::invalid_value(
                    "scenario",
                    format_args!("engine.keepout must be chance, scenario or none, got {other:?}"),
                ))
            }
        };
        cfg.samples = e.samples;
        cfg.validate()?;
        Ok(Self {
            name: s.name,
            description: s.description,
            goal_names,
            human: s.human,
            robot: s.robot,
            config: cfg,
        })
    }

    /// The scripted person's true positions and current goal index at times
    /// `k · control_period`, `k = 0..=steps`.
    #[must_use]
    pub fn human_path(&self, steps: usize) -> (Vec<[f64; 2]>, Vec<usize>) {
        let dt = self.config.timing.control_period;
        let h = &self.human;
        let goals = &self.config.scene.goals;
        let index = |name: &str| self.goal_names.iter().position(|g| g == name).unwrap_or(0);
        let mut pos = Vec::with_capacity(steps + 1);
        let mut goal_idx = Vec::with_capacity(steps + 1);
        let mut p = h.start;
        let mut leg = 0;
        let mut leg_t = 0.0;
        let mut pause_left = f64::NAN;
        let mut heading0 = f64::NAN;
        for _ in 0..=steps {
            let g = index(&h.legs[leg].goal);
            pos.push(p);
            goal_idx.push(g);
            let goal = goals[g];
            let (dx, dy) = (goal.x - p[0], goal.y - p[1]);
            let dist = dx.hypot(dy);
            let want = dy.atan2(dx);
            if heading0.is_nan() {
                heading0 = want + if leg == 0 { h.curvature } else { -h.curvature };
            }
            if dist < 1e-3 {
                if pause_left.is_nan() {
                    pause_left = h.legs[leg].pause_s;
                }
                pause_left -= dt;
                if pause_left <= 0.0 && leg + 1 < h.legs.len() {
                    leg += 1;
                    leg_t = 0.0;
                    pause_left = f64::NAN;
                    heading0 = f64::NAN;
                }
                continue;
            }
            // The heading relaxes from an initial offset toward the goal: a curving walk.
            let mut off = heading0 - want;
            off = (off + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                - std::f64::consts::PI;
            let heading = want + off * (-leg_t / 1.5f64).exp();
            let step = (h.speed * dt).min(dist);
            p = [p[0] + step * heading.cos(), p[1] + step * heading.sin()];
            leg_t += dt;
        }
        (pos, goal_idx)
    }
}

/// One row of the simulation log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// Time (s).
    pub t: f64,
    /// The person's true position.
    pub human: [f64; 2],
    /// The observation given to the engine (NaN when none).
    pub observation: [f64; 2],
    /// Index of the person's true goal.
    pub true_goal: usize,
    /// Robot state before the step.
    pub robot: [f64; 4],
    /// The engine's decision.
    pub decision: Decision,
    /// True separation after the step (m).
    pub true_separation: f64,
}

/// Latency percentiles of one stage (µs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// Percentiles of `d` (empty → zeros).
    #[must_use]
    pub fn of(d: &[Duration]) -> Self {
        if d.is_empty() {
            return Self::default();
        }
        let mut v: Vec<f64> = d.iter().map(|x| x.as_secs_f64() * 1e6).collect();
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Self {
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Control steps.
    pub steps: usize,
    /// Simulated time (s).
    pub simulated_s: f64,
    /// Goal accuracy (argmax posterior = true goal) over steps with the person present.
    pub goal_accuracy: f64,
    /// Goal accuracy at 25 / 50 / 75 % of each walking leg.
    pub goal_accuracy_at: [f64; 3],
    /// Smallest true human–robot distance (m).
    pub min_separation: f64,
    /// Steps with the true distance below the configured minimum separation.
    pub separation_violations: usize,
    /// Fallback decisions by reason code.
    pub fallbacks: BTreeMap<String, usize>,
    /// Stations the robot reached.
    pub waypoints_reached: usize,
    /// Per-stage latency: belief, prediction, constraints, solve, safety, total.
    pub latency: [(String, Percentiles); 6],
    /// Decisions per second of engine time (1 / mean total step time).
    pub decisions_per_second: f64,
}

/// A finished closed-loop run.
#[derive(Clone, Debug)]
pub struct Run {
    /// The scenario.
    pub scenario: Scenario,
    /// One row per control step.
    pub log: Vec<LogRow>,
    /// The summary.
    pub summary: Summary,
    /// The robot's stations.
    pub waypoints: Vec<[f64; 2]>,
}

/// Runs the engine on `scn` as a control loop in simulated time; `progress(done, total)` is
/// called every 10 steps.
///
/// # Errors
/// The engine's construction errors.
pub fn simulate(scn: &Scenario, mut progress: impl FnMut(usize, usize)) -> Result<Run> {
    let mut engine = IntentEngine::new(scn.config.clone())?;
    let tc = scn.config.timing.control_period;
    let steps = (scn.human.duration_s / tc).round() as usize;
    let (path, goal_idx) = scn.human_path(steps);
    let obs_every = ((1.0 / scn.human.rate_hz) / tc).round().max(1.0) as usize;
    let noise = Normal::new(0.0, scn.human.observation_noise)
        .map_err(|e| Error::invalid_value("observation_noise", format_args!("{e}")))?;
    let mut rng = ChaCha8Rng::seed_from_u64(scn.human.seed ^ 0x5EED);
    let mut x = [
        scn.robot.state[0],
        scn.robot.state[1],
        scn.robot.state[2],
        scn.robot.state[3],
    ];
    let mut wp = 0;
    let mut reached = 0;
    engine.set_robot_goal(scn.robot.waypoints[0])?;
    let mut log = Vec::with_capacity(steps);
    for i in 1..=steps {
        let t = i as f64 * tc;
        let truth = path[i];
        let dropped = scn.human.dropouts.iter().any(|d| t >= d[0] && t < d[1]);
        let obs = if i % obs_every == 0 && !dropped {
            Some([
                truth[0] + noise.sample(&mut rng),
                truth[1] + noise.sample(&mut rng),
            ])
        } else {
            None
        };
        let before = x;
        let d = engine.step(obs, &x, t).clone();
        plant(&scn.config.robot, &mut x, &d.command, tc)?;
        let w = scn.robot.waypoints[wp];
        if (x[0] - w[0]).hypot(x[1] - w[1]) < scn.robot.tolerance && x[2].hypot(x[3]) < 0.2 {
            reached += 1;
            wp = (wp + 1) % scn.robot.waypoints.len();
            engine.set_robot_goal(scn.robot.waypoints[wp])?;
        }
        let next_truth = path[(i + 1).min(steps)];
        log.push(LogRow {
            t,
            human: truth,
            observation: obs.unwrap_or([f64::NAN; 2]),
            true_goal: goal_idx[i],
            robot: before,
            true_separation: (x[0] - next_truth[0]).hypot(x[1] - next_truth[1]),
            decision: d,
        });
        if i % 10 == 0 || i == steps {
            progress(i, steps);
        }
    }
    let summary = summarise(scn, &log, reached);
    Ok(Run {
        scenario: scn.clone(),
        log,
        summary,
        waypoints: scn.robot.waypoints.clone(),
    })
}

fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

fn summarise(scn: &Scenario, log: &[LogRow], reached: usize) -> Summary {
    let present: Vec<&LogRow> = log
        .iter()
        .filter(|r| r.decision.human.is_present())
        .collect();
    let acc = present
        .iter()
        .filter(|r| argmax(&r.decision.goal_probabilities) == r.true_goal)
        .count() as f64
        / present.len().max(1) as f64;
    // Legs: maximal runs of the same true goal while the person walks (moves).
    let mut at = [(0usize, 0usize); 3];
    let mut start = 0;
    for i in 1..=log.len() {
        if i == log.len() || log[i].true_goal != log[start].true_goal {
            // Walking part of the leg: until the person stops at the goal.
            let leg = &log[start..i];
            let walking = leg
                .windows(2)
                .take_while(|w| {
                    (w[1].human[0] - w[0].human[0]).hypot(w[1].human[1] - w[0].human[1]) > 1e-9
                })
                .count()
                .max(1);
            for (j, f) in [0.25, 0.5, 0.75].iter().enumerate() {
                let k = ((*f * walking as f64) as usize).min(leg.len() - 1);
                let r = &leg[k];
                if r.decision.human.is_present() {
                    at[j].1 += 1;
                    if argmax(&r.decision.goal_probabilities) == r.true_goal {
                        at[j].0 += 1;
                    }
                }
            }
            start = i;
        }
    }
    let dmin = scn.config.safety.min_separation;
    let min_sep = log
        .iter()
        .map(|r| r.true_separation)
        .fold(f64::INFINITY, f64::min);
    let violations = log.iter().filter(|r| r.true_separation < dmin).count();
    let mut fallbacks = BTreeMap::new();
    for r in log {
        if let Some(f) = r.decision.fallback {
            *fallbacks.entry(f.code().to_string()).or_insert(0) += 1;
        }
    }
    let stage = |f: fn(&Decision) -> Duration| -> Vec<Duration> {
        log.iter().map(|r| f(&r.decision)).collect()
    };
    let total = stage(|d| d.timings.total);
    let latency = [
        (
            "belief".to_string(),
            Percentiles::of(&stage(|d| d.timings.belief)),
        ),
        (
            "prediction".to_string(),
            Percentiles::of(&stage(|d| d.timings.prediction)),
        ),
        (
            "constraints".to_string(),
            Percentiles::of(&stage(|d| d.timings.constraints)),
        ),
        (
            "solve".to_string(),
            Percentiles::of(&stage(|d| d.timings.solve)),
        ),
        (
            "safety".to_string(),
            Percentiles::of(&stage(|d| d.timings.safety)),
        ),
        ("total".to_string(), Percentiles::of(&total)),
    ];
    let mean_total = latency[5].1.mean * 1e-6;
    Summary {
        steps: log.len(),
        simulated_s: log.last().map_or(0.0, |r| r.t),
        goal_accuracy: acc,
        goal_accuracy_at: at.map(|(c, n)| c as f64 / n.max(1) as f64),
        min_separation: min_sep,
        separation_violations: violations,
        fallbacks,
        waypoints_reached: reached,
        latency,
        decisions_per_second: if mean_total > 0.0 {
            1.0 / mean_total
        } else {
            0.0
        },
    }
}

impl Summary {
    /// A human-readable report.
    #[must_use]
    pub fn report(&self, scn: &Scenario) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "summary");
        let _ = writeln!(
            s,
            "  steps                      {} ({:.1} s simulated at {:.0} Hz)",
            self.steps,
            self.simulated_s,
            1.0 / scn.config.timing.control_period
        );
        let _ = writeln!(
            s,
            "  goal accuracy              {:.1}% of steps; at 25/50/75% of each walk {:.0}/{:.0}/{:.0}%",
            100.0 * self.goal_accuracy,
            100.0 * self.goal_accuracy_at[0],
            100.0 * self.goal_accuracy_at[1],
            100.0 * self.goal_accuracy_at[2]
        );
        let _ = writeln!(
            s,
            "  min separation             {:.2} m (minimum allowed {:.2} m, {} steps below)",
            self.min_separation, scn.config.safety.min_separation, self.separation_violations
        );
        let fb: Vec<String> = self
            .fallbacks
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "  fallbacks                  {}",
            if fb.is_empty() {
                "none".to_string()
            } else {
                fb.join(", ")
            }
        );
        let _ = writeln!(s, "  stations reached           {}", self.waypoints_reached);
        let _ = writeln!(
            s,
            "  latency (µs)               {:>8} {:>8} {:>8} {:>8}",
            "p50", "p95", "p99", "max"
        );
        for (name, p) in &self.latency {
            let _ = writeln!(
                s,
                "    {name:<24} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
                p.p50, p.p95, p.p99, p.max
            );
        }
        let _ = writeln!(
            s,
            "  decisions per second       {:.0} (one thread)",
            self.decisions_per_second
        );
        s
    }
}

impl Run {
    /// The log as CSV (one row per step).
    #[must_use]
    pub fn csv(&self) -> String {
        let names = &self.scenario.goal_names;
        let mut s = String::from(
            "t,human_x,human_y,obs_x,obs_y,true_goal,robot_x,robot_y,robot_vx,robot_vy,cmd_x,cmd_y,fresh,fallback,human_status",
        );
        for n in names {
            let _ = write!(s, ",p_{n}");
        }
        s.push_str(",separation,predicted_min_separation,protective_distance,solver_status,solver_iterations,belief_us,prediction_us,constraints_us,solve_us,safety_us,total_us\n");
        for r in &self.log {
            let d = &r.decision;
            let _ = write!(
                s,
                "{:.3},{:.4},{:.4},{},{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.4},{},{},{}",
                r.t,
                r.human[0],
                r.human[1],
                fmt_opt(r.observation[0]),
                fmt_opt(r.observation[1]),
                names[r.true_goal],
                r.robot[0],
                r.robot[1],
                r.robot[2],
                r.robot[3],
                d.command[0],
                d.command[1],
                u8::from(d.fresh),
                d.fallback.map_or("", |f| f.code()),
                d.human.as_str()
            );
            for p in &d.goal_probabilities {
                let _ = write!(s, ",{p:.4}");
            }
            let us = |x: Duration| x.as_secs_f64() * 1e6;
            let _ = writeln!(
                s,
                ",{:.4},{},{:.4},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.1}",
                r.true_separation,
                fmt_opt(d.predicted_min_separation),
                d.protective_distance,
                d.solver_status,
                d.solver_iterations,
                us(d.timings.belief),
                us(d.timings.prediction),
                us(d.timings.constraints),
                us(d.timings.solve),
                us(d.timings.safety),
                us(d.timings.total)
            );
        }
        s
    }

    /// An SVG picture of the run: the scene with the person's and the robot's paths and a few
    /// predictions, the goal posterior over time, and the separation over time.
    #[must_use]
    pub fn svg(&self) -> String {
        svg::render(self)
    }
}

fn fmt_opt(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        String::new()
    }
}

mod svg {
    use std::fmt::Write as _;

    use super::Run;

    const COLORS: [&str; 8] = [
        "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
    ];

    pub(super) fn render(run: &Run) -> String {
        let scn = &run.scenario;
        let w = &scn.config.scene.workspace;
        let scale = 110.0;
        let (mw, mh) = ((w.x_max - w.x_min) * scale, (w.y_max - w.y_min) * scale);
        let (ox, oy) = (40.0, 50.0);
        let px = |x: f64| ox + (x - w.x_min) * scale;
        let py = |y: f64| oy + mh - (y - w.y_min) * scale;
        let right = ox + mw + 60.0;
        let pw = 420.0;
        let width = right + pw + 30.0;
        let height = oy + mh + 60.0;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let sm = &run.summary;
        let _ = writeln!(
            s,
            r#"<text x="{ox}" y="22" font-size="15" font-weight="bold">intent_engine — {} ({:.0} s at {:.0} Hz): goal accuracy {:.0}%, min separation {:.2} m, step p50 {:.0} µs / p99 {:.0} µs</text>"#,
            esc(&scn.name),
            sm.simulated_s,
            1.0 / scn.config.timing.control_period,
            100.0 * sm.goal_accuracy,
            sm.min_separation,
            sm.latency[5].1.p50,
            sm.latency[5].1.p99
        );
        // Scene.
        let _ = writeln!(
            s,
            "<rect x=\"{ox}\" y=\"{oy}\" width=\"{mw:.1}\" height=\"{mh:.1}\" fill=\"#f7f7f7\" stroke=\"#333\"/>"
        );
        for gx in 0..=((w.x_max - w.x_min) as usize) {
            let x = px(w.x_min + gx as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{oy}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#e3e3e3\"/>",
                oy + mh
            );
        }
        for gy in 0..=((w.y_max - w.y_min) as usize) {
            let y = py(w.y_min + gy as f64);
            let _ = writeln!(
                s,
                "<line x1=\"{ox}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e3e3e3\"/>",
                ox + mw
            );
        }
        // A few snapshots of the prediction: sampled trajectories and the mean.
        let n = run.log.len();
        for frac in [0.12, 0.3, 0.62, 0.8] {
            let r = &run.log[((frac * n as f64) as usize).min(n.saturating_sub(1))];
            let d = &r.decision;
            if !d.human.is_present() {
                continue;
            }
            let h = d.predicted_mean.len() / 2;
            let ns = d.samples.len() / (2 * h).max(1);
            for j in 0..ns {
                let pts: Vec<String> = (0..h)
                    .map(|k| {
                        let o = 2 * (j * h + k);
                        format!("{:.1},{:.1}", px(d.samples[o]), py(d.samples[o + 1]))
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"#4575b4\" stroke-opacity=\"0.18\"/>",
                    pts.join(" ")
                );
            }
            let pts: Vec<String> = (0..h)
                .map(|k| {
                    format!(
                        "{:.1},{:.1}",
                        px(d.predicted_mean[2 * k]),
                        py(d.predicted_mean[2 * k + 1])
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#4575b4\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/>",
                pts.join(" ")
            );
            let plan: Vec<String> = (0..d.robot_plan.len() / 2)
                .filter(|k| d.robot_plan[2 * k].is_finite())
                .map(|k| {
                    format!(
                        "{:.1},{:.1}",
                        px(d.robot_plan[2 * k]),
                        py(d.robot_plan[2 * k + 1])
                    )
                })
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"#f46d43\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/>",
                plan.join(" ")
            );
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{:.1}\" fill=\"none\" stroke=\"#4575b4\" stroke-opacity=\"0.5\"/>",
                px(r.human[0]),
                py(r.human[1]),
                scn.config.safety.min_separation * scale
            );
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#4575b4\">t={:.1}s</text>",
                px(r.human[0]) + 6.0,
                py(r.human[1]) - 6.0,
                r.t
            );
        }
        // Paths.
        let hp: Vec<String> = run
            .log
            .iter()
            .map(|r| format!("{:.1},{:.1}", px(r.human[0]), py(r.human[1])))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#313695\" stroke-width=\"2.5\"/>",
            hp.join(" ")
        );
        let rp: Vec<String> = run
            .log
            .iter()
            .map(|r| format!("{:.1},{:.1}", px(r.robot[0]), py(r.robot[1])))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#d73027\" stroke-width=\"2.5\"/>",
            rp.join(" ")
        );
        // Protective stops along the robot path.
        for r in &run.log {
            if let Some(f) = r.decision.fallback {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#000\"><title>{}</title></circle>",
                    px(r.robot[0]),
                    py(r.robot[1]),
                    esc(&f.to_string())
                );
            }
        }
        for (i, wpt) in run.waypoints.iter().enumerate() {
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"#d73027\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d73027\">station {}</text>",
                px(wpt[0]) - 6.0,
                py(wpt[1]) - 6.0,
                px(wpt[0]) + 9.0,
                py(wpt[1]) + 16.0,
                i + 1
            );
        }
        for (g, (goal, name)) in scn
            .config
            .scene
            .goals
            .iter()
            .zip(&scn.goal_names)
            .enumerate()
        {
            let c = COLORS[g % COLORS.len()];
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"9\" fill=\"{c}\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"{c}\" font-weight=\"bold\">{}</text>",
                px(goal.x),
                py(goal.y),
                px(goal.x) - 20.0,
                py(goal.y) - 13.0,
                esc(name)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{ox}\" y=\"{:.1}\"><tspan fill=\"#313695\">━ person</tspan>  <tspan fill=\"#d73027\">━ robot</tspan>  <tspan fill=\"#4575b4\">┅ predicted mean, samples, min-separation circle</tspan>  <tspan fill=\"#f46d43\">┅ robot plan</tspan>  ● fallback</text>",
            oy + mh + 22.0
        );
        // Goal posterior over time.
        let t_end = run.log.last().map_or(1.0, |r| r.t);
        let ph = mh * 0.5 - 20.0;
        let tx = |t: f64| right + t / t_end * pw;
        let gy = |p: f64| oy + ph - p * ph;
        let _ = writeln!(
            s,
            "<text x=\"{right}\" y=\"{:.1}\" font-weight=\"bold\">goal posterior (band: true goal)</text>",
            oy - 6.0
        );
        let _ = writeln!(
            s,
            "<rect x=\"{right}\" y=\"{oy}\" width=\"{pw}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#333\"/>"
        );
        let mut start = 0;
        for i in 1..=n {
            if i == n || run.log[i].true_goal != run.log[start].true_goal {
                let c = COLORS[run.log[start].true_goal % COLORS.len()];
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"6\" fill=\"{c}\"/>",
                    tx(run.log[start].t),
                    oy + ph + 2.0,
                    tx(run.log[i - 1].t) - tx(run.log[start].t)
                );
                start = i;
            }
        }
        for g in 0..scn.goal_names.len() {
            let pts: Vec<String> = run
                .log
                .iter()
                .step_by(2)
                .map(|r| format!("{:.1},{:.1}", tx(r.t), gy(r.decision.goal_probabilities[g])))
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
                pts.join(" "),
                COLORS[g % COLORS.len()]
            );
        }
        for d in &scn.human.dropouts {
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{oy}\" width=\"{:.1}\" height=\"{ph:.1}\" fill=\"#999\" fill-opacity=\"0.2\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#777\">dropout</text>",
                tx(d[0]),
                tx(d[1]) - tx(d[0]),
                tx(d[0]),
                oy + 12.0
            );
        }
        // Separation over time.
        let sy0 = oy + ph + 45.0;
        let smax = run
            .log
            .iter()
            .map(|r| r.true_separation)
            .fold(0.0, f64::max)
            .max(1.0);
        let sy = |v: f64| sy0 + ph - (v / smax).min(1.0) * ph;
        let _ = writeln!(
            s,
            "<text x=\"{right}\" y=\"{:.1}\" font-weight=\"bold\">human–robot separation (m), max {smax:.1}</text>",
            sy0 - 6.0
        );
        let _ = writeln!(
            s,
            "<rect x=\"{right}\" y=\"{sy0:.1}\" width=\"{pw}\" height=\"{ph:.1}\" fill=\"none\" stroke=\"#333\"/>"
        );
        let dmin = scn.config.safety.min_separation;
        let _ = writeln!(
            s,
            "<line x1=\"{right}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#d73027\" stroke-dasharray=\"5 3\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#d73027\">minimum {dmin:.2} m</text>",
            sy(dmin),
            right + pw,
            sy(dmin),
            right + 4.0,
            sy(dmin) - 4.0
        );
        let pts: Vec<String> = run
            .log
            .iter()
            .step_by(2)
            .map(|r| format!("{:.1},{:.1}", tx(r.t), sy(r.true_separation)))
            .collect();
        let _ = writeln!(
            s,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\"/>",
            pts.join(" ")
        );
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\">time (s) 0 … {t_end:.0}</text>",
            right + pw / 2.0 - 40.0,
            sy0 + ph + 16.0
        );
        s.push_str("</svg>\n");
        s
    }

    fn esc(t: &str) -> String {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
}
