"""Lab backends: the protocol every backend implements, and the one table of them.

A backend turns the lab model (``labs/model.py``) into running servers somewhere: processes
on this machine (``local``), processes in network namespaces (``netns``), containers
(``docker``), hosts reached over SSH (``ssh``) or Vagrant machines (``vagrant``). ``Lab``
drives whichever ``REGISTRY`` names through the ``Backend`` protocol only; the backends do not
import this module (they satisfy the protocol structurally), so it imports them freely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .docker import DockerBackend
from .faultproxy import Faults
from .local import LocalBackend
from .model import LabError, LabState, Node
from .netns import NetnsBackend
from .ssh import SshBackend
from .vagrant import VagrantBackend


@runtime_checkable
class Backend(Protocol):
    """What ``Lab`` asks of a backend. ``create`` lays the lab out and returns its state (a
    backend may take keyword options of its own: the ssh backend's ``inventory``, the vagrant
    backend's ``vagrant_dir``); the backend is then built from that state, ``prepare``d, and
    its nodes started, observed and faulted one by one."""

    def __init__(self, lab_dir: Path, state: LabState) -> None: ...

    @staticmethod
    def create(lab_dir: Path, nodes: int, observers: int, tick_ms: int) -> LabState: ...

    def prepare(self) -> None: ...

    def destroy(self) -> None: ...

    def start(self, n: Node) -> None: ...

    def stop(self, n: Node) -> None:
        """A clean stop (SIGTERM), where ``kill`` is a crash."""

    def kill(self, n: Node) -> None: ...

    def signal(self, n: Node, sig: int) -> None: ...

    def running(self, n: Node) -> bool: ...

    def process_state(self, n: Node) -> str:
        """``running``, ``paused`` or ``stopped``."""

    def apply_faults(self, faults: Faults) -> None: ...

    def election_events(self, n: Node) -> list[dict[str, Any]]: ...


# backend name (``zkops lab up --backend NAME``, ``lab.json``'s "backend") -> its class
REGISTRY: dict[str, type[Backend]] = {
    "local": LocalBackend,
    "netns": NetnsBackend,
    "docker": DockerBackend,
    "vagrant": VagrantBackend,
    "ssh": SshBackend,
}
BACKENDS: tuple[str, ...] = tuple(REGISTRY)


def backend_class(name: str) -> type[Backend]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LabError(f"unknown backend {name!r}; this build has: {', '.join(BACKENDS)}") from None


__all__ = ["BACKENDS", "REGISTRY", "Backend", "backend_class"]
