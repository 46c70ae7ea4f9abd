//! The MPC builder (`MpcProblem` + bounds + `LinearMpc`) with arbitrary dimensions, solver
//! kinds and values; a built controller is solved from an arbitrary state. Errors or statuses,
//! never a panic; a solved input respects the bounds.
#![no_main]

use arbitrary::Arbitrary;
use intent_engine::mpc::{LinearMpc, MpcProblem, MpcSettings, MpcSolverKind, Reference};
use libfuzzer_sys::fuzz_target;
use ndarray::{Array1, Array2};

#[derive(Arbitrary, Debug)]
struct Input {
    nx: u8,
    nu: u8,
    horizon: u8,
    solver: u8,
    bounds: bool,
    rate: bool,
    state_bounds: bool,
    warm: bool,
    values: Vec<f64>,
}

fn take(it: &mut impl Iterator<Item = f64>) -> f64 {
    it.next().unwrap_or(0.25)
}

fuzz_target!(|inp: Input| {
    let nx = usize::from(inp.nx % 5);
    let nu = usize::from(inp.nu % 4);
    let horizon = usize::from(inp.horizon % 12);
    let mut it = inp.values.iter().copied().cycle().take(4096);
    let a = Array2::from_shape_fn((nx, nx), |_| take(&mut it));
    let b = Array2::from_shape_fn((nx, nu), |_| take(&mut it));
    let q = Array2::from_shape_fn((nx, nx), |(i, j)| if i == j { take(&mut it).abs() } else { 0.0 });
    let r = Array2::from_shape_fn((nu, nu), |(i, j)| if i == j { take(&mut it).abs() } else { 0.0 });
    let Ok(mut prob) = MpcProblem::new(a, b, q, r, horizon) else { return };
    if inp.bounds {
        let lo = Array1::from_shape_fn(nu, |_| take(&mut it));
        let hi = Array1::from_shape_fn(nu, |_| take(&mut it));
        match prob.with_input_bounds(Some(lo), Some(hi)) {
            Ok(p) => prob = p,
            Err(_) => return,
        }
    }
    if inp.state_bounds {
        let lo = Array1::from_shape_fn(nx, |_| take(&mut it));
        let hi = Array1::from_shape_fn(nx, |_| take(&mut it));
        match prob.with_state_bounds(Some(lo), Some(hi)) {
            Ok(p) => prob = p,
            Err(_) => return,
        }
    }
    if inp.rate {
        let du = Array1::from_shape_fn(nu, |_| take(&mut it));
        match prob.with_rate_bounds(du) {
            Ok(p) => prob = p,
            Err(_) => return,
        }
    }
    let solver = [
        MpcSolverKind::Auto,
        MpcSolverKind::ActiveSet,
        MpcSolverKind::Riccati,
        MpcSolverKind::Osqp,
    ][usize::from(inp.solver % 4)];
    let settings = MpcSettings { solver, warm_start: inp.warm, ..MpcSettings::default() };
    let Ok(mut mpc) = LinearMpc::new(prob, settings) else { return };
    let x0 = Array1::from_shape_fn(nx, |_| take(&mut it));
    for _ in 0..2 {
        if let Ok(sol) = mpc.solve(x0.view(), Reference::Zero, Reference::Zero, None) {
            if sol.info.status.is_solved() {
                assert!(sol.u.iter().all(|v| v.is_finite()), "solved with non-finite u");
            }
        }
    }
});
