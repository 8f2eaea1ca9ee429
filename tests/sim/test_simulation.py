"""Election and ZAB under a seeded simulation: many seeds, faults, invariants every step."""

from __future__ import annotations

import pytest

from tests.sim.simulator import Simulation
from zkops.server.election import Election, Notification, ServerState, Vote
from zkops.server.zab import make_zxid


def _chunks(total: int, size: int) -> list[range]:
    return [range(i, min(i + size, total)) for i in range(0, total, size)]


@pytest.mark.parametrize("seeds", _chunks(300, 50), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_three_voters_keep_every_acknowledged_write(seeds):
    for seed in seeds:
        Simulation(seed, 3, 0, steps=1500).run()


@pytest.mark.parametrize("seeds", _chunks(100, 50), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_five_voters_and_an_observer(seeds):
    for seed in seeds:
        Simulation(10_000 + seed, 5, 1, steps=1500).run()


@pytest.mark.parametrize("seeds", _chunks(40, 20), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_seven_voters_and_two_observers(seeds):
    for seed in seeds:
        Simulation(20_000 + seed, 7, 2, steps=1200).run()


@pytest.mark.slow
@pytest.mark.parametrize("seeds", _chunks(700, 100), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_many_more_seeds(seeds):
    for seed in seeds:
        Simulation(100_000 + seed, 3 + 2 * (seed % 2), seed % 3, steps=2000, fault_rate=0.02).run()


# ---------------------------------------------------------------- focused behaviours
@pytest.mark.parametrize("seeds", _chunks(60, 30), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_reconfigs_under_faults_lose_nothing_and_settle(seeds):
    """Leaders propose random one-server membership changes (servers join, leave, switch
    between participant and observer; two spares start outside the ensemble) amid crashes,
    partitions and broken links: no acknowledged write is lost, one leader per epoch, and
    after healing the members of the newest membership all follow one leader."""
    changed = 0
    for seed in seeds:
        sim = Simulation(200_000 + seed, 3 + 2 * (seed % 2), seed % 2, steps=1500, fault_rate=0.02,
                         spares=2, reconfig_rate=0.05).run()
        changed += sim.reconfigs
    assert changed > 0


@pytest.mark.slow
@pytest.mark.parametrize("seeds", _chunks(200, 50), ids=lambda r: f"{r.start}-{r.stop - 1}")
def test_reconfigs_many_more_seeds(seeds):
    for seed in seeds:
        Simulation(300_000 + seed, 3 + 2 * (seed % 2), seed % 3, steps=2000, fault_rate=0.02,
                   spares=2, reconfig_rate=0.05).run()


def test_vote_with_higher_zxid_wins_over_higher_myid():
    assert Vote(1, make_zxid(1, 5), 1) > Vote(1, make_zxid(1, 4), 3)
    assert Vote(2, 0, 1) > Vote(1, make_zxid(1, 9), 3)
    e = Election(3, {1, 2, 3})
    e.start(1, make_zxid(1, 4))
    e.receive(Notification(1, "LOOKING", Vote(1, make_zxid(1, 5), 1), 1))
    assert e.vote.leader == 1


def _quiet(sim: Simulation, steps: int) -> None:
    for _ in range(steps):
        sim.step(faults=False)


def test_seed_startup_servers_one_at_a_time_elect_2_then_3_follows():
    sim = Simulation(7, 3, 0, write_rate=0.0)
    sim.crash(3)
    sim.crash(2)
    _quiet(sim, 40)
    assert sim.nodes[1].peer.state == ServerState.LOOKING  # alone: no quorum
    sim.restart(2)
    _quiet(sim, 80)
    assert sim.nodes[2].peer.can_propose and sim.nodes[1].peer.leader == 2
    rounds = {sid: n.peer.election.round for sid, n in sim.nodes.items() if n.peer}
    sim.restart(3)
    _quiet(sim, 80)
    assert sim.nodes[3].peer.state == ServerState.FOLLOWING and sim.nodes[3].peer.leader == 2
    # the newcomer joined the established leader: no new round for 1 and 2
    assert sim.nodes[1].peer.election.round == rounds[1] and sim.nodes[2].peer.election.round == rounds[2]


def test_follower_with_uncommitted_tail_is_truncated():
    sim = Simulation(11, 3, 0, write_rate=0.0)
    _quiet(sim, 120)
    leader = next(n for n in sim.nodes.values() if n.peer.can_propose)
    followers = [s for s in sim.nodes if s != leader.sid]
    # cut the leader off, then let it log a proposal nobody else gets
    sim.partition({leader.sid})
    _, out = leader.peer.propose(b"orphan")
    sim._apply_output(leader, out)
    sim._sync(leader)
    orphan = leader.disk.log[-1][0]
    _quiet(sim, 200)
    new_leader = next(n for n in sim.nodes.values() if n.peer is not None and n.peer.can_propose)
    assert new_leader.sid in followers
    _, out = new_leader.peer.propose(b"w-after")
    sim._apply_output(new_leader, out)
    sim.heal()
    _quiet(sim, 300)
    old = sim.nodes[leader.sid]
    assert old.peer.state == ServerState.FOLLOWING
    assert orphan not in dict(old.disk.log), "the old leader kept a txn that was never committed"
    assert b"w-after" in dict(old.applied).values()


def test_observer_never_votes_and_follows():
    sim = Simulation(5, 3, 1, write_rate=0.2)
    _quiet(sim, 200)
    obs = sim.nodes[4].peer
    assert obs.state == ServerState.OBSERVING and obs.established
    assert all(4 not in n.peer.election.recv for sid, n in sim.nodes.items() if sid != 4)
    leader = next(n for n in sim.nodes.values() if n.peer.can_propose)
    assert dict(sim.nodes[4].applied).keys() <= dict(leader.applied).keys()
    assert len(sim.nodes[4].applied) > 0


def test_minority_side_commits_nothing_and_majority_goes_on():
    sim = Simulation(3, 5, 0, write_rate=0.0)
    _quiet(sim, 150)
    leader = next(n for n in sim.nodes.values() if n.peer.can_propose)
    minority = {leader.sid, next(s for s in sim.nodes if s != leader.sid)}
    sim.partition(minority)
    before = len(leader.applied)
    _quiet(sim, 200)
    assert len(leader.applied) == before
    assert not leader.peer.can_propose
    majority_leaders = [n for s, n in sim.nodes.items() if s not in minority and n.peer.can_propose]
    assert len(majority_leaders) == 1


def test_a_server_a_reconfig_removed_votes_for_nobody():
    """Seed 300041 of the reconfig runs hung: the voters, still on the old membership, elected
    the removed server (highest id, same zxid), which never leads. As Apache's election, only
    a voter of its own membership proposes itself."""
    removed = Election(9, voters={1, 2}, observers={3})
    out = removed.start(epoch=3, zxid=0x300000077)
    assert removed.vote == Vote(-1, -1, -1)
    assert all(n.vote.leader == -1 for _, n in out.messages)
    voter = Election(1, voters={1, 2, 9}, observers={3})
    voter.start(epoch=3, zxid=0x300000077)
    voter.receive(Notification(9, ServerState.LOOKING.value, Vote(-1, -1, -1), voter.round))
    assert voter.vote.leader == 1  # not moved to the removed server's non-vote
