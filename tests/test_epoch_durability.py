"""The shell's side of the epochs (server/quorum.py): saved before what promises them leaves.

A follower's ACK of NEWLEADER promises its current epoch, its ACKEPOCH and a leader's
LEADERINFO the accepted one (Apache writes both files first). ``Ensemble._apply`` carries out
a ``PeerOutput``; these tests drive it with stand-ins that record the order of disk writes
and sends.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from zkops.server.quorum import Ensemble, EpochFiles
from zkops.server.quorumpeer import PeerOutput
from zkops.server.zab import Ack, Envelope, Role, SaveEpochs


class _Recorder:
    def __init__(self) -> None:
        self.order: list[str] = []

    def send_to_leader(self, env: Envelope) -> None:
        self.order.append(f"send {type(env.msg).__name__}")

    def send_to_learner(self, sid: int, env: Envelope) -> None:
        self.order.append(f"send {type(env.msg).__name__}")

    def write(self, name: str, value: int) -> None:
        self.order.append(f"write {name}={value}")


def _shell(rec: _Recorder, role: Role) -> Any:
    shell = SimpleNamespace(election_net=SimpleNamespace(send=lambda to, n: None),
                            peer=SimpleNamespace(zab=SimpleNamespace(role=role)),
                            quorum_net=rec, epochs=rec, server=None, _event=lambda ev: None)
    shell._effect = lambda eff: Ensemble._effect(shell, eff)
    return shell


def test_a_follower_saves_its_epoch_before_its_ack_of_newleader_leaves() -> None:
    rec = _Recorder()
    out = PeerOutput(zab=[(1, Envelope(1, Ack(5)))], effects=[SaveEpochs(accepted=3, current=3)])
    Ensemble._apply(_shell(rec, Role.FOLLOWER), out)
    assert rec.order == ["write acceptedEpoch=3", "write currentEpoch=3", "send Ack"]


def test_epoch_files_write_each_value_once(tmp_path: Path) -> None:
    """Moving to a new epoch changes one of the two files at a time: the other is not written
    (and fsynced) again."""
    files = EpochFiles(tmp_path)
    files.write("acceptedEpoch", 4)
    first = (tmp_path / "version-2" / "acceptedEpoch").stat().st_ino
    files.write("acceptedEpoch", 4)
    assert (tmp_path / "version-2" / "acceptedEpoch").stat().st_ino == first, "rewritten"
    files.write("acceptedEpoch", 5)
    assert files.read("acceptedEpoch", 0) == 5
    assert EpochFiles(tmp_path).read("acceptedEpoch", 0) == 5
