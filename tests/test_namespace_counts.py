"""The tree's per-namespace write counts (mntr's ``*_write_per_namespace``) are kept in the root's
children while a namespace's top-level znode exists, and count what a plain ``PerNamespace``
fed the same writes counts.

A tree of many top-level znodes (each its own namespace, as Apache counts them) pays no dict
entry per namespace: the row is the value of the znode's path in the root's children dict.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server.codes import Op, ZkError
from zkops.server.datatree import DataTree
from zkops.server.metrics import PerNamespace
from zkops.server.records import ACL, Id, SetDataTxn, TxnHeader

OPEN = [ACL(31, Id("world", "anyone"))]


def test_top_level_znodes_keep_their_write_counts_in_the_roots_children() -> None:
    t = DataTree()
    for i in range(1000):
        t.create(f"/n{i}", b"x" * 100, OPEN, 0, -1, i + 1, 0)
    assert t.writes.by_key == {}  # no entry of their own
    root = t.nodes["/"].children
    assert root is not None and root["/n7"] == 103 and root["/zookeeper"] is None
    t.set_data("/n7", b"yy", -1, 2000, 0)
    t.create("/n7/c", b"", OPEN, 0, -1, 2001, 0)
    assert t.writes.rows()["n7"] == (3, 103 + 5 + 5, 5, 103)
    # mntr and stat read the root's children as before
    assert t.nodes["/"].stat().numChildren == 1001
    assert sorted(t.children_of("/"))[:3] == ["n0", "n1", "n10"]
    t.delete("/n7/c", 2002)
    t.delete("/n7", 2003)
    # a deleted namespace keeps its counts (as Apache's), outside the root's children
    assert "/n7" not in root and t.writes.by_key == {"/n7": [5, 103 + 5 + 5 + 5 + 3, 3, 103]}
    assert t.writes.rows()["n7"] == (5, 121, 3, 103)
    t.create("/n7", b"z", OPEN, 0, -1, 2004, 0)  # made again: the row comes back home
    assert t.writes.by_key == {} and t.writes.rows()["n7"] == (6, 125, 3, 103)


_NAMES = st.sampled_from(["/a", "/b", "/é", "/a/x", "/a/y", "/b/x", "/a/x/q", "/zookeeper/quota/z"])
_OPS = st.lists(st.tuples(st.sampled_from(["create", "delete", "set", "apply_set"]), _NAMES,
                          st.one_of(st.none(), st.binary(max_size=20))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS)
def test_the_counts_are_those_of_a_plain_per_namespace_table(ops) -> None:
    t = DataTree()
    plain = PerNamespace()  # what the tree counted before: every namespace in a dict of its own
    for zxid, (op, path, data) in enumerate(ops, start=1):
        try:
            if op == "create":
                t.create(path, data, OPEN, 0, -1, zxid, zxid)
            elif op == "delete":
                if t.nodes.get(path) is not None and t.nodes[path].children:
                    continue  # (the preparer refuses NOTEMPTY; the tree is not asked)
                t.delete(path, zxid)
            elif op == "set":
                t.set_data(path, data, 1, zxid, zxid)
            else:
                r = t.apply(TxnHeader(1, 1, zxid, zxid, Op.setData), SetDataTxn(path, data, 1))
                if r.err:
                    continue
        except ZkError:
            continue
        plain.add(path, 0 if op == "delete" or not data else len(data))
        assert t.writes.rows() == plain.rows()
        root = t.nodes["/"].children
        at_home = {k for k, v in root.items() if v is not None} if root is not None else set()
        assert not (set(t.writes.by_key) & at_home) and t.writes.at_home == len(at_home)
