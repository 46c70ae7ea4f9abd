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

GOALS = np.array([[6.0, 0.0], [0.0, 6.0], [-4.0, -4.0]])
DT, SPEED, ALPHA, SIGV, SIGZ, SLOW = 0.1, 1.2, 1.0, 0.5, 0.05, 0.5


CLOCK = time.process_time


def observations(steps, seed=0):
    rng = np.random.default_rng(seed)
    p = np.zeros(2)
    zs = []
    for _ in range(steps):
        d = GOALS[0] - p
        p = p + DT * SPEED * d / np.linalg.norm(d)
        zs.append(p + SIGZ * rng.normal(size=2))
    return np.array(zs)


class NumpyGoalFilter:
    """The same Rao-Blackwellised goal model as ours, vectorised over particles with NumPy."""

    def __init__(self, n, z0, seed=0):
        self.rng = np.random.default_rng(seed)
        self.n = n
        k = len(GOALS)
        self.x = np.empty((4, n))
        self.x[0:2] = z0[:, None] + SIGZ * self.rng.normal(size=(2, n))
        self.x[2:4] = SPEED * self.rng.normal(size=(2, n))
        self.p = np.full((k, n), 1.0 / k)
        self.logw = np.full(n, -np.log(n))
        self.logz = 0.0

    def step(self, z):
        n, k = self.n, len(GOALS)
        px, py, vx, vy = self.x
        u = self.rng.random(n)
        e = self.rng.normal(size=(2, n))
        g = (u[None, :] >= np.cumsum(self.p, axis=0)[:-1]).sum(axis=0)
        dx = GOALS[:, 0:1] - px[None, :]
        dy = GOALS[:, 1:2] - py[None, :]
        d = np.sqrt(dx * dx + dy * dy)
        sc = SPEED * np.minimum(d / SLOW, 1.0) / np.maximum(d, 1e-9)
        tx, ty = sc * dx, sc * dy
        idx = np.arange(n)
        sx, sy = tx[g, idx], ty[g, idx]
        a, sd = ALPHA * DT, SIGV * np.sqrt(DT)
        nvx = vx + a * (sx - vx) + sd * e[0]
        nvy = vy + a * (sy - vy) + sd * e[1]
        self.x[2], self.x[3] = nvx, nvy
        self.x[0] += DT * nvx
        self.x[1] += DT * nvy
        ddx = a * (sx[None, :] - tx) + sd * e[0][None, :]
        ddy = a * (sy[None, :] - ty) + sd * e[1][None, :]
        lg = -(ddx * ddx + ddy * ddy) / (2 * sd * sd)
        q = self.p * np.exp(lg - lg.max(axis=0))
        self.p = q / q.sum(axis=0)
        r2 = (z[0] - self.x[0]) ** 2 + (z[1] - self.x[1]) ** 2
        self.logw += -r2 / (2 * SIGZ**2) - np.log(2 * np.pi * SIGZ**2)
        m = self.logw.max()
        w = np.exp(self.logw - m)
        s = w.sum()
        self.logz += m + np.log(s)
        w /= s
        if 1.0 / np.sum(w * w) < 0.5 * n:
            pos = (np.arange(n) + self.rng.random()) / n
            i = np.minimum(np.searchsorted(np.cumsum(w), pos, side="right"), n - 1)
            self.x = self.x[:, i]
            self.p = self.p[:, i]
            self.logw = np.full(n, -np.log(n))
        else:
            self.logw = np.log(w)

    def goal_probabilities(self):
        w = np.exp(self.logw)
        return (self.p * w).sum(axis=1) / w.sum()


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
        print(f"{name:44s} ours {ours * scale:9.1f} {unit}   {anchor_name:10s} {a}   ratio {ratio:6.1f}x")

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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=dict(version=ie.__version__, python=platform.python_version(), simd=ie.simd_level()),
                           rows=rows), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
