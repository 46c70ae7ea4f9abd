#!/usr/bin/env python3
"""Anchors for the GPU benchmarks (issue 8), run on the lent GPU beside our Rust binary.

* GPyTorch exact GP (ScaleKernel(RBF, ARD) + GaussianLikelihood), n = 20,000, d = 3:
  20 Adam steps (lr 0.1) of hyperparameter fitting, and prediction of 10,000 points with
  variances, in float32 (GPyTorch's default, CG/Lanczos BBMM) and float64.
* An eager PyTorch particle-filter step of the goal-inference model of
  `src/belief/models/goal.rs` (ConstantSpeed velocity, 4 goals, float32) at 10^6 particles.
* A float64 CPU reference (torch on the CPU, Cholesky) for the accuracy columns.

Reads the data our Rust benchmark wrote (`--data DIR`: x.f64, y.f64, xs.f64, raw little-endian)
so both sides use identical inputs; writes one JSON object to `--json`.
Timings exclude a warm-up call; each figure is the median of `--reps` runs after it.
"""
import argparse
import json
import math
import os
import statistics
import time

import numpy as np
import torch


def timed(fn, reps):
    fn()  # warm-up (JIT, caches, allocator)
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def load_data(d, n, m, dim):
    if d and os.path.exists(os.path.join(d, "x.f64")):
        x = np.fromfile(os.path.join(d, "x.f64")).reshape(-1, dim)
        y = np.fromfile(os.path.join(d, "y.f64"))
        xs = np.fromfile(os.path.join(d, "xs.f64")).reshape(-1, dim)
        return x, y, xs
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, size=(n, dim))
    y = np.sin(x[:, 0]) + 0.5 * np.cos(2 * x[:, 1]) + 0.1 * x[:, 2] ** 2 + 0.1 * rng.normal(size=n)
    xs = rng.uniform(-3, 3, size=(m, dim))
    return x, y, xs


def gpytorch_bench(x, y, xs, dtype, steps, reps, init, pred_params, pred_reps):
    import gpytorch

    dev = torch.device("cuda")
    X = torch.tensor(x, dtype=dtype, device=dev)
    Y = torch.tensor(y, dtype=dtype, device=dev)
    XS = torch.tensor(xs, dtype=dtype, device=dev)

    class GP(gpytorch.models.ExactGP):
        def __init__(self, X, Y, lik):
            super().__init__(X, Y, lik)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(
                gpytorch.kernels.RBFKernel(ard_num_dims=X.shape[1]))

        def forward(self, z):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(z), self.covar_module(z))

    def make(params):
        lik = gpytorch.likelihoods.GaussianLikelihood(
            noise_constraint=gpytorch.constraints.GreaterThan(1e-6)).to(dev, dtype)
        model = GP(X, Y, lik).to(dev, dtype)
        model.covar_module.outputscale = params["variance"]
        model.covar_module.base_kernel.lengthscale = torch.tensor(params["length_scale"], dtype=dtype, device=dev)
        lik.noise = params["noise"]
        return model, lik

    def fit():
        model, lik = make(init)
        model.train(); lik.train()
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        mll = gpytorch.mlls.ExactMarginalLogLikelihood(lik, model)
        for _ in range(steps):
            opt.zero_grad()
            loss = -mll(model(X), Y)
            loss.backward()
            opt.step()
        return {
            "variance": float(model.covar_module.outputscale),
            "length_scale": model.covar_module.base_kernel.lengthscale.detach().cpu().numpy().ravel().tolist(),
            "noise": float(lik.noise),
            "last_loss_per_n": float(loss),
        }

    t_fit, fitted = timed(fit, reps)

    model, lik = make(pred_params)
    model.eval(); lik.eval()

    def predict():
        model.prediction_strategy = None  # rebuild the caches each call (as our predict does)
        with torch.no_grad():
            p = lik(model(XS))
            return p.mean, p.variance

    t_pred, (mu, var) = timed(predict, pred_reps)
    return {
        "dtype": str(dtype).replace("torch.", ""),
        "fit_s": t_fit,
        "fitted": fitted,
        "predict_s": t_pred,
        "mean": mu.double().cpu().numpy(),
        "var": var.double().cpu().numpy(),
    }


