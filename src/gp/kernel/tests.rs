//! Kernel tests: SIMD paths against a plain scalar reference, gradients against finite
//! differences, parallel against sequential, and bad input.

use super::*;
use crate::linalg::simd::SimdLevel;
use ndarray::{Array2, ShapeBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;

/// Serialises tests that change the process-wide SIMD override.
static SIMD_LOCK: Mutex<()> = Mutex::new(());

fn random(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.random_range(-2.0..2.0))
}

/// The textbook formula, element by element, with std's exp/powf.
fn reference(node: &Node, x: &[f64], y: &[f64], same_point: bool) -> f64 {
    let scaled = |ls: &[f64]| -> f64 {
        x.iter()
            .zip(y)
            .enumerate()
            .map(|(k, (a, b))| {
                let l = ls[if ls.len() == 1 { 0 } else { k }];
                ((a - b) / l).powi(2)
            })
            .sum()
    };
    match node {
        Node::SquaredExponential { variance, ls } => variance * (-0.5 * scaled(ls)).exp(),
        Node::Matern { nu, variance, ls } => {
            let r = scaled(ls).sqrt();
            variance
                * match nu {
                    MaternNu::Half => (-r).exp(),
                    MaternNu::ThreeHalves => (1.0 + 3f64.sqrt() * r) * (-(3f64.sqrt()) * r).exp(),
                    MaternNu::FiveHalves => {
                        (1.0 + 5f64.sqrt() * r + 5.0 * r * r / 3.0) * (-(5f64.sqrt()) * r).exp()
                    }
                }
        }
        Node::RationalQuadratic {
            variance,
            ls,
            alpha,
        } => variance * (1.0 + scaled(ls) / (2.0 * alpha)).powf(-alpha),
        Node::Periodic {
            variance,
            ls,
            period,
        } => {
            let dist = x
                .iter()
                .zip(y)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            variance * (-2.0 * ((std::f64::consts::PI * dist / period).sin() / ls).powi(2)).exp()
        }
        Node::Linear { variance } => variance * x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>(),
        Node::Constant { value } => *value,
        Node::White { noise } => {
            if same_point {
                *noise
            } else {
                0.0
            }
        }
        Node::Sum(a, b) => reference(a, x, y, same_point) + reference(b, x, y, same_point),
        Node::Product(a, b) => reference(a, x, y, same_point) * reference(b, x, y, same_point),
    }
}

fn reference_matrix(k: &Kernel, x1: &Array2<f64>, x2: Option<&Array2<f64>>) -> Array2<f64> {
    let x2r = x2.unwrap_or(x1);
    Array2::from_shape_fn((x1.nrows(), x2r.nrows()), |(i, j)| {
        reference(
            &k.node,
            x1.row(i).as_slice().unwrap(),
            x2r.row(j).as_slice().unwrap(),
            x2.is_none() && i == j,
        )
    })
}

fn kernels(d: usize) -> Vec<Kernel> {
    let ard: Vec<f64> = (0..d).map(|k| 0.5 + 0.3 * k as f64).collect();
    vec![
        Kernel::squared_exponential(1.7, &[0.8]).unwrap(),
        Kernel::squared_exponential(0.6, &ard).unwrap(),
        Kernel::matern(MaternNu::Half, 1.3, &ard).unwrap(),
        Kernel::matern(MaternNu::ThreeHalves, 0.9, &[1.1]).unwrap(),
        Kernel::matern(MaternNu::FiveHalves, 2.0, &ard).unwrap(),
        Kernel::rational_quadratic(1.2, &ard, 0.7).unwrap(),
        Kernel::rational_quadratic(0.8, &[1.4], 3.0).unwrap(),
        Kernel::periodic(1.1, 0.9, 2.5).unwrap(),
        Kernel::linear(0.4).unwrap() + Kernel::constant(0.3).unwrap(),
        Kernel::squared_exponential(1.0, &[1.0]).unwrap()
            * Kernel::periodic(1.0, 1.2, 3.0).unwrap()
            + Kernel::white(0.05).unwrap(),
        Kernel::constant(2.0).unwrap()
            * (Kernel::matern(MaternNu::FiveHalves, 1.0, &ard).unwrap()
                + Kernel::rational_quadratic(0.5, &[0.6], 1.5).unwrap()
                    * Kernel::linear(1.0).unwrap()),
    ]
}

