"""The txn log: ZooKeeper's file format, group commit, recovery rules, truncation.

The reference tests run Apache ZooKeeper's own TxnLogToolkit on files we wrote and
read with our code the files a real ZooKeeper 3.8 wrote.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import refzk
from tests.support.syncpoints import count_sync_points
from tests.support.txns import EVERY_TYPE, OPEN, SID, hdr
from zkops.server import txnlog
from zkops.server.codes import Op
from zkops.server.jute import JuteError
from zkops.server.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    SetDataTxn,
)
from zkops.server.txncodec import decode_multi_txn, decode_txn, decode_txn_entry, encode_txn
from zkops.server.txnlog import (
    HEADER,
    CorruptLogError,
    TxnLog,
    frame,
    log_files,
    read_log_file,
    read_used,
    scan,
)


def create(zxid: int, path: str | None = None, data: bytes = b"d") -> bytes:
    return encode_txn(hdr(zxid, Op.create), CreateTxn(path or f"/n{zxid}", data, OPEN, False, zxid & 0xFFFF))


def vdir(d: Path) -> Path:
    return d / "version-2"


def the_file(d: Path) -> Path:
    files = log_files(vdir(d))
    assert len(files) == 1
    return files[0][1]


def written(d: Path, n: int, prealloc: int = 4096, start: int = 1) -> TxnLog:
    log = TxnLog(d, prealloc_bytes=prealloc)
    for z in range(start, start + n):
        log.append(z, create(z))
    log.sync()
    return log


def zxids(d: Path, start: int = 1) -> list[int]:
    with TxnLog(d) as log:
        return [z for z, _ in log.read_from(start)]


def write_every_type(d: Path) -> TxnLog:
    log = TxnLog(d, prealloc_bytes=4096)
    for z, (op, body) in enumerate(EVERY_TYPE, 1):
        log.append(z, encode_txn(hdr(z, op), body))
    log.sync()
    return log


# ---------------------------------------------------------------- file format
def test_file_is_zookeepers_layout_byte_for_byte(tmp_path):
    txn1, txn2 = create(1), create(2, "/other", b"\0\1")
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    log.append(1, txn1)
    log.append(2, txn2)
    log.sync()
    path = the_file(tmp_path)
    assert path.name == "log.1"
    raw = path.read_bytes()
    expected = b"ZKLG" + struct.pack(">iq", 2, 0)
    for t in (txn1, txn2):
        expected += struct.pack(">qi", zlib.adler32(t), len(t)) + t + b"B"
    assert raw[: len(expected)] == expected
    # preallocated: the rest of the block is zeros, so a reader meets a zero length
    assert len(raw) == 4096 and raw[len(expected):] == bytes(4096 - len(expected))
    log.close()


def test_file_named_by_first_zxid_in_lowercase_hex(tmp_path):
    z = 0x1000000AB
    log = TxnLog(tmp_path)
    log.append(z, create(z))
    log.close()
    assert the_file(tmp_path).name == "log.1000000ab"


def test_preallocation_grows_in_blocks_and_zero_disables_it(tmp_path):
    log = TxnLog(tmp_path / "a", prealloc_bytes=8192)
    big = b"x" * 3000
    for z in range(1, 6):
        log.append(z, create(z, data=big))
        log.sync()
        size = the_file(tmp_path / "a").stat().st_size
        assert size % 8192 == 0 and size >= 16 + z * 3050
    log.close()
    assert zxids(tmp_path / "a") == [1, 2, 3, 4, 5]
    log = TxnLog(tmp_path / "b", prealloc_bytes=0)
    log.append(1, create(1))
    log.close()
    assert the_file(tmp_path / "b").stat().st_size == 16 + 12 + len(create(1)) + 1


def test_reading_stops_at_the_zero_length_of_preallocated_space(tmp_path):
    written(tmp_path, 3, prealloc=1 << 20).close()
    raw = the_file(tmp_path).read_bytes()
    assert len(raw) == 1 << 20
    recs, end, problem = scan(raw)
    assert [r[0] for r in recs] == [1, 2, 3] and problem is None
    assert raw[end:end + 12] == bytes(12)
    assert len(read_used(the_file(tmp_path))) == end


# ---------------------------------------------------------------- round trips
def test_round_trip_across_rolled_files(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    for z in range(1, 13):
        log.append(z, create(z))
        if z % 4 == 0:
            log.roll()
    log.sync()
    assert [f for f, _ in log_files(vdir(tmp_path))] == [1, 5, 9]
    assert [z for z, _ in log.read_from(1)] == list(range(1, 13))
    log.close()
    again = TxnLog(tmp_path)
    assert again.last_zxid() == 12
    assert [z for z, _ in again.read_from(6)] == list(range(6, 13))
    assert [z for z, _ in again.read_from(5)] == list(range(5, 13))
    assert [z for z, _ in again.read_from(13)] == []
    assert [z for z, _ in again.read_from(0)] == list(range(1, 13))
    h, body = decode_txn(dict(again.read_from(7))[7])
    assert h.zxid == 7 and body.path == "/n7"
    # appends after reopening go on in the newest file
    again.append(13, create(13))
    again.close()
    assert [f for f, _ in log_files(vdir(tmp_path))] == [1, 5, 9]
    assert zxids(tmp_path) == list(range(1, 14))


def test_roll_without_appends_makes_no_file(tmp_path):
    log = written(tmp_path, 2)
    log.roll()
    log.roll()
    log.sync()
    log.close()
    assert [f for f, _ in log_files(vdir(tmp_path))] == [1]


def test_roll_in_the_middle_of_a_batch_splits_it(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    log.append(1, create(1))
    log.append(2, create(2))
    log.roll()
    log.append(3, create(3))
    log.sync()  # one sync, two files
    log.close()
    files = log_files(vdir(tmp_path))
    assert [f for f, _ in files] == [1, 3]
    assert [e.header.zxid for e in read_log_file(files[0][1])] == [1, 2]
    assert [e.header.zxid for e in read_log_file(files[1][1])] == [3]


def test_unsynced_appends_are_not_read_and_not_durable(tmp_path):
    log = written(tmp_path, 2)
    log.append(3, create(3))
    assert log.last_zxid() == 3
    assert [z for z, _ in log.read_from(1)] == [1, 2]
    assert zxids(tmp_path) == [1, 2]  # another reader, as after a crash
    log.sync()
    assert [z for z, _ in log.read_from(1)] == [1, 2, 3]
    log.close()


def test_append_rejects_zxids_out_of_order_or_mismatched(tmp_path):
    log = written(tmp_path, 3)
    with pytest.raises(ValueError, match="does not follow"):
        log.append(3, create(3))
    with pytest.raises(ValueError, match="does not follow"):
        log.append(2, create(2))
    with pytest.raises(ValueError, match="carry zxid"):
        log.append(9, create(8))
    with pytest.raises(JuteError):
        log.append(9, b"short")
    log.close()
    reopened = TxnLog(tmp_path)
    with pytest.raises(ValueError, match="does not follow"):
        reopened.append(3, create(3))
    reopened.close()


def test_empty_directory(tmp_path):
    log = TxnLog(tmp_path)
    assert log.last_zxid() == 0 and list(log.read_from(0)) == []
    log.sync()
    log.close()
    log.close()  # twice is harmless
    assert log_files(vdir(tmp_path)) == []
    with pytest.raises(ValueError, match="closed"):
        log.append(1, create(1))


# ---------------------------------------------------------------- group commit
def _count_syncs(monkeypatch) -> list[str]:
    return count_sync_points(monkeypatch)


def test_group_commit_one_fsync_for_many_appends(tmp_path, monkeypatch):
    log = written(tmp_path, 1)
    calls = _count_syncs(monkeypatch)
    for z in range(2, 502):
        log.append(z, create(z))
    assert calls == []  # append never touches the disk
    log.sync()
    assert len(calls) == 1
    log.append(502, create(502))
    log.sync()
    log.sync()  # nothing buffered: no flush
    assert len(calls) == 2
    log.close()
    assert zxids(tmp_path) == list(range(1, 503))


def test_a_new_file_also_syncs_its_directory_entry(tmp_path, monkeypatch):
    calls = _count_syncs(monkeypatch)
    log = TxnLog(tmp_path)
    for z in range(1, 100):
        log.append(z, create(z))
    log.sync()
    if txnlog.SYNC_WRITE_FLAG:  # the header (written when the file is made), the batch, the directory
        assert sorted(calls) == ["fsync", "sync-write", "sync-write"]
    else:
        assert sorted(calls) == ["fdatasync", "fsync"]  # the file's data, then the directory
    log.close()


def test_force_sync_writes_a_batch_durably_in_one_system_call(tmp_path, monkeypatch):
    """With forceSync the log's files are opened O_DSYNC: a batch is one pwrite that returns once
    it is on disk, with no fdatasync after it. A writer thread gives up the GIL once per batch,
    not twice (between a write and its fdatasync it had to win the GIL back from the event loop)."""
    if not txnlog.SYNC_WRITE_FLAG:
        pytest.skip("no O_DSYNC on this platform")
    log = written(tmp_path, 1)
    assert fcntl.fcntl(log._fd, fcntl.F_GETFL) & txnlog.SYNC_WRITE_FLAG
    calls = _count_syncs(monkeypatch)
    for z in range(2, 52):
        log.append(z, create(z))
    log.sync()
    assert calls == ["sync-write"]
    log.close()
    again = TxnLog(tmp_path)  # a reopened log appends the same way
    assert fcntl.fcntl(again._fd, fcntl.F_GETFL) & txnlog.SYNC_WRITE_FLAG
    calls.clear()
    again.append(52, create(52))
    again.sync()
    assert calls == ["sync-write"]
    again.close()
    assert zxids(tmp_path) == list(range(1, 53))


def test_without_o_dsync_each_batch_is_followed_by_one_fdatasync(tmp_path, monkeypatch):
    monkeypatch.setattr(txnlog, "SYNC_WRITE_FLAG", 0)  # a platform without O_DSYNC
    log = written(tmp_path, 1)
    assert not fcntl.fcntl(log._fd, fcntl.F_GETFL) & getattr(os, "O_DSYNC", 0)
    calls = _count_syncs(monkeypatch)
    for z in range(2, 52):
        log.append(z, create(z))
    log.sync()
    assert calls == ["fdatasync"]
    log.close()
    assert zxids(tmp_path) == list(range(1, 52))


def test_force_sync_false_opens_no_file_for_synchronous_writes(tmp_path):
    log = TxnLog(tmp_path, force_sync=False)
    log.append(1, create(1))
    log.sync()
    assert not fcntl.fcntl(log._fd, fcntl.F_GETFL) & getattr(os, "O_DSYNC", 0)
    log.close()


def test_force_sync_false_never_fsyncs(tmp_path, monkeypatch):
    calls = _count_syncs(monkeypatch)
    log = TxnLog(tmp_path, force_sync=False)
    for z in range(1, 20):
        log.append(z, create(z))
        if z % 5 == 0:
            log.roll()
        log.sync()
    log.close()
    assert calls == []
    assert zxids(tmp_path) == list(range(1, 20))


def test_appends_go_on_while_another_thread_syncs(tmp_path):
    """The server's shape: the event loop appends, an executor thread syncs."""
    log = TxnLog(tmp_path, prealloc_bytes=1 << 16)
    done = threading.Event()
    errors: list[BaseException] = []

    def syncer() -> None:
        try:
            while not done.is_set():
                log.sync()
            log.sync()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=syncer)
    t.start()
    for z in range(1, 3001):
        log.append(z, create(z, data=os.urandom(z % 50)))
        if z % 700 == 0:
            log.roll()
    done.set()
    t.join()
    assert errors == []
    assert [z for z, _ in log.read_from(1)] == list(range(1, 3001))
    log.close()
    assert zxids(tmp_path) == list(range(1, 3001))
    assert len(log_files(vdir(tmp_path))) == 5


