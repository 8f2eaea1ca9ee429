"""The ZxidDigest section of snapshots (Apache 3.8's FileSnap): written by zkops, compared when loaded,
and judged by the real Apache 3.8, which compares a snapshot's digest once it has replayed the txn it
names (a fuzzy snapshot's), counting a mismatch in mntr's zk_digest_mismatches_count."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import snapshot as snapmod
from server.database import Database
from server.digest import M64
from server.records import ACL, Id, StatPersisted
from tests.support import refzk
from tests.support.ensemble import four_letter
from tests.support.ourzk import ZkopsProcess

OPEN = [ACL(31, Id("world", "anyone"))]


# ---------------------------------------------------------------- helpers
def _stat(czxid: int, mzxid: int, pzxid: int, version: int = 0, cversion: int = 0, owner: int = 0) -> StatPersisted:
    return StatPersisted(czxid, mzxid, 1000 + czxid, 2000 + mzxid, version, cversion, 0, owner, pzxid)


def _redigest(path: Path, digest: snapmod.ZxidDigest | None, rename_to: int | None = None) -> Path:
    """Rewrite a snapshot with another digest section (sealed again), maybe under another zxid."""
    sessions, nodes, _ = snapmod.parse_with_digest(path.read_bytes())
    data = snapmod.serialize(0, sessions, nodes, digest)
    path.unlink()
    target = path if rename_to is None else path.with_name(snapmod.snapshot_name(rename_to))
    target.write_bytes(data)
    return target


def _open(data_dir: Path) -> Database:
    db = Database.open(data_dir, force_sync=False, prealloc_kb=64)
    return db


def _mntr(port: int) -> dict[str, str]:
    out = {}
    for line in four_letter(port, "mntr", timeout=10.0).splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def _poll(fn: Any, deadline: float = 60.0) -> Any:
    end = time.monotonic() + deadline
    while True:
        try:
            value = fn()
            if value:
                return value
        except Exception:  # noqa: BLE001 - retried until the deadline
            if time.monotonic() > end:
                raise
        if time.monotonic() > end:
            return fn()
        time.sleep(0.2)


def _client(address: str) -> Any:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=address, timeout=30)
    zk.start(timeout=60)
    return zk


def _served_tree(address: str) -> dict[str, tuple[bytes, int, int, int, int, int, int, int]]:
    zk = _client(address)
    try:
        out = {}
        todo = ["/"]
        while todo:
            p = todo.pop()
            data, s = zk.get(p)
            out[p] = (data, s.czxid, s.mzxid, s.pzxid, s.version, s.cversion, s.aversion, s.ephemeralOwner)
            for c in zk.get_children(p):
                child = ("" if p == "/" else p) + "/" + c
                if child != "/zookeeper":
                    todo.append(child)
        return out
    finally:
        zk.stop()
        zk.close()


def _db_tree(db: Database) -> dict[str, tuple[bytes, int, int, int, int, int, int, int]]:
    out = {}
    for p, n in db.tree.nodes.items():
        if p == "/zookeeper" or p.startswith("/zookeeper/"):
            continue
        out[p] = (n.data or b"", n.czxid, n.mzxid, n.pzxid, n.version, n.cversion, n.aversion, n.owner)
    return out


# ---------------------------------------------------------------- pure round trips
_names = st.text("abcxyz", min_size=1, max_size=4)


@st.composite
def _trees(draw: Any) -> tuple[int, list[snapmod.Node]]:
    # every tree has /zookeeper (counted; its children are not)
    nodes: list[snapmod.Node] = [("", b"", OPEN, _stat(0, 0, 0)), ("/zookeeper", b"", OPEN, _stat(0, 0, 0))]
    paths = ["", "/zookeeper"]
    zxid = 0
    for _ in range(draw(st.integers(0, 25))):
        parent = draw(st.sampled_from(paths))
        path = parent + "/" + draw(_names)
        if path in paths:
            continue
        zxid += 1
        data = draw(st.one_of(st.none(), st.binary(max_size=40)))
        owner = draw(st.sampled_from([0, 0, 0x1234, -(1 << 63) | 5]))
        nodes.append((path, data, OPEN, _stat(zxid, zxid + draw(st.integers(0, 3)), zxid,
                                              version=draw(st.integers(0, 2**31 - 1)), owner=owner)))
        paths.append(path)
    top = max(max(s.czxid, s.mzxid, s.pzxid) for _, _, _, s in nodes)
    return top, nodes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_trees())
def test_written_digest_reads_back_and_matches_the_loaded_tree(tmp_path_factory: Any, tree: Any) -> None:
    zxid, nodes = tree
    d = tmp_path_factory.mktemp("rt")
    digest = snapmod.digest_of(zxid, nodes)
    if zxid == 0:  # no txn to name: the empty digest, which readers skip
        assert digest == snapmod.EMPTY_DIGEST
        return
    assert digest.zxid == zxid and digest.version == 2
    path = snapmod.write_snapshot(d, zxid, {7: 30000}, nodes, digest)
    snap = snapmod.read_snapshot(path)
    assert snap.digest is not None
    assert (snap.digest.zxid, snap.digest.version, snap.digest.digest & M64) == (zxid, 2, digest.digest)
    assert snapmod.looks_sealed(path)
    db = _open(d)
    try:
        assert db.digest_mismatches == 0
        assert db.tree.tree_digest() == digest.digest
    finally:
        db.close()


def test_altered_digest_counts_a_mismatch_and_still_loads(tmp_path: Path, caplog: Any) -> None:
    nodes: list[snapmod.Node] = [("", b"", OPEN, _stat(0, 0, 3, cversion=1)), ("/a", b"x", OPEN, _stat(3, 3, 3)),
                                 ("/zookeeper", b"", OPEN, _stat(0, 0, 0))]
    good = snapmod.digest_of(3, nodes)
    snapmod.write_snapshot(tmp_path, 3, {}, nodes, snapmod.ZxidDigest(3, 2, (good.digest + 1) & M64))
    with caplog.at_level(logging.ERROR, logger="zkops.server.db"):
        db = _open(tmp_path)
    try:
        assert db.digest_mismatches == 1
        assert "digest mismatch" in caplog.text
        assert db.tree.nodes["/a"].data == b"x"  # served anyway, as Apache does
    finally:
        db.close()


def test_fuzzy_copy_gets_the_empty_digest_and_disabled_digests_write_none(tmp_path: Path) -> None:
    nodes: list[snapmod.Node] = [("", b"", OPEN, _stat(0, 0, 0)), ("/a", b"x", OPEN, _stat(3, 9, 3))]
    assert snapmod.digest_of(5, nodes) == snapmod.EMPTY_DIGEST  # /a changed after 5: no zxid fits
    # /zookeeper/config is stamped without a txn and is not in the digest: it does not count
    config = [("", b"", OPEN, _stat(0, 0, 0)), ("/zookeeper", b"", OPEN, _stat(0, 0, 0)),
              ("/zookeeper/config", b"server.1=x", OPEN, _stat(0, 1 << 32, 0))]
    assert snapmod.digest_of(5, config).zxid == 5
    db = _open(tmp_path)
    try:
        db.tree.set_digest_enabled(False)
        path = db.snapshot_writer(3)(0, {}, list(db.tree.nodes.items()))
        assert snapmod.read_snapshot(path).digest is None
        db.tree.set_digest_enabled(True)
        path = db.snapshot_writer(3)(0, {}, list(db.tree.nodes.items()))
        # a tree at zxid 0 has no txn to name: 3.8's empty digest
        assert snapmod.read_snapshot(path).digest == snapmod.EMPTY_DIGEST
    finally:
        db.close()


# ---------------------------------------------------------------- against Apache 3.8
def _zkops_data_dir(tmp_path: Path) -> tuple[Path, int]:
    """A zkops dataDir with several snapshots and logs; returns it and the last create's zxid."""
    ours = ZkopsProcess(workdir=tmp_path / "ours", extra_cfg={"snapCount": "40"})
    ours.start()
    try:
        zk = _client(ours.address)
        try:
            zk.ensure_path("/app")
            last_create = 0
            for i in range(8):
                _, s = zk.create(f"/app/n{i}", b"v0", include_data=True)
                last_create = s.czxid
            zk.create("/app/eph", b"e", ephemeral=True)
            for i in range(240):
                zk.set(f"/app/n{i % 8}", f"v{i}".encode())
        finally:
            zk.stop()
            zk.close()
        # the snapshots are written by a forked child: wait until one names a zxid past the creates
        _poll(lambda: any(snapmod.snapshot_zxid(p) > last_create + 1 and snapmod.looks_sealed(p)
                          for p in snapmod.find_snapshots(ours.data_dir)))
    finally:
        ours.stop()
    return ours.data_dir, last_create


