"""Roles, learner phases and server modes are enums whose members are their strings: the
cores and the shell compare members, and every report prints the text it printed before
(Apache ZooKeeper 3.8's "Mode: follower", zk_server_state, the metrics' state labels)."""

from __future__ import annotations

import json

from tests.support.ourzk import InProcessServer
from tests.support.rawclient import four_letter
from tests.test_zab_rules import established
from zkops.server import metrics
from zkops.server.servermode import ServerMode
from zkops.server.strenum import StrEnum
from zkops.server.zab import Established, LearnerPhase, LearnerSync, Role, SyncMode


def test_a_member_is_its_string_everywhere_it_is_printed():
    for member in (*Role, *LearnerPhase, *ServerMode, *SyncMode, *LearnerSync):
        value = member.value
        assert member == value and hash(member) == hash(value) and {value: 1}[member] == 1
        assert str(member) == f"{member}" == "%s" % member == value  # noqa: UP031 (logging formats with %s)
        assert f"{member:>12}" == f"{value:>12}"
        assert json.dumps({"k": member}) == json.dumps({"k": value})
        assert type(member)(value) is member


def test_the_values_are_apaches_words():
    assert [m.value for m in ServerMode] == ["leader", "follower", "observer", "standalone", "looking", "read-only"]
    assert [r.value for r in Role] == ["leader", "follower", "observer"]
    assert all(ServerMode(r.value) for r in Role)  # a role served is a mode of the same name
    assert [p.value for p in LearnerPhase] == ["info", "epoch", "acked", "sync", "synced"]
    assert {m for m in ServerMode if m.voting} == {ServerMode.LEADER, ServerMode.FOLLOWER}
    assert issubclass(ServerMode, StrEnum) and issubclass(Role, StrEnum) and issubclass(LearnerPhase, StrEnum)


def test_the_zab_core_speaks_in_members():
    net = established(n=3, leader=1, observers=(4,))
    assert net.peers[1].role is Role.LEADER
    assert net.peers[2].role is Role.FOLLOWER and net.peers[4].role is Role.OBSERVER
    assert {sid: lr.phase for sid, lr in net.peers[1].learners.items()} == {
        2: LearnerPhase.SYNCED, 3: LearnerPhase.SYNCED, 4: LearnerPhase.SYNCED}
    told = {sid: [e.role for e in net.effects[sid] if isinstance(e, Established)] for sid in net.peers}
    assert told == {1: [Role.LEADER], 2: [Role.FOLLOWER], 3: [Role.FOLLOWER], 4: [Role.OBSERVER]}
    assert {sid: net.peers[sid].sync_mode for sid in (2, 3, 4)} == dict.fromkeys((2, 3, 4), LearnerSync.NEWLEADER)
    assert net.peers[1].sync_mode is LearnerSync.WAITING  # a leader never synchronises with anyone


def test_the_sync_modes_are_the_packets_names():
    assert [m.value for m in SyncMode] == ["DIFF", "TRUNC", "SNAP"]
    assert all(LearnerSync(m.value) for m in SyncMode)  # a learner is in the mode the leader said


def test_a_standalone_server_reports_its_mode_as_before():
    with InProcessServer() as s:
        assert s.server.mode() is ServerMode.STANDALONE
        assert "Mode: standalone\n" in four_letter(s.address, "srvr")
        assert "zk_server_state\tstandalone\n" in four_letter(s.address, "mntr")
        text = s.call(metrics.exposition, s.server.stats)
        states = [line for line in text.splitlines() if line.startswith("server_state{")]
        assert states == [f'server_state{{state="{m}"}} {1 if m == "standalone" else 0}'
                          for m in ("leader", "follower", "observer", "standalone", "looking", "read-only")]