def test_a_failed_write_stops_further_writes(tmp_path, monkeypatch):
    log = written(tmp_path, 1)
    log.append(2, create(2))

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        log.sync()
    monkeypatch.undo()
    log.append(3, create(3))
    with pytest.raises(RuntimeError, match="failed earlier"):
        log.sync()
    log.close()
    assert zxids(tmp_path) == [1]


# ---------------------------------------------------------------- recovery
def _frames(path: Path) -> list[tuple[int, int]]:
    """(start, end) byte ranges of each record's frame in a log file."""
    recs, _, _ = scan(read_used(path))
    return [(s - 12, e + 1) for _, s, e in recs]


def test_torn_last_record_is_dropped_at_every_cut(tmp_path):
    written(tmp_path / "src", 5).close()
    src = the_file(tmp_path / "src")
    whole = read_used(src)
    start5, end5 = _frames(src)[4]
    for cut in range(start5, end5):
        for pad in (b"", bytes(4096)):  # cut at the end of file, or inside preallocated zeros
            d = tmp_path / f"cut{cut}-{len(pad)}"
            vdir(d).mkdir(parents=True)
            path = vdir(d) / src.name
            path.write_bytes(whole[:cut] + pad)
            log = TxnLog(d)
            assert log.last_zxid() == 4, cut
            # a torn record is cut off, so the next append starts clean (the checksum's
            # first four bytes are always zero: a cut there leaves only zeros behind)
            assert not any(path.read_bytes()[start5:])
            assert cut <= start5 + 4 or path.stat().st_size == start5
            assert [z for z, _ in log.read_from(1)] == [1, 2, 3, 4]
            log.append(5, create(5, "/again"))
            log.close()
            assert zxids(d) == [1, 2, 3, 4, 5]
            assert decode_txn(dict(TxnLog(d).read_from(5))[5])[1].path == "/again"


