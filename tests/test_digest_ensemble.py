"""Txn digests between real servers: a zkops leader sends Apache 3.8's TxnDigest with each
proposal, and every learner (Apache or zkops) compares it with its own tree.

Writes of every kind (create, sequential, ephemeral, container and TTL nodes and their reaping, setData, setACL,
delete, multi, failed multi, error txns, a session closing with ephemerals) go through each
server; the followers' mntr ``zk_digest_mismatches_count`` must stay 0. That they compare at
all is shown by the same run with a leader whose digests are off by one
(``ZKOPS_TEST_DIGEST_SKEW``): then every follower counts mismatches.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError
from kazoo.security import make_acl

from tests.support import refzk
from tests.support.ensemble import four_letter
from tests.support.mixed import MixedEnsemble
from tests.support.ourzk import ZkopsProcess
from tests.support.rawclient import RawClient
from zkops.server.codes import Op
from zkops.server.records import ACL, CreateRequest, CreateTTLRequest, Id

pytestmark = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")

DEADLINE = 90.0
EXTRA = {"znode.container.checkIntervalMs": "500", "extendedTypesEnabled": "true"}
OPEN = [ACL(31, Id("world", "anyone"))]


def _client(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=20, connection_retry={"max_tries": -1, "max_delay": 1},
                    command_retry={"max_tries": -1, "max_delay": 1})
    k.start(timeout=60)
    return k


def _until(probe: Any, what: str, timeout: float = DEADLINE) -> Any:
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


def _start_led_by(kinds: dict[int, str], leader: int, env: dict[str, str] | None = None,
                  observers: set[int] | None = None) -> MixedEnsemble:
    """Start ``leader`` (the highest voter) with the lowest first, so it wins, then the rest."""
    # an Apache leader reaps containers and TTL nodes as often as the JVM property says
    # tickTime 400 ms: a loaded machine does not make followers miss the sync limit
    ens = MixedEnsemble(kinds, extra=EXTRA, env=env, java_props=["-Dznode.container.checkIntervalMs=500"],
                        tick_ms=400, observers=observers)
    first = [leader, min(ens.ids)]
    try:
        ens.start(*first)
        assert ens.wait_ready(DEADLINE, ids=first) == leader, ens.modes()
        ens.start(*[i for i in ens.ids if i not in first])
        ens.wait_ready(DEADLINE)
    except BaseException:
        ens.cleanup()
        raise
    return ens


def _every_kind(address: str, tag: str) -> None:
    """One client's writes of every kind through one server; its session ends with ephemerals."""
    k = _client(address)
    try:
        base = f"/d-{tag}"
        k.create(base, b"base")
        k.create(f"{base}/p", b"x")
        seqs = [k.create(f"{base}/s-", b"s", sequence=True) for _ in range(3)]
        k.create(f"{base}/e", b"eph", ephemeral=True)
        k.create(f"{base}/es-", None, ephemeral=True, sequence=True)
        k.set(f"{base}/p", b"y")
        k.set(f"{base}/p", b"z" * 1000)
        k.set_acls(f"{base}/p", [make_acl("world", "anyone", read=True, write=True, admin=True)])
        raw = RawClient(address)
        try:  # kazoo has no container or TTL create: the raw requests
            for op, req in ((Op.createContainer, CreateRequest(f"{base}/c", b"", OPEN, 4)),
                            (Op.createTTL, CreateTTLRequest(f"{base}/t", b"ttl", OPEN, 5, 500))):
                assert raw.request(op, req)[0].err == 0
        finally:
            raw.close()
        k.create(f"{base}/c/kid", b"k")
        k.delete(f"{base}/c/kid")  # the container is now empty: the leader reaps it
        tx = k.transaction()
        tx.create(f"{base}/m1", b"1")
        tx.set_data(f"{base}/m1", b"2")
        tx.check(f"{base}/p", 2)
        tx.delete(seqs[0])
        assert all(not isinstance(r, Exception) for r in tx.commit())
        bad = k.transaction()
        bad.create(f"{base}/m2", b"never")
        bad.check(f"{base}/p", 99)
        assert any(isinstance(r, BadVersionError) for r in bad.commit())
        with pytest.raises(NodeExistsError):
            k.create(f"{base}/p", b"again")  # an error txn
        k.delete(seqs[1])
        k.set(f"{base}/p", b"", version=2)
    finally:
        k.stop()  # closeSession deletes /e and /es-...
        k.close()


