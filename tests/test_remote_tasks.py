"""The per-node service tasks of ``zkops start|stop|deploy`` over SSH report what they did
(the play's recap shows these status/message pairs)."""

from __future__ import annotations

import pytest

from zkops.provision import remote


class _FakeService:
    def __init__(self, up: bool) -> None:
        self.up = up
        self.calls: list[str] = []

    def running(self, node: object) -> bool:
        return self.up

    def start(self, node: object) -> None:
        self.calls.append("start")
        self.up = True

    def stop(self, node: object) -> None:
        self.calls.append("stop")
        self.up = False


@pytest.mark.parametrize(("up", "task", "want", "calls"), [
    (True, "_stop_task", ("changed", "stopped"), ["stop"]),
    (False, "_stop_task", ("ok", "not running"), []),
    (False, "_start_unless_running", ("changed", "started"), ["start"]),
    (True, "_start_unless_running", ("ok", "running"), []),
    (False, "_start_task", ("changed", "started"), ["start"]),
])
def test_service_tasks(monkeypatch: pytest.MonkeyPatch, up: bool, task: str, want: tuple[str, str],
                       calls: list[str]) -> None:
    svc = _FakeService(up)
    for name in ("running", "start", "stop"):
        monkeypatch.setattr(remote, name, getattr(svc, name))
    assert getattr(remote, task)(object()) == want
    assert svc.calls == calls
