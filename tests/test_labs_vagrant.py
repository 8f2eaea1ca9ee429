"""The vagrant backend without VMs: the Vagrantfile validates offline, the inventory comes out of
``vagrant ssh-config`` right for VirtualBox and libvirt, and ``lab up`` drives vagrant as it should
(a stand-in ``vagrant`` records the calls). The deploy and fault path over SSH that the VMs then
take is proven on real SSH hosts in ``tests/test_labs_ssh.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zkops.labs.lab import LabError
from zkops.labs.vagrant import VagrantBackend, inventory_from_ssh_config, parse_ssh_config
from zkops.provision.inventory import parse

ROOT = Path(__file__).resolve().parents[1]

VIRTUALBOX = """Host zk1
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile /home/teacher/zkops/.vagrant/machines/zk1/virtualbox/private_key
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

Host zk2
  HostName 127.0.0.1
  User vagrant
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile "/home/teacher/my labs/.vagrant/machines/zk2/virtualbox/private_key"
  IdentitiesOnly yes
  LogLevel FATAL

Host zk3
  HostName 127.0.0.1
  User vagrant
  Port 2201
  IdentityFile /home/teacher/zkops/.vagrant/machines/zk3/virtualbox/private_key
  IdentityFile /home/teacher/.vagrant.d/insecure_private_key
"""

LIBVIRT = """Host zk1
  HostName 192.168.121.17
  User vagrant
  Port 22
  IdentityFile /srv/zkops/.vagrant/machines/zk1/libvirt/private_key

Host zk2
  HostName 192.168.121.94
  User vagrant
  Port 22
  IdentityFile /srv/zkops/.vagrant/machines/zk2/libvirt/private_key

Host zk3
  HostName 192.168.121.203
  User vagrant
  Port 22
  IdentityFile /srv/zkops/.vagrant/machines/zk3/libvirt/private_key

Host zk4
  HostName 192.168.121.4
  User vagrant
  Port 22
  IdentityFile /srv/zkops/.vagrant/machines/zk4/libvirt/private_key
