//! The generic particle filter: the algorithm, apart from the model.
//!
//! Particles are stored structure-of-arrays in fixed chunks of [`CHUNK`] particles: chunk `b`
//! is one contiguous block holding component 0 of its particles, then component 1, and so on.
//! Every per-particle loop runs chunk by chunk, each chunk with its own ChaCha8 stream derived
//! from the seed, and reductions combine per-chunk partials in chunk order — so results are
//! bit-identical for any thread count.
//!
//! Weights are kept as normalised log-weights. A step propagates (or proposes), adds the
//! log-likelihood, then in one fused pass per chunk forms `exp(ℓᵢ − max)`, its sum and sum of
//! squares: `log Z` gains `max + ln Σ`, the ESS is `(Σw)² / Σw²`, and when the ESS falls below
//! `ess_threshold · N` the offspring indices are drawn. The offspring are copied into a second
//! buffer (then swapped in) at the start of the next step, chunk by chunk just before each
//! chunk is propagated, which saves a pass over all particles; between the two, queries see
//! the weighted particles from before resampling, an equally valid (and less noisy)
//! representation of the same posterior. Nothing is allocated per step.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::resample::{resample_with, Resampling};
use crate::error::{Error, Result};
use crate::linalg::simd::{self, SimdTask};
use crate::Par;

/// Particles per chunk: the unit of parallel work and of RNG streams (fixed, so results do
/// not depend on the thread count).
pub const CHUNK: usize = 1024;

/// A mutable view of one chunk of particles (structure-of-arrays).
#[derive(Debug)]
pub struct Particles<'a> {
    data: &'a mut [f64],
    len: usize,
    start: usize,
}

impl<'a> Particles<'a> {
    /// Wraps `data` (`dim · len` values, component-major) as a chunk starting at particle
    /// `start`.
    ///
    /// # Panics
    /// If `len == 0` or `data.len()` is not a multiple of `len`.
    pub fn new(data: &'a mut [f64], len: usize, start: usize) -> Self {
        assert!(len > 0 && data.len().is_multiple_of(len), "chunk layout");
        Self { data, len, start }
    }

    /// Number of particles in the chunk.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (chunks are never empty).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the chunk's first particle in the filter.
    #[must_use]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Component `c` of every particle in the chunk.
    #[must_use]
    pub fn component(&self, c: usize) -> &[f64] {
        &self.data[c * self.len..(c + 1) * self.len]
    }

    /// Component `c`, mutable.
    pub fn component_mut(&mut self, c: usize) -> &mut [f64] {
        &mut self.data[c * self.len..(c + 1) * self.len]
    }

    /// All components, in order (`chunks_exact_mut(len)`), for models that update several at once.
    pub fn components_mut(&mut self) -> std::slice::ChunksExactMut<'_, f64> {
        self.data.chunks_exact_mut(self.len)
    }

    /// A read-only view.
    #[must_use]
    pub fn as_ref(&self) -> ParticlesRef<'_> {
        ParticlesRef {
            data: self.data,
            len: self.len,
            start: self.start,
        }
    }
}

/// A read-only view of one chunk of particles.
#[derive(Clone, Copy, Debug)]
pub struct ParticlesRef<'a> {
    data: &'a [f64],
    len: usize,
    start: usize,
}

impl<'a> ParticlesRef<'a> {
    /// Number of particles in the chunk.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (chunks are never empty).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Index of the chunk's first particle in the filter.
    #[must_use]
    pub fn start(&self) -> usize {
        self.start
    }

    /// Component `c` of every particle in the chunk.
    #[must_use]
    pub fn component(&self, c: usize) -> &'a [f64] {
        &self.data[c * self.len..(c + 1) * self.len]
    }
}

/// A state-space model, apart from the filtering algorithm.
///
/// The state of a particle is `state_dim()` floats. Methods receive a chunk of particles and
/// must fill or update every particle in it; they may use `scratch`
/// (`scratch_per_particle() · len` floats) freely and draw from `rng` (the chunk's own stream).
pub trait Model: Send + Sync {
    /// An observation (e.g. `[f64]` or `[f64; 2]`).
    type Obs: ?Sized + Sync;

    /// Floats per particle.
    fn state_dim(&self) -> usize;

    /// Scratch floats per particle that the methods need (default 0).
    fn scratch_per_particle(&self) -> usize {
        0
    }

    /// Validates an observation before any particle is touched.
    ///
    /// # Errors
    /// Wrong length or non-finite values, as the model defines.
    fn check_observation(&self, obs: &Self::Obs) -> Result<()>;

