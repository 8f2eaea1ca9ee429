"""zkops backup and restore over SSH, as root and as a sudo user, on a container with sshd."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.support.dockerd import Engine
from tests.support.ourzk import ZkopsProcess
from tests.support.sshhosts import SshHosts
from tests.test_backup import client, zkops

pytestmark = [pytest.mark.docker, pytest.mark.integration]
DATA = "/var/lib/zookeeper/data"


@pytest.fixture(scope="module")
def host(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("ssh-backup")
    hosts = SshHosts(docker_engine, work, 1, prefix="zkops-backup")
    try:
        yield hosts
    finally:
        hosts.cleanup()


def _seed(hosts: SshHosts) -> None:
    """A zkops data directory with snapshots and logs, owned by zookeeper with mode 0750."""
    srv = ZkopsProcess(extra_cfg={"snapCount": "100", "preAllocSize": "64"}).start()
    try:
        zk = client(srv.address)
        zk.ensure_path("/seed")
        for i in range(300):
            zk.create(f"/seed/n{i:03d}", f"{i}".encode())
        zk.stop()
        zk.close()
    finally:
        srv.stop()
    # then txns after the newest snapshot, so that restore points follow it
    srv.extra_cfg["snapCount"] = "100000"
    srv.start()
    try:
        zk = client(srv.address)
        for i in range(100):
            zk.set(f"/seed/n{i:03d}", b"changed")
        zk.stop()
        zk.close()
    finally:
        srv.stop()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(srv.data_dir / "version-2", arcname="version-2")
    srv.cleanup()
    h = hosts.hosts[0]
    code, out = hosts.exec(h, f"useradd --system zookeeper; mkdir -p {DATA}")
    assert h.container.put_archive(DATA, buf.getvalue())
    code, out = hosts.exec(h, "chown -R zookeeper: /var/lib/zookeeper && chmod -R u=rwX,g=rX,o= /var/lib/zookeeper")
    assert code == 0, out


def _inventory(hosts: SshHosts, path: Path, user: str) -> Path:
    h = hosts.hosts[0]
    path.write_text(yaml.safe_dump({"all": {"hosts": {"zk1": {
        "address": h.address, "ssh_user": user, "ssh_key": str(hosts.key_path), "data_dir": DATA}}}}))
    return path


def test_backup_and_restore_over_ssh_as_root_and_as_sudo_user(host: SshHosts, tmp_path: Path):
    _seed(host)
    known = ["--known-hosts", str(tmp_path / "known_hosts"), "--accept-new-host-keys"]
    as_root = _inventory(host, tmp_path / "root.yaml", "root")
    as_user = _inventory(host, tmp_path / "vagrant.yaml", "vagrant")
    for inv, where in ((as_root, "b-root"), (as_user, "b-user")):
        done = zkops("backup", str(inv), "--to", str(tmp_path / where), *known)
        assert done.returncode == 0, done.stdout + done.stderr
        ver = zkops("backup", "verify", str(tmp_path / where))
        assert ver.returncode == 0, ver.stdout
    check = zkops("restore", str(as_root), "--from", str(tmp_path / "b-root"), "--check", *known)
    assert check.returncode == 0 and "would restore zxid 0x" in check.stdout, check.stdout + check.stderr
    span = ver.stdout.split("can restore to any zxid ")[1].split(" (")[0].split(" .. ")
    first, last = int(span[0], 16), int(span[1], 16)
    assert last > first + 10, ver.stdout
    target = (first + last) // 2
    done = zkops("restore", str(as_user), "--from", str(tmp_path / "b-user"), "--to-zxid", hex(target), *known)
    assert done.returncode == 0, done.stdout + done.stderr
    code, out = host.exec(host.hosts[0], f"cd {DATA} && stat -c '%n %U %a' version-2 version-2/* && ls -d version-2.*")
    assert code == 0, out
    lines = out.split()
    assert f"version-2/snapshot.{target:x}" in lines and lines.count("zookeeper") == 2, out
    assert any(x.startswith("version-2.before-restore-") for x in lines), out
    # what the host now holds is the tree at the target: back it up and look
    again = zkops("backup", str(as_root), "--to", str(tmp_path / "b-after"), *known)
    assert again.returncode == 0, again.stdout + again.stderr
    after = zkops("restore", str(as_root), "--from", str(tmp_path / "b-after"), "--check", *known)
    before = zkops("restore", str(as_root), "--from", str(tmp_path / "b-root"), "--to-zxid", hex(target), "--check",
                   *known)
    assert f"would restore zxid 0x{target:x}" in after.stdout, after.stdout + after.stderr
    assert after.stdout.split(":")[1].split("(")[0] == before.stdout.split(":")[1].split("(")[0]
