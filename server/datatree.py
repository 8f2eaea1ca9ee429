"""The znode tree and how committed transactions change it (ZooKeeper's DataTree).

Pure: ``apply`` takes a decoded transaction and returns what the client reply needs
plus the watch triggers it fired; it never touches sockets, clocks or files. Replaying
the txn log through ``apply`` rebuilds the same tree the live server had.
"""

from __future__ import annotations

import operator
import struct
import zlib
from collections.abc import Iterable, Iterator, KeysView
from typing import Any, Final, cast

from . import paths, znode
from .acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, WORLD_ANYONE, AclCache
from .codes import CONTAINER_OWNER, TTL_OWNER_MASK, Err, EventType, Op, ZkError
from .digest import EXCLUDED_PREFIX, M64
from .javaorder import INITIAL_CAPACITY, grown_capacity, hashset_order
from .metrics import PerNamespace
from .quota import Quotas
from .records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Stat,
    StatPersisted,
    Txn,
    TxnHeader,
)
from .znode import Dir, Leaf, Node, acl_of, stat_of, view
from .znode import children_of as _children
from .znode import data_of as _data
from .znode import head_of as _head

ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"
CONFIG = "/zookeeper/config"

# (EventType, path, the ACL a watcher needs READ on to be told: the node's, or its parent's for
# NodeChildrenChanged), as Apache 3.8 with ZOOKEEPER-4799
Event = tuple[int, str, tuple[ACL, ...]]


# ---------------------------------------------------------------- znodes
# The nodes and their packed 68-byte head are znode.py's (pure Python in every build: a leaf is
# stored as plain bytes, a Leaf is a view of one); the names below are its, bound once (Final: the compiled build reads
# them without a lookup by name).
_STAT60: Final = znode.STAT60
_USTAT60: Final = znode.USTAT60
_TAIL: Final = znode.TAIL
_HEAD: Final = znode.HEAD
_Q: Final = znode.Q64
_I: Final = znode.I32
_U: Final = znode.U32
_M32: Final = (1 << 32) - 1
_CZXID: Final = znode.CZXID
_MZXID: Final = znode.MZXID
_PZXID: Final = znode.PZXID
_CTIME: Final = znode.CTIME
_MTIME: Final = znode.MTIME
_VERSION: Final = znode.VERSION
_CVERSION: Final = znode.CVERSION
_AVERSION: Final = znode.AVERSION
_OWNER: Final = znode.OWNER
_DIG: Final = znode.DIG
_ACLW: Final = znode.ACLW
_crc32: Final = zlib.crc32
HEAD_SIZE: Final = znode.HEAD_SIZE  # 68

# every tree of the process interns its ACLs here (they are few); a head names one by index
_ACLS: Final = AclCache()
_ACL_TABLE: Final = znode.ACL_TABLE
_ACL_INDEX: Final[dict[int, int]] = {}  # id() of an interned tuple (kept alive by the table) -> index
# the ACL of a snapshot node whose ACL id the snapshot's cache lacks, until a replayed txn gives
# it its list (DataTree.pending_acls), or for good when none does: it grants nothing (only a
# super user passes; an empty list would grant everything)
NO_ACCESS_ACL = (ACL(0, WORLD_ANYONE),)


def _acl_word(acl: list[ACL] | tuple[ACL, ...]) -> int:
    """The ACL word of ``acl`` (its table index, shifted left once)."""
    i = _ACL_INDEX.get(id(acl))  # an interned tuple already (a node's own ACL)
    if i is None:
        t = _ACLS.intern(acl)
        i = _ACL_INDEX.get(id(t))
        if i is None:
            i = _ACL_INDEX[id(t)] = len(_ACL_TABLE)
            _ACL_TABLE.append(t)
    return i << 1


def _stat60(czxid: int, mzxid: int, pzxid: int, ctime: int, mtime: int, version: int, cversion: int,
            aversion: int, owner: int) -> bytes:
    try:
        return _STAT60.pack(czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner)
    except struct.error:  # outside Java's signed range: its two's complement bits, as Java keeps it
        return _USTAT60.pack(czxid & M64, mzxid & M64, pzxid & M64, ctime & M64, mtime & M64, version & _M32,
                             cversion & _M32, aversion & _M32, owner & M64)


def _acl_bits(head: bytes) -> int:
    """The ACL word of a head, without its null-data bit."""
    return int(_I.unpack_from(head, _ACLW)[0]) & ~1


def _digest_of(path: str, data: bytes | None, stat60: bytes) -> int:
    """digest.node_digest of a node whose stat packs to ``stat60``."""
    if path.startswith(EXCLUDED_PREFIX):
        return 0
    crc = _crc32(b"" if path == "/" else path.encode("utf-8"))
    if data:
        crc = _crc32(data, crc)
    return _crc32(stat60, crc)


def _leaf(stat60: bytes, dig: int, aclw: int, data: bytes | None) -> bytes:
    """A packed leaf: the head, then the data (a null-data bit in the ACL word when data is None)."""
    if data is None:
        return stat60 + _TAIL.pack(dig, aclw | 1)
    return b"".join((stat60, _TAIL.pack(dig, aclw), data))


