"""setuptools' entry for zkops. Everything is declared in pyproject.toml; this file only adds the
optional compiled build: with ``ZKOPS_COMPILE=1`` (buildsys/zkops_backend.py) the modules of
``server/compiled.py``'s MODULES are compiled with mypyc into extension modules that the wheel
carries next to the unchanged ``.py`` sources (the code of each of its GROUPS is one shared
library, ``zkops/server/<group>__mypyc.*.so``, inside the package). Without it the wheel is pure
Python.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _compiled_extensions() -> list:
    from mypyc.build import mypycify

    spec = importlib.util.spec_from_file_location("_zkops_compiled", ROOT / "server" / "compiled.py")
    assert spec is not None and spec.loader is not None
    listing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(listing)
    # mypy names a module after its path, so the sources are laid out as installed (server/ is
    # zkops.server) in a copy under build/; the wheel's .py files still come from the checkout
    stage = Path("build") / "mypyc-src"
    shutil.rmtree(stage, ignore_errors=True)
    (stage / "zkops").mkdir(parents=True)
    shutil.copy2(ROOT / "zkops" / "__init__.py", stage / "zkops" / "__init__.py")
    shutil.copytree(ROOT / "server", stage / "zkops" / "server",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
    def source(name: str) -> str:
        return str(stage / "zkops" / "server" / f"{name}.py")

    groups = [([source(name) for name in names], f"zkops.server.{group}") for group, names in listing.GROUPS]
    paths = [p for sources, _group in groups for p in sources]
    return mypycify(["--config-file", str(ROOT / "pyproject.toml"), "--no-warn-unused-ignores", *paths],
                    separate=groups, target_dir=str(Path("build") / "mypyc-c"))


if os.environ.get("ZKOPS_COMPILE_BUILDING") == "1":  # set by the backend while it builds a compiled wheel
    setup(ext_modules=_compiled_extensions())
else:
    setup()
