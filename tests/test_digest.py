"""Apache 3.8's data tree digest (server/digest.py), kept incrementally by the tree.

Properties, after random sequences of writes of every kind, prepared in pipelined batches:
the tree's running digest equals a recomputation from every node; the digest the preparer
predicts for each txn (what a leader sends) equals the tree's digest once that txn is applied;
replaying the txns, or loading the tree back node by node as from a snapshot, gives the same.
"""

from __future__ import annotations

import zlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server import digest as dg
from zkops.server.codes import CreateFlag, Op
from zkops.server.core import Limits, ServerCore
from zkops.server.datatree import DataTree, decode_snapshot_node
from zkops.server.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    Id,
    SetACLRequest,
    SetDataRequest,
    TxnHeader,
)
from zkops.server.txncodec import TxnDigest, decode_txn, decode_txn_digest, encode_txn

OPEN = [ACL(31, Id("world", "anyone"))]
READ = [ACL(1, Id("world", "anyone"))]
NAMES = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/s-", "/a/s-"]
DATA_PATHS = NAMES + ["/", "/zookeeper", "/zookeeper/quota"]
SESSIONS = [0x1000, 0x2000, 0x3000]
FLAGS = [int(CreateFlag.PERSISTENT), int(CreateFlag.EPHEMERAL), int(CreateFlag.PERSISTENT_SEQUENTIAL),
         int(CreateFlag.EPHEMERAL_SEQUENTIAL), int(CreateFlag.CONTAINER), int(CreateFlag.PERSISTENT_WITH_TTL)]

ops = st.one_of(
    st.tuples(st.just(Op.create), st.sampled_from(NAMES), st.one_of(st.none(), st.binary(max_size=8)),
              st.sampled_from(FLAGS)),
    st.tuples(st.just(Op.delete), st.sampled_from(NAMES), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just(Op.setData), st.sampled_from(DATA_PATHS), st.binary(max_size=8), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just(Op.setACL), st.sampled_from(DATA_PATHS), st.booleans(), st.sampled_from([-1, 0, 1])),
    st.tuples(st.just(Op.closeSession)),
    st.tuples(st.just(Op.createSession)),
    st.tuples(st.just(Op.multi), st.lists(st.tuples(st.sampled_from([Op.create, Op.delete, Op.check, Op.setData]),
                                                    st.sampled_from(NAMES)), min_size=1, max_size=4)),
)


def _request(op: tuple) -> tuple[int, Any]:
    kind = op[0]
    if kind == Op.create:
        flags = op[3]
        if flags == CreateFlag.CONTAINER:
            return Op.createContainer, CreateRequest(op[1], op[2], OPEN, flags)
        if flags == CreateFlag.PERSISTENT_WITH_TTL:
            return Op.createTTL, CreateTTLRequest(op[1], op[2], OPEN, flags, 5000)
        return Op.create2, CreateRequest(op[1], op[2], OPEN, flags)
    if kind == Op.delete:
        return Op.delete, DeleteRequest(op[1], op[2])
    if kind == Op.setData:
        return Op.setData, SetDataRequest(op[1], op[2], op[3])
    if kind == Op.setACL:
        return Op.setACL, SetACLRequest(op[1], OPEN if op[2] else READ, op[3])
    if kind == Op.closeSession:
        return Op.closeSession, None
    if kind == Op.createSession:
        return Op.createSession, 30000
    sub: list[tuple[int, Any]] = []
    for k, path in op[1]:
        if k == Op.create:
            sub.append((Op.create, CreateRequest(path, b"m", OPEN, 0)))
        elif k == Op.delete:
            sub.append((Op.delete, DeleteRequest(path, -1)))
        elif k == Op.setData:
            sub.append((Op.setData, SetDataRequest(path, b"set", -1)))
        else:
            sub.append((Op.check, CheckVersionRequest(path, 0)))
    return Op.multi, sub


def _full(tree: DataTree) -> int:
    return dg.full_digest(tree.nodes.items())


