"""What a server's reports read: one public view of its numbers.

The four-letter words (``fourletter``), ``mntr`` (``mntr``), the AdminServer (``adminserver``)
and the Prometheus port (``metrics``) read a running server only through ``ServerStats``:
``ZooKeeperServer`` builds one (its ``stats``) and is the only module that knows which of its
fields and core objects each number comes from. An ensemble member adds a ``QuorumReport``
(built by ``quorum.Ensemble.report`` each time it is asked): the leader, the learners as the
leader sees them, the elections, and the rows ``mntr`` prints for the quorum.

``Counters`` are the server-wide request counters (``srst`` resets them); ``Summary`` keeps a
measurement's count, sum and recent samples (fsync times, read and write latencies).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .servermode import ServerMode
from .values import Value

if TYPE_CHECKING:
    from .connection import ClientConnection
    from .metrics import PerNamespace
    from .records import ACL
    from .zkserver import ZooKeeperServer


class Summary:
    """count, sum and recent samples of one measurement (milliseconds)."""

    __slots__ = ("count", "total", "samples")

    def __init__(self, keep: int = 2048) -> None:
        self.count = 0
        self.total = 0.0
        self.samples: deque[float] = deque(maxlen=keep)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.samples.append(value)

    def quantile(self, q: float) -> float:
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


class Counters:
    """Server-wide request counters for srvr/stat/mntr (``srst`` resets them)."""

    def __init__(self) -> None:
        self.reset()
        self.started = time.time()
        self.read_summary = Summary()  # for the metrics port; srst leaves them alone, as Apache's
        self.update_summary = Summary()

    def reset(self) -> None:
        self.min_latency = -1
        self.max_latency = 0
        self.total_latency = 0
        self.count = 0
        self.packets_received = 0
        self.packets_sent = 0

    def record(self, ms: int, write: bool = False) -> None:
        s = self.update_summary if write else self.read_summary  # as s.observe(ms)
        s.count += 1
        s.total += ms
        s.samples.append(ms)
        self.count += 1
        self.total_latency += ms
        if self.min_latency < 0 or ms < self.min_latency:
            self.min_latency = ms
        if ms > self.max_latency:
            self.max_latency = ms

    @property
    def avg_latency(self) -> float:
        return self.total_latency / self.count if self.count else 0.0


class LearnerReport(Value):
    """One learner as its leader sees it."""

    __slots__ = ("sid", "observer", "phase", "synced", "voting")
    sid: int
    observer: bool
    phase: str  # zab.LearnerPhase
    synced: bool  # past NEWLEADER: it takes proposals
    voting: bool  # a follower in the current voting view (observers never are)

    def __init__(self, sid: int, observer: bool, phase: str, synced: bool, voting: bool) -> None:
        set_ = object.__setattr__
        set_(self, "sid", sid)
        set_(self, "observer", observer)
        set_(self, "phase", phase)
        set_(self, "synced", synced)
        set_(self, "voting", voting)


class QuorumReport(Value):
    """What an ensemble member adds to its server's numbers (``quorum.Ensemble.report``)."""

    __slots__ = ("leader", "established", "learners", "election_ms", "look_started", "mntr_rows", "events")
    _hidden = ("events",)
    leader: int | None  # who leads (None while looking)
    established: bool  # ZAB's broadcast phase: the quorum serves
    learners: tuple[LearnerReport, ...]  # the leader's learners (read them only on a leader)
    election_ms: tuple[float, ...]  # every election this server saw, oldest first
    look_started: float  # time.monotonic() when it last started looking
    mntr_rows: tuple[tuple[str, object], ...]  # the quorum's own mntr keys (zk_*)
    events: tuple[dict[str, Any], ...]  # recent election events (not in the repr)

    def __init__(self, leader: int | None, established: bool, learners: tuple[LearnerReport, ...] = (),
                 election_ms: tuple[float, ...] = (), look_started: float = 0.0,
                 mntr_rows: tuple[tuple[str, object], ...] = (), events: tuple[dict[str, Any], ...] = ()) -> None:
        set_ = object.__setattr__
        set_(self, "leader", leader)
        set_(self, "established", established)
        set_(self, "learners", learners)
        set_(self, "election_ms", election_ms)
        set_(self, "look_started", look_started)
        set_(self, "mntr_rows", mntr_rows)
        set_(self, "events", events)


