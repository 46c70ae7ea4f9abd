//! Prediction of the person's positions over the planning horizon.
//!
//! The particle belief is summarised per goal — the goal's posterior weight `w_g` and the
//! weighted mean and covariance of `(x, y, vx, vy)` under it (Rao–Blackwellised goal
//! probabilities make this one pass over the particles) — and each goal's Gaussian is carried
//! through the motion model's deterministic part with its Jacobian (an extended-Kalman
//! prediction), adding the model's velocity noise. The result is a Gaussian mixture per stage:
//! per-goal means and covariances (for chance constraints), the mixture mean and covariance,
//! and sampled trajectories. Cost: O(N·K) for the moments plus O(K·H) small matrix products,
//! instead of simulating every particle over the horizon; no allocation after set-up.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::belief::{Goal, GoalModel, GoalModelSettings, GoalVelocity, ParticleFilter};
use crate::linalg::simd::{self, SimdTask};

/// Per-goal Gaussian predictions and their mixture, in preallocated buffers.
#[derive(Clone, Debug)]
pub(crate) struct Predictor {
    pub(crate) k: usize,
    pub(crate) h: usize,
    /// Goal posterior weights `(K,)`.
    pub(crate) w: Vec<f64>,
    mean0: Vec<[f64; 4]>,
    cov0: Vec<[f64; 16]>,
    /// Per goal and stage `k = 1..=H`: state mean `(K·H)` and covariance.
    pub(crate) means: Vec<[f64; 4]>,
    pub(crate) covs: Vec<[f64; 16]>,
    /// Mixture position mean `(H, 2)` and covariance `(H, 2, 2)`, row-major.
    pub(crate) mix_mean: Vec<f64>,
    pub(crate) mix_cov: Vec<f64>,
    /// Sampled position trajectories `(S, H, 2)`.
    pub(crate) samples: Vec<f64>,
}

impl Predictor {
    pub(crate) fn new(k: usize, h: usize, s: usize) -> Self {
        Self {
            k,
            h,
            w: vec![0.0; k],
            mean0: vec![[0.0; 4]; k],
            cov0: vec![[0.0; 16]; k],
            means: vec![[0.0; 4]; k * h],
            covs: vec![[0.0; 16]; k * h],
            mix_mean: vec![0.0; 2 * h],
            mix_cov: vec![0.0; 4 * h],
            samples: vec![0.0; s * h * 2],
        }
    }

    /// Weighted per-goal moments of the particle belief.
    pub(crate) fn moments(&mut self, pf: &ParticleFilter<GoalModel>) {
        let k = self.k;
        self.w.fill(0.0);
        // Raw sums: Σ w q, Σ w q x, Σ w q x xᵀ (upper triangle), per goal.
        let mut m1 = [[0.0; 4]; MAX_GOALS_INLINE];
        let mut m2 = [[0.0; 10]; MAX_GOALS_INLINE];
        let (mut g1, mut g2, mut gw) = ([0.0; 4], [0.0; 10], 0.0);
        for (p, w) in pf.chunks() {
            let comps = [
                p.component(0),
                p.component(1),
                p.component(2),
                p.component(3),
            ];
            for g in 0..k {
                let (s0, s1, s2) = simd::dispatch(GoalMoments {
                    x: comps,
                    q: p.component(4 + g),
                    w,
                });
                self.w[g] += s0;
                if g < MAX_GOALS_INLINE {
                    add(&mut m1[g], &s1);
                    add(&mut m2[g], &s2);
                } else {
                    // Goals past the inline capacity share the whole belief's moments.
                    gw += s0;
                    add(&mut g1, &s1);
                    add(&mut g2, &s2);
                }
            }
        }
        let total: f64 = self.w.iter().sum();
        let norm = if total > 0.0 { 1.0 / total } else { 0.0 };
        for g in 0..k {
            let (s0, s1, s2) = if g < MAX_GOALS_INLINE {
                (self.w[g], m1[g], m2[g])
            } else {
                (gw, g1, g2)
            };
            let inv = if s0 > 0.0 { 1.0 / s0 } else { 0.0 };
            let mean = s1.map(|v| v * inv);
            let mut cov = [0.0; 16];
            let mut t = 0;
            for a in 0..4 {
                for b in a..4 {
                    let c = s2[t] * inv - mean[a] * mean[b];
                    cov[4 * a + b] = c;
                    cov[4 * b + a] = c;
                    t += 1;
                }
            }
            for a in 0..4 {
                cov[5 * a] = cov[5 * a].max(1e-12);
            }
            self.mean0[g] = mean;
            self.cov0[g] = cov;
            self.w[g] *= norm;
        }
        if total <= 0.0 {
            self.w.fill(1.0 / k as f64);
        }
    }

