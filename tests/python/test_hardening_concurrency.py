"""Concurrency contract (issue 9; docs/hardening.md "Python"):

* heavy calls release the GIL: other Python threads run during them, and two threads using
  separate objects run in parallel;
* immutable objects (kernels, solutions, decisions) are shared freely; a mutable object used
  from two threads at once either works or raises RuntimeError("Already borrowed"), never
  corrupts its state or crashes;
* `os.fork` after rayon-parallel calls does not deadlock the child.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

import intent_engine as ie
from intent_engine.kernels import RBF

RNG = np.random.default_rng(7)


def _gp(n=900, d=3, seed=0):
    r = np.random.default_rng(seed)
    X = r.normal(size=(n, d))
    return ie.GaussianProcess(RBF([1.0] * d), noise_variance=1e-2), X, np.sin(X[:, 0])


def python_progress_during(call):
    """Runs `call` in a thread while this thread spins; returns the longest stretch of the
    call during which this thread could not run Python, as a fraction of the call's duration
    (about 1 when the call holds the GIL, small when it releases it), and the duration."""
    window = {}

    def worker():
        window["t0"] = time.perf_counter()
        call()
        window["t1"] = time.perf_counter()

    th = threading.Thread(target=worker)
    stamps = []
    th.start()
    while th.is_alive():
        stamps.append(time.perf_counter())
    th.join()
    t0, t1 = window["t0"], window["t1"]
    inside = [t0] + [s for s in stamps if t0 < s < t1] + [t1]
    return float(np.max(np.diff(inside))) / (t1 - t0), t1 - t0


def _heavy_calls():
    # each one call of a few tenths of a second (a loop of short calls would hide a held GIL)
    k = RBF([1.0, 1.0, 1.0])
    Xk = RNG.normal(size=(4000, 3))
    g, X, y = _gp(n=1400)
    g2, X2, y2 = _gp(n=600)
    g2.fit(X2, y2)
    sg = ie.SparseGaussianProcess(RBF([1.0] * 3), n_inducing=64, threads=1)
    Xs = RNG.normal(size=(15000, 3))
    A, B = ie.double_integrator_model(2, 0.1)
    mpc = ie.LinearMPC(A, B, np.eye(4), 0.1 * np.eye(2), 30, u_min=-np.ones(2), u_max=np.ones(2))
    x0s = RNG.normal(size=(200, 4))
    gi = ie.GoalInference([[5.0, 3.0], [0.0, 3.0]], n_particles=20000)
    pf = ie.ParticleFilter.goal_directed([[5.0, 3.0], [0.0, 3.0]], [0, 0, 0, 0], [0.1, 0.1, 0.5, 0.5],
                                         n_particles=1_000_000)
    return {
        "Kernel.__call__": lambda: k(Xk, threads=1),
        "GaussianProcess.fit": lambda: g.fit(X, y),
        "GaussianProcess.predict": lambda: g2.predict(np.tile(Xk, (2, 1)), return_std=True),
        "ParticleFilter.step": lambda: pf.step([0.1, 0.0]),
        "SparseGaussianProcess.fit": lambda: sg.fit(Xs, np.sin(Xs[:, 0])),
        "LinearMPC.solve_batch": lambda: mpc.solve_batch(x0s, threads=1),
        "GoalInference.sample_trajectories": lambda: gi.sample_trajectories(50, 30_000, seed=1),
        "run_scenario": lambda: ie.run_scenario(relaxed_budgets=True),
    }


HEAVY = _heavy_calls()


@pytest.mark.parametrize("name", sorted(HEAVY))
def test_heavy_calls_release_the_gil(name):
    gap, duration = python_progress_during(HEAVY[name])
    # Holding the GIL would block this thread for the whole call (gap ~ 1); released, it
    # runs throughout but for scheduler pauses. The bound holds on one loaded core.
    assert gap < 0.5, f"{name}: this thread was blocked {gap:.0%} of a {duration * 1e3:.0f} ms call"


def test_holding_the_gil_is_detected():
    """The probe itself can fail: a pure-Python busy call that holds the GIL between
    bytecodes still lets the spinner in (switch interval), but a C call that never releases
    it does not: `sum` over a large range is one C call."""
    gap, duration = python_progress_during(lambda: sum(range(30_000_000)))
    assert gap > 0.8, (gap, duration)


def _two_threads(work, args):
    spans = [[] for _ in args]

    def run(i, a):
        for _ in range(4):
            t = time.perf_counter()
            work(a)
            spans[i].append((t, time.perf_counter()))

    ths = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return spans


def test_two_threads_on_separate_objects_are_inside_calls_at_once():
    """Independent of free cores: with the GIL held, two threads could never be inside
    their calls at the same time; released, their calls overlap for most of their span."""
    g1, X1, y1 = _gp(n=700, seed=1)
    g2, X2, y2 = _gp(n=700, seed=2)
    spans = _two_threads(lambda g: g.fit(X1 if g is g1 else X2, y1 if g is g1 else y2), [g1, g2])
    overlap = sum(max(0.0, min(b1, b2) - max(a1, a2)) for a1, b1 in spans[0] for a2, b2 in spans[1])
    total = sum(b - a for a, b in spans[0])
    assert overlap > 0.3 * total, f"calls overlapped {overlap / total:.0%} of one thread's call time"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_two_threads_on_separate_objects_run_in_parallel():
    k1, k2 = RBF([1.0, 1.0, 1.0]), RBF([0.5, 1.0, 2.0])
    X = RNG.normal(size=(1500, 3))

    def work(k):
        for _ in range(6):
            k(X, threads=1)

    best = None
    for _ in range(4):  # best of a few: other processes share this machine's cores
        t = time.perf_counter()
        work(k1)
        one = time.perf_counter() - t
        c0, t = time.process_time(), time.perf_counter()
        ths = [threading.Thread(target=work, args=(k,)) for k in (k1, k2)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
        two, cpu = time.perf_counter() - t, time.process_time() - c0
        ratio = two / one
        best = ratio if best is None else min(best, ratio)
        # Serialised threads take 2x the single-thread time and use one core's CPU time.
        if ratio < 1.6 or cpu / two > 1.3:
            return
    msg = f"two threads took {best:.2f}x one thread's time (serialised would be 2x)"
    if os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5:
        # other processes hold the cores: a speed-up cannot show (the overlap test above
        # still proves the threads run concurrently)
        pytest.skip(f"machine busy (load {os.getloadavg()[0]:.1f}): {msg}")
    pytest.fail(msg)


def test_immutable_objects_are_shared_across_threads():
    k = RBF([1.0, 2.0]) + ie.kernels.White(0.1)
    X = RNG.normal(size=(300, 2))
    ref = k(X, threads=1)
    out, errors = [], []

    def use():
        try:
            for _ in range(10):
                out.append(np.array_equal(k(X, threads=1), ref))
        except BaseException as e:  # noqa: B036 - includes PanicException
            errors.append(e)

    ths = [threading.Thread(target=use) for _ in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert not errors and len(out) == 40 and all(out)


def test_one_gp_shared_by_two_threads_is_safe_or_refused_clearly():
    """add_observations (mutable) in one thread and predict in another on the same model:
    each call succeeds or raises RuntimeError('Already borrowed'); the model ends exactly as
    if only the successful calls had run."""
    g, X, y = _gp(n=80, d=2, seed=3)
    g.fit(X[:40], y[:40])
    XT = RNG.normal(size=(400, 2))
    added, refused, errors = [], [0], []
    stop = threading.Event()

    def writer():
        for i in range(40, 80):
            try:
                g.add_observations(X[i : i + 1], y[i : i + 1])
                added.append(i)
            except RuntimeError as e:
                assert "borrow" in str(e).lower(), e
                refused[0] += 1
            except BaseException as e:  # noqa: B036
                errors.append(e)
        stop.set()

    def reader():
        while not stop.is_set():
            try:
                m, s = g.predict(XT, return_std=True)
                assert np.all(np.isfinite(m)) and np.all(s >= 0)
            except RuntimeError as e:
                assert "borrow" in str(e).lower(), e
                refused[0] += 1
            except BaseException as e:  # noqa: B036
                errors.append(e)
                return

    ths = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    assert not errors, errors
    rows = list(range(40)) + added
    assert g.n_observations == len(rows)
    fresh = ie.GaussianProcess(RBF([1.0, 1.0]), noise_variance=1e-2).fit(X[rows], y[rows])
    np.testing.assert_allclose(g.predict(XT), fresh.predict(XT), rtol=1e-7, atol=1e-9)


def _wait(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fork_after_rayon_use_does_not_deadlock():
    k = RBF([1.0, 1.0, 1.0])
    X = RNG.normal(size=(700, 3))
    ref = k(X, threads=1)
    # the global rayon pool (threads=0) and a crate-owned pool (threads=2) are both live
    assert np.array_equal(k(X, threads=0), ref) and np.array_equal(k(X, threads=2), ref)
    sg = ie.SparseGaussianProcess(RBF([1.0] * 3), n_inducing=32, threads=0).fit(X, np.sin(X[:, 0]))
    pred = sg.predict(X[:50])
    pid = os.fork()
    if pid == 0:  # the child: parallel calls again, then exit without running pytest's atexit
        code = 1
        try:
            ok = np.array_equal(k(X, threads=0), ref) and np.array_equal(k(X, threads=2), ref)
            sg2 = ie.SparseGaussianProcess(RBF([1.0] * 3), n_inducing=32, threads=0).fit(X, np.sin(X[:, 0]))
            ok = ok and np.allclose(sg2.predict(X[:50]), pred, rtol=1e-10)
            code = 0 if ok else 3
        finally:
            os._exit(code)
    assert _wait(pid, 60) == 0, "the forked child deadlocked or failed"
    # and the parent's pools still work
    assert np.array_equal(k(X, threads=0), ref)
