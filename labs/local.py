"""The local backend: servers as processes on 127.0.0.1, faults through the relay.

No root needed. Each node's zoo.cfg names its peers by relay ports (node i reaches node j
through the relay's ``i -> j`` port), so cutting or slowing a directed link is a rule in
the relay. Clients connect to the servers directly.

A node runs zkops or, with ``program="apache"``, Apache ZooKeeper 3.8 (Debian's package) on
the same zoo.cfg and dataDir, so it can be moved from one to the other. Such a lab also
writes ``migrate.yaml``, a ``zkops migrate`` inventory of its nodes (``connection: local``).
A node's server is found again by its pid files (``n<i>/java.pid``, zkops' pidfile in its
dataDir) when something else (``zkops migrate``) replaced it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import apache
from .faultproxy import Faults
from .model import LabError, LabState, Node, Program

KINDS = ("quorum", "election")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that are free right now, below the kernel's ephemeral range where
    there is room: a node killed and started again binds its ports a second time, and a port
    from the ephemeral range may meanwhile be the source port of an outgoing connection."""
    import random

    socks: list[socket.socket] = []
    try:
        low = _ephemeral_low()
        tries = 0
        while low > 12000 and len(socks) < n and tries < 50 * n:
            tries += 1
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", random.randrange(10000, low)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _proc_state(pid: int | None) -> str | None:
    """The kernel's one-letter state (R, S, T, Z, ...) or None when there is no such process."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2]


class LocalBackend:
    """Processes on this machine; ``create`` lays out directories, configs and relay ports."""

    def __init__(self, lab_dir: Path, state: LabState) -> None:
        self.dir = lab_dir
        self.state = state
        self.children: dict[int, subprocess.Popen] = {}

    # ------------------------------------------------------------ layout
    @staticmethod
    def create(lab_dir: Path, nodes: int, observers: int, tick_ms: int, program: str = "zkops") -> LabState:
        program = Program(program).value
        if program == Program.APACHE:
            apache.require()
        total = nodes + observers
        ports = free_ports(3 * total + 2 * total * (total - 1))
        members = []
        for i in range(1, total + 1):
            c, q, e = ports.pop(), ports.pop(), ports.pop()
            members.append(Node(i, "observer" if i > nodes else "participant", "127.0.0.1", c, q, e,
                                program=program))
        links: list[dict[str, Any]] = []
        for a in members:
            for b in members:
                if a is not b:
                    for kind in KINDS:
                        target = b.quorum_port if kind == "quorum" else b.election_port
                        links.append({"src": a.id, "dst": b.id, "kind": kind, "listen": ports.pop(),
                                      "target": target})
        (lab_dir / "links.json").write_text(json.dumps(links, indent=1))
        (lab_dir / "faults.json").write_text(json.dumps(Faults().dump()))
        for a in members:
            d = lab_dir / f"n{a.id}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            (d / "data" / "myid").write_text(f"{a.id}\n")
            lines = [
                f"tickTime={tick_ms}", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}",
                f"clientPort={a.client_port}", "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
                "maxClientCnxns=0", "autopurge.purgeInterval=1",
                "admin.enableServer=false",  # processes share 127.0.0.1: one AdminServer port would not do
            ]
            if program == Program.APACHE:  # the migration lab's clients keep 30 s sessions through every move
                lines.append("maxSessionTimeout=60000")
            if a.role == "observer":
                lines.append("peerType=observer")
            for b in members:
                if b is a:
                    q, e = a.quorum_port, a.election_port
                else:
                    q, e = (next(lk["listen"] for lk in links if lk["src"] == a.id and lk["dst"] == b.id
                                 and lk["kind"] == kind) for kind in KINDS)
                role = ":observer" if b.role == "observer" else ""
                lines.append(f"server.{b.id}=127.0.0.1:{q}:{e}{role}")
            (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
        if program == Program.APACHE:
            (lab_dir / "migrate.yaml").write_text(migrate_inventory(lab_dir, members))
        return LabState("local", members, tick_ms)

    # ------------------------------------------------------------ the relay
    def prepare(self) -> None:
        if len(self.state.nodes) < 2:
            return
        ready = self.dir / "faultproxy.ready"
        ready.unlink(missing_ok=True)
        log = open(self.dir / "faultproxy.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "zkops.labs.faultproxy", str(self.dir)],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.state.extra["proxy_pid"] = proc.pid
        self.children[0] = proc
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the link relay did not start; see {self.dir / 'faultproxy.log'}")
            time.sleep(0.02)

    def apply_faults(self, faults: Faults) -> None:
        tmp = self.dir / "faults.json.tmp"
        tmp.write_text(json.dumps(faults.dump()))
        tmp.replace(self.dir / "faults.json")
        pid = self.state.extra.get("proxy_pid")
        if pid is None or "zkops.labs.faultproxy" not in _cmdline(pid):
            raise LabError("the link relay is not running; `zkops lab down` and `up` again")
        os.kill(pid, signal.SIGHUP)
        time.sleep(0.05)  # the relay re-reads on its next loop turn

    def destroy(self) -> None:
        for n in self.state.nodes:  # a server another tool started (zkops migrate) that the lab did not know of
            self.kill(n)
        pid = self.state.extra.pop("proxy_pid", None)
        if pid is not None and "zkops.labs.faultproxy" in _cmdline(pid):
            os.kill(pid, signal.SIGTERM)
            self._reap(0, pid)

    # ------------------------------------------------------------ processes
    def _serves(self, n: Node, pid: int | None) -> bool:
        """``pid`` is a live server process on this node's zoo.cfg."""
        return (pid is not None and str(self.dir / f"n{n.id}" / "zoo.cfg") in _cmdline(pid)
                and _proc_state(pid) not in (None, "Z", "X"))

    def _ours(self, n: Node) -> bool:
        """Whether the node's server runs, adopting (pid and program) the one another tool started on
        its zoo.cfg: ``zkops migrate`` stops a node's server and starts the other program."""
        if self._serves(n, n.pid):
            return True
        d = self.dir / f"n{n.id}"
        for pidfile in (d / "java.pid", d / "data" / "zookeeper_server.pid"):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if self._serves(n, pid):
                n.pid = pid
                n.program = apache.program_of(_cmdline(pid)).value
                return True
        return n.pid is not None and str(d / "zoo.cfg") in _cmdline(n.pid)  # a zombie: ours to reap

    def start(self, n: Node) -> None:
        d = self.dir / f"n{n.id}"
        if n.program == Program.APACHE:
            apache.require()
            cmd, out_name = apache.command(d / "zoo.cfg"), "java.out"
        else:
            cmd, out_name = [sys.executable, "-m", "zkops.server", "start-foreground", str(d / "zoo.cfg")], "stdout.log"
        out = open(d / out_name, "ab")
        env = dict(os.environ, ZOO_LOG_DIR=str(d))
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=d, start_new_session=True)
        out.close()
        self.children[n.id] = proc
        n.pid = proc.pid
        if n.program == Program.APACHE:  # where `zkops migrate` (java.pid_file) finds the Java server
            (d / "java.pid").write_text(str(proc.pid))

    def running(self, n: Node) -> bool:
        return self._ours(n) and self._serves(n, n.pid)

    def process_state(self, n: Node) -> str:
        if not self.running(n):
            return "stopped"
        return "paused" if _proc_state(n.pid) in ("T", "t") else "running"

    def kill(self, n: Node) -> None:
        if self._ours(n):
            assert n.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGKILL)
            self._reap(n.id, n.pid)

    def stop(self, n: Node) -> None:
        """A clean stop: SIGTERM, then wait (up to 10 s) for the process to go."""
        if self._ours(n):
            assert n.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(n.pid, signal.SIGTERM)
            self._reap(n.id, n.pid)

    def signal(self, n: Node, sig: int) -> None:
        if not self.running(n):
            raise LabError(f"node {n.id} is not running")
        assert n.pid is not None
        os.kill(n.pid, sig)

    def _reap(self, key: int, pid: int) -> None:
        proc = self.children.pop(key, None)
        if proc is not None and proc.pid != pid:  # the node's server was replaced (zkops migrate)
            proc.poll()
            proc = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return
            else:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                if _proc_state(pid) in (None, "Z", "X"):
                    return
            time.sleep(0.01)

    # ------------------------------------------------------------ observing
    def election_events(self, n: Node) -> list[dict[str, Any]]:
        path = self.dir / f"n{n.id}" / "data" / "election-events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out


def migrate_inventory(lab_dir: Path, members: list[Node]) -> str:
    """A ``zkops migrate`` inventory of the lab's nodes, with how the lab runs each Java server."""
    lab_dir = lab_dir.absolute()
    lines = ["# zkops migrate inventory of this lab's nodes (written by `zkops lab up --apache`)",
             "all:", "  hosts:"]
    for n in members:
        d = lab_dir / f"n{n.id}"
        java = {"command": shlex.join(apache.command(d / "zoo.cfg")), "zoo_cfg": str(d / "zoo.cfg"),
                "pid_file": str(d / "java.pid"), "log_file": str(d / "java.out")}
        lines += [f"    zk{n.id}:", "      connection: local", f"      address: {n.host}",
                  f"      client_port: {n.client_port}", f"      quorum_port: {n.quorum_port}",
                  f"      election_port: {n.election_port}", f"      myid: {n.id}", f"      role: {n.role}",
                  f"      base_dir: {json.dumps(str(d))}", "      java:",
                  *[f"        {k}: {json.dumps(v)}" for k, v in java.items()]]
    return "\n".join(lines) + "\n"
