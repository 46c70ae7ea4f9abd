"""Command line: ``python -m intent_engine {demo,info,bench,loadtest}``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m intent_engine", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="run the demo on the embedded default scenario")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.add_argument("--out", default=".", help="directory for intent_demo.svg and intent_demo.csv")
    sub.add_parser("info", help="version, SIMD tier, backends")
    from intent_engine import bench as _bench
    from intent_engine import loadtest as _loadtest

    _bench.add_arguments(sub.add_parser("bench", help="benchmark suite with anchors and regression check"))
    _loadtest.add_arguments(sub.add_parser("loadtest", help="many engines at their control rate; capacity"))
    args = parser.parse_args(argv)
    if args.command == "demo":
        from intent_engine.demo import run

        return run(progress=not args.quiet, out_dir=args.out)
    if args.command == "info":
        import intent_engine as ie

        print(f"intent_engine {ie.__version__}\nSIMD: {ie.simd_level()}\nCUDA: {ie.cuda_available()}")
        return 0
    if args.command == "bench":
        return _bench.main(args)
    if args.command == "loadtest":
        return _loadtest.main(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