def test_a_bad_checksum_on_the_last_record_is_a_torn_write(tmp_path):
    written(tmp_path, 5).close()
    path = the_file(tmp_path)
    start5, end5 = _frames(path)[4]
    for at in (start5, start5 + 9, start5 + 12, start5 + 40, end5 - 2, end5 - 1):
        data = bytearray(path.read_bytes())
        data[at] ^= 0x5A
        d = tmp_path / f"flip{at}"
        vdir(d).mkdir(parents=True)
        (vdir(d) / path.name).write_bytes(bytes(data))
        assert zxids(d) == [1, 2, 3, 4], at


def test_garbage_after_the_last_record_is_dropped(tmp_path):
    written(tmp_path, 3).close()
    path = the_file(tmp_path)
    end = _frames(path)[-1][1]
    data = path.read_bytes()
    path.write_bytes(data[:end] + b"\x17" * 40 + data[end + 40:])
    assert zxids(tmp_path) == [1, 2, 3]
    assert path.stat().st_size == end


def test_a_file_cut_inside_its_header_is_removed(tmp_path):
    for cut in range(0, 16):
        d = tmp_path / f"h{cut}"
        vdir(d).mkdir(parents=True)
        (vdir(d) / "log.1").write_bytes(HEADER[:cut])
        log = TxnLog(d)
        assert log.last_zxid() == 0 and log_files(vdir(d)) == []
        log.append(1, create(1))
        log.close()
        assert zxids(d) == [1]


