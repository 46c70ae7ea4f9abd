//! `GaussianProcess::from_json` on arbitrary bytes; a loaded model must predict (finite
//! means, non-negative variances), stream an observation, and round-trip.
#![no_main]

use intent_engine::gp::GaussianProcess;
use libfuzzer_sys::fuzz_target;
use ndarray::Array2;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(mut gp) = GaussianProcess::from_json(text) else { return };
    let d = gp.input_dim();
    let m = gp.n_outputs();
    if d == 0 || d > 64 || m == 0 || m > 64 {
        return;
    }
    let x = Array2::from_shape_fn((2, d), |(i, j)| i as f64 * 0.3 - j as f64 * 0.1);
    if let Ok(p) = gp.predict(x.view()) {
        assert!(p.mean.iter().all(|v| v.is_finite()), "non-finite mean");
        assert!(p.var.iter().all(|v| v.is_finite() && *v >= 0.0), "bad variance");
    }
    let y = Array2::from_shape_fn((1, m), |(_, j)| j as f64);
    let _ = gp.add_observations(x.slice(ndarray::s![..1, ..]), y.view());
    if let Ok(json) = gp.to_json() {
        GaussianProcess::from_json(&json).expect("a saved model reloads");
    }
});
