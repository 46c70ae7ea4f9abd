//! Exact GP regression on a CUDA device: RBF (squared-exponential, ARD) kernel plus Gaussian
//! noise, float64 throughout.
//!
//! ```text
//! k(x, x') = s² exp(−½ Σ_c (x_c − x'_c)² / l_c²),   K = k(X, X) + σ² I = L Lᵀ
//! log p(y) = −½ yᵀα − Σ ln L_ii − (n/2) ln 2π,      α = K⁻¹ y
//! ∂ log p / ∂θ_j = ½ Σ_ij (ααᵀ − K⁻¹)_ij ∂K_ij/∂θ_j, θ = [ln s², ln l_1 … ln l_d, ln σ²]
//! ```
//!
//! The kernel matrix is built by an NVRTC kernel, factorised by cuSOLVER (`potrf`) and solved
//! with `potrs`. The gradient is one fused pass over the lower triangle that recomputes the
//! kernel and its derivatives on the fly. The trace term `tr(K⁻¹ ∂K)` is either exact
//! ([`TraceEstimator::Exact`]: `K⁻¹` from `potri`, three times the cost of the factorisation)
//! or Hutchinson's estimator with exact solves ([`TraceEstimator::Hutchinson`]: `m` fresh
//! Rademacher probes per evaluation, `K⁻¹z` through the same Cholesky factor; the data-fit
//! term and the log marginal likelihood stay exact). Predictions: `mean = K*ᵀα`, and
//! `var = s² (+ σ²) − ‖L⁻¹K*‖²` per column through cuBLAS `trsm`, in chunks of test points.
#![allow(non_snake_case)]

use cudarc::cublas::{sys as blas, CudaBlas};
use cudarc::cusolver::{sys as sol, DnHandle};
use cudarc::driver::{
    CudaFunction, CudaSlice, DevicePtr, DevicePtrMut, LaunchConfig, PushKernelArg,
};
use ndarray::ArrayView2;

use super::{cuda_err, CudaDevice};
use crate::error::{check_finite, Error, Result};

const SRC: &str = include_str!("gp_kernels.cu");
/// Largest input dimension supported (kernels are specialised per dimension).
pub const MAX_DIM: usize = 16;
/// Most Hutchinson probe vectors per evaluation (they live in registers of the gradient kernel).
pub const MAX_PROBES: usize = 16;
/// Test points per prediction chunk (bounds the `n × chunk` cross-covariance buffer).
const PRED_CHUNK: usize = 4096;

/// Hyperparameters of the RBF-ARD kernel plus noise.
#[derive(Clone, Debug, PartialEq)]
pub struct RbfParams {
    /// Signal variance `s²` (> 0).
    pub variance: f64,
    /// One length scale per input dimension (> 0).
    pub length_scale: Vec<f64>,
    /// Noise variance `σ²` (> 0).
    pub noise_variance: f64,
}

impl RbfParams {
    /// `θ = [ln s², ln l_1 … ln l_d, ln σ²]`.
    #[must_use]
    pub fn theta(&self) -> Vec<f64> {
        let mut t = Vec::with_capacity(self.length_scale.len() + 2);
        t.push(self.variance.ln());
        t.extend(self.length_scale.iter().map(|l| l.ln()));
        t.push(self.noise_variance.ln());
        t
    }

    /// The inverse of [`RbfParams::theta`].
    ///
    /// # Errors
    /// [`Error::Shape`] for fewer than 3 values; [`Error::NonFinite`].
    pub fn from_theta(theta: &[f64]) -> Result<Self> {
        if theta.len() < 3 {
            return Err(Error::shape(
                "theta",
                format_args!(
                    "expected [ln s², ln l…, ln σ²] (≥ 3 values), got {}",
                    theta.len()
                ),
            ));
        }
        check_finite("theta", theta)?;
        let d = theta.len() - 2;
        Ok(Self {
            variance: theta[0].exp(),
            length_scale: theta[1..=d].iter().map(|t| t.exp()).collect(),
            noise_variance: theta[d + 1].exp(),
        })
    }

    fn validate(&self, d: usize) -> Result<()> {
        let pos = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_value(
                    name,
                    format_args!("must be finite and > 0, got {v}"),
                ))
            }
        };
        pos("variance", self.variance)?;
        pos("noise_variance", self.noise_variance)?;
        if self.length_scale.len() != d {
            return Err(Error::shape(
                "length_scale",
                format_args!(
                    "expected {d} values (one per input column), got {}",
                    self.length_scale.len()
                ),
            ));
        }
        for &l in &self.length_scale {
            pos("length_scale", l)?;
        }
        Ok(())
    }
}

