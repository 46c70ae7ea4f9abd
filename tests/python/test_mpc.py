"""LinearMPC and solve_qp from Python: against scipy / an independent dense KKT reference,
the public MPC QP benchmark (when ../shared/data is present), errors and statuses."""

import pathlib
import time

import numpy as np
import pytest

import intent_engine as ie

QPBENCH = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mpc_qpbenchmark"


def double_integrator(n_h=15):
    A, B = ie.double_integrator_model(2, 0.1)
    Q = np.diag([10.0, 10.0, 1.0, 1.0])
    R = 0.1 * np.eye(2)
    return A, B, Q, R, n_h


def test_models_are_exact_discretisations():
    A, B = ie.double_integrator_model(1, 0.2)
    np.testing.assert_allclose(A, [[1.0, 0.2], [0.0, 1.0]])
    np.testing.assert_allclose(B, [[0.02], [0.2]])
    A, B = ie.quadrotor_hover_model(0.02)
    assert A.shape == (12, 12) and B.shape == (12, 4)
    # Hover is an equilibrium: zero input keeps zero state.
    assert np.allclose(A @ np.zeros(12) + B @ np.zeros(4), 0.0)


def test_unconstrained_mpc_equals_finite_horizon_lqr():
    A, B, Q, R, N = double_integrator()
    mpc = ie.LinearMPC(A, B, Q, R, N)
    P = mpc.terminal_cost
    # DARE residual.
    K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    np.testing.assert_allclose(Q + A.T @ P @ A - A.T @ P @ B @ K, P, atol=1e-8)
    x0 = np.array([1.0, -0.5, 0.2, 0.1])
    sol = mpc.solve(x0)
    assert sol.status == "solved"
    # Backward Riccati recursion from P gives the same first input.
    Pk = P.copy()
    for _ in range(N):
        Kk = np.linalg.solve(R + B.T @ Pk @ B, B.T @ Pk @ A)
        Pk = Q + A.T @ Pk @ (A - B @ Kk)
    np.testing.assert_allclose(sol.u0, -Kk @ x0, atol=1e-9)
    assert sol.u.shape == (N, 2) and sol.x.shape == (N + 1, 4)
    np.testing.assert_allclose(sol.x[0], x0)
    np.testing.assert_allclose(sol.x[1], A @ x0 + B @ sol.u0, atol=1e-12)


def test_bounds_rates_and_keepout_are_respected_and_match_solve_qp():
    A, B, Q, R, N = double_integrator()
    u_max = np.array([0.5, 0.5])
    mpc = ie.LinearMPC(A, B, Q, R, N, u_min=-u_max, u_max=u_max, du_max=[0.2, 0.2], x_min=[-2, -2, -1, -1], x_max=[2, 2, 1, 1])
    x0 = np.array([1.5, -1.0, 0.0, 0.0])
    sol = mpc.solve(x0, x_ref=np.zeros(4), u_prev=np.zeros(2))
    assert sol.status == "solved"
    assert np.all(np.abs(sol.u) <= 0.5 + 1e-9)
    du = np.diff(np.vstack([np.zeros(2), sol.u]), axis=0)
    assert np.all(np.abs(du) <= 0.2 + 1e-9)
    assert np.any(np.isclose(np.abs(du), 0.2)), "rate bounds should be active"
    # Keep-out: y at stages 10..N below the free trajectory's y at stage 10 (the robot must
    # approach more slowly: soft but reachable, so no slack).
    normals = np.zeros((N, 4))
    normals[:, 1] = 1.0
    offsets = np.full(N, np.inf)
    limit = sol.x[10, 1] - 0.05
    offsets[9:] = limit
    mpc.set_keepout(normals, offsets)
    sol2 = mpc.solve(x0, u_prev=np.zeros(2))
    assert sol2.status == "solved"
    assert np.all(sol2.x[10:, 1] <= limit + 1e-7)
    assert np.isclose(sol2.x[10:, 1].max(), limit)
    assert sol2.max_violation < 1e-7
    # An unreachable keep-out: soft mode reports the slack, hard mode infeasibility.
    normals[:, 1] = 0.0
    normals[:, 0] = 1.0
    mpc.set_keepout(normals, np.full(N, -5.0))
    sol3 = mpc.solve(x0, u_prev=np.zeros(2))
    assert sol3.status == "solved" and sol3.max_violation > 1.0
    hard = ie.LinearMPC(A, B, Q, R, N, u_min=-u_max, u_max=u_max, keepout_soft=False)
    hard.set_keepout(normals, np.full(N, -5.0))
    assert hard.solve(x0).status == "primal-infeasible"


def test_solvers_agree_and_osqp_is_available():
    A, B, Q, R, N = double_integrator()
    kw = dict(u_min=[-0.3, -0.3], u_max=[0.3, 0.3])
    x0 = np.array([1.0, 1.0, 0.0, 0.0])
    ours = ie.LinearMPC(A, B, Q, R, N, **kw).solve(x0)
    osqp = ie.LinearMPC(A, B, Q, R, N, solver="osqp", eps=1e-9, max_iter=100000, **kw)
    assert osqp.solver == "osqp"
    so = osqp.solve(x0)
    assert so.status in ("solved", "solved-inaccurate")
    np.testing.assert_allclose(ours.u, so.u, atol=1e-6)


