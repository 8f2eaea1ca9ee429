"""``mntr`` and the AdminServer's ``monitor``: Apache ZooKeeper 3.8's whole key set, in its order.

Monitoring tools and exporters look keys up by name, so every key Apache 3.8.0 prints for a
server in the same role is here, in the order Apache prints them (the tables were taken from a
real 3.8.0 standalone server and a leader/follower/observer ensemble; tests/test_mntr.py
compares them again). Values zkops has no meaning for are 0 (0.0 for averages), and -1 where
Apache itself says -1 before it has measured anything. The leader adds Apache's per-learner
summaries (``*_<sid>_learner_handler_qp_size`` and ``*_<sid>_learner_handler_qp_time_ms``).
zkops' own keys come after Apache's. Both the 4lw (fourletter.mntr) and ``monitor``
(adminserver) read ``rows`` here, which reads the server through ``stats.ServerStats``.
"""

from __future__ import annotations

import os
import resource
import time
from typing import TYPE_CHECKING, Any

from .fourletterformat import java_double
from .quota import NAMESPACE_GAUGES
from .servermode import ServerMode
from .version import VERSION_STRING

if TYPE_CHECKING:
    from .stats import ServerStats, Summary

# The first part: the server's own values, per role (Apache prints them in its hash order).
_STANDALONE = (
    "version", "server_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "outstanding_requests", "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "last_client_response_size", "packets_sent", "packets_received", "max_client_response_size",
    "connection_drop_probability", "watch_count", "auth_failed_count", "min_latency",
    "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count",
    "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake", "min_client_response_size",
    "non_mtls_local_conn_count",
)

_LEADER = (
    "version", "server_state", "peer_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "min_proposal_size", "outstanding_requests", "znode_count", "global_sessions",
    "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent", "packets_received",
    "max_proposal_size", "max_client_response_size", "synced_followers", "connection_drop_probability",
    "watch_count", "synced_non_voting_followers", "synced_observers", "auth_failed_count",
    "min_latency", "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count",
    "last_proposal_size", "pending_syncs", "leader_uptime", "local_sessions", "uptime", "max_latency",
    "outstanding_tls_handshake", "learners", "min_client_response_size", "non_mtls_local_conn_count",
    "quorum_size",
)

_FOLLOWER = (
    "version", "server_state", "peer_state", "ephemerals_count", "num_alive_connections", "avg_latency",
    "outstanding_requests", "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "last_client_response_size", "packets_sent", "packets_received", "max_client_response_size",
    "connection_drop_probability", "watch_count", "auth_failed_count", "min_latency",
    "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count",
    "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake", "min_client_response_size",
    "non_mtls_local_conn_count", "quorum_size",
)

_OBSERVER = (
    "version", "server_state", "peer_state", "observer_master_id", "ephemerals_count",
    "num_alive_connections", "avg_latency", "outstanding_requests", "znode_count", "global_sessions",
    "non_mtls_remote_conn_count", "last_client_response_size", "packets_sent", "packets_received",
    "max_client_response_size", "connection_drop_probability", "watch_count", "auth_failed_count",
    "min_latency", "max_file_descriptor_count", "approximate_data_size", "open_file_descriptor_count",
    "local_sessions", "uptime", "max_latency", "outstanding_tls_handshake", "min_client_response_size",
    "non_mtls_local_conn_count", "quorum_size",
)

