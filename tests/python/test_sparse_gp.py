"""SparseGaussianProcess: the bound and predictions against a dense NumPy closed form,
against scikit-learn's exact GP when every training point is an inducing point, 1-D/2-D
target handling, optimisation, determinism, and bad input."""

import numpy as np
import pytest

import intent_engine as ie
from intent_engine._core import SparseGaussianProcess
from intent_engine.kernels import RBF, Matern, White


def data(n, d=2, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, d))
    cols = [np.sin(X[:, 0] * (1 + j)) + 0.5 * np.cos(X.sum(1)) for j in range(k or 1)]
    y = np.stack(cols, 1) + 0.1 * rng.normal(size=(n, k or 1))
    return X, (y[:, 0] if k is None else y)


def dense_reference(kernel, s2, X, y, Z, jitter, Xs):
    """Titsias' bound and the SGPR predictive mean/variance from the closed forms."""
    Y = y.reshape(len(X), -1)
    n, k = Y.shape
    Kmm = kernel(Z) + jitter * np.eye(len(Z))
    Kmn = kernel(Z, X)
    Qnn = Kmn.T @ np.linalg.solve(Kmm, Kmn)
    C = Qnn + s2 * np.eye(n)
    _, logdet = np.linalg.slogdet(C)
    fit = np.sum(Y * np.linalg.solve(C, Y))
    bound = -0.5 * fit - 0.5 * k * logdet - 0.5 * k * n * np.log(2 * np.pi)
    bound -= k * (kernel.diag(X).sum() - np.trace(Qnn)) / (2 * s2)
    Ksm = kernel(Xs, Z)
    mean = Ksm @ np.linalg.solve(s2 * Kmm + Kmn @ Kmn.T, Kmn @ Y)
    var = (
        kernel.diag(Xs)
        - np.sum(Ksm * np.linalg.solve(Kmm, Ksm.T).T, 1)
        + np.sum(Ksm * np.linalg.solve(Kmm + Kmn @ Kmn.T / s2, Ksm.T).T, 1)
    )
    return bound, mean, np.maximum(var, 0.0)


@pytest.mark.parametrize("k", [None, 1, 3])
@pytest.mark.parametrize("kind", ["rbf", "matern+white"])
def test_matches_dense_reference(k, kind):
    n, m = 60, 9
    X, y = data(n, k=k, seed=1)
    Z = np.random.default_rng(2).uniform(-2, 2, size=(m, 2))
    Xs = np.random.default_rng(3).uniform(-2, 2, size=(25, 2))
    kernel = RBF([0.7, 1.3], variance=1.2) if kind == "rbf" else Matern(2.5, 0.9) + White(0.05)
    s2 = 0.05
    gp = SparseGaussianProcess(kernel, s2, inducing=Z).fit(X, y)
    np.testing.assert_array_equal(gp.inducing_points, Z)
    bound, mean, var = dense_reference(kernel, s2, X, y, Z, gp.jitter, Xs)
    # O(n) round-off in the bound (|F| ~ 1e2); predictions are O(1).
    assert gp.log_marginal_likelihood() == pytest.approx(bound, rel=1e-12 * n)
    mu, std, v = gp.predict(Xs, return_std=True, return_var=True)
    shape = (25,) if k is None else (25, k)
    assert mu.shape == std.shape == v.shape == shape
    np.testing.assert_allclose(mu, mean.reshape(shape), rtol=0, atol=1e-9)
    np.testing.assert_allclose(v, np.broadcast_to(var[:, None], (25, k or 1)).reshape(shape), atol=1e-9)
    np.testing.assert_allclose(std, np.sqrt(v), rtol=1e-15)
    np.testing.assert_array_equal(gp.predict(Xs), mu)
    _, vn = gp.predict(Xs, return_var=True, include_noise=True)
    np.testing.assert_allclose(vn - v, s2, atol=1e-12)


