"""Fuzzy snapshots of the data tree, in Apache ZooKeeper 3.8's snapshot format.

Layout of ``<dataDir>/version-2/snapshot.<zxid, lowercase hex>`` (FileSnap,
SerializeUtils.serializeSnapshot, DataTree.serialize, ReferenceCountedACLCache)::

    FileHeader    int magic 'ZKSN', int version 2, long dbid -1
    sessions      int count, then per session: long id, int timeout
    ACL cache     int count, then per entry: long id, vector<ACL>
    nodes         per node: ustring path, DataNode {buffer data, long acl id,
                  StatPersisted}; the root is named "" and comes first, every parent
                  before its children; the path "/" ends the list
    seal          long Adler32 of every byte before it, ustring "/"
    [digest]      ZxidDigest {long zxid, int version 2, long digest} and a second seal
                  (Adler32 of every byte before it, the first seal included), as
                  3.8 writes it when zookeeper.digest.enabled is on (the default)

A node's acl id -1 means the open ACL without a cache entry (ZooKeeper's root and
/zookeeper use it). We write the digest section as 3.8 does when digests are enabled:
the tree digest (digest.py) at the zxid it names. Our snapshots name the zxid they were
taken at and hold the tree exactly at it (the forked writer's copy stands still), so the
digest names that zxid too; a writer that finds a node changed after that zxid (the
threaded writer, whose nodes may move under it) writes 3.8's empty digest, zxid 0,
instead, which readers skip. Version 1 digests (a hex string) are read, never written.

A snapshot is fuzzy: taken while txns keep committing, it may already hold some txns
after its zxid, and replaying those over it gives the same tree.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from .codes import Perm
from .digest import DIGEST_VERSION, M64, counted, entry_digest
from .jute import JuteError, Record, read_string, write_string
from .records import ACL, FileHeader, Id, StatPersisted
from .snaprows import Row, encode_rows
from .values import MutableValue, Value

log = logging.getLogger("zkops.server.snapshot")

SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
VERSION = 2
DBID = -1
OPEN_ACL_ID = -1  # ReferenceCountedACLCache's id for OPEN_ACL_UNSAFE
OPEN_ACL_UNSAFE = [ACL(Perm.ALL, Id("world", "anyone"))]
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_SEAL_TRAILER = b"\x00\x00\x00\x01/"  # ustring "/" after the checksum; ZooKeeper's cheap validity test
_CHUNK = 1 << 20

Node = tuple[str, bytes | None, list[ACL], StatPersisted]  # data None: a null znode


class SnapshotError(ValueError):
    """A snapshot is truncated, fails its checksum, or does not describe a tree."""


class DataNode(Record):
    """A node as a snapshot stores it: data, ACL cache id, persisted stat."""

    FIELDS = (("data", "buffer"), ("acl", "long"), ("stat", StatPersisted))
    __slots__ = ("data", "acl", "stat")


class ZxidDigest(Value):
    """The optional tree digest 3.8 writes after the first seal."""

    __slots__ = ("zxid", "version", "digest")
    zxid: int
    version: int
    digest: int

    def __init__(self, zxid: int, version: int, digest: int) -> None:
        object.__setattr__(self, "zxid", zxid)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "digest", digest)


class SnapshotData(MutableValue):
    """What a snapshot holds; ``nodes`` are (path, data, acl, stat), root "" first."""

    __slots__ = ("zxid", "sessions", "nodes", "path", "digest")
    zxid: int
    sessions: dict[int, int]
    nodes: list[Node]
    path: Path | None
    digest: ZxidDigest | None

    def __init__(self, zxid: int, sessions: dict[int, int], nodes: list[Node], path: Path | None = None,
                 digest: ZxidDigest | None = None) -> None:
        self.zxid = zxid
        self.sessions = sessions
        self.nodes = nodes
        self.path = path
        self.digest = digest


# ---------------------------------------------------------------- names
def snapshot_name(zxid: int) -> str:
    """ZooKeeper's file name for a snapshot taken at ``zxid``."""
    return f"snapshot.{zxid:x}"


def snapshot_zxid(path: Path) -> int:
    """The zxid in a snapshot's name (``snapshot.<hex>``, maybe with .gz/.snappy)."""
    parts = Path(path).name.split(".")
    if len(parts) < 2 or parts[0] != "snapshot":
        raise ValueError(f"{path} is not named like a snapshot")
    return int(parts[1], 16)


