"""Backups of an Apache ZooKeeper 3.8 data directory, restored and served by zkops and by Apache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import refzk
from tests.support.ourzk import ZkopsProcess
from tests.test_backup import client, expected_at, inventory, tree_of, zkops

pytestmark = [pytest.mark.integration, pytest.mark.reference]


def _writes(address: str, name: str, n: int) -> list[tuple[int, int, str, str, bytes]]:
    zk = client(address)
    ops = []
    try:
        zk.ensure_path(f"/load/{name}")
        for i in range(n):
            path = f"/load/{name}/n{i % 25:02d}"
            data = f"{name}-{i}".encode()
            if zk.exists(path) is None:
                _, st = zk.create(path, data, include_data=True)
                ops.append((st.czxid, st.ctime, "create", path, data))
            else:
                st = zk.set(path, data)
                ops.append((st.mzxid, st.mtime, "set", path, data))
        return ops
    finally:
        zk.stop()
        zk.close()


def test_apache_data_dir_backed_up_and_restored_to_zkops_and_apache(tmp_path: Path):
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    apache = refzk.RefZooKeeper(extra_cfg={"snapCount": "100"}).start()
    try:
        inv = inventory(tmp_path / "apache.yaml", "zk1", apache.workdir, apache.port)
        held = client(apache.address)
        held.create("/eph", b"x", ephemeral=True)
        ops = _writes(apache.address, "a", 400)
        first = zkops("backup", str(inv), "--to", str(tmp_path / "b"))
        assert first.returncode == 0, first.stdout + first.stderr
        ops += _writes(apache.address, "b", 300)
        held.stop()
        held.close()
        second = zkops("backup", str(inv), "--to", str(tmp_path / "b"))
        assert second.returncode == 0, second.stdout + second.stderr
    finally:
        apache.cleanup()
    ver = zkops("backup", "verify", str(tmp_path / "b"))
    assert ver.returncode == 0, ver.stdout + ver.stderr
    ops.sort()
    target = ops[-150][0]  # among the second batch of writes
    # served by zkops
    ours = ZkopsProcess(workdir=tmp_path / "ours")
    done = zkops("restore", str(inventory(tmp_path / "ours.yaml", "zk1", ours.workdir, ours.port)),
                 "--from", str(tmp_path / "b"), "--to-zxid", hex(target))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        ours.start()
        assert tree_of(ours.address) == expected_at(ops, target)
        zk = client(ours.address)
        try:
            assert zk.exists("/eph") is None
        finally:
            zk.stop()
            zk.close()
    finally:
        ours.cleanup()
    # served by Apache, from the snapshot zkops wrote
    again = refzk.RefZooKeeper(workdir=tmp_path / "apache2")
    done = zkops("restore", str(inventory(tmp_path / "apache2.yaml", "zk1", again.workdir, again.port)),
                 "--from", str(tmp_path / "b"), "--to-zxid", hex(target))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        again.start()
        assert tree_of(again.address) == expected_at(ops, target)
    finally:
        again.cleanup()
