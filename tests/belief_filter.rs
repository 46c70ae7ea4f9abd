//! Particle filter against the exact Kalman filter, thread-count determinism and degenerate
//! input.

use intent_engine::belief::{
    FilterSettings, Goal, GoalInference, GoalModel, GoalModelSettings, LinearGaussian,
    ParticleFilter, Resampling, StepStatus,
};
use intent_engine::Par;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// A constant-velocity model observed in position (2 states, 1 observation).
#[allow(clippy::type_complexity)] // A, Q, H, R, m0, P0
fn lg_matrices() -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
    let dt = 0.5;
    let q = 0.3;
    (
        vec![1.0, dt, 0.0, 1.0],
        vec![
            q * dt.powi(3) / 3.0,
            q * dt * dt / 2.0,
            q * dt * dt / 2.0,
            q * dt,
        ],
        vec![1.0, 0.0],
        vec![0.4],
        vec![0.0, 1.0],
        vec![1.0, 0.0, 0.0, 0.5],
    )
}

/// Exact Kalman filter: returns (log-likelihood, final mean).
fn kalman(ys: &[f64]) -> (f64, DVector<f64>) {
    let (a, q, h, r, m0, p0) = lg_matrices();
    let a = DMatrix::from_row_slice(2, 2, &a);
    let q = DMatrix::from_row_slice(2, 2, &q);
    let h = DMatrix::from_row_slice(1, 2, &h);
    let r = r[0];
    let mut m = DVector::from_vec(m0);
    let mut p = DMatrix::from_row_slice(2, 2, &p0);
    let mut ll = 0.0;
    for &y in ys {
        m = &a * &m;
        p = &a * &p * a.transpose() + &q;
        let s = (&h * &p * h.transpose())[(0, 0)] + r;
        let e = y - (&h * &m)[(0, 0)];
        ll += -0.5 * ((2.0 * std::f64::consts::PI * s).ln() + e * e / s);
        let k = &p * h.transpose() / s;
        m += &k * e;
        p = (DMatrix::identity(2, 2) - &k * &h) * &p;
    }
    (ll, m)
}

fn simulate(t: usize, seed: u64) -> Vec<f64> {
    let (a, _, _, r, _, _) = lg_matrices();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut x = [0.0, 1.0];
    let mut ys = Vec::new();
    for _ in 0..t {
        let e: f64 = StandardNormal.sample(&mut rng);
        x = [a[0] * x[0] + a[1] * x[1], a[3] * x[1] + 0.5 * e];
        let n: f64 = StandardNormal.sample(&mut rng);
        ys.push(x[0] + r[0].sqrt() * n);
    }
    ys
}

fn lg_model(guided: bool) -> LinearGaussian {
    let (a, q, h, r, m0, p0) = lg_matrices();
    LinearGaussian::new(2, 1, &a, &q, &h, &r, &m0, &p0)
        .unwrap()
        .with_optimal_proposal(guided)
}

#[test]
fn log_likelihood_within_three_standard_errors_of_kalman() {
    let ys = simulate(30, 7);
    let (exact, m_exact) = kalman(&ys);
    for guided in [false, true] {
        let reps = 20;
        let mut lz = Vec::new();
        let mut mean_err: f64 = 0.0;
        for rep in 0..reps {
            let mut pf = ParticleFilter::new(
                lg_model(guided),
                FilterSettings {
                    n_particles: 2000,
                    seed: 100 + rep,
                    ..Default::default()
                },
            )
            .unwrap();
            for &y in &ys {
                pf.step(&[y][..]).unwrap();
            }
            lz.push(pf.log_z());
            let m = pf.mean();
            mean_err = mean_err.max((m[0] - m_exact[0]).abs());
        }
        let mean = lz.iter().sum::<f64>() / reps as f64;
        let var = lz.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (reps - 1) as f64;
        let se = (var / reps as f64).sqrt();
        assert!(
            (mean - exact).abs() < 3.0 * se.max(1e-3),
            "guided={guided}: log Z {mean} ± {se} vs Kalman {exact}"
        );
        assert!(
            mean_err < 0.1,
            "guided={guided}: filtered mean off by {mean_err}"
        );
    }
}

#[test]
fn every_resampler_tracks_the_kalman_log_likelihood() {
    let ys = simulate(20, 3);
    let (exact, _) = kalman(&ys);
    for scheme in [
        Resampling::Systematic,
        Resampling::Stratified,
        Resampling::Residual,
        Resampling::Multinomial,
        Resampling::Rejection,
    ] {
        let mut pf = ParticleFilter::new(
            lg_model(false),
            FilterSettings {
                n_particles: 5000,
                resampling: scheme,
                ess_threshold: 1.0,
                seed: 5,
                ..Default::default()
            },
        )
        .unwrap();
        for &y in &ys {
            pf.step(&[y][..]).unwrap();
        }
        assert!(
            (pf.log_z() - exact).abs() < 0.5,
            "{scheme:?}: {} vs {exact}",
            pf.log_z()
        );
    }
}

