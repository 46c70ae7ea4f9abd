//! The goal-inference particle filter ([`crate::belief::GoalInference`]) on a CUDA device.
//!
//! Same model and step order as the CPU filter (goal switching, goal sampling from each
//! particle's Rao-Blackwellised probabilities, relaxation toward the goal-directed velocity,
//! the exact per-particle goal update, Gaussian position likelihood; resampling when
//! `ESS < ess_threshold · N`), with float32 particle state, float64 weight sums, and a
//! counter-based random stream (splitmix64 of seed, step and particle index, Box-Muller
//! normals) in place of the CPU's ChaCha8 streams, so the two agree in distribution, not bit
//! for bit.
//!
//! A step is two kernel launches and one 100-byte read-back: `pf_step` (everything per
//! particle, plus per-block max / Σw / Σw² / Σw·p(g) partials) and `pf_combine` (one block:
//! log Z increment, ESS, goal posterior). Resampling adds four: per-block f64 sums of
//! `exp(ℓ − max)`, an f64 exclusive scan of them, a scatter that gives each particle its
//! systematic offspring positions from f64 cumulative weights, and a gather. Prefix sums in
//! f64 keep systematic resampling unbiased at 10⁶+ particles, where f32 sums lose the small
//! weights (the `resampling_bias` test shows both).
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use cudarc::driver::{CudaFunction, CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};

use super::{cuda_err, CudaDevice};
use crate::belief::{FilterSettings, Goal, GoalModelSettings, GoalVelocity, StepInfo, StepStatus};
use crate::error::{check_finite, Error, Result};

const SRC: &str = include_str!("pf_kernels.cu");
const BS: usize = 256;
/// Largest number of goals supported on the GPU.
pub const MAX_GOALS: usize = 16;

#[repr(C)]
#[derive(Clone, Copy)]
struct Params {
    dt: f32,
    speed: f32,
    a: f32,
    sd: f32,
    obs_var_inv: f32,
    switch_keep: f32,
    switch_jump: f32,
    vel_param: f32,
    gx: [f32; MAX_GOALS],
    gy: [f32; MAX_GOALS],
    gr: [f32; MAX_GOALS],
    mode: i32,
    log_norm: f64,
}

// SAFETY: `#[repr(C)]` plain data with the field order and types of the CUDA `Params` struct.
unsafe impl DeviceRepr for Params {}

struct Fns {
    init: CudaFunction,
    step: CudaFunction,
    combine: CudaFunction,
    sums: CudaFunction,
    scan: CudaFunction,
    scatter: CudaFunction,
    gather: CudaFunction,
}

fn load(dev: &CudaDevice, k: usize) -> Result<Fns> {
    const KEYS: [&str; MAX_GOALS] = [
        "pf_k1", "pf_k2", "pf_k3", "pf_k4", "pf_k5", "pf_k6", "pf_k7", "pf_k8", "pf_k9", "pf_k10",
        "pf_k11", "pf_k12", "pf_k13", "pf_k14", "pf_k15", "pf_k16",
    ];
    let src = format!("#define KG {k}\n{SRC}");
    let key = KEYS[k - 1];
    let f = |name: &str| dev.function(key, &src, name);
    Ok(Fns {
        init: f("pf_init")?,
        step: f("pf_step")?,
        combine: f("pf_combine")?,
        sums: f("rs_block_sums")?,
        scan: f("rs_scan")?,
        scatter: f("rs_scatter")?,
        gather: f("rs_gather")?,
    })
}

fn blocks(n: usize) -> usize {
    n.div_ceil(BS)
}

