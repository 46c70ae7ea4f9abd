#!/usr/bin/env python3
"""MPC benchmark: intent_engine.LinearMPC against OSQP (the `osqp` Python package, warm-started,
sparse formulation, vector updates without refactorisation) in the same run.

    pip install osqp scipy
    python benches/python/bench_mpc.py [--horizons 10 20 50] [--steps 300]

A 12-state / 4-input quadrotor (intent_engine.quadrotor_hover_model, 50 Hz) flies a closed loop
of waypoint steps under the reference controller with input bounds that become active; every
solver then replays the same sequence of QPs, warm-started as in a control loop. Reported per
solver: median and p99 solve time (wall time of the Python call) and max |u0 − u0*| against
the reference (our active-set solver, cold, eps 1e-12; the Rust tests check it against an
independent sparse formulation). Also: one time-varying keep-out row per stage (update +
solve), 64 scenarios on 1 vs 2 threads, and the Python call overhead (call time − Rust solve time).
Ratios are anchor / ours (> 1: we are faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import intent_engine as ie  # noqa: E402

try:  # noqa: E402
    import osqp
    import scipy.sparse  # noqa: F401  (OsqpMpc needs it)
except ImportError:  # pragma: no cover
    osqp = None

from intent_engine._anchors import (  # noqa: E402  (shared with `python -m intent_engine bench`)
    QD,
    U_MAX,
    OsqpMpc,
    sequence,
)


def replay(solve, seq, keepout):
    times, err = [], 0.0
    for x, xr, ko, u_star in seq:
        t0 = time.perf_counter()
        u0 = solve(x, xr, ko)
        times.append(time.perf_counter() - t0)
        err = max(err, float(np.max(np.abs(u0 - u_star))))
    times.sort()
    return statistics.median(times), times[int(0.99 * len(times))], err


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--horizons", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args(argv)
    A, B = ie.quadrotor_hover_model(0.02)
    Q, R = np.diag(QD), np.eye(4)
    print(f"quadrotor 12x4, {args.steps} closed-loop QPs per case, simd={ie.simd_level()}")
    print(f"{'case':>22} {'solver':>16} {'median':>10} {'p99':>10} {'max|du0|':>10} {'ratio':>7}")
    cases = [(N, False) for N in args.horizons] + [(20, True)]
    for N, keepout in cases:
        seq = sequence(A, B, Q, R, N, args.steps, keepout)
        mpc = ie.LinearMPC(A, B, Q, R, N, u_min=-U_MAX * np.ones(4), u_max=U_MAX * np.ones(4), eps=1e-6)

        def ours(x, xr, ko, mpc=mpc):
            if ko is not None:
                mpc.set_keepout(*ko)
            return mpc.solve(x, x_ref=xr).u0

        med, p99, err = replay(ours, seq, keepout)
        name = f"N={N}" + (" +keep-out" if keepout else "")
        print(f"{name:>22} {'ours active-set':>16} {med * 1e6:8.1f}us {p99 * 1e6:8.1f}us {err:10.1e} {'':>7}")
        ric = ie.LinearMPC(A, B, Q, R, N, u_min=-U_MAX * np.ones(4), u_max=U_MAX * np.ones(4), eps=1e-6, solver="riccati")

        def ours_ric(x, xr, ko, mpc=ric):
            if ko is not None:
                mpc.set_keepout(*ko)
            return mpc.solve(x, x_ref=xr).u0

        rm, rp, re_ = replay(ours_ric, seq, keepout)
        print(f"{'':>22} {'ours riccati':>16} {rm * 1e6:8.1f}us {rp * 1e6:8.1f}us {re_:10.1e} {rm / med:6.1f}x")
        if osqp is not None:
            for eps in (1e-4, 1e-6):
                o = OsqpMpc(A, B, Q, R, mpc.terminal_cost, N, eps, keepout)
                om, op, oe = replay(o.solve, seq, keepout)
                print(f"{'':>22} {'osqp eps=%g' % eps:>16} {om * 1e6:8.1f}us {op * 1e6:8.1f}us {oe:10.1e} {om / med:6.1f}x")
    # Python call overhead: wall time of solve() minus the time inside the Rust solve.
    mpc = ie.LinearMPC(A, B, Q, R, 20, u_min=-U_MAX * np.ones(4), u_max=U_MAX * np.ones(4))
    x0 = np.zeros(12)
    over = []
    for _ in range(2000):
        t0 = time.perf_counter()
        s = mpc.solve(x0)
        over.append(time.perf_counter() - t0 - s.solve_time)
    print(f"Python call overhead (solve() wall − Rust solve time), median: {statistics.median(over) * 1e6:.2f} us")
    # Scenarios in parallel.
    rng = np.random.default_rng(0)
    x0s = rng.normal(scale=0.3, size=(64, 12))
    t1 = min(_timeit(lambda: mpc.solve_batch(x0s, threads=1)) for _ in range(5))
    t2 = min(_timeit(lambda: mpc.solve_batch(x0s, threads=2)) for _ in range(5))
    print(f"64 scenarios (N=20): 1 thread {t1 * 1e3:.2f} ms, 2 threads {t2 * 1e3:.2f} ms, throughput x{t1 / t2:.2f}")
    return 0


def _timeit(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    raise SystemExit(main())