@pytest.mark.parametrize("normalize_y", [False, True])
def test_inducing_at_data_equals_sklearn_exact_gp(normalize_y):
    gpr = pytest.importorskip("sklearn.gaussian_process")
    skk = pytest.importorskip("sklearn.gaussian_process.kernels")
    n, s2 = 40, 0.1
    X, y = data(n, seed=4)
    y = 3.0 * y + 2.0
    Xs = np.random.default_rng(5).uniform(-2, 2, size=(30, 2))
    ours = SparseGaussianProcess(
        RBF([0.8, 1.1], variance=1.5), s2, normalize_y=normalize_y, inducing=X
    ).fit(X, y)
    ref = gpr.GaussianProcessRegressor(
        skk.ConstantKernel(1.5) * skk.RBF([0.8, 1.1]),
        alpha=s2,
        optimizer=None,
        normalize_y=normalize_y,
    ).fit(X, y)
    # Z = X makes the bound exact up to the jitter eps on K(Z, Z): O(n eps / s2).
    tol = 10 * n * ours.jitter / s2
    lml = ref.log_marginal_likelihood_value_
    assert ours.log_marginal_likelihood() <= lml + 1e-9 * abs(lml)
    assert ours.log_marginal_likelihood() == pytest.approx(lml, abs=tol)
    mu, std = ours.predict(Xs, return_std=True)
    mu_ref, std_ref = ref.predict(Xs, return_std=True)
    scale = np.std(y)
    np.testing.assert_allclose(mu, mu_ref, atol=1e-5 * scale)
    np.testing.assert_allclose(std, std_ref, atol=1e-4 * scale)


def test_optimize_increases_bound():
    X, y = data(150, seed=6)
    gp = SparseGaussianProcess(RBF(3.0, variance=0.2), 0.5, n_inducing=20, inducing="greedy")
    before = gp.fit(X, y).log_marginal_likelihood()
    after = gp.optimize()
    assert after > before + 10
    assert after == gp.log_marginal_likelihood()
    assert gp.noise_variance < 0.5
    assert gp.kernel != RBF(3.0, variance=0.2)
    assert gp.optimize(n_restarts=2, seed=1) >= after - 1e-6 * abs(after)


def test_shapes_properties_and_determinism():
    X, y = data(300, d=3, k=2, seed=7)
    gp = SparseGaussianProcess(Matern(1.5, [1.0, 1.0, 1.0]), n_inducing=40, seed=3)
    assert gp.inducing_points is None and gp.n_observations == 0 and gp.jitter is None
    assert gp.fit(X, y) is gp
    assert gp.n_observations == 300 and gp.inducing_points.shape == (40, 3)
    assert gp.predict(X[:5]).shape == (5, 2)
    again = SparseGaussianProcess(Matern(1.5, [1.0, 1.0, 1.0]), n_inducing=40, seed=3, threads=1)
    again.fit(X, y)
    np.testing.assert_array_equal(gp.inducing_points, again.inducing_points)
    np.testing.assert_array_equal(gp.predict(X[:50]), again.predict(X[:50]))
    other = SparseGaussianProcess(Matern(1.5, [1.0, 1.0, 1.0]), n_inducing=40, seed=4).fit(X, y)
    assert not np.array_equal(gp.inducing_points, other.inducing_points)
    # n_inducing is clamped to n; a list is accepted for X and y.
    small = SparseGaussianProcess(RBF(1.0), n_inducing=256).fit([[0.0], [1.0], [2.0]], [1.0, 2.0, 3.0])
    assert small.inducing_points.shape == (3, 1)
    assert small.predict([[0.5]]).shape == (1,)
    assert "SparseGaussianProcess(" in repr(small)


def test_normalize_y_maps_back():
    X, y = data(80, seed=8)
    Xs = np.random.default_rng(9).uniform(-2, 2, size=(10, 2))
    a = SparseGaussianProcess(RBF(1.0), 0.05, normalize_y=True, inducing="greedy").fit(X, y)
    b = SparseGaussianProcess(RBF(1.0), 0.05, normalize_y=True, inducing="greedy").fit(X, 10 * y + 5)
    ma, va = a.predict(Xs, return_var=True)
    mb, vb = b.predict(Xs, return_var=True)
    np.testing.assert_allclose(mb, 10 * ma + 5, atol=1e-9)
    np.testing.assert_allclose(vb, 100 * va, atol=1e-9)