fn cfg1(n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (blocks(n) as u32, 1, 1),
        block_dim: (BS as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

const ONE_BLOCK: LaunchConfig = LaunchConfig {
    grid_dim: (1, 1, 1),
    block_dim: (1024, 1, 1),
    shared_mem_bytes: 0,
};

/// Systematic-resampling machinery shared by the filter and [`systematic_ancestors`].
struct Resampler {
    sums: CudaSlice<f64>,
    prefix: CudaSlice<f64>,
    anc: CudaSlice<u32>,
}

impl Resampler {
    fn new(dev: &CudaDevice, n: usize) -> Result<Self> {
        let s = dev.stream();
        let e = cuda_err("GPU resampler allocation");
        Ok(Self {
            sums: s.alloc_zeros(blocks(n)).map_err(&e)?,
            prefix: s.alloc_zeros(blocks(n) + 1).map_err(&e)?,
            anc: s.alloc_zeros(n).map_err(&e)?,
        })
    }

    /// Fills `anc` with systematic-resampling ancestors of weights `exp(logw − max)`.
    fn ancestors(
        &mut self,
        dev: &CudaDevice,
        f: &Fns,
        logw: &CudaSlice<f32>,
        n: usize,
        max: f64,
        u: f64,
    ) -> Result<()> {
        let s = dev.stream();
        let e = cuda_err("GPU resampling");
        let ni = n as i32;
        let nb = blocks(n) as i32;
        // SAFETY: argument lists match the kernels; buffers sized n, nb and nb + 1.
        unsafe {
            s.launch_builder(&f.sums)
                .arg(logw)
                .arg(&ni)
                .arg(&max)
                .arg(&mut self.sums)
                .launch(cfg1(n))
                .map_err(&e)?;
            s.launch_builder(&f.scan)
                .arg(&self.sums)
                .arg(&nb)
                .arg(&mut self.prefix)
                .launch(ONE_BLOCK)
                .map_err(&e)?;
            s.launch_builder(&f.scatter)
                .arg(logw)
                .arg(&ni)
                .arg(&max)
                .arg(&self.prefix)
                .arg(&nb)
                .arg(&u)
                .arg(&mut self.anc)
                .launch(cfg1(n))
                .map_err(&e)?;
        }
        Ok(())
    }
}

/// Systematic-resampling ancestor indices for log-weights `logw` (float32) with offset `u`
/// in `[0, 1)`, computed on the device with float64 prefix sums — the resampler of
/// [`GpuGoalInference`], exposed for testing its bias.
///
/// # Errors
/// [`Error::Shape`] for empty `logw` or more than `i32::MAX` entries;
/// [`Error::InvalidValue`] for `u` outside `[0, 1)` or no finite log-weight; CUDA failures.
pub fn systematic_ancestors(dev: &CudaDevice, logw: &[f32], u: f64) -> Result<Vec<u32>> {
    let n = logw.len();
    if n == 0 || i32::try_from(n).is_err() {
        return Err(Error::shape(
            "logw",
            format_args!("expected 1..=2^31-1 values, got {n}"),
        ));
    }
    if !(0.0..1.0).contains(&u) {
        return Err(Error::invalid_value(
            "u",
            format_args!("must be in [0, 1), got {u}"),
        ));
    }
    let max = logw.iter().fold(
        f32::NEG_INFINITY,
        |a, &b| if b.is_nan() { a } else { a.max(b) },
    );
    if !max.is_finite() {
        return Err(Error::invalid_value(
            "logw",
            "needs at least one finite log-weight and no +inf",
        ));
    }
    let f = load(dev, 1)?;
    let s = dev.stream();
    let e = cuda_err("GPU resampling");
    let lw = s.clone_htod(logw).map_err(&e)?;
    let mut r = Resampler::new(dev, n)?;
    r.ancestors(dev, &f, &lw, n, f64::from(max), u)?;
    s.clone_dtoh(&r.anc).map_err(&e)
}

/// The goal-inference filter of [`crate::belief::GoalInference`] on a CUDA device (see the
/// module docs). Initialises itself from the first observation like the CPU filter.
pub struct GpuGoalInference {
    dev: CudaDevice,
    f: Fns,
    n: usize,
    k: usize,
    goals: Vec<Goal>,
    model: GoalModelSettings,
    filter: FilterSettings,
    prior: Vec<f32>,
    /// px, py, vx, vy, then K goal-probability rows (n each), and the spare for resampling.
    state: CudaSlice<f32>,
    spare: CudaSlice<f32>,
    logw: CudaSlice<f32>,
    part: CudaSlice<f64>,
    out: CudaSlice<f64>,
    prior_d: CudaSlice<f32>,
    rs: Resampler,
    host_out: Vec<f64>,
    shift: f32,
    steps: u64,
    log_z: f64,
    initialised: bool,
}

impl std::fmt::Debug for GpuGoalInference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuGoalInference")
            .field("device", &self.dev)
            .field("n_particles", &self.n)
            .field("goals", &self.goals)
            .finish_non_exhaustive()
    }
}

