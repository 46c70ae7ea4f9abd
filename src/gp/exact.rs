//! Exact GP regression with a cached Cholesky factor and O(n²) streaming updates.
//!
//! The model keeps `L` with `L Lᵀ = K(X, X) + (σ² + jitter) I`, `z = L⁻¹ ỹ` and
//! `α = L⁻ᵀ z = (K + σ²I)⁻¹ ỹ` for every output (ỹ the targets, normalised if asked).
//! `L` is stored column-major with a leading dimension equal to the capacity, so a new
//! observation appends a row without moving anything, and the hot solves walk contiguous
//! columns ([`crate::linalg::tri`]).
//!
//! - mean at a test point: `k*ᵀα` — a kernel row and a dot product, no solve;
//! - variance: `k(x*, x*) − ‖L⁻¹k*‖²` — one forward solve, clamped at zero (counted);
//! - append: one forward solve for the new row of `L`, one backward solve for `α`;
//! - remove the oldest k: a rank-k update of the trailing factor (faer), then the solves;
//! - drift control: a residual probe of one column of `L Lᵀ` every `check_every` updates and
//!   a full refactorisation after `refactor_every` updates or a failed probe.
//!
//! ```
//! use intent_engine::gp::{GaussianProcess, GpSettings, Kernel};
//! use ndarray::array;
//!
//! let kernel = Kernel::squared_exponential(1.0, &[0.5])?;
//! let mut gp = GaussianProcess::new(kernel, GpSettings { noise_variance: 1e-4, ..Default::default() })?;
//! gp.fit(array![[0.0], [0.5], [1.0]].view(), array![[0.0], [0.48], [0.84]].view())?;
//! gp.add_observations(array![[1.5]].view(), array![[1.0]].view())?;
//! let p = gp.predict(array![[0.75]].view())?;
//! assert!((p.mean[[0, 0]] - 0.68).abs() < 0.05 && p.var[[0, 0]] < 1e-2);
//! # Ok::<(), intent_engine::Error>(())
//! ```

#![allow(non_snake_case)]

use faer::dyn_stack::{MemBuffer, MemStack};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use faer::{MatMut, MatRef};
use ndarray::{Array2, Array3, ArrayView2, ArrayViewMut2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::kernel::{Kernel, KernelWorkspace};
use super::optimize::{minimize, OptimizeResult, OptimizeSettings};
use crate::error::{check_finite, check_positive, Error, Result};
use crate::linalg::tri::{backward_solve_transposed, dot_product, forward_solve};
use crate::linalg::Par;

/// Settings of a [`GaussianProcess`].
#[derive(Clone, Debug, PartialEq)]
pub struct GpSettings {
    /// Gaussian observation-noise variance σ² added to the kernel diagonal (scikit-learn's
    /// `alpha`). Must be ≥ 0; 0 relies on jitter for conditioning.
    pub noise_variance: f64,
    /// Subtract the mean and divide by the standard deviation of each output at `fit`
    /// (scikit-learn's `normalize_y`). The constants stay fixed during streaming updates.
    pub normalize_y: bool,
    /// Sliding window: appends beyond this many observations drop the oldest first.
    pub max_observations: Option<usize>,
    /// Rows of storage reserved so appends up to it never reallocate (0 = `n + 64` at fit, or
    /// `max_observations` when set). Storage is `capacity²` doubles.
    pub capacity: usize,
    /// Largest diagonal jitter tried, relative to the mean kernel diagonal, before a
    /// factorisation is declared failed. Escalation: none, then 1e-12, 1e-11, … of the mean
    /// diagonal up to this.
    pub max_relative_jitter: f64,
    /// Refactorise from scratch after this many streaming updates.
    pub refactor_every: usize,
    /// Probe one column of `L Lᵀ` against the kernel every this many updates.
    pub check_every: usize,
    /// Relative residual (to the largest diagonal) above which the probe refactorises.
    pub residual_tol: f64,
    /// Parallelism for batch work (kernel matrices, factorisation). The single-point hot
    /// paths are always sequential.
    pub par: Par,
}

impl Default for GpSettings {
    fn default() -> Self {
        Self {
            noise_variance: 1e-10,
            normalize_y: false,
            max_observations: None,
            capacity: 0,
            max_relative_jitter: 1e-4,
            refactor_every: 1000,
            check_every: 50,
            residual_tol: 1e-10,
            par: Par::Seq,
        }
    }
}

impl GpSettings {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if !(self.noise_variance.is_finite() && self.noise_variance >= 0.0) {
            return Err(Error::invalid_value(
                "noise_variance",
                format_args!("must be finite and >= 0, got {}", self.noise_variance),
            ));
        }
        if self.max_observations == Some(0) {
            return Err(Error::invalid_value(
                "max_observations",
                "must be at least 1",
            ));
        }
        check_positive("max_relative_jitter", self.max_relative_jitter)?;
        if self.refactor_every == 0 || self.check_every == 0 {
            return Err(Error::invalid_value(
                "refactor_every",
                "refactor_every and check_every must be at least 1",
            ));
        }
        check_positive("residual_tol", self.residual_tol)
    }
}

/// Counters describing what the model had to do to stay well conditioned.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpStats {
    /// Predictive variances that came out negative and were clamped to zero.
    pub clamped_variances: u64,
    /// Full refactorisations (fit, drift control, failed probes, hyperparameter changes).
    pub refactors: u64,
    /// Refactorisations triggered by a failed residual probe.
    pub failed_probes: u64,
    /// Appended points whose Schur complement needed extra jitter (near-duplicates).
    pub duplicate_jitter_events: u64,
    /// Full refactorisations that had to escalate the diagonal jitter above zero to factorise
    /// `K + σ²I` (an ill-conditioned window).
    pub jitter_escalations: u64,
    /// Streaming updates (appended or removed points) since creation.
    pub updates: u64,
}

/// Predictive mean and variance at a batch of points: both `(n*, outputs)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Posterior mean of each output.
    pub mean: Array2<f64>,
    /// Posterior variance of each output (latent f, or y with `include_noise`).
    pub var: Array2<f64>,
}

/// Reusable buffers for the single-point hot paths ([`GaussianProcess::predict_one_into`]).
#[derive(Clone, Debug, Default)]
pub struct GpWorkspace {
    kvec: Vec<f64>,
    v: Vec<f64>,
    kernel: KernelWorkspace,
}

