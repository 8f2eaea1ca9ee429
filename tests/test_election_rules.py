"""Fast Leader Election, one rule per test, on the pure core (zkops.server.election).

In the style of etcd raft's raft_paper_test: each test names one rule of the protocol (as
ZooKeeper's FastLeaderElection implements it), builds the few servers it needs, and drives
them message by message through the public API (start, receive, tick, settled,
set_members). The seeded simulation (tests/sim) checks the rules together under faults;
these say which rule broke.

Votes are (peer epoch, last zxid, server id) and compare in that order. A round is the
election epoch (Apache's logicalclock).
"""

from __future__ import annotations

from zkops.server.election import Election, ElectionOutput, Notification, ServerState, Vote

LOOKING = ServerState.LOOKING.value
FOLLOWING = ServerState.FOLLOWING.value
LEADING = ServerState.LEADING.value


def looking(sender: int, vote: Vote, round: int) -> Notification:
    return Notification(sender, LOOKING, vote, round)


def serving(sender: int, state: str, leader: int, round: int, epoch: int = 1, zxid: int = 0) -> Notification:
    return Notification(sender, state, Vote(epoch, zxid, leader), round)


def sent_to(out: ElectionOutput) -> list[int]:
    return sorted(to for to, _ in out.messages)


def votes_changed(out: ElectionOutput) -> list[Vote]:
    return [e.vote for e in out.events if e.kind == "vote_changed" and e.vote is not None]


def server(my_id: int, voters: int = 3, observers: tuple[int, ...] = (), finalize_ticks: int = 2,
           epoch: int = 1, zxid: int = 0) -> Election:
    e = Election(my_id, set(range(1, voters + 1)), set(observers), finalize_ticks=finalize_ticks)
    e.start(epoch, zxid)
    return e


def run(servers: dict[int, Election], first: dict[int, ElectionOutput], max_ticks: int = 50) -> None:
    """Deliver every message, in order, until nothing is in flight; tick when idle."""
    queue = [(frm, to, n) for frm, out in first.items() for to, n in out.messages]
    for _ in range(max_ticks):
        while queue:
            frm, to, n = queue.pop(0)
            if to in servers:
                out = servers[to].receive(n)
                queue += [(to, t, m) for t, m in out.messages]
        if all(s.state != ServerState.LOOKING for s in servers.values()):
            return
        for sid, s in servers.items():
            queue += [(sid, t, m) for t, m in s.tick().messages]


# ---------------------------------------------------------------- starting a round
def test_a_looking_server_starts_a_new_round_voting_for_itself() -> None:
    """start() moves to the next round and proposes (own epoch, own last zxid, own id)."""
    e = Election(2, {1, 2, 3})
    out = e.start(epoch=4, zxid=0x400000007)
    assert e.round == 1 and e.state == ServerState.LOOKING
    assert e.vote == Vote(4, 0x400000007, 2)
    assert all(n.vote == e.vote and n.round == 1 for _, n in out.messages)
    e.start(epoch=4, zxid=0x400000007)
    assert e.round == 2, "every start is a new round"


def test_the_first_vote_goes_to_every_other_voter() -> None:
    """A LOOKING server broadcasts its vote to all voters but itself (observers do not vote)."""
    e = Election(2, {1, 2, 3}, {4})
    out = e.start(1, 0)
    assert sent_to(out) == [1, 3]
    assert all(n.state == LOOKING and n.vote == Vote(1, 0, 2) and n.round == 1 for _, n in out.messages)


# ---------------------------------------------------------------- comparing votes
def test_a_higher_epoch_wins_over_a_higher_zxid() -> None:
    """The peer epoch compares first: a server of a newer epoch wins even with fewer txns."""
    e = server(1, epoch=1, zxid=0x100000009)
    out = e.receive(looking(2, Vote(2, 0x200000001, 2), 1))
    assert e.vote == Vote(2, 0x200000001, 2) and votes_changed(out) == [Vote(2, 0x200000001, 2)]


