"""``zkops lab ui``: the console's web server (standard library http.server, Server-Sent Events).

A poller thread reads the lab (``Lab.status()``, its faults, its election events) and pushes what
changed to every open page as an event; the page's buttons post actions that run through the
same table as the CLI (``labs/actions.py``). Only the routes below exist: the page, its own
script and style sheet, and the JSON API; nothing else on the machine is served.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from .. import actions
from ..lab import Lab, LabError
from . import histories, replay, view
from .access import ACTION_HEADER, Access
from .clients import Panel

STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/console.js": ("console.js", "text/javascript; charset=utf-8"),
          "/console.css": ("console.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = {
    # nothing from anywhere else: no CDN, no fonts, no third-party requests
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_STREAMS = 64
MAX_BODY = 16384


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static").joinpath(name).read_bytes()


class Console:
    """The state behind the page: the lab (re-read when lab.json changes), its picture, the
    elections, the client panel, and the open event streams."""

    def __init__(self, lab_dir: Path, journal_dir: Path | None = None, poll_s: float | None = None) -> None:
        self.lab_dir = lab_dir
        self.journal_dir = journal_dir
        self.poll_s = poll_s
        self.lab: Lab | None = None
        self._lab_stamp: int | None = None
        self.lock = threading.RLock()
        self.streams: set[queue.Queue] = set()
        self._streams_lock = threading.Lock()
        self.state: dict[str, Any] = {"lab": None, "nodes": [], "links": [], "leader": None}
        self.elections: list[dict[str, Any]] = []
        self.elections_version = 0
        self._elections_sig: Any = None
        self._elections_at = 0.0
        self._busy_until = 0.0
        self.histories_version = 0
        self._histories_sig: Any = None
        self.panel = Panel(self._panel_changed)
        self._clients_last: Any = None
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="console-poller", daemon=True)

    # ------------------------------------------------------------ the lab
    def _current_lab(self) -> Lab | None:
        path = self.lab_dir / "lab.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            self.lab, self._lab_stamp = None, None
            return None
        if self.lab is None or stamp != self._lab_stamp:
            try:
                if self.lab is not None and self.lab.dir == self.lab_dir:
                    self.lab.reload()
                else:
                    self.lab = Lab.load(self.lab_dir)
            except (LabError, OSError, ValueError, TypeError, KeyError):
                self.lab = Lab.load(self.lab_dir) if path.exists() else None
            self._lab_stamp = stamp
        return self.lab

    def _interval(self) -> float:
        if self.poll_s is not None:
            return self.poll_s
        lab = self.lab
        return 0.1 if lab is None or lab.state.backend in ("local", "netns") else 1.0

    # ------------------------------------------------------------ polling
    def poll(self) -> None:
        with self.lock:
            try:
                lab = self._current_lab()
            except (LabError, OSError, ValueError):
                lab = None
            if lab is None:
                state: dict[str, Any] = {"lab": None, "message": f"no lab in {self.lab_dir}; start one with "
                                                                 f"`zkops lab up`", "nodes": [], "links": [],
                                         "leader": None}
                events: list[dict[str, Any]] | None = None
            else:
                state = view.ensemble(lab.status(), lab.faults())
                state["lab"] = {"dir": str(lab.dir), "backend": lab.state.backend,
                                "clients": lab.connect_string()}
                events = None
                now = time.monotonic()
                roles = [n["role"] for n in state["nodes"]]
                if roles != [n["role"] for n in self.state.get("nodes", [])]:
                    self._busy_until = now + 3.0
                due = 0.4 if now < self._busy_until else (3.0 if lab.state.backend in ("local", "netns") else 10.0)
                if now - self._elections_at >= due:
                    self._elections_at = now
                    events = lab.election_events()
            ids = lab.node_ids() if lab is not None else []
        if state != self.state:
            self.state = state
            self.publish("state", state)
        if events is not None:
            sig = (len(events), events[-1].get("ts") if events else None, tuple(ids))
            if sig != self._elections_sig:
                self._elections_sig = sig
                self.elections = replay.elections(events, ids)
                self.elections_version += 1
                self.publish("elections", {"version": self.elections_version, "count": len(self.elections)})
        clients = self.panel.snapshot()
        if clients != self._clients_last:
            self._clients_last = clients
            self.publish("clients", clients)
        self._check_histories()

    def _check_histories(self) -> None:
        d = self.journal_dir
        if d is None or not d.is_dir():
            return
        sig = tuple(sorted((p.name, p.stat().st_mtime_ns) for p in d.glob("journal-*.json")))
        if sig != self._histories_sig:
            self._histories_sig = sig
            self.histories_version += 1
            self.publish("histories", {"version": self.histories_version})

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - keep serving the page; show what went wrong
                self.publish("problem", {"text": f"{type(exc).__name__}: {exc}"})
            self.wake.wait(self._interval() if self.streams else 1.0)
            self.wake.clear()

    def _panel_changed(self) -> None:
        self.wake.set()

    # ------------------------------------------------------------ streams
    def publish(self, kind: str, data: Any) -> None:
        text = json.dumps(data)
        with self._streams_lock:
            for q in list(self.streams):
                try:
                    q.put_nowait((kind, text))
                except queue.Full:  # a page that stopped reading: drop it, it reconnects
                    self.streams.discard(q)
                    q.queue.clear()
                    q.put_nowait(None)

    def subscribe(self) -> queue.Queue | None:
        with self._streams_lock:
            if len(self.streams) >= MAX_STREAMS:
                return None
            q: queue.Queue = queue.Queue(maxsize=256)
            self.streams.add(q)
        self.wake.set()
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._streams_lock:
            self.streams.discard(q)

    # ------------------------------------------------------------ actions
    def act(self, body: dict[str, Any]) -> str:
        with self.lock:
            lab = self._current_lab()
            if lab is None:
                raise LabError(f"no lab in {self.lab_dir}; start one with `zkops lab up`")
            args = {k: v for k, v in body.items() if k != "action"}
            message = actions.perform(lab, str(body.get("action")), **args)
            self._lab_stamp = (self.lab_dir / "lab.json").stat().st_mtime_ns
        self._busy_until = time.monotonic() + 3.0
        self.wake.set()
        return message

    def clients_action(self, kind: str, body: dict[str, Any]) -> str:
        with self.lock:
            lab = self._current_lab()
            if lab is None:
                raise LabError(f"no lab in {self.lab_dir}; start one with `zkops lab up`")
            hosts = lab.connect_string()
        if kind == "writer":
            run = bool(body.get("run"))
            self.panel.set_writer(hosts, run)
            message = "writer started" if run else "writer stopped"
        else:
            path = body.get("path") or None
            if path is not None and (not isinstance(path, str) or not path.startswith("/")):
                raise LabError("a watch path starts with /")
            try:
                self.panel.set_watch(hosts, path)
            except Exception as exc:  # noqa: BLE001 - e.g. no quorum to connect to
                raise LabError(f"cannot watch {path}: {type(exc).__name__}")
            message = f"watching {path}" if path else "watch stopped"
        self.wake.set()
        return message

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(10)
        self.panel.close()
        with self._streams_lock:
            for q in self.streams:
                q.put(None)
            self.streams.clear()


class Handler(BaseHTTPRequestHandler):
    server: ConsoleServer
    server_version = "zkops-console"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        if self.server.verbose:
            super().log_message(format, *args)

    # ------------------------------------------------------------ replies
    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _refuse(self, status: int, why: str) -> None:
        self._json(status, {"error": why})

    def _host_ok(self) -> bool:
        if self.server.access.host_ok(self.headers.get("Host")):
            return True
        self._refuse(HTTPStatus.FORBIDDEN, "this console answers only to an address, localhost or this "
                                           "machine's name in Host")
        return False

    # ------------------------------------------------------------ GET
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        console = self.server.console
        if path in STATIC:
            name, ctype = STATIC[path]
            self._send(HTTPStatus.OK, _static(name), ctype)
        elif path == "/api/state":
            self._json(HTTPStatus.OK, {"ensemble": console.state, "clients": console.panel.snapshot(),
                                       "can_act": self._may_act(), "elections_version": console.elections_version,
                                       "histories_version": console.histories_version})
        elif path == "/api/elections":
            self._json(HTTPStatus.OK, {"version": console.elections_version, "elections": console.elections})
        elif path == "/api/histories":
            self._json(HTTPStatus.OK, {"version": console.histories_version,
                                       "histories": histories.load(console.journal_dir)})
        elif path == "/api/events":
            self._stream()
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _may_act(self) -> bool:
        return self.server.access.may_act(self.client_address[0])

    def _stream(self) -> None:
        console = self.server.console
        q = console.subscribe()
        if q is None:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "too many open pages")
            return
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            for k, v in SECURITY_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            hello = {"can_act": self._may_act(), "elections_version": console.elections_version,
                     "histories_version": console.histories_version}
            self.wfile.write(f"event: hello\ndata: {json.dumps(hello)}\n\n".encode())
            self.wfile.write(f"event: state\ndata: {json.dumps(console.state)}\n\n".encode())
            self.wfile.flush()
            while not console.stopping.is_set():
                try:
                    item = q.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b": still here\n\n")
                    self.wfile.flush()
                    continue
                if item is None:
                    break
                kind, text = item
                self.wfile.write(f"event: {kind}\ndata: {text}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            console.unsubscribe(q)
            self.close_connection = True

    # ------------------------------------------------------------ POST
    def do_POST(self) -> None:  # noqa: N802
        if not self._host_ok():
            return
        access = self.server.access
        if not access.origin_ok(self.headers.get("Origin"), self.headers.get("Host")):
            self._refuse(HTTPStatus.FORBIDDEN, "actions only from the console's own page (Origin)")
            return
        if self.headers.get(ACTION_HEADER) != "1":
            self._refuse(HTTPStatus.FORBIDDEN, f"actions need the {ACTION_HEADER} header the page sends")
            return
        if not self._may_act():
            self._refuse(HTTPStatus.FORBIDDEN, "read-only: this console takes actions from localhost and "
                                               "the networks named by --allow-faults-from")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY or not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._refuse(HTTPStatus.BAD_REQUEST, "send a small JSON object")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            self._refuse(HTTPStatus.BAD_REQUEST, "send a small JSON object")
            return
        path = self.path.split("?", 1)[0]
        console = self.server.console
        try:
            if path == "/api/action":
                message = console.act(body)
            elif path in ("/api/writer", "/api/watch"):
                message = console.clients_action(path.rsplit("/", 1)[1], body)
            else:
                self._refuse(HTTPStatus.NOT_FOUND, "no such action")
                return
        except LabError as exc:
            self._json(HTTPStatus.CONFLICT, {"error": str(exc)})
            return
        self._json(HTTPStatus.OK, {"ok": True, "message": message})


class ConsoleServer(ThreadingHTTPServer):
    """The console on ``host:port`` (port 0: any free port); ``start()`` serves from a thread."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, lab_dir: Path, host: str = "127.0.0.1", port: int = 8480, *, access: Access | None = None,
                 journal_dir: Path | None = None, poll_s: float | None = None, verbose: bool = False) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        self.access = access or Access()
        self.console = Console(lab_dir, journal_dir, poll_s)
        self.verbose = verbose
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = str(host)
        shown = f"[{name}]" if ":" in name else name
        if shown in ("0.0.0.0", "[::]"):
            shown = "127.0.0.1"
        return f"http://{shown}:{port}/"

    def start(self) -> ConsoleServer:
        self.console.start()
        self._thread = threading.Thread(target=self.serve_forever, name="console-http", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Serve in this thread until Ctrl-C."""
        self.console.start()
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.console.close()
            self.server_close()

    def close(self) -> None:
        self.console.close()
        if self._thread is not None:
            self.shutdown()
            self._thread.join(10)
        self.server_close()
