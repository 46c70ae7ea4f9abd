//! Times `solve_qp` (set-up + solve) on a WHLIPBAL-sized problem: 50 variables, 100 rows.
use intent_engine::mpc::qp::{solve_qp, QpProblem};
use ndarray::{Array1, Array2};
use std::time::Instant;

fn main() {
    let (n, m) = (50, 100);
    let p = Array2::from_shape_fn((n, n), |(i, j)| if i == j { 2.0 } else { 0.01 });
    let q = Array1::from_shape_fn(n, |i| (i as f64).sin());
    let g = Array2::from_shape_fn((m, n), |(i, j)| ((i * 7 + j * 3) as f64).cos());
    let h = Array1::from_elem(m, 5.0);
    for _ in 0..3 {
        let t = Instant::now();
        let mut inner = 0.0;
        for _ in 0..1000 {
            let s = solve_qp(
                QpProblem {
                    p: p.view(),
                    q: q.view(),
                    g: Some((g.view(), h.view())),
                    a: None,
                    lb: None,
                    ub: None,
                },
                1e-6,
                None,
            )
            .unwrap();
            inner += s.info.solve_time.as_secs_f64();
            std::hint::black_box(s);
        }
        println!(
            "total {:.1} us, inside solve {:.1} us",
            t.elapsed().as_secs_f64() * 1e3,
            inner * 1e3
        );
    }
}
