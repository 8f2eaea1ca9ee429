"""Dynamic reconfiguration.

A standalone server refuses reconfig requests as Apache does: RECONFIGDISABLED unless
reconfigEnabled, else UNIMPLEMENTED. An ensemble changes its membership: /zookeeper/config in Apache's exact text,
servers joining and leaving for real, the dynamic config file a restart starts from, and the
same answers as a real Apache 3.8 ensemble for the same requests.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    UnimplementedError,
    ZookeeperError,
)
from kazoo.retry import KazooRetry

from tests.support.ourzk import InProcessServer
from zkops.server.acl import digest

OBSERVER = "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456"


def _wait_mode(port: int, want: str, workdir: Path, timeout: float = 90.0) -> None:
    """Poll ``srvr`` until the server on ``port`` says ``want``; fail with its log's tail."""
    from tests.support.ensemble import mode

    deadline = time.monotonic() + timeout
    while mode(port) != want:
        if time.monotonic() > deadline:
            logs = [p.read_text(errors="replace")[-3000:] for p in sorted(workdir.glob("*.out")) + sorted(workdir.glob("*.log"))]
            raise AssertionError(f"the server on {port} is not {want} after {timeout} s\n" + "\n".join(logs))
        time.sleep(0.2)


def _create_retried(zk: KazooClient, path: str, data: bytes) -> None:
    """A create retried after a lost connection (an election under way); one that did happen is left be."""
    try:
        KazooRetry(max_tries=-1, delay=0.2, max_delay=1, deadline=90)(zk.create, path, data)
    except NodeExistsError:
        pass


def test_disabled_by_default():
    with InProcessServer() as s:
        zk = KazooClient(s.address)
        zk.start()
        try:
            with pytest.raises(ZookeeperError) as exc:
                zk.reconfig(joining=OBSERVER, leaving=None, new_members=None)
            assert type(exc.value).__name__ == "ReconfigDisabledError" or exc.value.code == -123
        finally:
            zk.stop()


def test_standalone_refuses_every_reconfig_as_unimplemented():
    # Apache 3.8 standalone with reconfigEnabled checks nothing else: UNIMPLEMENTED for bad
    # arguments, a wrong version and a caller without the ACL alike (compared with a real one
    # in tests/test_fuzz_differential.py)
    with InProcessServer(reconfig_enabled=True, super_digest=digest("super:test")) as s:
        anyone = KazooClient(s.address)
        admin = KazooClient(s.address, auth_data=[("digest", "super:test")])
        anyone.start()
        admin.start()
        try:
            for client, joining, from_config in [(anyone, OBSERVER, -1), (anyone, "some thing", -1),
                                                 (anyone, "some thing", 5), (admin, "some thing", -1),
                                                 (admin, OBSERVER, 5), (admin, OBSERVER, -1)]:
                with pytest.raises(UnimplementedError):
                    client.reconfig(joining=joining, leaving=None, new_members=None, from_config=from_config)
        finally:
            anyone.stop()
            admin.stop()


# ---------------------------------------------------------------- membership text (pure)
def test_members_are_listed_in_javas_hashmap_order():
    from zkops.server.membership import hashmap_order

    assert hashmap_order([1, 2, 3, 100]) == [1, 2, 3, 100]  # 100 falls in bucket 4 of 16
    assert hashmap_order([1, 2, 3, 100, 7]) == [1, 2, 3, 100, 7]  # as Apache printed it
    assert hashmap_order([17, 1, 2]) == [17, 1, 2]  # 17 and 1 share bucket 1: insertion order


