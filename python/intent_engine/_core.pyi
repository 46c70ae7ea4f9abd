"""Type stubs for the native module ``intent_engine._core`` (checked by ``mypy.stubtest``)."""

from typing import Any, Optional, Sequence, Tuple, Union, final

import numpy as np
import numpy.typing as npt
from typing_extensions import disjoint_base

__version__: str
__all__ = [
    "BackendUnavailableError",
    "Constant",
    "IntentEngineError",
    "InvalidInputError",
    "Kernel",
    "Linear",
    "Matern",
    "NumericalError",
    "Periodic",
    "Product",
    "RBF",
    "RationalQuadratic",
    "Sum",
    "White",
    "__version__",
    "cuda_available",
    "default_scenario_json",
    "simd_level",
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
