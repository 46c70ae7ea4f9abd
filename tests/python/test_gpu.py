"""GPU-capable entry points (issue 8): backend="cpu" | "cuda" | "auto".

Without a usable CUDA device (no `gpu` feature in the wheel, no driver, no GPU) the tests
check that "cuda" raises BackendUnavailableError with the reason and that "auto" runs the CPU
path, equal to the CPU classes. The `gpu` tests compare the CUDA results with the CPU ones
to stated tolerances and are skipped, with the reason, where CUDA is unavailable.
"""

import numpy as np
import pytest

import intent_engine as ie

HAS_CUDA = ie.cuda_available()
REASON = ie.cuda_unavailable_reason()
gpu = pytest.mark.skipif(not HAS_CUDA, reason=f"no CUDA device: {REASON}")
no_gpu = pytest.mark.skipif(HAS_CUDA, reason="a CUDA device is present")

LS = [0.9, 1.4, 2.1]
GOALS = np.array([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.0]])


def data(n, seed=1):
    r = np.random.default_rng(seed)
    X = r.uniform(-3, 3, (n, 3))
    y = np.sin(X[:, 0]) + 0.5 * np.cos(2 * X[:, 1]) + 0.1 * r.uniform(-1, 1, n)
    return X, y


def walk():
    for t in range(25):
        yield [0.08 * t, 0.08 * t] if t < 12 else [0.96, 0.96 + 0.12 * (t - 11)]


def cpu_gp(X, y):
    return ie.GaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02).fit(X, y)


def test_reason_is_consistent_with_availability():
    assert isinstance(HAS_CUDA, bool)
    assert (REASON is None) == HAS_CUDA
    if REASON is not None:
        assert REASON.strip()


@no_gpu
def test_cuda_raises_backend_unavailable_with_the_reason():
    for make in (
        lambda b: ie.GpuGaussianProcess(ie.kernels.RBF(1.0), backend=b),
        lambda b: ie.GpuGoalInference(GOALS, backend=b),
    ):
        for b in ("cuda", "cuda:0"):
            with pytest.raises(ie.BackendUnavailableError) as e:
                make(b)
            assert isinstance(e.value, RuntimeError) and isinstance(e.value, ie.IntentEngineError)
            assert REASON in str(e.value)
        assert make("auto").backend == "cpu"
    # The default backend is "cuda".
    with pytest.raises(ie.BackendUnavailableError):
        ie.GpuGaussianProcess(ie.kernels.RBF(1.0))
    with pytest.raises(ie.BackendUnavailableError):
        ie.GpuGoalInference(GOALS)


def test_bad_arguments_are_invalid_input():
    with pytest.raises(ie.InvalidInputError, match="backend"):
        ie.GpuGaussianProcess(ie.kernels.RBF(1.0), backend="tpu")
    with pytest.raises(ie.InvalidInputError, match="backend"):
        ie.GpuGoalInference(GOALS, backend="cuda:x")
    with pytest.raises(ie.InvalidInputError, match="RBF"):
        ie.GpuGaussianProcess(ie.kernels.Matern(1.5), backend="cpu")
    with pytest.raises(ie.InvalidInputError, match="noise_variance"):
        ie.GpuGaussianProcess(ie.kernels.RBF(1.0), 0.0, backend="cpu")
    for b in ("cpu", "auto"):
        g = ie.GpuGaussianProcess(ie.kernels.RBF([1.0, 1.0]), backend=b)
        with pytest.raises(ie.InvalidInputError, match="not fitted"):
            g.predict(np.zeros((2, 2)))
        with pytest.raises(ie.InvalidInputError, match="length scales"):
            g.fit(np.zeros((4, 3)), np.zeros(4))
        with pytest.raises(ie.InvalidInputError):
            g.fit(np.full((4, 2), np.nan), np.zeros(4))
        g.fit(np.random.default_rng(0).normal(size=(8, 2)), np.zeros(8))
        with pytest.raises(ie.InvalidInputError):
            g.predict(np.zeros((2, 3)))
        with pytest.raises(ie.InvalidInputError, match="trace"):
            g.optimize(2, trace="lanczos")
        with pytest.raises(ie.InvalidInputError, match="lr"):
            g.optimize(2, lr=-1.0)
        with pytest.raises(ie.InvalidInputError, match="probes"):
            g.optimize(2, trace="hutchinson", probes=0)
        f = ie.GpuGoalInference(GOALS, backend=b)
        with pytest.raises(ie.InvalidInputError):
            f.update([np.nan, 0.0])


