"""zkops's build backend: setuptools', plus the optional compiled build.

``ZKOPS_COMPILE=1 pip install .`` (or ``ZKOPS_COMPILE=1 python -m build``) builds a wheel whose
request path is compiled with mypyc, next to the same ``.py`` sources (setup.py names the
modules); mypy is then a build requirement. Without the variable the build is setuptools' own
and the wheel pure Python, exactly as before: nothing but the standard library at run time.
An editable install is never compiled (the extension modules would land in the checkout).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (the hooks this backend does not change)
    build_sdist,
    get_requires_for_build_sdist,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

ENV = "ZKOPS_COMPILE"
# set by this backend while it builds a wheel that compiles: setup.py compiles only then (not when
# setuptools runs setup.py to find requirements or metadata)
BUILDING = "ZKOPS_COMPILE_BUILDING"
MYPY = "mypy>=1.10"


def compiling() -> bool:
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "no", "false")


@contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires = list(_setuptools.get_requires_for_build_wheel(config_settings))
    return [*requires, MYPY] if compiling() else requires


def build_wheel(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                metadata_directory: str | None = None) -> str:
    with _env(BUILDING, "1" if compiling() else None):
        return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return list(_setuptools.get_requires_for_build_editable(config_settings))


def build_editable(wheel_directory: str, config_settings: dict[str, Any] | None = None,
                   metadata_directory: str | None = None) -> str:
    with _env(BUILDING, None):
        return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))
