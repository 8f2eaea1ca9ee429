"""The data tree digest as Apache ZooKeeper 3.8 computes it (DigestCalculator, version 2).

Pure: numbers from nodes, no tree of its own. A node's digest is the CRC32 of its path (the
root as ""), its data and 60 bytes of stat (czxid, mzxid, pzxid, ctime, mtime as 8-byte
longs; version, cversion, aversion as 4-byte ints; ephemeralOwner as a long; big-endian).
Nodes under ``/zookeeper/`` count 0 (``/zookeeper`` itself counts). The tree digest is the sum
of its nodes' digests modulo 2**64 (Apache's AdHash), so a change costs one subtraction and
one addition per node it touches, never a walk of the tree.

A leader sends, with each proposal, the tree digest its txn will leave once applied
(``TxnDigest``); learners compare it with their own tree after applying it. ``Predictor``
computes that number before the txn is applied, over the txns already proposed but not yet
committed, as Apache's PrepRequestProcessor does with its change records.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .codes import CONTAINER_OWNER, TTL_OWNER_MASK, Op
from .paths import ZOOKEEPER

DIGEST_VERSION = 2  # DigestCalculator.DIGEST_VERSION in Apache 3.8
EXCLUDED_PREFIX = ZOOKEEPER + "/"  # ZooDefs.ZOOKEEPER_NODE_SUBTREE
M64 = (1 << 64) - 1
_M32 = (1 << 32) - 1
_STAT = struct.Struct(">qqqqqiiiq")
_USTAT = struct.Struct(">QQQQQIIIQ")
_CREATES = (Op.create, Op.create2, Op.createContainer, Op.createTTL)


class NodeLike(Protocol):
    """What a digest reads of a node (datatree.Node has these, read-only); ``dig`` is the
    node's digest as last counted (kept by whoever owns the node)."""

    @property
    def data(self) -> bytes | None: ...
    @property
    def czxid(self) -> int: ...
    @property
    def mzxid(self) -> int: ...
    @property
    def pzxid(self) -> int: ...
    @property
    def ctime(self) -> int: ...
    @property
    def mtime(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def cversion(self) -> int: ...
    @property
    def aversion(self) -> int: ...
    @property
    def owner(self) -> int: ...
    @property
    def dig(self) -> int: ...


def counted(path: str) -> bool:
    """Whether ``path`` takes part in the tree digest (not under /zookeeper/)."""
    return not path.startswith(EXCLUDED_PREFIX)


def node_digest(path: str, node: NodeLike) -> int:
    """One node's digest (an unsigned 32-bit CRC), 0 for nodes under /zookeeper/."""
    if path.startswith(EXCLUDED_PREFIX):
        return 0
    crc = zlib.crc32(b"" if path == "/" else path.encode("utf-8"))
    data = node.data
    if data:
        crc = zlib.crc32(data, crc)
    try:
        stat = _STAT.pack(node.czxid, node.mzxid, node.pzxid, node.ctime, node.mtime, node.version,
                          node.cversion, node.aversion, node.owner)
    except struct.error:  # a value outside Java's signed range: its two's complement bits
        stat = _USTAT.pack(node.czxid & M64, node.mzxid & M64, node.pzxid & M64, node.ctime & M64,
                           node.mtime & M64, node.version & _M32, node.cversion & _M32,
                           node.aversion & _M32, node.owner & M64)
    return zlib.crc32(stat, crc)


def entry_digest(path: str, data: bytes | None, stat: Any) -> int:
    """One node's digest from its path and a StatPersisted (czxid .. ephemeralOwner), as a
    snapshot stores it: what ``node_digest`` gives for the same node."""
    return node_digest(path or "/", _StatView(data, stat))


class _StatView:
    __slots__ = ("data", "czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "owner", "dig")

    def __init__(self, data: bytes | None, s: Any) -> None:
        self.data = data
        self.czxid, self.mzxid, self.pzxid = s.czxid, s.mzxid, s.pzxid
        self.ctime, self.mtime = s.ctime, s.mtime
        self.version, self.cversion, self.aversion = s.version, s.cversion, s.aversion
        self.owner = s.ephemeralOwner
        self.dig = 0


def full_digest(nodes: Iterable[tuple[str, NodeLike]]) -> int:
    """The tree digest computed afresh from every (path, node), the root once as "/"."""
    return sum(node_digest(p, n) for p, n in nodes) & M64


def to_long(value: int) -> int:
    """An unsigned 64-bit digest as the signed Java long a TxnDigest carries."""
    value &= M64
    return value - (1 << 64) if value >> 63 else value


class State:
    """A node as it will be once the outstanding txns are applied (only what a digest reads)."""

    __slots__ = ("data", "czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
                 "owner", "dig")

    def __init__(self, data: bytes | None, czxid: int, mzxid: int, pzxid: int, ctime: int, mtime: int,
                 version: int, cversion: int, aversion: int, owner: int) -> None:
        self.data = data
        self.czxid = czxid
        self.mzxid = mzxid
        self.pzxid = pzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.owner = owner
        self.dig = 0

    @classmethod
    def of(cls, n: NodeLike) -> State:
        return cls(n.data, n.czxid, n.mzxid, n.pzxid, n.ctime, n.mtime, n.version, n.cversion, n.aversion,
                   n.owner)


def _parent(path: str) -> str:
    return path[:path.rfind("/")] or "/"


class Predictor:
    """The tree digest each prepared txn leaves, from the committed tree plus an overlay of the
    nodes the outstanding txns change. ``lookup`` reads the committed tree, ``tree_digest`` its
    digest; ``committed(zxid)`` forgets what the tree now shows."""

    def __init__(self, lookup: Callable[[str], NodeLike | None], tree_digest: Callable[[], int],
                 decode_sub: Callable[[int, bytes], Any]) -> None:
        self.lookup = lookup
        self.tree_digest = tree_digest
        self.decode_sub = decode_sub  # (type, bytes) -> body, for the txns inside a multi
        self.overlay: dict[str, tuple[int, State | None]] = {}
        self.order: deque[tuple[int, str | None]] = deque()
        self.last = 0

    def current(self) -> int:
        """The digest once every outstanding txn is applied."""
        return self.last if self.order else self.tree_digest() & M64

    def advance(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        """Take one prepared txn; returns the (unsigned) tree digest it will leave."""
        digest = (self.current() + self._delta(zxid, op, body, time, client)) & M64
        self.last = digest
        self.order.append((zxid, None))
        return digest

    def committed(self, zxid: int) -> None:
        order = self.order
        overlay = self.overlay
        while order and order[0][0] <= zxid:
            z, path = order.popleft()
            if path is not None:
                entry = overlay.get(path)
                if entry is not None and entry[0] <= zxid:
                    del overlay[path]

    def reset(self) -> None:
        self.overlay.clear()
        self.order.clear()
        self.last = 0

    # ------------------------------------------------------------ the txns' effects
    def _get(self, path: str) -> NodeLike | None:
        entry = self.overlay.get(path)
        if entry is not None:
            return entry[1]
        return self.lookup(path)

    def _put(self, zxid: int, path: str, state: State | None) -> int:
        """Record the node as the txn leaves it; returns its new digest (0 when deleted)."""
        self.overlay[path] = (zxid, state)
        self.order.append((zxid, path))
        if state is None:
            return 0
        d = state.dig = node_digest(path, state)
        return d

    def _delta(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        if op == Op.multi:
            subs = [(t.type, self.decode_sub(t.type, t.data)) for t in body.txns]
            if any(t == Op.error for t, _ in subs):
                return 0
            return sum(self._delta(zxid, t, b, time, client) for t, b in subs)
        if op in _CREATES:
            return self._create(zxid, op, body, time, client)
        if op in (Op.delete, Op.deleteContainer):
            return self._delete(zxid, body.path)
        if op in (Op.setData, Op.reconfig, Op.setACL):
            node = self._get(body.path)
            if node is None:
                return 0
            new = State.of(node)
            if op == Op.setACL:
                new.aversion = body.version
            else:
                new.data = body.data
                new.mzxid = zxid
                new.mtime = time
                new.version = body.version
            return self._put(zxid, body.path, new) - node.dig
        if op == Op.closeSession and body is not None:
            delta = 0
            for p in sorted(body.paths2Delete or (), key=lambda s: (-s.count("/"), s)):
                node = self._get(p)
                if node is not None and node.owner == client:
                    delta += self._delete(zxid, p)
            return delta
        return 0  # createSession, check, error: the tree stays as it is

    def _create(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        path = body.path
        parent_path = _parent(path)
        parent = self._get(parent_path)
        if parent is None or self._get(path) is not None:
            return 0
        if op == Op.createContainer:
            owner = CONTAINER_OWNER
        elif op == Op.createTTL:
            owner = TTL_OWNER_MASK | body.ttl
        else:
            owner = client if body.ephemeral else 0
        p = State.of(parent)
        cversion = body.parentCVersion
        if cversion == -1:
            cversion = p.cversion + 1
        if cversion > p.cversion:
            p.cversion = cversion
            p.pzxid = zxid
        child = State(body.data, zxid, zxid, zxid, time, time, 0, 0, 0, owner)
        return self._put(zxid, parent_path, p) - parent.dig + self._put(zxid, path, child)

    def _delete(self, zxid: int, path: str) -> int:
        node = self._get(path)
        parent_path = _parent(path)
        parent = self._get(parent_path)
        if node is None or parent is None:
            return 0
        p = State.of(parent)
        if zxid > p.pzxid:
            p.pzxid = zxid
        return self._put(zxid, parent_path, p) - parent.dig + self._put(zxid, path, None) - node.dig


__all__ = ["DIGEST_VERSION", "M64", "NodeLike", "Predictor", "State", "counted", "entry_digest", "full_digest", "node_digest",
           "to_long"]
