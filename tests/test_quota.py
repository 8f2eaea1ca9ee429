"""Quotas as Apache ZooKeeper 3.8 keeps them (server/quota.py): the pure bookkeeping, then the
same request sequences sent to the real Apache 3.8.0 and to zkops (usage in zookeeper_stats,
QuotaExceeded with zookeeper.enforceQuota, the warning lines), and usage across restarts."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support import refzk
from tests.support.ourzk import InProcessServer, ZkopsProcess
from zkops.server.datatree import DataTree, Node
from zkops.server.quota import PrefixIndex, QuotaExceeded, RateLogger, StatsTrack

Q = "/zookeeper/quota"


# ---------------------------------------------------------------- the pure module
def test_stats_track_reads_and_writes_apache_text():
    st = StatsTrack.parse(b"count=4,bytes=5=;countHardLimit=10;byteHardLimit=-1")
    assert (st.get("count"), st.get("bytes"), st.get("countHardLimit"), st.get("byteHardLimit")) == (4, 5, 10, -1)
    assert str(st) == "count=4,bytes=5=;byteHardLimit=-1;countHardLimit=10"
    assert str(StatsTrack.parse(b"count=0,bytes=0")) == "count=0,bytes=0"
    assert str(StatsTrack.parse(b"")) == "count=-1,bytes=-1"
    assert StatsTrack.parse(b"count=,bytes=3").get("count") == -1
    assert StatsTrack.parse(b"count=x,bytes=3").get("bytes") == 3  # a bad pair is skipped


def test_prefix_index_keeps_apaches_rules():
    idx = PrefixIndex()
    idx.add("/a")
    idx.add("/a/b/c")
    assert idx.deepest("/a/b/c/d") == "/a/b/c" and idx.deepest("/a/b") == "/a" and idx.deepest("/x") == "/"
    assert idx.deepest("/a/ /b/c") == "/a/b/c"  # blank components do not count
    idx.delete("/a")  # takes every quota below it along
    assert idx.deepest("/a/b/c/d") == "/" and idx.paths() == []


def test_usage_follows_creates_sets_and_deletes_in_the_tree():
    t = DataTree()
    t.create("/a", b"12345", [], 0, -1, 1, 0)
    t.create(f"{Q}/a", None, [], 0, -1, 2, 0)
    t.create(f"{Q}/a/zookeeper_limits", b"count=2,bytes=-1", [], 0, -1, 3, 0)
    t.create(f"{Q}/a/zookeeper_stats", b"count=0,bytes=0", [], 0, -1, 4, 0)
    def stats() -> Node:  # a node is looked up again after each change (a changed leaf is a new object)
        return t.nodes[f"{Q}/a/zookeeper_stats"]

    assert stats().data == b"count=1,bytes=5" and stats().version == 0
    t.create("/a/b", b"xy", [], 0, -1, 5, 0)
    t.set_data("/a/b", b"wxyz", 1, 6, 0)
    assert stats().data == b"count=2,bytes=9"
    t.delete("/a/b", 7)
    assert stats().data == b"count=1,bytes=5" and stats().mzxid == 4
    warnings = t.quotas.check(t, "/a/c", None, b"123", True)
    assert warnings == []  # soft limit 2: the second node is still within it
    t.create("/a/c", b"123", [], 0, -1, 8, 0)
    assert t.quotas.check(t, "/a/d", None, b"", True) == [
        "Quota exceeded: /a [current count=3, softCountLimit=2]"]
    t.set_data(f"{Q}/a/zookeeper_limits", b"count=-1,bytes=-1=;byteHardLimit=9;countHardLimit=-1", 1, 9, 0)
    with pytest.raises(QuotaExceeded) as exc:
        t.quotas.check(t, "/a/c", b"123", b"12345678", False)
    assert exc.value.warnings == ["Quota exceeded: /a [current bytes=13, hardByteLimit=9]"]
    # a snapshot load counts every quota again, whatever its stats node said
    t.replace_data(f"{Q}/a/zookeeper_stats", b"count=0,bytes=0")
    t.snapshot_loaded()
    assert stats().data == b"count=2,bytes=8"


def test_rate_logger_writes_the_first_line_and_counts_repeats():
    lines: list[str] = []
    rl = RateLogger(lines.append)
    rl.log("m1", 0)
    rl.log("m1", 10)
    rl.log("m1", 20)
    rl.log("m1", 200)
    rl.log("m2", 210)
    assert lines == ["Message:m1 Value:null", "[3 times] Message: m1", "Message:m2 Value:null"]


def test_namespace_totals_sum_leaf_limits_and_stats_per_first_component():
    from zkops.server.quota import namespace_totals

    t = DataTree()
    for path, data in (("/a", b"1"), ("/a/b", b""), (f"{Q}/a", None), (f"{Q}/a/zookeeper_limits", b"count=5,bytes=-1"),
                       (f"{Q}/a/zookeeper_stats", b""), (f"{Q}/a/b", None),
                       (f"{Q}/a/b/zookeeper_limits", b"count=-1,bytes=3=;byteHardLimit=8;countHardLimit=-1"),
                       (f"{Q}/a/b/zookeeper_stats", b"")):
        t.create(path, data, [], 0, -1, 1, 0)
    totals = namespace_totals(t)
    # /zookeeper/quota/a has children, so only the leaves count; /a/b's limits add to namespace "a"
    assert totals == {"bytes_limit": {"a": 7}, "count_usage": {"a": 3}, "count_limit": {"a": 4},
                      "bytes_usage": {"a": 1}}


def test_node_count_counts_the_root_twice_as_apache():
    assert DataTree().node_count() == 5


# ---------------------------------------------------------------- the same requests to Apache and zkops
def _quota(zk: KazooClient, path: str, limits: str) -> None:
    """What zkCli's setquota sends for a path with no quota yet."""
    zk.ensure_path(Q + path)
    zk.create(f"{Q}{path}/zookeeper_limits", limits.encode())
    zk.create(f"{Q}{path}/zookeeper_stats", b"count=0,bytes=0")


