//! Replay of recorded pedestrian tracks (ETH/UCY) against the engine.
//!
//! For every scene file (CSV `frame,ped_id,x,y`, frames 0.4 s apart, see
//! [`crate::belief::eth_ucy`]) and every contiguous track segment of at least
//! [`ReplaySettings::min_frames`] frames, an [`IntentEngine`] is built for that one person and
//! run as a control loop in simulated time against a simulated planar double-integrator robot
//! ([`robot::simulate`](super::robot::simulate)) that crosses the person's path:
//!
//! - **goals**: the scene's `K` candidate goals are the k-means clusters (k-means++, seeded) of
//!   the endpoints of all its segments, as discs of the cluster's RMS radius; a segment's true
//!   goal is the cluster of its own endpoint (the convention of `tests/belief_eth_ucy.rs` and
//!   `benches/python/eval_eth_ucy.py`);
//! - **workspace**: the scene's bounding box grown by [`ReplaySettings::margin`];
//! - **observations**: the annotated positions at the dataset's 0.4 s, one every
//!   `0.4 / control_period` control steps (`None` in between);
//! - **robot**: starts at rest at `m + L n` and is sent to `m − L n`, where `m` is the midpoint
//!   of the segment's first and last positions, `n` the unit normal to its overall direction
//!   and `L` chosen so that the robot, at full speed, reaches `m` about when the person does
//!   (clamped to [`ReplaySettings::crossing_half_length`] and to the workspace). The robot is
//!   stepped with the engine's commands.
//!
//! Measured per scene: goal accuracy (argmax of [`Decision::goal_probabilities`] = true goal)
//! after 25 / 50 / 75 % of each segment's frames, separation violations (true robot–person
//! distance below the minimum separation after a step, the person's position interpolated
//! linearly between frames), the smallest separation, fallbacks by reason and the step latency.
//!
//! [`Decision::goal_probabilities`]: super::Decision::goal_probabilities

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::belief::eth_ucy::{load, Track};
use crate::belief::Goal;
use crate::error::{Error, Result};
use crate::intent::config::{
    EngineConfig, HumanModel, RobotModel, SafetyPolicy, Timing, Workspace,
};
use crate::intent::engine::IntentEngine;
use crate::intent::robot::simulate as plant;
use crate::intent::scenario::Percentiles;

/// Time between consecutive frames of the ETH/UCY recordings (s).
pub const FRAME_PERIOD: f64 = 0.4;

/// The fractions of a segment after which the goal accuracy is measured.
pub const ACCURACY_FRACTIONS: [f64; 3] = [0.25, 0.5, 0.75];

/// A robot approach speed below this counts as "not approaching" (m/s) when a violation is
/// attributed.
const APPROACH_EPS: f64 = 0.05;

/// How a replay is run. [`Default`] gives the figures reported in the issue: 1000 particles,
/// the walking parameters of `benches/python/eval_eth_ucy.py`, a 10 Hz control loop.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplaySettings {
    /// Candidate goals per scene (k-means clusters of the segment endpoints, ≥ 1).
    pub goals: usize,
    /// Segments shorter than this many frames are skipped (≥ 2).
    pub min_frames: usize,
    /// Replay at most this many segments per scene, spread evenly over the scene (all when
    /// `None`); the goals are still clustered from every segment.
    pub max_tracks: Option<usize>,
    /// Margin added around the scene's bounding box for the workspace (m, ≥ 0).
    pub margin: f64,
    /// The engine's human model. `observation_period` should be [`FRAME_PERIOD`]; the seed
    /// is offset by the segment's index.
    pub human: HumanModel,
    /// The engine's safety policy.
    pub safety: SafetyPolicy,
    /// The engine's timing; `control_period` must divide [`FRAME_PERIOD`].
    pub timing: Timing,
    /// The simulated robot's largest acceleration per axis (m/s²).
    pub robot_max_accel: f64,
    /// The simulated robot's largest speed per axis (m/s).
    pub robot_max_speed: f64,
    /// Smallest and largest distance from the crossing point to the robot's start (m).
    pub crossing_half_length: [f64; 2],
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            goals: 3,
            min_frames: 8,
            max_tracks: None,
            margin: 2.0,
            human: HumanModel {
                observation_period: FRAME_PERIOD,
                speed: 1.2,
                rationality: 0.5,
                velocity_noise: 0.4,
                obs_noise: 0.1,
                switch_prob: 0.02,
                ..HumanModel::default()
            },
            safety: SafetyPolicy::default(),
            timing: Timing {
                control_period: 0.1,
                ..Timing::default()
            },
            robot_max_accel: 1.5,
            robot_max_speed: 1.0,
            crossing_half_length: [2.0, 6.0],
        }
    }
}

