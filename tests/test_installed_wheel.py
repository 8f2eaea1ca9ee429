"""zkops as a user installs it: a fresh virtualenv with only the built wheel (no checkout on
sys.path) deploys three SSH hosts, one of them with systemd as PID 1 and Debian's own zookeeper
package, verifies, upgrades, destroys (touching nothing of Debian's package) and runs a docker lab."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import zkops
from tests.support.dockerd import Engine
from tests.support.sshhosts import SshHost, SshHosts
from tests.test_deploy_ssh import _modified_wheel, _recap
from zkops.provision.wheel import content_digest

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DEBIAN_PATHS = "/etc/zookeeper /var/log/zookeeper /var/lib/zookeeper /usr/share/zookeeper /etc/alternatives/zookeeper-conf"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(venv, wheel): ``python -m build``'s wheel installed, with its dependencies, in a new venv."""
    work = tmp_path_factory.mktemp("fresh")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "-o", str(work / "dist"), str(ROOT)], check=True,
                   capture_output=True, timeout=600)
    wheel = next((work / "dist").glob("zkops-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=900, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import zkops, sys; print(zkops.__file__); "
                            "print(any(p.startswith(sys.argv[1]) for p in sys.path))", str(ROOT)],
                           capture_output=True, text=True, cwd=work, timeout=60).stdout.split()
    assert where[0].startswith(str(venv)) and where[1] == "False", where
    return venv, wheel