def find_snapshots(data_dir: Path) -> list[Path]:
    """Every snapshot file of ``data_dir``, newest (highest zxid) first."""
    d = Path(data_dir) / "version-2"
    found = []
    if d.is_dir():
        for p in d.iterdir():
            parts = p.name.split(".")
            if parts[0] != "snapshot" or len(parts) not in (2, 3) or not p.is_file():
                continue
            if len(parts) == 3 and parts[2] not in ("gz", "snappy"):
                continue
            try:
                found.append((int(parts[1], 16), p))
            except ValueError:
                continue
    return [p for _, p in sorted(found, key=lambda t: t[0], reverse=True)]


def looks_sealed(path: Path) -> bool:
    """ZooKeeper's cheap validity test (SnapStream.isValidSnapshot): is the file sealed?

    Purge counts only such snapshots, as ZooKeeper does; a full check reads the file.
    """
    p = Path(path)
    try:
        if p.name.endswith(".gz"):
            with open(p, "rb") as f:
                return f.read(2) == b"\x1f\x8b"
        if p.name.endswith(".snappy"):
            return p.stat().st_size > 0
        size = p.stat().st_size
        if size < 10:
            return False
        with open(p, "rb") as f:
            f.seek(size - len(_SEAL_TRAILER))
            return f.read() == _SEAL_TRAILER
    except OSError:
        return False


# ---------------------------------------------------------------- writing
class _Sink:
    """Buffers output and keeps the running Adler32 that a seal writes."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.buf = bytearray()
        self.adler = zlib.adler32(b"")

    def write(self, data: bytes | bytearray) -> None:
        self.buf += data
        if len(self.buf) >= _CHUNK:
            self.drain()

    def drain(self) -> None:
        if self.buf:
            self.adler = zlib.adler32(self.buf, self.adler)
            self.out.write(self.buf)
            self.buf.clear()

    def seal(self) -> None:
        self.drain()
        self.write(_Q.pack(self.adler & 0xFFFFFFFF) + _SEAL_TRAILER)
        self.drain()


def _acl_key(acl: list[ACL]) -> tuple[ACL, ...]:
    return tuple(acl)


def _write(out: BinaryIO, sessions: dict[int, int], nodes: Iterable[Node], digest: ZxidDigest | None = None) -> None:
    """``nodes`` checked (the root first, every parent before its children, no path twice) and
    their ACLs interned, written as rows."""
    items = list(nodes)
    ids: dict[tuple[ACL, ...], int] = {}
    refs: list[int] = []
    seen: set[str] = set()
    for i, (path, _, acl, _) in enumerate(items):
        if path == "/":
            path = ""
        if i == 0 and path != "":
            raise ValueError(f"the root (named \"\") must come first, not {path!r}")
        if i > 0:
            if path in seen or not path.startswith("/") or path.endswith("/"):
                raise ValueError(f"bad or repeated node path {path!r}")
            if path[: path.rfind("/")] not in seen:
                raise ValueError(f"node {path} comes before its parent")
        seen.add(path)
        key = _acl_key(acl)
        ref = ids.get(key)
        if ref is None:
            ref = ids[key] = len(ids) + 1  # ZooKeeper counts cache ids from 1
        refs.append(ref)
    rows = (("" if path == "/" else path, data, ref, stat.to_bytes())
            for (path, data, _, stat), ref in zip(items, refs, strict=True))
    _write_rows(out, sessions, list(ids), rows, digest)


def _write_rows(out: BinaryIO, sessions: dict[int, int], acls: Sequence[Sequence[ACL]], rows: Iterable[Row],
                digest: ZxidDigest | None) -> None:
    """The file: ``acls`` is the ACL cache (ids from 1, in order), ``rows`` the nodes in the
    order they are written."""
    sink = _Sink(out)
    sink.write(FileHeader(SNAP_MAGIC, VERSION, DBID).to_bytes())
    sink.write(_I.pack(len(sessions)))
    for sid in sorted(sessions):
        sink.write(_Q.pack(sid) + _I.pack(sessions[sid]))
    buf = bytearray(_I.pack(len(acls)))
    for ref, key in enumerate(acls, 1):
        buf += _Q.pack(ref)
        buf += _I.pack(len(key))
        for a in key:
            a.write(buf)
    sink.write(buf)
    for piece in encode_rows(rows, _CHUNK):
        sink.write(piece)
    buf = bytearray()
    write_string(buf, "/")
    sink.write(buf)
    sink.seal()
    if digest is not None:  # FileSnap.serialize: DataTree.serializeZxidDigest, then a second seal
        if digest.version != 2:
            raise ValueError(f"only version 2 digests are written, not {digest.version}")
        sink.write(_Q.pack(digest.zxid) + _I.pack(digest.version) + _Q.pack(_signed(digest.digest)))
        sink.seal()


def _signed(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def serialize(zxid: int, sessions: dict[int, int], nodes: Iterable[Node],
              digest: ZxidDigest | None = None) -> bytes:
    """A whole snapshot as bytes (what a ZAB leader sends a follower as SNAP)."""
    out = io.BytesIO()
    _write(out, sessions, nodes, digest)
    return out.getvalue()


def _publish(directory: Path, name: str, fill: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: temp file, fsync, rename, fsync the directory."""
    import tempfile  # here: it pulls in random and shutil, a few ms of start-up for one call

    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        final = directory / name
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return final


