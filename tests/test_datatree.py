"""The data tree and the preparer, driven by hypothesis against a small model.

Properties: pipelined writes (prepared before earlier ones commit) give the same
results as one-at-a-time writes; every committed txn replays to an identical tree;
the tree's indexes (children, ephemerals, containers) stay consistent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server.codes import CreateFlag, Err, EventType, Op
from zkops.server.core import Limits, ServerCore
from zkops.server.datatree import DataTree
from zkops.server.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    DeleteRequest,
    Id,
    SetDataRequest,
    TxnHeader,
)
from zkops.server.txncodec import decode_txn, encode_txn

OPEN = [ACL(31, Id("world", "anyone"))]
NAMES = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/s-"]
SESSIONS = [0x1000, 0x2000]

ops = st.one_of(
    st.tuples(st.just(Op.create), st.sampled_from(NAMES), st.binary(max_size=8),
              st.sampled_from([0, 1, 2, 3, 4])),
    st.tuples(st.just(Op.delete), st.sampled_from(NAMES), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just(Op.setData), st.sampled_from(NAMES), st.binary(max_size=8), st.sampled_from([-1, 0, 1, 2])),
    st.tuples(st.just(Op.closeSession)),
    st.tuples(st.just(Op.multi), st.lists(st.tuples(st.sampled_from([Op.create, Op.delete, Op.check]),
                                                    st.sampled_from(NAMES)), min_size=1, max_size=3)),
)


def _request(op: tuple) -> tuple[int, Any]:
    kind = op[0]
    if kind == Op.create:
        flags = op[3]
        return (Op.createContainer if flags == CreateFlag.CONTAINER else Op.create), CreateRequest(op[1], op[2], OPEN, flags)
    if kind == Op.delete:
        return Op.delete, DeleteRequest(op[1], op[2])
    if kind == Op.setData:
        return Op.setData, SetDataRequest(op[1], op[2], op[3])
    if kind == Op.closeSession:
        return Op.closeSession, None
    sub = []
    for k, path in op[1]:
        if k == Op.create:
            sub.append((Op.create, CreateRequest(path, b"", OPEN, 0)))
        elif k == Op.delete:
            sub.append((Op.delete, DeleteRequest(path, -1)))
        else:
            sub.append((Op.check, CheckVersionRequest(path, 0)))
    return Op.multi, sub


def _snapshot(tree: DataTree) -> dict[str, tuple]:
    return {p: (n.data, n.stat(), tuple(tree.children_of(p)), n.acl) for p, n in tree.nodes.items()}


def _core_with_session(session_id: int = 1) -> ServerCore:
    """A core whose session 1 is open: writes from unknown sessions become SESSIONEXPIRED."""
    core = ServerCore(Limits())
    core.sessions.add(session_id, 30000, 0)
    return core


def _run(script: list[tuple], batch: int) -> tuple[ServerCore, list[Any], list[bytes]]:
    """Apply ops, preparing up to ``batch`` before committing them (pipelining)."""
    core = ServerCore(Limits(extended_types=True))
    results: list[Any] = []
    log: list[bytes] = []
    pending: list[tuple[TxnHeader, Any]] = []
    for i, op in enumerate(script):
        kind, req = _request(op)
        sid = SESSIONS[i % 2]
        hdr, body = core.prep.prepare(sid, i, kind, req, [], 1000 + i)
        pending.append((hdr, body))
        if len(pending) >= batch:
            for h, b in pending:
                data = encode_txn(h, b)
                log.append(data)
                r, _ = core.commit(*decode_txn(data))
                results.append((h.type, r.err, r.multi and [(t, e) for t, e, _ in r.multi]))
            pending.clear()
    for h, b in pending:
        data = encode_txn(h, b)
        log.append(data)
        r, _ = core.commit(*decode_txn(data))
        results.append((h.type, r.err, r.multi and [(t, e) for t, e, _ in r.multi]))
    return core, results, log


def _check_indexes(tree: DataTree) -> None:
    for path in tree.nodes:
        if path != "/":
            parent_path = path.rsplit("/", 1)[0] or "/"
            parent = tree.nodes[parent_path]
            assert path.rsplit("/", 1)[1] in tree.children_of(parent_path)
            assert path in (parent.children or ())  # keyed by the child's path
        for name in tree.children_of(path):
            child = (path.rstrip("/") + "/" + name) if path != "/" else "/" + name
            assert child in tree.nodes
    for sid, eph in tree.ephemerals.items():
        for p in eph:
            assert tree.nodes[p].owner == sid
    for p in tree.containers:
        assert p in tree.nodes


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40), st.integers(min_value=1, max_value=6))
def test_pipelined_writes_match_one_at_a_time(script, batch):
    serial, serial_results, _ = _run(script, 1)
    piped, piped_results, _ = _run(script, batch)
    assert piped_results == serial_results
    a, b = _snapshot(serial.tree), _snapshot(piped.tree)
    # ctime/mtime come from the prepare call, the same in both runs
    assert a == b
    _check_indexes(piped.tree)


@settings(max_examples=200, deadline=None)
@given(st.lists(ops, max_size=40))
def test_replaying_the_log_rebuilds_the_same_tree(script):
    core, _, log = _run(script, 3)
    replay = DataTree()
    for data in log:
        replay.apply(*decode_txn(data))
    assert _snapshot(replay) == _snapshot(core.tree)
    assert replay.last_zxid == core.tree.last_zxid


def test_sequential_suffix_counts_creations_not_children():
    core = _core_with_session()

    def do(op: int, req: Any) -> Any:
        hdr, body = core.prep.prepare(1, 0, op, req, [], 1)
        return core.commit(hdr, body)[0]

    do(Op.create, CreateRequest("/p", b"", OPEN, 0))
    do(Op.create, CreateRequest("/p/c1", b"", OPEN, 0))
    do(Op.create, CreateRequest("/p/c2", b"", OPEN, 0))
    do(Op.delete, DeleteRequest("/p/c1", -1))
    r = do(Op.create, CreateRequest("/p/s-", b"", OPEN, CreateFlag.PERSISTENT_SEQUENTIAL))
    assert r.value[0] == "/p/s-0000000002"
    assert core.tree.nodes["/p"].cversion == 3  # stored as Apache: creations only
    assert core.tree.nodes["/p"].stat().cversion == 4  # shown: creations and deletions


def test_failed_multi_changes_nothing_and_reports_rollback():
    core = _core_with_session()
    hdr, body = core.prep.prepare(1, 0, Op.multi, [(Op.create, CreateRequest("/m", b"", OPEN, 0)),
                                                   (Op.delete, DeleteRequest("/nope", -1)),
                                                   (Op.create, CreateRequest("/m2", b"", OPEN, 0))], [], 1)
    result, notes = core.commit(hdr, body)
    assert [(t, e) for t, e, _ in result.multi] == [(Op.error, 0), (Op.error, Err.NONODE),
                                                    (Op.error, Err.RUNTIMEINCONSISTENCY)]
    assert "/m" not in core.tree.nodes and not notes
    # the failed multi left no outstanding change behind: /m can be created now
    hdr, body = core.prep.prepare(1, 1, Op.create, CreateRequest("/m", b"", OPEN, 0), [], 1)
    assert core.commit(hdr, body)[0].err == 0


def test_delete_fires_data_and_child_watches_once_per_watcher():
    core = _core_with_session()
    for p in ("/w", "/w/c"):
        hdr, body = core.prep.prepare(1, 0, Op.create, CreateRequest(p, b"", OPEN, 0), [], 1)
        core.commit(hdr, body)
    core.watches.add_data("/w/c", "conn1")
    core.watches.add_child("/w/c", "conn1")
    core.watches.add_child("/w", "conn2")
    hdr, body = core.prep.prepare(1, 0, Op.delete, DeleteRequest("/w/c", -1), [], 1)
    _, notes = core.commit(hdr, body)
    assert sorted(notes) == [("conn1", EventType.NodeDeleted, "/w/c"),
                             ("conn2", EventType.NodeChildrenChanged, "/w")]
    assert core.watches.watch_count() == 0