impl ReplaySettings {
    /// Control steps per frame.
    fn steps_per_frame(&self) -> Result<usize> {
        let r = FRAME_PERIOD / self.timing.control_period;
        if !(r.is_finite() && r >= 1.0 - 1e-9 && (r - r.round()).abs() < 1e-6) {
            return Err(Error::invalid_value(
                "control_period",
                format_args!(
                    "must divide the frame period {FRAME_PERIOD} s, got {}",
                    self.timing.control_period
                ),
            ));
        }
        Ok(r.round() as usize)
    }

    /// These settings with every stage budget set to one second: the decisions then no longer
    /// depend on how busy the machine is (for tests in unoptimised builds and for a
    /// deterministic account of the control behaviour).
    #[must_use]
    pub fn with_relaxed_budgets(mut self) -> Self {
        let long = Duration::from_secs(1);
        self.timing.belief_budget = long;
        self.timing.prediction_budget = long;
        self.timing.solve_budget = long;
        self.timing.step_budget = long;
        self
    }

    /// Checks the replay's own settings (the engine checks the rest when it is built).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.goals == 0 {
            return Err(Error::invalid_value("goals", "must be >= 1"));
        }
        if self.min_frames < 2 {
            return Err(Error::invalid_value("min_frames", "must be >= 2"));
        }
        if self.max_tracks == Some(0) {
            return Err(Error::invalid_value("max_tracks", "must be >= 1"));
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return Err(Error::invalid_value("margin", "must be >= 0 and finite"));
        }
        crate::error::check_positive("robot_max_accel", self.robot_max_accel)?;
        crate::error::check_positive("robot_max_speed", self.robot_max_speed)?;
        let [lo, hi] = self.crossing_half_length;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(Error::invalid_value(
                "crossing_half_length",
                "needs 0 < min <= max, finite",
            ));
        }
        self.steps_per_frame().map(|_| ())
    }
}

/// Separation violations (control steps with the true distance below the minimum
/// separation) and what was going on at each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Violations {
    /// All violating steps.
    pub total: usize,
    /// Of which the person walked faster than the safety policy's assumed `human_speed`
    /// (outside the model's assumptions).
    pub person_too_fast: usize,
    /// Of which the robot was moving toward the person (approach speed > 0.05 m/s): the
    /// cases speed-and-separation monitoring exists to prevent.
    pub robot_approaching: usize,
    /// Of which the robot was at rest (speed ≤ 0.05 m/s): the person walked into a stopped
    /// robot.
    pub robot_at_rest: usize,
    /// Segments with at least one violating step.
    pub tracks: usize,
}

impl Violations {
    /// Violating steps with the person within the model's assumed speed.
    #[must_use]
    pub fn within_model(&self) -> usize {
        self.total - self.person_too_fast
    }

    fn add(&mut self, o: &Self) {
        self.total += o.total;
        self.person_too_fast += o.person_too_fast;
        self.robot_approaching += o.robot_approaching;
        self.robot_at_rest += o.robot_at_rest;
        self.tracks += o.tracks;
    }
}

/// One violating control step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViolationStep {
    /// The pedestrian id of the segment.
    pub track: i64,
    /// Control step within the segment.
    pub step: usize,
    /// True separation after the step (m).
    pub separation: f64,
    /// The person's speed over the current frame interval (m/s).
    pub person_speed: f64,
    /// The robot's velocity toward the person after the step (m/s; negative = moving away).
    pub robot_approach: f64,
}

