"""Every jute record round-trips, and decodes the exact bytes ZooKeeper writes.

Values are generated from each class's FIELDS spec, so a record added to records.py
(or to the storage modules) is covered without touching this file.
"""

from __future__ import annotations

import inspect
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server import records, snapshot, txncodec, txnlog
from zkops.server.jute import JuteError, Record


def _records_of(module) -> list[type[Record]]:
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if issubclass(c, Record) and c is not Record and c.__module__ == module.__name__]


RECORDS = _records_of(records) + _records_of(txncodec) + _records_of(snapshot)

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
# any unicode that UTF-8 can carry (lone surrogates cannot)
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=16)


def strategy_for(ftype) -> st.SearchStrategy:
    """Values of one jute field type, nulls included where jute allows them."""
    if ftype == "int":
        return INT32
    if ftype == "long":
        return INT64
    if ftype == "bool":
        return st.booleans()
    if ftype == "buffer":
        return st.none() | st.binary(max_size=48)
    if ftype == "ustring":
        return st.none() | TEXT
    if isinstance(ftype, list):
        return st.none() | st.lists(strategy_for(ftype[0]), max_size=3)
    return record_strategy(ftype)


def record_strategy(cls) -> st.SearchStrategy:
    return st.builds(cls, *[strategy_for(t) for _, t in cls.FIELDS])


def null_value(ftype):
    """The all-null (or zero) value of a field, for the deterministic edge case."""
    if ftype in ("int", "long"):
        return -1
    if ftype == "bool":
        return False
    if ftype in ("buffer", "ustring") or isinstance(ftype, list):
        return None
    return ftype(*[null_value(t) for _, t in ftype.FIELDS])


def test_the_generic_list_covers_every_record_class():
    names = {c.__name__ for c in RECORDS}
    assert {"ConnectRequest", "ConnectResponse", "RequestHeader", "ReplyHeader", "Stat", "StatPersisted",
            "CreateRequest", "SetWatches2", "MultiHeader", "TxnHeader", "CreateTxn", "CreateContainerTxn",
            "CreateTTLTxn", "DeleteTxn", "SetDataTxn", "CheckVersionTxn", "SetACLTxn", "CreateSessionTxn",
            "CloseSessionTxn", "ErrorTxn", "Txn", "MultiTxn", "FileHeader", "QuorumPacket", "LearnerInfo",
            "WhoAmIResponse", "TxnDigest", "CreateTxnV0", "DataNode"} <= names
    assert len(RECORDS) == len(set(RECORDS)) >= 50


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_record_round_trips_and_rejects_damage(cls, data):
    rec = data.draw(record_strategy(cls))
    raw = rec.to_bytes()
    back = cls.from_bytes(raw)
    assert back == rec and back.to_bytes() == raw
    # jute is self-delimiting: no proper prefix is a record, and extra bytes are refused
    cut = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    if raw:
        with pytest.raises(JuteError):
            cls.from_bytes(raw[:cut])
    with pytest.raises(JuteError):
        cls.from_bytes(raw + b"\0")
    # read() at an offset inside a larger buffer returns where the record ends
    rec2, end = cls.read(b"\xaa" * 3 + raw + b"\xbb", 3)
    assert rec2 == rec and end == 3 + len(raw)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_every_record_with_all_fields_null_or_minus_one(cls):
    rec = cls(*[null_value(t) for _, t in cls.FIELDS])
    raw = rec.to_bytes()
    assert cls.from_bytes(raw) == rec
    for cut in range(len(raw)):
        with pytest.raises(JuteError):
            cls.from_bytes(raw[:cut])


def _i(v: int) -> bytes:
    return struct.pack(">i", v)


def _q(v: int) -> bytes:
    return struct.pack(">q", v)


def _s(text: str) -> bytes:
    data = text.encode()
    return _i(len(data)) + data


def test_create_request_exact_bytes():
    # what kazoo and the Java client send for create("/a", b"hi", OPEN_ACL_UNSAFE, EPHEMERAL)
    raw = _s("/a") + _i(2) + b"hi" + _i(1) + _i(31) + _s("world") + _s("anyone") + _i(1)
    rec = records.CreateRequest.from_bytes(raw)
    assert rec.path == "/a" and rec.data == b"hi" and rec.flags == 1
    assert rec.acl == [records.ACL(31, records.Id("world", "anyone"))]
    assert rec.to_bytes() == raw


def test_txn_header_and_create_txn_exact_bytes():
    # TxnHeader{clientId, cxid, zxid, time, type} + CreateTxn{path, data, acl, ephemeral, parentCVersion}
    raw_hdr = bytes.fromhex("0000000000000100" "00000002" "0000000100000005" "0000018bcfe56802" "00000001")
    hdr = records.TxnHeader.from_bytes(raw_hdr)
    assert (hdr.clientId, hdr.cxid, hdr.zxid, hdr.time, hdr.type) == (0x100, 2, 0x100000005, 1700000000002, 1)
    raw_body = _s("/a") + _i(2) + b"hi" + _i(1) + _i(31) + _s("world") + _s("anyone") + b"\x01" + _i(-1)
    body = records.CreateTxn.from_bytes(raw_body)
    assert body == records.CreateTxn("/a", b"hi", [records.ACL(31, records.Id("world", "anyone"))], True, -1)


def test_file_headers_spell_zklg_and_zksn():
    assert records.FileHeader(txnlog.LOG_MAGIC, 2, 0).to_bytes() == b"ZKLG" + _i(2) + _q(0)
    assert records.FileHeader(snapshot.SNAP_MAGIC, 2, -1).to_bytes() == b"ZKSN" + _i(2) + b"\xff" * 8