    /// Samples initial states.
    fn sample_initial(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]);

    /// Moves every particle one step through the transition (the bootstrap proposal).
    fn propagate(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]);

    /// Adds `log p(obs | xᵢ)` to `logw[i]` for each particle.
    fn log_likelihood(
        &self,
        p: ParticlesRef<'_>,
        obs: &Self::Obs,
        scratch: &mut [f64],
        logw: &mut [f64],
    );

    /// Optional guided proposal: move the particles with a proposal `q(x' | x, obs)` and add
    /// `log p(obs|x') + log p(x'|x) − log q(x'|x, obs)` to `logw`. Returns `false` (the default)
    /// when the model has none, and the filter then uses [`Model::propagate`] +
    /// [`Model::log_likelihood`].
    fn propose(
        &self,
        p: &mut Particles<'_>,
        obs: &Self::Obs,
        rng: &mut ChaCha8Rng,
        scratch: &mut [f64],
        logw: &mut [f64],
    ) -> bool {
        let _ = (p, obs, rng, scratch, logw);
        false
    }

    /// Re-draws particles after every weight collapsed to zero, given the observation that
    /// caused it. Defaults to [`Model::sample_initial`].
    fn reinitialise(
        &self,
        p: &mut Particles<'_>,
        obs: &Self::Obs,
        rng: &mut ChaCha8Rng,
        scratch: &mut [f64],
    ) {
        let _ = obs;
        self.sample_initial(p, rng, scratch);
    }
}

/// Particle-filter settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilterSettings {
    /// Number of particles `N` (≥ 1).
    pub n_particles: usize,
    /// Resampling scheme (default systematic).
    pub resampling: Resampling,
    /// Resample when `ESS < ess_threshold · N`; in `[0, 1]` (default 0.5; 1 = every step,
    /// 0 = never).
    pub ess_threshold: f64,
    /// Seed of every random stream.
    pub seed: u64,
    /// Parallelism (results do not depend on it).
    pub par: Par,
}

impl Default for FilterSettings {
    fn default() -> Self {
        Self {
            n_particles: 1000,
            resampling: Resampling::Systematic,
            ess_threshold: 0.5,
            seed: 0,
            par: Par::Seq,
        }
    }
}

impl FilterSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for `n_particles == 0` or a threshold outside `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if self.n_particles == 0 {
            return Err(Error::invalid_value("n_particles", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.ess_threshold) {
            return Err(Error::invalid_value(
                "ess_threshold",
                format_args!(
                    "must be a fraction of N in [0, 1], got {}",
                    self.ess_threshold
                ),
            ));
        }
        Ok(())
    }
}

/// What happened in one step: not an error, a status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepStatus {
    /// Weights updated normally.
    Ok,
    /// Weights updated, then the offspring were drawn (ESS below threshold); they replace the
    /// particles at the start of the next step, and until then the particles keep their
    /// weights.
    Resampled,
    /// Every weight was zero (the observation was impossible under every particle): the
    /// particles were re-drawn by [`Model::reinitialise`] with equal weights; `log Z` was not
    /// updated.
    Reinitialised,
}

/// Outcome of [`ParticleFilter::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// What happened.
    pub status: StepStatus,
    /// ESS after weighting, before any resampling.
    pub ess: f64,
    /// The step's increment of `log Z`: `log p(yₜ | y₁:ₜ₋₁)` (`-inf` on re-initialisation).
    pub log_likelihood: f64,
}

/// A particle filter over any [`Model`].
///
/// ```
/// use intent_engine::belief::{FilterSettings, LinearGaussian, ParticleFilter};
///
/// // x' = 0.9 x + N(0, 0.1), y = x + N(0, 0.5)
/// let m = LinearGaussian::new(1, 1, &[0.9], &[0.1], &[1.0], &[0.5], &[0.0], &[1.0])?;
/// let mut pf = ParticleFilter::new(m, FilterSettings { n_particles: 2000, seed: 1, ..Default::default() })?;
/// for y in [0.3, 0.1, -0.2] {
///     pf.step(&[y][..])?;
/// }
/// let mean = pf.mean();
/// assert!(mean[0].abs() < 0.5 && pf.log_z().is_finite());
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Debug)]
pub struct ParticleFilter<M: Model> {
    model: M,
    settings: FilterSettings,
    n: usize,
    dim: usize,
    states: Vec<f64>,
    spare: Vec<f64>,
    logw: Vec<f64>,
    w: Vec<f64>,
    idx: Vec<usize>,
    resample_scratch: Vec<f64>,
    scratch: Vec<f64>,
    rngs: Vec<ChaCha8Rng>,
    master: ChaCha8Rng,
    partial: Vec<[f64; 3]>,
    log_z: f64,
    ess: f64,
    steps: u64,
    /// The last step resampled: `idx` holds the offspring indices, not yet applied. The
    /// particles are moved into place chunk by chunk at the start of the next step (while
    /// each chunk is hot in cache, instead of a separate pass over all of them); until then
    /// the weighted particles before resampling (`states`, `w`) represent the posterior.
    pending: bool,
}

fn n_chunks(n: usize) -> usize {
    n.div_ceil(CHUNK)
}

impl<M: Model> ParticleFilter<M> {
    /// Builds the filter and samples the initial particles.
    ///
    /// # Errors
    /// Invalid settings ([`FilterSettings::validate`]), or a model with `state_dim() == 0`.
    pub fn new(model: M, settings: FilterSettings) -> Result<Self> {
        settings.validate()?;
        let dim = model.state_dim();
        if dim == 0 {
            return Err(Error::invalid_value(
                "model",
                "state dimension must be >= 1",
            ));
        }
        let n = settings.n_particles;
        let nc = n_chunks(n);
        let mut pf = Self {
            states: vec![0.0; n * dim],
            spare: vec![0.0; n * dim],
            logw: vec![0.0; n],
            w: vec![0.0; n],
            idx: vec![0; n],
            resample_scratch: vec![0.0; n],
            scratch: vec![0.0; n * model.scratch_per_particle().max(1)],
            rngs: Vec::with_capacity(nc),
            master: ChaCha8Rng::seed_from_u64(0),
            partial: vec![[0.0; 3]; nc],
            model,
            n,
            dim,
            log_z: 0.0,
            ess: n as f64,
            steps: 0,
            pending: false,
            settings,
        };
        pf.reset(pf.settings.seed);
        Ok(pf)
    }