def test_an_older_file_survives_when_the_newest_is_empty(tmp_path):
    written(tmp_path, 3).close()
    (vdir(tmp_path) / "log.4").write_bytes(HEADER)
    log = TxnLog(tmp_path)
    assert log.last_zxid() == 3 and [f for f, _ in log_files(vdir(tmp_path))] == [1]
    log.close()


def test_damage_in_the_middle_names_the_file_and_byte_offset(tmp_path):
    written(tmp_path / "src", 5).close()
    src = the_file(tmp_path / "src")
    frames = _frames(src)
    start2 = frames[1][0]
    cases = {
        "payload bit flip": (start2 + 40, 0x01),
        "checksum": (start2 + 3, 0xFF),
        "length too long": (start2 + 11, 0x40),
        "length too short": (start2 + 11, 0x3F),
        "end-of-record byte": (frames[1][1] - 1, 0x01),
    }
    for what, (at, mask) in cases.items():
        d = tmp_path / what.replace(" ", "-")
        vdir(d).mkdir(parents=True)
        data = bytearray(src.read_bytes())
        data[at] ^= mask
        path = vdir(d) / src.name
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptLogError) as exc:
            TxnLog(d)
        assert exc.value.offset == start2, what
        assert str(path) in str(exc.value) and f"byte offset {start2}" in str(exc.value), what
        assert path.read_bytes() == bytes(data), "a corrupt log must not be modified"