def test_incremental_and_wholesale_changes_give_apaches_codes():
    from zkops.server.codes import Err, ZkError
    from zkops.server.membership import Membership

    m = Membership.parse("server.1=127.0.0.1:2001:3001:participant\nserver.2=127.0.0.1:2002:3002:participant\n"
                         "server.3=127.0.0.1:2003:3003:participant;0.0.0.0:2181\nversion=100000000")
    assert m.version == 0x100000000 and m.voters == {1, 2, 3}
    added = m.incremental(OBSERVER, None)
    assert added.observers == {100}
    assert "server.100=0.0.0.0:1234:2345:observer;0.0.0.0:3456\n" in added.with_version(0x100000002).text()
    assert added.with_version(0x100000002).text().endswith("\nversion=100000002")
    assert added.incremental(None, "100,999").servers.keys() == m.servers.keys()  # unknown ids are ignored
    bare = m.incremental("server.7=127.0.0.1:1:2:observer;5", None).servers[7]
    assert "server.7=127.0.0.1:1:2:observer;0.0.0.0:5" in Membership(dict(m.servers) | {7: bare}).text()
    for joining, leaving, code in [("some thing", None, Err.BADARGUMENTS),
                                   ("server.7=127.0.0.1:1:2:observer", None, Err.BADARGUMENTS),  # no client port
                                   (None, "abc", Err.MARSHALLINGERROR)]:
        with pytest.raises(ZkError) as exc:
            m.incremental(joining, leaving)
        assert exc.value.code == code
    with pytest.raises(ZkError) as exc:
        Membership.non_incremental(OBSERVER)  # no participant at all
    assert exc.value.code == Err.MARSHALLINGERROR
    whole = Membership.non_incremental("server.1=a:1:2;3\nserver.2=b:1:2:observer;4")
    assert (whole.voters, whole.observers) == ({1}, {2})


@given(st.dictionaries(st.integers(0, 254), st.tuples(st.sampled_from(["10.0.0.1", "zk.example", "::1"]),
                                                      st.integers(1, 65535), st.integers(1, 65535),
                                                      st.sampled_from(["participant", "observer"]),
                                                      st.one_of(st.none(), st.integers(1, 65535))),
                       min_size=1, max_size=20),
       st.integers(0, 2**63 - 1))
def test_config_text_reads_back(servers, version):
    from zkops.server.config import PeerSpec
    from zkops.server.membership import Membership

    specs = {sid: PeerSpec(sid, host, q, e if e != q else q % 65535 + 1, role, None, c)
             for sid, (host, q, e, role, c) in servers.items()}
    m = Membership(specs, version)
    back = Membership.parse(m.text())
    assert back.version == version and back.text() == m.text()
    assert (back.voters, back.observers) == (m.voters, m.observers)


# ---------------------------------------------------------------- a real ensemble
def _super_ensemble(voters: int = 3, **kw):
    from tests.support.ensemble import Ensemble

    extra = {"reconfigEnabled": "true", "DigestAuthenticationProvider.superDigest": digest("super:test"),
             "admin.enableServer": "false"}
    extra.update(kw.pop("extra", {}))
    return Ensemble(voters, extra=extra, **kw)


def _admin(hosts: str) -> KazooClient:
    zk = KazooClient(hosts, auth_data=[("digest", "super:test")])
    zk.start()
    return zk


def _run_sequence(zk: KazooClient, ports: list[int]) -> list[tuple[str, object]]:
    """The requests both servers get; each answer normalised (ports by position, the version
    checked against mzxid and then hidden)."""
    joining = f"server.100=0.0.0.0:{ports[0]}:{ports[1]}:observer;0.0.0.0:{ports[2]}"
    steps = [
        ("add observer", dict(joining=joining, leaving=None, new_members=None)),
        ("add it again", dict(joining=joining, leaving=None, new_members=None)),
        ("add with a bare client port", dict(joining=f"server.101=127.0.0.1:{ports[3]}:{ports[4]}:observer;{ports[5]}",
                                             leaving=None, new_members=None)),
        ("remove 100", dict(joining=None, leaving="100", new_members=None)),
        ("remove 101 and an unknown id", dict(joining=None, leaving="101,99", new_members=None)),
        ("add a participant that is not running", dict(joining=f"server.4=127.0.0.1:{ports[0]}:{ports[1]};{ports[2]}",
                                                       leaving=None, new_members=None)),
        ("remove it", dict(joining=None, leaving="4", new_members=None)),
        ("no client port", dict(joining=f"server.7=127.0.0.1:{ports[0]}:{ports[1]}:observer", leaving=None,
                                new_members=None)),
        ("leaving not a number", dict(joining=None, leaving="abc", new_members=None)),
        ("members without a participant", dict(joining=None, leaving=None, new_members=joining)),
        ("one voter left", dict(joining=None, leaving="2,3", new_members=None)),
    ]
    answers: list[tuple[str, object]] = []

    def normal(data: bytes, stat) -> str:
        text = data.decode()
        assert text.rsplit("version=", 1)[1] == f"{stat.mzxid:x}"
        for i, p in enumerate(ports):
            text = text.replace(f":{p}", f":<p{i}>")
        text = re.sub(r"(?m)^(server\.[123])=[^:]+:\d+:\d+:", r"\1=<member>:", text)  # each side's own ports
        return text.rsplit("\nversion=", 1)[0]

    for name, kw in steps:
        try:
            data, stat = zk.reconfig(**kw)
            answers.append((name, (normal(data, stat), stat.version, stat.aversion, stat.dataLength)))
        except Exception as exc:  # the error class is the answer
            answers.append((name, type(exc).__name__))
    data, stat = zk.get("/zookeeper/config")
    with pytest.raises(BadVersionError):
        zk.reconfig(joining=joining, leaving=None, new_members=None, from_config=stat.mzxid + 1)
    answers.append(("final", normal(data, stat)))
    return answers


