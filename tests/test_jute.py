"""Every jute record round-trips, and decodes the exact bytes ZooKeeper puts on the wire."""

from __future__ import annotations

import inspect
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server import records
from zkops.server.jute import JuteError, Record

RECORDS = [c for _, c in inspect.getmembers(records, inspect.isclass)
           if issubclass(c, Record) and c is not Record and c.__module__ == records.__name__]

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


def strategy_for(ftype) -> st.SearchStrategy:
    if ftype == "int":
        return INT32
    if ftype == "long":
        return INT64
    if ftype == "bool":
        return st.booleans()
    if ftype == "buffer":
        return st.none() | st.binary(max_size=64)
    if ftype == "ustring":
        return st.none() | st.text(max_size=20)
    if isinstance(ftype, list):
        return st.none() | st.lists(strategy_for(ftype[0]), max_size=4)
    return record_strategy(ftype)


def record_strategy(cls) -> st.SearchStrategy:
    return st.builds(cls, *[strategy_for(t) for _, t in cls.FIELDS])


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_record_round_trips(cls, data):
    rec = data.draw(record_strategy(cls))
    raw = rec.to_bytes()
    assert cls.from_bytes(raw) == rec
    if raw:
        with pytest.raises(JuteError):
            cls.from_bytes(raw[:-1])
        with pytest.raises(JuteError):
            cls.from_bytes(raw + b"\0")


def test_records_cover_the_client_protocol():
    names = {c.__name__ for c in RECORDS}
    assert {"ConnectRequest", "ConnectResponse", "RequestHeader", "ReplyHeader", "Stat", "CreateRequest",
            "SetWatches2", "MultiHeader", "TxnHeader", "CreateTTLTxn", "WhoAmIResponse"} <= names


def test_decodes_the_exact_bytes_of_a_create_request():
    # what kazoo and the Java client send for create("/a", b"hi", OPEN_ACL_UNSAFE, EPHEMERAL)
    raw = (struct.pack(">i", 2) + b"/a" + struct.pack(">i", 2) + b"hi" + struct.pack(">i", 1)
           + struct.pack(">i", 31) + struct.pack(">i", 5) + b"world" + struct.pack(">i", 6) + b"anyone"
           + struct.pack(">i", 1))
    rec = records.CreateRequest.from_bytes(raw)
    assert rec.path == "/a" and rec.data == b"hi" and rec.flags == 1
    assert rec.acl == [records.ACL(31, records.Id("world", "anyone"))]
    assert rec.to_bytes() == raw


def test_null_buffer_string_and_vector_are_minus_one():
    raw = records.CreateRequest(None, None, None, 0).to_bytes()
    assert raw == b"\xff\xff\xff\xff" * 3 + b"\0\0\0\0"
    assert records.CreateRequest.from_bytes(raw) == records.CreateRequest(None, None, None, 0)


def test_a_vector_length_beyond_the_frame_is_rejected_without_allocating():
    raw = struct.pack(">i", 0x7FFFFFFF)
    with pytest.raises(JuteError):
        records.GetChildrenResponse.from_bytes(raw)


def test_stat_is_68_bytes_in_field_order():
    s = records.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    raw = s.to_bytes()
    assert len(raw) == 68
    assert struct.unpack(">qqqqiiiqiiq", raw) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
