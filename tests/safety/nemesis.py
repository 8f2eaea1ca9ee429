"""Faults on a schedule drawn from a seeded RNG, applied to a lab through its Python API.

One fault at a time: apply it, hold it, undo it, let the ensemble settle, next. That stays
within ZooKeeper's fault model (a minority of servers faulty at once), so any lost
acknowledged write or non-linearizable history is a bug, not bad luck. The truncation fault
models a torn write at the end of one server's txn log (a crash in the middle of an append).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zkops.labs.lab import Lab, LabError

FAULTS = ("kill-random", "kill-leader", "pause-random", "pause-leader", "partition-halves",
          "isolate-leader", "oneway", "truncate-log")


@dataclass
class Step:
    """A planned fault: what, how long it is held, how long the ensemble rests after it."""

    kind: str
    hold: float
    rest: float
    pick: float  # a uniform draw, turned into a node choice when the step runs
    cut_bytes: int = 0


@dataclass
class Applied:
    """What actually happened (targets are resolved at run time: which node leads then)."""

    kind: str
    start: float
    end: float | None = None
    targets: list[int] = field(default_factory=list)
    detail: str = ""
    error: str | None = None


def plan(seed: int, seconds: float, faults: tuple[str, ...] = FAULTS) -> list[Step]:
    """The schedule for a run: the same seed gives the same kinds, durations and draws."""
    rng = random.Random(seed)
    steps: list[Step] = []
    total = 0.0
    while total < seconds:
        s = Step(rng.choice(faults), round(rng.uniform(2.0, 6.0), 2), round(rng.uniform(1.5, 4.0), 2),
                 rng.random(), rng.randint(1, 48))
        steps.append(s)
        total += s.hold + s.rest
    return steps


def newest_log(data_dir: Path) -> Path | None:
    logs = sorted((data_dir / "version-2").glob("log.*"), key=lambda p: int(p.name.split(".", 1)[1], 16))
    return logs[-1] if logs else None


def data_end(path: Path) -> int:
    """Offset after the last non-zero byte: the log is preallocated with zeros, and cutting the
    zeros would change nothing."""
    size = path.stat().st_size
    with path.open("rb") as f:
        pos = size
        while pos > 0:
            start = max(0, pos - (1 << 20))
            f.seek(start)
            chunk = f.read(pos - start).rstrip(b"\0")
            if chunk:
                return start + len(chunk)
            pos = start
    return 0


def truncate_tail(path: Path, nbytes: int) -> tuple[int, int]:
    """Cut ``nbytes`` off the end of the log's data (dropping the zero padding too);
    returns (old data end, new size)."""
    end = data_end(path)
    new = max(0, end - nbytes)
    os.truncate(path, new)
    return end, new


class Nemesis(threading.Thread):
    """Runs a plan against a lab until it is done or told to stop; ``log`` is what it did."""

    def __init__(self, lab: Lab, steps: list[Step], stop: threading.Event, say: Any = None) -> None:
        super().__init__(name="safety-nemesis", daemon=True)
        self.lab = lab
        self.steps = steps
        self.stop_flag = stop
        self.log: list[Applied] = []
        self.say = say or (lambda text: None)
        self.t0 = time.monotonic()

    def _sleep(self, seconds: float) -> None:
        self.stop_flag.wait(seconds)

    def _pick(self, draw: float, among: list[int]) -> int:
        return among[min(int(draw * len(among)), len(among) - 1)]

    def _leader_or_pick(self, draw: float) -> int:
        leader = self.lab.leader()
        return leader if leader is not None else self._pick(draw, self.lab.node_ids())

    def run(self) -> None:
        for step in self.steps:
            if self.stop_flag.is_set():
                break
            rec = Applied(step.kind, round(time.monotonic() - self.t0, 3))
            self.log.append(rec)
            try:
                undo = self.apply(step, rec)
                self.say(f"[{rec.start:7.1f}s] {step.kind} {rec.targets} {rec.detail}".rstrip())
                self._sleep(step.hold)
                undo()
            except (LabError, OSError) as e:
                rec.error = f"{type(e).__name__}: {e}"
                self.say(f"[{rec.start:7.1f}s] {step.kind} failed: {e}")
                self.recover()
            rec.end = round(time.monotonic() - self.t0, 3)
            self._sleep(step.rest)

    def apply(self, step: Step, rec: Applied) -> Any:
        """Apply one fault; returns the function that undoes it."""
        lab, ids = self.lab, self.lab.node_ids()
        kind = step.kind
        if kind in ("kill-random", "kill-leader", "truncate-log"):
            n = self._leader_or_pick(step.pick) if kind == "kill-leader" else self._pick(step.pick, ids)
            rec.targets = [n]
            lab.kill(n)
            if kind == "truncate-log":
                log = newest_log(lab.dir / f"n{n}" / "data")
                if log is None:
                    rec.detail = "no txn log yet"
                else:
                    end, new = truncate_tail(log, step.cut_bytes)
                    rec.detail = f"{log.name}: data end {end} -> size {new} (-{end - new} bytes)"
            return lambda: lab.start(n)
        if kind in ("pause-random", "pause-leader"):
            n = self._leader_or_pick(step.pick) if kind == "pause-leader" else self._pick(step.pick, ids)
            rec.targets = [n]
            lab.pause(n)
            return lambda: lab.resume(n)
        if kind == "partition-halves":
            order = ids[:]
            random.Random(step.pick).shuffle(order)
            if step.pick >= 0.5 and len(order) >= 3:
                # Jepsen's bridge: two halves that cannot see each other, and one node that sees
                # both, so each half may believe it has a majority through the bridge
                bridge, rest = order[0], order[1:]
                left, right = rest[: len(rest) // 2], rest[len(rest) // 2:]
                for a in left:
                    for b in right:
                        lab.oneway(a, b)
                        lab.oneway(b, a)
                rec.targets = [bridge]
                rec.detail = f"bridge {bridge}: {','.join(map(str, left))} x {','.join(map(str, right))}"
                return lab.heal
            small = order[: (len(order) - 1) // 2 or 1]
            rest = [i for i in ids if i not in small]
            spec = f"{','.join(map(str, small))}/{','.join(map(str, rest))}"
            rec.targets, rec.detail = small, spec
            lab.partition(spec)
            return lab.heal
        if kind == "isolate-leader":
            n = self._leader_or_pick(step.pick)
            rec.targets = [n]
            lab.isolate(n)
            return lab.heal
        if kind == "oneway":
            leader = self._leader_or_pick(step.pick)
            others = [i for i in ids if i != leader]
            other = self._pick(step.pick, others)
            src, dst = (leader, other) if step.pick < 0.5 else (other, leader)
            rec.targets, rec.detail = [src, dst], f"{src}->{dst} dropped"
            lab.oneway(src, dst)
            return lab.heal
        raise LabError(f"unknown fault {kind}")

    def recover(self) -> None:
        """Undo everything: network healed, every node resumed and running."""
        try:
            self.lab.heal()
        except LabError:
            pass
        for n in self.lab.state.nodes:
            state = self.lab.backend.process_state(n)
            if state == "paused":
                self.lab.resume(n.id)
            elif state != "running":
                try:
                    self.lab.start(n.id)
                except LabError:
                    pass

    def dump(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.log]
