//! MPC core: the condensed active-set solver and the OSQP backend against an independent
//! reference — the *sparse* formulation (states and inputs as variables, dynamics as equality
//! rows) solved by `solve_qp` at 1e-10 — on random controllable problems with active
//! constraints; warm equals cold; batch equals one-by-one; infeasibility is reported.

mod common;

use common::{allocs, Counting};
use intent_engine::mpc::qp::{solve_qp, QpProblem};
use intent_engine::mpc::{
    KeepoutMode, LinearMpc, MpcProblem, MpcSettings, MpcSolverKind, Reference, SolveStatus,
};
use intent_engine::{ErrorKind, Par};
use ndarray::{s, Array1, Array2, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Case {
    a: Array2<f64>,
    b: Array2<f64>,
    q: Array2<f64>,
    r: Array2<f64>,
    n: usize,
    m: usize,
    horizon: usize,
    u_max: f64,
    x_max: f64,
    du_max: f64,
}

fn random_case(rng: &mut ChaCha8Rng, n: usize, m: usize, horizon: usize) -> Case {
    // A random, mildly unstable system; B dense so that (A, B) is controllable almost surely.
    let a = Array2::from_shape_fn((n, n), |(i, j)| {
        (if i == j { 1.0 } else { 0.0 }) + 0.15 * rng.random_range(-1.0..1.0)
    });
    let b = Array2::from_shape_fn((n, m), |_| rng.random_range(-1.0..1.0));
    let lq = Array2::from_shape_fn((n, n), |_| rng.random_range(-1.0..1.0));
    let q = lq.t().dot(&lq) + Array2::<f64>::eye(n) * 0.1;
    let r = Array2::<f64>::eye(m) * rng.random_range(0.05..0.5);
    Case {
        a,
        b,
        q,
        r,
        n,
        m,
        horizon,
        u_max: 0.6,
        x_max: 2.5,
        du_max: 0.5,
    }
}

fn problem(c: &Case, rates: bool) -> MpcProblem {
    let mut p = MpcProblem::new(
        c.a.clone(),
        c.b.clone(),
        c.q.clone(),
        c.r.clone(),
        c.horizon,
    )
    .unwrap()
    .with_input_bounds(
        Some(Array1::from_elem(c.m, -c.u_max)),
        Some(Array1::from_elem(c.m, c.u_max)),
    )
    .unwrap()
    .with_state_bounds(
        Some(Array1::from_shape_fn(c.n, |i| {
            if i == 0 {
                -c.x_max
            } else {
                f64::NEG_INFINITY
            }
        })),
        Some(Array1::from_shape_fn(c.n, |i| {
            if i == 0 {
                c.x_max
            } else {
                f64::INFINITY
            }
        })),
    )
    .unwrap();
    if rates {
        p = p
            .with_rate_bounds(Array1::from_elem(c.m, c.du_max))
            .unwrap();
    }
    p
}

/// The sparse formulation, solved by the dense active-set solver with equality rows: an
/// independent path from the condensing.
#[allow(clippy::too_many_arguments)]
fn reference(
    c: &Case,
    p_term: &Array2<f64>,
    x0: &Array1<f64>,
    x_ref: &Array1<f64>,
    keepout: Option<(&Array3<f64>, &Array2<f64>, f64, f64)>,
    rates: bool,
    u_prev: Option<&Array1<f64>>,
) -> (Array2<f64>, f64) {
    let (n, m, nh) = (c.n, c.m, c.horizon);
    let nko = keepout.map_or(0, |k| k.1.ncols());
    let soft = keepout.is_some_and(|k| k.3 > 0.0);
    let ns = if soft { nh * nko } else { 0 };
    let xo = |k: usize| k * n;
    let uo = |k: usize| (nh + 1) * n + k * m;
    let so = (nh + 1) * n + nh * m;
    let nv = so + ns;
    let mut hm = Array2::<f64>::zeros((nv, nv));
    let mut f = Array1::<f64>::zeros(nv);
    for k in 0..=nh {
        let qk = if k == nh { p_term } else { &c.q };
        hm.slice_mut(s![xo(k)..xo(k) + n, xo(k)..xo(k) + n])
            .assign(qk);
        let g = qk.dot(x_ref);
        f.slice_mut(s![xo(k)..xo(k) + n]).assign(&(-g));
    }
    for k in 0..nh {
        hm.slice_mut(s![uo(k)..uo(k) + m, uo(k)..uo(k) + m])
            .assign(&c.r);
    }
    if let Some((_, _, l1, l2)) = keepout {
        for j in 0..ns {
            hm[[so + j, so + j]] = l2;
            f[so + j] = l1;
        }
    }
    let me = (nh + 1) * n;
    let mut aeq = Array2::<f64>::zeros((me, nv));
    let mut beq = Array1::<f64>::zeros(me);
    for i in 0..n {
        aeq[[i, i]] = 1.0;
        beq[i] = x0[i];
    }
    for k in 0..nh {
        let r0 = (k + 1) * n;
        for i in 0..n {
            aeq[[r0 + i, xo(k + 1) + i]] = 1.0;
            for j in 0..n {
                aeq[[r0 + i, xo(k) + j]] = -c.a[[i, j]];
            }
            for j in 0..m {
                aeq[[r0 + i, uo(k) + j]] = -c.b[[i, j]];
            }
        }
    }
    let mut g_rows: Vec<Array1<f64>> = Vec::new();
    let mut h_rows: Vec<f64> = Vec::new();
    let mut push = |row: Array1<f64>, h: f64| {
        g_rows.push(row);
        h_rows.push(h);
    };
    for k in 1..=nh {
        for sign in [1.0, -1.0] {
            let mut row = Array1::zeros(nv);
            row[xo(k)] = sign;
            push(row, c.x_max);
        }
    }
    if rates {
        for k in 0..nh {
            for i in 0..m {
                if k == 0 && u_prev.is_none() {
                    continue;
                }
                for sign in [1.0, -1.0] {
                    let mut row = Array1::zeros(nv);
                    row[uo(k) + i] = sign;
                    let mut h = c.du_max;
                    if k > 0 {
                        row[uo(k - 1) + i] = -sign;
                    } else if let Some(up) = u_prev {
                        h += sign * up[i];
                    }
                    push(row, h);
                }
            }
        }
    }
    if let Some((normals, offsets, _, _)) = keepout {
        for k in 1..=nh {
            for j in 0..nko {
                let mut row = Array1::zeros(nv);
                for i in 0..n {
                    row[xo(k) + i] = normals[[k - 1, j, i]];
                }
                if soft {
                    row[so + (k - 1) * nko + j] = -1.0;
                }
                push(row, offsets[[k - 1, j]]);
            }
        }
    }
    let mut g = Array2::<f64>::zeros((g_rows.len(), nv));
    for (i, r) in g_rows.iter().enumerate() {
        g.row_mut(i).assign(r);
    }
    let h = Array1::from(h_rows);
    let mut lb = Array1::from_elem(nv, f64::NEG_INFINITY);
    let mut ub = Array1::from_elem(nv, f64::INFINITY);
    for k in 0..nh {
        for i in 0..m {
            lb[uo(k) + i] = -c.u_max;
            ub[uo(k) + i] = c.u_max;
        }
    }
    for j in 0..ns {
        lb[so + j] = 0.0;
    }
    let sol = solve_qp(
        QpProblem {
            p: hm.view(),
            q: f.view(),
            g: Some((g.view(), h.view())),
            a: Some((aeq.view(), beq.view())),
            lb: Some(lb.view()),
            ub: Some(ub.view()),
        },
        1e-10,
        None,
    )
    .unwrap();
    assert_eq!(sol.info.status, SolveStatus::Solved, "reference failed");
    let u = Array2::from_shape_fn((nh, m), |(k, i)| sol.x[uo(k) + i]);
    let slack = sol.x.slice(s![so..]).iter().fold(0.0f64, |a, &v| a.max(v));
    (u, slack)
}

fn max_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

fn count_active(u: &Array2<f64>, bound: f64) -> usize {
    u.iter().filter(|v| (v.abs() - bound).abs() < 1e-9).count()
}

#[test]
fn condensed_active_set_equals_the_sparse_reference_with_active_constraints() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut active_total = 0;
    for &(n, m, nh) in &[(2, 1, 5), (4, 2, 10), (6, 3, 15), (12, 4, 20)] {
        for trial in 0..4 {
            let c = random_case(&mut rng, n, m, nh);
            let rates = trial % 2 == 1;
            let mut mpc = LinearMpc::new(problem(&c, rates), MpcSettings::default()).unwrap();
            let p_term = mpc.terminal_cost().clone();
            let x0 = Array1::from_shape_fn(n, |_| rng.random_range(-2.0..2.0));
            let x_ref = Array1::from_shape_fn(n, |_| rng.random_range(-0.5..0.5));
            let sol = mpc
                .solve(
                    x0.view(),
                    Reference::Constant(x_ref.view()),
                    Reference::Zero,
                    None,
                )
                .unwrap();
            assert_eq!(sol.info.status, SolveStatus::Solved);
            let (u_ref, _) = reference(&c, &p_term, &x0, &x_ref, None, rates, None);
            let tol = 1e-7 * (n * nh) as f64;
            assert!(
                max_diff(&sol.u, &u_ref) < tol,
                "n={n} diff {}",
                max_diff(&sol.u, &u_ref)
            );
            active_total += count_active(&sol.u, c.u_max);
            // The predicted states follow the dynamics and respect the state bound.
            assert!(sol.x.column(0).iter().all(|v| v.abs() <= c.x_max + 1e-6));
        }
    }
    assert!(
        active_total > 20,
        "the cases must exercise active input bounds ({active_total})"
    );
}

