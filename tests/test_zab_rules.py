"""ZAB, one rule per test, on the pure core (zkops.server.zab.ZabPeer).

In the style of etcd raft's raft_paper_test: each test names one rule of the protocol (the
ZAB paper's phases, as ZooKeeper implements them: discovery, synchronisation, broadcast),
sets up the few servers it needs and drives them message by message through the public API
(lead, follow, receive, tick, persisted, propose, link_down). The seeded simulation
(tests/sim) checks the rules together under faults; these say which rule broke.

Messages travel in Envelopes naming the learner's attempt to follow; `Net` below carries
them, performs the effects a shell would (an Append is persisted at once unless a test
holds it back) and records what each server committed.
"""

from __future__ import annotations

from typing import Any

import pytest

from zkops.server.zab import (
    Abandon,
    Ack,
    AckEpoch,
    Append,
    Commit,
    CommitTxn,
    Envelope,
    Established,
    FollowerInfo,
    History,
    Inform,
    InstallSnapshot,
    LeaderInfo,
    NewLeader,
    Proposal,
    Role,
    SaveEpochs,
    SyncMode,
    SyncStart,
    Truncate,
    UpToDate,
    ZabOutput,
    ZabPeer,
    make_zxid,
)


def z(epoch: int, counter: int) -> int:
    return make_zxid(epoch, counter)


def history(*zxids: int, start: int = 0) -> History:
    return History([(x, f"txn {x:#x}".encode()) for x in zxids], start=start)


def peer(my_id: int, voters: tuple[int, ...] = (1, 2, 3), observers: tuple[int, ...] = (), *, accepted: int = 0,
         current: int = 0, hist: History | None = None, committed: int = 0,
         snapshot: tuple[int, bytes] = (0, b"snap")) -> ZabPeer:
    h = hist or History()
    return ZabPeer(my_id, set(voters), set(observers), accepted_epoch=accepted, current_epoch=current,
                   history=h, committed=committed, snapshot=lambda: snapshot, sync_limit=2, init_limit=4)


def msgs(out: ZabOutput, kind: type | None = None, to: int | None = None) -> list[Any]:
    """The messages of one output (unwrapped), optionally of one kind and to one server."""
    return [env.msg for sid, env in out.messages
            if (kind is None or isinstance(env.msg, kind)) and (to is None or sid == to)]


def effects(out: ZabOutput, kind: type) -> list[Any]:
    return [e for e in out.effects if isinstance(e, kind)]


class Net:
    """Carries messages between ZabPeers in order and plays the shell's part for effects."""

    def __init__(self, peers: dict[int, ZabPeer], persist: bool = True) -> None:
        self.peers = peers
        self.persist = persist
        self.queue: list[tuple[int, int, Envelope]] = []
        self.effects: dict[int, list[Any]] = {sid: [] for sid in peers}
        self.down: set[int] = set()  # servers whose messages (both ways) are lost

    def feed(self, frm: int, out: ZabOutput) -> ZabOutput:
        self.queue += [(frm, to, env) for to, env in out.messages]
        self.effects[frm] += out.effects
        appended = [e.zxid for e in out.effects if isinstance(e, Append)]
        if self.persist and appended:
            self.feed(frm, self.peers[frm].persisted(max(appended)))
        return out

    def run(self) -> None:
        while self.queue:
            frm, to, env = self.queue.pop(0)
            if to in self.peers and frm not in self.down and to not in self.down:
                self.feed(to, self.peers[to].receive(frm, env))

    def serving(self, sid: int) -> bool:
        """The server was told to serve (Established) and not told to stop since."""
        told = [e for e in self.effects[sid] if isinstance(e, (Established, Abandon))]
        return bool(told) and isinstance(told[-1], Established)

    def committed(self, sid: int) -> list[int]:
        return [e.zxid for e in self.effects[sid] if isinstance(e, CommitTxn)]

    def propose(self, leader: int, payload: bytes = b"x") -> int:
        zxid, out = self.peers[leader].propose(payload)
        self.feed(leader, out)
        return zxid