def new_node(data: bytes | None, acl: tuple[ACL, ...], zxid: int, time: int, owner: int) -> Node:
    """A new znode as a create leaves it (its digest share not counted yet)."""
    return Leaf(_leaf(_stat60(zxid, zxid, zxid, time, time, 0, 0, 0, owner), 0, _acl_word(acl), data))


def _size(data: bytes | None) -> int:
    return len(data) if data else 0


def child_names(children: dict[str, Any] | None) -> list[str]:
    """The names of a node's children (its ``children`` keys are their full paths)."""
    if not children:
        return []
    cut = next(iter(children)).rfind("/") + 1
    return [p[cut:] for p in children]


def is_ttl_owner(owner: int) -> bool:
    return owner != CONTAINER_OWNER and (owner & TTL_OWNER_MASK) == TTL_OWNER_MASK and owner < 0


def ttl_of(owner: int) -> int:
    return owner & ((1 << 40) - 1)


def session_owner(owner: int) -> bool:
    """True when ``owner`` names a real session (an ephemeral), not 0/container/TTL."""
    return owner != 0 and owner != CONTAINER_OWNER and not is_ttl_owner(owner)


_GROW_FROM = INITIAL_CAPACITY * 3 // 4  # a parent's children past this may grow its HashSet
_CREATES: Final = frozenset((Op.create, Op.create2, Op.createContainer, Op.createTTL))
_SET_DATA: Final = Op.setData
# bound once (Final: the compiled build reads them without a lookup by name)
_NODE_CREATED: Final = EventType.NodeCreated
_NODE_DATA_CHANGED: Final = EventType.NodeDataChanged
_NODE_CHILDREN_CHANGED: Final = EventType.NodeChildrenChanged


class ApplyResult:
    """What applying one txn produced: error code, reply value, watch triggers. A create's
    value is (path, the new node as packed: znode.leaf_stat gives its Stat)."""

    __slots__ = ("err", "value", "events", "multi")

    def __init__(self, err: int = 0, value: Any = None, events: list[Event] | None = None,
                 multi: list[tuple[int, int, Any]] | None = None) -> None:
        self.err = err
        self.value = value
        self.events = events if events is not None else []
        self.multi = multi  # per-op (type, err, value) for multi


class NodeTable:
    """``DataTree.nodes``: its znodes by path, each as a Node (a ``Leaf`` view of a packed leaf,
    made on each look-up), read-only; a mapping over ``DataTree.packed``, where the tree keeps
    them as they are stored."""

    __slots__ = ("packed",)

    def __init__(self, packed: dict[str, bytes | Dir]) -> None:
        self.packed = packed

    def __getitem__(self, path: str) -> Node:
        return view(self.packed[path])

    def get(self, path: str, default: Node | None = None) -> Node | None:
        node = self.packed.get(path)
        return default if node is None else view(node)

    def __contains__(self, path: object) -> bool:
        return path in self.packed

    def __len__(self) -> int:
        return len(self.packed)

    def __iter__(self) -> Iterator[str]:
        return iter(self.packed)

    def keys(self) -> KeysView[str]:
        return self.packed.keys()

    def items(self) -> Iterator[tuple[str, Node]]:
        for path, node in self.packed.items():
            yield path, view(node)

    def values(self) -> Iterator[Node]:
        for node in self.packed.values():
            yield view(node)


