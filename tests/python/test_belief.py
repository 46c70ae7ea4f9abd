"""Belief core from Python: GoalInference, ParticleFilter, resamplers, acquisition."""

import os
import pickle
import re

import numpy as np
import pytest

import intent_engine as ie
from intent_engine import acquisition as acq

GOALS = np.array([[5.0, 0.0], [0.0, 5.0], [-3.0, -3.0]])
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def walk(n, v=(0.12, 0.0)):
    return [np.array([v[0] * t, v[1] * t]) for t in range(n)]


def test_goal_inference_finds_the_goal_and_predicts():
    gi = ie.GoalInference(GOALS, n_particles=2000, dt=0.1, seed=1, speed=1.2, obs_noise=0.05,
                          resampling="systematic", ess_threshold=0.5)
    assert gi.n_goals == 3
    np.testing.assert_allclose(gi.goal_probabilities(), np.full(3, 1 / 3))
    for z in walk(20):
        status = gi.update(z)
        assert status in ("ok", "resampled", "reinitialised")
    p = gi.goal_probabilities()
    assert p.shape == (3,) and abs(p.sum() - 1) < 1e-12 and p[0] > 0.9
    assert 0 < gi.effective_sample_size() <= 2000
    assert np.isfinite(gi.log_likelihood)
    mean, cov = gi.predict(10)
    assert mean.shape == (10, 2) and cov.shape == (10, 2, 2)
    assert mean[-1, 0] > mean[0, 0] > 2.2  # keeps walking along +x
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert cov[-1, 0, 0] > cov[0, 0, 0]  # uncertainty grows with the horizon
    traj = gi.sample_trajectories(10, 50, seed=3)
    assert traj.shape == (50, 10, 2)
    np.testing.assert_allclose(traj.mean(axis=0)[-1], mean[-1], atol=0.5)
    assert gi.mean().shape == (4,) and gi.covariance().shape == (4, 4)


def test_same_seed_same_output_any_thread_count():
    def run(threads):
        gi = ie.GoalInference(GOALS, n_particles=4000, seed=7, threads=threads, switch_prob=0.01)
        for z in walk(15, (0.05, 0.08)):
            gi.update(z)
        return gi.goal_probabilities(), gi.log_likelihood, gi.predict(5, seed=2)[0]

    a, b = run(1), run(2)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])


def test_goals_added_and_removed():
    gi = ie.GoalInference(GOALS, n_particles=1000)
    for z in walk(10):
        gi.update(z)
    gi.add_goal([2.0, 0.0])
    gi.add_goal(np.array([8.0, 8.0, 0.5]))
    assert gi.n_goals == 5 and abs(gi.goal_probabilities().sum() - 1) < 1e-12
    gi.remove_goal(4)
    assert gi.goal_probabilities().shape == (4,)
    with pytest.raises(ValueError):
        gi.remove_goal(9)


def test_guided_proposal_keeps_particles_alive_on_precise_tracks():
    # Observations 1 cm apart from the truth, motion noise much larger: the bootstrap filter's
    # weights collapse every step, the guided proposal's do not. Both find the goal.
    goals = np.array([[8.0, 0.0], [0.0, 8.0], [-6.0, -6.0]])
    kw = dict(n_particles=500, dt=0.4, seed=0, obs_noise=0.01, velocity_noise=0.6)
    boot = ie.GoalInference(goals, **kw)
    guided = ie.GoalInference(goals, proposal="guided", **kw)
    rng = np.random.default_rng(1)
    ess_b, ess_g = [], []
    for t in range(12):
        z = np.array([0.45 * t, 0.02 * t]) + 0.01 * rng.standard_normal(2)
        boot.update(z)
        guided.update(z)
        if t > 0:
            ess_b.append(boot.effective_sample_size())
            ess_g.append(guided.effective_sample_size())
    assert np.argmax(guided.goal_probabilities()) == 0
    assert np.argmax(boot.goal_probabilities()) == 0
    assert np.median(ess_g) > 5 * np.median(ess_b), (ess_g, ess_b)
    assert np.isfinite(guided.log_likelihood)
    # The setting survives pickling (before the first update) and bad values are errors.
    import pickle

    fresh = pickle.loads(pickle.dumps(ie.GoalInference(goals, proposal="guided", **kw)))
    again = ie.GoalInference(goals, proposal="guided", **kw)
    for t in range(5):
        z = [0.45 * t, 0.0]
        fresh.update(z)
        again.update(z)
    np.testing.assert_array_equal(fresh.goal_probabilities(), again.goal_probabilities())
    with pytest.raises(ValueError, match="proposal"):
        ie.GoalInference(goals, proposal="optimal")


