"""Start zkops servers for tests: in a thread (fast, no disk) or as a real process."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tests.support.refzk import free_port, wait_ruok


def memory_config(port: int, **overrides: Any) -> SimpleNamespace:
    """A config object with the attributes the server reads, for in-process servers."""
    cfg = SimpleNamespace(
        tick_time=2000, min_session_timeout=4000, max_session_timeout=40000,
        extended_types_enabled=True, super_digest=None, jute_maxbuffer=0xFFFFF, force_sync=True,
        client_port=port, client_port_address="127.0.0.1", max_client_cnxns=0,
        four_letter_words=frozenset({"*"}), data_dir=tempfile.gettempdir(),
        data_log_dir=tempfile.gettempdir(), secure_client_port=None,
        container_check_interval_ms=60000, snap_count=100000,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


class InProcessServer:
    """A zkops server on its own event loop thread, with no txn log (tests of semantics)."""

    def __init__(self, **overrides: Any) -> None:
        self.port = free_port()
        self.cfg = memory_config(self.port, **overrides)
        self.loop = asyncio.new_event_loop()
        self.server: Any = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="zkops-test-server")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> InProcessServer:
        from zkops.server.zkserver import ZooKeeperServer

        self.thread.start()

        async def boot() -> Any:
            s = ZooKeeperServer(self.cfg, loop=asyncio.get_running_loop())
            await s.start()
            return s

        self.server = asyncio.run_coroutine_threadsafe(boot(), self.loop).result(10)
        return self

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop and return its result."""

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
            self.server = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ZkopsProcess:
    """One standalone zkops server process, started as an operator would (zoo.cfg + CLI)."""

    port: int = field(default_factory=free_port)
    extra_cfg: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="zkops-")))
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = {
            "tickTime": "2000", "dataDir": str(self.data_dir), "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1", "4lw.commands.whitelist": "*",
            "extendedTypesEnabled": "true", "maxClientCnxns": "0",
        }
        cfg.update(self.extra_cfg)
        path = self.workdir / "zoo.cfg"
        path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
        return path

    def start(self, timeout: float = 30.0) -> ZkopsProcess:
        cfg = self.write_config()
        env = dict(os.environ, ZOO_LOG_DIR=str(self.workdir))
        log = open(self.workdir / "stdout.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground", str(cfg)],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        log.close()
        try:
            wait_ruok(self.port, timeout)
        except TimeoutError:
            self.kill()
            raise RuntimeError("zkops did not start:\n" + self.log_tail())
        return self

    def log_tail(self, n: int = 4000) -> str:
        out = ""
        for name in ("stdout.log", "zkops-server.log"):
            p = self.workdir / name
            if p.exists():
                out += f"--- {name}\n" + p.read_text(errors="replace")[-n:]
        return out

    def kill(self) -> None:
        """kill -9: what a crash looks like."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ZkopsProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
