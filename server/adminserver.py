"""The AdminServer: ZooKeeper's commands as JSON over HTTP (``admin.serverPort``, default 8080).

``GET /commands`` lists the commands; ``GET /commands/<name>`` runs one, by its name or any
alias (``srvr`` is ``server_stats``, ``mntr`` is ``monitor``, ...), and answers with the
keys Apache ZooKeeper's commands use plus ``command`` (the primary name) and ``error``
(null on success). The 4lw whitelist does not apply here, as in Apache ZooKeeper.

``snapshot`` (GET, ``?streaming=true`` for the bytes) and ``restore`` (POST of snapshot
bytes) are Apache 3.9's commands with its names and shapes. Unlike Apache they are off
unless ``admin.snapshot.enabled`` / ``admin.restore.enabled`` (zoo.cfg, or
``-Dzookeeper.admin.*`` in SERVER_JVMFLAGS) is true; they need an ``Authorization:
digest user:password`` (or ``ip``) header whose ids have ALL on the root's ACL, and each
runs at most once per ``admin.snapshot.intervalInMS`` / ``admin.restore.intervalInMS``
(default 5 minutes). A restore restarts the server from the posted snapshot.

Every command reads the server through its ``stats.ServerStats`` view.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fourletter
from .servermode import ServerMode
from .version import VERSION_STRING

if TYPE_CHECKING:
    import asyncio

    from .connection import ClientConnection
    from .stats import ServerStats

Command = Callable[..., dict[str, Any]]  # (server) or (server, query) -> the JSON body


def _connection(c: ClientConnection) -> dict[str, Any]:
    """Apache's ServerCnxn.getConnectionInfo: ids and zxids as JSON numbers, in its order."""
    avg = c.total_latency // c.latency_count if c.latency_count else 0
    return {"remote_socket_address": f"{c.peer[0]}:{c.peer[1]}", "interest_ops": 1,
            "outstanding_requests": len(c.queue) + c.outstanding_writes, "packets_received": c.packets_received,
            "packets_sent": c.packets_sent, "session_id": c.session_id, "last_operation": c.last_op,
            "established": int(c.established * 1000), "session_timeout": c.timeout,
            "last_cxid": c.last_cxid, "last_zxid": c.last_zxid,
            "last_response_time": int(time.monotonic() * 1000),  # as cons' lresp
            "last_latency": c.last_latency, "min_latency": max(c.min_latency, 0), "avg_latency": avg,
            "max_latency": c.max_latency}


def _connections(s: ServerStats) -> dict[str, Any]:
    conns = s.connections()
    plain = [c for c in conns if not getattr(c, "secure", False)]
    secure = [c for c in conns if getattr(c, "secure", False)]
    return {"connections": [_connection(c) for c in plain], "secure_connections": [_connection(c) for c in secure]}


def _server_stats(s: ServerStats) -> dict[str, Any]:
    """Apache's srvr as JSON, its keys in its order; a leader adds ``proposal_stats``."""
    body: dict[str, Any] = {
        "version": VERSION_STRING, "read_only": s.mode() == ServerMode.READ_ONLY,
        "server_stats": {
            "packets_sent": s.packets_sent,
            "packets_received": s.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1},
            "provider_null": False,
            "data_dir_size": s.data_dir_size(),
            "log_dir_size": s.log_dir_size(),
            "server_state": s.mode(), "outstanding_requests": s.outstanding,
            "min_latency": s.min_latency, "avg_latency": round(s.avg_latency, 4),
            "max_latency": s.max_latency,
            "last_processed_zxid": s.last_processed_zxid, "num_alive_client_connections": len(s.connections()),
            "uptime": s.uptime_ms, "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0, "non_mtlslocal_conn_count": 0,
        },
        "client_response": {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1},
    }
    sizes = s.proposal_sizes()
    if sizes is not None:
        body["proposal_stats"] = dict(zip(("last_buffer_size", "min_buffer_size", "max_buffer_size"), sizes,
                                          strict=True))
    body["node_count"] = s.node_count
    return body