/// What the replay of one scene measured.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneReport {
    /// Scene name (the file stem).
    pub scene: String,
    /// The scene's candidate goals.
    pub goals: Vec<Goal>,
    /// Segments replayed.
    pub tracks: usize,
    /// Control steps taken.
    pub steps: usize,
    /// Simulated time (s).
    pub simulated_s: f64,
    /// Goal accuracy after 25 / 50 / 75 % of each segment's frames (at least 2), averaged
    /// over segments.
    pub accuracy_at: [f64; 3],
    /// Separation violations.
    pub violations: Violations,
    /// Every violating step.
    pub violation_steps: Vec<ViolationStep>,
    /// Smallest true robot–person distance after a step (m).
    pub min_separation: f64,
    /// Fallback decisions by reason code ([`FallbackReason::code`]).
    ///
    /// [`FallbackReason::code`]: super::FallbackReason::code
    pub fallbacks: BTreeMap<String, usize>,
    /// Decisions that were neither fresh nor carried a fallback reason (must be 0).
    pub unexplained: usize,
    /// Step latency (µs) over every step of the scene.
    pub latency: Percentiles,
}

/// Replays one scene file.
///
/// # Errors
/// [`ReplaySettings::validate`]'s errors; [`Error::InvalidValue`] when the file cannot be
/// read or parsed, or holds no segment of at least `min_frames` frames; the engine's
/// construction errors.
pub fn replay_scene(path: &Path, settings: &ReplaySettings) -> Result<SceneReport> {
    settings.validate()?;
    let (tracks, step) = load(path)?;
    let scene = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    replay_tracks(&scene, &tracks, step, settings)
}

/// Replays every `*.csv` scene in `dir`, in file-name order.
///
/// # Errors
/// [`Error::InvalidValue`] when the directory cannot be read or holds no `.csv` file; the
/// first scene's error otherwise (see [`replay_scene`]).
pub fn replay_all(dir: &Path, settings: &ReplaySettings) -> Result<Vec<SceneReport>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::invalid_value("dir", format_args!("cannot read {}: {e}", dir.display()))
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::invalid_value(
            "dir",
            format_args!("no .csv scene in {}", dir.display()),
        ));
    }
    files.iter().map(|f| replay_scene(f, settings)).collect()
}

/// The mean over scenes of the per-scene figures: accuracies, violations (summed), the
/// smallest separation (minimum), fallbacks (summed) and the latency percentiles (means of the
/// scenes' percentiles; `max` is the largest). `None` for an empty slice.
#[must_use]
pub fn mean_report(reports: &[SceneReport]) -> Option<SceneReport> {
    let n = reports.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mut m = SceneReport {
        scene: "mean".into(),
        goals: Vec::new(),
        tracks: 0,
        steps: 0,
        simulated_s: 0.0,
        accuracy_at: [0.0; 3],
        violations: Violations::default(),
        violation_steps: Vec::new(),
        min_separation: f64::INFINITY,
        fallbacks: BTreeMap::new(),
        unexplained: 0,
        latency: Percentiles::default(),
    };
    for r in reports {
        m.tracks += r.tracks;
        m.steps += r.steps;
        m.simulated_s += r.simulated_s;
        for (a, b) in m.accuracy_at.iter_mut().zip(r.accuracy_at) {
            *a += b / nf;
        }
        m.violations.add(&r.violations);
        m.violation_steps.extend_from_slice(&r.violation_steps);
        m.min_separation = m.min_separation.min(r.min_separation);
        for (k, v) in &r.fallbacks {
            *m.fallbacks.entry(k.clone()).or_default() += v;
        }
        m.unexplained += r.unexplained;
        let (l, p) = (&mut m.latency, &r.latency);
        l.p50 += p.p50 / nf;
        l.p95 += p.p95 / nf;
        l.p99 += p.p99 / nf;
        l.mean += p.mean / nf;
        l.max = l.max.max(p.max);
    }
    Some(m)
}

