"""The znodes of the data tree (datatree.py): the packed head, and the two kinds of node.

A znode that never had a child is stored as one plain ``bytes`` object, its head and then its
data (see "Memory" in docs/performance.md); a ``Leaf`` is a view of one, handed out by the tree's
``nodes``. A znode with children is a ``Dir``, changed in place. The functions at the end read a
stored znode of either kind without making a view.

Always pure Python, in the compiled build too (docs/performance.md, "The compiled build"): the
compiled datatree uses these classes as the ordinary Python classes they are.
"""

from __future__ import annotations

import struct
from typing import Any, cast

from .records import ACL, Stat, StatPersisted

# A znode's persisted stat, its share of the tree digest and its ACL are packed into one
# 68-byte head: the stat as Apache's DigestCalculator lays it out (czxid, mzxid, pzxid, ctime,
# mtime as 8-byte longs; version, cversion, aversion as 4-byte ints; ephemeralOwner; so the
# digest reads the head as it is), then the node's digest (unsigned 32 bits) and an ACL word
# (the ACL's place in the process's ACL table, shifted left once; the low bit says the data
# is null). Fields are Java's widths: a value outside them is kept as Java would keep it.
STAT60 = struct.Struct(">qqqqqiiiq")
USTAT60 = struct.Struct(">QQQQQIIIQ")
TAIL = struct.Struct(">Ii")
HEAD = struct.Struct(">qqqqqiiiqIi")
HEAD_SIZE = 68  # HEAD.size
Q64 = struct.Struct(">q")
I32 = struct.Struct(">i")
U32 = struct.Struct(">I")
CZXID, MZXID, PZXID, CTIME, MTIME, VERSION, CVERSION, AVERSION, OWNER, DIG, ACLW = (
    0, 8, 16, 24, 32, 40, 44, 48, 52, 60, 64)

# every tree of the process interns its ACLs in one table (they are few; datatree fills it): a
# head names its ACL by its index there
ACL_TABLE: list[tuple[ACL, ...]] = []


