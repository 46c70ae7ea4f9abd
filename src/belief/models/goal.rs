//! Goal inference: a person walking in the plane toward one of K goals.
//!
//! State per particle: position `(x, y)`, velocity `(vx, vy)`, and — Rao-Blackwellised — the
//! particle's posterior probabilities of the K goals given its own path. Given goal `g`, the
//! velocity relaxes toward a goal-directed target velocity `u_g(p)` at rate `α` (the
//! *rationality*: how strongly the person steers toward their goal), with white noise:
//!
//! ```text
//! v' = v + α·dt·(u_g(p) − v) + σ_v·√dt·ε,   p' = p + dt·v',   z = p + N(0, σ_z² I)
//! ```
//!
//! `u_g` is either [`GoalVelocity::ConstantSpeed`] (walk at `speed` toward the goal, slowing
//! down within `slow_radius` of it) or [`GoalVelocity::Linear`] (`u_g = gain·(g − p)`, which
//! makes the model linear-Gaussian per goal, so the exact goal posterior is available from K
//! Kalman filters — the reference the tests use).
//!
//! **Why Rao-Blackwellise the goal.** Conditioned on a particle's path the goal is a discrete
//! hidden variable whose posterior is exact and cheap: each step samples the goal from the
//! particle's current goal probabilities (so the path follows the exact marginal transition),
//! then multiplies every goal's probability by its transition density `N(v'; m_g, σ_v² dt)` and
//! renormalises. The goal posterior is the weighted average of those per-particle
//! probabilities — far lower variance than a sampled goal, and goals can be added or removed
//! at run time by editing one row. An optional switching probability per step makes the goal
//! an HMM (a forward step per particle before sampling).

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::belief::filter::{
    FilterSettings, Model, ParticleFilter, Particles, ParticlesRef, StepInfo,
};
use crate::belief::noise::{fill_normal, normal_pair_at, uniform_at};
use crate::error::{check_finite, check_positive, Error, Result};
use crate::linalg::simd::{self, SimdTask};

/// A goal: a point (`radius = 0`) or a disc.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Goal {
    /// Centre, x (m).
    pub x: f64,
    /// Centre, y (m).
    pub y: f64,
    /// Radius of the goal region (m); 0 for a point.
    pub radius: f64,
}

impl Goal {
    /// A point goal.
    #[must_use]
    pub fn point(x: f64, y: f64) -> Self {
        Self { x, y, radius: 0.0 }
    }
}

/// How the goal-directed target velocity depends on position.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum GoalVelocity {
    /// `speed` toward the goal, scaled down linearly within `slow_radius` of its region.
    ConstantSpeed {
        /// Distance from the goal region over which the person slows to a stop (m, > 0).
        slow_radius: f64,
    },
    /// The person's own current speed `|v|` toward the goal (only the heading is goal-directed),
    /// scaled down within `slow_radius`: suits crowds whose walking speeds vary widely.
    Heading {
        /// Distance from the goal region over which the person slows to a stop (m, > 0).
        slow_radius: f64,
    },
    /// `gain · (goal − p)`: linear-Gaussian per goal (for exact reference posteriors).
    Linear {
        /// Gain (1/s).
        gain: f64,
    },
}

/// Parameters of the goal-inference model.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GoalModelSettings {
    /// Time step between observations (s).
    pub dt: f64,
    /// Nominal walking speed (m/s).
    pub speed: f64,
    /// Rationality: rate at which velocity relaxes toward the goal-directed velocity (1/s).
    pub rationality: f64,
    /// Velocity noise intensity σ_v (m/s per √s).
    pub velocity_noise: f64,
    /// Standard deviation of the position observation noise (m).
    pub obs_noise: f64,
    /// Probability per step that the person switches to a goal drawn from the goal prior
    /// (uniform unless set with [`GoalModel::with_prior`]); 0 = fixed goal. Switching to the
    /// prior keeps the prior stationary: with no observations the goal probabilities stay
    /// at the prior.
    pub switch_prob: f64,
    /// Target velocity model.
    pub velocity: GoalVelocity,
    /// Initial mean `[x, y, vx, vy]`.
    pub init_mean: [f64; 4],
    /// Initial standard deviations `[x, y, vx, vy]`.
    pub init_std: [f64; 4],
    /// Use the locally optimal ("guided") proposal instead of the bootstrap one (see
    /// [`GoalModel::with_guided`]).
    #[serde(default)]
    pub guided: bool,
}

impl Default for GoalModelSettings {
    fn default() -> Self {
        Self {
            dt: 0.1,
            speed: 1.2,
            rationality: 1.0,
            velocity_noise: 0.5,
            obs_noise: 0.05,
            switch_prob: 0.0,
            velocity: GoalVelocity::ConstantSpeed { slow_radius: 0.5 },
            init_mean: [0.0; 4],
            init_std: [0.05, 0.05, 1.0, 1.0],
            guided: false,
        }
    }
}

impl GoalModelSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        check_positive("dt", self.dt)?;
        check_positive("speed", self.speed)?;
        check_positive("obs_noise", self.obs_noise)?;
        check_positive("velocity_noise", self.velocity_noise)?;
        if !(self.rationality.is_finite() && self.rationality >= 0.0) {
            return Err(Error::invalid_value(
                "rationality",
                "must be >= 0 and finite",
            ));
        }
        if !(0.0..=1.0).contains(&self.switch_prob) {
            return Err(Error::invalid_value("switch_prob", "must be in [0, 1]"));
        }
        match self.velocity {
            GoalVelocity::ConstantSpeed { slow_radius } | GoalVelocity::Heading { slow_radius } => {
                check_positive("slow_radius", slow_radius)?;
            }
            GoalVelocity::Linear { gain } => {
                if !gain.is_finite() {
                    return Err(Error::invalid_value("gain", "must be finite"));
                }
            }
        }
        check_finite("init_mean", &self.init_mean)?;
        check_finite("init_std", &self.init_std)?;
        if self.init_std.iter().any(|&s| s < 0.0) {
            return Err(Error::invalid_value("init_std", "must be >= 0"));
        }
        Ok(())
    }
}