"""


def _validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed: run scripts/install-test-deps")
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(ROOT / "Vagrantfile", work / "Vagrantfile")
    # the KVM probe is the VM test's business (tests/test_vagrant_vms.py); here it would cost 20 s
    env = {"ZKOPS_LIBVIRT_DRIVER": "qemu", **env}
    return subprocess.run(["vagrant", "validate"], cwd=work, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, VAGRANT_HOME=str(tmp_path / "home"), **env))


@pytest.mark.parametrize("env", [{}, {"ZKOPS_NODES": "5", "ZKOPS_MEMORY": "2048"},
                                 {"VAGRANT_DEFAULT_PROVIDER": "libvirt", "ZKOPS_BOX": "generic/debian12"}])
def test_vagrantfile_validates(tmp_path, env):
    out = _validate(tmp_path, **env)
    assert out.returncode == 0, out.stdout + out.stderr


def test_bad_node_count_is_refused(tmp_path):
    out = _validate(tmp_path, ZKOPS_NODES="0")
    assert out.returncode != 0 and "ZKOPS_NODES must be between 1 and 9" in out.stdout + out.stderr


def test_ssh_config_parsing_keeps_the_first_value_and_unquotes():
    machines = parse_ssh_config(VIRTUALBOX)
    assert list(machines) == ["zk1", "zk2", "zk3"]
    assert machines["zk2"]["identityfile"] == "/home/teacher/my labs/.vagrant/machines/zk2/virtualbox/private_key"
    assert machines["zk3"]["identityfile"].endswith("zk3/virtualbox/private_key"), "ssh uses the first one"


def test_virtualbox_inventory_reaches_the_vms_through_their_port_forwards():
    data = inventory_from_ssh_config(VIRTUALBOX, voters=3, tick_ms=2000)
    inv = parse(data)
    assert [(h.name, h.address, h.ssh_host, h.ssh_port) for h in inv.hosts] == [
        ("zk1", "192.168.56.11", "127.0.0.1", 2222), ("zk2", "192.168.56.12", "127.0.0.1", 2200),
        ("zk3", "192.168.56.13", "127.0.0.1", 2201)]
    assert all(h.ssh_user == "vagrant" and h.become and h.connection == "ssh" for h in inv.hosts)
    assert [h.myid for h in inv.hosts] == [1, 2, 3] and inv.vars["tickTime"] == 2000
    from zkops.provision.deploy import render

    cfg = render(inv, inv.hosts[0])["zoo.cfg"]
    assert "server.2=192.168.56.12:2888:3888:participant" in cfg, "peers talk on the private network"


def test_libvirt_inventory_with_an_observer_and_another_subnet():
    inv = parse(inventory_from_ssh_config(LIBVIRT, voters=3, observers=1, tick_ms=500, subnet="10.9.8"))
    assert [(h.address, h.ssh_host, h.ssh_port, h.role) for h in inv.hosts][-1] == (
        "10.9.8.14", "192.168.121.4", 22, "observer")
    assert inv.hosts[0].ssh_key == "/srv/zkops/.vagrant/machines/zk1/libvirt/private_key"
    assert not inv.warnings


def test_missing_machine_says_what_to_do():
    with pytest.raises(LabError, match="no zk4 .*ZKOPS_NODES at least 5"):
        inventory_from_ssh_config(VIRTUALBOX, voters=5)


@pytest.fixture
def fake_vagrant(tmp_path, monkeypatch):
    return _fake_vagrant(tmp_path, monkeypatch)


def _fake_vagrant(tmp_path, monkeypatch, fail_up: bool = False):
    """A ``vagrant`` on PATH that logs its arguments and ZKOPS_NODES, and answers ssh-config."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "vagrant.log"
    sample = tmp_path / "ssh-config.txt"
    sample.write_text(VIRTUALBOX)
    script = bin_dir / "vagrant"
    script.write_text(f"#!{sys.executable}\nimport os, sys\n"
                      f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + ' nodes=' + "
                      f"os.environ.get('ZKOPS_NODES', '') + ' cwd=' + os.getcwd() + '\\n')\n"
                      f"if sys.argv[1:2] == ['ssh-config']: print(open({str(sample)!r}).read())\n"
                      + ("if sys.argv[1:2] == ['up']: sys.exit('zk2: timed out while waiting for the machine "
                         "to get an IP address')\n" if fail_up else ""))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


@pytest.fixture
def ready(monkeypatch):
    """Everything the preflight looks for is there (the real checks are tested below)."""
    from zkops.labs import vagrant

    monkeypatch.setattr(vagrant, "preflight", lambda env, nodes: None)


def test_lab_up_boots_the_vms_and_writes_the_inventory(tmp_path, fake_vagrant, ready):
    lab_dir = tmp_path / "lab"
    lab_dir.mkdir()
    state = VagrantBackend.create(lab_dir, 3, 0, 500, vagrant_dir=str(ROOT))
    calls = fake_vagrant.read_text().splitlines()
    assert calls == [f"up nodes=3 cwd={ROOT}", f"ssh-config nodes=3 cwd={ROOT}"]
    inv = parse(yaml.safe_load((lab_dir / "inventory.yaml").read_text()))
    assert [h.ssh_port for h in inv.hosts] == [2222, 2200, 2201]
    assert [(n.id, n.host, n.client_port, n.handle) for n in state.nodes] == [
        (1, "192.168.56.11", 2181, "zk1"), (2, "192.168.56.12", 2181, "zk2"), (3, "192.168.56.13", 2181, "zk3")]
    assert state.backend == "vagrant" and state.extra["vagrant_dir"] == str(ROOT)