def established(n: int = 3, leader: int = 1, observers: tuple[int, ...] = (), persist: bool = True,
                **kw: Any) -> Net:
    """An ensemble of n voters (+ observers) with `leader` established, everyone up to date."""
    voters = tuple(range(1, n + 1))
    peers = {sid: peer(sid, voters, observers, **kw) for sid in voters + observers}
    net = Net(peers, persist=persist)
    net.feed(leader, peers[leader].lead())
    for sid in peers:
        if sid != leader:
            net.feed(sid, peers[sid].follow(leader, observer=sid in observers))
    net.run()
    serving = {sid: net.serving(sid) for sid in peers}
    assert all(serving.values()), serving
    return net


# ================================================================ discovery
def test_leader_chooses_no_epoch_before_a_quorum_of_followers_said_hello() -> None:
    """The new epoch is decided from a quorum's accepted epochs: with 5 voters the leader
    waits for two FOLLOWERINFOs before it sends any LEADERINFO."""
    leader = peer(1, (1, 2, 3, 4, 5))
    assert leader.lead().messages == []
    out = leader.receive(2, Envelope(1, FollowerInfo(0, 0, False)))
    assert msgs(out, LeaderInfo) == [] and effects(out, SaveEpochs) == []
    out = leader.receive(3, Envelope(1, FollowerInfo(0, 0, False)))
    assert sorted(sid for sid, _ in out.messages) == [2, 3] and msgs(out, LeaderInfo) == [LeaderInfo(1)] * 2


def test_the_new_epoch_is_above_every_accepted_epoch_of_the_quorum() -> None:
    """epoch = max(accepted epochs of the leader and the quorum's followers) + 1, and the
    leader records it as its accepted epoch (current epoch unchanged until a quorum acks)."""
    leader = peer(1, accepted=5, current=5)
    leader.lead()
    out = leader.receive(2, Envelope(1, FollowerInfo(7, 0, False)))
    assert msgs(out, LeaderInfo) == [LeaderInfo(8)]
    assert effects(out, SaveEpochs) == [SaveEpochs(accepted=8, current=5)]


def test_an_observers_hello_does_not_make_the_quorum_for_the_epoch() -> None:
    leader = peer(1, (1, 2, 3), (4,))
    leader.lead()
    out = leader.receive(4, Envelope(1, FollowerInfo(0, 0, True)))
    assert msgs(out, LeaderInfo) == []


def test_a_late_follower_is_told_the_epoch_already_chosen() -> None:
    leader, f2 = peer(1), peer(2)
    net = Net({1: leader, 2: f2})
    net.feed(1, leader.lead())
    net.feed(2, f2.follow(1))
    net.run()
    assert leader.established and leader.epoch == 1
    out = leader.receive(3, peer(3).follow(1).messages[0][1])
    assert msgs(out) == [LeaderInfo(1)]


def test_a_follower_accepts_a_higher_epoch_durably_and_acks_with_its_history() -> None:
    """On LEADERINFO(e) with e above its accepted epoch a follower saves e as accepted, then
    answers ACKEPOCH(current epoch, last zxid)."""
    f = peer(2, accepted=3, current=3, hist=history(z(3, 1), z(3, 2)))
    f.follow(1)
    out = f.receive(1, Envelope(1, LeaderInfo(4)))
    assert effects(out, SaveEpochs) == [SaveEpochs(accepted=4, current=3)]
    assert msgs(out) == [AckEpoch(3, z(3, 2))]


def test_a_follower_refuses_an_epoch_below_the_one_it_accepted() -> None:
    """A leader proposing an epoch older than one the follower promised is stale: refuse and
    go back to the election."""
    f = peer(2, accepted=6, current=5)
    f.follow(1)
    out = f.receive(1, Envelope(1, LeaderInfo(5)))
    assert effects(out, Abandon) and msgs(out) == [] and f.role is None


def test_a_leader_gives_up_when_a_follower_has_a_newer_history() -> None:
    """If a follower's (current epoch, last zxid) is above the leader's, the election chose
    wrongly (or the leader lost data): the leader must not sync anyone from its history."""
    leader = peer(1, accepted=2, current=2, hist=history(z(2, 1)))
    leader.lead()
    leader.receive(2, Envelope(1, FollowerInfo(2, z(2, 5), False)))
    out = leader.receive(2, Envelope(1, AckEpoch(2, z(2, 5))))
    assert effects(out, Abandon) and msgs(out, SyncStart) == []