def write_snapshot(data_dir: Path, zxid: int, sessions: dict[int, int], nodes: Iterable[Node],
                   digest: ZxidDigest | None = None) -> Path:
    """Write ``snapshot.<zxid>`` so it is either absent or whole after a crash.

    ``nodes`` yields the root as "" first, then every node after its parent (a
    pre-order walk does that); each node's ACL list is interned in the ACL cache.
    ``digest``, when given, is the ZxidDigest section (see ``digest_of``).
    """
    d = Path(data_dir) / "version-2"
    d.mkdir(parents=True, exist_ok=True)
    return _publish(d, snapshot_name(zxid), lambda f: _write(f, sessions, nodes, digest))


def write_snapshot_rows(data_dir: Path, zxid: int, sessions: dict[int, int], acls: Sequence[Sequence[ACL]],
                        rows: Iterable[Row], digest: ZxidDigest | None = None) -> Path:
    """``write_snapshot`` of nodes given as rows, whose ACLs are already interned in ``acls``
    (cache id 1 first) and whose order is not checked: what datatree.SnapshotRows gives, a
    writer that is spared a check and a record object per node."""
    d = Path(data_dir) / "version-2"
    d.mkdir(parents=True, exist_ok=True)
    return _publish(d, snapshot_name(zxid), lambda f: _write_rows(f, sessions, acls, rows, digest))


def serialize_rows(zxid: int, sessions: dict[int, int], acls: Sequence[Sequence[ACL]], rows: Iterable[Row],
                   digest: ZxidDigest | None = None) -> bytes:
    """``serialize`` of nodes given as rows (see ``write_snapshot_rows``)."""
    out = io.BytesIO()
    _write_rows(out, sessions, acls, rows, digest)
    return out.getvalue()


EMPTY_DIGEST = ZxidDigest(0, 2, 0)  # what 3.8 writes when it has no digest to name a zxid with


def digest_of(zxid: int, nodes: Iterable[Node]) -> ZxidDigest:
    """The ZxidDigest for a snapshot of ``nodes`` taken at ``zxid``: their tree digest, or
    EMPTY_DIGEST when a node shows a change after ``zxid`` (a fuzzy copy: its digest would
    name no zxid) or ``zxid`` is 0 (no txn to name)."""
    if zxid <= 0:
        return EMPTY_DIGEST
    total = 0
    for path, data, _, stat in nodes:
        if not counted(path):  # not in the digest (/zookeeper/config is stamped without a txn)
            continue
        if stat.mzxid > zxid or stat.pzxid > zxid or stat.czxid > zxid:
            return EMPTY_DIGEST
        total += entry_digest(path, data, stat)
    return ZxidDigest(zxid, DIGEST_VERSION, total & M64)


def zxid_digest(zxid: int, digest: int | None) -> ZxidDigest:
    """The ZxidDigest section of a snapshot at ``zxid`` whose nodes sum to ``digest``, or 3.8's
    empty one when there is none to name a zxid with (see ``digest_of``)."""
    return EMPTY_DIGEST if digest is None or zxid <= 0 else ZxidDigest(zxid, DIGEST_VERSION, digest & M64)


def install_snapshot_bytes(data_dir: Path, zxid: int, data: bytes) -> Path:
    """Store a snapshot received as bytes (ZAB SNAP), after checking that it reads back."""
    parse(data, f"snapshot from the leader at 0x{zxid:x}")
    d = Path(data_dir) / "version-2"
    d.mkdir(parents=True, exist_ok=True)
    return _publish(d, snapshot_name(zxid), lambda f: f.write(data))


# ---------------------------------------------------------------- reading
def _check_seal(mv: memoryview, off: int, name: str) -> int:
    (crc,) = _Q.unpack_from(mv, off)
    trailer, end = read_string(mv, off + 8)
    if trailer != "/":
        raise SnapshotError(f"{name}: no '/' after the checksum at byte offset {off}")
    if crc != zlib.adler32(mv[:off]) & 0xFFFFFFFF:
        raise SnapshotError(f"{name}: checksum mismatch at byte offset {off}")
    return end


