"""Type stubs for the native module ``intent_engine._core`` (checked by ``mypy.stubtest``)."""

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__version__: str
__all__ = [
    "BackendUnavailableError",
    "BackgroundFit",
    "Constant",
    "Decision",
    "GaussianProcess",
    "GoalInference",
    "GpuGaussianProcess",
    "GpuGoalInference",
    "IntentEngineError",
    "IntentEngine",
    "InvalidInputError",
    "Kernel",
    "Linear",
    "LinearMPC",
    "Matern",
    "MetricsServer",
    "MpcSolution",
    "NumericalError",
    "ParticleFilter",
    "Periodic",
    "Product",
    "QpSolution",
    "RBF",
    "RationalQuadratic",
    "SparseGaussianProcess",
    "Sum",
    "White",
    "__version__",
    "_goal_inference_from_state",
    "_gp_from_state",
    "_intent_engine_from_state",
    "_kernel_from_json",
    "_sparse_gp_from_json",
    "cuda_available",
    "cuda_unavailable_reason",
    "default_scenario_json",
    "double_integrator_model",
    "expected_improvement",
    "load_capacity",
    "load_test",
    "log_expected_improvement",
    "multinomial_resample",
    "particle_expected_improvement",
    "particle_probability_of_improvement",
    "particle_thompson_sample",
    "particle_ucb",
    "probability_of_improvement",
    "prometheus_text",
    "quadrotor_hover_model",
    "rejection_resample",
    "residual_resample",
    "replay_scene",
    "run_scenario",
    "select_action",
    "simd_level",
    "solve_qp",
    "solve_qp_solution",
    "stratified_resample",
    "systematic_resample",
    "thompson_sample",
    "ucb",
]

_ArrayLike = Union[npt.NDArray[np.floating[Any]], Sequence[Sequence[float]]]
_LengthScale = Union[float, Sequence[float], npt.NDArray[np.floating[Any]]]

class IntentEngineError(Exception):
    """Base class of every error raised by intent_engine."""

class InvalidInputError(IntentEngineError, ValueError):
    """Bad input: wrong shape or dtype, NaN/inf, or a setting out of range."""

class NumericalError(IntentEngineError, ArithmeticError):
    """A numerical failure on valid input (e.g. a matrix that is not positive definite)."""

class BackendUnavailableError(IntentEngineError, RuntimeError):
    """The requested compute backend is not compiled in or not present."""

def cuda_available() -> bool:
    """Whether a CUDA device can be used (built with the `gpu` feature and a device present)."""

def cuda_unavailable_reason() -> Optional[str]:
    """Why CUDA cannot be used, or None when device 0 opens."""

def default_scenario_json() -> str:
    """The embedded default scenario, as a JSON string."""

def simd_level() -> str:
    """The SIMD tier the hot loops use on this CPU: "avx512", "avx2" or "scalar"."""

@disjoint_base
class Kernel:
    """Base class of all kernels. Kernels are immutable; compose them with `+` and `*`."""

    def __call__(
        self,
        X1: _ArrayLike,
        X2: Optional[_ArrayLike] = None,
        *,
        out: Optional[npt.NDArray[np.float64]] = None,
        threads: int = 0,
    ) -> npt.NDArray[np.float64]:
        """The covariance matrix K(X1, X2), or K(X1, X1) when X2 is None."""
    def diag(self, X: _ArrayLike) -> npt.NDArray[np.float64]:
        """The diagonal k(x_i, x_i) of K(X, X), without forming the matrix."""
    def gradient(self, X: _ArrayLike, *, threads: int = 0) -> npt.NDArray[np.float64]:
        """Gradient of K(X, X) w.r.t. the log-hyperparameters, shape (n, n, n_params)."""
    @property
    def theta(self) -> npt.NDArray[np.float64]:
        """Log-hyperparameters (natural log), in the documented order."""
    def with_theta(self, theta: Union[npt.NDArray[np.floating[Any]], Sequence[float]]) -> Kernel:
        """A copy of this kernel with log-hyperparameters `theta`."""
    @property
    def n_params(self) -> int:
        """Number of hyperparameters."""
    @property
    def param_names(self) -> list[str]:
        """Names of the hyperparameters, in `theta` order."""
    @property
    def n_dims(self) -> Optional[int]:
        """Input dimension fixed by ARD length scales, or None."""
    def get_params(self) -> dict[str, float]:
        """Hyperparameter values (not logs) by name."""
    @property
    def operands(self) -> Optional[Tuple[Kernel, Kernel]]:
        """The operands (k1, k2) of a sum or product; None for a leaf kernel."""
    def to_json(self) -> str:
        """The kernel as JSON (data only)."""
    @staticmethod
    def from_json(json: str) -> Kernel:
        """Rebuilds a kernel from to_json() output."""
    def __add__(self, other: Union[Kernel, float], /) -> Kernel: ...
    def __radd__(self, other: Union[Kernel, float], /) -> Kernel: ...
    def __mul__(self, other: Union[Kernel, float], /) -> Kernel: ...
    def __rmul__(self, other: Union[Kernel, float], /) -> Kernel: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class RBF(Kernel):
    """Squared-exponential kernel variance * exp(-r^2 / 2), r scaled by (ARD) length scales."""

    def __new__(cls, length_scale: Optional[_LengthScale] = None, variance: float = 1.0) -> RBF: ...