X, Y = data(20, seed=10)
K = RBF([1.0, 1.0])


def fitted():
    return SparseGaussianProcess(K, n_inducing=5).fit(X, Y)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: SparseGaussianProcess(K, 0.0), "noise_variance"),
        (lambda: SparseGaussianProcess(K, float("nan")), "noise_variance"),
        (lambda: SparseGaussianProcess(K, n_inducing=0), "n_inducing"),
        (lambda: SparseGaussianProcess(K, n_inducing=-3), "n_inducing"),
        (lambda: SparseGaussianProcess(K, inducing="random"), "inducing"),
        (lambda: SparseGaussianProcess(K, inducing=np.ones(3)), "inducing"),
        (lambda: SparseGaussianProcess(K, seed=-1), "seed"),
        (lambda: SparseGaussianProcess(K, threads=-1), "threads"),
        (lambda: SparseGaussianProcess(K).fit(X[:, 0], Y), "X"),
        (lambda: SparseGaussianProcess(K).fit(X[:, :1], Y), "X"),  # ARD needs 2 columns
        (lambda: SparseGaussianProcess(K).fit(np.empty((0, 2)), np.empty(0)), "X"),
        (lambda: SparseGaussianProcess(K).fit(np.where(X > 1.5, np.nan, X), Y), "X"),
        (lambda: SparseGaussianProcess(K).fit(X, Y[:-1]), "y"),
        (lambda: SparseGaussianProcess(K).fit(X, np.where(Y > 0.5, np.inf, Y)), "y"),
        (lambda: SparseGaussianProcess(K).fit(X, Y[:, None, None]), "y"),
        (lambda: SparseGaussianProcess(K).fit(X, Y.astype(np.int64)), "y"),
        (lambda: SparseGaussianProcess(K, inducing=np.ones((4, 3))).fit(X, Y), "Z"),
        (lambda: SparseGaussianProcess(K, inducing=np.full((4, 2), np.nan)).fit(X, Y), "Z"),
        (lambda: SparseGaussianProcess(K).predict(X), "model"),
        (lambda: SparseGaussianProcess(K).log_marginal_likelihood(), "model"),
        (lambda: SparseGaussianProcess(K).optimize(), "model"),
        (lambda: fitted().predict(X[:, :1]), "X"),
        (lambda: fitted().predict(np.full((2, 2), np.nan)), "X"),
        (lambda: fitted().optimize(n_restarts=-1), "n_restarts"),
    ],
)
def test_bad_input_raises_invalid_input(call, name):
    with pytest.raises(ie.InvalidInputError, match=f"^{name}:"):
        call()


def test_failed_fit_leaves_model_usable():
    gp = fitted()
    before = gp.predict(X[:3])
    with pytest.raises(ie.InvalidInputError):
        gp.fit(X, Y[:-1])
    np.testing.assert_array_equal(gp.predict(X[:3]), before)


def test_pickle_and_json_round_trip():
    import pickle

    rng = np.random.default_rng(5)
    X = rng.uniform(-2, 2, size=(120, 2))
    y = np.sin(X[:, 0]) + 0.1 * X[:, 1]
    sgp = ie.SparseGaussianProcess(RBF(1.0), noise_variance=1e-2, n_inducing=12, normalize_y=True).fit(X, y)
    Xs = rng.uniform(-2, 2, size=(10, 2))
    for back in (pickle.loads(pickle.dumps(sgp)), ie.SparseGaussianProcess.from_json(sgp.to_json())):
        np.testing.assert_allclose(back.predict(Xs), sgp.predict(Xs), rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(back.inducing_points, sgp.inducing_points)
    with pytest.raises(ie.InvalidInputError, match="model"):
        ie.SparseGaussianProcess(RBF(1.0)).to_json()