def test_goal_prior_sets_the_initial_posterior_survives_pickling_and_is_checked():
    goals = np.array([[8.0, 0.0], [0.0, 8.0], [-6.0, -6.0]])
    kw = dict(n_particles=2000, dt=0.4, seed=2, switch_prob=0.05)
    gi = ie.GoalInference(goals, goal_prior=[6.0, 3.0, 1.0], **kw)
    np.testing.assert_allclose(gi.goal_probabilities(), [0.6, 0.3, 0.1], atol=1e-12)
    # Ambiguous evidence (walking between goals 0 and 1): the prior tips the balance.
    flat = ie.GoalInference(goals, **kw)
    for t in range(3):
        z = [0.3 * t, 0.3 * t]
        gi.update(z)
        flat.update(z)
    p, q = gi.goal_probabilities(), flat.goal_probabilities()
    assert p[0] / p[1] > 1.5 * q[0] / q[1], (p, q)
    again = pickle.loads(pickle.dumps(ie.GoalInference(goals, goal_prior=[6.0, 3.0, 1.0], **kw)))
    for t in range(3):
        again.update([0.3 * t, 0.3 * t])
    np.testing.assert_array_equal(again.goal_probabilities(), p)
    for bad in ([1.0, 2.0], [1.0, np.nan, 1.0], [0.0, 0.0, 0.0], [1.0, -1.0, 1.0]):
        with pytest.raises(ie.InvalidInputError, match="goal_prior"):
            ie.GoalInference(goals, goal_prior=bad)


def test_forecast_settings_predict_at_the_persons_own_speed_and_are_checked():
    goals = np.array([[20.0, 0.0], [0.0, 20.0]])
    kw = dict(n_particles=2000, dt=0.4, seed=4, obs_noise=0.03, rationality=1.0)
    fc = dict(rationality=0.1, velocity_model="heading", velocity_noise=0.05)
    own, slow = ie.GoalInference(goals, **kw), ie.GoalInference(goals, forecast=fc, **kw)
    for t in range(10):
        own.update([0.2 * t, 0.0])  # 0.5 m/s along +x
        slow.update([0.2 * t, 0.0])
    np.testing.assert_array_equal(own.goal_probabilities(), slow.goal_probabilities())
    m_own, _ = own.predict(10, seed=7)
    m_fc, _ = slow.predict(10, seed=7)
    assert 1.5 < m_fc[-1, 0] - 1.8 < 2.5  # 4 s at 0.5 m/s
    assert m_own[-1, 0] - 1.8 > m_fc[-1, 0] - 1.8 + 1.0  # the nominal 1.2 m/s
    tr = slow.sample_trajectories(10, 200, seed=3)
    assert 1.5 < tr[:, -1, 0].mean() - 1.8 < 2.5
    # Carried by pickling.
    again = pickle.loads(pickle.dumps(ie.GoalInference(goals, forecast=fc, **kw)))
    for t in range(10):
        again.update([0.2 * t, 0.0])
    np.testing.assert_array_equal(again.predict(10, seed=7)[0], m_fc)
    for bad, what in [({"bogus": 1.0}, "unknown key"), ({"rationality": "x"}, "number"),
                      ({"rationality": -1.0}, "rationality"), ({"velocity_model": "nope"}, "velocity_model"),
                      ({"dt": 0.0}, "dt"), ([0.1], "dict")]:
        with pytest.raises(ie.InvalidInputError, match=what):
            ie.GoalInference(goals, forecast=bad)


