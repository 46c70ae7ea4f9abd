#!/usr/bin/env python3
"""Kernel-matrix benchmark: intent_engine against scikit-learn's kernel objects and
scipy-cdist-based NumPy code, in the same process, single-threaded by default.

    python benches/python/bench_kernels.py [--n 2000] [--d 3] [--repeat 15] [--json out.json]

Prints a table of median times and ratios (anchor time / our time; > 1 means we are faster)
and optionally writes the raw numbers as JSON. Anchors run on one thread as they do by
default (cdist and NumPy's ufuncs are single-threaded); ours is timed with threads=1 and
with all cores. Note: on machines where OPENBLAS_CORETYPE is set, only DotProduct (BLAS)
is affected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

# Single-threaded anchors (and no idle OpenBLAS threads spinning on the other core while we
# time ours); set before NumPy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

try:  # noqa: E402
    from scipy.spatial.distance import cdist
    from sklearn.gaussian_process import kernels as sk
except ImportError:  # pragma: no cover - the bench extra installs both
    sys.exit("needs scikit-learn and scipy: pip install 'intent-engine[bench]'")

import intent_engine as ie  # noqa: E402
from intent_engine import kernels as K  # noqa: E402


def median_time(fn, repeat: int) -> float:
    for _ in range(3):  # warm-up: first-touch of buffers, the allocator's heap, caches
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def numpy_rbf(X, ls, v):
    return v * np.exp(-0.5 * cdist(X / ls, X / ls, "sqeuclidean"))


def numpy_matern(nu):
    def f(X, ls, v):
        r = cdist(X / ls, X / ls, "euclidean")
        if nu == 0.5:
            return v * np.exp(-r)
        if nu == 1.5:
            t = np.sqrt(3.0) * r
            return v * (1.0 + t) * np.exp(-t)
        t = np.sqrt(5.0) * r
        return v * (1.0 + t + t * t / 3.0) * np.exp(-t)

    return f


def cases(d: int):
    ls, v, alpha, period = 0.7, 1.3, 1.5, 2.0
    ard = np.linspace(0.5, 1.5, d)
    return [
        ("RBF", K.RBF(ls, v), sk.ConstantKernel(v) * sk.RBF(ls), sk.RBF(ls),
         lambda X: numpy_rbf(X, ls, v)),
        ("RBF (ARD)", K.RBF(ard, v), sk.ConstantKernel(v) * sk.RBF(ard), sk.RBF(ard),
         lambda X: numpy_rbf(X, ard, v)),
        ("Matern 1/2", K.Matern(0.5, ls, v), sk.ConstantKernel(v) * sk.Matern(ls, nu=0.5),
         sk.Matern(ls, nu=0.5), lambda X: numpy_matern(0.5)(X, ls, v)),
        ("Matern 3/2", K.Matern(1.5, ls, v), sk.ConstantKernel(v) * sk.Matern(ls, nu=1.5),
         sk.Matern(ls, nu=1.5), lambda X: numpy_matern(1.5)(X, ls, v)),
        ("Matern 5/2", K.Matern(2.5, ls, v), sk.ConstantKernel(v) * sk.Matern(ls, nu=2.5),
         sk.Matern(ls, nu=2.5), lambda X: numpy_matern(2.5)(X, ls, v)),
        ("RationalQuadratic", K.RationalQuadratic(ls, alpha, v),
         sk.ConstantKernel(v) * sk.RationalQuadratic(ls, alpha), sk.RationalQuadratic(ls, alpha),
         lambda X: v * (1 + cdist(X, X, "sqeuclidean") / (2 * alpha * ls**2)) ** -alpha),
        ("Periodic", K.Periodic(ls, period, v),
         sk.ConstantKernel(v) * sk.ExpSineSquared(ls, period), sk.ExpSineSquared(ls, period),
         lambda X: v * np.exp(-2 * (np.sin(np.pi * cdist(X, X) / period) / ls) ** 2)),
        ("Linear+Constant", K.Linear(1.0) + K.Constant(0.25), sk.DotProduct(0.5), sk.DotProduct(0.5),
         lambda X: X @ X.T + 0.25),
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--d", type=int, default=3)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--json", help="write results here")
    args = p.parse_args(argv)

    X = np.random.default_rng(0).normal(size=(args.n, args.d))
    rows = []
    print(f"K(X, X), n={args.n}, d={args.d}; intent_engine {ie.__version__} ({ie.simd_level()}), "
          f"scikit-learn, numpy {np.__version__}; median of {args.repeat}")
    hdr = f"{'kernel':<18}{'ours 1T ms':>11}{'ours all ms':>12}{'sklearn ms':>11}{'sk bare ms':>11}" \
          f"{'numpy ms':>10}{'x sklearn':>10}{'x bare':>8}{'x numpy':>8}"
    print(hdr)
    print("-" * len(hdr))
    for name, ours, sk_full, sk_bare, np_fn in cases(args.d):
        # same answer first: a fast wrong kernel is no kernel
        np.testing.assert_allclose(ours(X[:200]), sk_full(X[:200]), rtol=1e-10, atol=1e-12)
        t1 = median_time(lambda: ours(X, threads=1), args.repeat)
        ta = median_time(lambda: ours(X), args.repeat)
        ts = median_time(lambda: sk_full(X), args.repeat)
        tb = median_time(lambda: sk_bare(X), args.repeat)
        tn = median_time(lambda: np_fn(X), args.repeat)
        row = dict(kernel=name, ours_1t_s=t1, ours_all_s=ta, sklearn_s=ts, sklearn_bare_s=tb,
                   numpy_s=tn, ratio_sklearn=ts / t1, ratio_sklearn_bare=tb / t1, ratio_numpy=tn / t1)
        rows.append(row)
        print(f"{name:<18}{t1*1e3:>11.2f}{ta*1e3:>12.2f}{ts*1e3:>11.2f}{tb*1e3:>11.2f}{tn*1e3:>10.2f}"
              f"{ts/t1:>10.1f}{tb/t1:>8.1f}{tn/t1:>8.1f}")
    print("x = anchor time / ours single-threaded (higher is better). 'sklearn' is ConstantKernel(v) * K,"
          " matching our variance; 'bare' is K alone (no variance).")
    if args.json:
        meta = dict(n=args.n, d=args.d, repeat=args.repeat, version=ie.__version__, simd=ie.simd_level(),
                    python=platform.python_version(), machine=platform.machine(), numpy=np.__version__)
        with open(args.json, "w") as f:
            json.dump(dict(meta=meta, results=rows), f, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