class DataTree:
    """All znodes by path, plus indexes for ephemerals, containers and TTL nodes."""

    def __init__(self) -> None:
        self.acls = _ACLS  # the process's ACL table: nodes name their ACL by its place in it
        # path -> the znode as stored: a leaf packed in plain bytes, or a Dir (znode.py)
        self.packed: dict[str, bytes | Dir] = {}
        self.nodes = NodeTable(self.packed)  # the same, each as a Node
        # path -> the Java HashSet table size of its children, for nodes past INITIAL_CAPACITY
        self.capacities: dict[str, int] = {}
        self.ephemerals: dict[int, set[str]] = {}
        self.containers: set[str] = set()
        self.ttls: set[str] = set()
        self.last_zxid = 0
        # path -> ACL id, for snapshot nodes naming an id their snapshot's cache lacks (a fuzzy
        # snapshot's, see Loader.missing_acl): they hold NO_ACCESS_ACL until the txn log's
        # replay gives them the list (a create of the existing node, a setACL) or deletes them
        self.pending_acls: dict[str, int] = {}
        self.quotas = Quotas()
        # Apache's tree digest (digest.py): kept by every change as it happens; 0 when disabled
        # (zookeeper.digest.enabled=false), as Apache's DigestCalculator then counts nothing
        self.digest_enabled = True
        self.digest = 0
        self._install_system_nodes()
        # bytes written per top-level namespace (mntr): a namespace's row is the value of its
        # top-level znode in the root's children while that znode exists (no entry of its own)
        self.writes = PerNamespace(cast(Dir, self.packed["/"]).children)
        # Apache's running count of path and data bytes (mntr's approximate_data_size): kept
        # by creates, deletes and setData and by a snapshot's nodes as they are loaded; the quota
        # stats rewritten in place do not move it, as in Apache
        self.approx_bytes = self._count_bytes()

    # ---------------------------------------------------------------- setup
    def _install_system_nodes(self) -> None:
        open_acl = _acl_word(OPEN_ACL_UNSAFE)
        zero = _stat60(0, 0, 0, 0, 0, 0, 0, 0, 0)
        # as ZooKeeper, the system nodes are added without counting a creation (Stat shows -1, -2)
        self.packed.update({"/": Dir(zero + _TAIL.pack(0, open_acl), b"", {ZOOKEEPER: None}),
                            ZOOKEEPER: Dir(zero + _TAIL.pack(0, open_acl), b"", {QUOTA: None, CONFIG: None}),
                            QUOTA: _leaf(zero, 0, open_acl, b""),
                            CONFIG: _leaf(_stat60(0, 0, 0, 0, 0, 0, 0, -1, 0), 0, _acl_word(READ_ACL_UNSAFE), b"")})
        self.recompute_digest()

    def snapshot_rows(self) -> SnapshotRows:
        """The znodes as a snapshot at ``last_zxid`` writes them (see SnapshotRows)."""
        return SnapshotRows(self.packed.items(), self.last_zxid)

    # ---------------------------------------------------------------- digest
    def tree_digest(self) -> int:
        """The tree digest (unsigned 64 bits) as Apache's DataTree.getTreeDigest has it."""
        return self.digest & M64

    def recompute_digest(self) -> int:
        """Count the digest afresh from every node (after a switch of digest_enabled)."""
        for path, node in list(self.packed.items()):
            head = _head(node)
            self._put(path, node, _data(node), _acl_bits(head), head[:60])
        self.digest = total = sum(int(_U.unpack_from(_head(n), _DIG)[0]) for n in self.packed.values())
        return total

    def set_digest_enabled(self, on: bool) -> None:
        self.digest_enabled = on
        self.recompute_digest()

    def _put(self, path: str, node: bytes | Dir, data: bytes | None, aclw: int, stat60: bytes,
             old_dig: int = -1) -> bytes | Dir:
        """Give ``path``'s node this data, ACL word and stat, its digest share counted afresh
        (``old_dig``: its share until now, when the caller has it); the node that now holds
        them (a packed leaf is replaced, a Dir changed in place)."""
        d = _digest_of(path, data, stat60) if self.digest_enabled else 0
        self.digest += d - (int(_U.unpack_from(_head(node), _DIG)[0]) if old_dig < 0 else old_dig)
        if type(node) is Dir:
            node.head = stat60 + _TAIL.pack(d, aclw | (data is None))
            node.raw_data = data
            return node
        new = _leaf(stat60, d, aclw, data)
        self.packed[path] = new  # the key keeps its string object (the parent's children name it)
        return new

    def _dir(self, path: str, leaf: bytes | Dir) -> Dir:
        """``path``'s node as a Dir (a packed leaf about to take its first child is replaced)."""
        if type(leaf) is Dir:
            return leaf
        d = Dir(cast(bytes, leaf)[:HEAD_SIZE], _data(leaf), {})
        self.packed[path] = d
        return d

    def set_config(self, data: bytes, zxid: int, time: int) -> None:
        """Show the ensemble's membership in /zookeeper/config without a txn, as Apache does at
        start-up and when a leader stamps a static config with its first zxid (version and
        aversion -1, mzxid the config's version)."""
        node = self.packed[CONFIG]
        self.approx_bytes += _size(data) - _size(_data(node))
        head = _head(node)
        cz, _mz, pz, ct, _mt, _v, cv, _av, ow = _STAT60.unpack_from(head)
        self._put(CONFIG, node, data, _acl_bits(head), _stat60(cz, zxid, pz, ct, time, -1, cv, -1, ow))

    # ---------------------------------------------------------------- reads
    def get(self, path: str) -> Node | None:
        node = self.packed.get(path)
        return None if node is None else view(node)

    def digest_entry(self, path: str) -> tuple[bytes | None, tuple[int, int, int, int, int, int, int, int, int], int] | None:
        """``path``'s data, stat (czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion,
        owner) and digest share, as digest.Predictor looks a committed node up; None when there
        is none."""
        node = self.packed.get(path)
        if node is None:
            return None
        if type(node) is bytes:
            head = node
            data = None if node[HEAD_SIZE - 1] & 1 else node[HEAD_SIZE:]
        else:
            dnode = cast(Dir, node)
            head = dnode.head
            data = dnode.raw_data
        return data, _STAT60.unpack_from(head), int(_U.unpack_from(head, _DIG)[0])

    def node_count(self) -> int:
        """Znodes as Apache ZooKeeper counts them: its table holds the root twice ("" and "/"),
        so an empty server says 5 (srvr's Node count, mntr's zk_znode_count)."""
        return len(self.packed) + 1

    # the quota bookkeeping's view of the tree (quota.TreeView); "" is the root, as in Apache
    def data_of(self, path: str) -> bytes | None | int:
        node = self.packed.get(path or "/")
        return -1 if node is None else _data(node)

    def children_of(self, path: str) -> list[str]:
        node = self.packed.get(path or "/")
        return child_names(_children(node)) if node is not None else []

    def replace_data(self, path: str, data: bytes) -> None:
        path = path or "/"
        node = self.packed.get(path)
        if node is not None:
            head = _head(node)
            self._put(path, node, data, _acl_bits(head), head[:60])

    def snapshot_loaded(self) -> None:
        """After a snapshot's nodes are in: find the quotas and count their usage again (Apache's
        setupQuota). The bytes (approx_bytes) and the digest were counted node by node as the
        nodes went in (``load_node``, ``Loader``), so the quota stats rewritten here do not move
        the bytes, as in Apache."""
        self.quotas.rebuild(self)

    def children_sorted(self, node: Node) -> list[str]:
        return sorted(child_names(node.children))

    def capacity_of(self, path: str) -> int:
        """The table size of the java.util.HashSet Apache would hold ``path``'s children in."""
        return self.capacities.get(path, INITIAL_CAPACITY)

    def _grow(self, path: str, size: int) -> None:
        if size > INITIAL_CAPACITY * 3 // 4:
            cap = self.capacities.get(path, INITIAL_CAPACITY)
            if size > cap * 3 // 4:
                self.capacities[path] = grown_capacity(cap, size)

    def children_listed(self, node: Node) -> list[str]:
        """Children in the order Apache ZooKeeper's getChildren returns them."""
        children = node.children
        if not children:
            return []
        first = next(iter(children))
        cut = first.rfind("/")
        parent_path = first[:cut] or "/"
        return hashset_order([p[cut + 1:] for p in children], self.capacities.get(parent_path, INITIAL_CAPACITY))

    def count_descendants(self, path: str) -> int:
        node = self.packed.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        total = 0
        stack = [(path, node)]
        while stack:
            p, n = stack.pop()
            ch = _children(n)
            if ch:
                for cp in ch:
                    child = self.packed.get(cp)
                    if child is not None:
                        total += 1
                        stack.append((cp, child))
        return total

    def ephemerals_of(self, session_id: int) -> set[str]:
        return self.ephemerals.get(session_id, set())

    def data_size(self) -> int:
        return self.approx_bytes

    def _count_bytes(self) -> int:
        return sum(len(p) + (len(n) - HEAD_SIZE if type(n) is bytes else _size(_data(n)))
                   for p, n in self.packed.items())

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Pre-order walk (parents before children), as snapshots store nodes."""
        stack = ["/"]
        while stack:
            p = stack.pop()
            node = self.packed.get(p)
            if node is None:
                continue
            yield p, view(node)
            ch = _children(node)
            if ch:
                # one parent's children share its prefix: their paths sort as their names do
                stack.extend(sorted(ch, reverse=True))

    # ---------------------------------------------------------------- mutation
    def _add(self, path: str, node: bytes, parent_cversion: int, zxid: int, node_dig: int,
             owner: int) -> tuple[ACL, ...]:
        """Put a new node under its parent (which must be there); returns the parent's ACL."""
        cut = path.rfind("/")
        parent_path = path[:cut] or "/"
        parent = self.packed.get(parent_path)
        if parent is None:
            raise ZkError(Err.NONODE, parent_path)
        children = _children(parent)
        if children is None:
            parent = self._dir(parent_path, parent)
            children = parent.children
            assert children is not None
        elif path in children:
            raise ZkError(Err.NODEEXISTS, path)
        # As Apache ZooKeeper 3.8: a node's cversion counts the creations of its children (a
        # delete changes only pzxid; Stat shows 2 * cversion - children). The txn's
        # parentCVersion wins when it is higher; a replayed create leaves both alone.
        cz, mz, _pz, ct, mt, v, cv, av, ow, dig, w = _HEAD.unpack_from(_head(parent))
        if parent_cversion == -1:
            parent_cversion = cv + 1
        if parent_cversion > cv:  # as _put, for the Dir the parent now is
            parent = cast(Dir, parent)
            data = parent.raw_data
            stat60 = _stat60(cz, mz, zxid, ct, mt, v, parent_cversion, av, ow)
            if not self.digest_enabled or parent_path.startswith(EXCLUDED_PREFIX):  # as _digest_of
                d = 0
            else:
                crc = _crc32(b"" if parent_path == "/" else parent_path.encode("utf-8"))
                if data:
                    crc = _crc32(data, crc)
                d = _crc32(stat60, crc)
            self.digest += d - dig
            parent.head = stat60 + _TAIL.pack(d, (w & ~1) | (data is None))
        children[path] = None  # the same string object as the key of self.packed
        n = len(children)
        if n > _GROW_FROM and n > self.capacities.get(parent_path, INITIAL_CAPACITY) * 3 // 4:  # as _grow
            self._grow(parent_path, n)
        self.packed[path] = node
        self.digest += node_dig
        if owner:
            self._track_owner(path, owner)
        return _ACL_TABLE[int(w) >> 1]

    def _track_owner(self, path: str, owner: int) -> None:
        """File a node under its (non-zero) ephemeralOwner's kind: container, TTL or session."""
        if owner == CONTAINER_OWNER:
            self.containers.add(path)
        elif is_ttl_owner(owner):
            self.ttls.add(path)
        else:
            self.ephemerals.setdefault(owner, set()).add(path)

    def create(self, path: str, data: bytes | None, acl: list[ACL] | tuple[ACL, ...], owner: int,
               parent_cversion: int, zxid: int, time: int) -> Node:
        return Leaf(self._create(path, data, acl, owner, parent_cversion, zxid, time)[0])

    def _create(self, path: str, data: bytes | None, acl: list[ACL] | tuple[ACL, ...], owner: int,
                parent_cversion: int, zxid: int, time: int) -> tuple[bytes, tuple[ACL, ...], tuple[ACL, ...]]:
        """create(), with the new (packed) node's ACL and its parent's (for the events)."""
        if self.pending_acls and path in self.pending_acls and path in self.packed:
            # a replayed create of a node a fuzzy snapshot already has (it fails below): its
            # ACL is the list the snapshot's node named by an id the cache did not have yet
            self._resolve_acl(path, acl)
        stat60 = _stat60(zxid, zxid, zxid, time, time, 0, 0, 0, owner)
        if not self.digest_enabled or path.startswith(EXCLUDED_PREFIX):  # as _digest_of
            d = 0
        else:
            crc = _crc32(b"" if path == "/" else path.encode("utf-8"))
            if data:
                crc = _crc32(data, crc)
            d = _crc32(stat60, crc)
        aclw = _acl_word(acl)
        # as _leaf: null data stays null, as in Apache
        node = stat60 + _TAIL.pack(d, aclw | 1) if data is None else b"".join((stat60, _TAIL.pack(d, aclw), data))
        if owner:  # as the head keeps it (a value outside Java's range wraps)
            owner = int(_Q.unpack_from(stat60, _OWNER)[0])
        parent_acl = self._add(path, node, parent_cversion, zxid, d, owner)
        n = len(data) if data else 0
        self.approx_bytes += len(path) + n
        self.quotas.created(self, path, data)
        self.writes.add(path, n)
        return node, _ACL_TABLE[aclw >> 1], parent_acl

    def delete(self, path: str, zxid: int) -> None:
        node = self.packed.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        parent_path = paths.parent_of(path)
        parent = self.packed.get(parent_path)
        if parent is None:
            raise ZkError(Err.NONODE, parent_path)
        del self.packed[path]
        if self.pending_acls:
            self.pending_acls.pop(path, None)
        if self.capacities:
            self.capacities.pop(path, None)  # a node made again starts with a new HashSet
        h = _head(node)
        owner = int(_Q.unpack_from(h, _OWNER)[0])
        self.digest -= int(_U.unpack_from(h, _DIG)[0])
        siblings = _children(parent)
        if siblings:
            # the root's children hold the per-namespace write counts (self.writes) as values
            row = siblings.pop(path, None)
            if row is not None:
                self.writes.park(path, row)
        cz, mz, pz, ct, mt, v, cv, av, ow, dig, w = _HEAD.unpack_from(_head(parent))
        if zxid > pz:
            self._put(parent_path, parent, _data(parent), w & ~1, _stat60(cz, mz, zxid, ct, mt, v, cv, av, ow), dig)
        if owner:
            if owner == CONTAINER_OWNER:
                self.containers.discard(path)
            elif is_ttl_owner(owner):
                self.ttls.discard(path)
            else:
                eph = self.ephemerals.get(owner)
                if eph is not None:
                    eph.discard(path)
                    if not eph:
                        del self.ephemerals[owner]
        data = _data(node)
        self.approx_bytes -= len(path) + (len(data) if data else 0)
        self.quotas.deleted(self, path, data)
        self.writes.add(path, 0)

    def set_data(self, path: str, data: bytes | None, version: int, zxid: int, time: int) -> Node:
        node = self.packed.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        old = _data(node)
        cz, _mz, pz, ct, _mt, _v, cv, av, ow, dig, w = _HEAD.unpack_from(_head(node))
        node = self._put(path, node, data, w & ~1, _stat60(cz, zxid, pz, ct, time, version, cv, av, ow), dig)
        self.approx_bytes += _size(data) - _size(old)
        self.quotas.data_changed(self, path, old, data)
        self.writes.add(path, len(data) if data else 0)
        return view(node)

    def _set_data(self, path: str, data: bytes | None, version: int, zxid: int, time: int) -> ApplyResult:
        """set_data() and its result (the reply's Stat, the event), the usual write in one call:
        what _put, _stat60, _digest_of, _leaf and Node.stat do, inline."""
        nodes = self.packed
        node = nodes.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        if type(node) is bytes:
            dnode = None
            cz, _mz, pz, ct, _mt, _v, cv, av, ow, dig, w = _HEAD.unpack_from(node)
            old = None if w & 1 else node[HEAD_SIZE:]
            n = 0
        else:
            dnode = cast(Dir, node)
            cz, _mz, pz, ct, _mt, _v, cv, av, ow, dig, w = _HEAD.unpack_from(dnode.head)
            old = dnode.raw_data
            ch = dnode.children
            n = len(ch) if ch else 0
        try:
            stat60 = _STAT60.pack(cz, zxid, pz, ct, time, version, cv, av, ow)
            wrapped = False
        except struct.error:  # as _stat60
            stat60 = _stat60(cz, zxid, pz, ct, time, version, cv, av, ow)
            wrapped = True
        if not self.digest_enabled or path.startswith(EXCLUDED_PREFIX):  # as _digest_of
            d = 0
        else:
            crc = _crc32(b"" if path == "/" else path.encode("utf-8"))
            if data:
                crc = _crc32(data, crc)
            d = _crc32(stat60, crc)
        self.digest += d - dig
        aclw = w & ~1
        if dnode is None:  # as _leaf; the key keeps its string object (the parent's children name it)
            node = nodes[path] = (stat60 + _TAIL.pack(d, aclw | 1) if data is None
                                  else b"".join((stat60, _TAIL.pack(d, aclw), data)))
        else:
            dnode.head = stat60 + _TAIL.pack(d, aclw | (data is None))
            dnode.raw_data = data
        size = len(data) if data else 0
        self.approx_bytes += size - (len(old) if old else 0)
        self.quotas.data_changed(self, path, old, data)
        self.writes.add(path, size)
        if wrapped:
            stat = stat_of(node)
        else:  # as Node.stat
            stat = Stat(cz, zxid, ct, time, version, 2 * cv - n, av, ow if ow > 0 else 0, size, n, pz)
        return ApplyResult(0, stat, [(_NODE_DATA_CHANGED, path, _ACL_TABLE[aclw >> 1])])

    def set_acl(self, path: str, acl: list[ACL] | tuple[ACL, ...], version: int) -> Node:
        node = self.packed.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        if self.pending_acls:
            self.pending_acls.pop(path, None)
        cz, mz, pz, ct, mt, v, cv, _av, ow = _STAT60.unpack_from(_head(node))
        return view(self._put(path, node, _data(node), _acl_word(acl), _stat60(cz, mz, pz, ct, mt, v, cv, version, ow)))

    def _resolve_acl(self, path: str, acl: list[ACL] | tuple[ACL, ...]) -> None:
        """Give a pending node (pending_acls) ``acl``, its stat and data as they are."""
        del self.pending_acls[path]
        node = self.packed[path]
        head = _head(node)
        self._put(path, node, _data(node), _acl_word(acl), head[:60], int(_U.unpack_from(head, _DIG)[0]))

    def unresolved_acls(self) -> dict[str, int]:
        """The pending nodes no replayed txn gave a list (path -> the id), forgotten here: they
        keep NO_ACCESS_ACL. Called once the txn log is replayed."""
        left, self.pending_acls = self.pending_acls, {}
        return left

    # ---------------------------------------------------------------- txns
    def apply(self, hdr: TxnHeader, txn: Any) -> ApplyResult:
        """Apply one committed txn; errors in the txn (replays, races) become the result's err."""
        zxid = hdr.zxid
        if zxid > self.last_zxid:
            self.last_zxid = zxid
        try:
            return self._apply(hdr.type, txn, zxid, hdr.time, hdr.clientId)
        except ZkError as exc:
            return ApplyResult(err=int(exc.code))

    def _apply(self, op: int, txn: Any, zxid: int, time: int, client: int) -> ApplyResult:
        if op == _SET_DATA:
            return self._set_data(txn.path, txn.data, txn.version, zxid, time)
        if op == Op.reconfig:  # a setData of /zookeeper/config; the reply carries the data too
            node = self.set_data(txn.path, txn.data, txn.version, zxid, time)
            return ApplyResult(value=(node.data, node.stat()),
                               events=[(EventType.NodeDataChanged, txn.path, node.acl)])
        if op in _CREATES:
            t = type(txn)
            if t is CreateTxn or isinstance(txn, CreateTxn):
                owner = client if txn.ephemeral else 0
            elif isinstance(txn, CreateContainerTxn):
                owner = CONTAINER_OWNER
            elif isinstance(txn, CreateTTLTxn):
                owner = TTL_OWNER_MASK | txn.ttl
            else:
                raise ZkError(Err.MARSHALLINGERROR)
            path = txn.path
            packed, acl, parent_acl = self._create(path, txn.data, txn.acl, owner, txn.parentCVersion, zxid, time)
            # the new node as packed (immutable: its stat stays the create's, even in a multi that
            # gives it a child next); the Stat is built only if the reply needs it (create2...)
            return ApplyResult(0, (path, packed), [(_NODE_CREATED, path, acl),
                                                 (_NODE_CHILDREN_CHANGED, path[:path.rfind("/")] or "/",
                                                  parent_acl)])
        if op in (Op.delete, Op.deleteContainer):
            return ApplyResult(events=self._delete_events(txn.path, zxid))
        if op == Op.setACL:
            node = self.set_acl(txn.path, txn.acl, txn.version)
            return ApplyResult(value=node.stat())
        if op == Op.check:
            return ApplyResult()
        if op == Op.createSession:
            return ApplyResult()
        if op == Op.closeSession:
            return self._close_session(client, txn, zxid)
        if op == Op.error:
            return ApplyResult(err=txn.err if txn is not None else 0)
        if op == Op.multi:
            return self._apply_multi(txn, zxid, time, client)
        raise ZkError(Err.UNIMPLEMENTED)

    def _delete_events(self, path: str, zxid: int) -> list[Event]:
        """Delete ``path``; its events carry the ACLs that decide who may see them."""
        node = self.packed.get(path)
        parent_path = paths.parent_of(path)
        parent = self.packed.get(parent_path)
        self.delete(path, zxid)
        assert node is not None and parent is not None
        return [(EventType.NodeDeleted, path, acl_of(node)), (EventType.NodeChildrenChanged, parent_path, acl_of(parent))]

    def _close_session(self, session_id: int, txn: CloseSessionTxn | None, zxid: int) -> ApplyResult:
        doomed = set(self.ephemerals.get(session_id, ()))
        if txn is not None and txn.paths2Delete:
            doomed.update(p for p in txn.paths2Delete
                          if (n := self.packed.get(p)) is not None and int(_Q.unpack_from(_head(n), _OWNER)[0]) == session_id)
        events: list[Event] = []
        # deepest first, so a parent never goes before its (impossible but replayed) children
        for p in sorted(doomed, key=lambda s: (-s.count("/"), s)):
            if p in self.packed:
                events.extend(self._delete_events(p, zxid))
        self.ephemerals.pop(session_id, None)
        return ApplyResult(events=events)

    def _apply_multi(self, txn: MultiTxn, zxid: int, time: int, client: int) -> ApplyResult:
        from .txncodec import decode_body  # local: avoids an import cycle at module load

        txns = txn.txns
        if txns is None:  # ZooKeeper never logs one: a multi txn lists its ops
            raise TypeError("a multi txn without its list of txns")
        subs = [(t.type, decode_body(t.type, _txn_data(t))) for t in txns]
        failed = any(op == Op.error for op, _ in subs)
        results: list[tuple[int, int, Any]] = []
        events: list[Event] = []
        if failed:
            for _op, body in subs:
                results.append((Op.error, body.err if isinstance(body, ErrorTxn) else 0, None))
            return ApplyResult(multi=results)
        for op, body in subs:
            try:
                r = self._apply(op, body, zxid, time, client)
            except ZkError as exc:  # only on replays; live multis were validated by prep
                results.append((Op.error, int(exc.code), None))
                continue
            events.extend(r.events)
            results.append((op, r.err, r.value))
        return ApplyResult(events=events, multi=results)