def test_riccati_solver_matches_the_active_set_solver():
    A, B, Q, R, N = double_integrator(40)
    kw = dict(u_min=[-0.3, -0.3], u_max=[0.3, 0.3], du_max=[0.1, 0.1], x_min=[-3, -3, -1, -1], x_max=[3, 3, 1, 1])
    x0 = np.array([1.0, -1.0, 0.2, 0.0])
    ours = ie.LinearMPC(A, B, Q, R, N, **kw)
    ric = ie.LinearMPC(A, B, Q, R, N, solver="riccati", eps=1e-9, **kw)
    assert ric.solver == "riccati" and ours.solver == "active-set"
    normals = np.zeros((N, 4))
    normals[:, 1] = -1.0
    for mpc in (ours, ric):
        mpc.set_keepout(normals, np.full(N, 0.8))  # y_k >= -0.8
    a = ours.solve(x0, u_prev=np.zeros(2))
    b = ric.solve(x0, u_prev=np.zeros(2))
    assert a.status == "solved" and b.status in ("solved", "solved-inaccurate")
    np.testing.assert_allclose(a.u, b.u, atol=1e-5)
    # Long horizons pick the Riccati solver automatically.
    assert ie.LinearMPC(A, B, Q, R, 200).solver == "riccati"


def test_per_stage_references_and_batch_equal_one_by_one():
    A, B, Q, R, N = double_integrator(10)
    mpc = ie.LinearMPC(A, B, Q, R, N, u_min=[-0.5, -0.5], u_max=[0.5, 0.5])
    x_ref = np.zeros((N + 1, 4))
    x_ref[:, 0] = np.linspace(0, 1, N + 1)
    sol = mpc.solve(np.zeros(4), x_ref=x_ref, u_ref=np.zeros((N, 2)))
    assert sol.status == "solved" and sol.u0[0] > 0
    rng = np.random.default_rng(0)
    x0s = rng.uniform(-2, 2, size=(16, 4))
    batch = mpc.solve_batch(x0s, threads=2)
    for x0, b in zip(x0s, batch):
        one = ie.LinearMPC(A, B, Q, R, N, u_min=[-0.5, -0.5], u_max=[0.5, 0.5], warm_start=False).solve(x0)
        np.testing.assert_array_equal(one.u, b.u)
    # Per-scenario keep-outs.
    normals = np.zeros((16, N, 4))
    normals[..., 0] = 1.0
    offs = rng.uniform(0.0, 1.0, size=(16, N))
    batch = mpc.solve_batch(x0s, stage_normals=normals, stage_offsets=offs, threads=2)
    assert all(b.status == "solved" for b in batch)