_FAMILIES = """
    c:proposal_count c:watch_bytes c:outstanding_changes_removed c:throttled_ops
    c:stale_requests_dropped c:large_requests_rejected c:insecure_admin_count c:connection_rejected
    c:cnxn_closed_without_zk_server_running c:sessionless_connections_expired c:looking_count
    c:dead_watchers_queued c:stale_requests c:connection_drop_count c:learner_proposal_received_count
    c:digest_mismatches_count c:dead_watchers_cleared c:response_packet_cache_hits
    c:bytes_received_count c:add_dead_watcher_stall_time c:request_throttle_wait_count
    c:requests_not_forwarded_to_commit_processor c:response_packet_cache_misses c:ensemble_auth_success
    c:prep_processor_request_queued c:learner_commit_received_count c:stale_replies
    c:connection_request_count c:response_bytes c:ensemble_auth_fail c:diff_count
    c:response_packet_get_children_cache_misses c:connection_revalidate_count
    c:quit_leading_due_to_disloyal_voter c:snap_count c:unrecoverable_error_count
    c:unsuccessful_handshake c:commit_count c:stale_sessions_expired
    c:response_packet_get_children_cache_hits c:sync_processor_request_queued
    c:outstanding_changes_queued c:request_commit_queued c:ensemble_auth_skip
    c:skip_learner_request_to_next_processor_count c:tls_handshake_exceeded c:revalidate_count
    s:socket_closing_time s:proposal_process_time s:leader_unavailable_time s:node_created_watch_count
    s:session_queues_drained s:write_commit_proc_req_queued s:connection_token_deficit
    s:read_commit_proc_req_queued s:node_deleted_watch_count s:startup_txns_load_time
    s:sync_processor_queue_size s:follower_sync_time s:prep_processor_queue_size s:fsynctime
    s:inflight_snap_count s:reads_issued_from_session_queue s:learner_request_processor_queue_size
    s:snapshottime s:unavailable_time s:startup_txns_loaded s:reads_after_write_in_session_queue
    s:requests_in_session_queue s:write_commit_proc_issued s:prep_process_time
    s:pending_session_queue_size s:time_waiting_empty_pool_in_commit_processor_read_ms
    s:commit_process_time s:dbinittime s:inflight_diff_count s:netty_queued_buffer_capacity
    s:election_time s:commit_commit_proc_req_queued s:sync_processor_batch_size
    s:node_children_watch_count s:write_batch_time_in_commit_processor s:read_commit_proc_issued
    s:concurrent_request_processing_in_commit_processor s:observer_sync_time s:node_changed_watch_count
    s:sync_process_time s:startup_snap_load_time p:prep_processor_queue_time_ms p:jvm_pause_time_ms
    p:close_session_prep_time p:read_commitproc_time_ms p:updatelatency p:local_write_committed_time_ms
    p:request_throttle_queue_time_ms p:readlatency p:quorum_ack_latency p:om_commit_process_time_ms
    p:read_final_proc_time_ms p:commit_propagation_latency p:dead_watchers_cleaner_latency
    p:write_final_proc_time_ms p:proposal_ack_creation_latency p:proposal_latency
    p:om_proposal_process_time_ms p:sync_processor_queue_and_flush_time_ms p:propagation_latency
    p:server_write_committed_time_ms p:sync_processor_queue_time_ms p:sync_processor_queue_flush_time_ms
    p:write_commitproc_time_ms
"""
FRONT: dict[ServerMode, tuple[str, ...]] = {
    ServerMode.STANDALONE: _STANDALONE, ServerMode.LEADER: _LEADER, ServerMode.FOLLOWER: _FOLLOWER,
    ServerMode.OBSERVER: _OBSERVER, ServerMode.READ_ONLY: _FOLLOWER,  # a read-only member is one of Apache's quorum servers
}
# The metrics provider's part, the same for every role: c = counter, s = avg/min/max/cnt/sum,
# p = the same plus p50/p95/p99/p999.
FAMILIES: tuple[tuple[str, str], ...] = tuple((f[0], f[2:]) for f in _FAMILIES.split())
SUMMARY = ("avg", "min", "max", "cnt", "sum")
PERCENTILES = ("p50", "p95", "p99", "p999")
PEER_STATES = {ServerMode.LEADER: "leading", ServerMode.FOLLOWER: "following", ServerMode.OBSERVER: "observing"}
# Apache's values before anything was measured, where they are not 0
INITIAL = {"last_client_response_size": -1, "max_client_response_size": -1, "min_client_response_size": -1,
           "min_proposal_size": -1, "max_proposal_size": -1, "last_proposal_size": -1,
           "connection_drop_probability": 0.0, "avg_latency": 0.0}
# zkops' own keys, printed after Apache's
OWN = ("fsync_count", "last_fsync_time_ms", "epoch", "election_count", "last_election_time_ms",
       "digest_checked_count")


class Measured:
    """count, sum, min and max of one measurement, and recent samples for percentiles."""

    __slots__ = ("count", "total", "low", "high", "samples")

    def __init__(self, count: int = 0, total: float = 0, low: float = 0, high: float = 0,
                 samples: list[float] | None = None) -> None:
        self.count, self.total, self.low, self.high = count, total, low, high
        self.samples = samples or []

    @classmethod
    def of(cls, values: Any) -> Measured:
        values = list(values)
        if not values:
            return cls()
        return cls(len(values), sum(values), min(values), max(values), values)

    def rows(self, name: str, percentiles: bool) -> list[tuple[str, object]]:
        avg = self.total / self.count if self.count else 0.0
        out: list[tuple[str, object]] = [(f"avg_{name}", round(float(avg), 4)), (f"min_{name}", _whole(self.low)),
                                         (f"max_{name}", _whole(self.high)), (f"cnt_{name}", self.count),
                                         (f"sum_{name}", _whole(self.total))]
        if percentiles:
            ordered = sorted(self.samples)
            for label, q in zip(PERCENTILES, (0.5, 0.95, 0.99, 0.999), strict=True):
                v = ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0
                out.append((f"{label}_{name}", _whole(v)))
        return out


def _java_order(names: list[str]) -> list[str]:
    """A ConcurrentHashMap's iteration order for keys added in this order (16 buckets, doubling)."""
    from .javaorder import grown_capacity, hashset_order

    return hashset_order(names, grown_capacity(16, len(names)))


def _whole(v: float) -> int:
    return int(round(v))


def _of_summary(summary: Summary) -> Measured:
    """From a stats.Summary: its count and sum, min/max/percentiles over its recent samples."""
    m = Measured.of(summary.samples)
    m.count, m.total = summary.count, summary.total
    return m