def _mntr(ens: MixedEnsemble, i: int, key: str) -> int:
    for line in four_letter(ens.client_port(i), "mntr", timeout=10).splitlines():
        if line.startswith(f"zk_{key}\t"):
            return int(line.split("\t")[1])
    raise AssertionError(f"no zk_{key} from server {i}")


def _mismatches(ens: MixedEnsemble, i: int) -> int:
    return _mntr(ens, i, "digest_mismatches_count")


def _checked(ens: MixedEnsemble, i: int) -> int:
    """zkops' own count of txn digests it compared (Apache has no such key)."""
    return _mntr(ens, i, "digest_checked_count")


def _write_everywhere(ens: MixedEnsemble) -> None:
    for i in ens.ids:
        _every_kind(ens.address(i), f"{i}")
    k = _client(ens.address(ens.ids[0]))
    try:
        k.set("/", b"root data")  # the root counts as "" in the digest
        k.set_acls("/", [make_acl("world", "anyone", all=True)])
        # every container reaped, every ephemeral gone
        _until(lambda: all(k.exists(f"/d-{i}/{n}") is None for i in ens.ids for n in "cte"),
               "containers and TTL nodes reaped, ephemerals deleted")
    finally:
        k.stop()
        k.close()
    # every follower has applied everything (a sync through each)
    for i in ens.ids:
        c = _client(ens.address(i))
        try:
            c.sync("/")
            assert c.exists("/d-1/c") is None
        finally:
            c.stop()
            c.close()


def _rejoin_fresh(ens: MixedEnsemble, i: int) -> None:
    """Stop server ``i``, empty its dataDir (keeping myid) and start it: it syncs from scratch
    (SNAP or DIFF from the leader), then takes more writes."""
    ens.kill(i)
    data = ens.data(i)
    for p in sorted(data.rglob("*"), reverse=True):
        if p.name != "myid":
            p.unlink() if p.is_file() else p.rmdir()
    ens.start(i)
    ens.wait_ready(DEADLINE)
    _every_kind(ens.address(i), f"fresh{i}")


def test_apache_follower_checks_zkops_leader_digests() -> None:
    """A zkops leader, an Apache and a zkops follower, an Apache observer (digests in INFORM):
    no digest mismatch anywhere."""
    ens = _start_led_by({1: "apache", 2: "zkops", 3: "zkops", 4: "apache"}, leader=3, observers={4})
    try:
        _write_everywhere(ens)
        assert ens.leader() == 3 and ens.modes()[4] == "observer"
        assert {i: _mismatches(ens, i) for i in ens.ids} == {1: 0, 2: 0, 3: 0, 4: 0}, ens.log_tail()
        assert _checked(ens, 2) > 50 and _checked(ens, 3) > 50  # the leader checks its own too
        _rejoin_fresh(ens, 1)
        _rejoin_fresh(ens, 2)
        assert ens.leader() == 3
        assert {i: _mismatches(ens, i) for i in ens.ids} == {1: 0, 2: 0, 3: 0, 4: 0}, ens.log_tail()
        assert _checked(ens, 2) > 10
    finally:
        ens.cleanup()


def test_wrong_digests_are_counted_by_every_follower() -> None:
    """The same with a leader whose digests are off by one: Apache and zkops followers and the
    Apache observer object,
    so the 0 above means their comparisons passed, not that nothing was compared."""
    ens = _start_led_by({1: "apache", 2: "zkops", 3: "zkops", 4: "apache"}, leader=3, observers={4},
                        env={"ZKOPS_TEST_DIGEST_SKEW": "1"})
    try:
        _every_kind(ens.address(1), "skew")
        assert ens.leader() == 3
        _until(lambda: all(_mismatches(ens, i) > 0 for i in (1, 2, 4)),
               "mismatches counted by both followers and the observer")
        assert "digest mismatch on txn" in (ens.workdir / "n2" / "zkops-server.log").read_text(errors="replace")
    finally:
        ens.cleanup()


