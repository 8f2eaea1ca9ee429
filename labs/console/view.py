"""The ensemble as the page draws it: servers with their role and counters, links with faults."""

from __future__ import annotations

from typing import Any

from ..faultproxy import Faults
from ..lab import NodeStatus

ROLES = {"leader": "LEADING", "follower": "FOLLOWING", "observer": "OBSERVING", "looking": "LOOKING",
         "standalone": "STANDALONE"}


def role_of(s: NodeStatus) -> str:
    """LEADING / FOLLOWING / OBSERVING / LOOKING for a running server; STOPPED or PAUSED otherwise."""
    if s.state == "stopped":
        return "STOPPED"
    if s.state == "paused":
        return "PAUSED"
    if s.mode is None:
        return "UNREACHABLE"
    return ROLES.get(s.mode, s.mode.upper())


def ensemble(status: list[NodeStatus], faults: Faults) -> dict[str, Any]:
    """A JSON-able picture of the lab: ``nodes``, ``links`` (one per pair, both directions) and ``leader``."""
    nodes = [{"id": s.id, "kind": s.role, "address": s.address, "process": s.state, "role": role_of(s),
              "epoch": s.epoch, "zxid": None if s.zxid is None else hex(s.zxid),
              "connections": s.connections, "sessions": s.sessions} for s in status]
    ids = [s.id for s in status]
    links = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            links.append({"a": a, "b": b, "cut_ab": (a, b) in faults.cut, "cut_ba": (b, a) in faults.cut,
                          "delay_ab": faults.delay_ms.get((a, b), 0), "delay_ba": faults.delay_ms.get((b, a), 0)})
    leaders = [n["id"] for n in nodes if n["role"] == "LEADING"]
    return {"nodes": nodes, "links": links, "leader": leaders[0] if len(leaders) == 1 else None}