    /// Propagates every goal's Gaussian `lead` seconds (the time since the belief's last
    /// step) and then `H` steps of `plan_dt`, and forms the mixture. `residual(x, y)` is an
    /// extra velocity at a position (the online GP correction; zero without one).
    pub(crate) fn propagate(
        &mut self,
        goals: &[Goal],
        s: &GoalModelSettings,
        lead: f64,
        plan_dt: f64,
        mut residual: impl FnMut(f64, f64) -> [f64; 2],
    ) {
        let h = self.h;
        for (g, goal) in goals.iter().enumerate().take(self.k) {
            let (mut x, mut p) = (self.mean0[g], self.cov0[g]);
            if lead > 0.0 {
                let n = (lead / plan_dt).ceil().clamp(1.0, 64.0) as usize;
                let dt = lead / n as f64;
                for _ in 0..n {
                    ekf_step(goal, s, dt, [0.0; 2], &mut x, &mut p);
                }
            }
            for t in 0..h {
                let r = residual(x[0], x[1]);
                ekf_step(goal, s, plan_dt, r, &mut x, &mut p);
                self.means[g * h + t] = x;
                self.covs[g * h + t] = p;
            }
        }
        for t in 0..h {
            let (mut mx, mut my) = (0.0, 0.0);
            for g in 0..self.k {
                let m = &self.means[g * h + t];
                mx += self.w[g] * m[0];
                my += self.w[g] * m[1];
            }
            let (mut cxx, mut cxy, mut cyy) = (0.0, 0.0, 0.0);
            for g in 0..self.k {
                let (m, c) = (&self.means[g * h + t], &self.covs[g * h + t]);
                let (dx, dy) = (m[0] - mx, m[1] - my);
                cxx += self.w[g] * (c[0] + dx * dx);
                cxy += self.w[g] * (c[1] + dx * dy);
                cyy += self.w[g] * (c[5] + dy * dy);
            }
            self.mix_mean[2 * t] = mx;
            self.mix_mean[2 * t + 1] = my;
            self.mix_cov[4 * t..4 * t + 4].copy_from_slice(&[cxx, cxy, cxy, cyy]);
        }
    }