impl GpuGoalInference {
    /// Builds the filter on `dev` (particles are drawn at the first observation).
    ///
    /// # Errors
    /// Invalid goals or settings as [`crate::belief::GoalInference::new`]; more than
    /// [`MAX_GOALS`] goals or more than `i32::MAX` particles ([`Error::InvalidValue`]); CUDA
    /// failures.
    pub fn new(
        dev: &CudaDevice,
        goals: &[Goal],
        model: GoalModelSettings,
        filter: FilterSettings,
    ) -> Result<Self> {
        // Same validation as the CPU model and filter.
        crate::belief::GoalModel::new(goals, model.clone())?;
        filter.validate()?;
        let (n, k) = (filter.n_particles, goals.len());
        if k > MAX_GOALS {
            return Err(Error::invalid_value(
                "goals",
                format_args!("at most {MAX_GOALS} goals on the GPU, got {k}"),
            ));
        }
        if i32::try_from(n).is_err() {
            return Err(Error::invalid_value(
                "n_particles",
                "must be below 2^31 on the GPU",
            ));
        }
        let f = load(dev, k)?;
        let s = dev.stream();
        let e = cuda_err("GPU filter allocation");
        let prior = vec![1.0 / k as f32; k];
        Ok(Self {
            state: s.alloc_zeros((4 + k) * n).map_err(&e)?,
            spare: s.alloc_zeros((4 + k) * n).map_err(&e)?,
            logw: s.alloc_zeros(n).map_err(&e)?,
            part: s.alloc_zeros(blocks(n) * (3 + k)).map_err(&e)?,
            out: s.alloc_zeros(3 + k).map_err(&e)?,
            prior_d: s.clone_htod(&prior).map_err(&e)?,
            rs: Resampler::new(dev, n)?,
            host_out: vec![0.0; 3 + k],
            prior,
            dev: dev.clone(),
            f,
            n,
            k,
            goals: goals.to_vec(),
            model,
            filter,
            shift: 0.0,
            steps: 0,
            log_z: 0.0,
            initialised: false,
        })
    }

    /// Number of particles.
    #[must_use]
    pub fn n_particles(&self) -> usize {
        self.n
    }

    /// Accumulated `log Z` (sum of the steps' log-likelihood increments).
    #[must_use]
    pub fn log_z(&self) -> f64 {
        self.log_z
    }

    fn params(&self) -> Params {
        let m = &self.model;
        let (mode, vel_param) = match m.velocity {
            GoalVelocity::ConstantSpeed { slow_radius } => (0, 1.0 / slow_radius),
            GoalVelocity::Heading { slow_radius } => (1, 1.0 / slow_radius),
            GoalVelocity::Linear { gain } => (2, gain),
        };
        let mut p = Params {
            dt: m.dt as f32,
            speed: m.speed as f32,
            a: (m.rationality * m.dt) as f32,
            sd: (m.velocity_noise * m.dt.sqrt()) as f32,
            obs_var_inv: (1.0 / (m.obs_noise * m.obs_noise)) as f32,
            switch_keep: (1.0 - m.switch_prob) as f32,
            switch_jump: (m.switch_prob / self.k as f64) as f32,
            vel_param: vel_param as f32,
            gx: [0.0; MAX_GOALS],
            gy: [0.0; MAX_GOALS],
            gr: [0.0; MAX_GOALS],
            mode,
            log_norm: -(2.0 * std::f64::consts::PI * m.obs_noise * m.obs_noise).ln(),
        };
        for (g, goal) in self.goals.iter().enumerate() {
            p.gx[g] = goal.x as f32;
            p.gy[g] = goal.y as f32;
            p.gr[g] = goal.radius as f32;
        }
        p
    }

