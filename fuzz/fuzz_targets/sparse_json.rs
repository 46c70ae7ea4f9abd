//! `SparseGaussianProcess::from_json` on arbitrary bytes; a loaded model must predict and
//! round-trip.
#![no_main]

use intent_engine::gp::SparseGaussianProcess;
use libfuzzer_sys::fuzz_target;
use ndarray::Array2;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(gp) = SparseGaussianProcess::from_json(text) else { return };
    let Some(z) = gp.inducing_points() else { return };
    let d = z.ncols();
    if d == 0 || d > 64 {
        return;
    }
    let x = Array2::from_shape_fn((2, d), |(i, j)| i as f64 * 0.3 - j as f64 * 0.1);
    if let Ok(p) = gp.predict(x.view(), true) {
        assert!(p.mean.iter().all(|v| v.is_finite()), "non-finite mean");
        assert!(p.var.iter().all(|v| v.is_finite() && *v >= 0.0), "bad variance");
    }
    let _ = gp.log_marginal_likelihood_bound();
    if let Ok(json) = gp.to_json() {
        SparseGaussianProcess::from_json(&json).expect("a saved model reloads");
    }
});
