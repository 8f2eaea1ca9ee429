"""paths.validate_path: the quick acceptance of printable ASCII paths agrees with the full rules."""

from __future__ import annotations

import random
import re

import pytest

from zkops.server.paths import InvalidPath, validate_path

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