def test_degenerate_input_raises_value_errors_or_recovers():
    with pytest.raises(ie.InvalidInputError):
        ie.GoalInference(np.zeros((0, 2)))
    with pytest.raises(ValueError):
        ie.GoalInference(GOALS, n_particles=0)
    with pytest.raises(ValueError):
        ie.GoalInference(GOALS, obs_noise=-1.0)
    with pytest.raises(ValueError):
        ie.GoalInference(GOALS, resampling="bogus")
    with pytest.raises(ValueError):
        ie.GoalInference(GOALS, ess_threshold=1.5)
    gi = ie.GoalInference(GOALS, n_particles=500)
    gi.update([0.0, 0.0])
    with pytest.raises(ValueError):
        gi.update([np.nan, 0.0])
    with pytest.raises(ValueError):
        gi.update([1.0, 2.0, 3.0])
    assert gi.update([1e300, 1e300]) == "reinitialised"
    assert np.all(np.isfinite(gi.goal_probabilities()))
    gi.update([1e300, 1e300])
    assert np.all(np.isfinite(gi.goal_probabilities()))
    with pytest.raises(ValueError):
        gi.predict(0)


def kalman_loglik(A, Q, H, R, m0, P0, ys):
    m, P, ll = m0.copy(), P0.copy(), 0.0
    for y in ys:
        m, P = A @ m, A @ P @ A.T + Q
        S = H @ P @ H.T + R
        e = y - H @ m
        ll += -0.5 * (np.log(np.linalg.det(2 * np.pi * S)) + e @ np.linalg.solve(S, e))
        K = P @ H.T @ np.linalg.inv(S)
        m, P = m + K @ e, (np.eye(len(m)) - K @ H) @ P
    return ll, m


@pytest.mark.parametrize("guided", [False, True])
def test_particle_filter_matches_kalman(guided):
    dt = 0.5
    A = np.array([[1.0, dt], [0.0, 1.0]])
    Q = 0.3 * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    H = np.array([[1.0, 0.0]])
    R = np.array([[0.4]])
    m0, P0 = np.array([0.0, 1.0]), np.diag([1.0, 0.5])
    rng = np.random.default_rng(0)
    ys = np.cumsum(0.5 + 0.3 * rng.normal(size=25))[:, None]
    exact, m_exact = kalman_loglik(A, Q, H, R, m0, P0, ys)
    lz = []
    for seed in range(10):
        pf = ie.ParticleFilter.linear_gaussian(A, Q, H, R, m0, P0, n_particles=3000, seed=seed, guided=guided)
        for y in ys:
            pf.step(y)
        lz.append(pf.log_likelihood)
    se = np.std(lz, ddof=1) / np.sqrt(len(lz))
    assert abs(np.mean(lz) - exact) < 3 * max(se, 1e-3), (np.mean(lz), se, exact)
    np.testing.assert_allclose(pf.mean(), m_exact, atol=0.15)
    assert pf.particles().shape == (3000, 2) and abs(pf.weights().sum() - 1) < 1e-12
    assert pf.covariance().shape == (2, 2) and pf.n_particles == 3000


def test_goal_directed_particle_filter():
    pf = ie.ParticleFilter.goal_directed(GOALS, [0, 0, 0, 0], [0.05, 0.05, 1, 1], n_particles=1000)
    for z in walk(10)[1:]:
        pf.step(z)
    assert pf.particles().shape == (1000, 7)
    with pytest.raises(ValueError):
        ie.ParticleFilter.goal_directed(GOALS, [0, 0, 0], [1, 1, 1, 1])