def _stats(zk: KazooClient, path: str) -> object:
    try:
        data, stat = zk.get(f"{Q}{path}/zookeeper_stats")
    except Exception as exc:  # noqa: BLE001 - the error class is the answer
        return type(exc).__name__
    return data.decode(), stat.version, stat.dataLength


def _multi(zk: KazooClient, ops: list[tuple]) -> str:
    tx = zk.transaction()
    for name, *args in ops:
        getattr(tx, name)(*args)
    results = tx.commit()
    return ",".join(type(r).__name__ if isinstance(r, Exception) else "ok" for r in results)


def _usage_sequence(address: str) -> list:
    """Creates, sets and deletes under quotas (nested, on /zookeeper, ephemerals, a multi), with
    the usage read after each step."""
    out: list = []
    zk = KazooClient(address)
    zk.start()
    other = KazooClient(address)
    other.start()
    try:
        def step(name: str, fn, *watched: str) -> None:
            try:
                r = fn()
                value = r if isinstance(r, (str, bytes, bool, type(None))) else "ok"
            except Exception as exc:  # noqa: BLE001 - the error class is the answer
                value = type(exc).__name__
            out.append((name, value, [_stats(zk, w) for w in watched]))

        step("root", lambda: zk.create("/u", b"root-data"))
        step("child", lambda: zk.create("/u/a", b"0123456789"))
        step("quota", lambda: _quota(zk, "/u", "count=5,bytes=-1"), "/u")
        step("grand", lambda: zk.create("/u/a/b", b"x" * 33), "/u")
        step("set", lambda: zk.set("/u/a", b""), "/u")
        step("set-null", lambda: zk.set("/u/a/b", b"abc"), "/u")
        step("eph", lambda: other.create("/u/e", b"ephemeral!", ephemeral=True), "/u")
        step("seq", lambda: zk.create("/u/s-", b"12", sequence=True), "/u")
        step("multi", lambda: _multi(zk, [("create", "/u/m", b"1234"), ("set_data", "/u/a", b"77"),
                                          ("delete", "/u/a/b")]), "/u")
        step("close-other", lambda: other.stop(), "/u")
        step("nested", lambda: _quota(zk, "/u/a", "count=-1,bytes=100"), "/u", "/u/a")
        step("under-nested", lambda: zk.create("/u/a/c", b"nested"), "/u", "/u/a")
        step("hand-set", lambda: zk.set(f"{Q}/u/zookeeper_stats", b"count=0,bytes=0"), "/u", "/u/a")
        step("after-hand-set", lambda: zk.create("/u/z", b"zz"), "/u", "/u/a")
        step("drop-nested", lambda: zk.delete(f"{Q}/u/a/zookeeper_limits"), "/u", "/u/a")
        step("no-longer-charged", lambda: zk.create("/u/a/d", b"dd"), "/u", "/u/a")
        step("on-zookeeper", lambda: _quota(zk, "/zookeeper", "count=1,bytes=-1"), "/zookeeper")
        step("quota-under-zk", lambda: _quota(zk, "/v", "count=1,bytes=-1"), "/zookeeper", "/v")
        step("drop-u", lambda: [zk.delete(f"{Q}/u/{n}") for n in ("zookeeper_limits", "zookeeper_stats")],
             "/zookeeper")
        step("u-free", lambda: zk.create("/u/free", b"f"), "/u")
    finally:
        other.stop()
        zk.stop()
    return out