/// The goal-inference model (see the module docs). Observations are `[x, y]`.
#[derive(Clone, Debug)]
pub struct GoalModel {
    goals: Vec<Goal>,
    prior: Vec<f64>,
    s: GoalModelSettings,
}

fn check_goals(goals: &[Goal]) -> Result<()> {
    if goals.is_empty() {
        return Err(Error::invalid_value(
            "goals",
            "at least one goal is required",
        ));
    }
    for (i, g) in goals.iter().enumerate() {
        if !(g.x.is_finite() && g.y.is_finite() && g.radius.is_finite() && g.radius >= 0.0) {
            return Err(Error::invalid_value(
                "goals",
                format_args!("goal {i} must have finite coordinates and a radius >= 0"),
            ));
        }
    }
    Ok(())
}

impl GoalModel {
    /// A model over `goals` with a uniform goal prior.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] on zero goals, non-finite goals or invalid settings.
    pub fn new(goals: &[Goal], settings: GoalModelSettings) -> Result<Self> {
        check_goals(goals)?;
        settings.validate()?;
        let k = goals.len();
        Ok(Self {
            goals: goals.to_vec(),
            prior: vec![1.0 / k as f64; k],
            s: settings,
        })
    }

    /// Sets the goal prior (normalised here): the initial goal probabilities, and the
    /// distribution a switching person (`switch_prob > 0`) draws the new goal from. Typically
    /// scene statistics, e.g. how often each exit is taken.
    ///
    /// ```
    /// use intent_engine::belief::{Goal, GoalModel, GoalModelSettings};
    /// let goals = [Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)];
    /// let m = GoalModel::new(&goals, GoalModelSettings::default())?.with_prior(&[3.0, 1.0])?;
    /// assert_eq!(m.prior(), &[0.75, 0.25]);
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] on a length other than K; invalid weights as in
    /// [`crate::belief::resample::check_weights`].
    pub fn with_prior(mut self, prior: &[f64]) -> Result<Self> {
        if prior.len() != self.goals.len() {
            return Err(Error::shape(
                "prior",
                format_args!("expected {} values, got {}", self.goals.len(), prior.len()),
            ));
        }
        // Same checks as resampling weights, reported under this argument's name.
        let t = crate::belief::resample::check_weights(prior).map_err(|e| {
            Error::invalid_value("prior", e.to_string().trim_start_matches("weights: "))
        })?;
        // A prior that already sums to 1 up to rounding is kept bit for bit, so a stored
        // (normalised) prior rebuilds the same model.
        let prior: Vec<f64> = if (t - 1.0).abs() <= 4.0 * f64::EPSILON {
            prior.to_vec()
        } else {
            prior.iter().map(|p| p / t).collect()
        };
        self.set_prior(prior);
        Ok(self)
    }

    /// Stores a normalised prior, snapping an all-equal one to exactly `1/K`.
    fn set_prior(&mut self, mut prior: Vec<f64>) {
        let k = prior.len();
        if prior.iter().all(|&p| p == prior[0]) {
            prior.fill(1.0 / k as f64);
        }
        self.prior = prior;
    }

    /// Whether the prior is uniform (every entry exactly `1/K`, see `set_prior`).
    fn is_uniform(&self) -> bool {
        self.prior.iter().all(|&p| p == self.prior[0])
    }

    /// The goal prior (sums to 1).
    #[must_use]
    pub fn prior(&self) -> &[f64] {
        &self.prior
    }

    /// Uses the locally optimal ("guided") proposal (the setting
    /// [`GoalModelSettings::guided`]): given its goal, a particle's new
    /// velocity is drawn from its distribution conditioned on the observation (Gaussian, as
    /// the observation is linear in it), and weighted by the observation's predictive density
    /// `N(z; p + dt·m_g, (σ_z² + dt²·σ_v²·dt) I)`. Same target as the bootstrap proposal, but
    /// the weights no longer collapse when the observation noise is small next to the motion
    /// noise (precise tracks), where the bootstrap filter keeps only a few particles.
    ///
    /// ```
    /// use intent_engine::belief::{FilterSettings, Goal, GoalModel, GoalModelSettings, ParticleFilter};
    /// let s = GoalModelSettings { dt: 0.4, obs_noise: 0.01, velocity_noise: 0.6, ..Default::default() };
    /// let m = GoalModel::new(&[Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)], s)?.with_guided(true);
    /// let mut pf = ParticleFilter::new(m, FilterSettings { n_particles: 500, ..Default::default() })?;
    /// for t in 0..10 {
    ///     pf.step(&[0.48 * t as f64, 0.0])?;
    /// }
    /// assert!(pf.log_z().is_finite());
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    #[must_use]
    pub fn with_guided(mut self, guided: bool) -> Self {
        self.s.guided = guided;
        self
    }

    /// The goals.
    #[must_use]
    pub fn goals(&self) -> &[Goal] {
        &self.goals
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &GoalModelSettings {
        &self.s
    }

    /// Number of goals.
    #[must_use]
    pub fn n_goals(&self) -> usize {
        self.goals.len()
    }

    fn sd(&self) -> f64 {
        self.s.velocity_noise * self.s.dt.sqrt()
    }
}

impl Model for GoalModel {
    type Obs = [f64];

    fn state_dim(&self) -> usize {
        4 + self.goals.len()
    }

    fn scratch_per_particle(&self) -> usize {
        4
    }

