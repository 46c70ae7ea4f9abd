//! Sparse Gaussian-process regression: Titsias' variational free energy (VFE, also called
//! SGPR) with `m` inducing points, `O(n m²)` to fit and `O(m²)` per prediction.
//!
//! With inducing inputs `Z` (m × d), `K_mm = K(Z, Z)`, `K_mn = K(Z, X)` and
//! `Q_nn = K_nm K_mm⁻¹ K_mn`, the collapsed bound on the log marginal likelihood of each output
//! column `y` (Titsias 2009) is
//!
//! ```text
//! F = log N(y | 0, Q_nn + σ²I) − tr(K_nn − Q_nn) / (2σ²)  ≤  log p(y)
//! ```
//!
//! computed through the Cholesky factors `L_m = chol(K_mm + jitter·I)`,
//! `A = L_m⁻¹ K_mn / σ`, `B = I + A Aᵀ`, `L_B = chol(B)` and `c = L_B⁻¹ A y / σ`:
//!
//! ```text
//! F = −n/2 log 2π − Σ log L_B,ii − n/2 log σ² − yᵀy/(2σ²) + ½‖c‖² − tr(K_nn)/(2σ²) + ½ tr(AAᵀ)
//! ```
//!
//! With several output columns (one shared kernel and noise), the bound is the sum of the
//! per-column bounds, so every term that does not involve `y` counts once per column.
//! The predictive distribution of the latent function at `x*` is
//!
//! ```text
//! mean = K_*m (σ² K_mm + K_mn K_nm)⁻¹ K_mn y
//! var  = k_** − ‖L_m⁻¹ k_m*‖² + ‖L_B⁻¹ L_m⁻¹ k_m*‖²
//! ```
//!
//! The work over the `n` training points runs in column blocks of `K_mn` (never the whole
//! matrix at once for a fit), in parallel under [`Par::Rayon`]; block partial sums are added
//! in block order, so results do not depend on the thread count.
//!
//! Hyperparameters are learned by maximising `F` ([`SparseGaussianProcess::optimize`]) with
//! analytic gradients; the inducing inputs stay fixed during the optimisation (choose them
//! with [`InducingInit`]). With `k` output columns `Y`, `ĉ = L_B⁻ᵀ c` and
//! `P = K_mm + jitter·I`, the partial derivatives are
//!
//! ```text
//! ∂F/∂P     = L_m⁻ᵀ [k/2 (2I − B − B⁻¹) − ½ ĉĉᵀ] L_m⁻¹
//! ∂F/∂K_mn  = L_m⁻ᵀ [(k (I − B⁻¹) − ĉĉᵀ) A / σ + ĉ Yᵀ / σ²]
//! ∂F/∂k_ii  = −k / (2σ²)                                   (diagonal of K_nn)
//! ∂F/∂ln σ² = −½ [k tr B⁻¹ + ‖ĉ‖² + ‖c‖² + k (n − m) + k tr AAᵀ] + (k tr K_nn + ‖Y‖²) / (2σ²)
//! ```
//!
//! and each is contracted with the kernel's analytic `∂K/∂θ` through
//! [`Kernel::gradient_dot`]: on `Z` for `K_mm` (the jitter, a fixed multiple of the mean
//! diagonal, adds `rel · tr(∂F/∂P) / m` to the diagonal weights), and for `K_mn` and
//! `diag K_nn` on the stacked inputs `[Z; X_b]` of each column block, with weights only in
//! the `Z`–`X_b` block and on the `X_b` diagonal.
//!
//! ```
//! use intent_engine::gp::{InducingInit, Kernel, SparseGaussianProcess};
//! use ndarray::Array2;
//!
//! let x = Array2::from_shape_fn((200, 1), |(i, _)| i as f64 / 20.0);
//! let y = x.mapv(f64::sin);
//! let kernel = Kernel::squared_exponential(1.0, &[1.0])?;
//! let mut gp = SparseGaussianProcess::new(kernel, 1e-4)?;
//! gp.fit(x.view(), y.view(), InducingInit::KMeans { m: 20, seed: 0, iters: 30 })?;
//! let p = gp.predict(ndarray::array![[2.5]].view(), false)?;
//! assert!((p.mean[[0, 0]] - 2.5f64.sin()).abs() < 1e-2);
//! assert!(p.var[[0, 0]] < 1e-3);
//! # Ok::<(), intent_engine::Error>(())
//! ```

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self as tri_matmul, BlockStructure};
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Side};
use ndarray::{s, Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::kernel::{Kernel, KernelWorkspace};
use super::optimize::{minimize, OptimizeResult, OptimizeSettings};
use crate::error::{check_finite, check_positive, Error, Result};
use crate::linalg::simd::{dispatch, SimdTask};
use crate::linalg::Par;

/// faer runs on the calling thread; parallelism comes from our own column blocks.
const FSEQ: faer::Par = faer::Par::Seq;

/// Relative jitter levels tried on `K_mm`: `1e-8 … 1e-2` times its mean diagonal.
const JITTER_REL: [f64; 7] = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2];

/// Default log-space bounds of kernel hyperparameters in [`SparseGaussianProcess::optimize`]
/// (`[ln 1e-5, ln 1e5]`).
pub const DEFAULT_KERNEL_BOUNDS: (f64, f64) = (-11.512_925_464_970_229, 11.512_925_464_970_229);
/// Default log-space bounds of the noise variance in [`SparseGaussianProcess::optimize`]
/// (`[ln 1e-8, ln 1e3]`).
pub const DEFAULT_NOISE_BOUNDS: (f64, f64) = (-18.420_680_743_952_367, 6.907_755_278_982_137);

/// Columns of `K_mn` per block: near `m` (the stacked gradient contraction costs
/// `(m + b)²` per block, least per column at `b = m`), clamped to `[64, 512]`.
fn block_cols(m: usize) -> usize {
    m.clamp(64, 512)
}

/// How the inducing inputs `Z` are chosen by [`SparseGaussianProcess::fit`].
#[derive(Clone, Debug, PartialEq)]
pub enum InducingInit {
    /// Use these `(m, d)` inputs (any `m ≥ 1`; they need not be training points).
    Given(Array2<f64>),
    /// k-means centres of the training inputs: k-means++ seeding from `seed`, then at most
    /// `iters` Lloyd iterations (stopping early when assignments settle). Deterministic for a
    /// seed, whatever the thread count. `m` is clamped to `n`, and to the number of distinct
    /// training inputs when there are fewer (k-means++ stops when every point is a centre).
    KMeans {
        /// Number of inducing points (≥ 1).
        m: usize,
        /// Seed of the k-means++ draws.
        seed: u64,
        /// Maximum Lloyd iterations (0: k-means++ seeding only).
        iters: usize,
    },
    /// Greedy variance reduction (pivoted Cholesky of `K_nn` under the model's current
    /// kernel): repeatedly add the training input with the largest conditional variance given
    /// those already chosen. Deterministic; ties go to the lowest index. `m` is clamped to
    /// `n`; selection stops early once every remaining conditional variance is below
    /// `1e-10 · max k(x, x)` (e.g. when there are fewer distinct inputs than `m`), which
    /// keeps `K_mm` well conditioned.
    Greedy {
        /// Number of inducing points (≥ 1).
        m: usize,
    },
}

/// Predictions of [`SparseGaussianProcess::predict`].
#[derive(Clone, Debug, PartialEq)]
pub struct SparsePrediction {
    /// Predictive mean, shape `(n*, k)`.
    pub mean: Array2<f64>,
    /// Predictive variance, shape `(n*, k)`: of the latent function, plus the noise variance
    /// if requested; scaled by each column's variance when `normalize_y` is on.
    pub var: Array2<f64>,
    /// How many test points had a (round-off) negative latent variance clamped to zero.
    pub n_clamped: usize,
}

/// Training data as the model keeps it (targets normalised if requested).
#[derive(Clone, Debug)]
struct Data {
    x: Array2<f64>,
    y: Array2<f64>,
    y_mean: Vec<f64>,
    y_std: Vec<f64>,
}

/// The cached posterior: everything predictions need, `O(m²)` memory.
#[derive(Clone, Debug)]
struct Posterior {
    z: Array2<f64>,
    lm: Mat<f64>,
    lb: Mat<f64>,
    /// `(σ² K_mm + K_mn K_nm)⁻¹ K_mn y = L_m⁻ᵀ L_B⁻ᵀ c`, shape `(m, k)`.
    v: Mat<f64>,
    jitter: f64,
    bound: f64,
}

/// Sparse GP regression with the collapsed Titsias (VFE/SGPR) bound.
///
/// Construct with [`SparseGaussianProcess::new`], then [`fit`](Self::fit) (choose the
/// inducing points and cache the posterior), optionally [`optimize`](Self::optimize) the
/// hyperparameters, and [`predict`](Self::predict). Targets may have several columns; they
/// share the kernel and the noise variance. See the [module docs](self) for the maths.
///
/// ```
/// use intent_engine::gp::{InducingInit, Kernel, SparseGaussianProcess};
/// use ndarray::Array2;
///
/// let x = Array2::from_shape_fn((100, 2), |(i, j)| ((i * (j + 3)) % 17) as f64 / 4.0);
/// let y = Array2::from_shape_fn((100, 2), |(i, j)| x[[i, 0]].sin() + j as f64);
/// let mut gp = SparseGaussianProcess::new(Kernel::squared_exponential(1.0, &[1.0])?, 1e-2)?
///     .with_normalize_y(true);
/// gp.fit(x.view(), y.view(), InducingInit::Greedy { m: 30 })?;
/// let before = gp.log_marginal_likelihood_bound()?;
/// gp.optimize(&Default::default(), None)?;
/// assert!(gp.log_marginal_likelihood_bound()? >= before);
/// assert_eq!(gp.predict_mean(x.view())?.dim(), (100, 2));
/// # Ok::<(), intent_engine::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct SparseGaussianProcess {
    kernel: Kernel,
    noise_variance: f64,
    normalize_y: bool,
    par: Par,
    data: Option<Data>,
    post: Option<Posterior>,
}

/// Everything one evaluation of the bound produces (and its gradient needs).
struct Forward {
    lm: Mat<f64>,
    jitter: f64,
    /// `rel` such that `jitter = rel · mean diag K_mm`, if the jitter follows `K_mm`.
    jitter_rel: Option<f64>,
    /// `A = L_m⁻¹ K_mn / σ`, column-major `(m, n)`, when kept for the gradient.
    a: Option<Vec<f64>>,
    b: Mat<f64>,
    lb: Mat<f64>,
    c: Mat<f64>,
    tr_aat: f64,
    tr_knn: f64,
    yty: f64,
    bound: f64,
}