impl GpWorkspace {
    /// An empty workspace; it grows to the model size on first use.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

/// Exact Gaussian-process regression with streaming updates (see the [module docs](self)).
#[derive(Debug)]
pub struct GaussianProcess {
    kernel: Kernel,
    settings: GpSettings,
    d: usize,
    m: usize,
    n: usize,
    cap: usize,
    /// Inputs, row-major `cap × d`.
    x: Vec<f64>,
    /// Raw targets, row-major `cap × m`.
    y: Vec<f64>,
    y_mean: Vec<f64>,
    y_std: Vec<f64>,
    /// Cholesky factor, column-major with leading dimension `cap`.
    l: Vec<f64>,
    /// Extra diagonal jitter per point (near-duplicate appends).
    extra: Vec<f64>,
    /// Uniform jitter of the last factorisation.
    jitter: f64,
    /// `L⁻¹ỹ` and `α`, output-major: output o at `[o·cap, o·cap + n)`.
    z: Vec<f64>,
    /// `α`, recomputed lazily from `z`: appends leave it stale (saving a backward solve), and
    /// mean+variance predictions never need it (their mean is `(L⁻¹k*)·z`).
    alpha: RwLock<Vec<f64>>,
    alpha_dirty: AtomicBool,
    since_refactor: usize,
    stats: GpStats,
    /// Clamped variances, counted from `&self` predictions.
    clamped: AtomicU64,
    kws: KernelWorkspace,
    buf: Vec<f64>,
    /// Sequence number of the oldest kept observation, and of the next one.
    seq_first: u64,
    seq_next: u64,
}

impl Clone for GaussianProcess {
    fn clone(&self) -> Self {
        Self {
            kernel: self.kernel.clone(),
            settings: self.settings.clone(),
            d: self.d,
            m: self.m,
            n: self.n,
            cap: self.cap,
            x: self.x.clone(),
            y: self.y.clone(),
            y_mean: self.y_mean.clone(),
            y_std: self.y_std.clone(),
            l: self.l.clone(),
            extra: self.extra.clone(),
            jitter: self.jitter,
            z: self.z.clone(),
            alpha: RwLock::new(
                self.alpha
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            alpha_dirty: AtomicBool::new(self.alpha_dirty.load(Ordering::Acquire)),
            since_refactor: self.since_refactor,
            stats: self.stats.clone(),
            clamped: AtomicU64::new(self.clamped.load(Ordering::Relaxed)),
            kws: KernelWorkspace::new(),
            buf: vec![0.0; self.buf.len()],
            seq_first: self.seq_first,
            seq_next: self.seq_next,
        }
    }
}

/// Outcome of [`GaussianProcess::optimize`].
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// Log marginal likelihood at the optimum.
    pub log_marginal_likelihood: f64,
    /// Optimiser details (parameters are `[kernel θ…, ln σ²]`, or kernel θ alone).
    pub optimizer: OptimizeResult,
}

/// Which hyperparameters [`GaussianProcess::optimize`] fits, and their log-space bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct HyperBounds {
    /// Bounds for every kernel log-hyperparameter (scikit-learn's default is ln 1e-5, ln 1e5).
    pub kernel: (f64, f64),
    /// Bounds for ln σ², or `None` to keep the noise fixed (scikit-learn's behaviour).
    pub noise: Option<(f64, f64)>,
}

