//! The optional online GP correction of the person's motion model.
//!
//! Every `stride` observations the engine compares where the person is with where the goal
//! model (alone) predicted them `stride` observations earlier; the difference over the elapsed
//! time is a velocity residual, attributed to the position it was predicted from. A GP from
//! position to residual velocity (squared-exponential kernel, sliding window, O(n²) updates)
//! then adds its mean to the motion model's velocity in the prediction stage: a person who
//! habitually detours around a table is predicted to do so again.

use ndarray::ArrayView2;

use crate::belief::{Goal, GoalInference};
use crate::error::Result;
use crate::gp::{GaussianProcess, GpSettings, GpWorkspace, Kernel};
use crate::intent::config::{GpResidualConfig, HumanModel};
use crate::intent::predict::Predictor;

#[derive(Debug)]
pub(crate) struct ResidualGp {
    cfg: GpResidualConfig,
    dt: f64,
    gp: GaussianProcess,
    fitted: bool,
    ws: GpWorkspace,
    count: usize,
    pending: Option<([f64; 2], [f64; 2], f64)>,
    pred: Predictor,
}

impl ResidualGp {
    pub(crate) fn new(cfg: GpResidualConfig, human: &HumanModel) -> Result<Self> {
        let tau = cfg.stride as f64 * human.observation_period;
        // What a residual cannot predict: the noise of the two positions it differences
        // (2σ²/τ²), and the motion model's own diffusion over τ — velocity noise of intensity q
        // integrated twice gives a position variance q²τ³/3, i.e. q²τ/3 in velocity units.
        let q2 = human.velocity_noise * human.velocity_noise;
        let noise = 2.0 * human.obs_noise * human.obs_noise / (tau * tau) + q2 * tau / 3.0;
        let kernel =
            Kernel::squared_exponential(cfg.variance, &[cfg.length_scale, cfg.length_scale])?;
        let gp = GaussianProcess::new(
            kernel,
            GpSettings {
                noise_variance: noise,
                max_observations: Some(cfg.window),
                capacity: cfg.window + 1,
                ..GpSettings::default()
            },
        )?;
        Ok(Self {
            cfg,
            dt: human.observation_period,
            gp,
            fitted: false,
            ws: GpWorkspace::new(),
            count: 0,
            pending: None,
            pred: Predictor::new(1, 1, 0),
        })
    }

    pub(crate) fn reset(&mut self) {
        self.pending = None;
        self.count = 0;
    }

    /// Training points held.
    pub(crate) fn len(&self) -> usize {
        if self.fitted {
            self.gp.n_observations()
        } else {
            0
        }
    }

    /// The GP's conditioning counters for telemetry: (jitter escalations, duplicate-jitter
    /// events, refactorisations).
    pub(crate) fn stats(&self) -> (u64, u64, u64) {
        let s = self.gp.stats();
        (s.jitter_escalations, s.duplicate_jitter_events, s.refactors)
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.len() >= 3
    }

    /// Records observation `z` at time `t` (after the belief assimilated it).
    pub(crate) fn observe(&mut self, z: [f64; 2], t: f64, gi: &GoalInference, goals: &[Goal]) {
        self.count += 1;
        if let Some((p0, phat, t0)) = self.pending {
            if self.count < self.cfg.stride {
                return;
            }
            let tau = t - t0;
            if tau > 0.0 {
                let r = [(z[0] - phat[0]) / tau, (z[1] - phat[1]) / tau];
                let x = ArrayView2::from_shape((1, 2), &p0[..]);
                let y = ArrayView2::from_shape((1, 2), &r[..]);
                if let (Ok(x), Ok(y)) = (x, y) {
                    // A failed update (e.g. a non-PD window) leaves the correction as it was.
                    let ok = if self.fitted {
                        self.gp.add_observations(x, y).is_ok()
                    } else {
                        self.gp.fit(x, y).is_ok()
                    };
                    self.fitted |= ok;
                }
            }
            self.pending = None;
        }
        // What the goal model alone predicts `stride` observations ahead.
        let k = goals.len();
        if self.pred.k != k {
            self.pred = Predictor::new(k, 1, 0);
        }
        self.pred.moments(gi.filter());
        let tau = self.cfg.stride as f64 * self.dt;
        let s = gi.filter().model().settings();
        self.pred.propagate(goals, s, 0.0, tau, |_, _| [0.0; 2]);
        let phat = [self.pred.mix_mean[0], self.pred.mix_mean[1]];
        if phat[0].is_finite() && phat[1].is_finite() {
            self.pending = Some((z, phat, t));
        }
        self.count = 0;
    }

    /// The residual velocity at `(x, y)` (zero if the GP cannot predict).
    pub(crate) fn velocity(&mut self, x: f64, y: f64) -> [f64; 2] {
        let mut m = [0.0; 2];
        if self
            .gp
            .predict_one_into(&[x, y], &mut m, None, &mut self.ws)
            .is_err()
        {
            return [0.0; 2];
        }
        m
    }
}