    /// Re-seeds every stream and re-draws the initial particles with equal weights; `log Z`
    /// returns to 0.
    pub fn reset(&mut self, seed: u64) {
        self.settings.seed = seed;
        self.pending = false;
        self.master = ChaCha8Rng::seed_from_u64(seed);
        self.rngs.clear();
        for b in 0..n_chunks(self.n) {
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(b as u64 + 1);
            self.rngs.push(r);
        }
        let model = &self.model;
        for_each_chunk(
            self.settings.par,
            self.n,
            self.dim,
            &mut self.states,
            &mut self.logw,
            &mut self.w,
            &mut self.rngs,
            &mut self.scratch,
            &mut self.partial,
            |p, c| model.sample_initial(p, c.rng, c.scratch),
        );
        self.set_uniform_weights();
        self.log_z = 0.0;
        self.steps = 0;
    }

    fn set_uniform_weights(&mut self) {
        let n = self.n as f64;
        self.logw.fill(-n.ln());
        self.w.fill(1.0 / n);
        self.ess = n;
    }

    /// Assimilates one observation: propagate (or propose), weight, and resample if the ESS
    /// fell below the threshold.
    ///
    /// # Errors
    /// The model's [`Model::check_observation`] (nothing is changed then); a
    /// [`Error::Numerical`] if the model produced a `+inf` log-likelihood.
    pub fn step(&mut self, obs: &M::Obs) -> Result<StepInfo> {
        self.model.check_observation(obs)?;
        let model = &self.model;
        let par = self.settings.par;
        let (n, dim) = (self.n, self.dim);
        // A pending resample reads the old particles and writes each chunk's offspring into
        // the spare buffer, which then becomes the state.
        let (data, src) = if self.pending {
            (&mut self.spare, Some((&self.states[..], &self.idx[..])))
        } else {
            (&mut self.states, None)
        };
        let uniform = -(n as f64).ln();
        // Move, weigh and reduce each chunk while it is hot in cache: with the chunk's own
        // maximum m_b, w = exp(ℓ − m_b), S_b = Σw, S2_b = Σw² (NaN counts as impossible).
        for_each_chunk(
            par,
            n,
            dim,
            data,
            &mut self.logw,
            &mut self.w,
            &mut self.rngs,
            &mut self.scratch,
            &mut self.partial,
            |p, c| {
                if let Some((src, idx)) = src {
                    let start = p.start();
                    gather_block(n, dim, src, &idx[start..start + p.len()], p.data);
                    c.lw.fill(uniform);
                }
                if !model.propose(p, obs, c.rng, c.scratch, c.lw) {
                    model.propagate(p, c.rng, c.scratch);
                    model.log_likelihood(p.as_ref(), obs, c.scratch, c.lw);
                }
                let [m, ..] = simd::dispatch(ReduceTask {
                    op: Reduce::Max,
                    lw: &mut *c.lw,
                    w: &mut *c.w,
                });
                let mut r = simd::dispatch(ReduceTask {
                    op: Reduce::ExpSum(m),
                    lw: c.lw,
                    w: c.w,
                });
                r[0] = m;
                *c.partial = r;
            },
        );
        if self.pending {
            std::mem::swap(&mut self.states, &mut self.spare);
            self.pending = false;
        }
        self.steps += 1;
        let max = self
            .partial
            .iter()
            .map(|p| p[0])
            .fold(f64::NEG_INFINITY, f64::max);
        if max == f64::INFINITY {
            return Err(Error::Numerical {
                what: "particle filter step",
                detail: "the model returned a log-likelihood of +inf".into(),
            });
        }
        if max == f64::NEG_INFINITY {
            let model = &self.model;
            for_each_chunk(
                par,
                self.n,
                self.dim,
                &mut self.states,
                &mut self.logw,
                &mut self.w,
                &mut self.rngs,
                &mut self.scratch,
                &mut self.partial,
                |p, c| model.reinitialise(p, obs, c.rng, c.scratch),
            );
            self.set_uniform_weights();
            return Ok(StepInfo {
                status: StepStatus::Reinitialised,
                ess: 0.0,
                log_likelihood: f64::NEG_INFINITY,
            });
        }
        // Combine the chunks in order: S = Σ S_b e^{m_b − M}, S2 = Σ S2_b e^{2(m_b − M)}.
        let (mut s, mut s2) = (0.0, 0.0);
        for p in &mut self.partial {
            let f = if p[0] == f64::NEG_INFINITY {
                0.0
            } else {
                (p[0] - max).exp()
            };
            s += p[1] * f;
            s2 += p[2] * f * f;
            p[0] = f;
        }
        let lse = max + s.ln();
        self.log_z += lse;
        self.ess = s * s / s2;
        let ess = self.ess;
        let resampled = ess < self.settings.ess_threshold * self.n as f64;
        // Normalise: wᵢ · e^{m_b − M} / S per chunk.
        let inv = 1.0 / s;
        for (w, p) in self.w.chunks_mut(CHUNK).zip(&self.partial) {
            let f = p[0] * inv;
            w.iter_mut().for_each(|x| *x *= f);
        }
        self.logw.iter_mut().for_each(|l| *l -= lse);
        if resampled {
            resample_with(
                self.settings.resampling,
                &self.w,
                1.0,
                &mut self.master,
                &mut self.resample_scratch,
                &mut self.idx,
            );
            self.pending = true;
        }
        Ok(StepInfo {
            status: if resampled {
                StepStatus::Resampled
            } else {
                StepStatus::Ok
            },
            ess,
            log_likelihood: lse,
        })
    }

