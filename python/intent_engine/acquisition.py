"""Acquisition functions over Gaussian (GP) posteriors and particle beliefs, computed in Rust.

Gaussian forms take the posterior ``mean`` and ``std`` (e.g. from
``GaussianProcess.predict(X, return_std=True)``) and maximise: ``ucb = mean + sqrt(beta) std``,
``expected_improvement``, its stable ``log_expected_improvement`` (equal to BoTorch's
``log_ei``), ``probability_of_improvement`` and ``thompson_sample``.

Particle forms take ``utilities`` (N particles x A actions) and ``weights`` (N,), and make no
Gaussian assumption; ``select_action`` returns the action of highest expected utility.
"""

from intent_engine._core import (
    expected_improvement,
    log_expected_improvement,
    particle_expected_improvement,
    particle_probability_of_improvement,
    particle_thompson_sample,
    particle_ucb,
    probability_of_improvement,
    select_action,
    thompson_sample,
    ucb,
)

__all__ = [
    "expected_improvement",
    "log_expected_improvement",
    "particle_expected_improvement",
    "particle_probability_of_improvement",
    "particle_thompson_sample",
    "particle_ucb",
    "probability_of_improvement",
    "select_action",
    "thompson_sample",
    "ucb",
]
