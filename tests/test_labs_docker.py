"""The labs on the docker backend: containers from the project's Dockerfile on a private
network of a Docker engine the tests start themselves (no registry: a debootstrap base)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from tests.support import dockerd
from zkops.labs.lab import Lab
from zkops.labs.lessons import find
from zkops.labs.lessons.engine import check, play

pytestmark = [pytest.mark.docker, pytest.mark.integration]


@pytest.fixture(scope="module")
def engine():
    if not dockerd.available():
        pytest.fail("the docker tests need root and Debian's docker.io (scripts/install-test-deps)")
    eng = dockerd.Engine()
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "ZKOPS_LAB_DOCKER_BASE")}
    try:
        os.environ["DOCKER_HOST"] = eng.url
        os.environ["ZKOPS_LAB_DOCKER_BASE"] = eng.base_image()
        yield eng
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        eng.stop()


def _ours(engine: dockerd.Engine) -> tuple[list, list]:
    containers = engine.client.containers.list(all=True, filters={"label": "zkops.lab"})
    networks = engine.client.networks.list(filters={"label": "zkops.lab"})
    return containers, networks


def _client(hosts: str) -> KazooClient:
    c = KazooClient(hosts=hosts, timeout=5, connection_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5},
                    command_retry={"max_tries": -1, "delay": 0.1, "max_delay": 0.5})
    c.start(timeout=30)
    return c


def _until(probe, timeout: float = 30.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    return probe()


def test_image_honours_the_official_images_environment(engine: dockerd.Engine):
    """ZOO_* variables become zoo.cfg and myid, as in the official zookeeper image."""
    lab = Lab.up(Path(os.environ.get("TMPDIR", "/tmp")) / f"zk-img-{os.getpid()}", backend="docker", nodes=1,
                 tick_ms=300)
    try:
        c = engine.client.containers.get(lab.state.nodes[0].handle)
        cfg = c.exec_run(["cat", "/conf/zoo.cfg"]).output.decode()
        assert "tickTime=300" in cfg and "4lw.commands.whitelist=*" in cfg and "dataDir=/data" in cfg
        assert "server.1=zk1:2888:3888;2181" in cfg
        assert c.exec_run(["cat", "/data/myid"]).output.decode().strip() == "1"
        zk = _client(lab.connect_string())
        zk.create("/in-a-container", b"yes")
        assert zk.get("/in-a-container")[0] == b"yes"
        zk.stop()
        custom = engine.client.containers.run(
            c.image.id, ["sh", "-c", "docker-entrypoint.sh true && cat /conf/zoo.cfg /data/myid"], remove=True,
            environment={"ZOO_MY_ID": "7", "ZOO_CFG_EXTRA": "extendedTypesEnabled=true forceSync=no",
                         "ZOO_SERVERS": "server.7=a:1:2;2181 server.8=b:1:2;2181", "ZOO_SYNC_LIMIT": "9"})
        text = custom.decode()
        assert "extendedTypesEnabled=true\nforceSync=no" in text and "syncLimit=9" in text
        assert "server.7=a:1:2;2181\nserver.8=b:1:2;2181" in text and text.strip().endswith("7")
    finally:
        lab.down()


def test_kill_isolate_heal_and_down_leaves_nothing(engine: dockerd.Engine, tmp_path: Path):
    lab = Lab.up(tmp_path / "lab", backend="docker", nodes=3, tick_ms=200)
    try:
        first = lab.wait_leader()
        t_kill = time.time()
        lab.kill(first)
        survivors = [i for i in lab.node_ids() if i != first]
        second = lab.wait_leader(among=survivors)
        elected = [e for e in lab.election_events() if e["ts"] >= t_kill and e["kind"] == "leader_elected"]
        assert {e["server"] for e in elected} == set(survivors) and {e["peer"] for e in elected} == {second}
        assert any(e["kind"] == "vote_received" for e in lab.election_events() if e["ts"] >= t_kill)
        lab.start(first)
        assert _until(lambda: lab.modes()[first] == "follower")
        lab.isolate(second)
        assert _until(lambda: lab.modes()[second] is None), "the cut-off leader stops serving"
        majority = [i for i in lab.node_ids() if i != second]
        third = lab.wait_leader(among=majority)
        zk = _client(lab.connect_string(majority))
        zk.create("/while-cut", b"")
        zk.stop()
        lab.heal()
        assert _until(lambda: lab.modes()[second] == "follower") and lab.leader() == third
        lab.pause(third)
        assert [s.state for s in lab.status() if s.id == third] == ["paused"]
        lab.resume(third)
    finally:
        lab.down()
    containers, networks = _ours(engine)
    assert containers == [] and networks == [], "lab down removes every container and network it made"


@pytest.mark.parametrize("name", ["05", "06", "07"])
def test_classroom_labs_on_docker(engine: dockerd.Engine, tmp_path: Path, name: str):
    lesson = find(name)

    def make_cluster(nodes: int, observers: int, start: bool) -> Lab:
        return Lab.up(tmp_path / "lab", backend="docker", nodes=nodes, observers=observers, start=start, tick_ms=200)

    lines: list[str] = []
    play(lesson, make_cluster, auto=True, state_dir=tmp_path / "j", say=lambda text="", style=None: lines.append(text))
    problems = [(what, p) for what, p in check(lesson, tmp_path / "j") if p is not None]
    assert not problems, f"{problems}\n" + "\n".join(lines[-20:])
    assert _ours(engine) == ([], [])