fn not_fitted() -> Error {
    Error::invalid_value("model", "is not fitted; call fit first")
}

impl SparseGaussianProcess {
    /// A model with the given kernel and Gaussian noise variance; `normalize_y` off, all
    /// cores ([`Par::Rayon(0)`](Par::Rayon)).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `noise_variance` unless it is positive and finite.
    pub fn new(kernel: Kernel, noise_variance: f64) -> Result<Self> {
        check_positive("noise_variance", noise_variance)?;
        Ok(Self {
            kernel,
            noise_variance,
            normalize_y: false,
            par: Par::Rayon(0),
            data: None,
            post: None,
        })
    }

    /// Whether to subtract each target column's mean and divide by its standard deviation
    /// before fitting (as scikit-learn's `normalize_y`; a zero deviation counts as 1).
    /// Predictions are mapped back; the bound is that of the normalised targets.
    /// Takes effect at the next [`fit`](Self::fit).
    #[must_use]
    pub fn with_normalize_y(mut self, normalize_y: bool) -> Self {
        self.normalize_y = normalize_y;
        self
    }

    /// Parallelism for fitting, the objective and predictions. Results do not depend on it.
    #[must_use]
    pub fn with_par(mut self, par: Par) -> Self {
        self.par = par;
        self
    }

    /// The kernel (with the current hyperparameters).
    #[must_use]
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The Gaussian noise variance σ² (in normalised units when `normalize_y` is on).
    #[must_use]
    pub fn noise_variance(&self) -> f64 {
        self.noise_variance
    }

    /// Whether targets are normalised.
    #[must_use]
    pub fn normalize_y(&self) -> bool {
        self.normalize_y
    }

    /// The inducing inputs `Z` `(m, d)`, once fitted.
    #[must_use]
    pub fn inducing_points(&self) -> Option<ArrayView2<'_, f64>> {
        self.post.as_ref().map(|p| p.z.view())
    }

    /// The diagonal jitter added to `K_mm` in the cached posterior, once fitted.
    #[must_use]
    pub fn jitter(&self) -> Option<f64> {
        self.post.as_ref().map(|p| p.jitter)
    }

    /// Number of training points (0 before fitting).
    #[must_use]
    pub fn n_observations(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.x.nrows())
    }

    /// Number of target columns (0 before fitting).
    #[must_use]
    pub fn n_outputs(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.y.ncols())
    }

    /// Current parameters in the order [`objective`](Self::objective) takes them:
    /// the kernel's log-hyperparameters, then `ln σ²`.
    #[must_use]
    pub fn params(&self) -> Vec<f64> {
        let mut p = self.kernel.theta();
        p.push(self.noise_variance.ln());
        p
    }

    /// Validates the training inputs, chooses the inducing inputs, and computes and caches
    /// the posterior. `x` is `(n, d)`, `y` is `(n, k)` (one column per output).
    ///
    /// # Errors
    /// [`Error::Shape`] naming `X` (empty, or columns not matching the kernel's ARD length
    /// scales), `y` (rows ≠ n, or no columns) or `Z` (a given `Z` that is empty or has the
    /// wrong number of columns); [`Error::NonFinite`] naming `X`, `y` or `Z`;
    /// [`Error::InvalidValue`] naming `m` for `m = 0`; [`Error::NotPositiveDefinite`] if
    /// `K_mm` stays indefinite with jitter up to `1e-2 ·` its mean diagonal;
    /// [`Error::Numerical`] if the kernel overflows. On error the model is unchanged.
    pub fn fit(
        &mut self,
        x: ArrayView2<'_, f64>,
        y: ArrayView2<'_, f64>,
        init: InducingInit,
    ) -> Result<()> {
        let (n, d) = x.dim();
        self.check_x(&x, "X")?;
        let (ny, k) = y.dim();
        if ny != n || k == 0 {
            return Err(Error::shape(
                "y",
                format_args!(
                    "expected shape ({n}, k) with k ≥ 1 (one row per row of X), got ({ny}, {k})"
                ),
            ));
        }
        check_finite("y", y.iter())?;
        let z = match init {
            InducingInit::Given(z) => {
                let (m, dz) = z.dim();
                if m == 0 || dz != d {
                    return Err(Error::shape(
                        "Z",
                        format_args!(
                            "expected a non-empty (m, {d}) array (X has {d} columns), got ({m}, {dz})"
                        ),
                    ));
                }
                check_finite("Z", z.iter())?;
                z.as_standard_layout().into_owned()
            }
            InducingInit::KMeans { m, seed, iters } => {
                check_m(m)?;
                kmeans(x, m, seed, iters, self.par)?
            }
            InducingInit::Greedy { m } => {
                check_m(m)?;
                greedy(&self.kernel, x, m, self.par)?
            }
        };
        let data = normalise(x, y, self.normalize_y);
        let post = posterior(&self.kernel, self.noise_variance, &data, z, self.par)?;
        self.data = Some(data);
        self.post = Some(post);
        Ok(())
    }

    fn check_x(&self, x: &ArrayView2<'_, f64>, name: &'static str) -> Result<()> {
        let (n, d) = x.dim();
        if n == 0 || d == 0 {
            return Err(Error::shape(
                name,
                format_args!("must be a non-empty (n, d) array, got shape ({n}, {d})"),
            ));
        }
        if let Some(kd) = self.kernel.input_dim() {
            if kd != d {
                return Err(Error::shape(
                    name,
                    format_args!(
                        "expected {kd} columns (one per ARD length scale of the kernel), got {d}"
                    ),
                ));
            }
        }
        check_finite(name, x.iter())
    }

    /// The collapsed variational lower bound `F` on the log marginal likelihood at the
    /// fitted hyperparameters (summed over output columns; of the normalised targets when
    /// `normalize_y` is on).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `model` before [`fit`](Self::fit).
    pub fn log_marginal_likelihood_bound(&self) -> Result<f64> {
        self.post.as_ref().map(|p| p.bound).ok_or_else(not_fitted)
    }

    /// The negative bound and its analytic gradient at `params` = the kernel's
    /// log-hyperparameters followed by `ln σ²`, on the fitted data and inducing inputs
    /// (which stay fixed). The model is not changed. This is what
    /// [`optimize`](Self::optimize) minimises.
    ///
    /// The gradient differentiates `F` through `K_mm`, `K_mn`, `diag K_nn` and σ², contracting
    /// each with the kernel's analytic derivatives; the jitter on `K_mm` (a fixed multiple of
    /// its mean diagonal) is differentiated too. Cost: two passes of `O(n m²)` flops over
    /// `K_mn` plus `4 n m` kernel-gradient entries, memory `O(n m)` for `A`.
    ///
    /// ```
    /// use intent_engine::gp::{InducingInit, Kernel, SparseGaussianProcess};
    /// use ndarray::Array2;
    ///
    /// let x = Array2::from_shape_fn((50, 1), |(i, _)| i as f64 / 10.0);
    /// let y = x.mapv(f64::cos);
    /// let mut gp = SparseGaussianProcess::new(Kernel::squared_exponential(1.0, &[1.0])?, 0.01)?;
    /// gp.fit(x.view(), y.view(), InducingInit::Greedy { m: 10 })?;
    /// let (value, grad) = gp.objective(&gp.params())?;
    /// assert!((value + gp.log_marginal_likelihood_bound()?).abs() < 1e-9);
    /// assert_eq!(grad.len(), 3); // ln variance, ln length scale, ln σ²
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `model` before fitting; [`Error::Shape`] naming
    /// `params` for a wrong length; [`Error::NonFinite`] / [`Error::InvalidValue`] naming
    /// `theta` or `params` for non-finite or out-of-range values; the numerical errors of
    /// [`fit`](Self::fit).
    pub fn objective(&self, params: &[f64]) -> Result<(f64, Vec<f64>)> {
        let data = self.data.as_ref().ok_or_else(not_fitted)?;
        let post = self.post.as_ref().ok_or_else(not_fitted)?;
        let p = self.kernel.n_params();
        if params.len() != p + 1 {
            return Err(Error::shape(
                "params",
                format_args!(
                    "expected {} values ({p} kernel log-hyperparameters and ln σ²), got {}",
                    p + 1,
                    params.len()
                ),
            ));
        }
        check_finite("params", params)?;
        let kernel = self.kernel.with_theta(&params[..p])?;
        let log_s2 = params[p];
        if log_s2.abs() > 700.0 {
            return Err(Error::invalid_value(
                "params",
                format_args!("ln σ² = {log_s2} is outside [-700, 700]"),
            ));
        }
        let s2 = log_s2.exp();
        let fw = forward(&kernel, s2, data, post.z.view(), true, self.par)?;
        let grad = gradient(&kernel, s2, data, post.z.view(), &fw, self.par)?;
        Ok((-fw.bound, grad.into_iter().map(|g| -g).collect()))
    }

    /// Maximises the bound over the kernel's log-hyperparameters and `ln σ²` with
    /// [`minimize`] (bounded L-BFGS, restarts per `settings`), keeping the inducing inputs
    /// fixed, then refits the posterior at the best parameters found.
    ///
    /// `bounds` are `(lower, upper)` in log space, one pair per parameter in
    /// [`params`](Self::params) order; `None` uses `[ln 1e-5, ln 1e5]` for kernel parameters
    /// and `[ln 1e-8, ln 1e3]` for the noise variance.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `model` before fitting; the errors of [`minimize`]
    /// (bounds, no finite optimum) and of [`fit`](Self::fit) for the refit. On error the
    /// model is unchanged.
    pub fn optimize(
        &mut self,
        settings: &OptimizeSettings,
        bounds: Option<(&[f64], &[f64])>,
    ) -> Result<OptimizeResult> {
        let data = self.data.as_ref().ok_or_else(not_fitted)?;
        let post = self.post.as_ref().ok_or_else(not_fitted)?;
        let p = self.kernel.n_params();
        let (lo, hi) = match bounds {
            Some((lo, hi)) => (lo.to_vec(), hi.to_vec()),
            None => {
                let mut lo = vec![DEFAULT_KERNEL_BOUNDS.0; p];
                let mut hi = vec![DEFAULT_KERNEL_BOUNDS.1; p];
                lo.push(DEFAULT_NOISE_BOUNDS.0);
                hi.push(DEFAULT_NOISE_BOUNDS.1);
                (lo, hi)
            }
        };
        let x0 = self.params();
        let mut f = |q: &[f64]| self.objective(q);
        let res = minimize(&mut f, &x0, &lo, &hi, settings)?;
        let kernel = self.kernel.with_theta(&res.params[..p])?;
        let s2 = res.params[p].exp();
        check_positive("noise_variance", s2)?;
        let new_post = posterior(&kernel, s2, data, post.z.clone(), self.par)?;
        self.kernel = kernel;
        self.noise_variance = s2;
        self.post = Some(new_post);
        Ok(res)
    }

    /// Predictive means at `x` `(n*, d)`, shape `(n*, k)`; `O(m)` per point after `k_m*`.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `model` before fitting; [`Error::Shape`] /
    /// [`Error::NonFinite`] naming `X`.
    pub fn predict_mean(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        Ok(self.predict_impl(x, false, false)?.0)
    }

    /// Predictive means and variances at `x` `(n*, d)`, each `(n*, k)`. The variance is that
    /// of the latent function, plus σ² when `include_noise`; negative round-off is clamped
    /// to zero and counted. `O(m²)` per point, computed in blocks with faer.
    ///
    /// # Errors
    /// As [`predict_mean`](Self::predict_mean).
    pub fn predict(&self, x: ArrayView2<'_, f64>, include_noise: bool) -> Result<SparsePrediction> {
        let (mean, var, n_clamped) = self.predict_impl(x, true, include_noise)?;
        Ok(SparsePrediction {
            mean,
            var: var.unwrap_or_default(),
            n_clamped,
        })
    }

    fn predict_impl(
        &self,
        x: ArrayView2<'_, f64>,
        want_var: bool,
        include_noise: bool,
    ) -> Result<(Array2<f64>, Option<Array2<f64>>, usize)> {
        let data = self.data.as_ref().ok_or_else(not_fitted)?;
        let post = self.post.as_ref().ok_or_else(not_fitted)?;
        self.check_x(&x, "X")?;
        let d = post.z.ncols();
        if x.ncols() != d {
            return Err(Error::shape(
                "X",
                format_args!(
                    "expected {d} columns (as the training inputs), got {}",
                    x.ncols()
                ),
            ));
        }
        let ns = x.nrows();
        let m = post.z.nrows();
        let k = post.v.ncols();
        let nb = block_cols(m);
        let mut mean = vec![0.0; ns * k];
        let mut var = vec![0.0; if want_var { ns } else { 0 }];
        let mut items: Vec<(usize, &mut [f64], &mut [f64])> = {
            let vchunks: Vec<&mut [f64]> = if want_var {
                var.chunks_mut(nb).collect()
            } else {
                (0..ns.div_ceil(nb))
                    .map(|_| <&mut [f64]>::default())
                    .collect()
            };
            mean.chunks_mut(nb * k)
                .zip(vchunks)
                .enumerate()
                .map(|(b, (mc, vc))| (b * nb, mc, vc))
                .collect()
        };
        let kernel = &self.kernel;
        let z = post.z.view();
        let noise = if include_noise {
            self.noise_variance
        } else {
            0.0
        };
        let n_clamped = ordered_fold(
            self.par,
            &mut items,
            |(j0, mc, vc)| -> Result<usize> {
                let b = mc.len() / k;
                let xb = x.slice(s![*j0..*j0 + b, ..]);
                // K(X*_b, Z) row-major (b, m) is K_m*, column-major (m, b).
                let mut kms = vec![0.0; m * b];
                kernel.matrix_into(
                    xb,
                    Some(z),
                    view_mut((b, m), &mut kms)?,
                    &mut KernelWorkspace::new(),
                    Par::Seq,
                )?;
                let kref = MatRef::from_column_major_slice(&kms, m, b);
                let out = MatMut::from_row_major_slice_mut(&mut mc[..], b, k);
                matmul(
                    out,
                    Accum::Replace,
                    kref.transpose(),
                    post.v.as_ref(),
                    1.0,
                    FSEQ,
                );
                if vc.is_empty() {
                    return Ok(0);
                }
                let kss = kernel.diag(xb)?;
                let mut a = MatMut::from_column_major_slice_mut(&mut kms, m, b);
                solve_lower_triangular_in_place(post.lm.as_ref(), a.as_mut(), FSEQ);
                let q: Vec<f64> = (0..b).map(|j| sq_norm(a.as_ref().col(j))).collect();
                solve_lower_triangular_in_place(post.lb.as_ref(), a.as_mut(), FSEQ);
                let mut clamped = 0;
                for (j, o) in vc.iter_mut().enumerate() {
                    let v = kss[j] - q[j] + sq_norm(a.as_ref().col(j));
                    *o = if v < 0.0 {
                        clamped += 1;
                        0.0
                    } else {
                        v
                    } + noise;
                }
                Ok(clamped)
            },
            0usize,
            |acc, c| *acc += c,
        )?;
        let mut mean =
            Array2::from_shape_vec((ns, k), mean).map_err(|e| Error::Internal(e.to_string()))?;
        for (mut col, (&mu, &sd)) in mean
            .axis_iter_mut(Axis(1))
            .zip(data.y_mean.iter().zip(&data.y_std))
        {
            col.mapv_inplace(|v| v * sd + mu);
        }
        let var = want_var.then(|| {
            Array2::from_shape_fn((ns, k), |(i, j)| var[i] * data.y_std[j] * data.y_std[j])
        });
        Ok((mean, var, n_clamped))
    }
}