    /// Draws the sampled trajectories: a goal per trajectory by systematic selection on the
    /// goal weights, then one standard-normal pair scaled by each stage's Cholesky factor
    /// (trajectories stay smooth in time).
    pub(crate) fn sample(&mut self, seed: u64) {
        let (h, k) = (self.h, self.k);
        let s = self.samples.len() / (2 * h).max(1);
        if s == 0 {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let u0: f64 = rng.random::<f64>() / s as f64;
        let (mut g, mut cum) = (0, self.w[0]);
        for j in 0..s {
            let u = u0 + j as f64 / s as f64;
            while u > cum && g + 1 < k {
                g += 1;
                cum += self.w[g];
            }
            let (z1, z2) = normal_pair(&mut rng);
            for t in 0..h {
                let (m, c) = (&self.means[g * h + t], &self.covs[g * h + t]);
                let l11 = c[0].max(0.0).sqrt();
                let l21 = if l11 > 0.0 { c[1] / l11 } else { 0.0 };
                let l22 = (c[5] - l21 * l21).max(0.0).sqrt();
                let o = 2 * (j * h + t);
                self.samples[o] = m[0] + l11 * z1;
                self.samples[o + 1] = m[1] + l21 * z1 + l22 * z2;
            }
        }
    }
}

const MAX_GOALS_INLINE: usize = 16;

/// One chunk's raw moments of one goal: `Σ w q`, `Σ w q x` and the upper triangle of
/// `Σ w q x xᵀ` over the particles' states `x = (px, py, vx, vy)`.
struct GoalMoments<'a> {
    x: [&'a [f64]; 4],
    q: &'a [f64],
    w: &'a [f64],
}

impl SimdTask for GoalMoments<'_> {
    type Output = (f64, [f64; 4], [f64; 10]);
    /// Eight lanes of partial sums (15 accumulators, one register each with AVX-512): the
    /// element-by-element form is a serial reduction that LLVM leaves scalar, and it was 12 %
    /// of a pipeline step.
    #[inline(always)]
    fn run<const FMA: bool>(self) -> Self::Output {
        const L: usize = 8;
        let GoalMoments { x, q, w } = self;
        let mut a0 = [0.0; L];
        let mut a1 = [[0.0; L]; 4];
        let mut a2 = [[0.0; L]; 10];
        let n = w
            .len()
            .min(q.len())
            .min(x.iter().map(|c| c.len()).min().unwrap_or(0));
        // Whole blocks, then the tail zero-padded into one more block (zero weight adds 0).
        let mut i0 = 0;
        while i0 < n {
            let len = (n - i0).min(L);
            let (mut wq, mut xs) = ([0.0; L], [[0.0; L]; 4]);
            for l in 0..len {
                wq[l] = w[i0 + l] * q[i0 + l];
                for a in 0..4 {
                    xs[a][l] = x[a][i0 + l];
                }
            }
            // Each statement is one operation on eight lanes.
            for l in 0..L {
                a0[l] += wq[l];
            }
            let mut t = 0;
            for a in 0..4 {
                let wa: [f64; L] = std::array::from_fn(|l| wq[l] * xs[a][l]);
                for l in 0..L {
                    a1[a][l] += wa[l];
                }
                for b in a..4 {
                    for l in 0..L {
                        a2[t][l] = simd::mul_add::<FMA>(wa[l], xs[b][l], a2[t][l]);
                    }
                    t += 1;
                }
            }
            i0 += len;
        }
        let sum = |a: &[f64; L]| a.iter().sum::<f64>();
        (sum(&a0), a1.each_ref().map(sum), a2.each_ref().map(sum))
    }
}