def test_a_zeroed_record_followed_by_valid_ones_is_corruption(tmp_path):
    written(tmp_path, 5).close()
    path = the_file(tmp_path)
    s, e = _frames(path)[2]
    data = bytearray(path.read_bytes())
    data[s:e] = bytes(e - s)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match=f"byte offset {s}"):
        TxnLog(tmp_path)


def test_damage_in_an_older_file_is_found_when_reading(tmp_path):
    log = written(tmp_path, 4)
    log.roll()
    for z in range(5, 9):
        log.append(z, create(z))
    log.close()
    old = log_files(vdir(tmp_path))[0][1]
    s, _ = _frames(old)[1]
    data = bytearray(old.read_bytes())
    data[s + 50] ^= 0xFF
    old.write_bytes(bytes(data))
    log = TxnLog(tmp_path)  # the newest file is fine, so opening works
    assert log.last_zxid() == 8
    assert [z for z, _ in log.read_from(5)] == [5, 6, 7, 8]
    with pytest.raises(CorruptLogError) as exc:
        list(log.read_from(1))
    assert exc.value.path == str(old) and exc.value.offset == s
    log.close()


def test_a_torn_tail_in_an_older_file_is_skipped_like_zookeeper(tmp_path):
    # ZooKeeper does not truncate on restart: it starts a new file after a torn one
    log = written(tmp_path, 4)
    log.close()
    old = the_file(tmp_path)
    s, _ = _frames(old)[3]
    old.write_bytes(old.read_bytes()[: s + 20])
    log = TxnLog(tmp_path)
    log.roll()
    log.append(4, create(4, "/retry"))
    log.close()
    # reopening truncated the tail of what was then the newest file; tear it again
    old.write_bytes(old.read_bytes() + b"\x01\x02\x03")
    assert zxids(tmp_path) == [1, 2, 3, 4]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(0, 300), min_size=1, max_size=12), data=st.data())
def test_a_crash_that_loses_any_tail_leaves_a_prefix(tmp_path_factory, sizes, data):
    d = tmp_path_factory.mktemp("crash")
    log = TxnLog(d, prealloc_bytes=4096)
    for z, n in enumerate(sizes, 1):
        log.append(z, create(z, data=bytes([z % 251]) * n))
    log.close()
    path = the_file(d)
    raw = read_used(path)
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    path.write_bytes(raw[:cut] + data.draw(st.sampled_from([b"", bytes(100)]), label="pad"))
    got = zxids(d)
    assert got == list(range(1, len(got) + 1))
    complete = [e for _, e in _frames_of(raw)]
    assert len(got) == sum(1 for e in complete if e <= cut)


