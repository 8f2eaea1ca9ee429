"""The labs on the netns backend: namespaces, veth pairs, a bridge and iptables, for real."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.lab_scenarios import kill_isolate_heal
from zkops.labs.lab import Lab, LabError
from zkops.labs.lessons import find
from zkops.labs.lessons.engine import check, play

pytestmark = [pytest.mark.netns, pytest.mark.integration]


def _leftovers(lab: Lab) -> list[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    tag = lab.state.extra["tag"]
    return [line for line in (names + links).splitlines() if f"zk{tag}" in line or f"zkb{tag}" in line]


def test_kill_isolate_heal_pause_and_down_leaves_nothing(tmp_path: Path):
    lab = Lab.up(tmp_path / "lab", backend="netns", nodes=3, tick_ms=200)
    pids = [n.pid for n in lab.state.nodes]
    try:
        assert lab.connect_string().startswith("172.31."), "clients reach the nodes over the bridge"
        kill_isolate_heal(lab)
        pids += [n.pid for n in lab.state.nodes]
        with pytest.raises(LabError, match="netem"):
            lab.slow(1, 2, 100)
    finally:
        lab.down()
    time.sleep(0.2)
    assert _leftovers(lab) == [], "lab down removes every namespace, veth and bridge it made"
    assert not [p for p in pids if p and Path(f"/proc/{p}").exists()
                and Path(f"/proc/{p}/stat").read_text().split(") ")[1][0] not in "ZX"]


@pytest.mark.parametrize("name", ["06", "07"])
def test_classroom_labs_on_netns(tmp_path: Path, name: str):
    lesson = find(name)

    def make_cluster(nodes: int, observers: int, start: bool) -> Lab:
        return Lab.up(tmp_path / "lab", backend="netns", nodes=nodes, observers=observers, start=start, tick_ms=200)

    lines: list[str] = []
    play(lesson, make_cluster, auto=True, state_dir=tmp_path / "j", say=lambda text="", style=None: lines.append(text))
    problems = [(what, p) for what, p in check(lesson, tmp_path / "j") if p is not None]
    assert not problems, f"{problems}\n" + "\n".join(lines[-20:])
