#!/usr/bin/env python3
"""Belief-core benchmark: intent_engine against its anchors in the same process, single thread.

    python benches/python/bench_belief.py [--steps 50] [--repeat 7] [--json out.json]

Cases
- goal-inference step (K = 3 goals, Rao-Blackwellised goal, systematic resampling at ESS < N/2)
  at N = 10,000 and 100,000: ours (``GoalInference.update``) against a vectorised NumPy filter
  of the same model written below, and against Chopin's ``particles`` (bootstrap filter with
  the goal sampled as a state component, the way ``particles`` expresses it) if installed;
- systematic resampling of 10,000 weights: ours against the NumPy idiom
  (``searchsorted(cumsum(w), (arange(N) + u) / N)``, as in filterpy);
- acquisition over 10,000 particles x 64 actions: ours (UCB, EI, Thompson) against NumPy.

Prints medians and ratios (anchor / ours; > 1 means we are faster). Times are CPU time of
this process (``time.process_time``; everything here runs on one thread), so that other jobs on
a shared machine do not skew the ratios; ``--wall`` uses ``time.perf_counter`` instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import intent_engine as ie  # noqa: E402
from intent_engine import acquisition as acq  # noqa: E402

from intent_engine._anchors import (  # noqa: E402  (shared with `python -m intent_engine bench`)
    ALPHA,
    DT,
    GOALS,
    SIGV,
    SIGZ,
    SLOW,
    SPEED,
    NumpyGoalFilter,
    observations,
)

CLOCK = time.process_time


def particles_filter(n, zs):
    """Chopin's `particles`: bootstrap filter, goal as a sampled (static) state component."""
    try:
        import particles
        from particles import distributions as dists
        from particles import state_space_models as ssm
    except ImportError:
        return None

    class Init(dists.ProbDist):
        dim = 5

        def rvs(self, size=None):
            out = np.empty((size, 5))
            out[:, 0:2] = zs[0] + SIGZ * np.random.normal(size=(size, 2))
            out[:, 2:4] = SPEED * np.random.normal(size=(size, 2))
            out[:, 4] = np.random.randint(0, len(GOALS), size=size)
            return out

    class Dyn(dists.ProbDist):
        dim = 5

        def __init__(self, xp):
            self.xp = xp

        def rvs(self, size=None):
            xp = self.xp
            g = xp[:, 4].astype(int)
            dx, dy = GOALS[g, 0] - xp[:, 0], GOALS[g, 1] - xp[:, 1]
            d = np.sqrt(dx * dx + dy * dy)
            sc = SPEED * np.minimum(d / SLOW, 1.0) / np.maximum(d, 1e-9)
            a, sd = ALPHA * DT, SIGV * np.sqrt(DT)
            out = xp.copy()
            out[:, 2] = xp[:, 2] + a * (sc * dx - xp[:, 2]) + sd * np.random.normal(size=len(xp))
            out[:, 3] = xp[:, 3] + a * (sc * dy - xp[:, 3]) + sd * np.random.normal(size=len(xp))
            out[:, 0] += DT * out[:, 2]
            out[:, 1] += DT * out[:, 3]
            return out

    class Obs(dists.ProbDist):
        dim = 2

        def __init__(self, x):
            self.x = x

        def logpdf(self, y):
            r2 = (y[0] - self.x[:, 0]) ** 2 + (y[1] - self.x[:, 1]) ** 2
            return -r2 / (2 * SIGZ**2) - np.log(2 * np.pi * SIGZ**2)

    class GoalSSM(ssm.StateSpaceModel):
        def PX0(self):
            return Init()

        def PX(self, t, xp):
            return Dyn(xp)

        def PY(self, t, xp, x):
            return Obs(x)

    data = [z for z in zs[1:]]
    fk = ssm.Bootstrap(ssm=GoalSSM(), data=data)
    alg = particles.SMC(fk=fk, N=n, resampling="systematic", ESSrmin=0.5, store_history=False, collect=None, verbose=False)
    t0 = CLOCK()
    alg.run()
    return (CLOCK() - t0) / len(data)