#[test]
fn soft_keepout_is_exact_when_reachable_and_reports_slack_when_not() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let c = random_case(&mut rng, 4, 2, 12);
    let x0 = Array1::from(vec![1.5, -0.5, 0.3, 0.0]);
    // Soft keep-outs are solved hard first and switch to the slack problem only when needed:
    // the sequences cover hard → slack (unreachable, or a multiplier above a small l1) →
    // hard again, each hot-started from the previous solve.
    for (l1, offsets) in [
        (1e3, vec![0.2, -0.2, -5.0, 0.2, -0.2, -5.0]),
        (0.5, vec![0.2, -0.2, 0.2]),
    ] {
        let l2 = 1.0;
        let prob = problem(&c, false)
            .with_keepout_mode(KeepoutMode::Soft { l1, l2 })
            .unwrap();
        let mut mpc = LinearMpc::new(prob, MpcSettings::default()).unwrap();
        let p_term = mpc.terminal_cost().clone();
        let x_ref = Array1::zeros(4);
        for offset in offsets {
            // Keep x_k[1] ≤ offset (the last is unreachable within the input bounds).
            let mut normals = Array3::zeros((12, 1, 4));
            normals.slice_mut(s![.., 0, 1]).fill(1.0);
            let offsets = Array2::from_elem((12, 1), offset);
            mpc.set_keepout(normals.view(), offsets.view()).unwrap();
            let sol = mpc
                .solve(x0.view(), Reference::Zero, Reference::Zero, None)
                .unwrap()
                .clone();
            let (u_ref, slack) = reference(
                &c,
                &p_term,
                &x0,
                &x_ref,
                Some((&normals, &offsets, l1, l2)),
                false,
                None,
            );
            assert!(
                max_diff(&sol.u, &u_ref) < 1e-6,
                "offset {offset}: {}",
                max_diff(&sol.u, &u_ref)
            );
            assert!((sol.info.max_violation - slack).abs() < 1e-6);
            if offset == -5.0 {
                assert!(
                    sol.info.max_violation > 1.0,
                    "unreachable keep-out must show slack"
                );
                assert_eq!(sol.info.status, SolveStatus::Solved);
            }
            if l1 == 0.5 && offset == -0.2 {
                assert!(
                    sol.info.max_violation > 1e-3,
                    "a cheap penalty must be used"
                );
            }
        }
    }
    // Hard mode: the unreachable keep-out is primal infeasible, never "solved".
    let prob = problem(&c, false)
        .with_keepout_mode(KeepoutMode::Hard)
        .unwrap();
    let mut hard = LinearMpc::new(prob, MpcSettings::default()).unwrap();
    let mut normals = Array3::zeros((12, 1, 4));
    normals.slice_mut(s![.., 0, 1]).fill(1.0);
    hard.set_keepout(normals.view(), Array2::from_elem((12, 1), -5.0).view())
        .unwrap();
    let sol = hard
        .solve(x0.view(), Reference::Zero, Reference::Zero, None)
        .unwrap();
    assert_eq!(sol.info.status, SolveStatus::PrimalInfeasible);
}