def test_no_sync_before_a_quorum_acked_the_new_epoch() -> None:
    """The leader makes the new epoch its current epoch, and starts syncing anyone, only once a
    quorum of voters acked it (5 voters: itself and two followers)."""
    leader = peer(1, (1, 2, 3, 4, 5))
    leader.lead()
    for sid in (2, 3):
        leader.receive(sid, Envelope(1, FollowerInfo(0, 0, False)))
    out = leader.receive(2, Envelope(1, AckEpoch(0, 0)))
    assert msgs(out, SyncStart) == [] and leader.current_epoch == 0
    out = leader.receive(3, Envelope(1, AckEpoch(0, 0)))
    assert effects(out, SaveEpochs) == [SaveEpochs(accepted=1, current=1)]
    assert sorted(sid for sid, env in out.messages if isinstance(env.msg, SyncStart)) == [2, 3]


# ================================================================ synchronisation
def _sync(leader_hist: History, follower_hist: History, committed: int, epoch: int = 2,
          snapshot: tuple[int, bytes] = (0, b"snap")) -> ZabOutput:
    """What the leader sends a follower whose history is follower_hist (3 voters)."""
    leader = peer(1, accepted=epoch - 1, current=epoch - 1, hist=leader_hist, committed=committed,
                  snapshot=snapshot)
    leader.lead()
    leader.receive(2, Envelope(1, FollowerInfo(epoch - 1, follower_hist.last, False)))
    return leader.receive(2, Envelope(1, AckEpoch(epoch - 1, follower_hist.last)))


def test_a_follower_with_a_prefix_of_the_leaders_history_gets_a_diff() -> None:
    """DIFF: the missing proposals, a COMMIT for each one the leader has committed, then
    NEWLEADER naming the last zxid sent."""
    out = _sync(history(z(1, 1), z(1, 2), z(1, 3)), history(z(1, 1)), committed=z(1, 2))
    assert msgs(out) == [SyncStart(SyncMode.DIFF, z(1, 1)), Proposal(z(1, 2), b"txn 0x100000002"), Commit(z(1, 2)),
                         Proposal(z(1, 3), b"txn 0x100000003"), NewLeader(2, z(1, 3))]


def test_a_follower_with_an_unknown_tail_is_truncated_to_the_last_common_zxid() -> None:
    """TRUNC: a follower that logged proposals of an old epoch the leader never had drops
    them (they never committed), then gets what follows."""
    out = _sync(history(z(1, 1), z(1, 2), z(2, 1)), history(z(1, 1), z(1, 2), z(1, 3)), committed=z(2, 1), epoch=3)
    assert msgs(out)[:3] == [SyncStart(SyncMode.TRUNC, z(1, 2)), Proposal(z(2, 1), b"txn 0x200000001"), Commit(z(2, 1))]
    assert msgs(out)[-1] == NewLeader(3, z(2, 1))


def test_a_follower_behind_the_leaders_log_window_gets_a_snapshot() -> None:
    """SNAP: when the leader's log no longer reaches back to the follower's last zxid, the
    follower gets a snapshot and the proposals after it."""
    out = _sync(history(z(1, 5), z(1, 6), start=z(1, 4)), history(z(1, 1)), committed=z(1, 6),
                snapshot=(z(1, 5), b"state at 1/5"))
    assert msgs(out) == [SyncStart(SyncMode.SNAP, z(1, 5), b"state at 1/5"), Proposal(z(1, 6), b"txn 0x100000006"),
                         Commit(z(1, 6)), NewLeader(2, z(1, 6))]


def test_a_follower_replaces_its_state_as_the_sync_mode_says() -> None:
    f = peer(2, hist=history(z(1, 1), z(1, 2), z(1, 3)), committed=z(1, 1))
    f.follow(1)
    out = f.receive(1, Envelope(1, SyncStart(SyncMode.TRUNC, z(1, 2))))
    assert effects(out, Truncate) == [Truncate(z(1, 2))] and f.history.last == z(1, 2)
    out = f.receive(1, Envelope(1, SyncStart(SyncMode.SNAP, z(1, 9), b"state")))
    assert effects(out, InstallSnapshot) == [InstallSnapshot(z(1, 9), b"state")] and f.committed == z(1, 9)


