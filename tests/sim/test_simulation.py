"""Election and ZAB under a seeded simulation: many seeds, faults, invariants every step."""

from __future__ import annotations

import pytest

from tests.sim.simulator import Simulation
from tests.sim.suites import SUITES, seed_counts
from zkops.server.election import Election, Notification, ServerState, Vote
from zkops.server.zab import make_zxid

CASES = [pytest.param(s.name, seeds, id=f"{s.name}-{seeds.start}-{seeds.stop - 1}",
                      marks=[pytest.mark.slow] if s.slow else [])
         for s in SUITES.values() for seeds in s.chunks()]


@pytest.mark.parametrize(("name", "seeds"), CASES)
def test_suite_keeps_every_invariant(name: str, seeds: range) -> None:
    """Every seed of every suite (tests/sim/suites.py): no acknowledged write is lost, one
    leader per epoch, and after healing the members of the newest membership follow one
    leader. Replay a failing seed with `python -m tests.sim.run --suite NAME --seed N`."""
    suite = SUITES[name]
    changed = 0
    for seed in seeds:
        changed += suite.simulation(seed).run().reconfigs
    if suite.shape(0).get("reconfig_rate"):
        assert changed > 0, "no membership changed: this chunk tested nothing of reconfig"


def test_the_docs_quote_the_suites_seed_counts() -> None:
    """docs/consensus.md states how many seeds run; it must stay true as suites change."""
    from pathlib import Path

    default, slow = seed_counts()
    text = (Path(__file__).resolve().parents[2] / "docs" / "consensus.md").read_text()
    assert f"default run simulates {default} seeds" in text and f"`slow` suites {slow} more" in text


# ---------------------------------------------------------------- focused behaviours
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