#[test]
fn stage_slack_keepouts_match_hard_when_reachable_and_osqp_when_not() {
    // Two keep-out rows per stage sharing one slack (SoftStage): when both can be met the
    // answer is the hard-constrained one; when not, the active-set and OSQP backends (built
    // independently from the same mode) agree, and the reported violation is the largest
    // per-stage slack. With one row per stage SoftStage and Soft are the same problem.
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let c = random_case(&mut rng, 4, 2, 12);
    let (l1, l2) = (1e3, 1.0);
    let mode = KeepoutMode::SoftStage { l1, l2 };
    let build = |mode: KeepoutMode, solver: MpcSolverKind, rows: usize| {
        let prob = problem(&c, false).with_keepout_mode(mode).unwrap();
        let settings = MpcSettings {
            solver,
            eps: 1e-9,
            max_iter: 200_000,
            ..MpcSettings::default()
        };
        LinearMpc::with_keepout_rows(prob, settings, rows).unwrap()
    };
    let x0 = Array1::from(vec![1.5, -0.5, 0.3, 0.0]);
    let mut normals = Array3::zeros((12, 2, 4));
    normals.slice_mut(s![.., 0, 1]).fill(1.0); // x_k[1] ≤ a
    normals.slice_mut(s![.., 1, 0]).fill(1.0); // x_k[0] ≤ b
    for (a, b, reachable) in [(0.2, 1.2, true), (-5.0, 1.0, false), (-4.0, -6.0, false)] {
        let mut offsets = Array2::zeros((12, 2));
        offsets.column_mut(0).fill(a);
        offsets.column_mut(1).fill(b);
        let solve = |mode: KeepoutMode, solver: MpcSolverKind| {
            let mut mpc = build(mode, solver, 2);
            mpc.set_keepout(normals.view(), offsets.view()).unwrap();
            mpc.solve(x0.view(), Reference::Zero, Reference::Zero, None)
                .unwrap()
                .clone()
        };
        let stage = solve(mode, MpcSolverKind::ActiveSet);
        assert_eq!(stage.info.status, SolveStatus::Solved);
        if reachable {
            let hard = solve(KeepoutMode::Hard, MpcSolverKind::ActiveSet);
            assert_eq!(hard.info.status, SolveStatus::Solved);
            assert!(
                max_diff(&stage.u, &hard.u) < 1e-6,
                "{}",
                max_diff(&stage.u, &hard.u)
            );
            assert!(stage.info.max_violation < 1e-9);
        } else {
            let osqp = solve(mode, MpcSolverKind::Osqp);
            assert!(
                max_diff(&stage.u, &osqp.u) < 1e-4,
                "{}",
                max_diff(&stage.u, &osqp.u)
            );
            assert!(stage.info.max_violation > 1.0);
            assert!((stage.info.max_violation - osqp.info.max_violation).abs() < 1e-4);
            // The worst violation over the stages equals the largest slack.
            let worst = (1..=12)
                .flat_map(|k| {
                    let x = stage.x.row(k);
                    [x[1] - a, x[0] - b]
                })
                .fold(0.0f64, f64::max);
            assert!((worst - stage.info.max_violation).abs() < 1e-6);
            if b < 0.0 {
                // Both rows violated: one slack per row (Soft) is a different problem.
                let per_row = solve(KeepoutMode::Soft { l1, l2 }, MpcSolverKind::ActiveSet);
                assert!(max_diff(&stage.u, &per_row.u) > 1e-3);
            }
        }
    }
    // One row per stage: SoftStage is Soft.
    let one = |mode| {
        let mut mpc = build(mode, MpcSolverKind::ActiveSet, 1);
        let n1 = normals.slice(s![.., 0..1, ..]).to_owned();
        mpc.set_keepout(n1.view(), Array2::from_elem((12, 1), -5.0).view())
            .unwrap();
        mpc.solve(x0.view(), Reference::Zero, Reference::Zero, None)
            .unwrap()
            .clone()
    };
    let (s1, r1) = (one(mode), one(KeepoutMode::Soft { l1, l2 }));
    assert!(max_diff(&s1.u, &r1.u) < 1e-9);
    assert!(KeepoutMode::SoftStage { l1: 1.0, l2: 0.0 }
        .penalty()
        .is_some());
    assert!(problem(&c, false)
        .with_keepout_mode(KeepoutMode::SoftStage { l1: 1.0, l2: 0.0 })
        .is_err());
}