impl HyperBounds {
    /// Checks that each pair is finite with its lower bound below its upper one.
    ///
    /// ```
    /// use intent_engine::gp::HyperBounds;
    /// assert!(HyperBounds::default().validate().is_ok());
    /// let bad = HyperBounds { kernel: (1.0, -1.0), noise: None };
    /// assert!(bad.validate().unwrap_err().to_string().contains("bounds.kernel"));
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `bounds.kernel` or `bounds.noise`.
    pub fn validate(&self) -> Result<()> {
        let pairs = [
            ("bounds.kernel", Some(self.kernel)),
            ("bounds.noise", self.noise),
        ];
        for (name, pair) in pairs {
            if let Some((lo, hi)) = pair {
                if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                    return Err(Error::invalid_value(
                        name,
                        format_args!("need finite lower < upper, got ({lo}, {hi})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Default for HyperBounds {
    fn default() -> Self {
        Self {
            kernel: (1e-5f64.ln(), 1e5f64.ln()),
            noise: Some((1e-10f64.ln(), 1e3f64.ln())),
        }
    }
}

fn check_xy(
    x: &ArrayView2<'_, f64>,
    y: &ArrayView2<'_, f64>,
    d: Option<usize>,
    m: Option<usize>,
) -> Result<()> {
    let (n, xd) = x.dim();
    if xd == 0 || d.is_some_and(|d| d != xd) {
        return Err(Error::shape(
            "X",
            format_args!(
                "expected {} columns, got {xd}",
                d.map_or("at least 1".into(), |d| d.to_string())
            ),
        ));
    }
    let (ny, ym) = y.dim();
    if ny != n {
        return Err(Error::shape(
            "y",
            format_args!("expected {n} rows (one per row of X), got {ny}"),
        ));
    }
    if ym == 0 || m.is_some_and(|m| m != ym) {
        return Err(Error::shape(
            "y",
            format_args!(
                "expected {} columns, got {ym}",
                m.map_or("at least 1".into(), |m| m.to_string())
            ),
        ));
    }
    check_finite("X", x.iter())?;
    check_finite("y", y.iter())
}

impl GaussianProcess {
    /// An unfitted model.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for settings out of range ([`GpSettings::validate`]).
    pub fn new(kernel: Kernel, settings: GpSettings) -> Result<Self> {
        settings.validate()?;
        Ok(Self {
            kernel,
            settings,
            d: 0,
            m: 0,
            n: 0,
            cap: 0,
            x: Vec::new(),
            y: Vec::new(),
            y_mean: Vec::new(),
            y_std: Vec::new(),
            l: Vec::new(),
            extra: Vec::new(),
            jitter: 0.0,
            z: Vec::new(),
            alpha: RwLock::new(Vec::new()),
            alpha_dirty: AtomicBool::new(true),
            since_refactor: 0,
            stats: GpStats::default(),
            clamped: AtomicU64::new(0),
            kws: KernelWorkspace::new(),
            buf: Vec::new(),
            seq_first: 0,
            seq_next: 0,
        })
    }

    /// Number of observations held.
    #[must_use]
    pub fn n_observations(&self) -> usize {
        self.n
    }

    /// Input dimension (0 before `fit`).
    #[must_use]
    pub fn input_dim(&self) -> usize {
        self.d
    }

    /// Number of outputs (0 before `fit`).
    #[must_use]
    pub fn n_outputs(&self) -> usize {
        self.m
    }

    /// Whether [`GaussianProcess::fit`] has run.
    #[must_use]
    pub fn is_fitted(&self) -> bool {
        self.m > 0
    }

    /// The kernel (with the current hyperparameters).
    #[must_use]
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &GpSettings {
        &self.settings
    }

    /// The noise variance σ².
    #[must_use]
    pub fn noise_variance(&self) -> f64 {
        self.settings.noise_variance
    }

    /// Per-output target scales (the standard deviations of `normalize_y`, else 1).
    #[must_use]
    pub fn output_scales(&self) -> &[f64] {
        &self.y_std
    }

    /// Diagonal jitter added by the last factorisation (0 if none was needed).
    #[must_use]
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// Conditioning counters.
    #[must_use]
    pub fn stats(&self) -> GpStats {
        GpStats {
            clamped_variances: self.clamped.load(Ordering::Relaxed),
            ..self.stats.clone()
        }
    }

    /// The held inputs, `(n, d)`.
    #[must_use]
    pub fn inputs(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.n, self.d), &self.x[..self.n * self.d]).unwrap_or_else(|_| {
            ArrayView2::from_shape((0, 0), &[]).unwrap_or_else(|_| unreachable!())
        })
    }

    /// The held targets as given (not normalised), `(n, outputs)`.
    #[must_use]
    pub fn targets(&self) -> ArrayView2<'_, f64> {
        ArrayView2::from_shape((self.n, self.m), &self.y[..self.n * self.m]).unwrap_or_else(|_| {
            ArrayView2::from_shape((0, 0), &[]).unwrap_or_else(|_| unreachable!())
        })
    }

    /// Sequence numbers `[first, next)` of the held observations (each observation ever added
    /// gets the next number); used to replay updates onto a model refitted in the background.
    #[must_use]
    pub fn sequence_range(&self) -> (u64, u64) {
        (self.seq_first, self.seq_next)
    }

    /// `α`, recomputed first if an update left it stale (backward solves from `z`).
    fn alpha_ready(&self) -> RwLockReadGuard<'_, Vec<f64>> {
        if self.alpha_dirty.load(Ordering::Acquire) {
            let mut a = self.alpha.write().unwrap_or_else(PoisonError::into_inner);
            if self.alpha_dirty.load(Ordering::Acquire) {
                let (n, cap) = (self.n, self.cap);
                if a.len() < cap * self.m {
                    a.resize(cap * self.m, 0.0);
                }
                for o in 0..self.m {
                    let ao = &mut a[o * cap..o * cap + n];
                    ao.copy_from_slice(&self.z[o * cap..o * cap + n]);
                    backward_solve_transposed(&self.l, cap, n, ao);
                }
                self.alpha_dirty.store(false, Ordering::Release);
            }
        }
        self.alpha.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn require_fitted(&self) -> Result<()> {
        if self.is_fitted() {
            Ok(())
        } else {
            Err(Error::invalid_value(
                "model",
                "is not fitted; call fit first",
            ))
        }
    }

    /// Fits the model to `x` `(n, d)` and `y` `(n, outputs)` with the current
    /// hyperparameters: factorises `K + σ²I` (escalating jitter if needed). With
    /// `max_observations`, only the last that many rows are kept.
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] naming `X` or `y`; [`Error::NotPositiveDefinite`]
    /// if even the largest jitter does not make the matrix positive definite. On error the
    /// model is unchanged.
    pub fn fit(&mut self, x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>) -> Result<()> {
        check_xy(&x, &y, self.kernel.input_dim(), None)?;
        let (n_all, d) = x.dim();
        let m = y.ncols();
        if n_all == 0 {
            return Err(Error::shape("X", "must have at least one row"));
        }
        let start = self
            .settings
            .max_observations
            .map_or(0, |w| n_all.saturating_sub(w));
        let (x, y) = (
            x.slice(ndarray::s![start.., ..]),
            y.slice(ndarray::s![start.., ..]),
        );
        let n = n_all - start;
        let cap = self
            .settings
            .capacity
            .max(self.settings.max_observations.unwrap_or(0))
            .max(
                n + if self.settings.max_observations.is_some() {
                    0
                } else {
                    64
                },
            );
        let mut new = Self::new(self.kernel.clone(), self.settings.clone())?;
        new.d = d;
        new.m = m;
        new.n = n;
        new.cap = cap;
        new.x = vec![0.0; cap * d];
        new.y = vec![0.0; cap * m];
        for i in 0..n {
            for k in 0..d {
                new.x[i * d + k] = x[[i, k]];
            }
            for o in 0..m {
                new.y[i * m + o] = y[[i, o]];
            }
        }
        new.y_mean = vec![0.0; m];
        new.y_std = vec![1.0; m];
        if self.settings.normalize_y {
            for o in 0..m {
                let col = y.column(o);
                let mean = col.sum() / n as f64;
                let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                new.y_mean[o] = mean;
                // As scikit-learn: a constant output keeps scale 1.
                new.y_std[o] = if var.sqrt() > 10.0 * f64::EPSILON * mean.abs().max(1.0) {
                    var.sqrt()
                } else {
                    1.0
                };
            }
        }
        new.l = vec![0.0; cap * cap];
        new.extra = vec![0.0; cap];
        new.z = vec![0.0; cap * m];
        new.alpha = RwLock::new(vec![0.0; cap * m]);
        new.buf = vec![0.0; cap.max(1) * m.max(1)];
        new.kws.reserve(&new.kernel, cap, d);
        new.seq_first = 0;
        new.seq_next = n as u64;
        new.stats = self.stats.clone();
        new.refactor()?;
        *self = new;
        Ok(())
    }

    /// Normalised target `o` of stored row `i`.
    fn ytilde(&self, i: usize, o: usize) -> f64 {
        (self.y[i * self.m + o] - self.y_mean[o]) / self.y_std[o]
    }

    /// Recomputes `L`, `z` and `α` from the stored data (jitter escalation included).
    fn refactor(&mut self) -> Result<()> {
        let (n, d, cap) = (self.n, self.d, self.cap);
        self.extra[..n].iter_mut().for_each(|e| *e = 0.0);
        if n > 0 {
            let xv = ArrayView2::from_shape((n, d), &self.x[..n * d])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let k = self.kernel.matrix(xv, None, self.settings.par)?;
            let mean_diag =
                (0..n).map(|i| k[[i, i]]).sum::<f64>() / n as f64 + self.settings.noise_variance;
            let scale = if mean_diag > 0.0 { mean_diag } else { 1.0 };
            let max_jitter = self.settings.max_relative_jitter * scale;
            let mut jitter = 0.0;
            let mut last_pivot;
            loop {
                for j in 0..n {
                    let col = &mut self.l[j * cap..j * cap + n];
                    for i in j..n {
                        col[i] = k[[i, j]];
                    }
                    col[j] += self.settings.noise_variance + jitter;
                }
                match cholesky(&mut self.l, cap, n, self.settings.par) {
                    Ok(()) => break,
                    Err(pivot) => last_pivot = pivot,
                }
                jitter = if jitter == 0.0 {
                    1e-12 * scale
                } else {
                    jitter * 10.0
                };
                if jitter > max_jitter * (1.0 + 1e-12) {
                    return Err(Error::NotPositiveDefinite {
                        what: "K(X, X) + noise",
                        pivot: last_pivot,
                        jitter: max_jitter,
                    });
                }
            }
            self.jitter = jitter;
            if jitter > 0.0 {
                self.stats.jitter_escalations += 1;
            }
        } else {
            self.jitter = 0.0;
        }
        self.recompute_weights();
        self.since_refactor = 0;
        self.stats.refactors += 1;
        Ok(())
    }

    /// `z = L⁻¹ỹ`, `α = L⁻ᵀz` for every output from the current factor.
    fn recompute_weights(&mut self) {
        let (n, cap) = (self.n, self.cap);
        for o in 0..self.m {
            for i in 0..n {
                self.z[o * cap + i] = self.ytilde(i, o);
            }
            forward_solve(&self.l, cap, n, &mut self.z[o * cap..o * cap + n]);
        }
        self.alpha_dirty.store(true, Ordering::Release);
    }

    /// Refactorises from scratch (drift control does this automatically).
    ///
    /// # Errors
    /// As [`GaussianProcess::fit`].
    pub fn refactorize(&mut self) -> Result<()> {
        self.require_fitted()?;
        self.refactor()
    }

    fn grow(&mut self, need: usize) {
        if need <= self.cap {
            return;
        }
        let new_cap = need.max(2 * self.cap).max(8);
        let (d, m, n, old) = (self.d, self.m, self.n, self.cap);
        self.x.resize(new_cap * d, 0.0);
        self.y.resize(new_cap * m, 0.0);
        self.extra.resize(new_cap, 0.0);
        let mut l = vec![0.0; new_cap * new_cap];
        for j in 0..n {
            l[j * new_cap + j..j * new_cap + n].copy_from_slice(&self.l[j * old + j..j * old + n]);
        }
        self.l = l;
        let mut z = vec![0.0; new_cap * m];
        for o in 0..m {
            z[o * new_cap..o * new_cap + n].copy_from_slice(&self.z[o * old..o * old + n]);
        }
        self.z = z;
        // α is recomputed from z on demand.
        *self.alpha.get_mut().unwrap_or_else(PoisonError::into_inner) = vec![0.0; new_cap * m];
        self.alpha_dirty.store(true, Ordering::Release);
        self.buf.resize(new_cap * m.max(1), 0.0);
        self.kws.reserve(&self.kernel, new_cap, d);
        self.cap = new_cap;
    }

    /// Appends observations in O(n²) each (no refactorisation): with a sliding window, the
    /// oldest observations are removed first. Near-duplicate inputs get the jitter they need
    /// (counted in [`GpStats::duplicate_jitter_events`]).
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] naming `X` or `y` (checked for the whole batch
    /// before anything changes, so a failed call adds nothing); [`Error::InvalidValue`] if
    /// the model is not fitted; [`Error::NotPositiveDefinite`] if a drift-control
    /// refactorisation fails.
    pub fn add_observations(
        &mut self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
    ) -> Result<()> {
        self.require_fitted()?;
        check_xy(&x, &y, Some(self.d), Some(self.m))?;
        for r in 0..x.nrows() {
            if let Some(w) = self.settings.max_observations {
                if self.n >= w {
                    self.remove_oldest_unchecked(self.n + 1 - w)?;
                }
            }
            self.append_one(x.row(r), y.row(r))?;
        }
        Ok(())
    }

    fn append_one(
        &mut self,
        xr: ndarray::ArrayView1<'_, f64>,
        yr: ndarray::ArrayView1<'_, f64>,
    ) -> Result<()> {
        self.grow(self.n + 1);
        if self.buf.len() < self.cap {
            self.buf.resize(self.cap, 0.0);
            self.kws.reserve(&self.kernel, self.cap, self.d);
        }
        let (n, d, m, cap) = (self.n, self.d, self.m, self.cap);
        for k in 0..d {
            self.x[n * d + k] = xr[k];
        }
        for o in 0..m {
            self.y[n * m + o] = yr[o];
        }
        // k(X, x_new) into buf[..n], then l = L⁻¹k.
        let xnew = ArrayView2::from_shape((1, d), &self.x[n * d..(n + 1) * d])
            .map_err(|e| Error::Internal(e.to_string()))?;
        let kxx = {
            let mut one = [0.0];
            self.kernel
                .diag_into(xnew, ndarray::ArrayViewMut1::from(&mut one[..]))?;
            one[0]
        };
        if n > 0 {
            let xs = ArrayView2::from_shape((n, d), &self.x[..n * d])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let out = ArrayViewMut2::from_shape((1, n), &mut self.buf[..n])
                .map_err(|e| Error::Internal(e.to_string()))?;
            self.kernel
                .matrix_into(xnew, Some(xs), out, &mut self.kws, Par::Seq)?;
            forward_solve(&self.l, cap, n, &mut self.buf[..n]);
        }
        let lrow = &self.buf[..n];
        let base = kxx + self.settings.noise_variance + self.jitter;
        let mut schur = base - dot_product(lrow, lrow);
        // Floor relative to the diagonal: a near-duplicate input (or σ² ≈ 0) would otherwise
        // give a zero or negative pivot.
        let floor = 1e-12 * base.abs().max(f64::MIN_POSITIVE);
        let mut extra = 0.0;
        if schur <= floor || schur.is_nan() {
            extra = floor - schur.min(floor);
            schur = floor;
            self.stats.duplicate_jitter_events += 1;
        }
        let lnn = schur.sqrt();
        for j in 0..n {
            self.l[n + j * cap] = lrow[j];
        }
        self.l[n + n * cap] = lnn;
        self.extra[n] = extra;
        for o in 0..m {
            let zo = &self.z[o * cap..o * cap + n];
            let zn = (self.ytilde(n, o) - dot_product(lrow, zo)) / lnn;
            self.z[o * cap + n] = zn;
        }
        self.n = n + 1;
        self.seq_next += 1;
        self.alpha_dirty.store(true, Ordering::Release);
        self.after_update()
    }

    /// Removes the `k` oldest observations in O(n²·k) (a rank-k update of the factor).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `k` if `k` exceeds the number held, or if the model is
    /// not fitted; numerical failures of a drift-control refactorisation.
    pub fn remove_oldest(&mut self, k: usize) -> Result<()> {
        self.require_fitted()?;
        if k > self.n {
            return Err(Error::invalid_value(
                "k",
                format_args!("cannot remove {k} observations, the model holds {}", self.n),
            ));
        }
        self.remove_oldest_unchecked(k)
    }

    fn remove_oldest_unchecked(&mut self, k: usize) -> Result<()> {
        if k == 0 {
            return Ok(());
        }
        let (n, d, m, cap) = (self.n, self.d, self.m, self.cap);
        let r = n - k;
        if r > 0 {
            // w = L[k.., ..k] (clobbered by the update), alpha = 1: L22 L22ᵀ + w wᵀ.
            let mut w = vec![0.0; r * k];
            for c in 0..k {
                w[c * r..(c + 1) * r].copy_from_slice(&self.l[c * cap + k..c * cap + n]);
            }
            let mut ones = vec![1.0; k];
            {
                let (_, tail) = self.l.split_at_mut(k * cap + k);
                let l22 = MatMut::from_column_major_slice_with_stride_mut(tail, r, r, cap);
                let wm = MatMut::from_column_major_slice_mut(&mut w, r, k);
                let alpha = faer::ColMut::from_slice_mut(&mut ones).as_diagonal_mut();
                faer::linalg::cholesky::llt::update::rank_r_update_clobber(l22, wm, alpha)
                    .map_err(|_| Error::Numerical {
                        what: "remove_oldest",
                        detail: "the factor update lost positive definiteness".into(),
                    })?;
            }
            // Shift the trailing factor to the top-left corner, column by column.
            for j in 0..r {
                let src = (j + k) * cap + (j + k);
                self.l.copy_within(src..src + (r - j), j * cap + j);
            }
        }
        self.x.copy_within(k * d..n * d, 0);
        self.y.copy_within(k * m..n * m, 0);
        self.extra.copy_within(k..n, 0);
        self.n = r;
        self.seq_first += k as u64;
        self.recompute_weights();
        for _ in 0..k {
            self.after_update_count();
        }
        self.after_update()
    }

    fn after_update_count(&mut self) {
        self.since_refactor += 1;
        self.stats.updates += 1;
    }

    /// Drift control after a streaming update.
    fn after_update(&mut self) -> Result<()> {
        self.after_update_count();
        if self.since_refactor >= self.settings.refactor_every {
            return self.refactor();
        }
        if self.n > 0
            && self
                .since_refactor
                .is_multiple_of(self.settings.check_every)
            && !self.probe_ok()?
        {
            self.stats.failed_probes += 1;
            return self.refactor();
        }
        Ok(())
    }

    /// Compares one column of `L Lᵀ` with the kernel column it should reproduce.
    fn probe_ok(&mut self) -> Result<bool> {
        let (n, d, cap) = (self.n, self.d, self.cap);
        let j = (self.stats.updates as usize * 7919) % n;
        let xs = ArrayView2::from_shape((n, d), &self.x[..n * d])
            .map_err(|e| Error::Internal(e.to_string()))?;
        let xj = xs.slice(ndarray::s![j..=j, ..]);
        let out = ArrayViewMut2::from_shape((1, n), &mut self.buf[..n])
            .map_err(|e| Error::Internal(e.to_string()))?;
        self.kernel
            .matrix_into(xj, Some(xs), out, &mut self.kws, Par::Seq)?;
        self.buf[j] += self.settings.noise_variance + self.jitter + self.extra[j];
        let scale = self.buf[j].abs().max(f64::MIN_POSITIVE);
        // (L Lᵀ)[i, j] = Σ_{c ≤ min(i, j)} L[i, c] L[j, c].
        let mut worst = 0.0f64;
        for i in 0..n {
            let cmax = i.min(j);
            let mut s = 0.0;
            for c in 0..=cmax {
                s += self.l[i + c * cap] * self.l[j + c * cap];
            }
            worst = worst.max((s - self.buf[i]).abs());
        }
        Ok(worst <= self.settings.residual_tol * scale.max(1.0))
    }
}

/// In-place Cholesky of the leading `n × n` block (lower triangle) of a column-major matrix
/// with leading dimension `ld`. `Err(pivot)` if not positive definite.
fn cholesky(l: &mut [f64], ld: usize, n: usize, par: Par) -> std::result::Result<(), usize> {
    use faer::linalg::cholesky::llt::factor;
    let fpar = faer_par(par);
    let mut mem = MemBuffer::new(factor::cholesky_in_place_scratch::<f64>(
        n,
        fpar,
        Default::default(),
    ));
    let stack = MemStack::new(&mut mem);
    let a = MatMut::from_column_major_slice_with_stride_mut(&mut l[..(n - 1) * ld + n], n, n, ld);
    // Inside the crate's pool: faer's parallel loops then never touch rayon's global pool
    // (which a forked child cannot use).
    let r = par.install(|| {
        factor::cholesky_in_place(a, Default::default(), fpar, stack, Default::default()).map(drop)
    });
    match r {
        Ok(_) => Ok(()),
        Err(factor::LltError::NonPositivePivot { index }) => Err(index),
    }
}

/// faer's parallelism for one of ours.
fn faer_par(par: Par) -> faer::Par {
    #[cfg(feature = "rayon")]
    if par.is_parallel() {
        return faer::Par::rayon(par.num_threads());
    }
    let _ = par;
    faer::Par::Seq
}

/// `−log p(y | X, θ, σ²)` and its gradient for `params = [θ…, ln σ²]` (or `θ` alone when
/// `noise` is given): the objective of [`GaussianProcess::optimize`].
fn neg_lml_and_grad(
    kernel: &Kernel,
    x: ArrayView2<'_, f64>,
    ytilde: &Array2<f64>,
    params: &[f64],
    fixed_noise: Option<f64>,
    max_rel_jitter: f64,
    par: Par,
) -> Result<(f64, Vec<f64>)> {
    let p = kernel.n_params();
    let k = kernel.with_theta(&params[..p])?;
    let noise = match fixed_noise {
        Some(s) => s,
        None => params[p].exp(),
    };
    let (n, m) = ytilde.dim();
    let mut kmat = k.matrix(x, None, par)?;
    let mean_diag = (0..n).map(|i| kmat[[i, i]]).sum::<f64>() / n as f64 + noise;
    let mut l = kmat.clone();
    let mut jitter = 0.0;
    loop {
        for i in 0..n {
            l[[i, i]] = kmat[[i, i]] + noise + jitter;
        }
        // Row-major (n, n) is column-major Lᵀ-storage of the same symmetric matrix.
        let ls = l
            .as_slice_mut()
            .ok_or_else(|| Error::Internal("non-contiguous".into()))?;
        if cholesky(ls, n, n, par).is_ok() {
            break;
        }
        jitter = if jitter == 0.0 {
            1e-12 * mean_diag
        } else {
            jitter * 10.0
        };
        if jitter > max_rel_jitter * mean_diag {
            return Err(Error::NotPositiveDefinite {
                what: "K(X, X) + noise",
                pivot: 0,
                jitter,
            });
        }
        l.assign(&kmat);
    }
    let ls = l
        .as_slice()
        .ok_or_else(|| Error::Internal("non-contiguous".into()))?;
    let lref = MatRef::from_column_major_slice(ls, n, n);
    // α for every output, and K⁻¹ = L⁻ᵀL⁻¹.
    let mut alpha = faer::Mat::<f64>::zeros(n, m);
    for o in 0..m {
        for i in 0..n {
            alpha[(i, o)] = ytilde[[i, o]];
        }
    }
    let fpar = faer_par(par);
    par.install(|| {
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(lref, alpha.as_mut(), fpar);
    });
    let zz: f64 = (0..m)
        .map(|o| (0..n).map(|i| alpha[(i, o)].powi(2)).sum::<f64>())
        .sum();
    par.install(|| {
        faer::linalg::triangular_solve::solve_upper_triangular_in_place(
            lref.transpose(),
            alpha.as_mut(),
            fpar,
        );
    });
    let logdet: f64 = (0..n).map(|i| ls[i + i * n].ln()).sum();
    let lml =
        -0.5 * zz - m as f64 * logdet - 0.5 * (n * m) as f64 * (2.0 * std::f64::consts::PI).ln();
    // K⁻¹ from the factor (faer: triangular inverse + triangular product, lower half only).
    let mut kinv = faer::Mat::<f64>::zeros(n, n);
    {
        use faer::linalg::cholesky::llt::inverse;
        let mut mem = MemBuffer::new(inverse::inverse_scratch::<f64>(n, fpar));
        inverse::inverse(kinv.as_mut(), lref, fpar, MemStack::new(&mut mem));
    }
    // W = Σ_o α_o α_oᵀ − m K⁻¹ (symmetric); ∂lml/∂θ_q = ½ Σ W ∘ ∂K/∂θ_q.
    for j in 0..n {
        for i in j..n {
            let aa: f64 = (0..m).map(|o| alpha[(i, o)] * alpha[(j, o)]).sum();
            let w = aa - m as f64 * kinv[(i, j)];
            kmat[[i, j]] = w;
            kmat[[j, i]] = w;
        }
    }
    let mut g = vec![0.0; p];
    let mut ws = KernelWorkspace::new();
    k.gradient_dot(x, kmat.view(), &mut g, &mut ws, par)?;
    let mut grad: Vec<f64> = g.iter().map(|v| -0.5 * v).collect();
    if fixed_noise.is_none() {
        let tr: f64 = (0..n).map(|i| kmat[[i, i]]).sum();
        grad.push(-0.5 * noise * tr);
    }
    Ok((-lml, grad))
}

impl GaussianProcess {
    /// Checks test inputs `(n*, d)` against the fitted model; returns n*.
    fn check_test_inputs(&self, x: &ArrayView2<'_, f64>) -> Result<usize> {
        self.require_fitted()?;
        let (ns, d) = x.dim();
        if d != self.d {
            return Err(Error::shape(
                "X",
                format_args!("expected {} columns, got {d}", self.d),
            ));
        }
        check_finite("X", x.iter())?;
        Ok(ns)
    }

    /// Posterior mean and variance at each row of `x` `(n*, d)`: one blocked triangular
    /// solve for the whole batch. `include_noise` adds σ² (the variance of a new y).
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] naming `X`; [`Error::InvalidValue`] if the model
    /// is not fitted.
    pub fn predict_with(&self, x: ArrayView2<'_, f64>, include_noise: bool) -> Result<Prediction> {
        let ns = self.check_test_inputs(&x)?;
        let (n, m, cap) = (self.n, self.m, self.cap);
        let mut mean = Array2::zeros((ns, m));
        let mut var = Array2::zeros((ns, m));
        if ns == 0 {
            return Ok(Prediction { mean, var });
        }
        let kss = self.kernel.diag(x)?;
        // K* (n*, n) row-major is exactly L⁻¹'s right-hand side (n, n*) column-major: row j
        // of K* is column j. Solve in place, then means and variances are column dot products.
        let mut v = if n > 0 {
            self.kernel
                .matrix(x, Some(self.inputs()), self.settings.par)?
        } else {
            Array2::zeros((ns, 0))
        };
        if n > 0 {
            let vs = v
                .as_slice_mut()
                .ok_or_else(|| Error::Internal("non-contiguous".into()))?;
            let lref = MatRef::from_column_major_slice_with_stride(
                &self.l[..(n - 1) * cap + n],
                n,
                n,
                cap,
            );
            let par = self.settings.par;
            par.install(|| {
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    lref,
                    MatMut::from_column_major_slice_mut(vs, n, ns),
                    faer_par(par),
                );
            });
        }
        // mean = k*ᵀα = (L⁻¹k*)·z: no α needed.
        let mut vv = vec![0.0; ns];
        for j in 0..ns {
            let col = v.row(j);
            let col = col.as_slice().unwrap_or(&[]);
            vv[j] = dot_product(col, col);
            for o in 0..m {
                mean[[j, o]] = dot_product(col, &self.z[o * cap..o * cap + n]);
            }
        }
        let noise = if include_noise {
            self.settings.noise_variance
        } else {
            0.0
        };
        let mut clamped = 0;
        for j in 0..ns {
            let mut s = kss[j] - vv[j];
            if s < 0.0 {
                s = 0.0;
                clamped += 1;
            }
            for o in 0..m {
                var[[j, o]] = (s + noise) * self.y_std[o] * self.y_std[o];
                mean[[j, o]] = mean[[j, o]] * self.y_std[o] + self.y_mean[o];
            }
        }
        if clamped > 0 {
            self.clamped.fetch_add(clamped, Ordering::Relaxed);
        }
        Ok(Prediction { mean, var })
    }