/// Replays parsed tracks (`frame_step` is the scene's frame numbering step, as returned by
/// [`crate::belief::eth_ucy::parse`]).
///
/// # Errors
/// As [`replay_scene`], less the I/O; [`Error::InvalidValue`] naming `frame_step` when it is
/// not positive; [`Error::Shape`] / [`Error::NonFinite`] / [`Error::InvalidValue`] naming
/// `tracks` for a track whose frames and positions differ in length, hold NaN/inf or do not
/// increase.
pub fn replay_tracks(
    scene: &str,
    tracks: &[Track],
    frame_step: i64,
    settings: &ReplaySettings,
) -> Result<SceneReport> {
    settings.validate()?;
    if frame_step <= 0 {
        return Err(Error::invalid_value(
            "frame_step",
            format_args!("must be positive, got {frame_step}"),
        ));
    }
    // Tracks are plain data (public fields): check them before slicing by index.
    for t in tracks {
        if t.frames.len() != t.xy.len() {
            return Err(Error::shape(
                "tracks",
                format_args!(
                    "track {}: {} frames but {} positions",
                    t.id,
                    t.frames.len(),
                    t.xy.len()
                ),
            ));
        }
        crate::error::check_finite("tracks", t.xy.iter().flatten())?;
        if t.frames.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid_value(
                "tracks",
                format_args!("track {}: frames must increase", t.id),
            ));
        }
    }
    let segs: Vec<Track> = tracks
        .iter()
        .flat_map(|t| t.contiguous_segments(frame_step))
        .filter(|s| s.xy.len() >= settings.min_frames)
        .collect();
    if segs.is_empty() {
        return Err(Error::invalid_value(
            "tracks",
            format_args!(
                "scene {scene:?} has no segment of at least {} frames",
                settings.min_frames
            ),
        ));
    }
    let ends: Vec<[f64; 2]> = segs.iter().filter_map(|s| s.xy.last().copied()).collect();
    let (goals, labels) = kmeans(&ends, settings.goals, 0);
    let workspace = bounding_box(tracks, settings.margin)?;

    let chosen: Vec<usize> = match settings.max_tracks {
        Some(m) if m < segs.len() => (0..m).map(|i| i * segs.len() / m).collect(),
        _ => (0..segs.len()).collect(),
    };
    let mut acc = Accumulator::default();
    let mut hits = [0usize; 3];
    for &i in &chosen {
        let correct = replay_segment(
            &segs[i], labels[i], &goals, workspace, settings, i as u64, &mut acc,
        )?;
        for (h, c) in hits.iter_mut().zip(correct) {
            *h += usize::from(c);
        }
    }
    let nt = chosen.len();
    Ok(SceneReport {
        scene: scene.to_string(),
        goals,
        tracks: nt,
        steps: acc.latency.len(),
        simulated_s: acc.simulated_s,
        accuracy_at: hits.map(|h| h as f64 / nt as f64),
        violations: acc.violations,
        violation_steps: acc.violation_steps,
        min_separation: acc.min_separation,
        fallbacks: acc.fallbacks,
        unexplained: acc.unexplained,
        latency: Percentiles::of(&acc.latency),
    })
}

#[derive(Debug)]
struct Accumulator {
    latency: Vec<Duration>,
    simulated_s: f64,
    violations: Violations,
    violation_steps: Vec<ViolationStep>,
    min_separation: f64,
    fallbacks: BTreeMap<String, usize>,
    unexplained: usize,
}

impl Default for Accumulator {
    fn default() -> Self {
        Self {
            latency: Vec::new(),
            simulated_s: 0.0,
            violations: Violations::default(),
            violation_steps: Vec::new(),
            min_separation: f64::INFINITY,
            fallbacks: BTreeMap::new(),
            unexplained: 0,
        }
    }
}