fn check_m(m: usize) -> Result<()> {
    if m == 0 {
        Err(Error::invalid_value(
            "m",
            "the number of inducing points must be at least 1",
        ))
    } else {
        Ok(())
    }
}

fn view_mut(shape: (usize, usize), buf: &mut [f64]) -> Result<ArrayViewMut2<'_, f64>> {
    ArrayViewMut2::from_shape(shape, buf).map_err(|e| Error::Internal(e.to_string()))
}

fn sq_norm(c: faer::ColRef<'_, f64>) -> f64 {
    c.iter().map(|v| v * v).sum()
}

fn normalise(x: ArrayView2<'_, f64>, y: ArrayView2<'_, f64>, normalize: bool) -> Data {
    let (n, k) = y.dim();
    let mut y = y.as_standard_layout().into_owned();
    let mut y_mean = vec![0.0; k];
    let mut y_std = vec![1.0; k];
    if normalize {
        for (j, mut col) in y.axis_iter_mut(Axis(1)).enumerate() {
            let mu = col.sum() / n as f64;
            let var = col.iter().map(|v| (v - mu) * (v - mu)).sum::<f64>() / n as f64;
            let sd = var.sqrt();
            // scikit-learn's `_handle_zeros_in_scale`: a constant column keeps its scale.
            let sd = if sd < 10.0 * f64::EPSILON || !sd.is_finite() {
                1.0
            } else {
                sd
            };
            col.mapv_inplace(|v| (v - mu) / sd);
            y_mean[j] = mu;
            y_std[j] = sd;
        }
    }
    Data {
        x: x.as_standard_layout().into_owned(),
        y,
        y_mean,
        y_std,
    }
}

/// Runs `map` over `items` (in parallel under `par`, a wave of `2 × threads` at a time) and
/// folds the results into `init` in item order, so the result is thread-count independent.
fn ordered_fold<I: Send, T: Send, A>(
    par: Par,
    items: &mut [I],
    map: impl Fn(&mut I) -> Result<T> + Sync,
    init: A,
    mut fold: impl FnMut(&mut A, T),
) -> Result<A> {
    let mut acc = init;
    let wave = (2 * par.num_threads()).max(1);
    for chunk in items.chunks_mut(wave) {
        for r in map_items(par, chunk, &map) {
            fold(&mut acc, r?);
        }
    }
    Ok(acc)
}

/// `map` over `items`, in parallel under `par`; results in item order.
fn map_items<I: Send, T: Send>(
    par: Par,
    items: &mut [I],
    map: &(impl Fn(&mut I) -> T + Sync),
) -> Vec<T> {
    #[cfg(feature = "rayon")]
    if par.is_parallel() && items.len() > 1 {
        use rayon::prelude::*;
        return par.install(|| items.par_iter_mut().map(map).collect());
    }
    let _ = par;
    items.iter_mut().map(map).collect()
}

/// Splits `data` into chunks of `chunk` and runs `f(offset, chunk)` on each, in parallel
/// under `par`.
fn for_chunks<T: Send>(par: Par, data: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let mut items: Vec<(usize, &mut [T])> = data
        .chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, c)| (i * chunk, c))
        .collect();
    map_items(par, &mut items, &|(o, c): &mut (usize, &mut [T])| f(*o, c));
}

/// `chol(K_mm + jitter·I)` with jitter `1e-8 … 1e-2 ×` mean diag K_mm, smallest that works.
fn chol_jitter(kmm: &Array2<f64>) -> Result<(Mat<f64>, f64, Option<f64>)> {
    let m = kmm.nrows();
    if let Some(index) = kmm.iter().position(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "K(Z, Z)",
            detail: format!(
                "kernel value at flat index {index} is not finite (hyperparameters overflow?)"
            ),
        });
    }
    let mean_diag = kmm.diag().sum() / m as f64;
    // A kernel with zero variance at Z (e.g. linear at the origin) gets an absolute jitter.
    let (scale, tracks) = if mean_diag > 0.0 {
        (mean_diag, true)
    } else {
        (1.0, false)
    };
    let mut last = (0, 0.0);
    for rel in JITTER_REL {
        let jitter = rel * scale;
        let a = Mat::from_fn(m, m, |i, j| kmm[[i, j]] + if i == j { jitter } else { 0.0 });
        match a.llt(Side::Lower) {
            Ok(llt) => return Ok((llt.L().to_owned(), jitter, tracks.then_some(rel))),
            Err(faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }) => {
                last = (index, jitter);
            }
        }
    }
    Err(Error::NotPositiveDefinite {
        what: "K(Z, Z) + jitter·I",
        pivot: last.0,
        jitter: last.1,
    })
}