@pytest.mark.parametrize("fn", [ie.systematic_resample, ie.stratified_resample, ie.residual_resample,
                                ie.multinomial_resample, ie.rejection_resample])
def test_resamplers_are_unbiased_and_validate(fn):
    w = np.array([0.1, 0.5, 0.05, 0.35])
    counts = np.zeros(4)
    for s in range(3000):
        idx = fn(w, s)
        assert idx.dtype == np.int64 and idx.shape == (4,)
        counts += np.bincount(idx, minlength=4)
    np.testing.assert_allclose(counts / 3000, 4 * w, atol=0.06)
    assert fn(w, 0, n=10).shape == (10,)
    for bad in ([], [0.0, 0.0], [1.0, np.nan], [-1.0, 2.0]):
        with pytest.raises(ValueError):
            fn(np.array(bad, dtype=float), 0)


def test_systematic_matches_numpy_reference():
    rng = np.random.default_rng(1)
    w = rng.random(20)
    w /= w.sum()
    idx = ie.systematic_resample(w, 5)
    # The NumPy idiom reproduces the draw for some single uniform u (found by a fine scan).
    cum = np.cumsum(w)
    for u in np.linspace(0, 1, 200001)[:-1]:
        ref = np.minimum(np.searchsorted(cum, (np.arange(20) + u) / 20, side="right"), 19)
        if np.array_equal(ref, idx):
            break
    else:
        pytest.fail("no uniform reproduces the systematic draw")


def test_gaussian_acquisitions():
    from math import erf, exp, log, pi, sqrt

    mu = np.array([-1.0, 0.0, 0.5, 3.0])
    sd = np.array([0.5, 1.0, 2.0, 0.1])
    best = 0.2
    z = (mu - best) / sd
    cdf = np.array([0.5 * (1 + erf(v / sqrt(2))) for v in z])
    pdf = np.array([exp(-v * v / 2) / sqrt(2 * pi) for v in z])
    ei = sd * (pdf + z * cdf)
    np.testing.assert_allclose(acq.expected_improvement(mu, sd, best), ei, rtol=1e-12)
    np.testing.assert_allclose(acq.log_expected_improvement(mu, sd, best), np.log(ei), rtol=1e-12)
    np.testing.assert_allclose(acq.probability_of_improvement(mu, sd, best), cdf, rtol=1e-12)
    np.testing.assert_allclose(acq.ucb(mu, sd, beta=4.0), mu + 2 * sd)
    assert acq.thompson_sample(mu, np.zeros(4)) == 3
    assert log(1.0) == 0.0
    with pytest.raises(ValueError):
        acq.ucb(mu, sd[:2])
    with pytest.raises(ValueError):
        acq.expected_improvement(mu, -sd, 0.0)


def test_log_ei_equals_the_reference_table():
    path = os.path.join(REPO, "data", "log_ei_reference.csv")
    z, ref = np.loadtxt(path, delimiter=",", comments="#", skiprows=2, unpack=True)
    z, ref = np.ascontiguousarray(z), np.ascontiguousarray(ref)
    got = acq.log_expected_improvement(z, np.ones_like(z), 0.0)
    assert np.all(np.abs(got - ref) <= 1e-10 * np.maximum(np.abs(ref), 1.0))


