"""zkops deploy over SSH onto three real hosts: containers with sshd and python3 only."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.support.dockerd import Engine
from tests.support.lab_scenarios import client
from tests.support.sshhosts import SshHosts

pytestmark = [pytest.mark.docker, pytest.mark.integration]


@pytest.fixture(scope="module")
def hosts(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("ssh")
    h = SshHosts(docker_engine, work, 4)
    try:
        yield h
    finally:
        h.cleanup()


def _inventory(hosts: SshHosts, path: Path, which: list[int] | None = None, **host_extra: object) -> Path:
    chosen = [hosts.hosts[i] for i in (which or [0, 1, 2])]
    data = {"all": {"vars": {"tickTime": 200, "initLimit": 10, "syncLimit": 5, "4lw.commands.whitelist": "*"},
                    "hosts": {h.name: {"address": h.address, "ssh_user": "root", "ssh_key": str(hosts.key_path),
                                       **host_extra} for h in chosen}}}
    path.write_text(yaml.safe_dump(data))
    return path


def zkops(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkops.cli", *args], capture_output=True, text=True, timeout=600,
                          env={"COLUMNS": "250", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(cwd or "/root")})


def _recap(out: str) -> dict[str, list[int]]:
    """host -> [ok, changed, failed, skipped] from the PLAY RECAP table."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 5 and cells[0].startswith("zk") and all(c.isdigit() for c in cells[1:]):
            rows[cells[0]] = [int(c) for c in cells[1:]]
    return rows