/// The bound at (`kernel`, `s2`), keeping `A` if `keep_a` (for the gradient).
fn forward(
    kernel: &Kernel,
    s2: f64,
    data: &Data,
    z: ArrayView2<'_, f64>,
    keep_a: bool,
    par: Par,
) -> Result<Forward> {
    let (n, _) = data.x.dim();
    let k = data.y.ncols();
    let m = z.nrows();
    let sigma = s2.sqrt();
    let kmm = kernel.matrix(z, None, par)?;
    let (lm, jitter, jitter_rel) = chol_jitter(&kmm)?;
    let nb = block_cols(m);
    let mut a_store = if keep_a { vec![0.0; m * n] } else { Vec::new() };
    let mut items: Vec<(usize, usize, Option<&mut [f64]>)> = if keep_a {
        a_store
            .chunks_mut(m * nb)
            .enumerate()
            .map(|(b, c)| (b * nb, c.len() / m, Some(c)))
            .collect()
    } else {
        (0..n.div_ceil(nb))
            .map(|b| (b * nb, nb.min(n - b * nb), None))
            .collect()
    };
    let y = data
        .y
        .as_slice()
        .ok_or_else(|| Error::Internal("y layout".into()))?;
    let lm_ref = lm.as_ref();
    let (aat, ay) = ordered_fold(
        par,
        &mut items,
        |(j0, b, slot)| -> Result<(Mat<f64>, Mat<f64>)> {
            let (j0, b) = (*j0, *b);
            let mut local = Vec::new();
            let buf: &mut [f64] = match slot {
                Some(s) => &mut s[..],
                None => {
                    local.resize(m * b, 0.0);
                    &mut local[..]
                }
            };
            a_block(
                kernel,
                data.x.slice(s![j0..j0 + b, ..]),
                z,
                lm_ref,
                sigma,
                buf,
            )?;
            let a = MatRef::from_column_major_slice(buf, m, b);
            let mut aat = Mat::zeros(m, m);
            tri_matmul::matmul(
                aat.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Replace,
                a,
                BlockStructure::Rectangular,
                a.transpose(),
                BlockStructure::Rectangular,
                1.0,
                FSEQ,
            );
            let yb = MatRef::from_row_major_slice(&y[j0 * k..(j0 + b) * k], b, k);
            let mut ay = Mat::zeros(m, k);
            matmul(ay.as_mut(), Accum::Replace, a, yb, 1.0, FSEQ);
            Ok((aat, ay))
        },
        (Mat::<f64>::zeros(m, m), Mat::<f64>::zeros(m, k)),
        |acc, part| {
            acc.0 += part.0;
            acc.1 += part.1;
        },
    )?;
    drop(items);
    // B = I + AAᵀ (only the lower triangle was accumulated).
    let b = Mat::from_fn(m, m, |i, j| {
        let v = if i >= j { aat[(i, j)] } else { aat[(j, i)] };
        v + if i == j { 1.0 } else { 0.0 }
    });
    let lb = match b.llt(Side::Lower) {
        Ok(l) => l.L().to_owned(),
        Err(faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index }) => {
            return Err(Error::NotPositiveDefinite {
                what: "B = I + AAᵀ",
                pivot: index,
                jitter: 0.0,
            })
        }
    };
    let mut c = ay;
    solve_lower_triangular_in_place(lb.as_ref(), c.as_mut(), FSEQ);
    c *= faer::Scale(1.0 / sigma);
    let tr_aat: f64 = (0..m).map(|i| aat[(i, i)]).sum();
    let tr_knn: f64 = kernel.diag(data.x.view())?.sum();
    let yty: f64 = y.iter().map(|v| v * v).sum();
    let c2: f64 = (0..k).map(|j| sq_norm(c.as_ref().col(j))).sum();
    let log_lb: f64 = (0..m).map(|i| lb[(i, i)].ln()).sum();
    let (nf, kf) = (n as f64, k as f64);
    let bound = kf
        * (-0.5 * nf * (2.0 * std::f64::consts::PI).ln()
            - log_lb
            - 0.5 * nf * s2.ln()
            - tr_knn / (2.0 * s2)
            + 0.5 * tr_aat)
        + (-yty / (2.0 * s2) + 0.5 * c2);
    if !bound.is_finite() {
        return Err(Error::Numerical {
            what: "sparse GP bound",
            detail: format!("the bound evaluated to {bound}"),
        });
    }
    Ok(Forward {
        lm,
        jitter,
        jitter_rel,
        a: keep_a.then_some(a_store),
        b,
        lb,
        c,
        tr_aat,
        tr_knn,
        yty,
        bound,
    })
}

/// `buf` (column-major `(m, b)`) ← `L_m⁻¹ K(Z, X_b) / σ`.
fn a_block(
    kernel: &Kernel,
    xb: ArrayView2<'_, f64>,
    z: ArrayView2<'_, f64>,
    lm: MatRef<'_, f64>,
    sigma: f64,
    buf: &mut [f64],
) -> Result<()> {
    let m = z.nrows();
    let b = xb.nrows();
    // K(X_b, Z) row-major (b, m) is K(Z, X_b) column-major (m, b).
    kernel.matrix_into(
        xb,
        Some(z),
        view_mut((b, m), buf)?,
        &mut KernelWorkspace::new(),
        Par::Seq,
    )?;
    let mut a = MatMut::from_column_major_slice_mut(buf, m, b);
    solve_lower_triangular_in_place(lm, a.as_mut(), FSEQ);
    a *= faer::Scale(1.0 / sigma);
    Ok(())
}

/// Gradient of the bound with respect to (kernel θ, ln σ²); the formulas are in the module
/// docs. The `m × m` factors are formed in the whitened basis and mapped back with `L_m⁻ᵀ`.
fn gradient(
    kernel: &Kernel,
    s2: f64,
    data: &Data,
    z: ArrayView2<'_, f64>,
    fw: &Forward,
    par: Par,
) -> Result<Vec<f64>> {
    let (n, _) = data.x.dim();
    let k = data.y.ncols();
    let m = z.nrows();
    let p = kernel.n_params();
    let sigma = s2.sqrt();
    let kf = k as f64;
    let a_all =
        fw.a.as_ref()
            .ok_or_else(|| Error::Internal("gradient needs A".into()))?;

    // ĉ = L_B⁻ᵀ c;  B⁻¹ = L_B⁻ᵀ L_B⁻¹.
    let mut chat = fw.c.clone();
    solve_upper_triangular_in_place(fw.lb.as_ref().transpose(), chat.as_mut(), FSEQ);
    let mut lbinv = Mat::<f64>::identity(m, m);
    solve_lower_triangular_in_place(fw.lb.as_ref(), lbinv.as_mut(), FSEQ);
    let mut binv = Mat::<f64>::zeros(m, m);
    matmul(
        binv.as_mut(),
        Accum::Replace,
        lbinv.as_ref().transpose(),
        lbinv.as_ref(),
        1.0,
        FSEQ,
    );
    let tr_binv: f64 = (0..m).map(|i| binv[(i, i)]).sum();
    let mut cct = Mat::<f64>::zeros(m, m);
    matmul(
        cct.as_mut(),
        Accum::Replace,
        chat.as_ref(),
        chat.as_ref().transpose(),
        1.0,
        FSEQ,
    );
    let chat2: f64 = (0..m).map(|i| cct[(i, i)]).sum();
    let c2: f64 = (0..k).map(|j| sq_norm(fw.c.as_ref().col(j))).sum();

    // With W = (σ²K_mm + K_mn K_nm)⁻¹ and P = K_mm + jitter·I (derivation in the docs):
    //   ∂F/∂P   = L_m⁻ᵀ [k/2 (2I − B − B⁻¹) − ½ ĉĉᵀ] L_m⁻¹
    //   ∂F/∂K_mn = L_m⁻ᵀ [(k(I − B⁻¹) − ĉĉᵀ) A / σ + ĉ Yᵀ / σ²]
    //   ∂F/∂k_ii = −k / (2σ²)
    // L_m⁻ᵀ is applied to the m × m factors once, so each block of ∂F/∂K_mn is one product
    // `[L_m⁻ᵀ E, L_m⁻ᵀ ĉ] · [A / σ; Yᵀ / σ²]` instead of a product and a triangular solve.
    let lmt = fw.lm.as_ref().transpose();
    let mut e = Mat::from_fn(m, m, |i, j| {
        kf * (if i == j { 1.0 } else { 0.0 } - binv[(i, j)]) - cct[(i, j)]
    });
    solve_upper_triangular_in_place(lmt, e.as_mut(), FSEQ);
    let mut v = chat.clone();
    solve_upper_triangular_in_place(lmt, v.as_mut(), FSEQ);
    let mut dp = Mat::from_fn(m, m, |i, j| {
        0.5 * kf * (if i == j { 2.0 } else { 0.0 } - fw.b[(i, j)] - binv[(i, j)])
            - 0.5 * cct[(i, j)]
    });
    solve_upper_triangular_in_place(lmt, dp.as_mut(), FSEQ);
    let mut dp = dp.transpose().to_owned();
    solve_upper_triangular_in_place(lmt, dp.as_mut(), FSEQ);
    let tr_dp: f64 = (0..m).map(|i| dp[(i, i)]).sum();
    // The jitter is rel · mean diag K_mm: its derivative puts rel·tr(∂F/∂P)/m on the diagonal.
    let jit_w = fw.jitter_rel.map_or(0.0, |rel| rel * tr_dp / m as f64);
    let w_mm = Array2::from_shape_fn((m, m), |(i, j)| {
        0.5 * (dp[(i, j)] + dp[(j, i)]) + if i == j { jit_w } else { 0.0 }
    });
    let mut g = vec![0.0; p];
    kernel.gradient_dot(z, w_mm.view(), &mut g, &mut KernelWorkspace::new(), par)?;

    let nb = block_cols(m);
    let y = data
        .y
        .as_slice()
        .ok_or_else(|| Error::Internal("y layout".into()))?;
    let mut items: Vec<usize> = (0..n.div_ceil(nb)).map(|b| b * nb).collect();
    let diag_w = -kf / (2.0 * s2);
    let g = ordered_fold(
        par,
        &mut items,
        |j0| -> Result<Vec<f64>> {
            let j0 = *j0;
            let b = nb.min(n - j0);
            let a = MatRef::from_column_major_slice(&a_all[j0 * m..(j0 + b) * m], m, b);
            let yb = MatRef::from_row_major_slice(&y[j0 * k..(j0 + b) * k], b, k);
            let mut gk = Mat::<f64>::zeros(m, b);
            matmul(
                gk.as_mut(),
                Accum::Replace,
                e.as_ref(),
                a,
                1.0 / sigma,
                FSEQ,
            );
            matmul(
                gk.as_mut(),
                Accum::Add,
                v.as_ref(),
                yb.transpose(),
                1.0 / s2,
                FSEQ,
            );
            // Contract with ∂K/∂θ on the stacked inputs [Z; X_b]: weights only in the
            // Z–X_b block (for K_mn) and on the X_b diagonal (for diag K_nn).
            let xb = data.x.slice(s![j0..j0 + b, ..]);
            let stacked = ndarray::concatenate(Axis(0), &[z, xb])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let mut w = Array2::<f64>::zeros((m + b, m + b));
            for i in 0..m {
                let mut row = w.slice_mut(s![i, m..]);
                for (j, o) in row.iter_mut().enumerate() {
                    *o = gk[(i, j)];
                }
            }
            for j in 0..b {
                w[[m + j, m + j]] = diag_w;
            }
            let mut out = vec![0.0; p];
            kernel.gradient_dot(
                stacked.view(),
                w.view(),
                &mut out,
                &mut KernelWorkspace::new(),
                Par::Seq,
            )?;
            Ok(out)
        },
        g,
        |acc, part| acc.iter_mut().zip(part).for_each(|(a, b)| *a += b),
    )?;

    let (nf, mf) = (n as f64, m as f64);
    let d_log_s2 = -0.5 * (kf * tr_binv + chat2 + c2 + kf * (nf - mf) + kf * fw.tr_aat)
        + (kf * fw.tr_knn + fw.yty) / (2.0 * s2);
    let mut out = g;
    out.push(d_log_s2);
    Ok(out)
}

