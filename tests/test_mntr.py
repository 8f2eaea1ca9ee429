"""mntr, the AdminServer's monitor, envi and environment: Apache ZooKeeper 3.8's key sets and
orders, compared with real Apache 3.8.0 servers (a standalone one and a leader/follower/observer
ensemble) side by side with zkops servers in the same roles."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from kazoo.client import KazooClient

from tests.support import refzk
from tests.support.ensemble import Ensemble, four_letter, mode
from tests.support.ourzk import ZkopsProcess
from tests.test_quota import _quota
from zkops.server import mntr

pytestmark = [pytest.mark.integration, pytest.mark.reference]

# Keys whose names carry data (a namespace of the tree): present only once that namespace was
# read or written, on either server; left out of the key-set comparison.
PER_NAMESPACE = re.compile(r"_[^_]+(_[^_]+)*_(write|read)_per_namespace$")


def _keys(text: str) -> list[str]:
    return [line.split("\t", 1)[0] for line in text.splitlines() if line]


def _comparable(keys: list[str]) -> list[str]:
    out = []
    for k in keys:
        if k.endswith("_per_namespace"):
            continue
        out.append(re.sub(r"_\d+_learner_handler_", "_<sid>_learner_handler_", k))
    return out


def _get_json(port: int, command: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/{command}", timeout=30) as r:
        return json.loads(r.read())


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _busy(address: str) -> None:
    """The same small load on both servers: a session, writes, reads, a watch."""
    zk = KazooClient(address)
    zk.start()
    try:
        zk.create("/mntr-load", b"x")
        zk.get("/mntr-load", watch=lambda e: None)
        zk.set("/mntr-load", b"y")
        zk.delete("/mntr-load")
        for ns in ("qq", "b", "zz"):  # quotas: Apache's per-namespace quota gauges
            zk.create(f"/{ns}", b"1234")
            _quota(zk, f"/{ns}", "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=9")
        zk.create("/zz/y", b"")
        _quota(zk, "/zz/y", "count=-1,bytes=7")
    finally:
        zk.stop()


def _snapshot(port: int, admin: int) -> dict:
    return {"mntr": four_letter(port, "mntr"), "envi": four_letter(port, "envi"),
            "monitor": _get_json(admin, "monitor"), "environment": _get_json(admin, "environment")}


@pytest.fixture(scope="module")
def standalone_pair():
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    a_admin, z_admin = refzk.free_port(), refzk.free_port()
    apache = refzk.RefZooKeeper(extra_cfg={"admin.enableServer": "true", "admin.serverPort": str(a_admin),
                                           "admin.serverAddress": "127.0.0.1"})
    ours = ZkopsProcess(extra_cfg={"admin.serverPort": str(z_admin), "admin.serverAddress": "127.0.0.1"})
    try:
        apache.start()
        ours.start()
        _busy(apache.address)
        _busy(ours.address)
        yield _snapshot(apache.port, a_admin), _snapshot(ours.port, z_admin)
    finally:
        apache.cleanup()
        ours.cleanup()


def test_standalone_mntr_has_apaches_keys_in_apaches_order(standalone_pair):
    theirs, ours = standalone_pair
    t, o = _keys(theirs["mntr"]), _keys(ours["mntr"])
    assert o[:len(t)] == t
    assert o[len(t):] == [f"zk_{k}" for k in mntr.OWN[:2]]  # fsync_count, last_fsync_time_ms
    values = dict(line.split("\t", 1) for line in ours["mntr"].splitlines())
    assert values["zk_znode_count"] == dict(line.split("\t", 1) for line in theirs["mntr"].splitlines())[
        "zk_znode_count"]  # the same tree, the root counted twice on both
    assert values["zk_server_state"] == "standalone" and values["zk_cnt_readlatency"] != "0"
    apache_values = dict(line.split("\t", 1) for line in theirs["mntr"].splitlines())
    per_namespace = [k for k in t if k.endswith("_per_namespace")]
    assert len([k for k in per_namespace if "_quota_" in k]) == 12
    assert per_namespace and {k: values[k] for k in per_namespace} == {k: apache_values[k] for k in per_namespace}


def test_monitor_is_mntr_as_json(standalone_pair):
    theirs, ours = standalone_pair
    for side in (theirs, ours):
        keys = [k for k in side["monitor"] if k not in ("command", "error")]
        assert keys == [k[3:] for k in _keys(side["mntr"])]
    differ = [k for k, v in ours["monitor"].items()
              if k in theirs["monitor"] and type(v) is not type(theirs["monitor"][k])]
    assert differ == []  # the same JSON types: numbers stay numbers, averages are floats


def test_envi_has_apaches_keys_first_then_ours(standalone_pair):
    theirs, ours = standalone_pair
    t = [line.split("=", 1)[0] for line in theirs["envi"].splitlines()]
    o = [line.split("=", 1)[0] for line in ours["envi"].splitlines()]
    assert t[0] == o[0] == "Environment:"
    assert o[:len(t)] == t and o[len(t):] == ["python.version", "python.implementation", "python.executable"]
    te = [k for k in theirs["environment"] if k not in ("command", "error")]
    oe = [k for k in ours["environment"] if k not in ("command", "error")]
    assert oe[:len(te)] == te == t[1:]


@pytest.fixture(scope="module")
def ensemble_pair():
    """A leader, a follower and an observer of each kind."""
    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    apache = refzk.RefEnsemble(voters=2, observers=1)
    admin = {i: refzk.free_port() for i in (1, 2, 3)}
    ours = Ensemble(voters=2, observers=1, extra={"admin.serverAddress": "127.0.0.1"},
                    per_node={i: {"admin.serverPort": str(p)} for i, p in admin.items()})
    try:
        apache.start()
        ours.start()
        roles = ["follower", "leader", "observer"]
        try:
            _wait(lambda: sorted(mode(apache.client_port(i)) or "" for i in apache.ids) == roles,
                  "Apache's roles", 120)
            ours.wait_ready(120)
            _wait(lambda: sorted(mode(ours.client_port(i)) or "" for i in ours.ids) == roles, "zkops' roles", 120)
        except (AssertionError, TimeoutError) as exc:
            logs = "\n".join((apache.workdir / f"a{i}" / "server.log").read_text(errors="replace")[-1500:]
                             for i in apache.ids)
            raise AssertionError(f"{exc}\n--- Apache\n{logs}\n--- zkops\n{ours.log_tail()}") from None
        leader_port = next(ours.client_port(i) for i in ours.ids if mode(ours.client_port(i)) == "leader")
        # every learner synced, on both sides, before the key sets are read
        _wait(lambda: "zk_synced_observers\t1" in four_letter(leader_port, "mntr"), "zkops' synced observer", 120)
        a_leader = next(apache.client_port(i) for i in apache.ids if mode(apache.client_port(i)) == "leader")
        _wait(lambda: "zk_synced_observers\t1" in four_letter(a_leader, "mntr"), "Apache's synced observer", 120)
        theirs = {mode(apache.client_port(i)): _snapshot(apache.client_port(i), apache.admin_port(i))
                  for i in apache.ids}
        mine = {mode(ours.client_port(i)): _snapshot(ours.client_port(i), admin[i]) for i in ours.ids}
        yield theirs, mine
    finally:
        apache.cleanup()
        ours.cleanup()


@pytest.mark.parametrize("role", ["leader", "follower", "observer"])
def test_ensemble_roles_have_apaches_keys_in_apaches_order(ensemble_pair, role):
    theirs, ours = ensemble_pair
    t = _comparable(_keys(theirs[role]["mntr"]))
    o = _comparable(_keys(ours[role]["mntr"]))
    own = [f"zk_{k}" for k in mntr.OWN]
    assert [k for k in o if k not in own] == t
    assert [k for k in _comparable([f"zk_{k}" for k in ours[role]["monitor"]])
            if k not in own and k not in ("zk_command", "zk_error")] == t
    values = dict(line.split("\t", 1) for line in ours[role]["mntr"].splitlines())
    assert values["zk_server_state"] == role
    assert values["zk_peer_state"] == {"leader": "leading", "follower": "following",
                                       "observer": "observing"}[role] + " - broadcast"
    if role == "leader":
        assert sum(1 for k in values if k.startswith("zk_cnt_") and k.endswith("_learner_handler_qp_size")) == 2
        assert values["zk_learners"] == "2" and values["zk_synced_observers"] == "1"
        assert values["zk_synced_followers"] == "1" and values["zk_synced_non_voting_followers"] == "0"
    if role == "observer":
        leader_id = [k for k in values if k == "zk_observer_master_id"]
        assert leader_id and values["zk_observer_master_id"].isdigit()
