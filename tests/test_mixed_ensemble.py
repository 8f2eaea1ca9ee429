"""Ensembles of zkops and Debian's Apache ZooKeeper 3.8.0 together, on loopback.

zkops speaks Apache's election and quorum protocol, so either kind can lead the other.
Each arrangement: writes through every server, the same tree and Stat on every server,
kill -9 of the leader under a writer with no acknowledged write lost and the killed server
back in sync; observers of either kind; a lagging server synced by DIFF, a fresh one by
SNAP and one with an uncommitted tail by TRUNC, with either kind leading. The default run
keeps one representative (1 Apache + 2 zkops, zkops leading, Apache leading after a kill).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException, NodeExistsError
from kazoo.retry import KazooRetry

from tests.support import refzk
from tests.support.ensemble import four_letter
from tests.support.mixed import MixedEnsemble
from tests.support.rawclient import RawClient

pytestmark = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")

DEADLINE = 90.0


def _client(hosts: str, timeout: float = 20.0) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=timeout, connection_retry={"max_tries": -1, "max_delay": 1},
                    command_retry={"max_tries": -1, "max_delay": 1})
    k.start(timeout=60)
    return k


def _until(probe: Any, timeout: float = DEADLINE, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except (KazooException, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached in {timeout} s: {last!r}")


def _tree(address: str) -> dict[str, tuple]:
    """Every node outside /zookeeper with its data and whole Stat, after a sync."""
    k = _client(address)
    try:
        k.sync("/")
        out: dict[str, tuple] = {}

        def walk(path: str) -> None:
            data, stat = k.get(path)
            out[path] = (data, tuple(stat))
            for child in k.get_children(path):
                p = f"{path.rstrip('/')}/{child}"
                if p != "/zookeeper":
                    walk(p)

        walk("/")
        return out
    finally:
        k.stop()
        k.close()


def _same_everywhere(ens: MixedEnsemble, ids: list[int] | None = None) -> dict[str, tuple]:
    ids = ids or [i for i in ens.ids if i in ens.procs]

    def probe() -> dict[str, tuple] | None:
        trees = {i: _tree(ens.address(i)) for i in ids}
        first = trees[ids[0]]
        return first if all(t == first for t in trees.values()) else None

    return _until(probe, what=f"the same tree on {ids}")


def _start_led_by(kinds: dict[int, str], leader: int, observers: set[int] | None = None,
                  **kw: Any) -> MixedEnsemble:
    """Start ``leader`` (the highest sid) with one other voter first, so it wins, then the rest."""
    ens = MixedEnsemble(kinds, observers=observers, **kw)
    voters = [i for i in ens.ids if i not in ens.observers]
    assert leader == max(voters)
    first = [leader, min(voters)]
    ens.start(*first)
    try:
        got = ens.wait_ready(DEADLINE, ids=first)
        assert got == leader, ens.modes()
        rest = [i for i in ens.ids if i not in first]
        if rest:
            ens.start(*rest)
        ens.wait_ready(DEADLINE)
    except BaseException:
        ens.cleanup()
        raise
    return ens


class _Writer:
    """Creates /w/NNNNN through the given servers and remembers what was acknowledged."""

    def __init__(self, hosts: str) -> None:
        self.client = _client(hosts, timeout=10.0)
        _retried(self.client.ensure_path, "/w")
        self.acked: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.n = 0

    def run(self) -> None:
        while not self.stop.is_set():
            path = f"/w/{self.n:06d}"
            try:
                self.client.create(path, str(self.n).encode())
                self.acked.append(path)
                self.n += 1
            except Exception:  # noqa: BLE001 - a lost connection: the write may or may not have happened
                self.n += 1
                time.sleep(0.05)

    def __enter__(self) -> _Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        self.client.stop()
        self.client.close()


def _retried(op: Any, *args: Any, **kw: Any) -> Any:
    """One write, again after a lost connection (on a loaded machine a server may briefly drop
    its leader, tickTime is 200 ms here); a create that did happen before the loss is left be."""
    try:
        return KazooRetry(max_tries=-1, delay=0.2, max_delay=1, deadline=DEADLINE)(op, *args, **kw)
    except NodeExistsError:
        return None


def _writes_everywhere(ens: MixedEnsemble, tag: str) -> None:
    for i in ens.ids:
        if i not in ens.procs:
            continue
        k = _client(ens.address(i))
        try:
            _retried(k.create, f"/{tag}-{i}", f"{ens.kinds[i]}".encode(), makepath=True)
            _retried(k.set, f"/{tag}-{i}", b"again")
            _retried(k.create, f"/{tag}-{i}/seq-", b"", sequence=True)
            _retried(k.create, f"/{tag}-{i}/eph", b"", ephemeral=True)
        finally:
            k.stop()
            k.close()


def _kill_leader_under_writer(ens: MixedEnsemble) -> None:
    leader = ens.leader()
    assert leader is not None
    others = [i for i in ens.ids if i != leader and i not in ens.observers]
    with _Writer(",".join(ens.address(i) for i in others)) as w:
        _until(lambda: len(w.acked) >= 20, what="20 writes before the kill")
        ens.kill(leader, signal.SIGKILL)
        before = len(w.acked)
        _until(lambda: len(w.acked) >= before + 20, what="20 writes after the kill")
    ens.start(leader)
    ens.wait_ready(DEADLINE)
    tree = _same_everywhere(ens)
    missing = [p for p in w.acked if p not in tree]
    assert not missing, f"acknowledged writes lost: {missing[:5]}"


# ---------------------------------------------------------------- the default representative
def test_one_apache_two_zkops_either_kind_leading() -> None:
    """A zkops leader with an Apache and a zkops follower; a session moves from Apache to zkops;
    kill -9 of the leader under a writer (the survivors elect, usually the Apache server), and
    the killed zkops server comes back in sync from whoever leads."""
    ens = _start_led_by({1: "zkops", 2: "apache", 3: "zkops"}, leader=3)
    try:
        _writes_everywhere(ens, "a")
        _same_everywhere(ens)
        # a session made on Apache moves to zkops with its password (once zkops applied its creation)
        raw = RawClient(ens.address(2))
        k = _client(ens.address(1))
        k.sync("/")
        k.stop()
        k.close()
        moved = RawClient(ens.address(1), session_id=raw.session_id, passwd=raw.connect_response.passwd)
        assert moved.session_id == raw.session_id
        raw.close()
        moved.close()
        # the Apache follower of a zkops leader counts no digest mismatch
        assert "zk_digest_mismatches_count\t0" in four_letter(ens.client_port(2), "mntr")
        _kill_leader_under_writer(ens)
        _writes_everywhere(ens, "b")
        _same_everywhere(ens)
    finally:
        ens.cleanup()


def test_a_zkops_follower_keeps_up_with_an_apache_leader_under_pipelined_writes() -> None:
    """Apache's leader waits for the ACK of every proposal it tracks (syncLimit ticks, here
    1 s) and drops a follower that skips one; a zkops follower whose one fsync covers several
    proposals still acks each of them, so it stays a follower under a pipelined write load."""
    from benchmarks.run import _prepare, measure

    ens = _start_led_by({1: "zkops", 2: "zkops", 3: "apache"}, leader=3)
    try:
        _prepare(ens.address(3))
        for _ in range(3):
            measure([ens.address(1)], "set", 16, 2.0, 8)
        log = (ens.workdir / "n1" / "zkops-server.log").read_text(errors="replace")
        apache = (ens.workdir / "n3" / "stdout.log").read_text(errors="replace")
        assert "lost the connection to leader" not in log, ens.log_tail()
        assert "received before ACK" not in apache, ens.log_tail()
        assert ens.modes()[1] == "follower"
    finally:
        ens.cleanup()


# ---------------------------------------------------------------- every arrangement (slow)
ARRANGEMENTS = [
    pytest.param({1: "apache", 2: "zkops", 3: "zkops"}, id="1apache-2zkops-zkops-leads"),
    pytest.param({1: "zkops", 2: "zkops", 3: "apache"}, id="1apache-2zkops-apache-leads"),
    pytest.param({1: "zkops", 2: "apache", 3: "apache"}, id="2apache-1zkops-apache-leads"),
    pytest.param({1: "apache", 2: "apache", 3: "zkops"}, id="2apache-1zkops-zkops-leads"),
]


@pytest.mark.slow
@pytest.mark.parametrize("kinds", ARRANGEMENTS)
def test_arrangement_writes_stats_and_leader_kill(kinds: dict[int, str]) -> None:
    ens = _start_led_by(kinds, leader=3)
    try:
        _writes_everywhere(ens, "a")
        _same_everywhere(ens)
        _kill_leader_under_writer(ens)
        _writes_everywhere(ens, "b")
        _same_everywhere(ens)
    finally:
        ens.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("kinds", [
    pytest.param({1: "apache", 2: "apache", 3: "apache", 4: "zkops"}, id="zkops-observer-apache-ensemble"),
    pytest.param({1: "zkops", 2: "zkops", 3: "zkops", 4: "apache"}, id="apache-observer-zkops-ensemble"),
])
def test_observer_of_the_other_kind(kinds: dict[int, str]) -> None:
    ens = _start_led_by(kinds, leader=3, observers={4})
    try:
        assert ens.modes()[4] == "observer"
        _writes_everywhere(ens, "o")
        _same_everywhere(ens)
    finally:
        ens.cleanup()


def _append_uncommitted(data_dir: Any) -> None:
    """Add a create of /uncommitted after the last txn of a stopped server's log (either kind's:
    both write Apache's log format)."""
    from zkops.server.codes import Op
    from zkops.server.records import ACL, CreateTxn, Id, TxnHeader
    from zkops.server.txncodec import encode_txn
    from zkops.server.txnlog import TxnLog

    log = TxnLog(data_dir)
    try:
        zxid = log.last_zxid() + 1
        hdr = TxnHeader(0, 0, zxid, int(time.time() * 1000), int(Op.create))
        log.append(zxid, encode_txn(hdr, CreateTxn("/uncommitted", b"tail", [ACL(31, Id("world", "anyone"))],
                                                   False, -1)))
        log.sync()
    finally:
        log.close()