/// Fits the posterior for (`kernel`, `s2`) with inducing inputs `z`.
fn posterior(kernel: &Kernel, s2: f64, data: &Data, z: Array2<f64>, par: Par) -> Result<Posterior> {
    let fw = forward(kernel, s2, data, z.view(), false, par)?;
    // v = L_m⁻ᵀ L_B⁻ᵀ c.
    let mut v = fw.c;
    solve_upper_triangular_in_place(fw.lb.as_ref().transpose(), v.as_mut(), FSEQ);
    solve_upper_triangular_in_place(fw.lm.as_ref().transpose(), v.as_mut(), FSEQ);
    Ok(Posterior {
        z,
        lm: fw.lm,
        lb: fw.lb,
        v,
        jitter: fw.jitter,
        bound: fw.bound,
    })
}

/// Rows of points per parallel chunk in the inducing-point selection.
const SELECT_CHUNK: usize = 1024;

fn sqdist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Nearest centre (and its squared distance) for each point of a chunk; `ct` holds the
/// centres transposed (`d × m`), so the distances to all centres are `d` vectorised passes.
/// Plain multiplies and adds (no FMA): the same bits at every SIMD level.
struct Assign<'a> {
    xs: &'a [f64],
    d: usize,
    ct: &'a [f64],
    out: &'a mut [(usize, f64)],
    buf: &'a mut [f64],
}

impl SimdTask for Assign<'_> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(self) {
        let Assign {
            xs,
            d,
            ct,
            out,
            buf,
        } = self;
        let m = buf.len();
        for (q, a) in out.iter_mut().enumerate() {
            buf.iter_mut().for_each(|b| *b = 0.0);
            for (t, &xv) in xs[q * d..(q + 1) * d].iter().enumerate() {
                for (b, &c) in buf.iter_mut().zip(&ct[t * m..(t + 1) * m]) {
                    let u = xv - c;
                    *b += u * u;
                }
            }
            let mut best = (0, f64::INFINITY);
            for (ci, &dd) in buf.iter().enumerate() {
                if dd < best.1 {
                    best = (ci, dd);
                }
            }
            *a = best;
        }
    }
}

/// k-means++ seeding and Lloyd iterations; see [`InducingInit::KMeans`].
fn kmeans(
    x: ArrayView2<'_, f64>,
    m: usize,
    seed: u64,
    iters: usize,
    par: Par,
) -> Result<Array2<f64>> {
    let (n, d) = x.dim();
    let m = m.min(n);
    let xs: Vec<f64> = x.iter().copied().collect(); // row-major
    let row = |i: usize| &xs[i * d..(i + 1) * d];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = rng.random_range(0..n);
    let mut centers: Vec<f64> = row(first).to_vec();
    let mut d2 = vec![0.0; n];
    for_chunks(par, &mut d2, SELECT_CHUNK, |o, c| {
        for (t, v) in c.iter_mut().enumerate() {
            *v = sqdist(row(o + t), &centers[..d]);
        }
    });
    while centers.len() < m * d {
        // Sequential sums in index order: the draw is the same for any thread count.
        let total: f64 = d2.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            break; // every point coincides with a centre
        }
        let r = rng.random::<f64>() * total;
        let mut acc = 0.0;
        let mut pick = 0;
        for (i, &w) in d2.iter().enumerate() {
            if w > 0.0 {
                acc += w;
                pick = i;
                if acc > r {
                    break;
                }
            }
        }
        let c0 = centers.len();
        centers.extend_from_slice(row(pick));
        let cnew = &centers[c0..];
        for_chunks(par, &mut d2, SELECT_CHUNK, |o, c| {
            for (t, v) in c.iter_mut().enumerate() {
                *v = v.min(sqdist(row(o + t), cnew));
            }
        });
    }
    let m = centers.len() / d;
    // Lloyd iterations: (label, squared distance) per point.
    let mut assign = vec![(usize::MAX, 0.0f64); n];
    let mut ct = vec![0.0; d * m];
    for it in 0..iters {
        let prev: Vec<usize> = assign.iter().map(|a| a.0).collect();
        for (c, cr) in centers.chunks_exact(d).enumerate() {
            for (t, &v) in cr.iter().enumerate() {
                ct[t * m + c] = v;
            }
        }
        let ct = &ct;
        let xs = &xs;
        for_chunks(par, &mut assign, SELECT_CHUNK, |o, out| {
            let mut buf = vec![0.0; m];
            dispatch(Assign {
                xs: &xs[o * d..],
                d,
                ct,
                out,
                buf: &mut buf,
            });
        });
        if it > 0 && assign.iter().zip(&prev).all(|(a, p)| a.0 == *p) {
            break;
        }
        let mut sums = vec![0.0; m * d];
        let mut counts = vec![0usize; m];
        for (i, a) in assign.iter().enumerate() {
            counts[a.0] += 1;
            sums[a.0 * d..(a.0 + 1) * d]
                .iter_mut()
                .zip(row(i))
                .for_each(|(s, v)| *s += v);
        }
        let mut used = vec![false; n];
        for c in 0..m {
            if counts[c] > 0 {
                let inv = 1.0 / counts[c] as f64;
                for t in 0..d {
                    centers[c * d + t] = sums[c * d + t] * inv;
                }
            } else {
                // An empty cluster moves to the point farthest from its centre.
                let mut far = None;
                for (i, a) in assign.iter().enumerate() {
                    if !used[i] && far.is_none_or(|(_, fd)| a.1 > fd) {
                        far = Some((i, a.1));
                    }
                }
                if let Some((i, _)) = far {
                    used[i] = true;
                    centers[c * d..(c + 1) * d].copy_from_slice(row(i));
                }
            }
        }
    }
    Array2::from_shape_vec((m, d), centers).map_err(|e| Error::Internal(e.to_string()))
}

/// Greedy conditional-variance selection (pivoted Cholesky); see [`InducingInit::Greedy`].
fn greedy(kernel: &Kernel, x: ArrayView2<'_, f64>, m: usize, par: Par) -> Result<Array2<f64>> {
    let (n, d) = x.dim();
    let m = m.min(n);
    let diag0 = kernel.diag(x)?;
    if diag0.iter().any(|v| !v.is_finite()) {
        return Err(Error::Numerical {
            what: "greedy inducing-point selection",
            detail: "the kernel diagonal is not finite (hyperparameters overflow?)".into(),
        });
    }
    let maxd = diag0.iter().fold(0.0f64, |a, &b| a.max(b));
    let tol = 1e-10 * maxd;
    let mut resid = diag0.to_vec();
    // Row-major (n, m): row i holds the Cholesky row of point i.
    let mut l = vec![0.0; n * m];
    let mut chosen: Vec<usize> = Vec::with_capacity(m);
    let mut selected = vec![false; n];
    let mut ws = KernelWorkspace::new();
    let mut kcol = Array2::<f64>::zeros((n, 1));
    for j in 0..m {
        let mut best: Option<(usize, f64)> = None;
        for (i, &r) in resid.iter().enumerate() {
            if !selected[i] && best.is_none_or(|(_, br)| r > br) {
                best = Some((i, r));
            }
        }
        let Some((star, r)) = best else { break };
        if j > 0 && r <= tol {
            break;
        }
        chosen.push(star);
        selected[star] = true;
        if r <= 0.0 {
            break; // zero variance everywhere: one point is all there is to choose
        }
        kernel.matrix_into(
            x,
            Some(x.slice(s![star..=star, ..])),
            kcol.view_mut(),
            &mut ws,
            par,
        )?;
        // The cross-kernel omits a white kernel's diagonal; K(X, X) has it at `star`.
        kcol[[star, 0]] = diag0[star];
        let piv = r.sqrt();
        let lstar: Vec<f64> = l[star * m..star * m + j].to_vec();
        let kc = kcol
            .as_slice()
            .ok_or_else(|| Error::Internal("kernel column layout".into()))?;
        let mut items: Vec<(usize, &mut [f64], &mut [f64])> = l
            .chunks_mut(SELECT_CHUNK * m)
            .zip(resid.chunks_mut(SELECT_CHUNK))
            .enumerate()
            .map(|(b, (lc, rc))| (b * SELECT_CHUNK, lc, rc))
            .collect();
        let update = |(o, lc, rc): &mut (usize, &mut [f64], &mut [f64])| {
            let rows = rc.len();
            // dots = L[chunk, :j] · L[star, :j] (faer's gemv, runtime SIMD).
            let mut dots = Mat::<f64>::zeros(rows, 1);
            matmul(
                dots.as_mut(),
                Accum::Replace,
                MatRef::from_row_major_slice_with_stride(&lc[..], rows, j, m),
                MatRef::from_column_major_slice(&lstar, j, 1),
                1.0,
                FSEQ,
            );
            for (t, (lrow, rv)) in lc.chunks_exact_mut(m).zip(rc.iter_mut()).enumerate() {
                let v = (kc[*o + t] - dots[(t, 0)]) / piv;
                lrow[j] = v;
                *rv = (*rv - v * v).max(0.0);
            }
        };
        map_items(par, &mut items, &update);
        resid[star] = 0.0;
    }
    let mut z = Array2::zeros((chosen.len(), d));
    for (r, &i) in chosen.iter().enumerate() {
        z.row_mut(r).assign(&x.row(i));
    }
    Ok(z)
}

#[cfg(test)]
mod tests {
    //! Dense closed-form references (plain loops, no faer), the exact GP at `Z = X`, the
    //! analytic gradient against central differences, optimisation, determinism and bad
    //! input. Tolerances are stated per test and scale with the problem size.

    use super::*;
    use crate::gp::MaternNu;
    use ndarray::{array, Array1};
    use std::f64::consts::PI;

    fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| rng.random_range(-2.0..2.0))
    }

    /// Smooth targets with noise, `k` columns.
    fn targets(x: &Array2<f64>, k: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((x.nrows(), k), |(i, j)| {
            let r = x.row(i);
            (r[0] * (1.0 + j as f64)).sin()
                + 0.5 * r.iter().sum::<f64>().cos()
                + 0.1 * rng.random_range(-1.0..1.0)
        })
    }

    // ---- dense reference linear algebra (textbook loops) ----

    fn chol(a: &Array2<f64>) -> Array2<f64> {
        let n = a.nrows();
        let mut l = Array2::<f64>::zeros((n, n));
        for j in 0..n {
            let mut s = a[[j, j]];
            for t in 0..j {
                s -= l[[j, t]] * l[[j, t]];
            }
            assert!(s > 0.0, "reference Cholesky failed at {j}");
            l[[j, j]] = s.sqrt();
            for i in j + 1..n {
                let mut s = a[[i, j]];
                for t in 0..j {
                    s -= l[[i, t]] * l[[j, t]];
                }
                l[[i, j]] = s / l[[j, j]];
            }
        }
        l
    }

    /// `A⁻¹ B` for SPD `A`.
    fn solve_spd(a: &Array2<f64>, b: &Array2<f64>) -> Array2<f64> {
        let l = chol(a);
        let n = a.nrows();
        let mut x = b.clone();
        for c in 0..b.ncols() {
            for i in 0..n {
                let mut s = x[[i, c]];
                for t in 0..i {
                    s -= l[[i, t]] * x[[t, c]];
                }
                x[[i, c]] = s / l[[i, i]];
            }
            for i in (0..n).rev() {
                let mut s = x[[i, c]];
                for t in i + 1..n {
                    s -= l[[t, i]] * x[[t, c]];
                }
                x[[i, c]] = s / l[[i, i]];
            }
        }
        x
    }

    fn logdet_spd(a: &Array2<f64>) -> f64 {
        2.0 * chol(a).diag().iter().map(|v| v.ln()).sum::<f64>()
    }

    fn eye(n: usize) -> Array2<f64> {
        Array2::eye(n)
    }

    /// Sum over columns of log N(y | 0, C).
    fn log_normal(c: &Array2<f64>, y: &Array2<f64>) -> f64 {
        let n = y.nrows() as f64;
        let alpha = solve_spd(c, y);
        let fit: f64 = (y * &alpha).sum();
        let k = y.ncols() as f64;
        -0.5 * fit - 0.5 * k * logdet_spd(c) - 0.5 * k * n * (2.0 * PI).ln()
    }

    struct Dense {
        bound: f64,
        mean: Array2<f64>,
        var: Array1<f64>,
    }

    /// Titsias' bound and predictions from the closed forms, with `K_mm + jitter·I`.
    fn dense_sparse(
        kern: &Kernel,
        s2: f64,
        x: &Array2<f64>,
        y: &Array2<f64>,
        z: &Array2<f64>,
        jitter: f64,
        xs: &Array2<f64>,
    ) -> Dense {
        let n = x.nrows();
        let m = z.nrows();
        let kmm = kern.matrix(z.view(), None, Par::Seq).unwrap() + jitter * eye(m);
        let kmn = kern.matrix(z.view(), Some(x.view()), Par::Seq).unwrap();
        let knn = kern.diag(x.view()).unwrap();
        let qnn = kmn.t().dot(&solve_spd(&kmm, &kmn));
        let c = &qnn + s2 * eye(n);
        let k = y.ncols() as f64;
        let bound = log_normal(&c, y) - k * (knn.sum() - qnn.diag().sum()) / (2.0 * s2);
        let ksm = kern.matrix(xs.view(), Some(z.view()), Par::Seq).unwrap();
        let big = s2 * &kmm + kmn.dot(&kmn.t());
        let mean = ksm.dot(&solve_spd(&big, &kmn.dot(y)));
        let kss = kern.diag(xs.view()).unwrap();
        let q = (&ksm * &solve_spd(&kmm, &ksm.t().to_owned()).t()).sum_axis(Axis(1));
        let s = (&ksm * &solve_spd(&(&kmm + &(kmn.dot(&kmn.t()) / s2)), &ksm.t().to_owned()).t())
            .sum_axis(Axis(1));
        Dense {
            bound,
            mean,
            var: kss - q + s,
        }
    }

    /// Asserts `a() == b()` bit for bit. Kernel values agree across SIMD tiers only to a few
    /// ulp, and the kernel tests lower the process-wide tier while they run; so a mismatch is
    /// retried (after a pause) and only a mismatch that persists fails.
    fn assert_same_bits<T: PartialEq + std::fmt::Debug>(a: impl Fn() -> T, b: impl Fn() -> T) {
        let mut last = None;
        for _ in 0..5 {
            let (x, y) = (a(), b());
            if x == y {
                return;
            }
            last = Some((x, y));
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("results differ: {last:?}");
    }

    fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
        assert_eq!(a.dim(), b.dim());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    }

    fn kernels(d: usize) -> Vec<Kernel> {
        let ls: Vec<f64> = (0..d).map(|i| 0.7 + 0.4 * i as f64).collect();
        vec![
            Kernel::squared_exponential(1.3, &ls).unwrap(),
            Kernel::matern(MaternNu::FiveHalves, 0.8, &ls).unwrap() + Kernel::white(0.05).unwrap(),
            Kernel::rational_quadratic(1.1, &[0.9], 1.7).unwrap()
                * Kernel::periodic(1.0, 1.2, 3.1).unwrap()
                + Kernel::linear(0.2).unwrap(),
        ]
    }

    /// (1) Bound and predictions against the dense closed forms, for one block (n = 30,
    /// m = 7) and several blocks (n = 150, m = 12 → blocks of 64). Tolerance: 1e-12·n
    /// relative to the bound's magnitude, 1e-10·n absolute on means and variances (the
    /// references are O(1); observed differences are ~1e-14).
    #[test]
    fn matches_dense_closed_form() {
        for (n, m, k) in [(30, 7, 1), (30, 7, 2), (150, 12, 3)] {
            let x = random(n, 2, 1);
            let y = targets(&x, k, 2);
            let z = random(m, 2, 3);
            let xs = random(40, 2, 4);
            for kern in kernels(2) {
                let s2 = 0.07;
                let mut gp = SparseGaussianProcess::new(kern.clone(), s2).unwrap();
                gp.fit(x.view(), y.view(), InducingInit::Given(z.clone()))
                    .unwrap();
                let jitter = gp.jitter().unwrap();
                let r = dense_sparse(&kern, s2, &x, &y, &z, jitter, &xs);
                let f = gp.log_marginal_likelihood_bound().unwrap();
                let tol = 1e-12 * n as f64 * r.bound.abs().max(1.0);
                assert!(
                    (f - r.bound).abs() < tol,
                    "{kern}: bound {f} vs dense {} (n={n}, m={m}, k={k})",
                    r.bound
                );
                let p = gp.predict(xs.view(), false).unwrap();
                let tol = 1e-10 * n as f64;
                assert!(max_abs_diff(&p.mean, &r.mean) < tol, "{kern}: mean");
                let var_ref = Array2::from_shape_fn((40, k), |(i, _)| r.var[i].max(0.0));
                assert!(max_abs_diff(&p.var, &var_ref) < tol, "{kern}: var");
                assert_eq!(gp.predict_mean(xs.view()).unwrap(), p.mean);
                let pn = gp.predict(xs.view(), true).unwrap();
                assert!(max_abs_diff(&(&pn.var - &p.var), &Array2::from_elem((40, k), s2)) < 1e-12);
            }
        }
    }

    /// (2) With Z = X the bound is the exact log marginal likelihood and the predictions are
    /// the exact GP's, up to the jitter ε on K_mm: the bound moves by O(n ε / σ²), and the
    /// predictions by O(ε · cond / σ²). Tolerance: 10·n·ε/σ² + 1e-9·|F| on the bound,
    /// 1e-5 on means and variances.
    #[test]
    fn inducing_at_data_is_exact_gp() {
        let n = 25;
        let x = random(n, 2, 11);
        let y = targets(&x, 2, 12);
        let xs = random(30, 2, 13);
        let s2 = 0.1;
        let kern = Kernel::squared_exponential(1.5, &[0.8, 1.1]).unwrap();
        let mut gp = SparseGaussianProcess::new(kern.clone(), s2).unwrap();
        gp.fit(x.view(), y.view(), InducingInit::Given(x.clone()))
            .unwrap();
        let eps = gp.jitter().unwrap();
        let knn = kern.matrix(x.view(), None, Par::Seq).unwrap();
        let c = &knn + s2 * eye(n);
        let lml = log_normal(&c, &y);
        let f = gp.log_marginal_likelihood_bound().unwrap();
        assert!(f <= lml + 1e-9 * lml.abs(), "bound {f} above exact {lml}");
        let tol = 10.0 * n as f64 * eps / s2 + 1e-9 * lml.abs();
        assert!(
            (f - lml).abs() < tol,
            "bound {f} vs exact {lml} (tol {tol})"
        );
        let ksn = kern.matrix(xs.view(), Some(x.view()), Par::Seq).unwrap();
        let mean = ksn.dot(&solve_spd(&c, &y));
        let var = kern.diag(xs.view()).unwrap()
            - (&ksn * &solve_spd(&c, &ksn.t().to_owned()).t()).sum_axis(Axis(1));
        let p = gp.predict(xs.view(), false).unwrap();
        assert!(max_abs_diff(&p.mean, &mean) < 1e-5);
        let var = Array2::from_shape_fn((30, 2), |(i, _)| var[i]);
        assert!(max_abs_diff(&p.var, &var) < 1e-5);
    }

    /// (3) Analytic gradient against central differences (h = 1e-5; the truncation error is
    /// O(h²), round-off O(ε|F|/h)). Tolerance: 1e-6·max(1, |g|) per component.
    #[test]
    fn gradient_matches_finite_differences() {
        for (n, m, k, normalize) in [(40, 6, 1, false), (150, 9, 2, true)] {
            let x = random(n, 2, 21);
            let y = targets(&x, k, 22);
            for (ki, kern) in kernels(2).into_iter().enumerate() {
                let mut gp = SparseGaussianProcess::new(kern, 0.05)
                    .unwrap()
                    .with_normalize_y(normalize);
                gp.fit(
                    x.view(),
                    y.view(),
                    InducingInit::KMeans {
                        m,
                        seed: 3,
                        iters: 10,
                    },
                )
                .unwrap();
                // Move away from the construction values so no term is special.
                let p0: Vec<f64> = gp
                    .params()
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v + 0.1 * ((i as f64) * 1.7).sin())
                    .collect();
                let (f0, g) = gp.objective(&p0).unwrap();
                assert!(f0.is_finite());
                let h = 1e-5;
                for q in 0..p0.len() {
                    let mut pp = p0.clone();
                    pp[q] += h;
                    let fp = gp.objective(&pp).unwrap().0;
                    pp[q] -= 2.0 * h;
                    let fm = gp.objective(&pp).unwrap().0;
                    let fd = (fp - fm) / (2.0 * h);
                    assert!(
                        (g[q] - fd).abs() < 1e-6 * g[q].abs().max(1.0),
                        "kernel {ki}, n={n}, param {q}: analytic {} vs fd {fd}",
                        g[q]
                    );
                }
                // The objective at the fitted parameters is minus the cached bound.
                let (f, _) = gp.objective(&gp.params()).unwrap();
                let b = gp.log_marginal_likelihood_bound().unwrap();
                assert!((f + b).abs() < 1e-10 * b.abs().max(1.0));
            }
        }
    }

    /// (4) Optimisation increases the bound, and the refit model reports the optimum.
    #[test]
    fn optimize_increases_bound() {
        let x = random(120, 1, 31);
        let y = x.mapv(|v| (2.0 * v).sin()) + 0.05 * random(120, 1, 32);
        let kern = Kernel::squared_exponential(0.2, &[3.0]).unwrap();
        let mut gp = SparseGaussianProcess::new(kern, 0.5).unwrap();
        gp.fit(x.view(), y.view(), InducingInit::Greedy { m: 15 })
            .unwrap();
        let before = gp.log_marginal_likelihood_bound().unwrap();
        let res = gp.optimize(&OptimizeSettings::default(), None).unwrap();
        let after = gp.log_marginal_likelihood_bound().unwrap();
        assert!(after > before + 10.0, "bound {before} -> {after}");
        assert!((after + res.value).abs() < 1e-8 * after.abs().max(1.0));
        assert!(gp.noise_variance() < 0.05, "noise {}", gp.noise_variance());
        let p = gp.predict(array![[0.3]].view(), false).unwrap();
        assert!((p.mean[[0, 0]] - 0.6f64.sin()).abs() < 0.05);
        // Explicit bounds are honoured.
        let lo = [-1.0, -1.0, -3.0];
        let hi = [1.0, 1.0, -2.0];
        gp.optimize(&OptimizeSettings::default(), Some((&lo, &hi)))
            .unwrap();
        let p = gp.params();
        assert!(p
            .iter()
            .zip(lo.iter().zip(&hi))
            .all(|(v, (l, h))| *l <= *v && *v <= *h));
    }

    /// (5) Bad input is an error naming the argument, never a panic.
    #[test]
    fn bad_input_errors() {
        let kern = Kernel::squared_exponential(1.0, &[1.0, 1.0]).unwrap();
        let x = random(20, 2, 41);
        let y = targets(&x, 1, 42);
        let z = random(4, 2, 43);
        let name = |e: Error| match e {
            Error::Shape { name, .. }
            | Error::NonFinite { name, .. }
            | Error::InvalidValue { name, .. } => name,
            other => panic!("unexpected {other:?}"),
        };
        let fresh = || SparseGaussianProcess::new(kern.clone(), 0.1).unwrap();
        let given = || InducingInit::Given(z.clone());
        assert!(SparseGaussianProcess::new(kern.clone(), 0.0).is_err());
        assert!(SparseGaussianProcess::new(kern.clone(), f64::NAN).is_err());
        let mut gp = fresh();
        // Unfitted.
        assert_eq!(name(gp.predict(x.view(), false).unwrap_err()), "model");
        assert_eq!(
            name(gp.log_marginal_likelihood_bound().unwrap_err()),
            "model"
        );
        assert_eq!(name(gp.objective(&[0.0; 4]).unwrap_err()), "model");
        assert!(gp.optimize(&OptimizeSettings::default(), None).is_err());
        assert_eq!(gp.inducing_points(), None);
        assert_eq!(gp.n_observations(), 0);
        // Shapes.
        let e = gp.fit(
            Array2::zeros((0, 2)).view(),
            Array2::zeros((0, 1)).view(),
            given(),
        );
        assert_eq!(name(e.unwrap_err()), "X");
        let e = gp.fit(random(20, 3, 1).view(), y.view(), given());
        assert_eq!(name(e.unwrap_err()), "X"); // ARD kernel has 2 length scales
        let e = gp.fit(x.view(), Array2::zeros((19, 1)).view(), given());
        assert_eq!(name(e.unwrap_err()), "y");
        let e = gp.fit(x.view(), Array2::zeros((20, 0)).view(), given());
        assert_eq!(name(e.unwrap_err()), "y");
        let e = gp.fit(x.view(), y.view(), InducingInit::Given(random(4, 3, 1)));
        assert_eq!(name(e.unwrap_err()), "Z");
        let e = gp.fit(
            x.view(),
            y.view(),
            InducingInit::Given(Array2::zeros((0, 2))),
        );
        assert_eq!(name(e.unwrap_err()), "Z");
        // m = 0.
        for init in [
            InducingInit::KMeans {
                m: 0,
                seed: 0,
                iters: 5,
            },
            InducingInit::Greedy { m: 0 },
        ] {
            assert_eq!(name(gp.fit(x.view(), y.view(), init).unwrap_err()), "m");
        }
        // NaN / inf.
        let mut xb = x.clone();
        xb[[3, 1]] = f64::NAN;
        assert_eq!(name(gp.fit(xb.view(), y.view(), given()).unwrap_err()), "X");
        let mut yb = y.clone();
        yb[[5, 0]] = f64::INFINITY;
        assert_eq!(name(gp.fit(x.view(), yb.view(), given()).unwrap_err()), "y");
        let mut zb = z.clone();
        zb[[0, 0]] = f64::NAN;
        let e = gp.fit(x.view(), y.view(), InducingInit::Given(zb));
        assert_eq!(name(e.unwrap_err()), "Z");
        assert_eq!(
            gp.n_observations(),
            0,
            "failed fits leave the model unfitted"
        );
        // Fitted: prediction and objective input.
        gp.fit(x.view(), y.view(), given()).unwrap();
        assert_eq!(
            name(gp.predict(random(3, 3, 1).view(), false).unwrap_err()),
            "X"
        );
        assert_eq!(name(gp.predict_mean(xb.view()).unwrap_err()), "X");
        assert_eq!(
            name(gp.predict(Array2::zeros((0, 2)).view(), true).unwrap_err()),
            "X"
        );
        assert_eq!(name(gp.objective(&[0.0; 2]).unwrap_err()), "params");
        assert_eq!(
            name(gp.objective(&[0.0, f64::NAN, 0.0, 0.0]).unwrap_err()),
            "params"
        );
        assert!(gp.objective(&[800.0, 0.0, 0.0, 0.0]).is_err());
        assert!(gp.objective(&[0.0, 0.0, 0.0, 900.0]).is_err());
        let lo = [0.0; 3];
        assert!(gp
            .optimize(&OptimizeSettings::default(), Some((&lo, &lo)))
            .is_err());
        // A kernel that overflows is a numerical error, not a panic.
        let huge = Kernel::squared_exponential(1e300, &[1.0, 1.0]).unwrap()
            * Kernel::constant(1e300).unwrap();
        let mut g2 = SparseGaussianProcess::new(huge, 0.1).unwrap();
        let e = g2.fit(x.view(), y.view(), given()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Numerical, "{e}");
        // Not positive definite even with the largest jitter.
        let e = chol_jitter(&array![[1.0, 2.0], [2.0, 1.0]]).unwrap_err();
        assert!(
            matches!(e, Error::NotPositiveDefinite { jitter, .. } if jitter == 1e-2),
            "{e}"
        );
        // Singular (duplicate inducing points) is rescued by the jitter.
        let (_, jit, _) = chol_jitter(&Array2::from_elem((3, 3), 2.0)).unwrap();
        assert!((2e-8..=2e-2).contains(&jit));
        let zdup = Array2::from_shape_fn((5, 2), |(_, j)| j as f64);
        gp.fit(x.view(), y.view(), InducingInit::Given(zdup))
            .unwrap();
        assert!(gp.jitter().unwrap() > 0.0);
        assert!(gp
            .predict(x.view(), false)
            .unwrap()
            .var
            .iter()
            .all(|v| *v >= 0.0));
    }

    /// (6) k-means is deterministic for a seed and independent of the thread count; m is
    /// clamped to n and to the number of distinct inputs.
    #[test]
    fn kmeans_deterministic() {
        let x = random(3000, 3, 51);
        let run = |seed, par| kmeans(x.view(), 40, seed, 20, par).unwrap();
        let a = run(7, Par::Seq);
        assert_eq!(a.dim(), (40, 3));
        assert_eq!(a, run(7, Par::Seq));
        assert_eq!(a, run(7, Par::Rayon(2)));
        assert_eq!(a, run(7, Par::Rayon(3)));
        assert_ne!(a, run(8, Par::Seq));
        // Clamps.
        let small = random(5, 3, 52);
        assert_eq!(kmeans(small.view(), 9, 0, 5, Par::Seq).unwrap().nrows(), 5);
        let dup = Array2::from_shape_fn((60, 2), |(i, j)| ((i % 4) * (j + 1)) as f64);
        let z = kmeans(dup.view(), 10, 0, 5, Par::Seq).unwrap();
        assert_eq!(z.nrows(), 4);
        let kern = Kernel::squared_exponential(1.0, &[1.0]).unwrap();
        let zg = greedy(&kern, dup.view(), 10, Par::Seq).unwrap();
        assert_eq!(zg.nrows(), 4);
        // Greedy picks distinct points, deterministically.
        let zg = greedy(&kern, x.view(), 30, Par::Seq).unwrap();
        assert_same_bits(
            || greedy(&kern, x.view(), 30, Par::Seq).unwrap(),
            || greedy(&kern, x.view(), 30, Par::Rayon(3)).unwrap(),
        );
        for i in 0..30 {
            for j in 0..i {
                assert_ne!(zg.row(i), zg.row(j));
            }
        }
    }

    /// The whole pipeline gives identical bits for any thread count.
    #[test]
    fn thread_count_independent() {
        let x = random(700, 3, 61);
        let y = targets(&x, 2, 62);
        let xs = random(300, 3, 63);
        let kern = Kernel::matern(MaternNu::ThreeHalves, 1.0, &[0.9, 1.0, 1.1]).unwrap();
        let fit = |par| {
            let mut gp = SparseGaussianProcess::new(kern.clone(), 0.05)
                .unwrap()
                .with_par(par);
            gp.fit(
                x.view(),
                y.view(),
                InducingInit::KMeans {
                    m: 70,
                    seed: 1,
                    iters: 10,
                },
            )
            .unwrap();
            let p = gp.predict(xs.view(), true).unwrap();
            let o = gp.objective(&gp.params()).unwrap();
            (gp.log_marginal_likelihood_bound().unwrap(), p, o)
        };
        assert_same_bits(|| fit(Par::Seq), || fit(Par::Rayon(2)));
        assert_same_bits(|| fit(Par::Seq), || fit(Par::Rayon(3)));
    }

    /// normalize_y maps predictions back: affine targets give affine predictions.
    #[test]
    fn normalize_y_round_trip() {
        let x = random(80, 2, 71);
        let y = targets(&x, 2, 72);
        let y2 = y.mapv(|v| 10.0 * v + 5.0);
        let xs = random(20, 2, 73);
        let kern = Kernel::squared_exponential(1.0, &[1.0]).unwrap();
        let fit = |y: &Array2<f64>| {
            let mut gp = SparseGaussianProcess::new(kern.clone(), 0.05)
                .unwrap()
                .with_normalize_y(true);
            gp.fit(x.view(), y.view(), InducingInit::Greedy { m: 20 })
                .unwrap();
            gp
        };
        let (g1, g2) = (fit(&y), fit(&y2));
        let (p1, p2) = (
            g1.predict(xs.view(), true).unwrap(),
            g2.predict(xs.view(), true).unwrap(),
        );
        assert!(max_abs_diff(&(10.0 * &p1.mean + 5.0), &p2.mean) < 1e-9);
        assert!(max_abs_diff(&(100.0 * &p1.var), &p2.var) < 1e-9);
        let b1 = g1.log_marginal_likelihood_bound().unwrap();
        assert!((b1 - g2.log_marginal_likelihood_bound().unwrap()).abs() < 1e-9 * b1.abs());
        // A constant column keeps unit scale and predicts its constant.
        let yc = Array2::from_elem((80, 1), 3.0);
        let g3 = fit(&yc);
        let p3 = g3.predict_mean(xs.view()).unwrap();
        assert!(p3.iter().all(|v| (v - 3.0).abs() < 1e-12));
    }

    /// Manual timing at the target size (not a timed assertion): run with
    /// `cargo test --release --lib gp::sparse::tests::timing_n20000 -- --ignored --nocapture`.
    #[test]
    #[ignore = "manual release-mode timing"]
    fn timing_n20000() {
        use std::time::Instant;
        let (n, d, m) = (20_000, 3, 256);
        let x = random(n, d, 81);
        let y = targets(&x, 1, 82);
        let kern = Kernel::squared_exponential(1.0, &[0.8, 1.0, 1.2]).unwrap();
        for (label, init) in [
            (
                "kmeans(iters=30)",
                InducingInit::KMeans {
                    m,
                    seed: 0,
                    iters: 30,
                },
            ),
            ("greedy", InducingInit::Greedy { m }),
        ] {
            let mut gp = SparseGaussianProcess::new(kern.clone(), 0.01).unwrap();
            let t = Instant::now();
            let z = match &init {
                InducingInit::KMeans { m, seed, iters } => {
                    kmeans(x.view(), *m, *seed, *iters, Par::Rayon(0)).unwrap()
                }
                InducingInit::Greedy { m } => greedy(&kern, x.view(), *m, Par::Rayon(0)).unwrap(),
                InducingInit::Given(z) => z.clone(),
            };
            let t_init = t.elapsed();
            let t = Instant::now();
            gp.fit(x.view(), y.view(), init).unwrap();
            let t_fit = t.elapsed();
            assert_eq!(gp.inducing_points().unwrap(), z.view());
            let t = Instant::now();
            let reps = 5;
            for _ in 0..reps {
                gp.objective(&gp.params()).unwrap();
            }
            let t_obj = t.elapsed() / reps;
            let (data, post) = (gp.data.as_ref().unwrap(), gp.post.as_ref().unwrap());
            let t = Instant::now();
            let fw = forward(&kern, 0.01, data, post.z.view(), true, Par::Rayon(0)).unwrap();
            let t_fw = t.elapsed();
            let t = Instant::now();
            gradient(&kern, 0.01, data, post.z.view(), &fw, Par::Rayon(0)).unwrap();
            eprintln!(
                "  objective = forward {t_fw:.2?} + gradient {:.2?}",
                t.elapsed()
            );
            let xs = random(n, d, 83);
            let t = Instant::now();
            gp.predict(xs.view(), false).unwrap();
            let t_pred = t.elapsed();
            eprintln!(
                "n={n} d={d} m={m} {label}: init alone {t_init:.2?}, fit (init + posterior) \
                 {t_fit:.2?}, objective {t_obj:.2?}, predict {n} points (mean+var) {t_pred:.2?}, \
                 threads {}",
                Par::Rayon(0).num_threads()
            );
        }
    }

    /// Tiny problems: one training point, one inducing point.
    #[test]
    fn tiny_problems() {
        let kern = Kernel::squared_exponential(1.0, &[1.0]).unwrap();
        let mut gp = SparseGaussianProcess::new(kern.clone(), 0.1).unwrap();
        gp.fit(
            array![[0.5]].view(),
            array![[1.0]].view(),
            InducingInit::KMeans {
                m: 5,
                seed: 0,
                iters: 3,
            },
        )
        .unwrap();
        assert_eq!(gp.inducing_points().unwrap().dim(), (1, 1));
        // One point is exact: mean = k/(k + σ²) y.
        let p = gp.predict(array![[0.5]].view(), false).unwrap();
        assert!((p.mean[[0, 0]] - 1.0 / 1.1).abs() < 1e-7);
        assert!((p.var[[0, 0]] - (1.0 - 1.0 / 1.1)).abs() < 1e-7);
        assert_eq!(p.n_clamped, 0);
    }
}