/// Runs one segment; returns whether the goal was right at each accuracy fraction.
fn replay_segment(
    seg: &Track,
    label: usize,
    goals: &[Goal],
    workspace: Workspace,
    s: &ReplaySettings,
    index: u64,
    acc: &mut Accumulator,
) -> Result<[bool; 3]> {
    let spf = s.steps_per_frame()?;
    let n = seg.xy.len();
    let robot = RobotModel::DoubleIntegrator {
        max_accel: s.robot_max_accel,
        max_speed: s.robot_max_speed,
    };
    let mut cfg = EngineConfig::new(goals.to_vec(), workspace);
    cfg.robot = robot.clone();
    cfg.human = s.human.clone();
    cfg.human.seed = s.human.seed.wrapping_add(index);
    cfg.safety = s.safety;
    cfg.timing = s.timing;
    let mut engine = IntentEngine::new(cfg)?;

    let (start, goal) = crossing(seg, workspace, s);
    engine.set_robot_goal(goal)?;
    let mut x = [start[0], start[1], 0.0, 0.0];

    // The control step after which each accuracy fraction is read (the step assimilating
    // the last observed frame).
    let read_at = ACCURACY_FRACTIONS.map(|f| {
        let frames = ((f * n as f64).round() as usize).clamp(2, n);
        (frames - 1) * spf
    });
    let mut correct = [false; 3];
    let tc = s.timing.control_period;
    let dmin = s.safety.min_separation;
    let last = (n - 1) * spf;
    let mut violated = false;
    for j in 0..=last {
        let t = j as f64 * tc;
        let obs = (j % spf == 0).then(|| seg.xy[j / spf]);
        let d = engine.step(obs, &x, t);
        acc.latency.push(d.timings.total);
        if let Some(r) = d.fallback {
            *acc.fallbacks.entry(r.code().to_string()).or_default() += 1;
        } else if !d.fresh {
            acc.unexplained += 1;
        }
        for (c, &at) in correct.iter_mut().zip(&read_at) {
            if at == j {
                *c = argmax(&d.goal_probabilities) == Some(label);
            }
        }
        if j == last {
            break;
        }
        plant(&robot, &mut x, &d.command, tc)?;
        // The person at the end of the control period, between frames f and f + 1.
        let (f, r) = ((j + 1) / spf, (j + 1) % spf);
        let p = if r == 0 {
            seg.xy[f]
        } else {
            let (a, b) = (seg.xy[f], seg.xy[f + 1]);
            let u = r as f64 / spf as f64;
            [a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1])]
        };
        let (dx, dy) = (p[0] - x[0], p[1] - x[1]);
        let sep = dx.hypot(dy);
        acc.min_separation = acc.min_separation.min(sep);
        if sep < dmin {
            violated = true;
            let v = &mut acc.violations;
            v.total += 1;
            let fi = j / spf;
            let (a, b) = (seg.xy[fi], seg.xy[(fi + 1).min(n - 1)]);
            let person_speed = (b[0] - a[0]).hypot(b[1] - a[1]) / FRAME_PERIOD;
            if person_speed > s.safety.human_speed {
                v.person_too_fast += 1;
            }
            let approach = if sep > 1e-9 {
                (x[2] * dx + x[3] * dy) / sep
            } else {
                x[2].hypot(x[3])
            };
            if approach > APPROACH_EPS {
                v.robot_approaching += 1;
            }
            if x[2].hypot(x[3]) <= APPROACH_EPS {
                v.robot_at_rest += 1;
            }
            acc.violation_steps.push(ViolationStep {
                track: seg.id,
                step: j,
                separation: sep,
                person_speed,
                robot_approach: approach,
            });
        }
    }
    if violated {
        acc.violations.tracks += 1;
    }
    acc.simulated_s += last as f64 * tc;
    Ok(correct)
}