/// How the trace term `tr(K⁻¹ ∂K/∂θ)` of the gradient is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEstimator {
    /// Exactly, from `K⁻¹` (cuSOLVER `potri`: about 3× the cost of the factorisation).
    Exact,
    /// Hutchinson's estimator with `probes` (1..=16) Rademacher vectors drawn afresh from `seed` and the
    /// evaluation counter; solves are exact (Cholesky). Standard error ∝ 1/√probes.
    Hutchinson {
        /// Number of probe vectors (≥ 1).
        probes: usize,
        /// Seed of the probe stream.
        seed: u64,
    },
}

/// Outcome of [`GpuExactGp::fit_adam`].
#[derive(Clone, Debug, PartialEq)]
pub struct AdamReport {
    /// Log marginal likelihood at each step's starting point (exact).
    pub lml: Vec<f64>,
    /// The final hyperparameters.
    pub params: RbfParams,
}

/// An exact GP on a CUDA device (see the module docs).
pub struct GpuExactGp {
    dev: CudaDevice,
    n: usize,
    d: usize,
    params: RbfParams,
    x: CudaSlice<f64>,
    y: CudaSlice<f64>,
    k: CudaSlice<f64>,
    rhs: CudaSlice<f64>,
    sol: CudaSlice<f64>,
    inv_ls: CudaSlice<f64>,
    grad: CudaSlice<f64>,
    terms: CudaSlice<f64>,
    info: CudaSlice<i32>,
    work: CudaSlice<f64>,
    blas: CudaBlas,
    solver: DnHandle,
    f_gram: CudaFunction,
    f_cross: CudaFunction,
    f_rhs: CudaFunction,
    f_terms: CudaFunction,
    f_grad: CudaFunction,
    f_var: CudaFunction,
    /// The Cholesky factor in `k` and `α` in `sol[..n]` are valid for `params`.
    factored: bool,
    evals: u64,
}

impl std::fmt::Debug for GpuExactGp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuExactGp")
            .field("device", &self.dev)
            .field("n", &self.n)
            .field("d", &self.d)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn grid2(nx: usize, ny: usize, bx: u32, by: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (
            u32::try_from(nx.div_ceil(bx as usize)).unwrap_or(u32::MAX),
            u32::try_from(ny.div_ceil(by as usize)).unwrap_or(u32::MAX),
            1,
        ),
        block_dim: (bx, by, 1),
        shared_mem_bytes: 0,
    }
}

fn solver_check(what: &'static str, s: sol::cusolverStatus_t) -> Result<()> {
    if s == sol::cusolverStatus_t::CUSOLVER_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Numerical {
            what,
            detail: format!("cuSOLVER returned {s:?}"),
        })
    }
}

fn blas_check(what: &'static str, s: blas::cublasStatus_t) -> Result<()> {
    if s == blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        Ok(())
    } else {
        Err(Error::Numerical {
            what,
            detail: format!("cuBLAS returned {s:?}"),
        })
    }
}

fn to_i32(what: &'static str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        Error::invalid_value(
            what,
            format_args!("{v} exceeds the 32-bit index range of cuSOLVER/cuBLAS"),
        )
    })
}

