"""Prometheus metrics (``metricsProvider.httpPort``, default 7000), in the text exposition format.

Names follow Apache ZooKeeper's Prometheus provider (``znode_count``, ``watch_count``,
``num_alive_connections``, ``outstanding_requests``, ``global_sessions``, ``election_time``,
``looking_count``, ``fsynctime``, ``readlatency``, ``updatelatency``, ...). Summaries keep
the last samples in a bounded ring (``stats.Summary``), so recording one costs an append and
scraping computes the quantiles. The scrape reads the server through ``stats.ServerStats``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .servermode import ServerMode
from .stats import Summary

if TYPE_CHECKING:
    from .stats import ServerStats

QUANTILES = (0.5, 0.9, 0.99)


STAT_OVERHEAD_BYTES = 6 * 8 + 5 * 4  # what Apache adds to every read for the Stat it returns


_ABSENT: Any = object()


class PerNamespace:
    """Apache's per-namespace byte counts (mntr's ``*_<ns>_read_per_namespace`` and
    ``*_<ns>_write_per_namespace``): count, sum, min and max of bytes, keyed by a path's first
    component (mntr lists them in Java's hash order, not in the order kept here)."""

    __slots__ = ("by_key", "home", "at_home")

    def __init__(self, home: dict[str, Any] | None = None) -> None:
        # keyed by "/" + the namespace: a top-level znode's own path string serves as its key.
        # One sample is kept as a bare int (count 1; sum, min and max that int), more as a
        # list [count, sum, min, max]: a tree of many top-level znodes written once each
        # costs no list and no name string per znode
        self.by_key: dict[str, int | list[int]] = {}
        # ``home``: a dict whose keys are the namespaces that exist now (the tree's write counts
        # pass the root's children, keyed by the top-level znodes' paths, with None for "no
        # row"): a namespace's row is kept there, as the value of its key, while the key is
        # there, so a namespace costs no dict entry of its own; by_key holds the others (a
        # namespace whose top-level znode was deleted, see ``park``). A key's row is in one of
        # the two, never both.
        self.home = home
        self.at_home = 0  # rows kept in home (a home of many keys with none is not walked)

    def add(self, path: str, nbytes: int) -> None:
        second = path.find("/", 1)
        key = path if second < 0 else path[:second]
        if len(key) < 2:  # the root has no namespace
            return
        # Java counts UTF-16 units in a path's length
        total = (len(path) if path.isascii() else len(path.encode("utf-16-le")) // 2) + nbytes
        store: dict[str, Any] = self.by_key
        home = self.home
        row = _ABSENT if home is None else home.get(key, _ABSENT)
        if row is _ABSENT or home is None:
            row = store.get(key)
        else:
            store = home
            if row is None:
                self.at_home += 1
                if self.by_key:  # a namespace made again: its old row comes home
                    row = self.by_key.pop(key, None)
                    if row is not None:
                        home[key] = row
        if isinstance(row, list):
            row[0] += 1
            row[1] += total
            if total < row[2]:
                row[2] = total
            if total > row[3]:
                row[3] = total
        elif row is None:
            store[key] = total
        else:
            store[key] = [2, row + total, min(row, total), max(row, total)]

    def park(self, key: str, row: int | list[int] | None) -> None:
        """``key`` left ``home`` (its top-level znode was deleted) with this value: its row, if
        any, is kept in by_key (Apache keeps a namespace's counts after its znodes are gone)."""
        if row is not None:
            self.by_key[key] = row
            self.at_home -= 1

    def rows(self) -> dict[str, tuple[int, int, int, int]]:
        """Namespace -> (count, sum, min, max)."""
        out = {}
        for store in (self.by_key, self.home if self.home is not None and self.at_home else {}):
            for key, row in store.items():
                if row is None:
                    continue
                out[key[1:]] = (1, row, row, row) if isinstance(row, int) else (row[0], row[1], row[2], row[3])
        return out


def _num(v: float) -> str:
    return repr(float(v)) if isinstance(v, float) else str(v)


def _gauge(out: list[str], name: str, help_text: str, value: float, kind: str = "gauge") -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {_num(value)}"]


def _summary(out: list[str], name: str, help_text: str, s: Summary) -> None:
    out += [f"# HELP {name} {help_text}", f"# TYPE {name} summary"]
    out += [f'{name}{{quantile="{q}"}} {_num(s.quantile(q))}' for q in QUANTILES]
    out += [f"{name}_count {s.count}", f"{name}_sum {_num(s.total)}"]


def exposition(s: ServerStats) -> str:
    """The whole scrape, for ``GET /metrics``."""
    out: list[str] = []
    _gauge(out, "znode_count", "Number of znodes", s.node_count)
    _gauge(out, "ephemerals_count", "Number of ephemeral znodes", s.ephemerals_count)
    _gauge(out, "approximate_data_size", "Bytes of znode data and paths", s.data_size)
    _gauge(out, "watch_count", "Number of watches", s.watch_count)
    _gauge(out, "num_alive_connections", "Client connections", len(s.connections()))
    _gauge(out, "global_sessions", "Sessions", s.session_count)
    _gauge(out, "outstanding_requests", "Writes waiting to be committed", s.outstanding)
    _gauge(out, "uptime", "Milliseconds since the server started", s.uptime_ms)
    _gauge(out, "last_processed_zxid", "The last zxid applied", s.last_zxid)
    _gauge(out, "looking_count", "Times this server started looking for a leader", s.looking_count, "counter")
    _gauge(out, "fsync_count", "fsyncs of the transaction log", s.fsync_count, "counter")
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    _gauge(out, "open_file_descriptor_count", "Open file descriptors", fds)
    mode = s.mode()
    out += ["# HELP server_state 1 for the state this server is in", "# TYPE server_state gauge"]
    out += [f'server_state{{state="{m}"}} {1 if m == mode else 0}'
            for m in ServerMode]
    quorum = s.quorum()
    elections = Summary()
    for ms in quorum.election_ms if quorum is not None else ():
        elections.observe(ms)
    _summary(out, "election_time", "Milliseconds from looking to leading or following", elections)
    _summary(out, "fsynctime", "Milliseconds per fsync of the transaction log", s.fsync_summary)
    _summary(out, "readlatency", "Milliseconds from receiving a read to answering it", s.read_summary)
    _summary(out, "updatelatency", "Milliseconds from receiving a write to answering it", s.update_summary)
    return "\n".join(out) + "\n"


def handler(s: ServerStats) -> Callable[[str, dict[str, list[str]]], tuple[int, str, bytes]]:
    def handle(path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if path.rstrip("/") in ("/metrics", ""):
            return 200, "text/plain; version=0.0.4; charset=utf-8", exposition(s).encode()
        return 404, "text/plain", b"not found: use /metrics\n"

    return handle