def _monitor(s: ServerStats) -> dict[str, Any]:
    from . import mntr

    return mntr.monitor(s)


def _conf(s: ServerStats) -> dict[str, Any]:
    cfg = s.cfg
    return {"client_port": cfg.client_port or -1,
            "data_dir": str(Path(cfg.data_dir) / "version-2"), "data_log_dir": str(Path(cfg.data_log_dir) / "version-2"),
            "tick_time": cfg.tick_time, "max_client_cnxns": cfg.max_client_cnxns,
            "min_session_timeout": cfg.min_session_timeout, "max_session_timeout": cfg.max_session_timeout,
            "server_id": s.server_id, "client_port_listen_backlog": -1}


def _envi(s: ServerStats) -> dict[str, Any]:
    lines = fourletter.envi(s).splitlines()[1:]
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _dirs(s: ServerStats) -> dict[str, Any]:
    return {"datadir_size": s.data_dir_size(), "logdir_size": s.log_dir_size()}


def _dump(s: ServerStats) -> dict[str, Any]:
    # an Apache learner's session tracker keeps no expiry times: its map is empty
    learner = s.mode() in (ServerMode.FOLLOWER, ServerMode.OBSERVER)
    buckets = {} if learner else s.session_buckets()
    return {"expiry_time_to_session_ids": {str(t): sorted(ids) for t, ids in sorted(buckets.items())},
            "session_id_to_ephemeral_paths": {str(sid): sorted(paths)
                                              for sid, paths in sorted(s.ephemerals().items())}}


def _watch_summary(s: ServerStats) -> dict[str, Any]:
    # the data watch table, as wchs and Apache's DataTree.getWatchesSummary count it
    conns, npaths, total = s.watch_summary()
    return {"num_connections": conns, "num_paths": npaths, "num_total_watches": total}


def _watches(s: ServerStats) -> dict[str, Any]:
    # a path may be None (a persistent watch set on a null path): JSON null in the list, as Apache's
    return {"session_id_to_watched_paths": {str(getattr(wt, "session_id", 0)): fourletter.java_paths(ps)
                                            for wt, ps in s.paths_by_watcher().items()}}


def _watches_by_path(s: ServerStats) -> dict[str, Any]:
    # a None path is the key "null" (Apache writes a bare null there, which is not JSON)
    by_path = s.watchers_by_path()
    return {"path_to_session_ids": {fourletter.java_str(p): sorted(getattr(wt, "session_id", 0) for wt in by_path[p])
                                    for p in fourletter.java_paths(by_path, table=True)}}


def _leader(s: ServerStats) -> dict[str, Any]:
    quorum = s.quorum()
    if quorum is None:
        return {"error": "server is not initialized"}  # Apache's answer on a standalone server
    leader = quorum.leader
    spec = s.cfg.servers.get(leader) if leader is not None else None
    return {"is_leader": s.mode() == ServerMode.LEADER, "leader_id": leader if leader is not None else -1,
            "leader_ip": spec.host if spec else ""}


def _voting_view(s: ServerStats) -> dict[str, Any]:
    """Apache's voting view: the participants, each as its QuorumServerView (a member's client
    address is known from its server line, and for the server itself from its own config)."""
    cfg = s.cfg
    view = {}
    for sid, p in sorted(getattr(cfg, "servers", {}).items()):
        if p.role != "participant":
            continue
        if p.client_port:
            client = f"{p.client_host or '0.0.0.0'}:{p.client_port}"
        elif sid == s.server_id and cfg.client_port:
            client = f"{getattr(cfg, 'client_port_address', None) or '0.0.0.0'}:{cfg.client_port}"
        else:
            client = ""
        view[str(sid)] = {"server_addresses": [f"{p.host}:{p.quorum_port}"],
                          "election_addresses": [f"{p.host}:{p.election_port}"],
                          "client_address": client, "learner_type": p.role}
    return {"current_config": view}


def _stat(s: ServerStats) -> dict[str, Any]:
    return {**_server_stats(s), **_connections(s)}


