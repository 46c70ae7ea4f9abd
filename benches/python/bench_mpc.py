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
    import scipy.sparse as sp
except ImportError:  # pragma: no cover
    osqp = None

U_MAX = 0.5
QD = np.array([100, 100, 100, 4, 4, 400, 4, 4, 4, 0.1, 0.1, 0.1], dtype=float)


def waypoint(step):
    return [np.array([1.0, 1.0, 1.0]), np.array([-1.0, 0.5, 0.0]), np.zeros(3)][min(step // 100, 2)]


def keepout_rows(step, N):
    """A person walking nearby: y_k + 0.1 cos(.) x_k <= 0.6 + 0.4 sin(.) (one row per stage)."""
    normals = np.zeros((N, 12))
    offsets = np.zeros(N)
    for k in range(N):
        t = (step + k + 1) * 0.02
        normals[k, 1] = 1.0
        normals[k, 0] = 0.1 * np.cos(0.3 * t)
        offsets[k] = 0.6 + 0.4 * np.sin(0.5 * t)
    return normals, offsets


def sequence(A, B, Q, R, N, steps, keepout):
    ref = ie.LinearMPC(A, B, Q, R, N, u_min=-U_MAX * np.ones(4), u_max=U_MAX * np.ones(4), eps=1e-12, warm_start=False)
    x = np.zeros(12)
    seq = []
    for s in range(steps):
        xr = np.zeros(12)
        xr[:3] = waypoint(s)
        ko = keepout_rows(s, N) if keepout else None
        if ko is not None:
            ref.set_keepout(*ko)
        sol = ref.solve(x, x_ref=xr)
        seq.append((x.copy(), xr, ko, sol.u0.copy()))
        x = A @ x + B @ sol.u0
    return seq


class OsqpMpc:
    """The standard sparse OSQP MPC formulation (as in OSQP's own MPC example)."""

    def __init__(self, A, B, Q, R, P, N, eps, keepout):
        n, m = B.shape
        self.n, self.m, self.N = n, m, N
        self.Q, self.P = Q, P
        Px = sp.block_diag([sp.kron(sp.eye(N), Q), P, sp.kron(sp.eye(N), R)], format="csc")
        Ax = sp.kron(sp.eye(N + 1), -sp.eye(n)) + sp.kron(sp.eye(N + 1, k=-1), A)
        Bu = sp.kron(sp.vstack([sp.csc_matrix((1, N)), sp.eye(N)]), B)
        Aeq = sp.hstack([Ax, Bu])
        Aineq = sp.hstack([sp.csc_matrix((N * m, (N + 1) * n)), sp.eye(N * m)])
        blocks = [Aeq, Aineq]
        self.keepout = keepout
        if keepout:
            # Dense keep-out rows on x_1..x_N (all n entries structural so values can change).
            rows = sp.hstack([sp.csc_matrix((N, n)), sp.kron(sp.eye(N), np.ones((1, n))), sp.csc_matrix((N, N * m))])
            blocks.append(rows)
        self.A = sp.vstack(blocks, format="csc")
        self.A.sort_indices()
        neq = (N + 1) * n
        self.l = np.hstack([np.zeros(neq), -U_MAX * np.ones(N * m)] + ([-np.inf * np.ones(N)] if keepout else []))
        self.u = np.hstack([np.zeros(neq), U_MAX * np.ones(N * m)] + ([np.inf * np.ones(N)] if keepout else []))
        self.q = np.zeros((N + 1) * n + N * m)
        self.prob = osqp.OSQP()
        self.prob.setup(Px, self.q, self.A, self.l, self.u, eps_abs=eps, eps_rel=eps, warm_starting=True, polishing=True, verbose=False, max_iter=100000)
        if keepout:
            # Locate the keep-out entries in A.data (column-major order).
            A = self.A.tocoo()
            first = neq + N * m
            self.ko_idx = np.zeros((N, n), dtype=int)
            csc = self.A
            for col in range(n, (N + 1) * n):
                for p in range(csc.indptr[col], csc.indptr[col + 1]):
                    r = csc.indices[p]
                    if r >= first:
                        self.ko_idx[r - first, col % n] = p
            del A

    def solve(self, x0, xr, ko):
        n, N = self.n, self.N
        self.q[: N * n] = np.tile(-self.Q @ xr, N)
        self.q[N * n : (N + 1) * n] = -self.P @ xr
        self.l[:n] = -x0
        self.u[:n] = -x0
        if ko is not None:
            normals, offsets = ko
            data = self.A.data.copy()
            data[self.ko_idx] = normals
            self.u[-N:] = offsets
            self.prob.update(q=self.q, l=self.l, u=self.u, Ax=data)
        else:
            self.prob.update(q=self.q, l=self.l, u=self.u)
        res = self.prob.solve()
        return res.x[(N + 1) * n : (N + 1) * n + self.m]


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
