"""Which event loop a server process runs ($ZKOPS_EVENT_LOOP, uvloop as an optional extra)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest

from tests.support.ourzk import ZkopsProcess
from zkops.server import eventloop


@pytest.fixture(autouse=True)
def _default_policy():
    yield
    asyncio.set_event_loop_policy(None)


def _loop_module() -> str:
    loop = asyncio.new_event_loop()
    try:
        return type(loop).__module__
    finally:
        loop.close()


def test_asyncio_keeps_the_standard_loop():
    assert eventloop.choose("asyncio") == "asyncio"
    assert _loop_module().startswith("asyncio")


def test_without_uvloop_every_choice_runs_asyncios_loop(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert eventloop.choose("auto") == "asyncio"
    with caplog.at_level(logging.WARNING, logger="zkops.server"):
        assert eventloop.choose("uvloop") == "asyncio"
    assert "uvloop is not installed" in caplog.text
    assert _loop_module().startswith("asyncio")


def test_an_unknown_value_warns_and_chooses_as_auto(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with caplog.at_level(logging.WARNING, logger="zkops.server"):
        assert eventloop.choose("fastest") == "asyncio"
    assert "ZKOPS_EVENT_LOOP=fastest" in caplog.text and "using auto" in caplog.text


def test_the_default_is_auto(monkeypatch):
    monkeypatch.delenv(eventloop.ENV, raising=False)
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert eventloop.choose() == "asyncio"
    else:
        assert eventloop.choose().startswith("uvloop")


def test_the_environment_variable_turns_uvloop_off(monkeypatch):
    monkeypatch.setenv(eventloop.ENV, "asyncio")
    assert eventloop.choose() == "asyncio"
    assert _loop_module().startswith("asyncio")


def test_auto_runs_uvloop_when_it_is_installed():
    pytest.importorskip("uvloop")
    assert eventloop.choose("auto").startswith("uvloop")
    assert _loop_module().startswith("uvloop")


def _serves_and_logs(monkeypatch, tmp_path, value: str | None) -> str:
    if value is None:
        monkeypatch.delenv(eventloop.ENV, raising=False)
    else:
        monkeypatch.setenv(eventloop.ENV, value)  # the server process inherits this environment
    from kazoo.client import KazooClient

    server = ZkopsProcess(workdir=tmp_path).start()
    try:
        c = KazooClient(server.address, timeout=15)
        c.start(timeout=30)
        try:
            c.create("/loop", b"x")
            assert c.get("/loop")[0] == b"x"
        finally:
            c.stop()
            c.close()
        deadline = time.monotonic() + 30
        while "event loop:" not in (text := server.log_tail(1_000_000)):
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.05)
        return next(line for line in text.splitlines() if "event loop:" in line)
    finally:
        server.cleanup()


def test_a_server_logs_and_runs_the_standard_loop_when_told(monkeypatch, tmp_path):
    assert "event loop: asyncio, request path: " in _serves_and_logs(monkeypatch, tmp_path, "asyncio")


def test_a_server_runs_uvloop_when_it_is_installed(monkeypatch, tmp_path):
    pytest.importorskip("uvloop")
    assert "event loop: uvloop" in _serves_and_logs(monkeypatch, tmp_path, None)
