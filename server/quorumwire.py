"""Bytes of Apache ZooKeeper 3.8's quorum port (Learner, LearnerHandler, Leader).

Pure codec, no I/O. Packets are the jute record QuorumPacket {int type, long zxid,
buffer data, vector<Id> authinfo}, one after another with no outer length; -1 stands
for null data or authinfo. After a SNAP packet the leader streams its tree (sessions,
ACL cache, nodes, the "/" end marker) and the string "BenWasHere".

Readers here are generators: each ``yield n`` asks the driver for exactly n more bytes
(sent back with ``send``) and the generator's return value is the decoded object, so the
same code serves an asyncio stream and a bytes buffer (``parse_all``).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Generator
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, TypeVar

_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_HEAD = struct.Struct(">iqi")  # type, zxid, data length
_BARE = struct.Struct(">iqii")  # type, zxid, null data (-1), null authinfo (-1)
_NO_AUTH = _I.pack(-1)

PROTOCOL_VERSION = 0x10000  # LearnerInfo / LEADERINFO: this is a ZAB 1.0 server
MAX_BUFFER = 2 * 0xFFFFF  # jute.maxbuffer plus its extra size: Apache's default read limit
MAX_AUTH = 1024  # ids in one packet's authinfo (a client's auth list)
MAX_SESSIONS = 10_000_000
SNAP_SIGNATURE = "BenWasHere"
SNAP_MAGIC = 0x5A4B534E
SNAP_FILE_VERSION = 2
_SEAL_TRAILER = b"\x00\x00\x00\x01/"


class QuorumWireError(ValueError):
    """Bytes that are not Apache's quorum protocol."""


class PacketType(IntEnum):
    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    COMMITANDACTIVATE = 9
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    INFORMANDACTIVATE = 19


_PACKETTYPE_VALUES = frozenset(int(m) for m in PacketType)  # the packet types a peer may send


class QuorumPacket(NamedTuple):
    """One packet (immutable; a tuple, so a reader makes one in a single step)."""

    type: int
    zxid: int
    data: bytes | None = None
    authinfo: tuple[tuple[str, str], ...] | None = None


# a QuorumPacket from its four fields without the named tuple's Python-level __new__
_new_tuple = tuple.__new__

Reader = Generator[int, bytes, Any]
T = TypeVar("T")


# ---------------------------------------------------------------- packets
def _ustring(out: bytearray, s: str | None) -> None:
    if s is None:
        out += _I.pack(-1)
        return
    b = s.encode("utf-8")
    out += _I.pack(len(b))
    out += b


def encode_packet(p: QuorumPacket) -> bytes:
    out = bytearray(_HEAD.pack(p.type, p.zxid, -1 if p.data is None else len(p.data)))
    if p.data is not None:
        out += p.data
    if p.authinfo is None:
        out += _I.pack(-1)
    else:
        out += _I.pack(len(p.authinfo))
        for scheme, ident in p.authinfo:
            _ustring(out, scheme)
            _ustring(out, ident)
    return bytes(out)


def encode_bare(ptype: int, zxid: int) -> bytes:
    """``encode_packet(QuorumPacket(ptype, zxid, None, None))`` in one step: the broadcast
    phase's ACK and COMMIT, and the leader's PING."""
    return _BARE.pack(ptype, zxid, -1, -1)


def encode_with_data(ptype: int, zxid: int, data: bytes) -> bytes:
    """``encode_packet(QuorumPacket(ptype, zxid, data, None))`` in one step (PROPOSAL, INFORM)."""
    return _HEAD.pack(ptype, zxid, len(data)) + data + _NO_AUTH


def peek_bare(buf: bytes, pos: int) -> tuple[int, int] | None:
    """(type, zxid) of the packet at ``pos`` when ``buf`` holds all of it and it carries
    neither data nor authinfo (an ACK, a COMMIT); None otherwise. Nothing is consumed."""
    if len(buf) - pos < 20:
        return None
    ptype, zxid, n, count = _BARE.unpack_from(buf, pos)
    if n != -1 or count != -1:
        return None
    return ptype, zxid


