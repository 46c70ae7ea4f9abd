"""Bad-input battery over every public entry point of the Python module (issue 9).

`SPECS` lists each entry point with a valid call; the battery derives the bad calls from it:
every array argument gets the `ARRAY_VARIANTS` (wrong ndim, empty, NaN/±inf, 1e±300, int /
bool / complex / object / float32 dtypes, wrong types, lists, non-contiguous, Fortran-order,
negative-stride and read-only arrays) and every scalar setting its listed bad values. Each bad
call must raise InvalidInputError (TypeError for a wrong Python type of a scalar, from the
argument conversion) naming the argument, never a PanicException, and leave the object as a
fresh one: its state (`state`) unchanged and the valid call afterwards giving the same answer
as on a fresh object. Accepted variants (float32, lists, strided, read-only) must give the
answer of the contiguous float64 input. `test_table_covers_every_public_entry_point` walks
the module so that a new public function without an entry here fails.
"""

import inspect

import numpy as np
import pytest

import intent_engine as ie
from hardening_util import (
    ARRAY_VARIANTS,
    GOALS,
    INF,
    NAN,
    XT,
    X,
    Y,
    _core,
    assert_same,
    attempt,
    canon,
    floats,
    is_panic,
    names_arg,
)
from intent_engine.kernels import RBF, Constant, Linear, Matern, Periodic, Product, RationalQuadratic, Sum, White


class Spec:
    """One entry point: `call(obj, **args)` with `obj = make()` (None for functions)."""

    def __init__(self, name, call, args=None, arrays=(), scalars=None, make=None, state=None,
                 optional=(), expect=None, check=None):
        self.name, self.call, self.args = name, call, dict(args or {})
        self.arrays, self.scalars = tuple(arrays), dict(scalars or {})
        self.make = make or (lambda: None)
        self.state = state or (lambda obj: None)
        self.optional = set(optional)
        self.expect = dict(expect or {})  # (arg, variant) or variant -> "err"|"same"|"finite"|"either"
        self.check = check

    def run(self, **over):
        obj = self.make()
        args = {**self.args, **over}
        return obj, attempt(lambda: self.call(obj, **args))

    def __repr__(self):
        return self.name


def m(method):
    """A spec call for a method: obj.method(**args)."""
    return lambda obj, **a: getattr(obj, method)(**a)


def f(fn):
    """A spec call for a function or static method: fn(**args)."""
    return lambda obj, **a: fn(**a)


def prop(name):
    return lambda obj: getattr(obj, name)


# -- objects in a used state ------------------------------------------------------------------


def gp():
    return ie.GaussianProcess(RBF([1.0, 1.0]), noise_variance=1e-2).fit(X[:6], Y[:6])


def gp_state(g):
    return canon(g)


def sgp():
    return ie.SparseGaussianProcess(RBF([1.0, 1.0]), noise_variance=1e-2, n_inducing=4, seed=1).fit(X, Y)


def gpu_gp():
    return ie.GpuGaussianProcess(RBF([1.0, 1.0]), 1e-2, backend="cpu").fit(X, Y)


def goal_inf():
    g = ie.GoalInference(GOALS, n_particles=200, seed=3)
    for i in range(3):
        g.update([0.6 + 0.05 * i, 0.5])
    return g


def goal_state(g):
    return canon((g.goal_probabilities(), g.mean(), g.covariance(), g.effective_sample_size(),
                  g.log_likelihood, g.n_goals))


def gpu_goal_inf():
    g = ie.GpuGoalInference(GOALS, n_particles=200, seed=3, backend="cpu")
    g.update([0.6, 0.5])
    return g


def gpu_goal_state(g):
    return canon((g.goal_probabilities(), g.effective_sample_size(), g.log_likelihood, g.n_goals))


A2 = np.array([[1.0, 0.1], [0.0, 1.0]])
LG = dict(A=A2, Q=0.01 * np.eye(2), H=np.eye(2), R=0.1 * np.eye(2), m0=np.zeros(2), P0=np.eye(2))


def pf():
    p = ie.ParticleFilter.linear_gaussian(**LG, n_particles=100, seed=2)
    p.step([0.1, 0.0])
    return p


def pf_state(p):
    return canon((p.particles(), p.weights(), p.log_likelihood, p.effective_sample_size()))


AD, BD = ie.double_integrator_model(2, 0.1)
MPC_ARGS = dict(A=AD, B=BD, Q=np.eye(4), R=0.1 * np.eye(2), horizon=8, u_min=-np.ones(2), u_max=np.ones(2))
X0 = np.array([1.0, -0.5, 0.2, 0.0])


def mpc():
    c = ie.LinearMPC(**MPC_ARGS)
    c.solve(X0)
    return c


def mpc_state(c):
    return canon((c.solver, c.horizon, c.terminal_cost))


ENGINE_GOALS = [[5.0, 3.2], [5.2, 0.8], [0.4, 3.6]]
RELAXED = dict(belief_budget=1.0, prediction_budget=1.0, solve_budget=1.0, step_budget=2.0)
ENGINE_ARGS = dict(goals=ENGINE_GOALS, workspace=(0.0, 6.0, 0.0, 4.0), n_particles=200, robot_goal=[1.0, 1.0],
                   horizon=10, samples=4, **RELAXED)
RSTATE = np.array([3.0, 3.0, 0.0, 0.0])


def engine():
    e = ie.IntentEngine(**ENGINE_ARGS)
    for i in range(1, 4):
        e.step([0.6 + 0.01 * i, 0.5], RSTATE, 0.01 * i)
    return e


def engine_state(e):
    return canon((e.decision(), e.counters(), e.robot_goal, e.n_goals))


def command_within_limits(d):
    if isinstance(d, ie.Decision):
        assert np.all(np.isfinite(d.command)) and np.all(np.abs(d.command) <= 1.5 + 1e-9), d.command


