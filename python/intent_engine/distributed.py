"""Scale-out of offline evaluation: one machine (processes) or a Ray cluster, same signature.

Every helper takes ``backend=``:

- ``"serial"``: in this process, one task after the other (debugging, tiny jobs); the
  arguments still go through a pickle round trip, so the caller's objects stay untouched;
- ``"local"``: a pool of worker processes on this machine (``concurrent.futures`` with the
  ``spawn`` start method: no fork of a process that already runs Rust threads);
  ``workers`` sets the pool size (default: every core);
- ``"ray"``: Ray tasks (``pip install ray``). Uses the running Ray session, or starts/joins one
  with ``ray.init(address=ray_address)`` (``"auto"`` joins an existing cluster; ``None`` starts
  a local one). Each task asks for one CPU.

Results come back in the order of the inputs, and each task's result depends only on its own
arguments (every task carries its own seed), so the three backends return identical results for
the same inputs: run a job locally, then on the cluster, and compare.

Helpers:

- :func:`map_tasks` - any picklable function (module-level) over a list of argument items;
- :func:`replay_sessions` - recorded ETH/UCY scenes replayed through the engine (one task per
  scene, or per chunk of a scene's pedestrians via ``max_tracks``);
- :func:`run_scenarios` - the closed-loop scenario simulation for many seeds / variants;
- :func:`sweep` - a parameter grid (dict of lists) over a task function, e.g. the replay;
- :func:`fit_people` - per-person GP hyperparameters on recorded trajectories (the fitted
  ``GaussianProcess`` models come back pickled);
- :func:`drive_engines` - engines (pickled at their initial state) each driven by a recorded
  input sequence, returning their decisions.

Models travel by pickle: ``GaussianProcess``, ``SparseGaussianProcess`` and kernels carry their
full state; ``GoalInference`` carries its goals and settings and pickles only before its first
update; ``LinearMPC`` does not pickle (build it inside the task). ``IntentEngine`` carries its
configuration (goals, robot model, costs, human model and seed, safety policy, budgets) and robot
goal, and pickles only before its first step (a running engine's particles, random stream and
warm start are not carried: pickling one raises ``InvalidInputError``). An unpickled engine gives
the same decisions as the original for the same inputs, provided no stage overruns its time
budget (an overrun depends on the machine; use long budgets, as the replay's ``relaxed_budgets``
does, where results must be reproducible).

Example (the ETH/UCY data of the repository's ``../shared/data/eth_ucy``)::

    from intent_engine import distributed as dist
    files = dist.scene_files("../shared/data/eth_ucy")
    local = dist.replay_sessions(files, max_tracks=20, backend="local")
    import ray; ray.init(address="auto")            # a running cluster
    remote = dist.replay_sessions(files, max_tracks=20, backend="ray")
    assert dist.strip_timing(local) == dist.strip_timing(remote)
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

BACKENDS = ("serial", "local", "ray")


def _star(fn: Callable[..., Any], item: Any) -> Any:
    if isinstance(item, Mapping):
        return fn(**item)
    if isinstance(item, tuple):
        return fn(*item)
    return fn(item)


def map_tasks(fn: Callable[..., Any], items: Iterable[Any], *, backend: str = "local",
              workers: Optional[int] = None, ray_address: Optional[str] = None) -> list[Any]:
    """``[fn(item) for item in items]`` on the chosen backend, in input order. An item that is a
    dict is passed as keyword arguments, a tuple as positional arguments, anything else as the
    single argument. ``fn`` must be importable by the workers (a module-level function).

    Raises ``ValueError`` for an unknown backend, ``ImportError`` when ``backend="ray"`` and
    Ray is not installed; a task's exception is re-raised here."""
    items = list(items)
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    if not items:
        return []
    if backend == "serial":
        # Through pickle like the other backends: the caller's objects are left untouched and
        # anything that would not travel fails here too.
        return [_star(*pickle.loads(pickle.dumps((fn, it)))) for it in items]
    if backend == "local":
        n = min(workers or os.cpu_count() or 1, len(items))
        with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
            return list(pool.map(_star, itertools.repeat(fn), items))
    import ray  # noqa: PLC0415 - optional dependency

    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1)(_star)
    fn_ref = ray.put(fn)
    return list(ray.get([task.remote(fn_ref, it) for it in items]))


# ---- replays of recorded sessions -------------------------------------------------------------

