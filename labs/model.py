"""The lab's model: its saved state, its nodes, their status, and its one error.

A leaf module: the lab (``lab.py``) and every backend import these, and it imports neither,
so a backend never needs the module that chooses backends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any


class LabError(Exception):
    """A lab command that cannot be done, with what to do instead."""


class Program(str, Enum):
    """Which server program a lab node runs (Apache ZooKeeper only on the local backend)."""

    ZKOPS = "zkops"
    APACHE = "apache"


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
    program: str = Program.ZKOPS.value  # what it runs, or ran last (a Program value)


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
    version: str | None = None  # srvr's "Zookeeper version" line: which program serves there

    @property
    def program(self) -> Program | None:
        """What the server says it is; None when it does not answer."""
        if self.version is None:
            return None
        return Program.ZKOPS if "zkops" in self.version else Program.APACHE

    @property
    def epoch(self) -> int | None:
        return None if self.zxid is None else self.zxid >> 32
