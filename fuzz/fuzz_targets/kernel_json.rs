//! `Kernel::from_json` on arbitrary bytes; a loaded kernel is evaluated and round-tripped.
#![no_main]

use intent_engine::gp::Kernel;
use intent_engine::Par;
use libfuzzer_sys::fuzz_target;
use ndarray::Array2;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(k) = Kernel::from_json(text) else { return };
    let d = k.input_dim().unwrap_or(2).min(64);
    let x = Array2::from_shape_fn((3, d), |(i, j)| i as f64 - 0.5 * j as f64);
    if let Ok(m) = k.matrix(x.view(), None, Par::Seq) {
        assert!(m.iter().all(|v| v.is_finite()), "kernel matrix returned non-finite values");
    }
    let _ = k.gradient(x.view(), Par::Seq);
    let json = k.to_json().expect("a loaded kernel serialises");
    let back = Kernel::from_json(&json).expect("a serialised kernel reloads");
    assert_eq!(back.theta(), k.theta());
});