# -- the table --------------------------------------------------------------------------------

BAD_FLOAT = [NAN, INF, "a", None]
BAD_POS = [NAN, INF, -1.0, 0.0, "a", None]
BAD_NONNEG = [NAN, INF, -1.0, "a", None]
BAD_COUNT = [-1, "a", None, 1.5]
BAD_SEED = [-1, "a", 1.5]
BAD_THREADS = [-1, "a"]
KERN = RBF([1.0, 2.0])
UTIL = np.array([[1.0, 2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 2.0, 2.0], [1.0, 0.0, 1.0]])
W4 = np.array([0.1, 0.2, 0.3, 0.4])
MEAN3, STD3 = np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.5, 2.0])
QP = dict(P=np.array([[2.0, 0.5], [0.5, 1.0]]), q=np.array([-1.0, -1.0]), G=np.array([[1.0, 1.0]]),
          h=np.array([1.0]), A=np.array([[1.0, -1.0]]), b=np.array([0.0]), lb=np.array([-5.0, -5.0]),
          ub=np.array([5.0, 5.0]))
QP_ARRAYS = ("P", "q", "G", "h", "A", "b", "lb", "ub")
QP_OPT = ("G", "h", "A", "b", "lb", "ub")
BAD_JSON = ["", "{", "null", "[]", "{}", '{"format": "nope"}', 5, None]
SCEN = ie.default_scenario_json()

SPECS = []
# A query at no points answers with empty arrays (as NumPy and scikit-learn do).
EMPTY_QUERY = {"empty": "either"}


def spec(*a, **k):
    SPECS.append(Spec(*a, **k))


def kernel_specs():
    for cls, args, scalars in [
        (RBF, dict(length_scale=np.array([1.0, 2.0]), variance=1.5), dict(variance=BAD_POS)),
        (Matern, dict(nu=2.5, length_scale=np.array([1.0, 2.0]), variance=1.5),
         dict(nu=[NAN, 1.0, -0.5, "a", None], variance=BAD_POS)),
        (RationalQuadratic, dict(length_scale=np.array([1.0, 2.0]), alpha=2.0, variance=1.5),
         dict(alpha=BAD_POS, variance=BAD_POS)),
    ]:
        spec(f"{cls.__name__}.__new__", f(cls), args, arrays=["length_scale"], scalars=scalars,
             optional=["length_scale"],
             # a scalar is a valid length scale: the 0-d array of "ndim-1" is accepted
             expect={("length_scale", "ndim-1"): "either"})
    spec("Periodic.__new__", f(Periodic), dict(length_scale=1.0, period=2.0, variance=1.0),
         scalars=dict(length_scale=BAD_POS, period=BAD_POS, variance=BAD_POS))
    spec("Linear.__new__", f(Linear), dict(variance=2.0), scalars=dict(variance=BAD_POS))
    spec("Constant.__new__", f(Constant), dict(value=2.0), scalars=dict(value=BAD_POS))
    spec("White.__new__", f(White), dict(noise=0.5), scalars=dict(noise=BAD_POS))
    for cls in (Sum, Product):
        spec(f"{cls.__name__}.__new__", f(cls), dict(k1=RBF(1.0), k2=Constant(2.0)),
             scalars=dict(k1=[None, 1.0, "a"], k2=[None, "a"]))
    spec("Kernel.__new__", f(ie.kernels.Kernel), {}, scalars={})
    spec("Kernel.__call__", lambda k, **a: k(**a), dict(X1=X, X2=XT, threads=1), make=lambda: KERN,
         arrays=["X1", "X2"], scalars=dict(threads=BAD_THREADS), optional=["X2"])
    spec("Kernel.diag", m("diag"), dict(X=X), make=lambda: KERN, arrays=["X"])
    spec("Kernel.gradient", m("gradient"), dict(X=X, threads=1), make=lambda: KERN, arrays=["X"],
         scalars=dict(threads=BAD_THREADS))
    spec("Kernel.with_theta", m("with_theta"), dict(theta=np.array([0.1, 0.2, -0.3])), make=lambda: KERN,
         arrays=["theta"], expect={("theta", "1e300"): "err", ("theta", "1e-300"): "finite"})
    for q in ("get_params", "to_json", "__reduce__"):
        spec(f"Kernel.{q}", m(q), make=lambda: KERN)
    for p in ("theta", "n_params", "param_names", "n_dims", "operands"):
        spec(f"Kernel.{p}", lambda k, _p=p: getattr(k, _p), make=lambda: KERN + Constant(1.0))
    spec("Kernel.from_json", f(ie.kernels.Kernel.from_json), dict(json=KERN.to_json()),
         scalars=dict(json=BAD_JSON))
    for op in ("__add__", "__radd__", "__mul__", "__rmul__"):
        spec(f"Kernel.{op}", lambda k, _op=op, **a: getattr(k, _op)(a["other"]), dict(other=Constant(2.0)),
             make=lambda: KERN, scalars=dict(other=[NAN, -1.0, INF]))  # ARD mismatch: test_errors.py


