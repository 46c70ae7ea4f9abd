//! Exact GP through the public API: closed-form reference, streaming equals refit, gradients,
//! optimisation, background fit, samples, and allocation-free hot paths.

mod common;

use common::{allocs, Counting};

use intent_engine::gp::{
    GaussianProcess, GpSettings, GpWorkspace, HyperBounds, Kernel, MaternNu, OptimizeSettings,
};
use intent_engine::ErrorKind;
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn data(n: usize, d: usize, m: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| rng.random_range(-3.0..3.0));
    let y = Array2::from_shape_fn((n, m), |(i, o)| {
        (x[[i, 0]] * (1.0 + o as f64)).sin()
            + 0.1 * x.row(i).sum()
            + 0.05 * rng.random_range(-1.0..1.0)
    });
    (x, y)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-12)
}

/// Dense reference by Gauss–Jordan inversion of K + σ²I.
fn dense_reference(
    k: &Kernel,
    noise: f64,
    x: &Array2<f64>,
    y: &Array2<f64>,
    xs: &Array2<f64>,
) -> (Array2<f64>, Array1<f64>, f64) {
    let n = x.nrows();
    let mut a = k.matrix(x.view(), None, intent_engine::Par::Seq).unwrap();
    for i in 0..n {
        a[[i, i]] += noise;
    }
    // log det by LU without pivoting (SPD) and inverse by Gauss-Jordan.
    let mut inv = Array2::<f64>::eye(n);
    let mut m = a.clone();
    let mut logdet = 0.0;
    for c in 0..n {
        let p = m[[c, c]];
        logdet += p.ln();
        for j in 0..n {
            m[[c, j]] /= p;
            inv[[c, j]] /= p;
        }
        for r in 0..n {
            if r != c {
                let f = m[[r, c]];
                for j in 0..n {
                    m[[r, j]] -= f * m[[c, j]];
                    inv[[r, j]] -= f * inv[[c, j]];
                }
            }
        }
    }
    let alpha = inv.dot(y);
    let ks = k
        .matrix(xs.view(), Some(x.view()), intent_engine::Par::Seq)
        .unwrap();
    let mean = ks.dot(&alpha);
    let kss = k.diag(xs.view()).unwrap();
    let var = Array1::from_shape_fn(xs.nrows(), |i| kss[i] - ks.row(i).dot(&inv.dot(&ks.row(i))));
    let lml = (0..y.ncols())
        .map(|o| -0.5 * y.column(o).dot(&alpha.column(o)))
        .sum::<f64>()
        - y.ncols() as f64 * (0.5 * logdet + 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln());
    (mean, var, lml)
}

fn settings(noise: f64) -> GpSettings {
    GpSettings {
        noise_variance: noise,
        ..Default::default()
    }
}