    fn seed(&self, salt: u64) -> u64 {
        self.filter.seed ^ (self.steps.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt
    }

    fn draw_around(&mut self, z: [f64; 2]) -> Result<()> {
        let s = self.dev.stream().clone();
        let e = cuda_err("GPU filter initialisation");
        let n = self.n;
        let ni = n as i32;
        let m = &self.model;
        let (sp, sv) = (m.obs_noise as f32, m.speed as f32);
        let (zx, zy) = (z[0] as f32, z[1] as f32);
        let seed = self.seed(0x1417);
        // SAFETY: argument list matches `pf_init`; every view has n (pr: K·n) entries.
        unsafe {
            s.launch_builder(&self.f.init)
                .arg(&mut self.state)
                .arg(&mut self.logw)
                .arg(&ni)
                .arg(&zx)
                .arg(&zy)
                .arg(&sp)
                .arg(&sp)
                .arg(&sv)
                .arg(&sv)
                .arg(&self.prior_d)
                .arg(&seed)
                .launch(cfg1(n))
                .map_err(&e)?;
        }
        self.shift = (n as f64).ln() as f32;
        Ok(())
    }

    /// Assimilates an observed position `[x, y]` (the first call only draws the particles
    /// around it, as the CPU filter does).
    ///
    /// # Errors
    /// [`Error::NonFinite`] for NaN/inf (the belief is unchanged); CUDA failures.
    pub fn update(&mut self, z: [f64; 2]) -> Result<StepInfo> {
        check_finite("observation", &z)?;
        if !self.initialised {
            self.draw_around(z)?;
            self.initialised = true;
            return Ok(StepInfo {
                status: StepStatus::Ok,
                ess: self.n as f64,
                log_likelihood: 0.0,
            });
        }
        let s = self.dev.stream().clone();
        let e = cuda_err("GPU filter step");
        let n = self.n;
        let ni = n as i32;
        let nb = blocks(n) as i32;
        let p = self.params();
        let (zx, zy) = (z[0] as f32, z[1] as f32);
        let seed = self.seed(0);
        let shift = self.shift;
        {
            // SAFETY: argument lists match `pf_step` / `pf_combine`; buffers as allocated.
            unsafe {
                s.launch_builder(&self.f.step)
                    .arg(&mut self.state)
                    .arg(&mut self.logw)
                    .arg(&ni)
                    .arg(&p)
                    .arg(&zx)
                    .arg(&zy)
                    .arg(&shift)
                    .arg(&seed)
                    .arg(&mut self.part)
                    .launch(cfg1(n))
                    .map_err(&e)?;
            }
        }
        // SAFETY: as above.
        unsafe {
            s.launch_builder(&self.f.combine)
                .arg(&self.part)
                .arg(&nb)
                .arg(&mut self.out)
                .launch(ONE_BLOCK)
                .map_err(&e)?;
        }
        s.memcpy_dtoh(&self.out, &mut self.host_out).map_err(&e)?;
        self.steps += 1;
        let (max, sum, sum2) = (self.host_out[0], self.host_out[1], self.host_out[2]);
        if max == f64::INFINITY {
            return Err(Error::Numerical {
                what: "GPU particle filter step",
                detail: "a log-likelihood of +inf".into(),
            });
        }
        if max == f64::NEG_INFINITY || sum.is_nan() || sum <= 0.0 {
            self.draw_around(z)?;
            return Ok(StepInfo {
                status: StepStatus::Reinitialised,
                ess: 0.0,
                log_likelihood: f64::NEG_INFINITY,
            });
        }
        let lse = max + sum.ln();
        self.log_z += lse;
        let ess = sum * sum / sum2;
        if ess < self.filter.ess_threshold * n as f64 {
            let u = (crate::backend::cuda::belief::unit(self.seed(0x5eed))).min(1.0 - f64::EPSILON);
            self.rs
                .ancestors(&self.dev, &self.f, &self.logw, n, max, u)?;
            let comps = (4 + self.k) as i32;
            // SAFETY: argument list matches `rs_gather`; state buffers are (4 + K)·n.
            unsafe {
                s.launch_builder(&self.f.gather)
                    .arg(&self.state)
                    .arg(&mut self.spare)
                    .arg(&ni)
                    .arg(&comps)
                    .arg(&self.rs.anc)
                    .launch(cfg1(n))
                    .map_err(&e)?;
            }
            std::mem::swap(&mut self.state, &mut self.spare);
            s.memset_zeros(&mut self.logw).map_err(&e)?;
            // Equal weights 1/N: the next step subtracts ln N, as the CPU filter's normalised
            // log-weights do, so its log-likelihood increment is log mean likelihood.
            self.shift = (n as f64).ln() as f32;
            return Ok(StepInfo {
                status: StepStatus::Resampled,
                ess,
                log_likelihood: lse,
            });
        }
        self.shift = lse as f32;
        Ok(StepInfo {
            status: StepStatus::Ok,
            ess,
            log_likelihood: lse,
        })
    }

    /// The goal posterior after the last step (reduced on the device; the prior before the
    /// second observation).
    #[must_use]
    pub fn goal_probabilities(&self) -> Vec<f64> {
        if self.steps == 0 {
            return self.prior.iter().map(|&p| f64::from(p)).collect();
        }
        self.host_out[3..].to_vec()
    }

    /// Waits for all queued device work of this filter.
    ///
    /// # Errors
    /// [`Error::Numerical`] if a queued kernel failed.
    pub fn synchronize(&self) -> Result<()> {
        self.dev.synchronize()
    }
}

/// A uniform in `[0, 1)` from a 64-bit seed (splitmix64).
pub(crate) fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
