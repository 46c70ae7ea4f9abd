//! Property tests (issue 9): incremental GP with a sliding window equals a refit; warm/hot-
//! started MPC equals a cold solve; resampling preserves the expected offspring counts; the
//! pipeline's decision is finite and within the actuator limits for any finite observation
//! sequence. Case counts are small so `cargo test` stays fast; `PROPTEST_CASES=N` raises them.

use std::time::Duration;

use intent_engine::belief::{resample, Goal, Resampling};
use intent_engine::gp::{GaussianProcess, GpSettings, Kernel, MaternNu};
use intent_engine::intent::{EngineConfig, IntentEngine, RobotModel, Workspace};
use intent_engine::mpc::models::double_integrator;
use intent_engine::mpc::{
    LinearMpc, MpcProblem, MpcSettings, MpcSolverKind, Reference, SolveStatus,
};
use ndarray::{array, Array2};
use proptest::prelude::*;

fn cases(default: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let config = ProptestConfig::with_cases(n);
    // A fixed seed unless PROPTEST_RNG_SEED asks for another: CI must not draw new cases on
    // every run (a random one found the Riccati case in `warm_equals_cold_on_found_cases`).
    if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
        config
    } else {
        ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123),
            ..config
        }
    }
}

proptest! {
    #![proptest_config(cases(12))]

    /// A sliding-window GP (`max_observations`) fed a stream — including exact and near-
    /// duplicate inputs — predicts like a model fitted from scratch on the window it holds.
    /// Tolerance: 1e-10 · n · κ, with κ ≈ 1 + n·σ_f²/σ² the condition bound of K + σ²I.
    #[test]
    fn sliding_window_gp_equals_refit(
        window in 3usize..40,
        extra in 1usize..60,
        noise in 1e-4f64..0.3,
        ls in 0.2f64..3.0,
        dup_every in 2usize..7,
        seed in 0u64..10_000,
    ) {
        let total = window + extra;
        let mut s = seed;
        let mut rnd = move || { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 11) as f64 / (1u64 << 53) as f64 };
        let mut x = Array2::zeros((total, 2));
        for i in 0..total {
            if i > 0 && i % dup_every == 0 {
                // An exact or a 1e-9-close repeat of the previous input.
                let eps = if i % 2 == 0 { 0.0 } else { 1e-9 };
                x[[i, 0]] = x[[i - 1, 0]] + eps;
                x[[i, 1]] = x[[i - 1, 1]];
            } else {
                x[[i, 0]] = rnd() * 6.0 - 3.0;
                x[[i, 1]] = rnd() * 6.0 - 3.0;
            }
        }
        let y = Array2::from_shape_fn((total, 1), |(i, _)| (x[[i, 0]]).sin() + 0.1 * x[[i, 1]]);
        let k = Kernel::matern(MaternNu::FiveHalves, 1.0, &[ls, ls]).unwrap();
        let settings = GpSettings { noise_variance: noise, max_observations: Some(window), ..GpSettings::default() };
        let first = window.min(total);
        let mut gp = GaussianProcess::new(k.clone(), settings.clone()).unwrap();
        gp.fit(x.slice(ndarray::s![..first, ..]), y.slice(ndarray::s![..first, ..])).unwrap();
        for i in first..total {
            gp.add_observations(x.slice(ndarray::s![i..i + 1, ..]), y.slice(ndarray::s![i..i + 1, ..])).unwrap();
        }
        prop_assert_eq!(gp.n_observations(), window);
        let lo = total - window;
        let mut fresh = GaussianProcess::new(k, GpSettings { max_observations: None, ..settings }).unwrap();
        fresh.fit(x.slice(ndarray::s![lo.., ..]), y.slice(ndarray::s![lo.., ..])).unwrap();
        let xs = array![[0.0, 0.0], [1.0, -1.0], [2.5, 2.5], [-3.0, 1.0]];
        let (a, b) = (gp.predict(xs.view()).unwrap(), fresh.predict(xs.view()).unwrap());
        let n = window as f64;
        let tol = 1e-10 * n * (1.0 + n / noise);
        for (u, v) in a.mean.iter().zip(b.mean.iter()) {
            prop_assert!((u - v).abs() <= tol * v.abs().max(1.0), "mean {} vs {} (tol {})", u, v, tol);
        }
        for (u, v) in a.var.iter().zip(b.var.iter()) {
            prop_assert!(*u >= 0.0 && *v >= 0.0, "negative variance {} / {}", u, v);
            prop_assert!((u - v).abs() <= tol, "var {} vs {} (tol {})", u, v, tol);
        }
    }

    /// Warm/hot-started MPC solves along a trajectory equal cold solves from the same states
    /// (active-set to 1e-6; Riccati, an interior-point method, to 3e-5; OSQP, an ADMM method,
    /// to its 1e-3-level accuracy).
    #[test]
    fn warm_started_mpc_equals_cold(
        x0 in prop::array::uniform4(-3.0f64..3.0),
        drift in prop::array::uniform4(-0.5f64..0.5),
        umax in 0.2f64..3.0,
        kind in 0usize..3,
    ) {
        warm_equals_cold(x0, drift, umax, kind)?;
    }

    /// Resampling preserves expected offspring counts: over R = 200 seeded draws the mean
    /// count of particle i is N·wᵢ within 5 standard errors (multinomial variance
    /// N·wᵢ(1−wᵢ)/R bounds every scheme's; plus 1e-9). Systematic, stratified and residual
    /// also keep every single draw within one of N·wᵢ (residual: ⌊N·wᵢ⌋ at least).
    #[test]
    fn resampling_preserves_expected_counts(
        w in prop::collection::vec(0.0f64..1.0, 2..40),
        scheme in 0usize..5,
        base_seed in 0u64..1_000_000,
    ) {
        let total: f64 = w.iter().sum();
        prop_assume!(total > 1e-6);
        let scheme = [Resampling::Systematic, Resampling::Stratified, Resampling::Residual, Resampling::Multinomial, Resampling::Rejection][scheme];
        let n = w.len();
        let r = 200usize;
        let mut mean = vec![0.0; n];
        for k in 0..r {
            let idx = resample(scheme, &w, None, base_seed.wrapping_add(k as u64)).unwrap();
            let mut counts = vec![0usize; n];
            for &i in &idx { counts[i] += 1; }
            for i in 0..n {
                let e = n as f64 * w[i] / total;
                match scheme {
                    Resampling::Systematic => prop_assert!((counts[i] as f64 - e).abs() < 1.0 + 1e-9, "systematic count {} vs {}", counts[i], e),
                    Resampling::Residual => prop_assert!(counts[i] as f64 >= e.floor() - 1e-9, "residual count {} < floor {}", counts[i], e),
                    _ => {}
                }
                mean[i] += counts[i] as f64 / r as f64;
            }
        }
        for i in 0..n {
            let p = w[i] / total;
            let e = n as f64 * p;
            let se = (n as f64 * p * (1.0 - p) / r as f64).sqrt();
            prop_assert!((mean[i] - e).abs() <= 5.0 * se + 1e-9, "{}: particle {} mean count {} vs {} (se {})", scheme.name(), i, mean[i], e, se);
        }
    }
}