def test_with_equal_epochs_the_higher_zxid_wins() -> None:
    e = server(3, epoch=1, zxid=5)
    e.receive(looking(1, Vote(1, 9, 1), 1))
    assert e.vote.leader == 1, "more history wins over a higher id"


def test_with_equal_epoch_and_zxid_the_higher_server_id_wins() -> None:
    e = server(2, epoch=1, zxid=5)
    e.receive(looking(1, Vote(1, 5, 1), 1))
    assert e.vote.leader == 2, "a lower id never wins a tie"
    e.receive(looking(3, Vote(1, 5, 3), 1))
    assert e.vote.leader == 3


def test_a_better_vote_in_the_round_is_adopted_and_broadcast() -> None:
    """Hearing a better vote in its round, a server adopts it and tells every voter."""
    e = server(1)
    out = e.receive(looking(3, Vote(1, 0, 3), 1))
    assert e.vote == Vote(1, 0, 3)
    assert sent_to(out) == [2, 3] and all(n.vote == Vote(1, 0, 3) for _, n in out.messages)


def test_a_worse_vote_in_the_round_changes_nothing_and_is_answered_with_ours() -> None:
    """A sender in our round still voting worse than us has not heard our vote (it reached
    the sender before it was looking, or was lost): we keep ours and tell that sender alone,
    at once rather than at the next resend."""
    e = server(3)
    out = e.receive(looking(1, Vote(1, 0, 1), 1))
    assert e.vote == Vote(1, 0, 3) and votes_changed(out) == []
    assert sent_to(out) == [1] and out.messages[0][1].vote == Vote(1, 0, 3)
    assert out.messages[0][1].round == 1 and out.messages[0][1].state == LOOKING


def test_an_equal_vote_in_the_round_is_not_answered() -> None:
    e = server(3)
    out = e.receive(looking(1, Vote(1, 0, 3), 1))
    assert out.messages == [] and votes_changed(out) == []


def test_a_vote_sent_to_a_server_still_following_does_not_wait_for_the_resend() -> None:
    """The failover race (issue 21): the leader dies; server 3 notices first and its vote
    reaches server 1 while 1 still follows (1 answers as a follower and forgets it); then 1
    looks, voting for itself. The two agree within the finalize wait, not a resend later."""
    s1 = Election(1, {1, 2, 3}, finalize_ticks=2, resend_ticks=5)
    s3 = Election(3, {1, 2, 3}, finalize_ticks=2, resend_ticks=5)
    for s in (s1, s3):
        s.start(1, 0)
        s.settled(ServerState.FOLLOWING if s is s1 else ServerState.LEADING, 3, 1, 0)
    out3 = s3.start(1, 5)  # round 2; 2 (the leader) is gone
    to_1 = [n for to, n in out3.messages if to == 1]
    answer = s1.receive(to_1[0])  # still following: answers with its state, records nothing
    assert [n.state for _, n in answer.messages] == [FOLLOWING]
    s3.receive(answer.messages[0][1])
    queue = [(1, to, n) for to, n in s1.start(1, 5).messages]
    servers = {1: s1, 3: s3}
    ticks = 0
    while ticks < 10:
        while queue:
            _, to, n = queue.pop(0)
            if to in servers:
                queue += [(to, t, m) for t, m in servers[to].receive(n).messages]
        if all(s.state != ServerState.LOOKING for s in servers.values()):
            break
        ticks += 1
        for sid, s in servers.items():
            queue += [(sid, t, m) for t, m in s.tick().messages]
    assert (s1.state, s3.state) == (ServerState.FOLLOWING, ServerState.LEADING)
    assert ticks <= 2, f"decided after {ticks} ticks: waited for a resend"


# ---------------------------------------------------------------- rounds
def test_a_newer_round_is_joined_and_earlier_votes_forgotten() -> None:
    """A notification from a later round moves us to that round; the votes we had counted
    belong to the old round and no longer count towards a quorum."""
    e = server(1, voters=5)
    e.receive(looking(5, Vote(1, 0, 5), 1))
    e.receive(looking(4, Vote(1, 0, 5), 1))  # 1, 4, 5 agree on 5: a quorum of 5
    assert e.tick().decided is None  # still in the finalize wait
    e.receive(looking(2, Vote(1, 0, 5), 7))
    assert e.round == 7
    for _ in range(5):
        assert e.tick().decided is None, "votes of round 1 decided round 7"