def test_particle_acquisitions_and_action_selection():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(500, 8))
    w = rng.random(500)
    wn = w / w.sum()
    m = wn @ u
    sd = np.sqrt(np.maximum(wn @ (u * u) - m * m, 0))
    np.testing.assert_allclose(acq.particle_ucb(u, w, 2.0), m + np.sqrt(2) * sd, rtol=1e-10)
    np.testing.assert_allclose(acq.particle_expected_improvement(u, w, 0.3), wn @ np.maximum(u - 0.3, 0), rtol=1e-10)
    np.testing.assert_allclose(acq.particle_probability_of_improvement(u, w, 0.3), wn @ (u > 0.3), rtol=1e-10)
    a = acq.particle_thompson_sample(u, w, 3)
    assert 0 <= a < 8
    best, eu = acq.select_action(u, w)
    np.testing.assert_allclose(eu, m, rtol=1e-10)
    assert best == int(np.argmax(m))
    with pytest.raises(ValueError):
        acq.particle_ucb(u, w[:10])
    with pytest.raises(ValueError):
        acq.select_action(u, np.zeros(500))


def test_eth_ucy_goal_inference_runs_if_data_present():
    data = os.path.join(REPO, "..", "shared", "data", "eth_ucy", "eth_hotel.csv")
    if not os.path.exists(data):
        pytest.skip("ETH/UCY data not present")
    a = np.loadtxt(data, delimiter=",", skiprows=1)
    ped = a[a[:, 1] == a[0, 1]]
    gi = ie.GoalInference(np.array([ped[-1, 2:4], [0.0, 0.0], [5.0, 5.0]]), n_particles=500, dt=0.4, obs_noise=0.1)
    for z in ped[:, 2:4]:
        gi.update(z)
    assert np.all(np.isfinite(gi.goal_probabilities()))


def test_readme_belief_quick_start_runs():
    import pathlib
    import re

    text = (pathlib.Path(REPO) / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Belief core.*?```python\n(.*?)```", text, re.S).group(1)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["p"][0] > 0.9 and ns["scen"].shape == (50, 10, 2)
    assert np.isfinite(ns["lei"]).all() and ns["lei"][1] < -400


def test_gp_motion_filter_tracks_the_learned_flow():
    from intent_engine.kernels import RBF

    X = np.array([[float(i % 10), float(i // 10) - 1.5] for i in range(40)])
    Y = np.tile([1.0, 0.0], (40, 1))
    gp = ie.GaussianProcess(RBF(2.0), noise_variance=1e-2).fit(X, Y)
    pf = ie.ParticleFilter.gp_motion(gp, [0.0, 0.0], dt=0.2, obs_noise=0.1, n_particles=500)
    for t in range(1, 21):
        pf.step([0.2 * t, 0.0])
    m = pf.mean()
    assert abs(m[0] - 4.0) < 0.2 and abs(m[1]) < 0.2
    with pytest.raises(ValueError):
        ie.ParticleFilter.gp_motion(ie.GaussianProcess(RBF(1.0)).fit(X, Y[:, 0]), [0.0, 0.0])


def test_eth_ucy_evaluation_script_runs_with_prior_guided_and_forecast(capsys):
    # The evaluation behind the README's ETH/UCY table, on one scene with few particles.
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..", "..")
    data = os.path.join(root, "..", "shared", "data", "eth_ucy")
    if not os.path.isfile(os.path.join(data, "ucy_zara01.csv")):
        pytest.skip("no ETH/UCY data beside the project")
    spec = importlib.util.spec_from_file_location("eval_eth_ucy", os.path.join(root, "benches", "python", "eval_eth_ucy.py"))
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    args = ["--data", data, "--scenes", "ucy_zara01", "--particles", "100", "--prior", "--proposal", "guided", "--forecast"]
    assert ev.main(args) == 0
    out = capsys.readouterr().out
    mean = [line for line in out.splitlines() if line.startswith("mean")][0]
    acc = re.search(r"goal acc 25/50/75%: ([\d.]+) ([\d.]+) ([\d.]+)", mean)
    pred = re.search(r"ours ([\d.]+)/([\d.]+)\s+CV ([\d.]+)/([\d.]+)", mean)
    assert acc and pred, mean
    assert float(acc.group(1)) > 0.6 and float(acc.group(3)) > 0.8, mean
    assert float(pred.group(1)) < 1.2 * float(pred.group(3)), mean
