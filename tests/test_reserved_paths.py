"""The reserved paths are named through zkops.server.paths' constants, never as literals.

Only the package's sources are checked (tests may spell paths out: they speak the protocol).
PENDING lists the modules that still hold literals, to move to the constants (each is being
rewritten elsewhere as this test is written); no other module may gain one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from zkops.server import paths

ROOT = Path(__file__).resolve().parent.parent
RESERVED = {paths.ZOOKEEPER, paths.ZOOKEEPER + "/", paths.QUOTA, paths.CONFIG}
PENDING = {"server/datatree.py", "server/prep.py", "server/quorum.py", "server/zkserver.py"}


def literals() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for top in ("server", "labs", "provision", "zkops", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel == "server/paths.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), rel)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in RESERVED:
                    found.setdefault(rel, []).append(node.lineno)
    return found


def test_the_constants_are_the_reserved_paths() -> None:
    assert (paths.ZOOKEEPER, paths.QUOTA, paths.CONFIG) == ("/zookeeper", "/zookeeper/quota", "/zookeeper/config")


def test_no_module_spells_a_reserved_path() -> None:
    stray = {f: lines for f, lines in literals().items() if f not in PENDING}
    assert not stray, f"use zkops.server.paths' constants instead of these literals: {stray}"