def test_a_newer_round_takes_the_better_of_our_own_vote_and_the_senders() -> None:
    """On joining a newer round a server compares the sender's vote with its *initial*
    proposal (not a vote it adopted in the old round)."""
    e = server(2, voters=5, epoch=1, zxid=5)
    e.receive(looking(5, Vote(1, 9, 5), 1))
    assert e.vote.leader == 5
    e.receive(looking(1, Vote(1, 3, 1), 2))  # round 2, a worse vote than our own
    assert e.round == 2 and e.vote == Vote(1, 5, 2), "back to our own proposal, not 5's from round 1"
    e.receive(looking(4, Vote(1, 7, 4), 3))  # round 3, a better vote than our own
    assert e.round == 3 and e.vote == Vote(1, 7, 4)


def test_a_vote_from_an_earlier_round_is_answered_but_not_counted() -> None:
    """A LOOKING sender still in an older round gets our vote back (so it catches up) and its
    vote counts for nothing."""
    e = server(1)
    e.start(1, 0)  # round 2
    out = e.receive(looking(3, Vote(1, 0, 3), 1))
    assert sent_to(out) == [3] and out.messages[0][1].round == 2
    assert e.vote == Vote(1, 0, 1), "an old round's better vote is not adopted"


# ---------------------------------------------------------------- quorum of notifications
def test_no_decision_without_a_quorum_of_agreeing_voters() -> None:
    """Two of five agreeing is not enough, however long we wait."""
    e = server(5, voters=5)
    e.receive(looking(1, Vote(1, 0, 5), 1))
    for _ in range(10):
        assert e.tick().decided is None
    assert e.state == ServerState.LOOKING


def test_a_quorum_of_agreeing_voters_decides_after_the_finalize_wait() -> None:
    """Three of five agreeing (ourselves included) decide, once no better vote came in the
    finalize wait (Apache's finalizeWait)."""
    e = server(5, voters=5, finalize_ticks=2)
    e.receive(looking(1, Vote(1, 0, 5), 1))
    out = e.receive(looking(2, Vote(1, 0, 5), 1))
    assert out.decided is None, "decided before the finalize wait"
    assert e.tick().decided is None
    out = e.tick()
    assert out.decided == (ServerState.LEADING, 5) and e.state == ServerState.LEADING


def test_the_decision_is_leading_for_the_winner_and_following_for_the_others() -> None:
    servers = {i: Election(i, {1, 2, 3}, finalize_ticks=1) for i in (1, 2, 3)}
    first = {i: s.start(1, 0x100000000 + (7 if i == 2 else 3)) for i, s in servers.items()}
    run(servers, first)
    assert {i: s.state for i, s in servers.items()} == {
        1: ServerState.FOLLOWING, 2: ServerState.LEADING, 3: ServerState.FOLLOWING}
    assert {s.vote.leader for s in servers.values()} == {2}


def test_a_better_vote_during_the_finalize_wait_cancels_the_decision() -> None:
    e = server(3, voters=5, finalize_ticks=3)
    e.receive(looking(1, Vote(1, 0, 3), 1))
    e.receive(looking(2, Vote(1, 0, 3), 1))  # a quorum for 3: the wait starts
    e.receive(looking(4, Vote(1, 9, 4), 1))  # a better vote arrives
    assert e.vote.leader == 4
    for _ in range(10):
        assert e.tick().decided is None, "decided for a vote a quorum no longer holds"


def test_every_reachable_voter_agreeing_decides_without_the_finalize_wait() -> None:
    """The wait is for a better vote still on its way; when every voter we can still reach
    (the owner says which) already voted for our vote in this round, none can come: decide
    at once. A quorum is still needed."""
    e = server(3, voters=3, finalize_ticks=2)
    e.set_reachable({1})  # 2 is gone
    out = e.receive(looking(1, Vote(1, 0, 3), 1))
    assert out.decided == (ServerState.LEADING, 3)