#[test]
fn warm_started_closed_loop_equals_cold_solves_and_does_not_allocate() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut c = random_case(&mut rng, 6, 2, 15);
    // A stable system, so the closed loop stays within the state bounds.
    c.a = Array2::from_shape_fn((6, 6), |(i, j)| {
        (if i == j { 0.9 } else { 0.0 }) + 0.05 * rng.random_range(-1.0..1.0)
    });
    c.u_max = 0.3;
    let prob = problem(&c, true);
    let mut warm = LinearMpc::with_keepout_rows(prob.clone(), MpcSettings::default(), 1).unwrap();
    let cold_settings = MpcSettings {
        warm_start: false,
        ..MpcSettings::default()
    };
    let mut x = Array1::from_shape_fn(6, |_| rng.random_range(-2.0..2.0));
    let mut normals = Array3::zeros((15, 1, 6));
    let mut offsets = Array2::zeros((15, 1));
    let mut u_prev: Option<Array1<f64>> = None;
    let mut active = 0;
    for step in 0..40 {
        // A moving keep-out on state 1, and a reference that changes halfway.
        for k in 0..15 {
            let ang = 0.1 * (step + k) as f64;
            normals[[k, 0, 1]] = ang.cos();
            normals[[k, 0, 2]] = ang.sin();
            offsets[[k, 0]] = 0.3;
        }
        let x_ref = Array1::from_elem(6, if step < 20 { 0.0 } else { 0.8 });
        let before = allocs();
        warm.set_keepout(normals.view(), offsets.view()).unwrap();
        let sol = warm
            .solve(
                x.view(),
                Reference::Constant(x_ref.view()),
                Reference::Zero,
                u_prev.as_ref().map(|u| u.view()),
            )
            .unwrap()
            .clone();
        let made = allocs() - before;
        // `.clone()` above allocates the copy (u, x): 2 allocations; the solve itself none.
        assert!(made <= 2, "step {step}: {made} allocations");
        if sol.info.status != SolveStatus::Solved {
            let mut cold = LinearMpc::with_keepout_rows(prob.clone(), cold_settings, 1).unwrap();
            cold.set_keepout(normals.view(), offsets.view()).unwrap();
            let cs = cold
                .solve(
                    x.view(),
                    Reference::Constant(x_ref.view()),
                    Reference::Zero,
                    u_prev.as_ref().map(|u| u.view()),
                )
                .unwrap();
            panic!("step {step}: warm {:?} cold {:?} x={x}", sol.info, cs.info);
        }
        let mut cold = LinearMpc::with_keepout_rows(prob.clone(), cold_settings, 1).unwrap();
        cold.set_keepout(normals.view(), offsets.view()).unwrap();
        let cs = cold
            .solve(
                x.view(),
                Reference::Constant(x_ref.view()),
                Reference::Zero,
                u_prev.as_ref().map(|u| u.view()),
            )
            .unwrap();
        assert!(
            max_diff(&sol.u, &cs.u) < 1e-8,
            "step {step}: {}",
            max_diff(&sol.u, &cs.u)
        );
        active += count_active(&sol.u, c.u_max) + usize::from(sol.info.max_violation > 1e-9);
        // Apply u0 to the true system.
        let u0 = sol.u.row(0).to_owned();
        x = c.a.dot(&x) + c.b.dot(&u0);
        u_prev = Some(u0);
    }
    assert!(
        active > 10,
        "the closed loop must hit constraints ({active})"
    );
}

