"""Once a server follows or leads in an established epoch, the vote it tells newcomers carries that
epoch, as Apache's updateElectionVote (ZOOKEEPER-1732) does: a joining Apache server counts the votes
of the servers outside the election and needs a quorum of them with the same leader and peerEpoch.

Found by zkops migrate's rollback: a zkops leader still said the election's epoch while an Apache
follower said the new one, and a third (Apache) server stayed LOOKING for good.
"""

from __future__ import annotations

from zkops.server.election import Election, Notification, ServerState, Vote


def test_the_vote_told_to_a_newcomer_carries_the_established_epoch() -> None:
    e = Election(2, {1, 2, 3})
    e.start(epoch=1, zxid=0x100000065)
    e.settled(ServerState.LEADING, 2, 1, 0x100000065)
    e.established(2)
    out = e.receive(Notification(3, ServerState.LOOKING.value, Vote(1, 0x100000060, 3), 1))
    assert [n.vote for _, n in out.messages] == [Vote(2, 0x100000065, 2)]


def test_a_looking_server_ignores_an_established_epoch() -> None:
    e = Election(2, {1, 2, 3})
    e.start(epoch=1, zxid=5)
    e.established(2)
    assert e.vote == Vote(1, 5, 2)