    /// [`GaussianProcess::predict_with`] for the latent f (no noise).
    ///
    /// # Errors
    /// As [`GaussianProcess::predict_with`].
    pub fn predict(&self, x: ArrayView2<'_, f64>) -> Result<Prediction> {
        self.predict_with(x, false)
    }

    /// Posterior mean only, `(n*, outputs)`: O(n·d) per point, no solve.
    ///
    /// # Errors
    /// As [`GaussianProcess::predict_with`].
    pub fn predict_mean(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let ns = self.check_test_inputs(&x)?;
        let (n, m, cap) = (self.n, self.m, self.cap);
        let mut mean = Array2::zeros((ns, m));
        if n > 0 && ns > 0 {
            let kstar = self
                .kernel
                .matrix(x, Some(self.inputs()), self.settings.par)?;
            let alpha = self.alpha_ready();
            for o in 0..m {
                let a = &alpha[o * cap..o * cap + n];
                for i in 0..ns {
                    mean[[i, o]] = dot_product(kstar.row(i).as_slice().unwrap_or(&[]), a);
                }
            }
        }
        for i in 0..ns {
            for o in 0..m {
                mean[[i, o]] = mean[[i, o]] * self.y_std[o] + self.y_mean[o];
            }
        }
        Ok(mean)
    }

