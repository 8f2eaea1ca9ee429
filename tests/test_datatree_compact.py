"""The compact data tree: what each znode holds, and that listing, recovery and the per-namespace
counts still say what they said before the tree was made smaller."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server import snapshot as snapmod
from zkops.server.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE
from zkops.server.codes import CONTAINER_OWNER
from zkops.server.database import Database
from zkops.server.datatree import HEAD_SIZE, DataTree, Dir, Leaf, Loader, SnapshotRows, decode_snapshot_node
from zkops.server.digest import entry_digest, node_digest
from zkops.server.javaorder import INITIAL_CAPACITY, grown_capacity, hashset_order
from zkops.server.metrics import PerNamespace
from zkops.server.records import StatPersisted

ACL = list(OPEN_ACL_UNSAFE)
ACL_READ = list(READ_ACL_UNSAFE)


def _tree(n: int, parent: str = "/a", time: int = 1_700_000_000_000) -> DataTree:
    t = DataTree()
    t.create(parent, b"", ACL, 0, -1, 1, time)
    for i in range(n):
        t.create(f"{parent}/c{i}", bytes(bytearray(b"x" * 100)), ACL, 0, -1, 2 + i, time)
    return t


def test_a_leaf_znode_is_one_bytes_object_of_its_head_and_data() -> None:
    t = _tree(1)
    stored = t.packed["/a/c0"]
    # a plain bytes object: its own 33 bytes besides head and data, and no header of the cycle
    # collector (a bytes subclass has one: 16 bytes more per leaf)
    assert type(stored) is bytes and sys.getsizeof(stored) == 33 + HEAD_SIZE + 100
    node = t.nodes["/a/c0"]
    assert type(node) is Leaf and not hasattr(node, "__dict__") and node.raw is stored
    assert node.owner == 0 and node.data == b"x" * 100 and node.children is None
    assert type(t.nodes["/a"]) is Dir and t.nodes["/a"].children == {"/a/c0": None}


def test_ephemeral_container_and_ttl_nodes_keep_their_owner() -> None:
    t = DataTree()
    t.create("/e", b"", ACL, 0x1234, -1, 1, 5)
    t.create("/c", b"", ACL, CONTAINER_OWNER, -1, 2, 5)
    assert t.nodes["/e"].owner == 0x1234
    assert t.nodes["/c"].owner == CONTAINER_OWNER
    assert t.ephemerals == {0x1234: {"/e"}} and t.containers == {"/c"}
    assert t.nodes["/e"].stat().ephemeralOwner == 0x1234


def test_children_are_keyed_by_the_path_strings_of_the_node_table() -> None:
    t = _tree(3)
    keys = {id(k) for k in t.nodes}
    for path, node in t.nodes.items():
        for child in node.children or ():
            assert id(child) in keys, (path, child)
    assert t.children_of("/a") == ["c0", "c1", "c2"]
    assert t.children_of("") == ["zookeeper", "a"]
    assert t.children_sorted(t.nodes["/zookeeper"]) == ["config", "quota"]


def test_listing_order_follows_the_java_hashset_through_growth_and_recreation() -> None:
    t = _tree(40)
    names = [f"c{i}" for i in range(40)]
    cap = grown_capacity(INITIAL_CAPACITY, 40)
    assert t.capacity_of("/a") == cap
    assert t.children_listed(t.nodes["/a"]) == hashset_order(names, cap)
    # a HashSet never shrinks: deleting children keeps the table size
    for i in range(35):
        t.delete(f"/a/c{i}", 100 + i)
    assert t.children_listed(t.nodes["/a"]) == hashset_order(names[35:], cap)
    # a node deleted and made again starts with a new, small table
    for i in range(35, 40):
        t.delete(f"/a/c{i}", 200 + i)
    t.delete("/a", 300)
    assert "/a" not in t.capacities
    t.create("/a", b"", ACL, 0, -1, 400, 5)
    for name in ("x", "y"):
        t.create(f"/a/{name}", b"", ACL, 0, -1, 401, 5)
    assert t.capacity_of("/a") == INITIAL_CAPACITY
    assert t.children_listed(t.nodes["/a"]) == hashset_order(["x", "y"], INITIAL_CAPACITY)


def test_count_descendants_and_walk_use_the_child_paths() -> None:
    t = _tree(5)
    t.create("/a/c1/d", b"", ACL, 0, -1, 50, 5)
    assert t.count_descendants("/a") == 6
    walked = [p for p, _ in t.walk()]
    assert walked.index("/a") < walked.index("/a/c1") < walked.index("/a/c1/d")
    assert set(walked) == set(t.nodes)


def test_a_changed_leaf_is_a_new_object_and_a_dir_changes_in_place() -> None:
    t = _tree(2)
    before, parent = t.nodes["/a/c0"], t.nodes["/a"]
    t.set_data("/a/c0", b"new", 0, 9, 77)
    after = t.nodes["/a/c0"]
    assert before.data == b"x" * 100 and before.mzxid == 2  # a reply's node keeps what it said
    assert after.data == b"new" and after.mzxid == 9 and after.mtime == 77 and after.ctime == 1_700_000_000_000
    t.create("/a/c9", None, ACL, 0, -1, 10, 5)
    assert t.nodes["/a"] is parent and parent.pzxid == 10 and parent.cversion == 3
    assert t.nodes["/a/c9"].data is None and t.nodes["/a/c9"].stat().dataLength == 0
    assert t.nodes["/a/c0"].data == b"new" and t.nodes["/a/c9"].stat().numChildren == 0


def test_a_loaded_node_keeps_every_stat_field() -> None:
    t = DataTree()
    big = 1 << 40
    stat = StatPersisted(big + 1, big + 2, big, big + 3, 4, 5, 6, 0, big + 7)
    decode_snapshot_node(t, "/n", b"d", ACL, stat)
    n = t.nodes["/n"]
    assert n.persisted() == stat and n.data == b"d" and n.acl == tuple(ACL)
    assert n.dig == entry_digest("/n", b"d", stat)


_LONG = st.integers(-(2**63), 2**63 - 1)
_INT = st.integers(-(2**31), 2**31 - 1)


@given(stat=st.builds(StatPersisted, _LONG, _LONG, _LONG, _LONG, _INT, _INT, _INT, _LONG, _LONG),
       data=st.one_of(st.none(), st.binary(max_size=40)),
       acl=st.sampled_from([list(OPEN_ACL_UNSAFE), list(READ_ACL_UNSAFE), []]))
@settings(max_examples=200, deadline=None)
def test_a_packed_node_gives_back_what_went_in(stat: StatPersisted, data: bytes | None, acl: list) -> None:
    """Whatever Java's long and int hold (negative owners, zxids near 2**63, null or empty
    data, empty ACLs), a node read from a snapshot says it back, digest included."""
    t = DataTree()
    decode_snapshot_node(t, "/n", data, acl, stat)
    n = t.nodes["/n"]
    assert n.persisted() == stat and n.data == data and list(n.acl) == acl
    s = n.stat()
    assert (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.aversion) == (
        stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime, stat.version, stat.aversion)
    assert s.ephemeralOwner == max(stat.ephemeralOwner, 0) and s.dataLength == len(data or b"")
    assert n.dig == entry_digest("/n", data, stat) == node_digest("/n", n)
    t.set_data("/n", b"z", stat.version, stat.mzxid, stat.mtime)
    assert t.nodes["/n"].persisted() == stat and t.nodes["/n"].data == b"z"


def test_values_beyond_java_widths_wrap_as_java_keeps_them() -> None:
    t = DataTree()
    t.create("/w", b"", ACL, 0, -1, 2**63 + 5, 2**64 + 7)
    n = t.nodes["/w"]
    assert n.czxid == -(2**63) + 5 and n.ctime == 7
    # the digest of the unwrapped values is that of their two's complement bits
    assert n.dig == node_digest("/w", n)
    t.set_data("/w", b"", 2**31, 9, 9)
    assert t.nodes["/w"].version == -(2**31)


def test_per_namespace_counts_one_and_many_samples() -> None:
    counts = PerNamespace()
    counts.add("/", 5)
    counts.add("/solo", 10)
    counts.add("/many", 1)
    counts.add("/many/x", 100)
    counts.add("/many/y/z", 7)
    assert counts.rows() == {"solo": (1, 15, 15, 15), "many": (3, 6 + 107 + 16, 6, 107)}


def test_recovery_streams_the_snapshot_into_the_tree_in_file_order(tmp_path) -> None:
    now = 1_700_000_000_000
    stat = StatPersisted(1, 1, now, now, 0, 0, 0, 0, 1)
    empty = StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0)
    # the order Apache writes (a pre-order walk in HashSet order), not sorted
    nodes = [("", b"", ACL, empty), ("/zookeeper", b"", ACL, empty), ("/zookeeper/quota", b"", ACL, empty),
             ("/b", b"", ACL, stat), ("/b/y", b"1", ACL, stat), ("/b/x", b"2", ACL, stat), ("/a", None, ACL, stat)]
    snapmod.write_snapshot(tmp_path, 1, {7: 30000}, nodes)
    db = Database.open(tmp_path)
    try:
        t = db.tree
        assert set(t.nodes) == {"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "/b", "/b/y", "/b/x",
                                "/a"}
        assert t.children_of("/b") == ["y", "x"]  # inserted as read, as Apache's deserialize does
        assert t.nodes["/b/x"].data == b"2" and t.nodes["/a"].data is None
        assert db.sessions == {7: 30000}
        assert t.last_zxid == 1
    finally:
        db.close()


def test_recovery_skips_a_damaged_newest_snapshot_and_builds_from_the_older(tmp_path, caplog) -> None:
    now = 1_700_000_000_000
    stat = StatPersisted(1, 1, now, now, 0, 0, 0, 0, 1)
    empty = StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0)
    base = [("", b"", ACL, empty), ("/zookeeper", b"", ACL, empty), ("/zookeeper/quota", b"", ACL, empty)]
    snapmod.write_snapshot(tmp_path, 1, {}, base + [("/old", b"", ACL, stat)])
    newest = snapmod.write_snapshot(tmp_path, 2, {}, base + [("/new", b"", ACL, stat)] +
                                    [(f"/new{i}", b"z" * 50, ACL, stat) for i in range(50)])
    raw = bytearray(newest.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # a node in the middle: read half-way before the damage shows
    newest.write_bytes(bytes(raw))
    db = Database.open(tmp_path)
    try:
        assert "/old" in db.tree.nodes and "/new" not in db.tree.nodes
        assert db.tree.last_zxid == 1
    finally:
        db.close()
    assert "skipping snapshot" in caplog.text


def _loaded_both_ways(path) -> tuple[DataTree, DataTree]:
    slow, fast = DataTree(), DataTree()
    snapmod.read_snapshot(path, lambda p, d, a, s: decode_snapshot_node(slow, p, d, a, s))
    snapmod.read_snapshot(path, raw_sink=Loader(fast))
    return slow, fast


def test_recovery_without_records_builds_the_same_tree(tmp_path) -> None:
    now = 1_700_000_000_000
    nodes = [("", b"", ACL, StatPersisted(0, 0, 0, 0, 0, 3, 0, 0, 9)),
             ("/zookeeper", b"", ACL, StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0)),
             ("/a", None, ACL_READ, StatPersisted(1, 2, now, now + 1, 3, 4, 5, 0, 6)),
             ("/a/e", b"\0" * 7, ACL, StatPersisted(7, 7, now, now, 0, 0, 0, -(2**63) + 1, 7)),
             ("/b", b"x" * 300, ACL, StatPersisted(2**63 - 1, -1, -(2**63), 0, -(2**31), 2**31 - 1, -5, 0x1234, 8))]
    path = snapmod.write_snapshot(tmp_path, 9, {}, nodes)
    slow, fast = _loaded_both_ways(path)
    assert set(slow.nodes) == set(fast.nodes)
    for p, n in slow.nodes.items():
        m = fast.nodes[p]
        assert (n.data, n.acl, n.persisted(), n.dig, n.children) == (m.data, m.acl, m.persisted(), m.dig, m.children)
    assert slow.tree_digest() == fast.tree_digest() and slow.ephemerals == fast.ephemerals
    assert fast.ephemerals[0x1234] == {"/b"}


def test_recovery_without_records_refuses_a_child_before_its_parent() -> None:
    # (the snapshot writer will not write such a file; a reader turns the ValueError into a
    # SnapshotError, as for any unreadable node)
    load = Loader(DataTree())
    load("", memoryview(b""), ACL, memoryview(StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0).to_bytes()))
    with pytest.raises(ValueError, match="before its parent"):
        load("/a/b", memoryview(b""), ACL, memoryview(StatPersisted(1, 1, 0, 0, 0, 0, 0, 0, 1).to_bytes()))


_NAMES = st.sampled_from(["a", "b", "c", "config", "é", "\ufffd", "x" * 30])


@st.composite
def _snapshot_nodes(draw: st.DrawFn) -> list[tuple[str, bytes | None, list, StatPersisted]]:
    """A snapshot's node list in file order (pre-order): the root, the system nodes, then a
    random tree with any stat, owner kind, ACL and null or empty data, some parents wide enough
    for their HashSet to grow."""
    zero = StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0)
    nodes = [("", b"", ACL, zero), ("/zookeeper", b"", ACL, zero), ("/zookeeper/quota", b"", ACL, zero)]
    owners = st.sampled_from([0, 0, 0x1234, 0x5678, CONTAINER_OWNER, -(1 << 56) + 42])
    stats = st.builds(StatPersisted, _LONG, _LONG, _LONG, _LONG, _INT, _INT, _INT, owners, _LONG)
    datas = st.one_of(st.none(), st.just(b""), st.binary(max_size=30))
    acls = st.sampled_from([ACL, ACL_READ, []])

    def subtree(parent: str, depth: int) -> None:
        names = draw(st.lists(_NAMES, max_size=4, unique=True)) if depth else []
        wide = draw(st.integers(0, 20)) if depth == 2 else 0
        for name in names + [f"w{i}" for i in range(wide)]:
            path = f"{parent}/{name}"
            nodes.append((path, draw(datas), draw(acls), draw(stats)))
            subtree(path, depth - 1)

    subtree("", 2)
    return nodes


@settings(max_examples=60, deadline=None)
@given(nodes=_snapshot_nodes())
def test_recovery_paths_build_the_same_tree_with_its_counts(tmp_path_factory, nodes) -> None:
    path = snapmod.write_snapshot(tmp_path_factory.mktemp("snap"), 9, {}, nodes)
    slow, fast = _loaded_both_ways(path)
    assert set(slow.nodes) == set(fast.nodes) >= {p or "/" for p, *_ in nodes}
    for p, n in slow.nodes.items():
        m = fast.nodes[p]
        assert (n.data, n.acl, n.persisted(), n.dig, n.children) == (m.data, m.acl, m.persisted(), m.dig, m.children)
        assert slow.children_listed(n) == fast.children_listed(m)
    for t in (slow, fast):
        # the bytes were counted as the nodes went in: what a count afresh finds
        assert t.data_size() == sum(len(p) + len(n.data or b"") for p, n in t.nodes.items())
    assert slow.tree_digest() == fast.tree_digest()
    assert (slow.ephemerals, slow.containers, slow.ttls) == (fast.ephemerals, fast.containers, fast.ttls)
    assert slow.capacities == fast.capacities


@settings(max_examples=60, deadline=None)
@given(nodes=_snapshot_nodes(), zxid=st.sampled_from([-1, 0, 1, 1 << 20, 2**63 - 1]),
       sessions=st.dictionaries(_LONG, _INT, max_size=3))
def test_a_snapshot_written_from_the_packed_tree_is_the_checked_writers_file(tmp_path_factory, nodes, zxid,
                                                                            sessions) -> None:
    # the server writes its snapshots (and a leader its SNAP) from the packed znodes as rows:
    # byte for byte the file the checked writer makes of the same nodes as records, its
    # digest counted afresh from each node's path, data and stat (or the empty digest of a
    # fuzzy copy, a node changed after the snapshot's zxid)
    tree = DataTree()
    snapmod.read_snapshot(snapmod.write_snapshot(tmp_path_factory.mktemp("snap"), 9, {}, nodes),
                          raw_sink=Loader(tree))
    records = [("" if p == "/" else p, n.data, list(n.acl), n.persisted()) for p, n in sorted(tree.nodes.items())]
    rows = SnapshotRows(tree.packed.items(), zxid)
    assert snapmod.serialize_rows(zxid, sessions, rows.acls, rows, snapmod.zxid_digest(zxid, rows.digest)) == \
        snapmod.serialize(zxid, sessions, records, snapmod.digest_of(zxid, records))
    if rows.digest is not None and zxid > 0:  # every node at or before zxid: the tree's own digest
        assert rows.digest == tree.tree_digest()


def test_snapshot_rows_of_a_parent_whose_child_went_after_the_zxid_name_no_digest() -> None:
    # only /a's pzxid shows the delete at zxid 3: a copy said to be at zxid 2 is fuzzy
    t = DataTree()
    t.create("/a", b"x", ACL, 0, -1, 1, 1)
    t.create("/a/b", b"y", ACL, 0, -1, 2, 1)
    t.delete("/a/b", 3)
    assert t.nodes["/a"].pzxid == 3 and t.nodes["/a"].mzxid == 1
    assert SnapshotRows(t.packed.items(), 2).digest is None
    assert SnapshotRows(t.packed.items(), 3).digest == t.tree_digest()
