"""The play's service tasks (``zkops start|stop|deploy``, local and over SSH) report what they
did (the recap shows these results), and the play records them and stops a host at its first
failure; the SSH node is a target of the same shape as the local one."""

from __future__ import annotations

import pytest

from zkops.provision import play
from zkops.provision.deploy import LocalNode
from zkops.provision.inventory import parse
from zkops.provision.play import Options, Play, Result, Task, TaskFailed, TaskStatus
from zkops.provision.remote import Node


class _FakeTarget:
    def __init__(self, up: bool, name: str = "zk1") -> None:
        self.up = up
        self.calls: list[str] = []
        self.host = parse({"all": {"hosts": {name: {"connection": "local"}}}}).hosts[0]
        self.files: dict[str, str] = {}

    def running(self) -> bool:
        return self.up

    def start(self) -> None:
        self.calls.append("start")
        self.up = True

    def stop(self) -> None:
        self.calls.append("stop")
        self.up = False

    def read(self, path: str) -> str | None:
        return self.files.get(path)

    def write(self, path: str, content: str, mode: str) -> None:
        self.calls.append(f"write {path}")
        self.files[path] = content

    def log_tail(self, lines: int = 5) -> str:
        return ""

    def roll_back(self) -> str | None:
        return None


@pytest.mark.parametrize(("up", "task", "want", "calls"), [
    (True, play.stop_task, ("changed", "stopped"), ["stop"]),
    (False, play.stop_task, ("ok", "not running"), []),
    (False, play.start_unless_running, ("changed", "started"), ["start"]),
    (True, play.start_unless_running, ("ok", "running"), []),
    (False, play.start_task, ("changed", "started"), ["start"]),
])
def test_service_tasks(up: bool, task, want: tuple[str, str], calls: list[str]) -> None:
    target = _FakeTarget(up)
    result = task(target)
    assert (result.status, result.message) == want
    assert target.calls == calls


def test_file_task_checks_diffs_and_writes() -> None:
    target = _FakeTarget(True)
    target.files["/c/zoo.cfg"] = "tickTime=200\n"
    check = play.file_task("render zoo.cfg", "/c/zoo.cfg", "tickTime=300\n", "0640", check=True).run(target)
    assert check.status == TaskStatus.CHANGED and check.message == "/c/zoo.cfg (check mode)"
    assert "-tickTime=200\n+tickTime=300\n" in check.diff and "zk1:/c/zoo.cfg (before)" in check.diff
    assert target.calls == [] and target.files["/c/zoo.cfg"] == "tickTime=200\n", "check mode writes nothing"
    real = play.file_task("render zoo.cfg", "/c/zoo.cfg", "tickTime=300\n", "0640", check=False).run(target)
    assert real.status == "changed" and target.files["/c/zoo.cfg"] == "tickTime=300\n"
    again = play.file_task("render zoo.cfg", "/c/zoo.cfg", "tickTime=300\n", "0640", check=False).run(target)
    assert (again.status, again.diff) == ("ok", "")


def test_the_play_records_prints_diffs_and_stops_a_host_at_its_first_failure() -> None:
    printed: list[str] = []
    inv = parse({"all": {"hosts": {"a": {"connection": "local"}, "b": {"connection": "local"}}}})
    p = Play(inv, Options(diff=True, log=printed.append))
    a, b = _FakeTarget(True, "a"), _FakeTarget(True, "b")

    def boom(target: object) -> Result:
        raise TaskFailed("no disk")

    def tasks(t: _FakeTarget) -> list[Task]:
        first = play.file_task("render zoo.cfg", "/zoo.cfg", "x=1\n", "0640", check=False)
        return [first, Task("explode", boom)] if t is a else [first, Task("noop", lambda _: play.ok("fine"))]

    assert p.run_tasks([a, b], tasks) == [b]
    assert [(r.host, r.task, r.status, r.message) for r in p.recap.results] == [
        ("a", "render zoo.cfg", "changed", "/zoo.cfg"), ("a", "explode", "failed", "no disk"),
        ("b", "render zoo.cfg", "changed", "/zoo.cfg"), ("b", "noop", "ok", "fine")]
    assert len(printed) == 2 and all("+x=1" in d for d in printed)
    assert p.to_restart == {"a", "b"} and p.recap.failed
    assert p.recap.counts()["a"] == {"ok": 0, "changed": 1, "failed": 1, "skipped": 0}


def test_local_and_ssh_nodes_are_targets_of_one_shape() -> None:
    for cls in (LocalNode, Node):
        for name in ("read", "write", "running", "start", "stop", "log_tail", "roll_back"):
            assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name}"


@pytest.mark.parametrize("rollback", [False, True])
def test_rolling_restart_goes_leader_last_and_stops_at_the_first_node_that_does_not_come_back(
        monkeypatch: pytest.MonkeyPatch, rollback: bool) -> None:
    inv = parse({"all": {"hosts": {n: {"connection": "local"} for n in ("a", "b", "c", "d", "e")}}})
    modes = {"a": "follower", "b": "leader", "c": "follower", "d": "follower", "e": "follower"}
    monkeypatch.setattr(play, "mode", lambda h: modes[h.name])
    monkeypatch.setattr(play, "quorum_ok_without", lambda inv, name: True)
    order: list[str] = []
    rolled: list[str] = []

    class Target(_FakeTarget):
        def stop(self) -> None:
            order.append(self.host.name)

        def start(self) -> None:
            if self.host.name == "d":
                raise TaskFailed("did not start")

        def roll_back(self) -> str | None:
            rolled.append(self.host.name)
            return None

    targets = [Target(True, n) for n in ("b", "a", "c", "d", "e")]
    p = Play(inv, Options(rollback=rollback))
    p.rolling_restart([targets[0], targets[1], targets[2]], reason="requested")
    assert order == ["a", "c", "b"], "followers first, the leader last"
    assert [r.status for r in p.recap.results] == ["changed"] * 3
    order.clear()
    p = Play(inv, Options(rollback=rollback))
    p.rolling_restart([targets[3], targets[4], targets[0]], reason="files changed")
    assert order == ["d"], "nothing restarted after a node that did not come back"
    assert [(r.host, r.status) for r in p.recap.results] == [("d", "failed"), ("e", "skipped"), ("b", "skipped")]
    assert rolled == (["d", "e", "b"] if rollback else [])


def test_rolling_restart_refuses_a_node_the_quorum_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    inv = parse({"all": {"hosts": {n: {"connection": "local"} for n in ("a", "b", "c")}}})
    monkeypatch.setattr(play, "mode", lambda h: None if h.name == "c" else "follower")
    target = _FakeTarget(True, "a")
    p = Play(inv, Options(join_timeout=0.5))  # how long it waits for the others to be a quorum
    p.rolling_restart([target], reason="requested")
    assert target.calls == [] and p.recap.results[0].status == "failed"
    assert "not a quorum without this node" in p.recap.results[0].message