fn assert_close(a: &Array2<f64>, b: &Array2<f64>, rtol: f64, what: &str) {
    assert_eq!(a.dim(), b.dim());
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    for ((idx, x), y) in a.indexed_iter().zip(b.iter()) {
        let tol = rtol * (y.abs() + 1e-3 * scale);
        assert!((x - y).abs() <= tol, "{what} at {idx:?}: {x} vs {y}");
    }
}

#[test]
fn matrix_matches_reference_at_every_simd_level() {
    let _g = SIMD_LOCK.lock().unwrap();
    for (n1, n2, d) in [(1, 1, 1), (7, 13, 3), (33, 5, 6), (64, 64, 10)] {
        let x1 = random(n1, d, 1);
        let x2 = random(n2, d, 2);
        for k in kernels(d) {
            let want_cross = reference_matrix(&k, &x1, Some(&x2));
            let want_same = reference_matrix(&k, &x1, None);
            for level in SimdLevel::available() {
                SimdLevel::set_override(Some(level));
                let got = k.matrix(x1.view(), Some(x2.view()), Par::Seq).unwrap();
                assert_close(&got, &want_cross, 1e-13, &format!("{k} {level:?} cross"));
                let got = k.matrix(x1.view(), None, Par::Seq).unwrap();
                assert_close(&got, &want_same, 1e-13, &format!("{k} {level:?} same"));
            }
            SimdLevel::set_override(None);
        }
    }
}

#[test]
fn parallel_equals_sequential_bitwise() {
    let _g = SIMD_LOCK.lock().unwrap();
    let x = random(300, 3, 3);
    for k in kernels(3) {
        let seq = k.matrix(x.view(), None, Par::Seq).unwrap();
        for t in [0, 2, 3] {
            let p = k.matrix(x.view(), None, Par::threads(t)).unwrap();
            assert_eq!(seq, p, "{k} threads={t}");
        }
        let gs = k.gradient(x.view(), Par::Seq).unwrap();
        let gp = k.gradient(x.view(), Par::Rayon(2)).unwrap();
        assert_eq!(gs, gp, "{k} gradient");
    }
}

