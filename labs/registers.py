"""Clients that read, write and compare-and-set one znode as a register, recording a history.

The fault lessons (06-08) run a few of these while they break the ensemble; the history they
record goes into the lesson's journal and ``zkops lab check`` grades it with the
linearizability checker (``labs/linearizability.py``), as a teacher would grade a Jepsen test.
A client records only what it was told: an operation whose answer never came is ``info`` (it
may or may not have happened), and the client then goes on as a new logical process, because
that operation may still take effect later.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from .history import History

OP_TIMEOUT = 4.0
PROCESS_STRIDE = 100  # a client's next logical process after an unknown outcome


class RegisterClient(threading.Thread):
    """One kazoo session on ``hosts`` doing sync+read, blind writes and version-checked CAS on ``path``."""

    def __init__(self, number: int, hosts: str, path: str, history: History, *, reads: bool = True,
                 seed: int = 0, pause_s: float = 0.05) -> None:
        super().__init__(name=f"register-client-{number}", daemon=True)
        self.number = number
        self.process = number
        self.hosts = hosts
        self.path = path
        self.history = history
        self.reads = reads
        self.rng = random.Random(seed * 100 + number)
        self.pause_s = pause_s
        self.serial = 0
        self.stopping = threading.Event()
        self.client: Any = None

    def _unique(self) -> int:
        self.serial += 1
        return self.number * 1_000_000 + self.serial

    def run(self) -> None:
        from kazoo.client import KazooClient

        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
        self.client = KazooClient(hosts=self.hosts, timeout=4.0, command_retry=None,
                                  connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
        try:
            self.client.start(timeout=30)
        except Exception:  # noqa: BLE001 - nobody serves: nothing to record
            return
        try:
            while not self.stopping.is_set():
                if not self.client.connected:
                    self.stopping.wait(0.05)
                    continue
                kinds = ["read", "write", "cas"] if self.reads else ["write", "cas"]
                try:
                    getattr(self, f"_{self.rng.choice(kinds)}")()
                except Exception:  # noqa: BLE001 - every outcome is recorded by the op itself
                    pass
                self.stopping.wait(self.pause_s)
        finally:
            try:
                self.client.stop()
                self.client.close()
            except Exception:  # noqa: BLE001
                pass

    def _read(self) -> None:
        inv = self.history.invoke(self.process, "read", "register")
        try:
            self.client.sync_async(self.path).get(timeout=OP_TIMEOUT)
            data, _ = self.client.get_async(self.path).get(timeout=OP_TIMEOUT)
        except Exception:  # noqa: BLE001 - a read that did not return has no effect
            self.history.complete(inv, "fail")
            self.process += PROCESS_STRIDE
            return
        self.history.complete(inv, "ok", int(data))

    def _write(self) -> None:
        v = self._unique()
        inv = self.history.invoke(self.process, "write", "register", v)
        try:
            self.client.set_async(self.path, str(v).encode()).get(timeout=OP_TIMEOUT)
        except Exception:  # noqa: BLE001 - connection loss or timeout: outcome unknown
            self.history.complete(inv, "info")
            self.process += PROCESS_STRIDE
            return
        self.history.complete(inv, "ok")

    def _cas(self) -> None:
        from kazoo.exceptions import BadVersionError

        data, stat = self.client.get_async(self.path).get(timeout=OP_TIMEOUT)  # where expected/version come from
        new = self._unique()
        inv = self.history.invoke(self.process, "cas", "register", [int(data), new])
        try:
            self.client.set_async(self.path, str(new).encode(), version=stat.version).get(timeout=OP_TIMEOUT)
        except BadVersionError:
            self.history.complete(inv, "fail")
            return
        except Exception:  # noqa: BLE001
            self.history.complete(inv, "info")
            self.process += PROCESS_STRIDE
            return
        self.history.complete(inv, "ok")


class Registers:
    """A few :class:`RegisterClient` on one znode; ``start``/``stop``; ``history`` holds what they saw."""

    def __init__(self, path: str, hosts: list[str], *, reads: list[bool] | None = None, seed: int = 0) -> None:
        self.path = path
        self.history = History()
        self.clients = [RegisterClient(i + 1, h, path, self.history, reads=(reads[i] if reads else True), seed=seed)
                        for i, h in enumerate(hosts)]

    def start(self) -> Registers:
        for c in self.clients:
            c.start()
        return self

    def completed(self) -> int:
        """How many operations have an answer (or a timeout) so far."""
        return sum(1 for e in self.history.snapshot() if e.kind != "invoke")

    def stop(self) -> list[dict[str, Any]]:
        for c in self.clients:
            c.stopping.set()
        deadline = time.monotonic() + 3 * OP_TIMEOUT + 5
        for c in self.clients:
            c.join(max(0.1, deadline - time.monotonic()))
        return self.history.to_json()


JOURNAL_KEY = "register_history"


def problem(journal: dict[str, Any]) -> str | None:
    """For a lesson's check: None when the recorded register history is linearizable, else why not."""
    from .linearizability import check_history

    raw = journal.get(JOURNAL_KEY)
    if not raw:
        return "no client operations were recorded"
    results = check_history(History.from_json(raw).snapshot(), initial=journal.get("register_initial", 0))
    bad = [r.describe() for r in results.values() if r.valid is not True]
    return "; ".join(bad) if bad else None
