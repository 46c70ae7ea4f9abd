//! Acquisition functions for Bayesian RL and active sensing: over Gaussian (GP) posteriors
//! given as means and standard deviations, and over particle beliefs given as a weighted set
//! of utilities (`N` particles × `A` candidate actions, row-major).
//!
//! With improvement `z = (μ − best − ξ)/σ`, the Gaussian forms are
//! `UCB = μ + √β σ`, `EI = σ (φ(z) + z Φ(z))`, `PI = Φ(z)`, and the numerically stable
//! `log EI = log σ + log h(z)` (Ament et al., NeurIPS 2023, as in BoTorch's `log_ei`), which
//! stays accurate where `EI` itself underflows (`z → −∞`).
//!
//! The particle forms make no Gaussian assumption: `EI_a = Σᵢ wᵢ max(U_ia − best − ξ, 0)`,
//! `PI_a = Σᵢ wᵢ 1[U_ia > best + ξ]`, `UCB_a = E_w[U_a] + √β sd_w[U_a]`, Thompson sampling draws
//! a particle `i ∝ wᵢ` and returns `argmax_a U_ia`, and [`select_action`] maximises the
//! expected utility under the belief.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{check_finite, Error, Result};

const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
const SQRT_PI_OVER_2: f64 = 1.253_314_137_315_500_3;

/// Scaled complementary error function `erfcx(x) = exp(x²)·erfc(x)`, accurate to ~1e-15
/// relative for `x ≥ 0` (continued fraction beyond 3, libm's `erfc` below).
///
/// ```
/// use intent_engine::belief::acquisition::erfcx;
/// assert!((erfcx(1.0) - 0.427_583_576_155_807).abs() < 1e-15);
/// assert!((erfcx(30.0) * 30.0 * std::f64::consts::PI.sqrt() - 1.0).abs() < 1e-3);
/// ```
#[must_use]
pub fn erfcx(x: f64) -> f64 {
    if x < 3.0 {
        return (x * x).exp() * libm::erfc(x);
    }
    // erfcx(x) = 1/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) — modified Lentz.
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for n in 1..500 {
        let a = n as f64 * 0.5;
        d = x + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = x + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    1.0 / (f * std::f64::consts::PI.sqrt())
}

/// Standard normal density.
#[must_use]
pub fn norm_pdf(z: f64) -> f64 {
    INV_SQRT_2PI * (-0.5 * z * z).exp()
}

/// Standard normal CDF, accurate in both tails.
#[must_use]
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2)
}

/// `log(φ(z) + z Φ(z))`, the log of the standardised expected improvement, stable for all z.
///
/// ```
/// use intent_engine::belief::acquisition::log_h;
/// // Far in the lower tail EI underflows but its log does not.
/// assert!(log_h(-40.0).is_finite() && log_h(-40.0) < -800.0);
/// assert!((log_h(0.0) - (0.398_942_280_401_432_7f64).ln()).abs() < 1e-15);
/// ```
#[must_use]
pub fn log_h(z: f64) -> f64 {
    if z > -1.0 {
        return (norm_pdf(z) + z * norm_cdf(z)).ln();
    }
    if z < -1e3 {
        // 1 − |z| Φ(z)/φ(z) = z⁻² − 3z⁻⁴ + 15z⁻⁶ − 105z⁻⁸ + …: the closed form below cancels
        // catastrophically out here (and gave NaN once z² overflows); the series is exact to
        // rounding. Past |z| ≈ 1e154 the true value is below −f64::MAX: −∞.
        let w = 1.0 / (z * z);
        return -0.5 * z * z - LN_SQRT_2PI + (w * (1.0 - w * (3.0 - w * (15.0 - 105.0 * w)))).ln();
    }
    // φ(z)·(1 − |z| Φ(z)/φ(z)), with Φ(z)/φ(z) = √(π/2)·erfcx(−z/√2).
    let r = -z * erfcx(-z * std::f64::consts::FRAC_1_SQRT_2) * SQRT_PI_OVER_2;
    -0.5 * z * z - LN_SQRT_2PI + (1.0 - r).ln()
}

