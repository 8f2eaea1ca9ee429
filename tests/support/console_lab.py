"""A local lab with the console serving it, for the console's HTTP and browser tests."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zkops.labs.console.access import Access
from zkops.labs.console.server import ConsoleServer
from zkops.labs.lab import Lab


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@contextmanager
def console_over_lab(tmp_path: Path, *, access: Access | None = None, backend: str = "local",
                     nodes: int = 3) -> Iterator[tuple[Lab, ConsoleServer]]:
    """Yield (lab, console); afterwards the console is closed and every server the lab or the
    console started is stopped (checked by pid)."""
    lab = Lab.up(tmp_path / "lab", backend=backend, nodes=nodes, tick_ms=200)
    server = None
    pids: set[int] = set()
    try:
        server = ConsoleServer(tmp_path / "lab", "127.0.0.1", 0, access=access,
                               journal_dir=tmp_path / "journals", poll_s=0.1).start()
        yield lab, server
    finally:
        if server is not None:
            server.close()
        lab.reload()
        pids = {n.pid for n in lab.state.nodes if n.pid is not None}
        lab.down()
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "a server outlived the lab"


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
            return r.status, json.loads(body) if r.headers.get("Content-Type", "").startswith("application/json") \
                else body.decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
    h = {"Content-Type": "application/json", "X-Zkops-Console": "1"}
    h.update(headers or {})
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def poll(probe: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.1)


def ensemble(url: str) -> dict[str, Any]:
    status, body = get(url + "api/state")
    assert status == 200, body
    return body["ensemble"]


def leader(url: str) -> int | None:
    return ensemble(url).get("leader")


NOT_LINEARIZABLE = [  # a write of 1 acknowledged, then a read that still sees 0
    {"index": 0, "process": 1, "kind": "invoke", "f": "write", "key": "register", "value": 1, "time": 1.0},
    {"index": 1, "process": 1, "kind": "ok", "f": "write", "key": "register", "value": 1, "time": 1.1},
    {"index": 2, "process": 2, "kind": "invoke", "f": "read", "key": "register", "value": None, "time": 1.2},
    {"index": 3, "process": 2, "kind": "ok", "f": "read", "key": "register", "value": 0, "time": 1.3},
    {"index": 4, "process": 1, "kind": "invoke", "f": "cas", "key": "register", "value": [1, 2], "time": 1.4},
    {"index": 5, "process": 1, "kind": "ok", "f": "cas", "key": "register", "value": [1, 2], "time": 1.5},
]


def write_journal(journal_dir: Path, lesson: str, history: list[dict[str, Any]]) -> Path:
    journal_dir.mkdir(parents=True, exist_ok=True)
    path = journal_dir / f"journal-{lesson}.json"
    path.write_text(json.dumps({"lesson": lesson, "completed": True, "register_initial": 0,
                                "register_history": history}))
    return path