def test_a_follower_acks_newleader_only_once_the_sync_is_on_disk() -> None:
    """ACK(NEWLEADER) promises that the follower holds the leader's history durably: it is
    sent only after the log is persisted up to NEWLEADER's zxid."""
    f = peer(2)
    f.follow(1)
    f.receive(1, Envelope(1, LeaderInfo(2)))
    f.receive(1, Envelope(1, SyncStart(SyncMode.DIFF, 0)))
    f.receive(1, Envelope(1, Proposal(z(1, 1), b"a")))
    out = f.receive(1, Envelope(1, NewLeader(2, z(1, 1))))
    assert msgs(out, Ack) == []
    out = f.persisted(z(1, 1))
    assert msgs(out) == [Ack(z(1, 1))]


def test_a_follower_takes_the_new_epoch_only_once_the_sync_is_on_disk() -> None:
    """The current epoch a follower saves is what its vote claims after a restart: saved
    before the history NEWLEADER covers is on disk, a crash in between leaves a vote with the
    new epoch and an old log, which wins elections and truncates committed txns elsewhere
    (the simulation's seed 278; Apache's ZOOKEEPER-4643). It is saved with the ACK."""
    f = peer(2, accepted=1, current=1, hist=history(z(1, 1)), committed=z(1, 1))
    f.follow(1)
    f.receive(1, Envelope(1, LeaderInfo(2)))
    f.receive(1, Envelope(1, SyncStart(SyncMode.DIFF, z(1, 1))))
    f.receive(1, Envelope(1, Proposal(z(1, 2), b"a")))
    out = f.receive(1, Envelope(1, NewLeader(2, z(1, 2))))
    assert effects(out, SaveEpochs) == [] and f.current_epoch == 1
    out = f.persisted(z(1, 2))
    assert effects(out, SaveEpochs) == [SaveEpochs(accepted=2, current=2)] and f.current_epoch == 2
    assert msgs(out) == [Ack(z(1, 2))]


def test_a_follower_already_holding_the_history_takes_the_epoch_and_acks_at_once() -> None:
    f = peer(2, accepted=1, current=1, hist=history(z(1, 1)), committed=z(1, 1))
    f.follow(1)
    f.persisted(z(1, 1))
    f.receive(1, Envelope(1, LeaderInfo(2)))
    f.receive(1, Envelope(1, SyncStart(SyncMode.DIFF, z(1, 1))))
    out = f.receive(1, Envelope(1, NewLeader(2, z(1, 1))))
    assert effects(out, SaveEpochs) == [SaveEpochs(accepted=2, current=2)] and msgs(out) == [Ack(z(1, 1))]


def test_the_leader_establishes_after_a_quorum_acked_newleader_and_commits_its_history() -> None:
    """Once a quorum (leader included, its log persisted) holds the history, everything in it
    is committed, the leader serves, and the synced learners get UPTODATE."""
    net = established(3)
    assert effects_of(net, 1, Established) == [Established(Role.LEADER, 1)]
    assert effects_of(net, 2, Established) == effects_of(net, 3, Established) == [Established(Role.FOLLOWER, 1)]
    assert net.peers[1].current_epoch == net.peers[2].current_epoch == 1


def effects_of(net: Net, sid: int, kind: type) -> list[Any]:
    return [e for e in net.effects[sid] if isinstance(e, kind)]


def test_a_leader_commits_its_uncommitted_history_when_it_establishes() -> None:
    """Proposals of the previous epoch the leader logged but never saw committed are held by
    a quorum once NEWLEADER is acked: they commit then, in order."""
    hist = history(z(1, 1), z(1, 2))
    peers = {1: peer(1, accepted=1, current=1, hist=hist, committed=z(1, 1)),
             2: peer(2, accepted=1, current=1, hist=history(z(1, 1)), committed=z(1, 1))}
    net = Net({1: peers[1], 2: peers[2]})
    net.feed(1, peers[1].lead())
    net.feed(2, peers[2].follow(1))
    net.run()
    assert net.committed(1) == [z(1, 2)] and net.committed(2) == [z(1, 2)]
    assert net.serving(1) and net.serving(2)


