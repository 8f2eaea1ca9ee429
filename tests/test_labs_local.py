"""The labs platform on the local backend: real server processes, faults through the relay."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support.lab_scenarios import kill_isolate_heal
from zkops.labs.faultproxy import Faults, Relay
from zkops.labs.lab import Lab, LabError, parse_groups
from zkops.labs.local import free_ports
from zkops.labs.timeline import elections, timeline
from zkops.server.fourletterclient import four_letter_or_empty


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@pytest.fixture
def lab(tmp_path: Path):
    the_lab = Lab.up(tmp_path / "lab", nodes=3, tick_ms=200)
    pids = [n.pid for n in the_lab.state.nodes] + [the_lab.state.extra["proxy_pid"]]
    try:
        yield the_lab
    finally:
        the_lab.down()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in pids), "lab down must leave no process behind"
        assert not (tmp_path / "lab").exists()


def _client(hosts: str) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=5, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5},
                    command_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    c.start(timeout=30)
    return c


# ---------------------------------------------------------------- pure pieces


def test_parse_groups():
    assert parse_groups("1,2/3", [1, 2, 3]) == [[1, 2], [3]]
    assert parse_groups("3", [1, 2, 3]) == [[3], [1, 2]]
    assert parse_groups("1/2", [1, 2, 3, 4, 5]) == [[1], [2], [3, 4, 5]]
    for bad, msg in (("1,2,3", "one side"), ("1/1", "both sides"), ("1/9", "no node 9"), ("1//2", "empty side")):
        with pytest.raises(LabError, match=msg):
            parse_groups(bad, [1, 2, 3])


def test_timeline_tells_the_votes_and_the_decision():
    events = [
        {"ts": 10.0, "server": 1, "kind": "state_changed", "round": 1, "state": "looking"},
        {"ts": 10.1, "server": 1, "kind": "vote_sent", "round": 1, "vote": {"leader": 1, "epoch": 0, "zxid": "0x0"}},
        {"ts": 10.2, "server": 1, "kind": "vote_received", "round": 1, "peer": 2, "state": "looking",
         "vote": {"leader": 2, "epoch": 0, "zxid": "0x0"}},
        {"ts": 10.3, "server": 1, "kind": "vote_changed", "round": 1, "vote": {"leader": 2, "epoch": 0, "zxid": "0x0"}},
        {"ts": 10.5, "server": 1, "kind": "leader_elected", "round": 1, "peer": 2, "state": "following",
         "election_ms": 500.0},
        {"ts": 10.5, "server": 2, "kind": "leader_elected", "round": 1, "peer": 2, "state": "leading",
         "election_ms": 480.0},
    ]
    lines = timeline(events)
    assert lines[0].startswith("+   0.000s  server 1  is LOOKING")
    assert "hears from 2 (looking): votes for 2 (epoch 0, zxid 0x0)" in lines[2]
    assert "changes its vote to 2" in lines[3]
    assert "decides: leader is 2, so it is FOLLOWING (election took 500 ms)" in lines[4]
    assert len(timeline(events, votes=False)) == 3
    assert elections(events) == [{"ts": 10.5, "leader": 2, "servers": [1, 2], "election_ms": 500.0}]


def test_relay_passes_holds_and_delays_bytes(tmp_path: Path):
    """A cut link holds its bytes and delivers them intact on heal; a slow one delays them."""

    async def scenario() -> None:
        received: list[bytes] = []

        async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while data := await reader.read(100):
                received.append(data)

        server = await asyncio.start_server(sink, "127.0.0.1", 0)
        target = server.sockets[0].getsockname()[1]
        listen = free_ports(1)[0]
        (tmp_path / "links.json").write_text(json.dumps([{"src": 1, "dst": 2, "kind": "quorum",
                                                          "listen": listen, "target": target}]))
        relay = Relay(tmp_path)
        await relay.start()
        _, w = await asyncio.open_connection("127.0.0.1", listen)

        async def settle() -> bytes:
            await asyncio.sleep(0.3)
            return b"".join(received)

        w.write(b"one,")
        assert await settle() == b"one,"
        (tmp_path / "faults.json").write_text(json.dumps(Faults({(1, 2)}).dump()))
        relay.reload()
        w.write(b"two,")
        assert await settle() == b"one,", "a cut link must not deliver"
        (tmp_path / "faults.json").write_text(json.dumps(Faults(delay_ms={(1, 2): 400}).dump()))
        relay.reload()
        t0 = time.monotonic()
        while b"two," not in b"".join(received):
            await asyncio.sleep(0.01)
        assert time.monotonic() - t0 >= 0.35, "the held bytes go out after the delay"
        assert b"".join(received) == b"one,two,", "the stream resumes intact after the heal"
        w.close()
        for s in relay.servers:
            s.close()
        server.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- real processes

@pytest.mark.integration
def test_kill_isolate_heal_pause(lab: Lab):
    kill_isolate_heal(lab)


@pytest.mark.integration
def test_pause_is_a_gc_pause_and_oneway_cuts_one_direction(lab: Lab):
    leader = lab.wait_leader()
    lab.pause(leader)
    assert [s.state for s in lab.status() if s.id == leader] == ["paused"]
    others = [i for i in lab.node_ids() if i != leader]
    second = lab.wait_leader(among=others)
    lab.resume(leader)
    deadline = time.monotonic() + 30
    while lab.modes()[leader] != "follower" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.modes()[leader] == "follower"
    # the leader's messages to one follower stop: that follower gives up on it and looks
    victim = next(i for i in lab.node_ids() if i != second)
    lab.oneway(second, victim)
    assert lab.state.faults["cut"] == [[second, victim]]
    deadline = time.monotonic() + 30
    while lab.modes()[victim] == "follower" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.modes()[victim] != "follower"
    lab.heal()
    deadline = time.monotonic() + 30
    while lab.modes()[victim] not in ("follower", "leader") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lab.wait_leader() is not None


@pytest.mark.integration
def test_cli_up_status_elections_down(tmp_path: Path):
    env = dict(os.environ, ZKOPS_LAB_DIR=str(tmp_path / "cli-lab"), COLUMNS="200")

    def zkops(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "zkops.cli", "lab", *args], env=env, text=True,
                              capture_output=True, timeout=120)

    up = zkops("up", "--nodes", "3", "--tick-ms", "200")
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        assert "leader: node" in up.stdout
        again = zkops("up")
        assert again.returncode == 2 and "already up" in again.stdout
        deadline = time.monotonic() + 30
        while True:  # a follower may still be syncing right after `up` names the leader
            st = zkops("status")
            if (st.stdout.count("follower"), st.stdout.count("leader")) == (2, 1) or time.monotonic() > deadline:
                break
        assert st.stdout.count("follower") == 2 and st.stdout.count("leader") == 1, st.stdout
        assert zkops("kill", "9").stdout.strip().startswith("lab: no node 9")
        el = zkops("elections")
        assert "decides: leader is" in el.stdout and "elected by servers [" in el.stdout, el.stdout
        bad = zkops("partition", "1,2,3")
        assert bad.returncode == 2 and "at least two groups" in bad.stdout
    finally:
        down = zkops("down")
    assert down.returncode == 0 and not (tmp_path / "cli-lab").exists()
    assert zkops("status").returncode == 2


@pytest.mark.integration
def test_watch_prints_events_as_they_happen(lab: Lab):
    lab.wait_leader()
    env = dict(os.environ, ZKOPS_LAB_DIR=str(lab.dir))
    proc = subprocess.Popen([sys.executable, "-m", "zkops.cli", "lab", "watch", "/w", "--seconds", "8"],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    zk = _client(lab.connect_string())
    try:
        time.sleep(2.5)
        zk.create("/w", b"1")
        time.sleep(0.5)
        zk.set("/w", b"2")
        out, _ = proc.communicate(timeout=30)
    finally:
        zk.stop()
        if proc.poll() is None:
            proc.kill()
    assert "connection state: CONNECTED" in out
    assert "/w: (does not exist)" in out
    assert "WatchedEvent type:CREATED path:/w" in out and "WatchedEvent type:CHANGED path:/w" in out
    assert "data=b'2' version=1" in out


def test_lab_commands_without_a_lab_say_what_to_do(tmp_path: Path):
    with pytest.raises(LabError, match="zkops lab up"):
        Lab.load(tmp_path / "none")


@pytest.mark.integration
def test_down_stops_a_server_another_process_restarted(tmp_path: Path):
    """The console (or another `zkops lab` command) restarts a server and saves its new pid in
    lab.json; a Lab object loaded before that must still stop it at `down`."""
    first = Lab.up(tmp_path / "lab", nodes=3, tick_ms=200)
    restarted = None
    try:
        other = Lab.load(tmp_path / "lab")
        other.kill(1)
        other.start(1)
        restarted = other.node(1).pid
        deadline = time.monotonic() + 60
        while not four_letter_or_empty(*other.address(1), "srvr") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert restarted is not None and _alive(restarted)
    finally:
        first.down()
    deadline = time.monotonic() + 10
    while restarted is not None and _alive(restarted) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert restarted is not None and not _alive(restarted), "lab down left the restarted server running"


def test_lab_ports_lie_below_the_ephemeral_range():
    """A lab node that is killed and started again binds its ports a second time. Ports from the
    kernel's ephemeral range can be taken meanwhile as the source port of some outgoing
    connection (the relays and clients dial all the time); ports below it cannot."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if low <= 12000:
        pytest.skip(f"this kernel's ephemeral range starts at {low}: no room below it")
    ports = free_ports(60)
    assert len(set(ports)) == 60
    assert all(1024 < p < low for p in ports), sorted(ports)