    /// The hot path: mean (and, if `var` is given, latent variance) of every output at one
    /// point `x` (length d), into caller buffers of length `outputs`. Does not allocate once
    /// `ws` has grown to the model size.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `x`, `mean` or `var`; [`Error::NonFinite`] naming `x`;
    /// [`Error::InvalidValue`] if the model is not fitted.
    pub fn predict_one_into(
        &self,
        x: &[f64],
        mean: &mut [f64],
        var: Option<&mut [f64]>,
        ws: &mut GpWorkspace,
    ) -> Result<()> {
        self.require_fitted()?;
        let (n, m, d, cap) = (self.n, self.m, self.d, self.cap);
        if x.len() != d {
            return Err(Error::shape(
                "x",
                format_args!("expected {d} values, got {}", x.len()),
            ));
        }
        if mean.len() != m {
            return Err(Error::shape(
                "mean",
                format_args!("expected {m} values, got {}", mean.len()),
            ));
        }
        check_finite("x", x)?;
        if ws.kvec.len() < n {
            ws.kvec.resize(cap.max(n), 0.0);
            ws.v.resize(cap.max(n), 0.0);
            ws.kernel.reserve(&self.kernel, cap.max(n), d);
        }
        let xv = ArrayView2::from_shape((1, d), x).map_err(|e| Error::Internal(e.to_string()))?;
        if n > 0 {
            let out = ArrayViewMut2::from_shape((1, n), &mut ws.kvec[..n])
                .map_err(|e| Error::Internal(e.to_string()))?;
            self.kernel
                .matrix_into(xv, Some(self.inputs()), out, &mut ws.kernel, Par::Seq)?;
        }
        let kvec = &ws.kvec[..n];
        let Some(var) = var else {
            let alpha = self.alpha_ready();
            for o in 0..m {
                mean[o] = dot_product(kvec, &alpha[o * cap..o * cap + n]) * self.y_std[o]
                    + self.y_mean[o];
            }
            return Ok(());
        };
        {
            if var.len() != m {
                return Err(Error::shape(
                    "var",
                    format_args!("expected {m} values, got {}", var.len()),
                ));
            }
            let mut kxx = [0.0];
            self.kernel
                .diag_into(xv, ndarray::ArrayViewMut1::from(&mut kxx[..]))?;
            let v = &mut ws.v[..n];
            v.copy_from_slice(kvec);
            forward_solve(&self.l, cap, n, v);
            let mut s = kxx[0] - dot_product(v, v);
            if s < 0.0 {
                s = 0.0;
                self.clamped.fetch_add(1, Ordering::Relaxed);
            }
            for o in 0..m {
                var[o] = s * self.y_std[o] * self.y_std[o];
                // mean = k*ᵀα = (L⁻¹k*)·z, reusing the solve.
                mean[o] =
                    dot_product(v, &self.z[o * cap..o * cap + n]) * self.y_std[o] + self.y_mean[o];
            }
        }
        Ok(())
    }

