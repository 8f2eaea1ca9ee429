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


# A fresh process: what a server process without TLS does (cli.cmd_start_foreground), then a
# plain TCP exchange through uvloop, then what that uvloop does with TLS and what ssl is now.
_WITHOUT_SSL = r"""
import json, sys
from zkops.server import cli
assert cli._import_asyncio_without_tls()
from zkops.server import eventloop
kind = eventloop.choose("uvloop", without_ssl=True)
import asyncio
out = {"kind": kind, "openssl_after_choose": "_ssl" in sys.modules}

async def main():
    async def echo(r, w):
        w.write(await r.readexactly(5))
        await w.drain()
        w.close()
    srv = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"hello")
    out["echo"] = (await r.readexactly(5)).decode()
    w.close()
    out["loop"] = type(asyncio.get_running_loop()).__module__
    import ssl  # the real module for anyone who asks later
    out["real_ssl"] = hasattr(ssl, "OPENSSL_VERSION")
    try:  # this process's uvloop knows no real SSLContext: it refuses TLS, as its asyncio would
        await asyncio.start_server(echo, "127.0.0.1", 0, ssl=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
        out["tls"] = "served"
    except TypeError as exc:
        out["tls"] = str(exc)
    srv.close()
    await srv.wait_closed()

asyncio.run(main())
print(json.dumps(out))
"""


def test_a_process_without_tls_runs_uvloop_without_loading_openssl():
    pytest.importorskip("uvloop")
    import json
    import subprocess

    proc = subprocess.run([sys.executable, "-c", _WITHOUT_SSL], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["kind"].startswith("uvloop") and out["loop"].startswith("uvloop")
    assert out["openssl_after_choose"] is False
    assert out["echo"] == "hello" and out["real_ssl"] is True
    assert "SSLContext" in out["tls"]


def test_a_process_that_loaded_ssl_gives_uvloop_the_real_module():
    pytest.importorskip("uvloop")
    import subprocess

    code = ("import ssl, sys; from zkops.server import cli\n"
            "assert not cli._import_asyncio_without_tls()\n"
            "from zkops.server import eventloop\n"
            "eventloop.choose('uvloop', without_ssl=False)\n"
            "import uvloop.includes as inc; print(inc.ssl is ssl)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


def test_a_uvloop_that_reads_more_of_ssl_than_the_stand_in_has_gets_the_real_module():
    pytest.importorskip("uvloop")
    import subprocess

    code = ("import sys, types; from zkops.server import cli\n"
            "assert cli._import_asyncio_without_tls()\n"
            "from zkops.server import eventloop\n"
            "eventloop._ssl_stand_in = lambda: types.ModuleType('ssl')  # has none of the names\n"
            "kind = eventloop.choose('uvloop', without_ssl=True)\n"
            "import ssl, uvloop.includes as inc; print(kind.split()[0], inc.ssl is ssl, hasattr(ssl, 'OPENSSL_VERSION'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "uvloop True True"