    /// Resamples with the current weights now (normally done by [`ParticleFilter::step`]):
    /// afterwards the particles are the offspring, with equal weights.
    pub fn resample(&mut self) {
        self.apply_pending();
        let s: f64 = self.w.iter().sum();
        resample_with(
            self.settings.resampling,
            &self.w,
            s,
            &mut self.master,
            &mut self.resample_scratch,
            &mut self.idx,
        );
        self.pending = true;
        self.apply_pending();
    }

    /// Moves the offspring of a pending resample into place in one pass (the step normally
    /// does this chunk by chunk).
    fn apply_pending(&mut self) {
        if !self.pending {
            return;
        }
        gather(
            self.settings.par,
            self.n,
            self.dim,
            &self.states,
            &self.idx,
            &mut self.spare,
        );
        std::mem::swap(&mut self.states, &mut self.spare);
        self.set_uniform_weights();
        self.pending = false;
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &FilterSettings {
        &self.settings
    }

    /// Sets the parallelism (results do not change).
    pub fn set_par(&mut self, par: Par) {
        self.settings.par = par;
    }

    /// Number of particles.
    #[must_use]
    pub fn n_particles(&self) -> usize {
        self.n
    }

    /// Floats per particle.
    #[must_use]
    pub fn state_dim(&self) -> usize {
        self.dim
    }

    /// Steps taken since construction or [`ParticleFilter::reset`].
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Running log-likelihood estimate `log Ẑ = Σₜ log p̂(yₜ | y₁:ₜ₋₁)`.
    #[must_use]
    pub fn log_z(&self) -> f64 {
        self.log_z
    }

    /// Effective sample size `1 / Σ wᵢ²` after the last weighting (before resampling).
    #[must_use]
    pub fn ess(&self) -> f64 {
        self.ess
    }

    /// Normalised weights (sum to 1).
    #[must_use]
    pub fn weights(&self) -> &[f64] {
        &self.w
    }

    /// Normalised log-weights.
    #[must_use]
    pub fn log_weights(&self) -> &[f64] {
        &self.logw
    }

    /// Iterates over `(chunk, weights of the chunk)` in particle order.
    pub fn chunks(&self) -> impl Iterator<Item = (ParticlesRef<'_>, &[f64])> + '_ {
        let dim = self.dim;
        self.states
            .chunks(dim * CHUNK)
            .zip(self.w.chunks(CHUNK))
            .enumerate()
            .map(move |(b, (d, w))| {
                (
                    ParticlesRef {
                        data: d,
                        len: w.len(),
                        start: b * CHUNK,
                    },
                    w,
                )
            })
    }

    /// Copies component `c` of every particle into `out` (length N).
    ///
    /// # Errors
    /// [`Error::Shape`] on a wrong `c` or `out` length.
    pub fn component_into(&self, c: usize, out: &mut [f64]) -> Result<()> {
        if c >= self.dim {
            return Err(Error::shape(
                "component",
                format_args!("must be < {}, got {c}", self.dim),
            ));
        }
        if out.len() != self.n {
            return Err(Error::shape(
                "out",
                format_args!("expected length {}, got {}", self.n, out.len()),
            ));
        }
        for (p, _) in self.chunks() {
            out[p.start()..p.start() + p.len()].copy_from_slice(p.component(c));
        }
        Ok(())
    }

    /// Weighted mean of the state, into `out` (length `state_dim`).
    ///
    /// # Errors
    /// [`Error::Shape`] on a wrong length.
    pub fn mean_into(&self, out: &mut [f64]) -> Result<()> {
        if out.len() != self.dim {
            return Err(Error::shape(
                "out",
                format_args!("expected length {}, got {}", self.dim, out.len()),
            ));
        }
        out.fill(0.0);
        for (p, w) in self.chunks() {
            for (c, o) in out.iter_mut().enumerate() {
                *o += dot(p.component(c), w);
            }
        }
        Ok(())
    }

    /// Weighted mean of the state.
    #[must_use]
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.dim];
        let _ = self.mean_into(&mut m);
        m
    }

