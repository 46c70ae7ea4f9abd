//! The Riccati interior-point solver against references: Clarabel at 1e-9 on the equivalent
//! sparse QP, the closed-form finite-horizon LQR, infeasible problems, caps and allocation.

mod common;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SolverStatus, ZeroConeT,
};
use common::{allocs, Counting};
use intent_engine::mpc::riccati::{RiccatiSettings, RiccatiSolver};
use intent_engine::mpc::{OcpQp, SolveStatus, StageRows};
use intent_engine::Error;
use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// What to put in a random problem.
#[derive(Clone, Copy, Default)]
struct Spec {
    nx: usize,
    nu: usize,
    n: usize,
    ltv: bool,
    u_bounds: bool,
    x_bounds: bool,
    rows: bool,
    soft: bool,
    affine: bool,
    cross: bool,
}

fn randn(rng: &mut ChaCha8Rng) -> f64 {
    rng.random_range(-1.0..1.0)
}

/// A random controllable-ish OCP that is feasible by construction (bounds contain a
/// neighbourhood of the trajectory u = 0 from x0 where they are hard).
fn random_problem(spec: Spec, seed: u64) -> (OcpQp, Array1<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (nx, nu, n) = (spec.nx, spec.nu, spec.n);
    let rows: Vec<usize> = (0..=n)
        .map(|k| {
            let mut r = 0;
            if spec.rows && k > 0 {
                r += 1;
            }
            if spec.soft && (k == 1 || k == n) {
                r += 1;
            }
            r
        })
        .collect();
    let mut qp = OcpQp::new(nx, nu, n, &rows).unwrap();
    let mut base_a = Array2::<f64>::eye(nx);
    let mut base_b = Array2::<f64>::zeros((nx, nu));
    for v in base_a.iter_mut() {
        *v += 0.15 * randn(&mut rng);
    }
    for v in base_b.iter_mut() {
        *v = randn(&mut rng);
    }
    for k in 0..n {
        let (mut a, mut b) = (base_a.clone(), base_b.clone());
        if spec.ltv {
            for v in a.iter_mut() {
                *v += 0.05 * randn(&mut rng);
            }
            for v in b.iter_mut() {
                *v += 0.2 * randn(&mut rng);
            }
        }
        qp.a[k] = a;
        qp.b[k] = b;
        if spec.affine {
            qp.c[k] = Array1::from_shape_fn(nx, |_| 0.05 * randn(&mut rng));
        }
    }
    for k in 0..=n {
        let m = if k < n { nx + nu } else { nx };
        let g = Array2::from_shape_fn((m, m), |_| randn(&mut rng));
        let mut h = g.t().dot(&g) / m as f64;
        for i in 0..m {
            h[[i, i]] += 0.2;
        }
        qp.q[k] = h.slice(ndarray::s![..nx, ..nx]).to_owned();
        qp.q_lin[k] = Array1::from_shape_fn(nx, |_| 0.3 * randn(&mut rng));
        if k < n {
            qp.r[k] = h.slice(ndarray::s![nx.., nx..]).to_owned();
            if spec.cross {
                qp.s[k] = h.slice(ndarray::s![nx.., ..nx]).to_owned();
            } else {
                qp.s[k].fill(0.0);
                // Keep the stage cost convex without the cross term: drop it from h too.
            }
            qp.r_lin[k] = Array1::from_shape_fn(nu, |_| 0.3 * randn(&mut rng));
        }
    }
    if spec.u_bounds {
        for k in 0..n {
            for j in 0..nu {
                qp.u_lower[k][j] = -0.3 - 0.2 * rng.random::<f64>();
                qp.u_upper[k][j] = 0.3 + 0.2 * rng.random::<f64>();
            }
        }
    }
    if spec.x_bounds {
        for k in 1..=n {
            // One-sided and two-sided bounds on the first two states.
            qp.x_lower[k][0] = -0.5;
            if nx > 1 {
                qp.x_upper[k][1] = 0.4;
                qp.x_lower[k][1] = -3.0;
            }
        }
    }
    for k in 0..=n {
        let mut r = 0;
        let st = &mut qp.rows[k];
        if spec.rows && k > 0 {
            for j in 0..nx {
                st.c[[r, j]] = randn(&mut rng);
            }
            if k < n {
                for j in 0..nu {
                    st.d[[r, j]] = 0.5 * randn(&mut rng);
                }
            }
            st.lower[r] = -0.4;
            st.upper[r] = 0.3;
            r += 1;
        }
        if spec.soft && (k == 1 || k == n) {
            // Unreachable target band for x[0]: must be violated.
            st.c[[r, 0]] = 1.0;
            st.lower[r] = 20.0;
            st.upper[r] = 21.0;
            st.soft[r] = true;
            st.soft_l1[r] = 0.5;
            st.soft_l2[r] = if k == n { 0.0 } else { 2.0 };
        }
    }
    let x0 = Array1::from_shape_fn(nx, |_| 0.3 * randn(&mut rng));
    if spec.x_bounds {
        // keep x0 inside the bounds the later stages must satisfy (not required, but realistic)
    }
    qp.validate().unwrap();
    (qp, x0)
}