    fn check_observation(&self, obs: &[f64]) -> Result<()> {
        if obs.len() != 2 {
            return Err(Error::shape(
                "observation",
                format_args!("expected [x, y], got {} values", obs.len()),
            ));
        }
        check_finite("observation", obs)
    }

    fn sample_initial(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]) {
        let len = p.len();
        let eps = &mut scratch[..4 * len];
        fill_normal(rng, eps);
        for c in 0..4 {
            let (m, sd) = (self.s.init_mean[c], self.s.init_std[c]);
            for (x, &e) in p.component_mut(c).iter_mut().zip(&eps[c * len..]) {
                *x = m + sd * e;
            }
        }
        for (g, &pr) in self.prior.iter().enumerate() {
            p.component_mut(4 + g).fill(pr);
        }
    }

    fn reinitialise(
        &self,
        p: &mut Particles<'_>,
        obs: &[f64],
        rng: &mut ChaCha8Rng,
        scratch: &mut [f64],
    ) {
        self.sample_initial(p, rng, scratch);
        let len = p.len();
        let eps = &mut scratch[..2 * len];
        fill_normal(rng, eps);
        for c in 0..2 {
            for (x, &e) in p.component_mut(c).iter_mut().zip(&eps[c * len..]) {
                *x = obs[c] + self.s.obs_noise * e;
            }
        }
    }

    fn propagate(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, _scratch: &mut [f64]) {
        let (key_u, key_n) = (rng.next_u64(), rng.next_u64());
        simd::dispatch(GoalKernel {
            m: self,
            data: p.components_mut(),
            key_u,
            key_n,
            obs: None,
        });
    }

    /// The bootstrap proposal (the transition itself) fused with the weighting: one pass
    /// that moves the particles and adds `log p(obs | x')`.
    fn propose(
        &self,
        p: &mut Particles<'_>,
        obs: &[f64],
        rng: &mut ChaCha8Rng,
        _scratch: &mut [f64],
        logw: &mut [f64],
    ) -> bool {
        let (key_u, key_n) = (rng.next_u64(), rng.next_u64());
        simd::dispatch(GoalKernel {
            m: self,
            data: p.components_mut(),
            key_u,
            key_n,
            obs: Some(([obs[0], obs[1]], logw)),
        });
        true
    }

    fn log_likelihood(
        &self,
        p: ParticlesRef<'_>,
        obs: &[f64],
        _scratch: &mut [f64],
        logw: &mut [f64],
    ) {
        simd::dispatch(GaussLik {
            x: p.component(0),
            y: p.component(1),
            zx: obs[0],
            zy: obs[1],
            sigma: self.s.obs_noise,
            logw,
        });
    }
}

struct GaussLik<'a> {
    x: &'a [f64],
    y: &'a [f64],
    zx: f64,
    zy: f64,
    sigma: f64,
    logw: &'a mut [f64],
}

impl SimdTask for GaussLik<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let c = -0.5 / (self.sigma * self.sigma);
        let k = -(2.0 * std::f64::consts::PI * self.sigma * self.sigma).ln();
        for ((lw, &x), &y) in self.logw.iter_mut().zip(self.x).zip(self.y) {
            let (dx, dy) = (self.zx - x, self.zy - y);
            *lw += simd::mul_add::<FMA>(c, dx * dx + dy * dy, k);
        }
    }
}

/// Goals whose target velocities the fused kernel keeps between its two goal loops.
const KEPT_GOALS: usize = 8;

/// Particles per block of the fused goal kernel: each stage is a loop over the block that
/// LLVM vectorises, and the block's temporaries (a few KiB) stay in L1.
const LANES: usize = 64;

/// One step of the goal model, fused into a single pass over blocks of [`LANES`] particles:
/// draw the noise (counter-based, so a pure function of the chunk's keys and the particle's
/// index), sample a goal from the particle's goal probabilities, move the particle, update its
/// goal probabilities (Rao-Blackwellisation) and, when `obs` is given, add the observation
/// log-likelihood to `logw`. Everything for a block stays in registers; nothing is written to
/// scratch memory. Target velocities are recomputed in the second goal loop rather than
/// stored, so any number of goals needs no buffer.
struct GoalKernel<'a, I> {
    m: &'a GoalModel,
    data: I,
    key_u: u64,
    key_n: u64,
    obs: Option<([f64; 2], &'a mut [f64])>,
}

/// The per-step constants of [`GoalKernel`].
struct KernelConsts {
    a: f64,
    sd: f64,
    dt: f64,
    keep: f64,
    jump: f64,
    /// The prior is uniform: switching keeps its historical `switch_prob / K` (`jump`).
    uniform: bool,
    speed: f64,
    velocity: GoalVelocity,
    switching: bool,
    /// The observation and its likelihood's constants: `log N(z; p, σ²I) = cz·|z − p|² + k0`.
    zx: f64,
    zy: f64,
    cz: f64,
    k0: f64,
    /// Guided proposal (only with an observation): v' = m + gain·(z − o − dt·m) + sdp·ε, and
    /// the weight `cg·|z − o − dt·m|² + k0g`.
    guided: bool,
    gain: f64,
    sdp: f64,
    cg: f64,
    k0g: f64,
}

