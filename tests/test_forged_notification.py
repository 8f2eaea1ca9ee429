"""A forged or garbled election notification never changes an ensemble's membership.

Anyone who reaches an election port can send a notification that claims to come from a
serving server with a newer membership. Only a member we know may tell us of one, and the
text must read as a membership with voters we share; otherwise nothing changes.
"""

from __future__ import annotations

from zkops.server.election import Notification, ServerState, Vote
from zkops.server.quorum import _members_of
from zkops.server.quorumpeer import ConfigAdopted, QuorumPeer
from zkops.server.zab import History

CONFIG = ("server.1=127.0.0.1:2001:3001:participant;127.0.0.1:4001\n"
          "server.2=127.0.0.1:2002:3002:participant;127.0.0.1:4002\n"
          "server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003\nversion=100000000")


def _peer() -> QuorumPeer:
    p = QuorumPeer(1, {1, 2, 3}, set(), accepted_epoch=1, current_epoch=1, history=History(),
                   committed=0, snapshot=lambda: (0, b""), config=(0x100000000, CONFIG.encode()),
                   members_of=_members_of)
    p.start()
    return p


def _forged(sender: int, config: bytes, version: int = 0x7FFFFFFFFFFF) -> Notification:
    return Notification(sender, ServerState.FOLLOWING.value, Vote(1, 0, 2), 1, False, version, config)


def _unchanged(p: QuorumPeer, out: object) -> None:
    assert not [e for e in out.effects if isinstance(e, ConfigAdopted)]  # type: ignore[attr-defined]
    assert p.election.voters == {1, 2, 3}
    assert p.zab.voters == {1, 2, 3}
    assert p.election.config_version == 0x100000000


def test_empty_membership_from_a_member_is_ignored() -> None:
    p = _peer()
    _unchanged(p, p.receive_election(_forged(2, b"version=7fffffffffff")))


def test_garbage_config_is_ignored() -> None:
    p = _peer()
    for junk in (b"\xff\xfe\x00garbage", b"server.x=nonsense", b"server.9=h:1:2:participant\nversion=zz",
                 b"=" * 300):
        _unchanged(p, p.receive_election(_forged(3, junk)))


def test_unknown_sender_cannot_change_the_membership() -> None:
    p = _peer()
    other = CONFIG.replace("version=100000000", "version=200000000").replace("server.3", "server.9")
    _unchanged(p, p.receive_election(_forged(42, other.encode())))


def test_membership_of_strangers_is_ignored() -> None:
    p = _peer()
    strangers = "server.7=10.0.0.7:1:2:participant;10.0.0.7:3\nversion=200000000"
    _unchanged(p, p.receive_election(_forged(2, strangers.encode())))


def test_a_real_newer_membership_from_a_member_is_taken() -> None:
    p = _peer()
    newer = CONFIG.replace("version=100000000", "version=200000001") + ""
    newer = newer.replace("server.3=127.0.0.1:2003:3003:participant;127.0.0.1:4003\n", "")
    out = p.receive_election(_forged(2, newer.encode(), 0x200000001))
    assert [e for e in out.effects if isinstance(e, ConfigAdopted)]
    assert p.election.voters == {1, 2}
