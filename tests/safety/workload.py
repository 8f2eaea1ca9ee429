"""Client workloads: registers (read after sync / write / CAS), sequential creates, ephemerals.

Every worker is one thread with its own kazoo client (its own session), connected either to one
server or to all of them. Register operations go into a :class:`~zkops.labs.history.History`
for the linearizability checker; creates and ephemerals are recorded in plain lists for the
end-of-run checks. A worker never records anything it did not see: an operation whose outcome
is unknown is ``info``, and the worker then continues as a new logical process (as in Jepsen),
because the unknown operation may still be in flight.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, NoNodeError
from kazoo.retry import KazooRetry

from zkops.labs.history import History

REG_ROOT = "/safety/reg"
SEQ_PARENT = "/safety/seq"
EPH_PARENT = "/safety/eph"
OP_TIMEOUT = 6.0
SESSION_TIMEOUT = 3.0
PROCESS_STRIDE = 1000  # a worker's next logical process after an info op: pid + stride

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def register_path(key: str) -> str:
    return f"{REG_ROOT}/{key}"


def make_client(hosts: str, timeout: float = SESSION_TIMEOUT) -> KazooClient:
    """A client that keeps reconnecting forever but never retries a command by itself: a retried
    write would hide the unknown outcome the history has to record."""
    return KazooClient(hosts=hosts, timeout=timeout,
                       connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5),
                       command_retry=None)


class Worker(threading.Thread):
    """Base: a kazoo client, a stop flag, a seeded RNG, a count of what it did."""

    def __init__(self, wid: int, hosts: str, stop: threading.Event, seed: int) -> None:
        super().__init__(name=f"safety-{type(self).__name__}-{wid}", daemon=True)
        self.wid = wid
        self.hosts = hosts
        self.stop_flag = stop
        self.rng = random.Random(seed)
        self.client = make_client(hosts)
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def connect(self) -> None:
        self.client.start(timeout=30)

    def connected(self) -> bool:
        return self.client.state == KazooState.CONNECTED

    def pause(self) -> None:
        time.sleep(self.rng.uniform(0.0, 0.02))

    def close(self) -> None:
        try:
            self.client.stop()
            self.client.close()
        except Exception:  # noqa: BLE001 - closing a client on a broken ensemble may fail; it expires anyway
            pass


class RegisterWorker(Worker):
    """Reads (sync, then get), blind writes and version-checked CAS on a few registers."""

    def __init__(self, wid: int, hosts: str, stop: threading.Event, seed: int, history: History,
                 keys: list[str]) -> None:
        super().__init__(wid, hosts, stop, seed)
        self.history = history
        self.keys = keys
        self.process = wid
        self.serial = 0

    def unique(self) -> int:
        """Values are unique per run, so a version number and the value it holds correspond."""
        self.serial += 1
        return self.wid * 10_000_000 + self.serial

    def run(self) -> None:
        while not self.stop_flag.is_set():
            if not self.connected():
                time.sleep(0.05)
                continue
            key = self.rng.choice(self.keys)
            f = self.rng.choices(["read", "write", "cas"], weights=[4, 3, 3])[0]
            try:
                getattr(self, f"do_{f}")(key)
            except Exception as e:  # noqa: BLE001 - recorded, never fatal
                self.errors.append(f"{type(e).__name__}: {e}")
            self.pause()

    def do_read(self, key: str) -> None:
        path = register_path(key)
        inv = self.history.invoke(self.process, "read", key)
        try:
            self.client.sync_async(path).get(timeout=OP_TIMEOUT)
            data, _ = self.client.get_async(path).get(timeout=OP_TIMEOUT)
        except Exception:  # noqa: BLE001 - a read that did not return has no effect
            self.history.complete(inv, "fail")
            self.count("read-fail")
            self._retire_if_pending()
            return
        self.history.complete(inv, "ok", int(data))
        self.count("read-ok")

    def do_write(self, key: str) -> None:
        v = self.unique()
        inv = self.history.invoke(self.process, "write", key, v)
        try:
            self.client.set_async(register_path(key), str(v).encode()).get(timeout=OP_TIMEOUT)
        except NoNodeError:
            self.history.complete(inv, "fail")
            self.count("write-fail")
            return
        except Exception:  # noqa: BLE001 - connection loss, timeout, expiry: outcome unknown
            self.history.complete(inv, "info")
            self.count("write-info")
            self.process += PROCESS_STRIDE
            return
        self.history.complete(inv, "ok")
        self.count("write-ok")

    def do_cas(self, key: str) -> None:
        path = register_path(key)
        try:  # not part of the history: only where the expected value and version come from
            data, stat = self.client.get_async(path).get(timeout=OP_TIMEOUT)
        except Exception:  # noqa: BLE001
            self._retire_if_pending()
            return
        new = self.unique()
        inv = self.history.invoke(self.process, "cas", key, [int(data), new])
        try:
            self.client.set_async(path, str(new).encode(), version=stat.version).get(timeout=OP_TIMEOUT)
        except BadVersionError:
            self.history.complete(inv, "fail")
            self.count("cas-fail")
            return
        except Exception:  # noqa: BLE001
            self.history.complete(inv, "info")
            self.count("cas-info")
            self.process += PROCESS_STRIDE
            return
        self.history.complete(inv, "ok")
        self.count("cas-ok")

    def _retire_if_pending(self) -> None:
        """After a timeout the request may still be queued on the session; a new logical process
        keeps the history well-formed (reads have no effect, so this is only hygiene)."""
        self.process += PROCESS_STRIDE


@dataclass
class Create:
    """An acknowledged (or unknown) create of a sequential or ephemeral node."""

    worker: int
    path: str
    ephemeral: bool
    session: int | None  # ephemeralOwner from the create2 reply
    invoke: float
    ack: float | None  # None: outcome unknown


@dataclass
class SessionLog:
    """What a worker knows about one of its sessions."""

    id: int
    ended: str | None = None  # closed | expired
    ended_at: float | None = None
    suspects: list[dict[str, Any]] = field(default_factory=list)  # own ephemerals seen missing


class CreateWorker(Worker):
    """Sequential creates (ephemeral and persistent) under one parent, or plain ephemerals under
    another, with periodic checks that its own ephemerals are still there and, sometimes, a
    deliberate close of its session followed by a new one."""

    def __init__(self, wid: int, hosts: str, stop: threading.Event, seed: int, sequential: bool) -> None:
        super().__init__(wid, hosts, stop, seed)
        self.sequential = sequential
        self.creates: list[Create] = []
        self.unknown: list[Create] = []
        self.sessions: dict[int, SessionLog] = {}
        self.current: int | None = None
        self.serial = 0
        self.lock = threading.Lock()
        self.needs_start = False

    def session_id(self) -> int | None:
        cid = self.client.client_id
        return cid[0] if cid else None

    def note_session(self, sid: int | None) -> None:
        """kazoo only opens a new session after the old one expired (or we closed it)."""
        if sid is None or sid == 0:
            return
        with self.lock:
            if sid not in self.sessions:
                if self.current is not None and self.sessions[self.current].ended is None:
                    self.sessions[self.current].ended = "expired"
                    self.sessions[self.current].ended_at = time.monotonic()
                self.sessions[sid] = SessionLog(sid)
                self.current = sid

    def connect(self) -> None:
        super().connect()
        self.note_session(self.session_id())

    def run(self) -> None:
        while not self.stop_flag.is_set():
            if self.needs_start:
                self.start_fresh()
                continue
            if not self.connected():
                time.sleep(0.05)
                continue
            self.note_session(self.session_id())
            r = self.rng.random()
            try:
                if r < 0.75:
                    self.do_create()
                elif r < 0.97:
                    self.verify_own()
                else:
                    self.restart_session()
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{type(e).__name__}: {e}")
            self.pause()

    def do_create(self) -> None:
        if self.sequential:
            path, eph = f"{SEQ_PARENT}/n-", self.rng.random() < 0.5
        else:
            self.serial += 1
            path, eph = f"{EPH_PARENT}/w{self.wid}-{self.serial}", True
        t0 = time.monotonic()
        try:
            made, stat = self.client.create_async(path, b"", ephemeral=eph, sequence=self.sequential,
                                                  include_data=True).get(timeout=OP_TIMEOUT)
        except Exception as e:  # noqa: BLE001
            self.unknown.append(Create(self.wid, path, eph, None, t0, None))
            self.count(f"create-{type(e).__name__}")
            return
        t1 = time.monotonic()
        owner = stat.ephemeralOwner or None
        self.note_session(owner)
        self.creates.append(Create(self.wid, made, eph, owner, t0, t1))
        self.count("create-ok")

    def verify_own(self) -> None:
        """While this session lives, every ephemeral it created must exist and be its own."""
        sid = self.current
        if sid is None:
            return
        mine = [c for c in self.creates if c.ephemeral and c.session == sid]
        if not mine:
            return
        c = self.rng.choice(mine)
        try:
            self.client.sync_async(c.path).get(timeout=OP_TIMEOUT)
            stat = self.client.exists_async(c.path).get(timeout=OP_TIMEOUT)
        except Exception:  # noqa: BLE001
            return
        if self.session_id() != sid:
            return
        if stat is None or stat.ephemeralOwner != sid:
            self.sessions[sid].suspects.append({"path": c.path, "at": time.monotonic(),
                                                "owner": None if stat is None else stat.ephemeralOwner})
        self.count("verify")

    def restart_session(self) -> None:
        sid = self.current
        try:
            self.client.stop()
            self.client.close()
        finally:
            if sid is not None:
                self.sessions[sid].ended = "closed"
                self.sessions[sid].ended_at = time.monotonic()
            self.client = make_client(self.hosts)
        self.start_fresh()
        self.count("session-restart")

    def start_fresh(self) -> None:
        """kazoo gives up a ``start`` that times out; then the run loop tries again."""
        try:
            self.client.start(timeout=5)
            self.needs_start = False
            self.note_session(self.session_id())
        except Exception:  # noqa: BLE001
            self.needs_start = True
            self.client = make_client(self.hosts)
            time.sleep(0.2)