def test_the_leader_does_not_establish_without_a_quorum_of_newleader_acks() -> None:
    """With 5 voters, one follower synced is not enough."""
    leader, f2 = peer(1, (1, 2, 3, 4, 5)), peer(2, (1, 2, 3, 4, 5))
    net = Net({1: leader, 2: f2})  # what the leader sends 3 is lost
    net.feed(1, leader.lead())
    net.feed(2, f2.follow(1))
    net.feed(1, leader.receive(3, Envelope(1, FollowerInfo(0, 0, False))))
    net.run()
    net.feed(1, leader.receive(3, Envelope(1, AckEpoch(0, 0))))  # 3 acks the epoch, then falls silent
    net.run()
    assert leader.learners[2].phase == "synced", "2 should have acked NEWLEADER"
    assert not leader.established and effects_of(net, 1, Established) == []


def test_a_follower_serves_only_after_uptodate() -> None:
    f = peer(2)
    f.follow(1)
    f.receive(1, Envelope(1, LeaderInfo(1)))
    f.receive(1, Envelope(1, SyncStart(SyncMode.DIFF, 0)))
    out = f.receive(1, Envelope(1, NewLeader(1, 0)))
    assert msgs(out) == [Ack(0)] and effects(out, Established) == []
    out = f.receive(1, Envelope(1, UpToDate(0)))
    assert effects(out, Established) == [Established(Role.FOLLOWER, 1)]


# ================================================================ broadcast
def test_proposals_of_a_new_epoch_number_from_one() -> None:
    net = established(3)
    assert [net.propose(1) for _ in range(3)] == [z(1, 1), z(1, 2), z(1, 3)]


def test_only_an_established_leader_proposes() -> None:
    leader = peer(1)
    leader.lead()
    with pytest.raises(RuntimeError):
        leader.propose(b"x")
    with pytest.raises(RuntimeError):
        peer(2).propose(b"x")


def test_a_proposal_commits_only_on_a_quorum_of_acks() -> None:
    """5 voters: the leader's own (persisted) ack and one follower's make 2, no commit; the
    third ack commits it everywhere."""
    net = established(5, persist=False)
    leader = net.peers[1]
    zxid, out = leader.propose(b"w")
    assert sorted(sid for sid, env in out.messages if isinstance(env.msg, Proposal)) == [2, 3, 4, 5]
    assert effects(leader.persisted(zxid), CommitTxn) == []  # 1 of 5
    assert effects(leader.receive(2, Envelope(leader.learners[2].session, Ack(zxid))), CommitTxn) == []  # 2 of 5
    out = leader.receive(3, Envelope(leader.learners[3].session, Ack(zxid)))
    assert effects(out, CommitTxn) == [CommitTxn(zxid, b"w")]
    assert sorted(sid for sid, env in out.messages if env.msg == Commit(zxid)) == [2, 3, 4, 5]


def test_the_leaders_own_ack_counts_only_once_its_log_is_synced() -> None:
    net = established(3, persist=False)
    leader = net.peers[1]
    zxid, _ = leader.propose(b"w")
    out = leader.receive(2, Envelope(leader.learners[2].session, Ack(zxid)))
    assert effects(out, CommitTxn) == [], "committed on one follower's ack and an unsynced leader log"
    assert effects(leader.persisted(zxid), CommitTxn) == [CommitTxn(zxid, b"w")]


def test_a_follower_acks_a_proposal_only_once_it_is_on_disk() -> None:
    net = established(3, persist=False)
    f = net.peers[2]
    out = f.receive(1, Envelope(f.session, Proposal(z(1, 1), b"w")))
    assert effects(out, Append) == [Append(z(1, 1), b"w")] and msgs(out) == []
    assert msgs(f.persisted(z(1, 1))) == [Ack(z(1, 1))]


