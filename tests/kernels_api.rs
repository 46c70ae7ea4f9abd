//! Kernel API through the public interface: allocation-free hot path, invariants checked
//! with proptest, backend errors.

mod common;

use common::{allocs, Counting};

use intent_engine::gp::{Kernel, KernelWorkspace, MaternNu};
use intent_engine::{Backend, ErrorKind, Par};
use ndarray::Array2;
use proptest::prelude::*;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn grid(n: usize, d: usize) -> Array2<f64> {
    Array2::from_shape_fn((n, d), |(i, k)| ((i * 7 + k * 3) % 11) as f64 * 0.3 - 1.0)
}

#[test]
fn matrix_into_and_diag_into_do_not_allocate_after_warm_up() {
    let k = Kernel::squared_exponential(1.0, &[0.5, 1.0, 2.0]).unwrap()
        * Kernel::periodic(1.0, 1.0, 2.0).unwrap()
        + Kernel::white(0.1).unwrap();
    // 700² doubles = 3.9 MB: small; 800² = 5.1 MB takes the streaming-store path.
    for n in [50, 800] {
        let x = grid(n, 3);
        let y = grid(n / 2, 3);
        let mut out = Array2::zeros((n, n));
        let mut cross = Array2::zeros((n, n / 2));
        let mut diag = ndarray::Array1::zeros(n);
        let mut ws = KernelWorkspace::new();
        k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
            .unwrap();
        k.matrix_into(
            x.view(),
            Some(y.view()),
            cross.view_mut(),
            &mut ws,
            Par::Seq,
        )
        .unwrap();
        let before = allocs();
        for _ in 0..5 {
            k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
                .unwrap();
            k.matrix_into(
                x.view(),
                Some(y.view()),
                cross.view_mut(),
                &mut ws,
                Par::Seq,
            )
            .unwrap();
            k.diag_into(x.view(), diag.view_mut()).unwrap();
        }
        assert_eq!(allocs(), before, "n = {n}: hot path allocated");
        // and the streamed result equals the allocating path
        assert_eq!(out, k.matrix(x.view(), None, Par::Seq).unwrap());
    }
}

#[test]
fn cuda_backend_is_a_clear_error_without_the_feature() {
    if cfg!(feature = "cuda") {
        return;
    }
    let e = Backend::cuda(0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BackendUnavailable);
    assert!(e.to_string().contains("CUDA"), "{e}");
    assert!(matches!(Backend::auto(), Backend::Cpu));
    assert!(matches!(Backend::parse("cpu"), Ok(Backend::Cpu)));
    assert_eq!(
        Backend::parse("tpu").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        Backend::parse("cuda:1").unwrap_err().kind(),
        ErrorKind::BackendUnavailable
    );
}

fn any_kernel() -> impl Strategy<Value = Kernel> {
    let ls = prop::collection::vec(0.1f64..5.0, 1..=1);
    let leaf = prop_oneof![
        (0.1f64..3.0, ls.clone()).prop_map(|(v, l)| Kernel::squared_exponential(v, &l).unwrap()),
        (0.1f64..3.0, ls.clone(), 0..3usize).prop_map(|(v, l, nu)| {
            let nu = [MaternNu::Half, MaternNu::ThreeHalves, MaternNu::FiveHalves][nu];
            Kernel::matern(nu, v, &l).unwrap()
        }),
        (0.1f64..3.0, ls, 0.1f64..5.0)
            .prop_map(|(v, l, a)| Kernel::rational_quadratic(v, &l, a).unwrap()),
        (0.1f64..3.0, 0.2f64..3.0, 0.5f64..4.0)
            .prop_map(|(v, l, p)| Kernel::periodic(v, l, p).unwrap()),
        (0.1f64..3.0).prop_map(|v| Kernel::linear(v).unwrap()),
        (0.1f64..3.0).prop_map(|c| Kernel::constant(c).unwrap()),
        (0.01f64..1.0).prop_map(|s| Kernel::white(s).unwrap()),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| a + b),
            (inner.clone(), inner).prop_map(|(a, b)| a * b),
        ]
    })
}

proptest! {
    // A fixed seed so that every CI run checks the same cases.
    #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123), ..ProptestConfig::with_cases(64) })]

    /// K(X, X) is symmetric with the kernel's diagonal, K(X, Y) = K(Y, X)ᵀ, every entry is
    /// finite, and the thread count does not change a bit of it.
    #[test]
    fn kernel_matrix_invariants(
        k in any_kernel(),
        pts in prop::collection::vec(-50.0f64..50.0, 2..60),
        d in 1usize..4,
    ) {
        let n = pts.len() / d;
        prop_assume!(n >= 1);
        let x = Array2::from_shape_vec((n, d), pts[..n * d].to_vec()).unwrap();
        let y = x.slice(ndarray::s![..;2, ..]).to_owned();
        let kxx = k.matrix(x.view(), None, Par::Seq).unwrap();
        let diag = k.diag(x.view()).unwrap();
        prop_assert!(kxx.iter().all(|v| v.is_finite()));
        for i in 0..n {
            let tol = 1e-13 * diag[i].abs().max(1.0);
            prop_assert!((kxx[[i, i]] - diag[i]).abs() <= tol);
            for j in 0..i {
                prop_assert!((kxx[[i, j]] - kxx[[j, i]]).abs() <= 1e-13 * kxx[[i, j]].abs().max(1e-300));
            }
        }
        let kxy = k.matrix(x.view(), Some(y.view()), Par::Seq).unwrap();
        let kyx = k.matrix(y.view(), Some(x.view()), Par::Seq).unwrap();
        for ((a, b), _) in kxy.iter().zip(kyx.t().iter()).zip(0..) {
            prop_assert!((a - b).abs() <= 1e-13 * a.abs().max(1e-300));
        }
        prop_assert_eq!(k.matrix(x.view(), None, Par::Rayon(2)).unwrap(), kxx);
    }

    /// Stationary kernels give a positive semi-definite K(X, X): xᵀKx ≥ −tol for random x.
    #[test]
    fn stationary_kernels_are_psd(
        ls in 0.2f64..3.0,
        pts in prop::collection::vec(-3.0f64..3.0, 10..40),
        w in prop::collection::vec(-1.0f64..1.0, 40),
    ) {
        let n = pts.len() / 2;
        let x = Array2::from_shape_vec((n, 2), pts[..2 * n].to_vec()).unwrap();
        for k in [
            Kernel::squared_exponential(1.0, &[ls]).unwrap(),
            Kernel::matern(MaternNu::ThreeHalves, 1.0, &[ls, 2.0 * ls]).unwrap(),
            Kernel::rational_quadratic(1.0, &[ls], 0.7).unwrap(),
        ] {
            let m = k.matrix(x.view(), None, Par::Seq).unwrap();
            let v = ndarray::Array1::from_vec(w[..n].to_vec());
            let q = v.dot(&m.dot(&v));
            prop_assert!(q >= -1e-10 * (n as f64), "{k}: quadratic form {q}");
        }
    }
}