impl<'a, I: Iterator<Item = &'a mut [f64]>> SimdTask for GoalKernel<'a, I> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let GoalKernel {
            m,
            mut data,
            key_u,
            key_n,
            obs,
        } = self;
        let s = &m.s;
        let k = m.goals.len();
        let (Some(px), Some(py), Some(vx), Some(vy)) =
            (data.next(), data.next(), data.next(), data.next())
        else {
            return;
        };
        let mut rows = smallvec_rows::Rows::new();
        for r in data.take(k) {
            rows.push(r);
        }
        let [zx, zy] = obs.as_ref().map_or([0.0; 2], |o| o.0);
        let sig = s.obs_noise;
        let guided = s.guided && obs.is_some();
        let mut logw = obs.map(|o| o.1);
        let sd = m.sd();
        // Predictive variance of z given the goal's mean velocity, per axis.
        let sv = sig * sig + s.dt * s.dt * sd * sd;
        let c = KernelConsts {
            zx,
            zy,
            cz: -0.5 / (sig * sig),
            k0: -(2.0 * std::f64::consts::PI * sig * sig).ln(),
            guided,
            gain: s.dt * sd * sd / sv,
            sdp: sd * sig / sv.sqrt(),
            cg: -0.5 / sv,
            k0g: -(2.0 * std::f64::consts::PI * sv).ln(),
            a: s.rationality * s.dt,
            sd,
            dt: s.dt,
            keep: 1.0 - s.switch_prob,
            jump: s.switch_prob / k as f64,
            uniform: m.is_uniform(),
            speed: s.speed,
            velocity: s.velocity,
            switching: s.switch_prob > 0.0,
        };
        // Target velocities of the first goals, kept between the kernel's two goal loops
        // (allocated once per call, not per block: zeroing it per block cost a memset of
        // 128 bytes per particle).
        let mut kept = [[0.0; LANES]; 2 * KEPT_GOALS];
        let len = px.len();
        let full = len / LANES * LANES;
        let mut i0 = 0;
        while i0 < full {
            goal_block::<FMA, LANES>(
                m, &c, i0, key_u, key_n, px, py, vx, vy, &mut rows, &mut kept, &mut logw,
            );
            i0 += LANES;
        }
        while i0 + 8 <= len {
            goal_block::<FMA, 8>(
                m, &c, i0, key_u, key_n, px, py, vx, vy, &mut rows, &mut kept, &mut logw,
            );
            i0 += 8;
        }
        while i0 < len {
            goal_block::<FMA, 1>(
                m, &c, i0, key_u, key_n, px, py, vx, vy, &mut rows, &mut kept, &mut logw,
            );
            i0 += 1;
        }
    }
}

/// `L` lanes of `s` from `i0` as an array (the caller guarantees `i0 + L <= s.len()`).
#[inline(always)]
fn lanes<const L: usize>(s: &mut [f64], i0: usize) -> Option<&mut [f64; L]> {
    s.get_mut(i0..i0 + L).and_then(|x| x.try_into().ok())
}

/// Goal-directed target velocity of goal `goal` for `L` lanes at positions `(x, y)` with
/// velocities `(vx, vy)`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn target_velocity<const L: usize>(
    c: &KernelConsts,
    goal: &Goal,
    x: &[f64; L],
    y: &[f64; L],
    vx: &[f64; L],
    vy: &[f64; L],
    tx: &mut [f64; L],
    ty: &mut [f64; L],
) {
    match c.velocity {
        GoalVelocity::Linear { gain } => {
            for l in 0..L {
                tx[l] = gain * (goal.x - x[l]);
                ty[l] = gain * (goal.y - y[l]);
            }
        }
        GoalVelocity::ConstantSpeed { slow_radius } => {
            let inv_slow = 1.0 / slow_radius;
            for l in 0..L {
                let (dx, dy) = (goal.x - x[l], goal.y - y[l]);
                let d = (dx * dx + dy * dy).sqrt();
                let ramp = ((d - goal.radius).max(0.0) * inv_slow).min(1.0);
                let sc = c.speed * ramp / d.max(1e-9);
                tx[l] = sc * dx;
                ty[l] = sc * dy;
            }
        }
        GoalVelocity::Heading { slow_radius } => {
            let inv_slow = 1.0 / slow_radius;
            for l in 0..L {
                let (dx, dy) = (goal.x - x[l], goal.y - y[l]);
                let d = (dx * dx + dy * dy).sqrt();
                let sp = (vx[l] * vx[l] + vy[l] * vy[l]).sqrt();
                let ramp = ((d - goal.radius).max(0.0) * inv_slow).min(1.0);
                let sc = sp * ramp / d.max(1e-9);
                tx[l] = sc * dx;
                ty[l] = sc * dy;
            }
        }
    }
}