def gp_specs():
    spec("GaussianProcess.__new__", f(ie.GaussianProcess), dict(kernel=KERN, noise_variance=1e-2),
         scalars=dict(kernel=[None, "rbf", 1.0], noise_variance=[NAN, INF, -1.0, "a"],
                      max_observations=[0, -1, "a"], capacity=[-1, "a"], threads=BAD_THREADS))
    st = dict(make=gp, state=gp_state)
    spec("GaussianProcess.fit", m("fit"), dict(X=X, y=Y), arrays=["X", "y"], **st,
         expect={("y", "ndim+1"): "err", ("y", "ndim-1"): "err"})
    spec("GaussianProcess.predict", m("predict"), dict(X=XT, return_std=True), arrays=["X"], **st,
         scalars=dict(return_cov=["a"]), expect=EMPTY_QUERY)
    spec("GaussianProcess.add_observations", m("add_observations"), dict(X=XT[:2], y=Y[:2]),
         arrays=["X", "y"], **st)
    spec("GaussianProcess.remove_oldest", m("remove_oldest"), dict(k=2), scalars=dict(k=[-1, 7, "a", None]), **st)
    spec("GaussianProcess.log_marginal_likelihood", m("log_marginal_likelihood"),
         dict(theta=np.array([0.1, 0.0, 0.2, -4.0]), eval_gradient=True), arrays=["theta"], optional=["theta"],
         expect={("theta", "1e300"): "err", ("theta", "1e-300"): "finite"}, **st)
    spec("GaussianProcess.optimize", m("optimize"), dict(n_restarts=0, seed=1, max_iters=5),
         scalars=dict(n_restarts=BAD_COUNT, seed=BAD_SEED, max_iters=[0, -1, "a"]), **st)
    spec("GaussianProcess.sample", m("sample"), dict(X=XT, n_samples=3, seed=2), arrays=["X"],
         scalars=dict(n_samples=[-1, "a"], seed=BAD_SEED), **st)
    spec("GaussianProcess.predict_gradient", m("predict_gradient"), dict(x=XT[0]), arrays=["x"], **st)
    spec("GaussianProcess.optimize_in_background",
         lambda g, **a: g.optimize_in_background(**a).result()[1], dict(max_iters=3),
         scalars=dict(n_restarts=BAD_COUNT, seed=BAD_SEED, max_iters=[0, -1, "a"]), **st)
    spec("GaussianProcess.adopt", m("adopt"), dict(fitted=gp().optimize_in_background(max_iters=3).result()[0]),
         scalars=dict(fitted=[None, "a", sgp()]), **st)
    for q in ("refactorize", "stats", "to_json", "__reduce__"):
        spec(f"GaussianProcess.{q}", m(q), **st)
    for p in ("n_observations", "kernel", "noise_variance", "jitter"):
        spec(f"GaussianProcess.{p}", lambda g, _p=p: getattr(g, _p), **st)
    spec("GaussianProcess.from_json", f(ie.GaussianProcess.from_json), dict(json=gp().to_json()),
         scalars=dict(json=BAD_JSON))
    # the pickle helper: (json, kernel, one_d, noise_variance); kernel and noise only for json=None
    spec("_gp_from_state", f(_core._gp_from_state),
         dict(json=None, kernel=KERN.to_json(), one_d=True, noise_variance=1e-2),
         scalars=dict(json=BAD_JSON[:-1], kernel=BAD_JSON, noise_variance=BAD_FLOAT))
    spec("_kernel_from_json", f(_core._kernel_from_json), dict(json=KERN.to_json()), scalars=dict(json=BAD_JSON))
    spec("BackgroundFit.__new__", f(_core.BackgroundFit), {})
    bg = dict(make=lambda: gp().optimize_in_background(max_iters=3))
    spec("BackgroundFit.result", lambda b: b.result()[1], **bg)
    spec("BackgroundFit.done", lambda b: (b.result(), b.done())[1], **bg)


def sparse_specs():
    spec("SparseGaussianProcess.__new__", f(ie.SparseGaussianProcess), dict(kernel=KERN, inducing=X[:3]),
         arrays=["inducing"], optional=["inducing"],
         scalars=dict(kernel=[None, "a"], noise_variance=[NAN, INF, -1.0, 0.0, "a"], n_inducing=[0, -1, "a"],
                      seed=BAD_SEED, kmeans_iters=[-1, "a"], threads=BAD_THREADS),
         # the inducing inputs are checked at fit, where the data's dimension is known
         expect={("inducing", v): "either" for v in ("ndim+1", "ndim-1", "empty", "nan", "inf", "-inf",
                                                     "str", "list-of-str", "1e300", "1e-300")})
    st = dict(make=sgp, state=canon)
    spec("SparseGaussianProcess.fit", m("fit"), dict(X=X, y=Y), arrays=["X", "y"], **st)
    spec("SparseGaussianProcess.predict", m("predict"), dict(X=XT, return_std=True), arrays=["X"], **st,
         expect=EMPTY_QUERY)
    spec("SparseGaussianProcess.log_marginal_likelihood", m("log_marginal_likelihood"), **st)
    spec("SparseGaussianProcess.optimize", m("optimize"), dict(n_restarts=0, seed=1),
         scalars=dict(n_restarts=BAD_COUNT, seed=BAD_SEED), **st)
    for q in ("to_json", "__reduce__"):
        spec(f"SparseGaussianProcess.{q}", m(q), **st)
    for p in ("inducing_points", "n_observations", "noise_variance", "kernel", "jitter"):
        spec(f"SparseGaussianProcess.{p}", lambda g, _p=p: getattr(g, _p), **st)
    spec("SparseGaussianProcess.from_json", f(ie.SparseGaussianProcess.from_json), dict(json=sgp().to_json()),
         scalars=dict(json=BAD_JSON))
    spec("_sparse_gp_from_json", f(_core._sparse_gp_from_json), dict(json=sgp().to_json()),
         scalars=dict(json=BAD_JSON))


