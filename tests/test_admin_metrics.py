"""The AdminServer (JSON over HTTP, read with curl) and the Prometheus metrics port (read with
prometheus_client's text-format parser), on a real server process and on an ensemble."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable

import pytest
from kazoo.client import KazooClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.ensemble import Ensemble
from tests.support.ourzk import ZkopsProcess
from tests.support.refzk import free_port
from zkops.server.adminserver import ALIASES, COMMANDS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server():
    admin, metrics = free_port(), free_port()
    proc = ZkopsProcess(extra_cfg={
        "admin.serverPort": str(admin), "admin.serverAddress": "127.0.0.1",
        "metricsProvider.className": "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        "metricsProvider.httpPort": str(metrics)})
    proc.admin, proc.metrics = admin, metrics  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.cleanup()


def curl(url: str) -> tuple[int, str]:
    done = subprocess.run(["curl", "-s", "-w", "\\n%{http_code}", url], capture_output=True, text=True, timeout=30)
    body, _, code = done.stdout.rpartition("\n")
    return int(code), body


def command(server, name: str) -> tuple[int, dict]:
    code, body = curl(f"http://127.0.0.1:{server.admin}/commands/{name}")
    return code, json.loads(body)


def scrape(port: int) -> dict[str, dict[tuple, float]]:
    code, body = curl(f"http://127.0.0.1:{port}/metrics")
    assert code == 200
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_every_command_and_alias_answers_json(server):
    for alias, primary in ALIASES.items():
        code, body = command(server, alias)
        assert code == 200 and body["command"] == primary, (alias, body)
        if primary not in ("leader", "set_trace_mask"):  # those two need an ensemble / a traceMask
            assert body["error"] is None, (alias, body)
    code, body = command(server, "nosuch")
    assert code == 404 and body == {"command": "nosuch", "error": "Unknown command: nosuch"}
    code, page = curl(f"http://127.0.0.1:{server.admin}/commands")
    assert code == 200 and all(f"/commands/{n}" in page for n in COMMANDS)


def test_command_shapes_follow_the_server(server):
    zk = KazooClient(server.address)
    zk.start()
    try:
        zk.create("/admin-seen", b"x")
        zk.get("/admin-seen", watch=lambda e: None)
        _, srvr = command(server, "srvr")
        assert srvr["server_stats"]["server_state"] == "standalone" and srvr["node_count"] >= 5
        assert srvr["version"].startswith("3.8.0-zkops")
        _, mntr = command(server, "monitor")
        assert mntr["server_state"] == "standalone" and mntr["znode_count"] == srvr["node_count"]
        _, cons = command(server, "cons")
        assert zk.client_id[0] in [c["session_id"] for c in cons["connections"]]  # a number, as Apache's
        _, wchs = command(server, "wchs")
        assert wchs["num_total_watches"] == 1 and wchs["num_paths"] == 1
        _, wchp = command(server, "wchp")
        assert wchp["path_to_session_ids"]["/admin-seen"] == [zk.client_id[0]]
        _, conf = command(server, "conf")
        assert conf["client_port"] == server.port and conf["tick_time"] == 2000
        _, ruok = command(server, "ruok")
        assert ruok == {"command": "ruok", "error": None}
        _, lead = command(server, "leader")
        assert lead["error"] == "server is not initialized"
    finally:
        zk.stop()


def test_bad_http_gets_an_error_and_the_server_serves_on(server):
    with socket.create_connection(("127.0.0.1", server.admin), timeout=5) as s:
        s.sendall(b"garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.admin), timeout=5) as s:
        s.sendall(b"POST /commands/ruok HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 405")
    assert command(server, "ruok")[0] == 200


def test_prometheus_metrics_track_the_server(server):
    before = scrape(server.metrics)
    zk = KazooClient(server.address)
    zk.start()
    try:
        for i in range(20):
            zk.create(f"/metric-{i}", b"v")
            zk.get(f"/metric-{i}")
        zk.exists("/metric-0", watch=lambda e: None)
        after = scrape(server.metrics)
    finally:
        zk.stop()
    assert after["znode_count"][()] == before["znode_count"][()] + 20
    assert after["updatelatency_count"][()] - before["updatelatency_count"][()] >= 20
    assert after["readlatency_count"][()] - before["readlatency_count"][()] >= 20
    assert after["fsynctime_count"][()] > before["fsynctime_count"][()]
    assert after["watch_count"][()] == 1 and after["num_alive_connections"][()] >= 1
    assert after["server_state"][(("state", "standalone"),)] == 1
    assert (("quantile", "0.99"),) in after["readlatency"]


def test_admin_port_taken_is_a_warning_and_disabled_means_no_listener():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        proc = ZkopsProcess(extra_cfg={"admin.serverPort": str(port), "admin.serverAddress": "127.0.0.1"})
        proc.start()
        try:
            assert f"AdminServer not started on 127.0.0.1:{port}" in proc.log_tail(20000)
        finally:
            proc.cleanup()
    port = free_port()
    proc = ZkopsProcess(extra_cfg={"admin.enableServer": "false", "admin.serverPort": str(port)})
    proc.start()
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        proc.cleanup()


def test_ensemble_leader_voting_view_and_election_metrics():
    ports = {i: (free_port(), free_port()) for i in (1, 2, 3)}
    per_node = {i: {"admin.serverPort": str(a), "admin.serverAddress": "127.0.0.1", "metricsProvider.httpPort": str(m)}
                for i, (a, m) in ports.items()}
    with Ensemble(3, per_node=per_node) as ens:
        leader = ens.wait_ready()

        class Node:
            def __init__(self, i: int) -> None:
                self.admin = ports[i][0]

        def views_agree() -> None:
            views = {i: command(Node(i), "leader")[1] for i in ens.ids}
            assert all(v["leader_id"] == leader and v["is_leader"] == (i == leader) for i, v in views.items()), views
            assert all(v["leader_ip"] == "127.0.0.1" for v in views.values())

        _eventually(views_agree)
        _, voting = command(Node(1), "voting_view")
        assert sorted(voting["current_config"]) == ["1", "2", "3"]
        two = voting["current_config"]["2"]
        assert two["server_addresses"][0].startswith("127.0.0.1:") and two["learner_type"] == "participant"

        def broadcasting() -> None:
            _, zab = command(Node(leader), "zabstate")
            assert zab["voting"] is True and zab["zabstate"] == "broadcast" and zab["error"] is None, zab
            assert zab["myid"] == leader and zab["is_leader"] is True, zab

        _eventually(broadcasting)
        ens.kill(leader)
        survivors = [i for i in ens.ids if i != leader]
        ens.wait_ready(ids=survivors)

        def elected_again() -> None:
            for i in survivors:
                m = scrape(ports[i][1])
                assert m["looking_count_total"][()] >= 2, "looking at start-up and again after the leader died"
                assert m["election_time_count"][()] >= 2 and m["election_time_sum"][()] > 0
                assert sum(m["server_state"][(("state", s),)] for s in ("leader", "follower")) == 1

        _eventually(elected_again)


def _eventually(check: Callable[[], None], timeout: float = 60.0) -> None:
    """Run ``check`` until it passes (a busy machine may show a view a moment late); its last
    failure if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except (AssertionError, OSError, KeyError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if value is not None else None


# keys only one side can have: the JVM's properties and pipeline metrics, the Python runtime's
JVM_ONLY = {"environment", "system_properties", "monitor"}


@pytest.mark.reference
def test_same_commands_keys_and_errors_as_apache(server):
    from tests.support.refzk import RefZooKeeper

    admin = free_port()
    with RefZooKeeper(extra_cfg={"admin.enableServer": "true", "admin.serverPort": str(admin),
                                 "admin.serverAddress": "127.0.0.1"}):
        code, page = curl(f"http://127.0.0.1:{admin}/commands")
        assert code == 200
        apache_commands = set(re.findall(r'href="/commands/(\w+)"', page))
        assert apache_commands == set(COMMANDS), (apache_commands ^ set(COMMANDS))

        class Apache:
            pass

        apache = Apache()
        apache.admin = admin  # type: ignore[attr-defined]
        for name in sorted(COMMANDS):
            a_code, a_body = command(apache, name)
            z_code, z_body = command(server, name)
            assert a_code == z_code, name
            if name in JVM_ONLY:
                assert {"command", "error"} <= set(z_body), name
                continue
            a, z = _shape(a_body), _shape(z_body)
            assert set(a) == set(z), f"{name}: apache-only {set(a) - set(z)}, zkops-only {set(z) - set(a)}"
            for key, value in a.items():
                if isinstance(value, dict) and key not in ("expiry_time_to_session_ids",
                                                           "session_id_to_ephemeral_paths"):
                    assert set(value) == set(z[key]), f"{name}.{key}"
            assert (a_body["error"] is None) == (z_body["error"] is None), (name, a_body, z_body)
        _, a_stm = command(apache, "set_trace_mask?traceMask=5")
        _, z_stm = command(server, "set_trace_mask?traceMask=5")
        assert a_stm == z_stm == {"tracemask": 5, "command": "set_trace_mask", "error": None}
        command(server, "set_trace_mask?traceMask=0")