#[test]
fn batch_equals_one_by_one_for_any_thread_count() {
    // Workers are reused across scenarios (one per thread for active-set and Riccati, taking
    // scenarios in whatever order the threads reach them), so this also checks that nothing
    // of one scenario's solve leaks into the next.
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let c = random_case(&mut rng, 4, 2, 10);
    let prob = problem(&c, false);
    let scen = 12;
    let x0s = Array2::from_shape_fn((scen, 4), |_| rng.random_range(-2.0..2.0));
    let mut normals = Array3::zeros((scen * 10, 1, 4));
    let mut offsets = Array2::zeros((scen * 10, 1));
    for i in 0..scen * 10 {
        normals[[i, 0, 0]] = 1.0;
        offsets[[i, 0]] = rng.random_range(-0.5..1.0);
    }
    for solver in [
        MpcSolverKind::ActiveSet,
        MpcSolverKind::Riccati,
        MpcSolverKind::Osqp,
    ] {
        let settings = MpcSettings {
            solver,
            ..MpcSettings::default()
        };
        let mut mpc = LinearMpc::new(prob.clone(), settings).unwrap();
        let batch = |mpc: &mut LinearMpc, par| {
            mpc.solve_scenarios(
                x0s.view(),
                Some((normals.view(), offsets.view())),
                Reference::Zero,
                Reference::Zero,
                par,
            )
            .unwrap()
        };
        let seq = batch(&mut mpc, Par::Seq);
        let cold = MpcSettings {
            warm_start: false,
            ..settings
        };
        for s in 0..scen {
            let mut one = LinearMpc::new(prob.clone(), cold).unwrap();
            one.set_keepout(
                normals.slice(s![s * 10..(s + 1) * 10, .., ..]),
                offsets.slice(s![s * 10..(s + 1) * 10, ..]),
            )
            .unwrap();
            let sol = one
                .solve(x0s.row(s), Reference::Zero, Reference::Zero, None)
                .unwrap();
            assert_eq!(
                sol.u, seq[s].u,
                "{solver:?} scenario {s}: batch differs from one-by-one"
            );
        }
        for threads in [2, 3] {
            // A fresh object: OSQP's per-scenario workspaces keep their adapted step size
            // from one call to the next (documented), so only the first call is compared.
            let mut fresh = LinearMpc::new(prob.clone(), settings).unwrap();
            let par = batch(&mut fresh, Par::threads(threads));
            for s in 0..scen {
                assert_eq!(
                    seq[s].u, par[s].u,
                    "{solver:?} scenario {s}: {threads} threads change the result"
                );
            }
        }
        if solver != MpcSolverKind::Osqp {
            // Repeated calls on one object, threads varying: workers keep nothing.
            for threads in [2, 3, 1, 2] {
                let again = batch(&mut mpc, Par::threads(threads));
                for s in 0..scen {
                    assert_eq!(
                        seq[s].u, again[s].u,
                        "{solver:?} scenario {s}: a repeated call on {threads} threads differs"
                    );
                }
            }
        }
    }
}

