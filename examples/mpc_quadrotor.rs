//! Closed-loop quadrotor MPC (12 states, 4 inputs): times every solver on the same sequence of
//! QPs and reports median / p99 solve time and max |u0 − u0*| against a tight reference.
//!
//! `cargo run --release --example mpc_quadrotor [N]`
use intent_engine::mpc::models::quadrotor_hover;
use intent_engine::mpc::{LinearMpc, MpcProblem, MpcSettings, MpcSolverKind, Reference};
use ndarray::{Array1, Array2, Array3};
use std::time::Instant;

fn main() -> Result<(), intent_engine::Error> {
    let nh: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let keepout = std::env::args().any(|a| a == "keepout");
    let (a, b) = quadrotor_hover(0.02)?;
    let qd = [
        100.0, 100.0, 100.0, 4.0, 4.0, 400.0, 4.0, 4.0, 4.0, 0.1, 0.1, 0.1,
    ];
    let q = Array2::from_diag(&Array1::from(qd.to_vec()));
    let r = Array2::eye(4) * 1.0;
    let prob = MpcProblem::new(a.clone(), b.clone(), q, r, nh)?.with_input_bounds(
        Some(Array1::from_elem(4, -0.5)),
        Some(Array1::from_elem(4, 0.5)),
    )?;
    let steps = 300;
    let mk = |kind, eps| {
        LinearMpc::with_keepout_rows(
            prob.clone(),
            MpcSettings {
                solver: kind,
                eps,
                max_iter: 100_000,
                ..Default::default()
            },
            usize::from(keepout),
        )
    };
    let mut reference = mk(MpcSolverKind::ActiveSet, 1e-12)?;
    reference.set_warm_start(false)?;
    let mut solvers = vec![("active-set", mk(MpcSolverKind::ActiveSet, 1e-6)?)];
    if !std::env::args().any(|a| a == "ours") {
        solvers.push(("osqp 1e-4", mk(MpcSolverKind::Osqp, 1e-4)?));
        solvers.push(("osqp 1e-6", mk(MpcSolverKind::Osqp, 1e-6)?));
    }
    // Pass 1: the closed loop under the reference solution; record every QP's data.
    let mut x = Array1::<f64>::zeros(12);
    let mut states = Vec::new();
    let mut refs = Vec::new();
    let mut keeps = Vec::new();
    let mut u_stars = Vec::new();
    let mut active = 0usize;
    for step in 0..steps {
        let smooth = std::env::args().any(|a| a == "smooth");
        let mut xr = Array1::<f64>::zeros(12);
        if smooth {
            // A figure-eight tracked at speed: bounds saturate in the turns, no reference jumps.
            let t = step as f64 * 0.02;
            xr[0] = 2.0 * (2.0 * t).sin();
            xr[1] = 1.0 * (4.0 * t).sin();
            xr[2] = 1.0 * (3.0 * t).sin();
        } else {
            let target = match step / 100 {
                0 => [1.0, 1.0, 1.0],
                1 => [-1.0, 0.5, 0.0],
                _ => [0.0, 0.0, 0.0],
            };
            xr[0] = target[0];
            xr[1] = target[1];
            xr[2] = target[2];
        }
        let mut nr = Array3::zeros((nh, 1, 12));
        let mut off = Array2::zeros((nh, 1));
        if keepout {
            // A person walking nearby: keep the robot's y below a moving line (one row/stage).
            for k in 0..nh {
                let t = (step + k + 1) as f64 * 0.02;
                nr[[k, 0, 1]] = 1.0;
                nr[[k, 0, 0]] = 0.1 * (0.3 * t).cos();
                off[[k, 0]] = 0.6 + 0.4 * (0.5 * t).sin();
            }
            reference.set_keepout(nr.view(), off.view())?;
        }
        let u_star = reference
            .solve(
                x.view(),
                Reference::Constant(xr.view()),
                Reference::Zero,
                None,
            )?
            .clone();
        active += u_star
            .u
            .iter()
            .filter(|v| (v.abs() - 0.5).abs() < 1e-9)
            .count();
        states.push(x.clone());
        refs.push(xr);
        keeps.push((nr, off));
        x = a.dot(&x) + b.dot(&u_star.u.row(0));
        u_stars.push(u_star.u.row(0).to_owned());
    }
    // Pass 2: each solver replays the same sequence on its own (warm-started as in a loop).
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); solvers.len()];
    let mut errs = vec![0.0f64; solvers.len()];
    for (i, (_, s)) in solvers.iter_mut().enumerate() {
        for step in 0..steps {
            let t0 = Instant::now();
            if keepout {
                s.set_keepout(keeps[step].0.view(), keeps[step].1.view())?;
            }
            let sol = s.solve(
                states[step].view(),
                Reference::Constant(refs[step].view()),
                Reference::Zero,
                None,
            )?;
            times[i].push(t0.elapsed().as_secs_f64());
            let e = sol
                .u
                .row(0)
                .iter()
                .zip(u_stars[step].iter())
                .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
            errs[i] = errs[i].max(e);
        }
    }
    println!(
        "quadrotor 12x4, N = {nh}, {steps} closed-loop QPs, {:.1} active input bounds per QP{}",
        active as f64 / steps as f64,
        if keepout {
            ", keep-out row per stage (update + solve)"
        } else {
            ""
        }
    );
    for (i, (name, _)) in solvers.iter().enumerate() {
        let mut t = times[i].clone();
        t.sort_by(f64::total_cmp);
        let med = t[t.len() / 2] * 1e6;
        let p99 = t[(t.len() * 99) / 100] * 1e6;
        println!(
            "{name:>12}: median {med:8.1} us  p99 {p99:8.1} us  max|u0-u0*| {:.1e}",
            errs[i]
        );
        if std::env::args().any(|a| a == "tail") {
            let mut idx: Vec<usize> = (0..times[i].len()).collect();
            idx.sort_by(|&a, &b| times[i][b].total_cmp(&times[i][a]));
            let top: Vec<String> = idx
                .iter()
                .take(12)
                .map(|&k| format!("{k}:{:.0}", times[i][k] * 1e6))
                .collect();
            println!("              slowest (step:us) {}", top.join(" "));
        }
    }
    Ok(())
}