@final
class Matern(Kernel):
    """Matern kernel with nu in {0.5, 1.5, 2.5} and (ARD) length scales."""

    def __new__(
        cls, nu: float = 1.5, length_scale: Optional[_LengthScale] = None, variance: float = 1.0
    ) -> Matern: ...

@final
class RationalQuadratic(Kernel):
    """Rational-quadratic kernel variance * (1 + r^2 / (2 alpha))^-alpha."""

    def __new__(
        cls, length_scale: Optional[_LengthScale] = None, alpha: float = 1.0, variance: float = 1.0
    ) -> RationalQuadratic: ...

@final
class Periodic(Kernel):
    """Periodic kernel variance * exp(-2 sin^2(pi |x - y| / period) / length_scale^2)."""

    def __new__(cls, length_scale: float = 1.0, period: float = 1.0, variance: float = 1.0) -> Periodic: ...

@final
class Linear(Kernel):
    """Linear kernel variance * x . y (add a Constant for an offset)."""

    def __new__(cls, variance: float = 1.0) -> Linear: ...

@final
class Constant(Kernel):
    """Constant kernel: value everywhere."""

    def __new__(cls, value: float = 1.0) -> Constant: ...

@final
class White(Kernel):
    """White noise: noise on the diagonal of K(X, X), zero between distinct sets."""

    def __new__(cls, noise: float = 1.0) -> White: ...

@final
class Sum(Kernel):
    """Sum of two kernels, k1 + k2."""

    def __new__(cls, k1: Kernel, k2: Kernel) -> Sum: ...

@final
class Product(Kernel):
    """Product of two kernels, k1 * k2."""

    def __new__(cls, k1: Kernel, k2: Kernel) -> Product: ...

_Targets = Union[npt.NDArray[np.floating[Any]], Sequence[float], Sequence[Sequence[float]]]

@final
class BackgroundFit:
    """A hyperparameter fit running in a background thread."""

    def done(self) -> bool:
        """Whether the fit has finished."""
    def result(self) -> Tuple[GaussianProcess, float]:
        """Waits for the fit; returns the refitted model and its log marginal likelihood."""