/// One observation event of a random sequence.
#[derive(Clone, Debug)]
enum Obs {
    Walk(f64, f64),
    Jump(f64, f64),
    Huge(f64, f64),
    Dropout(usize),
}

fn obs_strategy() -> impl Strategy<Value = Obs> {
    prop_oneof![
        6 => (-0.05f64..0.05, -0.05f64..0.05).prop_map(|(a, b)| Obs::Walk(a, b)),
        1 => (-50.0f64..50.0, -50.0f64..50.0).prop_map(|(a, b)| Obs::Jump(a, b)),
        1 => (-300i32..300, -300i32..300).prop_map(|(a, b)| Obs::Huge(10f64.powi(a), -(10f64.powi(b)))),
        1 => (1usize..40).prop_map(Obs::Dropout),
    ]
}

proptest! {
    #![proptest_config(cases(8))]

    /// For any finite observation sequence (walks, jumps, 1e±300 values, dropouts) and any
    /// finite robot state, every decision is finite and within the actuator limits.
    #[test]
    fn pipeline_decisions_are_finite_and_within_limits(
        seq in prop::collection::vec(obs_strategy(), 5..40),
        robot in prop::array::uniform4(-1e3f64..1e3),
        start in prop::array::uniform2(0.0f64..6.0),
    ) {
        let mut cfg = EngineConfig::new(
            vec![Goal::point(5.0, 3.2), Goal::point(5.2, 0.8), Goal::point(0.4, 3.6)],
            Workspace { x_min: 0.0, x_max: 6.0, y_min: 0.0, y_max: 4.0 },
        );
        cfg.human.n_particles = 100;
        cfg.timing.belief_budget = Duration::from_secs(1);
        cfg.timing.prediction_budget = Duration::from_secs(1);
        cfg.timing.solve_budget = Duration::from_secs(1);
        cfg.timing.step_budget = Duration::from_secs(4);
        let amax = match cfg.robot { RobotModel::DoubleIntegrator { max_accel, .. } => max_accel, _ => unreachable!() };
        let mut e = IntentEngine::new(cfg).unwrap();
        let (mut p, mut t) = (start, 0.0);
        for o in seq {
            let mut events = vec![];
            match o {
                Obs::Walk(a, b) => { p = [p[0] + a, p[1] + b]; events.push(Some(p)); }
                Obs::Jump(a, b) => { p = [p[0] + a, p[1] + b]; events.push(Some(p)); }
                Obs::Huge(a, b) => events.push(Some([a, b])),
                Obs::Dropout(k) => events.extend(std::iter::repeat_n(None, k)),
            }
            for h in events {
                t += 0.01;
                let d = e.step(h, &robot, t);
                prop_assert!(d.command.iter().all(|u| u.is_finite() && u.abs() <= amax + 1e-9), "command {:?} ({:?})", d.command, d.fallback);
                prop_assert!(d.goal_probabilities.iter().all(|v| v.is_finite() && *v >= 0.0), "probabilities {:?}", d.goal_probabilities);
                prop_assert!(d.robot_plan.iter().all(|v| v.is_finite()) || !d.fresh, "fresh plan with non-finite positions");
            }
        }
    }
}

