"""Covariance kernels (the inner loop of every GP), computed in Rust with SIMD and threads.

Each kernel is callable: ``k(X1, X2=None)`` returns the covariance matrix, ``k.diag(X)`` its
diagonal, ``k.gradient(X)`` the derivatives with respect to the log-hyperparameters
``k.theta``. Kernels compose with ``+`` and ``*`` (a number stands for ``Constant(number)``).

``RBF(l, v)`` equals scikit-learn's ``ConstantKernel(v) * RBF(l)``; ``Linear(v) + Constant(c)``
equals ``ConstantKernel(v) * DotProduct(sigma_0=sqrt(c / v))`` scaled accordingly.
"""

from intent_engine._core import (
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

__all__ = [
    "RBF",
    "Constant",
    "Kernel",
    "Linear",
    "Matern",
    "Periodic",
    "Product",
    "RationalQuadratic",
    "Sum",
    "White",
]