def _zabstate(s: ServerStats) -> dict[str, Any]:
    quorum = s.quorum()
    if quorum is None:
        return {"voting": False, "zabstate": "broadcast" if s.serving() else "election"}
    # an ensemble member: Apache's ZabStateCommand, its addresses as Gson writes a
    # MultipleAddresses, the zxid split as ZxidUtils does
    cfg = s.cfg
    me = getattr(cfg, "servers", {}).get(s.server_id)
    zxid = s.last_processed_zxid
    body: dict[str, Any] = {"myid": s.server_id, "is_leader": s.mode() == ServerMode.LEADER}
    if me is not None:
        body["quorum_address"] = _addresses(me.host, me.quorum_port)
        body["election_address"] = _addresses(me.host, me.election_port)
    body["client_address"] = (f"{getattr(cfg, 'client_port_address', None) or '0.0.0.0'}:{cfg.client_port}"
                              if cfg.client_port else None)
    body.update({"voting": s.mode().voting, "last_zxid": f"0x{zxid:x}", "zab_epoch": zxid >> 32,
                 "zab_counter": zxid & 0xFFFFFFFF, "zabstate": "broadcast" if quorum.established else "election"})
    return body


def _addresses(host: str, port: int) -> dict[str, Any]:
    one = f"{host}:{port}"
    return {"empty": False, "all_addresses": [one], "all_reachable_addresses": [one], "one": one,
            "reachable_address": one, "wildcard_addresses": [f"0.0.0.0:{port}"], "all_ports": [port],
            "all_host_strings": [host], "all_reachable_addresses_or_all": [one], "reachable_or_one": one}


def _last_snapshot(s: ServerStats) -> dict[str, Any]:
    snaps = []
    for f in (Path(s.cfg.data_dir) / "version-2").glob("snapshot.*"):
        try:
            snaps.append((int(f.name.split(".", 1)[1], 16), int(f.stat().st_mtime)))
        except (ValueError, OSError):
            continue
    zxid, when = max(snaps) if snaps else (0, 0)
    return {"zxid": f"{zxid:x}", "timestamp": when}


def _initial_configuration(s: ServerStats) -> dict[str, Any]:
    source = getattr(s.cfg, "source", None)
    try:
        text = Path(source).read_text() if source else ""
    except OSError:
        text = ""
    return {"initial_configuration": text}


def _observers(s: ServerStats) -> dict[str, Any]:
    quorum = s.quorum()
    if quorum is None or s.mode() != ServerMode.LEADER:
        return {"synced_observers": 0, "observers": []}  # only the leader knows its observers
    learners = [lr for lr in quorum.learners if lr.observer]
    return {"synced_observers": sum(1 for lr in learners if lr.synced),
            "observers": [{"sid": lr.sid, "phase": lr.phase} for lr in learners]}


def _set_trace_mask(s: ServerStats, query: dict[str, list[str]]) -> dict[str, Any]:
    try:
        mask = int(query["traceMask"][0])
    except (KeyError, IndexError, ValueError):
        return {"error": "setTraceMask requires long traceMask argument"}
    s.trace_mask = mask
    return {"tracemask": mask}


def _stat_reset(s: ServerStats) -> dict[str, Any]:
    s.reset()
    return {}


def _connection_stat_reset(s: ServerStats) -> dict[str, Any]:
    s.reset_connections()
    return {}


