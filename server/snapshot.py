"""Snapshots of the tree, in Apache ZooKeeper's snapshot layout.

``<dataDir>/version-2/snapshot.<zxid hex>``: FileHeader ('ZKSN', version 2, dbid -1),
the sessions (count, then id + timeout), the ACL cache (count, then id + vector<ACL>),
every node as (path, DataNode{data, acl id, StatPersisted}) parents first, the root
named "", a "/" path to end the nodes, then the Adler32 of everything before and a
final "/". A snapshot is fuzzy: the txns after its zxid are replayed over it.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .jute import JuteError, Record, _read_buffer, _read_string, _write_buffer, _write_string
from .records import ACL, FileHeader, StatPersisted

log = logging.getLogger("zkops.server.snapshot")

SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
VERSION = 2
_Q = struct.Struct(">q")
_I = struct.Struct(">i")

Node = tuple[str, bytes, list[ACL], StatPersisted]


class SnapshotError(ValueError):
    """A snapshot file is truncated or its checksum does not match."""


class DataNode(Record):
    FIELDS = (("data", "buffer"), ("acl", "long"), ("stat", StatPersisted))
    __slots__ = ("data", "acl", "stat")


@dataclass
class SnapshotData:
    zxid: int
    sessions: dict[int, int]
    nodes: list[Node]
    path: Path


def snapshot_name(zxid: int) -> str:
    return f"snapshot.{zxid:x}"


def find_snapshots(data_dir: Path) -> list[Path]:
    """Snapshot files, newest (highest zxid) first."""
    d = Path(data_dir) / "version-2"
    found = []
    if d.is_dir():
        for p in d.iterdir():
            if p.name.startswith("snapshot."):
                try:
                    found.append((int(p.name[9:], 16), p))
                except ValueError:
                    continue
    return [p for _, p in sorted(found, reverse=True)]


def snapshot_zxid(path: Path) -> int:
    return int(path.name[9:], 16)


def serialize(zxid: int, sessions: dict[int, int], nodes: Iterable[Node]) -> bytes:
    out = bytearray()
    FileHeader(SNAP_MAGIC, VERSION, -1).write(out)
    out += _I.pack(len(sessions))
    for sid in sorted(sessions):
        out += _Q.pack(sid)
        out += _I.pack(sessions[sid])
    acl_ids: dict[tuple, int] = {}
    body = bytearray()
    for path, data, acl, stat in nodes:
        key = tuple((a.perms, a.id.scheme, a.id.id) for a in acl)
        ref = acl_ids.get(key)
        if ref is None:
            ref = acl_ids[key] = len(acl_ids) + 1
        _write_string(body, path)
        DataNode(data, ref, stat).write(body)
    _write_string(body, "/")
    out += _I.pack(len(acl_ids))
    for key, ref in acl_ids.items():
        out += _Q.pack(ref)
        out += _I.pack(len(key))
        for perms, scheme, ident in key:
            ACL(perms, _id(scheme, ident)).write(out)
    out += body
    out += _Q.pack(zlib.adler32(out) & 0xFFFFFFFF)
    _write_string(out, "/")
    return bytes(out)


def _id(scheme: str, ident: str):  # noqa: ANN202 - small helper
    from .records import Id

    return Id(scheme, ident)


def write_snapshot(data_dir: Path, zxid: int, sessions: dict[int, int], nodes: Iterable[Node]) -> Path:
    """Write atomically: temp file, fsync, rename, fsync the directory."""
    d = Path(data_dir) / "version-2"
    d.mkdir(parents=True, exist_ok=True)
    data = serialize(zxid, sessions, nodes)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        final = d / snapshot_name(zxid)
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final


def parse(data: bytes, name: str = "snapshot") -> tuple[dict[int, int], list[Node]]:
    try:
        hdr, off = FileHeader.read(data, 0)
        if hdr.magic != SNAP_MAGIC:
            raise SnapshotError(f"{name}: not a snapshot (magic 0x{hdr.magic:x})")
        (count,), off = _I.unpack_from(data, off), off + 4
        sessions = {}
        for _ in range(count):
            sid = _Q.unpack_from(data, off)[0]
            timeout = _I.unpack_from(data, off + 8)[0]
            sessions[sid] = timeout
            off += 12
        (nacl,), off = _I.unpack_from(data, off), off + 4
        acls: dict[int, list[ACL]] = {}
        for _ in range(nacl):
            ref = _Q.unpack_from(data, off)[0]
            (n,) = _I.unpack_from(data, off + 8)
            off += 12
            lst = []
            for _ in range(max(n, 0)):
                a, off = ACL.read(data, off)
                lst.append(a)
            acls[ref] = lst
        nodes: list[Node] = []
        while True:
            path, off = _read_string(data, off)
            if path == "/":
                break
            node, off = DataNode.read(data, off)
            acl = acls.get(node.acl)
            if acl is None:
                # Apache writes -1 for the open ACL without a cache entry
                acl = [ACL(31, _id("world", "anyone"))] if node.acl == -1 else []
            nodes.append((path or "", node.data or b"", acl, node.stat))
        end_of_body = off
        (crc,) = _Q.unpack_from(data, off)
        trailer, _ = _read_string(data, off + 8)
    except (struct.error, JuteError, IndexError) as exc:
        raise SnapshotError(f"{name}: truncated or unreadable: {exc}") from None
    if trailer != "/" or (zlib.adler32(data[:end_of_body]) & 0xFFFFFFFF) != (crc & 0xFFFFFFFF):
        raise SnapshotError(f"{name}: checksum mismatch")
    return sessions, nodes


def read_snapshot(path: Path) -> SnapshotData:
    sessions, nodes = parse(Path(path).read_bytes(), str(path))
    return SnapshotData(snapshot_zxid(Path(path)), sessions, nodes, Path(path))


def load_newest_valid(data_dir: Path) -> SnapshotData | None:
    """The newest snapshot that reads back whole; damaged ones are skipped with a warning."""
    for path in find_snapshots(data_dir):
        try:
            return read_snapshot(path)
        except (SnapshotError, OSError) as exc:
            log.warning("skipping snapshot %s: %s", path.name, exc)
    return None


__all__ = ["SnapshotData", "SnapshotError", "find_snapshots", "load_newest_valid", "read_snapshot",
           "write_snapshot", "serialize", "parse", "_read_buffer", "_write_buffer"]