    /// Weighted covariance of the state (row-major `dim × dim`), into `out`.
    ///
    /// # Errors
    /// [`Error::Shape`] on a wrong length; [`Error::NonFinite`] naming `mean`.
    pub fn covariance_into(&self, mean: &[f64], out: &mut [f64]) -> Result<()> {
        let d = self.dim;
        if out.len() != d * d || mean.len() != d {
            return Err(Error::shape(
                "out",
                format_args!("expected mean of {d} and out of {}", d * d),
            ));
        }
        crate::error::check_finite("mean", mean)?;
        out.fill(0.0);
        for (p, w) in self.chunks() {
            for a in 0..d {
                let xa = p.component(a);
                for b in 0..=a {
                    let xb = p.component(b);
                    let (ma, mb) = (mean[a], mean[b]);
                    let mut s = 0.0;
                    for i in 0..w.len() {
                        s += w[i] * (xa[i] - ma) * (xb[i] - mb);
                    }
                    out[a * d + b] += s;
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                out[b * d + a] = out[a * d + b];
            }
        }
        Ok(())
    }

    /// Weighted covariance of the state (row-major `dim × dim`).
    #[must_use]
    pub fn covariance(&self) -> Vec<f64> {
        let m = self.mean();
        let mut c = vec![0.0; self.dim * self.dim];
        let _ = self.covariance_into(&m, &mut c);
        c
    }

    /// Simulates the current particles `horizon` steps ahead through [`Model::propagate`] on a
    /// copy (the filter's state is untouched), calling `record(t, chunk, weights)` after each
    /// step `t = 0..horizon` for every chunk, in chunk order. Streams are derived from
    /// `seed`, so a forecast is reproducible and independent of the thread count.
    /// Allocation-free (reuses the resampling buffer).
    pub fn forecast(
        &mut self,
        horizon: usize,
        seed: u64,
        record: impl FnMut(usize, ParticlesRef<'_>, &[f64]),
    ) {
        let (model, fc) = self.forecast_parts();
        // The filter's own model always fits its buffers.
        let _ = forecast_impl(model, fc, horizon, seed, record);
    }

    /// As [`ParticleFilter::forecast`], but the particles move through `model` (e.g. the
    /// filter's model with other motion parameters for prediction).
    ///
    /// # Errors
    /// [`Error::Shape`] if `model`'s state dimension differs from the filter's.
    pub fn forecast_with(
        &mut self,
        model: &M,
        horizon: usize,
        seed: u64,
        record: impl FnMut(usize, ParticlesRef<'_>, &[f64]),
    ) -> Result<()> {
        forecast_impl(model, self.forecast_parts().1, horizon, seed, record)
    }

    /// The filter's model and, borrowed apart from it, the buffers a forecast uses.
    fn forecast_parts(&mut self) -> (&M, Forecast<'_>) {
        let fc = Forecast {
            n: self.n,
            dim: self.dim,
            par: self.settings.par,
            states: &self.states,
            spare: &mut self.spare,
            scratch: &mut self.scratch,
            w: &self.w,
        };
        (&self.model, fc)
    }

    /// Changes the state layout (e.g. a goal added at run time): every particle's old state
    /// is passed to `f` with a buffer for its new state of `new_dim` floats. Allocates; not a
    /// hot-path call.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if `new_dim` is 0 or differs from the updated model's
    /// `state_dim()`.
    pub fn reshape_state(
        &mut self,
        update_model: impl FnOnce(&mut M),
        mut f: impl FnMut(&[f64], &mut [f64]),
    ) -> Result<()> {
        self.apply_pending();
        update_model(&mut self.model);
        let new_dim = self.model.state_dim();
        if new_dim == 0 {
            return Err(Error::invalid_value(
                "model",
                "state dimension must be >= 1",
            ));
        }
        let old_dim = self.dim;
        let mut out = vec![0.0; self.n * new_dim];
        let mut a = vec![0.0; old_dim];
        let mut b = vec![0.0; new_dim];
        for (src, dst) in self
            .states
            .chunks(old_dim * CHUNK)
            .zip(out.chunks_mut(new_dim * CHUNK))
        {
            let len = src.len() / old_dim;
            for i in 0..len {
                for c in 0..old_dim {
                    a[c] = src[c * len + i];
                }
                f(&a, &mut b);
                for c in 0..new_dim {
                    dst[c * len + i] = b[c];
                }
            }
        }
        self.states = out;
        self.spare = vec![0.0; self.n * new_dim];
        self.scratch = vec![0.0; self.n * self.model.scratch_per_particle().max(1)];
        self.dim = new_dim;
        Ok(())
    }

    /// Draws `out.len() / (horizon·n_comp)` trajectories: particles picked by systematic
    /// resampling with `seed`, simulated `horizon` steps; `out[(j·horizon + t)·n_comp + k]` is
    /// component `components[k]` of trajectory `j` at step `t`. Allocates a workspace for
    /// the drawn particles.
    ///
    /// # Errors
    /// [`Error::Shape`] on an invalid component or an `out` length that is not a multiple.
    pub fn sample_trajectories_into(
        &self,
        horizon: usize,
        components: &[usize],
        seed: u64,
        out: &mut [f64],
    ) -> Result<()> {
        self.sample_trajectories_with(&self.model, horizon, components, seed, out)
    }

    /// As [`ParticleFilter::sample_trajectories_into`], but the drawn particles move through
    /// `model` (see [`ParticleFilter::forecast_with`]).
    ///
    /// # Errors
    /// As [`ParticleFilter::sample_trajectories_into`]; [`Error::Shape`] if `model`'s state
    /// dimension differs from the filter's.
    pub fn sample_trajectories_with(
        &self,
        model: &M,
        horizon: usize,
        components: &[usize],
        seed: u64,
        out: &mut [f64],
    ) -> Result<()> {
        // The drawn particles get their own scratch, sized for `model`.
        check_model_fits(model, self.dim, usize::MAX)?;
        let nc = components.len();
        if let Some(&c) = components.iter().find(|&&c| c >= self.dim) {
            return Err(Error::shape(
                "components",
                format_args!("must be < {}, got {c}", self.dim),
            ));
        }
        if nc == 0 || horizon == 0 || !out.len().is_multiple_of(horizon * nc) {
            return Err(Error::shape(
                "out",
                format_args!(
                    "length must be a multiple of horizon·components = {}",
                    horizon * nc
                ),
            ));
        }
        let m = out.len() / (horizon * nc);
        if m == 0 {
            return Ok(());
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut idx = vec![0; m];
        let mut scr = vec![0.0; self.n.max(m)];
        resample_with(
            Resampling::Systematic,
            &self.w,
            1.0,
            &mut rng,
            &mut scr,
            &mut idx,
        );
        let dim = self.dim;
        let mut data = vec![0.0; m * dim];
        gather_from(self.n, dim, &self.states, &idx, &mut data);
        let per = model.scratch_per_particle().max(1);
        let mut scratch = vec![0.0; per * CHUNK];
        for t in 0..horizon {
            for (b, d) in data.chunks_mut(dim * CHUNK).enumerate() {
                let len = d.len() / dim;
                let mut r = ChaCha8Rng::seed_from_u64(
                    seed ^ (t as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                r.set_stream(b as u64 + 1);
                let mut p = Particles::new(d, len, b * CHUNK);
                model.propagate(&mut p, &mut r, &mut scratch[..per * len]);
                for i in 0..len {
                    let j = b * CHUNK + i;
                    for (k, &c) in components.iter().enumerate() {
                        out[(j * horizon + t) * nc + k] = p.component(c)[i];
                    }
                }
            }
        }
        Ok(())
    }
}

/// The filter's buffers for [`forecast_impl`] (split borrows: the model stays borrowed apart).
struct Forecast<'a> {
    n: usize,
    dim: usize,
    par: Par,
    states: &'a [f64],
    spare: &'a mut [f64],
    scratch: &'a mut [f64],
    w: &'a [f64],
}

/// Checks that `model` (not necessarily the filter's own) fits a filter of state dimension
/// `dim` whose scratch holds `scratch_per` floats per particle.
fn check_model_fits<M: Model>(model: &M, dim: usize, scratch_per: usize) -> Result<()> {
    if model.state_dim() != dim || model.scratch_per_particle() > scratch_per {
        return Err(Error::shape(
            "model",
            format_args!(
                "state dimension {} (scratch {} per particle) does not fit the filter's {}",
                model.state_dim(),
                model.scratch_per_particle(),
                dim
            ),
        ));
    }
    Ok(())
}

/// Simulates the particles of `fc` through `model` (see [`ParticleFilter::forecast`]).
fn forecast_impl<M: Model>(
    model: &M,
    fc: Forecast<'_>,
    horizon: usize,
    seed: u64,
    mut record: impl FnMut(usize, ParticlesRef<'_>, &[f64]),
) -> Result<()> {
    check_model_fits(model, fc.dim, fc.scratch.len() / fc.n.max(1))?;
    // The forecast runs on the spare buffer with its own streams, so the filter's state
    // and chunk streams stay untouched.
    fc.spare.copy_from_slice(fc.states);
    let dim = fc.dim;
    for t in 0..horizon {
        let par = fc.par;
        let spare = &mut *fc.spare;
        let scratch = &mut *fc.scratch;
        let per = scratch.len() / fc.n.max(1);
        let step_seed = seed ^ (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let body = |(b, (d, s)): (usize, (&mut [f64], &mut [f64]))| {
            let len = d.len() / dim;
            let mut rng = ChaCha8Rng::seed_from_u64(step_seed);
            rng.set_stream(b as u64 + 1);
            let mut p = Particles::new(d, len, b * CHUNK);
            model.propagate(&mut p, &mut rng, &mut s[..per * len]);
        };
        #[cfg(feature = "rayon")]
        if par.is_parallel() {
            use rayon::prelude::*;
            par.install(|| {
                spare
                    .par_chunks_mut(dim * CHUNK)
                    .zip(scratch.par_chunks_mut(per * CHUNK))
                    .enumerate()
                    .for_each(body);
            });
        } else {
            spare
                .chunks_mut(dim * CHUNK)
                .zip(scratch.chunks_mut(per * CHUNK))
                .enumerate()
                .for_each(body);
        }
        #[cfg(not(feature = "rayon"))]
        {
            let _ = par;
            spare
                .chunks_mut(dim * CHUNK)
                .zip(scratch.chunks_mut(per * CHUNK))
                .enumerate()
                .for_each(body);
        }
        for (b, (d, w)) in fc
            .spare
            .chunks(dim * CHUNK)
            .zip(fc.w.chunks(CHUNK))
            .enumerate()
        {
            record(
                t,
                ParticlesRef {
                    data: d,
                    len: w.len(),
                    start: b * CHUNK,
                },
                w,
            );
        }
    }
    Ok(())
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ac, ar) = a.split_at(a.len() / 4 * 4);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(4).zip(bc.chunks_exact(4)) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// The per-chunk buffers handed to a chunk body.
struct ChunkBufs<'a> {
    lw: &'a mut [f64],
    w: &'a mut [f64],
    rng: &'a mut ChaCha8Rng,
    scratch: &'a mut [f64],
    partial: &'a mut [f64; 3],
}

/// Prediction without an observation (a dropped or missing measurement).
impl<M: Model> ParticleFilter<M> {
    /// Moves every particle one step through [`Model::propagate`] without weighting: the
    /// belief's prediction for a time step whose observation is missing. Weights, ESS and
    /// `log Z` are unchanged; allocation-free.
    ///
    /// ```
    /// use intent_engine::belief::{FilterSettings, LinearGaussian, ParticleFilter};
    /// let model = LinearGaussian::new(1, 1, &[1.0], &[0.1], &[1.0], &[0.2], &[0.0], &[1.0])?;
    /// let mut pf = ParticleFilter::new(model, FilterSettings { n_particles: 100, ..Default::default() })?;
    /// let before = pf.ess();
    /// pf.predict();
    /// assert_eq!(pf.ess(), before);
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    pub fn predict(&mut self) {
        // Offspring of a pending resample move independently from here on.
        self.apply_pending();
        let model = &self.model;
        for_each_chunk(
            self.settings.par,
            self.n,
            self.dim,
            &mut self.states,
            &mut self.logw,
            &mut self.w,
            &mut self.rngs,
            &mut self.scratch,
            &mut self.partial,
            |p, c| model.propagate(p, c.rng, c.scratch),
        );
        self.steps += 1;
    }
}

/// Runs `f` on every chunk with its particles and buffers.
#[allow(clippy::too_many_arguments)]
fn for_each_chunk(
    par: Par,
    n: usize,
    dim: usize,
    states: &mut [f64],
    logw: &mut [f64],
    w: &mut [f64],
    rngs: &mut [ChaCha8Rng],
    scratch: &mut [f64],
    partial: &mut [[f64; 3]],
    f: impl Fn(&mut Particles<'_>, ChunkBufs<'_>) + Sync + Send,
) {
    let per = scratch.len() / n.max(1);
    #[allow(clippy::type_complexity)]
    let body = |(b, (((((d, lw), w), rng), s), pa)): (
        usize,
        (
            (
                (((&mut [f64], &mut [f64]), &mut [f64]), &mut ChaCha8Rng),
                &mut [f64],
            ),
            &mut [f64; 3],
        ),
    )| {
        let len = lw.len();
        let mut p = Particles {
            data: d,
            len,
            start: b * CHUNK,
        };
        f(
            &mut p,
            ChunkBufs {
                lw,
                w,
                rng,
                scratch: &mut s[..per * len],
                partial: pa,
            },
        );
    };
    #[cfg(feature = "rayon")]
    if par.is_parallel() {
        use rayon::prelude::*;
        par.install(|| {
            states
                .par_chunks_mut(dim * CHUNK)
                .zip(logw.par_chunks_mut(CHUNK))
                .zip(w.par_chunks_mut(CHUNK))
                .zip(rngs.par_iter_mut())
                .zip(scratch.par_chunks_mut(per * CHUNK))
                .zip(partial.par_iter_mut())
                .enumerate()
                .for_each(body);
        });
        return;
    }
    let _ = par;
    states
        .chunks_mut(dim * CHUNK)
        .zip(logw.chunks_mut(CHUNK))
        .zip(w.chunks_mut(CHUNK))
        .zip(rngs.iter_mut())
        .zip(scratch.chunks_mut(per * CHUNK))
        .zip(partial.iter_mut())
        .enumerate()
        .for_each(body);
}

/// `dst` particle `k` = `src` particle `idx[k]`, both in the chunked layout of `n` particles.
fn gather(par: Par, n: usize, dim: usize, src: &[f64], idx: &[usize], dst: &mut [f64]) {
    let body = |(b, d): (usize, &mut [f64])| {
        let len = d.len() / dim;
        gather_block(n, dim, src, &idx[b * CHUNK..b * CHUNK + len], d);
    };
    #[cfg(feature = "rayon")]
    if par.is_parallel() {
        use rayon::prelude::*;
        par.install(|| dst.par_chunks_mut(dim * CHUNK).enumerate().for_each(body));
        return;
    }
    let _ = par;
    dst.chunks_mut(dim * CHUNK).enumerate().for_each(body);
}

/// Like [`gather`] but the destination holds `m` particles (its own chunked layout).
fn gather_from(n: usize, dim: usize, src: &[f64], idx: &[usize], dst: &mut [f64]) {
    for (b, d) in dst.chunks_mut(dim * CHUNK).enumerate() {
        let len = d.len() / dim;
        gather_block(n, dim, src, &idx[b * CHUNK..b * CHUNK + len], d);
    }
}

#[inline]
fn gather_block(n: usize, dim: usize, src: &[f64], idx: &[usize], d: &mut [f64]) {
    let len = idx.len().min(CHUNK);
    let last_blk = (n - 1) / CHUNK;
    let last_len = n - last_blk * CHUNK;
    // Source offset and component stride of each output, computed once for all components.
    let mut base = [0usize; CHUNK];
    let mut stride = [0usize; CHUNK];
    let mut partial = false;
    for ((b, s), &j) in base.iter_mut().zip(stride.iter_mut()).zip(idx) {
        let blk = j / CHUNK;
        *s = if blk == last_blk { last_len } else { CHUNK };
        partial |= *s != CHUNK;
        *b = blk * dim * CHUNK + (j % CHUNK);
    }
    if !partial {
        // Every source is in a full chunk (the common case): one component stride, so each
        // output is a single indexed load from the component's shifted view.
        for c in 0..dim {
            let out = &mut d[c * len..(c + 1) * len];
            let sc = &src[c * CHUNK..];
            for (o, &b) in out.iter_mut().zip(&base[..len]) {
                *o = sc[b];
            }
        }
        return;
    }
    for c in 0..dim {
        let out = &mut d[c * len..(c + 1) * len];
        for ((o, &b), &s) in out.iter_mut().zip(&base[..len]).zip(&stride[..len]) {
            *o = src[b + c * s];
        }
    }
}

#[derive(Clone, Copy)]
enum Reduce {
    Max,
    ExpSum(f64),
}

struct ReduceTask<'a> {
    op: Reduce,
    lw: &'a mut [f64],
    w: &'a mut [f64],
}

impl SimdTask for ReduceTask<'_> {
    type Output = [f64; 3];
    #[inline(always)]
    fn run<const FMA: bool>(self) -> [f64; 3] {
        match self.op {
            Reduce::Max => {
                // NaN becomes -inf (an impossible particle) in the same pass.
                let mut m = [f64::NEG_INFINITY; 8];
                let mut it = self.lw.chunks_exact_mut(8);
                for c in &mut it {
                    for k in 0..8 {
                        let v = if c[k].is_nan() {
                            f64::NEG_INFINITY
                        } else {
                            c[k]
                        };
                        c[k] = v;
                        m[k] = m[k].max(v);
                    }
                }
                let mut r = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for x in it.into_remainder() {
                    if x.is_nan() {
                        *x = f64::NEG_INFINITY;
                    }
                    r = r.max(*x);
                }
                [r, 0.0, 0.0]
            }
            Reduce::ExpSum(max) => {
                // Two simple loops that LLVM vectorises: the exponentials (no reduction),
                // then the sums with 8 independent accumulators.
                for (o, &l) in self.w.iter_mut().zip(self.lw.iter()) {
                    // exp of -inf underflows to 0 in the polynomial path too (clamped).
                    let e = simd::exp::<FMA>((l - max).max(-745.0));
                    *o = if l == f64::NEG_INFINITY { 0.0 } else { e };
                }
                let mut s = [0.0; 8];
                let mut s2 = [0.0; 8];
                let mut w = self.w.chunks_exact(8);
                for o in &mut w {
                    for k in 0..8 {
                        s[k] += o[k];
                        s2[k] = simd::mul_add::<FMA>(o[k], o[k], s2[k]);
                    }
                }
                let (mut ts, mut ts2) = (s.iter().sum::<f64>(), s2.iter().sum::<f64>());
                for &e in w.remainder() {
                    ts += e;
                    ts2 += e * e;
                }
                [0.0, ts, ts2]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Offset of particle `j`'s component `c` in the chunked layout of `n` particles.
    fn at(n: usize, dim: usize, j: usize, c: usize) -> usize {
        let blk = j / CHUNK;
        let len = CHUNK.min(n - blk * CHUNK);
        blk * dim * CHUNK + c * len + j % CHUNK
    }

    #[test]
    fn gather_copies_every_component_of_the_indexed_particles() {
        // Both paths of `gather_block`: sources only in full chunks (one stride) and sources in
        // a partial last chunk; sorted (systematic) and unsorted (multinomial) indices.
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let dim = 3;
        for n in [1, 5, 1024, 1500, 2048, 3000] {
            let mut src = vec![f64::NAN; n * dim];
            for j in 0..n {
                for c in 0..dim {
                    src[at(n, dim, j, c)] = (j * 10 + c) as f64;
                }
            }
            let full = n / CHUNK * CHUNK;
            let below_partial = if full == n || full == 0 { n } else { full };
            for case in 0..4 {
                let hi = if case % 2 == 0 { n } else { below_partial };
                let mut idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..hi)).collect();
                if case < 2 {
                    idx.sort_unstable();
                }
                let mut dst = vec![f64::NAN; n * dim];
                gather(Par::Seq, n, dim, &src, &idx, &mut dst);
                for (k, &j) in idx.iter().enumerate() {
                    for c in 0..dim {
                        assert_eq!(
                            dst[at(n, dim, k, c)],
                            (j * 10 + c) as f64,
                            "n {n} k {k} c {c}"
                        );
                    }
                }
            }
        }
    }
}