/// The body of `warm_started_mpc_equals_cold` (also run on the cases it once found).
fn warm_equals_cold(
    x0: [f64; 4],
    drift: [f64; 4],
    umax: f64,
    kind: usize,
) -> Result<(), TestCaseError> {
    let kind = [
        MpcSolverKind::ActiveSet,
        MpcSolverKind::Riccati,
        MpcSolverKind::Osqp,
    ][kind];
    let (a, b) = double_integrator(2, 0.1).unwrap();
    let problem = MpcProblem::new(a, b, Array2::eye(4), Array2::eye(2) * 0.1, 12)
        .unwrap()
        .with_input_bounds(Some(array![-umax, -umax]), Some(array![umax, umax]))
        .unwrap()
        .with_state_bounds(
            Some(array![-10.0, -10.0, -2.0, -2.0]),
            Some(array![10.0, 10.0, 2.0, 2.0]),
        )
        .unwrap();
    let mk = |warm| {
        LinearMpc::new(
            problem.clone(),
            MpcSettings {
                solver: kind,
                warm_start: warm,
                eps: 1e-9,
                ..MpcSettings::default()
            },
        )
        .unwrap()
    };
    let (mut warm, mut cold) = (mk(true), mk(false));
    let mut x = ndarray::Array1::from(x0.to_vec());
    for step in 0..6 {
        let w = warm
            .solve(x.view(), Reference::Zero, Reference::Zero, None)
            .unwrap()
            .clone();
        let c = mk(false)
            .solve(x.view(), Reference::Zero, Reference::Zero, None)
            .unwrap()
            .clone();
        let _ = cold
            .solve(x.view(), Reference::Zero, Reference::Zero, None)
            .unwrap();
        prop_assert_eq!(w.info.status.is_solved(), c.info.status.is_solved());
        if c.info.status.is_solved() {
            let inaccurate = w.info.status == SolveStatus::SolvedInaccurate
                || c.info.status == SolveStatus::SolvedInaccurate;
            let tol = if kind == MpcSolverKind::Osqp {
                2e-2 * umax
            } else if inaccurate {
                // A stalled dual residual (the Riccati IPM's floor, ~1e-7 here): to 1e-4.
                1e-4 * umax.max(1.0)
            } else if kind == MpcSolverKind::Riccati {
                // Residuals at 1e-9 bound an interior-point iterate's inputs only to about
                // √(1e-9) where a bound is weakly active (its multiplier near zero): a found
                // case (below) differed by 2.9e-6 between warm and cold, within that bound.
                3e-5 * umax.max(1.0)
            } else {
                1e-6 * umax.max(1.0)
            };
            let d = (&w.u - &c.u).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            prop_assert!(
                d <= tol,
                "step {}: warm and cold differ by {} (tol {})",
                step,
                d,
                tol
            );
        }
        for i in 0..4 {
            x[i] = 0.8 * x[i] + drift[i] * (step as f64 + 1.0) * 0.1;
        }
    }
    Ok(())
}

#[test]
fn warm_equals_cold_on_found_cases() {
    // Found by proptest on CI (2026-11-23): Riccati warm and cold 2.9e-6 apart at step 3.
    warm_equals_cold(
        [2.35163445080924, 0.0, -0.2954627938870797, 0.0],
        [-0.2879663493803804, 0.0, 0.49126268848739635, 0.0],
        2.29564042373737,
        1,
    )
    .unwrap();
}
