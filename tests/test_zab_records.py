"""ZAB's messages and effects, and the outputs that carry them, are plain slotted records: equal
and hashed by their fields as the frozen dataclasses they replaced, and shown the same way
(traces and log lines print them)."""

from __future__ import annotations

import copy
import pickle

import pytest

from zkops.server import quorumwire as qw
from zkops.server.quorumpeer import PeerOutput
from zkops.server.zab import (
    MESSAGES,
    Abandon,
    Ack,
    AckEpoch,
    Append,
    Commit,
    CommitTxn,
    Envelope,
    Established,
    FollowerInfo,
    Inform,
    InstallSnapshot,
    LeaderInfo,
    MembershipChanged,
    NewLeader,
    Ping,
    Proposal,
    Role,
    SaveEpochs,
    SyncMode,
    SyncStart,
    Truncate,
    UpToDate,
    ZabOutput,
)

SAMPLES = [
    FollowerInfo(3, 0x300000002, False), LeaderInfo(4), AckEpoch(3, 0x300000002),
    SyncStart(SyncMode.SNAP, 7, b"snap"), SyncStart(SyncMode.DIFF, 7), Proposal(0x400000001, b"txn"),
    Commit(0x400000001), Inform(0x400000001, b"txn"), NewLeader(4, 0x300000002), Ack(0x400000001),
    UpToDate(0x400000001), Ping(0x400000001), Envelope(2, Ack(5)),
    SaveEpochs(4, 3), Truncate(9), InstallSnapshot(9, b"data"), Append(9, b"p"), CommitTxn(9, b"p"),
    Established(Role.LEADER, 4), Abandon("why"), MembershipChanged(9, frozenset({1, 2}), frozenset({3}), b"cfg"),
]


@pytest.mark.parametrize("rec", SAMPLES, ids=lambda r: type(r).__name__)
def test_a_record_is_equal_and_hashed_by_its_fields_and_shown_as_a_dataclass(rec: object) -> None:
    fields = type(rec).__slots__  # type: ignore[attr-defined]
    values = [getattr(rec, f) for f in fields]
    twin = type(rec)(*values)
    assert twin == rec and hash(twin) == hash(rec) and hash(rec) == hash(tuple(values))
    assert repr(rec) == f"{type(rec).__name__}(" + ", ".join(f"{f}={v!r}" for f, v in zip(fields, values, strict=True)) + ")"
    assert copy.deepcopy(rec) == rec and pickle.loads(pickle.dumps(rec)) == rec
    assert not hasattr(rec, "__dict__")  # slotted: no stray attributes


def test_records_of_different_kinds_with_the_same_fields_differ() -> None:
    assert Ack(5) != Commit(5) and Ping(5) != UpToDate(5) and Proposal(5, b"x") != Inform(5, b"x")
    assert Append(5, b"x") != CommitTxn(5, b"x") and Ack(5) != (5,) and Ack(5) != 5
    assert Ack(5) != Ack(6) and Envelope(1, Ack(5)) != Envelope(2, Ack(5))
    assert len({Ack(5), Commit(5), Ack(5)}) == 2
    assert SyncStart(SyncMode.DIFF, 7) == SyncStart(SyncMode.DIFF, 7, None)
    assert set(MESSAGES) == {type(m) for m in SAMPLES[:13]}


def test_outputs_compare_by_their_lists_and_show_them() -> None:
    assert ZabOutput() == ZabOutput([], []) and ZabOutput([(2, Envelope(1, Ack(5)))]) != ZabOutput()
    out = ZabOutput()
    out.extend(ZabOutput([(2, Envelope(1, Ack(5)))], [Append(5, b"p")]))
    assert out.messages == [(2, Envelope(1, Ack(5)))] and out.effects == [Append(5, b"p")]
    assert repr(out) == "ZabOutput(messages=[(2, Envelope(session=1, msg=Ack(zxid=5)))], effects=[Append(zxid=5, payload=b'p')])"
    p = PeerOutput(zab=[(1, Envelope(1, Ack(5)))])
    assert p == PeerOutput([], [(1, Envelope(1, Ack(5)))], [], []) and p != PeerOutput()
    assert repr(PeerOutput()) == "PeerOutput(election=[], zab=[], effects=[], events=[])"
    with pytest.raises(TypeError):
        hash(p)


def test_a_forwarded_request_reads_back_as_written() -> None:
    r = qw.ForwardedRequest(0x1234, 7, 5, b"body")
    back = qw.decode_request(qw.encode_request(r))
    assert back == r and type(back) is qw.ForwardedRequest and back.body == b"body"
    assert repr(back) == "ForwardedRequest(session=4660, cxid=7, op=5, body=b'body')"
