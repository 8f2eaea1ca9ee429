"""The simulation's suites, in one table: what test_simulation.py runs and run.py replays.

A suite is a range of seeds and how a seed's simulation is built. The seed a Simulation is
given (and that an InvariantError names) is the absolute one, ``base + i``; the shape of
the ensemble may depend on ``i`` (e.g. 3 or 5 voters in turn). Replay any seed of any
suite with ``python -m tests.sim.run --suite NAME --seed N``, including seeds past the ones
the suite runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.sim.simulator import Simulation


@dataclass(frozen=True)
class Suite:
    name: str
    base: int  # the suite's first seed
    count: int  # how many seeds the test suite runs
    chunk: int  # seeds per pytest case
    slow: bool  # only with -m slow (the default run leaves it out)
    shape: Callable[[int], dict[str, Any]]  # i (0-based) -> Simulation keyword arguments
    about: str

    @property
    def seeds(self) -> range:
        return range(self.base, self.base + self.count)

    def chunks(self) -> list[range]:
        return [range(s, min(s + self.chunk, self.seeds.stop)) for s in range(self.base, self.seeds.stop, self.chunk)]

    def simulation(self, seed: int) -> Simulation:
        """The simulation of absolute seed ``seed``, built as the suite builds it."""
        if seed < self.base:
            raise ValueError(f"suite {self.name} starts at seed {self.base}; {seed} is not one of its seeds")
        return Simulation(seed, **self.shape(seed - self.base))


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("three", 0, 300, 50, False, lambda i: dict(voters=3, observers=0, steps=1500),
          "three voters keep every acknowledged write"),
    Suite("five", 10_000, 100, 50, False, lambda i: dict(voters=5, observers=1, steps=1500),
          "five voters and an observer"),
    Suite("seven", 20_000, 40, 20, False, lambda i: dict(voters=7, observers=2, steps=1200),
          "seven voters and two observers"),
    Suite("reconfig", 200_000, 60, 30, False,
          lambda i: dict(voters=3 + 2 * (i % 2), observers=i % 2, steps=1500, fault_rate=0.02, spares=2,
                         reconfig_rate=0.05),
          "one-server membership changes amid faults"),
    Suite("many", 100_000, 700, 100, True,
          lambda i: dict(voters=3 + 2 * (i % 2), observers=i % 3, steps=2000, fault_rate=0.02),
          "more seeds, more faults (slow)"),
    Suite("reconfig-many", 300_000, 200, 50, True,
          lambda i: dict(voters=3 + 2 * (i % 2), observers=i % 3, steps=2000, fault_rate=0.02, spares=2,
                         reconfig_rate=0.05),
          "more reconfig seeds (slow)"),
)}


def seed_counts() -> tuple[int, int]:
    """(seeds of the default run, seeds of the slow suites): the numbers the docs quote."""
    default = sum(s.count for s in SUITES.values() if not s.slow)
    return default, sum(s.count for s in SUITES.values() if s.slow)