/// Reference solution through Clarabel on the stacked sparse QP
/// `z = [u_0..u_{N−1}, x_1..x_N, v_soft]`. Returns (x (N+1)×nx, u N×nu, soft violations per
/// row, objective) or None when Clarabel reports infeasibility.
#[allow(clippy::type_complexity)]
fn reference(qp: &OcpQp, x0: &Array1<f64>) -> Option<(Array2<f64>, Array2<f64>, Vec<f64>, f64)> {
    let (nx, nu, n) = (qp.nx, qp.nu, qp.horizon);
    let iu = |k: usize, j: usize| k * nu + j;
    let ix = |k: usize, j: usize| n * nu + (k - 1) * nx + j;
    let nrows: usize = qp.general_rows();
    let mut soft_index = vec![usize::MAX; nrows];
    let mut nsoft = 0;
    let mut row_base = vec![0; n + 2];
    for k in 0..=n {
        row_base[k + 1] = row_base[k] + qp.rows[k].len();
        for r in 0..qp.rows[k].len() {
            if qp.rows[k].soft[r] {
                soft_index[row_base[k] + r] = n * nu + n * nx + nsoft;
                nsoft += 1;
            }
        }
    }
    let nz = n * nu + n * nx + nsoft;
    let mut p = Array2::<f64>::zeros((nz, nz));
    let mut f = vec![0.0; nz];
    let mut constant = 0.0;
    for k in 0..=n {
        // x_k part (x_0 constant).
        for a in 0..nx {
            for b in 0..nx {
                if k > 0 {
                    p[[ix(k, a), ix(k, b)]] += qp.q[k][[a, b]];
                } else {
                    constant += 0.5 * x0[a] * qp.q[k][[a, b]] * x0[b];
                }
            }
            if k > 0 {
                f[ix(k, a)] += qp.q_lin[k][a];
            } else {
                constant += qp.q_lin[k][a] * x0[a];
            }
        }
        if k < n {
            for a in 0..nu {
                for b in 0..nu {
                    p[[iu(k, a), iu(k, b)]] += qp.r[k][[a, b]];
                }
                f[iu(k, a)] += qp.r_lin[k][a];
                for b in 0..nx {
                    let s = qp.s[k][[a, b]];
                    if k > 0 {
                        p[[iu(k, a), ix(k, b)]] += s;
                        p[[ix(k, b), iu(k, a)]] += s;
                    } else {
                        f[iu(k, a)] += s * x0[b];
                    }
                }
            }
        }
    }
    for r in 0..nrows {
        let si = soft_index[r];
        if si != usize::MAX {
            let k = (0..=n).find(|&k| r < row_base[k + 1]).unwrap();
            let rr = r - row_base[k];
            p[[si, si]] += qp.rows[k].soft_l2[rr];
            f[si] += qp.rows[k].soft_l1[rr];
        }
    }
    // Constraints: equalities first (dynamics), then Gz ≤ h rows.
    let mut a_eq: Vec<(Vec<(usize, f64)>, f64)> = Vec::new();
    for k in 0..n {
        for i in 0..nx {
            let mut row = vec![(ix(k + 1, i), 1.0)];
            let mut rhs = qp.c[k][i];
            for j in 0..nx {
                if k > 0 {
                    row.push((ix(k, j), -qp.a[k][[i, j]]));
                } else {
                    rhs += qp.a[k][[i, j]] * x0[j];
                }
            }
            for j in 0..nu {
                row.push((iu(k, j), -qp.b[k][[i, j]]));
            }
            a_eq.push((row, rhs));
        }
    }
    let mut a_in: Vec<(Vec<(usize, f64)>, f64)> = Vec::new();
    let mut push_two =
        |row: Vec<(usize, f64)>, konst: f64, lo: f64, hi: f64, soft: Option<usize>| {
            // lo ≤ row·z + konst (+ v) and row·z + konst ≤ hi (+ v)
            if hi.is_finite() {
                let mut r = row.clone();
                if let Some(s) = soft {
                    r.push((s, -1.0));
                }
                a_in.push((r, hi - konst));
            }
            if lo.is_finite() {
                let mut r: Vec<(usize, f64)> = row.iter().map(|&(i, v)| (i, -v)).collect();
                if let Some(s) = soft {
                    r.push((s, -1.0));
                }
                a_in.push((r, konst - lo));
            }
        };
    for k in 0..=n {
        if k < n {
            for j in 0..nu {
                push_two(
                    vec![(iu(k, j), 1.0)],
                    0.0,
                    qp.u_lower[k][j],
                    qp.u_upper[k][j],
                    None,
                );
            }
        }
        if k > 0 {
            for j in 0..nx {
                push_two(
                    vec![(ix(k, j), 1.0)],
                    0.0,
                    qp.x_lower[k][j],
                    qp.x_upper[k][j],
                    None,
                );
            }
        }
        let st = &qp.rows[k];
        for r in 0..st.len() {
            let mut row = Vec::new();
            let mut konst = 0.0;
            for j in 0..nx {
                if k > 0 {
                    row.push((ix(k, j), st.c[[r, j]]));
                } else {
                    konst += st.c[[r, j]] * x0[j];
                }
            }
            if k < n {
                for j in 0..nu {
                    row.push((iu(k, j), st.d[[r, j]]));
                }
            }
            let soft =
                (soft_index[row_base[k] + r] != usize::MAX).then(|| soft_index[row_base[k] + r]);
            push_two(row, konst, st.lower[r], st.upper[r], soft);
        }
    }
    // v ≥ 0.
    for s in 0..nsoft {
        a_in.push((vec![(n * nu + n * nx + s, -1.0)], 0.0));
    }
    let (neq, nin) = (a_eq.len(), a_in.len());
    let (mut ii, mut jj, mut vv, mut b) = (vec![], vec![], vec![], vec![]);
    for (r, (row, rhs)) in a_eq.iter().chain(&a_in).enumerate() {
        for &(j, v) in row {
            if v != 0.0 {
                ii.push(r);
                jj.push(j);
                vv.push(v);
            }
        }
        b.push(*rhs);
    }
    let a = CscMatrix::new_from_triplets(neq + nin, nz, ii, jj, vv);
    let (mut pi, mut pj, mut pv) = (vec![], vec![], vec![]);
    for i in 0..nz {
        for j in i..nz {
            if p[[i, j]] != 0.0 {
                pi.push(i);
                pj.push(j);
                pv.push(p[[i, j]]);
            }
        }
    }
    let pm = CscMatrix::new_from_triplets(nz, nz, pi, pj, pv);
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(1e-10)
        .tol_gap_rel(1e-10)
        .tol_feas(1e-10)
        .max_iter(200)
        .build()
        .unwrap();
    let cones = [ZeroConeT(neq), NonnegativeConeT(nin)];
    let mut solver = DefaultSolver::new(&pm, &f, &a, &b, &cones, settings).unwrap();
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        _ => return None,
    }
    let z = &solver.solution.x;
    let mut x = Array2::zeros((n + 1, nx));
    x.row_mut(0).assign(x0);
    let mut u = Array2::zeros((n, nu));
    for k in 0..n {
        for j in 0..nu {
            u[[k, j]] = z[iu(k, j)];
        }
        for j in 0..nx {
            x[[k + 1, j]] = z[ix(k + 1, j)];
        }
    }
    let mut viol = vec![0.0; nrows];
    for r in 0..nrows {
        if soft_index[r] != usize::MAX {
            viol[r] = z[soft_index[r]].max(0.0);
        }
    }
    Some((x, u, viol, solver.solution.obj_val + constant))
}