def _enforcement_sequence(address: str) -> list:
    out: list = []
    zk = KazooClient(address)
    zk.start()
    try:
        def step(name: str, fn) -> None:
            try:
                fn()
                value = "ok"
            except Exception as exc:  # noqa: BLE001 - the error class is the answer
                value = type(exc).__name__
            out.append((name, value, _stats(zk, "/h"), _stats(zk, "/s")))

        zk.create("/h", b"12345")
        zk.create("/s", b"")
        step("hard", lambda: _quota(zk, "/h", "count=-1,bytes=-1=;byteHardLimit=20;countHardLimit=3"))
        step("soft", lambda: _quota(zk, "/s", "count=2,bytes=4"))
        step("c1", lambda: zk.create("/h/a", b"xx"))
        step("c2", lambda: zk.create("/h/b", b"yyyy"))
        step("c3-count", lambda: zk.create("/h/c", b""))
        step("s1", lambda: zk.set("/h/a", b"0123456789"))
        step("s2-bytes", lambda: zk.set("/h/a", b"0123456789012345"))
        step("s3-shrink", lambda: zk.set("/h/a", b""))
        step("bad-version-first", lambda: zk.set("/h/a", b"0123456789012345678", version=7))
        step("multi", lambda: _multi(zk, [("create", "/h/m", b"1"), ("create", "/h/n", b"2")]))
        step("multi-ok", lambda: _multi(zk, [("set_data", "/h/a", b"1"), ("delete", "/h/b")]))
        step("delete", lambda: zk.delete("/h/b"))
        step("c4", lambda: zk.create("/h/c", b"1"))
        step("soft-count", lambda: [zk.create(f"/s/{i}", b"") for i in range(3)])
        step("soft-bytes", lambda: zk.set("/s/0", b"123456"))
        step("seq-hard", lambda: zk.create("/h/q-", b"", sequence=True))
    finally:
        zk.stop()
    return out


@pytest.fixture(scope="module")
def apache():
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    with refzk.RefZooKeeper(extra_cfg={"enforceQuota": "true"}) as z:
        yield z


@pytest.mark.reference
def test_usage_matches_apache_after_creates_sets_and_deletes():
    with refzk.RefZooKeeper() as z:
        theirs = _usage_sequence(z.address)
    with InProcessServer() as s:
        ours = _usage_sequence(s.address)
    for t, o in zip(theirs, ours, strict=False):
        assert o == t
    assert len(ours) == len(theirs)


@pytest.mark.reference
def test_enforcement_errors_and_warnings_match_apache(apache):
    theirs = _enforcement_sequence(apache.address)
    lines: list[str] = []
    import logging

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = Catch(logging.WARNING)
    logging.getLogger("zkops.server").addHandler(handler)
    try:
        with InProcessServer(enforce_quota=True) as s:
            ours = _enforcement_sequence(s.address)
    finally:
        logging.getLogger("zkops.server").removeHandler(handler)
    for t, o in zip(theirs, ours, strict=False):
        assert o == t
    assert len(ours) == len(theirs)
    apache_log = (apache.workdir / "server.log").read_text(errors="replace")
    theirs_lines = [ln.split(" - ", 1)[1] for ln in apache_log.splitlines() if "Quota exceeded" in ln]
    ours_lines = [ln for ln in lines if "Quota exceeded" in ln]
    assert theirs_lines and _first_lines(ours_lines) == _first_lines(theirs_lines)


def _first_lines(lines: list[str]) -> list[str]:
    """The first line of each message (repeats within 100 ms are counted, so their number depends
    on timing)."""
    return [ln for ln in lines if ln.startswith("Message:")]