#[test]
fn matrix_is_symmetric_with_kernel_diagonal() {
    let x = random(40, 4, 4);
    for k in kernels(4) {
        let m = k.matrix(x.view(), None, Par::Seq).unwrap();
        let diag = k.diag(x.view()).unwrap();
        for i in 0..40 {
            assert!(
                (m[[i, i]] - diag[i]).abs() <= 1e-14 * diag[i].abs().max(1.0),
                "{k}"
            );
            for j in 0..i {
                assert!(
                    (m[[i, j]] - m[[j, i]]).abs() <= 1e-14 * m[[i, j]].abs().max(1e-300) + 1e-300,
                    "{k}"
                );
            }
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let x = random(12, 3, 5);
    for k in kernels(3) {
        let g = k.gradient(x.view(), Par::Seq).unwrap();
        let theta = k.theta();
        for q in 0..theta.len() {
            let h = 1e-6;
            let mut tp = theta.clone();
            tp[q] += h;
            let mut tm = theta.clone();
            tm[q] -= h;
            let kp = k
                .with_theta(&tp)
                .unwrap()
                .matrix(x.view(), None, Par::Seq)
                .unwrap();
            let km = k
                .with_theta(&tm)
                .unwrap()
                .matrix(x.view(), None, Par::Seq)
                .unwrap();
            for i in 0..12 {
                for j in 0..12 {
                    let fd = (kp[[i, j]] - km[[i, j]]) / (2.0 * h);
                    let an = g[[i, j, q]];
                    assert!(
                        (fd - an).abs() <= 1e-7 * (1.0 + an.abs()),
                        "{k} param {} at ({i},{j}): analytic {an}, fd {fd}",
                        k.param_names()[q]
                    );
                }
            }
        }
    }
}

#[test]
fn gradient_dot_equals_contracted_gradient() {
    let _g = SIMD_LOCK.lock().unwrap();
    let x = random(50, 2, 6);
    let w = random(50, 50, 7);
    for k in kernels(2) {
        let g = k.gradient(x.view(), Par::Seq).unwrap();
        let p = k.n_params();
        let mut got = vec![0.0; p];
        let mut ws = KernelWorkspace::new();
        k.gradient_dot(x.view(), w.view(), &mut got, &mut ws, Par::Seq)
            .unwrap();
        let mut got_par = vec![0.0; p];
        k.gradient_dot(x.view(), w.view(), &mut got_par, &mut ws, Par::Rayon(2))
            .unwrap();
        assert_eq!(got, got_par, "{k}: thread count changed the result");
        for q in 0..p {
            let want: f64 = (0..50)
                .flat_map(|i| (0..50).map(move |j| (i, j)))
                .map(|(i, j)| w[[i, j]] * g[[i, j, q]])
                .sum();
            assert!(
                (got[q] - want).abs() <= 1e-10 * (1.0 + want.abs()),
                "{k} q={q}"
            );
        }
    }
}

#[test]
fn theta_round_trips_and_names_line_up() {
    for k in kernels(3) {
        let t = k.theta();
        assert_eq!(t.len(), k.n_params());
        assert_eq!(k.param_names().len(), k.n_params());
        let shifted: Vec<f64> = t.iter().map(|v| v + 0.25).collect();
        let k2 = k.with_theta(&shifted).unwrap();
        for (a, b) in k2.theta().iter().zip(&shifted) {
            assert!((a - b).abs() < 1e-14);
        }
    }
    let k = Kernel::squared_exponential(2.0, &[1.0, 3.0]).unwrap() + Kernel::white(0.1).unwrap();
    assert_eq!(
        k.param_names(),
        [
            "k1__variance",
            "k1__length_scale[0]",
            "k1__length_scale[1]",
            "k2__noise"
        ]
    );
}

#[test]
fn workspace_reuse_does_not_reallocate() {
    let k = kernels(3).pop().unwrap();
    let x = random(80, 3, 8);
    let mut out = Array2::zeros((80, 80));
    let mut ws = KernelWorkspace::new();
    k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
        .unwrap();
    let caps = (
        ws.inputs.capacity(),
        ws.offsets.capacity(),
        ws.scratch.capacity(),
    );
    let ptrs = (ws.inputs.as_ptr(), ws.scratch.as_ptr());
    for _ in 0..3 {
        k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
            .unwrap();
    }
    assert_eq!(
        caps,
        (
            ws.inputs.capacity(),
            ws.offsets.capacity(),
            ws.scratch.capacity()
        )
    );
    assert_eq!(ptrs, (ws.inputs.as_ptr(), ws.scratch.as_ptr()));
}

#[test]
fn bad_input_is_an_error_naming_the_argument() {
    let k = Kernel::squared_exponential(1.0, &[1.0, 2.0]).unwrap();
    let x = random(5, 2, 9);
    let msg = |e: Error| e.to_string();
    assert!(msg(k
        .matrix(random(5, 3, 1).view(), None, Par::Seq)
        .unwrap_err())
    .starts_with("X1:"));
    assert!(msg(k
        .matrix(x.view(), Some(random(4, 3, 1).view()), Par::Seq)
        .unwrap_err())
    .starts_with("X2:"));
    assert!(msg(k
        .matrix(Array2::zeros((0, 2)).view(), None, Par::Seq)
        .unwrap_err())
    .starts_with("X1:"));
    let mut bad = x.clone();
    bad[[3, 1]] = f64::NAN;
    assert_eq!(
        k.matrix(bad.view(), None, Par::Seq).unwrap_err(),
        Error::NonFinite {
            name: "X1",
            index: 7
        }
    );
    bad[[3, 1]] = f64::INFINITY;
    assert!(matches!(
        k.matrix(x.view(), Some(bad.view()), Par::Seq),
        Err(Error::NonFinite { name: "X2", .. })
    ));
    for (r, name) in [
        (Kernel::squared_exponential(1.0, &[-1.0]), "length_scale"),
        (Kernel::squared_exponential(0.0, &[1.0]), "variance"),
        (Kernel::squared_exponential(1.0, &[]), "length_scale"),
        (Kernel::matern(MaternNu::Half, f64::NAN, &[1.0]), "variance"),
        (Kernel::rational_quadratic(1.0, &[1.0], -2.0), "alpha"),
        (Kernel::periodic(1.0, 1.0, f64::INFINITY), "period"),
        (Kernel::white(-0.1), "noise"),
    ] {
        assert!(msg(r.unwrap_err()).starts_with(name));
    }
    assert!(MaternNu::from_f64(1.0).is_err());
    let mixed = Kernel::sum(
        k.clone(),
        Kernel::squared_exponential(1.0, &[1.0, 1.0, 1.0]).unwrap(),
    );
    assert!(mixed.is_err());
    let mut k2 = k.clone();
    assert!(k2.set_theta(&[0.0, 1.0]).is_err());
    assert!(k2.set_theta(&[0.0, f64::NAN, 0.0]).is_err());
    assert!(k2.set_theta(&[0.0, 800.0, 0.0]).is_err());
    assert_eq!(k2, k, "a failed set_theta must leave the kernel unchanged");
    let mut wrong = Array2::zeros((5, 4));
    let mut ws = KernelWorkspace::new();
    assert!(msg(k
        .matrix_into(x.view(), None, wrong.view_mut(), &mut ws, Par::Seq)
        .unwrap_err())
    .starts_with("out:"));
    let mut fortran = Array2::zeros((5, 5).f());
    assert!(k
        .matrix_into(x.view(), None, fortran.view_mut(), &mut ws, Par::Seq)
        .is_err());
}

#[test]
fn strided_inputs_give_the_same_answer() {
    let _g = SIMD_LOCK.lock().unwrap();
    let big = random(20, 6, 10);
    let view = big.slice(ndarray::s![..;2, ..;2]);
    let owned = view.to_owned();
    let k = Kernel::matern(MaternNu::ThreeHalves, 1.0, &[0.7, 1.0, 1.3]).unwrap();
    assert_eq!(
        k.matrix(view, None, Par::Seq).unwrap(),
        k.matrix(owned.view(), None, Par::Seq).unwrap()
    );
    let t = big.t();
    let k1 = Kernel::squared_exponential(1.0, &[1.0]).unwrap();
    assert_eq!(
        k1.matrix(t, None, Par::Seq).unwrap(),
        k1.matrix(t.to_owned().view(), None, Par::Seq).unwrap()
    );
}

#[test]
fn input_gradients_match_finite_differences() {
    let data = random(9, 3, 11);
    let x = [0.3, -0.7, 1.1];
    for k in kernels(3) {
        let mut vals = vec![0.0; 9];
        let mut grads = Array2::zeros((9, 3));
        let mut scratch = vec![0.0; k.input_gradient_scratch_len(3)];
        k.cross_gradient_into(&x, data.view(), &mut vals, grads.view_mut(), &mut scratch)
            .unwrap();
        let base = k
            .matrix(
                ndarray::ArrayView2::from_shape((1, 3), &x).unwrap(),
                Some(data.view()),
                Par::Seq,
            )
            .unwrap();
        for j in 0..9 {
            assert!(
                (vals[j] - base[[0, j]]).abs() < 1e-13 * base[[0, j]].abs().max(1.0),
                "{k}"
            );
        }
        for c in 0..3 {
            let h = 1e-6;
            let (mut xp, mut xm) = (x, x);
            xp[c] += h;
            xm[c] -= h;
            let kp = k
                .matrix(
                    ndarray::ArrayView2::from_shape((1, 3), &xp).unwrap(),
                    Some(data.view()),
                    Par::Seq,
                )
                .unwrap();
            let km = k
                .matrix(
                    ndarray::ArrayView2::from_shape((1, 3), &xm).unwrap(),
                    Some(data.view()),
                    Par::Seq,
                )
                .unwrap();
            for j in 0..9 {
                let fd = (kp[[0, j]] - km[[0, j]]) / (2.0 * h);
                assert!(
                    (fd - grads[[j, c]]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{k} d{c} j{j}: {fd} vs {}",
                    grads[[j, c]]
                );
            }
        }
        let mut g = [0.0; 3];
        let kxx = k.diag_gradient_into(&x, &mut g, &mut scratch).unwrap();
        let xa = ndarray::ArrayView2::from_shape((1, 3), &x).unwrap();
        assert!((kxx - k.diag(xa).unwrap()[0]).abs() < 1e-13 * kxx.abs().max(1.0));
        for c in 0..3 {
            let h = 1e-6;
            let (mut xp, mut xm) = (x, x);
            xp[c] += h;
            xm[c] -= h;
            let dp = k
                .diag(ndarray::ArrayView2::from_shape((1, 3), &xp).unwrap())
                .unwrap()[0];
            let dm = k
                .diag(ndarray::ArrayView2::from_shape((1, 3), &xm).unwrap())
                .unwrap()[0];
            assert!(
                ((dp - dm) / (2.0 * h) - g[c]).abs() < 1e-6 * (1.0 + g[c].abs()),
                "{k} diag d{c}"
            );
        }
    }
}
