"""The demo on the embedded default scenario.

A person walks through a shared workcell; every control period (100 Hz of simulated time)
the engine updates a Gaussian-process motion model of their recent track — time to position,
a linear-trend plus Matérn-5/2 kernel — and predicts where they will be one second
ahead, with a standard deviation. It prints a progress bar and a summary: prediction error
against the true path, calibration of the predicted uncertainty, and per-step latency.

The model is `intent_engine.GaussianProcess` with a 2 s sliding window: each observation is
absorbed in O(n²) (append + drop the oldest), never refactorised from scratch.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import intent_engine as ie
from intent_engine.kernels import Constant, Linear, Matern


def scripted_path(scn: dict) -> tuple[np.ndarray, np.ndarray]:
    """True positions of the scripted person, sampled at the observation rate."""
    h = scn["human"]
    goal = np.array(scn["goals"][h["goal"]], dtype=float)
    start = np.array(h["start"], dtype=float)
    dt = 1.0 / h["rate_hz"]
    n = int(h["duration_s"] * h["rate_hz"])
    t = np.arange(n) * dt
    pos = np.empty((n, 2))
    p = start.copy()
    heading0 = np.arctan2(*(goal - start)[::-1]) + h["curvature"]
    for i in range(n):
        pos[i] = p
        to_goal = goal - p
        dist = np.linalg.norm(to_goal)
        if dist < 1e-3:
            continue
        # heading relaxes from an initial offset towards the goal: a gently curving walk
        want = np.arctan2(to_goal[1], to_goal[0])
        heading = want + (heading0 - want) * np.exp(-t[i] / 1.5)
        step = min(h["speed"] * dt, dist)
        p = p + step * np.array([np.cos(heading), np.sin(heading)])
    return t, pos


def run(progress: bool = True) -> int:
    scn = json.loads(ie.default_scenario_json())
    h = scn["human"]
    rng = np.random.default_rng(h["seed"])
    t, truth = scripted_path(scn)
    obs = truth + rng.normal(scale=h["observation_noise"], size=truth.shape)
    rate = h["rate_hz"]
    window = int(2.0 * rate)  # fit on the last 2 s
    horizon = int(1.0 * rate)  # predict 1 s ahead
    # A linear trend (walking velocity) plus a smooth Matérn deviation from it.
    signal = Linear(2.0) + Constant(4.0) + Matern(2.5, length_scale=0.8, variance=0.05)
    noise = h["observation_noise"] ** 2
    errors, zs, latencies = [], [], []
    steps = range(window, len(t) - horizon)
    print(f"intent_engine {ie.__version__} demo - scenario '{scn['name']}' "
          f"({len(t)} observations at {rate:.0f} Hz, SIMD {ie.simd_level()})")
    # Time is the input; a fixed origin keeps it well scaled over the run.
    gp = ie.GaussianProcess(signal, noise_variance=noise, max_observations=window)
    gp.fit(t[:window, None], obs[:window])
    for k, i in enumerate(steps):
        t0 = time.perf_counter()
        if k > 0:
            gp.add_observations(t[i - 1:i, None], obs[i - 1:i])
        mean, sd = gp.predict(np.array([[t[i + horizon]]]), return_std=True)
        mean, sd = mean[0], sd[0]
        latencies.append(time.perf_counter() - t0)
        err = mean - truth[i + horizon]
        errors.append(np.linalg.norm(err))
        zs.extend(err / np.maximum(sd, 1e-12))
        if progress and (k % 10 == 0 or k == len(steps) - 1):
            frac = (k + 1) / len(steps)
            bar = "#" * int(30 * frac)
            sys.stdout.write(f"\r[{bar:<30}] {100 * frac:5.1f}%  t={t[i]:4.2f}s  "
                             f"1s-ahead error {errors[-1]:.3f} m")
            sys.stdout.flush()
    if progress:
        sys.stdout.write("\n")
    errors_a, z, lat = np.array(errors), np.array(zs), np.array(latencies) * 1e3
    within = np.mean(np.abs(z) < 1.96)
    print("summary")
    print(f"  steps                       {len(errors_a)}")
    print(f"  1 s-ahead position error    median {np.median(errors_a):.3f} m, p95 {np.percentile(errors_a, 95):.3f} m")
    print(f"  calibration                 {100 * within:.1f}% of errors within the 95% band")
    print(f"  latency per step            median {np.median(lat):.3f} ms, p95 {np.percentile(lat, 95):.3f} ms")
    return 0