/// The fused step for particles `i0..i0 + L` of a chunk (see [`GoalKernel`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn goal_block<const FMA: bool, const L: usize>(
    m: &GoalModel,
    c: &KernelConsts,
    i0: usize,
    key_u: u64,
    key_n: u64,
    px: &mut [f64],
    py: &mut [f64],
    vx: &mut [f64],
    vy: &mut [f64],
    rows: &mut smallvec_rows::Rows<'_>,
    kept: &mut [[f64; LANES]; 2 * KEPT_GOALS],
    logw: &mut Option<&mut [f64]>,
) {
    let k = m.goals.len();
    let (Some(px), Some(py), Some(vx), Some(vy)) = (
        lanes::<L>(px, i0),
        lanes::<L>(py, i0),
        lanes::<L>(vx, i0),
        lanes::<L>(vy, i0),
    ) else {
        return;
    };
    // Noise: one uniform (goal draw) and one Box–Muller pair (velocity) per particle.
    let (mut ug, mut e1, mut e2) = ([0.0; L], [0.0; L], [0.0; L]);
    for l in 0..L {
        let i = (i0 + l) as u64;
        ug[l] = uniform_at(key_u, i);
        (e1[l], e2[l]) = normal_pair_at::<FMA>(key_n, i);
    }
    let (ox, oy, ovx, ovy) = (*px, *py, *vx, *vy);
    let (mut tx, mut ty) = ([0.0; L], [0.0; L]);
    // Target velocities of the first `KEPT_GOALS` goals are kept in `kept` for the second goal
    // loop (beyond them they are recomputed there).
    // 1. Goal switching (HMM prediction), then the goal draw: the first goal whose
    //    cumulative probability exceeds u (the last one if rounding leaves u above them all);
    //    its target velocity is kept in (sx, sy).
    let (mut cum, mut sx, mut sy) = ([0.0; L], [0.0f64; L], [0.0f64; L]);
    for (g, goal) in m.goals.iter().enumerate() {
        let Some(r) = lanes::<L>(rows.get(g), i0) else {
            return;
        };
        if c.switching {
            // Switch to a goal drawn from the prior (`switch_prob / K` when uniform).
            let jump = if c.uniform {
                c.jump
            } else {
                m.s.switch_prob * m.prior[g]
            };
            for q in r.iter_mut() {
                *q = simd::mul_add::<FMA>(c.keep, *q, jump);
            }
        }
        target_velocity::<L>(c, goal, &ox, &oy, &ovx, &ovy, &mut tx, &mut ty);
        if g < KEPT_GOALS {
            kept[2 * g][..L].copy_from_slice(&tx);
            kept[2 * g + 1][..L].copy_from_slice(&ty);
        }
        let last = g + 1 == k;
        for l in 0..L {
            let prev = cum[l];
            cum[l] = prev + r[l];
            // `&` and `|`, not `&&`/`||`: no branch, so the loop vectorises.
            let pick = (ug[l] >= prev) & (last | (ug[l] < cum[l]));
            // A bitwise blend: LLVM turned `if pick { tx } else { sx }` into a branch on
            // which array to load from, which kept this loop scalar.
            let mask = u64::from(pick).wrapping_neg();
            sx[l] = f64::from_bits((tx[l].to_bits() & mask) | (sx[l].to_bits() & !mask));
            sy[l] = f64::from_bits((ty[l].to_bits() & mask) | (sy[l].to_bits() & !mask));
        }
    }
    // 2. New velocity and position. `(dvx, dvy)` is the new velocity minus the drawn goal's
    //    mean velocity (`sd·ε` for the bootstrap proposal); `(ix, iy)` the guided proposal's
    //    innovation z − o − dt·m.
    let (mut dvx, mut dvy) = ([0.0; L], [0.0; L]);
    let (mut ix, mut iy) = ([0.0; L], [0.0; L]);
    if c.guided {
        for l in 0..L {
            let mx = simd::mul_add::<FMA>(c.a, sx[l] - ovx[l], ovx[l]);
            let my = simd::mul_add::<FMA>(c.a, sy[l] - ovy[l], ovy[l]);
            ix[l] = c.zx - simd::mul_add::<FMA>(c.dt, mx, ox[l]);
            iy[l] = c.zy - simd::mul_add::<FMA>(c.dt, my, oy[l]);
            dvx[l] = simd::mul_add::<FMA>(c.gain, ix[l], c.sdp * e1[l]);
            dvy[l] = simd::mul_add::<FMA>(c.gain, iy[l], c.sdp * e2[l]);
            let (nvx, nvy) = (mx + dvx[l], my + dvy[l]);
            vx[l] = nvx;
            vy[l] = nvy;
            px[l] = simd::mul_add::<FMA>(c.dt, nvx, ox[l]);
            py[l] = simd::mul_add::<FMA>(c.dt, nvy, oy[l]);
        }
    } else {
        for l in 0..L {
            let nvx = simd::mul_add::<FMA>(
                c.a,
                sx[l] - ovx[l],
                simd::mul_add::<FMA>(c.sd, e1[l], ovx[l]),
            );
            let nvy = simd::mul_add::<FMA>(
                c.a,
                sy[l] - ovy[l],
                simd::mul_add::<FMA>(c.sd, e2[l], ovy[l]),
            );
            vx[l] = nvx;
            vy[l] = nvy;
            px[l] = simd::mul_add::<FMA>(c.dt, nvx, ox[l]);
            py[l] = simd::mul_add::<FMA>(c.dt, nvy, oy[l]);
            dvx[l] = c.sd * e1[l];
            dvy[l] = c.sd * e2[l];
        }
    }
    // 3. Rao-Blackwellised goal update: multiply goal g's probability by its transition
    //    density N(v'; m_g, sd²), relative to the drawn goal's: with d_g = a(t_sel − t_g) +
    //    sd·ε, the log-ratio is (|ε|² − |d_g|²/sd²)/2 ≤ |ε|²/2 (at most ~37 for these
    //    normals), so the exponentials neither overflow nor all underflow. (Guided: d_g =
    //    a(t_sel − t_g) + dv with the drawn dv, and the ratio is capped at e^700.)
    let ci = -0.5 / (c.sd * c.sd);
    let mut lsel = [0.0; L];
    let mut tot = [0.0; L];
    if c.guided {
        for l in 0..L {
            lsel[l] = -ci * (dvx[l] * dvx[l] + dvy[l] * dvy[l]);
        }
    } else {
        for l in 0..L {
            lsel[l] = 0.5 * (e1[l] * e1[l] + e2[l] * e2[l]);
        }
    }
    for (g, goal) in m.goals.iter().enumerate() {
        let Some(r) = lanes::<L>(rows.get(g), i0) else {
            return;
        };
        if g < KEPT_GOALS {
            tx.copy_from_slice(&kept[2 * g][..L]);
            ty.copy_from_slice(&kept[2 * g + 1][..L]);
        } else {
            target_velocity::<L>(c, goal, &ox, &oy, &ovx, &ovy, &mut tx, &mut ty);
        }
        for l in 0..L {
            let dx = simd::mul_add::<FMA>(c.a, sx[l] - tx[l], dvx[l]);
            let dy = simd::mul_add::<FMA>(c.a, sy[l] - ty[l], dvy[l]);
            let lg = simd::mul_add::<FMA>(ci, dx * dx + dy * dy, lsel[l]);
            // Not `clamp`: `max` first sends a NaN to −745, as before the cap was added.
            #[allow(clippy::manual_clamp)]
            let q = r[l] * simd::exp::<FMA>(lg.max(-745.0).min(700.0));
            r[l] = q;
            tot[l] += q;
        }
    }
    // tot > 0 in exact arithmetic (the drawn goal has p > 0 and ratio 1); guard underflow
    // and rounding by falling back to the prior (`inv = 0`, `add = 1`, times prior_g).
    let (mut inv, mut add) = ([0.0; L], [0.0; L]);
    for l in 0..L {
        let ok = tot[l] > 0.0 && tot[l] < f64::INFINITY;
        inv[l] = if ok { 1.0 / tot[l] } else { 0.0 };
        add[l] = if ok { 0.0 } else { 1.0 };
    }
    for (g, &pg) in m.prior.iter().enumerate() {
        let Some(r) = lanes::<L>(rows.get(g), i0) else {
            return;
        };
        for l in 0..L {
            r[l] = simd::mul_add::<FMA>(r[l], inv[l], add[l] * pg);
        }
    }
    // 4. Observation log-likelihood, while the new positions are in registers.
    // The constants come by value from `c` so that LLVM vectorises the loop.
    if let Some(lw) = logw.as_deref_mut().and_then(|lw| lanes::<L>(lw, i0)) {
        if c.guided {
            let (cg, k0g) = (c.cg, c.k0g);
            for l in 0..L {
                lw[l] += simd::mul_add::<FMA>(cg, ix[l] * ix[l] + iy[l] * iy[l], k0g);
            }
        } else {
            let (zx, zy, cz, k0) = (c.zx, c.zy, c.cz, c.k0);
            for l in 0..L {
                let (dx, dy) = (zx - px[l], zy - py[l]);
                lw[l] += simd::mul_add::<FMA>(cz, dx * dx + dy * dy, k0);
            }
        }
    }
}

