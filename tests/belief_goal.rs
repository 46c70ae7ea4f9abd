//! The Rao-Blackwellised goal posterior against the exact one: with the linear goal-directed
//! velocity model each goal gives a linear-Gaussian model, so per-goal Kalman marginal
//! likelihoods give the posterior in closed form.

use intent_engine::belief::{
    FilterSettings, Goal, GoalInference, GoalModel, GoalModelSettings, GoalVelocity, ParticleFilter,
};
use intent_engine::Par;
use nalgebra::{Matrix2, Vector2};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Three point goals around the origin (the simulation tests' scene).
fn three_goals() -> [Goal; 3] {
    [
        Goal::point(5.0, 0.0),
        Goal::point(0.0, 5.0),
        Goal::point(-3.0, -3.0),
    ]
}

fn settings() -> GoalModelSettings {
    GoalModelSettings {
        dt: 0.2,
        speed: 1.0,
        rationality: 0.8,
        velocity_noise: 0.6,
        obs_noise: 0.15,
        switch_prob: 0.0,
        velocity: GoalVelocity::Linear { gain: 0.3 },
        init_mean: [0.0, 0.0, 0.0, 0.0],
        init_std: [0.1, 0.1, 0.5, 0.5],
        guided: false,
    }
}

/// Per axis the model is `s' = A s + b·g + w`, `s = (p, v)`.
fn axis_model(s: &GoalModelSettings) -> (Matrix2<f64>, Vector2<f64>, Matrix2<f64>) {
    let GoalVelocity::Linear { gain } = s.velocity else {
        unreachable!()
    };
    let a = s.rationality * s.dt;
    let dt = s.dt;
    let sd2 = s.velocity_noise.powi(2) * dt;
    let am = Matrix2::new(1.0 - dt * a * gain, dt * (1.0 - a), -a * gain, 1.0 - a);
    let b = Vector2::new(dt * a * gain, a * gain);
    let q = Matrix2::new(dt * dt, dt, dt, 1.0) * sd2;
    (am, b, q)
}

/// Exact log marginal likelihood of the observations under goal `g` (both axes independent).
fn kalman_loglik(s: &GoalModelSettings, g: Goal, zs: &[[f64; 2]]) -> f64 {
    let (am, b, q) = axis_model(s);
    let r = s.obs_noise.powi(2);
    let mut ll = 0.0;
    for (axis, goal) in [(0, g.x), (1, g.y)] {
        let mut m = Vector2::new(s.init_mean[axis], s.init_mean[axis + 2]);
        let mut p = Matrix2::new(
            s.init_std[axis].powi(2),
            0.0,
            0.0,
            s.init_std[axis + 2].powi(2),
        );
        for z in zs {
            m = am * m + b * goal;
            p = am * p * am.transpose() + q;
            let sv = p[(0, 0)] + r;
            let e = z[axis] - m[0];
            ll += -0.5 * ((2.0 * std::f64::consts::PI * sv).ln() + e * e / sv);
            let k = Vector2::new(p[(0, 0)], p[(1, 0)]) / sv;
            m += k * e;
            p -= k * Vector2::new(p[(0, 0)], p[(0, 1)]).transpose();
        }
    }
    ll
}

#[test]
fn goal_posterior_within_tv_002_of_the_exact_posterior_at_n_10000() {
    check_against_exact(None);
}

/// With a goal prior the exact posterior is `prior_g · exp(ll_g)` normalised, and log Z is
/// `log Σ_g prior_g exp(ll_g)`. The prior puts little mass on the true goal (0), so the
/// posterior moves from the prior as observations accumulate.
#[test]
fn goal_posterior_with_a_prior_within_tv_002_of_the_exact_posterior() {
    check_against_exact(Some([0.15, 0.6, 0.25]));
}

fn check_against_exact(prior: Option<[f64; 3]>) {
    let s = settings();
    let pr = prior.unwrap_or([1.0 / 3.0; 3]);
    let goals = [
        Goal::point(4.0, 1.0),
        Goal::point(3.0, 3.0),
        Goal::point(-2.0, 3.0),
    ];
    // Simulate a walk toward goal 0 from the model itself.
    let (am, b, q) = axis_model(&s);
    let lq = q.cholesky().map_or(Matrix2::zeros(), |c| c.l());
    let _ = lq;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let sd = s.velocity_noise * s.dt.sqrt();
    let mut st = [Vector2::new(0.0, 0.0), Vector2::new(0.0, 0.0)];
    let mut zs = Vec::new();
    for _ in 0..12 {
        let mut z = [0.0; 2];
        for (axis, goal) in [(0, goals[0].x), (1, goals[0].y)] {
            let e: f64 = StandardNormal.sample(&mut rng);
            st[axis] = am * st[axis] + b * goal + Vector2::new(s.dt, 1.0) * (sd * e);
            let n: f64 = StandardNormal.sample(&mut rng);
            z[axis] = st[axis][0] + s.obs_noise * n;
        }
        zs.push(z);
    }
    for t in [4, 8, 12] {
        let ll: Vec<f64> = goals
            .iter()
            .zip(pr)
            .map(|(&g, p)| kalman_loglik(&s, g, &zs[..t]) + p.ln())
            .collect();
        let mx = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tot: f64 = ll.iter().map(|l| (l - mx).exp()).sum();
        let exact: Vec<f64> = ll.iter().map(|l| (l - mx).exp() / tot).collect();
        // Both proposals target the same posterior.
        for guided in [false, true] {
            let mut m = GoalModel::new(&goals, s.clone())
                .unwrap()
                .with_guided(guided);
            if let Some(p) = prior {
                m = m.with_prior(&p).unwrap();
            }
            let mut pf = ParticleFilter::new(
                m,
                FilterSettings {
                    n_particles: 10_000,
                    seed: 3,
                    par: Par::Rayon(2),
                    ..Default::default()
                },
            )
            .unwrap();
            let mut lz_exact = f64::NEG_INFINITY;
            for z in &zs[..t] {
                pf.step(&z[..]).unwrap();
            }
            // log Z of the mixture: log Σ_g prior_g exp(ll_g) (ll includes log prior_g).
            lz_exact = lz_exact.max(mx + tot.ln());
            let mut post = vec![0.0; 3];
            intent_engine::belief::goal_probabilities_into(&pf, &mut post);
            let tv: f64 = 0.5
                * post
                    .iter()
                    .zip(&exact)
                    .map(|(a, b)| (a - b).abs())
                    .sum::<f64>();
            eprintln!(
            "guided {guided} t={t}: exact {exact:?} pf {post:?} tv {tv:.4}; log Z {} vs {lz_exact}",
            pf.log_z()
        );
            assert!(
                tv < 0.02,
                "guided {guided} t={t}: TV {tv} (exact {exact:?}, pf {post:?})"
            );
            assert!(
                (pf.log_z() - lz_exact).abs() < 0.2,
                "guided {guided}: log Z {} vs {lz_exact}",
                pf.log_z()
            );
        }
    }
}

/// A switching person draws the new goal from the prior, so with no observations the goal
/// posterior stays at the prior (switching to a uniform draw would pull it to 1/3 each:
/// after 25 steps at switch probability 0.2 only 0.4 % of the prior's shape would be left).
#[test]
fn switching_keeps_the_goal_prior_stationary() {
    let goals = three_goals();
    let prior = [0.6, 0.3, 0.1];
    let s = GoalModelSettings {
        dt: 0.1,
        switch_prob: 0.2,
        ..Default::default()
    };
    let m = GoalModel::new(&goals, s)
        .unwrap()
        .with_prior(&prior)
        .unwrap();
    let f = FilterSettings {
        n_particles: 20_000,
        seed: 9,
        ..Default::default()
    };
    let mut gi = GoalInference::from_model(m, f).unwrap();
    gi.update([0.0, 0.0]).unwrap();
    for _ in 0..25 {
        gi.predict();
    }
    let p = gi.goal_probabilities();
    for (a, b) in p.iter().zip(prior) {
        assert!((a - b).abs() < 0.03, "{p:?} vs prior {prior:?}");
    }
}

/// Adding a goal scales the prior like the particles' goal probabilities (the old goals keep
/// their proportions); removing one renormalises the rest.
#[test]
fn goal_edits_keep_the_prior_proportions() {
    let goals = three_goals();
    let m = GoalModel::new(&goals, GoalModelSettings::default())
        .unwrap()
        .with_prior(&[6.0, 3.0, 1.0])
        .unwrap();
    let mut gi = GoalInference::from_model(m, FilterSettings::default()).unwrap();
    gi.update([0.0, 0.0]).unwrap();
    gi.add_goal(Goal::point(1.0, 1.0)).unwrap();
    let close = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
    let p = gi.filter().model().prior().to_vec();
    assert!(close(&p, &[0.45, 0.225, 0.075, 0.25]), "{p:?}");
    gi.remove_goal(0).unwrap();
    let p = gi.filter().model().prior().to_vec();
    assert!(
        close(&p, &[0.225 / 0.55, 0.075 / 0.55, 0.25 / 0.55]),
        "{p:?}"
    );
    // A uniform prior stays exactly uniform.
    let mut gi = GoalInference::new(
        &goals,
        GoalModelSettings::default(),
        FilterSettings::default(),
    )
    .unwrap();
    gi.add_goal(Goal::point(1.0, 1.0)).unwrap();
    assert_eq!(gi.filter().model().prior(), &[0.25; 4]);
}

/// The fused goal step (blocks of 64 and 8 particles, then single particles) gives the same
/// result at every SIMD level, on a size that leaves ragged blocks in the last chunk. No
/// resampling (threshold 0), so rounding differences cannot flip an offspring index.
#[test]
fn fused_goal_step_agrees_across_simd_levels_and_ragged_blocks() {
    use intent_engine::linalg::simd::SimdLevel;
    let goals = three_goals();
    let run = |level| {
        SimdLevel::set_override(Some(level));
        let mut gi = GoalInference::new(
            &goals,
            GoalModelSettings {
                dt: 0.1,
                switch_prob: 0.05,
                ..Default::default()
            },
            FilterSettings {
                n_particles: 2 * 1024 + 64 + 8 + 5,
                seed: 5,
                ess_threshold: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        for z in [[0.0, 0.0], [0.11, 0.02], [0.23, 0.03], [0.36, 0.05]] {
            gi.update(z).unwrap();
        }
        let out = (
            gi.goal_probabilities(),
            gi.filter().mean(),
            gi.filter().log_z(),
        );
        SimdLevel::set_override(None);
        out
    };
    let (p0, m0, z0) = run(SimdLevel::Scalar);
    for level in SimdLevel::available() {
        let (p, m, z) = run(level);
        for (a, b) in p.iter().zip(&p0).chain(m.iter().zip(&m0)) {
            assert!(
                (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
                "{level:?}: {a} vs {b}"
            );
        }
        assert!(
            (z - z0).abs() <= 1e-9 * (1.0 + z0.abs()),
            "{level:?}: {z} vs {z0}"
        );
    }
}

/// A separate forecast model: a person walking at 0.5 m/s is predicted at their own speed
/// by the `Heading` forecast model, and at about the nominal 1.2 m/s by the filter's
/// `ConstantSpeed` model; the filter's own state is untouched by either forecast, and the
/// forecast model follows goal edits.
#[test]
fn forecast_settings_move_particles_with_their_own_motion_model() {
    let goals = [Goal::point(20.0, 0.0), Goal::point(0.0, 20.0)];
    let s = GoalModelSettings {
        dt: 0.4,
        obs_noise: 0.03,
        rationality: 1.0,
        ..Default::default()
    };
    let f = FilterSettings {
        n_particles: 2000,
        seed: 4,
        ..Default::default()
    };
    let mut gi = GoalInference::new(&goals, s.clone(), f).unwrap();
    for t in 0..10 {
        gi.update([0.2 * t as f64, 0.0]).unwrap();
    }
    let h = 10;
    let predict = |gi: &mut GoalInference| {
        let (mut m, mut c) = (vec![0.0; 2 * h], vec![0.0; 4 * h]);
        gi.predict_into(h, 7, &mut m, &mut c).unwrap();
        m[2 * (h - 1)] - 1.8 // x travelled in 4 s from the last observation
    };
    let own = predict(&mut gi);
    let before = (gi.goal_probabilities(), gi.filter().mean());
    gi.set_forecast_settings(Some(GoalModelSettings {
        rationality: 0.1,
        velocity_noise: 0.05,
        velocity: GoalVelocity::Heading { slow_radius: 1.0 },
        ..s.clone()
    }))
    .unwrap();
    let fc = predict(&mut gi);
    assert!(
        (1.5..2.5).contains(&fc),
        "forecast model travelled {fc} m (0.5 m/s · 4 s = 2 m)"
    );
    assert!(
        own > fc + 1.0,
        "filter model travelled {own} m, forecast model {fc} m"
    );
    assert_eq!((gi.goal_probabilities(), gi.filter().mean()), before);
    // Sampled trajectories use the forecast model too.
    let tr = gi.sample_trajectories(h, 200, 3).unwrap();
    let mean_x: f64 = (0..200).map(|j| tr[(j * h + h - 1) * 2]).sum::<f64>() / 200.0 - 1.8;
    assert!(
        (1.5..2.5).contains(&mean_x),
        "sampled trajectories travelled {mean_x} m"
    );
    // Goal edits rebuild the forecast model (same goals, same state dimension).
    gi.add_goal(Goal::point(-5.0, 0.0)).unwrap();
    assert!((1.5..2.5).contains(&predict(&mut gi)));
    gi.remove_goal(2).unwrap();
    assert!((1.5..2.5).contains(&predict(&mut gi)));
    // Invalid settings are rejected and leave the forecast model as it was.
    let bad = GoalModelSettings {
        rationality: -1.0,
        ..s.clone()
    };
    assert!(gi.set_forecast_settings(Some(bad)).is_err());
    assert!(gi.forecast_settings().is_some());
    gi.set_forecast_settings(None).unwrap();
    let back = predict(&mut gi);
    assert!((back - own).abs() < 0.3, "{back} vs {own}");
}

/// A forecast model whose state does not fit the filter's is an error, not a panic.
#[test]
fn forecast_with_a_model_of_another_dimension_is_a_shape_error() {
    let s = GoalModelSettings::default();
    let m2 = GoalModel::new(&[Goal::point(1.0, 0.0), Goal::point(0.0, 1.0)], s.clone()).unwrap();
    let m3 = GoalModel::new(
        &[
            Goal::point(1.0, 0.0),
            Goal::point(0.0, 1.0),
            Goal::point(1.0, 1.0),
        ],
        s,
    )
    .unwrap();
    let mut pf = ParticleFilter::new(m2, FilterSettings::default()).unwrap();
    let e = pf.forecast_with(&m3, 3, 1, |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("model"), "{e}");
    let mut out = vec![0.0; 3 * 2 * 4];
    assert!(pf
        .sample_trajectories_with(&m3, 3, &[0, 1], 1, &mut out)
        .is_err());
}