fn check_mean_std(mean: &[f64], std: &[f64], out: &[f64]) -> Result<()> {
    if mean.len() != std.len() {
        return Err(Error::shape(
            "std",
            format_args!(
                "expected length {} (as mean), got {}",
                mean.len(),
                std.len()
            ),
        ));
    }
    if out.len() != mean.len() {
        return Err(Error::shape(
            "out",
            format_args!("expected length {}, got {}", mean.len(), out.len()),
        ));
    }
    check_finite("mean", mean)?;
    check_finite("std", std)?;
    if let Some(i) = std.iter().position(|&s| s < 0.0) {
        return Err(Error::invalid_value(
            "std",
            format_args!("must be >= 0, got {} at index {i}", std[i]),
        ));
    }
    Ok(())
}

fn check_scalar(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::NonFinite { name, index: 0 })
    }
}

/// Upper confidence bound `μ + √β σ`, into `out`.
///
/// ```
/// use intent_engine::belief::acquisition::ucb_into;
/// let mut out = [0.0; 2];
/// ucb_into(&[1.0, 2.0], &[0.5, 0.0], 4.0, &mut out)?;
/// assert_eq!(out, [2.0, 2.0]);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// Shape mismatch, non-finite input, negative `std` or `beta`.
pub fn ucb_into(mean: &[f64], std: &[f64], beta: f64, out: &mut [f64]) -> Result<()> {
    check_mean_std(mean, std, out)?;
    if !(beta.is_finite() && beta >= 0.0) {
        return Err(Error::invalid_value("beta", "must be >= 0 and finite"));
    }
    let b = beta.sqrt();
    for ((o, &m), &s) in out.iter_mut().zip(mean).zip(std) {
        *o = m + b * s;
    }
    Ok(())
}

/// Which Gaussian improvement-based acquisition to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Improvement {
    /// Expected improvement.
    Expected,
    /// Log expected improvement (stable).
    LogExpected,
    /// Probability of improvement.
    Probability,
}

/// EI, log EI or PI over a Gaussian posterior, with improvement over `best + xi` (maximisation).
/// Where `σ = 0` the values are the deterministic limits (`max(μ − best − ξ, 0)`, its log,
/// and `1[μ > best + ξ]`).
///
/// ```
/// use intent_engine::belief::acquisition::{improvement_into, Improvement};
/// let mut ei = [0.0];
/// improvement_into(Improvement::Expected, &[0.0], &[1.0], 0.0, 0.0, &mut ei)?;
/// assert!((ei[0] - 0.398_942_280_401_432_7).abs() < 1e-15);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// Shape mismatch, non-finite input, negative `std`.
pub fn improvement_into(
    kind: Improvement,
    mean: &[f64],
    std: &[f64],
    best: f64,
    xi: f64,
    out: &mut [f64],
) -> Result<()> {
    check_mean_std(mean, std, out)?;
    check_scalar("best", best)?;
    check_scalar("xi", xi)?;
    let t = best + xi;
    for ((o, &m), &s) in out.iter_mut().zip(mean).zip(std) {
        let d = m - t;
        let z = d / s;
        // |z| = ∞ (σ negligible next to the gap, e.g. d = -1e300, σ = 1e-300) is the σ → 0
        // limit: take that branch rather than forming ∞·0 = NaN.
        *o = if s > 0.0 && z.is_finite() {
            match kind {
                Improvement::Expected => s * (norm_pdf(z) + z * norm_cdf(z)).max(0.0),
                Improvement::LogExpected => s.ln() + log_h(z),
                Improvement::Probability => norm_cdf(z),
            }
        } else {
            match kind {
                Improvement::Expected => d.max(0.0),
                Improvement::LogExpected => {
                    if d > 0.0 {
                        d.ln()
                    } else {
                        f64::NEG_INFINITY
                    }
                }
                Improvement::Probability => {
                    if d > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                }
            }
        };
    }
    Ok(())
}

