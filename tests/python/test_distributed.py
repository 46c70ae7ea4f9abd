"""Scale-out: engines pickle (at their initial state) and give identical decisions after the
round trip; the distributed helpers give the same results serially, on local processes and on
a local Ray cluster (started here; skipped when ray is not installed)."""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest

import intent_engine as ie
from intent_engine import distributed as dist

ETH_UCY = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "eth_ucy"
HAVE_DATA = ETH_UCY.is_dir()
GOALS = [[5.0, 3.2], [5.2, 0.8], [0.4, 3.6]]
LONG = dict(belief_budget=1.0, prediction_budget=1.0, solve_budget=1.0, step_budget=1.0)


def session(steps=150, seed=0):
    rng = np.random.default_rng(seed)
    t = 0.01 * np.arange(1, steps + 1)
    obs = np.column_stack([0.6 + 1.1 * t, 0.5 + 0.2 * t]) + 0.02 * rng.standard_normal((steps, 2))
    obs[40:55] = np.nan  # a tracker dropout
    xs = np.tile([4.0, 3.0, 0.0, 0.0], (steps, 1))
    return obs, xs, t


def engine(seed=3, **kw):
    return ie.IntentEngine(GOALS, workspace=(0, 6, 0, 4), robot_goal=(1.6, 1.2), seed=seed, **LONG, **kw)


def assert_same(a, b):
    np.testing.assert_array_equal(a["commands"], b["commands"])
    np.testing.assert_array_equal(a["goal_probabilities"], b["goal_probabilities"])
    assert a["fallbacks"] == b["fallbacks"]


@pytest.mark.parametrize("kw", [{}, dict(robot="unicycle"), dict(keepout="scenario", n_particles=300, gp_residual=True)])
def test_engine_pickle_round_trip_gives_identical_decisions(kw):
    e = engine(**kw)
    back = pickle.loads(pickle.dumps(e))
    assert back.robot_goal == e.robot_goal and back.n_goals == e.n_goals
    obs, xs, t = session()
    if kw.get("robot") == "unicycle":
        xs = xs[:, :3]
    assert_same(dist.drive_engine(e, obs, xs, t), dist.drive_engine(back, obs, xs, t))


def test_running_or_edited_engine_does_not_pickle():
    e = engine()
    e.step([1.0, 1.0], [4.0, 3.0, 0.0, 0.0], 0.01)
    with pytest.raises(ie.InvalidInputError, match="not stepped"):
        pickle.dumps(e)
    e = engine()
    e.add_goal([3.0, 3.0])
    with pytest.raises(ie.InvalidInputError, match="not stepped"):
        pickle.dumps(e)


def test_goal_inference_pickles_before_its_first_update():
    gi = ie.GoalInference(GOALS, n_particles=500, dt=0.1, seed=5, speed=1.1, obs_noise=0.04, resampling="residual",
                          switch_prob=0.01, velocity_model="heading", slow_radius=0.7)
    gi.predict(5)  # a seedless prediction advances the default prediction seed; carried
    back = pickle.loads(pickle.dumps(gi))
    assert back.n_goals == 3
    obs, _, _ = session(60)
    for z in obs[:40]:
        assert gi.update(z) == back.update(z)
        np.testing.assert_array_equal(gi.goal_probabilities(), back.goal_probabilities())
    for a, b in zip(gi.predict(8), back.predict(8)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ie.InvalidInputError, match="not been updated"):
        pickle.dumps(gi)
    edited = ie.GoalInference(GOALS)
    edited.add_goal([1.0, 1.0])
    with pytest.raises(ie.InvalidInputError, match="not been updated"):
        pickle.dumps(edited)


def test_local_processes_match_serial():
    sessions = [session(seed=s) for s in (0, 1)]
    engines = [engine(seed=1), engine(seed=2)]
    serial = dist.drive_engines(engines, sessions, backend="serial")
    local = dist.drive_engines(engines, sessions, backend="local", workers=2)
    for a, b in zip(serial, local):
        assert_same(a, b)
    # different seeds, different particle clouds
    assert not np.array_equal(serial[0]["goal_probabilities"], serial[1]["goal_probabilities"])
    pts = dist.sweep(dist.scenario_one, {"seed": [1, 2]}, fixed={"n_particles": 200}, backend="local", workers=2)
    assert [p for p, _ in pts] == [{"seed": 1}, {"seed": 2}]
    ser = dist.run_scenarios([1, 2], n_particles=200, backend="serial")
    assert dist.strip_timing([r for _, r in pts]) == dist.strip_timing(ser)
    assert all(r["steps"] == 1200 and r["engine.n_particles"] == 200 for r in ser)


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        dist.map_tasks(abs, [1], backend="mpi")
    with pytest.raises(ValueError, match="workers"):
        dist.map_tasks(abs, [1], workers=0)
    with pytest.raises(ValueError, match="not an engine setting"):
        dist.scenario_one(1, n_particle=10)
    assert dist.map_tasks(abs, [], backend="serial") == []
    assert dist.grid({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install ray)")
def test_ray_cluster_matches_local():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sessions = [session(seed=s) for s in (0, 1)]
        engines = [engine(seed=1), engine(seed=2)]
        on_ray = dist.drive_engines(engines, sessions, backend="ray")
        for a, b in zip(on_ray, dist.drive_engines(engines, sessions, backend="serial")):
            assert_same(a, b)
        if HAVE_DATA:
            files = dist.scene_files(str(ETH_UCY))[:2]
            kw = dict(max_tracks=2, n_particles=200)
            remote = dist.replay_sessions(files, backend="ray", **kw)
            local = dist.replay_sessions(files, backend="local", workers=2, **kw)
            assert dist.strip_timing(remote) == dist.strip_timing(local)
            assert [r["scene"] for r in remote] == [Path(f).stem for f in files]
            assert all(r["tracks"] == 2 and r["steps"] > 0 and r["unexplained"] == 0 for r in remote)
            fr = dist.fit_people(files[0], max_people=2, n_restarts=0, backend="ray")
            fs = dist.fit_people(files[0], max_people=2, n_restarts=0, backend="serial")
            assert [r["id"] for r in fr] == [r["id"] for r in fs]
            for a, b in zip(fr, fs):
                assert a["lml_x"] == b["lml_x"] and a["kernel_y"] == b["kernel_y"]
                assert a["model_x"].to_json() == b["model_x"].to_json()
    finally:
        ray.shutdown()