/// The robot's start and goal: either side of the segment's midpoint along the normal to its
/// overall direction, at the distance the robot covers at full speed while the person walks to
/// the midpoint.
fn crossing(seg: &Track, ws: Workspace, s: &ReplaySettings) -> ([f64; 2], [f64; 2]) {
    let centre = [0.5 * (ws.x_min + ws.x_max), 0.5 * (ws.y_min + ws.y_max)];
    let a = seg.xy.first().copied().unwrap_or(centre);
    let b = seg.xy.last().copied().unwrap_or(centre);
    let m = [0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])];
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len = dx.hypot(dy);
    let n = if len > 1e-6 {
        [-dy / len, dx / len]
    } else {
        [0.0, 1.0]
    };
    // Time to reach full speed and the distance covered meanwhile.
    let (v, acc) = (s.robot_max_speed, s.robot_max_accel);
    let t_mid = 0.5 * (seg.xy.len().saturating_sub(1)) as f64 * FRAME_PERIOD;
    let ramp = v / acc;
    let reach = v * (t_mid - ramp).max(0.0) + 0.5 * v * ramp.min(t_mid);
    let l = reach.clamp(s.crossing_half_length[0], s.crossing_half_length[1]);
    let inset = 0.1;
    let clamp = |p: [f64; 2]| {
        [
            p[0].clamp(ws.x_min + inset, ws.x_max - inset),
            p[1].clamp(ws.y_min + inset, ws.y_max - inset),
        ]
    };
    (
        clamp([m[0] + l * n[0], m[1] + l * n[1]]),
        clamp([m[0] - l * n[0], m[1] - l * n[1]]),
    )
}