def test_lab_inventory_command_prints_a_deployable_inventory(tmp_path, fake_vagrant):
    out = subprocess.run([sys.executable, "-m", "zkops.cli", "lab", "inventory", "--vagrant-dir", str(ROOT)],
                         capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert out.returncode == 0, out.stderr
    inv = parse(yaml.safe_load(out.stdout))
    assert [h.address for h in inv.hosts] == ["192.168.56.11", "192.168.56.12", "192.168.56.13"]
    assert fake_vagrant.read_text().startswith("ssh-config nodes=3")


def test_without_a_vagrantfile_the_error_says_where_to_look(tmp_path, monkeypatch):
    from zkops.labs import vagrant

    monkeypatch.delenv("ZKOPS_VAGRANT_DIR", raising=False)
    monkeypatch.setattr(vagrant, "__file__", str(tmp_path / "site-packages" / "zkops" / "labs" / "vagrant.py"))
    with pytest.raises(LabError, match="no Vagrantfile in .*: write one with `zkops lab vagrant init"):
        vagrant.find_vagrant_dir(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LabError, match="no Vagrantfile found: write one with `zkops lab vagrant init DIR`"):
        vagrant.find_vagrant_dir(None)
    assert vagrant.find_vagrant_dir(str(ROOT)) == ROOT


# ---------------------------------------------------------------- the preflight and half-made labs
def _meminfo(tmp_path: Path, available_mib: int) -> Path:
    p = tmp_path / "meminfo"
    p.write_text(f"MemTotal:       {available_mib * 2048} kB\nMemAvailable:   {available_mib * 1024} kB\n")
    return p


def test_preflight_names_every_missing_piece(tmp_path, monkeypatch):
    from zkops.labs import vagrantcheck

    _fake_vagrant(tmp_path, monkeypatch)  # its `plugin list` lists nothing
    monkeypatch.setattr(vagrantcheck.shutil, "which", lambda tool: None if tool == "VBoxManage" else "/usr/bin/x")
    monkeypatch.setattr(vagrantcheck, "libvirt_problem", lambda uri: "libvirtd does not answer at " + uri)
    env = {"VAGRANT_HOME": str(tmp_path / "empty-home")}
    monkeypatch.setenv("VAGRANT_HOME", env["VAGRANT_HOME"])
    with pytest.raises(LabError) as err:
        vagrantcheck.preflight(env, 3, meminfo=_meminfo(tmp_path, 1500))
    text = str(err.value)
    assert "the vagrant-libvirt plugin is missing: apt install vagrant-libvirt" in text
    assert "libvirtd does not answer at qemu:///system" in text
    assert "Vagrant has no box debian/bookworm64: build it offline with `sudo zkops lab vagrant box`" in text
    assert "not enough free memory for 3 VMs of 768 MiB: 3040 MiB needed, 1500 MiB available" in text


def test_preflight_takes_our_box_and_enough_memory(tmp_path, monkeypatch):
    from zkops.labs import vagrantcheck

    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "home"))
    (tmp_path / "home/boxes/zkops-VAGRANTSLASH-bookworm/0/libvirt").mkdir(parents=True)
    monkeypatch.setattr(vagrantcheck, "_vagrant_plugins", lambda: "vagrant-libvirt (0.11.2, system)\n")
    monkeypatch.setattr(vagrantcheck, "libvirt_problem", lambda uri: None)
    monkeypatch.setattr(vagrantcheck.shutil, "which", lambda tool: None if tool == "VBoxManage" else "/usr/bin/x")
    plan = vagrantcheck.preflight({"ZKOPS_MEMORY": "512"}, 3, meminfo=_meminfo(tmp_path, 2300))
    assert (plan.provider, plan.box, plan.memory_mib) == ("libvirt", "zkops/bookworm", 512)
    with pytest.raises(LabError, match="Vagrant has no box generic/debian12"):
        vagrantcheck.preflight({"ZKOPS_BOX": "generic/debian12"}, 3, meminfo=_meminfo(tmp_path, 9000))


