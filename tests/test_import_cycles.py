"""No import cycle among the package's modules.

An import counts wherever it is written, at module level or inside a function (a cycle hidden
behind a function-level import is still two modules that cannot be understood apart), except
under ``if TYPE_CHECKING:``, which never runs. The package's modules are the ones of the
packages pyproject.toml lists, found through the import system (so its package-dir mapping
holds: ``server/`` is ``zkops.server``).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest depends on tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def package_modules(packages: list[str]) -> dict[str, Path]:
    """Module name -> source file for every module of the given packages (not recursive:
    each subpackage is listed by name, as in pyproject.toml)."""
    mods: dict[str, Path] = {}
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        assert spec is not None and spec.submodule_search_locations, f"{pkg} is not an importable package"
        for location in spec.submodule_search_locations:
            for path in sorted(Path(location).glob("*.py")):
                mods[pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"] = path
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them but the body of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The package modules one import statement loads (by name; names outside `known` dropped)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
    return {n for n in names if n in known}


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(name, path.stem == "__init__", node, known)
        edges.discard(name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _project_packages() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return list(tomllib.load(f)["tool"]["setuptools"]["packages"])


def test_the_package_has_no_import_cycle() -> None:
    mods = package_modules(_project_packages())
    assert "zkops.server.zkserver" in mods and "zkops.labs.lab" in mods, sorted(mods)
    graph = import_graph(mods)
    found = cycles(graph)
    report = "\n".join(" <-> ".join(c) for c in found)
    assert not found, f"import cycles (function-level imports count too):\n{report}"


def _write(root: Path, files: dict[str, str]) -> dict[str, Path]:
    mods = {}
    for name, text in files.items():
        parts = name.split(".")
        path = root.joinpath(*parts[:-1], f"{parts[-1]}.py") if not text.startswith("#pkg") \
            else root.joinpath(*parts, "__init__.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        mods[name] = path
    return mods


def test_detector_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "p": "#pkg\n",
        "p.a": "from .b import thing\n",
        "p.b": "def f():\n    from . import c\n    return c\nthing = 1\n",
        "p.c": "import p.a\n",
        "p.d": "from p import a\n",
    })
    assert cycles(import_graph(mods)) == [["p.a", "p.b", "p.c"]]


def test_detector_ignores_type_checking_imports(tmp_path: Path) -> None:
    mods = _write(tmp_path, {
        "q": "#pkg\n",
        "q.a": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n",
        "q.b": "from .a import x\n",
        "q.sub": "#pkg\n",
        "q.sub.c": "from ..a import x\nfrom .. import b\n",
    })
    graph = import_graph(mods)
    assert graph["q.a"] == set() and graph["q.sub.c"] == {"q.a", "q.b"}
    assert cycles(graph) == []
