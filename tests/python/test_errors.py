"""Every bad input raises InvalidInputError (a ValueError) naming the argument; no panic
reaches Python; a failed call leaves the kernel usable."""

import numpy as np
import pytest

import intent_engine as ie
from intent_engine.kernels import RBF, Constant, Linear, Matern, Periodic, RationalQuadratic, White


def test_hierarchy():
    assert issubclass(ie.InvalidInputError, ie.IntentEngineError)
    assert issubclass(ie.InvalidInputError, ValueError)
    assert issubclass(ie.NumericalError, ie.IntentEngineError)
    assert issubclass(ie.NumericalError, ArithmeticError)
    assert issubclass(ie.BackendUnavailableError, ie.IntentEngineError)
    assert issubclass(ie.BackendUnavailableError, RuntimeError)
    assert issubclass(ie.IntentEngineError, Exception)
    assert ie.InvalidInputError.__module__ == "intent_engine"


X = np.random.default_rng(0).normal(size=(6, 3))
K = RBF([1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: K(X[:, 0]), "X1"),  # wrong ndim
        (lambda: K(X[None]), "X1"),  # 3-D
        (lambda: K(X[:, :2]), "X1"),  # d does not match ARD length scales
        (lambda: K(X, X[:, :2]), "X2"),  # mismatched d
        (lambda: K(np.empty((0, 3))), "X1"),  # empty
        (lambda: K(np.empty((4, 0))), "X1"),
        (lambda: K(X, np.empty((0, 3))), "X2"),
        (lambda: K(np.where(np.arange(18).reshape(6, 3) == 7, np.nan, X)), "X1"),
        (lambda: K(X, np.full((2, 3), np.inf)), "X2"),
        (lambda: K(np.full((2, 3), -np.inf)), "X1"),
        (lambda: K(np.ones((4, 3), dtype=np.int64)), "X1"),  # int dtype
        (lambda: K(np.ones((4, 3), dtype=bool)), "X1"),
        (lambda: K(np.ones((4, 3), dtype=complex)), "X1"),
        (lambda: K(np.array([[1, "a", 2]], dtype=object)), "X1"),
        (lambda: K([[1.0, 2.0], [3.0]]), "X1"),  # ragged list
        (lambda: K("not an array"), "X1"),
        (lambda: K(None), "X1"),
        (lambda: K(X, threads=-1), "threads"),
        (lambda: K.diag(X[:, :1]), "X"),
        (lambda: K.gradient(np.full((3, 3), np.nan)), "X"),
        (lambda: K.with_theta([0.0, 1.0]), "theta"),
        (lambda: K.with_theta([0.0, np.nan, 0.0, 0.0]), "theta"),
        (lambda: K.with_theta([0.0, 800.0, 0.0, 0.0]), "theta"),
        (lambda: RBF(-1.0), "length_scale"),
        (lambda: RBF(0.0), "length_scale"),
        (lambda: RBF([1.0, -2.0]), "length_scale"),
        (lambda: RBF([]), "length_scale"),
        (lambda: RBF([[1.0]]), "length_scale"),
        (lambda: RBF(np.nan), "length_scale"),
        (lambda: RBF(1.0, variance=-1.0), "variance"),
        (lambda: RBF(1.0, variance=np.inf), "variance"),
        (lambda: Matern(1.0), "nu"),
        (lambda: Matern(0.5, -1.0), "length_scale"),
        (lambda: RationalQuadratic(1.0, alpha=0.0), "alpha"),
        (lambda: Periodic(1.0, period=-3.0), "period"),
        (lambda: Periodic(-1.0), "length_scale"),
        (lambda: Linear(0.0), "variance"),
        (lambda: Constant(-2.0), "value"),
        (lambda: White(np.nan), "noise"),
        (lambda: RBF([1.0, 2.0]) + RBF([1.0, 2.0, 3.0]), "kernel"),
    ],
)
def test_bad_input_raises_invalid_input_naming_the_argument(call, name):
    with pytest.raises(ie.InvalidInputError) as info:
        call()
    assert str(info.value).startswith(name), str(info.value)
    assert isinstance(info.value, ValueError)
    # the kernel still works afterwards
    assert K(X).shape == (6, 6)


def test_non_contiguous_views_give_the_contiguous_answer():
    ref = K(X)
    np.testing.assert_array_equal(K(np.asfortranarray(X)), ref)
    np.testing.assert_array_equal(K(X.T.copy().T), ref)
    np.testing.assert_array_equal(K(X[::2]), K(np.ascontiguousarray(X[::2])))
    np.testing.assert_array_equal(K(X[::-1]), K(np.ascontiguousarray(X[::-1])))


def test_huge_and_tiny_magnitudes_give_finite_results():
    k = RBF(1.0)
    big = np.array([[1e300, 0.0], [-1e300, 1.0]])
    K_big = k(big)
    assert np.isfinite(K_big).all()
    np.testing.assert_allclose(np.diag(K_big), 1.0)
    tiny = np.array([[1e-300, 0.0], [2e-300, 0.0]])
    np.testing.assert_allclose(k(tiny), np.ones((2, 2)))
    assert np.isfinite(Matern(0.5, 1e-300)(np.array([[0.0], [1.0]]))).all()


def test_wrong_python_types_in_constructors():
    with pytest.raises((ie.InvalidInputError, TypeError)):
        RBF(1.0, variance="big")
    with pytest.raises(ie.InvalidInputError):
        RBF("wide")