fn max_abs_diff(a: ndarray::ArrayView2<'_, f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0, |m: f64, (x, y)| m.max((x - y).abs()))
}

fn check_against_reference(spec: Spec, seed: u64, eps: f64) -> (usize, f64) {
    let (qp, x0) = random_problem(spec, seed);
    let (xr, ur, vr, objr) = reference(&qp, &x0).expect("reference solves");
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default().eps(eps)).unwrap();
    let info = solver.solve(&qp, x0.view()).unwrap();
    // At eps = 1e-10 the barrier weights span ~20 orders of magnitude, so the last digits may
    // stall (SolvedInaccurate, within 100·eps); the comparison below is what matters.
    assert!(info.status.is_solved(), "seed {seed}: {info:?}");
    let scale = (spec.n * (spec.nx + spec.nu)) as f64;
    let tol = 1e-6 * scale.sqrt();
    let dx = max_abs_diff(solver.x(), &xr);
    let du = max_abs_diff(solver.u(), &ur);
    assert!(
        dx <= tol && du <= tol,
        "seed {seed}: dx {dx:e}, du {du:e} > {tol:e}"
    );
    let dv = solver
        .soft_violations()
        .iter()
        .zip(&vr)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(dv <= tol, "seed {seed}: soft violations differ by {dv:e}");
    assert!(
        (solver.objective() - objr).abs() <= 1e-6 * (1.0 + objr.abs()),
        "seed {seed}: objective {} vs {objr}",
        solver.objective()
    );
    if spec.soft {
        assert!(
            info.max_violation > 1.0,
            "seed {seed}: soft rows must be violated"
        );
        let vmax = vr.iter().fold(0.0f64, |m, &v| m.max(v));
        assert!((info.max_violation - vmax).abs() <= tol);
    }
    (info.iterations, dx.max(du))
}

