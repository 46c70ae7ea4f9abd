//! The linear-Gaussian state-space model, `x' = A x + N(0, Q)`, `y = H x + N(0, R)`,
//! `x₀ ~ N(m₀, P₀)`: the model on which a particle filter can be checked against the exact
//! Kalman filter. It also offers the locally optimal proposal `p(x' | x, y)` (a guided filter).

use nalgebra::DMatrix;
use rand_chacha::ChaCha8Rng;

use crate::belief::filter::{Model, Particles, ParticlesRef};
use crate::belief::noise::fill_normal;
use crate::error::{check_finite, Error, Result};

/// A linear-Gaussian model (matrices row-major).
#[derive(Clone, Debug)]
pub struct LinearGaussian {
    nx: usize,
    ny: usize,
    a: Vec<f64>,
    h: Vec<f64>,
    lq: Vec<f64>,
    lr: Vec<f64>,
    m0: Vec<f64>,
    lp0: Vec<f64>,
    log_det_r: f64,
    // Optimal proposal: gain K (nx × ny), chol of Σ = Q − K H Q, chol of S = H Q Hᵀ + R.
    guided: bool,
    k: Vec<f64>,
    lsig: Vec<f64>,
    ls: Vec<f64>,
    log_det_s: f64,
}

fn chol(name: &'static str, m: &DMatrix<f64>) -> Result<Vec<f64>> {
    let n = m.nrows();
    // Tiny jitter keeps a positive semi-definite Σ (e.g. noise on some components only) usable.
    let scale = (0..n)
        .map(|i| m[(i, i)].abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    let mut jit = 0.0;
    for _ in 0..6 {
        let mut mm = m.clone();
        for i in 0..n {
            mm[(i, i)] += jit;
        }
        if let Some(c) = mm.cholesky() {
            let l = c.l();
            return Ok((0..n * n).map(|k| l[(k / n, k % n)]).collect());
        }
        jit = if jit == 0.0 {
            scale * 1e-12
        } else {
            jit * 100.0
        };
    }
    Err(Error::NotPositiveDefinite {
        what: name,
        pivot: 0,
        jitter: jit,
    })
}

fn mat(name: &'static str, v: &[f64], r: usize, c: usize) -> Result<DMatrix<f64>> {
    if v.len() != r * c {
        return Err(Error::shape(
            name,
            format_args!(
                "expected {r}×{c} = {} values (row-major), got {}",
                r * c,
                v.len()
            ),
        ));
    }
    check_finite(name, v)?;
    Ok(DMatrix::from_row_slice(r, c, v))
}

impl LinearGaussian {
    /// Builds the model from row-major `a` (nx×nx), `q` (nx×nx), `h` (ny×nx), `r` (ny×ny),
    /// `m0` (nx) and `p0` (nx×nx).
    ///
    /// ```
    /// use intent_engine::belief::LinearGaussian;
    /// let m = LinearGaussian::new(1, 1, &[1.0], &[0.1], &[1.0], &[0.2], &[0.0], &[1.0])?;
    /// assert_eq!((m.nx(), m.ny()), (1, 1));
    /// # Ok::<(), intent_engine::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`]/[`Error::NonFinite`] on bad matrices; [`Error::NotPositiveDefinite`]
    /// if `R`, `P₀` or the innovation covariance is not positive definite.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        nx: usize,
        ny: usize,
        a: &[f64],
        q: &[f64],
        h: &[f64],
        r: &[f64],
        m0: &[f64],
        p0: &[f64],
    ) -> Result<Self> {
        if nx == 0 || ny == 0 {
            return Err(Error::invalid_value("nx/ny", "dimensions must be >= 1"));
        }
        mat("A", a, nx, nx)?;
        let qm = mat("Q", q, nx, nx)?;
        let hm = mat("H", h, ny, nx)?;
        let rm = mat("R", r, ny, ny)?;
        let _ = mat("m0", m0, nx, 1)?;
        let pm = mat("P0", p0, nx, nx)?;
        let lq = chol("Q", &qm)?;
        let lr = chol("R", &rm)?;
        let lp0 = chol("P0", &pm)?;
        let s = &hm * &qm * hm.transpose() + &rm;
        let ls = chol("H Q Hᵀ + R", &s)?;
        let s_inv = s
            .clone()
            .cholesky()
            .ok_or(Error::NotPositiveDefinite {
                what: "H Q Hᵀ + R",
                pivot: 0,
                jitter: 0.0,
            })?
            .inverse();
        let k = &qm * hm.transpose() * s_inv;
        let sig = &qm - &k * &hm * &qm;
        let sig = (&sig + sig.transpose()) * 0.5;
        let lsig = chol("Q − K H Q", &sig)?;
        let log_det = |l: &[f64], n: usize| (0..n).map(|i| l[i * n + i].ln()).sum::<f64>();
        Ok(Self {
            nx,
            ny,
            a: a.to_vec(),
            h: h.to_vec(),
            log_det_r: log_det(&lr, ny),
            log_det_s: log_det(&ls, ny),
            lq,
            lr,
            m0: m0.to_vec(),
            lp0,
            guided: false,
            k: (0..nx * ny).map(|i| k[(i / ny, i % ny)]).collect(),
            lsig,
            ls,
        })
    }

    /// Uses the locally optimal proposal `p(x' | x, y)` instead of the transition.
    #[must_use]
    pub fn with_optimal_proposal(mut self, on: bool) -> Self {
        self.guided = on;
        self
    }

    /// State dimension.
    #[must_use]
    pub fn nx(&self) -> usize {
        self.nx
    }

    /// Observation dimension.
    #[must_use]
    pub fn ny(&self) -> usize {
        self.ny
    }
}

