"""ZAB discovery on hand-driven cores: a follower's first message to a new leader may be lost."""

from __future__ import annotations

from zkops.server.zab import FollowerInfo, History, LeaderInfo, ZabPeer


def _peer(my_id: int) -> ZabPeer:
    return ZabPeer(my_id, {1, 2, 3}, set(), accepted_epoch=0, current_epoch=0, history=History(), committed=0,
                   snapshot=lambda: (0, b""))


def _infos(messages: list) -> list:
    return [(sid, env) for sid, env in messages if isinstance(env.msg, FollowerInfo)]


def test_follower_resends_follower_info_until_the_leader_answers():
    """The leader may still be finishing its election (or the link still connecting) when the
    follower's FollowerInfo arrives; it is dropped. The follower must try again on the next tick
    instead of sitting silent until initLimit and abandoning a perfectly good leader."""
    follower, leader = _peer(1), _peer(3)
    first = follower.follow(3)
    assert len(_infos(first.messages)) == 1  # lost: leader 3 is not leading yet
    leader.lead()
    resent = follower.tick()
    infos = _infos(resent.messages)
    assert infos, "no FollowerInfo resent on tick"
    sid, env = infos[0]
    assert sid == 3 and env.session == first.messages[0][1].session  # same attempt, not a new session
    reply = leader.receive(1, env)
    assert any(isinstance(e.msg, LeaderInfo) for _, e in reply.messages), "the leader should answer"
    # duplicates of the same attempt are ignored by the leader, and stop once the leader answered
    assert leader.receive(1, env).messages == []
    for _, e in reply.messages:
        follower.receive(3, e)
    assert not _infos(follower.tick().messages)



def test_a_learner_keeps_uncommitted_proposals_beyond_its_history_window():
    """Found with an Apache leader: a DIFF longer than the in-memory window (and a sync cut off
    before UPTODATE) made a learner forget proposals it had logged but not applied; UPTODATE then
    applied only the newest ones and its tree lost writes. The window may only drop committed txns."""
    from zkops.server.zab import (
        CommitTxn,
        Envelope,
        NewLeader,
        Proposal,
        SyncMode,
        SyncStart,
        UpToDate,
        make_zxid,
    )

    follower = ZabPeer(1, {1, 2, 3}, set(), accepted_epoch=0, current_epoch=0, history=History(limit=2),
                       committed=0, snapshot=lambda: (0, b""))
    out = follower.follow(3)
    session = out.messages[0][1].session
    follower.receive(3, Envelope(session, LeaderInfo(1)))
    follower.receive(3, Envelope(session, SyncStart(SyncMode.DIFF, 0)))
    zxids = [make_zxid(1, n) for n in range(1, 9)]
    for z in zxids:
        follower.receive(3, Envelope(session, Proposal(z, b"txn%d" % z)))
    follower.receive(3, Envelope(session, NewLeader(1, zxids[-1])))
    follower.persisted(zxids[-1])
    done = follower.receive(3, Envelope(session, UpToDate(zxids[-1])))
    assert [e.zxid for e in done.effects if isinstance(e, CommitTxn)] == zxids
