"""Benchmark suite with regression reports: ``python -m intent_engine bench``.

Runs the standard cases of every core and of the pipeline, each with its anchor in the same run
where that anchor is installed:

=================  ===============================================  =================================
case               ours                                             anchor
=================  ===============================================  =================================
``gp.fit``         ``GaussianProcess.fit`` (exact, RBF, d = 3)      scikit-learn ``GaussianProcessRegressor.fit``
``gp.predict``     one point, mean + std                            scikit-learn ``predict(return_std=True)``
``gp.append``      sliding window: add one point, drop the oldest   scikit-learn refit on the window
``mpc.solve``      ``LinearMPC.solve``, quadrotor 12x4, N = 20,     OSQP (``osqp``), sparse formulation,
                   warm-started along a closed-loop QP sequence     warm-started, vector updates
``belief.step``    ``GoalInference.update`` (K = 3, one thread)     the same model vectorised in NumPy
``pipeline.step``  ``IntentEngine.step`` on the default scenario's  (none)
                   workcell, a walking person, the robot moving
=================  ===============================================  =================================

Each case is timed ``repeats`` times; a repeat makes the case's state afresh (outside the clock)
and times ``inner`` consecutive calls one by one. The report gives, per case, the median call
time, the p95/p99 tails over all calls and the ratio anchor/ours (> 1: ours is faster). The
clock is this process's CPU time by default (other jobs on a shared machine then barely move the
figures; everything runs on one thread); ``--clock wall`` times wall-clock latency instead.

Regression check (``--baseline FILE``): for each case present in both runs, the statistic is
the per-repeat median call time. The slowdown is ``median(current repeats) / median(baseline
repeats)`` with a 95 % bootstrap confidence interval (resampling the repeats of both runs). A
case **regresses** when the whole interval lies above ``1 + tolerance``: the slowdown is larger
than the tolerance *and* statistically clear. It is **faster** when the interval lies below
``1 / (1 + tolerance)``. The command exits with status 1 when any case regresses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

import intent_engine as ie
from intent_engine import _anchors

# Hidden: each timed call runs this many times (a genuine slowdown of our cases, used by the
# tests to check that the regression check flags it).
SLOWDOWN_ENV = "INTENT_ENGINE_BENCH_SLOWDOWN"

Op = Callable[[], object]


@dataclass
class Case:
    """One benchmark case: ``make()`` builds fresh state and returns the call to time."""

    name: str
    group: str
    inner: int
    ours: Callable[[], Op]
    anchor_name: Optional[str] = None
    anchor: Optional[Callable[[], Op]] = None
    # anchors may be much slower (e.g. a refit): time fewer of their calls
    anchor_inner: Optional[int] = None
    note: str = ""


@dataclass
class Sizes:
    gp_n: int
    gp_fit_n: int
    mpc_horizon: int
    particles: int
    pipeline_steps: int
    repeats: int


QUICK = Sizes(gp_n=200, gp_fit_n=100, mpc_horizon=20, particles=1000, pipeline_steps=60, repeats=7)
FULL = Sizes(gp_n=1000, gp_fit_n=300, mpc_horizon=20, particles=10_000, pipeline_steps=200, repeats=15)


def _optional(module: str) -> Any:
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        return None


def cases(sz: Sizes, anchors: bool = True) -> list[Case]:
    """The standard cases at the given sizes (anchors left out when not installed or
    ``anchors`` is false)."""
    from intent_engine.kernels import RBF

    sk = _optional("sklearn.gaussian_process") if anchors else None
    skk = _optional("sklearn.gaussian_process.kernels") if anchors else None
    out: list[Case] = []

    # ---- GP -------------------------------------------------------------------------------
    d, ls, v, noise = 3, 0.8, 1.3, 1e-2
    rng = np.random.default_rng(0)
    n = sz.gp_n
    X = rng.uniform(-3, 3, size=(n + 256, d))
    y = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.05 * rng.normal(size=len(X))
    x1 = rng.uniform(-3, 3, size=(1, d))
    nf = sz.gp_fit_n

    def sk_gp() -> Any:
        kern = skk.ConstantKernel(v, "fixed") * skk.RBF(ls, "fixed")
        return sk.GaussianProcessRegressor(kern, alpha=noise, optimizer=None)

    def ours_fit() -> Op:
        return lambda: ie.GaussianProcess(RBF(ls, variance=v), noise_variance=noise).fit(X[:nf], y[:nf])

    def sk_fit() -> Op:
        return lambda: sk_gp().fit(X[:nf], y[:nf])

    out.append(Case(f"gp.fit n={nf}", "gp", 10, ours_fit, "scikit-learn" if sk else None, sk_fit if sk else None))

    gp = ie.GaussianProcess(RBF(ls, variance=v), noise_variance=noise, capacity=n + 64).fit(X[:n], y[:n])
    ref = sk_gp().fit(X[:n], y[:n]) if sk else None

    out.append(Case(f"gp.predict n={n} 1 point mean+std", "gp", 200,
                    lambda: (lambda: gp.predict(x1, return_std=True)),
                    "scikit-learn" if sk else None,
                    (lambda: (lambda: ref.predict(x1, return_std=True))) if sk else None))

    def ours_append() -> Op:
        win = ie.GaussianProcess(RBF(ls, variance=v), noise_variance=noise, capacity=n + 64).fit(X[:n], y[:n])
        it = iter(range(10**9))

        def op() -> None:
            i = n + next(it) % 256
            win.add_observations(X[i:i + 1], y[i:i + 1])
            win.remove_oldest(1)

        return op

    def sk_append() -> Op:
        it = iter(range(10**9))

        def op() -> None:
            i = 1 + next(it) % 256
            sk_gp().fit(X[i:i + n], y[i:i + n])

        return op

    out.append(Case(f"gp.append n={n} (add 1 + drop oldest)", "gp", 50, ours_append,
                    "scikit-learn refit" if sk else None, sk_append if sk else None, anchor_inner=5))

    # ---- MPC ------------------------------------------------------------------------------
    A, B = ie.quadrotor_hover_model(0.02)
    Q, R = np.diag(_anchors.QD), np.eye(4)
    N = sz.mpc_horizon
    seq = _anchors.sequence(A, B, Q, R, N, 150, False)
    um = _anchors.U_MAX * np.ones(4)

    def ours_mpc() -> Op:
        mpc = ie.LinearMPC(A, B, Q, R, N, u_min=-um, u_max=um, eps=1e-6)
        it = iter(range(10**9))

        def op() -> None:
            x, xr, _, _ = seq[next(it) % len(seq)]
            mpc.solve(x, x_ref=xr)

        return op

    osqp_ok = anchors and _anchors.osqp is not None

    def osqp_mpc() -> Op:
        P = ie.LinearMPC(A, B, Q, R, N, u_min=-um, u_max=um).terminal_cost
        o = _anchors.OsqpMpc(A, B, Q, R, P, N, 1e-4, False)
        it = iter(range(10**9))

        def op() -> None:
            x, xr, _, _ = seq[next(it) % len(seq)]
            o.solve(x, xr, None)

        return op

    out.append(Case(f"mpc.solve quadrotor N={N} warm", "mpc", 100, ours_mpc,
                    "osqp eps=1e-4" if osqp_ok else None, osqp_mpc if osqp_ok else None))

    # ---- belief ---------------------------------------------------------------------------
    P_ = sz.particles
    zs = _anchors.observations(200, seed=0)

    def ours_belief() -> Op:
        gi = ie.GoalInference(_anchors.GOALS, n_particles=P_, dt=_anchors.DT, seed=1, speed=_anchors.SPEED,
                              obs_noise=_anchors.SIGZ, rationality=_anchors.ALPHA,
                              velocity_noise=_anchors.SIGV, slow_radius=_anchors.SLOW, threads=1)
        gi.update(zs[0])
        it = iter(range(1, 10**9))
        return lambda: gi.update(zs[next(it) % len(zs)])

    def np_belief() -> Op:
        f = _anchors.NumpyGoalFilter(P_, zs[0], seed=1)
        it = iter(range(1, 10**9))
        return lambda: f.step(zs[next(it) % len(zs)])

    out.append(Case(f"belief.step N={P_} K=3", "belief", 40, ours_belief,
                    "numpy filter" if anchors else None, np_belief if anchors else None))

    # ---- pipeline -------------------------------------------------------------------------
    out.append(Case("pipeline.step default scenario", "pipeline", sz.pipeline_steps, _pipeline_op))
    return out


def _pipeline_op() -> Op:
    """The default scenario's engine, a person walking from the entrance to the shelf with
    2 cm tracking noise, the robot integrated from the commands (double integrator)."""
    eng = ie.IntentEngine.default()
    rng = np.random.default_rng(7)
    start, goal = np.array([0.6, 0.5]), np.array([5.2, 0.8])
    heading = (goal - start) / np.linalg.norm(goal - start)
    x = np.array([4.0, 3.0, 0.0, 0.0])
    dt = 0.01
    k = [0]

    def op() -> None:
        k[0] += 1
        t = k[0] * dt
        p = start + min(1.2 * t, 4.5) * heading
        d = eng.step(p + 0.02 * rng.normal(size=2), x, t)
        u = d.command
        x[:2] += dt * x[2:] + 0.5 * dt * dt * u
        x[2:] += dt * u

    return op


# ---- timing -----------------------------------------------------------------------------------

CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def measure(make: Callable[[], Op], inner: int, repeats: int, clock: Callable[[], float],
            times: int = 1, warmup: int = 1) -> dict[str, Any]:
    """Times ``inner`` calls per repeat (fresh state per repeat); ``times`` runs each timed
    call that many times (the slowdown injection)."""
    reps: list[float] = []
    samples: list[float] = []
    for r in range(warmup + repeats):
        op = make()
        ts = []
        for _ in range(inner):
            t0 = clock()
            for _ in range(times):
                op()
            ts.append(clock() - t0)
        if r >= warmup:
            reps.append(statistics.median(ts))
            samples.extend(ts)
    return summarise(reps, samples)


def summarise(reps: list[float], samples: list[float]) -> dict[str, Any]:
    s = np.sort(np.asarray(samples))
    return dict(
        median=float(np.median(s)),
        p95=float(np.quantile(s, 0.95)),
        p99=float(np.quantile(s, 0.99)),
        max=float(s[-1]),
        mean=float(s.mean()),
        n=int(len(s)),
        repeats=reps,
        samples=[float(x) for x in samples],
    )


# ---- regression check -------------------------------------------------------------------------

def compare(base: list[float], cur: list[float], tolerance: float, resamples: int = 4000,
            seed: int = 0) -> dict[str, Any]:
    """Slowdown ``median(cur) / median(base)`` with a 95 % bootstrap interval over the
    repeats, and the verdict: "regression" when the interval lies above ``1 + tolerance``,
    "faster" when below ``1 / (1 + tolerance)``, "ok" otherwise."""
    b, c = np.asarray(base, float), np.asarray(cur, float)
    if len(b) == 0 or len(c) == 0 or np.any(b <= 0) or np.any(c <= 0):
        raise ValueError("compare: need positive per-repeat times in both runs")
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, len(b), size=(resamples, len(b)))], axis=1)
    mc = np.median(c[rng.integers(0, len(c), size=(resamples, len(c)))], axis=1)
    ratios = mc / mb
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    ratio = float(np.median(c) / np.median(b))
    if lo > 1 + tolerance:
        verdict = "regression"
    elif hi < 1 / (1 + tolerance):
        verdict = "faster"
    else:
        verdict = "ok"
    return dict(ratio=ratio, ci=[float(lo), float(hi)], verdict=verdict)


def check_baseline(report: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> list[dict[str, Any]]:
    """Compares ``report``'s cases with ``baseline``'s (ours only; anchors are context)."""
    rows = []
    for name, c in report["cases"].items():
        b = baseline.get("cases", {}).get(name)
        if b is None:
            rows.append(dict(case=name, verdict="new"))
            continue
        r = compare(b["ours"]["repeats"], c["ours"]["repeats"], tolerance)
        rows.append(dict(case=name, base=b["ours"]["median"], current=c["ours"]["median"], **r))
    return rows


# ---- metadata ---------------------------------------------------------------------------------

def _version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_rev() -> Optional[str]:
    for where in (os.path.dirname(os.path.abspath(__file__)), os.getcwd()):
        try:
            rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                                 timeout=5, check=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            return rev + ("-dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            continue
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    return dict(
        platform=platform.platform(),
        machine=platform.machine(),
        cpu=_cpu_model(),
        cpus=os.cpu_count(),
        python=platform.python_version(),
        intent_engine=ie.__version__,
        simd=ie.simd_level(),
        numpy=_version("numpy"),
        scikit_learn=_version("scikit-learn"),
        osqp=_version("osqp"),
        scipy=_version("scipy"),
        git=_git_rev(),
        time_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


# ---- running and printing ---------------------------------------------------------------------

def run(quick: bool = False, anchors: bool = True, repeats: Optional[int] = None, clock: str = "cpu",
        only: Optional[str] = None, progress: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    """Runs the suite; returns the report (the JSON written by ``--json``)."""
    sz = QUICK if quick else FULL
    reps = repeats or sz.repeats
    times = int(os.environ.get(SLOWDOWN_ENV, "1") or 1)
    if times < 1:
        raise ValueError(f"{SLOWDOWN_ENV} must be >= 1, got {times}")
    tick = CLOCKS[clock]
    if reps < 1:
        raise ValueError(f"repeats must be >= 1, got {reps}")
    limiter = _optional("threadpoolctl")
    stack = contextlib.ExitStack()
    if limiter is not None:  # BLAS in the anchors on one thread too
        stack.enter_context(limiter.threadpool_limits(1))
    report: dict[str, Any] = dict(meta=machine_info(), settings=dict(
        quick=quick, repeats=reps, clock=clock, anchors=anchors), cases={})
    if times != 1:
        report["settings"]["slowdown"] = times
    with stack:
        for c in cases(sz, anchors):
            if only and only not in c.name:
                continue
            if progress:
                progress(c.name)
            entry: dict[str, Any] = dict(group=c.group, inner=c.inner, ours=measure(c.ours, c.inner, reps, tick, times))
            if c.anchor is not None:
                a_inner = c.anchor_inner or c.inner
                a_reps = max(3, reps // 2) if c.anchor_inner else reps
                entry["anchor_name"] = c.anchor_name
                entry["anchor"] = measure(c.anchor, a_inner, a_reps, tick)
                entry["ratio"] = entry["anchor"]["median"] / entry["ours"]["median"]
            report["cases"][c.name] = entry
    return report


def _us(x: float) -> str:
    return f"{x * 1e6:10.1f}" if x < 0.1 else f"{x * 1e3:8.1f}ms"


def format_report(report: dict[str, Any]) -> str:
    m, s = report["meta"], report["settings"]
    lines = [
        f"intent_engine {m['intent_engine']} ({m['simd']}), git {m['git'] or '?'}, {m['cpu']} x{m['cpus']}",
        f"{'quick' if s['quick'] else 'full'} suite, {s['repeats']} repeats, {s['clock']} time, µs per call; "
        "ratio = anchor / ours (> 1: ours faster)",
        f"{'case':<42}{'median':>10}{'p95':>10}{'p99':>10}   {'anchor':<20}{'median':>10}{'ratio':>8}",
    ]
    for name, c in report["cases"].items():
        o = c["ours"]
        row = f"{name:<42}{_us(o['median'])}{_us(o['p95'])}{_us(o['p99'])}   "
        if "anchor" in c:
            row += f"{c['anchor_name']:<20}{_us(c['anchor']['median'])}{c['ratio']:8.2f}"
        lines.append(row)
    return "\n".join(lines)


def format_check(rows: list[dict[str, Any]], tolerance: float) -> str:
    lines = [f"regression check: slowdown = current / baseline median, 95% bootstrap interval; "
             f"flagged when the interval lies above {1 + tolerance:.2f}",
             f"{'case':<42}{'baseline':>10}{'current':>10}{'slowdown':>10}  {'95% interval':<16}verdict"]
    for r in rows:
        if r["verdict"] == "new":
            lines.append(f"{r['case']:<42}{'':>30}  {'':<16}not in baseline")
            continue
        ci = f"[{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
        lines.append(f"{r['case']:<42}{_us(r['base'])}{_us(r['current'])}{r['ratio']:9.2f}x  {ci:<16}"
                     f"{r['verdict'].upper() if r['verdict'] == 'regression' else r['verdict']}")
    return "\n".join(lines)


def plot(report: dict[str, Any], out_dir: str, baseline: Optional[dict[str, Any]] = None) -> Optional[str]:
    """Writes ``bench_latency.png`` (per-call latency distributions, log scale: ours, the
    anchor and, with a baseline, the baseline's ours) into ``out_dir``; returns its path, or
    None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = list(report["cases"])
    cols = 2
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        c = report["cases"][name]
        data, labels = [np.asarray(c["ours"]["samples"]) * 1e6], ["ours"]
        if baseline and name in baseline.get("cases", {}):
            data.insert(0, np.asarray(baseline["cases"][name]["ours"]["samples"]) * 1e6)
            labels.insert(0, "baseline")
        if "anchor" in c:
            data.append(np.asarray(c["anchor"]["samples"]) * 1e6)
            labels.append(c["anchor_name"])
        ax.violinplot(data, showmedians=True)
        ax.set_xticks(range(1, len(labels) + 1), labels)
        ax.set_yscale("log")
        ax.set_ylabel("µs per call")
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "bench_latency.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(args: argparse.Namespace) -> int:
    if args.tolerance <= 0:
        print("bench: --tolerance must be > 0", file=sys.stderr)
        return 2
    baseline = None
    if args.baseline:
        try:
            with open(args.baseline) as f:
                baseline = json.load(f)
        except (OSError, ValueError) as e:
            print(f"bench: cannot read baseline {args.baseline}: {e}", file=sys.stderr)
            return 2
    say = None if args.quiet else (lambda name: print(f"  running {name} ...", file=sys.stderr, flush=True))
    report = run(quick=args.quick, anchors=not args.no_anchors, repeats=args.repeats, clock=args.clock,
                 only=args.only, progress=say)
    print(format_report(report))
    status = 0
    if baseline is not None:
        if baseline.get("settings", {}).get("clock") != report["settings"]["clock"]:
            print("bench: warning: the baseline used a different clock", file=sys.stderr)
        rows = check_baseline(report, baseline, args.tolerance)
        report["check"] = dict(baseline=args.baseline, tolerance=args.tolerance, rows=rows)
        print()
        print(format_check(rows, args.tolerance))
        bad = [r["case"] for r in rows if r["verdict"] == "regression"]
        if bad:
            print(f"\nREGRESSION in {len(bad)} case(s): {', '.join(bad)}")
            status = 1
        else:
            print("\nno regression beyond the tolerance")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        path = plot(report, args.plot, baseline)
        print(f"plot: {path}" if path else "plot: skipped (matplotlib is not installed)")
    return status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats (CI, tests)")
    p.add_argument("--json", metavar="FILE", help="write the full report (machine, versions, samples) as JSON")
    p.add_argument("--baseline", metavar="FILE", help="compare with a stored --json report; exit 1 on a regression")
    p.add_argument("--tolerance", type=float, default=0.25,
                   help="slowdown tolerated before a case regresses (0.25 = 25%%; default)")
    p.add_argument("--plot", metavar="DIR", help="write latency distribution plots (needs matplotlib)")
    p.add_argument("--repeats", type=int, help="repeats per case (default: 7 quick, 15 full)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu", help="cpu (process CPU time) or wall")
    p.add_argument("--no-anchors", action="store_true", help="time our cases only")
    p.add_argument("--only", metavar="TEXT", help="run only cases whose name contains TEXT")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
