"""The proof every lab backend must pass, written once: kill the leader and read the votes,
isolate a node, write through the majority, heal, pause and resume."""

from __future__ import annotations

import time
from typing import Any

from kazoo.client import KazooClient


def until(probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    return probe()


def client(hosts: str) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=5, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5},
                    command_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    c.start(timeout=30)
    return c


def kill_isolate_heal(lab: Any) -> None:
    first = lab.wait_leader()
    t_kill = time.time()
    lab.kill(first)
    survivors = [i for i in lab.node_ids() if i != first]
    second = lab.wait_leader(among=survivors)
    since = [e for e in lab.election_events() if e["ts"] >= t_kill]
    elected = [e for e in since if e["kind"] == "leader_elected"]
    assert {e["server"] for e in elected} == set(survivors) and {e["peer"] for e in elected} == {second}
    assert any(e["kind"] == "vote_received" for e in since), "the timeline shows the votes"
    lab.start(first)
    assert until(lambda: lab.modes()[first] == "follower"), lab.modes()
    lab.isolate(second)
    assert until(lambda: lab.modes()[second] is None), "the cut-off leader stops serving"
    majority = [i for i in lab.node_ids() if i != second]
    third = lab.wait_leader(among=majority)
    zk = client(lab.connect_string(majority))
    zk.create("/while-cut", b"")
    zk.stop()
    lab.heal()
    assert until(lambda: lab.modes()[second] == "follower") and lab.leader() == third
    old = client(lab.connect_string([second]))
    old.sync("/")
    assert old.exists("/while-cut"), "the healed node has the majority's write"
    old.stop()
    lab.pause(third)
    assert [s.state for s in lab.status() if s.id == third] == ["paused"]
    assert lab.wait_leader(among=[i for i in lab.node_ids() if i != third]) != third
    lab.resume(third)
    assert until(lambda: lab.modes()[third] == "follower")
