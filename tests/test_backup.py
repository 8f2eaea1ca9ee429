"""zkops backup / backup verify / restore on local data directories, against real server processes.

The writers record every acknowledged write with its zxid and txn time (from the Stat the
server returned), so the tree expected at any zxid or time is known exactly: every
acknowledged write at or before the point is there, none after it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient

from tests.support.ourzk import ZkopsProcess

pytestmark = pytest.mark.integration


def zkops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkops.cli", *args], capture_output=True, text=True, timeout=300,
                          env={"COLUMNS": "250", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp"})


def inventory(path: Path, name: str, workdir: Path, port: int) -> Path:
    data = {"all": {"hosts": {name: {"connection": "local", "address": "127.0.0.1", "client_port": port,
                                     "quorum_port": port + 1 if port < 65000 else port - 1,
                                     "election_port": port + 2 if port < 65000 else port - 2,
                                     "base_dir": str(workdir), "data_dir": str(workdir / "data")}}}}
    path.write_text(yaml.safe_dump(data))
    return path


def client(address: str) -> KazooClient:
    zk = KazooClient(hosts=address, timeout=30)
    zk.start(timeout=60)
    return zk


class Writer(threading.Thread):
    """Creates, sets and deletes under its own subtree; records (zxid, time, op, path, data) per ack."""

    def __init__(self, address: str, name: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.address, self.name, self.halt = address, name, stop
        self.ops: list[tuple[int, int, str, str, bytes]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        zk = client(self.address)
        try:
            base = f"/load/{self.name}"
            zk.ensure_path(base)
            i = 0
            while not self.halt.is_set() or i < 60:
                path = f"{base}/n{i % 40:02d}"
                data = f"{self.name}-{i}".encode()
                if zk.exists(path) is None:
                    _, st = zk.create(path, data, include_data=True)
                    self.ops.append((st.czxid, st.ctime, "create", path, data))
                elif i % 7 == 0:
                    zk.delete(path)
                    # the delete's zxid is the parent's pzxid right after it
                    pst = zk.exists(base)
                    self.ops.append((pst.pzxid, 0, "delete", path, b""))
                else:
                    st = zk.set(path, data)
                    self.ops.append((st.mzxid, st.mtime, "set", path, data))
                i += 1
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
        finally:
            zk.stop()
            zk.close()


def expected_at(ops: list[tuple[int, int, str, str, bytes]], zxid: int) -> dict[str, bytes]:
    tree: dict[str, bytes] = {}
    for z, _, op, path, data in sorted(ops):
        if z > zxid:
            break
        if op == "delete":
            tree.pop(path, None)
        else:
            tree[path] = data
    return tree


def tree_of(address: str) -> dict[str, bytes]:
    zk = client(address)
    try:
        out = {}
        for w in zk.get_children("/load"):
            for n in zk.get_children(f"/load/{w}"):
                out[f"/load/{w}/{n}"] = zk.get(f"/load/{w}/{n}")[0]
        return out
    finally:
        zk.stop()
        zk.close()


@pytest.fixture
def loaded(tmp_path: Path):
    """A server that took several snapshots during a write load, backed up three times meanwhile."""
    srv = ZkopsProcess(extra_cfg={"snapCount": "150", "preAllocSize": "64"}).start()
    try:
        inv = inventory(tmp_path / "source.yaml", "zk1", srv.workdir, srv.port)
        backup_dir = tmp_path / "backup"
        zk = client(srv.address)
        zk.create("/load")
        zk.create("/eph", b"x", ephemeral=True)  # a session the restore drops, with its ephemeral
        stop = threading.Event()
        writers = [Writer(srv.address, f"w{i}", stop) for i in range(2)]
        for w in writers:
            w.start()
        runs = []
        deadline = time.monotonic() + 120
        while len(runs) < 3 and time.monotonic() < deadline:
            if sum(len(w.ops) for w in writers) >= 150 * (len(runs) + 1):
                runs.append(zkops("backup", str(inv), "--to", str(backup_dir)))
                assert runs[-1].returncode == 0, runs[-1].stdout + runs[-1].stderr
            time.sleep(0.05)
        stop.set()
        for w in writers:
            w.join(120)
            assert w.error is None, w.error
        final = zkops("backup", str(inv), "--to", str(backup_dir))
        assert final.returncode == 0, final.stdout + final.stderr
        runs.append(final)
        ops = [op for w in writers for op in w.ops]
        yield srv, inv, backup_dir, ops, runs, zk
        zk.stop()
        zk.close()
    finally:
        srv.cleanup()


def _restore_and_read(tmp_path: Path, backup_dir: Path, name: str, *how: str) -> tuple[dict[str, bytes], str, Path]:
    work = tmp_path / name
    target = ZkopsProcess(workdir=work)
    inv = inventory(tmp_path / f"{name}.yaml", "zk1", work, target.port)
    done = zkops("restore", str(inv), "--from", str(backup_dir), *how)
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        target.start()
        got = tree_of(target.address)
        zk = client(target.address)
        try:
            assert zk.exists("/eph") is None, "the ephemeral of a dropped session came back"
        finally:
            zk.stop()
            zk.close()
        return got, done.stdout, work
    finally:
        target.cleanup()


def test_backup_under_load_then_restore_to_zxids_and_times(loaded, tmp_path: Path):
    srv, inv, backup_dir, ops, runs, _ = loaded
    assert len(runs) >= 2
    # incremental: with no write since the last run, a run copies nothing
    again = zkops("backup", str(inv), "--to", str(backup_dir))
    assert again.returncode == 0 and " 0 files copied, " in again.stdout, again.stdout + again.stderr
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert len(manifest["runs"]) == len(runs) + 1
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert sum(1 for f in manifest["files"].values() if f["kind"] == "snapshot") >= 2

    ver = zkops("backup", "verify", str(backup_dir))
    assert ver.returncode == 0, ver.stdout + ver.stderr
    assert "can restore to any zxid" in ver.stdout

    ops.sort()
    oldest = min(f["first"] for f in manifest["files"].values() if f["kind"] == "snapshot")
    after = [op for op in ops if op[0] > oldest]
    assert len(after) > 100
    zxids = [after[0][0], after[len(after) // 3][0], after[2 * len(after) // 3][0], after[-1][0]]
    for i, z in enumerate(zxids):
        got, out, _ = _restore_and_read(tmp_path, backup_dir, f"z{i}", "--to-zxid", hex(z))
        assert f"restored zxid 0x{z:x}" in out, out
        assert got == expected_at(ops, z), f"restore to 0x{z:x}"
    # to a time: the last txn at or before it (several ops may share a millisecond)
    # a point followed by an op of a later millisecond (a delete's time is not known here)
    k = next(k for k in range(len(ops) - len(after) // 2, len(ops) - 1)
             if ops[k][1] and ops[k + 1][1] > ops[k][1])
    got, out, _ = _restore_and_read(tmp_path, backup_dir, "t", "--to-time", str(ops[k][1] / 1000))
    assert f"restored zxid 0x{ops[k][0]:x}" in out, out
    assert got == expected_at(ops, ops[k][0])


def test_restore_check_force_and_old_files_kept_aside(loaded, tmp_path: Path):
    srv, inv, backup_dir, ops, _, zk = loaded
    last = max(op[0] for op in ops)
    check = zkops("restore", str(inv), "--from", str(backup_dir), "--check")
    assert check.returncode == 0, check.stderr
    assert "would restore zxid 0x" in check.stdout and "znodes" in check.stdout
    refused = zkops("restore", str(inv), "--from", str(backup_dir), "--to-zxid", hex(last))
    assert refused.returncode == 2 and "running" in refused.stderr, refused.stdout + refused.stderr
    zk.stop()
    zk.close()
    srv.stop()
    # listed once stopped: a snapshot may still have been on its way while the server ran
    before = sorted(p.name for p in (srv.data_dir / "version-2").iterdir())
    done = zkops("restore", str(inv), "--from", str(backup_dir), "--to-zxid", hex(last))
    assert done.returncode == 0, done.stdout + done.stderr
    aside = [p for p in srv.data_dir.iterdir() if p.name.startswith("version-2.before-restore-")]
    assert len(aside) == 1 and sorted(p.name for p in aside[0].iterdir()) == before
    assert [p.name for p in (srv.data_dir / "version-2").iterdir()] == [f"snapshot.{last:x}"]
    srv.start()
    try:
        assert tree_of(srv.address) == expected_at(ops, last)
    finally:
        srv.stop()
    # --force stops a running ensemble, and keeps the files again
    srv.start()
    forced = zkops("restore", str(inv), "--from", str(backup_dir), "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert len([p for p in srv.data_dir.iterdir() if p.name.startswith("version-2.before-restore-")]) == 2


def _damage(src: Path, dst: Path, how: str) -> None:
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    logs = sorted((f for f in man["files"].values() if f["kind"] == "log"), key=lambda f: f["first"])
    snaps = sorted((f for f in man["files"].values() if f["kind"] == "snapshot"), key=lambda f: f["first"])
    if how == "missing log":
        (dst / "files" / logs[len(logs) // 2]["name"]).unlink()
        return
    if how == "flipped byte":  # sha256 catches it
        p = dst / "files" / logs[0]["name"]
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))
        return
    import hashlib

    if how == "bad log crc":  # the manifest agrees with the file; the record's Adler32 does not
        entry = max(logs, key=lambda f: f["size"])
        p = dst / "files" / entry["name"]
        b = bytearray(p.read_bytes())
        b[40] ^= 0x01  # inside the first record's txn
    elif how == "truncated log":  # a log before the last one cut short, manifest rewritten to match
        entry = logs[len(logs) // 2]
        p = dst / "files" / entry["name"]
        b = bytearray(p.read_bytes()[: -30])
    else:  # "truncated snapshot", manifest rewritten to match
        entry = snaps[-1]
        p = dst / "files" / entry["name"]
        b = bytearray(p.read_bytes()[: -20])
    p.write_bytes(bytes(b))
    entry["size"] = len(b)
    entry["sha256"] = hashlib.sha256(bytes(b)).hexdigest()
    (dst / "manifest.json").write_text(json.dumps(man))


@pytest.mark.parametrize("how,says", [("missing log", "missing from the backup"),
                                      ("flipped byte", "sha256 differs"),
                                      ("bad log crc", "corrupt txn log"),
                                      ("truncated snapshot", "truncated"),
                                      ("truncated log", "truncated")])
def test_damaged_backups_are_reported_and_refused(loaded, tmp_path: Path, how: str, says: str):
    _, _, backup_dir, _, _, _ = loaded
    bad = tmp_path / "bad"
    _damage(backup_dir, bad, how)
    ver = zkops("backup", "verify", str(bad))
    assert ver.returncode == 1, ver.stdout
    assert says in ver.stdout, ver.stdout
    work = tmp_path / "target"
    inv = inventory(tmp_path / "target.yaml", "zk1", work, 2999)
    done = zkops("restore", str(inv), "--from", str(bad))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "damaged" in done.stderr and says in done.stderr.replace("\n", " "), done.stderr
    assert not (work / "data" / "version-2").exists()


def test_keep_prunes_old_snapshots_and_their_logs(loaded, tmp_path: Path):
    srv, inv, backup_dir, _, _, _ = loaded
    man = json.loads((backup_dir / "manifest.json").read_text())
    snaps = sorted(f["first"] for f in man["files"].values() if f["kind"] == "snapshot")
    pruned = zkops("backup", str(inv), "--to", str(backup_dir), "--keep", "1")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    man = json.loads((backup_dir / "manifest.json").read_text())
    left = [f for f in man["files"].values() if f["kind"] == "snapshot"]
    assert len(left) == 1 and left[0]["first"] >= snaps[-1]
    assert all(f["last"] > left[0]["first"] or f["first"] <= left[0]["first"] for f in man["files"].values())
    assert sorted(p.relative_to(backup_dir / "files").as_posix() for p in (backup_dir / "files").rglob("*.*")
                  if p.is_file()) == sorted(man["files"])
    ver = zkops("backup", "verify", str(backup_dir))
    assert ver.returncode == 0, ver.stdout


def test_verify_and_restore_name_what_is_not_a_backup(tmp_path: Path):
    ver = zkops("backup", "verify", str(tmp_path))
    assert ver.returncode == 2 and "not a zkops backup" in ver.stderr
    data = tmp_path / "x.yaml"
    inventory(data, "zk1", tmp_path / "t", 2999)
    done = zkops("restore", str(data), "--from", str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_a_server_without_a_snapshot_yet_is_backed_up_from_its_first_txn(tmp_path: Path):
    srv = ZkopsProcess().start()
    try:
        zk = client(srv.address)
        try:
            zk.create("/few", b"1")
            zk.create("/few/more", b"2")
        finally:
            zk.stop()
            zk.close()
        assert not any(p.name.startswith("snapshot.") for p in (srv.data_dir / "version-2").iterdir())
        inv = inventory(tmp_path / "inv.yaml", "zk1", srv.workdir, srv.port)
        done = zkops("backup", str(inv), "--to", str(tmp_path / "b"))
        assert done.returncode == 0, done.stdout + done.stderr
        ver = zkops("backup", "verify", str(tmp_path / "b"))
        assert ver.returncode == 0, ver.stdout
    finally:
        srv.cleanup()
    target = ZkopsProcess(workdir=tmp_path / "r")
    done = zkops("restore", str(inventory(tmp_path / "r.yaml", "zk1", target.workdir, target.port)),
                 "--from", str(tmp_path / "b"))
    assert done.returncode == 0, done.stdout + done.stderr
    try:
        target.start()
        zk = client(target.address)
        try:
            assert zk.get("/few/more")[0] == b"2"
        finally:
            zk.stop()
            zk.close()
    finally:
        target.cleanup()