const FULL: Spec = Spec {
    nx: 4,
    nu: 2,
    n: 12,
    ltv: true,
    u_bounds: true,
    x_bounds: true,
    rows: true,
    soft: true,
    affine: true,
    cross: true,
};

#[test]
fn lti_input_bounds_match_clarabel() {
    let spec = Spec {
        ltv: false,
        x_bounds: false,
        rows: false,
        soft: false,
        affine: false,
        cross: false,
        ..FULL
    };
    for seed in 0..5 {
        check_against_reference(spec, seed, 1e-10);
    }
}

#[test]
fn ltv_state_bounds_rows_affine_cross_match_clarabel() {
    let spec = Spec {
        soft: false,
        ..FULL
    };
    for seed in 10..15 {
        check_against_reference(spec, seed, 1e-10);
    }
}

#[test]
fn soft_rows_are_violated_like_the_reference() {
    for seed in 20..25 {
        check_against_reference(FULL, seed, 1e-10);
    }
}

#[test]
fn default_eps_is_close_to_the_reference() {
    for seed in 30..33 {
        let (qp, x0) = random_problem(FULL, seed);
        let (xr, ur, _, _) = reference(&qp, &x0).unwrap();
        let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
        let info = solver.solve(&qp, x0.view()).unwrap();
        assert_eq!(info.status, SolveStatus::Solved);
        let d = max_abs_diff(solver.x(), &xr).max(max_abs_diff(solver.u(), &ur));
        assert!(d < 1e-4, "seed {seed}: {d:e}");
    }
}