    /// Full predictive covariance of the latent f at the rows of `x`: mean `(n*, outputs)` and
    /// covariance `(n*, n*)` in normalised units (multiply by `y_std[o]²` per output; equal
    /// to the raw covariance unless `normalize_y`).
    ///
    /// # Errors
    /// As [`GaussianProcess::predict_with`].
    pub fn predict_cov(&self, x: ArrayView2<'_, f64>) -> Result<(Array2<f64>, Array2<f64>)> {
        let mean = self.predict_mean(x)?;
        let ns = x.nrows();
        let n = self.n;
        let mut cov = self.kernel.matrix(x, None, self.settings.par)?;
        if n > 0 && ns > 0 {
            let cap = self.cap;
            let kstar = self
                .kernel
                .matrix(x, Some(self.inputs()), self.settings.par)?;
            let mut v = faer::Mat::<f64>::zeros(n, ns);
            for j in 0..ns {
                for i in 0..n {
                    v[(i, j)] = kstar[[j, i]];
                }
            }
            let fpar = faer_par(self.settings.par);
            let lref = MatRef::from_column_major_slice_with_stride(
                &self.l[..(n - 1) * cap + n],
                n,
                n,
                cap,
            );
            self.settings.par.install(|| {
                faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                    lref,
                    v.as_mut(),
                    fpar,
                );
            });
            let mut vtv = faer::Mat::<f64>::zeros(ns, ns);
            faer::linalg::matmul::matmul(
                vtv.as_mut(),
                faer::Accum::Replace,
                v.transpose(),
                v.as_ref(),
                1.0,
                fpar,
            );
            for i in 0..ns {
                for j in 0..ns {
                    cov[[i, j]] -= vtv[(i, j)];
                }
            }
        }
        Ok((mean, cov))
    }

    /// Posterior samples of the latent f at the rows of `x`: shape `(n_samples, n*, outputs)`,
    /// seeded (same seed, same samples).
    ///
    /// # Errors
    /// As [`GaussianProcess::predict_with`], plus [`Error::NotPositiveDefinite`] if the
    /// posterior covariance cannot be factorised even with jitter.
    pub fn sample(
        &self,
        x: ArrayView2<'_, f64>,
        n_samples: usize,
        seed: u64,
    ) -> Result<Array3<f64>> {
        let (mean, cov) = self.predict_cov(x)?;
        let ns = x.nrows();
        let m = self.m;
        let mut out = Array3::zeros((n_samples, ns, m));
        if ns == 0 || n_samples == 0 {
            return Ok(out);
        }
        let mut l = cov.clone();
        let scale = (0..ns)
            .map(|i| cov[[i, i]].abs())
            .fold(0.0, f64::max)
            .max(1e-300);
        let mut jitter = 1e-12 * scale;
        loop {
            let ls = l
                .as_slice_mut()
                .ok_or_else(|| Error::Internal("non-contiguous".into()))?;
            if cholesky(ls, ns, ns, Par::Seq).is_ok() {
                break;
            }
            jitter *= 10.0;
            if jitter > 1e-3 * scale {
                return Err(Error::NotPositiveDefinite {
                    what: "posterior covariance",
                    pivot: 0,
                    jitter,
                });
            }
            l.assign(&cov);
            for i in 0..ns {
                l[[i, i]] += jitter;
            }
        }
        // l holds the factor column-major (the row-major buffer read as columns).
        let ls = l
            .as_slice()
            .ok_or_else(|| Error::Internal("non-contiguous".into()))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut eps = vec![0.0; ns];
        for s in 0..n_samples {
            for o in 0..m {
                for e in eps.iter_mut() {
                    *e = StandardNormal.sample(&mut rng);
                }
                for i in 0..ns {
                    let mut acc = 0.0;
                    for c in 0..=i {
                        acc += ls[i + c * ns] * eps[c];
                    }
                    out[[s, i, o]] = mean[[i, o]] + acc * self.y_std[o];
                }
            }
        }
        Ok(out)
    }

    /// Gradients with respect to the test input `x` (length d) of the posterior mean of each
    /// output `(outputs, d)` and of the latent variance `(outputs, d)` — for MPC linearisation.
    ///
    /// # Errors
    /// As [`GaussianProcess::predict_one_into`].
    pub fn predict_gradient(&self, x: &[f64]) -> Result<(Array2<f64>, Array2<f64>)> {
        self.require_fitted()?;
        let (n, m, d, cap) = (self.n, self.m, self.d, self.cap);
        if x.len() != d {
            return Err(Error::shape(
                "x",
                format_args!("expected {d} values, got {}", x.len()),
            ));
        }
        check_finite("x", x)?;
        let mut vals = vec![0.0; n];
        let mut g = Array2::zeros((n, d));
        let mut scratch = vec![0.0; self.kernel.input_gradient_scratch_len(d)];
        self.kernel
            .cross_gradient_into(x, self.inputs(), &mut vals, g.view_mut(), &mut scratch)?;
        let mut dkxx = vec![0.0; d];
        self.kernel.diag_gradient_into(x, &mut dkxx, &mut scratch)?;
        // w = K⁻¹ k*
        let mut w = vals;
        forward_solve(&self.l, cap, n, &mut w);
        backward_solve_transposed(&self.l, cap, n, &mut w);
        let mut dmean = Array2::zeros((m, d));
        let mut dvar = Array2::zeros((m, d));
        let alpha = self.alpha_ready();
        for c in 0..d {
            let gc = g.column(c);
            let dv = dkxx[c] - 2.0 * gc.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            for o in 0..m {
                let a = &alpha[o * cap..o * cap + n];
                dmean[[o, c]] = gc.iter().zip(a).map(|(a, b)| a * b).sum::<f64>() * self.y_std[o];
                dvar[[o, c]] = dv * self.y_std[o] * self.y_std[o];
            }
        }
        Ok((dmean, dvar))
    }

    /// Log marginal likelihood of the held data under the current hyperparameters (summed
    /// over outputs, on normalised targets when `normalize_y`, as scikit-learn).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if the model is not fitted.
    pub fn log_marginal_likelihood(&self) -> Result<f64> {
        self.require_fitted()?;
        let (n, m, cap) = (self.n, self.m, self.cap);
        let zz: f64 = (0..m)
            .map(|o| {
                let z = &self.z[o * cap..o * cap + n];
                dot_product(z, z)
            })
            .sum();
        let logdet: f64 = (0..n).map(|i| self.l[i + i * cap].ln()).sum();
        Ok(
            -0.5 * zz
                - m as f64 * logdet
                - 0.5 * (n * m) as f64 * (2.0 * std::f64::consts::PI).ln(),
        )
    }

    fn ytilde_matrix(&self) -> Array2<f64> {
        Array2::from_shape_fn((self.n, self.m), |(i, o)| self.ytilde(i, o))
    }

    /// Log marginal likelihood and its gradient at other hyperparameters: `params` is
    /// `[kernel θ…, ln σ²]`; the gradient has the same layout. The model is unchanged.
    ///
    /// # Errors
    /// [`Error::Shape`] naming `params`; numerical failures.
    pub fn log_marginal_likelihood_gradient(&self, params: &[f64]) -> Result<(f64, Vec<f64>)> {
        self.require_fitted()?;
        let p = self.kernel.n_params();
        if params.len() != p + 1 {
            return Err(Error::shape(
                "params",
                format_args!(
                    "expected {} values ([θ…, ln σ²]), got {}",
                    p + 1,
                    params.len()
                ),
            ));
        }
        check_finite("params", params)?;
        let (v, g) = neg_lml_and_grad(
            &self.kernel,
            self.inputs(),
            &self.ytilde_matrix(),
            params,
            None,
            self.settings.max_relative_jitter,
            self.settings.par,
        )?;
        Ok((-v, g.iter().map(|x| -x).collect()))
    }

    /// Fits the hyperparameters by maximising the log marginal likelihood with bounded
    /// multi-start L-BFGS ([`crate::gp::optimize`]), then refactorises with the best ones.
    /// Starts: the current hyperparameters plus `settings.n_restarts` seeded random points.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if not fitted or the bounds are invalid; [`Error::Numerical`]
    /// if no start succeeded. On error the model is unchanged.
    pub fn optimize(
        &mut self,
        settings: &OptimizeSettings,
        bounds: &HyperBounds,
    ) -> Result<FitReport> {
        self.require_fitted()?;
        let (best, report) = self.optimized_hyperparameters(settings, bounds)?;
        let (kernel, noise) = best;
        let old = (self.kernel.clone(), self.settings.noise_variance);
        self.kernel = kernel;
        self.settings.noise_variance = noise;
        if let Err(e) = self.refactor() {
            self.kernel = old.0;
            self.settings.noise_variance = old.1;
            self.refactor()?;
            return Err(e);
        }
        Ok(report)
    }

    /// The optimisation of [`GaussianProcess::optimize`] without changing the model.
    fn optimized_hyperparameters(
        &self,
        settings: &OptimizeSettings,
        bounds: &HyperBounds,
    ) -> Result<((Kernel, f64), FitReport)> {
        settings.validate()?;
        bounds.validate()?;
        let p = self.kernel.n_params();
        let mut x0 = self.kernel.theta();
        let mut lo = vec![bounds.kernel.0; p];
        let mut hi = vec![bounds.kernel.1; p];
        let fixed_noise = match bounds.noise {
            Some((a, b)) => {
                x0.push(self.settings.noise_variance.max(1e-300).ln().clamp(a, b));
                lo.push(a);
                hi.push(b);
                None
            }
            None => Some(self.settings.noise_variance),
        };
        for v in x0.iter_mut().take(p) {
            *v = v.clamp(bounds.kernel.0, bounds.kernel.1);
        }
        let ytilde = self.ytilde_matrix();
        let x = self.inputs();
        let (kernel, par, mj) = (
            &self.kernel,
            self.settings.par,
            self.settings.max_relative_jitter,
        );
        let mut f =
            |params: &[f64]| neg_lml_and_grad(kernel, x, &ytilde, params, fixed_noise, mj, par);
        let res = minimize(&mut f, &x0, &lo, &hi, settings)?;
        let k = self.kernel.with_theta(&res.params[..p])?;
        let noise = fixed_noise.unwrap_or_else(|| res.params[p].exp());
        Ok((
            (k, noise),
            FitReport {
                log_marginal_likelihood: -res.value,
                optimizer: res,
            },
        ))
    }

    /// Starts [`GaussianProcess::optimize`] on a snapshot of this model in a background
    /// thread, so the control thread keeps predicting and streaming meanwhile. Collect the
    /// result with [`BackgroundFit::wait`] or [`BackgroundFit::try_take`] and install it with
    /// [`GaussianProcess::adopt`].
    #[must_use]
    pub fn optimize_in_background(
        &self,
        settings: OptimizeSettings,
        bounds: HyperBounds,
    ) -> BackgroundFit {
        let snapshot = self.clone();
        let handle = std::thread::spawn(move || {
            let mut gp = snapshot;
            let report = gp.optimize(&settings, &bounds)?;
            Ok((gp, report))
        });
        BackgroundFit {
            handle: Some(handle),
        }
    }

    /// Installs a model refitted in the background: observations removed or added here since
    /// the snapshot are replayed onto it (O(n²) each), then it replaces this model in one
    /// step. If the window has moved past every snapshot observation, the new hyperparameters
    /// are applied with a refactorisation of the current data instead.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `fitted` if it was not derived from this model's
    /// stream; numerical failures. On error this model is unchanged.
    pub fn adopt(&mut self, mut fitted: GaussianProcess) -> Result<()> {
        self.require_fitted()?;
        let (a, b) = fitted.sequence_range();
        let (c, e) = self.sequence_range();
        if fitted.d != self.d || fitted.m != self.m || b > e || a > c && a > e {
            return Err(Error::invalid_value(
                "fitted",
                "was not fitted on a snapshot of this model's observations",
            ));
        }
        if c >= b || a > c {
            let mut next = self.clone();
            next.kernel = fitted.kernel.clone();
            next.settings.noise_variance = fitted.settings.noise_variance;
            next.refactor()?;
            *self = next;
            return Ok(());
        }
        fitted.settings = GpSettings {
            noise_variance: fitted.settings.noise_variance,
            ..self.settings.clone()
        };
        fitted.remove_oldest_unchecked((c - a) as usize)?;
        let skip = (b - c) as usize;
        let (xs, ys) = (self.inputs(), self.targets());
        for r in skip..self.n {
            fitted.append_one(xs.row(r), ys.row(r))?;
        }
        fitted.y_mean.clone_from(&self.y_mean);
        fitted.y_std.clone_from(&self.y_std);
        *self = fitted;
        Ok(())
    }
}

