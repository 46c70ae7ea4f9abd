"""The demo on the embedded default scenario.

A person walks through a shared workcell; every control period (100 Hz of simulated time)
the engine fits a Gaussian-process motion model of their recent track — time to position,
a linear-trend plus Matérn-5/2 kernel evaluated by the Rust core — and predicts where they will be one second
ahead, with a standard deviation. It prints a progress bar and a summary: prediction error
against the true path, calibration of the predicted uncertainty, and per-step latency.

The GP posterior is solved here with NumPy on top of our kernels; the Rust GP core with
O(n²) streaming updates replaces that step when it lands.
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


def gp_predict(signal, noise, t_obs, y_obs, t_new):
    """GP posterior mean and standard deviation of the latent path."""
    T = t_obs[:, None]
    L = np.linalg.cholesky(signal(T) + noise * np.eye(len(t_obs)))
    mu = y_obs.mean(axis=0)  # the Constant term absorbs any remaining offset
    alpha = np.linalg.solve(L.T, np.linalg.solve(L, y_obs - mu))
    Ks = signal(t_new[:, None], T)
    v = np.linalg.solve(L, Ks.T)
    var = np.maximum(signal.diag(t_new[:, None]) - np.sum(v * v, axis=0), 0.0)
    return Ks @ alpha + mu, np.sqrt(var)


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
    for k, i in enumerate(steps):
        t0 = time.perf_counter()
        t_obs = t[i - window:i] - t[i]
        mean, sd = gp_predict(signal, noise, t_obs, obs[i - window:i], np.array([t[i + horizon] - t[i]]))
        latencies.append(time.perf_counter() - t0)
        err = mean[0] - truth[i + horizon]
        errors.append(np.linalg.norm(err))
        zs.extend(err / max(sd[0], 1e-12))
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
