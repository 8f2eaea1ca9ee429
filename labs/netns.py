"""The netns backend: each server in its own Linux network namespace, on a bridge.

Root only. Every node gets a namespace with a veth pair whose host end sits on the lab's
bridge, and its own address; the servers talk over the real network stack, so a cut link
``a -> b`` is an iptables DROP in a's namespace for b's address, exactly what a firewall
or a broken switch port would do. The host reaches every node through the bridge, which
is how clients and ``zkops lab status`` connect.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from .faultproxy import Faults
from .local import LocalBackend
from .model import LabError, LabState, Node

CHAIN = "ZKOPS-LAB"


def _run(*cmd: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else list(cmd)
    done = subprocess.run(full, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"`{' '.join(full)}` failed: {done.stderr.strip()}")
    return done


class NetnsBackend(LocalBackend):
    """Processes as in the local backend, but each inside its namespace and without the relay."""

    @staticmethod
    def create(lab_dir: Path, nodes: int, observers: int, tick_ms: int, program: str = "zkops") -> LabState:
        if program != "zkops":
            raise LabError(f"the netns backend runs zkops only, not {program!r}; try --backend local")
        if os.geteuid() != 0:
            raise LabError("the netns backend needs root (ip netns, veth, bridge, iptables); try --backend local")
        tag = f"{random.randrange(16**4):04x}"
        subnet = random.randrange(1, 255)
        members = [Node(i, "observer" if i > nodes else "participant", f"172.31.{subnet}.{10 + i}", 2181, 2888, 3888,
                        handle=f"zk{tag}n{i}") for i in range(1, nodes + observers + 1)]
        for a in members:
            d = lab_dir / f"n{a.id}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            (d / "data" / "myid").write_text(f"{a.id}\n")
            lines = [f"tickTime={tick_ms}", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}",
                     f"clientPort={a.client_port}", f"clientPortAddress={a.host}", "4lw.commands.whitelist=*",
                     "maxClientCnxns=0", "autopurge.purgeInterval=1"]
            if a.role == "observer":
                lines.append("peerType=observer")
            lines += [f"server.{b.id}={b.host}:2888:3888{':observer' if b.role == 'observer' else ''}"
                      for b in members]
            (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
        return LabState("netns", members, tick_ms, extra={"tag": tag, "subnet": subnet, "bridge": f"zkb{tag}"})

    def prepare(self) -> None:
        bridge, subnet = self.state.extra["bridge"], self.state.extra["subnet"]
        _run("ip", "link", "add", bridge, "type", "bridge")
        _run("ip", "addr", "add", f"172.31.{subnet}.1/24", "dev", bridge)
        _run("ip", "link", "set", bridge, "up")
        for n in self.state.nodes:
            ns, veth = n.handle, f"{n.handle}h"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "link", "set", veth, "master", bridge)
            _run("ip", "link", "set", veth, "up")
            _run("ip", "addr", "add", f"{n.host}/24", "dev", "eth0", ns=ns)
            _run("ip", "link", "set", "eth0", "up", ns=ns)
            _run("ip", "link", "set", "lo", "up", ns=ns)
            _run("iptables", "-N", CHAIN, ns=ns)
            _run("iptables", "-I", "OUTPUT", "-j", CHAIN, ns=ns)

    def destroy(self) -> None:
        for n in self.state.nodes:
            _run("ip", "netns", "del", n.handle, check=False)  # takes the veth pair with it
        _run("ip", "link", "del", self.state.extra["bridge"], check=False)

    def start(self, n: Node) -> None:
        d = self.dir / f"n{n.id}"
        out = open(d / "stdout.log", "ab")
        env = dict(os.environ, ZOO_LOG_DIR=str(d))
        proc = subprocess.Popen(["ip", "netns", "exec", n.handle, sys.executable, "-m", "zkops.server",
                                 "start-foreground", str(d / "zoo.cfg")],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=d, start_new_session=True)
        out.close()
        self.children[n.id] = proc
        n.pid = proc.pid  # ip netns exec execs the server in place: same pid

    def apply_faults(self, faults: Faults) -> None:
        if faults.delay_ms:
            raise LabError("`slow` needs tc netem, which this kernel does not have; use the local backend")
        by_id = {n.id: n for n in self.state.nodes}
        for n in self.state.nodes:
            _run("iptables", "-F", CHAIN, ns=n.handle)
            for a, b in sorted(faults.cut):
                if a == n.id:
                    _run("iptables", "-A", CHAIN, "-d", by_id[b].host, "-j", "DROP", ns=n.handle)