def _measured(s: ServerStats) -> dict[str, Measured]:
    quorum = s.quorum()
    return {
        "fsynctime": _of_summary(s.fsync_summary),
        "readlatency": _of_summary(s.read_summary),
        "updatelatency": _of_summary(s.update_summary),
        "election_time": Measured.of(quorum.election_ms if quorum is not None else ()),
    }


def _known(s: ServerStats) -> dict[str, object]:
    """The values zkops has, by Apache's key (without zk_)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_fds = 0
    mode = s.mode()
    known: dict[str, object] = {
        "version": VERSION_STRING, "server_state": mode,
        "ephemerals_count": s.ephemerals_count,
        "num_alive_connections": len(s.connections()), "avg_latency": round(s.avg_latency, 4),
        "outstanding_requests": s.outstanding, "znode_count": s.node_count,
        "global_sessions": s.session_count,
        "packets_sent": s.packets_sent,
        "packets_received": s.packets_received,
        "watch_count": s.watch_count, "min_latency": s.min_latency,
        "max_latency": s.max_latency, "max_file_descriptor_count": soft,
        "open_file_descriptor_count": open_fds, "approximate_data_size": s.data_size,
        "uptime": s.uptime_ms, "looking_count": s.looking_count,
        "fsync_count": s.fsync_count,
        "last_fsync_time_ms": s.last_fsync_ms,
    }
    quorum = s.quorum()
    if quorum is None:
        return known
    # the ensemble's own report (quorum.Ensemble.report), read by name
    for key, value in quorum.mntr_rows:
        known[key[3:] if key.startswith("zk_") else key] = value
    if "peer_state" in known:
        state = str(known["peer_state"])
        known["peer_state"] = f"{PEER_STATES[mode]} - broadcast" if state.endswith("broadcast") and mode in \
            PEER_STATES else state
    if known.get("last_proposal_size") == 0:
        known["last_proposal_size"] = -1  # no proposal measured: Apache's -1
    if mode == ServerMode.LEADER:
        # followers outside the voting view (during a reconfig); observers are not followers
        known["synced_non_voting_followers"] = sum(
            1 for lr in quorum.learners if not lr.observer and not lr.voting and lr.synced)
    if mode == ServerMode.OBSERVER and quorum.leader is not None:
        known["observer_master_id"] = quorum.leader
    if mode == ServerMode.LEADER and quorum.election_ms:
        known["leader_uptime"] = int((time.monotonic() - quorum.look_started) * 1000 - quorum.election_ms[-1])
    return known


def learner_sids(s: ServerStats) -> list[int]:
    """The learners a leader has a handler for (Apache's per-learner keys name them)."""
    quorum = s.quorum()
    if s.mode() != ServerMode.LEADER or quorum is None:
        return []
    return sorted(lr.sid for lr in quorum.learners)


def rows(s: ServerStats) -> list[tuple[str, object]]:
    """(key without zk_, value) for every key, in Apache's order, then zkops' own."""
    known = _known(s)
    measured = _measured(s)
    out: list[tuple[str, object]] = [(k, known.get(k, INITIAL.get(k, 0))) for k in
                                     FRONT.get(s.mode(), _STANDALONE)]
    totals = s.quota_totals()
    for gauge in NAMESPACE_GAUGES:
        for name in _java_order(list(totals[gauge])):
            out.append((f"{name}_quota_{gauge}_per_namespace", totals[gauge][name]))
    for kind, name in FAMILIES:
        if kind == "c":
            out.append((name, known.get(name, 0)))
        else:
            out += measured.get(name, Measured()).rows(name, kind == "p")
    # the metric sets, whose key names carry a learner's id or a namespace, in Apache's order
    sids = _java_order([str(sid) for sid in learner_sids(s)])
    for sid in sids:
        out += Measured().rows(f"{sid}_learner_handler_qp_size", False)
    for kind, counts in (("read", s.read_namespaces()), ("write", s.write_namespaces())):
        rows_by_name = counts.rows()
        for name in _java_order(list(rows_by_name)):
            n, total, low, high = rows_by_name[name]
            out += Measured(n, total, low, high).rows(f"{name}_{kind}_per_namespace", False)
    for sid in sids:
        out += Measured().rows(f"{sid}_learner_handler_qp_time_ms", True)
    out += [(k, known[k]) for k in OWN if k in known]
    return out


def text(s: ServerStats) -> str:
    """The 4lw's answer: ``zk_<key>\\t<value>`` lines."""
    return "".join(f"zk_{k}\t{_java(v)}\n" for k, v in rows(s))


def monitor(s: ServerStats) -> dict[str, object]:
    """The AdminServer's ``monitor`` body (keys without zk_, numbers as numbers)."""
    return dict(rows(s))


def _java(v: object) -> str:
    if isinstance(v, float):
        return java_double(v)
    return str(v)


__all__ = ["FAMILIES", "FRONT", "OWN", "learner_sids", "monitor", "rows", "text"]