def median_time(fn, repeat):
    samples = []
    for i in range(repeat + 2):
        t0 = CLOCK()
        fn()
        if i >= 2:
            samples.append(CLOCK() - t0)
    return statistics.median(samples)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--json")
    p.add_argument("--wall", action="store_true", help="wall-clock time instead of CPU time")
    args = p.parse_args(argv)
    global CLOCK
    if args.wall:
        CLOCK = time.perf_counter
    zs = observations(args.steps + 1)
    rows = []

    def case(name, ours, anchor_name, anchor, unit="us"):
        scale = 1e6 if unit == "us" else 1e3
        ratio = anchor / ours if anchor else float("nan")
        rows.append(dict(case=name, ours_s=ours, anchor=anchor_name, anchor_s=anchor, ratio=ratio))
        a = f"{anchor * scale:10.1f} {unit}" if anchor else "       n/a"
        r = f"{ratio:6.1f}x" if anchor else "   n/a"
        print(f"{name:44s} ours {ours * scale:9.1f} {unit}   {anchor_name:10s} {a}   ratio {r}")

    clock = "wall" if args.wall else "CPU"
    print(f"intent_engine {ie.__version__} ({ie.simd_level()}), numpy {np.__version__}, 1 thread, {clock} time")
    for n in (10_000, 100_000):
        def run_ours():
            gi = ie.GoalInference(GOALS, n_particles=n, dt=DT, seed=1, speed=SPEED, obs_noise=SIGZ,
                                  rationality=ALPHA, velocity_noise=SIGV, slow_radius=SLOW, threads=1)
            gi.update(zs[0])
            t0 = CLOCK()
            for z in zs[1:]:
                gi.update(z)
            return (CLOCK() - t0) / args.steps, gi.goal_probabilities()

        def run_numpy():
            f = NumpyGoalFilter(n, zs[0], seed=1)
            t0 = CLOCK()
            for z in zs[1:]:
                f.step(z)
            return (CLOCK() - t0) / args.steps, f.goal_probabilities()

        t_ours = statistics.median(run_ours()[0] for _ in range(args.repeat))
        t_np = statistics.median(run_numpy()[0] for _ in range(max(3, args.repeat // 2)))
        p_ours, p_np = run_ours()[1], run_numpy()[1]
        print(f"  N={n}: goal posterior ours {np.round(p_ours, 4)}  numpy {np.round(p_np, 4)};"
              f" {n / t_ours / 1e6:.1f} M particle-steps/s")
        case(f"goal-inference step, N={n}", t_ours, "numpy", t_np)
        t_pa = particles_filter(n, zs) if n <= 10_000 else None
        case(f"goal-inference step, N={n}", t_ours, "particles", t_pa)
        rows[-1]["ours_mpps"] = n / t_ours / 1e6

    rng = np.random.default_rng(0)
    w = rng.random(10_000) ** 3
    w /= w.sum()
    t_ours = median_time(lambda: ie.systematic_resample(w, 3), 201)

    def np_sys():
        pos = (np.arange(len(w)) + rng.random()) / len(w)
        return np.minimum(np.searchsorted(np.cumsum(w), pos, side="right"), len(w) - 1)

    case("systematic resampling, N=10000", t_ours, "numpy", median_time(np_sys, 201))

    u = rng.normal(size=(10_000, 64))
    t_ucb = median_time(lambda: acq.particle_ucb(u, w, 2.0), 51)
    t_ei = median_time(lambda: acq.particle_expected_improvement(u, w, 0.5), 51)
    t_ts = median_time(lambda: acq.particle_thompson_sample(u, w, 1), 51)

    def np_ucb():
        m = w @ u
        return m + np.sqrt(2.0) * np.sqrt(np.maximum(w @ (u * u) - m * m, 0))

    case("particle UCB, 10000 x 64", t_ucb, "numpy", median_time(np_ucb, 51))
    case("particle EI, 10000 x 64", t_ei, "numpy", median_time(lambda: w @ np.maximum(u - 0.5, 0), 51))
    case("particle Thompson, 10000 x 64", t_ts, "numpy",
         median_time(lambda: np.argmax(u[np.searchsorted(np.cumsum(w), rng.random())]), 51))
    # Ours rejects a NaN/inf utility anywhere (a full read of the 5 MB matrix); the plain numpy
    # anchor reads one row and checks nothing. The same draw with numpy checking the input:
    case("particle Thompson, 10000 x 64", t_ts, "np+isfinite",
         median_time(lambda: (np.isfinite(u).all(), np.argmax(u[np.searchsorted(np.cumsum(w), rng.random())])), 51))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=dict(version=ie.__version__, python=platform.python_version(), simd=ie.simd_level()),
                           rows=rows), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
