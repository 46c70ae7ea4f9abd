//! Criterion benches for the exact GP at n = 1000, d = 3 (single thread), against gprx in
//! the same run: single-point mean+var and mean only, a batch of 1000 points, appending and
//! removing one observation, and hyperparameter optimisation (n = 200).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use gprx::kernel::{KernelSpec, RbfKernel};
use gprx::{Fixed, GaussianLikelihood, Gpr, Prediction as GprxPrediction};
use intent_engine::gp::{
    GaussianProcess, GpSettings, GpWorkspace, HyperBounds, Kernel, OptimizeSettings,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};

const N: usize = 1000;
const D: usize = 3;
const LS: f64 = 0.8;
const NOISE: f64 = 1e-2;

fn data(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, D), |_| rng.random_range(-3.0..3.0));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| {
        f64::sin(x[[i, 0]]) + 0.3 * x[[i, 1]] + 0.05 * rng.random_range(-1.0..1.0)
    });
    (x, y)
}

fn ours(n: usize) -> GaussianProcess {
    let (x, y) = data(n, 0);
    let mut gp = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[LS]).unwrap(),
        GpSettings {
            noise_variance: NOISE,
            capacity: n + 64,
            ..Default::default()
        },
    )
    .unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    gp
}

fn bench_predict(c: &mut Criterion) {
    let gp = ours(N);
    let (xs, _) = data(N, 1);
    let x0 = [0.3, -0.2, 0.7];
    let mut ws = GpWorkspace::new();
    let (mut m, mut v) = ([0.0], [0.0]);
    let (x, y) = data(N, 0);
    let gprx_fit = Gpr::new(
        KernelSpec::from(RbfKernel::new(LS).unwrap()),
        GaussianLikelihood::new(NOISE).unwrap(),
    )
    .with_optimizer(Fixed)
    .factor(x.as_slice().unwrap(), N, D, y.as_slice().unwrap())
    .unwrap();
    let mut gprx_fit = gprx_fit;
    let mut gprx_pred = GprxPrediction::default();
    let mut g = c.benchmark_group("gp_n1000_d3");
    g.bench_function("predict_one_mean_var/ours", |b| {
        b.iter(|| {
            gp.predict_one_into(&x0, &mut m, Some(&mut v), &mut ws)
                .unwrap()
        });
    });
    g.bench_function("predict_one_mean_var/gprx", |b| {
        b.iter(|| gprx_fit.predict_into(&x0, 1, D, &mut gprx_pred).unwrap());
    });
    g.bench_function("predict_one_mean/ours", |b| {
        b.iter(|| gp.predict_one_into(&x0, &mut m, None, &mut ws).unwrap());
    });
    g.sample_size(20);
    g.bench_function("predict_batch1000_mean_var/ours", |b| {
        b.iter(|| gp.predict(xs.view()).unwrap())
    });
    g.bench_function("predict_batch1000_mean_var/gprx", |b| {
        b.iter(|| {
            gprx_fit
                .predict_into(xs.as_slice().unwrap(), N, D, &mut gprx_pred)
                .unwrap()
        });
    });
    // Streaming at steady state: a sliding window of N, each step appends one observation and
    // drops the oldest (ours: max_observations; gprx: insert + delete of the oldest id).
    let (xstream, _) = data(4096, 2);
    let mut settings = gp.settings().clone();
    settings.max_observations = Some(N);
    let mut window = GaussianProcess::new(gp.kernel().clone(), settings).unwrap();
    window.fit(x.view(), y.view()).unwrap();
    let mut i = 0usize;
    g.bench_function("append_drop_oldest/ours", |b| {
        b.iter(|| {
            let r = i % 4096;
            i += 1;
            window
                .add_observations(
                    xstream.slice(ndarray::s![r..=r, ..]),
                    y.slice(ndarray::s![..1, ..]),
                )
                .unwrap();
        });
    });
    let mut online = gprx_fit.clone().into_online().unwrap();
    let mut ids: std::collections::VecDeque<_> = online.point_ids().iter().copied().collect();
    let mut j = 0usize;
    g.bench_function("append_drop_oldest/gprx", |b| {
        b.iter(|| {
            let r = j % 4096;
            j += 1;
            let row = xstream.row(r).to_vec();
            ids.push_back(online.insert(&row, 0.1).unwrap());
            if let Some(old) = ids.pop_front() {
                online.delete(old).unwrap();
            }
        });
    });
    g.bench_function("remove_oldest_one/ours", |b| {
        b.iter_batched_ref(
            || gp.clone(),
            |m| m.remove_oldest(1).unwrap(),
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

fn bench_optimize(c: &mut Criterion) {
    let gp = ours(200);
    let mut g = c.benchmark_group("gp_optimize_n200_d3");
    g.sample_size(10);
    g.bench_function("ours", |b| {
        b.iter_batched_ref(
            || gp.clone(),
            |m| {
                m.optimize(
                    &OptimizeSettings::default(),
                    &HyperBounds {
                        noise: None,
                        ..HyperBounds::default()
                    },
                )
                .unwrap()
            },
            BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, bench_predict, bench_optimize);
criterion_main!(benches);