def _read_ustring(limit: int = MAX_BUFFER) -> Generator[int, bytes, str | None]:
    (n,) = _I.unpack((yield 4))
    if n < 0:
        return None
    if n > limit:
        raise QuorumWireError(f"string of {n} bytes")
    raw = (yield n) if n else b""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise QuorumWireError("string is not UTF-8") from None


def read_packet(max_data: int = MAX_BUFFER) -> Generator[int, bytes, QuorumPacket]:
    """One QuorumPacket; an unknown type, an oversized buffer or a bad count raise."""
    ptype, zxid, n = _HEAD.unpack((yield _HEAD.size))
    if ptype not in _PACKETTYPE_VALUES:
        raise QuorumWireError(f"unknown packet type {ptype}")
    if n < -1 or n > max_data:
        raise QuorumWireError(f"packet data of {n} bytes")
    data = None if n == -1 else ((yield n) if n else b"")
    (count,) = _I.unpack((yield 4))
    if count < -1 or count > MAX_AUTH:
        raise QuorumWireError(f"authinfo of {count} ids")
    auth: tuple[tuple[str, str], ...] | None = None
    if count >= 0:
        ids = []
        for _ in range(count):
            scheme = yield from _read_ustring()
            ident = yield from _read_ustring()
            ids.append((scheme or "", ident or ""))
        auth = tuple(ids)
    return QuorumPacket(ptype, zxid, data, auth)


def take_packet(buf: bytes, pos: int = 0, max_data: int = MAX_BUFFER) -> tuple[QuorumPacket | None, int]:
    """The packet at ``pos`` of ``buf`` and the offset after it, when ``buf`` holds all of it;
    (None, pos) when it holds only part. The same packets and the same errors as
    ``read_packet``, without a generator step per field: a stream reader hands over a whole
    buffer of packets at once (the quorum port's framing, one call per packet)."""
    end = len(buf)
    if end - pos < 16:
        return None, pos
    ptype, zxid, n = _HEAD.unpack_from(buf, pos)
    if ptype not in _PACKETTYPE_VALUES:
        raise QuorumWireError(f"unknown packet type {ptype}")
    if n < -1 or n > max_data:
        raise QuorumWireError(f"packet data of {n} bytes")
    at = pos + 16
    if n == -1:
        data = None
    else:
        if end - at < n:
            return None, pos
        data = buf[at:at + n]
        at += n
    if end - at < 4:
        return None, pos
    (count,) = _I.unpack_from(buf, at)
    at += 4
    if count == -1:
        return _new_tuple(QuorumPacket, (ptype, zxid, data, None)), at
    if count < -1 or count > MAX_AUTH:
        raise QuorumWireError(f"authinfo of {count} ids")
    ids = []
    for _ in range(count):
        pair = []
        for _ in range(2):
            if end - at < 4:
                return None, pos
            (k,) = _I.unpack_from(buf, at)
            at += 4
            if k < 0:
                pair.append("")
                continue
            if k > MAX_BUFFER:
                raise QuorumWireError(f"string of {k} bytes")
            if end - at < k:
                return None, pos
            try:
                pair.append(buf[at:at + k].decode("utf-8"))
            except UnicodeDecodeError:
                raise QuorumWireError("string is not UTF-8") from None
            at += k
        ids.append((pair[0], pair[1]))
    return QuorumPacket(ptype, zxid, data, tuple(ids)), at


def parse_all(reader: Generator[int, bytes, T], data: bytes, off: int = 0) -> tuple[T, int]:
    """Run a reader over a buffer: (value, offset after it). Too few bytes raise."""
    try:
        n = next(reader)
        while True:
            if n < 0 or off + n > len(data):
                raise QuorumWireError("bytes end inside a record")
            chunk = bytes(data[off:off + n])
            off += n
            n = reader.send(chunk)
    except StopIteration as stop:
        return stop.value, off
    except struct.error as exc:
        raise QuorumWireError(str(exc)) from None


