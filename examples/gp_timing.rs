//! Quick steady-state timings of the exact GP's streaming paths (n = 1000, d = 3):
//! `cargo run --release --example gp_timing`.
use intent_engine::gp::{GaussianProcess, GpSettings, GpWorkspace, Kernel};
use ndarray::Array2;
use std::time::Instant;

fn main() -> Result<(), intent_engine::Error> {
    let n = 1000;
    let x = Array2::from_shape_fn((n + 200, 3), |(i, k)| {
        ((i * 37 + k * 11) % 101) as f64 / 17.0 - 3.0
    });
    let y = Array2::from_shape_fn((n + 200, 1), |(i, _)| (x[[i, 0]]).sin());
    let mut gp = GaussianProcess::new(
        Kernel::squared_exponential(1.0, &[0.8])?,
        GpSettings {
            noise_variance: 1e-2,
            capacity: n + 210,
            ..Default::default()
        },
    )?;
    gp.fit(x.slice(ndarray::s![..n, ..]), y.slice(ndarray::s![..n, ..]))?;
    let mut ws = GpWorkspace::new();
    let (mut m, mut v) = ([0.0], [0.0]);
    let reps = 200;
    let t = Instant::now();
    for r in 0..reps {
        gp.add_observations(
            x.slice(ndarray::s![n + r..n + r + 1, ..]),
            y.slice(ndarray::s![n + r..n + r + 1, ..]),
        )?;
    }
    println!(
        "append one (n≈{}): {:.1} µs",
        n + reps / 2,
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    let t = Instant::now();
    for _ in 0..reps {
        gp.remove_oldest(1)?;
    }
    println!(
        "remove one: {:.1} µs",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    let t = Instant::now();
    for _ in 0..reps {
        gp.predict_one_into(&[0.1, 0.2, 0.3], &mut m, Some(&mut v), &mut ws)?;
    }
    println!(
        "predict mean+var: {:.1} µs",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    let xs = Array2::from_shape_fn((1000, 3), |(i, k)| {
        ((i * 13 + k * 7) % 97) as f64 / 16.0 - 3.0
    });
    let t = Instant::now();
    for _ in 0..5 {
        let _ = gp.predict(xs.view())?;
    }
    println!(
        "predict batch 1000 mean+var: {:.2} ms",
        t.elapsed().as_secs_f64() / 5.0 * 1e3
    );
    let t = Instant::now();
    for _ in 0..5 {
        let _ = gp
            .kernel()
            .matrix(xs.view(), Some(gp.inputs()), intent_engine::Par::Seq)?;
    }
    println!(
        "  of which K*: {:.2} ms",
        t.elapsed().as_secs_f64() / 5.0 * 1e3
    );
    let mut opt = gp.clone();
    opt.remove_oldest(opt.n_observations() - 300)?;
    let t = Instant::now();
    let r = opt.optimize(
        &intent_engine::gp::OptimizeSettings::default(),
        &intent_engine::gp::HyperBounds {
            noise: None,
            ..Default::default()
        },
    )?;
    println!(
        "optimize n=300: {:.1} ms, {} evaluations",
        t.elapsed().as_secs_f64() * 1e3,
        r.optimizer.n_evals
    );
    let mut p = opt.kernel().theta();
    p.push(opt.noise_variance().ln());
    let t = Instant::now();
    for _ in 0..10 {
        let _ = opt.log_marginal_likelihood_gradient(&p)?;
    }
    println!(
        "  one LML+gradient evaluation: {:.2} ms",
        t.elapsed().as_secs_f64() / 10.0 * 1e3
    );
    Ok(())
}