/// A hyperparameter fit running in a background thread (see
/// [`GaussianProcess::optimize_in_background`]).
#[derive(Debug)]
pub struct BackgroundFit {
    handle: Option<std::thread::JoinHandle<Result<(GaussianProcess, FitReport)>>>,
}

impl BackgroundFit {
    /// Whether the fit has finished.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle
            .as_ref()
            .is_none_or(std::thread::JoinHandle::is_finished)
    }

    /// Blocks until the fit finishes and returns the refitted model and its report.
    ///
    /// # Errors
    /// The fit's error; [`Error::Internal`] if the thread panicked or the result was
    /// already taken.
    pub fn wait(mut self) -> Result<(GaussianProcess, FitReport)> {
        match self.handle.take() {
            Some(h) => h
                .join()
                .map_err(|_| Error::Internal("background fit panicked".into()))?,
            None => Err(Error::Internal("result already taken".into())),
        }
    }

    /// The result if finished, without blocking.
    ///
    /// # Errors
    /// As [`BackgroundFit::wait`].
    pub fn try_take(&mut self) -> Option<Result<(GaussianProcess, FitReport)>> {
        if !self.is_finished() {
            return None;
        }
        self.handle.take().map(|h| {
            h.join()
                .map_err(|_| Error::Internal("background fit panicked".into()))?
        })
    }
}

