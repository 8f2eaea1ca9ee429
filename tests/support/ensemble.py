"""A zkops ensemble of real processes on 127.0.0.1, for tests, benchmarks and labs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.refzk import free_port
from zkops.server.fourletterclient import four_letter_or_empty


def four_letter(port: int, word: str, timeout: float = 2.0) -> str:
    """A word to the member on 127.0.0.1:port; '' when it does not answer."""
    return four_letter_or_empty("127.0.0.1", port, word, timeout)


def mode(port: int) -> str | None:
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            return line[6:].strip()
    return None


class Ensemble:
    """N voters (+ observers) as separate `python -m zkops.server` processes."""

    def __init__(self, voters: int = 3, observers: int = 0, tick_ms: int = 200, workdir: Path | None = None,
                 extra: dict[str, str] | None = None, env: dict[str, str] | None = None,
                 per_node: dict[int, dict[str, str]] | None = None) -> None:
        self.env = env or {}
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="zkops-ens-"))
        self.ids = list(range(1, voters + observers + 1))
        self.observers = set(range(voters + 1, voters + observers + 1))
        self.ports = {i: (free_port(), free_port(), free_port()) for i in self.ids}  # client, quorum, election
        self.procs: dict[int, subprocess.Popen] = {}
        lines = []
        for i in self.ids:
            _, q, e = self.ports[i]
            role = ":observer" if i in self.observers else ""
            lines.append(f"server.{i}=127.0.0.1:{q}:{e}{role}")
        for i in self.ids:
            d = self.workdir / f"n{i}"
            (d / "data").mkdir(parents=True, exist_ok=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            cfg = {
                "tickTime": str(tick_ms), "initLimit": "10", "syncLimit": "5", "dataDir": str(d / "data"),
                "clientPort": str(self.ports[i][0]), "clientPortAddress": "127.0.0.1",
                "4lw.commands.whitelist": "*", "maxClientCnxns": "0",
            }
            if i in self.observers:
                cfg["peerType"] = "observer"
            cfg.update(extra or {})
            cfg.update((per_node or {}).get(i, {}))
            (d / "zoo.cfg").write_text("".join(f"{k}={v}\n" for k, v in cfg.items()) + "\n".join(lines) + "\n")

    def client_port(self, i: int) -> int:
        return self.ports[i][0]

    def address(self, i: int) -> str:
        return f"127.0.0.1:{self.client_port(i)}"

    @property
    def connect_string(self) -> str:
        return ",".join(self.address(i) for i in self.ids)

    def start(self, *ids: int) -> Ensemble:
        for i in ids or self.ids:
            d = self.workdir / f"n{i}"
            out = open(d / "stdout.log", "ab")
            env = dict(os.environ, ZOO_LOG_DIR=str(d), **self.env)
            self.procs[i] = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground",
                                              str(d / "zoo.cfg")], stdout=out, stderr=subprocess.STDOUT,
                                             env=env, cwd=d)
            out.close()
        return self

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        p = self.procs.pop(i, None)
        if p is not None and p.poll() is None:
            p.send_signal(sig)
            p.wait(30)

    def pause(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self.procs[i].send_signal(signal.SIGCONT)

    def modes(self) -> dict[int, str | None]:
        return {i: mode(self.client_port(i)) if i in self.procs else None for i in self.ids}

    def leader(self) -> int | None:
        leaders = [i for i, m in self.modes().items() if m == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_ready(self, timeout: float = 30.0, ids: list[int] | None = None) -> int:
        """Wait until one leader and every running member serves; returns the leader's id."""
        deadline = time.monotonic() + timeout
        want = ids or [i for i in self.ids if i in self.procs]
        while time.monotonic() < deadline:
            modes = self.modes()
            leaders = [i for i in want if modes[i] == "leader"]
            if len(leaders) == 1 and all(modes[i] in ("leader", "follower", "observer") for i in want):
                return leaders[0]
            time.sleep(0.1)
        raise TimeoutError(f"ensemble not ready: {self.modes()}\n{self.log_tail()}")

    def log_tail(self, n: int = 1500) -> str:
        out = []
        for i in self.ids:
            p = self.workdir / f"n{i}" / "zkops-server.log"
            if p.exists():
                out.append(f"--- n{i}\n" + p.read_text(errors="replace")[-n:])
        return "\n".join(out)

    def stop(self) -> None:
        for i in list(self.procs):
            p = self.procs[i]
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
            self.kill(i, signal.SIGTERM)

    def cleanup(self) -> None:
        for i in list(self.procs):
            self.kill(i)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Ensemble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
