//! A motion model whose velocity field is a fitted Gaussian process: the GP core's
//! [`GaussianProcess`] maps a position `(x, y)` to a velocity `(vx, vy)` (two outputs), and a
//! particle moves with a velocity drawn from the GP's posterior at its position,
//!
//! ```text
//! v ~ N(μ(p), diag(σ²(p)) + q I),   p' = p + dt·v,   z = p' + N(0, σ_z² I)
//! ```
//!
//! so motion is confident where the GP has seen people walk and diffuse elsewhere. State per
//! particle: `(x, y)`. Each propagation costs one GP prediction per particle (O(n) mean,
//! O(n²) variance for n training points); keep the GP small (a sliding window) for real time.

use std::cell::RefCell;

use rand_chacha::ChaCha8Rng;

use crate::belief::filter::{Model, Particles, ParticlesRef};
use crate::belief::noise::fill_normal;
use crate::error::{check_finite, check_positive, Error, Result};
use crate::gp::{GaussianProcess, GpWorkspace};

thread_local! {
    // One prediction workspace per thread (grown once, then reused: no per-step allocation).
    static WS: RefCell<GpWorkspace> = RefCell::new(GpWorkspace::new());
}

/// The GP velocity-field motion model. Observations are `[x, y]`.
#[derive(Debug)]
pub struct GpMotion {
    gp: GaussianProcess,
    dt: f64,
    extra_var: f64,
    obs_noise: f64,
    init: [f64; 2],
    init_std: f64,
}

impl GpMotion {
    /// Wraps a fitted GP with 2-D inputs (position) and 2 outputs (velocity).
    ///
    /// # Errors
    /// [`Error::Shape`] if the GP's input or output dimension is not 2; [`Error::InvalidValue`]
    /// if it is not fitted or a setting is out of range.
    pub fn new(
        gp: GaussianProcess,
        dt: f64,
        extra_velocity_var: f64,
        obs_noise: f64,
        init: [f64; 2],
        init_std: f64,
    ) -> Result<Self> {
        if gp.input_dim() != 2 || gp.n_outputs() != 2 {
            return Err(Error::shape(
                "gp",
                format_args!(
                    "expected 2 inputs (x, y) and 2 outputs (vx, vy), got {} and {}",
                    gp.input_dim(),
                    gp.n_outputs()
                ),
            ));
        }
        if !gp.is_fitted() {
            return Err(Error::invalid_value("gp", "must be fitted"));
        }
        check_positive("dt", dt)?;
        check_positive("obs_noise", obs_noise)?;
        if !(extra_velocity_var.is_finite() && extra_velocity_var >= 0.0) {
            return Err(Error::invalid_value("extra_velocity_var", "must be >= 0"));
        }
        check_finite("init", &init)?;
        if !(init_std.is_finite() && init_std >= 0.0) {
            return Err(Error::invalid_value("init_std", "must be >= 0"));
        }
        Ok(Self {
            gp,
            dt,
            extra_var: extra_velocity_var,
            obs_noise,
            init,
            init_std,
        })
    }

    /// The GP.
    #[must_use]
    pub fn gp(&self) -> &GaussianProcess {
        &self.gp
    }
}

impl Model for GpMotion {
    type Obs = [f64];

    fn state_dim(&self) -> usize {
        2
    }

    fn scratch_per_particle(&self) -> usize {
        2
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
        let eps = &mut scratch[..2 * len];
        fill_normal(rng, eps);
        for c in 0..2 {
            for (x, &e) in p.component_mut(c).iter_mut().zip(&eps[c * len..]) {
                *x = self.init[c] + self.init_std * e;
            }
        }
    }

    fn propagate(&self, p: &mut Particles<'_>, rng: &mut ChaCha8Rng, scratch: &mut [f64]) {
        let len = p.len();
        let eps = &mut scratch[..2 * len];
        fill_normal(rng, eps);
        WS.with(|ws| {
            let mut ws = ws.borrow_mut();
            let (mut mean, mut var) = ([0.0; 2], [0.0; 2]);
            let mut comps = p.components_mut();
            let (Some(px), Some(py)) = (comps.next(), comps.next()) else {
                return;
            };
            for i in 0..len {
                let x = [px[i], py[i]];
                // A failed prediction (cannot happen for a fitted GP and finite x) leaves the
                // particle in place rather than poisoning it with NaN.
                if self
                    .gp
                    .predict_one_into(&x, &mut mean, Some(&mut var), &mut ws)
                    .is_err()
                {
                    continue;
                }
                let vx = mean[0] + (var[0].max(0.0) + self.extra_var).sqrt() * eps[i];
                let vy = mean[1] + (var[1].max(0.0) + self.extra_var).sqrt() * eps[len + i];
                px[i] += self.dt * vx;
                py[i] += self.dt * vy;
            }
        });
    }

    fn log_likelihood(
        &self,
        p: ParticlesRef<'_>,
        obs: &[f64],
        _scratch: &mut [f64],
        logw: &mut [f64],
    ) {
        let c = -0.5 / (self.obs_noise * self.obs_noise);
        let k = -(2.0 * std::f64::consts::PI * self.obs_noise * self.obs_noise).ln();
        for ((lw, &x), &y) in logw.iter_mut().zip(p.component(0)).zip(p.component(1)) {
            let (dx, dy) = (obs[0] - x, obs[1] - y);
            *lw += c * (dx * dx + dy * dy) + k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::belief::{FilterSettings, ParticleFilter};
    use crate::gp::{GpSettings, Kernel};
    use ndarray::Array2;

    #[test]
    fn tracks_a_walk_along_the_learned_flow() {
        // Training data: people walk along +x at 1 m/s everywhere in [0, 10] × [−2, 2].
        let n = 40;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| {
            if j == 0 {
                (i % 10) as f64
            } else {
                (i / 10) as f64 - 1.5
            }
        });
        let y = Array2::from_shape_fn((n, 2), |(_, j)| if j == 0 { 1.0 } else { 0.0 });
        let mut gp = GaussianProcess::new(
            Kernel::squared_exponential(1.0, &[2.0]).unwrap(),
            GpSettings {
                noise_variance: 1e-2,
                ..Default::default()
            },
        )
        .unwrap();
        gp.fit(x.view(), y.view()).unwrap();
        let m = GpMotion::new(gp, 0.2, 0.01, 0.1, [0.0, 0.0], 0.1).unwrap();
        let mut pf = ParticleFilter::new(
            m,
            FilterSettings {
                n_particles: 500,
                ..Default::default()
            },
        )
        .unwrap();
        for t in 1..=20 {
            pf.step(&[0.2 * t as f64, 0.0][..]).unwrap();
        }
        let mean = pf.mean();
        assert!(
            (mean[0] - 4.0).abs() < 0.2 && mean[1].abs() < 0.2,
            "{mean:?}"
        );
        assert!(pf.log_z().is_finite());
        let bad = GaussianProcess::new(
            Kernel::squared_exponential(1.0, &[1.0]).unwrap(),
            GpSettings::default(),
        )
        .unwrap();
        assert!(GpMotion::new(bad, 0.2, 0.0, 0.1, [0.0; 2], 0.1).is_err());
    }
}
