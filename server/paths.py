"""ZooKeeper's path rules (PathUtils.validatePath), so bad paths fail as they do there, and
the reserved paths."""

from __future__ import annotations

import re

# The subtree every ZooKeeper server reserves for itself, and the nodes in it. Name them
# through these constants, never as literals (tests/test_reserved_paths.py checks).
ZOOKEEPER = "/zookeeper"
QUOTA = "/zookeeper/quota"  # Quotas.quotaZookeeper
CONFIG = "/zookeeper/config"  # ZooDefs.CONFIG_NODE: the ensemble's membership


class InvalidPath(ValueError):
    """The path breaks a ZooKeeper path rule; the message says which."""


_BAD_CHAR = re.compile("[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]")
_valid_cache: dict[str, bool] = {}


def validate_path(path: str | None, sequential: bool = False) -> None:
    """Raise InvalidPath unless ``path`` is a valid absolute znode path.

    A sequential create may end in '/' because the server appends the counter.
    """
    if path is None:
        raise InvalidPath("Path cannot be null")
    if sequential:
        path = path + "1"
    elif path in _valid_cache:
        return
    if not path:
        raise InvalidPath("Path length must be > 0")
    if path[0] != "/":
        raise InvalidPath("Path must start with / character")
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise InvalidPath("Path must not end with / character")
    if path.isascii() and path.isprintable() and "//" not in path and "/." not in path:
        # the usual path, checked without the walk below: printable ASCII has none of the
        # characters _BAD_CHAR names, and no "." or ".." name starts without "/."
        return
    for name in path[1:].split("/"):
        if not name:
            raise InvalidPath(f"empty node name specified @{path.find('//') + 1}")
        if name in (".", ".."):
            raise InvalidPath(f"relative paths not allowed @{path.find('/' + name) + 1}")
    bad = _BAD_CHAR.search(path)
    if bad is not None:
        raise InvalidPath(f"invalid character @{bad.start()}")
    if len(_valid_cache) > 100_000:
        _valid_cache.clear()
    _valid_cache[path] = True


def parent_of(path: str) -> str:
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


def basename(path: str) -> str:
    return path[path.rfind("/") + 1:]


def join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name


def ancestors(path: str) -> list[str]:
    """Every proper ancestor of ``path``, nearest first, ending with '/'."""
    out = []
    while path != "/":
        path = parent_of(path)
        out.append(path)
    return out