def _frames_of(raw: bytes) -> list[tuple[int, int]]:
    recs, _, _ = scan(raw)
    return [(s - 12, e + 1) for _, s, e in recs]


# ---------------------------------------------------------------- truncate
def test_truncate_inside_the_newest_file(tmp_path):
    log = written(tmp_path, 8)
    log.truncate(5)
    assert log.last_zxid() == 5
    assert [z for z, _ in log.read_from(1)] == [1, 2, 3, 4, 5]
    log.append(6, create(6, "/other"))
    log.close()
    assert zxids(tmp_path) == [1, 2, 3, 4, 5, 6]
    assert decode_txn(dict(TxnLog(tmp_path).read_from(6))[6])[1].path == "/other"


def test_truncate_across_files_deletes_later_ones(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    for z in range(1, 13):
        log.append(z, create(z))
        if z % 4 == 0:
            log.roll()
    log.sync()
    log.truncate(6)
    assert [f for f, _ in log_files(vdir(tmp_path))] == [1, 5]
    assert [z for z, _ in log.read_from(1)] == list(range(1, 7))
    assert log.last_zxid() == 6
    log.append(7, create(7))
    log.close()
    assert zxids(tmp_path) == list(range(1, 8))


def test_truncate_to_a_file_boundary_and_to_zero(tmp_path):
    log = TxnLog(tmp_path, prealloc_bytes=4096)
    for z in range(1, 9):
        log.append(z, create(z))
        if z == 4:
            log.roll()
    log.sync()
    log.truncate(4)
    assert [f for f, _ in log_files(vdir(tmp_path))] == [1] and log.last_zxid() == 4
    log.truncate(0)
    assert log_files(vdir(tmp_path)) == [] and log.last_zxid() == 0
    log.append(1, create(1, "/fresh"))
    log.close()
    assert zxids(tmp_path) == [1]


def test_truncate_drops_buffered_txns_past_the_point(tmp_path):
    log = written(tmp_path, 3)
    log.append(4, create(4))
    log.append(5, create(5))
    log.truncate(4)
    log.close()
    assert zxids(tmp_path) == [1, 2, 3, 4]


def test_truncate_beyond_the_end_changes_nothing(tmp_path):
    log = written(tmp_path, 3)
    log.truncate(99)
    assert log.last_zxid() == 3
    log.close()
    assert zxids(tmp_path) == [1, 2, 3]


# ---------------------------------------------------------------- generated sequences
PATHS = st.text("abcé/", min_size=1, max_size=8).map(lambda s: "/" + s.strip("/"))
BODIES = st.one_of(
    st.builds(lambda p, d, e, v: (Op.create, CreateTxn(p, d, OPEN, e, v)), PATHS, st.binary(max_size=40),
              st.booleans(), st.integers(-5, 5)),
    st.builds(lambda p, d, v: (Op.setData, SetDataTxn(p, d, v)), PATHS, st.binary(max_size=40), st.integers(-1, 9)),
    st.builds(lambda p: (Op.delete, DeleteTxn(p)), PATHS),
    st.builds(lambda t: (Op.createSession, CreateSessionTxn(t)), st.integers(0, 60000)),
    st.builds(lambda ps: (Op.closeSession, CloseSessionTxn(ps)), st.lists(PATHS, max_size=3)),
    st.just((Op.closeSession, None)),
    st.builds(lambda e: (Op.error, ErrorTxn(e)), st.integers(-130, 0)),
    st.builds(lambda p, t: (Op.createTTL, CreateTTLTxn(p, b"", OPEN, 0, t)), PATHS, st.integers(1, 2**40 - 1)),
)
STEPS = st.lists(st.tuples(BODIES, st.sampled_from(["", "", "", "sync", "roll"])), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS, gap=st.integers(1, 3), start=st.integers(0, 0xFFFFFFFF))
def test_generated_txn_sequences_round_trip(tmp_path_factory, steps, gap, start):
    d = tmp_path_factory.mktemp("seq")
    log = TxnLog(d, prealloc_bytes=1024)
    expect = []
    z = start
    for (op, body), action in steps:
        z += gap
        raw = encode_txn(hdr(z, op), body)
        log.append(z, raw)
        expect.append((z, raw))
        if action == "sync":
            log.sync()
        elif action == "roll":
            log.roll()
    log.close()
    again = TxnLog(d)
    assert again.last_zxid() == z
    assert list(again.read_from(0)) == expect
    middle = expect[len(expect) // 2][0]
    assert list(again.read_from(middle)) == [e for e in expect if e[0] >= middle]
    assert [decode_txn(raw)[1] for _, raw in again.read_from(0)] == [b for (_, b), _ in steps]
    again.close()


# ---------------------------------------------------------------- Apache ZooKeeper
def _java(*args: str) -> subprocess.CompletedProcess:
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    return subprocess.run(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", refzk.classpath(), *args],
                          capture_output=True, text=True, timeout=120)


def _toolkit(path: Path) -> list[str]:
    out = _java("org.apache.zookeeper.server.persistence.TxnLogToolkit", str(path))
    assert out.returncode == 0, out.stderr
    # a multi-line txn (an ACL list) continues on the next line; join those back
    lines: list[str] = []
    for line in out.stdout.splitlines():
        if lines and not (" session 0x" in line or line.startswith(("EOF", "ZooKeeper", "CRC"))):
            lines[-1] += line
        else:
            lines.append(line)
    return lines


@pytest.mark.reference
def test_zookeepers_txn_log_toolkit_lists_every_txn_we_wrote(tmp_path):
    write_every_type(tmp_path).close()
    lines = _toolkit(the_file(tmp_path))
    assert lines[0] == "ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"
    assert lines[-1] == "EOF reached after 12 txns."
    body = lines[1:-1]
    assert len(body) == 12
    for z, line in enumerate(body, 1):
        assert f"session 0x{SID:x} cxid 0x{z:x} zxid 0x{z:x} " in line
    expected = ["createSession 30000", "create /a,hi,[31,s{'world,'anyone}],false,1",
                "create2 /e,,[31,s{'world,'anyone}],true,2", "createContainer /c,x,[31,s{'world,'anyone}],3",
                "createTtl /t,y,[31,s{'world,'anyone}],4,5000", "setData /a,bye,1",
                "setACL '/a,v{s{1,s{'digest,'u:x}}},1", "multi create:", "error -101",
                "deleteContainer '/c", "delete '/t", "closeSession v{'/e}"]
    for line, want in zip(body, expected, strict=True):
        assert want in line, (want, line)
    # the toolkit prints each multi op's raw txn bytes after its type name
    assert "\x02/m" in body[7] and ";check:" in body[7] and ";delete:" in body[7]


@pytest.mark.reference
def test_zookeeper_reads_our_log_after_torn_tail_recovery_and_rolls(tmp_path):
    log = written(tmp_path, 5)
    log.close()
    path = the_file(tmp_path)
    start5, _ = _frames(path)[4]
    path.write_bytes(path.read_bytes()[: start5 + 7])
    log = TxnLog(tmp_path)
    log.append(5, create(5, "/recovered"))
    log.roll()
    log.append(6, create(6))
    log.close()
    files = log_files(vdir(tmp_path))
    first = _toolkit(files[0][1])
    assert first[-1] == "EOF reached after 5 txns." and "create /recovered," in first[5]
    assert _toolkit(files[1][1])[-1] == "EOF reached after 1 txns."


@pytest.mark.reference
def test_zookeeper_flags_the_same_record_we_call_corrupt(tmp_path):
    written(tmp_path, 4).close()
    path = the_file(tmp_path)
    s, e = _frames(path)[1]
    data = bytearray(path.read_bytes())
    data[e - 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError) as exc:
        TxnLog(tmp_path)
    assert exc.value.offset == s and "zxid 0x2" in str(exc.value)
    crc_errors = [line for line in _toolkit(path) if line.startswith("CRC ERROR")]
    assert len(crc_errors) == 1 and "zxid 0x2 " in crc_errors[0]


@pytest.mark.reference
def test_we_read_the_txn_log_a_real_zookeeper_wrote(tmp_path):
    from kazoo.client import KazooClient

    with refzk.RefZooKeeper() as ref:
        c = KazooClient(ref.address)
        c.start()
        try:
            c.create("/p", b"1")
            c.create("/p/e", b"", ephemeral=True)
            c.create("/p/s-", b"", sequence=True)
            c.set("/p", b"2")
            t = c.transaction()
            t.create("/m", b"x")
            t.check("/p", 1)
            t.commit()
            c.delete("/m")
            session = c.client_id[0]
        finally:
            c.stop()
            c.close()
        ref.stop()
        ddir = ref.workdir / "data"
        log = TxnLog(ddir)
        entries = [decode_txn_entry(raw) for _, raw in log.read_from(0)]
        log.close()
    ops = [(e.header.type, getattr(e.body, "path", None)) for e in entries]
    assert ops == [(Op.createSession, None), (Op.create, "/p"), (Op.create, "/p/e"),
                   (Op.create, "/p/s-0000000001"), (Op.setData, "/p"), (Op.multi, None),
                   (Op.delete, "/m"), (Op.closeSession, None)]
    assert all(e.header.clientId == session for e in entries)
    assert [e.header.zxid for e in entries] == list(range(1, 9))
    assert entries[2].body.ephemeral is True and entries[4].body.data == b"2"
    assert decode_multi_txn(entries[5].body) == [(Op.create, CreateTxn("/m", b"x", OPEN, False, 2)),
                                                 (Op.check, CheckVersionTxn("/p", 2))]  # ZooKeeper logs version + 1
    assert entries[7].body == CloseSessionTxn(["/p/e"])
    # 3.8 appends a TxnDigest to every txn; our reader takes it apart
    assert all(e.digest is not None and e.digest.version == 2 for e in entries)


def test_a_run_of_txns_apache_logged_twice_is_read_once(tmp_path):
    # Apache 3.8.0 can log a run of txns a second time when it rejoins by DIFF under writes
    # ("Current zxid X is <= Y" in its log); it reads such a log back, and so must we
    raw = HEADER + b"".join(frame(create(z)) for z in (1, 2, 3, 2, 3, 4))
    vdir(tmp_path).mkdir()
    (vdir(tmp_path) / "log.1").write_bytes(raw)
    assert [z for z, _, _ in scan(raw)[0]] == [1, 2, 3, 4]
    log = TxnLog(tmp_path)
    assert log.last_zxid() == 4
    assert [z for z, _ in log.read_from(1)] == [1, 2, 3, 4]
    assert [z for z, _ in log.read_from(3)] == [3, 4]
    log.append(5, create(5))
    log.close()
    assert zxids(tmp_path) == [1, 2, 3, 4, 5]


def test_a_file_that_repeats_the_tail_of_the_one_before_is_read_once(tmp_path):
    vdir(tmp_path).mkdir()
    (vdir(tmp_path) / "log.1").write_bytes(HEADER + b"".join(frame(create(z)) for z in (1, 2, 3, 4)))
    (vdir(tmp_path) / "log.3").write_bytes(HEADER + b"".join(frame(create(z)) for z in (3, 4, 5)))
    assert zxids(tmp_path) == [1, 2, 3, 4, 5]
    assert zxids(tmp_path, start=4) == [4, 5]
