"""Real ensembles on loopback: election, replication, failover, observers, sessions."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from tests.support.ensemble import Ensemble, four_letter

pytestmark = pytest.mark.integration


def _retry_create(c: KazooClient, path: str, value: bytes = b"") -> None:
    """Create through failovers: retry on connection loss; an earlier attempt may have won."""
    from kazoo.exceptions import NodeExistsError
    from kazoo.retry import KazooRetry

    def attempt() -> None:
        try:
            c.create(path, value)
        except NodeExistsError:
            pass

    KazooRetry(max_tries=-1, delay=0.1, max_delay=1, deadline=60)(attempt)


def _client(hosts: str, timeout: float = 10.0) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=timeout, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 1})
    c.start(timeout=30)
    return c


def test_three_nodes_elect_one_leader_and_replicate():
    with Ensemble(3) as ens:
        leader = ens.wait_ready()
        assert sorted(ens.modes().values()) == ["follower", "follower", "leader"]
        clients = {i: _client(ens.address(i)) for i in ens.ids}
        follower = next(i for i in ens.ids if i != leader)
        _retry_create(clients[follower], "/via-follower", b"1")
        clients[leader].create("/via-leader", b"2")
        for i, c in clients.items():
            c.sync("/")
            assert c.get("/via-follower")[0] == b"1" and c.get("/via-leader")[0] == b"2", i
        mntr = dict(line.split("\t", 1) for line in four_letter(ens.client_port(leader), "mntr").splitlines())
        assert mntr["zk_server_state"] == "leader" and mntr["zk_synced_followers"] == "2"
        events = [json.loads(x) for x in (ens.workdir / f"n{leader}" / "data" / "election-events.jsonl")
                  .read_text().splitlines()]
        assert any(e["kind"] == "leader_elected" and e["peer"] == leader for e in events)
        assert "LEADER ELECTION TOOK - " in (ens.workdir / f"n{leader}" / "zkops-server.log").read_text()
        elec = [json.loads(x) for x in four_letter(ens.client_port(leader), "elec").splitlines()]
        assert any(e["kind"] == "leader_elected" for e in elec) and any(e["kind"] == "vote_sent" for e in elec)
        for c in clients.values():
            c.stop()


def test_kill_9_leader_writes_go_on_and_it_catches_up():
    with Ensemble(3) as ens:
        leader = ens.wait_ready()
        c = _client(ens.connect_string)
        for i in range(20):
            c.create(f"/before-{i}", b"x")
        t0 = time.monotonic()
        ens.kill(leader)
        _retry_create(c, "/after-failover", b"y")  # until the survivors have a leader
        failover = time.monotonic() - t0
        new_leader = ens.wait_ready()
        assert new_leader != leader and failover < 20
        ens.start(leader)
        ens.wait_ready()
        back = _client(ens.address(leader))
        back.sync("/")
        assert back.exists("/after-failover") and all(back.exists(f"/before-{i}") for i in range(20))
        back.stop()
        c.stop()


def test_rolling_restart_loses_no_acknowledged_write():
    with Ensemble(3) as ens:
        ens.wait_ready()
        acked: list[str] = []
        stop = threading.Event()

        def writer() -> None:
            c = _client(ens.connect_string)
            i = 0
            while not stop.is_set():
                try:
                    c.create(f"/roll-{i}")
                    acked.append(f"/roll-{i}")
                except KazooException:
                    pass
                i += 1
            c.stop()

        t = threading.Thread(target=writer)
        t.start()
        for i in ens.ids:
            time.sleep(1.0)
            ens.kill(i)
            ens.start(i)
            ens.wait_ready(60)
        time.sleep(1.0)
        stop.set()
        t.join(60)
        c = _client(ens.connect_string)
        c.sync("/")
        missing = [p for p in acked if not c.exists(p)]
        c.stop()
        assert len(acked) > 20 and not missing, missing[:5]


def test_observer_serves_but_does_not_vote():
    with Ensemble(3, observers=1) as ens:
        ens.wait_ready()
        assert ens.modes()[4] == "observer"
        c = _client(ens.address(4))
        c.create("/from-observer", b"o")
        other = _client(ens.address(1))
        other.sync("/")
        assert other.get("/from-observer")[0] == b"o"
        # two voters down: the observer cannot keep a quorum alive
        leader = ens.leader()
        downs = [i for i in (1, 2, 3) if i != leader][:1] + [leader]
        for i in downs:
            ens.kill(i)
        time.sleep(3)
        assert ens.modes()[4] is None or ens.modes()[4] not in ("leader",)
        c.stop()
        other.stop()


def test_minority_serves_no_writes():
    with Ensemble(3) as ens:
        leader = ens.wait_ready()
        others = [i for i in ens.ids if i != leader]
        for i in others:
            ens.pause(i)
        time.sleep(3.5)  # more than syncLimit (5 ticks of 200 ms)
        assert ens.modes()[leader] is None  # no longer serving
        for i in others:
            ens.resume(i)
        ens.wait_ready(30)


def test_session_moves_between_servers_and_keeps_its_ephemeral():
    with Ensemble(3) as ens:
        ens.wait_ready()
        c = KazooClient(hosts=ens.address(1), timeout=6)
        c.start(timeout=20)
        c.create("/mine", ephemeral=True)
        c.create("/watched", b"0")
        fired = threading.Event()
        c.get("/watched", watch=lambda e: fired.set())
        sid = c.client_id
        c.stop_called = False
        c.set_hosts(ens.address(2))
        # force a reconnect to the other server
        ens.kill(1)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if c.connected and c.exists("/mine") is not None:
                    break
            except KazooException:
                pass
            time.sleep(0.2)
        assert c.client_id == sid
        assert c.exists("/mine") is not None
        # the watch set on server 1 came along (setWatches on reconnect)
        other = _client(ens.address(3))
        other.set("/watched", b"1")
        assert fired.wait(10), "the watch did not follow the session to the other server"
        other.stop()
        c.stop()
        watcher = _client(ens.address(3))
        deadline = time.monotonic() + 30
        while watcher.exists("/mine") is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        watcher.stop()


def test_five_nodes_and_an_observer_survive_two_failures():
    with Ensemble(5, observers=1) as ens:
        leader = ens.wait_ready(60)
        assert list(ens.modes().values()).count("follower") == 4 and ens.modes()[6] == "observer"
        c = _client(ens.connect_string)
        _retry_create(c, "/five", b"5")
        down = [leader, next(i for i in (1, 2, 3, 4, 5) if i != leader)]
        for i in down:
            ens.kill(i)
        _retry_create(c, "/after-two-down", b"ok")
        alive = [i for i in ens.ids if i not in down]
        ens.wait_ready(60, ids=alive)
        obs = _client(ens.address(6))
        obs.sync("/")
        assert obs.get("/after-two-down")[0] == b"ok" and obs.get("/five")[0] == b"5"
        obs.stop()
        c.stop()


def test_follower_far_behind_is_brought_up_by_snapshot():
    with Ensemble(3, env={"ZKOPS_HISTORY_WINDOW": "20"}) as ens:
        leader = ens.wait_ready()
        lagging = next(i for i in ens.ids if i != leader)
        ens.kill(lagging)
        c = _client(",".join(ens.address(i) for i in ens.ids if i != lagging))
        for i in range(120):
            _retry_create(c, f"/snap-{i}", str(i).encode())
        c.stop()
        ens.start(lagging)
        ens.wait_ready(60)
        log = (ens.workdir / f"n{lagging}" / "zkops-server.log").read_text()
        assert "installing the leader's snapshot" in log
        back = _client(ens.address(lagging))
        back.sync("/")
        assert all(back.get(f"/snap-{i}")[0] == str(i).encode() for i in range(120))
        back.stop()
        # and it survives its own restart from what it stored
        ens.kill(lagging)
        ens.start(lagging)
        ens.wait_ready(60)
        again = _client(ens.address(lagging))
        assert again.get("/snap-119")[0] == b"119"
        again.stop()


def test_silent_client_on_a_follower_expires_and_its_ephemeral_goes():
    """A client whose process freezes (socket open, no pings) loses its session on every server kind."""
    from tests.support.rawclient import RawClient
    from zkops.server.codes import Op
    from zkops.server.records import ACL, CreateRequest, Id

    with Ensemble(3) as ens:
        leader = ens.wait_ready()
        watcher = _client(ens.connect_string)
        try:
            for node in ens.ids:
                path = f"/frozen-{node}"
                raw = RawClient(ens.address(node), timeout_ms=800)  # negotiated: 800 ms (4 ticks of 200)
                hdr, _ = raw.request(Op.create, CreateRequest(path, b"", [ACL(31, Id("world", "anyone"))], 1))  # 1: ephemeral
                assert hdr.err == 0
                watcher.sync("/")  # the watcher may sit on another server: catch up with the leader first
                assert watcher.exists(path), f"ephemeral made through server {node} should exist"
                t0 = time.monotonic()
                while watcher.exists(path) and time.monotonic() - t0 < 10:
                    time.sleep(0.05)  # raw stays connected and silent, as a frozen process would
                gone_after = time.monotonic() - t0
                raw.close()
                role = "leader" if node == leader else "follower"
                assert watcher.exists(path) is None, f"session held by the {role} never expired"
                assert gone_after < 5, f"session held by the {role} expired after {gone_after:.1f} s"
        finally:
            watcher.stop()
            watcher.close()


def test_read_only_mode_serves_reads_when_cut_off_and_hands_back_when_the_quorum_returns():
    from kazoo.exceptions import NotReadOnlyCallError
    from kazoo.protocol.states import KeeperState

    from zkops.server.fourletterclient import four_letter

    with Ensemble(3, extra={"readonlymode.enabled": "true"}) as ens:
        ens.wait_ready()
        zk = _client(ens.connect_string)
        zk.create("/ro-data", b"before")
        zk.sync("/")
        zk.stop()
        survivor = 3
        for i in (1, 2):
            ens.kill(i)
        deadline = time.monotonic() + 20
        while four_letter("127.0.0.1", ens.client_port(survivor), "isro").strip() != "ro":
            assert time.monotonic() < deadline, "the cut-off server never went read-only"
            time.sleep(0.2)
        assert "Mode: read-only" in four_letter("127.0.0.1", ens.client_port(survivor), "srvr")
        ro = KazooClient(hosts=ens.address(survivor), read_only=True, timeout=4, connection_retry={"max_tries": -1})
        ro.start(timeout=20)
        try:
            assert ro.client_state == KeeperState.CONNECTED_RO
            assert ro.get("/ro-data")[0] == b"before"
            with pytest.raises(NotReadOnlyCallError):
                ro.create("/ro-write", b"x")
            rw = KazooClient(hosts=ens.address(survivor), timeout=4, connection_retry={"max_tries": 1})
            with pytest.raises(Exception):  # noqa: B017 - a read-write client is turned away
                rw.start(timeout=5)
            rw.stop()
            ens.start(1, 2)
            ens.wait_ready(60)
            deadline = time.monotonic() + 30
            while ro.client_state != KeeperState.CONNECTED:
                assert time.monotonic() < deadline, f"the client stayed {ro.client_state}"
                time.sleep(0.2)
            ro.create("/ro-write-after", b"x")
        finally:
            ro.stop()
