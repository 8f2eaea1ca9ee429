"""The graded histories of the fault lessons, as timelines for the page.

Lessons 06-08 record their clients' register operations in the journal (``register_history``);
this module checks each with the linearizability checker and lays the operations out per
client for drawing, with the operation the checker could not place marked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..history import History, pair
from ..linearizability import check_history
from ..registers import JOURNAL_KEY as KEY


def grade(raw: list[dict[str, Any]], initial: Any = 0) -> dict[str, Any]:
    """Check a recorded history; its operations relative to the first invoke, with verdicts per key."""
    events = History.from_json(raw).snapshot()
    results = check_history(events, initial=initial)
    ops = pair(events)
    t0 = min((o.invoke_time for o in ops), default=0.0)
    t_end = max([o.complete_time for o in ops if o.complete_time is not None] + [o.invoke_time for o in ops],
                default=t0)
    failing = {(k, r.counterexample["failing_op"]["id"]) for k, r in results.items()
               if r.valid is False and r.counterexample}
    drawn = [{"id": o.id, "process": o.process, "key": o.key, "f": o.f, "value": o.value, "kind": o.kind,
              "start": round(o.invoke_time - t0, 4),
              "end": None if o.complete_time is None else round(o.complete_time - t0, 4),
              "violation": (o.key, o.id) in failing} for o in ops]
    verdicts = [{"key": k, "valid": r.valid, "ops": r.ops, "text": r.describe()} for k, r in results.items()]
    valid = all(r.valid for r in results.values())
    return {"valid": valid, "verdicts": verdicts, "ops": drawn, "duration": round(t_end - t0, 4)}


def load(journal_dir: Path | None) -> list[dict[str, Any]]:
    """Every journal in ``journal_dir`` with a recorded history, graded."""
    if journal_dir is None or not journal_dir.is_dir():
        return []
    out = []
    for path in sorted(journal_dir.glob("journal-*.json")):
        try:
            journal = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not journal.get(KEY):
            continue
        try:
            graded = grade(journal[KEY], journal.get("register_initial", 0))
        except (TypeError, ValueError, KeyError) as exc:
            graded = {"valid": None, "verdicts": [{"key": "?", "valid": None, "ops": 0,
                                                   "text": f"unreadable history: {exc}"}], "ops": [], "duration": 0}
        out.append(dict(graded, lesson=journal.get("lesson", path.stem), file=path.name))
    return out
