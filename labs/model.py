"""The lab's model: its saved state, its nodes, their status, and its one error.

A leaf module: the lab (``lab.py``) and every backend import these, and it imports neither,
so a backend never needs the module that chooses backends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class LabError(Exception):
    """A lab command that cannot be done, with what to do instead."""


@dataclass
class Node:
    id: int
    role: str  # participant | observer
    host: str  # where clients connect
    client_port: int
    quorum_port: int
    election_port: int
    pid: int | None = None
    handle: str = ""  # backend-specific: container id, namespace name, ...


@dataclass
class LabState:
    backend: str
    nodes: list[Node]
    tick_ms: int
    faults: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # backend-specific

    def save(self, lab_dir: Path) -> None:
        tmp = lab_dir / "lab.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(lab_dir / "lab.json")

    @classmethod
    def load(cls, lab_dir: Path) -> LabState:
        raw = json.loads((lab_dir / "lab.json").read_text())
        raw["nodes"] = [Node(**n) for n in raw["nodes"]]
        return cls(**raw)


@dataclass
class NodeStatus:
    id: int
    role: str
    address: str
    state: str  # running | paused | stopped
    mode: str | None
    zxid: int | None
    connections: int | None
    sessions: int | None

    @property
    def epoch(self) -> int | None:
        return None if self.zxid is None else self.zxid >> 32