/// Thompson sampling over a Gaussian posterior with independent marginals: one draw
/// `μ + σ ε` per candidate, returns the argmax.
///
/// # Errors
/// Shape mismatch, non-finite input, negative `std`, empty input.
pub fn thompson_gaussian(mean: &[f64], std: &[f64], seed: u64) -> Result<usize> {
    check_mean_std(mean, std, mean)?;
    if mean.is_empty() {
        return Err(Error::shape("mean", "must not be empty"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best = (0, f64::NEG_INFINITY);
    for (i, (&m, &s)) in mean.iter().zip(std).enumerate() {
        let e: f64 = rng.sample(rand_distr::StandardNormal);
        let v = m + s * e;
        if v > best.1 {
            best = (i, v);
        }
    }
    Ok(best.0)
}

/// A weighted particle belief over utilities: `utilities` is `N × A` row-major, `weights`
/// length `N` (normalised here).
///
/// The utilities are checked for NaN and ±∞ by each query, in the same pass that reads them:
/// at 10,000 × 64 the matrix is 5 MB, and a separate check doubled the memory traffic of
/// UCB and EI.
#[derive(Clone, Copy, Debug)]
pub struct ParticleUtilities<'a> {
    utilities: &'a [f64],
    weights: &'a [f64],
    total: f64,
    n_actions: usize,
}

impl<'a> ParticleUtilities<'a> {
    /// Validates the shapes and weights and wraps the arrays (the utilities' values are
    /// checked by each query, see the type's documentation).
    ///
    /// # Errors
    /// [`Error::Shape`] if `utilities.len() != weights.len() · n_actions` or sizes are zero;
    /// invalid weights (negative, NaN, all zero, or a total too small to divide by).
    pub fn new(utilities: &'a [f64], weights: &'a [f64], n_actions: usize) -> Result<Self> {
        if n_actions == 0 {
            return Err(Error::shape("utilities", "need at least one action"));
        }
        let total = crate::belief::resample::check_weights(weights)?;
        if !(1.0 / total).is_finite() {
            return Err(Error::invalid_value(
                "weights",
                format_args!("the total weight {total:e} is too small to normalise by"),
            ));
        }
        if utilities.len() != weights.len() * n_actions {
            return Err(Error::shape(
                "utilities",
                format_args!(
                    "expected {} × {n_actions} values (particles × actions), got {}",
                    weights.len(),
                    utilities.len()
                ),
            ));
        }
        Ok(Self {
            utilities,
            weights,
            total,
            n_actions,
        })
    }

    /// Number of candidate actions.
    #[must_use]
    pub fn n_actions(&self) -> usize {
        self.n_actions
    }

    /// The error for a query whose result is not finite: a non-finite utility (named), or
    /// finite utilities too large for the sums.
    #[cold]
    fn not_finite(&self) -> Error {
        match crate::error::check_finite_slice("utilities", self.utilities) {
            Err(e) => e,
            Ok(()) => Error::Numerical {
                what: "particle acquisition",
                detail: "the utilities are too large: a weighted sum overflowed".into(),
            },
        }
    }

    /// `Ok` when every value of `out` is finite, else [`Self::not_finite`]. Each query's
    /// sums propagate a NaN or ±∞ utility into its output (also with a zero weight:
    /// 0 · ∞ is NaN), so checking `A` outputs checks all `N · A` inputs.
    fn check_result(&self, out: &[f64]) -> Result<()> {
        if out.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(self.not_finite())
        }
    }

    fn check_out(&self, out: &[f64]) -> Result<()> {
        if out.len() == self.n_actions {
            Ok(())
        } else {
            Err(Error::shape(
                "out",
                format_args!("expected length {}, got {}", self.n_actions, out.len()),
            ))
        }
    }

    /// Weighted mean and standard deviation of each action's utility.
    ///
    /// # Errors
    /// [`Error::Shape`] on output lengths other than `A`; [`Error::NonFinite`] for a NaN or
    /// infinite utility, [`Error::Numerical`] when finite utilities overflow the sums.
    pub fn moments_into(&self, mean: &mut [f64], std: &mut [f64]) -> Result<()> {
        self.check_out(mean)?;
        self.check_out(std)?;
        let a = self.n_actions;
        mean.fill(0.0);
        std.fill(0.0);
        let inv = 1.0 / self.total;
        // Row-wise accumulation of Σw u and Σw (u − c)² about the first particle's utilities
        // c (the matrix is read once, in order). The shift keeps the second moment from
        // overflowing (and cancelling) for large utilities with a small spread.
        let c = &self.utilities[..a];
        for (row, &w) in self.utilities.chunks_exact(a).zip(self.weights) {
            let w = w * inv;
            for ((m, s), (&u, &c)) in mean.iter_mut().zip(std.iter_mut()).zip(row.iter().zip(c)) {
                *m += w * u;
                let d = u - c;
                *s += w * d * d;
            }
        }
        self.check_result(mean)?;
        self.check_result(std)?;
        for ((m, s), &c) in mean.iter().zip(std.iter_mut()).zip(c) {
            let dm = m - c;
            *s = (*s - dm * dm).max(0.0).sqrt();
        }
        Ok(())
    }

    /// Expected utility `Σ wᵢ U_ia` of each action.
    ///
    /// # Errors
    /// Output length other than `A`; non-finite utilities (as [`Self::moments_into`]).
    pub fn expected_utility_into(&self, out: &mut [f64]) -> Result<()> {
        self.check_out(out)?;
        out.fill(0.0);
        let inv = 1.0 / self.total;
        for (row, &w) in self
            .utilities
            .chunks_exact(self.n_actions)
            .zip(self.weights)
        {
            let w = w * inv;
            for (o, &u) in out.iter_mut().zip(row) {
                *o += w * u;
            }
        }
        self.check_result(out)
    }

    /// `E_w[U_a] + √β sd_w[U_a]`; `scratch` has length `A`.
    ///
    /// # Errors
    /// Output length other than `A`, negative or non-finite `beta`; non-finite utilities (as
    /// [`Self::moments_into`]).
    pub fn ucb_into(&self, beta: f64, scratch: &mut [f64], out: &mut [f64]) -> Result<()> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(Error::invalid_value("beta", "must be >= 0 and finite"));
        }
        self.moments_into(out, scratch)?;
        let b = beta.sqrt();
        for (o, &s) in out.iter_mut().zip(scratch.iter()) {
            *o += b * s;
        }
        Ok(())
    }

    /// Expected improvement `Σ wᵢ max(U_ia − best − ξ, 0)` (exact under the particle belief).
    ///
    /// # Errors
    /// Output length other than `A`; non-finite `best`/`xi`, or `best + xi = −∞`;
    /// non-finite utilities (as [`Self::moments_into`]).
    pub fn expected_improvement_into(&self, best: f64, xi: f64, out: &mut [f64]) -> Result<()> {
        self.check_out(out)?;
        check_scalar("best", best)?;
        check_scalar("xi", xi)?;
        let t = best + xi;
        if t == f64::NEG_INFINITY {
            // Every improvement would be infinite (and read as a non-finite utility below).
            // `+∞` is fine: nothing improves on it, EI = 0.
            return Err(Error::invalid_value("xi", "best + xi overflows to -inf"));
        }
        out.fill(0.0);
        let inv = 1.0 / self.total;
        for (row, &w) in self
            .utilities
            .chunks_exact(self.n_actions)
            .zip(self.weights)
        {
            let w = w * inv;
            for (o, &u) in out.iter_mut().zip(row) {
                // + u · 0: zero for a finite utility (the sum is unchanged), NaN for a
                // non-finite one, which `max` alone would clamp away.
                *o += w * (u - t).max(0.0) + u * 0.0;
            }
        }
        self.check_result(out)
    }

    /// Probability of improvement `Σ wᵢ 1[U_ia > best + ξ]`.
    ///
    /// # Errors
    /// Output length other than `A`; non-finite `best`/`xi`; non-finite utilities (as
    /// [`Self::moments_into`]).
    pub fn probability_of_improvement_into(
        &self,
        best: f64,
        xi: f64,
        out: &mut [f64],
    ) -> Result<()> {
        self.check_out(out)?;
        check_scalar("best", best)?;
        check_scalar("xi", xi)?;
        let t = best + xi;
        out.fill(0.0);
        let inv = 1.0 / self.total;
        for (row, &w) in self
            .utilities
            .chunks_exact(self.n_actions)
            .zip(self.weights)
        {
            let w = w * inv;
            for (o, &u) in out.iter_mut().zip(row) {
                // + u · 0: zero for a finite utility, NaN for a non-finite one.
                *o += if u > t { w } else { 0.0 } + u * 0.0;
            }
        }
        self.check_result(out)
    }

    /// Thompson sampling: draws a particle `i ∝ wᵢ` and returns `argmax_a U_ia`.
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite utility anywhere in the matrix (one row is
    /// read, but a broken belief is reported, not sampled from).
    pub fn thompson(&self, seed: u64) -> Result<usize> {
        crate::error::check_finite_slice("utilities", self.utilities)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u: f64 = rng.random::<f64>() * self.total;
        let mut c = 0.0;
        let mut pick = self.weights.len() - 1;
        for (i, &w) in self.weights.iter().enumerate() {
            c += w;
            if u < c {
                pick = i;
                break;
            }
        }
        Ok(argmax(
            &self.utilities[pick * self.n_actions..(pick + 1) * self.n_actions],
        ))
    }
}