def _sync_kinds() -> Iterator[Any]:
    for leader_kind, other in (("zkops", "apache"), ("apache", "zkops")):
        yield pytest.param({1: other, 2: other, 3: leader_kind}, id=f"{leader_kind}-leads-{other}")


@pytest.mark.slow
@pytest.mark.parametrize("kinds", list(_sync_kinds()))
def test_diff_snap_and_trunc_both_ways(kinds: dict[int, str]) -> None:
    # a small in-memory history on both kinds, so a server far behind needs a SNAP
    ens = _start_led_by(kinds, leader=3, java_props=["-Dzookeeper.commitLogCount=5",
                                                     "-Dzookeeper.snapshotSizeFactor=-1"],
                        env={"ZKOPS_HISTORY_WINDOW": "5"})
    try:
        lagging = 1
        # DIFF: a follower misses a few writes
        ens.kill(lagging, signal.SIGTERM)
        _writes_everywhere(ens, "diff")
        ens.start(lagging)
        ens.wait_ready(DEADLINE)
        _same_everywhere(ens)
        # SNAP: a fresh server (empty dataDir) behind many writes
        ens.kill(lagging, signal.SIGKILL)
        for p in ens.data(lagging).glob("version-2/*"):
            p.unlink()
        k = _client(ens.address(3))
        for n in range(30):
            _retried(k.create, f"/snap-{n}", b"x")
        k.stop()
        k.close()
        ens.start(lagging)
        ens.wait_ready(DEADLINE)
        _same_everywhere(ens)
        # TRUNC: the leader dies with a txn in its log that no one else has (as if it had
        # logged a proposal nobody acknowledged); the others go on; it comes back and must drop it
        leader = ens.leader()
        assert leader == 3
        ens.kill(leader, signal.SIGKILL)
        _append_uncommitted(ens.data(leader))
        followers = [i for i in ens.ids if i != leader]
        ens.wait_ready(DEADLINE, ids=followers)
        k = _client(",".join(ens.address(i) for i in followers))
        _retried(k.create, "/after-the-kill", b"")
        k.stop()
        k.close()
        ens.start(leader)
        ens.wait_ready(DEADLINE)
        tree = _same_everywhere(ens)
        assert "/uncommitted" not in tree and "/after-the-kill" in tree
    finally:
        ens.cleanup()