def test_a_follower_acks_every_proposal_one_by_one_when_a_sync_covers_several() -> None:
    """Apache's leader checks ACKs zxid by zxid (LearnerHandler's sync limit check waits for
    the ACK of each proposal it tracks and drops a follower that never sends it): a group
    commit that persisted several proposals still owes one ACK each, in order."""
    net = established(3, persist=False)
    f = net.peers[2]
    for counter in (1, 2, 3):
        f.receive(1, Envelope(f.session, Proposal(z(1, counter), b"w")))
    assert msgs(f.persisted(z(1, 2))) == [Ack(z(1, 1)), Ack(z(1, 2))]
    assert msgs(f.persisted(z(1, 3))) == [Ack(z(1, 3))]


def test_commits_happen_in_zxid_order_everywhere() -> None:
    net = established(3)
    zxids = [net.propose(1, f"w{i}".encode()) for i in range(5)]
    net.run()
    assert net.committed(1) == net.committed(2) == net.committed(3) == zxids


def test_a_follower_applies_a_commit_with_everything_before_it_in_order() -> None:
    """COMMIT(z) applies every logged proposal up to z not yet applied, in zxid order."""
    net = established(3)
    f = net.peers[2]
    s = f.session
    for c in (1, 2, 3):
        net.feed(2, f.receive(1, Envelope(s, Proposal(z(1, c), b"p%d" % c))))
    out = f.receive(1, Envelope(s, Commit(z(1, 2))))
    assert effects(out, CommitTxn) == [CommitTxn(z(1, 1), b"p1"), CommitTxn(z(1, 2), b"p2")]


def test_observers_are_informed_of_commits_and_never_counted() -> None:
    """Observers get no PROPOSAL, only INFORM once committed; an observer's ack counts for
    nothing."""
    net = established(3, observers=(4,), persist=False)
    leader = net.peers[1]
    zxid, out = leader.propose(b"w")
    assert sorted(sid for sid, env in out.messages if isinstance(env.msg, Proposal)) == [2, 3]
    leader.persisted(zxid)
    assert effects(leader.receive(4, Envelope(leader.learners[4].session, Ack(zxid))), CommitTxn) == []
    out = leader.receive(2, Envelope(leader.learners[2].session, Ack(zxid)))
    assert [env.msg for sid, env in out.messages if sid == 4] == [Inform(zxid, b"w")]
    obs = net.peers[4]
    got = obs.receive(1, Envelope(obs.session, Inform(zxid, b"w")))
    assert effects(got, CommitTxn) == [CommitTxn(zxid, b"w")]


# ================================================================ stale leaders and old attempts
def test_a_follower_ignores_a_server_that_is_not_its_leader() -> None:
    """A deposed leader (an older epoch) may still send proposals and commits: a follower of
    the new leader takes nothing from it."""
    net = established(3, leader=1)
    f = net.peers[2]
    out = f.receive(3, Envelope(f.session, Proposal(z(1, 7), b"stale")))
    assert out.messages == [] and out.effects == [] and f.history.last == 0
    assert f.receive(3, Envelope(f.session, Commit(z(1, 7)))).effects == []


def test_messages_of_an_earlier_attempt_to_follow_are_dropped() -> None:
    """Each follow() is a new attempt (session); a leader's message for the previous one,
    still in flight, is ignored, and so are the follower's old messages at the leader."""
    f = peer(2)
    f.follow(1)
    f.follow(1)  # the first attempt failed; trying again
    assert f.receive(1, Envelope(f.session - 1, LeaderInfo(5))).messages == []
    leader = peer(1)
    leader.lead()
    leader.receive(2, Envelope(2, FollowerInfo(0, 0, False)))
    assert leader.receive(2, Envelope(1, AckEpoch(0, 0))).messages == [], "an ack of the old attempt counted"


def test_a_leader_that_lost_its_quorum_steps_down() -> None:
    """A leader that hears from fewer than a quorum of voters for syncLimit ticks abandons its
    epoch (a partitioned old leader stops serving instead of going on alone)."""
    net = established(3)
    leader = net.peers[1]
    outs = [leader.tick() for _ in range(leader.sync_limit + 2)]
    assert any(effects(o, Abandon) for o in outs) and leader.role is None


