"""Kernels against scikit-learn (1e-12 relative), gradients against finite differences,
composition, and the zero-copy / out= / threads behaviour of the array boundary."""

import threading

import numpy as np
import pytest

import intent_engine as ie
from intent_engine.kernels import (
    RBF,
    Constant,
    Kernel,
    Linear,
    Matern,
    Periodic,
    Product,
    RationalQuadratic,
    Sum,
    White,
)

sk = pytest.importorskip("sklearn.gaussian_process.kernels")

RTOL = 1e-12


def assert_matches(ours, ref, rtol=RTOL):
    """Relative agreement, with an absolute floor scaled by the matrix size for entries that
    are exactly representable near zero (e.g. exp underflow, dot products that cancel)."""
    ours, ref = np.asarray(ours), np.asarray(ref)
    assert ours.shape == ref.shape
    floor = 1e-300 + rtol * 1e-3 * np.max(np.abs(ref))
    bad = np.abs(ours - ref) > rtol * np.abs(ref) + floor
    assert not bad.any(), (
        f"{bad.sum()} entries differ; worst {np.max(np.abs(ours - ref) / (np.abs(ref) + floor))}"
    )


def pairs(d):
    """(ours, scikit-learn, columns) triples for input dimension d. `columns` lists the
    indices of our theta in scikit-learn's theta order (it sorts a kernel's hyperparameters
    alphabetically and has no variance inside RBF/Matern), or None where the
    parameterisations differ."""
    ard = np.linspace(0.5, 2.0, d)
    ls = list(range(1, d + 1))
    return [
        (RBF(0.8, variance=1.7), sk.ConstantKernel(1.7) * sk.RBF(0.8), [0, 1]),
        (RBF(ard), sk.RBF(ard), ls),
        (Matern(0.5, ard, 1.3), sk.ConstantKernel(1.3) * sk.Matern(ard, nu=0.5), [0] + ls),
        (Matern(1.5, 1.1), sk.Matern(1.1, nu=1.5), [1]),
        (Matern(2.5, ard, 0.7), sk.ConstantKernel(0.7) * sk.Matern(ard, nu=2.5), [0] + ls),
        (RationalQuadratic(1.4, alpha=0.6, variance=2.0),
         sk.ConstantKernel(2.0) * sk.RationalQuadratic(1.4, alpha=0.6), [0, 2, 1]),
        (Periodic(0.9, period=2.5, variance=1.1),
         sk.ConstantKernel(1.1) * sk.ExpSineSquared(0.9, periodicity=2.5), [0, 1, 2]),
        (Linear(1.0) + Constant(0.25), sk.DotProduct(sigma_0=0.5), None),
        (White(0.3), sk.WhiteKernel(0.3), [0]),
        (Constant(2.5), sk.ConstantKernel(2.5), [0]),
        (RBF(0.7) * Periodic(1.2, 3.0) + White(0.05),
         sk.RBF(0.7) * sk.ExpSineSquared(1.2, 3.0) + sk.WhiteKernel(0.05), [1, 3, 4, 5]),
    ]


