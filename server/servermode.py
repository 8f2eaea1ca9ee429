"""``ServerMode``: what a server is to its clients, as ``srvr``/``stat`` print it after
"Mode:", ``mntr`` as ``zk_server_state`` and the metrics as ``server_state``.

A leaf module: the shell (``zkserver``, ``quorum``) sets the mode, the reports (4lw,
AdminServer, metrics) read it. The members are their strings (``StrEnum``), so the text
every report prints is the one Apache ZooKeeper 3.8 prints.
"""

from __future__ import annotations

from .strenum import StrEnum


class ServerMode(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"
    OBSERVER = "observer"
    STANDALONE = "standalone"
    LOOKING = "looking"  # an ensemble member without a role: it serves no client
    READ_ONLY = "read-only"  # readonlymode.enabled, and no quorum yet

    @property
    def voting(self) -> bool:
        """A leader or follower: a voter of the ensemble."""
        return self in (ServerMode.LEADER, ServerMode.FOLLOWER)


__all__ = ["ServerMode"]
