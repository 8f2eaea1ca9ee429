"""zkops migrate: a running Apache ZooKeeper 3.8 ensemble (Debian's jars, on loopback) moved to zkops one
host at a time and back, with ``connection: local``.

The long test writes through the whole migration and the rollback and checks: no acknowledged write lost,
never two servers down at once, no session of a client expired, a second run changes nothing and
``--check`` changes nothing. It prints how long each run took and the longest pause between acknowledged
writes. The short ones: an unhealthy ensemble and a dataDir that is not there are refused before any host is
touched.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kazoo.client import KazooClient, KazooState
from rich.console import Console

from tests.support import refzk
from tests.support.migrating import Writer
from tests.support.mixed import MixedEnsemble
from zkops import cli

pytestmark = pytest.mark.skipif(not refzk.available(), reason="Apache ZooKeeper 3.8 is not installed")

DEADLINE = 90.0


def _java_command(ens: MixedEnsemble, i: int) -> list[str]:
    return ["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false", "-cp", refzk.classpath(),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(ens.workdir / f"n{i}" / "zoo.cfg")]


def _inventory(ens: MixedEnsemble, **java_over: dict) -> Path:
    hosts = {}
    for i in ens.ids:
        c, q, e = ens.ports[i]
        d = ens.workdir / f"n{i}"
        java = {"command": shlex.join(_java_command(ens, i)), "zoo_cfg": str(d / "zoo.cfg"),
                "pid_file": str(d / "java.pid"), "log_file": str(d / "java.out")}
        java.update(java_over.get(f"zk{i}", {}))
        hosts[f"zk{i}"] = {"connection": "local", "address": "127.0.0.1", "client_port": c, "quorum_port": q,
                           "election_port": e, "myid": i, "base_dir": str(d), "java": java}
    path = ens.workdir / "inventory.yaml"
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


def _pid_in(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _stop_pid(pid: int | None, marker: bytes) -> None:
    """Stop a server migrate started (Java or zkops), by pid, after checking it is that server."""
    if pid is None:
        return
    try:
        if marker not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    for _ in range(200):
        if not Path(f"/proc/{pid}").exists():
            return
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.05)


@pytest.fixture
def apache() -> Iterator[MixedEnsemble]:
    # sessions of 30 s (tickTime 200 would cap them at 4 s): a loaded machine must not expire them
    ens = MixedEnsemble({1: "apache", 2: "apache", 3: "apache"}, extra={"maxSessionTimeout": "60000"})
    try:
        ens.start()
        ens.wait_ready(timeout=DEADLINE)
        for i, p in ens.procs.items():
            (ens.workdir / f"n{i}" / "java.pid").write_text(str(p.pid))
        yield ens
    finally:
        if os.environ.get("MIGRATE_KEEP"):
            import shutil
            shutil.copytree(ens.workdir, os.environ["MIGRATE_KEEP"], dirs_exist_ok=True)
        for i in ens.ids:  # shown when the test fails
            for log in sorted((ens.workdir / f"n{i}").glob("**/*.out")) + sorted((ens.workdir / f"n{i}").glob("**/*.log")):
                print(f"--- {log}\n" + log.read_text(errors="replace")[-4000:])
        for i in ens.ids:
            d = ens.workdir / f"n{i}"
            _stop_pid(_pid_in(d / "java.pid"), b"QuorumPeerMain")
            _stop_pid(_pid_in(d / "data" / "zookeeper_server.pid"), b"zkops")
        ens.cleanup()


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "console", Console(width=1000, no_color=True))


def _run(*args: str) -> int:
    return cli.main(["migrate", *args])


def _kinds(ens: MixedEnsemble) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for i in ens.ids:
        text = refzk_four(ens.client_port(i), "srvr")
        out[i] = None if "Zookeeper version" not in text else ("zkops" if "zkops" in text else "java")
    return out


def refzk_four(port: int, word: str) -> str:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(word.encode())
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out.decode(errors="replace")
    except OSError:
        return ""


def _java_pids(ens: MixedEnsemble) -> dict[int, int | None]:
    return {i: _pid_in(ens.workdir / f"n{i}" / "java.pid") for i in ens.ids}


class DownWatch(threading.Thread):
    """Counts, every 50 ms, the servers whose client port accepts no connection; keeps the most at once."""

    def __init__(self, ens: MixedEnsemble) -> None:
        super().__init__(daemon=True)
        self.ports = [ens.client_port(i) for i in ens.ids]
        self.most_down = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            down = 0
            for port in self.ports:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                except OSError:
                    down += 1
            self.most_down = max(self.most_down, down)
            time.sleep(0.05)


def _session_clients(ens: MixedEnsemble) -> list[tuple[KazooClient, list[str], int]]:
    """One client per server (that server first in its list), each with an ephemeral node."""
    out = []
    for i in ens.ids:
        hosts = ",".join([ens.address(i)] + [ens.address(j) for j in ens.ids if j != i])
        k = KazooClient(hosts=hosts, timeout=30, randomize_hosts=False,
                        connection_retry={"max_tries": -1, "max_delay": 0.5})
        states: list[str] = []
        k.add_listener(lambda s, states=states: states.append(s))
        k.start(timeout=60)
        k.create(f"/eph-{i}", b"", ephemeral=True)
        out.append((k, states, k.client_id[0]))
    return out


def _all_acked_everywhere(ens: MixedEnsemble, acked: list[str]) -> None:
    for i in ens.ids:
        k = KazooClient(hosts=ens.address(i), timeout=30)
        k.start(timeout=60)
        try:
            k.sync("/w")
            have = set(k.get_children("/w"))
            missing = [p for p in acked if p.rsplit("/", 1)[1] not in have]
            assert not missing, f"server {i} lost acknowledged writes: {missing[:5]} ({len(missing)})"
        finally:
            k.stop()
            k.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_migrate_and_roll_back_under_a_writer(apache: MixedEnsemble, capsys: pytest.CaptureFixture) -> None:
    ens = apache
    inv = str(_inventory(ens))
    sessions = _session_clients(ens)
    writer = Writer(ens.connect_string)
    watch = DownWatch(ens)
    writer.start()
    watch.start()
    try:
        # --check changes nothing
        pids = _java_pids(ens)
        assert _run(inv, "--check") == 0
        assert _kinds(ens) == dict.fromkeys(ens.ids, "java") and _java_pids(ens) == pids
        assert "changed" in capsys.readouterr().out

        t0 = time.monotonic()
        assert _run(inv) == 0, capsys.readouterr().out
        t1 = time.monotonic()
        out = capsys.readouterr().out
        assert _kinds(ens) == dict.fromkeys(ens.ids, "zkops"), out
        assert "PLAY RECAP" in out and "healthy" in out

        # a second run changes nothing; --check says so too
        assert _run(inv) == 0
        out = capsys.readouterr().out
        assert "changed" not in out.split("PLAY RECAP")[0], out
        assert _run(inv, "--check") == 0
        assert "changed" not in capsys.readouterr().out.split("PLAY RECAP")[0]

        t2 = time.monotonic()
        assert _run(inv, "--rollback") == 0, capsys.readouterr().out
        t3 = time.monotonic()
        out = capsys.readouterr().out
        assert _kinds(ens) == dict.fromkeys(ens.ids, "java"), out
        assert _run(inv, "--rollback") == 0
        assert "changed" not in capsys.readouterr().out.split("PLAY RECAP")[0]
        # a few more writes on the Java ensemble
        n = len(writer.acked)
        deadline = time.monotonic() + DEADLINE
        while len(writer.acked) < n + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(writer.acked) >= n + 20
    finally:
        watch.stopping.set()
        watch.join(10)
        writer.stop()
    _all_acked_everywhere(ens, writer.acked)
    assert watch.most_down <= 1, f"{watch.most_down} servers were down at once"
    for i, (k, states, sid) in zip(ens.ids, sessions, strict=True):
        try:
            assert KazooState.LOST not in states, f"a session expired: {states}"
            assert k.client_id[0] == sid
            assert k.exists(f"/eph-{i}") is not None
        finally:
            k.stop()
            k.close()
    with capsys.disabled():
        print(f"\nmigrate: {t1 - t0:.1f} s, rollback: {t3 - t2:.1f} s, acked writes: {len(writer.acked)}, "
              f"longest pause between acked writes: migrate {writer.longest_pause(t0, t1):.2f} s, "
              f"rollback {writer.longest_pause(t2, t3):.2f} s")


def test_an_unhealthy_ensemble_is_refused_before_any_host_is_touched(
        apache: MixedEnsemble, capsys: pytest.CaptureFixture) -> None:
    ens = apache
    inv = str(_inventory(ens))
    leader = ens.wait_ready(timeout=DEADLINE)
    follower = next(i for i in ens.ids if i != leader)
    ens.kill(follower)
    pids = _java_pids(ens)
    assert _run(inv, "--wait", "3") == 1
    out = capsys.readouterr().out
    assert "refused before touching this host" in out and "not serving" in out, out
    assert _java_pids(ens) == pids
    assert all(k == "java" for i, k in _kinds(ens).items() if i != follower)


def test_a_data_dir_or_pid_file_that_is_not_there_is_refused_before_any_host_is_touched(
        apache: MixedEnsemble, capsys: pytest.CaptureFixture) -> None:
    ens = apache
    leader = ens.wait_ready(timeout=DEADLINE)
    # the leader is migrated last: its bad dataDir must stop the run before the followers are touched too
    inv = str(_inventory(ens, **{f"zk{leader}": {"data_dir": str(ens.workdir / "nowhere")}}))
    pids = _java_pids(ens)
    assert _run(inv) == 1
    out = capsys.readouterr().out
    assert "nowhere" in out and "gather facts" in out, out
    assert _java_pids(ens) == pids and _kinds(ens) == dict.fromkeys(ens.ids, "java")
    # a pid file that names no Java server: refused before anything is stopped
    inv = str(_inventory(ens, **{f"zk{leader}": {"pid_file": str(ens.workdir / "no.pid")}}))
    assert _run(inv) == 1
    out = capsys.readouterr().out
    assert "names no running Java ZooKeeper" in out, out
    assert _java_pids(ens) == pids and _kinds(ens) == dict.fromkeys(ens.ids, "java")
    # a dataDir whose version-2 is missing (zoo.cfg names the wrong directory) is refused too
    cfg = ens.workdir / f"n{leader}" / "zoo.cfg"
    empty = ens.workdir / "empty"
    (empty).mkdir()
    (empty / "myid").write_text(f"{leader}\n")
    text = cfg.read_text()
    cfg.write_text(text.replace(f"dataDir={ens.data(leader)}", f"dataDir={empty}"))
    assert _run(str(_inventory(ens))) == 1
    out = capsys.readouterr().out
    assert "holds no ZooKeeper data" in out, out
    assert _java_pids(ens) == pids and _kinds(ens) == dict.fromkeys(ens.ids, "java")


def test_a_wrong_java_key_is_an_inventory_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(yaml.safe_dump({"all": {"vars": {"java": {"servise": "zookeeper"}},
                                           "hosts": {"zk1": {"connection": "local", "client_port": refzk.free_port()}}}}))
    assert _run(str(inv)) == 2
    out = capsys.readouterr().out
    assert "inventory error" in out and "all.vars.java.servise: unknown key" in out, out
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"zk1": {"connection": "local", "java": {
        "service": "zookeeper", "command": "java -cp x Main"}}}}}))
    assert _run(str(inv)) == 2
    assert "give either service or command" in capsys.readouterr().out


def test_layout_presets() -> None:
    from zkops.provision.inventory import InventoryError, parse
    from zkops.provision.migrate import java_spec

    inv = parse({"all": {"hosts": {"zk1": {"address": "10.0.0.1"},
                                   "zk2": {"address": "10.0.0.2", "java": {"layout": "docker"}},
                                   "zk3": {"address": "10.0.0.3", "java": {"layout": "docker", "service": "zk"}}}}})
    debian, docker, docker_service = (java_spec(inv, h) for h in inv.hosts)
    assert (debian.service, str(debian.zoo_cfg), debian.command, debian.data_dir) == (
        "zookeeper", "/etc/zookeeper/conf/zoo.cfg", None, None)
    assert (str(docker.zoo_cfg), str(docker.data_dir), str(docker.data_log_dir), docker.service) == (
        "/conf/zoo.cfg", "/data", "/datalog", None)
    assert docker.command == ["zkServer.sh", "--config", "/conf", "start-foreground"]
    assert str(docker.pid_file) == "/data/zookeeper_server.pid"
    assert (docker_service.service, docker_service.command, str(docker_service.zoo_cfg)) == ("zk", None, "/conf/zoo.cfg")
    bad = parse({"all": {"hosts": {"zk1": {"java": {"layout": "rpm"}}}}})
    with pytest.raises(InventoryError, match="layout: 'rpm' is not one of debian, docker"):
        java_spec(bad, bad.hosts[0])
