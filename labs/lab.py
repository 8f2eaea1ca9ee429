"""A lab: an ensemble to break on purpose, and what it remembers between commands.

``Lab.up(...)`` brings up N voters (+ observers) on a backend and writes ``lab.json`` in the
lab directory, so that separate ``zkops lab ...`` invocations (and lab scripts through this
Python API) find the same servers. Faults are expressed once, as a set of cut directed links
and per-link delays; each backend turns them into its own mechanism (a relay for local
processes, iptables/tc in namespaces or containers).
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from ..server.fourletterclient import four_letter_or_empty
from . import apache
from .backends import Backend, backend_class
from .faultproxy import Faults
from .model import LabError, LabState, Node, NodeStatus, Program


def default_lab_dir() -> Path:
    """``$ZKOPS_LAB_DIR``, else the user's state directory (one lab at a time per user)."""
    env = os.environ.get("ZKOPS_LAB_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "zkops" / "lab"


def parse_groups(spec: str, known: list[int]) -> list[list[int]]:
    """``"1,2/3"`` -> [[1, 2], [3]]; nodes left out form one more group."""
    groups = []
    for part in spec.split("/"):
        ids = [int(x) for x in part.replace(" ", "").split(",") if x]
        if not ids:
            raise LabError(f"empty side in partition {spec!r}; write it as 1,2/3")
        groups.append(ids)
    flat = [i for g in groups for i in g]
    unknown = sorted(set(flat) - set(known))
    if unknown:
        raise LabError(f"no node {unknown[0]} in this lab (nodes: {', '.join(map(str, known))})")
    if len(flat) != len(set(flat)):
        raise LabError(f"a node is on both sides of {spec!r}")
    rest = [i for i in known if i not in flat]
    if rest:
        groups.append(rest)
    if len(groups) < 2:
        raise LabError(f"{spec!r} leaves everyone on one side; name at least two groups: 1,2/3")
    return groups


class Lab:
    """The Python API behind ``zkops lab``; also the ``Cluster`` the classroom lessons use."""

    def __init__(self, lab_dir: Path, state: LabState, backend: Backend) -> None:
        self.dir = lab_dir
        self.state = state
        self.backend = backend

    # ------------------------------------------------------------ life cycle
    @classmethod
    def up(cls, lab_dir: Path | None = None, backend: str = "local", nodes: int = 3, observers: int = 0,
           start: bool = True, tick_ms: int = 500, program: str = "zkops", **backend_options: Any) -> Lab:
        """``backend_options`` go to the backend's ``create`` (the ssh backend's ``inventory``, the
        vagrant backend's ``vagrant_dir``); the process backends take none. ``program="apache"``
        runs every node as Apache ZooKeeper (local backend only; lesson 12 moves them to zkops)."""
        lab_dir = lab_dir or default_lab_dir()
        if program not in {p.value for p in Program}:
            raise LabError(f"unknown server program {program!r}; the lab runs: {', '.join(p.value for p in Program)}")
        if program != Program.ZKOPS:
            if backend != "local":
                raise LabError(f"Apache ZooKeeper nodes run on the local backend only, not {backend!r}")
            apache.require()
            backend_options["program"] = program
        if (lab_dir / "lab.json").exists():
            existing = cls.load(lab_dir)
            if existing.any_running():
                raise LabError(f"a lab is already up in {lab_dir}; `zkops lab down` first")
            existing.down()
        if nodes < 1 or observers < 0:
            raise LabError("--nodes must be at least 1 and --observers at least 0")
        impl = backend_class(backend)
        options = {k: v for k, v in backend_options.items() if v is not None}
        made = [d for d in (lab_dir, *lab_dir.parents) if not d.exists()]  # the lab dir and its new parents
        lab_dir.mkdir(parents=True, exist_ok=True)
        try:
            state = impl.create(lab_dir, nodes, observers, tick_ms, **options)
        except BaseException:
            if made:  # a refused or half-made lab leaves no directory behind
                shutil.rmtree(made[-1], ignore_errors=True)
            raise
        state.save(lab_dir)
        lab = cls(lab_dir, state, impl(lab_dir, state))
        try:
            lab.backend.prepare()
            lab._save()
            for n in lab.state.nodes:  # the ssh backends' deploy has started them already
                if start and not lab.backend.running(n):
                    lab.start(n.id)
                elif not start and lab.backend.running(n):
                    lab.backend.stop(n)
        except BaseException:
            lab.down()
            raise
        return lab

    @classmethod
    def load(cls, lab_dir: Path | None = None) -> Lab:
        lab_dir = lab_dir or default_lab_dir()
        if not (lab_dir / "lab.json").exists():
            raise LabError(f"no lab in {lab_dir}; start one with `zkops lab up`")
        state = LabState.load(lab_dir)
        return cls(lab_dir, state, backend_class(state.backend)(lab_dir, state))

    def reload(self) -> None:
        """Re-read lab.json: another process (the console, another command) may have restarted a server."""
        if (self.dir / "lab.json").exists():
            fresh = LabState.load(self.dir)
            self.state.__dict__.update(fresh.__dict__)

    def down(self) -> None:
        """Stop everything the lab started and remove its directory."""
        self.reload()
        for n in self.state.nodes:
            if n.pid is not None or n.handle:
                try:
                    self.backend.kill(n)
                except LabError:
                    pass
            n.pid = None
        self.backend.destroy()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _save(self) -> None:
        self.state.save(self.dir)

    def node(self, node_id: int) -> Node:
        for n in self.state.nodes:
            if n.id == node_id:
                return n
        raise LabError(f"no node {node_id} in this lab (nodes: {', '.join(str(n.id) for n in self.state.nodes)})")

    def any_running(self) -> bool:
        return any(self.backend.running(n) for n in self.state.nodes)

    # ------------------------------------------------------------ node faults
    def start(self, node_id: int, program: str | None = None) -> None:
        """Start a stopped server; ``program`` (zkops | apache) changes what the node runs, on the same
        zoo.cfg, myid and dataDir (by hand what ``zkops migrate`` does; local backend only)."""
        n = self.node(node_id)
        if self.backend.running(n):
            raise LabError(f"node {node_id} is already running")
        if program is not None and program != n.program:
            if program not in {p.value for p in Program}:
                raise LabError(f"unknown server program {program!r}; the lab runs: "
                               f"{', '.join(p.value for p in Program)}")
            if self.state.backend != "local":
                raise LabError(f"only the local backend changes a node's program, not {self.state.backend!r}")
            n.program = program
        self.backend.start(n)
        self._save()

    def kill(self, node_id: int) -> None:
        """SIGKILL, as a crash would: nothing is flushed, nothing said to the peers."""
        n = self.node(node_id)
        if not self.backend.running(n):
            raise LabError(f"node {node_id} is not running")
        self.backend.kill(n)
        n.pid = None
        self._save()

    def pause(self, node_id: int) -> None:
        """SIGSTOP, as a long GC pause would: sockets stay open, nothing answers. Returns once
        the process is stopped (a signal is delivered asynchronously)."""
        self.backend.signal(self.node(node_id), signal.SIGSTOP)
        self._await_state(node_id, "paused")

    def resume(self, node_id: int) -> None:
        self.backend.signal(self.node(node_id), signal.SIGCONT)
        self._await_state(node_id, "running")

    def _await_state(self, node_id: int, want: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (state := self.backend.process_state(self.node(node_id))) != want:
            if time.monotonic() > deadline:
                raise LabError(f"node {node_id} is {state}, not {want}, {timeout:.0f} s after the signal")
            time.sleep(0.01)

    # ------------------------------------------------------------ network faults
    def faults(self) -> Faults:
        raw = self.state.faults
        return Faults({(a, b) for a, b in raw.get("cut", [])},
                      {tuple(int(x) for x in k.split("-")): v for k, v in raw.get("delay_ms", {}).items()})  # type: ignore[misc]

    def _set_faults(self, faults: Faults) -> None:
        self.state.faults = faults.dump()
        self.backend.apply_faults(faults)
        self._save()

    def partition(self, spec: str) -> list[list[int]]:
        groups = parse_groups(spec, self.node_ids())
        f = self.faults()
        for g in groups:
            for h in groups:
                if g is not h:
                    f.cut |= {(a, b) for a in g for b in h}
        self._set_faults(f)
        return groups

    def isolate(self, node_id: int) -> None:
        self.node(node_id)
        self.partition(str(node_id))

    def oneway(self, src: int, dst: int) -> None:
        """Drop what ``src`` sends to ``dst``; ``dst`` still reaches ``src``."""
        self.node(src), self.node(dst)
        f = self.faults()
        f.cut.add((src, dst))
        self._set_faults(f)

    def slow(self, a: int, b: int, ms: int) -> None:
        self.node(a), self.node(b)
        if ms < 0:
            raise LabError("the delay must be at least 0 ms")
        f = self.faults()
        f.delay_ms[(a, b)] = ms
        f.delay_ms[(b, a)] = ms
        self._set_faults(f)

    def heal(self) -> None:
        self._set_faults(Faults())

    # ------------------------------------------------------------ observing
    def node_ids(self) -> list[int]:
        return [n.id for n in self.state.nodes]

    def observer_ids(self) -> list[int]:
        return [n.id for n in self.state.nodes if n.role == "observer"]

    def address(self, node: int) -> tuple[str, int]:
        n = self.node(node)
        return n.host, n.client_port

    def connect_string(self, ids: list[int] | None = None) -> str:
        return ",".join(f"{h}:{p}" for h, p in (self.address(i) for i in (ids or self.node_ids())))

    def status(self) -> list[NodeStatus]:
        out = []
        for n in self.state.nodes:
            state = self.backend.process_state(n)
            srvr = four_letter_or_empty(n.host, n.client_port, "srvr", timeout=1.0) if state == "running" else ""
            mntr = four_letter_or_empty(n.host, n.client_port, "mntr", timeout=1.0) if srvr else ""
            fields = dict(line.split(": ", 1) for line in srvr.splitlines() if ": " in line)
            stats = dict(line.split("\t", 1) for line in mntr.splitlines() if "\t" in line)
            mode = fields.get("Mode")
            if state == "running" and mode is None:
                mode = "looking" if "not currently serving" in srvr else None
            zxid = int(fields["Zxid"], 16) if "Zxid" in fields else None
            conns = int(stats["zk_num_alive_connections"]) if "zk_num_alive_connections" in stats else None
            sessions = int(stats["zk_global_sessions"]) if "zk_global_sessions" in stats else None
            out.append(NodeStatus(n.id, n.role, f"{n.host}:{n.client_port}", state, mode, zxid, conns, sessions,
                                  fields.get("Zookeeper version")))
        return out

    def modes(self) -> dict[int, str | None]:
        return {s.id: (s.mode if s.mode != "looking" else None) for s in self.status()}

    def zxids(self) -> dict[int, int | None]:
        return {s.id: s.zxid for s in self.status()}

    def leader(self) -> int | None:
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_leader(self, timeout: float = 60.0, among: list[int] | None = None) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            modes = self.modes()
            ids = among or list(modes)
            leaders = [i for i in ids if modes.get(i) == "leader"]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.1)
        raise LabError(f"no single leader after {timeout:.0f} s: {self.modes()}")

    def election_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for n in self.state.nodes:
            events += self.backend.election_events(n)
        return sorted(events, key=lambda e: e.get("ts", 0))
