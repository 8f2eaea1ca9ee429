"""Autopurge keeps the newest snapshots and every log needed to replay from them.

The reference test runs ZooKeeper's own PurgeTxnLog on a copy of the same directory
and expects it to delete exactly what ours deletes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import refzk
from zkops.server import snapshot as snap
from zkops.server.codes import Op
from zkops.server.purge import logs_needed_from, purge
from zkops.server.records import ACL, CreateTxn, Id, StatPersisted, TxnHeader
from zkops.server.txncodec import encode_txn
from zkops.server.txnlog import TxnLog, log_files

OPEN = [ACL(31, Id("world", "anyone"))]
ROOT = [("", b"", OPEN, StatPersisted(0, 0, 0, 0, 0, 0, 0, 0, 0))]


def txn(z: int) -> bytes:
    return encode_txn(TxnHeader(0x100, z, z, 1000 + z, Op.create), CreateTxn(f"/n{z}", b"", OPEN, False, z))


def build(data_dir: Path, log_dir: Path, script: str) -> None:
    """Lay out a data directory: 't' appends the next txn, 'r' rolls, 's' snapshots, '!' tears the last snapshot."""
    log = TxnLog(log_dir, prealloc_bytes=1024)
    z = 0
    last_snap: Path | None = None
    for step in script:
        if step == "t":
            z += 1
            log.append(z, txn(z))
            log.sync()
        elif step == "r":
            log.roll()
        elif step == "s":
            last_snap = snap.write_snapshot(data_dir, z, {}, ROOT)
        elif step == "!":
            assert last_snap is not None
            last_snap.write_bytes(last_snap.read_bytes()[:-3])
    log.close()


def names(d: Path) -> set[str]:
    v = d / "version-2"
    return {p.name for p in v.iterdir()} if v.is_dir() else set()


def snaps(d: Path) -> list[str]:
    return [p.name for p in snap.find_snapshots(d)]


def logs(d: Path) -> list[str]:
    return [p.name for _, p in log_files(d / "version-2")]


def test_keeps_the_newest_three_snapshots_and_the_logs_they_need(tmp_path):
    # snapshots at 5, 10, ..., 30; the log rolls right after each snapshot
    build(tmp_path, tmp_path, "ttttt" + "srttttt" * 5 + "s")
    assert logs(tmp_path) == ["log.1", "log.6", "log.b", "log.10", "log.15", "log.1a"]
    deleted = purge(tmp_path, tmp_path, 3)
    assert snaps(tmp_path) == ["snapshot.1e", "snapshot.19", "snapshot.14"]
    # snapshot.14 (zxid 20) replays from log.10 (zxid 16 .. 20 are in it, then 21 onwards)
    assert logs(tmp_path) == ["log.10", "log.15", "log.1a"]
    assert sorted(p.name for p in deleted) == sorted(
        ["snapshot.5", "snapshot.a", "snapshot.f", "log.1", "log.6", "log.b"])
    assert all(not p.exists() for p in deleted)


def test_a_log_starting_before_the_oldest_kept_snapshot_is_kept(tmp_path):
    # one log file holds everything: it is needed whatever the snapshots
    build(tmp_path, tmp_path, "ttttts" * 6)
    purge(tmp_path, tmp_path, 3)
    assert snaps(tmp_path) == ["snapshot.1e", "snapshot.19", "snapshot.14"]
    assert logs(tmp_path) == ["log.1"]


def test_what_remains_replays_from_the_oldest_kept_snapshot(tmp_path):
    build(tmp_path, tmp_path, "tttrttstrtttsttrttstttsttrttts")
    purge(tmp_path, tmp_path, 3)
    oldest = snap.snapshot_zxid(snap.find_snapshots(tmp_path)[-1])
    with TxnLog(tmp_path) as log:
        replay = [z for z, _ in log.read_from(oldest + 1)]
        assert replay == list(range(oldest + 1, log.last_zxid() + 1))


def test_fewer_snapshots_than_retain_still_drops_older_logs(tmp_path):
    # as ZooKeeper: everything older than the oldest retained snapshot goes
    build(tmp_path, tmp_path, "tttttrtttttsrtttttrtttttsrttt")
    assert logs(tmp_path) == ["log.1", "log.6", "log.b", "log.10", "log.15"]
    deleted = purge(tmp_path, tmp_path, 3)
    assert snaps(tmp_path) == ["snapshot.14", "snapshot.a"]
    assert logs(tmp_path) == ["log.6", "log.b", "log.10", "log.15"]
    assert [p.name for p in deleted] == ["log.1"]


def test_a_torn_snapshot_does_not_count_as_retained(tmp_path):
    build(tmp_path, tmp_path, "tttsrtttsrtttsrtttsrttts!")
    deleted = purge(tmp_path, tmp_path, 3)
    # snapshot.f is torn: the three kept are c, 9, 6; the torn newer one stays too
    assert snaps(tmp_path) == ["snapshot.f", "snapshot.c", "snapshot.9", "snapshot.6"]
    assert sorted(p.name for p in deleted) == ["log.1", "snapshot.3"]


def test_separate_data_and_log_directories(tmp_path):
    data, logd = tmp_path / "data", tmp_path / "logs"
    build(data, logd, "ttttsr" * 5)
    purge(data, logd, 3)
    assert snaps(data) == ["snapshot.14", "snapshot.10", "snapshot.c"]
    assert logs(logd) == ["log.9", "log.d", "log.11"]
    assert names(data) == set(snaps(data)) and names(logd) == set(logs(logd))


def test_nothing_to_do(tmp_path):
    assert purge(tmp_path, tmp_path, 3) == []
    build(tmp_path, tmp_path, "ttsrttsrtts")
    before = names(tmp_path)
    assert purge(tmp_path, tmp_path, 5) == []
    assert names(tmp_path) == before


def test_retain_below_three_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 3"):
        purge(tmp_path, tmp_path, 2)


def test_files_that_are_not_zookeepers_are_left_alone(tmp_path):
    build(tmp_path, tmp_path, "tsr" * 6)
    v = tmp_path / "version-2"
    for other in ("notes.txt", ".snapshot.1.tmp", "log.xyz", "snapshot.1.bak", "acceptedEpoch"):
        (v / other).write_text("keep me")
    purge(tmp_path, tmp_path, 3)
    assert {"notes.txt", ".snapshot.1.tmp", "log.xyz", "snapshot.1.bak", "acceptedEpoch"} <= names(tmp_path)


def test_logs_needed_from(tmp_path):
    build(tmp_path, tmp_path, "tttrtttrttt")  # logs 1, 4, 7
    assert [logs_needed_from(tmp_path, z) for z in (0, 1, 3, 4, 6, 7, 100)] == [0, 1, 1, 4, 4, 7, 7]


SCRIPTS = st.lists(st.sampled_from(["t", "t", "t", "r", "s", "s!"]), min_size=1, max_size=40).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=SCRIPTS, retain=st.integers(3, 5))
def test_purge_never_breaks_recovery(tmp_path_factory, script, retain):
    d = tmp_path_factory.mktemp("purge")
    build(d, d, "t" + script)
    sealed_before = [p for p in snap.find_snapshots(d) if snap.looks_sealed(p)]
    last = TxnLog(d).last_zxid()
    deleted = purge(d, d, retain)
    after = snap.find_snapshots(d)
    # the newest `retain` good snapshots survive, and nothing newer than them is touched
    assert all(p in after for p in sealed_before[:retain])
    if sealed_before:
        oldest = snap.snapshot_zxid(sealed_before[:retain][-1])
        assert all(snap.snapshot_zxid(p) < oldest for p in deleted if p.name.startswith("snapshot"))
        # recovery from any kept snapshot still replays every later txn
        for p in after:
            z = snap.snapshot_zxid(p)
            if z >= oldest:
                with TxnLog(d) as log:
                    assert [t for t, _ in log.read_from(z + 1)] == list(range(z + 1, last + 1))
    else:
        assert deleted == []


# ---------------------------------------------------------------- Apache ZooKeeper
def _zk_purge(data_dir: Path, log_dir: Path, retain: int) -> None:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    out = subprocess.run(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", refzk.classpath(),
                          "org.apache.zookeeper.server.PurgeTxnLog", str(log_dir), str(data_dir), "-n", str(retain)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.reference
@pytest.mark.parametrize("script,retain", [
    ("ttttt" + "srttttt" * 5 + "s", 3),
    ("ttttts" * 6, 3),
    ("tttttrtttttsrtttttrtttttsrttt", 3),
    ("tttsrtttsrtttsrtttsrttts!", 3),
    ("ttsrtttsttrtsrttsttrttsrtsrtttts", 4),
    ("trtrtrtstrtrtstrtstrtrts", 3),
], ids=["aligned", "one-log", "few-snapshots", "torn-snapshot", "mixed-4", "many-logs"])
@pytest.mark.parametrize("separate", [False, True], ids=["one-dir", "two-dirs"])
def test_zookeepers_purge_tool_deletes_the_same_files(tmp_path, script, retain, separate):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    build(ours / "data", ours / ("logs" if separate else "data"), script)
    shutil.copytree(ours, theirs)
    purge(ours / "data", ours / ("logs" if separate else "data"), retain)
    _zk_purge(theirs / "data", theirs / ("logs" if separate else "data"), retain)
    for sub in ("data", "logs"):
        assert names(ours / sub) == names(theirs / sub), sub


def test_the_autopurge_loop_keeps_the_newest_snapshots_of_a_running_database(tmp_path):
    # app.serve runs this loop for standalone servers and quorum members alike (members did
    # not purge before: autopurge.purgeInterval was ignored in an ensemble)
    import asyncio

    from zkops.server.app import autopurge
    from zkops.server.database import Database

    build(tmp_path, tmp_path, "ts" * 6 + "t")
    assert len(snaps(tmp_path)) == 6
    db = Database.open(tmp_path, tmp_path)

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(autopurge(db, 3, 0.01, stop))
        for _ in range(3000):
            if len(snaps(tmp_path)) == 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        task.cancel()

    try:
        asyncio.run(run())
    finally:
        db.close()
    assert len(snaps(tmp_path)) == 3
    assert [f for f, _ in log_files(tmp_path / "version-2")][0] <= 4  # the logs the oldest kept snapshot needs
