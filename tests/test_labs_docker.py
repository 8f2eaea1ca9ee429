"""The labs on the docker backend: containers from the project's Dockerfile on a private
network of a Docker engine the tests start themselves (no registry: a debootstrap base)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import dockerd
from tests.support.lab_scenarios import client, kill_isolate_heal
from zkops.labs.lab import Lab
from zkops.labs.lessons import find
from zkops.labs.lessons.engine import check, play

pytestmark = [pytest.mark.docker, pytest.mark.integration]


@pytest.fixture
def engine(docker_engine: dockerd.Engine) -> dockerd.Engine:
    return docker_engine


def _ours(engine: dockerd.Engine) -> tuple[list, list]:
    containers = engine.client.containers.list(all=True, filters={"label": "zkops.lab"})
    networks = engine.client.networks.list(filters={"label": "zkops.lab"})
    return containers, networks


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
        zk = client(lab.connect_string())
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
        kill_isolate_heal(lab)
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