def gpu_specs():
    spec("GpuGaussianProcess.__new__", f(ie.GpuGaussianProcess), dict(kernel=KERN, noise_variance=1e-2, backend="cpu"),
         scalars=dict(kernel=[None, "a", Matern(1.5)], noise_variance=BAD_POS, backend=["tpu", "cuda:x", None]))
    st = dict(make=gpu_gp, state=canon)
    spec("GpuGaussianProcess.fit", m("fit"), dict(X=X, y=Y), arrays=["X", "y"], **st)
    spec("GpuGaussianProcess.predict", m("predict"), dict(X=XT, return_std=True), arrays=["X"], **st,
         expect=EMPTY_QUERY)
    spec("GpuGaussianProcess.optimize", m("optimize"), dict(steps=2, lr=0.05),
         scalars=dict(steps=[-1, "a"], lr=BAD_POS, trace=["nope", None], probes=[-1], seed=BAD_SEED), **st)
    for q in ("log_marginal_likelihood", "log_marginal_likelihood_gradient"):
        spec(f"GpuGaussianProcess.{q}", m(q), **st)
    for p in ("backend", "kernel", "noise_variance", "theta", "n_observations"):
        spec(f"GpuGaussianProcess.{p}", lambda g, _p=p: getattr(g, _p), **st)
    spec("GpuGoalInference.__new__", f(ie.GpuGoalInference), dict(goals=GOALS, n_particles=100, backend="cpu"),
         arrays=["goals"], scalars=dict(n_particles=[0, -1, "a"], dt=BAD_POS, obs_noise=BAD_POS, speed=BAD_NONNEG,
                                        ess_threshold=[NAN, -0.1, 1.5], backend=["tpu", None],
                                        velocity_model=["nope", None], threads=BAD_THREADS))
    st = dict(make=gpu_goal_inf, state=gpu_goal_state)
    spec("GpuGoalInference.update", m("update"), dict(z=np.array([0.7, 0.5])), arrays=["z"], **st)
    for q in ("goal_probabilities", "effective_sample_size"):
        spec(f"GpuGoalInference.{q}", m(q), **st)
    for p in ("log_likelihood", "n_goals", "n_particles", "backend"):
        spec(f"GpuGoalInference.{p}", lambda g, _p=p: getattr(g, _p), **st)


def belief_specs():
    spec("GoalInference.__new__", f(ie.GoalInference),
         dict(goals=GOALS, n_particles=100, goal_prior=np.array([0.5, 0.3, 0.2]),
              forecast=dict(rationality=0.1, velocity_model="heading")),
         arrays=["goals", "goal_prior"], optional=["goal_prior"],
         scalars=dict(n_particles=[0, -1, "a"], dt=BAD_POS, obs_noise=BAD_POS, speed=BAD_NONNEG,
                      resampling=["bogus", None], ess_threshold=[NAN, -0.1, 1.5], rationality=BAD_NONNEG,
                      velocity_noise=BAD_NONNEG, switch_prob=[NAN, -0.1, 1.5], slow_radius=BAD_NONNEG,
                      velocity_model=["nope"], threads=BAD_THREADS, seed=BAD_SEED,
                      forecast=[{"bogus": 1.0}, {"rationality": NAN}, {"dt": -1.0}, {"speed": "a"},
                                {"velocity_model": 3}, {1: 2.0}, "a", 3]),
         expect={("goals", "1e300"): "either"})
    st = dict(make=goal_inf, state=goal_state)
    spec("GoalInference.update", m("update"), dict(z=np.array([0.8, 0.5])), arrays=["z"], **st)
    spec("GoalInference.predict", m("predict"), dict(horizon=5, seed=1),
         scalars=dict(horizon=[0, -1, "a", None], seed=BAD_SEED), **st)
    spec("GoalInference.sample_trajectories", m("sample_trajectories"), dict(horizon=4, n=3, seed=1),
         scalars=dict(horizon=[0, -1, "a"], n=[-1, "a"], seed=BAD_SEED), **st)
    spec("GoalInference.add_goal", m("add_goal"), dict(goal=np.array([2.0, 2.0, 0.3])), arrays=["goal"], **st)
    spec("GoalInference.remove_goal", m("remove_goal"), dict(index=1), scalars=dict(index=[-1, 3, 100, "a", None]), **st)
    for q in ("goal_probabilities", "effective_sample_size", "mean", "covariance"):
        spec(f"GoalInference.{q}", m(q), **st)
    for p in ("log_likelihood", "n_goals"):
        spec(f"GoalInference.{p}", lambda g, _p=p: getattr(g, _p), **st)

    pfs = dict(n_particles=100, seed=2)
    spec("ParticleFilter.__new__", f(ie.ParticleFilter), {})
    spec("ParticleFilter.linear_gaussian", f(ie.ParticleFilter.linear_gaussian), dict(**LG, **pfs),
         arrays=list(LG), scalars=dict(n_particles=[0, -1, "a"], resampling=["bogus"], ess_threshold=[NAN, 1.5],
                                       threads=BAD_THREADS, seed=BAD_SEED))
    spec("ParticleFilter.goal_directed", f(ie.ParticleFilter.goal_directed),
         dict(goals=GOALS, init_mean=np.array([0.0, 0.0, 0.0, 0.0]), init_std=np.array([0.1, 0.1, 0.5, 0.5]), **pfs),
         arrays=["goals", "init_mean", "init_std"],
         scalars=dict(n_particles=[0, -1], dt=BAD_POS, obs_noise=BAD_POS, switch_prob=[NAN, 1.5]),
         expect={("goals", "1e300"): "either"})
    spec("ParticleFilter.gp_motion", f(ie.ParticleFilter.gp_motion),
         dict(gp=ie.GaussianProcess(RBF(1.0), 1e-2).fit(X, np.c_[Y, -Y]), init=np.array([0.0, 0.0]), **pfs),
         arrays=["init"], scalars=dict(gp=[None, gp(), "a"], dt=BAD_POS, init_std=BAD_NONNEG,
                                       extra_velocity_var=BAD_NONNEG, obs_noise=BAD_POS, n_particles=[0, -1]))
    st = dict(make=pf, state=pf_state)
    spec("ParticleFilter.step", m("step"), dict(y=np.array([0.2, 0.1])), arrays=["y"], **st)
    for q in ("mean", "covariance", "weights", "particles", "effective_sample_size"):
        spec(f"ParticleFilter.{q}", m(q), **st)
    for p in ("log_likelihood", "n_particles"):
        spec(f"ParticleFilter.{p}", lambda g, _p=p: getattr(g, _p), **st)

    for name in ("systematic_resample", "stratified_resample", "residual_resample", "multinomial_resample",
                 "rejection_resample"):
        spec(name, f(getattr(ie, name)), dict(weights=W4, seed=3, n=6), arrays=["weights"],
             scalars=dict(seed=BAD_SEED, n=[-1, "a"]),
             expect={("weights", "1e-300"): "either", ("weights", "1e300"): "either"})
    acq = ie.acquisition
    spec("ucb", f(acq.ucb), dict(mean=MEAN3, std=STD3, beta=2.0), arrays=["mean", "std"], scalars=dict(beta=BAD_NONNEG))
    for name in ("expected_improvement", "log_expected_improvement", "probability_of_improvement"):
        spec(name, f(getattr(acq, name)), dict(mean=MEAN3, std=STD3, best=0.3, xi=0.01), arrays=["mean", "std"],
             scalars=dict(best=BAD_FLOAT, xi=[NAN, INF, "a"]))
    spec("thompson_sample", f(acq.thompson_sample), dict(mean=MEAN3, std=STD3, seed=4), arrays=["mean", "std"],
         scalars=dict(seed=BAD_SEED))
    spec("particle_ucb", f(acq.particle_ucb), dict(utilities=UTIL, weights=W4, beta=2.0),
         arrays=["utilities", "weights"], scalars=dict(beta=BAD_NONNEG))
    for name in ("particle_expected_improvement", "particle_probability_of_improvement"):
        spec(name, f(getattr(acq, name)), dict(utilities=UTIL, weights=W4, best=1.0, xi=0.0),
             arrays=["utilities", "weights"], scalars=dict(best=BAD_FLOAT, xi=[NAN, INF, "a"]))
    spec("particle_thompson_sample", f(acq.particle_thompson_sample), dict(utilities=UTIL, weights=W4, seed=5),
         arrays=["utilities", "weights"], scalars=dict(seed=BAD_SEED))
    spec("select_action", f(acq.select_action), dict(utilities=UTIL, weights=W4), arrays=["utilities", "weights"])


