"""A linearizability checker for single registers (read / write / compare-and-set), per key.

Wing & Gong's search, in the just-in-time form of Lowe and of Knossos/Porcupine: walk the
call/return events in time order; at a call, try to linearize that operation now (apply it to
the register model); at a return whose operation is not linearized yet, backtrack. A cache of
(set of linearized ops, register value) configurations already explored keeps it polynomial
in practice. ``info`` operations (outcome unknown) get a return at +infinity, so they may take
effect at any time after their invoke, and the search succeeds once every ``ok`` operation is
linearized, whether or not the pending ``info`` ones are: they may never have happened.
``fail`` operations certainly did not happen and are dropped, as are reads that did not
complete ``ok`` (a read has no effect).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from .history import Event, Operation, pair


@dataclass
class CheckResult:
    """``valid`` is True, False, or None when the search budget ran out (unknown)."""

    valid: bool | None
    key: str
    ops: int
    explored: int
    counterexample: dict[str, Any] | None = None

    def describe(self) -> str:
        if self.valid:
            return f"{self.key}: linearizable ({self.ops} ops, {self.explored} configurations)"
        if self.valid is None:
            return f"{self.key}: UNKNOWN, search budget exhausted after {self.explored} configurations"
        c = self.counterexample or {}
        return f"{self.key}: NOT linearizable: {c.get('summary', '')}"


@dataclass
class _Entry:
    op: int  # index into the op list
    call: bool
    info: bool = False
    match: _Entry | None = None
    prev: _Entry | None = None
    next: _Entry | None = None


@dataclass
class _Model:
    """The register: ``step`` returns (allowed, new value)."""

    initial: Any = None
    ops: list[Operation] = field(default_factory=list)

    def step(self, state: Any, op: Operation) -> tuple[bool, Any]:
        if op.f == "read":
            return op.value == state, state
        if op.f == "write":
            return True, op.value
        expected, new = op.value
        return (state == expected), (new if state == expected else state)


def _relevant(ops: list[Operation]) -> list[Operation]:
    out = []
    for o in ops:
        if o.kind == "fail":
            continue
        if o.f == "read" and o.kind != "ok":
            continue
        out.append(o)
    return out


def _op_json(o: Operation) -> dict[str, Any]:
    done = None if o.complete_time is None else round(o.complete_time, 6)
    return {"id": o.id, "process": o.process, "f": o.f, "value": o.value, "kind": o.kind,
            "invoke": round(o.invoke_time, 6), "complete": done}


def check_operations(ops: list[Operation], key: str = "", initial: Any = None,
                     max_configurations: int = 2_000_000) -> CheckResult:
    """Check one register's operations (already paired); ``initial`` is its value before any op."""
    ops = _relevant(ops)
    model = _Model(initial, ops)
    n = len(ops)
    if n == 0:
        return CheckResult(True, key, 0, 0)
    # events in time order; at equal times calls first (the permissive reading: they overlap)
    points: list[tuple[float, int, int, bool]] = []
    for i, o in enumerate(ops):
        points.append((o.invoke_time, 0, i, True))
        ret = math.inf if o.kind == "info" or o.complete_time is None else o.complete_time
        points.append((ret, 1, i, False))
    points.sort()
    head = _Entry(-1, True)  # sentinel
    calls: dict[int, _Entry] = {}
    last = head
    for t, _r, i, is_call in points:
        e = _Entry(i, is_call, info=not is_call and t == math.inf)
        if is_call:
            calls[i] = e
        else:
            calls[i].match = e
        e.prev, last.next = last, e
        last = e

    def lift(c: _Entry) -> None:
        c.prev.next = c.next  # type: ignore[union-attr]
        if c.next:
            c.next.prev = c.prev
        r = c.match
        r.prev.next = r.next  # type: ignore[union-attr]
        if r.next:  # type: ignore[union-attr]
            r.next.prev = r.prev  # type: ignore[union-attr]

    def unlift(c: _Entry) -> None:
        r = c.match
        r.prev.next = r  # type: ignore[union-attr]
        if r.next:  # type: ignore[union-attr]
            r.next.prev = r  # type: ignore[union-attr]
        c.prev.next = c  # type: ignore[union-attr]
        if c.next:
            c.next.prev = c

    state = initial
    linearized = 0
    cache: set[tuple[int, Any]] = set()
    stack: list[tuple[_Entry, Any]] = []
    entry = head.next
    explored = 0
    best_depth = -1
    best: dict[str, Any] = {}
    blocked_states: dict[int, set[str]] = defaultdict(set)
    while True:
        if entry is None or (not entry.call and entry.info):
            return CheckResult(True, key, n, explored)
        if entry.call:
            o = ops[entry.op]
            allowed, new_state = model.step(state, o)
            if allowed:
                bits = linearized | (1 << entry.op)
                conf = (bits, new_state)
                if conf not in cache:
                    explored += 1
                    if explored > max_configurations:
                        return CheckResult(None, key, n, explored)
                    cache.add(conf)
                    stack.append((entry, state))
                    state, linearized = new_state, bits
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # a return whose op is not linearized: this branch is dead
        blocked_states[entry.op].add(repr(state))
        if len(stack) >= best_depth:
            best_depth = len(stack)
            pending = []
            walk = head.next
            while walk is not None and walk is not entry:
                if walk.call:
                    pending.append(walk.op)
                walk = walk.next
            best = {"op": entry.op, "state": state, "pending": pending,
                    "recent": [s[0].op for s in stack[-8:]]}
        if not stack:
            break
        entry, state = stack.pop()
        linearized &= ~(1 << entry.op)
        unlift(entry)
        entry = entry.next
    bad = ops[best["op"]]
    states = sorted(blocked_states[best["op"]])[:10]
    what = f"read {bad.value!r}" if bad.f == "read" else f"{bad.f} {bad.value!r}"
    summary = (f"op {bad.id} (process {bad.process}: {what}, ok) cannot be placed before it returned; "
               f"the register could only hold {', '.join(states)} then, "
               f"with {len(best['pending'])} concurrent ops still open")
    counter = {
        "summary": summary,
        "failing_op": _op_json(bad),
        "possible_values": states,
        "linearized_before": [_op_json(ops[i]) for i in best["recent"]],
        "concurrent": [_op_json(ops[i]) for i in best["pending"][:40]],
        "linearized_count": best_depth,
    }
    return CheckResult(False, key, n, explored, counter)


def check_history(events: list[Event], initial: dict[str, Any] | Any = None,
                  max_configurations: int = 2_000_000) -> dict[str, CheckResult]:
    """Check every key of a history independently (linearizability is compositional).
    ``initial`` is one value for all keys or a dict key -> value."""
    ops = pair(events)
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for o in ops:
        by_key[o.key].append(o)
    out = {}
    for key in sorted(by_key):
        init = initial.get(key) if isinstance(initial, dict) else initial
        out[key] = check_operations(by_key[key], key, init, max_configurations)
    return out
