"""A setData's fast paths give what the general ones give.

The tree applies a setData in one method (``DataTree._set_data``), the digest predictor takes it
inline in ``advance``, the preparer reads a node's fields at once (``Node.prep_view``) and the
reply is packed with its header (``ClientConnection.send_stat_reply``). Each is checked here,
with generated values, against the general code it stands in for: ``DataTree.set_data`` with
``Node.stat``, ``Predictor._delta``, ``stat9``/``acl``/``num_children``, and ``send_reply`` with
a ``StatResponse`` record.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.ourzk import memory_config
from zkops.server.codes import Err, EventType, Op
from zkops.server.connection import ClientConnection
from zkops.server.datatree import DataTree
from zkops.server.digest import Predictor
from zkops.server.prep import Preparer
from zkops.server.records import ACL, Id, SetDataRequest, SetDataTxn, Stat, StatResponse, TxnHeader
from zkops.server.zkserver import ZooKeeperServer

OPEN = [ACL(31, Id("world", "anyone"))]
READ_ONLY = [ACL(1, Id("world", "anyone"))]
# a leaf, a node with a child (a Dir), a node that had one (a Dir with none now), a system node
PATHS = ["/leaf", "/dir", "/was", "/zookeeper/quota"]
INT_EDGES = [0, 1, 2**31 - 1, 2**31, -(2**31), -1]  # 2**31 is outside Java's int: stored wrapped
LONG_EDGES = [0, 1, 2**63 - 1, 2**63, -1]

datas = st.one_of(st.none(), st.binary(max_size=40))


def _tree(digest: bool = True) -> DataTree:
    t = DataTree()
    t.set_digest_enabled(digest)
    t.create("/leaf", b"x", OPEN, 0, -1, 1, 1000)
    t.create("/dir", None, READ_ONLY, 0, -1, 2, 1001)
    t.create("/dir/c", b"", OPEN, 0x55, -1, 3, 1002)
    t.create("/was", b"abc", OPEN, 0, -1, 4, 1003)
    t.create("/was/c", b"", OPEN, 0, -1, 5, 1004)
    t.delete("/was/c", 6)
    t.last_zxid = 6
    return t


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS), data=datas, version=st.one_of(st.integers(-5, 5), st.sampled_from(INT_EDGES)),
       zxid=st.one_of(st.integers(7, 10**6), st.sampled_from(LONG_EDGES)),
       time=st.one_of(st.integers(0, 2**45), st.sampled_from(LONG_EDGES)), digest=st.booleans())
def test_the_tree_applies_a_set_data_as_set_data_and_stat(path: str, data: bytes | None, version: int, zxid: int,
                                                            time: int, digest: bool) -> None:
    fast, slow = _tree(digest), _tree(digest)
    result = fast.apply(TxnHeader(0x77, 1, zxid, time, Op.setData), SetDataTxn(path, data, version))
    node = slow.set_data(path, data, version, zxid, time)
    assert result.err == 0
    assert result.value == node.stat()
    assert result.events == [(EventType.NodeDataChanged, path, node.acl)]
    assert fast.digest == slow.digest and fast.approx_bytes == slow.approx_bytes
    assert fast.writes.rows() == slow.writes.rows()
    for p in slow.nodes:
        a, b = fast.nodes[p], slow.nodes[p]
        assert type(a) is type(b) and a.head_bytes() == b.head_bytes() and a.data == b.data, p
    assert fast.recompute_digest() == slow.recompute_digest()


def test_a_set_data_of_a_missing_node_is_nonode() -> None:
    t = _tree()
    result = t.apply(TxnHeader(0x77, 1, 9, 1, Op.setData), SetDataTxn("/nope", b"", 1))
    assert result.err == Err.NONODE and t.last_zxid == 9


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS + ["/nope"]), data=datas, version=st.sampled_from(INT_EDGES + [3]),
       zxid=st.integers(7, 10**6), time=st.one_of(st.integers(0, 2**45), st.sampled_from(LONG_EDGES)),
       pending=st.booleans())
def test_the_predictor_takes_a_set_data_as_its_delta_does(path: str, data: bytes | None, version: int, zxid: int,
                                                           time: int, pending: bool) -> None:
    tree = _tree()

    def predictor() -> Predictor:
        p = Predictor(tree.digest_entry, tree.tree_digest, lambda t, b: None)
        if pending:  # an earlier outstanding set of the node: the overlay has it
            base = p.advance(zxid - 1, Op.setData, SetDataTxn(path, b"earlier", 1), time, 0)
            assert base == p.current()
        return p

    fast, slow = predictor(), predictor()
    body = SetDataTxn(path, data, version)
    got = fast.advance(zxid, Op.setData, body, time, 0)
    base = slow.current()
    want = (base + slow._delta(zxid, Op.setData, body, time, 0)) & ((1 << 64) - 1)
    assert got == want
    assert fast.overlay == slow.overlay
    assert [z for z, _p in fast.order] == [z for z, _p in slow.order] + ([zxid] if path == "/nope" else [])


def test_the_preparer_reads_a_node_as_stat9_acl_and_num_children() -> None:
    tree = _tree()
    for path in PATHS:
        node = tree.nodes[path]
        _cz, _mz, _pz, _ct, _mt, v, cv, av, ow = node.stat9()
        assert node.prep_view() == (v, cv, av, node.acl, ow, node.num_children), path


def _prepare(tree: DataTree, path: str, version: int, auth: list[Id]) -> tuple[int, Any]:
    prep = Preparer(tree)
    hdr, body = prep.prepare(0x77, 1, Op.setData, SetDataRequest(path, b"new", version), auth, 5000)
    return hdr.type, body


def test_the_preparer_checks_a_set_data_in_apaches_order() -> None:
    tree = _tree()
    anyone = [Id("ip", "127.0.0.1")]
    assert _prepare(tree, "/leaf", -1, anyone) == (Op.setData, SetDataTxn("/leaf", b"new", 1))
    assert _prepare(tree, "/leaf", 0, anyone) == (Op.setData, SetDataTxn("/leaf", b"new", 1))
    assert _prepare(tree, "/leaf", 1, anyone)[1].err == Err.BADVERSION
    assert _prepare(tree, "/nope", -1, anyone)[1].err == Err.NONODE
    assert _prepare(tree, "/dir", -1, anyone)[1].err == Err.NOAUTH  # READ only
    assert _prepare(tree, "/dir", 5, anyone)[1].err == Err.NOAUTH  # the ACL before the version
    assert _prepare(tree, "/dir", -1, [Id("super", "")]) == (Op.setData, SetDataTxn("/dir", b"new", 1))
    assert _prepare(tree, "/leaf/", -1, anyone)[1].err == Err.BADARGUMENTS
    assert _prepare(tree, "leaf", 5, anyone)[1].err == Err.BADARGUMENTS


def test_pipelined_sets_see_each_other_and_a_pending_delete() -> None:
    tree = _tree()
    prep = Preparer(tree)
    auth = [Id("ip", "127.0.0.1")]
    _h, b1 = prep.prepare(0x77, 1, Op.setData, SetDataRequest("/leaf", b"1", 0), auth, 5000)
    _h, b2 = prep.prepare(0x77, 2, Op.setData, SetDataRequest("/leaf", b"2", 1), auth, 5000)
    h3, b3 = prep.prepare(0x77, 3, Op.setData, SetDataRequest("/leaf", b"3", 1), auth, 5000)
    assert (b1.version, b2.version, h3.type, b3.err) == (1, 2, Op.error, Err.BADVERSION)
    prep.prepare(0x77, 4, Op.delete, _Delete("/leaf"), auth, 5000)
    h5, b5 = prep.prepare(0x77, 5, Op.setData, SetDataRequest("/leaf", b"5", -1), auth, 5000)
    assert (h5.type, b5.err) == (Op.error, Err.NONODE)


class _Delete:
    def __init__(self, path: str) -> None:
        self.path = path
        self.version = -1


def _sink() -> ZooKeeperServer:
    """A real server (a compiled build refuses stand-ins), never started: replies join its batch."""
    loop = asyncio.new_event_loop()
    try:
        server = ZooKeeperServer(memory_config(0), loop=loop)
    finally:
        loop.close()
    server.out_batch = []
    return server


@settings(max_examples=200, deadline=None)
@given(xid=st.integers(-(2**31), 2**31 - 1), zxid=st.integers(-(2**63), 2**63 - 1),
       fields=st.tuples(*([st.integers(-(2**63), 2**63 - 1)] * 4 + [st.integers(-(2**31), 2**31 - 1)] * 3
                          + [st.integers(-(2**63), 2**63 - 1)] + [st.integers(-(2**31), 2**31 - 1)] * 2
                          + [st.integers(-(2**63), 2**63 - 1)])))
def test_a_stat_reply_is_a_stat_response(xid: int, zxid: int, fields: tuple[int, ...]) -> None:
    stat = Stat(*fields)
    fast, slow = ClientConnection(_sink()), ClientConnection(_sink())
    fast.send_stat_reply(xid, zxid, stat)
    slow.send_reply(xid, zxid, 0, StatResponse(stat))
    assert bytes(fast.out) == bytes(slow.out)
    assert struct.unpack_from(">i", fast.out)[0] == len(fast.out) - 4
    assert fast.packets_sent == slow.packets_sent == 1
