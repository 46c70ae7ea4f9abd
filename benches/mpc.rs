//! Criterion benches for the MPC core: a closed-loop quadrotor (12 states, 4 inputs, active
//! input bounds) replayed warm-started by the condensed active-set solver and by OSQP (Rust
//! crate) in the same run, N = 10 / 20 / 50; one moving keep-out row per stage (update +
//! solve); 64 scenarios on 1 and 2 threads.
//!
//! Each iteration solves the whole recorded sequence (`STEPS` QPs): divide by `STEPS` for the
//! per-solve time. `examples/mpc_quadrotor.rs` prints median / p99 / accuracy per solve.

use criterion::{criterion_group, criterion_main, Criterion};
use intent_engine::mpc::models::quadrotor_hover;
use intent_engine::mpc::{LinearMpc, MpcProblem, MpcSettings, MpcSolverKind, Reference};
use intent_engine::Par;
use ndarray::{Array1, Array2, Array3};

const STEPS: usize = 100;

struct Seq {
    prob: MpcProblem,
    states: Vec<Array1<f64>>,
    refs: Vec<Array1<f64>>,
    keep: Vec<(Array3<f64>, Array2<f64>)>,
}

fn sequence(nh: usize) -> Seq {
    let (a, b) = quadrotor_hover(0.02).unwrap();
    let qd = [
        100.0, 100.0, 100.0, 4.0, 4.0, 400.0, 4.0, 4.0, 4.0, 0.1, 0.1, 0.1,
    ];
    let q = Array2::from_diag(&Array1::from(qd.to_vec()));
    let prob = MpcProblem::new(a.clone(), b.clone(), q, Array2::eye(4), nh)
        .unwrap()
        .with_input_bounds(
            Some(Array1::from_elem(4, -0.5)),
            Some(Array1::from_elem(4, 0.5)),
        )
        .unwrap();
    // The reference loop respects the keep-out, as a robot under this controller would.
    let mut reference =
        LinearMpc::with_keepout_rows(prob.clone(), MpcSettings::default(), 1).unwrap();
    let mut x = Array1::<f64>::zeros(12);
    let (mut states, mut refs, mut keep) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..STEPS {
        let mut xr = Array1::<f64>::zeros(12);
        let t = if step < STEPS / 2 {
            [1.0, 1.0, 1.0]
        } else {
            [-1.0, 0.5, 0.0]
        };
        xr.slice_mut(ndarray::s![..3])
            .assign(&Array1::from(t.to_vec()));
        let mut nr = Array3::zeros((nh, 1, 12));
        let mut off = Array2::zeros((nh, 1));
        for k in 0..nh {
            let tt = (step + k + 1) as f64 * 0.02;
            nr[[k, 0, 1]] = 1.0;
            nr[[k, 0, 0]] = 0.1 * (0.3 * tt).cos();
            off[[k, 0]] = 0.6 + 0.4 * (0.5 * tt).sin();
        }
        reference.set_keepout(nr.view(), off.view()).unwrap();
        let sol = reference
            .solve(
                x.view(),
                Reference::Constant(xr.view()),
                Reference::Zero,
                None,
            )
            .unwrap();
        states.push(x.clone());
        refs.push(xr);
        keep.push((nr, off));
        x = a.dot(&x) + b.dot(&sol.u.row(0));
    }
    Seq {
        prob,
        states,
        refs,
        keep,
    }
}

fn replay(mpc: &mut LinearMpc, s: &Seq, keepout: bool) {
    for i in 0..STEPS {
        if keepout {
            mpc.set_keepout(s.keep[i].0.view(), s.keep[i].1.view())
                .unwrap();
        }
        let sol = mpc
            .solve(
                s.states[i].view(),
                Reference::Constant(s.refs[i].view()),
                Reference::Zero,
                None,
            )
            .unwrap();
        std::hint::black_box(sol.u[[0, 0]]);
    }
}

fn bench_quadrotor(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpc_quadrotor_100_qps");
    g.sample_size(20);
    for nh in [10usize, 20, 50] {
        let s = sequence(nh);
        for (name, kind, eps) in [
            ("active-set", MpcSolverKind::ActiveSet, 1e-6),
            ("osqp-1e-6", MpcSolverKind::Osqp, 1e-6),
        ] {
            let settings = MpcSettings {
                solver: kind,
                eps,
                max_iter: 100_000,
                ..MpcSettings::default()
            };
            let mut mpc = LinearMpc::new(s.prob.clone(), settings).unwrap();
            g.bench_function(format!("{name}/N={nh}"), |b| {
                b.iter(|| replay(&mut mpc, &s, false))
            });
        }
    }
    let s = sequence(20);
    let mut mpc = LinearMpc::with_keepout_rows(s.prob.clone(), MpcSettings::default(), 1).unwrap();
    g.bench_function("active-set/N=20/keepout-update+solve", |b| {
        b.iter(|| replay(&mut mpc, &s, true))
    });
    g.finish();
}

fn bench_scenarios(c: &mut Criterion) {
    let s = sequence(20);
    let mut mpc = LinearMpc::new(s.prob.clone(), MpcSettings::default()).unwrap();
    let x0s = Array2::from_shape_fn((64, 12), |(i, j)| {
        0.3 * (((i * 13 + j * 7) % 17) as f64 / 8.5 - 1.0)
    });
    let mut g = c.benchmark_group("mpc_64_scenarios");
    g.sample_size(20);
    for threads in [1usize, 2] {
        g.bench_function(format!("threads={threads}"), |b| {
            b.iter(|| {
                mpc.solve_batch(
                    x0s.view(),
                    Reference::Zero,
                    Reference::Zero,
                    Par::threads(threads),
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_quadrotor, bench_scenarios);
criterion_main!(benches);