/// `-½|L⁻¹ e|²` added to `logw`, with `e` in `scratch` as `ny` component blocks of `len`.
fn add_quad(l: &[f64], ny: usize, e: &mut [f64], len: usize, konst: f64, logw: &mut [f64]) {
    // Forward substitution in place, component by component.
    for r in 0..ny {
        let (done, rest) = e.split_at_mut(r * len);
        let er = &mut rest[..len];
        for c in 0..r {
            let a = l[r * ny + c];
            for (x, &y) in er.iter_mut().zip(&done[c * len..(c + 1) * len]) {
                *x -= a * y;
            }
        }
        let inv = 1.0 / l[r * ny + r];
        er.iter_mut().for_each(|x| *x *= inv);
    }
    for (i, lw) in logw.iter_mut().enumerate().take(len) {
        let mut q = 0.0;
        for r in 0..ny {
            q += e[r * len + i] * e[r * len + i];
        }
        *lw += konst - 0.5 * q;
    }
}

impl Model for LinearGaussian {
    type Obs = [f64];

    fn state_dim(&self) -> usize {
        self.nx
    }

    fn scratch_per_particle(&self) -> usize {
        2 * self.nx + 2 * self.ny
    }

    fn check_observation(&self, obs: &[f64]) -> Result<()> {
        if obs.len() != self.ny {
            return Err(Error::shape(
                "observation",
                format_args!("expected length {}, got {}", self.ny, obs.len()),
            ));
        }
        check_finite("observation", obs)
    }