/// The on-disk form of a [`GaussianProcess`] (format `"intent_engine.GaussianProcess"`,
/// version 1): JSON holding the kernel spec, the settings that define the model, the held
/// observations and the normalisation constants. Loading refactorises — no code runs and no
/// factor is trusted from the file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GpFile {
    /// Always `"intent_engine.GaussianProcess"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The kernel.
    pub kernel: super::kernel::KernelSpec,
    /// σ².
    pub noise_variance: f64,
    /// Whether targets were normalised.
    pub normalize_y: bool,
    /// The sliding window, if any.
    pub max_observations: Option<usize>,
    /// Inputs, one row per observation.
    pub x: Vec<Vec<f64>>,
    /// Targets, one row per observation.
    pub y: Vec<Vec<f64>>,
    /// Normalisation offsets per output.
    pub y_mean: Vec<f64>,
    /// Normalisation scales per output.
    pub y_std: Vec<f64>,
    /// Sequence number of the first held observation.
    pub seq_first: u64,
}

const GP_FORMAT: &str = "intent_engine.GaussianProcess";

impl GaussianProcess {
    /// The model as a [`GpFile`] JSON string.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] if not fitted.
    pub fn to_json(&self) -> Result<String> {
        self.require_fitted()?;
        let xs = self.inputs();
        let ys = self.targets();
        let file = GpFile {
            format: GP_FORMAT.into(),
            version: 1,
            kernel: self.kernel.to_spec(),
            noise_variance: self.settings.noise_variance,
            normalize_y: self.settings.normalize_y,
            max_observations: self.settings.max_observations,
            x: xs.rows().into_iter().map(|r| r.to_vec()).collect(),
            y: ys.rows().into_iter().map(|r| r.to_vec()).collect(),
            y_mean: self.y_mean.clone(),
            y_std: self.y_std.clone(),
            seq_first: self.seq_first,
        };
        serde_json::to_string(&file).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Rebuilds a model from [`GaussianProcess::to_json`] output (refactorising), with
    /// default values for the settings not stored (capacity, drift control, threads).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `json` for malformed or inconsistent files; the errors
    /// of [`GaussianProcess::fit`].
    pub fn from_json(json: &str) -> Result<Self> {
        let f: GpFile = serde_json::from_str(json).map_err(|e| Error::invalid_value("json", e))?;
        if f.format != GP_FORMAT || f.version != 1 {
            return Err(Error::invalid_value(
                "json",
                format_args!("not a version-1 {GP_FORMAT} file"),
            ));
        }
        let kernel = Kernel::from_spec(&f.kernel)?;
        let n = f.x.len();
        let d = f.x.first().map_or(0, Vec::len);
        let m = f.y_mean.len();
        let bad = |what: &str| Error::invalid_value("json", format_args!("inconsistent {what}"));
        if n == 0 || f.y.len() != n || f.y_std.len() != m || m == 0 {
            return Err(bad("row counts"));
        }
        if f.x.iter().any(|r| r.len() != d) || f.y.iter().any(|r| r.len() != m) {
            return Err(bad("row lengths"));
        }
        let x = Array2::from_shape_vec((n, d), f.x.concat()).map_err(|_| bad("inputs"))?;
        let y = Array2::from_shape_vec((n, m), f.y.concat()).map_err(|_| bad("targets"))?;
        check_finite("json", f.y_mean.iter().chain(&f.y_std))?;
        if f.y_std.iter().any(|s| *s <= 0.0) {
            return Err(bad("y_std"));
        }
        let settings = GpSettings {
            noise_variance: f.noise_variance,
            normalize_y: f.normalize_y,
            max_observations: f.max_observations,
            ..GpSettings::default()
        };
        let mut gp = GaussianProcess::new(kernel, settings)?;
        gp.fit(x.view(), y.view())?;
        gp.y_mean = f.y_mean;
        gp.y_std = f.y_std;
        gp.seq_first = f.seq_first;
        gp.seq_next = f.seq_first + gp.n as u64;
        gp.refactor()?;
        Ok(gp)
    }
}