def scene_files(data_dir: str) -> list[str]:
    """The ``*.csv`` scene files of an ETH/UCY directory, in name order (``ValueError`` when
    there is none)."""
    files = sorted(os.path.join(data_dir, f) for f in os.listdir(data_dir) if f.endswith(".csv"))
    if not files:
        raise ValueError(f"data_dir: no .csv scene in {data_dir}")
    return files


def replay_one(path: str, **settings: Any) -> dict[str, Any]:
    """One scene through ``intent_engine._core.replay_scene`` (the task of
    :func:`replay_sessions`)."""
    from intent_engine import _core

    return _core.replay_scene(path, **settings)


def replay_sessions(paths: Sequence[str], *, backend: str = "local", workers: Optional[int] = None,
                    ray_address: Optional[str] = None, **settings: Any) -> list[dict[str, Any]]:
    """Replays recorded scenes (one task each) with the same replay settings (keyword arguments
    of ``replay_scene``: ``max_tracks``, ``n_particles``, ``seed``, ``rationality``, ...).
    Budgets are relaxed by default, so results do not depend on the machine's load."""
    return map_tasks(replay_one, [dict(path=p, **settings) for p in paths], backend=backend, workers=workers,
                     ray_address=ray_address)


# ---- scenario simulations and sweeps ----------------------------------------------------------

def scenario_one(seed: int = 0, scenario_json: Optional[str] = None, **engine: Any) -> dict[str, Any]:
    """The closed-loop simulation of a scenario (default: the embedded one) with the person's
    seed replaced by ``seed`` and any ``engine`` settings of the scenario JSON overridden
    (e.g. ``n_particles=500, risk=0.1``); budgets relaxed, so the result is reproducible.
    Returns the run's summary dict (latency figures included; see :func:`strip_timing`)."""
    import intent_engine as ie

    scn = json.loads(scenario_json or ie.default_scenario_json())
    scn["human"]["seed"] = int(seed)
    for k, v in engine.items():
        if k not in scn["engine"]:
            raise ValueError(f"{k}: not an engine setting of the scenario (one of {sorted(scn['engine'])})")
        scn["engine"][k] = v
    out = ie.run_scenario(json.dumps(scn), relaxed_budgets=True)["summary"]
    out["seed"] = int(seed)
    out.update({f"engine.{k}": v for k, v in engine.items()})
    return out


def run_scenarios(seeds: Sequence[int], *, backend: str = "local", workers: Optional[int] = None,
                  ray_address: Optional[str] = None, scenario_json: Optional[str] = None,
                  **engine: Any) -> list[dict[str, Any]]:
    """:func:`scenario_one` for each seed."""
    items = [dict(seed=s, scenario_json=scenario_json, **engine) for s in seeds]
    return map_tasks(scenario_one, items, backend=backend, workers=workers, ray_address=ray_address)