impl GpuExactGp {
    /// Uploads the training data `x` (n × d) and targets `y` (n) and prepares the buffers
    /// (an `n × n` float64 matrix: 3.2 GB at n = 20,000).
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`]/[`Error::InvalidValue`] for bad data or
    /// hyperparameters (`d` must be in `1..=16`, `n ≥ 1`); [`Error::BackendUnavailable`] if
    /// cuBLAS/cuSOLVER cannot be loaded; [`Error::Numerical`] if device allocation fails.
    pub fn new(
        dev: &CudaDevice,
        x: ArrayView2<'_, f64>,
        y: &[f64],
        params: RbfParams,
    ) -> Result<Self> {
        let (n, d) = x.dim();
        if n == 0 {
            return Err(Error::shape("x", "needs at least one row"));
        }
        if d == 0 || d > MAX_DIM {
            return Err(Error::shape(
                "x",
                format_args!("expected 1..={MAX_DIM} columns, got {d}"),
            ));
        }
        if y.len() != n {
            return Err(Error::shape(
                "y",
                format_args!("expected {n} values (rows of x), got {}", y.len()),
            ));
        }
        let xs: Vec<f64> = x.iter().copied().collect();
        check_finite("x", &xs)?;
        check_finite("y", y)?;
        params.validate(d)?;
        let nn = n
            .checked_mul(n)
            .ok_or_else(|| Error::invalid_value("x", "too many rows"))?;
        to_i32("x rows", n)?;
        dev.require_linalg()?;
        let s = dev.stream().clone();
        let src = format!("#define D {d}\n{SRC}");
        let key: &'static str = match d {
            1 => "gp_d1",
            2 => "gp_d2",
            3 => "gp_d3",
            4 => "gp_d4",
            5 => "gp_d5",
            6 => "gp_d6",
            7 => "gp_d7",
            8 => "gp_d8",
            9 => "gp_d9",
            10 => "gp_d10",
            11 => "gp_d11",
            12 => "gp_d12",
            13 => "gp_d13",
            14 => "gp_d14",
            15 => "gp_d15",
            _ => "gp_d16",
        };
        let f = |name: &str| dev.function(key, &src, name);
        let alloc = cuda_err("GPU GP allocation");
        let blas = CudaBlas::new(s.clone()).map_err(|e| Error::Numerical {
            what: "cuBLAS init",
            detail: e.to_string(),
        })?;
        let solver = DnHandle::new(s.clone()).map_err(|e| Error::Numerical {
            what: "cuSOLVER init",
            detail: e.to_string(),
        })?;
        let mut k = s.alloc_zeros::<f64>(nn).map_err(&alloc)?;
        let mut lwork = 0i32;
        {
            let (kp, _g) = k.device_ptr_mut(&s);
            // SAFETY: valid handle and an n×n device buffer; the call only queries the size.
            solver_check("potrf_bufferSize", unsafe {
                sol::cusolverDnDpotrf_bufferSize(
                    solver.cu(),
                    sol::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    n as i32,
                    kp as *mut f64,
                    n as i32,
                    &mut lwork,
                )
            })?;
            let mut lw2 = 0i32;
            // SAFETY: as above.
            solver_check("potri_bufferSize", unsafe {
                sol::cusolverDnDpotri_bufferSize(
                    solver.cu(),
                    sol::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    n as i32,
                    kp as *mut f64,
                    n as i32,
                    &mut lw2,
                )
            })?;
            lwork = lwork.max(lw2).max(1);
        }
        Ok(Self {
            x: s.clone_htod(&xs).map_err(&alloc)?,
            y: s.clone_htod(y).map_err(&alloc)?,
            k,
            rhs: s.alloc_zeros::<f64>(n).map_err(&alloc)?,
            sol: s.alloc_zeros::<f64>(n).map_err(&alloc)?,
            inv_ls: s.alloc_zeros::<f64>(d).map_err(&alloc)?,
            grad: s.alloc_zeros::<f64>(d + 2).map_err(&alloc)?,
            terms: s.alloc_zeros::<f64>(2).map_err(&alloc)?,
            info: s.alloc_zeros::<i32>(1).map_err(&alloc)?,
            work: s.alloc_zeros::<f64>(lwork as usize).map_err(&alloc)?,
            f_gram: f("rbf_gram_lower")?,
            f_cross: f("rbf_cross")?,
            f_rhs: f("fill_rhs")?,
            f_terms: f("lml_terms")?,
            f_grad: f("rbf_lml_grad")?,
            f_var: f("pred_var")?,
            blas,
            solver,
            dev: dev.clone(),
            n,
            d,
            params,
            factored: false,
            evals: 0,
        })
    }

    /// Number of training points.
    #[must_use]
    pub fn n(&self) -> usize {
        self.n
    }

    /// The current hyperparameters.
    #[must_use]
    pub fn params(&self) -> &RbfParams {
        &self.params
    }

    /// Sets the hyperparameters (the factorisation is redone lazily).
    ///
    /// # Errors
    /// [`Error::InvalidValue`]/[`Error::Shape`] for non-positive values or a wrong length.
    pub fn set_params(&mut self, params: RbfParams) -> Result<()> {
        params.validate(self.d)?;
        self.params = params;
        self.factored = false;
        Ok(())
    }

    /// Builds `K`, factorises it and solves for `[y, probes…]` (probes only with `m > 0`).
    fn factor_and_solve(&mut self, m: usize, seed: u64) -> Result<()> {
        let s = self.dev.stream().clone();
        let n = self.n;
        let e = cuda_err("GPU GP factorisation");
        let inv: Vec<f64> = self.params.length_scale.iter().map(|l| 1.0 / l).collect();
        s.memcpy_htod(&inv, &mut self.inv_ls).map_err(&e)?;
        let cols = 1 + m;
        if self.rhs.len() != n * cols {
            self.rhs = s.alloc_zeros::<f64>(n * cols).map_err(&e)?;
            self.sol = s.alloc_zeros::<f64>(n * cols).map_err(&e)?;
        }
        let (ni, mi) = (n as i32, m as i32);
        let (s2, noise) = (self.params.variance, self.params.noise_variance);
        // SAFETY: argument types match the kernel signatures; buffers have the sizes used.
        unsafe {
            s.launch_builder(&self.f_gram)
                .arg(&self.x)
                .arg(&ni)
                .arg(&self.inv_ls)
                .arg(&s2)
                .arg(&noise)
                .arg(&mut self.k)
                .launch(grid2(n, n, 32, 8))
                .map_err(&e)?;
            let total = n * cols;
            s.launch_builder(&self.f_rhs)
                .arg(&self.y)
                .arg(&ni)
                .arg(&mi)
                .arg(&seed)
                .arg(&mut self.rhs)
                .launch(LaunchConfig::for_num_elems(
                    u32::try_from(total).map_err(|_| Error::invalid_value("probes", "too many"))?,
                ))
                .map_err(&e)?;
        }
        s.memcpy_dtod(&self.rhs, &mut self.sol).map_err(&e)?;
        {
            let (kp, _g1) = self.k.device_ptr_mut(&s);
            let lwork = self.work.len() as i32;
            let (wp, _g2) = self.work.device_ptr_mut(&s);
            let (ip, _g3) = self.info.device_ptr_mut(&s);
            // SAFETY: handle bound to `s`; n×n matrix, workspace of the queried size.
            solver_check("potrf", unsafe {
                sol::cusolverDnDpotrf(
                    self.solver.cu(),
                    sol::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    ni,
                    kp as *mut f64,
                    ni,
                    wp as *mut f64,
                    lwork,
                    ip as *mut i32,
                )
            })?;
        }
        let info = s.clone_dtoh(&self.info).map_err(&e)?;
        if info[0] != 0 {
            self.factored = false;
            return Err(Error::NotPositiveDefinite {
                what: "GPU kernel matrix K + σ²I",
                pivot: usize::try_from(info[0]).unwrap_or(0),
                jitter: 0.0,
            });
        }
        {
            let (kp, _g1) = self.k.device_ptr(&s);
            let (bp, _g2) = self.sol.device_ptr_mut(&s);
            let (ip, _g3) = self.info.device_ptr_mut(&s);
            // SAFETY: factor from potrf above; B is n × cols.
            solver_check("potrs", unsafe {
                sol::cusolverDnDpotrs(
                    self.solver.cu(),
                    sol::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    ni,
                    cols as i32,
                    kp as *const f64,
                    ni,
                    bp as *mut f64,
                    ni,
                    ip as *mut i32,
                )
            })?;
        }
        self.factored = true;
        Ok(())
    }

    fn lml_from_factor(&mut self) -> Result<f64> {
        let s = self.dev.stream().clone();
        let e = cuda_err("GPU GP log marginal likelihood");
        let ni = self.n as i32;
        // SAFETY: one block; buffers of length ≥ n and n×n.
        unsafe {
            s.launch_builder(&self.f_terms)
                .arg(&self.y)
                .arg(&self.sol)
                .arg(&self.k)
                .arg(&ni)
                .arg(&mut self.terms)
                .launch(LaunchConfig {
                    grid_dim: (1, 1, 1),
                    block_dim: (1024, 1, 1),
                    shared_mem_bytes: 0,
                })
                .map_err(&e)?;
        }
        let t = s.clone_dtoh(&self.terms).map_err(&e)?;
        Ok(-0.5 * t[0] - t[1] - 0.5 * self.n as f64 * (2.0 * std::f64::consts::PI).ln())
    }

    /// The exact log marginal likelihood at the current hyperparameters.
    ///
    /// # Errors
    /// [`Error::NotPositiveDefinite`] if the factorisation fails; [`Error::Numerical`] on a
    /// CUDA failure.
    pub fn log_marginal_likelihood(&mut self) -> Result<f64> {
        if !self.factored {
            self.factor_and_solve(0, 0)?;
        }
        self.lml_from_factor()
    }

    /// The log marginal likelihood (exact) and its gradient with respect to
    /// `θ = [ln s², ln l_1 … ln l_d, ln σ²]` at the current hyperparameters.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for `probes == 0`; as [`GpuExactGp::log_marginal_likelihood`].
    pub fn lml_and_gradient(&mut self, trace: TraceEstimator) -> Result<(f64, Vec<f64>)> {
        let (m, seed) = match trace {
            TraceEstimator::Exact => (0, 0),
            TraceEstimator::Hutchinson { probes, seed } => {
                if probes == 0 || probes > MAX_PROBES {
                    return Err(Error::invalid_value(
                        "probes",
                        format_args!("must be in 1..={MAX_PROBES}, got {probes}"),
                    ));
                }
                (
                    probes,
                    seed ^ self.evals.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                )
            }
        };
        self.evals += 1;
        self.factor_and_solve(m, seed)?;
        let lml = self.lml_from_factor()?;
        let s = self.dev.stream().clone();
        let e = cuda_err("GPU GP gradient");
        let ni = self.n as i32;
        let mi = m as i32;
        if m == 0 {
            let (kp, _g1) = self.k.device_ptr_mut(&s);
            let lwork = self.work.len() as i32;
            let (wp, _g2) = self.work.device_ptr_mut(&s);
            let (ip, _g3) = self.info.device_ptr_mut(&s);
            // SAFETY: the factor from potrf; in-place inverse (lower triangle).
            solver_check("potri", unsafe {
                sol::cusolverDnDpotri(
                    self.solver.cu(),
                    sol::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                    ni,
                    kp as *mut f64,
                    ni,
                    wp as *mut f64,
                    lwork,
                    ip as *mut i32,
                )
            })?;
        }
        s.memset_zeros(&mut self.grad).map_err(&e)?;
        let (s2, noise) = (self.params.variance, self.params.noise_variance);
        let null: u64 = 0;
        let mut b = s.launch_builder(&self.f_grad);
        b.arg(&self.x)
            .arg(&ni)
            .arg(&self.inv_ls)
            .arg(&s2)
            .arg(&noise)
            .arg(&self.sol)
            .arg(&self.rhs)
            .arg(&mi);
        if m == 0 {
            b.arg(&self.k);
        } else {
            b.arg(&null);
        }
        b.arg(&mut self.grad);
        let cfg = LaunchConfig {
            grid_dim: (
                u32::try_from(self.n.div_ceil(128)).unwrap_or(u32::MAX),
                u32::try_from(self.n.div_ceil(32)).unwrap_or(u32::MAX),
                1,
            ),
            block_dim: (128, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: the arguments pushed above match the kernel's signature in number, order
        // and type; the grid covers rows × 32-column tiles and the kernel bounds-checks
        // every index against n before reading or writing.
        unsafe { b.launch(cfg) }.map_err(&e)?;
        drop(b);
        let g = s.clone_dtoh(&self.grad).map_err(&e)?;
        if m == 0 {
            self.factored = false; // K now holds K⁻¹
        }
        if !lml.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return Err(Error::Numerical {
                what: "GPU GP gradient",
                detail: "non-finite value".into(),
            });
        }
        Ok((lml, g))
    }

    /// Maximises the log marginal likelihood with `steps` Adam steps (learning rate `lr`, on
    /// `θ`, with the gradient divided by n as GPyTorch's `ExactMarginalLogLikelihood` does).
    /// On error the hyperparameters are left at the last good step.
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for `lr ≤ 0`; as [`GpuExactGp::lml_and_gradient`].
    pub fn fit_adam(&mut self, steps: usize, lr: f64, trace: TraceEstimator) -> Result<AdamReport> {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::invalid_value(
                "lr",
                format_args!("must be finite and > 0, got {lr}"),
            ));
        }
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let mut th = self.params.theta();
        let p = th.len();
        let (mut mom, mut vel) = (vec![0.0; p], vec![0.0; p]);
        let mut lml = Vec::with_capacity(steps);
        let inv_n = 1.0 / self.n as f64;
        for t in 1..=steps {
            let (v, g) = self.lml_and_gradient(trace)?;
            lml.push(v);
            let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
            for j in 0..p {
                let gj = g[j] * inv_n;
                mom[j] = b1 * mom[j] + (1.0 - b1) * gj;
                vel[j] = b2 * vel[j] + (1.0 - b2) * gj * gj;
                th[j] += lr * (mom[j] / c1) / ((vel[j] / c2).sqrt() + eps);
            }
            self.set_params(RbfParams::from_theta(&th)?)?;
        }
        Ok(AdamReport {
            lml,
            params: self.params.clone(),
        })
    }

    /// Predictive means and variances at `xs` (m × d); `include_noise` adds σ² to the
    /// variances (the predictive distribution of a new observation).
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] for bad `xs`; as
    /// [`GpuExactGp::log_marginal_likelihood`].
    pub fn predict(
        &mut self,
        xs: ArrayView2<'_, f64>,
        include_noise: bool,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (m, d) = xs.dim();
        if d != self.d {
            return Err(Error::shape(
                "xs",
                format_args!("expected {} columns (the input dimension), got {d}", self.d),
            ));
        }
        let xh: Vec<f64> = xs.iter().copied().collect();
        check_finite("xs", &xh)?;
        if m == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        if !self.factored {
            self.factor_and_solve(0, 0)?;
        }
        let s = self.dev.stream().clone();
        let e = cuda_err("GPU GP prediction");
        let n = self.n;
        let ni = n as i32;
        let chunk = m.min(PRED_CHUNK);
        let xs_d = s.clone_htod(&xh).map_err(&e)?;
        let mut kc = s.alloc_zeros::<f64>(n * chunk).map_err(&e)?;
        let mut mean_d = s.alloc_zeros::<f64>(m).map_err(&e)?;
        let mut var_d = s.alloc_zeros::<f64>(m).map_err(&e)?;
        let prior = self.params.variance
            + if include_noise {
                self.params.noise_variance
            } else {
                0.0
            };
        let s2 = self.params.variance;
        let mut start = 0;
        while start < m {
            let c = chunk.min(m - start);
            let ci = c as i32;
            let xs_c = xs_d.slice(start * d..(start + c) * d);
            // SAFETY: buffers sized n × chunk and c × d.
            unsafe {
                s.launch_builder(&self.f_cross)
                    .arg(&self.x)
                    .arg(&ni)
                    .arg(&xs_c)
                    .arg(&ci)
                    .arg(&self.inv_ls)
                    .arg(&s2)
                    .arg(&mut kc)
                    .launch(grid2(n, c, 32, 8))
                    .map_err(&e)?;
            }
            {
                let (kp, _g1) = kc.device_ptr_mut(&s);
                let (ap, _g2) = self.sol.device_ptr(&s);
                let mut mv = mean_d.slice_mut(start..start + c);
                let (mp, _g3) = mv.device_ptr_mut(&s);
                let (lp, _g4) = self.k.device_ptr(&s);
                let (one, zero) = (1.0f64, 0.0f64);
                // SAFETY: handle bound to `s`; dimensions as allocated.
                unsafe {
                    blas_check(
                        "gemv",
                        blas::cublasDgemv_v2(
                            *self.blas.handle(),
                            blas::cublasOperation_t::CUBLAS_OP_T,
                            ni,
                            ci,
                            &one,
                            kp as *const f64,
                            ni,
                            ap as *const f64,
                            1,
                            &zero,
                            mp as *mut f64,
                            1,
                        ),
                    )?;
                    blas_check(
                        "trsm",
                        blas::cublasDtrsm_v2(
                            *self.blas.handle(),
                            blas::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                            blas::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                            blas::cublasOperation_t::CUBLAS_OP_N,
                            blas::cublasDiagType_t::CUBLAS_DIAG_NON_UNIT,
                            ni,
                            ci,
                            &one,
                            lp as *const f64,
                            ni,
                            kp as *mut f64,
                            ni,
                        ),
                    )?;
                }
            }
            {
                let mut vv = var_d.slice_mut(start..start + c);
                // SAFETY: one block per column of the n × c buffer.
                unsafe {
                    s.launch_builder(&self.f_var)
                        .arg(&kc)
                        .arg(&ni)
                        .arg(&ci)
                        .arg(&prior)
                        .arg(&mut vv)
                        .launch(LaunchConfig {
                            grid_dim: (c as u32, 1, 1),
                            block_dim: (256, 1, 1),
                            shared_mem_bytes: 0,
                        })
                        .map_err(&e)?;
                }
            }
            start += c;
        }
        let mean = s.clone_dtoh(&mean_d).map_err(&e)?;
        let mut var = s.clone_dtoh(&var_d).map_err(&e)?;
        var.iter_mut().for_each(|v| *v = v.max(0.0));
        Ok((mean, var))
    }
}