def test_bad_input_raises_value_errors():
    A, B, Q, R, N = double_integrator()
    with pytest.raises(ValueError, match="Q"):
        ie.LinearMPC(A, B, -Q, R, N)
    with pytest.raises(ValueError, match="R"):
        ie.LinearMPC(A, B, Q, np.zeros((2, 2)), N)
    with pytest.raises(ValueError, match="horizon"):
        ie.LinearMPC(A, B, Q, R, 0)
    with pytest.raises(ValueError, match="solver"):
        ie.LinearMPC(A, B, Q, R, N, solver="cplex")
    with pytest.raises(ValueError):
        ie.LinearMPC(A, B[:3], Q, R, N)
    with pytest.raises(ValueError, match="u_min"):
        ie.LinearMPC(A, B, Q, R, N, u_min=[1.0, 1.0], u_max=[0.0, 0.0])
    mpc = ie.LinearMPC(A, B, Q, R, N)
    with pytest.raises(ValueError, match="x0"):
        mpc.solve([0.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="x0"):
        mpc.solve([0.0, 0.0])
    with pytest.raises(ValueError):
        mpc.set_keepout(np.zeros((N + 1, 4)), np.zeros(N + 1))
    with pytest.raises(ie.InvalidInputError):
        ie.solve_qp(np.eye(2), [1.0, np.inf])
    with pytest.raises(ValueError, match="symmetric"):
        ie.solve_qp(np.array([[1.0, 1.0], [0.0, 1.0]]), [0.0, 0.0])
    with pytest.raises(ValueError, match="G/h"):
        ie.solve_qp(np.eye(2), [0.0, 0.0], G=np.eye(2))


def test_solve_qp_matches_scipy_on_random_problems():
    scipy_opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(3)
    for n, m in [(3, 4), (8, 12), (20, 30)]:
        M = rng.normal(size=(n, n))
        P = M @ M.T + 0.5 * np.eye(n)
        q = rng.normal(size=n)
        G = rng.normal(size=(m, n))
        h = rng.uniform(0.1, 1.0, size=m)
        x = ie.solve_qp(P, q, G, h, eps=1e-9)
        assert x is not None
        res = scipy_opt.minimize(
            lambda v: 0.5 * v @ P @ v + q @ v, np.zeros(n), jac=lambda v: P @ v + q,
            constraints=[{"type": "ineq", "fun": lambda v: h - G @ v, "jac": lambda v: -G}],
            method="SLSQP", options={"ftol": 1e-14, "maxiter": 1000},
        )
        assert np.all(G @ x <= h + 1e-9)
        f = lambda v: 0.5 * v @ P @ v + q @ v  # noqa: E731
        assert f(x) <= f(res.x) + 1e-9
        np.testing.assert_allclose(x, res.x, atol=1e-5)
    # Equalities and bounds, and the full solution object.
    sol = ie.solve_qp_solution(np.eye(2), [-1.0, -1.0], A=np.array([[1.0, -1.0]]), b=[0.0], lb=[-1.0, -1.0], ub=[0.3, 1.0], eps=1e-9)
    assert sol.found and sol.status == "solved"
    np.testing.assert_allclose(sol.x, [0.3, 0.3], atol=1e-12)
    assert sol.z_box[0] > 0 and sol.dual_residual < 1e-12
    # Infeasible: None from solve_qp, a status from solve_qp_solution.
    assert ie.solve_qp(np.eye(1), [0.0], G=np.array([[1.0], [-1.0]]), h=[-1.0, -1.0]) is None
    bad = ie.solve_qp_solution(np.eye(1), [0.0], G=np.array([[1.0], [-1.0]]), h=[-1.0, -1.0])
    assert bad.status == "primal-infeasible" and not bad.found


@pytest.mark.skipif(not QPBENCH.is_dir(), reason="../shared/data/mpc_qpbenchmark not present")
@pytest.mark.parametrize("eps", [1e-6, 1e-9])
def test_public_mpc_qp_benchmark_all_solved(eps):
    files = sorted(QPBENCH.glob("*.npz"))
    assert len(files) == 62
    for f in files:
        d = dict(np.load(f))
        sol = ie.solve_qp_solution(eps=eps, **d)
        assert sol.status == "solved", f.name
        # The benchmark's criteria: primal and dual residuals and duality gap within eps.
        assert max(sol.primal_residual, sol.dual_residual, sol.duality_gap) <= eps, (f.name, sol)
        # Check the primal residual independently of the solver's own report.
        x = sol.x
        res = 0.0
        if "G" in d:
            res = max(res, float(np.max(d["G"] @ x - d["h"])))
        if "A" in d:
            res = max(res, float(np.max(np.abs(d["A"] @ x - d["b"]))))
        if "lb" in d:
            res = max(res, float(np.max(d["lb"] - x)))
        if "ub" in d:
            res = max(res, float(np.max(x - d["ub"])))
        assert res <= eps, f.name
        stat = d["P"] @ x + d["q"] + sol.z_box
        if "G" in d:
            stat += d["G"].T @ sol.z
            assert np.all(sol.z >= 0)
        if "A" in d:
            stat += d["A"].T @ sol.y
        assert np.max(np.abs(stat)) <= eps, f.name


def test_solve_is_fast_enough_to_call_in_a_loop():
    # Not a timing assertion on the solver (benchmarks do that): just that the Python call
    # overhead does not dwarf a small solve.
    A, B, Q, R, N = double_integrator(10)
    mpc = ie.LinearMPC(A, B, Q, R, N, u_min=[-0.5, -0.5], u_max=[0.5, 0.5])
    x0 = np.array([1.0, 0.0, 0.0, 0.0])
    for _ in range(50):
        mpc.solve(x0)
    t = time.perf_counter()
    for _ in range(200):
        s = mpc.solve(x0)
    per_call = (time.perf_counter() - t) / 200
    assert per_call < 5e-3 and s.status == "solved"


def test_iteration_cap_and_time_limit_are_statuses_with_a_finite_iterate():
    A, B, Q, R, N = double_integrator(20)
    kw = dict(u_min=[-0.1, -0.1], u_max=[0.1, 0.1])
    x0 = np.array([3.0, -3.0, 1.0, -1.0])
    capped = ie.LinearMPC(A, B, Q, R, N, max_iter=2, **kw).solve(x0)
    assert capped.status == "max-iterations" and np.all(np.isfinite(capped.u))
    timed = ie.LinearMPC(A, B, Q, R, N, time_limit=1e-9, **kw).solve(x0)
    assert timed.status == "time-limit" and np.all(np.isfinite(timed.u))
    for solver in ("riccati", "osqp"):
        s = ie.LinearMPC(A, B, Q, R, N, solver=solver, max_iter=2, **kw).solve(x0)
        assert s.status in ("max-iterations", "solved-inaccurate"), (solver, s.status)
        assert not s.status == "solved"
    with pytest.raises(ValueError, match="time_limit"):
        ie.LinearMPC(A, B, Q, R, N, time_limit=-1.0)
