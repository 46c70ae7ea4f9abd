"""intent_engine: real-time human intent recognition for robots sharing space with people.

The compute cores are written in Rust; this package is a thin Python skin over them.

>>> import numpy as np, intent_engine as ie
>>> k = ie.kernels.RBF(length_scale=0.5, variance=2.0)
>>> k(np.zeros((2, 3))).shape
(2, 2)
"""

from intent_engine import acquisition, kernels
from intent_engine._core import (
    BackendUnavailableError,
    Decision,
    GaussianProcess,
    GoalInference,
    GpuGaussianProcess,
    GpuGoalInference,
    IntentEngine,
    IntentEngineError,
    InvalidInputError,
    LinearMPC,
    MetricsServer,
    MpcSolution,
    NumericalError,
    ParticleFilter,
    QpSolution,
    SparseGaussianProcess,
    __version__,
    cuda_available,
    cuda_unavailable_reason,
    default_scenario_json,
    double_integrator_model,
    multinomial_resample,
    prometheus_text,
    quadrotor_hover_model,
    rejection_resample,
    residual_resample,
    run_scenario,
    simd_level,
    solve_qp,
    solve_qp_solution,
    stratified_resample,
    systematic_resample,
)

__all__ = [
    "BackendUnavailableError",
    "Decision",
    "GaussianProcess",
    "GoalInference",
    "GpuGaussianProcess",
    "GpuGoalInference",
    "IntentEngine",
    "IntentEngineError",
    "InvalidInputError",
    "LinearMPC",
    "MetricsServer",
    "MpcSolution",
    "NumericalError",
    "ParticleFilter",
    "QpSolution",
    "SparseGaussianProcess",
    "__version__",
    "acquisition",
    "cuda_available",
    "cuda_unavailable_reason",
    "default_scenario_json",
    "double_integrator_model",
    "kernels",
    "multinomial_resample",
    "prometheus_text",
    "quadrotor_hover_model",
    "rejection_resample",
    "residual_resample",
    "run_scenario",
    "simd_level",
    "solve_qp",
    "solve_qp_solution",
    "stratified_resample",
    "systematic_resample",
]
