#!/usr/bin/env python3
"""ETH/UCY evaluation of GoalInference (fixed parameters, chosen before looking at results).

    python benches/python/eval_eth_ucy.py [--data ../shared/data/eth_ucy] [--particles 500]

Goal inference: per scene, K = 3 goals = k-means clusters of the endpoints of all track
segments (discs: centre and the clusters' RMS radius). A segment's true goal is the cluster of
its own endpoint. After observing 25 / 50 / 75 % of a segment (at least 2 frames) we report
goal accuracy (argmax = true goal) and the Brier score, averaged per scene then over scenes.

Prediction: every 20-frame window of every segment, 8 observed -> 12 predicted (0.4 s steps);
single-sample ADE/FDE of the predicted mean against the constant-velocity model (last observed
displacement extrapolated), 5-scene mean.

The model's parameters are either fixed (``PARAMS``, typical walking values) or, with
``--loso``, chosen leave-one-scene-out from a small grid over the rationality, the velocity
noise, the observation noise and the velocity model: each scene is evaluated with the setting that did best on the other four (goal
accuracy for goal inference, ADE for prediction), so no scene's own result picks its setting.

With ``--forecast`` predictions use separate motion settings (``GoalInference(forecast=...)``):
each person's own speed (``heading``) and a slow turn toward the goal, while the goal posterior
still comes from the inference model. Fixed runs use ``FORECAST``; with ``--loso`` each scene's
forecast setting is the one from ``FORECASTS`` with the lowest ADE on the other four scenes
(each evaluated with its own leave-one-scene-out goal-inference setting).

With ``--prior`` each segment's filter gets a goal prior (``GoalInference(goal_prior=...)``):
how often each goal cluster is the endpoint of the scene's *other* segments (leave-one-out
counts plus one), i.e. scene statistics a deployed system would have collected beforehand.
"""

from __future__ import annotations

import argparse
import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import intent_engine as ie  # noqa: E402

SCENES = ["eth_univ", "eth_hotel", "ucy_univ", "ucy_zara01", "ucy_zara02"]
PARAMS = dict(dt=0.4, speed=1.2, obs_noise=0.1, rationality=0.5, velocity_noise=0.4, slow_radius=1.0, switch_prob=0.02)


def load(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1)
    tracks = {}
    for f, i, x, y in a:
        tracks.setdefault(int(i), []).append((int(f), x, y))
    diffs = []
    for t in tracks.values():
        t.sort()
        diffs += [b[0] - a_[0] for a_, b in zip(t, t[1:])]
    step = int(np.bincount(np.array([d for d in diffs if d > 0])).argmax())
    segs = []
    for t in tracks.values():
        cur = [t[0]]
        for a_, b in zip(t, t[1:]):
            if b[0] - a_[0] == step:
                cur.append(b)
            else:
                segs.append(np.array([(x, y) for _, x, y in cur]))
                cur = [b]
        segs.append(np.array([(x, y) for _, x, y in cur]))
    return segs


