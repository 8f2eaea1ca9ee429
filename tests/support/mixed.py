"""Ensembles of real processes where each member is either zkops or Debian's Apache ZooKeeper 3.8.

Every member gets the same ``server.N`` lines; ``kinds`` says which program runs each sid.
Ports are free ones on 127.0.0.1, data in a fresh temporary directory, and every process is
stopped by its pid (``cleanup``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.ensemble import mode
from tests.support.refzk import classpath, free_port


class MixedEnsemble:
    def __init__(self, kinds: dict[int, str], observers: set[int] | None = None, tick_ms: int = 200,
                 extra: dict[str, str] | None = None, java_props: list[str] | None = None,
                 env: dict[str, str] | None = None, per_node: dict[int, dict[str, str]] | None = None,
                 server_lines: dict[int, str] | None = None, dynamic: bool = False) -> None:
        self.kinds = dict(kinds)  # sid -> "zkops" | "apache"
        self.ids = sorted(kinds)
        self.observers = set(observers or ())
        self.workdir = Path(tempfile.mkdtemp(prefix="zk-mixed-"))
        self.ports = {i: (free_port(), free_port(), free_port()) for i in self.ids}
        self.procs: dict[int, subprocess.Popen] = {}
        self.tick_ms = tick_ms
        self.extra = dict(extra or {})
        self.java_props = list(java_props or [])
        self.env = dict(env or {})  # for the zkops processes
        self.per_node = {i: dict(v) for i, v in (per_node or {}).items()}  # zoo.cfg keys of one server
        self.server_lines = dict(server_lines or {})  # sid -> the address part of its server.N line
        # dynamic: the membership in zoo.cfg.dynamic (client ports on the server lines), as
        # Apache's reconfig docs lay it out, instead of server.N and clientPort in zoo.cfg
        self.dynamic = dynamic
        for i in self.ids:
            (self.data(i)).mkdir(parents=True, exist_ok=True)
            (self.data(i) / "myid").write_text(f"{i}\n")
            self.write_config(i)

    def data(self, i: int) -> Path:
        return self.workdir / f"n{i}" / "data"

    def write_config(self, i: int) -> Path:
        lines = []
        for j in self.ids:
            _, q, e = self.ports[j]
            addr = self.server_lines.get(j, f"127.0.0.1:{q}:{e}")
            role = ":observer" if j in self.observers else (":participant" if self.dynamic else "")
            client = f";127.0.0.1:{self.ports[j][0]}" if self.dynamic else ""
            lines.append(f"server.{j}={addr}{role}{client}")
        cfg = {
            "tickTime": str(self.tick_ms), "initLimit": "10", "syncLimit": "5", "dataDir": str(self.data(i)),
            "clientPort": str(self.ports[i][0]), "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*", "maxClientCnxns": "0", "admin.enableServer": "false",
        }
        if i in self.observers:
            cfg["peerType"] = "observer"
        cfg.update(self.extra)
        cfg.update(self.per_node.get(i, {}))
        path = self.workdir / f"n{i}" / "zoo.cfg"
        if self.dynamic:
            del cfg["clientPort"], cfg["clientPortAddress"]
            dyn = self.workdir / f"n{i}" / "zoo.cfg.dynamic"
            dyn.write_text("\n".join(lines) + "\n")
            cfg["dynamicConfigFile"] = str(dyn)
            lines = []
        path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()) + "\n".join(lines) + "\n")
        return path

    def client_port(self, i: int) -> int:
        return self.ports[i][0]

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.client_port(i)}"

    @property
    def connect_string(self) -> str:
        return ",".join(self.address(i) for i in self.ids)

    def start(self, *ids: int) -> MixedEnsemble:
        for i in ids or self.ids:
            d = self.workdir / f"n{i}"
            cfg = d / "zoo.cfg"
            out = open(d / "stdout.log", "ab")
            if self.kinds[i] == "zkops":
                env = dict(os.environ, ZOO_LOG_DIR=str(d), **self.env)
                cmd = [sys.executable, "-m", "zkops.server", "start-foreground", str(cfg)]
            else:
                env = dict(os.environ)
                cmd = ["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
                       "-Dorg.slf4j.simpleLogger.defaultLogLevel=info", *self.java_props,
                       "-cp", classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]
            self.procs[i] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=d)
            out.close()
        return self

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        p = self.procs.pop(i, None)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def modes(self) -> dict[int, str | None]:
        return {i: mode(self.client_port(i)) if i in self.procs else None for i in self.ids}

    def leader(self) -> int | None:
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_ready(self, timeout: float = 60.0, ids: list[int] | None = None) -> int:
        deadline = time.monotonic() + timeout
        want = ids or [i for i in self.ids if i in self.procs]
        modes: dict[int, str | None] = {}
        while time.monotonic() < deadline:
            modes = self.modes()
            leaders = [i for i in want if modes[i] == "leader"]
            if len(leaders) == 1 and all(modes[i] in ("leader", "follower", "observer") for i in want):
                return leaders[0]
            time.sleep(0.2)
        raise TimeoutError(f"mixed ensemble not ready: {modes}\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        out = []
        for i in self.ids:
            for name in ("zkops-server.log", "stdout.log"):
                p = self.workdir / f"n{i}" / name
                if p.exists():
                    out.append(f"--- n{i} ({self.kinds[i]}) {name}\n" + p.read_text(errors="replace")[-n:])
        return "\n".join(out)

    def cleanup(self) -> None:
        for i in list(self.procs):
            self.kill(i)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MixedEnsemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
