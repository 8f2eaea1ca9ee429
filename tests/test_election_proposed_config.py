"""QuorumPeer tells its election of a reconfig it logged but has not seen committed.

Apache's server keeps the last seen membership (a reconfig proposal it logged) beside the
committed one, and its election counts votes against both. zkops' QuorumPeer finds it in the
log past the commit point each time an election starts (tests/test_election_rules.py has the
counting rules themselves).
"""

from __future__ import annotations

from zkops.server.election import Notification, ServerState, Vote
from zkops.server.quorumpeer import QuorumPeer
from zkops.server.zab import History, make_zxid

RECONFIG = b"reconfig:"


def config_of(payload: bytes) -> bytes | None:
    return payload[len(RECONFIG):] if payload.startswith(RECONFIG) else None


def members_of(config: bytes) -> tuple[set[int], set[int]]:
    return {int(s) for s in config.decode().split(",")}, set()


def peer(committed: int, entries: list[tuple[int, bytes]], config_version: int = 0) -> QuorumPeer:
    return QuorumPeer(1, {1, 2, 5}, set(), accepted_epoch=1, current_epoch=1, history=History(entries),
                      committed=committed, snapshot=lambda: (0, b""), finalize_ticks=0,
                      config=(config_version, b"1,2,5"), config_of=config_of, members_of=members_of)


def test_a_logged_reconfig_past_the_commit_point_is_the_proposed_membership() -> None:
    z1, z2 = make_zxid(1, 1), make_zxid(1, 2)
    p = peer(z1, [(z1, b"write"), (z2, RECONFIG + b"1,2")])
    p.start()
    assert p.election.next_voters == {1, 2} and p.election.next_version == z2
    # the removed 5 backing 1 is no quorum of {1, 2}: 1 must not lead on it
    out = p.receive_election(Notification(5, ServerState.LOOKING.value, Vote(1, z2, 1), p.election.round))
    assert p.state == ServerState.LOOKING and not out.zab


def test_a_committed_reconfig_proposes_nothing() -> None:
    z1, z2 = make_zxid(1, 1), make_zxid(1, 2)
    p = peer(z2, [(z1, b"write"), (z2, RECONFIG + b"1,2")], config_version=z2)
    p.start()
    assert p.election.next_voters is None


def test_without_a_logged_reconfig_nothing_is_proposed() -> None:
    z1 = make_zxid(1, 1)
    p = peer(0, [(z1, b"write")])
    p.start()
    assert p.election.next_voters is None