def kmeans(pts, k, seed=0, iters=100):
    rng = np.random.default_rng(seed)
    c = [pts[rng.integers(len(pts))]]
    for _ in range(k - 1):  # k-means++
        d2 = np.min(((pts[:, None, :] - np.array(c)[None]) ** 2).sum(-1), axis=1)
        c.append(pts[rng.choice(len(pts), p=d2 / d2.sum())])
    c = np.array(c)
    for _ in range(iters):
        lab = np.argmin(((pts[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        c = np.array([pts[lab == j].mean(0) if np.any(lab == j) else c[j] for j in range(k)])
    lab = np.argmin(((pts[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    rad = np.array([np.sqrt(((pts[lab == j] - c[j]) ** 2).sum(-1).mean()) if np.any(lab == j) else 0.0 for j in range(k)])
    return c, rad, lab


def loo_prior(lab, g, k=3):
    """Endpoint frequencies of the other segments (leave-one-out), plus one per goal."""
    counts = np.bincount(lab, minlength=k).astype(float)
    counts[g] -= 1
    return counts + 1


def goal_eval(segs, n_particles, params=PARAMS, min_len=8, prior=False):
    segs = [s for s in segs if len(s) >= min_len]
    ends = np.array([s[-1] for s in segs])
    c, rad, lab = kmeans(ends, 3)
    goals = np.column_stack([c, rad])
    out = {}
    for frac in (0.25, 0.5, 0.75):
        acc, brier = [], []
        for s, g in zip(segs, lab):
            n_obs = max(2, int(round(frac * len(s))))
            kw = dict(goal_prior=loo_prior(lab, g)) if prior else {}
            gi = ie.GoalInference(goals, n_particles=n_particles, seed=0, **params, **kw)
            for z in s[:n_obs]:
                gi.update(z)
            p = gi.goal_probabilities()
            acc.append(float(np.argmax(p) == g))
            onehot = np.eye(3)[g]
            brier.append(float(((p - onehot) ** 2).sum()))
        out[frac] = (np.mean(acc), np.mean(brier), len(acc))
    return out, goals


def ade_fde(segs, goals, n_particles, params=PARAMS, obs=8, pred=12, forecast=None):
    res = {"ours": [], "cv": []}
    for s in segs:
        for t0 in range(0, len(s) - obs - pred + 1):
            w = s[t0:t0 + obs + pred]
            past, fut = w[:obs], w[obs:]
            v = past[-1] - past[-2]
            cv = past[-1] + v * np.arange(1, pred + 1)[:, None]
            gi = ie.GoalInference(goals, n_particles=n_particles, seed=0, forecast=forecast, **params)
            for z in past:
                gi.update(z)
            mean, _ = gi.predict(pred, seed=1)
            for name, p in (("ours", mean), ("cv", cv)):
                d = np.linalg.norm(p - fut, axis=1)
                res[name].append((d.mean(), d[-1]))
    return {k: np.mean(np.array(v), axis=0) for k, v in res.items()}, len(res["cv"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.path.join(here, "..", "..", "..", "shared", "data", "eth_ucy"))
    ap.add_argument("--particles", type=int, default=500)
    ap.add_argument("--scenes", nargs="*", default=SCENES)
    ap.add_argument("--loso", action="store_true", help="leave-one-scene-out choice from a small grid")
    ap.add_argument("--prior", action="store_true", help="leave-one-out endpoint-frequency goal prior")
    ap.add_argument("--forecast", action="store_true", help="separate motion settings for prediction")
    ap.add_argument("--proposal", choices=("bootstrap", "guided"), default="bootstrap",
                    help="the filter's proposal, for the fixed parameters and every grid setting")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.data):
        print(f"no ETH/UCY data at {args.data}; skipping")
        return 0
    if args.proposal != "bootstrap":
        global PARAMS, GRID
        PARAMS = dict(PARAMS, proposal=args.proposal)
        GRID = [dict(g, proposal=args.proposal) for g in GRID]
    if args.loso:
        return loso(args)
    print(f"parameters: {PARAMS}, N = {args.particles}, goal prior: {'leave-one-out frequencies' if args.prior else 'uniform'}"
          f", forecast: {FORECAST if args.forecast else 'the filter model'}")
    accs, preds = [], []
    for sc in args.scenes:
        segs = load(os.path.join(args.data, sc + ".csv"))
        g, goals = goal_eval(segs, args.particles, PARAMS, prior=args.prior)
        r, nw = ade_fde(segs, goals, args.particles, PARAMS, forecast=FORECAST if args.forecast else None)
        ours, cv = r["ours"], r["cv"]
        accs.append([g[f][0] for f in (0.25, 0.5, 0.75)] + [g[f][1] for f in (0.25, 0.5, 0.75)])
        preds.append([ours[0], ours[1], cv[0], cv[1]])
        print(f"{sc:11s} goal acc 25/50/75%: {g[0.25][0]:.3f} {g[0.5][0]:.3f} {g[0.75][0]:.3f}  "
              f"Brier {g[0.25][1]:.3f} {g[0.5][1]:.3f} {g[0.75][1]:.3f}  ({g[0.5][2]} segments)  "
              f"ADE/FDE ours {ours[0]:.3f}/{ours[1]:.3f}  CV {cv[0]:.3f}/{cv[1]:.3f}  ({nw} windows)", flush=True)
    a, p = np.mean(accs, axis=0), np.mean(preds, axis=0)
    print(f"{'mean':11s} goal acc 25/50/75%: {a[0]:.3f} {a[1]:.3f} {a[2]:.3f}  Brier {a[3]:.3f} {a[4]:.3f} {a[5]:.3f}  "
          f"ADE/FDE ours {p[0]:.3f}/{p[1]:.3f}  CV {p[2]:.3f}/{p[3]:.3f}")
    return 0


FORECAST = dict(rationality=0.1, velocity_model="heading", velocity_noise=0.05)
FORECASTS = [dict(rationality=r, velocity_model="heading", velocity_noise=v) for r in (0.1, 0.3) for v in (0.05, 0.2)]

GRID = [dict(PARAMS, velocity_model=m, rationality=r, velocity_noise=v, obs_noise=o)
        for m in ("constant_speed", "heading") for r in (0.1, 0.5, 1.0) for v in (0.2, 0.4) for o in (0.03, 0.1)]


def loso(args):
    res = {}  # (scene, config) -> (acc25, acc50, acc75, brier25, brier50, brier75, ade, fde, cv_ade, cv_fde)
    for sc in args.scenes:
        segs = load(os.path.join(args.data, sc + ".csv"))
        for j, params in enumerate(GRID):
            g, goals = goal_eval(segs, args.particles, params, prior=args.prior)
            r, _ = ade_fde(segs, goals, args.particles, params)
            res[sc, j] = [g[f][0] for f in (0.25, 0.5, 0.75)] + [g[f][1] for f in (0.25, 0.5, 0.75)] + list(r["ours"]) + list(r["cv"])
            print(sc, j, params["velocity_model"], params["rationality"], params["velocity_noise"],
                  params["obs_noise"], np.round(res[sc, j], 3), flush=True)
    jgs = {sc: max(range(len(GRID)), key=lambda j: np.mean([np.mean(res[o, j][:3]) for o in args.scenes if o != sc]))
           for sc in args.scenes}
    fres = {}  # (scene, forecast) -> (ade, fde), with the scene's own LOSO goal setting
    if args.forecast:
        for sc in args.scenes:
            segs = load(os.path.join(args.data, sc + ".csv"))
            _, goals = goal_eval(segs, args.particles, GRID[jgs[sc]], prior=args.prior)
            for f, fc in enumerate(FORECASTS):
                r, _ = ade_fde(segs, goals, args.particles, GRID[jgs[sc]], forecast=fc)
                fres[sc, f] = list(r["ours"])
                print(sc, "forecast", fc, np.round(fres[sc, f], 3), flush=True)
    rows = []
    for sc in args.scenes:
        others = [o for o in args.scenes if o != sc]
        jg = jgs[sc]
        if args.forecast:
            jp = min(range(len(FORECASTS)), key=lambda f: np.mean([fres[o, f][0] for o in others]))
            row = res[sc, jg][:6] + fres[sc, jp] + res[sc, jg][8:]
        else:
            jp = min(range(len(GRID)), key=lambda j: np.mean([res[o, j][6] for o in others]))
            row = res[sc, jg][:6] + res[sc, jp][6:]
        rows.append(row)
        print(f"{sc:11s} [goal cfg {jg}, pred cfg {jp}] goal acc 25/50/75%: {row[0]:.3f} {row[1]:.3f} {row[2]:.3f}  "
              f"Brier {row[3]:.3f} {row[4]:.3f} {row[5]:.3f}  ADE/FDE ours {row[6]:.3f}/{row[7]:.3f}  CV {row[8]:.3f}/{row[9]:.3f}")
    a = np.mean(rows, axis=0)
    print(f"{'LOSO mean':11s} goal acc 25/50/75%: {a[0]:.3f} {a[1]:.3f} {a[2]:.3f}  Brier {a[3]:.3f} {a[4]:.3f} {a[5]:.3f}  "
          f"ADE/FDE ours {a[6]:.3f}/{a[7]:.3f}  CV {a[8]:.3f}/{a[9]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
