#!/usr/bin/env python3
"""Exact-GP benchmark: intent_engine.GaussianProcess against scikit-learn's
GaussianProcessRegressor in the same process, single-threaded, n = 1000, d = 3.

    python benches/python/bench_gp.py [--n 1000] [--repeat 21] [--json out.json]

Cases: single-point mean+std, single-point mean, a batch of 1000 points (mean+std), adding
one observation (ours: add_observations; scikit-learn: refit on n+1 points, it has no
incremental update), removing the oldest (ours: remove_oldest; scikit-learn: refit), and
hyperparameter optimisation from the same start with the same restarts (noise fixed, as
scikit-learn does). Prints medians and ratios (anchor / ours; > 1 means we are faster).
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

try:  # noqa: E402
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process import kernels as K
except ImportError:  # pragma: no cover
    sys.exit("needs scikit-learn: pip install 'intent-engine[bench]'")

import intent_engine as ie  # noqa: E402
from intent_engine.kernels import RBF  # noqa: E402


def median_time(fn, repeat, setup=None):
    samples = []
    for i in range(repeat + 2):
        arg = setup() if setup else None
        t0 = time.perf_counter()
        fn(arg) if setup else fn()
        dt = time.perf_counter() - t0
        if i >= 2:  # warm-up
            samples.append(dt)
    return statistics.median(samples)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=21)
    p.add_argument("--json")
    args = p.parse_args(argv)
    n, d, ls, v, noise = args.n, 3, 0.8, 1.3, 1e-2
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(n + 1, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.05 * rng.normal(size=n + 1)
    Xs = rng.uniform(-3, 3, size=(1000, d))
    x1 = Xs[:1]
    ours = ie.GaussianProcess(RBF(ls, variance=v), noise_variance=noise, capacity=n + 64).fit(X[:n], y[:n])
    sk_kernel = K.ConstantKernel(v, "fixed") * K.RBF(ls, "fixed")
    ref = GaussianProcessRegressor(sk_kernel, alpha=noise, optimizer=None).fit(X[:n], y[:n])
    # same answers first
    m1, s1 = ours.predict(Xs, return_std=True)
    m2, s2 = ref.predict(Xs, return_std=True)
    assert np.allclose(m1, m2, rtol=1e-8, atol=1e-10) and np.allclose(s1, s2, rtol=1e-8, atol=1e-10)

    rows = []

    def case(name, t_ours, t_ref, anchor="scikit-learn"):
        rows.append(dict(case=name, ours_s=t_ours, anchor_s=t_ref, anchor=anchor, ratio=t_ref / t_ours))

    r = args.repeat
    case("predict 1 point, mean+std", median_time(lambda: ours.predict(x1, return_std=True), r),
         median_time(lambda: ref.predict(x1, return_std=True), r))
    case("predict 1 point, mean", median_time(lambda: ours.predict(x1), r), median_time(lambda: ref.predict(x1), r))
    case("predict 1000 points, mean+std", median_time(lambda: ours.predict(Xs, return_std=True), r),
         median_time(lambda: ref.predict(Xs, return_std=True), r))
    # append: steady state on a sliding window of n (append + drop oldest), vs sklearn's refit
    win = ie.GaussianProcess(RBF(ls, variance=v), noise_variance=noise, capacity=n + 64).fit(X[:n], y[:n])
    stream = rng.uniform(-3, 3, size=(args.repeat + 2, d))
    it = iter(range(10**9))

    def add_one():
        i = next(it) % len(stream)
        win.add_observations(stream[i:i + 1], y[:1])

    def remove_one():
        win.remove_oldest(1)

    t_add = median_time(add_one, r)
    t_remove = median_time(remove_one, r)
    t_refit = median_time(lambda: GaussianProcessRegressor(sk_kernel, alpha=noise, optimizer=None).fit(X, y), max(r // 3, 3))
    case("add 1 observation (sklearn: refit)", t_add, t_refit)
    case("remove oldest (sklearn: refit)", t_remove, t_refit)
    # optimisation from the same start, same restarts (0), noise fixed
    no = min(n, 300)
    start = ie.GaussianProcess(RBF(1.0, variance=1.0), noise_variance=noise).fit(X[:no], y[:no])

    def ours_opt(gp):
        return gp.optimize(n_restarts=0, seed=0, optimize_noise=False)

    t_oo = median_time(ours_opt, 3, setup=lambda: ie.GaussianProcess.from_json(start.to_json()))
    t_so = median_time(lambda: GaussianProcessRegressor(K.ConstantKernel(1.0) * K.RBF(1.0), alpha=noise,
                                                        n_restarts_optimizer=0, random_state=0).fit(X[:no], y[:no]), 3)
    lml_ours = ours_opt(ie.GaussianProcess.from_json(start.to_json()))
    lml_sk = GaussianProcessRegressor(K.ConstantKernel(1.0) * K.RBF(1.0), alpha=noise, n_restarts_optimizer=0,
                                      random_state=0).fit(X[:no], y[:no]).log_marginal_likelihood_value_
    case(f"optimize hyperparameters (n={no})", t_oo, t_so)

    print(f"exact GP, n={n}, d={d}, RBF, single thread; intent_engine {ie.__version__} ({ie.simd_level()}); "
          f"median of {r}")
    print(f"{'case':<40}{'ours':>12}{'scikit-learn':>14}{'ratio':>8}")
    for row in rows:
        print(f"{row['case']:<40}{row['ours_s']*1e6:>10.1f}us{row['anchor_s']*1e6:>12.1f}us{row['ratio']:>8.1f}")
    print(f"optimised log marginal likelihood: ours {lml_ours:.6f}, scikit-learn {lml_sk:.6f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(meta=dict(n=n, d=d, version=ie.__version__, python=platform.python_version()),
                           results=rows, lml=dict(ours=lml_ours, sklearn=lml_sk)), f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