def mpc_specs():
    spec("LinearMPC.__new__", f(ie.LinearMPC), dict(**MPC_ARGS, du_max=0.5 * np.ones(2)),
         arrays=["A", "B", "Q", "R", "u_min", "u_max", "du_max"],
         optional=["u_min", "u_max", "du_max"],
         scalars=dict(horizon=[0, -1, "a", None], solver=["bogus", None], eps=BAD_POS, max_iter=[0, -1, "a"],
                      time_limit=[NAN, -1.0, 0.0, "a"], keepout_penalty=BAD_NONNEG, keepout_quadratic=BAD_NONNEG,
                      P=[-np.eye(4), np.eye(3), np.full((4, 4), NAN)], x_min=[np.ones(3)], x_max=[np.full(4, NAN)]),
         expect={("A", "1e300"): "either", ("B", "1e300"): "either", ("Q", "1e300"): "either",
                 ("R", "1e300"): "either", ("A", "1e-300"): "either", ("B", "1e-300"): "either",
                 ("Q", "1e-300"): "either", ("R", "1e-300"): "either",
                 # an infinite bound is no bound
                 ("u_min", "-inf"): "either", ("u_max", "inf"): "either", ("du_max", "inf"): "either"})
    st = dict(make=mpc, state=mpc_state)
    spec("LinearMPC.solve", m("solve"), dict(x0=X0, x_ref=np.zeros(4), u_ref=np.zeros(2), u_prev=np.zeros(2)),
         arrays=["x0", "x_ref", "u_ref", "u_prev"], optional=["x_ref", "u_ref", "u_prev"], **st,
         # x_ref / u_ref may be one vector or one row per stage: 2-D is a valid form
         expect={("x_ref", "ndim+1"): "err", ("u_ref", "ndim+1"): "err", ("x0", "1e300"): "either"})
    spec("LinearMPC.set_keepout", lambda c, **a: (c.set_keepout(**a), c.solve(X0))[1],
         dict(stage_normals=np.tile([0.0, 1.0, 0.0, 0.0], (8, 1)), stage_offsets=np.full(8, 0.3)),
         arrays=["stage_normals", "stage_offsets"], **st,
         expect={("stage_normals", "ndim+1"): "either", ("stage_offsets", "ndim+1"): "either",
                 ("stage_offsets", "inf"): "same-or-err", ("stage_normals", "1e300"): "either",
                 ("stage_offsets", "1e300"): "either"})
    spec("LinearMPC.solve_batch", m("solve_batch"), dict(x0s=np.array([X0, -X0, 0.5 * X0]), threads=1),
         arrays=["x0s"], scalars=dict(threads=BAD_THREADS), **st,
         expect={("x0s", "1e300"): "either", **EMPTY_QUERY})
    for p in ("solver", "terminal_cost", "horizon"):
        spec(f"LinearMPC.{p}", lambda c, _p=p: getattr(c, _p), **st)
    sol = dict(make=lambda: mpc().solve(X0))
    for p in ("u0", "u", "x", "status", "iterations", "solve_time", "max_violation", "primal_residual",
              "dual_residual"):
        spec(f"MpcSolution.{p}", lambda s, _p=p: getattr(s, _p), **sol)
    spec("MpcSolution.__new__", f(_core.MpcSolution), {})
    for name in ("solve_qp", "solve_qp_solution"):
        spec(name, f(getattr(ie, name)), dict(QP, eps=1e-8), arrays=QP_ARRAYS, optional=QP_OPT,
             scalars=dict(eps=BAD_POS, **({"time_limit": [NAN, -1.0, 0.0, "a"]} if name.endswith("solution") else {})),
             expect={(a, v): "either" for a in QP_ARRAYS for v in ("1e300", "1e-300")} | {("h", "inf"): "either",
                                                                                         ("ub", "inf"): "either",
                                                                                         ("lb", "-inf"): "either"})
    qps = dict(make=lambda: ie.solve_qp_solution(**QP))
    for p in ("x", "z", "y", "z_box", "status", "found", "iterations", "solve_time", "primal_residual",
              "dual_residual", "duality_gap"):
        spec(f"QpSolution.{p}", lambda s, _p=p: getattr(s, _p), **qps)
    spec("QpSolution.__new__", f(_core.QpSolution), {})
    spec("double_integrator_model", f(ie.double_integrator_model), dict(dim=2, dt=0.1),
         scalars=dict(dim=[0, -1, "a", None], dt=BAD_POS))
    spec("quadrotor_hover_model", f(ie.quadrotor_hover_model), dict(dt=0.1), scalars=dict(dt=BAD_POS))