#[test]
fn osqp_backend_agrees_with_the_active_set_solver() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let c = random_case(&mut rng, 4, 2, 10);
    let prob = problem(&c, true);
    let mut exact = LinearMpc::with_keepout_rows(prob.clone(), MpcSettings::default(), 1).unwrap();
    let settings = MpcSettings {
        solver: MpcSolverKind::Osqp,
        eps: 1e-9,
        max_iter: 200_000,
        ..MpcSettings::default()
    };
    let mut osqp = LinearMpc::with_keepout_rows(prob, settings, 1).unwrap();
    assert_eq!(osqp.solver_kind(), MpcSolverKind::Osqp);
    let mut normals = Array3::zeros((10, 1, 4));
    normals.slice_mut(s![.., 0, 0]).fill(1.0);
    let offsets = Array2::from_elem((10, 1), 0.3);
    exact.set_keepout(normals.view(), offsets.view()).unwrap();
    osqp.set_keepout(normals.view(), offsets.view()).unwrap();
    for _ in 0..3 {
        let x0 = Array1::from_shape_fn(4, |_| rng.random_range(-2.0..2.0));
        let a = exact
            .solve(x0.view(), Reference::Zero, Reference::Zero, None)
            .unwrap()
            .clone();
        let b = osqp
            .solve(x0.view(), Reference::Zero, Reference::Zero, None)
            .unwrap()
            .clone();
        assert!(b.info.status.is_solved(), "{:?}", b.info);
        assert!(
            max_diff(&a.u, &b.u) < 1e-5,
            "{}\n{}\n{}\n{:?}",
            max_diff(&a.u, &b.u),
            a.u,
            b.u,
            b.info
        );
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let c = random_case(&mut rng, 3, 1, 5);
    let e = MpcProblem::new(c.a.clone(), c.b.clone(), -c.q.clone(), c.r.clone(), 5).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(MpcProblem::new(
        c.a.clone(),
        c.b.clone(),
        c.q.clone(),
        Array2::zeros((1, 1)),
        5
    )
    .is_err());
    assert!(MpcProblem::new(
        c.a.clone(),
        Array2::zeros((2, 1)),
        c.q.clone(),
        c.r.clone(),
        5
    )
    .is_err());
    assert!(MpcProblem::new(c.a.clone(), c.b.clone(), c.q.clone(), c.r.clone(), 0).is_err());
    let mut nan_a = c.a.clone();
    nan_a[[0, 0]] = f64::NAN;
    assert!(MpcProblem::new(nan_a, c.b.clone(), c.q.clone(), c.r.clone(), 5).is_err());
    // An uncontrollable unstable mode: no DARE solution, so P must be given.
    let a = ndarray::array![[1.2, 0.0], [0.0, 0.5]];
    let b = ndarray::array![[0.0], [1.0]];
    let p = MpcProblem::new(a, b, Array2::eye(2), ndarray::array![[1.0]], 5).unwrap();
    let err = LinearMpc::new(p.clone(), MpcSettings::default()).unwrap_err();
    assert!(err.to_string().contains("DARE"), "{err}");
    assert!(LinearMpc::new(
        p.with_terminal_cost(Array2::eye(2)).unwrap(),
        MpcSettings::default()
    )
    .is_ok());
    let mut mpc = LinearMpc::new(problem(&c, false), MpcSettings::default()).unwrap();
    assert!(mpc
        .solve(
            ndarray::array![0.0, f64::NAN, 0.0].view(),
            Reference::Zero,
            Reference::Zero,
            None
        )
        .is_err());
    assert!(mpc
        .solve(
            ndarray::array![0.0].view(),
            Reference::Zero,
            Reference::Zero,
            None
        )
        .is_err());
    let bad_ref = ndarray::array![1.0];
    assert!(mpc
        .solve(
            ndarray::array![0.0, 0.0, 0.0].view(),
            Reference::Constant(bad_ref.view()),
            Reference::Zero,
            None
        )
        .is_err());
    assert!(mpc
        .set_keepout(
            Array3::zeros((4, 1, 3)).view(),
            Array2::zeros((4, 1)).view()
        )
        .is_err());
    assert!(LinearMpc::new(
        problem(&c, false),
        MpcSettings {
            eps: 0.0,
            ..MpcSettings::default()
        }
    )
    .is_err());
    // A one-iteration cap is a status with a finite iterate, not an error.
    let mut capped = LinearMpc::new(
        problem(&c, false),
        MpcSettings {
            max_iter: 1,
            ..MpcSettings::default()
        },
    )
    .unwrap();
    let sol = capped
        .solve(
            ndarray::array![3.0, 3.0, 3.0].view(),
            Reference::Zero,
            Reference::Zero,
            None,
        )
        .unwrap();
    assert!(matches!(
        sol.info.status,
        SolveStatus::MaxIterations | SolveStatus::Solved
    ));
    assert!(sol.u.iter().all(|v| v.is_finite()));
}

