"""Txn log, snapshots, recovery and purge; Apache ZooKeeper's own tools read our files."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import refzk
from tests.support.syncpoints import count_sync_points
from zkops.server import snapshot as snap
from zkops.server.codes import Op
from zkops.server.database import Database
from zkops.server.purge import purge
from zkops.server.records import ACL, CreateTxn, Id, SetDataTxn, StatPersisted, TxnHeader
from zkops.server.txncodec import decode_txn, encode_txn
from zkops.server.txnlog import CorruptLogError, TxnLog, log_files
from zkops.server.zkserver import GroupCommitter

OPEN = [ACL(31, Id("world", "anyone"))]


def _txn(zxid: int, path: str = "/n", data: bytes = b"d") -> bytes:
    return encode_txn(TxnHeader(0x100, zxid, zxid, 1000 + zxid, Op.create), CreateTxn(f"{path}{zxid}", data, OPEN, False, zxid))


def _write(tmp: Path, n: int, prealloc: int = 4096) -> TxnLog:
    log = TxnLog(tmp, prealloc_bytes=prealloc)
    for z in range(1, n + 1):
        log.append(z, _txn(z))
    log.sync()
    return log


def test_records_read_back_in_order_across_rolled_files(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    for z in range(1, 11):
        log.append(z, _txn(z))
        if z % 4 == 0:
            log.roll()
    log.close()
    assert len(log_files(tmp_path / "version-2")) == 3
    again = TxnLog(tmp_path)
    assert [z for z, _ in again.read_from(1)] == list(range(1, 11))
    assert [z for z, _ in again.read_from(6)] == list(range(6, 11))
    assert again.last_zxid() == 10
    hdr, body = decode_txn(dict(again.read_from(7))[7])
    assert hdr.zxid == 7 and body.path == "/n7"


def test_group_commit_fsyncs_once_per_batch(tmp_path, monkeypatch):
    log = TxnLog(tmp_path)
    log.append(1, _txn(1))
    log.sync()  # the new file's header and its directory entry are behind us
    calls = count_sync_points(monkeypatch)
    for z in range(2, 101):
        log.append(z, _txn(z))
    log.sync()
    assert len(calls) == 1
    log.append(101, _txn(101))
    log.sync()
    assert len(calls) == 2


class _SlowLog:
    """A txn log whose first sync waits for the test: the disk is busy with a batch."""

    def __init__(self, real: TxnLog) -> None:
        self.real, self.syncs = real, []
        self.first_written, self.first_may_finish = threading.Event(), threading.Event()

    def roll(self) -> None:
        self.real.roll()

    def append(self, zxid: int, data: bytes) -> None:
        self.real.append(zxid, data)

    def sync(self) -> int | None:
        upto = self.real.sync()
        if not self.syncs:
            self.first_written.set()
            self.first_may_finish.wait(10)  # the fsync of the first batch takes its time
        self.syncs.append(upto)
        return upto


def test_the_writer_starts_the_next_batch_without_waiting_for_the_loop(tmp_path):
    """As Apache's SyncRequestProcessor: what was appended while an fsync ran goes to disk as
    soon as that fsync returns, even while the event loop is busy and has not yet heard that
    the first batch is durable; the loop then learns of both, in order."""
    loop = asyncio.new_event_loop()
    durable: list[int] = []
    server = SimpleNamespace(loop=loop, durable=durable.append, fsync_summary=SimpleNamespace(observe=lambda ms: None),
                             fatal=lambda exc: None)
    slow = _SlowLog(TxnLog(tmp_path))
    committer = GroupCommitter(server, slow, force_sync=True)  # type: ignore[arg-type]
    try:
        committer.submit(1, _txn(1))
        committer._kick()  # the end of one loop iteration
        assert slow.first_written.wait(10)
        committer.submit(2, _txn(2))
        committer.submit(3, _txn(3))
        committer._kick()  # the next iteration, while the first batch is still on its way
        slow.first_may_finish.set()
        deadline = time.monotonic() + 10
        while len(slow.syncs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert slow.syncs == [1, 3]  # two fsyncs, and the loop has not run once
        assert durable == []
        loop.run_until_complete(asyncio.sleep(0.05))
        assert durable == [1, 3]
        assert [z for z, _ in slow.real.read_from(1)] == [1, 2, 3]
    finally:
        committer.close()
        slow.real.close()
        loop.close()


def test_close_writes_what_was_appended_before_the_loop_rang_the_writer(tmp_path):
    """A server that stops right after appending (its loop never ran the writer's bell) still
    leaves the txn on disk; a ring while the writer is busy is not lost either."""
    loop = asyncio.new_event_loop()
    server = SimpleNamespace(loop=loop, durable=lambda z: None, fsync_summary=SimpleNamespace(observe=lambda ms: None),
                             fatal=lambda exc: None)
    log = TxnLog(tmp_path)
    committer = GroupCommitter(server, log, force_sync=True)  # type: ignore[arg-type]
    try:
        for zxid in (1, 2):
            committer.submit(zxid, _txn(zxid))
            committer._kick()
            committer._kick()  # a second ring before the writer took the first
        committer.submit(3, _txn(3))  # appended; the loop's kick never runs
        committer.close()
        assert [z for z, _ in log.read_from(1)] == [1, 2, 3]
        assert not committer._sync_thread.is_alive()
    finally:
        log.close()
        loop.close()


def test_a_txn_the_log_refuses_stops_the_server_instead_of_stalling_the_pipeline(tmp_path):
    """A closed or failed log fails the server (as a failed fsync does): the write would
    otherwise wait forever at the head of the queue, and every later write behind it."""
    loop = asyncio.new_event_loop()
    fatal: list[BaseException] = []
    server = SimpleNamespace(loop=loop, durable=lambda z: None, fsync_summary=None, fatal=fatal.append)
    log = TxnLog(tmp_path)
    log.close()
    committer = GroupCommitter(server, log, force_sync=True)  # type: ignore[arg-type]
    try:
        committer.submit(1, _txn(1))
        assert len(fatal) == 1 and "closed" in str(fatal[0])
    finally:
        committer.close()
        loop.close()


def test_force_sync_no_skips_fsync(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(fd))
    log = TxnLog(tmp_path, force_sync=False)
    log.append(1, _txn(1))
    log.sync()
    assert calls == []


def test_torn_last_record_is_dropped_at_every_cut(tmp_path):
    log = _write(tmp_path, 5)
    log.close()
    path = log_files(tmp_path / "version-2")[0][1]
    whole = path.read_bytes()
    # find where record 5 starts: after the first four
    four = TxnLog.__new__(TxnLog)  # noqa: F841 - only the scan below matters
    from zkops.server.txnlog import scan

    recs, end, _ = scan(whole)
    start5 = recs[3][2] + 1
    for cut in range(start5 + 1, recs[4][2] + 1):
        d = tmp_path / f"cut{cut}"
        (d / "version-2").mkdir(parents=True)
        (d / "version-2" / path.name).write_bytes(whole[:cut] + b"\0" * 100)
        again = TxnLog(d)
        assert [z for z, _ in again.read_from(1)] == [1, 2, 3, 4], cut
        again.append(5, _txn(5, "/again"))
        again.close()
        assert [z for z, _ in TxnLog(d).read_from(1)] == [1, 2, 3, 4, 5]


def test_damage_in_the_middle_stops_startup_naming_file_and_offset(tmp_path):
    log = _write(tmp_path, 5)
    log.close()
    path = log_files(tmp_path / "version-2")[0][1]
    data = bytearray(path.read_bytes())
    from zkops.server.txnlog import scan

    recs, _, _ = scan(bytes(data))
    data[recs[1][1] + 20] ^= 0xFF  # flip a byte inside record 2
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as exc:
        TxnLog(tmp_path)
    assert path.name in str(exc.value) and "offset" in str(exc.value)


def test_truncate_drops_the_uncommitted_tail(tmp_path):
    log = _write(tmp_path, 8)
    log.truncate(5)
    assert [z for z, _ in log.read_from(1)] == [1, 2, 3, 4, 5]
    log.append(6, _txn(6, "/other"))
    log.close()
    assert decode_txn(dict(TxnLog(tmp_path).read_from(6))[6])[1].path == "/other6"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=30))
def test_any_payloads_round_trip(tmp_path_factory, payloads):
    d = tmp_path_factory.mktemp("log")
    log = TxnLog(d, prealloc_bytes=4096)
    for z, p in enumerate(payloads, 1):
        log.append(z, _txn(z, data=p))
    log.close()
    got = [decode_txn(b)[1].data for _, b in TxnLog(d).read_from(1)]
    assert got == payloads


def _nodes():
    stat = StatPersisted(1, 2, 3, 4, 5, 6, 7, 0, 8)
    return [("", b"", OPEN, stat), ("/a", b"x" * 10, [ACL(1, Id("digest", "u:h"))], stat), ("/a/b", b"", OPEN, stat)]


def test_snapshot_round_trip_and_damage_falls_back(tmp_path):
    p1 = snap.write_snapshot(tmp_path, 0x10, {0x55: 4000}, _nodes())
    p2 = snap.write_snapshot(tmp_path, 0x20, {}, _nodes()[:2])
    got = snap.read_snapshot(p1)
    assert got.zxid == 0x10 and got.sessions == {0x55: 4000} and got.nodes == _nodes()
    assert snap.load_newest_valid(tmp_path).zxid == 0x20
    data = p2.read_bytes()
    p2.write_bytes(data[: len(data) // 2])
    assert snap.load_newest_valid(tmp_path).zxid == 0x10


def test_purge_keeps_newest_snapshots_and_the_logs_they_need(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    for z in range(1, 31):
        log.append(z, _txn(z))
        if z % 5 == 0:
            log.roll()
            snap.write_snapshot(tmp_path, z, {}, _nodes())
    log.close()
    deleted = purge(tmp_path, tmp_path, retain=3)
    assert [p.name for p in snap.find_snapshots(tmp_path)] == ["snapshot.1e", "snapshot.19", "snapshot.14"]
    firsts = [f for f, _ in log_files(tmp_path / "version-2")]
    assert min(firsts) <= 0x14 and deleted
    # what remains still replays from the oldest kept snapshot
    assert [z for z, _ in TxnLog(tmp_path).read_from(0x15)] == list(range(0x15, 31))


def test_database_recovers_snapshot_plus_log(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    log.append(1, encode_txn(TxnHeader(0x100, 1, 1, 5, Op.create), CreateTxn("/a", b"1", OPEN, False, 0)))
    log.append(2, encode_txn(TxnHeader(0x100, 2, 2, 6, Op.setData), SetDataTxn("/a", b"2", 1)))
    log.close()
    db = Database.open(tmp_path)
    assert db.tree.nodes["/a"].data == b"2" and db.tree.last_zxid == 2
    items = list(db.tree.nodes.items())
    db.snapshot_writer(3)(2, {}, items)
    db.close()
    log = TxnLog(tmp_path)
    log.append(3, encode_txn(TxnHeader(0x100, 3, 3, 7, Op.setData), SetDataTxn("/a", b"3", 2)))
    log.close()
    db = Database.open(tmp_path)
    assert db.tree.nodes["/a"].data == b"3" and db.tree.nodes["/a"].version == 2
    db.close()


def _java(*args: str) -> str:
    out = subprocess.run(["java", "-cp", refzk.classpath(), *args], capture_output=True, text=True, timeout=60)
    return out.stdout + out.stderr


@pytest.mark.reference
def test_apache_tools_read_our_log_and_snapshot(tmp_path):
    log = _write(tmp_path, 3)
    log.close()
    out = _java("org.apache.zookeeper.server.persistence.TxnLogToolkit",
                str(log_files(tmp_path / "version-2")[0][1]))
    assert "create /n1" in out and "create /n3" in out and "EOF reached after 3 txns" in out
    path = snap.write_snapshot(tmp_path, 3, {0x77: 6000}, _nodes())
    out = _java("org.apache.zookeeper.server.SnapshotFormatter", str(path))
    assert "/a/b" in out and "Session Details" in out and "0x00000000000077, 6000" in out


@pytest.mark.reference
def test_we_read_apache_zookeepers_data_dir(tmp_path):
    from kazoo.client import KazooClient

    with refzk.RefZooKeeper(extra_cfg={"snapCount": "2"}) as ref:
        c = KazooClient(ref.address)
        c.start()
        for i in range(6):
            c.create(f"/from-apache-{i}", str(i).encode())
        c.stop()
        ref.stop()
        db = Database.open(ref.workdir / "data")
        for i in range(6):
            assert db.tree.nodes[f"/from-apache-{i}"].data == str(i).encode()
        db.close()


def test_synced_records_are_readable_without_a_clean_close(tmp_path):
    log = TxnLog(tmp_path)
    log.append(1, _txn(1))
    log.sync()
    # no close(): as after kill -9, another reader must see the header and the record
    assert [z for z, _ in TxnLog(tmp_path).read_from(1)] == [1]