def _modified_wheel(wheel: Path, dest: Path, main_body: str | None = None) -> Path:
    """A copy of the wheel with other contents (a new release), optionally a broken server."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if main_body is not None and item.filename == "zkops/server/__main__.py":
                data = main_body.encode()
            dst.writestr(item, data)
        dst.writestr("zkops/RELEASE-MARK", str(time.time()))
    return out


@pytest.mark.timeout(900)  # three deploys, two upgrades and a rollback over SSH: 190-290 s under heavy load
def test_deploy_idempotence_status_verify_rolling_restart_upgrade_rollback_destroy(
        hosts: SshHosts, wheel: Path, tmp_path: Path):
    inv = _inventory(hosts, tmp_path / "inventory.yaml")
    known = tmp_path / "known_hosts"
    common = ["--known-hosts", str(known), "--wheel", str(wheel)]

    refused = zkops("deploy", str(inv), *common, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stdout.count("not in") == 3 and "--accept-new-host-keys" in refused.stdout, refused.stdout

    first = zkops("deploy", str(inv), *common, "--accept-new-host-keys", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "healthy" in first.stdout
    assert len(known.read_text().splitlines()) == 3, "accept-new remembers the three host keys"
    counts = _recap(first.stdout)
    assert set(counts) == {"zk1", "zk2", "zk3"} and all(c[1] > 0 and c[2] == 0 for c in counts.values())

    again = zkops("deploy", str(inv), *common, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(c[1] == 0 and c[2] == 0 for c in _recap(again.stdout).values()), again.stdout
    assert "restart" not in again.stdout

    st = zkops("status", str(inv), cwd=tmp_path)
    assert st.returncode == 0 and st.stdout.count("│ follower") == 2 and st.stdout.count("│ leader") == 1

    ver = zkops("verify", str(inv), cwd=tmp_path)
    assert ver.returncode == 0, ver.stdout[-3000:]
    assert "passed" in ver.stdout

    # a node killed behind our back: status says so; deploy starts it again
    code, _ = hosts.exec(hosts.hosts[2], "kill -9 $(cat /var/lib/zkops/data/zookeeper_server.pid)")
    assert code == 0
    down = zkops("status", str(inv), cwd=tmp_path)
    assert down.returncode == 1 and "zk3" in down.stdout and "does not answer ruok" in down.stdout
    healed = zkops("deploy", str(inv), *common, cwd=tmp_path)
    assert healed.returncode == 0 and "start service" in healed.stdout

    # rolling restart while a client writes: nothing acknowledged is lost
    zk = client(",".join(f"{h.address}:2181" for h in hosts.hosts[:3]))
    acked: list[str] = []
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            try:
                acked.append(zk.create("/rolling-", b"", sequence=True))
            except Exception:  # noqa: BLE001 - connection loss during a restart: retry
                time.sleep(0.05)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        restart = zkops("restart", "--rolling", str(inv), "--known-hosts", str(known), cwd=tmp_path)
        assert restart.returncode == 0, restart.stdout[-3000:]
        assert restart.stdout.count("restart (requested)") == 3
        order = [line for line in restart.stdout.splitlines() if "restart (requested)" in line]
        time.sleep(1)
    finally:
        stop.set()
        writer.join(10)
    present = set(zk.get_children("/"))
    assert acked and all(p.lstrip("/") in present for p in acked), "an acknowledged write was lost"
    zk.stop()
    assert order, order

    # upgrade to a new release, then an upgrade that cannot start rolls back
    new = _modified_wheel(wheel, tmp_path / "new")
    up = zkops("upgrade", str(inv), "--known-hosts", str(known), "--wheel", str(new), cwd=tmp_path)
    assert up.returncode == 0, up.stdout[-3000:]
    current = hosts.exec(hosts.hosts[0], "readlink /opt/zkops/current")[1].strip()
    assert hosts.exec(hosts.hosts[0], f"test -f {current}/lib/python3.11/site-packages/zkops/RELEASE-MARK")[0] == 0
    broken = _modified_wheel(wheel, tmp_path / "broken", main_body="raise SystemExit('broken release')\n")
    bad = zkops("upgrade", str(inv), "--known-hosts", str(known), "--wheel", str(broken), cwd=tmp_path)
    assert bad.returncode == 1 and "rolled back" in bad.stdout, bad.stdout[-3000:]
    for h in hosts.hosts[:3]:
        assert hosts.exec(h, "readlink /opt/zkops/current")[1].strip() == current, "every node back on the release"
    assert zkops("status", str(inv), cwd=tmp_path).returncode == 0, "rolled back: the ensemble serves"

    gone = zkops("destroy", str(inv), "--yes", "--known-hosts", str(known), cwd=tmp_path)
    assert gone.returncode == 0, gone.stdout[-2000:]
    for h in hosts.hosts[:3]:
        assert hosts.exec(h, "test -e /opt/zkops")[0] != 0
        assert hosts.exec(h, "test -f /var/lib/zkops/data/myid")[0] == 0, "data is kept without --purge-data"


def test_clear_errors_for_bad_hosts(hosts: SshHosts, wheel: Path, tmp_path: Path):
    spare = hosts.hosts[3]
    known = tmp_path / "known_hosts"
    base = {"tickTime": 200}

    def run(host: dict) -> subprocess.CompletedProcess:
        inv = tmp_path / "one.yaml"
        inv.write_text(yaml.safe_dump({"all": {"vars": base, "hosts": {"zk9": host}}}))
        return zkops("deploy", str(inv), "--known-hosts", str(known), "--accept-new-host-keys", "--wheel",
                     str(wheel), cwd=tmp_path)

    unreachable = run({"address": f"172.28.{hosts.third}.200", "ssh_key": str(hosts.key_path)})
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stdout
    other_key = tmp_path / "other"
    import paramiko

    paramiko.RSAKey.generate(2048).write_private_key_file(str(other_key))
    refused = run({"address": spare.address, "ssh_key": str(other_key)})
    assert refused.returncode == 1 and "refused our key" in refused.stdout, refused.stdout
    assert "PRIVATE KEY" not in refused.stdout
    missing = run({"address": spare.address, "ssh_key": str(tmp_path / "no-such-key")})
    assert missing.returncode == 1 and "no-such-key does not exist" in missing.stdout, missing.stdout
    hosts.exec(spare, "python3 -c \"import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
                      "socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 2181)); s.listen(); time.sleep(600)\" "
                      ">/dev/null 2>&1 &")
    time.sleep(1)
    taken = run({"address": spare.address, "ssh_key": str(hosts.key_path)})
    assert taken.returncode == 1 and "port 2181 is already taken" in taken.stdout, taken.stdout[-2000:]
    # no interpreter at all (python3 and the python3.11 it links to): gather facts names what it tried
    hosts.exec(spare, "mv /usr/bin/python3.11 /usr/bin/python3.11.away; mv /usr/bin/python3 /usr/bin/python3.away")
    try:
        nopython = run({"address": spare.address, "ssh_key": str(hosts.key_path)})
        assert nopython.returncode == 1 and "no Python 3.10 or newer the service can run" in nopython.stdout
        assert "/usr/bin/python3: not found" in nopython.stdout, nopython.stdout[-2000:]
    finally:
        hosts.exec(spare, "mv /usr/bin/python3.away /usr/bin/python3; mv /usr/bin/python3.11.away /usr/bin/python3.11")


def test_tls_deploy_makes_a_ca_and_serves_tls_clients_and_peers(hosts: SshHosts, wheel: Path, tmp_path: Path):
    from kazoo.client import KazooClient

    inv = tmp_path / "tls.yaml"
    data = yaml.safe_load(_inventory(hosts, inv).read_text())
    data["all"]["vars"]["tls"] = True
    inv.write_text(yaml.safe_dump(data))
    known = tmp_path / "known_hosts"
    first = zkops("deploy", str(inv), "--known-hosts", str(known), "--accept-new-host-keys", "--wheel", str(wheel),
                  cwd=tmp_path)
    try:
        assert first.returncode == 0, first.stdout[-3000:]
        assert "tls: node certificate" in first.stdout
        pki = tmp_path / ".local" / "state" / "zkops" / "pki" / "tls"
        assert (pki / "ca.pem").exists() and (pki / "admin.crt").exists()
        cfg = hosts.exec(hosts.hosts[0], "cat /etc/zkops/zoo.cfg")[1]
        assert "sslQuorum=true" in cfg and "secureClientPort=2281" in cfg
        a, b = hosts.hosts[0], hosts.hosts[1]
        zk = KazooClient(hosts=f"{a.address}:2281", use_ssl=True, ca=str(pki / "ca.pem"),
                         certfile=str(pki / "admin.crt"), keyfile=str(pki / "admin.key"), timeout=10)
        zk.start(timeout=30)
        zk.create("/tls-written", b"over tls")
        zk.stop()
        plain = KazooClient(hosts=f"{b.address}:2181", timeout=10)
        plain.start(timeout=30)
        plain.sync("/")
        assert plain.get("/tls-written")[0] == b"over tls", "replicated over the TLS quorum links"
        plain.stop()
        again = zkops("deploy", str(inv), "--known-hosts", str(known), "--wheel", str(wheel), cwd=tmp_path)
        assert again.returncode == 0 and all(c[1] == 0 for c in _recap(again.stdout).values()), again.stdout[-2000:]
    finally:
        zkops("destroy", str(inv), "--yes", "--purge-data", "--known-hosts", str(known), cwd=tmp_path)
