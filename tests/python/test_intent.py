"""The intent pipeline from Python: decisions, fallbacks that never raise, and the demo run."""

import math

import numpy as np
import pytest

import intent_engine as ie

GOALS = [[5.0, 3.2], [5.2, 0.8], [0.4, 3.6]]
WS = (0.0, 6.0, 0.0, 4.0)


# Budgets a loaded CI machine meets (overruns have their own test).
RELAXED = dict(belief_budget=1.0, prediction_budget=1.0, solve_budget=1.0, step_budget=2.0)


def engine(**kw):
    return ie.IntentEngine(GOALS, workspace=WS, n_particles=500, robot_goal=[1.0, 1.0], **RELAXED, **kw)


def test_decision_fields_and_goal_inference():
    e = engine()
    x = np.array([3.0, 3.0, 0.0, 0.0])
    d = None
    for i in range(1, 80):
        d = e.step([0.6 + 0.012 * i, 0.5 + 0.0005 * i], x, 0.01 * i)
    assert d.human == "tracked" and d.solver_status in ("solved", "solved-inaccurate", "unsolved")
    p = d.goal_probabilities
    assert p.shape == (3,) and abs(p.sum() - 1) < 1e-9 and int(np.argmax(p)) == 1
    assert d.predicted_mean.shape == (20, 2) and d.predicted_cov.shape == (20, 2, 2)
    assert d.goal_means.shape == (3, 20, 2) and d.samples.shape == (16, 20, 2)
    assert d.robot_plan.shape == (21, 2) and d.command.shape == (2,)
    assert np.all(np.linalg.eigvalsh(d.predicted_cov) >= -1e-12)
    assert set(d.timings) == {"belief", "prediction", "constraints", "solve", "safety", "total"}
    assert d.fresh == (d.fallback is None) == (d.reason is None)
    c = e.counters()
    assert c["steps"] == 79 and c["observations"] == 79
    assert "Decision(" in repr(d)


def test_bad_input_never_raises_and_says_why():
    e = engine()
    x = [3.0, 3.0, 0.5, 0.0]
    assert e.step([0.6, 0.5], x, 0.01).fresh
    cases = [
        (([math.nan, 0.5], x, 0.02), "invalid-observation"),
        (("abc", x, 0.03), "invalid-observation"),
        ((None, [1.0, 2.0], 0.04), "invalid-robot-state"),
        ((None, "robot", 0.05), "invalid-robot-state"),
        ((None, [1.0, math.inf, 0, 0], 0.06), "invalid-robot-state"),
        ((None, x, 0.0), "invalid-time"),
        ((None, x, "soon"), "invalid-time"),
    ]
    for args, code in cases:
        d = e.step(*args)
        assert not d.fresh and d.fallback == code, (args, d.fallback)
        assert d.reason and np.all(np.isfinite(d.command))
        assert np.all(np.abs(d.command) <= 1.5)
    d = e.step([0.62, 0.5], x, 0.07)
    assert d.fresh, d.reason