def exact_lml_cpu(x, y, p):
    """float64 CPU reference: exact log marginal likelihood (ScaleKernel RBF ARD + noise)."""
    X = torch.tensor(x, dtype=torch.float64)
    Y = torch.tensor(y, dtype=torch.float64)
    Z = X / torch.tensor(p["length_scale"], dtype=torch.float64)
    K = p["variance"] * torch.exp(-0.5 * torch.cdist(Z, Z).pow(2))
    K.diagonal().add_(p["noise"])
    L = torch.linalg.cholesky(K)
    a = torch.cholesky_solve(Y[:, None], L)[:, 0]
    n = len(y)
    return float(-0.5 * Y @ a - torch.log(torch.diagonal(L)).sum() - 0.5 * n * math.log(2 * math.pi))


def predict_cpu(x, y, xs, p):
    """float64 CPU reference predictions (mean, variance incl. noise) at xs."""
    ls = torch.tensor(p["length_scale"], dtype=torch.float64)
    X = torch.tensor(x, dtype=torch.float64) / ls
    XS = torch.tensor(xs, dtype=torch.float64) / ls
    Y = torch.tensor(y, dtype=torch.float64)
    K = p["variance"] * torch.exp(-0.5 * torch.cdist(X, X).pow(2))
    K.diagonal().add_(p["noise"])
    L = torch.linalg.cholesky(K)
    Ks = p["variance"] * torch.exp(-0.5 * torch.cdist(X, XS).pow(2))
    a = torch.cholesky_solve(Y[:, None], L)[:, 0]
    V = torch.linalg.solve_triangular(L, Ks, upper=False)
    mean = Ks.T @ a
    var = p["variance"] - (V * V).sum(0) + p["noise"]
    return mean.numpy(), var.numpy()