/// Index of the largest value (the first on ties; NaN never wins).
#[must_use]
pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

/// The belief-space action selector: the action maximising expected utility
/// `Σᵢ wᵢ U_ia` under the belief (weights may be particle weights or a goal posterior with
/// `U` given per goal). Writes the expected utilities to `out`, returns the best index.
///
/// ```
/// use intent_engine::belief::acquisition::select_action;
/// // Two goals (rows) with posterior [0.8, 0.2]; three robot actions (columns).
/// let u = [1.0, 0.0, 0.5,
///          0.0, 1.0, 0.5];
/// let mut eu = [0.0; 3];
/// assert_eq!(select_action(&u, &[0.8, 0.2], &mut eu)?, 0);
/// assert!((eu[2] - 0.5).abs() < 1e-15);
/// # Ok::<(), intent_engine::Error>(())
/// ```
///
/// # Errors
/// As [`ParticleUtilities::new`] with `A = out.len()`.
pub fn select_action(utilities: &[f64], weights: &[f64], out: &mut [f64]) -> Result<usize> {
    let p = ParticleUtilities::new(utilities, weights, out.len())?;
    p.expected_utility_into(out)?;
    Ok(argmax(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_h_far_lower_tail_is_finite_or_minus_infinity_never_nan() {
        // Regression (issue 9 battery): std = 1e-300 below the incumbent gave NaN.
        let mut prev = log_h(-1.0);
        for z in [-5.0, -40.0, -999.0, -1e3, -1001.0, -1e4, -1e8, -1e150] {
            let v = log_h(z);
            assert!(v.is_finite() && v < prev, "log_h({z}) = {v}");
            // h(z) ≈ φ(z)/z² in the far tail
            let approx = -0.5 * z * z - LN_SQRT_2PI - 2.0 * (-z).ln();
            if z <= -40.0 {
                assert!(
                    (v - approx).abs() <= 1e-12 * approx.abs() + 3.0 / (z * z),
                    "{z}"
                );
            }
            prev = v;
        }
        // the two forms agree where they meet
        let (a, b) = (log_h(-1e3 + 1e-9), log_h(-1e3 - 1e-9));
        assert!((a - b).abs() < 1e-9 * a.abs(), "{a} {b}");
        assert_eq!(log_h(-1e200), f64::NEG_INFINITY);
        assert_eq!(log_h(f64::MIN), f64::NEG_INFINITY);
        let mut out = [0.0];
        improvement_into(
            Improvement::LogExpected,
            &[0.0],
            &[1e-300],
            0.3,
            0.0,
            &mut out,
        )
        .expect("valid input");
        assert_eq!(out[0], f64::NEG_INFINITY);
    }

    #[test]
    fn log_ei_matches_the_exact_reference_to_1e_10_over_minus_40_to_40() {
        let text = include_str!("../../data/log_ei_reference.csv");
        let mut n = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with('z'))
        {
            let (z, v) = line.split_once(',').unwrap();
            let (z, v): (f64, f64) = (z.parse().unwrap(), v.parse().unwrap());
            let got = log_h(z);
            assert!(
                (got - v).abs() <= 1e-10 * v.abs().max(1.0),
                "z={z}: {got} vs {v}"
            );
            // Through the public API with a scale: log EI(μ, σ) = log σ + log h((μ − best)/σ).
            let mut out = [0.0];
            improvement_into(
                Improvement::LogExpected,
                &[2.0 * z + 1.0],
                &[2.0],
                1.0,
                0.0,
                &mut out,
            )
            .unwrap();
            assert!((out[0] - (v + 2f64.ln())).abs() <= 1e-10 * v.abs().max(1.0));
            n += 1;
        }
        assert_eq!(n, 801);
    }

    #[test]
    fn ei_and_pi_agree_with_direct_formulas_and_log_ei() {
        let mu = [-1.0, 0.0, 0.3, 2.0];
        let sd = [0.5, 1.0, 0.0, 2.0];
        let (mut ei, mut lei, mut pi) = ([0.0; 4], [0.0; 4], [0.0; 4]);
        improvement_into(Improvement::Expected, &mu, &sd, 0.1, 0.0, &mut ei).unwrap();
        improvement_into(Improvement::LogExpected, &mu, &sd, 0.1, 0.0, &mut lei).unwrap();
        improvement_into(Improvement::Probability, &mu, &sd, 0.1, 0.0, &mut pi).unwrap();
        for i in 0..4 {
            assert!((ei[i].ln() - lei[i]).abs() < 1e-12, "{i}");
        }
        assert!((ei[2] - 0.2).abs() < 1e-15 && pi[2] == 1.0);
        assert!((pi[1] - norm_cdf(-0.1)).abs() < 1e-15);
        assert!(improvement_into(
            Improvement::Expected,
            &[f64::NAN],
            &[1.0],
            0.0,
            0.0,
            &mut [0.0]
        )
        .is_err());
        assert!(ucb_into(&[1.0], &[-1.0], 1.0, &mut [0.0]).is_err());
    }

    #[test]
    fn particle_acquisitions_are_weighted_reductions() {
        // Two particles, weights 0.25/0.75, three actions.
        let u = [1.0, 0.0, 2.0, 3.0, 1.0, 0.0];
        let w = [1.0, 3.0];
        let p = ParticleUtilities::new(&u, &w, 3).unwrap();
        let (mut m, mut s) = ([0.0; 3], [0.0; 3]);
        p.moments_into(&mut m, &mut s).unwrap();
        assert_eq!(m, [2.5, 0.75, 0.5]);
        let mut ei = [0.0; 3];
        p.expected_improvement_into(0.5, 0.0, &mut ei).unwrap();
        assert_eq!(ei, [0.25 * 0.5 + 0.75 * 2.5, 0.75 * 0.5, 0.25 * 1.5]);
        let mut pi = [0.0; 3];
        p.probability_of_improvement_into(0.5, 0.0, &mut pi)
            .unwrap();
        assert_eq!(pi, [1.0, 0.75, 0.25]);
        let picks: Vec<usize> = (0..400).map(|s| p.thompson(s).unwrap()).collect();
        let frac0 = picks.iter().filter(|&&a| a == 0).count() as f64 / 400.0;
        assert!((frac0 - 0.75).abs() < 0.08, "{frac0}");
        assert!(ParticleUtilities::new(&u, &[0.0, 0.0], 3).is_err());
        assert!(ParticleUtilities::new(&u[..5], &w, 3).is_err());
    }

    #[test]
    fn every_particle_query_reports_a_non_finite_utility_anywhere() {
        // The queries check the utilities in their own pass: a NaN or ±∞ in any cell, also
        // in a row of weight zero and where the improvement clamp would hide it, is an error
        // naming the utilities, never a finite answer.
        let w = [0.0, 1.0, 3.0];
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for cell in 0..6 {
                let mut u = [1.0, 0.0, 2.0, 3.0, 1.0, 0.0];
                u[cell] = bad;
                let p = ParticleUtilities::new(&u, &w, 2).expect("only shapes and weights");
                let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
                let names = |r: Result<()>| match r {
                    Err(Error::NonFinite { name, .. }) => assert_eq!(name, "utilities"),
                    other => panic!("{bad} at {cell}: {other:?}"),
                };
                names(p.moments_into(&mut a, &mut b));
                names(p.ucb_into(2.0, &mut b, &mut a));
                names(p.expected_utility_into(&mut a));
                names(p.expected_improvement_into(5.0, 0.0, &mut a));
                names(p.probability_of_improvement_into(5.0, 0.0, &mut a));
                names(p.thompson(1).map(|_| ()));
                names(select_action(&u, &w, &mut a).map(|_| ()));
            }
        }
        // Extreme but finite thresholds: u − t rounding to −∞ improves by nothing; best + xi
        // overflowing to +∞ leaves nothing to improve; to −∞ it is the caller's error.
        let p = ParticleUtilities::new(&[-1e308, 1.0], &[0.0, 1.0], 1).unwrap();
        let mut ei = [1.0];
        p.expected_improvement_into(1e308, 0.0, &mut ei).unwrap();
        assert_eq!(ei, [0.0]);
        p.expected_improvement_into(1e308, 1e308, &mut ei).unwrap();
        assert_eq!(ei, [0.0]);
        assert!(matches!(
            p.expected_improvement_into(-1e308, -1e308, &mut ei),
            Err(Error::InvalidValue { name: "xi", .. })
        ));
        // Large utilities with a small spread: exact moments, no overflow of Σw u².
        let u = [1e160, -3e200, 1e160, -3e200];
        let p = ParticleUtilities::new(&u, &[1.0, 3.0], 2).unwrap();
        let (mut m, mut sd) = ([0.0; 2], [0.0; 2]);
        p.moments_into(&mut m, &mut sd).unwrap();
        assert_eq!((m, sd), ([1e160, -3e200], [0.0, 0.0]));
        // A spread too large for the second moment: an error, not a wrong spread.
        let u = [1e200, 0.0, -1e200, 1.0];
        let p = ParticleUtilities::new(&u, &[1.0, 1.0], 2).unwrap();
        assert!(matches!(
            p.moments_into(&mut m, &mut sd),
            Err(Error::Numerical { .. })
        ));
        // A total weight whose reciprocal overflows is the weights' error.
        assert!(matches!(
            ParticleUtilities::new(&[1.0], &[5e-324], 1),
            Err(Error::InvalidValue {
                name: "weights",
                ..
            })
        ));
    }
}
