"""Anchor implementations shared by the benchmark suite (``python -m intent_engine bench``) and
the standalone scripts in ``benches/python/``: a vectorised NumPy goal-inference particle filter
of the same model as ``GoalInference``, and the standard sparse OSQP formulation of the MPC
problem with the closed-loop QP sequence both solvers replay. Kept in the package so that the
suite runs from an installed wheel; ``osqp``/``scipy`` are imported lazily (optional)."""

from __future__ import annotations

import numpy as np

import intent_engine as ie

try:
    import osqp
    import scipy.sparse as sp
except ImportError:  # pragma: no cover - optional anchors
    osqp = None
    sp = None

# ---- goal inference (belief) ------------------------------------------------------------------

GOALS = np.array([[6.0, 0.0], [0.0, 6.0], [-4.0, -4.0]])
DT, SPEED, ALPHA, SIGV, SIGZ, SLOW = 0.1, 1.2, 1.0, 0.5, 0.05, 0.5


def observations(steps, seed=0):
    rng = np.random.default_rng(seed)
    p = np.zeros(2)
    zs = []
    for _ in range(steps):
        d = GOALS[0] - p
        p = p + DT * SPEED * d / np.linalg.norm(d)
        zs.append(p + SIGZ * rng.normal(size=2))
    return np.array(zs)


class NumpyGoalFilter:
    """The same Rao-Blackwellised goal model as ours, vectorised over particles with NumPy."""

    def __init__(self, n, z0, seed=0):
        self.rng = np.random.default_rng(seed)
        self.n = n
        k = len(GOALS)
        self.x = np.empty((4, n))
        self.x[0:2] = z0[:, None] + SIGZ * self.rng.normal(size=(2, n))
        self.x[2:4] = SPEED * self.rng.normal(size=(2, n))
        self.p = np.full((k, n), 1.0 / k)
        self.logw = np.full(n, -np.log(n))
        self.logz = 0.0

    def step(self, z):
        n, k = self.n, len(GOALS)
        px, py, vx, vy = self.x
        u = self.rng.random(n)
        e = self.rng.normal(size=(2, n))
        g = (u[None, :] >= np.cumsum(self.p, axis=0)[:-1]).sum(axis=0)
        dx = GOALS[:, 0:1] - px[None, :]
        dy = GOALS[:, 1:2] - py[None, :]
        d = np.sqrt(dx * dx + dy * dy)
        sc = SPEED * np.minimum(d / SLOW, 1.0) / np.maximum(d, 1e-9)
        tx, ty = sc * dx, sc * dy
        idx = np.arange(n)
        sx, sy = tx[g, idx], ty[g, idx]
        a, sd = ALPHA * DT, SIGV * np.sqrt(DT)
        nvx = vx + a * (sx - vx) + sd * e[0]
        nvy = vy + a * (sy - vy) + sd * e[1]
        self.x[2], self.x[3] = nvx, nvy
        self.x[0] += DT * nvx
        self.x[1] += DT * nvy
        ddx = a * (sx[None, :] - tx) + sd * e[0][None, :]
        ddy = a * (sy[None, :] - ty) + sd * e[1][None, :]
        lg = -(ddx * ddx + ddy * ddy) / (2 * sd * sd)
        q = self.p * np.exp(lg - lg.max(axis=0))
        self.p = q / q.sum(axis=0)
        r2 = (z[0] - self.x[0]) ** 2 + (z[1] - self.x[1]) ** 2
        self.logw += -r2 / (2 * SIGZ**2) - np.log(2 * np.pi * SIGZ**2)
        m = self.logw.max()
        w = np.exp(self.logw - m)
        s = w.sum()
        self.logz += m + np.log(s)
        w /= s
        if 1.0 / np.sum(w * w) < 0.5 * n:
            pos = (np.arange(n) + self.rng.random()) / n
            i = np.minimum(np.searchsorted(np.cumsum(w), pos, side="right"), n - 1)
            self.x = self.x[:, i]
            self.p = self.p[:, i]
            self.logw = np.full(n, -np.log(n))
        else:
            self.logw = np.log(w)

    def goal_probabilities(self):
        w = np.exp(self.logw)
        return (self.p * w).sum(axis=1) / w.sum()


# ---- MPC (quadrotor, 12 states / 4 inputs) ---------------------------------------------------

U_MAX = 0.5
QD = np.array([100, 100, 100, 4, 4, 400, 4, 4, 4, 0.1, 0.1, 0.1], dtype=float)