# primary name -> (aliases, implementation), in Apache ZooKeeper 3.8's names
COMMANDS: dict[str, tuple[tuple[str, ...], Command]] = {
    "configuration": (("conf", "config"), _conf),
    "connection_stat_reset": (("crst",), _connection_stat_reset),
    "connections": (("cons",), _connections),
    "dirs": ((), _dirs),
    "dump": ((), _dump),
    "environment": (("env", "envi"), _envi),
    "get_trace_mask": (("gtmk",), lambda s: {"tracemask": s.trace_mask}),
    "hash": ((), lambda s: {"digests": []}),  # zkops keeps no tree digests
    "initial_configuration": (("icfg",), _initial_configuration),
    "last_snapshot": (("lsnp",), _last_snapshot),
    "observer_connection_stat_reset": (("orst",), lambda s: {}),
    "observers": (("obsr",), _observers),
    "set_trace_mask": (("stmk",), _set_trace_mask),
    "is_read_only": (("isro",), lambda s: {"read_only": s.mode() == ServerMode.READ_ONLY}),
    "leader": (("lead",), _leader),
    "monitor": (("mntr",), _monitor),
    "ruok": ((), lambda s: {}),
    "server_stats": (("srvr",), _server_stats),
    "stat_reset": (("srst",), _stat_reset),
    "stats": (("stat",), _stat),
    "system_properties": (("sysp",), lambda s: {k: v for k, v in sorted(os.environ.items()) if k.startswith("ZOO")}),
    "voting_view": ((), _voting_view),
    "watch_summary": (("wchs",), _watch_summary),
    "watches": (("wchc",), _watches),
    "watches_by_path": (("wchp",), _watches_by_path),
    "zabstate": ((), _zabstate),
}
ALIASES = {alias: name for name, (aliases, _) in COMMANDS.items() for alias in (name, *aliases)}


WITH_QUERY = {"set_trace_mask"}


def run_command(s: ServerStats, name: str, query: dict[str, list[str]] | None = None) -> tuple[int, dict[str, Any]]:
    primary = ALIASES.get(name)
    if primary is None:
        return 404, {"command": name, "error": f"Unknown command: {name}"}
    if not s.serving() and primary not in ("ruok", "environment", "configuration", "server_stats", "monitor",
                                           "is_read_only", "system_properties", "voting_view", "zabstate",
                                           "stats", "dirs"):
        return 200, {"command": primary, "error": "This ZooKeeper instance is not currently serving requests"}
    fn = COMMANDS[primary][1]
    body = fn(s, query or {}) if primary in WITH_QUERY else fn(s)
    error = body.pop("error", None)
    return 200, {**body, "command": primary, "error": error}


# ---------------------------------------------------------------- snapshot and restore
MAX_RESTORE_BYTES = 1 << 30
_FLAGS = {"snapshot": ("admin.snapshot.enabled", "admin.snapshot.intervalInMS"),
          "restore": ("admin.restore.enabled", "admin.restore.intervalInMS")}


def _setting(s: ServerStats, key: str) -> str | None:
    raw = getattr(s.cfg, "raw", None) or {}
    for k in (key, "zookeeper." + key):
        if k in raw:
            return str(raw[k])
    from .config import jvm_properties

    props = jvm_properties(os.environ)
    found = props.get("zookeeper." + key)
    return found[0] if found else None


class _Guard:
    """Whether a command is on, who may run it, and how often."""

    def __init__(self, s: ServerStats) -> None:
        self.s = s
        self.last: dict[str, float] = {}

    def enabled(self, name: str) -> bool:
        return (_setting(self.s, _FLAGS[name][0]) or "false").strip().lower() == "true"

    def interval_s(self, name: str) -> float:
        try:
            return int(_setting(self.s, _FLAGS[name][1]) or 300000) / 1000
        except ValueError:
            return 300.0

    def authorized(self, header: str | None, peer: str) -> tuple[int, str | None]:
        """(0, None) when the caller's ids have ALL on the root's ACL, else (status, why)."""
        from .acl import authenticate
        from .codes import Perm
        from .records import Id

        if not header:
            return 401, "Authorization header required (digest user:password, or ip)"
        scheme, _, cred = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "digest" and cred:
            ids = authenticate("digest", cred.strip().encode(), getattr(self.s.cfg, "super_digest", None))
        elif scheme == "ip":
            ids = [Id("ip", peer)]
        else:
            return 401, f"unsupported Authorization scheme {scheme!r} (digest or ip)"
        acl = self.s.root_acl()
        if any(i.scheme == "super" for i in ids):
            return 0, None
        for entry in acl:
            if entry.perms & Perm.ALL != Perm.ALL:
                continue
            if entry.id.scheme == "world" and entry.id.id == "anyone":
                return 0, None
            for i in ids:
                if i.scheme == entry.id.scheme and (i.id == entry.id.id or (
                        i.scheme == "ip" and _ip_in(i.id, entry.id.id))):
                    return 0, None
        return 403, "Insufficient permission: ALL on the root is required"

    def rate_limited(self, name: str) -> bool:
        now = time.monotonic()
        last = self.last.get(name)
        if last is not None and now - last < self.interval_s(name):
            return True
        self.last[name] = now
        return False