/// A fixed-capacity list of row slices (no allocation for up to 64 goals, heap beyond).
mod smallvec_rows {
    pub(super) struct Rows<'a> {
        inline: [Option<&'a mut [f64]>; 64],
        n: usize,
        heap: Vec<&'a mut [f64]>,
    }
    impl<'a> Rows<'a> {
        pub(super) fn new() -> Self {
            Self {
                inline: [const { None }; 64],
                n: 0,
                heap: Vec::new(),
            }
        }
        pub(super) fn push(&mut self, r: &'a mut [f64]) {
            if self.n < 64 {
                self.inline[self.n] = Some(r);
            } else {
                self.heap.push(r);
            }
            self.n += 1;
        }
        #[inline(always)]
        pub(super) fn get(&mut self, g: usize) -> &mut [f64] {
            if g < 64 {
                self.inline[g].as_deref_mut().unwrap_or(&mut [])
            } else {
                &mut self.heap[g - 64][..]
            }
        }
    }
}

/// Online goal inference: a particle filter over [`GoalModel`] that initialises itself from
/// the first observation.
///
/// The first [`GoalInference::update`] draws the particles around the observation (position
/// std = `obs_noise`, velocity std = `speed`, goal probabilities = prior) and does not weight
/// them; later updates are filter steps. Goals may be added or removed at any time.
///
/// ```
/// use intent_engine::belief::{FilterSettings, Goal, GoalInference, GoalModelSettings};
/// let goals = [Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)];
/// let settings = GoalModelSettings { dt: 0.1, ..Default::default() };
/// let mut gi = GoalInference::new(&goals, settings, FilterSettings { n_particles: 2000, ..Default::default() })?;
/// for t in 0..20 {
///     gi.update([0.12 * t as f64, 0.0])?;     // walking along +x at 1.2 m/s
/// }
/// let p = gi.goal_probabilities();
/// assert!(p[0] > 0.9, "{p:?}");
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct GoalInference {
    pf: ParticleFilter<GoalModel>,
    initialised: bool,
    /// The motion model for predictions, when it differs from the filter's.
    forecast: Option<GoalModel>,
}

impl GoalInference {
    /// Builds the filter (particles are drawn at the first observation).
    ///
    /// # Errors
    /// Invalid goals or settings (zero goals, `n_particles == 0`, non-positive noise, …).
    pub fn new(goals: &[Goal], model: GoalModelSettings, filter: FilterSettings) -> Result<Self> {
        Self::from_model(GoalModel::new(goals, model)?, filter)
    }

    /// Builds the filter over a configured model, e.g. one with a goal prior
    /// ([`GoalModel::with_prior`]) or the guided proposal.
    ///
    /// ```
    /// use intent_engine::belief::{FilterSettings, Goal, GoalInference, GoalModel, GoalModelSettings};
    /// let goals = [Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)];
    /// let m = GoalModel::new(&goals, GoalModelSettings::default())?.with_prior(&[0.9, 0.1])?;
    /// let mut gi = GoalInference::from_model(m, FilterSettings { n_particles: 1000, ..Default::default() })?;
    /// let p = gi.goal_probabilities(); // the prior, before any observation
    /// assert!((p[0] - 0.9).abs() < 1e-12, "{p:?}");
    /// gi.update([0.0, 0.0])?;
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// Invalid filter settings (`n_particles == 0`, …).
    pub fn from_model(model: GoalModel, filter: FilterSettings) -> Result<Self> {
        Ok(Self {
            pf: ParticleFilter::new(model, filter)?,
            initialised: false,
            forecast: None,
        })
    }

