"""GaussianProcess against scikit-learn's GaussianProcessRegressor, streaming against refits,
fitting, samples, pickling and bad input."""

import pickle

import numpy as np
import pytest

import intent_engine as ie
from intent_engine import GaussianProcess
from intent_engine.kernels import RBF, Matern, White

gp_sk = pytest.importorskip("sklearn.gaussian_process")
K = pytest.importorskip("sklearn.gaussian_process.kernels")


def data(rng, n, d, m=None):
    X = rng.uniform(-3, 3, size=(n, d))
    f = np.sin(X[:, 0]) + 0.3 * X.sum(axis=1)
    y = f + 0.05 * rng.normal(size=n)
    if m:
        y = np.stack([y * (o + 1) + o for o in range(m)], axis=1)
    return X, y


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))


PAIRS = [
    (lambda: RBF([0.8, 1.5, 2.0], variance=1.7),
     lambda: K.ConstantKernel(1.7, "fixed") * K.RBF([0.8, 1.5, 2.0], "fixed")),
    (lambda: Matern(2.5, 1.1, 0.9), lambda: K.ConstantKernel(0.9, "fixed") * K.Matern(1.1, "fixed", nu=2.5)),
    (lambda: Matern(1.5, [0.7, 1.0, 1.3], 1.2),
     lambda: K.ConstantKernel(1.2, "fixed") * K.Matern([0.7, 1.0, 1.3], "fixed", nu=1.5)),
    (lambda: Matern(0.5, 1.0, 1.0), lambda: K.ConstantKernel(1.0, "fixed") * K.Matern(1.0, "fixed", nu=0.5)),
]


@pytest.mark.parametrize("n", [1, 50, 400, 2000])
@pytest.mark.parametrize("normalize_y", [False, True])
def test_matches_sklearn_with_fixed_hyperparameters(rng, n, normalize_y):
    X, y = data(rng, n, 3)
    Xs = rng.uniform(-3.5, 3.5, size=(200, 3))
    pairs = PAIRS if n <= 400 else PAIRS[:2]
    for ours_k, sk_k in pairs:
        ours = GaussianProcess(ours_k(), noise_variance=1e-2, normalize_y=normalize_y).fit(X, y)
        ref = gp_sk.GaussianProcessRegressor(sk_k(), alpha=1e-2, optimizer=None, normalize_y=normalize_y).fit(X, y)
        m1, s1 = ours.predict(Xs, return_std=True)
        m2, s2 = ref.predict(Xs, return_std=True)
        assert m1.shape == m2.shape == (200,)
        assert rel(m1, m2) < 1e-8
        assert rel(s1, s2) < 1e-8
        assert rel(ours.log_marginal_likelihood(), ref.log_marginal_likelihood_value_) < 1e-8
        np.testing.assert_allclose(ours.predict(Xs), m1, rtol=1e-12, atol=1e-12 * np.abs(m1).max())


def test_multi_output_and_covariance_match_sklearn(rng):
    X, y = data(rng, 80, 2, m=3)
    Xs = rng.uniform(-3, 3, size=(25, 2))
    ours = GaussianProcess(RBF(0.9, variance=1.3), noise_variance=0.05).fit(X, y)
    ref = gp_sk.GaussianProcessRegressor(K.ConstantKernel(1.3, "fixed") * K.RBF(0.9, "fixed"), alpha=0.05,
                                         optimizer=None).fit(X, y)
    m1, c1 = ours.predict(Xs, return_cov=True)
    m2, c2 = ref.predict(Xs, return_cov=True)
    assert m1.shape == (25, 3)
    assert rel(m1, m2) < 1e-8
    np.testing.assert_allclose(c1, c2[:, :, 0] if c2.ndim == 3 else c2, rtol=1e-7, atol=1e-10)
    assert rel(ours.log_marginal_likelihood(), ref.log_marginal_likelihood_value_) < 1e-8


