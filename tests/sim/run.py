"""Replay one simulation seed: python -m tests.sim.run --seed N [--voters 3 --observers 0]."""

from __future__ import annotations

import argparse

from tests.sim.simulator import Simulation


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--voters", type=int, default=3)
    ap.add_argument("--observers", type=int, default=0)
    ap.add_argument("--steps", type=int, default=3000)
    args = ap.parse_args()
    sim = Simulation(args.seed, args.voters, args.observers, steps=args.steps).run()
    print("\n".join(sim.trace))
    print(f"seed {args.seed}: {len(sim.acked)} writes acknowledged, epochs {sorted(sim.leaders_by_epoch.items())}")


if __name__ == "__main__":
    main()
