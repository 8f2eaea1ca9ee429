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


# compiled on first use (start-up); the surrogates' start as chr(): mypyc compiles no string
# literal holding a surrogate (the compiled build compiles this module)
_BAD_CHARS = "[\u0000-\u001f\u007f-\u009f" + chr(0xD800) + "-\uf8ff\ufff0-\uffff]"
_bad_char: re.Pattern[str] | None = None


def validate_path(path: str | None, sequential: bool = False) -> None:
    """Raise InvalidPath unless ``path`` is a valid absolute znode path.

    A sequential create may end in '/' because the server appends the counter.
    """
    if path is None:
        raise InvalidPath("Path cannot be null")
    if sequential:
        path = path + "1"
    if (path.isascii() and path.isprintable() and path[:1] == "/" and path[-1:] != "/" and "//" not in path
            and "/." not in path):
        # valid for certain: printable ASCII has none of _BAD_CHARS, and without
        # "//" or "/." no name is empty, "." or ".."; any other path takes the whole rule.
        # Nothing is remembered: a cache of valid paths held its table and the path strings
        # it kept alive, and its tables, grown and cleared over and over, left holes in the
        # heap (docs/performance.md, "Memory"); a caller that knows a path is in the tree
        # need not ask (prep.Preparer._path)
        return
    whole_rule(path)


def whole_rule(path: str) -> None:
    """PathUtils.validatePath's checks, one by one, with its messages."""
    if not path:
        raise InvalidPath("Path length must be > 0")
    if path[0] != "/":
        raise InvalidPath("Path must start with / character")
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise InvalidPath("Path must not end with / character")
    for name in path[1:].split("/"):
        if not name:
            raise InvalidPath(f"empty node name specified @{path.find('//') + 1}")
        if name in (".", ".."):
            raise InvalidPath(f"relative paths not allowed @{path.find('/' + name) + 1}")
    global _bad_char
    if _bad_char is None:
        _bad_char = re.compile(_BAD_CHARS)
    bad = _bad_char.search(path)
    if bad is not None:
        raise InvalidPath(f"invalid character @{bad.start()}")


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