def _apache_ensemble(workdir, n: int = 3):
    """n Apache 3.8 servers (QuorumPeerMain) with reconfigEnabled and the same super digest."""
    import os
    import subprocess

    from tests.support.refzk import classpath, free_port, wait_ruok

    ports = {i: (free_port(), free_port(), free_port()) for i in range(1, n + 1)}
    procs = []
    for i in ports:
        d = workdir / f"a{i}"
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text(f"{i}\n")
        lines = ["tickTime=500", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}",
                 f"clientPort={ports[i][0]}", "4lw.commands.whitelist=*", "admin.enableServer=false",
                 "reconfigEnabled=true"]
        lines += [f"server.{j}=127.0.0.1:{q}:{e}" for j, (_, q, e) in ports.items()]
        (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
        log = open(d / "log", "wb")
        procs.append(subprocess.Popen(
            ["java", "-Xmx256m", f"-Dzookeeper.DigestAuthenticationProvider.superDigest={digest('super:test')}",
             "-cp", classpath(), "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)))
        log.close()
    for c, _, _ in ports.values():
        wait_ruok(c, 60)
    return ports, procs


@pytest.mark.integration
def test_the_same_reconfigs_get_the_same_answers_as_apache(tmp_path):
    from tests.support import refzk

    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    spare = [refzk.free_port() for _ in range(6)]
    ports, procs = _apache_ensemble(tmp_path)
    try:
        zk = _admin(",".join(f"127.0.0.1:{c}" for c, _, _ in ports.values()))
        try:
            initial = zk.get("/zookeeper/config")
            apache = _run_sequence(zk, spare)
        finally:
            zk.stop()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    ours_ens = _super_ensemble(tick_ms=500)
    ours_ens.start()
    try:
        ours_ens.wait_ready(60)
        zk = _admin(ours_ens.connect_string)
        try:
            our_initial = zk.get("/zookeeper/config")
            ours = _run_sequence(zk, spare)
        finally:
            zk.stop()
    finally:
        ours_ens.cleanup()
    # a fresh ensemble with reconfigEnabled shows its static membership stamped with the first zxid
    for data, stat in (initial, our_initial):
        assert data.decode().endswith("\nversion=100000000")
        assert (stat.mzxid, stat.version, stat.aversion) == (0x100000000, -1, -1)
    assert ours == apache


@pytest.mark.integration
def test_an_observer_joins_serves_and_leaves_and_restarts_keep_the_membership(tmp_path):
    from tests.support.ensemble import mode
    from tests.support.refzk import free_port

    ens = _super_ensemble()
    client, quorum, election = free_port(), free_port(), free_port()
    ens.start()
    try:
        ens.wait_ready(90)
        zk = _admin(ens.connect_string)
        zk.create("/before", b"written before the observer existed")
        # the new server's zoo.cfg: the ensemble plus itself, as Apache's procedure asks
        d = tmp_path / "n4"
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text("4\n")
        base = (ens.workdir / "n1" / "zoo.cfg.bak").read_text() if (ens.workdir / "n1" / "zoo.cfg.bak").exists() \
            else (ens.workdir / "n1" / "zoo.cfg").read_text()
        lines = [line for line in base.splitlines()
                 if not line.startswith(("dataDir", "clientPort", "dynamicConfigFile"))]
        lines += [f"dataDir={d / 'data'}", f"clientPort={client}", "clientPortAddress=127.0.0.1",
                  f"server.4=127.0.0.1:{quorum}:{election}:observer"]
        (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
        data, _ = zk.reconfig(joining=f"server.4=127.0.0.1:{quorum}:{election}:observer;127.0.0.1:{client}",
                              leaving=None, new_members=None)
        assert f"server.4=127.0.0.1:{quorum}:{election}:observer;127.0.0.1:{client}" in data.decode()
        import subprocess
        import sys

        out = open(d / "server.out", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground", str(d / "zoo.cfg")],
                                stdout=out, stderr=subprocess.STDOUT, cwd=d, env=dict(os.environ, ZOO_LOG_DIR=str(d)))
        out.close()
        try:
            _wait_mode(client, "observer", d)
            obs = KazooClient(f"127.0.0.1:{client}")
            obs.start(60)
            try:
                assert obs.get("/before")[0] == b"written before the observer existed"
                obs.create("/through-the-observer", b"x")  # forwarded to the leader
                assert zk.get("/through-the-observer")[0] == b"x"
            finally:
                obs.stop()
            # every member wrote the new membership where a restart reads it
            for i in ens.ids:
                cfg = (ens.workdir / f"n{i}" / "zoo.cfg").read_text()
                assert "server." not in cfg and "dynamicConfigFile=" in cfg
            ens.kill(1)
            ens.start(1)
            ens.wait_ready(90, ids=[1, 2, 3])
            z1 = KazooClient(ens.address(1))
            z1.start()
            try:
                z1.sync("/")
                assert b"server.4=" in z1.get("/zookeeper/config")[0]
            finally:
                z1.stop()
            data, _ = zk.reconfig(joining=None, leaving="4", new_members=None)
            assert b"server.4=" not in data
            deadline = time.monotonic() + 90
            while mode(client) == "observer" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert mode(client) != "observer"  # removed: it serves no one any more
            zk.create("/after", b"the ensemble goes on")
        finally:
            proc.terminate()
            proc.wait(30)
        zk.stop()
    finally:
        ens.cleanup()


@pytest.mark.integration
def test_a_participant_added_by_reconfig_counts_in_the_quorum(tmp_path):
    """3 voters become 4 (a fourth server started first, following as a non-voter), then two
    of the original three die: the remaining two plus the newcomer are still a quorum of 4."""
    from tests.support.refzk import free_port

    ens = _super_ensemble()
    client, quorum, election = free_port(), free_port(), free_port()
    ens.start()
    try:
        leader = ens.wait_ready(90)
        zk = _admin(ens.connect_string)
        d = tmp_path / "n4"
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text("4\n")
        base = (ens.workdir / "n1" / "zoo.cfg.bak").read_text()
        lines = [line for line in base.splitlines() if not line.startswith(("dataDir", "clientPort"))]
        lines += [f"dataDir={d / 'data'}", f"clientPort={client}", "clientPortAddress=127.0.0.1",
                  f"server.4=127.0.0.1:{quorum}:{election}"]
        (d / "zoo.cfg").write_text("\n".join(lines) + "\n")
        import subprocess
        import sys

        out = open(d / "server.out", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "zkops.server", "start-foreground", str(d / "zoo.cfg")],
                                stdout=out, stderr=subprocess.STDOUT, cwd=d, env=dict(os.environ, ZOO_LOG_DIR=str(d)))
        out.close()
        try:
            _wait_mode(client, "follower", d)  # a non-voting follower until the reconfig
            data, _ = zk.reconfig(joining=f"server.4=127.0.0.1:{quorum}:{election}:participant;127.0.0.1:{client}",
                                  leaving=None, new_members=None)
            assert b"server.4=" in data
            zk.create("/four-voters", b"1")
            zk.stop()
            survivor = next(i for i in ens.ids if i != leader)
            for i in ens.ids:
                if i != survivor and i != leader:
                    ens.kill(i)
            ens.kill(leader)  # 2 of 4 left would not be a quorum: keep 3 of 4
            ens.start(leader)
            z = KazooClient(f"{ens.address(survivor)},127.0.0.1:{client}")
            z.start(90)
            try:  # the restarted leader and the survivors elect first: retry what a lost connection cuts
                _create_retried(z, "/with-three-of-four", b"ok")
                assert z.get("/four-voters")[0] == b"1"
            finally:
                z.stop()
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        ens.cleanup()