def parse(data: bytes, name: str = "snapshot") -> tuple[dict[int, int], list[Node]]:
    """Sessions and nodes of a snapshot's bytes; :class:`SnapshotError` if damaged."""
    sessions, nodes, _ = parse_with_digest(data, name)
    return sessions, nodes


# what a streaming reader is handed for each node, in file order: path ("" for the root),
# data, ACL and stat
NodeSink = Callable[[str, bytes | None, list[ACL], StatPersisted], object]


# a faster sink for recovery: path, data, the ACL list (one object per cache id: not to be
# changed) and the stat as the file's 60 bytes (StatPersisted's fields in its order, big-endian);
# data and stat are views into the file's bytes, to be copied if kept beyond the call. The sink
# checks that parents come first
RawNodeSink = Callable[[str, memoryview | None, list[ACL], memoryview], object]
# what a node naming an ACL id its snapshot's cache lacks gets instead: called with the node's
# path ("" for the root) and the id. A fuzzy snapshot can hold such a node (Apache writes the
# cache first, then the nodes, while txns keep applying); a loader that replays the txn log
# after the file can take the list from the replayed txn that set it (datatree.Loader does)
MissingAcl = Callable[[str, int], list[ACL]]


def parse_with_digest(data: bytes, name: str = "snapshot", sink: NodeSink | None = None,
                      raw_sink: RawNodeSink | None = None,
                      missing_acl: MissingAcl | None = None) -> tuple[dict[int, int], list[Node], ZxidDigest | None]:
    """parse(), and the digest the file ends with (None for a file without one). With
    ``sink``, each node goes to it as it is read (no list of them is kept: a large tree's
    temporaries are then freed node by node) and the returned list is empty. ``raw_sink``
    is the same with no record objects per node (see RawNodeSink); the sink itself must
    refuse a node whose parent it has not been given (a tree does: its parent is missing).
    A node naming an ACL id the file's cache lacks makes it a SnapshotError, unless
    ``missing_acl`` gives that node's ACL (see MissingAcl)."""
    mv = memoryview(data)
    first: str | None = None
    try:
        hdr, off = FileHeader.read(mv, 0)
        if hdr.magic != SNAP_MAGIC:
            raise SnapshotError(f"{name}: not a snapshot (magic 0x{hdr.magic & 0xFFFFFFFF:08x})")
        if hdr.version != VERSION:
            raise SnapshotError(f"{name}: unsupported snapshot version {hdr.version}")
        (count,) = _I.unpack_from(mv, off)
        off += 4
        if count < 0 or count * 12 > len(mv) - off:
            raise SnapshotError(f"{name}: bad session count {count}")
        sessions: dict[int, int] = {}
        for _ in range(count):
            sid, timeout = _Q.unpack_from(mv, off)[0], _I.unpack_from(mv, off + 8)[0]
            sessions[sid] = timeout
            off += 12
        (nacl,) = _I.unpack_from(mv, off)
        off += 4
        if nacl < 0 or nacl * 12 > len(mv) - off:
            raise SnapshotError(f"{name}: bad ACL cache size {nacl}")
        acls: dict[int, list[ACL]] = {}
        for _ in range(nacl):
            (ref,) = _Q.unpack_from(mv, off)
            (n,) = _I.unpack_from(mv, off + 8)
            off += 12
            if n < 0 or n > len(mv) - off:
                raise SnapshotError(f"{name}: bad ACL list for cache id {ref}")
            lst = []
            for _ in range(n):
                a, off = ACL.read(mv, off)
                lst.append(a)
            acls[ref] = lst
        nodes: list[Node] = []
        seen: set[str] = set()
        open_acl = list(OPEN_ACL_UNSAFE)
        size = len(mv)
        while True:
            path, off = read_string(mv, off)
            if path == "/":
                break
            if path is None:
                raise SnapshotError(f"{name}: null node path at byte offset {off - 4}")
            if raw_sink is not None:
                (n,) = _I.unpack_from(mv, off)
                off += 4
                ndata: memoryview | None = None
                if n != -1:
                    if n < 0 or off + n > size:
                        raise SnapshotError(f"{name}: node {path or '/'}: bad data length {n}")
                    ndata = mv[off:off + n]
                    off += n
                if off + 68 > size:
                    raise SnapshotError(f"{name}: node {path or '/'} is cut short")
                (ref,) = _Q.unpack_from(mv, off)
                stat = mv[off + 8:off + 68]
                off += 68
                acl = open_acl if ref == OPEN_ACL_ID else acls.get(ref)
                if acl is None:
                    acl = _missing(name, path, ref, missing_acl)
                if first is None:
                    first = path
                raw_sink(path, ndata, acl, stat)
                continue
            node, off = DataNode.read(mv, off)
            if node.acl == OPEN_ACL_ID:
                acl = list(OPEN_ACL_UNSAFE)
            elif node.acl in acls:
                acl = list(acls[node.acl])
            else:
                acl = _missing(name, path, node.acl, missing_acl)
            if path and path[: path.rfind("/")] not in seen:
                raise SnapshotError(f"{name}: node {path} comes before its parent")
            seen.add(path)
            if first is None:
                first = path
            if sink is not None:
                sink(path, node.data, acl, node.stat)
            else:
                nodes.append((path, node.data, acl, node.stat))
        off = _check_seal(mv, off, name)
        digest = None
        if off < len(mv):
            z, version = _Q.unpack_from(mv, off)[0], _I.unpack_from(mv, off + 8)[0]
            off += 12
            if version < 2:
                text, off = read_string(mv, off)
                value = int(text, 16) if text else 0
            else:
                value = _Q.unpack_from(mv, off)[0]
                off += 8
            digest = ZxidDigest(z, version, value)
            off = _check_seal(mv, off, name)
        if off != len(mv):
            raise SnapshotError(f"{name}: {len(mv) - off} unexpected bytes after the seal")
    except (struct.error, JuteError, IndexError, ValueError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"{name}: truncated or unreadable: {exc}") from None
    if first != "":
        raise SnapshotError(f"{name}: the tree has no root")
    return sessions, nodes, digest