def grid(params: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a dict of value lists, e.g. ``{"a": [1, 2], "b": [3]}`` →
    ``[{"a": 1, "b": 3}, {"a": 2, "b": 3}]``."""
    keys = list(params)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(params[k] for k in keys))]


def sweep(fn: Callable[..., Any], params: Mapping[str, Sequence[Any]], *, fixed: Optional[Mapping[str, Any]] = None,
          backend: str = "local", workers: Optional[int] = None,
          ray_address: Optional[str] = None) -> list[tuple[dict[str, Any], Any]]:
    """Runs ``fn(**fixed, **point)`` for every point of the grid ``params``; returns
    ``[(point, result), ...]`` in grid order. E.g. a replay sweep::

        sweep(replay_one, {"rationality": [0.5, 1.0], "obs_noise": [0.05, 0.1]},
              fixed={"path": "eth_hotel.csv", "max_tracks": 10}, backend="ray")
    """
    points = grid(params)
    items = [dict(fixed or {}, **p) for p in points]
    return list(zip(points, map_tasks(fn, items, backend=backend, workers=workers, ray_address=ray_address)))


# ---- per-person hyperparameter fitting --------------------------------------------------------

def load_people(path: str, *, min_frames: int = 12, max_people: Optional[int] = None) -> list[tuple[int, np.ndarray]]:
    """The pedestrians of an ETH/UCY scene file (``frame,id,x,y``) with at least
    ``min_frames`` frames: ``[(id, array (n, 3) of [t (s), x, y])]`` in id order (0.4 s frames;
    the first frame of each person at t = 0)."""
    a = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    if a.shape[1] != 4:
        raise ValueError(f"{path}: expected 4 columns frame,id,x,y, got {a.shape[1]}")
    out = []
    for pid in np.unique(a[:, 1]).astype(int):
        rows = a[a[:, 1] == pid]
        rows = rows[np.argsort(rows[:, 0])]
        if len(rows) < min_frames:
            continue
        frames = rows[:, 0]
        step = np.median(np.diff(frames)) if len(frames) > 1 else 1.0
        t = (frames - frames[0]) / step * 0.4
        out.append((int(pid), np.column_stack([t, rows[:, 2], rows[:, 3]])))
        if max_people is not None and len(out) >= max_people:
            break
    return out


def fit_person(track: np.ndarray, seed: int = 0, n_restarts: int = 1) -> dict[str, Any]:
    """Fits an exact GP (RBF, noise fitted) to one person's x(t) and y(t) (centred) by
    marginal-likelihood optimisation; returns the log marginal likelihood per axis, the fitted
    length scales / variances / noise and the two fitted ``GaussianProcess`` models."""
    import intent_engine as ie
    from intent_engine.kernels import RBF

    t = np.ascontiguousarray(track[:, :1], dtype=float)
    out: dict[str, Any] = dict(frames=len(track))
    for j, axis in ((1, "x"), (2, "y")):
        y = np.ascontiguousarray(track[:, j] - track[:, j].mean())
        gp = ie.GaussianProcess(RBF(2.0, variance=max(float(y.var()), 1e-3)), noise_variance=1e-2).fit(t, y)
        lml = gp.optimize(n_restarts=n_restarts, seed=seed)
        out[f"lml_{axis}"] = float(lml)
        out[f"model_{axis}"] = gp
        out[f"kernel_{axis}"] = gp.kernel.to_json()
        out[f"noise_{axis}"] = float(gp.noise_variance)
    return out


def fit_people(path: str, *, max_people: Optional[int] = None, seed: int = 0, n_restarts: int = 1,
               backend: str = "local", workers: Optional[int] = None,
               ray_address: Optional[str] = None) -> list[dict[str, Any]]:
    """:func:`fit_person` for every pedestrian of a scene (one task each; seed ``seed + id``)."""
    people = load_people(path, max_people=max_people)
    items = [dict(track=tr, seed=seed + pid, n_restarts=n_restarts) for pid, tr in people]
    res = map_tasks(fit_person, items, backend=backend, workers=workers, ray_address=ray_address)
    for (pid, _), r in zip(people, res):
        r["id"] = pid
    return res


# ---- engines driven by recorded inputs --------------------------------------------------------

def drive_engine(engine: Any, observations: np.ndarray, robot_states: np.ndarray, times: np.ndarray) -> dict[str, Any]:
    """Steps ``engine`` through a recorded session: ``observations`` (T, 2) with NaN rows for
    missing ones, ``robot_states`` (T, nx), ``times`` (T,). Returns the commands (T, nu), goal
    probabilities (T, K) and fallback codes (None when fresh)."""
    obs = np.asarray(observations, float)
    xs = np.asarray(robot_states, float)
    ts = np.asarray(times, float)
    if not (len(obs) == len(xs) == len(ts)):
        raise ValueError(f"observations, robot_states, times: lengths differ ({len(obs)}, {len(xs)}, {len(ts)})")
    cmds, probs, falls = [], [], []
    for z, x, t in zip(obs, xs, ts):
        d = engine.step(None if np.isnan(z).any() else z, x, float(t))
        cmds.append(d.command)
        probs.append(d.goal_probabilities)
        falls.append(d.fallback)
    return dict(commands=np.array(cmds), goal_probabilities=np.array(probs), fallbacks=falls)


def drive_engines(engines: Sequence[Any], sessions: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], *,
                  backend: str = "local", workers: Optional[int] = None,
                  ray_address: Optional[str] = None) -> list[dict[str, Any]]:
    """:func:`drive_engine` for each (engine, session) pair: engines travel pickled, so they
    must not have stepped yet."""
    if len(engines) != len(sessions):
        raise ValueError(f"engines, sessions: lengths differ ({len(engines)}, {len(sessions)})")
    items = [(e, *s) for e, s in zip(engines, sessions)]
    return map_tasks(drive_engine, items, backend=backend, workers=workers, ray_address=ray_address)


def strip_timing(results: Any) -> Any:
    """The results without the fields that measure time (``latency_us`` and the like), for
    comparing runs on different machines or backends."""
    if isinstance(results, dict):
        return {k: strip_timing(v) for k, v in results.items()
                if not (k.startswith("latency") or k in ("decisions_per_second", "wall_s"))}
    if isinstance(results, (list, tuple)):
        return type(results)(strip_timing(v) for v in results)
    return results