def test_streaming_matches_refit(rng):
    X, y = data(rng, 700, 3)
    gp = GaussianProcess(Matern(2.5, 1.0), noise_variance=1e-3, max_observations=200).fit(X[:150], y[:150])
    for i in range(150, 700, 7):
        gp.add_observations(X[i:i + 7], y[i:i + 7])
    assert gp.n_observations == 200
    gp.remove_oldest(10)
    fresh = GaussianProcess(Matern(2.5, 1.0), noise_variance=1e-3).fit(X[510:], y[510:])
    Xs = rng.uniform(-3, 3, size=(50, 3))
    m1, s1 = gp.predict(Xs, return_std=True)
    m2, s2 = fresh.predict(Xs, return_std=True)
    assert rel(m1, m2) < 1e-8 and rel(s1, s2) < 1e-8
    assert gp.stats()["updates"] >= 560


def test_optimize_reaches_sklearn_likelihood(rng):
    X, y = data(rng, 150, 2)
    start = [1.0, 1.0]
    ref = gp_sk.GaussianProcessRegressor(K.ConstantKernel(1.0) * K.RBF(start), alpha=1e-2, n_restarts_optimizer=0,
                                         random_state=0).fit(X, y)
    ours = GaussianProcess(RBF(start, variance=1.0), noise_variance=1e-2).fit(X, y)
    lml = ours.optimize(n_restarts=0, seed=0, optimize_noise=False)
    assert lml >= ref.log_marginal_likelihood_value_ - 1e-6 * abs(ref.log_marginal_likelihood_value_)
    assert lml == pytest.approx(ours.log_marginal_likelihood(), rel=1e-10)
    # fitting the noise too can only do better
    ours2 = GaussianProcess(RBF(start, variance=1.0), noise_variance=1e-2).fit(X, y)
    assert ours2.optimize(n_restarts=2, seed=1) >= lml - 1e-6


def test_lml_gradient_and_prediction_gradient(rng):
    X, y = data(rng, 60, 2)
    gp = GaussianProcess(RBF([1.0, 0.5], variance=2.0) + White(0.01), noise_variance=1e-3).fit(X, y)
    theta = np.append(gp.kernel.theta, np.log(gp.noise_variance))
    v, g = gp.log_marginal_likelihood(theta, eval_gradient=True)
    assert v == pytest.approx(gp.log_marginal_likelihood(), rel=1e-10)
    for q in range(len(theta)):
        e = np.zeros_like(theta)
        e[q] = 1e-5
        fd = (gp.log_marginal_likelihood(theta + e) - gp.log_marginal_likelihood(theta - e)) / 2e-5
        assert fd == pytest.approx(g[q], rel=1e-5, abs=1e-6)
    x0 = np.array([0.2, -0.1])
    dm, dv = gp.predict_gradient(x0)
    for c in range(2):
        e = np.zeros(2)
        e[c] = 1e-6
        mp, vp = gp.predict((x0 + e)[None], return_var=True)
        mm, vm = gp.predict((x0 - e)[None], return_var=True)
        assert (mp[0] - mm[0]) / 2e-6 == pytest.approx(dm[0, c], rel=1e-5, abs=1e-7)
        assert (vp[0] - vm[0]) / 2e-6 == pytest.approx(dv[0, c], rel=1e-5, abs=1e-7)


def test_samples_layout_and_seed(rng):
    X, y = data(rng, 30, 1)
    gp = GaussianProcess(RBF(1.0), noise_variance=1e-2).fit(X, y)
    Xs = np.linspace(-2, 2, 7)[:, None]
    s = gp.sample(Xs, n_samples=500, seed=3)
    assert s.shape == (7, 500)
    np.testing.assert_array_equal(s, gp.sample(Xs, 500, 3))
    mean, std = gp.predict(Xs, return_std=True)
    assert np.all(np.abs(s.mean(axis=1) - mean) < 5 * std / np.sqrt(500) + 1e-9)
    X2, Y2 = data(rng, 30, 1, m=2)
    s2 = GaussianProcess(RBF(1.0), noise_variance=1e-2).fit(X2, Y2).sample(Xs, 4, 0)
    assert s2.shape == (7, 2, 4)