def test_a_reachable_voter_not_heard_in_the_round_keeps_the_finalize_wait() -> None:
    e = server(5, voters=5, finalize_ticks=2)
    e.set_reachable({1, 2, 4})  # 4 is connected but has not voted in this round
    e.receive(looking(1, Vote(1, 0, 5), 1))
    out = e.receive(looking(2, Vote(1, 0, 5), 1))
    assert out.decided is None and e.tick().decided is None
    assert e.tick().decided == (ServerState.LEADING, 5)


def test_a_reachable_voter_with_another_vote_keeps_the_finalize_wait() -> None:
    e = server(1, voters=5, finalize_ticks=2)
    e.set_reachable({3, 5})
    e.receive(looking(5, Vote(1, 0, 5), 1))  # adopted
    e.receive(looking(3, Vote(1, 0, 3), 1))  # still on its own vote (answered, not counted for 5)
    out = e.receive(looking(4, Vote(1, 0, 5), 1))  # 1, 4, 5: a quorum, but 3 disagrees
    assert out.decided is None and e.state == ServerState.LOOKING


def test_every_reachable_voter_agreeing_without_a_quorum_decides_nothing() -> None:
    e = server(5, voters=5, finalize_ticks=2)
    e.set_reachable({1})  # a minority side
    e.receive(looking(1, Vote(1, 0, 5), 1))
    for _ in range(5):
        assert e.tick().decided is None


def test_without_reachability_the_finalize_wait_holds() -> None:
    """An owner that says nothing of its connections (the default) gets the plain wait."""
    e = server(3, voters=3, finalize_ticks=2)
    assert e.receive(looking(1, Vote(1, 0, 3), 1)).decided is None


def test_a_peer_lost_during_the_finalize_wait_ends_it_at_the_next_tick() -> None:
    e = server(3, voters=5, finalize_ticks=4)
    e.set_reachable({1, 2, 4})
    e.receive(looking(1, Vote(1, 0, 3), 1))
    assert e.receive(looking(2, Vote(1, 0, 3), 1)).decided is None  # 4 not heard yet
    e.set_reachable({1, 2})  # 4's connection closed
    assert e.tick().decided == (ServerState.LEADING, 3)


def test_only_voters_votes_count_towards_the_quorum() -> None:
    """Votes from servers outside the voting membership are ignored."""
    e = server(3, voters=3)
    e.receive(looking(9, Vote(1, 0, 3), 1))  # not a member at all
    for _ in range(5):
        assert e.tick().decided is None


def test_our_own_notification_is_ignored() -> None:
    e = server(1)
    out = e.receive(looking(1, Vote(9, 9, 1), 1))
    assert out.messages == [] and out.events == [] and e.vote == Vote(1, 0, 1)


def test_a_looking_server_resends_its_vote_until_decided() -> None:
    """Notifications may be lost: every resend_ticks a LOOKING server broadcasts again."""
    e = Election(1, {1, 2, 3}, resend_ticks=3)
    e.start(1, 0)
    sends = [sent_to(e.tick()) for _ in range(6)]
    assert sends.count([2, 3]) == 2 and sends.count([]) == 4


# ---------------------------------------------------------------- LOOKING vs FOLLOWING/LEADING
def test_a_serving_server_answers_a_looking_one_with_its_state_and_leader() -> None:
    """A FOLLOWING/LEADING server tells a LOOKING newcomer who leads, and only it."""
    e = server(2)
    e.settled(ServerState.FOLLOWING, leader=3, epoch=2, zxid=0x200000004)
    out = e.receive(looking(1, Vote(1, 0, 1), 5))
    assert sent_to(out) == [1]
    n = out.messages[0][1]
    assert n.state == FOLLOWING and n.vote == Vote(2, 0x200000004, 3)


