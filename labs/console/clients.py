"""The client panel: a writer of sequential znodes and a watch on a path, as ``zkops lab watch``.

Both run in the process that serves the console (or prints ``lab watch``) with their own kazoo
client on the lab's servers, and keep what they saw for the page: the writer its acknowledged
count and how long writes were blocked, the watcher the lines ``lab watch`` prints.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

WRITER_PARENT = "/console"


def _client(hosts: str) -> Any:
    import logging

    from kazoo.client import KazooClient

    logging.getLogger("kazoo").setLevel(logging.CRITICAL)  # the panel shows connection states itself
    return KazooClient(hosts=hosts, timeout=5.0,
                       connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1},
                       command_retry=None)


class Writer:
    """Creates ``/console/w-`` sequential znodes as fast as they are acknowledged."""

    def __init__(self, hosts: str) -> None:
        self.hosts = hosts
        self.acked = 0
        self.errors = 0
        self.started = time.monotonic()
        self.last_ack: float | None = None
        self.longest_gap_s = 0.0
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-writer", daemon=True)
        self._zk: Any = None

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        zk = self._zk = _client(self.hosts)
        try:
            zk.start(timeout=30)
            zk.ensure_path(WRITER_PARENT)
        except Exception as exc:  # noqa: BLE001 - no quorum now: the loop below keeps trying
            self.last_error = type(exc).__name__
        while not self._stop.is_set():
            try:
                zk.create_async(f"{WRITER_PARENT}/w-", b"", sequence=True).get(timeout=5)
            except Exception as exc:  # noqa: BLE001 - connection loss or timeout during an election
                self.errors += 1
                self.last_error = type(exc).__name__
                self._stop.wait(0.05)
                continue
            now = time.monotonic()
            if self.last_ack is not None:
                self.longest_gap_s = max(self.longest_gap_s, now - self.last_ack)
            self.last_ack = now
            self.acked += 1
        try:
            zk.stop()
            zk.close()
        except Exception:  # noqa: BLE001 - a client of a dead ensemble may fail to close
            pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        since = now - (self.last_ack if self.last_ack is not None else self.started)
        return {"running": not self._stop.is_set(), "acked": self.acked, "errors": self.errors,
                "blocked_s": round(since, 2) if since > 0.5 else 0.0,
                "longest_outage_s": round(max(self.longest_gap_s, since if since > 0.5 else 0.0), 2),
                "last_error": self.last_error}


class Watcher:
    """Watch events and connection states on ``path``; each line goes to ``emit``."""

    def __init__(self, hosts: str, path: str, emit: Callable[[str], None]) -> None:
        self.hosts = hosts
        self.path = path
        self.emit = emit
        self._zk: Any = None

    def start(self, timeout: float = 30) -> None:
        zk = self._zk = _client(self.hosts)
        zk.add_listener(lambda state: self.emit(f"connection state: {state}"))
        zk.start(timeout=timeout)
        path = self.path

        def on_data(data: bytes | None, stat: Any, event: Any = None) -> None:
            if event is not None:
                self.emit(f"WatchedEvent type:{event.type} path:{event.path}")
            shown = "(does not exist)" if stat is None else f"data={data!r} version={stat.version}"
            self.emit(f"  {path}: {shown}")

        def on_children(children: list[str], event: Any = None) -> None:
            if event is not None:
                self.emit(f"WatchedEvent type:{event.type} path:{event.path}")
            self.emit(f"  children of {path}: {sorted(children)}")

        zk.DataWatch(path, on_data, send_event=True)
        if zk.exists(path):
            zk.ChildrenWatch(path, on_children, send_event=True)

    def stop(self) -> None:
        if self._zk is not None:
            try:
                self._zk.stop()
                self._zk.close()
            except Exception:  # noqa: BLE001
                pass


class Panel:
    """The page's client panel: at most one writer and one watch at a time."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed
        self.writer: Writer | None = None
        self.watcher: Watcher | None = None
        self.lines: deque[str] = deque(maxlen=200)
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        self.lines.append(f"{time.strftime('%H:%M:%S')} {text}")
        self.changed()

    def set_writer(self, hosts: str, run: bool) -> None:
        with self._lock:
            if self.writer is not None:
                self.writer.stop()
                self.writer = None
            if run:
                self.writer = Writer(hosts)
                self.writer.start()

    def set_watch(self, hosts: str, path: str | None) -> None:
        with self._lock:
            if self.watcher is not None:
                self.watcher.stop()
                self.watcher = None
            if path:
                self.lines.clear()
                w = Watcher(hosts, path, self._line)
                w.start()
                self.watcher = w

    def close(self) -> None:
        self.set_writer("", False)
        self.set_watch("", None)

    def snapshot(self) -> dict[str, Any]:
        return {"writer": self.writer.snapshot() if self.writer else None,
                "watch": {"path": self.watcher.path if self.watcher else None, "lines": list(self.lines)}}