#[test]
fn larger_state_and_long_horizon_match_clarabel() {
    let spec = Spec {
        nx: 12,
        nu: 4,
        n: 30,
        ..FULL
    };
    check_against_reference(spec, 40, 1e-10);
}

/// Closed-form finite-horizon LQR: P_N = Q_N, K_k = (R + BᵀPB)⁻¹BᵀPA, P = Q + AᵀP(A − BK).
#[test]
fn unconstrained_equals_closed_form_lqr() {
    let spec = Spec {
        nx: 5,
        nu: 2,
        n: 25,
        ltv: true,
        ..Spec::default()
    };
    for seed in 50..53 {
        let (mut qp, x0) = random_problem(spec, seed);
        for k in 0..=qp.horizon {
            qp.q_lin[k].fill(0.0);
            if k < qp.horizon {
                qp.r_lin[k].fill(0.0);
                qp.s[k].fill(0.0);
            }
        }
        let n = qp.horizon;
        let mut p = qp.q[n].clone();
        let mut gains = vec![Array2::<f64>::zeros((2, 5)); n];
        for k in (0..n).rev() {
            let (a, b) = (&qp.a[k], &qp.b[k]);
            let re = &qp.r[k] + &b.t().dot(&p).dot(b);
            let rhs = b.t().dot(&p).dot(a);
            let re_n = nalgebra::DMatrix::from_row_slice(2, 2, re.as_slice().unwrap());
            let inv = re_n.try_inverse().unwrap();
            let inv = Array2::from_shape_fn((2, 2), |(i, j)| inv[(i, j)]);
            let kk = inv.dot(&rhs);
            p = &qp.q[k] + &a.t().dot(&p).dot(&(a - &b.dot(&kk)));
            gains[k] = kk;
        }
        let mut x = x0.clone();
        let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
        let info = solver.solve(&qp, x0.view()).unwrap();
        assert_eq!(info.status, SolveStatus::Solved);
        assert!(info.iterations <= 1);
        for k in 0..n {
            let u = -gains[k].dot(&x);
            for j in 0..2 {
                assert!((solver.u()[[k, j]] - u[j]).abs() < 1e-9, "k {k}");
            }
            x = qp.a[k].dot(&x) + qp.b[k].dot(&u);
            for j in 0..5 {
                assert!((solver.x()[[k + 1, j]] - x[j]).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn hard_infeasible_problem_is_reported() {
    // Scalar integrator, |u| ≤ 1, but x_3 ≥ 10 from x0 = 0.
    let mut qp = OcpQp::new(1, 1, 3, &[]).unwrap();
    for k in 0..3 {
        qp.a[k][[0, 0]] = 1.0;
        qp.b[k][[0, 0]] = 1.0;
        qp.q[k][[0, 0]] = 1.0;
        qp.u_lower[k][0] = -1.0;
        qp.u_upper[k][0] = 1.0;
    }
    qp.x_lower[3][0] = 10.0;
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    let info = solver.solve(&qp, ndarray::arr1(&[0.0]).view()).unwrap();
    assert_eq!(info.status, SolveStatus::PrimalInfeasible, "{info:?}");
    assert!(info.primal_residual > 1.0);

    // Random problems made infeasible by contradicting general rows at one stage.
    for seed in 60..64 {
        let (mut qp, x0) = random_problem(
            Spec {
                soft: false,
                ..FULL
            },
            seed,
        );
        let k = 5;
        let st = &mut qp.rows[k];
        // Row r: lower ≤ c·x + d·u ≤ upper; add a state bound that contradicts it.
        st.c.row_mut(0).fill(0.0);
        st.d.row_mut(0).fill(0.0);
        st.c[[0, 0]] = 1.0;
        st.lower[0] = 1.0;
        st.upper[0] = 2.0;
        qp.x_upper[k][0] = 0.0; // x_k[0] ≤ 0 and ≥ 1
        assert!(reference(&qp, &x0).is_none());
        let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
        let info = solver.solve(&qp, x0.view()).unwrap();
        assert_eq!(
            info.status,
            SolveStatus::PrimalInfeasible,
            "seed {seed}: {info:?}"
        );
    }
}

#[test]
fn nearly_infeasible_problem_with_large_multipliers_is_solved() {
    // x_3 ≥ 2.9 needs u ≈ 0.97 at every step with |u| ≤ 1, against an input weight of 1e4.
    let mut qp = OcpQp::new(1, 1, 3, &[]).unwrap();
    for k in 0..3 {
        qp.a[k][[0, 0]] = 1.0;
        qp.b[k][[0, 0]] = 1.0;
        qp.r[k][[0, 0]] = 1e4;
        qp.u_lower[k][0] = -1.0;
        qp.u_upper[k][0] = 1.0;
    }
    qp.x_lower[3][0] = 2.9;
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    let info = solver.solve(&qp, ndarray::arr1(&[0.0]).view()).unwrap();
    assert_eq!(info.status, SolveStatus::Solved, "{info:?}");
    assert!((solver.x()[[3, 0]] - 2.9).abs() < 1e-5);
    // Multiplier of x_3 ≥ 2.9: R·u = λ → about 9.7e3.
    assert!((solver.x_bound_duals()[[3, 0]] + 1e4 * 2.9 / 3.0).abs() < 1.0);
}

#[test]
fn infeasible_hard_rows_become_feasible_when_soft() {
    let mut qp = OcpQp::new(1, 1, 3, &[0, 0, 0, 1]).unwrap();
    for k in 0..3 {
        qp.a[k][[0, 0]] = 1.0;
        qp.b[k][[0, 0]] = 1.0;
        qp.q[k][[0, 0]] = 1.0;
        qp.u_lower[k][0] = -1.0;
        qp.u_upper[k][0] = 1.0;
    }
    let st: &mut StageRows = &mut qp.rows[3];
    st.c[[0, 0]] = 1.0;
    st.lower[0] = 10.0;
    st.soft[0] = true;
    st.soft_l1[0] = 100.0;
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    let info = solver.solve(&qp, ndarray::arr1(&[0.0]).view()).unwrap();
    assert_eq!(info.status, SolveStatus::Solved);
    // Best effort: full throttle, x_3 = 3, violation 7.
    assert!((info.max_violation - 7.0).abs() < 1e-5, "{info:?}");
    assert!((solver.soft_violations()[0] - 7.0).abs() < 1e-5);
}

#[test]
fn iteration_cap_returns_a_finite_iterate() {
    let (qp, x0) = random_problem(FULL, 70);
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default().max_iter(2)).unwrap();
    let info = solver.solve(&qp, x0.view()).unwrap();
    assert_eq!(info.status, SolveStatus::MaxIterations);
    assert_eq!(info.iterations, 2);
    assert!(solver
        .x()
        .iter()
        .chain(solver.u().iter())
        .all(|v| v.is_finite()));
    assert!(info.primal_residual.is_finite() && info.dual_residual.is_finite());
}

#[test]
fn zero_time_limit_reports_time_limit() {
    let (qp, x0) = random_problem(FULL, 71);
    let settings = RiccatiSettings::default().time_limit(Some(std::time::Duration::ZERO));
    let mut solver = RiccatiSolver::new(&qp, settings).unwrap();
    let info = solver.solve(&qp, x0.view()).unwrap();
    assert_eq!(info.status, SolveStatus::TimeLimit);
    assert!(solver.x().iter().all(|v| v.is_finite()));
}

#[test]
fn solve_does_not_allocate_after_the_first_call() {
    for warm in [false, true] {
        let (mut qp, x0) = random_problem(FULL, 80);
        let settings = RiccatiSettings::default().warm_start(warm);
        let mut solver = RiccatiSolver::new(&qp, settings).unwrap();
        solver.solve(&qp, x0.view()).unwrap();
        qp.q_lin[3][0] += 0.1;
        solver.shift_warm_start();
        let before = allocs();
        let info = solver.solve(&qp, x0.view()).unwrap();
        let _ = (solver.x(), solver.u0(), solver.soft_violations());
        assert_eq!(allocs(), before, "solve allocated");
        assert_eq!(info.status, SolveStatus::Solved);
    }
}

#[test]
fn bad_inputs_are_errors() {
    let (qp, x0) = random_problem(FULL, 90);
    let mut solver = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    assert!(matches!(
        solver.solve(&qp, ndarray::arr1(&[0.0, 1.0]).view()),
        Err(Error::Shape { .. })
    ));
    let mut bad = x0.clone();
    bad[1] = f64::NAN;
    assert!(matches!(
        solver.solve(&qp, bad.view()),
        Err(Error::NonFinite { .. })
    ));
    // Pattern change: a new finite bound.
    let mut other = qp.clone();
    other.u_upper[0][0] = f64::INFINITY;
    assert!(solver.solve(&other, x0.view()).is_err());
    solver.setup(&other).unwrap();
    assert!(solver.solve(&other, x0.view()).is_ok());
    // Shape change.
    let (small, x0s) = random_problem(Spec { n: 5, ..FULL }, 91);
    assert!(matches!(
        solver.solve(&small, x0s.view()),
        Err(Error::Shape { .. })
    ));
    // Invalid problem data.
    let mut nan = qp.clone();
    nan.a[2][[0, 0]] = f64::NAN;
    assert!(RiccatiSolver::new(&nan, RiccatiSettings::default()).is_err());
    // Non-convex input cost.
    let mut neg = qp.clone();
    neg.r[1] = -Array2::eye(2) * 100.0;
    let mut s2 = RiccatiSolver::new(&neg, RiccatiSettings::default()).unwrap();
    assert!(matches!(
        s2.solve(&neg, x0.view()),
        Err(Error::Numerical { .. })
    ));
    // Settings.
    assert!(RiccatiSolver::new(&qp, RiccatiSettings::default().max_iter(0)).is_err());
    assert!(RiccatiSolver::new(&qp, RiccatiSettings::default().eps(f64::NAN)).is_err());
}

#[test]
fn warm_start_from_shifted_solution_solves_the_next_problem() {
    // Receding horizon on an LTI problem: apply u0, shift, solve again; compare with cold.
    let spec = Spec {
        ltv: false,
        soft: false,
        affine: false,
        ..FULL
    };
    let (qp, mut x) = random_problem(spec, 100);
    let mut warm = RiccatiSolver::new(&qp, RiccatiSettings::default().warm_start(true)).unwrap();
    let mut cold = RiccatiSolver::new(&qp, RiccatiSettings::default()).unwrap();
    let (mut it_w, mut it_c) = (0, 0);
    for step in 0..8 {
        let iw = warm.solve(&qp, x.view()).unwrap();
        let ic = cold.solve(&qp, x.view()).unwrap();
        assert!(iw.status.is_solved() && ic.status.is_solved());
        let d = max_abs_diff(warm.u(), &cold.u().to_owned());
        assert!(d < 1e-4, "step {step}: {d:e}");
        it_w += iw.iterations;
        it_c += ic.iterations;
        x = qp.a[0].dot(&x) + qp.b[0].dot(&warm.u0());
        warm.shift_warm_start();
    }
    eprintln!("iterations: warm {it_w}, cold {it_c}");
}