fn add<const N: usize>(a: &mut [f64; N], b: &[f64; N]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

fn normal_pair(rng: &mut ChaCha8Rng) -> (f64, f64) {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    let r = (-2.0 * u1.ln()).sqrt();
    let th = std::f64::consts::TAU * u2;
    (r * th.cos(), r * th.sin())
}

/// The target velocity and its Jacobians with respect to position and velocity (row-major
/// 2×2), for the model's velocity kinds.
fn target_jac(goal: &Goal, s: &GoalModelSettings, x: &[f64; 4]) -> ([f64; 2], [f64; 4], [f64; 4]) {
    let (dx, dy) = (goal.x - x[0], goal.y - x[1]);
    match s.velocity {
        GoalVelocity::Linear { gain } => {
            ([gain * dx, gain * dy], [-gain, 0.0, 0.0, -gain], [0.0; 4])
        }
        GoalVelocity::ConstantSpeed { slow_radius } | GoalVelocity::Heading { slow_radius } => {
            let d = (dx * dx + dy * dy).sqrt().max(1e-9);
            let (ux, uy) = (dx / d, dy / d);
            let z = (d - goal.radius) / slow_radius;
            let (ramp, dramp) = if z <= 0.0 {
                (0.0, 0.0)
            } else if z < 1.0 {
                (z, 1.0 / slow_radius)
            } else {
                (1.0, 0.0)
            };
            let heading = matches!(s.velocity, GoalVelocity::Heading { .. });
            let sp = if heading {
                (x[2] * x[2] + x[3] * x[3]).sqrt()
            } else {
                s.speed
            };
            // t = sp·ramp·u; ∂u/∂p = −(I − uuᵀ)/d, ∂ramp/∂p = −ramp'·uᵀ.
            let (a, b) = (sp * ramp / d, sp * dramp);
            let jp = [
                -a * (1.0 - ux * ux) - b * ux * ux,
                a * ux * uy - b * ux * uy,
                a * ux * uy - b * ux * uy,
                -a * (1.0 - uy * uy) - b * uy * uy,
            ];
            let jv = if heading && sp > 1e-12 {
                let (wx, wy) = (x[2] / sp, x[3] / sp);
                [
                    ramp * ux * wx,
                    ramp * ux * wy,
                    ramp * uy * wx,
                    ramp * uy * wy,
                ]
            } else {
                [0.0; 4]
            };
            ([sp * ramp * ux, sp * ramp * uy], jp, jv)
        }
    }
}

/// `x ← f(x)`, `P ← F P Fᵀ + Q` for one model step of length `dt` with an extra velocity `r`:
/// `v' = v + a (t(x) − v)`, `p' = p + dt (v' + r)`, `a = min(rationality·dt, 1)`, with the
/// analytic Jacobian `F` and the model's noise `Q = σ² dt [[dt² I, dt I], [dt I, I]]`.
fn ekf_step(
    goal: &Goal,
    s: &GoalModelSettings,
    dt: f64,
    r: [f64; 2],
    x: &mut [f64; 4],
    p: &mut [f64; 16],
) {
    let a = (s.rationality * dt).min(1.0);
    let (t, jp, jv) = target_jac(goal, s, x);
    let vx = x[2] + a * (t[0] - x[2]);
    let vy = x[3] + a * (t[1] - x[3]);
    // ∂v'/∂p = a·Jp, ∂v'/∂v = (1 − a) I + a·Jv; ∂p'/∂· = [I, 0] + dt·∂v'/∂·.
    let dvp = jp.map(|j| a * j);
    let dvv = [
        (1.0 - a) + a * jv[0],
        a * jv[1],
        a * jv[2],
        (1.0 - a) + a * jv[3],
    ];
    let fj = [
        1.0 + dt * dvp[0],
        dt * dvp[1],
        dt * dvv[0],
        dt * dvv[1],
        dt * dvp[2],
        1.0 + dt * dvp[3],
        dt * dvv[2],
        dt * dvv[3],
        dvp[0],
        dvp[1],
        dvv[0],
        dvv[1],
        dvp[2],
        dvp[3],
        dvv[2],
        dvv[3],
    ];
    *x = [x[0] + dt * (vx + r[0]), x[1] + dt * (vy + r[1]), vx, vy];
    // FP, then (FP)Fᵀ.
    let mut fp = [0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            let mut acc = 0.0;
            for l in 0..4 {
                acc += fj[4 * i + l] * p[4 * l + j];
            }
            fp[4 * i + j] = acc;
        }
    }
    let q = s.velocity_noise * s.velocity_noise * dt;
    for i in 0..4 {
        for j in i..4 {
            let mut acc = 0.0;
            for l in 0..4 {
                acc += fp[4 * i + l] * fj[4 * j + l];
            }
            let noise = match (i < 2, j < 2, i % 2 == j % 2) {
                (_, _, false) => 0.0,
                (true, true, _) => q * dt * dt,
                (true, false, _) | (false, true, _) => q * dt,
                (false, false, _) => q,
            };
            p[4 * i + j] = acc + noise;
            p[4 * j + i] = acc + noise;
        }
    }
}