#[test]
fn riccati_backend_equals_the_sparse_reference_and_auto_avoids_ill_conditioned_condensing() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for &(n, m, nh, rates) in &[(4, 2, 10, false), (6, 2, 15, true), (12, 4, 30, true)] {
        let c = random_case(&mut rng, n, m, nh);
        let prob = problem(&c, rates);
        let settings = MpcSettings {
            solver: MpcSolverKind::Riccati,
            eps: 1e-9,
            max_iter: 200,
            ..MpcSettings::default()
        };
        let mut ipm = LinearMpc::with_keepout_rows(prob.clone(), settings, 1).unwrap();
        assert_eq!(ipm.solver_kind(), MpcSolverKind::Riccati);
        let p_term = ipm.terminal_cost().clone();
        let mut normals = Array3::zeros((nh, 1, n));
        normals.slice_mut(s![.., 0, 1]).fill(1.0);
        for (step, offset) in [0.4, -0.3, -6.0].into_iter().enumerate() {
            let offsets = Array2::from_elem((nh, 1), offset);
            ipm.set_keepout(normals.view(), offsets.view()).unwrap();
            let x0 = Array1::from_shape_fn(n, |_| rng.random_range(-2.0..2.0));
            let up = Array1::from_elem(m, 0.1 * step as f64);
            let b = ipm
                .solve(x0.view(), Reference::Zero, Reference::Zero, Some(up.view()))
                .unwrap()
                .clone();
            assert!(
                b.info.status.is_solved(),
                "n={n} offset {offset}: {:?}",
                b.info
            );
            let (u_ref, slack) = reference(
                &c,
                &p_term,
                &x0,
                &Array1::zeros(n),
                Some((&normals, &offsets, 1e4, 1.0)),
                rates,
                Some(&up),
            );
            assert!(
                max_diff(&b.u, &u_ref) < 1e-5,
                "n={n} offset {offset}: {}",
                max_diff(&b.u, &u_ref)
            );
            assert!((b.info.max_violation - slack).abs() < 1e-5);
        }
        // Auto: the condensed solver for the short, mildly unstable horizons; Riccati when
        // A^N would make the condensed Hessian ill-conditioned (here ρ(A)^30 ≈ 2e3).
        let auto = LinearMpc::new(prob, MpcSettings::default()).unwrap();
        let want = if nh == 30 {
            MpcSolverKind::Riccati
        } else {
            MpcSolverKind::ActiveSet
        };
        assert_eq!(auto.solver_kind(), want, "n={n}, N={nh}");
    }
    // And for long horizons.
    let c = random_case(&mut rng, 4, 4, 100);
    let auto = LinearMpc::new(problem(&c, false), MpcSettings::default()).unwrap();
    assert_eq!(auto.solver_kind(), MpcSolverKind::Riccati);
}

#[test]
fn rate_bounds_default_to_the_last_input_for_any_input_count() {
    // 17 inputs: more than any small fixed buffer would hold.
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let c = random_case(&mut rng, 3, 17, 4);
    let prob = problem(&c, true);
    let mut mpc = LinearMpc::new(prob, MpcSettings::default()).unwrap();
    let first = mpc
        .solve(
            ndarray::array![2.0, -2.0, 1.0].view(),
            Reference::Zero,
            Reference::Zero,
            None,
        )
        .unwrap()
        .clone();
    let x1 = ndarray::array![-2.0, 2.0, -1.0];
    let second = mpc
        .solve(x1.view(), Reference::Zero, Reference::Zero, None)
        .unwrap()
        .clone();
    assert_eq!(second.info.status, SolveStatus::Solved);
    let step = (&second.u.row(0) - &first.u.row(0))
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        step <= c.du_max + 1e-9,
        "u0 moved by {step} > du_max {}",
        c.du_max
    );
    // The same solve without the remembered input is free to move further.
    let free = LinearMpc::new(problem(&c, true), MpcSettings::default())
        .unwrap()
        .solve(x1.view(), Reference::Zero, Reference::Zero, None)
        .unwrap()
        .clone();
    let free_step = (&free.u.row(0) - &first.u.row(0))
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(
        free_step > c.du_max + 1e-6,
        "test must exercise the rate bound ({free_step})"
    );
}

