"""Shared machinery of the Python hardening tests (issue 9): call wrappers that fail on a
panic, canonical forms of results for exact comparison, and the array variants of the
bad-input battery."""

import math

import numpy as np
import pytest

import intent_engine as ie
from intent_engine import _core

# Properties that depend on the wall clock, never compared.
TIMING = {"solve_time", "timings", "latency_us", "decisions_per_second", "csv", "report", "svg"}


def is_panic(e):
    """pyo3_runtime.PanicException is a BaseException: it must never reach Python."""
    return type(e).__name__ == "PanicException"


def attempt(fn):
    """("ok", value) or ("err", exception); a panic or a non-library, non-TypeError failure
    fails the test at once."""
    try:
        return "ok", fn()
    except ie.IntentEngineError as e:
        return "err", e
    except TypeError as e:  # pyo3's argument conversion of scalars: names the argument
        return "err", e
    except (ValueError, OverflowError) as e:
        # pyo3's conversion of a fixed-size tuple or an unsigned integer (e.g. seed=-1):
        # a standard Python error with the note "while processing 'seed'"
        if any("while processing" in n for n in getattr(e, "__notes__", [])):
            return "err", e
        raise
    except BaseException as e:  # noqa: B036 - PanicException is a BaseException
        if is_panic(e):
            pytest.fail(f"PanicException reached Python: {e}")
        raise


def canon(v, depth=0):
    """A comparable form of a result: arrays, numbers, strings and the public properties of
    the module's objects (recursively), without wall-clock fields."""
    if depth > 4:
        return "..."
    if isinstance(v, np.ndarray):
        return ("array", v.dtype.kind, v.shape, v.astype(object).ravel().tolist() if v.dtype == object else v.copy())
    if isinstance(v, (bool, int, str, type(None))):
        return v
    if isinstance(v, float):
        return np.float64(v)
    if isinstance(v, (list, tuple)):
        return tuple(canon(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, canon(x, depth + 1)) for k, x in v.items() if k not in TIMING))
    if type(v).__module__.startswith("intent_engine"):
        out = [type(v).__name__]
        for name in sorted(dir(type(v))):
            if name.startswith("_") or name in TIMING:
                continue
            if isinstance(getattr(type(v), name), property) or type(getattr(type(v), name)).__name__ == "getset_descriptor":
                out.append((name, canon(getattr(v, name), depth + 1)))
        if isinstance(v, (ie.GaussianProcess, ie.SparseGaussianProcess, ie.GpuGaussianProcess)) and v.n_observations:
            d = v.kernel.n_dims or XT.shape[1]
            out.append(("predict", canon(v.predict(XT[:, :d] if d <= XT.shape[1] else np.zeros((2, d)), return_std=True), depth + 1)))
        return tuple(out)
    return repr(v)


def assert_same(a, b, rtol=1e-12, path="result"):
    """Exact (to rtol) equality of two canonical forms, NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        if a.dtype.kind in "fc":
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True, err_msg=path)
        else:
            assert np.array_equal(a, b), f"{path}: {a} != {b}"
        return
    if isinstance(a, np.floating) or isinstance(b, np.floating):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True, err_msg=path)
        return
    if isinstance(a, tuple) and isinstance(b, tuple):
        assert len(a) == len(b), f"{path}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, rtol, f"{path}[{i}]")
        return
    assert a == b, f"{path}: {a!r} != {b!r}"


def floats(v):
    """Every float in a canonical form, flattened."""
    if isinstance(v, np.ndarray):
        return [float(x) for x in np.ravel(v)] if v.dtype.kind == "f" else []
    if isinstance(v, np.floating):
        return [float(v)]
    if isinstance(v, tuple):
        return [f for x in v for f in floats(x)]
    return []


def names_arg(e, name):
    """The message names the argument (our errors start with it; pyo3's say 'argument 'x'')."""
    msg = " ".join([str(e)] + list(getattr(e, "__notes__", [])))  # pyo3 adds "while processing 'x'"
    return msg.startswith(name) or f"'{name}'" in msg or f"{name}:" in msg or f"{name} " in msg


# ---------------------------------------------------------------------------------------
# Array variants: (name, transform(valid) -> bad, expectation)
#   "err"    InvalidInputError (or TypeError) naming the argument; object unchanged
#   "same"   accepted, and the answer equals that of the valid (contiguous float64) input
#   "finite" accepted with no NaN in the answer, or a library error (object unchanged)


def _noncontig(v):
    big = np.repeat(v, 2, axis=0)
    out = big[::2]
    assert not out.flags.c_contiguous or v.shape[0] <= 1
    return out


def _fortran(v):
    return np.asfortranarray(v) if v.ndim == 2 and min(v.shape) > 1 else _noncontig(v)


def _negstride(v):
    out = np.ascontiguousarray(v[::-1])[::-1]
    return out


def _readonly(v):
    out = v.copy()
    out.flags.writeable = False
    return out


def _poke(v, value):
    out = v.copy()
    out.flat[out.size // 2] = value
    return out


def _magnitude(v, scale):
    out = v * scale
    out[out == 0] = scale
    return out


ARRAY_VARIANTS = [
    ("ndim+1", lambda v: v[None], "err"),
    ("ndim-1", lambda v: v[0] if v.ndim > 1 else np.float64(v[0]), "err"),
    ("empty", lambda v: np.empty((0,) + v.shape[1:]), "err"),
    ("nan", lambda v: _poke(v, np.nan), "err"),
    ("inf", lambda v: _poke(v, np.inf), "err"),
    ("-inf", lambda v: _poke(v, -np.inf), "err"),
    ("1e300", lambda v: _magnitude(v, 1e300), "finite"),
    ("1e-300", lambda v: _magnitude(v, 1e-300), "finite"),
    ("int64", lambda v: v.astype(np.int64), "err"),
    ("bool", lambda v: v.astype(bool), "err"),
    ("complex", lambda v: v.astype(complex), "err"),
    ("object", lambda v: v.astype(object), "err"),
    ("str", lambda v: "not an array", "err"),
    ("None", lambda v: None, "err"),
    ("list-of-str", lambda v: [["a", "b"]] if v.ndim > 1 else ["a", "b"], "err"),
    ("float32", lambda v: v.astype(np.float32), "same32"),
    ("list", lambda v: v.tolist(), "same"),
    ("non-contiguous", _noncontig, "same"),
    ("fortran", _fortran, "same"),
    ("negative-stride", _negstride, "same"),
    ("read-only", _readonly, "same"),
]

# Shared data (small: the battery makes a few thousand calls).
RNG = np.random.default_rng(20261123)
X = RNG.normal(size=(8, 2))
Y = np.sin(X[:, 0]) + 0.1 * X[:, 1]
XT = RNG.normal(size=(3, 2))
GOALS = np.array([[5.0, 3.2], [5.2, 0.8], [0.4, 3.6]])
NAN, INF = math.nan, math.inf

__all__ = ["ARRAY_VARIANTS", "GOALS", "INF", "NAN", "X", "XT", "Y", "_core", "assert_same", "attempt", "canon", "floats", "is_panic", "names_arg"]
