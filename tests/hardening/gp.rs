//! Kernels, the exact GP and the sparse GP.

use intent_engine::gp::{
    minimize, GaussianProcess, GpSettings, GpWorkspace, HyperBounds, InducingInit, Kernel,
    KernelWorkspace, MaternNu, OptimizeSettings, SparseGaussianProcess,
};
use intent_engine::Par;
use ndarray::{array, Array1, Array2, Array3};

use super::harness::{fingerprint, Battery, BAD_SCALARS, EXTREME};

fn data(n: usize, d: usize) -> (Array2<f64>, Array2<f64>) {
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        (i as f64 * 0.37 + j as f64 * 0.11).sin() * 2.0
    });
    let y = Array2::from_shape_fn((n, 1), |(i, _)| (x[[i, 0]] * 1.3).cos());
    (x, y)
}

fn fitted_gp() -> GaussianProcess {
    let k = Kernel::squared_exponential(1.0, &[0.7, 0.9]).unwrap();
    let mut gp = GaussianProcess::new(
        k,
        GpSettings {
            noise_variance: 1e-4,
            ..GpSettings::default()
        },
    )
    .unwrap();
    let (x, y) = data(20, 2);
    gp.fit(x.view(), y.view()).unwrap();
    gp
}

/// What a GP answers: predictions at a fixed grid plus the data it holds and its counters.
fn gp_state(gp: &GaussianProcess) -> String {
    let (xs, _) = data(7, 2);
    let p = gp.predict(xs.view()).map(|p| (p.mean, p.var));
    format!(
        "{:?}|{:?}|{:?}|{}|{:?}|{:?}|{:?}",
        p,
        gp.inputs(),
        gp.targets(),
        gp.n_observations(),
        gp.sequence_range(),
        gp.kernel(),
        gp.jitter()
    )
}

/// Matrices with one entry replaced by each hostile value.
fn poisoned(m: &Array2<f64>) -> Vec<(String, Array2<f64>)> {
    let mut v = Vec::new();
    for &b in BAD_SCALARS.iter() {
        let mut p = m.clone();
        let last = (p.nrows() - 1, p.ncols() - 1);
        p[last] = b;
        v.push((format!("{b}"), p));
    }
    v
}