def pf_torch(n, k, steps, reps):
    """Eager PyTorch goal-inference step (same model and order as GoalModel + ParticleFilter)."""
    dev = torch.device("cuda")
    f = torch.float32
    dt, speed, rat, sv, so, slow = 0.1, 1.2, 1.0, 0.5, 0.05, 0.5
    goals = torch.tensor([[5.0, 0.0], [0.0, 5.0], [-5.0, 0.0], [0.0, -5.0]][:k], device=dev, dtype=f)
    g = torch.Generator(device=dev).manual_seed(0)
    px = 0.05 * torch.randn(n, device=dev, dtype=f, generator=g)
    py = 0.05 * torch.randn(n, device=dev, dtype=f, generator=g)
    vx = 1.2 * torch.randn(n, device=dev, dtype=f, generator=g)
    vy = 1.2 * torch.randn(n, device=dev, dtype=f, generator=g)
    pr = torch.full((k, n), 1.0 / k, device=dev, dtype=f)
    logw = torch.zeros(n, device=dev, dtype=f)
    sd = sv * math.sqrt(dt)
    a = rat * dt
    state = {"t": 0}

    def step():
        nonlocal px, py, vx, vy, pr, logw
        t = state["t"]; state["t"] += 1
        zx, zy = 0.12 * t, 0.0
        u = torch.rand(n, device=dev, dtype=f, generator=g)
        e = torch.randn(2, n, device=dev, dtype=f, generator=g)
        gsel = (u[None, :] >= torch.cumsum(pr, 0)[:-1]).sum(0)
        dx = goals[:, 0:1] - px[None]; dy = goals[:, 1:2] - py[None]
        d = torch.sqrt(dx * dx + dy * dy)
        sc = speed * torch.clamp(d / slow, max=1.0) / torch.clamp(d, min=1e-9)
        tx, ty = sc * dx, sc * dy
        sx = tx.gather(0, gsel[None])[0]; sy = ty.gather(0, gsel[None])[0]
        vx = vx + a * (sx - vx) + sd * e[0]; vy = vy + a * (sy - vy) + sd * e[1]
        px = px + dt * vx; py = py + dt * vy
        ddx = a * (sx[None] - tx) + sd * e[0][None]; ddy = a * (sy[None] - ty) + sd * e[1][None]
        lg = -0.5 / (sd * sd) * (ddx * ddx + ddy * ddy)
        q = pr * torch.exp(lg - lg.max(0).values)
        pr = q / q.sum(0)
        logw = logw - 0.5 / (so * so) * ((zx - px) ** 2 + (zy - py) ** 2)
        lse = torch.logsumexp(logw, 0)
        w = torch.exp(logw - lse)
        ess = 1.0 / (w * w).sum()
        post = (pr * w[None]).sum(1)
        if float(ess) < 0.5 * n:  # host sync, as our step returns its status
            c = torch.cumsum(w.double(), 0)
            pos = (torch.arange(n, device=dev, dtype=torch.float64)
                   + torch.rand((), device=dev, dtype=torch.float64, generator=g)) / n * c[-1]
            idx = torch.clamp(torch.searchsorted(c, pos), max=n - 1)
            px, py, vx, vy, pr = px[idx], py[idx], vx[idx], vy[idx], pr[:, idx]
            logw = torch.zeros(n, device=dev, dtype=f)
        else:
            logw = logw - lse
        return post

    for _ in range(steps):  # walk the filter into a steady state
        step()
    ts = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        post = step()
        post.cpu()
        ts.append(time.perf_counter() - t0)
    return {"step_s_median": statistics.median(ts), "step_s_mean": statistics.fmean(ts),
            "posterior": post.cpu().tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--m", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pred-reps", type=int, default=1)
    ap.add_argument("--ours", default="", help="JSON written by our gpu_bench (fitted params, predictions)")
    ap.add_argument("--skip-f64", action="store_true")
    ap.add_argument("--json", default="anchors.json")
    a = ap.parse_args()

    import gpytorch
    out = {"torch": torch.__version__, "gpytorch": gpytorch.__version__, "cuda": torch.version.cuda,
           "device": torch.cuda.get_device_name(0)}
    x, y, xs = load_data(a.data, a.n, a.m, 3)
    init = {"variance": 1.0, "length_scale": [1.0, 1.0, 1.0], "noise": 0.1}
    pred_params = {"variance": 1.0, "length_scale": [1.2, 0.8, 2.0], "noise": 0.01}
    ours = json.load(open(a.ours)) if a.ours else None
    if ours:
        init, pred_params = ours["init"], ours["pred_params"]
    nref = 1000
    ref_mean, ref_var = predict_cpu(x, y, xs[:nref], pred_params)
    out["pf"] = pf_torch(1_000_000, 4, 30, 200)
    print("pf", out["pf"]["step_s_median"], flush=True)
    for dt in ([torch.float32] if a.skip_f64 else [torch.float32, torch.float64]):
        r = gpytorch_bench(x, y, xs, dt, a.steps, a.reps, init, pred_params, a.pred_reps)
        r["mean_max_abs_err"] = float(np.abs(r.pop("mean")[:nref] - ref_mean).max())
        r["var_max_abs_err"] = float(np.abs(r.pop("var")[:nref] - ref_var).max())
        r["lml_ref_at_fitted"] = exact_lml_cpu(x, y, r["fitted"])
        out["gpytorch_" + r["dtype"]] = r
        print(r["dtype"], r["fit_s"], r["predict_s"], r["mean_max_abs_err"], r["var_max_abs_err"], flush=True)
    if ours:
        o = {"lml_ref_at_fitted": exact_lml_cpu(x, y, ours["fitted"]),
             "lml_reported": ours["lml_final"]}
        mean = np.fromfile(ours["mean_file"]); var = np.fromfile(ours["var_file"])
        o["mean_max_abs_err"] = float(np.abs(mean[:nref] - ref_mean).max())
        o["var_max_abs_err"] = float(np.abs(var[:nref] - ref_var).max())
        out["ours"] = o
    json.dump(out, open(a.json, "w"), indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