def test_a_serving_server_ignores_other_serving_servers() -> None:
    e = server(2)
    e.settled(ServerState.FOLLOWING, leader=3, epoch=1, zxid=0)
    out = e.receive(serving(1, FOLLOWING, 3, 1))
    assert out.messages == [] and e.state == ServerState.FOLLOWING


def test_a_newcomer_follows_a_leader_backed_by_a_quorum_that_says_leading() -> None:
    """Out-of-election notifications: a LOOKING server joins an established ensemble without
    a new election once a quorum reports the same leader and the leader itself says LEADING."""
    e = server(1, voters=3)
    out = e.receive(serving(2, FOLLOWING, 3, round=4))
    assert out.decided is None, "one follower's word (plus none from the leader) is not enough"
    out = e.receive(serving(3, LEADING, 3, round=4))
    assert out.decided == (ServerState.FOLLOWING, 3)
    assert e.round == 4, "the newcomer takes the ensemble's round"


def test_a_newcomer_does_not_follow_a_leader_that_does_not_say_leading() -> None:
    """Followers of a leader that has since gone are not enough: the leader must say LEADING."""
    e = server(1, voters=5)
    e.receive(serving(2, FOLLOWING, 5, round=1))
    e.receive(serving(3, FOLLOWING, 5, round=1))
    out = e.receive(serving(4, FOLLOWING, 5, round=1))
    assert out.decided is None and e.state == ServerState.LOOKING


def test_a_newcomer_does_not_follow_a_minority() -> None:
    e = server(1, voters=5)
    e.receive(serving(5, LEADING, 5, round=1))
    out = e.receive(serving(2, FOLLOWING, 5, round=1))
    assert out.decided is None and e.state == ServerState.LOOKING, "2 of 5 voters back 5"


def test_never_lead_on_the_word_of_followers_from_an_earlier_round() -> None:
    """A server named leader by FOLLOWING notifications of an older round does not lead: those
    followers may not yet know it gave up leading (Apache's checkLeader)."""
    e = server(3, voters=3)
    e.start(1, 0)  # round 2: we went looking again
    out = e.receive(serving(1, FOLLOWING, 3, round=1))
    out2 = e.receive(serving(2, FOLLOWING, 3, round=1))
    assert out.decided is None and out2.decided is None and e.state == ServerState.LOOKING
    out = e.receive(serving(1, FOLLOWING, 3, round=2))  # a follower of this round: now we lead
    assert out.decided == (ServerState.LEADING, 3)


def test_a_serving_server_with_a_newer_membership_hands_it_over() -> None:
    """A FOLLOWING/LEADING sender with a newer config version makes the receiver adopt that
    membership (a reconfig committed while it was away) before anything else."""
    e = server(1)
    n = Notification(2, FOLLOWING, Vote(1, 0, 3), 1, config_version=0x100000002, config=b"server.1=...")
    out = e.receive(n)
    assert out.adopt == (0x100000002, b"server.1=...") and out.decided is None


# ---------------------------------------------------------------- observers and non-members
def test_an_observer_votes_for_nobody_and_its_notifications_do_not_count() -> None:
    obs = Election(4, {1, 2, 3}, {4})
    out = obs.start(1, 0x100000009)
    assert obs.vote.leader == -1, "an observer proposes no one"
    voter = server(1)
    voter.receive(Notification(4, LOOKING, Vote(1, 0, 1), 1, observer=True))
    voter.receive(Notification(4, LOOKING, Vote(1, 0, 1), 1, observer=True))
    for _ in range(5):
        assert voter.tick().decided is None, "an observer's vote counted"
    assert sent_to(out) == [1, 2, 3]


def test_an_observer_learns_the_leader_and_observes() -> None:
    obs = Election(4, {1, 2, 3}, {4})
    obs.start(1, 0)
    out = obs.receive(serving(1, FOLLOWING, 2, round=1))
    assert out.decided is None, "the leader itself has not said LEADING"
    out = obs.receive(serving(2, LEADING, 2, round=1))
    assert out.decided == (ServerState.OBSERVING, 2), "2 of 3 voters back 2, and 2 leads"