def decode_packet(data: bytes) -> QuorumPacket:
    p, off = parse_all(read_packet(), data)
    if off != len(data):
        raise QuorumWireError("bytes after the packet")
    return p


# ---------------------------------------------------------------- payloads
@dataclass(frozen=True)
class LearnerInfo:
    sid: int
    protocol_version: int = PROTOCOL_VERSION
    config_version: int = 0


def encode_learner_info(li: LearnerInfo) -> bytes:
    return _Q.pack(li.sid) + _I.pack(li.protocol_version) + _Q.pack(li.config_version)


def decode_learner_info(data: bytes | None) -> LearnerInfo:
    """Apache reads each field only if bytes remain (older learners send only the sid)."""
    if data is None or len(data) < 8:
        raise QuorumWireError("LearnerInfo without a server id")
    sid = _Q.unpack_from(data, 0)[0]
    version = _I.unpack_from(data, 8)[0] if len(data) >= 12 else 0
    config = _Q.unpack_from(data, 12)[0] if len(data) >= 20 else 0
    return LearnerInfo(sid, version, config)


def encode_int(value: int) -> bytes:
    return _I.pack(value)


def decode_int(data: bytes | None) -> int:
    if data is None or len(data) < 4:
        raise QuorumWireError("expected a 4-byte int")
    value: int = _I.unpack_from(data, 0)[0]
    return value


def encode_long(value: int) -> bytes:
    return _Q.pack(value)


def decode_long(data: bytes | None) -> int:
    if data is None or len(data) < 8:
        raise QuorumWireError("expected an 8-byte long")
    value: int = _Q.unpack_from(data, 0)[0]
    return value


def encode_sessions(sessions: list[tuple[int, int]]) -> bytes:
    """A learner's PING reply: (session id, timeout) for every session touched."""
    return b"".join(_Q.pack(s) + _I.pack(t) for s, t in sessions)


def decode_sessions(data: bytes | None) -> list[tuple[int, int]]:
    if not data:
        return []
    if len(data) % 12:
        raise QuorumWireError(f"session list of {len(data)} bytes")
    return [(_Q.unpack_from(data, i)[0], _I.unpack_from(data, i + 8)[0]) for i in range(0, len(data), 12)]


class ForwardedRequest(NamedTuple):
    """REQUEST data: a learner hands a client's write (or sync) to the leader (a tuple: read,
    it is made in one step)."""

    session: int
    cxid: int
    op: int
    body: bytes


_REQ = struct.Struct(">qii")


def encode_request(r: ForwardedRequest) -> bytes:
    return _REQ.pack(r.session, r.cxid, r.op) + r.body


def decode_request(data: bytes | None) -> ForwardedRequest:
    if data is None or len(data) < _REQ.size:
        raise QuorumWireError("REQUEST shorter than its header")
    session, cxid, op = _REQ.unpack_from(data, 0)
    return _new_tuple(ForwardedRequest, (session, cxid, op, bytes(data[_REQ.size:])))


def encode_revalidate(session: int, timeout: int) -> bytes:
    return _Q.pack(session) + _I.pack(timeout)


def decode_revalidate(data: bytes | None) -> tuple[int, int]:
    if data is None or len(data) < 12:
        raise QuorumWireError("REVALIDATE shorter than 12 bytes")
    return _Q.unpack_from(data, 0)[0], _I.unpack_from(data, 8)[0]


def encode_revalidate_reply(session: int, valid: bool) -> bytes:
    return _Q.pack(session) + (b"\x01" if valid else b"\x00")


def decode_revalidate_reply(data: bytes | None) -> tuple[int, bool]:
    if data is None or len(data) < 9:
        raise QuorumWireError("REVALIDATE reply shorter than 9 bytes")
    return _Q.unpack_from(data, 0)[0], data[8] != 0