#[test]
fn matches_dense_closed_form() {
    let (x, y) = data(60, 3, 2, 1);
    let (xs, _) = data(15, 3, 1, 2);
    for k in [
        Kernel::squared_exponential(1.3, &[0.8, 1.2, 2.0]).unwrap(),
        Kernel::matern(MaternNu::FiveHalves, 0.7, &[1.1]).unwrap(),
        Kernel::matern(MaternNu::ThreeHalves, 1.0, &[0.9]).unwrap() + Kernel::linear(0.2).unwrap(),
    ] {
        let mut gp = GaussianProcess::new(k.clone(), settings(0.01)).unwrap();
        gp.fit(x.view(), y.view()).unwrap();
        let (mean, var, lml) = dense_reference(&k, 0.01, &x, &y, &xs);
        let p = gp.predict(xs.view()).unwrap();
        for i in 0..15 {
            for o in 0..2 {
                assert!(rel(p.mean[[i, o]], mean[[i, o]]) < 1e-9, "{k} mean");
                assert!(
                    (p.var[[i, o]] - var[i]).abs() < 1e-9 * var[i].max(1e-3),
                    "{k} var"
                );
            }
        }
        assert!(
            rel(gp.log_marginal_likelihood().unwrap(), lml) < 1e-10,
            "{k} lml"
        );
        let pm = gp.predict_mean(xs.view()).unwrap();
        let mut ws = GpWorkspace::new();
        let (mut m1, mut v1) = ([0.0; 2], [0.0; 2]);
        for i in 0..15 {
            gp.predict_one_into(
                xs.row(i).as_slice().unwrap(),
                &mut m1,
                Some(&mut v1),
                &mut ws,
            )
            .unwrap();
            for o in 0..2 {
                assert!(
                    rel(m1[o], p.mean[[i, o]]) < 1e-12 && rel(pm[[i, o]], p.mean[[i, o]]) < 1e-12
                );
                assert!((v1[o] - p.var[[i, o]]).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn ten_thousand_streaming_updates_match_a_refit() {
    let k = Kernel::matern(MaternNu::FiveHalves, 1.0, &[0.7, 1.5]).unwrap();
    let window = 120;
    let mut gp = GaussianProcess::new(
        k.clone(),
        GpSettings {
            noise_variance: 1e-3,
            max_observations: Some(window),
            ..Default::default()
        },
    )
    .unwrap();
    let (x, y) = data(10_000 + window, 2, 1, 3);
    gp.fit(
        x.slice(ndarray::s![..window, ..]),
        y.slice(ndarray::s![..window, ..]),
    )
    .unwrap();
    for r in window..x.nrows() {
        gp.add_observations(
            x.slice(ndarray::s![r..=r, ..]),
            y.slice(ndarray::s![r..=r, ..]),
        )
        .unwrap();
    }
    assert_eq!(gp.n_observations(), window);
    assert!(gp.stats().updates >= 20_000);
    let mut fresh = GaussianProcess::new(k, settings(1e-3)).unwrap();
    let tail = x.nrows() - window;
    fresh
        .fit(
            x.slice(ndarray::s![tail.., ..]),
            y.slice(ndarray::s![tail.., ..]),
        )
        .unwrap();
    let (xs, _) = data(50, 2, 1, 4);
    let (a, b) = (
        gp.predict(xs.view()).unwrap(),
        fresh.predict(xs.view()).unwrap(),
    );
    for i in 0..50 {
        assert!(
            rel(a.mean[[i, 0]], b.mean[[i, 0]]) < 1e-8,
            "mean {i}: {} vs {}",
            a.mean[[i, 0]],
            b.mean[[i, 0]]
        );
        assert!(
            (a.var[[i, 0]] - b.var[[i, 0]]).abs() < 1e-8 * b.var[[i, 0]].max(1e-6),
            "var {i}"
        );
    }
    assert!(
        rel(
            gp.log_marginal_likelihood().unwrap(),
            fresh.log_marginal_likelihood().unwrap()
        ) < 1e-8
    );
}

#[test]
fn explicit_removals_match_a_refit() {
    let k = Kernel::squared_exponential(1.0, &[0.9]).unwrap();
    let (x, y) = data(80, 1, 2, 5);
    let mut gp = GaussianProcess::new(k.clone(), settings(1e-2)).unwrap();
    gp.fit(
        x.slice(ndarray::s![..50, ..]),
        y.slice(ndarray::s![..50, ..]),
    )
    .unwrap();
    gp.add_observations(
        x.slice(ndarray::s![50.., ..]),
        y.slice(ndarray::s![50.., ..]),
    )
    .unwrap();
    gp.remove_oldest(7).unwrap();
    gp.remove_oldest(1).unwrap();
    let mut fresh = GaussianProcess::new(k, settings(1e-2)).unwrap();
    fresh
        .fit(x.slice(ndarray::s![8.., ..]), y.slice(ndarray::s![8.., ..]))
        .unwrap();
    let (xs, _) = data(20, 1, 1, 6);
    let (a, b) = (
        gp.predict(xs.view()).unwrap(),
        fresh.predict(xs.view()).unwrap(),
    );
    for (u, v) in a.mean.iter().zip(b.mean.iter()) {
        assert!(rel(*u, *v) < 1e-10);
    }
    assert_eq!(
        gp.remove_oldest(100).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    gp.remove_oldest(gp.n_observations()).unwrap();
    let prior = gp.predict(xs.view()).unwrap();
    assert!(
        prior.var.iter().all(|v| (v - 1.0).abs() < 1e-12),
        "empty model predicts the prior"
    );
}

#[test]
fn near_duplicates_and_zero_noise_stay_finite() {
    let k = Kernel::squared_exponential(1.0, &[1.0]).unwrap();
    let mut gp = GaussianProcess::new(k, settings(0.0)).unwrap();
    let x = Array2::from_shape_fn((5, 1), |(i, _)| i as f64);
    let y = x.mapv(f64::sin);
    gp.fit(x.view(), y.view()).unwrap();
    for r in 0..200 {
        let xi = Array2::from_elem((1, 1), 2.0 + 1e-12 * r as f64);
        gp.add_observations(xi.view(), Array2::from_elem((1, 1), 2f64.sin()).view())
            .unwrap();
    }
    let p = gp
        .predict(Array2::from_shape_fn((9, 1), |(i, _)| i as f64 * 0.5).view())
        .unwrap();
    assert!(p.mean.iter().chain(p.var.iter()).all(|v| v.is_finite()));
    assert!(p.var.iter().all(|v| *v >= 0.0));
    assert!(gp.stats().duplicate_jitter_events > 0);
    assert!(gp.log_marginal_likelihood().unwrap().is_finite());
    // A full refactorisation of the same near-duplicate window needs jitter: it is counted.
    let before = gp.stats().jitter_escalations;
    gp.refactorize().unwrap();
    assert!(gp.jitter() > 0.0);
    assert_eq!(gp.stats().jitter_escalations, before + 1);
}

#[test]
fn lml_gradient_matches_finite_differences() {
    let (x, y) = data(40, 2, 2, 7);
    let k = Kernel::squared_exponential(1.2, &[0.7, 1.9]).unwrap() + Kernel::constant(0.3).unwrap();
    let mut gp = GaussianProcess::new(
        k.clone(),
        GpSettings {
            normalize_y: true,
            ..settings(0.05)
        },
    )
    .unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    let mut p0 = k.theta();
    p0.push(0.05f64.ln());
    let (lml, g) = gp.log_marginal_likelihood_gradient(&p0).unwrap();
    assert!(rel(lml, gp.log_marginal_likelihood().unwrap()) < 1e-10);
    for q in 0..p0.len() {
        let h = 1e-5;
        let (mut pp, mut pm) = (p0.clone(), p0.clone());
        pp[q] += h;
        pm[q] -= h;
        let fd = (gp.log_marginal_likelihood_gradient(&pp).unwrap().0
            - gp.log_marginal_likelihood_gradient(&pm).unwrap().0)
            / (2.0 * h);
        assert!(
            (fd - g[q]).abs() < 1e-5 * (1.0 + fd.abs()),
            "param {q}: {fd} vs {}",
            g[q]
        );
    }
}

#[test]
fn optimize_improves_and_background_fit_adopts_the_stream() {
    let (x, y) = data(80, 2, 1, 8);
    let k = Kernel::squared_exponential(1.0, &[3.0, 3.0]).unwrap();
    let mut gp = GaussianProcess::new(k, settings(0.5)).unwrap();
    gp.fit(
        x.slice(ndarray::s![..60, ..]),
        y.slice(ndarray::s![..60, ..]),
    )
    .unwrap();
    let before = gp.log_marginal_likelihood().unwrap();
    let bg = gp.optimize_in_background(
        OptimizeSettings {
            n_restarts: 1,
            ..Default::default()
        },
        HyperBounds::default(),
    );
    // the control thread keeps streaming meanwhile
    gp.add_observations(
        x.slice(ndarray::s![60.., ..]),
        y.slice(ndarray::s![60.., ..]),
    )
    .unwrap();
    gp.remove_oldest(5).unwrap();
    let (fitted, report) = bg.wait().unwrap();
    assert!(report.log_marginal_likelihood > before);
    gp.adopt(fitted).unwrap();
    assert_eq!(gp.n_observations(), 75);
    let mut fresh =
        GaussianProcess::new(gp.kernel().clone(), settings(gp.noise_variance())).unwrap();
    fresh
        .fit(x.slice(ndarray::s![5.., ..]), y.slice(ndarray::s![5.., ..]))
        .unwrap();
    let xs = x.slice(ndarray::s![..10, ..]);
    let (a, b) = (gp.predict(xs).unwrap(), fresh.predict(xs).unwrap());
    for (u, v) in a.mean.iter().zip(b.mean.iter()) {
        assert!(rel(*u, *v) < 1e-8);
    }
    let direct = gp
        .optimize(&OptimizeSettings::default(), &HyperBounds::default())
        .unwrap();
    assert!(direct.log_marginal_likelihood >= fresh.log_marginal_likelihood().unwrap() - 1e-6);
}

#[test]
fn prediction_gradients_match_finite_differences() {
    let (x, y) = data(30, 2, 2, 9);
    let k = Kernel::matern(MaternNu::FiveHalves, 1.0, &[1.0, 0.6]).unwrap()
        * Kernel::constant(2.0).unwrap()
        + Kernel::linear(0.3).unwrap();
    let mut gp = GaussianProcess::new(
        k,
        GpSettings {
            normalize_y: true,
            ..settings(0.01)
        },
    )
    .unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    let x0 = [0.3, -0.4];
    let (dm, dv) = gp.predict_gradient(&x0).unwrap();
    for c in 0..2 {
        let h = 1e-6;
        let (mut xp, mut xm) = (x0, x0);
        xp[c] += h;
        xm[c] -= h;
        let pp = gp
            .predict(Array2::from_shape_vec((1, 2), xp.to_vec()).unwrap().view())
            .unwrap();
        let pm = gp
            .predict(Array2::from_shape_vec((1, 2), xm.to_vec()).unwrap().view())
            .unwrap();
        for o in 0..2 {
            let fdm = (pp.mean[[0, o]] - pm.mean[[0, o]]) / (2.0 * h);
            let fdv = (pp.var[[0, o]] - pm.var[[0, o]]) / (2.0 * h);
            assert!(
                (fdm - dm[[o, c]]).abs() < 1e-6 * (1.0 + fdm.abs()),
                "mean d{c} o{o}"
            );
            assert!(
                (fdv - dv[[o, c]]).abs() < 1e-6 * (1.0 + fdv.abs()),
                "var d{c} o{o}: {fdv} vs {}",
                dv[[o, c]]
            );
        }
    }
}

#[test]
fn samples_are_seeded_and_match_the_posterior() {
    let (x, y) = data(25, 1, 1, 10);
    let mut gp = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[0.8]).unwrap(),
        settings(0.01),
    )
    .unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    let xs = Array2::from_shape_fn((6, 1), |(i, _)| -2.0 + 0.8 * i as f64);
    let s1 = gp.sample(xs.view(), 4000, 42).unwrap();
    assert_eq!(s1, gp.sample(xs.view(), 4000, 42).unwrap());
    assert_ne!(s1, gp.sample(xs.view(), 4000, 43).unwrap());
    let p = gp.predict(xs.view()).unwrap();
    let mean = s1.mean_axis(Axis(0)).unwrap();
    for i in 0..6 {
        let sd = p.var[[i, 0]].sqrt();
        assert!(
            (mean[[i, 0]] - p.mean[[i, 0]]).abs() < 5.0 * sd / 4000f64.sqrt() + 1e-9,
            "sample mean {i}"
        );
    }
}

#[test]
fn bad_input_is_an_error_and_changes_nothing() {
    let (x, y) = data(20, 2, 1, 11);
    let mut gp = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[1.0]).unwrap(),
        settings(0.1),
    )
    .unwrap();
    assert_eq!(
        gp.predict(x.view()).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert!(gp.fit(x.view(), y.slice(ndarray::s![..19, ..])).is_err());
    gp.fit(x.view(), y.view()).unwrap();
    let before = gp.predict(x.view()).unwrap();
    let mut bad = x.slice(ndarray::s![..3, ..]).to_owned();
    bad[[2, 1]] = f64::NAN;
    let e = gp
        .add_observations(bad.view(), y.slice(ndarray::s![..3, ..]))
        .unwrap_err();
    assert!(e.to_string().starts_with("X"), "{e}");
    assert_eq!(
        gp.n_observations(),
        20,
        "a failed add_observations adds nothing"
    );
    assert!(gp
        .add_observations(
            x.slice(ndarray::s![..3, ..1]),
            y.slice(ndarray::s![..3, ..])
        )
        .is_err());
    assert_eq!(gp.predict(x.view()).unwrap(), before);
    assert!(gp.predict(x.slice(ndarray::s![.., ..1])).is_err());
    assert!(GaussianProcess::new(Kernel::constant(1.0).unwrap(), settings(-1.0)).is_err());
    assert!(GaussianProcess::new(
        Kernel::constant(1.0).unwrap(),
        GpSettings {
            max_observations: Some(0),
            ..Default::default()
        }
    )
    .is_err());
    let mut ws = GpWorkspace::new();
    assert!(gp
        .predict_one_into(&[0.0], &mut [0.0], None, &mut ws)
        .is_err());
    assert!(gp
        .predict_one_into(&[0.0, f64::INFINITY], &mut [0.0], None, &mut ws)
        .is_err());
    assert!(gp.log_marginal_likelihood_gradient(&[0.0]).is_err());
}

#[test]
fn hot_paths_do_not_allocate_after_warm_up() {
    let (x, y) = data(300, 3, 2, 12);
    let k = Kernel::squared_exponential(1.0, &[1.0, 2.0, 0.5]).unwrap();
    let mut gp = GaussianProcess::new(
        k,
        GpSettings {
            capacity: 400,
            refactor_every: 1_000_000,
            ..settings(0.01)
        },
    )
    .unwrap();
    gp.fit(
        x.slice(ndarray::s![..200, ..]),
        y.slice(ndarray::s![..200, ..]),
    )
    .unwrap();
    let mut ws = GpWorkspace::new();
    let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
    gp.predict_one_into(&[0.1, 0.2, 0.3], &mut m, Some(&mut v), &mut ws)
        .unwrap();
    gp.add_observations(
        x.slice(ndarray::s![200..201, ..]),
        y.slice(ndarray::s![200..201, ..]),
    )
    .unwrap();
    let before = allocs();
    for r in 201..300 {
        gp.add_observations(
            x.slice(ndarray::s![r..=r, ..]),
            y.slice(ndarray::s![r..=r, ..]),
        )
        .unwrap();
        gp.predict_one_into(&[0.1, 0.2, 0.3], &mut m, Some(&mut v), &mut ws)
            .unwrap();
        gp.predict_one_into(&[0.4, 0.2, 0.3], &mut m, None, &mut ws)
            .unwrap();
    }
    assert_eq!(
        allocs(),
        before,
        "predict_one_into / add_observations allocated"
    );
}

#[test]
fn json_round_trip_reproduces_predictions() {
    let (x, y) = data(40, 2, 2, 13);
    let k = Kernel::matern(MaternNu::ThreeHalves, 1.0, &[0.5, 2.0]).unwrap()
        + Kernel::white(0.01).unwrap();
    let mut gp = GaussianProcess::new(
        k,
        GpSettings {
            normalize_y: true,
            max_observations: Some(35),
            ..settings(0.02)
        },
    )
    .unwrap();
    gp.fit(
        x.slice(ndarray::s![..30, ..]),
        y.slice(ndarray::s![..30, ..]),
    )
    .unwrap();
    gp.add_observations(
        x.slice(ndarray::s![30.., ..]),
        y.slice(ndarray::s![30.., ..]),
    )
    .unwrap();
    let json = gp.to_json().unwrap();
    let back = GaussianProcess::from_json(&json).unwrap();
    assert_eq!(back.n_observations(), 35);
    assert_eq!(back.sequence_range(), gp.sequence_range());
    let (xs, _) = data(10, 2, 1, 14);
    let (a, b) = (
        gp.predict(xs.view()).unwrap(),
        back.predict(xs.view()).unwrap(),
    );
    for (u, v) in a.mean.iter().zip(b.mean.iter()) {
        assert!(rel(*u, *v) < 1e-10);
    }
    assert!(GaussianProcess::from_json("{\"format\": \"pickle\"}").is_err());
    assert!(GaussianProcess::from_json(&json.replace("\"version\":1", "\"version\":9")).is_err());
    assert!(GaussianProcess::from_json(
        &json.replace("\"noise_variance\":0.02", "\"noise_variance\":-1")
    )
    .is_err());
}

mod streaming_properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // A fixed seed so that every CI run checks the same cases.
        #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123), ..ProptestConfig::with_cases(32) })]

        /// Any interleaving of appends and removals leaves the model equal to a refit on the
        /// observations it holds.
        #[test]
        fn incremental_equals_refit(
            ops in prop::collection::vec((0usize..5, 0usize..4), 1..12),
            seed in 0u64..1000,
            ls in 0.3f64..3.0,
            noise in 1e-6f64..0.5,
        ) {
            let (x, y) = data(200, 2, 1, seed);
            let k = Kernel::matern(MaternNu::FiveHalves, 1.0, &[ls]).unwrap();
            let mut gp = GaussianProcess::new(k.clone(), settings(noise)).unwrap();
            gp.fit(x.slice(ndarray::s![..10, ..]), y.slice(ndarray::s![..10, ..])).unwrap();
            let (mut lo, mut hi) = (0usize, 10usize);
            for (add, remove) in ops {
                let add = add.min(200 - hi);
                gp.add_observations(x.slice(ndarray::s![hi..hi + add, ..]), y.slice(ndarray::s![hi..hi + add, ..])).unwrap();
                hi += add;
                let remove = remove.min(hi - lo - 1);
                gp.remove_oldest(remove).unwrap();
                lo += remove;
            }
            prop_assert_eq!(gp.n_observations(), hi - lo);
            let mut fresh = GaussianProcess::new(k, settings(noise)).unwrap();
            fresh.fit(x.slice(ndarray::s![lo..hi, ..]), y.slice(ndarray::s![lo..hi, ..])).unwrap();
            let xs = x.slice(ndarray::s![..15, ..]);
            let (a, b) = (gp.predict(xs).unwrap(), fresh.predict(xs).unwrap());
            let scale = b.mean.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
            for (u, v) in a.mean.iter().zip(b.mean.iter()) {
                prop_assert!((u - v).abs() <= 1e-8 * scale, "mean {} vs {}", u, v);
            }
            for (u, v) in a.var.iter().zip(b.var.iter()) {
                prop_assert!((u - v).abs() <= 1e-8 * v.max(1e-6), "var {} vs {}", u, v);
            }
            let (la, lb) = (gp.log_marginal_likelihood().unwrap(), fresh.log_marginal_likelihood().unwrap());
            prop_assert!((la - lb).abs() <= 1e-8 * lb.abs().max(1.0), "lml {} vs {}", la, lb);
        }
    }
}

#[test]
fn appends_beyond_capacity_grow_and_match_a_refit() {
    let (x, y) = data(300, 2, 2, 21);
    let k = Kernel::squared_exponential(1.0, &[0.9, 1.4]).unwrap();
    let mut gp = GaussianProcess::new(
        k.clone(),
        GpSettings {
            capacity: 12,
            ..settings(1e-2)
        },
    )
    .unwrap();
    gp.fit(
        x.slice(ndarray::s![..10, ..]),
        y.slice(ndarray::s![..10, ..]),
    )
    .unwrap();
    // 10 -> 300 observations: storage grows several times (10 + 64 initial rows, then doubling)
    gp.add_observations(
        x.slice(ndarray::s![10.., ..]),
        y.slice(ndarray::s![10.., ..]),
    )
    .unwrap();
    let mut fresh = GaussianProcess::new(k, settings(1e-2)).unwrap();
    fresh.fit(x.view(), y.view()).unwrap();
    let xs = x.slice(ndarray::s![..30, ..]);
    let (a, b) = (gp.predict(xs).unwrap(), fresh.predict(xs).unwrap());
    for (u, v) in a.mean.iter().zip(b.mean.iter()) {
        assert!(rel(*u, *v) < 1e-9, "{u} vs {v}");
    }
    let (am, bm) = (
        gp.predict_mean(xs).unwrap(),
        fresh.predict_mean(xs).unwrap(),
    );
    for (u, v) in am.iter().zip(bm.iter()) {
        assert!(rel(*u, *v) < 1e-9);
    }
}