fn goal_filter(par: Par) -> GoalInference {
    let goals = [
        Goal::point(5.0, 0.0),
        Goal::point(0.0, 5.0),
        Goal::point(-3.0, -3.0),
    ];
    GoalInference::new(
        &goals,
        GoalModelSettings {
            dt: 0.1,
            switch_prob: 0.01,
            ..Default::default()
        },
        FilterSettings {
            n_particles: 5000,
            seed: 42,
            par,
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn same_seed_same_output_with_one_and_two_threads() {
    let mut a = goal_filter(Par::Seq);
    let mut b = goal_filter(Par::Rayon(2));
    for t in 0..30 {
        let z = [0.1 * t as f64, 0.02 * t as f64];
        let ia = a.update(z).unwrap();
        let ib = b.update(z).unwrap();
        assert_eq!(ia, ib);
    }
    assert_eq!(a.goal_probabilities(), b.goal_probabilities());
    assert_eq!(a.filter().weights(), b.filter().weights());
    assert_eq!(a.filter().log_z().to_bits(), b.filter().log_z().to_bits());
    let (mut ma, mut ca) = (vec![0.0; 10], vec![0.0; 20]);
    let (mut mb, mut cb) = (vec![0.0; 10], vec![0.0; 20]);
    a.predict_into(5, 9, &mut ma, &mut ca).unwrap();
    b.predict_into(5, 9, &mut mb, &mut cb).unwrap();
    assert_eq!((ma, ca), (mb, cb));
    assert_eq!(
        a.sample_trajectories(4, 7, 3).unwrap(),
        b.sample_trajectories(4, 7, 3).unwrap()
    );
    // The linear-Gaussian filter with its guided proposal too.
    let run = |par| {
        let mut pf = ParticleFilter::new(
            lg_model(true),
            FilterSettings {
                n_particles: 3000,
                seed: 1,
                par,
                ..Default::default()
            },
        )
        .unwrap();
        for y in simulate(10, 1) {
            pf.step(&[y][..]).unwrap();
        }
        (pf.log_z().to_bits(), pf.mean())
    };
    assert_eq!(run(Par::Seq), run(Par::Rayon(2)));
}

#[test]
fn degenerate_input_is_an_error_or_a_status_never_a_panic() {
    let s = FilterSettings::default;
    // N = 0.
    assert!(ParticleFilter::new(
        lg_model(false),
        FilterSettings {
            n_particles: 0,
            ..s()
        }
    )
    .is_err());
    // Zero goals.
    assert!(GoalModel::new(&[], GoalModelSettings::default()).is_err());
    assert!(GoalInference::new(&[], GoalModelSettings::default(), s()).is_err());
    // Bad threshold, bad settings.
    assert!(ParticleFilter::new(
        lg_model(false),
        FilterSettings {
            ess_threshold: 2.0,
            ..s()
        }
    )
    .is_err());
    assert!(GoalModel::new(
        &[Goal::point(0.0, 0.0)],
        GoalModelSettings {
            obs_noise: 0.0,
            ..Default::default()
        }
    )
    .is_err());
    // NaN observation: an error, the belief unchanged.
    let mut gi = goal_filter(Par::Seq);
    gi.update([0.0, 0.0]).unwrap();
    gi.update([0.1, 0.0]).unwrap();
    let before = gi.goal_probabilities();
    assert!(gi.update([f64::NAN, 0.0]).is_err());
    assert!(gi.update([0.0, f64::INFINITY]).is_err());
    assert_eq!(before, gi.goal_probabilities());
    let mut pf = ParticleFilter::new(lg_model(false), s()).unwrap();
    assert!(pf.step(&[f64::NAN][..]).is_err());
    assert!(pf.step(&[1.0, 2.0][..]).is_err());
    // All-zero likelihoods: a status, then the filter carries on.
    let info = gi.update([1e300, -1e300]).unwrap();
    assert_eq!(info.status, StepStatus::Reinitialised);
    let p = gi.goal_probabilities();
    assert!(p.iter().all(|q| q.is_finite()) && (p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let info = gi.update([1e300, -1e300]).unwrap();
    assert!(info.status != StepStatus::Reinitialised || info.ess == 0.0);
    assert!(gi.filter().mean().iter().all(|m| m.is_finite()));
    let info = pf.step(&[1e200][..]).unwrap();
    assert_eq!(info.status, StepStatus::Reinitialised);
    assert!(pf.weights().iter().all(|w| w.is_finite()));
    // Goal edits.
    assert!(gi.remove_goal(7).is_err());
    gi.remove_goal(0).unwrap();
    gi.remove_goal(0).unwrap();
    assert!(gi.remove_goal(0).is_err());
    gi.add_goal(Goal::point(1.0, 1.0)).unwrap();
    assert!(gi.add_goal(Goal::point(f64::NAN, 1.0)).is_err());
    assert_eq!(gi.goal_probabilities().len(), 2);
}

#[test]
fn goals_added_and_removed_at_run_time() {
    let mut gi = goal_filter(Par::Seq);
    for t in 0..15 {
        gi.update([0.12 * t as f64, 0.0]).unwrap();
    }
    let p = gi.goal_probabilities();
    assert!(p[0] > 0.8, "{p:?}");
    // A new goal straight ahead and closer takes probability as the person keeps walking.
    gi.add_goal(Goal::point(2.5, 0.0)).unwrap();
    let p = gi.goal_probabilities();
    assert_eq!(p.len(), 4);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    gi.remove_goal(1).unwrap();
    assert_eq!(gi.goal_probabilities().len(), 3);
    for t in 15..25 {
        gi.update([0.12 * t as f64, 0.0]).unwrap();
    }
    let p = gi.goal_probabilities();
    assert!(p[1] < 0.05, "{p:?}"); // (-3, -3) stays unlikely
}
