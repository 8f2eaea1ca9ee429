"""No module reaches into another module's or object's private names.

A name that starts with one underscore is private to the module that defines it: the shell
talks to the cores, the reports to the server, the CLI to its libraries through public names
only. Found by reading the source (``ast``) of every module under server/, labs/, provision/
and zkops/:

- ``obj._x`` where ``obj`` is not ``self``, ``cls`` or ``super()``, unless ``_x`` is defined
  in the same module (a method, a class or module name, an attribute set on ``self``/``cls``,
  a ``__slots__`` entry): a module may use its own private names on any of its objects;
- ``from m import _x``.

Dunder names (``__init__``) are not private. A few underscore names are documented public
API (``os._exit``, namedtuple's ``_make``/``_replace``/``_asdict``/``_fields``) and pass.
What is left is listed in ALLOWED with the reason; the test fails on anything else, and on
an ALLOWED entry that no longer occurs (so the list only shrinks).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "labs", "provision", "zkops")

DOCUMENTED = {"_make", "_replace", "_asdict", "_fields"}  # collections.namedtuple's public API
DOCUMENTED_QUALIFIED = {"os._exit"}

# (file, expression as ast.unparse prints it): accesses still there, with why.
ALLOWED: dict[tuple[str, str], str] = {
    # kazoo has no public API for these: a hook on every watch event the connection reads
    # (zkcli prints WATCHER:: lines for all of them), sending a raw request, and dropping a
    # client-side watcher (removewatches -l).
    ("zkops/zkcli/commands.py", "zk._connection"): "kazoo: no public watch-event hook",
    ("zkops/zkcli/commands.py", "zk._connection._read_watch_event"): "kazoo: no public watch-event hook",
    ("zkops/zkcli/commands.py", "zk._data_watchers"): "kazoo: no public local watcher removal",
    ("zkops/zkcli/commands.py", "zk._child_watchers"): "kazoo: no public local watcher removal",
    ("zkops/zkcli/requests.py", "client._call"): "kazoo: no public way to send a raw request",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _own_names(tree: ast.AST) -> set[str]:
    """The private names a module defines itself."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
            names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                  for t in node.targets):
            names.update(c.value for c in ast.walk(node.value)
                         if isinstance(c, ast.Constant) and isinstance(c.value, str))
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if _private(n)}


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_accesses(source: str) -> list[tuple[int, str]]:
    """(line, expression) of every private access in one module's source."""
    tree = ast.parse(source)
    own = _own_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if _is_self(node.value) or node.attr in own or node.attr in DOCUMENTED:
                continue
            text = ast.unparse(node)
            if text in DOCUMENTED_QUALIFIED:
                continue
            found.append((node.lineno, text))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


def all_accesses() -> dict[tuple[str, str], list[int]]:
    out: dict[tuple[str, str], list[int]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for line, text in private_accesses(path.read_text()):
                out.setdefault((rel, text), []).append(line)
    return out


def test_no_module_uses_another_ones_private_names() -> None:
    found = all_accesses()
    new = {f"{f}:{lines[0]}: {text}" for (f, text), lines in found.items() if (f, text) not in ALLOWED}
    assert not new, "private names used across modules:\n" + "\n".join(sorted(new))


def test_the_allow_list_holds_only_what_is_still_there() -> None:
    found = all_accesses()
    gone = [key for key in ALLOWED if key not in found]
    assert not gone, f"no longer used, drop from ALLOWED: {gone}"


def test_the_checker_sees_what_it_should() -> None:
    src = '''
import os
from m import _hidden, shown
class A:
    __slots__ = ("_slot",)
    def __init__(self, other):
        self._mine = 1
        other._mine = 2          # own name: allowed
        other._theirs = 3        # not defined here: found
        super()._base()          # allowed
        os._exit(0)              # documented
        row._replace(a=1)        # documented (namedtuple)
        obj.__class__            # dunder
        x._slot                  # own __slots__ entry
'''
    assert [text for _, text in private_accesses(src)] == ["from m import _hidden", "other._theirs"]