def _txn_data(t: Txn) -> bytes:
    """A multi op's txn bytes; ZooKeeper never logs one null (decoding it fails, as it did)."""
    data = t.data
    if data is None:
        raise TypeError(f"a multi op of type {t.type} without its txn")
    return data


def decode_snapshot_node(tree: DataTree, path: str, data: bytes | None, acl: list[ACL],
                         stat: StatPersisted) -> None:
    """Insert one node read from a snapshot, as ZooKeeper's deserialize does."""
    load_node(tree, path, data, _acl_word(acl), (stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version,
                                                stat.cversion, stat.aversion, stat.ephemeralOwner, stat.pzxid))


class SnapshotRows:
    """The znodes of ``items`` (path, stored znode) as a snapshot writes them
    (snapshot.write_snapshot_rows): sorted by path, which puts every parent before its
    children as a pre-order walk would, each as (path, the root named "", data, ACL cache id,
    the 60 bytes of its StatPersisted), its stat reordered from the head by slicing (the
    Loader's reordering, reversed). ``acls`` is the ACL cache, ids counted from 1 in the order
    of first use. ``digest`` is the sum of the counted nodes' digest shares, read from their
    heads (what digest.entry_digest would count afresh), or None when ``zxid`` names no txn or
    a node shows a change after it (a fuzzy copy: its digest would name no zxid)."""

    __slots__ = ("order", "refs", "acls", "digest")

    def __init__(self, items: Iterable[tuple[str, bytes | Node]], zxid: int) -> None:
        order = sorted(items, key=_PATH_OF)  # itemgetter: no Python call per key
        refs: dict[int, int] = {}  # ACL_TABLE index -> cache id
        total = 0
        fuzzy = zxid <= 0
        for path, stored in order:
            head = stored if type(stored) is bytes else cast(Node, stored).head_bytes()
            cz, mz, pz, _ct, _mt, _v, _cv, _av, _ow, dig, w = _HEAD.unpack_from(head)
            index = w >> 1
            if index not in refs:
                refs[index] = len(refs) + 1
            if not path.startswith(EXCLUDED_PREFIX):
                total += dig
                if mz > zxid or pz > zxid or cz > zxid:
                    fuzzy = True
        self.order = order
        self.refs = refs
        self.acls = [_ACL_TABLE[i] for i in refs]
        self.digest: int | None = None if fuzzy else total & M64

    def __iter__(self) -> Iterator[tuple[str, bytes | None, int, bytes]]:
        refs = self.refs
        for path, stored in self.order:
            if type(stored) is bytes:
                head = stored
                data = None if stored[HEAD_SIZE - 1] & 1 else stored[HEAD_SIZE:]
            else:
                node = cast(Node, stored)
                head = node.head_bytes()
                data = node.data
            w = int(_I.unpack_from(head, _ACLW)[0])
            yield ("" if path == "/" else path), data, refs[w >> 1], head[:16] + head[24:60] + head[16:24]


