"""The AdminServer: ZooKeeper's commands as JSON over HTTP (``admin.serverPort``, default 8080).

``GET /commands`` lists the commands; ``GET /commands/<name>`` runs one, by its name or any
alias (``srvr`` is ``server_stats``, ``mntr`` is ``monitor``, ...), and answers with the
keys Apache ZooKeeper's commands use plus ``command`` (the primary name) and ``error``
(null on success). The 4lw whitelist does not apply here, as in Apache ZooKeeper.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import fourletter

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .zkserver import ZooKeeperServer

Command = Callable[..., dict[str, Any]]  # (server) or (server, query) -> the JSON body


def _connection(c: ClientConnection) -> dict[str, Any]:
    avg = c.total_latency // c.latency_count if c.latency_count else 0
    return {"remote_socket_address": f"{c.peer[0]}:{c.peer[1]}", "interest_ops": 1,
            "outstanding_requests": len(c.queue) + c.outstanding_writes, "packets_received": c.packets_received,
            "packets_sent": c.packets_sent, "session_id": f"0x{c.session_id:x}", "last_operation": c.last_op,
            "session_timeout": c.timeout, "last_cxid": f"0x{c.last_cxid & 0xFFFFFFFF:x}",
            "last_zxid": f"0x{c.last_zxid:x}", "established": int(c.established * 1000),
            "last_latency": c.last_latency, "min_latency": max(c.min_latency, 0), "avg_latency": avg,
            "max_latency": c.max_latency}


def _connections(s: ZooKeeperServer) -> dict[str, Any]:
    plain = [c for c in s.connections if not getattr(c, "secure", False)]
    secure = [c for c in s.connections if getattr(c, "secure", False)]
    return {"connections": [_connection(c) for c in plain], "secure_connections": [_connection(c) for c in secure]}


def _server_stats(s: ZooKeeperServer) -> dict[str, Any]:
    st = s.stats
    cfg = s.cfg
    return {
        "version": fourletter.VERSION_STRING, "read_only": s.mode() == "read-only",
        "server_stats": {
            "packets_sent": sum(c.packets_sent for c in s.connections) + st.packets_sent,
            "packets_received": sum(c.packets_received for c in s.connections) + st.packets_received,
            "fsync_threshold_exceed_count": 0,
            "client_response_stats": {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1},
            "provider_null": False, "server_state": s.mode(), "outstanding_requests": len(s.pending),
            "min_latency": max(st.min_latency, 0), "avg_latency": round(st.avg_latency, 4),
            "max_latency": st.max_latency,
            "data_dir_size": fourletter._dir_size(Path(cfg.data_dir) / "version-2"),
            "log_dir_size": fourletter._dir_size(Path(cfg.data_log_dir) / "version-2"),
            "last_processed_zxid": s.core.last_zxid, "num_alive_client_connections": len(s.connections),
            "uptime": int((time.time() - st.started) * 1000), "auth_failed_count": 0,
            "non_mtlsremote_conn_count": 0, "non_mtlslocal_conn_count": 0,
        },
        "client_response": {"last_buffer_size": -1, "min_buffer_size": -1, "max_buffer_size": -1},
        "node_count": s.core.tree.node_count(),
    }


def _monitor(s: ZooKeeperServer) -> dict[str, Any]:
    from . import mntr

    return mntr.monitor(s)


def _conf(s: ZooKeeperServer) -> dict[str, Any]:
    cfg = s.cfg
    return {"client_port": cfg.client_port or -1,
            "data_dir": str(Path(cfg.data_dir) / "version-2"), "data_log_dir": str(Path(cfg.data_log_dir) / "version-2"),
            "tick_time": cfg.tick_time, "max_client_cnxns": cfg.max_client_cnxns,
            "min_session_timeout": cfg.min_session_timeout, "max_session_timeout": cfg.max_session_timeout,
            "server_id": getattr(s, "server_id", 0), "client_port_listen_backlog": -1}


def _envi(s: ZooKeeperServer) -> dict[str, Any]:
    lines = fourletter.envi(s).splitlines()[1:]
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _dirs(s: ZooKeeperServer) -> dict[str, Any]:
    return {"datadir_size": fourletter._dir_size(Path(s.cfg.data_dir) / "version-2"),
            "logdir_size": fourletter._dir_size(Path(s.cfg.data_log_dir) / "version-2")}


def _dump(s: ZooKeeperServer) -> dict[str, Any]:
    tracker = s.core.sessions
    return {"expiry_time_to_session_ids": {str(t): sorted(ids) for t, ids in sorted(tracker.buckets.items())},
            "session_id_to_ephemeral_paths": {str(sid): sorted(paths)
                                              for sid, paths in sorted(s.core.tree.ephemerals.items())}}


def _watch_summary(s: ZooKeeperServer) -> dict[str, Any]:
    w = s.core.watches
    return {"num_connections": len(w.paths_by_watcher()), "num_paths": len(w.watchers_by_path()),
            "num_total_watches": w.watch_count()}


def _watches(s: ZooKeeperServer) -> dict[str, Any]:
    return {"session_id_to_watched_paths": {str(getattr(wt, "session_id", 0)): sorted(ps)
                                            for wt, ps in s.core.watches.paths_by_watcher().items()}}


def _watches_by_path(s: ZooKeeperServer) -> dict[str, Any]:
    return {"path_to_session_ids": {p: sorted(getattr(wt, "session_id", 0) for wt in ws)
                                    for p, ws in sorted(s.core.watches.watchers_by_path().items())}}


def _leader(s: ZooKeeperServer) -> dict[str, Any]:
    ensemble = getattr(s, "ensemble", None)
    if ensemble is None:
        return {"error": "server is not initialized"}  # Apache's answer on a standalone server
    leader = ensemble.peer.leader
    spec = s.cfg.servers.get(leader) if leader is not None else None
    return {"is_leader": s.mode() == "leader", "leader_id": leader if leader is not None else -1,
            "leader_ip": spec.host if spec else ""}


def _voting_view(s: ZooKeeperServer) -> dict[str, Any]:
    view = {}
    for sid, p in sorted(getattr(s.cfg, "servers", {}).items()):
        client = f";{p.client_host or '0.0.0.0'}:{p.client_port}" if p.client_port else ""
        view[str(sid)] = f"{p.host}:{p.quorum_port}:{p.election_port}:{p.role}{client}"
    return {"current_config": view}


def _stat(s: ZooKeeperServer) -> dict[str, Any]:
    return {**_server_stats(s), **_connections(s)}


def _zabstate(s: ZooKeeperServer) -> dict[str, Any]:
    ensemble = getattr(s, "ensemble", None)
    if ensemble is None:
        return {"voting": False, "zabstate": "broadcast" if s.serving() else "election"}
    return {"voting": s.mode() in ("leader", "follower"),
            "zabstate": "broadcast" if ensemble.peer.established else "election"}


def _last_snapshot(s: ZooKeeperServer) -> dict[str, Any]:
    snaps = []
    for f in (Path(s.cfg.data_dir) / "version-2").glob("snapshot.*"):
        try:
            snaps.append((int(f.name.split(".", 1)[1], 16), int(f.stat().st_mtime)))
        except (ValueError, OSError):
            continue
    zxid, when = max(snaps) if snaps else (0, 0)
    return {"zxid": f"{zxid:x}", "timestamp": when}


def _initial_configuration(s: ZooKeeperServer) -> dict[str, Any]:
    source = getattr(s.cfg, "source", None)
    try:
        text = Path(source).read_text() if source else ""
    except OSError:
        text = ""
    return {"initial_configuration": text}


def _observers(s: ZooKeeperServer) -> dict[str, Any]:
    ensemble = getattr(s, "ensemble", None)
    if ensemble is None or s.mode() != "leader":
        return {"synced_observers": 0, "observers": []}  # only the leader knows its observers
    learners = [lr for lr in ensemble.peer.zab.learners.values() if lr.observer]
    return {"synced_observers": sum(1 for lr in learners if lr.phase == "synced"),
            "observers": [{"sid": getattr(lr, "sid", None), "phase": lr.phase} for lr in learners]}


def _set_trace_mask(s: ZooKeeperServer, query: dict[str, list[str]]) -> dict[str, Any]:
    try:
        mask = int(query["traceMask"][0])
    except (KeyError, IndexError, ValueError):
        return {"error": "setTraceMask requires long traceMask argument"}
    s.trace_mask = mask
    return {"tracemask": mask}


def _stat_reset(s: ZooKeeperServer) -> dict[str, Any]:
    s.stats.reset()
    return {}


def _connection_stat_reset(s: ZooKeeperServer) -> dict[str, Any]:
    for c in s.connections:
        c.reset_stats()
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
    "is_read_only": (("isro",), lambda s: {"read_only": s.mode() == "read-only"}),
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


def run_command(s: ZooKeeperServer, name: str, query: dict[str, list[str]] | None = None) -> tuple[int, dict[str, Any]]:
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


def handler(s: ZooKeeperServer) -> Callable[[str, dict[str, list[str]]], tuple[int, str, bytes]]:
    def handle(path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0] != "commands":
            return 404, "application/json", b'{"error": "not found: use /commands"}'
        if len(parts) == 1:
            links = "".join(f'<a href="/commands/{n}">{n}</a><br/>\n' for n in sorted(COMMANDS))
            return 200, "text/html", f"<h1>ZooKeeper AdminServer commands</h1>\n{links}".encode()
        import json  # at the first request, not at start-up

        status, body = run_command(s, parts[1], query)
        return status, "application/json", json.dumps(body, indent=2, default=str).encode()

    return handle