def test_dropout_lost_and_constructor_errors():
    e = engine(lost_after=0.2)
    x = [3.0, 3.0, 0.0, 0.0]
    for i in range(1, 11):
        e.step([0.6 + 0.012 * i, 0.5], x, 0.01 * i)
    assert e.step(None, x, 0.11).human == "predicted"
    for i in range(12, 40):
        d = e.step(None, x, 0.01 * i)
    assert d.human == "lost" and np.all(np.isnan(d.predicted_mean))
    assert e.step([1.0, 1.0], x, 0.5).human == "tracked"
    with pytest.raises(ie.InvalidInputError, match="goals"):
        ie.IntentEngine([[1.0]], workspace=WS)
    with pytest.raises(ie.InvalidInputError, match="keepout"):
        ie.IntentEngine(GOALS, workspace=WS, keepout="maybe")
    with pytest.raises(ie.InvalidInputError, match="robot"):
        ie.IntentEngine(GOALS, workspace=WS, robot="tank")
    with pytest.raises(ie.InvalidInputError, match="solve_budget"):
        ie.IntentEngine(GOALS, workspace=WS, solve_budget=0.0)
    tight = ie.IntentEngine(GOALS, workspace=WS, belief_budget=1e-9)
    d = tight.step([0.6, 0.5], [3.0, 3.0, 0.5, 0.0], 0.01)
    assert d.fallback == "overrun" and "belief" in d.reason and d.command[0] < 0
    with pytest.raises(ValueError, match="workspace"):
        ie.IntentEngine(GOALS, workspace=(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="robot_goal"):
        e.set_robot_goal([9.0, 9.0])


def test_run_time_goals_arm_robot_and_default():
    e = engine()
    e.add_goal([2.0, 3.9])
    assert e.n_goals == 4
    d = e.step([2.0, 0.5], [3.0, 3.0, 0.0, 0.0], 0.01)
    assert d.goal_probabilities.shape == (4,)
    e.remove_goal(0)
    assert e.n_goals == 3
    with pytest.raises(ie.InvalidInputError):
        e.remove_goal(-1)
    arm = ie.IntentEngine(GOALS, workspace=WS, robot="arm_point", arm_base=[3.0, 2.0], arm_reach=0.8,
                          max_speed=0.5, robot_goal=[3.5, 2.0], n_particles=200, **RELAXED)
    d = arm.step([0.5, 0.5], [3.0, 2.0], 0.01)
    assert d.command.shape == (2,) and d.robot_plan.shape == (21, 2)
    uni = ie.IntentEngine(GOALS, workspace=WS, robot="unicycle", max_speed=0.8, max_turn_rate=2.0,
                          lookahead=0.2, robot_goal=[1.0, 1.0], n_particles=200, **RELAXED)
    d = uni.step([5.5, 0.3], [4.0, 3.0, 0.0], 0.01)
    assert d.fresh and d.command.shape == (2,) and abs(d.command[1]) <= 2.0
    assert uni.step(None, [4.0, 3.0, 0.0, 0.0], 0.02).fallback == "invalid-robot-state"
    dflt = ie.IntentEngine.default()
    assert dflt.n_goals == 3 and dflt.robot_goal == (1.6, 1.2)


def test_scenario_run_is_safe():
    res = ie.run_scenario(relaxed_budgets=True)
    s = res["summary"]
    assert s["steps"] == 1200 and s["separation_violations"] == 0
    assert s["goal_accuracy"] > 0.8
    assert set(s["latency_us"]) == {"belief", "prediction", "constraints", "solve", "safety", "total"}
    assert res["svg"].startswith("<svg") and res["csv"].count("\n") == 1201
    assert res["goal_names"] == ["door", "shelf", "workbench"]
    calls = []
    real = ie.run_scenario(None, lambda done, total: calls.append((done, total)))
    assert all(k in ("overrun", "solver-failed") for k in real["summary"]["fallbacks"])
    assert calls[-1] == (1200, 1200)
    with pytest.raises(ie.InvalidInputError, match="scenario"):
        ie.run_scenario("{}")
    with pytest.raises(ZeroDivisionError):
        ie.run_scenario(None, lambda done, total: 1 / 0)


def test_goal_prior_and_forecast_model_reach_the_pipeline():
    import pickle

    x = np.array([3.0, 3.0, 0.0, 0.0])
    e = engine(goal_prior=[1.0, 8.0, 1.0])
    d = e.step(None, x, 0.01)  # nobody seen yet: the prior
    np.testing.assert_allclose(d.goal_probabilities, [0.1, 0.8, 0.1], atol=1e-12)
    # A person walking slowly (0.3 m/s, along +x toward the workbench/shelf side): the
    # forecast model predicts at their own speed, the belief's model at the nominal 1.2 m/s.
    fc = dict(rationality=0.1, velocity_model="heading", velocity_noise=0.05)
    slow, nominal = engine(forecast=fc), engine()
    again = pickle.loads(pickle.dumps(engine(forecast=fc)))
    for i in range(1, 80):
        z = [0.6 + 0.003 * i, 2.0]
        ds, dn, da = (en.step(z, x, 0.01 * i) for en in (slow, nominal, again))
    np.testing.assert_array_equal(ds.goal_probabilities, dn.goal_probabilities)
    np.testing.assert_array_equal(ds.predicted_mean, da.predicted_mean)
    last = 0.6 + 0.003 * 79
    ahead_slow = ds.predicted_mean[-1, 0] - last
    ahead_nominal = np.hypot(*(dn.predicted_mean[-1] - [last, 2.0]))
    assert 0.2 < ahead_slow < 1.2, ahead_slow  # ~0.3 m/s over 2 s
    assert ahead_nominal > ahead_slow + 0.3, (ahead_nominal, ahead_slow)
    # Goal edits keep the configured prior in step with the belief's.
    e.add_goal([2.0, 3.9])
    d = e.step(None, x, 0.02)
    np.testing.assert_allclose(d.goal_probabilities, [0.075, 0.6, 0.075, 0.25], atol=1e-12)
    with pytest.raises(ie.InvalidInputError, match="goal_prior"):
        engine(goal_prior=[1.0, 2.0])
    with pytest.raises(ie.InvalidInputError, match="goal_prior"):
        engine(goal_prior=[1.0, np.nan, 1.0])
    with pytest.raises(ie.InvalidInputError, match="forecast"):
        engine(forecast={"dt": 0.1})
    with pytest.raises(ie.InvalidInputError, match="forecast"):
        engine(forecast={"rationality": -1.0})