    /// Sets the motion model that [`GoalInference::predict_into`] and
    /// [`GoalInference::sample_trajectories`] simulate the particles with (`None`: the
    /// filter's own). Inference and prediction may want different parameters: a high
    /// rationality at the nominal speed separates goals well from a few observations, while
    /// trajectories a few seconds ahead are better predicted at each person's own speed
    /// (`GoalVelocity::Heading`) with a slow turn toward the goal (low rationality). Only the
    /// motion settings are used (`dt`, `speed`, `rationality`, `velocity_noise`,
    /// `switch_prob`, `velocity`); the goals and the goal prior stay the filter's.
    ///
    /// ```
    /// use intent_engine::belief::{FilterSettings, Goal, GoalInference, GoalModelSettings, GoalVelocity};
    /// let goals = [Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)];
    /// let s = GoalModelSettings { dt: 0.4, ..Default::default() };
    /// let mut gi = GoalInference::new(&goals, s.clone(), FilterSettings { n_particles: 500, ..Default::default() })?;
    /// gi.set_forecast_settings(Some(GoalModelSettings {
    ///     rationality: 0.1,
    ///     velocity: GoalVelocity::Heading { slow_radius: 1.0 },
    ///     ..s
    /// }))?;
    /// for t in 0..8 {
    ///     gi.update([0.4 * t as f64, 0.0])?;
    /// }
    /// let (mut mean, mut cov) = (vec![0.0; 2 * 12], vec![0.0; 4 * 12]);
    /// gi.predict_into(12, 1, &mut mean, &mut cov)?;
    /// assert!(mean[2 * 11] > 4.0); // still heading along +x at about 1 m/s
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// Invalid settings (as [`GoalModelSettings::validate`]); the forecast model is unchanged.
    pub fn set_forecast_settings(&mut self, settings: Option<GoalModelSettings>) -> Result<()> {
        self.forecast = match settings {
            Some(s) => Some(self.forecast_model(s)?),
            None => None,
        };
        Ok(())
    }

    /// The forecast motion settings, if set (see [`GoalInference::set_forecast_settings`]).
    #[must_use]
    pub fn forecast_settings(&self) -> Option<&GoalModelSettings> {
        self.forecast.as_ref().map(GoalModel::settings)
    }

    /// The filter's goals and prior with motion settings `s`.
    fn forecast_model(&self, s: GoalModelSettings) -> Result<GoalModel> {
        let m = self.pf.model();
        GoalModel::new(&m.goals, s)?.with_prior(&m.prior)
    }

    /// Rebuilds the forecast model after a goal edit.
    fn sync_forecast(&mut self) -> Result<()> {
        if let Some(f) = self.forecast.take() {
            self.forecast = Some(self.forecast_model(f.s)?);
        }
        Ok(())
    }

    /// Assimilates an observed position `[x, y]`.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for NaN/inf (the belief is unchanged).
    pub fn update(&mut self, z: [f64; 2]) -> Result<StepInfo> {
        self.pf.model().check_observation(&z)?;
        let info = if self.initialised {
            self.pf.step(&z[..])?
        } else {
            let seed = self.pf.settings().seed;
            self.pf.reshape_state(
                |m| {
                    m.s.init_mean = [z[0], z[1], 0.0, 0.0];
                    m.s.init_std = [m.s.obs_noise, m.s.obs_noise, m.s.speed, m.s.speed];
                },
                |a, b| b.copy_from_slice(a),
            )?;
            self.pf.reset(seed);
            self.initialised = true;
            StepInfo {
                status: crate::belief::StepStatus::Ok,
                ess: self.pf.n_particles() as f64,
                log_likelihood: 0.0,
            }
        };
        Ok(info)
    }

    /// Posterior probability of each goal (sums to 1; the prior before any observation).
    #[must_use]
    pub fn goal_probabilities(&self) -> Vec<f64> {
        let mut p = vec![0.0; self.pf.model().n_goals()];
        goal_probabilities_into(&self.pf, &mut p);
        p
    }

    /// [`GoalInference::goal_probabilities`] into `out` (length K), without allocating.
    ///
    /// # Errors
    /// [`Error::Shape`] if `out.len() != K`.
    pub fn goal_probabilities_into(&self, out: &mut [f64]) -> Result<()> {
        let k = self.pf.model().n_goals();
        if out.len() != k {
            return Err(Error::shape(
                "out",
                format_args!(
                    "expected length {k} (the number of goals), got {}",
                    out.len()
                ),
            ));
        }
        goal_probabilities_into(&self.pf, out);
        Ok(())
    }

    /// The underlying filter.
    #[must_use]
    pub fn filter(&self) -> &ParticleFilter<GoalModel> {
        &self.pf
    }

    /// The underlying filter, mutable (e.g. to change parallelism).
    pub fn filter_mut(&mut self) -> &mut ParticleFilter<GoalModel> {
        &mut self.pf
    }

    /// Whether an observation has been assimilated.
    #[must_use]
    pub fn is_initialised(&self) -> bool {
        self.initialised
    }

    /// Adds a goal at run time. Every particle gives it probability `1/(K+1)` and scales the
    /// others by `K/(K+1)`; so does the goal prior (a uniform prior stays uniform).
    ///
    /// # Errors
    /// A non-finite goal or negative radius.
    pub fn add_goal(&mut self, goal: Goal) -> Result<()> {
        check_goals(&[goal])?;
        let k = self.pf.model().n_goals() as f64;
        self.pf.reshape_state(
            |m| {
                m.goals.push(goal);
                // As for the particles: the old goals keep their proportions.
                let mut prior: Vec<f64> = m.prior.iter().map(|p| p * k / (k + 1.0)).collect();
                prior.push(1.0 / (k + 1.0));
                if m.is_uniform() {
                    prior.fill(1.0);
                }
                m.set_prior(prior);
            },
            |a, b| {
                b[..a.len()].copy_from_slice(a);
                for q in &mut b[4..a.len()] {
                    *q *= k / (k + 1.0);
                }
                b[a.len()] = 1.0 / (k + 1.0);
            },
        )?;
        self.sync_forecast()
    }