def test_libvirt_not_answering_says_how_to_start_it():
    from zkops.labs.vagrantcheck import libvirt_problem

    if shutil.which("virsh") is None:
        pytest.fail("virsh is not installed: run scripts/install-test-deps")
    problem = libvirt_problem("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    assert problem is not None and "libvirtd -d" in problem and "systemctl start libvirtd" in problem


def test_a_refused_lab_up_leaves_no_lab_directory(tmp_path, monkeypatch):
    from zkops.labs.lab import Lab

    log = _fake_vagrant(tmp_path, monkeypatch)
    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("ZKOPS_MEMORY", str(10**9))
    lab_dir = tmp_path / "state" / "lab"
    with pytest.raises(LabError, match="cannot bring the Vagrant lab up"):
        Lab.up(lab_dir, backend="vagrant", vagrant_dir=str(ROOT))
    assert not (tmp_path / "state").exists(), "nor the parent directory it made for the lab"
    assert "up " not in log.read_text(), "nothing was booted"


def test_a_vm_without_an_address_destroys_what_up_made(tmp_path, monkeypatch, ready):
    from zkops.labs.lab import Lab

    log = _fake_vagrant(tmp_path, monkeypatch, fail_up=True)
    lab_dir = tmp_path / "lab"
    with pytest.raises(LabError, match="`vagrant up` failed"):
        Lab.up(lab_dir, backend="vagrant", vagrant_dir=str(ROOT))
    assert [line.split(" nodes=")[0] for line in log.read_text().splitlines()] == ["up", "destroy -f"]
    assert not lab_dir.exists()


# ---------------------------------------------------------------- the box
def test_box_inputs_are_hashed_and_vagrants_insecure_key_is_found():
    from zkops.labs import vagrantbox

    key = vagrantbox.insecure_public_key()
    assert key.startswith("ssh-rsa ")
    a = vagrantbox.input_hash(pubkey=key)
    assert a == vagrantbox.input_hash(pubkey=key)
    assert a != vagrantbox.input_hash(packages=(*vagrantbox.PACKAGES, "vim"), pubkey=key)
    assert vagrantbox.box_file(a).name == f"zkops-bookworm-libvirt-{a}.box"


def test_box_add_is_skipped_when_vagrant_has_this_very_box(tmp_path, monkeypatch):
    from zkops.labs import vagrantbox

    monkeypatch.setenv("VAGRANT_HOME", str(tmp_path / "home"))
    marker = tmp_path / "home/boxes/zkops-VAGRANTSLASH-bookworm/0/libvirt/zkops-box-hash"
    marker.parent.mkdir(parents=True)
    marker.write_text("0123456789abcdef\n")
    said: list[str] = []
    vagrantbox.add(tmp_path / "zkops-bookworm-libvirt-0123456789abcdef.box", log=said.append)
    assert said == ["vagrant already has zkops/bookworm (0123456789abcdef)"]


def test_building_the_box_without_root_says_so(tmp_path, monkeypatch):
    from zkops.labs import vagrantbox

    monkeypatch.setenv("ZKOPS_BOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(vagrantbox.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="building the box needs root .*run it with sudo"):
        vagrantbox.build(log=lambda text: None)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_the_box_kernel_skips_the_timer_check_that_panics_under_tcg():
    # a CI run's VM panicked before init ("IO-APIC + timer doesn't work!") while the host was
    # busy: QEMU's TCG missed the check's window; the timer itself works
    from zkops.labs import vagrantbox

    conf = vagrantbox.extlinux_conf("vmlinuz-6.1.0-50-cloud-amd64", "initrd.img-6.1.0-50-cloud-amd64", "abcd-1234")
    [append] = [line.split() for line in conf.splitlines() if line.strip().startswith("APPEND")]
    assert "no_timer_check" in append
    assert "root=UUID=abcd-1234" in append and "console=ttyS0,115200" in append
    assert "  LINUX /boot/vmlinuz-6.1.0-50-cloud-amd64" in conf.splitlines()
    assert vagrantbox.RECIPE >= 3  # the cached boxes of the earlier recipe had the check