_PATH_OF: Final = operator.itemgetter(0)


class Loader:
    """A snapshot.RawNodeSink that puts nodes into ``tree`` (the ACL lists a snapshot reader
    hands out are one object per cache id, alive while it reads: their words are kept by id).

    Recovery's hot loop: the node's stat arrives as the file's 60 bytes, which are already the
    big-endian two's complement fields a leaf holds, so they are reordered by slicing instead
    of unpacked and packed again; the parent looked up last is kept, since a snapshot lists a
    parent's children one after another (pre-order), and its HashSet growth is checked only
    when its child count passes the next threshold. Builds what ``load_node`` builds."""

    __slots__ = ("tree", "_words", "_parent_path", "_children", "_grow_above")

    def __init__(self, tree: DataTree) -> None:
        self.tree = tree
        self._words: dict[int, int] = {}
        self._parent_path: str | None = None
        self._children: dict[str, Any] = {}
        self._grow_above = 0

    def __call__(self, path: str, data: bytes | memoryview | None, acl: list[ACL],
                 stat: bytes | memoryview) -> None:
        w = self._words.get(id(acl))
        if w is None:
            w = self._words[id(acl)] = _acl_word(acl)
        # the file's czxid mzxid ctime mtime version cversion aversion owner pzxid -> the leaf's
        # czxid mzxid pzxid ctime mtime version cversion aversion owner
        stat60 = b"".join((stat[0:16], stat[52:60], stat[16:52]))
        tree = self.tree
        if path == "":
            path = "/"
        existing = tree.packed.get(path)
        if existing is not None:  # the root and the system nodes: their children stay
            self._parent_path = None
            data = None if data is None else bytes(data)
            tree.approx_bytes += _size(data) - _size(_data(existing))
            tree._put(path, existing, data, w, stat60)
            return
        cut = path.rfind("/")
        parent_path = path[:cut] or "/"
        if parent_path != self._parent_path:
            parent = tree.packed.get(parent_path)
            if parent is None:
                raise ValueError(f"snapshot names {path} before its parent")
            children = _children(parent)
            if children is None:
                children = tree._dir(parent_path, parent).children
                assert children is not None
            self._parent_path, self._children = parent_path, children
            self._grow_above = tree.capacities.get(parent_path, INITIAL_CAPACITY) * 3 // 4
        else:
            children = self._children
        if not tree.digest_enabled or path.startswith(EXCLUDED_PREFIX):
            d = 0
        else:
            crc = _crc32(path.encode("utf-8"))
            if data:
                crc = _crc32(data, crc)
            d = _crc32(stat60, crc)
        if data is None:
            node = stat60 + _TAIL.pack(d, w | 1)
        else:
            node = b"".join((stat60, _TAIL.pack(d, w), data))
        children[path] = None
        if len(children) > self._grow_above:
            tree._grow(parent_path, len(children))
            self._grow_above = tree.capacities.get(parent_path, INITIAL_CAPACITY) * 3 // 4
        tree.packed[path] = node
        tree.digest += d
        tree.approx_bytes += len(path) + (len(data) if data is not None else 0)
        (owner,) = _Q.unpack_from(stat60, 52)
        if owner:
            tree._track_owner(path, owner)

    def missing_acl(self, path: str, ref: int) -> list[ACL]:
        """A snapshot.MissingAcl: the node waits in the tree's pending_acls with NO_ACCESS_ACL.
        Apache keeps the id on the node (ReferenceCountedACLCache.addUsage ignores it) and the
        replayed txn that made that list gives it the same id again."""
        self.tree.pending_acls[path or "/"] = ref
        return _NO_ACCESS_LIST