/// Hard keep-out rows moved between hot-started solves the way the intent engine moves them:
/// a row is sometimes disabled (infinite offset) with its normal left unchanged, so that only
/// its bound moves while it is still active in the factorisation; normals are sometimes kept
/// (bound-only update) and sometimes turned (the row is re-added); a few steps ask for more
/// clearance than the input bounds allow (infeasible). Hot solves used to return a NaN plan
/// reported as solved after an active row was disabled; they must equal cold solves.
#[test]
fn hard_keepout_hot_starts_survive_disabled_active_rows_and_equal_cold_solves() {
    let (nh, rows, dt) = (20, 3, 0.1);
    let (a, b) = intent_engine::mpc::models::double_integrator(2, dt).unwrap();
    let q = Array2::from_diag(&Array1::from(vec![1.0, 1.0, 0.1, 0.1]));
    let prob = MpcProblem::new(a.clone(), b.clone(), q, Array2::eye(2) * 0.2, nh)
        .unwrap()
        .with_input_bounds(
            Some(Array1::from(vec![-1.5, -1.5])),
            Some(Array1::from(vec![1.5, 1.5])),
        )
        .unwrap()
        .with_state_bounds(
            Some(Array1::from(vec![-1.0, -2.0, -1.0, -1.0])),
            Some(Array1::from(vec![5.0, 2.0, 1.0, 1.0])),
        )
        .unwrap()
        .with_keepout_mode(KeepoutMode::Hard)
        .unwrap();
    let mk = |warm_start: bool| {
        let s = MpcSettings {
            solver: MpcSolverKind::ActiveSet,
            warm_start,
            ..MpcSettings::default()
        };
        LinearMpc::with_keepout_rows(prob.clone(), s, rows).unwrap()
    };
    let (mut hot, mut cold) = (mk(true), mk(false));
    let x_ref = Array1::from(vec![4.0, 0.0, 0.0, 0.0]);
    let mut x0 = Array1::from(vec![0.0, 0.05, 0.0, 0.0]);
    let mut normals = Array3::<f64>::zeros((nh, rows, 4));
    let mut offsets = Array2::from_elem((nh, rows), f64::INFINITY);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut disabled_while_active, mut infeasible, mut solved) = (0, 0, 0);
    for step in 0..200 {
        let t = step as f64 * dt;
        let (prev_normals, prev_offsets) = (normals.clone(), offsets.clone());
        let dmin = if rng.random_bool(0.04) { 3.0 } else { 0.5 };
        for j in 0..rows {
            // Row j keeps clear of "person" j, who drifts across the robot's path.
            let person = [
                1.2 + 0.4 * j as f64 + 0.1 * (0.3 * t).sin(),
                0.4 * (j as f64 - 1.0) + 0.3 * (0.2 * t + j as f64).cos(),
            ];
            if rng.random_bool(0.15) {
                // Disabled: the offset becomes infinite and the normal stays as it was.
                offsets.column_mut(j).fill(f64::INFINITY);
                continue;
            }
            let keep = normals[[0, j, 0]] != 0.0 && rng.random_bool(0.5);
            for k in 0..nh {
                if !keep {
                    let d = [x0[0] - person[0], x0[1] - person[1] + 1e-3];
                    let len = (d[0] * d[0] + d[1] * d[1]).sqrt();
                    normals[[k, j, 0]] = -d[0] / len;
                    normals[[k, j, 1]] = -d[1] / len;
                }
                // −a·p ≤ −(a·person + dmin), i.e. a·(p − person) ≥ dmin along a = −normal.
                let an = -normals[[k, j, 0]] * person[0] - normals[[k, j, 1]] * person[1];
                offsets[[k, j]] = -(an + dmin);
            }
        }
        // Rows the last hot plan held tight that are disabled now (the failing pattern).
        let last = hot.solution();
        if last.info.status.is_solved() {
            for k in 0..nh {
                for j in 0..rows {
                    let was = prev_normals[[k, j, 0]] * last.x[[k + 1, 0]]
                        + prev_normals[[k, j, 1]] * last.x[[k + 1, 1]];
                    let tight = (was - prev_offsets[[k, j]]).abs() < 1e-7;
                    if tight && offsets[[k, j]].is_infinite() {
                        disabled_while_active += 1;
                    }
                }
            }
        }
        hot.set_keepout(normals.view(), offsets.view()).unwrap();
        cold.set_keepout(normals.view(), offsets.view()).unwrap();
        let xr = Reference::Constant(x_ref.view());
        let h = hot
            .solve(x0.view(), xr, Reference::Zero, None)
            .unwrap()
            .clone();
        let c = cold.solve(x0.view(), xr, Reference::Zero, None).unwrap();
        assert!(
            h.u.iter().chain(h.x.iter()).all(|v| v.is_finite()),
            "step {step}: non-finite hot plan with status {:?}",
            h.info.status
        );
        assert_eq!(h.info.status, c.info.status, "step {step}");
        match h.info.status {
            SolveStatus::Solved => {
                solved += 1;
                let d = max_diff(&h.u, &c.u);
                assert!(d < 1e-6, "step {step}: hot differs from cold by {d}");
                let u0 = h.u.row(0);
                x0 = a.dot(&x0) + b.dot(&u0);
            }
            SolveStatus::PrimalInfeasible => infeasible += 1,
            s => panic!("step {step}: unexpected status {s:?}"),
        }
    }
    assert!(
        disabled_while_active >= 5 && infeasible >= 2 && solved >= 150,
        "the sequence must disable active rows ({disabled_while_active}), be infeasible \
         sometimes ({infeasible}) and mostly solve ({solved})"
    );
}
