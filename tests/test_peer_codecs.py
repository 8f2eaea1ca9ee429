"""The election and quorum port codecs against bytes a real Apache ZooKeeper 3.8.0 sent.

``tests/data/apache-3.8.0-peers.json`` was written by ``python -m tests.support.apachecapture``
(two Debian Apache 3.8.0 servers, this capture script as their third member): the initial
messages they dial with, their notifications, and every quorum packet of a SNAP sync and the
broadcast after it, with the SNAP stream. Each must decode and encode back to the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zkops.server import electionwire as ew
from zkops.server import quorumwire as qw
from zkops.server import snapshot as snapmod
from zkops.server.records import ACL, Id, StatPersisted
from zkops.server.txncodec import decode_txn, encode_txn

CAPTURE = json.loads((Path(__file__).parent / "data" / "apache-3.8.0-peers.json").read_text())

longs = st.integers(-(1 << 63), (1 << 63) - 1)
ints = st.integers(-(1 << 31), (1 << 31) - 1)
text = st.text(max_size=40)


# ---------------------------------------------------------------- captured frames
def test_captured_initial_messages() -> None:
    assert CAPTURE["initial"]
    for hexed in CAPTURE["initial"]:
        raw = bytes.fromhex(hexed)
        msg = ew.decode_initial(raw)
        assert msg.version == ew.PROTOCOL_V1 and msg.sid in (1, 2)
        host, port = ew.split_address(msg.addresses[0])
        assert host == "127.0.0.1" and port > 0
        assert ew.encode_initial(msg) == raw


def test_captured_notifications() -> None:
    assert CAPTURE["notifications"]
    for hexed in CAPTURE["notifications"]:
        raw = bytes.fromhex(hexed)
        n = ew.decode_notification(raw)
        assert n.version == 2 and n.config is not None and n.config.startswith(b"server.1=")
        assert ew.encode_notification(n) == raw
        core = ew.to_core(n.leader, n, False)
        assert ew.encode_notification(ew.from_core(core)) == raw


def test_captured_packets_and_snap_stream() -> None:
    kinds = set()
    for name, hexed in CAPTURE["packets"]:
        raw = bytes.fromhex(hexed)
        p = qw.decode_packet(raw)
        assert qw.PacketType(p.type).name == name
        assert qw.encode_packet(p) == raw
        kinds.add(name)
        if name == "LEADERINFO":
            assert qw.decode_int(p.data) == qw.PROTOCOL_VERSION
        if name in ("PROPOSAL",):
            hdr, body = decode_txn(p.data)
            assert hdr.zxid == p.zxid
    assert {"LEADERINFO", "SNAP", "NEWLEADER", "UPTODATE", "PROPOSAL", "COMMIT", "PING"} <= kinds
    stream = bytes.fromhex(CAPTURE["snap_stream"])
    body, off = qw.parse_all(qw.read_snap_stream(), stream)
    assert off == len(stream)
    # as a snapshot file, zkops reads it, and the file gives back the same stream
    sessions, nodes = snapmod.parse(qw.snapshot_file_of_stream(body))
    assert nodes[0][0] == "" and any(p == "/zookeeper" for p, *_ in nodes)
    assert qw.stream_of_snapshot_file(qw.snapshot_file_of_stream(body)) == stream


def test_captured_proposals_carry_apaches_digest() -> None:
    """Apache 3.8 appends a TxnDigest (int version, long digest) after the txn."""
    for name, hexed in CAPTURE["packets"]:
        if name != "PROPOSAL":
            continue
        data = qw.decode_packet(bytes.fromhex(hexed)).data
        assert data is not None
        hdr, body = decode_txn(data)
        plain = encode_txn(hdr, body)
        assert data.startswith(plain) and len(data) - len(plain) in (0, 12)


# ---------------------------------------------------------------- round trips
@given(st.integers(0, 3), longs, longs, longs, longs, st.binary(max_size=300))
def test_notification_round_trip(state: int, leader: int, zxid: int, rnd: int, epoch: int, config: bytes) -> None:
    n = ew.WireNotification(state, leader, zxid, rnd, epoch, 2, config)
    raw = ew.encode_notification(n)
    assert len(raw) == 44 + len(config)
    assert ew.decode_notification(raw) == n
    assert ew.encode_notification(ew.decode_notification(raw)) == raw


@given(longs, st.lists(st.tuples(st.from_regex(r"[a-z0-9.]{1,20}", fullmatch=True), st.integers(1, 65535)),
                       min_size=1, max_size=3))
def test_initial_round_trip(sid: int, addrs: list[tuple[str, int]]) -> None:
    msg = ew.InitialMessage(sid, tuple(f"{h}:{p}" for h, p in addrs),
                            ew.PROTOCOL_V2 if len(addrs) > 1 else ew.PROTOCOL_V1)
    assert ew.decode_initial(ew.encode_initial(msg)) == msg


@given(st.sampled_from(list(qw.PacketType)), longs, st.none() | st.binary(max_size=200),
       st.none() | st.lists(st.tuples(text, text), max_size=3).map(tuple))
def test_packet_round_trip(ptype: qw.PacketType, zxid: int, data: bytes | None, auth: tuple | None) -> None:
    p = qw.QuorumPacket(int(ptype), zxid, data, auth)
    raw = qw.encode_packet(p)
    assert qw.decode_packet(raw) == p
    # packets follow each other with no outer length: two in a row split where they should
    both = raw + raw
    first, off = qw.parse_all(qw.read_packet(), both)
    assert first == p and off == len(raw)


@given(longs, ints, longs)
def test_learner_info_round_trip(sid: int, version: int, config: int) -> None:
    li = qw.LearnerInfo(sid, version, config)
    raw = qw.encode_learner_info(li)
    assert len(raw) == 20 and qw.decode_learner_info(raw) == li


@given(st.lists(st.tuples(longs, ints), max_size=20))
def test_ping_sessions_round_trip(sessions: list[tuple[int, int]]) -> None:
    assert qw.decode_sessions(qw.encode_sessions(sessions)) == sessions


@given(longs, ints, ints, st.binary(max_size=100))
def test_request_round_trip(session: int, cxid: int, op: int, body: bytes) -> None:
    r = qw.ForwardedRequest(session, cxid, op, body)
    assert qw.decode_request(qw.encode_request(r)) == r


@given(st.dictionaries(longs, ints, max_size=5),
       st.lists(st.tuples(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.binary(max_size=30)),
                max_size=8, unique_by=lambda t: t[0]))
def test_snap_stream_round_trip(sessions: dict[int, int], children: list[tuple[str, bytes]]) -> None:
    acl = [ACL(31, Id("world", "anyone"))]
    stat = StatPersisted(1, 2, 3, 4, 5, 6, 7, 0, 8)
    nodes = [("", b"", acl, stat), ("/zookeeper", b"", acl, stat)]
    nodes += [(f"/{name}", data, acl, stat) for name, data in children if name != "zookeeper"]
    file = snapmod.serialize(9, sessions, nodes)
    stream = qw.stream_of_snapshot_file(file)
    body, off = qw.parse_all(qw.read_snap_stream(), stream)
    assert off == len(stream)
    assert snapmod.parse(qw.snapshot_file_of_stream(body)) == snapmod.parse(file)


# ---------------------------------------------------------------- refusals
@pytest.mark.parametrize("raw", [
    b"", b"\x00" * 27, b"\x00\x00\x00\x07" + b"\x00" * 40,  # too short; unknown state
    b"\x00" * 36 + b"\x00\x00\x00\x02" + b"\x00\x00\x01\x00",  # config longer than the frame
    b"\x00" * 36 + b"\x00\x00\x00\x02" + b"\xff\xff\xff\xff",  # negative config length
])
def test_bad_notifications_are_refused(raw: bytes) -> None:
    with pytest.raises(ew.ElectionWireError):
        ew.decode_notification(raw)


@pytest.mark.parametrize("raw", [
    b"\x80" + b"\x00" * 7,  # a version Apache does not speak
    bytes.fromhex("ffffffffffff0000") + b"\x00" * 8 + b"\x00\x00\x10\x00",  # address too long
    bytes.fromhex("ffffffffffff0000") + b"\x00" * 8 + b"\x00\x00\x00\x05" + b"nocol",
    bytes.fromhex("ffffffffffff0000") + b"\x00" * 8 + b"\x00\x00\x00\x06" + b"h:port",
])
def test_bad_initial_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(ew.ElectionWireError):
        ew.decode_initial(raw)


@pytest.mark.parametrize("raw", [
    b"\x00\x00\x00\x63" + b"\x00" * 16,  # unknown type
    b"\x00\x00\x00\x02" + b"\x00" * 8 + b"\x7f\xff\xff\xff",  # oversized data
    b"\x00\x00\x00\x02" + b"\x00" * 8 + b"\xff\xff\xff\xff" + b"\x00\x10\x00\x00",  # too many ids
    b"\x00\x00\x00\x02" + b"\x00" * 8 + b"\x00\x00\x00\x05ab",  # cut short
])
def test_bad_packets_are_refused(raw: bytes) -> None:
    with pytest.raises(qw.QuorumWireError):
        qw.decode_packet(raw)


def _read_packet_outcome(raw: bytes) -> object:
    """What read_packet makes of ``raw``: the packet and its end, "short", or the error text."""
    try:
        return qw.parse_all(qw.read_packet(), raw)
    except qw.QuorumWireError as exc:
        return "short" if "bytes end inside" in str(exc) else f"error: {exc}"


def _take_packet_outcome(raw: bytes) -> object:
    try:
        p, off = qw.take_packet(raw)
    except qw.QuorumWireError as exc:
        return f"error: {exc}"
    return "short" if p is None else (p, off)


@given(st.sampled_from(list(qw.PacketType)), longs, st.none() | st.binary(max_size=40),
       st.none() | st.lists(st.tuples(text, text), max_size=3).map(tuple), st.binary(max_size=8))
def test_take_packet_reads_as_read_packet(ptype: qw.PacketType, zxid: int, data: bytes | None, auth: tuple | None,
                                          after: bytes) -> None:
    """The quorum port's one-call framing gives what the generator reader gives, for the whole
    packet, for every prefix of it (more bytes needed, nothing taken) and with bytes after it."""
    raw = qw.encode_packet(qw.QuorumPacket(int(ptype), zxid, data, auth))
    for cut in range(len(raw)):
        assert qw.take_packet(raw[:cut]) == (None, 0)
    assert _take_packet_outcome(raw + after) == _read_packet_outcome(raw + after) == (
        qw.QuorumPacket(int(ptype), zxid, data, auth), len(raw))
    # at an offset inside a larger buffer
    p, off = qw.take_packet(after + raw, len(after))
    assert p == qw.QuorumPacket(int(ptype), zxid, data, auth) and off == len(after) + len(raw)


@given(st.binary(max_size=64))
def test_take_packet_refuses_what_read_packet_refuses(raw: bytes) -> None:
    assert _take_packet_outcome(raw) == _read_packet_outcome(raw)


@pytest.mark.parametrize("raw", [
    b"\x00\x00\x00\x63" + b"\x00" * 12,  # unknown type
    b"\x00\x00\x00\x02" + b"\x00" * 8 + b"\x7f\xff\xff\xff",  # oversized data
    b"\x00\x00\x00\x02" + b"\x00" * 8 + b"\xff\xff\xff\xff" + b"\x00\x10\x00\x00",  # too many ids
    b"\x00\x00\x00\x01" + b"\x00" * 8 + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x01" + b"\x00\x00\x00\x01\xff"
    + b"\x00\x00\x00\x00",  # an id that is not UTF-8
    b"\x00\x00\x00\x01" + b"\x00" * 8 + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x01" + b"\x7f\xff\xff\xff",  # long id
])
def test_take_packet_refuses_bad_packets(raw: bytes) -> None:
    with pytest.raises(qw.QuorumWireError):
        qw.take_packet(raw)
    assert _read_packet_outcome(raw).startswith("error")  # type: ignore[union-attr]


def test_take_packet_reads_captured_packets() -> None:
    raw = b"".join(bytes.fromhex(h) for _, h in CAPTURE["packets"])
    off, n = 0, 0
    while off < len(raw):
        p, off = qw.take_packet(raw, off)
        assert p is not None and qw.PacketType(p.type).name == CAPTURE["packets"][n][0]
        n += 1
    assert n == len(CAPTURE["packets"])


@given(st.sampled_from(list(qw.PacketType)), longs, st.binary(max_size=40), st.binary(max_size=8))
def test_one_step_encoders_write_what_encode_packet_writes(ptype: qw.PacketType, zxid: int, data: bytes,
                                                           before: bytes) -> None:
    """The broadcast phase's encoders (ACK, COMMIT, PING; PROPOSAL, INFORM) are byte for byte
    encode_packet, and peek_bare sees a packet without data or authinfo and nothing else."""
    bare = qw.encode_packet(qw.QuorumPacket(int(ptype), zxid, None, None))
    assert qw.encode_bare(int(ptype), zxid) == bare
    assert qw.encode_with_data(int(ptype), zxid, data) == qw.encode_packet(qw.QuorumPacket(int(ptype), zxid, data,
                                                                                           None))
    assert qw.peek_bare(before + bare, len(before)) == (int(ptype), zxid)
    assert qw.peek_bare(before + bare[:-1], len(before)) is None  # not all of it yet
    assert qw.peek_bare(before + qw.encode_with_data(int(ptype), zxid, data), len(before)) is None
    with_auth = qw.encode_packet(qw.QuorumPacket(int(ptype), zxid, None, ()))
    assert qw.peek_bare(with_auth, 0) is None
