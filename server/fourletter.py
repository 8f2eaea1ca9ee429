"""Four-letter words, in Apache ZooKeeper 3.8's output formats.

A 4lw arrives as the first four bytes of a fresh connection; the answer is plain text
and the server closes the connection after it. Words outside the whitelist get
ZooKeeper's "is not executed because it is not in the whitelist." line. Every word reads
the server through its ``stats.ServerStats`` view.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .fourletterformat import java_double
from .fourletterwords import NOT_SERVING_WORDS
from .servermode import ServerMode
from .version import VERSION_STRING

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .stats import ServerStats


def _conn_line(c: ClientConnection, brief: bool) -> str:
    queued = len(c.queue) + c.outstanding_writes
    base = f" /{c.peer[0]}:{c.peer[1]}[{1 if c.session_id else 0}](queued={queued},recved={c.packets_received},sent={c.packets_sent}"
    if brief or not c.session_id:
        return base + ")"
    avg = c.total_latency // c.latency_count if c.latency_count else 0
    return (base + f",sid=0x{c.session_id:x},lop={c.last_op},est={int(c.established * 1000)},to={c.timeout},"
            f"lcxid=0x{c.last_cxid & 0xFFFFFFFF:x},lzxid=0x{c.last_zxid:x},lresp={int(time.monotonic() * 1000)},"
            f"llat={c.last_latency},minlat={max(c.min_latency, 0)},avglat={avg},maxlat={c.max_latency})")


def _stats_block(s: ServerStats) -> str:
    text = (f"Latency min/avg/max: {s.min_latency}/{java_double(round(s.avg_latency, 4))}/{s.max_latency}\n"
            f"Received: {s.packets_received}\n"
            f"Sent: {s.packets_sent}\n"
            f"Connections: {len(s.connections())}\n"
            f"Outstanding: {s.outstanding}\n"
            f"Zxid: 0x{s.last_processed_zxid:x}\n"
            f"Mode: {s.mode()}\n"
            f"Node count: {s.node_count}\n")
    sizes = s.proposal_sizes()
    if sizes is not None:  # a leader's (Apache's LeaderZooKeeperServer adds the line)
        text += "Proposal sizes last/min/max: {}/{}/{}\n".format(*sizes)
    return text


def srvr(s: ServerStats) -> str:
    return f"Zookeeper version: {VERSION_STRING}\n" + _stats_block(s)


def stat(s: ServerStats) -> str:
    lines = [f"Zookeeper version: {VERSION_STRING}", "Clients:"]
    lines += [_conn_line(c, True) for c in s.connections()]
    return "\n".join(lines) + "\n\n" + _stats_block(s)


def mntr(s: ServerStats) -> str:
    """Apache 3.8's whole key set for this server's role (server/mntr.py)."""
    from . import mntr as monitor

    return monitor.text(s)


def conf(s: ServerStats) -> str:
    cfg = s.cfg
    data = Path(cfg.data_dir) / "version-2"
    logs = Path(cfg.data_log_dir) / "version-2"
    lines = [
        f"clientPort={cfg.client_port if cfg.client_port else -1}",
        f"secureClientPort={cfg.secure_client_port or -1}",
        f"dataDir={data}",
        f"dataDirSize={s.data_dir_size()}",
        f"dataLogDir={logs}",
        f"dataLogSize={s.log_dir_size()}",
        f"tickTime={cfg.tick_time}",
        f"maxClientCnxns={cfg.max_client_cnxns}",
        f"minSessionTimeout={cfg.min_session_timeout}",
        f"maxSessionTimeout={cfg.max_session_timeout}",
        "clientPortListenBacklog=-1",
        f"serverId={s.server_id}",
    ]
    servers = getattr(cfg, "servers", None)
    if not servers or s.quorum() is None:
        return "\n".join(lines) + "\n"
    # an ensemble member: Apache's QuorumZooKeeperServer.dumpConf adds the quorum's part,
    # its membership last, and no newline after the version
    me = servers.get(s.server_id)
    lines += [
        f"initLimit={cfg.init_limit}",
        f"syncLimit={cfg.sync_limit}",
        f"electionAlg={getattr(cfg, 'election_alg', 3)}",
        f"electionPort={me.election_port if me else -1}",
        f"quorumPort={me.quorum_port if me else -1}",
        f"peerType={1 if me is not None and me.role == 'observer' else 0}",
        "membership: ",
    ]
    lines += [f"server.{sid}={server_line(p)}" for sid, p in sorted(servers.items())]
    raw = getattr(cfg, "raw", None) or {}
    try:
        version = int(str(raw.get("version", "0")), 16)
    except ValueError:
        version = 0
    return "\n".join(lines) + f"\nversion={version:x}"


def server_line(p: Any) -> str:
    """A member as Apache's QuorumServer.toString writes it (conf, voting_view)."""
    client = f";{p.client_host or '0.0.0.0'}:{p.client_port}" if p.client_port else ""
    return f"{p.host}:{p.quorum_port}:{p.election_port}:{p.role}{client}"


