"""zkops migrate over SSH: three containers (systemd, sshd, Debian's zookeeper and zookeeperd with
its JVM) run an Apache 3.8 ensemble as Debian ships it (``systemctl start zookeeper``, Debian's
/etc/zookeeper/conf/zoo.cfg and /var/lib/zookeeper); migrate moves them to zkops one at a time and
back, with the inventory giving no ``java:`` at all (Debian's layout is the default).

Checked, with a writer through the whole migration and the rollback: no acknowledged write lost,
never two servers down at once (``srvr`` polled every 100 ms), the sessions of clients on every
server kept (same ids, ephemerals there), ``--check`` and second runs change nothing. An
unreachable host and an unhealthy ensemble stop the run before any host is touched (no zkops
installed anywhere, the same Java processes)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooState
from rich.console import Console

from tests.support.dockerd import Engine
from tests.support.migrating import QuorumWatch, Writer, missing_on, mode_of, session_clients, srvr
from tests.support.sshhosts import SshHost, SshHosts
from zkops import cli

pytestmark = [pytest.mark.docker, pytest.mark.integration, pytest.mark.slow]

DEADLINE = 120.0


class JavaHosts:
    def __init__(self, hosts: SshHosts, work: Path, image_seconds: float) -> None:
        self.h = hosts
        self.work = work
        self.image_seconds = image_seconds

    @property
    def all(self) -> list[SshHost]:
        return self.h.hosts

    def addresses(self) -> list[str]:
        return [f"{h.address}:2181" for h in self.all]

    def exec(self, h: SshHost, command: str) -> str:
        code, out = self.h.exec(h, command)
        assert code == 0, f"{h.name}: {command}: {out}"
        return out

    def modes(self) -> dict[str, str | None]:
        return {h.name: mode_of(srvr(f"{h.address}:2181")) for h in self.all}

    def kinds(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for h in self.all:
            text = srvr(f"{h.address}:2181") or ""
            out[h.name] = None if "Zookeeper version" not in text else ("zkops" if "zkops" in text else "java")
        return out

    def java_pids(self) -> dict[str, str]:
        return {h.name: self.h.exec(h, "cat /run/zookeeper/zookeeper.pid 2>/dev/null")[1].strip() for h in self.all}

    def zkops_installed(self) -> list[str]:
        return [h.name for h in self.all if self.h.exec(h, "test -e /opt/zkops")[0] == 0]

    def wait_healthy(self, timeout: float = DEADLINE) -> str:
        """Until one leader and every follower serving, and the leader counting both followers synced."""
        deadline = time.monotonic() + timeout
        while True:
            modes = self.modes()
            leaders = [n for n, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and sorted(str(m) for m in modes.values()) == ["follower", "follower", "leader"]:
                leader = next(h for h in self.all if h.name == leaders[0])
                from zkops.server.fourletterclient import four_letter_or_empty

                mntr = four_letter_or_empty(leader.address, 2181, "mntr", timeout=5)
                if "zk_synced_followers\t2" in mntr:
                    return leaders[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"the ensemble is not healthy: {modes}")
            time.sleep(0.5)

    def inventory(self, name: str = "inventory.yaml", **extra: dict) -> str:
        hosts = {}
        for i, h in enumerate(self.all, 1):
            hosts[h.name] = {"address": h.address, "ssh_user": "root", "ssh_key": str(self.h.key_path), "myid": i,
                             **extra.get(h.name, {})}
        path = self.work / name
        path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
        return str(path)


def _zoo_cfg(hosts: list[SshHost]) -> str:
    servers = "\n".join(f"server.{i}={h.address}:2888:3888" for i, h in enumerate(hosts, 1))
    return ("tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zookeeper\nclientPort=2181\n"
            "maxSessionTimeout=60000\n4lw.commands.whitelist=*\nadmin.enableServer=false\n" + servers + "\n")


@pytest.fixture(scope="module")
def java_hosts(docker_engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JavaHosts]:
    work = tmp_path_factory.mktemp("migratessh")
    t0 = time.monotonic()
    image = docker_engine.java_image()
    image_seconds = time.monotonic() - t0
    hosts = SshHosts(docker_engine, work, 0, prefix="zkops-migrate")
    try:
        for i in (1, 2, 3):
            hosts.add_systemd_host(f"zk{i}", i, image=image, cap_add=("SYS_PTRACE",))
        jh = JavaHosts(hosts, work, image_seconds)
        cfg = _zoo_cfg(hosts.hosts)
        for i, h in enumerate(hosts.hosts, 1):
            # Debian's package: zoo.cfg and myid in /etc/zookeeper/conf (/var/lib/zookeeper/myid links there)
            jh.exec(h, "systemctl stop zookeeper; rm -rf /var/lib/zookeeper/version-2 /tmp/zookeeper")
            jh.exec(h, f"printf '%s' '{cfg}' > /etc/zookeeper/conf/zoo.cfg && echo {i} > /etc/zookeeper/conf/myid && "
                       "echo 'JAVA_OPTS=\"-Xmx256m\"' > /etc/default/zookeeper")
        for h in hosts.hosts:
            jh.exec(h, "systemctl start zookeeper")
        jh.wait_healthy()
        yield jh
    finally:
        hosts.cleanup()


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=1000, no_color=True))


def _migrate(jh: JavaHosts, inv: str, wheel: Path, *args: str) -> int:
    return cli.main(["migrate", inv, "--accept-new-host-keys", "--known-hosts", str(jh.work / "known_hosts"),
                     "--wheel", str(wheel), *args])


def _changed(out: str) -> list[str]:
    return [line for line in out.split("PLAY RECAP")[0].splitlines() if line.startswith("changed:")]


@pytest.mark.timeout(600)
def test_an_unreachable_host_is_refused_before_any_host_is_touched(
        java_hosts: JavaHosts, wheel: Path, capsys: pytest.CaptureFixture) -> None:
    jh = java_hosts
    jh.wait_healthy()
    pids = jh.java_pids()
    # zk3's SSH goes to an address nobody has (its client port, probed directly, still answers)
    dead = jh.all[2].address.rsplit(".", 1)[0] + ".250"
    inv = jh.inventory("unreachable.yaml", zk3={"ssh_host": dead})
    assert _migrate(jh, inv, wheel) == 1
    out = capsys.readouterr().out
    assert "failed: [zk3] gather facts" in out and f"cannot reach {dead}:22" in out, out
    assert not _changed(out), out
    assert jh.zkops_installed() == [] and jh.java_pids() == pids
    assert set(jh.kinds().values()) == {"java"}


@pytest.mark.timeout(600)
def test_an_unhealthy_ensemble_is_refused_before_any_host_is_touched(
        java_hosts: JavaHosts, wheel: Path, capsys: pytest.CaptureFixture) -> None:
    jh = java_hosts
    leader = jh.wait_healthy()
    follower = next(h for h in jh.all if h.name != leader)
    jh.exec(follower, "systemctl stop zookeeper")
    try:
        pids = jh.java_pids()
        assert _migrate(jh, jh.inventory(), wheel, "--wait", "3") == 1
        out = capsys.readouterr().out
        assert "refused before touching this host" in out and f"{follower.name} ({follower.address}:2181) is not serving" \
            in out, out
        assert not _changed(out), out
        assert jh.zkops_installed() == [] and jh.java_pids() == pids
    finally:
        jh.exec(follower, "systemctl start zookeeper")
    jh.wait_healthy()


@pytest.mark.timeout(1500)
def test_migrate_over_ssh_and_roll_back_under_a_writer(
        java_hosts: JavaHosts, wheel: Path, capsys: pytest.CaptureFixture) -> None:
    jh = java_hosts
    jh.wait_healthy()
    inv = jh.inventory()
    addresses = jh.addresses()
    sessions = session_clients(addresses)
    writer = Writer(",".join(addresses))
    watch = QuorumWatch(addresses)
    writer.start()
    watch.start()
    try:
        pids = jh.java_pids()
        assert _migrate(jh, inv, wheel, "--check") == 0, capsys.readouterr().out
        out = capsys.readouterr().out
        assert "(check mode)" in out and jh.java_pids() == pids and jh.zkops_installed() == [], out

        t0 = time.monotonic()
        rc = _migrate(jh, inv, wheel)
        t1 = time.monotonic()
        out = capsys.readouterr().out
        assert rc == 0, out
        assert set(jh.kinds().values()) == {"zkops"}, out
        assert "PLAY RECAP" in out and "ensemble status" in out
        # followers first, the leader last (the leader is asked again before every host)
        turns = [line.rsplit(" is ", 1)[1] for line in out.splitlines() if "] check ensemble - healthy" in line]
        assert len(turns) == 3 and "leader" not in turns[:-1], out
        # zkops runs on Java's files, as Java's user, from its own unit; Java's service is disabled
        for h in jh.all:
            assert jh.exec(h, "systemctl is-active zkops").strip() == "active"
            user = jh.exec(h, "ps -o user= -p $(systemctl show -p MainPID --value zkops)").strip()
            assert user == "zookeeper", user
            assert jh.h.exec(h, "systemctl is-enabled zookeeper")[1].strip() != "enabled"
        assert writer.wait_more(20)

        # a second run changes nothing; --check says so too
        assert _migrate(jh, inv, wheel) == 0
        out = capsys.readouterr().out
        assert not _changed(out), out
        assert _migrate(jh, inv, wheel, "--check") == 0
        out = capsys.readouterr().out
        assert not _changed(out), out

        t2 = time.monotonic()
        rc = _migrate(jh, inv, wheel, "--rollback")
        t3 = time.monotonic()
        out = capsys.readouterr().out
        assert rc == 0, out
        assert set(jh.kinds().values()) == {"java"}, out
        assert _migrate(jh, inv, wheel, "--rollback") == 0
        out = capsys.readouterr().out
        assert not _changed(out), out
        for h in jh.all:
            assert jh.h.exec(h, "systemctl is-active zkops")[1].strip() != "active"
        assert writer.wait_more(20)
    finally:
        watch.stop()
        writer.stop()
    for a in addresses:
        missing = missing_on(a, writer.acked)
        assert not missing, f"{a} lost acknowledged writes: {missing[:5]} ({len(missing)})"
    assert watch.polls > 50
    assert watch.most_down <= 1, f"{watch.most_down} servers were down at once"
    for i, (k, states, sid) in enumerate(sessions):
        try:
            assert KazooState.LOST not in states, f"a session expired: {states}"
            assert k.client_id[0] == sid
            assert k.exists(f"/eph-{i}") is not None
        finally:
            k.stop()
            k.close()
    gap, length = writer.longest_gap(t0, t1)
    errors = [f"{t - t0:.1f} s {e}" for t, e in writer.errors if gap <= t <= gap + length]
    with capsys.disabled():
        print(f"\nmigrate: longest pause from {gap - t0:.1f} s to {gap + length - t0:.1f} s; servers then: "
              f"{watch.around(gap, gap + length, t0)}; failed creates then: {errors[:10]}")
        print(f"\nmigrate over ssh: {t1 - t0:.1f} s, rollback: {t3 - t2:.1f} s, acked writes: {len(writer.acked)}, "
              f"longest pause between acked writes: migrate {writer.longest_pause(t0, t1):.2f} s, "
              f"rollback {writer.longest_pause(t2, t3):.2f} s, longest time without a leader "
              f"{watch.longest_leaderless:.1f} s, image build+import {jh.image_seconds:.0f} s")