def _copy_data(src: Path, dst: Path) -> None:
    """Copy a dataDir without the temporary file of a snapshot still being written: the forked
    child that writes one can outlive the server's stop, and renames or removes its file while
    the copy runs."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".snapshot.*.tmp"))


def _fuzzy_copy(src: Path, dst: Path, last_create: int, alter: int = 0) -> int:
    """Copy a zkops dataDir to ``dst``, its newest snapshot renamed one zxid lower (a fuzzy snapshot,
    as Apache's are when a txn commits while it is written) and its digest changed by ``alter``.
    Returns the digest's zxid, which a reader compares after replaying that txn."""
    _copy_data(src, dst)
    newest = snapmod.find_snapshots(dst)[0]
    snap = snapmod.read_snapshot(newest)
    assert snap.digest is not None and snap.digest.zxid == snap.zxid > last_create + 1, snap.digest
    for p in snapmod.find_snapshots(dst)[1:]:
        p.unlink()
    d = snap.digest
    _redigest(newest, snapmod.ZxidDigest(d.zxid, d.version, (d.digest + alter) & M64), rename_to=snap.zxid - 1)
    return d.zxid


def _apache_on(data_dir: Path, tmp_path: Path, name: str) -> refzk.RefZooKeeper:
    ref = refzk.RefZooKeeper(workdir=tmp_path / name)
    _copy_data(data_dir, ref.workdir / "data")
    return ref


@pytest.mark.integration
@pytest.mark.reference
def test_apache_serves_a_zkops_data_dir_and_agrees_with_its_snapshot_digest(tmp_path: Path) -> None:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    src, last_create = _zkops_data_dir(tmp_path)
    db = _open(src)
    try:
        assert db.digest_mismatches == 0
    finally:
        db.close()
    served_by_us = ZkopsProcess(workdir=tmp_path / "again")
    _copy_data(src, served_by_us.data_dir)
    served_by_us.start()
    try:
        expected = _served_tree(served_by_us.address)
    finally:
        served_by_us.cleanup()
    assert "/app/n7" in expected
    # as written: the digest names the snapshot's own zxid (Apache keeps it without a txn to compare at)
    plain = _apache_on(src, tmp_path, "plain").start()
    try:
        served = _poll(lambda: _served_tree(plain.address))
        assert served == expected
        assert _mntr(plain.port)["zk_digest_mismatches_count"] == "0"
    finally:
        plain.cleanup()
    # fuzzy: Apache replays the txn the digest names, then compares
    _fuzzy_copy(src, tmp_path / "fuzzy", last_create)
    ref = _apache_on(tmp_path / "fuzzy", tmp_path, "ref").start()
    try:
        assert _served_tree(ref.address) == expected
        assert _mntr(ref.port)["zk_digest_mismatches_count"] == "0", (ref.workdir / "server.log").read_text()
        assert "not covering the snapshot digest" not in (ref.workdir / "server.log").read_text()
    finally:
        ref.cleanup()
    db = _open(tmp_path / "fuzzy")
    try:
        assert db.digest_mismatches == 0
    finally:
        db.close()


@pytest.mark.integration
@pytest.mark.reference
def test_altered_zkops_snapshot_digest_is_a_mismatch_for_apache_and_zkops(tmp_path: Path) -> None:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    src, last_create = _zkops_data_dir(tmp_path)
    _fuzzy_copy(src, tmp_path / "bad", last_create, alter=1)
    ref = _apache_on(tmp_path / "bad", tmp_path, "ref").start()
    try:
        count = int(_mntr(ref.port)["zk_digest_mismatches_count"])
        assert count >= 1, (ref.workdir / "server.log").read_text()
    finally:
        ref.cleanup()
    db = _open(tmp_path / "bad")
    try:
        assert db.digest_mismatches == 1
    finally:
        db.close()
    # the same with the digest at the snapshot's own zxid: zkops compares it on load
    bad_plain = tmp_path / "bad-plain"
    _copy_data(src, bad_plain)
    newest = snapmod.find_snapshots(bad_plain)[0]
    d = snapmod.read_snapshot(newest).digest
    assert d is not None
    _redigest(newest, snapmod.ZxidDigest(d.zxid, 2, d.digest ^ 0x10))
    db = _open(bad_plain)
    try:
        assert db.digest_mismatches == 1
    finally:
        db.close()


@pytest.mark.integration
@pytest.mark.reference
def test_apache_snapshot_digest_loads_in_zkops_without_mismatch(tmp_path: Path, caplog: Any) -> None:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    ref = refzk.RefZooKeeper(workdir=tmp_path / "ref", extra_cfg={"snapCount": "40"}).start()
    try:
        zk = _client(ref.address)
        try:
            zk.ensure_path("/app")
            for i in range(8):
                zk.create(f"/app/n{i}", b"v0")
            for i in range(200):
                zk.set(f"/app/n{i % 8}", f"v{i}".encode())
        finally:
            zk.stop()
            zk.close()
        data = ref.workdir / "data"
        _poll(lambda: any(snapmod.snapshot_zxid(p) > 10 and snapmod.looks_sealed(p)
                          for p in snapmod.find_snapshots(data)))
        expected = _served_tree(ref.address)
    finally:
        ref.stop()
    # the newest one that reads back whole (Apache writes in place: one begun as it stopped is cut)
    newest = snapmod.load_newest_valid(ref.workdir / "data")
    assert newest is not None
    assert newest.digest is not None and newest.digest.zxid >= newest.zxid > 10, newest.digest
    pristine = tmp_path / "pristine"
    shutil.copytree(ref.workdir / "data", pristine)
    with caplog.at_level(logging.INFO, logger="zkops.server.db"):
        db = _open(ref.workdir / "data")
    try:
        if db.digest_mismatches:
            # a snapshot Apache writes while a txn is being applied can record a digest its own
            # nodes do not add up to (seen on a loaded machine): then Apache's loader must say so too
            assert db.digest_mismatches == refzk.digest_mismatches_at_load(pristine)
        else:
            assert "matches the tree" in caplog.text  # compared, not skipped
        ours = _db_tree(db)
        assert set(ours) == set(expected)
        for p, (data, czxid, mzxid, pzxid, version, _, aversion, owner) in expected.items():
            assert ours[p][:5] + ours[p][6:] == (data, czxid, mzxid, pzxid, version, aversion, owner), p
    finally:
        db.close()
        ref.cleanup()


@pytest.mark.integration
@pytest.mark.reference
def test_an_apache_snapshot_whose_own_digest_is_wrong_is_reported_as_apache_reports_it(tmp_path: Path,
                                                                                         caplog: Any) -> None:
    # captured from Apache 3.8.0 (snapCount 40) on a loaded machine: snapshot.cb records a digest
    # at 0xcb that its own 13 nodes do not add up to, and Apache's loader says so (its logs
    # carried to their last txn, 0xd3; their zero padding cut off)
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    src = Path(__file__).parent / "data" / "apache-snapshot-digest-mismatch"
    shutil.copytree(src, tmp_path / "data")
    with caplog.at_level(logging.INFO, logger="zkops.server.db"):
        db = _open(tmp_path / "data")
    try:
        assert db.digest_mismatches == 1 and "at 0xcb" in caplog.text and "(digest mismatch)" in caplog.text
        assert db.tree.last_zxid == 0xD3  # and it serves: the txns after it replayed
    finally:
        db.close()
    assert refzk.digest_mismatches_at_load(src) == 1