def cons(s: ServerStats) -> str:
    return "".join(_conn_line(c, False) + "\n" for c in s.connections()) + "\n"


def crst(s: ServerStats) -> str:
    s.reset_connections()
    return "Connection stats reset.\n"


def srst(s: ServerStats) -> str:
    s.reset()
    return "Server stats reset.\n"


# Java's names for the machine types a JVM reports as os.arch
_JAVA_ARCH = {"x86_64": "amd64", "i686": "x86", "i386": "x86"}
NOT_AVAILABLE = "<NA>"  # what Apache prints for a property it cannot read


def _memory_mb() -> tuple[int, int, int]:
    """(free, max, total) as Apache's os.memory.* read the JVM heap: here the process's resident
    memory (total), the machine's memory or the address-space limit (max), and the difference."""
    import resource

    try:
        with open("/proc/self/statm") as f:
            total = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        total = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    try:
        machine = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        machine = total
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    biggest = min(machine, limit) if limit > 0 else machine
    mb = 1024 * 1024
    return (biggest - total) // mb, biggest // mb, total // mb


def envi(s: ServerStats) -> str:
    """Apache 3.8's keys in its order (the JVM's own as <NA>), then zkops' (python.*)."""
    import platform  # only envi needs it; kept off the start-up path
    import tempfile

    free, biggest, total = _memory_mb()
    rows = [
        ("zookeeper.version", VERSION_STRING),
        ("host.name", socket.gethostname()),
        ("java.version", NOT_AVAILABLE),
        ("java.vendor", NOT_AVAILABLE),
        ("java.home", NOT_AVAILABLE),
        ("java.class.path", NOT_AVAILABLE),
        ("java.library.path", NOT_AVAILABLE),
        ("java.io.tmpdir", tempfile.gettempdir()),
        ("java.compiler", NOT_AVAILABLE),
        ("os.name", platform.system()),
        ("os.arch", _JAVA_ARCH.get(platform.machine(), platform.machine())),
        ("os.version", platform.release()),
        ("user.name", os.environ.get("USER") or _user_name()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", f"{free}MB"),
        ("os.memory.max", f"{biggest}MB"),
        ("os.memory.total", f"{total}MB"),
        ("python.version", platform.python_version()),
        ("python.implementation", platform.python_implementation()),
        ("python.executable", sys.executable),
    ]
    return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in rows)


def _user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return ""


def dirs(s: ServerStats) -> str:
    return f"datadir_size: {s.data_dir_size()}\nlogdir_size: {s.log_dir_size()}\n"


def wchs(s: ServerStats) -> str:
    # As Apache: the data watch table only, connections whose watches all fired included
    conns, npaths, total = s.watch_summary()
    return f"{conns} connections watching {npaths} paths\nTotal watches:{total}\n"


def java_str(path: str | None) -> str:
    return "null" if path is None else path  # a watch set on a null path (setWatches2, addWatch)


def java_paths(paths: Iterable[str | None], table: bool = False) -> list[str | None]:
    """Watched paths in the order Apache lists them: a java.util.HashSet copy of a watcher's
    paths (``table``: the by-path HashMap, grown from 16 buckets) iterates by hash bucket; a
    null path hashes to 0. Within a bucket, by name."""
    from .javaorder import grown_capacity, hashset_capacity, java_hash

    ps = list(paths)
    capacity = grown_capacity(16, len(ps)) if table else max(16, hashset_capacity(len(ps)))
    mask = capacity - 1
    return sorted(ps, key=lambda p: (-1, "") if p is None else (java_hash(p) & mask, p))