def _restart_sequence(server, snapshots: callable) -> list:
    """Usage read before and after restarts: one replayed from the txn log (a stats node set by
    hand keeps its value), one after a snapshot taken behind the hand-set (counted again)."""
    seen: list = []

    def client() -> KazooClient:
        zk = KazooClient(server.address)
        zk.start()
        return zk

    zk = client()
    zk.create("/r", b"abc")
    _quota(zk, "/r", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=100")
    for i in range(3):
        zk.create(f"/r/{i}", b"x" * i)
    zk.set(f"{Q}/r/zookeeper_stats", b"count=0,bytes=0")
    zk.create("/r/after", b"12")
    seen.append(zk.get(f"{Q}/r/zookeeper_stats")[0])
    zk.stop()
    server.stop()
    server.extra_cfg["snapCount"] = "10"  # no snapshot until now; soon from here on
    server.start()
    zk = client()
    seen.append(zk.get(f"{Q}/r/zookeeper_stats")[0])  # replayed from the log: the hand-set stays
    before = snapshots()
    for i in range(30):  # enough writes outside the quota for a snapshot after the hand-set
        zk.create(f"/pad{i}", b"")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (snapshots() - before):
        time.sleep(0.1)
    assert snapshots() - before, "no snapshot was written"
    zk.stop()
    server.stop()
    server.start()
    zk = client()
    seen.append(zk.get(f"{Q}/r/zookeeper_stats")[0])  # loaded from a snapshot: counted again
    zk.stop()
    return seen


@pytest.mark.integration
@pytest.mark.reference
def test_usage_across_restarts_and_snapshots_matches_apache(tmp_path: Path):
    apache = refzk.RefZooKeeper(workdir=tmp_path / "a", extra_cfg={"snapCount": "100000"})
    ours = ZkopsProcess(workdir=tmp_path / "z", extra_cfg={"snapCount": "100000"})
    try:
        apache.start()
        theirs = _restart_sequence(apache, lambda: set((tmp_path / "a" / "data" / "version-2").glob("snapshot.*")))
        ours.start()
        mine = _restart_sequence(ours, lambda: set((ours.data_dir / "version-2").glob("snapshot.*")))
    finally:
        apache.cleanup()
        ours.cleanup()
    assert theirs == [b"count=1,bytes=2", b"count=1,bytes=2", b"count=5,bytes=8"]
    assert mine == theirs


@pytest.mark.integration
def test_an_ensemble_keeps_usage_on_every_member_and_enforces_through_a_follower():
    from kazoo.exceptions import QuotaExceededError

    from tests.support.ensemble import Ensemble

    ens = Ensemble(voters=3, extra={"enforceQuota": "true", "admin.enableServer": "false"})
    ens.start()
    try:
        leader = ens.wait_ready(60)
        follower = next(i for i in ens.ids if i != leader)
        zk = KazooClient(ens.address(follower))
        zk.start()
        try:
            zk.create("/e", b"")
            _quota(zk, "/e", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=2")
            zk.create("/e/1", b"abc")
            with pytest.raises(QuotaExceededError):
                zk.create("/e/2", b"")
        finally:
            zk.stop()
        for i in ens.ids:
            member = KazooClient(ens.address(i))
            member.start()
            try:
                member.sync("/")
                assert member.get(f"{Q}/e/zookeeper_stats")[0] == b"count=2,bytes=3", i
            finally:
                member.stop()
    finally:
        ens.cleanup()


def _data_size_sequence(address: str, port: int) -> tuple[str, str]:
    from tests.support.ensemble import four_letter

    zk = KazooClient(address)
    zk.start()
    try:
        zk.create("/big", b"x" * 100)
        _quota(zk, "/big", "count=1000,bytes=-1")
        for i in range(12):  # the stats text grows; Apache's byte count does not see that
            zk.create(f"/big/{i}", b"y" * 50)
        zk.set("/big/0", b"z" * 7)
        zk.delete("/big/1")
        zk.set(f"{Q}/big/zookeeper_stats", b"count=0")
    finally:
        zk.stop()
    values = dict(line.split("\t", 1) for line in four_letter(port, "mntr").splitlines())
    return values["zk_approximate_data_size"], values["zk_znode_count"]


@pytest.mark.reference
def test_approximate_data_size_and_znode_count_match_apache_around_quota_stats():
    with refzk.RefZooKeeper() as z:
        theirs = _data_size_sequence(z.address, z.port)
    with InProcessServer() as s:
        ours = _data_size_sequence(s.address, s.port)
    assert ours == theirs