#[test]
fn kernels_reject_bad_input() {
    let mut t = Battery::new();
    for &b in BAD_SCALARS.iter().chain(&[0.0, -1.0]) {
        t.err("Kernel::squared_exponential", "variance", || {
            Kernel::squared_exponential(b, &[1.0])
        });
        t.err("Kernel::squared_exponential", "length_scale", || {
            Kernel::squared_exponential(1.0, &[1.0, b])
        });
        t.err("Kernel::matern", "variance", || {
            Kernel::matern(MaternNu::Half, b, &[1.0])
        });
        t.err("Kernel::matern", "length_scale", || {
            Kernel::matern(MaternNu::FiveHalves, 1.0, &[b])
        });
        t.err("Kernel::rational_quadratic", "alpha", || {
            Kernel::rational_quadratic(1.0, &[1.0], b)
        });
        t.err("Kernel::rational_quadratic", "length_scale", || {
            Kernel::rational_quadratic(1.0, &[b], 1.0)
        });
        t.err("Kernel::periodic", "period", || {
            Kernel::periodic(1.0, 1.0, b)
        });
        t.err("Kernel::periodic", "length_scale", || {
            Kernel::periodic(1.0, b, 1.0)
        });
        t.err("Kernel::periodic", "variance", || {
            Kernel::periodic(b, 1.0, 1.0)
        });
        t.err("Kernel::linear", "variance", || Kernel::linear(b));
        t.err("Kernel::constant", "value", || Kernel::constant(b));
        t.err("Kernel::white", "noise", || Kernel::white(b));
        t.err("MaternNu::from_f64", "nu", || MaternNu::from_f64(b));
    }
    t.err("Kernel::squared_exponential", "length_scale", || {
        Kernel::squared_exponential(1.0, &[])
    });
    t.err("MaternNu::from_f64", "nu", || MaternNu::from_f64(2.0));
    // ARD dimensions that cannot be combined.
    let k2 = Kernel::squared_exponential(1.0, &[1.0, 2.0]).unwrap();
    let k3 = Kernel::matern(MaternNu::ThreeHalves, 1.0, &[1.0, 2.0, 3.0]).unwrap();
    t.err("Kernel::sum", "", || Kernel::sum(k2.clone(), k3.clone()));
    t.err("Kernel::product", "", || {
        Kernel::product(k2.clone(), k3.clone())
    });

    // set_theta / with_theta: wrong length, non-finite, 1e300 (exp overflows) — unchanged after.
    let mut k = Kernel::sum(k2.clone(), Kernel::white(0.1).unwrap()).unwrap();
    let before = fingerprint(&k);
    let p = k.n_params();
    t.err("Kernel::set_theta", "theta", || {
        k.set_theta(&vec![0.0; p + 1])
    });
    t.err("Kernel::set_theta", "theta", || k.set_theta(&[]));
    for &b in BAD_SCALARS.iter().chain(&[1e300, -1e300, 800.0, -800.0]) {
        let mut th = k.theta();
        th[p - 1] = b;
        t.err("Kernel::set_theta", "theta", || k.set_theta(&th));
        t.err("Kernel::with_theta", "theta", || k.with_theta(&th));
    }
    t.check(
        "Kernel::set_theta (unchanged after failure)",
        fingerprint(&k) == before,
        "changed",
    );

    // Evaluation: wrong columns, non-finite inputs, output buffers of the wrong size, extremes.
    let x = array![[0.0, 1.0], [0.5, -1.0], [2.0, 0.0]];
    let x1col = array![[0.0], [1.0]];
    let mut ws = KernelWorkspace::new();
    t.err("Kernel::matrix", "X", || {
        k.matrix(x1col.view(), None, Par::Seq)
    });
    t.err("Kernel::matrix", "X2", || {
        k.matrix(x.view(), Some(x1col.view()), Par::Seq)
    });
    for (what, xp) in poisoned(&x) {
        t.err(&format!("Kernel::matrix({what})"), "X", || {
            k.matrix(xp.view(), None, Par::Seq)
        });
        t.err(&format!("Kernel::matrix({what} in X2)"), "X2", || {
            k.matrix(x.view(), Some(xp.view()), Par::Seq)
        });
        t.err(&format!("Kernel::diag({what})"), "X", || k.diag(xp.view()));
        t.err(&format!("Kernel::gradient({what})"), "X", || {
            k.gradient(xp.view(), Par::Seq)
        });
    }
    let mut out = Array2::zeros((3, 2));
    t.err("Kernel::matrix_into", "out", || {
        k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
    });
    let mut d2 = Array1::zeros(2);
    t.err("Kernel::diag_into", "out", || {
        k.diag_into(x.view(), d2.view_mut())
    });
    let mut g = Array3::zeros((3, 3, p + 1));
    t.err("Kernel::gradient_into", "out", || {
        k.gradient_into(x.view(), g.view_mut(), &mut ws, Par::Seq)
    });
    let mut gd = vec![0.0; p];
    let w_bad = Array2::zeros((2, 3));
    t.err("Kernel::gradient_dot", "weights", || {
        k.gradient_dot(x.view(), w_bad.view(), &mut gd, &mut ws, Par::Seq)
    });
    let mut w_nan = Array2::zeros((3, 3));
    w_nan[[1, 1]] = f64::NAN;
    t.err("Kernel::gradient_dot", "weights", || {
        k.gradient_dot(x.view(), w_nan.view(), &mut gd, &mut ws, Par::Seq)
    });
    let w_ok = Array2::zeros((3, 3));
    let mut gd_short = vec![0.0; p - 1];
    t.err("Kernel::gradient_dot", "out", || {
        k.gradient_dot(x.view(), w_ok.view(), &mut gd_short, &mut ws, Par::Seq)
    });
    // Extremes: finite inputs give finite values (or an error), never NaN posing as an answer.
    for &e in EXTREME.iter() {
        let xe = array![[e, 0.0], [0.0, e]];
        for kk in [
            k.clone(),
            Kernel::linear(1.0).unwrap(),
            Kernel::rational_quadratic(1.0, &[1.0], 0.5).unwrap(),
            Kernel::periodic(1.0, 1.0, 2.0).unwrap(),
            Kernel::matern(MaternNu::Half, 1.0, &[1.0]).unwrap(),
        ] {
            if let Some(Ok(m)) = t
                .no_panic(&format!("Kernel::matrix({} at {e})", kk.name()), || {
                    kk.matrix(xe.view(), None, Par::Seq)
                })
            {
                t.check(
                    &format!("Kernel::matrix({} at {e}) finite", kk.name()),
                    m.iter().all(|v| v.is_finite()),
                    &m,
                );
            }
        }
    }
    // Input gradients.
    let data2 = x.clone();
    let mut vals = vec![0.0; 3];
    let mut grads = Array2::zeros((3, 2));
    let mut scratch = vec![0.0; k.input_gradient_scratch_len(2)];
    t.err("Kernel::cross_gradient_into", "x", || {
        k.cross_gradient_into(
            &[0.0],
            data2.view(),
            &mut vals,
            grads.view_mut(),
            &mut scratch,
        )
    });
    t.err("Kernel::cross_gradient_into", "x", || {
        k.cross_gradient_into(
            &[f64::NAN, 0.0],
            data2.view(),
            &mut vals,
            grads.view_mut(),
            &mut scratch,
        )
    });
    let mut vals_short = vec![0.0; 2];
    t.err("Kernel::cross_gradient_into", "values", || {
        k.cross_gradient_into(
            &[0.0, 0.0],
            data2.view(),
            &mut vals_short,
            grads.view_mut(),
            &mut scratch,
        )
    });
    let mut grads_bad = Array2::zeros((3, 1));
    t.err("Kernel::cross_gradient_into", "grads", || {
        k.cross_gradient_into(
            &[0.0, 0.0],
            data2.view(),
            &mut vals,
            grads_bad.view_mut(),
            &mut scratch,
        )
    });
    let mut scratch_short = vec![0.0; 1];
    t.err("Kernel::cross_gradient_into", "scratch", || {
        k.cross_gradient_into(
            &[0.0, 0.0],
            data2.view(),
            &mut vals,
            grads.view_mut(),
            &mut scratch_short,
        )
    });
    let mut dg = vec![0.0; 1];
    t.err("Kernel::diag_gradient_into", "grad", || {
        k.diag_gradient_into(&[0.0, 0.0], &mut dg, &mut scratch)
    });
    let mut dg2 = vec![0.0; 2];
    t.err("Kernel::diag_gradient_into", "x", || {
        k.diag_gradient_into(&[f64::INFINITY, 0.0], &mut dg2, &mut scratch)
    });
    t.err("Kernel::diag_gradient_into", "x", || {
        k.diag_gradient_into(&[0.0, 0.0, 0.0], &mut dg2, &mut scratch)
    });
    // JSON: not JSON, wrong types, negative parameters, NaN spelled as a string, huge nesting.
    for bad in [
        "",
        "{",
        "null",
        "[]",
        r#"{"type":"RBF"}"#,
        r#"{"type":"RBF","variance":-1,"length_scale":[1]}"#,
        r#"{"type":"RBF","variance":1,"length_scale":[]}"#,
        r#"{"type":"RBF","variance":1,"length_scale":[0]}"#,
        r#"{"type":"RBF","variance":1e999,"length_scale":[1]}"#,
        r#"{"type":"Nope","variance":1}"#,
    ] {
        t.err(&format!("Kernel::from_json({bad:?})"), "", || {
            Kernel::from_json(bad)
        });
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    t.err("Kernel::from_json(deep nesting)", "json", || {
        Kernel::from_json(&deep)
    });
    t.finish("kernels");
}

#[test]
fn exact_gp_rejects_bad_input_and_stays_unchanged() {
    let mut t = Battery::new();
    let k = Kernel::squared_exponential(1.0, &[0.7, 0.9]).unwrap();
    // Settings.
    for (name, s) in [
        (
            "noise_variance",
            GpSettings {
                noise_variance: -1.0,
                ..GpSettings::default()
            },
        ),
        (
            "noise_variance",
            GpSettings {
                noise_variance: f64::NAN,
                ..GpSettings::default()
            },
        ),
        (
            "noise_variance",
            GpSettings {
                noise_variance: f64::INFINITY,
                ..GpSettings::default()
            },
        ),
        (
            "max_observations",
            GpSettings {
                max_observations: Some(0),
                ..GpSettings::default()
            },
        ),
        (
            "max_relative_jitter",
            GpSettings {
                max_relative_jitter: 0.0,
                ..GpSettings::default()
            },
        ),
        (
            "max_relative_jitter",
            GpSettings {
                max_relative_jitter: f64::NAN,
                ..GpSettings::default()
            },
        ),
        (
            "refactor_every",
            GpSettings {
                refactor_every: 0,
                ..GpSettings::default()
            },
        ),
        (
            "check_every",
            GpSettings {
                check_every: 0,
                ..GpSettings::default()
            },
        ),
        (
            "residual_tol",
            GpSettings {
                residual_tol: -1.0,
                ..GpSettings::default()
            },
        ),
    ] {
        t.err("GpSettings::validate", name, || s.validate());
        t.err("GaussianProcess::new", name, || {
            GaussianProcess::new(k.clone(), s.clone())
        });
    }
    // Unfitted model: every query is an error, not a panic.
    let mut un = GaussianProcess::new(k.clone(), GpSettings::default()).unwrap();
    let xq = array![[0.0, 0.0]];
    let mut ws = GpWorkspace::new();
    t.err("GaussianProcess::predict (unfitted)", "fit", || {
        un.predict(xq.view())
    });
    t.err("GaussianProcess::predict_mean (unfitted)", "fit", || {
        un.predict_mean(xq.view())
    });
    t.err("GaussianProcess::predict_cov (unfitted)", "fit", || {
        un.predict_cov(xq.view())
    });
    t.err("GaussianProcess::sample (unfitted)", "fit", || {
        un.sample(xq.view(), 2, 0)
    });
    t.err(
        "GaussianProcess::predict_gradient (unfitted)",
        "fit",
        || un.predict_gradient(&[0.0, 0.0]),
    );
    t.err(
        "GaussianProcess::predict_one_into (unfitted)",
        "fit",
        || un.predict_one_into(&[0.0, 0.0], &mut [0.0], None, &mut ws),
    );
    t.err(
        "GaussianProcess::add_observations (unfitted)",
        "fit",
        || un.add_observations(xq.view(), array![[1.0]].view()),
    );
    t.err("GaussianProcess::remove_oldest (unfitted)", "fit", || {
        un.remove_oldest(0)
    });
    t.err("GaussianProcess::refactorize (unfitted)", "fit", || {
        un.refactorize()
    });
    t.err(
        "GaussianProcess::log_marginal_likelihood (unfitted)",
        "fit",
        || un.log_marginal_likelihood(),
    );
    t.err("GaussianProcess::to_json (unfitted)", "fit", || {
        un.to_json()
    });
    t.err("GaussianProcess::optimize (unfitted)", "fit", || {
        un.optimize(&OptimizeSettings::default(), &HyperBounds::default())
    });

    // fit: shapes and values; a failed fit leaves a fitted model as it was.
    let mut gp = fitted_gp();
    let before = gp_state(&gp);
    let (x, y) = data(10, 2);
    let e0 = Array2::<f64>::zeros((0, 2));
    let ey = Array2::<f64>::zeros((0, 1));
    t.err("GaussianProcess::fit", "X", || gp.fit(e0.view(), ey.view()));
    t.err("GaussianProcess::fit", "X", || {
        gp.fit(Array2::zeros((10, 0)).view(), y.view())
    });
    t.err("GaussianProcess::fit", "X", || {
        gp.fit(data(10, 3).0.view(), y.view())
    });
    t.err("GaussianProcess::fit", "y", || {
        gp.fit(x.view(), data(9, 2).1.view())
    });
    t.err("GaussianProcess::fit", "y", || {
        gp.fit(x.view(), Array2::zeros((10, 0)).view())
    });
    for (what, xp) in poisoned(&x) {
        t.err(&format!("GaussianProcess::fit(X {what})"), "X", || {
            gp.fit(xp.view(), y.view())
        });
    }
    for (what, yp) in poisoned(&y) {
        t.err(&format!("GaussianProcess::fit(y {what})"), "y", || {
            gp.fit(x.view(), yp.view())
        });
    }
    t.check(
        "GaussianProcess::fit (unchanged after failures)",
        gp_state(&gp) == before,
        "state changed",
    );

    // add_observations: a failed call adds nothing (checked for the whole batch first).
    let (xa, ya) = data(3, 2);
    t.err("GaussianProcess::add_observations", "X", || {
        gp.add_observations(data(3, 3).0.view(), ya.view())
    });
    t.err("GaussianProcess::add_observations", "y", || {
        gp.add_observations(xa.view(), data(2, 2).1.view())
    });
    t.err("GaussianProcess::add_observations", "y", || {
        gp.add_observations(xa.view(), Array2::zeros((3, 2)).view())
    });
    for (what, xp) in poisoned(&xa) {
        t.err(
            &format!("GaussianProcess::add_observations(X {what})"),
            "X",
            || gp.add_observations(xp.view(), ya.view()),
        );
    }
    for (what, yp) in poisoned(&ya) {
        t.err(
            &format!("GaussianProcess::add_observations(y {what})"),
            "y",
            || gp.add_observations(xa.view(), yp.view()),
        );
    }
    t.err("GaussianProcess::remove_oldest", "k", || {
        gp.remove_oldest(21)
    });
    t.err("GaussianProcess::remove_oldest", "k", || {
        gp.remove_oldest(usize::MAX)
    });
    t.check(
        "GaussianProcess::add_observations/remove_oldest (unchanged after failures)",
        gp_state(&gp) == before,
        "state changed",
    );
    // An empty batch is a valid no-op.
    t.no_panic("GaussianProcess::add_observations(empty)", || {
        gp.add_observations(Array2::zeros((0, 2)).view(), Array2::zeros((0, 1)).view())
    });
    t.check(
        "GaussianProcess::add_observations(empty) is a no-op",
        gp_state(&gp) == before,
        "changed",
    );

    // Queries.
    t.err("GaussianProcess::predict", "X", || {
        gp.predict(array![[0.0]].view())
    });
    t.err("GaussianProcess::predict", "X", || {
        gp.predict(array![[0.0, f64::NAN]].view())
    });
    t.err("GaussianProcess::predict_with", "X", || {
        gp.predict_with(array![[f64::INFINITY, 0.0]].view(), true)
    });
    t.err("GaussianProcess::predict_mean", "X", || {
        gp.predict_mean(array![[0.0, 0.0, 0.0]].view())
    });
    t.err("GaussianProcess::predict_mean", "X", || {
        gp.predict_mean(array![[f64::NEG_INFINITY, 0.0]].view())
    });
    t.err("GaussianProcess::predict_cov", "X", || {
        gp.predict_cov(array![[f64::NAN, 0.0]].view())
    });
    t.err("GaussianProcess::sample", "X", || {
        gp.sample(array![[f64::NAN, 0.0]].view(), 3, 1)
    });
    t.err("GaussianProcess::predict_gradient", "x", || {
        gp.predict_gradient(&[0.0])
    });
    t.err("GaussianProcess::predict_gradient", "x", || {
        gp.predict_gradient(&[f64::NAN, 0.0])
    });
    t.err("GaussianProcess::predict_one_into", "x", || {
        gp.predict_one_into(&[0.0], &mut [0.0], None, &mut ws)
    });
    t.err("GaussianProcess::predict_one_into", "x", || {
        gp.predict_one_into(&[f64::NAN, 0.0], &mut [0.0], None, &mut ws)
    });
    t.err("GaussianProcess::predict_one_into", "mean", || {
        gp.predict_one_into(&[0.0, 0.0], &mut [0.0, 0.0], None, &mut ws)
    });
    t.err("GaussianProcess::predict_one_into", "var", || {
        gp.predict_one_into(&[0.0, 0.0], &mut [0.0], Some(&mut []), &mut ws)
    });
    t.err(
        "GaussianProcess::log_marginal_likelihood_gradient",
        "params",
        || gp.log_marginal_likelihood_gradient(&[0.0]),
    );
    let np = gp.kernel().n_params() + 1;
    for &b in BAD_SCALARS.iter().chain(&[1e300, -1e300]) {
        // Named by the kernel's log-hyperparameter vector it would set.
        t.err(
            "GaussianProcess::log_marginal_likelihood_gradient",
            "params|theta",
            || gp.log_marginal_likelihood_gradient(&vec![b; np]),
        );
    }
    // Extreme (finite) test inputs: finite means, non-negative variances.
    for &e in EXTREME.iter() {
        let xe = array![[e, 0.0], [0.0, e], [e, e]];
        if let Some(Ok(p)) = t.no_panic("GaussianProcess::predict(extreme)", || {
            gp.predict(xe.view())
        }) {
            t.check(
                &format!("GaussianProcess::predict({e}) finite, var >= 0"),
                p.mean.iter().all(|v| v.is_finite())
                    && p.var.iter().all(|v| v.is_finite() && *v >= 0.0),
                (&p.mean, &p.var),
            );
        }
    }
    // optimize: bad bounds and settings leave the model unchanged.
    for (name, b) in [
        (
            "kernel",
            HyperBounds {
                kernel: (1.0, -1.0),
                noise: None,
            },
        ),
        (
            "kernel",
            HyperBounds {
                kernel: (f64::NAN, 1.0),
                noise: None,
            },
        ),
        (
            "noise",
            HyperBounds {
                kernel: (-3.0, 3.0),
                noise: Some((2.0, 1.0)),
            },
        ),
    ] {
        t.err("GaussianProcess::optimize", name, || {
            gp.optimize(&OptimizeSettings::default(), &b)
        });
    }
    for (name, s) in [
        (
            "tol_grad",
            OptimizeSettings {
                tol_grad: f64::NAN,
                ..OptimizeSettings::default()
            },
        ),
        (
            "tol_grad",
            OptimizeSettings {
                tol_grad: -1.0,
                ..OptimizeSettings::default()
            },
        ),
        (
            "max_iters",
            OptimizeSettings {
                max_iters: 0,
                ..OptimizeSettings::default()
            },
        ),
    ] {
        t.err("GaussianProcess::optimize", name, || {
            gp.optimize(&s, &HyperBounds::default())
        });
    }
    t.check(
        "GaussianProcess::optimize (unchanged after failures)",
        gp_state(&gp) == before,
        "changed",
    );
    // adopt: a model from another stream.
    let other = fitted_gp();
    let mut unrelated = GaussianProcess::new(k.clone(), GpSettings::default()).unwrap();
    unrelated
        .fit(data(5, 2).0.view(), data(5, 2).1.view())
        .unwrap();
    unrelated
        .add_observations(data(40, 2).0.view(), data(40, 2).1.view())
        .unwrap();
    t.err("GaussianProcess::adopt", "fitted", || gp.adopt(unrelated));
    let _ = other;
    t.check(
        "GaussianProcess::adopt (unchanged after failure)",
        gp_state(&gp) == before,
        "changed",
    );
    let bf = gp.optimize_in_background(
        OptimizeSettings {
            tol_grad: f64::NAN,
            ..OptimizeSettings::default()
        },
        HyperBounds::default(),
    );
    t.err("BackgroundFit::wait (bad settings)", "tol_grad", || {
        bf.wait().map(|_| ())
    });

    // JSON round trip and corrupted files.
    let json = gp.to_json().unwrap();
    t.no_panic("GaussianProcess::from_json(valid)", || {
        let back = GaussianProcess::from_json(&json).unwrap();
        assert_eq!(
            gp_state(&back),
            before,
            "a saved model reloads with identical predictions"
        );
    });
    for cut in [0, 1, json.len() / 3, json.len() / 2, json.len() - 1] {
        t.err(
            &format!("GaussianProcess::from_json(truncated at {cut})"),
            "json",
            || GaussianProcess::from_json(&json[..cut]),
        );
    }
    for (from, to) in [
        ("\"version\":1", "\"version\":2"),
        ("\"noise_variance\":", "\"noise_variance\":-"),
    ] {
        if json.contains(from) {
            let bad = json.replacen(from, to, 1);
            t.err(&format!("GaussianProcess::from_json({to})"), "", || {
                GaussianProcess::from_json(&bad)
            });
        }
    }
    t.finish("exact GP");
}

#[test]
fn sparse_gp_and_minimize_reject_bad_input() {
    let mut t = Battery::new();
    let k = Kernel::squared_exponential(1.0, &[0.7, 0.9]).unwrap();
    for &b in BAD_SCALARS.iter().chain(&[0.0, -1.0]) {
        t.err("SparseGaussianProcess::new", "noise_variance", || {
            SparseGaussianProcess::new(k.clone(), b)
        });
    }
    let mut sp = SparseGaussianProcess::new(k.clone(), 1e-2).unwrap();
    let xq = array![[0.0, 0.0]];
    t.err("SparseGaussianProcess::predict (unfitted)", "fit", || {
        sp.predict(xq.view(), false)
    });
    t.err(
        "SparseGaussianProcess::predict_mean (unfitted)",
        "fit",
        || sp.predict_mean(xq.view()),
    );
    t.err("SparseGaussianProcess::to_json (unfitted)", "model", || {
        sp.to_json()
    });
    t.err(
        "SparseGaussianProcess::log_marginal_likelihood_bound (unfitted)",
        "fit",
        || sp.log_marginal_likelihood_bound(),
    );
    t.err("SparseGaussianProcess::objective (unfitted)", "fit", || {
        sp.objective(&[0.0; 4])
    });
    let (x, y) = data(30, 2);
    let km = |m| InducingInit::KMeans {
        m,
        seed: 1,
        iters: 5,
    };
    sp.fit(x.view(), y.view(), km(8)).unwrap();
    let state = |s: &SparseGaussianProcess| {
        format!(
            "{:?}",
            s.predict(data(5, 2).0.view(), true)
                .map(|p| (p.mean, p.var))
        )
    };
    let before = state(&sp);
    let fp = fingerprint(&sp);
    t.err("SparseGaussianProcess::fit", "X", || {
        sp.fit(
            Array2::zeros((0, 2)).view(),
            Array2::zeros((0, 1)).view(),
            km(2),
        )
    });
    t.err("SparseGaussianProcess::fit", "X", || {
        sp.fit(data(30, 3).0.view(), y.view(), km(2))
    });
    t.err("SparseGaussianProcess::fit", "y", || {
        sp.fit(x.view(), data(29, 2).1.view(), km(2))
    });
    t.err("SparseGaussianProcess::fit", "m", || {
        sp.fit(x.view(), y.view(), km(0))
    });
    t.err("SparseGaussianProcess::fit", "Z", || {
        sp.fit(
            x.view(),
            y.view(),
            InducingInit::Given(Array2::zeros((0, 2))),
        )
    });
    t.err("SparseGaussianProcess::fit", "Z", || {
        sp.fit(
            x.view(),
            y.view(),
            InducingInit::Given(Array2::zeros((3, 1))),
        )
    });
    t.err("SparseGaussianProcess::fit", "Z", || {
        sp.fit(
            x.view(),
            y.view(),
            InducingInit::Given(array![[0.0, f64::NAN]]),
        )
    });
    for (what, xp) in poisoned(&x) {
        t.err(
            &format!("SparseGaussianProcess::fit(X {what})"),
            "X",
            || sp.fit(xp.view(), y.view(), km(4)),
        );
    }
    for (what, yp) in poisoned(&y) {
        t.err(
            &format!("SparseGaussianProcess::fit(y {what})"),
            "y",
            || sp.fit(x.view(), yp.view(), km(4)),
        );
    }
    t.err("SparseGaussianProcess::predict", "X", || {
        sp.predict(array![[0.0]].view(), false)
    });
    t.err("SparseGaussianProcess::predict", "X", || {
        sp.predict(array![[0.0, f64::NAN]].view(), false)
    });
    t.err("SparseGaussianProcess::predict_mean", "X", || {
        sp.predict_mean(array![[f64::INFINITY, 0.0]].view())
    });
    t.err("SparseGaussianProcess::objective", "params", || {
        sp.objective(&[0.0])
    });
    t.err("SparseGaussianProcess::objective", "params", || {
        sp.objective(&[f64::NAN; 4])
    });
    t.err("SparseGaussianProcess::optimize", "bounds", || {
        sp.optimize(&OptimizeSettings::default(), Some((&[1.0; 4], &[-1.0; 4])))
    });
    t.err("SparseGaussianProcess::optimize", "bounds", || {
        sp.optimize(&OptimizeSettings::default(), Some((&[1.0; 2], &[2.0; 2])))
    });
    t.check(
        "SparseGaussianProcess (unchanged after failures)",
        state(&sp) == before && fingerprint(&sp) == fp,
        "changed",
    );
    for &e in EXTREME.iter() {
        let xe = array![[e, 0.0], [e, e]];
        if let Some(Ok(p)) = t.no_panic("SparseGaussianProcess::predict(extreme)", || {
            sp.predict(xe.view(), true)
        }) {
            t.check(
                &format!("SparseGaussianProcess::predict({e}) finite, var >= 0"),
                p.mean.iter().all(|v| v.is_finite())
                    && p.var.iter().all(|v| v.is_finite() && *v >= 0.0),
                (&p.mean, &p.var),
            );
        }
    }
    let json = sp.to_json().unwrap();
    t.no_panic("SparseGaussianProcess::from_json(valid)", || {
        let back = SparseGaussianProcess::from_json(&json).unwrap();
        assert_eq!(
            state(&back),
            before,
            "a saved sparse model reloads with identical predictions"
        );
    });
    for cut in [0, 1, json.len() / 2, json.len() - 1] {
        t.err(
            &format!("SparseGaussianProcess::from_json(truncated at {cut})"),
            "json",
            || SparseGaussianProcess::from_json(&json[..cut]),
        );
    }

    // minimize.
    let mut f = |p: &[f64]| Ok::<_, intent_engine::Error>((p[0] * p[0], vec![2.0 * p[0]]));
    let s = OptimizeSettings::default();
    t.err("minimize", "x0", || minimize(&mut f, &[], &[], &[], &s));
    t.err("minimize", "", || {
        minimize(&mut f, &[0.0], &[0.0, 1.0], &[1.0], &s)
    });
    t.err("minimize", "", || {
        minimize(&mut f, &[0.0], &[1.0], &[-1.0], &s)
    });
    t.err("minimize", "", || {
        minimize(&mut f, &[f64::NAN], &[-1.0], &[1.0], &s)
    });
    t.err("minimize", "", || {
        minimize(&mut f, &[0.0], &[f64::NAN], &[1.0], &s)
    });
    let mut nanf = |_: &[f64]| Ok::<_, intent_engine::Error>((f64::NAN, vec![f64::NAN]));
    t.err("minimize(objective always NaN)", "", || {
        minimize(&mut nanf, &[0.0], &[-1.0], &[1.0], &s)
    });
    t.finish("sparse GP / minimize");
}

/// Numerical edge cases: noise → 0, constant targets (with and without normalisation), a 1e6
/// dynamic range in inputs and targets, nearly singular kernels, exact duplicates. Each fit is
/// an answer (finite means, variances ≥ 0) or an error — never NaN posing as an answer.
#[test]
fn exact_and_sparse_gp_numerical_edge_cases() {
    let mut t = Battery::new();
    let n = 30;
    let base = Array2::from_shape_fn((n, 1), |(i, _)| i as f64 / n as f64);
    // (name, X, y, noise variance, length scale, normalize_y)
    type Case = (&'static str, Array2<f64>, Array2<f64>, f64, f64, bool);
    let cases: Vec<Case> = vec![
        (
            "noise 0",
            base.clone(),
            base.mapv(f64::sin),
            0.0,
            0.3,
            false,
        ),
        (
            "noise 1e-300",
            base.clone(),
            base.mapv(f64::sin),
            1e-300,
            0.3,
            false,
        ),
        (
            "constant targets",
            base.clone(),
            Array2::from_elem((n, 1), 3.0),
            1e-6,
            0.3,
            false,
        ),
        (
            "constant targets, normalize_y",
            base.clone(),
            Array2::from_elem((n, 1), 3.0),
            1e-6,
            0.3,
            true,
        ),
        (
            "zero targets, normalize_y",
            base.clone(),
            Array2::zeros((n, 1)),
            1e-6,
            0.3,
            true,
        ),
        (
            "1e6 input range",
            base.mapv(|v| 1e-3 + v * 1e3),
            base.mapv(f64::cos),
            1e-6,
            10.0,
            false,
        ),
        (
            "1e6 target range",
            base.clone(),
            base.mapv(|v| if v < 0.5 { 1e-3 } else { 1e3 }),
            1e-6,
            0.3,
            true,
        ),
        (
            "huge targets 1e150",
            base.clone(),
            base.mapv(|v| 1e150 * v),
            1e-6,
            0.3,
            true,
        ),
        (
            "ill-conditioned (length scale 1e3)",
            base.clone(),
            base.mapv(f64::sin),
            1e-10,
            1e3,
            false,
        ),
        (
            "all inputs identical",
            Array2::from_elem((n, 1), 0.5),
            base.clone(),
            1e-8,
            0.3,
            false,
        ),
        (
            "all inputs identical, noise 0",
            Array2::from_elem((n, 1), 0.5),
            base.clone(),
            0.0,
            0.3,
            false,
        ),
    ];
    let xs = Array2::from_shape_fn((9, 1), |(i, _)| i as f64 * 0.125);
    for (name, x, y, noise, ls, norm) in cases {
        let k = Kernel::squared_exponential(1.0, &[ls]).unwrap();
        let mut gp = GaussianProcess::new(
            k.clone(),
            GpSettings {
                noise_variance: noise,
                normalize_y: norm,
                ..GpSettings::default()
            },
        )
        .unwrap();
        if let Some(Ok(())) = t.no_panic(&format!("GaussianProcess::fit({name})"), || {
            gp.fit(x.view(), y.view())
        }) {
            if let Some(Ok(p)) = t.no_panic(&format!("GaussianProcess::predict({name})"), || {
                gp.predict(xs.view())
            }) {
                t.check(
                    &format!("GaussianProcess::predict({name}) finite, var >= 0"),
                    p.mean.iter().all(|v| v.is_finite())
                        && p.var.iter().all(|v| v.is_finite() && *v >= 0.0),
                    (&p.mean, &p.var),
                );
            }
            // Streaming more of the same keeps it an answer.
            if let Some(Ok(())) = t.no_panic(
                &format!("GaussianProcess::add_observations({name})"),
                || {
                    gp.add_observations(
                        x.slice(ndarray::s![..5, ..]),
                        y.slice(ndarray::s![..5, ..]),
                    )
                },
            ) {
                if let Ok(p) = gp.predict(xs.view()) {
                    t.check(
                        &format!(
                            "GaussianProcess::predict after streaming ({name}) finite, var >= 0"
                        ),
                        p.mean.iter().all(|v| v.is_finite())
                            && p.var.iter().all(|v| v.is_finite() && *v >= 0.0),
                        (&p.mean, &p.var),
                    );
                }
            }
            if let Ok(l) = gp.log_marginal_likelihood() {
                t.check(
                    &format!("GaussianProcess::log_marginal_likelihood({name}) not NaN"),
                    !l.is_nan(),
                    l,
                );
            }
        }
        let sp_noise = if noise > 0.0 { noise.max(1e-12) } else { 1e-12 };
        let mut sp = SparseGaussianProcess::new(k, sp_noise)
            .unwrap()
            .with_normalize_y(norm);
        if let Some(Ok(())) = t.no_panic(&format!("SparseGaussianProcess::fit({name})"), || {
            sp.fit(
                x.view(),
                y.view(),
                InducingInit::KMeans {
                    m: 8,
                    seed: 0,
                    iters: 5,
                },
            )
        }) {
            if let Some(Ok(p)) = t
                .no_panic(&format!("SparseGaussianProcess::predict({name})"), || {
                    sp.predict(xs.view(), true)
                })
            {
                t.check(
                    &format!("SparseGaussianProcess::predict({name}) finite, var >= 0"),
                    p.mean.iter().all(|v| v.is_finite())
                        && p.var.iter().all(|v| v.is_finite() && *v >= 0.0),
                    (&p.mean, &p.var),
                );
            }
        }
    }
    t.finish("GP numerical edge cases");
}