@pytest.mark.parametrize("n,d", [(1, 1), (37, 1), (200, 3), (150, 10), (2000, 2)])
def test_values_match_sklearn(rng, n, d):
    X = rng.normal(size=(n, d))
    Y = rng.normal(size=(max(n // 3, 1), d))
    for ours, ref, _ in pairs(d):
        assert_matches(ours(X), ref(X))
        assert_matches(ours(X, Y), ref(X, Y))
        assert_matches(ours.diag(X), ref.diag(X))


def test_values_match_sklearn_n2000_d10(rng):
    X = rng.normal(size=(2000, 10))
    for ours, ref, _ in pairs(10)[:5]:
        assert_matches(ours(X), ref(X))


@pytest.mark.parametrize("d", [1, 3])
def test_gradients_match_sklearn_and_finite_differences(rng, d):
    X = rng.normal(size=(30, d))
    for ours, ref, cols in pairs(d):
        G = ours.gradient(X)
        assert G.shape == (30, 30, ours.n_params)
        _, ref_grad = ref(X, eval_gradient=True)
        if cols is not None:
            assert_matches(G[:, :, cols], ref_grad, rtol=1e-10)
        theta = ours.theta
        for q in range(ours.n_params):
            h = 1e-6
            tp, tm = theta.copy(), theta.copy()
            tp[q] += h
            tm[q] -= h
            fd = (ours.with_theta(tp)(X) - ours.with_theta(tm)(X)) / (2 * h)
            np.testing.assert_allclose(G[:, :, q], fd, rtol=1e-6, atol=1e-7)


def test_parameters_and_names():
    k = RBF([1.0, 2.0], variance=3.0) + White(0.1)
    assert isinstance(k, Sum) and isinstance(k, Kernel)
    assert k.n_params == 4
    assert k.param_names == ["k1__variance", "k1__length_scale[0]", "k1__length_scale[1]", "k2__noise"]
    np.testing.assert_allclose(np.exp(k.theta), [3.0, 1.0, 2.0, 0.1])
    assert k.get_params()["k2__noise"] == pytest.approx(0.1)
    assert k.n_dims == 2
    k1, k2 = k.operands
    assert isinstance(k1, RBF) and isinstance(k2, White)
    np.testing.assert_allclose(k.with_theta(k.theta + 0.5).theta, k.theta + 0.5, rtol=1e-15)
    assert k == RBF([1.0, 2.0], variance=3.0) + White(0.1)
    assert k != RBF([1.0, 2.0], variance=3.0)
    assert RBF(1.0).operands is None
    assert "RBF" in repr(k)


def test_composition_with_numbers(rng):
    X = rng.normal(size=(20, 2))
    k = RBF(0.5)
    np.testing.assert_allclose((2.0 * k)(X), 2.0 * k(X), rtol=1e-15)
    np.testing.assert_allclose((k * 2.0)(X), 2.0 * k(X), rtol=1e-15)
    np.testing.assert_allclose((k + 1.0)(X), k(X) + 1.0, rtol=1e-15)
    np.testing.assert_allclose((1.0 + k)(X), k(X) + 1.0, rtol=1e-15)
    assert isinstance(Product(k, Constant(2.0)), Product)
    with pytest.raises(TypeError):
        k + "a"
    with pytest.raises(ie.InvalidInputError, match="other"):
        k * -1.0


def test_white_only_on_the_same_set(rng):
    X = rng.normal(size=(5, 2))
    w = White(0.5)
    np.testing.assert_array_equal(w(X), 0.5 * np.eye(5))
    np.testing.assert_array_equal(w(X, X), np.zeros((5, 5)))


def test_out_parameter_writes_in_place(rng):
    X = rng.normal(size=(50, 3))
    k = Matern(2.5, 0.8)
    out = np.full((50, 50), np.nan)
    res = k(X, out=out)
    assert res is out
    np.testing.assert_array_equal(out, k(X))
    with pytest.raises(ie.InvalidInputError, match="out"):
        k(X, out=np.empty((50, 49)))
    with pytest.raises(ie.InvalidInputError, match="out"):
        k(X, out=np.empty((50, 50), dtype=np.float32))
    with pytest.raises(ie.InvalidInputError, match="out"):
        k(X, out=np.empty((50, 50), order="F"))


def test_thread_count_does_not_change_results(rng):
    X = rng.normal(size=(600, 3))
    for ours, _, _ in pairs(3):
        ref = ours(X, threads=1)
        for t in (0, 2, 3):
            np.testing.assert_array_equal(ours(X, threads=t), ref)


def test_inputs_are_not_modified_and_results_are_fresh(rng):
    X = rng.normal(size=(40, 3))
    X_copy = X.copy()
    X.setflags(write=False)  # read-only input is fine
    K = RBF(1.0)(X)
    np.testing.assert_array_equal(X, X_copy)
    assert K.flags.c_contiguous and K.flags.writeable and K.flags.owndata is False or K.base is not None
    assert K.dtype == np.float64


def test_lists_and_float32_are_converted(rng):
    X = rng.normal(size=(10, 2))
    k = RBF(0.9)
    np.testing.assert_array_equal(k(X.tolist()), k(X))
    np.testing.assert_allclose(k(X.astype(np.float32)), k(X.astype(np.float32).astype(np.float64)))


def test_gil_is_released(rng):
    """Two threads computing large kernels overlap: with the GIL held the pair would take
    about twice as long as one call. Asserts only that both finish with the right answer and
    that a pure-Python counter advanced while Rust was computing."""
    X = rng.normal(size=(1500, 3))
    k = RBF(0.7)
    ticks = []
    done = threading.Event()

    def count():
        while not done.is_set():
            ticks.append(1)

    t = threading.Thread(target=count)
    t.start()
    try:
        for _ in range(3):
            k(X, threads=1)
    finally:
        done.set()
        t.join()
    assert len(ticks) > 100, "the counter thread never ran: the GIL was held during compute"


def test_module_metadata():
    assert isinstance(ie.__version__, str) and ie.__version__.count(".") == 2
    assert ie.simd_level() in {"avx512", "avx2", "scalar"}
    assert ie.cuda_available() in (True, False)
    for name in ie.__all__:
        assert hasattr(ie, name)
