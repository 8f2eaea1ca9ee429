"""Requests of the 3.8 protocol that kazoo does not offer, in kazoo's request shape.

kazoo sends any object with a ``type`` (the opcode), ``serialize()`` and a ``deserialize``
class method through ``KazooClient._call``; these add what zkCli.sh needs beyond kazoo's own
API: creates that carry a null payload, containers and TTL nodes, ``addWatch``,
``removeWatches``, ``getEphemerals``, ``getAllChildrenNumber`` and ``whoAmI``.
"""

from __future__ import annotations

import struct
from collections import namedtuple
from typing import Any

from kazoo.protocol.serialization import read_string, write_buffer, write_string
from kazoo.protocol.states import ZnodeStat

_INT = struct.Struct("!i")
_LONG = struct.Struct("!q")
_STAT = struct.Struct("!qqqqiiiqiiq")

# CreateMode flags, as the create request carries them
PERSISTENT, EPHEMERAL, SEQUENTIAL, CONTAINER, TTL, TTL_SEQUENTIAL = 0, 1, 2, 4, 5, 6
# addWatch modes and removeWatches watcher types
PERSISTENT_WATCH, PERSISTENT_RECURSIVE_WATCH = 0, 1
WATCHER_CHILDREN, WATCHER_DATA, WATCHER_ANY = 1, 2, 3


def _acl_bytes(acls: Any) -> bytes:
    out = bytearray(_INT.pack(len(acls)))
    for acl in acls:
        out += _INT.pack(acl.perms) + write_string(acl.id.scheme) + write_string(acl.id.id)
    return bytes(out)


class CreateAny(namedtuple("CreateAny", "path data acl flags ttl")):
    """create2 (15), createContainer (19) or createTTL (21), chosen by the flags; ``data`` may be
    None, which the wire carries as length -1, as zkCli.sh sends a create without data."""

    @property
    def type(self) -> int:
        if self.flags == CONTAINER:
            return 19
        return 21 if self.flags in (TTL, TTL_SEQUENTIAL) else 15

    def serialize(self) -> bytes:
        body = write_string(self.path) + write_buffer(self.data) + _acl_bytes(self.acl) + _INT.pack(self.flags)
        return body + (_LONG.pack(self.ttl) if self.type == 21 else b"")

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> tuple[str, ZnodeStat]:
        path, offset = read_string(buf, offset)
        return path, ZnodeStat._make(_STAT.unpack_from(buf, offset))


class AddWatch(namedtuple("AddWatch", "path mode")):
    type = 106

    def serialize(self) -> bytes:
        return write_string(self.path) + _INT.pack(self.mode)

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> None:
        return None


class RemoveWatches(namedtuple("RemoveWatches", "path watcher_type")):
    type = 18

    def serialize(self) -> bytes:
        return write_string(self.path) + _INT.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> None:
        return None


def _read_strings(buf: bytes, offset: int) -> list[str]:
    count = _INT.unpack_from(buf, offset)[0]
    offset += 4
    out = []
    for _ in range(max(count, 0)):
        s, offset = read_string(buf, offset)
        out.append(s)
    return out


class GetEphemerals(namedtuple("GetEphemerals", "prefix")):
    type = 103

    def serialize(self) -> bytes:
        return write_string(self.prefix)

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> list[str]:
        return _read_strings(buf, offset)


class GetAllChildrenNumber(namedtuple("GetAllChildrenNumber", "path")):
    type = 104

    def serialize(self) -> bytes:
        return write_string(self.path)

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> int:
        return _INT.unpack_from(buf, offset)[0]


class WhoAmI(namedtuple("WhoAmI", "")):
    type = 107

    def __bool__(self) -> bool:  # kazoo only answers requests that are truthy; an empty tuple is not
        return True

    def serialize(self) -> bytes:
        return b""

    @classmethod
    def deserialize(cls, buf: bytes, offset: int) -> list[tuple[str, str]]:
        return _read_strings_pairs(buf, offset)


def _read_strings_pairs(buf: bytes, offset: int) -> list[tuple[str, str]]:
    count = _INT.unpack_from(buf, offset)[0]
    offset += 4
    out = []
    for _ in range(max(count, 0)):
        scheme, offset = read_string(buf, offset)
        user, offset = read_string(buf, offset)
        out.append((scheme, user))
    return out


def call(client: Any, request: Any, timeout: float) -> Any:
    """Send ``request`` through kazoo's connection and wait for its reply (or its exception)."""
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=timeout)