def _ip_in(addr: str | None, spec: str | None) -> bool:
    import ipaddress

    if addr is None or spec is None:
        return False  # what ipaddress says of None: not an address
    try:
        return ipaddress.ip_address(addr) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    import json

    from .httpd import Response

    return Response(status, "application/json", json.dumps(body, indent=2, default=str).encode(), headers or {})


def _guarded(guard: _Guard, req: Any, loop: asyncio.AbstractEventLoop) -> Any:
    """The snapshot and restore commands (Apache 3.9's shapes)."""
    name = [p for p in req.path.split("/") if p][1]
    if not guard.enabled(name):
        return _json(503, {"command": name, "error": f"{name} command is disabled "
                                                     f"(set {_FLAGS[name][0]}=true to enable it)"})
    want = "POST" if name == "restore" else "GET"
    if req.method not in (want, "HEAD" if want == "GET" else want):
        return _json(405, {"command": name, "error": f"{name} needs {want}"})
    status, why = guard.authorized(req.headers.get("authorization"), req.peer)
    if status:
        return _json(status, {"command": name, "error": why})
    if guard.rate_limited(name):
        return _json(429, {"command": name, "error": f"Rate limit exceeded: one {name} per "
                                                     f"{guard.interval_s(name):g} s"})
    s = guard.s
    if name == "snapshot":
        zxid, data = s.snapshot()
        head = {"last_zxid": f"0x{zxid:x}", "snapshot_size": str(len(data))}
        if req.query.get("streaming", ["false"])[0].lower() == "true":
            from .httpd import Response

            return Response(200, "application/octet-stream", data, head)
        from . import snapshot as snapmod

        snapmod.install_snapshot_bytes(Path(s.cfg.data_dir), zxid, data)
        return _json(200, {"last_zxid": zxid, "snapshot_size": len(data), "command": name, "error": None}, head)
    from . import pendingrestore
    from .snapshot import SnapshotError

    if not req.body:
        return _json(400, {"command": name, "error": "post the snapshot's bytes as the request body"})
    try:
        done = pendingrestore.install(Path(s.cfg.data_dir), Path(s.cfg.data_log_dir), req.body)
    except SnapshotError as exc:
        return _json(400, {"command": name, "error": f"not a valid snapshot: {exc}"})
    pendingrestore.restart_soon(loop)
    return _json(200, {"last_zxid": done.zxid, "command": name, "error": None})


def handler(s: ServerStats, loop: asyncio.AbstractEventLoop) -> Callable[[str, dict[str, list[str]]], tuple[int, str, bytes]]:
    guard = _Guard(s)

    def handle(path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "commands":
            return 404, "application/json", b'{"error": "not found: use /commands"}'
        if len(parts) == 1:
            links = "".join(f'<a href="/commands/{n}">{n}</a><br/>\n' for n in sorted([*COMMANDS, *_FLAGS]))
            return 200, "text/html", f"<h1>ZooKeeper AdminServer commands</h1>\n{links}".encode()
        import json  # at the first request, not at start-up

        status, body = run_command(s, parts[1], query)
        return status, "application/json", json.dumps(body, indent=2, default=str).encode()

    def request(req: Any) -> Any:
        from .httpd import Response

        parts = [p for p in req.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "commands" and parts[1] in _FLAGS:
            return _guarded(guard, req, loop)
        if req.method == "POST":
            return Response(405, "text/plain", b"only GET\n")
        return Response(*handle(req.path, req.query))

    handle.request = request  # type: ignore[attr-defined]
    handle.max_body = MAX_RESTORE_BYTES  # type: ignore[attr-defined]
    return handle