def waypoint(step):
    return [np.array([1.0, 1.0, 1.0]), np.array([-1.0, 0.5, 0.0]), np.zeros(3)][min(step // 100, 2)]


def keepout_rows(step, N):
    """A person walking nearby: y_k + 0.1 cos(.) x_k <= 0.6 + 0.4 sin(.) (one row per stage)."""
    normals = np.zeros((N, 12))
    offsets = np.zeros(N)
    for k in range(N):
        t = (step + k + 1) * 0.02
        normals[k, 1] = 1.0
        normals[k, 0] = 0.1 * np.cos(0.3 * t)
        offsets[k] = 0.6 + 0.4 * np.sin(0.5 * t)
    return normals, offsets


def sequence(A, B, Q, R, N, steps, keepout):
    ref = ie.LinearMPC(A, B, Q, R, N, u_min=-U_MAX * np.ones(4), u_max=U_MAX * np.ones(4), eps=1e-12, warm_start=False)
    x = np.zeros(12)
    seq = []
    for s in range(steps):
        xr = np.zeros(12)
        xr[:3] = waypoint(s)
        ko = keepout_rows(s, N) if keepout else None
        if ko is not None:
            ref.set_keepout(*ko)
        sol = ref.solve(x, x_ref=xr)
        seq.append((x.copy(), xr, ko, sol.u0.copy()))
        x = A @ x + B @ sol.u0
    return seq


class OsqpMpc:
    """The standard sparse OSQP MPC formulation (as in OSQP's own MPC example)."""

    def __init__(self, A, B, Q, R, P, N, eps, keepout):
        n, m = B.shape
        self.n, self.m, self.N = n, m, N
        self.Q, self.P = Q, P
        Px = sp.block_diag([sp.kron(sp.eye(N), Q), P, sp.kron(sp.eye(N), R)], format="csc")
        Ax = sp.kron(sp.eye(N + 1), -sp.eye(n)) + sp.kron(sp.eye(N + 1, k=-1), A)
        Bu = sp.kron(sp.vstack([sp.csc_matrix((1, N)), sp.eye(N)]), B)
        Aeq = sp.hstack([Ax, Bu])
        Aineq = sp.hstack([sp.csc_matrix((N * m, (N + 1) * n)), sp.eye(N * m)])
        blocks = [Aeq, Aineq]
        self.keepout = keepout
        if keepout:
            # Dense keep-out rows on x_1..x_N (all n entries structural so values can change).
            rows = sp.hstack([sp.csc_matrix((N, n)), sp.kron(sp.eye(N), np.ones((1, n))), sp.csc_matrix((N, N * m))])
            blocks.append(rows)
        self.A = sp.vstack(blocks, format="csc")
        self.A.sort_indices()
        neq = (N + 1) * n
        self.l = np.hstack([np.zeros(neq), -U_MAX * np.ones(N * m)] + ([-np.inf * np.ones(N)] if keepout else []))
        self.u = np.hstack([np.zeros(neq), U_MAX * np.ones(N * m)] + ([np.inf * np.ones(N)] if keepout else []))
        self.q = np.zeros((N + 1) * n + N * m)
        self.prob = osqp.OSQP()
        self.prob.setup(Px, self.q, self.A, self.l, self.u, eps_abs=eps, eps_rel=eps, warm_starting=True, polishing=True, verbose=False, max_iter=100000)
        if keepout:
            # Locate the keep-out entries in A.data (column-major order).
            A = self.A.tocoo()
            first = neq + N * m
            self.ko_idx = np.zeros((N, n), dtype=int)
            csc = self.A
            for col in range(n, (N + 1) * n):
                for p in range(csc.indptr[col], csc.indptr[col + 1]):
                    r = csc.indices[p]
                    if r >= first:
                        self.ko_idx[r - first, col % n] = p
            del A

    def solve(self, x0, xr, ko):
        n, N = self.n, self.N
        self.q[: N * n] = np.tile(-self.Q @ xr, N)
        self.q[N * n : (N + 1) * n] = -self.P @ xr
        self.l[:n] = -x0
        self.u[:n] = -x0
        if ko is not None:
            normals, offsets = ko
            data = self.A.data.copy()
            data[self.ko_idx] = normals
            self.u[-N:] = offsets
            self.prob.update(q=self.q, l=self.l, u=self.u, Ax=data)
        else:
            self.prob.update(q=self.q, l=self.l, u=self.u)
        res = self.prob.solve()
        return res.x[(N + 1) * n : (N + 1) * n + self.m]