/// The on-disk form of a fitted [`SparseGaussianProcess`] (format
/// `"intent_engine.SparseGaussianProcess"`, version 1): JSON with the kernel spec, the noise,
/// `normalize_y`, the training data and the inducing inputs. Loading refits with those
/// inducing inputs — deterministic, and nothing from the file is executed or trusted as a
/// factor.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SparseGpFile {
    /// Always `"intent_engine.SparseGaussianProcess"`.
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// The kernel.
    pub kernel: crate::gp::kernel::KernelSpec,
    /// σ².
    pub noise_variance: f64,
    /// Whether targets are normalised.
    pub normalize_y: bool,
    /// Training inputs, one row per observation.
    pub x: Vec<Vec<f64>>,
    /// Training targets as given, one row per observation.
    pub y: Vec<Vec<f64>>,
    /// Inducing inputs, one row per inducing point.
    pub z: Vec<Vec<f64>>,
}

const SPARSE_FORMAT: &str = "intent_engine.SparseGaussianProcess";

fn rows(a: ArrayView2<'_, f64>) -> Vec<Vec<f64>> {
    a.rows().into_iter().map(|r| r.to_vec()).collect()
}

fn from_rows(name: &'static str, r: &[Vec<f64>]) -> Result<Array2<f64>> {
    let cols = r.first().map_or(0, Vec::len);
    if r.is_empty() || cols == 0 || r.iter().any(|x| x.len() != cols) {
        return Err(Error::invalid_value(
            "json",
            format_args!("{name}: ragged or empty rows"),
        ));
    }
    Array2::from_shape_vec((r.len(), cols), r.concat())
        .map_err(|_| Error::invalid_value("json", format_args!("{name}: bad shape")))
}

