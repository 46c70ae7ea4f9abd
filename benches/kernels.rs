//! Criterion benches for kernel matrices: K(X, X) at n = 2000, d = 3, one thread, per kernel
//! and per SIMD tier, plus the threaded default and the gradient.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use intent_engine::gp::{Kernel, KernelWorkspace, MaternNu};
use intent_engine::linalg::simd::SimdLevel;
use intent_engine::Par;
use ndarray::Array2;
use rand::{Rng, SeedableRng};

fn inputs(n: usize, d: usize) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    Array2::from_shape_fn((n, d), |_| rng.random_range(-2.0..2.0))
}

fn kernels() -> Vec<(&'static str, Kernel)> {
    vec![
        ("rbf", Kernel::squared_exponential(1.0, &[0.7]).unwrap()),
        (
            "rbf_ard",
            Kernel::squared_exponential(1.0, &[0.7, 1.0, 1.5]).unwrap(),
        ),
        (
            "matern12",
            Kernel::matern(MaternNu::Half, 1.0, &[0.7]).unwrap(),
        ),
        (
            "matern32",
            Kernel::matern(MaternNu::ThreeHalves, 1.0, &[0.7]).unwrap(),
        ),
        (
            "matern52",
            Kernel::matern(MaternNu::FiveHalves, 1.0, &[0.7]).unwrap(),
        ),
        ("rq", Kernel::rational_quadratic(1.0, &[0.7], 1.5).unwrap()),
        ("periodic", Kernel::periodic(1.0, 1.0, 2.0).unwrap()),
        ("linear", Kernel::linear(1.0).unwrap()),
    ]
}

fn bench_matrix(c: &mut Criterion) {
    let n = 2000;
    let x = inputs(n, 3);
    let mut out = Array2::zeros((n, n));
    let mut ws = KernelWorkspace::new();
    let mut g = c.benchmark_group("kernel_matrix_n2000_d3_1thread");
    g.sample_size(20);
    for (name, k) in kernels() {
        for level in SimdLevel::available() {
            SimdLevel::set_override(Some(level));
            g.bench_function(BenchmarkId::new(name, format!("{level:?}")), |b| {
                b.iter(|| {
                    k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Seq)
                        .unwrap();
                });
            });
        }
        SimdLevel::set_override(None);
    }
    g.finish();
    let mut g = c.benchmark_group("kernel_matrix_n2000_d3_all_threads");
    g.sample_size(20);
    for (name, k) in kernels().into_iter().take(3) {
        g.bench_function(name, |b| {
            b.iter(|| {
                k.matrix_into(x.view(), None, out.view_mut(), &mut ws, Par::Rayon(0))
                    .unwrap();
            });
        });
    }
    g.finish();
}

fn bench_gradient(c: &mut Criterion) {
    let n = 500;
    let x = inputs(n, 3);
    let k = Kernel::squared_exponential(1.0, &[0.7, 1.0, 1.5]).unwrap();
    let w = inputs(n, n);
    let mut ws = KernelWorkspace::new();
    let mut g = c.benchmark_group("kernel_gradient_n500_d3_ard");
    g.sample_size(20);
    g.bench_function("stored", |b| {
        b.iter(|| k.gradient(x.view(), Par::Seq).unwrap())
    });
    let mut out = vec![0.0; k.n_params()];
    g.bench_function("contracted", |b| {
        b.iter(|| {
            k.gradient_dot(x.view(), w.view(), &mut out, &mut ws, Par::Seq)
                .unwrap()
        });
    });
    g.finish();
}

criterion_group!(benches, bench_matrix, bench_gradient);
criterion_main!(benches);