_NO_ACCESS_LIST = list(NO_ACCESS_ACL)  # one object: a Loader keeps ACL words by the list's id()


def load_node(tree: DataTree, path: str, data: bytes | None, aclw: int, stat: tuple[int, ...]) -> None:
    """Insert one node read from a snapshot (``stat`` in StatPersisted's order), as ZooKeeper's
    deserialize does; ValueError when its parent is not in the tree."""
    cz, mz, ct, mt, v, cv, av, owner, pz = stat
    stat60 = _stat60(cz, mz, pz, ct, mt, v, cv, av, owner)
    if path == "":
        path = "/"
    existing = tree.packed.get(path)
    if existing is not None:  # the root and the system nodes: their children stay
        tree.approx_bytes += _size(data) - _size(_data(existing))
        tree._put(path, existing, data, aclw, stat60)
        return
    parent_path = paths.parent_of(path)
    parent = tree.packed.get(parent_path)
    if parent is None:
        raise ValueError(f"snapshot names {path} before its parent")
    d = _digest_of(path, data, stat60) if tree.digest_enabled else 0
    node = _leaf(stat60, d, aclw, data)
    children = _children(parent)
    if children is None:
        children = tree._dir(parent_path, parent).children
        assert children is not None
    children[path] = None
    tree._grow(parent_path, len(children))
    tree.packed[path] = node
    tree.digest += d
    tree.approx_bytes += len(path) + _size(data)
    if owner:
        tree._track_owner(path, owner)


__all__ = ["ApplyResult", "DataTree", "Dir", "Leaf", "Loader", "NO_ACCESS_ACL", "Node", "NodeTable", "load_node", "decode_snapshot_node", "new_node", "CreateSessionTxn",
           "DeleteTxn", "SetACLTxn", "SetDataTxn", "CheckVersionTxn"]