impl SparseGaussianProcess {
    /// The fitted model as a [`SparseGpFile`] JSON string.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `model` if not fitted.
    pub fn to_json(&self) -> Result<String> {
        let (Some(data), Some(post)) = (self.data.as_ref(), self.post.as_ref()) else {
            return Err(Error::invalid_value(
                "model",
                "is not fitted; call fit first",
            ));
        };
        let y = Array2::from_shape_fn(data.y.dim(), |(i, j)| {
            data.y[[i, j]] * data.y_std[j] + data.y_mean[j]
        });
        let file = SparseGpFile {
            format: SPARSE_FORMAT.into(),
            version: 1,
            kernel: self.kernel.to_spec(),
            noise_variance: self.noise_variance,
            normalize_y: self.normalize_y,
            x: rows(data.x.view()),
            y: rows(y.view()),
            z: rows(post.z.view()),
        };
        serde_json::to_string(&file).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Rebuilds a fitted model from [`SparseGaussianProcess::to_json`] output.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming `json` for malformed or inconsistent files; the errors of
    /// [`SparseGaussianProcess::fit`].
    pub fn from_json(json: &str) -> Result<Self> {
        let f: SparseGpFile =
            serde_json::from_str(json).map_err(|e| Error::invalid_value("json", e))?;
        if f.format != SPARSE_FORMAT || f.version != 1 {
            return Err(Error::invalid_value(
                "json",
                format_args!("not a version-1 {SPARSE_FORMAT} file"),
            ));
        }
        let x = from_rows("x", &f.x)?;
        let y = from_rows("y", &f.y)?;
        let z = from_rows("z", &f.z)?;
        let mut gp = SparseGaussianProcess::new(Kernel::from_spec(&f.kernel)?, f.noise_variance)?
            .with_normalize_y(f.normalize_y);
        gp.fit(x.view(), y.view(), InducingInit::Given(z))?;
        Ok(gp)
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn json_round_trip_reproduces_predictions() {
        let x = Array2::from_shape_fn((60, 2), |(i, k)| ((i * 7 + k * 3) % 17) as f64 * 0.3);
        let y = Array2::from_shape_fn((60, 1), |(i, _)| (x[[i, 0]]).sin() + 2.0);
        let mut gp =
            SparseGaussianProcess::new(Kernel::squared_exponential(1.0, &[1.0]).unwrap(), 0.01)
                .unwrap()
                .with_normalize_y(true);
        gp.fit(
            x.view(),
            y.view(),
            InducingInit::KMeans {
                m: 8,
                seed: 1,
                iters: 10,
            },
        )
        .unwrap();
        let back = SparseGaussianProcess::from_json(&gp.to_json().unwrap()).unwrap();
        let (a, b) = (
            gp.predict(x.view(), false).unwrap(),
            back.predict(x.view(), false).unwrap(),
        );
        for (u, v) in a.mean.iter().zip(b.mean.iter()) {
            assert!((u - v).abs() <= 1e-10 * u.abs().max(1.0));
        }
        assert!(SparseGaussianProcess::from_json("{}").is_err());
        assert!(
            SparseGaussianProcess::new(Kernel::constant(1.0).unwrap(), 0.1)
                .unwrap()
                .to_json()
                .is_err()
        );
    }
}