def test_a_leader_keeps_its_role_while_a_quorum_answers() -> None:
    net = established(3)
    leader = net.peers[1]
    net.down = {3}
    for _ in range(10):
        net.feed(1, leader.tick())
        net.feed(2, net.peers[2].tick())
        net.run()
        assert leader.role == "leader", "stepped down with 2 of 3 voters answering"


def test_an_established_leader_without_followers_steps_down_at_its_next_check() -> None:
    """Once established, a leader checks at every tick that the learners it still has a
    connection to and heard from within syncLimit ticks make a quorum with it, with no
    start-up allowance (Apache's Leader.lead loop and LearnerHandler.synced). Issue 21: a
    leader whose followers stopped just after it took over kept holding clients for syncLimit
    ticks counted from the start of its leadership. The closing links alone do not end it:
    stepping down on the link event itself livelocked the simulation (seed 300195)."""
    net = established(3)
    leader = net.peers[1]
    assert leader.now - leader.started <= leader.sync_limit, "the old start-up allowance still runs"
    assert effects(leader.link_down(2), Abandon) == []
    assert effects(leader.link_down(3), Abandon) == [], "the check is the periodic one, not the link event"
    assert leader.role == "leader"
    out = leader.tick()
    assert effects(out, Abandon) and leader.role is None


def test_an_established_leader_counts_a_follower_that_is_still_syncing() -> None:
    """A learner that reconnected and is being synced counts towards the quorum until its first
    deadline (initLimit + syncLimit ticks after its hello), as Apache's handler does."""
    net = established(3)
    leader = net.peers[1]
    leader.link_down(3)
    # nothing is delivered from here: 2 falls silent, and 3, back with its next attempt, stays
    # in discovery
    leader.receive(3, Envelope(99, FollowerInfo(0, 0, False)))
    for _ in range(leader.init_limit + leader.sync_limit):
        assert effects(leader.tick(), Abandon) == []
    assert effects(leader.tick(), Abandon) and leader.role is None


def test_a_leader_not_yet_established_waits_init_limit_for_its_quorum() -> None:
    """Before a quorum acked NEWLEADER the leader gives its followers initLimit ticks, counted
    from the start of its leadership, to connect and sync (Apache's waits for the epoch and
    NEWLEADER acks), even when the ones that had connected are gone again."""
    leader = peer(1)
    leader.lead()
    leader.receive(2, Envelope(1, FollowerInfo(0, 0, False)))
    leader.link_down(2)
    for _ in range(leader.init_limit):
        assert effects(leader.tick(), Abandon) == [] and leader.role == "leader"
    assert effects(leader.tick(), Abandon) and leader.role is None


def test_a_follower_leaves_a_silent_leader() -> None:
    net = established(3)
    f = net.peers[2]
    outs = [f.tick() for _ in range(f.sync_limit + 2)]
    assert any(effects(o, Abandon) for o in outs) and f.role is None


def test_a_follower_leaves_when_the_link_to_its_leader_breaks() -> None:
    net = established(3)
    assert net.peers[2].link_down(3).effects == [], "a link to another follower does not matter"
    out = net.peers[2].link_down(1)
    assert effects(out, Abandon) and net.peers[2].role is None


def test_a_learner_joining_an_established_leader_is_synced_and_told_uptodate() -> None:
    net = established(3, leader=1)
    net.propose(1, b"before")
    net.run()
    late = peer(3)
    net.peers[3] = late
    net.effects[3] = []
    net.feed(1, net.peers[1].link_down(3))
    net.feed(3, late.follow(1))
    net.run()
    assert net.serving(3) and net.committed(3) == [z(1, 1)]


def test_a_reconfig_needs_a_quorum_of_the_next_voters_too() -> None:
    """Joint consensus: while a reconfig to voters {1, 4, 5} is in flight, a proposal commits
    only with a quorum of the current voters and a quorum of the next ones."""
    net = established(3, persist=False)
    leader = net.peers[1]
    zxid, _ = leader.propose(b"reconfig", next_voters={1, 4, 5})
    leader.persisted(zxid)
    out = leader.receive(2, Envelope(leader.learners[2].session, Ack(zxid)))
    assert effects(out, CommitTxn) == [], "2 of {1,2,3} but only 1 of {1,4,5}"
