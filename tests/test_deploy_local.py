"""zkops deploy with connection: local — inventory checks, rendering, idempotence, health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.refzk import free_port
from zkops.provision.deploy import LocalNode, deploy, down, render
from zkops.provision.inventory import Inventory, InventoryError, default_local, parse
from zkops.provision.status import check_ensemble

pytestmark = pytest.mark.integration


def _local_inventory(tmp_path, nodes=3, extra_vars=None):
    hosts = {}
    for i in range(1, nodes + 1):
        hosts[f"zk{i}"] = {"connection": "local", "address": "127.0.0.1", "client_address": "127.0.0.1",
                           "client_port": free_port(), "quorum_port": free_port(), "election_port": free_port(),
                           "base_dir": str(tmp_path / f"zk{i}")}
    v = {"tickTime": 200, "4lw.commands.whitelist": "*"}
    v.update(extra_vars or {})
    return parse({"all": {"vars": v, "hosts": hosts}}, "test.yaml")


@pytest.mark.parametrize("yaml_text, words", [
    ("all: {hosts: {a: {myid: 1, connection: local}, b: {myid: 1, connection: local, client_port: 2}}}",
     ["all.hosts.b.myid", "also a's"]),
    ("all: {hosts: {a: {colour: red}}}", ["all.hosts.a.colour", "unknown key"]),
    ("all: {hosts: {a: {client_port: 70000}}}", ["all.hosts.a.client_port", "65535"]),
    ("hosts: {}", ["all:"]),
    ("all: {hosts: {a: {connection: telnet}}}", ["connection", "local or ssh"]),
    ("all: {hosts: {a: {ssh_user: admin, become: 'yes'}}}", ["all.hosts.a.become", "true or false"]),
    ("all: {hosts: {a: {address: h, client_port: 1}, b: {address: h, client_port: 1}}}", ["already used"]),
])
def test_broken_inventories_are_refused_before_touching_hosts(yaml_text, words):
    import yaml

    with pytest.raises(InventoryError) as exc:
        parse(yaml.safe_load(yaml_text), "inv.yaml")
    for w in words:
        assert w in str(exc.value)


def test_even_number_of_voters_warns_and_myids_are_stable():
    inv = parse({"all": {"hosts": {"a": {}, "b": {"myid": 1}, "c": {}, "d": {}}}})
    assert [h.myid for h in inv.hosts] == [2, 1, 3, 4]
    assert any("even number" in w for w in inv.warnings)


def test_default_inventory_renders_a_three_server_zoo_cfg(tmp_path):
    inv = default_local(tmp_path)
    files = render(inv, inv.hosts[1])
    assert files["myid"] == "2\n"
    cfg = files["zoo.cfg"]
    assert "clientPort=2182" in cfg and f"dataDir={tmp_path}/zk2/data" in cfg
    assert cfg.count("server.") == 3 and "server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183" in cfg
    assert "admin.serverPort=8081" in cfg, "each local node its own AdminServer port"
    from zkops.server.config import parse_config

    (tmp_path / "zk2" / "data").mkdir(parents=True)
    (tmp_path / "zk2" / "data" / "myid").write_text("2")
    parsed = parse_config(cfg)
    assert parsed.my_id == 2 and len(parsed.servers) == 3 and parsed.client_port == 2182


def test_play_vars_stay_out_of_zoo_cfg_and_ssh_hosts_get_unit_and_env(tmp_path):
    from zkops.provision.remote import Node, Options, firewall_ports, remote_files

    inv = parse({"all": {"vars": {"firewall": False, "firewall_peers_only": True, "snapCount": 5000},
                         "hosts": {"a": {"address": "10.0.0.1"}, "b": {"address": "10.0.0.2"},
                                   "c": {"address": "10.0.0.3"}}}})
    cfg = render(inv, inv.hosts[0])["zoo.cfg"]
    assert "snapCount=5000" in cfg and "firewall" not in cfg
    node = Node(inv.hosts[0], Options())
    node.facts = {"systemd": "yes"}
    files = {path: content for _, path, content, _ in remote_files(inv, node, "0.1.0-abcdef12")}
    unit = files["/etc/systemd/system/zkops.service"]
    assert "ExecStart=/opt/zkops/current/bin/zkserver start-foreground /etc/zkops/zoo.cfg" in unit
    assert "User=zkops" in unit and "ZKOPS_RELEASE=0.1.0-abcdef12" in files["/etc/default/zkops"]
    node.facts = {"systemd": "no"}
    assert not any("systemd" in p for _, p, _, _ in remote_files(inv, node, "x"))
    assert firewall_ports(inv, inv.hosts[0]) == [(2181, None), (2888, ["10.0.0.2", "10.0.0.3"]),
                                         (3888, ["10.0.0.2", "10.0.0.3"])]


def test_tls_true_renders_tls_keys_certificates_and_ports(tmp_path, monkeypatch):
    from cryptography import x509

    from zkops.provision.remote import Node, Options, firewall_ports, remote_files

    monkeypatch.setenv("ZKOPS_PKI_DIR", str(tmp_path / "pki"))
    inv = parse({"all": {"vars": {"tls": True}, "hosts": {"a": {"address": "10.0.0.1"}, "b": {"address": "10.0.0.2"},
                                                          "c": {"address": "10.0.0.3"}}}})
    cfg = render(inv, inv.hosts[0])["zoo.cfg"]
    assert "secureClientPort=2281" in cfg and "sslQuorum=true" in cfg and "tls=" not in cfg
    assert "ssl.quorum.keyStore.location=/etc/zkops/tls/node.pem" in cfg
    node = Node(inv.hosts[0], Options())
    node.facts = {"systemd": "no"}
    files = {path: content for _, path, content, _ in remote_files(inv, node, "r")}
    cert = x509.load_pem_x509_certificate(files["/etc/zkops/tls/node.pem"].encode())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "PRIVATE KEY" in files["/etc/zkops/tls/node.pem"] and "PRIVATE KEY" not in files["/etc/zkops/tls/ca.pem"]
    again = {path: content for _, path, content, _ in remote_files(inv, node, "r")}
    assert again == files, "certificates are made once: a second deploy changes nothing"
    assert (tmp_path / "pki" / "admin.crt").exists() and oct((tmp_path / "pki" / "ca.key").stat().st_mode)[-3:] == "600"
    assert (2281, None) in firewall_ports(inv, inv.hosts[0])


def test_deploy_is_idempotent_and_leaves_a_healthy_ensemble(tmp_path):
    inv = _local_inventory(tmp_path)
    try:
        first = deploy(inv)
        assert not first.failed, [(r.host, r.task, r.message) for r in first.results if r.status == "failed"]
        assert first.status.healthy and first.status.write_read_ok
        assert sorted(n.mode for n in first.status.nodes) == ["follower", "follower", "leader"]
        second = deploy(inv)
        assert {r.status for r in second.results} == {"ok"}, "a second deploy changed something"
        # one setting changes: every node's zoo.cfg changes, each is restarted, health comes back
        changed = _local_inventory(tmp_path)
        for new, old in zip(changed.hosts, inv.hosts, strict=True):
            new.client_port, new.quorum_port, new.election_port = old.client_port, old.quorum_port, old.election_port
        changed.vars["maxClientCnxns"] = 100
        third = deploy(changed)
        assert not third.failed and third.status.healthy
        assert sum(1 for r in third.results if r.task == "restart (files changed)") == 3
    finally:
        down(inv)


def _zkops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkops.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "250"})


def _write_inventory(inv: Inventory, path: Path, tick: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"all": {
        "vars": {"tickTime": tick, "4lw.commands.whitelist": "*"},
        "hosts": {h.name: {"connection": "local", "address": h.address, "client_address": h.client_address,
                           "client_port": h.client_port, "quorum_port": h.quorum_port,
                           "election_port": h.election_port, "base_dir": str(h.base_dir)} for h in inv.hosts}}}))


@pytest.fixture
def deployed(tmp_path):
    """Three local nodes deployed by ``zkops deploy inventory.yaml`` (tickTime 500); stopped after.
    Nine free ports drawn at random on a machine other test runs share: when another process
    takes one before our node binds it, the deploy is tried again on fresh ports and directories."""
    failures = []
    for attempt in range(3):
        inv = _local_inventory(tmp_path / f"try{attempt}")
        path = tmp_path / f"try{attempt}" / "inventory.yaml"
        _write_inventory(inv, path, tick=500)
        first = _zkops("deploy", str(path))
        if first.returncode == 0:
            break
        down(inv)
        failures.append(first.stdout[-3000:] + first.stderr[-2000:])
    else:
        pytest.fail("the first deploy failed three times:\n" + "\n---\n".join(failures))
    try:
        yield inv, path
    finally:
        down(inv)


def test_check_diff_on_a_local_inventory_shows_the_change_and_changes_nothing(deployed):
    """--check and --diff behave as over SSH: a unified diff of zoo.cfg, nothing written or
    restarted; the real deploy then applies it, and the one after changes nothing."""
    inv, path = deployed
    cfg = inv.hosts[0].base_dir / "conf" / "zoo.cfg"
    before = {h.name: (h.base_dir / "conf" / "zoo.cfg").read_text() for h in inv.hosts}
    pids = {h.name: LocalNode(h).pid() for h in inv.hosts}
    assert "tickTime=500" in cfg.read_text() and None not in pids.values()

    _write_inventory(inv, path, tick=600)
    check = _zkops("deploy", str(path), "--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    for h in inv.hosts:
        where = f"{h.name}:{h.base_dir}/conf/zoo.cfg"
        assert f"--- {where} (before)" in check.stdout and f"+++ {where}" in check.stdout, check.stdout
    assert check.stdout.count("-tickTime=500") == 3 and check.stdout.count("+tickTime=600") == 3
    assert "changed: [zk1] render zoo.cfg" in check.stdout and "(check mode)" in check.stdout
    assert "restart" not in check.stdout
    assert {h.name: (h.base_dir / "conf" / "zoo.cfg").read_text() for h in inv.hosts} == before
    assert {h.name: LocalNode(h).pid() for h in inv.hosts} == pids, "check mode restarted a node"

    second = _zkops("deploy", str(path))
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert second.stdout.count("restart (files changed)") == 3 and "-tickTime=500" not in second.stdout
    assert all("tickTime=600" in (h.base_dir / "conf" / "zoo.cfg").read_text() for h in inv.hosts)

    third = _zkops("deploy", str(path), "--check", "--diff")
    assert third.returncode == 0 and "changed:" not in third.stdout and "tickTime" not in third.stdout, third.stdout
    fourth = _zkops("deploy", str(path))
    assert fourth.returncode == 0 and "changed:" not in fourth.stdout and "restart" not in fourth.stdout, fourth.stdout


def test_local_nodes_restart_rolling_stop_and_start_as_ssh_hosts_do(deployed):
    """``zkops restart --rolling``, ``stop`` and ``start`` on a local inventory: the play's one
    rolling restart (followers first, the leader last, each back before the next)."""
    inv, path = deployed
    restart = _zkops("restart", "--rolling", str(path))
    assert restart.returncode == 0, restart.stdout[-3000:] + restart.stderr[-2000:]
    assert restart.stdout.count("changed: [") == 3 and restart.stdout.count("restart (requested)") == 3
    assert _zkops("stop", str(path)).returncode == 0
    assert all(LocalNode(h).pid() is None for h in inv.hosts)
    start = _zkops("start", str(path))
    assert start.returncode == 0 and start.stdout.count("start service - started") == 3, start.stdout
    status = check_ensemble(inv.hosts, wait=60)  # started, not waited for: an election may still run
    assert status.healthy, status.problems