def intent_specs():
    spec("IntentEngine.__new__", f(ie.IntentEngine), dict(ENGINE_ARGS, arm_base=None), arrays=["goals"],
         optional=["arm_base"],
         scalars=dict(workspace=[(0, 1, 0), (1.0, 0.0, 0.0, 1.0), (0.0, NAN, 0.0, 1.0), None], robot=["tank", None],
                      max_accel=BAD_POS, max_speed=BAD_POS, max_turn_rate=BAD_POS, lookahead=BAD_POS,
                      arm_reach=BAD_POS, control_period=BAD_POS, plan_dt=BAD_POS, horizon=[0, -1, "a"],
                      observation_period=BAD_POS, n_particles=[0, -1, "a"], speed=BAD_POS, obs_noise=BAD_POS,
                      switch_prob=[NAN, -0.1, 1.5], lost_after=BAD_POS, min_separation=BAD_NONNEG,
                      human_speed=BAD_NONNEG, reaction_time=BAD_NONNEG, keepout=["bogus", None],
                      risk=[NAN, 0.0, 1.0, -0.1], samples=[-1, "a"], seed=BAD_SEED,
                      robot_goal=[[NAN, 1.0], [100.0, 100.0], "a", [1.0]],
                      belief_budget=BAD_POS, prediction_budget=BAD_POS, solve_budget=BAD_POS, step_budget=BAD_POS),
         expect={("goals", "1e300"): "either"})
    st = dict(make=engine, state=engine_state, check=command_within_limits)
    # step never raises: a bad argument gives the fallback command with the reason; the
    # object stays usable (the checks below hold for every variant).
    spec("IntentEngine.step", m("step"), dict(observation=np.array([0.65, 0.5]), robot_state=RSTATE, t=0.05),
         arrays=["observation", "robot_state"], optional=["observation"],
         scalars=dict(t=[NAN, INF, -1.0, 0.0, "a", None]), **st,
         expect={"*": "fallback"})
    spec("IntentEngine.set_robot_goal", m("set_robot_goal"), dict(goal=np.array([2.0, 2.5])), arrays=["goal"], **st,
         expect={("goal", "1e300"): "err", ("goal", "1e-300"): "either"})
    # a person's goal may lie outside the robot's workspace (a door, a far station)
    spec("IntentEngine.add_goal", m("add_goal"), dict(goal=np.array([2.0, 2.5, 0.2])), arrays=["goal"], **st,
         expect={("goal", "1e300"): "either", ("goal", "1e-300"): "either"})
    spec("IntentEngine.remove_goal", m("remove_goal"), dict(index=2), scalars=dict(index=[-1, 3, 99, "a", None]), **st)
    for q in ("decision", "reset", "counters"):
        spec(f"IntentEngine.{q}", m(q), **st)
    for p in ("robot_goal", "n_goals"):
        spec(f"IntentEngine.{p}", lambda e, _p=p: getattr(e, _p), **st)
    spec("IntentEngine.default", f(ie.IntentEngine.default), {})
    spec("IntentEngine.from_scenario_json", f(ie.IntentEngine.from_scenario_json), dict(text=SCEN),
         scalars=dict(text=BAD_JSON + [SCEN[: len(SCEN) // 2], SCEN.replace('"shared-workcell"', "5", 1)]))
    dec = dict(make=lambda: engine().decision())
    for p in ("t", "command", "fresh", "fallback", "reason", "human", "goal_probabilities", "predicted_mean",
              "predicted_cov", "goal_means", "samples", "robot_plan", "separation", "protective_distance",
              "speed_limited", "predicted_min_separation", "solver_status", "solver_iterations", "timings"):
        spec(f"Decision.{p}", lambda d, _p=p: getattr(d, _p), **dec)
    spec("Decision.__new__", f(_core.Decision), {})
    # run_scenario simulates the whole scenario (about a second): only its bad arguments here.
    spec("run_scenario", f(ie.run_scenario), dict(scenario_json=None, relaxed_budgets=True),
         scalars=dict(scenario_json=BAD_JSON[:-1] + [SCEN[:100]], progress=[5, "a"]))
    for name in ("cuda_available", "cuda_unavailable_reason", "default_scenario_json", "simd_level"):
        spec(name, f(getattr(ie, name)), {})


def ops_specs():
    """Entry points of the telemetry / pickling / load-test work (merged from main)."""
    # GoalInference pickles before its first update (see its docs)
    fresh_goal = lambda: ie.GoalInference(GOALS, n_particles=200, seed=3)  # noqa: E731
    spec("GoalInference.__reduce__", m("__reduce__"), make=fresh_goal, state=goal_state)
    g_args = fresh_goal().__reduce__()[1]
    spec("_goal_inference_from_state", f(_core._goal_inference_from_state),
         dict(state_json=g_args[0], predict_calls=g_args[1]),
         scalars=dict(state_json=BAD_JSON, predict_calls=[-1, "a"]))
    est = dict(make=engine, state=engine_state)
    # an engine pickles before its first step (see its docs)
    fresh_engine = lambda: ie.IntentEngine(**ENGINE_ARGS)  # noqa: E731
    spec("IntentEngine.__reduce__", m("__reduce__"), make=fresh_engine, state=engine_state)
    e_args = fresh_engine().__reduce__()[1]
    spec("_intent_engine_from_state", f(_core._intent_engine_from_state),
         dict(config_json=e_args[0], robot_goal=e_args[1]),
         scalars=dict(config_json=BAD_JSON, robot_goal=[(NAN, 1.0), (1e300, 1.0), "a", None]))
    # telemetry holds latencies (wall clock): compare its keys
    spec("IntentEngine.telemetry", lambda e: sorted(e.telemetry()), **est)
    spec("IntentEngine.set_telemetry", m("set_telemetry"), dict(on=False), scalars=dict(on=["a", None]), **est)
    spec("IntentEngine.serve_metrics", lambda e, **a: e.serve_metrics(**a).stop(), dict(port=0),
         scalars=dict(port=[-1, 70000, "a", None]), **est)
    ms = dict(make=lambda: engine().serve_metrics(0))
    spec("MetricsServer.port", lambda s_: s_.port > 0, **ms)
    spec("MetricsServer.url", lambda s_: s_.url.startswith("http://127.0.0.1:"), **ms)
    spec("MetricsServer.running", lambda s_: s_.running, **ms)
    spec("MetricsServer.stop", lambda s_: (s_.stop(), s_.running)[1], **ms)
    spec("MetricsServer.__new__", f(_core.MetricsServer), {})
    spec("prometheus_text", lambda _, **a: "# TYPE" in ie.prometheus_text(**a), dict(engine=engine()),
         scalars=dict(engine=[None, "a", 5]))
    # load tests run for wall-clock time: only their bad arguments (valid runs: test_loadtest.py)
    spec("load_test", lambda _, **a: sorted(_core.load_test(**a)), dict(engines=1, seconds=0.05, threads=1),
         scalars=dict(engines=[0, -1, "a"], seconds=[NAN, -1.0, 0.0, "a"], deadline_ms=[NAN, -1.0, 0.0],
                      rate_hz=[NAN, -1.0, 0.0], threads=BAD_THREADS, scenario_json=["{", "null"]))
    spec("load_capacity", lambda _, **a: sorted(_core.load_capacity(**a)), dict(seconds=0.05, max_engines=1, threads=1),
         scalars=dict(seconds=[NAN, -1.0, 0.0, "a"], max_engines=[0, -1], deadline_ms=[NAN, -1.0],
                      max_miss_fraction=[NAN, -0.1, 1.5], threads=BAD_THREADS))
    spec("replay_scene", lambda _, **a: sorted(_core.replay_scene(**a)), dict(path=SCENE_FILE, n_particles=50),
         scalars=dict(path=["/nonexistent/obsmat.txt", None, 5], goals=[0, -1], min_frames=[-1],
                      n_particles=[0, -1], obs_noise=[NAN, -1.0, 0.0], rationality=[NAN, -1.0]))


def _scene_file():
    """A small ETH/UCY-format scene (frame,ped_id,x,y; frames 10 apart = 0.4 s)."""
    import os
    import tempfile

    rows = ["frame,ped_id,x,y"]
    for ped, (x0, y0, vx, vy) in enumerate([(0.0, 0.0, 0.5, 0.1), (5.0, 1.0, -0.4, 0.2), (1.0, 4.0, 0.3, -0.3)]):
        for f in range(20):
            rows.append(f"{10 * f},{ped + 1},{x0 + 0.4 * vx * f:.3f},{y0 + 0.4 * vy * f:.3f}")
    path = os.path.join(tempfile.mkdtemp(prefix="ie-hardening-"), "scene.csv")
    with open(path, "w") as fh:
        fh.write("\n".join(rows) + "\n")
    return path


SCENE_FILE = _scene_file()

kernel_specs()
gp_specs()
sparse_specs()
gpu_specs()
belief_specs()
mpc_specs()
intent_specs()
if hasattr(_core, "telemetry") or hasattr(_core, "MetricsServer"):
    ops_specs()
BY_NAME = {s.name: s for s in SPECS}

# Entry points that take no input and construct nothing (the exception classes).
EXCEPTIONS = {"IntentEngineError", "InvalidInputError", "NumericalError", "BackendUnavailableError"}
DUNDERS = {"__new__", "__call__", "__reduce__", "__add__", "__radd__", "__mul__", "__rmul__"}


def public_entry_points():
    """Every public function, class constructor, method and property of the package."""
    found = set()
    for mod in (_core, ie, ie.kernels, ie.acquisition):
        for n in dir(mod):
            if n.startswith("__"):
                continue
            o = getattr(mod, n)
            if inspect.ismodule(o):
                continue
            if isinstance(o, type):
                if o.__name__ in EXCEPTIONS:
                    continue
                for attr in vars(o):
                    if not attr.startswith("_") or attr in DUNDERS:
                        found.add(f"{o.__name__}.{attr}")
            elif callable(o):
                found.add(n)
    return found


def test_table_covers_every_public_entry_point():
    found = public_entry_points()
    missing = sorted(found - set(BY_NAME))
    stale = sorted(set(BY_NAME) - found)
    assert not missing, f"public entry points without a battery entry: {missing}"
    assert not stale, f"battery entries for names that no longer exist: {stale}"
    assert len(SPECS) == len(BY_NAME), "duplicate battery entries"
    assert len(found) > 150


# -- the checks -------------------------------------------------------------------------------

_BASELINE = {}


def baseline(s, **over):
    key = (s.name, tuple(sorted(over)))
    if not over and key in _BASELINE:
        return _BASELINE[key]
    obj, (kind, val) = s.run(**over)
    assert kind == "ok", f"{s.name}: the valid call failed: {val!r}"
    out = (canon(val), canon(s.state(obj)))
    if not over:
        _BASELINE[key] = out
    return out


CONSTRUCTORLESS = {"MetricsServer.__new__", "Decision.__new__", "MpcSolution.__new__", "QpSolution.__new__", "BackgroundFit.__new__",
                   "Kernel.__new__", "ParticleFilter.__new__"}


@pytest.mark.parametrize("s", SPECS, ids=repr)
def test_valid_call(s):
    """The table's valid call works, gives no NaN, does not change a query's object."""
    if s.name in CONSTRUCTORLESS:
        kind, e = attempt(lambda: s.call(None))
        assert kind == "err" and isinstance(e, TypeError), s.name
        return
    r, st = baseline(s)
    assert not any(np.isnan(floats(r))), f"{s.name}: NaN in {r}"
    if s.check:
        obj, (kind, val) = s.run()
        s.check(val)
    # the same call on a fresh object gives the same answer (the battery relies on it)
    if s.name not in ("MpcSolution.solve_time", "QpSolution.solve_time", "Decision.timings"):
        assert_same(r, canon(s.run()[1][1]), path=s.name)
    # queries (no input) leave the object as it was
    if not s.arrays and not s.scalars and s.name not in MUTATORS:
        obj = s.make()
        before = canon(s.state(obj))
        s.call(obj, **s.args)
        assert_same(canon(s.state(obj)), before, path=f"{s.name}: state after a query")


MUTATORS = {"IntentEngine.reset", "BackgroundFit.result", "BackgroundFit.done"}


def bad_cases():
    out = []
    for s in SPECS:
        for a in s.arrays:
            for vname, _, default in ARRAY_VARIANTS:
                if vname == "None" and a in s.optional:
                    continue
                exp = s.expect.get((a, vname), s.expect.get(vname, s.expect.get("*", default)))
                if exp == "fallback" and default in ("same", "same32"):
                    exp = default
                out.append(pytest.param(s, a, vname, exp, id=f"{s.name}-{a}-{vname}"))
        for a, values in s.scalars.items():
            for i, v in enumerate(values):
                exp = s.expect.get("*", "err")
                out.append(pytest.param(s, a, ("scalar", v), exp, id=f"{s.name}-{a}-{i}:{v!r}"[:120]))
    return out


def variant_value(s, a, vname):
    if isinstance(vname, tuple):
        return vname[1]
    v = np.asarray(s.args[a], dtype=np.float64)
    return dict((n, t) for n, t, _ in ARRAY_VARIANTS)[vname](v)


@pytest.mark.parametrize("s,arg,variant,expect", bad_cases())
def test_bad_input(s, arg, variant, expect):
    bad = variant_value(s, arg, variant)
    obj = s.make()
    before = canon(s.state(obj))
    kind, val = attempt(lambda: s.call(obj, **{**s.args, arg: bad}))
    label = f"{s.name}({arg}={variant if isinstance(variant, str) else repr(variant[1])[:40]})"
    if expect in ("same", "same32"):
        assert kind == "ok", f"{label}: rejected an accepted form: {val!r}"
        if expect == "same32":
            want = baseline(s, **{arg: np.asarray(s.args[arg]).astype(np.float32).astype(np.float64)})
        else:
            want = baseline(s)
        assert_same(canon(val), want[0], path=f"{label} result")
        assert_same(canon(s.state(obj)), want[1], path=f"{label} state")
        return
    if expect == "fallback":
        # IntentEngine.step: never raises, answers with a finite, limited command
        assert kind == "ok", f"{label}: raised {val!r}"
        s.check(val)
        assert val.fresh or (val.fallback and val.reason), label
        after_ok = s.call(obj, **s.args)
        s.check(after_ok)
        return
    if kind == "ok":
        assert expect in ("finite", "either", "same-or-err"), f"{label}: accepted bad input, returned {val!r}"[:400]
        if expect == "same-or-err":
            assert_same(canon(val), baseline(s)[0], path=label)
        # a solver status other than solved carries no answer (its fields may be NaN)
        if str(getattr(val, "status", "solved")).startswith("solved"):
            assert not [x for x in floats(canon(val)) if np.isnan(x)], f"{label}: NaN posing as an answer"
        if s.check:
            s.check(val)
        return
    # rejected: the documented error naming the argument, and the object as it was
    assert isinstance(val, (ie.InvalidInputError, ie.NumericalError, TypeError, ValueError, OverflowError)), f"{label}: {type(val)}: {val}"
    if expect == "err":
        # a length mismatch caused by emptying one array may name its partner
        others = [a for a in s.arrays if a != arg] if variant == "empty" else []
        assert names_arg(val, arg) or any(names_arg(val, o) for o in others), (
            f"{label}: message does not name {arg!r}: {val}")
    assert_same(canon(s.state(obj)), before, path=f"{label}: state after the failed call")
    if s.make is not None and obj is not None:
        want = baseline(s)
        kind2, val2 = attempt(lambda: s.call(obj, **s.args))
        assert kind2 == "ok", f"{label}: object broken after the failed call: {val2!r}"
        if "BackgroundFit" not in s.name:
            assert_same(canon(val2), want[0], path=f"{label}: next valid call")
