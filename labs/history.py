"""A thread-safe record of what clients asked for and what they were told.

Each operation appears twice: an ``invoke`` entry when a client starts it and one completion
entry: ``ok`` (it happened), ``fail`` (it certainly did not happen) or ``info`` (unknown, e.g.
the connection was lost while a write was in flight; it may take effect at any later time, or
never). The checker only trusts these entries, never the server's own view.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

KINDS = ("invoke", "ok", "fail", "info")
OP_TYPES = ("read", "write", "cas")


@dataclass
class Event:
    """One history entry. ``value``: read -> value seen (None on invoke), write -> value written,
    cas -> ``[expected, new]``."""

    index: int
    process: int
    kind: str
    f: str
    key: str
    value: Any
    time: float  # time.monotonic() seconds


@dataclass
class Operation:
    """An invoke paired with its completion (``complete`` is None if it never completed)."""

    id: int
    process: int
    f: str
    key: str
    value: Any  # for ok reads: the value read
    kind: str  # ok | fail | info
    invoke_time: float
    complete_time: float | None


class History:
    """Append-only, shared by all client threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: list[Event] = []

    def _add(self, process: int, kind: str, f: str, key: str, value: Any) -> Event:
        if kind not in KINDS or f not in OP_TYPES:
            raise ValueError(f"bad event {kind} {f}")
        with self._lock:
            ev = Event(len(self.events), process, kind, f, key, value, time.monotonic())
            self.events.append(ev)
            return ev

    def invoke(self, process: int, f: str, key: str, value: Any = None) -> Event:
        """Record the start of an operation; pass the result to :meth:`complete`."""
        return self._add(process, "invoke", f, key, value)

    def complete(self, inv: Event, kind: str, value: Any = None) -> Event:
        """Record how ``inv`` ended; ``value`` defaults to the invoked value (reads pass what they saw)."""
        if kind == "invoke":
            raise ValueError("complete with ok, fail or info")
        return self._add(inv.process, kind, inv.f, inv.key, inv.value if value is None else value)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def keys(self) -> list[str]:
        return sorted({e.key for e in self.snapshot()})

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(e) for e in self.snapshot()]

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=0))

    @classmethod
    def from_json(cls, raw: list[dict[str, Any]]) -> History:
        h = cls()
        h.events = [Event(**e) for e in raw]
        return h

    @classmethod
    def load(cls, path: Path) -> History:
        return cls.from_json(json.loads(path.read_text()))


def pair(events: list[Event]) -> list[Operation]:
    """Match each invoke with the next completion of the same process (a process runs one op at a
    time). An invoke without completion is treated as ``info``."""
    pending: dict[int, Event] = {}
    ops: list[Operation] = []
    for e in events:
        if e.kind == "invoke":
            if e.process in pending:
                raise ValueError(f"process {e.process} invoked twice without completing (event {e.index})")
            pending[e.process] = e
            continue
        inv = pending.pop(e.process, None)
        if inv is None:
            raise ValueError(f"completion without invoke (event {e.index})")
        ops.append(Operation(inv.index, inv.process, inv.f, inv.key, e.value, e.kind, inv.time, e.time))
    for inv in pending.values():
        ops.append(Operation(inv.index, inv.process, inv.f, inv.key, inv.value, "info", inv.time, None))
    return sorted(ops, key=lambda o: o.invoke_time)