def test_cpu_backend_equals_the_cpu_classes():
    """backend="cpu" (and "auto" without a GPU) is the CPU code: equal to GaussianProcess and
    GoalInference up to rounding (1e-12 relative)."""
    X, y = data(300)
    Xs = data(50, seed=2)[0]
    g = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02, backend="cpu").fit(X, y)
    assert g.backend == "cpu" and g.n_observations == 300
    c = cpu_gp(X, y)
    np.testing.assert_allclose(g.log_marginal_likelihood(), c.log_marginal_likelihood(), rtol=1e-12)
    lml, grad = g.log_marginal_likelihood_gradient()
    lml_c, grad_c = c.log_marginal_likelihood(eval_gradient=True)
    np.testing.assert_allclose(lml, lml_c, rtol=1e-12)
    np.testing.assert_allclose(grad, grad_c, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(g.theta, np.log([1.3, *LS, 0.02]), rtol=1e-14)
    m, v = g.predict(Xs, return_var=True)
    mc, vc = c.predict(Xs, return_var=True)
    np.testing.assert_allclose(m, mc, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v, vc, rtol=1e-10, atol=1e-12)
    _, s = g.predict(Xs, return_std=True, include_noise=True)
    np.testing.assert_allclose(s, np.sqrt(vc + 0.02), rtol=1e-10)

    # Adam raises the likelihood and leaves the model refitted at the final hyperparameters.
    lmls = g.optimize(15, 0.05)
    assert lmls.shape == (15,) and lmls[-1] > lmls[0]
    after = g.log_marginal_likelihood()
    assert after > lmls[0]
    k = g.kernel
    c2 = ie.GaussianProcess(k, g.noise_variance).fit(X, y)
    np.testing.assert_allclose(after, c2.log_marginal_likelihood(), rtol=1e-12)

    f = ie.GpuGoalInference(GOALS, n_particles=3000, seed=5, backend="cpu")
    cf = ie.GoalInference(GOALS, n_particles=3000, seed=5)
    assert f.backend == "cpu" and f.n_goals == 4 and f.n_particles == 3000
    for z in walk():
        assert f.update(z) == cf.update(z)
        np.testing.assert_array_equal(f.goal_probabilities(), cf.goal_probabilities())
        assert f.effective_sample_size() == cf.effective_sample_size()
    assert f.log_likelihood == cf.log_likelihood


@no_gpu
def test_auto_without_cuda_is_the_cpu_path():
    X, y = data(120)
    a = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02, backend="auto").fit(X, y)
    assert a.backend == "cpu"
    np.testing.assert_allclose(a.predict(X[:5]), cpu_gp(X, y).predict(X[:5]), rtol=1e-12, atol=1e-12)
    f = ie.GpuGoalInference(GOALS, n_particles=500, seed=2, backend="auto")
    cf = ie.GoalInference(GOALS, n_particles=500, seed=2)
    for z in walk():
        f.update(z)
        cf.update(z)
    np.testing.assert_array_equal(f.goal_probabilities(), cf.goal_probabilities())


@gpu
def test_auto_with_cuda_is_the_gpu():
    assert ie.GpuGaussianProcess(ie.kernels.RBF(1.0), backend="auto").backend == "cuda:0"
    assert ie.GpuGoalInference(GOALS, backend="auto").backend == "cuda:0"
    with pytest.raises(ie.BackendUnavailableError, match="99"):
        ie.GpuGaussianProcess(ie.kernels.RBF(1.0), backend="cuda:99")


@gpu
def test_gpu_gp_matches_cpu():
    """float64 on both sides: LML to 1e-9 relative, gradient to 1e-8 of its largest entry,
    predictive means and variances to 1e-9 absolute (10,000 test points: three chunks)."""
    X, y = data(2000)
    Xs = data(10_000, seed=3)[0]
    g = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02).fit(X, y)
    c = cpu_gp(X, y)
    assert g.backend == "cuda:0"
    lml_c, grad_c = c.log_marginal_likelihood(eval_gradient=True)
    np.testing.assert_allclose(g.log_marginal_likelihood(), lml_c, rtol=1e-9)
    lml, grad = g.log_marginal_likelihood_gradient()
    np.testing.assert_allclose(lml, lml_c, rtol=1e-9)
    np.testing.assert_allclose(grad, grad_c, rtol=0, atol=1e-8 * np.abs(grad_c).max())
    m, v = g.predict(Xs, return_var=True)
    mc, vc = c.predict(Xs, return_var=True)
    np.testing.assert_allclose(m, mc, rtol=0, atol=1e-9)
    np.testing.assert_allclose(v, vc, rtol=0, atol=1e-9)
    _, vn = g.predict(Xs[:100], return_var=True, include_noise=True)
    np.testing.assert_allclose(vn, vc[:100] + 0.02, rtol=0, atol=1e-9)


@gpu
def test_gpu_adam_matches_cpu_adam():
    """Same Adam, exact gradients: the LML trajectories agree to 1e-7 relative and the final
    θ to 1e-6; Hutchinson-trace Adam also climbs (its LML values are exact)."""
    X, y = data(800)
    g = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02).fit(X, y)
    c = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02, backend="cpu").fit(X, y)
    lg, lc = g.optimize(10, 0.05), c.optimize(10, 0.05)
    np.testing.assert_allclose(lg, lc, rtol=1e-7)
    np.testing.assert_allclose(g.theta, c.theta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(g.log_marginal_likelihood(), c.log_marginal_likelihood(), rtol=1e-9)
    h = ie.GpuGaussianProcess(ie.kernels.RBF(LS, 1.3), 0.02).fit(X, y)
    lh = h.optimize(10, 0.05, trace="hutchinson", probes=8, seed=1)
    assert lh[-1] > lh[0]
    np.testing.assert_allclose(lh[0], lg[0], rtol=1e-9)


@gpu
def test_gpu_goal_inference_matches_cpu():
    """Same model, different random streams (float32 particles): goal posteriors within 0.03
    absolute at every step (Monte Carlo error of 2*10^5 particles), log Z within 0.5 + 1 %."""
    f = ie.GpuGoalInference(GOALS, n_particles=200_000, seed=3)
    cf = ie.GoalInference(GOALS, n_particles=200_000, seed=3, threads=0)
    assert f.backend == "cuda:0"
    for z in walk():
        assert f.update(z) in ("ok", "resampled", "reinitialised")
        cf.update(z)
        np.testing.assert_allclose(f.goal_probabilities(), cf.goal_probabilities(), rtol=0, atol=0.03)
        assert 0 < f.effective_sample_size() <= 200_000
    assert abs(f.log_likelihood - cf.log_likelihood) < 0.5 + 0.01 * abs(cf.log_likelihood)
    assert f.goal_probabilities()[1] > 0.8
