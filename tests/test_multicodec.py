"""A multi's ops, read by one loop in both forms: a client's request and a MultiTxn.

The request form as Apache's MultiOperationRecord writes and reads it: a MultiHeader(type,
false, -1) before each op's request record, a MultiHeader(-1, true, -1) at the end.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_jute import record_strategy
from zkops.server.codes import Op
from zkops.server.jute import JuteError, Record
from zkops.server.multicodec import decode_request_ops, decode_txn_ops, table_reader
from zkops.server.records import (
    ACL,
    CheckVersionRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    DeleteTxn,
    Id,
    MultiHeader,
    MultiTxn,
    PathRequest,
    SetDataRequest,
    Txn,
)
from zkops.server.wire import MULTI_OP_TYPES, decode_multi

OPEN = [ACL(31, Id("world", "anyone"))]


def request(ops: list[tuple[int, Record]], prefix: bytes = b"") -> bytes:
    out = bytearray(prefix)
    for op, rec in ops:
        MultiHeader(op, False, -1).write(out)
        rec.write(out)
    MultiHeader(-1, True, -1).write(out)
    return bytes(out)


# ---------------------------------------------------------------- the request form
def test_an_empty_multi_has_no_ops():
    assert decode_multi(request([]), 0) == [] == decode_multi(request([]), 0, read=True)


def test_write_ops_come_back_in_order_at_an_offset():
    ops = [(Op.create, CreateRequest("/a", b"x", OPEN, 0)), (Op.setData, SetDataRequest("/a", b"y", 0)),
           (Op.check, CheckVersionRequest("/a", 1)), (Op.delete, DeleteRequest("/a", -1)),
           (Op.createTTL, CreateTTLRequest("/t", b"", OPEN, 5, 1000))]
    assert decode_multi(request(ops, b"\0" * 8), 8) == ops


def test_creates_become_the_op_their_flags_name():
    got = decode_multi(request([(Op.create2, CreateRequest("/a", b"", OPEN, 0)),
                                (Op.create, CreateRequest("/c", b"", OPEN, 4)),
                                (Op.createContainer, CreateRequest("/d", b"", OPEN, 1)),
                                (Op.createTTL, CreateTTLRequest("/t", b"", OPEN, 0, 1000))]), 0)
    assert got == [(Op.create, CreateRequest("/a", b"", OPEN, 0)), (Op.createContainer, CreateRequest("/c", b"", OPEN, 4)),
                   (Op.create, CreateRequest("/d", b"", OPEN, 1)), (Op.create, CreateRequest("/t", b"", OPEN, 0))]


def test_read_ops_lose_their_watch_and_only_a_multi_read_takes_them():
    buf = request([(Op.getData, PathRequest("/a", True)), (Op.getChildren, PathRequest("/", True))])
    assert decode_multi(buf, 0, read=True) == [(Op.getData, PathRequest("/a", False)),
                                               (Op.getChildren, PathRequest("/", False))]
    with pytest.raises(JuteError, match="read ops in a multi"):
        decode_multi(buf, 0)


def test_what_apache_cannot_read_is_a_jute_error():
    with pytest.raises(JuteError, match="mixed"):
        decode_multi(request([(Op.getData, PathRequest("/a", False)), (Op.delete, DeleteRequest("/a", -1))]), 0, True)
    with pytest.raises(JuteError, match="invalid op type"):
        decode_multi(request([(Op.exists, PathRequest("/a", False))]), 0)
    with pytest.raises(JuteError):  # no end header
        decode_multi(request([(Op.delete, DeleteRequest("/a", -1))])[:-9], 0)


WRITE_OPS = st.one_of(
    st.builds(lambda r: (Op.create, CreateRequest(r.path, r.data, r.acl, r.flags % 4)), record_strategy(CreateRequest)),
    st.builds(lambda r: (Op.createTTL, CreateTTLRequest(r.path, r.data, r.acl, 5 + r.flags % 2, r.ttl)),
              record_strategy(CreateTTLRequest)),
    st.tuples(st.just(Op.delete), record_strategy(DeleteRequest)),
    st.tuples(st.just(Op.setData), record_strategy(SetDataRequest)),
    st.tuples(st.just(Op.check), record_strategy(CheckVersionRequest)),
)
READ_OPS = st.tuples(st.sampled_from([Op.getData, Op.getChildren]),
                     st.builds(PathRequest, st.none() | st.text(max_size=8), st.just(False)))


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(WRITE_OPS, max_size=8), prefix=st.binary(max_size=8))
def test_generated_write_multis_round_trip(ops, prefix):
    assert decode_multi(request(ops, prefix), len(prefix)) == ops


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(READ_OPS, min_size=1, max_size=8))
def test_generated_multi_reads_round_trip(ops):
    assert decode_multi(request(ops), 0, read=True) == ops


# ---------------------------------------------------------------- the one loop, both framings
def test_both_framings_read_the_same_ops_through_the_same_reader():
    read = table_reader(MULTI_OP_TYPES)
    ops = [(Op.delete, DeleteRequest("/a", 3)), (Op.check, CheckVersionRequest("/b", 1))]
    as_txn = MultiTxn([Txn(op, rec.to_bytes()) for op, rec in ops])
    assert decode_request_ops(request(ops), 0, read) == ops == decode_txn_ops(as_txn, read)


def test_a_txn_op_must_fill_its_data():
    read = table_reader({Op.delete: DeleteTxn})
    with pytest.raises(JuteError, match="1 trailing bytes"):
        decode_txn_ops(MultiTxn([Txn(Op.delete, DeleteTxn("/a").to_bytes() + b"!")]), read)
    with pytest.raises(JuteError, match="invalid op type 5"):
        decode_txn_ops(MultiTxn([Txn(5, b"")]), read)