def dir_size(path: Path) -> int:
    """Bytes in the files directly under ``path`` (0 when it cannot be read)."""
    total = 0
    try:
        for entry in os.scandir(path):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat().st_size
    except OSError:
        pass
    return total


class ServerStats:
    """A running server's numbers, for the 4lw, mntr, the AdminServer and metrics.

    Built by ``ZooKeeperServer`` (its ``stats``) with the server itself and a function that
    gives the quorum's report (None on a standalone server). Reading it changes nothing;
    ``reset``, ``reset_connections`` and ``trace_mask`` are the only writes the reports make.
    """

    def __init__(self, server: ZooKeeperServer, quorum: Callable[[], QuorumReport | None]) -> None:
        self._server = server
        self._quorum = quorum

    # ------------------------------------------------------------ who and where
    @property
    def cfg(self) -> Any:
        """The server's configuration (zoo.cfg as ``config.ServerConfig``)."""
        return self._server.cfg

    @property
    def server_id(self) -> int:
        return self._server.server_id

    @property
    def trace_mask(self) -> int:
        return self._server.trace_mask

    @trace_mask.setter
    def trace_mask(self, mask: int) -> None:
        self._server.trace_mask = mask

    def mode(self) -> ServerMode:
        return self._server.mode()

    def serving(self) -> bool:
        return self._server.serving()

    def quorum(self) -> QuorumReport | None:
        """The ensemble's part, None on a standalone server."""
        return self._quorum()

    def data_dir_size(self) -> int:
        return dir_size(Path(self.cfg.data_dir) / "version-2")

    def log_dir_size(self) -> int:
        return dir_size(Path(self.cfg.data_log_dir) / "version-2")

    # ------------------------------------------------------------ requests and connections
    def connections(self) -> list[ClientConnection]:
        return list(self._server.connections)

    @property
    def min_latency(self) -> int:
        return max(self._server.counters.min_latency, 0)

    @property
    def avg_latency(self) -> float:
        return self._server.counters.avg_latency

    @property
    def max_latency(self) -> int:
        return self._server.counters.max_latency

    @property
    def packets_received(self) -> int:
        """Packets received since the last srst, four-letter words included: the open connections'
        counts plus the base, which the closed ones' (and crst's) were added to."""
        return sum(c.packets_received for c in self._server.connections) + self._server.counters.packets_received

    @property
    def packets_sent(self) -> int:
        return sum(c.packets_sent for c in self._server.connections) + self._server.counters.packets_sent

    @property
    def outstanding(self) -> int:
        """Writes waiting to become durable."""
        return len(self._server.pending)

    @property
    def uptime_ms(self) -> int:
        return int((time.time() - self._server.counters.started) * 1000)

    @property
    def looking_count(self) -> int:
        return self._server.looking_count

    @property
    def read_summary(self) -> Summary:
        return self._server.counters.read_summary

    @property
    def update_summary(self) -> Summary:
        return self._server.counters.update_summary

    @property
    def fsync_summary(self) -> Summary:
        return self._server.fsync_summary

    @property
    def fsync_count(self) -> int:
        c = self._server.committer
        return c.fsync_count if c is not None else 0

    @property
    def last_fsync_ms(self) -> float:
        c = self._server.committer
        return round(c.fsync_ms_last, 3) if c is not None else 0

    def reset(self) -> None:
        """``srst``: the server-wide counters start again (the packets of the open connections
        are in the server-wide sums: the base goes below 0 by as many)."""
        counters = self._server.counters
        counters.reset()
        for c in self._server.connections:
            counters.packets_received -= c.packets_received
            counters.packets_sent -= c.packets_sent

    def reset_connections(self) -> None:
        """``crst``: every connection's counters start again; the server-wide ones keep counting."""
        counters = self._server.counters
        for c in self._server.connections:
            counters.packets_received += c.packets_received
            counters.packets_sent += c.packets_sent
            c.reset_stats()

    # ------------------------------------------------------------ the data tree
    @property
    def last_zxid(self) -> int:
        return self._server.core.last_zxid

    @property
    def last_processed_zxid(self) -> int:
        """The zxid srvr, stat and the AdminServer show, as Apache 3.8 shows it: the tree's
        last, except on an ensemble's leader once it serves: at least the first zxid of its
        epoch (``epoch << 32``), as Apache's leader sets its tree's lastProcessedZxid to that
        when it starts serving. (Apache's learners keep their own, unless a SNAP or TRUNC
        from the leader set it.) Client replies, snapshots and logs keep the tree's own."""
        zxid = self._server.core.last_zxid
        if self.mode() != ServerMode.LEADER:
            return zxid
        quorum = self._quorum()
        if quorum is None or not quorum.established:
            return zxid
        for key, value in quorum.mntr_rows:
            if key == "zk_epoch" and isinstance(value, int):
                return max(zxid, value << 32)
        return zxid

    def proposal_sizes(self) -> tuple[int, int, int] | None:
        """A leader's proposal sizes (last, min, max; -1 before any was measured), as its
        mntr shows them; None on any other server (Apache prints them only on a leader)."""
        quorum = self._quorum()
        if quorum is None or self.mode() != ServerMode.LEADER:
            return None
        rows = dict(quorum.mntr_rows)

        def size(key: str) -> int:
            value = rows.get(key)
            return value if isinstance(value, int) and value > 0 else -1

        return size("zk_last_proposal_size"), size("zk_min_proposal_size"), size("zk_max_proposal_size")

    @property
    def node_count(self) -> int:
        return self._server.core.tree.node_count()

    @property
    def data_size(self) -> int:
        return self._server.core.tree.data_size()

    @property
    def ephemerals_count(self) -> int:
        return sum(len(v) for v in self._server.core.tree.ephemerals.values())

    def ephemerals(self) -> dict[int, set[str]]:
        """session id -> its ephemeral paths."""
        return {sid: set(paths) for sid, paths in self._server.core.tree.ephemerals.items()}

    def root_acl(self) -> list[ACL]:
        root = self._server.core.tree.get("/")
        return list(root.acl) if root is not None else []

    def quota_totals(self) -> dict[str, dict[str, int]]:
        """Apache's per-namespace quota gauges (``quota.namespace_totals``)."""
        from .quota import namespace_totals

        return namespace_totals(self._server.core.tree)

    def read_namespaces(self) -> PerNamespace:
        return self._server.core.reads

    def write_namespaces(self) -> PerNamespace:
        return self._server.core.tree.writes

    def snapshot(self) -> tuple[int, bytes]:
        """(zxid, bytes) of a snapshot file of the tree and sessions as they are now."""
        from . import snapshot as snapmod

        tree = self._server.core.tree
        zxid = tree.last_zxid
        rows = tree.snapshot_rows()
        return zxid, snapmod.serialize_rows(zxid, self.session_timeouts(), rows.acls, rows)

    # ------------------------------------------------------------ sessions and watches
    @property
    def session_count(self) -> int:
        return len(self._server.core.sessions)

    def session_timeouts(self) -> dict[int, int]:
        return {sid: s.timeout for sid, s in self._server.core.sessions.sessions.items()}

    def session_buckets(self) -> dict[int, set[int]]:
        """Expiry time (ms) -> the sessions due then."""
        return {t: set(ids) for t, ids in self._server.core.sessions.buckets.items()}

    @property
    def watch_count(self) -> int:
        return self._server.core.watches.watch_count()

    def watch_summary(self) -> tuple[int, int, int]:
        """(connections, paths, watches) of the data watch table, as ``wchs`` counts them."""
        conns, npaths, total = self._server.core.watches.summary()
        return conns, npaths, total

    def paths_by_watcher(self) -> dict[Any, set[str | None]]:
        """Data watches by connection (``wchc``)."""
        return self._server.core.watches.paths_by_watcher()

    def watchers_by_path(self) -> dict[str | None, set[Any]]:
        """Data watches by path (``wchp``)."""
        return self._server.core.watches.watchers_by_path()


__all__ = ["Counters", "LearnerReport", "QuorumReport", "ServerStats", "Summary", "dir_size"]