def test_a_server_its_membership_left_out_never_takes_a_role() -> None:
    e = Election(4, {1, 2, 3})
    e.start(1, 0)
    e.receive(serving(1, FOLLOWING, 2, round=1))
    e.receive(serving(3, FOLLOWING, 2, round=1))
    out = e.receive(serving(2, LEADING, 2, round=1))
    assert out.decided is None and e.state == ServerState.LOOKING


def test_a_reconfig_changes_who_counts() -> None:
    """After set_members, the new voters (and only they) form the quorum."""
    e = server(1, voters=3)
    e.set_members({1, 2, 3, 4, 5}, set())
    e.start(1, 0)
    e.receive(looking(5, Vote(1, 0, 5), e.round))
    e.receive(looking(4, Vote(1, 0, 5), e.round))
    assert e.tick().decided is None and e.tick().decided == (ServerState.FOLLOWING, 5)


# ---------------------------------------------------------------- a reconfig logged, not committed
def test_with_a_proposed_membership_a_vote_needs_a_quorum_of_both() -> None:
    """A server that logged a reconfig it has not seen committed counts votes against its
    committed membership AND the proposed one (Apache's getVoteTracker adds the last seen
    verifier when its version is newer; hasAllQuorums needs a quorum in each). Votes count only
    towards the memberships that hold their sender. Committed {1, 2, 5}, proposed {1, 2}: the
    removed 5 backing 1 makes a quorum of the committed voters only, so 1 must wait for 2."""
    e = Election(1, {1, 2, 5}, finalize_ticks=0)
    e.config_version = 0x100000001
    e.set_proposed({1, 2}, set(), 0x100000005)
    e.start(1, 5)
    out = e.receive(looking(5, Vote(1, 5, 1), e.round))
    assert out.decided is None and e.state == ServerState.LOOKING, "1 of the proposed voters {1, 2} is no quorum"
    out = e.receive(looking(2, Vote(1, 5, 1), e.round))
    assert out.decided == (ServerState.LEADING, 1), "now 2 of {1, 2} and 3 of {1, 2, 5} agree"


def test_a_proposed_membership_no_newer_than_the_committed_one_is_ignored() -> None:
    """Only a proposed membership with a higher version than the committed one counts."""
    e = Election(1, {1, 2, 5}, finalize_ticks=0)
    e.config_version = 0x100000005
    e.set_proposed({1, 2}, set(), 0x100000005)
    e.start(1, 5)
    assert e.receive(looking(5, Vote(1, 5, 1), e.round)).decided == (ServerState.LEADING, 1)


def test_a_looking_server_also_hears_and_tells_the_proposed_voters() -> None:
    """Notifications go to the voters of both memberships, and a vote from a voter of either
    one is taken (Apache's validVoter: the current and next voters)."""
    e = Election(1, {1, 2, 3}, finalize_ticks=0)
    e.set_proposed({1, 2, 3, 4}, set(), 0x100000005)
    out = e.start(1, 5)
    assert sent_to(out) == [2, 3, 4]
    e.receive(looking(4, Vote(1, 5, 1), e.round))
    out = e.receive(looking(2, Vote(1, 5, 1), e.round))
    assert out.decided == (ServerState.LEADING, 1), "2 of {1, 2, 3} and 3 of {1, 2, 3, 4}"


def test_a_newcomer_follows_only_a_leader_backed_in_both_memberships() -> None:
    """Joining servers that already serve (outside the election) needs both quorums too."""
    e = Election(1, {1, 2, 3})
    e.set_proposed({1, 2, 3, 4, 5}, set(), 0x100000005)
    e.start(1, 5)
    e.receive(serving(3, FOLLOWING, 2, round=1))
    out = e.receive(serving(2, LEADING, 2, round=1))
    assert out.decided is None, "2 and 3 are 2 of {1, 2, 3} but only 2 of the proposed {1, 2, 3, 4, 5}"
    out = e.receive(serving(4, FOLLOWING, 2, round=1))
    assert out.decided == (ServerState.FOLLOWING, 2), "and 4 makes 3 of 5"
