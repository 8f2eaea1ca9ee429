"""Four-letter words, in Apache ZooKeeper 3.8's output formats.

A 4lw arrives as the first four bytes of a fresh connection; the answer is plain text
and the server closes the connection after it. Words outside the whitelist get
ZooKeeper's "is not executed because it is not in the whitelist." line.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__ as ZKOPS_VERSION

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .zkserver import ZooKeeperServer

# Clients (kazoo among them) parse the leading x.y.z; the suffix says what we are.
VERSION_STRING = f"3.8.0-zkops-{ZKOPS_VERSION}, built on 2026-11-24 00:00 UTC"

ALL_WORDS = ("ruok", "srvr", "stat", "mntr", "conf", "cons", "crst", "srst", "envi", "dirs",
             "wchs", "wchc", "wchp", "dump", "isro", "gtmk", "stmk", "elec")


def _dir_size(path: Path) -> int:
    total = 0
    try:
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat().st_size
    except OSError:
        pass
    return total


def _conn_line(c: ClientConnection, brief: bool) -> str:
    queued = len(c.queue) + c.outstanding_writes
    base = f" /{c.peer[0]}:{c.peer[1]}[{1 if c.session_id else 0}](queued={queued},recved={c.packets_received},sent={c.packets_sent}"
    if brief or not c.session_id:
        return base + ")"
    avg = c.total_latency // c.latency_count if c.latency_count else 0
    return (base + f",sid=0x{c.session_id:x},lop={c.last_op},est={int(c.established * 1000)},to={c.timeout},"
            f"lcxid=0x{c.last_cxid & 0xFFFFFFFF:x},lzxid=0x{c.last_zxid:x},lresp={int(time.monotonic() * 1000)},"
            f"llat={c.last_latency},minlat={max(c.min_latency, 0)},avglat={avg},maxlat={c.max_latency})")


def _stats_block(s: ZooKeeperServer) -> str:
    st = s.stats
    received = sum(c.packets_received for c in s.connections)
    sent = sum(c.packets_sent for c in s.connections)
    return (f"Latency min/avg/max: {max(st.min_latency, 0)}/{st.avg_latency:.4g}/{st.max_latency}\n"
            f"Received: {received + st.packets_received}\n"
            f"Sent: {sent + st.packets_sent}\n"
            f"Connections: {len(s.connections)}\n"
            f"Outstanding: {len(s.pending)}\n"
            f"Zxid: 0x{s.core.last_zxid:x}\n"
            f"Mode: {s.mode()}\n"
            f"Node count: {s.core.tree.node_count()}\n")


def srvr(s: ZooKeeperServer) -> str:
    return f"Zookeeper version: {VERSION_STRING}\n" + _stats_block(s)


def stat(s: ZooKeeperServer) -> str:
    lines = [f"Zookeeper version: {VERSION_STRING}", "Clients:"]
    lines += [_conn_line(c, True) for c in s.connections]
    return "\n".join(lines) + "\n\n" + _stats_block(s)


def mntr(s: ZooKeeperServer) -> str:
    st = s.stats
    tree = s.core.tree
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = 0
    rows: list[tuple[str, object]] = [
        ("zk_version", VERSION_STRING),
        ("zk_server_state", s.mode()),
        ("zk_ephemerals_count", sum(len(v) for v in tree.ephemerals.values())),
        ("zk_num_alive_connections", len(s.connections)),
        ("zk_avg_latency", round(st.avg_latency, 4)),
        ("zk_outstanding_requests", len(s.pending)),
        ("zk_znode_count", tree.node_count()),
        ("zk_global_sessions", len(s.core.sessions)),
        ("zk_local_sessions", 0),
        ("zk_packets_sent", sum(c.packets_sent for c in s.connections) + st.packets_sent),
        ("zk_packets_received", sum(c.packets_received for c in s.connections) + st.packets_received),
        ("zk_watch_count", s.core.watches.watch_count()),
        ("zk_min_latency", max(st.min_latency, 0)),
        ("zk_max_latency", st.max_latency),
        ("zk_max_file_descriptor_count", soft),
        ("zk_open_file_descriptor_count", open_fds),
        ("zk_approximate_data_size", tree.data_size()),
        ("zk_uptime", int((time.time() - st.started) * 1000)),
        ("zk_fsync_count", s.committer.fsync_count if s.committer else 0),
        ("zk_last_fsync_time_ms", round(s.committer.fsync_ms_last, 3) if s.committer else 0),
    ]
    rows += s.extra_mntr()
    return "".join(f"{k}\t{v}\n" for k, v in rows)


def conf(s: ZooKeeperServer) -> str:
    cfg = s.cfg
    data = Path(cfg.data_dir) / "version-2"
    logs = Path(cfg.data_log_dir) / "version-2"
    lines = [
        f"clientPort={cfg.client_port if cfg.client_port else -1}",
        f"secureClientPort={cfg.secure_client_port or -1}",
        f"dataDir={data}",
        f"dataDirSize={_dir_size(data)}",
        f"dataLogDir={logs}",
        f"dataLogSize={_dir_size(logs)}",
        f"tickTime={cfg.tick_time}",
        f"maxClientCnxns={cfg.max_client_cnxns}",
        f"minSessionTimeout={cfg.min_session_timeout}",
        f"maxSessionTimeout={cfg.max_session_timeout}",
        "clientPortListenBacklog=-1",
        f"serverId={s.server_id}",
    ]
    lines += s.extra_conf()
    return "\n".join(lines) + "\n"


def cons(s: ZooKeeperServer) -> str:
    return "".join(_conn_line(c, False) + "\n" for c in s.connections) + "\n"


def crst(s: ZooKeeperServer) -> str:
    for c in s.connections:
        c.reset_stats()
    return "Connection stats reset.\n"


def srst(s: ZooKeeperServer) -> str:
    s.stats.reset()
    return "Server stats reset.\n"


def envi(s: ZooKeeperServer) -> str:
    import platform  # only envi needs it; kept off the start-up path

    rows = [
        ("zookeeper.version", VERSION_STRING),
        ("host.name", socket.gethostname()),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("python.executable", sys.executable),
        ("os.name", platform.system()),
        ("os.arch", platform.machine()),
        ("os.version", platform.release()),
        ("user.name", os.environ.get("USER", "")),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in rows)


def dirs(s: ZooKeeperServer) -> str:
    cfg = s.cfg
    return (f"datadir_size: {_dir_size(Path(cfg.data_dir) / 'version-2')}\n"
            f"logdir_size: {_dir_size(Path(cfg.data_log_dir) / 'version-2')}\n")


def wchs(s: ZooKeeperServer) -> str:
    # As Apache: the data watch table only, connections whose watches all fired included
    conns, npaths, total = s.core.watches.summary()
    return f"{conns} connections watching {npaths} paths\nTotal watches:{total}\n"


def _java_str(path: str | None) -> str:
    return "null" if path is None else path  # a watch set on a null path (setWatches2)


def wchc(s: ZooKeeperServer) -> str:
    out = []
    for w, ps in s.core.watches.paths_by_watcher().items():
        names = sorted(_java_str(p) for p in ps)
        out.append(f"0x{getattr(w, 'session_id', 0):x}\n" + "".join(f"\t{p}\n" for p in names))
    return "".join(out) + "\n"


def wchp(s: ZooKeeperServer) -> str:
    out = []
    for p, ws in sorted(s.core.watches.watchers_by_path().items(), key=lambda kv: _java_str(kv[0])):
        out.append(f"{_java_str(p)}\n" + "".join(f"\t0x{getattr(w, 'session_id', 0):x}\n" for w in ws))
    return "".join(out) + "\n"


def dump(s: ZooKeeperServer) -> str:
    tracker = s.core.sessions
    lines = ["SessionTracker dump:", f"Session Sets ({len(tracker.buckets)})/({len(tracker)}):"]
    for t in sorted(tracker.buckets):
        ids = tracker.buckets[t]
        lines.append(f"{len(ids)} expire at {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime(t / 1000))}:")
        lines += [f"\t0x{sid:x}" for sid in sorted(ids)]
    eph = s.core.tree.ephemerals
    lines.append("ephemeral nodes dump:")
    lines.append(f"Sessions with Ephemerals ({len(eph)}):")
    for sid in sorted(eph):
        lines.append(f"0x{sid:x}:")
        lines += [f"\t{p}" for p in sorted(eph[sid])]
    lines.append("Connections dump:")
    lines.append(f"Connections Sets (1)/({len(s.connections)}):")
    for c in s.connections:
        lines.append(f"\tip: /{c.peer[0]}:{c.peer[1]} sessionId: 0x{c.session_id:x}")
    return "\n".join(lines) + "\n"


def isro(s: ZooKeeperServer) -> str:
    return "ro" if s.mode() == "read-only" else "rw"


def ruok(s: ZooKeeperServer) -> str:
    return "imok"


def gtmk(s: ZooKeeperServer) -> str:
    return f"{s.trace_mask}\n"


def stmk(s: ZooKeeperServer) -> str:
    return f"{s.trace_mask}\n"


def elec(s: ZooKeeperServer) -> str:
    """zkops' own word: this server's recent election events, one JSON object a line."""
    return s.election_events()


WORDS: dict[str, Callable[[ZooKeeperServer], str]] = {
    "ruok": ruok, "srvr": srvr, "stat": stat, "mntr": mntr, "conf": conf, "cons": cons,
    "crst": crst, "srst": srst, "envi": envi, "dirs": dirs, "wchs": wchs, "wchc": wchc,
    "wchp": wchp, "dump": dump, "isro": isro, "gtmk": gtmk, "stmk": stmk, "elec": elec,
}


def answer(s: ZooKeeperServer, word: str, whitelist: frozenset[str]) -> str:
    """The text a 4lw gets back (the caller closes the connection after it)."""
    if word not in whitelist and "*" not in whitelist:
        return f"{word} is not executed because it is not in the whitelist.\n"
    if not s.serving() and word not in ("ruok", "isro", "envi", "conf", "srvr", "stat", "mntr", "elec"):
        return "This ZooKeeper instance is not currently serving requests\n"
    if word in ("srvr", "stat") and not s.serving():
        return "This ZooKeeper instance is not currently serving requests\n"
    fn = WORDS.get(word)
    return fn(s) if fn else ""