    fn sample_initial(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]) {
        let (len, nx) = (p.len(), self.nx);
        let eps = &mut scratch[..nx * len];
        fill_normal(rng, eps);
        for r in 0..nx {
            let x = p.component_mut(r);
            x.fill(self.m0[r]);
            for c in 0..=r {
                let a = self.lp0[r * nx + c];
                for (xi, &e) in x.iter_mut().zip(&eps[c * len..(c + 1) * len]) {
                    *xi += a * e;
                }
            }
        }
    }

    fn propagate(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]) {
        let (len, nx) = (p.len(), self.nx);
        let (new, rest) = scratch.split_at_mut(nx * len);
        let eps = &mut rest[..nx * len];
        fill_normal(rng, eps);
        propagate_mean(&self.a, nx, p, new, len);
        for r in 0..nx {
            let o = &mut new[r * len..(r + 1) * len];
            for c in 0..=r {
                let a = self.lq[r * nx + c];
                for (x, &e) in o.iter_mut().zip(&eps[c * len..(c + 1) * len]) {
                    *x += a * e;
                }
            }
        }
        for r in 0..nx {
            p.component_mut(r)
                .copy_from_slice(&new[r * len..(r + 1) * len]);
        }
    }

    fn log_likelihood(
        &self,
        p: ParticlesRef<'_>,
        obs: &[f64],
        scratch: &mut [f64],
        logw: &mut [f64],
    ) {
        let (len, ny) = (p.len(), self.ny);
        let e = &mut scratch[..ny * len];
        for r in 0..ny {
            let o = &mut e[r * len..(r + 1) * len];
            o.fill(obs[r]);
            for c in 0..self.nx {
                let a = self.h[r * self.nx + c];
                for (x, &xi) in o.iter_mut().zip(p.component(c)) {
                    *x -= a * xi;
                }
            }
        }
        let konst = -self.log_det_r - 0.5 * ny as f64 * (2.0 * std::f64::consts::PI).ln();
        add_quad(&self.lr, ny, e, len, konst, logw);
    }

    fn propose(
        &self,
        p: &mut Particles<'_>,
        obs: &[f64],
        rng: &mut ChaCha8Rng,
        scratch: &mut [f64],
        logw: &mut [f64],
    ) -> bool {
        if !self.guided {
            return false;
        }
        let (len, nx, ny) = (p.len(), self.nx, self.ny);
        let (ax, rest) = scratch.split_at_mut(nx * len);
        let (eps, rest) = rest.split_at_mut(nx * len);
        let (e, rest) = rest.split_at_mut(ny * len);
        let y = &mut rest[..ny * len];
        propagate_mean(&self.a, nx, p, ax, len);
        // Innovation e = y − H A x, and a copy for the weight (the solve works in place).
        for r in 0..ny {
            let o = &mut e[r * len..(r + 1) * len];
            o.fill(obs[r]);
            for c in 0..nx {
                let a = self.h[r * nx + c];
                for (x, &v) in o.iter_mut().zip(&ax[c * len..(c + 1) * len]) {
                    *x -= a * v;
                }
            }
        }
        y.copy_from_slice(e);
        fill_normal(rng, eps);
        for r in 0..nx {
            let x = p.component_mut(r);
            x.copy_from_slice(&ax[r * len..(r + 1) * len]);
            for c in 0..ny {
                let k = self.k[r * ny + c];
                for (xi, &v) in x.iter_mut().zip(&e[c * len..(c + 1) * len]) {
                    *xi += k * v;
                }
            }
            for c in 0..=r {
                let l = self.lsig[r * nx + c];
                for (xi, &v) in x.iter_mut().zip(&eps[c * len..(c + 1) * len]) {
                    *xi += l * v;
                }
            }
        }
        let konst = -self.log_det_s - 0.5 * ny as f64 * (2.0 * std::f64::consts::PI).ln();
        add_quad(&self.ls, ny, y, len, konst, logw);
        true
    }
}

/// `out = A x` per particle (component blocks of `len`).
fn propagate_mean(a: &[f64], nx: usize, p: &Particles<'_>, out: &mut [f64], len: usize) {
    for r in 0..nx {
        let o = &mut out[r * len..(r + 1) * len];
        o.fill(0.0);
        for c in 0..nx {
            let k = a[r * nx + c];
            if k != 0.0 {
                for (x, &v) in o.iter_mut().zip(p.component(c)) {
                    *x += k * v;
                }
            }
        }
    }
}
