//! Writes small seed corpora for the fuzz targets from valid objects and files:
//! `cargo run --release --bin make_seeds` in `fuzz/` (writes `fuzz/seeds/<target>/`).

use std::fs;
use std::path::Path;

use intent_engine::gp::{
    GaussianProcess, GpSettings, InducingInit, Kernel, MaternNu, SparseGaussianProcess,
};
use ndarray::Array2;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("seed write");
}

fn main() {
    let x = Array2::from_shape_fn((6, 2), |(i, j)| (i as f64 * 0.7 + j as f64).sin());
    let y = Array2::from_shape_fn((6, 1), |(i, _)| (i as f64 * 0.3).cos());
    let kernels = [
        Kernel::squared_exponential(1.0, &[0.5, 2.0]).unwrap(),
        Kernel::sum(
            Kernel::matern(MaternNu::ThreeHalves, 1.0, &[1.0]).unwrap(),
            Kernel::white(0.1).unwrap(),
        )
        .unwrap(),
        Kernel::product(
            Kernel::periodic(1.0, 1.0, 2.0).unwrap(),
            Kernel::rational_quadratic(2.0, &[1.0], 0.5).unwrap(),
        )
        .unwrap(),
        Kernel::sum(Kernel::linear(1.0).unwrap(), Kernel::constant(0.5).unwrap()).unwrap(),
    ];
    for (i, k) in kernels.iter().enumerate() {
        write("kernel_json", &format!("k{i}.json"), k.to_json().unwrap().as_bytes());
    }
    let mut gp = GaussianProcess::new(kernels[0].clone(), GpSettings::default()).unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    write("gp_json", "rbf.json", gp.to_json().unwrap().as_bytes());
    let mut gp = GaussianProcess::new(
        kernels[1].clone(),
        GpSettings { normalize_y: true, max_observations: Some(8), ..GpSettings::default() },
    )
    .unwrap();
    gp.fit(x.view(), y.view()).unwrap();
    write("gp_json", "matern_window.json", gp.to_json().unwrap().as_bytes());
    let mut sp = SparseGaussianProcess::new(kernels[0].clone(), 1e-2).unwrap();
    sp.fit(x.view(), y.view(), InducingInit::KMeans { m: 3, seed: 1, iters: 3 }).unwrap();
    write("sparse_json", "rbf.json", sp.to_json().unwrap().as_bytes());
    write("scenario_json", "default.json", intent_engine::DEFAULT_SCENARIO_JSON.as_bytes());
    write(
        "eth_ucy",
        "small.csv",
        b"frame,ped_id,x,y\n0,1,0.0,0.0\n10,1,0.5,0.0\n20,1,1.0,0.1\n10,2,3.0,1.0\n20,2,3.1,1.2\n40,2,3.3,1.3\n",
    );
    // The builders take arbitrary bytes: a few lengths of structured filler.
    for (t, len) in [("qp_builder", 64usize), ("qp_builder", 256), ("mpc_builder", 96), ("mpc_builder", 300)] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        write(t, &format!("fill{len}"), &bytes);
    }
}
