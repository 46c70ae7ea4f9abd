"""Property-based tests (hypothesis) of the invariants in issue 9: incremental GP equals a refit;
a warm-started MPC/QP solve equals a cold one; resampling preserves the expected counts; the
pipeline's decision is finite and within the actuator limits for any finite input."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import intent_engine as ie
from intent_engine.kernels import RBF

# derandomize: every CI run checks the same examples (a random draw must not fail CI at random).
FAST = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
coord = st.floats(-3.0, 3.0, allow_nan=False)


@FAST
@given(st.data(), st.integers(1, 3), st.integers(1, 12), st.integers(1, 8))
def test_incremental_gp_equals_refit(data, d, n0, k):
    # (with normalize_y the constants are fixed at fit and kept while streaming, as documented,
    # so a refit on more data normalises differently: the property is for normalize_y=False)
    normalize = False
    X = data.draw(arrays(np.float64, (n0 + k, d), elements=coord), label="X")
    y = data.draw(arrays(np.float64, (n0 + k,), elements=coord), label="y")
    XT = data.draw(arrays(np.float64, (4, d), elements=coord), label="XT")
    kern = RBF([0.8] * d, 1.3)
    inc = ie.GaussianProcess(kern, noise_variance=0.05, normalize_y=normalize).fit(X[:n0], y[:n0])
    inc.add_observations(X[n0:], y[n0:])
    ref = ie.GaussianProcess(kern, noise_variance=0.05, normalize_y=normalize).fit(X, y)
    (m1, s1), (m2, s2) = inc.predict(XT, return_std=True), ref.predict(XT, return_std=True)
    scale = 1.0 + np.abs(y).max()
    np.testing.assert_allclose(m1, m2, rtol=1e-7, atol=1e-8 * scale)
    np.testing.assert_allclose(s1, s2, rtol=1e-6, atol=1e-7 * scale)
    assert inc.n_observations == ref.n_observations == n0 + k


A, B = ie.double_integrator_model(2, 0.1)


@FAST
@given(st.lists(arrays(np.float64, (4,), elements=st.floats(-2.0, 2.0)), min_size=2, max_size=6),
       st.sampled_from(["active-set", "osqp"]))
def test_warm_started_mpc_equals_cold(x0s, solver):
    kw = dict(u_min=-np.ones(2), u_max=np.ones(2), du_max=0.6 * np.ones(2), solver=solver, eps=1e-9,
              max_iter=20000)
    warm = ie.LinearMPC(A, B, np.eye(4), 0.1 * np.eye(2), 12, warm_start=True, **kw)
    x_ref = np.array([1.0, 0.5, 0.0, 0.0])
    for x0 in x0s:
        # the same u_prev for both: only the warm start differs
        w = warm.solve(x0, x_ref=x_ref, u_prev=np.zeros(2))
        cold = ie.LinearMPC(A, B, np.eye(4), 0.1 * np.eye(2), 12, warm_start=False, **kw)
        c = cold.solve(x0, x_ref=x_ref, u_prev=np.zeros(2))
        assert w.status == c.status, (w.status, c.status)
        if c.status == "solved":
            np.testing.assert_allclose(w.u, c.u, atol=2e-5)


@FAST
@given(arrays(np.float64, st.integers(2, 12), elements=st.floats(0.0, 10.0)).filter(lambda w: w.sum() > 1e-3),
       st.integers(1, 40), st.sampled_from(["systematic", "stratified", "residual", "multinomial", "rejection"]))
def test_resampling_preserves_expected_counts(w, n, scheme):
    fn = getattr(ie, f"{scheme}_resample")
    p = w / w.sum()
    seeds = 300
    counts = np.zeros(len(w))
    for seed in range(seeds):
        idx = fn(w, seed=seed, n=n)
        assert idx.shape == (n,) and idx.min() >= 0 and idx.max() < len(w)
        assert np.all(p[idx] > 0), "a zero-weight particle was drawn"
        c = np.bincount(idx, minlength=len(w))
        if scheme == "systematic":  # low variance: within one of n p_i
            assert np.all(np.abs(c - n * p) < 1 + 1e-9), (c, n * p)
        if scheme == "residual":  # the deterministic part
            assert np.all(c >= np.floor(n * p + 1e-9) - 0)
        counts += c
    mean = counts / seeds
    sd = np.sqrt(n * p * (1 - p) / seeds)
    assert np.all(np.abs(mean - n * p) <= 5 * sd + 0.02 * n * p + 1e-9), (mean, n * p)


finite = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(-50.0, 50.0, allow_nan=False)
obs = st.one_of(st.none(), st.tuples(finite, finite), st.tuples(moderate, moderate))
state = st.one_of(st.tuples(finite, finite, finite, finite), st.tuples(moderate, moderate, moderate, moderate))

ENGINE = dict(workspace=(0.0, 6.0, 0.0, 4.0), n_particles=100, robot_goal=[1.0, 1.0], horizon=10, samples=4,
              belief_budget=1.0, prediction_budget=1.0, solve_budget=1.0, step_budget=2.0, max_accel=1.5)


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(obs, state, st.floats(1e-4, 0.5)), min_size=1, max_size=12))
def test_pipeline_decision_is_finite_and_within_limits(steps):
    e = ie.IntentEngine([[5.0, 3.2], [5.2, 0.8], [0.4, 3.6]], **ENGINE)
    t = 0.0
    for o, x, dt in steps:
        t += dt
        d = e.step(None if o is None else list(o), list(x), t)
        assert np.all(np.isfinite(d.command)), (o, x, d.command, d.reason)
        assert np.all(np.abs(d.command) <= 1.5 + 1e-9), (o, x, d.command)
        p = d.goal_probabilities
        assert np.all(np.isfinite(p)) and abs(p.sum() - 1) < 1e-9 and np.all(p >= 0)
        assert d.fresh == (d.fallback is None)


@pytest.mark.parametrize("robot", ["unicycle", "arm_point"])
def test_other_robots_stay_within_limits(robot):
    e = ie.IntentEngine([[5.0, 3.2], [0.4, 3.6]], robot=robot, **{**ENGINE, "max_speed": 0.8})
    rng = np.random.default_rng(1)
    n = 3 if robot == "unicycle" else 2
    for i in range(1, 200):
        x = rng.uniform(-10, 10, size=n) if i % 7 else rng.uniform(-1e6, 1e6, size=n)
        d = e.step([rng.uniform(0, 6), rng.uniform(0, 4)], x, 0.01 * i)
        assert np.all(np.isfinite(d.command)), (x, d.command, d.reason)
