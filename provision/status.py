"""Ensemble health: ruok/srvr on every node, one leader, all synced, a write read back everywhere."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from ..server.fourletterclient import four_letter_or_empty
from .inventory import Host


@dataclass
class NodeStatus:
    name: str
    address: str
    myid: int
    ruok: bool
    mode: str | None
    zxid: str | None
    connections: int | None


@dataclass
class EnsembleStatus:
    nodes: list[NodeStatus]
    problems: list[str] = field(default_factory=list)
    write_read_ok: bool = False

    @property
    def healthy(self) -> bool:
        return not self.problems


def node_status(h: Host) -> NodeStatus:
    ruok = four_letter_or_empty(h.address, h.client_port, "ruok") == "imok"
    srvr = four_letter_or_empty(h.address, h.client_port, "srvr")
    fields = dict(line.split(": ", 1) for line in srvr.splitlines() if ": " in line)
    conns = fields.get("Connections")
    return NodeStatus(h.name, f"{h.address}:{h.client_port}", h.myid, ruok, fields.get("Mode"), fields.get("Zxid"),
                      int(conns) if conns and conns.isdigit() else None)


def check_ensemble(hosts: list[Host], wait: float = 30.0) -> EnsembleStatus:
    """Wait up to ``wait`` seconds for a healthy ensemble, then report what is wrong."""
    deadline = time.monotonic() + wait
    while True:
        nodes = [node_status(h) for h in hosts]
        problems = _problems(hosts, nodes)
        if not problems or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    status = EnsembleStatus(nodes, problems)
    if not problems:
        status.write_read_ok = _write_read(hosts, status)
    return status


def _problems(hosts: list[Host], nodes: list[NodeStatus]) -> list[str]:
    problems = []
    for n in nodes:
        if not n.ruok:
            problems.append(f"{n.name} ({n.address}) does not answer ruok")
        elif n.mode is None:
            problems.append(f"{n.name} ({n.address}) is not serving")
    leaders = [n.name for n in nodes if n.mode == "leader"]
    if len(hosts) > 1 and len(leaders) != 1:
        problems.append(f"expected exactly one leader, found {len(leaders)}: {leaders}")
    for h, n in zip(hosts, nodes, strict=True):
        expected = "observer" if h.role == "observer" else None
        if expected and n.mode not in (None, expected):
            problems.append(f"{n.name} should be an observer but is {n.mode}")
    return problems


def _write_read(hosts: list[Host], status: EnsembleStatus) -> bool:
    from kazoo.client import KazooClient

    path = f"/zkops-status-{uuid.uuid4().hex[:8]}"
    first = hosts[0]
    writer = KazooClient(hosts=f"{_addr(first)}:{first.client_port}", timeout=5)
    try:
        writer.start(timeout=10)
        writer.create(path, b"ok", ephemeral=True)
        for h in hosts:
            c = KazooClient(hosts=f"{_addr(h)}:{h.client_port}", timeout=5)
            try:
                c.start(timeout=10)
                c.sync(path)
                if c.get(path)[0] != b"ok":
                    status.problems.append(f"{h.name} does not read back the status write")
            finally:
                c.stop()
                c.close()
        return not status.problems
    except Exception as exc:  # any client failure is a health problem, reported as such
        status.problems.append(f"write/read check failed: {exc}")
        return False
    finally:
        writer.stop()
        writer.close()


def _addr(h: Host) -> str:
    return "127.0.0.1" if h.address in ("0.0.0.0", "") else h.address