def test_pickle_and_json_round_trip(rng):
    X, y = data(rng, 40, 2)
    gp = GaussianProcess(Matern(1.5, [1.0, 2.0]) + White(0.1), noise_variance=0.01, normalize_y=True,
                         max_observations=50).fit(X, y)
    Xs = rng.uniform(-3, 3, size=(10, 2))
    for back in (pickle.loads(pickle.dumps(gp)), GaussianProcess.from_json(gp.to_json())):
        np.testing.assert_allclose(back.predict(Xs), gp.predict(Xs), rtol=1e-10)
        assert back.n_observations == 40
    unfitted = pickle.loads(pickle.dumps(GaussianProcess(RBF(2.0), noise_variance=0.5)))
    assert unfitted.n_observations == 0 and unfitted.noise_variance == 0.5
    k = pickle.loads(pickle.dumps(RBF([1.0, 2.0], variance=3.0) * Matern(2.5, 0.5)))
    assert k == RBF([1.0, 2.0], variance=3.0) * Matern(2.5, 0.5)
    with pytest.raises(ie.InvalidInputError, match="json"):
        GaussianProcess.from_json('{"format": "x"}')


def test_bad_input(rng):
    X, y = data(rng, 20, 2)
    gp = GaussianProcess(RBF(1.0), noise_variance=0.1)
    with pytest.raises(ie.InvalidInputError, match="model"):
        gp.predict(X)
    gp.fit(X, y)
    before = gp.predict(X)
    bad = X[:3].copy()
    bad[1, 1] = np.nan
    cases = [
        (lambda: gp.add_observations(bad, y[:3]), "X"),
        (lambda: gp.add_observations(X[:3], y[:2]), "y"),
        (lambda: gp.add_observations(X[:3, :1], y[:3]), "X"),
        (lambda: gp.add_observations(X[:3].astype(int), y[:3]), "X"),
        (lambda: gp.predict(X[:, :1]), "X"),
        (lambda: gp.predict(X, return_std=True, return_cov=True), "return_std"),
        (lambda: gp.remove_oldest(-1), "k"),
        (lambda: gp.remove_oldest(21), "k"),
        (lambda: gp.fit(X, np.full(20, np.inf)), "y"),
        (lambda: gp.sample(X, n_samples=-2), "n_samples"),
        (lambda: gp.optimize(n_restarts=-1), "n_restarts"),
        (lambda: gp.log_marginal_likelihood([0.0]), "theta"),
        (lambda: gp.predict_gradient([0.0]), "x"),
        (lambda: GaussianProcess(RBF(1.0), noise_variance=-1.0), "noise_variance"),
        (lambda: GaussianProcess(RBF(1.0), max_observations=0), "max_observations"),
        (lambda: GaussianProcess(RBF(1.0), threads=-3), "threads"),
    ]
    for call, name in cases:
        with pytest.raises(ie.InvalidInputError) as info:
            call()
        assert str(info.value).startswith(name), str(info.value)
    assert gp.n_observations == 20
    np.testing.assert_array_equal(gp.predict(X), before)


def test_background_fit_while_streaming(rng):
    X, y = data(rng, 160, 2)
    gp = GaussianProcess(RBF([2.0, 2.0]), noise_variance=0.3).fit(X[:100], y[:100])
    before = gp.log_marginal_likelihood()
    fit = gp.optimize_in_background(n_restarts=1, seed=0)
    # the control loop keeps going while the fit runs
    for i in range(100, 160, 4):
        gp.add_observations(X[i:i + 4], y[i:i + 4])
        gp.predict(X[:1], return_std=True)
    gp.remove_oldest(10)
    fitted, lml = fit.result()
    assert fit.done()
    assert lml > before
    gp.adopt(fitted)
    assert gp.n_observations == 150
    fresh = GaussianProcess(gp.kernel, noise_variance=gp.noise_variance).fit(X[10:], y[10:])
    np.testing.assert_allclose(gp.predict(X[:20]), fresh.predict(X[:20]), rtol=1e-8, atol=1e-10)
    with pytest.raises(ie.InvalidInputError, match="fit"):
        fit.result()
