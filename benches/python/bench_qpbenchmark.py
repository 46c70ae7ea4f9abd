#!/usr/bin/env python3
"""The public MPC QP benchmark (qpsolvers/mpc_qpbenchmark: 30 LIPMWALK, 30 WHLIPBAL,
2 QUADCMPC) through intent_engine.solve_qp and, in the same run, through the solvers that
qpsolvers finds installed (daqp, quadprog, osqp, clarabel, ...).

    pip install qpsolvers daqp quadprog osqp clarabel   # the anchors (optional)
    python benches/python/bench_qpbenchmark.py [--data ../shared/data/mpc_qpbenchmark] [--repeat 51]

Success is judged the benchmark's way, by one code path for every solver (qpsolvers'
Solution.primal_residual / dual_residual / duality_gap, absolute, each ≤ eps) at the default
(1e-6) and high (1e-9) accuracy. Times: per-problem median wall time of the Python call, then
the median over the problems of a family; ratio = anchor / ours (> 1: we are faster). The
published table (2026-04, Ryzen 7 8845HS) has DAQP at 31.6 µs (LIPMWALK) and 58.6 µs
(WHLIPBAL) at 1e-6.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time

import numpy as np

import intent_engine as ie

try:
    import qpsolvers
    from qpsolvers import Problem, Solution
except ImportError:  # pragma: no cover
    qpsolvers = None

HERE = pathlib.Path(__file__).resolve()
DEFAULT_DATA = HERE.parents[3] / "shared" / "data" / "mpc_qpbenchmark"

# Solver options for each accuracy (names as qpsolvers forwards them).
HIGH = {
    "osqp": dict(eps_abs=1e-9, eps_rel=0.0, polish=True, max_iter=100000),
    "clarabel": dict(tol_gap_abs=1e-9, tol_gap_rel=0.0, tol_feas=1e-9, tol_infeas_abs=1e-9, tol_ktratio=1e-9),
    "daqp": dict(primal_tol=1e-9, dual_tol=1e-9),
}
DEFAULT = {"osqp": dict(eps_abs=1e-6, eps_rel=0.0, polish=True)}


def load(path):
    d = dict(np.load(path))
    return {k: d.get(k) for k in ("P", "q", "G", "h", "A", "b", "lb", "ub")}


def ours(d, eps):
    s = ie.solve_qp_solution(eps=eps, **{k: v for k, v in d.items() if v is not None})
    return s


def as_qpsolvers_solution(d, s):
    sol = Solution(Problem(**d))
    sol.found = s.found
    sol.x, sol.z, sol.y, sol.z_box = s.x, s.z, s.y, s.z_box
    if d["G"] is None:
        sol.z = np.empty(0)
    if d["A"] is None:
        sol.y = np.empty(0)
    return sol


def success(sol, eps):
    if sol is None or not sol.found or sol.x is None:
        return False
    try:
        return max(sol.primal_residual(), sol.dual_residual(), sol.duality_gap()) <= eps
    except Exception:  # a solver without duals
        return False


def timed(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--repeat", type=int, default=51)
    args = p.parse_args(argv)
    files = sorted(pathlib.Path(args.data).glob("*.npz"))
    if not files:
        sys.exit(f"no problems under {args.data}")
    anchors = [s for s in (qpsolvers.available_solvers if qpsolvers else []) if s in ("daqp", "quadprog", "osqp", "clarabel", "proxqp", "piqp", "qpalm")]
    names = ["intent_engine"] + anchors
    fams = ("LIPMWALK", "WHLIPBAL", "QUADCMPC")
    times = {(n, f): [] for n in names for f in fams}
    ok = {(n, e): 0 for n in names for e in (1e-6, 1e-9)}
    for path in files:
        d = load(path)
        fam = next(f for f in fams if path.name.startswith(f))
        rep = args.repeat if fam != "QUADCMPC" else 3
        for eps in (1e-6, 1e-9):
            s = ours(d, eps)
            ok[("intent_engine", eps)] += success(as_qpsolvers_solution(d, s), eps)
            for a in anchors:
                opts = (HIGH if eps < 1e-7 else DEFAULT).get(a, {})
                try:
                    sol = qpsolvers.solve_problem(Problem(**d), solver=a, **opts)
                except Exception:
                    sol = None
                ok[(a, eps)] += success(sol, eps)
        kw = {k: v for k, v in d.items() if v is not None}
        times[("intent_engine", fam)].append(timed(lambda: ie.solve_qp(eps=1e-6, **kw), rep))
        for a in anchors:
            opts = DEFAULT.get(a, {})
            try:
                times[(a, fam)].append(timed(lambda: qpsolvers.solve_qp(solver=a, **kw, **opts), rep))
            except Exception:
                times[(a, fam)].append(float("nan"))
    print(f"{len(files)} problems; success = primal/dual residual and duality gap <= eps (qpsolvers' definitions)")
    print(f"{'solver':>14} | {'ok@1e-6':>8} {'ok@1e-9':>8} | " + " | ".join(f"{f + ' median':>18}" for f in fams))
    base = {f: statistics.median(times[("intent_engine", f)]) for f in fams}
    for n in names:
        cells = []
        for f in fams:
            ts = times[(n, f)]
            if any(t != t for t in ts):  # a call raised: no median over a partial family
                cells.append(f"{'raised':>12}{'':>8}")
                continue
            med = statistics.median(ts)
            ratio = "" if n == "intent_engine" else f" ({med / base[f]:5.1f}x)"
            cells.append(f"{med * 1e6:9.1f} us{ratio:>8}")
        print(f"{n:>14} | {ok[(n, 1e-6)]:>5}/{len(files)} {ok[(n, 1e-9)]:>5}/{len(files)} | " + " | ".join(f"{c:>18}" for c in cells))
    print("(ratio = anchor median / intent_engine median, same run; published DAQP: 31.6 / 58.6 us)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