/// Standard-normal quantile (Acklam's rational approximation refined by one Halley step:
/// relative error below 1e-12 on (0, 1)).
pub(crate) fn norm_ppf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let lo = 0.02425;
    let x = if p < lo {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - lo {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let e = crate::belief::acquisition::norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goal_moments_equal_the_direct_sums_at_every_simd_level() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for n in [0, 1, 7, 8, 9, 63, 1024] {
            let col = |rng: &mut ChaCha8Rng, s: f64| -> Vec<f64> {
                (0..n).map(|_| s * (rng.random::<f64>() - 0.3)).collect()
            };
            let x: Vec<Vec<f64>> = (0..4).map(|a| col(&mut rng, 1.0 + a as f64)).collect();
            let (q, w) = (col(&mut rng, 1.0), col(&mut rng, 1.0));
            let (mut e0, mut e1, mut e2) = (0.0, [0.0; 4], [0.0; 10]);
            for i in 0..n {
                let wq = w[i] * q[i];
                e0 += wq;
                let mut t = 0;
                for a in 0..4 {
                    e1[a] += wq * x[a][i];
                    for b in a..4 {
                        e2[t] += wq * x[a][i] * x[b][i];
                        t += 1;
                    }
                }
            }
            for level in simd::SimdLevel::available() {
                let (s0, s1, s2) = simd::dispatch_at(
                    level,
                    GoalMoments {
                        x: [&x[0], &x[1], &x[2], &x[3]],
                        q: &q,
                        w: &w,
                    },
                );
                let tol = 1e-12 * (n as f64 + 1.0) * 20.0;
                assert!((s0 - e0).abs() <= tol, "n {n} {level:?}: {s0} vs {e0}");
                for (a, b) in s1.iter().zip(&e1).chain(s2.iter().zip(&e2)) {
                    assert!((a - b).abs() <= tol, "n {n} {level:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn ppf_inverts_cdf() {
        for &p in &[
            1e-10,
            1e-4,
            0.01,
            0.05,
            0.3,
            0.5,
            0.7,
            0.95,
            0.999,
            1.0 - 1e-9,
        ] {
            let x = norm_ppf(p);
            let back = crate::belief::acquisition::norm_cdf(x);
            assert!((back - p).abs() <= 1e-12 * p.max(1e-3), "{p} {x} {back}");
        }
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
    }

    #[test]
    fn analytic_jacobian_matches_finite_differences() {
        let goal = Goal {
            x: 2.0,
            y: 1.0,
            radius: 0.2,
        };
        for velocity in [
            GoalVelocity::ConstantSpeed { slow_radius: 0.5 },
            GoalVelocity::Heading { slow_radius: 0.5 },
            GoalVelocity::Linear { gain: 0.7 },
        ] {
            let s = GoalModelSettings {
                velocity,
                ..GoalModelSettings::default()
            };
            // Far from the goal and inside the slow-down ramp.
            for x in [[0.0, 0.0, 0.8, 0.3], [1.6, 0.9, 0.4, -0.2]] {
                let (_, jp, jv) = target_jac(&goal, &s, &x);
                for j in 0..4 {
                    let h = 1e-6;
                    let (mut xp, mut xm) = (x, x);
                    xp[j] += h;
                    xm[j] -= h;
                    let (tp, tm) = (target_jac(&goal, &s, &xp).0, target_jac(&goal, &s, &xm).0);
                    for i in 0..2 {
                        let fd = (tp[i] - tm[i]) / (2.0 * h);
                        let an = if j < 2 {
                            jp[2 * i + j]
                        } else {
                            jv[2 * i + j - 2]
                        };
                        assert!(
                            (fd - an).abs() < 1e-6,
                            "{velocity:?} {x:?} ∂t{i}/∂x{j}: {fd} vs {an}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn ekf_matches_monte_carlo_for_straight_walk() {
        // Far from the goal the target velocity is nearly constant: the EKF mean follows the
        // straight line and the position variance grows like the integrated velocity noise.
        let goal = Goal::point(100.0, 0.0);
        let s = GoalModelSettings::default();
        let mut x = [0.0, 0.0, 1.2, 0.0];
        let mut p = [0.0; 16];
        for _ in 0..10 {
            ekf_step(&goal, &s, 0.1, [0.0; 2], &mut x, &mut p);
        }
        assert!((x[0] - 1.2).abs() < 1e-6 && x[1].abs() < 1e-9, "{x:?}");
        assert!(p[5] > 0.0 && p[0] > 0.0 && p[0] < 0.5 * 0.5 * 1.0, "{p:?}");
    }
}
