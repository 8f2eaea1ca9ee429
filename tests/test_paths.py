"""server/paths.py: the quick check of a valid path agrees with ZooKeeper's whole rule."""

from __future__ import annotations

import random
import re
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server.codes import Err, Op
from zkops.server.datatree import DataTree
from zkops.server.paths import InvalidPath, validate_path, whole_rule
from zkops.server.prep import Preparer
from zkops.server.records import ACL, CheckVersionRequest, Id, SetACLRequest, SetDataRequest

PATHS = st.text(st.sampled_from(["/", ".", "a", "z", " ", "\x00", "\x1f", "\x7f", "\x85", "é", "\ud800", "\ufff0"]),
                max_size=12)


def _outcome(check, path: str) -> str | None:
    try:
        check(path)
    except InvalidPath as exc:
        return str(exc)
    return None


@settings(max_examples=2000, deadline=None)
@given(PATHS, st.booleans())
def test_validate_path_says_what_the_whole_rule_says(path, sequential):
    expected = _outcome(whole_rule, path + "1" if sequential else path)
    assert _outcome(lambda p: validate_path(p, sequential), path) == expected


@pytest.mark.parametrize(("path", "message"), [
    ("", "Path length must be > 0"),
    ("a/b", "Path must start with / character"),
    ("/a/", "Path must not end with / character"),
    ("/a//b", "empty node name specified @3"),
    ("/a/./b", "relative paths not allowed @3"),
    ("/a/..", "relative paths not allowed @3"),
    ("/a\x7fb", "invalid character @2"),
])
def test_invalid_paths_keep_zookeepers_messages(path, message):
    with pytest.raises(InvalidPath, match=f"^{message}$"):
        validate_path(path)


def test_validating_paths_keeps_nothing():
    """A server that validates a new path per create holds nothing per path afterwards (a cache
    of valid paths held its table and the paths: docs/performance.md, "Memory")."""
    validate_path("/warm")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            validate_path(f"/n{i}")
            validate_path(f"/a/.n{i}")  # and the whole rule's
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 4096, kept


OPEN = [ACL(31, Id("world", "anyone"))]
TREE_PATHS = ["/a", "/a/.b", "/é", "/a b", "/a/..c"]  # valid; "/a/.b", "/é" and "/a/..c" take the whole rule


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(TREE_PATHS), PATHS), st.sampled_from([Op.setData, Op.check, Op.setACL]))
def test_the_preparer_refuses_exactly_the_paths_the_rule_refuses(path, op):
    """setData, check and setACL skip the rule for a path the tree holds: the answer must still
    be BADARGUMENTS for every path the rule refuses, and never for one it takes."""
    tree = DataTree()
    for i, p in enumerate(TREE_PATHS, 1):
        tree.create(p, b"", OPEN, 0, -1, i, 1000)
    tree.last_zxid = len(TREE_PATHS)
    request = {Op.setData: SetDataRequest(path, b"x", -1), Op.check: CheckVersionRequest(path, -1),
               Op.setACL: SetACLRequest(path, OPEN, -1)}[op]
    hdr, body = Preparer(tree).prepare(0x77, 1, op, request, [Id("ip", "127.0.0.1")], 5000)
    refused = hdr.type == Op.error and body.err == Err.BADARGUMENTS
    assert refused == (_outcome(whole_rule, path) is not None), (path, hdr.type, body)
    if path in TREE_PATHS:
        assert hdr.type == op, (path, body)


# PathUtils.validatePath's rules written out name by name, a second witness besides whole_rule
_BAD = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]")


def _reference(path: str, sequential: bool) -> bool:
    """PathUtils.validatePath's rules, name by name (True: valid)."""
    if sequential:
        path += "1"
    if not path or path[0] != "/":
        return False
    if len(path) == 1:
        return True
    if path[-1] == "/":
        return False
    for name in path[1:].split("/"):
        if not name or name in (".", ".."):
            return False
    return _BAD.search(path) is None


def _valid(path: str, sequential: bool) -> bool:
    try:
        validate_path(path, sequential)
    except InvalidPath:
        return False
    return True


@pytest.mark.parametrize("path", ["/", "/a", "/a/b", "//a", "/a//b", "/a/", "/.", "/..", "/a/.", "/a/..", "/.a",
                                  "/a/.b", "/a./b", "/..a/b", "/a b", "/a\x00b", "/a\x1fb", "/a\x7f", "/é", "/a\x85",
                                  "/\ud800", "/\uf8ff", "/\ufff0", "/\uffef", "a", "", "/a/b/c/d", "/ /"])
def test_known_paths(path):
    for sequential in (False, True):
        assert _valid(path, sequential) == _reference(path, sequential), (path, sequential)


def test_random_paths_agree_with_the_rules():
    rng = random.Random(21)
    alphabet = ["/", "/", ".", ".", "a", "b", " ", "\x00", "\x1f", "\x7f", "\x9f", "é", "\ud800", "\ufff5", "~"]
    for _ in range(20_000):
        path = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.7:
            path = "/" + path
        for sequential in (False, True):
            assert _valid(path, sequential) == _reference(path, sequential), (path, sequential)