def split_activate(data: bytes | None) -> tuple[int, bytes]:
    """INFORMANDACTIVATE data: the designated leader, then the proposal's bytes."""
    if data is None or len(data) < 8:
        raise QuorumWireError("INFORMANDACTIVATE without a leader id")
    return _Q.unpack_from(data, 0)[0], bytes(data[8:])


# ---------------------------------------------------------------- SNAP stream
def read_snap_body(max_nodes: int = 50_000_000) -> Generator[int, bytes, bytes]:
    """Sessions, ACL cache and nodes up to the "/" marker, as a leader streams them after SNAP
    and a snapshot file holds them after its header; returns their bytes."""
    body = bytearray()

    def take(n: int) -> Generator[int, bytes, bytes]:
        chunk = (yield n) if n else b""
        body.extend(chunk)
        return chunk

    def ustring() -> Generator[int, bytes, str | None]:
        (n,) = _I.unpack((yield from take(4)))
        if n < 0:
            return None
        if n > MAX_BUFFER:
            raise QuorumWireError(f"string of {n} bytes in the snapshot stream")
        raw = yield from take(n)
        return raw.decode("utf-8", errors="replace")

    (count,) = _I.unpack((yield from take(4)))
    if count < 0 or count > MAX_SESSIONS:
        raise QuorumWireError(f"snapshot stream with {count} sessions")
    for _ in range(count):
        yield from take(12)
    (nacl,) = _I.unpack((yield from take(4)))
    if nacl < 0 or nacl > MAX_SESSIONS:
        raise QuorumWireError(f"ACL cache of {nacl} entries")
    for _ in range(nacl):
        yield from take(8)
        (n,) = _I.unpack((yield from take(4)))
        if n < 0 or n > MAX_AUTH:
            raise QuorumWireError(f"ACL list of {n} entries")
        for _ in range(n):
            yield from take(4)
            yield from ustring()
            yield from ustring()
    for _ in range(max_nodes):
        path = yield from ustring()
        if path == "/":
            break
        if path is None:
            raise QuorumWireError("null node path in the snapshot stream")
        (n,) = _I.unpack((yield from take(4)))
        if n < -1 or n > MAX_BUFFER:
            raise QuorumWireError(f"node data of {n} bytes")
        if n > 0:
            yield from take(n)
        yield from take(8 + 60)  # ACL cache id, StatPersisted
    else:
        raise QuorumWireError("snapshot stream without an end")
    return bytes(body)


def read_snap_stream() -> Generator[int, bytes, bytes]:
    """The whole SNAP stream, signature included; returns the body (see read_snap_body)."""
    body = yield from read_snap_body()
    signature = yield from _read_ustring(64)
    if signature != SNAP_SIGNATURE:
        raise QuorumWireError(f"snapshot stream signed {signature!r}")
    return body


def stream_of_snapshot_file(data: bytes) -> bytes:
    """The SNAP stream for a snapshot file (FileHeader, body, Adler32 seal[, digest and seal])."""
    if len(data) < 16 + 13 or _I.unpack_from(data, 0)[0] != SNAP_MAGIC:
        raise QuorumWireError("not a snapshot file")
    body, _ = parse_all(read_snap_body(), data, 16)
    return body + _I.pack(len(SNAP_SIGNATURE)) + SNAP_SIGNATURE.encode()


def snapshot_file_of_stream(body: bytes) -> bytes:
    """A snapshot file (header, body, Adler32 seal) for a SNAP stream's body."""
    head = _I.pack(SNAP_MAGIC) + _I.pack(SNAP_FILE_VERSION) + _Q.pack(-1)
    adler = zlib.adler32(body, zlib.adler32(head))
    return head + body + _Q.pack(adler & 0xFFFFFFFF) + _SEAL_TRAILER