@final
class GaussianProcess:
    """Exact GP regression with a cached Cholesky factor and O(n^2) streaming updates."""

    def __new__(
        cls,
        kernel: Kernel,
        noise_variance: float = 1e-10,
        normalize_y: bool = False,
        max_observations: Optional[int] = None,
        *,
        capacity: int = 0,
        threads: int = 1,
    ) -> GaussianProcess: ...
    def fit(self, X: _ArrayLike, y: _Targets) -> GaussianProcess:
        """Fits the model to X (n, d) and y (n,) or (n, outputs); returns self."""
    def predict(
        self,
        X: _ArrayLike,
        return_std: bool = False,
        return_var: bool = False,
        return_cov: bool = False,
        include_noise: bool = False,
    ) -> Any:
        """Posterior mean, optionally with std, var or the full covariance."""
    def add_observations(self, X: _ArrayLike, y: _Targets) -> None:
        """Appends observations in O(n^2) each (no refactorisation)."""
    def remove_oldest(self, k: int) -> None:
        """Removes the k oldest observations in O(n^2 k)."""
    def log_marginal_likelihood(
        self, theta: Optional[Union[npt.NDArray[np.floating[Any]], Sequence[float]]] = None, eval_gradient: bool = False
    ) -> Any:
        """Log marginal likelihood (optionally at theta = [kernel theta..., ln noise], with gradient)."""
    def optimize(self, n_restarts: int = 0, seed: int = 0, optimize_noise: bool = True, max_iters: int = 200) -> float:
        """Fits hyperparameters by bounded multi-start L-BFGS; returns the log marginal likelihood."""
    def sample(self, X: _ArrayLike, n_samples: int = 1, seed: int = 0) -> npt.NDArray[np.float64]:
        """Seeded posterior samples of the latent f (scikit-learn's sample_y layout)."""
    def predict_gradient(
        self, x: Union[npt.NDArray[np.floating[Any]], Sequence[float]]
    ) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Gradients of the mean and latent variance w.r.t. one test input."""
    def optimize_in_background(
        self, n_restarts: int = 0, seed: int = 0, optimize_noise: bool = True, max_iters: int = 200
    ) -> BackgroundFit:
        """Starts a hyperparameter fit on a snapshot in a background thread."""
    def adopt(self, fitted: GaussianProcess) -> None:
        """Installs a background-fitted model, replaying updates made since the snapshot."""
    def refactorize(self) -> None:
        """Refactorises from scratch."""
    @property
    def n_observations(self) -> int:
        """Number of observations held."""
    @property
    def kernel(self) -> Kernel:
        """The kernel with the current hyperparameters."""
    @property
    def noise_variance(self) -> float:
        """The noise variance."""
    @property
    def jitter(self) -> float:
        """Diagonal jitter added by the last factorisation."""
    def stats(self) -> dict[str, float]:
        """Conditioning counters."""
    def to_json(self) -> str:
        """The model as JSON (data only)."""
    @staticmethod
    def from_json(json: str) -> GaussianProcess:
        """Rebuilds a model from to_json() output."""

def _gp_from_state(
    json: Optional[str],
    kernel: str,
    one_d: bool,
    noise_variance: float,
    normalize_y: bool = False,
    max_observations: Optional[int] = None,
) -> GaussianProcess: ...
def _kernel_from_json(json: str) -> Kernel: ...

@final
class SparseGaussianProcess:
    """Sparse Gaussian-process regression (Titsias' variational bound, SGPR/VFE) with inducing
    points: O(n m^2) to fit, O(m^2) per predicted point.

    `inducing` is "kmeans" (k-means++ seeded from `seed`, then up to `kmeans_iters` Lloyd
    iterations), "greedy" (greedy conditional-variance selection from the data) or an (m, d)
    array of inducing inputs (errors about it name `Z`). `n_inducing` is clamped to the number
    of (distinct) training points. Hyperparameter optimisation keeps the inducing inputs fixed.
    `threads`: 0 = all cores, 1 = the calling thread; results do not depend on it.
    """

    def __new__(
        cls,
        kernel: Kernel,
        noise_variance: float = 1e-2,
        normalize_y: bool = False,
        n_inducing: int = 256,
        inducing: Union[str, _ArrayLike, None] = None,
        seed: int = 0,
        *,
        kmeans_iters: int = 30,
        threads: int = 0,
    ) -> SparseGaussianProcess: ...
    def fit(self, X: _ArrayLike, y: _Targets) -> SparseGaussianProcess:
        """Chooses the inducing inputs, computes the posterior and returns self. `X` is (n, d);
        `y` is (n,) or (n, k) (k outputs sharing the kernel and noise)."""
    def predict(
        self,
        X: _ArrayLike,
        return_std: bool = False,
        return_var: bool = False,
        *,
        include_noise: bool = False,
    ) -> Any:
        """Predictive mean at X; with `return_std` / `return_var` also the standard deviation /
        variance of the latent function (plus the noise variance if `include_noise`). Returns
        `mean`, `(mean, std)`, `(mean, var)` or `(mean, std, var)`; each (n*,) for a model fitted
        on 1-D targets, else (n*, k)."""
    def log_marginal_likelihood(self) -> float:
        """The variational lower bound on the log marginal likelihood at the current
        hyperparameters (of the normalised targets when normalize_y is on)."""
    def optimize(self, n_restarts: int = 0, seed: int = 0) -> float:
        """Maximises the bound over the kernel's log-hyperparameters and the log noise variance
        (bounded L-BFGS, inducing inputs fixed), refits, and returns the new bound."""
    @property
    def inducing_points(self) -> Optional[npt.NDArray[np.float64]]:
        """The inducing inputs (m, d) chosen at fit (a copy), or None before fitting."""
    @property
    def n_observations(self) -> int:
        """Number of training points (0 before fitting)."""
    @property
    def noise_variance(self) -> float:
        """The Gaussian noise variance (in normalised units when normalize_y is on)."""
    @property
    def kernel(self) -> Kernel:
        """The kernel with the current hyperparameters (a copy)."""
    @property
    def jitter(self) -> Optional[float]:
        """The diagonal jitter added to K(Z, Z) at the last fit, or None before fitting."""
    def to_json(self) -> str:
        """The fitted model as JSON (data only)."""
    @staticmethod
    def from_json(json: str) -> SparseGaussianProcess:
        """Rebuilds a fitted model from to_json() output."""
def _sparse_gp_from_json(json: str) -> SparseGaussianProcess: ...

_Vector = Union[npt.NDArray[np.floating[Any]], Sequence[float]]
_Status = str

@final
class GoalInference:
    """Online Bayesian goal inference: a Rao-Blackwellised particle filter over a person
    walking toward one of K goals (rows of ``goals``: [x, y] points or [x, y, radius] discs).

    ``goal_prior``: K non-negative weights (normalised; default uniform), the initial goal
    probabilities and the distribution a switching person (``switch_prob``) draws from.
    ``forecast``: motion settings for ``predict`` and ``sample_trajectories`` only, a dict with
    keys among dt, speed, rationality, velocity_noise, switch_prob, velocity_model,
    slow_radius (missing keys: the filter's values), e.g. ``{"rationality": 0.1,
    "velocity_model": "heading"}`` to predict at each person's own speed."""

    def __new__(
        cls,
        goals: _ArrayLike,
        *,
        n_particles: int = 1000,
        dt: float = 0.1,
        seed: int = 0,
        speed: float = 1.2,
        obs_noise: float = 0.05,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        rationality: float = 1.0,
        velocity_noise: float = 0.5,
        switch_prob: float = 0.0,
        slow_radius: float = 0.5,
        velocity_model: str = "constant_speed",
        threads: int = 1,
        proposal: str = "bootstrap",
        goal_prior: Optional[_ArrayLike] = None,
        forecast: Optional[Mapping[str, Union[float, str]]] = None,
    ) -> GoalInference: ...
    def update(self, z: _Vector) -> _Status:
        """Assimilates an observed position [x, y]; returns "ok", "resampled" or "reinitialised"."""
    def goal_probabilities(self) -> npt.NDArray[np.float64]:
        """Posterior probability of each goal, shape (K,)."""
    def predict(self, horizon: int, *, seed: Optional[int] = None) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Predicted positions over steps 1..horizon: mean (H, 2) and covariance (H, 2, 2),
        simulated with the ``forecast`` motion settings when given (else the filter's)."""
    def sample_trajectories(self, horizon: int, n: int, *, seed: int = 0) -> npt.NDArray[np.float64]:
        """n sampled position trajectories, shape (n, horizon, 2)."""
    def effective_sample_size(self) -> float:
        """Effective sample size after the last update."""
    @property
    def log_likelihood(self) -> float:
        """Running log-likelihood estimate log Z of the observations so far."""
    @property
    def n_goals(self) -> int:
        """Number of goals."""
    def mean(self) -> npt.NDArray[np.float64]:
        """Posterior mean of [x, y, vx, vy]."""
    def __reduce__(self) -> Tuple[Callable[[str, int], GoalInference], Tuple[str, int]]: ...
    def covariance(self) -> npt.NDArray[np.float64]:
        """Posterior covariance of [x, y, vx, vy], shape (4, 4)."""
    def add_goal(self, goal: _Vector) -> None:
        """Adds a goal [x, y] or [x, y, radius] at run time."""
    def remove_goal(self, index: int) -> None:
        """Removes goal ``index``."""

def _goal_inference_from_state(state_json: str, predict_calls: int) -> GoalInference: ...

@final
class ParticleFilter:
    """A particle filter over a built-in model (see the static constructors)."""

    @staticmethod
    def linear_gaussian(
        A: _ArrayLike,
        Q: _ArrayLike,
        H: _ArrayLike,
        R: _ArrayLike,
        m0: _Vector,
        P0: _ArrayLike,
        *,
        n_particles: int = 1000,
        seed: int = 0,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        guided: bool = False,
        threads: int = 1,
    ) -> ParticleFilter:
        """x' = A x + N(0, Q), y = H x + N(0, R), x0 ~ N(m0, P0)."""
    @staticmethod
    def goal_directed(
        goals: _ArrayLike,
        init_mean: _Vector,
        init_std: _Vector,
        *,
        n_particles: int = 1000,
        dt: float = 0.1,
        seed: int = 0,
        speed: float = 1.2,
        obs_noise: float = 0.05,
        rationality: float = 1.0,
        velocity_noise: float = 0.5,
        switch_prob: float = 0.0,
        slow_radius: float = 0.5,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        threads: int = 1,
    ) -> ParticleFilter:
        """The goal-inference model; state [x, y, vx, vy, p(goal 0), ..., p(goal K-1)]."""
    @staticmethod
    def gp_motion(
        gp: GaussianProcess,
        init: _Vector,
        *,
        dt: float = 0.1,
        init_std: float = 0.1,
        extra_velocity_var: float = 0.01,
        obs_noise: float = 0.05,
        n_particles: int = 1000,
        seed: int = 0,
        resampling: str = "systematic",
        ess_threshold: float = 0.5,
        threads: int = 1,
    ) -> ParticleFilter:
        """Velocity field from a fitted GaussianProcess (position -> velocity); state [x, y]."""
    def step(self, y: _Vector) -> _Status:
        """Assimilates one observation; returns "ok", "resampled" or "reinitialised"."""
    def mean(self) -> npt.NDArray[np.float64]:
        """Weighted mean of the state."""
    def covariance(self) -> npt.NDArray[np.float64]:
        """Weighted covariance of the state, (d, d)."""
    def weights(self) -> npt.NDArray[np.float64]:
        """Normalised weights, (N,)."""
    def particles(self) -> npt.NDArray[np.float64]:
        """The particles, (N, d)."""
    def effective_sample_size(self) -> float:
        """Effective sample size after the last step."""
    @property
    def log_likelihood(self) -> float:
        """Running log-likelihood estimate log Z."""
    @property
    def n_particles(self) -> int:
        """Number of particles."""

def systematic_resample(weights: _Vector, seed: int = 0, n: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Systematic resampling: offspring indices (n defaults to len(weights))."""
def stratified_resample(weights: _Vector, seed: int = 0, n: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Stratified resampling: offspring indices."""
def residual_resample(weights: _Vector, seed: int = 0, n: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Residual resampling: offspring indices."""
def multinomial_resample(weights: _Vector, seed: int = 0, n: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Multinomial resampling: offspring indices."""
def rejection_resample(weights: _Vector, seed: int = 0, n: Optional[int] = None) -> npt.NDArray[np.int64]:
    """Rejection resampling (no prefix sum; GPU/f32-friendly): offspring indices."""
def ucb(mean: _Vector, std: _Vector, beta: float = 2.0) -> npt.NDArray[np.float64]:
    """Upper confidence bound mean + sqrt(beta) * std."""
def expected_improvement(mean: _Vector, std: _Vector, best: float, xi: float = 0.0) -> npt.NDArray[np.float64]:
    """Expected improvement over best + xi (maximisation) of a Gaussian posterior."""
def log_expected_improvement(mean: _Vector, std: _Vector, best: float, xi: float = 0.0) -> npt.NDArray[np.float64]:
    """log of the expected improvement, numerically stable where EI underflows."""
def probability_of_improvement(mean: _Vector, std: _Vector, best: float, xi: float = 0.0) -> npt.NDArray[np.float64]:
    """Probability of improvement over best + xi."""
def thompson_sample(mean: _Vector, std: _Vector, seed: int = 0) -> int:
    """Thompson sampling over independent Gaussian marginals: index of the best draw."""
def particle_ucb(utilities: _ArrayLike, weights: _Vector, beta: float = 2.0) -> npt.NDArray[np.float64]:
    """UCB of each action's utility under a particle belief: utilities (N, A), weights (N,)."""
def particle_expected_improvement(
    utilities: _ArrayLike, weights: _Vector, best: float, xi: float = 0.0
) -> npt.NDArray[np.float64]:
    """Expected improvement of each action under a particle belief."""
def particle_probability_of_improvement(
    utilities: _ArrayLike, weights: _Vector, best: float, xi: float = 0.0
) -> npt.NDArray[np.float64]:
    """Probability of improvement of each action under a particle belief."""
def particle_thompson_sample(utilities: _ArrayLike, weights: _Vector, seed: int = 0) -> int:
    """argmax of the utilities of one particle drawn in proportion to its weight."""
def select_action(utilities: _ArrayLike, weights: _Vector) -> Tuple[int, npt.NDArray[np.float64]]:
    """The action maximising expected utility under the belief: (index, expected utilities)."""

_Vec = Union[npt.NDArray[np.floating[Any]], Sequence[float]]
_F64 = npt.NDArray[np.float64]

@final
class QpSolution:
    @property
    def x(self) -> _F64: ...
    @property
    def z(self) -> _F64: ...
    @property
    def y(self) -> _F64: ...
    @property
    def z_box(self) -> _F64: ...
    @property
    def status(self) -> str: ...
    @property
    def found(self) -> bool: ...
    @property
    def iterations(self) -> int: ...
    @property
    def solve_time(self) -> float: ...
    @property
    def primal_residual(self) -> float: ...
    @property
    def dual_residual(self) -> float: ...
    @property
    def duality_gap(self) -> float: ...

def solve_qp(
    P: _ArrayLike,
    q: _Vec,
    G: Optional[_ArrayLike] = None,
    h: Optional[_Vec] = None,
    A: Optional[_ArrayLike] = None,
    b: Optional[_Vec] = None,
    lb: Optional[_Vec] = None,
    ub: Optional[_Vec] = None,
    eps: float = 1e-6,
) -> Optional[_F64]: ...
def solve_qp_solution(
    P: _ArrayLike,
    q: _Vec,
    G: Optional[_ArrayLike] = None,
    h: Optional[_Vec] = None,
    A: Optional[_ArrayLike] = None,
    b: Optional[_Vec] = None,
    lb: Optional[_Vec] = None,
    ub: Optional[_Vec] = None,
    eps: float = 1e-6,
    time_limit: Optional[float] = None,
) -> QpSolution: ...
def quadrotor_hover_model(dt: float) -> Tuple[_F64, _F64]: ...
def double_integrator_model(dim: int, dt: float) -> Tuple[_F64, _F64]: ...
@final
class MpcSolution:
    @property
    def u0(self) -> _F64: ...
    @property
    def u(self) -> _F64: ...
    @property
    def x(self) -> _F64: ...
    @property
    def status(self) -> str: ...
    @property
    def iterations(self) -> int: ...
    @property
    def solve_time(self) -> float: ...
    @property
    def max_violation(self) -> float: ...
    @property
    def primal_residual(self) -> float: ...
    @property
    def dual_residual(self) -> float: ...

@final
class LinearMPC:
    def __new__(
        cls,
        A: _ArrayLike,
        B: _ArrayLike,
        Q: _ArrayLike,
        R: _ArrayLike,
        horizon: int,
        P: Optional[_ArrayLike] = None,
        u_min: Optional[_Vec] = None,
        u_max: Optional[_Vec] = None,
        x_min: Optional[_Vec] = None,
        x_max: Optional[_Vec] = None,
        du_max: Optional[_Vec] = None,
        solver: str = "auto",
        eps: float = 1e-6,
        max_iter: int = 1000,
        time_limit: Optional[float] = None,
        *,
        keepout_soft: bool = True,
        keepout_penalty: float = 1e4,
        keepout_quadratic: float = 1.0,
        warm_start: bool = True,
    ) -> LinearMPC: ...
    def solve(
        self,
        x0: _Vec,
        x_ref: Optional[Union[_Vec, _ArrayLike]] = None,
        u_ref: Optional[Union[_Vec, _ArrayLike]] = None,
        u_prev: Optional[_Vec] = None,
    ) -> MpcSolution: ...
    def set_keepout(self, stage_normals: npt.NDArray[np.floating[Any]], stage_offsets: npt.NDArray[np.floating[Any]]) -> None: ...
    def solve_batch(
        self,
        x0s: _ArrayLike,
        x_ref: Optional[Union[_Vec, _ArrayLike]] = None,
        u_ref: Optional[Union[_Vec, _ArrayLike]] = None,
        stage_normals: Optional[npt.NDArray[np.floating[Any]]] = None,
        stage_offsets: Optional[npt.NDArray[np.floating[Any]]] = None,
        threads: int = 0,
    ) -> list[MpcSolution]: ...
    @property
    def solver(self) -> str: ...
    @property
    def terminal_cost(self) -> _F64: ...
    @property
    def horizon(self) -> int: ...

# --- intent pipeline -------------------------------------------------------------------

@final
class Decision:
    @property
    def t(self) -> float: ...
    @property
    def command(self) -> npt.NDArray[np.float64]: ...
    @property
    def fresh(self) -> bool: ...
    @property
    def fallback(self) -> Optional[str]: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def human(self) -> str: ...
    @property
    def goal_probabilities(self) -> npt.NDArray[np.float64]: ...
    @property
    def predicted_mean(self) -> npt.NDArray[np.float64]: ...
    @property
    def predicted_cov(self) -> npt.NDArray[np.float64]: ...
    @property
    def goal_means(self) -> npt.NDArray[np.float64]: ...
    @property
    def samples(self) -> npt.NDArray[np.float64]: ...
    @property
    def robot_plan(self) -> npt.NDArray[np.float64]: ...
    @property
    def separation(self) -> float: ...
    @property
    def protective_distance(self) -> float: ...
    @property
    def speed_limited(self) -> bool: ...
    @property
    def predicted_min_separation(self) -> float: ...
    @property
    def solver_status(self) -> str: ...
    @property
    def solver_iterations(self) -> int: ...
    @property
    def timings(self) -> dict[str, float]: ...

@final
class IntentEngine:
    def __new__(
        cls,
        goals: _ArrayLike,
        *,
        workspace: Tuple[float, float, float, float] = ...,  # (x_min, x_max, y_min, y_max), default (0, 10, 0, 10)
        robot: str = "double_integrator",
        max_accel: float = 1.5,
        max_speed: float = 1.0,
        max_turn_rate: float = 2.0,
        lookahead: float = 0.2,
        arm_base: Optional[_Vector] = None,
        arm_reach: float = 1.0,
        control_period: float = 0.01,
        plan_dt: float = 0.1,
        horizon: int = 20,
        observation_period: float = 0.01,
        n_particles: int = 1000,
        speed: float = 1.2,
        obs_noise: float = 0.05,
        switch_prob: float = 0.0,
        lost_after: float = 1.0,
        gp_residual: bool = False,
        min_separation: float = 0.5,
        human_speed: float = 1.6,
        reaction_time: float = 0.1,
        keepout: str = "chance",
        risk: float = 0.05,
        samples: int = 16,
        seed: int = 0,
        robot_goal: Optional[_Vector] = None,
        belief_budget: float = 0.0015,
        prediction_budget: float = 0.001,
        solve_budget: float = 0.002,
        step_budget: float = 0.004,
        telemetry: bool = True,
        goal_prior: Optional[_ArrayLike] = None,
        forecast: Optional[Mapping[str, Union[float, str]]] = None,
    ) -> IntentEngine: ...
    @staticmethod
    def default() -> IntentEngine: ...
    @staticmethod
    def from_scenario_json(text: str) -> IntentEngine: ...
    def step(self, observation: Optional[_Vector], robot_state: _Vector, t: float) -> Decision: ...
    def decision(self) -> Decision: ...
    def set_robot_goal(self, goal: _Vector) -> None: ...
    @property
    def robot_goal(self) -> Tuple[float, float]: ...
    @property
    def n_goals(self) -> int: ...
    def add_goal(self, goal: _Vector) -> None: ...
    def remove_goal(self, index: int) -> None: ...
    def reset(self) -> None: ...
    def counters(self) -> dict[str, int]: ...
    def __reduce__(self) -> Tuple[Callable[[str, Tuple[float, float]], IntentEngine], Tuple[str, Tuple[float, float]]]: ...
    def telemetry(self) -> dict[str, Any]:
        """Per-stage latency (seconds: count, sum, mean, min, p50, p95, p99, max, cumulative
        buckets) and event counters (fallbacks by reason, overruns by stage, solver statuses,
        resamplings, keep-out normal reuse, residual-GP jitter, ...)."""
    def set_telemetry(self, on: bool) -> None: ...
    def serve_metrics(self, port: int = 0) -> MetricsServer:
        """Serves ``/metrics`` (Prometheus text) on 127.0.0.1:port from a background thread;
        port 0 picks a free port (see ``MetricsServer.port``)."""

@final
class MetricsServer:
    """A running ``/metrics`` endpoint; ``stop()`` it or use it as a context manager."""

    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self) -> None: ...
    def __enter__(self) -> MetricsServer: ...
    def __exit__(self, *_args: object) -> bool: ...

def prometheus_text(engine: IntentEngine) -> str:
    """The engine's telemetry in the Prometheus text exposition format (version 0.0.4)."""

def _intent_engine_from_state(config_json: str, robot_goal: Tuple[float, float]) -> IntentEngine: ...
def load_test(
    engines: int,
    seconds: float,
    *,
    rate_hz: Optional[float] = None,
    deadline_ms: float = 10.0,
    threads: int = 0,
    scenario_json: Optional[str] = None,
) -> dict[str, Any]:
    """Drives `engines` engines at their control rate on `threads` threads (0 = every core)
    for `seconds` of wall time; returns throughput, latency percentiles and missed deadlines."""
def load_capacity(
    seconds: float,
    *,
    max_engines: int = 1024,
    rate_hz: Optional[float] = None,
    deadline_ms: float = 10.0,
    threads: int = 0,
    max_miss_fraction: float = 0.01,
    scenario_json: Optional[str] = None,
) -> dict[str, Any]:
    """The largest engine count that keeps missed deadlines within `max_miss_fraction`."""

def replay_scene(
    path: Union[str, "os.PathLike[str]"],
    *,
    goals: int = 3,
    min_frames: int = 8,
    max_tracks: Optional[int] = None,
    n_particles: int = 1000,
    seed: int = 0,
    rationality: float = 0.5,
    velocity_noise: float = 0.4,
    obs_noise: float = 0.1,
    switch_prob: float = 0.02,
    relaxed_budgets: bool = True,
) -> dict[str, Any]:
    """Replays one recorded ETH/UCY scene file through the engine; returns what it measured."""

def run_scenario(
    scenario_json: Optional[str] = None,
    progress: Optional[Callable[[int, int], object]] = None,
    *,
    relaxed_budgets: bool = False,
) -> dict[str, Any]: ...

@final
class GpuGaussianProcess:
    """Exact GP regression with an RBF-ARD kernel plus Gaussian noise for large n, on a CUDA
    device (float64, cuSOLVER Cholesky) or the CPU, with Adam hyperparameter fitting.

    ``backend``: "cuda" (device 0; "cuda:N" for device N) raises BackendUnavailableError with
    the reason when the module was built without the ``gpu`` feature or no device opens;
    "auto" takes CUDA when it opens and the CPU otherwise; "cpu" runs the same model on the CPU.
    """

    def __new__(cls, kernel: Kernel, noise_variance: float = 1e-2, *, backend: str = "cuda") -> GpuGaussianProcess: ...
    def fit(self, X: _ArrayLike, y: Union[npt.NDArray[np.floating[Any]], Sequence[float]]) -> GpuGaussianProcess:
        """Uploads X (n, d) and y (n,) and returns self (the factorisation happens lazily)."""
    def optimize(
        self, steps: int = 20, lr: float = 0.1, *, trace: str = "exact", probes: int = 8, seed: int = 0
    ) -> npt.NDArray[np.float64]:
        """Adam steps on theta; returns the log marginal likelihood at the start of each step."""
    def log_marginal_likelihood(self) -> float:
        """The exact log marginal likelihood of the data at the current hyperparameters."""
    def log_marginal_likelihood_gradient(self) -> Tuple[float, npt.NDArray[np.float64]]:
        """The log marginal likelihood and its exact gradient with respect to theta."""
    def predict(
        self, X: _ArrayLike, return_std: bool = False, return_var: bool = False, include_noise: bool = False
    ) -> Any:
        """Posterior mean at X; with return_std / return_var also the std or variance."""
    @property
    def backend(self) -> str:
        """Where the model runs: "cpu" or "cuda:N"."""
    @property
    def kernel(self) -> Kernel:
        """The RBF kernel at the current hyperparameters."""
    @property
    def noise_variance(self) -> float:
        """The noise variance."""
    @property
    def theta(self) -> npt.NDArray[np.float64]:
        """theta = [ln variance, ln length_scale..., ln noise_variance]."""
    @property
    def n_observations(self) -> int:
        """Number of training points (0 before fit)."""

@final
class GpuGoalInference:
    """The goal-inference particle filter of GoalInference for 10^5-10^7 particles on a CUDA
    device (float32 particles, float64 sums, systematic resampling from float64 prefix sums), or
    on the CPU. ``backend`` as for GpuGaussianProcess."""

    def __new__(
        cls,
        goals: _ArrayLike,
        *,
        n_particles: int = 1000,
        dt: float = 0.1,
        seed: int = 0,
        speed: float = 1.2,
        obs_noise: float = 0.05,
        ess_threshold: float = 0.5,
        rationality: float = 1.0,
        velocity_noise: float = 0.5,
        switch_prob: float = 0.0,
        slow_radius: float = 0.5,
        velocity_model: str = "constant_speed",
        threads: int = 1,
        backend: str = "cuda",
    ) -> GpuGoalInference: ...
    def update(self, z: _Vector) -> _Status:
        """Assimilates an observed position [x, y]; returns "ok", "resampled" or "reinitialised"."""
    def goal_probabilities(self) -> npt.NDArray[np.float64]:
        """Posterior probability of each goal, shape (K,)."""
    def effective_sample_size(self) -> float:
        """Effective sample size of the current weights (N right after resampling)."""
    @property
    def log_likelihood(self) -> float:
        """Running log-likelihood estimate log Z of the observations so far."""
    @property
    def n_goals(self) -> int:
        """Number of goals."""
    @property
    def n_particles(self) -> int:
        """Number of particles."""
    @property
    def backend(self) -> str:
        """Where the filter runs: "cpu" or "cuda:N"."""
