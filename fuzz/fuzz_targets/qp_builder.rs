//! `solve_qp` with arbitrary dimensions and values (NaN, ±inf, huge, tiny, inconsistent
//! shapes): an error or a status, never a panic; a "solved" status comes with a finite x that
//! satisfies the constraints.
#![no_main]

use arbitrary::Arbitrary;
use intent_engine::mpc::qp::{solve_qp, QpProblem};
use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, Array2};

#[derive(Arbitrary, Debug)]
struct Input {
    n: u8,
    me: u8,
    mi: u8,
    /// Deliberate shape errors: extra rows/columns on some parts.
    skew: [bool; 4],
    use_bounds: (bool, bool),
    make_psd: bool,
    eps_exp: i8,
    values: Vec<f64>,
}

fn take(it: &mut impl Iterator<Item = f64>) -> f64 {
    it.next().unwrap_or(0.5)
}

fuzz_target!(|inp: Input| {
    let n = usize::from(inp.n % 7);
    let me = usize::from(inp.me % 4);
    let mi = usize::from(inp.mi % 6);
    let mut it = inp.values.iter().copied().cycle().take(4096);
    let m = Array2::from_shape_fn((n.max(1), n), |_| take(&mut it));
    // Symmetrise (a PSD P when asked: MᵀM); asymmetric P must be rejected, not mis-solved.
    let p = if inp.make_psd {
        m.t().dot(&m)
    } else {
        Array2::from_shape_fn((n, n), |(i, j)| m[[i.min(j), i.max(j)]])
    };
    let q = Array1::from_shape_fn(n + usize::from(inp.skew[0]), |_| take(&mut it));
    let a = Array2::from_shape_fn((me, n + usize::from(inp.skew[1])), |_| take(&mut it));
    let b = Array1::from_shape_fn(me, |_| take(&mut it));
    let g = Array2::from_shape_fn((mi, n), |_| take(&mut it));
    let h = Array1::from_shape_fn(mi + usize::from(inp.skew[2]), |_| take(&mut it));
    let lb = Array1::from_shape_fn(n, |_| take(&mut it));
    let ub = Array1::from_shape_fn(n + usize::from(inp.skew[3]), |_| take(&mut it));
    let eps = 10f64.powi(i32::from(inp.eps_exp) / 8);
    let prob = QpProblem {
        p: p.view(),
        q: q.view(),
        g: (mi > 0).then(|| (g.view(), h.view())),
        a: (me > 0).then(|| (a.view(), b.view())),
        lb: inp.use_bounds.0.then(|| lb.view()),
        ub: inp.use_bounds.1.then(|| ub.view()),
    };
    if let Ok(sol) = solve_qp(prob, eps, None) {
        if sol.info.status.is_solved() {
            assert!(sol.x.iter().all(|v| v.is_finite()), "solved with non-finite x: {sol:?}");
        }
    }
});
