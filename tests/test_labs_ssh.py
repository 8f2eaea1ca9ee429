"""The ssh backend (and so the vagrant one, which only adds ``vagrant up`` and an inventory) on
three real SSH hosts: containers with sshd and a ``vagrant`` user with passwordless sudo, as
on a Vagrant box. ``lab up`` deploys through sudo, every fault is a command over SSH, and
``down`` leaves nothing on the hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.dockerd import Engine
from tests.support.lab_scenarios import kill_isolate_heal
from tests.support.sshhosts import SshHosts
from zkops.labs.lab import Lab, LabError
from zkops.labs.ssh import SshBackend

pytestmark = [pytest.mark.docker, pytest.mark.integration]


@pytest.fixture(scope="module")
def hosts(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    h = SshHosts(docker_engine, tmp_path_factory.mktemp("labssh"), 3, prefix="zkops-labssh")
    try:
        yield h
    finally:
        h.cleanup()


def _inventory(hosts: SshHosts) -> dict:
    return {"all": {"vars": {"tickTime": 200, "initLimit": 10, "syncLimit": 5, "4lw.commands.whitelist": "*"},
                    "hosts": {h.name: {"address": h.address, "ssh_user": "vagrant", "ssh_key": str(hosts.key_path)}
                              for h in hosts.hosts}}}


def test_faults_over_ssh_and_down_leaves_nothing(hosts: SshHosts, wheel: Path, tmp_path: Path):
    import yaml

    inv = tmp_path / "hosts.yaml"
    inv.write_text(yaml.safe_dump(_inventory(hosts)))
    lab = Lab.up(tmp_path / "lab", backend="ssh", inventory=str(inv), wheel=str(wheel))
    try:
        assert all(hosts.exec(h, "id -u zkops")[0] == 0 for h in hosts.hosts), "deployed through sudo"
        assert all(hosts.exec(h, "pgrep -f [z]kops")[0] == 0 for h in hosts.hosts), "the probe below sees servers"
        assert lab.state.tick_ms == 200 and [n.handle for n in lab.state.nodes] == ["zk1", "zk2", "zk3"]
        kill_isolate_heal(lab)
        again = Lab.load(tmp_path / "lab")  # a separate `zkops lab` command finds the same hosts
        again.isolate(1)
        assert "ZKOPS-LAB" in hosts.exec(hosts.hosts[0], "iptables -S")[1]
        again.heal()
    finally:
        lab = Lab.load(tmp_path / "lab")
        lab.down()
    for h in hosts.hosts:
        assert hosts.exec(h, "pgrep -f [z]kops")[0] != 0, f"a server still runs on {h.name}"
        assert hosts.exec(h, "test -e /opt/zkops || test -e /var/lib/zkops/data/myid")[0] != 0
        assert "ZKOPS-LAB" not in hosts.exec(h, "iptables -S")[1], "the fault chain is gone"
    assert not (tmp_path / "lab").exists()


def test_a_broken_inventory_or_host_is_a_clear_lab_error(hosts: SshHosts, wheel: Path, tmp_path: Path):
    with pytest.raises(LabError, match="needs --inventory"):
        SshBackend.create(tmp_path, 3, 0, 500)
    with pytest.raises(LabError, match="unknown key"):
        SshBackend.from_inventory(tmp_path, {"all": {"hosts": {"a": {"colour": "red"}}}})
    data = _inventory(hosts)
    data["all"]["hosts"]["zk1"]["ssh_user"] = "nobody-here"
    bad = tmp_path / "bad.yaml"
    import yaml

    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(LabError, match="zk1: gather facts: .*refused our key for user nobody-here"):
        Lab.up(tmp_path / "lab", backend="ssh", inventory=str(bad), wheel=str(wheel))
    assert not (tmp_path / "lab").exists(), "a failed up cleans up after itself"