    /// Removes goal `index`; particles renormalise their remaining goal probabilities (a
    /// particle that gave it all its mass falls back to uniform).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for an index out of range or removing the last goal.
    pub fn remove_goal(&mut self, index: usize) -> Result<()> {
        let k = self.pf.model().n_goals();
        if index >= k {
            return Err(Error::invalid_value(
                "index",
                format_args!("goal index {index} out of range (K = {k})"),
            ));
        }
        if k == 1 {
            return Err(Error::invalid_value("index", "cannot remove the last goal"));
        }
        self.pf.reshape_state(
            |m| {
                m.goals.remove(index);
                m.prior.remove(index);
                let t: f64 = m.prior.iter().sum();
                let n = m.prior.len();
                let prior = if t > 0.0 && !m.is_uniform() {
                    m.prior.iter().map(|p| p / t).collect()
                } else {
                    vec![1.0 / n as f64; n]
                };
                m.set_prior(prior);
            },
            |a, b| {
                b[..4].copy_from_slice(&a[..4]);
                let mut j = 4;
                for (g, &q) in a[4..].iter().enumerate() {
                    if g != index {
                        b[j] = q;
                        j += 1;
                    }
                }
                let t: f64 = b[4..].iter().sum();
                let kk = (b.len() - 4) as f64;
                for q in &mut b[4..] {
                    *q = if t > 0.0 { *q / t } else { 1.0 / kk };
                }
            },
        )?;
        self.sync_forecast()
    }

    /// Predicted positions for steps `1..=horizon`: means `(horizon, 2)` and covariances
    /// `(horizon, 2, 2)` row-major, by simulating the weighted particles with `seed`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the outputs have the wrong lengths.
    pub fn predict_into(
        &mut self,
        horizon: usize,
        seed: u64,
        means: &mut [f64],
        covs: &mut [f64],
    ) -> Result<()> {
        if means.len() != 2 * horizon || covs.len() != 4 * horizon {
            return Err(Error::shape(
                "means/covs",
                format_args!("expected lengths {} and {}", 2 * horizon, 4 * horizon),
            ));
        }
        // Accumulate raw moments Σw x, Σw x² per step, then centre.
        means.fill(0.0);
        covs.fill(0.0);
        let record = |t: usize, p: crate::belief::ParticlesRef<'_>, w: &[f64]| {
            let (x, y) = (p.component(0), p.component(1));
            let (mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for i in 0..w.len() {
                let (wx, wy) = (w[i] * x[i], w[i] * y[i]);
                sx += wx;
                sy += wy;
                sxx += wx * x[i];
                sxy += wx * y[i];
                syy += wy * y[i];
            }
            means[2 * t] += sx;
            means[2 * t + 1] += sy;
            covs[4 * t] += sxx;
            covs[4 * t + 1] += sxy;
            covs[4 * t + 3] += syy;
        };
        match &self.forecast {
            Some(f) => self.pf.forecast_with(f, horizon, seed, record)?,
            None => self.pf.forecast(horizon, seed, record),
        }
        for t in 0..horizon {
            let (mx, my) = (means[2 * t], means[2 * t + 1]);
            covs[4 * t] -= mx * mx;
            covs[4 * t + 1] -= mx * my;
            covs[4 * t + 2] = covs[4 * t + 1];
            covs[4 * t + 3] -= my * my;
        }
        Ok(())
    }

    /// `n` sampled position trajectories over `horizon` steps, row-major `(n, horizon, 2)`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `horizon == 0`.
    pub fn sample_trajectories(&self, horizon: usize, n: usize, seed: u64) -> Result<Vec<f64>> {
        if horizon == 0 {
            return Err(Error::invalid_value("horizon", "must be >= 1"));
        }
        let mut out = vec![0.0; n * horizon * 2];
        let model = self.forecast.as_ref().unwrap_or(self.pf.model());
        self.pf
            .sample_trajectories_with(model, horizon, &[0, 1], seed, &mut out)?;
        Ok(out)
    }
}

/// Prediction-only steps and re-initialisation (missing observations, a person who left).
impl GoalInference {
    /// Advances the belief one time step without an observation (a missed or dropped
    /// measurement): particles move through the motion model and their goal probabilities
    /// follow the sampled velocities; weights are unchanged. Does nothing before the first
    /// observation. Allocation-free.
    ///
    /// ```
    /// use intent_engine::belief::{FilterSettings, Goal, GoalInference, GoalModelSettings};
    /// let goals = [Goal::point(5.0, 0.0), Goal::point(0.0, 5.0)];
    /// let mut gi = GoalInference::new(&goals, GoalModelSettings::default(),
    ///                                 FilterSettings { n_particles: 500, ..Default::default() })?;
    /// gi.predict();                       // nothing to predict yet
    /// assert!(!gi.is_initialised());
    /// gi.update([0.0, 0.0])?;
    /// gi.predict();
    /// assert_eq!(gi.filter().steps(), 1);
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn predict(&mut self) {
        if self.initialised {
            self.pf.predict();
        }
    }

    /// Forgets the person: the next [`GoalInference::update`] draws fresh particles around
    /// its observation (e.g. after the person left and someone re-entered the scene).
    pub fn reset(&mut self) {
        self.initialised = false;
    }
}

/// The goal posterior `Σᵢ wᵢ pᵢ(g)` of a filter over [`GoalModel`], into `out` (length K).
pub fn goal_probabilities_into(pf: &ParticleFilter<GoalModel>, out: &mut [f64]) {
    out.fill(0.0);
    let k = pf.model().n_goals().min(out.len());
    for (p, w) in pf.chunks() {
        for (g, o) in out.iter_mut().enumerate().take(k) {
            let row = p.component(4 + g);
            *o += row.iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
        }
    }
    let t: f64 = out.iter().sum();
    if t > 0.0 && t.is_finite() {
        out.iter_mut().for_each(|q| *q /= t);
    } else {
        out.fill(1.0 / k.max(1) as f64);
    }
}
