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
    def stat9(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner, at once."""


def counted(path: str) -> bool:
    """Whether ``path`` takes part in the tree digest (not under /zookeeper/)."""
    return not path.startswith(EXCLUDED_PREFIX)


def node_digest(path: str, node: NodeLike) -> int:
    """One node's digest (an unsigned 32-bit CRC), 0 for nodes under /zookeeper/."""
    return stat_digest(path, node.data, node.stat9())


Stat9 = tuple[int, int, int, int, int, int, int, int, int]  # NodeLike.stat9's order


def stat_digest(path: str, data: bytes | None, stat9: Stat9) -> int:
    """The digest of a node at ``path`` with ``data`` and this stat (czxid, mzxid, pzxid, ctime,
    mtime, version, cversion, aversion, ephemeralOwner)."""
    if path.startswith(EXCLUDED_PREFIX):
        return 0
    crc = zlib.crc32(b"" if path == "/" else path.encode("utf-8"))
    if data:
        crc = zlib.crc32(data, crc)
    try:
        stat = _STAT.pack(*stat9)
    except struct.error:  # a value outside Java's signed range: its two's complement bits
        cz, mz, pz, ct, mt, v, cv, av, ow = stat9
        stat = _USTAT.pack(cz & M64, mz & M64, pz & M64, ct & M64, mt & M64, v & _M32, cv & _M32, av & _M32,
                           ow & M64)
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

    def stat9(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        return (self.czxid, self.mzxid, self.pzxid, self.ctime, self.mtime, self.version, self.cversion,
                self.aversion, self.owner)


def full_digest(nodes: Iterable[tuple[str, NodeLike]]) -> int:
    """The tree digest computed afresh from every (path, node), the root once as "/"."""
    return sum(node_digest(p, n) for p, n in nodes) & M64


def to_long(value: int) -> int:
    """An unsigned 64-bit digest as the signed Java long a TxnDigest carries."""
    value &= M64
    return value - (1 << 64) if value >> 63 else value


def _parent(path: str) -> str:
    return path[:path.rfind("/")] or "/"


# A node as the outstanding txns leave it, in the Predictor's overlay: (data, stat9, digest)
_Entry = tuple[bytes | None, Stat9, int]


class Predictor:
    """The tree digest each prepared txn leaves, from the committed tree plus an overlay of the
    nodes the outstanding txns change. ``lookup`` reads a node of the committed tree as a
    (data, stat9, digest) tuple (DataTree.digest_entry), ``tree_digest`` its digest;
    ``committed(zxid)`` forgets what the tree now shows.

    The overlay keeps each node as a (data, stat9, digest) tuple: a write reads its node's stat
    once and makes one tuple, not an object per node it touches."""

    def __init__(self, lookup: Callable[[str], _Entry | None], tree_digest: Callable[[], int],
                 decode_sub: Callable[[int, bytes], Any]) -> None:
        self.lookup = lookup
        self.tree_digest = tree_digest
        self.decode_sub = decode_sub  # (type, bytes) -> body, for the txns inside a multi
        self.overlay: dict[str, tuple[int, _Entry | None]] = {}
        # (zxid, path) of every overlay entry made, and (zxid, None) for a txn that made none:
        # non-empty while any txn is outstanding
        self.order: deque[tuple[int, str | None]] = deque()
        self.last = 0

    def current(self) -> int:
        """The digest once every outstanding txn is applied."""
        return self.last if self.order else self.tree_digest() & M64

    def advance(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        """Take one prepared txn; returns the (unsigned) tree digest it will leave."""
        order = self.order
        base = self.last if order else self.tree_digest() & M64
        made = len(order)
        if op == Op.setData:  # the usual write, as _delta takes it (_get and _put inline)
            path = body.path
            overlay = self.overlay
            entry = overlay.get(path)
            node = entry[1] if entry is not None else self.lookup(path)
            stat, dig = (node[1], node[2]) if node is not None else (None, 0)
            if stat is None:
                delta = 0
            else:
                cz, _mz, pz, ct, _mt, _v, cv, av, ow = stat
                data = body.data
                stat = (cz, zxid, pz, ct, time, body.version, cv, av, ow)
                d = stat_digest(path, data, stat)
                overlay[path] = (zxid, (data, stat, d))
                order.append((zxid, path))
                delta = d - dig
        elif op in _CREATES:  # the usual write that _delta would hand on, without its dispatch
            delta = self._create(zxid, op, body, time, client)
        else:
            delta = self._delta(zxid, op, body, time, client)
        digest = (base + delta) & M64
        self.last = digest
        if len(order) == made:
            order.append((zxid, None))
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
    def _get(self, path: str) -> _Entry | None:
        entry = self.overlay.get(path)
        if entry is not None:
            return entry[1]
        return self.lookup(path)

    def _put(self, zxid: int, path: str, data: bytes | None, stat9: Stat9) -> int:
        """Record the node as the txn leaves it; returns its new digest."""
        d = stat_digest(path, data, stat9)
        self.overlay[path] = (zxid, (data, stat9, d))
        self.order.append((zxid, path))
        return d

    def _gone(self, zxid: int, path: str) -> None:
        """Record that the txn deletes the node."""
        self.overlay[path] = (zxid, None)
        self.order.append((zxid, path))

    def _delta(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        if op == Op.setData or op == Op.reconfig or op == Op.setACL:
            path = body.path
            node = self._get(path)
            if node is None:
                return 0
            data, (cz, mz, pz, ct, mt, v, cv, av, ow), dig = node
            if op == Op.setACL:
                return self._put(zxid, path, data, (cz, mz, pz, ct, mt, v, cv, body.version, ow)) - dig
            return self._put(zxid, path, body.data, (cz, zxid, pz, ct, time, body.version, cv, av, ow)) - dig
        if op in _CREATES:
            return self._create(zxid, op, body, time, client)
        if op == Op.delete or op == Op.deleteContainer:
            return self._delete(zxid, body.path)
        if op == Op.multi:
            subs = [(t.type, self.decode_sub(t.type, t.data)) for t in body.txns]
            if any(t == Op.error for t, _ in subs):
                return 0
            return sum(self._delta(zxid, t, b, time, client) for t, b in subs)
        if op == Op.closeSession and body is not None:
            delta = 0
            for p in sorted(body.paths2Delete or (), key=lambda s: (-s.count("/"), s)):
                node = self._get(p)
                if node is not None and node[1][8] == client:
                    delta += self._delete(zxid, p)
            return delta
        return 0  # createSession, check, error: the tree stays as it is

    def _create(self, zxid: int, op: int, body: Any, time: int, client: int) -> int:
        path = body.path
        parent_path = path[:path.rfind("/")] or "/"
        parent = self._get(parent_path)
        if parent is None:
            return 0
        overlay = self.overlay
        entry = overlay.get(path)  # as _get, without its tuple
        if (entry[1] if entry is not None else self.lookup(path)) is not None:
            return 0
        if op == Op.createContainer:
            owner = CONTAINER_OWNER
        elif op == Op.createTTL:
            owner = TTL_OWNER_MASK | body.ttl
        else:
            owner = client if body.ephemeral else 0
        pdata, (cz, mz, pz, ct, mt, v, cv, av, ow), pdig = parent
        cversion = body.parentCVersion
        if cversion == -1:
            cversion = cv + 1
        if cversion > cv:
            cv = cversion
            pz = zxid
        # as _put, twice
        pstat = (cz, mz, pz, ct, mt, v, cv, av, ow)
        new_pdig = stat_digest(parent_path, pdata, pstat)
        stat = (zxid, zxid, zxid, time, time, 0, 0, 0, owner)
        data = body.data
        dig = stat_digest(path, data, stat)
        overlay[parent_path] = (zxid, (pdata, pstat, new_pdig))
        overlay[path] = (zxid, (data, stat, dig))
        order = self.order
        order.append((zxid, parent_path))
        order.append((zxid, path))
        return new_pdig - pdig + dig

    def _delete(self, zxid: int, path: str) -> int:
        node = self._get(path)
        parent_path = _parent(path)
        parent = self._get(parent_path)
        if node is None or parent is None:
            return 0
        pdata, (cz, mz, pz, ct, mt, v, cv, av, ow), pdig = parent
        if zxid > pz:
            pz = zxid
        new_parent = self._put(zxid, parent_path, pdata, (cz, mz, pz, ct, mt, v, cv, av, ow))
        self._gone(zxid, path)
        return new_parent - pdig - node[2]


__all__ = ["DIGEST_VERSION", "M64", "NodeLike", "Predictor", "counted", "entry_digest", "full_digest", "node_digest",
           "stat_digest", "to_long"]