fn argmax(p: &[f64]) -> Option<usize> {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

fn bounding_box(tracks: &[Track], margin: f64) -> Result<Workspace> {
    let mut w = Workspace {
        x_min: f64::INFINITY,
        x_max: f64::NEG_INFINITY,
        y_min: f64::INFINITY,
        y_max: f64::NEG_INFINITY,
    };
    for p in tracks.iter().flat_map(|t| &t.xy) {
        w.x_min = w.x_min.min(p[0]);
        w.x_max = w.x_max.max(p[0]);
        w.y_min = w.y_min.min(p[1]);
        w.y_max = w.y_max.max(p[1]);
    }
    // At least a 1 m box even for a scene of one standing person.
    let margin = margin.max(0.5);
    w.x_min -= margin;
    w.x_max += margin;
    w.y_min -= margin;
    w.y_max += margin;
    if !(w.x_min < w.x_max && w.y_min < w.y_max) {
        return Err(Error::invalid_value("tracks", "no finite position"));
    }
    Ok(w)
}

/// k-means (k-means++ seeding, then Lloyd's iterations) of `pts`: goals as discs (centre, RMS
/// radius of the members) and each point's cluster. Fewer than `k` distinct points give fewer
/// goals.
fn kmeans(pts: &[[f64; 2]], k: usize, seed: u64) -> (Vec<Goal>, Vec<usize>) {
    let d2 = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut c: Vec<[f64; 2]> = Vec::with_capacity(k);
    if pts.is_empty() || k == 0 {
        return (Vec::new(), Vec::new());
    }
    c.push(pts[rng.random_range(0..pts.len())]);
    let mut dist: Vec<f64> = pts.iter().map(|&p| d2(p, c[0])).collect();
    while c.len() < k {
        let total: f64 = dist.iter().sum();
        if total <= 0.0 {
            break; // every point coincides with a centre
        }
        let mut u = rng.random::<f64>() * total;
        let mut pick = pts.len() - 1;
        for (i, &d) in dist.iter().enumerate() {
            if u < d {
                pick = i;
                break;
            }
            u -= d;
        }
        c.push(pts[pick]);
        for (d, &p) in dist.iter_mut().zip(pts) {
            *d = d.min(d2(p, pts[pick]));
        }
    }
    let nearest = |p: [f64; 2], c: &[[f64; 2]]| {
        (0..c.len())
            .min_by(|&a, &b| d2(p, c[a]).total_cmp(&d2(p, c[b])))
            .unwrap_or(0)
    };
    let mut labels = vec![0; pts.len()];
    for _ in 0..100 {
        for (l, &p) in labels.iter_mut().zip(pts) {
            *l = nearest(p, &c);
        }
        let mut sum = vec![[0.0; 3]; c.len()];
        for (&l, p) in labels.iter().zip(pts) {
            sum[l][0] += p[0];
            sum[l][1] += p[1];
            sum[l][2] += 1.0;
        }
        let mut moved = false;
        for (cj, s) in c.iter_mut().zip(&sum) {
            if s[2] > 0.0 {
                let new = [s[0] / s[2], s[1] / s[2]];
                moved |= new != *cj;
                *cj = new;
            }
        }
        if !moved {
            break;
        }
    }
    for (l, &p) in labels.iter_mut().zip(pts) {
        *l = nearest(p, &c);
    }
    let mut ss = vec![[0.0; 2]; c.len()];
    for (&l, &p) in labels.iter().zip(pts) {
        ss[l][0] += d2(p, c[l]);
        ss[l][1] += 1.0;
    }
    let goals = c
        .iter()
        .zip(&ss)
        .map(|(cj, s)| Goal {
            x: cj[0],
            y: cj[1],
            radius: if s[1] > 0.0 {
                (s[0] / s[1]).sqrt()
            } else {
                0.0
            },
        })
        .collect();
    (goals, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::belief::eth_ucy::parse;

    #[test]
    fn kmeans_separates_three_blobs() {
        let mut pts = Vec::new();
        for (cx, cy) in [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)] {
            for i in 0..20 {
                let a = f64::from(i) * 0.3;
                pts.push([cx + 0.2 * a.cos(), cy + 0.2 * a.sin()]);
            }
        }
        let (goals, labels) = kmeans(&pts, 3, 0);
        assert_eq!(goals.len(), 3);
        for blob in labels.chunks(20) {
            assert!(blob.iter().all(|&l| l == blob[0]), "{labels:?}");
        }
        // The points do not go all the way round each blob: the centroid is off by < 0.02.
        assert!(
            goals.iter().all(|g| (g.radius - 0.2).abs() < 0.02),
            "{goals:?}"
        );
        // Coincident points: fewer goals, no panic.
        let (g, l) = kmeans(&[[1.0, 1.0]; 5], 3, 0);
        assert_eq!((g.len(), l.len()), (1, 5));
    }

    #[test]
    fn settings_are_checked() {
        let bad = ReplaySettings {
            timing: Timing {
                control_period: 0.15,
                ..Timing::default()
            },
            ..ReplaySettings::default()
        };
        assert!(bad.validate().is_err());
        assert!(ReplaySettings {
            min_frames: 1,
            ..ReplaySettings::default()
        }
        .validate()
        .is_err());
        assert!(ReplaySettings::default().validate().is_ok());
    }

    #[test]
    fn short_or_missing_scenes_are_errors() {
        let (tracks, step) = parse("frame,ped_id,x,y\n0,1,0.0,0.0\n10,1,0.5,0.0\n").unwrap();
        assert!(replay_tracks("tiny", &tracks, step, &ReplaySettings::default()).is_err());
        assert!(replay_scene(Path::new("/nonexistent/x.csv"), &ReplaySettings::default()).is_err());
        assert!(replay_all(Path::new("/nonexistent"), &ReplaySettings::default()).is_err());
    }

    #[test]
    fn synthetic_crossing_runs() {
        // Two people walking left to right and one walking up, 12 frames each.
        let mut csv = String::from("frame,ped_id,x,y\n");
        for f in 0..12 {
            let u = f64::from(f) * 0.5;
            csv += &format!("{},1,{},{}\n", 10 * f, u, 0.0);
            csv += &format!("{},2,{},{}\n", 10 * f, u, 0.3);
            csv += &format!("{},3,{},{}\n", 10 * f, 3.0, -3.0 + u);
        }
        let (tracks, step) = parse(&csv).unwrap();
        let s = ReplaySettings {
            goals: 2,
            human: HumanModel {
                n_particles: 100,
                ..ReplaySettings::default().human
            },
            ..ReplaySettings::default()
        }
        .with_relaxed_budgets();
        let r = replay_tracks("synthetic", &tracks, step, &s).unwrap();
        assert_eq!(r.tracks, 3);
        assert_eq!(r.steps, 3 * (11 * 4 + 1));
        assert_eq!(r.unexplained, 0);
        assert!(r.min_separation.is_finite() && r.latency.p50 > 0.0);
        assert!(r.accuracy_at.iter().all(|a| (0.0..=1.0).contains(a)));
    }
}