def test_zkops_ensemble_and_apache_leader_digests_match() -> None:
    """zkops learners check a zkops leader's digests, and an Apache leader's: 0 mismatches."""
    ens = _start_led_by({1: "zkops", 2: "zkops", 3: "zkops"}, leader=3)
    try:
        _write_everywhere(ens)
        assert {i: _mismatches(ens, i) for i in ens.ids} == {1: 0, 2: 0, 3: 0}, ens.log_tail()
        assert all(_checked(ens, i) > 50 for i in ens.ids)
    finally:
        ens.cleanup()
    ens = _start_led_by({1: "zkops", 2: "zkops", 3: "apache"}, leader=3)
    try:
        _write_everywhere(ens)
        assert {i: _mismatches(ens, i) for i in (1, 2)} == {1: 0, 2: 0}, ens.log_tail()
        assert _checked(ens, 1) > 50 and _checked(ens, 2) > 50  # Apache's digests, compared by zkops
        _rejoin_fresh(ens, 1)
        assert ens.leader() == 3
        assert {i: _mismatches(ens, i) for i in (1, 2)} == {1: 0, 2: 0}, ens.log_tail()
        assert _checked(ens, 1) > 10
    finally:
        ens.cleanup()


def test_logged_digests_replay_in_apache_without_mismatch(tmp_path: Any) -> None:
    """A standalone zkops server logs each txn with the digest the tree has after it (Apache's
    txn log layout); Apache 3.8 replays that log comparing them: 0 mismatches, same tree."""
    from zkops.server.digest import to_long
    from zkops.server.txncodec import decode_txn_entry
    from zkops.server.txnlog import TxnLog

    common = {"dataDir": str(tmp_path / "data"), "znode.container.checkIntervalMs": "500"}
    ours = ZkopsProcess(extra_cfg=dict(common), workdir=tmp_path / "zkops")
    ours.start(timeout=60)
    try:
        _every_kind(ours.address, "solo")
        k = _client(ours.address)
        try:
            _until(lambda: all(k.exists(f"/d-solo/{n}") is None for n in "cte"), "containers and TTL reaped")
            k.set("/", b"root")
            want = {p: k.get(p)[0] for p in ("/", "/d-solo/p", "/d-solo/m1")}
        finally:
            k.stop()
            k.close()
    finally:
        ours.stop()
    log = TxnLog(tmp_path / "data", force_sync=False)
    try:
        entries = [decode_txn_entry(data) for _, data in log.read_from(1)]
    finally:
        log.close()
    assert len(entries) > 20 and all(e.digest is not None and e.digest.version == 2 for e in entries)
    tree = _tree_on_disk(tmp_path / "data")
    assert entries[-1].digest is not None and entries[-1].digest.treeDigest == to_long(tree.tree_digest())
    # no snapshot was written (snapCount not reached): Apache replays the whole log from an
    # empty tree, comparing every txn's digest
    ref = refzk.RefZooKeeper(extra_cfg={**common, "snapshot.trust.empty": "true"}, workdir=tmp_path / "apache")
    ref.start()
    try:
        mntr = _mntr_of(ref.port)
        assert mntr["zk_digest_mismatches_count"] == "0", (ref.workdir / "server.log").read_text()
        k = _client(ref.address)
        try:
            assert {p: k.get(p)[0] for p in want} == want
        finally:
            k.stop()
            k.close()
    finally:
        ref.stop()


def _tree_on_disk(data: Any) -> Any:
    """The tree a restart would load from ``data``."""
    from zkops.server.database import Database

    db = Database.open(data, force_sync=False)
    try:
        return db.tree
    finally:
        db.close()


def _mntr_of(port: int) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in four_letter(port, "mntr", timeout=10).splitlines() if "\t" in line)
