"""The znode tree and how committed transactions change it (ZooKeeper's DataTree).

Pure: ``apply`` takes a decoded transaction and returns what the client reply needs
plus the watch triggers it fired; it never touches sockets, clocks or files. Replaying
the txn log through ``apply`` rebuilds the same tree the live server had.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import paths
from .acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, AclCache
from .codes import CONTAINER_OWNER, TTL_OWNER_MASK, Err, EventType, Op, ZkError
from .digest import M64, node_digest
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
    TxnHeader,
)

ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"
CONFIG = "/zookeeper/config"

# (EventType, path, the ACL a watcher needs READ on to be told: the node's, or its parent's for
# NodeChildrenChanged), as Apache 3.8 with ZOOKEEPER-4799
Event = tuple[int, str, tuple[ACL, ...]]


class Node:
    """One znode: data, interned ACL, the persisted stat fields and its children.

    ``children`` holds the children's full paths (None until the first child): the very string
    objects that key ``DataTree.nodes``, so a child's name costs no string of its own; the
    names are sliced off when the children are listed."""

    # twelve slots (128 bytes an object): the ephemeralOwner, 0 for almost every node, is a
    # class attribute here and a slot of OwnedNode; the Java HashSet table size of a node's
    # children lives in DataTree.capacities, for the few nodes that outgrew the initial one
    __slots__ = ("data", "acl", "czxid", "mzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "pzxid", "children", "dig")
    owner = 0

    def __init__(self, data: bytes | None, acl: tuple[ACL, ...], zxid: int, time: int) -> None:
        self.data = data
        self.acl = acl
        self.czxid = zxid
        self.mzxid = zxid
        self.ctime = time
        self.mtime = time
        self.version = 0
        self.cversion = 0
        self.aversion = 0
        self.pzxid = zxid
        # children's paths in insertion order (a dict); the Java HashSet table size that
        # decides the order Apache ZooKeeper lists them in is DataTree.capacity_of (javaorder)
        self.children: dict[str, None] | None = None
        self.dig = 0  # this node's share of the tree digest (DataTree keeps it current)

    def stat(self) -> Stat:
        """The Stat clients see: containers and TTL nodes show ephemeralOwner 0, as in ZooKeeper."""
        ch = self.children
        owner = self.owner
        if owner < 0:
            owner = 0
        n = len(ch) if ch else 0
        # Apache keeps the number of child creations and shows creations plus deletions
        return Stat(self.czxid, self.mzxid, self.ctime, self.mtime, self.version, 2 * self.cversion - n,
                    self.aversion, owner, len(self.data) if self.data is not None else 0, n, self.pzxid)

    def persisted(self) -> StatPersisted:
        return StatPersisted(self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
                             self.cversion, self.aversion, self.owner, self.pzxid)

    @property
    def num_children(self) -> int:
        return len(self.children) if self.children else 0


class OwnedNode(Node):
    """A node whose ephemeralOwner is not 0: an ephemeral, container or TTL node."""

    __slots__ = ("owner",)

    def __init__(self, data: bytes | None, acl: tuple[ACL, ...], zxid: int, time: int, owner: int) -> None:
        super().__init__(data, acl, zxid, time)
        self.owner = owner


def new_node(data: bytes | None, acl: tuple[ACL, ...], zxid: int, time: int, owner: int) -> Node:
    """A Node, or an OwnedNode when ``owner`` is not 0 (the owner never changes)."""
    if owner:
        return OwnedNode(data, acl, zxid, time, owner)
    return Node(data, acl, zxid, time)


def _size(data: bytes | None) -> int:
    return len(data) if data else 0


def child_names(children: dict[str, None] | None) -> list[str]:
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


class ApplyResult:
    """What applying one txn produced: error code, reply value, watch triggers."""

    __slots__ = ("err", "value", "events", "multi")

    def __init__(self, err: int = 0, value: Any = None, events: list[Event] | None = None,
                 multi: list[tuple[int, int, Any]] | None = None) -> None:
        self.err = err
        self.value = value
        self.events = events if events is not None else []
        self.multi = multi  # per-op (type, err, value) for multi


class DataTree:
    """All znodes by path, plus indexes for ephemerals, containers and TTL nodes."""

    def __init__(self) -> None:
        self.acls = AclCache()
        self.nodes: dict[str, Node] = {}
        # path -> the Java HashSet table size of its children, for nodes past INITIAL_CAPACITY
        self.capacities: dict[str, int] = {}
        self.ephemerals: dict[int, set[str]] = {}
        self.containers: set[str] = set()
        self.ttls: set[str] = set()
        self.last_zxid = 0
        self.quotas = Quotas()
        self.writes = PerNamespace()  # bytes written per top-level namespace (mntr)
        # Apache's tree digest (digest.py): kept by every change as it happens; 0 when disabled
        # (zookeeper.digest.enabled=false), as Apache's DigestCalculator then counts nothing
        self.digest_enabled = True
        self.digest = 0
        # the last time stamp a node took: nodes written in the same millisecond share one int
        self.last_time = 0
        self._install_system_nodes()
        # Apache's running count of path and data bytes (mntr's approximate_data_size): kept
        # by creates, deletes and setData, counted afresh after a snapshot load; the quota
        # stats rewritten in place do not move it, as in Apache
        self.approx_bytes = self._count_bytes()

    # ---------------------------------------------------------------- setup
    def _install_system_nodes(self) -> None:
        root = Node(b"", self.acls.intern(OPEN_ACL_UNSAFE), 0, 0)
        # as ZooKeeper, the system nodes are added without counting a creation (Stat shows -1, -2)
        zk = Node(b"", root.acl, 0, 0)
        quota = Node(b"", root.acl, 0, 0)
        config = Node(b"", self.acls.intern(READ_ACL_UNSAFE), 0, 0)
        config.aversion = -1
        self.nodes = {"/": root, ZOOKEEPER: zk, QUOTA: quota, CONFIG: config}
        root.children = {ZOOKEEPER: None}
        zk.children = {QUOTA: None, CONFIG: None}
        self.recompute_digest()

    # ---------------------------------------------------------------- digest
    def tree_digest(self) -> int:
        """The tree digest (unsigned 64 bits) as Apache's DataTree.getTreeDigest has it."""
        return self.digest & M64

    def recompute_digest(self) -> int:
        """Count the digest afresh from every node (after a snapshot load, or a switch)."""
        total = 0
        on = self.digest_enabled
        for path, node in self.nodes.items():
            node.dig = node_digest(path, node) if on else 0
            total += node.dig
        self.digest = total
        return total

    def set_digest_enabled(self, on: bool) -> None:
        self.digest_enabled = on
        self.recompute_digest()

    def _unhash(self, path: str, node: Node) -> None:
        self.digest -= node.dig

    def _hash(self, path: str, node: Node) -> None:
        if self.digest_enabled:
            d = node.dig = node_digest(path, node)
            self.digest += d

    def set_config(self, data: bytes, zxid: int, time: int) -> None:
        """Show the ensemble's membership in /zookeeper/config without a txn, as Apache does at
        start-up and when a leader stamps a static config with its first zxid (version and
        aversion -1, mzxid the config's version)."""
        node = self.nodes[CONFIG]
        self.approx_bytes += _size(data) - _size(node.data)
        node.data = data
        node.mzxid = zxid
        node.mtime = time
        node.version = -1
        node.aversion = -1

    # ---------------------------------------------------------------- reads
    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def node_count(self) -> int:
        """Znodes as Apache ZooKeeper counts them: its table holds the root twice ("" and "/"),
        so an empty server says 5 (srvr's Node count, mntr's zk_znode_count)."""
        return len(self.nodes) + 1

    # the quota bookkeeping's view of the tree (quota.TreeView); "" is the root, as in Apache
    def data_of(self, path: str) -> bytes | None | int:
        node = self.nodes.get(path or "/")
        return -1 if node is None else node.data

    def children_of(self, path: str) -> list[str]:
        node = self.nodes.get(path or "/")
        return child_names(node.children) if node is not None else []

    def replace_data(self, path: str, data: bytes) -> None:
        path = path or "/"
        node = self.nodes.get(path)
        if node is not None:
            self._unhash(path, node)
            node.data = data
            self._hash(path, node)

    def snapshot_loaded(self) -> None:
        """After a snapshot's nodes are in: count the bytes, find the quotas and count their
        usage again (in Apache's order)."""
        self.approx_bytes = self._count_bytes()
        self.quotas.rebuild(self)
        self.recompute_digest()

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
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        total = 0
        stack = [(path, node)]
        while stack:
            p, n = stack.pop()
            if n.children:
                for cp in n.children:
                    child = self.nodes.get(cp)
                    if child is not None:
                        total += 1
                        stack.append((cp, child))
        return total

    def ephemerals_of(self, session_id: int) -> set[str]:
        return self.ephemerals.get(session_id, set())

    def data_size(self) -> int:
        return self.approx_bytes

    def _count_bytes(self) -> int:
        return sum(len(p) + _size(n.data) for p, n in self.nodes.items())

    def walk(self) -> Iterator[tuple[str, Node]]:
        """Pre-order walk (parents before children), as snapshots store nodes."""
        stack = ["/"]
        while stack:
            p = stack.pop()
            node = self.nodes.get(p)
            if node is None:
                continue
            yield p, node
            if node.children:
                # one parent's children share its prefix: their paths sort as their names do
                stack.extend(sorted(node.children, reverse=True))

    # ---------------------------------------------------------------- mutation
    def _add(self, path: str, node: Node, parent_cversion: int, zxid: int) -> None:
        parent_path = paths.parent_of(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise ZkError(Err.NONODE, parent_path)
        if parent.children is None:
            parent.children = {}
        elif path in parent.children:
            raise ZkError(Err.NODEEXISTS, path)
        # As Apache ZooKeeper 3.8: a node's cversion counts the creations of its children (a
        # delete changes only pzxid; Stat shows 2 * cversion - children). The txn's
        # parentCVersion wins when it is higher; a replayed create leaves both alone.
        if parent_cversion == -1:
            parent_cversion = parent.cversion + 1
        if parent_cversion > parent.cversion:
            self._unhash(parent_path, parent)
            parent.cversion = parent_cversion
            parent.pzxid = zxid
            self._hash(parent_path, parent)
        parent.children[path] = None  # the same string object as the key of self.nodes
        if len(parent.children) > INITIAL_CAPACITY * 3 // 4:
            self._grow(parent_path, len(parent.children))
        self.nodes[path] = node
        self._hash(path, node)
        owner = node.owner
        if owner:
            if owner == CONTAINER_OWNER:
                self.containers.add(path)
            elif is_ttl_owner(owner):
                self.ttls.add(path)
            else:
                self.ephemerals.setdefault(owner, set()).add(path)

    def shared_time(self, time: int) -> int:
        """``time``, as the very int object the previous node took when they are equal."""
        if time == self.last_time:
            return self.last_time
        self.last_time = time
        return time

    def create(self, path: str, data: bytes | None, acl: list[ACL] | tuple[ACL, ...], owner: int,
               parent_cversion: int, zxid: int, time: int) -> Node:
        if time == self.last_time:
            time = self.last_time
        else:
            self.last_time = time
        node = new_node(data, self.acls.intern(acl), zxid, time, owner)  # null data stays null, as in Apache
        self._add(path, node, parent_cversion, zxid)
        self.approx_bytes += len(path) + _size(data)
        self.quotas.created(self, path, data)
        self.writes.add(path, len(data) if data else 0)
        return node

    def delete(self, path: str, zxid: int) -> None:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        parent_path = paths.parent_of(path)
        parent = self.nodes.get(parent_path)
        if parent is None:
            raise ZkError(Err.NONODE, parent_path)
        del self.nodes[path]
        if self.capacities:
            self.capacities.pop(path, None)  # a node made again starts with a new HashSet
        self._unhash(path, node)
        if parent.children:
            parent.children.pop(path, None)
        if zxid > parent.pzxid:
            self._unhash(parent_path, parent)
            parent.pzxid = zxid
            self._hash(parent_path, parent)
        owner = node.owner
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
        self.approx_bytes -= len(path) + _size(node.data)
        self.quotas.deleted(self, path, node.data)
        self.writes.add(path, 0)

    def set_data(self, path: str, data: bytes | None, version: int, zxid: int, time: int) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        old = node.data
        self._unhash(path, node)
        node.data = data
        node.mzxid = zxid
        node.mtime = time if time != self.last_time else self.last_time
        node.version = version
        self._hash(path, node)
        self.approx_bytes += _size(data) - _size(old)
        self.quotas.data_changed(self, path, old, data)
        self.writes.add(path, len(data) if data else 0)
        return node

    def set_acl(self, path: str, acl: list[ACL] | tuple[ACL, ...], version: int) -> Node:
        node = self.nodes.get(path)
        if node is None:
            raise ZkError(Err.NONODE, path)
        node.acl = self.acls.intern(acl)
        self._unhash(path, node)
        node.aversion = version
        self._hash(path, node)
        return node

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
        if op == Op.setData:
            t: Any = txn
            node = self.set_data(t.path, t.data, t.version, zxid, time)
            return ApplyResult(value=node.stat(), events=[(EventType.NodeDataChanged, t.path, node.acl)])
        if op == Op.reconfig:  # a setData of /zookeeper/config; the reply carries the data too
            node = self.set_data(txn.path, txn.data, txn.version, zxid, time)
            return ApplyResult(value=(node.data, node.stat()),
                               events=[(EventType.NodeDataChanged, txn.path, node.acl)])
        if op in (Op.create, Op.create2, Op.createContainer, Op.createTTL):
            if isinstance(txn, CreateTxn):
                owner = client if txn.ephemeral else 0
            elif isinstance(txn, CreateContainerTxn):
                owner = CONTAINER_OWNER
            elif isinstance(txn, CreateTTLTxn):
                owner = TTL_OWNER_MASK | txn.ttl
            else:
                raise ZkError(Err.MARSHALLINGERROR)
            node = self.create(txn.path, txn.data, txn.acl, owner, txn.parentCVersion, zxid, time)
            parent_path = paths.parent_of(txn.path)
            # the Stat is built only if the reply needs it (create2 and friends)
            return ApplyResult(value=(txn.path, node),
                               events=[(EventType.NodeCreated, txn.path, node.acl),
                                       (EventType.NodeChildrenChanged, parent_path, self.nodes[parent_path].acl)])
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
        node = self.nodes.get(path)
        parent_path = paths.parent_of(path)
        parent = self.nodes.get(parent_path)
        self.delete(path, zxid)
        assert node is not None and parent is not None
        return [(EventType.NodeDeleted, path, node.acl), (EventType.NodeChildrenChanged, parent_path, parent.acl)]

    def _close_session(self, session_id: int, txn: CloseSessionTxn | None, zxid: int) -> ApplyResult:
        doomed = set(self.ephemerals.get(session_id, ()))
        if txn is not None and txn.paths2Delete:
            doomed.update(p for p in txn.paths2Delete if (n := self.nodes.get(p)) and n.owner == session_id)
        events: list[Event] = []
        # deepest first, so a parent never goes before its (impossible but replayed) children
        for p in sorted(doomed, key=lambda s: (-s.count("/"), s)):
            if p in self.nodes:
                events.extend(self._delete_events(p, zxid))
        self.ephemerals.pop(session_id, None)
        return ApplyResult(events=events)

    def _apply_multi(self, txn: MultiTxn, zxid: int, time: int, client: int) -> ApplyResult:
        from .txncodec import decode_body  # local: avoids an import cycle at module load

        subs = [(t.type, decode_body(t.type, t.data)) for t in txn.txns]
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
            value = r.value
            if isinstance(value, tuple) and isinstance(value[1], Node):
                value = (value[0], _Frozen(value[1].stat()))  # the Stat as of this op
            results.append((op, r.err, value))
        return ApplyResult(events=events, multi=results)


class _Frozen:
    """A Stat taken at one point of a multi, answering .stat() like a Node."""

    __slots__ = ("_stat",)

    def __init__(self, stat: Stat) -> None:
        self._stat = stat

    def stat(self) -> Stat:
        return self._stat


def decode_snapshot_node(tree: DataTree, path: str, data: bytes | None, acl: list[ACL],
                         stat: StatPersisted) -> None:
    """Insert one node read from a snapshot, as ZooKeeper's deserialize does."""
    # equal stamps share one int object (a leaf's three zxids are usually one, a node's two
    # times too, and nodes written in one millisecond share their time)
    ctime = tree.shared_time(stat.ctime)
    node = new_node(data, tree.acls.intern(acl), stat.czxid, ctime, stat.ephemeralOwner)
    czxid = node.czxid
    mzxid = stat.mzxid
    node.mzxid = czxid if mzxid == czxid else mzxid
    node.mtime = ctime if stat.mtime == ctime else tree.shared_time(stat.mtime)
    node.version = stat.version
    node.cversion = stat.cversion
    node.aversion = stat.aversion
    pzxid = stat.pzxid
    node.pzxid = czxid if pzxid == czxid else (node.mzxid if pzxid == mzxid else pzxid)
    if path in ("", "/"):
        old = tree.nodes["/"]
        node.children = old.children
        tree._unhash("/", old)
        tree.nodes["/"] = node
        tree._hash("/", node)
        return
    existing = tree.nodes.get(path)
    if existing is not None:
        node.children = existing.children
        tree._unhash(path, existing)
        tree.nodes[path] = node
        tree._hash(path, node)
        return
    parent_path = paths.parent_of(path)
    parent = tree.nodes.get(parent_path)
    if parent is None:
        raise ValueError(f"snapshot names {path} before its parent")
    if parent.children is None:
        parent.children = {}
    parent.children[path] = None
    tree._grow(parent_path, len(parent.children))
    tree.nodes[path] = node
    tree._hash(path, node)
    owner = node.owner
    if owner == CONTAINER_OWNER:
        tree.containers.add(path)
    elif is_ttl_owner(owner):
        tree.ttls.add(path)
    elif owner:
        tree.ephemerals.setdefault(owner, set()).add(path)


__all__ = ["ApplyResult", "DataTree", "Node", "OwnedNode", "decode_snapshot_node", "new_node", "CreateSessionTxn",
           "DeleteTxn", "SetACLTxn", "SetDataTxn", "CheckVersionTxn"]