class Node:
    """One znode (the interface both kinds share): data, interned ACL, the persisted stat
    fields, its digest share and its children.

    ``children`` holds the children's full paths (None for a node that never had one): the
    very string objects that key ``DataTree.packed``, so a child's name costs no string of its
    own; the names are sliced off when the children are listed. The values are None, except
    in the root's: there a top-level znode's value is its namespace's write counts (mntr's
    ``*_write_per_namespace``, ``DataTree.writes``), or None before its first write. Nodes
    are changed only by their DataTree: a packed leaf is immutable (a change stores a new one;
    a ``Leaf`` view keeps showing the one it was made from), a ``Dir`` is changed in place."""

    __slots__ = ()
    children: dict[str, Any] | None

    def head_bytes(self) -> bytes:
        raise NotImplementedError

    @property
    def czxid(self) -> int:
        return int(Q64.unpack_from(self.head_bytes(), CZXID)[0])

    @property
    def mzxid(self) -> int:
        return int(Q64.unpack_from(self.head_bytes(), MZXID)[0])

    @property
    def pzxid(self) -> int:
        return int(Q64.unpack_from(self.head_bytes(), PZXID)[0])

    @property
    def ctime(self) -> int:
        return int(Q64.unpack_from(self.head_bytes(), CTIME)[0])

    @property
    def mtime(self) -> int:
        return int(Q64.unpack_from(self.head_bytes(), MTIME)[0])

    @property
    def version(self) -> int:
        return int(I32.unpack_from(self.head_bytes(), VERSION)[0])

    @property
    def cversion(self) -> int:
        return int(I32.unpack_from(self.head_bytes(), CVERSION)[0])

    @property
    def aversion(self) -> int:
        return int(I32.unpack_from(self.head_bytes(), AVERSION)[0])

    @property
    def owner(self) -> int:
        """The ephemeralOwner as stored: a session, CONTAINER_OWNER, a TTL word, or 0."""
        return int(Q64.unpack_from(self.head_bytes(), OWNER)[0])

    @property
    def dig(self) -> int:
        """This node's share of the tree digest (0 when the tree counts none)."""
        return int(U32.unpack_from(self.head_bytes(), DIG)[0])

    @property
    def acl(self) -> tuple[ACL, ...]:
        return ACL_TABLE[int(I32.unpack_from(self.head_bytes(), ACLW)[0]) >> 1]

    @property
    def data(self) -> bytes | None:
        raise NotImplementedError

    def stat(self) -> Stat:
        """The Stat clients see: containers and TTL nodes show ephemeralOwner 0, as in ZooKeeper."""
        cz, mz, pz, ct, mt, v, cv, av, ow, _d, _w = HEAD.unpack_from(self.head_bytes())
        ch = self.children
        n = len(ch) if ch else 0
        data = self.data
        # Apache keeps the number of child creations and shows creations plus deletions
        return Stat(cz, mz, ct, mt, v, 2 * cv - n, av, ow if ow > 0 else 0, len(data) if data else 0, n, pz)

    def stat9(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        """czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner (the digest's
        order) in one read of the head."""
        return STAT60.unpack_from(self.head_bytes())

    def prep_view(self) -> tuple[int, int, int, tuple[ACL, ...], int, int]:
        """version, cversion, aversion, ACL, owner and number of children at once (what the
        preparer checks a write against)."""
        _cz, _mz, _pz, _ct, _mt, v, cv, av, ow, _d, w = HEAD.unpack_from(self.head_bytes())
        ch = self.children
        return v, cv, av, ACL_TABLE[w >> 1], ow, len(ch) if ch else 0

    def persisted(self) -> StatPersisted:
        cz, mz, pz, ct, mt, v, cv, av, ow = STAT60.unpack_from(self.head_bytes())
        return StatPersisted(cz, mz, ct, mt, v, cv, av, ow, pz)

    @property
    def num_children(self) -> int:
        ch = self.children
        return len(ch) if ch else 0


class Leaf(Node):
    """A view of a packed leaf: a znode that never had a child is stored in its tree as one
    plain ``bytes`` object, its head and then its data (see "Memory" in docs/performance.md:
    a bytes subclass would cost each stored leaf the cycle collector's 16-byte header). The
    tree's ``nodes`` hands out one of these per look-up; the request path reads the packed
    bytes through the functions below instead."""

    __slots__ = ("raw",)
    children = None

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def __eq__(self, other: object) -> bool:
        return type(other) is Leaf and other.raw == self.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"Leaf({self.raw!r})"

    def head_bytes(self) -> bytes:
        return self.raw

    @property
    def data(self) -> bytes | None:
        raw = self.raw
        return None if raw[HEAD_SIZE - 1] & 1 else raw[HEAD_SIZE:]

    @property
    def acl(self) -> tuple[ACL, ...]:
        w: int = I32.unpack_from(self.raw, ACLW)[0]
        return ACL_TABLE[w >> 1]

    # the fields the request path reads, without the head_bytes() call
    @property
    def mzxid(self) -> int:
        return int(Q64.unpack_from(self.raw, MZXID)[0])

    @property
    def pzxid(self) -> int:
        return int(Q64.unpack_from(self.raw, PZXID)[0])

    @property
    def version(self) -> int:
        return int(I32.unpack_from(self.raw, VERSION)[0])

    @property
    def cversion(self) -> int:
        return int(I32.unpack_from(self.raw, CVERSION)[0])

    @property
    def aversion(self) -> int:
        return int(I32.unpack_from(self.raw, AVERSION)[0])

    @property
    def owner(self) -> int:
        return int(Q64.unpack_from(self.raw, OWNER)[0])

    @property
    def dig(self) -> int:
        return int(U32.unpack_from(self.raw, DIG)[0])

    def stat9(self) -> tuple[int, int, int, int, int, int, int, int, int]:
        return STAT60.unpack_from(self.raw)

    def prep_view(self) -> tuple[int, int, int, tuple[ACL, ...], int, int]:
        _cz, _mz, _pz, _ct, _mt, v, cv, av, ow, _d, w = HEAD.unpack_from(self.raw)
        return v, cv, av, ACL_TABLE[w >> 1], ow, 0

    def stat(self) -> Stat:
        return leaf_stat(self.raw)


class Dir(Node):
    """A znode that has (or had) children: its head, data and children's paths, changed in place."""

    __slots__ = ("head", "raw_data", "children")

    def __init__(self, head: bytes, data: bytes | None, children: dict[str, Any]) -> None:
        self.head = head
        self.raw_data = data
        self.children = children

    def head_bytes(self) -> bytes:
        return self.head

    @property
    def data(self) -> bytes | None:
        return self.raw_data


# A znode as its tree stores it (DataTree.packed): a leaf packed in plain bytes, or a Dir.
def view(node: bytes | Node) -> Node:
    """The Node a stored znode answers as: a Leaf view of a packed leaf; a Dir (or a view) as it is."""
    return Leaf(node) if type(node) is bytes else cast(Node, node)


def head_of(node: bytes | Dir) -> bytes:
    """A stored znode's head (its first HEAD_SIZE bytes are the packed head; a leaf's data follows)."""
    return node if type(node) is bytes else cast(Dir, node).head


def data_of(node: bytes | Dir) -> bytes | None:
    if type(node) is bytes:
        return None if node[HEAD_SIZE - 1] & 1 else node[HEAD_SIZE:]
    return cast(Dir, node).raw_data


def children_of(node: bytes | Dir) -> dict[str, Any] | None:
    return None if type(node) is bytes else cast(Dir, node).children


def acl_of(node: bytes | Dir) -> tuple[ACL, ...]:
    return ACL_TABLE[int(I32.unpack_from(head_of(node), ACLW)[0]) >> 1]


def prep_view_of(node: bytes | Dir) -> tuple[int, int, int, tuple[ACL, ...], int, int]:
    """Node.prep_view of a stored znode."""
    if type(node) is bytes:
        _cz, _mz, _pz, _ct, _mt, v, cv, av, ow, _d, w = HEAD.unpack_from(node)
        return v, cv, av, ACL_TABLE[w >> 1], ow, 0
    return cast(Dir, node).prep_view()


def leaf_stat(raw: bytes) -> Stat:
    """The Stat of a packed leaf, as Node.stat gives it."""
    cz, mz, pz, ct, mt, v, cv, av, ow = STAT60.unpack_from(raw)
    return Stat(cz, mz, ct, mt, v, 2 * cv, av, ow if ow > 0 else 0, len(raw) - HEAD_SIZE, 0, pz)


def stat_of(node: bytes | Dir) -> Stat:
    return leaf_stat(node) if type(node) is bytes else cast(Dir, node).stat()