@pytest.fixture(scope="module")
def hosts(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    h = SshHosts(docker_engine, tmp_path_factory.mktemp("hosts"), 2, prefix="zkops-wheel")
    try:
        h.add_systemd_host("zk3", 3)
        yield h
    finally:
        h.cleanup()


def _run(venv: Path, cwd: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(cwd), "COLUMNS": "250",
           "DOCKER_HOST": os.environ["DOCKER_HOST"], "ZKOPS_LAB_DOCKER_BASE": os.environ["ZKOPS_LAB_DOCKER_BASE"],
           # a lab image of its own: built here from the installed copy, not one the other tests built
           "ZKOPS_LAB_DOCKER_IMAGE": f"zkops-lab-installed:{os.getpid()}"}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def _until(what: str, check, timeout: float = 60.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)


def _debian_files(hosts: SshHosts, h: SshHost) -> str:
    return hosts.exec(h, f"find {DEBIAN_PATHS} -printf '%p %y %m %u %l %s\\n' 2>&1 | sort")[1]


@pytest.mark.timeout(2400)
def test_a_fresh_venv_with_the_wheel_deploys_verifies_upgrades_destroys_and_runs_a_docker_lab(
        fresh: tuple[Path, Path], hosts: SshHosts, tmp_path: Path):
    venv, wheel = fresh
    zk1, zk2, zk3 = hosts.hosts
    known = str(tmp_path / "known_hosts")
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"all": {
        "vars": {"tickTime": 200, "initLimit": 10, "syncLimit": 5, "4lw.commands.whitelist": "*"},
        "hosts": {h.name: {"address": h.address, "ssh_user": "root", "ssh_key": str(hosts.key_path)}
                  for h in hosts.hosts}}}))

    # zk3 is a production-like host: systemd as PID 1 and Debian's zookeeper package
    assert hosts.exec(zk3, "ps -o comm= -p 1")[1].strip() == "systemd"
    code, out = hosts.exec(zk3, "dpkg --verify zookeeper")
    assert code == 0 and out.strip() == "", out
    debian_before = _debian_files(hosts, zk3)
    assert "/etc/zookeeper/conf_example" in debian_before
    # zk1's python3 on root's PATH is a private one the service user cannot run (pyenv in /root)
    assert hosts.exec(zk1, "mkdir -p /root/private && chmod 0700 /root /root/private && "
                           "ln -sf /usr/bin/python3 /root/private/python3 && "
                           "ln -sf /root/private/python3 /usr/local/bin/python3")[0] == 0

    first = _run(venv, tmp_path, "zkops", "deploy", str(inv), "--known-hosts", known, "--accept-new-host-keys")
    assert first.returncode == 0, first.stdout[-4000:]
    assert "healthy" in first.stdout
    assert "(/usr/bin/python3)" in next(line for line in first.stdout.splitlines()
                                        if "[zk1] gather facts" in line), first.stdout[-4000:]
    release = f"{zkops.__version__}-{content_digest(wheel)[:8]}"
    for h in hosts.hosts:  # the wheel deploy rebuilt from the installed copy is the built wheel's release
        assert hosts.exec(h, "readlink /opt/zkops/current")[1].strip() == f"/opt/zkops/{release}", h.name
    assert hosts.exec(zk1, "grep '^home' /opt/zkops/current/pyvenv.cfg")[1].split("=")[1].strip() == "/usr/bin"
    again = _run(venv, tmp_path, "zkops", "deploy", str(inv), "--known-hosts", known)
    assert again.returncode == 0 and all(c[1] == 0 and c[2] == 0 for c in _recap(again.stdout).values()), \
        again.stdout[-3000:]

    # the systemd unit: enabled, running, logging to the journal, restarted after a crash, stoppable
    assert hosts.exec(zk3, "systemctl is-enabled zkops")[1].strip() == "enabled"
    assert hosts.exec(zk3, "systemctl is-active zkops")[1].strip() == "active"
    journal = "journalctl --sync >/dev/null 2>&1; journalctl -u zkops --no-pager -o cat"
    try:  # journald writes what it got a moment later on a busy host
        _until("the server's start in the journal", lambda: "starting pid" in hosts.exec(zk3, journal)[1], 90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{hosts.exec(zk3, 'systemctl status zkops --no-pager; journalctl -n 40 --no-pager')[1]}")

    def main_pid() -> int:
        return int(hosts.exec(zk3, "systemctl show -p MainPID --value zkops")[1].strip() or 0)

    crashed = main_pid()
    assert crashed > 0 and hosts.exec(zk3, f"kill -9 {crashed}")[0] == 0
    _until("Restart=on-failure brings the server back",
           lambda: main_pid() not in (0, crashed) and hosts.exec(zk3, "systemctl is-active zkops")[1].strip() == "active")
    st = _until("the ensemble is healthy again",
                lambda: (r := _run(venv, tmp_path, "zkops", "status", str(inv))).returncode == 0 and r)
    assert st.stdout.count("│ leader") == 1
    assert hosts.exec(zk3, "systemctl stop zkops")[0] == 0
    assert hosts.exec(zk3, "systemctl is-active zkops")[1].strip() == "inactive" and main_pid() == 0
    started = _run(venv, tmp_path, "zkops", "start", str(inv), "--known-hosts", known)
    assert started.returncode == 0 and "[zk3] start service" in started.stdout, started.stdout[-3000:]
    _until("zk3 serves again", lambda: _run(venv, tmp_path, "zkops", "status", str(inv)).returncode == 0)

    ver = _run(venv, tmp_path, "zkops", "verify", str(inv))
    assert ver.returncode == 0 and "passed" in ver.stdout, ver.stdout[-4000:]

    new = _modified_wheel(wheel, tmp_path / "new")
    up = _run(venv, tmp_path, "zkops", "upgrade", str(inv), "--known-hosts", known, "--wheel", str(new))
    assert up.returncode == 0, up.stdout[-4000:]
    new_release = f"{zkops.__version__}-{content_digest(new)[:8]}"
    assert all(hosts.exec(h, "readlink /opt/zkops/current")[1].strip() == f"/opt/zkops/{new_release}"
               for h in hosts.hosts)

    # destroy zk3 alone: everything zkops made goes, nothing of Debian's package changes, and
    # Debian's zkCli.sh still talks to the two nodes left
    gone = _run(venv, tmp_path, "zkops", "destroy", str(inv), "--limit", "zk3", "--purge-data", "--yes",
                "--known-hosts", known)
    assert gone.returncode == 0, gone.stdout[-3000:]
    for path in ("/opt/zkops", "/etc/zkops", "/var/log/zkops", "/var/lib/zkops", "/etc/default/zkops",
                 "/etc/systemd/system/zkops.service"):
        assert hosts.exec(zk3, f"test -e {path}")[0] != 0, f"{path} is left on zk3"
    assert hosts.exec(zk3, "id zkops")[0] != 0 and hosts.exec(zk3, "systemctl cat zkops")[0] != 0
    code, out = hosts.exec(zk3, "dpkg --verify zookeeper")
    assert code == 0 and out.strip() == "", out
    assert _debian_files(hosts, zk3) == debian_before, "a file of Debian's zookeeper package changed"
    code, out = hosts.exec(zk3, f"timeout 120 /usr/share/zookeeper/bin/zkCli.sh -server {zk1.address}:2181 ls / 2>&1")
    assert code == 0 and "zookeeper" in out.splitlines()[-1], out[-2000:]

    rest = _run(venv, tmp_path, "zkops", "destroy", str(inv), "--limit", "zk1,zk2", "--yes", "--known-hosts", known)
    assert rest.returncode == 0, rest.stdout[-3000:]
    for h in (zk1, zk2):
        assert hosts.exec(h, "test -e /opt/zkops || test -e /etc/zkops")[0] != 0
        assert hosts.exec(h, "test -f /var/lib/zkops/data/myid")[0] == 0, "data is kept without --purge-data"
    purged = _run(venv, tmp_path, "zkops", "destroy", str(inv), "--limit", "zk1,zk2", "--purge-data", "--yes",
                  "--known-hosts", known)
    assert purged.returncode == 0, purged.stdout[-3000:]
    for h in (zk1, zk2):
        assert hosts.exec(h, "test -e /var/lib/zkops || id zkops")[0] != 0, "purged: data and user gone"

    # the labs from the installed copy: the Vagrantfile, and a docker lab built from packaged files
    init = _run(venv, tmp_path, "zkops", "lab", "vagrant", "init", "vms")
    assert init.returncode == 0 and (tmp_path / "vms" / "Vagrantfile").read_bytes() == (ROOT / "Vagrantfile").read_bytes()
    lab = str(tmp_path / "lab")
    upd = _run(venv, tmp_path, "zkops", "lab", "--dir", lab, "up", "--backend", "docker", "--nodes", "3",
               "--tick-ms", "200")
    try:
        assert upd.returncode == 0, upd.stdout[-3000:] + upd.stderr[-3000:]
        status = _until("the docker lab elects a leader", lambda: (
            r := _run(venv, tmp_path, "zkops", "lab", "--dir", lab, "status")).returncode == 0
            and "leader" in r.stdout and r.stdout.count("follower") == 2 and r)
        assert "leader" in status.stdout
    finally:
        down = _run(venv, tmp_path, "zkops", "lab", "--dir", lab, "down")
    assert down.returncode == 0, down.stdout[-2000:]