def test_reply_header_negative_error_and_stat_layout():
    assert records.ReplyHeader.from_bytes(_i(-2) + _q(-1) + _i(-101)) == records.ReplyHeader(-2, -1, -101)
    s = records.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    raw = s.to_bytes()
    assert len(raw) == 68
    assert struct.unpack(">qqqqiiiqiiq", raw) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    assert len(records.StatPersisted(*range(9)).to_bytes()) == 60


def test_close_session_txn_paths_and_unicode_bytes():
    raw = _i(2) + _s("/é") + _s("/😀")
    assert records.CloseSessionTxn.from_bytes(raw) == records.CloseSessionTxn(["/é", "/😀"])
    assert raw[4:8] == _i(3)  # UTF-8 length in bytes, not characters


def test_null_buffer_string_and_vector_are_minus_one():
    raw = records.CreateRequest(None, None, None, 0).to_bytes()
    assert raw == b"\xff\xff\xff\xff" * 3 + b"\0\0\0\0"
    assert records.CreateRequest.from_bytes(raw) == records.CreateRequest(None, None, None, 0)
    assert records.CreateRequest.from_bytes(_i(0) + _i(0) + _i(0) + _i(0)) == records.CreateRequest("", b"", [], 0)


def test_a_length_beyond_the_frame_is_rejected_without_allocating():
    with pytest.raises(JuteError):
        records.GetChildrenResponse.from_bytes(_i(0x7FFFFFFF))
    with pytest.raises(JuteError):
        records.SetDataTxn.from_bytes(_s("/a") + _i(0x7FFFFFFF) + b"x")
    with pytest.raises(JuteError):
        records.DeleteTxn.from_bytes(_i(10) + b"/a")


def test_invalid_utf8_becomes_replacement_characters_as_in_java():
    # Java's new String(bytes, UTF_8) never fails: a path of such bytes is then refused as a
    # path with a bad character, not as a record that does not decode
    assert records.DeleteTxn.from_bytes(_i(2) + b"\xff\xfe").path == "\ufffd\ufffd"


def test_negative_lengths_as_apaches_binary_input_archive():
    # -1 is null; another negative string or buffer length is an error; a vector with a
    # negative count other than -1 is read as empty
    with pytest.raises(JuteError):
        records.DeleteTxn.from_bytes(_i(-2))
    with pytest.raises(JuteError):
        records.SetDataTxn.from_bytes(_s("/a") + _i(-1000) + _i(0))
    assert records.GetChildrenResponse.from_bytes(_i(-5)).children == []
    assert records.GetChildrenResponse.from_bytes(_i(-1)).children is None


def test_trailing_bytes_are_refused_by_from_bytes_only():
    raw = records.ErrorTxn(-101).to_bytes()
    with pytest.raises(JuteError, match="trailing"):
        records.ErrorTxn.from_bytes(raw + b"x")
    assert records.ErrorTxn.read(raw + b"x") == (records.ErrorTxn(-101), 4)


def test_constants_give_their_names_back_for_logs():
    from zkops.server.codes import EventType, KeeperState, Op, name_of
    from zkops.server.connection import _op_name

    assert name_of(Op, 1) == "create" and name_of(Op, -11) == "closeSession"
    assert name_of(EventType, 4) == "NodeChildrenChanged"
    assert name_of(KeeperState, -112) == "Expired"
    assert name_of(Op, 12345) is None
    assert _op_name(14) == "multi" and _op_name(999) == "op 999"


def _declared_type(t: object) -> str:
    """The annotation records.py must carry for a field of jute type ``t``: a buffer, string
    or vector can be null on the wire (length -1), so it is Optional; int, long, bool and a
    nested record never are."""
    if isinstance(t, list):
        return f"list[{_declared_type(t[0]).removesuffix(' | None')}] | None"
    if isinstance(t, type):
        return t.__name__
    return {"int": "int", "long": "int", "bool": "bool", "buffer": "bytes | None",
            "ustring": "str | None"}[str(t)]


def test_every_record_declares_its_fields_types_for_the_type_checker():
    """records.py annotates each field (what mypy reads, and what a mypyc-compiled reader
    checks at run time); they must say what FIELDS encodes, None included where the codec
    reads a null (a compiled server that believed a field is never None dropped the
    connection of a create with null data)."""
    classes = [c for _, c in inspect.getmembers(records, inspect.isclass)
               if issubclass(c, Record) and c.__module__ == records.__name__]
    assert len(classes) > 40
    for cls in classes:
        declared = dict(cls.__dict__.get("__annotations__", {}))
        assert declared == {n: _declared_type(t) for n, t in cls.FIELDS}, cls.__name__


@pytest.mark.parametrize("cls", [c for c in RECORDS if c.__module__ == records.__name__],
                         ids=lambda c: c.__name__)
def test_every_field_the_codec_reads_as_null_is_declared_optional(cls):
    """From the codec's side: decode each field as null (-1) and check its annotation
    admits None, so no nullable field can be declared without it."""
    declared = cls.__dict__.get("__annotations__", {})
    rec = cls.from_bytes(cls(*[null_value(t) for _, t in cls.FIELDS]).to_bytes())
    for name, _ in cls.FIELDS:
        if getattr(rec, name) is None:
            assert declared[name].endswith(" | None"), f"{cls.__name__}.{name} is read as None"
        else:
            assert "None" not in declared[name], f"{cls.__name__}.{name} is never None"
