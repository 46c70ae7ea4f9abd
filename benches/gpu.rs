//! GPU benchmark of issue 8 (exact GP at n = 20,000, d = 3; goal-inference filter at 10⁶
//! particles; resampling bias), run on the lent GPU by `scripts/gpu_run.sh`, which then runs
//! the GPyTorch / PyTorch anchors (`scripts/gpu_anchors.py`) on the same data.
//!
//! Writes `$OUT_DIR` (default `target/gpu-bench`): `data/{x,y,xs}.f64` (raw little-endian),
//! `mean.f64`, `var.f64` and `ours.json`. Without a CUDA device it prints why and exits 0.
//! Timings: median of `REPS` runs after an untimed warm-up (NVRTC, module load, allocation).

use std::time::Instant;

use intent_engine::backend::cuda::belief::{systematic_ancestors, GpuGoalInference};
use intent_engine::backend::cuda::gp::{GpuExactGp, RbfParams, TraceEstimator};
use intent_engine::belief::{FilterSettings, Goal, GoalModelSettings, StepStatus};
use intent_engine::Backend;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn write(path: &std::path::Path, v: &[f64]) {
    let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, b).expect("write");
}

fn p_json(p: &RbfParams) -> String {
    format!(
        "{{\"variance\": {:.17e}, \"length_scale\": [{}], \"noise\": {:.17e}}}",
        p.variance,
        p.length_scale
            .iter()
            .map(|l| format!("{l:.17e}"))
            .collect::<Vec<_>>()
            .join(", "),
        p.noise_variance
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dev = match Backend::cuda(0) {
        Ok(Backend::Cuda(d)) => d,
        Ok(Backend::Cpu) => return,
        Err(e) => {
            println!("gpu bench SKIPPED: {e}");
            return;
        }
    };
    let arg = |name: &str, def: usize| -> usize {
        let a: Vec<String> = std::env::args().collect();
        a.iter()
            .position(|x| x == name)
            .and_then(|i| a.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(def)
    };
    let (n, m, steps, reps, particles, probes) = (
        arg("--n", 20_000),
        arg("--m", 10_000),
        arg("--steps", 20),
        arg("--reps", 3),
        arg("--particles", 1_000_000),
        arg("--probes", 10),
    );
    let out = std::path::PathBuf::from(
        std::env::var("OUT_DIR").unwrap_or_else(|_| "target/gpu-bench".into()),
    );
    std::fs::create_dir_all(out.join("data")).expect("mkdir");
    println!("device: {} ({})", dev.name(), dev.arch());

    // Data: x ~ U[-3, 3]^3, y = sin x0 + 0.5 cos 2x1 + 0.1 x2² + 0.1 ε.
    let mut r = ChaCha8Rng::seed_from_u64(0);
    let x: Array2<f64> = Array2::from_shape_fn((n, 3), |_| r.random_range(-3.0..3.0));
    let y: Vec<f64> = (0..n)
        .map(|i| {
            let e: f64 = r.sample(StandardNormal);
            x[[i, 0]].sin() + 0.5 * (2.0 * x[[i, 1]]).cos() + 0.1 * x[[i, 2]] * x[[i, 2]] + 0.1 * e
        })
        .collect();
    let xs: Array2<f64> = Array2::from_shape_fn((m, 3), |_| r.random_range(-3.0..3.0));
    write(&out.join("data/x.f64"), x.as_slice().expect("contiguous"));
    write(&out.join("data/y.f64"), &y);
    write(&out.join("data/xs.f64"), xs.as_slice().expect("contiguous"));

    let init = RbfParams {
        variance: 1.0,
        length_scale: vec![1.0; 3],
        noise_variance: 0.1,
    };
    let pred = RbfParams {
        variance: 1.0,
        length_scale: vec![1.2, 0.8, 2.0],
        noise_variance: 0.01,
    };
    let mut gp = GpuExactGp::new(&dev, x.view(), &y, init.clone()).expect("gp");
    let hutch = TraceEstimator::Hutchinson { probes, seed: 7 };

    // Fit: 20 Adam steps (lr 0.1), Hutchinson trace, exact solves and LML.
    gp.fit_adam(2, 0.1, hutch).expect("warm-up");
    let mut t_fit = Vec::new();
    let mut rep = None;
    for _ in 0..reps {
        gp.set_params(init.clone()).expect("params");
        let t = Instant::now();
        rep = Some(gp.fit_adam(steps, 0.1, hutch).expect("fit"));
        t_fit.push(t.elapsed().as_secs_f64());
    }
    let rep = rep.expect("at least one rep");
    let lml_final = gp.log_marginal_likelihood().expect("lml");
    println!(
        "fit (Hutchinson, {probes} probes): {:.3} s median of {reps}; LML {:.3} -> {:.3}",
        median(t_fit.clone()),
        rep.lml[0],
        lml_final
    );
    // Exact trace (potri) once, for the record.
    gp.set_params(init.clone()).expect("params");
    gp.fit_adam(1, 0.1, TraceEstimator::Exact)
        .expect("warm-up exact");
    gp.set_params(init.clone()).expect("params");
    let t = Instant::now();
    let rep_exact = gp
        .fit_adam(steps, 0.1, TraceEstimator::Exact)
        .expect("fit exact");
    let t_exact = t.elapsed().as_secs_f64();
    let lml_exact = gp.log_marginal_likelihood().expect("lml");
    println!("fit (exact trace): {t_exact:.3} s; LML -> {lml_exact:.3}");

    // Predict 10,000 points with variances (incl. noise), from fresh hyperparameters: the
    // time includes K, the Cholesky factorisation, α and the trsm.
    gp.set_params(pred.clone()).expect("params");
    gp.predict(xs.slice(ndarray::s![..100, ..]), true)
        .expect("warm-up");
    let mut t_pred = Vec::new();
    let mut res = None;
    for _ in 0..reps {
        gp.set_params(pred.clone()).expect("params");
        let t = Instant::now();
        res = Some(gp.predict(xs.view(), true).expect("predict"));
        t_pred.push(t.elapsed().as_secs_f64());
    }
    let (mean, var) = res.expect("at least one rep");
    write(&out.join("mean.f64"), &mean);
    write(&out.join("var.f64"), &var);
    println!(
        "predict {m} with variances: {:.4} s median of {reps}",
        median(t_pred.clone())
    );

    // Particle filter: goal inference, 4 goals, 10^6 particles, walking along +x.
    let goals = [
        Goal::point(5.0, 0.0),
        Goal::point(0.0, 5.0),
        Goal::point(-5.0, 0.0),
        Goal::point(0.0, -5.0),
    ];
    let fs = FilterSettings {
        n_particles: particles,
        seed: 1,
        ..Default::default()
    };
    let mut gi = GpuGoalInference::new(
        &dev,
        &goals,
        GoalModelSettings {
            dt: 0.1,
            ..Default::default()
        },
        fs,
    )
    .expect("pf");
    let mut t = 0usize;
    let mut obs = || {
        t += 1;
        [0.12 * t as f64, 0.0]
    };
    for _ in 0..30 {
        gi.update(obs()).expect("warm-up step");
    }
    let mut ts = Vec::new();
    let mut resampled = 0;
    for _ in 0..200 {
        let z = obs();
        let t0 = Instant::now();
        let info = gi.update(z).expect("step");
        ts.push(t0.elapsed().as_secs_f64());
        resampled += usize::from(info.status == StepStatus::Resampled);
    }
    let pf_mean = ts.iter().sum::<f64>() / ts.len() as f64;
    let pf_med = median(ts);
    let post = gi.goal_probabilities();
    println!("pf step at {particles}: median {:.1} us, mean {:.1} us ({resampled}/200 resampled); posterior {post:?}", pf_med * 1e6, pf_mean * 1e6);

    // Resampling-step cost alone (ESS threshold 1 forces it every step).
    let fs1 = FilterSettings {
        n_particles: particles,
        seed: 2,
        ess_threshold: 1.0,
        ..Default::default()
    };
    let mut gi1 = GpuGoalInference::new(
        &dev,
        &goals,
        GoalModelSettings {
            dt: 0.1,
            ..Default::default()
        },
        fs1,
    )
    .expect("pf");
    let mut ts1 = Vec::new();
    for k in 0..130 {
        let z = [0.12 * f64::from(k), 0.0];
        let t0 = Instant::now();
        gi1.update(z).expect("step");
        if k >= 30 {
            ts1.push(t0.elapsed().as_secs_f64());
        }
    }
    let pf_rs = median(ts1);
    println!(
        "pf step with resampling every step: median {:.1} us",
        pf_rs * 1e6
    );

    // Resampling bias at 10^6 float32 log-weights (see tests/gpu.rs for the assertion).
    let nb = 1_000_000usize;
    let logw: Vec<f32> = (0..nb).map(|i| -10.0 * i as f32 / nb as f32).collect();
    let w: Vec<f64> = logw.iter().map(|&l| f64::from(l).exp()).collect();
    let tot: f64 = w.iter().sum();
    let mut counts = vec![0.0f64; 100];
    let reps_b = 64;
    for k in 0..reps_b {
        let anc = systematic_ancestors(&dev, &logw, (f64::from(k) + 0.5) / f64::from(reps_b))
            .expect("resample");
        for a in anc {
            counts[a as usize / 10_000] += 1.0 / f64::from(reps_b);
        }
    }
    let worst = counts
        .iter()
        .enumerate()
        .map(|(b, c)| {
            (c - w[b * 10_000..(b + 1) * 10_000].iter().sum::<f64>() * nb as f64 / tot).abs()
        })
        .fold(0.0, f64::max);
    println!("resampling bias at 1e6 (f32 weights, f64 prefix): worst bucket |mean − expected| = {worst:.4} (bound 1)");

    let json = format!(
        "{{\"device\": \"{}\", \"n\": {n}, \"m\": {m}, \"steps\": {steps}, \"probes\": {probes}, \"init\": {}, \"pred_params\": {}, \"fitted\": {}, \"fitted_exact\": {}, \
\"lml_final\": {lml_final}, \"lml_final_exact\": {lml_exact}, \"fit_s\": {}, \"fit_s_all\": {:?}, \"fit_exact_s\": {t_exact}, \"predict_s\": {}, \"predict_s_all\": {:?}, \
\"pf_particles\": {particles}, \"pf_step_median_s\": {pf_med}, \"pf_step_mean_s\": {pf_mean}, \"pf_resampled\": {resampled}, \"pf_step_resample_every_s\": {pf_rs}, \"pf_posterior\": {:?}, \
\"resample_bias_worst\": {worst}, \"mean_file\": \"{}\", \"var_file\": \"{}\", \"exact_lml_trace\": {:?}}}",
        dev.name(), p_json(&init), p_json(&pred), p_json(&rep.params), p_json(&rep_exact.params),
        median(t_fit.clone()), t_fit, median(t_pred.clone()), t_pred, post,
        out.join("mean.f64").display(), out.join("var.f64").display(), rep_exact.lml
    );
    std::fs::write(out.join("ours.json"), json).expect("write json");
}
