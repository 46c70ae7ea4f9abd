//! Times `solve_qp` set-up and solve on a 50-variable problem (development aid).
use intent_engine::mpc::qp::{solve_qp, QpProblem};
use ndarray::{Array1, Array2};
use std::time::Instant;

fn main() {
    let n = 50;
    let p = Array2::from_shape_fn((n, n), |(i, j)| if i == j { 2.0 } else { 0.01 });
    let q = Array1::from_shape_fn(n, |i| (i as f64).sin());
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..1000 {
            let s = solve_qp(
                QpProblem {
                    p: p.view(),
                    q: q.view(),
                    g: None,
                    a: None,
                    lb: None,
                    ub: None,
                },
                1e-6,
                None,
            )
            .unwrap();
            std::hint::black_box(s);
        }
        println!("{:.1} us", t.elapsed().as_secs_f64() * 1e3);
    }
}
