"""Bytes of Apache ZooKeeper 3.8's election port (QuorumCnxManager, FastLeaderElection).

Pure codec, no I/O. A connection starts with the dialling server's initial message:
int64 protocol version (-65536, or -65535 when several addresses follow), int64 sid,
int32 length and the ``host:port`` text it listens on (a first int64 >= 0 is a bare sid
from servers older than 3.5). Then both directions carry frames of int32 length + payload,
every payload one notification:

    int32 state, int64 leader, int64 zxid, int64 electionEpoch, int64 peerEpoch,
    int32 version (2), int32 config length, config text (``server.N=...`` lines, version=hex)

Shorter payloads from older servers decode too (28 bytes: no peerEpoch; 40: no config).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from .election import Notification, ServerState, Vote

PROTOCOL_V1 = -65536
PROTOCOL_V2 = -65535
MAX_ADDRESS = 2048  # Apache's limit on the initial message's address text
MAX_FRAME = 512 * 1024  # PACKETMAXSIZE: a longer frame drops the connection
NOTIFICATION_VERSION = 2

_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_HEAD = struct.Struct(">qqi")  # version, sid, address length
_BODY = struct.Struct(">iqqqqii")  # state, leader, zxid, electionEpoch, peerEpoch, version, config length


class ElectionWireError(ValueError):
    """Bytes that are not Apache's election protocol."""


class PeerState(IntEnum):
    """ServerState ordinals as Apache sends them."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


_PEERSTATE_VALUES = frozenset(int(m) for m in PeerState)  # what a notification's state may be


@dataclass(frozen=True)
class InitialMessage:
    """What the dialling server says first: who it is and where it listens."""

    sid: int
    addresses: tuple[str, ...] = ()  # host:port items; empty for a bare pre-3.5 sid
    version: int = PROTOCOL_V1


def encode_initial(msg: InitialMessage) -> bytes:
    if msg.version >= 0:
        return _Q.pack(msg.sid)
    text = "|".join(msg.addresses).encode()
    return _HEAD.pack(msg.version, msg.sid, len(text)) + text


def initial_head(first8: bytes) -> int:
    """The first int64: a protocol version (negative) or a bare sid (>= 0)."""
    head: int = _Q.unpack(first8)[0]
    return head


def decode_initial(data: bytes) -> InitialMessage:
    """The whole initial message (8 bytes for a bare sid, else 20 + address bytes)."""
    if len(data) < 8:
        raise ElectionWireError("initial message shorter than 8 bytes")
    head = initial_head(data[:8])
    if head >= 0:
        if len(data) != 8:
            raise ElectionWireError("bytes after a bare sid")
        return InitialMessage(head, (), head)
    if head not in (PROTOCOL_V1, PROTOCOL_V2):
        raise ElectionWireError(f"unknown election protocol version {head}")
    if len(data) < _HEAD.size:
        raise ElectionWireError("initial message cut short")
    version, sid, n = _HEAD.unpack_from(data, 0)
    if n <= 0 or n > MAX_ADDRESS:
        raise ElectionWireError(f"address length {n} out of range")
    text = data[_HEAD.size:]
    if len(text) != n:
        raise ElectionWireError("address text cut short")
    addresses = tuple(parse_addresses(text.decode("utf-8", errors="strict")))
    return InitialMessage(sid, addresses, version)


def parse_addresses(text: str) -> list[str]:
    """``h:p`` or ``[v6]:p`` items separated by ``|``; anything else is refused."""
    out = []
    for part in text.split("|"):
        if part.startswith("["):
            host, sep, port = part[1:].partition("]:")
        else:
            pieces = part.split(":")
            if len(pieces) != 2:
                raise ElectionWireError(f"bad address {part!r}")
            host, port = pieces
            sep = ":"
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ElectionWireError(f"bad address {part!r}")
        out.append(part)
    return out


def split_address(item: str) -> tuple[str, int]:
    if item.startswith("["):
        host, _, port = item[1:].partition("]:")
    else:
        host, _, port = item.rpartition(":")
    return host, int(port)


@dataclass(frozen=True)
class WireNotification:
    """One notification as it travels; ``config`` None for formats without one."""

    state: int
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = NOTIFICATION_VERSION
    config: bytes | None = b""


def encode_notification(n: WireNotification) -> bytes:
    config = n.config or b""
    return _BODY.pack(n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version, len(config)) + config


def decode_notification(data: bytes) -> WireNotification:
    size = len(data)
    if size < 28:
        raise ElectionWireError(f"notification of {size} bytes")
    (state,) = _I.unpack_from(data, 0)
    leader, zxid, election_epoch = struct.unpack_from(">qqq", data, 4)
    if state not in _PEERSTATE_VALUES:
        raise ElectionWireError(f"unknown server state {state}")
    if size == 28:
        return WireNotification(state, leader, zxid, election_epoch, zxid >> 32, 0, None)
    (peer_epoch,) = _Q.unpack_from(data, 28)
    if size < 40:
        raise ElectionWireError(f"notification of {size} bytes")
    if size == 40:
        return WireNotification(state, leader, zxid, election_epoch, peer_epoch, 0, None)
    if size < 44:
        raise ElectionWireError(f"notification of {size} bytes")
    (version,) = _I.unpack_from(data, 36)
    if version <= 1:  # an older sender: anything after the version is not read
        return WireNotification(state, leader, zxid, election_epoch, peer_epoch, version, None)
    (n,) = _I.unpack_from(data, 40)
    if n < 0 or 44 + n != size:
        raise ElectionWireError(f"config length {n} does not match a {size}-byte notification")
    return WireNotification(state, leader, zxid, election_epoch, peer_epoch, version, bytes(data[44:]))


def config_version(config: bytes | None) -> int:
    """The ``version=<hex>`` of a config text, 0 when it has none or it does not read."""
    if not config:
        return 0
    for line in reversed(config.split(b"\n")):
        key, sep, value = line.strip().partition(b"=")
        if sep and key.strip() == b"version":
            try:
                return int(value.strip(), 16)
            except ValueError:
                return 0
    return 0


_STATE_NAMES = {s.value: ServerState[s.name].value for s in PeerState}


def to_core(sender: int, n: WireNotification, observer: bool) -> Notification:
    """The election core's view of a notification from ``sender``."""
    return Notification(sender, _STATE_NAMES[n.state], Vote(n.peer_epoch, n.zxid, n.leader), n.election_epoch,
                        observer, config_version(n.config), n.config or b"")


def from_core(n: Notification) -> WireNotification:
    return WireNotification(PeerState[n.state].value, n.vote.leader, n.vote.zxid, n.round, n.vote.epoch,
                            NOTIFICATION_VERSION, n.config)