def wchc(s: ServerStats) -> str:
    out = []
    for w, ps in s.paths_by_watcher().items():
        names = [java_str(p) for p in java_paths(ps)]
        out.append(f"0x{getattr(w, 'session_id', 0):x}\n" + "".join(f"\t{p}\n" for p in names))
    return "".join(out) + "\n"


def wchp(s: ServerStats) -> str:
    out = []
    by_path = s.watchers_by_path()
    for p in java_paths(by_path, table=True):
        out.append(f"{java_str(p)}\n" + "".join(f"\t0x{getattr(w, 'session_id', 0):x}\n" for w in by_path[p]))
    return "".join(out) + "\n"


def _signed(sid: int) -> int:
    return sid - (1 << 64) if sid >= 1 << 63 else sid  # a Java long's order


def dump(s: ServerStats) -> str:
    lines = ["SessionTracker dump:"]
    if s.mode() in (ServerMode.FOLLOWER, ServerMode.OBSERVER):
        # Apache's LearnerSessionTracker: the global sessions and their timeouts, by id
        timeouts = s.session_timeouts()
        lines.append(f"Global Sessions({len(timeouts)}):")
        lines += [f"0x{sid:x}\t{timeouts[sid]}ms" for sid in sorted(timeouts, key=_signed)]
    else:
        buckets = s.session_buckets()
        lines.append(f"Session Sets ({len(buckets)})/({s.session_count}):")
        for t in sorted(buckets):
            ids = buckets[t]
            lines.append(f"{len(ids)} expire at {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime(t / 1000))}:")
            lines += [f"\t0x{sid:x}" for sid in sorted(ids)]
    eph = s.ephemerals()
    lines.append("ephemeral nodes dump:")
    lines.append(f"Sessions with Ephemerals ({len(eph)}):")
    for sid in sorted(eph):
        lines.append(f"0x{sid:x}:")
        lines += [f"\t{p}" for p in sorted(eph[sid])]
    lines.append("Connections dump:")
    conns = s.connections()
    lines.append(f"Connections Sets (1)/({len(conns)}):")
    for c in conns:
        lines.append(f"\tip: /{c.peer[0]}:{c.peer[1]} sessionId: 0x{c.session_id:x}")
    return "\n".join(lines) + "\n"


def isro(s: ServerStats) -> str:
    return "ro" if s.mode() == ServerMode.READ_ONLY else "rw"


def ruok(s: ServerStats) -> str:
    return "imok"


def gtmk(s: ServerStats) -> str:
    return f"{s.trace_mask}\n"


def stmk(s: ServerStats) -> str:
    return f"{s.trace_mask}\n"


def elec(s: ServerStats) -> str:
    """zkops' own word: this server's recent election events, one JSON object a line."""
    quorum = s.quorum()
    if quorum is None:
        return ""
    import json

    return "".join(json.dumps(e) + "\n" for e in quorum.events)


WORDS: dict[str, Callable[[ServerStats], str]] = {
    "ruok": ruok, "srvr": srvr, "stat": stat, "mntr": mntr, "conf": conf, "cons": cons,
    "crst": crst, "srst": srst, "envi": envi, "dirs": dirs, "wchs": wchs, "wchc": wchc,
    "wchp": wchp, "dump": dump, "isro": isro, "gtmk": gtmk, "stmk": stmk, "elec": elec,
}


def answer(s: ServerStats, word: str, whitelist: frozenset[str]) -> str:
    """The text a 4lw gets back (the caller closes the connection after it)."""
    if word not in whitelist and "*" not in whitelist:
        return f"{word} is not executed because it is not in the whitelist.\n"
    if not s.serving() and word not in NOT_SERVING_WORDS:
        return "This ZooKeeper instance is not currently serving requests\n"
    fn = WORDS.get(word)
    return fn(s) if fn else ""
