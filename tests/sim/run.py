"""Replay one simulation seed and print its trace.

    python -m tests.sim.run --suite reconfig --seed 200041   # a seed of a suite, built as the suite builds it
    python -m tests.sim.run --list                           # the suites and their seeds
    python -m tests.sim.run --seed 7 --voters 5 --observers 1 --steps 3000   # any shape, no suite

The seed is the absolute one a failure names ("seed 200041: ..."); see tests/sim/suites.py.
"""

from __future__ import annotations

import argparse
import sys

from tests.sim.simulator import InvariantError, Simulation
from tests.sim.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=sorted(SUITES), help="build the seed's simulation as this suite does")
    ap.add_argument("--seed", type=int, help="the absolute seed (as a failure names it)")
    ap.add_argument("--list", action="store_true", help="list the suites and their seeds")
    ap.add_argument("--voters", type=int, default=3, help="without --suite")
    ap.add_argument("--observers", type=int, default=0, help="without --suite")
    ap.add_argument("--steps", type=int, default=3000, help="without --suite")
    args = ap.parse_args(argv)
    if args.list:
        for s in SUITES.values():
            print(f"{s.name:14} seeds {s.seeds.start}-{s.seeds.stop - 1}{'  (slow)' if s.slow else ''}  {s.about}")
        return 0
    if args.seed is None:
        ap.error("--seed is required (or --list)")
    if args.suite:
        try:
            sim = SUITES[args.suite].simulation(args.seed)
        except ValueError as exc:
            ap.error(str(exc))
    else:
        sim = Simulation(args.seed, args.voters, args.observers, steps=args.steps)
    try:
        sim.run()
    except InvariantError as exc:
        print("\n".join(sim.trace))
        print(f"FAILED: {exc}")
        return 1
    print("\n".join(sim.trace))
    print(f"seed {args.seed}: {len(sim.acked)} writes acknowledged, epochs {sorted(sim.leaders_by_epoch.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
