"""Load test: ``python -m intent_engine loadtest --engines N --seconds S``.

Drives N engines (one per simulated person, each with its own walking person and robot from the
default scenario) at their control rate on every core, in Rust threads without the interpreter
lock (``intent_engine._core.load_test``), and reports the sustained decisions per second, the
latency after release under load, missed deadlines and the fallbacks the engines took. Then it
searches the largest N that still meets the deadline (``load_capacity``: doubling, then
bisection; a trial passes when at most ``--max-miss`` of its decisions miss): the capacity of
this machine.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from intent_engine import _core


def _row(r: dict[str, Any]) -> str:
    lat, comp = r["latency_us"], r["compute_us"]
    return (f"{r['engines']:>7} {r['decisions_per_second']:>11.0f} {r['target_per_second']:>9.0f} "
            f"{lat['p50']:>8.0f} {lat['p99']:>8.0f} {lat['max']:>9.0f} {comp['p50']:>8.0f} "
            f"{100 * r['missed_fraction']:>7.2f}% {r['fallbacks']:>9}")


HEADER = (f"{'engines':>7} {'decisions/s':>11} {'offered':>9} {'lat p50':>8} {'lat p99':>8} {'lat max':>9} "
          f"{'step p50':>8} {'missed':>8} {'fallbacks':>9}   (latency/step in µs)")


def main(args: argparse.Namespace) -> int:
    common = dict(rate_hz=args.rate, deadline_ms=args.deadline_ms, threads=args.threads)
    r = _core.load_test(args.engines, args.seconds, **common)
    print(f"load test: {r['engines']} engines at {r['rate_hz']:g} Hz on {r['threads']} threads for "
          f"{r['wall_s']:.1f} s, deadline {r['deadline_ms']:g} ms after release")
    print(HEADER)
    print(_row(r))
    out: dict[str, Any] = dict(run=r)
    if not args.no_search:
        secs = args.search_seconds if args.search_seconds else min(args.seconds, 3.0)
        c = _core.load_capacity(secs, max_engines=args.max_engines, max_miss_fraction=args.max_miss, **common)
        print(f"\ncapacity search ({secs:g} s per trial, pass: <= {100 * args.max_miss:g}% missed):")
        print(HEADER)
        for t in c["trials"]:
            print(_row(t) + ("  pass" if t["missed_fraction"] <= args.max_miss else "  FAIL"))
        best = c["engines"]
        cap = "at least " if best == args.max_engines else ""
        print(f"\ncapacity: {cap}{best} engines at {r['rate_hz']:g} Hz within {r['deadline_ms']:g} ms "
              f"({best * r['rate_hz']:.0f} decisions/s)")
        out["capacity"] = c
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engines", type=int, default=8, help="engines (simulated people) in the main run (default 8)")
    p.add_argument("--seconds", type=float, default=5.0, help="wall-clock length of the main run (default 5)")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="control rate per engine (default: the scenario's, 100 Hz)")
    p.add_argument("--deadline-ms", type=float, default=10.0, help="deadline after release (default 10 ms)")
    p.add_argument("--threads", type=int, default=0, help="worker threads (default 0 = every core)")
    p.add_argument("--no-search", action="store_true", help="skip the capacity search")
    p.add_argument("--max-engines", type=int, default=256, help="upper end of the capacity search (default 256)")
    p.add_argument("--max-miss", type=float, default=0.01,
                   help="largest missed fraction for a passing trial (default 0.01)")
    p.add_argument("--search-seconds", type=float, default=None, help="length of each search trial (default min(S, 3))")
    p.add_argument("--json", metavar="FILE", help="write the run and the search as JSON")