@pytest.mark.slow
@pytest.mark.parametrize("kinds", list(_sync_kinds()))
def test_leader_dies_with_an_unacknowledged_proposal(kinds: dict[int, str]) -> None:
    """The followers are stopped while the leader proposes, the leader is killed, the followers
    resume (the proposal may still sit in their sockets) and elect; whatever became of the
    proposal, every server ends with the same tree. With a small in-memory history this found a
    learner that forgot logged proposals when a DIFF outgrew its window."""
    ens = _start_led_by(kinds, leader=3, java_props=["-Dzookeeper.commitLogCount=5",
                                                     "-Dzookeeper.snapshotSizeFactor=-1"],
                        env={"ZKOPS_HISTORY_WINDOW": "5"})
    try:
        _writes_everywhere(ens, "before")
        k = KazooClient(hosts=ens.address(3), timeout=10)
        k.start(30)
        followers = [1, 2]
        for i in followers:
            ens.procs[i].send_signal(signal.SIGSTOP)
        try:
            k.create_async("/maybe", b"tail")
            time.sleep(0.5)
            ens.kill(3, signal.SIGKILL)
        finally:
            for i in followers:
                ens.procs[i].send_signal(signal.SIGCONT)
        k.stop()
        k.close()
        ens.wait_ready(DEADLINE, ids=followers)
        _writes_everywhere(ens, "after")
        ens.start(3)
        ens.wait_ready(DEADLINE)
        _same_everywhere(ens)
    finally:
        ens.cleanup()