def _run(script: list[tuple], batch: int) -> tuple[ServerCore, list[bytes]]:
    """Prepare up to ``batch`` writes before committing them; check every digest on the way."""
    core = ServerCore(Limits(extended_types=True))
    for sid in SESSIONS:
        core.sessions.add(sid, 30000, 0)
    log: list[bytes] = []
    pending: list[tuple[TxnHeader, Any, int]] = []

    def commit_all() -> None:
        for h, b, predicted in pending:
            data = encode_txn(h, b, TxnDigest(dg.DIGEST_VERSION, dg.to_long(predicted)))
            log.append(data)
            hdr, body, digest = decode_txn_digest(data)
            assert digest is not None and digest.version == 2
            core.commit(hdr, body)
            tree = core.tree
            assert tree.tree_digest() == _full(tree), "incremental digest drifted from a recount"
            assert dg.to_long(tree.tree_digest()) == digest.treeDigest, f"prediction wrong for {hdr}"
        pending.clear()

    for i, op in enumerate(script):
        kind, req = _request(op)
        hdr, body = core.prep.prepare(SESSIONS[i % 3], i, kind, req, [], 1000 + i)
        assert core.prep.last_digest is not None
        pending.append((hdr, body, core.prep.last_digest))
        if len(pending) >= batch:
            commit_all()
    commit_all()
    return core, log


@settings(max_examples=300, deadline=None)
@given(st.lists(ops, max_size=40), st.integers(min_value=1, max_value=6))
def test_incremental_digest_equals_recount_and_prediction(script: list[tuple], batch: int) -> None:
    core, log = _run(script, batch)
    want = core.tree.tree_digest()
    # replaying the logged txns (digest after each body) rebuilds the same digest
    replay = DataTree()
    for data in log:
        replay.apply(*decode_txn(data))
    assert replay.tree_digest() == want
    # and so does loading the tree node by node, as from a snapshot
    loaded = DataTree()
    for path, node in sorted(core.tree.nodes.items()):
        decode_snapshot_node(loaded, "" if path == "/" else path, node.data, list(node.acl), node.persisted())
    loaded.snapshot_loaded()
    assert loaded.tree_digest() == want == _full(loaded)


def test_node_digest_layout() -> None:
    """CRC32 of path, data, then the 60 stat bytes; the root as ""; /zookeeper/* as 0."""
    tree = DataTree()
    node = tree.create("/n", b"hi", OPEN, 0, -1, 0x100000002, 1700000000000)
    stat = (0x100000002).to_bytes(8, "big") * 3 + (1700000000000).to_bytes(8, "big") * 2 + bytes(12) + bytes(8)
    assert dg.node_digest("/n", node) == zlib.crc32(b"/n" + b"hi" + stat)
    root = tree.get("/")
    assert root is not None
    assert dg.node_digest("/", root) == zlib.crc32(b"" + bytes(8) * 2 + (0x100000002).to_bytes(8, "big")
                                                  + bytes(16) + bytes(4) + (1).to_bytes(4, "big") + bytes(12))
    assert dg.node_digest("/zookeeper/quota", node) == 0
    assert dg.node_digest("/zookeeper", node) != 0
    assert dg.to_long((1 << 64) - 1) == -1 and dg.to_long(5) == 5


def test_disabled_digest_is_zero_and_no_prediction() -> None:
    core = ServerCore(Limits())
    core.tree.set_digest_enabled(False)
    hdr, body = core.prep.prepare(0, 1, Op.create, CreateRequest("/x", b"1", OPEN, 0), [], 5)
    assert core.prep.last_digest is None
    core.commit(hdr, body)
    assert core.tree.tree_digest() == 0
    core.tree.set_digest_enabled(True)
    assert core.tree.tree_digest() == _full(core.tree) != 0


def test_txn_digest_split() -> None:
    hdr = TxnHeader(1, 2, 3, 4, int(Op.closeSession))
    from zkops.server.records import CloseSessionTxn

    plain = encode_txn(hdr, CloseSessionTxn(["/abc"]))
    assert decode_txn_digest(plain)[2] is None
    with_digest = encode_txn(hdr, CloseSessionTxn(["/abc"]), TxnDigest(2, -5))
    h, body, d = decode_txn_digest(with_digest)
    assert body.paths2Delete == ["/abc"] and d is not None and (d.version, d.treeDigest) == (2, -5)
    assert decode_txn(with_digest)[1].paths2Delete == ["/abc"]


def test_values_outside_the_signed_range_hash_as_their_bits() -> None:
    tree = DataTree()
    a = tree.create("/n", b"", OPEN, -1, -1, 7, 8)
    b = tree.create("/m", b"", OPEN, (1 << 64) - 1, -1, 7, 8)
    assert dg.node_digest("/x", a) == dg.node_digest("/x", b)
