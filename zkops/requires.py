"""Optional parts of the tool name the package they miss and the command that installs it.

``pip install zkops`` brings every library the tool uses; a copy installed with ``--no-deps``
(as nodes get it, for the server alone) or a package removed afterwards must not end in a bare
``ModuleNotFoundError``: :func:`need` imports a module or raises :class:`MissingPackage`, whose
message says what needs it and how to install it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# module -> the distribution that provides it
PACKAGES = {"fabric": "fabric", "paramiko": "paramiko", "testinfra": "pytest-testinfra", "pytest": "pytest",
            "docker": "docker", "cryptography": "cryptography", "jinja2": "Jinja2", "yaml": "PyYAML",
            "kazoo": "kazoo", "rich": "rich"}


class MissingPackage(ImportError):
    """A library the command needs is not installed; the message says how to install it."""


def install_hint(package: str) -> str:
    return f"pip install '{package}' (into the environment zkops runs from), or reinstall: pip install zkops"


def need(module: str, what: str) -> ModuleType:
    """Import ``module`` for ``what`` (e.g. "zkops deploy over SSH"), or raise MissingPackage."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        package = PACKAGES.get(top, top)
        missing = getattr(exc, "name", None) or top
        if missing.split(".")[0] != top:  # the module is there but one of its own dependencies is not
            package = PACKAGES.get(missing.split(".")[0], missing.split(".")[0])
        raise MissingPackage(f"{what} needs the Python package {package}, which is not installed: "
                             f"{install_hint(package)}") from None