def check(data: bytes, name: str = "snapshot") -> int:
    """Read a snapshot's bytes through its seal without keeping its nodes, as a backup checks a
    file: SnapshotError if it is damaged (a child before its parent included). A node naming an
    ACL id the file's cache lacks is not damage: a fuzzy snapshot Apache writes and loads (see
    MissingAcl; the txns after it define the list). Returns the number of nodes."""
    seen: set[str] = set()

    def sink(path: str, _data: object, _acl: object, _stat: object) -> None:
        if path and path[:path.rfind("/")] not in seen:
            raise SnapshotError(f"{name}: node {path} comes before its parent")
        seen.add(path)

    parse_with_digest(data, name, raw_sink=sink, missing_acl=lambda _path, _ref: [])
    return len(seen)


def _missing(name: str, path: str, ref: int, missing_acl: MissingAcl | None) -> list[ACL]:
    if missing_acl is None:
        raise SnapshotError(f"{name}: node {path or '/'} names ACL id {ref}, not in the cache")
    return missing_acl(path, ref)


def _load_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        import gzip  # only for snapshots compressed by Apache's zookeeper.snapshot.compression.method

        try:
            return gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as exc:
            raise SnapshotError(f"{path}: bad gzip stream: {exc}") from None
    if path.name.endswith(".snappy"):
        raise SnapshotError(f"{path}: snappy-compressed snapshots are not supported")
    return path.read_bytes()


def read_snapshot(path: Path, sink: NodeSink | None = None, raw_sink: RawNodeSink | None = None,
                  missing_acl: MissingAcl | None = None) -> SnapshotData:
    """Read and verify one snapshot file (plain or .gz); with ``sink`` or ``raw_sink``, its
    nodes go there one by one (see ``parse_with_digest``, also for ``missing_acl``) and
    ``nodes`` stays empty."""
    p = Path(path)
    sessions, nodes, digest = parse_with_digest(_load_bytes(p), str(p), sink, raw_sink, missing_acl)
    return SnapshotData(snapshot_zxid(p), sessions, nodes, p, digest)


def load_newest_valid(data_dir: Path) -> SnapshotData | None:
    """The newest snapshot that reads back whole; damaged ones are skipped, saying why."""
    for path in find_snapshots(data_dir):
        try:
            return read_snapshot(path)
        except (SnapshotError, OSError) as exc:
            log.warning("skipping snapshot %s: %s", path.name, exc)
    return None


__all__ = [
    "DataNode", "EMPTY_DIGEST", "MissingAcl", "Node", "OPEN_ACL_UNSAFE", "SNAP_MAGIC", "SnapshotData", "SnapshotError", "ZxidDigest",
    "Row", "digest_of", "find_snapshots", "install_snapshot_bytes", "load_newest_valid", "looks_sealed", "parse",
    "read_snapshot", "serialize", "serialize_rows", "snapshot_name", "snapshot_zxid", "write_snapshot",
    "write_snapshot_rows", "zxid_digest",
]
